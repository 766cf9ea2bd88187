//! Witness committees on real nodes (issue 14): eight bureaus in four provinces switch to drawn
//! committees of four (one witness per province) by a configuration update; then a log's
//! committee quorum makes a deregistration final with every other bureau stopped, and a whole
//! province stopped blocks no transfer among the others.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use hukou_tests::{Testnet, citizen_id_in, hukou_bin, random_hex, wait_until};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(40);

fn s(p: &Path) -> String {
    p.to_str().expect("utf-8 path").to_string()
}

fn hukou_ok(args: &[&str]) -> String {
    let out = Command::new(hukou_bin())
        .args(args)
        .output()
        .expect("hukou runs");
    assert!(
        out.status.success(),
        "hukou {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Proposes `flags` on node `via`, signed by two of the three administrators, and submits it.
fn update(net: &Testnet, via: usize, flags: &[&str]) -> Value {
    let file: PathBuf = net.dir().join(format!("proposal-{}.json", random_hex(6)));
    let mut args = vec!["config", "propose", "--node", net.api(via)];
    args.extend(flags);
    let out = s(&file);
    args.extend(["--out", &out]);
    hukou_ok(&args);
    for key in net.administrator_keys().iter().take(2) {
        hukou_ok(&["config", "sign", &out, "--key", &s(key)]);
    }
    let answer = hukou_ok(&[
        "config",
        "submit",
        &out,
        "--node",
        net.api(via),
        "--token",
        net.token(via),
        "--json",
    ]);
    serde_json::from_str(answer.trim()).expect("submit answers JSON")
}

fn reference(v: &Value) -> String {
    v["ref"].as_str().expect("ref").to_string()
}

fn enrol(net: &Testnet, at: usize, person: &str) {
    net.post_until_ok(
        at,
        "/v1/enrol",
        &json!({"person": person, "wait_ms": 10_000}),
        WAIT,
    );
}

/// A whole transfer of `person` from `origin` to `destination`; returns the registration.
fn transfer(net: &Testnet, origin: usize, destination: usize, person: &str) -> Value {
    let permit = reference(&net.post_until_ok(
        destination,
        "/v1/permits",
        &json!({"person": person, "origin": net.code(origin), "category": "spouse"}),
        WAIT,
    ));
    let dereg =
        reference(&net.post_until_ok(origin, "/v1/deregister", &json!({"permit": permit}), WAIT));
    net.post_until_ok(
        destination,
        "/v1/register",
        &json!({"deregistration": dereg, "wait_ms": 10_000}),
        WAIT,
    )
}

/// The witnesses of `log` in node `i`'s configuration.
fn committee(net: &Testnet, i: usize, log: &str) -> Vec<String> {
    let (_, config) = net.get(i, "/v1/config");
    let logs = config["committees"]["logs"].as_array().expect("drawn");
    let entry = logs
        .iter()
        .find(|l| l["bureau"] == log)
        .expect("a committee per member");
    entry["witnesses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().to_string())
        .collect()
}

fn index_of(net: &Testnet, code: &str, n: usize) -> usize {
    (0..n).find(|&i| net.code(i) == code).expect("a bureau")
}

#[test]
fn a_committee_quorum_finalises_alone_and_a_stopped_province_blocks_no_one_else() {
    const N: usize = 8;
    let mut net = Testnet::new(N);
    let answer = update(&net, 0, &["--committee-size", "4"]);
    assert_eq!(answer["epoch"], 1, "{answer}");
    let all: Vec<usize> = (0..N).collect();
    assert!(
        wait_until(WAIT, || all.iter().all(|&i| {
            net.get(i, "/v1/config").1["committees"]["mode"] == "drawn"
        })),
        "every node holds epoch 1 with drawn committees"
    );
    let (_, config) = net.get(0, "/v1/config");
    assert_eq!(config["committees"]["size"], 4);
    assert_eq!(config["committees"]["province_cap"], 1);
    for l in config["committees"]["logs"].as_array().unwrap() {
        let witnesses: Vec<&str> = l["witnesses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_str().unwrap())
            .collect();
        assert_eq!(witnesses.len(), 4, "{l}");
        assert_eq!(l["quorum"], 3);
        let mut provinces: Vec<&str> = witnesses.iter().map(|w| &w[..2]).collect();
        provinces.sort_unstable();
        provinces.dedup();
        assert_eq!(provinces.len(), 4, "one witness per province: {l}");
    }

    // Everyone to be moved is enrolled while the whole network is up (each enrolment waits for
    // a claim certified by its arbiter's committee).
    let people: Vec<String> = (0..3).map(|k| citizen_id_in("340100", 700 + k)).collect();
    let origin = 2; // 340100
    enrol(&net, origin, &people[0]);
    enrol(&net, 2, &people[1]); // 340100, moved while Shanghai is down
    enrol(&net, 1, &people[2]); // 330502, moved while Shanghai is down

    // 1. Only the origin, the destination and three of the origin's committee run: far fewer
    //    than the two thirds of all members (6 of 8) the first design needed, and enough.
    let witnesses = committee(&net, 0, net.code(origin));
    let destination = (0..N)
        .find(|&i| i != origin && !witnesses.iter().any(|w| w == net.code(i)))
        .expect("a bureau off the committee");
    let mut running: Vec<usize> = vec![origin, destination];
    running.extend(witnesses.iter().take(3).map(|w| index_of(&net, w, N)));
    let stopped: Vec<usize> = (0..N).filter(|i| !running.contains(i)).collect();
    assert!(running.len() < 6, "running {running:?}");
    for &i in &stopped {
        net.stop(i);
    }
    let registration = transfer(&net, origin, destination, &people[0]);
    assert_eq!(registration["kind"], "registration", "{registration}");
    for &i in &stopped {
        net.start(i);
    }
    net.wait_ready(&all, WAIT);

    // 2. A whole province (Shanghai: 310104 and 310115) stops. Every committee holds at most one
    //    of its bureaus, so every other log's committee keeps its quorum.
    let shanghai: Vec<usize> = (0..N).filter(|&i| net.code(i).starts_with("31")).collect();
    assert_eq!(shanghai.len(), 2);
    for &i in &shanghai {
        net.stop(i);
    }
    let a = transfer(&net, 2, 4, &people[1]); // 340100 → 320506
    assert_eq!(a["kind"], "registration", "{a}");
    let b = transfer(&net, 1, 3, &people[2]); // 330502 → 340104
    assert_eq!(b["kind"], "registration", "{b}");
    // Every running node sees both people registered at their destinations.
    for i in (0..N).filter(|i| !shanghai.contains(i)) {
        for (person, at) in [(&people[1], net.code(4)), (&people[2], net.code(3))] {
            assert!(
                wait_until(WAIT, || {
                    let (_, v) = net.post(i, "/v1/person", &json!({"person": person}));
                    v["registered_at"] == at
                }),
                "node {} sees {person} registered at {at}",
                net.code(i)
            );
        }
    }

    // 3. What every verifier checks agrees: the exported ledger audits clean against the
    //    committees, and a registration certificate (户籍证明) of a person whose destination's log
    //    was certified by its committee verifies offline with the configuration log.
    let bundle = net.dir().join("bundle");
    hukou_ok(&[
        "export",
        "--node",
        net.api(2),
        "--genesis",
        &s(&net.dir().join("genesis.toml")),
        "--out",
        &s(&bundle),
    ]);
    let out = Command::new(hukou_bin())
        .args(["audit", &s(&bundle), "--json"])
        .output()
        .expect("hukou runs");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "audit: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(out.status.success(), "the audit is not clean: {report}");
    assert_eq!(report["totals"]["violations"], 0, "{report}");
    assert_eq!(
        report["epochs"].as_array().map(Vec::len),
        Some(2),
        "{report}"
    );

    let certificate = net.post_until_ok(
        4,
        "/v1/person/certificate",
        &json!({"person": people[1]}),
        WAIT,
    );
    let file = net.dir().join("certificate.hukou");
    std::fs::write(
        &file,
        hex::decode(certificate["file"].as_str().expect("file")).expect("hex"),
    )
    .expect("write");
    let config_log = net.dir().join("config.log");
    hukou_ok(&[
        "config",
        "fetch",
        "--node",
        net.api(4),
        "--out",
        &s(&config_log),
    ]);
    let verified = hukou_ok(&[
        "verify-certificate",
        &s(&file),
        "--genesis",
        &s(&net.dir().join("genesis.toml")),
        "--config-log",
        &s(&config_log),
        "--json",
    ]);
    let verified: Value = serde_json::from_str(verified.trim()).expect("JSON");
    assert_eq!(verified["certificate_epoch"], 1, "{verified}");
}
