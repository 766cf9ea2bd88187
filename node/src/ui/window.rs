//! The window (户籍窗口), for a signed-in clerk: the inbox with working-day deadlines, the
//! clerk's forms, look-ups by ID number, and the ID check behind the forms' live hints.
//!
//! Every form posts to `/ui/window/{action}`, which turns the fields into the JSON body of the
//! matching API route and runs that route's own handler ([`crate::api::call`]): the same
//! parsing, the same rules, the same `{"error", "message"}` on refusal.

use std::collections::BTreeMap;

use axum::Form;
use axum::Json;
use axum::extract::{Path, State as AxumState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use hukou_protocol::{CancellationReason, Category, RefusalReason, Relation};
use maud::{Markup, html};
use serde_json::{Map, Value, json};

use super::session::{Signed, check_post};
use super::{
    Ctx, Lang, Ui, bureau_names, china_time, deadline_text, error_box, kind_label, page, s,
    short_ref, tag_prefix, transfer_link, vocab_label,
};
use crate::api;

/// How long the register form waits for the deregistration to become final when asked to.
const REGISTER_WAIT_MS: u64 = 30_000;

/// A form action: its JSON route and the form fields it takes (anything else is dropped).
struct Action {
    name: &'static str,
    route: &'static str,
    fields: &'static [&'static str],
}

const ACTIONS: &[Action] = &[
    Action {
        name: "enrol",
        route: "/v1/enrol",
        fields: &["person", "household", "relation", "wait"],
    },
    Action {
        name: "birth",
        route: "/v1/birth",
        fields: &["person", "household", "relation", "wait"],
    },
    Action {
        name: "permit",
        route: "/v1/permits",
        fields: &[
            "person",
            "origin",
            "category",
            "valid_days",
            "materials",
            "corrects",
        ],
    },
    Action {
        name: "revoke",
        route: "/v1/permits/revoke",
        fields: &["permit"],
    },
    Action {
        name: "deregister",
        route: "/v1/deregister",
        fields: &["permit", "new_head"],
    },
    Action {
        name: "refuse",
        route: "/v1/refuse",
        fields: &["permit", "reason"],
    },
    Action {
        name: "register",
        route: "/v1/register",
        fields: &["deregistration", "household", "relation", "wait"],
    },
    Action {
        name: "cancel",
        route: "/v1/cancel",
        fields: &["person", "reason", "new_head"],
    },
    Action {
        name: "head-change",
        route: "/v1/head-change",
        fields: &["household", "new_head"],
    },
];

/// Fields the API takes as numbers.
const NUMBER_FIELDS: &[&str] = &["household", "valid_days"];

/// The JSON body of an action from its form fields: empty fields left out (the API's defaults
/// apply), numbers as numbers (a field that is not one is passed on as text, so the API names
/// the fault), the register form's `wait` box as `wait_ms`.
fn body_of(action: &Action, form: &BTreeMap<String, String>) -> Value {
    let mut body = Map::new();
    for &field in action.fields {
        let Some(value) = form.get(field).map(|v| v.trim()).filter(|v| !v.is_empty()) else {
            continue;
        };
        if field == "wait" {
            body.insert("wait_ms".into(), json!(REGISTER_WAIT_MS));
        } else if NUMBER_FIELDS.contains(&field) {
            body.insert(
                field.into(),
                value
                    .parse::<u64>()
                    .map_or_else(|_| json!(value), |n| json!(n)),
            );
        } else {
            body.insert(field.into(), json!(value));
        }
    }
    Value::Object(body)
}

fn action_title(l: Lang, action: &str) -> &'static str {
    match action {
        "enrol" => l.t("户籍登记", "Enrol a resident"),
        "birth" => l.t("出生登记", "Record a birth"),
        "permit" => l.t("签发准迁证", "Issue a permit"),
        "revoke" => l.t("撤销准迁证", "Revoke a permit"),
        "deregister" => l.t("迁出", "Deregister"),
        "refuse" => l.t("不予迁出", "Refuse a permit"),
        "register" => l.t("落户", "Register"),
        "cancel" => l.t("注销", "Cancel a registration"),
        "head-change" => l.t("变更户主", "Change the head of household"),
        _ => l.t("办理", "Act"),
    }
}

/// An ID number field with its live fault hint (`console.js`).
fn id_input(l: Lang, form: &str, name: &str, label: &str, required: bool) -> Markup {
    let id = format!("{form}-{name}");
    html! {
        label for=(id) { (label) }
        input id=(id) name=(name) required[required] autocomplete="off" inputmode="text"
            maxlength="18" data-idcheck placeholder=(l.t("18 位公民身份号码", "18-character citizen ID"));
        span.idfault id={ (id) "-fault" } aria-live="polite" {}
    }
}

fn select<T: Copy>(
    l: Lang,
    id: &str,
    name: &str,
    named: &[T],
    to_name: fn(T) -> std::borrow::Cow<'static, str>,
    zh: fn(T) -> std::borrow::Cow<'static, str>,
    optional: bool,
) -> Markup {
    html! {
        select id=(id) name=(name) required[!optional] {
            @if optional { option value="" { "—" } }
            @for v in named {
                option value=(to_name(*v)) { @if l == Lang::Zh { (zh(*v)) " (" (to_name(*v)) ")" } @else { (to_name(*v)) } }
            }
        }
    }
}

fn relation_select(l: Lang, id: &str) -> Markup {
    html! {
        label for=(id) { (l.t("与户主关系（加入已有户时必填）", "Relation to the head (needed to join a household)")) }
        (select(l, id, "relation", Relation::NAMED, Relation::name, Relation::label_zh, true))
    }
}

fn household_input(l: Lang, id: &str, required: bool) -> Markup {
    html! {
        label for=(id) { (l.t("户号（空 = 新立户）", "Household number (empty = a new household)")) }
        input id=(id) name="household" inputmode="numeric" required[required];
    }
}

fn csrf(session: &Signed) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

/// The window: inbox and forms.
pub async fn window(AxumState(ui): AxumState<Ui>, ctx: Ctx) -> Response {
    // The window needs a session: without one, the sign-in page.
    let Some(session) = ctx.session.clone() else {
        return Redirect::to("/ui/login").into_response();
    };
    let l = ctx.lang;
    let title = l.t("户籍窗口", "Registration window");
    let inbox = match api::call(&ui.api, "/v1/inbox", Value::Null).await {
        Ok(v) => v,
        Err(e) => return page(&ui, &ctx, e.status, title, error_box(l, &e)).await,
    };
    let names = bureau_names(&ui).await;
    let me = ui.api.service.me().to_string();
    let name = |code: &str| names.get(code).cloned().unwrap_or_else(|| code.to_string());
    let permits = inbox["permits_awaiting_removal"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let removals = inbox["removals_awaiting_registration"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let others: Vec<(&String, &String)> = names.iter().filter(|(c, _)| **c != me).collect();
    let body = html! {
        h1 { (title) " · " (name(&me)) }
        section #inbox {
            h2 { (l.t("待办", "Inbox")) }
            h3 { (l.t("待本局迁出的准迁证", "Permits awaiting this bureau's deregistration")) " (" (permits.len()) ")" }
            @if permits.is_empty() { p.note #no-permits { (l.t("无。", "None.")) } } @else {
            table #permits-awaiting {
                thead { tr {
                    th { (l.t("准迁证", "Permit")) } th { (l.t("迁入地", "Destination")) } th { (l.t("类别", "Category")) }
                    th { (l.t("人员标签", "Person tag")) } th { (l.t("收到", "Received")) } th { (l.t("期限", "Deadline")) }
                    th { (l.t("办理", "Act")) }
                } }
                tbody { @for p in &permits {
                    @let overdue = p["deadline"]["overdue"].as_bool().unwrap_or(false);
                    @let r = s(p, "permit");
                    tr.overdue[overdue] data-permit=(r) {
                        td { (transfer_link(r)) }
                        td { (name(s(p, "destination"))) }
                        td { (vocab_label(l, s(p, "category"), Category::parse, Category::label_zh)) }
                        td { code { (tag_prefix(s(p, "person_tag"))) } }
                        td { (p["issued_ms"].as_u64().map(china_time).unwrap_or_default()) }
                        td { (deadline_text(l, &p["deadline"], true))
                             @if p["expired"].as_bool().unwrap_or(false) { " " strong.mark { (l.t("准迁证已过期", "permit expired")) } } }
                        td.actions {
                            form.row method="post" action="/ui/window/deregister" {
                                (csrf(&session))
                                input type="hidden" name="permit" value=(r);
                                input name="new_head" autocomplete="off" maxlength="18" data-idcheck
                                    placeholder=(l.t("新户主身份号码（户主迁出时）", "new head's ID (if the head leaves)"));
                                span.idfault aria-live="polite" {}
                                button.deregister type="submit" { (l.t("迁出", "Deregister")) }
                            }
                            form.row method="post" action="/ui/window/refuse" {
                                (csrf(&session))
                                input type="hidden" name="permit" value=(r);
                                (select(l, &format!("reason-{}", short_ref(r)), "reason", RefusalReason::NAMED, RefusalReason::name, RefusalReason::label_zh, false))
                                button.secondary type="submit" { (l.t("不予迁出", "Refuse")) }
                            }
                        }
                    }
                } }
            } }
            h3 { (l.t("待本局落户的迁出", "Deregistrations awaiting this bureau's registration")) " (" (removals.len()) ")" }
            @if removals.is_empty() { p.note #no-removals { (l.t("无。", "None.")) } } @else {
            table #removals-awaiting {
                thead { tr {
                    th { (l.t("迁出记录", "Deregistration")) } th { (l.t("迁出地", "Origin")) }
                    th { (l.t("人员标签", "Person tag")) } th { (l.t("迁出时间", "Deregistered")) }
                    th { (l.t("终局", "Final")) } th { (l.t("期限", "Deadline")) } th { (l.t("办理", "Act")) }
                } }
                tbody { @for d in &removals {
                    @let overdue = d["deadline"]["overdue"].as_bool().unwrap_or(false);
                    @let r = s(d, "deregistration");
                    @let is_final = d["final"].as_bool().unwrap_or(false);
                    tr.overdue[overdue] data-deregistration=(r) {
                        td { (transfer_link(r)) }
                        td { (name(s(d, "origin"))) }
                        td { code { (tag_prefix(s(d, "person_tag"))) } }
                        td { (d["time_ms"].as_u64().map(china_time).unwrap_or_default()) }
                        td { @if is_final { span.badge.final { (l.t("已终局", "final")) } }
                             @else { span.badge.pending { (l.t("尚未终局", "not final yet")) } }
                             @if let Some(rev) = d["permit_revoked_by"].as_str() { " " strong.mark { (l.t("准迁证已撤销", "permit revoked")) " " (short_ref(rev)) } } }
                        td { (deadline_text(l, &d["deadline"], true)) }
                        td.actions {
                            form.row method="post" action="/ui/window/register" {
                                (csrf(&session))
                                input type="hidden" name="deregistration" value=(r);
                                input name="household" inputmode="numeric" placeholder=(l.t("户号（空 = 新立户）", "household (empty = new)"));
                                (select(l, &format!("relation-{}", short_ref(r)), "relation", Relation::NAMED, Relation::name, Relation::label_zh, true))
                                label.check { input type="checkbox" name="wait" value="1" checked; (l.t("等待终局（至多 30 秒）", "wait for finality (up to 30 s)")) }
                                button.register type="submit" { (l.t("落户", "Register")) }
                            }
                        }
                    }
                } }
            } }
            p.note { (l.t("超期的排在最前并以红色标出；期限按法定工作日计算（迁出地、迁入地各 1 个工作日）。",
                          "Overdue items come first, marked red; deadlines count official working days (1 working day each for the origin and the destination).")) }
        }
        section #forms {
            h2 { (l.t("办理", "Forms")) }
            div.grid {
                form.card #form-person method="post" action="/ui/person" autocomplete="off" {
                    h3 { (l.t("按身份号码查询人员", "Look up a person by ID number")) }
                    (csrf(&session))
                    (id_input(l, "lookup", "person", l.t("公民身份号码", "Citizen ID number"), true))
                    button type="submit" { (l.t("查询", "Look up")) }
                }
                form.card #form-permit method="post" action="/ui/window/permit" autocomplete="off" {
                    h3 { (action_title(l, "permit")) }
                    (csrf(&session))
                    (id_input(l, "permit", "person", l.t("申请人公民身份号码", "Applicant's citizen ID"), true))
                    label for="permit-origin" { (l.t("迁出地公安局", "Origin bureau")) }
                    select #permit-origin name="origin" required {
                        @for (code, n) in &others { option value=(code) { (n) " (" (code) ")" } }
                    }
                    label for="permit-category" { (l.t("迁移类别", "Category")) }
                    (select(l, "permit-category", "category", Category::NAMED, Category::name, Category::label_zh, false))
                    label for="permit-valid" { (l.t("有效天数（默认 40）", "Valid days (default 40)")) }
                    input #permit-valid name="valid_days" inputmode="numeric";
                    label for="permit-corrects" { (l.t("纠正的错迁记录（仅错迁回迁）", "Transfer corrected (return-after-error only)")) }
                    input #permit-corrects name="corrects" placeholder="310104:4";
                    button #issue-permit type="submit" { (l.t("签发准迁证", "Issue the permit")) }
                }
                form.card #form-enrol method="post" action="/ui/window/enrol" autocomplete="off" {
                    h3 { (action_title(l, "enrol")) }
                    (csrf(&session))
                    (id_input(l, "enrol", "person", l.t("公民身份号码", "Citizen ID number"), true))
                    (household_input(l, "enrol-household", false))
                    (relation_select(l, "enrol-relation"))
                    button #enrol type="submit" { (l.t("登记", "Enrol")) }
                }
                form.card #form-birth method="post" action="/ui/window/birth" autocomplete="off" {
                    h3 { (action_title(l, "birth")) }
                    (csrf(&session))
                    (id_input(l, "birth", "person", l.t("新生儿公民身份号码", "Newborn's citizen ID"), true))
                    (household_input(l, "birth-household", false))
                    (relation_select(l, "birth-relation"))
                    button type="submit" { (l.t("出生登记", "Record the birth")) }
                }
                form.card #form-deregister method="post" action="/ui/window/deregister" autocomplete="off" {
                    h3 { (action_title(l, "deregister")) }
                    (csrf(&session))
                    label for="deregister-permit" { (l.t("准迁证编号", "Permit reference")) }
                    input #deregister-permit name="permit" required placeholder="330502:3";
                    (id_input(l, "deregister", "new_head", l.t("新户主身份号码（户主迁出且户内有他人时）", "New head's ID (when the head leaves others behind)"), false))
                    button type="submit" { (l.t("迁出", "Deregister")) }
                }
                form.card #form-refuse method="post" action="/ui/window/refuse" {
                    h3 { (action_title(l, "refuse")) }
                    (csrf(&session))
                    label for="refuse-permit" { (l.t("准迁证编号", "Permit reference")) }
                    input #refuse-permit name="permit" required;
                    label for="refuse-reason" { (l.t("理由", "Reason")) }
                    (select(l, "refuse-reason", "reason", RefusalReason::NAMED, RefusalReason::name, RefusalReason::label_zh, false))
                    button type="submit" { (l.t("不予迁出", "Refuse")) }
                }
                form.card #form-register method="post" action="/ui/window/register" {
                    h3 { (action_title(l, "register")) }
                    (csrf(&session))
                    label for="register-deregistration" { (l.t("迁出记录编号", "Deregistration reference")) }
                    input #register-deregistration name="deregistration" required;
                    (household_input(l, "register-household", false))
                    (relation_select(l, "register-relation"))
                    label.check { input type="checkbox" name="wait" value="1" checked; (l.t("等待迁出终局（至多 30 秒）", "wait for the deregistration to be final (up to 30 s)")) }
                    button type="submit" { (l.t("落户", "Register")) }
                }
                form.card #form-revoke method="post" action="/ui/window/revoke" {
                    h3 { (action_title(l, "revoke")) }
                    (csrf(&session))
                    label for="revoke-permit" { (l.t("本局签发的准迁证编号", "Reference of a permit this bureau issued")) }
                    input #revoke-permit name="permit" required;
                    button.secondary type="submit" { (l.t("撤销", "Revoke")) }
                }
                form.card #form-cancel method="post" action="/ui/window/cancel" autocomplete="off" {
                    h3 { (action_title(l, "cancel")) }
                    (csrf(&session))
                    (id_input(l, "cancel", "person", l.t("公民身份号码", "Citizen ID number"), true))
                    label for="cancel-reason" { (l.t("理由", "Reason")) }
                    (select(l, "cancel-reason", "reason", CancellationReason::NAMED, CancellationReason::name, CancellationReason::label_zh, false))
                    (id_input(l, "cancel", "new_head", l.t("新户主身份号码（户主注销且户内有他人时）", "New head's ID (when the head leaves others behind)"), false))
                    button.secondary type="submit" { (l.t("注销", "Cancel")) }
                }
                form.card #form-head-change method="post" action="/ui/window/head-change" autocomplete="off" {
                    h3 { (action_title(l, "head-change")) }
                    (csrf(&session))
                    label for="head-household" { (l.t("户号", "Household number")) }
                    input #head-household name="household" required inputmode="numeric";
                    (id_input(l, "head", "new_head", l.t("新户主公民身份号码（须为户内成员）", "New head's citizen ID (a member of the household)"), true))
                    button type="submit" { (l.t("变更户主", "Change the head")) }
                }
            }
        }
    };
    page(&ui, &ctx, StatusCode::OK, title, body).await
}

/// A form's submission: checks the session and CSRF token, then runs the API route's handler.
pub async fn act(
    AxumState(ui): AxumState<Ui>,
    ctx: Ctx,
    Path(action): Path<String>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    let session = match check_post(&ui, &ctx, form.get("csrf").map(String::as_str)).await {
        Ok(s) => s,
        Err(refused) => return refused,
    };
    let l = ctx.lang;
    let Some(spec) = ACTIONS.iter().find(|a| a.name == action) else {
        return super::not_found(AxumState(ui), ctx).await;
    };
    let title = action_title(l, spec.name);
    let result = api::call(&ui.api, spec.route, body_of(spec, &form)).await;
    let (status, outcome) = match &result {
        Ok(w) => (StatusCode::OK, written(l, w)),
        Err(e) => {
            let not_final = e.error == "deregistration_not_final";
            let claim_waits = matches!(e.error.as_str(), "claim_not_final" | "arbiter_unreachable");
            (
                e.status,
                html! {
                    (error_box(l, e))
                    @if let Some(w) = &e.waiting {
                        (super::waiting::note(l, w, not_final))
                    }
                    @if claim_waits {
                        p #claim-not-final.note {
                            strong { (l.t("该人员的登记认领尚未终局，请稍后重试。", "The claim on this person is not final yet; retry."))}
                            " "
                            (l.t("为防止一人两地登记，新登记须先由该人员的仲裁局签发认领，并经法定多数见证人联署；网络恢复后即可完成；该人员尚未登记。",
                                "So that nobody is registered twice, a first registration needs a claim from the person's arbiter bureau, cosigned by a quorum of witnesses; it completes once the network allows; the person is not registered yet."))
                        }
                    }
                    @if not_final || claim_waits {
                        @if not_final {
                            p #not-final.note {
                                strong { (l.t("迁出尚未终局，请稍后重试。", "The deregistration is not final yet; retry.")) }
                                " "
                                (l.t("待法定多数见证人联署其检查点后即可落户。", "Registration is possible once a quorum of witnesses has cosigned its checkpoint."))
                            }
                        }
                        form #retry method="post" action={ "/ui/window/" (spec.name) } {
                            (csrf(&session))
                            @for f in spec.fields {
                                @if let Some(v) = form.get(*f) { input type="hidden" name=(f) value=(v); }
                            }
                            input type="hidden" name="wait" value="1";
                            button type="submit" { (l.t("等待终局并重试", "Wait for finality and retry")) }
                        }
                    }
                },
            )
        }
    };
    let body = html! {
        h1 { (title) }
        div #outcome data-ok=(result.is_ok()) { (outcome) }
        p { a #back-to-window href="/ui/window" { (l.t("返回窗口", "Back to the window")) } }
    };
    page(&ui, &ctx, status, title, body).await
}

/// What a write recorded (the API's answer).
fn written(l: Lang, w: &Value) -> Markup {
    let kind = s(w, "kind");
    let r = s(w, "ref");
    // The transfer a step belongs to: itself, or the permit a refusal or revocation acts on.
    let transfer = match kind {
        "permit" | "deregistration" | "registration" => Some(r),
        "refusal" | "revocation" => w["acted_on"].as_str(),
        _ => None,
    };
    html! {
        div.success role="status" {
            p { strong { (l.t("已记录", "Recorded")) "：" (kind_label(l, kind)) } }
            dl.facts {
                dt { (l.t("记录编号", "Reference")) } dd { code #written-ref { (r) } }
                dt { (l.t("时间", "Time")) } dd { (w["time_ms"].as_u64().map(china_time).unwrap_or_default()) }
                @if let Some(tag) = w["person_tag"].as_str() {
                    dt { (l.t("人员标签", "Person tag")) } dd { code { (tag_prefix(tag)) } }
                }
                @if let Some(h) = w["household"].as_u64() {
                    dt { (l.t("户号", "Household")) } dd #written-household { (h) }
                }
                @if let Some(days) = w["valid_days"].as_u64() {
                    dt { (l.t("有效天数", "Valid days")) } dd { (days) }
                }
                @if let Some(a) = w["acted_on"].as_str() {
                    dt { (l.t("所办理的记录", "Acts on")) } dd { code { (short_ref(a)) } }
                }
            }
            @if let Some(t) = transfer {
                p { a #progress-link href={ "/ui/transfer/" (t) } { (l.t("查看办理进度", "See the transfer's progress")) } }
            }
        }
    }
}

/// A look-up by ID number (POST: the number never appears in a URL). The page shows the person
/// by tag prefix only, never the number.
pub async fn person(
    AxumState(ui): AxumState<Ui>,
    ctx: Ctx,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if let Err(refused) = check_post(&ui, &ctx, form.get("csrf").map(String::as_str)).await {
        return refused;
    }
    let l = ctx.lang;
    let title = l.t("人员查询", "Person look-up");
    let person = form.get("person").map(|p| p.trim()).unwrap_or("");
    let p = match api::call(&ui.api, "/v1/person", json!({"person": person})).await {
        Ok(p) => p,
        Err(e) => {
            let body = html! {
                h1 { (title) }
                div #outcome data-ok="false" { (error_box(l, &e)) }
                p { a href="/ui/window" { (l.t("返回窗口", "Back to the window")) } }
            };
            return page(&ui, &ctx, e.status, title, body).await;
        }
    };
    let names = bureau_names(&ui).await;
    let name = |code: &str| names.get(code).cloned().unwrap_or_else(|| code.to_string());
    let records = p["records"].as_array().cloned().unwrap_or_default();
    let transit = p["in_transit"].as_array().cloned().unwrap_or_default();
    let history = p["history"].as_array().cloned().unwrap_or_default();
    let body = html! {
        h1 { (title) }
        div #outcome data-ok="true" {
        dl.facts {
            dt { (l.t("人员标签", "Person tag")) } dd { code { (tag_prefix(s(&p, "person_tag"))) } }
            dt { (l.t("户籍所在地", "Registered at")) }
            dd #registered-at { @match p["registered_at"].as_str() {
                Some(c) => { (name(c)) " (" (c) ")" },
                None => (l.t("无（未登记、迁移途中、已注销或重复登记）", "none (not registered, in transit, cancelled or duplicated)")),
            } }
            @if p["duplicate"].as_bool().unwrap_or(false) {
                dt { (l.t("重复登记", "Duplicate")) } dd { strong.mark { (l.t("是（重）", "yes")) } }
            }
            @if let Some(c) = p["cancelled"].as_object() {
                dt { (l.t("已注销", "Cancelled")) } dd { (c.get("reason").and_then(|r| r.as_str()).map(|r| vocab_label(l, r, CancellationReason::parse, CancellationReason::label_zh)).unwrap_or_default()) }
            }
        }
        @if !records.is_empty() {
            h2 { (l.t("户籍记录", "Registrations")) }
            table { thead { tr { th { (l.t("公安局", "Bureau")) } th.num { (l.t("户号", "Household")) } th { (l.t("户主", "Head")) } th { (l.t("自", "Since")) } } }
              tbody { @for r in &records { tr {
                td { (name(s(r, "bureau"))) } td.num { (r["household"]) }
                td { @if r["head"].as_bool().unwrap_or(false) { (l.t("户主", "head")) } @else { "—" } }
                td { code { (short_ref(s(r, "since"))) } }
              } } } }
        }
        @if !transit.is_empty() {
            h2 { (l.t("迁移途中", "In transit")) }
            ul { @for t in &transit { li { (transfer_link(s(t, "deregistration"))) " " (name(s(t, "from"))) " → " (name(s(t, "to"))) } } }
        }
        h2 { (l.t("历史", "History")) }
        table { thead { tr { th { (l.t("时间", "Time")) } th { (l.t("事项", "Act")) } th { (l.t("公安局", "Bureau")) } th { (l.t("记录", "Entry")) } } }
          tbody { @for h in &history { tr {
            td { (h["time_ms"].as_u64().map(china_time).unwrap_or_default()) }
            td { (kind_label(l, s(h, "kind"))) }
            td { (name(s(h, "bureau"))) }
            td { @if matches!(s(h, "kind"), "permit" | "deregistration" | "registration") { (transfer_link(s(h, "ref"))) } @else { code { (short_ref(s(h, "ref"))) } } }
          } } } }
        }
        p { a href="/ui/window" { (l.t("返回窗口", "Back to the window")) } }
    };
    page(&ui, &ctx, StatusCode::OK, title, body).await
}

/// The live ID check behind the forms: `{"person"}` in; `{"ok": true}` or the API's own
/// `{"ok": false, "error", "message"}` for that number (`api::parse_id`, GB 11643). Needs the
/// session and its CSRF token in `X-CSRF-Token`.
pub async fn check_id(
    AxumState(ui): AxumState<Ui>,
    ctx: Ctx,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let presented = headers.get("x-csrf-token").and_then(|v| v.to_str().ok());
    if let Err(refused) = check_post(&ui, &ctx, presented).await {
        return refused;
    }
    let person = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["person"].as_str().map(str::to_string))
        .unwrap_or_default();
    let answer = match api::parse_id(person.trim()) {
        Ok(_) => json!({"ok": true}),
        Err(e) => json!({"ok": false, "error": e.error, "message": e.message}),
    };
    Json(answer).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields_become_the_api_body() {
        let register = ACTIONS.iter().find(|a| a.name == "register").unwrap();
        let form: BTreeMap<String, String> = [
            ("csrf", "x"),
            ("deregistration", " 310104:1 "),
            ("household", "7"),
            ("relation", ""),
            ("wait", "1"),
            ("extra", "y"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            body_of(register, &form),
            json!({"deregistration": "310104:1", "household": 7, "wait_ms": REGISTER_WAIT_MS})
        );
        let permit = ACTIONS.iter().find(|a| a.name == "permit").unwrap();
        let form: BTreeMap<String, String> = [("valid_days", "forty")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(body_of(permit, &form), json!({"valid_days": "forty"}));
    }
}
