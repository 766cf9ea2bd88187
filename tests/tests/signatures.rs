//! One signature verdict on every path (issue 12): the same crafted signatures ("Taming the many
//! EdDSAs", made by a member with its own key: R plus each small-order point, non-canonical R
//! encodings, s >= l, all zero, ...) are fed to every place a signature is judged, and each gives
//! the crafted case's exact ZIP-215 verdict:
//!
//! - an entry at the first, middle and last place of logs of 1, 2, 63, 64, 65, 1024 and 1025
//!   entries (either side of every chunk boundary of batch verification): `SignedEntry::verify`,
//!   `batch::verify_entries`, the node's ingest verification (`hukou_node::verify`), the
//!   rulebook (`Ledger::apply` with `SignatureCheck::Verify`) and the auditor (`audit::audit`
//!   fed the node's verdicts, as `hukou audit` does, and fed `false` so it re-checks);
//! - a checkpoint: `SignedCheckpoint::verify` and the witness's `witness::judge`;
//! - a cosignature at the first, middle and last place of certificates of 1, 2, 63, 64 and 65
//!   cosignatures: `Cosignature::verify`, `CertificateBuilder::add`, `Certificate::verify`;
//! - a registration certificate (户籍证明): its entry and its certificate's cosignatures;
//! - a fraud proof.

use ed25519_dalek::SigningKey;
use hukou_protocol::attestation::{Attestation, Fault};
use hukou_protocol::audit::{self, LogItem};
use hukou_protocol::calendar::Calendar;
use hukou_protocol::checkpoint::{
    AddOutcome, Certificate, CertificateBuilder, CertificateError, Checkpoint, CheckpointError,
    Cosignature, SignedCheckpoint,
};
use hukou_protocol::entry::{Body, Entry, Placement};
use hukou_protocol::fraud::FraudProofError;
use hukou_protocol::membership::MembershipError;
use hukou_protocol::merkle::Tree;
use hukou_protocol::witness::{self, WitnessError};
use hukou_protocol::{
    BureauCode, Category, Digest, EntryHash, EntryRef, FraudProof, HouseholdId, Ledger, Member,
    Membership, PersonTag, Relation, Seq, Signature, SignatureCheck, SignedEntry, Violation,
    quorum_for,
};

#[path = "../../protocol/tests/support/crafted.rs"]
mod crafted;

/// Log sizes either side of every chunk boundary of `batch::verify_entries`.
const LOG_SIZES: [usize; 7] = [1, 2, 63, 64, 65, 1024, 1025];

/// Certificate sizes (cosignatures; one member each) around the 64-signature chunk.
const CERTIFICATE_SIZES: [usize; 5] = [1, 2, 63, 64, 65];

/// 2026-01-05T01:00:00Z, a Monday.
const START_MS: u64 = 1_767_574_800_000;

const NETWORK: &str = "hukou-signatures";

fn signing_key(i: usize) -> SigningKey {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
    SigningKey::from_bytes(&seed)
}

fn code(i: usize) -> BureauCode {
    BureauCode::new(310_000 + i as u32).unwrap()
}

/// Members 0..n, keys `signing_key(i)`, the smallest safe quorum.
fn membership(n: usize) -> Membership {
    let members = (0..n).map(|i| Member {
        code: code(i),
        name: format!("bureau {i}"),
        key: signing_key(i).verifying_key(),
    });
    Membership::new(NETWORK, members, quorum_for(n)).unwrap()
}

fn person(i: usize) -> PersonTag {
    let mut tag = [0x5au8; 32];
    tag[..8].copy_from_slice(&(i as u64).to_be_bytes());
    PersonTag(tag)
}

/// A log of `n` permits by bureau 0 for people of bureau 1, one a minute: entries that apply
/// with nothing before them.
fn permit_log(m: &Membership, n: usize) -> Vec<SignedEntry> {
    let mut prev = EntryHash::ZERO;
    (0..n)
        .map(|i| {
            let time_ms = START_MS + 60_000 * i as u64;
            let entry = Entry {
                network: m.network(),
                epoch: 0,
                author: code(0),
                seq: Seq(i as u64),
                prev,
                time_ms,
                body: Body::Permit {
                    person: person(i),
                    origin: code(1),
                    category: Category::Spouse,
                    valid_until_ms: time_ms + 30 * 86_400_000,
                    materials: Digest([7; 32]),
                    corrects: None,
                },
            }
            .sign(&signing_key(0));
            prev = entry.hash();
            entry
        })
        .collect()
}

/// The first, middle and last place of `n`, without repeats.
fn places(n: usize) -> Vec<usize> {
    let mut places = vec![0, n / 2, n - 1];
    places.dedup();
    places
}

fn with_signature(entry: &SignedEntry, signature: [u8; 64]) -> SignedEntry {
    SignedEntry::from_parts(entry.entry().clone(), Signature(signature))
}

/// What the auditor says of the log: (findings by name, entries applied).
fn audit_log(
    m: &Membership,
    entries: &[SignedEntry],
    verdicts: &[bool],
) -> (Vec<(String, u64)>, u64, Vec<EntryRef>) {
    let items: Vec<LogItem> = entries
        .iter()
        .zip(verdicts)
        .map(|(entry, ok)| LogItem::Entry {
            entry: entry.clone(),
            signature_valid: *ok,
        })
        .collect();
    let as_of_ms = entries.last().unwrap().entry().time_ms;
    let report = audit::audit(
        &hukou_protocol::config::Epochs::of_membership(m.clone()),
        [(code(0), items.into_iter())],
        &[],
        &[],
        Calendar::prc(),
        as_of_ms,
    );
    let bad_signature_entries = report
        .findings
        .iter()
        .filter(|f| f.name == "bad_signature")
        .flat_map(|f| f.entries.first().copied())
        .collect();
    (
        report.findings_by_name.into_iter().collect(),
        report.totals.entries_applied,
        bad_signature_entries,
    )
}

/// Entries: every path gives each crafted signature its verdict, wherever it sits in a log of
/// any size.
#[test]
fn every_entry_path_gives_each_crafted_signature_the_same_verdict() {
    let m = membership(4);
    let key = signing_key(0).verifying_key();
    let full = permit_log(&m, *LOG_SIZES.iter().max().unwrap());
    let mut checked = 0;
    for n in LOG_SIZES {
        let log = &full[..n];
        for at in places(n) {
            let cases = crafted::signatures(&signing_key(0), &log[at].signing_message());
            for case in &cases {
                let what = format!("{} in a log of {n} at {at}", case.name);
                let mut entries = log.to_vec();
                entries[at] = with_signature(&log[at], case.signature);
                let crafted = &entries[at];
                let mut expected = vec![true; n];
                expected[at] = case.accepted;

                // The entry alone.
                assert_eq!(crafted.verify(&key), case.accepted, "single: {what}");
                // Batch verification, in the protocol and across the node's cores.
                assert_eq!(
                    hukou_protocol::batch::verify_entries(
                        &hukou_protocol::config::Epochs::of_membership(m.clone()),
                        &entries
                    ),
                    expected,
                    "batch: {what}"
                );
                let node_verdicts = hukou_node::verify::verify_entries(
                    &hukou_protocol::config::Epochs::of_membership(m.clone()),
                    &entries,
                );
                assert_eq!(node_verdicts, expected, "node ingest: {what}");

                // The rulebook, verifying the crafted entry itself.
                let mut ledger = Ledger::new(m.clone());
                for entry in &entries[..at] {
                    ledger
                        .apply(entry, SignatureCheck::AlreadyVerified)
                        .unwrap();
                }
                let verdict = ledger.apply(crafted, SignatureCheck::Verify).map(|_| ());
                if case.accepted {
                    assert_eq!(verdict, Ok(()), "rulebook: {what}");
                } else {
                    assert_eq!(
                        verdict,
                        Err(Violation::BadSignature {
                            entry: crafted.reference()
                        }),
                        "rulebook: {what}"
                    );
                    assert_eq!(ledger.entries_applied(), at as u64, "rulebook: {what}");
                }

                // The auditor, with the node's verdicts (as `hukou audit` computes them), then
                // with a negative verdict for the crafted entry so the rulebook re-checks it.
                let mut negative = node_verdicts.clone();
                negative[at] = false;
                for verdicts in [&node_verdicts, &negative] {
                    let (findings, applied, bad) = audit_log(&m, &entries, verdicts);
                    if case.accepted {
                        assert_eq!(findings, vec![], "auditor: {what}");
                        assert_eq!(applied, n as u64, "auditor: {what}");
                    } else {
                        let mut want = vec![("bad_signature".to_string(), 1)];
                        if at + 1 < n {
                            want.push(("missing_previous".to_string(), 1));
                        }
                        want.sort();
                        assert_eq!(findings, want, "auditor: {what}");
                        assert_eq!(bad, vec![crafted.reference()], "auditor: {what}");
                        assert_eq!(applied, at as u64, "auditor: {what}");
                    }
                }
                checked += 1;
            }
        }
    }
    // 7 sizes, 3 places (2 in a log of 2, 1 in a log of 1), 53 crafted signatures each.
    assert_eq!(checked, (1 + 2 + 3 * 5) * 53);
}

/// Checkpoints: the log author's signature over a checkpoint of its log, as a witness judges it.
#[test]
fn the_witness_gives_each_crafted_checkpoint_signature_the_same_verdict() {
    let m = membership(4);
    let log = permit_log(&m, 5);
    let mut tree = Tree::new();
    for entry in &log {
        tree.push(entry.hash().0);
    }
    let checkpoint = Checkpoint {
        network: m.network(),
        epoch: 0,
        log: code(0),
        size: tree.len(),
        root: tree.root(),
        time_ms: START_MS + 3_600_000,
    };
    let cases = crafted::signatures(&signing_key(0), &checkpoint.signing_message());
    for case in &cases {
        let signed = SignedCheckpoint {
            checkpoint,
            signature: Signature(case.signature),
        };
        let judged = witness::judge(
            &hukou_protocol::config::Epochs::of_membership(m.clone()),
            checkpoint.log,
            &signed,
            tree.len(),
            |size| tree.root_at(size).ok(),
            None,
        );
        if case.accepted {
            assert_eq!(
                signed.verify(&hukou_protocol::config::Epochs::of_membership(m.clone())),
                Ok(()),
                "{}",
                case.name
            );
            assert_eq!(judged, Ok(()), "witness: {}", case.name);
        } else {
            let bad = CheckpointError::BadSignature { log: code(0) };
            assert_eq!(
                signed.verify(&hukou_protocol::config::Epochs::of_membership(m.clone())),
                Err(bad.clone()),
                "{}",
                case.name
            );
            assert_eq!(
                judged,
                Err(WitnessError::Checkpoint(bad)),
                "witness: {}",
                case.name
            );
        }
    }
}

/// A certificate of `checkpoint` with a cosignature by every member of `m`, and, if `crafted`
/// names one, that member's cosignature replaced by the crafted signature.
fn certificate(
    m: &Membership,
    checkpoint: &Checkpoint,
    crafted: Option<(usize, [u8; 64])>,
) -> Certificate {
    let cosignatures = (0..m.len())
        .map(|i| match crafted {
            Some((by, signature)) if by == i => Cosignature {
                witness: code(i),
                signature: Signature(signature),
            },
            _ => Cosignature::sign(checkpoint, code(i), &signing_key(i)),
        })
        .collect();
    Certificate::new(*checkpoint, cosignatures)
}

/// Cosignatures: each crafted cosignature, at the first, middle and last place of certificates
/// of every size, alone, offered to a builder, and inside the certificate.
#[test]
fn every_certificate_path_gives_each_crafted_cosignature_the_same_verdict() {
    for n in CERTIFICATE_SIZES {
        let m = membership(n);
        let checkpoint = Checkpoint {
            network: m.network(),
            epoch: 0,
            log: code(0),
            size: 10,
            root: [3; 32],
            time_ms: START_MS,
        };
        let message = checkpoint.cosigning_message();
        for by in places(n) {
            for case in crafted::signatures(&signing_key(by), &message) {
                let what = format!("{} by witness {by} of {n}", case.name);
                let cosignature = Cosignature {
                    witness: code(by),
                    signature: Signature(case.signature),
                };
                let mut builder = CertificateBuilder::new(checkpoint);
                let added = builder.add(
                    &hukou_protocol::config::Epochs::of_membership(m.clone()),
                    &checkpoint,
                    cosignature,
                );
                let whole = certificate(&m, &checkpoint, Some((by, case.signature)))
                    .verify(&hukou_protocol::config::Epochs::of_membership(m.clone()));
                if case.accepted {
                    assert_eq!(
                        cosignature.verify(
                            &checkpoint,
                            &hukou_protocol::config::Epochs::of_membership(m.clone())
                        ),
                        Ok(()),
                        "{what}"
                    );
                    assert_eq!(
                        added,
                        Ok(AddOutcome::Counted {
                            have: 1,
                            need: m.quorum()
                        }),
                        "builder: {what}"
                    );
                    assert_eq!(whole, Ok(()), "certificate: {what}");
                } else {
                    let bad = CertificateError::BadCosignature { witness: code(by) };
                    assert_eq!(
                        cosignature.verify(
                            &checkpoint,
                            &hukou_protocol::config::Epochs::of_membership(m.clone())
                        ),
                        Err(bad.clone()),
                        "{what}"
                    );
                    assert_eq!(added, Err(bad.clone()), "builder: {what}");
                    assert_eq!(whole, Err(bad), "certificate: {what}");
                }
            }
        }
    }
}

/// A log of registrations by bureau 0 (attestations check the body's kind, not the rulebook's
/// references), and a certificate of it by four witnesses.
fn registration_log(m: &Membership, n: usize) -> Vec<SignedEntry> {
    let mut prev = EntryHash::ZERO;
    (0..n)
        .map(|i| {
            let entry = Entry {
                network: m.network(),
                epoch: 0,
                author: code(0),
                seq: Seq(i as u64),
                prev,
                time_ms: START_MS + 60_000 * i as u64,
                body: Body::Registration {
                    deregistration: EntryRef {
                        author: code(1),
                        seq: Seq(i as u64),
                        hash: EntryHash([i as u8; 32]),
                    },
                    person: person(i),
                    placement: Placement {
                        household: HouseholdId(i as u64 + 1),
                        relation: Relation::Head,
                    },
                },
            }
            .sign(&signing_key(0));
            prev = entry.hash();
            entry
        })
        .collect()
}

/// Registration certificates (户籍证明): a crafted signature on the registration entry, then a
/// crafted cosignature in the certificate of its log.
#[test]
fn registration_certificates_give_each_crafted_signature_the_same_verdict() {
    let m = membership(4);
    let log = registration_log(&m, 3);
    let mut tree = Tree::new();
    for entry in &log {
        tree.push(entry.hash().0);
    }
    let checkpoint = Checkpoint {
        network: m.network(),
        epoch: 0,
        log: code(0),
        size: tree.len(),
        root: tree.root(),
        time_ms: START_MS + 3_600_000,
    };
    let honest_certificate = certificate(&m, &checkpoint, None);
    for (at, entry) in log.iter().enumerate() {
        let proof = tree.inclusion_proof(at as u64, tree.len()).unwrap();
        let entry_cases = crafted::signatures(&signing_key(0), &entry.signing_message());
        for case in &entry_cases {
            let attestation = Attestation {
                entry: with_signature(entry, case.signature),
                proof: proof.clone(),
                certificate: honest_certificate.clone(),
            };
            let verdict = attestation
                .verify(&hukou_protocol::config::Epochs::of_membership(m.clone()))
                .map(|v| v.entry.seq);
            if case.accepted {
                assert_eq!(verdict, Ok(Seq(at as u64)), "entry {}", case.name);
            } else {
                assert_eq!(
                    verdict,
                    Err(Fault::BadEntrySignature {
                        entry: entry.reference()
                    }),
                    "entry {}",
                    case.name
                );
            }
        }
        let by = at + 1;
        for case in crafted::signatures(&signing_key(by), &checkpoint.cosigning_message()) {
            let attestation = Attestation {
                entry: entry.clone(),
                proof: proof.clone(),
                certificate: certificate(&m, &checkpoint, Some((by, case.signature))),
            };
            let verdict = attestation
                .verify(&hukou_protocol::config::Epochs::of_membership(m.clone()))
                .map(|v| v.entry.seq);
            if case.accepted {
                assert_eq!(verdict, Ok(Seq(at as u64)), "cosignature {}", case.name);
            } else {
                assert_eq!(
                    verdict,
                    Err(Fault::Certificate(CertificateError::BadCosignature {
                        witness: code(by)
                    })),
                    "cosignature {}",
                    case.name
                );
            }
        }
    }
}

/// Fraud proofs: two entries at one position, one of them with a crafted signature.
#[test]
fn fraud_proofs_give_each_crafted_signature_the_same_verdict() {
    let m = membership(4);
    let log = permit_log(&m, 2);
    let mut other = log[1].entry().clone();
    other.body = Body::Revocation {
        permit: log[0].reference(),
    };
    let other = other.sign(&signing_key(0));
    for case in crafted::signatures(&signing_key(0), &log[1].signing_message()) {
        let crafted = with_signature(&log[1], case.signature);
        let proof = FraudProof::new(crafted.clone(), other.clone());
        let which = if proof.first == crafted {
            "first"
        } else {
            "second"
        };
        let verdict = proof.verify(&hukou_protocol::config::Epochs::of_membership(m.clone()));
        if case.accepted {
            assert_eq!(verdict, Ok(()), "{}", case.name);
        } else {
            assert_eq!(
                verdict,
                Err(FraudProofError::BadSignature(which)),
                "{}",
                case.name
            );
        }
    }
}

/// The keys a genesis names are the keys the rule trusts: every crafted key `check_key` refuses
/// is refused where a membership is formed, by name.
#[test]
fn memberships_refuse_crafted_keys_by_name() {
    for case in crafted::keys(b"membership") {
        let members = [
            Member {
                code: code(0),
                name: "bureau 0".into(),
                key: signing_key(0).verifying_key(),
            },
            Member {
                code: code(1),
                name: "bureau 1".into(),
                key: case.key,
            },
        ];
        let formed = Membership::new(NETWORK, members, 2).map(|_| ());
        let expected = match case.kind {
            crafted::KeyKind::Honest => Ok(()),
            crafted::KeyKind::SmallOrder => Err(MembershipError::WeakKey(code(1))),
            crafted::KeyKind::NonCanonical => Err(MembershipError::NonCanonicalKey(code(1))),
            crafted::KeyKind::MixedOrder => Err(MembershipError::MixedOrderKey(code(1))),
        };
        assert_eq!(formed, expected, "{}", case.name);
    }
}
