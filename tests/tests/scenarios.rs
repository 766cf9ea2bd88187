//! Every domain case `testnet/demo.sh` plays (`testnet/scenarios.py`, from `../shared/DOMAIN.md`),
//! as an integration test on its own small network of real `hukou` processes, with the outcome
//! checked: references, statuses, refusal names, working-day deadlines, finality, and what a
//! bureau that took no part sees.
//!
//! The bureaus are those of [`hukou_tests::BUREAUS`]: 310104 上海市公安局徐汇分局, 330502
//! 湖州市公安局吴兴分局, 340100 合肥市公安局, 340104 合肥市公安局蜀山分局 (the last two in one
//! province, Anhui, for the in-province case).

use std::io::BufRead as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hukou_tests::{Testnet, citizen_id_born, citizen_id_in, hukou_bin, wait_until};
use serde_json::{Value, json};

const SHANGHAI: usize = 0; // 310104 上海市公安局徐汇分局
const HUZHOU: usize = 1; // 330502 湖州市公安局吴兴分局
const HEFEI: usize = 2; // 340100 合肥市公安局
const SHUSHAN: usize = 3; // 340104 合肥市公安局蜀山分局

/// Replication, finality and look-ups: each wait is bounded by this.
const WAIT: Duration = Duration::from_secs(20);

/// `wait_ms` of a registration: the node waits this long for the removal to be final (below the
/// harness's 20 s HTTP timeout; with every bureau up it is final in ~100 ms).
const REGISTER_WAIT_MS: u64 = 15_000;

// ---------------------------------------------------------------------------------------------
// Helpers.

fn s(v: &Value, field: &str) -> String {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("no string {field:?} in {v}"))
        .to_string()
}

/// The seq of a reference `CODE:SEQ:HASH`.
fn seq_of(reference: &str) -> u64 {
    reference
        .split(':')
        .nth(1)
        .and_then(|x| x.parse().ok())
        .unwrap_or_else(|| panic!("not a reference: {reference}"))
}

/// The author of a reference `CODE:SEQ:HASH`.
fn author_of(reference: &str) -> &str {
    reference.split(':').next().expect("author")
}

/// Waits until node `i` holds the entry `reference`.
fn wait_entry(net: &Testnet, i: usize, reference: &str) {
    let (log, seq) = (author_of(reference), seq_of(reference));
    assert!(
        wait_until(WAIT, || net
            .log_of(i, log)
            .is_some_and(|(len, _)| len > seq)),
        "{} did not receive {reference} within {WAIT:?}",
        net.code(i)
    );
}

/// The entry `reference` as node `i` holds it (`/v1/logs/{code}/entries`), checked to be it.
fn entry(net: &Testnet, i: usize, reference: &str) -> Value {
    wait_entry(net, i, reference);
    let path = format!(
        "/v1/logs/{}/entries?from={}&max=1",
        author_of(reference),
        seq_of(reference)
    );
    // The log's length counts entries applied; the entries route serves them once durable (a
    // flush later, a few ms): wait for that too.
    let mut last = Value::Null;
    let served = wait_until(WAIT, || {
        let (status, v) = net.get(i, &path);
        assert_eq!(status, 200, "GET {path}: {v}");
        last = v;
        last["entries"][0]["ref"].is_string()
    });
    assert!(served, "GET {path} never served {reference}: {last}");
    let e = last["entries"][0].clone();
    assert_eq!(e["ref"], reference, "{last}");
    e
}

/// `POST /v1/person` at node `i`.
fn person(net: &Testnet, i: usize, id: &str) -> Value {
    let (status, v) = net.post(i, "/v1/person", &json!({ "person": id }));
    assert_eq!(status, 200, "person look-up at {}: {v}", net.code(i));
    v
}

/// Waits until node `i` sees `id` registered at `bureau` (and only there).
fn wait_registered_at(net: &Testnet, i: usize, id: &str, bureau: &str) -> Value {
    // The history lists durable entries only, so it may trail the registration by one flush:
    // wait for both.
    let seen = wait_until(WAIT, || {
        let p = person(net, i, id);
        p["registered_at"] == bureau && p["history"].as_array().is_some_and(|h| !h.is_empty())
    });
    let p = person(net, i, id);
    assert!(
        seen,
        "{} does not see {id} registered at {bureau}: {p}",
        net.code(i)
    );
    assert_eq!(p["duplicate"], false, "{p}");
    assert_eq!(p["records"].as_array().map(Vec::len), Some(1), "{p}");
    assert_eq!(p["records"][0]["bureau"], bureau, "{p}");
    assert_eq!(p["in_transit"], json!([]), "{p}");
    p
}

/// `GET /v1/transfers/{reference}` at node `i`.
fn transfer(net: &Testnet, i: usize, reference: &str) -> Value {
    let (status, v) = net.get(i, &format!("/v1/transfers/{reference}"));
    assert_eq!(status, 200, "transfer {reference} at {}: {v}", net.code(i));
    v
}

/// Waits until node `i` shows the transfer of `reference` with `status` and every recorded step
/// final; returns the view.
fn wait_transfer(net: &Testnet, i: usize, reference: &str, status: &str) -> Value {
    let done = wait_until(WAIT, || {
        let (code, t) = net.get(i, &format!("/v1/transfers/{reference}"));
        code == 200 && t["status"] == status && t["final"] == true
    });
    let t = transfer(net, i, reference);
    assert!(
        done,
        "{} never showed {reference} {status} and final: {t}",
        net.code(i)
    );
    for step in t["steps"].as_array().expect("steps") {
        if step.get("ref").is_some() {
            assert_eq!(step["final"], true, "step not final: {t}");
        }
    }
    t
}

/// The names of a transfer's steps, in order.
fn step_names(t: &Value) -> Vec<String> {
    t["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|x| s(x, "step"))
        .collect()
}

/// The step named `name` of a transfer view.
fn step<'a>(t: &'a Value, name: &str) -> &'a Value {
    t["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|x| x["step"] == name)
        .unwrap_or_else(|| panic!("no {name} step in {t}"))
}

/// A deadline met: 1 working day, not overdue. These tests run at the real date, so at the end
/// of December (or in a year whose calendar the binary lacks) the deadline needs a year the
/// node's calendar does not cover: then it must say so (`calendar_year_missing`), never guess,
/// and never call the act overdue.
fn assert_one_working_day_met(deadline: &Value, what: &str) {
    assert_eq!(deadline["working_days"], 1, "{what}: {deadline}");
    if deadline["deadline_unknown"] == "calendar_year_missing" {
        assert!(
            deadline["calendar_year_missing"].as_i64().is_some(),
            "{what}: {deadline}"
        );
        assert_eq!(deadline["deadline"], Value::Null, "{what}: {deadline}");
        assert_eq!(
            deadline["working_days_overdue"],
            Value::Null,
            "{what}: {deadline}"
        );
        assert_ne!(deadline["overdue"], true, "{what}: {deadline}");
        return;
    }
    assert_eq!(
        deadline["deadline_unknown"],
        Value::Null,
        "{what}: {deadline}"
    );
    assert_eq!(deadline["overdue"], false, "{what}: {deadline}");
    assert_eq!(deadline["working_days_overdue"], 0, "{what}: {deadline}");
    assert!(
        deadline["deadline"].as_str().is_some_and(|d| d.len() == 10),
        "{what}: {deadline}"
    );
}

/// Posts `body` to `path` at node `i`, expecting the rulebook's (or the API's) refusal `name`
/// with HTTP `status`.
fn refused(net: &Testnet, i: usize, path: &str, body: Value, status: u16, name: &str) -> Value {
    let (got, v) = net.post(i, path, &body);
    assert_eq!(
        (got, v["error"].as_str()),
        (status, Some(name)),
        "POST {path} {body} at {}: {v}",
        net.code(i)
    );
    v
}

/// Issues a permit at the destination `dest` naming `origin_i` as origin, and waits until it is
/// in the origin's inbox; returns the permit's reference.
fn issue_permit(net: &Testnet, dest: usize, origin_i: usize, id: &str, category: &str) -> String {
    let p = net.post_ok(
        dest,
        "/v1/permits",
        &json!({"person": id, "origin": net.code(origin_i), "category": category}),
    );
    assert_eq!(p["kind"], "permit", "{p}");
    let r = s(&p, "ref");
    assert_eq!(author_of(&r), net.code(dest), "{p}");
    assert!(
        wait_until(WAIT, || in_inbox(
            net,
            origin_i,
            "permits_awaiting_removal",
            "permit",
            &r
        )),
        "permit {r} never reached {}'s inbox: {}",
        net.code(origin_i),
        net.get(origin_i, "/v1/inbox").1
    );
    r
}

/// Whether node `i`'s inbox list `list` has an item whose `field` is `reference`.
fn in_inbox(net: &Testnet, i: usize, list: &str, field: &str, reference: &str) -> bool {
    let (_, inbox) = net.get(i, "/v1/inbox");
    inbox[list]
        .as_array()
        .is_some_and(|a| a.iter().any(|x| x[field] == reference))
}

/// Deregisters at the origin against `permit` (with `extra` fields, e.g. `new_head`).
fn deregister(net: &Testnet, origin_i: usize, permit: &str, extra: Value) -> String {
    let mut body = json!({ "permit": permit });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let d = net.post_ok(origin_i, "/v1/deregister", &body);
    assert_eq!(d["kind"], "deregistration", "{d}");
    assert_eq!(d["acted_on"], permit, "{d}");
    s(&d, "ref")
}

/// Registers at the destination against `dereg` (waiting for it to be final), with `extra`
/// fields (household, relation); returns the answer.
fn register(net: &Testnet, dest: usize, dereg: &str, extra: Value) -> Value {
    let mut body = json!({ "deregistration": dereg, "wait_ms": REGISTER_WAIT_MS });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let r = net.post_ok(dest, "/v1/register", &body);
    assert_eq!(r["kind"], "registration", "{r}");
    assert_eq!(r["acted_on"], dereg, "{r}");
    r
}

/// A person's history as (kind, author) pairs.
fn history(p: &Value) -> Vec<(String, String)> {
    p["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|h| (s(h, "kind"), s(h, "bureau")))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// 1. DOMAIN process 1: Shanghai–Zhejiang online transfer, spouse reliance.

#[test]
fn shanghai_zhejiang_spouse_reliance() {
    let net = Testnet::new(3);
    let (origin, dest, third) = (SHANGHAI, HUZHOU, HEFEI);
    let wife = citizen_id_in("330502", 1);
    let husband = citizen_id_in("310104", 2);

    let home = net.post_ok(dest, "/v1/enrol", &json!({ "person": wife }));
    let household = home["household"].as_u64().expect("household");
    net.enrol(origin, &husband);

    // 330502 grants the permit (准迁证); it reaches 310104's inbox with a 1-working-day deadline.
    let permit = issue_permit(&net, dest, origin, &husband, "spouse");
    let (_, inbox) = net.get(origin, "/v1/inbox");
    let waiting = inbox["permits_awaiting_removal"]
        .as_array()
        .expect("list")
        .iter()
        .find(|p| p["permit"] == permit.as_str())
        .expect("in the inbox")
        .clone();
    assert_eq!(waiting["destination"], "330502", "{waiting}");
    assert_eq!(waiting["category"], "spouse", "{waiting}");
    assert_eq!(waiting["expired"], false, "{waiting}");
    assert_one_working_day_met(&waiting["deadline"], "origin's inbox");

    // 310104 removes him (迁出); 330502 registers him into his wife's household (落户).
    let dereg = deregister(&net, origin, &permit, json!({}));
    assert_eq!(author_of(&dereg), "310104");
    let reg = register(
        &net,
        dest,
        &dereg,
        json!({"household": household, "relation": "spouse"}),
    );
    let reg_ref = s(&reg, "ref");
    assert_eq!(author_of(&reg_ref), "330502", "{reg}");
    assert_eq!(reg["household"], household, "{reg}");

    // Hefei, which took no part, sees the whole transfer, final, both deadlines met.
    let t = wait_transfer(&net, third, &permit, "registered");
    assert_eq!(
        (&t["origin"], &t["destination"], &t["category"]),
        (&json!("310104"), &json!("330502"), &json!("spouse")),
        "{t}"
    );
    assert_eq!(
        step_names(&t),
        ["permit", "deregistration", "registration"],
        "{t}"
    );
    let refs: Vec<&str> = t["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|x| x["ref"].as_str())
        .collect();
    assert_eq!(
        refs,
        [permit.as_str(), dereg.as_str(), reg_ref.as_str()],
        "{t}"
    );
    assert_one_working_day_met(&step(&t, "deregistration")["deadline"], "removal");
    assert_one_working_day_met(&step(&t, "registration")["deadline"], "registration");
    // The same view from the permit's own bureau and from any step's reference.
    assert_eq!(transfer(&net, dest, &reg_ref)["steps"], t["steps"]);
    assert_eq!(transfer(&net, origin, &dereg)["status"], "registered");

    // He is registered at 330502, in her household, and nowhere else; she still heads it.
    let p = wait_registered_at(&net, third, &husband, "330502");
    assert_eq!(p["records"][0]["household"], household, "{p}");
    assert_eq!(p["records"][0]["head"], false, "{p}");
    assert_eq!(p["records"][0]["since"], reg_ref.as_str(), "{p}");
    // His enrolment consumed a claim his arbiter granted first.
    let arbiter = net.arbiter_of(&husband);
    assert_eq!(
        history(&p),
        pairs(&[
            ("claim", &arbiter),
            ("enrol", "310104"),
            ("permit", "330502"),
            ("deregistration", "310104"),
            ("registration", "330502"),
        ]),
        "{p}"
    );
    wait_registered_at(&net, origin, &husband, "330502");
    let w = wait_registered_at(&net, third, &wife, "330502");
    assert_eq!(w["records"][0]["head"], true, "{w}");
    // Nothing is left in either inbox.
    assert!(!in_inbox(
        &net,
        origin,
        "permits_awaiting_removal",
        "permit",
        &permit
    ));
    assert!(!in_inbox(
        &net,
        dest,
        "removals_awaiting_registration",
        "deregistration",
        &dereg
    ));
}

// ---------------------------------------------------------------------------------------------
// 2. DOMAIN process 2: Anhui in-province one-stop transfer of a household head, new head named.

#[test]
fn anhui_in_province_transfer_of_a_household_head() {
    let net = Testnet::new(4);
    let (origin, dest, third) = (SHUSHAN, HEFEI, SHANGHAI);
    assert_eq!(
        (net.code(origin), net.code(dest)),
        ("340104", "340100"),
        "two bureaus of one province"
    );
    let head = citizen_id_in("340104", 10);
    let spouse = citizen_id_in("340104", 11);
    let child = citizen_id_in("340104", 12);
    let neighbour = citizen_id_in("340104", 13);

    let home = net.post_ok(origin, "/v1/enrol", &json!({ "person": head }));
    let household = home["household"].as_u64().expect("household");
    for (who, relation) in [(&spouse, "spouse"), (&child, "child")] {
        net.post_ok(
            origin,
            "/v1/enrol",
            &json!({"person": who, "household": household, "relation": relation}),
        );
    }
    net.enrol(origin, &neighbour); // heads a household of their own

    let permit = issue_permit(&net, dest, origin, &head, "parent");

    // The head cannot leave without a successor, nor name one from another household.
    refused(
        &net,
        origin,
        "/v1/deregister",
        json!({ "permit": permit }),
        409,
        "head_leaving_without_successor",
    );
    refused(
        &net,
        origin,
        "/v1/deregister",
        json!({"permit": permit, "new_head": neighbour}),
        409,
        "successor_not_in_household",
    );
    // Named, the spouse heads the household at the origin.
    let dereg = deregister(&net, origin, &permit, json!({ "new_head": spouse }));
    let e = entry(&net, dest, &dereg);
    assert_eq!(
        e["body"]["new_head_tag"],
        person(&net, dest, &spouse)["person_tag"],
        "{e}"
    );
    let reg = register(&net, dest, &dereg, json!({}));
    let reg_ref = s(&reg, "ref");

    // A bureau in another province sees the former head registered at 340100, heading a new
    // household there, and the spouse heading the old one at 340104.
    let t = wait_transfer(&net, third, &permit, "registered");
    assert_eq!(
        step_names(&t),
        ["permit", "deregistration", "registration"],
        "{t}"
    );
    assert_one_working_day_met(&step(&t, "deregistration")["deadline"], "removal");
    assert_one_working_day_met(&step(&t, "registration")["deadline"], "registration");
    let moved = wait_registered_at(&net, third, &head, "340100");
    assert_eq!(moved["records"][0]["head"], true, "{moved}");
    assert_eq!(moved["records"][0]["since"], reg_ref.as_str(), "{moved}");
    for i in [origin, third] {
        let sp = wait_registered_at(&net, i, &spouse, "340104");
        assert_eq!(sp["records"][0]["head"], true, "{sp}");
        assert_eq!(sp["records"][0]["household"], household, "{sp}");
        let ch = wait_registered_at(&net, i, &child, "340104");
        assert_eq!(ch["records"][0]["head"], false, "{ch}");
        assert_eq!(ch["records"][0]["household"], household, "{ch}");
    }
    // The spouse now heads it: naming them again is refused.
    refused(
        &net,
        origin,
        "/v1/head-change",
        json!({"household": household, "new_head": spouse}),
        409,
        "already_head",
    );
}

// ---------------------------------------------------------------------------------------------
// 3. DOMAIN process 4: a newborn registered across provinces.

#[test]
fn newborn_registered_at_the_parents_bureau_seen_in_other_provinces() {
    // The parents' registration is in Huzhou (330502); they live in Shanghai (310104), whose
    // bureau took the application in the domain's process. The API records only the birth
    // itself, by the bureau of registration (see the report: no field for the bureau that took
    // the application, nor a 2-working-day deadline for the decision).
    let net = Testnet::new(3);
    let (registry, lives, third) = (HUZHOU, SHANGHAI, HEFEI);
    let mother = citizen_id_in("330502", 20);
    let father = citizen_id_in("330502", 21);
    // Born in Shanghai a month ago: a birth is registered within six years of the birth date.
    let baby = citizen_id_born("310104", 30, 22);

    let home = net.post_ok(registry, "/v1/enrol", &json!({ "person": mother }));
    let household = home["household"].as_u64().expect("household");
    net.post_ok(
        registry,
        "/v1/enrol",
        &json!({"person": father, "household": household, "relation": "spouse"}),
    );
    let birth = net.post_ok(
        registry,
        "/v1/birth",
        &json!({"person": baby, "household": household, "relation": "child"}),
    );
    assert_eq!(birth["kind"], "birth", "{birth}");
    let birth_ref = s(&birth, "ref");
    assert_eq!(author_of(&birth_ref), "330502", "{birth}");

    // The birth consumed a claim the baby's arbiter granted 330502.
    let arbiter = net.arbiter_of(&baby);
    let claim = s(&birth, "claim");
    assert_eq!(author_of(&claim), arbiter, "{birth}");

    // Registered once: again at the same bureau, or at the bureau where the parents live once it
    // sees the birth, is refused, and the refusal names the claim the birth consumed: the
    // arbiter grants one claim per person (the rulebook judges the second claim before
    // admission's `person_already_registered`). Once the arbiter holds the birth, that is:
    // before, it would hand 330502 its claim again, which 330502's own rulebook then refuses as
    // `claim_consumed`.
    let arbiter_at = (0..3).find(|i| net.code(*i) == arbiter).expect("a member");
    wait_entry(&net, arbiter_at, &birth_ref);
    let again = refused(
        &net,
        registry,
        "/v1/birth",
        json!({"person": baby, "household": household, "relation": "child"}),
        409,
        "person_claimed",
    );
    assert!(s(&again, "message").contains(&claim), "{again}");
    for i in [lives, third] {
        let p = wait_registered_at(&net, i, &baby, "330502");
        assert_eq!(p["records"][0]["household"], household, "{p}");
        assert_eq!(p["records"][0]["head"], false, "{p}");
        assert_eq!(p["records"][0]["since"], birth_ref.as_str(), "{p}");
        assert_eq!(
            history(&p),
            pairs(&[("claim", &arbiter), ("birth", "330502")]),
            "{p}"
        );
    }
    let again = refused(
        &net,
        lives,
        "/v1/birth",
        json!({ "person": baby }),
        409,
        "person_claimed",
    );
    assert!(s(&again, "message").contains(&claim), "{again}");
    let e = entry(&net, third, &birth_ref);
    assert_eq!(e["kind"], "birth", "{e}");
    assert_eq!(e["body"]["household"], household, "{e}");
    assert_eq!(e["body"]["relation"], "child", "{e}");
    // The birth date the rulebook checked, from the ID number: YYYYMMDD.
    let born_on: u64 = baby[6..14].parse().expect("8 digits");
    assert_eq!(e["body"]["born_on"], born_on, "{e}");
    assert_eq!(e["body"]["claim"], claim.as_str(), "{e}");
}

// ---------------------------------------------------------------------------------------------
// 4. A refusal: the person is not registered at the origin.

#[test]
fn refusal_with_reason_is_seen_by_the_permits_author() {
    let net = Testnet::new(4);
    let (dest, origin, third) = (HEFEI, SHUSHAN, SHANGHAI);
    let stranger = citizen_id_in("340104", 30); // never enrolled anywhere

    let permit = issue_permit(&net, dest, origin, &stranger, "talent");
    refused(
        &net,
        origin,
        "/v1/deregister",
        json!({ "permit": permit }),
        409,
        "person_not_registered_here",
    );
    let refusal = net.post_ok(
        origin,
        "/v1/refuse",
        &json!({"permit": permit, "reason": "not-registered-here"}),
    );
    assert_eq!(refusal["kind"], "refusal", "{refusal}");
    assert_eq!(refusal["acted_on"], permit.as_str(), "{refusal}");
    let refusal_ref = s(&refusal, "ref");

    // The permit's author (and a bystander) see the transfer refused, final, by that entry ...
    for i in [dest, third] {
        let t = wait_transfer(&net, i, &permit, "refused");
        assert_eq!(step_names(&t), ["permit", "refusal"], "{t}");
        assert_eq!(step(&t, "refusal")["ref"], refusal_ref.as_str(), "{t}");
        assert_eq!(step(&t, "refusal")["bureau"], "340104", "{t}");
        assert_eq!(step(&t, "refusal")["reason"], "not-registered-here", "{t}");
        assert!(step(&t, "refusal")["time_ms"].as_u64().is_some(), "{t}");
    }
    // ... and its reason, in the refusal entry itself.
    let e = entry(&net, dest, &refusal_ref);
    assert_eq!(e["kind"], "refusal", "{e}");
    assert_eq!(e["body"]["permit"], permit.as_str(), "{e}");
    assert_eq!(e["body"]["reason"], "not-registered-here", "{e}");

    // The permit left the origin's inbox and cannot be answered twice.
    assert!(!in_inbox(
        &net,
        origin,
        "permits_awaiting_removal",
        "permit",
        &permit
    ));
    refused(
        &net,
        origin,
        "/v1/refuse",
        json!({"permit": permit, "reason": "record-mismatch"}),
        409,
        "permit_not_open",
    );
    // The person is registered nowhere.
    let p = person(&net, third, &stranger);
    assert_eq!(p["registered_at"], Value::Null, "{p}");
    assert_eq!(p["records"], json!([]), "{p}");
}

// ---------------------------------------------------------------------------------------------
// 5. A revoked permit.

#[test]
fn revoked_permit_cannot_be_acted_on() {
    let net = Testnet::new(4);
    let (origin, dest, third) = (SHANGHAI, HEFEI, HUZHOU);
    let id = citizen_id_in("310104", 40);
    net.enrol(origin, &id);

    let permit = issue_permit(&net, dest, origin, &id, "parent");
    refused(
        &net,
        origin,
        "/v1/permits/revoke",
        json!({ "permit": permit }),
        409,
        "not_permit_destination",
    );
    let rev = net.post_ok(dest, "/v1/permits/revoke", &json!({ "permit": permit }));
    assert_eq!(rev["kind"], "revocation", "{rev}");
    assert_eq!(rev["acted_on"], permit.as_str(), "{rev}");
    let rev_ref = s(&rev, "ref");

    // Once the origin holds the revocation, the permit is gone from its inbox and it can no
    // longer deregister against it (nor refuse it); the destination cannot revoke it twice.
    let t = wait_transfer(&net, origin, &permit, "revoked");
    // Nothing is pending any more: no removal step awaiting the origin, only what was recorded.
    assert_eq!(step_names(&t), ["permit", "revocation"], "{t}");
    assert!(step(&t, "revocation")["time_ms"].as_u64().is_some(), "{t}");
    assert_eq!(step(&t, "revocation")["ref"], rev_ref.as_str(), "{t}");
    assert!(!in_inbox(
        &net,
        origin,
        "permits_awaiting_removal",
        "permit",
        &permit
    ));
    refused(
        &net,
        origin,
        "/v1/deregister",
        json!({ "permit": permit }),
        409,
        "permit_not_open",
    );
    refused(
        &net,
        origin,
        "/v1/refuse",
        json!({"permit": permit, "reason": "applicant-withdrew"}),
        409,
        "permit_not_open",
    );
    refused(
        &net,
        dest,
        "/v1/permits/revoke",
        json!({ "permit": permit }),
        409,
        "permit_not_open",
    );
    // The person stays where they were; a bystander sees the permit revoked.
    wait_registered_at(&net, third, &id, "310104");
    wait_transfer(&net, third, &permit, "revoked");
}

// ---------------------------------------------------------------------------------------------
// 6. A wrong migration reversed (错迁 / 回迁).

#[test]
fn wrong_migration_is_reversed_by_a_return_after_error_transfer() {
    let net = Testnet::new(4);
    let (home, wrong, third) = (SHUSHAN, HUZHOU, SHANGHAI);
    let id = citizen_id_in("340104", 50);
    net.enrol(home, &id);

    // The erroneous transfer, 340104 -> 330502, completed.
    let permit = issue_permit(&net, wrong, home, &id, "child");
    let dereg = deregister(&net, home, &permit, json!({}));
    let reg = s(&register(&net, wrong, &dereg, json!({})), "ref");
    wait_entry(&net, home, &reg);

    // A return-after-error permit must name the registration it corrects.
    refused(
        &net,
        home,
        "/v1/permits",
        json!({"person": id, "origin": "330502", "category": "return-after-error"}),
        409,
        "correction_missing",
    );
    let back = net.post_ok(
        home,
        "/v1/permits",
        &json!({"person": id, "origin": "330502", "category": "return-after-error", "corrects": reg}),
    );
    let back_ref = s(&back, "ref");
    let e = entry(&net, wrong, &back_ref);
    assert_eq!(e["body"]["category"], "return-after-error", "{e}");
    assert_eq!(e["body"]["corrects"], reg.as_str(), "{e}");
    assert!(
        wait_until(WAIT, || in_inbox(
            &net,
            wrong,
            "permits_awaiting_removal",
            "permit",
            &back_ref
        )),
        "the return permit never reached 330502's inbox"
    );

    // The bureau at fault removes the person; the origin registers them back.
    let d2 = deregister(&net, wrong, &back_ref, json!({}));
    let reg2 = s(&register(&net, home, &d2, json!({})), "ref");

    let t = wait_transfer(&net, third, &back_ref, "registered");
    assert_eq!(t["category"], "return-after-error", "{t}");
    assert_eq!(
        (&t["origin"], &t["destination"]),
        (&json!("330502"), &json!("340104")),
        "{t}"
    );
    assert_one_working_day_met(&step(&t, "deregistration")["deadline"], "removal");
    assert_one_working_day_met(&step(&t, "registration")["deadline"], "registration");
    // History is not edited: the erroneous transfer still stands, registered.
    let first = wait_transfer(&net, third, &permit, "registered");
    assert_eq!(step(&first, "registration")["ref"], reg.as_str(), "{first}");

    let p = wait_registered_at(&net, third, &id, "340104");
    assert_eq!(p["records"][0]["since"], reg2.as_str(), "{p}");
    let arbiter = net.arbiter_of(&id);
    assert_eq!(
        history(&p),
        pairs(&[
            ("claim", &arbiter),
            ("enrol", "340104"),
            ("permit", "330502"),
            ("deregistration", "340104"),
            ("registration", "330502"),
            ("permit", "340104"),
            ("deregistration", "330502"),
            ("registration", "340104"),
        ]),
        "{p}"
    );
}

// ---------------------------------------------------------------------------------------------
// 7. A bulk import (opening balance) with progress, through `hukou enrol --bulk`.

#[test]
fn bulk_import_with_progress_replicates_everywhere() {
    const COUNT: u64 = 5_000;
    let net = Testnet::new(4);
    let at = HEFEI;

    // COUNT valid lines, a malformed one in the middle and a repeated one at the end.
    let mut lines: Vec<String> = (0..COUNT)
        .map(|n| json!({ "person": citizen_id_in("340100", 100_000 + n) }).to_string())
        .collect();
    let bad_line = COUNT as usize / 2 + 1; // 1-based
    lines.insert(
        bad_line - 1,
        r#"{"person": "34010019900101001"}"#.to_string(),
    );
    lines.push(json!({ "person": citizen_id_in("340100", 100_000) }).to_string());
    let total = lines.len() as u64;
    let file = net.dir().join("people.ndjson");
    std::fs::write(&file, lines.join("\n") + "\n").expect("write the import file");

    let started = Instant::now();
    let out = Command::new(hukou_bin())
        .args(["enrol", "--bulk"])
        .arg(&file)
        .args(["--json", "--node", net.api(at), "--token", net.token(at)])
        .stdin(Stdio::null())
        .output()
        .expect("hukou enrol --bulk runs");
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Two lines were refused, so the command exits 1.
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answers: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(&l.expect("utf-8")).expect("NDJSON line"))
        .collect();

    let errors: Vec<(u64, String)> = answers
        .iter()
        .filter(|a| a.get("line").is_some())
        .map(|a| (a["line"].as_u64().expect("line"), s(a, "error")))
        .collect();
    // The repeated line: the person's arbiter refuses a second claim on them (the rulebook
    // judges the claim before admission's `person_already_registered`).
    assert_eq!(
        errors,
        [
            (bad_line as u64, "id_wrong_length".to_string()),
            (total, "person_claimed".to_string())
        ],
        "{stdout}"
    );
    let progress: Vec<&Value> = answers.iter().filter_map(|a| a.get("progress")).collect();
    assert!(progress.len() >= 3, "batches of 2,000: {stdout}");
    let seen: Vec<u64> = progress
        .iter()
        .map(|p| p["lines"].as_u64().expect("lines"))
        .collect();
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "progress goes forward: {seen:?}"
    );
    assert_eq!(seen.last(), Some(&total), "{stdout}");
    let done = answers.last().expect("answers");
    assert_eq!(
        done["done"], true,
        "the import ends with its done line: {stdout}"
    );
    assert_eq!(
        (&done["lines"], &done["enrolled"], &done["refused"]),
        (&json!(total), &json!(COUNT), &json!(2)),
        "every line acknowledged: {done}"
    );
    eprintln!(
        "bulk: {COUNT} enrolled in {:.2} s; {} progress lines",
        took.as_secs_f64(),
        progress.len()
    );

    // Every enrolment consumed a claim its person's arbiter wrote in its own log: 340100's log
    // holds the COUNT enrolments and the claims it granted; each other log the claims it
    // granted.
    let mut claims: std::collections::BTreeMap<String, u64> =
        (0..4).map(|i| (net.code(i).to_string(), 0)).collect();
    for n in 0..COUNT {
        *claims
            .get_mut(&net.arbiter_of(&citizen_id_in("340100", 100_000 + n)))
            .expect("a member") += 1;
    }
    assert_eq!(claims.values().sum::<u64>(), COUNT);
    let expected = |code: &str| claims[code] + if code == "340100" { COUNT } else { 0 };
    // Every replica converges on the same logs: same sizes, same Merkle roots.
    let (len, root) = net.log_of(at, "340100").expect("340100 answers");
    assert_eq!(len, expected("340100"), "{claims:?}");
    let started = Instant::now();
    assert!(
        wait_until(WAIT, || (0..4).all(|i| {
            net.log_of(i, "340100").as_ref() == Some(&(len, root.clone()))
                && (0..4).all(|j| {
                    net.log_of(i, net.code(j)).map(|(l, _)| l) == Some(expected(net.code(j)))
                })
        })),
        "replicas differ: {:?} (claims granted: {claims:?})",
        (0..4).map(|i| net.logs(i)).collect::<Vec<_>>()
    );
    eprintln!(
        "bulk: replicas converged in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    // A bystander answers for a person of the import.
    wait_registered_at(
        &net,
        SHANGHAI,
        &citizen_id_in("340100", 100_000 + COUNT - 1),
        "340100",
    );
}

// ---------------------------------------------------------------------------------------------
// 8. Each bureau's daily reconciliation (DOMAIN process 2: "each window reconciles its transfers
// before the end of the day"), from an export of the ledger audited offline.

/// Totals of one bureau's reconciliation rows (every date: the test may straddle midnight in
/// China) and the pending balances at the end of its last date.
fn reconciliation_of(report: &Value, bureau: &str) -> Value {
    let rows: Vec<&Value> = report["reconciliation"]
        .as_array()
        .expect("reconciliation")
        .iter()
        .filter(|r| r["bureau"] == bureau)
        .collect();
    assert!(
        !rows.is_empty(),
        "no reconciliation row of {bureau}: {report}"
    );
    let mut total = serde_json::Map::new();
    for field in [
        "enrolments",
        "births",
        "permits_issued",
        "permits_received",
        "refusals",
        "removals",
        "removals_received",
        "registrations_in",
        "revocations",
        "cancellations",
    ] {
        let sum: u64 = rows.iter().map(|r| r[field].as_u64().expect(field)).sum();
        total.insert(field.to_string(), json!(sum));
    }
    let last = rows
        .iter()
        .max_by_key(|r| r["date"].as_str().unwrap_or(""))
        .expect("rows");
    for field in ["pending_answers", "pending_registrations"] {
        total.insert(field.to_string(), last[field].clone());
    }
    Value::Object(total)
}

#[test]
fn daily_reconciliation_matches_the_days_transfers() {
    let net = Testnet::new(4);
    let mut people = 60u64..;
    let mut id = |code: &str| citizen_id_in(code, people.next().expect("more"));
    let mut done: Vec<String> = Vec::new(); // permits of completed transfers

    // Two transfers into 330502 (from 310104 and 340100), one out of it (to 340104).
    for (from, to) in [(SHANGHAI, HUZHOU), (HEFEI, HUZHOU), (HUZHOU, SHUSHAN)] {
        let who = id(net.code(from));
        net.enrol(from, &who);
        let permit = issue_permit(&net, to, from, &who, "work-transfer");
        let dereg = deregister(&net, from, &permit, json!({}));
        register(&net, to, &dereg, json!({}));
        done.push(permit);
    }
    // Still open at the end: a permit awaiting 330502's answer (from 310104), and a removal from
    // 340104 awaiting 330502's registration.
    let waiting_answer = id("330502");
    net.enrol(HUZHOU, &waiting_answer);
    let open_permit = issue_permit(&net, SHANGHAI, HUZHOU, &waiting_answer, "spouse");
    let waiting_registration = id("340104");
    net.enrol(SHUSHAN, &waiting_registration);
    let permit = issue_permit(&net, HUZHOU, SHUSHAN, &waiting_registration, "child");
    let open_dereg = deregister(&net, SHUSHAN, &permit, json!({}));

    // 330502's inbox says the same.
    let exporter = HUZHOU;
    assert!(
        wait_until(WAIT, || in_inbox(
            &net,
            exporter,
            "removals_awaiting_registration",
            "deregistration",
            &open_dereg
        )),
        "the open removal never reached 330502"
    );
    let (_, inbox) = net.get(exporter, "/v1/inbox");
    let listed = |list: &str, field: &str| -> Vec<String> {
        inbox[list]
            .as_array()
            .expect("list")
            .iter()
            .map(|x| s(x, field))
            .collect()
    };
    assert_eq!(
        listed("permits_awaiting_removal", "permit"),
        std::slice::from_ref(&open_permit),
        "{inbox}"
    );
    assert_eq!(
        listed("removals_awaiting_registration", "deregistration"),
        std::slice::from_ref(&open_dereg),
        "{inbox}"
    );
    for p in &done {
        wait_transfer(&net, exporter, p, "registered");
    }

    // Export from 330502's node once it holds every log as its authors do, and audit it.
    assert!(
        wait_until(WAIT, || (0..4).all(
            |i| net.log_of(exporter, net.code(i)) == net.log_of(i, net.code(i))
        )),
        "330502 lags behind: {:?}",
        net.logs(exporter)
    );
    let bundle = net.dir().join("bundle");
    let genesis = net.nodes[exporter].dir.join("genesis.toml");
    hukou_tests::hukou(&[
        "export",
        "--node",
        net.api(exporter),
        "--genesis",
        genesis.to_str().expect("utf-8"),
        "--out",
        bundle.to_str().expect("utf-8"),
        "--quiet",
    ]);
    let out = Command::new(hukou_bin())
        .args(["audit", "--json", "--quiet"])
        .arg(&bundle)
        .output()
        .expect("hukou audit runs");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "audit --json: {e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(out.status.code(), Some(0), "audit not clean: {report}");
    assert_eq!(report["clean"], true, "{report}");
    assert_eq!(report["totals"]["violations"], 0, "{report}");
    assert_eq!(report["totals"]["warnings"], 0, "nothing overdue: {report}");

    let expect = |bureau: &str, figures: Value| {
        let got = reconciliation_of(&report, bureau);
        for (k, v) in figures.as_object().expect("object") {
            assert_eq!(&got[k], v, "{bureau} {k}: {got}");
        }
        eprintln!("reconciliation {bureau}: {got}");
    };
    // 330502: in 2 (registered), out 1; one permit awaiting its answer, one removal awaiting
    // its registration.
    expect(
        "330502",
        json!({"enrolments": 2, "permits_issued": 3, "permits_received": 2, "removals": 1,
               "removals_received": 3, "registrations_in": 2, "refusals": 0, "revocations": 0,
               "pending_answers": 1, "pending_registrations": 1}),
    );
    expect(
        "310104",
        json!({"enrolments": 1, "permits_issued": 1, "permits_received": 1, "removals": 1,
               "removals_received": 0, "registrations_in": 0,
               "pending_answers": 0, "pending_registrations": 0}),
    );
    expect(
        "340100",
        json!({"enrolments": 1, "permits_issued": 0, "permits_received": 1, "removals": 1,
               "registrations_in": 0, "pending_answers": 0, "pending_registrations": 0}),
    );
    expect(
        "340104",
        json!({"enrolments": 1, "permits_issued": 1, "permits_received": 1, "removals": 1,
               "removals_received": 1, "registrations_in": 1,
               "pending_answers": 0, "pending_registrations": 0}),
    );
}
