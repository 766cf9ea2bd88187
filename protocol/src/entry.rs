//! Entries: what a bureau signs into its own log, their bodies, and how they are hashed and
//! signed.
//!
//! Byte layouts (all integers little-endian, fixed width; enum variants as `u32`; `Option` as a
//! `u8` 0/1 then the value; `Vec` and strings as a `u64` length then the items):
//!
//! - content = `"HKE" 0x02` ‖ bincode(`Entry`)
//! - entry hash = SHA-256(`0x00` ‖ content): the RFC 6962 leaf hash, so one hash serves as the
//!   `prev` link, the target of references and the Merkle leaf
//! - signature = ed25519 over `DOMAIN_ENTRY_SIGNATURE` ‖ entry hash, by the author's key
//! - signed entry on the wire and on disk = content ‖ signature (64 bytes)

use bincode::{Decode, Encode};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::encoding::{self, DOMAIN_ENTRY_SIGNATURE, DecodeError, MAGIC_ENTRY};
use crate::limits::ENTRY_BYTES_MAX;
use crate::types::{
    BureauCode, Digest, EntryHash, EntryRef, HouseholdId, NetworkId, PersonTag, Seq,
};
use crate::vocabulary::{CancellationReason, Category, RefusalReason, Relation};

/// One act of one bureau, before it is signed.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Entry {
    /// The network this entry belongs to; an entry of another network is never valid here.
    pub network: NetworkId,
    /// The configuration epoch the author signed it under (`config`): its membership and keys
    /// judge the entry. Never decreases within a log.
    pub epoch: u32,
    /// The bureau whose log this is, and whose key signs it.
    pub author: BureauCode,
    /// Position in the author's log: 0 first, no gaps.
    pub seq: Seq,
    /// Hash of the entry at `seq - 1`, or zero for the first entry.
    pub prev: EntryHash,
    /// When the bureau recorded the act, in milliseconds since the Unix epoch (UTC). Never
    /// decreases within a log. Deadlines and permit expiry are judged by this time, never by the
    /// clock of whoever replays the entry.
    pub time_ms: u64,
    /// What was done.
    pub body: Body,
}

/// Where a person joins: a household of the acting bureau and the relation to its head.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Encode, Decode, Serialize, Deserialize)]
pub struct Placement {
    pub household: HouseholdId,
    pub relation: Relation,
}

/// What an entry records. Every body names the person by tag, never by ID number or name.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum Body {
    /// Import of an existing registration (opening balance), or a first registration. Takes
    /// effect only by consuming `claim`, a [`Body::Claim`] on the person granted to the author
    /// by the person's arbiter (see `rules`: nobody is registered twice).
    Enrol {
        person: PersonTag,
        placement: Placement,
        claim: EntryRef,
    },
    /// Newborn registration (出生登记). Like `Enrol`, consumes a claim. `born_on` is the birth
    /// date as the number YYYYMMDD (China time), read from the citizen ID: the rulebook checks
    /// that it is a real date, not after the entry's time and not too long before it for a
    /// newborn.
    Birth {
        person: PersonTag,
        placement: Placement,
        claim: EntryRef,
        born_on: u32,
    },
    /// 准迁证: the author (destination) allows `person` to move in from `origin`.
    Permit {
        person: PersonTag,
        origin: BureauCode,
        category: Category,
        /// The last instant, in ms since the epoch, at which the origin may still act on it.
        valid_until_ms: u64,
        /// Digest of the supporting materials, kept off the ledger.
        materials: Digest,
        /// For `Category::ReturnAfterError`: the erroneous registration this transfer reverses.
        corrects: Option<EntryRef>,
    },
    /// The origin declines a permit.
    Refusal {
        permit: EntryRef,
        reason: RefusalReason,
    },
    /// 迁出: the origin removes the person, consuming the permit. When the person heads a
    /// household that keeps other members, `new_head` names who heads it now (变更户主).
    Deregistration {
        permit: EntryRef,
        person: PersonTag,
        new_head: Option<PersonTag>,
    },
    /// 落户: the destination registers the person, consuming the deregistration.
    Registration {
        deregistration: EntryRef,
        person: PersonTag,
        placement: Placement,
    },
    /// The destination withdraws its own permit before it is consumed.
    Revocation { permit: EntryRef },
    /// 注销: death, emigration, enlistment and the like.
    Cancellation {
        person: PersonTag,
        reason: CancellationReason,
        new_head: Option<PersonTag>,
    },
    /// 变更户主: a member of the household becomes its head.
    HeadChange {
        household: HouseholdId,
        new_head: PersonTag,
    },
    /// The person's arbiter (the one member whose log decides who may register a person
    /// with no registration, `Membership::arbiter`) grants `claimant` the right to register
    /// `person` once, by one `Enrol` or `Birth`. `after` is the cancellation that ended the
    /// person's previous registration, or `None` for a person never registered. The arbiter's
    /// log holds at most one claim per (person, after): two bureaus registering one person
    /// out of nowhere can never both succeed.
    Claim {
        person: PersonTag,
        claimant: BureauCode,
        after: Option<EntryRef>,
    },
}

/// The kinds of body, for tables, metrics and error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BodyKind {
    Enrol,
    Birth,
    Permit,
    Refusal,
    Deregistration,
    Registration,
    Revocation,
    Cancellation,
    HeadChange,
    Claim,
}

impl BodyKind {
    /// Stable kebab-case name.
    pub fn name(self) -> &'static str {
        match self {
            BodyKind::Enrol => "enrol",
            BodyKind::Birth => "birth",
            BodyKind::Permit => "permit",
            BodyKind::Refusal => "refusal",
            BodyKind::Deregistration => "deregistration",
            BodyKind::Registration => "registration",
            BodyKind::Revocation => "revocation",
            BodyKind::Cancellation => "cancellation",
            BodyKind::HeadChange => "head-change",
            BodyKind::Claim => "claim",
        }
    }

    /// All kinds, in declaration order.
    pub const ALL: [BodyKind; 10] = [
        BodyKind::Enrol,
        BodyKind::Birth,
        BodyKind::Permit,
        BodyKind::Refusal,
        BodyKind::Deregistration,
        BodyKind::Registration,
        BodyKind::Revocation,
        BodyKind::Cancellation,
        BodyKind::HeadChange,
        BodyKind::Claim,
    ];
}

impl std::fmt::Display for BodyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Body {
    /// The kind of this body.
    pub fn kind(&self) -> BodyKind {
        match self {
            Body::Enrol { .. } => BodyKind::Enrol,
            Body::Birth { .. } => BodyKind::Birth,
            Body::Permit { .. } => BodyKind::Permit,
            Body::Refusal { .. } => BodyKind::Refusal,
            Body::Deregistration { .. } => BodyKind::Deregistration,
            Body::Registration { .. } => BodyKind::Registration,
            Body::Revocation { .. } => BodyKind::Revocation,
            Body::Cancellation { .. } => BodyKind::Cancellation,
            Body::HeadChange { .. } => BodyKind::HeadChange,
            Body::Claim { .. } => BodyKind::Claim,
        }
    }

    /// The entries of other (or the same) logs this body references; an entry is applied only
    /// after everything it references.
    pub fn references(&self) -> impl Iterator<Item = EntryRef> {
        let (a, b) = match self {
            Body::Permit { corrects, .. } => (*corrects, None),
            Body::Refusal { permit, .. } => (Some(*permit), None),
            Body::Deregistration { permit, .. } => (Some(*permit), None),
            Body::Registration { deregistration, .. } => (Some(*deregistration), None),
            Body::Revocation { permit } => (Some(*permit), None),
            Body::Enrol { claim, .. } | Body::Birth { claim, .. } => (Some(*claim), None),
            Body::Claim { after, .. } => (*after, None),
            Body::Cancellation { .. } | Body::HeadChange { .. } => (None, None),
        };
        a.into_iter().chain(b)
    }
}

/// An ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Encode, Decode)]
pub struct Signature(pub [u8; 64]);

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signature({}…)", hex::encode(&self.0[..6]))
    }
}

impl Signature {
    /// Signs `message` with `key`.
    pub fn sign(key: &SigningKey, message: &[u8]) -> Signature {
        Signature(key.sign(message).to_bytes())
    }

    /// Whether this is a valid signature on `message` under `key`, by the protocol's one rule
    /// ([`crate::signature::verify`], ZIP-215), the rule batch verification also applies.
    pub fn verify(&self, key: &VerifyingKey, message: &[u8]) -> bool {
        crate::signature::verify(key, message, self)
    }
}

/// The message an author signs for an entry hash.
pub fn entry_signing_message(hash: &EntryHash) -> [u8; DOMAIN_ENTRY_SIGNATURE.len() + 32] {
    let mut msg = [0u8; DOMAIN_ENTRY_SIGNATURE.len() + 32];
    msg[..DOMAIN_ENTRY_SIGNATURE.len()].copy_from_slice(DOMAIN_ENTRY_SIGNATURE);
    msg[DOMAIN_ENTRY_SIGNATURE.len()..].copy_from_slice(&hash.0);
    msg
}

impl Entry {
    /// The canonical content encoding: magic, version, bincode.
    pub fn encode(&self) -> Vec<u8> {
        encoding::encode_with_magic(MAGIC_ENTRY, self)
    }

    /// The entry hash of a content encoding: SHA-256(0x00 ‖ content).
    pub fn hash_content(content: &[u8]) -> EntryHash {
        let mut h = Sha256::new();
        h.update([crate::merkle::LEAF_PREFIX]);
        h.update(content);
        EntryHash(h.finalize().into())
    }

    /// The hash of this entry.
    pub fn hash(&self) -> EntryHash {
        Self::hash_content(&self.encode())
    }

    /// Signs the entry with the author's key.
    pub fn sign(self, key: &SigningKey) -> SignedEntry {
        let content = self.encode();
        let hash = Self::hash_content(&content);
        let signature = Signature::sign(key, &entry_signing_message(&hash));
        SignedEntry {
            entry: self,
            signature,
            hash,
            content_len: content.len() as u32,
        }
    }
}

/// An entry with its author's signature and its hash, computed once.
///
/// Fields are private so the cached hash always matches the entry: the only ways to make one are
/// [`Entry::sign`], [`SignedEntry::decode`] and [`SignedEntry::from_parts`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedEntry {
    entry: Entry,
    signature: Signature,
    hash: EntryHash,
    content_len: u32,
}

impl SignedEntry {
    /// An entry with a signature that may or may not be valid (used by tests and adversaries;
    /// the rulebook checks signatures).
    pub fn from_parts(entry: Entry, signature: Signature) -> SignedEntry {
        let content = entry.encode();
        let hash = Entry::hash_content(&content);
        SignedEntry {
            entry,
            signature,
            hash,
            content_len: content.len() as u32,
        }
    }

    /// The entry.
    pub fn entry(&self) -> &Entry {
        &self.entry
    }

    /// The signature.
    pub fn signature(&self) -> &Signature {
        &self.signature
    }

    /// The entry hash (Merkle leaf hash).
    pub fn hash(&self) -> EntryHash {
        self.hash
    }

    /// The reference to this entry.
    pub fn reference(&self) -> EntryRef {
        EntryRef {
            author: self.entry.author,
            seq: self.entry.seq,
            hash: self.hash,
        }
    }

    /// The message the signature covers.
    pub fn signing_message(&self) -> [u8; DOMAIN_ENTRY_SIGNATURE.len() + 32] {
        entry_signing_message(&self.hash)
    }

    /// Whether the signature is valid under `key` ([`crate::signature::verify`]).
    pub fn verify(&self, key: &VerifyingKey) -> bool {
        self.signature.verify(key, &self.signing_message())
    }

    /// Length of the wire form.
    pub fn encoded_len(&self) -> usize {
        self.content_len as usize + 64
    }

    /// The wire and disk form: content ‖ signature.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(&MAGIC_ENTRY);
        encoding::encode_into(&self.entry, &mut out);
        out.extend_from_slice(&self.signature.0);
        out
    }

    /// Decodes the wire form, refusing oversized, truncated, trailing or unknown-version input.
    pub fn decode(bytes: &[u8]) -> Result<SignedEntry, DecodeError> {
        encoding::check_magic(bytes, MAGIC_ENTRY, "signed entry", ENTRY_BYTES_MAX)?;
        if bytes.len() < 4 + 64 {
            return Err(DecodeError::Truncated {
                len: bytes.len(),
                needed: 4 + 64,
            });
        }
        let (content, sig) = bytes.split_at(bytes.len() - 64);
        let entry: Entry = encoding::decode_exact(&content[4..], "signed entry")?;
        let hash = Entry::hash_content(content);
        let signature = Signature(sig.try_into().expect("split at 64"));
        Ok(SignedEntry {
            entry,
            signature,
            hash,
            content_len: content.len() as u32,
        })
    }
}
