//! The order of checks is the catalogue's order (`rules::BODY_RULES`): for every body kind, every
//! rule is reached on its own, and for every pair of its rules that one entry can break
//! together, an entry breaking both is reported by the rule listed first. The pairs that cannot
//! be broken together are exactly the catalogue's `exclusive` list, so every pair is either
//! checked here or documented as impossible.
//!
//! Each body kind has a builder that sets up a ledger and drafts one entry breaking exactly the
//! rules (by catalogue key) it is asked to break, or answers `None` when no entry can break
//! that combination. Entries are judged with `Ledger::admit`, which checks the `apply` rules
//! first and the author-side `admit` rules after them.

// Judging returns the violation unboxed, as the rulebook does (see its note on size).
#![allow(clippy::result_large_err)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use hukou_protocol::config::Change;
use hukou_protocol::entry::{Body, Placement};
use hukou_protocol::limits::{
    BIRTH_REGISTRATION_AGE_DAYS_MAX, DAY_MS as LIMIT_DAY_MS, HOUSEHOLD_ID_MAX,
};
use hukou_protocol::rules::SignatureCheck;
use hukou_protocol::rules::{BODY_RULES, BodyRules, Stage, body_rules};
use hukou_protocol::{
    BodyKind, BureauCode, CancellationReason, Category, Digest, EntryRef, HouseholdId, Ledger,
    PersonTag, RefusalReason, Relation, Seq, SignedEntry, Violation,
};

const _: () = assert!(DAY_MS == LIMIT_DAY_MS);

/// A member of no genesis here (`membership(3)` has the first three codes).
fn non_member() -> BureauCode {
    BureauCode::new(CODES[3]).unwrap()
}

/// A world of three bureaus whose setup entries are applied by `apply` alone (not `admit`), so a
/// test can build the states that only racing logs produce (a person registered twice).
struct Scene {
    w: World,
}

impl Scene {
    fn new() -> Scene {
        Scene {
            w: World::with_epochs(3),
        }
    }

    fn person(&mut self) -> PersonTag {
        let p = person(self.w.next_person);
        self.w.next_person += 1;
        p
    }

    fn time(&self, b: usize) -> u64 {
        self.w.bureaus[b].time_ms
    }

    /// Applies `body` as bureau `b`'s next entry; panics if `apply` refuses it.
    fn force(&mut self, b: usize, body: Body) -> EntryRef {
        self.w.bureaus[b].time_ms += 60_000;
        let entry = self.w.bureaus[b].draft(self.w.network, body);
        if let Err(v) = self.w.ledger.apply(&entry, SignatureCheck::Verify) {
            panic!("setup entry refused: {v}");
        }
        self.w.bureaus[b].accept(&entry);
        entry.reference()
    }

    /// The index of `p`'s arbiter.
    fn arbiter(&self, p: PersonTag) -> usize {
        self.w.index_of(self.w.ledger.membership().arbiter(&p))
    }

    /// Has `p`'s arbiter grant `claimant` a claim on `p` following `after`.
    fn grant(&mut self, p: PersonTag, claimant: usize, after: Option<EntryRef>) -> EntryRef {
        let claimant = self.w.code(claimant);
        self.force(
            self.arbiter(p),
            Body::Claim {
                person: p,
                claimant,
                after,
            },
        )
    }

    /// The claim an honest arbiter grants `claimant` on `p`: following `p`'s latest cancellation.
    fn claim(&mut self, claimant: usize, p: PersonTag) -> EntryRef {
        let after = self.w.ledger.claim_after(&p);
        self.grant(p, claimant, after)
    }

    /// Enrols `p` at bureau `b`, consuming `claim`.
    fn enrol_with(
        &mut self,
        b: usize,
        p: PersonTag,
        claim: EntryRef,
        household: u64,
        relation: Relation,
    ) -> EntryRef {
        self.force(
            b,
            Body::Enrol {
                person: p,
                placement: Placement {
                    household: HouseholdId(household),
                    relation,
                },
                claim,
            },
        )
    }

    /// Claims `p` for bureau `b` and enrols them there.
    fn enrol(&mut self, b: usize, p: PersonTag, household: u64, relation: Relation) -> EntryRef {
        let claim = self.claim(b, p);
        self.enrol_with(b, p, claim, household, relation)
    }

    /// Gives `p` a record at bureau `b`, as the head of a new household: moves them there from
    /// the bureau they are registered at, or enrols them if they are registered nowhere (a
    /// second record would need a second claim, which no arbiter grants).
    fn place(&mut self, b: usize, p: PersonTag, household: u64) -> EntryRef {
        match self.w.ledger.person(&p).and_then(|s| s.registered_at()) {
            Some(at) => {
                let from = self.w.index_of(at);
                assert_ne!(from, b, "already registered there");
                let permit = self.permit(b, from, p, 30);
                let d = self.deregister(from, permit, p);
                self.register(b, d, p, household)
            }
            None => self.enrol(b, p, household, Relation::Head),
        }
    }

    fn permit(&mut self, destination: usize, origin: usize, p: PersonTag, days: u64) -> EntryRef {
        let valid_until_ms = self.time(destination) + 60_000 + days * DAY_MS;
        self.force(
            destination,
            Body::Permit {
                person: p,
                origin: self.w.code(origin),
                category: Category::Spouse,
                valid_until_ms,
                materials: Digest([1; 32]),
                corrects: None,
            },
        )
    }

    fn deregister(&mut self, origin: usize, permit: EntryRef, p: PersonTag) -> EntryRef {
        self.force(
            origin,
            Body::Deregistration {
                permit,
                person: p,
                new_head: None,
            },
        )
    }

    fn register(
        &mut self,
        destination: usize,
        deregistration: EntryRef,
        p: PersonTag,
        household: u64,
    ) -> EntryRef {
        self.force(
            destination,
            Body::Registration {
                deregistration,
                person: p,
                placement: Placement {
                    household: HouseholdId(household),
                    relation: Relation::Head,
                },
            },
        )
    }

    fn cancel(&mut self, b: usize, p: PersonTag, reason: CancellationReason) -> EntryRef {
        self.force(
            b,
            Body::Cancellation {
                person: p,
                reason,
                new_head: None,
            },
        )
    }

    fn refuse(&mut self, origin: usize, permit: EntryRef) -> EntryRef {
        self.force(
            origin,
            Body::Refusal {
                permit,
                reason: RefusalReason::RecordMismatch,
            },
        )
    }

    fn revoke(&mut self, destination: usize, permit: EntryRef) -> EntryRef {
        self.force(destination, Body::Revocation { permit })
    }

    /// The case: the ledger so far and bureau `b`'s next entry, not applied.
    fn finish(mut self, b: usize, body: Body) -> Case {
        self.w.bureaus[b].time_ms += 60_000;
        let entry = self.w.bureaus[b].draft(self.w.network, body);
        Case {
            ledger: self.w.ledger,
            entry,
        }
    }
}

struct Case {
    ledger: Ledger,
    entry: SignedEntry,
}

/// The faults a builder is asked for, by catalogue key.
struct Faults(BTreeSet<String>);

impl Faults {
    fn has(&self, key: &str) -> bool {
        self.0.contains(key)
    }

    /// Whether two faults are asked for together.
    fn both(&self, a: &str, b: &str) -> bool {
        self.has(a) && self.has(b)
    }
}

fn placement(f: &Faults, existing: u64) -> Option<Placement> {
    let (range, has_head, unknown) = (
        f.has("household_out_of_range"),
        f.has("household_has_head"),
        f.has("household_unknown"),
    );
    if has_head && (range || unknown) {
        return None;
    }
    let household = match (range, has_head) {
        (true, _) => HOUSEHOLD_ID_MAX + 1,
        (_, true) => existing,
        _ => 500,
    };
    let relation = if unknown {
        Relation::Child
    } else {
        Relation::Head
    };
    Some(Placement {
        household: HouseholdId(household),
        relation,
    })
}

/// The rules of a birth's date, checked before everything else of a birth.
const DATE_RULES: [&str; 3] = [
    "birth_date_invalid",
    "birth_date_in_future",
    "birth_date_too_old",
];

/// The rules of `Enrol` and `Birth` that read where the person stands. They are shadowed (see
/// the catalogue): a person with an unconsumed claim stands nowhere.
const STANDING_RULES: [&str; 4] = [
    "person_already_registered",
    "admit:person_already_registered",
    "admit:person_in_transit",
    "admit:person_cancelled",
];

/// The one standing rule asked for, or `Some(None)` for none; `None` if more than one is.
fn standing(f: &Faults, rules: &[&'static str]) -> Option<Option<&'static str>> {
    let asked: Vec<&'static str> = rules.iter().copied().filter(|k| f.has(k)).collect();
    match asked.as_slice() {
        [] => Some(None),
        [one] => Some(Some(one)),
        _ => None,
    }
}

/// An enrolment or birth of person `p` at bureau 0, consuming a claim the arbiter granted.
fn enrol_case(kind: BodyKind, f: &Faults) -> Option<Case> {
    let wrong_kind = f.has("reference_wrong_kind");
    let mismatch = f.has("person_mismatch");
    let not_for_author = f.has("claim_not_for_author");
    let mut consumed = f.has("claim_consumed");
    // One date is either not a date, or after the entry's, or too long before it.
    if DATE_RULES.iter().filter(|k| f.has(k)).count() > 1
        || (wrong_kind && (mismatch || not_for_author || consumed))
    {
        return None;
    }
    let standing = standing(f, &STANDING_RULES)?;
    if let Some(rule) = standing {
        // The person stands somewhere only if the entry's claim is not an unconsumed claim on
        // them for the author: a claim rule is broken too. Unless one is asked for, it can be
        // added only where every other fault asked for is checked before the claim rules.
        let carried = wrong_kind || mismatch || not_for_author || consumed;
        let before_claim =
            f.0.iter()
                .all(|k| k == rule || DATE_RULES.contains(&k.as_str()));
        if !carried && (f.0.len() == 1 || !before_claim) {
            return None;
        }
        if !wrong_kind && !mismatch {
            // A claim on them that is not consumed would leave them standing nowhere.
            consumed = true;
        }
    }
    let placement = placement(f, 1)?;
    let mut s = Scene::new();
    let head = s.person();
    let head_enrolment = s.enrol(0, head, 1, Relation::Head);
    let p = s.person();
    let claimant = if not_for_author { 1 } else { 0 };
    let subject = if mismatch { s.person() } else { p };
    let claim = if wrong_kind {
        head_enrolment
    } else {
        let claim = s.claim(claimant, subject);
        if consumed {
            s.enrol_with(claimant, subject, claim, 20, Relation::Head);
        }
        claim
    };
    // Where `p` stands: registered at the claimant if the claim on them was consumed.
    let at = (subject == p && consumed && !wrong_kind).then_some(claimant);
    match standing {
        None => {
            if let Some(at) = at {
                // Gone again, so that only the consumption stands in the way.
                s.cancel(at, p, CancellationReason::Emigration);
            }
        }
        Some(rule) => {
            let here = rule == "person_already_registered";
            let at = at.unwrap_or_else(|| {
                let b = if here { 0 } else { 1 };
                s.enrol(b, p, 21, Relation::Head);
                b
            });
            match rule {
                "person_already_registered" if at != 0 => {
                    s.place(0, p, 22);
                }
                "person_already_registered" | "admit:person_already_registered" => {}
                "admit:person_in_transit" => {
                    let permit = s.permit(2, at, p, 30);
                    s.deregister(at, permit, p);
                }
                "admit:person_cancelled" => {
                    s.cancel(at, p, CancellationReason::Death);
                }
                other => unreachable!("{other}"),
            }
        }
    }
    let body = match kind {
        BodyKind::Enrol => Body::Enrol {
            person: p,
            placement,
            claim,
        },
        BodyKind::Birth => {
            // `finish` advances the author's clock by a minute: the birth's own time.
            let time = s.time(0) + 60_000;
            let born_on = if f.has("birth_date_invalid") {
                20260230
            } else if f.has("birth_date_in_future") {
                yyyymmdd(time + DAY_MS)
            } else if f.has("birth_date_too_old") {
                let days = u64::from(BIRTH_REGISTRATION_AGE_DAYS_MAX) + 1;
                yyyymmdd(time - days * DAY_MS)
            } else {
                yyyymmdd(time)
            };
            Body::Birth {
                person: p,
                placement,
                claim,
                born_on,
            }
        }
        other => unreachable!("{other}"),
    };
    Some(s.finish(0, body))
}

/// The rules of `Claim` that read where the person stands, all shadowed.
const CLAIM_STANDING_RULES: [&str; 3] = [
    "admit:person_already_registered",
    "admit:person_in_transit",
    "admit:person_cancelled",
];

/// A claim on person `p` by `p`'s arbiter, granting `p` to bureau 0.
///
/// For `handover_pending`, everything is set up in epoch 0 as for the other faults, with `p`
/// arbitrated by a bureau other than 0; then a fifth code joins (epoch 1, so that epoch keeps its
/// quorum when one of four leaves) and the arbiter retires to bureau 0 (epoch 2) from one past
/// its last entry held here. Bureau 0 then claims `p`, naming epoch 2, before the retired log is
/// held up to its cut.
fn claim_case(f: &Faults) -> Option<Case> {
    let not_arbiter = f.has("not_arbiter");
    let handover = f.has("handover_pending");
    let unknown_claimant = f.has("unknown_claimant");
    let wrong_kind = f.has("reference_wrong_kind");
    let mismatch = f.has("person_mismatch");
    let cancelled = f.has("person_cancelled");
    let claimed = f.has("person_claimed");
    if (wrong_kind && (mismatch || cancelled || claimed))
        || (claimed && (not_arbiter || mismatch || cancelled))
    {
        return None;
    }
    let standing = standing(f, &CLAIM_STANDING_RULES)?;
    if let Some(rule) = standing {
        // Standing anywhere, the person can be claimed by their arbiter only following a
        // cancellation that is not theirs or not a cancellation, or one already followed.
        if cancelled && rule != "admit:person_cancelled" {
            return None;
        }
        let carried = not_arbiter || handover || wrong_kind || mismatch || cancelled || claimed;
        // Unless one is asked for, `person_claimed` (the last `apply` rule) carries it: the
        // person's first claim was consumed.
        if !carried && !unknown_claimant {
            return None;
        }
    }
    let mut s = Scene::new();
    // A handover needs a retiring arbiter that is not the claimant, bureau 0.
    let p = loop {
        let p = s.person();
        if !handover || s.arbiter(p) != 0 {
            break p;
        }
    };
    let arbiter = s.arbiter(p);
    let author = match (handover, not_arbiter) {
        (false, false) => arbiter,
        (false, true) => (arbiter + 1) % 3,
        // Bureau 0 succeeds the retired arbiter; the other remaining bureau is no arbiter of p.
        (true, false) => 0,
        (true, true) => 3 - arbiter,
    };
    let claimant = if unknown_claimant {
        non_member()
    } else {
        s.w.code(0)
    };
    // Where `p` stands, registered first at bureau 1 by the claim following no cancellation.
    let mut death = None;
    if let Some(rule) = standing {
        s.enrol(1, p, 1, Relation::Head);
        match rule {
            "admit:person_already_registered" => {}
            "admit:person_in_transit" => {
                let permit = s.permit(2, 1, p, 30);
                s.deregister(1, permit, p);
            }
            "admit:person_cancelled" => death = Some(s.cancel(1, p, CancellationReason::Death)),
            other => unreachable!("{other}"),
        }
    }
    if cancelled && !mismatch && death.is_none() {
        s.enrol(1, p, 1, Relation::Head);
        death = Some(s.cancel(1, p, CancellationReason::Death));
    }
    if claimed && standing.is_none() {
        // Granted to another bureau, never consumed.
        s.claim(2, p);
    }
    let after = if wrong_kind {
        let other = s.person();
        Some(s.enrol(2, other, 1, Relation::Head))
    } else if mismatch {
        let other = s.person();
        s.enrol(2, other, 2, Relation::Head);
        let reason = if cancelled {
            CancellationReason::Death
        } else {
            CancellationReason::Emigration
        };
        Some(s.cancel(2, other, reason))
    } else if cancelled {
        death
    } else {
        None
    };
    if handover {
        s.w.push_config(vec![Change::AddMember {
            code: BureauCode::new(350102).unwrap(),
            name: "joining bureau".into(),
            key: ed25519_dalek::SigningKey::from_bytes(&[0x30; 32])
                .verifying_key()
                .to_bytes(),
            addresses: vec![],
        }]);
        let retired = s.w.code(arbiter);
        let held = s.w.ledger.log_len(retired);
        s.w.push_config(vec![Change::RetireMember {
            code: retired,
            from_seq: Seq(held + 1),
            successor: s.w.code(0),
        }]);
        s.w.bureaus[author].epoch = 2;
    }
    Some(s.finish(
        author,
        Body::Claim {
            person: p,
            claimant,
            after,
        },
    ))
}

/// A permit of bureau 1 (destination) naming bureau 0 (origin).
fn permit_case(f: &Faults) -> Option<Case> {
    let missing = f.has("correction_missing");
    let wrong_kind = f.has("reference_wrong_kind");
    let mismatch = f.has("person_mismatch");
    let wrong_transfer = f.has("correction_wrong_transfer");
    if f.both("permit_origin_is_author", "unknown_origin")
        || (missing && (f.has("correction_unexpected") || wrong_kind || mismatch || wrong_transfer))
        || (wrong_kind && (mismatch || wrong_transfer))
    {
        return None;
    }
    let mut s = Scene::new();
    let p = s.person();
    // The registration a return-after-error permit corrects: the person it names moved to the
    // origin (0) from the author (1), or from bureau 2 for a wrong transfer.
    let corrected = if wrong_kind {
        let other = s.person();
        Some(s.enrol(2, other, 1, Relation::Head))
    } else if mismatch || wrong_transfer || f.has("correction_unexpected") {
        let moved = if mismatch { s.person() } else { p };
        let from = if wrong_transfer { 2 } else { 1 };
        s.enrol(from, moved, 1, Relation::Head);
        let permit = s.permit(0, from, moved, 30);
        let d = s.deregister(from, permit, moved);
        Some(s.register(0, d, moved, 1))
    } else {
        None
    };
    if f.has("person_already_registered") {
        s.place(1, p, 7);
    }
    let category = if f.has("correction_unexpected") {
        Category::Spouse
    } else if missing || corrected.is_some() {
        Category::ReturnAfterError
    } else {
        Category::Talent
    };
    let origin = if f.has("permit_origin_is_author") {
        s.w.code(1)
    } else if f.has("unknown_origin") {
        non_member()
    } else {
        s.w.code(0)
    };
    // `finish` advances the author's clock by a minute: the permit's own time.
    let time = s.time(1) + 60_000;
    let valid_until_ms = if f.has("permit_validity_invalid") {
        time + 400 * DAY_MS
    } else {
        time + 30 * DAY_MS
    };
    Some(s.finish(
        1,
        Body::Permit {
            person: p,
            origin,
            category,
            valid_until_ms,
            materials: Digest([2; 32]),
            corrects: corrected,
        },
    ))
}

/// A refusal by bureau 0 of a permit of bureau 1.
fn refusal_case(f: &Faults) -> Option<Case> {
    let wrong_kind = f.has("reference_wrong_kind");
    if wrong_kind && f.0.len() > 1 {
        return None;
    }
    let mut s = Scene::new();
    let p = s.person();
    let enrolment = s.enrol(0, p, 1, Relation::Head);
    let origin = if f.has("not_permit_origin") { 2 } else { 0 };
    let permit = s.permit(1, origin, p, 30);
    if f.has("permit_not_open") {
        s.refuse(origin, permit);
    }
    if f.has("admit:permit_not_open") {
        s.revoke(1, permit);
    }
    let reference = if wrong_kind { enrolment } else { permit };
    Some(s.finish(
        0,
        Body::Refusal {
            permit: reference,
            reason: RefusalReason::MaterialsIncomplete,
        },
    ))
}

/// Who leaves a household (a deregistration or cancellation at bureau 0), and the `new_head`
/// the body names; `None` if the succession faults asked for exclude each other.
fn leaver(s: &mut Scene, f: &Faults, p: PersonTag) -> Option<Option<PersonTag>> {
    let not_here = f.has("person_not_registered_here");
    let leaving = f.has("head_leaving_without_successor");
    let not_in = f.has("successor_not_in_household");
    let unexpected = f.has("successor_unexpected");
    if [leaving, not_in, unexpected].iter().filter(|x| **x).count() > 1
        || (not_here && (leaving || not_in || unexpected))
    {
        return None;
    }
    if not_here {
        // Registered elsewhere only.
        s.enrol(2, p, 1, Relation::Head);
        return Some(None);
    }
    s.enrol(0, p, 3, Relation::Head);
    if leaving || not_in {
        let member = s.person();
        s.enrol(0, member, 3, Relation::Spouse);
    }
    let outsider = s.person();
    s.enrol(0, outsider, 4, Relation::Head);
    Some(match (not_in, unexpected) {
        (true, _) | (_, true) => Some(outsider),
        _ => None,
    })
}

/// A deregistration by bureau 0 against a permit of bureau 1.
fn deregistration_case(f: &Faults) -> Option<Case> {
    let wrong_kind = f.has("reference_wrong_kind");
    if wrong_kind
        && [
            "not_permit_origin",
            "person_mismatch",
            "permit_not_open",
            "permit_expired",
            "admit:permit_not_open",
        ]
        .iter()
        .any(|k| f.has(k))
    {
        return None;
    }
    let mut s = Scene::new();
    let p = s.person();
    let new_head = leaver(&mut s, f, p)?;
    let other = s.person();
    let enrolment = s.enrol(2, other, 5, Relation::Head);
    let origin = if f.has("not_permit_origin") { 2 } else { 0 };
    let permit_person = if f.has("person_mismatch") { other } else { p };
    let days = if f.has("permit_expired") { 1 } else { 30 };
    let permit = s.permit(1, origin, permit_person, days);
    let permit_time = s.time(1);
    if f.has("permit_not_open") {
        s.refuse(origin, permit);
    }
    if f.has("admit:permit_not_open") {
        s.revoke(1, permit);
    }
    if f.has("permit_expired") {
        s.w.bureaus[0].time_ms = s.time(0).max(permit_time + 2 * DAY_MS);
    }
    let reference = if wrong_kind { enrolment } else { permit };
    Some(s.finish(
        0,
        Body::Deregistration {
            permit: reference,
            person: p,
            new_head,
        },
    ))
}

/// A registration by bureau 1 against a deregistration of bureau 0.
fn registration_case(f: &Faults) -> Option<Case> {
    let wrong_kind = f.has("reference_wrong_kind");
    if wrong_kind
        && [
            "not_permit_destination",
            "person_mismatch",
            "deregistration_consumed",
            "permit_revoked_by_destination",
        ]
        .iter()
        .any(|k| f.has(k))
    {
        return None;
    }
    if f.both("deregistration_consumed", "permit_revoked_by_destination") {
        return None;
    }
    let registered = f.has("person_already_registered");
    let mut mismatch = f.has("person_mismatch");
    if registered && !(wrong_kind || mismatch || f.has("deregistration_consumed")) {
        // Shadowed: while the deregistration is in transit the person has no record anywhere.
        // Only `not_permit_destination` comes before a rule that can carry it.
        if f.0.len() == 2 && f.has("not_permit_destination") {
            mismatch = true;
        } else {
            return None;
        }
    }
    let placement = placement(f, 1)?;
    let mut s = Scene::new();
    let head = s.person();
    s.enrol(1, head, 1, Relation::Head);
    let p = s.person();
    s.enrol(0, p, 1, Relation::Head);
    let destination = if f.has("not_permit_destination") {
        2
    } else {
        1
    };
    let permit = s.permit(destination, 0, p, 30);
    let deregistration = s.deregister(0, permit, p);
    if f.has("deregistration_consumed") {
        s.register(destination, deregistration, p, 9);
        // Gone again, so that only the consumption stands in the way.
        s.cancel(destination, p, CancellationReason::Emigration);
    }
    if f.has("permit_revoked_by_destination") {
        s.revoke(destination, permit);
    }
    let person = if mismatch { s.person() } else { p };
    if registered {
        if wrong_kind && person == p {
            // The deregistration consumed, so the person can be registered here.
            s.register(1, deregistration, p, 8);
        } else {
            s.place(1, person, 8);
        }
    }
    let reference = if wrong_kind { permit } else { deregistration };
    Some(s.finish(
        1,
        Body::Registration {
            deregistration: reference,
            person,
            placement,
        },
    ))
}

/// A revocation by bureau 1 of one of its permits naming bureau 0.
fn revocation_case(f: &Faults) -> Option<Case> {
    let wrong_kind = f.has("reference_wrong_kind");
    if wrong_kind && f.0.len() > 1 {
        return None;
    }
    let mut s = Scene::new();
    let p = s.person();
    let enrolment = s.enrol(0, p, 1, Relation::Head);
    let destination = if f.has("not_permit_destination") {
        2
    } else {
        1
    };
    let permit = s.permit(destination, 0, p, 30);
    if f.has("admit:permit_not_open") {
        s.refuse(0, permit);
    }
    if f.has("permit_not_open") {
        s.revoke(destination, permit);
    }
    let reference = if wrong_kind { enrolment } else { permit };
    Some(s.finish(1, Body::Revocation { permit: reference }))
}

/// A cancellation at bureau 0.
fn cancellation_case(f: &Faults) -> Option<Case> {
    let mut s = Scene::new();
    let p = s.person();
    let new_head = leaver(&mut s, f, p)?;
    Some(s.finish(
        0,
        Body::Cancellation {
            person: p,
            reason: CancellationReason::Emigration,
            new_head,
        },
    ))
}

/// A head change at bureau 0.
fn head_change_case(f: &Faults) -> Option<Case> {
    let unknown = f.has("household_unknown");
    let not_in = f.has("successor_not_in_household");
    let already = f.has("already_head");
    if already && (unknown || not_in) {
        return None;
    }
    let mut s = Scene::new();
    let head = s.person();
    s.enrol(0, head, 1, Relation::Head);
    let member = s.person();
    s.enrol(0, member, 1, Relation::Spouse);
    let outsider = s.person();
    s.enrol(0, outsider, 2, Relation::Head);
    let household = HouseholdId(if unknown { 77 } else { 1 });
    let new_head = match (not_in, already) {
        (true, _) => outsider,
        (_, true) => head,
        _ => member,
    };
    Some(s.finish(
        0,
        Body::HeadChange {
            household,
            new_head,
        },
    ))
}

fn build(kind: BodyKind, f: &Faults) -> Option<Case> {
    match kind {
        BodyKind::Enrol | BodyKind::Birth => enrol_case(kind, f),
        BodyKind::Claim => claim_case(f),
        BodyKind::Permit => permit_case(f),
        BodyKind::Refusal => refusal_case(f),
        BodyKind::Deregistration => deregistration_case(f),
        BodyKind::Registration => registration_case(f),
        BodyKind::Revocation => revocation_case(f),
        BodyKind::Cancellation => cancellation_case(f),
        BodyKind::HeadChange => head_change_case(f),
    }
}

fn faults(keys: &[&str]) -> Faults {
    Faults(keys.iter().map(|k| k.to_string()).collect())
}

/// Judges a case as its author would (`admit`), and checks that `admit` agrees with `apply`:
/// `apply` refuses the same violation, or (for an admit-only fault) accepts the entry.
fn judge(case: &Case) -> Result<(), Violation> {
    let admitted = case.ledger.admit(&case.entry, SignatureCheck::Verify);
    let mut ledger = case.ledger.clone();
    let applied = ledger.apply(&case.entry, SignatureCheck::Verify);
    match (&admitted, applied) {
        (Err(a), Err(b)) => assert_eq!(a, &b, "admit checks apply's rules first"),
        (_, Ok(_)) => {}
        (Ok(()), Err(v)) => panic!("apply refused what admit accepts: {v}"),
    }
    admitted
}

/// Whether a refused case left the ledger unchanged.
fn judge_unchanged(case: &Case) -> Result<(), Violation> {
    let before = case.ledger.clone();
    let mut ledger = case.ledger.clone();
    let applied = ledger.apply(&case.entry, SignatureCheck::Verify);
    if applied.is_err() {
        assert_eq!(ledger, before, "a refusal changes nothing");
    }
    judge(case)
}

/// How the pairs of one body's rules were covered.
#[derive(Default)]
struct Coverage {
    /// Built and reported by the earlier rule.
    checked: usize,
    /// Listed as exclusive.
    exclusive: usize,
    /// Never reported, because a shadowed rule needs an earlier rule broken with it.
    shadowed: usize,
}

fn check_body(kind: BodyKind, body: &BodyRules) -> Coverage {
    // The base entry, breaking nothing, is valid.
    let base = build(kind, &faults(&[])).expect("a valid base case");
    assert_eq!(judge(&base), Ok(()), "{kind}: the base entry is valid");

    let keys: Vec<String> = body.rules.iter().map(|r| r.key()).collect();
    let position = |key: &str| {
        keys.iter()
            .position(|k| k == key)
            .unwrap_or_else(|| panic!("{kind}: {key} is a rule of the list"))
    };
    // Each shadowed rule, by position, with the positions of the rules that carry it.
    let shadowed: BTreeMap<usize, Vec<usize>> = body
        .shadowed
        .iter()
        .map(|s| (position(s.rule), s.by.iter().map(|k| position(k)).collect()))
        .collect();

    for (i, (rule, key)) in body.rules.iter().zip(&keys).enumerate() {
        if shadowed.contains_key(&i) {
            assert!(
                build(kind, &faults(&[key])).is_none(),
                "{kind}: {key} is shadowed, so no entry breaks it alone"
            );
            continue;
        }
        let case = build(kind, &faults(&[key])).unwrap_or_else(|| panic!("{kind}: {key} alone"));
        let got = judge_unchanged(&case).expect_err(key);
        assert_eq!(got.name(), rule.name, "{kind}: {key} alone: {got}");
        assert_eq!(got.entry(), case.entry.reference(), "{kind}: {key}");
        if rule.stage == Stage::Admit {
            let mut ledger = case.ledger.clone();
            assert!(
                ledger.apply(&case.entry, SignatureCheck::Verify).is_ok(),
                "{kind}: {key} is an admit rule, so apply accepts the entry"
            );
        }
    }

    let exclusive: BTreeSet<(String, String)> = body
        .exclusive
        .iter()
        .map(|(a, b, _)| (a.to_string(), b.to_string()))
        .collect();
    let mut coverage = Coverage::default();
    for i in 0..keys.len() {
        for j in i + 1..keys.len() {
            let pair = (keys[i].clone(), keys[j].clone());
            let listed = exclusive.contains(&pair);
            let built = build(kind, &faults(&[&keys[i], &keys[j]]));
            // An entry breaking a shadowed rule also breaks one of its carriers; if every
            // carrier comes before the pair's first rule, that carrier is reported, and no
            // entry breaks the pair with nothing before it.
            let never_first = shadowed.contains_key(&i)
                || shadowed.get(&j).is_some_and(|by| by.iter().all(|&c| c < i));
            if never_first {
                assert!(
                    built.is_none() && !listed,
                    "{kind}: ({}, {}) has a shadowed rule not carried by the first, so it is \
                     neither built nor listed as exclusive",
                    pair.0,
                    pair.1
                );
                coverage.shadowed += 1;
                continue;
            }
            match built {
                None => {
                    assert!(
                        listed,
                        "{kind}: ({}, {}) cannot be built but is not listed as exclusive",
                        pair.0, pair.1
                    );
                    coverage.exclusive += 1;
                }
                Some(case) => {
                    assert!(
                        !listed,
                        "{kind}: ({}, {}) is listed as exclusive but an entry breaks both",
                        pair.0, pair.1
                    );
                    let got = judge_unchanged(&case)
                        .expect_err(&format!("{kind}: ({}, {})", pair.0, pair.1));
                    assert_eq!(
                        got.name(),
                        body.rules[i].name,
                        "{kind}: an entry breaking {} and {} is reported by the first: {got}",
                        pair.0,
                        pair.1
                    );
                    coverage.checked += 1;
                }
            }
        }
    }
    coverage
}

#[test]
fn every_body_rule_is_reached_and_reported_in_catalogue_order() {
    let mut report = Vec::new();
    for body in BODY_RULES {
        for &kind in body.kinds {
            let c = check_body(kind, body);
            report.push(format!(
                "{kind}: {} pairs checked, {} exclusive, {} shadowed",
                c.checked, c.exclusive, c.shadowed
            ));
        }
    }
    eprintln!("{}", report.join("\n"));
}

/// The common steps come before the body's rules: the envelope before the chain, the chain
/// before the references, the references before any body rule.
#[test]
fn common_steps_come_before_the_body() {
    // A deregistration by bureau 0 against an enrolment: reference_wrong_kind, a body rule.
    let case = deregistration_case(&faults(&["reference_wrong_kind"])).unwrap();
    let e = case.entry.entry().clone();
    let judged = |entry: SignedEntry| {
        judge(&Case {
            ledger: case.ledger.clone(),
            entry,
        })
        .unwrap_err()
        .name()
    };
    assert_eq!(judged(case.entry.clone()), "reference_wrong_kind");
    // Its reference's hash is also wrong: the reference step is reported.
    let Body::Deregistration {
        permit,
        person,
        new_head,
    } = e.body.clone()
    else {
        unreachable!("a deregistration")
    };
    let wrong_hash = Body::Deregistration {
        permit: EntryRef {
            hash: hukou_protocol::EntryHash([9; 32]),
            ..permit
        },
        person,
        new_head,
    };
    let bad_reference = hukou_protocol::Entry {
        body: wrong_hash,
        ..e.clone()
    };
    assert_eq!(
        judged(bad_reference.clone().sign(&key(0))),
        "reference_hash_mismatch"
    );
    // It is also timed before its log's last entry: the chain is reported.
    let early = hukou_protocol::Entry {
        time_ms: case.ledger.log(e.author).unwrap().last_time_ms - 1,
        ..bad_reference
    };
    assert_eq!(judged(early.clone().sign(&key(0))), "time_went_backwards");
    // And signed with another member's key: the envelope is reported.
    assert_eq!(judged(early.sign(&key(1))), "bad_signature");
}

#[test]
fn catalogue_lookup_by_kind() {
    assert_eq!(body_rules(BodyKind::Enrol).kinds, &[BodyKind::Enrol]);
    assert_eq!(body_rules(BodyKind::Birth).kinds, &[BodyKind::Birth]);
}

/// A birth is judged by its date rules and then exactly as an enrolment (`judge` calls
/// `check_birth_date`, then `check_enrol`): the catalogue says the same.
#[test]
fn a_birth_is_judged_by_its_date_and_then_as_an_enrolment() {
    let (enrol, birth) = (body_rules(BodyKind::Enrol), body_rules(BodyKind::Birth));
    let dates: Vec<&str> = birth.rules[..DATE_RULES.len()]
        .iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(dates, DATE_RULES);
    assert_eq!(&birth.rules[DATE_RULES.len()..], enrol.rules);
    let pairs = |b: &BodyRules| -> Vec<(&str, &str)> {
        b.exclusive
            .iter()
            .map(|(x, y, _)| (*x, *y))
            .filter(|(x, _)| !DATE_RULES.contains(x))
            .collect()
    };
    assert_eq!(pairs(birth), pairs(enrol));
    let shadowed = |b: &BodyRules| -> Vec<(&str, &[&str])> {
        b.shadowed.iter().map(|s| (s.rule, s.by)).collect()
    };
    assert_eq!(shadowed(birth), shadowed(enrol));
}
