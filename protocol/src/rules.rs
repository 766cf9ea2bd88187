//! The rulebook: the ledger state and `apply`, the one place validity is decided.
//!
//! The node applies it to every entry it writes or receives, the witness before it cosigns, the
//! auditor when it replays an export. Nothing here reads a clock, a disk or a random source.
//!
//! # Order of checks (SPEC)
//!
//! An entry that breaks several rules is reported by the first rule in this order, so node,
//! witness and auditor name the same violation for the same entry. The order is data: the
//! catalogue ([`ENVELOPE_RULES`], [`CHAIN_RULES`], [`REFERENCE_RULES`], [`BODY_RULES`]) lists
//! every rule in the order the code checks it, `docs/RULES.md` is rendered from it, and
//! `protocol/tests/rule_order.rs` checks, for every pair of rules of a body that one entry can
//! break together, that the earlier one is reported.
//!
//! 1. envelope: `wrong_network`, `epoch_unknown` (not yet: the entry waits for its epoch),
//!    `unknown_author`, `bad_signature`, `signed_after_cut`, `reference_to_non_member` (what the
//!    entry and the configuration log show, so [`CausalBuffer`] refuses such an entry at once, by
//!    the same name, instead of holding it for a log that will never exist);
//! 2. chain: `duplicate_entry` or `equivocation` (seq below the log's length: the same hash is a
//!    duplicate, another hash an equivocation), `missing_previous` (seq above it),
//!    `prev_mismatch`, `time_went_backwards`, `epoch_regressed`;
//! 3. references, in the order the body lists them ([`Body::references`]): `unknown_reference`,
//!    then `reference_hash_mismatch`, for each reference before the next;
//! 4. the body's own rules, in the order of its [`BODY_RULES`] entry. Whether a reference is of
//!    the kind the body expects (`reference_wrong_kind`) is one of them, at the place listed
//!    there: first for a refusal, deregistration, registration, revocation or enrolment (for a
//!    birth, after its date rules); after the arbiter and claimant checks for a claim's `after`;
//!    after the origin, validity and category checks for a permit's `corrects`.
//!
//! [`Ledger::admit`] then checks, for an entry its own author is about to sign, the rules of
//! [`Stage::Admit`] in the same lists, after every rule above passed.
//!
//! A few rules are *shadowed* ([`BodyRules::shadowed`]): no entry breaks them without breaking an
//! earlier rule of its list, so they are never reported. They are checked all the same, as
//! defence in depth: they hold by the argument for I1 below (a person with an unconsumed claim,
//! or with a deregistration in transit, stands nowhere else), which no single check enforces.
//!
//! # Determinism across logs
//!
//! Logs are replicated in no global order, so `apply` must give the same answer whatever order
//! entries of different logs arrive in. It does, because every rule depends only on
//! (a) the author's own log so far, (b) the entries the body references (applied first: entries
//! wait in [`CausalBuffer`] until what they reference is applied), and (c) statuses that only the
//! author's own log can change. The one fact that belonged to no single log, "this person is
//! registered nowhere else" (two bureaus may enrol one person at the same moment), belongs to
//! one now: the person's arbiter's ([`Membership::arbiter`]). An enrolment or birth consumes a
//! claim ([`Body::Claim`]) that only the arbiter writes, naming the one bureau that may consume it;
//! the arbiter's log holds at most one claim per person and cancellation followed (or none), and
//! only the claimant's own log can consume it. So of two bureaus enrolling one person at once,
//! at most one holds a claim, and every node refuses the other's enrolment, whatever order the
//! logs arrive in.
//!
//! [`Ledger::admit`] adds, when a bureau creates an entry, checks no single log owns: that the
//! permit a refusal or deregistration acts on was not revoked, and that the permit a revocation
//! withdraws was not refused or consumed (the origin's and the destination's logs may race: both
//! entries are valid, and the inbox shows the conflict); and that the person of a claim,
//! enrolment or birth is registered nowhere, in transit nowhere and not cancelled for good, which
//! the claim rules already ensure (those admit rules are shadowed).
//!
//! # Invariants
//!
//! I1 (at most one registration per person) is enforced by `apply` itself, through claims.
//! Every record of a person, or deregistration of them in transit, stems from one consumed claim
//! (a transfer only moves it: a deregistration ends a record, a registration consumes the
//! deregistration) until a cancellation ends it; the arbiter grants at most one claim per person
//! following no cancellation, and one per cancellation of theirs not for good. So in every
//! history `apply` accepts, in any order, a person has at most one record or deregistration in
//! transit (ARCHITECTURE.md, "Nobody registered twice"). Records are still kept per bureau, and a
//! second one would still be reported as a duplicate (重) finding ([`Ledger::duplicates`]), as
//! defence in depth. I2 (every registration consumes exactly one deregistration, which consumes
//! exactly one permit of the same person, origin and destination) and I3 (each log a single
//! chain) are enforced by `apply` too.

// A violation carries the entries that prove it (a few references, ~200 bytes); refusals are
// the rare path, so returning it unboxed costs nothing that matters.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use crate::entry::{Body, BodyKind, Placement, SignedEntry};
use crate::limits::{HOUSEHOLD_ID_MAX, PERMIT_VALIDITY_MS_MAX, PERMIT_VALIDITY_MS_MIN};
use std::sync::Arc;

use crate::config::{
    ConfigError, Cut, CutKind, Deadlines, EpochConfig, Epochs, Handover, SignedUpdate,
};
use crate::membership::Membership;
use crate::types::{
    BureauCode, CONFIG_LOG, EntryHash, EntryRef, HouseholdId, NetworkId, PersonTag, Seq,
};
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
        "permit {entry} is valid until {valid_until_ms} ms; from its own time {time_ms} ms that must be at least {validity_ms_min} ms and at most {validity_ms_max} ms later"
    )]
    PermitValidityInvalid {
        entry: EntryRef,
        valid_until_ms: u64,
        time_ms: u64,
        /// [`crate::limits::PERMIT_VALIDITY_MS_MIN`], carried so the message is self-contained.
        validity_ms_min: u64,
        /// [`crate::limits::PERMIT_VALIDITY_MS_MAX`].
        validity_ms_max: u64,
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
    // Variants added after the first release go below, in the order they were added; a retired
    // variant is removed and its name listed in [`RETIRED_NAMES`].
    #[error("permit {entry} is a return-after-error permit but names no registration it corrects")]
    CorrectionMissing { entry: EntryRef },
    #[error(
        "permit {entry} names registration {corrects} as corrected, but only a return-after-error permit may (its category is {category})"
    )]
    CorrectionUnexpected {
        entry: EntryRef,
        corrects: EntryRef,
        category: Category,
    },
    #[error(
        "permit {entry} corrects registration {registration}, which moved the person from {from} to {}, not from {} (this permit's author) to {origin} (its origin)",
        registration.author, entry.author
    )]
    CorrectionWrongTransfer {
        entry: EntryRef,
        registration: EntryRef,
        /// The origin of the corrected transfer (the author of the deregistration it consumed).
        from: BureauCode,
        /// The origin this permit names.
        origin: BureauCode,
    },
    #[error(
        "entry {entry} registers against deregistration {deregistration}, but its author revoked that deregistration's permit {permit} by {revocation}"
    )]
    PermitRevokedByDestination {
        entry: EntryRef,
        deregistration: EntryRef,
        permit: EntryRef,
        revocation: EntryRef,
    },
    #[error(
        "entry {entry} places the person in household {household}, beyond the largest household number {household_max}"
    )]
    HouseholdOutOfRange {
        entry: EntryRef,
        household: HouseholdId,
        /// [`crate::limits::HOUSEHOLD_ID_MAX`].
        household_max: u64,
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
    #[error("entry {entry} references {reference}, in the log of {}, which is not a member", reference.author)]
    ReferenceToNonMember {
        entry: EntryRef,
        reference: EntryRef,
    },
    #[error("entry {entry} names configuration epoch {epoch}, which is not known yet")]
    EpochUnknown { entry: EntryRef, epoch: u32 },
    #[error(
        "entry {entry} names epoch {epoch}, but configuration epoch {cut_epoch} {} the log of {} from seq {from_seq}: entries there must name epoch {cut_epoch} or later",
        if *retired { "retired" } else { "revoked the key of" }, entry.author
    )]
    SignedAfterCut {
        entry: EntryRef,
        epoch: u32,
        from_seq: Seq,
        cut_epoch: u32,
        retired: bool,
    },
    #[error(
        "entry {entry} names epoch {epoch}, below epoch {previous} of the log's previous entry"
    )]
    EpochRegressed {
        entry: EntryRef,
        epoch: u32,
        previous: u32,
    },
    #[error(
        "claim {entry} waits for the log of {from}, the person's previous arbiter, to reach seq {until_seq} (its claims until it retired)"
    )]
    HandoverPending {
        entry: EntryRef,
        from: BureauCode,
        until_seq: Seq,
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
            Violation::CorrectionMissing { .. } => "correction_missing",
            Violation::CorrectionUnexpected { .. } => "correction_unexpected",
            Violation::CorrectionWrongTransfer { .. } => "correction_wrong_transfer",
            Violation::PermitRevokedByDestination { .. } => "permit_revoked_by_destination",
            Violation::HouseholdOutOfRange { .. } => "household_out_of_range",
            Violation::ReferenceToNonMember { .. } => "reference_to_non_member",
            Violation::EpochUnknown { .. } => "epoch_unknown",
            Violation::SignedAfterCut { .. } => "signed_after_cut",
            Violation::EpochRegressed { .. } => "epoch_regressed",
            Violation::HandoverPending { .. } => "handover_pending",
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
            Violation::CorrectionMissing { entry }
            | Violation::CorrectionUnexpected { entry, .. }
            | Violation::CorrectionWrongTransfer { entry, .. }
            | Violation::PermitRevokedByDestination { entry, .. }
            | Violation::HouseholdOutOfRange { entry, .. }
            | Violation::ReferenceToNonMember { entry, .. }
            | Violation::EpochUnknown { entry, .. }
            | Violation::SignedAfterCut { entry, .. }
            | Violation::EpochRegressed { entry, .. }
            | Violation::HandoverPending { entry, .. } => *entry,
        }
    }

    /// Whether the entry may become valid later (it waits for something not yet applied), as
    /// opposed to being wrong for good.
    pub fn is_not_yet(&self) -> bool {
        matches!(
            self,
            Violation::MissingPrevious { .. }
                | Violation::UnknownReference { .. }
                | Violation::EpochUnknown { .. }
                | Violation::HandoverPending { .. }
        )
    }

    /// Whether this is the harmless arrival of an entry already held.
    pub fn is_duplicate(&self) -> bool {
        matches!(self, Violation::DuplicateEntry { .. })
    }
}

/// Names once used for a rule and retired: never used again for another rule, so an old audit
/// report or API log cannot be misread. `correction_mismatch` covered three rules of a
/// return-after-error permit; it was split into `correction_missing`, `correction_unexpected`
/// and `correction_wrong_transfer`.
pub const RETIRED_NAMES: &[&str] = &["correction_mismatch"];

/// Which function checks a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// [`Ledger::apply`] (and so [`Ledger::check`] and [`Ledger::admit`]): every node, witness
    /// and auditor, for every entry of every log.
    Apply,
    /// [`Ledger::admit`] only: the author, before it signs an entry of its own. These are the
    /// facts no single log owns (see "Determinism across logs"); a replica never checks them.
    Admit,
}

/// One rule of the catalogue: the violation that names it and when an entry breaks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The violation's stable name ([`Violation::name`]).
    pub name: &'static str,
    pub stage: Stage,
    /// When an entry is refused by this rule, in one line.
    pub refused_when: &'static str,
}

impl Rule {
    const fn apply(name: &'static str, refused_when: &'static str) -> Rule {
        Rule {
            name,
            stage: Stage::Apply,
            refused_when,
        }
    }

    const fn admit(name: &'static str, refused_when: &'static str) -> Rule {
        Rule {
            name,
            stage: Stage::Admit,
            refused_when,
        }
    }

    /// The rule's key within its body's list: its name, prefixed `admit:` for an admit rule (a
    /// name can appear once at each stage).
    pub fn key(&self) -> String {
        match self.stage {
            Stage::Apply => self.name.to_string(),
            Stage::Admit => format!("admit:{}", self.name),
        }
    }
}

/// The body rules of one or more body kinds, in the order they are checked: first every
/// [`Stage::Apply`] rule, then every [`Stage::Admit`] rule.
#[derive(Clone, Copy, Debug)]
pub struct BodyRules {
    pub kinds: &'static [BodyKind],
    pub rules: &'static [Rule],
    /// Pairs of rules (by [`Rule::key`], in catalogue order) that no single entry can break
    /// both of, with why. For every other pair an entry breaking both is reported by the
    /// earlier rule, which `protocol/tests/rule_order.rs` checks.
    pub exclusive: &'static [(&'static str, &'static str, &'static str)],
    /// Rules no entry can break without also breaking an earlier rule of the list, so they are
    /// never the one reported. The code checks them all the same, as defence in depth: they hold
    /// because of an argument about every history `apply` accepts (the claims, for I1), and the
    /// check is what keeps a flaw in that argument from becoming a wrong state.
    pub shadowed: &'static [Shadowed],
}

/// A rule of a body's list that is never reported: see [`BodyRules::shadowed`].
#[derive(Clone, Copy, Debug)]
pub struct Shadowed {
    /// The rule, by [`Rule::key`].
    pub rule: &'static str,
    /// Earlier rules of the list, by key: an entry that breaks `rule` breaks at least one of
    /// them.
    pub by: &'static [&'static str],
    /// Why.
    pub why: &'static str,
}

/// A violation as the catalogue documents it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ViolationDoc {
    /// [`Violation::name`].
    pub name: &'static str,
    /// The evidence the violation carries, `field: type`, in declaration order.
    pub fields: &'static [&'static str],
    /// What it means, in one line.
    pub meaning: &'static str,
}

/// SPEC 1, in order.
pub const ENVELOPE_RULES: &[Rule] = &[
    Rule::apply(
        "wrong_network",
        "the entry's `network` is not the id of the network the ledger judges for",
    ),
    Rule::apply(
        "epoch_unknown",
        "the configuration log has no epoch `epoch` yet (not yet: the entry waits for the update that makes it)",
    ),
    Rule::apply(
        "unknown_author",
        "the entry's `author` is not a member in the entry's epoch (not yet added, or retired)",
    ),
    Rule::apply(
        "bad_signature",
        "the signature does not verify, strictly, under the author's key of the entry's epoch (skipped when the caller verified it in a batch)",
    ),
    Rule::apply(
        "signed_after_cut",
        "a later epoch revoked the author's key or retired it from a seq at or below the entry's: entries there must name that epoch or a later one",
    ),
    Rule::apply(
        "reference_to_non_member",
        "a reference (in the order [`Body::references`] lists them) names the log of a bureau that was a member in no epoch up to the entry's",
    ),
];

/// SPEC 2, in order.
pub const CHAIN_RULES: &[Rule] = &[
    Rule::apply(
        "duplicate_entry",
        "`seq` is below the log's length and the entry held there has the same hash (a harmless re-delivery)",
    ),
    Rule::apply(
        "equivocation",
        "`seq` is below the log's length and the entry held there has another hash (checked together with `duplicate_entry`)",
    ),
    Rule::apply(
        "missing_previous",
        "`seq` is above the log's length (not yet: the entry waits for the ones before it)",
    ),
    Rule::apply(
        "prev_mismatch",
        "`prev` is not the hash of the log's last entry (zero for `seq` 0)",
    ),
    Rule::apply(
        "time_went_backwards",
        "`time_ms` is below the `time_ms` of the log's last entry",
    ),
    Rule::apply(
        "epoch_regressed",
        "`epoch` is below the epoch of the log's last entry",
    ),
];

/// SPEC 3, in order, for each reference in the order [`Body::references`] lists them.
pub const REFERENCE_RULES: &[Rule] = &[
    Rule::apply(
        "unknown_reference",
        "no entry is applied at the reference's (author, seq) (not yet: the entry waits for it)",
    ),
    Rule::apply(
        "reference_hash_mismatch",
        "the entry applied at the reference's (author, seq) has another hash",
    ),
];

const PERSON_NOT_REGISTERED_HERE: Rule = Rule::apply(
    "person_not_registered_here",
    "the person has no record at the author",
);
const HEAD_LEAVING_WITHOUT_SUCCESSOR: Rule = Rule::apply(
    "head_leaving_without_successor",
    "the person heads their household at the author, it has other members, and `new_head` is absent",
);
const SUCCESSOR_NOT_IN_HOUSEHOLD_LEAVING: Rule = Rule::apply(
    "successor_not_in_household",
    "the person heads a household with other members and `new_head` is the person or not a member of that household",
);
const SUCCESSOR_UNEXPECTED: Rule = Rule::apply(
    "successor_unexpected",
    "`new_head` is given but the person does not head a household with other members",
);
const HOUSEHOLD_OUT_OF_RANGE: Rule = Rule::apply(
    "household_out_of_range",
    "the placement's household number is above `HOUSEHOLD_ID_MAX`",
);
const HOUSEHOLD_HAS_HEAD: Rule = Rule::apply(
    "household_has_head",
    "the relation is `head` and the household already exists at the author",
);
const HOUSEHOLD_UNKNOWN_PLACEMENT: Rule = Rule::apply(
    "household_unknown",
    "the relation is not `head` and the household does not exist at the author",
);

const CLAIM_IS_A_CLAIM: Rule = Rule::apply("reference_wrong_kind", "`claim` is not a claim");
const CLAIM_OF_THE_PERSON: Rule = Rule::apply("person_mismatch", "the claim is on another person");
const CLAIM_FOR_AUTHOR: Rule = Rule::apply(
    "claim_not_for_author",
    "the claim's `claimant` is not the author",
);
const CLAIM_NOT_CONSUMED: Rule = Rule::apply(
    "claim_consumed",
    "an enrolment or birth already consumed the claim",
);
const REGISTERED_HERE: Rule = Rule::apply(
    "person_already_registered",
    "the person has a record at the author",
);
const ADMIT_REGISTERED_ANYWHERE: Rule = Rule::admit(
    "person_already_registered",
    "the person has a record at any bureau (the first in bureau-code order is named)",
);
const ADMIT_IN_TRANSIT: Rule = Rule::admit(
    "person_in_transit",
    "the person has a deregistration no registration consumed yet (the least by bureau code, then seq, is named)",
);
const ADMIT_CANCELLED_FOR_GOOD: Rule = Rule::admit(
    "person_cancelled",
    "the person's latest cancellation, with no record since, was for `death` or `duplicate-record`",
);
const ENROL_RULES: &[Rule] = &[
    CLAIM_IS_A_CLAIM,
    CLAIM_OF_THE_PERSON,
    CLAIM_FOR_AUTHOR,
    CLAIM_NOT_CONSUMED,
    REGISTERED_HERE,
    HOUSEHOLD_OUT_OF_RANGE,
    HOUSEHOLD_HAS_HEAD,
    HOUSEHOLD_UNKNOWN_PLACEMENT,
    ADMIT_REGISTERED_ANYWHERE,
    ADMIT_IN_TRANSIT,
    ADMIT_CANCELLED_FOR_GOOD,
];
/// The claim rules of an enrolment or birth: it breaks one of them whenever its person is
/// registered, in transit or cancelled for good.
const CLAIM_RULES_OF_ENROL: &[&str] = &[
    "reference_wrong_kind",
    "person_mismatch",
    "claim_not_for_author",
    "claim_consumed",
];
const ENROL_EXCLUSIVE: &[(&str, &str, &str)] = &[
    ("reference_wrong_kind", "person_mismatch", NO_CLAIM),
    ("reference_wrong_kind", "claim_not_for_author", NO_CLAIM),
    ("reference_wrong_kind", "claim_consumed", NO_CLAIM),
    (
        "household_out_of_range",
        "household_has_head",
        "a household beyond the bound never exists, so has no head",
    ),
    (
        "household_has_head",
        "household_unknown",
        "one needs the relation `head`, the other any other relation",
    ),
];
const ENROL_SHADOWED: &[Shadowed] = &[
    Shadowed {
        rule: "person_already_registered",
        by: CLAIM_RULES_OF_ENROL,
        why: UNCONSUMED_CLAIM,
    },
    Shadowed {
        rule: "admit:person_already_registered",
        by: CLAIM_RULES_OF_ENROL,
        why: UNCONSUMED_CLAIM,
    },
    Shadowed {
        rule: "admit:person_in_transit",
        by: CLAIM_RULES_OF_ENROL,
        why: UNCONSUMED_CLAIM,
    },
    Shadowed {
        rule: "admit:person_cancelled",
        by: CLAIM_RULES_OF_ENROL,
        why: UNCONSUMED_CLAIM,
    },
];
const UNCONSUMED_CLAIM: &str = "a person with an unconsumed claim has no record, no deregistration in transit and no cancellation for good (see \"Claims\")";
const NO_CLAIM: &str = "an entry that is not a claim has no person, claimant or consumer";

/// The rules of a claim one of which it breaks whenever its person is registered or in transit:
/// it is not the arbiter's, or its `after` is not a cancellation of the person the arbiter may
/// still follow.
const FREE_CLAIM: &[&str] = &[
    "not_arbiter",
    "reference_wrong_kind",
    "person_mismatch",
    "person_claimed",
];
/// Those, and `person_cancelled`, for a person cancelled for good.
const FREE_CLAIM_OR_CANCELLED: &[&str] = &[
    "not_arbiter",
    "reference_wrong_kind",
    "person_mismatch",
    "person_cancelled",
    "person_claimed",
];
const GRANTABLE_CLAIM: &str = "a claim by the arbiter following a cancellation of the person not for good (or following none) that no claim followed yet is of a person with no record, no deregistration in transit and no cancellation for good (see \"Claims\")";
const AFTER_FOR_GOOD: &str =
    "a person cancelled for good has no record and no deregistration in transit (see \"Claims\")";

/// SPEC 4 and `admit`: each body kind's rules, in the order they are checked.
pub const BODY_RULES: &[BodyRules] = &[
    BodyRules {
        kinds: &[BodyKind::Enrol],
        rules: ENROL_RULES,
        exclusive: ENROL_EXCLUSIVE,
        shadowed: ENROL_SHADOWED,
    },
    BodyRules {
        kinds: &[BodyKind::Birth],
        rules: &[
            Rule::apply("birth_date_invalid", "`born_on` is not a date YYYYMMDD"),
            Rule::apply(
                "birth_date_in_future",
                "`born_on` is after the entry's date (China time, from `time_ms`)",
            ),
            Rule::apply(
                "birth_date_too_old",
                "`born_on` is more than `BIRTH_REGISTRATION_AGE_DAYS_MAX` days before the entry's date",
            ),
            // Then every rule of `Enrol`, in its order (`ENROL_RULES`).
            CLAIM_IS_A_CLAIM,
            CLAIM_OF_THE_PERSON,
            CLAIM_FOR_AUTHOR,
            CLAIM_NOT_CONSUMED,
            REGISTERED_HERE,
            HOUSEHOLD_OUT_OF_RANGE,
            HOUSEHOLD_HAS_HEAD,
            HOUSEHOLD_UNKNOWN_PLACEMENT,
            ADMIT_REGISTERED_ANYWHERE,
            ADMIT_IN_TRANSIT,
            ADMIT_CANCELLED_FOR_GOOD,
        ],
        exclusive: &[
            (
                "birth_date_invalid",
                "birth_date_in_future",
                "a date that does not exist has no place in time",
            ),
            (
                "birth_date_invalid",
                "birth_date_too_old",
                "a date that does not exist has no age",
            ),
            (
                "birth_date_in_future",
                "birth_date_too_old",
                "a date is either after the entry's or before it",
            ),
            ("reference_wrong_kind", "person_mismatch", NO_CLAIM),
            ("reference_wrong_kind", "claim_not_for_author", NO_CLAIM),
            ("reference_wrong_kind", "claim_consumed", NO_CLAIM),
            (
                "household_out_of_range",
                "household_has_head",
                "a household beyond the bound never exists, so has no head",
            ),
            (
                "household_has_head",
                "household_unknown",
                "one needs the relation `head`, the other any other relation",
            ),
        ],
        shadowed: ENROL_SHADOWED,
    },
    BodyRules {
        kinds: &[BodyKind::Claim],
        rules: &[
            Rule::apply(
                "not_arbiter",
                "the author is not the person's arbiter in the entry's epoch (`EpochConfig::arbiter`)",
            ),
            Rule::apply(
                "handover_pending",
                "the person's arbiter slot passed to the author from a retired arbiter whose log is not yet held up to its cut (not yet: the claim waits for that log)",
            ),
            Rule::apply(
                "unknown_claimant",
                "`claimant` is not a member in the entry's epoch",
            ),
            Rule::apply(
                "reference_wrong_kind",
                "`after` is given and is not a cancellation",
            ),
            Rule::apply(
                "person_mismatch",
                "`after` is a cancellation of another person",
            ),
            Rule::apply(
                "person_cancelled",
                "`after` is a cancellation for `death` or `duplicate-record`",
            ),
            Rule::apply(
                "person_claimed",
                "a claim on the person with the same `after` was already granted, by the author or by an arbiter the person's slot passed from",
            ),
            ADMIT_REGISTERED_ANYWHERE,
            ADMIT_IN_TRANSIT,
            ADMIT_CANCELLED_FOR_GOOD,
        ],
        exclusive: &[
            (
                "not_arbiter",
                "person_claimed",
                "only the person's arbiter's log holds claims on them",
            ),
            ("reference_wrong_kind", "person_mismatch", NO_CANCELLATION),
            ("reference_wrong_kind", "person_cancelled", NO_CANCELLATION),
            (
                "reference_wrong_kind",
                "person_claimed",
                "no claim following an entry that is not a cancellation was ever granted",
            ),
            (
                "person_mismatch",
                "person_claimed",
                "no claim following a cancellation of another person was ever granted",
            ),
            (
                "person_cancelled",
                "person_claimed",
                "no claim following a cancellation for good was ever granted",
            ),
            (
                "person_cancelled",
                "admit:person_already_registered",
                AFTER_FOR_GOOD,
            ),
            (
                "person_cancelled",
                "admit:person_in_transit",
                AFTER_FOR_GOOD,
            ),
        ],
        shadowed: &[
            Shadowed {
                rule: "admit:person_already_registered",
                by: FREE_CLAIM,
                why: GRANTABLE_CLAIM,
            },
            Shadowed {
                rule: "admit:person_in_transit",
                by: FREE_CLAIM,
                why: GRANTABLE_CLAIM,
            },
            Shadowed {
                rule: "admit:person_cancelled",
                by: FREE_CLAIM_OR_CANCELLED,
                why: GRANTABLE_CLAIM,
            },
        ],
    },
    BodyRules {
        kinds: &[BodyKind::Permit],
        rules: &[
            Rule::apply("permit_origin_is_author", "`origin` is the author"),
            Rule::apply("unknown_origin", "`origin` is not a member"),
            Rule::apply(
                "permit_validity_invalid",
                "`valid_until_ms` is not within `PERMIT_VALIDITY_MS_MIN` to `PERMIT_VALIDITY_MS_MAX` (inclusive) after `time_ms`",
            ),
            Rule::apply(
                "correction_missing",
                "the category is `return-after-error` and `corrects` is absent",
            ),
            Rule::apply(
                "correction_unexpected",
                "`corrects` is given and the category is not `return-after-error`",
            ),
            Rule::apply(
                "reference_wrong_kind",
                "`corrects` (of a return-after-error permit) is not a registration",
            ),
            Rule::apply(
                "person_mismatch",
                "the corrected registration is of another person",
            ),
            Rule::apply(
                "correction_wrong_transfer",
                "the corrected registration is not by `origin`, or the deregistration it consumed is not by the author: it did not move the person from the author to the origin",
            ),
            Rule::apply(
                "person_already_registered",
                "the person has a record at the author",
            ),
        ],
        exclusive: &[
            (
                "permit_origin_is_author",
                "unknown_origin",
                "the author is a member",
            ),
            (
                "correction_missing",
                "correction_unexpected",
                "one needs a return-after-error permit without `corrects`, the other `corrects` on another category",
            ),
            (
                "correction_missing",
                "reference_wrong_kind",
                "the kind is checked only of a `corrects` that is given",
            ),
            (
                "correction_missing",
                "person_mismatch",
                "there is no corrected registration to compare",
            ),
            (
                "correction_missing",
                "correction_wrong_transfer",
                "there is no corrected registration to compare",
            ),
            (
                "reference_wrong_kind",
                "person_mismatch",
                "an entry that is not a registration has no registered person to compare",
            ),
            (
                "reference_wrong_kind",
                "correction_wrong_transfer",
                "an entry that is not a registration moved nobody",
            ),
        ],
        shadowed: &[],
    },
    BodyRules {
        kinds: &[BodyKind::Refusal],
        rules: &[
            Rule::apply("reference_wrong_kind", "`permit` is not a permit"),
            Rule::apply(
                "not_permit_origin",
                "the permit's `origin` is not the author",
            ),
            Rule::apply(
                "permit_not_open",
                "the permit was refused or consumed by a deregistration",
            ),
            Rule::admit(
                "permit_not_open",
                "the permit was revoked by its destination (status `revoked by …`)",
            ),
        ],
        exclusive: &[
            ("reference_wrong_kind", "not_permit_origin", NO_PERMIT),
            ("reference_wrong_kind", "permit_not_open", NO_PERMIT),
            ("reference_wrong_kind", "admit:permit_not_open", NO_PERMIT),
        ],
        shadowed: &[],
    },
    BodyRules {
        kinds: &[BodyKind::Deregistration],
        rules: &[
            Rule::apply("reference_wrong_kind", "`permit` is not a permit"),
            Rule::apply(
                "not_permit_origin",
                "the permit's `origin` is not the author",
            ),
            Rule::apply(
                "person_mismatch",
                "the permit is for another person than `person`",
            ),
            Rule::apply(
                "permit_not_open",
                "the permit was refused or consumed by a deregistration",
            ),
            Rule::apply(
                "permit_expired",
                "`time_ms` is after the permit's `valid_until_ms`",
            ),
            PERSON_NOT_REGISTERED_HERE,
            HEAD_LEAVING_WITHOUT_SUCCESSOR,
            SUCCESSOR_NOT_IN_HOUSEHOLD_LEAVING,
            SUCCESSOR_UNEXPECTED,
            Rule::admit(
                "permit_not_open",
                "the permit was revoked by its destination (status `revoked by …`)",
            ),
        ],
        exclusive: &[
            ("reference_wrong_kind", "not_permit_origin", NO_PERMIT),
            ("reference_wrong_kind", "person_mismatch", NO_PERMIT),
            ("reference_wrong_kind", "permit_not_open", NO_PERMIT),
            ("reference_wrong_kind", "permit_expired", NO_PERMIT),
            ("reference_wrong_kind", "admit:permit_not_open", NO_PERMIT),
            (
                "person_not_registered_here",
                "head_leaving_without_successor",
                NO_RECORD,
            ),
            (
                "person_not_registered_here",
                "successor_not_in_household",
                NO_RECORD,
            ),
            (
                "person_not_registered_here",
                "successor_unexpected",
                NO_RECORD,
            ),
            (
                "head_leaving_without_successor",
                "successor_not_in_household",
                SUCCESSION,
            ),
            (
                "head_leaving_without_successor",
                "successor_unexpected",
                SUCCESSION,
            ),
            (
                "successor_not_in_household",
                "successor_unexpected",
                SUCCESSION,
            ),
        ],
        shadowed: &[],
    },
    BodyRules {
        kinds: &[BodyKind::Registration],
        rules: &[
            Rule::apply(
                "reference_wrong_kind",
                "`deregistration` is not a deregistration",
            ),
            Rule::apply(
                "not_permit_destination",
                "the deregistration's destination (its permit's author) is not the author",
            ),
            Rule::apply(
                "person_mismatch",
                "the deregistration is of another person than `person`",
            ),
            Rule::apply(
                "deregistration_consumed",
                "a registration already consumed the deregistration",
            ),
            Rule::apply(
                "permit_revoked_by_destination",
                "the author revoked the deregistration's permit (an earlier entry of its own log)",
            ),
            Rule::apply(
                "person_already_registered",
                "the person has a record at the author",
            ),
            HOUSEHOLD_OUT_OF_RANGE,
            HOUSEHOLD_HAS_HEAD,
            HOUSEHOLD_UNKNOWN_PLACEMENT,
        ],
        exclusive: &[
            (
                "reference_wrong_kind",
                "not_permit_destination",
                NO_DEREGISTRATION,
            ),
            ("reference_wrong_kind", "person_mismatch", NO_DEREGISTRATION),
            (
                "reference_wrong_kind",
                "deregistration_consumed",
                NO_DEREGISTRATION,
            ),
            (
                "reference_wrong_kind",
                "permit_revoked_by_destination",
                NO_DEREGISTRATION,
            ),
            (
                "deregistration_consumed",
                "permit_revoked_by_destination",
                "the destination can neither register against a permit it revoked nor revoke one it registered against, and only it does either",
            ),
            (
                "household_out_of_range",
                "household_has_head",
                "a household beyond the bound never exists, so has no head",
            ),
            (
                "household_has_head",
                "household_unknown",
                "one needs the relation `head`, the other any other relation",
            ),
        ],
        shadowed: &[Shadowed {
            rule: "person_already_registered",
            by: &[
                "reference_wrong_kind",
                "person_mismatch",
                "deregistration_consumed",
            ],
            why: "a person with a deregistration in transit has no record anywhere (see \"Claims\")",
        }],
    },
    BodyRules {
        kinds: &[BodyKind::Revocation],
        rules: &[
            Rule::apply("reference_wrong_kind", "`permit` is not a permit"),
            Rule::apply(
                "not_permit_destination",
                "the permit's destination (its author) is not the author",
            ),
            Rule::apply(
                "permit_not_open",
                "the permit was already revoked (status `revoked by …`), or the author already registered against the deregistration that consumed it (status `consumed by …`)",
            ),
            Rule::admit(
                "permit_not_open",
                "the permit was refused, or consumed by a deregistration (registered against or not)",
            ),
        ],
        exclusive: &[
            ("reference_wrong_kind", "not_permit_destination", NO_PERMIT),
            ("reference_wrong_kind", "permit_not_open", NO_PERMIT),
            ("reference_wrong_kind", "admit:permit_not_open", NO_PERMIT),
        ],
        shadowed: &[],
    },
    BodyRules {
        kinds: &[BodyKind::Cancellation],
        rules: &[
            PERSON_NOT_REGISTERED_HERE,
            HEAD_LEAVING_WITHOUT_SUCCESSOR,
            SUCCESSOR_NOT_IN_HOUSEHOLD_LEAVING,
            SUCCESSOR_UNEXPECTED,
        ],
        exclusive: &[
            (
                "person_not_registered_here",
                "head_leaving_without_successor",
                NO_RECORD,
            ),
            (
                "person_not_registered_here",
                "successor_not_in_household",
                NO_RECORD,
            ),
            (
                "person_not_registered_here",
                "successor_unexpected",
                NO_RECORD,
            ),
            (
                "head_leaving_without_successor",
                "successor_not_in_household",
                SUCCESSION,
            ),
            (
                "head_leaving_without_successor",
                "successor_unexpected",
                SUCCESSION,
            ),
            (
                "successor_not_in_household",
                "successor_unexpected",
                SUCCESSION,
            ),
        ],
        shadowed: &[],
    },
    BodyRules {
        kinds: &[BodyKind::HeadChange],
        rules: &[
            Rule::apply(
                "household_unknown",
                "the household does not exist at the author",
            ),
            Rule::apply(
                "successor_not_in_household",
                "`new_head` is not a member of the household",
            ),
            Rule::apply("already_head", "`new_head` already heads the household"),
        ],
        exclusive: &[
            (
                "household_unknown",
                "already_head",
                "a household that does not exist has no head",
            ),
            (
                "successor_not_in_household",
                "already_head",
                "the head is a member of the household",
            ),
        ],
        shadowed: &[],
    },
];

const NO_PERMIT: &str =
    "an entry that is not a permit has no origin, destination, person or status";
const NO_DEREGISTRATION: &str =
    "an entry that is not a deregistration has no destination, person, consumer or permit";
const NO_CANCELLATION: &str = "an entry that is not a cancellation has no person or reason";
const NO_RECORD: &str = "a person with no record here heads no household here";
const SUCCESSION: &str = "each needs another combination of heading a household with other members and giving `new_head`";

/// The rules of one body kind, in order.
pub fn body_rules(kind: BodyKind) -> &'static BodyRules {
    BODY_RULES
        .iter()
        .find(|b| b.kinds.contains(&kind))
        .expect("every body kind is catalogued")
}

/// Every violation, in declaration order, with its evidence and meaning.
pub const VIOLATIONS: &[ViolationDoc] = &[
    ViolationDoc {
        name: "wrong_network",
        fields: &["entry: EntryRef", "found: NetworkId"],
        meaning: "the entry belongs to another network",
    },
    ViolationDoc {
        name: "unknown_author",
        fields: &["entry: EntryRef"],
        meaning: "the author is not a member",
    },
    ViolationDoc {
        name: "bad_signature",
        fields: &["entry: EntryRef"],
        meaning: "the signature does not verify under the author's key",
    },
    ViolationDoc {
        name: "duplicate_entry",
        fields: &["entry: EntryRef"],
        meaning: "the entry is already in the log (harmless)",
    },
    ViolationDoc {
        name: "equivocation",
        fields: &["existing: EntryRef", "conflicting: EntryRef"],
        meaning: "the author signed two different entries at one position (a fraud proof)",
    },
    ViolationDoc {
        name: "missing_previous",
        fields: &["entry: EntryRef", "expected: Seq"],
        meaning: "the log does not reach the entry's seq yet (`expected` is its length)",
    },
    ViolationDoc {
        name: "prev_mismatch",
        fields: &["entry: EntryRef", "expected: EntryHash", "found: EntryHash"],
        meaning: "`prev` does not link the entry to the log's last entry",
    },
    ViolationDoc {
        name: "time_went_backwards",
        fields: &["entry: EntryRef", "time_ms: u64", "previous_ms: u64"],
        meaning: "the entry is timed before the log's last entry",
    },
    ViolationDoc {
        name: "unknown_reference",
        fields: &["entry: EntryRef", "reference: EntryRef"],
        meaning: "a referenced entry is not applied (yet)",
    },
    ViolationDoc {
        name: "reference_hash_mismatch",
        fields: &[
            "entry: EntryRef",
            "reference: EntryRef",
            "actual: EntryHash",
        ],
        meaning: "a reference's hash is not the hash of the entry at its position",
    },
    ViolationDoc {
        name: "reference_wrong_kind",
        fields: &[
            "entry: EntryRef",
            "reference: EntryRef",
            "expected: BodyKind",
            "found: BodyKind",
        ],
        meaning: "a referenced entry is of another kind than the body needs",
    },
    ViolationDoc {
        name: "person_already_registered",
        fields: &["entry: EntryRef", "person: PersonTag", "at: EntryRef"],
        meaning: "the person already has a record (`at` is the entry that made it)",
    },
    ViolationDoc {
        name: "person_in_transit",
        fields: &[
            "entry: EntryRef",
            "person: PersonTag",
            "deregistration: EntryRef",
        ],
        meaning: "the person is deregistered and not yet registered anywhere",
    },
    ViolationDoc {
        name: "person_cancelled",
        fields: &[
            "entry: EntryRef",
            "person: PersonTag",
            "cancellation: EntryRef",
        ],
        meaning: "the person's registration was cancelled for death or as a duplicate",
    },
    ViolationDoc {
        name: "person_not_registered_here",
        fields: &["entry: EntryRef", "person: PersonTag", "bureau: BureauCode"],
        meaning: "the person has no record at the author",
    },
    ViolationDoc {
        name: "household_has_head",
        fields: &[
            "entry: EntryRef",
            "household: HouseholdId",
            "head: PersonTag",
        ],
        meaning: "a new head names a household that exists (and has `head`)",
    },
    ViolationDoc {
        name: "household_unknown",
        fields: &["entry: EntryRef", "household: HouseholdId"],
        meaning: "the household does not exist at the author",
    },
    ViolationDoc {
        name: "head_leaving_without_successor",
        fields: &[
            "entry: EntryRef",
            "household: HouseholdId",
            "members_left: u32",
        ],
        meaning: "a head leaves members behind without naming a new head",
    },
    ViolationDoc {
        name: "successor_not_in_household",
        fields: &[
            "entry: EntryRef",
            "successor: PersonTag",
            "household: HouseholdId",
        ],
        meaning: "the named new head is not a member of the household",
    },
    ViolationDoc {
        name: "successor_unexpected",
        fields: &["entry: EntryRef"],
        meaning: "a new head is named where none is needed",
    },
    ViolationDoc {
        name: "already_head",
        fields: &[
            "entry: EntryRef",
            "household: HouseholdId",
            "person: PersonTag",
        ],
        meaning: "the named new head already heads the household",
    },
    ViolationDoc {
        name: "permit_origin_is_author",
        fields: &["entry: EntryRef"],
        meaning: "a permit names its own author as the origin",
    },
    ViolationDoc {
        name: "unknown_origin",
        fields: &["entry: EntryRef", "origin: BureauCode"],
        meaning: "a permit names an origin that is not a member",
    },
    ViolationDoc {
        name: "permit_validity_invalid",
        fields: &[
            "entry: EntryRef",
            "valid_until_ms: u64",
            "time_ms: u64",
            "validity_ms_min: u64",
            "validity_ms_max: u64",
        ],
        meaning: "a permit's validity is not within the bounds after its own time",
    },
    ViolationDoc {
        name: "not_permit_origin",
        fields: &["entry: EntryRef", "permit: EntryRef", "origin: BureauCode"],
        meaning: "only the permit's origin may refuse it or deregister against it",
    },
    ViolationDoc {
        name: "not_permit_destination",
        fields: &[
            "entry: EntryRef",
            "reference: EntryRef",
            "destination: BureauCode",
        ],
        meaning: "only the permit's destination may revoke it or register against its deregistration",
    },
    ViolationDoc {
        name: "permit_not_open",
        fields: &[
            "entry: EntryRef",
            "permit: EntryRef",
            "status: PermitStatus",
        ],
        meaning: "the permit was refused, consumed or revoked (`status` says which, and by what entry)",
    },
    ViolationDoc {
        name: "permit_expired",
        fields: &[
            "entry: EntryRef",
            "permit: EntryRef",
            "valid_until_ms: u64",
            "time_ms: u64",
        ],
        meaning: "the deregistration is timed after the permit's validity",
    },
    ViolationDoc {
        name: "person_mismatch",
        fields: &[
            "entry: EntryRef",
            "reference: EntryRef",
            "expected: PersonTag",
            "found: PersonTag",
        ],
        meaning: "the entry names another person than the entry it references",
    },
    ViolationDoc {
        name: "deregistration_consumed",
        fields: &[
            "entry: EntryRef",
            "deregistration: EntryRef",
            "by: EntryRef",
        ],
        meaning: "the deregistration was already consumed by a registration (`by`)",
    },
    ViolationDoc {
        name: "correction_missing",
        fields: &["entry: EntryRef"],
        meaning: "a return-after-error permit names no registration it corrects",
    },
    ViolationDoc {
        name: "correction_unexpected",
        fields: &[
            "entry: EntryRef",
            "corrects: EntryRef",
            "category: Category",
        ],
        meaning: "a permit of another category names a registration it corrects",
    },
    ViolationDoc {
        name: "correction_wrong_transfer",
        fields: &[
            "entry: EntryRef",
            "registration: EntryRef",
            "from: BureauCode",
            "origin: BureauCode",
        ],
        meaning: "the corrected registration did not move the person from the permit's author to its origin",
    },
    ViolationDoc {
        name: "permit_revoked_by_destination",
        fields: &[
            "entry: EntryRef",
            "deregistration: EntryRef",
            "permit: EntryRef",
            "revocation: EntryRef",
        ],
        meaning: "a destination registers against a deregistration whose permit it revoked",
    },
    ViolationDoc {
        name: "household_out_of_range",
        fields: &[
            "entry: EntryRef",
            "household: HouseholdId",
            "household_max: u64",
        ],
        meaning: "the household number is above the largest allowed",
    },
    ViolationDoc {
        name: "not_arbiter",
        fields: &[
            "entry: EntryRef",
            "person: PersonTag",
            "arbiter: BureauCode",
        ],
        meaning: "a claim on a person is written by a bureau other than the person's arbiter",
    },
    ViolationDoc {
        name: "unknown_claimant",
        fields: &[
            "entry: EntryRef",
            "person: PersonTag",
            "claimant: BureauCode",
        ],
        meaning: "a claim grants a person to a bureau that is not a member",
    },
    ViolationDoc {
        name: "person_claimed",
        fields: &["entry: EntryRef", "person: PersonTag", "claim: EntryRef"],
        meaning: "the arbiter already granted a claim on the person following the same cancellation (or none)",
    },
    ViolationDoc {
        name: "claim_not_for_author",
        fields: &["entry: EntryRef", "claim: EntryRef", "claimant: BureauCode"],
        meaning: "an enrolment or birth consumes a claim granted to another bureau",
    },
    ViolationDoc {
        name: "claim_consumed",
        fields: &["entry: EntryRef", "claim: EntryRef", "by: EntryRef"],
        meaning: "an enrolment or birth consumes a claim already consumed",
    },
    ViolationDoc {
        name: "birth_date_invalid",
        fields: &["entry: EntryRef", "born_on: u32"],
        meaning: "a birth's `born_on` is not a date YYYYMMDD",
    },
    ViolationDoc {
        name: "birth_date_in_future",
        fields: &["entry: EntryRef", "born_on: u32", "entry_date: u32"],
        meaning: "a birth's date is after the entry's own date (China time)",
    },
    ViolationDoc {
        name: "birth_date_too_old",
        fields: &[
            "entry: EntryRef",
            "born_on: u32",
            "age_days: u32",
            "max_days: u32",
        ],
        meaning: "a birth is registered more than `BIRTH_REGISTRATION_AGE_DAYS_MAX` days after the date",
    },
    ViolationDoc {
        name: "reference_to_non_member",
        fields: &["entry: EntryRef", "reference: EntryRef"],
        meaning: "the entry references a position in the log of a bureau that is not a member",
    },
    ViolationDoc {
        name: "epoch_unknown",
        fields: &["entry: EntryRef", "epoch: u32"],
        meaning: "the entry names a configuration epoch not known yet (not yet: it waits)",
    },
    ViolationDoc {
        name: "signed_after_cut",
        fields: &[
            "entry: EntryRef",
            "epoch: u32",
            "from_seq: Seq",
            "cut_epoch: u32",
            "retired: bool",
        ],
        meaning: "the entry sits at or after a position from which a later epoch revoked the author's key (or retired it), and names an earlier epoch",
    },
    ViolationDoc {
        name: "epoch_regressed",
        fields: &["entry: EntryRef", "epoch: u32", "previous: u32"],
        meaning: "the entry names an epoch below its log's previous entry's",
    },
    ViolationDoc {
        name: "handover_pending",
        fields: &["entry: EntryRef", "from: BureauCode", "until_seq: Seq"],
        meaning: "a claim by a retired arbiter's successor waits until the predecessor's log is held up to its cut (not yet)",
    },
];

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
    /// Epoch every entry names, by seq.
    pub epochs: Vec<u32>,
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
    epochs: Arc<Epochs>,
    logs: HashMap<BureauCode, LogState>,
    persons: HashMap<PersonTag, PersonState>,
    permits: HashMap<Position, PermitState>,
    deregistrations: HashMap<Position, DeregistrationState>,
    registrations: HashMap<Position, RegistrationState>,
    claims: HashMap<Position, ClaimState>,
    /// Every applied cancellation: the person and the reason (claims follow them).
    cancellations: HashMap<Position, (PersonTag, CancellationReason)>,
    /// The claim granted per (person, cancellation it follows), by whichever arbiter: at most
    /// one (a slot's successor waits for its predecessor's log, `handover_pending`).
    claimed: HashMap<(PersonTag, Option<Position>), EntryRef>,
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
        Ledger::with_epochs(Epochs::of_membership(membership))
    }

    /// An empty ledger judging by a configuration log.
    pub fn with_epochs(epochs: Epochs) -> Ledger {
        Ledger {
            epochs: Arc::new(epochs),
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

    /// The latest epoch's membership.
    pub fn membership(&self) -> &Membership {
        &self.epochs.latest().membership
    }

    /// The configuration log the ledger judges by.
    pub fn epochs(&self) -> &Epochs {
        &self.epochs
    }

    /// A shared handle on the configuration log.
    pub fn epochs_arc(&self) -> Arc<Epochs> {
        self.epochs.clone()
    }

    /// Takes a configuration update in ([`Epochs::push`]); returns the cuts it makes, which
    /// the caller must apply to the logs it holds (entries a cut refuses were valid before it).
    /// Entries waiting for the epoch can then be released ([`CausalBuffer::release_epoch`]).
    pub fn push_config(&mut self, update: SignedUpdate) -> Result<Vec<Cut>, ConfigError> {
        Arc::make_mut(&mut self.epochs).push(update)
    }

    /// The entries of the logs held that a cut refuses: for each log, the first seq at or after
    /// a cut whose entry names an earlier epoch than the cut's, if any.
    pub fn cut_positions(&self) -> Vec<(BureauCode, Seq)> {
        let mut out = Vec::new();
        for (code, log) in &self.logs {
            // The smallest position any cut refuses (cuts come in epoch order, not position).
            let first = self
                .epochs
                .cuts(*code)
                .iter()
                .filter_map(|cut| {
                    (cut.from_seq.0..log.len()).find(|&s| log.epochs[s as usize] < cut.epoch)
                })
                .min();
            if let Some(s) = first {
                out.push((*code, Seq(s)));
            }
        }
        out.sort();
        out
    }

    /// A log's state, if it has entries.
    pub fn log(&self, author: BureauCode) -> Option<&LogState> {
        self.logs.get(&author)
    }

    /// The deadline rules a clock started by `entry` runs under: those of the epoch the entry
    /// names (`config`: a rule change applies to clocks that start after it, so a clock is
    /// judged the same before and after the change and on replay).
    pub fn deadlines_of(&self, entry: &EntryRef) -> Deadlines {
        self.logs
            .get(&entry.author)
            .and_then(|l| l.epochs.get(entry.seq.0 as usize))
            .and_then(|&e| self.epochs.get(e))
            .map_or(Deadlines::GENESIS, |e| e.deadlines)
    }

    /// Every log held, in no particular order.
    pub fn logs(&self) -> impl Iterator<Item = (BureauCode, &LogState)> {
        self.logs.iter().map(|(c, l)| (*c, l))
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
        let granted = self.claimed.get(&(*person, after.map(|a| a.position())))?;
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
    ///
    /// An entry naming an epoch not known yet waits for [`CONFIG_LOG`] at that epoch; a claim
    /// by a retired arbiter's successor waits for the predecessor's log up to its cut.
    pub fn waiting_for(&self, entry: &SignedEntry) -> Option<(BureauCode, Seq)> {
        let e = entry.entry();
        if self.epochs.get(e.epoch).is_none() {
            return Some((CONFIG_LOG, Seq(u64::from(e.epoch))));
        }
        let len = self.log_len(e.author);
        if e.seq.0 > len {
            return Some((e.author, Seq(e.seq.0 - 1)));
        }
        if e.seq.0 < len {
            return None;
        }
        if let Some(r) = e
            .body
            .references()
            .find(|r| r.seq.0 >= self.log_len(r.author))
        {
            return Some(r.position());
        }
        if let Body::Claim { person, .. } = &e.body {
            return self
                .pending_handover(person, e.epoch)
                .map(|h| (h.from, Seq(h.until_seq.0 - 1)));
        }
        None
    }

    /// The first past arbiter of `person` (under `epoch`) whose log is not yet held up to its
    /// cut.
    fn pending_handover(&self, person: &PersonTag, epoch: u32) -> Option<Handover> {
        self.epochs
            .handovers(person, epoch)
            .iter()
            .find(|h| h.until_seq.0 > 0 && self.log_len(h.from) < h.until_seq.0)
            .copied()
    }

    /// The global checks a bureau makes before it signs an entry of its own: everything `apply`
    /// checks, plus the facts no single log owns (that the person is registered nowhere else,
    /// that a permit was not revoked or consumed elsewhere). Pure; changes nothing.
    pub fn admit(&self, entry: &SignedEntry, signature: SignatureCheck) -> Result<(), Violation> {
        let me = entry.reference();
        let e = entry.entry();
        self.check(entry, signature)?;
        match &e.body {
            // A person registered out of nowhere (a claim, an enrolment, a birth).
            Body::Enrol { person, .. }
            | Body::Birth { person, .. }
            | Body::Claim { person, .. } => {
                self.check_unregistered(me, *person)?;
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
            _ => {}
        }
        Ok(())
    }

    /// The global facts about a person about to be registered out of nowhere (admission only):
    /// registered nowhere, in transit nowhere, and not cancelled for good (death, duplicate).
    fn check_unregistered(&self, me: EntryRef, person: PersonTag) -> Result<(), Violation> {
        let Some(state) = self.persons.get(&person) else {
            return Ok(());
        };
        if let Some(record) = state.records.first() {
            return Err(Violation::PersonAlreadyRegistered {
                entry: me,
                person,
                at: record.since,
            });
        }
        if let Some(d) = state.in_transit.first() {
            return Err(Violation::PersonInTransit {
                entry: me,
                person,
                deregistration: *d,
            });
        }
        if let Some((by, reason)) = state.cancelled {
            ensure!(
                !reason.is_final(),
                Violation::PersonCancelled {
                    entry: me,
                    person,
                    cancellation: by
                }
            );
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
        let previous = log.epochs.last().copied().unwrap_or(0);
        ensure!(
            e.epoch >= previous,
            Violation::EpochRegressed {
                entry: me,
                epoch: e.epoch,
                previous
            }
        );
        let epoch = self
            .epochs
            .get(e.epoch)
            .expect("the envelope checked the epoch");

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
            } => self.check_claim(me, epoch, *person, *claimant, *after),
            Body::Permit {
                person,
                origin,
                category,
                valid_until_ms,
                corrects,
                ..
            } => self.check_permit(
                me,
                &epoch.membership,
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
    /// body expects. (That it names a member's log is checked with the envelope, SPEC 1.)
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
        epoch: &EpochConfig,
        person: PersonTag,
        claimant: BureauCode,
        after: Option<EntryRef>,
    ) -> Result<Plan, Violation> {
        let arbiter = epoch.arbiter(&person);
        ensure!(
            arbiter == me.author,
            Violation::NotArbiter {
                entry: me,
                person,
                arbiter
            }
        );
        if let Some(h) = self.pending_handover(&person, epoch.epoch) {
            return Err(Violation::HandoverPending {
                entry: me,
                from: h.from,
                until_seq: h.until_seq,
            });
        }
        ensure!(
            epoch.membership.contains(claimant),
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
        if let Some(claim) = self.claimed.get(&(person, after.map(|a| a.position()))) {
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

    /// Placement rules, in order: the household number is at most [`HOUSEHOLD_ID_MAX`]; a head
    /// starts a new household; anyone else joins an existing one.
    fn check_placement(&self, me: EntryRef, placement: Placement) -> Result<(), Violation> {
        ensure!(
            placement.household.0 <= HOUSEHOLD_ID_MAX,
            Violation::HouseholdOutOfRange {
                entry: me,
                household: placement.household,
                household_max: HOUSEHOLD_ID_MAX
            }
        );
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

    /// Rules of `Permit`, in order: origin is not the author; origin is a member; valid from
    /// [`PERMIT_VALIDITY_MS_MIN`] to [`PERMIT_VALIDITY_MS_MAX`] after its own time; a
    /// return-after-error permit, and only such a permit, names the registration it corrects;
    /// that entry is a registration, of the same person, which moved them from this author to
    /// the origin; the person has no record at this author.
    #[allow(clippy::too_many_arguments)]
    fn check_permit(
        &self,
        me: EntryRef,
        membership: &Membership,
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
            membership.contains(origin),
            Violation::UnknownOrigin { entry: me, origin }
        );
        let validity_ms = valid_until_ms.checked_sub(time_ms);
        ensure!(
            validity_ms
                .is_some_and(|v| (PERMIT_VALIDITY_MS_MIN..=PERMIT_VALIDITY_MS_MAX).contains(&v)),
            Violation::PermitValidityInvalid {
                entry: me,
                valid_until_ms,
                time_ms,
                validity_ms_min: PERMIT_VALIDITY_MS_MIN,
                validity_ms_max: PERMIT_VALIDITY_MS_MAX,
            }
        );
        let erroneous = match (category, corrects) {
            (Category::ReturnAfterError, Some(erroneous)) => erroneous,
            (Category::ReturnAfterError, None) => {
                return Err(Violation::CorrectionMissing { entry: me });
            }
            (_, Some(corrects)) => {
                return Err(Violation::CorrectionUnexpected {
                    entry: me,
                    corrects,
                    category,
                });
            }
            (_, None) => {
                self.check_not_registered_here(me, person)?;
                return Ok(Plan::Permit);
            }
        };
        self.check_correction(me, person, origin, erroneous)?;
        self.check_not_registered_here(me, person)?;
        Ok(Plan::Permit)
    }

    /// The correction rules of a return-after-error permit: `erroneous` is a registration of
    /// the same person which moved them from this author to the origin.
    fn check_correction(
        &self,
        me: EntryRef,
        person: PersonTag,
        origin: BureauCode,
        erroneous: EntryRef,
    ) -> Result<(), Violation> {
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
            Violation::CorrectionWrongTransfer {
                entry: me,
                registration: erroneous,
                from: r.origin,
                origin,
            }
        );
        Ok(())
    }

    /// No record of the person at the author. Only the author's own log makes or removes its
    /// records, so every node judges this alike.
    fn check_not_registered_here(&self, me: EntryRef, person: PersonTag) -> Result<(), Violation> {
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
        Ok(())
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
    /// destination; same person; not consumed; its permit not revoked by this author; no record
    /// of the person here; valid placement.
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
        // Only the permit's destination (this author, checked above) revokes it, so the
        // revocation is an earlier entry of this very log: every node sees it before this entry
        // and judges alike. The deregistration won the race and stands; the destination that
        // withdrew its permit may not then register against it.
        if let Some(revocation) = self.permits[&d.permit.position()].revoked_by {
            return Err(Violation::PermitRevokedByDestination {
                entry: me,
                deregistration,
                permit: d.permit,
                revocation,
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

    /// Rules of `Revocation`, in order: the author issued the permit; not revoked before, nor
    /// registered against by the author.
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
        // Consumed, and this author already registered against the deregistration that
        // consumed it: the registration is an earlier entry of this very log, so every node
        // judges this alike. (A permit consumed but not yet registered may still be revoked:
        // that is a race with the origin's log, which `admit` alone refuses.)
        if let PermitStatus::Consumed { by } = p.status
            && self.deregistrations[&by.position()].consumed_by.is_some()
        {
            return Err(Violation::PermitNotOpen {
                entry: me,
                permit,
                status: p.status,
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
                    .insert((person, after.map(|a| a.position())), me);
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
        log.epochs.push(e.epoch);
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
///
/// Bounded for entries from peers ([`CausalBuffer::new`]): an entry that fails the envelope
/// (SPEC 1: another network, a non-member author, a bad signature, a reference to a non-member's
/// log) is refused at once, never held; one too far ahead of what the ledger holds
/// ([`PENDING_AHEAD_ENTRIES_MAX`](crate::limits::PENDING_AHEAD_ENTRIES_MAX)) is dropped; and
/// beyond [`PENDING_ENTRIES_MAX`](crate::limits::PENDING_ENTRIES_MAX) entries or
/// [`PENDING_BYTES_MAX`](crate::limits::PENDING_BYTES_MAX) bytes the oldest held entry is
/// dropped. A dropped entry is no verdict: it is counted by [`DropReason`] ([`Self::drops`]),
/// and anti-entropy pulls it again, in order, later. Nothing else is kept per entry, so memory
/// follows what is held.
#[derive(Debug)]
pub struct CausalBuffer {
    limits: BufferLimits,
    /// Held entries, by the position each waits for.
    waiting: HashMap<Position, Vec<Held>>,
    /// Every held entry, by when it was held: the oldest is dropped first when the buffer is
    /// full. Exactly one item per held entry, removed when the entry is released or dropped.
    order: BTreeMap<u64, (Position, EntryHash)>,
    /// The ticket of the next entry held; only grows.
    next_ticket: u64,
    len: usize,
    /// Sum of the encoded sizes of the held entries.
    bytes: usize,
    drops: Drops,
}

/// One held entry.
#[derive(Debug)]
struct Held {
    entry: SignedEntry,
    signature: SignatureCheck,
    /// Its key in [`CausalBuffer::order`].
    ticket: u64,
}

/// How much a [`CausalBuffer`] holds before it drops entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferLimits {
    /// Most entries held.
    pub entries_max: usize,
    /// Most bytes held (sum of the entries' encoded sizes).
    pub bytes_max: usize,
    /// Furthest an entry's seq, or a position it references, may be beyond the length of its
    /// log and still be held.
    pub ahead_entries_max: u64,
}

impl BufferLimits {
    /// For entries from peers: the protocol's limits.
    pub const PEERS: BufferLimits = BufferLimits {
        entries_max: crate::limits::PENDING_ENTRIES_MAX,
        bytes_max: crate::limits::PENDING_BYTES_MAX,
        ahead_entries_max: crate::limits::PENDING_AHEAD_ENTRIES_MAX,
    };

    /// For the replay of a complete history whose size the caller already bounds (a node's own
    /// store, an audit's bundle): nothing is dropped, so nothing that should apply is lost.
    pub const HISTORY: BufferLimits = BufferLimits {
        entries_max: usize::MAX,
        bytes_max: usize::MAX,
        ahead_entries_max: u64::MAX,
    };
}

/// Why the buffer let an entry go without judging it. Not a verdict on the entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Holding more would pass the entry or byte limit: the oldest held entry was dropped.
    BufferFull,
    /// Its seq, or a position it references, is beyond what the ledger holds by more than
    /// [`BufferLimits::ahead_entries_max`].
    TooFarAhead,
}

impl DropReason {
    /// Stable snake_case name (metrics label).
    pub fn name(self) -> &'static str {
        match self {
            DropReason::BufferFull => "buffer_full",
            DropReason::TooFarAhead => "too_far_ahead",
        }
    }
}

/// Entries a buffer dropped so far, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drops {
    pub buffer_full: u64,
    pub too_far_ahead: u64,
}

impl Drops {
    /// The count for one reason.
    pub fn of(&self, reason: DropReason) -> u64 {
        match reason {
            DropReason::BufferFull => self.buffer_full,
            DropReason::TooFarAhead => self.too_far_ahead,
        }
    }

    fn count(&mut self, reason: DropReason) {
        match reason {
            DropReason::BufferFull => self.buffer_full += 1,
            DropReason::TooFarAhead => self.too_far_ahead += 1,
        }
    }
}

/// What became of one offered (or released) entry.
#[derive(Debug)]
pub struct Judged {
    pub entry: SignedEntry,
    pub result: Result<Effects, Violation>,
}

impl Default for CausalBuffer {
    fn default() -> CausalBuffer {
        CausalBuffer::new()
    }
}

impl CausalBuffer {
    /// An empty buffer for entries from peers ([`BufferLimits::PEERS`]).
    pub fn new() -> CausalBuffer {
        CausalBuffer::with_limits(BufferLimits::PEERS)
    }

    /// An empty buffer that drops nothing, for replaying a complete history
    /// ([`BufferLimits::HISTORY`]).
    pub fn for_history() -> CausalBuffer {
        CausalBuffer::with_limits(BufferLimits::HISTORY)
    }

    /// An empty buffer with the given limits.
    pub fn with_limits(limits: BufferLimits) -> CausalBuffer {
        CausalBuffer {
            limits,
            waiting: HashMap::new(),
            order: BTreeMap::new(),
            next_ticket: 0,
            len: 0,
            bytes: 0,
            drops: Drops::default(),
        }
    }

    /// Entries waiting.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes held: the sum of the waiting entries' encoded sizes.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Entries dropped so far, by reason.
    pub fn drops(&self) -> Drops {
        self.drops
    }

    /// Entries still waiting, with the position each waits for.
    pub fn waiting(&self) -> impl Iterator<Item = (&(BureauCode, Seq), &SignedEntry)> {
        self.waiting
            .iter()
            .flat_map(|(p, es)| es.iter().map(move |h| (p, &h.entry)))
    }

    /// Empties the buffer: every waiting entry, with the signature check it was offered with, in
    /// the order they were held, to be offered again to another ledger (a node rebuilding its
    /// state, `node::service`). What it dropped so far stays counted.
    pub fn take_all(&mut self) -> Vec<(SignedEntry, SignatureCheck)> {
        let mut held: Vec<Held> = self.waiting.drain().flat_map(|(_, hs)| hs).collect();
        held.sort_by_key(|h| h.ticket);
        self.order.clear();
        self.len = 0;
        self.bytes = 0;
        held.into_iter().map(|h| (h.entry, h.signature)).collect()
    }

    /// Offers an entry: applies it if it is ready, else holds it (or refuses it, if its
    /// envelope is wrong, or drops it, see [`CausalBuffer`]). Returns every entry judged as a
    /// result, in the order they were applied: the offered one and any it released.
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
                // Check what can be checked now (network, author, signature, that every log it
                // names exists), so a forged entry is refused at once rather than held.
                match ledger.check_envelope(&entry, signature) {
                    Err(v) if !v.is_not_yet() => {
                        out.push(Judged {
                            entry,
                            result: Err(v),
                        });
                        continue;
                    }
                    _ => {}
                }
                if self.too_far_ahead(ledger, &entry) {
                    self.drops.count(DropReason::TooFarAhead);
                    continue;
                }
                self.hold(position, entry, signature);
                continue;
            }
            let result = ledger.apply(&entry, signature);
            if result.is_ok() {
                let position = (entry.entry().author, entry.entry().seq);
                if let Some(released) = self.waiting.remove(&position) {
                    for held in released {
                        self.forget(&held);
                        queue.push_back((held.entry, held.signature));
                    }
                }
            }
            out.push(Judged { entry, result });
        }
        out
    }

    /// Judges the entries that waited for configuration epoch `epoch`, once `ledger` holds it
    /// ([`Ledger::push_config`]); returns them as [`Self::offer`] does.
    pub fn release_epoch(&mut self, ledger: &mut Ledger, epoch: u32) -> Vec<Judged> {
        let mut out = Vec::new();
        for e in 0..=epoch {
            let Some(released) = self.waiting.remove(&(CONFIG_LOG, Seq(u64::from(e)))) else {
                continue;
            };
            for held in released {
                self.forget(&held);
                out.extend(self.offer(ledger, held.entry, held.signature));
            }
        }
        out
    }

    /// Whether `entry` sits, or references a position, more than the limit beyond what
    /// `ledger` holds.
    fn too_far_ahead(&self, ledger: &Ledger, entry: &SignedEntry) -> bool {
        let max = self.limits.ahead_entries_max;
        let beyond = |log: BureauCode, seq: Seq| seq.0.saturating_sub(ledger.log_len(log)) > max;
        let e = entry.entry();
        beyond(e.author, e.seq) || e.body.references().any(|r| beyond(r.author, r.seq))
    }

    fn hold(&mut self, position: Position, entry: SignedEntry, signature: SignatureCheck) {
        let slot = self.waiting.entry(position).or_default();
        if slot.iter().any(|h| h.entry.hash() == entry.hash()) {
            return;
        }
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.order.insert(ticket, (position, entry.hash()));
        self.len += 1;
        self.bytes += entry.encoded_len();
        slot.push(Held {
            entry,
            signature,
            ticket,
        });
        while self.len > self.limits.entries_max || self.bytes > self.limits.bytes_max {
            let Some((_, (oldest, hash))) = self.order.pop_first() else {
                break;
            };
            let slot = self
                .waiting
                .get_mut(&oldest)
                .expect("every ticket names a held entry");
            let i = slot
                .iter()
                .position(|h| h.entry.hash() == hash)
                .expect("every ticket names a held entry");
            let dropped = slot.swap_remove(i);
            if slot.is_empty() {
                self.waiting.remove(&oldest);
            }
            self.len -= 1;
            self.bytes -= dropped.entry.encoded_len();
            self.drops.count(DropReason::BufferFull);
        }
    }

    /// Accounts for a held entry that left `waiting` (released to be judged).
    fn forget(&mut self, held: &Held) {
        let removed = self.order.remove(&held.ticket);
        assert!(removed.is_some(), "every held entry has a ticket");
        self.len -= 1;
        self.bytes -= held.entry.encoded_len();
    }
}

#[cfg(test)]
mod causal_buffer_tests;

impl Ledger {
    /// SPEC 1 alone: network, author, signature, references to members only.
    pub fn check_envelope(
        &self,
        entry: &SignedEntry,
        signature: SignatureCheck,
    ) -> Result<(), Violation> {
        let e = entry.entry();
        let me = entry.reference();
        ensure!(
            e.network == self.epochs.network(),
            Violation::WrongNetwork {
                entry: me,
                found: e.network
            }
        );
        let epoch = self.epochs.get(e.epoch).ok_or(Violation::EpochUnknown {
            entry: me,
            epoch: e.epoch,
        })?;
        let key = epoch
            .membership
            .key(e.author)
            .ok_or(Violation::UnknownAuthor { entry: me })?;
        if signature == SignatureCheck::Verify {
            ensure!(entry.verify(key), Violation::BadSignature { entry: me });
        }
        if let Some(cut) = self.epochs.cut_of(e.author, e.seq, e.epoch) {
            return Err(Violation::SignedAfterCut {
                entry: me,
                epoch: e.epoch,
                from_seq: cut.from_seq,
                cut_epoch: cut.epoch,
                retired: cut.kind == CutKind::Retired,
            });
        }
        for reference in e.body.references() {
            ensure!(
                self.epochs.was_member_by(reference.author, e.epoch),
                Violation::ReferenceToNonMember {
                    entry: me,
                    reference
                }
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod catalogue_tests {
    //! The catalogue is the written rulebook: these tests tie it to the code, so the two cannot
    //! drift. (That the order of checks matches it is `protocol/tests/rule_order.rs`.)

    use std::collections::BTreeSet;

    use super::*;

    /// One violation of every variant. The exhaustive `match` in [`variant_index`] fails to
    /// compile when a variant is added, so a new variant cannot miss the catalogue.
    fn samples() -> Vec<Violation> {
        let r = |n: u64| EntryRef {
            author: BureauCode::new(310_104).expect("six digits"),
            seq: Seq(n),
            hash: EntryHash([n as u8; 32]),
        };
        let (e, p, h) = (r(1), PersonTag([7; 32]), HouseholdId(3));
        let b = BureauCode::new(330_502).expect("six digits");
        vec![
            Violation::WrongNetwork {
                entry: e,
                found: NetworkId([1; 32]),
            },
            Violation::UnknownAuthor { entry: e },
            Violation::BadSignature { entry: e },
            Violation::DuplicateEntry { entry: e },
            Violation::Equivocation {
                existing: e,
                conflicting: r(2),
            },
            Violation::MissingPrevious {
                entry: e,
                expected: Seq(0),
            },
            Violation::PrevMismatch {
                entry: e,
                expected: EntryHash::ZERO,
                found: EntryHash([1; 32]),
            },
            Violation::TimeWentBackwards {
                entry: e,
                time_ms: 1,
                previous_ms: 2,
            },
            Violation::UnknownReference {
                entry: e,
                reference: r(2),
            },
            Violation::ReferenceHashMismatch {
                entry: e,
                reference: r(2),
                actual: EntryHash::ZERO,
            },
            Violation::ReferenceWrongKind {
                entry: e,
                reference: r(2),
                expected: BodyKind::Permit,
                found: BodyKind::Enrol,
            },
            Violation::PersonAlreadyRegistered {
                entry: e,
                person: p,
                at: r(2),
            },
            Violation::PersonInTransit {
                entry: e,
                person: p,
                deregistration: r(2),
            },
            Violation::PersonCancelled {
                entry: e,
                person: p,
                cancellation: r(2),
            },
            Violation::PersonNotRegisteredHere {
                entry: e,
                person: p,
                bureau: b,
            },
            Violation::HouseholdHasHead {
                entry: e,
                household: h,
                head: p,
            },
            Violation::HouseholdUnknown {
                entry: e,
                household: h,
            },
            Violation::HeadLeavingWithoutSuccessor {
                entry: e,
                household: h,
                members_left: 1,
            },
            Violation::SuccessorNotInHousehold {
                entry: e,
                successor: p,
                household: h,
            },
            Violation::SuccessorUnexpected { entry: e },
            Violation::AlreadyHead {
                entry: e,
                household: h,
                person: p,
            },
            Violation::PermitOriginIsAuthor { entry: e },
            Violation::UnknownOrigin {
                entry: e,
                origin: b,
            },
            Violation::PermitValidityInvalid {
                entry: e,
                valid_until_ms: 1,
                time_ms: 2,
                validity_ms_min: PERMIT_VALIDITY_MS_MIN,
                validity_ms_max: PERMIT_VALIDITY_MS_MAX,
            },
            Violation::NotPermitOrigin {
                entry: e,
                permit: r(2),
                origin: b,
            },
            Violation::NotPermitDestination {
                entry: e,
                reference: r(2),
                destination: b,
            },
            Violation::PermitNotOpen {
                entry: e,
                permit: r(2),
                status: PermitStatus::Refused { by: r(3) },
            },
            Violation::PermitExpired {
                entry: e,
                permit: r(2),
                valid_until_ms: 1,
                time_ms: 2,
            },
            Violation::PersonMismatch {
                entry: e,
                reference: r(2),
                expected: p,
                found: PersonTag([8; 32]),
            },
            Violation::DeregistrationConsumed {
                entry: e,
                deregistration: r(2),
                by: r(3),
            },
            Violation::CorrectionMissing { entry: e },
            Violation::CorrectionUnexpected {
                entry: e,
                corrects: r(2),
                category: Category::Spouse,
            },
            Violation::CorrectionWrongTransfer {
                entry: e,
                registration: r(2),
                from: b,
                origin: b,
            },
            Violation::PermitRevokedByDestination {
                entry: e,
                deregistration: r(2),
                permit: r(3),
                revocation: r(4),
            },
            Violation::HouseholdOutOfRange {
                entry: e,
                household: HouseholdId(HOUSEHOLD_ID_MAX + 1),
                household_max: HOUSEHOLD_ID_MAX,
            },
            Violation::NotArbiter {
                entry: e,
                person: p,
                arbiter: b,
            },
            Violation::UnknownClaimant {
                entry: e,
                person: p,
                claimant: b,
            },
            Violation::PersonClaimed {
                entry: e,
                person: p,
                claim: r(2),
            },
            Violation::ClaimNotForAuthor {
                entry: e,
                claim: r(2),
                claimant: b,
            },
            Violation::ClaimConsumed {
                entry: e,
                claim: r(2),
                by: r(3),
            },
            Violation::BirthDateInvalid {
                entry: e,
                born_on: 20260230,
            },
            Violation::BirthDateInFuture {
                entry: e,
                born_on: 20260102,
                entry_date: 20260101,
            },
            Violation::BirthDateTooOld {
                entry: e,
                born_on: 20191225,
                age_days: 2199,
                max_days: 2196,
            },
            Violation::ReferenceToNonMember {
                entry: e,
                reference: r(2),
            },
            Violation::EpochUnknown { entry: e, epoch: 3 },
            Violation::SignedAfterCut {
                entry: e,
                epoch: 1,
                from_seq: Seq(4),
                cut_epoch: 2,
                retired: false,
            },
            Violation::EpochRegressed {
                entry: e,
                epoch: 1,
                previous: 2,
            },
            Violation::HandoverPending {
                entry: e,
                from: b,
                until_seq: Seq(9),
            },
        ]
    }

    /// Declaration order of a variant; exhaustive on purpose (no `_` arm).
    fn variant_index(v: &Violation) -> usize {
        match v {
            Violation::WrongNetwork { .. } => 0,
            Violation::UnknownAuthor { .. } => 1,
            Violation::BadSignature { .. } => 2,
            Violation::DuplicateEntry { .. } => 3,
            Violation::Equivocation { .. } => 4,
            Violation::MissingPrevious { .. } => 5,
            Violation::PrevMismatch { .. } => 6,
            Violation::TimeWentBackwards { .. } => 7,
            Violation::UnknownReference { .. } => 8,
            Violation::ReferenceHashMismatch { .. } => 9,
            Violation::ReferenceWrongKind { .. } => 10,
            Violation::PersonAlreadyRegistered { .. } => 11,
            Violation::PersonInTransit { .. } => 12,
            Violation::PersonCancelled { .. } => 13,
            Violation::PersonNotRegisteredHere { .. } => 14,
            Violation::HouseholdHasHead { .. } => 15,
            Violation::HouseholdUnknown { .. } => 16,
            Violation::HeadLeavingWithoutSuccessor { .. } => 17,
            Violation::SuccessorNotInHousehold { .. } => 18,
            Violation::SuccessorUnexpected { .. } => 19,
            Violation::AlreadyHead { .. } => 20,
            Violation::PermitOriginIsAuthor { .. } => 21,
            Violation::UnknownOrigin { .. } => 22,
            Violation::PermitValidityInvalid { .. } => 23,
            Violation::NotPermitOrigin { .. } => 24,
            Violation::NotPermitDestination { .. } => 25,
            Violation::PermitNotOpen { .. } => 26,
            Violation::PermitExpired { .. } => 27,
            Violation::PersonMismatch { .. } => 28,
            Violation::DeregistrationConsumed { .. } => 29,
            Violation::CorrectionMissing { .. } => 30,
            Violation::CorrectionUnexpected { .. } => 31,
            Violation::CorrectionWrongTransfer { .. } => 32,
            Violation::PermitRevokedByDestination { .. } => 33,
            Violation::HouseholdOutOfRange { .. } => 34,
            Violation::NotArbiter { .. } => 35,
            Violation::UnknownClaimant { .. } => 36,
            Violation::PersonClaimed { .. } => 37,
            Violation::ClaimNotForAuthor { .. } => 38,
            Violation::ClaimConsumed { .. } => 39,
            Violation::BirthDateInvalid { .. } => 40,
            Violation::BirthDateInFuture { .. } => 41,
            Violation::BirthDateTooOld { .. } => 42,
            Violation::ReferenceToNonMember { .. } => 43,
            Violation::EpochUnknown { .. } => 44,
            Violation::SignedAfterCut { .. } => 45,
            Violation::EpochRegressed { .. } => 46,
            Violation::HandoverPending { .. } => 47,
        }
    }

    /// The top-level field names of a variant, from its pretty `Debug` form (fields of the
    /// variant are the lines indented by exactly four spaces).
    fn field_names(v: &Violation) -> Vec<String> {
        format!("{v:#?}")
            .lines()
            .filter_map(|line| {
                let rest = line.strip_prefix("    ")?;
                if rest.starts_with(' ') {
                    return None;
                }
                let (name, _) = rest.split_once(':')?;
                Some(name.to_string())
            })
            .collect()
    }

    #[test]
    fn every_variant_is_catalogued_with_its_fields_in_order() {
        let samples = samples();
        let indices: Vec<usize> = samples.iter().map(variant_index).collect();
        assert_eq!(indices, (0..samples.len()).collect::<Vec<_>>());
        assert_eq!(
            samples.len(),
            VIOLATIONS.len(),
            "one catalogue entry per variant"
        );
        for (v, doc) in samples.iter().zip(VIOLATIONS) {
            assert_eq!(v.name(), doc.name, "catalogue order is declaration order");
            let documented: Vec<&str> = doc
                .fields
                .iter()
                .map(|f| f.split_once(": ").expect("`field: type`").0)
                .collect();
            assert_eq!(field_names(v), documented, "fields of {}", doc.name);
            assert!(!doc.meaning.is_empty());
            // The evidence names the entry that broke the rule.
            assert!(v.to_string().contains(&v.entry().to_string()), "{v}");
        }
    }

    #[test]
    fn names_are_unique_snake_case_and_never_retired_ones() {
        let names: BTreeSet<&str> = VIOLATIONS.iter().map(|d| d.name).collect();
        assert_eq!(names.len(), VIOLATIONS.len(), "names are unique");
        for name in &names {
            assert!(
                name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{name} is snake_case"
            );
            assert!(
                !RETIRED_NAMES.contains(name),
                "{name} is retired and may never be used again"
            );
        }
    }

    #[test]
    fn every_catalogued_rule_names_a_violation_and_every_violation_a_rule() {
        let names: BTreeSet<&str> = VIOLATIONS.iter().map(|d| d.name).collect();
        let mut used = BTreeSet::new();
        let common = ENVELOPE_RULES
            .iter()
            .chain(CHAIN_RULES)
            .chain(REFERENCE_RULES);
        for rule in common.chain(BODY_RULES.iter().flat_map(|b| b.rules)) {
            assert!(
                names.contains(rule.name),
                "{} is not a violation",
                rule.name
            );
            used.insert(rule.name);
        }
        assert_eq!(used, names, "every violation is the name of some rule");
    }

    #[test]
    fn every_body_kind_is_catalogued_once_with_apply_rules_before_admit_rules() {
        for kind in BodyKind::ALL {
            let lists = BODY_RULES.iter().filter(|b| b.kinds.contains(&kind));
            assert_eq!(lists.count(), 1, "{kind}");
        }
        for body in BODY_RULES {
            let first_admit = body
                .rules
                .iter()
                .position(|r| r.stage == Stage::Admit)
                .unwrap_or(body.rules.len());
            assert!(
                body.rules[first_admit..]
                    .iter()
                    .all(|r| r.stage == Stage::Admit),
                "{:?}: admit rules come last",
                body.kinds
            );
            let keys: Vec<String> = body.rules.iter().map(Rule::key).collect();
            let unique: BTreeSet<&String> = keys.iter().collect();
            assert_eq!(
                unique.len(),
                keys.len(),
                "{:?}: keys are unique",
                body.kinds
            );
            for (a, b, why) in body.exclusive {
                let (i, j) = (
                    keys.iter().position(|k| k == a),
                    keys.iter().position(|k| k == b),
                );
                assert!(
                    matches!((i, j), (Some(i), Some(j)) if i < j),
                    "{:?}: exclusive pair ({a}, {b}) names two rules in catalogue order",
                    body.kinds
                );
                assert!(!why.is_empty());
            }
            let position = |key: &str| keys.iter().position(|k| k == key);
            for s in body.shadowed {
                let at = position(s.rule);
                assert!(
                    at.is_some(),
                    "{:?}: shadowed {} is a rule",
                    body.kinds,
                    s.rule
                );
                assert!(!s.by.is_empty() && !s.why.is_empty());
                for by in s.by {
                    assert!(
                        matches!((position(by), at), (Some(b), Some(a)) if b < a),
                        "{:?}: {by}, carrying {}, is an earlier rule",
                        body.kinds,
                        s.rule
                    );
                    assert!(
                        body.shadowed.iter().all(|t| t.rule != *by),
                        "{:?}: {by} carries {} and is reported, so is not shadowed",
                        body.kinds,
                        s.rule
                    );
                }
                assert!(
                    body.exclusive.iter().all(|(a, _, _)| *a != s.rule),
                    "{:?}: {} is never reported, so no pair it comes first in is exclusive",
                    body.kinds,
                    s.rule
                );
            }
        }
    }
}
