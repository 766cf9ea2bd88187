//! The causal buffer's bounds: what it refuses, drops and releases, with exact counts, and a
//! property test that what it holds never passes its limits whatever is offered.
//!
//! Entries here are permits and revocations: bodies whose validity needs nothing but the log
//! itself (a permit) or one reference (a revocation).

use ed25519_dalek::SigningKey;
use proptest::prelude::*;

use super::*;
use crate::entry::Entry;
use crate::membership::Member;
use crate::types::Digest;
use crate::{NetworkId, quorum_for};

const CODES: [u32; 4] = [310104, 330502, 340100, 320506];
/// A valid division code that is not a member of the test network.
const OUTSIDER: u32 = 340104;
const T0: u64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
const DAY_MS: u64 = 86_400_000;

fn key(i: usize) -> SigningKey {
    SigningKey::from_bytes(&[i as u8 + 1; 32])
}

fn code(i: usize) -> BureauCode {
    BureauCode::new(CODES[i]).expect("valid code")
}

fn ledger() -> Ledger {
    let members = (0..3).map(|i| Member {
        code: code(i),
        name: format!("bureau {i}"),
        key: key(i).verifying_key(),
    });
    Ledger::new(Membership::new("buffer-test", members, quorum_for(3)).expect("valid"))
}

fn network() -> NetworkId {
    NetworkId::from_name("buffer-test")
}

fn person(n: u64) -> PersonTag {
    let mut t = [0u8; 32];
    t[..8].copy_from_slice(&n.to_be_bytes());
    PersonTag(t)
}

/// A permit of bureau `author` (origin the next member), for person `n`.
fn permit(author: usize, n: u64) -> Body {
    Body::Permit {
        person: person(n),
        origin: code((author + 1) % 3),
        category: crate::Category::NAMED[0],
        valid_until_ms: T0 + 365 * DAY_MS,
        materials: Digest([7; 32]),
        corrects: None,
    }
}

/// An entry signed by `key` as `author` at `seq`.
fn signed(
    key: &SigningKey,
    author: BureauCode,
    seq: u64,
    prev: EntryHash,
    time_ms: u64,
    body: Body,
) -> SignedEntry {
    Entry {
        network: network(),
        epoch: 0,
        author,
        seq: Seq(seq),
        prev,
        time_ms,
        body,
    }
    .sign(key)
}

/// A valid chain of `n` permits of member `i`.
fn chain(i: usize, n: u64) -> Vec<SignedEntry> {
    let mut out: Vec<SignedEntry> = Vec::new();
    for seq in 0..n {
        let prev = out.last().map_or(EntryHash::ZERO, SignedEntry::hash);
        out.push(signed(
            &key(i),
            code(i),
            seq,
            prev,
            T0 + seq,
            permit(i, 1000 * i as u64 + seq),
        ));
    }
    out
}

/// A revocation by member `i` at `seq` (any prev) referencing `reference`.
fn revocation(i: usize, seq: u64, reference: EntryRef) -> SignedEntry {
    signed(
        &key(i),
        code(i),
        seq,
        EntryHash([seq as u8; 32]),
        T0,
        Body::Revocation { permit: reference },
    )
}

fn position(author: BureauCode, seq: u64) -> EntryRef {
    EntryRef {
        author,
        seq: Seq(seq),
        hash: EntryHash([0xab; 32]),
    }
}

/// The buffer's bookkeeping agrees with what it holds: one ticket per held entry, and the
/// count and bytes are those of the held entries.
fn assert_consistent(buffer: &CausalBuffer) {
    let held: Vec<_> = buffer.waiting().collect();
    assert_eq!(buffer.len(), held.len());
    assert_eq!(buffer.order.len(), held.len());
    assert_eq!(
        buffer.bytes(),
        held.iter().map(|(_, e)| e.encoded_len()).sum::<usize>()
    );
}

fn results(judged: &[Judged]) -> Vec<Result<Seq, &'static str>> {
    judged
        .iter()
        .map(|j| match &j.result {
            Ok(effects) => Ok(effects.entry.seq),
            Err(v) => Err(v.name()),
        })
        .collect()
}

#[test]
fn released_entries_leave_no_trace() {
    let mut ledger = ledger();
    let mut buffer = CausalBuffer::new();
    let entries = chain(0, 101);
    for e in entries[1..].iter().rev() {
        assert!(
            buffer
                .offer(&mut ledger, e.clone(), SignatureCheck::Verify)
                .is_empty()
        );
    }
    assert_eq!(buffer.len(), 100);
    assert_eq!(buffer.order.len(), 100);
    assert_consistent(&buffer);

    let judged = buffer.offer(&mut ledger, entries[0].clone(), SignatureCheck::Verify);
    assert_eq!(
        results(&judged),
        (0..101).map(|s| Ok(Seq(s))).collect::<Vec<_>>()
    );
    // Before: every released entry left its position in the order queue, for ever.
    assert_eq!(buffer.order.len(), 0);
    assert!(buffer.waiting.is_empty());
    assert_eq!((buffer.len(), buffer.bytes()), (0, 0));
    assert_eq!(buffer.drops(), Drops::default());
}

#[test]
fn equivocating_entries_released_together_leave_no_trace() {
    let mut ledger = ledger();
    let mut buffer = CausalBuffer::new();
    let a = chain(0, 1);
    // Ten different entries of member 1 at seq 0, each waiting for a:0.
    for t in 0..10 {
        let e = signed(
            &key(1),
            code(1),
            0,
            EntryHash::ZERO,
            T0 + t,
            Body::Revocation {
                permit: a[0].reference(),
            },
        );
        assert!(
            buffer
                .offer(&mut ledger, e, SignatureCheck::Verify)
                .is_empty()
        );
    }
    assert_eq!(buffer.len(), 10);
    let judged = buffer.offer(&mut ledger, a[0].clone(), SignatureCheck::Verify);
    // a:0 applies; the first revocation is judged (member 1 did not issue the permit), and so
    // is every other one: none of them waits any more.
    assert_eq!(judged.len(), 11);
    assert_eq!(results(&judged)[0], Ok(Seq(0)));
    assert_eq!(buffer.order.len(), 0);
    assert_eq!((buffer.len(), buffer.bytes()), (0, 0));
}

#[test]
fn over_the_byte_limit_the_oldest_entries_are_dropped() {
    let entries = chain(0, 6);
    let size = entries[1].encoded_len();
    assert!(entries[1..].iter().all(|e| e.encoded_len() == size));
    let mut ledger = ledger();
    let mut buffer = CausalBuffer::with_limits(BufferLimits {
        entries_max: 100,
        bytes_max: 3 * size,
        ahead_entries_max: 100,
    });
    for e in &entries[1..] {
        assert!(
            buffer
                .offer(&mut ledger, e.clone(), SignatureCheck::Verify)
                .is_empty()
        );
        assert!(buffer.bytes() <= 3 * size);
    }
    // Seq 1 and 2 were held first, so dropped first.
    assert_eq!(buffer.len(), 3);
    assert_eq!(buffer.bytes(), 3 * size);
    assert_eq!(
        buffer.drops(),
        Drops {
            buffer_full: 2,
            too_far_ahead: 0
        }
    );
    let mut held: Vec<u64> = buffer.waiting().map(|(_, e)| e.entry().seq.0).collect();
    held.sort();
    assert_eq!(held, vec![3, 4, 5]);
    assert_consistent(&buffer);
    // Seq 0 applies alone: seq 1 was dropped, so nothing is released yet.
    let judged = buffer.offer(&mut ledger, entries[0].clone(), SignatureCheck::Verify);
    assert_eq!(results(&judged), vec![Ok(Seq(0))]);
    assert_eq!(buffer.len(), 3);
    // Pulled again in order, the rest follows.
    let judged = buffer.offer(&mut ledger, entries[1].clone(), SignatureCheck::Verify);
    assert_eq!(results(&judged), vec![Ok(Seq(1))]);
    let judged = buffer.offer(&mut ledger, entries[2].clone(), SignatureCheck::Verify);
    assert_eq!(
        results(&judged),
        vec![Ok(Seq(2)), Ok(Seq(3)), Ok(Seq(4)), Ok(Seq(5))]
    );
    assert_eq!(
        (buffer.len(), buffer.bytes(), buffer.order.len()),
        (0, 0, 0)
    );
}

#[test]
fn over_the_entry_limit_the_oldest_entries_are_dropped() {
    let entries = chain(0, 5);
    let mut ledger = ledger();
    let mut buffer = CausalBuffer::with_limits(BufferLimits {
        entries_max: 2,
        bytes_max: usize::MAX,
        ahead_entries_max: 100,
    });
    for e in &entries[1..] {
        buffer.offer(&mut ledger, e.clone(), SignatureCheck::Verify);
    }
    let mut held: Vec<u64> = buffer.waiting().map(|(_, e)| e.entry().seq.0).collect();
    held.sort();
    assert_eq!(held, vec![3, 4]);
    assert_eq!(buffer.drops().of(DropReason::BufferFull), 2);
    assert_consistent(&buffer);
}

#[test]
fn an_entry_far_ahead_of_its_log_is_dropped_not_held() {
    let max = crate::limits::PENDING_AHEAD_ENTRIES_MAX;
    let mut ledger = ledger();
    let mut buffer = CausalBuffer::new();
    let far = signed(&key(0), code(0), max + 1, EntryHash::ZERO, T0, permit(0, 1));
    assert!(
        buffer
            .offer(&mut ledger, far, SignatureCheck::Verify)
            .is_empty()
    );
    assert_eq!(buffer.len(), 0);
    assert_eq!(
        buffer.drops(),
        Drops {
            buffer_full: 0,
            too_far_ahead: 1
        }
    );
    assert_eq!(DropReason::TooFarAhead.name(), "too_far_ahead");
    // At the limit it is still held.
    let near = signed(&key(0), code(0), max, EntryHash::ZERO, T0, permit(0, 2));
    assert!(
        buffer
            .offer(&mut ledger, near.clone(), SignatureCheck::Verify)
            .is_empty()
    );
    assert_eq!(buffer.len(), 1);
    assert_eq!(
        buffer.waiting().next(),
        Some((&(code(0), Seq(max - 1)), &near))
    );
    assert_eq!(buffer.drops().too_far_ahead, 1);
}

#[test]
fn an_entry_referencing_far_beyond_a_log_is_dropped_not_held() {
    let max = crate::limits::PENDING_AHEAD_ENTRIES_MAX;
    let mut ledger = ledger();
    let mut buffer = CausalBuffer::new();
    // Member 0 holds 3 entries; member 1's next entry references member 0's seq 3 + max + 1.
    for e in chain(0, 3) {
        ledger
            .apply(&e, SignatureCheck::Verify)
            .expect("valid chain");
    }
    let far = revocation(1, 0, position(code(0), 3 + max + 1));
    assert!(
        buffer
            .offer(&mut ledger, far, SignatureCheck::Verify)
            .is_empty()
    );
    assert_eq!((buffer.len(), buffer.drops().too_far_ahead), (0, 1));
    let near = revocation(1, 0, position(code(0), 3 + max));
    assert!(
        buffer
            .offer(&mut ledger, near, SignatureCheck::Verify)
            .is_empty()
    );
    assert_eq!((buffer.len(), buffer.drops().too_far_ahead), (1, 1));
}

#[test]
fn for_history_drops_nothing() {
    let mut ledger = ledger();
    let mut buffer = CausalBuffer::for_history();
    let far = signed(
        &key(0),
        code(0),
        10 * crate::limits::PENDING_AHEAD_ENTRIES_MAX,
        EntryHash::ZERO,
        T0,
        permit(0, 1),
    );
    buffer.offer(&mut ledger, far, SignatureCheck::Verify);
    assert_eq!((buffer.len(), buffer.drops()), (1, Drops::default()));
}

#[test]
fn an_entry_of_a_non_member_is_refused_not_held() {
    let mut ledger = ledger();
    let mut buffer = CausalBuffer::new();
    let outsider = BureauCode::new(OUTSIDER).expect("valid code");
    let e = signed(&key(3), outsider, 5, EntryHash::ZERO, T0, permit(0, 1));
    let judged = buffer.offer(&mut ledger, e.clone(), SignatureCheck::Verify);
    assert_eq!(judged.len(), 1);
    assert_eq!(
        judged[0].result,
        Err(Violation::UnknownAuthor {
            entry: e.reference()
        })
    );
    assert_eq!((buffer.len(), buffer.bytes()), (0, 0));
}

#[test]
fn an_entry_referencing_a_non_member_log_is_refused_not_held() {
    let mut ledger = ledger();
    let mut buffer = CausalBuffer::new();
    let outsider = BureauCode::new(OUTSIDER).expect("valid code");
    let reference = position(outsider, 3);
    let e = revocation(1, 0, reference);
    let violation = Violation::ReferenceToNonMember {
        entry: e.reference(),
        reference,
    };
    let judged = buffer.offer(&mut ledger, e.clone(), SignatureCheck::Verify);
    assert_eq!(judged.len(), 1);
    assert_eq!(judged[0].result, Err(violation.clone()));
    assert_eq!((buffer.len(), buffer.bytes()), (0, 0));
    // The rulebook names it the same when it judges the entry directly: it is part of the
    // envelope, checked before the chain, so the name does not depend on arrival order.
    assert_eq!(
        ledger.check(&e, SignatureCheck::Verify),
        Err(violation.clone())
    );
    let later = revocation(1, 7, reference);
    assert_eq!(
        ledger.check(&later, SignatureCheck::Verify),
        Err(Violation::ReferenceToNonMember {
            entry: later.reference(),
            reference
        })
    );
    assert_eq!(violation.name(), "reference_to_non_member");
    assert_eq!(violation.entry(), e.reference());
}

/// What one step of the property test offers.
#[derive(Clone, Debug)]
enum Offer {
    /// Entry `seq` of member `member`'s valid chain.
    Chain { member: usize, seq: u64 },
    /// A revocation by `member` at `seq` referencing `(log, at)` (log 3 is not a member).
    Reference {
        member: usize,
        seq: u64,
        log: usize,
        at: u64,
    },
}

fn offer_strategy() -> impl Strategy<Value = Offer> {
    prop_oneof![
        (0..3usize, 0..24u64).prop_map(|(member, seq)| Offer::Chain { member, seq }),
        (0..3usize, 0..24u64, 0..4usize, 0..24u64).prop_map(|(member, seq, log, at)| {
            Offer::Reference {
                member,
                seq,
                log,
                at,
            }
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever is offered, in whatever order, the buffer never holds more entries or bytes
    /// than its limits, nothing is held further ahead than allowed, and its bookkeeping (count,
    /// bytes, one ticket per held entry) matches what it holds.
    #[test]
    fn held_entries_and_bytes_stay_within_the_limits(
        offers in proptest::collection::vec(offer_strategy(), 1..160),
        entries_max in 1..12usize,
        bytes_budget in 1..8usize,
        ahead_entries_max in 0..10u64,
    ) {
        let chains: Vec<Vec<SignedEntry>> = (0..3).map(|i| chain(i, 24)).collect();
        let size = chains[0][0].encoded_len();
        let limits = BufferLimits {
            entries_max,
            bytes_max: bytes_budget * size,
            ahead_entries_max,
        };
        let outsider = BureauCode::new(OUTSIDER).expect("valid code");
        let mut ledger = ledger();
        let mut buffer = CausalBuffer::with_limits(limits);
        for offer in offers {
            let entry = match offer {
                Offer::Chain { member, seq } => chains[member][seq as usize].clone(),
                Offer::Reference { member, seq, log, at } => {
                    let log_code = if log == 3 { outsider } else { code(log) };
                    let hash = chains.get(log).map_or(EntryHash([1; 32]), |c| c[at as usize].hash());
                    revocation(member, seq, EntryRef { author: log_code, seq: Seq(at), hash })
                }
            };
            let judged = buffer.offer(&mut ledger, entry, SignatureCheck::AlreadyVerified);
            for j in &judged {
                if let Err(Violation::ReferenceToNonMember { reference, .. }) = &j.result {
                    prop_assert_eq!(reference.author, outsider);
                }
            }
            prop_assert!(buffer.len() <= limits.entries_max);
            prop_assert!(buffer.bytes() <= limits.bytes_max);
            for (_, e) in buffer.waiting() {
                let e = e.entry();
                prop_assert!(e.seq.0.saturating_sub(ledger.log_len(e.author)) <= ahead_entries_max);
                for r in e.body.references() {
                    prop_assert!(r.author != outsider);
                    prop_assert!(r.seq.0.saturating_sub(ledger.log_len(r.author)) <= ahead_entries_max);
                }
            }
            assert_consistent(&buffer);
        }
    }
}
