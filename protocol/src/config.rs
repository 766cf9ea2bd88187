//! The network's configuration over time: epochs, and the signed updates that make them.
//!
//! The genesis founds epoch 0: its members and their keys, quorum, addresses, administrators and
//! threshold, the built-in working-day calendar and the deadline rules. Every later epoch is made
//! by one [`SignedUpdate`] of the epoch before it, signed by at least `threshold` of that epoch's
//! administrators. The updates form their own append-only log, chained by hash, so every node and
//! every auditor holding the same updates reaches the same epoch sequence ([`Epochs`]).
//!
//! Byte layouts (the canonical encoding of `encoding`):
//!
//! - update = `"HKU" 0x01` ‖ bincode(`ConfigUpdate`)
//! - update hash = SHA-256(update); epoch 0's hash is the genesis hash
//! - an administrator signs `DOMAIN_CONFIG_SIGNATURE` ‖ update hash
//! - signed update = `"HKS" 0x01` ‖ bincode((update, [(admin key (32), signature (64))]))
//!
//! # The epoch in force (ARCHITECTURE.md, "Membership over time")
//!
//! Every entry names, in its header, the epoch its author signed it under. The epoch in force at
//! position `s` of log `B` is the epoch its entry names, and that entry is valid only if
//! (checked by `rules`, in this order): the epoch is in the configuration log (else the entry
//! waits for it); `B` is a member in that epoch and the entry verifies under `B`'s key of that
//! epoch; no cut of `B` ([`Cut`]: a key revocation or a retirement, in any epoch the log holds)
//! starts at or below `s` in an epoch later than the named one; and the named epoch is not
//! below the epoch of `B`'s entry at `s - 1`. Everything else an entry's validity depends on
//! (who its permit may name, who arbitrates a person, which key signs) is read from the epoch in
//! force. So for one configuration log, every entry has one verdict, whatever order anything
//! arrived in; a new update can only (a) let waiting entries be judged and (b) through a cut,
//! refuse entries at or above a named position that an earlier epoch still allowed.
//!
//! Deadlines are judged with the deadline rules of the epoch in force at the entry that starts
//! the clock, and the calendar of the latest epoch: published calendar years never change (an
//! update may only add a year), so a deadline computed before a year was added is computed the
//! same after it, and one that needed a missing year is reported as such, never guessed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bincode::{Decode, Encode};
use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest as _, Sha256};

use crate::calendar::Calendar;
use crate::checkpoint::Certificate;
use crate::committee::{
    Anchor, COMMITTEE_SIZE_MAX, COMMITTEE_SIZE_MIN, Committee, Committees, draw, needs_redraw,
};
use crate::encoding::{self, DOMAIN_ARBITER, DOMAIN_CONFIG_SIGNATURE, DecodeError};
use crate::entry::Signature;
use crate::limits::{
    ADMINISTRATORS_MAX, BUREAU_NAME_BYTES_MAX, CONFIG_CHANGES_MAX, CONFIG_UPDATE_BYTES_MAX,
    DEADLINE_WORKING_DAYS_MAX, MEMBER_ADDRESS_BYTES_MAX, MEMBER_ADDRESSES_MAX,
};
use crate::membership::{Member, Membership, MembershipError, quorum_for};
use crate::signature::{self, check_key};
use crate::types::{BureauCode, NetworkId, PersonTag, Seq};

/// Magic of an update: "HKU" and the format version.
pub const MAGIC_UPDATE: [u8; 4] = *b"HKU\x01";
/// Magic of a signed update: "HKS" and the format version.
pub const MAGIC_SIGNED_UPDATE: [u8; 4] = *b"HKS\x01";

/// Working days a bureau has to answer, by act. Configuration, not code: a deadline rule can
/// change by an update, and each clock is judged by the rules of the epoch it started in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Deadlines {
    /// The origin removes the person (or refuses) within this many working days of the permit.
    pub answer_working_days: u32,
    /// The destination registers within this many working days of the final removal.
    pub registration_working_days: u32,
}

impl Deadlines {
    /// The rules of epoch 0 (公安部 1 working day for each step, DOMAIN.md).
    pub const GENESIS: Deadlines = Deadlines {
        answer_working_days: crate::audit::ANSWER_WORKING_DAYS,
        registration_working_days: crate::audit::REGISTRATION_WORKING_DAYS,
    };
}

/// One change an update makes.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum Change {
    /// A new bureau joins with its key and addresses; its log starts empty under this epoch.
    AddMember {
        code: BureauCode,
        name: String,
        key: [u8; 32],
        addresses: Vec<String>,
    },
    /// A planned key change: entries naming this epoch or later verify under `key`, earlier ones
    /// under the old key. The bureau's next entry names the new epoch; one naming an older epoch
    /// after it is refused (`epoch_regressed`).
    RotateKey { code: BureauCode, key: [u8; 32] },
    /// A compromised key: as `RotateKey`, and every entry of the bureau's log at `from_seq` or
    /// after that names an earlier epoch is refused (a cut), whoever holds the old key.
    RevokeKey {
        code: BureauCode,
        key: [u8; 32],
        from_seq: Seq,
    },
    /// The bureau leaves (a merger): it is no member from this epoch on, its log ends before
    /// `from_seq` (a cut) and stays verifiable, and `successor` arbitrates the persons it
    /// arbitrated.
    RetireMember {
        code: BureauCode,
        from_seq: Seq,
        successor: BureauCode,
    },
    /// Where a member's node listens.
    SetAddresses {
        code: BureauCode,
        addresses: Vec<String>,
    },
    /// A new administrator set and threshold, for the updates after this one.
    SetAdministrators { keys: Vec<[u8; 32]>, threshold: u32 },
    /// Cosignatures a certificate needs from now on (at least floor(2n/3)+1, at most n).
    SetQuorum { quorum: u32 },
    /// One calendar year, in the text format of `protocol/data/prc-calendar.txt`
    /// (`years Y Y` and its dates). Published once, never edited.
    PublishCalendarYear { text: String },
    /// New deadline rules, for clocks that start under this epoch or later.
    SetDeadlines(Deadlines),
    /// Drawn witness committees of `size` witnesses per log from this epoch on
    /// ([`crate::committee`]); before the first, every member witnesses every log.
    SetCommittees { size: u32 },
    /// Where the committee this update seats for the certificate's log takes over: a
    /// `Certificate::encode` by the committee before it. One per log; without one, the new
    /// committee starts from size 0 and the earlier committee's certificates of that log count
    /// no more.
    Anchor { certificate: Vec<u8> },
}

impl Change {
    /// Stable snake_case name of the change (CLI, API, console).
    pub fn name(&self) -> &'static str {
        match self {
            Change::AddMember { .. } => "add_member",
            Change::RotateKey { .. } => "rotate_key",
            Change::RevokeKey { .. } => "revoke_key",
            Change::RetireMember { .. } => "retire_member",
            Change::SetAddresses { .. } => "set_addresses",
            Change::SetAdministrators { .. } => "set_administrators",
            Change::SetQuorum { .. } => "set_quorum",
            Change::PublishCalendarYear { .. } => "publish_calendar_year",
            Change::SetDeadlines(_) => "set_deadlines",
            Change::SetCommittees { .. } => "set_committees",
            Change::Anchor { .. } => "anchor",
        }
    }
}

/// SHA-256 of an update's encoding (epoch 0: the genesis hash).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Encode, Decode)]
pub struct ConfigHash(pub [u8; 32]);

impl ConfigHash {
    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl std::fmt::Debug for ConfigHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", &self.to_hex()[..16])
    }
}

impl std::fmt::Display for ConfigHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// What the administrators sign: the next epoch, built on the previous one.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct ConfigUpdate {
    pub network: NetworkId,
    /// The epoch this update makes: the previous epoch plus one.
    pub epoch: u32,
    /// Hash of the previous epoch's update (the genesis hash for epoch 1).
    pub prev: ConfigHash,
    /// When it was proposed, ms since the Unix epoch (informative; no rule reads it).
    pub time_ms: u64,
    pub changes: Vec<Change>,
}

impl ConfigUpdate {
    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        encoding::encode_with_magic(MAGIC_UPDATE, self)
    }

    /// The update's hash.
    pub fn hash(&self) -> ConfigHash {
        ConfigHash(Sha256::digest(self.encode()).into())
    }

    /// What an administrator signs.
    pub fn signing_message(&self) -> Vec<u8> {
        let mut m = DOMAIN_CONFIG_SIGNATURE.to_vec();
        m.extend_from_slice(&self.hash().0);
        m
    }
}

/// One administrator's signature on an update.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct AdminSignature {
    pub admin: [u8; 32],
    pub signature: Signature,
}

/// An update with its administrators' signatures: the configuration log's entry, and its own
/// certificate (k of n administrators).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct SignedUpdate {
    pub update: ConfigUpdate,
    /// Sorted by key, one per administrator.
    pub signatures: Vec<AdminSignature>,
}

impl SignedUpdate {
    /// An update with no signature yet.
    pub fn unsigned(update: ConfigUpdate) -> SignedUpdate {
        SignedUpdate {
            update,
            signatures: Vec::new(),
        }
    }

    /// Adds (or replaces) `key`'s signature, keeping the list sorted by key.
    pub fn sign(&mut self, key: &SigningKey) {
        let admin = key.verifying_key().to_bytes();
        let signature = Signature::sign(key, &self.update.signing_message());
        self.signatures.retain(|s| s.admin != admin);
        self.signatures.push(AdminSignature { admin, signature });
        self.signatures.sort_by_key(|s| s.admin);
    }

    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        encoding::encode_with_magic(MAGIC_SIGNED_UPDATE, self)
    }

    /// Decodes, refusing oversized input before allocating and trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<SignedUpdate, DecodeError> {
        if bytes.len() > CONFIG_UPDATE_BYTES_MAX {
            return Err(DecodeError::Oversized {
                len: bytes.len(),
                max: CONFIG_UPDATE_BYTES_MAX,
            });
        }
        encoding::decode_with_magic(
            bytes,
            MAGIC_SIGNED_UPDATE,
            "signed configuration update",
            CONFIG_UPDATE_BYTES_MAX,
        )
    }

    /// The hash of the update (signatures excluded: adding one changes nothing it commits to).
    pub fn hash(&self) -> ConfigHash {
        self.update.hash()
    }
}

/// A position from which a log's entries under earlier epochs no longer count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cut {
    pub log: BureauCode,
    pub from_seq: Seq,
    /// The epoch that made the cut: entries at `from_seq` or after must name it or a later one.
    pub epoch: u32,
    pub kind: CutKind,
}

/// Why a log was cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CutKind {
    Revoked,
    Retired,
}

impl CutKind {
    /// Stable name.
    pub fn name(self) -> &'static str {
        match self {
            CutKind::Revoked => "revoked",
            CutKind::Retired => "retired",
        }
    }
}

/// Why an update is refused. Nothing changes when one is.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("the update is for another network")]
    WrongNetwork,
    #[error(
        "the update makes epoch {found}, but the latest epoch is {latest}: it is built on an old epoch"
    )]
    Stale { found: u32, latest: u32 },
    #[error(
        "the update makes epoch {found}, but the latest epoch here is {latest}: the epochs between are missing"
    )]
    Gap { found: u32, latest: u32 },
    #[error(
        "the update builds on {found}, but epoch {epoch} here is {expected}: it is built on another history"
    )]
    WrongPrevious {
        epoch: u32,
        expected: ConfigHash,
        found: ConfigHash,
    },
    #[error(
        "epoch {epoch} is already {existing}; this different update for it ({conflicting}) was also signed by enough administrators"
    )]
    Conflict {
        epoch: u32,
        existing: ConfigHash,
        conflicting: ConfigHash,
    },
    #[error(
        "this network's genesis names no administrator threshold; no single key may change the network"
    )]
    NoAdministrators,
    #[error("signed by {have} administrator(s); {need} are needed")]
    TooFewSignatures { have: usize, need: usize },
    #[error("signature by {key_hex}, which is not an administrator of epoch {epoch}")]
    UnknownAdministrator { key_hex: String, epoch: u32 },
    #[error("the signature of administrator {key_hex} does not verify")]
    BadSignature { key_hex: String },
    #[error("administrator {key_hex} signed twice, or the signatures are not sorted by key")]
    SignaturesNotCanonical { key_hex: String },
    #[error("the update changes nothing")]
    Empty,
    #[error("the update has {count} changes; at most {max}")]
    TooManyChanges { count: usize, max: usize },
    #[error("change {index} ({change}): bureau {code} is already a member")]
    AlreadyMember {
        index: usize,
        change: &'static str,
        code: BureauCode,
    },
    #[error("change {index} ({change}): bureau {code} is not a member")]
    NotMember {
        index: usize,
        change: &'static str,
        code: BureauCode,
    },
    #[error("change {index} ({change}): bureau {code} was a member once; a code is never reused")]
    CodeRetired {
        index: usize,
        change: &'static str,
        code: BureauCode,
    },
    #[error(
        "change {index} ({change}): the key is already used by {used_by} (a key is never shared or reused)"
    )]
    KeyReused {
        index: usize,
        change: &'static str,
        used_by: String,
    },
    #[error("change {index} ({change}): {reason}")]
    Invalid {
        index: usize,
        change: &'static str,
        reason: String,
    },
    #[error("change {index} ({change}): bureau {code} is changed twice in one update")]
    ChangedTwice {
        index: usize,
        change: &'static str,
        code: BureauCode,
    },
    #[error(
        "retiring {retiring} of {members} members at once leaves fewer than the {quorum} the previous epoch needs to certify its last checkpoints"
    )]
    QuorumImpossible {
        retiring: usize,
        members: usize,
        quorum: usize,
    },
    #[error("the resulting membership is refused: {0}")]
    Membership(MembershipError),
    #[error("administrators: {0}")]
    Administrators(String),
    #[error("calendar year: {0}")]
    Calendar(String),
    #[error("calendar year {year} is already published; a published year is never edited")]
    CalendarYearPublished { year: i32 },
    #[error("the update is {len} bytes; at most {max}")]
    Oversized { len: usize, max: usize },
}

impl ConfigError {
    /// Stable snake_case name.
    pub fn name(&self) -> &'static str {
        match self {
            ConfigError::WrongNetwork => "config_wrong_network",
            ConfigError::Stale { .. } => "config_stale",
            ConfigError::Gap { .. } => "config_gap",
            ConfigError::WrongPrevious { .. } => "config_wrong_previous",
            ConfigError::Conflict { .. } => "config_conflict",
            ConfigError::NoAdministrators => "config_no_administrators",
            ConfigError::TooFewSignatures { .. } => "config_too_few_signatures",
            ConfigError::UnknownAdministrator { .. } => "config_unknown_administrator",
            ConfigError::BadSignature { .. } => "config_bad_signature",
            ConfigError::SignaturesNotCanonical { .. } => "config_signatures_not_canonical",
            ConfigError::Empty => "config_empty",
            ConfigError::TooManyChanges { .. } => "config_too_many_changes",
            ConfigError::AlreadyMember { .. } => "config_already_member",
            ConfigError::NotMember { .. } => "config_not_member",
            ConfigError::CodeRetired { .. } => "config_code_retired",
            ConfigError::KeyReused { .. } => "config_key_reused",
            ConfigError::Invalid { .. } => "config_invalid",
            ConfigError::ChangedTwice { .. } => "config_changed_twice",
            ConfigError::QuorumImpossible { .. } => "config_quorum_impossible",
            ConfigError::Membership(_) => "config_membership_invalid",
            ConfigError::Administrators(_) => "config_administrators_invalid",
            ConfigError::Calendar(_) => "config_calendar_invalid",
            ConfigError::CalendarYearPublished { .. } => "config_calendar_year_published",
            ConfigError::Oversized { .. } => "config_oversized",
        }
    }

    /// Whether the update may become acceptable once earlier epochs arrive.
    pub fn is_not_yet(&self) -> bool {
        matches!(self, ConfigError::Gap { .. })
    }
}

/// The configuration of one epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpochConfig {
    pub epoch: u32,
    /// The update's hash (epoch 0: the genesis hash).
    pub hash: ConfigHash,
    pub membership: Membership,
    pub addresses: BTreeMap<BureauCode, Vec<String>>,
    /// Administrator keys (sorted) and how many must sign the next update; empty when the
    /// genesis names no threshold (then no update is possible).
    pub administrators: Vec<VerifyingKey>,
    pub threshold: usize,
    pub deadlines: Deadlines,
    /// Every year published so far (the built-in years and each `PublishCalendarYear`).
    pub calendar: Arc<Calendar>,
    /// The arbiter of each slot: slot i is the i-th member of the genesis in code order; a
    /// retired arbiter's slots pass to its successor.
    arbiter_slots: Arc<Vec<BureauCode>>,
    /// Who witnesses each log, and from where a seated committee takes over.
    pub committees: Arc<Committees>,
    /// When the update was proposed (0 for the genesis).
    pub time_ms: u64,
}

impl EpochConfig {
    /// The person's arbiter under this epoch: the first 8 bytes of SHA-256(`DOMAIN_ARBITER` ‖
    /// tag), little-endian, modulo the number of slots, index the slots (in epoch 0, the
    /// members in ascending code order, which is [`Membership::arbiter`]).
    pub fn arbiter(&self, person: &PersonTag) -> BureauCode {
        self.arbiter_slots[slot_of(person, self.arbiter_slots.len())]
    }

    /// The slot holders, by slot.
    pub fn arbiter_slots(&self) -> &[BureauCode] {
        &self.arbiter_slots
    }

    /// Whether `witness` witnesses `log` in this epoch: a member of its drawn committee, or any
    /// member while everyone witnesses.
    pub fn is_witness(&self, log: BureauCode, witness: BureauCode) -> bool {
        match &*self.committees {
            Committees::Everyone => self.membership.contains(witness),
            Committees::Drawn { .. } => self
                .committees
                .drawn(log)
                .is_some_and(|c| c.contains(witness)),
        }
    }

    /// The witnesses of `log` in this epoch, in code order.
    pub fn witnesses(&self, log: BureauCode) -> Vec<BureauCode> {
        match &*self.committees {
            Committees::Everyone => self.membership.members().map(|m| m.code).collect(),
            Committees::Drawn { .. } => self
                .committees
                .drawn(log)
                .map_or_else(Vec::new, |c| c.members.clone()),
        }
    }

    /// Cosignatures a certificate of `log` under this epoch needs (`usize::MAX` for a log
    /// without a committee).
    pub fn certificate_quorum(&self, log: BureauCode) -> usize {
        match &*self.committees {
            Committees::Everyone => self.membership.quorum(),
            Committees::Drawn { .. } => self.committees.drawn(log).map_or(usize::MAX, |c| c.quorum),
        }
    }

    /// The checkpoint of `log` its committee of this epoch takes over from (size 0 when
    /// everyone witnesses, or none was given).
    pub fn anchor(&self, log: BureauCode) -> Anchor {
        self.committees
            .drawn(log)
            .map_or_else(Anchor::default, |c| c.anchor)
    }
}

fn slot_of(person: &PersonTag, slots: usize) -> usize {
    let mut h = Sha256::new();
    h.update(DOMAIN_ARBITER);
    h.update(person.0);
    let digest: [u8; 32] = h.finalize().into();
    let n = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
    (n % slots as u64) as usize
}

/// One past holder of an arbiter slot: it granted claims on the slot's persons until its log
/// was cut at `until_seq`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handover {
    pub from: BureauCode,
    pub until_seq: Seq,
    /// The epoch that retired `from`.
    pub epoch: u32,
}

/// The configuration log and every epoch it made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Epochs {
    epochs: Vec<Arc<EpochConfig>>,
    updates: Vec<SignedUpdate>,
    /// Cuts per log, in epoch order.
    cuts: BTreeMap<BureauCode, Vec<Cut>>,
    /// Past holders of each arbiter slot, oldest first.
    handovers: BTreeMap<usize, Vec<Handover>>,
    /// Every code that was ever a member.
    ever_members: BTreeSet<BureauCode>,
    /// Every key ever named (member or administrator), with who named it.
    used_keys: BTreeMap<[u8; 32], String>,
}

/// What the genesis says about epoch 0.
pub struct GenesisConfig {
    pub membership: Membership,
    pub addresses: BTreeMap<BureauCode, Vec<String>>,
    pub administrators: Vec<VerifyingKey>,
    /// 0 when the genesis names no threshold (no update is then possible).
    pub threshold: usize,
    pub hash: [u8; 32],
    pub calendar: Calendar,
}

impl Epochs {
    /// Epoch 0 alone, from the genesis.
    pub fn genesis(g: GenesisConfig) -> Epochs {
        let slots: Vec<BureauCode> = g.membership.members().map(|m| m.code).collect();
        let mut used_keys = BTreeMap::new();
        for m in g.membership.members() {
            used_keys.insert(m.key.to_bytes(), format!("bureau {}", m.code));
        }
        for a in &g.administrators {
            used_keys
                .entry(a.to_bytes())
                .or_insert_with(|| "an administrator".to_string());
        }
        let mut administrators = g.administrators;
        administrators.sort_by_key(|k| k.to_bytes());
        let ever_members = slots.iter().copied().collect();
        Epochs {
            epochs: vec![Arc::new(EpochConfig {
                epoch: 0,
                hash: ConfigHash(g.hash),
                addresses: g.addresses,
                administrators,
                threshold: g.threshold,
                deadlines: Deadlines::GENESIS,
                calendar: Arc::new(g.calendar),
                arbiter_slots: Arc::new(slots),
                committees: Arc::new(Committees::Everyone),
                time_ms: 0,
                membership: g.membership,
            })],
            updates: Vec::new(),
            cuts: BTreeMap::new(),
            handovers: BTreeMap::new(),
            ever_members,
            used_keys,
        }
    }

    /// Epoch 0 of a membership with no administrators, the built-in calendar and a zero hash
    /// (tests, benchmarks and tools that judge entries of one epoch).
    pub fn of_membership(membership: Membership) -> Epochs {
        Epochs::genesis(GenesisConfig {
            membership,
            addresses: BTreeMap::new(),
            administrators: Vec::new(),
            threshold: 0,
            hash: [0; 32],
            calendar: Calendar::prc().clone(),
        })
    }

    /// The latest epoch.
    pub fn latest(&self) -> &EpochConfig {
        self.epochs.last().expect("epoch 0 always exists")
    }

    /// An epoch, if known.
    pub fn get(&self, epoch: u32) -> Option<&EpochConfig> {
        self.epochs.get(epoch as usize).map(|e| &**e)
    }

    /// Every epoch, oldest first.
    pub fn all(&self) -> impl Iterator<Item = &EpochConfig> {
        self.epochs.iter().map(|e| &**e)
    }

    /// The updates after the genesis, in order.
    pub fn updates(&self) -> &[SignedUpdate] {
        &self.updates
    }

    /// The network's id.
    pub fn network(&self) -> NetworkId {
        self.latest().membership.network()
    }

    /// Cuts of a log, in epoch order.
    pub fn cuts(&self, log: BureauCode) -> &[Cut] {
        self.cuts.get(&log).map_or(&[], Vec::as_slice)
    }

    /// Every cut.
    pub fn all_cuts(&self) -> impl Iterator<Item = &Cut> {
        self.cuts.values().flatten()
    }

    /// The cut that refuses an entry of `log` at `seq` naming `epoch`, if any: the first cut at
    /// or below `seq` made by a later epoch.
    pub fn cut_of(&self, log: BureauCode, seq: Seq, epoch: u32) -> Option<&Cut> {
        self.cuts(log)
            .iter()
            .find(|c| c.from_seq.0 <= seq.0 && c.epoch > epoch)
    }

    /// How far a certificate of `log` naming `epoch` counts: `Some((size, e))` when a later epoch
    /// `e` seated a new committee for the log, whose anchor is at `size` (a certificate above
    /// it counts no more: `certificate_beyond_handover`); `None` while no later committee was
    /// seated. The first such epoch decides: every later anchor extends it.
    pub fn handover_cap(&self, log: BureauCode, epoch: u32) -> Option<(u64, u32)> {
        self.epochs
            .iter()
            .skip(epoch as usize + 1)
            .find_map(|e| match e.committees.drawn(log) {
                Some(c) if c.seated == e.epoch => Some((c.anchor.size, e.epoch)),
                _ => None,
            })
    }

    /// Whether `code` is a member in some epoch from 0 to `epoch`.
    pub fn was_member_by(&self, code: BureauCode, epoch: u32) -> bool {
        self.epochs
            .iter()
            .take(epoch as usize + 1)
            .any(|e| e.membership.contains(code))
    }

    /// Whether `code` was ever a member.
    pub fn ever_member(&self, code: BureauCode) -> bool {
        self.ever_members.contains(&code)
    }

    /// The past holders of the slot that arbitrates `person` under `epoch` whose claims a new
    /// claim on the person must follow (their logs up to the cut), oldest first.
    pub fn handovers(&self, person: &PersonTag, epoch: u32) -> &[Handover] {
        let Some(e) = self.get(epoch) else {
            return &[];
        };
        let slot = slot_of(person, e.arbiter_slots.len());
        let all = self.handovers.get(&slot).map_or(&[][..], Vec::as_slice);
        let seen = all.iter().take_while(|h| h.epoch <= epoch).count();
        &all[..seen]
    }

    /// Every key `code` had in any epoch, oldest first, and whether a later update revoked it
    /// (`RevokeKey`: the key the bureau had before it).
    pub fn keys_of(&self, code: BureauCode) -> Vec<(VerifyingKey, bool)> {
        let mut out: Vec<(VerifyingKey, bool)> = Vec::new();
        for (i, e) in self.epochs.iter().enumerate() {
            let Some(key) = e.membership.key(code) else {
                continue;
            };
            if !out.iter().any(|(k, _)| k == key) {
                out.push((*key, false));
            }
            let revoked_here = i > 0
                && self.updates[i - 1]
                    .update
                    .changes
                    .iter()
                    .any(|c| matches!(c, Change::RevokeKey { code: c, .. } if *c == code));
            if revoked_here
                && let Some(old) = self.epochs[i - 1].membership.key(code)
                && let Some(entry) = out.iter_mut().find(|(k, _)| k == old)
            {
                entry.1 = true;
            }
        }
        out
    }

    /// Judges an update against the latest epoch: `Ok` with the epoch it would make. Pure;
    /// changes nothing.
    pub fn check(&self, signed: &SignedUpdate) -> Result<EpochConfig, ConfigError> {
        self.judge(signed).map(|(e, _, _)| e)
    }

    /// The epoch an update's changes would make on the latest epoch, without judging its
    /// network, number, chain or signatures: what a proposal would do (`hukou config propose`
    /// asks which committees it seats anew, to anchor them). Pure; changes nothing.
    pub fn draft(&self, update: &ConfigUpdate) -> Result<EpochConfig, ConfigError> {
        self.apply_changes(update, self.latest()).map(|(e, _, _)| e)
    }

    /// Takes an update in; returns the cuts it makes. On `Err` nothing changed. An update
    /// already held is `Ok` with no cut.
    pub fn push(&mut self, signed: SignedUpdate) -> Result<Vec<Cut>, ConfigError> {
        if let Some(existing) = self.epochs.get(signed.update.epoch as usize)
            && signed.update.epoch > 0
            && existing.hash == signed.hash()
        {
            return Ok(Vec::new());
        }
        let (config, cuts, retired) = self.judge(&signed)?;
        for cut in &cuts {
            self.cuts.entry(cut.log).or_default().push(*cut);
        }
        for (code, from_seq, _) in &retired {
            let previous = self.latest().arbiter_slots.clone();
            for (slot, holder) in previous.iter().enumerate() {
                if holder == code {
                    self.handovers.entry(slot).or_default().push(Handover {
                        from: *code,
                        until_seq: *from_seq,
                        epoch: signed.update.epoch,
                    });
                }
            }
        }
        for m in config.membership.members() {
            self.ever_members.insert(m.code);
            self.used_keys
                .entry(m.key.to_bytes())
                .or_insert_with(|| format!("bureau {}", m.code));
        }
        for a in &config.administrators {
            self.used_keys
                .entry(a.to_bytes())
                .or_insert_with(|| "an administrator".to_string());
        }
        self.epochs.push(Arc::new(config));
        self.updates.push(signed);
        Ok(cuts)
    }

    #[allow(clippy::type_complexity)]
    fn judge(
        &self,
        signed: &SignedUpdate,
    ) -> Result<(EpochConfig, Vec<Cut>, Vec<(BureauCode, Seq, BureauCode)>), ConfigError> {
        let u = &signed.update;
        let prev = self.latest();
        let len = signed.encode().len();
        if len > CONFIG_UPDATE_BYTES_MAX {
            return Err(ConfigError::Oversized {
                len,
                max: CONFIG_UPDATE_BYTES_MAX,
            });
        }
        if u.network != prev.membership.network() {
            return Err(ConfigError::WrongNetwork);
        }
        if u.epoch <= prev.epoch {
            if let Some(existing) = self.get(u.epoch)
                && u.epoch > 0
                && existing.hash != u.hash()
                && self
                    .verify_signatures(signed, self.get(u.epoch - 1).expect("earlier epoch"))
                    .is_ok()
            {
                return Err(ConfigError::Conflict {
                    epoch: u.epoch,
                    existing: existing.hash,
                    conflicting: u.hash(),
                });
            }
            return Err(ConfigError::Stale {
                found: u.epoch,
                latest: prev.epoch,
            });
        }
        if u.epoch > prev.epoch + 1 {
            return Err(ConfigError::Gap {
                found: u.epoch,
                latest: prev.epoch,
            });
        }
        if u.prev != prev.hash {
            return Err(ConfigError::WrongPrevious {
                epoch: prev.epoch,
                expected: prev.hash,
                found: u.prev,
            });
        }
        self.verify_signatures(signed, prev)?;
        if u.changes.is_empty() {
            return Err(ConfigError::Empty);
        }
        if u.changes.len() > CONFIG_CHANGES_MAX {
            return Err(ConfigError::TooManyChanges {
                count: u.changes.len(),
                max: CONFIG_CHANGES_MAX,
            });
        }
        self.apply_changes(u, prev)
    }

    fn verify_signatures(
        &self,
        signed: &SignedUpdate,
        prev: &EpochConfig,
    ) -> Result<(), ConfigError> {
        if prev.threshold == 0 {
            return Err(ConfigError::NoAdministrators);
        }
        let message = signed.update.signing_message();
        let mut last: Option<[u8; 32]> = None;
        for s in &signed.signatures {
            let key_hex = hex::encode(s.admin);
            if last.is_some_and(|l| l >= s.admin) {
                return Err(ConfigError::SignaturesNotCanonical { key_hex });
            }
            last = Some(s.admin);
            let Some(key) = prev.administrators.iter().find(|k| k.to_bytes() == s.admin) else {
                return Err(ConfigError::UnknownAdministrator {
                    key_hex,
                    epoch: prev.epoch,
                });
            };
            if !signature::verify(key, &message, &s.signature) {
                return Err(ConfigError::BadSignature { key_hex });
            }
        }
        if signed.signatures.len() < prev.threshold {
            return Err(ConfigError::TooFewSignatures {
                have: signed.signatures.len(),
                need: prev.threshold,
            });
        }
        Ok(())
    }

    #[allow(clippy::type_complexity)]
    fn apply_changes(
        &self,
        u: &ConfigUpdate,
        prev: &EpochConfig,
    ) -> Result<(EpochConfig, Vec<Cut>, Vec<(BureauCode, Seq, BureauCode)>), ConfigError> {
        let mut members: BTreeMap<BureauCode, Member> = prev
            .membership
            .members()
            .map(|m| (m.code, m.clone()))
            .collect();
        let mut addresses = prev.addresses.clone();
        let mut administrators = prev.administrators.clone();
        let mut threshold = prev.threshold;
        let mut quorum: Option<usize> = None;
        let mut committee_size: Option<(usize, usize)> = None;
        let mut anchors: BTreeMap<BureauCode, (usize, Anchor)> = BTreeMap::new();
        let mut deadlines = prev.deadlines;
        let mut calendar: Option<Calendar> = None;
        let mut cuts = Vec::new();
        let mut retired = Vec::new();
        let mut touched: BTreeSet<BureauCode> = BTreeSet::new();
        // The change index of each retirement, for its errors.
        let mut retired_at: Vec<usize> = Vec::new();
        let mut new_keys: BTreeMap<[u8; 32], String> = BTreeMap::new();
        let epoch = u.epoch;

        for (index, change) in u.changes.iter().enumerate() {
            let name = change.name();
            let invalid = |reason: String| ConfigError::Invalid {
                index,
                change: name,
                reason,
            };
            let mut touch = |code: BureauCode| {
                if touched.insert(code) {
                    Ok(())
                } else {
                    Err(ConfigError::ChangedTwice {
                        index,
                        change: name,
                        code,
                    })
                }
            };
            let mut check_new_key = |key: &[u8; 32],
                                     owner: String|
             -> Result<VerifyingKey, ConfigError> {
                let vk = VerifyingKey::from_bytes(key)
                    .map_err(|_| invalid("the key is not a valid ed25519 public key".into()))?;
                check_key(&vk).map_err(|fault| invalid(format!("the key is refused: {fault}")))?;
                if let Some(used_by) = self
                    .used_keys
                    .get(key)
                    .or_else(|| new_keys.get(key))
                    .cloned()
                {
                    return Err(ConfigError::KeyReused {
                        index,
                        change: name,
                        used_by,
                    });
                }
                new_keys.insert(*key, owner);
                Ok(vk)
            };
            match change {
                Change::AddMember {
                    code,
                    name: bureau_name,
                    key,
                    addresses: addrs,
                } => {
                    if !code.is_valid() {
                        return Err(invalid(format!("{code} is not a six-digit bureau code")));
                    }
                    if members.contains_key(code) {
                        return Err(ConfigError::AlreadyMember {
                            index,
                            change: name,
                            code: *code,
                        });
                    }
                    if self.ever_members.contains(code) {
                        return Err(ConfigError::CodeRetired {
                            index,
                            change: name,
                            code: *code,
                        });
                    }
                    touch(*code)?;
                    check_name(bureau_name).map_err(invalid)?;
                    check_addresses(addrs).map_err(invalid)?;
                    let vk = check_new_key(key, format!("bureau {code}"))?;
                    members.insert(
                        *code,
                        Member {
                            code: *code,
                            name: bureau_name.clone(),
                            key: vk,
                        },
                    );
                    addresses.insert(*code, addrs.clone());
                }
                Change::RotateKey { code, key } | Change::RevokeKey { code, key, .. } => {
                    let Some(m) = members.get_mut(code) else {
                        return Err(ConfigError::NotMember {
                            index,
                            change: name,
                            code: *code,
                        });
                    };
                    touch(*code)?;
                    m.key = check_new_key(key, format!("bureau {code}"))?;
                    if let Change::RevokeKey { from_seq, .. } = change {
                        cuts.push(Cut {
                            log: *code,
                            from_seq: *from_seq,
                            epoch,
                            kind: CutKind::Revoked,
                        });
                    }
                }
                Change::RetireMember {
                    code,
                    from_seq,
                    successor,
                } => {
                    if !members.contains_key(code) {
                        return Err(ConfigError::NotMember {
                            index,
                            change: name,
                            code: *code,
                        });
                    }
                    touch(*code)?;
                    if successor == code {
                        return Err(invalid(format!("bureau {code} cannot succeed itself")));
                    }
                    members.remove(code);
                    addresses.remove(code);
                    cuts.push(Cut {
                        log: *code,
                        from_seq: *from_seq,
                        epoch,
                        kind: CutKind::Retired,
                    });
                    retired.push((*code, *from_seq, *successor));
                    retired_at.push(index);
                }
                Change::SetAddresses {
                    code,
                    addresses: addrs,
                } => {
                    if !members.contains_key(code) {
                        return Err(ConfigError::NotMember {
                            index,
                            change: name,
                            code: *code,
                        });
                    }
                    check_addresses(addrs).map_err(invalid)?;
                    addresses.insert(*code, addrs.clone());
                }
                Change::SetAdministrators { keys, threshold: k } => {
                    let mut set = Vec::new();
                    for key in keys {
                        // An administrator may stay one; any other key is new to the network.
                        match prev.administrators.iter().find(|k| k.to_bytes() == *key) {
                            Some(kept) if !set.contains(kept) => set.push(*kept),
                            _ => set.push(check_new_key(key, "an administrator".to_string())?),
                        }
                    }
                    check_administrators(&set, *k as usize).map_err(ConfigError::Administrators)?;
                    set.sort_by_key(|k| k.to_bytes());
                    administrators = set;
                    threshold = *k as usize;
                }
                Change::SetQuorum { quorum: q } => quorum = Some(*q as usize),
                Change::PublishCalendarYear { text } => {
                    let year =
                        Calendar::parse(text).map_err(|e| ConfigError::Calendar(e.to_string()))?;
                    let base = calendar.as_ref().unwrap_or(&prev.calendar);
                    calendar = Some(merge_calendar(base, &year)?);
                }
                Change::SetDeadlines(d) => {
                    for (what, days) in [
                        ("answer_working_days", d.answer_working_days),
                        ("registration_working_days", d.registration_working_days),
                    ] {
                        if days == 0 || days > DEADLINE_WORKING_DAYS_MAX {
                            return Err(invalid(format!(
                                "{what} is {days}; it must be 1 to {DEADLINE_WORKING_DAYS_MAX}"
                            )));
                        }
                    }
                    deadlines = *d;
                }
                Change::SetCommittees { size } => {
                    let size = *size as usize;
                    if !(COMMITTEE_SIZE_MIN..=COMMITTEE_SIZE_MAX).contains(&size) {
                        return Err(invalid(format!(
                            "a committee of {size}; it must be {COMMITTEE_SIZE_MIN} to {COMMITTEE_SIZE_MAX} witnesses"
                        )));
                    }
                    if committee_size.is_some() {
                        return Err(invalid("the committee size is set twice".into()));
                    }
                    committee_size = Some((size, index));
                }
                Change::Anchor { certificate } => {
                    let certificate = Certificate::decode(certificate)
                        .map_err(|e| invalid(format!("the anchor is not a certificate: {e}")))?;
                    // Verified against the epochs before this update: certified by the
                    // committee the log had, and within what that committee may still certify.
                    certificate.verify(self).map_err(|e| {
                        invalid(format!(
                            "the anchor certificate does not verify ({}): {e}",
                            e.name()
                        ))
                    })?;
                    let c = certificate.checkpoint;
                    if anchors
                        .insert(
                            c.log,
                            (
                                index,
                                Anchor {
                                    size: c.size,
                                    root: c.root,
                                },
                            ),
                        )
                        .is_some()
                    {
                        return Err(invalid(format!("log {} is anchored twice", c.log)));
                    }
                }
            }
        }

        // Successors must be members of the new epoch.
        for ((code, _, successor), &index) in retired.iter().zip(&retired_at) {
            if !members.contains_key(successor) {
                return Err(ConfigError::Invalid {
                    index,
                    change: "retire_member",
                    reason: format!(
                        "the successor of {code}, {successor}, is not a member of the new epoch"
                    ),
                });
            }
        }
        // The previous epoch must still be able to certify: its remaining members form its quorum.
        let prev_n = prev.membership.len();
        if prev_n - retired.len() < prev.membership.quorum() {
            return Err(ConfigError::QuorumImpossible {
                retiring: retired.len(),
                members: prev_n,
                quorum: prev.membership.quorum(),
            });
        }
        let n = members.len();
        let quorum = match quorum {
            Some(q) => q,
            // Keep the quorum while the member count stays; else the smallest safe one.
            None if n == prev_n => prev.membership.quorum(),
            None => quorum_for(n),
        };
        let membership = Membership::new(
            prev.membership.network_name(),
            members.into_values(),
            quorum,
        )
        .map_err(ConfigError::Membership)?;
        let committees = seat_committees(
            prev,
            &membership,
            committee_size.map(|(s, _)| s),
            &mut anchors,
            epoch,
        )
        .map_err(|(index, reason)| ConfigError::Invalid {
            index: index.or(committee_size.map(|(_, i)| i)).unwrap_or(0),
            change: if index.is_some() {
                "anchor"
            } else {
                "set_committees"
            },
            reason,
        })?;
        let mut slots = (*prev.arbiter_slots).clone();
        for (code, _, successor) in &retired {
            for s in slots.iter_mut() {
                if s == code {
                    *s = *successor;
                }
            }
        }
        Ok((
            EpochConfig {
                epoch,
                hash: u.hash(),
                membership,
                addresses,
                administrators,
                threshold,
                deadlines,
                calendar: calendar.map_or_else(|| prev.calendar.clone(), Arc::new),
                arbiter_slots: Arc::new(slots),
                committees: Arc::new(committees),
                time_ms: u.time_ms,
            },
            cuts,
            retired,
        ))
    }
}

/// The committees of a new epoch (`membership`), from the previous epoch's: drawn anew where
/// the draw changed (seated in `epoch`, with the update's anchor for that log or size 0),
/// kept where it did not. Every anchor must be for a log seated here. `Err((change index of an
/// anchor, or None for the size change), reason)`.
fn seat_committees(
    prev: &EpochConfig,
    membership: &Membership,
    size: Option<usize>,
    anchors: &mut BTreeMap<BureauCode, (usize, Anchor)>,
    epoch: u32,
) -> Result<Committees, (Option<usize>, String)> {
    let (size, previous) = match (&*prev.committees, size) {
        (Committees::Everyone, None) => {
            if let Some((&log, &(index, _))) = anchors.iter().next() {
                return Err((
                    Some(index),
                    format!("log {log} gets no new committee in this update (everyone witnesses)"),
                ));
            }
            return Ok(Committees::Everyone);
        }
        (Committees::Everyone, Some(size)) => (size, None),
        (Committees::Drawn { size, by_log }, None) => (*size, Some(by_log)),
        (Committees::Drawn { size: old, by_log }, Some(size)) => {
            (size, (*old == size).then_some(by_log))
        }
    };
    let mut by_log = BTreeMap::new();
    for m in membership.members() {
        let log = m.code;
        let kept = previous
            .and_then(|p| p.get(&log))
            .filter(|c| !needs_redraw(log, c, &prev.membership, membership, size));
        let committee = match kept {
            Some(c) => c.clone(),
            None => {
                let d = draw(log, membership, size);
                match previous.and_then(|p| p.get(&log)) {
                    // Drawn again to the same witnesses: the committee stays seated.
                    Some(c) if c.members == d.members => Arc::new(Committee {
                        spread: d.spread,
                        max_score: d.max_score,
                        ..(**c).clone()
                    }),
                    _ => {
                        let anchor = anchors.remove(&log).map(|(_, a)| a).unwrap_or_default();
                        Arc::new(Committee::seat(d, epoch, anchor))
                    }
                }
            }
        };
        by_log.insert(log, committee);
    }
    if let Some((&log, &(index, _))) = anchors.iter().next() {
        return Err((
            Some(index),
            format!(
                "log {log} gets no new committee in this update; an anchor is for a log whose committee changes"
            ),
        ));
    }
    if by_log.values().any(|c| c.members.is_empty()) {
        return Err((
            None,
            "a log would have no witness: drawn committees need at least two members".into(),
        ));
    }
    Ok(Committees::Drawn { size, by_log })
}

/// Adds a published year to the calendar in force: one year per change, never one already
/// covered (a published year is never edited: deadlines judged by it would change on replay).
fn merge_calendar(base: &Calendar, year: &Calendar) -> Result<Calendar, ConfigError> {
    let years = year.years();
    if years.len() != 1 {
        return Err(ConfigError::Calendar(format!(
            "a calendar update publishes exactly one year; this text declares {}",
            years.len()
        )));
    }
    base.merge(year).map_err(|e| match e {
        crate::calendar::CalendarError::YearAlreadyCovered { year } => {
            ConfigError::CalendarYearPublished { year }
        }
        other => ConfigError::Calendar(other.to_string()),
    })
}

fn check_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("the bureau's name is empty".into());
    }
    if name.len() > BUREAU_NAME_BYTES_MAX {
        return Err(format!(
            "the bureau's name is {} bytes; at most {BUREAU_NAME_BYTES_MAX}",
            name.len()
        ));
    }
    if name.chars().any(char::is_control) {
        return Err("the bureau's name has a control character".into());
    }
    Ok(())
}

fn check_addresses(addresses: &[String]) -> Result<(), String> {
    if addresses.len() > MEMBER_ADDRESSES_MAX {
        return Err(format!(
            "{} addresses; at most {MEMBER_ADDRESSES_MAX}",
            addresses.len()
        ));
    }
    for a in addresses {
        if a.is_empty() || a.len() > MEMBER_ADDRESS_BYTES_MAX || !a.starts_with('/') {
            return Err(format!(
                "address {a:?} is not a multiaddress of at most {MEMBER_ADDRESS_BYTES_MAX} bytes"
            ));
        }
        if a.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(format!("address {a:?} has a space or control character"));
        }
    }
    Ok(())
}

/// The rule for an administrator set: n from 2 to [`ADMINISTRATORS_MAX`], k ≥ 2 (no single key
/// changes the network) and k > n/2 (two conflicting updates cannot both gather k signatures
/// unless an administrator signed both), k ≤ n, no key twice.
pub fn check_administrators(keys: &[VerifyingKey], threshold: usize) -> Result<(), String> {
    let n = keys.len();
    if !(2..=ADMINISTRATORS_MAX).contains(&n) {
        return Err(format!(
            "{n} administrators; from 2 to {ADMINISTRATORS_MAX} (no single key may change the network)"
        ));
    }
    let distinct: BTreeSet<[u8; 32]> = keys.iter().map(|k| k.to_bytes()).collect();
    if distinct.len() != n {
        return Err("an administrator key is listed twice".into());
    }
    if threshold < 2 || threshold > n || threshold * 2 <= n {
        return Err(format!(
            "threshold {threshold} of {n}: it must be at least 2, more than half ({}) and at most {n}",
            n / 2 + 1
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
