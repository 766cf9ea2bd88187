//! A destination registers only against a FINAL deregistration (DESIGN: finality). With two of
//! four bureaus down no quorum can cosign, so a deregistration replicated to the destination
//! stays not final and its registration is refused (at once, or after waiting); once a third
//! bureau returns, the certificate forms and `hukou register --wait` goes through.

use std::process::Command;
use std::time::{Duration, Instant};

use hukou_tests::{Testnet, citizen_id, hukou_bin, wait_until};
use serde_json::{Value, json};

const ORIGIN: usize = 0; // 310104
const DESTINATION: usize = 1; // 330502
const WAIT: Duration = Duration::from_secs(20);

/// The deregistration step of the transfer `reference` as node `i` reports it.
fn deregistration_step(net: &Testnet, i: usize, reference: &str) -> Option<Value> {
    let (status, transfer) = net.get(i, &format!("/v1/transfers/{reference}"));
    if status != 200 {
        return None;
    }
    transfer["steps"]
        .as_array()?
        .iter()
        .find(|s| s["step"] == "deregistration")
        .cloned()
}

#[test]
fn registration_waits_for_a_final_deregistration() {
    let mut net = Testnet::new(4);
    let person = citizen_id(7);
    net.enrol(ORIGIN, &person);
    assert!(
        wait_until(WAIT, || {
            net.post(DESTINATION, "/v1/person", &json!({"person": person}))
                .1["registered_at"]
                == net.code(ORIGIN)
        }),
        "the enrolment did not reach the destination"
    );

    // Two of four down: 2 < quorum 3, so nothing new can become final.
    net.stop(2);
    net.stop(3);

    let permit = net.post_ok(
        DESTINATION,
        "/v1/permits",
        &json!({"person": person, "origin": net.code(ORIGIN), "category": "spouse"}),
    );
    let permit_ref = permit["ref"].as_str().expect("permit ref").to_string();
    assert!(
        wait_until(WAIT, || net
            .get(ORIGIN, &format!("/v1/transfers/{permit_ref}"))
            .0
            == 200),
        "the permit did not reach the origin"
    );
    let dereg = net.post_ok(ORIGIN, "/v1/deregister", &json!({"permit": permit_ref}));
    let dereg_ref = dereg["ref"].as_str().expect("dereg ref").to_string();
    assert!(
        wait_until(WAIT, || deregistration_step(&net, DESTINATION, &dereg_ref)
            .is_some()),
        "the deregistration did not reach the destination"
    );
    let step = deregistration_step(&net, DESTINATION, &dereg_ref).expect("step");
    assert_eq!(step["final"], false, "final without a quorum: {step}");

    // Refused at once, with the rule's name and a message that says what to do.
    let (status, refused) = net.post(
        DESTINATION,
        "/v1/register",
        &json!({"deregistration": dereg_ref}),
    );
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"], "deregistration_not_final", "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains(&dereg_ref) && m.contains("not final")),
        "{refused}"
    );

    // Waiting a little does not help while no quorum can form: refused after the wait.
    let asked = Instant::now();
    let (status, refused) = net.post(
        DESTINATION,
        "/v1/register",
        &json!({"deregistration": dereg_ref, "wait_ms": 1500}),
    );
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"], "deregistration_not_final", "{refused}");
    assert!(
        asked.elapsed() >= Duration::from_millis(1400),
        "answered after {:?}, before the wait ran out",
        asked.elapsed()
    );
    // Nothing was written: the person is still in transit, not registered anywhere.
    let (_, person_view) = net.post(DESTINATION, "/v1/person", &json!({"person": person}));
    assert!(person_view["registered_at"].is_null(), "{person_view}");

    // A third bureau returns; `hukou register --wait` waits for the certificate and registers.
    net.start(2);
    let cli = Command::new(hukou_bin())
        .args([
            "register",
            "--node",
            net.api(DESTINATION),
            "--token",
            net.token(DESTINATION),
            "--deregistration",
            &dereg_ref,
            "--wait",
            "--json",
        ])
        .output()
        .expect("hukou runs");
    let answer: Value = serde_json::from_slice(&cli.stdout).unwrap_or(Value::Null);
    assert!(
        cli.status.success(),
        "register --wait failed: {answer} {}",
        String::from_utf8_lossy(&cli.stderr)
    );
    let reg_ref = answer["ref"].as_str().expect("registration ref");
    assert!(reg_ref.starts_with(net.code(DESTINATION)), "{answer}");
    let step = deregistration_step(&net, DESTINATION, &dereg_ref).expect("step");
    assert_eq!(step["final"], true, "{step}");
    assert!(
        wait_until(WAIT, || {
            net.post(ORIGIN, "/v1/person", &json!({"person": person})).1["registered_at"]
                == net.code(DESTINATION)
        }),
        "the registration did not reach the origin"
    );
}
