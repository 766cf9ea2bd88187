//! The auditor's checks: replay an exported ledger through the rulebook and report every broken
//! rule and invariant, with the entries that prove it; what is overdue; and each bureau's daily
//! reconciliation. `docs/FORMAT.md` specifies the bundle this reads; `hukou audit` does the I/O
//! (files, decoding, batch signature verification across cores) and calls [`audit`].
//!
//! Pure like the rest of the crate: no clock (the audit's "now" is the `as_of_ms` parameter), no
//! I/O, no threads. Signature verdicts come in precomputed ([`LogItem::Entry`]), so the expensive
//! part runs in parallel in the caller while this part stays single-threaded and deterministic:
//! the same bundle, calendar and `as_of_ms` always give the same [`Report`], byte for byte once
//! serialised.
//!
//! # What is checked, in this order
//!
//! 1. Per log file, in file order: each entry sits at the position its `seq` names
//!    (`entry_out_of_place`) in the file of its author (`entry_in_wrong_log`); unreadable bytes
//!    are findings (`undecodable_entry`, `truncated_log`, `bad_frame`), never a panic. The RFC
//!    6962 root of the file's entries is computed as they stream past.
//! 2. Every entry goes through [`Ledger::apply`] via a [`CausalBuffer`], logs merged by entry
//!    time so that little waits: the envelope (a `false` verdict is re-checked strictly, so the
//!    rulebook itself names `unknown_author` or `bad_signature`), the chain (I3:
//!    `duplicate_entry`, `equivocation`, `prev_mismatch`, `time_went_backwards`), references and
//!    the body's rules (I2: `deregistration_consumed`, `permit_not_open`, ...). Each refusal is
//!    a finding named by [`Violation::name`].
//! 3. What still waits at the end: per log, the first entry that never became applicable
//!    (`missing_previous`, or `unknown_reference` for a reference the bundle lacks).
//! 4. Certificates ([`Certificate::verify`], then the log's root at the certified size:
//!    `certificate_root_mismatch`, `certificate_beyond_log`) and fraud proofs (a valid one is an
//!    `equivocation` finding, an invalid one `invalid_fraud_proof`).
//!    Then the revoked entries (`revoked/<code>.log`: entries a configuration cut refused, which
//!    nodes keep as evidence): each must verify under its author's key of the epoch it names
//!    (`revoked_entry_bad_signature`) and be refused by a cut ([`Epochs::cut_of`]:
//!    `revoked_entry_not_cut`, a valid entry that belongs in the log); then it is listed in
//!    [`Report::revoked`], not a finding.
//! 5. Invariants over the final state: I1 (`duplicate_registration`: a person registered in two
//!    places, [`Ledger::duplicates`]) and a sweep of I2 over every registration
//!    (`invariant_i2_broken`, which only a rulebook bug could cause).
//! 6. Deadlines (DOMAIN.md: the origin answers a permit within 1 working day, the destination
//!    registers within 1 working day of the removal), judged at `as_of_ms` with the calendar:
//!    `permit_unanswered` and `missing_registration` (漏). These are warnings: lateness, not
//!    corruption. A clock the calendar cannot judge (its deadline, or its lateness, needs a
//!    year the calendar does not cover) is never guessed: one `calendar_year_missing` warning
//!    per missing year counts them.
//! 7. Each bureau's daily reconciliation (China dates), and the configuration epochs the
//!    audit judged by ([`Report::epochs`]).
//!
//! Findings of one name beyond [`FINDINGS_PER_NAME_MAX`] are counted, not kept, so a bundle
//! damaged at its first entry gives a report of bounded size.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};

use serde::{Deserialize, Serialize};

use crate::calendar::{Calendar, CalendarGap, Date, china_date};
use crate::checkpoint::Certificate;
use crate::config::Epochs;
use crate::entry::{Body, BodyKind, SignedEntry};
use crate::fraud::FraudProof;
use crate::merkle::{empty_root, node_hash};
use crate::rules::{CausalBuffer, Ledger, PermitStatus, SignatureCheck, Violation};
use crate::types::{BureauCode, EntryRef, Hash32, NetworkId, PersonTag, Seq};

/// The `kind` of a bundle manifest this build writes and reads.
pub const BUNDLE_KIND: &str = "hukou-bundle-v1";
/// The genesis file at the top of a bundle.
pub const GENESIS_FILE: &str = "genesis.toml";
/// The manifest file at the top of a bundle.
pub const MANIFEST_FILE: &str = "manifest.json";
/// Directory of the log files.
pub const LOGS_DIR: &str = "logs";
/// Directory of the certificates (may be empty).
pub const CERTIFICATES_DIR: &str = "certificates";
/// Directory of the fraud proofs (may be empty).
pub const FRAUD_PROOFS_DIR: &str = "fraud-proofs";
/// Directory of the entries configuration cuts refused, kept as evidence (may be empty).
pub const REVOKED_DIR: &str = "revoked";

/// Findings of one name kept in a report; more are counted in [`Report::findings_by_name`] and
/// [`Report::findings_omitted`]. Large enough to show any real pattern, small enough that a log
/// damaged at seq 0 does not make a report of a million lines.
pub const FINDINGS_PER_NAME_MAX: usize = 1000;

/// Entries held waiting at once (for their log's previous entry or an entry they reference).
/// An honest bundle merged by time has a handful waiting; a log damaged early has all its later
/// entries waiting, forever. Beyond this many, an entry that would wait is counted and set aside
/// instead of held, so a damaged bundle costs no more memory than a clean one (the rulebook's
/// own `PENDING_ENTRIES_MAX` allows far more, for a node that cannot know what is coming).
pub const WAITING_ENTRIES_MAX: usize = 100_000;

/// Working days the origin has to answer a permit (DOMAIN.md, Shanghai–Zhejiang practice).
pub const ANSWER_WORKING_DAYS: u32 = 1;
/// Working days the destination has to register after the removal.
pub const REGISTRATION_WORKING_DAYS: u32 = 1;

/// `logs/<code>.log`, relative to the bundle.
pub fn log_file(code: BureauCode) -> String {
    format!("{LOGS_DIR}/{code}.log")
}

/// `revoked/<code>.log`, relative to the bundle: the revoked entries of `code`'s log, framed as
/// a log file.
pub fn revoked_file(code: BureauCode) -> String {
    format!("{REVOKED_DIR}/{code}.log")
}

/// The bureau of a log file name (`310104.log`), if it is one.
pub fn parse_log_file_name(name: &str) -> Option<BureauCode> {
    name.strip_suffix(".log")?.parse().ok()
}

/// `certificates/<code>-<size>.cert`, relative to the bundle.
pub fn certificate_file(code: BureauCode, size: u64) -> String {
    format!("{CERTIFICATES_DIR}/{code}-{size}.cert")
}

/// The log and size of a certificate file name (`310104-1000.cert`), if it is one.
pub fn parse_certificate_file_name(name: &str) -> Option<(BureauCode, u64)> {
    parse_code_number(name.strip_suffix(".cert")?)
}

/// `fraud-proofs/<code>-<seq>.proof`, relative to the bundle.
pub fn fraud_proof_file(code: BureauCode, seq: u64) -> String {
    format!("{FRAUD_PROOFS_DIR}/{code}-{seq}.proof")
}

/// The author and seq of a fraud proof file name (`310104-17.proof`), if it is one.
pub fn parse_fraud_proof_file_name(name: &str) -> Option<(BureauCode, u64)> {
    parse_code_number(name.strip_suffix(".proof")?)
}

fn parse_code_number(stem: &str) -> Option<(BureauCode, u64)> {
    let (code, number) = stem.split_once('-')?;
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((code.parse().ok()?, number.parse().ok()?))
}

/// Appends one log-file frame: the wire bytes' length as a big-endian `u32`, then the bytes.
pub fn push_frame(out: &mut Vec<u8>, wire: &[u8]) {
    let len = u32::try_from(wire.len()).expect("an entry is far shorter than 4 GiB");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(wire);
}

/// 32 bytes as 64 lower-case hex digits in JSON.
mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(d)?;
        crate::types::parse_hash32(&text).map_err(serde::de::Error::custom)
    }
}

/// `manifest.json`: what the exporter saw. The auditor recomputes all of it from the files and
/// reports any difference; it trusts none of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`BUNDLE_KIND`].
    pub kind: String,
    /// The network's name, as in the genesis.
    pub network: String,
    /// `NetworkId::from_name(network)`.
    pub network_id: NetworkId,
    /// SHA-256 of the genesis's canonical encoding (`keys::genesis`), 64 hex digits.
    #[serde(with = "hex32")]
    pub genesis_hash: [u8; 32],
    /// When the export was taken, ms since the Unix epoch (UTC); the audit's default "now".
    pub exported_at_ms: u64,
    /// The program that wrote the bundle, e.g. `hukou 0.1.0`.
    pub exporter: String,
    /// Where the entries came from (a node's URL, a data directory, a generator).
    pub source: String,
    /// Every log in the bundle, by bureau code.
    pub logs: Vec<ManifestLog>,
}

/// One log as the manifest states it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestLog {
    /// The log's author.
    pub bureau: BureauCode,
    /// Entries in `logs/<bureau>.log`.
    pub length: u64,
    /// RFC 6962 root over those entries' hashes, 64 hex digits.
    #[serde(with = "hex32")]
    pub root: [u8; 32],
}

/// The right edge of an RFC 6962 tree: the perfect subtrees of the binary decomposition of its
/// size, largest first. Gives the root of everything pushed so far in O(log n) memory, which is
/// all an auditor streaming a log needs (`merkle::Tree` keeps every node, for proofs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MerkleFrontier {
    /// (height, hash) of each perfect subtree, heights strictly decreasing.
    subtrees: Vec<(u32, Hash32)>,
    len: u64,
}

impl MerkleFrontier {
    /// The empty tree.
    pub fn new() -> MerkleFrontier {
        MerkleFrontier::default()
    }

    /// Leaves pushed.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was pushed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends a leaf hash (an entry hash).
    pub fn push(&mut self, leaf: Hash32) {
        let mut node = (0u32, leaf);
        while let Some(&(height, left)) = self.subtrees.last() {
            if height != node.0 {
                break;
            }
            self.subtrees.pop();
            node = (height + 1, node_hash(&left, &node.1));
        }
        self.subtrees.push(node);
        self.len += 1;
    }

    /// The root over every leaf pushed: the subtrees folded from the right, as RFC 6962's
    /// recursive definition (split at the largest power of two below the size) works out.
    pub fn root(&self) -> Hash32 {
        let mut subtrees = self.subtrees.iter().rev();
        let Some(&(_, mut root)) = subtrees.next() else {
            return empty_root();
        };
        for (_, left) in subtrees {
            root = node_hash(left, &root);
        }
        root
    }
}

/// One item of a log file as the caller read it.
// Items stream past one at a time; boxing the entry would cost an allocation per entry.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum LogItem {
    /// A decoded entry and whether its signature verified under its author's member key (from
    /// batch verification; `false` also for non-members). A `false` verdict is re-checked by the
    /// rulebook, which names the fault.
    Entry {
        entry: SignedEntry,
        signature_valid: bool,
    },
    /// Bytes at `offset` in the log file that are not an entry. `name` is the finding's name
    /// (`undecodable_entry`, `truncated_log`, `bad_frame`); `message` says what is wrong.
    Unreadable {
        offset: u64,
        name: &'static str,
        message: String,
    },
}

/// How much a finding matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// A broken rule, invariant or format: the ledger or the bundle is not what it claims.
    Violation,
    /// Something late or resolved: worth a look, not evidence of corruption.
    Warning,
}

/// One thing the auditor found, with the entries that prove it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable snake_case name: a rulebook rule ([`Violation::name`]) or an audit check listed
    /// in `docs/FORMAT.md`. Never renamed or reused.
    pub name: String,
    pub severity: Severity,
    /// `I1`, `I2` or `I3` when the finding breaks one of DESIGN.md's invariants.
    pub invariant: Option<String>,
    /// The log concerned, if one is.
    pub log: Option<BureauCode>,
    /// The entries involved, the offending one first.
    pub entries: Vec<EntryRef>,
    /// One line for people.
    pub message: String,
    /// The bundle file concerned, relative to the bundle.
    pub file: Option<String>,
    /// Byte offset in `file`.
    pub offset: Option<u64>,
    /// Position (0-based frame index) in a log file.
    pub position: Option<u64>,
    /// For deadline findings: the China date by the end of which the act was due.
    pub deadline: Option<Date>,
    /// For deadline findings: working days overdue at `as_of`; `None` on a deadline finding
    /// when counting them needs a year the calendar does not cover.
    pub working_days_overdue: Option<i64>,
    /// The year whose working-day calendar is missing: on `calendar_year_missing`, and on a
    /// deadline finding whose lateness could not be counted.
    #[serde(default)]
    pub calendar_year_missing: Option<i32>,
}

impl Finding {
    /// A finding with only a name, severity and message; set the rest with struct update.
    pub fn new(name: &str, severity: Severity, message: impl Into<String>) -> Finding {
        Finding {
            name: name.to_string(),
            severity,
            invariant: invariant_of(name).map(str::to_string),
            log: None,
            entries: Vec::new(),
            message: message.into(),
            file: None,
            offset: None,
            position: None,
            deadline: None,
            working_days_overdue: None,
            calendar_year_missing: None,
        }
    }

    /// A violation finding.
    pub fn violation(name: &str, message: impl Into<String>) -> Finding {
        Finding::new(name, Severity::Violation, message)
    }

    /// The finding for a rulebook refusal.
    pub fn from_violation(violation: &Violation) -> Finding {
        let entries = violation_entries(violation);
        Finding {
            log: Some(violation.entry().author),
            entries,
            ..Finding::violation(violation.name(), violation.to_string())
        }
    }
}

/// The invariant a finding name breaks, if any.
pub fn invariant_of(name: &str) -> Option<&'static str> {
    match name {
        "person_already_registered"
        | "duplicate_registration"
        | "person_claimed"
        | "claim_consumed"
        | "claim_not_for_author"
        | "not_arbiter" => Some("I1"),
        "deregistration_consumed"
        | "permit_not_open"
        | "permit_expired"
        | "person_mismatch"
        | "not_permit_origin"
        | "not_permit_destination"
        | "person_not_registered_here"
        | "person_in_transit"
        | "reference_wrong_kind"
        | "invariant_i2_broken" => Some("I2"),
        "equivocation"
        | "duplicate_entry"
        | "prev_mismatch"
        | "missing_previous"
        | "time_went_backwards"
        | "entry_out_of_place" => Some("I3"),
        _ => None,
    }
}

/// Every entry a violation names, the offending one first.
pub fn violation_entries(violation: &Violation) -> Vec<EntryRef> {
    match violation {
        Violation::Equivocation {
            existing,
            conflicting,
        } => vec![*conflicting, *existing],
        Violation::UnknownReference { entry, reference }
        | Violation::ReferenceHashMismatch {
            entry, reference, ..
        }
        | Violation::ReferenceWrongKind {
            entry, reference, ..
        }
        | Violation::PersonMismatch {
            entry, reference, ..
        }
        | Violation::NotPermitDestination {
            entry, reference, ..
        } => vec![*entry, *reference],
        Violation::PersonAlreadyRegistered { entry, at, .. } => vec![*entry, *at],
        Violation::PersonInTransit {
            entry,
            deregistration,
            ..
        } => vec![*entry, *deregistration],
        Violation::PersonCancelled {
            entry,
            cancellation,
            ..
        } => vec![*entry, *cancellation],
        Violation::NotPermitOrigin { entry, permit, .. }
        | Violation::PermitExpired { entry, permit, .. } => vec![*entry, *permit],
        Violation::PermitNotOpen {
            entry,
            permit,
            status,
        } => match status {
            PermitStatus::Refused { by }
            | PermitStatus::Consumed { by }
            | PermitStatus::Revoked { by } => {
                vec![*entry, *permit, *by]
            }
            PermitStatus::Open => vec![*entry, *permit],
        },
        Violation::DeregistrationConsumed {
            entry,
            deregistration,
            by,
        } => vec![*entry, *deregistration, *by],
        Violation::PersonClaimed { entry, claim, .. }
        | Violation::ClaimNotForAuthor { entry, claim, .. } => vec![*entry, *claim],
        Violation::ClaimConsumed { entry, claim, by } => vec![*entry, *claim, *by],
        Violation::CorrectionUnexpected {
            entry, corrects, ..
        } => vec![*entry, *corrects],
        Violation::CorrectionWrongTransfer {
            entry,
            registration,
            ..
        } => vec![*entry, *registration],
        Violation::PermitRevokedByDestination {
            entry,
            deregistration,
            permit,
            revocation,
        } => vec![*entry, *deregistration, *permit, *revocation],
        other => vec![other.entry()],
    }
}

/// Totals over the whole bundle.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Entries decoded from the log files.
    pub entries_read: u64,
    /// Entries the rulebook applied.
    pub entries_applied: u64,
    /// Entries the rulebook refused (each is a finding).
    pub entries_rejected: u64,
    /// Entries still waiting at the end for an entry the bundle lacks or that was refused.
    pub entries_waiting: u64,
    /// Frames of the log files that were not entries.
    pub frames_unreadable: u64,
    /// Persons the ledger knows at the end.
    pub persons: u64,
    /// Certificates checked, and how many passed every check.
    pub certificates: u64,
    pub certificates_valid: u64,
    /// Fraud proofs checked, and how many proved an equivocation.
    pub fraud_proofs: u64,
    pub fraud_proofs_valid: u64,
    /// Findings by severity, all of them (kept or omitted).
    pub violations: u64,
    pub warnings: u64,
    /// Revoked entries listed in [`Report::revoked`] (each verified and refused by a cut).
    #[serde(default)]
    pub revoked: u64,
}

/// An entry a configuration cut refused, kept by the nodes as evidence (`revoked/<log>.log`):
/// signed by its author's key of the epoch it names, and refused because a later epoch cut the
/// log at or below its position (a revoked key or a retired bureau). Listed, not a finding: the
/// administrators' cut is the network working as designed.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RevokedEntry {
    /// The log (the entry's author).
    pub log: BureauCode,
    pub seq: u64,
    /// The epoch the entry names; its signature verifies under the author's key of it.
    pub epoch: u32,
    /// The epoch whose cut refuses it ([`Epochs::cut_of`]).
    pub cut_epoch: u32,
    /// Why the log was cut: `revoked` (a revoked key) or `retired` (a retired bureau).
    pub kind: String,
    /// The position the cut starts at (at or below `seq`).
    pub from_seq: u64,
    /// `CODE:SEQ:HASH`.
    #[serde(rename = "ref")]
    pub reference: EntryRef,
}

/// One configuration epoch the audit judged by.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochSummary {
    pub epoch: u32,
    /// The hash of the update that made it (epoch 0: the genesis hash), 64 hex digits.
    #[serde(with = "hex32")]
    pub hash: [u8; 32],
    /// The names of that update's changes, in its order (`Change::name`); none for epoch 0.
    pub changes: Vec<String>,
}

/// One log as the audit found it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogReport {
    pub bureau: BureauCode,
    /// Entries in the log file.
    pub entries: u64,
    /// Length of the log the rulebook accepted (a prefix of the file when all is well).
    pub applied: u64,
    /// RFC 6962 root over the hashes of the file's entries, in file order.
    #[serde(with = "hex32")]
    pub root: [u8; 32],
    /// Largest size covered by a valid certificate whose root matches (the final prefix).
    pub certified_size: u64,
    /// Applied entries by kind.
    pub kinds: BTreeMap<BodyKind, u64>,
}

/// One bureau's acts on one China date, and what it still had to do at the end of that day.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyReconciliation {
    pub date: Option<Date>,
    pub bureau: Option<BureauCode>,
    pub enrolments: u64,
    pub births: u64,
    /// Permits this bureau issued as destination.
    pub permits_issued: u64,
    /// Permits naming this bureau as origin (received that day).
    pub permits_received: u64,
    /// Permits it refused as origin.
    pub refusals: u64,
    /// Deregistrations it recorded as origin (迁出).
    pub removals: u64,
    /// Deregistrations naming it as destination (received that day).
    pub removals_received: u64,
    /// Registrations it recorded as destination (落户).
    pub registrations_in: u64,
    /// Its permits it revoked as destination.
    pub revocations: u64,
    pub cancellations: u64,
    /// Permits awaiting its removal or refusal at the end of the day.
    pub pending_answers: u64,
    /// Removals awaiting its registration at the end of the day.
    pub pending_registrations: u64,
}

/// What [`audit`] found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The network's name.
    pub network: String,
    /// The audit's "now" for deadlines, and its China date.
    pub as_of_ms: u64,
    pub as_of: Date,
    /// No violation found (warnings allowed).
    pub clean: bool,
    pub totals: Totals,
    /// Applied entries by kind, all logs.
    pub kinds: BTreeMap<BodyKind, u64>,
    /// Every log: the members' (empty ones too) and any other found in the bundle.
    pub logs: Vec<LogReport>,
    /// The configuration epochs, oldest first: the genesis's and one per update of the
    /// bundle's configuration log.
    #[serde(default)]
    pub epochs: Vec<EpochSummary>,
    /// The revoked entries that verify and that a cut refuses, by log, seq and hash.
    #[serde(default)]
    pub revoked: Vec<RevokedEntry>,
    /// How many findings of each name, kept or omitted.
    pub findings_by_name: BTreeMap<String, u64>,
    /// Findings beyond [`FINDINGS_PER_NAME_MAX`] of their name, counted but not kept.
    pub findings_omitted: u64,
    /// Findings kept: violations first, grouped by name, in the order found.
    pub findings: Vec<Finding>,
    /// By date, then bureau.
    pub reconciliation: Vec<DailyReconciliation>,
}

impl Report {
    fn new(network: &str, as_of_ms: u64) -> Report {
        Report {
            network: network.to_string(),
            as_of_ms,
            as_of: china_date(as_of_ms),
            clean: true,
            totals: Totals::default(),
            kinds: BTreeMap::new(),
            logs: Vec::new(),
            epochs: Vec::new(),
            revoked: Vec::new(),
            findings_by_name: BTreeMap::new(),
            findings_omitted: 0,
            findings: Vec::new(),
            reconciliation: Vec::new(),
        }
    }

    /// Records a finding: counted always, kept while its name has fewer than
    /// [`FINDINGS_PER_NAME_MAX`]. Callers add what they check outside [`audit`] (the manifest,
    /// unreadable certificate files) this way.
    pub fn add_finding(&mut self, finding: Finding) {
        match finding.severity {
            Severity::Violation => {
                self.totals.violations += 1;
                self.clean = false;
            }
            Severity::Warning => self.totals.warnings += 1,
        }
        let count = self
            .findings_by_name
            .entry(finding.name.clone())
            .or_default();
        *count += 1;
        if *count as usize > FINDINGS_PER_NAME_MAX {
            self.findings_omitted += 1;
        } else {
            self.findings.push(finding);
        }
    }

    /// Puts violations first and groups findings by name, keeping the order found within a
    /// name. Call after the last [`Report::add_finding`].
    pub fn sort_findings(&mut self) {
        self.findings
            .sort_by(|a, b| (a.severity, &a.name).cmp(&(b.severity, &b.name)));
    }

    /// Whether any finding of `name` was made.
    pub fn has(&self, name: &str) -> bool {
        self.findings_by_name.contains_key(name)
    }

    /// The log report of `bureau`, if the bundle or the membership has that log.
    pub fn log(&self, bureau: BureauCode) -> Option<&LogReport> {
        self.logs.iter().find(|l| l.bureau == bureau)
    }
}

/// One log file as it streams past.
struct Cursor<I> {
    code: BureauCode,
    items: I,
    /// The next item, taken from `items` ahead of its turn in the merge.
    head: Option<LogItem>,
    /// Frame index of `head` in the file.
    position: u64,
    /// Time of the last entry read, the merge key of an unreadable frame.
    last_time_ms: u64,
    /// `seq - position` of the last entry read: a change is one `entry_out_of_place` finding, so
    /// a dropped entry gives one finding rather than one per entry after it.
    displacement: i128,
    entries: u64,
    frontier: MerkleFrontier,
    /// Sizes certificates name, and the file's root at each once reached.
    certified_sizes: BTreeSet<u64>,
    roots: BTreeMap<u64, Hash32>,
}

impl<I: Iterator<Item = LogItem>> Cursor<I> {
    fn advance(&mut self) {
        self.head = self.items.next();
    }

    /// Merge key of `head`: entry time, then log code (then the heap's tie-break, none needed:
    /// one head per log).
    fn key(&self) -> u64 {
        match &self.head {
            Some(LogItem::Entry { entry, .. }) => entry.entry().time_ms,
            _ => self.last_time_ms,
        }
    }
}

/// Counters of one bureau on one date, with the internal `answered` and `withdrawn` that make
/// the pending balances.
#[derive(Default)]
struct DayCounts {
    row: DailyReconciliation,
    /// Open permits naming this bureau as origin that it refused or consumed.
    answered: u64,
    /// Open permits naming this bureau as origin that their destination revoked.
    withdrawn: u64,
}

/// Replays a bundle's logs through the rulebook and checks everything else the bundle holds;
/// [`audit_with_revoked`] with no revoked entries.
pub fn audit<L, I>(
    epochs: &Epochs,
    logs: L,
    certificates: &[Certificate],
    fraud_proofs: &[FraudProof],
    calendar: &Calendar,
    as_of_ms: u64,
) -> Report
where
    L: IntoIterator<Item = (BureauCode, I)>,
    I: Iterator<Item = LogItem>,
{
    audit_with_revoked(
        epochs,
        logs,
        certificates,
        fraud_proofs,
        &[],
        calendar,
        as_of_ms,
    )
}

/// Replays a bundle's logs through the rulebook and checks everything else the bundle holds.
///
/// `logs` yields each log's code and its items in file order. Logs are merged by entry time, so
/// entries referencing other logs rarely wait; the result does not depend on the order `logs`
/// comes in. `revoked` holds each `revoked/<code>.log` file's items in file order (their
/// `signature_valid` is not read: the few revoked entries are verified here, under the key of
/// the epoch each names). `as_of_ms` is "now" for deadlines: entries after it are still replayed.
pub fn audit_with_revoked<L, I>(
    epochs: &Epochs,
    logs: L,
    certificates: &[Certificate],
    fraud_proofs: &[FraudProof],
    revoked: &[(BureauCode, Vec<LogItem>)],
    calendar: &Calendar,
    as_of_ms: u64,
) -> Report
where
    L: IntoIterator<Item = (BureauCode, I)>,
    I: Iterator<Item = LogItem>,
{
    let membership = &epochs.latest().membership;
    let mut report = Report::new(membership.network_name(), as_of_ms);
    let mut certified_sizes: BTreeMap<BureauCode, BTreeSet<u64>> = BTreeMap::new();
    for c in certificates {
        certified_sizes
            .entry(c.checkpoint.log)
            .or_default()
            .insert(c.checkpoint.size);
    }

    let mut cursors: Vec<Cursor<I>> = Vec::new();
    for (code, items) in logs {
        let mut cursor = Cursor {
            code,
            items,
            head: None,
            position: 0,
            last_time_ms: 0,
            displacement: 0,
            entries: 0,
            frontier: MerkleFrontier::new(),
            certified_sizes: certified_sizes.remove(&code).unwrap_or_default(),
            roots: BTreeMap::new(),
        };
        cursor.advance();
        cursors.push(cursor);
    }
    // Deterministic whatever order the caller listed the logs in.
    cursors.sort_by_key(|c| c.code);

    let mut replay = Replay {
        ledger: Ledger::with_epochs(epochs.clone()),
        buffer: CausalBuffer::for_history(),
        days: BTreeMap::new(),
        open_permits: HashMap::new(),
        duplicated: BTreeSet::new(),
        kinds: BTreeMap::new(),
        rejected: 0,
        set_aside: BTreeMap::new(),
    };

    let mut heap: BinaryHeap<Reverse<(u64, BureauCode, usize)>> = cursors
        .iter()
        .enumerate()
        .filter(|(_, c)| c.head.is_some())
        .map(|(i, c)| Reverse((c.key(), c.code, i)))
        .collect();
    while let Some(Reverse((_, _, i))) = heap.pop() {
        let cursor = &mut cursors[i];
        let item = cursor
            .head
            .take()
            .expect("only cursors with a head are queued");
        let position = cursor.position;
        cursor.position += 1;
        match item {
            LogItem::Unreadable {
                offset,
                name,
                message,
            } => {
                report.totals.frames_unreadable += 1;
                report.add_finding(Finding {
                    log: Some(cursor.code),
                    file: Some(log_file(cursor.code)),
                    offset: Some(offset),
                    position: Some(position),
                    ..Finding::violation(name, message)
                });
            }
            LogItem::Entry {
                entry,
                signature_valid,
            } => {
                report.totals.entries_read += 1;
                check_place(&mut report, cursor, &entry, position);
                cursor.entries += 1;
                cursor.last_time_ms = entry.entry().time_ms;
                cursor.frontier.push(entry.hash().0);
                let size = cursor.frontier.len();
                if cursor.certified_sizes.contains(&size) {
                    cursor.roots.insert(size, cursor.frontier.root());
                }
                let check = if signature_valid {
                    SignatureCheck::AlreadyVerified
                } else {
                    SignatureCheck::Verify
                };
                replay.offer(&mut report, entry, check);
            }
        }
        cursor.advance();
        if cursor.head.is_some() {
            heap.push(Reverse((cursor.key(), cursor.code, i)));
        }
    }

    report_waiting(&mut report, &replay);
    report.totals.entries_applied = replay.ledger.entries_applied();
    report.totals.entries_rejected = replay.rejected;
    report.totals.entries_waiting =
        replay.buffer.len() as u64 + replay.set_aside.values().map(|(n, _)| n).sum::<u64>();
    report.totals.persons = replay.ledger.persons_len() as u64;

    // Logs: every member's, and any other the bundle holds.
    let mut logs: BTreeMap<BureauCode, LogReport> = epochs
        .all()
        .flat_map(|e| e.membership.members().map(|m| m.code))
        .map(|code| (code, empty_log_report(code)))
        .collect();
    for c in &cursors {
        let log = logs
            .entry(c.code)
            .or_insert_with(|| empty_log_report(c.code));
        log.entries = c.entries;
        log.root = c.frontier.root();
    }
    for (code, log) in logs.iter_mut() {
        log.applied = replay.ledger.log_len(*code);
        if let Some(kinds) = replay.kinds.get(code) {
            log.kinds = kinds.clone();
        }
    }

    check_certificates(&mut report, epochs, certificates, &cursors, &mut logs);
    check_fraud_proofs(&mut report, epochs, fraud_proofs);
    check_revoked(&mut report, epochs, revoked);
    check_invariants(&mut report, &replay);
    check_deadlines(&mut report, &replay.ledger, calendar, as_of_ms);

    for log in logs.values() {
        for (kind, n) in &log.kinds {
            *report.kinds.entry(*kind).or_default() += n;
        }
    }
    report.logs = logs.into_values().collect();
    report.reconciliation = reconciliation(replay.days);
    report.epochs = epoch_summaries(epochs);
    report.sort_findings();
    report
}

/// Every epoch, oldest first, with the names of the changes that made it.
fn epoch_summaries(epochs: &Epochs) -> Vec<EpochSummary> {
    epochs
        .all()
        .map(|e| EpochSummary {
            epoch: e.epoch,
            hash: e.hash.0,
            changes: (e.epoch as usize)
                .checked_sub(1)
                .and_then(|i| epochs.updates().get(i))
                .map_or_else(Vec::new, |u| {
                    u.update
                        .changes
                        .iter()
                        .map(|c| c.name().to_string())
                        .collect()
                }),
        })
        .collect()
}

fn empty_log_report(bureau: BureauCode) -> LogReport {
    LogReport {
        bureau,
        entries: 0,
        applied: 0,
        root: empty_root(),
        certified_size: 0,
        kinds: BTreeMap::new(),
    }
}

/// Check 1: the entry is in its author's file, at the position its seq names.
fn check_place<I>(report: &mut Report, cursor: &mut Cursor<I>, entry: &SignedEntry, position: u64) {
    let e = entry.entry();
    if e.author != cursor.code {
        report.add_finding(Finding {
            log: Some(cursor.code),
            entries: vec![entry.reference()],
            file: Some(log_file(cursor.code)),
            position: Some(position),
            ..Finding::violation(
                "entry_in_wrong_log",
                format!(
                    "the log file of {} holds entry {} of another author",
                    cursor.code,
                    entry.reference()
                ),
            )
        });
    }
    let displacement = i128::from(e.seq.0) - i128::from(position);
    if displacement != cursor.displacement {
        cursor.displacement = displacement;
        if displacement == 0 {
            // Back in place after a swap: the entries out of place were reported.
            return;
        }
        report.add_finding(Finding {
            log: Some(cursor.code),
            entries: vec![entry.reference()],
            file: Some(log_file(cursor.code)),
            position: Some(position),
            ..Finding::violation(
                "entry_out_of_place",
                format!(
                    "position {position} of the log file of {} holds seq {} (entries are missing, repeated or out of order here)",
                    cursor.code, e.seq
                ),
            )
        });
    }
}

/// The rulebook's replay and what the audit tallies from its effects.
struct Replay {
    ledger: Ledger,
    buffer: CausalBuffer,
    days: BTreeMap<(BureauCode, Date), DayCounts>,
    /// Open permits (not yet refused, consumed or revoked) and their origin, for the pending
    /// balances of the reconciliation.
    open_permits: HashMap<(BureauCode, Seq), BureauCode>,
    /// Persons who were ever registered in two places.
    duplicated: BTreeSet<PersonTag>,
    /// Applied entries per log, by kind.
    kinds: BTreeMap<BureauCode, BTreeMap<BodyKind, u64>>,
    rejected: u64,
    /// Entries that would have waited while [`WAITING_ENTRIES_MAX`] already did, per log: how
    /// many, and the first of them.
    set_aside: BTreeMap<BureauCode, (u64, Waiting)>,
}

/// An entry that never became applicable: its seq, reference, the position it waits for, and
/// the reference its body makes to that position, if any.
type Waiting = (Seq, EntryRef, (BureauCode, Seq), Option<EntryRef>);

fn waiting(entry: &SignedEntry, waits_for: (BureauCode, Seq)) -> Waiting {
    let r = entry.reference();
    let reference = entry
        .entry()
        .body
        .references()
        .find(|x| x.position() == waits_for);
    (r.seq, r, waits_for, reference)
}

impl Replay {
    fn offer(&mut self, report: &mut Report, entry: SignedEntry, check: SignatureCheck) {
        if self.buffer.len() >= WAITING_ENTRIES_MAX
            && let Some(waits_for) = self.ledger.waiting_for(&entry)
        {
            // What the buffer would check before holding it.
            if let Err(violation) = self.ledger.check_envelope(&entry, check) {
                self.rejected += 1;
                report.add_finding(Finding::from_violation(&violation));
                return;
            }
            let w = waiting(&entry, waits_for);
            let slot = self.set_aside.entry(w.1.author).or_insert((0, w));
            slot.0 += 1;
            slot.1 = slot.1.min(w);
            return;
        }
        for judged in self.buffer.offer(&mut self.ledger, entry, check) {
            match judged.result {
                Ok(effects) => {
                    if effects.created_duplicate
                        && let Some(person) = effects.person
                    {
                        self.duplicated.insert(person);
                    }
                    self.tally(&judged.entry, effects.acted_on);
                }
                Err(violation) => {
                    self.rejected += 1;
                    report.add_finding(Finding::from_violation(&violation));
                }
            }
        }
    }

    fn day(&mut self, bureau: BureauCode, date: Date) -> &mut DayCounts {
        self.days
            .entry((bureau, date))
            .or_insert_with(|| DayCounts {
                row: DailyReconciliation {
                    date: Some(date),
                    bureau: Some(bureau),
                    ..DailyReconciliation::default()
                },
                ..DayCounts::default()
            })
    }

    /// Counts an applied entry in its author's kinds and the daily reconciliation.
    fn tally(&mut self, entry: &SignedEntry, acted_on: Option<EntryRef>) {
        let e = entry.entry();
        let author = e.author;
        let date = china_date(e.time_ms);
        *self
            .kinds
            .entry(author)
            .or_default()
            .entry(e.body.kind())
            .or_default() += 1;
        match &e.body {
            Body::Enrol { .. } => self.day(author, date).row.enrolments += 1,
            Body::Birth { .. } => self.day(author, date).row.births += 1,
            Body::Cancellation { .. } => self.day(author, date).row.cancellations += 1,
            Body::HeadChange { .. } | Body::Claim { .. } => {}
            Body::Permit { origin, .. } => {
                self.day(author, date).row.permits_issued += 1;
                self.day(*origin, date).row.permits_received += 1;
                self.open_permits.insert((author, e.seq), *origin);
            }
            Body::Refusal { permit, .. } | Body::Deregistration { permit, .. } => {
                let answered = self.open_permits.remove(&permit.position()).is_some();
                let day = self.day(author, date);
                if answered {
                    day.answered += 1;
                }
                if matches!(e.body, Body::Refusal { .. }) {
                    day.row.refusals += 1;
                } else {
                    day.row.removals += 1;
                    self.day(permit.author, date).row.removals_received += 1;
                }
            }
            Body::Revocation { permit } => {
                self.day(author, date).row.revocations += 1;
                let permit = acted_on.unwrap_or(*permit);
                if let Some(origin) = self.open_permits.remove(&permit.position()) {
                    self.day(origin, date).withdrawn += 1;
                }
            }
            Body::Registration { .. } => self.day(author, date).row.registrations_in += 1,
        }
    }
}

/// Check 3: per log, the first entry that never became applicable, and how many wait behind it.
fn report_waiting(report: &mut Report, replay: &Replay) {
    // Per log: how many entries wait, and the first of them.
    let mut stalled: BTreeMap<BureauCode, (u64, Waiting)> = replay.set_aside.clone();
    for (&waits_for, entry) in replay.buffer.waiting() {
        let w = waiting(entry, waits_for);
        let slot = stalled.entry(w.1.author).or_insert((0, w));
        slot.0 += 1;
        slot.1 = slot.1.min(w);
    }
    for (log, (count, (_, first, (author, seq), reference))) in stalled {
        let behind = count - 1;
        let tail = if behind > 0 {
            format!("; {behind} later entries of this log wait behind it")
        } else {
            String::new()
        };
        let finding = if author == log && seq.0 + 1 == first.seq.0 {
            Finding {
                log: Some(log),
                entries: vec![first],
                ..Finding::violation(
                    "missing_previous",
                    format!(
                        "entry {first} was never applied: seq {seq} of its log is missing from the bundle or was refused{tail}"
                    ),
                )
            }
        } else {
            Finding {
                log: Some(log),
                entries: std::iter::once(first).chain(reference).collect(),
                ..Finding::violation(
                    "unknown_reference",
                    format!(
                        "entry {first} was never applied: it references seq {seq} of {author}, which is missing from the bundle or was refused{tail}"
                    ),
                )
            }
        };
        report.add_finding(finding);
    }
}

/// Check 4a: certificates verify and certify the roots the log files have.
fn check_certificates<I>(
    report: &mut Report,
    epochs: &Epochs,
    certificates: &[Certificate],
    cursors: &[Cursor<I>],
    logs: &mut BTreeMap<BureauCode, LogReport>,
) {
    for certificate in certificates {
        report.totals.certificates += 1;
        let checkpoint = &certificate.checkpoint;
        let (log, size) = (checkpoint.log, checkpoint.size);
        let file = Some(certificate_file(log, size));
        if let Err(e) = certificate.verify(epochs) {
            report.add_finding(Finding {
                log: Some(log),
                file,
                ..Finding::violation(
                    e.name(),
                    format!("certificate of {log} at size {size}: {e}"),
                )
            });
            continue;
        }
        let cursor = cursors.iter().find(|c| c.code == log);
        let length = cursor.map_or(0, |c| c.entries);
        let root = if size == 0 {
            Some(empty_root())
        } else {
            cursor.and_then(|c| c.roots.get(&size).copied())
        };
        match root {
            None => report.add_finding(Finding {
                log: Some(log),
                file,
                ..Finding::violation(
                    "certificate_beyond_log",
                    format!("a quorum certified {log} at size {size}, but its log file holds {length} entries"),
                )
            }),
            Some(root) if root != checkpoint.root => report.add_finding(Finding {
                log: Some(log),
                file,
                ..Finding::violation(
                    "certificate_root_mismatch",
                    format!(
                        "a quorum certified root {} for {log} at size {size}, but the log file's first {size} entries have root {}",
                        hex::encode(checkpoint.root),
                        hex::encode(root)
                    ),
                )
            }),
            Some(_) => {
                report.totals.certificates_valid += 1;
                if let Some(l) = logs.get_mut(&log) {
                    l.certified_size = l.certified_size.max(size);
                }
            }
        }
    }
}

/// Check 4b: a valid fraud proof is an equivocation (I3); an invalid one is itself a finding.
fn check_fraud_proofs(report: &mut Report, epochs: &Epochs, proofs: &[FraudProof]) {
    for proof in proofs {
        report.totals.fraud_proofs += 1;
        let (author, seq) = (proof.author(), proof.seq());
        let entries = vec![proof.first.reference(), proof.second.reference()];
        let file = Some(fraud_proof_file(author, seq.0));
        match proof.verify(epochs) {
            Ok(()) => {
                report.totals.fraud_proofs_valid += 1;
                report.add_finding(Finding {
                    log: Some(author),
                    entries,
                    file,
                    ..Finding::violation(
                        "equivocation",
                        format!("fraud proof: {author} signed two different entries at seq {seq}"),
                    )
                });
            }
            Err(e) => report.add_finding(Finding {
                log: Some(author),
                entries,
                file,
                ..Finding::violation(
                    "invalid_fraud_proof",
                    format!("the fraud proof against {author} at seq {seq} proves nothing: {e}"),
                )
            }),
        }
    }
}

/// Check 4c: each revoked entry is in its author's file, verifies under its author's key of the
/// epoch it names, and is refused by a cut; those are listed in [`Report::revoked`], sorted, the
/// same entry once.
fn check_revoked(report: &mut Report, epochs: &Epochs, revoked: &[(BureauCode, Vec<LogItem>)]) {
    let mut files: Vec<&(BureauCode, Vec<LogItem>)> = revoked.iter().collect();
    files.sort_by_key(|(code, _)| *code);
    let mut listed = Vec::new();
    for (code, items) in files {
        let file = revoked_file(*code);
        for (position, item) in items.iter().enumerate() {
            let position = Some(position as u64);
            let entry = match item {
                LogItem::Unreadable {
                    offset,
                    name,
                    message,
                } => {
                    report.add_finding(Finding {
                        log: Some(*code),
                        file: Some(file.clone()),
                        offset: Some(*offset),
                        position,
                        ..Finding::violation(name, message.clone())
                    });
                    continue;
                }
                LogItem::Entry { entry, .. } => entry,
            };
            let (e, r) = (entry.entry(), entry.reference());
            let finding = |name: &str, message: String| Finding {
                log: Some(*code),
                entries: vec![r],
                file: Some(file.clone()),
                position,
                ..Finding::violation(name, message)
            };
            if e.author != *code {
                report.add_finding(finding(
                    "entry_in_wrong_log",
                    format!("{file} holds entry {r} of another author"),
                ));
                continue;
            }
            if let Err(why) = revoked_signature(epochs, entry) {
                report.add_finding(finding(
                    "revoked_entry_bad_signature",
                    format!("revoked entry {r} in {file} proves nothing: {why}"),
                ));
                continue;
            }
            let Some(cut) = epochs.cut_of(e.author, e.seq, e.epoch) else {
                report.add_finding(finding(
                    "revoked_entry_not_cut",
                    format!(
                        "revoked entry {r} in {file} names epoch {} and no configuration cut refuses it: a valid entry, which belongs in the log of {}",
                        e.epoch, e.author
                    ),
                ));
                continue;
            };
            listed.push(RevokedEntry {
                log: e.author,
                seq: e.seq.0,
                epoch: e.epoch,
                cut_epoch: cut.epoch,
                kind: cut.kind.name().to_string(),
                from_seq: cut.from_seq.0,
                reference: r,
            });
        }
    }
    listed.sort();
    listed.dedup();
    report.totals.revoked = listed.len() as u64;
    report.revoked = listed;
}

/// Whether a revoked entry is what it seems: of this network, signed by its author's key of the
/// epoch it names. `Err` says why not.
fn revoked_signature(epochs: &Epochs, entry: &SignedEntry) -> Result<(), String> {
    let e = entry.entry();
    if e.network != epochs.network() {
        return Err(format!("it is of network {}, not this one", e.network));
    }
    let Some(epoch) = epochs.get(e.epoch) else {
        return Err(format!(
            "it names configuration epoch {}, which the configuration log does not hold",
            e.epoch
        ));
    };
    let Some(key) = epoch.membership.key(e.author) else {
        return Err(format!("{} is no member in epoch {}", e.author, e.epoch));
    };
    if !entry.verify(key) {
        return Err(format!(
            "its signature does not verify under the key {} had in epoch {}",
            e.author, e.epoch
        ));
    }
    Ok(())
}

/// Check 5: I1 over the final state and the history, and a sweep of I2.
fn check_invariants(report: &mut Report, replay: &Replay) {
    let ledger = &replay.ledger;
    let mut still = BTreeSet::new();
    for (person, state) in ledger.duplicates() {
        still.insert(*person);
        let places: Vec<String> = state
            .records
            .iter()
            .map(|r| format!("{} (since {})", r.bureau, r.since))
            .collect();
        report.add_finding(Finding {
            log: state.records.first().map(|r| r.bureau),
            entries: state.records.iter().map(|r| r.since).collect(),
            ..Finding::violation(
                "duplicate_registration",
                format!(
                    "person {person} is registered in two places: {}",
                    places.join(", ")
                ),
            )
        });
    }
    for person in replay.duplicated.difference(&still) {
        report.add_finding(Finding::new(
            "duplicate_registration_resolved",
            Severity::Warning,
            format!("person {person} was registered in two places at once; one record has since been removed"),
        ));
    }

    // I2, as a sweep over the final state: `apply` enforces it, so this finds only rulebook bugs.
    let mut broken: Vec<Finding> = Vec::new();
    for r in ledger.registrations() {
        let fault = match ledger.deregistration(&r.deregistration) {
            None => Some("its deregistration is not in the ledger".to_string()),
            Some(d) if d.consumed_by != Some(r.reference) => Some(format!(
                "its deregistration {} is consumed by another entry",
                d.reference
            )),
            Some(d) if d.person != r.person || d.destination != r.reference.author => {
                Some("its deregistration is of another person or destination".to_string())
            }
            Some(d) => match ledger.permit(&d.permit) {
                None => Some("the permit is not in the ledger".to_string()),
                Some(p)
                    if p.status != (PermitStatus::Consumed { by: d.reference })
                        || p.person != r.person
                        || p.origin != d.reference.author
                        || p.destination() != r.reference.author =>
                {
                    Some(format!(
                        "permit {} does not match its deregistration",
                        p.reference
                    ))
                }
                Some(_) => None,
            },
        };
        if let Some(fault) = fault {
            broken.push(Finding {
                log: Some(r.reference.author),
                entries: vec![r.reference, r.deregistration],
                ..Finding::violation(
                    "invariant_i2_broken",
                    format!("registration {}: {fault}", r.reference),
                )
            });
        }
    }
    broken.sort_by(|a, b| a.entries.cmp(&b.entries));
    for finding in broken {
        report.add_finding(finding);
    }
}

/// Check 6: permits unanswered and removals unregistered past their deadlines at `as_of_ms`.
/// A bureau whose clocks are judged.
struct Member {
    code: BureauCode,
}

fn check_deadlines(report: &mut Report, ledger: &Ledger, calendar: &Calendar, as_of_ms: u64) {
    let mut findings = Vec::new();
    // Per missing year: clocks whose deadline it hides, and overdue clocks whose lateness it
    // hides. A BTreeMap, so the notes come out in year order whatever the ledger's order.
    let mut gaps: BTreeMap<i32, (u64, u64)> = BTreeMap::new();
    // Every log held, a retired bureau's too.
    let mut codes: Vec<BureauCode> = ledger.logs().map(|(code, _)| code).collect();
    codes.sort();
    for code in codes {
        let member = Member { code };
        for p in ledger.awaiting_origin(member.code) {
            let Some(late) = judge_clock(
                calendar,
                p.issued_ms,
                ledger.deadlines_of(&p.reference).answer_working_days,
                as_of_ms,
                &mut gaps,
            ) else {
                continue;
            };
            let expired = if as_of_ms > p.valid_until_ms {
                " (and has since expired)"
            } else {
                ""
            };
            findings.push(Finding {
                log: Some(member.code),
                entries: vec![p.reference],
                deadline: Some(late.deadline),
                working_days_overdue: late.working_days.ok(),
                calendar_year_missing: late.working_days.err().map(|gap| gap.year),
                ..Finding::new(
                    "permit_unanswered",
                    Severity::Warning,
                    format!(
                        "permit {} from {} awaits {}'s removal or refusal, due by the end of {}: {}{expired}",
                        p.reference,
                        p.destination(),
                        member.code,
                        late.deadline,
                        late.describe(),
                    ),
                )
            });
        }
        for d in ledger.awaiting_destination(member.code) {
            let Some(late) = judge_clock(
                calendar,
                d.time_ms,
                ledger.deadlines_of(&d.reference).registration_working_days,
                as_of_ms,
                &mut gaps,
            ) else {
                continue;
            };
            findings.push(Finding {
                log: Some(member.code),
                entries: vec![d.reference, d.permit],
                deadline: Some(late.deadline),
                working_days_overdue: late.working_days.ok(),
                calendar_year_missing: late.working_days.err().map(|gap| gap.year),
                ..Finding::new(
                    "missing_registration",
                    Severity::Warning,
                    format!(
                        "removal {} by {} has no registration at {}, due by the end of {}: {} (漏)",
                        d.reference,
                        d.reference.author,
                        member.code,
                        late.deadline,
                        late.describe(),
                    ),
                )
            });
        }
    }
    for finding in findings {
        report.add_finding(finding);
    }
    for (year, (deadlines_unknown, lateness_unknown)) in gaps {
        report.add_finding(Finding {
            calendar_year_missing: Some(year),
            ..Finding::new(
                "calendar_year_missing",
                Severity::Warning,
                format!(
                    "the working-day calendar of {year} is not published: {} clocks not judged \
                     (deadline unknown: {deadlines_unknown}; overdue, working days not counted: \
                     {lateness_unknown})",
                    deadlines_unknown + lateness_unknown
                ),
            )
        });
    }
}

/// A clock past its deadline at the audit's `as_of`.
struct Overdue {
    /// The China date by the end of which the act was due.
    deadline: Date,
    /// Working days overdue, or the missing year that hides the count.
    working_days: Result<i64, CalendarGap>,
}

impl Overdue {
    fn describe(&self) -> String {
        match self.working_days {
            Ok(late) => format!("{late} working days overdue"),
            Err(gap) => format!("overdue by a number of working days not counted ({gap})"),
        }
    }
}

/// Judges one clock at `as_of_ms`: `Some` when it is past its deadline. A deadline that needs a
/// missing year is past only if `as_of_ms` reaches that year (it falls in that year or later):
/// then it is not judged, and counted in `gaps`; so is an overdue clock's uncounted lateness.
fn judge_clock(
    calendar: &Calendar,
    received_ms: u64,
    working_days: u32,
    as_of_ms: u64,
    gaps: &mut BTreeMap<i32, (u64, u64)>,
) -> Option<Overdue> {
    let deadline_ms = match calendar.deadline_checked(received_ms, working_days) {
        Ok(deadline_ms) => deadline_ms,
        Err(gap) if china_date(as_of_ms).year() < gap.year => return None,
        Err(gap) => {
            gaps.entry(gap.year).or_default().0 += 1;
            return None;
        }
    };
    if as_of_ms <= deadline_ms {
        return None;
    }
    let late = calendar.overdue_checked(received_ms, working_days, as_of_ms);
    if let Err(gap) = late {
        gaps.entry(gap.year).or_default().1 += 1;
    }
    Some(Overdue {
        deadline: china_date(deadline_ms),
        working_days: late,
    })
}

/// Check 7: rows by date then bureau, with the pending balances carried from day to day.
fn reconciliation(days: BTreeMap<(BureauCode, Date), DayCounts>) -> Vec<DailyReconciliation> {
    let mut rows = Vec::with_capacity(days.len());
    let mut balance: HashMap<BureauCode, (u64, u64)> = HashMap::new();
    // Keys are (bureau, date): each bureau's days in order, so the balances accumulate.
    for ((bureau, _), day) in days {
        let (answers, registrations) = balance.entry(bureau).or_default();
        *answers =
            (*answers + day.row.permits_received).saturating_sub(day.answered + day.withdrawn);
        *registrations =
            (*registrations + day.row.removals_received).saturating_sub(day.row.registrations_in);
        rows.push(DailyReconciliation {
            pending_answers: *answers,
            pending_registrations: *registrations,
            ..day.row
        });
    }
    rows.sort_by_key(|r| (r.date, r.bureau));
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::Tree;

    #[test]
    fn frontier_matches_the_full_tree_at_every_size() {
        let mut tree = Tree::new();
        let mut frontier = MerkleFrontier::new();
        assert_eq!(frontier.root(), tree.root());
        for i in 0..300u32 {
            let mut leaf = [0u8; 32];
            leaf[..4].copy_from_slice(&i.to_le_bytes());
            tree.push(leaf);
            frontier.push(leaf);
            assert_eq!(frontier.root(), tree.root(), "size {}", i + 1);
            assert_eq!(frontier.len(), tree.len());
        }
    }

    #[test]
    fn file_names_round_trip() {
        let code: BureauCode = "310104".parse().unwrap();
        assert_eq!(log_file(code), "logs/310104.log");
        assert_eq!(parse_log_file_name("310104.log"), Some(code));
        assert_eq!(parse_log_file_name("31010.log"), None);
        assert_eq!(certificate_file(code, 12), "certificates/310104-12.cert");
        assert_eq!(
            parse_certificate_file_name("310104-12.cert"),
            Some((code, 12))
        );
        assert_eq!(parse_certificate_file_name("310104-+1.cert"), None);
        assert_eq!(fraud_proof_file(code, 3), "fraud-proofs/310104-3.proof");
        assert_eq!(
            parse_fraud_proof_file_name("310104-3.proof"),
            Some((code, 3))
        );
        assert_eq!(parse_fraud_proof_file_name("310104-3.cert"), None);
    }

    #[test]
    fn findings_beyond_the_cap_are_counted_not_kept() {
        let mut report = Report::new("t", 0);
        for _ in 0..FINDINGS_PER_NAME_MAX + 5 {
            report.add_finding(Finding::violation("bad_signature", "x"));
        }
        report.add_finding(Finding::new("permit_unanswered", Severity::Warning, "late"));
        assert_eq!(report.findings.len(), FINDINGS_PER_NAME_MAX + 1);
        assert_eq!(report.findings_omitted, 5);
        assert_eq!(
            report.findings_by_name["bad_signature"],
            FINDINGS_PER_NAME_MAX as u64 + 5
        );
        assert_eq!(report.totals.violations, FINDINGS_PER_NAME_MAX as u64 + 5);
        assert_eq!(report.totals.warnings, 1);
        assert!(!report.clean);
    }
}
