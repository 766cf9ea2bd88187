//! The web console (户籍窗口): server-rendered HTML under `/ui/`, served by the node's own API
//! server (no second listener, no build step, no CDN).
//!
//! - Public pages, no sign-in: the progress of a transfer (`/ui/transfer/{ref}`), the network
//!   and its configuration epoch (`/ui/network`), the bureau's daily reconciliation (`/ui/reconciliation`), fraud proofs.
//! - The window (`/ui/window`), after signing in with the node's clerk token: the inbox with
//!   working-day deadlines, the clerk's forms, and look-ups by ID number.
//! - Simplified Chinese by default; `?lang=en` or the toggle (a cookie) switches to English.
//!
//! Invariants:
//! - Every form calls the JSON API's own handler through [`crate::api::call`]: the console adds
//!   no rule of its own, and a refusal shows the API's `{"error", "message"}` verbatim.
//! - The token never travels in a URL and is never stored in the browser: signing in swaps it
//!   for a random session id in an `HttpOnly; SameSite=Strict` cookie, mapped server-side.
//! - Every POST carries the session's CSRF token in a hidden field (or the `X-CSRF-Token`
//!   header for the ID check) and is refused without it.
//! - ID numbers travel only in POST bodies, and no page shows an ID number or a name: persons
//!   appear as the first characters of their tag.
//! - Every response carries a strict Content-Security-Policy: scripts and styles only from
//!   `/ui/static/`, no inline script or style.

mod network_config;
mod pages;
mod session;
mod waiting;
mod window;

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, Query, State as AxumState};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use hukou_protocol::BureauCode;
use hukou_protocol::calendar::china_date;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Deserialize;
use serde_json::Value;

use crate::api::{Api, ApiError};
use session::Sessions;

/// The stylesheet and script, embedded in the binary and served from `/ui/static/`.
const CONSOLE_CSS: &str = include_str!("static/console.css");
const CONSOLE_JS: &str = include_str!("static/console.js");

/// The policy on every console response: nothing inline, nothing from elsewhere.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'";

/// Cookie holding the language choice (`zh` or `en`).
const LANG_COOKIE: &str = "hukou_lang";

/// Shared state of the console's handlers.
#[derive(Clone)]
pub struct Ui {
    pub api: Api,
    sessions: Arc<Sessions>,
}

/// The console's router (paths under `/ui`), merged into [`crate::api::router`] after the
/// API's layers: its pages are HTML, so the API's JSON error rewriting must not touch them.
pub fn router<S: Clone + Send + Sync + 'static>(api: Api) -> Router<S> {
    let ui = Ui {
        sessions: Arc::new(Sessions::new(api.service.me())),
        api,
    };
    Router::new()
        .route("/ui", get(pages::home))
        .route("/ui/", get(pages::home))
        .route("/ui/transfer", get(pages::transfer_lookup))
        .route("/ui/transfer/{reference}", get(pages::transfer))
        .route("/ui/network", get(pages::network))
        .route("/ui/fraud-proofs", get(pages::fraud_proofs))
        .route("/ui/reconciliation", get(pages::reconciliation))
        .route("/ui/reconciliation.csv", get(pages::reconciliation_csv))
        .route("/ui/lang", get(set_lang))
        .route("/ui/login", get(session::login_page).post(session::login))
        .route("/ui/logout", post(session::logout))
        .route("/ui/window", get(window::window))
        .route("/ui/window/{action}", post(window::act))
        .route("/ui/person", post(window::person))
        .route("/ui/check-id", post(window::check_id))
        .route("/ui/static/console.css", get(css))
        .route("/ui/static/console.js", get(js))
        // Not a fallback: the API's router has that; any other /ui/ path is this page.
        .route("/ui/{*rest}", get(not_found).post(not_found))
        .layer(axum::middleware::map_response(secure_headers))
        .with_state(ui)
}

/// Security headers on every console response.
async fn secure_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

async fn css() -> Response {
    static_file("text/css; charset=utf-8", CONSOLE_CSS)
}

async fn js() -> Response {
    static_file("text/javascript; charset=utf-8", CONSOLE_JS)
}

fn static_file(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// The language of a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    /// The text in this language.
    pub fn t(self, zh: &'static str, en: &'static str) -> &'static str {
        match self {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }

    fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }

    fn parse(text: &str) -> Option<Lang> {
        match text {
            "zh" => Some(Lang::Zh),
            "en" => Some(Lang::En),
            _ => None,
        }
    }
}

/// What every page needs from its request: the language, the signed-in session if any, and
/// the page's own path (for the language toggle to come back to).
pub struct Ctx {
    pub lang: Lang,
    pub session: Option<session::Signed>,
    pub path: String,
}

impl FromRequestParts<Ui> for Ctx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, ui: &Ui) -> Result<Ctx, Self::Rejection> {
        let from_query = parts.uri.query().and_then(|q| {
            q.split('&')
                .filter_map(|kv| kv.strip_prefix("lang="))
                .find_map(Lang::parse)
        });
        let lang = from_query
            .or_else(|| cookie(&parts.headers, LANG_COOKIE).and_then(|v| Lang::parse(&v)))
            .unwrap_or(Lang::Zh);
        let session = ui.sessions.signed(&parts.headers);
        let path = parts
            .uri
            .path_and_query()
            .map_or("/ui/", |p| p.as_str())
            .to_string();
        Ok(Ctx {
            lang,
            session,
            path,
        })
    }
}

/// A cookie's value from the request headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

#[derive(Deserialize)]
struct LangQuery {
    to: String,
    back: Option<String>,
}

/// The language toggle: remembers the choice in a cookie and returns to the page.
async fn set_lang(AxumState(ui): AxumState<Ui>, ctx: Ctx, Query(q): Query<LangQuery>) -> Response {
    let lang = Lang::parse(&q.to).unwrap_or(Lang::Zh);
    // Only back into the console: never an open redirect.
    let back = q
        .back
        .filter(|b| b.starts_with("/ui/") && !b.starts_with("//") && !b.contains('\\'))
        .unwrap_or_else(|| "/ui/".to_string());
    let back = strip_lang_param(&back);
    // A control character (a decoded `%0A`, say) cannot go in a Location header: no page of
    // the console has one in its address, so the request is wrong, not the node.
    if HeaderValue::from_str(&back).is_err() {
        let l = ctx.lang;
        let body = html! {
            h1 { (l.t("请求有误", "Bad request")) }
            p { (l.t("返回地址（back）含有控制字符，不是控制台的页面。",
                     "The return address (back) contains a control character: it is not a page of the console.")) }
            p { a href="/ui/" { (l.t("返回首页", "Back to the start page")) } }
        };
        return page(
            &ui,
            &ctx,
            StatusCode::BAD_REQUEST,
            l.t("请求有误", "Bad request"),
            body,
        )
        .await;
    }
    let mut response = Redirect::to(&back).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&format!(
            "{LANG_COOKIE}={}; Path=/ui; SameSite=Strict; Max-Age=31536000",
            lang.code()
        ))
        .expect("ascii cookie"),
    );
    response
}

/// `path` without a `lang=` query parameter (the cookie decides after the toggle).
fn strip_lang_param(path: &str) -> String {
    match path.split_once('?') {
        None => path.to_string(),
        Some((p, q)) => {
            let kept: Vec<&str> = q.split('&').filter(|kv| !kv.starts_with("lang=")).collect();
            if kept.is_empty() {
                p.to_string()
            } else {
                format!("{p}?{}", kept.join("&"))
            }
        }
    }
}

async fn not_found(AxumState(ui): AxumState<Ui>, ctx: Ctx) -> Response {
    let l = ctx.lang;
    let body = html! {
        h1 { (l.t("页面不存在", "No such page")) }
        p { a href="/ui/" { (l.t("返回首页", "Back to the start page")) } }
    };
    page(
        &ui,
        &ctx,
        StatusCode::NOT_FOUND,
        l.t("页面不存在", "No such page"),
        body,
    )
    .await
}

/// Whether the node holds evidence of fraud: equivocation proofs or checkpoint forks.
async fn fraud_count(ui: &Ui) -> usize {
    let proofs = ui.api.service.state().await.fraud_proofs.len();
    let forks = ui
        .api
        .service
        .store()
        .checkpoint_forks()
        .map_or(0, |f| f.len());
    proofs + forks
}

/// The name of a member bureau, or its code if it is not one.
pub async fn bureau_name(ui: &Ui, code: BureauCode) -> String {
    // The latest epoch naming it (a retired bureau keeps its name).
    let epochs = ui.api.service.epochs();
    epochs
        .all()
        .filter_map(|e| e.membership.member(code))
        .last()
        .map_or_else(|| code.to_string(), |m| m.name.clone())
}

/// The members' names, by code.
pub async fn bureau_names(ui: &Ui) -> std::collections::BTreeMap<String, String> {
    // Every bureau of every epoch: a retired bureau's acts still show its name.
    let mut names = std::collections::BTreeMap::new();
    for e in ui.api.service.epochs().all() {
        for m in e.membership.members() {
            names.insert(m.code.to_string(), m.name.clone());
        }
    }
    names
}

/// Renders a whole page: header with navigation and language toggle, the fraud banner when the
/// node holds a fraud proof, the body.
pub async fn page(ui: &Ui, ctx: &Ctx, status: StatusCode, title: &str, body: Markup) -> Response {
    let l = ctx.lang;
    let me = ui.api.service.me();
    let my_name = bureau_name(ui, me).await;
    let frauds = fraud_count(ui).await;
    let other = match l {
        Lang::Zh => ("en", "English"),
        Lang::En => ("zh", "中文"),
    };
    let toggle = format!("/ui/lang?to={}&back={}", other.0, url_encode(&ctx.path));
    let markup = html! {
        (DOCTYPE)
        html lang=(if l == Lang::Zh { "zh-CN" } else { "en" }) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(s) = &ctx.session { meta name="csrf-token" content=(s.csrf); }
                @if let Some(seconds) = refresh_of(&body) { meta http-equiv="refresh" content=(seconds); }
                title { (title) " · " (l.t("户口迁移账本", "hukou ledger")) }
                link rel="stylesheet" href="/ui/static/console.css";
                script src="/ui/static/console.js" defer {}
            }
            body {
                header.top {
                    div.brand {
                        a href="/ui/" { (l.t("户口迁移账本", "Household-register ledger")) }
                        span.bureau { (my_name) " (" (me) ")" }
                    }
                    nav {
                        a href="/ui/" { (l.t("办理进度", "Progress")) }
                        a href="/ui/window" { (l.t("户籍窗口", "Window")) }
                        a href="/ui/network" { (l.t("网络", "Network")) }
                        a href="/ui/reconciliation" { (l.t("对账", "Reconciliation")) }
                    }
                    div.session {
                        a #lang-toggle href=(toggle) lang=(other.0) { (other.1) }
                        @if let Some(s) = &ctx.session {
                            form.inline method="post" action="/ui/logout" {
                                input type="hidden" name="csrf" value=(s.csrf);
                                button #sign-out type="submit" { (l.t("退出登录", "Sign out")) }
                            }
                        } @else {
                            a #sign-in href="/ui/login" { (l.t("登录", "Sign in")) }
                        }
                    }
                }
                @if frauds > 0 {
                    div #fraud-banner .banner.fraud role="alert" {
                        strong { (l.t("警告：本节点持有欺诈证明", "Warning: this node holds fraud proofs")) }
                        " (" (frauds) ") — "
                        (l.t("某局对同一日志位置签署了两条不同记录或两个不同检查点。",
                             "a bureau signed two different entries or checkpoints at one position of its log."))
                        " "
                        a href="/ui/fraud-proofs" { (l.t("查看证据", "See the evidence")) }
                    }
                }
                main { (body) }
                footer {
                    (l.t("时间均为北京时间（UTC+8）；期限按法定工作日计算。",
                         "Times are China time (UTC+8); deadlines count official working days."))
                }
            }
        }
    };
    let mut response = (status, markup.into_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// A page asks to be reloaded every N seconds by holding `<span data-refresh="N">`.
fn refresh_of(body: &Markup) -> Option<String> {
    let text = &body.0;
    let start = text.find("data-refresh=\"")? + "data-refresh=\"".len();
    let len = text[start..].find('"')?;
    let seconds = &text[start..start + len];
    seconds
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| seconds.to_string())
}

/// Percent-encodes everything but unreserved characters and `/`.
pub fn url_encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A time as China time (UTC+8), `YYYY-MM-DD HH:MM:SS`.
pub fn china_time(time_ms: u64) -> String {
    let seconds = (time_ms / 1000 + 8 * 3600) % 86_400;
    format!(
        "{} {:02}:{:02}:{:02}",
        china_date(time_ms),
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

/// The first characters of a person tag: enough to tell people apart on a page, not a name.
pub fn tag_prefix(tag: &str) -> String {
    format!("{}…", &tag[..tag.len().min(10)])
}

/// The label of an entry kind (`enrol`, `permit`, ...).
pub fn kind_label(l: Lang, kind: &str) -> &'static str {
    match kind {
        "enrol" => l.t("户籍登记", "Enrolment"),
        "birth" => l.t("出生登记", "Birth registration"),
        "permit" => l.t("准迁证", "Permit to move in"),
        "refusal" => l.t("不予迁出", "Refusal"),
        "deregistration" => l.t("迁出", "Deregistration"),
        "registration" => l.t("落户", "Registration"),
        "revocation" => l.t("撤销准迁证", "Revocation"),
        "cancellation" => l.t("注销", "Cancellation"),
        "head-change" => l.t("变更户主", "Head-of-household change"),
        _ => l.t("其他", "Other"),
    }
}

/// A vocabulary value's label: the Chinese label, or the English name.
pub fn vocab_label<T: Copy>(
    l: Lang,
    name: &str,
    parse: fn(&str) -> Result<T, String>,
    zh: fn(T) -> std::borrow::Cow<'static, str>,
) -> String {
    match (l, parse(name)) {
        (Lang::Zh, Ok(v)) => zh(v).into_owned(),
        _ => name.to_string(),
    }
}

/// An API error as the console shows it: the rule's (or fault's) stable name and the API's own
/// message, verbatim.
pub fn error_box(l: Lang, e: &ApiError) -> Markup {
    let heading = if e.status == StatusCode::CONFLICT {
        l.t(
            "规则拒绝，未写入任何记录",
            "Refused by the rulebook: nothing was written",
        )
    } else {
        l.t("请求有误，未写入任何记录", "Refused: nothing was written")
    };
    html! {
        div.error role="alert" {
            p { strong { (heading) } }
            p { (l.t("规则", "Rule")) "：" code.rule { (e.error) } }
            p.message { (e.message) }
        }
    }
}

/// A string field of a JSON value.
pub fn s<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field].as_str().unwrap_or("")
}

/// A link to a transfer's progress page for an entry reference.
pub fn transfer_link(reference: &str) -> Markup {
    html! { a.ref href={ "/ui/transfer/" (reference) } { (short_ref(reference)) } }
}

/// `CODE:SEQ:HASH` shortened to `CODE:SEQ:HASH8…`.
pub fn short_ref(reference: &str) -> String {
    let mut parts = reference.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(c), Some(q), Some(h)) if h.len() > 8 => format!("{c}:{q}:{}…", &h[..8]),
        _ => reference.to_string(),
    }
}

/// The deadline facts of the API (`deadline_json`) as a sentence. A deadline the calendar
/// cannot compute says which year's calendar is missing, rather than showing a guess.
pub fn deadline_text(l: Lang, d: &Value, pending: bool) -> Markup {
    let date = s(d, "deadline");
    let days = d["working_days"].as_u64().unwrap_or(0);
    let overdue = d["overdue"].as_bool().unwrap_or(false);
    let late = d["working_days_overdue"].as_u64();
    let missing_year = d["calendar_year_missing"].as_i64();
    if d["deadline"].is_null()
        && let Some(year) = missing_year
    {
        return html! {
            span.deadline.unknown {
                "(" (days) (l.t(" 个工作日", " working day(s)")) ") "
                strong.mark { (calendar_missing_text(l, year)) }
            }
        };
    }
    html! {
        span.deadline.overdue[overdue] {
            (date) " (" (days) (l.t(" 个工作日", " working day(s)")) ") "
            @if overdue {
                strong.mark {
                    (l.t("已超期", "overdue"))
                    @if let Some(late) = late.filter(|late| *late > 0) {
                        " " (late) (l.t(" 个工作日", " working day(s)"))
                    }
                }
                @if let (None, Some(year)) = (late, missing_year) {
                    " " (late_uncounted_text(l, year))
                }
            } @else if pending {
                span.ok { (l.t("未超期", "within the deadline")) }
            } @else {
                span.ok { (l.t("按时办结", "met")) }
            }
        }
    }
}

/// The deadline cannot be computed: `year`'s working-day calendar is not published.
fn calendar_missing_text(l: Lang, year: i64) -> String {
    match l {
        Lang::Zh => format!("{year}年工作日历尚未发布，无法计算期限"),
        Lang::En => format!(
            "the {year} working-day calendar is not yet published: the deadline cannot be computed"
        ),
    }
}

/// Past the deadline, by a count that needs `year`'s unpublished calendar.
fn late_uncounted_text(l: Lang, year: i64) -> String {
    match l {
        Lang::Zh => format!("（{year}年工作日历尚未发布，无法计算超期工作日数）"),
        Lang::En => format!(
            "(the {year} working-day calendar is not yet published: working days overdue cannot be counted)"
        ),
    }
}

/// Raw HTML that is known safe (static SVG fragments built from numbers).
pub fn raw(text: String) -> PreEscaped<String> {
    PreEscaped(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn china_time_is_utc_plus_8() {
        // 2026-11-24T16:00:00Z is midnight in China.
        assert_eq!(china_time(1_795_536_000_000), "2026-11-25 00:00:00");
        assert_eq!(china_time(1_795_536_000_000 - 1000), "2026-11-24 23:59:59");
    }

    #[test]
    fn lang_toggle_never_redirects_out_of_the_console() {
        assert_eq!(strip_lang_param("/ui/network?lang=en"), "/ui/network");
        assert_eq!(strip_lang_param("/ui/r?date=x&lang=en"), "/ui/r?date=x");
        assert_eq!(
            url_encode("/ui/transfer/310104:3"),
            "/ui/transfer/310104%3A3"
        );
    }

    #[test]
    fn refresh_marker_is_digits_only() {
        let m = html! { span data-refresh="2" {} };
        assert_eq!(refresh_of(&m).as_deref(), Some("2"));
        let m = html! { span data-refresh="2;url=x" {} };
        assert_eq!(refresh_of(&m), None);
    }

    #[test]
    fn a_deadline_without_its_calendar_says_which_year_is_missing() {
        let unknown = serde_json::json!({"received": "2026-12-31", "working_days": 1,
            "deadline": null, "deadline_ms": null, "overdue": null, "working_days_overdue": null,
            "deadline_unknown": "calendar_year_missing", "calendar_year_missing": 2027});
        let zh = deadline_text(Lang::Zh, &unknown, true).into_string();
        assert!(zh.contains("2027年工作日历尚未发布，无法计算期限"), "{zh}");
        assert!(!zh.contains("未超期"), "{zh}");
        let en = deadline_text(Lang::En, &unknown, true).into_string();
        assert!(
            en.contains("the 2027 working-day calendar is not yet published"),
            "{en}"
        );

        let uncounted = serde_json::json!({"received": "2026-12-30", "working_days": 1,
            "deadline": "2026-12-31", "deadline_ms": 1_798_732_799_999_u64, "overdue": true,
            "working_days_overdue": null, "deadline_unknown": null, "calendar_year_missing": 2027});
        let zh = deadline_text(Lang::Zh, &uncounted, true).into_string();
        assert!(zh.contains("2026-12-31"), "{zh}");
        assert!(zh.contains("已超期"), "{zh}");
        assert!(
            zh.contains("2027年工作日历尚未发布，无法计算超期工作日数"),
            "{zh}"
        );

        let known = serde_json::json!({"received": "2026-12-03", "working_days": 1,
            "deadline": "2026-12-04", "deadline_ms": 1_796_399_999_999_u64, "overdue": true,
            "working_days_overdue": 2, "deadline_unknown": null, "calendar_year_missing": null});
        let zh = deadline_text(Lang::Zh, &known, true).into_string();
        assert!(zh.contains("已超期 2 个工作日"), "{zh}");
        assert!(!zh.contains("工作日历"), "{zh}");
    }

    #[test]
    fn short_refs_and_tags() {
        assert_eq!(short_ref("310104:3:9c12ac975de8e542"), "310104:3:9c12ac97…");
        assert_eq!(short_ref("310104:3"), "310104:3");
        assert_eq!(tag_prefix("d0132a7c7ec780fe3e07"), "d0132a7c7e…");
    }
}
