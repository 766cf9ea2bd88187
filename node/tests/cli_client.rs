//! The clerk's client commands (`hukou enrol`, `permit`, `person show`, `inbox` ...) against a
//! real node: the built binary creates keys and a two-member genesis in a temporary directory
//! and runs both bureaus as child processes (`common::TwoBureaus`: an enrolment needs its claim
//! final, so a quorum of both); the commands go to bureau 310104 and are judged by exit code,
//! stdout and stderr, as scripts use them. The other member, 330502, is a permit's origin and
//! arbitrates some of the persons enrolled.

mod common;

use std::fs;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use common::{HERE, OTHER, TwoBureaus, free_port, hukou_in, valid_id};
use hukou_protocol::id::check_character_for;
use serde_json::{Value, json};

const TOKEN: &str = "test-token-0123456789abcdef";

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

/// The two-bureau network, driven through bureau 310104 as a clerk's scripts drive it.
struct Node {
    net: TwoBureaus,
    url: String,
}

impl Node {
    fn dir(&self) -> &Path {
        self.net.dir()
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

    /// Both members running (see `common`), until each is healthy and connected.
    fn start() -> Node {
        let net = TwoBureaus::start("cli-client-test", TOKEN);
        let url = net.here.url.clone();
        Node { net, url }
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

    // The same person again: the node's rule, as JSON or as one line. The person's arbiter
    // refuses a second claim on them first, naming the claim the enrolment consumed (the
    // rulebook judges the claim before admission's `person_already_registered`). Once the
    // arbiter holds the enrolment, that is: before, it would hand this bureau its claim again,
    // which the bureau's own rulebook then refuses as `claim_consumed`.
    let arbiter = node.net.arbiters.of(&person).to_string();
    node.net.member(&arbiter).wait_holds(&reference);
    let again = node.run(&["enrol", "--person", &person, "--json"]);
    let refusal = assert_refused_json(&again, "person_claimed");
    assert!(
        refusal["message"]
            .as_str()
            .unwrap()
            .contains(&format!("already claimed by {arbiter}:0:")),
        "{refusal}"
    );
    let again = node.run(&["enrol", "--person", &person]);
    assert_exit(&again, 1);
    assert!(
        stderr(&again).starts_with("error: person_claimed: "),
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
    // The arbiter's claim first, then the enrolment that consumed it.
    assert_eq!(v["history"][0]["kind"], "claim", "{v}");
    assert_eq!(v["history"][0]["bureau"], arbiter.as_str(), "{v}");
    assert_eq!(v["history"][1]["ref"], reference.as_str(), "{v}");
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
            // Registered earlier: its arbiter refuses a second claim (see above).
            (1500, "person_claimed".to_string()),
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
        // Beyond the end of 330502's log, which holds the claims it granted (about half of the
        // bulk import's).
        &node.run(&["transfer", "show", "330502:999999", "--json"]),
        "unknown_reference",
    );
}
