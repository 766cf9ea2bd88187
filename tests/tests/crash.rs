//! `kill -9` in the middle of a write burst loses no acknowledged write, leaves a log that
//! verifies, and never makes the node sign a different entry at a position a peer already holds.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hukou_tests::{Testnet, citizen_id, ref_hash, try_post_raw, wait_until};
use serde_json::{Value, json};

const A: usize = 0; // 310104: written to and killed
const B: usize = 1; // 330502: replicates A
const CLIENTS: usize = 8;
const CYCLES: usize = 3;
/// Longest a burst runs if the kill never comes (it always does; this only bounds the loop).
const BURST_MAX: Duration = Duration::from_secs(30);
const ZERO_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An acknowledged enrolment: its reference, the citizen ID, and the claim it consumed.
type Acked = (String, String, String);

#[derive(Default)]
struct Burst {
    /// Every enrolment answered 200.
    acked: Mutex<Vec<Acked>>,
    /// Answers other than 200 (status, body).
    refused: Mutex<Vec<(u16, Value)>>,
    /// Transport errors (expected once the node is killed).
    transport_errors: AtomicU64,
}

/// Runs `CLIENTS` threads that enrol distinct people at `url` as fast as they can until `stop`
/// is set or the node stops answering. Each enrolment first gets its claim from the person's
/// arbiter (A itself, or B) and waits until it is final, so a client writes a few a second.
fn burst(url: &str, token: &str, next: &AtomicU64, stop: &AtomicBool, out: &Burst) {
    std::thread::scope(|s| {
        for _ in 0..CLIENTS {
            s.spawn(|| {
                let deadline = Instant::now() + BURST_MAX;
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    let id = citizen_id(next.fetch_add(1, Ordering::Relaxed));
                    let body = json!({ "person": id }).to_string();
                    match try_post_raw(&format!("{url}/v1/enrol"), Some(token), &body) {
                        Ok((200, v)) => {
                            let r = v["ref"].as_str().expect("a 200 names the ref");
                            let claim = v["claim"].as_str().expect("an enrolment names its claim");
                            out.acked
                                .lock()
                                .unwrap()
                                .push((r.to_string(), id, claim.to_string()));
                        }
                        Ok((status, v)) => out.refused.lock().unwrap().push((status, v)),
                        Err(_) => {
                            out.transport_errors.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                    }
                }
            });
        }
    });
}

/// Checks that `entries` (one log, in order from seq 0) form a chain, and returns seq -> ref.
fn verify_chain(log: &str, entries: &[Value]) -> BTreeMap<u64, String> {
    let mut by_seq = BTreeMap::new();
    let mut prev_hash = ZERO_HASH.to_string();
    for (k, e) in entries.iter().enumerate() {
        let seq = e["seq"].as_u64().expect("seq");
        let r = e["ref"].as_str().expect("ref");
        assert_eq!(seq, k as u64, "{log}: entry {k} has seq {seq}: {e}");
        assert_eq!(
            r,
            format!("{log}:{seq}:{}", ref_hash(r)),
            "{log}: ref of seq {seq}"
        );
        assert_eq!(
            e["prev"].as_str(),
            Some(prev_hash.as_str()),
            "{log}: prev of seq {seq} is not the hash of seq {}",
            seq.wrapping_sub(1)
        );
        prev_hash = ref_hash(r).to_string();
        by_seq.insert(seq, r.to_string());
    }
    by_seq
}

#[test]
fn kill_9_mid_burst_loses_no_acknowledged_write() {
    let mut net = Testnet::new(2);
    let log = net.code(A).to_string();
    let next = AtomicU64::new(0);
    let mut all_acked: Vec<Acked> = Vec::new();

    for cycle in 0..CYCLES {
        let before = net.log_of(A, &log).expect("A answers").0;
        let out = Burst::default();
        let stop = AtomicBool::new(false);
        let (url, token) = (net.api(A).to_string(), net.token(A).to_string());
        // Kill A while the clients write: after some acknowledged writes, at a moment that
        // varies from cycle to cycle.
        let kill_after = Duration::from_millis(700 + 450 * cycle as u64);
        let t0 = Instant::now();
        std::thread::scope(|s| {
            s.spawn(|| burst(&url, &token, &next, &stop, &out));
            let some_acked = wait_until(Duration::from_secs(20), || {
                out.acked.lock().unwrap().len() >= 50 || !out.refused.lock().unwrap().is_empty()
            });
            std::thread::sleep(kill_after);
            net.kill9(A);
            stop.store(true, Ordering::Relaxed);
            assert!(some_acked, "cycle {cycle}: the burst never got going");
        });
        let acked = std::mem::take(&mut *out.acked.lock().unwrap());
        let refused = std::mem::take(&mut *out.refused.lock().unwrap());
        eprintln!(
            "cycle {cycle}: {} writes acknowledged in {:.1} s before kill -9 ({} refused, {} \
             transport errors), A held {before} entries before",
            acked.len(),
            t0.elapsed().as_secs_f64(),
            refused.len(),
            out.transport_errors.load(Ordering::Relaxed)
        );
        assert!(
            refused.is_empty(),
            "cycle {cycle}: writes refused during the burst: {:?}",
            &refused[..refused.len().min(5)]
        );

        // The crashed store checks clean as it is, before the node reopens it.
        let check = net.check(A);
        assert!(
            check.status.success(),
            "cycle {cycle}: hukou node check on the crashed store failed ({}): {}{}",
            check.status,
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );

        // What B replicated from A before the crash.
        let on_b_before = verify_chain(&log, &net.entries(B, &log));

        net.start(A);
        net.wait_ready(&[A, B], Duration::from_secs(30));

        // Every acknowledged write is in A's log, and A's log is a chain.
        let on_a = verify_chain(&log, &net.entries(A, &log));
        let held: HashSet<&String> = on_a.values().collect();
        all_acked.extend(acked);
        let lost: Vec<&Acked> = all_acked
            .iter()
            .filter(|(r, _, _)| !held.contains(r))
            .collect();
        assert!(
            lost.is_empty(),
            "cycle {cycle}: {} acknowledged writes are missing after restart (A's log has {} \
             entries); first: {:?}",
            lost.len(),
            on_a.len(),
            &lost[..lost.len().min(5)]
        );

        // Nor is any claim an acknowledged enrolment consumed: those A granted itself are in
        // its log (the others are in B's, which was never killed).
        let lost_claims: Vec<&Acked> = all_acked
            .iter()
            .filter(|(_, _, c)| c.starts_with(&format!("{log}:")) && !held.contains(c))
            .collect();
        assert!(
            lost_claims.is_empty(),
            "cycle {cycle}: {} claims of acknowledged enrolments are missing from A's log; \
             first: {:?}",
            lost_claims.len(),
            &lost_claims[..lost_claims.len().min(5)]
        );

        // A never signed a different entry at a position B already held.
        for (seq, r) in &on_b_before {
            assert_eq!(
                on_a.get(seq),
                Some(r),
                "cycle {cycle}: B held {r} at seq {seq} before the crash; A after restart has \
                 {:?} (A's length {})",
                on_a.get(seq),
                on_a.len()
            );
        }

        // B converges on A's log and has seen no equivocation.
        let a_now = net.log_of(A, &log).expect("A answers");
        assert!(
            wait_until(Duration::from_secs(20), || net.log_of(B, &log).as_ref()
                == Some(&a_now)),
            "cycle {cycle}: B holds {:?} of {log}, A holds {a_now:?}",
            net.log_of(B, &log)
        );
        let (_, proofs) = net.get(B, "/v1/fraud-proofs");
        assert_eq!(proofs["fraud_proofs"], json!([]), "cycle {cycle}");

        // The stopped node's store checks clean.
        let status = net.stop(A);
        assert!(
            status.success(),
            "cycle {cycle}: A did not stop cleanly: {status}"
        );
        let check = net.check(A);
        assert!(
            check.status.success(),
            "cycle {cycle}: hukou node check failed ({}): {}{}",
            check.status,
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
        net.start(A);
        net.wait_ready(&[A, B], Duration::from_secs(30));
    }

    // Every acknowledged person is registered at A.
    for (r, id, _) in all_acked.iter().step_by(97) {
        let (status, v) = net.post(A, "/v1/person", &json!({ "person": id }));
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["registered_at"], log.as_str(), "{r}: {v}");
    }
    let claims_by_a = all_acked
        .iter()
        .filter(|(_, _, c)| c.starts_with(&format!("{log}:")))
        .count();
    eprintln!(
        "{} acknowledged writes survived {CYCLES} kill -9 cycles ({claims_by_a} of their claims \
         granted by A itself)",
        all_acked.len()
    );
    assert!(
        claims_by_a > 0 && claims_by_a < all_acked.len(),
        "both A and B granted some of the claims"
    );
}
