//! Witness committees (protocol/src/committee.rs) through the configuration log: drawn
//! committees certify their log alone, a seated committee takes over from an anchor certified by
//! the one before it, and certificates of the earlier committee count only up to that anchor —
//! for certificates (what every node and auditor checks) and for the witness's judgement.

use std::collections::BTreeMap;

use ed25519_dalek::SigningKey;
use hukou_protocol::calendar::Calendar;
use hukou_protocol::checkpoint::{Certificate, CertificateError, Checkpoint, Cosignature};
use hukou_protocol::committee::Committees;
use hukou_protocol::config::{
    Change, ConfigError, ConfigUpdate, Epochs, GenesisConfig, SignedUpdate,
};
use hukou_protocol::membership::{Member, Membership, quorum_for};
use hukou_protocol::merkle::{Tree, leaf_hash};
use hukou_protocol::types::Seq;
use hukou_protocol::witness::{WitnessError, judge};
use hukou_protocol::{BureauCode, NetworkId};

const NET: &str = "committee-net";
/// Twelve bureaus over six provinces (two each).
const CODES: [u32; 12] = [
    110101, 110102, 310104, 310115, 320102, 320506, 330106, 330502, 340100, 340104, 350102, 350203,
];

fn code(c: u32) -> BureauCode {
    BureauCode::new(c).unwrap()
}

fn member_key(i: usize) -> SigningKey {
    SigningKey::from_bytes(&[i as u8 + 1; 32])
}

fn admin_key(i: u8) -> SigningKey {
    SigningKey::from_bytes(&[0xa0 + i; 32])
}

fn index(c: BureauCode) -> usize {
    CODES.iter().position(|&x| x == c.get()).unwrap()
}

fn genesis() -> Epochs {
    let members = CODES.iter().enumerate().map(|(i, &c)| Member {
        code: code(c),
        name: format!("bureau {c}"),
        key: member_key(i).verifying_key(),
    });
    Epochs::genesis(GenesisConfig {
        membership: Membership::new(NET, members, quorum_for(CODES.len())).unwrap(),
        addresses: BTreeMap::new(),
        administrators: (0..3).map(|i| admin_key(i).verifying_key()).collect(),
        threshold: 2,
        hash: [0x77; 32],
        calendar: Calendar::prc().clone(),
    })
}

fn update(epochs: &Epochs, changes: Vec<Change>) -> SignedUpdate {
    let latest = epochs.latest();
    let mut s = SignedUpdate::unsigned(ConfigUpdate {
        network: epochs.network(),
        epoch: latest.epoch + 1,
        prev: latest.hash,
        time_ms: 1_767_225_600_000,
        changes,
    });
    s.sign(&admin_key(0));
    s.sign(&admin_key(1));
    s
}

fn push(epochs: &mut Epochs, changes: Vec<Change>) {
    let u = update(epochs, changes);
    epochs.push(u).expect("a valid update");
}

fn refused(epochs: &Epochs, changes: Vec<Change>) -> ConfigError {
    let u = update(epochs, changes);
    let err = epochs.check(&u).expect_err("refused");
    let mut copy = epochs.clone();
    assert_eq!(copy.push(u), Err(err.clone()));
    assert_eq!(&copy, epochs, "a refused update changes nothing");
    err
}

/// A log of `n` leaves; `salt` makes another history.
fn tree(n: u64, salt: u8) -> Tree {
    let mut t = Tree::new();
    for i in 0..n {
        t.push(leaf_hash(&[salt, i as u8, (i >> 8) as u8]));
    }
    t
}

fn checkpoint(log: BureauCode, epoch: u32, t: &Tree, size: u64) -> Checkpoint {
    Checkpoint {
        network: NetworkId::from_name(NET),
        epoch,
        log,
        size,
        root: t.root_at(size).unwrap(),
        time_ms: 1_767_225_600_000 + size,
    }
}

fn certificate(c: Checkpoint, witnesses: &[BureauCode]) -> Certificate {
    Certificate::new(
        c,
        witnesses
            .iter()
            .map(|&w| Cosignature::sign(&c, w, &member_key(index(w))))
            .collect(),
    )
}

const LOG: u32 = 310104;

#[test]
fn drawn_committees_certify_their_log_alone() {
    let mut epochs = genesis();
    let log = code(LOG);
    let t = tree(10, 0);
    // Everyone witnesses at first: 9 of 12 certify.
    let everyone: Vec<BureauCode> = CODES.iter().take(9).map(|&c| code(c)).collect();
    assert_eq!(
        certificate(checkpoint(log, 0, &t, 0), &everyone).verify(&epochs),
        Ok(())
    );

    push(&mut epochs, vec![Change::SetCommittees { size: 4 }]);
    let e1 = epochs.latest();
    let Committees::Drawn { size, by_log } = &*e1.committees else {
        panic!("committees are drawn from epoch 1");
    };
    assert_eq!(*size, 4);
    assert_eq!(by_log.len(), 12);
    for (l, c) in by_log {
        assert_eq!(c.members.len(), 4);
        assert!(!c.contains(*l), "a log does not witness itself");
        assert_eq!(c.quorum, 3);
        assert_eq!(c.seated, 1);
        // At most one of a province in a committee of four.
        let mut provinces: Vec<u32> = c.members.iter().map(|m| m.province()).collect();
        provinces.dedup();
        assert_eq!(provinces.len(), 4, "{l}: {:?}", c.members);
    }
    let committee = e1.witnesses(log);
    let outsider = CODES
        .iter()
        .map(|&c| code(c))
        .find(|c| *c != log && !committee.contains(c))
        .unwrap();

    // A quorum of the committee certifies; nobody else's cosignature counts.
    let c1 = checkpoint(log, 1, &t, 10);
    assert_eq!(certificate(c1, &committee[..3]).verify(&epochs), Ok(()));
    assert_eq!(
        certificate(c1, &committee[..2]).verify(&epochs),
        Err(CertificateError::BelowQuorum { have: 2, need: 3 })
    );
    let mut mixed = committee[..2].to_vec();
    mixed.push(outsider);
    let err = certificate(c1, &mixed).verify(&epochs).unwrap_err();
    assert_eq!(err, CertificateError::NotInCommittee { witness: outsider });
    assert_eq!(err.name(), "certificate_witness_not_in_committee");
    // The log's own author is no witness of its log.
    let mut own = committee[..2].to_vec();
    own.push(log);
    assert_eq!(
        certificate(c1, &own).verify(&epochs),
        Err(CertificateError::NotInCommittee { witness: log })
    );
}

#[test]
fn a_new_committee_takes_over_from_its_anchor_and_the_old_one_counts_only_up_to_it() {
    let log = code(LOG);
    let t = tree(20, 0);
    let everyone: Vec<BureauCode> = CODES.iter().take(9).map(|&c| code(c)).collect();
    let old10 = certificate(checkpoint(log, 0, &t, 10), &everyone);
    let old14 = certificate(checkpoint(log, 0, &t, 14), &everyone);

    // Without an anchor the new committee starts from 0, and no earlier certificate counts.
    let mut bare = genesis();
    push(&mut bare, vec![Change::SetCommittees { size: 4 }]);
    let err = old10.verify(&bare).unwrap_err();
    assert_eq!(
        err,
        CertificateError::BeyondHandover {
            size: 10,
            anchor: 0,
            epoch: 1
        }
    );
    assert_eq!(err.name(), "certificate_beyond_handover");

    // Anchored at the certified size 10: certificates up to it still count, beyond it not.
    let mut epochs = genesis();
    push(
        &mut epochs,
        vec![
            Change::SetCommittees { size: 4 },
            Change::Anchor {
                certificate: old10.encode(),
            },
        ],
    );
    let anchor = epochs.latest().anchor(log);
    assert_eq!((anchor.size, anchor.root), (10, t.root_at(10).unwrap()));
    assert_eq!(old10.verify(&epochs), Ok(()));
    assert_eq!(
        old14.verify(&epochs),
        Err(CertificateError::BeyondHandover {
            size: 14,
            anchor: 10,
            epoch: 1
        })
    );
    assert_eq!(epochs.handover_cap(log, 0), Some((10, 1)));
    assert_eq!(epochs.handover_cap(log, 1), None);

    // The witnesses' side of the same rules.
    let e1 = epochs.latest().clone();
    let committee = e1.witnesses(log);
    let member = committee[0];
    let outsider = CODES
        .iter()
        .map(|&c| code(c))
        .find(|c| *c != log && !committee.contains(c))
        .unwrap();
    let author = member_key(index(log));
    let judge_as = |w: BureauCode, c: Checkpoint, ours: &Tree| {
        judge(
            &epochs,
            w,
            &c.sign(&author),
            ours.len(),
            |s| ours.root_at(s).ok(),
            None,
        )
    };
    assert_eq!(judge_as(member, checkpoint(log, 1, &t, 16), &t), Ok(()));
    let err = judge_as(outsider, checkpoint(log, 1, &t, 16), &t).unwrap_err();
    assert_eq!(
        err,
        WitnessError::NotInCommittee {
            witness: outsider,
            log,
            epoch: 1
        }
    );
    assert_eq!(err.name(), "witness_not_in_committee");
    // An old-epoch checkpoint beyond the anchor: the old committee stops once it knows epoch 1.
    let err = judge_as(outsider, checkpoint(log, 0, &t, 16), &t).unwrap_err();
    assert_eq!(
        err,
        WitnessError::BeyondHandover {
            size: 16,
            anchor: 10,
            epoch: 1
        }
    );
    assert_eq!(err.name(), "witness_beyond_handover");
    // Up to the anchor the old epoch's checkpoint is still judged as before.
    assert_eq!(judge_as(outsider, checkpoint(log, 0, &t, 10), &t), Ok(()));
    // The new committee cosigns only what extends the anchor.
    let err = judge_as(member, checkpoint(log, 1, &t, 8), &t).unwrap_err();
    assert_eq!(
        err,
        WitnessError::BelowAnchor {
            size: 8,
            anchor: 10
        }
    );
    assert_eq!(err.name(), "witness_below_anchor");
    let fork = tree(20, 1);
    let forked = checkpoint(log, 1, &fork, 16);
    let err = judge(
        &epochs,
        member,
        &forked.sign(&author),
        fork.len(),
        |s| fork.root_at(s).ok(),
        None,
    )
    .unwrap_err();
    assert_eq!(
        err,
        WitnessError::AnchorNotInTree {
            size: 10,
            anchor: t.root_at(10).unwrap(),
            ours: fork.root_at(10).ok(),
        }
    );
    assert_eq!(err.name(), "witness_anchor_not_in_tree");

    // A certificate of the new committee, of the anchored history, counts.
    let new16 = certificate(checkpoint(log, 1, &t, 16), &committee[..3]);
    assert_eq!(new16.verify(&epochs), Ok(()));
}

#[test]
fn bad_anchors_and_sizes_are_refused_by_name() {
    let log = code(LOG);
    let t = tree(10, 0);
    let everyone: Vec<BureauCode> = CODES.iter().take(9).map(|&c| code(c)).collect();
    let epochs = genesis();

    for size in [0, 3, 65] {
        let err = refused(&epochs, vec![Change::SetCommittees { size }]);
        assert_eq!(err.name(), "config_invalid", "size {size}");
        assert!(err.to_string().contains("it must be 4 to 64"), "{err}");
    }
    // An anchor while everyone keeps witnessing.
    let cert = certificate(checkpoint(log, 0, &t, 10), &everyone);
    let err = refused(
        &epochs,
        vec![Change::Anchor {
            certificate: cert.encode(),
        }],
    );
    assert_eq!(err.name(), "config_invalid");
    assert!(err.to_string().contains("gets no new committee"), "{err}");
    // An anchor that does not verify (below quorum).
    let weak = certificate(checkpoint(log, 0, &t, 10), &everyone[..3]);
    let err = refused(
        &epochs,
        vec![
            Change::SetCommittees { size: 4 },
            Change::Anchor {
                certificate: weak.encode(),
            },
        ],
    );
    assert_eq!(err.name(), "config_invalid");
    assert!(
        err.to_string().contains("certificate_below_quorum"),
        "{err}"
    );
    // Bytes that are no certificate.
    let err = refused(
        &epochs,
        vec![
            Change::SetCommittees { size: 4 },
            Change::Anchor {
                certificate: vec![1, 2, 3],
            },
        ],
    );
    assert!(err.to_string().contains("is not a certificate"), "{err}");
    // Two anchors for one log.
    let err = refused(
        &epochs,
        vec![
            Change::SetCommittees { size: 4 },
            Change::Anchor {
                certificate: cert.encode(),
            },
            Change::Anchor {
                certificate: cert.encode(),
            },
        ],
    );
    assert!(err.to_string().contains("anchored twice"), "{err}");
}

#[test]
fn membership_changes_seat_only_the_committees_they_touch() {
    let mut epochs = genesis();
    push(&mut epochs, vec![Change::SetCommittees { size: 4 }]);
    let before = epochs.latest().clone();
    // A witness retires: exactly the committees it sat on are seated anew, without it.
    let leaving = code(CODES[5]);
    let sat_on: Vec<BureauCode> = CODES
        .iter()
        .map(|&c| code(c))
        .filter(|&l| before.witnesses(l).contains(&leaving))
        .collect();
    assert!(!sat_on.is_empty());
    push(
        &mut epochs,
        vec![Change::RetireMember {
            code: leaving,
            from_seq: Seq(0),
            successor: code(CODES[4]),
        }],
    );
    let after = epochs.latest();
    let Committees::Drawn { by_log, .. } = &*after.committees else {
        panic!("still drawn");
    };
    for (l, c) in by_log {
        assert!(!c.contains(leaving));
        let expected = if sat_on.contains(l) { 2 } else { 1 };
        assert_eq!(c.seated, expected, "log {l}");
        if expected == 1 {
            assert_eq!(c.members, before.witnesses(*l));
        }
    }
    // Its own log keeps no committee (it is no member), and a certificate of an earlier
    // committee of a re-seated log counts only up to the (absent, so 0) anchor.
    assert!(after.committees.drawn(leaving).is_none());
    assert_eq!(epochs.handover_cap(sat_on[0], 1), Some((0, 2)));
}
