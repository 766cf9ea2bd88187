//! Registration certificates (户籍证明): a small self-contained file that proves, to anyone
//! holding only the network's genesis, that a person (by tag) was registered at a bureau by one
//! entry of its log, and that this entry is final.
//!
//! An [`Attestation`] carries three things, each already signed by someone else (the file itself
//! carries no new signature):
//!
//! - the signed entry `E` that registered the person at bureau `B` (`Enrol`, `Birth` or
//!   `Registration`), signed by `B`;
//! - an RFC 6962 inclusion proof of `E` in `B`'s log at size `S`;
//! - a certificate of `B`'s log at size `S`: `B`'s checkpoint (root, time `T`) cosigned by a
//!   quorum of members.
//!
//! Byte layout (canonical bincode as in `encoding`, `docs/FORMAT.md` "Registration
//! certificates"):
//!
//! ```text
//! attestation = "HKA" 0x02
//!             ‖ entry_len u64 ‖ signed entry (wire: content ‖ signature)
//!             ‖ count u64     ‖ count × sibling hash [32]       (the inclusion proof, lowest first)
//!             ‖ cert_len u64  ‖ certificate ("HKT" 0x02 …, canonical)
//! ```
//!
//! What a valid attestation proves, exactly: *"person P was registered at bureau B by entry E, E
//! is included in B's log, and E is final as of certificate C (size S, made at time T)"*. It does
//! **not** prove that P is still registered at B: a later entry of B's log (a deregistration or a
//! cancellation after E) is not excluded by an inclusion proof. The issuing node checks that P is
//! registered at B when it issues the file; whoever relies on it later should weigh its time `T`,
//! or check against a current export of B's log.
//!
//! Invariants:
//!
//! - [`Attestation::verify`] is pure, needs only the configuration log ([`Epochs`]), checks in a
//!   written order and names the first failure ([`Fault::name`]), so every verifier names the
//!   same fault for the same file.
//! - [`Attestation::decode`] refuses oversized input, a wrong magic, an unknown version, an entry
//!   or proof longer than any valid one (before allocating), a non-canonical entry or certificate,
//!   and trailing bytes; it never panics.

use bincode::{Decode, Encode};

use crate::checkpoint::{Certificate, CertificateError};
use crate::config::Epochs;
use crate::encoding::{self, DecodeError};
use crate::entry::{Body, BodyKind, Placement, SignedEntry};
use crate::limits::{CERTIFICATE_BYTES_MAX, ENTRY_BYTES_MAX};
use crate::merkle::{self, VerifyError};
use crate::types::{BureauCode, EntryRef, Hash32, NetworkId, PersonTag};

/// Magic of a registration certificate file: "HKA" and the format version.
pub const MAGIC_ATTESTATION: [u8; 4] = *b"HKA\x02";

/// Most hashes in an inclusion proof: a log of 2^64 entries needs 64.
pub const PROOF_HASHES_MAX: usize = 64;

/// Largest encoded attestation: magic, the three length prefixes, the largest entry, the longest
/// proof and the largest certificate.
pub const ATTESTATION_BYTES_MAX: usize =
    4 + 8 + ENTRY_BYTES_MAX + 8 + PROOF_HASHES_MAX * 32 + 8 + CERTIFICATE_BYTES_MAX;

const WHAT: &str = "registration certificate";

/// A registration certificate (户籍证明): an entry that registered a person, its inclusion proof
/// in its author's log, and a certificate of that log covering it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attestation {
    /// The entry that registered the person (`Enrol`, `Birth` or `Registration`).
    pub entry: SignedEntry,
    /// RFC 6962 inclusion proof of the entry (leaf `seq`) in the tree of `certificate`'s size,
    /// lowest sibling first.
    pub proof: Vec<Hash32>,
    /// A certificate of the entry's log at a size above the entry's seq.
    pub certificate: Certificate,
}

/// The wire form: each part as a length-prefixed blob in its own canonical encoding.
#[derive(Encode, Decode)]
struct Wire {
    entry: Vec<u8>,
    proof: Vec<Hash32>,
    certificate: Vec<u8>,
}

/// What a valid attestation establishes (see the module documentation for what it does not).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The person, by tag.
    pub person: PersonTag,
    /// The bureau that registered the person: the entry's author and the certified log.
    pub bureau: BureauCode,
    /// The registering entry.
    pub entry: EntryRef,
    /// Its kind: enrol, birth or registration.
    pub kind: BodyKind,
    /// When the bureau recorded it (ms since the Unix epoch, UTC).
    pub entry_time_ms: u64,
    /// The household and relation it placed the person in.
    pub placement: Placement,
    /// Entries of the log the certificate covers; the entry's seq is below it.
    pub size: u64,
    /// The certified Merkle root of those entries.
    pub root: Hash32,
    /// When the bureau made the certified checkpoint (ms since the Unix epoch, by its clock).
    pub time_ms: u64,
    /// The members whose cosignatures make the certificate, in code order.
    pub witnesses: Vec<BureauCode>,
    /// The quorum of the certificate's epoch they meet.
    pub quorum: usize,
    /// The configuration epoch whose key signed the entry.
    pub entry_epoch: u32,
    /// The configuration epoch whose keys and quorum make the certificate.
    pub certificate_epoch: u32,
}

/// Why an attestation is not valid. Variants are listed in the order [`Attestation::verify`]
/// checks them; the first failure is reported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Fault {
    /// 1. The entry is of another network (the file was made for another genesis).
    #[error("the entry is of network {found}, not this genesis's network {expected}")]
    WrongNetwork {
        found: NetworkId,
        expected: NetworkId,
    },
    /// 2. The entry's author is not a member of the genesis.
    #[error("the entry's author {bureau} is not a member of this genesis")]
    UnknownBureau { bureau: BureauCode },
    /// 3. The entry's signature is not its author's (the entry was altered, or forged).
    #[error("entry {entry} is not validly signed by {}", .entry.author)]
    BadEntrySignature { entry: EntryRef },
    /// 4. The entry does not register anyone (it is not an enrol, birth or registration).
    #[error("entry {entry} is a {kind}, which registers no one")]
    NotARegistration { entry: EntryRef, kind: BodyKind },
    /// 5. The certificate is not valid: its own rules, by their names (`certificate_*`).
    #[error("the certificate is not valid: {0}")]
    Certificate(#[from] CertificateError),
    /// 6. The certificate is of another log than the entry's.
    #[error("the certificate is of log {certificate_log}, the entry of log {entry_log}")]
    OtherLog {
        entry_log: BureauCode,
        certificate_log: BureauCode,
    },
    /// 7. The certificate does not cover the entry: its size is not above the entry's seq.
    #[error("the certificate covers {size} entries; entry seq {seq} is not among them")]
    NotCovered { seq: u64, size: u64 },
    /// 8. The inclusion proof does not lead from the entry to the certified root.
    #[error("the inclusion proof does not place the entry in the certified log: {0}")]
    NotIncluded(VerifyError),
}

impl Fault {
    /// Stable snake_case name; a certificate's own faults keep their `certificate_*` names.
    pub fn name(&self) -> &'static str {
        match self {
            Fault::WrongNetwork { .. } => "attestation_wrong_network",
            Fault::UnknownBureau { .. } => "attestation_unknown_bureau",
            Fault::BadEntrySignature { .. } => "attestation_bad_entry_signature",
            Fault::NotARegistration { .. } => "attestation_not_a_registration",
            Fault::Certificate(e) => e.name(),
            Fault::OtherLog { .. } => "attestation_other_log",
            Fault::NotCovered { .. } => "attestation_entry_not_covered",
            Fault::NotIncluded(_) => "attestation_not_included",
        }
    }
}

impl Attestation {
    /// The canonical encoding (see the module documentation).
    pub fn encode(&self) -> Vec<u8> {
        let wire = Wire {
            entry: self.entry.encode(),
            proof: self.proof.clone(),
            certificate: self.certificate.encode(),
        };
        encoding::encode_with_magic(MAGIC_ATTESTATION, &wire)
    }

    /// Decodes exactly one canonical encoding.
    pub fn decode(bytes: &[u8]) -> Result<Attestation, DecodeError> {
        encoding::check_magic(bytes, MAGIC_ATTESTATION, WHAT, ATTESTATION_BYTES_MAX)?;
        // Refuse impossible lengths before bincode allocates for them.
        let length_at = |at: usize| {
            bytes
                .get(at..at + 8)
                .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
        };
        if let Some(entry_len) = length_at(4) {
            if entry_len > ENTRY_BYTES_MAX as u64 {
                return Err(malformed(format!(
                    "an entry of {entry_len} bytes, more than the {ENTRY_BYTES_MAX} allowed"
                )));
            }
            if let Some(count) = length_at(12 + entry_len as usize)
                && count > PROOF_HASHES_MAX as u64
            {
                return Err(malformed(format!(
                    "an inclusion proof of {count} hashes, more than the {PROOF_HASHES_MAX} any log needs"
                )));
            }
        }
        let wire: Wire = encoding::decode_exact(&bytes[4..], WHAT)?;
        let entry = SignedEntry::decode(&wire.entry)
            .map_err(|e| malformed(format!("its entry does not decode: {e}")))?;
        let certificate = Certificate::decode(&wire.certificate)
            .map_err(|e| malformed(format!("its certificate does not decode: {e}")))?;
        Ok(Attestation {
            entry,
            proof: wire.proof,
            certificate,
        })
    }

    /// Checks the attestation against the genesis's membership, in this order (the first failure
    /// is reported):
    ///
    /// 1. the entry is of the genesis's network ([`Fault::WrongNetwork`]);
    /// 2. its author is a member ([`Fault::UnknownBureau`]);
    /// 3. its signature is its author's ([`SignedEntry::verify`], the one rule of
    ///    [`crate::signature`]) ([`Fault::BadEntrySignature`]);
    /// 4. it is an enrol, birth or registration ([`Fault::NotARegistration`]);
    /// 5. the certificate is valid: network, member log, member witnesses, no duplicate, every
    ///    cosignature, quorum ([`Fault::Certificate`], named `certificate_*`);
    /// 6. the certificate is of the entry's log ([`Fault::OtherLog`]);
    /// 7. it covers the entry: seq < size ([`Fault::NotCovered`]);
    /// 8. the proof leads from the entry's hash at its seq to the certified root
    ///    ([`Fault::NotIncluded`]).
    pub fn verify(&self, epochs: &Epochs) -> Result<Verified, Fault> {
        let e = self.entry.entry();
        let entry = self.entry.reference();
        if e.network != epochs.network() {
            return Err(Fault::WrongNetwork {
                found: e.network,
                expected: epochs.network(),
            });
        }
        let Some(key) = epochs.get(e.epoch).and_then(|c| c.membership.key(e.author)) else {
            return Err(Fault::UnknownBureau { bureau: e.author });
        };
        if !self.entry.verify(key) {
            return Err(Fault::BadEntrySignature { entry });
        }
        let (person, placement) = match &e.body {
            Body::Enrol {
                person, placement, ..
            }
            | Body::Birth {
                person, placement, ..
            }
            | Body::Registration {
                person, placement, ..
            } => (*person, *placement),
            other => {
                return Err(Fault::NotARegistration {
                    entry,
                    kind: other.kind(),
                });
            }
        };
        self.certificate.verify(epochs)?;
        let c = &self.certificate.checkpoint;
        let quorum = epochs
            .get(c.epoch)
            .expect("the certificate verified")
            .membership
            .quorum();
        if c.log != e.author {
            return Err(Fault::OtherLog {
                entry_log: e.author,
                certificate_log: c.log,
            });
        }
        if e.seq.0 >= c.size {
            return Err(Fault::NotCovered {
                seq: e.seq.0,
                size: c.size,
            });
        }
        merkle::verify_inclusion(&entry.hash.0, e.seq.0, c.size, &self.proof, &c.root)
            .map_err(Fault::NotIncluded)?;
        Ok(Verified {
            person,
            bureau: e.author,
            entry,
            kind: e.body.kind(),
            entry_time_ms: e.time_ms,
            placement,
            size: c.size,
            root: c.root,
            time_ms: c.time_ms,
            witnesses: self.certificate.witnesses().collect(),
            quorum,
            entry_epoch: e.epoch,
            certificate_epoch: c.epoch,
        })
    }
}

fn malformed(reason: String) -> DecodeError {
    DecodeError::Malformed { what: WHAT, reason }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::{Checkpoint, Cosignature};
    use crate::entry::Entry;
    use crate::membership::{Member, quorum_for};
    use crate::merkle::Tree;
    use crate::types::{EntryHash, HouseholdId, Seq};
    use crate::vocabulary::{Category, Relation};
    use crate::{Digest, Membership};
    use ed25519_dalek::SigningKey;
    use proptest::prelude::*;

    const NET: &str = "attestation-test";
    /// The attested entry's seq in the log of [`LOG_LEN`] entries.
    const SEQ: u64 = 5;
    const LOG_LEN: u64 = 11;

    fn code(i: u8) -> BureauCode {
        BureauCode::new(310_100 + u32::from(i)).unwrap()
    }

    fn key(i: u8) -> SigningKey {
        SigningKey::from_bytes(&[i; 32])
    }

    fn membership_named(name: &str, key_base: u8) -> Membership {
        let members = (1..=4).map(|i| Member {
            code: code(i),
            name: format!("bureau {i}"),
            key: key(key_base + i).verifying_key(),
        });
        Membership::new(name, members, quorum_for(4)).unwrap()
    }

    fn membership() -> Membership {
        membership_named(NET, 0)
    }

    fn person(i: u64) -> PersonTag {
        let mut tag = [0x5a; 32];
        tag[..8].copy_from_slice(&i.to_le_bytes());
        PersonTag(tag)
    }

    /// Member 1's log: enrolments, with a permit at seq 3.
    fn log() -> Vec<SignedEntry> {
        let mut prev = EntryHash::ZERO;
        (0..LOG_LEN)
            .map(|seq| {
                let body = if seq == 3 {
                    Body::Permit {
                        person: person(99),
                        origin: code(2),
                        category: Category::Spouse,
                        valid_until_ms: 1_800_000_000_000,
                        materials: Digest::ZERO,
                        corrects: None,
                    }
                } else {
                    Body::Enrol {
                        person: person(seq),
                        placement: Placement {
                            household: HouseholdId(seq),
                            relation: Relation::Head,
                        },
                        // Attestations do not replay the rulebook: any claim reference will do.
                        claim: EntryRef {
                            author: code(2),
                            seq: Seq(seq),
                            hash: EntryHash::ZERO,
                        },
                    }
                };
                let entry = Entry {
                    network: NetworkId::from_name(NET),
                    epoch: 0,
                    author: code(1),
                    seq: Seq(seq),
                    prev,
                    time_ms: 1_767_225_600_000 + seq,
                    body,
                }
                .sign(&key(1));
                prev = entry.hash();
                entry
            })
            .collect()
    }

    fn tree(log: &[SignedEntry]) -> Tree {
        let mut tree = Tree::new();
        for e in log {
            tree.push(e.hash().0);
        }
        tree
    }

    fn certificate_at(tree: &Tree, size: u64, witnesses: &[u8]) -> Certificate {
        let checkpoint = Checkpoint {
            network: NetworkId::from_name(NET),
            epoch: 0,
            log: code(1),
            size,
            root: tree.root_at(size).unwrap(),
            time_ms: 1_767_225_601_000,
        };
        let cosignatures = witnesses
            .iter()
            .map(|&i| Cosignature::sign(&checkpoint, code(i), &key(i)))
            .collect();
        Certificate::new(checkpoint, cosignatures)
    }

    fn attestation_of(seq: u64, size: u64, witnesses: &[u8]) -> Attestation {
        let log = log();
        let tree = tree(&log);
        Attestation {
            entry: log[seq as usize].clone(),
            proof: tree.inclusion_proof(seq, size).unwrap(),
            certificate: certificate_at(&tree, size, witnesses),
        }
    }

    fn attestation() -> Attestation {
        attestation_of(SEQ, LOG_LEN, &[1, 2, 3])
    }

    /// Offsets in the encoding: (entry, proof, certificate) starts.
    fn offsets(a: &Attestation) -> (usize, usize, usize) {
        let entry = 4 + 8;
        let proof = entry + a.entry.encoded_len() + 8;
        let certificate = proof + a.proof.len() * 32 + 8;
        (entry, proof, certificate)
    }

    /// Verifies the bytes with one byte flipped at `at`: the fault (decoding must succeed).
    fn fault_after_flip(at: usize) -> Fault {
        let mut bytes = attestation().encode();
        bytes[at] ^= 0x01;
        Attestation::decode(&bytes)
            .expect("still decodes")
            .verify(&crate::config::Epochs::of_membership(membership()))
            .unwrap_err()
    }

    #[test]
    fn a_valid_attestation_verifies_and_says_what_it_proves() {
        let a = attestation();
        let v = a
            .verify(&crate::config::Epochs::of_membership(membership()))
            .unwrap();
        assert_eq!(v.person, person(SEQ));
        assert_eq!(v.bureau, code(1));
        assert_eq!(v.entry, a.entry.reference());
        assert_eq!(v.kind, BodyKind::Enrol);
        assert_eq!(v.entry_time_ms, 1_767_225_600_000 + SEQ);
        assert_eq!(v.placement.household, HouseholdId(SEQ));
        assert_eq!(v.size, LOG_LEN);
        assert_eq!(v.root, tree(&log()).root());
        assert_eq!(v.time_ms, 1_767_225_601_000);
        assert_eq!(v.witnesses, vec![code(1), code(2), code(3)]);
        assert_eq!(v.quorum, 3);
        // Every position and size works, including the first and last leaf and size 1.
        for size in 1..=LOG_LEN {
            for seq in (0..size).filter(|s| *s != 3) {
                let a = attestation_of(seq, size, &[2, 3, 4]);
                assert_eq!(
                    a.verify(&crate::config::Epochs::of_membership(membership()))
                        .unwrap()
                        .entry
                        .seq,
                    Seq(seq)
                );
            }
        }
    }

    #[test]
    fn the_encoding_has_the_documented_layout_and_round_trips() {
        let a = attestation();
        let bytes = a.encode();
        let (entry, proof, certificate) = offsets(&a);
        assert_eq!(&bytes[..4], b"HKA\x02");
        assert_eq!(bytes[4..12], (a.entry.encoded_len() as u64).to_le_bytes());
        assert_eq!(
            &bytes[entry..entry + a.entry.encoded_len()],
            a.entry.encode()
        );
        assert_eq!(
            bytes[proof - 8..proof],
            (a.proof.len() as u64).to_le_bytes()
        );
        assert_eq!(&bytes[proof..proof + 32], a.proof[0]);
        let cert = a.certificate.encode();
        assert_eq!(
            bytes[certificate - 8..certificate],
            (cert.len() as u64).to_le_bytes()
        );
        assert_eq!(&bytes[certificate..], cert);
        assert_eq!(Attestation::decode(&bytes), Ok(a));
    }

    #[test]
    fn decoding_refuses_what_is_not_a_canonical_attestation() {
        let bytes = attestation().encode();
        assert!(matches!(
            Attestation::decode(&bytes[..bytes.len() - 1]),
            Err(DecodeError::Truncated { .. } | DecodeError::Malformed { .. })
        ));
        let mut long = bytes.clone();
        long.push(0);
        assert!(matches!(
            Attestation::decode(&long),
            Err(DecodeError::TrailingBytes { .. })
        ));
        let mut wrong = bytes.clone();
        wrong[0] = b'X';
        assert!(matches!(
            Attestation::decode(&wrong),
            Err(DecodeError::WrongMagic { .. })
        ));
        let mut next = bytes.clone();
        next[3] = MAGIC_ATTESTATION[3] + 1;
        assert!(matches!(
            Attestation::decode(&next),
            Err(DecodeError::UnknownVersion { found: 3, .. })
        ));
        // Impossible lengths are refused before anything is allocated.
        let mut huge_entry = bytes.clone();
        huge_entry[4..12].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            Attestation::decode(&huge_entry),
            Err(DecodeError::Malformed { .. })
        ));
        let a = attestation();
        let (_, proof, _) = offsets(&a);
        let mut huge_proof = bytes.clone();
        huge_proof[proof - 8..proof].copy_from_slice(&(1u64 << 40).to_le_bytes());
        assert!(matches!(
            Attestation::decode(&huge_proof),
            Err(DecodeError::Malformed { .. })
        ));
        // A certificate blob that is not a certificate.
        let (_, _, certificate) = offsets(&a);
        let mut not_cert = bytes.clone();
        not_cert[certificate] = b'Q';
        assert!(matches!(
            Attestation::decode(&not_cert),
            Err(DecodeError::Malformed { .. })
        ));
    }

    #[test]
    fn a_flipped_byte_in_the_entry_is_a_bad_entry_signature() {
        let a = attestation();
        let (entry, _, _) = offsets(&a);
        // In the person tag (content offset 92 + 4 for the body's variant index).
        let fault = fault_after_flip(entry + 96);
        assert!(matches!(fault, Fault::BadEntrySignature { .. }), "{fault}");
        assert_eq!(fault.name(), "attestation_bad_entry_signature");
        // In the signature.
        let fault = fault_after_flip(entry + a.entry.encoded_len() - 10);
        assert_eq!(fault.name(), "attestation_bad_entry_signature");
    }

    #[test]
    fn a_flipped_byte_in_the_proof_is_not_included() {
        let a = attestation();
        let (_, proof, _) = offsets(&a);
        for at in [proof, proof + 32 * (a.proof.len() - 1) + 31] {
            let fault = fault_after_flip(at);
            assert!(
                matches!(fault, Fault::NotIncluded(VerifyError::RootMismatch { .. })),
                "{fault}"
            );
            assert_eq!(fault.name(), "attestation_not_included");
        }
        // A proof of the wrong length.
        let mut short = a.clone();
        short.proof.pop();
        assert!(matches!(
            short.verify(&crate::config::Epochs::of_membership(membership())),
            Err(Fault::NotIncluded(VerifyError::WrongProofLength { .. }))
        ));
        // The proof of another entry.
        let mut other = a.clone();
        other.proof = tree(&log()).inclusion_proof(SEQ + 1, LOG_LEN).unwrap();
        assert_eq!(
            other
                .verify(&crate::config::Epochs::of_membership(membership()))
                .unwrap_err()
                .name(),
            "attestation_not_included"
        );
    }

    #[test]
    fn a_flipped_byte_in_the_certified_root_breaks_every_cosignature() {
        let a = attestation();
        let (_, _, certificate) = offsets(&a);
        // Certificate layout: magic 4, network 32, log 4, size 8, root 32.
        let fault = fault_after_flip(certificate + 4 + 32 + 4 + 8 + 17);
        assert_eq!(
            fault,
            Fault::Certificate(CertificateError::BadCosignature { witness: code(1) })
        );
        assert_eq!(fault.name(), "certificate_bad_cosignature");
    }

    #[test]
    fn a_flipped_byte_in_a_cosignature_is_named() {
        let a = attestation();
        let (_, _, certificate) = offsets(&a);
        // The second cosignature's signature: after checkpoint (84 + 4), count 8, first (68),
        // witness 4.
        let fault = fault_after_flip(certificate + 88 + 8 + 68 + 4 + 20);
        assert_eq!(
            fault,
            Fault::Certificate(CertificateError::BadCosignature { witness: code(2) })
        );
    }

    #[test]
    fn too_few_cosignatures_is_below_quorum() {
        let a = attestation_of(SEQ, LOG_LEN, &[1, 4]);
        let fault = a
            .verify(&crate::config::Epochs::of_membership(membership()))
            .unwrap_err();
        assert_eq!(
            fault,
            Fault::Certificate(CertificateError::BelowQuorum { have: 2, need: 3 })
        );
        assert_eq!(fault.name(), "certificate_below_quorum");
    }

    #[test]
    fn a_foreign_genesis_is_named() {
        let a = attestation();
        // Another network.
        let fault = a
            .verify(&crate::config::Epochs::of_membership(membership_named(
                "another-net",
                0,
            )))
            .unwrap_err();
        assert!(matches!(fault, Fault::WrongNetwork { .. }), "{fault}");
        assert_eq!(fault.name(), "attestation_wrong_network");
        // The same network name, other keys: the entry is not its author's.
        let fault = a
            .verify(&crate::config::Epochs::of_membership(membership_named(
                NET, 10,
            )))
            .unwrap_err();
        assert_eq!(fault.name(), "attestation_bad_entry_signature");
        // A genesis without the entry's author.
        let strangers = Membership::new(
            NET,
            (2..=4).map(|i| Member {
                code: code(i),
                name: format!("bureau {i}"),
                key: key(i).verifying_key(),
            }),
            quorum_for(3),
        )
        .unwrap();
        let fault = a
            .verify(&crate::config::Epochs::of_membership(strangers.clone()))
            .unwrap_err();
        assert_eq!(fault, Fault::UnknownBureau { bureau: code(1) });
        assert_eq!(fault.name(), "attestation_unknown_bureau");
    }

    #[test]
    fn the_remaining_faults_are_each_named() {
        // A permit registers no one.
        let fault = attestation_of(3, LOG_LEN, &[1, 2, 3])
            .verify(&crate::config::Epochs::of_membership(membership()))
            .unwrap_err();
        assert_eq!(fault.name(), "attestation_not_a_registration");

        // A certificate that does not reach the entry.
        let log = log();
        let t = tree(&log);
        let mut early = attestation();
        early.certificate = certificate_at(&t, SEQ, &[1, 2, 3]);
        let fault = early
            .verify(&crate::config::Epochs::of_membership(membership()))
            .unwrap_err();
        assert_eq!(
            fault,
            Fault::NotCovered {
                seq: SEQ,
                size: SEQ
            }
        );
        assert_eq!(fault.name(), "attestation_entry_not_covered");

        // A valid certificate of another member's log.
        let mut other = attestation();
        let checkpoint = Checkpoint {
            log: code(2),
            ..other.certificate.checkpoint
        };
        other.certificate = Certificate::new(
            checkpoint,
            [1, 2, 3]
                .iter()
                .map(|&i| Cosignature::sign(&checkpoint, code(i), &key(i)))
                .collect(),
        );
        let fault = other
            .verify(&crate::config::Epochs::of_membership(membership()))
            .unwrap_err();
        assert_eq!(
            fault,
            Fault::OtherLog {
                entry_log: code(1),
                certificate_log: code(2)
            }
        );
        assert_eq!(fault.name(), "attestation_other_log");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn tampering_any_byte_is_caught(at in any::<prop::sample::Index>(), xor in 1u8..=255) {
            let mut bytes = attestation().encode();
            let i = at.index(bytes.len());
            bytes[i] ^= xor;
            if let Ok(a) = Attestation::decode(&bytes) {
                prop_assert!(a.verify(&crate::config::Epochs::of_membership(membership())).is_err(), "tampered byte {} accepted", i);
            }
        }

        #[test]
        fn decoding_random_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..900)) {
            let _ = Attestation::decode(&bytes);
            let mut prefixed = MAGIC_ATTESTATION.to_vec();
            prefixed.extend_from_slice(&bytes);
            if let Ok(a) = Attestation::decode(&prefixed) {
                let _ = a.verify(&crate::config::Epochs::of_membership(membership()));
            }
        }
    }
}
