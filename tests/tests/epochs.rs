//! Membership over time (issue 13), on a running network of real nodes, no node restarted
//! except the one whose key was stolen (a revoked key's machine is re-keyed):
//!
//! 1. four bureaus grow to six: two bureaus are added by one configuration update signed by two
//!    of the three administrators; each starts from the genesis and the fetched configuration
//!    log, catches up, and completes transfers;
//! 2. a planned key rotation: the bureau's node finds its new key in its key directory and signs
//!    everything after with it;
//! 3. a stolen key revoked from a position while its thief (a [`Liar`] holding the old key)
//!    keeps signing: what the thief signed at or after the position is dropped everywhere and
//!    refused from then on; the bureau, re-keyed, carries on at that position;
//! 4. a bureau retires after its residents moved (a merger): it can sign nothing more, its log
//!    stays, and its successor arbitrates its persons;
//! 5. a (made-up) calendar year is published;
//! 6. bad updates are refused by name and change nothing;
//!
//! with transfers between two bureaus flowing in the background throughout; then an export of
//! the whole ledger audits clean and names the revoked entries.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use hukou_protocol::{Body, BureauCode, EntryHash, Seq};
use hukou_tests::liar::Liar;
use hukou_tests::{Testnet, citizen_id, hukou, hukou_bin, post, random_hex, ref_hash, wait_until};
use serde_json::{Value, json};

/// Longest any one step may take to replicate, become final or take effect everywhere.
const WAIT: Duration = Duration::from_secs(40);

const XUHUI: usize = 0; // 310104
const WUXING: usize = 1; // 330502: its key is rotated
const HEFEI: usize = 2; // 340100: its key is stolen and revoked
const FOURTH: usize = 3; // 340104: retires

/// `POST path` on node `i` until it answers 200 ([`Testnet::post_until_ok`], within [`WAIT`]).
fn post_until_ok(net: &Testnet, i: usize, path: &str, body: &Value) -> Value {
    net.post_until_ok(i, path, body, WAIT)
}

fn reference(v: &Value) -> String {
    v["ref"].as_str().expect("ref").to_string()
}

/// Enrols `person` at `at` (waiting for its claim) and returns the enrolment's reference.
fn enrol(net: &Testnet, at: usize, person: &str) -> String {
    reference(&post_until_ok(
        net,
        at,
        "/v1/enrol",
        &json!({"person": person, "wait_ms": 10_000}),
    ))
}

/// A whole transfer of `person` (registered at `origin`) to `destination`; returns the
/// registration's reference.
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
    reference(&post_until_ok(
        net,
        destination,
        "/v1/register",
        &json!({"deregistration": dereg, "wait_ms": 10_000}),
    ))
}

/// `hukou ARGS`: (success, stdout, stderr).
fn hukou_try(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(hukou_bin())
        .args(args)
        .output()
        .expect("hukou runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn s(p: &Path) -> String {
    p.to_str().expect("utf-8 path").to_string()
}

/// Writes a proposal for the next epoch (asked of node `via`) with `flags`, signed by the first
/// `signers` administrators; returns its file.
fn proposal(net: &Testnet, via: usize, flags: &[String], signers: usize) -> PathBuf {
    let file = net.dir().join(format!("proposal-{}.json", random_hex(6)));
    let mut args: Vec<String> = vec![
        "config".into(),
        "propose".into(),
        "--node".into(),
        net.api(via).into(),
    ];
    args.extend(flags.iter().cloned());
    args.extend(["--out".into(), s(&file)]);
    hukou(&args.iter().map(String::as_str).collect::<Vec<_>>());
    for key in net.administrator_keys().iter().take(signers) {
        hukou(&["config", "sign", &s(&file), "--key", &s(key)]);
    }
    file
}

/// Submits a proposal file to node `via`: (success, JSON answer).
fn submit(net: &Testnet, via: usize, file: &Path) -> (bool, Value) {
    let (ok, out, err) = hukou_try(&[
        "config",
        "submit",
        &s(file),
        "--node",
        net.api(via),
        "--token",
        net.token(via),
        "--json",
    ]);
    let value = serde_json::from_str(out.trim())
        .unwrap_or_else(|_| panic!("submit printed no JSON: {out} {err}"));
    (ok, value)
}

/// Proposes, has two administrators sign, submits; returns the new epoch.
fn update(net: &Testnet, via: usize, flags: &[String]) -> u64 {
    let file = proposal(net, via, flags, 2);
    let (ok, answer) = submit(net, via, &file);
    assert!(ok, "update {flags:?} refused: {answer}");
    answer["epoch"].as_u64().expect("epoch")
}

fn epoch_of(net: &Testnet, i: usize) -> u64 {
    net.get(i, "/v1/config").1["epoch"].as_u64().unwrap_or(0)
}

/// Waits until every node of `nodes` is at configuration epoch `epoch`.
#[track_caller]
fn wait_epoch(net: &Testnet, nodes: &[usize], epoch: u64) {
    for &i in nodes {
        assert!(
            wait_until(WAIT, || epoch_of(net, i) == epoch),
            "{} is at epoch {}, not {epoch}",
            net.code(i),
            epoch_of(net, i)
        );
    }
}

/// Entries of `log` as node `i` holds them.
fn entries(net: &Testnet, i: usize, log: &str) -> Vec<Value> {
    net.entries(i, log)
}

fn log_len(net: &Testnet, i: usize, log: &str) -> u64 {
    net.log_of(i, log).map_or(0, |(len, _)| len)
}

/// Writes the configuration log node `from` serves into node `to`'s directory (`config.log`).
fn fetch_config_log(net: &Testnet, from: usize, to: usize) {
    let out = net.nodes[to].dir.join("config.log");
    hukou(&[
        "config",
        "fetch",
        "--node",
        net.api(from),
        "--out",
        &s(&out),
    ]);
}

/// A new key file in `dir`; returns its public key (hex).
fn new_key(path: &Path) -> String {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("key dir");
    hukou(&["keys", "gen", "--out", &s(path)])
}

/// One bureau's API, as the background traffic reaches it (without the [`Testnet`], which the
/// test keeps changing).
#[derive(Clone)]
struct Window {
    api: String,
    token: String,
    code: String,
}

impl Window {
    fn of(net: &Testnet, i: usize) -> Window {
        Window {
            api: net.api(i).to_string(),
            token: net.token(i).to_string(),
            code: net.code(i).to_string(),
        }
    }

    fn post_until_ok(&self, path: &str, body: &Value) -> Value {
        let mut last = Value::Null;
        let ok = wait_until(2 * WAIT, || {
            let (status, v) = post(&format!("{}{path}", self.api), &self.token, body);
            last = v;
            status == 200
        });
        assert!(
            ok,
            "POST {path} {body} on {} never succeeded: {last}",
            self.code
        );
        last
    }
}

/// Transfers between two bureaus, over and over, until stopped: the network keeps working
/// while its configuration changes.
struct Traffic {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Traffic {
    fn start(net: &Testnet, a: usize, b: usize, first_id: u64) -> Traffic {
        let (stop, done) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
        );
        let (wa, wb) = (Window::of(net, a), Window::of(net, b));
        // People whose arbiter is one of the two bureaus, which stay up throughout: the others
        // are stopped (revocation) or retire, and a claim their log granted just before would
        // wait for them.
        let people: Vec<String> = (first_id..)
            .map(citizen_id)
            .filter(|id| {
                let arbiter = net.arbiter_of(id);
                arbiter == wa.code || arbiter == wb.code
            })
            .take(1_000)
            .collect();
        let thread = {
            let (stop, done) = (stop.clone(), done.clone());
            std::thread::spawn(move || {
                let mut people = people.into_iter();
                while !stop.load(Ordering::Relaxed) {
                    let person = people.next().expect("enough people");
                    wa.post_until_ok("/v1/enrol", &json!({"person": person, "wait_ms": 10_000}));
                    let permit = reference(&wb.post_until_ok(
                        "/v1/permits",
                        &json!({"person": person, "origin": wa.code, "category": "spouse"}),
                    ));
                    let dereg =
                        reference(&wa.post_until_ok("/v1/deregister", &json!({"permit": permit})));
                    wb.post_until_ok(
                        "/v1/register",
                        &json!({"deregistration": dereg, "wait_ms": 10_000}),
                    );
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        Traffic {
            stop,
            done,
            thread: Some(thread),
        }
    }

    fn completed(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Waits until `more` further transfers completed.
    #[track_caller]
    fn wait_more(&self, more: u64) {
        let target = self.completed() + more;
        assert!(
            wait_until(3 * WAIT, || self.completed() >= target
                || self.thread.as_ref().is_some_and(|t| t.is_finished())),
            "background transfers stalled at {}",
            self.completed()
        );
        assert!(
            self.completed() >= target,
            "the background transfers stopped (see the panic above)"
        );
    }

    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().expect("background transfers never failed");
        }
        self.completed()
    }
}

#[test]
fn the_network_changes_members_keys_and_calendar_without_a_new_network() {
    let mut net = Testnet::new(4);
    let all4: Vec<usize> = (0..4).collect();
    // A first transfer under the genesis.
    let p0 = citizen_id(13_000);
    enrol(&net, XUHUI, &p0);
    transfer(&net, XUHUI, HEFEI, &p0);

    // ---- 1. Grow to six. ----
    let nanjing = net.prepare_new_member("320102", "南京市公安局玄武分局");
    let guangzhou = net.prepare_new_member("440106", "广州市公安局天河区分局");
    let add = |i: usize| {
        format!(
            "{},{},{},/ip4/127.0.0.1/tcp/{}",
            net.nodes[i].code, net.nodes[i].name, net.nodes[i].public_key, net.nodes[i].p2p_port
        )
    };
    let flags = vec![
        "--add".to_string(),
        add(nanjing),
        "--add".into(),
        add(guangzhou),
    ];
    assert_eq!(update(&net, XUHUI, &flags), 1);
    wait_epoch(&net, &all4, 1);
    fetch_config_log(&net, XUHUI, nanjing);
    fetch_config_log(&net, WUXING, guangzhou);
    net.start(nanjing);
    net.start(guangzhou);
    let all6: Vec<usize> = (0..6).collect();
    net.wait_ready(&all6, WAIT);
    // The new bureaus caught up: they hold every log the others hold.
    assert!(
        wait_until(WAIT, || log_len(&net, nanjing, "340100")
            == log_len(&net, XUHUI, "340100")),
        "the new bureau did not catch up"
    );
    let p1 = citizen_id(13_001);
    enrol(&net, XUHUI, &p1);
    transfer(&net, XUHUI, nanjing, &p1);
    transfer(&net, nanjing, guangzhou, &p1);

    let traffic = Traffic::start(&net, XUHUI, WUXING, 20_000);
    traffic.wait_more(1);

    // ---- 2. Rotate WUXING's key (planned). ----
    let next = net.nodes[WUXING].dir.join("keys").join("next.key");
    let rotated = new_key(&next);
    let e = update(
        &net,
        XUHUI,
        &["--rotate".into(), format!("330502,{rotated}")],
    );
    assert_eq!(e, 2);
    wait_epoch(&net, &all6, 2);
    traffic.wait_more(2);
    // WUXING signs under epoch 2 from its first entry after the rotation on: its latest entries
    // name epoch 2 (their signatures verify under the new key: the audit below checks each).
    let wuxing = entries(&net, XUHUI, "330502");
    let last = wuxing.last().expect("WUXING wrote entries");
    assert_eq!(last["epoch"], 2, "WUXING's latest entry: {last}");
    let first_e2 = wuxing
        .iter()
        .position(|e| e["epoch"] == 2)
        .expect("an epoch-2 entry");
    assert!(
        wuxing[first_e2..].iter().all(|e| e["epoch"] == 2),
        "no entry after the rotation names an earlier epoch"
    );

    // ---- 3. HEFEI's key is stolen: revoke it from a position, while the thief signs on. ----
    net.stop(HEFEI);
    let cut_at = log_len(&net, XUHUI, "340100");
    let hefei_log = entries(&net, XUHUI, "340100");
    let last_ref = hefei_log.last().expect("HEFEI has entries")["ref"]
        .as_str()
        .expect("ref")
        .to_string();
    let last_epoch = hefei_log.last().expect("entry")["epoch"]
        .as_u64()
        .expect("epoch");
    let thief = Liar::new(&net, HEFEI);
    thief.epoch.store(last_epoch as u32, Ordering::Relaxed);
    let face = thief.face(&["310104", "330502"]);
    let permit_body = |n: u64| Body::Permit {
        person: thief.tag(&citizen_id(n)),
        origin: BureauCode::new(310_104).expect("code"),
        category: hukou_protocol::Category::Spouse,
        valid_until_ms: 0,
        materials: hukou_protocol::Digest([7; 32]),
        corrects: None,
    };
    // Valid entries before the revocation (the honest nodes take them in).
    let prev = EntryHash(
        hex::decode(ref_hash(&last_ref))
            .expect("hex")
            .try_into()
            .expect("32 bytes"),
    );
    let mut stolen = vec![];
    let mut time = 0u64;
    for k in 0..2u64 {
        let prev_hash = stolen
            .last()
            .map_or(prev, hukou_protocol::SignedEntry::hash);
        let mut e = thief.entry(cut_at + k, prev_hash, permit_body(30_000 + k));
        time = time.max(e.time_ms);
        e.time_ms = time;
        if let Body::Permit { valid_until_ms, .. } = &mut e.body {
            *valid_until_ms = e.time_ms + 30 * 24 * 3600 * 1000;
        }
        stolen.push(thief.sign_entry(e));
    }
    // Served to the honest nodes' pulls, as the thief's log continuing HEFEI's.
    face.show_with_gaps(&stolen.iter().collect::<Vec<_>>(), Some(cut_at + 2));
    assert!(
        wait_until(WAIT, || log_len(&net, XUHUI, "340100") == cut_at + 2),
        "the thief's entries, valid before the revocation, were taken in"
    );
    let new_hefei = net.nodes[HEFEI].dir.join("new.key");
    let hefei_key = new_key(&new_hefei);
    let e = update(
        &net,
        XUHUI,
        &["--revoke".into(), format!("340100,{hefei_key},{cut_at}")],
    );
    assert_eq!(e, 3);
    let running: Vec<usize> = vec![XUHUI, WUXING, FOURTH, nanjing, guangzhou];
    wait_epoch(&net, &running, 3);
    for &i in &running {
        assert!(
            wait_until(WAIT, || log_len(&net, i, "340100") == cut_at),
            "{} still holds the thief's entries: {} entries of 340100",
            net.code(i),
            log_len(&net, i, "340100")
        );
    }
    // The thief signs on, under the old epoch; but the revoked key no longer opens the network:
    // every member disallowed its peer id, so nothing it signs reaches anyone (an entry that did,
    // say through a node that had not heard of the revocation, is refused as signed_after_cut,
    // and dropped with the rest once that node hears: protocol/tests/epochs.rs).
    let more = thief.sign(cut_at + 2, stolen[1].hash(), permit_body(30_100));
    face.show_with_gaps(&[&stolen[0], &stolen[1], &more], Some(cut_at + 3));
    assert!(
        wait_until(WAIT, || face.connected() == 0),
        "the members still talk to the revoked key"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(log_len(&net, XUHUI, "340100"), cut_at);
    drop(face);
    drop(thief);
    // HEFEI is re-keyed: the new key, the configuration log, a restart.
    std::fs::copy(&new_hefei, net.nodes[HEFEI].dir.join("bureau.key")).expect("new key");
    fetch_config_log(&net, XUHUI, HEFEI);
    let config = net.nodes[HEFEI].config.clone();
    let mut text = std::fs::read_to_string(&config).expect("config");
    text.push_str("config_log = \"config.log\"\n");
    std::fs::write(&config, text).expect("config");
    net.start(HEFEI);
    net.wait_ready(&all6, WAIT);
    let p2 = citizen_id(13_002);
    enrol(&net, XUHUI, &p2);
    transfer(&net, XUHUI, HEFEI, &p2);
    transfer(&net, HEFEI, guangzhou, &p2);
    let hefei_now = entries(&net, XUHUI, "340100");
    assert!(hefei_now.len() as u64 > cut_at);
    assert!(
        hefei_now[cut_at as usize..]
            .iter()
            .all(|e| e["epoch"].as_u64() >= Some(3)),
        "HEFEI's entries from the cut on name the revoking epoch or later"
    );
    traffic.wait_more(1);

    // ---- 4. FOURTH retires after its residents moved (it has none: it only arbitrated). ----
    let fourth_len = log_len(&net, XUHUI, "340104");
    assert!(
        wait_until(WAIT, || net.get(XUHUI, "/v1/logs").1["logs"]
            .as_array()
            .and_then(|a| a.iter().find(|l| l["bureau"] == "340104"))
            .and_then(|l| l["final_size"].as_u64())
            == Some(fourth_len)),
        "FOURTH's log is final"
    );
    // Too many at once: retiring two of six leaves fewer than the quorum of the old epoch.
    let too_many = proposal(
        &net,
        XUHUI,
        &[
            "--retire".into(),
            format!("340104,{fourth_len},310104"),
            "--retire".into(),
            format!("320102,{},310104", log_len(&net, XUHUI, "320102")),
        ],
        2,
    );
    let (ok, refusal) = submit(&net, XUHUI, &too_many);
    assert!(!ok);
    assert_eq!(refusal["error"], "config_quorum_impossible", "{refusal}");
    let retire = proposal(
        &net,
        XUHUI,
        &["--retire".into(), format!("340104,{fourth_len},310104")],
        2,
    );
    let (ok, answer) = submit(&net, XUHUI, &retire);
    assert!(ok, "{answer}");
    assert_eq!(answer["epoch"], 4);
    let active: Vec<usize> = vec![XUHUI, WUXING, HEFEI, nanjing, guangzhou];
    wait_epoch(&net, &active, 4);
    // The members no longer talk to a retired bureau, so its operator hands the update to its
    // node (as to any node: it is judged the same way).
    let (ok, answer) = submit(&net, FOURTH, &retire);
    assert!(ok, "{answer}");
    assert_eq!(epoch_of(&net, FOURTH), 4);
    // FOURTH signs nothing more.
    let (status, refused) = net.post(FOURTH, "/v1/enrol", &json!({"person": citizen_id(13_003)}));
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"], "bureau_retired", "{refused}");
    // Its successor now arbitrates the persons it did: enrol one of them.
    let orphan = net.person_arbitrated_by("340104", (13_100..).map(citizen_id));
    enrol(&net, WUXING, &orphan);
    let claims_by_xuhui = entries(&net, WUXING, "310104")
        .iter()
        .filter(|e| e["kind"] == "claim")
        .count();
    assert!(claims_by_xuhui > 0, "the successor granted the claim");
    assert_eq!(
        log_len(&net, XUHUI, "340104"),
        fourth_len,
        "the retired log stays"
    );
    net.stop(FOURTH);

    // ---- 5. A calendar year (made up: the real 2027 notice is not out). ----
    let year = net.dir().join("calendar-2027.txt");
    std::fs::write(
        &year,
        "# A made-up year for the test.\nyears 2027 2027\n2027-01-01 holiday 元旦\n2027-02-05 holiday 春节\n2027-02-14 workday 春节调休\n",
    )
    .expect("calendar year");
    let e = update(&net, XUHUI, &["--calendar-year".into(), s(&year)]);
    assert_eq!(e, 5);
    wait_epoch(&net, &active, 5);
    let config = net.get(HEFEI, "/v1/config").1;
    assert!(
        config["calendar_years"]
            .as_array()
            .is_some_and(|y| y.contains(&json!(2027))),
        "{config}"
    );

    // ---- 6. Bad updates change nothing. ----
    let (ok, refusal) = submit(
        &net,
        XUHUI,
        &proposal(&net, XUHUI, &["--calendar-year".into(), s(&year)], 2),
    );
    assert!(!ok);
    assert_eq!(
        refusal["error"], "config_calendar_year_published",
        "{refusal}"
    );
    let bad_year = net.dir().join("calendar-2028.txt");
    std::fs::write(&bad_year, "years 2028 2028\n2029-01-01 holiday 元旦\n").expect("year");
    let (ok, refusal) = submit(
        &net,
        XUHUI,
        &proposal(&net, XUHUI, &["--calendar-year".into(), s(&bad_year)], 2),
    );
    assert!(!ok);
    assert_eq!(refusal["error"], "config_calendar_invalid", "{refusal}");
    let one_signature = proposal(&net, XUHUI, &["--quorum".into(), "5".into()], 1);
    let (ok, refusal) = submit(&net, XUHUI, &one_signature);
    assert!(!ok);
    assert_eq!(refusal["error"], "config_too_few_signatures", "{refusal}");
    let reused = proposal(
        &net,
        XUHUI,
        &[
            "--add".into(),
            format!(
                "350102,福州市公安局鼓楼分局,{},/ip4/127.0.0.1/tcp/1",
                net.nodes[XUHUI].public_key
            ),
        ],
        2,
    );
    let (ok, refusal) = submit(&net, XUHUI, &reused);
    assert!(!ok);
    assert_eq!(refusal["error"], "config_key_reused", "{refusal}");
    // Built on an old epoch: a proposal made before another update took effect.
    let late = proposal(&net, XUHUI, &["--deadlines".into(), "2,2".into()], 2);
    update(&net, XUHUI, &["--deadlines".into(), "1,2".into()]);
    let (ok, refusal) = submit(&net, XUHUI, &late);
    assert!(!ok);
    assert!(
        ["config_conflict", "config_stale"].contains(&refusal["error"].as_str().unwrap_or("")),
        "{refusal}"
    );
    assert_eq!(epoch_of(&net, XUHUI), 6);

    let moved = traffic.finish();
    assert!(moved >= 5, "only {moved} background transfers completed");

    // ---- The whole ledger audits clean and names the revoked entries. ----
    let bundle = net.dir().join("bundle");
    hukou(&[
        "export",
        "--node",
        net.api(XUHUI),
        "--genesis",
        &s(&net.dir().join("genesis.toml")),
        "--out",
        &s(&bundle),
    ]);
    let (ok, out, err) = hukou_try(&["audit", &s(&bundle), "--json"]);
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|_| panic!("{out}{err}"));
    assert!(ok, "the audit is not clean: {report}");
    assert_eq!(report["totals"]["violations"], 0, "{report}");
    let revoked = report["revoked"].as_array().cloned().unwrap_or_default();
    assert!(
        revoked
            .iter()
            .any(|r| r["log"] == "340100" && r["seq"] == cut_at),
        "the audit names the revoked entries: {}",
        report["revoked"]
    );
    let _ = Seq(0);
}
