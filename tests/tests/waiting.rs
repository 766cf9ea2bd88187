//! Why a step is waiting, visible (issue 14, item 3), with real processes: four bureaus, two of
//! them stopped (3 is the quorum of 4). A deregistration at a running bureau cannot become final;
//! the registration at the other running bureau is refused as `deregistration_not_final`, and the
//! refusal names the log, its committee and quorum, the two bureaus that cosigned (the author
//! cosigns its own log, and the destination witnesses it, while everyone witnesses every log) and
//! exactly the two stopped bureaus as missing and not connected; the network page lists the
//! waiting log and the missing bureaus by name. With one stopped bureau back, the registration
//! goes through and `/v1/finality` no longer lists the log.

use std::time::Duration;

use hukou_tests::{BUREAUS, Testnet, citizen_id, get_text, wait_until};
use serde_json::{Value, json};

/// Longest any one step may take to replicate or become final.
const WAIT: Duration = Duration::from_secs(20);

const XUHUI: usize = 0; // 310104: the origin, running
const WUXING: usize = 1; // 330502: the destination, running
const HEFEI: usize = 2; // 340100: stopped, then restarted
const SHUSHAN: usize = 3; // 340104: stopped

fn reference(v: &Value) -> String {
    v["ref"].as_str().expect("ref").to_string()
}

fn codes(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|c| c.as_str().expect("code").to_string())
        .collect()
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

#[test]
fn a_registration_waiting_for_its_committee_names_who_is_missing() {
    let mut net = Testnet::new(4);
    let all = [XUHUI, WUXING, HEFEI, SHUSHAN];
    let person = citizen_id(7);
    net.enrol(XUHUI, &person);
    // Everyone holds the enrolment, final, so the destination can name the person in a permit.
    let (enrolled, _) = net.log_of(XUHUI, "310104").expect("own log");
    assert!(wait_until(WAIT, || all
        .iter()
        .all(|&i| final_size(&net, i, "310104") == enrolled)));

    for i in [HEFEI, SHUSHAN] {
        let status = net.stop(i);
        assert!(
            status.success(),
            "{} did not stop cleanly: {status}",
            net.code(i)
        );
    }
    let stopped = [net.code(HEFEI).to_string(), net.code(SHUSHAN).to_string()];
    assert!(
        wait_until(WAIT, || [XUHUI, WUXING].iter().all(|&i| net.nodes[i]
            .peers()
            .is_some_and(|p| stopped.iter().all(|s| !p.contains(s))))),
        "the running bureaus still list a stopped one as connected"
    );

    let permit = reference(&net.post_until_ok(
        WUXING,
        "/v1/permits",
        &json!({"person": person, "origin": "310104", "category": "spouse"}),
        WAIT,
    ));
    let deregistration =
        reference(&net.post_until_ok(XUHUI, "/v1/deregister", &json!({"permit": permit}), WAIT));
    let (len, _) = net.log_of(XUHUI, "310104").expect("own log");
    assert_eq!(len, enrolled + 1);
    let (wuxing_len, _) = net.log_of(WUXING, "330502").expect("own log");

    // Unknown until the deregistration reaches the destination, then refused as not final; the
    // refusal names both running bureaus once their cosignatures of the checkpoint covering it
    // arrived. Nothing is written by a refusal.
    let register = json!({"deregistration": deregistration});
    let mut last = Value::Null;
    let reported = wait_until(WAIT, || {
        let (status, v) = net.post(WUXING, "/v1/register", &register);
        if status == 404 && v["error"] == "unknown_reference" {
            return false; // the deregistration has not reached the destination yet
        }
        assert_eq!(status, 409, "{v}");
        assert_eq!(v["error"], "deregistration_not_final", "{v}");
        let ready = v["waiting"]["size"].as_u64().is_some_and(|s| s >= len)
            && v["waiting"]["cosigned"]
                .as_array()
                .is_some_and(|c| c.len() == 2);
        last = v;
        ready
    });
    assert!(reported, "the refusal never named both cosigners: {last}");
    let w = &last["waiting"];
    assert_eq!(w["log"], "310104", "{last}");
    assert_eq!(w["log_name"], BUREAUS[XUHUI].1, "{last}");
    assert_eq!(w["size"], len, "{last}");
    assert_eq!(w["final_size"], enrolled, "{last}");
    assert_eq!(w["quorum"], 3, "{last}");
    assert_eq!(
        codes(&w["committee"]),
        ["310104", "330502", "340100", "340104"],
        "{last}"
    );
    assert_eq!(codes(&w["cosigned"]), ["310104", "330502"], "{last}");
    let missing = w["missing"].as_array().expect("missing");
    assert_eq!(missing.len(), 2, "{last}");
    for (m, i) in missing.iter().zip([HEFEI, SHUSHAN]) {
        assert_eq!(m["bureau"], BUREAUS[i].0, "{last}");
        assert_eq!(m["name"], BUREAUS[i].1, "{last}");
        assert_eq!(m["connected"], false, "{last}");
        // They cosigned the enrolment before they stopped.
        assert!(m["last_heard_ms"].as_u64().is_some(), "{last}");
    }
    assert!(w["since_ms"].as_u64().is_some(), "{last}");
    let message = last["message"].as_str().expect("message");
    assert!(
        message.contains(
            "log 310104 (上海市公安局徐汇分局) needs 3 cosignatures of its committee \
             310104, 330502, 340100, 340104; it has 2 (310104, 330502); missing: \
             340100 合肥市公安局 (not connected, last heard"
        ),
        "{message}"
    );
    assert!(
        message.contains("340104 合肥市公安局蜀山分局 (not connected, last heard"),
        "{message}"
    );
    assert_eq!(
        net.log_of(WUXING, "330502").expect("own log").0,
        wuxing_len,
        "a refusal wrote nothing"
    );

    // The same facts on /v1/finality and on the network page.
    let (status, finality) = net.get(WUXING, "/v1/finality");
    assert_eq!(status, 200);
    let listed = finality["waiting"]
        .as_array()
        .expect("waiting")
        .iter()
        .find(|x| x["log"] == "310104")
        .unwrap_or_else(|| panic!("310104 not listed: {finality}"));
    assert_eq!(listed["quorum"], 3);
    assert_eq!(listed["missing"], w["missing"], "{finality}");
    let witnesses = finality["witnesses"].as_array().expect("witnesses");
    assert_eq!(witnesses.len(), 4, "{finality}");
    let (status, page) = get_text(&format!("{}/ui/network", net.api(WUXING)));
    assert_eq!(status, 200);
    let section = page
        .split("id=\"waiting-logs\"")
        .nth(1)
        .unwrap_or_else(|| panic!("no waiting section: {page}"));
    assert!(section.contains("待确认的日志"), "{section}");
    assert!(section.contains("data-log=\"310104\""), "{section}");
    assert!(section.contains("合肥市公安局（未连接，自 "), "{section}");
    assert!(
        section.contains("合肥市公安局蜀山分局（未连接，自 "),
        "{section}"
    );
    assert!(section.contains("2 / 3"), "{section}");

    // One stopped bureau back: a quorum of three cosigns, and the registration goes through.
    net.start(HEFEI);
    net.wait_ready(&[XUHUI, WUXING, HEFEI], WAIT);
    net.post_until_ok(
        WUXING,
        "/v1/register",
        &json!({"deregistration": deregistration, "wait_ms": 5_000}),
        WAIT,
    );
    let (_, finality) = net.get(WUXING, "/v1/finality");
    assert!(
        finality["waiting"]
            .as_array()
            .expect("waiting")
            .iter()
            .all(|x| x["log"] != "310104"),
        "{finality}"
    );
    // Nothing waits once the destination's own registration is certified too; the page then
    // shows no waiting section.
    assert!(
        wait_until(WAIT, || net.get(WUXING, "/v1/finality").1["waiting"]
            .as_array()
            .is_some_and(Vec::is_empty)),
        "{}",
        net.get(WUXING, "/v1/finality").1
    );
    let (_, page) = get_text(&format!("{}/ui/network", net.api(WUXING)));
    assert!(!page.contains("waiting-logs"), "{page}");
}
