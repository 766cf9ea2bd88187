//! Durable storage: one sled database per node, and the group committer that makes appends
//! durable before anyone is told they happened (DESIGN.md "Storage", principles 5 and 6).
//!
//! The store holds the node's own log and the replica of every other log, checkpoints,
//! certificates, the last checkpoint this node cosigned for each log, fraud proofs, an index of
//! each person's entries, and the node's identity (bureau, network, schema version). It stores
//! entries exactly as [`SignedEntry::encode`] writes them and never judges them: the rulebook
//! has done that before anything reaches [`Store::append`]. Checkpoints, certificates,
//! cosignatures and fraud proofs are opaque bytes; their owners encode them.
//!
//! # Layout
//!
//! One sled tree, [`TREE_NAME`], split into keyspaces by a one-byte prefix. Integers are
//! big-endian, so key order is numeric order and a log or a person is one prefix scan.
//!
//! | keyspace       | key                                       | value                        |
//! |----------------|-------------------------------------------|------------------------------|
//! | `L` logs       | `L` ‖ bureau u32 ‖ seq u64                | `SignedEntry::encode()`      |
//! | `C` checkpoints| `C` ‖ bureau u32 ‖ size u64               | opaque                       |
//! | `T` certificates | `T` ‖ bureau u32 ‖ size u64             | opaque                       |
//! | `W` cosigned   | `W` ‖ bureau u32                          | opaque: last cosigned checkpoint of that log |
//! | `F` fraud proofs | `F` ‖ bureau u32 ‖ seq u64              | opaque                       |
//! | `K` checkpoint forks | `K` ‖ bureau u32 ‖ size u64         | opaque: two signed checkpoints of that log and size with different roots |
//! | `M` meta       | `M` ‖ name                                | schema u32, bureau u32, network id |
//!
//! # Invariants
//!
//! 1. Every log is contiguous: seqs `0..len` are present and nothing else. [`Store::append`]
//!    refuses an entry whose seq is not the current length of its log, or whose `prev` is not
//!    the hash of the entry before it, so no bug elsewhere can write a gap, an overwrite or a
//!    broken chain.
//!    Logs only grow, with one exception: [`Store::truncate_logs`] takes back the end of
//!    *replica* logs (never the node's own) when the node moves from a losing fork of a log to
//!    the certified one, in one atomic batch that leaves each log contiguous.
//! 2. Every stored entry sits under the key of its own author and seq, on this node's network.
//! 3. (Keyspace `I`, a person index, was written by earlier versions and is ignored: the node
//!    keeps that index in memory, rebuilt on replay, since random-keyed rows cost a third of a
//!    transfer's CPU.)
//! 4. Readers see only durable entries: [`Store::log_len`], [`Store::entry`], [`Store::range`],
//!    [`Store::raw_range`], [`Store::logs`] and [`Store::iter_log`] stop at the length covered by the last completed flush. So the node never serves a peer an
//!    entry of its own log that a crash could take back, and after a crash it never signs a
//!    different entry at a position a peer has already seen (which would be equivocation, I3).
//!
//! # Crash safety
//!
//! *Atomicity.* An append writes its entries and their index rows as one `sled::Batch` on one
//! tree with `apply_batch`. In sled 0.34.7 a batch and a multi-tree transaction end the same way
//! (`pin_log` … `seal_batch`): a batch manifest in the log records the last LSN of the batch,
//! and recovery stops at a manifest whose batch is not wholly on disk, so a torn batch is never
//! half-recovered. Both take sled's global write lock, so no other write interleaves. We use the
//! single-tree batch because it is the path sled's own kill -9 test checks for all-or-nothing
//! recovery (`tests/test_crash_recovery.rs`, `test_crash_batches`); multi-tree transactions are
//! only checked there for integrity, not atomicity across trees, and their closures can be
//! retried on conflict. One tree also means any later combination (an entry with derived state,
//! a cosigned checkpoint with its check) can be made atomic the same way.
//!
//! *Durability.* [`Store::append`] does not flush. [`Store::flush`] (which the [`Committer`]
//! calls once per group, on the blocking thread that appended the group) and
//! [`Store::flush_async`] run sled's flush and then `fsync` the data file itself:
//! on Linux sled 0.34.7 ends a flush with `sync_file_range`, which survives the process dying but
//! neither flushes the drive's write cache nor persists metadata such as the file's new length,
//! so it does not survive a power cut. (sled writes a node larger than 128 KiB to an unsynced
//! blob file; our leaves split at 16 values of at most 4 KiB, so that never happens here.)
//!
//! *Detection.* [`Store::open`] scans every key of every log for gaps, decodes the last
//! [`TIP_ENTRIES_CHECKED`] entries of each log and checks their keys and `prev` links, and
//! reports damage as [`StoreError::Damaged`], never using it silently. [`Store::iter_log`], which
//! replays a log at start, checks every entry the same way, and [`Store::verify_full`] checks
//! every entry and every index row.

use std::collections::HashMap;
use std::fs::File;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hukou_protocol::limits::BATCH_ENTRIES_MAX;
use hukou_protocol::{Body, BureauCode, EntryHash, NetworkId, PersonTag, SignedEntry};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Version of the layout above. A store of another version is refused, never guessed at.
pub const SCHEMA_VERSION: u32 = 1;

/// Name of the one sled tree the store uses.
pub const TREE_NAME: &str = "ledger";

/// Entries at the end of each log that [`Store::open`] decodes and chain-checks. The tip is
/// where a crash or a bug would show; the rest is checked by replay and [`Store::verify_full`].
pub const TIP_ENTRIES_CHECKED: u64 = 64;

/// How long [`Store::open`] waits for sled's lock on the directory. A store just dropped in this
/// process keeps the lock for a moment while sled's background threads finish their last
/// write, so reopening in place waits briefly; a store held by a running node is refused.
pub const OPEN_LOCK_WAIT_MS: u64 = 2_000;

/// Most entries the [`Committer`] writes with one append and one flush. Large enough that a
/// flush (milliseconds) is shared by thousands of clerks' entries, small enough that one group
/// holds the write lock for milliseconds, not seconds.
pub const GROUP_ENTRIES_MAX: usize = 4096;

/// Most commit requests waiting for the [`Committer`]; beyond this, callers wait to enqueue.
pub const COMMIT_QUEUE_REQUESTS_MAX: usize = 1024;

// A pulled batch of entries always fits in one group.
const _: () = assert!(BATCH_ENTRIES_MAX <= GROUP_ENTRIES_MAX);

/// Keyspace prefixes (see the module doc).
mod keyspace {
    pub const LOG: u8 = b'L';
    pub const CHECKPOINT: u8 = b'C';
    pub const CERTIFICATE: u8 = b'T';
    pub const COSIGNED: u8 = b'W';
    pub const FRAUD_PROOF: u8 = b'F';
    pub const CHECKPOINT_FORK: u8 = b'K';
    pub const META: u8 = b'M';
    pub const CONFIG: u8 = b'G';
    pub const REVOKED: u8 = b'R';
}

/// Meta names the store itself keeps; [`Store::set_meta`] refuses them.
const META_SCHEMA: &str = "schema";
const META_BUREAU: &str = "bureau";
const META_NETWORK: &str = "network";
const META_RESERVED: [&str; 3] = [META_SCHEMA, META_BUREAU, META_NETWORK];

/// sled's data file inside the store directory, which [`Store::flush_async`] fsyncs.
const SLED_DATA_FILE: &str = "db";

/// Why the store could not do what was asked. Every variant names the store's path and the
/// fault; variants are never renamed or reused (see [`StoreError::name`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the store at {path}: {reason}")]
    OpenFailed { path: PathBuf, reason: String },
    #[error("the store at {path} belongs to bureau {found}, not to this node's bureau {expected}")]
    WrongBureau {
        path: PathBuf,
        found: BureauCode,
        expected: BureauCode,
    },
    #[error(
        "the store at {path} belongs to network {found}, not to this node's network {expected}"
    )]
    WrongNetwork {
        path: PathBuf,
        found: NetworkId,
        expected: NetworkId,
    },
    #[error("the store at {path} has schema version {found}; this build reads version {supported}")]
    WrongSchema {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("the store at {path} is not a hukou store or lost its metadata: {reason}")]
    NotAStore { path: PathBuf, reason: String },
    #[error("the store at {path} is damaged at log {log}, seq {seq}: {reason}")]
    Damaged {
        path: PathBuf,
        log: BureauCode,
        seq: u64,
        reason: String,
    },
    #[error("the store at {path} holds a malformed key {key}: {reason}")]
    BadKey {
        path: PathBuf,
        key: String,
        reason: String,
    },
    #[error("the store at {path} holds an undecodable {what} at key {key}: {reason}")]
    Decode {
        path: PathBuf,
        key: String,
        what: &'static str,
        reason: String,
    },
    #[error(
        "refused to append {log}:{seq} to the store at {path}: log {log} has {expected} entries, so the next must have seq {expected}"
    )]
    NotContiguous {
        path: PathBuf,
        log: BureauCode,
        seq: u64,
        expected: u64,
    },
    #[error(
        "refused to append {log}:{seq} to the store at {path}: its prev {found} is not {expected}, the hash of the entry before it"
    )]
    PrevMismatch {
        path: PathBuf,
        log: BureauCode,
        seq: u64,
        expected: EntryHash,
        found: EntryHash,
    },
    #[error(
        "refused to append {log}:{seq} to the store at {path}: it belongs to network {found}, not {expected}"
    )]
    ForeignNetwork {
        path: PathBuf,
        log: BureauCode,
        seq: u64,
        found: NetworkId,
        expected: NetworkId,
    },
    #[error(
        "refused to append to the store at {path} an entry by {author}, which is not a six-digit bureau code"
    )]
    InvalidAuthor { path: PathBuf, author: u32 },
    #[error("the store at {path} failed while {doing}: {reason}")]
    Io {
        path: PathBuf,
        doing: &'static str,
        reason: String,
    },
    #[error("the store at {path} refuses writes after an earlier failure: {cause}")]
    Failed { path: PathBuf, cause: String },
    #[error("the committer of the store at {path} has stopped")]
    CommitterStopped { path: PathBuf },
    #[error(
        "the last cosigned checkpoint of log {log} in the store at {path} is not the one expected"
    )]
    CosignedChanged { path: PathBuf, log: BureauCode },
}

impl StoreError {
    /// Stable snake_case name, for the API's `"error"` field and for logs.
    pub fn name(&self) -> &'static str {
        match self {
            StoreError::OpenFailed { .. } => "open_failed",
            StoreError::WrongBureau { .. } => "wrong_bureau",
            StoreError::WrongNetwork { .. } => "wrong_network",
            StoreError::WrongSchema { .. } => "wrong_schema",
            StoreError::NotAStore { .. } => "not_a_store",
            StoreError::Damaged { .. } => "damaged",
            StoreError::BadKey { .. } => "bad_key",
            StoreError::Decode { .. } => "decode",
            StoreError::NotContiguous { .. } => "not_contiguous",
            StoreError::PrevMismatch { .. } => "prev_mismatch",
            StoreError::ForeignNetwork { .. } => "foreign_network",
            StoreError::InvalidAuthor { .. } => "invalid_author",
            StoreError::Io { .. } => "io",
            StoreError::Failed { .. } => "failed",
            StoreError::CommitterStopped { .. } => "committer_stopped",
            StoreError::CosignedChanged { .. } => "cosigned_changed",
        }
    }

    /// Whether this is an append refused before anything was written: the store is unchanged
    /// and still usable.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            StoreError::NotContiguous { .. }
                | StoreError::PrevMismatch { .. }
                | StoreError::ForeignNetwork { .. }
                | StoreError::InvalidAuthor { .. }
        )
    }
}

/// The person an entry is about, if any (the rulebook's [`hukou_protocol::rules::person_of`]).
pub use hukou_protocol::rules::person_of;

/// Every person an entry names, each once: its subject ([`person_of`]) and a person it makes
/// head of a household. The person index has a row for each, so a person's history shows the
/// day they became head as well as their own moves.
pub fn persons_named(body: &Body) -> impl Iterator<Item = PersonTag> {
    let new_head = match body {
        Body::Deregistration { new_head, .. } | Body::Cancellation { new_head, .. } => *new_head,
        Body::HeadChange { new_head, .. } => Some(*new_head),
        _ => None,
    };
    let subject = person_of(body);
    subject
        .into_iter()
        .chain(new_head.filter(|head| Some(*head) != subject))
}

/// The key of entry `seq` of `log`: `L` ‖ bureau u32 BE ‖ seq u64 BE. Public so tests and
/// tools can reach a stored entry directly in the sled tree [`TREE_NAME`].
pub fn log_key(log: BureauCode, seq: u64) -> [u8; 13] {
    position_key(keyspace::LOG, log, seq)
}

/// `prefix` ‖ bureau u32 BE ‖ `number` u64 BE.
fn position_key(prefix: u8, log: BureauCode, number: u64) -> [u8; 13] {
    let mut key = [0u8; 13];
    key[0] = prefix;
    key[1..5].copy_from_slice(&log.get().to_be_bytes());
    key[5..].copy_from_slice(&number.to_be_bytes());
    key
}

/// `prefix` ‖ bureau u32 BE.
fn bureau_key(prefix: u8, log: BureauCode) -> [u8; 5] {
    let mut key = [0u8; 5];
    key[0] = prefix;
    key[1..].copy_from_slice(&log.get().to_be_bytes());
    key
}

/// `M` ‖ name.
fn meta_key(name: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + name.len());
    key.push(keyspace::META);
    key.extend_from_slice(name.as_bytes());
    key
}

/// Splits the last 12 bytes of a key into bureau and number; `None` unless the bureau is a
/// six-digit code.
fn parse_position(tail: &[u8]) -> Option<(BureauCode, u64)> {
    let (code, number) = tail.split_first_chunk::<4>()?;
    let number: [u8; 8] = number.try_into().ok()?;
    let log = BureauCode::new(u32::from_be_bytes(*code))?;
    Some((log, u64::from_be_bytes(number)))
}

/// What the store knows about one log without reading it.
#[derive(Clone, Copy, Debug)]
struct LogState {
    /// Entries written to sled (by [`Store::append`]), durable or not.
    appended: u64,
    /// Entries covered by a completed flush; readers see only these.
    durable: u64,
    /// Hash of the last appended entry, which the next entry's `prev` must equal.
    tip: EntryHash,
    /// How many times the log was truncated ([`Store::truncate_logs`]). A flush that began
    /// before a truncation must not mark the old, longer length durable.
    truncations: u64,
}

impl LogState {
    const EMPTY: LogState = LogState {
        appended: 0,
        durable: 0,
        tip: EntryHash::ZERO,
        truncations: 0,
    };
}

/// For each log: the appended length a flush covers, and the log's truncation count then.
type Covered = HashMap<BureauCode, (u64, u64)>;

/// For each log touched by an append: the seq its next entry must have, and the hash that
/// entry's `prev` must equal.
type Tips = HashMap<BureauCode, (u64, EntryHash)>;

/// What [`Store::verify_full`] checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    pub logs: usize,
    pub entries: u64,
}

/// The node's durable storage. Cheap to clone: clones share one database.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    /// The store's directory, named in every error.
    path: PathBuf,
    /// Kept so the database stays open as long as any clone of the store lives.
    db: sled::Db,
    /// The one tree holding every keyspace.
    tree: sled::Tree,
    /// Our own handle on sled's data file, only to `fsync` it (see "Durability").
    data_file: File,
    own: BureauCode,
    network: NetworkId,
    /// Per-log lengths and tips. A std `Mutex`: held for map lookups only, never across I/O or
    /// an `.await`.
    logs: Mutex<HashMap<BureauCode, LogState>>,
    /// Serialises appends, so the check of positions and the write that follows cannot be
    /// interleaved with another append. Held across the sled batch, never across an `.await`.
    append_lock: Mutex<()>,
    /// Set when a write or flush failed: sled's memory may then be ahead of its disk, so the
    /// store refuses every later write and flush, and the node must stop.
    failure: OnceLock<String>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .field("own", &self.inner.own)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Creates or opens the store in `dir` for bureau `own` on `network`.
    ///
    /// A new store records `own`, `network` and [`SCHEMA_VERSION`]; an existing one must match
    /// all three. Then every log's keys are checked for gaps and each log's last
    /// [`TIP_ENTRIES_CHECKED`] entries are decoded and chain-checked. Finally everything on disk
    /// is flushed and fsynced, so all that is visible after a crash is durable.
    pub fn open(dir: &Path, own: BureauCode, network: NetworkId) -> Result<Store, StoreError> {
        let path = dir.to_path_buf();
        let open_failed = |reason: String| StoreError::OpenFailed {
            path: path.clone(),
            reason,
        };
        let db = open_sled(dir).map_err(|e| open_failed(e.to_string()))?;
        let tree = db
            .open_tree(TREE_NAME)
            .map_err(|e| open_failed(e.to_string()))?;
        let data_file = File::open(dir.join(SLED_DATA_FILE)).map_err(|e| {
            open_failed(format!(
                "cannot open {} to fsync it: {e}",
                dir.join(SLED_DATA_FILE).display()
            ))
        })?;
        check_or_init_meta(&path, &tree, own, network)?;
        let lengths = scan_log_lengths(&path, &tree)?;
        let mut logs = HashMap::with_capacity(lengths.len());
        for (log, len) in lengths {
            let tip = check_tip(&path, &tree, network, log, len)?;
            logs.insert(
                log,
                LogState {
                    appended: len,
                    durable: len,
                    tip,
                    truncations: 0,
                },
            );
        }
        let store = Store {
            inner: Arc::new(Inner {
                path,
                db,
                tree,
                data_file,
                own,
                network,
                logs: Mutex::new(logs),
                append_lock: Mutex::new(()),
                failure: OnceLock::new(),
            }),
        };
        // What a crashed process wrote may still sit in the page cache; make it durable before
        // anyone reads it as durable.
        store.flush()?;
        Ok(store)
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The bureau this store belongs to.
    pub fn own(&self) -> BureauCode {
        self.inner.own
    }

    /// The network this store belongs to.
    pub fn network(&self) -> NetworkId {
        self.inner.network
    }

    // ---- entries: reads (durable only) ----

    /// Durable entries of `log` (0 for a log never seen).
    pub fn log_len(&self, log: BureauCode) -> u64 {
        self.state(log).durable
    }

    /// Entries of `log` written to sled, durable or not: the seq the next append must have.
    pub fn appended_len(&self, log: BureauCode) -> u64 {
        self.state(log).appended
    }

    /// Every log with at least one durable entry, and its durable length, by bureau code.
    pub fn logs(&self) -> Vec<(BureauCode, u64)> {
        let mut logs: Vec<(BureauCode, u64)> = self
            .lock_logs()
            .iter()
            .filter(|(_, state)| state.durable > 0)
            .map(|(log, state)| (*log, state.durable))
            .collect();
        logs.sort_unstable();
        logs
    }

    /// Entry `seq` of `log`, if durable.
    pub fn entry(&self, log: BureauCode, seq: u64) -> Result<Option<SignedEntry>, StoreError> {
        if seq >= self.log_len(log) {
            return Ok(None);
        }
        let value = self
            .inner
            .tree
            .get(log_key(log, seq))
            .map_err(|e| self.io("reading an entry", e))?
            .ok_or_else(|| self.damaged(log, seq, "the entry is missing".to_string()))?;
        check_entry(&self.inner.path, self.inner.network, log, seq, &value, None).map(Some)
    }

    /// Up to `entries_max` durable entries of `log` from `from_seq` on, each checked against its
    /// key and chained to the one before it.
    pub fn range(
        &self,
        log: BureauCode,
        from_seq: u64,
        entries_max: usize,
    ) -> Result<Vec<SignedEntry>, StoreError> {
        let end = self.range_end(log, from_seq, entries_max);
        let mut out = Vec::with_capacity(end.saturating_sub(from_seq) as usize);
        let mut prev = None;
        for row in self.rows(log, from_seq, end) {
            let (seq, value) = row?;
            let entry = check_entry(&self.inner.path, self.inner.network, log, seq, &value, prev)?;
            prev = Some(entry.hash());
            out.push(entry);
        }
        Ok(out)
    }

    /// Up to `entries_max` durable entries of `log` from `from_seq` on, as stored (the wire form),
    /// for serving peers without decoding and re-encoding. Only the keys are checked; peers
    /// verify what they receive.
    pub fn raw_range(
        &self,
        log: BureauCode,
        from_seq: u64,
        entries_max: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let end = self.range_end(log, from_seq, entries_max);
        self.rows(log, from_seq, end)
            .map(|row| row.map(|(_, value)| value.to_vec()))
            .collect()
    }

    /// Every durable entry of `log` in order, each checked against its key and chained to the
    /// one before it; for replaying the log at start. Yields one error and then stops.
    pub fn iter_log(&self, log: BureauCode) -> LogIter {
        LogIter::new(self.clone(), log, self.log_len(log))
    }

    /// As [`Store::iter_log`], the first `len` entries only (all if the log is shorter).
    pub fn iter_log_prefix(&self, log: BureauCode, len: u64) -> LogIter {
        LogIter::new(self.clone(), log, len.min(self.log_len(log)))
    }

    // ---- entries: writes ----

    /// Appends `entries` (of one log or several, in order) as one atomic batch. Refuses the whole call, writing nothing, if any entry is not exactly the
    /// next of its log ([`StoreError::NotContiguous`]), does not chain to the entry before it,
    /// is of another network or by an invalid bureau code. Does not flush: the entries become
    /// visible to readers after the next [`Store::flush_async`] or [`Store::flush`].
    pub fn append(&self, entries: &[SignedEntry]) -> Result<(), StoreError> {
        let _serial = self.inner.append_lock.lock().expect("append lock poisoned");
        self.check_usable()?;
        let verdict = self
            .check_positions([entries])
            .pop()
            .expect("one verdict per slice");
        let next = verdict?;
        let mut batch = sled::Batch::default();
        for signed in entries {
            let entry = signed.entry();
            let seq = entry.seq.0;
            batch.insert(&log_key(entry.author, seq)[..], signed.encode());
        }
        if let Err(e) = self.inner.tree.apply_batch(batch) {
            let error = self.io("writing entries", e);
            self.fail(&error);
            return Err(error);
        }
        let mut logs = self.lock_logs();
        for (log, (len, tip)) in next {
            let state = logs.entry(log).or_insert(LogState::EMPTY);
            assert!(len > state.appended, "append to {log} did not grow it");
            state.appended = len;
            state.tip = tip;
        }
        Ok(())
    }

    /// Takes back the entries of replica logs from the given lengths on (`cuts`: each a log and
    /// the length it keeps), as one atomic sled batch, and returns once that is durable: how a
    /// node moves from a losing fork of a log to the certified one
    /// (`Service::adopt_certified_fork`). A crash leaves every cut or none (see "Crash safety"),
    /// and either way each log is contiguous and chained. Readers see the shorter lengths from
    /// the moment the rows go.
    ///
    /// # Panics
    /// If a cut is of this node's own log (a node never takes back what it signed), would
    /// lengthen a log, or meets entries appended but not yet durable (the caller drains the
    /// [`Committer`] first and holds off new appends until this returns).
    pub async fn truncate_logs(&self, cuts: &[(BureauCode, u64)]) -> Result<(), StoreError> {
        self.check_usable()?;
        let (store, cuts) = (self.clone(), cuts.to_vec());
        // sled is called off the runtime's worker threads, as everywhere in the node.
        tokio::task::spawn_blocking(move || store.remove_log_ends(&cuts, false))
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))?;
        self.flush_async().await
    }

    /// Like [`Store::truncate_logs`], for the entries a configuration cut (a revoked key, a
    /// retired bureau) refuses and what depended on them: the own log may be among them (the
    /// administrators' cut overrides what this node signed with a key the network revoked).
    /// Blocking; flushed before it returns.
    pub fn truncate_for_cuts(&self, cuts: &[(BureauCode, u64)]) -> Result<(), StoreError> {
        self.check_usable()?;
        self.remove_log_ends(cuts, true)?;
        self.flush()
    }

    /// The writing half of [`Store::truncate_logs`]: the batch, not flushed.
    fn remove_log_ends(
        &self,
        cuts: &[(BureauCode, u64)],
        own_allowed: bool,
    ) -> Result<(), StoreError> {
        {
            let _serial = self.inner.append_lock.lock().expect("append lock poisoned");
            let mut batch = sled::Batch::default();
            let mut kept = Vec::with_capacity(cuts.len());
            for &(log, len) in cuts {
                assert!(
                    own_allowed || log != self.inner.own,
                    "a node never truncates its own log"
                );
                let state = self.state(log);
                assert!(
                    len <= state.appended,
                    "a cut of {log} to {len} would lengthen it"
                );
                assert_eq!(
                    state.appended, state.durable,
                    "truncating {log} while entries of it are being written"
                );
                for seq in len..state.appended {
                    batch.remove(&log_key(log, seq)[..]);
                }
                let tip = match len.checked_sub(1) {
                    None => EntryHash::ZERO,
                    Some(last) => self
                        .entry(log, last)?
                        .ok_or_else(|| self.damaged(log, last, "the entry is missing".into()))?
                        .hash(),
                };
                kept.push((log, len, tip));
            }
            {
                let mut logs = self.lock_logs();
                for &(log, len, tip) in &kept {
                    let state = logs.entry(log).or_insert(LogState::EMPTY);
                    state.appended = len;
                    state.durable = len;
                    state.tip = tip;
                    state.truncations += 1;
                }
            }
            if let Err(e) = self.inner.tree.apply_batch(batch) {
                let error = self.io("truncating logs", e);
                self.fail(&error);
                return Err(error);
            }
        }
        Ok(())
    }

    /// Checks, without writing, whether each slice of entries could be appended after the
    /// slices before it that pass. Returns for each slice either the lengths and tips its logs
    /// would have, or why it is refused. Used by [`Store::append`] for one slice and by the
    /// [`Committer`] to refuse one bad request without failing its whole group.
    fn check_positions<'a>(
        &self,
        slices: impl IntoIterator<Item = &'a [SignedEntry]>,
    ) -> Vec<Result<Tips, StoreError>> {
        let logs = self.lock_logs();
        // Next seq and required prev of each log touched by the slices accepted so far.
        let mut accepted = Tips::new();
        let mut verdicts = Vec::new();
        for entries in slices {
            let mut overlay = Tips::new();
            let verdict = entries.iter().try_for_each(|signed| {
                let entry = signed.entry();
                let log = entry.author;
                let seq = entry.seq.0;
                if !log.is_valid() {
                    return Err(StoreError::InvalidAuthor {
                        path: self.inner.path.clone(),
                        author: log.get(),
                    });
                }
                if entry.network != self.inner.network {
                    return Err(StoreError::ForeignNetwork {
                        path: self.inner.path.clone(),
                        log,
                        seq,
                        found: entry.network,
                        expected: self.inner.network,
                    });
                }
                let (expected_seq, expected_prev) = overlay
                    .get(&log)
                    .or_else(|| accepted.get(&log))
                    .copied()
                    .or_else(|| logs.get(&log).map(|state| (state.appended, state.tip)))
                    .unwrap_or((0, EntryHash::ZERO));
                if seq != expected_seq {
                    return Err(StoreError::NotContiguous {
                        path: self.inner.path.clone(),
                        log,
                        seq,
                        expected: expected_seq,
                    });
                }
                if entry.prev != expected_prev {
                    return Err(StoreError::PrevMismatch {
                        path: self.inner.path.clone(),
                        log,
                        seq,
                        expected: expected_prev,
                        found: entry.prev,
                    });
                }
                overlay.insert(log, (seq + 1, signed.hash()));
                Ok(())
            });
            verdicts.push(verdict.map(|()| {
                accepted.extend(overlay.iter().map(|(log, next)| (*log, *next)));
                overlay
            }));
        }
        verdicts
    }

    /// Makes everything appended so far durable: sled's flush, then an fsync of its data file.
    /// Readers see the entries covered once it returns. After a failure the store refuses every
    /// later write and flush ([`StoreError::Failed`]).
    pub async fn flush_async(&self) -> Result<(), StoreError> {
        self.check_usable()?;
        // Taken before the flush starts, so everything it names is covered by the flush.
        let covered = self.covered_lengths();
        if let Err(e) = self.inner.db.flush_async().await {
            let error = self.io("flushing", e);
            self.fail(&error);
            return Err(error);
        }
        let store = self.clone();
        let synced = tokio::task::spawn_blocking(move || store.inner.data_file.sync_all())
            .await
            .map_err(|e| e.to_string())
            .and_then(|result| result.map_err(|e| e.to_string()));
        if let Err(reason) = synced {
            let error = self.io_reason("fsyncing the data file", reason);
            self.fail(&error);
            return Err(error);
        }
        self.mark_durable(covered);
        Ok(())
    }

    /// [`Store::flush_async`] for callers outside an async runtime (open, checks, tools).
    pub fn flush(&self) -> Result<(), StoreError> {
        self.check_usable()?;
        let covered = self.covered_lengths();
        let flushed = self
            .inner
            .db
            .flush()
            .map_err(|e| self.io("flushing", e))
            .and_then(|_| {
                self.inner
                    .data_file
                    .sync_all()
                    .map_err(|e| self.io_reason("fsyncing the data file", e.to_string()))
            });
        if let Err(error) = flushed {
            self.fail(&error);
            return Err(error);
        }
        self.mark_durable(covered);
        Ok(())
    }

    // ---- checks ----

    /// Checks every entry of every log (keys, contiguity, decoding, network, `prev` chain) and
    /// including entries appended but not yet flushed. For
    /// `hukou node check`; reads the whole store.
    pub fn verify_full(&self) -> Result<VerifyReport, StoreError> {
        let on_disk = scan_log_lengths(&self.inner.path, &self.inner.tree)?;
        let known = self.appended_lengths();
        for (log, len) in &on_disk {
            let expected = known.get(log).copied().unwrap_or(0);
            if *len != expected {
                return Err(self.damaged(
                    *log,
                    expected.min(*len),
                    format!("the log holds {len} entries but {expected} were appended"),
                ));
            }
        }
        if let Some((log, len)) = known
            .iter()
            .find(|(log, len)| **len > 0 && !on_disk.contains_key(log))
        {
            return Err(self.damaged(
                *log,
                0,
                format!("the log is empty but {len} entries were appended"),
            ));
        }
        let mut report = VerifyReport::default();
        let mut logs: Vec<_> = on_disk.into_iter().collect();
        logs.sort_unstable();
        for (log, len) in logs {
            report.logs += 1;
            for entry in LogIter::new(self.clone(), log, len) {
                entry?;
                report.entries += 1;
            }
        }
        Ok(report)
    }

    // ---- checkpoints, certificates, cosigned, fraud proofs, meta ----

    /// Stores the checkpoint of `log` at `size` (opaque bytes). Not flushed.
    pub fn put_checkpoint(
        &self,
        log: BureauCode,
        size: u64,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        self.put(
            position_key(keyspace::CHECKPOINT, log, size),
            bytes,
            "storing a checkpoint",
        )
    }

    /// The checkpoint of `log` at `size`.
    pub fn checkpoint(&self, log: BureauCode, size: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.get(
            position_key(keyspace::CHECKPOINT, log, size),
            "reading a checkpoint",
        )
    }

    /// The checkpoint of `log` with the largest size, and that size.
    pub fn latest_checkpoint(&self, log: BureauCode) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        self.latest(keyspace::CHECKPOINT, log, "reading a checkpoint")
    }

    /// Stores the certificate of `log` at `size` (opaque bytes). Not flushed.
    pub fn put_certificate(
        &self,
        log: BureauCode,
        size: u64,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        self.put(
            position_key(keyspace::CERTIFICATE, log, size),
            bytes,
            "storing a certificate",
        )
    }

    /// The certificate of `log` at `size`.
    pub fn certificate(&self, log: BureauCode, size: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.get(
            position_key(keyspace::CERTIFICATE, log, size),
            "reading a certificate",
        )
    }

    /// The certificate of `log` with the largest size, and that size.
    pub fn latest_certificate(
        &self,
        log: BureauCode,
    ) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        self.latest(keyspace::CERTIFICATE, log, "reading a certificate")
    }

    /// The last checkpoint of `log` this node cosigned.
    pub fn cosigned(&self, log: BureauCode) -> Result<Option<Vec<u8>>, StoreError> {
        self.get(
            bureau_key(keyspace::COSIGNED, log),
            "reading a cosigned checkpoint",
        )
    }

    /// Records `checkpoint` as the last checkpoint of `log` this node cosigned, if the one
    /// recorded now is still `expected` (compare-and-swap), and returns once it is durable.
    /// The witness calls this after checking `checkpoint` against `expected` and before its
    /// cosignature leaves, so no crash, restart or concurrent check can make it cosign two
    /// inconsistent checkpoints of one log. [`StoreError::CosignedChanged`] means another
    /// check won: check again against the new value.
    pub async fn record_cosigned(
        &self,
        log: BureauCode,
        expected: Option<&[u8]>,
        checkpoint: &[u8],
    ) -> Result<(), StoreError> {
        self.check_usable()?;
        let swapped = self
            .inner
            .tree
            .compare_and_swap(
                bureau_key(keyspace::COSIGNED, log),
                expected,
                Some(checkpoint),
            )
            .map_err(|e| self.io("recording a cosigned checkpoint", e))?;
        if swapped.is_err() {
            return Err(StoreError::CosignedChanged {
                path: self.inner.path.clone(),
                log,
            });
        }
        self.flush_async().await
    }

    /// Stores a fraud proof against `author` at `seq`, keeping the first one stored for that
    /// position. Returns whether it was new. Not flushed.
    pub fn put_fraud_proof(
        &self,
        author: BureauCode,
        seq: u64,
        bytes: &[u8],
    ) -> Result<bool, StoreError> {
        self.check_usable()?;
        let key = position_key(keyspace::FRAUD_PROOF, author, seq);
        let swapped = self
            .inner
            .tree
            .compare_and_swap(key, None::<&[u8]>, Some(bytes))
            .map_err(|e| self.io("storing a fraud proof", e))?;
        Ok(swapped.is_ok())
    }

    /// Every fraud proof stored, by author and seq.
    pub fn fraud_proofs(&self) -> Result<Vec<(BureauCode, u64, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        for row in self.inner.tree.scan_prefix([keyspace::FRAUD_PROOF]) {
            let (key, value) = row.map_err(|e| self.io("reading fraud proofs", e))?;
            let (author, seq) = self.parse_position_key(&key)?;
            out.push((author, seq, value.to_vec()));
        }
        Ok(out)
    }

    /// Stores evidence that the author of `log` signed two checkpoints of different roots at
    /// `size` (opaque bytes; the witness encodes a `CheckpointFork`), keeping the first one
    /// stored for that log and size. Returns whether it was new. Not flushed: like a fraud
    /// proof, it becomes durable with the next flush.
    pub fn put_checkpoint_fork(
        &self,
        log: BureauCode,
        size: u64,
        bytes: &[u8],
    ) -> Result<bool, StoreError> {
        self.check_usable()?;
        let key = position_key(keyspace::CHECKPOINT_FORK, log, size);
        let swapped = self
            .inner
            .tree
            .compare_and_swap(key, None::<&[u8]>, Some(bytes))
            .map_err(|e| self.io("storing a checkpoint fork", e))?;
        Ok(swapped.is_ok())
    }

    /// Every checkpoint fork stored, by log and size.
    pub fn checkpoint_forks(&self) -> Result<Vec<(BureauCode, u64, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        for row in self.inner.tree.scan_prefix([keyspace::CHECKPOINT_FORK]) {
            let (key, value) = row.map_err(|e| self.io("reading checkpoint forks", e))?;
            let (log, size) = self.parse_position_key(&key)?;
            out.push((log, size, value.to_vec()));
        }
        Ok(out)
    }

    /// Stores configuration update `epoch` (its `SignedUpdate` encoding) and flushes: an update
    /// is durable before any entry naming its epoch can be applied, so a restart always loads
    /// every epoch its stored entries name.
    pub async fn put_config(&self, epoch: u32, bytes: &[u8]) -> Result<(), StoreError> {
        self.check_usable()?;
        let mut key = [0u8; 5];
        key[0] = keyspace::CONFIG;
        key[1..].copy_from_slice(&epoch.to_be_bytes());
        self.put(key, bytes, "storing a configuration update")?;
        self.flush_async().await
    }

    /// Every configuration update stored, in epoch order.
    pub fn config_updates(&self) -> Result<Vec<(u32, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        for row in self.inner.tree.scan_prefix([keyspace::CONFIG]) {
            let (key, value) = row.map_err(|e| self.io("reading configuration updates", e))?;
            let epoch = (key.len() == 5)
                .then(|| u32::from_be_bytes(key[1..5].try_into().expect("4 bytes")))
                .ok_or_else(|| StoreError::BadKey {
                    path: self.inner.path.clone(),
                    key: hex::encode(&key),
                    reason: "expected prefix and epoch (5 bytes)".to_string(),
                })?;
            out.push((epoch, value.to_vec()));
        }
        Ok(out)
    }

    /// Keeps, as evidence for auditors, an entry a configuration cut refused (a revoked key's or
    /// a retired bureau's entry at or after the cut): the first one stored per position.
    /// Returns whether it was new. Not flushed.
    pub fn put_revoked(&self, log: BureauCode, seq: u64, bytes: &[u8]) -> Result<bool, StoreError> {
        self.check_usable()?;
        let key = position_key(keyspace::REVOKED, log, seq);
        let swapped = self
            .inner
            .tree
            .compare_and_swap(key, None::<&[u8]>, Some(bytes))
            .map_err(|e| self.io("storing a revoked entry", e))?;
        Ok(swapped.is_ok())
    }

    /// Revoked entries kept for `log` (all logs with `None`), by log and seq.
    pub fn revoked(&self) -> Result<Vec<(BureauCode, u64, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        for row in self.inner.tree.scan_prefix([keyspace::REVOKED]) {
            let (key, value) = row.map_err(|e| self.io("reading revoked entries", e))?;
            let (log, seq) = self.parse_position_key(&key)?;
            out.push((log, seq, value.to_vec()));
        }
        Ok(out)
    }

    /// Number of revoked entries kept of `log`.
    pub fn revoked_count(&self, log: BureauCode) -> usize {
        self.inner
            .tree
            .scan_prefix(bureau_key(keyspace::REVOKED, log))
            .count()
    }

    /// A meta value other components keep (a genesis hash, say).
    pub fn meta(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.get(meta_key(name), "reading meta")
    }

    /// Sets a meta value. Not flushed.
    ///
    /// # Panics
    /// On `schema`, `bureau` or `network`, which only [`Store::open`] writes.
    pub fn set_meta(&self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        assert!(
            !META_RESERVED.contains(&name),
            "meta {name:?} is the store's own"
        );
        self.put(meta_key(name), value, "storing meta")
    }

    // ---- helpers ----

    fn put(
        &self,
        key: impl AsRef<[u8]>,
        bytes: &[u8],
        doing: &'static str,
    ) -> Result<(), StoreError> {
        self.check_usable()?;
        self.inner
            .tree
            .insert(key.as_ref(), bytes)
            .map(|_| ())
            .map_err(|e| self.io(doing, e))
    }

    fn get(
        &self,
        key: impl AsRef<[u8]>,
        doing: &'static str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner
            .tree
            .get(key.as_ref())
            .map(|value| value.map(|v| v.to_vec()))
            .map_err(|e| self.io(doing, e))
    }

    fn latest(
        &self,
        prefix: u8,
        log: BureauCode,
        doing: &'static str,
    ) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        match self
            .inner
            .tree
            .scan_prefix(bureau_key(prefix, log))
            .next_back()
        {
            None => Ok(None),
            Some(Err(e)) => Err(self.io(doing, e)),
            Some(Ok((key, value))) => {
                let (_, size) = self.parse_position_key(&key)?;
                Ok(Some((size, value.to_vec())))
            }
        }
    }

    fn parse_position_key(&self, key: &[u8]) -> Result<(BureauCode, u64), StoreError> {
        (key.len() == 13)
            .then(|| parse_position(&key[1..]))
            .flatten()
            .ok_or_else(|| StoreError::BadKey {
                path: self.inner.path.clone(),
                key: hex::encode(key),
                reason: "expected prefix, six-digit bureau code and number (13 bytes)".to_string(),
            })
    }

    /// Stored rows of `log` for seqs `from..end`, in order; a missing row is damage.
    fn rows(
        &self,
        log: BureauCode,
        from: u64,
        end: u64,
    ) -> impl Iterator<Item = Result<(u64, sled::IVec), StoreError>> + '_ {
        let mut expected = from;
        let mut iter =
            (from < end).then(|| self.inner.tree.range(log_key(log, from)..log_key(log, end)));
        std::iter::from_fn(move || {
            if expected >= end {
                return None;
            }
            let next = iter.as_mut().and_then(Iterator::next);
            let result = match next {
                None => Err(self.damaged(log, expected, "the entry is missing".to_string())),
                Some(Err(e)) => Err(self.io("reading entries", e)),
                Some(Ok((key, value))) => match parse_position(&key[1..]) {
                    Some((_, seq)) if seq == expected => Ok((seq, value)),
                    _ => Err(self.damaged(log, expected, "the entry is missing".to_string())),
                },
            };
            expected = if result.is_ok() { expected + 1 } else { end };
            Some(result)
        })
    }

    fn range_end(&self, log: BureauCode, from_seq: u64, entries_max: usize) -> u64 {
        let len = self.log_len(log);
        from_seq
            .saturating_add(entries_max as u64)
            .min(len)
            .max(from_seq.min(len))
    }

    fn state(&self, log: BureauCode) -> LogState {
        self.lock_logs()
            .get(&log)
            .copied()
            .unwrap_or(LogState::EMPTY)
    }

    fn lock_logs(&self) -> MutexGuard<'_, HashMap<BureauCode, LogState>> {
        self.inner.logs.lock().expect("log lengths lock poisoned")
    }

    fn appended_lengths(&self) -> HashMap<BureauCode, u64> {
        self.lock_logs()
            .iter()
            .map(|(log, state)| (*log, state.appended))
            .collect()
    }

    fn covered_lengths(&self) -> Covered {
        self.lock_logs()
            .iter()
            .map(|(log, state)| (*log, (state.appended, state.truncations)))
            .collect()
    }

    fn mark_durable(&self, covered: Covered) {
        let mut logs = self.lock_logs();
        for (log, (len, truncations)) in covered {
            let state = logs.get_mut(&log).expect("logs are never forgotten");
            if state.truncations != truncations {
                // Truncated since this flush began; the truncation made its own length durable.
                continue;
            }
            assert!(len <= state.appended, "durable past appended in {log}");
            // Flushes may finish out of order; durability only grows.
            state.durable = state.durable.max(len);
        }
    }

    fn check_usable(&self) -> Result<(), StoreError> {
        match self.inner.failure.get() {
            None => Ok(()),
            Some(cause) => Err(StoreError::Failed {
                path: self.inner.path.clone(),
                cause: cause.clone(),
            }),
        }
    }

    fn fail(&self, error: &StoreError) {
        tracing::error!(path = %self.inner.path.display(), %error, "store failed; refusing further writes");
        let _ = self.inner.failure.set(error.to_string());
    }

    fn io(&self, doing: &'static str, error: sled::Error) -> StoreError {
        self.io_reason(doing, error.to_string())
    }

    fn io_reason(&self, doing: &'static str, reason: String) -> StoreError {
        StoreError::Io {
            path: self.inner.path.clone(),
            doing,
            reason,
        }
    }

    fn damaged(&self, log: BureauCode, seq: u64, reason: String) -> StoreError {
        StoreError::Damaged {
            path: self.inner.path.clone(),
            log,
            seq,
            reason,
        }
    }
}

/// Opens sled in `dir`, waiting up to [`OPEN_LOCK_WAIT_MS`] for its lock file.
fn open_sled(dir: &Path) -> Result<sled::Db, sled::Error> {
    let deadline = Instant::now() + Duration::from_millis(OPEN_LOCK_WAIT_MS);
    loop {
        match sled::Config::new().path(dir).open() {
            // sled 0.34.7 reports a held lock only in this message.
            Err(sled::Error::Io(e)) if e.to_string().contains("could not acquire lock") => {
                if Instant::now() >= deadline {
                    return Err(sled::Error::Io(std::io::Error::other(format!(
                        "{e} (is another node running on this directory?)"
                    ))));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

/// Checks one stored entry against its key (author, seq), the network and, when known, the
/// hash of the entry before it.
fn check_entry(
    path: &Path,
    network: NetworkId,
    log: BureauCode,
    seq: u64,
    value: &[u8],
    prev: Option<EntryHash>,
) -> Result<SignedEntry, StoreError> {
    let damaged = |reason: String| StoreError::Damaged {
        path: path.to_path_buf(),
        log,
        seq,
        reason,
    };
    let signed = SignedEntry::decode(value)
        .map_err(|e| damaged(format!("the stored entry does not decode: {e}")))?;
    let entry = signed.entry();
    if entry.author != log {
        return Err(damaged(format!(
            "the stored entry is by bureau {}, not {log}",
            entry.author
        )));
    }
    if entry.seq.0 != seq {
        return Err(damaged(format!(
            "the stored entry has seq {}, not {seq}",
            entry.seq
        )));
    }
    if entry.network != network {
        return Err(damaged(format!(
            "the stored entry belongs to network {}",
            entry.network
        )));
    }
    let expected_prev = if seq == 0 {
        Some(EntryHash::ZERO)
    } else {
        prev
    };
    if let Some(expected) = expected_prev
        && entry.prev != expected
    {
        return Err(damaged(format!(
            "its prev {} is not {expected}, the hash of the entry before it",
            entry.prev
        )));
    }
    Ok(signed)
}

/// Writes the meta of a new store, or checks that of an existing one.
fn check_or_init_meta(
    path: &Path,
    tree: &sled::Tree,
    own: BureauCode,
    network: NetworkId,
) -> Result<(), StoreError> {
    let io = |doing: &'static str| {
        move |e: sled::Error| StoreError::Io {
            path: path.to_path_buf(),
            doing,
            reason: e.to_string(),
        }
    };
    let read = |name: &str| tree.get(meta_key(name)).map_err(io("reading meta"));
    let Some(schema) = read(META_SCHEMA)? else {
        let empty = tree.first().map_err(io("reading meta"))?.is_none();
        if !empty {
            return Err(StoreError::NotAStore {
                path: path.to_path_buf(),
                reason: "it holds data but no schema version".to_string(),
            });
        }
        let mut batch = sled::Batch::default();
        batch.insert(meta_key(META_SCHEMA), &SCHEMA_VERSION.to_be_bytes()[..]);
        batch.insert(meta_key(META_BUREAU), &own.get().to_be_bytes()[..]);
        batch.insert(meta_key(META_NETWORK), &network.0[..]);
        return tree.apply_batch(batch).map_err(io("writing meta"));
    };
    let decode_failed = |name: &str, value: &[u8], expected: &str| StoreError::Decode {
        path: path.to_path_buf(),
        key: hex::encode(meta_key(name)),
        what: "meta value",
        reason: format!("{} bytes, expected {expected}", value.len()),
    };
    let schema = u32::from_be_bytes(
        schema
            .as_ref()
            .try_into()
            .map_err(|_| decode_failed(META_SCHEMA, &schema, "a 4-byte version"))?,
    );
    if schema != SCHEMA_VERSION {
        return Err(StoreError::WrongSchema {
            path: path.to_path_buf(),
            found: schema,
            supported: SCHEMA_VERSION,
        });
    }
    let missing = |name: &str| StoreError::NotAStore {
        path: path.to_path_buf(),
        reason: format!("meta {name:?} is missing"),
    };
    let bureau = read(META_BUREAU)?.ok_or_else(|| missing(META_BUREAU))?;
    let found = <[u8; 4]>::try_from(bureau.as_ref())
        .ok()
        .and_then(|bytes| BureauCode::new(u32::from_be_bytes(bytes)))
        .ok_or_else(|| decode_failed(META_BUREAU, &bureau, "a 4-byte six-digit code"))?;
    if found != own {
        return Err(StoreError::WrongBureau {
            path: path.to_path_buf(),
            found,
            expected: own,
        });
    }
    let stored_network = read(META_NETWORK)?.ok_or_else(|| missing(META_NETWORK))?;
    let found = <[u8; 32]>::try_from(stored_network.as_ref())
        .map(NetworkId)
        .map_err(|_| decode_failed(META_NETWORK, &stored_network, "a 32-byte network id"))?;
    if found != network {
        return Err(StoreError::WrongNetwork {
            path: path.to_path_buf(),
            found,
            expected: network,
        });
    }
    Ok(())
}

/// Reads every key of every log and returns each log's length, refusing a gap anywhere (a key
/// scan; values are not decoded).
fn scan_log_lengths(
    path: &Path,
    tree: &sled::Tree,
) -> Result<HashMap<BureauCode, u64>, StoreError> {
    let mut lengths = HashMap::new();
    // The log being scanned and the seq its next key must have.
    let mut current: Option<(BureauCode, u64)> = None;
    for row in tree.scan_prefix([keyspace::LOG]) {
        let (key, _) = row.map_err(|e| StoreError::Io {
            path: path.to_path_buf(),
            doing: "scanning logs",
            reason: e.to_string(),
        })?;
        let (log, seq) = (key.len() == 13)
            .then(|| parse_position(&key[1..]))
            .flatten()
            .ok_or_else(|| StoreError::BadKey {
                path: path.to_path_buf(),
                key: hex::encode(&key),
                reason: "a log key is `L`, a six-digit bureau code and a seq (13 bytes)"
                    .to_string(),
            })?;
        let expected = match current {
            Some((current_log, next)) if current_log == log => next,
            _ => 0,
        };
        if seq != expected {
            return Err(StoreError::Damaged {
                path: path.to_path_buf(),
                log,
                seq: expected,
                reason: format!("the entry is missing (the next stored entry is {seq})"),
            });
        }
        current = Some((log, seq + 1));
        lengths.insert(log, seq + 1);
    }
    Ok(lengths)
}

/// Decodes and chain-checks the last [`TIP_ENTRIES_CHECKED`] entries of a log of `len` entries
/// (keys already known contiguous) and returns the hash of its last entry.
fn check_tip(
    path: &Path,
    tree: &sled::Tree,
    network: NetworkId,
    log: BureauCode,
    len: u64,
) -> Result<EntryHash, StoreError> {
    let from = len.saturating_sub(TIP_ENTRIES_CHECKED);
    let mut prev = None;
    let mut seq = from;
    for row in tree.range(log_key(log, from)..log_key(log, len)) {
        let (_, value) = row.map_err(|e| StoreError::Io {
            path: path.to_path_buf(),
            doing: "reading the tip of a log",
            reason: e.to_string(),
        })?;
        let entry = check_entry(path, network, log, seq, &value, prev)?;
        prev = Some(entry.hash());
        seq += 1;
    }
    assert_eq!(seq, len, "keys of {log} were checked contiguous");
    Ok(prev.expect("a scanned log has at least one entry"))
}

/// Every entry of one log from seq 0, checked and chained; see [`Store::iter_log`].
pub struct LogIter {
    store: Store,
    log: BureauCode,
    /// Seq of the next entry to yield.
    next: u64,
    /// One past the last seq to yield.
    end: u64,
    /// Hash the next entry's `prev` must equal.
    prev: EntryHash,
    rows: sled::Iter,
}

impl LogIter {
    fn new(store: Store, log: BureauCode, end: u64) -> LogIter {
        let rows = store.inner.tree.range(log_key(log, 0)..log_key(log, end));
        LogIter {
            store,
            log,
            next: 0,
            end,
            prev: EntryHash::ZERO,
            rows,
        }
    }
}

impl Iterator for LogIter {
    type Item = Result<SignedEntry, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.end {
            return None;
        }
        let (log, seq) = (self.log, self.next);
        let result = match self.rows.next() {
            None => Err(self
                .store
                .damaged(log, seq, "the entry is missing".to_string())),
            Some(Err(e)) => Err(self.store.io("replaying a log", e)),
            Some(Ok((key, value))) => match parse_position(&key[1..]) {
                Some((_, found)) if found == seq => check_entry(
                    &self.store.inner.path,
                    self.store.inner.network,
                    log,
                    seq,
                    &value,
                    Some(self.prev),
                ),
                _ => Err(self
                    .store
                    .damaged(log, seq, "the entry is missing".to_string())),
            },
        };
        match &result {
            Ok(entry) => {
                self.prev = entry.hash();
                self.next += 1;
            }
            // One error, then nothing: what follows a damaged entry cannot be trusted.
            Err(_) => self.next = self.end,
        }
        Some(result)
    }
}

// ---- group commit ----

/// One caller's entries and where to send the answer.
struct CommitRequest {
    entries: Vec<SignedEntry>,
    reply: oneshot::Sender<Result<(), StoreError>>,
}

/// Counters and the fatal error, shared by the committer task and its handles.
struct CommitShared {
    path: PathBuf,
    flushes: AtomicU64,
    requests: AtomicU64,
    entries: AtomicU64,
    group_entries_max: AtomicU64,
    /// Why the committer stopped, if a write or flush failed; every later caller gets it.
    failure: OnceLock<StoreError>,
}

impl CommitShared {
    fn stopped(&self) -> StoreError {
        self.failure
            .get()
            .cloned()
            .unwrap_or_else(|| StoreError::CommitterStopped {
                path: self.path.clone(),
            })
    }
}

/// What the committer has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CommitStats {
    /// Flushes, one per group written.
    pub flushes: u64,
    /// Requests committed.
    pub requests: u64,
    /// Entries committed.
    pub entries: u64,
    /// Most entries written by one flush.
    pub group_entries_max: u64,
}

/// Group commit: the one writer of entries while the node runs.
///
/// A task takes one request, drains every request already waiting (up to
/// [`GROUP_ENTRIES_MAX`] entries), writes them in arrival order with one [`Store::append`],
/// flushes once, and only then answers each caller: no caller is answered before the flush
/// that covers its entries (durable before acknowledged). A request that would leave a gap or
/// break a chain is refused on its own, and the rest of its group is written. If a write or a
/// flush fails, every waiting caller and every later caller gets the error and the task ends,
/// because memory would otherwise run ahead of the disk; the node must stop.
#[derive(Clone)]
pub struct Committer {
    requests: mpsc::Sender<CommitRequest>,
    shared: Arc<CommitShared>,
}

impl Committer {
    /// Starts the committer task on the current tokio runtime. When `shutdown` completes the
    /// task stops taking new requests, commits those already queued, and ends; it also ends
    /// when every handle is dropped. The task's result is `Err` if a write or flush failed.
    pub fn start<F>(store: Store, shutdown: F) -> (Committer, JoinHandle<Result<(), StoreError>>)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let (sender, receiver) = mpsc::channel(COMMIT_QUEUE_REQUESTS_MAX);
        let shared = Arc::new(CommitShared {
            path: store.path().to_path_buf(),
            flushes: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            entries: AtomicU64::new(0),
            group_entries_max: AtomicU64::new(0),
            failure: OnceLock::new(),
        });
        let task = CommitTask {
            store,
            requests: receiver,
            shared: shared.clone(),
        };
        let handle = tokio::spawn(task.run(shutdown));
        (
            Committer {
                requests: sender,
                shared,
            },
            handle,
        )
    }

    /// Commits `entries` (in order, of any logs) and returns once they are durable.
    pub async fn commit(&self, entries: Vec<SignedEntry>) -> Result<(), StoreError> {
        self.submit(entries).await?.await
    }

    /// Queues `entries` and returns a [`Receipt`] that resolves once they are durable. Requests
    /// are written in the order their `submit` calls returned, so one caller can keep several
    /// in flight and still have them written in order.
    pub async fn submit(&self, entries: Vec<SignedEntry>) -> Result<Receipt, StoreError> {
        Ok(self.reserve().await?.submit(entries))
    }

    /// Waits for room in the commit queue and keeps it: [`CommitSlot::submit`] then queues at
    /// once, without waiting. A caller that must queue under a lock (to keep entries in the
    /// order it applied them) reserves first, so it never waits for the committer while
    /// holding the lock.
    pub async fn reserve(&self) -> Result<CommitSlot<'_>, StoreError> {
        let permit = self
            .requests
            .reserve()
            .await
            .map_err(|_| self.shared.stopped())?;
        Ok(CommitSlot {
            permit,
            shared: &self.shared,
        })
    }

    /// The counters so far.
    pub fn stats(&self) -> CommitStats {
        CommitStats {
            flushes: self.shared.flushes.load(Ordering::Relaxed),
            requests: self.shared.requests.load(Ordering::Relaxed),
            entries: self.shared.entries.load(Ordering::Relaxed),
            group_entries_max: self.shared.group_entries_max.load(Ordering::Relaxed),
        }
    }
}

/// Room for one request in the commit queue ([`Committer::reserve`]); given back if dropped.
pub struct CommitSlot<'a> {
    permit: mpsc::Permit<'a, CommitRequest>,
    shared: &'a Arc<CommitShared>,
}

impl CommitSlot<'_> {
    /// Queues `entries` in the reserved place, at once. Requests are written in the order they
    /// were queued.
    pub fn submit(self, entries: Vec<SignedEntry>) -> Receipt {
        let (reply, answer) = oneshot::channel();
        self.permit.send(CommitRequest { entries, reply });
        Receipt {
            answer,
            shared: self.shared.clone(),
        }
    }
}

/// The answer to one [`Committer::submit`]: resolves once its entries are durable, or to why
/// they were not written.
pub struct Receipt {
    answer: oneshot::Receiver<Result<(), StoreError>>,
    shared: Arc<CommitShared>,
}

impl Future for Receipt {
    type Output = Result<(), StoreError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.answer)
            .poll(cx)
            .map(|answer| answer.unwrap_or_else(|_| Err(self.shared.stopped())))
    }
}

/// Why a group was not written: its append failed or was refused (nothing of it written), or
/// its flush failed.
enum GroupFailed {
    Append(StoreError),
    Flush(StoreError),
}

/// The committer's task state.
struct CommitTask {
    store: Store,
    requests: mpsc::Receiver<CommitRequest>,
    shared: Arc<CommitShared>,
}

impl CommitTask {
    async fn run<F: Future<Output = ()>>(mut self, shutdown: F) -> Result<(), StoreError> {
        tokio::pin!(shutdown);
        let mut shutting_down = false;
        // A request taken while draining that did not fit in the group; it starts the next.
        let mut carried: Option<CommitRequest> = None;
        loop {
            let first = match carried.take() {
                Some(request) => request,
                None if shutting_down => match self.requests.recv().await {
                    Some(request) => request,
                    None => return Ok(()),
                },
                None => tokio::select! {
                    biased;
                    () = &mut shutdown => {
                        // Refuse new requests; those already queued are still committed.
                        shutting_down = true;
                        self.requests.close();
                        continue;
                    }
                    request = self.requests.recv() => match request {
                        Some(request) => request,
                        None => return Ok(()),
                    },
                },
            };
            let mut group_entries = first.entries.len();
            let mut group = vec![first];
            while group_entries < GROUP_ENTRIES_MAX {
                let Ok(request) = self.requests.try_recv() else {
                    break;
                };
                if group_entries + request.entries.len() > GROUP_ENTRIES_MAX {
                    carried = Some(request);
                    break;
                }
                group_entries += request.entries.len();
                group.push(request);
            }
            if let Err(error) = self.write_group(group).await {
                return Err(self.stop(error, carried.take()));
            }
        }
    }

    /// Writes one group with one append and one flush, then answers its callers. Returns `Err`
    /// only for a failure that must stop the committer, after answering the group with it.
    async fn write_group(&self, group: Vec<CommitRequest>) -> Result<(), StoreError> {
        let verdicts = self
            .store
            .check_positions(group.iter().map(|request| request.entries.as_slice()));
        let mut entries = Vec::new();
        let mut replies = Vec::with_capacity(group.len());
        for (request, verdict) in group.into_iter().zip(verdicts) {
            match verdict {
                Ok(_) => {
                    entries.extend(request.entries);
                    replies.push(request.reply);
                }
                // Nothing of it is written; the caller has a bug, the disk is fine.
                Err(refusal) => {
                    let _ = request.reply.send(Err(refusal));
                }
            }
        }
        if replies.is_empty() {
            return Ok(());
        }
        let entry_count = entries.len() as u64;
        let answer_all = |replies: Vec<oneshot::Sender<_>>, result: &Result<(), StoreError>| {
            for reply in replies {
                let _ = reply.send(result.clone());
            }
        };
        let store = self.store.clone();
        // One blocking task writes and flushes the group: encoding and inserting thousands of
        // entries takes milliseconds, and sled's flush and the fsync block, so none of it runs
        // on the runtime's worker threads. One hop instead of three (a blocking task for the
        // append, sled's own thread pool for its flush, another blocking task for the fsync)
        // spares two thread wake-ups per group, which is most of the CPU a small group (one
        // clerk's single call, a few gossiped entries) costs.
        let written = tokio::task::spawn_blocking(move || {
            if !entries.is_empty() {
                store.append(&entries).map_err(GroupFailed::Append)?;
            }
            store.flush().map_err(GroupFailed::Flush)
        })
        .await
        .unwrap_or_else(|e| {
            Err(GroupFailed::Append(
                self.store.io_reason("appending a group", e.to_string()),
            ))
        });
        let flushed = match written {
            Ok(()) => Ok(()),
            Err(GroupFailed::Append(error)) => {
                answer_all(replies, &Err(error.clone()));
                // A refusal here means another writer raced the committer; nothing was
                // written, so the committer can go on.
                return if error.is_refusal() {
                    Ok(())
                } else {
                    Err(error)
                };
            }
            Err(GroupFailed::Flush(error)) => Err(error),
        };
        if flushed.is_ok() {
            let shared = &self.shared;
            shared.flushes.fetch_add(1, Ordering::Relaxed);
            shared
                .requests
                .fetch_add(replies.len() as u64, Ordering::Relaxed);
            shared.entries.fetch_add(entry_count, Ordering::Relaxed);
            shared
                .group_entries_max
                .fetch_max(entry_count, Ordering::Relaxed);
        }
        answer_all(replies, &flushed);
        flushed
    }

    /// Records `error` as the reason the committer stopped and gives it to every request still
    /// waiting.
    fn stop(&mut self, error: StoreError, carried: Option<CommitRequest>) -> StoreError {
        tracing::error!(%error, "committer stopped");
        let _ = self.shared.failure.set(error.clone());
        self.requests.close();
        let waiting = carried
            .into_iter()
            .chain(std::iter::from_fn(|| self.requests.try_recv().ok()));
        for request in waiting {
            let _ = request.reply.send(Err(error.clone()));
        }
        error
    }
}

// ---- crash tests ----

/// A log that holds fewer entries after a crash than were acknowledged before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LostEntries {
    pub log: BureauCode,
    pub acknowledged: u64,
    pub found: u64,
}

/// What [`check_after_crash`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrashCheck {
    /// Every log and its length after reopening.
    pub logs: Vec<(BureauCode, u64)>,
    /// Logs shorter than acknowledged: each one breaks "durable before acknowledged".
    pub lost: Vec<LostEntries>,
    pub verified: VerifyReport,
}

/// For crash tests (a node killed with `kill -9` while committing): reopens the store left in
/// `dir`, verifies all of it ([`Store::verify_full`]), and compares each log's length with the
/// number of its entries the dead node had acknowledged. Damage is an `Err`; lost entries are
/// listed in [`CrashCheck::lost`].
pub fn check_after_crash(
    dir: &Path,
    own: BureauCode,
    network: NetworkId,
    acknowledged: &[(BureauCode, u64)],
) -> Result<CrashCheck, StoreError> {
    let store = Store::open(dir, own, network)?;
    let verified = store.verify_full()?;
    let lost = acknowledged
        .iter()
        .filter_map(|&(log, acknowledged)| {
            let found = store.log_len(log);
            (found < acknowledged).then_some(LostEntries {
                log,
                acknowledged,
                found,
            })
        })
        .collect();
    Ok(CrashCheck {
        logs: store.logs(),
        lost,
        verified,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hukou_protocol::{CancellationReason, HouseholdId, Placement, Relation};
    use hukou_protocol::{EntryRef, Seq};

    fn tag(byte: u8) -> PersonTag {
        PersonTag([byte; 32])
    }

    fn placement() -> Placement {
        Placement {
            household: HouseholdId(1),
            relation: Relation::Head,
        }
    }

    #[test]
    fn person_of_names_the_subject_and_the_index_adds_a_new_head() {
        let permit = EntryRef {
            author: BureauCode::new(310104).unwrap(),
            seq: Seq(3),
            hash: EntryHash([5; 32]),
        };
        let cases: Vec<(Body, Option<PersonTag>, Vec<PersonTag>)> = vec![
            (
                Body::Enrol {
                    person: tag(1),
                    placement: placement(),
                    claim: permit,
                },
                Some(tag(1)),
                vec![tag(1)],
            ),
            (
                Body::Claim {
                    person: tag(4),
                    claimant: permit.author,
                    after: None,
                },
                Some(tag(4)),
                vec![tag(4)],
            ),
            (
                Body::Deregistration {
                    permit,
                    person: tag(1),
                    new_head: Some(tag(2)),
                },
                Some(tag(1)),
                vec![tag(1), tag(2)],
            ),
            (
                Body::Cancellation {
                    person: tag(1),
                    reason: CancellationReason::Death,
                    new_head: Some(tag(1)),
                },
                Some(tag(1)),
                vec![tag(1)],
            ),
            (
                Body::HeadChange {
                    household: HouseholdId(1),
                    new_head: tag(2),
                },
                None,
                vec![tag(2)],
            ),
            (Body::Revocation { permit }, None, vec![]),
        ];
        for (body, subject, named) in cases {
            assert_eq!(person_of(&body), subject, "{:?}", body.kind());
            assert_eq!(
                persons_named(&body).collect::<Vec<_>>(),
                named,
                "{:?}",
                body.kind()
            );
        }
    }

    #[test]
    fn keys_sort_by_bureau_then_number_and_parse_back() {
        let low = BureauCode::new(110101).unwrap();
        let high = BureauCode::new(650102).unwrap();
        let keys = [
            log_key(low, 0),
            log_key(low, 255),
            log_key(low, 256),
            log_key(low, u64::MAX),
            log_key(high, 0),
        ];
        assert!(keys.windows(2).all(|pair| pair[0] < pair[1]));
        assert_eq!(parse_position(&keys[2][1..]), Some((low, 256)));
        assert_eq!(parse_position(&[0u8; 12]), None, "bureau 000000");
        assert_eq!(parse_position(&keys[2][2..]), None, "too short");
    }

    #[test]
    fn checkpoint_forks_keep_the_first_per_log_and_size_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let own = BureauCode::new(310104).unwrap();
        let log = BureauCode::new(330502).unwrap();
        let network = NetworkId::from_name("store-forks");
        {
            let store = Store::open(dir.path(), own, network).unwrap();
            assert!(store.put_checkpoint_fork(log, 7, b"first").unwrap());
            assert!(!store.put_checkpoint_fork(log, 7, b"second").unwrap());
            assert!(store.put_checkpoint_fork(log, 8, b"other size").unwrap());
            // A fraud proof at the same numbers lives in its own keyspace.
            assert!(store.put_fraud_proof(log, 7, b"proof").unwrap());
            store.flush().unwrap();
        }
        let store = Store::open(dir.path(), own, network).unwrap();
        assert_eq!(
            store.checkpoint_forks().unwrap(),
            vec![
                (log, 7, b"first".to_vec()),
                (log, 8, b"other size".to_vec())
            ]
        );
        assert_eq!(
            store.fraud_proofs().unwrap(),
            vec![(log, 7, b"proof".to_vec())]
        );
    }

    /// A chain of `len` entries of `log`, the first `shared` of which are common to every
    /// `variant` (a fork from `shared` on).
    fn chain(
        log: BureauCode,
        network: NetworkId,
        shared: u64,
        len: u64,
        variant: u8,
    ) -> Vec<SignedEntry> {
        let key = ed25519_dalek::SigningKey::from_bytes(&[log.get() as u8; 32]);
        let mut out: Vec<SignedEntry> = Vec::new();
        for seq in 0..len {
            let prev = out.last().map_or(EntryHash::ZERO, SignedEntry::hash);
            let body = Body::Cancellation {
                person: tag(if seq < shared { 0 } else { variant }),
                reason: CancellationReason::Death,
                new_head: None,
            };
            out.push(
                hukou_protocol::Entry {
                    network,
                    epoch: 0,
                    author: log,
                    seq: Seq(seq),
                    prev,
                    time_ms: 1_700_000_000_000 + seq,
                    body,
                }
                .sign(&key),
            );
        }
        out
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn truncating_replica_logs_is_durable_and_the_log_grows_again_from_the_cut() {
        let dir = tempfile::tempdir().unwrap();
        let own = BureauCode::new(340100).unwrap();
        let forked = BureauCode::new(310104).unwrap();
        let dependent = BureauCode::new(330502).unwrap();
        let network = NetworkId::from_name("store-truncate");
        let fork_b = chain(forked, network, 2, 4, 0xB);
        let fork_a = chain(forked, network, 2, 5, 0xA);
        let other = chain(dependent, network, 0, 3, 1);
        let mine = chain(own, network, 0, 2, 2);
        let rt = runtime();
        {
            let store = Store::open(dir.path(), own, network).unwrap();
            store.append(&fork_b).unwrap();
            store.append(&other).unwrap();
            store.append(&mine).unwrap();
            store.flush().unwrap();
            // A flush that began before the truncation ends after it: it must not mark the old
            // lengths durable again.
            let covered = store.covered_lengths();
            rt.block_on(store.truncate_logs(&[(forked, 2), (dependent, 0)]))
                .unwrap();
            store.mark_durable(covered);
            assert_eq!(store.log_len(forked), 2);
            assert_eq!(store.appended_len(forked), 2);
            assert_eq!(store.log_len(dependent), 0);
            assert_eq!(store.entry(forked, 2).unwrap(), None);
            assert_eq!(store.range(forked, 0, 10).unwrap(), fork_b[..2].to_vec());
            assert_eq!(store.log_len(own), 2, "the own log is untouched");
            // The log grows again from the cut, with the other fork; an entry chained to the
            // dropped one is refused.
            assert_eq!(
                store.append(&fork_b[2..3]).map_err(|e| e.name()),
                Ok(()),
                "the same entry may come back"
            );
            store.flush().unwrap();
            rt.block_on(store.truncate_logs(&[(forked, 2)])).unwrap();
            assert!(matches!(
                store.append(&fork_a[3..4]),
                Err(StoreError::NotContiguous { .. })
            ));
            store.append(&fork_a[2..]).unwrap();
            store.flush().unwrap();
        }
        let store = Store::open(dir.path(), own, network).unwrap();
        assert_eq!(store.logs(), vec![(forked, 5), (own, 2)]);
        assert_eq!(store.range(forked, 0, 10).unwrap(), fork_a);
        assert_eq!(
            store.verify_full().unwrap(),
            VerifyReport {
                logs: 2,
                entries: 7
            }
        );
    }

    #[test]
    #[should_panic(expected = "a node never truncates its own log")]
    fn the_own_log_is_never_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let own = BureauCode::new(340100).unwrap();
        let network = NetworkId::from_name("store-truncate-own");
        let store = Store::open(dir.path(), own, network).unwrap();
        store.append(&chain(own, network, 0, 2, 2)).unwrap();
        store.flush().unwrap();
        let _ = runtime().block_on(store.truncate_logs(&[(own, 1)]));
    }

    #[test]
    fn every_error_has_a_distinct_name() {
        let path = PathBuf::from("/x");
        let log = BureauCode::new(310104).unwrap();
        let errors = [
            StoreError::OpenFailed {
                path: path.clone(),
                reason: String::new(),
            },
            StoreError::NotContiguous {
                path: path.clone(),
                log,
                seq: 1,
                expected: 0,
            },
            StoreError::Damaged {
                path: path.clone(),
                log,
                seq: 1,
                reason: String::new(),
            },
            StoreError::CommitterStopped { path },
        ];
        let names: std::collections::HashSet<_> = errors.iter().map(StoreError::name).collect();
        assert_eq!(names.len(), errors.len());
        assert!(errors[1].is_refusal() && !errors[2].is_refusal());
    }
}
