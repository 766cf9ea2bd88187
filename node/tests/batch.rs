//! `POST /v1/batch` against a real node: the built binary runs bureau 310104 of a two-member
//! genesis as a child process (the other member, 330502, never runs: it only gives permits a
//! valid origin). Checks per-line results in order, refusals named per line without stopping
//! the others, the final `done` line, and that the token is required.

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hukou_protocol::id::check_character_for;
use serde_json::Value;

const HERE: &str = "310104";
const OTHER: &str = "330502";
const TOKEN: &str = "batch-test-token-0123456789";

fn hukou(dir: &Path, args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_hukou"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("the hukou binary runs");
    assert!(
        out.status.success(),
        "hukou {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn valid_id(first17: &str) -> String {
    format!("{first17}{}", check_character_for(first17).unwrap())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running node of bureau 310104, killed when dropped.
struct Node {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Node {
    fn start() -> Node {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        hukou(d, &["keys", "gen", "--out", "admin.key"]);
        hukou(d, &["keys", "gen-person-key", "--out", "person.key"]);
        hukou(d, &["keys", "gen-network-key", "--out", "network.key"]);
        hukou(d, &["keys", "gen", "--out", "bureau.key"]);
        hukou(d, &["keys", "gen", "--out", "other.key"]);
        let (api_port, p2p_port, other_port) = (free_port(), free_port(), free_port());
        let p2p = format!("/ip4/127.0.0.1/tcp/{p2p_port}");
        let other_p2p = format!("/ip4/127.0.0.1/tcp/{other_port}");
        hukou(
            d,
            &[
                "genesis",
                "create",
                "--network",
                "batch-test",
                "--admin-key",
                "admin.key",
                "--out",
                "genesis.toml",
            ],
        );
        for (code, name, key, address) in [
            (HERE, "上海市公安局徐汇分局", "bureau.key", &p2p),
            (OTHER, "湖州市公安局吴兴区分局", "other.key", &other_p2p),
        ] {
            hukou(
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
                    address,
                ],
            );
        }
        hukou(
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
                 api_listen = \"127.0.0.1:{api_port}\"\np2p_listen = \"{p2p}\"\n"
            ),
        )
        .unwrap();
        let token_file = d.join("api.token");
        fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
        fs::set_permissions(&token_file, fs::Permissions::from_mode(0o600)).unwrap();
        let log = fs::File::create(d.join("node.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_hukou"))
            .args(["node", "run", "--config", "node.toml"])
            .current_dir(d)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("the node starts");
        let mut node = Node {
            child,
            url: format!("http://127.0.0.1:{api_port}"),
            dir,
        };
        // Ready once no peer answered for 5 s (the other member never runs).
        let started = Instant::now();
        loop {
            if let Some(status) = node.child.try_wait().unwrap() {
                panic!(
                    "the node exited ({status}):\n{}",
                    fs::read_to_string(node.dir.path().join("node.log")).unwrap_or_default()
                );
            }
            let (status, body) = node.call("GET", "/healthz", None, "");
            if status == 200 && serde_json::from_str::<Value>(&body).unwrap()["status"] == "ok" {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the node did not become ready"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        node
    }

    /// One HTTP call; returns the status and the body.
    fn call(&self, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, String) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        let url = format!("{}{path}", self.url);
        let result = if method == "GET" {
            agent.get(&url).call()
        } else {
            let mut request = agent.post(&url);
            if let Some(token) = token {
                request = request.header("Authorization", format!("Bearer {token}"));
            }
            request.send(body.as_bytes())
        };
        // Status 0: nothing answered (the node is not listening yet).
        let Ok(response) = result else {
            return (0, String::new());
        };
        let status = response.status().as_u16();
        (status, response.into_body().read_to_string().unwrap())
    }
}

fn ndjson(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

#[test]
fn batch_writes_mixed_lines_with_per_line_results() {
    let node = Node::start();
    let a = valid_id("31010419800101001");
    let b = valid_id("33050219900202002");
    let c = valid_id("31010419850303003");
    let wrong_check = {
        let first17 = "31010419800101004";
        let right = check_character_for(first17).unwrap();
        format!("{first17}{}", if right == '0' { '1' } else { '0' })
    };
    let body = [
        format!(r#"{{"op": "enrol", "person": "{a}"}}"#),
        format!(r#"{{"op": "enrol", "person": "{wrong_check}"}}"#),
        r#"{"op": "frobnicate", "person": "x"}"#.to_string(),
        String::new(),
        format!(
            r#"{{"op": "permit", "person": "{b}", "origin": "{OTHER}", "category": "spouse"}}"#
        ),
        // Judged after line 1 was applied: the same person cannot be enrolled twice.
        format!(r#"{{"op": "enrol", "person": "{a}"}}"#),
        format!(r#"{{"op": "register", "deregistration": "{OTHER}:0"}}"#),
        format!(r#"{{"op": "enrol", "person": "{c}", "hosuehold": 1}}"#),
        "this is not JSON".to_string(),
        format!(r#"{{"op": "enrol", "person": "{c}"}}"#),
    ]
    .join("\n");

    // The token is required, before any line is read.
    let (status, answer) = node.call("POST", "/v1/batch", None, &body);
    assert_eq!(status, 401, "{answer}");
    assert_eq!(ndjson(&answer)[0]["error"], "unauthorized", "{answer}");
    let (status, answer) = node.call("POST", "/v1/batch", Some("wrong"), &body);
    assert_eq!(status, 401, "{answer}");
    assert_eq!(ndjson(&answer)[0]["error"], "unauthorized", "{answer}");
    let (_, health) = node.call("GET", "/healthz", None, "");
    assert_eq!(
        serde_json::from_str::<Value>(&health).unwrap()["own_log_length"],
        0,
        "nothing was written without the token"
    );

    let (status, answer) = node.call("POST", "/v1/batch", Some(TOKEN), &body);
    assert_eq!(status, 200, "{answer}");
    let lines = ndjson(&answer);
    // One answer per non-blank line, in order, then `done`.
    let numbers: Vec<u64> = lines.iter().filter_map(|v| v["line"].as_u64()).collect();
    assert_eq!(numbers, vec![1, 2, 3, 5, 6, 7, 8, 9, 10], "{answer}");
    let by_line = |n: u64| {
        lines
            .iter()
            .find(|v| v["line"] == n)
            .unwrap_or_else(|| panic!("no answer for line {n}: {answer}"))
    };
    let written = |n: u64, kind: &str| {
        let v = by_line(n);
        assert!(v.get("error").is_none(), "line {n}: {v}");
        assert_eq!(v["kind"], kind, "line {n}: {v}");
        assert_eq!(v["bureau"], HERE, "line {n}: {v}");
        assert!(
            v["ref"].as_str().unwrap().starts_with(&format!("{HERE}:")),
            "{v}"
        );
        v.clone()
    };
    let refused = |n: u64, name: &str| {
        let v = by_line(n);
        assert_eq!(v["error"], name, "line {n}: {v}");
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    };
    let first = written(1, "enrol");
    assert_eq!(first["seq"], 0, "{first}");
    assert!(first["household"].as_u64().is_some(), "{first}");
    refused(2, "id_wrong_check_character");
    refused(3, "bad_op");
    let permit = written(5, "permit");
    assert_eq!(permit["valid_days"], 40, "{permit}");
    assert_eq!(permit["seq"], 1, "{permit}");
    refused(6, "person_already_registered");
    refused(7, "unknown_reference");
    refused(8, "bad_json");
    refused(9, "bad_json");
    let last = written(10, "enrol");
    assert_eq!(last["seq"], 2, "{last}");

    let done = lines.last().unwrap();
    assert_eq!(done["done"], true, "{answer}");
    assert_eq!(done["lines"], 10, "{done}");
    assert_eq!(done["written"], 3, "{done}");
    assert_eq!(done["refused"], 6, "{done}");

    // What the batch wrote is on the ledger: the permit's transfer can be shown.
    let (status, transfer) = node.call(
        "GET",
        &format!("/v1/transfers/{}", permit["ref"].as_str().unwrap()),
        None,
        "",
    );
    assert_eq!(status, 200, "{transfer}");
    let transfer: Value = serde_json::from_str(&transfer).unwrap();
    assert_eq!(transfer["status"], "awaiting-origin", "{transfer}");
    assert_eq!(transfer["origin"], OTHER, "{transfer}");

    // A line acting on an entry of an earlier request: a revocation of the permit.
    let revoke = format!(
        "{{\"op\": \"revoke\", \"permit\": \"{}\"}}\n",
        permit["ref"].as_str().unwrap()
    );
    let (status, answer) = node.call("POST", "/v1/batch", Some(TOKEN), &revoke);
    assert_eq!(status, 200, "{answer}");
    let lines = ndjson(&answer);
    assert_eq!(lines[0]["line"], 1, "{answer}");
    assert_eq!(lines[0]["kind"], "revocation", "{answer}");
    assert_eq!(lines[1]["done"], true, "{answer}");
}
