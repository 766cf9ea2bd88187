//! `hukou-load`: drives whole household-register transfers against a running testnet and
//! measures how many become final per second and how long finality takes.
//!
//! A transfer is: a permit (准迁证) written at the destination, the deregistration (迁出) at the
//! origin against it, and the registration (落户) at the destination against the
//! deregistration, which the destination accepts only once the deregistration is final there.
//! The driver therefore waits, per transfer, until the destination holds a certificate
//! covering the deregistration before it registers (a registration still refused with
//! `deregistration_not_final` goes back to waiting), and counts a transfer done when the
//! destination holds a certificate covering the registration, i.e. when
//! `GET /v1/transfers/{ref}` on the destination answers `"final": true`.
//!
//! Replication and finality are watched through `GET /v1/logs` on every node (`length` and
//! `final_size` of each log; an entry is held where `seq < length` and final where
//! `seq < final_size`), polled every `--poll-ms`: the origin is asked to deregister once it
//! holds the permit (a deregistration still refused with `unknown_reference` is retried); one transfer in
//! `--verify-every` is also checked with `GET /v1/transfers/{registration}` on its destination.
//!
//! Writes go through `POST /v1/batch` (NDJSON, one line per write, per-line results): each of
//! the three steps has its own queue per node, and `--workers` threads per queue and node take
//! whatever is waiting (up to `--batch` lines) into one call, so batches are large when the
//! load is high and small when it is not. With `--single`, every write is its own HTTP call
//! (the single routes) instead, for comparison.
//!
//! Load: flat out (the default) keeps `--inflight` transfers under way; `--rate R` starts R
//! transfers a second on a fixed schedule whatever happens (open loop), and measures latency
//! from each transfer's scheduled start, so a driver or node falling behind shows as latency.
//! The run is bounded by `--count` or `--duration` (default 10 s); transfers still under way
//! then get `--drain` seconds to finish, and whatever has not is counted in `unfinished`.
//!
//! People: `--population` people are enrolled at every bureau first (in batches), with ID
//! numbers of that bureau's division and a random range of birth dates; a person who finished
//! a transfer is available again at their new bureau, so the population only needs to cover
//! the transfers in flight.
//!
//! Output: a readable summary on stderr and `name=value` lines on stdout:
//! `final_transfers_per_s`, `latency_p50_ms`, `latency_p99_ms`, `dereg_final_p50_ms`,
//! `dereg_final_p99_ms`, `cpu_ms_per_transfer` (user + system CPU of the node processes,
//! from `/proc/PID/stat`, over the run, per final transfer), `errors`, and more.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::Value;

#[derive(Parser, Debug)]
#[command(
    name = "hukou-load",
    about = "Drives whole transfers (permit, deregistration, registration) against a running \
             testnet and measures final transfers per second and finality latency."
)]
struct Args {
    /// The testnet's nodes.json (API URL, token and pid of each bureau).
    #[arg(long, default_value = "testnet/.run/nodes.json")]
    nodes: PathBuf,
    /// Stop starting transfers after this many.
    #[arg(long)]
    count: Option<u64>,
    /// Stop starting transfers after this many seconds (default 10 when --count is not given).
    #[arg(long)]
    duration: Option<f64>,
    /// Start this many transfers a second, steadily (open loop); default: flat out.
    #[arg(long)]
    rate: Option<f64>,
    /// Flat out: transfers kept under way at once.
    #[arg(long, default_value_t = 3000)]
    inflight: usize,
    /// Let a batch fill for up to this many milliseconds after its oldest write is ready (fewer,
    /// larger calls: less CPU per transfer). At a steady 1,000 transfers/s, 40 ms instead of 10
    /// took node CPU from 1.66 to 1.31 ms per transfer and deregistration -> final from p50 187 /
    /// p99 570 ms to 62 / 113 ms: small calls cost more in queueing than the wait.
    #[arg(long, default_value_t = 40)]
    linger_ms: u64,
    /// Most writes in one batch call.
    #[arg(long, default_value_t = 250)]
    batch: usize,
    /// Concurrent calls per node and step.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// One HTTP call per write (the single routes) instead of /v1/batch.
    #[arg(long)]
    single: bool,
    /// People enrolled at each bureau before the run (default: enough for the load).
    #[arg(long)]
    population: Option<usize>,
    /// How often each node's finality is polled, in milliseconds.
    #[arg(long, default_value_t = 5)]
    poll_ms: u64,
    /// Seconds transfers still under way get to finish once no more are started.
    #[arg(long, default_value_t = 30.0)]
    drain: f64,
    /// Check one final transfer in this many with GET /v1/transfers/{ref} (0: never).
    #[arg(long, default_value_t = 50)]
    verify_every: u64,
    /// Permit category used for every transfer.
    #[arg(long, default_value = "talent")]
    category: String,
    /// Append the reference of every write a node acknowledged to FILE, one per line (chaos.sh
    /// checks afterwards that every one of them is still in the ledger).
    #[arg(long, value_name = "FILE")]
    acks: Option<PathBuf>,
    /// Create FILE when the timed run starts (after the population is enrolled and settled), so
    /// a script can start something beside the run itself (bench.sh's busy loop).
    #[arg(long, value_name = "FILE")]
    ready_file: Option<PathBuf>,
}

/// Where acknowledged references go (`--acks`).
static ACKS: std::sync::OnceLock<Mutex<std::fs::File>> = std::sync::OnceLock::new();

/// Records the references of the acknowledged writes among `results`, if `--acks` was given:
/// each written entry, and for an enrolment the claim it consumed (written by the person's
/// arbiter, and final before the enrolment was answered).
fn record_acks(results: &[LineResult]) {
    let Some(file) = ACKS.get() else {
        return;
    };
    let mut text = String::new();
    for v in results.iter().flatten() {
        for r in [v["ref"].as_str(), v["claim"].as_str()]
            .into_iter()
            .flatten()
        {
            text.push_str(r);
            text.push('\n');
        }
    }
    if !text.is_empty() {
        use std::io::Write;
        let mut f = file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f.write_all(text.as_bytes())
            .expect("the --acks file is writable");
    }
}

/// A bureau of the testnet.
#[derive(Clone, Debug)]
struct Node {
    bureau: String,
    api: String,
    token: String,
    pid_file: Option<PathBuf>,
    pid: Option<u32>,
}

fn read_nodes(path: &Path) -> anyhow::Result<Vec<Node>> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read {} (is a testnet running? start one with testnet/up.sh)",
            path.display()
        )
    })?;
    let v: Value = serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?;
    let Some(list) = v.as_array() else {
        bail!("{}: expected a JSON list of nodes", path.display());
    };
    let mut nodes = Vec::new();
    for n in list {
        let field = |k: &str| {
            n[k].as_str()
                .map(str::to_string)
                .with_context(|| format!("{}: a node without {k:?}", path.display()))
        };
        nodes.push(Node {
            bureau: field("bureau")?,
            api: field("api")?.trim_end_matches('/').to_string(),
            token: field("token")?,
            pid_file: n["data_dir"]
                .as_str()
                .map(|d| Path::new(d).join("node.pid")),
            pid: n["pid"].as_u64().map(|p| p as u32),
        });
    }
    if nodes.len() < 2 {
        bail!(
            "{}: a transfer needs at least two bureaus, found {}",
            path.display(),
            nodes.len()
        );
    }
    Ok(nodes)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(5)))
        .timeout_global(Some(Duration::from_secs(120)))
        .proxy(None)
        .max_redirects(0)
        .user_agent("hukou-load")
        .build()
        .into()
}

/// One answer line per request line: `Ok(answer)` or `Err((error name, message))`.
type LineResult = Result<Value, (String, String)>;

/// Sends `lines` (one JSON object each, with "op") as one `POST /v1/batch`; returns one result
/// per line, in order.
fn post_batch(agent: &ureq::Agent, node: &Node, lines: &[String]) -> Vec<LineResult> {
    let mut body = String::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
    for l in lines {
        body.push_str(l);
        body.push('\n');
    }
    let fail = |name: &str, msg: String| vec![Err((name.to_string(), msg)); lines.len()];
    let response = match agent
        .post(format!("{}/v1/batch", node.api))
        .header("Authorization", format!("Bearer {}", node.token))
        .header("Content-Type", "application/x-ndjson")
        .send(body.as_bytes())
    {
        Ok(r) => r,
        Err(e) => return fail("http_failed", e.to_string()),
    };
    let status = response.status().as_u16();
    let mut reader = BufReader::new(response.into_body().into_reader());
    if status != 200 {
        let mut text = String::new();
        let _ = reader.read_to_string(&mut text);
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let name = v["error"].as_str().unwrap_or("http_status").to_string();
        return fail(&name, format!("HTTP {status}: {text}"));
    }
    let mut out: Vec<Option<LineResult>> = vec![None; lines.len()];
    let mut done = false;
    let mut text = String::new();
    loop {
        text.clear();
        match reader.read_line(&mut text) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => return fail("http_failed", format!("answer broke off: {e}")),
        }
        let Ok(v) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        if v["done"].as_bool() == Some(true) {
            done = true;
            break;
        }
        let Some(line) = v["line"].as_u64() else {
            let name = v["error"].as_str().unwrap_or("bad_answer").to_string();
            return fail(&name, v["message"].as_str().unwrap_or("").to_string());
        };
        let Some(slot) = out.get_mut(line as usize - 1) else {
            continue;
        };
        *slot = Some(match v["error"].as_str() {
            Some(name) => Err((
                name.to_string(),
                v["message"].as_str().unwrap_or("").to_string(),
            )),
            None => Ok(v),
        });
    }
    if !done {
        return fail(
            "http_failed",
            "the answer ended without its done line".into(),
        );
    }
    let out: Vec<LineResult> = out
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(("no_answer".into(), "line not answered".into()))))
        .collect();
    record_acks(&out);
    out
}

/// The same writes as single calls of the routes (`--single`).
fn post_singles(agent: &ureq::Agent, node: &Node, lines: &[String]) -> Vec<LineResult> {
    let out: Vec<LineResult> = lines
        .iter()
        .map(|line| {
            let mut v: Value = serde_json::from_str(line).expect("driver lines are JSON");
            let op = v["op"].as_str().unwrap_or_default().to_string();
            v.as_object_mut().expect("object").remove("op");
            let path = match op.as_str() {
                "permit" => "/v1/permits",
                "deregister" => "/v1/deregister",
                "register" => "/v1/register",
                "enrol" => "/v1/enrol",
                other => panic!("no single route for op {other}"),
            };
            let response = agent
                .post(format!("{}{path}", node.api))
                .header("Authorization", format!("Bearer {}", node.token))
                .send(v.to_string().as_bytes());
            let response = match response {
                Ok(r) => r,
                Err(e) => return Err(("http_failed".into(), e.to_string())),
            };
            let status = response.status().as_u16();
            let text = response
                .into_body()
                .read_to_string()
                .map_err(|e| ("http_failed".to_string(), e.to_string()))?;
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            if status == 200 {
                Ok(v)
            } else {
                Err((
                    v["error"].as_str().unwrap_or("http_status").to_string(),
                    format!("HTTP {status}: {text}"),
                ))
            }
        })
        .collect();
    record_acks(&out);
    out
}

/// `CODE:SEQ:HASH` → SEQ.
fn ref_seq(r: &str) -> Option<u64> {
    r.split(':').nth(1)?.parse().ok()
}

/// One transfer under way.
struct Transfer {
    person: String,
    origin: usize,
    dest: usize,
    /// When it was (to be) started: the permit request, or its slot in the schedule.
    start: Instant,
    permit: String,
    permit_seq: u64,
    deregistration: String,
    dereg_seq: u64,
    dereg_time_ms: u64,
    registration: String,
    reg_seq: u64,
}

/// The three write steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Permit,
    Deregister,
    Register,
}

/// Everything the threads share, behind one lock.
struct Shared {
    /// Per node: people registered there and free to move.
    pools: Vec<VecDeque<String>>,
    /// Per step and node: transfers waiting for that node to write that step (with the
    /// earliest time to try again).
    queues: Vec<Vec<VecDeque<(Instant, Transfer)>>>,
    /// Per origin: transfers whose permit the origin must hold before it can deregister.
    await_permit: Vec<Vec<Transfer>>,
    /// Per destination: transfers whose deregistration must become final there.
    await_dereg_final: Vec<Vec<Transfer>>,
    /// Per destination: transfers whose registration must become final there.
    await_reg_final: Vec<Vec<Transfer>>,
    in_flight: usize,
    started: u64,
    completed: u64,
    unfinished_people_lost: u64,
    latencies_us: Vec<u64>,
    dereg_final_us: Vec<u64>,
    errors: BTreeMap<String, u64>,
    error_examples: BTreeMap<String, String>,
    first_final: Option<Instant>,
    last_final: Option<Instant>,
    /// Registrations to check with GET /v1/transfers: (dest, registration ref).
    to_verify: Vec<(usize, String)>,
    retries: BTreeMap<&'static str, u64>,
    batches: u64,
    batch_lines: u64,
}

impl Shared {
    fn error(&mut self, name: &str, message: &str) {
        *self.errors.entry(name.to_string()).or_default() += 1;
        self.error_examples
            .entry(name.to_string())
            .or_insert_with(|| message.chars().take(300).collect());
    }
}

struct Driver {
    nodes: Vec<Node>,
    args: Args,
    shared: Mutex<Shared>,
    /// Per step and node: woken when work is queued.
    wake: Vec<Vec<Condvar>>,
    /// Woken when transfers finish (flat out refills).
    finished: Condvar,
    /// Per node: per log, the final size this node reported last.
    final_sizes: Vec<Vec<AtomicU64>>,
    /// Per node: per log, the length this node reported last.
    lengths: Vec<Vec<AtomicU64>>,
    /// No more transfers will be started.
    generating_done: AtomicBool,
    /// Everything stops.
    stop: AtomicBool,
}

fn step_index(step: Step) -> usize {
    match step {
        Step::Permit => 0,
        Step::Deregister => 1,
        Step::Register => 2,
    }
}

impl Driver {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared
            .lock()
            .expect("no thread panics holding the lock")
    }

    fn enqueue(&self, s: &mut Shared, step: Step, node: usize, at: Instant, t: Transfer) {
        s.queues[step_index(step)][node].push_back((at, t));
        self.wake[step_index(step)][node].notify_one();
    }

    /// A transfer that cannot go on: counted; its person goes back to where they are
    /// registered, if known.
    fn drop_transfer(&self, s: &mut Shared, t: Transfer, person_at: Option<usize>) {
        s.in_flight -= 1;
        match person_at {
            Some(node) => s.pools[node].push_back(t.person),
            None => s.unfinished_people_lost += 1,
        }
        self.finished.notify_all();
    }

    /// The worker of one step at one node: takes what is queued (up to --batch), writes it
    /// in one call, and moves each transfer on.
    fn worker(&self, step: Step, node: usize) {
        let agent = agent();
        let si = step_index(step);
        loop {
            let taken: Vec<Transfer> = {
                let mut s = self.lock();
                loop {
                    if self.stop.load(Ordering::Acquire) {
                        return;
                    }
                    let now = Instant::now();
                    let ready = s.queues[si][node].front().is_some_and(|(at, _)| *at <= now);
                    if ready {
                        // Linger: let a batch fill for up to --linger-ms after its oldest write
                        // became ready, unless a whole batch is already waiting.
                        let linger = Duration::from_millis(self.args.linger_ms);
                        let oldest = s.queues[si][node].front().map(|(at, _)| *at);
                        let until = oldest.map(|at| at + linger);
                        let full = s.queues[si][node]
                            .iter()
                            .filter(|(at, _)| *at <= now)
                            .nth(self.args.batch.saturating_sub(1))
                            .is_some();
                        match until {
                            Some(until) if !full && until > now => {
                                s = self.wake[si][node]
                                    .wait_timeout(s, until - now)
                                    .expect("no thread panics holding the lock")
                                    .0;
                                if Instant::now() < until {
                                    continue;
                                }
                                break;
                            }
                            _ => break,
                        }
                    }
                    let wait =
                        s.queues[si][node]
                            .front()
                            .map_or(Duration::from_millis(20), |(at, _)| {
                                at.saturating_duration_since(now)
                                    .max(Duration::from_micros(200))
                            });
                    s = self.wake[si][node]
                        .wait_timeout(s, wait)
                        .expect("no thread panics holding the lock")
                        .0;
                }
                let now = Instant::now();
                let mut taken = Vec::new();
                let queue = &mut s.queues[si][node];
                // Retries wait with a later time among the others: take the ready ones, in
                // order, and keep the rest in order.
                let mut kept = VecDeque::with_capacity(queue.len());
                for (at, t) in queue.drain(..) {
                    if at <= now && taken.len() < self.args.batch {
                        taken.push(t);
                    } else {
                        kept.push_back((at, t));
                    }
                }
                *queue = kept;
                taken
            };
            if taken.is_empty() {
                continue;
            }
            let lines: Vec<String> = taken
                .iter()
                .map(|t| match step {
                    Step::Permit => serde_json::json!({"op": "permit", "person": t.person,
                        "origin": self.nodes[t.origin].bureau, "category": self.args.category})
                    .to_string(),
                    Step::Deregister => {
                        serde_json::json!({"op": "deregister", "permit": t.permit}).to_string()
                    }
                    Step::Register => {
                        serde_json::json!({"op": "register", "deregistration": t.deregistration})
                            .to_string()
                    }
                })
                .collect();
            let results = if self.args.single {
                post_singles(&agent, &self.nodes[node], &lines)
            } else {
                post_batch(&agent, &self.nodes[node], &lines)
            };
            let mut s = self.lock();
            s.batches += 1;
            s.batch_lines += lines.len() as u64;
            let retry_at = Instant::now() + Duration::from_millis(2);
            for (mut t, r) in taken.into_iter().zip(results) {
                match (step, r) {
                    (Step::Permit, Ok(v)) => {
                        t.permit = v["ref"].as_str().unwrap_or_default().to_string();
                        t.permit_seq = ref_seq(&t.permit).unwrap_or(u64::MAX);
                        let origin = t.origin;
                        s.await_permit[origin].push(t);
                    }
                    (Step::Deregister, Ok(v)) => {
                        let r = v["ref"].as_str().unwrap_or_default().to_string();
                        t.dereg_seq = ref_seq(&r).unwrap_or(u64::MAX);
                        t.dereg_time_ms = v["time_ms"].as_u64().unwrap_or_else(now_ms);
                        t.deregistration = r;
                        let dest = t.dest;
                        s.await_dereg_final[dest].push(t);
                    }
                    (Step::Register, Ok(v)) => {
                        let r = v["ref"].as_str().unwrap_or_default().to_string();
                        t.reg_seq = ref_seq(&r).unwrap_or(u64::MAX);
                        t.registration = r;
                        let dest = t.dest;
                        s.await_reg_final[dest].push(t);
                    }
                    // The origin has not replicated the permit yet.
                    (Step::Deregister, Err((name, _))) if name == "unknown_reference" => {
                        *s.retries.entry("deregister_unknown_permit").or_default() += 1;
                        self.enqueue(&mut s, Step::Deregister, node, retry_at, t);
                    }
                    // Not final (or not held) here after all: wait for it again.
                    (Step::Register, Err((name, _)))
                        if name == "deregistration_not_final" || name == "unknown_reference" =>
                    {
                        *s.retries.entry("register_not_final").or_default() += 1;
                        let dest = t.dest;
                        s.await_dereg_final[dest].push(t);
                    }
                    (step, Err((name, message))) => {
                        s.error(&name, &format!("{step:?}: {message}"));
                        // Before the deregistration the person is still at the origin.
                        let at = match step {
                            Step::Permit | Step::Deregister => Some(t.origin),
                            Step::Register => None,
                        };
                        self.drop_transfer(&mut s, t, at);
                    }
                }
            }
        }
    }

    /// Polls one node's finality and moves the transfers it finishes.
    fn poller(&self, node: usize) {
        let agent = agent();
        let codes: Vec<&str> = self.nodes.iter().map(|x| x.bureau.as_str()).collect();
        let mut failures = 0u32;
        while !self.stop.load(Ordering::Acquire) {
            let polled = Instant::now();
            match get_json(&agent, &format!("{}/v1/logs", self.nodes[node].api)) {
                Ok(v) => {
                    failures = 0;
                    for l in v["logs"].as_array().into_iter().flatten() {
                        if let Some(i) = codes.iter().position(|c| l["bureau"] == *c) {
                            let size = l["final_size"].as_u64().unwrap_or(0);
                            self.final_sizes[node][i].fetch_max(size, Ordering::AcqRel);
                            let length = l["length"].as_u64().unwrap_or(0);
                            self.lengths[node][i].fetch_max(length, Ordering::AcqRel);
                        }
                    }
                }
                Err(e) => {
                    failures += 1;
                    if failures == 50 {
                        self.lock()
                            .error("poll_failed", &format!("GET /v1/logs: {e}"));
                    }
                }
            }
            let final_of = |log: usize| self.final_sizes[node][log].load(Ordering::Acquire);
            let now = Instant::now();
            let now_wall = now_ms();
            {
                let mut s = self.lock();
                let s = &mut *s;
                if !s.await_permit[node].is_empty() {
                    let waiting = std::mem::take(&mut s.await_permit[node]);
                    for t in waiting {
                        if t.permit_seq < self.lengths[node][t.dest].load(Ordering::Acquire) {
                            s.queues[1][node].push_back((now, t));
                            self.wake[1][node].notify_one();
                        } else {
                            s.await_permit[node].push(t);
                        }
                    }
                }
                if !s.await_dereg_final[node].is_empty() {
                    let waiting = std::mem::take(&mut s.await_dereg_final[node]);
                    for t in waiting {
                        if t.dereg_seq < final_of(t.origin) {
                            s.dereg_final_us
                                .push(now_wall.saturating_sub(t.dereg_time_ms) * 1000);
                            s.queues[2][node].push_back((now, t));
                            self.wake[2][node].notify_one();
                        } else {
                            s.await_dereg_final[node].push(t);
                        }
                    }
                }
                if !s.await_reg_final[node].is_empty() {
                    let waiting = std::mem::take(&mut s.await_reg_final[node]);
                    let mut done = 0;
                    for t in waiting {
                        if t.reg_seq < final_of(node) {
                            s.latencies_us
                                .push(now.duration_since(t.start).as_micros() as u64);
                            s.completed += 1;
                            done += 1;
                            if self.args.verify_every > 0
                                && s.completed.is_multiple_of(self.args.verify_every)
                            {
                                s.to_verify.push((node, t.registration.clone()));
                            }
                            s.in_flight -= 1;
                            s.pools[node].push_back(t.person);
                        } else {
                            s.await_reg_final[node].push(t);
                        }
                    }
                    if done > 0 {
                        s.first_final.get_or_insert(now);
                        s.last_final = Some(now);
                        self.finished.notify_all();
                    }
                }
            }
            let spent = polled.elapsed();
            let period = Duration::from_millis(self.args.poll_ms);
            if spent < period {
                thread::sleep(period - spent);
            }
        }
    }

    /// Checks sampled transfers with GET /v1/transfers/{registration} on their destination.
    fn verifier(&self) {
        let agent = agent();
        loop {
            let batch = std::mem::take(&mut self.lock().to_verify);
            for (node, r) in batch {
                let url = format!("{}/v1/transfers/{r}", self.nodes[node].api);
                match get_json(&agent, &url) {
                    Ok(v) if v["final"] == true && v["status"] == "registered" => {
                        self.lock()
                            .retries
                            .entry("verified_final")
                            .and_modify(|c| *c += 1)
                            .or_insert(1);
                    }
                    Ok(v) => self
                        .lock()
                        .error("transfer_view_not_final", &format!("{url}: {v}")),
                    Err(e) => self.lock().error("verify_failed", &format!("{url}: {e}")),
                }
            }
            if self.stop.load(Ordering::Acquire) {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts a transfer of someone registered at `origin` (or at the fullest bureau) to the
    /// next bureau in turn. Returns false if nobody is free to move.
    fn start_transfer(&self, s: &mut Shared, turn: u64, start: Instant) -> bool {
        let n = self.nodes.len();
        let mut origin = (turn as usize) % n;
        if s.pools[origin].is_empty() {
            match (0..n).max_by_key(|&i| s.pools[i].len()) {
                Some(i) if !s.pools[i].is_empty() => origin = i,
                _ => return false,
            }
        }
        // Destinations cycle over the others.
        let hop = 1 + ((turn as usize / n) % (n - 1));
        let dest = (origin + hop) % n;
        let person = s.pools[origin].pop_front().expect("not empty");
        s.in_flight += 1;
        s.started += 1;
        let t = Transfer {
            person,
            origin,
            dest,
            start,
            permit: String::new(),
            permit_seq: 0,
            deregistration: String::new(),
            dereg_seq: 0,
            dereg_time_ms: 0,
            registration: String::new(),
            reg_seq: 0,
        };
        self.enqueue(s, Step::Permit, dest, start, t);
        true
    }

    /// Starts transfers until the count or the duration is reached.
    fn generate(&self, deadline: Option<Instant>, count: Option<u64>) {
        let mut turn = 0u64;
        let limit_reached = |started: u64| {
            count.is_some_and(|c| started >= c) || deadline.is_some_and(|d| Instant::now() >= d)
        };
        match self.args.rate {
            None => {
                let mut s = self.lock();
                loop {
                    if limit_reached(s.started) {
                        break;
                    }
                    if s.in_flight < self.args.inflight {
                        if !self.start_transfer(&mut s, turn, Instant::now()) {
                            s = self
                                .finished
                                .wait_timeout(s, Duration::from_millis(5))
                                .expect("lock")
                                .0;
                        }
                        turn += 1;
                    } else {
                        s = self
                            .finished
                            .wait_timeout(s, Duration::from_millis(5))
                            .expect("lock")
                            .0;
                    }
                }
            }
            Some(rate) => {
                let t0 = Instant::now();
                let interval = Duration::from_secs_f64(1.0 / rate);
                let mut next = t0;
                loop {
                    let now = Instant::now();
                    {
                        let mut s = self.lock();
                        while next <= now {
                            if limit_reached(s.started) {
                                drop(s);
                                self.generating_done.store(true, Ordering::Release);
                                return;
                            }
                            if !self.start_transfer(&mut s, turn, next) {
                                s.error(
                                    "population_exhausted",
                                    "nobody free to move: raise --population",
                                );
                            }
                            turn += 1;
                            next += interval;
                        }
                    }
                    let sleep = next.saturating_duration_since(Instant::now());
                    thread::sleep(
                        sleep.clamp(Duration::from_micros(500), Duration::from_millis(2)),
                    );
                }
            }
        }
        self.generating_done.store(true, Ordering::Release);
    }
}

fn get_json(agent: &ureq::Agent, url: &str) -> anyhow::Result<Value> {
    let response = agent.get(url).call()?;
    let status = response.status().as_u16();
    let text = response.into_body().read_to_string()?;
    if status != 200 {
        bail!("HTTP {status}: {text}");
    }
    Ok(serde_json::from_str(&text)?)
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The `i`-th ID number of a run at `code`: birth dates from 1950 on, a thousand a day,
/// starting at a random day so runs against one testnet rarely meet.
fn person_id(code: &str, base_day: i64, i: u64) -> String {
    // 1950-01-01 is day -7305; 20,000 days of birth dates (to 2004).
    let day = -7305 + (base_day + (i / 1000) as i64).rem_euclid(20_000);
    let (y, m, d) = civil_from_days(day);
    let first17 = format!("{code}{y:04}{m:02}{d:02}{:03}", i % 1000);
    let check = hukou_protocol::id::check_character_for(&first17).expect("17 digits");
    format!("{first17}{check}")
}

/// How long an enrolment line waits for its claim to become final (`wait_ms`): long enough to
/// ride out a bureau restarting (chaos.sh faults may start while the population is enrolled).
const ENROL_CLAIM_WAIT_MS: u64 = 30_000;
/// Pause before enrolment lines that failed for a passing reason are sent again.
const ENROL_RETRY_PAUSE: Duration = Duration::from_millis(500);

/// What to do with an enrolment line refused with `name`.
#[derive(Debug, PartialEq, Eq)]
enum EnrolRefusal {
    /// The ID number is taken (registered, or claimed by another bureau, by an earlier run
    /// against the same testnet): skip it.
    Taken,
    /// The network or a node is not ready (a claim not final yet, an arbiter or node not
    /// reachable, a node restarting): send the line again. A claim granted to this bureau is
    /// kept by its arbiter, so the retry reuses it.
    Passing,
    /// Anything else is a fault of the driver or the nodes.
    Fatal,
}

fn enrol_refusal(name: &str) -> EnrolRefusal {
    match name {
        "person_already_registered" | "person_claimed" => EnrolRefusal::Taken,
        "claim_not_final"
        | "arbiter_unreachable"
        | "claim_pending"
        | "recovering"
        | "http_failed"
        | "no_answer" => EnrolRefusal::Passing,
        _ => EnrolRefusal::Fatal,
    }
}

/// Enrols `per_node` people at every bureau (batches of 1,000, all bureaus at once); returns
/// each bureau's pool. Each enrolment first gets a claim from the person's arbiter, final by a
/// quorum; lines refused for a passing reason are sent again.
fn enrol_population(nodes: &[Node], per_node: usize) -> anyhow::Result<Vec<VecDeque<String>>> {
    let base_day = (SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
        % 20_000) as i64;
    let handles: Vec<_> = nodes
        .iter()
        .cloned()
        .map(|node| {
            thread::spawn(move || -> anyhow::Result<(VecDeque<String>, u64)> {
                let agent = agent();
                let mut pool = VecDeque::with_capacity(per_node);
                let mut refused = 0u64;
                let mut retry: Vec<String> = Vec::new();
                let mut i = 0u64;
                let mut attempts = 0usize;
                while pool.len() < per_node {
                    attempts += 1;
                    if attempts > 100 + per_node / 100 {
                        bail!("{}: could not enrol {per_node} people", node.bureau);
                    }
                    let want = (per_node - pool.len()).min(1_000);
                    let mut ids: Vec<String> = retry.drain(..retry.len().min(want)).collect();
                    let new = (want - ids.len()) as u64;
                    ids.extend((0..new).map(|k| person_id(&node.bureau, base_day, i + k)));
                    i += new;
                    let lines: Vec<String> = ids
                        .iter()
                        .map(|id| {
                            serde_json::json!({"op": "enrol", "person": id,
                                "wait_ms": ENROL_CLAIM_WAIT_MS})
                            .to_string()
                        })
                        .collect();
                    let mut passing = None;
                    for (id, r) in ids.into_iter().zip(post_batch(&agent, &node, &lines)) {
                        match r {
                            Ok(_) => pool.push_back(id),
                            Err((name, message)) => match enrol_refusal(&name) {
                                EnrolRefusal::Taken => refused += 1,
                                EnrolRefusal::Passing => {
                                    passing = Some(format!("{name}: {message}"));
                                    retry.push(id);
                                }
                                EnrolRefusal::Fatal => {
                                    bail!("{}: enrolment refused: {name}: {message}", node.bureau)
                                }
                            },
                        }
                    }
                    if let Some(why) = passing {
                        eprintln!(
                            "  {}: {} enrolments to retry ({why})",
                            node.bureau,
                            retry.len()
                        );
                        thread::sleep(ENROL_RETRY_PAUSE);
                    }
                }
                Ok((pool, refused))
            })
        })
        .collect();
    let mut pools = Vec::new();
    for h in handles {
        let (pool, refused) = h.join().expect("enrolment thread")?;
        if refused > 0 {
            eprintln!(
                "  ({refused} ID numbers were already registered or claimed by an earlier run; \
                 skipped)"
            );
        }
        pools.push(pool);
    }
    Ok(pools)
}

/// Waits until every node holds every log at the same length and it is all final (so the
/// measurement does not start in the middle of the enrolments' replication).
fn wait_settled(nodes: &[Node], timeout: Duration) -> bool {
    let agent = agent();
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let mut views = Vec::new();
        for n in nodes {
            match get_json(&agent, &format!("{}/v1/logs", n.api)) {
                Ok(v) => views.push(v),
                Err(_) => break,
            }
        }
        if views.len() == nodes.len() {
            let lengths: Vec<Vec<(u64, u64)>> = views
                .iter()
                .map(|v| {
                    v["logs"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|l| {
                            (
                                l["length"].as_u64().unwrap_or(0),
                                l["final_size"].as_u64().unwrap_or(0),
                            )
                        })
                        .collect()
                })
                .collect();
            let same = lengths
                .windows(2)
                .all(|w| w[0].iter().map(|x| x.0).eq(w[1].iter().map(|x| x.0)));
            let all_final = lengths.iter().flatten().all(|(len, fin)| fin >= len);
            if same && all_final {
                return true;
            }
        }
        thread::sleep(Duration::from_millis(100));
    }
    false
}

/// User + system CPU of a process so far, in milliseconds (`/proc/PID/stat`).
fn cpu_ms(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks * 1000.0 / clock_ticks_per_s())
}

fn clock_ticks_per_s() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

fn node_pids(nodes: &[Node]) -> Vec<u32> {
    nodes
        .iter()
        .filter_map(|n| {
            n.pid_file
                .as_ref()
                .and_then(|f| std::fs::read_to_string(f).ok())
                .and_then(|s| s.trim().parse().ok())
                .or(n.pid)
        })
        .collect()
}

fn nodes_cpu_ms(pids: &[u32]) -> f64 {
    pids.iter().filter_map(|&p| cpu_ms(p)).sum()
}

fn load1() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

fn percentile_ms(sorted_us: &[u64], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted_us.len() - 1) as f64).round() as usize;
    sorted_us[i.min(sorted_us.len() - 1)] as f64 / 1000.0
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(path) = &args.acks {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open --acks file {}", path.display()))?;
        ACKS.set(Mutex::new(file)).expect("set once");
    }
    if args.rate.is_some_and(|r| r.is_nan() || r <= 0.0) {
        bail!("--rate must be a positive number of transfers a second");
    }
    if args.batch == 0 || args.workers == 0 {
        bail!("--batch and --workers must be at least 1");
    }
    let nodes = read_nodes(&args.nodes)?;
    let n = nodes.len();
    let duration = match (args.count, args.duration) {
        (None, None) => Some(10.0),
        (_, d) => d,
    };
    let agent = agent();
    for node in &nodes {
        let h = get_json(&agent, &format!("{}/healthz", node.api))
            .with_context(|| format!("bureau {} at {} does not answer", node.bureau, node.api))?;
        if h["status"] != "ok" {
            bail!("bureau {} is not ready: {h}", node.bureau);
        }
    }
    // Enough people for what can be under way: flat out, twice the transfers in flight; at a
    // steady rate, 12 s worth of transfers (a node falling behind keeps people in transit).
    let expected_in_flight = match args.rate {
        None => 2 * args.inflight,
        Some(r) => (r * 12.0) as usize,
    };
    let population = args
        .population
        .unwrap_or((expected_in_flight / n).max(2_000));
    let mode = match args.rate {
        None => format!("flat out, {} transfers in flight", args.inflight),
        Some(r) => format!("steady {r} transfers/s (open loop)"),
    };
    let bound = match (args.count, duration) {
        (Some(c), Some(d)) => format!("{c} transfers or {d} s"),
        (Some(c), None) => format!("{c} transfers"),
        (None, Some(d)) => format!("{d} s"),
        (None, None) => unreachable!(),
    };
    eprintln!(
        "hukou-load: {n} bureaus ({}), {mode}, {bound}; {} of up to {} writes per call, {} calls in flight per node and step",
        nodes
            .iter()
            .map(|x| x.bureau.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        if args.single {
            "single calls"
        } else {
            "batches"
        },
        args.batch,
        args.workers
    );
    eprintln!("  enrolling {population} people at each bureau ...");
    let enrol_started = Instant::now();
    let pools = enrol_population(&nodes, population)?;
    eprintln!(
        "  enrolled {} people in {:.1} s; waiting for replication and finality to settle ...",
        population * n,
        enrol_started.elapsed().as_secs_f64()
    );
    if !wait_settled(&nodes, Duration::from_secs(120)) {
        eprintln!("  (not settled after 120 s; measuring anyway)");
    }

    let driver = Arc::new(Driver {
        shared: Mutex::new(Shared {
            pools,
            queues: (0..3)
                .map(|_| (0..n).map(|_| VecDeque::new()).collect())
                .collect(),
            await_permit: (0..n).map(|_| Vec::new()).collect(),
            await_dereg_final: (0..n).map(|_| Vec::new()).collect(),
            await_reg_final: (0..n).map(|_| Vec::new()).collect(),
            in_flight: 0,
            started: 0,
            completed: 0,
            unfinished_people_lost: 0,
            latencies_us: Vec::new(),
            dereg_final_us: Vec::new(),
            errors: BTreeMap::new(),
            error_examples: BTreeMap::new(),
            first_final: None,
            last_final: None,
            to_verify: Vec::new(),
            retries: BTreeMap::new(),
            batches: 0,
            batch_lines: 0,
        }),
        wake: (0..3)
            .map(|_| (0..n).map(|_| Condvar::new()).collect())
            .collect(),
        finished: Condvar::new(),
        final_sizes: (0..n)
            .map(|_| (0..n).map(|_| AtomicU64::new(0)).collect())
            .collect(),
        lengths: (0..n)
            .map(|_| (0..n).map(|_| AtomicU64::new(0)).collect())
            .collect(),
        generating_done: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        nodes: nodes.clone(),
        args,
    });

    if let Some(path) = &driver.args.ready_file {
        std::fs::write(path, b"")
            .with_context(|| format!("cannot create --ready-file {}", path.display()))?;
    }
    let pids = node_pids(&nodes);
    let cpu_before = nodes_cpu_ms(&pids);
    let self_cpu_before = cpu_ms(std::process::id()).unwrap_or(0.0);
    let load_before = load1();
    let mut threads = Vec::new();
    for node in 0..n {
        let d = driver.clone();
        threads.push(thread::spawn(move || d.poller(node)));
        for step in [Step::Permit, Step::Deregister, Step::Register] {
            for _ in 0..driver.args.workers {
                let d = driver.clone();
                threads.push(thread::spawn(move || d.worker(step, node)));
            }
        }
    }
    {
        let d = driver.clone();
        threads.push(thread::spawn(move || d.verifier()));
    }
    let started = Instant::now();
    let deadline = duration.map(|d| started + Duration::from_secs_f64(d));
    driver.generate(deadline, driver.args.count);
    let generated_at = Instant::now();
    let drain_deadline = generated_at + Duration::from_secs_f64(driver.args.drain);
    {
        let mut s = driver.lock();
        while s.in_flight > 0 && Instant::now() < drain_deadline {
            s = driver
                .finished
                .wait_timeout(s, Duration::from_millis(20))
                .expect("lock")
                .0;
        }
    }
    let ended = Instant::now();
    let cpu_after = nodes_cpu_ms(&pids);
    let self_cpu_after = cpu_ms(std::process::id()).unwrap_or(0.0);
    // Let the verifier finish its last sample, then stop everything.
    thread::sleep(Duration::from_millis(100));
    driver.stop.store(true, Ordering::Release);
    for c in driver.wake.iter().flatten() {
        c.notify_all();
    }
    for t in threads {
        let _ = t.join();
    }

    let mut s = driver.lock();
    let s = &mut *s;
    s.latencies_us.sort_unstable();
    s.dereg_final_us.sort_unstable();
    let unfinished = s.in_flight as u64;
    if unfinished > 0 {
        s.error(
            "unfinished",
            &format!(
                "{unfinished} transfers not final {} s after the last start",
                driver.args.drain
            ),
        );
    }
    let errors: u64 = s.errors.values().sum();
    let window = match s.last_final {
        Some(last) => last.duration_since(started).as_secs_f64(),
        None => ended.duration_since(started).as_secs_f64(),
    };
    let per_s = s.completed as f64 / window.max(1e-9);
    let cpu_ms = cpu_after - cpu_before;
    let cpu_per = if s.completed > 0 {
        cpu_ms / s.completed as f64
    } else {
        f64::NAN
    };
    let self_cpu = self_cpu_after - self_cpu_before;
    let wall = ended.duration_since(started).as_secs_f64();
    let (l50, l90, l99, lmax) = (
        percentile_ms(&s.latencies_us, 50.0),
        percentile_ms(&s.latencies_us, 90.0),
        percentile_ms(&s.latencies_us, 99.0),
        percentile_ms(&s.latencies_us, 100.0),
    );
    let (d50, d90, d99, dmax) = (
        percentile_ms(&s.dereg_final_us, 50.0),
        percentile_ms(&s.dereg_final_us, 90.0),
        percentile_ms(&s.dereg_final_us, 99.0),
        percentile_ms(&s.dereg_final_us, 100.0),
    );
    let mean_batch = s.batch_lines as f64 / (s.batches.max(1)) as f64;
    let load_after = load1();
    eprintln!(
        "  started {} transfers in {:.1} s; {} final; {} unfinished; {} errors",
        s.started,
        generated_at.duration_since(started).as_secs_f64(),
        s.completed,
        unfinished,
        errors
    );
    for (name, count) in &s.errors {
        eprintln!(
            "    error {name}: {count} (e.g. {})",
            s.error_examples.get(name).map_or("", String::as_str)
        );
    }
    eprintln!(
        "  final transfers/s: {per_s:.0} (over {window:.2} s from the first start to the last final)"
    );
    eprintln!(
        "  permit request -> registration final on the destination: p50 {l50:.1} ms, p90 {l90:.1} ms, p99 {l99:.1} ms, max {lmax:.1} ms"
    );
    eprintln!(
        "  deregistration signed -> final on the destination:        p50 {d50:.1} ms, p90 {d90:.1} ms, p99 {d99:.1} ms, max {dmax:.1} ms"
    );
    eprintln!(
        "  node CPU: {cpu_ms:.0} ms over {wall:.1} s ({:.2} cores busy), {cpu_per:.2} ms per final transfer; driver CPU {:.0} ms ({:.2} cores)",
        cpu_ms / 1000.0 / wall.max(1e-9),
        self_cpu,
        self_cpu / 1000.0 / wall.max(1e-9)
    );
    eprintln!(
        "  {} calls, {mean_batch:.1} writes per call; retries: {:?}; load average {load_before} -> {load_after}",
        s.batches, s.retries
    );
    println!("bureaus={n}");
    println!(
        "mode={}",
        match driver.args.rate {
            None => "flat_out".to_string(),
            Some(r) => format!("rate_{r}"),
        }
    );
    println!("transfers_started={}", s.started);
    println!("transfers_final={}", s.completed);
    println!("final_transfers_per_s={per_s:.0}");
    println!("latency_p50_ms={l50:.1}");
    println!("latency_p90_ms={l90:.1}");
    println!("latency_p99_ms={l99:.1}");
    println!("latency_max_ms={lmax:.1}");
    println!("dereg_final_p50_ms={d50:.1}");
    println!("dereg_final_p90_ms={d90:.1}");
    println!("dereg_final_p99_ms={d99:.1}");
    println!("dereg_final_max_ms={dmax:.1}");
    println!("cpu_ms_per_transfer={cpu_per:.2}");
    println!("nodes_cores_busy={:.2}", cpu_ms / 1000.0 / wall.max(1e-9));
    println!(
        "driver_cores_busy={:.2}",
        self_cpu / 1000.0 / wall.max(1e-9)
    );
    println!("writes_per_call={mean_batch:.1}");
    println!("unfinished={unfinished}");
    println!("errors={errors}");
    println!("load1_start={load_before}");
    println!("load1_end={load_after}");
    println!("people_in_transit_at_end={}", s.unfinished_people_lost);
    if errors > 0 {
        std::process::exit(1);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{EnrolRefusal, enrol_refusal};

    #[test]
    fn enrolment_refusals_are_skipped_retried_or_fatal() {
        // Taken by an earlier run: skipped.
        assert_eq!(
            enrol_refusal("person_already_registered"),
            EnrolRefusal::Taken
        );
        assert_eq!(enrol_refusal("person_claimed"), EnrolRefusal::Taken);
        // A claim on its way, a node restarting: sent again.
        for name in [
            "claim_not_final",
            "arbiter_unreachable",
            "http_failed",
            "recovering",
        ] {
            assert_eq!(enrol_refusal(name), EnrolRefusal::Passing, "{name}");
        }
        // A malformed line is the driver's fault.
        assert_eq!(enrol_refusal("bad_json"), EnrolRefusal::Fatal);
        assert_eq!(enrol_refusal("unauthorized"), EnrolRefusal::Fatal);
    }
}
