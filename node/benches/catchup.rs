//! Catch-up throughput: how fast a new (or wiped) node pulls every log from a running peer.
//!
//! 1. `hukou-gen-bundle`'s generator (compiled in) writes an honest signed history of
//!    `HUKOU_CATCHUP_ENTRIES` entries (default 320,000) over four bureaus, with their keys and
//!    the administrator-signed genesis.
//! 2. Every log is loaded into the store of bureau A (310104), which is then started as a full
//!    node (`hukou_node::run::run`, its own thread and runtime, as if its own process): it
//!    replays the store and serves peers.
//! 3. Bureau B (330502) is started with an empty store, dialling A over libp2p on 127.0.0.1 (its
//!    `[peers]` table names A's port). B must pull all four logs, its own included, through the
//!    real network path: range requests, batch signature verification, the rulebook, the
//!    store's group commit.
//!
//! Measured: wall time from B's start until its `/healthz` counts every entry applied, and
//! entries per second over that time (`catchup_entries_per_s`), plus the node's own view (its
//! `catch_up` summary) and the CPU this process used (both nodes: A serving, B pulling).
//! Run with `cargo bench -p hukou-node --bench catchup` (bench profile = release). Prints
//! `name=value` lines on stdout, and the nodes' catch-up log lines on stderr (`RUST_LOG` picks
//! others). Bounded: gives up after [`CATCH_UP_WAIT`].

use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use hukou_keys::secret::{BureauKey, NetworkKey, generate_person_key, save_person_key};
use hukou_node::config::Config;
use hukou_node::run::{Started, run};
use hukou_node::store::Store;
use hukou_protocol::SignedEntry;
use hukou_protocol::audit;
use serde_json::Value;

/// The bundle generator: `testnet/src/bin/hukou-gen-bundle.rs`.
#[allow(dead_code)]
#[path = "../../testnet/src/bin/hukou-gen-bundle.rs"]
mod generator;

const ENTRIES_DEFAULT: u64 = 320_000;
const SEED: u64 = 11;
const BUREAUS: usize = 4;
/// Index (in the generated network) of the serving node and of the node that catches up.
const SERVER: usize = 0;
const FRESH: usize = 1;
/// Entries appended to the server's store per batch while loading it.
const LOAD_BATCH: usize = 4096;
/// Longest anything may take.
const NODE_WAIT: Duration = Duration::from_secs(60);
const CATCH_UP_WAIT: Duration = Duration::from_secs(600);

fn main() {
    // The nodes' own log lines (catch-up progress among them) on stderr.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("warn,hukou_node::sync=info")
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    let entries: u64 = std::env::var("HUKOU_CATCHUP_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(ENTRIES_DEFAULT);
    let dir = tempfile::Builder::new()
        .prefix("hukou-catchup-")
        .tempdir()
        .unwrap();
    let root = dir.path();

    let t = Instant::now();
    let bundle = root.join("bundle");
    let generated = generator::generate(&generator::Args {
        out: bundle.clone(),
        entries,
        bureaus: BUREAUS,
        seed: SEED,
        step_ms: generator::STEP_MS_DEFAULT,
        start_ms: generator::START_MS_DEFAULT,
        no_certificates: true,
        quiet: true,
    })
    .unwrap();
    println!(
        "generated={entries} logs={:?} seconds={:.1}",
        generated
            .logs
            .iter()
            .map(|(c, n)| format!("{c}:{n}"))
            .collect::<Vec<_>>(),
        t.elapsed().as_secs_f64()
    );

    // The network's files: the generated genesis, the generated bureau keys, fresh secrets.
    let genesis = generator::genesis(SEED, BUREAUS).unwrap();
    genesis.save(&root.join("genesis.toml")).unwrap();
    let network = genesis.verify().unwrap().membership().network();
    save_person_key(
        &generate_person_key().unwrap(),
        &root.join("person.key"),
        false,
    )
    .unwrap();
    NetworkKey::generate()
        .unwrap()
        .save(&root.join("network.key"), false)
        .unwrap();
    let codes: Vec<_> = generator::bureaus(BUREAUS)
        .into_iter()
        .map(|(c, _)| c)
        .collect();
    for i in [SERVER, FRESH] {
        let bureau_dir = root.join(codes[i].to_string());
        std::fs::create_dir_all(bureau_dir.join("data")).unwrap();
        BureauKey::from_secret_bytes(&generator::bureau_key(SEED, i).to_bytes())
            .save(&bureau_dir.join("bureau.key"), false)
            .unwrap();
        write_token(
            &bureau_dir.join("api.token"),
            &format!("bench-token-{}-0123456789", codes[i]),
        );
    }

    // The server's store holds every log.
    let t = Instant::now();
    {
        let store = Store::open(
            &root.join(codes[SERVER].to_string()).join("data").join("db"),
            codes[SERVER],
            network,
        )
        .unwrap();
        for code in &codes {
            let bytes = std::fs::read(bundle.join(audit::log_file(*code))).unwrap();
            let mut batch = Vec::with_capacity(LOAD_BATCH);
            let mut at = 0;
            while at < bytes.len() {
                let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
                batch.push(SignedEntry::decode(&bytes[at + 4..at + 4 + len]).unwrap());
                at += 4 + len;
                if batch.len() == LOAD_BATCH {
                    store.append(&batch).unwrap();
                    batch.clear();
                }
            }
            if !batch.is_empty() {
                store.append(&batch).unwrap();
            }
        }
        store.flush().unwrap();
    }
    println!(
        "loaded_server_store_seconds={:.1}",
        t.elapsed().as_secs_f64()
    );

    let fresh_port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();

    let t = Instant::now();
    let server = Node::start(config(
        root,
        &codes[SERVER].to_string(),
        "/ip4/127.0.0.1/tcp/0",
        &[(
            codes[FRESH].to_string(),
            format!("/ip4/127.0.0.1/tcp/{fresh_port}"),
        )],
    ));
    let server_health = wait_for(&agent, &server.base, NODE_WAIT, |h| h["entries"] == entries)
        .expect("the server replays its store");
    println!(
        "server_started_seconds={:.1} server_entries={}",
        t.elapsed().as_secs_f64(),
        server_health["entries"]
    );

    let cpu_before = process_cpu_s();
    let started = Instant::now();
    let fresh = Node::start(config(
        root,
        &codes[FRESH].to_string(),
        &format!("/ip4/127.0.0.1/tcp/{fresh_port}"),
        &[(codes[SERVER].to_string(), server.p2p.clone())],
    ));
    let mut samples = Vec::new();
    let done = wait_for(&agent, &fresh.base, CATCH_UP_WAIT, |h| {
        if h["catch_up"]["active"] == true {
            samples.push(h["catch_up"].clone());
        }
        h["entries"] == entries
    });
    let seconds = started.elapsed().as_secs_f64();
    let cpu = process_cpu_s() - cpu_before;
    let Some(health) = done else {
        panic!("the fresh node did not catch up within {CATCH_UP_WAIT:?}");
    };
    println!("catchup_entries={entries}");
    println!("catchup_seconds={seconds:.2}");
    println!("catchup_entries_per_s={:.0}", entries as f64 / seconds);
    println!(
        "catchup_cores_busy={:.2} cpu_us_per_entry={:.1} load1={}",
        cpu / seconds,
        cpu * 1e6 / entries as f64,
        load1()
    );
    println!("catchup_samples={}", samples.len());
    if let Some(last) = samples.last() {
        println!("catchup_last_sample={last}");
    }
    // The node's own summary, once it has ended the catch-up.
    let summary = wait_for(&agent, &fresh.base, NODE_WAIT, |h| {
        h["catch_up"]["active"] == false && h["catch_up"]["pulled"].as_u64().unwrap_or(0) > 0
    })
    .map(|h| h["catch_up"].clone())
    .unwrap_or(health["catch_up"].clone());
    println!("catchup_node_summary={summary}");
    println!(
        "fresh_status={} fresh_own_log_length={}",
        health["status"], health["own_log_length"]
    );
    // Entries are applied in memory before they are written: a store that failed (a full disk)
    // would still count them. A clean catch-up ends with the own log confirmed and writes open.
    let ok = wait_for(&agent, &fresh.base, NODE_WAIT, |h| h["status"] == "ok").is_some();
    assert!(
        ok,
        "the fresh node did not end the catch-up cleanly; see its log above"
    );
    fresh.stop();
    server.stop();
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

/// Writes and loads the config of bureau `code`, with a `[peers]` table of `peers`.
fn config(root: &Path, code: &str, p2p_listen: &str, peers: &[(String, String)]) -> Config {
    let top = root.display();
    let mut text = format!(
        "bureau = \"{code}\"\ndata_dir = \"data\"\nkey_file = \"bureau.key\"\n\
         genesis = \"{top}/genesis.toml\"\nperson_key_file = \"{top}/person.key\"\n\
         network_key_file = \"{top}/network.key\"\napi_token_file = \"api.token\"\n\
         api_listen = \"127.0.0.1:0\"\np2p_listen = \"{p2p_listen}\"\ncalendar = \"builtin\"\n\
         [peers]\n"
    );
    for (peer, address) in peers {
        text.push_str(&format!("{peer} = \"{address}\"\n"));
    }
    let path = root.join(code).join("node.toml");
    std::fs::write(&path, text).unwrap();
    Config::load(&path).unwrap()
}

/// Polls `base/healthz` every 100 ms until `done` holds; the last answer, or `None` after
/// `timeout`.
fn wait_for(
    agent: &ureq::Agent,
    base: &str,
    timeout: Duration,
    mut done: impl FnMut(&Value) -> bool,
) -> Option<Value> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(mut resp) = agent.get(&format!("{base}/healthz")).call()
            && let Ok(text) = resp.body_mut().read_to_string()
            && let Ok(h) = serde_json::from_str::<Value>(&text)
            && done(&h)
        {
            return Some(h);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// A node running on its own thread and runtime, as if it were its own process.
struct Node {
    base: String,
    p2p: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
}

impl Node {
    fn start(config: Config) -> Node {
        let (started_tx, started_rx) = std::sync::mpsc::channel::<Started>();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("node-{}", config.bureau))
            .spawn(move || {
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
        let Ok(started) = started_rx.recv_timeout(NODE_WAIT) else {
            panic!("the node did not start: {:?}", thread.join());
        };
        Node {
            base: format!("http://{}", started.api),
            p2p: started.p2p.first().cloned().expect("a listen address"),
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// Stops the node, waiting a bounded time.
    fn stop(mut self) {
        let _ = self.stop.take().expect("running").send(());
        let thread = self.thread.take().expect("running");
        let deadline = Instant::now() + NODE_WAIT;
        while !thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if thread.is_finished()
            && let Ok(Err(e)) = thread.join()
        {
            eprintln!("node {} stopped with an error: {e}", self.base);
        }
    }
}

/// CPU seconds this process has used so far (user + system, all threads).
fn process_cpu_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn load1() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .unwrap_or("?")
        .to_string()
}
