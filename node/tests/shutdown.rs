//! A node asked to stop (SIGTERM) while a clerk's enrolment waits for its claim to become final
//! answers that request at once (`claim_not_final`: the claim is kept for the retry) and exits,
//! instead of holding its shutdown for as long as the request asked to wait (up to 60 s): an
//! operator's restart, and `testnet/chaos.sh`, expect a node to be gone within seconds.

mod common;

use std::time::{Duration, Instant};

use common::{HERE, TwoBureaus, valid_id};
use serde_json::{Value, json};

const TOKEN: &str = "shutdown-test-token-0123456789";

/// Longest a node may take to exit after SIGTERM with requests in flight; an idle one takes
/// well under a second.
const STOP_MAX: Duration = Duration::from_secs(5);

#[test]
fn a_node_stops_promptly_while_an_enrolment_waits_for_its_claim() {
    let mut net = TwoBureaus::start("shutdown-test", TOKEN);
    // Without the other member no claim becomes final (quorum 2 of 2).
    net.other.kill();
    // A person this bureau arbitrates: it grants itself the claim, then waits for finality.
    let person = net.arbiters.first_of(
        HERE,
        (1..1000).map(|n| valid_id(&format!("31010419800101{n:03}"))),
    );
    let url = net.here.url.clone();
    let enrolment = std::thread::spawn(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(90)))
            .build()
            .into();
        let mut response = agent
            .post(format!("{url}/v1/enrol"))
            .header("Authorization", format!("Bearer {TOKEN}"))
            .send_json(json!({"person": person, "wait_ms": 60_000}))
            .expect("the node answers before it exits");
        let status = response.status().as_u16();
        let answer: Value = response.body_mut().read_json().unwrap();
        (status, answer)
    });
    // The claim is written in this bureau's log: the request is now waiting for it.
    net.here.wait_holds(&format!("{HERE}:0:"));

    let started = Instant::now();
    net.here.stop();
    let took = started.elapsed();
    assert!(
        took < STOP_MAX,
        "the node took {took:?} to stop:\n{}",
        net.here.log()
    );
    let (status, answer) = enrolment.join().unwrap();
    assert_eq!(
        (status, answer["error"].as_str()),
        (409, Some("claim_not_final")),
        "{answer}"
    );
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains(&format!("claim {HERE}:0:")),
        "{answer}"
    );
}
