//! What the node's integration tests share: the two-bureau network of real `hukou` processes
//! that the clerk-facing tests (`cli_client`, `batch`, `audit_cli`) run against, and the
//! person's arbiter as the nodes compute it.
//!
//! Since enrolments and births consume a claim that must be final (a certificate of the
//! arbiter's log covers it, i.e. a quorum cosigned it), a node alone in a two-member genesis can
//! enrol nobody: both members run here, each as its own child process with its own data
//! directory, ports, config and token, sharing the genesis, person key and network key.
//!
//! Each test file compiles this module on its own and uses part of it.
#![allow(dead_code)]

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use hukou_keys::Genesis;
use hukou_protocol::id::{CitizenId, PersonKey, check_character_for};
use hukou_protocol::{BureauCode, Membership};
use serde_json::Value;

/// The bureau the tests write to: its files are at the top of the network's directory.
pub const HERE: &str = "310104";
/// The other member: its own files in `other/`.
pub const OTHER: &str = "330502";

/// Longest the two nodes may take to be healthy and connected.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest a node may take to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs `hukou ARGS` in `dir`, with none of the client's environment variables set.
pub fn hukou_in(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hukou"))
        .args(args)
        .current_dir(dir)
        .env_remove("HUKOU_NODE")
        .env_remove("HUKOU_TOKEN")
        .env_remove("HUKOU_TOKEN_FILE")
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("the hukou binary runs")
}

/// `hukou ARGS` in `dir`, which must succeed.
#[track_caller]
pub fn hukou_ok(dir: &Path, args: &[&str]) -> Output {
    let out = hukou_in(dir, args, &[]);
    assert!(
        out.status.success(),
        "hukou {args:?} ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A full ID number from its first 17 digits.
pub fn valid_id(first17: &str) -> String {
    format!("{first17}{}", check_character_for(first17).unwrap())
}

/// Which member arbitrates each person (`Membership::arbiter` of the person's tag), computed
/// from the network's genesis and person key files exactly as the nodes compute it.
pub struct Arbiters {
    membership: Membership,
    person_key: PersonKey,
}

impl Arbiters {
    pub fn load(genesis: &Path, person_key: &Path) -> Arbiters {
        let verified = Genesis::load(genesis).unwrap().verify().unwrap();
        Arbiters {
            membership: verified.membership().clone(),
            person_key: hukou_keys::load_person_key(person_key).unwrap(),
        }
    }

    /// The bureau code of the arbiter of the person with ID number `id`.
    pub fn of(&self, id: &str) -> BureauCode {
        let id = CitizenId::parse(id).unwrap();
        self.membership.arbiter(&self.person_key.tag(&id))
    }

    /// Whether `code` (a 6-digit bureau code) arbitrates the person with ID number `id`.
    pub fn is(&self, code: &str, id: &str) -> bool {
        self.of(id).to_string() == code
    }

    /// The first of `ids` whose arbiter is `code`.
    pub fn first_of(&self, code: &str, ids: impl IntoIterator<Item = String>) -> String {
        ids.into_iter()
            .take(10_000)
            .find(|id| self.is(code, id))
            .unwrap_or_else(|| panic!("no ID arbitrated by {code} among 10000"))
    }
}

/// One member's node process, killed when dropped (also when a test fails).
pub struct Member {
    pub code: &'static str,
    /// Where its config, key, token, `data/` and `node.log` are.
    pub dir: PathBuf,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    child: Option<Child>,
}

impl Member {
    /// Starts the node (again, on its own store) without waiting for it.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "{} is running", self.code);
        self.spawn();
    }

    fn spawn(&mut self) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("node.log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_hukou"))
            .args(["node", "run", "--config", "node.toml"])
            .current_dir(&self.dir)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("the node starts");
        self.child = Some(child);
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("node.log")).unwrap_or_default()
    }

    /// `kill -9`, then reaps the process.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits for the node to exit (it flushes its store and stops cleanly).
    pub fn stop(&mut self) {
        let mut child = self.child.take().expect("the node is running");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -TERM {}", child.id());
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "node {} exited with {status}", self.code);
                return;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "node {} did not stop within {STOP_TIMEOUT:?} of SIGTERM:\n{}",
                    self.code,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `GET /healthz`, if the node answers with JSON.
    pub fn health(&self) -> Option<Value> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(5)))
            .build()
            .into();
        let mut response = agent.get(format!("{}/healthz", self.url)).call().ok()?;
        response.body_mut().read_json().ok()
    }

    /// Waits (at most [`READY_TIMEOUT`]) until this node holds the entry `reference`
    /// (`CODE:SEQ:HASH`), i.e. its copy of that log reaches past SEQ.
    pub fn wait_holds(&self, reference: &str) {
        let mut parts = reference.split(':');
        let (log, seq) = (parts.next().unwrap(), parts.next().unwrap());
        let seq: u64 = seq.parse().unwrap();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(5)))
            .build()
            .into();
        let started = Instant::now();
        loop {
            let logs: Option<Value> = agent
                .get(format!("{}/v1/logs", self.url))
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_json().ok());
            let held = logs.as_ref().is_some_and(|v| {
                v["logs"].as_array().is_some_and(|a| {
                    a.iter()
                        .any(|l| l["bureau"] == log && l["length"].as_u64().unwrap_or(0) > seq)
                })
            });
            if held {
                return;
            }
            assert!(
                started.elapsed() < READY_TIMEOUT,
                "{} does not hold {reference}: {logs:?}",
                self.code
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Healthy (`"status": "ok"`) and connected to `peer`.
    fn ready_with(&mut self, peer: &str) -> bool {
        if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
            panic!("node {} exited ({status}):\n{}", self.code, self.log());
        }
        self.health().is_some_and(|h| {
            h["status"] == "ok"
                && h["peers_connected"]
                    .as_array()
                    .is_some_and(|p| p.iter().any(|c| c == peer))
        })
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A signed two-member genesis (quorum 2) and both members running. Bureau [`HERE`]'s files
/// are at the top of [`TwoBureaus::dir`], as a clerk's working directory holds them:
/// `node.toml`, `bureau.key`, `api.token`, `genesis.toml`, `person.key`, `network.key`, `data/`.
/// Bureau [`OTHER`] has its own `other/node.toml`, `other/bureau.key`, `other/api.token` and
/// `other/data/`, and shares the genesis and the network's keys.
pub struct TwoBureaus {
    pub here: Member,
    pub other: Member,
    pub arbiters: Arbiters,
    // Last: dropped after the processes are killed.
    dir: tempfile::TempDir,
}

impl TwoBureaus {
    /// Creates the network named `network` with `token` as HERE's clerk token, starts both
    /// nodes and waits until each is healthy and connected to the other.
    pub fn start(network: &str, token: &str) -> TwoBureaus {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let other_dir = d.join("other");
        fs::create_dir_all(&other_dir).unwrap();
        hukou_ok(d, &["keys", "gen", "--out", "admin.key"]);
        hukou_ok(d, &["keys", "gen-person-key", "--out", "person.key"]);
        hukou_ok(d, &["keys", "gen-network-key", "--out", "network.key"]);
        hukou_ok(d, &["keys", "gen", "--out", "bureau.key"]);
        hukou_ok(d, &["keys", "gen", "--out", "other/bureau.key"]);
        hukou_ok(
            d,
            &[
                "genesis",
                "create",
                "--network",
                network,
                "--admin-key",
                "admin.key",
                "--out",
                "genesis.toml",
            ],
        );
        let ports: Vec<u16> = (0..4).map(|_| free_port()).collect();
        let p2p = |port: u16| format!("/ip4/127.0.0.1/tcp/{port}");
        for (code, name, key, port) in [
            (HERE, "上海市公安局徐汇分局", "bureau.key", ports[1]),
            (
                OTHER,
                "湖州市公安局吴兴区分局",
                "other/bureau.key",
                ports[3],
            ),
        ] {
            hukou_ok(
                d,
                &[
                    "genesis",
                    "add-member",
                    "--genesis",
                    "genesis.toml",
                    "--code",
                    code,
                    "--name",
                    name,
                    "--key",
                    key,
                    "--address",
                    &p2p(port),
                ],
            );
        }
        hukou_ok(
            d,
            &[
                "genesis",
                "sign",
                "--genesis",
                "genesis.toml",
                "--admin-key",
                "admin.key",
            ],
        );
        fs::write(
            d.join("node.toml"),
            format!(
                "bureau = \"{HERE}\"\nkey_file = \"bureau.key\"\n\
                 api_listen = \"127.0.0.1:{}\"\np2p_listen = \"{}\"\n",
                ports[0],
                p2p(ports[1])
            ),
        )
        .unwrap();
        fs::write(
            other_dir.join("node.toml"),
            format!(
                "bureau = \"{OTHER}\"\nkey_file = \"bureau.key\"\ngenesis = \"../genesis.toml\"\n\
                 person_key_file = \"../person.key\"\nnetwork_key_file = \"../network.key\"\n\
                 api_listen = \"127.0.0.1:{}\"\np2p_listen = \"{}\"\n",
                ports[2],
                p2p(ports[3])
            ),
        )
        .unwrap();
        for (path, text) in [
            (d.join("api.token"), token.to_string()),
            (other_dir.join("api.token"), format!("{token}-{OTHER}")),
        ] {
            fs::write(&path, format!("{text}\n")).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        }

        let member = |code, dir: &Path, port: u16| Member {
            code,
            dir: dir.to_path_buf(),
            url: format!("http://127.0.0.1:{port}"),
            child: None,
        };
        let mut net = TwoBureaus {
            here: member(HERE, d, ports[0]),
            other: member(OTHER, &other_dir, ports[2]),
            arbiters: Arbiters::load(&d.join("genesis.toml"), &d.join("person.key")),
            dir,
        };
        net.here.spawn();
        net.other.spawn();
        let started = Instant::now();
        while !(net.here.ready_with(OTHER) && net.other.ready_with(HERE)) {
            assert!(
                started.elapsed() < READY_TIMEOUT,
                "the nodes did not become healthy and connected:\n--- {HERE} {:?}\n{}\n--- \
                 {OTHER} {:?}\n{}",
                net.here.health(),
                net.here.log(),
                net.other.health(),
                net.other.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        net
    }

    /// The member of bureau `code`.
    pub fn member(&self, code: &str) -> &Member {
        [&self.here, &self.other]
            .into_iter()
            .find(|m| m.code == code)
            .unwrap_or_else(|| panic!("{code} is not a member"))
    }

    /// The network's directory, which is also HERE's.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}
