//! The clerk's client commands (`hukou enrol`, `permit`, `person show`, `inbox` ...) against a
//! real node: the built binary creates keys and a two-member genesis in a temporary directory,
//! runs bureau 310104 as a child process (the other member, 330502, never runs: it only gives
//! permits a valid origin), and the commands are judged by exit code, stdout and stderr, as
//! scripts use them.

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use hukou_protocol::id::check_character_for;
use serde_json::{Value, json};

const HERE: &str = "310104";
const OTHER: &str = "330502";
const TOKEN: &str = "test-token-0123456789abcdef";

/// Runs `hukou ARGS` in `dir`, with none of the client's environment variables set.
fn hukou_in(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
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

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// Asserts the exit code, showing the output when it is wrong.
#[track_caller]
fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        stdout(output),
        stderr(output)
    );
}

/// Stdout as JSON, showing the output when it is not.
#[track_caller]
fn json_out(output: &Output) -> Value {
    serde_json::from_str(&stdout(output)).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            stdout(output),
            stderr(output)
        )
    })
}

/// A refusal: exit 1 and `{"error": name, ...}` on stdout, nothing on stderr.
#[track_caller]
fn assert_refused_json(output: &Output, name: &str) -> Value {
    assert_exit(output, 1);
    let v = json_out(output);
    assert_eq!(v["error"], name, "{v}");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    assert_eq!(
        stderr(output),
        "",
        "a --json refusal prints nothing on stderr"
    );
    v
}

/// A full ID number from its first 17 digits.
fn valid_id(first17: &str) -> String {
    format!("{first17}{}", check_character_for(first17).unwrap())
}

/// The same 17 digits with a check character that is wrong.
fn wrong_check_id(first17: &str) -> String {
    let right = check_character_for(first17).unwrap();
    format!("{first17}{}", if right == '0' { '1' } else { '0' })
}

/// Asserts `text` is a full entry reference of bureau `code`: `CODE:SEQ:HASH`.
#[track_caller]
fn assert_full_ref(text: &str, code: &str) {
    let parts: Vec<&str> = text.split(':').collect();
    assert_eq!(parts.len(), 3, "{text:?} is not CODE:SEQ:HASH");
    assert_eq!(parts[0], code, "{text}");
    assert!(parts[1].parse::<u64>().is_ok(), "{text}");
    assert_eq!(parts[2].len(), 64, "{text}");
    assert!(parts[2].bytes().all(|b| b.is_ascii_hexdigit()), "{text}");
}

/// A port nothing listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running node of bureau 310104, killed when dropped (also when a test fails).
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
    fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs a client command with `HUKOU_NODE` and `HUKOU_TOKEN` set.
    fn run(&self, args: &[&str]) -> Output {
        hukou_in(
            self.dir(),
            args,
            &[("HUKOU_NODE", &self.url), ("HUKOU_TOKEN", TOKEN)],
        )
    }

    /// Runs a client command with `HUKOU_NODE` set and no token.
    fn run_without_token(&self, args: &[&str]) -> Output {
        hukou_in(self.dir(), args, &[("HUKOU_NODE", &self.url)])
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir().join("node.log")).unwrap_or_default()
    }

    /// Keys, a signed two-member genesis, a config and a token; then `hukou node run`, until
    /// `/healthz` says `ok` (the node accepts writes once no peer answered for 5 s).
    fn start() -> Node {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let setup = |args: &[&str]| {
            let out = hukou_in(d, args, &[]);
            assert_exit(&out, 0);
        };
        setup(&["keys", "gen", "--out", "admin.key"]);
        setup(&["keys", "gen-person-key", "--out", "person.key"]);
        setup(&["keys", "gen-network-key", "--out", "network.key"]);
        setup(&["keys", "gen", "--out", "bureau.key"]);
        setup(&["keys", "gen", "--out", "other.key"]);
        let (api_port, p2p_port, other_port) = (free_port(), free_port(), free_port());
        let p2p = format!("/ip4/127.0.0.1/tcp/{p2p_port}");
        let other_p2p = format!("/ip4/127.0.0.1/tcp/{other_port}");
        setup(&[
            "genesis",
            "create",
            "--network",
            "cli-client-test",
            "--admin-key",
            "admin.key",
            "--out",
            "genesis.toml",
        ]);
        for (code, name, key, address) in [
            (HERE, "上海市公安局徐汇分局", "bureau.key", &p2p),
            (OTHER, "湖州市公安局吴兴区分局", "other.key", &other_p2p),
        ] {
            setup(&[
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
            ]);
        }
        setup(&[
            "genesis",
            "sign",
            "--genesis",
            "genesis.toml",
            "--admin-key",
            "admin.key",
        ]);
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
        let started = Instant::now();
        loop {
            if let Some(status) = node.child.try_wait().unwrap() {
                panic!("the node exited ({status}):\n{}", node.log());
            }
            let out = node.run(&["status", "--json"]);
            if out.status.success() && json_out(&out)["status"] == "ok" {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the node did not become ready: {}{}\n{}",
                stdout(&out),
                stderr(&out),
                node.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        node
    }
}

#[test]
fn an_unreachable_node_is_named_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}", free_port());
    let id = valid_id("11010519491231002");
    let out = hukou_in(dir.path(), &["enrol", "--person", &id, "--node", &url], &[]);
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(
        err.starts_with(&format!("error: cannot reach node at {url}: ")),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    let out = hukou_in(dir.path(), &["inbox", "--json"], &[("HUKOU_NODE", &url)]);
    let v = assert_refused_json(&out, "node_unreachable");
    assert!(v["message"].as_str().unwrap().contains(&url), "{v}");

    // The bulk import has its own HTTP client: same report.
    fs::write(dir.path().join("in.ndjson"), "{}\n").unwrap();
    let out = hukou_in(
        dir.path(),
        &["enrol", "--bulk", "in.ndjson", "--node", &url],
        &[],
    );
    assert_exit(&out, 1);
    assert!(
        stderr(&out).starts_with(&format!("error: cannot reach node at {url}: ")),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_malformed_id_is_named_before_any_call() {
    // No node listens here: the fault is found locally, so it is the ID that is reported.
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}", free_port());
    let bad = wrong_check_id("11010519491231002");
    let out = hukou_in(
        dir.path(),
        &["enrol", "--person", &bad, "--node", &url, "--token", TOKEN],
        &[],
    );
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(
        err.starts_with("error: id_wrong_check_character: ") && err.contains("expected 'X'"),
        "{err}"
    );
    for args in [
        &["person", "show", "1101051949"][..],
        &[
            "permit",
            "issue",
            "--person",
            "1101051949",
            "--origin",
            OTHER,
            "--category",
            "spouse",
        ],
        &["cancel", "--person", "1101051949", "--reason", "death"],
    ] {
        let mut args = args.to_vec();
        args.extend(["--node", &url, "--json"]);
        let v = assert_refused_json(&hukou_in(dir.path(), &args, &[]), "id_wrong_length");
        assert!(
            v["message"].as_str().unwrap().contains("10 characters"),
            "{v}"
        );
    }
}

#[test]
fn clerk_commands_against_a_running_node() {
    let node = Node::start();
    let started = Instant::now();

    // Status.
    let out = node.run(&["status", "--json"]);
    assert_exit(&out, 0);
    let v = json_out(&out);
    assert_eq!(v["bureau"], HERE);
    assert_eq!(v["members"], 2);
    let out = node.run(&["status"]);
    assert_exit(&out, 0);
    assert!(stdout(&out).contains(HERE), "{}", stdout(&out));

    // Enrol: the reference alone on stdout, "recorded ..." on stderr.
    let person = valid_id("31010419800101001");
    let out = node.run(&["enrol", "--person", &person]);
    assert_exit(&out, 0);
    let reference = stdout(&out).trim().to_string();
    assert_full_ref(&reference, HERE);
    let err = stderr(&out);
    assert!(
        err.starts_with("recorded enrol 310104:") && err.contains("(China time)"),
        "{err}"
    );

    // The same person again: the node's rule, as JSON or as one line.
    let again = node.run(&["enrol", "--person", &person, "--json"]);
    assert_refused_json(&again, "person_already_registered");
    let again = node.run(&["enrol", "--person", &person]);
    assert_exit(&again, 1);
    assert!(
        stderr(&again).starts_with("error: person_already_registered: "),
        "{}",
        stderr(&again)
    );
    assert_eq!(stdout(&again), "");

    // A malformed ID: refused locally with exactly the node's own name and message.
    let bad = wrong_check_id("31010419800101002");
    let local = assert_refused_json(
        &node.run(&["enrol", "--person", &bad, "--json"]),
        "id_wrong_check_character",
    );
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let remote: Value = agent
        .post(format!("{}/v1/enrol", node.url))
        .header("Authorization", format!("Bearer {TOKEN}"))
        .send_json(json!({ "person": bad }))
        .unwrap()
        .body_mut()
        .read_json()
        .unwrap();
    assert_eq!(local, remote);

    // No token, and a wrong one: the node's 401.
    let second = valid_id("31010419800101002");
    let out = node.run_without_token(&["enrol", "--person", &second]);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).starts_with("error: unauthorized: "),
        "{}",
        stderr(&out)
    );
    assert_refused_json(
        &node.run_without_token(&["enrol", "--person", &second, "--json"]),
        "unauthorized",
    );
    let out = node.run(&[
        "enrol",
        "--person",
        &second,
        "--token",
        "not-the-token-at-all",
    ]);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("unauthorized: wrong bearer token"),
        "{}",
        stderr(&out)
    );
    // --token-file works, and nothing was recorded for the refused calls.
    let out = node.run_without_token(&[
        "person",
        "show",
        &second,
        "--json",
        "--token-file",
        "api.token",
    ]);
    assert_exit(&out, 0);
    assert_eq!(json_out(&out)["registered_at"], Value::Null);

    // Person show: registered here, with the enrolment in its history.
    let out = node.run(&["person", "show", &person, "--json"]);
    assert_exit(&out, 0);
    let v = json_out(&out);
    assert_eq!(v["registered_at"], HERE);
    assert_eq!(v["history"][0]["ref"], reference.as_str());
    let out = node.run(&["person", "show", &person]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("registered at  310104"), "{text}");
    assert!(text.contains("enrol"), "{text}");

    bulk(&node, &person);
    transfers(&node);

    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the client commands took {:?}",
        started.elapsed()
    );
}

/// `enrol --bulk`: line numbers of refused lines, totals, exit codes, `--json` NDJSON.
fn bulk(node: &Node, already_registered: &str) {
    let path = node.dir().join("people.ndjson");
    let mut lines = String::new();
    let mut ids = Vec::new();
    for i in 1..=2000u32 {
        // 1990-01-01 .. 1990-01-02, sequence 000..999: 2000 distinct valid IDs.
        let first17 = format!("1101051990010{}{:03}", 1 + i / 1000, i % 1000);
        let line = match i {
            5 => json!({ "person": wrong_check_id(&first17) }),
            700 => json!({ "persno": valid_id(&first17) }),
            1500 => json!({ "person": already_registered }),
            _ => {
                ids.push(valid_id(&first17));
                json!({ "person": valid_id(&first17) })
            }
        };
        lines.push_str(&format!("{line}\n"));
    }
    fs::write(&path, lines).unwrap();
    let out = node.run(&["enrol", "--bulk", path.to_str().unwrap()]);
    assert_exit(&out, 1);
    assert_eq!(
        stdout(&out).trim().split(", in ").next(),
        Some("enrolled 1997 of 2000 lines, refused 3"),
        "{}",
        stdout(&out)
    );
    let err = stderr(&out);
    let refused: Vec<(u64, String)> = err
        .lines()
        .filter_map(|l| l.strip_prefix("line "))
        .map(|l| {
            let (n, rest) = l.split_once(": ").unwrap();
            let name = rest.split(':').next().unwrap();
            (n.parse().unwrap(), name.to_string())
        })
        .collect();
    assert_eq!(
        refused,
        [
            (5, "id_wrong_check_character".to_string()),
            (700, "bad_json".to_string()),
            (1500, "person_already_registered".to_string()),
        ],
        "{err}"
    );
    assert!(
        err.contains("enrolled 1997 / lines 2000 (refused 3)"),
        "{err}"
    );
    let out = node.run(&["person", "show", &ids[1996], "--json"]);
    assert_exit(&out, 0);
    assert_eq!(json_out(&out)["registered_at"], HERE);

    // --json: the node's NDJSON lines as they come; exit 0 when nothing is refused.
    let fresh: String = (0..50)
        .map(|i| {
            format!(
                "{}\n",
                json!({ "person": valid_id(&format!("11010519910101{i:03}")) })
            )
        })
        .collect();
    fs::write(node.dir().join("fresh.ndjson"), fresh).unwrap();
    let out = node.run(&["enrol", "--bulk", "fresh.ndjson", "--json"]);
    assert_exit(&out, 0);
    let answer: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let done = answer.last().unwrap();
    assert_eq!(done["done"], true, "{answer:?}");
    assert_eq!(done["enrolled"], 50);
    assert_eq!(done["refused"], 0);
    assert!(
        answer.iter().any(|v| v["progress"].is_object()),
        "{answer:?}"
    );

    // Without the token, the node refuses before the file is sent.
    let out = node.run_without_token(&["enrol", "--bulk", "fresh.ndjson"]);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).starts_with("error: unauthorized: "),
        "{}",
        stderr(&out)
    );
    assert_refused_json(
        &node.run(&[
            "enrol",
            "--bulk",
            "fresh.ndjson",
            "--json",
            "--token",
            "wrong-token-xyz",
        ]),
        "unauthorized",
    );
}

/// A permit naming the other member as origin: transfer show, inbox, refusal by the wrong
/// bureau, revocation.
fn transfers(node: &Node) {
    let person = valid_id("33050219900101001");
    let out = node.run(&[
        "permit",
        "issue",
        "--person",
        &person,
        "--origin",
        OTHER,
        "--category",
        "spouse",
        "--valid-days",
        "30",
    ]);
    assert_exit(&out, 0);
    let permit = stdout(&out).trim().to_string();
    assert_full_ref(&permit, HERE);
    assert!(
        stderr(&out).starts_with("recorded permit "),
        "{}",
        stderr(&out)
    );

    let out = node.run(&["transfer", "show", &permit, "--json"]);
    assert_exit(&out, 0);
    let v = json_out(&out);
    assert_eq!(v["permit"], permit.as_str());
    assert_eq!(v["status"], "awaiting-origin");
    assert_eq!(v["origin"], OTHER);
    assert_eq!(v["destination"], HERE);
    assert_eq!(v["steps"][1]["step"], "deregistration");
    assert_eq!(v["steps"][1]["pending"], true);
    // The short CODE:SEQ form names the same entry; the human form is a table.
    let short = permit.rsplit_once(':').unwrap().0;
    let out = node.run(&["transfer", "show", short]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("awaiting-origin"), "{text}");
    assert!(text.contains("deregistration  330502  pending"), "{text}");

    let out = node.run(&["inbox", "--json"]);
    assert_exit(&out, 0);
    let v = json_out(&out);
    assert_eq!(v["bureau"], HERE);
    assert_eq!(v["permits_awaiting_removal"], json!([]));
    assert!(v["removals_awaiting_registration"].is_array(), "{v}");
    let out = node.run(&["inbox"]);
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains("permits awaiting removal here: 0"),
        "{}",
        stdout(&out)
    );

    // This bureau is the permit's destination, not its origin.
    assert_refused_json(
        &node.run(&[
            "refuse",
            "--permit",
            &permit,
            "--reason",
            "not-registered-here",
            "--json",
        ]),
        "not_permit_origin",
    );
    // Bad vocabulary and an unknown origin are named.
    let base = ["permit", "issue", "--person", &person, "--json"];
    let mut args = base.to_vec();
    args.extend(["--origin", OTHER, "--category", "cousin"]);
    assert_refused_json(&node.run(&args), "bad_vocabulary");
    let mut args = base.to_vec();
    args.extend(["--origin", "440305", "--category", "spouse"]);
    assert_refused_json(&node.run(&args), "unknown_origin");

    let out = node.run(&["permit", "revoke", &permit]);
    assert_exit(&out, 0);
    assert_full_ref(stdout(&out).trim(), HERE);
    assert!(
        stderr(&out).starts_with("recorded revocation "),
        "{}",
        stderr(&out)
    );
    let out = node.run(&["transfer", "show", &permit, "--json"]);
    assert_exit(&out, 0);
    assert_eq!(json_out(&out)["status"], "revoked");
    assert_refused_json(
        &node.run(&["permit", "revoke", &permit, "--json"]),
        "permit_not_open",
    );
    assert_refused_json(
        &node.run(&["transfer", "show", "330502:999", "--json"]),
        "unknown_reference",
    );
}
