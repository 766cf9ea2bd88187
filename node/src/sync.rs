//! Replication over the private network: push new entries by gossip, pull what is missing by
//! request-response, and answer peers' pulls.
//!
//! - Push: entries this node wrote go out on [`TOPIC_ENTRIES`] as soon as they are durable, in
//!   batches (up to [`PUSH_BATCH_ENTRIES`] or [`PUSH_DELAY_MS`]).
//! - Work follows activity (issue 14): an idle node polls nobody. A pull with one peer
//!   ([`sync_with`]: its `Tips`, the logs where it is ahead from this node's length in batches
//!   of `BATCH_ENTRIES_MAX`, its certificates) runs only when
//!   - a peer connects: the two exchange digests ([`digest`], [`SyncRequest::Digest`]: SHA-256
//!     over the epoch, every log's length and tip, every log's certified size); equal digests
//!     cost one hash each way and nothing more; different ones make each pull from the other;
//!   - anti-entropy: every [`ANTI_ENTROPY_INTERVAL_MS`] the same digest exchange with one
//!     overlay neighbour, in turn, so a lost gossip message nothing later refers to is found;
//!   - on demand: an entry received by gossip waits for one this node lacks (the causal buffer
//!     says which), or a checkpoint, cosignature or certificate names a size beyond what the
//!     node holds: after [`ON_DEMAND_DELAY_MS`], if still missing, that log is pulled from the
//!     neighbour that forwarded the message, then from the log's author (dialled on demand).
//! - Start-up: pull rounds with every connected neighbour every [`PULL_INTERVAL_MS`] until a
//!   peer confirmed the node's own log (`Service::is_recovering`) and it is not behind.
//! - Catch-up (a new, wiped or long-stopped node): the same pull, pipelined. Up to
//!   [`PULL_REQUESTS_IN_FLIGHT`] range requests are outstanding at once, always for the log the
//!   node holds the smallest share of (so logs that reference one another arrive together and
//!   little waits in the causal buffer); responses are verified [`PULL_STEP_ENTRIES`] at a time
//!   (batch signature verification on every core) while the previous step is being written
//!   (up to [`PULL_COMMITS_IN_FLIGHT`] steps not yet durable), and a round that is still behind
//!   starts the next at once. While at least [`CATCH_UP_ENTRIES_MIN`] entries are missing the
//!   node logs its progress at info level, at most once per [`CATCH_UP_REPORT_MS`], and shows it
//!   in `GET /healthz` (`catch_up`). Every entry still goes through the rulebook before it is
//!   stored; only the waiting is overlapped.
//! - Every received entry goes through `Service::ingest`, i.e. the rulebook, before it is stored.
//! - Checkpoints, cosignatures and certificates travel on `witness::TOPIC_CHECKPOINTS` and go to
//!   the witness task (`witness`), which this module starts. Each pull also asks the peer for
//!   its latest certificate of each log ([`SyncRequest::Certificates`]), so a node that missed
//!   the gossip still learns what is final.
//! - A losing fork: when the witness found that a certificate's root is not this node's replica
//!   of a log (`Service::want_adoption`), each pull round fetches the certified entries from a
//!   peer, from just before where the replica diverges up to the certificate's size
//!   ([`adopt_certified_forks`]), and hands them to `Service::adopt_certified_fork`, which checks
//!   them against the certificate before anything is taken back (the digest differs while the
//!   replica is the losing fork, so the next digest exchange pulls again); a peer that holds
//!   another fork, or lies, costs a request. The certificate is then offered to the witness again.
//! - When the network's event stream ends (shutdown), every task started here is stopped before
//!   [`run`] returns, so nothing keeps the store open.
//!
//! Messages are bincode in the canonical configuration; a message that does not decode is
//! counted and dropped.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bincode::{Decode, Encode};
use futures::stream::{FuturesOrdered, StreamExt};
use hukou_protocol::BureauCode;
use hukou_protocol::adoption::AdoptionError;
use hukou_protocol::limits::{ADOPTION_ENTRIES_MAX, BATCH_ENTRIES_MAX, FRAME_BYTES_MAX};
use libp2p::PeerId;
use tokio::sync::mpsc;

use crate::net::{NetEvent, NetHandle};
use crate::service::{AdoptError, CLAIMS_PER_REQUEST_MAX, CatchUp, ClaimAnswer, ClaimAsk, Service};
use crate::witness::{self, TOPIC_CHECKPOINTS, WitnessHandle};

/// Gossip topic for new entries.
pub const TOPIC_ENTRIES: &str = "hukou/entries/1";
/// Most entries in one gossip message.
pub const PUSH_BATCH_ENTRIES: usize = 512;
/// Longest a new entry waits to be batched before it is pushed.
pub const PUSH_DELAY_MS: u64 = 5;
/// Interval between the pull rounds of a node starting up or catching up (only then).
pub const PULL_INTERVAL_MS: u64 = 500;
/// Anti-entropy period: every 30 s the node compares digests with one neighbour, in turn.
pub const ANTI_ENTROPY_INTERVAL_MS: u64 = 30_000;
/// How long an on-demand pull waits before it checks whether the entries are still missing:
/// gossip usually brings them within milliseconds (an entry's predecessor is published before
/// it, a log's entries before its checkpoint), so a pull at once would fetch them twice.
pub const ON_DEMAND_DELAY_MS: u64 = 300;
/// Most logs pulled on demand after one gossip batch.
const ON_DEMAND_LOGS_MAX: usize = 16;
/// Jobs queued for the pull task; beyond this they are dropped (digests make up for them).
const JOBS_QUEUED_MAX: usize = 1_024;
/// Domain separation of [`digest`].
const DIGEST_DOMAIN: &[u8] = b"hukou/sync-digest/1";
/// How often the pull task looks whether the witness found a losing fork to move off
/// (`Service::adoptions_wanted`). A local check (a lock and an empty map when idle, well under
/// a microsecond), once a second, so a fork is fetched within a second of its certificate.
const ADOPTION_CHECK_MS: u64 = 1_000;
/// How long a starting node waits for a peer to confirm its own log before it accepts writes
/// anyway (the first node of a new network has nobody to ask).
pub const RECOVERY_WAIT_MS: u64 = 5_000;
/// Most batches pulled from one log of one peer in one round, so one huge log cannot starve the
/// others; the next round continues.
const PULL_BATCHES_PER_ROUND_MAX: usize = 64;
/// Range requests outstanding at once to one peer while pulling: enough to hide the round trip
/// and the peer's reads behind this node's verification.
pub const PULL_REQUESTS_IN_FLIGHT: usize = 8;
/// Most entries verified and judged in one step of a pull: several responses together, so that
/// each core batch-verifies about `BATCH_ENTRIES_MAX` entries (the cheapest equation size).
pub const PULL_STEP_ENTRIES: usize = 4 * BATCH_ENTRIES_MAX;
/// Steps of a pull handed to the committer and not yet durable: the next step is verified while
/// these are written.
pub const PULL_COMMITS_IN_FLIGHT: usize = 4;
/// A node missing at least this many entries that its peers hold is catching up: it reports its
/// progress.
pub const CATCH_UP_ENTRIES_MIN: u64 = 10_000;
/// Shortest interval between two catch-up progress lines.
pub const CATCH_UP_REPORT_MS: u64 = 1_000;

/// Claim requests waiting to be sent to arbiters; beyond this a window's request waits.
const CLAIM_ASKS_QUEUED_MAX: usize = 1_024;

/// A gossip message.
#[derive(Debug, Encode, Decode)]
pub enum Gossip {
    /// Wire-encoded signed entries.
    Entries(Vec<Vec<u8>>),
}

/// A request to a peer.
#[derive(Debug, Encode, Decode)]
pub enum SyncRequest {
    /// The length and tip (hash of the last entry) of every log the peer holds.
    Tips,
    /// Entries of `log` from seq `from`, at most `max`.
    Range {
        log: BureauCode,
        from: u64,
        max: u32,
    },
    /// The latest certificate the peer holds of each log.
    Certificates,
    /// Claims on these persons (tags) for the asking bureau, from their arbiter (the peer);
    /// at most `service::CLAIMS_PER_REQUEST_MAX`.
    Claims { persons: Vec<[u8; 32]> },
    /// Configuration updates from epoch `from` on, at most [`CONFIG_UPDATES_PER_RESPONSE_MAX`].
    Config { from: u32 },
    /// The asker's [`digest`]; the peer answers with its own (and, if they differ, pulls from
    /// the asker as the asker pulls from it). Last, so earlier variants keep their encodings.
    Digest([u8; 32]),
}

/// A peer's answer.
#[derive(Debug, Encode, Decode)]
pub enum SyncResponse {
    /// The peer's latest configuration epoch, and `(log, length, hash of the entry at
    /// length - 1)` for every non-empty log.
    Tips(u32, Vec<(BureauCode, u64, [u8; 32])>),
    Entries(Vec<Vec<u8>>),
    Error(String),
    /// `Certificate::encode` of the latest certificate of each log the peer has one for.
    Certificates(Vec<Vec<u8>>),
    /// One answer per person asked, in order.
    Claims(Vec<ClaimAnswer>),
    /// `SignedUpdate::encode` of each configuration update asked for, in epoch order.
    Config(Vec<Vec<u8>>),
    /// The peer's [`digest`].
    Digest([u8; 32]),
}

/// Most configuration updates in one answer (each at most `CONFIG_UPDATE_BYTES_MAX`, 2 MiB, so
/// four fit a frame).
pub const CONFIG_UPDATES_PER_RESPONSE_MAX: usize = 3;

/// Encodes a message in the canonical configuration. Public so that tools and tests which
/// speak the sync protocol (e.g. a test's misbehaving member) use the node's own wire format.
pub fn encode<T: Encode>(v: &T) -> Vec<u8> {
    bincode::encode_to_vec(v, hukou_protocol::encoding::config()).expect("encodable")
}

/// Decodes a message, refusing one larger than a frame.
pub fn decode<T: Decode<()>>(bytes: &[u8]) -> Option<T> {
    if bytes.len() > FRAME_BYTES_MAX {
        return None;
    }
    hukou_protocol::encoding::decode_exact(bytes, "sync message").ok()
}

/// Maps peers to bureaus. A bureau may have several peer ids (one per key it had that was not
/// revoked: a node keeps its network identity across a planned key rotation until it
/// restarts); the current key's comes first. Replaced whole when the membership changes.
#[derive(Clone, Default)]
pub struct Peers {
    map: Arc<std::sync::RwLock<PeerMap>>,
}

#[derive(Default)]
struct PeerMap {
    by_peer: HashMap<PeerId, BureauCode>,
    by_bureau: HashMap<BureauCode, Vec<PeerId>>,
}

impl Peers {
    /// From `(peer id, bureau)` pairs, current keys first.
    pub fn new(pairs: Vec<(PeerId, BureauCode)>) -> Peers {
        let peers = Peers::default();
        peers.set(pairs);
        peers
    }

    /// Replaces the map (a new configuration epoch).
    pub fn set(&self, pairs: Vec<(PeerId, BureauCode)>) {
        let mut map = PeerMap::default();
        for (peer, bureau) in pairs {
            map.by_peer.insert(peer, bureau);
            map.by_bureau.entry(bureau).or_default().push(peer);
        }
        *self.map.write().expect("peers lock") = map;
    }

    /// The peer ids of a bureau, current key first.
    pub fn peers_of(&self, bureau: BureauCode) -> Vec<PeerId> {
        self.map
            .read()
            .expect("peers lock")
            .by_bureau
            .get(&bureau)
            .cloned()
            .unwrap_or_default()
    }

    /// The peer id to ask a bureau by: one it is connected by, else its current key's.
    pub fn peer(&self, bureau: BureauCode, connected: &[PeerId]) -> Option<PeerId> {
        let ids = self.peers_of(bureau);
        ids.iter()
            .find(|p| connected.contains(p))
            .or(ids.first())
            .copied()
    }

    pub fn bureau(&self, peer: &PeerId) -> Option<BureauCode> {
        self.map
            .read()
            .expect("peers lock")
            .by_peer
            .get(peer)
            .copied()
    }
}

/// Runs replication until the network's event stream ends.
pub async fn run(
    service: Service,
    net: NetHandle,
    mut events: mpsc::Receiver<NetEvent>,
    mut outbound: mpsc::Receiver<hukou_protocol::SignedEntry>,
    peers: Peers,
) {
    if let Err(e) = net.subscribe(TOPIC_ENTRIES).await {
        tracing::error!("cannot subscribe to {TOPIC_ENTRIES}: {e}");
    }
    let (jobs_tx, jobs_rx) = mpsc::channel::<Job>(JOBS_QUEUED_MAX);
    let jobs = Jobs(jobs_tx);
    let (ingest_tx, mut ingest_rx) = mpsc::channel::<(PeerId, Vec<Vec<u8>>)>(256);
    let (witness, witness_task) = witness::spawn(service.clone(), net.clone()).await;

    // Claims: a window's request for claims goes to the persons' arbiters.
    let (claim_tx, mut claim_rx) = mpsc::channel::<ClaimAsk>(CLAIM_ASKS_QUEUED_MAX);
    service.set_claimer(claim_tx);
    let claim_net = net.clone();
    let claim_peers = peers.clone();
    let claim_task = tokio::spawn(async move {
        while let Some(ask) = claim_rx.recv().await {
            let net = claim_net.clone();
            let peers = claim_peers.clone();
            tokio::spawn(async move {
                let answer = ask_claims(&net, &peers, ask.arbiter, ask.persons).await;
                let _ = ask.done.send(answer);
            });
        }
    });

    // Ingest: one task, so gossip batches are judged in arrival order.
    let ingest_service = service.clone();
    let ingest_jobs = jobs.clone();
    let ingest_task = tokio::spawn(async move {
        while let Some((via, batch)) = ingest_rx.recv().await {
            match ingest_service.ingest(batch).await {
                Ok(_) => {}
                Err(e) => {
                    tracing::error!("storage failed while replicating: {e}; stopping replication");
                    return;
                }
            }
            // Something waits for entries this node lacks: pull those logs from the neighbour
            // that forwarded the batch (on demand, after a short delay, if still missing).
            let waits = waits_of(&ingest_service).await;
            for (log, size) in waits {
                ingest_jobs.send(Job::Log {
                    log,
                    size,
                    peer: via,
                });
            }
        }
    });

    // Push.
    let push_net = net.clone();
    tokio::spawn(async move {
        while let Some(first) = outbound.recv().await {
            let mut batch = vec![first.encode()];
            let deadline = tokio::time::sleep(Duration::from_millis(PUSH_DELAY_MS));
            tokio::pin!(deadline);
            while batch.len() < PUSH_BATCH_ENTRIES {
                tokio::select! {
                    next = outbound.recv() => match next {
                        Some(e) => batch.push(e.encode()),
                        None => break,
                    },
                    _ = &mut deadline => break,
                }
            }
            // No peers subscribed yet is not an error: they will pull.
            let _ = push_net
                .publish(TOPIC_ENTRIES, encode(&Gossip::Entries(batch)))
                .await;
        }
    });

    // Pull.
    let pull_task = tokio::spawn(pull_loop(
        service.clone(),
        net.clone(),
        peers.clone(),
        witness.clone(),
        jobs_rx,
    ));

    // Events.
    while let Some(event) = events.recv().await {
        match event {
            NetEvent::Gossip {
                topic, bytes, via, ..
            } if topic == TOPIC_CHECKPOINTS => {
                // A checkpoint, cosignature or certificate of a size beyond what this node
                // holds: pull that log from the neighbour that forwarded it (if still missing
                // after the delay, by which time gossip has usually brought the entries).
                if let Some((log, size)) = checkpoint_size(&bytes)
                    && log != service.me()
                    && size > service.store().log_len(log)
                {
                    jobs.send(Job::Log {
                        log,
                        size,
                        peer: via,
                    });
                }
                if !witness.offer_gossip(bytes) {
                    tracing::debug!("witness queue full; dropping a checkpoint message");
                }
            }
            NetEvent::Gossip { bytes, via, .. } => match decode::<Gossip>(&bytes) {
                Some(Gossip::Entries(raw)) => {
                    if ingest_tx.try_send((via, raw)).is_err() {
                        // Overloaded: drop; the next entries of those logs wait for these,
                        // which makes an on-demand pull (and the digests catch the rest).
                        tracing::debug!("ingest queue full; dropping a gossip batch");
                    }
                }
                None => {
                    service
                        .counters()
                        .decode_errors
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            },
            NetEvent::Request { from, bytes, reply } => {
                // Answered on a task of its own, so a peer's pipelined range requests are read
                // from the store on every core (net.rs bounds the requests waiting).
                let service = service.clone();
                let asker = peers.bureau(&from);
                let jobs = jobs.clone();
                tokio::spawn(async move {
                    let response = answer(&service, asker, &bytes).await;
                    if let (Some(SyncRequest::Digest(theirs)), SyncResponse::Digest(ours)) =
                        (decode::<SyncRequest>(&bytes), &response)
                        && theirs != *ours
                    {
                        // The asker holds something this node does not, or the reverse: it
                        // pulls from us, and we from it.
                        jobs.send(Job::Sync(from));
                    }
                    let _ = reply.send(encode(&response));
                });
            }
            NetEvent::PeerConnected(peer) => {
                tracing::info!(bureau = ?peers.bureau(&peer), "peer connected");
                jobs.send(Job::Digest(peer));
            }
            NetEvent::PeerDisconnected(peer) => {
                tracing::info!(bureau = ?peers.bureau(&peer), "peer disconnected");
            }
        }
    }
    // The network stopped: stop what this function started, and wait until each task is gone,
    // so that none keeps the service (and so the store) alive after the node stopped.
    drop(ingest_tx);
    drop(witness);
    for task in [pull_task, ingest_task, witness_task, claim_task] {
        task.abort();
        let _ = task.await;
    }
}

/// Work for the pull task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Job {
    /// Exchange digests with this peer (it connected, or it is the anti-entropy timer's turn);
    /// on a mismatch, sync with it.
    Digest(PeerId),
    /// Sync with this peer ([`sync_with`]): its digest differed from ours.
    Sync(PeerId),
    /// Pull `log` up to at least `size` entries from `peer`, else from the log's author, if this
    /// node still lacks them after [`ON_DEMAND_DELAY_MS`]. `log` may be the configuration log
    /// (`size` is then an epoch).
    Log {
        log: BureauCode,
        size: u64,
        peer: PeerId,
    },
}

/// Sends jobs to the pull task without waiting: a full queue drops the job (the digests make up
/// for it).
#[derive(Clone)]
struct Jobs(mpsc::Sender<Job>);

impl Jobs {
    fn send(&self, job: Job) {
        if self.0.try_send(job).is_err() {
            tracing::debug!(?job, "pull queue full; dropping a job");
        }
    }
}

/// The positions (log, entries needed) that entries in the causal buffer wait for, one per log,
/// at most [`ON_DEMAND_LOGS_MAX`].
async fn waits_of(service: &Service) -> Vec<(BureauCode, u64)> {
    let state = service.state().await;
    if state.buffer.is_empty() {
        return Vec::new();
    }
    let mut needed: HashMap<BureauCode, u64> = HashMap::new();
    for ((log, seq), _) in state.buffer.waiting() {
        let size = needed.entry(*log).or_insert(0);
        *size = (*size).max(seq.0 + 1);
    }
    let mut out: Vec<_> = needed.into_iter().collect();
    out.sort();
    out.truncate(ON_DEMAND_LOGS_MAX);
    out
}

/// The log and size a message on the checkpoint topic names, if it decodes.
fn checkpoint_size(bytes: &[u8]) -> Option<(BureauCode, u64)> {
    use hukou_protocol::checkpoint::{Certificate, Checkpoint, SignedCheckpoint};
    let c = match decode::<witness::WitnessGossip>(bytes)? {
        witness::WitnessGossip::Checkpoint(raw) => SignedCheckpoint::decode(&raw).ok()?.checkpoint,
        witness::WitnessGossip::Cosignature { checkpoint, .. } => {
            Checkpoint::decode(&checkpoint).ok()?
        }
        witness::WitnessGossip::Certificate(raw) => Certificate::decode(&raw).ok()?.checkpoint,
    };
    Some((c.log, c.size))
}

/// The gossip message id hook (`NetConfig::message_id`): a certificate's id is its checkpoint,
/// so of the certificates many nodes build for one checkpoint from different cosignature
/// subsets only the first floods the network. Every other message gets its own id.
pub fn gossip_message_id(topic: &str, bytes: &[u8]) -> Option<Vec<u8>> {
    if topic != TOPIC_CHECKPOINTS {
        return None;
    }
    match decode::<witness::WitnessGossip>(bytes)? {
        witness::WitnessGossip::Certificate(raw) => {
            let c = hukou_protocol::checkpoint::Certificate::decode(&raw).ok()?;
            let mut id = b"certificate:".to_vec();
            id.extend(c.checkpoint.encode());
            Some(id)
        }
        _ => None,
    }
}

/// SHA-256 over the configuration epoch, every held log's (code, length, tip) and every held
/// log's latest certified size: two nodes with equal digests hold the same, and exchange
/// nothing more.
pub async fn digest(service: &Service) -> [u8; 32] {
    use sha2::{Digest as _, Sha256};
    let state = service.state().await;
    let mut h = Sha256::new();
    h.update(DIGEST_DOMAIN);
    h.update(state.ledger.epochs().latest().epoch.to_be_bytes());
    let mut logs: Vec<_> = state
        .ledger
        .logs()
        .filter(|(_, log)| !log.is_empty())
        .map(|(code, log)| (code, log.len(), log.tip().0))
        .collect();
    logs.sort_by_key(|l| l.0);
    for (code, len, tip) in logs {
        h.update(code.get().to_be_bytes());
        h.update(len.to_be_bytes());
        h.update(tip);
        h.update(state.final_size(code).to_be_bytes());
    }
    h.finalize().into()
}

/// The pull task: at start, pull rounds with every neighbour until this node's own log is
/// confirmed and it is not catching up; then only what [`Job`]s and the anti-entropy timer ask.
async fn pull_loop(
    service: Service,
    net: NetHandle,
    peers: Peers,
    witness: WitnessHandle,
    mut jobs: mpsc::Receiver<Job>,
) {
    let started = tokio::time::Instant::now();
    let mut catch_up = CatchUpTracker::default();
    let mut answered = false;
    // Start-up (and a new or wiped node's catch-up): ask every neighbour.
    loop {
        let round = pull_round(&service, &net, &peers, &witness, &mut catch_up).await;
        let confirmed = round.confirmed;
        answered |= round.answered;
        // The wait applies only while no peer has answered: once one has, the node waits
        // until a peer confirms its own log, however long pulling it back takes (a wiped
        // node's first round can outlast the wait), so it never signs at a position it
        // already signed.
        if service.is_recovering()
            && (confirmed
                || (!answered && started.elapsed() >= Duration::from_millis(RECOVERY_WAIT_MS)))
        {
            if !confirmed {
                tracing::warn!(
                    "no peer answered within {RECOVERY_WAIT_MS} ms; accepting writes on the local log"
                );
            }
            service.finish_recovery();
        }
        catch_up.end_round(&service).await;
        if round.behind && round.applied > 0 {
            continue; // still behind and getting somewhere: go on at once
        }
        // Done once the own log is confirmed and the node is not catching up. A peer that stays
        // ahead in a log this node cannot take (entries the rulebook refuses, a fork) does not
        // keep the rounds going: the digests find it again when something changes.
        if !service.is_recovering() && !catch_up.is_active() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(PULL_INTERVAL_MS)).await;
    }
    tracing::debug!("start-up pulls done; pulling on demand from now on");

    // Anti-entropy by digest, one neighbour at a time. Periodic because a lost gossip message
    // that nothing later refers to (the last entry or certificate of an idle log) would
    // otherwise stay lost. Cost: one request of 32 bytes each way per ANTI_ENTROPY_INTERVAL_MS
    // per node (and one answer for each neighbour's turn), i.e. a few µs per second.
    let mut anti_entropy = tokio::time::interval(Duration::from_millis(ANTI_ENTROPY_INTERVAL_MS));
    anti_entropy.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    anti_entropy.tick().await; // the first tick is immediate; the start-up rounds just ran
    let mut adoption_check = tokio::time::interval(Duration::from_millis(ADOPTION_CHECK_MS));
    adoption_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut turn = 0usize;
    let mut queued: VecDeque<Job> = VecDeque::new();
    // A new configuration epoch (submitted here, or pulled from a peer) is announced by a digest
    // exchange with every connected peer: their digests differ, they pull it, and announce it
    // in turn, so an update floods the overlay in a few round trips (only when one arrives).
    let mut epochs_seen = service.watch_epochs();
    epochs_seen.borrow_and_update();
    // On-demand log pulls: the size needed, whom to ask, and when.
    let mut logs: HashMap<BureauCode, (u64, PeerId, tokio::time::Instant)> = HashMap::new();
    loop {
        let next_log = logs.values().map(|(_, _, due)| *due).min();
        tokio::select! {
            job = jobs.recv() => match job {
                None => return,
                Some(Job::Log { log, size, peer }) => {
                    let due = tokio::time::Instant::now() + Duration::from_millis(ON_DEMAND_DELAY_MS);
                    let entry = logs.entry(log).or_insert((size, peer, due));
                    if size > entry.0 {
                        entry.0 = size;
                        entry.1 = peer;
                    }
                }
                Some(job) => {
                    if !queued.contains(&job) {
                        queued.push_back(job);
                    }
                }
            },
            changed = epochs_seen.changed() => {
                if changed.is_err() {
                    return;
                }
                epochs_seen.borrow_and_update();
                for peer in net.connected_peers() {
                    let job = Job::Digest(peer);
                    if !queued.contains(&job) {
                        queued.push_back(job);
                    }
                }
            }
            _ = anti_entropy.tick() => {
                let connected = neighbours_connected(&service, &net, &peers);
                if !connected.is_empty() {
                    turn = (turn + 1) % connected.len();
                    let job = Job::Digest(connected[turn]);
                    if !queued.contains(&job) {
                        queued.push_back(job);
                    }
                }
            }
            _ = adoption_check.tick() => {
                if !service.adoptions_wanted().await.is_empty() {
                    for peer in net.connected_peers() {
                        let Some(bureau) = peers.bureau(&peer) else {
                            continue;
                        };
                        if let Err(e) =
                            adopt_certified_forks(&service, &net, peer, bureau, &witness).await
                        {
                            tracing::error!("storage failed while moving to a certified fork: {e}");
                            return;
                        }
                        if service.adoptions_wanted().await.is_empty() {
                            break;
                        }
                    }
                }
            }
            () = sleep_until(next_log) => {
                let now = tokio::time::Instant::now();
                let due: Vec<BureauCode> = logs
                    .iter()
                    .filter(|(_, (_, _, at))| *at <= now)
                    .map(|(log, _)| *log)
                    .collect();
                for log in due {
                    if let Some((size, peer, _)) = logs.remove(&log)
                        && !pull_log_on_demand(&service, &net, &peers, log, size, peer).await
                    {
                        return;
                    }
                }
            }
        }
        while let Some(job) = queued.pop_front() {
            let ok = match job {
                Job::Digest(peer) => {
                    if digests_differ(&service, &net, peer).await {
                        let mut round = Round::default();
                        sync_with(
                            &service,
                            &net,
                            &peers,
                            peer,
                            &witness,
                            &mut catch_up,
                            &mut round,
                        )
                        .await
                    } else {
                        true
                    }
                }
                Job::Sync(peer) => {
                    let mut round = Round::default();
                    sync_with(
                        &service,
                        &net,
                        &peers,
                        peer,
                        &witness,
                        &mut catch_up,
                        &mut round,
                    )
                    .await
                }
                Job::Log { .. } => true,
            };
            if !ok {
                return;
            }
            catch_up.end_round(&service).await;
            // Jobs that came in meanwhile join the queue (duplicates of queued ones dropped).
            while let Ok(job) = jobs.try_recv() {
                match job {
                    Job::Log { log, size, peer } => {
                        let due =
                            tokio::time::Instant::now() + Duration::from_millis(ON_DEMAND_DELAY_MS);
                        let entry = logs.entry(log).or_insert((size, peer, due));
                        if size > entry.0 {
                            entry.0 = size;
                            entry.1 = peer;
                        }
                    }
                    job if !queued.contains(&job) => queued.push_back(job),
                    _ => {}
                }
            }
        }
    }
}

/// Sleeps until `at`, or forever when there is nothing to wait for.
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The connected peers that are this node's overlay neighbours (all connected peers if none
/// is: a node whose view of the membership lags still checks with someone).
fn neighbours_connected(service: &Service, net: &NetHandle, peers: &Peers) -> Vec<PeerId> {
    let neighbours = crate::run::overlay_of(&service.epochs(), service.me());
    let connected = net.connected_peers();
    let near: Vec<PeerId> = connected
        .iter()
        .filter(|p| peers.bureau(p).is_some_and(|b| neighbours.contains(&b)))
        .copied()
        .collect();
    if near.is_empty() { connected } else { near }
}

/// Sends our digest to `peer` and compares: true if they differ (or the peer did not answer
/// with a digest, e.g. an older node: then sync to be safe).
async fn digests_differ(service: &Service, net: &NetHandle, peer: PeerId) -> bool {
    let ours = digest(service).await;
    match net.request(peer, encode(&SyncRequest::Digest(ours))).await {
        Ok(bytes) => {
            !matches!(decode::<SyncResponse>(&bytes), Some(SyncResponse::Digest(theirs)) if theirs == ours)
        }
        Err(_) => false, // unreachable: the next turn or reconnection tries again
    }
}

/// Pulls `log` until it holds `size` entries (or `size` is an epoch of the configuration log)
/// from `peer`, then from the log's author if still short. False if storage failed.
async fn pull_log_on_demand(
    service: &Service,
    net: &NetHandle,
    peers: &Peers,
    log: BureauCode,
    size: u64,
    peer: PeerId,
) -> bool {
    if log == hukou_protocol::types::CONFIG_LOG {
        if u64::from(service.epochs().latest().epoch) < size
            && let Some(bureau) = peers.bureau(&peer)
        {
            pull_config(service, net, peer, bureau).await;
        }
        return true;
    }
    let mut askers = vec![peer];
    if let Some(author) = peers.peer(log, &net.connected_peers())
        && author != peer
        && log != service.me()
    {
        askers.push(author);
    }
    for asked in askers {
        let held = service.store().log_len(log);
        if held >= size {
            break;
        }
        let want = Want {
            log,
            next: held,
            until: size.max(held + BATCH_ENTRIES_MAX as u64),
            target: size,
        };
        let mut catch_up = CatchUpTracker::default();
        match pull_logs(service, net, asked, vec![want], &mut catch_up).await {
            Ok(applied) => {
                tracing::debug!(%log, applied, "pulled on demand");
            }
            Err(e) => {
                tracing::error!("storage failed while pulling {log} on demand: {e}");
                return false;
            }
        }
    }
    true
}

/// Pulls the configuration updates `peer` holds beyond ours and takes each in
/// (`Service::apply_config` judges it: signatures of the epoch before, chain, changes).
async fn pull_config(service: &Service, net: &NetHandle, peer: PeerId, bureau: BureauCode) {
    loop {
        let from = service.epochs().latest().epoch + 1;
        let Ok(bytes) = net
            .request(peer, encode(&SyncRequest::Config { from }))
            .await
        else {
            return;
        };
        let Some(SyncResponse::Config(updates)) = decode::<SyncResponse>(&bytes) else {
            return;
        };
        if updates.is_empty() {
            return;
        }
        for raw in updates {
            let update = match hukou_protocol::config::SignedUpdate::decode(&raw) {
                Ok(u) => u,
                Err(e) => {
                    tracing::warn!(
                        "{bureau} sent a configuration update that does not decode: {e}"
                    );
                    return;
                }
            };
            match service.apply_config(update).await {
                Ok(applied) => tracing::info!(
                    epoch = applied.epoch,
                    "took in configuration epoch {} from {bureau}",
                    applied.epoch
                ),
                Err(e) => {
                    tracing::warn!("{bureau} sent a configuration update refused here: {e}");
                    return;
                }
            }
        }
    }
}

/// Asks `arbiter` for claims on `persons`; its answers, one per person, or why not.
async fn ask_claims(
    net: &NetHandle,
    peers: &Peers,
    arbiter: BureauCode,
    persons: Vec<hukou_protocol::PersonTag>,
) -> Result<Vec<ClaimAnswer>, String> {
    let Some(peer) = peers.peer(arbiter, &net.connected_peers()) else {
        return Err(format!("{arbiter} is not a member this node can reach"));
    };
    let request = SyncRequest::Claims {
        persons: persons.iter().map(|p| p.0).collect(),
    };
    let bytes = net
        .request(peer, encode(&request))
        .await
        .map_err(|e| e.to_string())?;
    match decode::<SyncResponse>(&bytes) {
        Some(SyncResponse::Claims(answers)) => Ok(answers),
        Some(SyncResponse::Error(e)) => Err(e),
        _ => Err("it answered something other than claims".into()),
    }
}

async fn answer(service: &Service, asker: Option<BureauCode>, bytes: &[u8]) -> SyncResponse {
    match decode::<SyncRequest>(bytes) {
        Some(SyncRequest::Claims { persons }) => {
            let Some(claimant) = asker else {
                return SyncResponse::Error("claims are granted to members only".into());
            };
            if persons.len() > CLAIMS_PER_REQUEST_MAX {
                return SyncResponse::Error(format!(
                    "{} persons asked; at most {CLAIMS_PER_REQUEST_MAX} per request",
                    persons.len()
                ));
            }
            let persons: Vec<hukou_protocol::PersonTag> =
                persons.into_iter().map(hukou_protocol::PersonTag).collect();
            SyncResponse::Claims(service.grant_claims(claimant, &persons).await)
        }
        Some(SyncRequest::Tips) => {
            let state = service.state().await;
            let mut tips: Vec<_> = state
                .ledger
                .logs()
                .filter(|(_, log)| !log.is_empty())
                .map(|(code, log)| (code, log.len(), log.tip().0))
                .collect();
            tips.sort_by_key(|t| t.0);
            SyncResponse::Tips(state.ledger.epochs().latest().epoch, tips)
        }
        Some(SyncRequest::Config { from }) => {
            let epochs = service.epochs();
            let updates = epochs
                .updates()
                .iter()
                .filter(|u| u.update.epoch >= from)
                .take(CONFIG_UPDATES_PER_RESPONSE_MAX)
                .map(|u| u.encode())
                .collect();
            SyncResponse::Config(updates)
        }
        Some(SyncRequest::Range { log, from, max }) => {
            let max = (max as usize).min(BATCH_ENTRIES_MAX);
            match service.store().raw_range(log, from, max) {
                Ok(raw) => SyncResponse::Entries(raw),
                Err(e) => SyncResponse::Error(e.to_string()),
            }
        }
        Some(SyncRequest::Certificates) => {
            let logs: Vec<BureauCode> = service
                .membership()
                .await
                .members()
                .map(|m| m.code)
                .collect();
            let mut certificates = Vec::new();
            for log in logs {
                match service.store().latest_certificate(log) {
                    Ok(Some((_, raw))) => certificates.push(raw),
                    Ok(None) => {}
                    Err(e) => return SyncResponse::Error(e.to_string()),
                }
            }
            SyncResponse::Certificates(certificates)
        }
        Some(SyncRequest::Digest(_)) => SyncResponse::Digest(digest(service).await),
        None => SyncResponse::Error("request did not decode".into()),
    }
}

/// What one pull round found.
#[derive(Default)]
struct Round {
    /// Some peer confirmed that this node holds at least as much of its own log as it does.
    confirmed: bool,
    /// Some log is still shorter here than a peer reported.
    behind: bool,
    /// Some peer answered with the lengths of its logs.
    answered: bool,
    /// Entries applied during the round.
    applied: usize,
}

/// One pull round with every connected peer (start-up and catch-up; afterwards digests and
/// on-demand pulls decide whom to pull from).
async fn pull_round(
    service: &Service,
    net: &NetHandle,
    peers: &Peers,
    witness: &WitnessHandle,
    catch_up: &mut CatchUpTracker,
) -> Round {
    let mut round = Round::default();
    for peer in net.connected_peers() {
        if !sync_with(service, net, peers, peer, witness, catch_up, &mut round).await {
            return Round {
                answered: round.answered,
                ..Round::default()
            };
        }
    }
    round
}

/// Pulls from `peer` whatever it holds beyond this node: its configuration epochs, the entries
/// of every log where it is ahead (its `Tips`), a check of every log where it may hold another
/// history, its latest certificates, and the certified fork of any log this node holds a losing
/// fork of. Adds what it found to `round`. False if storage failed.
async fn sync_with(
    service: &Service,
    net: &NetHandle,
    peers: &Peers,
    peer: PeerId,
    witness: &WitnessHandle,
    catch_up: &mut CatchUpTracker,
    round: &mut Round,
) -> bool {
    let me = service.me();
    let Some(bureau) = peers.bureau(&peer) else {
        return true;
    };
    let Ok(bytes) = net.request(peer, encode(&SyncRequest::Tips)).await else {
        return true;
    };
    let Some(SyncResponse::Tips(their_epoch, tips)) = decode::<SyncResponse>(&bytes) else {
        return true;
    };
    round.answered = true;
    // The configuration first: entries of a newer epoch wait for it.
    if their_epoch > service.epochs().latest().epoch {
        pull_config(service, net, peer, bureau).await;
    }
    let wants: Vec<Want> = {
        let mut state = service.state().await;
        for (log, len, _) in &tips {
            let known = state.peer_lengths.entry(*log).or_insert(0);
            *known = (*known).max(*len);
        }
        tips.iter()
            .filter_map(|&(log, target, _)| {
                let held = state.ledger.log_len(log);
                (held < target).then(|| Want {
                    log,
                    next: held,
                    until: target
                        .min(held + (PULL_BATCHES_PER_ROUND_MAX * BATCH_ENTRIES_MAX) as u64),
                    target,
                })
            })
            .collect()
    };
    if !wants.is_empty() {
        catch_up.begin_if_behind(service, bureau).await;
        match pull_logs(service, net, peer, wants, catch_up).await {
            Ok(applied) => round.applied += applied,
            Err(e) => {
                tracing::error!("storage failed while pulling from {bureau}: {e}");
                return false;
            }
        }
    }
    let mut own_ok = true;
    // Logs where this peer may hold a different history than ours: same length but another
    // tip, or longer but what it has could not be appended here.
    let mut suspect = Vec::new();
    {
        let state = service.state().await;
        for &(log, their_len, their_tip) in &tips {
            let held = state.ledger.log(log).map_or(0, |l| l.len());
            let tip = state.ledger.log(log).map(|l| l.tip().0);
            if held < their_len {
                round.behind = true;
                if log == me {
                    own_ok = false;
                }
            }
            if held > 0 && (held < their_len || (held == their_len && tip != Some(their_tip))) {
                suspect.push((log, held - 1));
            }
        }
    }
    round.confirmed |= own_ok;
    // A fork shown to different peers by pulls alone would otherwise stay unnoticed: fetch
    // the peer's entry at our last position. If it differs from ours, the author signed two
    // entries at one position and ingesting it records the fraud proof (every honest node
    // compares with every peer, so each finds it); if it is ours, it counts as a duplicate.
    for (log, seq) in suspect {
        let request = SyncRequest::Range {
            log,
            from: seq,
            max: 1,
        };
        if let Ok(bytes) = net.request(peer, encode(&request)).await
            && let Some(SyncResponse::Entries(raw)) = decode::<SyncResponse>(&bytes)
            && !raw.is_empty()
            && let Err(e) = service.ingest(raw).await
        {
            tracing::error!("storage failed while checking {log} against {bureau}: {e}");
        }
    }
    // After the entries, so the certificates can be checked against what was just pulled.
    if let Ok(bytes) = net.request(peer, encode(&SyncRequest::Certificates)).await
        && let Some(SyncResponse::Certificates(raw)) = decode::<SyncResponse>(&bytes)
    {
        witness.offer_certificates(raw);
    }
    if let Err(e) = adopt_certified_forks(service, net, peer, bureau, witness).await {
        tracing::error!("storage failed while moving to a certified fork: {e}");
        return false;
    }
    true
}

/// For each log whose replica a certificate showed to be a losing fork, fetches the certified
/// entries from `peer` and moves the replica to them (`Service::adopt_certified_fork`, which
/// checks them against the certificate). Starts one entry before where the replica stops
/// agreeing with the certificate's size, and goes back twice as far each time the offer does
/// not chain onto the replica (it diverged earlier), at most [`ADOPTION_ENTRIES_MAX`] entries.
async fn adopt_certified_forks(
    service: &Service,
    net: &NetHandle,
    peer: PeerId,
    bureau: BureauCode,
    witness: &WitnessHandle,
) -> Result<(), crate::store::StoreError> {
    for certificate in service.adoptions_wanted().await {
        let c = certificate.checkpoint;
        let held = service.state().await.ledger.log_len(c.log);
        let end = held.min(c.size);
        let mut back = 1u64;
        loop {
            let from = end.saturating_sub(back);
            if c.size - from > ADOPTION_ENTRIES_MAX as u64 {
                // Either the replica diverged that far back, or this peer's offers never meet
                // it (it lies): other peers are tried next round, a lying one costs requests.
                tracing::error!(log = %c.log,
                    "the certified fork of {} offered by {bureau} does not meet this node's replica within \
                     {ADOPTION_ENTRIES_MAX} entries of its size {}; keeping the losing fork for now", c.log, c.size);
                break;
            }
            let Some(raw) = fetch_certified(net, peer, c.log, from, c.size).await else {
                break; // the peer does not hold it all (yet)
            };
            let offered = service.verify_received(raw).await;
            match service
                .adopt_certified_fork(&certificate, from, offered)
                .await
            {
                Ok(adopted) => {
                    tracing::info!(log = %c.log, from = %bureau,
                        "moved to the certified fork of {} with entries from {bureau}: {adopted:?}", c.log);
                    witness.offer_certificates(vec![certificate.encode()]);
                    break;
                }
                Err(AdoptError::Offer(e))
                    if matches!(*e, AdoptionError::AnchorMismatch { .. }) && from > 0 =>
                {
                    back = back.saturating_mul(2);
                }
                Err(AdoptError::Store(e)) => return Err(*e),
                Err(e) => {
                    tracing::warn!(log = %c.log, rule = e.name(),
                        "{bureau} did not offer the certified fork of {}: {e}", c.log);
                    break;
                }
            }
        }
    }
    Ok(())
}

/// The entries `from..until` of `log` from `peer`, in batches; `None` if it answers short.
async fn fetch_certified(
    net: &NetHandle,
    peer: PeerId,
    log: BureauCode,
    from: u64,
    until: u64,
) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::with_capacity((until - from) as usize);
    let mut next = from;
    while next < until {
        let max = (until - next).min(BATCH_ENTRIES_MAX as u64);
        let request = SyncRequest::Range {
            log,
            from: next,
            max: max as u32,
        };
        let bytes = net.request(peer, encode(&request)).await.ok()?;
        let Some(SyncResponse::Entries(raw)) = decode::<SyncResponse>(&bytes) else {
            return None;
        };
        if raw.len() as u64 != max {
            return None;
        }
        next += max;
        out.extend(raw);
    }
    Some(out)
}

/// A log to pull from one peer in this round.
struct Want {
    log: BureauCode,
    /// Next seq to ask for.
    next: u64,
    /// Ask for nothing at or beyond this seq this round.
    until: u64,
    /// The log's length at the peer.
    target: u64,
}

impl Want {
    /// The share of the peer's log requested so far.
    fn share(&self) -> f64 {
        self.next as f64 / self.target.max(1) as f64
    }
}

/// Pulls `wants` from `peer`: range requests pipelined ([`fetch_ranges`]), each step of
/// received entries verified while earlier steps are being written. Returns the entries
/// applied (all durable on return).
async fn pull_logs(
    service: &Service,
    net: &NetHandle,
    peer: PeerId,
    wants: Vec<Want>,
    catch_up: &mut CatchUpTracker,
) -> Result<usize, crate::store::StoreError> {
    let (tx, mut rx) = mpsc::channel(PULL_REQUESTS_IN_FLIGHT);
    let fetcher = tokio::spawn(fetch_ranges(net.clone(), peer, wants, tx));
    let mut commits = VecDeque::new();
    let mut applied_total = 0;
    let mut waiting_before = service.state().await.buffer.len();
    let outcome = async {
        while let Some((mut log, mut raw)) = rx.recv().await {
            while raw.len() < PULL_STEP_ENTRIES {
                match rx.try_recv() {
                    Ok((next_log, more)) => {
                        log = next_log;
                        raw.extend(more);
                    }
                    Err(_) => break,
                }
            }
            let verified = service.verify_received(raw).await;
            let applied = service.apply_verified(verified).await?;
            let (count, waiting) = (applied.applied, applied.waiting);
            commits.push_back(applied);
            while commits.len() > PULL_COMMITS_IN_FLIGHT {
                if let Some(oldest) = commits.pop_front() {
                    service.settle(oldest).await?;
                }
            }
            applied_total += count;
            catch_up.pulled(service, log, count as u64).await;
            if count == 0 && waiting <= waiting_before {
                // Nothing new applied or waiting: the peer sends what this node holds or what
                // the rulebook refuses. Ask again next round.
                break;
            }
            waiting_before = waiting;
        }
        Ok(())
    }
    .await;
    fetcher.abort();
    for applied in commits {
        service.settle(applied).await?;
    }
    outcome.map(|()| applied_total)
}

/// Sends range requests for `wants` to `peer`, [`PULL_REQUESTS_IN_FLIGHT`] at a time, always
/// for the log requested least far, and forwards the entries received in request order. A log
/// whose answer is short (the peer holds less durably than it reported, or failed) is asked
/// nothing more this round.
async fn fetch_ranges(
    net: NetHandle,
    peer: PeerId,
    mut wants: Vec<Want>,
    received: mpsc::Sender<(BureauCode, Vec<Vec<u8>>)>,
) {
    let mut in_flight = FuturesOrdered::new();
    loop {
        while in_flight.len() < PULL_REQUESTS_IN_FLIGHT {
            let Some(want) = wants
                .iter_mut()
                .filter(|w| w.next < w.until)
                .min_by(|a, b| a.share().total_cmp(&b.share()))
            else {
                break;
            };
            let max = (want.until - want.next).min(BATCH_ENTRIES_MAX as u64);
            let request = encode(&SyncRequest::Range {
                log: want.log,
                from: want.next,
                max: max as u32,
            });
            want.next += max;
            let (net, log) = (net.clone(), want.log);
            in_flight
                .push_back(async move { (log, max as usize, net.request(peer, request).await) });
        }
        let Some((log, asked, answer)) = in_flight.next().await else {
            return;
        };
        let raw = match answer.ok().and_then(|bytes| decode::<SyncResponse>(&bytes)) {
            Some(SyncResponse::Entries(raw)) => raw,
            _ => Vec::new(),
        };
        if raw.len() < asked
            && let Some(want) = wants.iter_mut().find(|w| w.log == log)
        {
            want.until = want.next;
        }
        if !raw.is_empty() && received.send((log, raw)).await.is_err() {
            return;
        }
    }
}

/// Entries peers hold that this node does not (from the longest length any peer reported).
async fn missing(service: &Service) -> u64 {
    let state = service.state().await;
    state
        .peer_lengths
        .iter()
        .map(|(log, len)| len.saturating_sub(state.ledger.log_len(*log)))
        .sum()
}

/// Follows a catch-up across pull rounds: starts when at least [`CATCH_UP_ENTRIES_MIN`] entries
/// are missing, logs progress at most once per [`CATCH_UP_REPORT_MS`], publishes it to the
/// service (`/healthz`), and ends with a summary once the node is no longer that far behind.
#[derive(Default)]
struct CatchUpTracker {
    /// When the current catch-up began; `None` when not catching up.
    began: Option<Instant>,
    pulled: u64,
    last_report: Option<Instant>,
    pulled_at_last_report: u64,
}

impl CatchUpTracker {
    fn is_active(&self) -> bool {
        self.began.is_some()
    }

    async fn begin_if_behind(&mut self, service: &Service, from: BureauCode) {
        if self.began.is_some() {
            return;
        }
        let remaining = missing(service).await;
        if remaining < CATCH_UP_ENTRIES_MIN {
            return;
        }
        let now = Instant::now();
        self.began = Some(now);
        self.pulled = 0;
        self.last_report = Some(now);
        self.pulled_at_last_report = 0;
        tracing::info!("catch-up: {remaining} entries behind; pulling from {from}");
        service.set_catch_up(CatchUp {
            active: true,
            remaining,
            ..CatchUp::default()
        });
    }

    async fn pulled(&mut self, service: &Service, log: BureauCode, count: u64) {
        let Some(began) = self.began else {
            return;
        };
        self.pulled += count;
        let now = Instant::now();
        let since = self.last_report.map_or(Duration::ZERO, |t| now - t);
        if since < Duration::from_millis(CATCH_UP_REPORT_MS) {
            return;
        }
        let rate = ((self.pulled - self.pulled_at_last_report) as f64 / since.as_secs_f64()) as u64;
        self.last_report = Some(now);
        self.pulled_at_last_report = self.pulled;
        let (held, target, remaining) = {
            let state = service.state().await;
            let held = state.ledger.log_len(log);
            let target = state.peer_lengths.get(&log).copied().unwrap_or(held);
            let remaining: u64 = state
                .peer_lengths
                .iter()
                .map(|(l, len)| len.saturating_sub(state.ledger.log_len(*l)))
                .sum();
            (held, target, remaining)
        };
        tracing::info!(
            "catch-up: log {log} {held}/{target} entries, {rate} entries/s ({remaining} entries to go over all logs)"
        );
        service.set_catch_up(CatchUp {
            active: true,
            log: Some(log),
            log_held: held,
            log_target: target,
            remaining,
            pulled: self.pulled,
            entries_per_s: rate,
            elapsed_s: (now - began).as_secs_f64(),
        });
    }

    async fn end_round(&mut self, service: &Service) {
        let Some(began) = self.began else {
            return;
        };
        let remaining = missing(service).await;
        if remaining >= CATCH_UP_ENTRIES_MIN {
            return;
        }
        let elapsed = began.elapsed();
        let rate = (self.pulled as f64 / elapsed.as_secs_f64().max(1e-3)) as u64;
        tracing::info!(
            "catch-up: done, {} entries in {:.1} s, {rate} entries/s",
            self.pulled,
            elapsed.as_secs_f64()
        );
        service.set_catch_up(CatchUp {
            active: false,
            remaining,
            pulled: self.pulled,
            entries_per_s: rate,
            elapsed_s: elapsed.as_secs_f64(),
            ..CatchUp::default()
        });
        *self = CatchUpTracker::default();
    }
}
