//! The rulebook over random multi-bureau histories: invariants on every prefix, independence
//! from delivery order, and every adversarial entry refused by the rule that names its fault.

// Judging returns the violation unboxed, as the rulebook does (see its note on size).
#![allow(clippy::result_large_err)]

mod common;

use common::*;
use hukou_protocol::entry::{Body, Entry, Placement};
use hukou_protocol::rules::{CausalBuffer, PermitStatus, SignatureCheck};
use hukou_protocol::{
    BureauCode, CancellationReason, Category, Digest, EntryHash, FraudProof, HouseholdId, Ledger,
    NetworkId, PersonTag, Relation, Seq, Signature, SignedEntry, Violation,
};
use proptest::prelude::*;

fn head(h: u64) -> Placement {
    Placement {
        household: HouseholdId(h),
        relation: Relation::Head,
    }
}

/// Checks I1 and I2 on a ledger state.
fn assert_invariants(ledger: &Ledger) {
    // I1: nobody is registered at two bureaus (histories here are admitted by their authors).
    assert_eq!(
        ledger.duplicates().count(),
        0,
        "I1: a person registered twice"
    );
    // I2: each registration consumes one deregistration, which consumes one permit of the same
    // person, origin and destination.
    for r in ledger.registrations() {
        let d = ledger
            .deregistration(&r.deregistration)
            .expect("I2: registration names a deregistration");
        assert_eq!(
            d.consumed_by,
            Some(r.reference),
            "I2: deregistration consumed by this registration"
        );
        assert_eq!(d.person, r.person, "I2: same person");
        assert_eq!(d.destination, r.reference.author, "I2: same destination");
        let p = ledger
            .permit(&d.permit)
            .expect("I2: deregistration names a permit");
        assert_eq!(
            p.status,
            PermitStatus::Consumed { by: d.reference },
            "I2: permit consumed by it"
        );
        assert_eq!(p.person, r.person);
        assert_eq!(p.origin, d.reference.author, "I2: same origin");
        assert_eq!(p.destination(), r.reference.author);
    }
    for d in ledger.deregistrations() {
        let p = ledger.permit(&d.permit).unwrap();
        assert_eq!(p.status, PermitStatus::Consumed { by: d.reference });
    }
}

/// Delivers entries in the given order through a causal buffer; checks invariants after each
/// applied entry; returns the final ledger.
fn deliver(n: usize, entries: &[SignedEntry]) -> Ledger {
    let mut ledger = Ledger::new(membership(n));
    let mut buffer = CausalBuffer::new();
    for e in entries {
        for judged in buffer.offer(&mut ledger, e.clone(), SignatureCheck::Verify) {
            match judged.result {
                Ok(_) => assert_invariants(&ledger),
                Err(v) if v.is_duplicate() => {}
                Err(v) => panic!("honest entry refused: {v}"),
            }
        }
    }
    assert!(
        buffer.is_empty(),
        "every honest entry is eventually applied"
    );
    ledger
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

fn world_from(choices: &[u32]) -> World {
    let mut w = World::new(4);
    for b in 0..4 {
        w.enrol_new(b);
        w.enrol_new(b);
    }
    for c in choices {
        w.step(*c);
    }
    w
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// I1–I3 hold on every prefix of random delivery orders, and the final state does not
    /// depend on the order.
    #[test]
    fn state_is_independent_of_delivery_order(
        choices in proptest::collection::vec(any::<u32>(), 10..120),
        seed_a in any::<u64>(),
        seed_b in any::<u64>(),
        replay in any::<bool>(),
    ) {
        let w = world_from(&choices);
        let mut order_a: Vec<SignedEntry> = permutation(w.history.len(), seed_a).into_iter().map(|i| w.history[i].clone()).collect();
        let order_b: Vec<SignedEntry> = permutation(w.history.len(), seed_b).into_iter().map(|i| w.history[i].clone()).collect();
        if replay {
            // Replayed entries are harmless duplicates.
            let again: Vec<SignedEntry> = order_a.iter().step_by(3).cloned().collect();
            order_a.extend(again);
        }
        let a = deliver(4, &order_a);
        let b = deliver(4, &order_b);
        prop_assert_eq!(&a, &w.ledger);
        prop_assert_eq!(&b, &w.ledger);
        // I3: every log is the chain its author signed.
        for bureau in &w.bureaus {
            prop_assert_eq!(a.log_len(bureau.code), bureau.seq);
            prop_assert_eq!(a.log(bureau.code).map(|l| l.tip()).unwrap_or(EntryHash::ZERO), bureau.prev);
        }
    }

    /// At random points of random histories, each kind of adversarial entry is refused by the
    /// rule that names its fault, and refusing it changes nothing.
    #[test]
    fn adversarial_entries_are_refused_by_the_right_rule(
        choices in proptest::collection::vec(any::<u32>(), 10..120),
        which in any::<u64>(),
    ) {
        let mut w = world_from(&choices);
        // Make sure there is a completed transfer and a consumed deregistration to attack.
        let origin = 0;
        let dest = 1;
        let p = w.enrol_new(origin);
        let permit = w.act(dest, Body::Permit {
            person: p, origin: w.code(origin), category: Category::Spouse,
            valid_until_ms: w.bureaus[dest].time_ms + 10 * DAY_MS, materials: Digest([1; 32]), corrects: None,
        }).unwrap().reference();
        let dereg = w.act(origin, Body::Deregistration { permit, person: p, new_head: None }).unwrap().reference();
        w.act(dest, Body::Registration { deregistration: dereg, person: p, placement: head(9_000) }).unwrap();

        let before = w.ledger.clone();
        let net = w.network;
        let attacker = (which % 4) as usize;
        let b = &w.bureaus[attacker];
        let cases: Vec<(&str, SignedEntry)> = vec![
            ("permit_not_open", w.bureaus[origin].draft(net, Body::Deregistration { permit, person: p, new_head: None })),
            ("reference_wrong_kind", w.bureaus[dest].draft(net, Body::Registration { deregistration: permit, person: p, placement: head(9_001) })),
            ("deregistration_consumed", w.bureaus[dest].draft(net, Body::Registration { deregistration: dereg, person: p, placement: head(9_002) })),
            ("permit_origin_is_author", b.draft(net, Body::Permit {
                person: p, origin: b.code, category: Category::Child, valid_until_ms: b.time_ms + DAY_MS,
                materials: Digest([2; 32]), corrects: None })),
            ("not_permit_origin", w.bureaus[2].draft(net, Body::Deregistration { permit, person: p, new_head: None })),
            ("bad_signature", {
                let good = b.draft(net, Body::Enrol { person: person(99_999), placement: head(9_003), claim: dummy_claim() });
                let mut sig = good.signature().0;
                sig[5] ^= 1;
                SignedEntry::from_parts(good.entry().clone(), Signature(sig))
            }),
            ("bad_signature", {
                // Signed by another member's key.
                let forger = &w.bureaus[(attacker + 1) % 4];
                let e = Entry { network: net, epoch: 0, author: b.code, seq: Seq(b.seq), prev: b.prev, time_ms: b.time_ms, body: Body::Enrol { person: person(99_998), placement: head(9_004), claim: dummy_claim() } };
                e.sign(&forger.key)
            }),
            ("wrong_network", {
                let e = Entry { network: NetworkId::from_name("other"), epoch: 0, author: b.code, seq: Seq(b.seq), prev: b.prev, time_ms: b.time_ms, body: Body::Enrol { person: person(99_997), placement: head(9_005), claim: dummy_claim() } };
                e.sign(&b.key)
            }),
            ("duplicate_entry", w.history[(which as usize / 7) % w.history.len()].clone()),
            ("missing_previous", {
                let e = Entry { network: net, epoch: 0, author: b.code, seq: Seq(b.seq + 1), prev: b.prev, time_ms: b.time_ms, body: Body::Enrol { person: person(99_996), placement: head(9_006), claim: dummy_claim() } };
                e.sign(&b.key)
            }),
            ("prev_mismatch", {
                let e = Entry { network: net, epoch: 0, author: b.code, seq: Seq(b.seq), prev: EntryHash([9; 32]), time_ms: b.time_ms, body: Body::Enrol { person: person(99_995), placement: head(9_007), claim: dummy_claim() } };
                e.sign(&b.key)
            }),
            ("time_went_backwards", {
                let last = w.ledger.log(b.code).map_or(0, |l| l.last_time_ms);
                let e = Entry { network: net, epoch: 0, author: b.code, seq: Seq(b.seq), prev: b.prev, time_ms: last - 1, body: Body::Enrol { person: person(99_994), placement: head(9_008), claim: dummy_claim() } };
                e.sign(&b.key)
            }),
            ("unknown_reference", {
                let ghost = hukou_protocol::EntryRef { author: w.code(origin), seq: Seq(1_000_000), hash: EntryHash([3; 32]) };
                w.bureaus[dest].draft(net, Body::Registration { deregistration: ghost, person: p, placement: head(9_009) })
            }),
            ("reference_hash_mismatch", {
                let wrong = hukou_protocol::EntryRef { hash: EntryHash([4; 32]), ..dereg };
                w.bureaus[dest].draft(net, Body::Registration { deregistration: wrong, person: p, placement: head(9_010) })
            }),
        ];
        for (rule, entry) in cases {
            let mut ledger = w.ledger.clone();
            let got = ledger.apply(&entry, SignatureCheck::Verify);
            let err = got.expect_err(rule);
            prop_assert_eq!(err.name(), rule, "{}", err);
            prop_assert_eq!(&ledger, &before, "a refusal left state unchanged");
        }

        // Equivocation: a second, different entry at a position already taken.
        let victim = &w.history[(which as usize) % w.history.len()];
        let author = w.index_of(victim.entry().author);
        let forked = Entry { body: Body::Enrol { person: person(88_888), placement: head(9_999), claim: dummy_claim() }, ..victim.entry().clone() }
            .sign(&w.bureaus[author].key);
        let mut ledger = w.ledger.clone();
        let err = ledger.apply(&forked, SignatureCheck::Verify).unwrap_err();
        prop_assert_eq!(err.name(), "equivocation");
        prop_assert_eq!(&err, &Violation::Equivocation { existing: victim.reference(), conflicting: forked.reference() });
        let proof = FraudProof::new(victim.clone(), forked.clone());
        prop_assert!(proof.verify(w.ledger.epochs()).is_ok());
        let decoded = FraudProof::decode(&proof.encode()).unwrap();
        prop_assert_eq!(&decoded, &proof);
        prop_assert!(decoded.verify(&hukou_protocol::config::Epochs::of_membership(membership(4))).is_ok(), "verifiable with the membership alone");
        prop_assert_eq!(&ledger, &before);
    }

    /// Decoding arbitrary bytes never panics, and decoding a valid entry with one byte changed
    /// either fails or yields a different hash.
    #[test]
    fn decoding_random_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600), flip in any::<usize>()) {
        let _ = SignedEntry::decode(&bytes);
        let _ = FraudProof::decode(&bytes);
        let mut framed = b"HKE\x02".to_vec();
        framed.extend_from_slice(&bytes);
        let _ = SignedEntry::decode(&framed);

        let w = world_from(&[]);
        let good = w.history[0].encode();
        let mut bad = good.clone();
        let i = flip % bad.len();
        bad[i] ^= 0x40;
        if let Ok(decoded) = SignedEntry::decode(&bad) {
            let changed_content = decoded.hash() != w.history[0].hash();
            let changed_signature = decoded.signature() != w.history[0].signature();
            prop_assert!(changed_content || changed_signature);
            let mut ledger = Ledger::new(membership(4));
            prop_assert!(ledger.apply(&decoded, SignatureCheck::Verify).is_err() || !changed_content);
        }
    }
}

#[test]
fn waiting_entries_taken_out_of_a_buffer_apply_elsewhere() {
    let w = world_from(&[3, 17, 42, 5, 99, 7, 1000, 12, 64, 8]);
    let (first, rest) = w.history.split_first().expect("a history");
    // Everything but the very first entry: its log, and whatever references it, waits.
    let mut ledger = Ledger::new(membership(4));
    let mut buffer = CausalBuffer::new();
    let mut applied = Vec::new();
    for e in rest {
        for judged in buffer.offer(&mut ledger, e.clone(), SignatureCheck::Verify) {
            assert!(judged.result.is_ok(), "{:?}", judged.result);
            applied.push(judged.entry);
        }
    }
    let waiting = buffer.len();
    assert!(waiting > 0, "the first entry's log waits");
    let taken = buffer.take_all();
    assert_eq!(taken.len(), waiting);
    assert!(buffer.is_empty() && buffer.waiting().next().is_none());
    assert!(
        taken
            .iter()
            .all(|(_, check)| *check == SignatureCheck::Verify)
    );
    // Offered again to a ledger that has the missing entry, they all apply.
    let mut other = Ledger::new(membership(4));
    let mut other_buffer = CausalBuffer::new();
    let offers = std::iter::once((first.clone(), SignatureCheck::Verify))
        .chain(applied.into_iter().map(|e| (e, SignatureCheck::Verify)))
        .chain(taken);
    for (e, check) in offers {
        for judged in other_buffer.offer(&mut other, e, check) {
            assert!(judged.result.is_ok(), "{:?}", judged.result);
        }
    }
    assert!(other_buffer.is_empty());
    assert_eq!(other.entries_applied(), w.history.len() as u64);
}

#[test]
fn a_whole_transfer_with_household_succession() {
    let mut w = World::new(3);
    let (sh, zj) = (0, 1);
    // A household at Shanghai: head and spouse.
    let head_p = person(1);
    let spouse = person(2);
    w.enrol_with(sh, head_p, head(1)).unwrap();
    w.enrol_with(
        sh,
        spouse,
        Placement {
            household: HouseholdId(1),
            relation: Relation::Spouse,
        },
    )
    .unwrap();
    let t = w.bureaus[zj].time_ms;
    let permit = w
        .act(
            zj,
            Body::Permit {
                person: head_p,
                origin: w.code(sh),
                category: Category::Parent,
                valid_until_ms: t + 30 * DAY_MS,
                materials: Digest([0; 32]),
                corrects: None,
            },
        )
        .unwrap()
        .reference();
    assert_eq!(w.ledger.awaiting_origin(w.code(sh)).count(), 1);
    // The head cannot leave without naming a successor.
    let err = w
        .act(
            sh,
            Body::Deregistration {
                permit,
                person: head_p,
                new_head: None,
            },
        )
        .unwrap_err();
    assert_eq!(
        err,
        Violation::HeadLeavingWithoutSuccessor {
            entry: w.bureaus[sh]
                .draft(
                    w.network,
                    Body::Deregistration {
                        permit,
                        person: head_p,
                        new_head: None
                    }
                )
                .reference(),
            household: HouseholdId(1),
            members_left: 1
        }
    );
    let dereg = w
        .act(
            sh,
            Body::Deregistration {
                permit,
                person: head_p,
                new_head: Some(spouse),
            },
        )
        .unwrap()
        .reference();
    assert_eq!(
        w.ledger.household(w.code(sh), HouseholdId(1)).unwrap().head,
        spouse
    );
    assert_eq!(w.ledger.person(&head_p).unwrap().in_transit, vec![dereg]);
    assert_eq!(w.ledger.awaiting_destination(w.code(zj)).count(), 1);
    let reg = w
        .act(
            zj,
            Body::Registration {
                deregistration: dereg,
                person: head_p,
                placement: head(7),
            },
        )
        .unwrap();
    assert_eq!(
        w.ledger.person(&head_p).unwrap().registered_at(),
        Some(w.code(zj))
    );
    assert_eq!(w.ledger.awaiting_destination(w.code(zj)).count(), 0);
    assert_invariants(&w.ledger);

    // Wrong migration reversed: Shanghai issues a return-after-error permit naming the
    // erroneous registration; Zhejiang deregisters, Shanghai registers.
    let t = w.bureaus[sh].time_ms;
    let back = w
        .act(
            sh,
            Body::Permit {
                person: head_p,
                origin: w.code(zj),
                category: Category::ReturnAfterError,
                valid_until_ms: t + 2 * DAY_MS,
                materials: Digest([0; 32]),
                corrects: Some(reg.reference()),
            },
        )
        .unwrap()
        .reference();
    let d2 = w
        .act(
            zj,
            Body::Deregistration {
                permit: back,
                person: head_p,
                new_head: None,
            },
        )
        .unwrap()
        .reference();
    w.act(
        sh,
        Body::Registration {
            deregistration: d2,
            person: head_p,
            placement: Placement {
                household: HouseholdId(1),
                relation: Relation::Spouse,
            },
        },
    )
    .unwrap();
    assert_eq!(
        w.ledger.person(&head_p).unwrap().registered_at(),
        Some(w.code(sh))
    );
    assert_invariants(&w.ledger);
}

#[test]
fn racing_enrolments_of_one_person_cannot_both_take_effect() {
    let mut w = World::new(4);
    let p = person(1);
    let arbiter = w.index_of(w.ledger.membership().arbiter(&p));
    let (first, second) = ((arbiter + 1) % 4, (arbiter + 2) % 4);
    // Two windows ask for the same person at once: the arbiter's log takes the first request.
    let claim = w.claim(first, p).unwrap();
    // The second claim is refused by the rulebook itself (not only by admission): every node
    // replaying the arbiter's log refuses it the same way, whatever order logs arrive in.
    let racing = w.bureaus[arbiter].draft(
        w.network,
        Body::Claim {
            person: p,
            claimant: w.code(second),
            after: None,
        },
    );
    let before = w.ledger.clone();
    assert_eq!(
        w.ledger.clone().apply(&racing, SignatureCheck::Verify),
        Err(Violation::PersonClaimed {
            entry: racing.reference(),
            person: p,
            claim,
        })
    );
    // The losing bureau cannot use the winner's claim ...
    let stolen = w.bureaus[second].draft(
        w.network,
        Body::Enrol {
            person: p,
            placement: head(1),
            claim,
        },
    );
    assert_eq!(
        w.ledger.clone().apply(&stolen, SignatureCheck::Verify),
        Err(Violation::ClaimNotForAuthor {
            entry: stolen.reference(),
            claim,
            claimant: w.code(first),
        })
    );
    assert_eq!(w.ledger, before, "refusals changed nothing");
    // ... the winner enrols once, and not twice with one claim.
    w.act(
        first,
        Body::Enrol {
            person: p,
            placement: head(1),
            claim,
        },
    )
    .unwrap();
    let enrolment = w.history.last().unwrap().reference();
    let again = w.bureaus[first].draft(
        w.network,
        Body::Enrol {
            person: p,
            placement: head(2),
            claim,
        },
    );
    assert_eq!(
        w.ledger.clone().apply(&again, SignatureCheck::Verify),
        Err(Violation::ClaimConsumed {
            entry: again.reference(),
            claim,
            by: enrolment,
        })
    );
    assert_eq!(
        w.ledger.person(&p).unwrap().registered_at(),
        Some(w.code(first))
    );
    assert_eq!(w.ledger.duplicates().count(), 0);
}

#[test]
fn claims_follow_cancellations_and_only_the_arbiter_grants_them() {
    let mut w = World::new(4);
    let p = person(7);
    let arbiter = w.index_of(w.ledger.membership().arbiter(&p));
    let other = (arbiter + 1) % 4;
    // Only the arbiter's log may grant a claim on the person.
    let forged = w.bureaus[other].draft(
        w.network,
        Body::Claim {
            person: p,
            claimant: w.code(other),
            after: None,
        },
    );
    assert_eq!(
        w.ledger.clone().apply(&forged, SignatureCheck::Verify),
        Err(Violation::NotArbiter {
            entry: forged.reference(),
            person: p,
            arbiter: w.code(arbiter),
        })
    );
    let ghost = BureauCode::new(110101).unwrap();
    let to_stranger = w.bureaus[arbiter].draft(
        w.network,
        Body::Claim {
            person: p,
            claimant: ghost,
            after: None,
        },
    );
    assert_eq!(
        w.ledger.clone().apply(&to_stranger, SignatureCheck::Verify),
        Err(Violation::UnknownClaimant {
            entry: to_stranger.reference(),
            person: p,
            claimant: ghost,
        })
    );
    // Registered at `other`, the person emigrates; coming back, a new claim follows the
    // cancellation, and may be granted once.
    w.enrol(other, p).unwrap();
    let emigration = w
        .act(
            other,
            Body::Cancellation {
                person: p,
                reason: CancellationReason::Emigration,
                new_head: None,
            },
        )
        .unwrap()
        .reference();
    assert_eq!(w.ledger.claim_after(&p), Some(emigration));
    let stale = w.bureaus[arbiter].draft(
        w.network,
        Body::Claim {
            person: p,
            claimant: w.code(arbiter),
            after: None,
        },
    );
    assert_eq!(
        w.ledger.clone().apply(&stale, SignatureCheck::Verify),
        Err(Violation::PersonClaimed {
            entry: stale.reference(),
            person: p,
            claim: w.ledger.claim_on(&p, None).unwrap().reference,
        })
    );
    let back = (arbiter + 2) % 4;
    w.enrol(back, p).unwrap();
    assert_eq!(
        w.ledger.person(&p).unwrap().registered_at(),
        Some(w.code(back))
    );
    // After a death, no claim follows: nobody can register the person again.
    let death = w
        .act(
            back,
            Body::Cancellation {
                person: p,
                reason: CancellationReason::Death,
                new_head: None,
            },
        )
        .unwrap()
        .reference();
    let after_death = w.bureaus[arbiter].draft(
        w.network,
        Body::Claim {
            person: p,
            claimant: w.code(back),
            after: Some(death),
        },
    );
    // Admission and the rulebook agree: the replay refuses what the window refuses.
    assert_eq!(
        w.ledger.clone().apply(&after_death, SignatureCheck::Verify),
        Err(Violation::PersonCancelled {
            entry: after_death.reference(),
            person: p,
            cancellation: death,
        })
    );
    // A claim must follow a cancellation of the same person.
    let q = w.enrol_new(back);
    let wrong_person = w.bureaus[arbiter].draft(
        w.network,
        Body::Claim {
            person: q,
            claimant: w.code(back),
            after: Some(emigration),
        },
    );
    let err = w
        .ledger
        .clone()
        .apply(&wrong_person, SignatureCheck::Verify);
    if w.ledger.membership().arbiter(&q) == w.code(arbiter) {
        assert_eq!(
            err,
            Err(Violation::PersonMismatch {
                entry: wrong_person.reference(),
                reference: emigration,
                expected: p,
                found: q,
            })
        );
    } else {
        assert_eq!(err.unwrap_err().name(), "not_arbiter");
    }
    assert_invariants(&w.ledger);
}

#[test]
fn a_birth_is_dated_by_the_child_and_registered_young() {
    let mut w = World::new(2);
    let b = 0;
    let birth = |w: &mut World, p: PersonTag, born_on: u32| -> Result<SignedEntry, Violation> {
        let claim = w.claim(b, p)?;
        w.act(
            b,
            Body::Birth {
                person: p,
                placement: head(900 + u64::from(born_on % 97)),
                claim,
                born_on,
            },
        )
    };
    // Every bureau starts at 2026-01-01 00:00 UTC, 08:00 in China; acts come a minute apart.
    let today = w.today(b);
    assert_eq!(today, 20260101);
    let cases: [(u32, &str); 5] = [
        (20260230, "birth_date_invalid"),
        (20260000, "birth_date_invalid"),
        (20260102, "birth_date_in_future"),
        (20191225, "birth_date_too_old"),
        (19491001, "birth_date_too_old"),
    ];
    for (i, (born_on, rule)) in cases.into_iter().enumerate() {
        let p = person(100 + i as u32);
        let before = w.ledger.log_len(w.code(b));
        let err = birth(&mut w, p, born_on).unwrap_err();
        assert_eq!(err.name(), rule, "born {born_on}: {err}");
        let expected = match rule {
            "birth_date_invalid" => Violation::BirthDateInvalid {
                entry: err.entry(),
                born_on,
            },
            "birth_date_in_future" => Violation::BirthDateInFuture {
                entry: err.entry(),
                born_on,
                entry_date: 20260101,
            },
            _ => Violation::BirthDateTooOld {
                entry: err.entry(),
                born_on,
                age_days: match born_on {
                    20191225 => 2199,
                    _ => 27_851,
                },
                max_days: hukou_protocol::limits::BIRTH_REGISTRATION_AGE_DAYS_MAX,
            },
        };
        assert_eq!(err, expected);
        // The claim was granted (the arbiter's log moved on) but nothing of the birth stands.
        assert!(w.ledger.log_len(w.code(b)) >= before);
        assert!(w.ledger.person(&p).is_none_or(|s| s.records.is_empty()));
    }
    // Born today, and six years ago to the day (within 2,196 days): both registered.
    birth(&mut w, person(200), 20260101).unwrap();
    birth(&mut w, person(201), 20200101).unwrap();
    assert_eq!(
        w.ledger.person(&person(201)).unwrap().registered_at(),
        Some(w.code(b))
    );
}

#[test]
fn expired_permit_and_revocation_race() {
    let mut w = World::new(2);
    let p = w.enrol_new(0);
    let t = w.bureaus[1].time_ms;
    let permit = w
        .act(
            1,
            Body::Permit {
                person: p,
                origin: w.code(0),
                category: Category::Talent,
                // The shortest validity: one day after the permit's own time (`act` adds a
                // minute to the bureau's clock).
                valid_until_ms: t + 60_000 + DAY_MS,
                materials: Digest([0; 32]),
                corrects: None,
            },
        )
        .unwrap()
        .reference();
    w.bureaus[0].time_ms = t + DAY_MS + 1;
    let late = Body::Deregistration {
        permit,
        person: p,
        new_head: None,
    };
    let before = w.ledger.clone();
    let err = w.act(0, late.clone()).unwrap_err();
    assert_eq!(
        err,
        Violation::PermitExpired {
            entry: w.bureaus[0].draft(w.network, late).reference(),
            permit,
            valid_until_ms: t + 60_000 + DAY_MS,
            time_ms: t + DAY_MS + 1 + 60_000,
        }
    );
    assert_eq!(w.ledger, before);

    // A revocation and a deregistration racing: both apply in either order.
    let t = w.bureaus[1].time_ms.max(w.bureaus[0].time_ms);
    let permit = w
        .act(
            1,
            Body::Permit {
                person: p,
                origin: w.code(0),
                category: Category::Talent,
                valid_until_ms: t + 30 * DAY_MS,
                materials: Digest([0; 32]),
                corrects: None,
            },
        )
        .unwrap()
        .reference();
    let revoke = w.bureaus[1].draft(w.network, Body::Revocation { permit });
    let mut origin = w.bureaus[0].clone();
    origin.time_ms = t + 1000;
    let dereg = origin.draft(
        w.network,
        Body::Deregistration {
            permit,
            person: p,
            new_head: None,
        },
    );
    for order in [[revoke.clone(), dereg.clone()], [dereg, revoke]] {
        let mut ledger = w.ledger.clone();
        for e in order {
            ledger.apply(&e, SignatureCheck::Verify).unwrap();
        }
        let state = ledger.permit(&permit).unwrap();
        assert!(matches!(state.status, PermitStatus::Consumed { .. }));
        assert!(state.revoked_by.is_some());
    }
}

// ---------------------------------------------------------------------------------------------
// Each rule named by its exact violation and evidence, with the ledger unchanged by the refusal.

/// Bureau `b`'s next entry (a minute after its last), judged by `apply` on a copy of the ledger
/// and by `admit`: both refuse it, and the refusal changed nothing. Returns the violation and
/// the refused entry's reference.
fn refused(w: &World, b: usize, body: Body) -> (Violation, hukou_protocol::EntryRef) {
    let mut bureau = w.bureaus[b].clone();
    bureau.time_ms += 60_000;
    let entry = bureau.draft(w.network, body);
    let mut ledger = w.ledger.clone();
    let err = ledger
        .apply(&entry, SignatureCheck::Verify)
        .expect_err("refused by apply");
    assert_eq!(ledger, w.ledger, "a refusal changes nothing");
    assert_eq!(
        w.ledger.admit(&entry, SignatureCheck::Verify),
        Err(err.clone()),
        "admit names the same rule"
    );
    (err, entry.reference())
}

/// Bureau `b`'s next entry timed now: what `refused` would draft, for computing validity.
fn next_time(w: &World, b: usize) -> u64 {
    w.bureaus[b].time_ms + 60_000
}

fn permit_body(
    w: &World,
    p: hukou_protocol::PersonTag,
    origin: usize,
    valid_until_ms: u64,
) -> Body {
    Body::Permit {
        person: p,
        origin: w.code(origin),
        category: Category::Spouse,
        valid_until_ms,
        materials: Digest([5; 32]),
        corrects: None,
    }
}

fn non_member() -> hukou_protocol::BureauCode {
    hukou_protocol::BureauCode::new(CODES[3]).unwrap()
}

#[test]
fn permit_validity_is_bounded_after_its_own_time() {
    use hukou_protocol::limits::{PERMIT_VALIDITY_MS_MAX, PERMIT_VALIDITY_MS_MIN};
    let mut w = World::new(2);
    let p = w.enrol_new(0);
    let t = next_time(&w, 1);
    let century = t + 100 * 365 * DAY_MS;
    for valid_until_ms in [
        century,
        t + PERMIT_VALIDITY_MS_MAX + 1,
        t + PERMIT_VALIDITY_MS_MIN - 1,
        t,
        t - 1,
        0,
        u64::MAX,
    ] {
        let (err, entry) = refused(&w, 1, permit_body(&w, p, 0, valid_until_ms));
        assert_eq!(
            err,
            Violation::PermitValidityInvalid {
                entry,
                valid_until_ms,
                time_ms: t,
                validity_ms_min: PERMIT_VALIDITY_MS_MIN,
                validity_ms_max: PERMIT_VALIDITY_MS_MAX,
            }
        );
        assert_eq!(err.name(), "permit_validity_invalid");
    }
    // Both bounds are valid.
    w.act(1, permit_body(&w, p, 0, t + PERMIT_VALIDITY_MS_MIN))
        .unwrap();
    let t = next_time(&w, 1);
    w.act(1, permit_body(&w, p, 0, t + PERMIT_VALIDITY_MS_MAX))
        .unwrap();
}

#[test]
fn a_permit_naming_a_non_member_origin_is_unknown_origin() {
    let mut w = World::new(2);
    let p = w.enrol_new(0);
    let t = next_time(&w, 1);
    let body = Body::Permit {
        person: p,
        origin: non_member(),
        category: Category::Spouse,
        valid_until_ms: t + 30 * DAY_MS,
        materials: Digest([5; 32]),
        corrects: None,
    };
    let (err, entry) = refused(&w, 1, body);
    assert_eq!(
        err,
        Violation::UnknownOrigin {
            entry,
            origin: non_member()
        }
    );
}

#[test]
fn a_replica_refuses_a_permit_for_a_person_registered_at_its_author() {
    let mut w = World::new(2);
    let p = w.enrol_new(1);
    let at = w.history.last().unwrap().reference();
    let t = next_time(&w, 1);
    let (err, entry) = refused(&w, 1, permit_body(&w, p, 0, t + 30 * DAY_MS));
    assert_eq!(
        err,
        Violation::PersonAlreadyRegistered {
            entry,
            person: p,
            at
        }
    );
}

/// A completed transfer of a new person from bureau `from` to bureau `to`: (person, permit,
/// deregistration, registration).
fn transfer(
    w: &mut World,
    from: usize,
    to: usize,
) -> (
    hukou_protocol::PersonTag,
    hukou_protocol::EntryRef,
    hukou_protocol::EntryRef,
    hukou_protocol::EntryRef,
) {
    let p = w.enrol_new(from);
    let t = next_time(w, to);
    let permit = w
        .act(to, permit_body(w, p, from, t + 30 * DAY_MS))
        .unwrap()
        .reference();
    let dereg = w
        .act(
            from,
            Body::Deregistration {
                permit,
                person: p,
                new_head: None,
            },
        )
        .unwrap()
        .reference();
    let household = w.bureaus[to].next_household;
    w.bureaus[to].next_household += 1;
    let reg = w
        .act(
            to,
            Body::Registration {
                deregistration: dereg,
                person: p,
                placement: head(household),
            },
        )
        .unwrap()
        .reference();
    (p, permit, dereg, reg)
}

#[test]
fn references_of_the_wrong_kind() {
    let mut w = World::new(2);
    let p = w.enrol_new(0);
    let enrolment = w.history.last().unwrap().reference();
    let t = next_time(&w, 1);
    let permit = w
        .act(1, permit_body(&w, p, 0, t + 30 * DAY_MS))
        .unwrap()
        .reference();
    // A registration against a permit.
    let (err, entry) = refused(
        &w,
        1,
        Body::Registration {
            deregistration: permit,
            person: p,
            placement: head(50),
        },
    );
    assert_eq!(
        err,
        Violation::ReferenceWrongKind {
            entry,
            reference: permit,
            expected: hukou_protocol::BodyKind::Deregistration,
            found: hukou_protocol::BodyKind::Permit,
        }
    );
    // A deregistration against an enrolment, with no person (as the API builds it).
    let (err, entry) = refused(
        &w,
        0,
        Body::Deregistration {
            permit: enrolment,
            person: hukou_protocol::PersonTag::ZERO,
            new_head: None,
        },
    );
    assert_eq!(
        err,
        Violation::ReferenceWrongKind {
            entry,
            reference: enrolment,
            expected: hukou_protocol::BodyKind::Permit,
            found: hukou_protocol::BodyKind::Enrol,
        }
    );
}

#[test]
fn each_correction_rule_has_its_own_name() {
    let mut w = World::new(3);
    // p moved 0 -> 1 by mistake; q moved 2 -> 1.
    let (p, _, _, reg_p) = transfer(&mut w, 0, 1);
    let (q, _, _, reg_q) = transfer(&mut w, 2, 1);
    let t = next_time(&w, 0);
    let correction_for = |person, category, corrects| Body::Permit {
        person,
        origin: w.code(1),
        category,
        valid_until_ms: t + 30 * DAY_MS,
        materials: Digest([6; 32]),
        corrects,
    };
    let correction = |category, corrects| correction_for(p, category, corrects);
    let (err, entry) = refused(&w, 0, correction(Category::ReturnAfterError, None));
    assert_eq!(err, Violation::CorrectionMissing { entry });
    let (err, entry) = refused(&w, 0, correction(Category::Spouse, Some(reg_p)));
    assert_eq!(
        err,
        Violation::CorrectionUnexpected {
            entry,
            corrects: reg_p,
            category: Category::Spouse
        }
    );
    // Naming q's registration for p: another person.
    let (err, entry) = refused(&w, 0, correction(Category::ReturnAfterError, Some(reg_q)));
    assert_eq!(
        err,
        Violation::PersonMismatch {
            entry,
            reference: reg_q,
            expected: q,
            found: p
        }
    );
    // Bureau 0 reversing q's move, which was from bureau 2, not from bureau 0: wrong transfer.
    let body = correction_for(q, Category::ReturnAfterError, Some(reg_q));
    let (err, entry) = refused(&w, 0, body);
    assert_eq!(
        err,
        Violation::CorrectionWrongTransfer {
            entry,
            registration: reg_q,
            from: w.code(2),
            origin: w.code(1),
        }
    );
    assert!(
        hukou_protocol::rules::RETIRED_NAMES.contains(&"correction_mismatch"),
        "the old name is retired"
    );
    // The right correction is accepted.
    w.act(0, correction(Category::ReturnAfterError, Some(reg_p)))
        .unwrap();
}

#[test]
fn a_destination_may_not_register_against_a_permit_it_revoked() {
    let mut w = World::new(2);
    let p = w.enrol_new(0);
    let t = next_time(&w, 1);
    let permit = w
        .act(1, permit_body(&w, p, 0, t + 30 * DAY_MS))
        .unwrap()
        .reference();
    // The revocation and the deregistration race: each author signs without seeing the other.
    let revocation = w.bureaus[1].draft(w.network, Body::Revocation { permit });
    let mut origin = w.bureaus[0].clone();
    origin.time_ms += 60_000;
    let dereg = origin.draft(
        w.network,
        Body::Deregistration {
            permit,
            person: p,
            new_head: None,
        },
    );
    for order in [
        [revocation.clone(), dereg.clone()],
        [dereg.clone(), revocation.clone()],
    ] {
        let mut ledger = w.ledger.clone();
        for e in &order {
            ledger.apply(e, SignatureCheck::Verify).unwrap();
        }
        let mut destination = w.bureaus[1].clone();
        destination.accept(&revocation);
        destination.time_ms += 60_000;
        let registration = destination.draft(
            w.network,
            Body::Registration {
                deregistration: dereg.reference(),
                person: p,
                placement: head(60),
            },
        );
        let before = ledger.clone();
        assert_eq!(
            ledger.apply(&registration, SignatureCheck::Verify),
            Err(Violation::PermitRevokedByDestination {
                entry: registration.reference(),
                deregistration: dereg.reference(),
                permit,
                revocation: revocation.reference(),
            })
        );
        assert_eq!(ledger, before);
    }
}

#[test]
fn a_destination_may_not_revoke_a_permit_it_registered_against() {
    let mut w = World::new(2);
    let (_, permit, dereg, _) = transfer(&mut w, 0, 1);
    let (err, entry) = refused(&w, 1, Body::Revocation { permit });
    assert_eq!(
        err,
        Violation::PermitNotOpen {
            entry,
            permit,
            status: PermitStatus::Consumed { by: dereg }
        }
    );
}

#[test]
fn household_numbers_are_bounded() {
    use hukou_protocol::limits::HOUSEHOLD_ID_MAX;
    let mut w = World::new(2);
    let p = person(500);
    // A claim on the person for bureau 0, so that only the placement is wrong.
    let claim = w.claim(0, p).unwrap();
    for household in [HOUSEHOLD_ID_MAX + 1, 18_446_744_073_709_551_614, u64::MAX] {
        for relation in [Relation::Head, Relation::Child] {
            let placement = Placement {
                household: HouseholdId(household),
                relation,
            };
            let (err, entry) = refused(
                &w,
                0,
                Body::Enrol {
                    person: p,
                    placement,
                    claim,
                },
            );
            assert_eq!(
                err,
                Violation::HouseholdOutOfRange {
                    entry,
                    household: HouseholdId(household),
                    household_max: HOUSEHOLD_ID_MAX
                }
            );
        }
    }
    // A registration is placed by the same rule.
    let q = w.enrol_new(0);
    let t = next_time(&w, 1);
    let permit = w
        .act(1, permit_body(&w, q, 0, t + 30 * DAY_MS))
        .unwrap()
        .reference();
    let dereg = w
        .act(
            0,
            Body::Deregistration {
                permit,
                person: q,
                new_head: None,
            },
        )
        .unwrap()
        .reference();
    let (err, entry) = refused(
        &w,
        1,
        Body::Registration {
            deregistration: dereg,
            person: q,
            placement: head(HOUSEHOLD_ID_MAX + 1),
        },
    );
    assert_eq!(
        err,
        Violation::HouseholdOutOfRange {
            entry,
            household: HouseholdId(HOUSEHOLD_ID_MAX + 1),
            household_max: HOUSEHOLD_ID_MAX
        }
    );
    // The largest number is valid.
    w.act(
        0,
        Body::Enrol {
            person: p,
            placement: head(HOUSEHOLD_ID_MAX),
            claim,
        },
    )
    .unwrap();
}

#[test]
fn household_has_head_and_household_unknown() {
    let mut w = World::new(1);
    let head_p = person(1);
    w.enrol_with(0, head_p, head(1)).unwrap();
    // A claim on the second person for bureau 0, so that only the placement is wrong.
    let claim = w.claim(0, person(2)).unwrap();
    let (err, entry) = refused(
        &w,
        0,
        Body::Enrol {
            person: person(2),
            placement: head(1),
            claim,
        },
    );
    assert_eq!(
        err,
        Violation::HouseholdHasHead {
            entry,
            household: HouseholdId(1),
            head: head_p
        }
    );
    let (err, entry) = refused(
        &w,
        0,
        Body::Birth {
            person: person(2),
            placement: Placement {
                household: HouseholdId(2),
                relation: Relation::Child,
            },
            claim,
            born_on: w.today(0),
        },
    );
    assert_eq!(
        err,
        Violation::HouseholdUnknown {
            entry,
            household: HouseholdId(2)
        }
    );
    // A head change names a household that exists, too.
    let (err, entry) = refused(
        &w,
        0,
        Body::HeadChange {
            household: HouseholdId(2),
            new_head: head_p,
        },
    );
    assert_eq!(
        err,
        Violation::HouseholdUnknown {
            entry,
            household: HouseholdId(2)
        }
    );
}

#[test]
fn successor_unexpected() {
    let mut w = World::new(2);
    // A head alone in the household, and a member of another one.
    let alone = w.enrol_new(0);
    let other_head = w.enrol_new(0);
    let member = person(99);
    let household = w.ledger.person(&other_head).unwrap().records[0].household;
    w.enrol_with(
        0,
        member,
        Placement {
            household,
            relation: Relation::Spouse,
        },
    )
    .unwrap();
    for (leaving, named) in [(alone, other_head), (member, other_head)] {
        let (err, entry) = refused(
            &w,
            0,
            Body::Cancellation {
                person: leaving,
                reason: hukou_protocol::CancellationReason::Emigration,
                new_head: Some(named),
            },
        );
        assert_eq!(err, Violation::SuccessorUnexpected { entry });
    }
    // The same rule for a deregistration.
    let t = next_time(&w, 1);
    let permit = w
        .act(1, permit_body(&w, member, 0, t + 30 * DAY_MS))
        .unwrap()
        .reference();
    let (err, entry) = refused(
        &w,
        0,
        Body::Deregistration {
            permit,
            person: member,
            new_head: Some(other_head),
        },
    );
    assert_eq!(err, Violation::SuccessorUnexpected { entry });
}
