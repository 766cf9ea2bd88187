//! The rulebook across configuration epochs, with real signed entries and signed updates: an
//! entry is judged under the epoch it names (keys, members, arbiters), cuts refuse what a
//! revoked key or a retired bureau signs from their position on, a retired arbiter's successor
//! waits for its log, and the state reached does not depend on the order entries and updates
//! arrive in.

// Judging returns the violation unboxed, as the rulebook does (see its note on size).
#![allow(clippy::result_large_err)]

mod common;

use std::collections::BTreeMap;

use common::*;
use ed25519_dalek::SigningKey;
use hukou_protocol::checkpoint::{Certificate, CertificateError, Checkpoint, Cosignature};
use hukou_protocol::config::{Change, Cut, CutKind, Deadlines, SignedUpdate};
use hukou_protocol::entry::{Body, Placement};
use hukou_protocol::merkle::Tree;
use hukou_protocol::rules::{CausalBuffer, SignatureCheck};
use hukou_protocol::types::CONFIG_LOG;
use hukou_protocol::{
    BureauCode, Category, Digest, EntryHash, EntryRef, HouseholdId, Ledger, NetworkId, PersonTag,
    Relation, Seq, SignedEntry, Violation,
};

/// A code no genesis member has; it joins by `AddMember` where a test needs it.
const NEWCOMER: u32 = 350102;

fn code(c: u32) -> BureauCode {
    BureauCode::new(c).unwrap()
}

/// A fresh key, never a member's or an administrator's.
fn fresh_key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[0x30 + seed; 32])
}

fn pk(key: &SigningKey) -> [u8; 32] {
    key.verifying_key().to_bytes()
}

fn head(household: u64) -> Placement {
    Placement {
        household: HouseholdId(household),
        relation: Relation::Head,
    }
}

/// Bureau `b`'s next entry, signed with its current key and epoch; the log is not advanced.
fn draft(w: &mut World, b: usize, body: Body) -> SignedEntry {
    w.bureaus[b].time_ms += 60_000;
    w.bureaus[b].draft(w.network, body)
}

/// Advances bureau `b`'s log past `entry` (applied by the caller, or to be delivered later).
fn advance(w: &mut World, b: usize, entry: &SignedEntry) {
    w.bureaus[b].accept(entry);
    w.history.push(entry.clone());
}

/// A permit by bureau `b` for `person`, asking `origin` to release them.
fn permit(w: &World, b: usize, person: PersonTag, origin: BureauCode) -> Body {
    Body::Permit {
        person,
        origin,
        category: Category::Spouse,
        valid_until_ms: w.bureaus[b].time_ms + 30 * DAY_MS,
        materials: Digest([5; 32]),
        corrects: None,
    }
}

/// Applies `entry` to a copy of `ledger`: the violation, with the check that the refusal
/// changed nothing.
fn refused(ledger: &Ledger, entry: &SignedEntry) -> Violation {
    let mut copy = ledger.clone();
    let err = copy
        .apply(entry, SignatureCheck::Verify)
        .expect_err("refused");
    assert_eq!(&copy, ledger, "a refusal changes nothing");
    err
}

/// A person not enrolled yet whose arbiter in epoch 0 is bureau `b`.
fn unclaimed_person_of(w: &World, b: usize, from: u32) -> PersonTag {
    let epoch_0 = w.ledger.epochs().get(0).unwrap();
    (from..)
        .map(person)
        .find(|p| epoch_0.arbiter(p) == w.code(b) && w.ledger.person(p).is_none())
        .unwrap()
}

// ---------------------------------------------------------------------------------------------

#[test]
fn an_entry_naming_an_unknown_epoch_waits_for_it() {
    let mut w = World::with_epochs(4);
    let p = w.enrol_new(1);
    w.bureaus[0].epoch = 1;
    let body = permit(&w, 0, p, w.code(1));
    let early = draft(&mut w, 0, body);
    assert_eq!(
        refused(&w.ledger, &early),
        Violation::EpochUnknown {
            entry: early.reference(),
            epoch: 1
        }
    );
    assert!(refused(&w.ledger, &early).is_not_yet());
    assert_eq!(
        w.ledger.waiting_for(&early),
        Some((CONFIG_LOG, Seq(1))),
        "it waits at the configuration log's position for epoch 1"
    );

    let mut buffer = CausalBuffer::new();
    assert!(
        buffer
            .offer(&mut w.ledger, early.clone(), SignatureCheck::Verify)
            .is_empty(),
        "held, neither applied nor refused"
    );
    assert_eq!(buffer.len(), 1);
    assert_eq!(
        buffer.waiting().map(|(at, _)| *at).collect::<Vec<_>>(),
        vec![(CONFIG_LOG, Seq(1))]
    );
    // Released before the epoch exists, it waits again.
    assert!(buffer.release_epoch(&mut w.ledger, 1).is_empty());
    assert_eq!(buffer.len(), 1);

    let cuts = w.push_config(vec![Change::SetAddresses {
        code: w.code(2),
        addresses: vec!["/ip4/10.0.0.3/tcp/4101".into()],
    }]);
    assert_eq!(cuts, vec![]);
    let judged = buffer.release_epoch(&mut w.ledger, 1);
    assert_eq!(judged.len(), 1);
    assert_eq!(judged[0].entry, early);
    assert!(judged[0].result.is_ok(), "{:?}", judged[0].result);
    assert!(buffer.is_empty());
    assert_eq!(w.ledger.log_len(w.code(0)), early.entry().seq.0 + 1);
}

#[test]
fn a_rotated_key_signs_from_its_epoch_on_and_the_old_one_only_before_it() {
    let mut w = World::with_epochs(4);
    let people: Vec<PersonTag> = (0..4).map(|_| w.enrol_new(0)).collect();
    let b = 1;
    let old_key = w.bureaus[b].key.clone();
    let new_key = fresh_key(1);
    assert_eq!(
        w.push_config(vec![Change::RotateKey {
            code: w.code(b),
            key: pk(&new_key),
        }]),
        vec![]
    );
    let origin = w.code(0);

    // Naming epoch 1 with the old key: not the key of epoch 1.
    w.bureaus[b].epoch = 1;
    let body = permit(&w, b, people[0], origin);
    let forged = draft(&mut w, b, body);
    assert_eq!(
        refused(&w.ledger, &forged),
        Violation::BadSignature {
            entry: forged.reference()
        }
    );

    // Naming epoch 0 with the old key, before the bureau's first entry of epoch 1: valid.
    w.bureaus[b].epoch = 0;
    let body = permit(&w, b, people[1], origin);
    w.act(b, body).expect("the old key still signs epoch 0");

    // The new key naming epoch 1: valid.
    w.bureaus[b].key = new_key.clone();
    w.bureaus[b].epoch = 1;
    let body = permit(&w, b, people[2], origin);
    w.act(b, body).expect("the new key signs epoch 1");

    // After it, an entry naming epoch 0 (old key) goes back: refused, with both epochs.
    w.bureaus[b].key = old_key;
    w.bureaus[b].epoch = 0;
    let body = permit(&w, b, people[3], origin);
    let back = draft(&mut w, b, body);
    assert_eq!(
        refused(&w.ledger, &back),
        Violation::EpochRegressed {
            entry: back.reference(),
            epoch: 0,
            previous: 1
        }
    );
    // The new key naming epoch 0 is not epoch 0's key.
    w.bureaus[b].key = new_key;
    let body = permit(&w, b, people[3], origin);
    let wrong = draft(&mut w, b, body);
    assert_eq!(
        refused(&w.ledger, &wrong),
        Violation::BadSignature {
            entry: wrong.reference()
        }
    );
}

/// Bureau 2's whole log, in epoch 0 (old key), after it issued `n` permits for persons
/// registered at bureau 0 (it may also hold claims it granted as an arbiter).
fn log_of_permits(w: &mut World, n: usize) -> Vec<SignedEntry> {
    let people: Vec<PersonTag> = (0..n).map(|_| w.enrol_new(0)).collect();
    let origin = w.code(0);
    for p in people {
        let body = permit(w, 2, p, origin);
        w.act(2, body).unwrap();
    }
    let b2 = w.code(2);
    let log: Vec<SignedEntry> = w
        .history
        .iter()
        .filter(|e| e.entry().author == b2)
        .cloned()
        .collect();
    assert!(
        log.iter()
            .enumerate()
            .all(|(i, e)| e.entry().seq.0 == i as u64)
    );
    log
}

/// A certificate of `log` at `size` under epoch 0, cosigned by bureaus 0, 1 and 3.
fn certificate(w: &World, log: &[SignedEntry], size: u64) -> Certificate {
    let mut tree = Tree::new();
    for e in &log[..size as usize] {
        tree.push(e.hash().0);
    }
    let checkpoint = Checkpoint {
        network: w.network,
        epoch: 0,
        log: w.code(2),
        size,
        root: tree.root(),
        time_ms: log[size as usize - 1].entry().time_ms,
    };
    let cosignatures = [0, 1, 3]
        .into_iter()
        .map(|i| Cosignature::sign(&checkpoint, w.code(i), &w.bureaus[i].key))
        .collect();
    Certificate::new(checkpoint, cosignatures)
}

#[test]
fn a_revoked_key_is_cut_from_its_position() {
    let mut w = World::with_epochs(4);
    let log = log_of_permits(&mut w, 5);
    let b2 = w.code(2);
    // Enrolled while the membership is that of the genesis (`World::claim` asks it for the
    // arbiter).
    let p = w.enrol_new(3);
    let above = certificate(&w, &log, 5);
    let below = certificate(&w, &log, 3);
    assert_eq!(above.verify(w.ledger.epochs()), Ok(()));
    assert_eq!(below.verify(w.ledger.epochs()), Ok(()));
    assert_eq!(w.ledger.cut_positions(), vec![]);

    // The key leaked: revoked from seq 3, which this ledger already holds.
    let new_key = fresh_key(2);
    let cuts = w.push_config(vec![Change::RevokeKey {
        code: b2,
        key: pk(&new_key),
        from_seq: Seq(3),
    }]);
    let cut = Cut {
        log: b2,
        from_seq: Seq(3),
        epoch: 1,
        kind: CutKind::Revoked,
    };
    assert_eq!(cuts, vec![cut]);
    assert_eq!(
        w.ledger.cut_positions(),
        vec![(b2, Seq(3))],
        "the first entry held that the cut refuses"
    );
    // A certificate covering the cut entries no longer counts; one below the cut does.
    assert_eq!(
        above.verify(w.ledger.epochs()),
        Err(CertificateError::Cut {
            from_seq: 3,
            epoch: 1
        })
    );
    assert_eq!(
        CertificateError::Cut {
            from_seq: 3,
            epoch: 1
        }
        .name(),
        "certificate_cut"
    );
    assert_eq!(below.verify(w.ledger.epochs()), Ok(()));

    // A ledger judging with the update already in: the entries below the cut stand, the one at
    // the cut is refused with the cut as evidence, and so is one the old key signs after it.
    let mut fresh = Ledger::with_epochs(w.ledger.epochs().clone());
    for e in &w.history {
        if e.entry().author != b2 || e.entry().seq.0 < 3 {
            fresh.apply(e, SignatureCheck::Verify).unwrap();
        }
    }
    assert_eq!(
        refused(&fresh, &log[3]),
        Violation::SignedAfterCut {
            entry: log[3].reference(),
            epoch: 0,
            from_seq: Seq(3),
            cut_epoch: 1,
            retired: false
        }
    );
    assert_eq!(refused(&fresh, &log[3]).name(), "signed_after_cut");
    assert_eq!(fresh.cut_positions(), vec![]);
    // The holder of the new key carries the log on from seq 3, naming epoch 1.
    let mut honest = w.bureaus[2].clone();
    honest.seq = 3;
    honest.prev = log[2].hash();
    honest.key = new_key;
    honest.epoch = 1;
    honest.time_ms += 60_000;
    let origin = w.code(3);
    let body = Body::Permit {
        person: p,
        origin,
        category: Category::Spouse,
        valid_until_ms: honest.time_ms + 30 * DAY_MS,
        materials: Digest([6; 32]),
        corrects: None,
    };
    let carried_on = honest.draft(w.network, body);
    let mut fresh = Ledger::with_epochs(w.ledger.epochs().clone());
    for e in &w.history {
        if e.entry().author != b2 || e.entry().seq.0 < 3 {
            fresh.apply(e, SignatureCheck::Verify).unwrap();
        }
    }
    fresh
        .apply(&carried_on, SignatureCheck::Verify)
        .expect("the new key continues the log");
}

#[test]
fn a_retired_bureau_signs_nothing_from_its_cut_and_its_earlier_entries_stand() {
    let mut w = World::with_epochs(4);
    let (retired, successor, destination) = (3, 0, 1);
    let p = w.enrol_new(retired);
    let body = permit(&w, destination, p, w.code(retired));
    let permit_ref = w.act(destination, body).unwrap().reference();
    let deregistration = w
        .act(
            retired,
            Body::Deregistration {
                permit: permit_ref,
                person: p,
                new_head: None,
            },
        )
        .unwrap()
        .reference();
    let q = w.enrol_new(destination);
    let from_seq = Seq(w.bureaus[retired].seq);
    let cuts = w.push_config(vec![Change::RetireMember {
        code: w.code(retired),
        from_seq,
        successor: w.code(successor),
    }]);
    assert_eq!(
        cuts,
        vec![Cut {
            log: w.code(retired),
            from_seq,
            epoch: 1,
            kind: CutKind::Retired
        }]
    );
    assert_eq!(w.ledger.cut_positions(), vec![], "nothing held is cut");

    // Anything it signs from its cut on, naming the epoch it was a member in, is refused.
    let body = permit(&w, retired, q, w.code(destination));
    let late = draft(&mut w, retired, body.clone());
    assert_eq!(
        refused(&w.ledger, &late),
        Violation::SignedAfterCut {
            entry: late.reference(),
            epoch: 0,
            from_seq,
            cut_epoch: 1,
            retired: true
        }
    );
    // Naming the new epoch, it is no member.
    w.bureaus[retired].epoch = 1;
    let late = draft(&mut w, retired, body);
    assert_eq!(
        refused(&w.ledger, &late),
        Violation::UnknownAuthor {
            entry: late.reference()
        }
    );

    // Its deregistration still counts: the destination registers the person, naming epoch 1.
    w.bureaus[destination].epoch = 1;
    w.act(
        destination,
        Body::Registration {
            deregistration,
            person: p,
            placement: head(50),
        },
    )
    .expect("a reference to a retired bureau's earlier entry is valid");
    assert_eq!(
        w.ledger.person(&p).and_then(|s| s.registered_at()),
        Some(w.code(destination))
    );
    // But a new permit cannot ask it for anyone: it is no member of epoch 1.
    let body = permit(&w, destination, person(70_000), w.code(retired));
    let asking = draft(&mut w, destination, body);
    assert_eq!(
        refused(&w.ledger, &asking),
        Violation::UnknownOrigin {
            entry: asking.reference(),
            origin: w.code(retired)
        }
    );
}

#[test]
fn a_new_member_counts_from_the_epoch_that_adds_it() {
    let mut w = World::with_epochs(4);
    let p = w.enrol_new(0);
    let newcomer_key = fresh_key(3);
    w.push_config(vec![Change::AddMember {
        code: code(NEWCOMER),
        name: "新区分局".into(),
        key: pk(&newcomer_key),
        addresses: vec!["/ip4/10.0.0.5/tcp/4101".into()],
    }]);
    // A permit asking the newcomer, under epoch 0: no such member then.
    let body = permit(&w, 0, person(60_000), code(NEWCOMER));
    let early = draft(&mut w, 0, body.clone());
    assert_eq!(
        refused(&w.ledger, &early),
        Violation::UnknownOrigin {
            entry: early.reference(),
            origin: code(NEWCOMER)
        }
    );
    // Under epoch 1: valid.
    w.bureaus[0].epoch = 1;
    let body = permit(&w, 0, person(60_000), code(NEWCOMER));
    w.act(0, body).expect("the newcomer is a member of epoch 1");

    // The newcomer's own entries: under epoch 0 it is nobody; under epoch 1 it signs.
    let mut newcomer = w.bureaus[0].clone();
    newcomer.code = code(NEWCOMER);
    newcomer.key = newcomer_key;
    newcomer.seq = 0;
    newcomer.prev = EntryHash::ZERO;
    newcomer.epoch = 0;
    w.bureaus.push(newcomer);
    let n = w.bureaus.len() - 1;
    let body = permit(&w, n, p, w.code(0));
    let nobody = draft(&mut w, n, body);
    assert_eq!(
        refused(&w.ledger, &nobody),
        Violation::UnknownAuthor {
            entry: nobody.reference()
        }
    );
    w.bureaus[n].epoch = 1;
    let body = permit(&w, n, p, w.code(0));
    w.act(n, body).expect("the newcomer signs under epoch 1");
    assert_eq!(w.ledger.log_len(code(NEWCOMER)), 1);
}

#[test]
fn a_successor_claims_after_the_retired_arbiters_log_is_held_to_its_cut() {
    let mut w = World::with_epochs(4);
    let (retired, successor) = (3, 0);
    let someone = w.enrol_new(1);
    // Two persons the retiring bureau arbitrates: it granted a claim on one of them.
    let granted = unclaimed_person_of(&w, retired, 80_000);
    let free = unclaimed_person_of(&w, retired, 90_000);
    let claimant = w.code(1);
    let predecessors_claim = w
        .act(
            retired,
            Body::Claim {
                person: granted,
                claimant,
                after: None,
            },
        )
        .unwrap()
        .reference();
    // It retires one entry later than this ledger holds: its last entry is still on the way.
    let held = w.bureaus[retired].seq;
    w.push_config(vec![Change::RetireMember {
        code: w.code(retired),
        from_seq: Seq(held + 1),
        successor: w.code(successor),
    }]);
    let body = permit(&w, retired, someone, w.code(1));
    let last = draft(&mut w, retired, body);
    advance(&mut w, retired, &last);
    assert_eq!(
        w.ledger.epochs().latest().arbiter(&granted),
        w.code(successor)
    );

    // The successor claims both persons, naming epoch 1.
    w.bureaus[successor].epoch = 1;
    let to = w.code(2);
    let claim_free = draft(
        &mut w,
        successor,
        Body::Claim {
            person: free,
            claimant: to,
            after: None,
        },
    );
    advance(&mut w, successor, &claim_free);
    let claim_granted = draft(
        &mut w,
        successor,
        Body::Claim {
            person: granted,
            claimant: to,
            after: None,
        },
    );
    let err = refused(&w.ledger, &claim_free);
    assert_eq!(
        err,
        Violation::HandoverPending {
            entry: claim_free.reference(),
            from: w.code(retired),
            until_seq: Seq(held + 1)
        }
    );
    assert!(err.is_not_yet());
    assert_eq!(
        w.ledger.waiting_for(&claim_free),
        Some((w.code(retired), Seq(held))),
        "it waits for the retired log's last entry before the cut"
    );

    let mut buffer = CausalBuffer::new();
    for e in [&claim_free, &claim_granted] {
        assert!(
            buffer
                .offer(&mut w.ledger, e.clone(), SignatureCheck::Verify)
                .is_empty()
        );
    }
    assert_eq!(buffer.len(), 2);
    // The retired log's last entry arrives: the claims are judged, in order.
    let judged = buffer.offer(&mut w.ledger, last.clone(), SignatureCheck::Verify);
    let verdicts: Vec<(EntryRef, Result<(), Violation>)> = judged
        .into_iter()
        .map(|j| (j.entry.reference(), j.result.map(|_| ())))
        .collect();
    assert_eq!(
        verdicts,
        vec![
            (last.reference(), Ok(())),
            (claim_free.reference(), Ok(())),
            (
                claim_granted.reference(),
                Err(Violation::PersonClaimed {
                    entry: claim_granted.reference(),
                    person: granted,
                    claim: predecessors_claim
                })
            ),
        ]
    );
    assert!(buffer.is_empty());
    assert_eq!(
        w.ledger.claim_on(&free, None).map(|c| c.reference),
        Some(claim_free.reference())
    );
    assert_eq!(
        w.ledger.claim_on(&granted, None).map(|c| c.reference),
        Some(predecessors_claim),
        "the predecessor's claim stands, granted to the bureau it named"
    );
}

/// The common steps across epochs come in the catalogue's order: envelope (`wrong_network`,
/// `epoch_unknown`, `unknown_author`, `bad_signature`, `signed_after_cut`,
/// `reference_to_non_member`) before the chain, whose `epoch_regressed` comes after
/// `time_went_backwards`.
#[test]
fn envelope_and_chain_rules_across_epochs_in_catalogue_order() {
    let mut w = World::with_epochs(4);
    let log = log_of_permits(&mut w, 3);
    let p = w.enrol_new(3);
    let b2 = w.code(2);
    let stranger_key = fresh_key(4);
    w.push_config(vec![Change::RevokeKey {
        code: b2,
        key: pk(&fresh_key(5)),
        from_seq: Seq(2),
    }]);
    w.push_config(vec![Change::AddMember {
        code: code(NEWCOMER),
        name: "新区分局".into(),
        key: pk(&stranger_key),
        addresses: vec![],
    }]);
    let name = |e: &SignedEntry, l: &Ledger| refused(l, e).name();

    // The revoked holder re-signs seq 2 (held already) naming epoch 0: the envelope's
    // signed_after_cut comes before the chain's equivocation.
    let forked = hukou_protocol::Entry {
        body: Body::HeadChange {
            household: HouseholdId(1),
            new_head: person(1),
        },
        ..log[2].entry().clone()
    };
    let forked_signed = forked.clone().sign(&key(2));
    assert_eq!(name(&forked_signed, &w.ledger), "signed_after_cut");
    // ... after bad_signature,
    assert_eq!(
        name(&forked.clone().sign(&key(0)), &w.ledger),
        "bad_signature"
    );
    // ... and before reference_to_non_member (a reference to the newcomer's log under epoch 0).
    let ghost = EntryRef {
        author: code(NEWCOMER),
        seq: Seq(0),
        hash: EntryHash([1; 32]),
    };
    let both = hukou_protocol::Entry {
        body: Body::Revocation { permit: ghost },
        ..forked.clone()
    };
    assert_eq!(
        name(&both.clone().sign(&key(2)), &w.ledger),
        "signed_after_cut"
    );
    // Below the cut, that reference is reference_to_non_member: the newcomer was no member by
    // epoch 0. Named under epoch 2, it is an entry that waits for the newcomer's log.
    let mut b0 = w.bureaus[0].clone();
    b0.time_ms += 60_000;
    let reference = b0.draft(w.network, Body::Revocation { permit: ghost });
    assert_eq!(name(&reference, &w.ledger), "reference_to_non_member");
    b0.epoch = 2;
    let reference = b0.draft(w.network, Body::Revocation { permit: ghost });
    assert_eq!(name(&reference, &w.ledger), "unknown_reference");

    // An author no epoch knows yet, naming an epoch not known yet: epoch_unknown first; on
    // another network, wrong_network before it.
    let mut stranger = w.bureaus[0].clone();
    stranger.code = code(350103);
    stranger.key = fresh_key(6);
    stranger.seq = 0;
    stranger.prev = EntryHash::ZERO;
    stranger.epoch = 9;
    let body = Body::HeadChange {
        household: HouseholdId(1),
        new_head: person(1),
    };
    let unknown = stranger.draft(w.network, body.clone());
    assert_eq!(name(&unknown, &w.ledger), "epoch_unknown");
    let elsewhere = stranger.draft(NetworkId::from_name("other"), body.clone());
    assert_eq!(name(&elsewhere, &w.ledger), "wrong_network");
    stranger.epoch = 2;
    assert_eq!(
        name(&stranger.draft(w.network, body.clone()), &w.ledger),
        "unknown_author"
    );
    // The newcomer's key naming epoch 0, where it is nobody: unknown_author, not bad_signature.
    stranger.code = code(NEWCOMER);
    stranger.key = stranger_key;
    stranger.epoch = 0;
    assert_eq!(
        name(&stranger.draft(w.network, body.clone()), &w.ledger),
        "unknown_author"
    );

    // Chain: bureau 1 moves to epoch 2; an entry naming epoch 0 that is also timed before its
    // last entry is time_went_backwards; timed right, epoch_regressed.
    w.bureaus[1].epoch = 2;
    let origin = w.code(3);
    let body = permit(&w, 1, p, origin);
    w.act(1, body).unwrap();
    w.bureaus[1].epoch = 0;
    let mut early = w.bureaus[1].clone();
    early.time_ms -= 1;
    let body = Body::HeadChange {
        household: HouseholdId(1),
        new_head: person(1),
    };
    assert_eq!(
        name(&early.draft(w.network, body.clone()), &w.ledger),
        "time_went_backwards"
    );
    assert_eq!(
        name(&w.bureaus[1].draft(w.network, body), &w.ledger),
        "epoch_regressed"
    );
}

// ---------------------------------------------------------------------------------------------
// Order independence.

/// One thing that arrives at a node.
#[derive(Clone)]
enum Arrival {
    Entry(SignedEntry),
    Update(SignedUpdate),
}

/// Adds the entries `w` made since `seen` to `arrivals`.
fn flush(w: &World, arrivals: &mut Vec<Arrival>, seen: &mut usize) {
    for e in &w.history[*seen..] {
        arrivals.push(Arrival::Entry(e.clone()));
    }
    *seen = w.history.len();
}

/// Makes the next epoch from `changes`, after the entries made so far.
fn update(w: &mut World, arrivals: &mut Vec<Arrival>, seen: &mut usize, changes: Vec<Change>) {
    flush(w, arrivals, seen);
    let u = next_update(w.ledger.epochs(), changes);
    w.ledger.push_config(u.clone()).unwrap();
    arrivals.push(Arrival::Update(u));
}

/// A history across four epochs, as its authors made it, in creation order: a key rotation,
/// a revocation with a forged entry by the old key at the cut, a member joining, and a
/// retirement whose successor claims one of its persons. Returns the arrivals, the world (whose
/// ledger took each update when it was made) and the forged entry.
fn history() -> (Vec<Arrival>, World, SignedEntry) {
    let mut w = World::with_epochs(4);
    let mut arrivals = Vec::new();
    let mut seen = 0;
    // Epoch 0: two people everywhere, and one on the move from bureau 0 to bureau 1.
    for b in 0..4 {
        w.enrol_new(b);
        w.enrol_new(b);
    }
    let mover = w.enrol_new(0);
    let body = permit(&w, 1, mover, w.code(0));
    let permit_ref = w.act(1, body).unwrap().reference();
    let deregistration = w
        .act(
            0,
            Body::Deregistration {
                permit: permit_ref,
                person: mover,
                new_head: None,
            },
        )
        .unwrap()
        .reference();
    let at_0: Vec<PersonTag> = (0..3).map(|_| w.enrol_new(0)).collect();
    let at_3 = w.enrol_new(3);
    let retiring = 3;
    let free = unclaimed_person_of(&w, retiring, 100_000);

    // Epoch 1: bureau 1 rotates its key and registers the mover under it.
    let changes = vec![Change::RotateKey {
        code: w.code(1),
        key: pk(&fresh_key(7)),
    }];
    update(&mut w, &mut arrivals, &mut seen, changes);
    w.bureaus[1].key = fresh_key(7);
    w.bureaus[1].epoch = 1;
    w.act(
        1,
        Body::Registration {
            deregistration,
            person: mover,
            placement: head(40),
        },
    )
    .unwrap();

    // Epoch 2: bureau 2's key leaked and is revoked from its next seq; the thief signs that seq
    // with the old key, the bureau signs it (and one more) with the new one.
    let cut_at = w.bureaus[2].seq;
    let changes = vec![Change::RevokeKey {
        code: w.code(2),
        key: pk(&fresh_key(8)),
        from_seq: Seq(cut_at),
    }];
    update(&mut w, &mut arrivals, &mut seen, changes);
    let mut thief = w.bureaus[2].clone();
    thief.time_ms += 60_000;
    let body = permit(&w, 2, at_0[0], w.code(0));
    let forged = thief.draft(w.network, body);
    assert_eq!(forged.entry().seq, Seq(cut_at));
    w.bureaus[2].key = fresh_key(8);
    w.bureaus[2].epoch = 2;
    for p in [at_0[1], at_0[2]] {
        let body = permit(&w, 2, p, w.code(0));
        w.act(2, body).unwrap();
    }

    // Epoch 3: a bureau joins and issues a permit.
    let changes = vec![Change::AddMember {
        code: code(NEWCOMER),
        name: "新区分局".into(),
        key: pk(&fresh_key(9)),
        addresses: vec![],
    }];
    update(&mut w, &mut arrivals, &mut seen, changes);
    let mut newcomer = w.bureaus[0].clone();
    newcomer.code = code(NEWCOMER);
    newcomer.key = fresh_key(9);
    newcomer.seq = 0;
    newcomer.prev = EntryHash::ZERO;
    newcomer.epoch = 3;
    w.bureaus.push(newcomer);
    let body = permit(&w, 4, at_3, w.code(3));
    w.act(4, body).unwrap();

    // Epoch 4: bureau 3 retires to bureau 0, which claims one of its persons for bureau 1,
    // which enrols them.
    let changes = vec![Change::RetireMember {
        code: w.code(retiring),
        from_seq: Seq(w.bureaus[retiring].seq),
        successor: w.code(0),
    }];
    update(&mut w, &mut arrivals, &mut seen, changes);
    w.bureaus[0].epoch = 4;
    w.bureaus[1].epoch = 4;
    let claimant = w.code(1);
    let claim = w
        .act(
            0,
            Body::Claim {
                person: free,
                claimant,
                after: None,
            },
        )
        .unwrap()
        .reference();
    w.act(
        1,
        Body::Enrol {
            person: free,
            placement: head(41),
            claim,
        },
    )
    .unwrap();
    flush(&w, &mut arrivals, &mut seen);
    arrivals.push(Arrival::Entry(forged.clone()));
    (arrivals, w, forged)
}

/// Delivers `arrivals` in order to a node: updates in epoch order as they become next (an
/// update after a gap is held, as a node holds it), each releasing what waited for its epoch;
/// entries through a causal buffer. If an update cut entries the node already applied, the
/// node rebuilds as it does after a cut: from the updates, the entries it applied minus those
/// at or after each cut position, then every entry it refused or still holds.
///
/// Returns the state and whether the node had to rebuild.
fn deliver(arrivals: &[Arrival], forged: &SignedEntry) -> (Ledger, bool) {
    let mut ledger = Ledger::with_epochs(genesis_epochs(4));
    let mut buffer = CausalBuffer::new();
    let mut held_updates: BTreeMap<u32, SignedUpdate> = BTreeMap::new();
    let mut applied = Vec::new();
    let mut refused = Vec::new();
    let record = |judged: Vec<hukou_protocol::rules::Judged>,
                  applied: &mut Vec<SignedEntry>,
                  refused: &mut Vec<(SignedEntry, Violation)>| {
        for j in judged {
            match j.result {
                Ok(_) => applied.push(j.entry),
                Err(v) => refused.push((j.entry, v)),
            }
        }
    };
    for arrival in arrivals {
        match arrival {
            Arrival::Entry(e) => {
                let judged = buffer.offer(&mut ledger, e.clone(), SignatureCheck::Verify);
                record(judged, &mut applied, &mut refused);
            }
            Arrival::Update(u) => {
                held_updates.insert(u.update.epoch, u.clone());
                while let Some(u) = held_updates.remove(&(ledger.epochs().latest().epoch + 1)) {
                    let epoch = u.update.epoch;
                    ledger.push_config(u).unwrap();
                    let judged = buffer.release_epoch(&mut ledger, epoch);
                    record(judged, &mut applied, &mut refused);
                }
            }
        }
    }
    assert!(held_updates.is_empty());

    let cuts = ledger.cut_positions();
    if cuts.is_empty() {
        // The forged entry met the cut at once.
        assert!(refused.iter().any(|(e, v)| e == forged
            && *v
                == Violation::SignedAfterCut {
                    entry: forged.reference(),
                    epoch: 0,
                    from_seq: forged.entry().seq,
                    cut_epoch: 2,
                    retired: false
                }));
        assert!(buffer.is_empty());
        return (ledger, false);
    }
    // It was applied before the update: the cut names exactly its position.
    assert_eq!(cuts, vec![(forged.entry().author, forged.entry().seq)]);
    assert!(applied.contains(forged));
    let cut_away = |e: &SignedEntry| {
        cuts.iter()
            .any(|(log, from)| e.entry().author == *log && e.entry().seq >= *from)
    };
    let mut rebuilt = Ledger::with_epochs(ledger.epochs().clone());
    let mut again = CausalBuffer::new();
    let retry = applied
        .into_iter()
        .filter(|e| !cut_away(e))
        .chain(refused.into_iter().map(|(e, _)| e).filter(|e| e != forged))
        .chain(buffer.take_all().into_iter().map(|(e, _)| e));
    for e in retry {
        for j in again.offer(&mut rebuilt, e, SignatureCheck::Verify) {
            assert!(j.result.is_ok(), "{:?}", j.result);
        }
    }
    assert!(again.is_empty());
    (rebuilt, true)
}

/// A permutation of `0..len` from a seed (xorshift; deterministic).
fn permutation(len: usize, mut seed: u64) -> Vec<usize> {
    let mut v: Vec<usize> = (0..len).collect();
    seed |= 1;
    for i in (1..len).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        v.swap(i, (seed % (i as u64 + 1)) as usize);
    }
    v
}

#[test]
fn entries_and_updates_in_any_order_reach_one_state() {
    let (arrivals, w, forged) = history();
    // In creation order (the forged entry last, after the update that cuts it): the authors'
    // own ledger.
    let (reference, rebuilt) = deliver(&arrivals, &forged);
    assert!(!rebuilt);
    assert_eq!(reference, w.ledger);
    // Every update first, then every entry.
    let (updates, entries): (Vec<Arrival>, Vec<Arrival>) = arrivals
        .iter()
        .cloned()
        .partition(|a| matches!(a, Arrival::Update(_)));
    let first: Vec<Arrival> = updates.iter().chain(&entries).cloned().collect();
    assert_eq!(deliver(&first, &forged), (reference.clone(), false));
    // Every entry first, the forged one before all, then the updates: the forged entry is
    // applied, then cut.
    let mut late: Vec<Arrival> = vec![Arrival::Entry(forged.clone())];
    late.extend(entries.iter().cloned());
    late.extend(updates.iter().cloned());
    assert_eq!(deliver(&late, &forged), (reference.clone(), true));
    // And shuffled: both paths are taken.
    let mut rebuilds = 0;
    let seeds = 64u64;
    for seed in 0..seeds {
        let order: Vec<Arrival> = permutation(arrivals.len(), seed * 7_919 + 1)
            .into_iter()
            .map(|i| arrivals[i].clone())
            .collect();
        let (state, rebuilt) = deliver(&order, &forged);
        assert_eq!(state, reference, "seed {seed}");
        rebuilds += u64::from(rebuilt);
    }
    assert!(
        0 < rebuilds && rebuilds < seeds,
        "{rebuilds} of {seeds} orders rebuilt"
    );
}

/// A deadline rule change applies to the clocks that start under the new epoch: a permit
/// issued before keeps the old rule, one issued after gets the new one, on every replay.
#[test]
fn a_deadline_rule_change_applies_to_clocks_started_after_it() {
    let mut w = World::with_epochs(4);
    let people: Vec<PersonTag> = (0..2).map(|_| w.enrol_new(0)).collect();
    let origin = w.code(0);
    let body = permit(&w, 1, people[0], origin);
    let before = w.act(1, body).expect("a permit under epoch 0").reference();
    w.push_config(vec![Change::SetDeadlines(Deadlines {
        answer_working_days: 3,
        registration_working_days: 2,
    })]);
    w.bureaus[1].epoch = 1;
    let body = permit(&w, 1, people[1], origin);
    let after = w.act(1, body).expect("a permit under epoch 1").reference();
    let rules = |ledger: &Ledger| {
        (
            ledger.deadlines_of(&before).answer_working_days,
            ledger.deadlines_of(&after).answer_working_days,
        )
    };
    assert_eq!(rules(&w.ledger), (1, 3));
    // A replay from scratch (updates first, then every entry) judges the same.
    let mut replayed = Ledger::with_epochs(w.ledger.epochs().clone());
    let mut buffer = CausalBuffer::for_history();
    for e in &w.history {
        for j in buffer.offer(&mut replayed, e.clone(), SignatureCheck::Verify) {
            j.result.expect("every entry applies on replay");
        }
    }
    assert_eq!(rules(&replayed), (1, 3));
}
