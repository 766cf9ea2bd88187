//! The bureau node's core: the ledger state in memory, its own log, and the two ways entries
//! come in — written by this bureau's clerks, or replicated from other bureaus.
//!
//! Invariants:
//! - Every entry passes the rulebook (`hukou_protocol::rules`) before it is stored; the node has
//!   no validity rule of its own.
//! - Durable before acknowledged: a write is answered only after the group-commit flush that
//!   covers it. Entries are handed to the committer in the order they were applied, under the
//!   state lock, so the store always receives each log contiguously; room in the commit queue
//!   is reserved before the lock is taken, so the lock is never held waiting for the committer.
//! - The service makes no store (sled) call on a runtime worker thread: fraud proofs are read
//!   and written with `spawn_blocking`, without the state lock, and [`Service::start`] (the
//!   replay) is called from a blocking thread (`run`).
//! - The state in memory is derived from the store: on start it is rebuilt by replaying every
//!   stored entry through the rulebook, so entries and state can never disagree after a crash.
//! - A node whose own log is behind what its peers hold (a lost store) writes nothing until it
//!   has pulled its own log back, so it can never sign a second entry at a position it already
//!   signed.
//! - Finality is derived from stored certificates: `State::final_sizes` is loaded from the
//!   latest certificate of each log on start, and only grows (see `witness`).
//! - A replica that holds a losing fork of another member's log moves to the certified fork
//!   ([`Service::adopt_certified_fork`]) only on a certificate that verifies, only to entries
//!   that hash to its root, never taking back its own log or anything final: it keeps the
//!   fraud proof, truncates the replica (and any replica that built on the dropped entries)
//!   durably in one batch, rebuilds the state from the store, and applies the certified entries
//!   through the rulebook. It is the one place the state lock is held while waiting for the
//!   committer (everything applied must be durable before anything is taken back); forks are
//!   rare, and nothing else can be written meanwhile anyway.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use ed25519_dalek::SigningKey;
use hukou_protocol::adoption::{AdoptionError, certified_suffix};
use hukou_protocol::calendar::Calendar;
use hukou_protocol::checkpoint::{Certificate, Checkpoint, Cosignature, SignedCheckpoint};
use hukou_protocol::config::{ConfigError, Epochs, SignedUpdate};
use hukou_protocol::entry::{Body, Entry};
use hukou_protocol::id::{CitizenId, PersonKey};
use hukou_protocol::merkle::Tree;
use hukou_protocol::rules::{CausalBuffer, Effects, SignatureCheck};
use hukou_protocol::{
    BureauCode, EntryHash, EntryRef, FraudProof, HouseholdId, Ledger, Membership, PersonTag, Seq,
    SignedEntry, Violation,
};
use tokio::sync::{Mutex, MutexGuard, Notify, mpsc, watch};

use crate::finality::{FinalityBook, Waiting, WitnessHeard};
use crate::store::{Committer, Receipt, Store, StoreError};

/// Milliseconds since the Unix epoch, from the system clock (the only clock the node reads).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Why a write was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The rulebook refused it.
    #[error(transparent)]
    Rule(Box<Violation>),
    /// The request itself is wrong (a malformed reference, an unknown entry).
    #[error("{message}")]
    BadRequest {
        error: &'static str,
        message: String,
    },
    /// The node is still recovering its own log from peers.
    #[error("this node is recovering its own log from its peers; try again shortly")]
    Syncing,
    /// A registration against a deregistration no certificate covers yet (DESIGN: a
    /// destination registers only against a final deregistration).
    /// With why, when this node saw a checkpoint of the log waiting for its committee.
    #[error(
        "deregistration {0} is not final yet: {why}; retry shortly, or ask to wait for it",
        why = waiting_reason(.1.as_deref(), "its log")
    )]
    NotFinal(EntryRef, Option<Box<Waiting>>),
    /// An enrolment or birth whose claim no certificate covers yet on this node (nobody is
    /// registered out of nowhere before the arbiter's grant is final).
    #[error(
        "claim {0} on this person is not final yet: {why}; retry shortly (the claim is kept for this \
         bureau), or ask to wait longer",
        why = waiting_reason(.1.as_deref(), "its arbiter's log")
    )]
    ClaimNotFinal(EntryRef, Option<Box<Waiting>>),
    /// The person's arbiter could not be asked for a claim.
    #[error(
        "bureau {arbiter} decides who may register this person and could not be reached ({reason}); \
         nothing was recorded: retry when the network is back"
    )]
    ArbiterUnreachable { arbiter: BureauCode, reason: String },
    /// The person's arbiter refused the claim, by the rulebook's rule `error`.
    #[error("{message}")]
    ClaimRefused { error: String, message: String },
    /// The store failed; the node stops writing.
    #[error("storage failed: {0}")]
    Store(Box<StoreError>),
}

/// Why an entry is not final, in the API message: the committee's state if this node saw the log
/// wait, or that no certificate covers it.
fn waiting_reason(waiting: Option<&Waiting>, whose: &str) -> String {
    match waiting {
        Some(w) => w.to_string(),
        None => format!("no certificate of {whose} covers it on this node"),
    }
}

impl From<Violation> for WriteError {
    fn from(v: Violation) -> WriteError {
        WriteError::Rule(Box::new(v))
    }
}

impl From<StoreError> for WriteError {
    fn from(e: StoreError) -> WriteError {
        WriteError::Store(Box::new(e))
    }
}

impl WriteError {
    /// The stable snake_case name of the error, as the API's `"error"`.
    pub fn name(&self) -> &str {
        match self {
            WriteError::Rule(v) => v.name(),
            WriteError::BadRequest { error, .. } => error,
            WriteError::Syncing => "recovering",
            WriteError::NotFinal(..) => "deregistration_not_final",
            WriteError::ClaimNotFinal(..) => "claim_not_final",
            WriteError::ArbiterUnreachable { .. } => "arbiter_unreachable",
            WriteError::ClaimRefused { error, .. } => error,
            WriteError::Store(_) => "storage_failed",
        }
    }

    /// A request error.
    pub fn bad(error: &'static str, message: impl Into<String>) -> WriteError {
        WriteError::BadRequest {
            error,
            message: message.into(),
        }
    }
}

/// Counters for `/metrics`.
#[derive(Default)]
pub struct Counters {
    pub entries_written: AtomicU64,
    pub entries_replicated: AtomicU64,
    pub entries_refused: AtomicU64,
    pub entries_duplicate: AtomicU64,
    pub decode_errors: AtomicU64,
    pub equivocations: AtomicU64,
    pub writes_refused: AtomicU64,
    /// Checkpoints of its own log this node signed.
    pub checkpoints_signed: AtomicU64,
    /// Checkpoints of other logs this node refused to cosign (not counting "not held yet").
    pub checkpoints_refused: AtomicU64,
    /// Cosignatures this node made.
    pub cosignatures: AtomicU64,
    /// Certificates this node stored (built from cosignatures or received).
    pub certificates: AtomicU64,
    /// Times this node moved a replica from a losing fork to the certified one.
    pub forks_adopted: AtomicU64,
    /// Entries of replica logs taken back by those moves (the losing fork's, and entries of other
    /// logs that depended on them).
    pub fork_entries_dropped: AtomicU64,
}

/// The in-memory state, behind one lock.
pub struct State {
    pub ledger: Ledger,
    pub buffer: CausalBuffer,
    pub trees: HashMap<BureauCode, Tree>,
    /// Next household id this bureau assigns: one above the highest an entry of its own log
    /// used. At most `HOUSEHOLD_ID_MAX + 1` once every write is judged (the rulebook bounds
    /// household numbers), so it never wraps.
    pub next_household: u64,
    /// The time every entry of the write in progress carries: set by `Service::write` under the
    /// state lock before it asks for the bodies, so a body whose validity counts from its own
    /// entry's time (a permit's `valid_until_ms`) is computed from exactly that time.
    pub write_time_ms: u64,
    /// Fraud proofs seen, by (author, seq).
    pub fraud_proofs: HashMap<(BureauCode, Seq), FraudProof>,
    /// The most recent refusals, newest last (bounded), for operators.
    pub recent_refusals: std::collections::VecDeque<(u64, String, String)>,
    /// Highest length of each log any peer has reported (replication lag).
    pub peer_lengths: HashMap<BureauCode, u64>,
    /// For each log, the largest size covered by a certificate this node stored: entries of
    /// that log below it are final. Loaded from the store on start; only grows.
    pub final_sizes: HashMap<BureauCode, u64>,
    /// Every applied entry naming each person ([`crate::store::persons_named`]), as (log, seq),
    /// in the order applied. Rebuilt on replay; kept here rather than in the store because
    /// rows keyed by random tags made sled's inserts a third of a transfer's CPU.
    pub person_entries: HashMap<PersonTag, Vec<(BureauCode, u64)>>,
}

impl State {
    /// The size up to which `log` is final (0 if no certificate is known).
    pub fn final_size(&self, log: BureauCode) -> u64 {
        self.final_sizes.get(&log).copied().unwrap_or(0)
    }

    /// Whether the entry `r` is final: it is the entry this node holds at that position, and a
    /// certificate covers it (`seq < final_size`). Any two quorums share an honest member, so
    /// no conflicting entry at that position can ever be final anywhere.
    pub fn is_final(&self, r: &EntryRef) -> bool {
        r.seq.0 < self.final_size(r.author) && self.ledger.reference_at(r.author, r.seq) == Some(*r)
    }

    /// Raises the final size of `log` to `size`; returns whether it grew.
    pub fn note_final(&mut self, log: BureauCode, size: u64) -> bool {
        let known = self.final_sizes.entry(log).or_insert(0);
        let grew = size > *known;
        *known = (*known).max(size);
        grew
    }
}

const RECENT_REFUSALS_MAX: usize = 256;

/// What a write recorded.
#[derive(Debug, Clone)]
pub struct Written {
    pub entry: SignedEntry,
    pub effects: Effects,
}

/// Progress of a catch-up: a node that is far behind its peers (new, wiped, or stopped for a
/// while) pulling the logs in large batches. Shown by `GET /healthz` as `catch_up`.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct CatchUp {
    /// Whether the node is catching up now.
    pub active: bool,
    /// The log most recently pulled from, with how much of it this node holds and how much the
    /// peer it pulls from holds.
    pub log: Option<BureauCode>,
    pub log_held: u64,
    pub log_target: u64,
    /// Entries peers hold that this node does not, over all logs, at the last count.
    pub remaining: u64,
    /// Entries applied since this catch-up began.
    pub pulled: u64,
    /// Entries applied per second, over the last report interval.
    pub entries_per_s: u64,
    /// Seconds since this catch-up began.
    pub elapsed_s: f64,
}

/// Received entries, decoded and batch-verified ([`Service::verify_received`]).
pub struct Verified {
    entries: Vec<SignedEntry>,
    verdicts: Vec<bool>,
}

impl Verified {
    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entry decoded.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// What [`Service::apply_verified`] did: entries applied (handed to the committer, durable once
/// [`Service::settle`]d) and entries now waiting in the causal buffer.
pub struct Applied {
    pub applied: usize,
    pub waiting: usize,
    receipt: Option<Receipt>,
}

/// The node's core. Cheap to clone.
#[derive(Clone)]
pub struct Service {
    inner: Arc<Inner>,
}

struct Inner {
    me: BureauCode,
    /// Every key this node holds for its bureau (the one it started with, and any found later
    /// in `key_dir`): it signs with the one the epoch in force names.
    keys: std::sync::RwLock<Vec<SigningKey>>,
    /// Where the operator puts a bureau key made for a rotation (`hukou keys gen --out
    /// DIR/next.key`): read when an epoch names a key the node does not hold yet.
    key_dir: Option<std::path::PathBuf>,
    /// The configuration log, as the ledger holds it; watchers (network, witness) follow it.
    epochs: watch::Sender<Arc<Epochs>>,
    person_key: PersonKey,
    store: Store,
    committer: Committer,
    state: Mutex<State>,
    counters: Counters,
    /// Woken after replicated entries became durable, so the witness can judge checkpoints it
    /// was waiting to hold.
    replicated: Notify,
    /// Woken (all waiters) whenever a certificate made more of some log final.
    finalized: Notify,
    /// Set once the node shuts down: waits for finality end at once (see
    /// [`Service::stop_waiting`]).
    stopping: AtomicBool,
    /// Entries to push to peers, after they are durable.
    outbound: mpsc::Sender<SignedEntry>,
    /// True until the node has confirmed with a peer that its own log is complete.
    recovering: AtomicBool,
    started: Instant,
    /// Progress of the current catch-up, if any (set by `sync`), for `/healthz`.
    catch_up: std::sync::Mutex<CatchUp>,
    /// Where claim requests to other bureaus' arbiters go (`sync` serves them over the
    /// network); unset while the node has no network.
    claimer: std::sync::OnceLock<mpsc::Sender<ClaimAsk>>,
    /// Replicas a certificate showed to be a losing fork, waiting for `sync` to fetch the
    /// certified entries ([`Service::adopt_certified_fork`]).
    adoptions: std::sync::Mutex<Adoptions>,
    /// What the witness saw of logs waiting for cosignatures and of the witnesses, to say why
    /// an entry is not final ([`Service::finality_status`]).
    finality: std::sync::Mutex<FinalityBook>,
    /// The members connected now (set by `run.rs` from the network), for the same report.
    connected: std::sync::OnceLock<ConnectedMembers>,
}

/// The members this node is connected to now (sorted).
pub type ConnectedMembers = Arc<dyn Fn() -> Vec<BureauCode> + Send + Sync>;

/// Certificates that show this node's replica of a log is a losing fork.
#[derive(Default)]
struct Adoptions {
    /// The newest such certificate of each log (verified before it was wanted, and again when
    /// the certified entries come).
    wanted: HashMap<BureauCode, Certificate>,
    /// Logs this node cannot move to the certified fork, with why (its own log built on the
    /// losing fork, or final entries would go): never tried again until restart.
    blocked: HashMap<BureauCode, String>,
}

/// What taking in a configuration update did ([`Service::apply_config`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigApplied {
    pub epoch: u32,
    /// False when the node already held this update.
    pub new: bool,
    /// Logs truncated because of a cut.
    pub truncated: Vec<Truncated>,
    /// Entries that waited (for the epoch, say) and applied now.
    pub released: usize,
}

/// A log truncated by a cut: `(log, kept, held before)`.
pub type Truncated = (BureauCode, u64, u64);

/// Why [`Service::apply_config`] did not take an update in.
#[derive(Debug, thiserror::Error)]
pub enum ConfigApplyError {
    /// The update is refused by the protocol's rules; nothing changed.
    #[error(transparent)]
    Refused(ConfigError),
    #[error("storage failed: {0}")]
    Store(Box<StoreError>),
}

impl From<StoreError> for ConfigApplyError {
    fn from(e: StoreError) -> ConfigApplyError {
        ConfigApplyError::Store(Box::new(e))
    }
}

impl ConfigApplyError {
    /// Stable name (`config_*` for a refusal).
    pub fn name(&self) -> &'static str {
        match self {
            ConfigApplyError::Refused(e) => e.name(),
            ConfigApplyError::Store(_) => "storage_failed",
        }
    }
}

/// Why [`Service::adopt_certified_fork`] did not move the replica.
#[derive(Debug, thiserror::Error)]
pub enum AdoptError {
    /// The certificate or the offered entries fail the protocol's check
    /// (`hukou_protocol::adoption::certified_suffix`); nothing changed.
    #[error(transparent)]
    Offer(Box<AdoptionError>),
    /// An entry of this node's own log references an entry of the losing fork. The own log is
    /// never taken back (its entries are signed and gossiped), so the node keeps the fork it
    /// built on and reports it; nothing changed.
    #[error(
        "this node's own log depends on the losing fork of {log} from entry {me}:{seq} on; it keeps the fork"
    )]
    OwnLogDepends {
        log: BureauCode,
        me: BureauCode,
        seq: u64,
    },
    /// Entries of another log that depend on the losing fork are final by a certificate this
    /// node holds: two certificates disagree, so more than a third of the members are faulty.
    /// Nothing changed.
    #[error(
        "log {dependent} would keep {kept} entries but {final_size} are final: it depends on the losing fork of {log}"
    )]
    DependentFinal {
        log: BureauCode,
        dependent: BureauCode,
        kept: u64,
        final_size: u64,
    },
    /// The store failed; the node stops writing.
    #[error("storage failed: {0}")]
    Store(Box<StoreError>),
}

impl From<StoreError> for AdoptError {
    fn from(e: StoreError) -> AdoptError {
        AdoptError::Store(Box::new(e))
    }
}

impl AdoptError {
    /// The stable snake_case name of the error.
    pub fn name(&self) -> &str {
        match self {
            AdoptError::Offer(e) => e.name(),
            AdoptError::OwnLogDepends { .. } => "adoption_own_log_depends",
            AdoptError::DependentFinal { .. } => "adoption_dependent_final",
            AdoptError::Store(_) => "storage_failed",
        }
    }
}

/// What [`Service::adopt_certified_fork`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Adopted {
    /// The forked log.
    pub log: BureauCode,
    /// Entries of it this node held before.
    pub held: u64,
    /// Entries of it kept (shared with the certified fork).
    pub common: u64,
    /// The certificate's size.
    pub size: u64,
    /// Other logs truncated because they depended on the dropped entries: (log, kept, held).
    pub dependents: Vec<(BureauCode, u64, u64)>,
    /// Entries applied afterwards: the certified ones, and entries that had been waiting.
    pub applied: usize,
    /// How long rebuilding the state from the store took.
    pub rebuild_ms: u64,
}

/// A request for claims on `persons` to their arbiter `arbiter`, served by `sync`.
pub struct ClaimAsk {
    pub arbiter: BureauCode,
    pub persons: Vec<PersonTag>,
    /// The arbiter's answers, one per person in order, or why it could not be asked.
    pub done: tokio::sync::oneshot::Sender<Result<Vec<ClaimAnswer>, String>>,
}

/// An arbiter's answer to a claim request, for one person (on the wire: `sync`).
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub enum ClaimAnswer {
    /// The signed `Claim` entry (wire form), newly written or granted earlier to the same
    /// claimant and not yet consumed.
    Granted(Vec<u8>),
    /// Refused: the rulebook's name and message.
    Refused { error: String, message: String },
}

/// Most persons one claim request may name.
pub const CLAIMS_PER_REQUEST_MAX: usize = hukou_protocol::limits::BATCH_ENTRIES_MAX;

/// What the caller needs to run the service: the outbound gossip queue.
pub struct ServiceParts {
    pub service: Service,
    pub outbound: mpsc::Receiver<SignedEntry>,
}

/// Bound of the outbound gossip queue; when full, entries are not pushed but peers still pull
/// them (anti-entropy), so nothing is lost.
const OUTBOUND_QUEUE_MAX: usize = 65_536;

impl Service {
    /// Opens the service over an opened store: replays every stored entry through the rulebook.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        me: BureauCode,
        key: SigningKey,
        person_key: PersonKey,
        epochs: Epochs,
        store: Store,
        committer: Committer,
        recovering: bool,
    ) -> Result<ServiceParts, StoreError> {
        let epochs = load_config(&store, epochs)?;
        let state = replay(&store, epochs, me)?;
        let (outbound_tx, outbound_rx) = mpsc::channel(OUTBOUND_QUEUE_MAX);
        let (epochs_tx, _) = watch::channel(state.ledger.epochs_arc());
        let service = Service {
            inner: Arc::new(Inner {
                me,
                keys: std::sync::RwLock::new(vec![key]),
                key_dir: None,
                epochs: epochs_tx,
                person_key,
                store,
                committer,
                state: Mutex::new(state),
                counters: Counters::default(),
                replicated: Notify::new(),
                finalized: Notify::new(),
                stopping: AtomicBool::new(false),
                outbound: outbound_tx,
                recovering: AtomicBool::new(recovering),
                started: Instant::now(),
                catch_up: std::sync::Mutex::new(CatchUp::default()),
                claimer: std::sync::OnceLock::new(),
                adoptions: std::sync::Mutex::new(Adoptions::default()),
                finality: std::sync::Mutex::new(FinalityBook::default()),
                connected: std::sync::OnceLock::new(),
            }),
        };
        Ok(ServiceParts {
            service,
            outbound: outbound_rx,
        })
    }

    /// This node's bureau.
    pub fn me(&self) -> BureauCode {
        self.inner.me
    }

    /// The working-day calendar in force: the genesis's and every year published since
    /// (`config`).
    pub fn calendar(&self) -> Arc<Calendar> {
        self.epochs().latest().calendar.clone()
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Counters.
    pub fn counters(&self) -> &Counters {
        &self.inner.counters
    }

    /// Seconds since start.
    pub fn uptime_s(&self) -> u64 {
        self.inner.started.elapsed().as_secs()
    }

    /// The progress of catching up with peers (`active: false` when not behind).
    pub fn catch_up(&self) -> CatchUp {
        self.inner
            .catch_up
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Records the progress of catching up (`sync` does, as it pulls).
    pub fn set_catch_up(&self, progress: CatchUp) {
        *self
            .inner
            .catch_up
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = progress;
    }

    /// Whether writes wait for the own log to be recovered from peers.
    pub fn is_recovering(&self) -> bool {
        self.inner.recovering.load(Ordering::Acquire)
    }

    /// Marks the own log as complete (a peer confirmed it holds no more of it, or there are no
    /// peers to ask).
    pub fn finish_recovery(&self) {
        if self.inner.recovering.swap(false, Ordering::AcqRel) {
            tracing::info!("own log confirmed complete; accepting writes");
        }
    }

    /// Sets where the members connected now are read from (once, by `run.rs`; without it, only
    /// this node counts as connected).
    pub fn set_connected_members(&self, connected: ConnectedMembers) {
        let _ = self.inner.connected.set(connected);
    }

    fn finality_book(&self) -> std::sync::MutexGuard<'_, FinalityBook> {
        self.inner
            .finality
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn connected_members(&self) -> std::collections::BTreeSet<BureauCode> {
        self.inner
            .connected
            .get()
            .map(|f| f().into_iter().collect())
            .unwrap_or_default()
    }

    /// Witness hook: a validly signed checkpoint of a log was seen.
    pub fn finality_checkpoint(&self, checkpoint: &Checkpoint, final_size: u64) {
        self.finality_book().checkpoint(
            checkpoint.log,
            checkpoint.size,
            checkpoint.epoch,
            final_size,
            now_ms(),
        );
    }

    /// Witness hook: a valid cosignature by `witness` of `checkpoint` was counted.
    pub fn finality_cosigned(&self, checkpoint: &Checkpoint, witness: BureauCode, final_size: u64) {
        self.finality_book().cosigned(
            checkpoint.log,
            checkpoint.size,
            checkpoint.epoch,
            witness,
            final_size,
            now_ms(),
        );
    }

    /// Witness hook: a valid cosignature by `witness` arrived (of a checkpoint already final).
    pub fn finality_heard(&self, witness: BureauCode) {
        self.finality_book().heard(witness, now_ms());
    }

    /// Whether a cosignature from `witness` arrived in the last `within_ms`.
    pub fn finality_heard_within(&self, witness: BureauCode, within_ms: u64) -> bool {
        self.finality_book()
            .heard_since(witness, now_ms().saturating_sub(within_ms))
    }

    /// Witness hook: a certificate of `log` at `size` was stored.
    pub fn finality_certified(&self, log: BureauCode, size: u64) {
        self.finality_book().certified(log, size);
    }

    /// Why `log` is not final beyond its final size on this node: its newest checkpoint, since
    /// when it waits, its committee, quorum, who cosigned and who is missing. `None` when this
    /// node saw no checkpoint of it above its final size.
    pub async fn finality_status(&self, log: BureauCode) -> Option<Waiting> {
        let state = self.inner.state.lock().await;
        self.finality_waiting_in(&state, log).map(|w| *w)
    }

    /// [`Service::finality_status`] with the state already locked.
    fn finality_waiting_in(&self, state: &State, log: BureauCode) -> Option<Box<Waiting>> {
        let connected = self.connected_members();
        self.finality_book()
            .report(
                &self.epochs(),
                self.inner.me,
                &connected,
                log,
                state.final_size(log),
            )
            .map(Box::new)
    }

    /// Every log waiting for cosignatures on this node, and every member with when this node
    /// last heard a cosignature from it (`GET /v1/finality`, the network page).
    pub async fn finality_report(&self) -> (Vec<Waiting>, Vec<WitnessHeard>) {
        let state = self.inner.state.lock().await;
        let epochs = self.epochs();
        let connected = self.connected_members();
        let book = self.finality_book();
        let waiting = book
            .waiting_logs(|log| state.final_size(log))
            .into_iter()
            .filter_map(|log| {
                book.report(
                    &epochs,
                    self.inner.me,
                    &connected,
                    log,
                    state.final_size(log),
                )
            })
            .collect();
        let witnesses = book.witnesses(&epochs, self.inner.me, &connected);
        (waiting, witnesses)
    }

    /// The latest epoch's membership.
    pub async fn membership(&self) -> Membership {
        self.inner.state.lock().await.ledger.membership().clone()
    }

    /// The configuration log (every epoch), as the ledger judges by it now.
    pub fn epochs(&self) -> Arc<Epochs> {
        self.inner.epochs.borrow().clone()
    }

    /// Follows the configuration log: changes whenever an update is taken in.
    pub fn watch_epochs(&self) -> watch::Receiver<Arc<Epochs>> {
        self.inner.epochs.subscribe()
    }

    /// Sets the directory searched for a key an epoch names that the node does not hold.
    /// Only before the service is shared (run.rs).
    pub fn with_key_dir(mut self, dir: std::path::PathBuf) -> Service {
        Arc::get_mut(&mut self.inner)
            .expect("set before the service is shared")
            .key_dir = Some(dir);
        self.load_keys_from_dir();
        self
    }

    /// Reads every `*.key` file of the key directory it does not hold yet (owner-only files,
    /// `hukou_keys` checks). Unreadable files are logged and skipped.
    fn load_keys_from_dir(&self) {
        let Some(dir) = &self.inner.key_dir else {
            return;
        };
        let Ok(read) = std::fs::read_dir(dir) else {
            return;
        };
        for item in read.flatten() {
            let path = item.path();
            if path.extension().and_then(|e| e.to_str()) != Some("key") {
                continue;
            }
            match hukou_keys::BureauKey::load(&path) {
                Ok(k) => {
                    let key = k.signing_key().clone();
                    let mut keys = self.inner.keys.write().expect("keys lock");
                    if !keys
                        .iter()
                        .any(|h| h.verifying_key() == key.verifying_key())
                    {
                        tracing::info!(path = %path.display(), "loaded a bureau key from the key directory");
                        keys.push(key);
                    }
                }
                Err(e) => tracing::warn!(path = %path.display(), "cannot load key file: {e}"),
            }
        }
    }

    /// The key this bureau signs with under `epoch`, if the node holds it.
    fn key_for(&self, epochs: &Epochs, epoch: u32) -> Option<SigningKey> {
        let public = *epochs.get(epoch)?.membership.key(self.inner.me)?;
        let find = || {
            self.inner
                .keys
                .read()
                .expect("keys lock")
                .iter()
                .find(|k| k.verifying_key() == public)
                .cloned()
        };
        find().or_else(|| {
            self.load_keys_from_dir();
            find()
        })
    }

    /// The epoch this bureau signs under now, and its key: the latest epoch, not below
    /// `at_least` (its log's last entry's), whose key for this bureau the node holds and from
    /// which no cut refuses the next position. `None` when there is none (retired, or the key
    /// for the epoch in force is not installed yet).
    pub fn signing_epoch(
        &self,
        epochs: &Epochs,
        at_least: u32,
        next_seq: u64,
    ) -> Option<(u32, SigningKey)> {
        let latest = epochs.latest().epoch;
        (at_least..=latest).rev().find_map(|e| {
            if epochs.cut_of(self.inner.me, Seq(next_seq), e).is_some() {
                return None;
            }
            self.key_for(epochs, e).map(|k| (e, k))
        })
    }

    /// Why this bureau cannot sign now (see [`Service::signing_epoch`]).
    fn cannot_sign(&self, epochs: &Epochs) -> WriteError {
        let (me, latest) = (self.inner.me, epochs.latest());
        if latest.membership.contains(me) {
            WriteError::bad(
                "signing_key_missing",
                format!(
                    "configuration epoch {} names a key for {me} that this node does not hold: put the bureau's new key file in the node's key directory",
                    latest.epoch
                ),
            )
        } else {
            WriteError::bad(
                "bureau_retired",
                format!(
                    "{me} is not a member of configuration epoch {}: it signs nothing more",
                    latest.epoch
                ),
            )
        }
    }

    /// Whether this bureau can sign an entry now.
    pub async fn can_sign(&self) -> Result<(), WriteError> {
        self.signing_now(&*self.inner.state.lock().await)
            .map(|_| ())
    }

    /// The epoch the own log's next entry is signed under, and its key, given `state`: see
    /// [`Service::signing_epoch`]; why not, when the bureau cannot sign.
    fn signing_now(&self, state: &State) -> Result<(u32, SigningKey), WriteError> {
        let log = state.ledger.log(self.inner.me);
        let at_least = log.and_then(|l| l.epochs.last().copied()).unwrap_or(0);
        let next = log.map_or(0, |l| l.len());
        let epochs = state.ledger.epochs();
        self.signing_epoch(epochs, at_least, next)
            .ok_or_else(|| self.cannot_sign(epochs))
    }

    /// The epoch a checkpoint of the own log is made under now (see [`Service::signing_epoch`]).
    pub async fn checkpoint_epoch(&self) -> Option<u32> {
        self.signing_now(&*self.inner.state.lock().await)
            .ok()
            .map(|(e, _)| e)
    }

    /// Resolves once replicated entries have become durable since the last call (a stored
    /// wake-up, so none is missed between two waits).
    pub async fn replicated(&self) {
        self.inner.replicated.notified().await
    }

    /// Signs a checkpoint of this bureau's own log. The key never leaves the service.
    ///
    /// # Panics
    /// If `checkpoint` is of another log: a node signs checkpoints of its own log only.
    pub fn sign_checkpoint(&self, checkpoint: Checkpoint) -> Option<SignedCheckpoint> {
        assert_eq!(
            checkpoint.log, self.inner.me,
            "a node signs only its own log"
        );
        let key = self.key_for(&self.epochs(), checkpoint.epoch)?;
        self.inner
            .counters
            .checkpoints_signed
            .fetch_add(1, Ordering::Relaxed);
        Some(checkpoint.sign(&key))
    }

    /// Cosigns a checkpoint as this bureau's witness. The caller must have judged it
    /// (`hukou_protocol::witness::judge`) and durably recorded it as the last cosigned of its
    /// log (`Store::record_cosigned`) first; `witness` does both.
    ///
    /// `None` when the node does not hold its key of the checkpoint's epoch (rotated since).
    pub fn cosign(&self, checkpoint: &Checkpoint) -> Option<Cosignature> {
        let key = self.key_for(&self.epochs(), checkpoint.epoch)?;
        self.inner
            .counters
            .cosignatures
            .fetch_add(1, Ordering::Relaxed);
        Some(Cosignature::sign(checkpoint, self.inner.me, &key))
    }

    /// Whether the entry `r` is final on this node (see [`State::is_final`]).
    pub async fn is_final(&self, r: &EntryRef) -> bool {
        self.inner.state.lock().await.is_final(r)
    }

    /// Tells waiters that a certificate made more of some log final. Called by whoever raised
    /// [`State::note_final`], after releasing nothing: waiters re-check under the lock.
    pub fn finality_advanced(&self) {
        self.inner.finalized.notify_waiters();
    }

    /// Ends every wait for finality, now and from now on: the node is shutting down, its
    /// witness and network stop, so nothing more becomes final, and a request waiting (up to its
    /// `wait_ms`, 60 s at most) would hold the API's graceful shutdown, and so the node, that
    /// long. The waiting requests are answered as not final yet (a claim is kept for the retry).
    pub fn stop_waiting(&self) {
        self.inner.stopping.store(true, Ordering::Release);
        self.inner.finalized.notify_waiters();
    }

    /// Waits until `r` is final on this node, at most `timeout` (and not once the node is
    /// stopping: [`Service::stop_waiting`]); returns whether it is.
    pub async fn wait_final(&self, r: &EntryRef, timeout: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Registered before the checks, so an advance or a stop between check and wait is
            // not missed.
            let advanced = self.inner.finalized.notified();
            tokio::pin!(advanced);
            advanced.as_mut().enable();
            if self.is_final(r).await {
                return true;
            }
            if self.inner.stopping.load(Ordering::Acquire) {
                return false;
            }
            if tokio::time::timeout_at(deadline, advanced).await.is_err() {
                return self.is_final(r).await;
            }
        }
    }

    /// The person tag of an ID number.
    pub fn tag(&self, id: &CitizenId) -> PersonTag {
        self.inner.person_key.tag(id)
    }

    /// The state, locked.
    pub async fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().await
    }

    /// Writes entries of this bureau's own log. `build` sees the current state and returns the
    /// bodies to sign (one, or many for a bulk import); each is admitted and applied in turn.
    /// With `partial`, a refused body is reported in its slot and the rest still go in; without,
    /// the first refusal aborts the write (nothing earlier in the call is kept either, since
    /// nothing is applied until every body passed).
    ///
    /// Returns after the flush that makes every written entry durable.
    pub async fn write<F>(&self, build: F) -> Result<Vec<Result<Written, WriteError>>, WriteError>
    where
        F: FnOnce(&mut State) -> Result<Vec<Body>, WriteError>,
    {
        self.write_inner(build, true).await
    }

    /// Writes exactly one entry; a refusal is an error.
    pub async fn write_one<F>(&self, build: F) -> Result<Written, WriteError>
    where
        F: FnOnce(&mut State) -> Result<Body, WriteError>,
    {
        let mut out = self
            .write_inner(|s| build(s).map(|b| vec![b]), false)
            .await?;
        out.pop().expect("one body, one result")
    }

    async fn write_inner<F>(
        &self,
        build: F,
        partial: bool,
    ) -> Result<Vec<Result<Written, WriteError>>, WriteError>
    where
        F: FnOnce(&mut State) -> Result<Vec<Body>, WriteError>,
    {
        if self.is_recovering() {
            return Err(WriteError::Syncing);
        }
        let inner = &self.inner;
        // Room in the commit queue first: the entries are queued under the state lock (so they
        // reach the store in the order they were applied), and the lock is never held while
        // waiting for the committer.
        let commit = inner.committer.reserve().await?;
        let mut state = inner.state.lock().await;
        let households_before = state.next_household;
        // Every entry of this write carries this time (`time_ms` below is the same value).
        let now = now_ms().max(state.ledger.log(inner.me).map_or(0, |l| l.last_time_ms));
        state.write_time_ms = now;
        let bodies = match build(&mut state) {
            Ok(bodies) => bodies,
            Err(e) => {
                state.next_household = households_before;
                return Err(e);
            }
        };
        let network = state.ledger.membership().network();
        let (epoch, key) = match self.signing_now(&state) {
            Ok(signing) => signing,
            Err(e) => {
                state.next_household = households_before;
                return Err(e);
            }
        };
        let mut results = Vec::with_capacity(bodies.len());
        let mut accepted = Vec::with_capacity(bodies.len());
        for body in bodies {
            // Nobody is registered out of nowhere before the arbiter's claim is final: a claim
            // of a forked arbiter log could otherwise be used on one fork only. And (DESIGN) a
            // destination registers only against a final deregistration. Finality is this
            // node's knowledge (certificates it holds), not a rule of validity: replicas judge
            // these entries by the rulebook alone, so it is checked here, before signing, with
            // the state lock held so the check and the write see one state. A reference of
            // another kind is the rulebook's to name (`reference_wrong_kind`).
            let not_final = match &body {
                Body::Enrol { claim, .. } | Body::Birth { claim, .. }
                    if state.ledger.claim(claim).is_some() && !state.is_final(claim) =>
                {
                    Some(WriteError::ClaimNotFinal(
                        *claim,
                        self.finality_waiting_in(&state, claim.author),
                    ))
                }
                Body::Registration { deregistration, .. }
                    if state.ledger.deregistration(deregistration).is_some()
                        && !state.is_final(deregistration) =>
                {
                    Some(WriteError::NotFinal(
                        *deregistration,
                        self.finality_waiting_in(&state, deregistration.author),
                    ))
                }
                _ => None,
            };
            if let Some(refused) = not_final {
                inner
                    .counters
                    .writes_refused
                    .fetch_add(1, Ordering::Relaxed);
                if !partial {
                    // A refused write takes no household number.
                    state.next_household = households_before;
                    return Err(refused);
                }
                results.push(Err(refused));
                continue;
            }
            let log = state.ledger.log(inner.me);
            let (seq, prev, last_time) = log.map_or((0, EntryHash::ZERO, 0), |l| {
                (l.len(), l.tip(), l.last_time_ms)
            });
            let entry = Entry {
                network,
                epoch,
                author: inner.me,
                seq: Seq(seq),
                prev,
                time_ms: now.max(last_time),
                body,
            }
            .sign(&key);
            // The entry was just signed with our key: skip re-verifying it.
            match state.ledger.admit(&entry, SignatureCheck::AlreadyVerified) {
                Ok(()) => {
                    let effects = state
                        .ledger
                        .apply(&entry, SignatureCheck::AlreadyVerified)
                        .expect("an admitted entry applies");
                    let State {
                        trees,
                        person_entries,
                        ..
                    } = &mut *state;
                    note_applied(trees, person_entries, &entry);
                    accepted.push(entry.clone());
                    results.push(Ok(Written { entry, effects }));
                }
                Err(v) => {
                    inner
                        .counters
                        .writes_refused
                        .fetch_add(1, Ordering::Relaxed);
                    if !partial {
                        state.next_household = households_before;
                        return Err(v.into());
                    }
                    results.push(Err(v.into()));
                }
            }
        }
        // Household numbers taken by refused bodies are given back: the next one follows the
        // highest household an accepted entry actually used.
        state.next_household = households_before;
        for entry in &accepted {
            note_household(&mut state.next_household, entry.entry());
        }
        if accepted.is_empty() {
            return Ok(results);
        }
        let count = accepted.len() as u64;
        let receipt = commit.submit(accepted.clone());
        drop(state);
        receipt.await?;
        inner
            .counters
            .entries_written
            .fetch_add(count, Ordering::Relaxed);
        for entry in accepted {
            // A full queue only delays propagation: peers pull what they miss.
            let _ = inner.outbound.try_send(entry);
        }
        Ok(results)
    }

    /// Takes entries received from a peer (wire bytes), verifies their signatures in a batch,
    /// judges each through the causal buffer, and stores those that apply. Returns how many were
    /// applied, once they are durable.
    ///
    /// The three stages are also public ([`Service::verify_received`],
    /// [`Service::apply_verified`], [`Service::settle`]) so that a catch-up can verify the next
    /// batch while the previous one is being written.
    pub async fn ingest(&self, raw: Vec<Vec<u8>>) -> Result<usize, StoreError> {
        let mut entries = self.decode_received(raw);
        self.drop_held(&mut entries).await;
        let verified = self.verify_decoded(entries).await;
        let applied = self.apply_verified(verified).await?;
        let count = applied.applied;
        self.settle(applied).await?;
        Ok(count)
    }

    /// Decodes received entries; an undecodable one is counted and dropped.
    fn decode_received(&self, raw: Vec<Vec<u8>>) -> Vec<SignedEntry> {
        let mut entries = Vec::with_capacity(raw.len());
        for bytes in &raw {
            match SignedEntry::decode(bytes) {
                Ok(e) => entries.push(e),
                Err(err) => {
                    self.inner
                        .counters
                        .decode_errors
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%err, "refused undecodable entry from a peer");
                }
            }
        }
        entries
    }

    /// Drops (and counts as duplicates) the entries whose content this node already holds at
    /// their position: the rulebook's `duplicate_entry`, whatever their signature, since nothing
    /// in them is new; so their signatures are not verified again. Gossip and pull rounds bring
    /// many such copies (most of the entries a node received in the benchmarks), and verifying
    /// them was most of what they cost. Only for replication ([`Service::ingest`]): an adoption's
    /// offer must stay whole, shared prefix included.
    async fn drop_held(&self, entries: &mut Vec<SignedEntry>) {
        if entries.is_empty() {
            return;
        }
        let state = self.inner.state.lock().await;
        let before = entries.len();
        entries.retain(|e| {
            let r = e.reference();
            state.ledger.reference_at(r.author, r.seq) != Some(r)
        });
        drop(state);
        self.inner
            .counters
            .entries_duplicate
            .fetch_add((before - entries.len()) as u64, Ordering::Relaxed);
    }

    /// Stage 1 of [`Service::ingest`]: decodes received entries (an undecodable one is counted
    /// and dropped) and batch-verifies their signatures on every core. Takes no lock.
    pub async fn verify_received(&self, raw: Vec<Vec<u8>>) -> Verified {
        let entries = self.decode_received(raw);
        self.verify_decoded(entries).await
    }

    /// Batch-verifies decoded entries on every core.
    async fn verify_decoded(&self, entries: Vec<SignedEntry>) -> Verified {
        if entries.is_empty() {
            return Verified {
                entries,
                verdicts: Vec::new(),
            };
        }
        let epochs = self.epochs();
        let (entries, verdicts) = tokio::task::spawn_blocking(move || {
            let verdicts = crate::verify::verify_entries(&epochs, &entries);
            (entries, verdicts)
        })
        .await
        .expect("verification does not panic");
        Verified { entries, verdicts }
    }

    /// Stage 2 of [`Service::ingest`]: judges verified entries through the causal buffer (an
    /// entry whose batch verdict was negative is verified again, strictly, by the rulebook) and
    /// hands those that apply to the committer, in the order they were applied, under the state
    /// lock. Does not wait for the flush: [`Service::settle`] the result for that.
    pub async fn apply_verified(&self, verified: Verified) -> Result<Applied, StoreError> {
        let inner = &self.inner;
        let Verified { entries, verdicts } = verified;
        if entries.is_empty() {
            let waiting = inner.state.lock().await.buffer.len();
            return Ok(Applied {
                applied: 0,
                waiting,
                receipt: None,
            });
        }
        // Room in the commit queue before the lock, as in `write_inner`.
        let commit = inner.committer.reserve().await?;
        let mut state = inner.state.lock().await;
        let checked = entries.into_iter().zip(verdicts).map(|(entry, verified)| {
            let check = if verified {
                SignatureCheck::AlreadyVerified
            } else {
                SignatureCheck::Verify
            };
            (entry, check)
        });
        let (to_store, equivocations) = self.judge_replicated(&mut state, checked);
        let applied = to_store.len();
        let waiting = state.buffer.len();
        let receipt = (applied > 0).then(|| commit.submit(to_store));
        let membership = (!equivocations.is_empty()).then(|| state.ledger.epochs_arc());
        drop(state);
        if let Some(membership) = membership {
            self.record_equivocations(membership, equivocations).await;
        }
        Ok(Applied {
            applied,
            waiting,
            receipt,
        })
    }

    /// Judges replicated entries through the causal buffer, in order. Returns those applied (for
    /// the committer, in the order applied) and the equivocations found, to be proven with
    /// [`Service::record_equivocations`] once the lock is released. Refusals are counted and
    /// reported.
    #[allow(clippy::type_complexity)]
    fn judge_replicated(
        &self,
        state: &mut State,
        entries: impl IntoIterator<Item = (SignedEntry, SignatureCheck)>,
    ) -> (Vec<SignedEntry>, Vec<(EntryRef, SignedEntry)>) {
        let inner = &self.inner;
        let mut to_store = Vec::new();
        let mut equivocations = Vec::new();
        for (entry, check) in entries {
            let judged = {
                let State { ledger, buffer, .. } = &mut *state;
                buffer.offer(ledger, entry, check)
            };
            for j in judged {
                match j.result {
                    Ok(_) => {
                        let State {
                            trees,
                            person_entries,
                            ..
                        } = &mut *state;
                        note_applied(trees, person_entries, &j.entry);
                        if j.entry.entry().author == inner.me {
                            note_household(&mut state.next_household, j.entry.entry());
                        }
                        to_store.push(j.entry);
                    }
                    Err(v) if v.is_duplicate() => {
                        inner
                            .counters
                            .entries_duplicate
                            .fetch_add(1, Ordering::Relaxed);
                    }
                    Err(Violation::Equivocation { existing, .. }) => {
                        // Proven with the stored original, after the lock is released.
                        if !state
                            .fraud_proofs
                            .contains_key(&(existing.author, existing.seq))
                        {
                            equivocations.push((existing, j.entry));
                        }
                    }
                    Err(v) => {
                        inner
                            .counters
                            .entries_refused
                            .fetch_add(1, Ordering::Relaxed);
                        if let Violation::SignedAfterCut { .. } = v
                            && let Err(e) =
                                keep_revoked(&inner.store, std::slice::from_ref(&j.entry))
                        {
                            tracing::warn!("cannot keep a revoked entry as evidence: {e}");
                        }
                        // The same entry comes back with every pull round until its author's
                        // log moves on: report it once, so it cannot push real refusals out.
                        let message = v.to_string();
                        let known = state
                            .recent_refusals
                            .iter()
                            .any(|(_, rule, m)| rule == v.name() && *m == message);
                        if !known {
                            tracing::warn!(rule = v.name(), "refused replicated entry: {v}");
                            state.recent_refusals.push_back((
                                now_ms(),
                                v.name().to_string(),
                                message,
                            ));
                            if state.recent_refusals.len() > RECENT_REFUSALS_MAX {
                                state.recent_refusals.pop_front();
                            }
                        }
                    }
                }
            }
        }
        (to_store, equivocations)
    }

    /// Stage 3 of [`Service::ingest`]: waits until the entries applied are durable, then counts
    /// them and wakes the witness.
    pub async fn settle(&self, applied: Applied) -> Result<(), StoreError> {
        let Some(receipt) = applied.receipt else {
            return Ok(());
        };
        receipt.await?;
        self.inner
            .counters
            .entries_replicated
            .fetch_add(applied.applied as u64, Ordering::Relaxed);
        self.inner.replicated.notify_one();
        Ok(())
    }

    /// Stores a fraud proof for each equivocation found (the entry held at a position, and a
    /// different one received for it), built from the stored original. The store is read and
    /// written on a blocking thread, without the state lock; the proofs then go into the state.
    async fn record_equivocations(&self, epochs: Arc<Epochs>, found: Vec<(EntryRef, SignedEntry)>) {
        let inner = &self.inner;
        let store = inner.store.clone();
        let proven = tokio::task::spawn_blocking(move || {
            found
                .into_iter()
                .filter_map(|(existing, conflicting)| {
                    // Not yet flushed: the conflicting entry will arrive again.
                    let Ok(Some(original)) = store.entry(existing.author, existing.seq.0) else {
                        return None;
                    };
                    let proof = FraudProof::new(original, conflicting);
                    proof.verify(&epochs).ok()?;
                    if let Err(e) =
                        store.put_fraud_proof(existing.author, existing.seq.0, &proof.encode())
                    {
                        tracing::error!("could not store fraud proof: {e}");
                    }
                    Some((existing, proof))
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_else(|e| {
            tracing::error!("recording equivocations failed: {e}");
            Vec::new()
        });
        if proven.is_empty() {
            return;
        }
        let mut state = inner.state.lock().await;
        for (existing, proof) in proven {
            let key = (existing.author, existing.seq);
            if state.fraud_proofs.contains_key(&key) {
                continue;
            }
            inner.counters.equivocations.fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                author = %existing.author, seq = existing.seq.0,
                "EQUIVOCATION: bureau {} signed two different entries at seq {}; fraud proof stored",
                existing.author, existing.seq.0
            );
            state.fraud_proofs.insert(key, proof);
        }
    }

    /// Notes a certificate that shows this node's replica of its log is a losing fork (the
    /// witness calls this), so that `sync` fetches the certified entries and calls
    /// [`Service::adopt_certified_fork`]. Keeps the newest per log; ignores the own log and logs
    /// this node cannot move. Returns whether the certificate is newly wanted.
    pub fn want_adoption(&self, certificate: Certificate) -> bool {
        let log = certificate.checkpoint.log;
        if log == self.inner.me {
            return false;
        }
        let mut adoptions = self.lock_adoptions();
        if adoptions.blocked.contains_key(&log) {
            return false;
        }
        let newer = adoptions
            .wanted
            .get(&log)
            .is_none_or(|w| certificate.checkpoint.size > w.checkpoint.size);
        if newer {
            adoptions.wanted.insert(log, certificate);
        }
        newer
    }

    /// The certificates whose certified entries `sync` should fetch now (those no longer needed,
    /// because a certificate at least as large is final here, are forgotten).
    pub async fn adoptions_wanted(&self) -> Vec<Certificate> {
        let wanted: Vec<Certificate> = self.lock_adoptions().wanted.values().cloned().collect();
        let mut out = Vec::with_capacity(wanted.len());
        for certificate in wanted {
            let c = certificate.checkpoint;
            if self.state().await.final_size(c.log) >= c.size {
                self.forget_adoption(&certificate);
            } else {
                out.push(certificate);
            }
        }
        out
    }

    /// Logs this node cannot move to their certified fork, with why.
    pub fn adoptions_blocked(&self) -> Vec<(BureauCode, String)> {
        let mut out: Vec<_> = self
            .lock_adoptions()
            .blocked
            .iter()
            .map(|(log, why)| (*log, why.clone()))
            .collect();
        out.sort();
        out
    }

    fn forget_adoption(&self, certificate: &Certificate) {
        let mut adoptions = self.lock_adoptions();
        if adoptions.wanted.get(&certificate.checkpoint.log) == Some(certificate) {
            adoptions.wanted.remove(&certificate.checkpoint.log);
        }
    }

    fn lock_adoptions(&self) -> std::sync::MutexGuard<'_, Adoptions> {
        self.inner
            .adoptions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Moves this node's replica of a forked log to the certified fork (ARCHITECTURE.md, "a
    /// replica that holds a losing fork"): `offered` are the entries at seqs `from..size` of the
    /// certificate's log, fetched from a peer and batch-verified ([`Service::verify_received`]).
    ///
    /// Under the state lock, with everything handed to the committer written first:
    ///
    /// 1. `hukou_protocol::adoption::certified_suffix` checks the certificate against the
    ///    membership and the offer against its root, and says how much of the replica is shared
    ///    (`common`). Nothing else is trusted: a peer can only make this fail.
    /// 2. The pair of entries at the first divergent position is kept as a fraud proof.
    /// 3. The state is rebuilt from the store as if the log ended at `common`: whatever else no
    ///    longer applies (entries of other logs that referenced the dropped ones, and what
    ///    follows them) is dropped too, unless it is this node's own log or final here, in
    ///    which case nothing changes ([`AdoptError::OwnLogDepends`],
    ///    [`AdoptError::DependentFinal`]).
    /// 4. The store drops those entries in one atomic, durable batch (`Store::truncate_logs`),
    ///    the rebuilt state replaces the old one, and the certified entries, then every entry
    ///    that was waiting in the causal buffer, go through the rulebook and to the committer.
    ///
    /// A crash after step 4's truncation leaves a store that replays and pulls the rest.
    pub async fn adopt_certified_fork(
        &self,
        certificate: &Certificate,
        from: u64,
        offered: Verified,
    ) -> Result<Adopted, AdoptError> {
        let inner = &self.inner;
        let me = inner.me;
        let log = certificate.checkpoint.log;
        // Room for the drain and for the certified entries, before the lock.
        let drain = inner.committer.reserve().await?;
        let commit = inner.committer.reserve().await?;
        let mut state = inner.state.lock().await;
        // Whatever was applied before is durable before anything is taken back; nothing new is
        // handed to the committer while the state lock is held.
        drain.submit(Vec::new()).await?;
        let Verified { entries, verdicts } = offered;
        let suffix = {
            let empty = hukou_protocol::merkle::Tree::new();
            let replica = state.trees.get(&log).unwrap_or(&empty);
            certified_suffix(
                state.ledger.epochs(),
                me,
                certificate,
                replica,
                state.final_size(log),
                from,
                entries,
            )
        };
        let suffix = match suffix {
            Ok(suffix) => suffix,
            Err(e) => {
                if matches!(
                    e,
                    AdoptionError::Certificate(_)
                        | AdoptionError::OwnLog { .. }
                        | AdoptionError::NotAFork { .. }
                ) {
                    self.forget_adoption(certificate);
                }
                if let AdoptionError::BelowFinal { .. } = e {
                    self.block_adoption(log, &e.to_string());
                }
                return Err(AdoptError::Offer(Box::new(e)));
            }
        };
        let held = inner.store.log_len(log);
        assert_eq!(
            held,
            state.ledger.log_len(log),
            "the committer was drained: the store holds what the ledger applied"
        );
        let skipped = (suffix.common - from) as usize;
        let certified: Vec<(SignedEntry, SignatureCheck)> = suffix
            .entries
            .iter()
            .cloned()
            .zip(verdicts.into_iter().skip(skipped))
            .map(|(e, verified)| {
                let check = if verified {
                    SignatureCheck::AlreadyVerified
                } else {
                    SignatureCheck::Verify
                };
                (e, check)
            })
            .collect();
        if suffix.common == held {
            // Nothing to take back: the replica was only behind (a node that proved the
            // author forked checks later certificates of its log this way). The certified
            // entries go in like pulled ones.
            let (to_store, equivocations) = self.judge_replicated(&mut state, certified);
            let applied = to_store.len();
            self.store_replicated(state, commit, to_store, equivocations)
                .await?;
            self.forget_adoption(certificate);
            return Ok(Adopted {
                log,
                held,
                common: held,
                size: certificate.checkpoint.size,
                dependents: Vec::new(),
                applied,
                rebuild_ms: 0,
            });
        }

        // 2. and 3., off the runtime: the evidence (the replica's entry and the certified one
        // at the first divergence, made durable by the truncation's flush below), and the state
        // without the dropped entries, to see what else depended on them.
        let started = Instant::now();
        let common = suffix.common;
        let certified_first = suffix.entries.first().cloned();
        let proven = state.fraud_proofs.contains_key(&(log, Seq(common)));
        let (store, epochs) = (inner.store.clone(), state.ledger.epochs().clone());
        let (proof, rebuilt) = tokio::task::spawn_blocking(move || {
            let mut proof = None;
            if !proven
                && let Some(certified) = certified_first
                && let Some(ours) = store.entry(log, common)?
            {
                let pair = FraudProof::new(ours, certified);
                if pair.verify(&epochs).is_ok() {
                    store.put_fraud_proof(log, common, &pair.encode())?;
                    proof = Some(pair);
                }
            }
            let limits = HashMap::from([(log, common)]);
            rebuild(&store, epochs, me, &limits).map(|rebuilt| (proof, rebuilt))
        })
        .await
        .expect("rebuilding does not panic")?;
        let rebuild_ms = started.elapsed().as_millis() as u64;
        if let Some(proof) = proof {
            inner.counters.equivocations.fetch_add(1, Ordering::Relaxed);
            state.fraud_proofs.insert((log, Seq(common)), proof);
        }
        let mut cuts = Vec::new();
        for (stored_log, stored) in inner.store.logs() {
            let kept = rebuilt.ledger.log_len(stored_log);
            if kept < stored {
                cuts.push((stored_log, kept, stored));
            }
        }
        for &(dependent, kept, _) in &cuts {
            let refusal = if dependent == me {
                Some(AdoptError::OwnLogDepends { log, me, seq: kept })
            } else if kept < state.final_size(dependent) {
                Some(AdoptError::DependentFinal {
                    log,
                    dependent,
                    kept,
                    final_size: state.final_size(dependent),
                })
            } else {
                None
            };
            if let Some(refusal) = refusal {
                tracing::error!(log = %log, rule = refusal.name(),
                    "NOT moving to the certified fork of {log}: {refusal}");
                self.block_adoption(log, &refusal.to_string());
                return Err(refusal);
            }
        }

        // 4. Take the dropped entries back, durably and at once, then the certified ones in.
        let truncation: Vec<(BureauCode, u64)> =
            cuts.iter().map(|&(l, kept, _)| (l, kept)).collect();
        inner.store.truncate_logs(&truncation).await?;
        let waiting = state.buffer.take_all();
        let State {
            ledger,
            trees,
            next_household,
            person_entries,
            ..
        } = rebuilt;
        state.ledger = ledger;
        state.trees = trees;
        state.next_household = next_household;
        state.person_entries = person_entries;
        let (to_store, equivocations) =
            self.judge_replicated(&mut state, certified.into_iter().chain(waiting));
        let applied = to_store.len();
        self.store_replicated(state, commit, to_store, equivocations)
            .await?;
        let dropped: u64 = cuts.iter().map(|&(_, kept, stored)| stored - kept).sum();
        inner.counters.forks_adopted.fetch_add(1, Ordering::Relaxed);
        inner
            .counters
            .fork_entries_dropped
            .fetch_add(dropped, Ordering::Relaxed);
        self.forget_adoption(certificate);
        let dependents = cuts
            .into_iter()
            .filter(|&(l, _, _)| l != log)
            .collect::<Vec<_>>();
        tracing::warn!(
            log = %log, held, common, size = certificate.checkpoint.size,
            dropped, applied, rebuild_ms,
            "moved the replica of {log} to its certified fork: kept {common} of {held} entries (fraud proof kept), other logs truncated: {dependents:?}"
        );
        Ok(Adopted {
            log,
            held,
            common,
            size: certificate.checkpoint.size,
            dependents,
            applied,
            rebuild_ms,
        })
    }

    /// Takes a configuration update in: judges it against the latest epoch (its administrators'
    /// signatures, the chain, every change), stores it durably, then judges everything by it.
    /// A cut (revoked key, retired bureau) refuses entries this node may already hold: the state
    /// is rebuilt from the store under the new configuration, and the logs are truncated after
    /// the last entry that still applies (the refused entries are kept as evidence,
    /// `Store::put_revoked`). Entries that waited for the epoch are judged. Then the network and
    /// the witness follow the new membership ([`Service::watch_epochs`]).
    ///
    /// Crash safety: the update is durable before anything is judged by it; a crash before the
    /// truncation is finished by the next start's replay, which judges by the stored updates.
    pub async fn apply_config(
        &self,
        update: SignedUpdate,
    ) -> Result<ConfigApplied, ConfigApplyError> {
        let inner = &self.inner;
        let epoch = update.update.epoch;
        let drain = inner.committer.reserve().await?;
        let commit = inner.committer.reserve().await?;
        let mut state = inner.state.lock().await;
        if epoch > 0
            && let Some(held) = state.ledger.epochs().get(epoch)
            && held.hash == update.hash()
        {
            return Ok(ConfigApplied {
                epoch,
                new: false,
                truncated: Vec::new(),
                released: 0,
            });
        }
        state
            .ledger
            .epochs()
            .check(&update)
            .map_err(ConfigApplyError::Refused)?;
        inner.store.put_config(epoch, &update.encode()).await?;
        // Whatever was applied before is durable before anything is taken back.
        drain.submit(Vec::new()).await?;
        state
            .ledger
            .push_config(update)
            .expect("checked against this very epoch under the lock");
        let mut truncated = Vec::new();
        if !state.ledger.cut_positions().is_empty() {
            let (store, epochs, me) =
                (inner.store.clone(), state.ledger.epochs().clone(), inner.me);
            let (rebuilt, truncation) = tokio::task::spawn_blocking(
                move || -> Result<(State, Vec<Truncated>), StoreError> {
                    let rebuilt = rebuild(&store, epochs, me, &HashMap::new())?;
                    let truncated = truncate_after_cuts(&store, &rebuilt)?;
                    Ok((rebuilt, truncated))
                },
            )
            .await
            .expect("rebuilding does not panic")?;
            let State {
                ledger,
                trees,
                next_household,
                person_entries,
                ..
            } = rebuilt;
            state.ledger = ledger;
            state.trees = trees;
            state.next_household = next_household;
            state.person_entries = person_entries;
            cap_final_sizes(&mut state);
            tracing::warn!(epoch, truncated = ?truncation,
                "configuration epoch {epoch} cut logs: entries it refuses were dropped (kept as evidence)");
            truncated = truncation;
        }
        cap_handovers(&inner.store, &mut state)?;
        let waiting = state.buffer.take_all();
        let (to_store, equivocations) = self.judge_replicated(&mut state, waiting);
        let released = to_store.len();
        inner.epochs.send_replace(state.ledger.epochs_arc());
        tracing::info!(epoch, released, "configuration epoch {epoch} in force");
        self.store_replicated(state, commit, to_store, equivocations)
            .await?;
        Ok(ConfigApplied {
            epoch,
            new: true,
            truncated,
            released,
        })
    }

    /// Queues replicated entries just applied in the reserved `commit` slot, releases the state,
    /// proves the equivocations found, and returns once the entries are durable; then counts
    /// them and wakes the witness.
    async fn store_replicated(
        &self,
        state: MutexGuard<'_, State>,
        commit: crate::store::CommitSlot<'_>,
        to_store: Vec<SignedEntry>,
        equivocations: Vec<(EntryRef, SignedEntry)>,
    ) -> Result<(), StoreError> {
        let count = to_store.len() as u64;
        let receipt = (count > 0).then(|| commit.submit(to_store));
        let membership = (!equivocations.is_empty()).then(|| state.ledger.epochs_arc());
        drop(state);
        if let Some(membership) = membership {
            self.record_equivocations(membership, equivocations).await;
        }
        let Some(receipt) = receipt else {
            return Ok(());
        };
        receipt.await?;
        self.inner
            .counters
            .entries_replicated
            .fetch_add(count, Ordering::Relaxed);
        self.inner.replicated.notify_one();
        Ok(())
    }

    fn block_adoption(&self, log: BureauCode, why: &str) {
        let mut adoptions = self.lock_adoptions();
        adoptions.wanted.remove(&log);
        adoptions.blocked.insert(log, why.to_string());
    }

    /// Lets [`Service::obtain_claims`] ask other bureaus' arbiters, through `sync`.
    pub fn set_claimer(&self, claimer: mpsc::Sender<ClaimAsk>) {
        let _ = self.inner.claimer.set(claimer);
    }

    /// As the persons' arbiter, grants `claimant` a claim on each person (partial: one answer
    /// per person, in order). A claim already granted to the same claimant and not yet
    /// consumed is given again instead of a new one, so a claimant may always ask again; any
    /// other conflict is the rulebook's to refuse (`person_claimed`, `person_already_registered`,
    /// `not_arbiter`, ...). Returns after the new claims are durable.
    pub async fn grant_claims(
        &self,
        claimant: BureauCode,
        persons: &[PersonTag],
    ) -> Vec<ClaimAnswer> {
        let mut answers: Vec<Option<ClaimAnswer>> = vec![None; persons.len()];
        let mut existing: Vec<(usize, EntryRef)> = Vec::new();
        let mut asked: Vec<usize> = Vec::new();
        let result = self
            .write(|s| {
                let mut bodies = Vec::new();
                for (i, person) in persons.iter().enumerate() {
                    let after = s.ledger.claim_after(person);
                    if let Some(c) = s.ledger.claim_on(person, after)
                        && c.claimant == claimant
                        && c.consumed_by.is_none()
                    {
                        existing.push((i, c.reference));
                        continue;
                    }
                    asked.push(i);
                    bodies.push(Body::Claim {
                        person: *person,
                        claimant,
                        after,
                    });
                }
                Ok(bodies)
            })
            .await;
        let refused = |e: &WriteError| ClaimAnswer::Refused {
            error: e.name().to_string(),
            message: e.to_string(),
        };
        match result {
            Ok(results) => {
                for (i, r) in asked.into_iter().zip(results) {
                    answers[i] = Some(match r {
                        Ok(w) => ClaimAnswer::Granted(w.entry.encode()),
                        Err(e) => refused(&e),
                    });
                }
            }
            Err(e) => {
                for i in asked {
                    answers[i] = Some(refused(&e));
                }
            }
        }
        for (i, claim) in existing {
            let store = self.inner.store.clone();
            let read =
                tokio::task::spawn_blocking(move || store.entry(claim.author, claim.seq.0)).await;
            answers[i] = Some(match read {
                Ok(Ok(Some(entry))) if entry.reference() == claim => {
                    ClaimAnswer::Granted(entry.encode())
                }
                // Applied but not flushed yet: the claimant asks again.
                _ => ClaimAnswer::Refused {
                    error: "claim_pending".into(),
                    message: format!("claim {claim} is being written; retry shortly"),
                },
            });
        }
        answers
            .into_iter()
            .map(|a| a.expect("every person answered"))
            .collect()
    }

    /// Gets this bureau a final claim on each person (DESIGN: nobody registered twice): asks
    /// each person's arbiter (itself, or another bureau over the network), takes in the granted
    /// claims, and waits until each is final, at most until `wait` has passed. One result per
    /// person, in order; a claim this bureau already holds and has not consumed is reused, and
    /// waited for like a new one.
    pub async fn obtain_claims(
        &self,
        persons: &[PersonTag],
        wait: std::time::Duration,
    ) -> Vec<Result<EntryRef, WriteError>> {
        let deadline = tokio::time::Instant::now() + wait;
        let me = self.inner.me;
        // A bureau that cannot sign (retired, or its new key not installed) asks nobody.
        if self.can_sign().await.is_err() {
            let epochs = self.epochs();
            return persons
                .iter()
                .map(|_| Err(self.cannot_sign(&epochs)))
                .collect();
        }
        let mut out: Vec<Option<Result<EntryRef, WriteError>>> =
            (0..persons.len()).map(|_| None).collect();
        let mut by_arbiter: std::collections::BTreeMap<BureauCode, Vec<usize>> = Default::default();
        // Claims to wait for: those granted below, and those this bureau already holds (kept
        // from an attempt refused as not final, they may still not be final).
        let mut granted: Vec<(usize, EntryRef)> = Vec::new();
        {
            let state = self.state().await;
            for (i, person) in persons.iter().enumerate() {
                let after = state.ledger.claim_after(person);
                if let Some(c) = state.ledger.claim_on(person, after)
                    && c.claimant == me
                    && c.consumed_by.is_none()
                {
                    granted.push((i, c.reference));
                    continue;
                }
                let arbiter = state.ledger.epochs().latest().arbiter(person);
                by_arbiter.entry(arbiter).or_default().push(i);
            }
        }
        // Every arbiter at once (a bulk import asks many), each in requests of bounded size.
        let asks = by_arbiter.into_iter().flat_map(|(arbiter, indices)| {
            indices
                .chunks(CLAIMS_PER_REQUEST_MAX)
                .map(|chunk| (arbiter, chunk.to_vec()))
                .collect::<Vec<_>>()
        });
        let answered = futures::future::join_all(asks.map(|(arbiter, indices)| async move {
            let asked: Vec<PersonTag> = indices.iter().map(|&i| persons[i]).collect();
            let answers = if arbiter == me {
                Ok(self.grant_claims(me, &asked).await)
            } else {
                self.ask_arbiter(arbiter, asked).await
            };
            (arbiter, indices, answers)
        }))
        .await;
        let mut granted_raw = Vec::new();
        for (arbiter, indices, answers) in answered {
            let answers = match answers {
                Ok(a) if a.len() == indices.len() => a,
                Ok(a) => {
                    let reason = format!("it answered {} of {} persons", a.len(), indices.len());
                    for i in indices {
                        out[i] = Some(Err(WriteError::ArbiterUnreachable {
                            arbiter,
                            reason: reason.clone(),
                        }));
                    }
                    continue;
                }
                Err(reason) => {
                    for i in indices {
                        out[i] = Some(Err(WriteError::ArbiterUnreachable {
                            arbiter,
                            reason: reason.clone(),
                        }));
                    }
                    continue;
                }
            };
            for (i, answer) in indices.into_iter().zip(answers) {
                match answer {
                    ClaimAnswer::Granted(raw) => match SignedEntry::decode(&raw) {
                        Ok(entry)
                            if entry.entry().author == arbiter
                                && matches!(
                                    entry.entry().body,
                                    Body::Claim { person, claimant, .. }
                                        if person == persons[i] && claimant == me
                                ) =>
                        {
                            granted.push((i, entry.reference()));
                            if arbiter != me {
                                granted_raw.push(raw);
                            }
                        }
                        _ => {
                            out[i] = Some(Err(WriteError::ArbiterUnreachable {
                                arbiter,
                                reason: "it answered with an entry that is not the claim asked for"
                                    .into(),
                            }));
                        }
                    },
                    ClaimAnswer::Refused { error, message } => {
                        out[i] = Some(Err(WriteError::ClaimRefused { error, message }));
                    }
                }
            }
        }
        if !granted_raw.is_empty() {
            // Through the rulebook like any replicated entry; a storage failure leaves the
            // claims unapplied, and the wait below reports them not final.
            if let Err(e) = self.ingest(granted_raw).await {
                tracing::error!("storing granted claims failed: {e}");
            }
        }
        let finals = futures::future::join_all(granted.iter().map(|(_, claim)| {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            self.wait_final(claim, left)
        }))
        .await;
        for ((i, claim), is_final) in granted.into_iter().zip(finals) {
            out[i] = Some(if is_final {
                Ok(claim)
            } else {
                Err(WriteError::ClaimNotFinal(
                    claim,
                    self.finality_status(claim.author).await.map(Box::new),
                ))
            });
        }
        out.into_iter()
            .map(|r| r.expect("every person has a result"))
            .collect()
    }

    /// Asks a remote arbiter for claims, through `sync`.
    async fn ask_arbiter(
        &self,
        arbiter: BureauCode,
        persons: Vec<PersonTag>,
    ) -> Result<Vec<ClaimAnswer>, String> {
        let Some(claimer) = self.inner.claimer.get() else {
            return Err("this node has no network".into());
        };
        let (done, answer) = tokio::sync::oneshot::channel();
        claimer
            .send(ClaimAsk {
                arbiter,
                persons,
                done,
            })
            .await
            .map_err(|_| "the network has stopped".to_string())?;
        answer
            .await
            .map_err(|_| "the network has stopped".to_string())?
    }

    /// Resolves a reference given as `CODE:SEQ:HASH` or the short `CODE:SEQ`.
    pub fn resolve(&self, state: &State, text: &str) -> Result<EntryRef, WriteError> {
        resolve_ref(&state.ledger, text)
    }

    /// Allocates a new household id of this bureau. Never wraps: past `HOUSEHOLD_ID_MAX` the
    /// numbers it hands out are refused by the rulebook (`household_out_of_range`), and a
    /// refused write gives its numbers back (`write_inner`).
    pub fn new_household(state: &mut State) -> HouseholdId {
        let id = HouseholdId(state.next_household);
        state.next_household = state.next_household.saturating_add(1);
        id
    }
}

/// Resolves `CODE:SEQ:HASH` (checked against the ledger) or `CODE:SEQ`.
pub fn resolve_ref(ledger: &Ledger, text: &str) -> Result<EntryRef, WriteError> {
    let text = text.trim();
    if let Ok(full) = text.parse::<EntryRef>() {
        return match ledger.reference_at(full.author, full.seq) {
            Some(found) if found == full => Ok(full),
            Some(found) => Err(WriteError::bad(
                "reference_hash_mismatch",
                format!(
                    "{text}: the entry at {}:{} has hash {}",
                    full.author, full.seq, found.hash
                ),
            )),
            None => Err(WriteError::bad(
                "unknown_reference",
                format!("no entry {text} on this node"),
            )),
        };
    }
    let mut parts = text.split(':');
    let (Some(a), Some(q), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(WriteError::bad(
            "bad_reference",
            format!(
                "{text:?} is not a reference: expected CODE:SEQ or CODE:SEQ:HASH (e.g. 330502:7)"
            ),
        ));
    };
    let author: BureauCode = a
        .parse()
        .map_err(|e| WriteError::bad("bad_reference", format!("{e}")))?;
    let seq: u64 = q
        .parse()
        .map_err(|_| WriteError::bad("bad_reference", format!("{q:?} is not a sequence number")))?;
    ledger.reference_at(author, Seq(seq)).ok_or_else(|| {
        WriteError::bad(
            "unknown_reference",
            format!("no entry {author}:{seq} on this node"),
        )
    })
}

/// Adds an applied entry to its log's Merkle tree and to the person index.
fn note_applied(
    trees: &mut HashMap<BureauCode, Tree>,
    person_entries: &mut HashMap<PersonTag, Vec<(BureauCode, u64)>>,
    entry: &SignedEntry,
) {
    let e = entry.entry();
    trees.entry(e.author).or_default().push(entry.hash().0);
    for person in crate::store::persons_named(&e.body) {
        person_entries
            .entry(person)
            .or_default()
            .push((e.author, e.seq.0));
    }
}

/// Rebuilds the state by replaying the store through the rulebook (signatures were verified
/// when the entries were first accepted, and the store's integrity is checked on open).
fn replay(store: &Store, epochs: Epochs, me: BureauCode) -> Result<State, StoreError> {
    let started = Instant::now();
    let mut state = rebuild(store, epochs, me, &HashMap::new())?;
    // A crash between storing an update that cuts a log and the truncation it calls for (see
    // `Service::apply_config`): finish the truncation now.
    let truncated = truncate_after_cuts(store, &state)?;
    if !truncated.is_empty() {
        tracing::warn!(
            ?truncated,
            "finished the truncation a configuration cut calls for"
        );
        // What waited for the dropped entries is gone with them.
        state.buffer = CausalBuffer::for_history();
    }
    if let Some((position, entry)) = state.buffer.waiting().next() {
        return Err(StoreError::Damaged {
            path: store.path().to_path_buf(),
            log: entry.entry().author,
            seq: entry.entry().seq.0,
            reason: format!(
                "stored entry waits for {}:{} which is not stored",
                position.0, position.1
            ),
        });
    }
    // From here on the buffer takes entries from peers: bounded.
    state.buffer = CausalBuffer::new();
    load_final_sizes(store, &mut state)?;
    cap_final_sizes(&mut state);
    cap_handovers(store, &mut state)?;
    for (_, _, raw) in store.fraud_proofs()? {
        if let Ok(p) = FraudProof::decode(&raw) {
            state.fraud_proofs.insert((p.author(), p.seq()), p);
        }
    }
    let count = state.ledger.entries_applied();
    if count > 0 {
        tracing::info!(
            entries = count,
            ms = started.elapsed().as_millis() as u64,
            "replayed the store"
        );
    }
    Ok(state)
}

/// The ledger, Merkle trees, person index and household counter that the stored entries make,
/// each log read up to its length in `limits` if it has one (all of it if not). Entries that
/// wait for something not stored stay in the (unbounded) buffer; fraud proofs, final sizes and
/// the operators' lists are left empty for the caller.
///
/// Entries a configuration cut refuses (`signed_after_cut`) are not damage: the caller truncates
/// the store after them ([`truncate_after_cuts`]).
fn rebuild(
    store: &Store,
    epochs: Epochs,
    me: BureauCode,
    limits: &HashMap<BureauCode, u64>,
) -> Result<State, StoreError> {
    let mut state = State {
        ledger: Ledger::with_epochs(epochs),
        // The store holds complete logs: nothing may be dropped while they are replayed.
        buffer: CausalBuffer::for_history(),
        trees: HashMap::new(),
        next_household: 1,
        write_time_ms: 0,
        fraud_proofs: HashMap::new(),
        recent_refusals: Default::default(),
        peer_lengths: HashMap::new(),
        final_sizes: HashMap::new(),
        person_entries: HashMap::new(),
    };
    for (log, len) in store.logs() {
        let len = limits.get(&log).copied().unwrap_or(len);
        for entry in store.iter_log_prefix(log, len) {
            let entry = entry?;
            let State {
                ledger,
                buffer,
                trees,
                next_household,
                person_entries,
                ..
            } = &mut state;
            for j in buffer.offer(ledger, entry, SignatureCheck::AlreadyVerified) {
                match j.result {
                    Ok(effects) => {
                        note_applied(trees, person_entries, &j.entry);
                        if effects.entry.author == me {
                            note_household(next_household, j.entry.entry());
                        }
                    }
                    Err(Violation::SignedAfterCut { .. }) => {}
                    Err(v) => {
                        return Err(StoreError::Damaged {
                            path: store.path().to_path_buf(),
                            log: v.entry().author,
                            seq: v.entry().seq.0,
                            reason: format!(
                                "stored entry does not pass the rulebook on replay: {v}"
                            ),
                        });
                    }
                }
            }
        }
    }
    Ok(state)
}

/// The configuration log: the genesis epochs and every update the store holds, in order.
pub(crate) fn load_config(store: &Store, mut epochs: Epochs) -> Result<Epochs, StoreError> {
    for (epoch, raw) in store.config_updates()? {
        let damaged = |reason: String| StoreError::Damaged {
            path: store.path().to_path_buf(),
            log: hukou_protocol::types::CONFIG_LOG,
            seq: u64::from(epoch),
            reason,
        };
        let update = SignedUpdate::decode(&raw)
            .map_err(|e| damaged(format!("stored configuration update does not decode: {e}")))?;
        epochs
            .push(update)
            .map_err(|e| damaged(format!("stored configuration update is refused: {e}")))?;
    }
    Ok(epochs)
}

/// Truncates, durably, every log the store holds further than `rebuilt` (a state rebuilt under
/// configuration cuts) applied: the cut logs, and whatever built on their dropped entries. The
/// dropped entries of the cut logs are kept as evidence first ([`keep_revoked`]); dependents are
/// only dropped. Returns `(log, kept, held before)` for each log truncated. Blocking.
fn truncate_after_cuts(store: &Store, rebuilt: &State) -> Result<Vec<Truncated>, StoreError> {
    let mut truncated: Vec<Truncated> = store
        .logs()
        .into_iter()
        .filter_map(|(log, held)| {
            let kept = rebuilt.ledger.log_len(log);
            (kept < held).then_some((log, kept, held))
        })
        .collect();
    if truncated.is_empty() {
        return Ok(truncated);
    }
    truncated.sort();
    let cut_logs: Vec<BureauCode> = rebuilt.ledger.epochs().all_cuts().map(|c| c.log).collect();
    let mut evidence = Vec::new();
    for &(log, kept, held) in truncated.iter().filter(|t| cut_logs.contains(&t.0)) {
        for seq in kept..held {
            if let Some(e) = store.entry(log, seq)? {
                evidence.push(e);
            }
        }
    }
    keep_revoked(store, &evidence)?;
    let cuts: Vec<(BureauCode, u64)> = truncated.iter().map(|&(l, kept, _)| (l, kept)).collect();
    store.truncate_for_cuts(&cuts)?;
    Ok(truncated)
}

/// Keeps entries a cut refused as evidence (`Store::put_revoked`), at most
/// [`REVOKED_KEPT_PER_LOG_MAX`] per log. Not flushed.
fn keep_revoked(store: &Store, entries: &[SignedEntry]) -> Result<(), StoreError> {
    for e in entries {
        let (log, seq) = (e.entry().author, e.entry().seq.0);
        if store.revoked_count(log) < REVOKED_KEPT_PER_LOG_MAX {
            store.put_revoked(log, seq, &e.encode())?;
        }
    }
    Ok(())
}

/// Most entries a cut refused that a node keeps per log as evidence: enough to show an auditor
/// what a stolen key signed, bounded so a thief cannot fill the disk.
pub const REVOKED_KEPT_PER_LOG_MAX: usize = 1_000;

/// A certificate above a log's length after a cut certified entries the cut refused: what is
/// final of a cut log is at most what it still holds.
fn cap_final_sizes(state: &mut State) {
    let cut_logs: Vec<BureauCode> = state.ledger.epochs().all_cuts().map(|c| c.log).collect();
    for log in cut_logs {
        let len = state.ledger.log_len(log);
        if let Some(size) = state.final_sizes.get_mut(&log)
            && *size > len
        {
            *size = len;
        }
    }
}

/// A log whose witness committee was seated anew after its latest stored certificate's epoch
/// is final only up to the new committee's anchor (a certificate of the committee before it,
/// verified when the update was judged); a certificate of that earlier committee above the
/// anchor counts no more (`certificate_beyond_handover`) until the new committee certifies.
fn cap_handovers(store: &Store, state: &mut State) -> Result<(), StoreError> {
    let epochs = state.ledger.epochs().clone();
    let logs: Vec<(BureauCode, u64)> = state.final_sizes.iter().map(|(l, s)| (*l, *s)).collect();
    for (log, size) in logs {
        let Some((stored, raw)) = store.latest_certificate(log)? else {
            continue;
        };
        if stored != size {
            continue; // final at a cut below its certificate, or raised since
        }
        let Ok(certificate) = Certificate::decode(&raw) else {
            continue;
        };
        if let Some((anchor, _)) = epochs.handover_cap(log, certificate.checkpoint.epoch)
            && size > anchor
        {
            state.final_sizes.insert(log, anchor);
        }
    }
    Ok(())
}

/// Sets each log's final size from its latest stored certificate. Certificates were verified,
/// and checked against this node's own tree, before they were stored.
fn load_final_sizes(store: &Store, state: &mut State) -> Result<(), StoreError> {
    let mut members: Vec<BureauCode> = state
        .ledger
        .epochs()
        .all()
        .flat_map(|e| e.membership.members().map(|m| m.code))
        .collect();
    members.sort();
    members.dedup();
    for log in members {
        let Some((size, raw)) = store.latest_certificate(log)? else {
            continue;
        };
        match Certificate::decode(&raw) {
            Ok(certificate) if certificate.checkpoint.size == size => {
                state.note_final(log, size);
            }
            Ok(_) => {
                return Err(StoreError::Damaged {
                    path: store.path().to_path_buf(),
                    log,
                    seq: size,
                    reason: "stored certificate is filed under another size".into(),
                });
            }
            Err(e) => {
                return Err(StoreError::Damaged {
                    path: store.path().to_path_buf(),
                    log,
                    seq: size,
                    reason: format!("stored certificate does not decode: {e}"),
                });
            }
        }
    }
    Ok(())
}

fn note_household(next: &mut u64, entry: &Entry) {
    let placement = match &entry.body {
        Body::Enrol { placement, .. }
        | Body::Birth { placement, .. }
        | Body::Registration { placement, .. } => placement,
        _ => return,
    };
    let after = placement
        .household
        .0
        .checked_add(1)
        .expect("the rulebook bounds household numbers by HOUSEHOLD_ID_MAX < u64::MAX");
    *next = (*next).max(after);
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ed25519_dalek::SigningKey;
    use hukou_protocol::{Category, Digest, Member};

    use super::*;
    use crate::store::COMMIT_QUEUE_REQUESTS_MAX;

    const A: u32 = 310104;
    const B: u32 = 330502;

    fn key(code: u32) -> SigningKey {
        SigningKey::from_bytes(&[(code % 251) as u8; 32])
    }

    fn membership() -> Membership {
        let members = [A, B].map(|code| Member {
            code: BureauCode::new(code).expect("valid"),
            name: format!("bureau {code}"),
            key: key(code).verifying_key(),
        });
        Membership::new("service-test", members, 2).expect("valid membership")
    }

    /// A permit by `author` for person `n`, the other member its origin.
    fn permit(author: u32, n: u8) -> Body {
        Body::Permit {
            person: PersonTag([n; 32]),
            origin: BureauCode::new(if author == A { B } else { A }).expect("valid"),
            category: Category::NAMED[0],
            valid_until_ms: now_ms() + 86_400_000,
            materials: Digest([7; 32]),
            corrects: None,
        }
    }

    /// Neither a clerk's write nor a replicated entry holds the state lock while it waits for
    /// room in a full commit queue: the state stays readable, and both go through once there
    /// is room, in order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_state_lock_is_free_while_writes_wait_for_the_committer() {
        let dir = tempfile::tempdir().expect("temp dir");
        let me = BureauCode::new(A).expect("valid");
        let store = Store::open(&dir.path().join("db"), me, membership().network()).expect("store");
        let (committer, _task) = Committer::start(store.clone(), std::future::pending());
        let parts = Service::start(
            me,
            key(A),
            PersonKey::from_bytes([0x5a; 32]),
            hukou_protocol::config::Epochs::of_membership(membership()),
            store.clone(),
            committer.clone(),
            false,
        )
        .expect("service starts");
        let service = parts.service;

        // The commit queue full: every place in it taken.
        let mut held = Vec::new();
        for _ in 0..COMMIT_QUEUE_REQUESTS_MAX {
            held.push(committer.reserve().await.expect("room"));
        }
        let write = tokio::spawn({
            let service = service.clone();
            async move { service.write_one(|_| Ok(permit(A, 1))).await }
        });
        let replicated = Entry {
            network: membership().network(),
            epoch: 0,
            author: BureauCode::new(B).expect("valid"),
            seq: Seq(0),
            prev: EntryHash::ZERO,
            time_ms: now_ms(),
            body: permit(B, 2),
        }
        .sign(&key(B));
        let ingest = tokio::spawn({
            let service = service.clone();
            let raw = vec![replicated.encode()];
            async move { service.ingest(raw).await }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!write.is_finished() && !ingest.is_finished());
        // Before: the writer held the state lock while it waited for the queue.
        let state = tokio::time::timeout(Duration::from_secs(2), service.state())
            .await
            .expect("the state lock is free while the writes wait for the committer");
        assert_eq!(state.ledger.log_len(me), 0);
        drop(state);

        drop(held);
        let written = write.await.expect("task").expect("written");
        assert_eq!(written.entry.entry().seq, Seq(0));
        assert_eq!(ingest.await.expect("task"), Ok(1));
        assert_eq!(store.log_len(me), 1);
        assert_eq!(store.log_len(BureauCode::new(B).expect("valid")), 1);
    }

    /// An entry this node already holds is a duplicate before its signature is looked at:
    /// counted as one, and neither verified, refused nor stored again, even with a corrupted
    /// signature. Another entry at that position is still verified and judged by the rulebook.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_entry_already_held_is_a_duplicate_without_verifying_it_again() {
        let dir = tempfile::tempdir().expect("temp dir");
        let me = BureauCode::new(A).expect("valid");
        let b = BureauCode::new(B).expect("valid");
        let store = Store::open(&dir.path().join("db"), me, membership().network()).expect("store");
        let (committer, _task) = Committer::start(store.clone(), std::future::pending());
        let service = Service::start(
            me,
            key(A),
            PersonKey::from_bytes([0x5a; 32]),
            hukou_protocol::config::Epochs::of_membership(membership()),
            store.clone(),
            committer,
            false,
        )
        .expect("service starts")
        .service;
        let time_ms = now_ms();
        let entry_of = |body: Body| {
            Entry {
                network: membership().network(),
                epoch: 0,
                author: b,
                seq: Seq(0),
                prev: EntryHash::ZERO,
                time_ms,
                body,
            }
            .sign(&key(B))
        };
        let held = entry_of(permit(B, 2));
        assert_eq!(service.ingest(vec![held.encode()]).await, Ok(1));
        let counters = service.counters();
        let count = |c: &AtomicU64| c.load(Ordering::Relaxed);
        assert_eq!(count(&counters.entries_duplicate), 0);

        // The same entry, and a copy whose signature no longer verifies (the last byte of the
        // wire form is the signature's): both duplicates, neither refused.
        let mut forged = held.encode();
        *forged.last_mut().expect("not empty") ^= 1;
        assert_eq!(
            SignedEntry::decode(&forged).expect("decodes").reference(),
            held.reference()
        );
        assert_eq!(service.ingest(vec![held.encode(), forged]).await, Ok(0));
        assert_eq!(count(&counters.entries_duplicate), 2);
        assert_eq!(count(&counters.entries_refused), 0);
        assert!(service.state().await.recent_refusals.is_empty());
        assert_eq!(store.log_len(b), 1);

        // Another entry at the held position with a corrupted signature is verified, and
        // refused by the rulebook's first rule it breaks.
        let mut other = entry_of(permit(B, 3)).encode();
        *other.last_mut().expect("not empty") ^= 1;
        assert_eq!(service.ingest(vec![other]).await, Ok(0));
        assert_eq!(count(&counters.entries_duplicate), 2);
        assert_eq!(count(&counters.entries_refused), 1);
        let refusals: Vec<String> = service
            .state()
            .await
            .recent_refusals
            .iter()
            .map(|(_, rule, _)| rule.clone())
            .collect();
        assert_eq!(refusals, ["bad_signature"]);
        assert_eq!(store.log_len(b), 1);
        assert_eq!(
            service.state().await.ledger.reference_at(b, Seq(0)),
            Some(held.reference())
        );
    }
}
