//! The HTTP/JSON API (axum): clerk writes, look-ups, the inbox, logs and proofs, health and
//! metrics. `docs/API.md` documents every route with examples.
//!
//! - Write calls, and look-ups by ID number, need `Authorization: Bearer <token>`.
//! - ID numbers travel only in request bodies (POST), never in URLs, which end up in logs.
//! - Every error is JSON `{"error": NAME, "message": ...}`: the rulebook's rule name for a
//!   refused entry (409), a request fault for bad input (400/404), `unauthorized` (401),
//!   `recovering` (503). Bad input is never a 500.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::{Body as HttpBody, Bytes};
use axum::extract::{FromRequest, Path, Query, Request, State as AxumState};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hukou_protocol::calendar::{Calendar, china_date};
use hukou_protocol::checkpoint::{Certificate, SignedCheckpoint};
use hukou_protocol::entry::{Body, Placement};
use hukou_protocol::id::CitizenId;
use hukou_protocol::rules::{DropReason, PermitStatus};
use hukou_protocol::{
    BureauCode, CancellationReason, Category, Digest, EntryRef, HouseholdId, Ledger, PersonTag,
    RefusalReason, Relation, SignedEntry,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::finality::Waiting;
use crate::service::{Service, State, WriteError, Written, now_ms, resolve_ref};

mod batch;
pub mod config;
mod lines;
mod serve;

pub use serve::serve;

// Limits of the API's input: what one client can make the node hold, or wait for. Each is
// enforced as the bytes arrive, never after buffering them (docs/API.md, "Limits").

/// Largest JSON request body. A write's body becomes one entry of at most
/// `ENTRY_BYTES_MAX` (4 KiB), and the largest body any route takes is a few hundred bytes; a
/// bigger one is refused (`413 body_too_large`) as soon as its declared length, or the bytes
/// read so far, pass this.
const JSON_BODY_BYTES_MAX: usize = 8 * 1024;
/// Longest a JSON request body may take to arrive after its head: a clerk's body is one small
/// packet, so a client that trickles one holds a connection for nothing (`408 body_timeout`).
const JSON_BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest body of a streamed NDJSON request (`/v1/enrol/bulk`, `/v1/batch`). Such bodies are
/// read a line at a time, so memory does not grow with them; this bounds how long one request
/// may go on: 1 GiB is some fifteen million enrolment lines, more than a city's register.
const STREAM_BODY_BYTES_MAX: usize = 1 << 30;
/// Longest wait for the next part of a streamed NDJSON body (`body_timeout`).
const STREAM_BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Lines enrolled per write in a bulk import: one flush per batch.
const BULK_BATCH_LINES: usize = 2_000;
/// How long a bulk import waits for the claims of one batch to become final.
const BULK_CLAIM_WAIT_MS: u64 = 30_000;
/// Longest accepted line of a bulk import.
const BULK_LINE_BYTES_MAX: usize = 4 * 1024;
/// Most API connections open at once ([`serve`]). A bureau's clerks, consoles and scripts need
/// tens; each connection costs a file descriptor (often 1,024 for the whole process, shared
/// with the store and the peers) and up to [`API_READ_BUFFER_BYTES_MAX`] of memory.
pub const API_CONNECTIONS_MAX: usize = 512;
/// Longest wait for a request's head, counted from the connection's opening or the previous
/// answer. A client on the bureau's network sends one in milliseconds; a connection that has
/// sent no complete head for this long (half a request, or an idle keep-alive) is closed.
pub const API_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest read buffer of one API connection, and so the largest request head (a clerk's is
/// well under 2 KiB). Bounds the memory of [`API_CONNECTIONS_MAX`] connections to 32 MiB.
pub const API_READ_BUFFER_BYTES_MAX: usize = 64 * 1024;
/// Longest the API waits, at shutdown, for connections to finish the request in progress.
pub const API_SHUTDOWN_WAIT: Duration = Duration::from_secs(5);
/// Most entries one log-range call returns.
const RANGE_ENTRIES_MAX: u64 = hukou_protocol::limits::BATCH_ENTRIES_MAX as u64 * 8;
/// Default validity of a permit, in days. 准迁证 are typically valid for 40 days.
const PERMIT_VALID_DAYS_DEFAULT: u64 = 40;
const DAY_MS: u64 = 86_400_000;

/// Shared state of the API handlers.
#[derive(Clone)]
pub struct Api {
    pub service: Service,
    pub token: Arc<String>,
    pub metrics: Arc<ApiMetrics>,
    pub peers: Arc<dyn Fn() -> Vec<BureauCode> + Send + Sync>,
    /// This node's overlay neighbours (`crate::overlay`), for `GET /healthz`.
    pub overlay: Arc<dyn Fn() -> Vec<BureauCode> + Send + Sync>,
    /// The network's counters, for `GET /metrics`.
    pub net_stats: Arc<dyn Fn() -> crate::net::NetStats + Send + Sync>,
}

/// Latency histogram of API requests.
pub struct ApiMetrics {
    /// Upper bounds of the buckets, in seconds.
    pub bounds_s: Vec<f64>,
    pub buckets: Vec<AtomicU64>,
    pub count: AtomicU64,
    pub sum_us: AtomicU64,
}

impl Default for ApiMetrics {
    fn default() -> Self {
        let bounds_s = vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
        ];
        let buckets = bounds_s.iter().map(|_| AtomicU64::new(0)).collect();
        ApiMetrics {
            bounds_s,
            buckets,
            count: AtomicU64::new(0),
            sum_us: AtomicU64::new(0),
        }
    }
}

/// An API error: status, stable name, message.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub error: String,
    pub message: String,
    /// Why an entry is not final yet (`deregistration_not_final`, `claim_not_final`), when this
    /// node saw its log wait for its committee: the `waiting` field beside `error`.
    pub waiting: Option<Box<Waiting>>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        error: impl Into<String>,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            error: error.into(),
            message: message.into(),
            waiting: None,
        }
    }
    fn bad(error: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, error, message)
    }
    fn not_found(error: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, error, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({"error": self.error, "message": self.message});
        if let Some(waiting) = &self.waiting {
            body["waiting"] = json!(waiting);
        }
        (self.status, Json(body)).into_response()
    }
}

impl From<WriteError> for ApiError {
    fn from(e: WriteError) -> ApiError {
        match e {
            WriteError::Rule(v) => ApiError::new(StatusCode::CONFLICT, v.name(), v.to_string()),
            WriteError::BadRequest { error, message } => {
                let status = if error == "unknown_reference" {
                    StatusCode::NOT_FOUND
                } else {
                    StatusCode::BAD_REQUEST
                };
                ApiError::new(status, error, message)
            }
            WriteError::Syncing => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "recovering", e.to_string())
            }
            WriteError::NotFinal(_, ref waiting) => ApiError {
                waiting: waiting.clone(),
                ..ApiError::new(
                    StatusCode::CONFLICT,
                    "deregistration_not_final",
                    e.to_string(),
                )
            },
            WriteError::ClaimNotFinal(_, ref waiting) => ApiError {
                waiting: waiting.clone(),
                ..ApiError::new(StatusCode::CONFLICT, "claim_not_final", e.to_string())
            },
            WriteError::ArbiterUnreachable { .. } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "arbiter_unreachable",
                e.to_string(),
            ),
            WriteError::ClaimRefused { error, message } => {
                ApiError::new(StatusCode::CONFLICT, error, message)
            }
            WriteError::Store(s) => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "storage_failed",
                s.to_string(),
            ),
        }
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// A JSON body whose rejections are JSON errors naming the fault.
pub struct ApiJson<T>(pub T);

fn body_too_large(what: String) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("{what}; at most {JSON_BODY_BYTES_MAX} bytes"),
    )
}

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        // A declared length over the limit is refused before a byte of the body is read; an
        // undeclared (chunked) one is cut off by the router's `DefaultBodyLimit` as it arrives.
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if let Some(length) = declared
            && length > JSON_BODY_BYTES_MAX as u64
        {
            return Err(body_too_large(format!("request body is {length} bytes")));
        }
        let read = tokio::time::timeout(JSON_BODY_READ_TIMEOUT, Bytes::from_request(req, state))
            .await
            .map_err(|_| {
                ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "body_timeout",
                    format!(
                        "the request body did not arrive within {} s",
                        JSON_BODY_READ_TIMEOUT.as_secs()
                    ),
                )
            })?;
        let bytes = read.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                body_too_large("request body is larger".to_string())
            } else {
                ApiError::bad("bad_body", format!("could not read the request body: {e}"))
            }
        })?;
        if bytes.len() > JSON_BODY_BYTES_MAX {
            return Err(body_too_large(format!(
                "request body is {} bytes",
                bytes.len()
            )));
        }
        serde_json::from_slice(&bytes).map(ApiJson).map_err(|e| {
            ApiError::bad(
                "bad_json",
                format!("request body is not valid JSON for this call: {e}"),
            )
        })
    }
}

/// Builds the router.
pub fn router(api: Api) -> Router {
    let writes = Router::new()
        .route("/v1/enrol", post(enrol))
        .route("/v1/enrol/bulk", post(enrol_bulk))
        .route("/v1/batch", post(batch::batch))
        .route("/v1/birth", post(birth))
        .route("/v1/permits", post(issue_permit))
        .route("/v1/permits/revoke", post(revoke_permit))
        .route("/v1/deregister", post(deregister))
        .route("/v1/refuse", post(refuse))
        .route("/v1/register", post(register))
        .route("/v1/cancel", post(cancel))
        .route("/v1/head-change", post(head_change))
        .route("/v1/person", post(person_show))
        .route("/v1/person/certificate", post(person_certificate))
        .route(
            "/v1/config",
            post(config::submit).layer(axum::extract::DefaultBodyLimit::max(
                config::CONFIG_BODY_BYTES_MAX,
            )),
        )
        .route_layer(middleware::from_fn_with_state(api.clone(), require_token));
    let reads = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/v1/config", get(config::show))
        .route("/v1/config/log", get(config::log))
        // Read-only: what a proposal would do (it changes nothing), for `hukou config propose`.
        .route(
            "/v1/config/draft",
            post(config::draft).layer(axum::extract::DefaultBodyLimit::max(
                config::CONFIG_BODY_BYTES_MAX,
            )),
        )
        .route("/v1/inbox", get(inbox))
        .route("/v1/transfers/{reference}", get(transfer_show))
        .route("/v1/logs", get(logs))
        .route("/v1/logs/{code}/entries", get(log_entries))
        .route("/v1/logs/{code}/raw", get(log_raw))
        .route("/v1/logs/{code}/inclusion", get(inclusion))
        .route("/v1/logs/{code}/consistency", get(consistency))
        .route("/v1/logs/{code}/certificate", get(log_certificate))
        .route("/v1/logs/{code}/checkpoint", get(log_checkpoint))
        .route("/v1/finality", get(finality))
        .route("/v1/fraud-proofs", get(fraud_proofs))
        .route("/v1/revoked", get(revoked))
        .route("/v1/refusals", get(refusals))
        .route("/v1/checkpoint-forks", get(checkpoint_forks));
    writes
        .merge(reads)
        .fallback(|| async {
            ApiError::not_found("no_such_route", "no such route; see docs/API.md")
        })
        .layer(middleware::from_fn_with_state(api.clone(), observe))
        // Every body read by an extractor is JSON; the NDJSON routes read theirs line by line
        // (`lines`), within their own limits.
        .layer(axum::extract::DefaultBodyLimit::max(JSON_BODY_BYTES_MAX))
        .merge(crate::ui::router(api.clone())) // web console under /ui/: HTML, outside `observe`
        .with_state(api)
}

async fn observe(AxumState(api): AxumState<Api>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let response = next.run(req).await;
    let elapsed = started.elapsed();
    let m = &api.metrics;
    let s = elapsed.as_secs_f64();
    if let Some(i) = m.bounds_s.iter().position(|b| s <= *b) {
        m.buckets[i].fetch_add(1, Ordering::Relaxed);
    }
    m.count.fetch_add(1, Ordering::Relaxed);
    m.sum_us
        .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    json_errors(response).await
}

/// Makes every error JSON: axum's own rejections (a malformed query string, a wrong method)
/// answer in plain text or with an empty body; they are rewritten as `{"error", "message"}`.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, JSON_BODY_BYTES_MAX)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let error = match status {
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        s if s.is_server_error() => "internal_error",
        _ => "bad_request",
    };
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("request refused")
            .to_string()
    } else {
        text
    };
    let mut fixed = ApiError::new(status, error, message).into_response();
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            fixed.headers_mut().insert(name.clone(), value.clone());
        }
    }
    fixed
}

async fn require_token(
    AxumState(api): AxumState<Api>,
    headers: HeaderMap,
    req: Request,
    next: Next,
) -> Response {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let message = match presented {
        Some(t) if constant_time_eq(t.as_bytes(), api.token.as_bytes()) => {
            return next.run(req).await;
        }
        Some(_) => "wrong bearer token",
        None => "this call needs the node's clerk token: Authorization: Bearer <token>",
    };
    // Read (and drop) what a small body the client is still sending, briefly, before answering:
    // a connection closed under a client mid-upload reaches it as a reset, not as this answer.
    // Not when the client asked to hear first (`Expect: 100-continue`): reading would invite it
    // to upload.
    let expects_continue = headers
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if !expects_continue {
        let drain = axum::body::to_bytes(req.into_body(), UNAUTHORIZED_DRAIN_BYTES_MAX);
        let _ = tokio::time::timeout(UNAUTHORIZED_DRAIN_WAIT, drain).await;
    }
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).into_response()
}

/// Most of a refused (unauthorised) request's body read before answering: a JSON write's limit.
const UNAUTHORIZED_DRAIN_BYTES_MAX: usize = 8 * 1024;
/// Longest an unauthorised request's body is waited for before answering anyway.
const UNAUTHORIZED_DRAIN_WAIT: Duration = Duration::from_millis(500);

/// Compares without leaking, through timing, how many leading bytes matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(crate) fn parse_id(text: &str) -> ApiResult<CitizenId> {
    CitizenId::parse(text).map_err(|e| ApiError::bad(e.name(), format!("{text:?}: {e}")))
}

fn parse_vocab<T>(text: &str, parse: fn(&str) -> Result<T, String>) -> ApiResult<T> {
    parse(text).map_err(|m| ApiError::bad("bad_vocabulary", m))
}

fn written_json(w: &Written) -> Value {
    let e = w.entry.entry();
    json!({
        "ref": w.entry.reference().to_string(),
        "kind": e.body.kind(),
        "bureau": e.author,
        "seq": e.seq.0,
        "time_ms": e.time_ms,
        "person_tag": w.effects.person.map(|p| p.to_hex()),
        "acted_on": w.effects.acted_on.map(|r| r.to_string()),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnrolRequest {
    person: String,
    household: Option<u64>,
    relation: Option<String>,
    /// How long to wait for the person's claim to become final (default
    /// [`CLAIM_WAIT_DEFAULT_MS`], at most [`CLAIM_WAIT_MAX_MS`]).
    wait_ms: Option<u64>,
}

/// How long an enrolment or birth waits by default for the claim on the person to become final:
/// the arbiter's grant, its checkpoint and a quorum of cosignatures take a few hundred ms on a
/// healthy network.
const CLAIM_WAIT_DEFAULT_MS: u64 = 10_000;
/// Longest an enrolment or birth may wait for its claim.
const CLAIM_WAIT_MAX_MS: u64 = 60_000;

fn claim_wait(wait_ms: Option<u64>) -> Duration {
    Duration::from_millis(
        wait_ms
            .unwrap_or(CLAIM_WAIT_DEFAULT_MS)
            .min(CLAIM_WAIT_MAX_MS),
    )
}

/// A final claim of this bureau on `person` (nobody is registered out of nowhere without one).
async fn claim_one(api: &Api, person: PersonTag, wait_ms: Option<u64>) -> ApiResult<EntryRef> {
    let mut claims = api
        .service
        .obtain_claims(&[person], claim_wait(wait_ms))
        .await;
    Ok(claims.pop().expect("one person, one result")?)
}

/// A birth date as the rulebook's `born_on`: the number YYYYMMDD.
pub(crate) fn born_on(id: &CitizenId) -> u32 {
    let (year, month, day) = id.birth_date();
    u32::from(year) * 10_000 + u32::from(month) * 100 + u32::from(day)
}

/// The placement of a person joining this bureau: a new household headed by them, or an
/// existing household with a relation.
fn placement(
    state: &mut State,
    household: Option<u64>,
    relation: Option<&str>,
) -> Result<Placement, WriteError> {
    let relation = match relation {
        Some(r) => Relation::parse(r).map_err(|m| WriteError::bad("bad_vocabulary", m))?,
        None if household.is_some() => {
            return Err(WriteError::bad(
                "missing_relation",
                "joining an existing household needs a relation (e.g. spouse, child)",
            ));
        }
        None => Relation::Head,
    };
    let household = match (household, relation) {
        (Some(h), _) => HouseholdId(h),
        (None, Relation::Head) => Service::new_household(state),
        (None, _) => {
            return Err(WriteError::bad(
                "missing_household",
                "a member other than the head joins an existing household: give its number",
            ));
        }
    };
    Ok(Placement {
        household,
        relation,
    })
}

async fn enrol(
    AxumState(api): AxumState<Api>,
    ApiJson(req): ApiJson<EnrolRequest>,
) -> ApiResult<Json<Value>> {
    let id = parse_id(&req.person)?;
    let person = api.service.tag(&id);
    let claim = claim_one(&api, person, req.wait_ms).await?;
    let w = api
        .service
        .write_one(|s| {
            Ok(Body::Enrol {
                person,
                placement: placement(s, req.household, req.relation.as_deref())?,
                claim,
            })
        })
        .await?;
    let mut v = written_json(&w);
    if let Body::Enrol { placement, .. } = &w.entry.entry().body {
        v["household"] = json!(placement.household.0);
    }
    v["claim"] = json!(claim.to_string());
    Ok(Json(v))
}

async fn birth(
    AxumState(api): AxumState<Api>,
    ApiJson(req): ApiJson<EnrolRequest>,
) -> ApiResult<Json<Value>> {
    let id = parse_id(&req.person)?;
    let person = api.service.tag(&id);
    let claim = claim_one(&api, person, req.wait_ms).await?;
    let w = api
        .service
        .write_one(|s| {
            Ok(Body::Birth {
                person,
                placement: placement(s, req.household, req.relation.as_deref())?,
                claim,
                born_on: born_on(&id),
            })
        })
        .await?;
    let mut v = written_json(&w);
    v["claim"] = json!(claim.to_string());
    Ok(Json(v))
}

/// Bulk import: NDJSON lines `{"person": ID, "household"?: N, "relation"?: NAME}` in; NDJSON
/// out: a `progress` line per batch, an `error` line per refused line (with its line number),
/// and a final `done` line with the totals. The body is read a line at a time ([`lines`]).
async fn enrol_bulk(
    AxumState(api): AxumState<Api>,
    headers: HeaderMap,
    body: HttpBody,
) -> Response {
    if let Some(refused) = lines::declared_too_large(&headers) {
        return refused.into_response();
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    tokio::spawn(async move {
        let send = |v: Value| {
            let tx = tx.clone();
            async move {
                let mut line = serde_json::to_vec(&v).unwrap_or_default();
                line.push(b'\n');
                let _ = tx.send(Ok(Bytes::from(line))).await;
            }
        };
        let mut lines = lines::Lines::of_body(body, BULK_LINE_BYTES_MAX);
        let mut batch: Vec<(u64, Result<EnrolRequest, ApiError>)> = Vec::new();
        let (mut enrolled, mut refused) = (0u64, 0u64);
        let started = Instant::now();
        loop {
            let line = match lines.next().await {
                Ok(line) => line,
                Err(e) => {
                    send(e.json()).await;
                    return;
                }
            };
            let finished = line.is_none();
            if let Some(line) = line {
                batch.push(lines::parse_line(line, BULK_LINE_BYTES_MAX, |text| {
                    serde_json::from_str::<EnrolRequest>(text).map_err(|e| {
                        ApiError::bad("bad_json", format!("not an enrolment line: {e}"))
                    })
                }));
            }
            if batch.len() >= BULK_BATCH_LINES || (finished && !batch.is_empty()) {
                let (ok, errors) = enrol_batch(&api, std::mem::take(&mut batch)).await;
                enrolled += ok;
                refused += errors.len() as u64;
                for e in errors {
                    send(e).await;
                }
                let secs = started.elapsed().as_secs_f64().max(1e-9);
                send(
                    json!({"progress": {"lines": lines.count(), "enrolled": enrolled, "refused": refused,
                    "per_s": (enrolled as f64 / secs).round()}}),
                )
                .await;
            }
            if finished {
                break;
            }
        }
        send(
            json!({"done": true, "lines": lines.count(), "enrolled": enrolled, "refused": refused,
            "seconds": started.elapsed().as_secs_f64()}),
        )
        .await;
    });
    let stream = tokio_stream_from(rx);
    Response::builder()
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .body(HttpBody::from_stream(stream))
        .expect("valid response")
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

async fn enrol_batch(
    api: &Api,
    batch: Vec<(u64, Result<EnrolRequest, ApiError>)>,
) -> (u64, Vec<Value>) {
    let mut errors = Vec::new();
    let mut lines = Vec::new();
    let mut requests = Vec::new();
    for (line, parsed) in batch {
        let checked = parsed.and_then(|r| parse_id(&r.person).map(|id| (id, r)));
        match checked {
            Ok((id, r)) => {
                lines.push(line);
                requests.push((api.service.tag(&id), r));
            }
            Err(e) => errors.push(json!({"line": line, "error": e.error, "message": e.message})),
        }
    }
    if requests.is_empty() {
        return (0, errors);
    }
    // Claims for the whole batch at once, from every arbiter concerned.
    let persons: Vec<PersonTag> = requests.iter().map(|(p, _)| *p).collect();
    let claims = api
        .service
        .obtain_claims(&persons, Duration::from_millis(BULK_CLAIM_WAIT_MS))
        .await;
    let mut claimed = Vec::with_capacity(requests.len());
    let mut claimed_lines = Vec::with_capacity(requests.len());
    for ((line, request), claim) in lines.into_iter().zip(requests).zip(claims) {
        match claim {
            Ok(claim) => {
                claimed_lines.push(line);
                claimed.push((request.0, request.1, claim));
            }
            Err(e) => {
                let e = ApiError::from(e);
                errors.push(json!({"line": line, "error": e.error, "message": e.message}));
            }
        }
    }
    let (lines, requests) = (claimed_lines, claimed);
    if requests.is_empty() {
        errors.sort_by_key(|v| v["line"].as_u64());
        return (0, errors);
    }
    let mut placement_errors: Vec<(usize, WriteError)> = Vec::new();
    let kept_lines = std::sync::Mutex::new(Vec::new());
    let result = api
        .service
        .write(|s| {
            let mut bodies = Vec::new();
            for (i, (person, r, claim)) in requests.into_iter().enumerate() {
                match placement(s, r.household, r.relation.as_deref()) {
                    Ok(placement) => {
                        kept_lines.lock().expect("not poisoned").push(lines[i]);
                        bodies.push(Body::Enrol {
                            person,
                            placement,
                            claim,
                        });
                    }
                    Err(e) => placement_errors.push((i, e)),
                }
            }
            Ok(bodies)
        })
        .await;
    for (i, e) in placement_errors {
        let e = ApiError::from(e);
        errors.push(json!({"line": lines[i], "error": e.error, "message": e.message}));
    }
    let kept_lines = kept_lines.into_inner().expect("not poisoned");
    match result {
        Ok(results) => {
            let mut ok = 0;
            for (line, r) in kept_lines.iter().zip(results) {
                match r {
                    Ok(_) => ok += 1,
                    Err(e) => {
                        let e = ApiError::from(e);
                        errors.push(json!({"line": line, "error": e.error, "message": e.message}));
                    }
                }
            }
            errors.sort_by_key(|v| v["line"].as_u64());
            (ok, errors)
        }
        Err(e) => {
            let e = ApiError::from(e);
            for line in kept_lines {
                errors.push(json!({"line": line, "error": e.error, "message": e.message}));
            }
            (0, errors)
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PermitRequest {
    person: String,
    origin: String,
    category: String,
    valid_days: Option<u64>,
    materials: Option<String>,
    corrects: Option<String>,
}

/// A permit request checked before the state lock: the single route and `/v1/batch` share it.
struct PermitFields {
    person: PersonTag,
    origin: BureauCode,
    category: Category,
    valid_days: u64,
    materials: Digest,
    corrects: Option<String>,
}

impl PermitFields {
    fn parse(api: &Api, req: PermitRequest) -> ApiResult<PermitFields> {
        let person = api.service.tag(&parse_id(&req.person)?);
        let origin: BureauCode = req
            .origin
            .parse()
            .map_err(|e| ApiError::bad("bad_bureau", format!("origin: {e}")))?;
        let category = parse_vocab(&req.category, Category::parse)?;
        // Its bounds are the rulebook's (`permit_validity_invalid`), judged on the body.
        let valid_days = req.valid_days.unwrap_or(PERMIT_VALID_DAYS_DEFAULT);
        let materials = match &req.materials {
            Some(h) => h
                .parse::<Digest>()
                .map_err(|e| ApiError::bad("bad_digest", format!("materials: {e}")))?,
            None => Digest::ZERO,
        };
        Ok(PermitFields {
            person,
            origin,
            category,
            valid_days,
            materials,
            corrects: req.corrects,
        })
    }

    /// The permit's body against the current state (under the state lock). Whether the origin
    /// is a member and the validity within bounds is the rulebook's to judge (`unknown_origin`,
    /// `permit_validity_invalid`), so the API's error is the rule's name.
    fn body(self, s: &State) -> Result<Body, WriteError> {
        let corrects = self
            .corrects
            .as_deref()
            .map(|r| resolve_ref(&s.ledger, r))
            .transpose()?;
        // Counted from the entry's own time, as the rulebook counts it. A `valid_days` too large
        // for the arithmetic saturates instead of wrapping, and is refused like any other.
        let valid_until_ms = self
            .valid_days
            .checked_mul(DAY_MS)
            .and_then(|validity_ms| s.write_time_ms.checked_add(validity_ms))
            .unwrap_or(u64::MAX);
        Ok(Body::Permit {
            person: self.person,
            origin: self.origin,
            category: self.category,
            valid_until_ms,
            materials: self.materials,
            corrects,
        })
    }
}

async fn issue_permit(
    AxumState(api): AxumState<Api>,
    ApiJson(req): ApiJson<PermitRequest>,
) -> ApiResult<Json<Value>> {
    let fields = PermitFields::parse(&api, req)?;
    let valid_days = fields.valid_days;
    let w = api.service.write_one(|s| fields.body(s)).await?;
    let mut v = written_json(&w);
    v["valid_days"] = json!(valid_days);
    Ok(Json(v))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PermitRef {
    permit: String,
}

async fn revoke_permit(
    AxumState(api): AxumState<Api>,
    ApiJson(req): ApiJson<PermitRef>,
) -> ApiResult<Json<Value>> {
    let w = api
        .service
        .write_one(|s| {
            Ok(Body::Revocation {
                permit: resolve_ref(&s.ledger, &req.permit)?,
            })
        })
        .await?;
    Ok(Json(written_json(&w)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeregisterRequest {
    permit: String,
    new_head: Option<String>,
}

async fn deregister(
    AxumState(api): AxumState<Api>,
    ApiJson(req): ApiJson<DeregisterRequest>,
) -> ApiResult<Json<Value>> {
    let new_head = req
        .new_head
        .as_deref()
        .map(parse_id)
        .transpose()?
        .map(|id| api.service.tag(&id));
    let w = api
        .service
        .write_one(|s| {
            let permit = resolve_ref(&s.ledger, &req.permit)?;
            let person = permit_person(&s.ledger, permit);
            Ok(Body::Deregistration {
                permit,
                person,
                new_head,
            })
        })
        .await?;
    Ok(Json(written_json(&w)))
}

/// The person of the permit a deregistration names. A reference to an entry of another kind
/// is not the API's to refuse: the body names nobody ([`PersonTag::ZERO`]) and the rulebook,
/// whose first deregistration rule is the kind of its permit, refuses it as
/// `reference_wrong_kind`.
fn permit_person(ledger: &Ledger, permit: EntryRef) -> PersonTag {
    ledger.permit(&permit).map_or(PersonTag::ZERO, |p| p.person)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefuseRequest {
    permit: String,
    reason: String,
}

async fn refuse(
    AxumState(api): AxumState<Api>,
    ApiJson(req): ApiJson<RefuseRequest>,
) -> ApiResult<Json<Value>> {
    let reason = parse_vocab(&req.reason, RefusalReason::parse)?;
    let w = api
        .service
        .write_one(|s| {
            Ok(Body::Refusal {
                permit: resolve_ref(&s.ledger, &req.permit)?,
                reason,
            })
        })
        .await?;
    Ok(Json(written_json(&w)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterRequest {
    deregistration: String,
    household: Option<u64>,
    relation: Option<String>,
    /// Wait up to this many milliseconds (at most [`REGISTER_WAIT_MAX_MS`]) for the
    /// deregistration to become final instead of refusing at once.
    wait_ms: Option<u64>,
}

/// A registration's body against the current state (under the state lock): the single route and
/// `/v1/batch` share it.
fn registration_body(
    s: &mut State,
    deregistration: &str,
    household: Option<u64>,
    relation: Option<&str>,
) -> Result<Body, WriteError> {
    let deregistration = resolve_ref(&s.ledger, deregistration)?;
    // As for a deregistration's permit: a reference to another kind of entry is the rulebook's
    // `reference_wrong_kind` (its first registration rule), not a request error.
    let person = s
        .ledger
        .deregistration(&deregistration)
        .map_or(PersonTag::ZERO, |d| d.person);
    Ok(Body::Registration {
        deregistration,
        person,
        placement: placement(s, household, relation)?,
    })
}

/// Longest a registration may wait for its deregistration to become final.
const REGISTER_WAIT_MAX_MS: u64 = 60_000;

async fn register(
    AxumState(api): AxumState<Api>,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> ApiResult<Json<Value>> {
    if let Some(wait_ms) = req.wait_ms.filter(|&ms| ms > 0) {
        // A full reference may name an entry not replicated here yet: wait for it too.
        let deregistration = match req.deregistration.trim().parse::<EntryRef>() {
            Ok(full) => full,
            Err(_) => resolve_ref(&api.service.state().await.ledger, &req.deregistration)?,
        };
        let wait = Duration::from_millis(wait_ms.min(REGISTER_WAIT_MAX_MS));
        // Whether it became final or not, the write below decides (and refuses if not).
        api.service.wait_final(&deregistration, wait).await;
    }
    let w = api
        .service
        .write_one(|s| {
            registration_body(
                s,
                &req.deregistration,
                req.household,
                req.relation.as_deref(),
            )
        })
        .await?;
    let mut v = written_json(&w);
    if let Body::Registration { placement, .. } = &w.entry.entry().body {
        v["household"] = json!(placement.household.0);
    }
    Ok(Json(v))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelRequest {
    person: String,
    reason: String,
    new_head: Option<String>,
}

async fn cancel(
    AxumState(api): AxumState<Api>,
    ApiJson(req): ApiJson<CancelRequest>,
) -> ApiResult<Json<Value>> {
    let person = api.service.tag(&parse_id(&req.person)?);
    let reason = parse_vocab(&req.reason, CancellationReason::parse)?;
    let new_head = req
        .new_head
        .as_deref()
        .map(parse_id)
        .transpose()?
        .map(|id| api.service.tag(&id));
    let w = api
        .service
        .write_one(|_| {
            Ok(Body::Cancellation {
                person,
                reason,
                new_head,
            })
        })
        .await?;
    Ok(Json(written_json(&w)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HeadChangeRequest {
    household: u64,
    new_head: String,
}

async fn head_change(
    AxumState(api): AxumState<Api>,
    ApiJson(req): ApiJson<HeadChangeRequest>,
) -> ApiResult<Json<Value>> {
    let new_head = api.service.tag(&parse_id(&req.new_head)?);
    let w = api
        .service
        .write_one(|_| {
            Ok(Body::HeadChange {
                household: HouseholdId(req.household),
                new_head,
            })
        })
        .await?;
    Ok(Json(written_json(&w)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PersonRequest {
    person: String,
}

async fn person_show(
    AxumState(api): AxumState<Api>,
    ApiJson(req): ApiJson<PersonRequest>,
) -> ApiResult<Json<Value>> {
    let id = parse_id(&req.person)?;
    let tag = api.service.tag(&id);
    let state = api.service.state().await;
    let p = state.ledger.person(&tag);
    let records: Vec<Value> = p
        .map(|p| {
            p.records
                .iter()
                .map(|r| json!({"bureau": r.bureau, "household": r.household.0, "since": r.since.to_string(),
                    "head": state.ledger.household(r.bureau, r.household).is_some_and(|h| h.head == tag)}))
                .collect()
        })
        .unwrap_or_default();
    let in_transit: Vec<Value> = p
        .map(|p| {
            p.in_transit
                .iter()
                .filter_map(|d| state.ledger.deregistration(d))
                .map(|d| json!({"deregistration": d.reference.to_string(), "from": d.reference.author, "to": d.destination}))
                .collect()
        })
        .unwrap_or_default();
    let cancelled = p
        .and_then(|p| p.cancelled)
        .map(|(r, reason)| json!({"by": r.to_string(), "reason": reason}));
    let named = state.person_entries.get(&tag).cloned().unwrap_or_default();
    drop(state);
    // Only durable entries: the store's reader stops at the last flush.
    let stored = read_store(&api, move |store| {
        named
            .into_iter()
            .filter_map(|(log, seq)| store.entry(log, seq).ok().flatten())
            .collect::<Vec<_>>()
    })
    .await;
    let mut history: Vec<Value> = stored
        .iter()
        .map(|e| {
            json!({"ref": e.reference().to_string(), "kind": e.entry().body.kind(),
            "bureau": e.entry().author, "time_ms": e.entry().time_ms})
        })
        .collect();
    history.sort_by_key(|h| h["time_ms"].as_u64());
    let registered_at = match records.as_slice() {
        [one] => one["bureau"].clone(),
        _ => Value::Null,
    };
    Ok(Json(json!({
        "person_tag": tag.to_hex(),
        "registered_at": registered_at,
        "records": records,
        "duplicate": records.len() > 1,
        "in_transit": in_transit,
        "cancelled": cancelled,
        "history": history,
    })))
}

/// The entry that registered `tag` at `me`, the one bureau where they are registered; else the
/// error `/v1/person/certificate` answers.
fn registered_here(state: &State, tag: PersonTag, me: BureauCode) -> ApiResult<EntryRef> {
    let person = state.ledger.person(&tag);
    let records = person.map_or(&[][..], |p| p.records.as_slice());
    let Some(record) = records.iter().find(|r| r.bureau == me) else {
        let now = match records {
            [] if person.is_some_and(|p| !p.in_transit.is_empty()) => {
                "in transit (deregistered, not yet registered)".to_string()
            }
            [] if person.is_some_and(|p| p.cancelled.is_some()) => "cancelled".to_string(),
            [] => "not registered anywhere this node knows of".to_string(),
            others => format!(
                "registered at {}",
                others
                    .iter()
                    .map(|r| r.bureau.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        return Err(ApiError::not_found(
            "person_not_registered_here",
            format!(
                "person {tag} is not registered at {me} (now: {now}); only the bureau of registration certifies it"
            ),
        ));
    };
    if records.len() > 1 {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "duplicate_registration",
            format!(
                "person {tag} is registered at {} bureaus (重); no certificate until the duplicate is resolved",
                records.len()
            ),
        ));
    }
    Ok(record.since)
}

/// A registration certificate (户籍证明) of a person registered at this bureau: the entry that
/// registered them here, its inclusion proof in this bureau's log and the latest certificate of
/// that log (`hukou_protocol::attestation`). Refused unless the person is registered here and
/// nowhere else, and that entry is final. The file is checked before it is served.
async fn person_certificate(
    AxumState(api): AxumState<Api>,
    ApiJson(req): ApiJson<PersonRequest>,
) -> ApiResult<Json<Value>> {
    use hukou_protocol::attestation::Attestation;
    let id = parse_id(&req.person)?;
    let tag = api.service.tag(&id);
    let me = api.service.me();
    let since = registered_here(&*api.service.state().await, tag, me)?;
    let internal =
        |what: String| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "storage_failed", what);
    // Read without the state lock; what was read is checked against the state again below.
    let (latest, stored) = read_store(&api, move |store| {
        Ok::<_, crate::store::StoreError>((
            store.latest_certificate(me)?,
            store.entry(me, since.seq.0)?,
        ))
    })
    .await
    .map_err(store_error)?;
    let final_size = latest.as_ref().map_or(0, |(size, _)| *size);
    if since.seq.0 >= final_size {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "registration_not_final",
            format!(
                "entry {since} that registered person {tag} here is not final yet (log {me} is certified up to {final_size} entries); retry once a quorum has cosigned it"
            ),
        ));
    }
    let (_, raw) = latest.expect("final_size > 0, so a certificate is held");
    let certificate = Certificate::decode(&raw)
        .map_err(|e| internal(format!("stored certificate of {me} does not decode: {e}")))?;
    let entry = stored
        .filter(|e| e.reference() == since)
        .ok_or_else(|| internal(format!("entry {since} is not in the store")))?;
    let state = api.service.state().await;
    if registered_here(&state, tag, me)? != since {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "registration_changed",
            format!(
                "the registration of person {tag} here changed while its certificate was built; ask again"
            ),
        ));
    }
    let tree = log_tree(&state, me)?;
    let proof = tree
        .inclusion_proof(since.seq.0, certificate.checkpoint.size)
        .map_err(|e| internal(format!("no inclusion proof of {since}: {e}")))?;
    let epochs = state.ledger.epochs_arc();
    drop(state);
    let attestation = Attestation {
        entry,
        proof,
        certificate,
    };
    let verified = attestation.verify(&epochs).map_err(|e| {
        internal(format!(
            "the registration certificate built for {since} does not verify ({}): {e}",
            e.name()
        ))
    })?;
    Ok(Json(json!({
        "person_tag": tag.to_hex(),
        "bureau": me,
        "entry": since.to_string(),
        "kind": verified.kind,
        "entry_time_ms": verified.entry_time_ms,
        "household": verified.placement.household.0,
        "size": verified.size,
        "root": hex::encode(verified.root),
        "time_ms": verified.time_ms,
        "witnesses": verified.witnesses,
        "quorum": verified.quorum,
        "entry_epoch": verified.entry_epoch,
        "certificate_epoch": verified.certificate_epoch,
        "file": hex::encode(attestation.encode()),
    })))
}

fn store_error(e: crate::store::StoreError) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "storage_failed",
        e.to_string(),
    )
}

/// Runs `read` on the store off the runtime's worker threads: a sled read may wait for the
/// disk, and a worker blocked on it stalls every request and the replication it also runs.
/// Never called with the state lock held.
pub(crate) async fn read_store<T: Send + 'static>(
    api: &Api,
    read: impl FnOnce(&crate::store::Store) -> T + Send + 'static,
) -> T {
    let store = api.service.store().clone();
    match tokio::task::spawn_blocking(move || read(&store)).await {
        Ok(value) => value,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("a store read was cancelled: {e}"),
    }
}

/// Deadline facts for something received at `received_ms` with `working_days` to answer,
/// judged at `now`. Never guessed: when the deadline needs a year the calendar does not cover,
/// `deadline`, `deadline_ms` and `working_days_overdue` are null, `deadline_unknown` is
/// `calendar_year_missing` and `calendar_year_missing` the year; `overdue` is then `false` if
/// `now` is before that year (the deadline falls in it or later), else null. A past deadline
/// whose lateness needs such a year has `overdue: true`, `working_days_overdue: null` and
/// `calendar_year_missing` set.
fn deadline_json(calendar: &Calendar, received_ms: u64, working_days: u32, now: u64) -> Value {
    let received = china_date(received_ms).to_string();
    let deadline_ms = match calendar.deadline_checked(received_ms, working_days) {
        Ok(deadline_ms) => deadline_ms,
        Err(gap) => {
            let overdue = (china_date(now).year() < gap.year).then_some(false);
            return json!({
                "received": received,
                "working_days": working_days,
                "deadline": null,
                "deadline_ms": null,
                "overdue": overdue,
                "working_days_overdue": null,
                "deadline_unknown": gap.name(),
                "calendar_year_missing": gap.year,
            });
        }
    };
    let (late, missing) = match calendar.overdue_checked(received_ms, working_days, now) {
        Ok(late) => (Some(late.max(0)), None),
        Err(gap) => (None, Some(gap.year)),
    };
    json!({
        "received": received,
        "working_days": working_days,
        "deadline": china_date(deadline_ms).to_string(),
        "deadline_ms": deadline_ms,
        "overdue": now > deadline_ms,
        "working_days_overdue": late,
        "deadline_unknown": null,
        "calendar_year_missing": missing,
    })
}

async fn inbox(AxumState(api): AxumState<Api>) -> Json<Value> {
    let me = api.service.me();
    let now = now_ms();
    let calendar = api.service.calendar();
    let state = api.service.state().await;
    let mut permits: Vec<Value> = state
        .ledger
        .awaiting_origin(me)
        .map(|p| {
            json!({"permit": p.reference.to_string(), "destination": p.destination(), "category": p.category,
                "person_tag": p.person.to_hex(), "issued_ms": p.issued_ms, "valid_until_ms": p.valid_until_ms,
                "expired": now > p.valid_until_ms,
                "deadline": deadline_json(&calendar, p.issued_ms, state.ledger.deadlines_of(&p.reference).answer_working_days, now)})
        })
        .collect();
    let mut removals: Vec<Value> = state
        .ledger
        .awaiting_destination(me)
        .map(|d| {
            let revoked = state.ledger.permit(&d.permit).and_then(|p| p.revoked_by).map(|r| r.to_string());
            json!({"deregistration": d.reference.to_string(), "origin": d.reference.author, "permit": d.permit.to_string(),
                "person_tag": d.person.to_hex(), "time_ms": d.time_ms, "permit_revoked_by": revoked,
                "final": state.is_final(&d.reference),
                "deadline": deadline_json(&calendar, d.time_ms, state.ledger.deadlines_of(&d.reference).registration_working_days, now)})
        })
        .collect();
    // Overdue first, then oldest deadline first; deadlines the calendar cannot compute last.
    let key = |v: &Value| {
        (
            !v["deadline"]["overdue"].as_bool().unwrap_or(false),
            v["deadline"]["deadline_ms"].as_u64().unwrap_or(u64::MAX),
        )
    };
    permits.sort_by_key(key);
    removals.sort_by_key(key);
    Json(
        json!({"bureau": me, "permits_awaiting_removal": permits, "removals_awaiting_registration": removals}),
    )
}

async fn transfer_show(
    AxumState(api): AxumState<Api>,
    Path(reference): Path<String>,
) -> ApiResult<Json<Value>> {
    let state = api.service.state().await;
    let r = resolve_ref(&state.ledger, &reference)?;
    let mut transfer = transfer_json(&state.ledger, &api.service.calendar(), r, now_ms())?;
    add_finality(&state, &mut transfer);
    drop(state);
    let transfer = read_store(&api, move |store| {
        add_stored_details(store, &mut transfer);
        transfer
    })
    .await;
    Ok(Json(transfer))
}

/// Fills in, from the stored entries, what the ledger does not track for a transfer's refusal and
/// revocation steps: their time, and a refusal's reason.
fn add_stored_details(store: &crate::store::Store, transfer: &mut Value) {
    let Some(steps) = transfer["steps"].as_array_mut() else {
        return;
    };
    for step in steps {
        if !step["time_ms"].is_null() {
            continue;
        }
        let Some(r) = step["ref"]
            .as_str()
            .and_then(|r| r.parse::<EntryRef>().ok())
        else {
            continue;
        };
        if let Ok(Some(e)) = store.entry(r.author, r.seq.0) {
            step["time_ms"] = json!(e.entry().time_ms);
            if let Body::Refusal { reason, .. } = &e.entry().body {
                step["reason"] = json!(reason);
            }
        }
    }
}

/// Marks each recorded step of a transfer (one with a `ref`) `"final": true|false`, and the
/// transfer `"final": true` when every step recorded so far is final (nothing recorded can be
/// undone by a fork), `false` otherwise. Pending steps get no `final` field.
fn add_finality(state: &State, transfer: &mut Value) {
    let mut all_final = true;
    if let Some(steps) = transfer["steps"].as_array_mut() {
        for step in steps {
            let Some(r) = step["ref"]
                .as_str()
                .and_then(|r| r.parse::<EntryRef>().ok())
            else {
                continue;
            };
            let is_final = state.is_final(&r);
            all_final &= is_final;
            step["final"] = json!(is_final);
        }
    }
    transfer["final"] = json!(all_final);
}

/// The progress of the transfer that `r` belongs to (its permit, deregistration or registration).
pub fn transfer_json(
    ledger: &Ledger,
    calendar: &Calendar,
    r: EntryRef,
    now: u64,
) -> ApiResult<Value> {
    let permit_ref = if let Some(p) = ledger.permit(&r) {
        p.reference
    } else if let Some(d) = ledger.deregistration(&r) {
        d.permit
    } else if let Some(reg) = ledger.registration(&r) {
        ledger
            .deregistration(&reg.deregistration)
            .map(|d| d.permit)
            .expect("a registration's deregistration exists")
    } else {
        return Err(ApiError::not_found(
            "not_a_transfer",
            format!("{r} is not a permit, deregistration or registration"),
        ));
    };
    let p = ledger.permit(&permit_ref).expect("resolved");
    let mut steps = vec![
        json!({"step": "permit", "bureau": p.destination(), "ref": p.reference.to_string(),
        "time_ms": p.issued_ms, "category": p.category}),
    ];
    let mut status = "awaiting-origin";
    match p.status {
        // A permit's recorded status is never Revoked (revocation is `revoked_by`, below).
        // A revoked permit awaits nothing more from the origin.
        PermitStatus::Open | PermitStatus::Revoked { .. } if p.revoked_by.is_some() => {}
        PermitStatus::Open | PermitStatus::Revoked { .. } => {
            steps.push(
                json!({"step": "deregistration", "bureau": p.origin, "pending": true,
                "deadline": deadline_json(calendar, p.issued_ms, ledger.deadlines_of(&p.reference).answer_working_days, now)}),
            );
        }
        PermitStatus::Refused { by } => {
            status = "refused";
            steps.push(
                json!({"step": "refusal", "bureau": p.origin, "ref": by.to_string(),
                "time_ms": entry_time(ledger, by)}),
            );
        }
        PermitStatus::Consumed { by } => {
            let d = ledger
                .deregistration(&by)
                .expect("consumed by a deregistration");
            steps.push(json!({"step": "deregistration", "bureau": p.origin, "ref": by.to_string(), "time_ms": d.time_ms,
                "deadline": deadline_json(calendar, p.issued_ms, ledger.deadlines_of(&p.reference).answer_working_days, d.time_ms)}));
            match d.consumed_by {
                Some(reg) => {
                    status = "registered";
                    let t = entry_time(ledger, reg);
                    steps.push(json!({"step": "registration", "bureau": p.destination(), "ref": reg.to_string(),
                        "time_ms": t, "deadline": deadline_json(calendar, d.time_ms, ledger.deadlines_of(&d.reference).registration_working_days, t.unwrap_or(now))}));
                }
                None => {
                    status = "awaiting-registration";
                    steps.push(
                        json!({"step": "registration", "bureau": p.destination(), "pending": true,
                        "deadline": deadline_json(calendar, d.time_ms, ledger.deadlines_of(&d.reference).registration_working_days, now)}),
                    );
                }
            }
        }
    }
    if let Some(rev) = p.revoked_by {
        steps.push(
            json!({"step": "revocation", "bureau": p.destination(), "ref": rev.to_string(),
            "time_ms": entry_time(ledger, rev)}),
        );
        if status == "awaiting-origin" {
            status = "revoked";
        }
    }
    Ok(
        json!({"permit": p.reference.to_string(), "origin": p.origin, "destination": p.destination(),
        "category": p.category, "status": status, "steps": steps}),
    )
}

/// The time of a permit, deregistration or registration (the ledger tracks these); other
/// entries' times come from the store.
fn entry_time(ledger: &Ledger, r: EntryRef) -> Option<u64> {
    ledger
        .permit(&r)
        .map(|p| p.issued_ms)
        .or_else(|| ledger.deregistration(&r).map(|d| d.time_ms))
        .or_else(|| ledger.registration(&r).map(|x| x.time_ms))
}

/// `GET /v1/finality`: every log with a checkpoint this node saw waiting for its committee's
/// cosignatures (its committee, quorum, who cosigned, who is missing and since when), and every
/// member with whether it is connected and when this node last received a cosignature from it.
async fn finality(AxumState(api): AxumState<Api>) -> Json<Value> {
    let (waiting, witnesses) = api.service.finality_report().await;
    Json(json!({"waiting": waiting, "witnesses": witnesses}))
}

async fn healthz(AxumState(api): AxumState<Api>) -> Json<Value> {
    let state = api.service.state().await;
    let peers = (api.peers)();
    Json(json!({
        "status": if api.service.is_recovering() { "recovering" } else { "ok" },
        "bureau": api.service.me(),
        "network": state.ledger.membership().network_name(),
        "members": state.ledger.membership().len(),
        "peers_connected": peers,
        "overlay_neighbors": (api.overlay)(),
        "connections_open": (api.net_stats)().connections_open,
        "entries": state.ledger.entries_applied(),
        "own_log_length": state.ledger.log_len(api.service.me()),
        "fraud_proofs": state.fraud_proofs.len(),
        "uptime_s": api.service.uptime_s(),
        "catch_up": api.service.catch_up(),
    }))
}

async fn metrics(AxumState(api): AxumState<Api>) -> Response {
    use std::fmt::Write;
    let c = api.service.counters();
    let state = api.service.state().await;
    let mut out = String::new();
    let me = api.service.me();
    let mut counter = |name: &str, help: &str, v: u64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
        );
    };
    counter(
        "hukou_entries_written_total",
        "Entries this bureau signed into its own log.",
        c.entries_written.load(Ordering::Relaxed),
    );
    counter(
        "hukou_entries_replicated_total",
        "Entries of any log applied from peers.",
        c.entries_replicated.load(Ordering::Relaxed),
    );
    counter(
        "hukou_entries_refused_total",
        "Replicated entries the rulebook refused.",
        c.entries_refused.load(Ordering::Relaxed),
    );
    counter(
        "hukou_entries_duplicate_total",
        "Replicated entries already held.",
        c.entries_duplicate.load(Ordering::Relaxed),
    );
    counter(
        "hukou_decode_errors_total",
        "Replicated entries that did not decode.",
        c.decode_errors.load(Ordering::Relaxed),
    );
    counter(
        "hukou_equivocations_total",
        "Equivocations detected (fraud proofs stored).",
        c.equivocations.load(Ordering::Relaxed),
    );
    counter(
        "hukou_forks_adopted_total",
        "Times a replica holding a losing fork of a log moved to the certified fork.",
        c.forks_adopted.load(Ordering::Relaxed),
    );
    counter(
        "hukou_fork_entries_dropped_total",
        "Replica entries taken back by those moves (the losing fork's, and what depended on it).",
        c.fork_entries_dropped.load(Ordering::Relaxed),
    );
    counter(
        "hukou_writes_refused_total",
        "Clerk writes the rulebook refused.",
        c.writes_refused.load(Ordering::Relaxed),
    );
    counter(
        "hukou_checkpoints_signed_total",
        "Checkpoints of its own log this bureau signed.",
        c.checkpoints_signed.load(Ordering::Relaxed),
    );
    counter(
        "hukou_checkpoints_refused_total",
        "Checkpoints this witness refused to cosign (bad signature, root mismatch, fork).",
        c.checkpoints_refused.load(Ordering::Relaxed),
    );
    counter(
        "hukou_cosignatures_total",
        "Checkpoints this witness cosigned.",
        c.cosignatures.load(Ordering::Relaxed),
    );
    counter(
        "hukou_certificates_total",
        "Certificates this node stored (built from a quorum of cosignatures, or received).",
        c.certificates.load(Ordering::Relaxed),
    );
    let _ = writeln!(
        out,
        "# HELP hukou_peers_connected Member peers connected.\n# TYPE hukou_peers_connected gauge\nhukou_peers_connected {}",
        (api.peers)().len()
    );
    let net = (api.net_stats)();
    let _ = writeln!(
        out,
        "# HELP hukou_connections_open Established connections (overlay neighbours and on demand).\n# TYPE hukou_connections_open gauge\nhukou_connections_open {}",
        net.connections_open
    );
    for (name, help, value) in [
        (
            "hukou_gossip_in_total",
            "Gossip messages delivered to this node.",
            net.gossip_in,
        ),
        (
            "hukou_gossip_out_total",
            "Gossip messages this node published.",
            net.gossip_out,
        ),
        (
            "hukou_requests_in_total",
            "Requests received from peers.",
            net.requests_in,
        ),
        (
            "hukou_requests_out_total",
            "Requests sent to peers.",
            net.requests_out,
        ),
        (
            "hukou_idle_connections_closed_total",
            "On-demand connections closed when idle.",
            net.idle_closed,
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP hukou_log_length Entries held of each member's log.\n# TYPE hukou_log_length gauge"
    );
    let mut lag_lines = String::new();
    let mut final_lines = String::new();
    for m in state.ledger.membership().members() {
        let len = state.ledger.log_len(m.code);
        let _ = writeln!(out, "hukou_log_length{{bureau=\"{}\"}} {len}", m.code);
        let _ = writeln!(
            final_lines,
            "hukou_final_size{{bureau=\"{}\"}} {}",
            m.code,
            state.final_size(m.code)
        );
        let peer = state.peer_lengths.get(&m.code).copied().unwrap_or(len);
        if m.code != me {
            let _ = writeln!(
                lag_lines,
                "hukou_replication_lag_entries{{bureau=\"{}\"}} {}",
                m.code,
                peer.saturating_sub(len)
            );
        }
    }
    let _ = write!(
        out,
        "# HELP hukou_final_size Entries of each member's log covered by a certificate (final).\n# TYPE hukou_final_size gauge\n{final_lines}"
    );
    let _ = writeln!(
        out,
        "# HELP hukou_replication_lag_entries Entries peers report that this node does not hold yet.\n# TYPE hukou_replication_lag_entries gauge\n{lag_lines}# HELP hukou_pending_entries Entries waiting for what they reference.\n# TYPE hukou_pending_entries gauge\nhukou_pending_entries {}",
        state.buffer.len()
    );
    let drops = state.buffer.drops();
    let _ = writeln!(
        out,
        "# HELP hukou_pending_bytes Bytes (encoded entries) waiting for what they reference.\n# TYPE hukou_pending_bytes gauge\nhukou_pending_bytes {}\n# HELP hukou_pending_dropped_total Replicated entries let go unjudged (pulled again later), by reason.\n# TYPE hukou_pending_dropped_total counter",
        state.buffer.bytes()
    );
    for reason in [DropReason::BufferFull, DropReason::TooFarAhead] {
        let _ = writeln!(
            out,
            "hukou_pending_dropped_total{{reason=\"{}\"}} {}",
            reason.name(),
            drops.of(reason)
        );
    }
    drop(state);
    let blocked = api.service.adoptions_blocked();
    let _ = writeln!(
        out,
        "# HELP hukou_fork_adoption_blocked Logs whose losing fork this node cannot leave (its own log, or final entries, built on it); see the node's log.\n# TYPE hukou_fork_adoption_blocked gauge"
    );
    for (log, _) in blocked {
        let _ = writeln!(out, "hukou_fork_adoption_blocked{{bureau=\"{log}\"}} 1");
    }
    let m = &api.metrics;
    let _ = writeln!(
        out,
        "# HELP hukou_api_request_seconds API request latency.\n# TYPE hukou_api_request_seconds histogram"
    );
    let mut cumulative = 0;
    for (i, b) in m.bounds_s.iter().enumerate() {
        cumulative += m.buckets[i].load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "hukou_api_request_seconds_bucket{{le=\"{b}\"}} {cumulative}"
        );
    }
    let count = m.count.load(Ordering::Relaxed);
    let _ = writeln!(
        out,
        "hukou_api_request_seconds_bucket{{le=\"+Inf\"}} {count}"
    );
    let _ = writeln!(
        out,
        "hukou_api_request_seconds_sum {}",
        m.sum_us.load(Ordering::Relaxed) as f64 / 1e6
    );
    let _ = writeln!(out, "hukou_api_request_seconds_count {count}");
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

fn parse_code(text: &str) -> ApiResult<BureauCode> {
    text.parse()
        .map_err(|e| ApiError::bad("bad_bureau", format!("{e}")))
}

/// Most logs whose stored finality `GET /v1/logs` reads on the request's own task.
const LOGS_READ_INLINE_MAX: usize = 64;

async fn logs(AxumState(api): AxumState<Api>) -> Json<Value> {
    let epochs = api.service.epochs();
    let membership = epochs.latest().membership.clone();
    // Every log of every epoch: a retired bureau's log stays readable.
    let mut names: std::collections::BTreeMap<BureauCode, String> = Default::default();
    for e in epochs.all() {
        for m in e.membership.members() {
            names.insert(m.code, m.name.clone());
        }
    }
    let codes: Vec<BureauCode> = names.keys().copied().collect();
    // Finality: what is certified, and what this node, as a witness, last cosigned.
    let read = move |store: &crate::store::Store| -> Vec<(Option<u64>, Option<u64>)> {
        codes
            .iter()
            .map(|&code| {
                let certificate_size = store
                    .latest_certificate(code)
                    .ok()
                    .flatten()
                    .map(|(size, _)| size);
                let cosigned_size = store
                    .cosigned(code)
                    .ok()
                    .flatten()
                    .and_then(|raw| SignedCheckpoint::decode(&raw).ok())
                    .map(|c| c.checkpoint.size);
                (certificate_size, cosigned_size)
            })
            .collect()
    };
    // Two cached reads per log take microseconds: for a few logs, a hop to a blocking thread
    // and back costs more than the reads (this route is what a load driver or monitor polls,
    // every few milliseconds). Many logs go to a blocking thread, off the runtime's workers.
    let stored = if names.len() <= LOGS_READ_INLINE_MAX {
        read(api.service.store())
    } else {
        read_store(&api, read).await
    };
    let state = api.service.state().await;
    let logs: Vec<Value> = names
        .iter()
        .zip(stored)
        .map(|((code, name), (certificate_size, cosigned_size))| {
            let tree = state.trees.get(code);
            json!({"bureau": code, "name": name, "length": state.ledger.log_len(*code),
                "root": hex::encode(tree.map_or(hukou_protocol::merkle::empty_root(), |t| t.root())),
                "final_size": state.final_size(*code), "certificate_size": certificate_size,
                "cosigned_size": cosigned_size, "member": membership.contains(*code)})
        })
        .collect();
    Json(json!({"network": membership.network_name(), "logs": logs}))
}

/// The latest certificate of a log this node holds: its checkpoint, its witnesses and their
/// cosignatures, and its canonical bytes (`certificate`, hex) for verifiers.
async fn log_certificate(
    AxumState(api): AxumState<Api>,
    Path(code): Path<String>,
) -> ApiResult<Json<Value>> {
    let code = parse_code(&code)?;
    let Some((_, raw)) = read_store(&api, move |store| store.latest_certificate(code))
        .await
        .map_err(store_error)?
    else {
        return Err(ApiError::not_found(
            "no_certificate",
            format!("this node holds no certificate of log {code} yet"),
        ));
    };
    let certificate = Certificate::decode(&raw).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "storage_failed",
            format!("stored certificate of {code} does not decode: {e}"),
        )
    })?;
    let c = &certificate.checkpoint;
    let quorum = api.service.membership().await.quorum();
    Ok(Json(json!({
        "bureau": c.log, "size": c.size, "root": hex::encode(c.root), "time_ms": c.time_ms,
        "network_id": c.network.to_string(),
        "witnesses": certificate.witnesses().collect::<Vec<_>>(),
        "cosignatures": certificate.cosignatures,
        "quorum": quorum,
        "certificate": hex::encode(&raw),
    })))
}

/// The latest checkpoint this node signed of its own log, with its signature and its wire
/// bytes (`checkpoint`, hex).
async fn log_checkpoint(
    AxumState(api): AxumState<Api>,
    Path(code): Path<String>,
) -> ApiResult<Json<Value>> {
    let code = parse_code(&code)?;
    let me = api.service.me();
    if code != me {
        return Err(ApiError::not_found(
            "not_own_log",
            format!(
                "this node ({me}) checkpoints only its own log; ask {code}'s node, or see /v1/logs/{code}/certificate"
            ),
        ));
    }
    let Some((_, raw)) = read_store(&api, move |store| store.latest_checkpoint(me))
        .await
        .map_err(store_error)?
    else {
        return Err(ApiError::not_found(
            "no_checkpoint",
            format!("this node has not checkpointed its log {me} yet"),
        ));
    };
    let signed = SignedCheckpoint::decode(&raw).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "storage_failed",
            format!("stored checkpoint does not decode: {e}"),
        )
    })?;
    let c = &signed.checkpoint;
    Ok(Json(json!({
        "bureau": c.log, "size": c.size, "root": hex::encode(c.root), "time_ms": c.time_ms,
        "network_id": c.network.to_string(),
        "signature": hex::encode(signed.signature.0),
        "checkpoint": hex::encode(&raw),
    })))
}

#[derive(Deserialize)]
struct RangeQuery {
    from: Option<u64>,
    max: Option<u64>,
}

async fn log_entries(
    AxumState(api): AxumState<Api>,
    Path(code): Path<String>,
    Query(q): Query<RangeQuery>,
) -> ApiResult<Json<Value>> {
    let code = parse_code(&code)?;
    let from = q.from.unwrap_or(0);
    let max = q.max.unwrap_or(100).min(RANGE_ENTRIES_MAX);
    let entries = read_store(&api, move |store| store.range(code, from, max as usize))
        .await
        .map_err(store_error)?;
    let out: Vec<Value> = entries.iter().map(entry_json).collect();
    Ok(Json(json!({"bureau": code, "from": from, "entries": out})))
}

/// A JSON view of an entry (person tags only).
pub fn entry_json(e: &SignedEntry) -> Value {
    let x = e.entry();
    json!({"ref": e.reference().to_string(), "seq": x.seq.0, "epoch": x.epoch, "time_ms": x.time_ms, "kind": x.body.kind(),
        "prev": x.prev.to_hex(), "body": body_json(&x.body), "signature": hex::encode(e.signature().0)})
}

fn body_json(b: &Body) -> Value {
    match b {
        Body::Enrol {
            person,
            placement,
            claim,
        } => {
            json!({"person_tag": person.to_hex(), "household": placement.household.0, "relation": placement.relation,
                "claim": claim.to_string()})
        }
        Body::Birth {
            person,
            placement,
            claim,
            born_on,
        } => {
            json!({"person_tag": person.to_hex(), "household": placement.household.0, "relation": placement.relation,
                "claim": claim.to_string(), "born_on": born_on})
        }
        Body::Claim {
            person,
            claimant,
            after,
        } => json!({"person_tag": person.to_hex(), "claimant": claimant,
            "after": after.map(|a| a.to_string())}),
        Body::Permit {
            person,
            origin,
            category,
            valid_until_ms,
            materials,
            corrects,
        } => json!({
            "person_tag": person.to_hex(), "origin": origin, "category": category, "valid_until_ms": valid_until_ms,
            "materials": materials.to_hex(), "corrects": corrects.map(|c| c.to_string())}),
        Body::Refusal { permit, reason } => json!({"permit": permit.to_string(), "reason": reason}),
        Body::Deregistration {
            permit,
            person,
            new_head,
        } => json!({"permit": permit.to_string(),
            "person_tag": person.to_hex(), "new_head_tag": new_head.map(|h| h.to_hex())}),
        Body::Registration {
            deregistration,
            person,
            placement,
        } => json!({"deregistration": deregistration.to_string(),
            "person_tag": person.to_hex(), "household": placement.household.0, "relation": placement.relation}),
        Body::Revocation { permit } => json!({"permit": permit.to_string()}),
        Body::Cancellation {
            person,
            reason,
            new_head,
        } => json!({"person_tag": person.to_hex(), "reason": reason,
            "new_head_tag": new_head.map(|h| h.to_hex())}),
        Body::HeadChange {
            household,
            new_head,
        } => json!({"household": household.0, "new_head_tag": new_head.to_hex()}),
    }
}

/// Raw entries for exporters: `application/octet-stream`, each entry as a u32 big-endian length
/// followed by its wire bytes.
async fn log_raw(
    AxumState(api): AxumState<Api>,
    Path(code): Path<String>,
    Query(q): Query<RangeQuery>,
) -> ApiResult<Response> {
    let code = parse_code(&code)?;
    let from = q.from.unwrap_or(0);
    let max = q.max.unwrap_or(RANGE_ENTRIES_MAX).min(RANGE_ENTRIES_MAX);
    let raw = read_store(&api, move |store| store.raw_range(code, from, max as usize))
        .await
        .map_err(store_error)?;
    let mut out = Vec::with_capacity(raw.iter().map(|r| r.len() + 4).sum());
    for r in raw {
        out.extend_from_slice(&(r.len() as u32).to_be_bytes());
        out.extend_from_slice(&r);
    }
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], out).into_response())
}

/// The Merkle tree of a log this node holds entries of.
fn log_tree(state: &State, code: BureauCode) -> ApiResult<&hukou_protocol::merkle::Tree> {
    state
        .trees
        .get(&code)
        .ok_or_else(|| ApiError::not_found("unknown_log", format!("no entries of {code}")))
}

#[derive(Deserialize)]
struct InclusionQuery {
    seq: u64,
    size: Option<u64>,
}

async fn inclusion(
    AxumState(api): AxumState<Api>,
    Path(code): Path<String>,
    Query(q): Query<InclusionQuery>,
) -> ApiResult<Json<Value>> {
    let code = parse_code(&code)?;
    let state = api.service.state().await;
    let tree = log_tree(&state, code)?;
    let size = q.size.unwrap_or(tree.len());
    let proof = tree
        .inclusion_proof(q.seq, size)
        .map_err(|e| ApiError::bad(e.name(), e.to_string()))?;
    let leaf = tree.leaf(q.seq).expect("proof exists, so the leaf does");
    Ok(Json(
        json!({"bureau": code, "seq": q.seq, "size": size, "leaf": hex::encode(leaf),
        "root": hex::encode(tree.root_at(size).map_err(|e| ApiError::bad(e.name(), e.to_string()))?),
        "proof": proof.iter().map(hex::encode).collect::<Vec<_>>()}),
    ))
}

#[derive(Deserialize)]
struct ConsistencyQuery {
    from: u64,
    to: Option<u64>,
}

async fn consistency(
    AxumState(api): AxumState<Api>,
    Path(code): Path<String>,
    Query(q): Query<ConsistencyQuery>,
) -> ApiResult<Json<Value>> {
    let code = parse_code(&code)?;
    let state = api.service.state().await;
    let tree = log_tree(&state, code)?;
    let to = q.to.unwrap_or(tree.len());
    let proof = tree
        .consistency_proof(q.from, to)
        .map_err(|e| ApiError::bad(e.name(), e.to_string()))?;
    let root = |s| {
        tree.root_at(s)
            .map(hex::encode)
            .map_err(|e| ApiError::bad(e.name(), e.to_string()))
    };
    Ok(Json(
        json!({"bureau": code, "from": q.from, "to": to, "from_root": root(q.from)?, "to_root": root(to)?,
        "proof": proof.iter().map(hex::encode).collect::<Vec<_>>()}),
    ))
}

async fn fraud_proofs(AxumState(api): AxumState<Api>) -> Json<Value> {
    let state = api.service.state().await;
    let proofs: Vec<Value> = state
        .fraud_proofs
        .values()
        .map(|p| {
            json!({"author": p.author(), "seq": p.seq().0, "first": p.first.reference().to_string(),
            "second": p.second.reference().to_string(), "proof": hex::encode(p.encode())})
        })
        .collect();
    Json(json!({"fraud_proofs": proofs}))
}

/// Entries a configuration cut refused (a revoked key's or a retired bureau's, at or after the
/// cut), kept as evidence (`Store::revoked`, at most `REVOKED_KEPT_PER_LOG_MAX` per log), by log
/// and seq. `entry` is the hex of `SignedEntry::encode`: `hukou export` writes them to
/// `revoked/<log>.log`, and `hukou audit` checks each against the configuration log.
async fn revoked(AxumState(api): AxumState<Api>) -> ApiResult<Json<Value>> {
    let stored = read_store(&api, |store| store.revoked())
        .await
        .map_err(store_error)?;
    let list: Vec<Value> = stored
        .iter()
        .map(|(log, seq, raw)| json!({"log": log, "seq": seq, "entry": hex::encode(raw)}))
        .collect();
    Ok(Json(json!({"revoked": list})))
}

/// Checkpoint forks the witness stored: two checkpoints one author signed of its log at one
/// size with different roots (`witness::note_checkpoint`). `evidence` is the hex of
/// `witness::encode_checkpoint_fork`; `a` and `b` the hex of each `SignedCheckpoint::encode`, so
/// anyone holding the genesis can check the fork (`CheckpointFork::verify`).
async fn checkpoint_forks(AxumState(api): AxumState<Api>) -> ApiResult<Json<Value>> {
    let stored = read_store(&api, |store| store.checkpoint_forks())
        .await
        .map_err(store_error)?;
    let forks: Vec<Value> = stored
        .iter()
        .filter_map(|(log, size, raw)| {
            let fork = crate::witness::decode_checkpoint_fork(raw)?;
            Some(json!({"kind": "checkpoint_fork", "log": log, "size": size,
                "roots": [hex::encode(fork.a.checkpoint.root), hex::encode(fork.b.checkpoint.root)],
                "a": hex::encode(fork.a.encode()), "b": hex::encode(fork.b.encode()),
                "evidence": hex::encode(raw)}))
        })
        .collect();
    Ok(Json(json!({"checkpoint_forks": forks})))
}

async fn refusals(AxumState(api): AxumState<Api>) -> Json<Value> {
    let state = api.service.state().await;
    let list: Vec<Value> = state
        .recent_refusals
        .iter()
        .map(|(t, rule, message)| json!({"time_ms": t, "error": rule, "message": message}))
        .collect();
    Json(json!({"refusals": list}))
}

/// Runs the JSON route `path` in-process, for the web console (`crate::ui`): the same handler,
/// the same request parsing (unknown fields refused) and the same errors as over HTTP, minus the
/// bearer token, which the console replaces with its signed-in session. `body` is the JSON body
/// of a POST route (ignored by GET routes).
pub(crate) async fn call(api: &Api, path: &str, body: Value) -> ApiResult<Value> {
    fn parsed<T: serde::de::DeserializeOwned>(body: Value) -> ApiResult<ApiJson<T>> {
        serde_json::from_value(body).map(ApiJson).map_err(|e| {
            ApiError::bad(
                "bad_json",
                format!("request body is not valid JSON for this call: {e}"),
            )
        })
    }
    let s = AxumState(api.clone());
    let Json(v) = match path {
        "/v1/enrol" => enrol(s, parsed(body)?).await?,
        "/v1/birth" => birth(s, parsed(body)?).await?,
        "/v1/permits" => issue_permit(s, parsed(body)?).await?,
        "/v1/permits/revoke" => revoke_permit(s, parsed(body)?).await?,
        "/v1/deregister" => deregister(s, parsed(body)?).await?,
        "/v1/refuse" => refuse(s, parsed(body)?).await?,
        "/v1/register" => register(s, parsed(body)?).await?,
        "/v1/cancel" => cancel(s, parsed(body)?).await?,
        "/v1/head-change" => head_change(s, parsed(body)?).await?,
        "/v1/person" => person_show(s, parsed(body)?).await?,
        "/healthz" => healthz(s).await,
        "/v1/inbox" => inbox(s).await,
        "/v1/logs" => logs(s).await,
        "/v1/fraud-proofs" => fraud_proofs(s).await,
        "/v1/finality" => finality(s).await,
        "/v1/checkpoint-forks" => checkpoint_forks(s).await?,
        _ => match path.strip_prefix("/v1/transfers/") {
            Some(reference) => transfer_show(s, Path(reference.to_string())).await?,
            None => return Err(ApiError::not_found("no_such_route", path.to_string())),
        },
    };
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hukou_protocol::calendar::{Date, china_day_end_ms};

    /// `hour`:00 China time on `date`.
    fn china_ms(date: &str, hour: u64) -> u64 {
        let date: Date = date.parse().unwrap();
        china_day_end_ms(date) + 1 - 86_400_000 + hour * 3_600_000
    }

    #[test]
    fn deadline_facts_inside_the_calendar() {
        let facts = deadline_json(
            Calendar::prc(),
            china_ms("2026-12-03", 10),
            1,
            china_ms("2026-12-07", 9),
        );
        assert_eq!(
            facts,
            json!({"received": "2026-12-03", "working_days": 1, "deadline": "2026-12-04",
                "deadline_ms": china_day_end_ms("2026-12-04".parse().unwrap()), "overdue": true,
                "working_days_overdue": 1, "deadline_unknown": null, "calendar_year_missing": null})
        );
    }

    #[test]
    fn a_deadline_in_an_unpublished_year_is_unknown_not_guessed() {
        let received_ms = china_ms("2026-12-31", 10);
        let unknown = |now_ms, overdue: Value| {
            json!({"received": "2026-12-31", "working_days": 1, "deadline": null,
                "deadline_ms": null, "overdue": overdue, "working_days_overdue": null,
                "deadline_unknown": "calendar_year_missing", "calendar_year_missing": 2027})
            .eq(&deadline_json(Calendar::prc(), received_ms, 1, now_ms))
        };
        // Still 2026: the deadline falls in 2027 or later, so it is not past.
        assert!(unknown(china_ms("2026-12-31", 18), json!(false)));
        // In 2027: whether it is past is unknown too.
        assert!(unknown(china_ms("2027-01-04", 9), Value::Null));
        // A known deadline, past, whose lateness needs 2027.
        let facts = deadline_json(
            Calendar::prc(),
            china_ms("2026-12-30", 10),
            1,
            china_ms("2027-01-04", 9),
        );
        assert_eq!(facts["deadline"], "2026-12-31");
        assert_eq!(facts["overdue"], true);
        assert_eq!(facts["working_days_overdue"], Value::Null);
        assert_eq!(facts["deadline_unknown"], Value::Null);
        assert_eq!(facts["calendar_year_missing"], 2027);
    }
}
