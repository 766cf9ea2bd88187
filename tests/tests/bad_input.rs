//! Every class of bad input gets its own clear JSON error, never a 500, and changes nothing.

use std::time::Duration;

use hukou_tests::{Testnet, citizen_id, try_get, try_post_raw, wait_until};
use serde_json::{Value, json};

const A: usize = 0; // 310104, origin
const B: usize = 1; // 330502, destination

/// One bad request and what it must get.
struct Case {
    what: &'static str,
    node: usize,
    method: &'static str,
    path: String,
    token: Token,
    body: String,
    status: u16,
    error: Option<&'static str>,
}

enum Token {
    Own,
    None,
    Wrong,
}

fn case(
    what: &'static str,
    node: usize,
    path: &str,
    body: Value,
    status: u16,
    error: &'static str,
) -> Case {
    Case {
        what,
        node,
        method: "POST",
        path: path.to_string(),
        token: Token::Own,
        body: body.to_string(),
        status,
        error: Some(error),
    }
}

/// `id` with character `at` (0-based) replaced by `c`.
fn with_char(id: &str, at: usize, c: char) -> String {
    id.chars()
        .enumerate()
        .map(|(i, x)| if i == at { c } else { x })
        .collect()
}

#[test]
fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let net = Testnet::new(2);
    let wait = Duration::from_secs(20);

    // Setup: a person enrolled at A, a permit from B, the removal at A.
    let person = citizen_id(7);
    let enrolment = net.enrol(A, &person);
    let permit = net.post_ok(
        B,
        "/v1/permits",
        &json!({"person": person, "origin": "310104", "category": "spouse"}),
    );
    let permit_ref = permit["ref"].as_str().expect("ref").to_string();
    assert!(
        wait_until(wait, || {
            net.get(A, "/v1/inbox").1["permits_awaiting_removal"]
                .as_array()
                .is_some_and(|a| a.iter().any(|p| p["permit"] == permit_ref.as_str()))
        }),
        "permit {permit_ref} did not reach 310104"
    );
    net.post_ok(A, "/v1/deregister", &json!({"permit": permit_ref}));
    assert!(
        wait_until(wait, || net.logs(A) == net.logs(B)),
        "A and B do not converge: {:?} vs {:?}",
        net.logs(A),
        net.logs(B)
    );
    let before = net.logs(A);

    let valid = citizen_id(8);
    let first17 = "31010419900230123";
    let impossible_date = format!(
        "{first17}{}",
        hukou_protocol::id::check_character_for(first17).expect("17 digits")
    );
    let last = valid.chars().last().expect("18 chars");
    let wrong_check = with_char(&valid, 17, if last == '0' { '1' } else { '0' });
    let unknown_ref = format!("330502:999:{}", "ab".repeat(32));

    let mut cases = vec![
        // Malformed citizen IDs, at every call that takes one.
        case(
            "ID of 17 characters",
            A,
            "/v1/enrol",
            json!({"person": &valid[..17]}),
            400,
            "id_wrong_length",
        ),
        case(
            "ID of 19 characters",
            A,
            "/v1/enrol",
            json!({"person": format!("{valid}1")}),
            400,
            "id_wrong_length",
        ),
        case(
            "empty ID",
            A,
            "/v1/enrol",
            json!({"person": ""}),
            400,
            "id_wrong_length",
        ),
        case(
            "letter inside an ID",
            A,
            "/v1/enrol",
            json!({"person": with_char(&valid, 9, 'A')}),
            400,
            "id_bad_character",
        ),
        case(
            "X not last",
            A,
            "/v1/enrol",
            json!({"person": with_char(&valid, 3, 'X')}),
            400,
            "id_bad_character",
        ),
        case(
            "30 February",
            A,
            "/v1/enrol",
            json!({"person": impossible_date}),
            400,
            "id_impossible_date",
        ),
        case(
            "wrong check character",
            A,
            "/v1/enrol",
            json!({"person": wrong_check}),
            400,
            "id_wrong_check_character",
        ),
        case(
            "wrong check character in a permit",
            B,
            "/v1/permits",
            json!({"person": wrong_check, "origin": "310104", "category": "spouse"}),
            400,
            "id_wrong_check_character",
        ),
        case(
            "wrong check character in a look-up",
            A,
            "/v1/person",
            json!({"person": wrong_check}),
            400,
            "id_wrong_check_character",
        ),
        // Bureaus.
        case(
            "origin not a member",
            B,
            "/v1/permits",
            json!({"person": valid, "origin": "320506", "category": "spouse"}),
            409,
            "unknown_origin",
        ),
        case(
            "origin of five digits",
            B,
            "/v1/permits",
            json!({"person": valid, "origin": "31010", "category": "spouse"}),
            400,
            "bad_bureau",
        ),
        case(
            "origin with letters",
            B,
            "/v1/permits",
            json!({"person": valid, "origin": "31O104", "category": "spouse"}),
            400,
            "bad_bureau",
        ),
        // Invalid transitions.
        case(
            "deregister a permit twice",
            A,
            "/v1/deregister",
            json!({"permit": permit_ref}),
            409,
            "permit_not_open",
        ),
        case(
            "register against a permit",
            B,
            "/v1/register",
            json!({"deregistration": permit_ref}),
            409,
            "reference_wrong_kind",
        ),
        case(
            "deregister against an enrolment",
            A,
            "/v1/deregister",
            json!({"permit": enrolment}),
            409,
            "reference_wrong_kind",
        ),
        case(
            "permit valid for a hundred years",
            B,
            "/v1/permits",
            json!({"person": valid, "origin": "310104", "category": "spouse", "valid_days": 36_500}),
            409,
            "permit_validity_invalid",
        ),
        case(
            "household number beyond the bound",
            A,
            "/v1/enrol",
            json!({"person": valid, "household": 18_446_744_073_709_551_614u64, "relation": "head"}),
            409,
            "household_out_of_range",
        ),
        case(
            "ID of a province that does not exist",
            A,
            "/v1/enrol",
            json!({"person": hukou_tests::citizen_id_in("290105", 7)}),
            400,
            "id_unknown_province",
        ),
        case(
            "permit naming its author as origin",
            A,
            "/v1/permits",
            json!({"person": valid, "origin": "310104", "category": "spouse"}),
            409,
            "permit_origin_is_author",
        ),
        // The person's arbiter refuses a second claim on them (the first was consumed by
        // their enrolment): the rulebook judges the claim before admission's
        // `person_in_transit`.
        case(
            "enrol a person in transit",
            A,
            "/v1/enrol",
            json!({"person": person}),
            409,
            "person_claimed",
        ),
        case(
            "reference to nothing (short)",
            A,
            "/v1/deregister",
            json!({"permit": "330502:999"}),
            404,
            "unknown_reference",
        ),
        case(
            "reference to nothing (full)",
            A,
            "/v1/deregister",
            json!({"permit": unknown_ref}),
            404,
            "unknown_reference",
        ),
        case(
            "malformed reference",
            A,
            "/v1/deregister",
            json!({"permit": "not-a-reference"}),
            400,
            "bad_reference",
        ),
        case(
            "reference with a bad sequence",
            B,
            "/v1/register",
            json!({"deregistration": "310104:x"}),
            400,
            "bad_reference",
        ),
        // Bodies.
        case(
            "unknown field",
            A,
            "/v1/enrol",
            json!({"person": valid, "colour": "red"}),
            400,
            "bad_json",
        ),
        case(
            "missing field",
            B,
            "/v1/permits",
            json!({"person": valid, "origin": "310104"}),
            400,
            "bad_json",
        ),
        case(
            "wrong type",
            A,
            "/v1/enrol",
            json!({"person": 310104}),
            400,
            "bad_json",
        ),
    ];
    cases.push(Case {
        body: "{\"person\": ".to_string(),
        ..case(
            "truncated JSON",
            A,
            "/v1/enrol",
            json!(null),
            400,
            "bad_json",
        )
    });
    cases.push(Case {
        body: "not json at all".to_string(),
        ..case("not JSON", B, "/v1/register", json!(null), 400, "bad_json")
    });
    cases.push(Case {
        body: format!("{{\"person\": \"{valid}\"{}}}", " ".repeat(70 * 1024)),
        ..case(
            "body over 64 KiB",
            A,
            "/v1/enrol",
            json!(null),
            413,
            "body_too_large",
        )
    });
    cases.push(Case {
        token: Token::None,
        ..case(
            "no token",
            A,
            "/v1/enrol",
            json!({"person": valid}),
            401,
            "unauthorized",
        )
    });
    cases.push(Case {
        token: Token::Wrong,
        ..case(
            "wrong token",
            A,
            "/v1/enrol",
            json!({"person": valid}),
            401,
            "unauthorized",
        )
    });
    cases.push(Case {
        token: Token::Wrong,
        ..case(
            "look-up with a wrong token",
            B,
            "/v1/person",
            json!({"person": person}),
            401,
            "unauthorized",
        )
    });
    for (what, path, status, error) in [
        ("unknown route", "/v1/nothing-here", 404, None),
        ("unknown route at the root", "/", 404, None),
        (
            "bad bureau code in a log path",
            "/v1/logs/3101/entries",
            400,
            Some("bad_bureau"),
        ),
        (
            "malformed transfer reference",
            "/v1/transfers/nonsense",
            400,
            Some("bad_reference"),
        ),
        (
            "transfer reference to nothing",
            "/v1/transfers/330502:999",
            404,
            Some("unknown_reference"),
        ),
    ] {
        cases.push(Case {
            what,
            node: A,
            method: "GET",
            path: path.to_string(),
            token: Token::None,
            body: String::new(),
            status,
            error,
        });
    }
    cases.push(case(
        "unknown write route",
        A,
        "/v1/enrol/nope",
        json!({"person": valid}),
        404,
        "no_such_route",
    ));

    let mut failures = Vec::new();
    for c in &cases {
        let url = format!("{}{}", net.api(c.node), c.path);
        let token = match c.token {
            Token::Own => Some(net.token(c.node).to_string()),
            Token::None => None,
            Token::Wrong => Some(net.token(1 - c.node).to_string()),
        };
        let (status, body) = if c.method == "GET" {
            try_get(&url)
        } else {
            try_post_raw(&url, token.as_deref(), &c.body)
        }
        .unwrap_or_else(|e| panic!("{}: {e}", c.what));
        let well_formed = body["error"].as_str().is_some_and(|e| !e.is_empty())
            && body["message"].as_str().is_some_and(|m| !m.is_empty());
        let error_ok = c.error.is_none_or(|e| body["error"] == e);
        if status != c.status || !well_formed || !error_ok || status >= 500 {
            failures.push(format!(
                "{}: {} {} -> {status} {body}; expected {} {:?}",
                c.what, c.method, c.path, c.status, c.error
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} bad inputs were not answered as expected:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );

    // Nothing changed, on either node, but for claims: an enrolment refused for its household
    // (the rulebook judges the placement only in the enrolment itself) leaves the claim its
    // arbiter granted, kept for this bureau and used by the clerk's next attempt.
    std::thread::sleep(Duration::from_millis(1000));
    for node in [A, B] {
        let after = net.logs(node);
        for (log, len, root) in &after {
            let was = before.iter().find(|(l, _, _)| l == log);
            let held = was.map_or(0, |(_, n, _)| *n);
            if *len == held {
                assert_eq!(
                    Some(root),
                    was.map(|(_, _, r)| r),
                    "{log} changed on {node}"
                );
                continue;
            }
            for e in net.entries(node, log).iter().skip(held as usize) {
                assert_eq!(
                    e["kind"], "claim",
                    "{log} on {node} grew by more than claims: {e}"
                );
            }
        }
    }
    let (_, shown) = net.post(A, "/v1/person", &json!({"person": valid}));
    assert_eq!(shown["registered_at"], Value::Null, "{shown}");
    // At most the claim its arbiter granted for the refused enrolment; nothing registered.
    assert!(
        shown["history"]
            .as_array()
            .is_some_and(|h| h.iter().all(|e| e["kind"] == "claim")),
        "{shown}"
    );
}

/// axum's own rejections (a malformed query string, a wrong method) are JSON errors too.
#[test]
fn framework_rejections_are_json_errors() {
    let net = hukou_tests::Testnet::new(1);
    let (status, body) =
        hukou_tests::get(&format!("{}/v1/logs/310104/entries?from=abc", net.api(0)));
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "bad_request", "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    let (status, body) = hukou_tests::get(&format!("{}/v1/logs/310104/inclusion", net.api(0)));
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "bad_request", "{body}");
    let (status, body) = hukou_tests::try_post_raw(&format!("{}/healthz", net.api(0)), None, "{}")
        .expect("node answers");
    assert_eq!(status, 405, "{body}");
    assert_eq!(body["error"], "method_not_allowed", "{body}");
}
