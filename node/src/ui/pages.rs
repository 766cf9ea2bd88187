//! The console's public pages (no sign-in): the start page, a transfer's progress (办理进度),
//! the network, fraud proofs, and the bureau's daily reconciliation.

use axum::extract::{Path, Query, State as AxumState};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use hukou_protocol::BureauCode;
use hukou_protocol::audit::{self, DailyReconciliation, LogItem};
use hukou_protocol::calendar::{Date, china_date};
use hukou_protocol::{Category, SignedEntry};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use super::{
    Ctx, Lang, Ui, bureau_names, china_time, deadline_text, error_box, kind_label, network_config,
    page, raw, s, short_ref, vocab_label,
};
use crate::api::{self, ApiError};
use crate::service::now_ms;

/// Days the reconciliation chart shows.
const CHART_DAYS: i64 = 30;
/// Entries read from the store per range call while replaying for the reconciliation.
const REPLAY_CHUNK_ENTRIES: usize = 4096;

pub async fn home(AxumState(ui): AxumState<Ui>, ctx: Ctx) -> Response {
    let l = ctx.lang;
    let body = html! {
        h1 { (l.t("办理进度查询", "Transfer progress")) }
        p { (l.t("输入准迁证、迁出或落户记录的编号（如 310104:3），查看迁移的每一步、办理局、时间、期限与终局状态。",
                 "Enter the reference of a permit, deregistration or registration (e.g. 310104:3) to see each step of the transfer, the bureau, when, its deadline and finality.")) }
        form.card.inline-form #lookup method="get" action="/ui/transfer" {
            label for="ref" { (l.t("记录编号", "Reference")) }
            input #ref name="ref" required placeholder="310104:3";
            button type="submit" { (l.t("查询", "Look up")) }
        }
        ul.links {
            li { a href="/ui/window" { (l.t("户籍窗口（需登录）：待办、准迁证、迁出、落户……", "The window (sign-in): inbox, permits, deregistrations, registrations…")) } }
            li { a href="/ui/network" { (l.t("网络：各局、连接、日志与证书", "Network: bureaus, connections, logs and certificates")) } }
            li { a href="/ui/reconciliation" { (l.t("本局每日对账", "This bureau's daily reconciliation")) } }
        }
    };
    page(&ui, &ctx, StatusCode::OK, l.t("办理进度", "Progress"), body).await
}

#[derive(Deserialize)]
pub struct RefQuery {
    #[serde(rename = "ref")]
    reference: String,
}

/// The look-up form: on to the progress page of the reference.
pub async fn transfer_lookup(Query(q): Query<RefQuery>) -> Response {
    let r = q.reference.trim();
    let clean: String = r
        .chars()
        .filter(|c| c.is_ascii_hexdigit() || *c == ':')
        .collect();
    Redirect::to(&format!("/ui/transfer/{clean}")).into_response()
}

/// The status of a transfer (`transfer_json`'s `status`).
fn status_label(l: Lang, status: &str) -> &'static str {
    match status {
        "awaiting-origin" => l.t("待迁出地办理迁出", "awaiting the origin's deregistration"),
        "refused" => l.t("迁出地不予迁出", "refused by the origin"),
        "revoked" => l.t("准迁证已撤销", "permit revoked"),
        "awaiting-registration" => l.t(
            "已迁出，待迁入地落户",
            "deregistered, awaiting registration",
        ),
        "registered" => l.t("已落户", "registered"),
        _ => l.t("未知", "unknown"),
    }
}

/// The progress of a transfer: the same facts as `GET /v1/transfers/{ref}`.
pub async fn transfer(
    AxumState(ui): AxumState<Ui>,
    ctx: Ctx,
    Path(reference): Path<String>,
) -> Response {
    let l = ctx.lang;
    let title = l.t("办理进度", "Transfer progress");
    let t = match api::call(&ui.api, &format!("/v1/transfers/{reference}"), Value::Null).await {
        Ok(t) => t,
        Err(e) => {
            let body = html! {
                h1 { (title) }
                p { (l.t("记录编号", "Reference")) "：" code { (reference) } }
                (error_box(l, &e))
                p { a href="/ui/" { (l.t("重新查询", "Look up another")) } }
            };
            return page(&ui, &ctx, e.status, title, body).await;
        }
    };
    let names = bureau_names(&ui).await;
    let name = |code: &str| names.get(code).cloned().unwrap_or_else(|| code.to_string());
    let is_final = t["final"].as_bool().unwrap_or(false);
    let status = s(&t, "status");
    let category = vocab_label(l, s(&t, "category"), Category::parse, Category::label_zh);
    let steps = t["steps"].as_array().cloned().unwrap_or_default();
    let body = html! {
        h1 { (title) }
        @if !is_final { span.hidden data-refresh="2" {} }
        dl.facts {
            dt { (l.t("准迁证", "Permit")) } dd { code #permit-ref { (s(&t, "permit")) } }
            dt { (l.t("迁出地", "Origin")) } dd { (name(s(&t, "origin"))) " (" (s(&t, "origin")) ")" }
            dt { (l.t("迁入地", "Destination")) } dd { (name(s(&t, "destination"))) " (" (s(&t, "destination")) ")" }
            dt { (l.t("迁移类别", "Category")) } dd { (category) }
            dt { (l.t("状态", "Status")) } dd #status data-status=(status) { (status_label(l, status)) }
            dt { (l.t("终局", "Finality")) }
            dd #finality data-final=(is_final) {
                @if is_final {
                    span.badge.final { (l.t("已终局：每一步均有见证证书", "Final: every step is covered by a witness certificate")) }
                } @else {
                    span.badge.pending { (l.t("尚未终局（页面每 2 秒刷新）", "Not final yet (this page reloads every 2 s)")) }
                }
            }
        }
        table.steps {
            thead { tr {
                th { (l.t("步骤", "Step")) }
                th { (l.t("办理局", "Bureau")) }
                th { (l.t("时间", "When")) }
                th { (l.t("期限", "Deadline")) }
                th { (l.t("终局", "Final")) }
                th { (l.t("记录", "Entry")) }
            } }
            tbody {
                @for step in &steps {
                    @let pending = step["pending"].as_bool().unwrap_or(false);
                    tr.pending[pending] data-step=(s(step, "step")) {
                        td { (kind_label(l, s(step, "step")))
                             @if pending { " " span.badge.pending { (l.t("待办", "pending")) } } }
                        td { (name(s(step, "bureau"))) " (" (s(step, "bureau")) ")" }
                        td { @match step["time_ms"].as_u64() {
                            Some(ms) => (china_time(ms)),
                            None => { @if pending { "—" } @else { (l.t("（未记录时间）", "(time not tracked)")) } }
                        } }
                        td { @if step["deadline"].is_object() { (deadline_text(l, &step["deadline"], pending)) } @else { "—" } }
                        td { @match step["final"].as_bool() {
                            Some(true) => span.badge.final { (l.t("是", "yes")) },
                            Some(false) => span.badge.pending { (l.t("否", "no")) },
                            None => "—",
                        } }
                        td { @if let Some(r) = step["ref"].as_str() { code { (short_ref(r)) } } @else { "—" } }
                    }
                }
            }
        }
        p.note { (l.t("本页不显示身份证号码或姓名。", "This page shows no ID number and no name.")) }
    };
    page(&ui, &ctx, StatusCode::OK, title, body).await
}

/// The network: members, connections, logs, certificates, replication lag, and the
/// configuration in force with its history (`network_config`).
pub async fn network(AxumState(ui): AxumState<Ui>, ctx: Ctx) -> Response {
    let l = ctx.lang;
    let title = l.t("网络", "Network");
    let (health, logs) = match (
        api::call(&ui.api, "/healthz", Value::Null).await,
        api::call(&ui.api, "/v1/logs", Value::Null).await,
    ) {
        (Ok(h), Ok(g)) => (h, g),
        (Err(e), _) | (_, Err(e)) => {
            return page(&ui, &ctx, e.status, title, error_box(l, &e)).await;
        }
    };
    let me = ui.api.service.me().to_string();
    let connected: Vec<String> = health["peers_connected"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let lag: std::collections::HashMap<String, u64> = {
        let state = ui.api.service.state().await;
        state
            .ledger
            .membership()
            .members()
            .map(|m| {
                let held = state.ledger.log_len(m.code);
                let reported = state.peer_lengths.get(&m.code).copied().unwrap_or(held);
                (m.code.to_string(), reported.saturating_sub(held))
            })
            .collect()
    };
    let rows = logs["logs"].as_array().cloned().unwrap_or_default();
    let (waiting, witnesses) = ui.api.service.finality_report().await;
    let body = html! {
        h1 { (title) }
        dl.facts {
            dt { (l.t("网络名称", "Network")) } dd { (s(&health, "network")) }
            dt { (l.t("本节点", "This node")) } dd { (me) " · " (s(&health, "status")) }
            dt { (l.t("成员数", "Members")) } dd { (health["members"]) }
            dt { (l.t("已连接", "Connected")) } dd #connected-count { (connected.len()) " / " (rows.len().saturating_sub(1)) }
            dt { (l.t("欺诈证明", "Fraud proofs")) } dd { a href="/ui/fraud-proofs" { (health["fraud_proofs"]) } }
        }
        table #members {
            thead { tr {
                th { (l.t("代码", "Code")) }
                th { (l.t("公安局", "Bureau")) }
                th { (l.t("连接", "Connected")) }
                th.num { (l.t("日志条数", "Log size")) }
                th.num { (l.t("最新证书覆盖", "Latest certificate size")) }
                th.num { (l.t("已终局", "Final")) }
                th.num { (l.t("复制滞后", "Replication lag")) }
            } }
            tbody {
                @for m in &rows {
                    @let code = s(m, "bureau");
                    tr data-bureau=(code) {
                        td { code { (code) } }
                        td { (s(m, "name")) }
                        td { @if code == me { span.badge { (l.t("本节点", "this node")) } }
                             @else if connected.iter().any(|c| c == code) { span.badge.final { (l.t("已连接", "connected")) } }
                             @else { span.badge.pending { (l.t("未连接", "not connected")) } } }
                        td.num { (m["length"]) }
                        td.num { @match m["certificate_size"].as_u64() { Some(n) => (n), None => "—" } }
                        td.num { (m["final_size"]) }
                        td.num { @if code == me { "—" } @else { (lag.get(code).copied().unwrap_or(0)) } }
                    }
                }
            }
        }
        p.note { (l.t("复制滞后：其他节点报告而本节点尚未持有的条数。证书：法定多数见证人联署的检查点，其覆盖的记录即为终局。",
                      "Replication lag: entries peers report that this node does not hold yet. Certificate: a checkpoint cosigned by a quorum of witnesses; the entries it covers are final.")) }
        (super::waiting::section(l, &waiting, &witnesses))
        (network_config::section(l, &ui.api.service.epochs()))
    };
    page(&ui, &ctx, StatusCode::OK, title, body).await
}

/// The fraud proofs and checkpoint forks this node holds.
pub async fn fraud_proofs(AxumState(ui): AxumState<Ui>, ctx: Ctx) -> Response {
    let l = ctx.lang;
    let title = l.t("欺诈证明", "Fraud proofs");
    let proofs = api::call(&ui.api, "/v1/fraud-proofs", Value::Null)
        .await
        .map(|v| v["fraud_proofs"].as_array().cloned().unwrap_or_default())
        .unwrap_or_default();
    let forks = api::call(&ui.api, "/v1/checkpoint-forks", Value::Null)
        .await
        .map(|v| {
            v["checkpoint_forks"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .unwrap_or_default();
    let body = html! {
        h1 { (title) }
        @if proofs.is_empty() && forks.is_empty() {
            p #no-fraud { (l.t("本节点未持有任何欺诈证明。", "This node holds no fraud proof.")) }
        }
        @if !proofs.is_empty() {
            h2 { (l.t("同一位置的两条记录（双签）", "Two entries at one position (equivocation)")) }
            table { thead { tr { th { (l.t("签署局", "Author")) } th.num { "seq" } th { (l.t("记录一", "First")) } th { (l.t("记录二", "Second")) } } }
                tbody { @for p in &proofs { tr {
                    td { (p["author"].as_str().unwrap_or("")) } td.num { (p["seq"]) }
                    td { code { (short_ref(s(p, "first"))) } } td { code { (short_ref(s(p, "second"))) } }
                } } } }
            p.note { (l.t("完整证据（十六进制）见 JSON 接口 /v1/fraud-proofs。", "The full evidence (hex) is at the JSON route /v1/fraud-proofs.")) }
        }
        @if !forks.is_empty() {
            h2 { (l.t("同一大小的两个检查点（分叉）", "Two checkpoints of one size (fork)")) }
            table { thead { tr { th { (l.t("日志", "Log")) } th.num { (l.t("大小", "Size")) } th { (l.t("根", "Roots")) } } }
                tbody { @for f in &forks { tr {
                    td { (f["log"].as_str().unwrap_or("")) } td.num { (f["size"]) }
                    td { @for r in f["roots"].as_array().cloned().unwrap_or_default() { code { (r.as_str().map(|x| &x[..x.len().min(16)]).unwrap_or("")) "…" } " " } }
                } } } }
            p.note { (l.t("完整证据见 JSON 接口 /v1/checkpoint-forks。", "The full evidence is at the JSON route /v1/checkpoint-forks.")) }
        }
    };
    page(&ui, &ctx, StatusCode::OK, title, body).await
}

#[derive(Deserialize)]
pub struct DayQuery {
    date: Option<String>,
    days: Option<i64>,
}

/// The daily reconciliation of this bureau, every date, from `hukou_protocol::audit::audit`
/// replaying the logs this node holds (the auditor's own pure function: the console and
/// `hukou audit` count the same way). Dates without acts carry the pending balances over.
async fn reconciliation_rows(ui: &Ui) -> Result<Vec<DailyReconciliation>, ApiError> {
    let me = ui.api.service.me();
    let epochs = ui.api.service.epochs();
    let store = ui.api.service.store().clone();
    let calendar = ui.api.service.calendar();
    let now = now_ms();
    let codes: Vec<BureauCode> = store.logs().into_iter().map(|(code, _)| code).collect();
    let report = tokio::task::spawn_blocking(move || {
        let mut logs: Vec<(BureauCode, Vec<LogItem>)> = Vec::new();
        for code in codes {
            let mut items = Vec::new();
            let mut from = 0u64;
            loop {
                let chunk: Vec<SignedEntry> = store.range(code, from, REPLAY_CHUNK_ENTRIES)?;
                if chunk.is_empty() {
                    break;
                }
                from += chunk.len() as u64;
                // Entries in the store were verified before they were stored.
                items.extend(chunk.into_iter().map(|entry| LogItem::Entry {
                    entry,
                    signature_valid: true,
                }));
            }
            logs.push((code, items));
        }
        let logs = logs
            .into_iter()
            .map(|(code, items)| (code, items.into_iter()));
        Ok::<_, crate::store::StoreError>(audit::audit(&epochs, logs, &[], &[], &calendar, now))
    })
    .await
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            format!("the reconciliation task failed: {e}"),
        )
    })?
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "storage_failed",
            e.to_string(),
        )
    })?;
    Ok(report
        .reconciliation
        .into_iter()
        .filter(|r| r.bureau == Some(me))
        .collect())
}

/// The rows of `days` dates ending at `last`, one per date: a date without acts has zero counts
/// and the pending balances of the day before.
fn daily(rows: &[DailyReconciliation], last: Date, days: i64) -> Vec<DailyReconciliation> {
    let first = Date::from_days(last.to_days() - (days - 1));
    let mut carried = DailyReconciliation::default();
    for r in rows.iter().filter(|r| r.date.is_some_and(|d| d < first)) {
        carried = r.clone();
    }
    let mut out = Vec::new();
    for n in 0..days {
        let date = Date::from_days(first.to_days() + n);
        match rows.iter().find(|r| r.date == Some(date)) {
            Some(r) => {
                carried = r.clone();
                out.push(r.clone());
            }
            None => out.push(DailyReconciliation {
                date: Some(date),
                bureau: carried.bureau,
                pending_answers: carried.pending_answers,
                pending_registrations: carried.pending_registrations,
                ..DailyReconciliation::default()
            }),
        }
    }
    out
}

/// The columns of the reconciliation: CSV name, Chinese and English labels, value.
type Column = (
    &'static str,
    &'static str,
    &'static str,
    fn(&DailyReconciliation) -> u64,
);

const COLUMNS: &[Column] = &[
    (
        "registrations_in",
        "落户（迁入）",
        "Registrations (in)",
        |r| r.registrations_in,
    ),
    ("removals", "迁出", "Deregistrations (out)", |r| {
        r.removals
    }),
    ("permits_issued", "签发准迁证", "Permits issued", |r| {
        r.permits_issued
    }),
    (
        "permits_received",
        "收到准迁证",
        "Permits received",
        |r| r.permits_received,
    ),
    (
        "removals_received",
        "收到迁出",
        "Deregistrations received",
        |r| r.removals_received,
    ),
    ("refusals", "不予迁出", "Refusals", |r| r.refusals),
    ("revocations", "撤销准迁证", "Revocations", |r| {
        r.revocations
    }),
    ("enrolments", "户籍登记", "Enrolments", |r| r.enrolments),
    ("births", "出生登记", "Births", |r| r.births),
    ("cancellations", "注销", "Cancellations", |r| {
        r.cancellations
    }),
    (
        "pending_answers",
        "待迁出（日终）",
        "Pending deregistrations (end of day)",
        |r| r.pending_answers,
    ),
    (
        "pending_registrations",
        "待落户（日终）",
        "Pending registrations (end of day)",
        |r| r.pending_registrations,
    ),
];

fn parse_date(text: Option<&str>) -> Date {
    text.and_then(|d| d.parse().ok())
        .unwrap_or_else(|| china_date(now_ms()))
}

pub async fn reconciliation(
    AxumState(ui): AxumState<Ui>,
    ctx: Ctx,
    Query(q): Query<DayQuery>,
) -> Response {
    let l = ctx.lang;
    let title = l.t("每日对账", "Daily reconciliation");
    let rows = match reconciliation_rows(&ui).await {
        Ok(r) => r,
        Err(e) => return page(&ui, &ctx, e.status, title, error_box(l, &e)).await,
    };
    let date = parse_date(q.date.as_deref());
    let days = daily(&rows, date, CHART_DAYS);
    let today = days.last().cloned().unwrap_or_default();
    let body = html! {
        h1 { (title) }
        form.inline-form method="get" action="/ui/reconciliation" {
            label for="date" { (l.t("日期", "Date")) }
            input #date type="date" name="date" value=(date.to_string());
            button type="submit" { (l.t("查看", "Show")) }
        }
        h2 { (date.to_string()) " · " (l.t("本局当日", "this bureau's day")) }
        table #day {
            thead { tr { th { (l.t("项目", "Item")) } th.num { (l.t("数量", "Count")) } } }
            tbody { @for (name, zh, en, value) in COLUMNS {
                tr data-column=(name) { td { (l.t(zh, en)) } td.num { (value(&today)) } }
            } }
        }
        p {
            a #csv-day href={ "/ui/reconciliation.csv?date=" (date.to_string()) } download { (l.t("下载当日 CSV", "Download the day (CSV)")) }
            " · "
            a #csv-30 href={ "/ui/reconciliation.csv?date=" (date.to_string()) "&days=30" } download { (l.t("下载近 30 日 CSV", "Download 30 days (CSV)")) }
        }
        h2 { (l.t("近 30 日", "The last 30 days")) }
        (chart(l, &days))
        p.note { (l.t("由审计程序的同一函数（hukou_protocol::audit）重放本节点持有的全部日志得出；与 hukou audit 的每日对账一致。",
                      "Computed by the auditor's own function (hukou_protocol::audit) replaying every log this node holds; it agrees with the daily reconciliation of hukou audit.")) }
    };
    page(&ui, &ctx, StatusCode::OK, title, body).await
}

/// Bars of registrations (in) and deregistrations (out) per day, and a line of what is pending
/// at the end of each day; server-rendered SVG, styled by classes only.
fn chart(l: Lang, days: &[DailyReconciliation]) -> Markup {
    const W: f64 = 900.0;
    const H: f64 = 240.0;
    const LEFT: f64 = 40.0;
    const BOTTOM: f64 = 30.0;
    let pending = |r: &DailyReconciliation| r.pending_answers + r.pending_registrations;
    let top = days
        .iter()
        .map(|r| r.registrations_in.max(r.removals).max(pending(r)))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let slot = (W - LEFT) / days.len().max(1) as f64;
    let bar = (slot / 3.0).max(1.0);
    let y = |v: u64| (H - BOTTOM) - (v as f64 / top) * (H - BOTTOM - 10.0);
    let mut svg = String::new();
    use std::fmt::Write;
    let _ = write!(
        svg,
        r#"<svg id="chart" class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{}">"#,
        l.t(
            "近 30 日迁入、迁出与待办",
            "In, out and pending over 30 days"
        )
    );
    let _ = write!(
        svg,
        r#"<line class="axis" x1="{LEFT}" y1="{0}" x2="{W}" y2="{0}"/><text class="label" x="{1}" y="{2}">{top}</text><text class="label" x="{1}" y="{0}">0</text>"#,
        H - BOTTOM,
        LEFT - 6.0,
        y(top as u64) + 4.0
    );
    let mut line = Vec::new();
    for (i, r) in days.iter().enumerate() {
        let x = LEFT + i as f64 * slot + slot / 6.0;
        for (k, (v, class)) in [(r.registrations_in, "in"), (r.removals, "out")]
            .into_iter()
            .enumerate()
        {
            let top_y = y(v);
            let _ = write!(
                svg,
                r#"<rect class="bar {class}" x="{:.1}" y="{top_y:.1}" width="{bar:.1}" height="{:.1}"><title>{} {v}</title></rect>"#,
                x + k as f64 * bar,
                (H - BOTTOM) - top_y,
                r.date.map(|d| d.to_string()).unwrap_or_default()
            );
        }
        line.push(format!("{:.1},{:.1}", x + bar, y(pending(r))));
        if i % 5 == 0 || i + 1 == days.len() {
            let label = r
                .date
                .map(|d| format!("{:02}-{:02}", d.month(), d.day()))
                .unwrap_or_default();
            let _ = write!(
                svg,
                r#"<text class="label" x="{:.1}" y="{:.1}">{label}</text>"#,
                x - 4.0,
                H - 10.0
            );
        }
    }
    let _ = write!(
        svg,
        r#"<polyline class="pending" points="{}"/></svg>"#,
        line.join(" ")
    );
    html! {
        figure {
            (raw(svg))
            figcaption.legend {
                span.key.in {} (l.t("落户（迁入）", "registrations (in)"))
                span.key.out {} (l.t("迁出", "deregistrations (out)"))
                span.key.pending {} (l.t("日终待办（待迁出 + 待落户）", "pending at the end of the day (answers + registrations)"))
            }
        }
    }
}

pub async fn reconciliation_csv(
    AxumState(ui): AxumState<Ui>,
    Query(q): Query<DayQuery>,
) -> Response {
    let rows = match reconciliation_rows(&ui).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let date = parse_date(q.date.as_deref());
    let days = q.days.unwrap_or(1).clamp(1, 366);
    let me = ui.api.service.me();
    let mut csv = String::from("date,bureau");
    for (name, ..) in COLUMNS {
        csv.push(',');
        csv.push_str(name);
    }
    csv.push('\n');
    for r in daily(&rows, date, days) {
        csv.push_str(&format!(
            "{},{me}",
            r.date.map(|d| d.to_string()).unwrap_or_default()
        ));
        for (_, _, _, value) in COLUMNS {
            csv.push_str(&format!(",{}", value(&r)));
        }
        csv.push('\n');
    }
    let file = if days == 1 {
        format!("reconciliation-{me}-{date}.csv")
    } else {
        format!("reconciliation-{me}-{date}-{days}d.csv")
    };
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
        ],
        csv,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_days_carry_the_pending_balances() {
        let d = |s: &str| s.parse::<Date>().unwrap();
        let rows = vec![DailyReconciliation {
            date: Some(d("2026-11-20")),
            registrations_in: 2,
            pending_registrations: 3,
            ..DailyReconciliation::default()
        }];
        let days = daily(&rows, d("2026-11-22"), 4);
        assert_eq!(days.len(), 4);
        assert_eq!(days[0].date, Some(d("2026-11-19")));
        assert_eq!(days[0].pending_registrations, 0);
        assert_eq!(days[1].registrations_in, 2);
        assert_eq!(days[3].registrations_in, 0);
        assert_eq!(days[3].pending_registrations, 3);
    }
}
