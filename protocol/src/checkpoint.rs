//! Checkpoints, cosignatures and certificates: how a log commits to its contents and how the
//! other members vouch for that commitment (DESIGN.md, "Logs, checkpoints, witnesses, finality").
//!
//! Byte layouts (little-endian, fixed width, as in `encoding`):
//!
//! - checkpoint = `"HKC" 0x02` ‖ network (32) ‖ epoch (u32) ‖ log (u32) ‖ size (u64) ‖ root (32)
//!   ‖ time_ms (u64): always [`CHECKPOINT_BYTES`] = 92 bytes. Keys, membership and quorum are
//!   the checkpoint's epoch's (`config`).
//! - the log's author signs `DOMAIN_CHECKPOINT_SIGNATURE` ‖ checkpoint; a signed checkpoint on the
//!   wire is checkpoint ‖ signature (64)
//! - a witness cosigns `DOMAIN_COSIGNATURE` ‖ checkpoint, so a cosignature can never pass for the
//!   author's signature or the other way round
//! - certificate = `"HKT" 0x02` ‖ checkpoint (without its magic) ‖ count (u64) ‖ count ×
//!   (witness (u32) ‖ signature (64)), cosignatures sorted by witness code
//!
//! Invariants:
//!
//! - A [`Certificate`] that passes [`Certificate::verify`] carries valid cosignatures of at least
//!   `membership.quorum()` distinct members on one checkpoint of one member's log, on this
//!   network. Its entries are final.
//! - The checks of [`Certificate::verify`] run in a written order, and each failure has a stable
//!   name ([`CertificateError::name`]), so node, witness and auditor name the same fault.
//! - Decoding refuses non-canonical certificates (cosignatures out of order) and an oversized
//!   cosignature count before allocating; it never panics.
//! - A [`CheckpointFork`] is checkable with the membership alone: two validly signed checkpoints of
//!   one log with one size and two roots prove that its author equivocated.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use bincode::{Decode, Encode};
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::config::{EpochConfig, Epochs};
use crate::encoding::{
    self, DOMAIN_CHECKPOINT_SIGNATURE, DOMAIN_COSIGNATURE, DecodeError, MAGIC_CERTIFICATE,
    MAGIC_CHECKPOINT,
};
use crate::entry::Signature;
use crate::limits::{CERTIFICATE_BYTES_MAX, MEMBERS_MAX};
use crate::signature;
use crate::types::{BureauCode, Hash32, NetworkId};

/// Length of a checkpoint's canonical encoding, magic included.
pub const CHECKPOINT_BYTES: usize = 4 + 32 + 4 + 4 + 8 + 32 + 8;

/// Length of a signed checkpoint's wire form.
pub const SIGNED_CHECKPOINT_BYTES: usize = CHECKPOINT_BYTES + 64;

/// Length of one encoded cosignature in a certificate.
const COSIGNATURE_BYTES: usize = 4 + 64;

const _: () =
    assert!(CHECKPOINT_BYTES + 8 + MEMBERS_MAX * COSIGNATURE_BYTES <= CERTIFICATE_BYTES_MAX);

/// A log's commitment to its first `size` entries: the root of the RFC 6962 tree over them.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Encode, Decode, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The network; a checkpoint of another network is never valid here.
    pub network: NetworkId,
    /// The configuration epoch whose keys sign and cosign it and whose quorum certifies it;
    /// not below the epoch of the log's entry at `size - 1`.
    pub epoch: u32,
    /// The bureau whose log this is, and whose key signs the checkpoint.
    pub log: BureauCode,
    /// Number of entries covered.
    pub size: u64,
    /// The Merkle root of the first `size` entries (see `merkle`).
    #[serde(with = "hex_bytes")]
    pub root: Hash32,
    /// When the author made the checkpoint, in ms since the Unix epoch (UTC), by its own clock.
    pub time_ms: u64,
}

impl fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checkpoint")
            .field("network", &self.network)
            .field("epoch", &self.epoch)
            .field("log", &self.log)
            .field("size", &self.size)
            .field("root", &format_args!("{}…", &hex::encode(&self.root[..6])))
            .field("time_ms", &self.time_ms)
            .finish()
    }
}

impl Checkpoint {
    /// The canonical encoding: magic ‖ bincode, [`CHECKPOINT_BYTES`] long.
    pub fn encode(&self) -> Vec<u8> {
        encoding::encode_with_magic(MAGIC_CHECKPOINT, self)
    }

    /// Decodes exactly one canonical checkpoint encoding.
    pub fn decode(bytes: &[u8]) -> Result<Checkpoint, DecodeError> {
        encoding::decode_with_magic(bytes, MAGIC_CHECKPOINT, "checkpoint", CHECKPOINT_BYTES)
    }

    /// The message the log's author signs: `DOMAIN_CHECKPOINT_SIGNATURE` ‖ canonical encoding.
    pub fn signing_message(&self) -> Vec<u8> {
        self.message(DOMAIN_CHECKPOINT_SIGNATURE)
    }

    /// The message a witness cosigns: `DOMAIN_COSIGNATURE` ‖ canonical encoding.
    pub fn cosigning_message(&self) -> Vec<u8> {
        self.message(DOMAIN_COSIGNATURE)
    }

    fn message(&self, domain: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(domain.len() + CHECKPOINT_BYTES);
        out.extend_from_slice(domain);
        out.extend_from_slice(&MAGIC_CHECKPOINT);
        encoding::encode_into(self, &mut out);
        out
    }

    /// Signs the checkpoint with the log's author key.
    pub fn sign(self, key: &SigningKey) -> SignedCheckpoint {
        let signature = Signature::sign(key, &self.signing_message());
        SignedCheckpoint {
            checkpoint: self,
            signature,
        }
    }
}

/// Why a signed checkpoint is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The checkpoint names another network.
    #[error("checkpoint is for network {found}, not this network {expected}")]
    WrongNetwork {
        found: NetworkId,
        expected: NetworkId,
    },
    /// The checkpoint names an epoch the configuration log does not hold (yet).
    #[error("checkpoint names configuration epoch {epoch}, which is not known here")]
    UnknownEpoch { epoch: u32 },
    /// The log is not a member's.
    #[error("checkpoint is of log {log}, which is not a member")]
    UnknownLog { log: BureauCode },
    /// The signature is not the log author's over this checkpoint.
    #[error("checkpoint of log {log} is not validly signed by its author")]
    BadSignature { log: BureauCode },
}

impl CheckpointError {
    /// Stable snake_case name.
    pub fn name(&self) -> &'static str {
        match self {
            CheckpointError::WrongNetwork { .. } => "checkpoint_wrong_network",
            CheckpointError::UnknownEpoch { .. } => "checkpoint_unknown_epoch",
            CheckpointError::UnknownLog { .. } => "checkpoint_unknown_log",
            CheckpointError::BadSignature { .. } => "checkpoint_bad_signature",
        }
    }
}

/// A checkpoint with its log author's signature.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
pub struct SignedCheckpoint {
    /// What is signed.
    pub checkpoint: Checkpoint,
    /// The author's signature over [`Checkpoint::signing_message`].
    #[serde(with = "hex_signature")]
    pub signature: Signature,
}

impl SignedCheckpoint {
    /// Checks, in order: the network is this one, the log is a member, and the signature is the
    /// log author's ([`Signature::verify`], the ZIP-215 rule of [`crate::signature`]).
    pub fn verify(&self, epochs: &Epochs) -> Result<(), CheckpointError> {
        let c = &self.checkpoint;
        if c.network != epochs.network() {
            return Err(CheckpointError::WrongNetwork {
                found: c.network,
                expected: epochs.network(),
            });
        }
        let Some(epoch) = epochs.get(c.epoch) else {
            return Err(CheckpointError::UnknownEpoch { epoch: c.epoch });
        };
        let membership = &epoch.membership;
        let Some(key) = membership.key(c.log) else {
            return Err(CheckpointError::UnknownLog { log: c.log });
        };
        if !self.signature.verify(key, &c.signing_message()) {
            return Err(CheckpointError::BadSignature { log: c.log });
        }
        Ok(())
    }

    /// The wire form: canonical checkpoint ‖ signature, [`SIGNED_CHECKPOINT_BYTES`] long.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.checkpoint.encode();
        out.extend_from_slice(&self.signature.0);
        out
    }

    /// Decodes the wire form exactly.
    pub fn decode(bytes: &[u8]) -> Result<SignedCheckpoint, DecodeError> {
        const WHAT: &str = "signed checkpoint";
        encoding::check_magic(bytes, MAGIC_CHECKPOINT, WHAT, SIGNED_CHECKPOINT_BYTES)?;
        if bytes.len() < SIGNED_CHECKPOINT_BYTES {
            return Err(DecodeError::Truncated {
                len: bytes.len(),
                needed: SIGNED_CHECKPOINT_BYTES,
            });
        }
        let (content, signature) = bytes.split_at(CHECKPOINT_BYTES);
        let checkpoint = encoding::decode_exact(&content[4..], WHAT)?;
        let signature = Signature(signature.try_into().expect("length checked above"));
        Ok(SignedCheckpoint {
            checkpoint,
            signature,
        })
    }
}

/// A witness's signature over a checkpoint: "I have checked this log up to this size, its root
/// and its consistency with what I cosigned before."
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Encode, Decode, Serialize, Deserialize)]
pub struct Cosignature {
    /// The member that cosigned.
    pub witness: BureauCode,
    /// Its signature over [`Checkpoint::cosigning_message`].
    #[serde(with = "hex_signature")]
    pub signature: Signature,
}

impl Cosignature {
    /// Cosigns `checkpoint` as `witness` with the witness's key.
    pub fn sign(checkpoint: &Checkpoint, witness: BureauCode, key: &SigningKey) -> Cosignature {
        Cosignature {
            witness,
            signature: Signature::sign(key, &checkpoint.cosigning_message()),
        }
    }

    /// Checks, in the order of [`Certificate::verify`]: the checkpoint is of this network, of a
    /// known epoch and of a member's log, the witness is a member, and the signature is valid
    /// ([`Signature::verify`]).
    pub fn verify(&self, checkpoint: &Checkpoint, epochs: &Epochs) -> Result<(), CertificateError> {
        let epoch = check_checkpoint(checkpoint, epochs)?;
        let Some(key) = epoch.membership.key(self.witness) else {
            return Err(CertificateError::UnknownWitness {
                witness: self.witness,
            });
        };
        if !epoch.is_witness(checkpoint.log, self.witness) {
            return Err(CertificateError::NotInCommittee {
                witness: self.witness,
            });
        }
        if !self.signature.verify(key, &checkpoint.cosigning_message()) {
            return Err(CertificateError::BadCosignature {
                witness: self.witness,
            });
        }
        Ok(())
    }
}

/// Why a certificate (or one cosignature) is not valid. Variants are listed in the order
/// [`Certificate::verify`] checks them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// Rule 1: the checkpoint names another network.
    #[error("certificate is for network {found}, not this network {expected}")]
    WrongNetwork {
        found: NetworkId,
        expected: NetworkId,
    },
    /// Rule 2: the checkpoint names an epoch the configuration log does not hold (yet).
    #[error("certificate names configuration epoch {epoch}, which is not known here")]
    UnknownEpoch { epoch: u32 },
    /// Rule 2: the log is not a member's.
    #[error("certificate is of log {log}, which is not a member")]
    UnknownLog { log: BureauCode },
    /// Rule 3: a witness is not a member (the first in order).
    #[error("cosignature by {witness}, which is not a member")]
    UnknownWitness { witness: BureauCode },
    /// Rule 3: a witness is a member but not on the log's committee in the checkpoint's epoch
    /// (the first in order).
    #[error("cosignature by {witness}, which is not on this log's witness committee")]
    NotInCommittee { witness: BureauCode },
    /// Rule 4: a witness cosigned more than once (the first repeated).
    #[error("{witness} cosigned twice")]
    DuplicateWitness { witness: BureauCode },
    /// Rule 5: a cosignature is not valid (the first in order).
    #[error("the cosignature of {witness} is not valid")]
    BadCosignature { witness: BureauCode },
    /// Rule 6: fewer valid cosignatures than the quorum.
    #[error("{have} cosignatures, {need} needed")]
    BelowQuorum { have: usize, need: usize },
    /// Rule 7: a later epoch cut the log below the certified size (a revoked key or a retired
    /// bureau): the entries from `from_seq` on that it covers no longer count.
    #[error(
        "a later configuration epoch ({epoch}) cut this log at seq {from_seq}, below the certified size"
    )]
    Cut { from_seq: u64, epoch: u32 },
    /// Rule 8: a later epoch seated a new committee for the log, anchored at `anchor` entries;
    /// the earlier committee's certificates count only up to it.
    #[error(
        "configuration epoch {epoch} seated a new witness committee for this log from size {anchor}; this certificate of size {size} by the committee before counts no more"
    )]
    BeyondHandover { size: u64, anchor: u64, epoch: u32 },
}

impl CertificateError {
    /// Stable snake_case name.
    pub fn name(&self) -> &'static str {
        match self {
            CertificateError::WrongNetwork { .. } => "certificate_wrong_network",
            CertificateError::UnknownEpoch { .. } => "certificate_unknown_epoch",
            CertificateError::UnknownLog { .. } => "certificate_unknown_log",
            CertificateError::UnknownWitness { .. } => "certificate_unknown_witness",
            CertificateError::DuplicateWitness { .. } => "certificate_duplicate_witness",
            CertificateError::BadCosignature { .. } => "certificate_bad_cosignature",
            CertificateError::BelowQuorum { .. } => "certificate_below_quorum",
            CertificateError::Cut { .. } => "certificate_cut",
            CertificateError::NotInCommittee { .. } => "certificate_witness_not_in_committee",
            CertificateError::BeyondHandover { .. } => "certificate_beyond_handover",
        }
    }
}

/// The first checks of a certificate: network, epoch, then log. Returns the epoch.
fn check_checkpoint<'a>(
    checkpoint: &Checkpoint,
    epochs: &'a Epochs,
) -> Result<&'a EpochConfig, CertificateError> {
    if checkpoint.network != epochs.network() {
        return Err(CertificateError::WrongNetwork {
            found: checkpoint.network,
            expected: epochs.network(),
        });
    }
    let Some(epoch) = epochs.get(checkpoint.epoch) else {
        return Err(CertificateError::UnknownEpoch {
            epoch: checkpoint.epoch,
        });
    };
    if !epoch.membership.contains(checkpoint.log) {
        return Err(CertificateError::UnknownLog {
            log: checkpoint.log,
        });
    }
    Ok(epoch)
}

/// A checkpoint cosigned by a quorum of members: the entries it covers are final.
///
/// The canonical form lists cosignatures sorted by witness code; [`Certificate::new`] and
/// [`Certificate::encode`] sort, and [`Certificate::decode`] refuses any other order.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
pub struct Certificate {
    /// The checkpoint vouched for.
    pub checkpoint: Checkpoint,
    /// The witnesses' cosignatures over it.
    pub cosignatures: Vec<Cosignature>,
}

impl Certificate {
    /// A certificate in canonical form (cosignatures sorted by witness).
    pub fn new(checkpoint: Checkpoint, mut cosignatures: Vec<Cosignature>) -> Certificate {
        cosignatures.sort_by_key(|c| c.witness);
        Certificate {
            checkpoint,
            cosignatures,
        }
    }

    /// The witnesses, in the certificate's order.
    pub fn witnesses(&self) -> impl Iterator<Item = BureauCode> + '_ {
        self.cosignatures.iter().map(|c| c.witness)
    }

    /// The canonical encoding: magic ‖ bincode, cosignatures sorted by witness.
    pub fn encode(&self) -> Vec<u8> {
        if self.cosignatures.is_sorted_by_key(|c| c.witness) {
            encoding::encode_with_magic(MAGIC_CERTIFICATE, self)
        } else {
            let sorted = Certificate::new(self.checkpoint, self.cosignatures.clone());
            encoding::encode_with_magic(MAGIC_CERTIFICATE, &sorted)
        }
    }

    /// Decodes a canonical encoding. Refuses, before allocating, a cosignature count above
    /// [`MEMBERS_MAX`], and afterwards cosignatures out of witness order. Duplicate witnesses are
    /// left for [`Certificate::verify`] to name.
    pub fn decode(bytes: &[u8]) -> Result<Certificate, DecodeError> {
        const WHAT: &str = "certificate";
        encoding::check_magic(bytes, MAGIC_CERTIFICATE, WHAT, CERTIFICATE_BYTES_MAX)?;
        if let Some(count) = bytes.get(CHECKPOINT_BYTES..CHECKPOINT_BYTES + 8) {
            let count = u64::from_le_bytes(count.try_into().expect("8 bytes"));
            if count > MEMBERS_MAX as u64 {
                return Err(DecodeError::Malformed {
                    what: WHAT,
                    reason: format!(
                        "{count} cosignatures, more than the {MEMBERS_MAX} members a network may have"
                    ),
                });
            }
        }
        let certificate: Certificate = encoding::decode_exact(&bytes[4..], WHAT)?;
        if !certificate.cosignatures.is_sorted_by_key(|c| c.witness) {
            return Err(DecodeError::Malformed {
                what: WHAT,
                reason: "cosignatures are not sorted by witness".into(),
            });
        }
        Ok(certificate)
    }

    /// Checks the certificate against the membership, in this order (the first failure is
    /// reported):
    ///
    /// 1. the checkpoint is of this network ([`CertificateError::WrongNetwork`]);
    /// 2. its epoch is known ([`CertificateError::UnknownEpoch`]) and its log is a member of it
    ///    ([`CertificateError::UnknownLog`]); the epoch's keys and quorum judge the rest;
    /// 3. every witness is a member ([`CertificateError::UnknownWitness`], the first in order)
    ///    on the log's committee in that epoch ([`CertificateError::NotInCommittee`]);
    /// 4. no witness appears twice ([`CertificateError::DuplicateWitness`]);
    /// 5. every cosignature is valid ([`CertificateError::BadCosignature`], the first in order;
    ///    see [`verify_signatures_batch`]);
    /// 6. there are at least the committee's quorum of them ([`CertificateError::BelowQuorum`];
    ///    the membership's quorum while everyone witnesses);
    /// 7. no later epoch cut the log below the certified size ([`CertificateError::Cut`]);
    /// 8. no later epoch seated a new committee for the log anchored below the certified size
    ///    ([`CertificateError::BeyondHandover`]).
    pub fn verify(&self, epochs: &Epochs) -> Result<(), CertificateError> {
        let epoch = check_checkpoint(&self.checkpoint, epochs)?;
        let log = self.checkpoint.log;
        let mut keys = Vec::with_capacity(self.cosignatures.len());
        for c in &self.cosignatures {
            let Some(key) = epoch.membership.key(c.witness) else {
                return Err(CertificateError::UnknownWitness { witness: c.witness });
            };
            if !epoch.is_witness(log, c.witness) {
                return Err(CertificateError::NotInCommittee { witness: c.witness });
            }
            keys.push(key);
        }
        let mut seen = BTreeSet::new();
        for c in &self.cosignatures {
            if !seen.insert(c.witness) {
                return Err(CertificateError::DuplicateWitness { witness: c.witness });
            }
        }
        let message = self.checkpoint.cosigning_message();
        let items: Vec<(&[u8], &Signature, &VerifyingKey)> = self
            .cosignatures
            .iter()
            .zip(keys)
            .map(|(c, key)| (message.as_slice(), &c.signature, key))
            .collect();
        if let Err(bad) = verify_signatures_batch(&items) {
            return Err(CertificateError::BadCosignature {
                witness: self.cosignatures[bad].witness,
            });
        }
        let (have, need) = (self.cosignatures.len(), epoch.certificate_quorum(log));
        if have < need {
            return Err(CertificateError::BelowQuorum { have, need });
        }
        let c = &self.checkpoint;
        if c.size > 0
            && let Some(cut) = epochs.cut_of(c.log, crate::types::Seq(c.size - 1), c.epoch)
        {
            return Err(CertificateError::Cut {
                from_seq: cut.from_seq.0,
                epoch: cut.epoch,
            });
        }
        if let Some((anchor, seated)) = epochs.handover_cap(c.log, c.epoch)
            && c.size > anchor
        {
            return Err(CertificateError::BeyondHandover {
                size: c.size,
                anchor,
                epoch: seated,
            });
        }
        Ok(())
    }
}

/// Verifies many ed25519 signatures at once; on failure, names the index of the first bad one.
///
/// The verdicts are [`signature::verify_batch`]'s, so each is exactly what
/// [`Signature::verify`] says of that signature alone (the one ZIP-215 rule of
/// [`crate::signature`]): a certificate is valid or not whatever order or company its
/// cosignatures come in.
pub fn verify_signatures_batch(items: &[(&[u8], &Signature, &VerifyingKey)]) -> Result<(), usize> {
    let items: Vec<signature::Item<'_>> = items
        .iter()
        .map(|&(message, signature, key)| signature::Item {
            key,
            message,
            signature,
        })
        .collect();
    match signature::verify_batch(&items).iter().position(|ok| !ok) {
        Some(bad) => Err(bad),
        None => Ok(()),
    }
}

/// What [`CertificateBuilder::add`] did with a cosignature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddOutcome {
    /// Verified and counted: `have` distinct valid cosignatures, `need` for a certificate.
    Counted { have: usize, need: usize },
    /// This witness had already cosigned; ignored.
    Duplicate,
    /// The cosignature is on another checkpoint; ignored.
    OtherCheckpoint,
}

/// Collects cosignatures for one checkpoint until a quorum makes a certificate.
#[derive(Debug, Clone)]
pub struct CertificateBuilder {
    checkpoint: Checkpoint,
    cosignatures: BTreeMap<BureauCode, Cosignature>,
}

impl CertificateBuilder {
    /// A builder for `checkpoint`, with no cosignatures yet.
    pub fn new(checkpoint: Checkpoint) -> CertificateBuilder {
        CertificateBuilder {
            checkpoint,
            cosignatures: BTreeMap::new(),
        }
    }

    /// The checkpoint being certified.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// Number of distinct valid cosignatures collected.
    pub fn count(&self) -> usize {
        self.cosignatures.len()
    }

    /// Offers a cosignature made over `checkpoint`. One on another checkpoint, or from a witness
    /// already counted, is ignored; otherwise it is verified ([`Cosignature::verify`]) and
    /// counted, or refused with the reason.
    pub fn add(
        &mut self,
        epochs: &Epochs,
        checkpoint: &Checkpoint,
        cosignature: Cosignature,
    ) -> Result<AddOutcome, CertificateError> {
        if *checkpoint != self.checkpoint {
            return Ok(AddOutcome::OtherCheckpoint);
        }
        if self.cosignatures.contains_key(&cosignature.witness) {
            return Ok(AddOutcome::Duplicate);
        }
        cosignature.verify(&self.checkpoint, epochs)?;
        self.cosignatures.insert(cosignature.witness, cosignature);
        Ok(AddOutcome::Counted {
            have: self.cosignatures.len(),
            need: quorum_of(epochs, &self.checkpoint),
        })
    }

    /// The certificate, once the checkpoint's epoch's quorum of cosignatures is collected.
    pub fn certificate(&self, epochs: &Epochs) -> Option<Certificate> {
        (self.cosignatures.len() >= quorum_of(epochs, &self.checkpoint)).then(|| Certificate {
            checkpoint: self.checkpoint,
            cosignatures: self.cosignatures.values().copied().collect(),
        })
    }
}

/// The quorum of a checkpoint's log's committee in its epoch (unreachable for an unknown epoch).
fn quorum_of(epochs: &Epochs, checkpoint: &Checkpoint) -> usize {
    epochs
        .get(checkpoint.epoch)
        .map_or(usize::MAX, |e| e.certificate_quorum(checkpoint.log))
}

/// Why a claimed checkpoint fork proves nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForkError {
    /// Checkpoint `side` ("a" or "b") is not validly signed by a member's log.
    #[error("checkpoint {side} of the fork is not valid: {error}")]
    BadCheckpoint {
        side: &'static str,
        error: CheckpointError,
    },
    /// The checkpoints are of two logs.
    #[error("the checkpoints are of different logs ({a} and {b})")]
    DifferentLogs { a: BureauCode, b: BureauCode },
    /// The checkpoints cover different sizes.
    #[error("the checkpoints have different sizes ({a} and {b})")]
    DifferentSizes { a: u64, b: u64 },
    /// The checkpoints agree on the root: no fork.
    #[error("the checkpoints have the same root")]
    SameRoot,
}

impl ForkError {
    /// Stable snake_case name.
    pub fn name(&self) -> &'static str {
        match self {
            ForkError::BadCheckpoint { .. } => "fork_bad_checkpoint",
            ForkError::DifferentLogs { .. } => "fork_different_logs",
            ForkError::DifferentSizes { .. } => "fork_different_sizes",
            ForkError::SameRoot => "fork_same_root",
        }
    }
}

/// Evidence that a log's author equivocated: two checkpoints of its log, both validly signed by
/// it, with the same size and different roots. Checkable with the membership alone.
///
/// Forks between different sizes (a later checkpoint that does not extend an earlier one) need a
/// consistency proof and the entries, so they are not this type's concern.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
pub struct CheckpointFork {
    /// One checkpoint.
    pub a: SignedCheckpoint,
    /// The other, conflicting one.
    pub b: SignedCheckpoint,
}

impl CheckpointFork {
    /// Checks, in order: `a` is valid, `b` is valid, same log, same size, different roots.
    pub fn verify(&self, epochs: &Epochs) -> Result<(), ForkError> {
        self.a
            .verify(epochs)
            .map_err(|error| ForkError::BadCheckpoint { side: "a", error })?;
        self.b
            .verify(epochs)
            .map_err(|error| ForkError::BadCheckpoint { side: "b", error })?;
        let (a, b) = (&self.a.checkpoint, &self.b.checkpoint);
        if a.log != b.log {
            return Err(ForkError::DifferentLogs { a: a.log, b: b.log });
        }
        if a.size != b.size {
            return Err(ForkError::DifferentSizes {
                a: a.size,
                b: b.size,
            });
        }
        if a.root == b.root {
            return Err(ForkError::SameRoot);
        }
        Ok(())
    }
}

/// Serde of 32-byte values as lower-case hex.
mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::types::Hash32;

    pub fn serialize<S: Serializer>(value: &Hash32, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(value))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Hash32, D::Error> {
        let text = String::deserialize(d)?;
        crate::types::parse_hash32(&text).map_err(serde::de::Error::custom)
    }
}

/// Serde of signatures as 128 lower-case hex digits.
mod hex_signature {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::entry::Signature;

    pub fn serialize<S: Serializer>(value: &Signature, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(value.0))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Signature, D::Error> {
        let text = String::deserialize(d)?;
        let mut out = [0u8; 64];
        hex::decode_to_slice(&text, &mut out).map_err(|_| {
            serde::de::Error::custom(format!("expected 128 hexadecimal characters, got {text:?}"))
        })?;
        Ok(Signature(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::membership::{Member, Membership, quorum_for};
    use proptest::prelude::*;

    const NET: &str = "test-net";

    fn code(i: u8) -> BureauCode {
        BureauCode::new(310_100 + u32::from(i)).unwrap()
    }

    fn key(i: u8) -> SigningKey {
        SigningKey::from_bytes(&[i; 32])
    }

    /// Members 1..=n, keys [i; 32], the smallest safe quorum.
    fn membership(n: u8) -> Membership {
        let members = (1..=n).map(|i| Member {
            code: code(i),
            name: format!("bureau {i}"),
            key: key(i).verifying_key(),
        });
        Membership::new(NET, members, quorum_for(n as usize)).unwrap()
    }

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            network: NetworkId::from_name(NET),
            epoch: 0,
            log: code(1),
            size: 42,
            root: [7; 32],
            time_ms: 1_700_000_000_000,
        }
    }

    fn cosign(c: &Checkpoint, i: u8) -> Cosignature {
        Cosignature::sign(c, code(i), &key(i))
    }

    /// A certificate of `checkpoint()` cosigned by members `who`.
    fn certificate(who: impl IntoIterator<Item = u8>) -> Certificate {
        let c = checkpoint();
        Certificate::new(c, who.into_iter().map(|i| cosign(&c, i)).collect())
    }

    #[test]
    fn checkpoint_encoding_has_the_documented_layout() {
        // An epoch whose bytes show where the field sits.
        let c = Checkpoint {
            epoch: 0x0403_0201,
            ..checkpoint()
        };
        let mut want = b"HKC\x02".to_vec();
        want.extend_from_slice(&c.network.0);
        want.extend_from_slice(&[1, 2, 3, 4]);
        want.extend_from_slice(&310_101u32.to_le_bytes());
        want.extend_from_slice(&42u64.to_le_bytes());
        want.extend_from_slice(&[7; 32]);
        want.extend_from_slice(&1_700_000_000_000u64.to_le_bytes());
        assert_eq!(c.encode(), want);
        assert_eq!(c.encode().len(), CHECKPOINT_BYTES);
        assert_eq!(Checkpoint::decode(&want), Ok(c));
        let mut message = DOMAIN_COSIGNATURE.to_vec();
        message.extend_from_slice(&want);
        assert_eq!(c.cosigning_message(), message);
        assert_ne!(c.signing_message(), c.cosigning_message());
    }

    #[test]
    fn signed_checkpoint_round_trips_and_verifies() {
        let m = membership(4);
        let signed = checkpoint().sign(&key(1));
        assert_eq!(
            signed.verify(&crate::config::Epochs::of_membership(m.clone())),
            Ok(())
        );
        let bytes = signed.encode();
        assert_eq!(bytes.len(), SIGNED_CHECKPOINT_BYTES);
        assert_eq!(SignedCheckpoint::decode(&bytes), Ok(signed.clone()));
        assert!(matches!(
            SignedCheckpoint::decode(&bytes[..bytes.len() - 1]),
            Err(DecodeError::Truncated { .. })
        ));
        let json = serde_json::to_string(&signed).unwrap();
        assert!(json.contains(&hex::encode([7u8; 32])), "{json}");
        assert_eq!(
            serde_json::from_str::<SignedCheckpoint>(&json).unwrap(),
            signed
        );
    }

    #[test]
    fn signed_checkpoint_errors_name_the_rule() {
        let m = membership(4);
        let other_net = Membership::new(
            "other-net",
            m.members().cloned().collect::<Vec<_>>(),
            m.quorum(),
        )
        .unwrap();
        let signed = checkpoint().sign(&key(1));
        assert_eq!(
            signed.verify(&crate::config::Epochs::of_membership(other_net.clone())),
            Err(CheckpointError::WrongNetwork {
                found: m.network(),
                expected: other_net.network()
            })
        );
        let stranger = Checkpoint {
            log: code(9),
            ..checkpoint()
        }
        .sign(&key(9));
        assert_eq!(
            stranger.verify(&crate::config::Epochs::of_membership(m.clone())),
            Err(CheckpointError::UnknownLog { log: code(9) })
        );
        let forged = checkpoint().sign(&key(2));
        let err = forged
            .verify(&crate::config::Epochs::of_membership(m.clone()))
            .unwrap_err();
        assert_eq!(err, CheckpointError::BadSignature { log: code(1) });
        assert_eq!(err.name(), "checkpoint_bad_signature");
        // A cosignature is not an author signature, even by the author's own key.
        let cosig = cosign(&checkpoint(), 1);
        let disguised = SignedCheckpoint {
            checkpoint: checkpoint(),
            signature: cosig.signature,
        };
        assert_eq!(
            disguised.verify(&crate::config::Epochs::of_membership(m.clone())),
            Err(CheckpointError::BadSignature { log: code(1) })
        );
    }

    #[test]
    fn cosignature_round_trips_and_verifies() {
        let m = membership(4);
        let c = checkpoint();
        let cosig = cosign(&c, 3);
        assert_eq!(
            cosig.verify(&c, &crate::config::Epochs::of_membership(m.clone())),
            Ok(())
        );
        let later = Checkpoint { size: 43, ..c };
        assert_eq!(
            cosig.verify(&later, &crate::config::Epochs::of_membership(m.clone())),
            Err(CertificateError::BadCosignature { witness: code(3) })
        );
        let json = serde_json::to_string(&cosig).unwrap();
        assert_eq!(serde_json::from_str::<Cosignature>(&json).unwrap(), cosig);
    }

    #[test]
    fn certificate_at_quorum_passes_and_one_below_fails() {
        for n in [1u8, 2, 3, 4, 7, 10] {
            let m = membership(n);
            let q = m.quorum() as u8;
            assert_eq!(
                certificate(1..=q).verify(&crate::config::Epochs::of_membership(m.clone())),
                Ok(()),
                "n={n}"
            );
            assert_eq!(
                certificate(1..=n).verify(&crate::config::Epochs::of_membership(m.clone())),
                Ok(()),
                "n={n}"
            );
            assert_eq!(
                certificate(1..q).verify(&crate::config::Epochs::of_membership(m.clone())),
                Err(CertificateError::BelowQuorum {
                    have: q as usize - 1,
                    need: q as usize
                }),
                "n={n}"
            );
        }
    }

    #[test]
    fn each_certificate_error_is_produced_exactly() {
        let m = membership(4); // quorum 3
        let c = checkpoint();

        let mut wrong_net = certificate([1, 2, 3]);
        wrong_net.checkpoint.network = NetworkId::from_name("other-net");
        let err = wrong_net
            .verify(&crate::config::Epochs::of_membership(m.clone()))
            .unwrap_err();
        assert_eq!(
            err,
            CertificateError::WrongNetwork {
                found: NetworkId::from_name("other-net"),
                expected: m.network()
            }
        );
        assert_eq!(err.name(), "certificate_wrong_network");

        let mut unknown_log = certificate([1, 2, 3]);
        unknown_log.checkpoint.log = code(9);
        let err = unknown_log
            .verify(&crate::config::Epochs::of_membership(m.clone()))
            .unwrap_err();
        assert_eq!(err, CertificateError::UnknownLog { log: code(9) });
        assert_eq!(err.name(), "certificate_unknown_log");

        // An unknown witness is reported before a duplicate and a bad signature.
        let mut cosigs = vec![cosign(&c, 1), cosign(&c, 1), cosign(&c, 9)];
        cosigs[0].signature.0[0] ^= 1;
        let err = Certificate::new(c, cosigs)
            .verify(&crate::config::Epochs::of_membership(m.clone()))
            .unwrap_err();
        assert_eq!(err, CertificateError::UnknownWitness { witness: code(9) });
        assert_eq!(err.name(), "certificate_unknown_witness");

        let cosigs = vec![cosign(&c, 1), cosign(&c, 2), cosign(&c, 2), cosign(&c, 3)];
        let err = Certificate::new(c, cosigs)
            .verify(&crate::config::Epochs::of_membership(m.clone()))
            .unwrap_err();
        assert_eq!(err, CertificateError::DuplicateWitness { witness: code(2) });
        assert_eq!(err.name(), "certificate_duplicate_witness");

        // Two bad cosignatures: the first in order is named.
        let mut cosigs = vec![cosign(&c, 1), cosign(&c, 2), cosign(&c, 3), cosign(&c, 4)];
        cosigs[3] = Cosignature::sign(&c, code(4), &key(1));
        cosigs[2].signature.0[40] ^= 0x80;
        let err = Certificate::new(c, cosigs)
            .verify(&crate::config::Epochs::of_membership(m.clone()))
            .unwrap_err();
        assert_eq!(err, CertificateError::BadCosignature { witness: code(3) });
        assert_eq!(err.name(), "certificate_bad_cosignature");

        // Bad signatures are reported even when there are too few of them to matter.
        let mut cosigs = vec![cosign(&c, 1)];
        cosigs[0].signature.0[0] ^= 1;
        assert_eq!(
            Certificate::new(c, cosigs).verify(&crate::config::Epochs::of_membership(m.clone())),
            Err(CertificateError::BadCosignature { witness: code(1) })
        );

        let err = certificate([])
            .verify(&crate::config::Epochs::of_membership(m.clone()))
            .unwrap_err();
        assert_eq!(err, CertificateError::BelowQuorum { have: 0, need: 3 });
        assert_eq!(err.name(), "certificate_below_quorum");
    }

    #[test]
    fn batch_helper_names_the_first_bad_signature() {
        let msgs: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 10]).collect();
        let keys: Vec<VerifyingKey> = (1..=5).map(|i| key(i).verifying_key()).collect();
        let mut sigs: Vec<Signature> = (0..5)
            .map(|i| Signature::sign(&key(i as u8 + 1), &msgs[i]))
            .collect();
        let items = |sigs: &[Signature]| -> Result<(), usize> {
            let items: Vec<(&[u8], &Signature, &VerifyingKey)> = (0..5)
                .map(|i| (msgs[i].as_slice(), &sigs[i], &keys[i]))
                .collect();
            verify_signatures_batch(&items)
        };
        assert_eq!(verify_signatures_batch(&[]), Ok(()));
        assert_eq!(items(&sigs), Ok(()));
        sigs[4].0[5] ^= 1;
        sigs[2] = Signature::sign(&key(1), &msgs[2]);
        assert_eq!(items(&sigs), Err(2));
        // A non-canonical s (s + the group order) is refused by batch and single alike.
        let mut sigs: Vec<Signature> = (0..5)
            .map(|i| Signature::sign(&key(i as u8 + 1), &msgs[i]))
            .collect();
        sigs[1].0[63] |= 0xf0;
        assert_eq!(items(&sigs), Err(1));
    }

    #[test]
    fn builder_collects_until_quorum_and_ignores_noise() {
        let m = membership(4); // quorum 3
        let c = checkpoint();
        let other = Checkpoint { size: 41, ..c };
        let mut b = CertificateBuilder::new(c);
        assert_eq!(
            b.add(
                &crate::config::Epochs::of_membership(m.clone()),
                &c,
                cosign(&c, 1)
            ),
            Ok(AddOutcome::Counted { have: 1, need: 3 })
        );
        assert_eq!(
            b.add(
                &crate::config::Epochs::of_membership(m.clone()),
                &c,
                cosign(&c, 1)
            ),
            Ok(AddOutcome::Duplicate)
        );
        assert_eq!(
            b.add(
                &crate::config::Epochs::of_membership(m.clone()),
                &other,
                cosign(&other, 2)
            ),
            Ok(AddOutcome::OtherCheckpoint)
        );
        let mut bad = cosign(&c, 2);
        bad.signature.0[0] ^= 1;
        assert_eq!(
            b.add(&crate::config::Epochs::of_membership(m.clone()), &c, bad),
            Err(CertificateError::BadCosignature { witness: code(2) })
        );
        assert_eq!(
            b.add(
                &crate::config::Epochs::of_membership(m.clone()),
                &c,
                Cosignature::sign(&c, code(9), &key(9))
            ),
            Err(CertificateError::UnknownWitness { witness: code(9) })
        );
        assert_eq!(
            b.add(
                &crate::config::Epochs::of_membership(m.clone()),
                &c,
                cosign(&c, 4)
            ),
            Ok(AddOutcome::Counted { have: 2, need: 3 })
        );
        assert_eq!(
            b.certificate(&crate::config::Epochs::of_membership(m.clone())),
            None
        );
        assert_eq!(
            b.add(
                &crate::config::Epochs::of_membership(m.clone()),
                &c,
                cosign(&c, 2)
            ),
            Ok(AddOutcome::Counted { have: 3, need: 3 })
        );
        let cert = b
            .certificate(&crate::config::Epochs::of_membership(m.clone()))
            .unwrap();
        assert_eq!(
            cert.verify(&crate::config::Epochs::of_membership(m.clone())),
            Ok(())
        );
        assert_eq!(
            cert.witnesses().collect::<Vec<_>>(),
            vec![code(1), code(2), code(4)]
        );
        assert_eq!(b.count(), 3);
        assert_eq!(b.checkpoint(), &c);
    }

    #[test]
    fn certificate_encoding_is_canonical() {
        let m = membership(4);
        let cert = certificate([3, 1, 2]);
        assert_eq!(
            cert.witnesses().collect::<Vec<_>>(),
            vec![code(1), code(2), code(3)]
        );
        let bytes = cert.encode();
        assert_eq!(bytes.len(), CHECKPOINT_BYTES + 8 + 3 * COSIGNATURE_BYTES);
        assert_eq!(&bytes[..4], b"HKT\x02");
        assert_eq!(&bytes[4..CHECKPOINT_BYTES], &cert.checkpoint.encode()[4..]);
        let decoded = Certificate::decode(&bytes).unwrap();
        assert_eq!(decoded, cert);
        assert_eq!(
            decoded.verify(&crate::config::Epochs::of_membership(m.clone())),
            Ok(())
        );

        // An unsorted in-memory certificate still encodes canonically.
        let mut shuffled = cert.clone();
        shuffled.cosignatures.swap(0, 2);
        assert_eq!(shuffled.encode(), bytes);
        // But unsorted bytes are refused.
        let mut unsorted = bytes.clone();
        let at = |i: usize| CHECKPOINT_BYTES + 8 + i * COSIGNATURE_BYTES;
        let first: Vec<u8> = unsorted[at(0)..at(1)].to_vec();
        let second: Vec<u8> = unsorted[at(1)..at(2)].to_vec();
        unsorted[at(0)..at(1)].copy_from_slice(&second);
        unsorted[at(1)..at(2)].copy_from_slice(&first);
        assert!(matches!(
            Certificate::decode(&unsorted),
            Err(DecodeError::Malformed { .. })
        ));
        // A huge count is refused before anything is allocated.
        let mut huge = bytes.clone();
        huge[CHECKPOINT_BYTES..CHECKPOINT_BYTES + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            Certificate::decode(&huge),
            Err(DecodeError::Malformed { .. })
        ));
        let json = serde_json::to_string(&cert).unwrap();
        assert_eq!(serde_json::from_str::<Certificate>(&json).unwrap(), cert);
    }

    #[test]
    fn checkpoint_fork_is_verifiable_with_the_membership_alone() {
        let m = membership(4);
        let a = checkpoint().sign(&key(1));
        let b = Checkpoint {
            root: [8; 32],
            time_ms: checkpoint().time_ms + 1,
            ..checkpoint()
        }
        .sign(&key(1));
        let fork = CheckpointFork {
            a: a.clone(),
            b: b.clone(),
        };
        assert_eq!(
            fork.verify(&crate::config::Epochs::of_membership(m.clone())),
            Ok(())
        );

        let same = CheckpointFork {
            a: a.clone(),
            b: Checkpoint {
                time_ms: 1,
                ..checkpoint()
            }
            .sign(&key(1)),
        };
        assert_eq!(
            same.verify(&crate::config::Epochs::of_membership(m.clone())),
            Err(ForkError::SameRoot)
        );

        let longer = Checkpoint {
            size: 43,
            ..b.checkpoint
        }
        .sign(&key(1));
        let sizes = CheckpointFork {
            a: a.clone(),
            b: longer,
        };
        assert_eq!(
            sizes.verify(&crate::config::Epochs::of_membership(m.clone())),
            Err(ForkError::DifferentSizes { a: 42, b: 43 })
        );

        let other_log = Checkpoint {
            log: code(2),
            ..b.checkpoint
        }
        .sign(&key(2));
        let logs = CheckpointFork {
            a: a.clone(),
            b: other_log,
        };
        assert_eq!(
            logs.verify(&crate::config::Epochs::of_membership(m.clone())),
            Err(ForkError::DifferentLogs {
                a: code(1),
                b: code(2)
            })
        );

        let mut forged = b.clone();
        forged.signature.0[0] ^= 1;
        let err = CheckpointFork { a, b: forged }
            .verify(&crate::config::Epochs::of_membership(m.clone()))
            .unwrap_err();
        assert_eq!(
            err,
            ForkError::BadCheckpoint {
                side: "b",
                error: CheckpointError::BadSignature { log: code(1) }
            }
        );
        assert_eq!(err.name(), "fork_bad_checkpoint");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn tampering_any_byte_of_a_certificate_is_caught(at in any::<prop::sample::Index>(), xor in 1u8..=255) {
            let m = membership(4);
            let mut bytes = certificate([1, 2, 3]).encode();
            let i = at.index(bytes.len());
            bytes[i] ^= xor;
            if let Ok(cert) = Certificate::decode(&bytes) {
                prop_assert!(cert.verify(&crate::config::Epochs::of_membership(m.clone())).is_err(), "tampered byte {} accepted", i);
            }
        }

        #[test]
        fn decoding_random_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..700)) {
            let _ = Checkpoint::decode(&bytes);
            let _ = SignedCheckpoint::decode(&bytes);
            let _ = Certificate::decode(&bytes);
            let mut prefixed = b"HKC\x01".to_vec();
            prefixed.extend_from_slice(&bytes);
            let _ = Checkpoint::decode(&prefixed);
            let _ = SignedCheckpoint::decode(&prefixed);
            let mut prefixed = b"HKT\x01".to_vec();
            prefixed.extend_from_slice(&bytes);
            let _ = Certificate::decode(&prefixed);
        }

        #[test]
        fn decoding_certificates_with_random_cosignatures_never_panics(
            count in 0u64..8, body in prop::collection::vec(any::<u8>(), 0..600),
        ) {
            let mut bytes = b"HKT\x01".to_vec();
            bytes.extend_from_slice(&checkpoint().encode()[4..]);
            bytes.extend_from_slice(&count.to_le_bytes());
            bytes.extend_from_slice(&body);
            if let Ok(cert) = Certificate::decode(&bytes) {
                let _ = cert.verify(&crate::config::Epochs::of_membership(membership(4)));
            }
        }
    }
}
