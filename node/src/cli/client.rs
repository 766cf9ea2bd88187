//! The clerk's commands: a client of a running node's HTTP/JSON API (`docs/API.md`).
//!
//! `hukou enrol|birth|permit issue|permit revoke|deregister|refuse|register|cancel|head-change`
//! record entries; `hukou person show|transfer show|inbox|status` look things up. Every command
//! takes the node from `--node URL` or `HUKOU_NODE`, the clerk token from `--token T`,
//! `HUKOU_TOKEN` or `--token-file FILE`, and prints the node's JSON answer with `--json`
//! (DESIGN.md, "The interface scripts rely on").
//!
//! - Writes print `recorded KIND REF at TIME (China time)` on stderr and the full reference alone
//!   on stdout, so `REF=$(hukou permit issue ...)` works in scripts.
//! - A refused call (any non-2xx answer) exits 1 with the node's `{"error": RULE, "message": ...}`:
//!   on stdout with `--json`, else as `error: RULE: message` on stderr. An ID number that is not
//!   valid is refused here, before any call, with the same name and message as the node's.
//! - A node that cannot be reached exits 1 with `error: cannot reach node at URL: ...`
//!   (`{"error": "node_unreachable", ...}` with `--json`).
//!
//! ID numbers travel only in request bodies, never in URLs. The bulk import streams in both
//! directions at once, which `ureq` cannot do, so it has its own small HTTP/1.1 client in
//! [`bulk`].

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{ArgGroup, Args, Subcommand};
use hukou_protocol::calendar::china_date;
use hukou_protocol::id::CitizenId;
use serde_json::{Value, json};

use super::{EXIT_REFUSED, Exit, print_json};

mod bulk;

/// How long to wait for a connection to the node.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one call may take in all (a write waits for its flush to disk).
const CALL_TIMEOUT: Duration = Duration::from_secs(75);
/// Largest answer read from the node (a person's history or a busy inbox can be long).
const ANSWER_BYTES_MAX: u64 = 256 << 20;
/// China Standard Time, UTC+8, in milliseconds.
const CHINA_OFFSET_MS: u64 = 8 * 3_600_000;

/// The clerk's commands, flattened into `hukou`'s top level.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Enrol a person registered at this bureau (opening balance), or many with --bulk.
    Enrol(EnrolArgs),
    /// Register a newborn at this bureau (出生登记).
    Birth(BirthArgs),
    /// Issue or revoke a permit to move in (准迁证).
    #[command(subcommand)]
    Permit(PermitCommand),
    /// Remove a person from this bureau against a permit (迁出); this bureau is the origin.
    Deregister(DeregisterArgs),
    /// Decline a permit naming this bureau as origin.
    Refuse(RefuseArgs),
    /// Register a person against a deregistration (落户); this bureau is the destination.
    Register(RegisterArgs),
    /// Cancel a person's registration here (注销: death, emigration, enlistment, ...).
    Cancel(CancelArgs),
    /// Name a new head of a household of this bureau (变更户主).
    HeadChange(HeadChangeArgs),
    /// Look up a person.
    #[command(subcommand)]
    Person(PersonCommand),
    /// Follow a transfer (办理进度).
    #[command(subcommand)]
    Transfer(TransferCommand),
    /// Permits awaiting this bureau's removal and removals awaiting its registration.
    Inbox(NodeArgs),
    /// The node's health: bureau, network, peers, log length.
    Status(NodeArgs),
}

/// Which node, with which token, and how to print.
#[derive(Debug, Clone, Args)]
pub struct NodeArgs {
    /// The node's API, e.g. http://127.0.0.1:8100.
    #[arg(long, env = "HUKOU_NODE", value_name = "URL")]
    pub node: String,
    /// The node's clerk token (writes and person look-ups need it).
    #[arg(
        long,
        env = "HUKOU_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// Read the clerk token from FILE (e.g. the node's api.token); --token wins if both are given.
    #[arg(long, env = "HUKOU_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Print the node's JSON answer on stdout (a refusal as {"error": RULE, "message": ...}).
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `hukou enrol`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("who").required(true).args(["person", "bulk"])))]
pub struct EnrolArgs {
    /// The person's citizen ID number.
    #[arg(long, value_name = "ID")]
    pub person: Option<String>,
    /// Join this existing household of the bureau (default: a new household headed by the person).
    #[arg(long, value_name = "N", requires = "relation", conflicts_with = "bulk")]
    pub household: Option<u64>,
    /// Relation to the household's head: head, spouse, child, parent, grandchild, sibling, ...
    #[arg(long, value_name = "NAME", conflicts_with = "bulk")]
    pub relation: Option<String>,
    /// Import an NDJSON file (`-` for stdin) of {"person": ID, "household"?: N, "relation"?: NAME}
    /// lines; exit 1 if any line is refused.
    #[arg(long, value_name = "FILE")]
    pub bulk: Option<PathBuf>,
    /// Wait up to SECONDS (default 10, at most 60) for the claim on the person to become final:
    /// the person's arbiter must grant it and a quorum of bureaus certify it.
    #[arg(long, value_name = "SECONDS", conflicts_with = "bulk")]
    pub wait: Option<u64>,
    #[command(flatten)]
    pub node: NodeArgs,
}

/// Arguments of `hukou birth`.
#[derive(Debug, Args)]
pub struct BirthArgs {
    /// The newborn's citizen ID number.
    #[arg(long, value_name = "ID")]
    pub person: String,
    /// The household the newborn joins.
    #[arg(long, value_name = "N")]
    pub household: u64,
    /// Relation to the household's head (child, grandchild, ...).
    #[arg(long, value_name = "NAME")]
    pub relation: String,
    /// Wait up to SECONDS (default 10, at most 60) for the claim on the newborn to become final.
    #[arg(long, value_name = "SECONDS")]
    pub wait: Option<u64>,
    #[command(flatten)]
    pub node: NodeArgs,
}

/// `hukou permit ...`
#[derive(Debug, Subcommand)]
pub enum PermitCommand {
    /// Issue a permit to move in: this bureau is the destination.
    Issue(PermitIssueArgs),
    /// Withdraw one of this bureau's permits before the origin acts on it.
    Revoke(RefArgs),
}

/// Arguments of `hukou permit issue`.
#[derive(Debug, Args)]
pub struct PermitIssueArgs {
    /// The person's citizen ID number.
    #[arg(long, value_name = "ID")]
    pub person: String,
    /// The bureau where the person is registered now (6-digit code).
    #[arg(long, value_name = "CODE")]
    pub origin: String,
    /// spouse, child, parent, talent, graduate, admitted-student, work-transfer, postdoc,
    /// returned-student, civil-servant, residence-permit, return-after-error.
    #[arg(long, value_name = "NAME")]
    pub category: String,
    /// Days the permit stays valid, 1 to 366 (the node's default: 40).
    #[arg(long, value_name = "N")]
    pub valid_days: Option<u64>,
    /// SHA-256 digest of the supporting materials, 64 hex digits.
    #[arg(long, value_name = "HEX")]
    pub materials: Option<String>,
    /// The erroneous transfer this one reverses (with --category return-after-error).
    #[arg(long, value_name = "REF")]
    pub corrects: Option<String>,
    #[command(flatten)]
    pub node: NodeArgs,
}

/// An entry reference: `CODE:SEQ:HASH`, or `CODE:SEQ` for the entry this node holds there.
#[derive(Debug, Args)]
pub struct RefArgs {
    /// The reference, CODE:SEQ:HASH (or CODE:SEQ).
    #[arg(value_name = "REF")]
    pub reference: String,
    #[command(flatten)]
    pub node: NodeArgs,
}

/// Arguments of `hukou deregister`.
#[derive(Debug, Args)]
pub struct DeregisterArgs {
    /// The permit this removal answers.
    #[arg(long, value_name = "REF")]
    pub permit: String,
    /// The household's new head, when the person leaving is its head.
    #[arg(long, value_name = "ID")]
    pub new_head: Option<String>,
    #[command(flatten)]
    pub node: NodeArgs,
}

/// Arguments of `hukou refuse`.
#[derive(Debug, Args)]
pub struct RefuseArgs {
    /// The permit declined.
    #[arg(long, value_name = "REF")]
    pub permit: String,
    /// not-registered-here, record-mismatch, duplicate-id, materials-incomplete,
    /// applicant-withdrew.
    #[arg(long, value_name = "NAME")]
    pub reason: String,
    #[command(flatten)]
    pub node: NodeArgs,
}

/// Arguments of `hukou register`.
#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// The (final) deregistration at the origin that this registration consumes.
    #[arg(long, value_name = "REF")]
    pub deregistration: String,
    /// Join this existing household (default: a new household headed by the person).
    #[arg(long, value_name = "N", requires = "relation")]
    pub household: Option<u64>,
    /// Relation to the household's head.
    #[arg(long, value_name = "NAME")]
    pub relation: Option<String>,
    /// If the deregistration is not final yet, wait for its certificate (up to SECONDS,
    /// default 30, at most 60) instead of being refused with `deregistration_not_final`.
    #[arg(long, value_name = "SECONDS", num_args = 0..=1, default_missing_value = "30")]
    pub wait: Option<u64>,
    #[command(flatten)]
    pub node: NodeArgs,
}

/// Arguments of `hukou cancel`.
#[derive(Debug, Args)]
pub struct CancelArgs {
    /// The person's citizen ID number.
    #[arg(long, value_name = "ID")]
    pub person: String,
    /// death, emigration, enlistment, duplicate-record.
    #[arg(long, value_name = "NAME")]
    pub reason: String,
    /// The household's new head, when the person is its head.
    #[arg(long, value_name = "ID")]
    pub new_head: Option<String>,
    #[command(flatten)]
    pub node: NodeArgs,
}

/// Arguments of `hukou head-change`.
#[derive(Debug, Args)]
pub struct HeadChangeArgs {
    /// The household, by its number at this bureau.
    #[arg(long, value_name = "N")]
    pub household: u64,
    /// The new head's citizen ID number.
    #[arg(long, value_name = "ID")]
    pub new_head: String,
    #[command(flatten)]
    pub node: NodeArgs,
}

/// `hukou person ...`
#[derive(Debug, Subcommand)]
pub enum PersonCommand {
    /// Where a person is registered, transfers in flight, and the entries naming them.
    Show(PersonShowArgs),
}

/// Arguments of `hukou person show`.
#[derive(Debug, Args)]
pub struct PersonShowArgs {
    /// The person's citizen ID number (sent in the request body, never in the URL).
    #[arg(value_name = "ID")]
    pub id: String,
    #[command(flatten)]
    pub node: NodeArgs,
}

/// `hukou transfer ...`
#[derive(Debug, Subcommand)]
pub enum TransferCommand {
    /// The steps of a transfer, from any of its permit, deregistration or registration.
    Show(RefArgs),
}

impl ClientCommand {
    /// Runs the command.
    pub fn run(self) -> anyhow::Result<()> {
        match self {
            ClientCommand::Enrol(args) => enrol(args),
            ClientCommand::Birth(args) => {
                let client = Client::new(&args.node)?;
                let person = client.check_id(&args.person)?;
                let mut body = json!({"person": person, "household": args.household,
                    "relation": args.relation});
                insert_some(
                    &mut body,
                    "wait_ms",
                    args.wait.map(|s| Value::from(s * 1000)),
                );
                let answer = client.post("/v1/birth", &body)?;
                client.report_write(&answer)
            }
            ClientCommand::Permit(PermitCommand::Issue(args)) => {
                let client = Client::new(&args.node)?;
                let person = client.check_id(&args.person)?;
                let mut body = json!({"person": person, "origin": args.origin,
                    "category": args.category});
                insert_some(&mut body, "valid_days", args.valid_days.map(Value::from));
                insert_some(&mut body, "materials", args.materials.map(Value::from));
                insert_some(&mut body, "corrects", args.corrects.map(Value::from));
                let answer = client.post("/v1/permits", &body)?;
                client.report_write(&answer)
            }
            ClientCommand::Permit(PermitCommand::Revoke(args)) => {
                let client = Client::new(&args.node)?;
                let answer =
                    client.post("/v1/permits/revoke", &json!({"permit": args.reference}))?;
                client.report_write(&answer)
            }
            ClientCommand::Deregister(args) => {
                let client = Client::new(&args.node)?;
                let mut body = json!({"permit": args.permit});
                if let Some(id) = &args.new_head {
                    body["new_head"] = client.check_id(id)?.into();
                }
                let answer = client.post("/v1/deregister", &body)?;
                client.report_write(&answer)
            }
            ClientCommand::Refuse(args) => {
                let client = Client::new(&args.node)?;
                let body = json!({"permit": args.permit, "reason": args.reason});
                let answer = client.post("/v1/refuse", &body)?;
                client.report_write(&answer)
            }
            ClientCommand::Register(args) => {
                let client = Client::new(&args.node)?;
                let mut body = json!({"deregistration": args.deregistration});
                insert_some(&mut body, "household", args.household.map(Value::from));
                insert_some(&mut body, "relation", args.relation.map(Value::from));
                insert_some(
                    &mut body,
                    "wait_ms",
                    args.wait.map(|s| Value::from(s.saturating_mul(1000))),
                );
                let answer = client.post("/v1/register", &body)?;
                client.report_write(&answer)
            }
            ClientCommand::Cancel(args) => {
                let client = Client::new(&args.node)?;
                let person = client.check_id(&args.person)?;
                let mut body = json!({"person": person, "reason": args.reason});
                if let Some(id) = &args.new_head {
                    body["new_head"] = client.check_id(id)?.into();
                }
                let answer = client.post("/v1/cancel", &body)?;
                client.report_write(&answer)
            }
            ClientCommand::HeadChange(args) => {
                let client = Client::new(&args.node)?;
                let new_head = client.check_id(&args.new_head)?;
                let body = json!({"household": args.household, "new_head": new_head});
                let answer = client.post("/v1/head-change", &body)?;
                client.report_write(&answer)
            }
            ClientCommand::Person(PersonCommand::Show(args)) => {
                let client = Client::new(&args.node)?;
                let person = client.check_id(&args.id)?;
                let answer = client.post("/v1/person", &json!({"person": person}))?;
                client.show(&answer, print_person)
            }
            ClientCommand::Transfer(TransferCommand::Show(args)) => {
                let client = Client::new(&args.node)?;
                let path = format!("/v1/transfers/{}", path_segment(&args.reference));
                let answer = client.get(&path)?;
                client.show(&answer, print_transfer)
            }
            ClientCommand::Inbox(args) => {
                let client = Client::new(&args)?;
                let answer = client.get("/v1/inbox")?;
                client.show(&answer, print_inbox)
            }
            ClientCommand::Status(args) => {
                let client = Client::new(&args)?;
                let answer = client.get("/healthz")?;
                client.show(&answer, print_status)
            }
        }
    }
}

fn enrol(args: EnrolArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.node)?;
    if let Some(file) = &args.bulk {
        return bulk::enrol_bulk(&client, file);
    }
    let id = args
        .person
        .as_deref()
        .expect("clap requires --person or --bulk");
    let person = client.check_id(id)?;
    let mut body = json!({"person": person});
    insert_some(&mut body, "household", args.household.map(Value::from));
    insert_some(&mut body, "relation", args.relation.map(Value::from));
    insert_some(
        &mut body,
        "wait_ms",
        args.wait.map(|s| Value::from(s * 1000)),
    );
    let answer = client.post("/v1/enrol", &body)?;
    client.report_write(&answer)
}

/// Sets `key` in a JSON object when there is a value: optional fields are left out, not sent
/// as `null`, so requests look like the examples of docs/API.md.
fn insert_some(body: &mut Value, key: &str, value: Option<Value>) {
    if let Some(value) = value {
        body[key] = value;
    }
}

/// A node, reached over HTTP.
pub(crate) struct Client {
    /// `http://HOST:PORT[/PREFIX]`, without a trailing slash.
    base: String,
    /// `HOST:PORT` (or `HOST`), as given.
    authority: String,
    token: Option<String>,
    json: bool,
    agent: ureq::Agent,
}

impl Client {
    pub(crate) fn new(args: &NodeArgs) -> anyhow::Result<Client> {
        let given = args.node.trim();
        let url = if given.contains("://") {
            given.to_string()
        } else {
            format!("http://{given}")
        };
        let Some(rest) = url.strip_prefix("http://") else {
            anyhow::bail!(
                "node URL {given:?} is not supported: the node's API speaks plain http:// \
                 (e.g. http://127.0.0.1:8100)"
            );
        };
        let authority = rest.split('/').next().unwrap_or_default().to_string();
        if authority.is_empty() || authority.contains('@') {
            anyhow::bail!("node URL {given:?} does not name a host (e.g. http://127.0.0.1:8100)");
        }
        let base = url.trim_end_matches('/').to_string();
        let token = match (&args.token, &args.token_file) {
            (Some(token), _) => Some(token.trim().to_string()),
            (None, Some(file)) => Some(
                std::fs::read_to_string(file)
                    .with_context(|| format!("cannot read token file {}", file.display()))?
                    .trim()
                    .to_string(),
            ),
            (None, None) => None,
        }
        .filter(|token| !token.is_empty());
        if let Some(token) = &token
            && !token.bytes().all(|b| b.is_ascii_graphic())
        {
            anyhow::bail!("the clerk token holds spaces or control characters; check HUKOU_TOKEN");
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_global(Some(CALL_TIMEOUT))
            .proxy(None)
            .max_redirects(0)
            .user_agent(concat!("hukou/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(Client {
            base,
            authority,
            token,
            json: args.json,
            agent,
        })
    }

    /// The path part of the node URL (empty, or `/PREFIX`), for requests built by hand.
    fn path_prefix(&self) -> &str {
        &self.base["http://".len() + self.authority.len()..]
    }

    /// Validates an ID number here, so a typo is named without a round trip; refuses it with
    /// the node's own name and message. Returns the normalised ID.
    pub(crate) fn check_id(&self, text: &str) -> anyhow::Result<String> {
        match CitizenId::parse(text) {
            Ok(id) => Ok(id.as_str().to_string()),
            Err(e) => {
                Err(self.refused(&json!({"error": e.name(), "message": format!("{text:?}: {e}")})))
            }
        }
    }

    pub(crate) fn get(&self, path: &str) -> anyhow::Result<Value> {
        let mut request = self.agent.get(format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        self.answer(request.call())
    }

    pub(crate) fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let mut request = self.agent.post(format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        self.answer(request.send_json(body))
    }

    /// The JSON of a 2xx answer; a refusal or an unreachable node is reported and becomes the
    /// silent [`Exit`].
    fn answer(
        &self,
        result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> anyhow::Result<Value> {
        let response = result.map_err(|e| self.unreachable(&e.to_string()))?;
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .with_config()
            .limit(ANSWER_BYTES_MAX)
            .read_to_vec()
            .map_err(|e| self.unreachable(&format!("the answer broke off: {e}")))?;
        if (200..300).contains(&status) {
            serde_json::from_slice(&bytes).map_err(|e| {
                self.refused(&json!({"error": "bad_answer", "message":
                    format!("the node answered {status} with something that is not JSON: {e}")}))
            })
        } else {
            Err(self.refused(&refusal_json(status, &bytes)))
        }
    }

    /// Reports `{"error", "message"}`: as JSON on stdout with `--json`, else as
    /// `error: NAME: MESSAGE` on stderr. Returns the silent exit 1.
    pub(crate) fn refused(&self, refusal: &Value) -> anyhow::Error {
        if self.json {
            print_json(refusal);
        } else {
            eprintln!(
                "error: {}: {}",
                refusal["error"].as_str().unwrap_or("refused"),
                refusal["message"].as_str().unwrap_or("")
            );
        }
        Exit { code: EXIT_REFUSED }.into()
    }

    /// Reports a node that cannot be reached (or that dropped the connection).
    fn unreachable(&self, why: &str) -> anyhow::Error {
        let message = format!("cannot reach node at {}: {why}", self.base);
        if self.json {
            print_json(&json!({"error": "node_unreachable", "message": message}));
            Exit { code: EXIT_REFUSED }.into()
        } else {
            anyhow::anyhow!(message)
        }
    }

    /// Prints a write's answer: with `--json` as is; else `recorded ...` on stderr and the
    /// reference alone on stdout.
    fn report_write(&self, answer: &Value) -> anyhow::Result<()> {
        if self.json {
            print_json(answer);
            return Ok(());
        }
        let reference = text(&answer["ref"]);
        let mut line = format!(
            "recorded {} {} at {} (China time)",
            text(&answer["kind"]),
            short_ref(&reference),
            time_text(&answer["time_ms"])
        );
        if let Some(h) = answer["household"].as_u64() {
            line.push_str(&format!(", household {h}"));
        }
        if let Some(days) = answer["valid_days"].as_u64() {
            line.push_str(&format!(", valid {days} days"));
        }
        if let Some(acted_on) = answer["acted_on"].as_str() {
            line.push_str(&format!(", on {}", short_ref(acted_on)));
        }
        eprintln!("{line}");
        outln!("{reference}");
        Ok(())
    }

    /// Prints a look-up's answer: with `--json` as is, else through `human`.
    fn show(&self, answer: &Value, human: fn(&Value)) -> anyhow::Result<()> {
        if self.json {
            print_json(answer);
        } else {
            human(answer);
        }
        Ok(())
    }
}

/// The node's `{"error", "message"}` from a non-2xx answer; anything else (a proxy's HTML page,
/// say) becomes `http_STATUS` with the text.
fn refusal_json(status: u16, bytes: &[u8]) -> Value {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v) if v["error"].is_string() => v,
        _ => {
            let text = String::from_utf8_lossy(bytes);
            let text: String = text.trim().chars().take(300).collect();
            json!({"error": format!("http_{status}"),
                "message": format!("the node answered {status}: {text}")})
        }
    }
}

/// A reference (or any text) as one URL path segment.
fn path_segment(text: &str) -> String {
    let mut out = String::new();
    for b in text.trim().bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A JSON string or number as text; `-` for null or absent.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_string(),
        other => other.to_string(),
    }
}

/// `CODE:SEQ:0123abcd…` for a full reference; anything else unchanged.
fn short_ref(reference: &str) -> String {
    let mut parts = reference.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(code), Some(seq), Some(hash)) if hash.len() > 8 => {
            format!("{code}:{seq}:{}…", &hash[..8])
        }
        _ => reference.to_string(),
    }
}

/// `CODE:SEQ` of a reference: what the node accepts for the entry it holds there.
fn seq_ref(v: &Value) -> String {
    let reference = text(v);
    let mut parts = reference.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(code), Some(seq), Some(_)) => format!("{code}:{seq}"),
        _ => reference,
    }
}

/// `YYYY-MM-DD HH:MM:SS` in China (UTC+8) for milliseconds after the Unix epoch.
pub(crate) fn china_time(time_ms: u64) -> String {
    let date = china_date(time_ms);
    let seconds = (time_ms.saturating_add(CHINA_OFFSET_MS) % 86_400_000) / 1000;
    format!(
        "{date} {:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

fn time_text(v: &Value) -> String {
    v.as_u64().map_or_else(|| "-".to_string(), china_time)
}

/// A deadline object of the node as `2026-11-25` plus `(overdue N working days)` if late; a
/// deadline the node's calendar cannot compute names the year whose calendar is missing.
fn deadline_text(d: &Value) -> String {
    if d.is_null() {
        return "-".to_string();
    }
    let missing_year = d["calendar_year_missing"].as_i64();
    if d["deadline"].is_null()
        && let Some(year) = missing_year
    {
        return format!("unknown (the {year} working-day calendar is not published)");
    }
    let mut s = text(&d["deadline"]);
    if d["overdue"].as_bool() == Some(true) {
        match (d["working_days_overdue"].as_u64(), missing_year) {
            (None, Some(year)) => s.push_str(&format!(
                " (overdue; working days not counted: the {year} calendar is not published)"
            )),
            (late, _) => {
                let late = late.unwrap_or(0);
                s.push_str(&format!(
                    " (overdue {late} working day{})",
                    if late == 1 { "" } else { "s" }
                ));
            }
        }
    }
    s
}

/// `yes`/`no` for a JSON boolean, empty otherwise.
fn yes_no(v: &Value) -> String {
    match v.as_bool() {
        Some(true) => "yes".to_string(),
        Some(false) => "no".to_string(),
        None => String::new(),
    }
}

/// Aligned columns, two spaces apart, headers first. Widths count characters.
fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let headers: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&headers).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            if i + 1 < row.len() {
                line.push_str(&" ".repeat(widths[i] - cell.chars().count()));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn list(v: &Value) -> &[Value] {
    v.as_array().map_or(&[], Vec::as_slice)
}

fn print_person(p: &Value) {
    outln!("person tag     {}", text(&p["person_tag"]));
    outln!("registered at  {}", text(&p["registered_at"]));
    if p["duplicate"].as_bool() == Some(true) {
        outln!("DUPLICATE      registered at more than one bureau (重): see the records");
    }
    if !p["cancelled"].is_null() {
        outln!(
            "cancelled      {} by {}",
            text(&p["cancelled"]["reason"]),
            seq_ref(&p["cancelled"]["by"])
        );
    }
    let records: Vec<Vec<String>> = list(&p["records"])
        .iter()
        .map(|r| {
            vec![
                text(&r["bureau"]),
                text(&r["household"]),
                if r["head"].as_bool() == Some(true) {
                    "yes".to_string()
                } else {
                    "no".to_string()
                },
                seq_ref(&r["since"]),
            ]
        })
        .collect();
    if !records.is_empty() {
        outln!("\nregistrations:");
        out!(
            "{}",
            table(&["BUREAU", "HOUSEHOLD", "HEAD", "SINCE"], &records)
        );
    }
    let transit: Vec<Vec<String>> = list(&p["in_transit"])
        .iter()
        .map(|t| {
            vec![
                seq_ref(&t["deregistration"]),
                text(&t["from"]),
                text(&t["to"]),
            ]
        })
        .collect();
    if !transit.is_empty() {
        outln!("\nin transit:");
        out!("{}", table(&["DEREGISTRATION", "FROM", "TO"], &transit));
    }
    let history: Vec<Vec<String>> = list(&p["history"])
        .iter()
        .map(|h| {
            vec![
                time_text(&h["time_ms"]),
                text(&h["kind"]),
                text(&h["bureau"]),
                seq_ref(&h["ref"]),
            ]
        })
        .collect();
    if history.is_empty() {
        outln!("\nno entry on this node names this person");
    } else {
        outln!("\nhistory (China time):");
        out!("{}", table(&["TIME", "KIND", "BUREAU", "REF"], &history));
    }
}

fn print_transfer(t: &Value) {
    outln!("permit       {}", text(&t["permit"]));
    outln!(
        "from         {} (origin) to {} (destination)",
        text(&t["origin"]),
        text(&t["destination"])
    );
    outln!("category     {}", text(&t["category"]));
    outln!("status       {}", text(&t["status"]));
    if let Some(is_final) = t["final"].as_bool() {
        outln!(
            "final        {}",
            if is_final {
                "yes: every recorded step is certified by a quorum"
            } else {
                "not yet: a recorded step awaits its certificate"
            }
        );
    }
    let steps: Vec<Vec<String>> = list(&t["steps"])
        .iter()
        .map(|s| {
            vec![
                text(&s["step"]),
                text(&s["bureau"]),
                if s["pending"].as_bool() == Some(true) {
                    "pending".to_string()
                } else {
                    seq_ref(&s["ref"])
                },
                time_text(&s["time_ms"]),
                deadline_text(&s["deadline"]),
                yes_no(&s["final"]),
            ]
        })
        .collect();
    outln!("\nsteps (China time):");
    out!(
        "{}",
        table(
            &["STEP", "BUREAU", "REF", "TIME", "DEADLINE", "FINAL"],
            &steps
        )
    );
}

fn print_inbox(inbox: &Value) {
    let permits: Vec<Vec<String>> = list(&inbox["permits_awaiting_removal"])
        .iter()
        .map(|p| {
            let mut note = Vec::new();
            if p["expired"].as_bool() == Some(true) {
                note.push("expired");
            }
            vec![
                seq_ref(&p["permit"]),
                text(&p["destination"]),
                text(&p["category"]),
                time_text(&p["issued_ms"]),
                deadline_text(&p["deadline"]),
                note.join(", "),
            ]
        })
        .collect();
    let removals: Vec<Vec<String>> = list(&inbox["removals_awaiting_registration"])
        .iter()
        .map(|d| {
            let note = match d["permit_revoked_by"].as_str() {
                Some(r) => format!("permit revoked by {}", short_ref(r)),
                None => String::new(),
            };
            vec![
                seq_ref(&d["deregistration"]),
                text(&d["origin"]),
                seq_ref(&d["permit"]),
                time_text(&d["time_ms"]),
                deadline_text(&d["deadline"]),
                yes_no(&d["final"]),
                note,
            ]
        })
        .collect();
    outln!("inbox of bureau {} (China time)", text(&inbox["bureau"]));
    outln!("\npermits awaiting removal here: {}", permits.len());
    if !permits.is_empty() {
        out!(
            "{}",
            table(
                &[
                    "PERMIT",
                    "DESTINATION",
                    "CATEGORY",
                    "ISSUED",
                    "DEADLINE",
                    "NOTE"
                ],
                &permits
            )
        );
    }
    outln!("\nremovals awaiting registration here: {}", removals.len());
    if !removals.is_empty() {
        out!(
            "{}",
            table(
                &[
                    "DEREGISTRATION",
                    "ORIGIN",
                    "PERMIT",
                    "REMOVED",
                    "DEADLINE",
                    "FINAL",
                    "NOTE"
                ],
                &removals
            )
        );
    }
}

fn print_status(h: &Value) {
    let peers: Vec<String> = list(&h["peers_connected"]).iter().map(text).collect();
    outln!("status        {}", text(&h["status"]));
    outln!("bureau        {}", text(&h["bureau"]));
    outln!("network       {}", text(&h["network"]));
    outln!(
        "peers         {} of {} other members connected{}",
        peers.len(),
        h["members"].as_u64().unwrap_or(1).saturating_sub(1),
        if peers.is_empty() {
            String::new()
        } else {
            format!(": {}", peers.join(", "))
        }
    );
    outln!(
        "entries       {} applied, {} in this bureau's log",
        text(&h["entries"]),
        text(&h["own_log_length"])
    );
    outln!("fraud proofs  {}", text(&h["fraud_proofs"]));
    outln!("uptime        {} s", text(&h["uptime_s"]));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn china_time_is_utc_plus_8() {
        // 2026-11-24 07:02:11 UTC.
        assert_eq!(china_time(1_795_503_731_000), "2026-11-24 15:02:11");
        assert_eq!(china_time(0), "1970-01-01 08:00:00");
        // 16:00 UTC is midnight in China.
        assert_eq!(china_time(57_600_000), "1970-01-02 00:00:00");
    }

    #[test]
    fn table_aligns_columns() {
        let rows = vec![
            vec!["310104:12".to_string(), "permit".to_string()],
            vec!["1:2".to_string(), "x".to_string()],
        ];
        assert_eq!(
            table(&["REF", "KIND"], &rows),
            "REF        KIND\n310104:12  permit\n1:2        x\n"
        );
    }

    #[test]
    fn references_are_shortened_and_encoded() {
        let full = format!("330502:7:{}", "ab".repeat(32));
        assert_eq!(short_ref(&full), "330502:7:abababab…");
        assert_eq!(seq_ref(&Value::from(full)), "330502:7");
        assert_eq!(path_segment("330502:7"), "330502:7");
        assert_eq!(path_segment("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn non_json_refusals_keep_the_status() {
        let v = refusal_json(502, b"<html>Bad Gateway</html>");
        assert_eq!(v["error"], "http_502");
        let v = refusal_json(409, br#"{"error":"permit_not_open","message":"m"}"#);
        assert_eq!(v["error"], "permit_not_open");
    }
}
