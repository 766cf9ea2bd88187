//! Claims across a member's outage, on the two-bureau network of real processes
//! (`common::TwoBureaus`, quorum 2 of 2, so stopping the other member stops all finality):
//!
//! - a retried enrolment whose claim was kept (refused `claim_not_final` while the network was
//!   down) waits, like the first attempt, up to its `wait_ms` for that claim to become final
//!   once the network is back, instead of being refused again at once;
//! - a node asked to stop (SIGTERM) while a clerk's enrolment waits for its claim answers that
//!   request at once (`claim_not_final`: the claim is kept for the retry) and exits, instead of
//!   holding its shutdown for as long as the request asked to wait (up to 60 s): an operator's
//!   restart, and `testnet/chaos.sh`, expect a node to be gone within seconds.

mod common;

use std::time::{Duration, Instant};

use common::{HERE, TwoBureaus, valid_id};
use serde_json::{Value, json};
use ureq::Agent;

const TOKEN: &str = "claims-test-token-0123456789";

/// `POST /v1/enrol` of `person` asking to wait `wait_ms` for the claim: (status, answer).
fn enrol(url: &str, person: &str, wait_ms: u64) -> (u16, Value) {
    let agent: Agent = Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(90)))
        .build()
        .into();
    let mut response = agent
        .post(format!("{url}/v1/enrol"))
        .header("Authorization", format!("Bearer {TOKEN}"))
        .send_json(json!({"person": person, "wait_ms": wait_ms}))
        .expect("the node answers");
    let status = response.status().as_u16();
    (status, response.body_mut().read_json().unwrap())
}

/// A person bureau `code` arbitrates.
fn person_arbitrated_by(net: &TwoBureaus, code: &str) -> String {
    net.arbiters.first_of(
        code,
        (1..1000).map(|n| valid_id(&format!("31010419800101{n:03}"))),
    )
}

#[test]
fn a_retried_enrolment_waits_for_its_kept_claim_to_become_final() {
    let mut net = TwoBureaus::start("claims-retry-test", TOKEN);
    // A person this bureau arbitrates: while the other member is down it grants itself the
    // claim, which cannot become final (quorum 2 of 2); the enrolment is refused, the claim kept.
    let person = person_arbitrated_by(&net, HERE);
    net.other.kill();
    let url = net.here.url.clone();
    let (status, refused) = enrol(&url, &person, 500);
    assert_eq!(
        (status, refused["error"].as_str()),
        (409, Some("claim_not_final")),
        "{refused}"
    );
    let claim = format!("{HERE}:0:");
    assert!(
        refused["message"].as_str().unwrap().contains(&claim),
        "{refused}"
    );

    // The other member comes back; the retry, sent at once, waits until the kept claim is final
    // and consumes it.
    net.other.start();
    let started = Instant::now();
    let (status, enrolled) = enrol(&url, &person, 30_000);
    assert_eq!(status, 200, "{enrolled}");
    assert!(
        enrolled["claim"].as_str().unwrap().starts_with(&claim),
        "{enrolled}"
    );
    assert_eq!(enrolled["seq"], 1, "no second claim: {enrolled}");
    eprintln!(
        "the retry waited {:?} for the other member and the claim's certificate",
        started.elapsed()
    );
}

/// Longest a node may take to exit after SIGTERM with requests in flight; an idle one takes
/// well under a second.
const STOP_MAX: Duration = Duration::from_secs(5);

#[test]
fn a_node_stops_promptly_while_an_enrolment_waits_for_its_claim() {
    let mut net = TwoBureaus::start("claims-shutdown-test", TOKEN);
    // Without the other member no claim becomes final (quorum 2 of 2).
    net.other.kill();
    // A person this bureau arbitrates: it grants itself the claim, then waits for finality.
    let person = person_arbitrated_by(&net, HERE);
    let url = net.here.url.clone();
    let enrolment = std::thread::spawn(move || enrol(&url, &person, 60_000));
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
