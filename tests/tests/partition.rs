//! Outages and partitions with real processes (DESIGN.md: "Work proceeds without a quorum (a
//! window can accept applications while the network is down); finality waits for it").
//!
//! - One bureau of four is stopped: the other three keep accepting writes and make them final
//!   (3 is the quorum of 4); restarted, it catches up and everything converges and is final.
//! - One bureau of four is cut off from the network by closing every link to and from it
//!   ([`Links`]), while its process and API keep running: its window still records permits and
//!   deregistrations in its own log, which cannot become final; the other three go on and
//!   finalize among themselves. It can no longer enrol anyone: an enrolment needs a claim from
//!   the person's arbiter that a quorum made final (`arbiter_unreachable` when the arbiter is
//!   another bureau; `claim_not_final` when it is the cut-off bureau itself, which keeps the
//!   claim it granted for the retry). When the links return, every node holds the same logs, the
//!   cut-off bureau's entries become final everywhere, and the retried enrolment goes through.
//!
//! Every enrolment appends the claim it consumes to the person's arbiter's log
//! (`Testnet::arbiter_of`); a bureau that is stopped or cut off grants none.

use std::time::{Duration, Instant};

use hukou_tests::links::Links;
use hukou_tests::{Testnet, citizen_id, citizen_id_in, wait_until};
use serde_json::{Value, json};

/// Longest any one step may take to replicate or become final.
const WAIT: Duration = Duration::from_secs(20);

const XUHUI: usize = 0; // 310104
const WUXING: usize = 1; // 330502
const HEFEI: usize = 2; // 340100
const FOURTH: usize = 3; // the bureau stopped or cut off (BUREAUS[3])

/// `POST path` on node `i` until it answers 200 ([`Testnet::post_until_ok`], within [`WAIT`]).
fn post_until_ok(net: &Testnet, i: usize, path: &str, body: &Value) -> Value {
    net.post_until_ok(i, path, body, WAIT)
}

fn reference(v: &Value) -> String {
    v["ref"].as_str().expect("ref").to_string()
}

/// Whether node `i` shows the transfer of `permit` with `steps` recorded steps, every one final.
fn transfer_final(net: &Testnet, i: usize, permit: &str, steps: usize) -> bool {
    let (status, t) = net.get(i, &format!("/v1/transfers/{permit}"));
    status == 200
        && t["steps"].as_array().is_some_and(|s| {
            s.iter().filter(|x| x["ref"].is_string()).count() == steps
                && s.iter()
                    .filter(|x| x["ref"].is_string())
                    .all(|x| x["final"] == true)
        })
}

#[track_caller]
fn assert_transfer_final(net: &Testnet, nodes: &[usize], permit: &str, steps: usize) {
    for &i in nodes {
        assert!(
            wait_until(WAIT, || transfer_final(net, i, permit, steps)),
            "transfer {permit} is not final with {steps} steps on {}: {}",
            net.code(i),
            net.get(i, &format!("/v1/transfers/{permit}")).1
        );
    }
}

/// The size of the latest certificate of `log` node `i` holds (0 if none).
fn certificate_size(net: &Testnet, i: usize, log: &str) -> u64 {
    let (status, v) = net.get(i, &format!("/v1/logs/{log}/certificate"));
    if status == 200 {
        v["size"].as_u64().unwrap_or(0)
    } else {
        0
    }
}

/// `final_size` of `log` on node `i` (entries covered by a certificate it holds).
fn final_size(net: &Testnet, i: usize, log: &str) -> u64 {
    let (_, v) = net.get(i, "/v1/logs");
    v["logs"]
        .as_array()
        .and_then(|a| a.iter().find(|l| l["bureau"] == log))
        .and_then(|l| l["final_size"].as_u64())
        .unwrap_or(0)
}

/// A whole transfer of `person` (already registered at `origin`, known to `destination`) from
/// `origin` to `destination`; returns the permit's reference.
fn transfer(net: &Testnet, origin: usize, destination: usize, person: &str) -> String {
    let permit = reference(&post_until_ok(
        net,
        destination,
        "/v1/permits",
        &json!({"person": person, "origin": net.code(origin), "category": "spouse"}),
    ));
    let dereg = reference(&post_until_ok(
        net,
        origin,
        "/v1/deregister",
        &json!({"permit": permit}),
    ));
    post_until_ok(
        net,
        destination,
        "/v1/register",
        &json!({"deregistration": dereg, "wait_ms": 5_000}),
    );
    permit
}

/// Asserts that enrolling `person` at node `i` is refused with `error` and leaves node `i`'s own
/// log at `own_len`; returns the refusal.
#[track_caller]
fn assert_enrol_refused(
    net: &Testnet,
    i: usize,
    person: &str,
    wait_ms: u64,
    error: &str,
    own_len: u64,
) -> Value {
    let (status, v) = net.post(
        i,
        "/v1/enrol",
        &json!({"person": person, "wait_ms": wait_ms}),
    );
    let expected = if error == "arbiter_unreachable" {
        503
    } else {
        409
    };
    assert_eq!(
        (status, v["error"].as_str()),
        (expected, Some(error)),
        "{v}"
    );
    assert_eq!(
        net.log_of(i, net.code(i)).map(|l| l.0),
        Some(own_len),
        "{} wrote {v}",
        net.code(i)
    );
    let (_, shown) = net.post(i, "/v1/person", &json!({ "person": person }));
    assert_eq!(shown["registered_at"], Value::Null, "{shown}");
    v
}

/// Whether every node in `nodes` holds the same logs (length and Merkle root of each).
fn converged(net: &Testnet, nodes: &[usize]) -> bool {
    let views: Vec<_> = nodes.iter().map(|&i| net.logs(i)).collect();
    views.iter().all(|v| v == &views[0])
}

/// Whether every log's entries are all final on every node in `nodes`.
fn all_final(net: &Testnet, nodes: &[usize]) -> bool {
    nodes.iter().all(|&i| {
        net.logs(i)
            .iter()
            .all(|(log, len, _)| final_size(net, i, log) >= *len)
    })
}

#[test]
fn three_of_four_go_on_while_one_is_stopped_and_it_catches_up() {
    let started = Instant::now();
    let mut net = Testnet::new(4);
    let live = [XUHUI, WUXING, HEFEI];
    let all = [XUHUI, WUXING, HEFEI, FOURTH];

    // Someone registered in Xuhui, seen by everyone, before the outage.
    let moving = citizen_id(1);
    net.enrol(XUHUI, &moving);
    assert!(wait_until(WAIT, || converged(&net, &all)));
    let fourth = net.code(FOURTH).to_string();
    let certified_before = certificate_size(&net, XUHUI, "310104");

    let status = net.stop(FOURTH);
    assert!(status.success(), "{fourth} did not stop cleanly: {status}");
    assert!(
        wait_until(WAIT, || live.iter().all(|&i| net.nodes[i]
            .peers()
            .is_some_and(|p| !p.contains(&fourth)))),
        "the others still list {fourth} as connected"
    );

    // The three go on: enrolments everywhere (of persons whose arbiter is one of them: the
    // stopped bureau grants no claim, so a person it arbitrates cannot be enrolled now), and a
    // whole transfer Xuhui -> Wuxing, final on all three (the registration itself waits for its
    // deregistration to be final).
    let stranded = net.person_arbitrated_by(&fourth, (100..).map(citizen_id));
    let (xuhui_len, _) = net.log_of(XUHUI, "310104").expect("own log");
    let v = assert_enrol_refused(
        &net,
        XUHUI,
        &stranded,
        5_000,
        "arbiter_unreachable",
        xuhui_len,
    );
    assert!(v["message"].as_str().unwrap().contains(&fourth), "{v}");
    let mut n = 100;
    for &i in &live {
        let person = loop {
            n += 1;
            if net.arbiter_of(&citizen_id(n)) != fourth {
                break citizen_id(n);
            }
        };
        net.enrol(i, &person);
    }
    let permit = transfer(&net, XUHUI, WUXING, &moving);
    assert_transfer_final(&net, &live, &permit, 3);
    for &i in &live {
        for log in ["310104", "330502"] {
            let (len, _) = net.log_of(i, log).expect("log listed");
            assert!(
                wait_until(WAIT, || certificate_size(&net, i, log) >= len),
                "certificate of {log} on {} stays at {} < {len}",
                net.code(i),
                certificate_size(&net, i, log)
            );
        }
    }
    assert!(certificate_size(&net, XUHUI, "310104") > certified_before);
    eprintln!(
        "three bureaus finalized without {fourth} at {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // the fourth bureau comes back, catches up, and everything converges and is final on all four.
    net.start(FOURTH);
    net.wait_ready(&all, WAIT);
    assert!(
        wait_until(WAIT, || converged(&net, &all)),
        "logs differ after the restart: {:?}",
        all.iter().map(|&i| net.logs(i)).collect::<Vec<_>>()
    );
    assert_transfer_final(&net, &[FOURTH], &permit, 3);
    let health = net.nodes[FOURTH].health().expect("healthz");
    assert!(health["catch_up"]["active"].is_boolean(), "{health}");
    // It writes again, and its entry becomes final everywhere.
    let mine = citizen_id_in(&fourth, 7);
    let enrolled = net.enrol(FOURTH, &mine);
    assert!(enrolled.starts_with(&format!("{fourth}:")), "{enrolled}");
    assert!(
        wait_until(WAIT, || converged(&net, &all) && all_final(&net, &all)),
        "not everything final on all four: {:?}",
        all.iter()
            .map(|&i| net.get(i, "/v1/logs").1)
            .collect::<Vec<_>>()
    );
    eprintln!(
        "converged and final on all four at {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn a_cut_off_bureau_keeps_its_window_open_and_converges_when_the_link_returns() {
    let started = Instant::now();
    let (net, links) = Links::testnet(4);
    let others = [XUHUI, WUXING, HEFEI];
    let all = [XUHUI, WUXING, HEFEI, FOURTH];
    let fourth = net.code(FOURTH).to_string();

    // Before the cut: S lives in the fourth bureau and Wuxing has granted S a permit to move in;
    // R is enrolled in the fourth bureau (enrolling needs the network: see below); Q lives in
    // Xuhui; T lives in Xuhui and will move to Wuxing during the cut.
    let s = citizen_id_in(&fourth, 1);
    let r = citizen_id_in(&fourth, 2);
    let q = citizen_id(2);
    let t = citizen_id(3);
    net.enrol(FOURTH, &s);
    let enrol_r = net.enrol(FOURTH, &r);
    assert!(enrol_r.starts_with(&format!("{fourth}:")), "{enrol_r}");
    net.enrol(XUHUI, &q);
    net.enrol(XUHUI, &t);
    let permit_s = reference(&post_until_ok(
        &net,
        WUXING,
        "/v1/permits",
        &json!({"person": s, "origin": fourth, "category": "child"}),
    ));
    assert!(
        wait_until(WAIT, || converged(&net, &all)),
        "no convergence before the cut"
    );
    let (fourth_len_before, _) = net.log_of(XUHUI, &fourth).expect("log listed");

    links.cut(FOURTH);
    assert!(links.is_cut(FOURTH));
    assert!(
        wait_until(WAIT, || {
            net.nodes[FOURTH].peers().is_some_and(|p| p.is_empty())
                && others.iter().all(|&i| {
                    net.nodes[i]
                        .peers()
                        .is_some_and(|p| !p.contains(&fourth) && p.len() == others.len() - 1)
                })
        }),
        "the cut is not seen: {fourth} lists {:?}, the others {:?}",
        net.nodes[FOURTH].peers(),
        others
            .iter()
            .map(|&i| net.nodes[i].peers())
            .collect::<Vec<_>>()
    );
    eprintln!(
        "{fourth} cut off at {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // the fourth bureau's window stays open: a permit (for Q, from Xuhui) and S's deregistration
    // go into its own log.
    assert_eq!(net.nodes[FOURTH].health().expect("healthz")["status"], "ok");
    let permit_q = reference(&net.post_ok(
        FOURTH,
        "/v1/permits",
        &json!({"person": q, "origin": "310104", "category": "parent"}),
    ));
    let dereg_s = reference(&net.post_ok(FOURTH, "/v1/deregister", &json!({"permit": permit_s})));
    for written in [&permit_q, &dereg_s] {
        assert!(written.starts_with(&format!("{fourth}:")), "{written}");
    }
    // But it enrols nobody new. A person another bureau arbitrates: that bureau cannot be asked
    // for a claim, and nothing is written.
    let (fourth_len, _) = net.log_of(FOURTH, &fourth).expect("own log");
    assert_eq!(fourth_len, fourth_len_before + 2);
    let elsewhere =
        net.person_arbitrated_by(net.code(XUHUI), (10..).map(|n| citizen_id_in(&fourth, n)));
    assert_enrol_refused(
        &net,
        FOURTH,
        &elsewhere,
        1_000,
        "arbiter_unreachable",
        fourth_len,
    );
    // A person the fourth bureau arbitrates itself: it grants itself the claim (in its own
    // log), which no quorum can certify; no enrolment is written, and the claim is kept.
    let own = net.person_arbitrated_by(&fourth, (10..).map(|n| citizen_id_in(&fourth, n)));
    let refused =
        assert_enrol_refused(&net, FOURTH, &own, 1_000, "claim_not_final", fourth_len + 1);
    let (_, shown) = net.post(FOURTH, "/v1/person", &json!({ "person": own }));
    let history = shown["history"].as_array().expect("history");
    assert_eq!(history.len(), 1, "{shown}");
    assert_eq!(history[0]["kind"], "claim", "{shown}");
    let own_claim = history[0]["ref"].as_str().expect("ref").to_string();
    assert!(
        refused["message"].as_str().unwrap().contains(&own_claim),
        "{refused}"
    );
    // Its log: the permit, the deregistration, and the claim it granted itself.
    let (fourth_len_cut, _) = net.log_of(FOURTH, &fourth).expect("own log");
    assert_eq!(fourth_len_cut, fourth_len_before + 3);

    // The other three go on and finalize among themselves: T moves from Xuhui to Wuxing.
    let permit_t = transfer(&net, XUHUI, WUXING, &t);
    assert_transfer_final(&net, &others, &permit_t, 3);

    // Really cut: nothing of the fourth bureau's new entries reached the others, and the fourth bureau, alone, has
    // no quorum to make them final.
    for &i in &others {
        assert_eq!(
            net.log_of(i, &fourth).map(|l| l.0),
            Some(fourth_len_before),
            "{} holds entries {fourth} wrote while cut off",
            net.code(i)
        );
    }
    assert!(
        final_size(&net, FOURTH, &fourth) <= fourth_len_before,
        "{fourth}'s entries became final without a quorum"
    );
    assert!(!transfer_final(&net, FOURTH, &permit_t, 3));
    eprintln!(
        "three finalized while {fourth} was cut off, at {:.1} s; proxy connections of it \
         (forwarded, refused): {:?}",
        started.elapsed().as_secs_f64(),
        links.counts(FOURTH)
    );

    // The link returns: all four converge, and the fourth bureau's entries become final everywhere.
    links.restore(FOURTH);
    assert!(!links.is_cut(FOURTH));
    assert!(
        wait_until(WAIT, || converged(&net, &all)),
        "logs differ after the link returned: {:?}",
        all.iter().map(|&i| net.logs(i)).collect::<Vec<_>>()
    );
    let (len, root) = net.log_of(XUHUI, &fourth).expect("log listed");
    assert_eq!(len, fourth_len_cut);
    assert_eq!(net.log_of(FOURTH, &fourth), Some((len, root)));
    assert!(
        wait_until(WAIT, || all_final(&net, &all)),
        "not everything final after the link returned: {:?}",
        all.iter()
            .map(|&i| net.get(i, "/v1/logs").1)
            .collect::<Vec<_>>()
    );
    // S's transfer can now complete at Wuxing against the final deregistration, and Q's permit
    // from the fourth bureau is answered by Xuhui; both final on all four.
    post_until_ok(
        &net,
        WUXING,
        "/v1/register",
        &json!({"deregistration": dereg_s, "wait_ms": 5_000}),
    );
    post_until_ok(&net, XUHUI, "/v1/deregister", &json!({"permit": permit_q}));
    assert_transfer_final(&net, &all, &permit_s, 3);
    assert_transfer_final(&net, &all, &permit_q, 2);
    assert_transfer_final(&net, &[FOURTH], &permit_t, 3);
    // The enrolments refused during the cut go through now; the retry consumes the claim the
    // fourth bureau kept, now final.
    let enrolled = net.post_ok(FOURTH, "/v1/enrol", &json!({ "person": own }));
    assert_eq!(enrolled["claim"], own_claim.as_str(), "{enrolled}");
    assert_eq!(
        enrolled["seq"], fourth_len_cut,
        "{enrolled}: no second claim was written"
    );
    net.enrol(FOURTH, &elsewhere);
    assert!(wait_until(WAIT, || converged(&net, &all)));
    eprintln!(
        "converged and final on all four at {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
