//! A node whose store is lost rebuilds it from its peers, and never signs a second entry at a
//! position it had already signed: it writes nothing until a peer confirms its own log.

use std::time::Duration;

use hukou_tests::{Testnet, citizen_id, wait_until};

const A: usize = 0; // 310104: loses its store
const B: usize = 1; // 330502: keeps a replica

#[test]
fn lost_store_is_rebuilt_from_peers_without_equivocating() {
    let mut net = Testnet::new(2);
    for n in 0..40 {
        net.enrol(A, &citizen_id(n));
    }
    // A's log: the 40 enrolments and the claims A granted as the arbiter of some of them (B
    // granted the others, in its own log).
    let claims_by_a = (0..40)
        .filter(|n| net.arbiter_of(&citizen_id(*n)) == "310104")
        .count() as u64;
    let before = net.log_of(A, "310104").expect("A answers");
    assert_eq!(before.0, 40 + claims_by_a);
    assert!(wait_until(Duration::from_secs(20), || net
        .log_of(B, "310104")
        == Some(before.clone())));
    let refs_before = net.entries(B, "310104");

    let status = net.stop(A);
    assert!(status.success(), "A did not stop cleanly: {status}");
    let db = net.nodes[A].dir.join("data").join("db");
    std::fs::remove_dir_all(&db).expect("delete A's store");
    net.start(A);
    // Ready means serving and connected: writes are accepted only once B confirmed A's log.
    net.wait_ready(&[A, B], Duration::from_secs(30));

    // The first write after the restart lands after the recovered log, never at seq 0. The
    // person enrolled is one A arbitrates, so the first entry A signs after the loss is the
    // claim it grants itself, and the enrolment follows it.
    let person = net.person_arbitrated_by("310104", (1_000..).map(citizen_id));
    let reference = net.enrol(A, &person);
    assert!(
        reference.starts_with(&format!("310104:{}:", before.0 + 1)),
        "first write after the loss was {reference}"
    );
    let after = net.entries(A, "310104");
    assert_eq!(after.len() as u64, before.0 + 2);
    let claim = &after[before.0 as usize];
    assert_eq!(claim["kind"], "claim", "{claim}");
    assert_eq!(claim["body"]["claimant"], "310104", "{claim}");
    for (old, new) in refs_before.iter().zip(&after) {
        assert_eq!(
            old["ref"], new["ref"],
            "A rebuilt a different entry at the same seq"
        );
    }
    let (_, proofs) = net.get(B, "/v1/fraud-proofs");
    assert_eq!(
        proofs["fraud_proofs"].as_array().map(Vec::len),
        Some(0),
        "B saw no equivocation"
    );
    assert!(wait_until(Duration::from_secs(20), || net
        .log_of(B, "310104")
        .map(|l| l.0)
        == Some(before.0 + 2)));
}
