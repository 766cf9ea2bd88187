//! Signing in with the node's clerk token, sessions, and CSRF tokens.
//!
//! Signing in swaps the token for a random 256-bit session id, sent back as an
//! `HttpOnly; SameSite=Strict` cookie and mapped server-side to the session (its CSRF token and
//! when it was last used). The token itself is never stored in the browser nor put in a URL.
//! The sign-in form is protected by a double-submit cookie (login CSRF); every other POST by
//! the session's CSRF token.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Form;
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use hukou_protocol::BureauCode;
use maud::html;

use super::{Ctx, Ui, cookie, page};

/// Cookie holding the session id, followed by the bureau code: cookies do not tell ports
/// apart, so consoles of several nodes on one host each keep their own.
pub const SESSION_COOKIE: &str = "hukou_session_";
/// Cookie holding the sign-in form's CSRF token (double submit), followed by the bureau code.
const LOGIN_COOKIE: &str = "hukou_login_";
/// A session unused this long is forgotten.
const SESSION_IDLE_MAX: Duration = Duration::from_secs(8 * 3600);
/// Most sessions held at once; signing in beyond it forgets the least recently used.
const SESSIONS_MAX: usize = 256;

/// The signed-in sessions of this node's console.
pub struct Sessions {
    by_id: Mutex<HashMap<String, Session>>,
    /// This node's session cookie (`hukou_session_CODE`).
    session_cookie: String,
    /// This node's sign-in CSRF cookie (`hukou_login_CODE`).
    login_cookie: String,
}

struct Session {
    csrf: String,
    last_used: Instant,
}

/// A signed-in session, as a page sees it.
#[derive(Clone)]
pub struct Signed {
    pub id: String,
    pub csrf: String,
}

impl Sessions {
    pub fn new(bureau: BureauCode) -> Sessions {
        Sessions {
            by_id: Mutex::new(HashMap::new()),
            session_cookie: format!("{SESSION_COOKIE}{bureau}"),
            login_cookie: format!("{LOGIN_COOKIE}{bureau}"),
        }
    }

    /// The session the request's cookie names, if it is live (and marks it used).
    pub fn signed(&self, headers: &HeaderMap) -> Option<Signed> {
        let id = cookie(headers, &self.session_cookie)?;
        let mut map = self.by_id.lock().expect("sessions lock");
        let now = Instant::now();
        map.retain(|_, s| now.duration_since(s.last_used) < SESSION_IDLE_MAX);
        let session = map.get_mut(&id)?;
        session.last_used = now;
        Some(Signed {
            csrf: session.csrf.clone(),
            id,
        })
    }

    fn open(&self) -> Signed {
        let id = random_hex();
        let csrf = random_hex();
        let mut map = self.by_id.lock().expect("sessions lock");
        if map.len() >= SESSIONS_MAX
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(
            id.clone(),
            Session {
                csrf: csrf.clone(),
                last_used: Instant::now(),
            },
        );
        Signed { id, csrf }
    }

    fn close(&self, id: &str) {
        self.by_id.lock().expect("sessions lock").remove(id);
    }
}

/// 32 random bytes in hex.
fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source works");
    hex::encode(bytes)
}

/// Compares without leaking, through timing, how many leading bytes matched.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Why a POST is refused before it reaches the API: not signed in (401) or no valid CSRF
/// token (403).
pub async fn refuse_post(ui: &Ui, ctx: &Ctx, status: StatusCode) -> Response {
    let l = ctx.lang;
    let (error, message) = if status == StatusCode::UNAUTHORIZED {
        (
            "not_signed_in",
            l.t(
                "此操作需要先用本局的窗口令牌登录。",
                "This needs you to sign in with this bureau's clerk token first.",
            ),
        )
    } else {
        (
            "csrf_token_invalid",
            l.t(
                "表单缺少有效的防伪令牌（CSRF），请求被拒绝。请重新打开页面后再提交。",
                "The form carried no valid anti-forgery (CSRF) token; refused. Reload the page and submit again.",
            ),
        )
    };
    let body = html! {
        h1 { (l.t("请求被拒绝", "Request refused")) }
        div.error role="alert" {
            p { (l.t("规则", "Rule")) "：" code.rule { (error) } }
            p.message { (message) }
        }
        p { a href="/ui/login" { (l.t("登录", "Sign in")) } }
    };
    page(ui, ctx, status, l.t("请求被拒绝", "Request refused"), body).await
}

/// The session of a POST whose form (or `X-CSRF-Token` header) carries its CSRF token, or the
/// refusal to answer with.
pub async fn check_post(ui: &Ui, ctx: &Ctx, presented: Option<&str>) -> Result<Signed, Response> {
    let Some(session) = &ctx.session else {
        return Err(refuse_post(ui, ctx, StatusCode::UNAUTHORIZED).await);
    };
    match presented {
        Some(t) if same(t, &session.csrf) => Ok(session.clone()),
        _ => Err(refuse_post(ui, ctx, StatusCode::FORBIDDEN).await),
    }
}

pub async fn login_page(AxumState(ui): AxumState<Ui>, ctx: Ctx) -> Response {
    login_form(&ui, &ctx, StatusCode::OK, None).await
}

async fn login_form(ui: &Ui, ctx: &Ctx, status: StatusCode, fault: Option<&str>) -> Response {
    let l = ctx.lang;
    let login_csrf = random_hex();
    let body = html! {
        h1 { (l.t("窗口登录", "Sign in to the window")) }
        @if ctx.session.is_some() {
            p.note { (l.t("您已登录。", "You are signed in.")) " " a href="/ui/window" { (l.t("进入窗口", "Open the window")) } }
        }
        @if let Some(f) = fault {
            div.error role="alert" { p.message { (f) } }
        }
        form.card #login-form method="post" action="/ui/login" autocomplete="off" {
            input type="hidden" name="csrf" value=(login_csrf);
            label for="token" { (l.t("窗口令牌（节点的 api_token_file 中的一行）", "Clerk token (the one line of the node's api_token_file)")) }
            input #token type="password" name="token" required autocomplete="off";
            button #sign-in-submit type="submit" { (l.t("登录", "Sign in")) }
        }
        p.note { (l.t("令牌只用于换取会话，不会保存在浏览器中。", "The token is only exchanged for a session; the browser never stores it.")) }
    };
    let mut response = page(ui, ctx, status, l.t("登录", "Sign in"), body).await;
    response.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_str(&format!(
            "{}={login_csrf}; Path=/ui/login; HttpOnly; SameSite=Strict; Max-Age=3600",
            ui.sessions.login_cookie
        ))
        .expect("ascii cookie"),
    );
    response
}

#[derive(serde::Deserialize)]
pub struct LoginForm {
    token: String,
    csrf: Option<String>,
}

pub async fn login(
    AxumState(ui): AxumState<Ui>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let l = ctx.lang;
    let expected = cookie(&headers, &ui.sessions.login_cookie);
    let csrf_ok = matches!((&expected, &form.csrf), (Some(a), Some(b)) if same(a, b));
    if !csrf_ok {
        return refuse_post(&ui, &ctx, StatusCode::FORBIDDEN).await;
    }
    if !same(form.token.trim(), &ui.api.token) {
        let fault = l.t(
            "令牌不正确（unauthorized: wrong bearer token）。",
            "Wrong token (unauthorized: wrong bearer token).",
        );
        return login_form(&ui, &ctx, StatusCode::UNAUTHORIZED, Some(fault)).await;
    }
    if let Some(old) = &ctx.session {
        ui.sessions.close(&old.id);
    }
    let session = ui.sessions.open();
    let mut response = Redirect::to("/ui/window").into_response();
    let h = response.headers_mut();
    h.append(
        header::SET_COOKIE,
        HeaderValue::from_str(&format!(
            "{}={}; Path=/ui; HttpOnly; SameSite=Strict",
            ui.sessions.session_cookie, session.id
        ))
        .expect("ascii cookie"),
    );
    h.append(
        header::SET_COOKIE,
        HeaderValue::from_str(&format!(
            "{}=; Path=/ui/login; HttpOnly; SameSite=Strict; Max-Age=0",
            ui.sessions.login_cookie
        ))
        .expect("ascii cookie"),
    );
    response
}

#[derive(serde::Deserialize)]
pub struct CsrfForm {
    csrf: Option<String>,
}

pub async fn logout(
    AxumState(ui): AxumState<Ui>,
    ctx: Ctx,
    Form(form): Form<CsrfForm>,
) -> Response {
    let session = match check_post(&ui, &ctx, form.csrf.as_deref()).await {
        Ok(s) => s,
        Err(refused) => return refused,
    };
    ui.sessions.close(&session.id);
    let mut response = Redirect::to("/ui/").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_str(&format!(
            "{}=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0",
            ui.sessions.session_cookie
        ))
        .expect("ascii cookie"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::Lang;

    #[test]
    fn sessions_are_random_and_closable() {
        let sessions = Sessions::new("310104".parse().unwrap());
        let a = sessions.open();
        let b = sessions.open();
        assert_ne!(a.id, b.id);
        assert_ne!(a.csrf, a.id);
        assert_eq!(a.id.len(), 64);
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("x=1; {SESSION_COOKIE}310104={}", a.id)).unwrap(),
        );
        assert_eq!(sessions.signed(&headers).unwrap().csrf, a.csrf);
        sessions.close(&a.id);
        assert!(sessions.signed(&headers).is_none());
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }

    #[test]
    fn lang_is_chinese_by_default() {
        assert_eq!(Lang::Zh.t("落户", "Registration"), "落户");
    }
}
