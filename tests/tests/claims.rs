//! Nobody is registered twice (DESIGN.md, "Claims on unregistered people"; issue 12 item 1):
//! two bureaus that enrol the same person at the same moment cannot both succeed, with or without
//! a partition, and every node agrees on who did.
//!
//! Four real bureaus on 127.0.0.1, reaching each other only through cuttable links. For every
//! pair of bureaus, both windows enrol one new person at once (two threads released by a
//! barrier), first on a healthy network (and two pairs register one newborn's birth at once), then
//! with the first bureau of the pair cut off. Each
//! window then retries until it gets a definitive answer (success, or a rule's refusal), as a
//! clerk would. Exactly one window succeeds, every node shows the person registered there and
//! only there, and at the end an export of the whole ledger audits clean.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use hukou_tests::links::Links;
use hukou_tests::{Testnet, citizen_id_in, wait_until};
use serde_json::{Value, json};

/// Longest a step may take to replicate or become final.
const WAIT: Duration = Duration::from_secs(30);

/// How long an enrolment waits for its claim before answering `claim_not_final`.
const CLAIM_WAIT_MS: u64 = 1_500;

/// Answers that mean "not decided yet: try again" rather than a verdict.
const TRANSIENT: [&str; 4] = [
    "claim_not_final",
    "arbiter_unreachable",
    "claim_pending",
    "recovering",
];

fn enrol(net: &Testnet, i: usize, id: &str) -> (u16, Value) {
    net.post(
        i,
        "/v1/enrol",
        &json!({ "person": id, "wait_ms": CLAIM_WAIT_MS }),
    )
}

/// Retries an enrolment until it succeeds or is refused by a rule; returns the final answer.
fn enrol_until_decided(net: &Testnet, i: usize, id: &str) -> (u16, Value) {
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, v) = enrol(net, i, id);
        let transient = v["error"].as_str().is_some_and(|e| TRANSIENT.contains(&e));
        if !transient || Instant::now() > deadline {
            return (status, v);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Both windows enrol `id` at once; returns each window's first answer.
fn race(net: &Testnet, a: usize, b: usize, id: &str) -> [(u16, Value); 2] {
    let barrier = Arc::new(Barrier::new(2));
    std::thread::scope(|s| {
        let go = |i: usize| {
            let barrier = barrier.clone();
            s.spawn(move || {
                barrier.wait();
                enrol(net, i, id)
            })
        };
        let (ta, tb) = (go(a), go(b));
        [ta.join().expect("window a"), tb.join().expect("window b")]
    })
}

/// Whether node `i` shows `id` registered at exactly `bureau`, once.
fn registered_once_at(net: &Testnet, i: usize, id: &str, bureau: &str) -> bool {
    let (status, p) = net.post(i, "/v1/person", &json!({ "person": id }));
    status == 200
        && p["registered_at"] == bureau
        && p["duplicate"] == false
        && p["records"].as_array().is_some_and(|r| r.len() == 1)
}

/// Checks one race: at most one first answer succeeded, each refusal is a named rule or a
/// transient state, and after both windows retried exactly one bureau holds the person, on
/// every node.
fn settle(net: &Testnet, pair: (usize, usize), id: &str, first: &[(u16, Value); 2]) -> String {
    let winners_first: Vec<usize> = [pair.0, pair.1]
        .into_iter()
        .zip(first)
        .filter(|(_, (status, _))| *status == 200)
        .map(|(i, _)| i)
        .collect();
    assert!(
        winners_first.len() <= 1,
        "both windows enrolled {id} at once: {first:?}"
    );
    for (status, v) in first {
        if *status != 200 {
            let error = v["error"].as_str().unwrap_or_default();
            assert!(
                TRANSIENT.contains(&error)
                    || ["person_claimed", "person_already_registered"].contains(&error),
                "unexpected refusal: {v}"
            );
        }
    }
    // Both clerks retry until they get a verdict.
    let answers = [
        enrol_until_decided(net, pair.0, id),
        enrol_until_decided(net, pair.1, id),
    ];
    // A window succeeded if its first answer or its retry was a success (a winner's retry is
    // refused: the person is already claimed and registered there).
    let winners: Vec<usize> = [pair.0, pair.1]
        .into_iter()
        .zip(first.iter().zip(&answers))
        .filter(|(_, (a, b))| a.0 == 200 || b.0 == 200)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "{id}: exactly one window must end up enrolling; first {first:?}, then {answers:?}"
    );
    let winner = winners[0];
    for (i, (status, v)) in [pair.0, pair.1].into_iter().zip(&answers) {
        if *status != 200 {
            assert!(
                // `claim_consumed`: the winner retried before the arbiter saw its enrolment, so
                // the arbiter handed back the claim the winner had already used.
                [
                    "person_claimed",
                    "person_already_registered",
                    "claim_consumed"
                ]
                .contains(&v["error"].as_str().unwrap_or_default()),
                "{id}: {} is told why it cannot enrol: {v}",
                net.code(i)
            );
        }
    }
    let bureau = net.code(winner).to_string();
    for i in 0..4 {
        assert!(
            wait_until(WAIT, || registered_once_at(net, i, id, &bureau)),
            "{id} is not registered once at {bureau} on {}: {}",
            net.code(i),
            net.post(i, "/v1/person", &json!({ "person": id })).1
        );
    }
    bureau
}

#[test]
fn two_windows_enrolling_one_person_at_once_never_both_succeed() {
    let (mut net, links) = Links::testnet(4);
    let _ = &mut net;
    let pairs: Vec<(usize, usize)> = (0..4)
        .flat_map(|a| (a + 1..4).map(move |b| (a, b)))
        .collect();
    let mut n = 0;
    let mut next_id = || {
        n += 1;
        citizen_id_in("330502", 500 + n)
    };

    // A healthy network: every pair races for a person of its own.
    for &(a, b) in &pairs {
        let id = next_id();
        let first = race(&net, a, b, &id);
        let winner = settle(&net, (a, b), &id, &first);
        eprintln!(
            "healthy {}–{}: {winner} won; first answers {} / {}",
            net.code(a),
            net.code(b),
            first[0].0,
            first[1].0
        );
    }

    // Births too: two windows register the birth of one newborn at once, each into a household
    // of its own bureau (出生登记 goes through the same claim as an enrolment).
    for &(a, b) in &pairs[..2] {
        let households: Vec<u64> = [a, b]
            .into_iter()
            .map(|i| {
                let head = next_id();
                let v = net.post_ok(i, "/v1/enrol", &json!({ "person": head }));
                v["household"].as_u64().expect("household")
            })
            .collect();
        let newborn = hukou_tests::citizen_id_born("330502", 3, 900 + (a * 4 + b) as u64);
        let barrier = Arc::new(Barrier::new(2));
        let first: Vec<(u16, Value)> = std::thread::scope(|s| {
            let handles: Vec<_> = [(a, households[0]), (b, households[1])]
                .into_iter()
                .map(|(i, household)| {
                    let (barrier, net, newborn) = (barrier.clone(), &net, &newborn);
                    s.spawn(move || {
                        barrier.wait();
                        net.post(
                            i,
                            "/v1/birth",
                            &json!({ "person": newborn, "household": household,
                                     "relation": "child", "wait_ms": 10_000 }),
                        )
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("window"))
                .collect()
        });
        let won: Vec<usize> = [a, b]
            .into_iter()
            .zip(&first)
            .filter(|(_, (status, _))| *status == 200)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(
            won.len(),
            1,
            "{newborn}: exactly one birth registration: {first:?}"
        );
        let lost = first
            .iter()
            .find(|(status, _)| *status != 200)
            .expect("a loser");
        assert!(
            ["person_claimed", "person_already_registered"]
                .contains(&lost.1["error"].as_str().unwrap_or_default()),
            "{newborn}: the other window is told why: {lost:?}"
        );
        let bureau = net.code(won[0]).to_string();
        for i in 0..4 {
            assert!(
                wait_until(WAIT, || registered_once_at(&net, i, &newborn, &bureau)),
                "{newborn} is not registered once at {bureau} on {}",
                net.code(i)
            );
        }
        eprintln!("birth {}–{}: {bureau} won", net.code(a), net.code(b));
    }

    // A partition: the first bureau of the pair is cut off while both windows enrol. Whoever
    // can reach the person's arbiter and a quorum wins; the other side cannot enrol until the
    // link is back, and then learns it lost.
    for &(a, b) in &pairs {
        let id = next_id();
        links.cut(a);
        let first = race(&net, a, b, &id);
        links.restore(a);
        net.wait_ready(&[0, 1, 2, 3], WAIT);
        let winner = settle(&net, (a, b), &id, &first);
        eprintln!(
            "{} cut off, {} not: {winner} won; first answers {} {} / {} {}",
            net.code(a),
            net.code(b),
            first[0].0,
            first[0].1["error"],
            first[1].0,
            first[1].1["error"]
        );
    }

    // The whole ledger, exported from one node once it holds every log as its authors do,
    // audits clean: no duplicate, no refused entry anywhere.
    assert!(
        wait_until(WAIT, || (0..4)
            .all(|i| net.log_of(0, net.code(i)) == net.log_of(i, net.code(i)))),
        "310104 lags behind: {:?}",
        net.logs(0)
    );
    let bundle = net.dir().join("bundle");
    let genesis = net.nodes[0].dir.join("genesis.toml");
    hukou_tests::hukou(&[
        "export",
        "--node",
        net.api(0),
        "--genesis",
        genesis.to_str().expect("utf-8"),
        "--out",
        bundle.to_str().expect("utf-8"),
        "--quiet",
    ]);
    let out = std::process::Command::new(hukou_tests::hukou_bin())
        .args(["audit", "--json", "--quiet"])
        .arg(&bundle)
        .output()
        .expect("hukou audit runs");
    let report: Value = serde_json::from_slice(&out.stdout).expect("audit --json");
    assert_eq!(out.status.code(), Some(0), "audit not clean: {report}");
    assert_eq!(report["totals"]["violations"], 0, "{report}");
}
