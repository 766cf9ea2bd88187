//! The witness and finality (DESIGN.md, "Logs, checkpoints, witnesses, finality"): this node
//! checkpoints its own log, cosigns checkpoints of every log it has checked, and collects
//! cosignatures into certificates that make entries final.
//!
//! One task, so every decision about one log is taken in order:
//!
//! - **Checkpoint** (author): every [`CHECKPOINT_INTERVAL_MS`] if the durable length of the own
//!   log grew and the last own checkpoint is certified (or has waited
//!   [`CHECKPOINT_IN_FLIGHT_MAX_MS`]: one checkpoint in flight, so every witness cosigns the same
//!   one), and again (re-signed at the same size) while no certificate covers the last one,
//!   after [`CHECKPOINT_RESEND_MIN_MS`], doubling up to [`CHECKPOINT_RESEND_MAX_MS`], so lost
//!   cosignatures are made again; an idle, certified log sends nothing. The node signs `(network, me, size, root, time)` over its *durable* log (`Store::log_len`), stores it
//!   and gossips it on [`TOPIC_CHECKPOINTS`]. It then judges it like any other checkpoint: the
//!   author cosigns its own log too.
//! - **Cosign** (witness): a checkpoint of log B is judged by `hukou_protocol::witness::judge`
//!   against this node's durable replica of B and the last checkpoint of B it cosigned, read from
//!   the store. If accepted, it is recorded as "last cosigned for B" with
//!   `Store::record_cosigned`, a compare-and-swap against the value just judged against that
//!   returns once flushed; only then is the cosignature made and gossiped. So neither a crash
//!   and restart nor a race can make this node cosign two inconsistent checkpoints of one log.
//!   A checkpoint beyond what the node holds is kept (the newest per log) and judged again after
//!   replication catches up.
//! - **Certify** (everyone): cosignatures are collected per checkpoint with
//!   `CertificateBuilder`; each witness counts once per log, on the newest checkpoint it
//!   cosigned, so a log has at most one builder per member. At quorum the certificate is checked
//!   against this node's own root at that size, stored, and gossiped. Certificates received
//!   (gossip or anti-entropy) are verified and checked the same way. A stored certificate raises
//!   `State::final_sizes`: entries below it are final.
//!
//! Never cosigned: a checkpoint whose signature is not its author's, one beyond what this node
//! holds durably (each held entry passed the rulebook, so a log with an invalid entry is never
//! cosigned past it), a root other than this node's root at that size, and anything smaller than
//! what this node already cosigned of that log.
//!
//! **A losing fork.** A certificate (verified: a quorum of valid cosignatures) whose root is not
//! this node's root at that size shows this node holds a fork of that log that lost: its author
//! signed two histories and a quorum cosigned the other. It is not stored; it is handed to the
//! service (`Service::want_adoption`), `sync` fetches the certified entries, and the service
//! moves the replica to them (`Service::adopt_certified_fork`); the certificate is then stored
//! like any other. So is one of a log this node holds less of, if it already proved that log's
//! author equivocated at a position the certificate covers. This node's record of what it
//! cosigned is kept: having cosigned the losing fork, it cosigns nothing of that log beyond it.
//!
//! **Fork evidence.** Every validly signed checkpoint of another log is remembered (the newest
//! [`RECENT_CHECKPOINT_SIZES_MAX`] sizes per log, besides the last cosigned one in the store);
//! when a second one of the same log and size has another root, the pair is stored as a
//! `CheckpointFork` (`Store::put_checkpoint_fork`, first per log and size kept), checkable with
//! the membership alone ([`decode_checkpoint_fork`], `CheckpointFork::verify`), and served by
//! the API beside fraud proofs. Its author showed different logs to different members.
//!
//! Lost gossip costs only time: the author's re-sent checkpoint is cosigned again by every
//! witness that lacks a certificate at that size, and certificates are pulled by anti-entropy
//! (`sync`).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bincode::{Decode, Encode};
use hukou_protocol::BureauCode;
use hukou_protocol::checkpoint::{
    AddOutcome, Certificate, CertificateBuilder, Checkpoint, CheckpointFork, Cosignature,
    SignedCheckpoint,
};
use hukou_protocol::witness::{WitnessError, judge};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::net::NetHandle;
use crate::service::{Service, now_ms};
use crate::store::StoreError;
use crate::sync::{decode, encode};

/// Gossip topic for checkpoints, cosignatures and certificates.
pub const TOPIC_CHECKPOINTS: &str = "hukou/checkpoints/1";
/// How often the own log is checkpointed when its durable length grew.
pub const CHECKPOINT_INTERVAL_MS: u64 = 100;
/// Longest a grown own log waits for the last own checkpoint to be certified before a newer one
/// is signed (one checkpoint in flight; `checkpoint_own_log`).
pub const CHECKPOINT_IN_FLIGHT_MAX_MS: u64 = 500;
/// First wait before the last own checkpoint is signed and gossiped again while no certificate
/// covers it (its cosignatures or certificate were lost, or witnesses were offline); doubled
/// after each resend up to [`CHECKPOINT_RESEND_MAX_MS`]. Certification normally takes tens of
/// milliseconds, so a resend is rare; an uncertified log (its quorum offline) costs one
/// checkpoint per 30 s.
pub const CHECKPOINT_RESEND_MIN_MS: u64 = 1_000;
/// Longest wait between two resends of an uncertified own checkpoint.
pub const CHECKPOINT_RESEND_MAX_MS: u64 = 30_000;
/// Bound of the witness's input queue; beyond it gossip is dropped (the resend and
/// anti-entropy make up for it).
const INPUT_QUEUE_MAX: usize = 4_096;
/// How many times a cosignature is retried when the recorded "last cosigned" changed between
/// the judgement and the record (only another writer of that key could do that).
const RECORD_ATTEMPTS_MAX: usize = 2;
/// Sizes of each other log whose signed checkpoint is remembered to detect a fork (two roots at
/// one size); beyond it the smallest size is forgotten. The last cosigned checkpoint, in the
/// store, is always compared too.
pub const RECENT_CHECKPOINT_SIZES_MAX: usize = 64;
/// A cosignature of a checkpoint already certified counts towards nothing; it is verified only
/// to note its witness alive (`finality`), and at most once per witness in this interval.
const HEARD_LATE_EVERY_MS: u64 = 1_000;

/// A message on [`TOPIC_CHECKPOINTS`].
#[derive(Debug, Encode, Decode)]
pub enum WitnessGossip {
    /// A log author's checkpoint: `SignedCheckpoint::encode`.
    Checkpoint(Vec<u8>),
    /// A witness's cosignature of a checkpoint (`Checkpoint::encode`).
    Cosignature {
        checkpoint: Vec<u8>,
        cosignature: Cosignature,
    },
    /// A certificate: `Certificate::encode`.
    Certificate(Vec<u8>),
}

/// What the witness task is given.
enum Input {
    /// A message on [`TOPIC_CHECKPOINTS`], as received.
    Gossip(Vec<u8>),
    /// Certificates pulled from a peer (`Certificate::encode` each).
    Certificates(Vec<Vec<u8>>),
}

/// Hands the witness what the network brings. Cheap to clone; the task ends when every handle
/// is dropped.
#[derive(Clone)]
pub struct WitnessHandle {
    inputs: mpsc::Sender<Input>,
}

impl WitnessHandle {
    /// Offers a message received on [`TOPIC_CHECKPOINTS`]. Returns false if it was dropped
    /// because the witness is behind.
    pub fn offer_gossip(&self, bytes: Vec<u8>) -> bool {
        self.inputs.try_send(Input::Gossip(bytes)).is_ok()
    }

    /// Offers certificates pulled from a peer.
    pub fn offer_certificates(&self, certificates: Vec<Vec<u8>>) -> bool {
        certificates.is_empty()
            || self
                .inputs
                .try_send(Input::Certificates(certificates))
                .is_ok()
    }
}

/// Starts the witness task: subscribes to [`TOPIC_CHECKPOINTS`], checkpoints the own log, and
/// judges, cosigns and certifies until every [`WitnessHandle`] is dropped.
pub async fn spawn(service: Service, net: NetHandle) -> (WitnessHandle, JoinHandle<()>) {
    if let Err(e) = net.subscribe(TOPIC_CHECKPOINTS).await {
        tracing::error!("cannot subscribe to {TOPIC_CHECKPOINTS}: {e}");
    }
    let (inputs, receiver) = mpsc::channel(INPUT_QUEUE_MAX);
    let witness = Witness {
        me: service.me(),
        service,
        net,
        own_last: None,
        own_resend: Duration::from_millis(CHECKPOINT_RESEND_MIN_MS),
        pending_checkpoints: HashMap::new(),
        pending_certificates: HashMap::new(),
        builders: HashMap::new(),
        newest_cosigned: HashMap::new(),
        recent_checkpoints: HashMap::new(),
    };
    let task = tokio::spawn(witness.run(receiver));
    (WitnessHandle { inputs }, task)
}

/// The witness task's state. Nothing here needs to survive a restart: what must (the last
/// checkpoint cosigned of each log, certificates, own checkpoints) is in the store.
struct Witness {
    service: Service,
    net: NetHandle,
    me: BureauCode,
    /// Size of the last own checkpoint and when it was signed.
    own_last: Option<(u64, Instant)>,
    /// Wait before the last own checkpoint is re-sent if still not certified.
    own_resend: Duration,
    /// The newest checkpoint of each log that this node does not hold yet.
    pending_checkpoints: HashMap<BureauCode, SignedCheckpoint>,
    /// The newest certificate of each log that this node does not hold yet (verified), and
    /// whether this node built it (and so gossips it once stored).
    pending_certificates: HashMap<BureauCode, (Certificate, bool)>,
    /// Cosignatures collected, per checkpoint.
    builders: HashMap<Checkpoint, CertificateBuilder>,
    /// For each (log, witness), the newest checkpoint it cosigned that this node counted. A
    /// builder no witness points at is dropped, so there are at most n builders per log.
    newest_cosigned: HashMap<(BureauCode, BureauCode), Checkpoint>,
    /// Validly signed checkpoints of other logs seen lately, by log and size, to catch an author
    /// that signs two roots at one size (at most [`RECENT_CHECKPOINT_SIZES_MAX`] per log).
    recent_checkpoints: HashMap<BureauCode, BTreeMap<u64, SignedCheckpoint>>,
}

/// The canonical bytes of a checkpoint fork, as stored and served: bincode (canonical
/// configuration) of the pair `(a.encode(), b.encode())` of signed checkpoints.
pub fn encode_checkpoint_fork(fork: &CheckpointFork) -> Vec<u8> {
    encode(&(fork.a.encode(), fork.b.encode()))
}

/// Decodes [`encode_checkpoint_fork`]'s bytes; `None` if they are not a pair of signed
/// checkpoints. Decoding checks nothing else: verify the fork with `CheckpointFork::verify`.
pub fn decode_checkpoint_fork(bytes: &[u8]) -> Option<CheckpointFork> {
    let (a, b): (Vec<u8>, Vec<u8>) = decode(bytes)?;
    Some(CheckpointFork {
        a: SignedCheckpoint::decode(&a).ok()?,
        b: SignedCheckpoint::decode(&b).ok()?,
    })
}

/// Where a certificate comes from, which decides whether it must be verified and whether it is
/// gossiped once stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Origin {
    /// Built here from verified cosignatures: gossiped once stored.
    Built,
    /// From a peer: verified first, not gossiped again (gossip already reached everyone).
    Received,
    /// Built here earlier, waited for replication.
    PendingBuilt,
    /// Received and verified earlier, waited for replication.
    PendingReceived,
}

/// Orders checkpoints of one log: larger first by size, then by the author's time.
fn newer(a: &Checkpoint, b: &Checkpoint) -> bool {
    (a.size, a.time_ms) > (b.size, b.time_ms)
}

impl Witness {
    async fn run(mut self, mut inputs: mpsc::Receiver<Input>) {
        let service = self.service.clone();
        let mut tick = tokio::time::interval(Duration::from_millis(CHECKPOINT_INTERVAL_MS));
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let outcome = tokio::select! {
                input = inputs.recv() => match input {
                    None => return,
                    Some(Input::Gossip(bytes)) => self.on_gossip(&bytes).await,
                    Some(Input::Certificates(raw)) => self.on_pulled_certificates(raw).await,
                },
                () = service.replicated() => self.retry_pending().await,
                _ = tick.tick() => match self.checkpoint_own_log().await {
                    Ok(()) => self.retry_pending().await,
                    Err(e) => Err(e),
                },
            };
            if let Err(e) = outcome {
                // The store refuses every write after a failure; the node must be restarted.
                tracing::error!("witness: storage failed: {e}; no more cosignatures");
                return;
            }
        }
    }

    async fn on_gossip(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        match decode::<WitnessGossip>(bytes) {
            Some(WitnessGossip::Checkpoint(raw)) => match SignedCheckpoint::decode(&raw) {
                // Our own log is checkpointed and cosigned here, never from the network.
                Ok(c) if c.checkpoint.log == self.me => Ok(()),
                Ok(c) => self.on_checkpoint(c).await,
                Err(e) => {
                    self.count_decode_error(&e);
                    Ok(())
                }
            },
            Some(WitnessGossip::Cosignature {
                checkpoint,
                cosignature,
            }) => match Checkpoint::decode(&checkpoint) {
                Ok(c) => self.on_cosignature(c, cosignature).await,
                Err(e) => {
                    self.count_decode_error(&e);
                    Ok(())
                }
            },
            Some(WitnessGossip::Certificate(raw)) => match Certificate::decode(&raw) {
                Ok(c) => self.on_certificate(c, Origin::Received).await,
                Err(e) => {
                    self.count_decode_error(&e);
                    Ok(())
                }
            },
            None => {
                self.count_decode_error(&"checkpoint gossip did not decode");
                Ok(())
            }
        }
    }

    fn count_decode_error(&self, e: &dyn std::fmt::Display) {
        self.service
            .counters()
            .decode_errors
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::debug!("witness: dropped a message: {e}");
    }

    async fn on_pulled_certificates(&mut self, raw: Vec<Vec<u8>>) -> Result<(), StoreError> {
        for bytes in raw {
            match Certificate::decode(&bytes) {
                Ok(c) => self.on_certificate(c, Origin::Received).await?,
                Err(e) => self.count_decode_error(&e),
            }
        }
        Ok(())
    }

    async fn final_size(&self, log: BureauCode) -> u64 {
        self.service.state().await.final_size(log)
    }

    /// Signs, stores and gossips a checkpoint of the own durable log if it grew, or if the last
    /// one is still not certified and its resend is due, then cosigns it.
    async fn checkpoint_own_log(&mut self) -> Result<(), StoreError> {
        if self.service.is_recovering() {
            // The own log may still be coming back from peers: a checkpoint now could be of a
            // prefix smaller than one already signed.
            return Ok(());
        }
        let size = self.service.store().log_len(self.me);
        let due = match self.own_last {
            None => size > 0,
            Some((last, at)) if size > last => {
                // One checkpoint in flight: a grown log is checkpointed once the last one is
                // certified, or after CHECKPOINT_IN_FLIGHT_MAX_MS. Each witness counts on the
                // newest checkpoint it cosigned, so checkpoints signed faster than a cosigning
                // round would leave the witnesses on different ones, and with exactly a quorum
                // up no checkpoint would ever gather all of them.
                let due = at.elapsed() >= Duration::from_millis(CHECKPOINT_IN_FLIGHT_MAX_MS)
                    || self.final_size(self.me).await >= last;
                if due {
                    self.own_resend = Duration::from_millis(CHECKPOINT_RESEND_MIN_MS);
                }
                due
            }
            Some((last, at)) => {
                let resend =
                    at.elapsed() >= self.own_resend && self.final_size(self.me).await < last;
                if resend {
                    self.own_resend =
                        (self.own_resend * 2).min(Duration::from_millis(CHECKPOINT_RESEND_MAX_MS));
                }
                resend
            }
        };
        if !due {
            return Ok(());
        }
        let root = {
            let state = self.service.state().await;
            state.trees.get(&self.me).and_then(|t| t.root_at(size).ok())
        };
        let root = root.expect("the tree of the own log holds every durable entry");
        let Some(epoch) = self.service.checkpoint_epoch().await else {
            // Retired, or the key the epoch in force names is not installed: nothing to sign.
            return Ok(());
        };
        let Some(signed) = self.service.sign_checkpoint(Checkpoint {
            network: self.service.epochs().network(),
            epoch,
            log: self.me,
            size,
            root,
            time_ms: now_ms(),
        }) else {
            return Ok(());
        };
        self.service
            .store()
            .put_checkpoint(self.me, size, &signed.encode())?;
        self.own_last = Some((size, Instant::now()));
        self.publish(WitnessGossip::Checkpoint(signed.encode()))
            .await;
        self.on_checkpoint(signed).await
    }

    /// Judges a checkpoint and, if accepted, records it and cosigns it.
    async fn on_checkpoint(&mut self, signed: SignedCheckpoint) -> Result<(), StoreError> {
        self.note_checkpoint(&signed)?;
        let c = signed.checkpoint;
        if c.size <= self.final_size(c.log).await {
            // Already certified at this size or beyond: a cosignature would change nothing.
            return Ok(());
        }
        let store = self.service.store().clone();
        for _ in 0..RECORD_ATTEMPTS_MAX {
            let recorded = store.cosigned(c.log)?;
            let last = match recorded.as_deref().map(SignedCheckpoint::decode) {
                None => None,
                Some(Ok(last)) => Some(last.checkpoint),
                Some(Err(e)) => {
                    tracing::error!(log = %c.log, "witness: the last cosigned checkpoint of {} does not decode ({e}); not cosigning that log", c.log);
                    return Ok(());
                }
            };
            if last == Some(c) {
                return Ok(()); // this very checkpoint is already cosigned
            }
            let verdict = {
                let state = self.service.state().await;
                let tree = state.trees.get(&c.log);
                let held = store.log_len(c.log);
                judge(
                    &self.service.epochs(),
                    self.me,
                    &signed,
                    held,
                    |size| tree.and_then(|t| t.root_at(size).ok()),
                    last.as_ref(),
                )
            };
            if !matches!(verdict, Err(WitnessError::Checkpoint(_))) {
                // Its signature verified: the log waits for its committee (status only).
                let final_size = self.final_size(c.log).await;
                self.service.finality_checkpoint(&c, final_size);
            }
            match verdict {
                Ok(()) => {}
                Err(WitnessError::NotHeldYet { .. }) => {
                    let keep = self
                        .pending_checkpoints
                        .get(&c.log)
                        .is_none_or(|p| newer(&c, &p.checkpoint));
                    if keep {
                        self.pending_checkpoints.insert(c.log, signed);
                    }
                    return Ok(());
                }
                Err(e) => {
                    self.refused(&c, &e);
                    return Ok(());
                }
            }
            match store
                .record_cosigned(c.log, recorded.as_deref(), &signed.encode())
                .await
            {
                Ok(()) => {
                    let Some(cosignature) = self.service.cosign(&c) else {
                        // Our key of the checkpoint's epoch was rotated away: others cosign.
                        return Ok(());
                    };
                    self.publish(WitnessGossip::Cosignature {
                        checkpoint: c.encode(),
                        cosignature,
                    })
                    .await;
                    return self.on_cosignature(c, cosignature).await;
                }
                Err(StoreError::CosignedChanged { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        tracing::warn!(log = %c.log, size = c.size, "witness: the last cosigned checkpoint kept changing; not cosigning");
        Ok(())
    }

    /// Remembers a validly signed checkpoint of another log and, if this node saw or cosigned
    /// another one of that log and size with a different root, stores the pair as evidence.
    fn note_checkpoint(&mut self, signed: &SignedCheckpoint) -> Result<(), StoreError> {
        let c = &signed.checkpoint;
        if c.log == self.me {
            return Ok(());
        }
        let seen = self
            .recent_checkpoints
            .get(&c.log)
            .and_then(|r| r.get(&c.size));
        if seen == Some(signed) {
            return Ok(());
        }
        if signed.verify(&self.service.epochs()).is_err() {
            return Ok(()); // judged (and counted) as a refusal by `judge`
        }
        let mut other = seen.filter(|s| s.checkpoint.root != c.root).cloned();
        if other.is_none()
            && let Some(raw) = self.service.store().cosigned(c.log)?
            && let Ok(last) = SignedCheckpoint::decode(&raw)
            && last.checkpoint.size == c.size
            && last.checkpoint.root != c.root
        {
            other = Some(last);
        }
        let recent = self.recent_checkpoints.entry(c.log).or_default();
        if other.is_none() {
            recent.insert(c.size, signed.clone());
            while recent.len() > RECENT_CHECKPOINT_SIZES_MAX {
                recent.pop_first();
            }
        }
        let Some(other) = other else {
            return Ok(());
        };
        // Ordered by root, so the same pair always makes the same evidence.
        let (a, b) = if other.checkpoint.root <= c.root {
            (other, signed.clone())
        } else {
            (signed.clone(), other)
        };
        let fork = CheckpointFork { a, b };
        if let Err(e) = fork.verify(&self.service.epochs()) {
            tracing::warn!(log = %c.log, size = c.size, "witness: not a checkpoint fork: {e}");
            return Ok(());
        }
        if self.service.store().put_checkpoint_fork(
            c.log,
            c.size,
            &encode_checkpoint_fork(&fork),
        )? {
            tracing::error!(log = %c.log, size = c.size,
                "CHECKPOINT FORK: bureau {} signed two checkpoints of its log at size {} with roots {} and {}; evidence stored",
                c.log, c.size, hex::encode(fork.a.checkpoint.root), hex::encode(fork.b.checkpoint.root));
        }
        Ok(())
    }

    fn refused(&self, c: &Checkpoint, e: &WitnessError) {
        match e {
            WitnessError::OlderThanCosigned { .. } => {
                tracing::debug!(log = %c.log, size = c.size, "witness: stale checkpoint: {e}");
            }
            WitnessError::NotInCommittee { .. } => {
                tracing::trace!(log = %c.log, size = c.size, "witness: not on this log's committee");
            }
            WitnessError::BeyondHandover { .. } | WitnessError::BelowAnchor { .. } => {
                tracing::debug!(log = %c.log, size = c.size, rule = e.name(), "witness: {e}");
            }
            WitnessError::RootMismatch { .. }
            | WitnessError::CosignedNotInTree { .. }
            | WitnessError::AnchorNotInTree { .. } => {
                self.count_refusal();
                tracing::error!(log = %c.log, size = c.size, rule = e.name(),
                    "witness: NOT cosigning checkpoint of {}: {e}", c.log);
            }
            WitnessError::Checkpoint(_) | WitnessError::NotHeldYet { .. } => {
                self.count_refusal();
                tracing::warn!(log = %c.log, size = c.size, rule = e.name(),
                    "witness: refused checkpoint: {e}");
            }
        }
    }

    fn count_refusal(&self) {
        self.service
            .counters()
            .checkpoints_refused
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Counts a cosignature towards its checkpoint's certificate.
    async fn on_cosignature(
        &mut self,
        c: Checkpoint,
        cosignature: Cosignature,
    ) -> Result<(), StoreError> {
        let final_size = self.final_size(c.log).await;
        if !self.service.epochs().ever_member(c.log) || c.size <= final_size {
            self.heard_late(&c, &cosignature);
            return Ok(());
        }
        let key = (c.log, cosignature.witness);
        if let Some(seen) = self.newest_cosigned.get(&key)
            && !newer(&c, seen)
        {
            return Ok(()); // this witness has moved on (or repeats itself)
        }
        let builder = self
            .builders
            .entry(c)
            .or_insert_with(|| CertificateBuilder::new(c));
        let outcome = builder.add(&self.service.epochs(), &c, cosignature);
        let certificate = builder.certificate(&self.service.epochs());
        match outcome {
            Ok(AddOutcome::Counted { .. }) => {
                self.service
                    .finality_cosigned(&c, cosignature.witness, final_size);
                self.newest_cosigned.insert(key, c);
                self.drop_unreferenced_builders(c.log);
            }
            Ok(AddOutcome::Duplicate | AddOutcome::OtherCheckpoint) => {}
            Err(e) => {
                tracing::warn!(log = %c.log, size = c.size, witness = %cosignature.witness, rule = e.name(),
                    "witness: refused cosignature: {e}");
                self.drop_unreferenced_builders(c.log);
                return Ok(());
            }
        }
        match certificate {
            Some(certificate) => self.on_certificate(certificate, Origin::Built).await,
            None => Ok(()),
        }
    }

    /// Notes that a witness is alive from a cosignature that came after its checkpoint was
    /// certified (status only): verified at most once per witness per [`HEARD_LATE_EVERY_MS`],
    /// so late cosignatures cost one signature check per witness per interval at most.
    fn heard_late(&self, c: &Checkpoint, cosignature: &Cosignature) {
        if self
            .service
            .finality_heard_within(cosignature.witness, HEARD_LATE_EVERY_MS)
        {
            return;
        }
        if cosignature.verify(c, &self.service.epochs()).is_ok() {
            self.service.finality_heard(cosignature.witness);
        }
    }

    fn drop_unreferenced_builders(&mut self, log: BureauCode) {
        let newest = &self.newest_cosigned;
        self.builders.retain(|c, _| {
            c.log != log
                || newest
                    .iter()
                    .any(|((l, _), pointed)| *l == log && pointed == c)
        });
    }

    /// Stores a certificate if it is valid, new, and of the log as this node holds it; one this
    /// node built is then gossiped.
    async fn on_certificate(
        &mut self,
        certificate: Certificate,
        origin: Origin,
    ) -> Result<(), StoreError> {
        let c = certificate.checkpoint;
        if !self.service.epochs().ever_member(c.log) || c.size <= self.final_size(c.log).await {
            return Ok(());
        }
        if origin == Origin::Received
            && let Err(e) = certificate.verify(&self.service.epochs())
        {
            tracing::warn!(log = %c.log, size = c.size, rule = e.name(), "witness: refused certificate: {e}");
            return Ok(());
        }
        let store = self.service.store().clone();
        {
            let mut state = self.service.state().await;
            let held = store.log_len(c.log);
            let ours = state.trees.get(&c.log).and_then(|t| t.root_at(c.size).ok());
            match ours {
                Some(root) if held >= c.size && root == c.root => {}
                Some(root) if held >= c.size => {
                    // This node holds a losing fork: a quorum cosigned another history of the
                    // log. Not stored (final sizes describe what this node holds); `sync`
                    // fetches the certified entries and the service moves the replica to them,
                    // after which this certificate is offered again and stored.
                    drop(state);
                    self.count_refusal();
                    if self.service.want_adoption(certificate) {
                        tracing::error!(log = %c.log, size = c.size,
                            "witness: a quorum certified root {} of log {} at size {}, but this node holds root {}: \
                             its author forked the log; moving to the certified fork",
                            hex::encode(c.root), c.log, c.size, hex::encode(root));
                    }
                    return Ok(());
                }
                _ => {
                    // Shorter than the certificate. If this node already proved its author
                    // signed two entries at a position the certificate covers, its replica may
                    // be the losing fork, and pulls cannot extend it: move to the certified one.
                    let forked = state
                        .fraud_proofs
                        .keys()
                        .any(|(author, seq)| *author == c.log && seq.0 < c.size);
                    drop(state);
                    if forked && self.service.want_adoption(certificate.clone()) {
                        tracing::warn!(log = %c.log, size = c.size,
                            "witness: a certificate of forked log {} covers a forked position; checking against the certified fork", c.log);
                    }
                    let keep = self
                        .pending_certificates
                        .get(&c.log)
                        .is_none_or(|(p, _)| newer(&c, &p.checkpoint));
                    if keep {
                        let built = origin == Origin::Built || origin == Origin::PendingBuilt;
                        self.pending_certificates
                            .insert(c.log, (certificate, built));
                    }
                    return Ok(());
                }
            }
            // Stored under the state lock, so final_sizes never runs ahead of the store.
            store.put_certificate(c.log, c.size, &certificate.encode())?;
            if state.note_final(c.log, c.size) {
                self.service.finality_advanced();
            }
            self.service.finality_certified(c.log, c.size);
        }
        self.service
            .counters()
            .certificates
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::debug!(log = %c.log, size = c.size, "certificate stored");
        // What is now final needs no more cosignatures.
        self.builders
            .retain(|b, _| b.log != c.log || b.size > c.size);
        self.newest_cosigned
            .retain(|(log, _), n| *log != c.log || n.size > c.size);
        if self
            .pending_checkpoints
            .get(&c.log)
            .is_some_and(|p| p.checkpoint.size <= c.size)
        {
            self.pending_checkpoints.remove(&c.log);
        }
        if self
            .pending_certificates
            .get(&c.log)
            .is_some_and(|(p, _)| p.checkpoint.size <= c.size)
        {
            self.pending_certificates.remove(&c.log);
        }
        if origin == Origin::Built || origin == Origin::PendingBuilt {
            self.publish(WitnessGossip::Certificate(certificate.encode()))
                .await;
        }
        Ok(())
    }

    /// Judges again what waited for replication, for the logs that have caught up.
    async fn retry_pending(&mut self) -> Result<(), StoreError> {
        let store = self.service.store().clone();
        let ready: Vec<BureauCode> = self
            .pending_checkpoints
            .iter()
            .filter(|(log, c)| store.log_len(**log) >= c.checkpoint.size)
            .map(|(log, _)| *log)
            .collect();
        for log in ready {
            if let Some(c) = self.pending_checkpoints.remove(&log) {
                self.on_checkpoint(c).await?;
            }
        }
        let ready: Vec<BureauCode> = self
            .pending_certificates
            .iter()
            .filter(|(log, (c, _))| store.log_len(**log) >= c.checkpoint.size)
            .map(|(log, _)| *log)
            .collect();
        for log in ready {
            if let Some((c, built)) = self.pending_certificates.remove(&log) {
                let origin = if built {
                    Origin::PendingBuilt
                } else {
                    Origin::PendingReceived
                };
                self.on_certificate(c, origin).await?;
            }
        }
        Ok(())
    }

    async fn publish(&self, message: WitnessGossip) {
        // No peer subscribed yet is not an error: the resend and anti-entropy catch up.
        let _ = self.net.publish(TOPIC_CHECKPOINTS, encode(&message)).await;
    }
}
