//! A replica stopped and restarted in the middle of a stream of writes catches up completely.
//!
//! The stream opens with enrolments while both members run; while B is stopped (and while it
//! restarts) A writes permits, since in a two-member network an enrolment needs B: its claim
//! becomes final only with B's cosignature. Once B is back, an enrolment succeeds again.

use std::time::{Duration, Instant};

use hukou_tests::{Testnet, citizen_id, wait_until};
use serde_json::json;

const A: usize = 0; // 310104, written to
const B: usize = 1; // 330502, stopped and restarted
const WRITES: u64 = 300;
/// Writes before B is stopped (enrolments), and before it is restarted.
const STOP_AT: u64 = 100;
const RESTART_AT: u64 = 200;

#[test]
fn replica_restarted_mid_stream_catches_up() {
    let mut net = Testnet::new(2);
    let started = Instant::now();
    for n in 0..WRITES {
        if n == STOP_AT {
            let status = net.stop(B);
            eprintln!("stopped B after {n} writes: {status}");
            assert!(status.success(), "B did not stop cleanly: {status}");
        }
        if n == RESTART_AT {
            eprintln!("restarting B after {n} writes");
            net.start(B);
        }
        if n < STOP_AT {
            net.enrol(A, &citizen_id(n));
        } else {
            net.post_ok(
                A,
                "/v1/permits",
                &json!({"person": citizen_id(n), "origin": "330502", "category": "spouse"}),
            );
        }
        // A clerk's pace, so B comes back while the stream still flows.
        std::thread::sleep(Duration::from_millis(5));
    }
    eprintln!(
        "{WRITES} writes in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // A's own log: every write, and the claims A granted as the arbiter of some of the
    // persons it enrolled (B granted the others).
    let claims_by_a = (0..STOP_AT)
        .filter(|n| net.arbiter_of(&citizen_id(*n)) == "310104")
        .count() as u64;
    let a = net.log_of(A, "310104").expect("A answers");
    assert_eq!(a.0, WRITES + claims_by_a, "A's own log");
    let caught_up = wait_until(Duration::from_secs(30), || {
        net.log_of(B, "310104").as_ref() == Some(&a)
    });
    assert!(
        caught_up,
        "B holds {:?} of 310104's log, A holds {a:?}",
        net.log_of(B, "310104")
    );
    eprintln!(
        "B caught up {:.1} s after the start",
        started.elapsed().as_secs_f64()
    );
    // B is a healthy member again, and the entries it holds are A's entries.
    net.wait_ready(&[A, B], Duration::from_secs(30));
    let on_a = net.entries(A, "310104");
    let on_b = net.entries(B, "310104");
    let refs = |v: &[serde_json::Value]| -> Vec<String> {
        v.iter()
            .map(|e| e["ref"].as_str().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(refs(&on_a), refs(&on_b));
    // And a witness again: an enrolment, whose claim needs B's cosignature to become final,
    // goes through.
    let enrolled = net.enrol(A, &citizen_id(WRITES));
    assert!(enrolled.starts_with("310104:"), "{enrolled}");
}
