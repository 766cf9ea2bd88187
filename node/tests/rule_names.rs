//! The API names a refused write by the rulebook's rule, never by a check of its own that
//! pre-empts it: an unknown origin, a reference of the wrong kind, a permit valid for a century,
//! a household number out of range. And a refused write takes no household number, before and
//! after a restart.
//!
//! The built binary runs both bureaus of a two-member genesis as child processes
//! (`common::TwoBureaus`), as `tests/batch.rs` does.

use std::time::{Duration, Instant};

mod common;

use hukou_protocol::id::check_character_for;
use hukou_protocol::limits::{DAY_MS, HOUSEHOLD_ID_MAX, PERMIT_VALIDITY_MS_MAX};
use serde_json::{Value, json};

const HERE: &str = "310104";
const OTHER: &str = "330502";
const TOKEN: &str = "rule-names-test-token-0123456789";

fn id(n: u32) -> String {
    let first17 = format!("31010419800101{n:03}");
    format!("{first17}{}", check_character_for(&first17).unwrap())
}

/// A node of bureau 310104 over a directory that outlives it (for restarts).
/// Bureau 310104 of a two-member genesis, with the other member running too (an enrolment
/// needs its claim final: both members of two are the quorum).
struct Node {
    net: common::TwoBureaus,
    url: String,
}

impl Node {
    fn start() -> Node {
        let net = common::TwoBureaus::start("rule-names-test", TOKEN);
        let url = net.here.url.clone();
        Node { net, url }
    }

    /// Kills the node (every answered write is durable) and starts it again over its store.
    fn restart(mut self) -> Node {
        self.net.here.kill();
        self.net.here.start();
        let started = Instant::now();
        while !self.net.here.health().is_some_and(|h| h["status"] == "ok") {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the node did not become ready:\n{}",
                self.net.here.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        self
    }

    /// One HTTP call with the token; returns the status and the body.
    fn call(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        let url = format!("{}{path}", self.url);
        let result = if method == "GET" {
            agent.get(&url).call()
        } else {
            agent
                .post(&url)
                .header("Authorization", format!("Bearer {TOKEN}"))
                .send(body.as_bytes())
        };
        let Ok(response) = result else {
            return (0, String::new());
        };
        let status = response.status().as_u16();
        (status, response.into_body().read_to_string().unwrap())
    }

    /// A write that must succeed; its answer.
    fn ok(&self, path: &str, body: Value) -> Value {
        let (status, answer) = self.call("POST", path, &body.to_string());
        assert_eq!(status, 200, "{path} {body}: {answer}");
        serde_json::from_str(&answer).unwrap()
    }

    /// A write that must be refused with `409 error`; returns the message. Checks that the
    /// node's own log did not grow.
    ///
    /// Enrolling a person already enrolled is refused by whichever check sees it first: this
    /// node's own view (`person_already_registered`), the arbiter's log (`person_claimed`: the
    /// claim is taken), or this node's rulebook when the arbiter handed back the claim this
    /// bureau already used (`claim_consumed`). Only claims the arbiter (possibly this bureau)
    /// granted may have been written, never the refused act.
    fn refused(&self, path: &str, body: Value, error: &str) -> String {
        let before = self.own_log_length();
        let (status, answer) = self.call("POST", path, &body.to_string());
        let v: Value = serde_json::from_str(&answer).unwrap_or(Value::Null);
        let accepted: &[&str] = if error == "person_already_registered" && path == "/v1/enrol" {
            &[
                "person_already_registered",
                "person_claimed",
                "claim_consumed",
            ]
        } else {
            &[error]
        };
        assert!(
            status == 409 && v["error"].as_str().is_some_and(|e| accepted.contains(&e)),
            "{path} {body}: expected 409 {accepted:?}: {answer}"
        );
        let after = self.own_log_length();
        if after > before {
            let (_, log) = self.call(
                "GET",
                &format!(
                    "/v1/logs/{HERE}/entries?from={before}&max={}",
                    after - before
                ),
                "",
            );
            let log: Value = serde_json::from_str(&log).unwrap();
            for e in log["entries"].as_array().unwrap() {
                assert_eq!(
                    e["kind"], "claim",
                    "a refused write writes nothing but claims: {e}"
                );
            }
        }
        v["message"].as_str().unwrap().to_string()
    }

    fn own_log_length(&self) -> u64 {
        let (_, health) = self.call("GET", "/healthz", "");
        serde_json::from_str::<Value>(&health).unwrap()["own_log_length"]
            .as_u64()
            .unwrap()
    }

    /// The body and time of an entry of this node's log, by its full reference.
    fn entry(&self, reference: &str) -> Value {
        let seq: u64 = reference.split(':').nth(1).unwrap().parse().unwrap();
        let (status, answer) = self.call(
            "GET",
            &format!("/v1/logs/{HERE}/entries?from={seq}&max=1"),
            "",
        );
        assert_eq!(status, 200, "{answer}");
        let v: Value = serde_json::from_str(&answer).unwrap();
        let e = v["entries"][0].clone();
        assert_eq!(e["ref"], reference, "{v}");
        e
    }

    /// Each line of a `/v1/batch` request's answer, by line number.
    fn batch(&self, lines: &[Value]) -> Vec<Value> {
        let body: Vec<String> = lines.iter().map(Value::to_string).collect();
        let (status, answer) = self.call("POST", "/v1/batch", &body.join("\n"));
        assert_eq!(status, 200, "{answer}");
        answer
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .filter(|v: &Value| v["line"].is_u64())
            .collect()
    }
}

fn s(v: &Value, field: &str) -> String {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field}: {v}"))
        .to_string()
}

#[test]
fn api_errors_are_the_rulebook_names() {
    let node = Node::start();
    let enrolment = s(&node.ok("/v1/enrol", json!({"person": id(1)})), "ref");
    let permit = s(
        &node.ok(
            "/v1/permits",
            json!({"person": id(2), "origin": OTHER, "category": "spouse"}),
        ),
        "ref",
    );

    // An origin that is a well-formed code but no member: the rulebook's `unknown_origin`, not
    // an API check of its own.
    let message = node.refused(
        "/v1/permits",
        json!({"person": id(3), "origin": "440305", "category": "spouse"}),
        "unknown_origin",
    );
    assert!(message.contains("440305"), "{message}");

    // Validity: the rulebook's bounds, counted from the entry's own time.
    for days in [0, 367, 36_500, u64::MAX] {
        node.refused(
            "/v1/permits",
            json!({"person": id(3), "origin": OTHER, "category": "spouse", "valid_days": days}),
            "permit_validity_invalid",
        );
    }
    for days in [1, 366] {
        let w = node.ok(
            "/v1/permits",
            json!({"person": id(4 + days as u32 % 2), "origin": OTHER, "category": "talent", "valid_days": days}),
        );
        assert_eq!(w["valid_days"], days, "{w}");
        let e = node.entry(&s(&w, "ref"));
        let validity_ms =
            e["body"]["valid_until_ms"].as_u64().unwrap() - e["time_ms"].as_u64().unwrap();
        assert_eq!(validity_ms, days * DAY_MS, "{e}");
        assert!(validity_ms <= PERMIT_VALIDITY_MS_MAX);
    }

    // References of the wrong kind: the rulebook's `reference_wrong_kind`.
    let message = node.refused(
        "/v1/register",
        json!({"deregistration": permit}),
        "reference_wrong_kind",
    );
    assert!(message.contains(&permit), "{message}");
    let message = node.refused(
        "/v1/deregister",
        json!({"permit": enrolment}),
        "reference_wrong_kind",
    );
    assert!(message.contains(&enrolment), "{message}");
    node.refused(
        "/v1/refuse",
        json!({"permit": enrolment, "reason": "record-mismatch"}),
        "reference_wrong_kind",
    );
    node.refused(
        "/v1/permits/revoke",
        json!({"permit": enrolment}),
        "reference_wrong_kind",
    );
    // Malformed or unknown reference text stays a request error.
    let (status, answer) = node.call(
        "POST",
        "/v1/deregister",
        &json!({"permit": "not-a-reference"}).to_string(),
    );
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("\"bad_reference\""), "{answer}");
    let (status, answer) = node.call(
        "POST",
        "/v1/register",
        &json!({"deregistration": format!("{OTHER}:5")}).to_string(),
    );
    assert_eq!(status, 404, "{answer}");
    assert!(answer.contains("\"unknown_reference\""), "{answer}");

    // Corrections, one name per rule.
    node.refused(
        "/v1/permits",
        json!({"person": id(3), "origin": OTHER, "category": "return-after-error"}),
        "correction_missing",
    );
    node.refused(
        "/v1/permits",
        json!({"person": id(3), "origin": OTHER, "category": "spouse", "corrects": enrolment}),
        "correction_unexpected",
    );
    node.refused(
        "/v1/permits",
        json!({"person": id(3), "origin": OTHER, "category": "return-after-error", "corrects": enrolment}),
        "reference_wrong_kind",
    );

    // A household number beyond the bound, and the largest one allowed.
    let message = node.refused(
        "/v1/enrol",
        json!({"person": id(6), "household": 18_446_744_073_709_551_614u64, "relation": "head"}),
        "household_out_of_range",
    );
    assert!(message.contains("18446744073709551614"), "{message}");
    node.refused(
        "/v1/enrol",
        json!({"person": id(6), "household": HOUSEHOLD_ID_MAX + 1, "relation": "head"}),
        "household_out_of_range",
    );
    let w = node.ok(
        "/v1/enrol",
        json!({"person": id(6), "household": HOUSEHOLD_ID_MAX, "relation": "head"}),
    );
    assert_eq!(w["household"], HOUSEHOLD_ID_MAX, "{w}");
    // The counter follows the highest number used and is now past the bound: a new household
    // is refused by the rulebook, and nothing wraps to reuse a number that has a head.
    node.refused(
        "/v1/enrol",
        json!({"person": id(7)}),
        "household_out_of_range",
    );

    // `/v1/batch` gives every line the same names as the single routes.
    let lines = node.batch(&[
        json!({"op": "register", "deregistration": permit}),
        json!({"op": "deregister", "permit": enrolment}),
        json!({"op": "permit", "person": id(3), "origin": "440305", "category": "spouse"}),
        json!({"op": "permit", "person": id(3), "origin": OTHER, "category": "spouse", "valid_days": 36_500}),
        json!({"op": "permit", "person": id(3), "origin": OTHER, "category": "return-after-error"}),
        json!({"op": "enrol", "person": id(8), "household": 18_446_744_073_709_551_614u64, "relation": "head"}),
    ]);
    let errors: Vec<&str> = lines
        .iter()
        .map(|l| l["error"].as_str().unwrap_or("written"))
        .collect();
    assert_eq!(
        errors,
        [
            "reference_wrong_kind",
            "reference_wrong_kind",
            "unknown_origin",
            "permit_validity_invalid",
            "correction_missing",
            "household_out_of_range",
        ],
        "{lines:?}"
    );
}

#[test]
fn a_refused_write_takes_no_household_number_also_after_a_restart() {
    let node = Node::start();
    let household = |w: &Value| w["household"].as_u64().unwrap();
    assert_eq!(
        household(&node.ok("/v1/enrol", json!({"person": id(1)}))),
        1
    );
    // Refused after a household number was taken for it: the number is given back.
    node.refused(
        "/v1/enrol",
        json!({"person": id(1)}),
        "person_already_registered",
    );
    node.refused(
        "/v1/enrol",
        json!({"person": id(2), "household": 18_446_744_073_709_551_614u64, "relation": "head"}),
        "household_out_of_range",
    );
    assert_eq!(
        household(&node.ok("/v1/enrol", json!({"person": id(2)}))),
        2
    );
    node.refused(
        "/v1/enrol",
        json!({"person": id(2)}),
        "person_already_registered",
    );

    let node = node.restart();
    node.refused(
        "/v1/enrol",
        json!({"person": id(1)}),
        "person_already_registered",
    );
    assert_eq!(
        household(&node.ok("/v1/enrol", json!({"person": id(3)}))),
        3
    );
    // A member joining household 3 takes no new number either.
    let w = node.ok(
        "/v1/enrol",
        json!({"person": id(4), "household": 3, "relation": "spouse"}),
    );
    assert_eq!(household(&w), 3);
    assert_eq!(
        household(&node.ok("/v1/enrol", json!({"person": id(5)}))),
        4
    );
}
