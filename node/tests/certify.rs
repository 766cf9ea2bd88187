//! Registration certificates (户籍证明) and certified exports, on four real nodes in this process
//! (each on its own thread and runtime, talking libp2p on 127.0.0.1), judged through the built
//! `hukou` binary as clerks and auditors use it:
//!
//! - `hukou certify` writes a certificate of a person enrolled at a bureau once the enrolment is
//!   final; `hukou verify-certificate` accepts it with only the genesis (exit 0), names each
//!   tampering (exit 1) and refuses what it cannot judge (exit 2); a person registered
//!   elsewhere, never registered, or whose registration is not final yet gets a clear refusal;
//!   after a transfer the destination certifies the registration entry.
//! - `hukou export --node` writes every log's certificate into the bundle, `hukou audit` checks
//!   them against the logs and the quorum, and a flipped cosignature byte is caught.
//!
//! Every enrolment consumes a claim its person's arbiter writes in its own log
//! (`common::Arbiters` computes which member that is), so the log lengths waited for count
//! those claims.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::Arbiters;
use hukou_keys::genesis::{Genesis, GenesisMember};
use hukou_keys::secret::{BureauKey, NetworkKey, generate_person_key, save_person_key};
use hukou_node::config::Config;
use hukou_node::run::{Started, run};
use hukou_protocol::BureauCode;
use hukou_protocol::id::check_character_for;
use serde_json::{Value, json};

const CODES: [u32; 4] = [310_104, 330_502, 340_100, 320_506];
const ORIGIN: usize = 0;
const DESTINATION: usize = 1;

/// Longest any one wait; a healthy run needs well under a second for most.
const WAIT: Duration = Duration::from_secs(30);

fn citizen_id(n: u64) -> String {
    let first17 = format!("11010519900101{:03}", n % 1000);
    let check = check_character_for(&first17).expect("17 digits");
    format!("{first17}{check}")
}

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

/// Keys, a signed four-member genesis (quorum 3) and one config per bureau, in `dir`.
fn network(dir: &Path, name: &str) -> Vec<PathBuf> {
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
    let mut genesis = Genesis::new(name, admin.public()).unwrap();
    let mut configs = Vec::new();
    for code in CODES {
        let port = free_port();
        let bureau_dir = dir.join(code.to_string());
        std::fs::create_dir_all(&bureau_dir).unwrap();
        let key = BureauKey::generate().unwrap();
        key.save(&bureau_dir.join("bureau.key"), false).unwrap();
        write_owner_only(
            &bureau_dir.join("api.token"),
            &format!("certify-test-token-{code}"),
        );
        let p2p = format!("/ip4/127.0.0.1/tcp/{port}");
        genesis
            .add_member(GenesisMember {
                code: BureauCode::new(code).unwrap(),
                name: format!("公安局 {code}"),
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
    configs
}

/// A node running on its own thread and runtime; stopped when dropped.
struct Node {
    base: String,
    token_file: PathBuf,
    token: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
}

impl Node {
    fn start(config_path: &Path) -> Node {
        let config = Config::load(config_path).unwrap();
        let code = config.bureau.get();
        let token_file = config.api_token_file.clone();
        let token = std::fs::read_to_string(&token_file)
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
                drop(runtime);
                result
            })
            .unwrap();
        let started = match started_rx.recv_timeout(WAIT) {
            Ok(s) => s,
            Err(_) => panic!("node {code} did not start: {:?}", thread.join()),
        };
        Node {
            base: format!("http://{}", started.api),
            token_file,
            token,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// Stops the node and waits for its thread.
    fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let thread = self.thread.take().unwrap();
        let deadline = Instant::now() + WAIT;
        while !thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
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
        .max_idle_connections(0)
        .timeout_global(Some(Duration::from_secs(40)))
        .build()
        .into()
}

fn get(node: &Node, path: &str) -> (u16, Value) {
    let mut response = agent()
        .get(format!("{}{path}", node.base))
        .call()
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = response.status().as_u16();
    (status, response.body_mut().read_json().unwrap())
}

fn post(node: &Node, path: &str, body: &Value) -> (u16, Value) {
    let mut response = agent()
        .post(format!("{}{path}", node.base))
        .header("Authorization", format!("Bearer {}", node.token))
        .send_json(body)
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
    let status = response.status().as_u16();
    (status, response.body_mut().read_json().unwrap())
}

fn ok_ref(what: &str, (status, body): (u16, Value)) -> String {
    assert_eq!(status, 200, "{what}: {body}");
    body["ref"].as_str().unwrap().to_string()
}

fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts every bureau and waits until each is healthy and connected to the three others.
fn start_all(configs: &[PathBuf]) -> Vec<Node> {
    let nodes: Vec<Node> = configs.iter().map(|c| Node::start(c)).collect();
    for node in &nodes {
        wait_for("every node healthy and connected", || {
            let (_, h) = get(node, "/healthz");
            (h["status"] == "ok" && h["peers_connected"].as_array().map_or(0, Vec::len) == 3)
                .then_some(())
        });
    }
    nodes
}

/// Waits until `node` holds a certificate covering all of `code`'s log as it holds it.
fn wait_certified(node: &Node, code: u32, length: u64) {
    let code = code.to_string();
    wait_for(&format!("log {code} certified at {length}"), || {
        let (_, logs) = get(node, "/v1/logs");
        logs["logs"].as_array().unwrap().iter().find_map(|l| {
            (l["bureau"] == code.as_str()
                && l["length"] == length
                && l["certificate_size"] == length)
                .then_some(())
        })
    });
}

fn hukou(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hukou"))
        .args(args)
        .current_dir(dir)
        .env_remove("HUKOU_NODE")
        .env_remove("HUKOU_TOKEN")
        .env_remove("HUKOU_TOKEN_FILE")
        .stdin(Stdio::null())
        .output()
        .expect("the hukou binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `hukou ARGS --json`: the exit code and the JSON on stdout.
#[track_caller]
fn hukou_json(dir: &Path, args: &[&str]) -> (i32, Value) {
    let mut args = args.to_vec();
    args.push("--json");
    let out = hukou(dir, &args);
    let code = out.status.code().expect("exited, not killed");
    assert!(
        !text(&out.stderr).contains("panicked"),
        "{}",
        text(&out.stderr)
    );
    let value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: stdout is not JSON ({e}): {}\nstderr: {}",
            text(&out.stdout),
            text(&out.stderr)
        )
    });
    (code, value)
}

/// `hukou certify` against `node` for citizen `person`, writing `out`.
fn certify(dir: &Path, node: &Node, person: &str, out: &str) -> (i32, Value) {
    hukou_json(
        dir,
        &[
            "certify",
            "--node",
            &node.base,
            "--token-file",
            node.token_file.to_str().unwrap(),
            "--person",
            person,
            "--out",
            out,
        ],
    )
}

/// `hukou verify-certificate FILE --genesis GENESIS EXTRA... --json`.
fn verify(dir: &Path, file: &str, genesis: &str, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["verify-certificate", file, "--genesis", genesis];
    args.extend_from_slice(extra);
    let (code, v) = hukou_json(dir, &args);
    assert_eq!(v["exit_code"], code, "{v}");
    (code, v)
}

/// Asserts that `file` with `damage` applied verifies as invalid (exit 1) with fault `name`.
#[track_caller]
fn assert_invalid(dir: &Path, file: &str, damage: impl FnOnce(&mut Vec<u8>), name: &str) {
    let mut bytes = std::fs::read(dir.join(file)).unwrap();
    damage(&mut bytes);
    let tampered = format!("tampered-{name}.cert");
    std::fs::write(dir.join(&tampered), bytes).unwrap();
    let (code, v) = verify(dir, &tampered, "genesis.toml", &[]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["valid"], false, "{v}");
    assert_eq!(v["error"], name, "{v}");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
}

#[test]
fn a_registration_certificate_verifies_offline_and_each_tampering_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let configs = network(d, "hukou-certify-test");
    let mut nodes = start_all(&configs);
    let origin = &nodes[ORIGIN];

    let arbiters = Arbiters::load(&d.join("genesis.toml"), &d.join("person.key"));

    // A person enrolled at the origin, once final, is certified there.
    let alice = citizen_id(1);
    let enrolment = ok_ref(
        "enrol",
        post(origin, "/v1/enrol", &json!({"person": alice})),
    );
    let (_, person) = post(origin, "/v1/person", &json!({"person": alice}));
    let tag = person["person_tag"].as_str().unwrap().to_string();
    // The origin's log: the enrolment, after alice's claim if the origin is her arbiter.
    let origin_code = CODES[ORIGIN].to_string();
    let length = 1 + u64::from(arbiters.is(&origin_code, &alice));
    assert_eq!(
        enrolment.split(':').nth(1),
        Some((length - 1).to_string().as_str())
    );
    wait_certified(origin, CODES[ORIGIN], length);
    let (code, answer) = certify(d, origin, &alice, "alice.cert");
    assert_eq!(code, 0, "{answer}");
    assert_eq!(answer["entry"], enrolment.as_str());
    assert_eq!(answer["person_tag"], tag.as_str());
    assert_eq!(answer["out"], "alice.cert");
    assert_eq!(
        (&answer["entry_epoch"], &answer["certificate_epoch"]),
        (&json!(0), &json!(0)),
        "{answer}"
    );
    assert!(answer.get("file").is_none(), "{answer}");
    // The ID number is nowhere in the file, only the tag.
    let bytes = std::fs::read(d.join("alice.cert")).unwrap();
    assert_eq!(&bytes[..4], b"HKA\x02");
    assert!(!bytes.windows(alice.len()).any(|w| w == alice.as_bytes()));
    assert!(
        bytes.windows(32).any(|w| hex::encode(w) == tag),
        "the person tag is in the file"
    );

    let (code, v) = verify(d, "alice.cert", "genesis.toml", &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["valid"], true);
    assert_eq!(v["person_tag"], tag.as_str());
    assert_eq!(v["bureau"], CODES[ORIGIN].to_string());
    assert_eq!(v["bureau_name"], format!("公安局 {}", CODES[ORIGIN]));
    assert_eq!(v["entry"], enrolment.as_str());
    assert_eq!(v["kind"], "enrol");
    assert_eq!(
        (&v["entry_epoch"], &v["certificate_epoch"]),
        (&json!(0), &json!(0))
    );
    assert_eq!(v["certificate"]["log"], CODES[ORIGIN].to_string());
    assert!(v["certificate"]["size"].as_u64().unwrap() >= 1);
    assert_eq!(v["certificate"]["quorum"], 3);
    assert!(v["certificate"]["witnesses"].as_array().unwrap().len() >= 3);
    assert!(v["certificate"]["time_ms"].as_u64().unwrap() > 1_700_000_000_000);
    assert!(
        v["does_not_prove"]
            .as_str()
            .unwrap()
            .contains("still registered")
    );

    // The genesis pinned by hash, right and wrong.
    let genesis_hash = v["genesis_hash"].as_str().unwrap().to_string();
    let (code, _) = verify(
        d,
        "alice.cert",
        "genesis.toml",
        &["--expect-genesis", &genesis_hash],
    );
    assert_eq!(code, 0);
    let (code, v) = verify(
        d,
        "alice.cert",
        "genesis.toml",
        &["--expect-genesis", &"0".repeat(64)],
    );
    assert_eq!(
        (code, v["error"].as_str()),
        (2, Some("genesis_not_expected"))
    );

    // The human form.
    let out = hukou(
        d,
        &[
            "verify-certificate",
            "alice.cert",
            "--genesis",
            "genesis.toml",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("valid registration certificate"),
        "{stdout}"
    );
    assert!(stdout.contains(&enrolment), "{stdout}");
    assert!(
        stdout.contains("signed under configuration epoch 0 (entry_epoch)")
            && stdout.contains("under configuration epoch 0 (certificate_epoch)"),
        "{stdout}"
    );

    // Tampering, each named (exit 1). Layout: magic 4, entry length 8, the entry (content, then
    // a 64-byte signature; the body's variant at content offset 92, the person tag after it at
    // 96), ..., the certificate last (its
    // last bytes are the last cosignature's signature).
    let entry_len = u64::from_le_bytes(bytes[4..12].try_into().unwrap()) as usize;
    assert_invalid(
        d,
        "alice.cert",
        |b| b[12 + 96] ^= 1,
        "attestation_bad_entry_signature",
    );
    assert_invalid(
        d,
        "alice.cert",
        |b| b[12 + entry_len - 1] ^= 1,
        "attestation_bad_entry_signature",
    );
    let last = bytes.len() - 1;
    assert_invalid(
        d,
        "alice.cert",
        |b| b[last] ^= 1,
        "certificate_bad_cosignature",
    );
    assert_invalid(
        d,
        "alice.cert",
        |b| b.truncate(last),
        "attestation_undecodable",
    );

    // Not a registration certificate, or a genesis that is not the network's: unusable or
    // invalid, with the reason.
    let (code, v) = verify(d, "genesis.toml", "genesis.toml", &[]);
    assert_eq!(
        (code, v["error"].as_str()),
        (2, Some("not_a_registration_certificate")),
        "{v}"
    );
    let (code, v) = verify(d, "nowhere.cert", "genesis.toml", &[]);
    assert_eq!(
        (code, v["error"].as_str()),
        (2, Some("certificate_unreadable")),
        "{v}"
    );
    let foreign = d.join("foreign");
    std::fs::create_dir_all(&foreign).unwrap();
    network(&foreign, "another-network");
    let (code, v) = verify(d, "alice.cert", "foreign/genesis.toml", &[]);
    assert_eq!(
        (code, v["error"].as_str()),
        (1, Some("attestation_wrong_network")),
        "{v}"
    );
    let foreign_same_name = d.join("foreign-same-name");
    std::fs::create_dir_all(&foreign_same_name).unwrap();
    network(&foreign_same_name, "hukou-certify-test");
    let (code, v) = verify(d, "alice.cert", "foreign-same-name/genesis.toml", &[]);
    assert_eq!(
        (code, v["error"].as_str()),
        (1, Some("attestation_bad_entry_signature")),
        "{v}"
    );

    // Never registered: refused with the reason, nothing written.
    let (code, v) = certify(d, origin, &citizen_id(2), "nobody.cert");
    assert_eq!(
        (code, v["error"].as_str()),
        (1, Some("person_not_registered_here")),
        "{v}"
    );
    assert!(!d.join("nobody.cert").exists());
    // A malformed ID is refused before any call.
    let (code, v) = certify(d, origin, "11010519900101", "bad.cert");
    assert_eq!(
        (code, v["error"].as_str()),
        (1, Some("id_wrong_length")),
        "{v}"
    );
    // Without the token: unauthorized.
    let out = hukou(
        d,
        &[
            "certify",
            "--node",
            &origin.base,
            "--person",
            &alice,
            "--out",
            "x.cert",
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("unauthorized"),
        "{}",
        text(&out.stdout)
    );

    // A transfer: the origin no longer certifies the person; the destination certifies its
    // registration entry.
    let bob = citizen_id(3);
    let destination = &nodes[DESTINATION];
    ok_ref(
        "enrol bob",
        post(origin, "/v1/enrol", &json!({"person": bob})),
    );
    let permit = ok_ref(
        "permit",
        post(
            destination,
            "/v1/permits",
            &json!({"person": bob, "origin": CODES[ORIGIN].to_string(), "category": "spouse"}),
        ),
    );
    wait_for("the permit at the origin", || {
        (get(origin, &format!("/v1/transfers/{permit}")).0 == 200).then_some(())
    });
    let deregistration = ok_ref(
        "deregistration",
        post(origin, "/v1/deregister", &json!({"permit": permit})),
    );
    wait_for("the deregistration at the destination", || {
        (get(destination, &format!("/v1/transfers/{deregistration}")).0 == 200).then_some(())
    });
    let registration = ok_ref(
        "registration",
        post(
            destination,
            "/v1/register",
            &json!({"deregistration": deregistration, "wait_ms": 30_000}),
        ),
    );
    let (code, v) = certify(d, origin, &bob, "bob-at-origin.cert");
    assert_eq!(
        (code, v["error"].as_str()),
        (1, Some("person_not_registered_here")),
        "{v}"
    );
    let seq: u64 = registration.split(':').nth(1).unwrap().parse().unwrap();
    wait_certified(destination, CODES[DESTINATION], seq + 1);
    let (code, answer) = certify(d, destination, &bob, "bob.cert");
    assert_eq!(code, 0, "{answer}");
    let (code, v) = verify(d, "bob.cert", "genesis.toml", &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["kind"], "registration");
    assert_eq!(v["entry"], registration.as_str());
    assert_eq!(v["bureau"], CODES[DESTINATION].to_string());

    // Without a quorum nothing new becomes final: the certificate is refused, not issued. An
    // enrolment itself needs its claim final, which needs a quorum too; so the origin gets
    // carol's claim while all four run (an enrolment into a household that does not exist is
    // refused after the claim became final, and the claim is kept for the retry) ...
    let carol = citizen_id(4);
    let (status, v) = post(
        origin,
        "/v1/enrol",
        &json!({"person": carol, "household": 999, "relation": "spouse"}),
    );
    assert_eq!(
        (status, v["error"].as_str()),
        (409, Some("household_unknown")),
        "{v}"
    );
    let (_, shown) = post(origin, "/v1/person", &json!({"person": carol}));
    let history = shown["history"].as_array().unwrap();
    assert_eq!(history.len(), 1, "{shown}");
    assert_eq!(history[0]["kind"], "claim", "{shown}");
    assert_eq!(
        history[0]["bureau"],
        arbiters.of(&carol).to_string(),
        "{shown}"
    );
    let claim = history[0]["ref"].as_str().unwrap().to_string();
    // ... then two bureaus stop, and the retry consumes the final claim it holds.
    for node in nodes.drain(2..) {
        node.stop();
    }
    let origin = &nodes[ORIGIN];
    let (status, enrolled) = post(origin, "/v1/enrol", &json!({"person": carol}));
    assert_eq!(status, 200, "{enrolled}");
    assert_eq!(enrolled["claim"], claim.as_str(), "{enrolled}");
    let (code, v) = certify(d, origin, &carol, "carol.cert");
    assert_eq!(
        (code, v["error"].as_str()),
        (1, Some("registration_not_final")),
        "{v}"
    );
    assert!(v["message"].as_str().unwrap().contains("not final"), "{v}");
    // And over the API directly: 409 with the same name.
    let (status, v) = post(origin, "/v1/person/certificate", &json!({"person": carol}));
    assert_eq!(
        (status, v["error"].as_str()),
        (409, Some("registration_not_final")),
        "{v}"
    );
    // Alice's certificate is still served: her enrolment stays final.
    let (status, v) = post(origin, "/v1/person/certificate", &json!({"person": alice}));
    assert_eq!(status, 200, "{v}");
    for node in nodes {
        node.stop();
    }
}

#[test]
fn an_http_export_carries_every_certificate_and_the_audit_checks_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let configs = network(d, "hukou-export-certificates-test");
    let nodes = start_all(&configs);
    let arbiters = Arbiters::load(&d.join("genesis.toml"), &d.join("person.key"));
    // Entries in two logs, each certified in full on the exporting node: three enrolments at
    // each of the first two bureaus, of persons whose arbiter is one of these two, so the
    // claims land in the same two logs and the other two stay empty.
    let mut lengths = [0u64; 2];
    let mut n = 0;
    for (i, node) in nodes.iter().take(2).enumerate() {
        for _ in 0..3 {
            let person = loop {
                n += 1;
                let person = citizen_id(100 + n);
                let arbiter = arbiters.of(&person).get();
                if let Some(k) = CODES[..2].iter().position(|c| *c == arbiter) {
                    lengths[k] += 1;
                    break person;
                }
            };
            ok_ref("enrol", post(node, "/v1/enrol", &json!({"person": person})));
            lengths[i] += 1;
        }
    }
    assert_eq!(lengths.iter().sum::<u64>(), 12, "6 enrolments, 6 claims");
    let exporter = &nodes[2];
    wait_certified(exporter, CODES[0], lengths[0]);
    wait_certified(exporter, CODES[1], lengths[1]);

    let out = hukou(
        d,
        &[
            "export",
            "--node",
            &exporter.base,
            "--genesis",
            "genesis.toml",
            "--out",
            "bundle",
            "--quiet",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let mut certificates: Vec<String> = std::fs::read_dir(d.join("bundle/certificates"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    certificates.sort();
    assert_eq!(
        certificates,
        vec![
            format!("{}-{}.cert", CODES[0], lengths[0]),
            format!("{}-{}.cert", CODES[1], lengths[1])
        ],
        "one certificate per certified log"
    );
    // Byte for byte what the node serves.
    let (_, served) = get(exporter, &format!("/v1/logs/{}/certificate", CODES[0]));
    assert_eq!(
        hex::encode(std::fs::read(d.join("bundle/certificates").join(&certificates[0])).unwrap()),
        served["certificate"].as_str().unwrap()
    );

    let (code, v) = hukou_json(d, &["audit", "bundle", "--quiet"]);
    assert_eq!(code, 0, "{:#}", v["findings"]);
    assert_eq!(v["totals"]["certificates"], 2);
    assert_eq!(v["totals"]["certificates_valid"], 2);
    for log in v["logs"].as_array().unwrap() {
        let bureau: u32 = log["bureau"].as_str().unwrap().parse().unwrap();
        let expected = match CODES[..2].iter().position(|c| *c == bureau) {
            Some(k) => lengths[k],
            None => 0,
        };
        assert_eq!(log["entries"], expected, "{log}");
        assert_eq!(log["certified_size"], expected, "{log}");
    }

    // A flipped byte in a cosignature of the exported certificate: caught and named.
    let path = d.join("bundle/certificates").join(&certificates[1]);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();
    let (code, v) = hukou_json(d, &["audit", "bundle", "--quiet"]);
    assert_eq!(code, 1, "{v}");
    assert!(
        v["findings_by_name"]
            .get("certificate_bad_cosignature")
            .is_some(),
        "{:#}",
        v["findings_by_name"]
    );
    assert_eq!(v["totals"]["certificates_valid"], 1);
    for node in nodes {
        node.stop();
    }
}
