//! Finality on four real nodes in this process (each on its own thread and runtime, as if it
//! were its own process), talking libp2p on 127.0.0.1 and HTTP to the test: a transfer's
//! deregistration becomes final on every node, every node serves a certificate of the origin's
//! log that verifies with the membership alone and whose root is the root of the origin's
//! entries, and a witness restarted on its own store carries on from what it last cosigned.
//!
//! `finality_latency` (ignored by default; `cargo test -p hukou-node --test finality --
//! --ignored --nocapture`) measures the time from a deregistration's HTTP 200 at the origin to
//! `"final": true` at the destination over many transfers.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hukou_keys::genesis::{Genesis, GenesisMember};
use hukou_keys::secret::{BureauKey, NetworkKey, generate_person_key, save_person_key};
use hukou_node::config::Config;
use hukou_node::run::{Started, run};
use hukou_protocol::checkpoint::Certificate;
use hukou_protocol::id::check_character_for;
use hukou_protocol::merkle::Tree;
use hukou_protocol::{BureauCode, Membership, SignedEntry};
use serde_json::{Value, json};

const CODES: [u32; 4] = [310_104, 330_502, 340_100, 320_506];
/// The origin of the transfers, the destination, and the witness the test restarts.
const ORIGIN: usize = 0;
const DESTINATION: usize = 1;
const RESTARTED: usize = 2;

/// Longest any one wait; a healthy run needs well under a second for most.
const WAIT: Duration = Duration::from_secs(20);

/// A valid citizen ID number, distinct for each `n` below 1000 per birth day.
fn citizen_id(n: u64) -> String {
    let day = 1 + (n / 1000) % 28;
    let first17 = format!(
        "1101051990{:02}{:02}{:03}",
        1 + (n / 28_000) % 12,
        day,
        n % 1000
    );
    let check = check_character_for(&first17).expect("17 digits");
    format!("{first17}{check}")
}

/// Binds port 0 and releases it: a port free a moment ago, for the genesis addresses.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn write_owner_only(path: &Path, text: &str) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    writeln!(f, "{text}").unwrap();
}

/// Keys, signed genesis and one config per bureau, in `dir`. Returns the configs' paths and
/// the membership.
fn network(dir: &Path) -> (Vec<PathBuf>, Membership) {
    let admin = BureauKey::generate().unwrap();
    save_person_key(
        &generate_person_key().unwrap(),
        &dir.join("person.key"),
        false,
    )
    .unwrap();
    NetworkKey::generate()
        .unwrap()
        .save(&dir.join("network.key"), false)
        .unwrap();
    let mut genesis = Genesis::new("hukou-finality-test", admin.public()).unwrap();
    let mut configs = Vec::new();
    for code in CODES {
        let port = free_port();
        let bureau_dir = dir.join(code.to_string());
        std::fs::create_dir_all(&bureau_dir).unwrap();
        let key = BureauKey::generate().unwrap();
        key.save(&bureau_dir.join("bureau.key"), false).unwrap();
        write_owner_only(
            &bureau_dir.join("api.token"),
            &format!("finality-test-token-{code}"),
        );
        let p2p = format!("/ip4/127.0.0.1/tcp/{port}");
        genesis
            .add_member(GenesisMember {
                code: BureauCode::new(code).unwrap(),
                name: format!("bureau {code}"),
                public_key: key.public(),
                addresses: vec![p2p.clone()],
            })
            .unwrap();
        let top = dir.display();
        let config = format!(
            "bureau = \"{code}\"\ndata_dir = \"data\"\nkey_file = \"bureau.key\"\n\
             genesis = \"{top}/genesis.toml\"\nperson_key_file = \"{top}/person.key\"\n\
             network_key_file = \"{top}/network.key\"\napi_token_file = \"api.token\"\n\
             api_listen = \"127.0.0.1:0\"\np2p_listen = \"{p2p}\"\ncalendar = \"builtin\"\n"
        );
        let path = bureau_dir.join("node.toml");
        std::fs::write(&path, config).unwrap();
        configs.push(path);
    }
    genesis.sign(admin.signing_key()).unwrap();
    genesis.save(&dir.join("genesis.toml")).unwrap();
    let membership = genesis.verify().unwrap().membership().clone();
    (configs, membership)
}

/// A node running on its own thread and runtime.
struct Node {
    code: u32,
    base: String,
    token: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
}

impl Node {
    fn start(config_path: &Path) -> Node {
        let config = Config::load(config_path).unwrap();
        let code = config.bureau.get();
        let token = std::fs::read_to_string(&config.api_token_file)
            .unwrap()
            .trim()
            .to_string();
        let (started_tx, started_rx) = std::sync::mpsc::channel::<Started>();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("node-{code}"))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
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
                // Dropping the runtime ends every task still holding the store.
                drop(runtime);
                result
            })
            .unwrap();
        let started = match started_rx.recv_timeout(WAIT) {
            Ok(s) => s,
            Err(_) => panic!("node {code} did not start: {:?}", thread.join()),
        };
        Node {
            code,
            base: format!("http://{}", started.api),
            token,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// Stops the node and checks it ended cleanly (no panic, no error).
    fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let thread = self.thread.take().unwrap();
        let deadline = Instant::now() + WAIT;
        while !thread.is_finished() {
            assert!(
                Instant::now() < deadline,
                "node {} did not stop in time",
                self.code
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        match thread.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("node {} stopped with an error: {e:#}", self.code),
            Err(_) => panic!("node {} panicked", self.code),
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        // No idle keep-alive connections: they would hold a node's graceful shutdown.
        .max_idle_connections(0)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

fn get(agent: &ureq::Agent, node: &Node, path: &str) -> (u16, Value) {
    let mut response = agent
        .get(format!("{}{path}", node.base))
        .call()
        .unwrap_or_else(|e| panic!("GET {path} on {}: {e}", node.code));
    let status = response.status().as_u16();
    let value = if path == "/metrics" {
        Value::String(response.body_mut().read_to_string().unwrap())
    } else {
        response.body_mut().read_json().unwrap()
    };
    (status, value)
}

fn post(agent: &ureq::Agent, node: &Node, path: &str, body: &Value) -> (u16, Value) {
    let mut response = agent
        .post(format!("{}{path}", node.base))
        .header("Authorization", format!("Bearer {}", node.token))
        .send_json(body)
        .unwrap_or_else(|e| panic!("POST {path} on {}: {e}", node.code));
    let status = response.status().as_u16();
    (status, response.body_mut().read_json().unwrap())
}

/// Polls `check` every 10 ms until it returns `Some`, for at most [`WAIT`].
fn wait_for<T>(what: &str, check: impl FnMut() -> Option<T>) -> T {
    poll(what, Duration::from_millis(10), check)
}

fn poll<T>(what: &str, every: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(every);
    }
}

fn wait_healthy(agent: &ureq::Agent, node: &Node) {
    wait_for(&format!("node {} healthy and connected", node.code), || {
        let (_, h) = get(agent, node, "/healthz");
        (h["status"] == "ok" && h["peers_connected"].as_array().map_or(0, Vec::len) == 3)
            .then_some(())
    });
}

/// A 200 answer's `ref`.
fn ok_ref(what: &str, (status, body): (u16, Value)) -> String {
    assert_eq!(status, 200, "{what}: {body}");
    body["ref"].as_str().unwrap().to_string()
}

/// One whole transfer of person `n` from the origin to the destination. Returns the
/// deregistration's reference.
fn transfer(agent: &ureq::Agent, nodes: &[Node], n: u64) -> String {
    let (deregistration, _) = deregister(agent, nodes, n);
    register(agent, nodes, &deregistration);
    deregistration
}

/// Enrols person `n` at the origin, issues a permit at the destination and deregisters at the
/// origin. Returns the deregistration's reference and the instant its HTTP 200 arrived.
fn deregister(agent: &ureq::Agent, nodes: &[Node], n: u64) -> (String, Instant) {
    let (origin, destination) = (&nodes[ORIGIN], &nodes[DESTINATION]);
    let person = citizen_id(n);
    ok_ref(
        "enrol",
        post(agent, origin, "/v1/enrol", &json!({"person": person})),
    );
    let permit = ok_ref(
        "permit",
        post(
            agent,
            destination,
            "/v1/permits",
            &json!({"person": person, "origin": origin.code.to_string(), "category": "spouse"}),
        ),
    );
    wait_for("the permit at the origin", || {
        (get(agent, origin, &format!("/v1/transfers/{permit}")).0 == 200).then_some(())
    });
    let deregistration = ok_ref(
        "deregistration",
        post(agent, origin, "/v1/deregister", &json!({"permit": permit})),
    );
    (deregistration, Instant::now())
}

/// Registers at the destination as soon as it holds the deregistration, asking the node to wait
/// for the deregistration to become final (it refuses a registration against a non-final one).
fn register(agent: &ureq::Agent, nodes: &[Node], deregistration: &str) {
    let destination = &nodes[DESTINATION];
    wait_for("the deregistration at the destination", || {
        (get(
            agent,
            destination,
            &format!("/v1/transfers/{deregistration}"),
        )
        .0 == 200)
            .then_some(())
    });
    ok_ref(
        "registration",
        post(
            agent,
            destination,
            "/v1/register",
            &json!({"deregistration": deregistration, "wait_ms": 30_000}),
        ),
    );
}

/// The deregistration step of a transfer as `node` reports it.
fn deregistration_step(agent: &ureq::Agent, node: &Node, reference: &str) -> Option<Value> {
    let (status, transfer) = get(agent, node, &format!("/v1/transfers/{reference}"));
    if status != 200 {
        return None;
    }
    transfer["steps"]
        .as_array()?
        .iter()
        .find(|s| s["step"] == "deregistration")
        .cloned()
}

fn is_final_on(agent: &ureq::Agent, node: &Node, reference: &str) -> bool {
    deregistration_step(agent, node, reference).is_some_and(|s| s["final"] == true)
}

/// The origin's log as the origin serves it, rebuilt into a Merkle tree here.
fn origin_tree(agent: &ureq::Agent, node: &Node) -> Tree {
    let mut response = agent
        .get(format!("{}/v1/logs/{}/raw", node.base, CODES[ORIGIN]))
        .call()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let bytes = response
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_vec()
        .unwrap();
    let mut tree = Tree::new();
    let mut rest = bytes.as_slice();
    while !rest.is_empty() {
        let (len, tail) = rest.split_at(4);
        let len = u32::from_be_bytes(len.try_into().unwrap()) as usize;
        let (entry, tail) = tail.split_at(len);
        tree.push(SignedEntry::decode(entry).unwrap().hash().0);
        rest = tail;
    }
    tree
}

/// Checks the certificate `node` serves for the origin's log and returns its size.
fn check_certificate(
    agent: &ureq::Agent,
    node: &Node,
    membership: &Membership,
    tree: &Tree,
) -> u64 {
    let (status, body) = get(
        agent,
        node,
        &format!("/v1/logs/{}/certificate", CODES[ORIGIN]),
    );
    assert_eq!(status, 200, "certificate on {}: {body}", node.code);
    let bytes = hex::decode(body["certificate"].as_str().unwrap()).unwrap();
    let certificate = Certificate::decode(&bytes).unwrap();
    assert_eq!(
        certificate.verify(&hukou_protocol::config::Epochs::of_membership(
            (membership).clone()
        )),
        Ok(()),
        "on {}",
        node.code
    );
    let c = certificate.checkpoint;
    assert_eq!(c.log.get(), CODES[ORIGIN]);
    assert_eq!(body["size"], c.size);
    assert_eq!(body["root"], hex::encode(c.root));
    assert!(certificate.cosignatures.len() >= membership.quorum());
    assert_eq!(
        tree.root_at(c.size).unwrap(),
        c.root,
        "certificate root on {} is not the root of the origin's entries",
        node.code
    );
    c.size
}

fn metric(agent: &ureq::Agent, node: &Node, name: &str) -> u64 {
    let (_, text) = get(agent, node, "/metrics");
    text.as_str()
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no metric {name} on {}", node.code))
}

/// The origin's log as `node`'s `/v1/logs` reports it.
fn origin_log(agent: &ureq::Agent, node: &Node) -> Value {
    let (_, logs) = get(agent, node, "/v1/logs");
    logs["logs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["bureau"].as_str() == Some(CODES[ORIGIN].to_string().as_str()))
        .cloned()
        .unwrap()
}

fn start_network(dir: &Path) -> (Vec<PathBuf>, Membership, Vec<Node>, ureq::Agent) {
    let (configs, membership) = network(dir);
    let nodes: Vec<Node> = configs.iter().map(|c| Node::start(c)).collect();
    let agent = agent();
    for node in &nodes {
        wait_healthy(&agent, node);
    }
    (configs, membership, nodes, agent)
}

#[test]
fn a_deregistration_becomes_final_everywhere_and_a_restarted_witness_carries_on() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let (configs, membership, mut nodes, agent) = start_network(dir.path());

    let deregistration = transfer(&agent, &nodes, 1);
    for node in &nodes {
        wait_for(
            &format!("the deregistration final on {}", node.code),
            || is_final_on(&agent, node, &deregistration).then_some(()),
        );
    }
    let seq: u64 = deregistration.split(':').nth(1).unwrap().parse().unwrap();
    let tree = origin_tree(&agent, &nodes[ORIGIN]);
    for node in &nodes {
        let size = check_certificate(&agent, node, &membership, &tree);
        assert!(
            size > seq,
            "certificate of size {size} does not cover seq {seq}"
        );
        let log = origin_log(&agent, node);
        assert!(log["final_size"].as_u64().unwrap() > seq);
        assert_eq!(log["certificate_size"], log["final_size"]);
        assert_eq!(metric(&agent, node, "hukou_checkpoints_refused_total"), 0);
        assert!(metric(&agent, node, "hukou_certificates_total") >= 1);
    }
    // The whole transfer is final once its registration is too.
    let shown = wait_for("the whole transfer final", || {
        let (_, shown) = get(
            &agent,
            &nodes[RESTARTED],
            &format!("/v1/transfers/{deregistration}"),
        );
        (shown["final"] == true).then_some(shown)
    });
    let steps = shown["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 3, "{shown}");
    assert!(steps.iter().all(|s| s["final"] == true), "{shown}");
    let (status, own) = get(
        &agent,
        &nodes[ORIGIN],
        &format!("/v1/logs/{}/checkpoint", CODES[ORIGIN]),
    );
    assert_eq!(status, 200, "{own}");
    assert_eq!(
        own["root"],
        hex::encode(tree.root_at(own["size"].as_u64().unwrap()).unwrap())
    );
    let (status, other) = get(
        &agent,
        &nodes[RESTARTED],
        &format!("/v1/logs/{}/checkpoint", CODES[ORIGIN]),
    );
    assert_eq!(
        (status, other["error"].as_str()),
        (404, Some("not_own_log"))
    );

    // Restart a witness on its own store: it loads what it last cosigned of the origin's log,
    // and goes on cosigning from there.
    let cosigned_before = wait_for("the witness's cosignature of the origin", || {
        origin_log(&agent, &nodes[RESTARTED])["cosigned_size"].as_u64()
    });
    let witness = nodes.remove(RESTARTED);
    witness.stop();
    nodes.insert(RESTARTED, Node::start(&configs[RESTARTED]));
    let restarted = &nodes[RESTARTED];
    wait_healthy(&agent, restarted);
    let log = origin_log(&agent, restarted);
    assert!(
        log["cosigned_size"].as_u64().unwrap() >= cosigned_before,
        "after the restart the witness forgot what it cosigned: {log}"
    );
    assert!(log["final_size"].as_u64().unwrap() > seq, "{log}");
    assert!(is_final_on(&agent, restarted, &deregistration));

    let next = transfer(&agent, &nodes, 2);
    for node in &nodes {
        wait_for(
            &format!("the second deregistration final on {}", node.code),
            || is_final_on(&agent, node, &next).then_some(()),
        );
    }
    let next_seq: u64 = next.split(':').nth(1).unwrap().parse().unwrap();
    wait_for(
        "the restarted witness cosigning the origin's new entries",
        || {
            (origin_log(&agent, &nodes[RESTARTED])["cosigned_size"].as_u64()? > next_seq)
                .then_some(())
        },
    );
    assert!(metric(&agent, &nodes[RESTARTED], "hukou_cosignatures_total") >= 1);
    let tree = origin_tree(&agent, &nodes[ORIGIN]);
    for node in &nodes {
        assert!(check_certificate(&agent, node, &membership, &tree) > next_seq);
        assert_eq!(metric(&agent, node, "hukou_checkpoints_refused_total"), 0);
    }
    for node in nodes {
        node.stop();
    }
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
#[ignore = "a measurement: run with --ignored --nocapture"]
fn finality_latency() {
    const TRANSFERS: u64 = 100;
    let dir = tempfile::tempdir().unwrap();
    let (_configs, _membership, nodes, agent) = start_network(dir.path());
    let mut latencies_ms = Vec::new();
    for n in 0..TRANSFERS {
        let (deregistration, recorded) = deregister(&agent, &nodes, 1_000 + n);
        poll(
            "finality at the destination",
            Duration::from_millis(2),
            || is_final_on(&agent, &nodes[DESTINATION], &deregistration).then_some(()),
        );
        latencies_ms.push(recorded.elapsed().as_secs_f64() * 1e3);
        register(&agent, &nodes, &deregistration);
    }
    latencies_ms.sort_by(f64::total_cmp);
    let at = |q: f64| latencies_ms[((latencies_ms.len() - 1) as f64 * q).round() as usize];
    println!(
        "finality latency over {TRANSFERS} transfers (deregistration 200 at the origin to final at the destination): \
         p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        at(0.5),
        at(0.9),
        at(0.99),
        latencies_ms.last().unwrap()
    );
    for node in nodes {
        node.stop();
    }
}
