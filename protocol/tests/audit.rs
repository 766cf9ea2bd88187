//! The auditor's pure part, `audit::audit`: a clean history is clean (and the report does not
//! depend on the order logs are given in), and each way of damaging a history or a bundle is
//! named by its own finding, with the entries that prove it.

mod common;

use common::{DAY_MS, World, person};
use hukou_protocol::audit::{self, Finding, LogItem, Report, Severity};
use hukou_protocol::calendar::{Calendar, Date, china_date, china_day_end_ms};
use hukou_protocol::checkpoint::{Certificate, Checkpoint, Cosignature};
use hukou_protocol::entry::{Body, Placement, Signature};
use hukou_protocol::merkle::Tree;
use hukou_protocol::{
    BureauCode, Category, Digest, EntryRef, FraudProof, HouseholdId, Membership, PersonTag,
    Relation, SignedEntry,
};

/// A pseudo-random honest history of `steps` steps over four bureaus.
fn random_world(steps: u32) -> World {
    let mut world = World::new(4);
    let mut x: u32 = 0x1234_5678;
    for _ in 0..steps {
        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        world.step(x >> 8);
    }
    world
}

/// Each member's log, in order, from a history.
fn logs_of(world: &World, history: &[SignedEntry]) -> Vec<(BureauCode, Vec<SignedEntry>)> {
    world
        .bureaus
        .iter()
        .map(|b| {
            let entries = history
                .iter()
                .filter(|e| e.entry().author == b.code)
                .cloned()
                .collect();
            (b.code, entries)
        })
        .collect()
}

/// Log items with true verdicts (strict verification), as `hukou audit` passes them.
fn items(membership: &Membership, entries: &[SignedEntry]) -> Vec<LogItem> {
    entries
        .iter()
        .map(|e| LogItem::Entry {
            entry: e.clone(),
            signature_valid: membership
                .key(e.entry().author)
                .is_some_and(|key| e.verify(key)),
        })
        .collect()
}

fn run_items(
    world: &World,
    logs: Vec<(BureauCode, Vec<LogItem>)>,
    certificates: &[Certificate],
    proofs: &[FraudProof],
    as_of_ms: u64,
) -> Report {
    audit::audit(
        world.ledger.epochs(),
        logs.into_iter().map(|(c, v)| (c, v.into_iter())),
        certificates,
        proofs,
        Calendar::prc(),
        as_of_ms,
    )
}

fn run(world: &World, logs: &[(BureauCode, Vec<SignedEntry>)], as_of_ms: u64) -> Report {
    let m = world.ledger.membership();
    let logs = logs.iter().map(|(c, es)| (*c, items(m, es))).collect();
    run_items(world, logs, &[], &[], as_of_ms)
}

fn last_time(world: &World) -> u64 {
    world
        .history
        .iter()
        .map(|e| e.entry().time_ms)
        .max()
        .unwrap()
}

/// The findings of `name`, asserting there is at least one.
#[track_caller]
fn findings<'r>(report: &'r Report, name: &str) -> Vec<&'r Finding> {
    let found: Vec<&Finding> = report.findings.iter().filter(|f| f.name == name).collect();
    assert!(
        !found.is_empty(),
        "no {name} finding; findings: {:#?}",
        report.findings
    );
    found
}

fn names(report: &Report) -> Vec<&str> {
    report.findings_by_name.keys().map(String::as_str).collect()
}

#[test]
fn a_clean_history_is_clean_and_independent_of_log_order() {
    let world = random_world(800);
    let logs = logs_of(&world, &world.history);
    let as_of = last_time(&world);
    let report = run(&world, &logs, as_of);
    assert!(report.clean, "{:#?}", report.findings);
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
    assert_eq!(report.totals.entries_read, world.history.len() as u64);
    assert_eq!(report.totals.entries_applied, world.history.len() as u64);
    assert_eq!(report.totals.entries_waiting, 0);
    assert_eq!(
        report.kinds.values().sum::<u64>(),
        world.history.len() as u64
    );

    // Roots: the streaming frontier against the full tree.
    for (code, entries) in &logs {
        let mut tree = Tree::new();
        for e in entries {
            tree.push(e.hash().0);
        }
        let log = report.log(*code).unwrap();
        assert_eq!(log.root, tree.root(), "root of {code}");
        assert_eq!(log.entries, entries.len() as u64);
        assert_eq!(log.applied, entries.len() as u64);
    }

    // Reconciliation totals match the history.
    let permits = world
        .history
        .iter()
        .filter(|e| matches!(e.entry().body, Body::Permit { .. }))
        .count() as u64;
    let rows = &report.reconciliation;
    assert_eq!(rows.iter().map(|r| r.permits_issued).sum::<u64>(), permits);
    assert_eq!(
        rows.iter().map(|r| r.permits_received).sum::<u64>(),
        permits
    );
    let pending_at_end: u64 = world
        .bureaus
        .iter()
        .map(|b| world.ledger.awaiting_origin(b.code).count() as u64)
        .sum();
    let last_rows: u64 = world
        .bureaus
        .iter()
        .filter_map(|b| rows.iter().rev().find(|r| r.bureau == Some(b.code)))
        .map(|r| r.pending_answers)
        .sum();
    assert_eq!(
        last_rows, pending_at_end,
        "pending answers carried to the end"
    );

    // Same report, byte for byte, whatever order the logs come in.
    let mut reversed = logs.clone();
    reversed.reverse();
    let again = run(&world, &reversed, as_of);
    assert_eq!(
        serde_json::to_string(&report).unwrap(),
        serde_json::to_string(&again).unwrap()
    );
}

#[test]
fn the_report_has_stable_field_names() {
    let world = random_world(50);
    let report = run(&world, &logs_of(&world, &world.history), last_time(&world));
    let v = serde_json::to_value(&report).unwrap();
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "as_of",
            "as_of_ms",
            "clean",
            "epochs",
            "findings",
            "findings_by_name",
            "findings_omitted",
            "kinds",
            "logs",
            "network",
            "reconciliation",
            "revoked",
            "totals"
        ]
    );
    assert_eq!(v["revoked"], serde_json::json!([]));
    assert_eq!(v["totals"]["revoked"], 0);
    assert_eq!(
        v["epochs"],
        serde_json::json!([{"epoch": 0, "hash": "00".repeat(32), "changes": []}])
    );
    let log = &v["logs"][0];
    for key in [
        "bureau",
        "entries",
        "applied",
        "root",
        "certified_size",
        "kinds",
    ] {
        assert!(log.get(key).is_some(), "logs[0].{key} missing: {log}");
    }
    let finding = serde_json::to_value(Finding::violation("bad_signature", "m")).unwrap();
    for key in [
        "name",
        "severity",
        "invariant",
        "log",
        "entries",
        "message",
        "file",
        "offset",
        "position",
        "deadline",
        "working_days_overdue",
        "calendar_year_missing",
    ] {
        assert!(
            finding.get(key).is_some(),
            "finding.{key} missing: {finding}"
        );
    }
    assert_eq!(finding["severity"], "violation");
}

/// A log long enough to damage in the middle, and its index.
fn long_log(logs: &[(BureauCode, Vec<SignedEntry>)]) -> usize {
    logs.iter().position(|(_, es)| es.len() >= 8).unwrap()
}

#[test]
fn a_bad_signature_is_named_and_what_follows_is_reported_once() {
    let world = random_world(400);
    let mut logs = logs_of(&world, &world.history);
    let i = long_log(&logs);
    let victim = logs[i].1[3].clone();
    let mut sig = victim.signature().0;
    sig[10] ^= 0x40;
    logs[i].1[3] = SignedEntry::from_parts(victim.entry().clone(), Signature(sig));
    let report = run(&world, &logs, last_time(&world));
    assert!(!report.clean);
    let bad = findings(&report, "bad_signature");
    assert_eq!(bad[0].entries, vec![victim.reference()]);
    // Everything after it in that log waits for it: one finding, not one per entry.
    let waiting: Vec<_> = findings(&report, "missing_previous")
        .into_iter()
        .filter(|f| f.log == Some(logs[i].0))
        .collect();
    assert_eq!(waiting.len(), 1, "{waiting:#?}");
    assert_eq!(waiting[0].entries[0].seq.0, 4);
    assert_eq!(waiting[0].invariant.as_deref(), Some("I3"));
    assert_eq!(report.log(logs[i].0).unwrap().applied, 3);
}

#[test]
fn a_dropped_entry_is_out_of_place_and_its_successor_never_applies() {
    let world = random_world(400);
    let mut logs = logs_of(&world, &world.history);
    let i = long_log(&logs);
    let dropped = logs[i].1.remove(2);
    let report = run(&world, &logs, last_time(&world));
    let misplaced = findings(&report, "entry_out_of_place");
    assert_eq!(misplaced.len(), 1, "one finding for the whole shifted tail");
    assert_eq!(misplaced[0].position, Some(2));
    assert_eq!(misplaced[0].entries[0].seq.0, 3);
    let missing = findings(&report, "missing_previous");
    assert!(
        missing
            .iter()
            .any(|f| f.message.contains(&format!("seq {} ", dropped.entry().seq))),
        "{missing:#?}"
    );
}

#[test]
fn a_duplicated_entry_and_swapped_entries_are_named() {
    let world = random_world(400);
    let logs = logs_of(&world, &world.history);
    let i = long_log(&logs);

    let mut duplicated = logs.clone();
    let copy = duplicated[i].1[2].clone();
    duplicated[i].1.insert(3, copy.clone());
    let report = run(&world, &duplicated, last_time(&world));
    assert_eq!(
        findings(&report, "duplicate_entry")[0].entries,
        vec![copy.reference()]
    );
    assert_eq!(findings(&report, "entry_out_of_place")[0].position, Some(3));
    assert_eq!(report.totals.entries_applied, world.history.len() as u64);

    let mut swapped = logs.clone();
    swapped[i].1.swap(2, 3);
    let report = run(&world, &swapped, last_time(&world));
    assert_eq!(
        names(&report),
        ["entry_out_of_place"],
        "{:#?}",
        report.findings
    );
    assert_eq!(findings(&report, "entry_out_of_place").len(), 2);
    // The causal buffer puts the swapped pair back in order: nothing else is lost.
    assert_eq!(report.totals.entries_applied, world.history.len() as u64);
    assert_ne!(
        report.log(logs[i].0).unwrap().root,
        run(&world, &logs, 0).log(logs[i].0).unwrap().root,
        "the file's root covers the file's order"
    );
}

#[test]
fn unreadable_frames_and_entries_in_the_wrong_file_are_findings() {
    let world = random_world(200);
    let logs = logs_of(&world, &world.history);
    let m = world.ledger.membership();
    let mut with_items: Vec<(BureauCode, Vec<LogItem>)> =
        logs.iter().map(|(c, es)| (*c, items(m, es))).collect();
    let stranger = logs[1].1[0].clone();
    with_items[0].1.push(LogItem::Entry {
        entry: stranger.clone(),
        signature_valid: true,
    });
    with_items[0].1.push(LogItem::Unreadable {
        offset: 1234,
        name: "undecodable_entry",
        message: "logs/x.log at byte 1234: malformed".into(),
    });
    let report = run_items(&world, with_items, &[], &[], last_time(&world));
    let wrong = findings(&report, "entry_in_wrong_log");
    assert_eq!(wrong[0].entries, vec![stranger.reference()]);
    assert_eq!(wrong[0].log, Some(logs[0].0));
    let unreadable = findings(&report, "undecodable_entry");
    assert_eq!(unreadable[0].offset, Some(1234));
    assert_eq!(
        unreadable[0].file.as_deref(),
        Some(&*audit::log_file(logs[0].0))
    );
    assert_eq!(report.totals.frames_unreadable, 1);
}

/// Signs `body` at bureau `b` without the author's admission checks: what a faulty or
/// malicious bureau could sign.
fn force(world: &mut World, b: usize, body: Body) -> SignedEntry {
    world.bureaus[b].time_ms += 60_000;
    let entry = world.bureaus[b].draft(world.network, body);
    world.bureaus[b].accept(&entry);
    world.history.push(entry.clone());
    entry
}

fn head_of_new_household(world: &mut World, b: usize) -> Placement {
    let household = HouseholdId(world.bureaus[b].next_household);
    world.bureaus[b].next_household += 1;
    Placement {
        household,
        relation: Relation::Head,
    }
}

/// A complete transfer of a new person from bureau 0 to bureau 1; returns the person, the
/// permit, the deregistration and the registration.
fn transfer(world: &mut World) -> (PersonTag, EntryRef, EntryRef, EntryRef) {
    let p = world.enrol_new(0);
    let time = world.bureaus[1].time_ms;
    let permit = world
        .act(
            1,
            Body::Permit {
                person: p,
                origin: world.code(0),
                category: Category::Spouse,
                valid_until_ms: time + 30 * DAY_MS,
                materials: Digest([1; 32]),
                corrects: None,
            },
        )
        .unwrap()
        .reference();
    let deregistration = world
        .act(
            0,
            Body::Deregistration {
                permit,
                person: p,
                new_head: None,
            },
        )
        .unwrap()
        .reference();
    let placement = head_of_new_household(world, 1);
    let registration = world
        .act(
            1,
            Body::Registration {
                deregistration,
                person: p,
                placement,
            },
        )
        .unwrap()
        .reference();
    (p, permit, deregistration, registration)
}

#[test]
fn a_second_claim_on_a_person_is_refused_and_nobody_is_registered_twice() {
    let mut world = World::new(4);
    let p = world.enrol_new(0);
    let first_claim = world.ledger.claim_on(&p, None).unwrap().reference;
    // A lying arbiter grants the same person again, to another bureau, which enrols them.
    let arbiter = world.index_of(world.ledger.membership().arbiter(&p));
    let other = (1..4).find(|&b| b != arbiter).unwrap();
    let claimant = world.code(other);
    let second_claim = force(
        &mut world,
        arbiter,
        Body::Claim {
            person: p,
            claimant,
            after: None,
        },
    );
    let placement = head_of_new_household(&mut world, other);
    let second = force(
        &mut world,
        other,
        Body::Enrol {
            person: p,
            placement,
            claim: second_claim.reference(),
        },
    );
    let report = run(&world, &logs_of(&world, &world.history), last_time(&world));
    let claimed = findings(&report, "person_claimed");
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].entries[0], second_claim.reference());
    assert!(claimed[0].entries.contains(&first_claim));
    // The enrolment never takes effect: it waits for a claim that never applies.
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.entries.contains(&second.reference()))
    );
    assert!(
        !report
            .findings
            .iter()
            .any(|f| f.name == "duplicate_registration")
    );
    assert!(!report.clean);
}

#[test]
fn a_deregistration_consumed_twice_breaks_i2() {
    let mut world = World::new(4);
    let (p, permit, deregistration, _) = transfer(&mut world);
    let placement = head_of_new_household(&mut world, 1);
    let again = force(
        &mut world,
        1,
        Body::Registration {
            deregistration,
            person: p,
            placement,
        },
    );
    // And a registration naming a permit instead of a deregistration.
    let placement = head_of_new_household(&mut world, 1);
    let wrong = force(
        &mut world,
        1,
        Body::Registration {
            deregistration: permit,
            person: p,
            placement,
        },
    );
    let report = run(&world, &logs_of(&world, &world.history), last_time(&world));
    let consumed = findings(&report, "deregistration_consumed");
    assert_eq!(consumed[0].entries[0], again.reference());
    assert_eq!(consumed[0].entries[1], deregistration);
    assert_eq!(consumed[0].invariant.as_deref(), Some("I2"));
    // The log stops at the refused entry: the next one waits for it.
    let waiting = findings(&report, "missing_previous");
    assert_eq!(waiting[0].entries, vec![wrong.reference()]);
}

#[test]
fn equivocation_in_a_log_file_and_in_fraud_proofs() {
    let mut world = World::new(4);
    world.enrol_new(0);
    let original = world.enrol_new(0);
    let original = world
        .history
        .iter()
        .rev()
        .find(|e| matches!(e.entry().body, Body::Enrol { person, .. } if person == original));
    let original = original.unwrap().clone();
    // The same position signed again with another body.
    let mut forked = original.entry().clone();
    let Body::Enrol { claim, .. } = forked.body else {
        unreachable!("an enrolment")
    };
    forked.body = Body::Enrol {
        person: person(999),
        placement: Placement {
            household: HouseholdId(77),
            relation: Relation::Head,
        },
        claim,
    };
    let forked = forked.sign(&common::key(0));
    let mut logs = logs_of(&world, &world.history);
    logs[0].1.push(forked.clone());
    let report = run(&world, &logs, last_time(&world));
    let e = findings(&report, "equivocation");
    assert_eq!(e[0].entries, vec![forked.reference(), original.reference()]);
    assert_eq!(e[0].invariant.as_deref(), Some("I3"));

    // As a fraud proof, beside a clean log file.
    let proof = FraudProof::new(original.clone(), forked.clone());
    let clean_logs = logs_of(&world, &world.history);
    let m = world.ledger.membership();
    let with_items = |logs: &[(BureauCode, Vec<SignedEntry>)]| {
        logs.iter()
            .map(|(c, es)| (*c, items(m, es)))
            .collect::<Vec<_>>()
    };
    let report = run_items(
        &world,
        with_items(&clean_logs),
        &[],
        std::slice::from_ref(&proof),
        last_time(&world),
    );
    assert_eq!(names(&report), ["equivocation"]);
    assert_eq!(report.totals.fraud_proofs_valid, 1);

    // A fraud proof whose second signature was tampered with proves nothing.
    let mut sig = proof.second.signature().0;
    sig[0] ^= 1;
    let bogus = FraudProof {
        first: proof.first.clone(),
        second: SignedEntry::from_parts(proof.second.entry().clone(), Signature(sig)),
    };
    let report = run_items(&world, with_items(&clean_logs), &[], &[bogus], 0);
    assert_eq!(names(&report), ["invalid_fraud_proof"]);
    assert!(!report.clean);
}

#[test]
fn certificates_are_verified_against_the_log_files() {
    let world = random_world(300);
    let logs = logs_of(&world, &world.history);
    let m = world.ledger.membership();
    let (code, entries) = &logs[long_log(&logs)];
    let mut tree = Tree::new();
    for e in entries {
        tree.push(e.hash().0);
    }
    let checkpoint = |size: u64, root| Checkpoint {
        network: m.network(),
        epoch: 0,
        log: *code,
        size,
        root,
        time_ms: 0,
    };
    let certify = |c: Checkpoint, signers: usize| {
        let cosignatures = world
            .bureaus
            .iter()
            .take(signers)
            .map(|b| Cosignature::sign(&c, b.code, &b.key))
            .collect();
        Certificate::new(c, cosignatures)
    };
    let good = certify(checkpoint(5, tree.root_at(5).unwrap()), 3);
    let with_items: Vec<_> = logs.iter().map(|(c, es)| (*c, items(m, es))).collect();
    let report = run_items(&world, with_items.clone(), &[good], &[], last_time(&world));
    assert!(report.clean, "{:#?}", report.findings);
    assert_eq!(report.totals.certificates_valid, 1);
    assert_eq!(report.log(*code).unwrap().certified_size, 5);

    let cases = [
        (
            certify(checkpoint(5, [9; 32]), 3),
            "certificate_root_mismatch",
        ),
        (
            certify(checkpoint(5, tree.root_at(5).unwrap()), 2),
            "certificate_below_quorum",
        ),
        (
            certify(checkpoint(10_000, [0; 32]), 4),
            "certificate_beyond_log",
        ),
    ];
    for (certificate, name) in cases {
        let report = run_items(&world, with_items.clone(), &[certificate], &[], 0);
        assert_eq!(names(&report), [name]);
        assert_eq!(report.log(*code).unwrap().certified_size, 0);
    }
}

#[test]
fn an_entry_referencing_what_the_bundle_lacks_is_named() {
    let mut world = World::new(4);
    let (_, _, deregistration, registration) = transfer(&mut world);
    let history: Vec<SignedEntry> = world
        .history
        .iter()
        .filter(|e| e.reference() != deregistration)
        .cloned()
        .collect();
    let report = run(&world, &logs_of(&world, &history), last_time(&world));
    let unknown = findings(&report, "unknown_reference");
    assert_eq!(unknown[0].entries, vec![registration, deregistration]);
    assert_eq!(report.totals.entries_waiting, 1);
}

/// China time `hh:00` on `date`, in ms since the epoch.
fn china_ms(date: &str, hour: u64) -> u64 {
    let date: Date = date.parse().unwrap();
    china_day_end_ms(date) + 1 - DAY_MS + hour * 3_600_000
}

#[test]
fn overdue_answers_and_missing_registrations_are_warnings_with_deadlines() {
    let mut world = World::new(4);
    // Friday 2026-01-09: bureau 1 issues two permits for people of bureau 0.
    for b in &mut world.bureaus {
        b.time_ms = china_ms("2026-01-09", 9);
    }
    let p = world.enrol_new(0);
    let q = world.enrol_new(0);
    let time = world.bureaus[1].time_ms;
    let permit = |world: &mut World, person| {
        world
            .act(
                1,
                Body::Permit {
                    person,
                    origin: world.code(0),
                    category: Category::Child,
                    valid_until_ms: time + 30 * DAY_MS,
                    materials: Digest([2; 32]),
                    corrects: None,
                },
            )
            .unwrap()
            .reference()
    };
    let unanswered = permit(&mut world, p);
    let answered = permit(&mut world, q);
    // Bureau 0 removes q the same day; bureau 1 never registers q.
    let removal = world
        .act(
            0,
            Body::Deregistration {
                permit: answered,
                person: q,
                new_head: None,
            },
        )
        .unwrap()
        .reference();
    let logs = logs_of(&world, &world.history);

    // Monday noon: both are due by the end of Monday, nothing is overdue yet.
    let report = run(&world, &logs, china_ms("2026-01-12", 12));
    assert!(report.findings.is_empty(), "{:#?}", report.findings);

    // Tuesday noon: one working day late each.
    let report = run(&world, &logs, china_ms("2026-01-13", 12));
    assert!(report.clean, "warnings only");
    assert_eq!(report.totals.warnings, 2);
    let late = findings(&report, "permit_unanswered");
    assert_eq!(late[0].entries, vec![unanswered]);
    assert_eq!(late[0].severity, Severity::Warning);
    assert_eq!(late[0].deadline, Some("2026-01-12".parse().unwrap()));
    assert_eq!(late[0].working_days_overdue, Some(1));
    assert_eq!(late[0].log, Some(world.code(0)));
    let missing = findings(&report, "missing_registration");
    assert_eq!(missing[0].entries, vec![removal, answered]);
    assert_eq!(missing[0].log, Some(world.code(1)));

    // The day's reconciliation at each bureau.
    let friday: Date = "2026-01-09".parse().unwrap();
    let row = |b: usize| {
        report
            .reconciliation
            .iter()
            .find(|r| r.date == Some(friday) && r.bureau == Some(world.code(b)))
            .unwrap()
    };
    let (origin, destination) = (row(0), row(1));
    assert_eq!(
        (origin.enrolments, origin.permits_received, origin.removals),
        (2, 2, 1)
    );
    assert_eq!(origin.pending_answers, 1);
    assert_eq!(
        (
            destination.permits_issued,
            destination.removals_received,
            destination.registrations_in
        ),
        (2, 1, 0)
    );
    assert_eq!(destination.pending_registrations, 1);
    assert_eq!(china_date(report.as_of_ms), report.as_of);
}

/// Audits `world` as of `as_of_ms` with `calendar`.
fn run_with_calendar(world: &World, calendar: &Calendar, as_of_ms: u64) -> Report {
    let m = world.ledger.membership();
    let logs: Vec<(BureauCode, Vec<LogItem>)> = logs_of(world, &world.history)
        .iter()
        .map(|(c, es)| (*c, items(m, es)))
        .collect();
    audit::audit(
        &hukou_protocol::config::Epochs::of_membership(m.clone()),
        logs.into_iter().map(|(c, v)| (c, v.into_iter())),
        &[],
        &[],
        calendar,
        as_of_ms,
    )
}

#[test]
fn clocks_needing_an_unpublished_year_are_counted_not_guessed() {
    let mut world = World::new(4);
    // Wednesday 2026-12-30: bureau 1 asks bureau 0 for p (due by the end of Thursday the 31st,
    // the last day the built-in calendar covers); on the 31st, for q (due in 2027).
    for b in &mut world.bureaus {
        b.time_ms = china_ms("2026-12-30", 9);
    }
    let p = world.enrol_new(0);
    let q = world.enrol_new(0);
    let permit = |world: &mut World, person| {
        let time = world.bureaus[1].time_ms;
        world
            .act(
                1,
                Body::Permit {
                    person,
                    origin: world.code(0),
                    category: Category::Child,
                    valid_until_ms: time + 30 * DAY_MS,
                    materials: Digest([2; 32]),
                    corrects: None,
                },
            )
            .unwrap()
            .reference()
    };
    let due_in_2026 = permit(&mut world, p);
    world.bureaus[1].time_ms = china_ms("2026-12-31", 9);
    let due_in_2027 = permit(&mut world, q);

    // The evening of the 31st: neither is overdue, though q's deadline is not known yet (it
    // falls in 2027 or later): nothing to report.
    let report = run_with_calendar(&world, Calendar::prc(), china_ms("2026-12-31", 23));
    assert!(report.findings.is_empty(), "{:#?}", report.findings);

    // Monday 2027-01-04 noon, 2027 unpublished: p is overdue by an uncounted number of working
    // days; q's deadline is unknown. One note names the year and counts both.
    let report = run_with_calendar(&world, Calendar::prc(), china_ms("2027-01-04", 12));
    assert_eq!(
        names(&report),
        ["calendar_year_missing", "permit_unanswered"]
    );
    assert!(report.clean, "warnings only");
    assert_eq!(report.totals.warnings, 2);
    let late = findings(&report, "permit_unanswered");
    assert_eq!(late.len(), 1);
    assert_eq!(late[0].entries, vec![due_in_2026]);
    assert_eq!(late[0].deadline, Some("2026-12-31".parse().unwrap()));
    assert_eq!(late[0].working_days_overdue, None);
    assert_eq!(late[0].calendar_year_missing, Some(2027));
    assert!(
        late[0].message.ends_with(
            "due by the end of 2026-12-31: overdue by a number of working days not counted \
             (the working-day calendar of 2027 is not published)"
        ),
        "{}",
        late[0].message
    );
    let note = findings(&report, "calendar_year_missing");
    assert_eq!(note.len(), 1);
    assert_eq!(note[0].severity, Severity::Warning);
    assert_eq!(note[0].calendar_year_missing, Some(2027));
    assert_eq!(note[0].deadline, None);
    assert_eq!(
        note[0].message,
        "the working-day calendar of 2027 is not published: 2 clocks not judged \
         (deadline unknown: 1; overdue, working days not counted: 1)"
    );

    // 2027 published (made up: 1 and 4 January off, Sunday the 3rd worked): both are judged.
    let year_2027 = Calendar::parse(
        "years 2027 2027\n2027-01-01 holiday\n2027-01-03 workday\n2027-01-04 holiday\n",
    )
    .unwrap();
    let calendar = Calendar::prc().merge(&year_2027).unwrap();
    let report = run_with_calendar(&world, &calendar, china_ms("2027-01-04", 12));
    assert_eq!(names(&report), ["permit_unanswered"]);
    let late = findings(&report, "permit_unanswered");
    assert_eq!(late[0].entries, vec![due_in_2026]);
    // Sunday the 3rd worked, Monday the 4th off: done on Tuesday the 5th, 2 working days late.
    assert_eq!(late[0].working_days_overdue, Some(2));
    assert_eq!(late[0].calendar_year_missing, None);
    assert_eq!(late[1].entries, vec![due_in_2027]);
    assert_eq!(late[1].deadline, Some("2027-01-03".parse().unwrap()));
    assert_eq!(late[1].working_days_overdue, Some(1));
}

#[test]
fn a_valid_transfer_history_reconciles_to_zero_pending() {
    let mut world = World::new(4);
    for _ in 0..3 {
        transfer(&mut world);
    }
    let report = run(&world, &logs_of(&world, &world.history), last_time(&world));
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
    let last = |b: usize| {
        report
            .reconciliation
            .iter()
            .rev()
            .find(|r| r.bureau == Some(world.code(b)))
            .unwrap()
            .clone()
    };
    assert_eq!(
        (last(0).pending_answers, last(1).pending_registrations),
        (0, 0)
    );
    assert_eq!(
        report
            .reconciliation
            .iter()
            .map(|r| r.registrations_in)
            .sum::<u64>(),
        3
    );
}

// ---- Revoked entries and the epoch chain ----

/// A world whose configuration log revokes bureau 2's (340100's) key from the position after its
/// last entry, where a thief signed an entry with the old key under epoch 0; the holder of the
/// new key carries the log on at that position under epoch 1. Returns the world (its history is
/// the bundle's logs, the honest entry included), the thief's entry and the cut's position.
fn revoked_world() -> (World, SignedEntry, u64) {
    let mut world = World::with_epochs(4);
    for b in [2, 3, 2] {
        world.enrol_new(b);
    }
    let p = world.enrol_new(3);
    let b2 = world.code(2);
    let cut_at = world.bureaus[2].seq;
    // The thief holds the old key: an entry at `cut_at` naming epoch 0, never applied here.
    let stolen = world.bureaus[2].clone();
    let mut thief = stolen.clone();
    thief.time_ms += 30_000;
    let thief_entry = thief.draft(
        world.network,
        Body::Permit {
            person: p,
            origin: world.code(3),
            category: Category::Spouse,
            valid_until_ms: thief.time_ms + 30 * DAY_MS,
            materials: Digest([0x77; 32]),
            corrects: None,
        },
    );
    let new_key = ed25519_dalek::SigningKey::from_bytes(&[0x42; 32]);
    world.push_config(vec![hukou_protocol::config::Change::RevokeKey {
        code: b2,
        key: new_key.verifying_key().to_bytes(),
        from_seq: hukou_protocol::Seq(cut_at),
    }]);
    world.bureaus[2].key = new_key;
    world.bureaus[2].epoch = 1;
    let origin = world.code(3);
    let honest = world
        .act(
            2,
            Body::Permit {
                person: p,
                origin,
                category: Category::Spouse,
                valid_until_ms: world.bureaus[2].time_ms + 30 * DAY_MS,
                materials: Digest([0x78; 32]),
                corrects: None,
            },
        )
        .expect("the new key carries the log on");
    assert_eq!(honest.entry().seq.0, cut_at);
    assert_ne!(honest.hash(), thief_entry.hash());
    (world, thief_entry, cut_at)
}

/// Audits `world`'s history with `revoked` as the bundle's `revoked/` files, as of its last entry.
fn run_revoked(world: &World, revoked: &[(BureauCode, Vec<LogItem>)]) -> Report {
    let logs: Vec<(BureauCode, Vec<LogItem>)> = logs_of(world, &world.history)
        .into_iter()
        .map(|(c, es)| {
            let items = es
                .into_iter()
                .map(|entry| LogItem::Entry {
                    entry,
                    signature_valid: false,
                })
                .collect();
            (c, items)
        })
        .collect();
    audit::audit_with_revoked(
        world.ledger.epochs(),
        logs.into_iter().map(|(c, v)| (c, v.into_iter())),
        &[],
        &[],
        revoked,
        Calendar::prc(),
        last_time(world),
    )
}

fn revoked_item(entry: &SignedEntry) -> LogItem {
    LogItem::Entry {
        entry: entry.clone(),
        signature_valid: true,
    }
}

#[test]
fn a_revoked_entry_a_cut_refuses_is_listed_and_the_audit_is_clean() {
    let (world, thief, cut_at) = revoked_world();
    let b2 = world.code(2);
    let report = run_revoked(&world, &[(b2, vec![revoked_item(&thief)])]);
    assert!(report.clean, "{:#?}", report.findings);
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
    assert_eq!(report.totals.entries_applied, world.history.len() as u64);
    assert_eq!(report.totals.revoked, 1);
    assert_eq!(
        report.revoked,
        vec![audit::RevokedEntry {
            log: b2,
            seq: cut_at,
            epoch: 0,
            cut_epoch: 1,
            kind: "revoked".to_string(),
            from_seq: cut_at,
            reference: thief.reference(),
        }]
    );
    let update_hash = world.ledger.epochs().updates()[0].hash().0;
    assert_eq!(
        report.epochs,
        vec![
            audit::EpochSummary {
                epoch: 0,
                hash: [0x99; 32],
                changes: vec![],
            },
            audit::EpochSummary {
                epoch: 1,
                hash: update_hash,
                changes: vec!["revoke_key".to_string()],
            },
        ]
    );
    // The JSON an auditor's script reads.
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(
        json["revoked"],
        serde_json::json!([{
            "log": "340100", "seq": cut_at, "epoch": 0, "cut_epoch": 1, "kind": "revoked",
            "from_seq": cut_at, "ref": thief.reference().to_string(),
        }])
    );
    assert_eq!(json["totals"]["revoked"], 1);
    assert_eq!(
        json["epochs"][1],
        serde_json::json!({"epoch": 1, "hash": hex::encode(update_hash), "changes": ["revoke_key"]})
    );
    // Listed once, however often the file repeats it.
    let twice = run_revoked(
        &world,
        &[(b2, vec![revoked_item(&thief), revoked_item(&thief)])],
    );
    assert_eq!(twice.revoked, report.revoked);
    assert!(twice.clean);
}

#[test]
fn a_revoked_entry_no_cut_refuses_or_that_does_not_verify_is_a_violation() {
    let (world, thief, cut_at) = revoked_world();
    let b2 = world.code(2);
    // Below the cut, under epoch 0: valid, so it belongs in the log, not among the revoked.
    let below = world
        .history
        .iter()
        .find(|e| e.entry().author == b2 && e.entry().seq.0 == cut_at - 1)
        .unwrap()
        .clone();
    // The honest entry at the cut names epoch 1: no cut refuses it either.
    let honest = world
        .history
        .iter()
        .find(|e| e.entry().author == b2 && e.entry().seq.0 == cut_at)
        .unwrap()
        .clone();
    let mut signature = thief.signature().0;
    signature[10] ^= 1;
    let forged = SignedEntry::from_parts(thief.entry().clone(), Signature(signature));
    let other = world
        .history
        .iter()
        .find(|e| e.entry().author != b2)
        .unwrap();
    let report = run_revoked(
        &world,
        &[(
            b2,
            vec![
                revoked_item(&below),
                revoked_item(&forged),
                revoked_item(&thief),
                revoked_item(&honest),
                revoked_item(other),
            ],
        )],
    );
    assert!(!report.clean);
    let file = Some("revoked/340100.log".to_string());
    let not_cut = findings(&report, "revoked_entry_not_cut");
    assert_eq!(
        not_cut
            .iter()
            .map(|f| (f.entries.clone(), f.position, f.file.clone(), f.log))
            .collect::<Vec<_>>(),
        vec![
            (vec![below.reference()], Some(0), file.clone(), Some(b2)),
            (vec![honest.reference()], Some(3), file.clone(), Some(b2)),
        ]
    );
    assert_eq!(not_cut[0].severity, Severity::Violation);
    let bad = findings(&report, "revoked_entry_bad_signature");
    assert_eq!(bad.len(), 1);
    assert_eq!(
        (bad[0].entries.clone(), bad[0].position, bad[0].file.clone()),
        (vec![forged.reference()], Some(1), file.clone())
    );
    let wrong = findings(&report, "entry_in_wrong_log");
    assert_eq!(
        (
            wrong[0].entries.clone(),
            wrong[0].position,
            wrong[0].file.clone()
        ),
        (vec![other.reference()], Some(4), file)
    );
    assert_eq!(
        names(&report),
        vec![
            "entry_in_wrong_log",
            "revoked_entry_bad_signature",
            "revoked_entry_not_cut"
        ]
    );
    // The thief's entry still stands as revoked evidence.
    assert_eq!(report.totals.revoked, 1);
    assert_eq!(report.revoked[0].reference, thief.reference());
    // Without the update, the thief's entry is a valid entry of epoch 0 that no cut refuses.
    let unrevoked = audit::audit_with_revoked(
        &common::genesis_epochs(4),
        std::iter::empty::<(BureauCode, std::vec::IntoIter<LogItem>)>(),
        &[],
        &[],
        &[(b2, vec![revoked_item(&thief)])],
        Calendar::prc(),
        last_time(&world),
    );
    assert_eq!(names(&unrevoked), vec!["revoked_entry_not_cut"]);
    assert_eq!(unrevoked.epochs.len(), 1);
    assert!(unrevoked.revoked.is_empty());
}
