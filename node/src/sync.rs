//! Replication over the private network: push new entries by gossip, pull what is missing by
//! request-response, and answer peers' pulls.
//!
//! - Push: entries this node wrote go out on [`TOPIC_ENTRIES`] as soon as they are durable, in
//!   batches (up to [`PUSH_BATCH_ENTRIES`] or [`PUSH_DELAY_MS`]).
//! - Pull (anti-entropy): every [`PULL_INTERVAL_MS`], and when a peer connects, the node asks
//!   each connected peer for the lengths of every log it holds, and pulls every log where the
//!   peer is ahead, from its own length, in batches of `BATCH_ENTRIES_MAX`. Gossip is therefore
//!   only an accelerator: anything lost or dropped is pulled.
//! - Every received entry goes through `Service::ingest`, i.e. the rulebook, before it is stored.
//! - Checkpoints, cosignatures and certificates travel on `witness::TOPIC_CHECKPOINTS` and go to
//!   the witness task (`witness`), which this module starts. Each pull round also asks every
//!   peer for its latest certificate of each log ([`SyncRequest::Certificates`]), so a node that
//!   missed the gossip still learns what is final.
//! - When the network's event stream ends (shutdown), every task started here is stopped before
//!   [`run`] returns, so nothing keeps the store open.
//!
//! Messages are bincode in the canonical configuration; a message that does not decode is
//! counted and dropped.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bincode::{Decode, Encode};
use hukou_protocol::BureauCode;
use hukou_protocol::limits::{BATCH_ENTRIES_MAX, FRAME_BYTES_MAX};
use libp2p::PeerId;
use tokio::sync::{Notify, mpsc};

use crate::net::{NetEvent, NetHandle};
use crate::service::Service;
use crate::witness::{self, TOPIC_CHECKPOINTS, WitnessHandle};

/// Gossip topic for new entries.
pub const TOPIC_ENTRIES: &str = "hukou/entries/1";
/// Most entries in one gossip message.
pub const PUSH_BATCH_ENTRIES: usize = 512;
/// Longest a new entry waits to be batched before it is pushed.
pub const PUSH_DELAY_MS: u64 = 5;
/// Anti-entropy period.
pub const PULL_INTERVAL_MS: u64 = 500;
/// How long a starting node waits for a peer to confirm its own log before it accepts writes
/// anyway (the first node of a new network has nobody to ask).
pub const RECOVERY_WAIT_MS: u64 = 5_000;
/// Most batches pulled from one log of one peer in one round, so one huge log cannot starve the
/// others; the next round continues.
const PULL_BATCHES_PER_ROUND_MAX: usize = 64;

/// A gossip message.
#[derive(Debug, Encode, Decode)]
pub enum Gossip {
    /// Wire-encoded signed entries.
    Entries(Vec<Vec<u8>>),
}

/// A request to a peer.
#[derive(Debug, Encode, Decode)]
pub enum SyncRequest {
    /// The length of every log the peer holds.
    Tips,
    /// Entries of `log` from seq `from`, at most `max`.
    Range {
        log: BureauCode,
        from: u64,
        max: u32,
    },
    /// The latest certificate the peer holds of each log.
    Certificates,
}

/// A peer's answer.
#[derive(Debug, Encode, Decode)]
pub enum SyncResponse {
    Tips(Vec<(BureauCode, u64)>),
    Entries(Vec<Vec<u8>>),
    Error(String),
    /// `Certificate::encode` of the latest certificate of each log the peer has one for.
    Certificates(Vec<Vec<u8>>),
}

/// Encodes a message in the canonical configuration.
pub(crate) fn encode<T: Encode>(v: &T) -> Vec<u8> {
    bincode::encode_to_vec(v, hukou_protocol::encoding::config()).expect("encodable")
}

/// Decodes a message, refusing one larger than a frame.
pub(crate) fn decode<T: Decode<()>>(bytes: &[u8]) -> Option<T> {
    if bytes.len() > FRAME_BYTES_MAX {
        return None;
    }
    hukou_protocol::encoding::decode_exact(bytes, "sync message").ok()
}

/// Maps peers to bureaus.
#[derive(Clone)]
pub struct Peers {
    by_peer: Arc<HashMap<PeerId, BureauCode>>,
}

impl Peers {
    pub fn new(map: HashMap<PeerId, BureauCode>) -> Peers {
        Peers {
            by_peer: Arc::new(map),
        }
    }
    pub fn bureau(&self, peer: &PeerId) -> Option<BureauCode> {
        self.by_peer.get(peer).copied()
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
    let poke = Arc::new(Notify::new());
    let (ingest_tx, mut ingest_rx) = mpsc::channel::<Vec<Vec<u8>>>(256);
    let (witness, witness_task) = witness::spawn(service.clone(), net.clone()).await;

    // Ingest: one task, so gossip batches are judged in arrival order.
    let ingest_service = service.clone();
    let ingest_poke = poke.clone();
    let ingest_task = tokio::spawn(async move {
        while let Some(batch) = ingest_rx.recv().await {
            match ingest_service.ingest(batch).await {
                Ok(_) => {}
                Err(e) => {
                    tracing::error!("storage failed while replicating: {e}; stopping replication");
                    return;
                }
            }
            if !ingest_service.state().await.buffer.is_empty() {
                // Something waits for entries we lack: pull soon.
                ingest_poke.notify_one();
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
    let pull_service = service.clone();
    let pull_net = net.clone();
    let pull_peers = peers.clone();
    let pull_poke = poke.clone();
    let pull_witness = witness.clone();
    let pull_task = tokio::spawn(async move {
        let started = tokio::time::Instant::now();
        loop {
            let confirmed = pull_round(&pull_service, &pull_net, &pull_peers, &pull_witness).await;
            if pull_service.is_recovering()
                && (confirmed || started.elapsed() >= Duration::from_millis(RECOVERY_WAIT_MS))
            {
                if !confirmed {
                    tracing::warn!(
                        "no peer answered within {RECOVERY_WAIT_MS} ms; accepting writes on the local log"
                    );
                }
                pull_service.finish_recovery();
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(PULL_INTERVAL_MS)) => {}
                _ = pull_poke.notified() => {}
            }
        }
    });

    // Events.
    while let Some(event) = events.recv().await {
        match event {
            NetEvent::Gossip { topic, bytes, .. } if topic == TOPIC_CHECKPOINTS => {
                if !witness.offer_gossip(bytes) {
                    tracing::debug!("witness queue full; dropping a checkpoint message");
                }
            }
            NetEvent::Gossip { bytes, .. } => match decode::<Gossip>(&bytes) {
                Some(Gossip::Entries(raw)) => {
                    if ingest_tx.try_send(raw).is_err() {
                        // Overloaded: drop; anti-entropy pulls the entries later.
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
            NetEvent::Request { bytes, reply, .. } => {
                let response = answer(&service, &bytes).await;
                let _ = reply.send(encode(&response));
            }
            NetEvent::PeerConnected(peer) => {
                tracing::info!(bureau = ?peers.bureau(&peer), "peer connected");
                poke.notify_one();
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
    for task in [pull_task, ingest_task, witness_task] {
        task.abort();
        let _ = task.await;
    }
}

async fn answer(service: &Service, bytes: &[u8]) -> SyncResponse {
    match decode::<SyncRequest>(bytes) {
        Some(SyncRequest::Tips) => {
            let state = service.state().await;
            let tips = state
                .ledger
                .membership()
                .members()
                .map(|m| (m.code, state.ledger.log_len(m.code)))
                .filter(|(_, len)| *len > 0)
                .collect();
            SyncResponse::Tips(tips)
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
        None => SyncResponse::Error("request did not decode".into()),
    }
}

/// One anti-entropy round with every connected peer. Returns whether some peer confirmed that
/// this node holds at least as much of its own log as that peer does.
async fn pull_round(
    service: &Service,
    net: &NetHandle,
    peers: &Peers,
    witness: &WitnessHandle,
) -> bool {
    let me = service.me();
    let mut confirmed = false;
    for peer in net.connected_peers() {
        let Some(bureau) = peers.bureau(&peer) else {
            continue;
        };
        let Ok(bytes) = net.request(peer, encode(&SyncRequest::Tips)).await else {
            continue;
        };
        let Some(SyncResponse::Tips(tips)) = decode::<SyncResponse>(&bytes) else {
            continue;
        };
        {
            let mut state = service.state().await;
            for (log, len) in &tips {
                let known = state.peer_lengths.entry(*log).or_insert(0);
                *known = (*known).max(*len);
            }
        }
        let mut own_ok = true;
        for (log, their_len) in tips {
            for _ in 0..PULL_BATCHES_PER_ROUND_MAX {
                let ours = service.state().await.ledger.log_len(log);
                if ours >= their_len {
                    break;
                }
                let request = SyncRequest::Range {
                    log,
                    from: ours,
                    max: BATCH_ENTRIES_MAX as u32,
                };
                let Ok(bytes) = net.request(peer, encode(&request)).await else {
                    break;
                };
                let Some(SyncResponse::Entries(raw)) = decode::<SyncResponse>(&bytes) else {
                    break;
                };
                if raw.is_empty() {
                    break;
                }
                match service.ingest(raw).await {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) => {
                        tracing::error!("storage failed while pulling from {bureau}: {e}");
                        return false;
                    }
                }
            }
            if log == me && service.state().await.ledger.log_len(me) < their_len {
                own_ok = false;
            }
        }
        confirmed |= own_ok;
        // After the entries, so the certificates can be checked against what was just pulled.
        if let Ok(bytes) = net.request(peer, encode(&SyncRequest::Certificates)).await
            && let Some(SyncResponse::Certificates(raw)) = decode::<SyncResponse>(&bytes)
        {
            witness.offer_certificates(raw);
        }
    }
    confirmed
}
