//! The configuration log: every refusal by its exact variant, and what each change makes.
//!
//! The network: four members (quorum 3) and three administrators (2 of 3), all keys from fixed
//! seeds. Calendar years are not published here: the calendar merge is not written yet.

use super::*;

const NET: &str = "config-test";
const CODES: [u32; 4] = [310104, 320506, 330502, 340100];
/// A code no genesis member has.
const NEWCOMER: u32 = 350102;
const GENESIS_HASH: [u8; 32] = [0x99; 32];

fn code(c: u32) -> BureauCode {
    BureauCode::new(c).unwrap()
}

/// Member `i`'s key (0..4), and fresh keys for `i` from 10 on.
fn member_key(i: u8) -> SigningKey {
    SigningKey::from_bytes(&[i + 1; 32])
}

/// Administrator `i`'s key (0..3); fresh administrator keys for `i` from 10 on.
fn admin_key(i: u8) -> SigningKey {
    SigningKey::from_bytes(&[0xa0 + i; 32])
}

fn pk(key: &SigningKey) -> [u8; 32] {
    key.verifying_key().to_bytes()
}

fn key_hex(key: &SigningKey) -> String {
    hex::encode(pk(key))
}

fn address(i: usize) -> Vec<String> {
    vec![format!("/ip4/127.0.0.1/tcp/{}", 4101 + i)]
}

fn membership() -> Membership {
    let members = CODES.iter().enumerate().map(|(i, &c)| Member {
        code: code(c),
        name: format!("bureau {c}"),
        key: member_key(i as u8).verifying_key(),
    });
    Membership::new(NET, members, 3).unwrap()
}

fn genesis() -> Epochs {
    Epochs::genesis(GenesisConfig {
        membership: membership(),
        addresses: CODES
            .iter()
            .enumerate()
            .map(|(i, &c)| (code(c), address(i)))
            .collect(),
        administrators: (0..3).map(|i| admin_key(i).verifying_key()).collect(),
        threshold: 2,
        hash: GENESIS_HASH,
        calendar: Calendar::prc().clone(),
    })
}

/// The update making the next epoch after the latest of `epochs`.
fn next(epochs: &Epochs, changes: Vec<Change>) -> ConfigUpdate {
    let latest = epochs.latest();
    ConfigUpdate {
        network: epochs.network(),
        epoch: latest.epoch + 1,
        prev: latest.hash,
        time_ms: 1_767_225_600_000 + u64::from(latest.epoch),
        changes,
    }
}

/// `update` signed by the administrators `admins` (by index, `admin_key`).
fn signed(update: ConfigUpdate, admins: &[u8]) -> SignedUpdate {
    let mut s = SignedUpdate::unsigned(update);
    for &i in admins {
        s.sign(&admin_key(i));
    }
    s
}

/// The next update of `epochs`, signed by administrators 0 and 1.
fn good(epochs: &Epochs, changes: Vec<Change>) -> SignedUpdate {
    signed(next(epochs, changes), &[0, 1])
}

/// Pushes `changes` as the next epoch; panics if refused.
fn advance(epochs: &mut Epochs, changes: Vec<Change>) -> Vec<Cut> {
    let update = good(epochs, changes);
    epochs.push(update).expect("a valid update")
}

/// Judges `changes` as the next epoch, and checks that `push` refuses it the same way and
/// leaves everything unchanged.
fn refused(epochs: &Epochs, update: SignedUpdate) -> ConfigError {
    let err = epochs.check(&update).expect_err("refused");
    let mut copy = epochs.clone();
    assert_eq!(copy.push(update), Err(err.clone()));
    assert_eq!(&copy, epochs, "a refused update changes nothing");
    err
}

fn refused_changes(epochs: &Epochs, changes: Vec<Change>) -> ConfigError {
    refused(epochs, good(epochs, changes))
}

fn rotate(i: usize, key: &SigningKey) -> Change {
    Change::RotateKey {
        code: code(CODES[i]),
        key: pk(key),
    }
}

fn add(c: u32, key: &SigningKey) -> Change {
    Change::AddMember {
        code: code(c),
        name: format!("bureau {c}"),
        key: pk(key),
        addresses: vec!["/ip4/127.0.0.1/tcp/4200".into()],
    }
}

fn retire(i: usize, from_seq: u64, successor: usize) -> Change {
    Change::RetireMember {
        code: code(CODES[i]),
        from_seq: Seq(from_seq),
        successor: code(CODES[successor]),
    }
}

/// A tag from a number.
fn tag(n: u32) -> PersonTag {
    let mut t = [0u8; 32];
    t[..4].copy_from_slice(&n.to_le_bytes());
    PersonTag(t)
}

/// A person whose arbiter in epoch 0 is member `i`.
fn person_of(epochs: &Epochs, i: usize) -> PersonTag {
    (0..)
        .map(tag)
        .find(|t| epochs.get(0).unwrap().arbiter(t) == code(CODES[i]))
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Epoch 0.

#[test]
fn epoch_zero_is_the_genesis() {
    let epochs = genesis();
    let e = epochs.latest();
    assert_eq!(e.epoch, 0);
    assert_eq!(e.hash, ConfigHash(GENESIS_HASH));
    assert_eq!(e.membership, membership());
    assert_eq!(e.threshold, 2);
    let mut admins: Vec<VerifyingKey> = (0..3).map(|i| admin_key(i).verifying_key()).collect();
    admins.sort_by_key(|k| k.to_bytes());
    assert_eq!(e.administrators, admins);
    assert_eq!(e.deadlines, Deadlines::GENESIS);
    assert_eq!(e.time_ms, 0);
    assert_eq!(
        e.arbiter_slots(),
        CODES.map(code).as_slice(),
        "one slot per genesis member, in code order"
    );
    assert!(epochs.updates().is_empty());
    assert_eq!(epochs.all_cuts().count(), 0);
    assert_eq!(epochs.get(1), None);
}

#[test]
fn the_arbiter_of_epoch_zero_is_the_memberships() {
    let epochs = genesis();
    let m = membership();
    let e = epochs.get(0).unwrap();
    for n in 0..2_000 {
        assert_eq!(e.arbiter(&tag(n)), m.arbiter(&tag(n)), "tag {n}");
    }
    // And the pinned vector of `membership.rs` and docs/FORMAT.md.
    let pinned = Membership::new(
        "arbiter-test",
        [340104, 310104, 340100, 330502]
            .iter()
            .enumerate()
            .map(|(i, &c)| Member {
                code: code(c),
                name: format!("bureau {c}"),
                key: SigningKey::from_bytes(&[i as u8 + 1; 32]).verifying_key(),
            }),
        3,
    )
    .unwrap();
    let e = Epochs::of_membership(pinned);
    assert_eq!(e.latest().arbiter(&PersonTag([0x11; 32])), code(340104));
}

// ---------------------------------------------------------------------------------------------
// Refusals, by variant.

#[test]
fn too_few_signatures() {
    let epochs = genesis();
    let update = signed(next(&epochs, vec![rotate(0, &member_key(10))]), &[2]);
    let err = refused(&epochs, update);
    assert_eq!(err, ConfigError::TooFewSignatures { have: 1, need: 2 });
    assert_eq!(err.name(), "config_too_few_signatures");
    let unsigned = SignedUpdate::unsigned(next(&epochs, vec![rotate(0, &member_key(10))]));
    assert_eq!(
        refused(&epochs, unsigned),
        ConfigError::TooFewSignatures { have: 0, need: 2 }
    );
}

#[test]
fn unknown_administrator() {
    let epochs = genesis();
    let stranger = SigningKey::from_bytes(&[0x77; 32]);
    let mut update = signed(next(&epochs, vec![rotate(0, &member_key(10))]), &[0, 1]);
    update.sign(&stranger);
    let err = refused(&epochs, update);
    assert_eq!(
        err,
        ConfigError::UnknownAdministrator {
            key_hex: key_hex(&stranger),
            epoch: 0
        }
    );
    assert_eq!(err.name(), "config_unknown_administrator");
    // A member's key is no administrator's.
    let mut update = signed(next(&epochs, vec![rotate(0, &member_key(10))]), &[0]);
    update.sign(&member_key(1));
    assert_eq!(
        refused(&epochs, update),
        ConfigError::UnknownAdministrator {
            key_hex: key_hex(&member_key(1)),
            epoch: 0
        }
    );
}

#[test]
fn bad_signature() {
    let epochs = genesis();
    let mut update = signed(next(&epochs, vec![rotate(0, &member_key(10))]), &[0, 1]);
    let victim = update.signatures[1].admin;
    update.signatures[1].signature.0[7] ^= 1;
    let err = refused(&epochs, update);
    assert_eq!(
        err,
        ConfigError::BadSignature {
            key_hex: hex::encode(victim)
        }
    );
    assert_eq!(err.name(), "config_bad_signature");
    // Signatures on another update do not carry over.
    let other = signed(next(&epochs, vec![rotate(1, &member_key(10))]), &[0, 1]);
    let moved = SignedUpdate {
        update: next(&epochs, vec![rotate(0, &member_key(10))]),
        signatures: other.signatures.clone(),
    };
    assert_eq!(
        refused(&epochs, moved),
        ConfigError::BadSignature {
            key_hex: hex::encode(other.signatures[0].admin)
        }
    );
}

#[test]
fn unsorted_or_duplicate_signatures() {
    let epochs = genesis();
    let update = signed(next(&epochs, vec![rotate(0, &member_key(10))]), &[0, 1, 2]);
    let mut reversed = update.clone();
    reversed.signatures.reverse();
    let err = refused(&epochs, reversed.clone());
    assert_eq!(
        err,
        ConfigError::SignaturesNotCanonical {
            key_hex: hex::encode(reversed.signatures[1].admin)
        }
    );
    assert_eq!(err.name(), "config_signatures_not_canonical");
    // One administrator twice does not make two.
    let mut twice = signed(next(&epochs, vec![rotate(0, &member_key(10))]), &[0]);
    twice.signatures.push(twice.signatures[0].clone());
    assert_eq!(
        refused(&epochs, twice),
        ConfigError::SignaturesNotCanonical {
            key_hex: key_hex(&admin_key(0))
        }
    );
}

#[test]
fn stale_gap_and_wrong_previous() {
    let mut epochs = genesis();
    advance(&mut epochs, vec![rotate(0, &member_key(10))]);
    advance(&mut epochs, vec![rotate(1, &member_key(11))]);
    let epoch_1 = epochs.get(1).unwrap().hash;

    // Built on epoch 0 again, signed by only one administrator: not a conflict, just old.
    let stale = signed(next(&genesis(), vec![rotate(2, &member_key(12))]), &[2]);
    let err = refused(&epochs, stale);
    assert_eq!(
        err,
        ConfigError::Stale {
            found: 1,
            latest: 2
        }
    );
    assert_eq!(err.name(), "config_stale");
    assert!(!err.is_not_yet());

    // Epoch 0 is the genesis: no update makes it.
    let zero = signed(
        ConfigUpdate {
            epoch: 0,
            ..next(&epochs, vec![rotate(2, &member_key(12))])
        },
        &[0, 1],
    );
    assert_eq!(
        refused(&epochs, zero),
        ConfigError::Stale {
            found: 0,
            latest: 2
        }
    );

    let gap = signed(
        ConfigUpdate {
            epoch: 4,
            ..next(&epochs, vec![rotate(2, &member_key(12))])
        },
        &[0, 1],
    );
    let err = refused(&epochs, gap);
    assert_eq!(
        err,
        ConfigError::Gap {
            found: 4,
            latest: 2
        }
    );
    assert_eq!(err.name(), "config_gap");
    assert!(err.is_not_yet(), "an update after a gap may apply later");

    let wrong = signed(
        ConfigUpdate {
            prev: epoch_1,
            ..next(&epochs, vec![rotate(2, &member_key(12))])
        },
        &[0, 1],
    );
    let err = refused(&epochs, wrong);
    assert_eq!(
        err,
        ConfigError::WrongPrevious {
            epoch: 2,
            expected: epochs.latest().hash,
            found: epoch_1
        }
    );
    assert_eq!(err.name(), "config_wrong_previous");
}

#[test]
fn two_updates_for_one_epoch_each_signed_by_a_threshold_conflict() {
    let mut epochs = genesis();
    let first = signed(next(&epochs, vec![rotate(0, &member_key(10))]), &[0, 1]);
    let second = signed(next(&epochs, vec![rotate(0, &member_key(11))]), &[1, 2]);
    epochs.push(first.clone()).unwrap();
    let err = refused(&epochs, second.clone());
    assert_eq!(
        err,
        ConfigError::Conflict {
            epoch: 1,
            existing: first.hash(),
            conflicting: second.hash(),
        }
    );
    assert_eq!(err.name(), "config_conflict");
    // With fewer than the threshold, the other update proves nothing: it is stale.
    let weak = signed(next(&genesis(), vec![rotate(0, &member_key(11))]), &[2]);
    assert_eq!(
        refused(&epochs, weak),
        ConfigError::Stale {
            found: 1,
            latest: 1
        }
    );
}

#[test]
fn empty_too_many_wrong_network_oversized() {
    let epochs = genesis();
    let err = refused_changes(&epochs, vec![]);
    assert_eq!(err, ConfigError::Empty);
    assert_eq!(err.name(), "config_empty");

    let many = vec![Change::SetQuorum { quorum: 3 }; CONFIG_CHANGES_MAX + 1];
    let err = refused_changes(&epochs, many);
    assert_eq!(
        err,
        ConfigError::TooManyChanges {
            count: CONFIG_CHANGES_MAX + 1,
            max: CONFIG_CHANGES_MAX
        }
    );
    assert_eq!(err.name(), "config_too_many_changes");

    let other = signed(
        ConfigUpdate {
            network: NetworkId::from_name("another-net"),
            ..next(&epochs, vec![rotate(0, &member_key(10))])
        },
        &[0, 1],
    );
    let err = refused(&epochs, other);
    assert_eq!(err, ConfigError::WrongNetwork);
    assert_eq!(err.name(), "config_wrong_network");

    let huge = good(
        &epochs,
        vec![Change::PublishCalendarYear {
            text: "x".repeat(CONFIG_UPDATE_BYTES_MAX),
        }],
    );
    let len = huge.encode().len();
    let err = refused(&epochs, huge);
    assert_eq!(
        err,
        ConfigError::Oversized {
            len,
            max: CONFIG_UPDATE_BYTES_MAX
        }
    );
    assert_eq!(err.name(), "config_oversized");
}

#[test]
fn a_genesis_without_administrators_takes_no_update() {
    let epochs = Epochs::of_membership(membership());
    let err = refused(&epochs, good(&epochs, vec![rotate(0, &member_key(10))]));
    assert_eq!(err, ConfigError::NoAdministrators);
    assert_eq!(err.name(), "config_no_administrators");
}

#[test]
fn already_member_and_not_member() {
    let epochs = genesis();
    let err = refused_changes(&epochs, vec![add(CODES[2], &member_key(10))]);
    assert_eq!(
        err,
        ConfigError::AlreadyMember {
            index: 0,
            change: "add_member",
            code: code(CODES[2])
        }
    );
    assert_eq!(err.name(), "config_already_member");

    let stranger = code(NEWCOMER);
    for (change, name) in [
        (
            Change::RotateKey {
                code: stranger,
                key: pk(&member_key(10)),
            },
            "rotate_key",
        ),
        (
            Change::RevokeKey {
                code: stranger,
                key: pk(&member_key(10)),
                from_seq: Seq(0),
            },
            "revoke_key",
        ),
        (
            Change::RetireMember {
                code: stranger,
                from_seq: Seq(0),
                successor: code(CODES[0]),
            },
            "retire_member",
        ),
        (
            Change::SetAddresses {
                code: stranger,
                addresses: address(9),
            },
            "set_addresses",
        ),
    ] {
        let err = refused_changes(&epochs, vec![Change::SetQuorum { quorum: 3 }, change]);
        assert_eq!(
            err,
            ConfigError::NotMember {
                index: 1,
                change: name,
                code: stranger
            }
        );
        assert_eq!(err.name(), "config_not_member");
    }
}

#[test]
fn a_retired_code_is_never_reused() {
    let mut epochs = genesis();
    advance(&mut epochs, vec![retire(3, 0, 0)]);
    let err = refused_changes(&epochs, vec![add(CODES[3], &member_key(10))]);
    assert_eq!(
        err,
        ConfigError::CodeRetired {
            index: 0,
            change: "add_member",
            code: code(CODES[3])
        }
    );
    assert_eq!(err.name(), "config_code_retired");
}

#[test]
fn a_key_is_never_shared_or_reused() {
    let mut epochs = genesis();
    // A member's key for a new member.
    let err = refused_changes(&epochs, vec![add(NEWCOMER, &member_key(1))]);
    assert_eq!(
        err,
        ConfigError::KeyReused {
            index: 0,
            change: "add_member",
            used_by: format!("bureau {}", CODES[1]),
        }
    );
    assert_eq!(err.name(), "config_key_reused");
    // Two new members, one key.
    let err = refused_changes(
        &epochs,
        vec![add(NEWCOMER, &member_key(10)), add(350103, &member_key(10))],
    );
    assert_eq!(
        err,
        ConfigError::KeyReused {
            index: 1,
            change: "add_member",
            used_by: format!("bureau {NEWCOMER}"),
        }
    );
    // An administrator's key for a member.
    let err = refused_changes(&epochs, vec![rotate(2, &admin_key(1))]);
    assert_eq!(
        err,
        ConfigError::KeyReused {
            index: 0,
            change: "rotate_key",
            used_by: "an administrator".into(),
        }
    );
    // A member's key for an administrator.
    let err = refused_changes(
        &epochs,
        vec![Change::SetAdministrators {
            keys: vec![pk(&admin_key(10)), pk(&member_key(3))],
            threshold: 2,
        }],
    );
    assert_eq!(
        err,
        ConfigError::KeyReused {
            index: 0,
            change: "set_administrators",
            used_by: format!("bureau {}", CODES[3]),
        }
    );
    // A key rotated away is never used again, by anyone.
    advance(&mut epochs, vec![rotate(0, &member_key(10))]);
    let err = refused_changes(&epochs, vec![rotate(1, &member_key(0))]);
    assert_eq!(
        err,
        ConfigError::KeyReused {
            index: 0,
            change: "rotate_key",
            used_by: format!("bureau {}", CODES[0]),
        }
    );
    // Nor rotated back to.
    let err = refused_changes(&epochs, vec![rotate(0, &member_key(0))]);
    assert_eq!(
        err,
        ConfigError::KeyReused {
            index: 0,
            change: "rotate_key",
            used_by: format!("bureau {}", CODES[0]),
        }
    );
}

#[test]
fn a_bureau_is_changed_once_per_update() {
    let epochs = genesis();
    let err = refused_changes(
        &epochs,
        vec![
            rotate(1, &member_key(10)),
            Change::RevokeKey {
                code: code(CODES[1]),
                key: pk(&member_key(11)),
                from_seq: Seq(4),
            },
        ],
    );
    assert_eq!(
        err,
        ConfigError::ChangedTwice {
            index: 1,
            change: "revoke_key",
            code: code(CODES[1])
        }
    );
    assert_eq!(err.name(), "config_changed_twice");
    let err = refused_changes(&epochs, vec![rotate(1, &member_key(10)), retire(1, 3, 0)]);
    assert_eq!(
        err,
        ConfigError::ChangedTwice {
            index: 1,
            change: "retire_member",
            code: code(CODES[1])
        }
    );
}

#[test]
fn retiring_too_many_at_once_is_refused() {
    let epochs = genesis();
    let err = refused_changes(&epochs, vec![retire(2, 5, 0), retire(3, 5, 0)]);
    assert_eq!(
        err,
        ConfigError::QuorumImpossible {
            retiring: 2,
            members: 4,
            quorum: 3
        }
    );
    assert_eq!(err.name(), "config_quorum_impossible");
}

#[test]
fn retiring_to_a_successor_that_is_no_member_is_refused() {
    let epochs = genesis();
    let err = refused_changes(
        &epochs,
        vec![Change::RetireMember {
            code: code(CODES[3]),
            from_seq: Seq(2),
            successor: code(NEWCOMER),
        }],
    );
    assert_eq!(
        err,
        ConfigError::Invalid {
            index: 0,
            change: "retire_member",
            reason: format!(
                "the successor of {}, {NEWCOMER}, is not a member of the new epoch",
                CODES[3]
            ),
        }
    );
    assert_eq!(err.name(), "config_invalid");
    let err = refused_changes(&epochs, vec![retire(3, 2, 3)]);
    assert_eq!(
        err,
        ConfigError::Invalid {
            index: 0,
            change: "retire_member",
            reason: format!("bureau {} cannot succeed itself", CODES[3]),
        }
    );
}

#[test]
fn an_unsafe_quorum_is_refused() {
    let epochs = genesis();
    for quorum in [2, 5] {
        let err = refused_changes(&epochs, vec![Change::SetQuorum { quorum }]);
        assert_eq!(
            err,
            ConfigError::Membership(MembershipError::BadQuorum {
                quorum: quorum as usize,
                members: 4,
                min: 3
            })
        );
        assert_eq!(err.name(), "config_membership_invalid");
    }
}

#[test]
fn an_unsafe_administrator_set_is_refused() {
    let epochs = genesis();
    let fresh = |n: u8| -> Vec<[u8; 32]> { (10..10 + n).map(|i| pk(&admin_key(i))).collect() };
    let err = refused_changes(
        &epochs,
        vec![Change::SetAdministrators {
            keys: fresh(1),
            threshold: 1,
        }],
    );
    assert_eq!(
        err,
        ConfigError::Administrators(format!(
            "1 administrators; from 2 to {ADMINISTRATORS_MAX} (no single key may change the network)"
        ))
    );
    assert_eq!(err.name(), "config_administrators_invalid");
    let err = refused_changes(
        &epochs,
        vec![Change::SetAdministrators {
            keys: fresh(4),
            threshold: 2,
        }],
    );
    assert_eq!(
        err,
        ConfigError::Administrators(
            "threshold 2 of 4: it must be at least 2, more than half (3) and at most 4".into()
        )
    );
    let err = refused_changes(
        &epochs,
        vec![Change::SetAdministrators {
            keys: fresh(3),
            threshold: 4,
        }],
    );
    assert_eq!(
        err,
        ConfigError::Administrators(
            "threshold 4 of 3: it must be at least 2, more than half (2) and at most 3".into()
        )
    );
}

#[test]
fn invalid_deadlines_are_refused() {
    let epochs = genesis();
    for (deadlines, what, days) in [
        (
            Deadlines {
                answer_working_days: 0,
                registration_working_days: 1,
            },
            "answer_working_days",
            0,
        ),
        (
            Deadlines {
                answer_working_days: 2,
                registration_working_days: DEADLINE_WORKING_DAYS_MAX + 1,
            },
            "registration_working_days",
            DEADLINE_WORKING_DAYS_MAX + 1,
        ),
    ] {
        let err = refused_changes(&epochs, vec![Change::SetDeadlines(deadlines)]);
        assert_eq!(
            err,
            ConfigError::Invalid {
                index: 0,
                change: "set_deadlines",
                reason: format!("{what} is {days}; it must be 1 to {DEADLINE_WORKING_DAYS_MAX}"),
            }
        );
    }
}

#[test]
fn invalid_addresses_are_refused() {
    let epochs = genesis();
    let set = |addresses: Vec<String>| Change::SetAddresses {
        code: code(CODES[0]),
        addresses,
    };
    let err = refused_changes(&epochs, vec![set(vec!["ip4/127.0.0.1/tcp/1".into()])]);
    assert_eq!(
        err,
        ConfigError::Invalid {
            index: 0,
            change: "set_addresses",
            reason: format!(
                "address \"ip4/127.0.0.1/tcp/1\" is not a multiaddress of at most {MEMBER_ADDRESS_BYTES_MAX} bytes"
            ),
        }
    );
    let err = refused_changes(&epochs, vec![set(vec!["/ip4/127.0.0.1 /tcp/1".into()])]);
    assert_eq!(
        err,
        ConfigError::Invalid {
            index: 0,
            change: "set_addresses",
            reason: "address \"/ip4/127.0.0.1 /tcp/1\" has a space or control character".into(),
        }
    );
    let err = refused_changes(
        &epochs,
        vec![set((0..=MEMBER_ADDRESSES_MAX).flat_map(address).collect())],
    );
    assert_eq!(
        err,
        ConfigError::Invalid {
            index: 0,
            change: "set_addresses",
            reason: format!(
                "{} addresses; at most {MEMBER_ADDRESSES_MAX}",
                MEMBER_ADDRESSES_MAX + 1
            ),
        }
    );
    // A new member's addresses are checked the same way.
    let err = refused_changes(
        &epochs,
        vec![Change::AddMember {
            code: code(NEWCOMER),
            name: "新区分局".into(),
            key: pk(&member_key(10)),
            addresses: vec![String::new()],
        }],
    );
    assert_eq!(
        err,
        ConfigError::Invalid {
            index: 0,
            change: "add_member",
            reason: format!(
                "address \"\" is not a multiaddress of at most {MEMBER_ADDRESS_BYTES_MAX} bytes"
            ),
        }
    );
}

// ---------------------------------------------------------------------------------------------
// What each change makes.

#[test]
fn add_member() {
    let mut epochs = genesis();
    let cuts = advance(&mut epochs, vec![add(NEWCOMER, &member_key(10))]);
    assert_eq!(cuts, vec![]);
    let e = epochs.latest();
    assert_eq!(e.epoch, 1);
    assert_eq!(e.hash, epochs.updates()[0].hash());
    assert_eq!(e.membership.len(), 5);
    assert_eq!(
        e.membership.key(code(NEWCOMER)),
        Some(&member_key(10).verifying_key())
    );
    assert_eq!(
        e.membership.quorum(),
        quorum_for(5),
        "the smallest safe quorum"
    );
    assert_eq!(
        e.addresses.get(&code(NEWCOMER)),
        Some(&vec!["/ip4/127.0.0.1/tcp/4200".to_string()])
    );
    assert_eq!(e.time_ms, 1_767_225_600_000);
    // A new member holds no arbiter slot: the persons keep their arbiters.
    assert_eq!(e.arbiter_slots(), CODES.map(code).as_slice());
    assert!(!epochs.was_member_by(code(NEWCOMER), 0));
    assert!(epochs.was_member_by(code(NEWCOMER), 1));
    assert!(epochs.ever_member(code(NEWCOMER)));
    // Epoch 0 is unchanged.
    assert_eq!(epochs.get(0).unwrap().membership, membership());
}

#[test]
fn rotate_key() {
    let mut epochs = genesis();
    let cuts = advance(&mut epochs, vec![rotate(1, &member_key(10))]);
    assert_eq!(cuts, vec![]);
    assert_eq!(
        epochs.latest().membership.key(code(CODES[1])),
        Some(&member_key(10).verifying_key())
    );
    assert_eq!(
        epochs.get(0).unwrap().membership.key(code(CODES[1])),
        Some(&member_key(1).verifying_key())
    );
    assert_eq!(
        epochs.latest().membership.quorum(),
        3,
        "member count unchanged"
    );
    assert_eq!(epochs.cuts(code(CODES[1])), &[]);
    assert_eq!(epochs.cut_of(code(CODES[1]), Seq(1_000), 0), None);
}

#[test]
fn revoke_key_cuts_the_log() {
    let mut epochs = genesis();
    let cut = Cut {
        log: code(CODES[1]),
        from_seq: Seq(5),
        epoch: 1,
        kind: CutKind::Revoked,
    };
    let cuts = advance(
        &mut epochs,
        vec![Change::RevokeKey {
            code: code(CODES[1]),
            key: pk(&member_key(10)),
            from_seq: Seq(5),
        }],
    );
    assert_eq!(cuts, vec![cut]);
    assert_eq!(cut.kind.name(), "revoked");
    assert_eq!(
        epochs.latest().membership.key(code(CODES[1])),
        Some(&member_key(10).verifying_key())
    );
    assert_eq!(epochs.cuts(code(CODES[1])), &[cut]);
    assert_eq!(epochs.all_cuts().copied().collect::<Vec<_>>(), vec![cut]);
    // Entries naming epoch 0 at seq 5 or after are cut; below it, or naming epoch 1, they are not.
    assert_eq!(epochs.cut_of(code(CODES[1]), Seq(5), 0), Some(&cut));
    assert_eq!(epochs.cut_of(code(CODES[1]), Seq(9), 0), Some(&cut));
    assert_eq!(epochs.cut_of(code(CODES[1]), Seq(4), 0), None);
    assert_eq!(epochs.cut_of(code(CODES[1]), Seq(5), 1), None);
    assert_eq!(epochs.cut_of(code(CODES[0]), Seq(5), 0), None);
    // A later revocation of the same log: the earliest cut that applies is named.
    advance(
        &mut epochs,
        vec![Change::RevokeKey {
            code: code(CODES[1]),
            key: pk(&member_key(11)),
            from_seq: Seq(8),
        }],
    );
    let second = Cut {
        log: code(CODES[1]),
        from_seq: Seq(8),
        epoch: 2,
        kind: CutKind::Revoked,
    };
    assert_eq!(epochs.cuts(code(CODES[1])), &[cut, second]);
    assert_eq!(epochs.cut_of(code(CODES[1]), Seq(9), 0), Some(&cut));
    assert_eq!(epochs.cut_of(code(CODES[1]), Seq(9), 1), Some(&second));
    assert_eq!(epochs.cut_of(code(CODES[1]), Seq(7), 1), None);
}

#[test]
fn retire_member_hands_its_slots_to_the_successor() {
    let mut epochs = genesis();
    let (retired, successor) = (2, 0);
    let theirs = person_of(&epochs, retired);
    let others = person_of(&epochs, 1);
    let cuts = advance(&mut epochs, vec![retire(retired, 7, successor)]);
    let cut = Cut {
        log: code(CODES[retired]),
        from_seq: Seq(7),
        epoch: 1,
        kind: CutKind::Retired,
    };
    assert_eq!(cuts, vec![cut]);
    assert_eq!(cut.kind.name(), "retired");
    let e = epochs.latest();
    assert!(!e.membership.contains(code(CODES[retired])));
    assert_eq!(e.membership.len(), 3);
    assert_eq!(e.membership.quorum(), quorum_for(3));
    assert_eq!(e.addresses.get(&code(CODES[retired])), None);
    let mut slots = CODES.map(code);
    slots[retired] = code(CODES[successor]);
    assert_eq!(e.arbiter_slots(), slots.as_slice());
    assert_eq!(e.arbiter(&theirs), code(CODES[successor]));
    assert_eq!(e.arbiter(&others), code(CODES[1]));
    assert_eq!(
        epochs.get(0).unwrap().arbiter(&theirs),
        code(CODES[retired])
    );
    // The successor's claims on the retired member's persons follow its log up to the cut.
    let handover = Handover {
        from: code(CODES[retired]),
        until_seq: Seq(7),
        epoch: 1,
    };
    assert_eq!(epochs.handovers(&theirs, 1), &[handover]);
    assert_eq!(epochs.handovers(&theirs, 0), &[]);
    assert_eq!(epochs.handovers(&theirs, 9), &[], "an unknown epoch");
    assert_eq!(epochs.handovers(&others, 1), &[]);
    // Its entries naming epoch 0 from the cut on are refused.
    assert_eq!(epochs.cut_of(code(CODES[retired]), Seq(7), 0), Some(&cut));
    assert_eq!(epochs.cut_of(code(CODES[retired]), Seq(6), 0), None);
    assert!(epochs.ever_member(code(CODES[retired])));
    assert!(epochs.was_member_by(code(CODES[retired]), 1));

    // The successor retires in turn: the slot has had two holders, oldest first.
    advance(&mut epochs, vec![add(NEWCOMER, &member_key(10))]);
    advance(
        &mut epochs,
        vec![Change::RetireMember {
            code: code(CODES[successor]),
            from_seq: Seq(3),
            successor: code(NEWCOMER),
        }],
    );
    let e = epochs.latest();
    assert_eq!(e.arbiter(&theirs), code(NEWCOMER));
    assert_eq!(
        e.arbiter(&person_of(&epochs, successor)),
        code(NEWCOMER),
        "the successor's own slot too"
    );
    let second = Handover {
        from: code(CODES[successor]),
        until_seq: Seq(3),
        epoch: 3,
    };
    assert_eq!(epochs.handovers(&theirs, 3), &[handover, second]);
    assert_eq!(epochs.handovers(&theirs, 2), &[handover]);
}

#[test]
fn set_addresses() {
    let mut epochs = genesis();
    let addresses = vec![
        "/dns4/xh.gaj.sh.example/tcp/4101".to_string(),
        "/ip4/10.0.0.1/tcp/4101".to_string(),
    ];
    let cuts = advance(
        &mut epochs,
        vec![Change::SetAddresses {
            code: code(CODES[0]),
            addresses: addresses.clone(),
        }],
    );
    assert_eq!(cuts, vec![]);
    let e = epochs.latest();
    assert_eq!(e.addresses.get(&code(CODES[0])), Some(&addresses));
    assert_eq!(e.addresses.get(&code(CODES[1])), Some(&address(1)));
    assert_eq!(e.membership, membership());
}

#[test]
fn set_administrators_changes_who_signs_the_next_update() {
    let mut epochs = genesis();
    let new_admins: Vec<SigningKey> = (10..13).map(admin_key).collect();
    advance(
        &mut epochs,
        vec![Change::SetAdministrators {
            keys: new_admins.iter().map(pk).collect(),
            threshold: 3,
        }],
    );
    let e = epochs.latest();
    let mut expected: Vec<VerifyingKey> = new_admins.iter().map(|k| k.verifying_key()).collect();
    expected.sort_by_key(|k| k.to_bytes());
    assert_eq!(e.administrators, expected);
    assert_eq!(e.threshold, 3);
    // The old administrators no longer sign.
    let err = refused(&epochs, good(&epochs, vec![rotate(0, &member_key(10))]));
    assert_eq!(
        err,
        ConfigError::UnknownAdministrator {
            key_hex: hex::encode(good(&epochs, vec![]).signatures[0].admin),
            epoch: 1
        }
    );
    // Two of the new three are not enough any more; all three are.
    let mut update = SignedUpdate::unsigned(next(&epochs, vec![rotate(0, &member_key(10))]));
    update.sign(&new_admins[0]);
    update.sign(&new_admins[1]);
    assert_eq!(
        refused(&epochs, update.clone()),
        ConfigError::TooFewSignatures { have: 2, need: 3 }
    );
    update.sign(&new_admins[2]);
    assert_eq!(epochs.push(update), Ok(vec![]));
    assert_eq!(epochs.latest().epoch, 2);
}

#[test]
fn set_quorum() {
    let mut epochs = genesis();
    advance(&mut epochs, vec![Change::SetQuorum { quorum: 4 }]);
    assert_eq!(epochs.latest().membership.quorum(), 4);
    // Kept while the member count stays.
    advance(&mut epochs, vec![rotate(0, &member_key(10))]);
    assert_eq!(epochs.latest().membership.quorum(), 4);
    // Reset to the smallest safe one when it changes, unless set in the same update.
    advance(&mut epochs, vec![add(NEWCOMER, &member_key(11))]);
    assert_eq!(epochs.latest().membership.quorum(), quorum_for(5));
    advance(
        &mut epochs,
        vec![
            add(350103, &member_key(12)),
            Change::SetQuorum { quorum: 6 },
        ],
    );
    assert_eq!(epochs.latest().membership.quorum(), 6);
}

#[test]
fn set_deadlines() {
    let mut epochs = genesis();
    let deadlines = Deadlines {
        answer_working_days: 3,
        registration_working_days: 5,
    };
    advance(&mut epochs, vec![Change::SetDeadlines(deadlines)]);
    assert_eq!(epochs.latest().deadlines, deadlines);
    assert_eq!(epochs.get(0).unwrap().deadlines, Deadlines::GENESIS);
}

#[test]
fn an_update_held_already_is_ok_and_changes_nothing() {
    let mut epochs = genesis();
    let update = good(
        &epochs,
        vec![Change::RevokeKey {
            code: code(CODES[1]),
            key: pk(&member_key(10)),
            from_seq: Seq(2),
        }],
    );
    assert_eq!(epochs.push(update.clone()).unwrap().len(), 1);
    let before = epochs.clone();
    assert_eq!(
        epochs.push(update.clone()),
        Ok(vec![]),
        "no cut the second time"
    );
    assert_eq!(epochs, before);
    // Even with other (valid) signatures on it: the update is what counts.
    let resigned = signed(update.update.clone(), &[1, 2]);
    assert_eq!(epochs.push(resigned), Ok(vec![]));
    assert_eq!(epochs, before);
    assert_eq!(epochs.updates(), &[update]);
}

#[test]
fn check_judges_without_changing_anything() {
    let epochs = genesis();
    let update = good(&epochs, vec![rotate(0, &member_key(10))]);
    let before = epochs.clone();
    let e = epochs.check(&update).unwrap();
    assert_eq!(e.epoch, 1);
    assert_eq!(epochs, before);
    let mut pushed = epochs.clone();
    pushed.push(update).unwrap();
    assert_eq!(pushed.latest(), &e);
}

#[test]
fn signed_updates_round_trip_and_refuse_bad_bytes() {
    let epochs = genesis();
    let update = good(&epochs, vec![add(NEWCOMER, &member_key(10))]);
    let bytes = update.encode();
    assert_eq!(&bytes[..4], b"HKS\x01");
    assert_eq!(&update.update.encode()[..4], b"HKU\x01");
    assert_eq!(SignedUpdate::decode(&bytes), Ok(update.clone()));
    let mut long = bytes.clone();
    long.push(0);
    assert_eq!(
        SignedUpdate::decode(&long),
        Err(DecodeError::TrailingBytes {
            what: "signed configuration update",
            trailing: 1
        })
    );
    let mut v2 = bytes.clone();
    v2[3] = 2;
    assert_eq!(
        SignedUpdate::decode(&v2),
        Err(DecodeError::UnknownVersion {
            what: "signed configuration update",
            found: 2,
            supported: 1
        })
    );
    let oversized = vec![0u8; CONFIG_UPDATE_BYTES_MAX + 1];
    assert_eq!(
        SignedUpdate::decode(&oversized),
        Err(DecodeError::Oversized {
            len: CONFIG_UPDATE_BYTES_MAX + 1,
            max: CONFIG_UPDATE_BYTES_MAX
        })
    );
    // What an administrator signs.
    let mut message = DOMAIN_CONFIG_SIGNATURE.to_vec();
    message.extend_from_slice(&Sha256::digest(update.update.encode()));
    assert_eq!(update.update.signing_message(), message);
    assert_eq!(update.hash(), update.update.hash());
}

/// An administrator set may keep current administrators (only new keys must be new to the
/// network), and a refusal of a successor names the change's own index.
#[test]
fn administrators_may_stay_and_errors_name_the_change() {
    let mut epochs = genesis();
    let kept = pk(&admin_key(0));
    advance(
        &mut epochs,
        vec![Change::SetAdministrators {
            keys: vec![kept, pk(&admin_key(1)), pk(&admin_key(20))],
            threshold: 2,
        }],
    );
    assert_eq!(epochs.latest().administrators.len(), 3);
    let err = refused_changes(
        &epochs,
        vec![
            Change::SetQuorum { quorum: 4 },
            Change::RetireMember {
                code: BureauCode::new(CODES[3]).unwrap(),
                from_seq: Seq(0),
                successor: BureauCode::new(999_999).unwrap(),
            },
        ],
    );
    assert!(
        matches!(
            err,
            ConfigError::Invalid {
                index: 1,
                change: "retire_member",
                ..
            }
        ),
        "{err:?}"
    );
}
