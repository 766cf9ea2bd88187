//! `POST /v1/batch` against a real node: the built binary runs both bureaus of a two-member
//! genesis as child processes (`common::TwoBureaus`: an enrolment needs its claim final, so a
//! quorum of both) and the batches go to 310104; 330502 is a permit's origin and the arbiter of
//! some persons. Checks per-line results in order, refusals named per line without stopping
//! the others, the claims enrolment lines obtain, the final `done` line, and that the token is
//! required.

mod common;

use std::time::Duration;

use common::{HERE, OTHER, TwoBureaus, valid_id};
use hukou_protocol::id::check_character_for;
use serde_json::Value;

const TOKEN: &str = "batch-test-token-0123456789";

/// Both members running (see `common`); the calls go to 310104.
struct Node {
    net: TwoBureaus,
    url: String,
}

impl Node {
    fn start() -> Node {
        let net = TwoBureaus::start("batch-test", TOKEN);
        let url = net.here.url.clone();
        Node { net, url }
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
    // The persons' arbiters decide where their claims are written: `a`'s is granted by the other
    // member over the network, `c`'s by this bureau in its own log (each path once).
    let arbiters = &node.net.arbiters;
    let a = arbiters.first_of(
        OTHER,
        (1..1000).map(|n| valid_id(&format!("31010419800101{n:03}"))),
    );
    let b = valid_id("33050219900202002");
    let c = arbiters.first_of(
        HERE,
        (1..1000).map(|n| valid_id(&format!("31010419850303{n:03}"))),
    );
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
        // Beyond the end of 330502's log (which holds the claims it granted, from seq 0).
        format!(r#"{{"op": "register", "deregistration": "{OTHER}:99"}}"#),
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
    // The claims of a group's enrolments are obtained before the group is written: this
    // bureau's log opens with its grant of `c`'s claim (seq 0), then the lines' entries follow
    // in order (seq 1, 2, 3).
    let first = written(1, "enrol");
    assert_eq!(first["seq"], 1, "{first}");
    assert!(first["household"].as_u64().is_some(), "{first}");
    assert!(
        first["claim"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{OTHER}:0:")),
        "{first}"
    );
    refused(2, "id_wrong_check_character");
    refused(3, "bad_op");
    let permit = written(5, "permit");
    assert_eq!(permit["valid_days"], 40, "{permit}");
    assert_eq!(permit["seq"], 2, "{permit}");
    // The same person twice in one group: the arbiter grants one claim per person, so the
    // second line's claim is refused, naming the claim granted for line 1 (the rulebook judges
    // the claim before the registration line 1 makes: `person_claimed`, not
    // `person_already_registered`).
    refused(6, "person_claimed");
    assert!(
        by_line(6)["message"]
            .as_str()
            .unwrap()
            .contains(first["claim"].as_str().unwrap()),
        "{answer}"
    );
    refused(7, "unknown_reference");
    refused(8, "bad_json");
    refused(9, "bad_json");
    let last = written(10, "enrol");
    assert_eq!(last["seq"], 3, "{last}");
    assert!(
        last["claim"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{HERE}:0:")),
        "{last}"
    );

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
