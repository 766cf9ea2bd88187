//! A harness for multi-node integration tests: real `hukou` processes on loopback.
//!
//! [`Testnet::new`] creates N bureaus in a temporary directory with the `hukou` CLI (fresh keys,
//! person key, network key, a signed genesis naming each member's libp2p address and
//! [`ADMINISTRATORS`] administrators with threshold 2, a config and a clerk token per bureau), starts every node as a child process and waits until each is healthy
//! and connected to all others. Every node is killed when the [`Testnet`] is dropped, so a failing
//! test never leaks a process; when a test fails the directory is kept and the tail of every
//! node's log is printed.
//!
//! The `hukou` binary is `<target>/debug/hukou` next to the test executable
//! (`<target>/debug/deps/...`); it is built once per test process if it is missing or older than
//! the sources.

use std::collections::hash_map::RandomState;
use std::fs::{File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::Write as _;
use std::net::TcpListener;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use hukou_protocol::Membership;
use hukou_protocol::id::{CitizenId, PersonKey};
use serde_json::Value;

pub mod liar;
pub mod links;

/// Division codes and bureau names of the bureaus a testnet is made of, in order.
/// The first four are the usual network; the last four (tests of witness committees) make four
/// provinces of two bureaus each.
pub const BUREAUS: [(&str, &str); 8] = [
    ("310104", "上海市公安局徐汇分局"),
    ("330502", "湖州市公安局吴兴分局"),
    ("340100", "合肥市公安局"),
    ("340104", "合肥市公安局蜀山分局"),
    ("320506", "苏州市公安局吴中分局"),
    ("310115", "上海市公安局浦东分局"),
    ("330106", "杭州市公安局西湖分局"),
    ("320102", "南京市公安局玄武分局"),
];

/// Most bureaus a testnet can have: [`BUREAUS`], then generated ones ([`bureau`]).
pub const BUREAUS_MAX: usize = 64;

/// The code and name of the `i`-th bureau of a testnet: [`BUREAUS`] first, then plausible codes
/// (a real province prefix, a city and a county number) for networks larger than those, e.g.
/// above the overlay's full mesh.
pub fn bureau(i: usize) -> (String, String) {
    if let Some((code, name)) = BUREAUS.get(i) {
        return (code.to_string(), name.to_string());
    }
    const PROVINCES: [u32; 8] = [11, 32, 44, 51, 37, 42, 61, 65];
    let k = i - BUREAUS.len();
    let code = format!("{}{:02}{:02}", PROVINCES[k % 8], 1 + k / 8, 2 + k % 5);
    (code.clone(), format!("测试公安局{code}"))
}

/// Name of the network every testnet creates.
pub const NETWORK: &str = "hukou-it";

/// How many administrators every testnet's genesis names; 2 of them sign a configuration update.
pub const ADMINISTRATORS: usize = 3;

/// How long [`Testnet::new`] waits for every node to be healthy and connected.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long [`Testnet::stop`] waits for a node to exit after SIGTERM before it kills it.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------
// The binary.

fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
}

/// The target directory the running test executable was built into.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    // <target>/debug/deps/<test>-<hash>
    exe.parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .unwrap_or_else(|| panic!("cannot derive the target dir from {}", exe.display()))
        .to_path_buf()
}

/// Newest modification time of the sources the `hukou` binary is built from.
fn newest_source() -> SystemTime {
    fn walk(path: &Path, newest: &mut SystemTime) {
        let Ok(meta) = std::fs::metadata(path) else {
            return;
        };
        if meta.is_dir() {
            if let Ok(dir) = std::fs::read_dir(path) {
                for entry in dir.flatten() {
                    walk(&entry.path(), newest);
                }
            }
        } else if let Ok(m) = meta.modified() {
            *newest = (*newest).max(m);
        }
    }
    let root = workspace_root();
    let mut newest = SystemTime::UNIX_EPOCH;
    for krate in ["protocol", "keys", "node"] {
        walk(&root.join(krate).join("src"), &mut newest);
        walk(&root.join(krate).join("Cargo.toml"), &mut newest);
        walk(&root.join(krate).join("data"), &mut newest);
    }
    walk(&root.join("Cargo.toml"), &mut newest);
    walk(&root.join("Cargo.lock"), &mut newest);
    newest
}

/// The `hukou` binary, built once per test process if missing or older than the sources.
pub fn hukou_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let target = target_dir();
        let bin = target.join("debug").join("hukou");
        let fresh = std::fs::metadata(&bin)
            .and_then(|m| m.modified())
            .is_ok_and(|built| built >= newest_source());
        if !fresh {
            eprintln!(
                "harness: building {} (missing or older than the sources)",
                bin.display()
            );
            let mut cargo = Command::new(env!("CARGO"));
            // Drop what `cargo test` set for this test process: some build scripts (ring's)
            // rerun when CARGO_PKG_* change, which would rebuild half the tree twice per run.
            for (k, _) in std::env::vars_os() {
                let k = k.to_string_lossy();
                if k.starts_with("CARGO_PKG_")
                    || k.starts_with("CARGO_MANIFEST_")
                    || matches!(
                        k.as_ref(),
                        "CARGO_CRATE_NAME"
                            | "CARGO_BIN_NAME"
                            | "CARGO_PRIMARY_PACKAGE"
                            | "CARGO_TARGET_TMPDIR"
                            | "OUT_DIR"
                            | "LD_LIBRARY_PATH"
                    )
                {
                    cargo.env_remove(k.as_ref());
                }
            }
            let status = cargo
                .current_dir(workspace_root())
                .env("CARGO_TARGET_DIR", &target)
                .args(["build", "-p", "hukou-node", "--bin", "hukou"])
                .status()
                .expect("cargo runs");
            assert!(
                status.success(),
                "cargo build -p hukou-node --bin hukou failed"
            );
        }
        assert!(
            bin.exists(),
            "{} does not exist after the build",
            bin.display()
        );
        bin
    })
}

/// Runs `hukou ARGS` to completion and returns its output, panicking if it fails.
pub fn hukou(args: &[&str]) -> String {
    let out = Command::new(hukou_bin())
        .args(args)
        .output()
        .expect("hukou runs");
    assert!(
        out.status.success(),
        "hukou {args:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

// ---------------------------------------------------------------------------------------------
// Small helpers.

/// Polls `condition` (every 100 ms) until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `count` free TCP ports on 127.0.0.1 (bound together, then released).
pub fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("local addr").port())
        .collect()
}

/// A random string of `n` hexadecimal digits (for tokens; not cryptographic).
pub fn random_hex(n: usize) -> String {
    let mut out = String::new();
    while out.len() < n {
        let mut h = RandomState::new().build_hasher();
        h.write_u128(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        h.write_u32(std::process::id());
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out.truncate(n);
    out
}

fn write_secret(path: &Path, text: &str) {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    f.write_all(text.as_bytes()).expect("write secret");
}

/// Days since 1970-01-01 to (year, month, day) (proleptic Gregorian).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A valid 18-character citizen ID of someone registered in Xuhui (310104), distinct for every
/// `n`: birth date 1990-03-07 plus `n / 1000` days, sequence `n % 1000`, and the right check
/// character.
pub fn citizen_id(n: u64) -> String {
    citizen_id_in("310104", n)
}

/// As [`citizen_id`], with the given 6-digit address code.
pub fn citizen_id_in(address: &str, n: u64) -> String {
    // 1990-03-07 is day 7370 after the epoch.
    let (y, m, d) = civil_from_days(7370 + (n / 1000) as i64);
    let first17 = format!("{address}{y:04}{m:02}{d:02}{:03}", n % 1000);
    let check = hukou_protocol::id::check_character_for(&first17).expect("17 digits make a check");
    format!("{first17}{check}")
}

/// A valid ID number of a child born `days_ago` days before today (UTC; at least 1, so that the
/// date is not in the future in China either), with the 6-digit address code `address` and
/// sequence `n % 1000`. A birth is registered only within
/// `hukou_protocol::limits::BIRTH_REGISTRATION_AGE_DAYS_MAX` days of the birth date, so a
/// birth's ID number is made from the date the test runs.
pub fn citizen_id_born(address: &str, days_ago: u64, n: u64) -> String {
    assert!(days_ago >= 1, "born yesterday at the latest");
    let today = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
        / 86_400;
    let (y, m, d) = civil_from_days(today as i64 - days_ago as i64);
    let first17 = format!("{address}{y:04}{m:02}{d:02}{:03}", n % 1000);
    let check = hukou_protocol::id::check_character_for(&first17).expect("17 digits make a check");
    format!("{first17}{check}")
}

/// The hash part of a reference `CODE:SEQ:HASH`.
pub fn ref_hash(reference: &str) -> &str {
    reference.rsplit(':').next().unwrap_or("")
}

// ---------------------------------------------------------------------------------------------
// HTTP.

fn agent() -> &'static ureq::Agent {
    static AGENT: OnceLock<ureq::Agent> = OnceLock::new();
    AGENT.get_or_init(|| {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(20)))
            .timeout_connect(Some(Duration::from_secs(2)))
            .build()
            .into()
    })
}

fn read_response(mut resp: ureq::http::Response<ureq::Body>) -> Result<(u16, Value), String> {
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .with_config()
        .limit(256 * 1024 * 1024)
        .read_to_string()
        .map_err(|e| format!("reading the response body: {e}"))?;
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok((status, value))
}

/// `GET url`: (status, JSON body, or the body as a JSON string if it is not JSON).
pub fn try_get(url: &str) -> Result<(u16, Value), String> {
    let resp = agent()
        .get(url)
        .call()
        .map_err(|e| format!("GET {url}: {e}"))?;
    read_response(resp)
}

/// `GET url` as text (for the web console's HTML pages): status and body.
pub fn get_text(url: &str) -> (u16, String) {
    let resp = agent()
        .get(url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .read_to_string()
        .unwrap_or_else(|e| panic!("GET {url}: body: {e}"));
    (status, body)
}

/// `POST url` with a raw body and an optional bearer token.
pub fn try_post_raw(url: &str, token: Option<&str>, body: &str) -> Result<(u16, Value), String> {
    // A fresh connection for every raw post: the bad-input cases make the node close
    // connections (oversized or refused bodies), and a pooled connection the node has just
    // closed would fail the next case with "peer disconnected" instead of its answer.
    static FRESH: OnceLock<ureq::Agent> = OnceLock::new();
    let fresh = FRESH.get_or_init(|| {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(20)))
            .timeout_connect(Some(Duration::from_secs(2)))
            .max_idle_connections(0)
            .build()
            .into()
    });
    let mut req = fresh.post(url).content_type("application/json");
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    let resp = req.send(body).map_err(|e| format!("POST {url}: {e}"))?;
    read_response(resp)
}

/// `GET url`, retrying transport errors for up to 5 s; panics if it never answers.
pub fn get(url: &str) -> (u16, Value) {
    let mut last = String::new();
    for _ in 0..25 {
        match try_get(url) {
            Ok(r) => return r,
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("{last}")
}

/// `POST url` with a JSON body and a bearer token (no retry: writes are not idempotent).
pub fn post(url: &str, token: &str, body: &Value) -> (u16, Value) {
    try_post_raw(url, Some(token), &body.to_string()).unwrap_or_else(|e| panic!("{e}"))
}

// ---------------------------------------------------------------------------------------------
// Nodes.

/// One bureau's node: its directory, config, addresses, token, and process if running.
pub struct NodeProc {
    pub code: String,
    pub name: String,
    /// The bureau's directory (config, keys, genesis, token, `data/`, `node.log`).
    pub dir: PathBuf,
    pub config: PathBuf,
    /// `http://127.0.0.1:PORT`
    pub api: String,
    pub p2p_port: u16,
    pub token: String,
    /// The bureau's public key (hex).
    pub public_key: String,
    pub log: PathBuf,
    child: Option<Child>,
}

impl NodeProc {
    /// Starts the node process (`hukou node run --config`), appending its output to `node.log`.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.code);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open node.log");
        let child = Command::new(hukou_bin())
            .args(["node", "run", "--config"])
            .arg(&self.config)
            .current_dir(&self.dir)
            .env("RUST_LOG", "info,libp2p=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .expect("spawn hukou node run");
        self.child = Some(child);
    }

    /// The process id, if running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process was started and has not exited.
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// SIGTERM, then waits for the exit (SIGKILL after a timeout, which fails the test).
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("node is running");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "node {} did not exit within {STOP_TIMEOUT:?} of SIGTERM; log:\n{}",
                    self.code,
                    self.log_tail(3000)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL (`kill -9`), then reaps the process.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The last `bytes` of the node's log.
    pub fn log_tail(&self, bytes: usize) -> String {
        let text = std::fs::read(&self.log).unwrap_or_default();
        let start = text.len().saturating_sub(bytes);
        String::from_utf8_lossy(&text[start..]).into_owned()
    }

    /// `GET /healthz`, or `None` if the node does not answer.
    pub fn health(&self) -> Option<Value> {
        match try_get(&format!("{}/healthz", self.api)) {
            Ok((200, v)) => Some(v),
            _ => None,
        }
    }

    /// Bureau codes in this node's `peers_connected`, or `None` if it does not answer.
    pub fn peers(&self) -> Option<Vec<String>> {
        let h = self.health()?;
        Some(
            h["peers_connected"]
                .as_array()?
                .iter()
                .filter_map(|p| p.as_str().map(str::to_string))
                .collect(),
        )
    }
}

/// A local network of bureaus in a temporary directory.
pub struct Testnet {
    dir: Option<tempfile::TempDir>,
    pub nodes: Vec<NodeProc>,
    /// The membership and person key, read once from the testnet's files (see
    /// [`Testnet::arbiter_of`]).
    arbiters: OnceLock<(Membership, PersonKey)>,
}

impl Testnet {
    /// Creates `n` bureaus, starts them, and waits until all are healthy and connected.
    pub fn new(n: usize) -> Testnet {
        let mut net = Testnet::create(n);
        for i in 0..n {
            net.start(i);
        }
        let all: Vec<usize> = (0..n).collect();
        net.wait_ready(&all, READY_TIMEOUT);
        net
    }

    /// Creates `n` bureaus (keys, genesis, configs, tokens) without starting them.
    pub fn create(n: usize) -> Testnet {
        assert!((1..=BUREAUS_MAX).contains(&n), "1..={BUREAUS_MAX} bureaus");
        let dir = tempfile::Builder::new()
            .prefix("hukou-it-")
            .tempdir()
            .expect("tempdir");
        let root = dir.path().to_path_buf();
        let s = |p: &Path| p.to_str().expect("utf-8 path").to_string();
        let admin = root.join("admin.key");
        let person = root.join("person.key");
        let network = root.join("network.key");
        let genesis = root.join("genesis.toml");
        hukou(&["keys", "gen", "--out", &s(&admin)]);
        hukou(&["keys", "gen-person-key", "--out", &s(&person)]);
        hukou(&["keys", "gen-network-key", "--out", &s(&network)]);
        // Three administrators, two of whom sign a configuration update, as testnet/up.sh makes.
        let admins = root.join("admins");
        std::fs::create_dir_all(&admins).expect("admins dir");
        let mut create = vec![
            "genesis".to_string(),
            "create".into(),
            "--network".into(),
            NETWORK.into(),
            "--admin-key".into(),
            s(&admin),
            "--out".into(),
            s(&genesis),
            "--admin-threshold".into(),
            "2".into(),
        ];
        for i in 1..=ADMINISTRATORS {
            let key = admins.join(format!("admin-{i}.key"));
            hukou(&["keys", "gen", "--out", &s(&key)]);
            create.extend(["--administrator-key".to_string(), s(&key)]);
        }
        hukou(&create.iter().map(String::as_str).collect::<Vec<_>>());
        let ports = free_ports(2 * n);
        let mut nodes = Vec::new();
        for (i, (code, name)) in (0..n).map(bureau).enumerate() {
            let (code, name) = (code.as_str(), name.as_str());
            let node_dir = root.join(code);
            std::fs::create_dir_all(&node_dir).expect("node dir");
            let key = node_dir.join("bureau.key");
            let public_key = hukou(&["keys", "gen", "--out", &s(&key)]);
            let (api_port, p2p_port) = (ports[2 * i], ports[2 * i + 1]);
            hukou(&[
                "genesis",
                "add-member",
                "--genesis",
                &s(&genesis),
                "--code",
                code,
                "--name",
                name,
                "--key",
                &s(&key),
                "--address",
                &format!("/ip4/127.0.0.1/tcp/{p2p_port}"),
            ]);
            nodes.push(NodeProc {
                code: code.to_string(),
                name: name.to_string(),
                config: node_dir.join("node.toml"),
                log: node_dir.join("node.log"),
                api: format!("http://127.0.0.1:{api_port}"),
                p2p_port,
                token: String::new(),
                public_key,
                dir: node_dir,
                child: None,
            });
        }
        hukou(&[
            "genesis",
            "sign",
            "--genesis",
            &s(&genesis),
            "--admin-key",
            &s(&admin),
        ]);
        for node in &mut nodes {
            std::fs::copy(&genesis, node.dir.join("genesis.toml")).expect("copy genesis");
            std::fs::copy(&person, node.dir.join("person.key")).expect("copy person key");
            std::fs::copy(&network, node.dir.join("network.key")).expect("copy network key");
            node.token = random_hex(48);
            write_secret(&node.dir.join("api.token"), &format!("{}\n", node.token));
            let api_port = node.api.rsplit(':').next().expect("port");
            write_config(&node.config, &node.code, api_port, node.p2p_port);
            std::fs::create_dir_all(node.dir.join("data")).expect("data dir");
        }
        Testnet {
            dir: Some(dir),
            nodes,
            arbiters: OnceLock::new(),
        }
    }

    /// The bureau code of the arbiter of the person with ID number `id`: the one member whose
    /// log may grant a claim on them (`Membership::arbiter` of the person's tag), computed from
    /// the testnet's genesis and person key exactly as the nodes compute it. An enrolment or
    /// birth of the person appends that claim to the arbiter's log.
    pub fn arbiter_of(&self, id: &str) -> String {
        let (membership, person_key) = self.arbiters.get_or_init(|| {
            let genesis = hukou_keys::Genesis::load(&self.dir().join("genesis.toml"))
                .and_then(|g| g.verify())
                .expect("the testnet's genesis verifies");
            let person_key = hukou_keys::load_person_key(&self.dir().join("person.key"))
                .expect("the testnet's person key");
            (genesis.membership().clone(), person_key)
        });
        let id = CitizenId::parse(id).unwrap_or_else(|e| panic!("{id:?}: {e}"));
        membership.arbiter(&person_key.tag(&id)).to_string()
    }

    /// The first ID number of `ids` whose arbiter is bureau `code` (see [`Testnet::arbiter_of`]),
    /// for tests that need a person's claim granted by a given bureau, or not by one that is
    /// stopped or cut off. Looks at no more than 10,000 (each member arbitrates about 1 in N).
    pub fn person_arbitrated_by(
        &self,
        code: &str,
        ids: impl IntoIterator<Item = String>,
    ) -> String {
        ids.into_iter()
            .take(10_000)
            .find(|id| self.arbiter_of(id) == code)
            .unwrap_or_else(|| panic!("no person arbitrated by {code} among 10000"))
    }

    /// The key files of the administrators the genesis names (`admins/admin-{1,2,3}.key`, mode
    /// 0600), 2 of whom sign a configuration update.
    pub fn administrator_keys(&self) -> Vec<PathBuf> {
        (1..=ADMINISTRATORS)
            .map(|i| self.dir().join("admins").join(format!("admin-{i}.key")))
            .collect()
    }

    /// The testnet's directory.
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().expect("dir").path()
    }

    /// Gives node `i` a fresh network key of its own (call before starting it): it stays a member
    /// in the genesis but cannot join the private network.
    pub fn replace_network_key(&mut self, i: usize) {
        let path = self.nodes[i].dir.join("network.key");
        hukou(&[
            "keys",
            "gen-network-key",
            "--force",
            "--out",
            path.to_str().expect("utf-8"),
        ]);
    }

    /// Adds (without starting) a bureau that is not a member: its own key, and a genesis signed by
    /// an administrator of its own that names the real members (with their keys and addresses)
    /// and itself as `code`. It has the network's real person and network keys, so only the
    /// membership keeps it out. Returns its index.
    pub fn add_outsider(&mut self, code: &str, name: &str) -> usize {
        let root = self.dir().to_path_buf();
        let s = |p: &Path| p.to_str().expect("utf-8 path").to_string();
        let node_dir = root.join(format!("outsider-{code}"));
        std::fs::create_dir_all(node_dir.join("data")).expect("outsider dir");
        let admin = node_dir.join("admin.key");
        let genesis = node_dir.join("genesis.toml");
        let key = node_dir.join("bureau.key");
        hukou(&["keys", "gen", "--out", &s(&admin)]);
        let public_key = hukou(&["keys", "gen", "--out", &s(&key)]);
        hukou(&[
            "genesis",
            "create",
            "--network",
            NETWORK,
            "--admin-key",
            &s(&admin),
            "--out",
            &s(&genesis),
        ]);
        for m in &self.nodes {
            // Real members only: their directories are named by their code.
            if !m.dir.ends_with(&m.code) {
                continue;
            }
            hukou(&[
                "genesis",
                "add-member",
                "--genesis",
                &s(&genesis),
                "--code",
                &m.code,
                "--name",
                &m.name,
                "--public-key",
                &m.public_key,
                "--address",
                &format!("/ip4/127.0.0.1/tcp/{}", m.p2p_port),
            ]);
        }
        let ports = free_ports(2);
        hukou(&[
            "genesis",
            "add-member",
            "--genesis",
            &s(&genesis),
            "--code",
            code,
            "--name",
            name,
            "--key",
            &s(&key),
            "--address",
            &format!("/ip4/127.0.0.1/tcp/{}", ports[1]),
        ]);
        hukou(&[
            "genesis",
            "sign",
            "--genesis",
            &s(&genesis),
            "--admin-key",
            &s(&admin),
        ]);
        std::fs::copy(root.join("person.key"), node_dir.join("person.key")).expect("person key");
        std::fs::copy(root.join("network.key"), node_dir.join("network.key")).expect("net key");
        let token = random_hex(48);
        write_secret(&node_dir.join("api.token"), &format!("{token}\n"));
        let config = node_dir.join("node.toml");
        write_config(&config, code, &ports[0].to_string(), ports[1]);
        self.nodes.push(NodeProc {
            code: code.to_string(),
            name: name.to_string(),
            config,
            log: node_dir.join("node.log"),
            api: format!("http://127.0.0.1:{}", ports[0]),
            p2p_port: ports[1],
            token,
            public_key,
            dir: node_dir,
            child: None,
        });
        self.nodes.len() - 1
    }

    /// Prepares (without starting) a bureau to be added by a configuration update: its own key,
    /// the network's genesis, person and network keys, a token, and a config whose
    /// `config_log = "config.log"` it will read at start (write it with `hukou config fetch`
    /// once the update adding it is in force). Returns its index; its public key is
    /// `nodes[i].public_key`, its address `/ip4/127.0.0.1/tcp/{nodes[i].p2p_port}`.
    pub fn prepare_new_member(&mut self, code: &str, name: &str) -> usize {
        let root = self.dir().to_path_buf();
        let s = |p: &Path| p.to_str().expect("utf-8 path").to_string();
        let node_dir = root.join(code);
        std::fs::create_dir_all(node_dir.join("data")).expect("new member dir");
        let key = node_dir.join("bureau.key");
        let public_key = hukou(&["keys", "gen", "--out", &s(&key)]);
        for file in ["genesis.toml", "person.key", "network.key"] {
            std::fs::copy(root.join(file), node_dir.join(file)).expect("copy network file");
        }
        let token = random_hex(48);
        write_secret(&node_dir.join("api.token"), &format!("{token}\n"));
        let ports = free_ports(2);
        let config = node_dir.join("node.toml");
        write_config(&config, code, &ports[0].to_string(), ports[1]);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&config)
            .expect("node.toml");
        f.write_all(b"config_log = \"config.log\"\n")
            .expect("write node.toml");
        self.nodes.push(NodeProc {
            code: code.to_string(),
            name: name.to_string(),
            config,
            log: node_dir.join("node.log"),
            api: format!("http://127.0.0.1:{}", ports[0]),
            p2p_port: ports[1],
            token,
            public_key,
            dir: node_dir,
            child: None,
        });
        self.nodes.len() - 1
    }

    /// Starts node `i` (again) on its own store and config. Does not wait.
    pub fn start(&mut self, i: usize) {
        self.nodes[i].start();
    }

    /// SIGTERM to node `i`, and waits for it to exit.
    pub fn stop(&mut self, i: usize) -> ExitStatus {
        self.nodes[i].stop()
    }

    /// `kill -9` node `i`.
    pub fn kill9(&mut self, i: usize) {
        self.nodes[i].kill9();
    }

    /// Waits until every node in `which` says `"status":"ok"` and lists in `peers_connected`
    /// every other node in `which` that is its overlay neighbour (`overlay_neighbors`: every
    /// member in a network of up to 12); panics with the nodes' logs after `timeout`.
    pub fn wait_ready(&mut self, which: &[usize], timeout: Duration) {
        let started = Instant::now();
        let ready = |net: &mut Testnet, i: usize| -> bool {
            let Some(h) = net.nodes[i].health() else {
                return false;
            };
            let peers: Vec<&str> = h["peers_connected"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let neighbours: Vec<&str> = h["overlay_neighbors"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            h["status"] == "ok"
                && which
                    .iter()
                    .filter(|j| **j != i)
                    .map(|j| net.nodes[*j].code.as_str())
                    .filter(|code| neighbours.contains(code))
                    .all(|code| peers.contains(&code))
        };
        let ok = wait_until(timeout, || {
            for &i in which {
                if !self.nodes[i].is_running() {
                    panic!(
                        "node {} is not running; log:\n{}",
                        self.nodes[i].code,
                        self.nodes[i].log_tail(3000)
                    );
                }
            }
            which.iter().all(|&i| ready(self, i))
        });
        if !ok {
            let mut report = String::new();
            for &i in which {
                report.push_str(&format!(
                    "--- {} healthz {:?}\n{}\n",
                    self.nodes[i].code,
                    self.nodes[i].health(),
                    self.nodes[i].log_tail(2000)
                ));
            }
            panic!("nodes {which:?} not healthy and connected within {timeout:?}:\n{report}");
        }
        eprintln!(
            "harness: nodes {which:?} ready in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }

    /// The API base URL of node `i` (`http://127.0.0.1:PORT`).
    pub fn api(&self, i: usize) -> &str {
        &self.nodes[i].api
    }

    /// The clerk token of node `i`.
    pub fn token(&self, i: usize) -> &str {
        &self.nodes[i].token
    }

    /// The bureau code of node `i`.
    pub fn code(&self, i: usize) -> &str {
        &self.nodes[i].code
    }

    /// `GET path` on node `i` (retrying transport errors briefly).
    pub fn get(&self, i: usize, path: &str) -> (u16, Value) {
        get(&format!("{}{path}", self.api(i)))
    }

    /// `POST path` with a JSON body and node `i`'s token.
    pub fn post(&self, i: usize, path: &str, body: &Value) -> (u16, Value) {
        post(&format!("{}{path}", self.api(i)), self.token(i), body)
    }

    /// `POST path` with a JSON body and node `i`'s token, expecting 200.
    pub fn post_ok(&self, i: usize, path: &str, body: &Value) -> Value {
        let (status, v) = self.post(i, path, body);
        assert_eq!(status, 200, "POST {path} {body} on {}: {v}", self.code(i));
        v
    }

    /// `POST path` on node `i` until it answers 200 (a step that needs an entry to have
    /// replicated, or become final, first is refused until then); panics with the last answer
    /// after `wait`.
    #[track_caller]
    pub fn post_until_ok(&self, i: usize, path: &str, body: &Value, wait: Duration) -> Value {
        let mut last = Value::Null;
        let ok = wait_until(wait, || {
            let (status, v) = self.post(i, path, body);
            last = v;
            status == 200
        });
        assert!(
            ok,
            "POST {path} {body} on {} never succeeded: {last}",
            self.code(i)
        );
        last
    }

    /// `POST /v1/enrol` of `id` at node `i`; returns the new entry's reference.
    pub fn enrol(&self, i: usize, id: &str) -> String {
        let v = self.post_ok(i, "/v1/enrol", &serde_json::json!({ "person": id }));
        v["ref"].as_str().expect("ref").to_string()
    }

    /// `GET /v1/logs` on node `i`: (bureau, length, root) of every log, sorted by bureau.
    pub fn logs(&self, i: usize) -> Vec<(String, u64, String)> {
        let (status, v) = self.get(i, "/v1/logs");
        assert_eq!(status, 200, "GET /v1/logs on {}: {v}", self.code(i));
        let mut out: Vec<_> = v["logs"]
            .as_array()
            .expect("logs")
            .iter()
            .map(|l| {
                (
                    l["bureau"].as_str().expect("bureau").to_string(),
                    l["length"].as_u64().expect("length"),
                    l["root"].as_str().expect("root").to_string(),
                )
            })
            .collect();
        out.sort();
        out
    }

    /// The (length, root) of `log` as node `i` holds it (or `None` if it is not listed or the
    /// node does not answer).
    pub fn log_of(&self, i: usize, log: &str) -> Option<(u64, String)> {
        let (status, v) = try_get(&format!("{}/v1/logs", self.api(i))).ok()?;
        if status != 200 {
            return None;
        }
        v["logs"]
            .as_array()?
            .iter()
            .find(|l| l["bureau"] == log)
            .map(|l| {
                (
                    l["length"].as_u64().unwrap_or(0),
                    l["root"].as_str().unwrap_or("").to_string(),
                )
            })
    }

    /// Every entry of `log` that node `i` stores, in order (via `/v1/logs/{log}/entries`).
    pub fn entries(&self, i: usize, log: &str) -> Vec<Value> {
        const PAGE: usize = 1000;
        let mut out: Vec<Value> = Vec::new();
        // Bounded: at most a million entries.
        for _ in 0..1000 {
            let path = format!("/v1/logs/{log}/entries?from={}&max={PAGE}", out.len());
            let (status, v) = self.get(i, &path);
            assert_eq!(status, 200, "GET {path} on {}: {v}", self.code(i));
            let page = v["entries"].as_array().expect("entries").clone();
            let n = page.len();
            out.extend(page);
            if n < PAGE {
                break;
            }
        }
        out
    }

    /// Runs `hukou node check --config` on node `i`'s config (the node should be stopped).
    pub fn check(&self, i: usize) -> Output {
        Command::new(hukou_bin())
            .args(["node", "check", "--config"])
            .arg(&self.nodes[i].config)
            .output()
            .expect("hukou node check runs")
    }
}

fn write_config(path: &Path, code: &str, api_port: &str, p2p_port: u16) {
    let text = format!(
        "bureau = \"{code}\"\n\
         data_dir = \"data\"\n\
         key_file = \"bureau.key\"\n\
         genesis = \"genesis.toml\"\n\
         person_key_file = \"person.key\"\n\
         network_key_file = \"network.key\"\n\
         api_token_file = \"api.token\"\n\
         api_listen = \"127.0.0.1:{api_port}\"\n\
         p2p_listen = \"/ip4/127.0.0.1/tcp/{p2p_port}\"\n\
         calendar = \"builtin\"\n"
    );
    let mut f = File::create(path).expect("create node.toml");
    f.write_all(text.as_bytes()).expect("write node.toml");
}

impl Drop for Testnet {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill9();
        }
        if std::thread::panicking() {
            for node in &self.nodes {
                eprintln!(
                    "--- node {} log tail ({}):\n{}",
                    node.code,
                    node.log.display(),
                    node.log_tail(2500)
                );
            }
            if let Some(dir) = self.dir.take() {
                let kept = dir.keep();
                eprintln!("harness: kept the testnet directory {}", kept.display());
            }
        }
    }
}
