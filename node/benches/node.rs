//! Throughput of a whole bureau node, in three layers, each durable before acknowledged:
//!
//! 1. `library`: a `Service` built directly over a `Store` in a temporary directory (no network,
//!    no HTTP). N tasks each call `Service::write_one` with an enrolment, in a loop
//!    (`library_durable_entries_per_s`, per-write latency); then callers of `Service::write`
//!    with 1,000 enrolments per call, as the API's bulk import does (`library_bulk_entries_per_s`).
//! 2. `api`: one full node started in-process by `hukou_node::run::run` (keys, genesis with two
//!    members of which only this one runs, config, token), driven over HTTP by C client threads
//!    with one keep-alive `ureq` agent each, `POST /v1/enrol` with distinct valid ID numbers
//!    (`api_enrol_per_s`, latency p50/p99); then `POST /v1/enrol/bulk` with 100,000 NDJSON lines
//!    (`api_bulk_enrol_per_s`).
//! 3. `transfers`: two nodes in-process, connected over libp2p on 127.0.0.1. People are enrolled
//!    at bureau A (bulk) and replicated to B; then P pipelines each run whole transfers: permit at
//!    B, deregistration at A once A holds the permit, registration at B once B holds the
//!    deregistration (`transfers_per_s`, latency p50/p99 of a whole transfer).
//!
//! Run with `cargo bench -p hukou-node --bench node` (about 80 s after the build). Prints
//! `name=value` lines, then a short summary against the goals. Every loop is bounded by a count
//! and a time. Each line also gives `cores_busy` and `cpu_us_per_op` (CPU time of this whole
//! process, client threads included, from `/proc/self/stat`) and the load average `load1`, since
//! the reference machine is shared; `sign_only` is the ceiling of one core signing entries.
//! `HUKOU_NODE_BENCH=library,api,transfers` (any subset) picks the parts to run;
//! `api_enrol` or `api_bulk` runs only that half of the API part (for profiling).

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use hukou_keys::genesis::{Genesis, GenesisMember};
use hukou_keys::secret::{BureauKey, NetworkKey, generate_person_key, save_person_key};
use hukou_node::config::Config;
use hukou_node::run::{Started, run};
use hukou_node::service::{Service, WriteError};
use hukou_node::store::{Committer, Store};
use hukou_protocol::id::{PersonKey, check_character_for};
use hukou_protocol::{Body, BureauCode, Member, Membership, PersonTag, Placement, Relation};
use serde_json::{Value, json};

const BUREAU_A: u32 = 310_104;
const BUREAU_B: u32 = 330_502;

/// Concurrent `write_one` callers in the library part.
const LIBRARY_TASKS: [usize; 2] = [16, 64];
/// Time and count bounds of each library measurement.
const LIBRARY_SECONDS: u64 = 6;
const LIBRARY_ENTRIES_MAX: u64 = 400_000;
/// Bodies per `Service::write` call, and concurrent bulk callers.
const BULK_BODIES: usize = 1_000;
const LIBRARY_BULK_CALLERS: [usize; 2] = [1, 4];
const LIBRARY_BULK_ENTRIES_MAX: u64 = 200_000;

/// Client threads driving `POST /v1/enrol`.
const API_CLIENTS: [usize; 2] = [8, 32];
const API_SECONDS: u64 = 8;
const API_REQUESTS_MAX: u64 = 200_000;
/// Lines of the bulk import.
const API_BULK_LINES: u64 = 100_000;

/// People enrolled at A for the transfer part, and concurrent transfer pipelines.
const TRANSFER_PEOPLE: u64 = 40_000;
const TRANSFER_PIPELINES: [usize; 2] = [8, 32];
const TRANSFER_SECONDS: u64 = 10;
/// Longest a transfer step waits for replication before the bench gives up.
const REPLICATION_WAIT: Duration = Duration::from_secs(20);
/// Pause between tries of a step that waits for replication.
const RETRY_PAUSE: Duration = Duration::from_millis(2);

/// Longest any node takes to start, become healthy, or stop.
const NODE_WAIT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// Helpers

/// A valid citizen ID number, distinct for each `i` below 720,000,000: address code
/// `110000 + i / 1000`, born 1990-01-01, sequence `i % 1000`.
fn citizen_id(i: u64) -> String {
    let first17 = format!("{:06}19900101{:03}", 110_000 + i / 1000, i % 1000);
    let check = check_character_for(&first17).expect("17 digits");
    format!("{first17}{check}")
}

/// Latency summary in milliseconds: (p50, p99, max).
fn percentiles(mut micros: Vec<u32>) -> (f64, f64, f64) {
    if micros.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    micros.sort_unstable();
    let at = |q: f64| {
        let i = ((micros.len() as f64 * q).ceil() as usize).clamp(1, micros.len()) - 1;
        f64::from(micros[i]) / 1000.0
    };
    (
        at(0.50),
        at(0.99),
        f64::from(*micros.last().unwrap()) / 1000.0,
    )
}

fn micros_since(t: Instant) -> u32 {
    t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32
}

/// CPU seconds this process has used so far (user + system, all threads), from
/// `/proc/self/stat` (clock ticks of 1/100 s, as on every Linux this runs on).
fn process_cpu_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

/// The 1-minute load average, to judge how shared the machine was.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// Cores busy on average, and CPU microseconds per operation, over a measurement.
fn cpu_use(cpu_before: f64, seconds: f64, operations: u64) -> String {
    let cpu = process_cpu_s() - cpu_before;
    format!(
        "cores_busy={:.2} cpu_us_per_op={:.1} load1={}",
        cpu / seconds,
        cpu * 1e6 / operations.max(1) as f64,
        load_average()
    )
}

/// What the summary compares with the goals.
#[derive(Default)]
struct Summary {
    lines: Vec<String>,
}

impl Summary {
    fn add(&mut self, what: &str, value: f64, goal: Option<f64>) {
        let verdict = match goal {
            Some(g) if value >= g => format!("  (goal >= {g:.0}: met)"),
            Some(g) => format!("  (goal >= {g:.0}: MISSED)"),
            None => String::new(),
        };
        self.lines
            .push(format!("  {what:<44} {value:>10.0}/s{verdict}"));
    }
}

// ---------------------------------------------------------------------------------------------
// 1. The library: Service over a Store, no network, no HTTP

fn bench_membership() -> (Membership, SigningKey) {
    let key_a = SigningKey::from_bytes(&[0xA1; 32]);
    let key_b = SigningKey::from_bytes(&[0xB2; 32]);
    let members = [
        Member {
            code: BureauCode::new(BUREAU_A).unwrap(),
            name: "bench A".into(),
            key: key_a.verifying_key(),
        },
        Member {
            code: BureauCode::new(BUREAU_B).unwrap(),
            name: "bench B".into(),
            key: key_b.verifying_key(),
        },
    ];
    let membership = Membership::new("hukou-bench", members, 2).expect("valid membership");
    (membership, key_a)
}

/// A fresh service of bureau A over a store in `dir`.
fn library_service(dir: &Path) -> (Service, Committer, tokio::task::JoinHandle<()>) {
    let (membership, key) = bench_membership();
    let me = BureauCode::new(BUREAU_A).unwrap();
    let store = Store::open(&dir.join("db"), me, membership.network()).expect("store opens");
    let (committer, _task) = Committer::start(store.clone(), std::future::pending());
    let parts = Service::start(
        me,
        key,
        PersonKey::from_bytes([0x5A; 32]),
        hukou_protocol::config::Epochs::of_membership(membership),
        store,
        committer.clone(),
        false,
    )
    .expect("service starts");
    // The node's push task consumes this queue; here it is only drained.
    let mut outbound = parts.outbound;
    let drain = tokio::spawn(async move { while outbound.recv().await.is_some() {} });
    (parts.service, committer, drain)
}

/// A person tag unique within one run of the bench.
fn library_tag(n: u64) -> PersonTag {
    let mut tag = [0u8; 32];
    tag[..8].copy_from_slice(&n.to_be_bytes());
    tag[8..16].copy_from_slice(&0x6265_6e63_685f_7461u64.to_be_bytes());
    PersonTag(tag)
}

fn enrol_head(s: &mut hukou_node::service::State, person: PersonTag) -> Body {
    // A registration out of nowhere needs a final claim first; what the library benchmark
    // measures is the write path, so it writes the claims themselves: same size, same rules
    // cost, and this bureau is the arbiter of the persons it picks.
    let me = BureauCode::new(BUREAU_A).unwrap();
    let membership = s.ledger.membership();
    let person = (0u8..)
        .map(|k| {
            let mut tag = person.0;
            tag[31] = k;
            PersonTag(tag)
        })
        .find(|p| membership.arbiter(p) == me)
        .expect("half of all tags are ours");
    Body::Claim {
        person,
        claimant: me,
        after: None,
    }
}

async fn library_one_by_one(tasks: usize, summary: &mut Summary) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (service, committer, drain) = library_service(dir.path());
    let next = Arc::new(AtomicU64::new(0));
    let cpu = process_cpu_s();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(LIBRARY_SECONDS);
    let mut callers = Vec::new();
    for _ in 0..tasks {
        let service = service.clone();
        let next = next.clone();
        callers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= LIBRARY_ENTRIES_MAX {
                    break;
                }
                let t = Instant::now();
                service
                    .write_one(|s| Ok::<_, WriteError>(enrol_head(s, library_tag(n))))
                    .await
                    .expect("enrolment written");
                latencies.push(micros_since(t));
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for caller in callers {
        latencies.extend(caller.await.expect("caller ran"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let stats = committer.stats();
    let written = latencies.len() as u64;
    assert_eq!(service.store().log_len(service.me()), written);
    let (p50, p99, max) = percentiles(latencies);
    let rate = written as f64 / elapsed;
    println!(
        "part=library mode=write_one tasks={tasks} entries={written} seconds={elapsed:.2} \
         library_durable_entries_per_s={rate:.0} p50_ms={p50:.2} p99_ms={p99:.2} max_ms={max:.1} \
         flushes={} group_entries_avg={:.1} {}",
        stats.flushes,
        stats.entries as f64 / stats.flushes.max(1) as f64,
        cpu_use(cpu, elapsed, written),
    );
    summary.add(
        &format!("library write_one, {tasks} tasks"),
        rate,
        Some(20_000.0),
    );
    drop((service, committer));
    drain.abort();
}

async fn library_bulk(callers_n: usize, summary: &mut Summary) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (service, committer, drain) = library_service(dir.path());
    let next = Arc::new(AtomicU64::new(0));
    let cpu = process_cpu_s();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(LIBRARY_SECONDS);
    let mut callers = Vec::new();
    for _ in 0..callers_n {
        let service = service.clone();
        let next = next.clone();
        callers.push(tokio::spawn(async move {
            let mut written = 0u64;
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let first = next.fetch_add(BULK_BODIES as u64, Ordering::Relaxed);
                if first >= LIBRARY_BULK_ENTRIES_MAX {
                    break;
                }
                let t = Instant::now();
                let results = service
                    .write(|s| {
                        Ok((first..first + BULK_BODIES as u64)
                            .map(|n| enrol_head(s, library_tag(n)))
                            .collect())
                    })
                    .await
                    .expect("bulk written");
                assert!(results.iter().all(Result::is_ok), "an enrolment refused");
                written += results.len() as u64;
                latencies.push(micros_since(t));
            }
            (written, latencies)
        }));
    }
    let (mut written, mut latencies) = (0, Vec::new());
    for caller in callers {
        let (w, l) = caller.await.expect("caller ran");
        written += w;
        latencies.extend(l);
    }
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(service.store().log_len(service.me()), written);
    let (p50, p99, _) = percentiles(latencies);
    let rate = written as f64 / elapsed;
    println!(
        "part=library mode=write_bulk callers={callers_n} bodies_per_call={BULK_BODIES} \
         entries={written} seconds={elapsed:.2} library_bulk_entries_per_s={rate:.0} \
         call_p50_ms={p50:.1} call_p99_ms={p99:.1} flushes={} {}",
        committer.stats().flushes,
        cpu_use(cpu, elapsed, written),
    );
    summary.add(
        &format!("library write x{BULK_BODIES}, {callers_n} callers"),
        rate,
        Some(20_000.0),
    );
    drop((service, committer));
    drain.abort();
}

/// The ceiling of a writer that signs under one lock: `Entry::sign` of enrolments on one thread,
/// for about a second.
fn sign_ceiling() {
    let (membership, key) = bench_membership();
    let started = Instant::now();
    let mut signed = 0u64;
    let mut prev = hukou_protocol::EntryHash::ZERO;
    while started.elapsed() < Duration::from_secs(1) && signed < 1_000_000 {
        for _ in 0..1000 {
            let entry = hukou_protocol::Entry {
                network: membership.network(),
                epoch: 0,
                author: BureauCode::new(BUREAU_A).unwrap(),
                seq: hukou_protocol::Seq(signed),
                prev,
                time_ms: 1_700_000_000_000 + signed,
                body: Body::Enrol {
                    person: library_tag(signed),
                    placement: Placement {
                        household: hukou_protocol::HouseholdId(signed),
                        relation: Relation::Head,
                    },
                    // Signing cost only: the claim is never looked at.
                    claim: hukou_protocol::EntryRef {
                        author: BureauCode::new(BUREAU_A).unwrap(),
                        seq: hukou_protocol::Seq(signed),
                        hash: prev,
                    },
                },
            }
            .sign(&key);
            prev = entry.hash();
            signed += 1;
        }
    }
    println!(
        "part=library mode=sign_only threads=1 sign_per_s={:.0} load1={}",
        signed as f64 / started.elapsed().as_secs_f64(),
        load_average()
    );
}

fn library(summary: &mut Summary) {
    sign_ceiling();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        for tasks in LIBRARY_TASKS {
            library_one_by_one(tasks, summary).await;
        }
        for callers in LIBRARY_BULK_CALLERS {
            library_bulk(callers, summary).await;
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Nodes in-process

/// The files of a network in one directory: person key, network key, signed genesis, and one
/// subdirectory per bureau (`310104/`, `330502/`) with its key, token, config and data.
struct NetworkFiles {
    dir: PathBuf,
}

/// Writes a network of bureaus A and B into `dir`, as `testnet/up.sh` does with the CLI;
/// `addresses` gives each its genesis address list. The admin key is used once and dropped.
fn write_network(dir: &Path, addresses: [Vec<String>; 2]) -> NetworkFiles {
    let admin = BureauKey::generate().unwrap();
    generate_person_key()
        .and_then(|k| save_person_key(&k, &dir.join("person.key"), false))
        .unwrap();
    NetworkKey::generate()
        .unwrap()
        .save(&dir.join("network.key"), false)
        .unwrap();
    let mut genesis = Genesis::new("hukou-bench", admin.public()).unwrap();
    for ((code, name), addresses) in [(BUREAU_A, "bench A"), (BUREAU_B, "bench B")]
        .into_iter()
        .zip(addresses)
    {
        let key = BureauKey::generate().unwrap();
        let bureau_dir = dir.join(code.to_string());
        std::fs::create_dir_all(&bureau_dir).unwrap();
        key.save(&bureau_dir.join("bureau.key"), false).unwrap();
        write_token(
            &bureau_dir.join("api.token"),
            &format!("bench-token-{code}-0123456789"),
        );
        genesis
            .add_member(GenesisMember {
                code: BureauCode::new(code).unwrap(),
                name: name.into(),
                public_key: key.public(),
                addresses,
            })
            .unwrap();
    }
    genesis.sign(admin.signing_key()).unwrap();
    genesis.save(&dir.join("genesis.toml")).unwrap();
    NetworkFiles { dir: dir.into() }
}

fn write_token(path: &Path, token: &str) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    writeln!(f, "{token}").unwrap();
}

impl NetworkFiles {
    /// Writes the config of `code` and returns it loaded.
    fn config(&self, code: u32, p2p_listen: &str) -> Config {
        let bureau_dir = self.dir.join(code.to_string());
        let top = self.dir.display();
        let text = format!(
            "bureau = \"{code}\"\ndata_dir = \"data\"\nkey_file = \"bureau.key\"\n\
             genesis = \"{top}/genesis.toml\"\nperson_key_file = \"{top}/person.key\"\n\
             network_key_file = \"{top}/network.key\"\napi_token_file = \"api.token\"\n\
             api_listen = \"127.0.0.1:0\"\np2p_listen = \"{p2p_listen}\"\ncalendar = \"builtin\"\n"
        );
        let path = bureau_dir.join("node.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(&path).unwrap()
    }
}

/// A node running on its own thread and runtime, as if it were its own process.
struct Node {
    base: String,
    token: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
}

impl Node {
    fn start(config: Config) -> Node {
        let token = std::fs::read_to_string(&config.api_token_file)
            .unwrap()
            .trim()
            .to_string();
        let (started_tx, started_rx) = std::sync::mpsc::channel::<Started>();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let name = format!("node-{}", config.bureau);
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                // The default runtime of `hukou node run`: one worker per core.
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .build()?;
                let result = runtime.block_on(run(
                    config,
                    async move {
                        let _ = stop_rx.await;
                    },
                    move |started| {
                        let _ = started_tx.send(started);
                    },
                ));
                drop(runtime);
                result
            })
            .unwrap();
        let started = match started_rx.recv_timeout(NODE_WAIT) {
            Ok(s) => s,
            Err(_) => {
                let outcome = thread.join();
                panic!("the node did not start: {outcome:?}");
            }
        };
        Node {
            base: format!("http://{}", started.api),
            token,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// Waits until `/healthz` says "ok" and at least `peers` peers are connected.
    fn wait_healthy(&self, agent: &ureq::Agent, peers: usize) {
        let deadline = Instant::now() + NODE_WAIT;
        loop {
            if let Ok(h) = get_json(agent, &format!("{}/healthz", self.base))
                && h["status"] == "ok"
                && h["peers_connected"].as_array().map_or(0, Vec::len) >= peers
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node {} not healthy in time",
                self.base
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the node; clients must have dropped their agents (keep-alive connections hold the
    /// graceful shutdown). Bounded: a node that does not stop in time is left behind.
    fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let thread = self.thread.take().unwrap();
        let deadline = Instant::now() + NODE_WAIT;
        while !thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if !thread.is_finished() {
            eprintln!("node {} did not stop in time; left running", self.base);
        } else if let Err(e) = thread.join().expect("node thread") {
            eprintln!("node {} stopped with an error: {e}", self.base);
        }
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

fn get_json(agent: &ureq::Agent, url: &str) -> Result<Value, ureq::Error> {
    agent.get(url).call()?.body_mut().read_json()
}

/// POSTs JSON with the node's token; returns the status and the JSON answer.
fn post(agent: &ureq::Agent, node: &Node, path: &str, body: &Value) -> (u16, Value) {
    let mut response = agent
        .post(format!("{}{path}", node.base))
        .header("Authorization", format!("Bearer {}", node.token))
        .send_json(body)
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
    let status = response.status().as_u16();
    let value = response
        .body_mut()
        .read_json()
        .unwrap_or_else(|e| panic!("POST {path}: answer is not JSON: {e}"));
    (status, value)
}

/// Enrols people `range` at `node` in one bulk import; returns the seconds it took.
fn bulk_enrol(agent: &ureq::Agent, node: &Node, range: std::ops::Range<u64>) -> f64 {
    let mut body = Vec::with_capacity((range.end - range.start) as usize * 34);
    for i in range.clone() {
        body.extend_from_slice(format!("{{\"person\":\"{}\"}}\n", citizen_id(i)).as_bytes());
    }
    let started = Instant::now();
    let text = agent
        .post(format!("{}/v1/enrol/bulk", node.base))
        .header("Authorization", format!("Bearer {}", node.token))
        .header("Content-Type", "application/x-ndjson")
        .send(&body)
        .expect("bulk import answered")
        .body_mut()
        .read_to_string()
        .expect("bulk answer read");
    let seconds = started.elapsed().as_secs_f64();
    let done: Value = text
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .expect("a final line");
    assert_eq!(
        done["enrolled"].as_u64(),
        Some(range.end - range.start),
        "bulk import: {done}"
    );
    seconds
}

// ---------------------------------------------------------------------------------------------
// 2. The API of one node

/// Runs the one-by-one enrolments, the bulk import, or both.
fn api(summary: &mut Summary, one_by_one: bool, bulk: bool) {
    let dir = tempfile::tempdir().expect("temp dir");
    // B is in the genesis but never runs; it has no address, so nobody dials it.
    let files = write_network(dir.path(), [vec![], vec![]]);
    let node = Node::start(files.config(BUREAU_A, "/ip4/127.0.0.1/tcp/0"));
    let waited = Instant::now();
    node.wait_healthy(&agent(), 0);
    println!(
        "part=api node_ready_s={:.1} (waits for a peer up to 5 s before accepting writes)",
        waited.elapsed().as_secs_f64()
    );
    let next = Arc::new(AtomicU64::new(0));
    let clients_list: &[usize] = if one_by_one { &API_CLIENTS } else { &[] };
    for &clients in clients_list {
        let first = next.load(Ordering::Relaxed);
        let limit = first + API_REQUESTS_MAX;
        let cpu = process_cpu_s();
        let started = Instant::now();
        let deadline = started + Duration::from_secs(API_SECONDS);
        let latencies: Vec<u32> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..clients)
                .map(|_| {
                    let (node, next) = (&node, &next);
                    std::thread::Builder::new()
                        .name("api-client".into())
                        .spawn_scoped(scope, move || {
                            let agent = agent();
                            let mut latencies = Vec::new();
                            while Instant::now() < deadline {
                                let i = next.fetch_add(1, Ordering::Relaxed);
                                if i >= limit {
                                    break;
                                }
                                let t = Instant::now();
                                let (status, answer) = post(
                                    &agent,
                                    node,
                                    "/v1/enrol",
                                    &json!({"person": citizen_id(i)}),
                                );
                                assert_eq!(status, 200, "enrol: {answer}");
                                latencies.push(micros_since(t));
                            }
                            latencies
                        })
                        .expect("client thread starts")
                })
                .collect();
            threads
                .into_iter()
                .flat_map(|t| t.join().expect("client ran"))
                .collect()
        });
        let elapsed = started.elapsed().as_secs_f64();
        let done = latencies.len();
        let (p50, p99, max) = percentiles(latencies);
        let rate = done as f64 / elapsed;
        println!(
            "part=api mode=enrol clients={clients} requests={done} seconds={elapsed:.2} \
             api_enrol_per_s={rate:.0} p50_ms={p50:.2} p99_ms={p99:.2} max_ms={max:.1} {}",
            cpu_use(cpu, elapsed, done as u64),
        );
        summary.add(
            &format!("API POST /v1/enrol, {clients} clients"),
            rate,
            Some(5_000.0),
        );
    }
    if bulk {
        let first = next.load(Ordering::Relaxed);
        let cpu = process_cpu_s();
        let seconds = bulk_enrol(&agent(), &node, first..first + API_BULK_LINES);
        let rate = API_BULK_LINES as f64 / seconds;
        println!(
            "part=api mode=enrol_bulk lines={API_BULK_LINES} seconds={seconds:.2} \
             api_bulk_enrol_per_s={rate:.0} {}",
            cpu_use(cpu, seconds, API_BULK_LINES),
        );
        summary.add("API POST /v1/enrol/bulk, 100,000 lines", rate, None);
    }
    node.stop();
}

// ---------------------------------------------------------------------------------------------
// 3. Transfers between two nodes

/// A port free at the time of asking (a race with other programs is possible but unlikely).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a: SocketAddr| a.port())
        .expect("a free port")
}

/// POSTs until the answer is not a 404 `unknown_reference` (the referenced entry not yet
/// replicated here). Returns the answer and how many tries were refused that way.
fn post_when_replicated(
    agent: &ureq::Agent,
    node: &Node,
    path: &str,
    body: &Value,
) -> (Value, u32) {
    let deadline = Instant::now() + REPLICATION_WAIT;
    let mut retries = 0;
    loop {
        let (status, answer) = post(agent, node, path, body);
        match status {
            200 => return (answer, retries),
            404 if answer["error"] == "unknown_reference" && Instant::now() < deadline => {
                retries += 1;
                std::thread::sleep(RETRY_PAUSE);
            }
            _ => panic!("POST {path} {body}: {status} {answer}"),
        }
    }
}

fn own_log_len_at(agent: &ureq::Agent, node: &Node, code: u32) -> u64 {
    get_json(agent, &format!("{}/v1/logs", node.base))
        .ok()
        .and_then(|v| {
            v["logs"].as_array()?.iter().find_map(|l| {
                let bureau = &l["bureau"];
                let matches = bureau.as_u64() == Some(u64::from(code))
                    || bureau.as_str() == Some(code.to_string().as_str());
                if matches { l["length"].as_u64() } else { None }
            })
        })
        .unwrap_or(0)
}

fn transfers(summary: &mut Summary) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (port_a, port_b) = (free_port(), free_port());
    let addr = |port: u16| format!("/ip4/127.0.0.1/tcp/{port}");
    let files = write_network(dir.path(), [vec![addr(port_a)], vec![addr(port_b)]]);
    let a = Node::start(files.config(BUREAU_A, &addr(port_a)));
    let b = Node::start(files.config(BUREAU_B, &addr(port_b)));
    let setup = agent();
    let waited = Instant::now();
    a.wait_healthy(&setup, 1);
    b.wait_healthy(&setup, 1);
    println!(
        "part=transfers nodes_ready_s={:.1}",
        waited.elapsed().as_secs_f64()
    );

    let seconds = bulk_enrol(&setup, &a, 0..TRANSFER_PEOPLE);
    let replicated = Instant::now();
    let deadline = replicated + NODE_WAIT;
    while own_log_len_at(&setup, &b, BUREAU_A) < TRANSFER_PEOPLE {
        assert!(
            Instant::now() < deadline,
            "B did not replicate A's enrolments"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    println!(
        "part=transfers enrolled_at_a={TRANSFER_PEOPLE} bulk_s={seconds:.2} \
         replicated_to_b_after_s={:.2}",
        replicated.elapsed().as_secs_f64()
    );
    drop(setup);

    let next = AtomicU64::new(0);
    for pipelines in TRANSFER_PIPELINES {
        let cpu = process_cpu_s();
        let started = Instant::now();
        let deadline = started + Duration::from_secs(TRANSFER_SECONDS);
        let results: Vec<(Vec<u32>, u64, u64)> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..pipelines)
                .map(|_| {
                    let (a, b, next) = (&a, &b, &next);
                    std::thread::Builder::new()
                        .name("transfer-pipeline".into())
                        .spawn_scoped(scope, move || {
                            let agent = agent();
                            let (mut latencies, mut dereg_retries, mut reg_retries) =
                                (Vec::new(), 0u64, 0u64);
                            while Instant::now() < deadline {
                                let i = next.fetch_add(1, Ordering::Relaxed);
                                if i >= TRANSFER_PEOPLE {
                                    break;
                                }
                                let t = Instant::now();
                                let (status, permit) = post(
                                    &agent,
                                    b,
                                    "/v1/permits",
                                    &json!({"person": citizen_id(i), "origin": BUREAU_A.to_string(),
                                    "category": "spouse"}),
                                );
                                assert_eq!(status, 200, "permit: {permit}");
                                let (dereg, r1) = post_when_replicated(
                                    &agent,
                                    a,
                                    "/v1/deregister",
                                    &json!({"permit": permit["ref"]}),
                                );
                                let (_, r2) = post_when_replicated(
                                    &agent,
                                    b,
                                    "/v1/register",
                                    &json!({"deregistration": dereg["ref"], "wait_ms": 30_000}),
                                );
                                latencies.push(micros_since(t));
                                dereg_retries += u64::from(r1);
                                reg_retries += u64::from(r2);
                            }
                            (latencies, dereg_retries, reg_retries)
                        })
                        .expect("pipeline thread starts")
                })
                .collect();
            threads
                .into_iter()
                .map(|t| t.join().expect("pipeline ran"))
                .collect()
        });
        let elapsed = started.elapsed().as_secs_f64();
        let mut latencies = Vec::new();
        let (mut r1, mut r2) = (0, 0);
        for (l, a, b) in results {
            latencies.extend(l);
            r1 += a;
            r2 += b;
        }
        let done = latencies.len() as u64;
        let (p50, p99, max) = percentiles(latencies);
        let rate = done as f64 / elapsed;
        println!(
            "part=transfers pipelines={pipelines} transfers={done} seconds={elapsed:.2} \
             transfers_per_s={rate:.0} p50_ms={p50:.1} p99_ms={p99:.1} max_ms={max:.1} \
             deregister_retries_per_transfer={:.2} register_retries_per_transfer={:.2} {}",
            r1 as f64 / done.max(1) as f64,
            r2 as f64 / done.max(1) as f64,
            cpu_use(cpu, elapsed, done),
        );
        summary.add(
            &format!("complete transfers, {pipelines} pipelines"),
            rate,
            None,
        );
        if next.load(Ordering::Relaxed) >= TRANSFER_PEOPLE {
            println!("part=transfers note=ran_out_of_people_raise_TRANSFER_PEOPLE");
            break;
        }
    }
    b.stop();
    a.stop();
}

fn main() {
    let parts =
        std::env::var("HUKOU_NODE_BENCH").unwrap_or_else(|_| "library,api,transfers".into());
    let wanted = |p: &str| parts.split(',').any(|x| x.trim() == p);
    let started = Instant::now();
    let mut summary = Summary::default();
    if wanted("library") {
        library(&mut summary);
    }
    if wanted("api") || wanted("api_enrol") || wanted("api_bulk") {
        api(
            &mut summary,
            wanted("api") || wanted("api_enrol"),
            wanted("api") || wanted("api_bulk"),
        );
    }
    if wanted("transfers") {
        transfers(&mut summary);
    }
    println!(
        "\nsummary (durable before acknowledged; {} s in all):",
        started.elapsed().as_secs()
    );
    for line in summary.lines {
        println!("{line}");
    }
}
