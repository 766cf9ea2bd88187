//! Fraud proofs: self-contained evidence that a member broke I3 (signed two different entries at
//! one position of its log). Verifiable with the genesis alone.

use crate::config::Epochs;
use crate::encoding::{self, DecodeError, MAGIC_FRAUD_PROOF};
use crate::entry::SignedEntry;
use crate::limits::ENTRY_BYTES_MAX;
use crate::types::{BureauCode, Seq};

/// Two validly signed entries by one author at one seq, with different hashes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FraudProof {
    pub first: SignedEntry,
    pub second: SignedEntry,
}

/// Why a fraud proof does not prove anything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FraudProofError {
    #[error("the two entries have different authors or positions")]
    DifferentPositions,
    #[error("the two entries are identical")]
    SameEntry,
    #[error("entry author {0} is not a member")]
    UnknownAuthor(BureauCode),
    #[error("an entry belongs to another network")]
    WrongNetwork,
    #[error("the {0} entry's signature does not verify")]
    BadSignature(&'static str),
    /// An entry a configuration cut refuses (signed with a revoked key, or by a retired bureau,
    /// at or after the cut): it proves nothing against the bureau, whose log from there is
    /// signed under the new key.
    #[error(
        "the {0} entry is at or after a cut of its log and names an earlier epoch: it does not count"
    )]
    Cut(&'static str),
}

impl FraudProof {
    /// A proof from two entries, ordered by hash so the same pair always makes the same proof.
    pub fn new(a: SignedEntry, b: SignedEntry) -> FraudProof {
        if a.hash() <= b.hash() {
            FraudProof {
                first: a,
                second: b,
            }
        } else {
            FraudProof {
                first: b,
                second: a,
            }
        }
    }

    /// The equivocating author.
    pub fn author(&self) -> BureauCode {
        self.first.entry().author
    }

    /// The position signed twice.
    pub fn seq(&self) -> Seq {
        self.first.entry().seq
    }

    /// Checks the proof against the configuration alone: each entry verifies under its author's
    /// key of the epoch it names.
    pub fn verify(&self, epochs: &Epochs) -> Result<(), FraudProofError> {
        let (a, b) = (self.first.entry(), self.second.entry());
        if a.author != b.author || a.seq != b.seq {
            return Err(FraudProofError::DifferentPositions);
        }
        if self.first.hash() == self.second.hash() {
            return Err(FraudProofError::SameEntry);
        }
        if a.network != epochs.network() || b.network != epochs.network() {
            return Err(FraudProofError::WrongNetwork);
        }
        let key_of = |epoch: u32| {
            epochs
                .get(epoch)
                .and_then(|c| c.membership.key(a.author))
                .ok_or(FraudProofError::UnknownAuthor(a.author))
        };
        if !self.first.verify(key_of(a.epoch)?) {
            return Err(FraudProofError::BadSignature("first"));
        }
        if !self.second.verify(key_of(b.epoch)?) {
            return Err(FraudProofError::BadSignature("second"));
        }
        for (side, e) in [("first", a), ("second", b)] {
            if epochs.cut_of(e.author, e.seq, e.epoch).is_some() {
                return Err(FraudProofError::Cut(side));
            }
        }
        Ok(())
    }

    /// Canonical bytes: `"HKF" 0x01` ‖ bincode((first signed entry bytes, second signed entry bytes)).
    pub fn encode(&self) -> Vec<u8> {
        encoding::encode_with_magic(
            MAGIC_FRAUD_PROOF,
            &(self.first.encode(), self.second.encode()),
        )
    }

    /// Decodes canonical bytes.
    pub fn decode(bytes: &[u8]) -> Result<FraudProof, DecodeError> {
        let (a, b): (Vec<u8>, Vec<u8>) = encoding::decode_with_magic(
            bytes,
            MAGIC_FRAUD_PROOF,
            "fraud proof",
            2 * ENTRY_BYTES_MAX + 64,
        )?;
        Ok(FraudProof {
            first: SignedEntry::decode(&a)?,
            second: SignedEntry::decode(&b)?,
        })
    }
}
