//! The rulebook: the ledger state and `apply`, the one place validity is decided.
//!
//! The node applies it to every entry it writes or receives, the witness before it cosigns, the
//! auditor when it replays an export. Nothing here reads a clock, a disk or a random source.
//!
//! # Order of checks (SPEC)
//!
//! An entry that breaks several rules is reported by the first rule in this order, so node,
//! witness and auditor name the same violation for the same entry:
//!
//! 1. envelope: `wrong_network`, `unknown_author`, `bad_signature`;
//! 2. chain: `duplicate_entry`, `equivocation` (seq below the log's length), `missing_previous`
//!    (seq above it), `prev_mismatch`, `time_went_backwards`;
//! 3. references, in the order the body lists them: `unknown_reference`,
//!    `reference_hash_mismatch`, `reference_wrong_kind`;
//! 4. the body's own rules, in the order each `check_*` function lists them.
//!
//! # Determinism across logs
//!
//! Logs are replicated in no global order, so `apply` must give the same answer whatever order
//! entries of different logs arrive in. It does, because every rule depends only on
//! (a) the author's own log so far, (b) the entries the body references (applied first: entries
//! wait in [`CausalBuffer`] until what they reference is applied), and (c) statuses that only the
//! author's own log can change. The one fact no single log owns is "this person is registered
//! nowhere else": two bureaus can enrol one person at the same moment. `apply` therefore records
//! a registration *per bureau* and reports a person with two records as a duplicate (重) finding
//! ([`Ledger::duplicates`]), instead of refusing whichever entry happened to arrive second (which
//! would make honest nodes disagree and halt an honest log). The stricter, global checks run when
//! a bureau *creates* an entry: [`Ledger::admit`], which its node calls before signing. The same
//! goes for a revocation racing a deregistration: both are valid; the inbox shows the conflict.
//!
//! # Invariants
//!
//! I1 (at most one registration per person) holds for every history whose entries were admitted
//! by their authors, and any breach by concurrent enrolment is reported; I2 (every registration
//! consumes exactly one deregistration, which consumes exactly one permit of the same person,
//! origin and destination) and I3 (each log a single chain) are enforced by `apply` itself.

// A violation carries the entries that prove it (a few references, ~200 bytes); refusals are
// the rare path, so returning it unboxed costs nothing that matters.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeSet, HashMap, VecDeque};

use crate::entry::{Body, BodyKind, Placement, SignedEntry};
use crate::membership::Membership;
use crate::types::{BureauCode, EntryHash, EntryRef, HouseholdId, NetworkId, PersonTag, Seq};
use crate::vocabulary::{CancellationReason, Category, Relation};

/// Whether `apply` checks the entry's signature or trusts that the caller already did (after a
/// batch verification).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureCheck {
    /// Verify the signature strictly, one entry at a time.
    Verify,
    /// The caller verified it (batch verification); skip.
    AlreadyVerified,
}

/// A broken rule, naming the entries involved. Each variant has a stable snake_case name
/// ([`Violation::name`]) used by the API's `"error"` field and the audit report: never renamed,
/// never reused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    #[error("entry {entry} belongs to another network ({found})")]
    WrongNetwork { entry: EntryRef, found: NetworkId },
    #[error("entry {entry} is authored by {}, which is not a member", entry.author)]
    UnknownAuthor { entry: EntryRef },
    #[error("entry {entry} has a signature that does not verify under its author's key")]
    BadSignature { entry: EntryRef },
    #[error("entry {entry} is already in the log")]
    DuplicateEntry { entry: EntryRef },
    #[error("equivocation: {} signed two different entries at seq {}: {existing} and {conflicting}", existing.author, existing.seq)]
    Equivocation {
        existing: EntryRef,
        conflicting: EntryRef,
    },
    #[error("entry {entry} comes before its log reaches seq {expected}")]
    MissingPrevious { entry: EntryRef, expected: Seq },
    #[error("entry {entry} names prev {found} but the entry before it hashes to {expected}")]
    PrevMismatch {
        entry: EntryRef,
        expected: EntryHash,
        found: EntryHash,
    },
    #[error(
        "entry {entry} is timed {time_ms} ms, before the previous entry of its log ({previous_ms} ms)"
    )]
    TimeWentBackwards {
        entry: EntryRef,
        time_ms: u64,
        previous_ms: u64,
    },
    #[error("entry {entry} references {reference}, which is not in the ledger")]
    UnknownReference {
        entry: EntryRef,
        reference: EntryRef,
    },
    #[error(
        "entry {entry} references {reference}, but the entry at that position hashes to {actual}"
    )]
    ReferenceHashMismatch {
        entry: EntryRef,
        reference: EntryRef,
        actual: EntryHash,
    },
    #[error("entry {entry} references {reference} as a {expected}, but it is a {found}")]
    ReferenceWrongKind {
        entry: EntryRef,
        reference: EntryRef,
        expected: BodyKind,
        found: BodyKind,
    },
    #[error("entry {entry}: person {person} is already registered at {} by {at}", at.author)]
    PersonAlreadyRegistered {
        entry: EntryRef,
        person: PersonTag,
        at: EntryRef,
    },
    #[error("entry {entry}: person {person} is in transit since deregistration {deregistration}")]
    PersonInTransit {
        entry: EntryRef,
        person: PersonTag,
        deregistration: EntryRef,
    },
    #[error("entry {entry}: person {person} was cancelled by {cancellation}")]
    PersonCancelled {
        entry: EntryRef,
        person: PersonTag,
        cancellation: EntryRef,
    },
    #[error("entry {entry}: person {person} is not registered at {bureau}")]
    PersonNotRegisteredHere {
        entry: EntryRef,
        person: PersonTag,
        bureau: BureauCode,
    },
    #[error("entry {entry}: household {household} already has a head ({head})")]
    HouseholdHasHead {
        entry: EntryRef,
        household: HouseholdId,
        head: PersonTag,
    },
    #[error("entry {entry}: household {household} does not exist at {}; a new household starts with its head", entry.author)]
    HouseholdUnknown {
        entry: EntryRef,
        household: HouseholdId,
    },
    #[error(
        "entry {entry}: the head of household {household} leaves {members_left} members behind and no new head is named"
    )]
    HeadLeavingWithoutSuccessor {
        entry: EntryRef,
        household: HouseholdId,
        members_left: u32,
    },
    #[error(
        "entry {entry}: the named new head {successor} is not a member of household {household}"
    )]
    SuccessorNotInHousehold {
        entry: EntryRef,
        successor: PersonTag,
        household: HouseholdId,
    },
    #[error(
        "entry {entry} names a new head, but the person leaving does not head a household with other members"
    )]
    SuccessorUnexpected { entry: EntryRef },
    #[error("entry {entry}: {person} already heads household {household}")]
    AlreadyHead {
        entry: EntryRef,
        household: HouseholdId,
        person: PersonTag,
    },
    #[error("permit {entry} names its own author as the origin")]
    PermitOriginIsAuthor { entry: EntryRef },
    #[error("permit {entry} names origin {origin}, which is not a member")]
    UnknownOrigin { entry: EntryRef, origin: BureauCode },
    #[error(
        "permit {entry} is valid until {valid_until_ms} ms, not after its own time {time_ms} ms"
    )]
    PermitValidityInvalid {
        entry: EntryRef,
        valid_until_ms: u64,
        time_ms: u64,
    },
    #[error("permit {entry}: {reason}")]
    CorrectionMismatch {
        entry: EntryRef,
        reason: &'static str,
    },
    #[error("entry {entry} acts on permit {permit} as origin, but the permit's origin is {origin}")]
    NotPermitOrigin {
        entry: EntryRef,
        permit: EntryRef,
        origin: BureauCode,
    },
    #[error(
        "entry {entry} acts on {reference} as destination, but the destination is {destination}"
    )]
    NotPermitDestination {
        entry: EntryRef,
        reference: EntryRef,
        destination: BureauCode,
    },
    #[error("entry {entry}: permit {permit} is no longer open ({status})")]
    PermitNotOpen {
        entry: EntryRef,
        permit: EntryRef,
        status: PermitStatus,
    },
    #[error("entry {entry}: permit {permit} expired at {valid_until_ms} ms, before {time_ms} ms")]
    PermitExpired {
        entry: EntryRef,
        permit: EntryRef,
        valid_until_ms: u64,
        time_ms: u64,
    },
    #[error("entry {entry} is about person {found}, but {reference} is about {expected}")]
    PersonMismatch {
        entry: EntryRef,
        reference: EntryRef,
        expected: PersonTag,
        found: PersonTag,
    },
    #[error("entry {entry}: deregistration {deregistration} was already consumed by {by}")]
    DeregistrationConsumed {
        entry: EntryRef,
        deregistration: EntryRef,
        by: EntryRef,
    },
    #[error("claim {entry} on person {person} is not by the person's arbiter, {arbiter}")]
    NotArbiter {
        entry: EntryRef,
        person: PersonTag,
        arbiter: BureauCode,
    },
    #[error("claim {entry} grants person {person} to {claimant}, which is not a member")]
    UnknownClaimant {
        entry: EntryRef,
        person: PersonTag,
        claimant: BureauCode,
    },
    #[error("entry {entry}: person {person} was already claimed by {claim}")]
    PersonClaimed {
        entry: EntryRef,
        person: PersonTag,
        claim: EntryRef,
    },
    #[error("entry {entry} consumes claim {claim}, which was granted to {claimant}")]
    ClaimNotForAuthor {
        entry: EntryRef,
        claim: EntryRef,
        claimant: BureauCode,
    },
    #[error("entry {entry}: claim {claim} was already consumed by {by}")]
    ClaimConsumed {
        entry: EntryRef,
        claim: EntryRef,
        by: EntryRef,
    },
    #[error("birth {entry}: {born_on} is not a date (YYYYMMDD)")]
    BirthDateInvalid { entry: EntryRef, born_on: u32 },
    #[error("birth {entry}: born on {born_on}, after the entry's own date {entry_date}")]
    BirthDateInFuture {
        entry: EntryRef,
        born_on: u32,
        entry_date: u32,
    },
    #[error(
        "birth {entry}: born on {born_on}, {age_days} days before the entry's date; a birth is registered within {max_days} days (older persons are enrolled)"
    )]
    BirthDateTooOld {
        entry: EntryRef,
        born_on: u32,
        age_days: u32,
        max_days: u32,
    },
}

impl Violation {
    /// The stable snake_case name of the rule.
    pub fn name(&self) -> &'static str {
        match self {
            Violation::WrongNetwork { .. } => "wrong_network",
            Violation::UnknownAuthor { .. } => "unknown_author",
            Violation::BadSignature { .. } => "bad_signature",
            Violation::DuplicateEntry { .. } => "duplicate_entry",
            Violation::Equivocation { .. } => "equivocation",
            Violation::MissingPrevious { .. } => "missing_previous",
            Violation::PrevMismatch { .. } => "prev_mismatch",
            Violation::TimeWentBackwards { .. } => "time_went_backwards",
            Violation::UnknownReference { .. } => "unknown_reference",
            Violation::ReferenceHashMismatch { .. } => "reference_hash_mismatch",
            Violation::ReferenceWrongKind { .. } => "reference_wrong_kind",
            Violation::PersonAlreadyRegistered { .. } => "person_already_registered",
            Violation::PersonInTransit { .. } => "person_in_transit",
            Violation::PersonCancelled { .. } => "person_cancelled",
            Violation::PersonNotRegisteredHere { .. } => "person_not_registered_here",
            Violation::HouseholdHasHead { .. } => "household_has_head",
            Violation::HouseholdUnknown { .. } => "household_unknown",
            Violation::HeadLeavingWithoutSuccessor { .. } => "head_leaving_without_successor",
            Violation::SuccessorNotInHousehold { .. } => "successor_not_in_household",
            Violation::SuccessorUnexpected { .. } => "successor_unexpected",
            Violation::AlreadyHead { .. } => "already_head",
            Violation::PermitOriginIsAuthor { .. } => "permit_origin_is_author",
            Violation::UnknownOrigin { .. } => "unknown_origin",
            Violation::PermitValidityInvalid { .. } => "permit_validity_invalid",
            Violation::CorrectionMismatch { .. } => "correction_mismatch",
            Violation::NotPermitOrigin { .. } => "not_permit_origin",
            Violation::NotPermitDestination { .. } => "not_permit_destination",
            Violation::PermitNotOpen { .. } => "permit_not_open",
            Violation::PermitExpired { .. } => "permit_expired",
            Violation::PersonMismatch { .. } => "person_mismatch",
            Violation::DeregistrationConsumed { .. } => "deregistration_consumed",
            Violation::NotArbiter { .. } => "not_arbiter",
            Violation::UnknownClaimant { .. } => "unknown_claimant",
            Violation::PersonClaimed { .. } => "person_claimed",
            Violation::ClaimNotForAuthor { .. } => "claim_not_for_author",
            Violation::ClaimConsumed { .. } => "claim_consumed",
            Violation::BirthDateInvalid { .. } => "birth_date_invalid",
            Violation::BirthDateInFuture { .. } => "birth_date_in_future",
            Violation::BirthDateTooOld { .. } => "birth_date_too_old",
        }
    }

    /// The entry that broke the rule (the later one, for an equivocation).
    pub fn entry(&self) -> EntryRef {
        match self {
            Violation::Equivocation { conflicting, .. } => *conflicting,
            Violation::WrongNetwork { entry, .. }
            | Violation::UnknownAuthor { entry }
            | Violation::BadSignature { entry }
            | Violation::DuplicateEntry { entry }
            | Violation::MissingPrevious { entry, .. }
            | Violation::PrevMismatch { entry, .. }
            | Violation::TimeWentBackwards { entry, .. }
            | Violation::UnknownReference { entry, .. }
            | Violation::ReferenceHashMismatch { entry, .. }
            | Violation::ReferenceWrongKind { entry, .. }
            | Violation::PersonAlreadyRegistered { entry, .. }
            | Violation::PersonInTransit { entry, .. }
            | Violation::PersonCancelled { entry, .. }
            | Violation::PersonNotRegisteredHere { entry, .. }
            | Violation::HouseholdHasHead { entry, .. }
            | Violation::HouseholdUnknown { entry, .. }
            | Violation::HeadLeavingWithoutSuccessor { entry, .. }
            | Violation::SuccessorNotInHousehold { entry, .. }
            | Violation::SuccessorUnexpected { entry }
            | Violation::AlreadyHead { entry, .. }
            | Violation::PermitOriginIsAuthor { entry }
            | Violation::UnknownOrigin { entry, .. }
            | Violation::PermitValidityInvalid { entry, .. }
            | Violation::CorrectionMismatch { entry, .. }
            | Violation::NotPermitOrigin { entry, .. }
            | Violation::NotPermitDestination { entry, .. }
            | Violation::PermitNotOpen { entry, .. }
            | Violation::PermitExpired { entry, .. }
            | Violation::PersonMismatch { entry, .. }
            | Violation::DeregistrationConsumed { entry, .. }
            | Violation::NotArbiter { entry, .. }
            | Violation::UnknownClaimant { entry, .. }
            | Violation::PersonClaimed { entry, .. }
            | Violation::ClaimNotForAuthor { entry, .. }
            | Violation::ClaimConsumed { entry, .. }
            | Violation::BirthDateInvalid { entry, .. }
            | Violation::BirthDateInFuture { entry, .. }
            | Violation::BirthDateTooOld { entry, .. } => *entry,
        }
    }

    /// Whether the entry may become valid later (it waits for something not yet applied), as
    /// opposed to being wrong for good.
    pub fn is_not_yet(&self) -> bool {
        matches!(
            self,
            Violation::MissingPrevious { .. } | Violation::UnknownReference { .. }
        )
    }

    /// Whether this is the harmless arrival of an entry already held.
    pub fn is_duplicate(&self) -> bool {
        matches!(self, Violation::DuplicateEntry { .. })
    }
}

/// Where a permit stands. Changed only by its origin's log (refusal, deregistration); a
/// revocation, in its destination's log, is recorded beside it (see [`PermitState::revoked_by`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PermitStatus {
    /// Neither refused nor consumed.
    Open,
    /// Refused by the origin.
    Refused { by: EntryRef },
    /// Consumed by a deregistration.
    Consumed { by: EntryRef },
    /// Revoked by its destination. Only ever reported in a [`Violation::PermitNotOpen`]: a
    /// permit's recorded status stays as the origin left it (see [`PermitState::revoked_by`]).
    Revoked { by: EntryRef },
}

impl std::fmt::Display for PermitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PermitStatus::Open => f.write_str("open"),
            PermitStatus::Refused { by } => write!(f, "refused by {by}"),
            PermitStatus::Consumed { by } => write!(f, "consumed by {by}"),
            PermitStatus::Revoked { by } => write!(f, "revoked by {by}"),
        }
    }
}

/// A permit as the ledger knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PermitState {
    pub reference: EntryRef,
    pub person: PersonTag,
    pub origin: BureauCode,
    pub category: Category,
    pub issued_ms: u64,
    pub valid_until_ms: u64,
    pub status: PermitStatus,
    /// The destination's revocation, if any. A revocation racing a deregistration loses: the
    /// deregistration stands, and the inbox shows the destination what it must resolve.
    pub revoked_by: Option<EntryRef>,
}

impl PermitState {
    /// The destination: the permit's author.
    pub fn destination(&self) -> BureauCode {
        self.reference.author
    }
}

/// A deregistration as the ledger knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeregistrationState {
    pub reference: EntryRef,
    pub person: PersonTag,
    pub permit: EntryRef,
    pub destination: BureauCode,
    pub time_ms: u64,
    /// The registration that consumed it.
    pub consumed_by: Option<EntryRef>,
}

/// A registration (落户) as the ledger knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistrationState {
    pub reference: EntryRef,
    pub time_ms: u64,
    pub person: PersonTag,
    pub deregistration: EntryRef,
    pub origin: BureauCode,
}

/// A claim on a person (`Body::Claim`) as the ledger knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimState {
    pub reference: EntryRef,
    pub person: PersonTag,
    pub claimant: BureauCode,
    /// The cancellation the claim follows, or `None` for a person never registered.
    pub after: Option<EntryRef>,
    /// The `Enrol` or `Birth` that consumed it.
    pub consumed_by: Option<EntryRef>,
}

/// One bureau's record of a person: where they are registered and since which entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    pub bureau: BureauCode,
    pub household: HouseholdId,
    pub since: EntryRef,
}

/// Everything the ledger knows of one person.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PersonState {
    /// Registrations, one per bureau; more than one is a duplicate (重) finding.
    pub records: Vec<Record>,
    /// Deregistrations not yet consumed by a registration.
    pub in_transit: Vec<EntryRef>,
    /// The latest cancellation, if the person has no record since.
    pub cancelled: Option<(EntryRef, CancellationReason)>,
}

impl PersonState {
    /// The record at `bureau`, if any.
    pub fn record_at(&self, bureau: BureauCode) -> Option<&Record> {
        self.records.iter().find(|r| r.bureau == bureau)
    }

    /// Where the person is registered, if at exactly one bureau.
    pub fn registered_at(&self) -> Option<BureauCode> {
        match self.records.as_slice() {
            [one] => Some(one.bureau),
            _ => None,
        }
    }
}

/// A household (户) of one bureau. Exists while it has members, and then always has a head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HouseholdState {
    pub head: PersonTag,
    pub members: u32,
}

/// One log's tip and what the rulebook needs of its past.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogState {
    /// Hash of every entry, by seq.
    pub hashes: Vec<EntryHash>,
    /// Kind of every entry, by seq.
    pub kinds: Vec<BodyKind>,
    /// Time of the last entry.
    pub last_time_ms: u64,
}

impl LogState {
    /// Number of entries.
    pub fn len(&self) -> u64 {
        self.hashes.len() as u64
    }

    /// Whether the log is empty.
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// Hash of the last entry, or zero.
    pub fn tip(&self) -> EntryHash {
        self.hashes.last().copied().unwrap_or(EntryHash::ZERO)
    }
}

/// What applying an entry changed, for the caller's indexes and metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Effects {
    pub entry: EntryRef,
    pub kind: BodyKind,
    pub person: Option<PersonTag>,
    /// The permit or deregistration this entry consumed, refused or revoked.
    pub acted_on: Option<EntryRef>,
    /// Whether applying it created a second record of one person (a duplicate finding).
    pub created_duplicate: bool,
}

type Position = (BureauCode, Seq);

/// The ledger state: every log's tip, every person, permit, deregistration and household.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ledger {
    membership: Membership,
    logs: HashMap<BureauCode, LogState>,
    persons: HashMap<PersonTag, PersonState>,
    permits: HashMap<Position, PermitState>,
    deregistrations: HashMap<Position, DeregistrationState>,
    registrations: HashMap<Position, RegistrationState>,
    claims: HashMap<Position, ClaimState>,
    /// Every applied cancellation: the person and the reason (claims follow them).
    cancellations: HashMap<Position, (PersonTag, CancellationReason)>,
    /// The claim each arbiter's log granted per (person, cancellation it follows): at most one.
    claimed: HashMap<(BureauCode, PersonTag, Option<Position>), EntryRef>,
    households: HashMap<(BureauCode, HouseholdId), HouseholdState>,
    /// Open, unrevoked permits awaiting each origin's answer.
    awaiting_origin: HashMap<BureauCode, BTreeSet<Position>>,
    /// Unconsumed deregistrations awaiting each destination's registration.
    awaiting_destination: HashMap<BureauCode, BTreeSet<Position>>,
    /// Persons with more than one record.
    duplicates: BTreeSet<PersonTag>,
    entries_applied: u64,
}

/// The person an entry's body is about, if any.
pub fn person_of(body: &Body) -> Option<PersonTag> {
    match body {
        Body::Enrol { person, .. }
        | Body::Birth { person, .. }
        | Body::Permit { person, .. }
        | Body::Deregistration { person, .. }
        | Body::Registration { person, .. }
        | Body::Cancellation { person, .. }
        | Body::Claim { person, .. } => Some(*person),
        Body::Refusal { .. } | Body::Revocation { .. } | Body::HeadChange { .. } => None,
    }
}

macro_rules! ensure {
    ($cond:expr, $violation:expr) => {
        if !$cond {
            return Err($violation);
        }
    };
}

impl Ledger {
    /// An empty ledger for a membership.
    pub fn new(membership: Membership) -> Ledger {
        Ledger {
            membership,
            logs: HashMap::new(),
            persons: HashMap::new(),
            permits: HashMap::new(),
            deregistrations: HashMap::new(),
            registrations: HashMap::new(),
            claims: HashMap::new(),
            cancellations: HashMap::new(),
            claimed: HashMap::new(),
            households: HashMap::new(),
            awaiting_origin: HashMap::new(),
            awaiting_destination: HashMap::new(),
            duplicates: BTreeSet::new(),
            entries_applied: 0,
        }
    }

    /// The membership the ledger judges by.
    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// A log's state, if it has entries.
    pub fn log(&self, author: BureauCode) -> Option<&LogState> {
        self.logs.get(&author)
    }

    /// Number of entries in a log.
    pub fn log_len(&self, author: BureauCode) -> u64 {
        self.logs.get(&author).map_or(0, LogState::len)
    }

    /// The reference to the entry at a position, if applied.
    pub fn reference_at(&self, author: BureauCode, seq: Seq) -> Option<EntryRef> {
        let log = self.logs.get(&author)?;
        let hash = *log.hashes.get(usize::try_from(seq.0).ok()?)?;
        Some(EntryRef { author, seq, hash })
    }

    /// Total entries applied.
    pub fn entries_applied(&self) -> u64 {
        self.entries_applied
    }

    /// A person's state.
    pub fn person(&self, person: &PersonTag) -> Option<&PersonState> {
        self.persons.get(person)
    }

    /// Number of persons the ledger knows.
    pub fn persons_len(&self) -> usize {
        self.persons.len()
    }

    /// A permit's state.
    pub fn permit(&self, permit: &EntryRef) -> Option<&PermitState> {
        self.permits
            .get(&permit.position())
            .filter(|p| p.reference == *permit)
    }

    /// A deregistration's state.
    pub fn deregistration(&self, deregistration: &EntryRef) -> Option<&DeregistrationState> {
        self.deregistrations
            .get(&deregistration.position())
            .filter(|d| d.reference == *deregistration)
    }

    /// A registration's state.
    pub fn registration(&self, registration: &EntryRef) -> Option<&RegistrationState> {
        self.registrations
            .get(&registration.position())
            .filter(|r| r.reference == *registration)
    }

    /// A claim's state.
    pub fn claim(&self, claim: &EntryRef) -> Option<&ClaimState> {
        self.claims
            .get(&claim.position())
            .filter(|c| c.reference == *claim)
    }

    /// The claim the person's arbiter granted on `person` following `after` (the cancellation
    /// that ended their previous registration, or `None`), if any.
    pub fn claim_on(&self, person: &PersonTag, after: Option<EntryRef>) -> Option<&ClaimState> {
        let arbiter = self.membership.arbiter(person);
        let granted = self
            .claimed
            .get(&(arbiter, *person, after.map(|a| a.position())))?;
        self.claims.get(&granted.position())
    }

    /// The cancellation a new claim on `person` would follow: the latest cancellation if the
    /// person has no registration since, else `None` (also for a person never registered).
    pub fn claim_after(&self, person: &PersonTag) -> Option<EntryRef> {
        self.persons
            .get(person)
            .and_then(|s| s.cancelled)
            .map(|(c, _)| c)
    }

    /// A household's state.
    pub fn household(&self, bureau: BureauCode, household: HouseholdId) -> Option<&HouseholdState> {
        self.households.get(&(bureau, household))
    }

    /// Open, unrevoked permits naming `origin`, oldest first.
    pub fn awaiting_origin(&self, origin: BureauCode) -> impl Iterator<Item = &PermitState> {
        self.awaiting_origin
            .get(&origin)
            .into_iter()
            .flatten()
            .map(|p| &self.permits[p])
    }

    /// Unconsumed deregistrations naming `destination`, oldest first.
    pub fn awaiting_destination(
        &self,
        destination: BureauCode,
    ) -> impl Iterator<Item = &DeregistrationState> {
        self.awaiting_destination
            .get(&destination)
            .into_iter()
            .flatten()
            .map(|d| &self.deregistrations[d])
    }

    /// All permits (any order).
    pub fn permits(&self) -> impl Iterator<Item = &PermitState> {
        self.permits.values()
    }

    /// All deregistrations (any order).
    pub fn deregistrations(&self) -> impl Iterator<Item = &DeregistrationState> {
        self.deregistrations.values()
    }

    /// All registrations (any order).
    pub fn registrations(&self) -> impl Iterator<Item = &RegistrationState> {
        self.registrations.values()
    }

    /// Persons registered at more than one bureau (I1 findings), in tag order.
    pub fn duplicates(&self) -> impl Iterator<Item = (&PersonTag, &PersonState)> {
        self.duplicates.iter().map(|p| (p, &self.persons[p]))
    }

    /// What `entry` waits for before it can be judged, if anything: the position of its log's
    /// previous entry, or of an entry it references.
    pub fn waiting_for(&self, entry: &SignedEntry) -> Option<(BureauCode, Seq)> {
        let e = entry.entry();
        let len = self.log_len(e.author);
        if e.seq.0 > len {
            return Some((e.author, Seq(e.seq.0 - 1)));
        }
        if e.seq.0 < len {
            return None;
        }
        e.body
            .references()
            .find(|r| r.seq.0 >= self.log_len(r.author))
            .map(|r| r.position())
    }

    /// The global checks a bureau makes before it signs an entry of its own: everything `apply`
    /// checks, plus the facts no single log owns (that the person is registered nowhere else,
    /// that a permit was not revoked or consumed elsewhere). Pure; changes nothing.
    pub fn admit(&self, entry: &SignedEntry, signature: SignatureCheck) -> Result<(), Violation> {
        self.check(entry, signature)?;
        let me = entry.reference();
        let e = entry.entry();
        match &e.body {
            Body::Enrol { person, .. } | Body::Birth { person, .. } => {
                if let Some(state) = self.persons.get(person) {
                    if let Some(record) = state.records.first() {
                        return Err(Violation::PersonAlreadyRegistered {
                            entry: me,
                            person: *person,
                            at: record.since,
                        });
                    }
                    if let Some(d) = state.in_transit.first() {
                        return Err(Violation::PersonInTransit {
                            entry: me,
                            person: *person,
                            deregistration: *d,
                        });
                    }
                    if let Some((by, reason)) = state.cancelled {
                        ensure!(
                            !reason.is_final(),
                            Violation::PersonCancelled {
                                entry: me,
                                person: *person,
                                cancellation: by
                            }
                        );
                    }
                }
            }
            Body::Deregistration { permit, .. } | Body::Refusal { permit, .. } => {
                let p = &self.permits[&permit.position()];
                if let Some(by) = p.revoked_by {
                    return Err(Violation::PermitNotOpen {
                        entry: me,
                        permit: *permit,
                        status: PermitStatus::Revoked { by },
                    });
                }
            }
            Body::Revocation { permit } => {
                let p = &self.permits[&permit.position()];
                ensure!(
                    p.status == PermitStatus::Open,
                    Violation::PermitNotOpen {
                        entry: me,
                        permit: *permit,
                        status: p.status
                    }
                );
            }
            Body::Claim { person, after, .. } => {
                // The arbiter grants a claim only on a person who is registered nowhere, in
                // transit nowhere, and whose claim follows their latest cancellation.
                if let Some(state) = self.persons.get(person) {
                    if let Some(record) = state.records.first() {
                        return Err(Violation::PersonAlreadyRegistered {
                            entry: me,
                            person: *person,
                            at: record.since,
                        });
                    }
                    if let Some(d) = state.in_transit.first() {
                        return Err(Violation::PersonInTransit {
                            entry: me,
                            person: *person,
                            deregistration: *d,
                        });
                    }
                }
                if let Some(latest) = self.claim_after(person)
                    && *after != Some(latest)
                {
                    // A claim following an older cancellation (or none) would collide with the
                    // claim that already followed it.
                    if let Some(c) = self.claim_on(person, *after) {
                        return Err(Violation::PersonClaimed {
                            entry: me,
                            person: *person,
                            claim: c.reference,
                        });
                    }
                }
            }
            Body::Permit { person, .. } => {
                if let Some(record) = self.persons.get(person).and_then(|s| s.record_at(e.author)) {
                    return Err(Violation::PersonAlreadyRegistered {
                        entry: me,
                        person: *person,
                        at: record.since,
                    });
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Judges an entry without changing anything.
    pub fn check(&self, entry: &SignedEntry, signature: SignatureCheck) -> Result<(), Violation> {
        self.judge(entry, signature).map(|_| ())
    }

    /// Judges and applies one entry. On `Err` nothing changed. Entries that wait for something
    /// (`Violation::is_not_yet`) should be offered again later, or held in a [`CausalBuffer`].
    pub fn apply(
        &mut self,
        entry: &SignedEntry,
        signature: SignatureCheck,
    ) -> Result<Effects, Violation> {
        let plan = self.judge(entry, signature)?;
        // Must never fail from here on: every check is done.
        Ok(self.commit(entry, plan))
    }

    /// Every check, in the written order; returns what to change.
    fn judge(&self, entry: &SignedEntry, signature: SignatureCheck) -> Result<Plan, Violation> {
        let e = entry.entry();
        let me = entry.reference();

        // SPEC 1: envelope.
        self.check_envelope(entry, signature)?;

        // SPEC 2: chain.
        let empty = LogState::default();
        let log = self.logs.get(&e.author).unwrap_or(&empty);
        let len = log.len();
        if e.seq.0 < len {
            let existing = EntryRef {
                author: e.author,
                seq: e.seq,
                hash: log.hashes[e.seq.0 as usize],
            };
            return Err(if existing.hash == me.hash {
                Violation::DuplicateEntry { entry: me }
            } else {
                Violation::Equivocation {
                    existing,
                    conflicting: me,
                }
            });
        }
        ensure!(
            e.seq.0 == len,
            Violation::MissingPrevious {
                entry: me,
                expected: Seq(len)
            }
        );
        let expected_prev = log.tip();
        ensure!(
            e.prev == expected_prev,
            Violation::PrevMismatch {
                entry: me,
                expected: expected_prev,
                found: e.prev
            }
        );
        ensure!(
            e.time_ms >= log.last_time_ms,
            Violation::TimeWentBackwards {
                entry: me,
                time_ms: e.time_ms,
                previous_ms: log.last_time_ms
            }
        );

        // SPEC 3: references.
        for reference in e.body.references() {
            self.check_reference(me, reference)?;
        }

        // SPEC 4: the body.
        match &e.body {
            Body::Enrol {
                person,
                placement,
                claim,
            } => self.check_enrol(me, *person, *placement, *claim),
            Body::Birth {
                person,
                placement,
                claim,
                born_on,
            } => {
                check_birth_date(me, e.time_ms, *born_on)?;
                self.check_enrol(me, *person, *placement, *claim)
            }
            Body::Claim {
                person,
                claimant,
                after,
            } => self.check_claim(me, *person, *claimant, *after),
            Body::Permit {
                person,
                origin,
                category,
                valid_until_ms,
                corrects,
                ..
            } => self.check_permit(
                me,
                e.time_ms,
                *person,
                *origin,
                *category,
                *valid_until_ms,
                *corrects,
            ),
            Body::Refusal { permit, .. } => self.check_refusal(me, *permit),
            Body::Deregistration {
                permit,
                person,
                new_head,
            } => self.check_deregistration(me, e.time_ms, *permit, *person, *new_head),
            Body::Registration {
                deregistration,
                person,
                placement,
            } => self.check_registration(me, *deregistration, *person, *placement),
            Body::Revocation { permit } => self.check_revocation(me, *permit),
            Body::Cancellation {
                person, new_head, ..
            } => self.check_cancellation(me, *person, *new_head),
            Body::HeadChange {
                household,
                new_head,
            } => self.check_head_change(me, *household, *new_head),
        }
    }

    /// SPEC 3: a reference must point at an applied entry with the same hash and the kind the
    /// body expects.
    fn check_reference(&self, me: EntryRef, reference: EntryRef) -> Result<(), Violation> {
        let log = self.logs.get(&reference.author);
        let actual = log.and_then(|l| l.hashes.get(reference.seq.0 as usize));
        let Some(actual) = actual else {
            return Err(Violation::UnknownReference {
                entry: me,
                reference,
            });
        };
        ensure!(
            *actual == reference.hash,
            Violation::ReferenceHashMismatch {
                entry: me,
                reference,
                actual: *actual
            }
        );
        Ok(())
    }

    fn expect_kind(
        &self,
        me: EntryRef,
        reference: EntryRef,
        expected: BodyKind,
    ) -> Result<(), Violation> {
        let found = self.logs[&reference.author].kinds[reference.seq.0 as usize];
        ensure!(
            found == expected,
            Violation::ReferenceWrongKind {
                entry: me,
                reference,
                expected,
                found
            }
        );
        Ok(())
    }

    /// Rules of `Enrol` and `Birth` (after a birth's date rules, [`check_birth_date`]), in
    /// order: the claim is a claim on the same person, granted to the author, not consumed; no
    /// record of the person at this bureau; the placement is valid.
    fn check_enrol(
        &self,
        me: EntryRef,
        person: PersonTag,
        placement: Placement,
        claim: EntryRef,
    ) -> Result<Plan, Violation> {
        self.expect_kind(me, claim, BodyKind::Claim)?;
        let c = &self.claims[&claim.position()];
        ensure!(
            c.person == person,
            Violation::PersonMismatch {
                entry: me,
                reference: claim,
                expected: c.person,
                found: person
            }
        );
        ensure!(
            c.claimant == me.author,
            Violation::ClaimNotForAuthor {
                entry: me,
                claim,
                claimant: c.claimant
            }
        );
        if let Some(by) = c.consumed_by {
            return Err(Violation::ClaimConsumed {
                entry: me,
                claim,
                by,
            });
        }
        if let Some(record) = self
            .persons
            .get(&person)
            .and_then(|s| s.record_at(me.author))
        {
            return Err(Violation::PersonAlreadyRegistered {
                entry: me,
                person,
                at: record.since,
            });
        }
        self.check_placement(me, placement)?;
        Ok(Plan::Join {
            person,
            placement,
            consumes: Consumes::Claim(claim),
        })
    }

    /// Rules of `Claim`, in order: the author is the person's arbiter; the claimant is a
    /// member; a cancellation it follows is of the same person and does not forbid a new
    /// registration (death, duplicate record); the author's log has granted no claim on the
    /// person following the same cancellation (or none).
    fn check_claim(
        &self,
        me: EntryRef,
        person: PersonTag,
        claimant: BureauCode,
        after: Option<EntryRef>,
    ) -> Result<Plan, Violation> {
        let arbiter = self.membership.arbiter(&person);
        ensure!(
            arbiter == me.author,
            Violation::NotArbiter {
                entry: me,
                person,
                arbiter
            }
        );
        ensure!(
            self.membership.contains(claimant),
            Violation::UnknownClaimant {
                entry: me,
                person,
                claimant
            }
        );
        if let Some(cancellation) = after {
            self.expect_kind(me, cancellation, BodyKind::Cancellation)?;
            let (cancelled, reason) = self.cancellation(cancellation);
            ensure!(
                cancelled == person,
                Violation::PersonMismatch {
                    entry: me,
                    reference: cancellation,
                    expected: cancelled,
                    found: person
                }
            );
            ensure!(
                !reason.is_final(),
                Violation::PersonCancelled {
                    entry: me,
                    person,
                    cancellation
                }
            );
        }
        if let Some(claim) = self
            .claimed
            .get(&(me.author, person, after.map(|a| a.position())))
        {
            return Err(Violation::PersonClaimed {
                entry: me,
                person,
                claim: *claim,
            });
        }
        Ok(Plan::Claim {
            person,
            claimant,
            after,
        })
    }

    /// The person and reason of an applied cancellation.
    fn cancellation(&self, cancellation: EntryRef) -> (PersonTag, CancellationReason) {
        let c = &self.cancellations[&cancellation.position()];
        (c.0, c.1)
    }

    /// Placement rule: a head starts a new household; anyone else joins an existing one.
    fn check_placement(&self, me: EntryRef, placement: Placement) -> Result<(), Violation> {
        let existing = self.households.get(&(me.author, placement.household));
        match (placement.relation, existing) {
            (Relation::Head, Some(h)) => Err(Violation::HouseholdHasHead {
                entry: me,
                household: placement.household,
                head: h.head,
            }),
            (Relation::Head, None) => Ok(()),
            (_, None) => Err(Violation::HouseholdUnknown {
                entry: me,
                household: placement.household,
            }),
            (_, Some(_)) => Ok(()),
        }
    }

    /// Rules of `Permit`, in order: origin is not the author; origin is a member; valid after
    /// its own time; a return-after-error permit names the erroneous registration, which moved
    /// the same person from this author to the origin.
    #[allow(clippy::too_many_arguments)]
    fn check_permit(
        &self,
        me: EntryRef,
        time_ms: u64,
        person: PersonTag,
        origin: BureauCode,
        category: Category,
        valid_until_ms: u64,
        corrects: Option<EntryRef>,
    ) -> Result<Plan, Violation> {
        ensure!(
            origin != me.author,
            Violation::PermitOriginIsAuthor { entry: me }
        );
        ensure!(
            self.membership.contains(origin),
            Violation::UnknownOrigin { entry: me, origin }
        );
        ensure!(
            valid_until_ms > time_ms,
            Violation::PermitValidityInvalid {
                entry: me,
                valid_until_ms,
                time_ms
            }
        );
        match (category, corrects) {
            (Category::ReturnAfterError, None) => {
                return Err(Violation::CorrectionMismatch {
                    entry: me,
                    reason: "a return-after-error permit must name the registration it corrects",
                });
            }
            (Category::ReturnAfterError, Some(erroneous)) => {
                self.expect_kind(me, erroneous, BodyKind::Registration)?;
                let r = &self.registrations[&erroneous.position()];
                ensure!(
                    r.person == person,
                    Violation::PersonMismatch {
                        entry: me,
                        reference: erroneous,
                        expected: r.person,
                        found: person
                    }
                );
                ensure!(
                    erroneous.author == origin && r.origin == me.author,
                    Violation::CorrectionMismatch {
                        entry: me,
                        reason: "the corrected registration must have moved the person from this bureau to the origin",
                    }
                );
            }
            (_, Some(_)) => {
                return Err(Violation::CorrectionMismatch {
                    entry: me,
                    reason: "only a return-after-error permit may name a registration it corrects",
                });
            }
            (_, None) => {}
        }
        Ok(Plan::Permit)
    }

    fn permit_state(&self, me: EntryRef, permit: EntryRef) -> Result<&PermitState, Violation> {
        self.expect_kind(me, permit, BodyKind::Permit)?;
        Ok(&self.permits[&permit.position()])
    }

    /// Rules of `Refusal`, in order: the author is the permit's origin; the permit is open.
    fn check_refusal(&self, me: EntryRef, permit: EntryRef) -> Result<Plan, Violation> {
        let p = self.permit_state(me, permit)?;
        ensure!(
            p.origin == me.author,
            Violation::NotPermitOrigin {
                entry: me,
                permit,
                origin: p.origin
            }
        );
        ensure!(
            p.status == PermitStatus::Open,
            Violation::PermitNotOpen {
                entry: me,
                permit,
                status: p.status
            }
        );
        Ok(Plan::Refuse { permit })
    }

    /// Rules of `Deregistration`, in order: the author is the permit's origin; same person; the
    /// permit is open and unexpired at this entry's time; the person is registered here; the
    /// household keeps a head.
    fn check_deregistration(
        &self,
        me: EntryRef,
        time_ms: u64,
        permit: EntryRef,
        person: PersonTag,
        new_head: Option<PersonTag>,
    ) -> Result<Plan, Violation> {
        let p = self.permit_state(me, permit)?;
        ensure!(
            p.origin == me.author,
            Violation::NotPermitOrigin {
                entry: me,
                permit,
                origin: p.origin
            }
        );
        ensure!(
            p.person == person,
            Violation::PersonMismatch {
                entry: me,
                reference: permit,
                expected: p.person,
                found: person
            }
        );
        ensure!(
            p.status == PermitStatus::Open,
            Violation::PermitNotOpen {
                entry: me,
                permit,
                status: p.status
            }
        );
        ensure!(
            time_ms <= p.valid_until_ms,
            Violation::PermitExpired {
                entry: me,
                permit,
                valid_until_ms: p.valid_until_ms,
                time_ms
            }
        );
        let record = self.record_here(me, person)?;
        let succession = self.check_leaving(me, person, record, new_head)?;
        Ok(Plan::Deregister {
            person,
            permit,
            destination: p.destination(),
            record,
            succession,
        })
    }

    /// The person's record at the author, or the precise reason there is none.
    fn record_here(&self, me: EntryRef, person: PersonTag) -> Result<Record, Violation> {
        let state = self.persons.get(&person);
        if let Some(record) = state.and_then(|s| s.record_at(me.author)) {
            return Ok(*record);
        }
        Err(Violation::PersonNotRegisteredHere {
            entry: me,
            person,
            bureau: me.author,
        })
    }

    /// Succession rule when a person leaves a household (deregistration or cancellation): a head
    /// leaving other members must name a member as the new head; nobody else may name one.
    fn check_leaving(
        &self,
        me: EntryRef,
        person: PersonTag,
        record: Record,
        new_head: Option<PersonTag>,
    ) -> Result<Option<PersonTag>, Violation> {
        let household = &self.households[&(me.author, record.household)];
        let is_head_with_others = household.head == person && household.members > 1;
        match (is_head_with_others, new_head) {
            (true, None) => Err(Violation::HeadLeavingWithoutSuccessor {
                entry: me,
                household: record.household,
                members_left: household.members - 1,
            }),
            (true, Some(successor)) => {
                let member = successor != person
                    && self
                        .persons
                        .get(&successor)
                        .and_then(|s| s.record_at(me.author))
                        .is_some_and(|r| r.household == record.household);
                ensure!(
                    member,
                    Violation::SuccessorNotInHousehold {
                        entry: me,
                        successor,
                        household: record.household
                    }
                );
                Ok(Some(successor))
            }
            (false, Some(_)) => Err(Violation::SuccessorUnexpected { entry: me }),
            (false, None) => Ok(None),
        }
    }

    /// Rules of `Registration`, in order: the reference is a deregistration naming this author as
    /// destination; same person; not consumed; no record of the person here; valid placement.
    fn check_registration(
        &self,
        me: EntryRef,
        deregistration: EntryRef,
        person: PersonTag,
        placement: Placement,
    ) -> Result<Plan, Violation> {
        self.expect_kind(me, deregistration, BodyKind::Deregistration)?;
        let d = &self.deregistrations[&deregistration.position()];
        ensure!(
            d.destination == me.author,
            Violation::NotPermitDestination {
                entry: me,
                reference: deregistration,
                destination: d.destination
            }
        );
        ensure!(
            d.person == person,
            Violation::PersonMismatch {
                entry: me,
                reference: deregistration,
                expected: d.person,
                found: person
            }
        );
        if let Some(by) = d.consumed_by {
            return Err(Violation::DeregistrationConsumed {
                entry: me,
                deregistration,
                by,
            });
        }
        if let Some(record) = self
            .persons
            .get(&person)
            .and_then(|s| s.record_at(me.author))
        {
            return Err(Violation::PersonAlreadyRegistered {
                entry: me,
                person,
                at: record.since,
            });
        }
        self.check_placement(me, placement)?;
        Ok(Plan::Join {
            person,
            placement,
            consumes: Consumes::Deregistration(deregistration),
        })
    }

    /// Rules of `Revocation`, in order: the author issued the permit; not revoked before.
    fn check_revocation(&self, me: EntryRef, permit: EntryRef) -> Result<Plan, Violation> {
        let p = self.permit_state(me, permit)?;
        ensure!(
            p.destination() == me.author,
            Violation::NotPermitDestination {
                entry: me,
                reference: permit,
                destination: p.destination()
            }
        );
        if let Some(by) = p.revoked_by {
            return Err(Violation::PermitNotOpen {
                entry: me,
                permit,
                status: PermitStatus::Revoked { by },
            });
        }
        Ok(Plan::Revoke { permit })
    }

    /// Rules of `Cancellation`, in order: the person is registered here; the household keeps a
    /// head.
    fn check_cancellation(
        &self,
        me: EntryRef,
        person: PersonTag,
        new_head: Option<PersonTag>,
    ) -> Result<Plan, Violation> {
        let record = self.record_here(me, person)?;
        let succession = self.check_leaving(me, person, record, new_head)?;
        Ok(Plan::Cancel {
            person,
            record,
            succession,
        })
    }

    /// Rules of `HeadChange`, in order: the household exists here; the new head is a member of
    /// it; and is not already its head.
    fn check_head_change(
        &self,
        me: EntryRef,
        household: HouseholdId,
        new_head: PersonTag,
    ) -> Result<Plan, Violation> {
        let h =
            self.households
                .get(&(me.author, household))
                .ok_or(Violation::HouseholdUnknown {
                    entry: me,
                    household,
                })?;
        let member = self
            .persons
            .get(&new_head)
            .and_then(|s| s.record_at(me.author))
            .is_some_and(|r| r.household == household);
        ensure!(
            member,
            Violation::SuccessorNotInHousehold {
                entry: me,
                successor: new_head,
                household
            }
        );
        ensure!(
            h.head != new_head,
            Violation::AlreadyHead {
                entry: me,
                household,
                person: new_head
            }
        );
        Ok(Plan::HeadChange {
            household,
            new_head,
        })
    }

    /// Applies a judged entry. Must never fail: `judge` checked everything.
    fn commit(&mut self, entry: &SignedEntry, plan: Plan) -> Effects {
        let e = entry.entry();
        let me = entry.reference();
        let kind = e.body.kind();
        let mut effects = Effects {
            entry: me,
            kind,
            person: person_of(&e.body),
            acted_on: None,
            created_duplicate: false,
        };

        match plan {
            Plan::Join {
                person,
                placement,
                consumes,
            } => {
                if let Consumes::Claim(claim) = consumes {
                    let c = self.claims.get_mut(&claim.position()).expect("judged");
                    assert!(
                        c.consumed_by.is_none(),
                        "a claim is consumed at most once (I1)"
                    );
                    c.consumed_by = Some(me);
                    effects.acted_on = Some(claim);
                }
                if let Consumes::Deregistration(deregistration) = consumes {
                    let d = self
                        .deregistrations
                        .get_mut(&deregistration.position())
                        .expect("judged");
                    assert!(
                        d.consumed_by.is_none(),
                        "a deregistration is consumed at most once (I2)"
                    );
                    d.consumed_by = Some(me);
                    let origin = deregistration.author;
                    self.registrations.insert(
                        me.position(),
                        RegistrationState {
                            reference: me,
                            time_ms: e.time_ms,
                            person,
                            deregistration,
                            origin,
                        },
                    );
                    remove_awaiting(
                        &mut self.awaiting_destination,
                        me.author,
                        deregistration.position(),
                    );
                    effects.acted_on = Some(deregistration);
                }
                let key = (me.author, placement.household);
                match placement.relation {
                    Relation::Head => {
                        let previous = self.households.insert(
                            key,
                            HouseholdState {
                                head: person,
                                members: 1,
                            },
                        );
                        assert!(previous.is_none(), "a new household has no head yet");
                    }
                    _ => {
                        self.households
                            .get_mut(&key)
                            .expect("judged: household exists")
                            .members += 1
                    }
                }
                let state = self.persons.entry(person).or_default();
                if let Consumes::Deregistration(deregistration) = consumes {
                    state.in_transit.retain(|d| *d != deregistration);
                }
                assert!(
                    state.record_at(me.author).is_none(),
                    "one record per person per bureau"
                );
                // Kept sorted by bureau, so the state is the same whatever order logs arrive in.
                let at = state.records.partition_point(|r| r.bureau < me.author);
                state.records.insert(
                    at,
                    Record {
                        bureau: me.author,
                        household: placement.household,
                        since: me,
                    },
                );
                state.cancelled = None;
                if state.records.len() > 1 {
                    effects.created_duplicate = true;
                    self.duplicates.insert(person);
                }
            }
            Plan::Permit => {
                let Body::Permit {
                    person,
                    origin,
                    category,
                    valid_until_ms,
                    ..
                } = &e.body
                else {
                    unreachable!("plan matches body")
                };
                self.permits.insert(
                    me.position(),
                    PermitState {
                        reference: me,
                        person: *person,
                        origin: *origin,
                        category: *category,
                        issued_ms: e.time_ms,
                        valid_until_ms: *valid_until_ms,
                        status: PermitStatus::Open,
                        revoked_by: None,
                    },
                );
                self.awaiting_origin
                    .entry(*origin)
                    .or_default()
                    .insert(me.position());
            }
            Plan::Refuse { permit } => {
                let p = self.permits.get_mut(&permit.position()).expect("judged");
                p.status = PermitStatus::Refused { by: me };
                remove_awaiting(&mut self.awaiting_origin, me.author, permit.position());
                effects.acted_on = Some(permit);
            }
            Plan::Revoke { permit } => {
                let p = self.permits.get_mut(&permit.position()).expect("judged");
                p.revoked_by = Some(me);
                let origin = p.origin;
                remove_awaiting(&mut self.awaiting_origin, origin, permit.position());
                effects.acted_on = Some(permit);
            }
            Plan::Deregister {
                person,
                permit,
                destination,
                record,
                succession,
            } => {
                let p = self.permits.get_mut(&permit.position()).expect("judged");
                assert_eq!(
                    p.status,
                    PermitStatus::Open,
                    "a permit is consumed at most once (I2)"
                );
                p.status = PermitStatus::Consumed { by: me };
                remove_awaiting(&mut self.awaiting_origin, me.author, permit.position());
                self.leave(me.author, person, record, succession);
                self.deregistrations.insert(
                    me.position(),
                    DeregistrationState {
                        reference: me,
                        person,
                        permit,
                        destination,
                        time_ms: e.time_ms,
                        consumed_by: None,
                    },
                );
                self.awaiting_destination
                    .entry(destination)
                    .or_default()
                    .insert(me.position());
                let in_transit = &mut self
                    .persons
                    .get_mut(&person)
                    .expect("registered")
                    .in_transit;
                let at = in_transit.partition_point(|d| *d < me);
                in_transit.insert(at, me);
                effects.acted_on = Some(permit);
            }
            Plan::Cancel {
                person,
                record,
                succession,
            } => {
                self.leave(me.author, person, record, succession);
                let Body::Cancellation { reason, .. } = &e.body else {
                    unreachable!("plan matches body")
                };
                self.persons.get_mut(&person).expect("registered").cancelled = Some((me, *reason));
                self.cancellations.insert(me.position(), (person, *reason));
            }
            Plan::Claim {
                person,
                claimant,
                after,
            } => {
                let previous = self
                    .claimed
                    .insert((me.author, person, after.map(|a| a.position())), me);
                assert!(
                    previous.is_none(),
                    "an arbiter grants one claim per person and cancellation (I1)"
                );
                self.claims.insert(
                    me.position(),
                    ClaimState {
                        reference: me,
                        person,
                        claimant,
                        after,
                        consumed_by: None,
                    },
                );
                effects.acted_on = after;
            }
            Plan::HeadChange {
                household,
                new_head,
            } => {
                self.households
                    .get_mut(&(me.author, household))
                    .expect("judged")
                    .head = new_head;
            }
        }

        let log = self.logs.entry(e.author).or_default();
        assert_eq!(log.len(), e.seq.0, "seq is contiguous (I3)");
        assert_eq!(log.tip(), e.prev, "prev links the chain (I3)");
        log.hashes.push(me.hash);
        log.kinds.push(kind);
        log.last_time_ms = e.time_ms;
        self.entries_applied += 1;
        effects
    }

    /// Removes a person's record at `bureau` and keeps the household consistent.
    fn leave(
        &mut self,
        bureau: BureauCode,
        person: PersonTag,
        record: Record,
        succession: Option<PersonTag>,
    ) {
        let key = (bureau, record.household);
        let household = self
            .households
            .get_mut(&key)
            .expect("a record's household exists");
        household.members -= 1;
        if household.members == 0 {
            self.households.remove(&key);
        } else if household.head == person {
            household.head = succession.expect("judged: a successor is named");
        }
        let state = self.persons.get_mut(&person).expect("registered");
        state.records.retain(|r| r.bureau != bureau);
        if state.records.len() <= 1 {
            self.duplicates.remove(&person);
        }
    }
}

fn remove_awaiting(
    map: &mut HashMap<BureauCode, BTreeSet<Position>>,
    bureau: BureauCode,
    position: Position,
) {
    if let Some(set) = map.get_mut(&bureau) {
        set.remove(&position);
        if set.is_empty() {
            map.remove(&bureau);
        }
    }
}

/// What a person joining a bureau consumes: a claim (out of nowhere) or a deregistration
/// (moving in).
#[derive(Clone, Copy)]
enum Consumes {
    Claim(EntryRef),
    Deregistration(EntryRef),
}

/// SPEC 4, `Birth`'s own rules, in order, before the rules it shares with `Enrol`: `born_on`
/// is a date; not after the entry's date (China time); at most
/// [`crate::limits::BIRTH_REGISTRATION_AGE_DAYS_MAX`] days before it.
fn check_birth_date(me: EntryRef, time_ms: u64, born_on: u32) -> Result<(), Violation> {
    let date = crate::calendar::Date::new(
        (born_on / 10_000) as i32,
        ((born_on / 100) % 100) as u8,
        (born_on % 100) as u8,
    )
    .map_err(|_| Violation::BirthDateInvalid { entry: me, born_on })?;
    let today = crate::calendar::china_date(time_ms);
    let entry_date = today.year().max(0) as u32 * 10_000
        + u32::from(today.month()) * 100
        + u32::from(today.day());
    ensure!(
        date <= today,
        Violation::BirthDateInFuture {
            entry: me,
            born_on,
            entry_date
        }
    );
    let age_days = (today.to_days() - date.to_days()) as u64;
    let max_days = crate::limits::BIRTH_REGISTRATION_AGE_DAYS_MAX;
    ensure!(
        age_days <= u64::from(max_days),
        Violation::BirthDateTooOld {
            entry: me,
            born_on,
            age_days: u32::try_from(age_days).unwrap_or(u32::MAX),
            max_days
        }
    );
    Ok(())
}

/// What a judged entry will change.
enum Plan {
    Join {
        person: PersonTag,
        placement: Placement,
        consumes: Consumes,
    },
    Claim {
        person: PersonTag,
        claimant: BureauCode,
        after: Option<EntryRef>,
    },
    Permit,
    Refuse {
        permit: EntryRef,
    },
    Revoke {
        permit: EntryRef,
    },
    Deregister {
        person: PersonTag,
        permit: EntryRef,
        destination: BureauCode,
        record: Record,
        succession: Option<PersonTag>,
    },
    Cancel {
        person: PersonTag,
        record: Record,
        succession: Option<PersonTag>,
    },
    HeadChange {
        household: HouseholdId,
        new_head: PersonTag,
    },
}

/// Holds entries that arrived before what they wait for (their log's previous entry, or an
/// entry they reference) and applies them, in causal order, as soon as it is applied. With it
/// the resulting state does not depend on the order entries arrive in.
#[derive(Debug, Default)]
pub struct CausalBuffer {
    waiting: HashMap<Position, Vec<(SignedEntry, SignatureCheck)>>,
    order: VecDeque<Position>,
    len: usize,
}

/// What became of one offered (or released) entry.
#[derive(Debug)]
pub struct Judged {
    pub entry: SignedEntry,
    pub result: Result<Effects, Violation>,
}

impl CausalBuffer {
    /// An empty buffer.
    pub fn new() -> CausalBuffer {
        CausalBuffer::default()
    }

    /// Entries waiting.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Entries still waiting, with the position each waits for.
    pub fn waiting(&self) -> impl Iterator<Item = (&(BureauCode, Seq), &SignedEntry)> {
        self.waiting
            .iter()
            .flat_map(|(p, es)| es.iter().map(move |(e, _)| (p, e)))
    }

    /// Empties the buffer: every waiting entry, with the signature check it was offered with, to
    /// be offered again to another ledger (a node rebuilding its state, `node::service`).
    pub fn take_all(&mut self) -> Vec<(SignedEntry, SignatureCheck)> {
        self.order.clear();
        self.len = 0;
        self.waiting.drain().flat_map(|(_, es)| es).collect()
    }

    /// Offers an entry: applies it if it is ready, else holds it. Returns every entry judged as
    /// a result, in the order they were applied: the offered one and any it released.
    pub fn offer(
        &mut self,
        ledger: &mut Ledger,
        entry: SignedEntry,
        signature: SignatureCheck,
    ) -> Vec<Judged> {
        let mut out = Vec::new();
        let mut queue = VecDeque::from([(entry, signature)]);
        while let Some((entry, signature)) = queue.pop_front() {
            if let Some(position) = ledger.waiting_for(&entry) {
                // Check what can be checked now (network, author, signature), so a forged entry
                // is refused at once rather than held.
                if let Err(v) = ledger.check_envelope(&entry, signature) {
                    out.push(Judged {
                        entry,
                        result: Err(v),
                    });
                    continue;
                }
                self.hold(position, entry, signature);
                continue;
            }
            let result = ledger.apply(&entry, signature);
            if result.is_ok() {
                let position = (entry.entry().author, entry.entry().seq);
                if let Some(released) = self.waiting.remove(&position) {
                    self.len -= released.len();
                    queue.extend(released);
                }
            }
            out.push(Judged { entry, result });
        }
        out
    }

    fn hold(&mut self, position: Position, entry: SignedEntry, signature: SignatureCheck) {
        let slot = self.waiting.entry(position).or_default();
        if slot.iter().any(|(e, _)| e.hash() == entry.hash()) {
            return;
        }
        slot.push((entry, signature));
        self.order.push_back(position);
        self.len += 1;
        while self.len > crate::limits::PENDING_ENTRIES_MAX {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(dropped) = self.waiting.remove(&oldest) {
                self.len -= dropped.len();
            }
        }
    }
}

impl Ledger {
    /// SPEC 1 alone: network, author, signature.
    pub fn check_envelope(
        &self,
        entry: &SignedEntry,
        signature: SignatureCheck,
    ) -> Result<(), Violation> {
        let e = entry.entry();
        let me = entry.reference();
        ensure!(
            e.network == self.membership.network(),
            Violation::WrongNetwork {
                entry: me,
                found: e.network
            }
        );
        let key = self
            .membership
            .key(e.author)
            .ok_or(Violation::UnknownAuthor { entry: me })?;
        if signature == SignatureCheck::Verify {
            ensure!(entry.verify(key), Violation::BadSignature { entry: me });
        }
        Ok(())
    }
}
