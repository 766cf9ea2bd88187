//! The private libp2p network between member bureaus (DESIGN.md "Replication", "Keys and
//! membership").
//!
//! # Job
//!
//! Carry opaque byte payloads between members, and nothing else: this module knows nothing of
//! entries, checkpoints or the rulebook. The node defines its own messages and gets two
//! primitives:
//!
//! - **gossip** (gossipsub): [`NetHandle::publish`] pushes bytes on a topic to every member
//!   subscribed to it ([`NetHandle::subscribe`]); they arrive as [`NetEvent::Gossip`].
//! - **request/response** (`/hukou/sync/1`): [`NetHandle::request`] sends bytes to one member and
//!   waits for its answer; the member sees a [`NetEvent::Request`] and answers through the
//!   oneshot it carries.
//!
//! [`spawn`] binds the listener, starts one task that owns the swarm, and returns a cloneable
//! [`NetHandle`] plus the bounded stream of [`NetEvent`]s. The task stops when the `shutdown`
//! future completes; the event receiver then yields `None`, after the listener has been closed
//! (so a caller can restart on the same port once it sees `None`).
//!
//! # Transport
//!
//! TCP → pnet (XSalsa20 with the network's pre-shared key) → multistream-select V1 → Noise (XX,
//! authenticating the bureau's ed25519 key) → Yamux, the whole upgrade bounded by
//! [`HANDSHAKE_TIMEOUT`]. A machine without the network key cannot get past pnet: its bytes
//! decrypt to garbage and the upgrade fails.
//!
//! # Invariants
//!
//! 1. Only members hold established connections. The allow list holds exactly the member peer
//!    ids (minus our own), and it is the first behaviour, so a machine that has the network key
//!    but is not in the genesis is disconnected right after Noise proves who it is, before any
//!    other behaviour sees the connection. We dial only members.
//! 2. Peer ids are derived from the genesis ed25519 public keys
//!    ([`peer_id_from_ed25519_public`]), and our own from our bureau key
//!    ([`keypair_from_ed25519_secret`]), so one key identifies a bureau in the ledger and on the
//!    wire.
//! 3. Gossip envelopes name their author's peer id but are not signed again
//!    (`MessageAuthenticity::Author`, `ValidationMode::Permissive`): everything gossiped —
//!    entries, checkpoints, cosignatures, certificates — is already signed with a bureau key and
//!    checked by the rulebook or the witness before it counts, and only members can connect
//!    (invariant 1), so only members can relay. Signing and verifying every envelope as well cost
//!    a few per cent of the CPU of a transfer. [`NetEvent::Gossip::from`] is the claimed author,
//!    for logs only; gossip claiming a non-member author is dropped.
//! 4. Nothing grows without bound: every channel, queue and table has a named limit below, and a
//!    frame's declared length is checked against [`FRAME_BYTES_MAX`] before anything is
//!    allocated for it ([`read_frame`]).
//! 5. A slow consumer never stalls the network: when the event queue is full, events are
//!    dropped and counted ([`NetStats::events_dropped`]). A dropped request is answered with an
//!    error; dropped gossip is recovered by the node's pulls.
//! 6. A request always ends: with the answer, with an error when the peer drops the reply or
//!    the connection, or after [`REQUEST_TIMEOUT`].
//!
//! # Reconnection and the overlay
//!
//! The node says which members are its overlay neighbours ([`PeerRole`], computed by
//! `crate::overlay`): connections to those are kept up, connections to the others are made on
//! demand (a [`NetHandle::request`] dials) and closed after [`ON_DEMAND_IDLE`] without a request
//! either way. Every [`REDIAL_TICK`] the task dials each neighbour that is neither connected nor
//! being dialled and whose backoff has expired; the backoff doubles from [`REDIAL_BACKOFF_MIN`]
//! to [`REDIAL_BACKOFF_MAX`] and resets on connection. Of two neighbours the one that does not
//! dial first ([`PeerRole::Neighbour`]`{ dial_first: false }`) dials only if no connection came
//! within [`NEIGHBOUR_ANSWER_GRACE`], so a pair normally holds one connection, and a pair whose
//! views of the membership differ for a while still connects. Ping closes connections whose peer
//! stopped answering, so a bureau whose machine lost power is redialled too. Established incoming
//! connections are capped at [`INCOMING_CONNECTIONS_MAX`], independently of the network's size.
//!
//! # Addresses
//!
//! A member is dialled at the addresses the node was given for it ([`NetMember::addresses`]: the
//! genesis, or the operator's override of it, e.g. a NAT or a proxy). Those are authoritative:
//! the addresses a member announces through identify (its own listen addresses, which behind a
//! NAT or a proxy are not where others must dial) are used only for a member that was given none,
//! at most [`LEARNT_ADDRESSES_MAX`] of them. Identify's own address cache is off, so no behaviour
//! learns an address behind the node's back.

use std::{
    collections::{BTreeSet, HashMap},
    future::Future,
    io,
    net::SocketAddr,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use hukou_protocol::limits::FRAME_BYTES_MAX;
use libp2p::{
    Multiaddr, PeerId, StreamProtocol, Swarm, Transport, allow_block_list, connection_limits,
    core::upgrade::Version,
    futures::{
        AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, FutureExt, StreamExt,
        future::BoxFuture, stream::FuturesUnordered,
    },
    gossipsub, identify, identity,
    multiaddr::Protocol,
    noise, ping,
    pnet::{PnetConfig, PreSharedKey},
    request_response::{self, OutboundRequestId, ProtocolSupport, ResponseChannel},
    swarm::{
        NetworkBehaviour, SwarmEvent,
        dial_opts::{DialOpts, PeerCondition},
    },
    tcp, yamux,
};
use tokio::{
    sync::{mpsc, oneshot},
    time::{Instant, MissedTickBehavior},
};
use tracing::{debug, info, warn};

// ---------------------------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------------------------

/// Request/response protocol name. Versioned so a future wire change can run beside this one.
pub const SYNC_PROTOCOL: &str = "/hukou/sync/1";

/// Identify protocol version: members announce it so a mismatched build is visible in logs.
const IDENTIFY_PROTOCOL: &str = "/hukou/id/1";

/// Bytes of a frame's length prefix (u32, big-endian).
pub const FRAME_HEADER_BYTES: usize = 4;

/// Most bytes reserved up front for a frame body; beyond this the buffer grows only as bytes
/// actually arrive, so a peer that declares 8 MiB and sends 10 bytes costs 64 KiB, not 8 MiB.
const FRAME_PREALLOCATION_BYTES_MAX: usize = 64 * 1024;

/// Longest the whole connection upgrade (pnet, multistream-select, Noise, Yamux) may take. On a
/// LAN or the private WAN between bureaus it takes milliseconds; 5 s tolerates a congested link
/// and frees the slot of a stuck handshake (a wrong network key can leave both sides waiting for
/// bytes that will never parse) quickly.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest a request may wait for its response, transfer of both frames included. A full
/// [`FRAME_BYTES_MAX`] frame takes under 7 s at 10 Mbit/s; 30 s leaves room for a slow link and
/// for the answering node to read its store.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How much longer than [`REQUEST_TIMEOUT`] [`NetHandle::request`] waits before giving up by
/// itself, so libp2p's own timeout (which also cleans up its state) normally fires first.
const REQUEST_TIMEOUT_MARGIN: Duration = Duration::from_secs(2);

/// Connections to one peer at once. Two, because two members that dial each other at the same
/// moment both succeed; a third is a bug or an attack.
const CONNECTIONS_PER_PEER_MAX: u32 = 2;

/// Incoming established connections allowed per member, so the total is this times the
/// number of members (at most [`INCOMING_CONNECTIONS_MAX`]): room for restarts (old connection
/// not yet noticed dead) without letting one peer exhaust file descriptors.
const INCOMING_CONNECTIONS_PER_MEMBER_MAX: u32 = 4;

/// Hard cap on established incoming connections, whatever the network's size: about half of a
/// node's overlay neighbours dial it (at most 12 of 24 at 2,800 bureaus), plus on-demand
/// connections (arbiters, pulls from an author, which close when idle) and restarts. Beyond it
/// a connection is refused; the dialler retries with backoff.
pub const INCOMING_CONNECTIONS_MAX: u32 = 48;

/// A connection to a member that is not an overlay neighbour is closed after this long without
/// a request either way. Longer than a request may take ([`REQUEST_TIMEOUT`] plus margin), so a
/// pull in progress is never cut; short enough that the connections of a node that talked to
/// many arbiters drain within a minute.
pub const ON_DEMAND_IDLE: Duration = Duration::from_secs(45);

/// How often idle on-demand connections are looked for: a scan of the members every 5 s.
const ON_DEMAND_CHECK: Duration = Duration::from_secs(5);

/// How long the neighbour that does not dial first waits for the other's connection before it
/// dials itself (after start, a membership change, or a disconnection).
pub const NEIGHBOUR_ANSWER_GRACE: Duration = Duration::from_secs(3);

/// Incoming handshakes in progress at once. Each costs a Noise DH and a timer; anyone who can
/// reach the port can start one, so this caps what a stranger can make us spend.
const PENDING_INCOMING_MAX: u32 = 32;

/// Outgoing dials in progress per member. We dial a member only when not already dialling it,
/// so one would do; two leaves room for a request's dial racing the redial loop's.
const PENDING_OUTGOING_PER_MEMBER_MAX: u32 = 2;

/// Commands queued from handles to the network task. Callers wait when it is full, which is the
/// backpressure we want: the task drains commands faster than any node produces them.
const COMMAND_QUEUE_MAX: usize = 256;

/// Events queued from the network task to the node. Beyond this events are dropped and counted
/// (invariant 5): a burst of 1024 gossip messages is far more than a healthy node lags behind.
const EVENT_QUEUE_MAX: usize = 1024;

/// Outgoing requests in flight from this node. Each holds a oneshot and up to a frame of memory
/// in libp2p; the node's pull loop has a handful in flight, so 256 is a leak detector, not a
/// throttle.
const OUTBOUND_REQUESTS_MAX: usize = 256;

/// Incoming requests waiting for the node's reply. Beyond this new requests are refused (the
/// peer gets an error) instead of queueing memory for work we cannot keep up with.
const INBOUND_REQUESTS_MAX: usize = 256;

/// Concurrent request streams on one connection, each way. A member's pull loop uses one or
/// two; 16 bounds what one peer can have us read at once (16 × 8 MiB).
const STREAMS_PER_CONNECTION_MAX: usize = 16;

/// Topics one node may subscribe to. The node uses a few fixed topics; the cap catches a
/// caller that builds topic names from data.
const TOPICS_MAX: usize = 32;

/// Gossipsub heartbeat: how often meshes are repaired and gossip (IHAVE) is emitted. Messages
/// themselves travel at once (flood publishing to every neighbour, then forwarding along the
/// mesh); the heartbeat only repairs the mesh after a connection change and advertises recent
/// messages a peer may have missed. An idle heartbeat sends nothing, it only wakes the task and
/// walks the mesh tables (one wake-up per second, microseconds; the whole idle node measured
/// 2.7 ms/s in a debug build with this value, testnet/idle.sh, flat from 8 to 32 nodes; the
/// heartbeat's share was not measured separately). 1 s keeps mesh repair and the IHAVE repair
/// of a lost message within about a second; slower would trade finality latency after a loss
/// for little.
const GOSSIP_HEARTBEAT: Duration = Duration::from_secs(1);

/// Delay before the first heartbeat (libp2p's default is 5 s, too slow for a restarted node).
const GOSSIP_HEARTBEAT_INITIAL_DELAY: Duration = Duration::from_millis(100);

/// Gossipsub mesh degree and its bounds, for an overlay of degree up to ~16–24
/// (`crate::overlay`). Connections are the overlay's edges, so a mesh is a subset of them: a
/// node grafts up to 8 of its neighbours whenever it has fewer than 4 in its mesh (all of them in
/// small networks, where the degree is below 4), and prunes beyond 12. With each node in the
/// meshes of at least 4 neighbours the mesh of a connected overlay stays connected in practice;
/// a message also goes, when published, to every neighbour (flood publishing), and what a mesh
/// gap loses is advertised by IHAVE at the next heartbeat and, failing that, found by the
/// digest anti-entropy (`sync`).
const GOSSIP_MESH_N_LOW: usize = 4;
const GOSSIP_MESH_N: usize = 8;
const GOSSIP_MESH_N_HIGH: usize = 12;
/// Mesh peers that must be outbound connections (eclipse protection; members are trusted to
/// connect, so the minimum gossipsub allows with our lower bound).
const GOSSIP_MESH_OUTBOUND_MIN: usize = 1;

/// Messages queued per connection inside gossipsub before publishes fail with a full queue.
/// libp2p's default of 5000 could hold 5000 × 8 MiB; 256 still absorbs any burst the node makes.
const GOSSIP_QUEUE_PER_CONNECTION_MAX: usize = 256;

/// How often the redial loop looks for members to dial.
pub const REDIAL_TICK: Duration = Duration::from_millis(250);

/// First wait after a failed dial of a member; doubled after each failure.
pub const REDIAL_BACKOFF_MIN: Duration = Duration::from_secs(1);

/// Longest wait between dials of an unreachable member, so a restarted bureau is found again
/// within a few seconds, while a bureau down for hours costs one failed dial per 5 s.
pub const REDIAL_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// How often each connection is pinged, and how long an answer may take before the connection
/// is closed as dead. TCP alone notices a peer that lost power only after ~15 minutes of
/// retransmissions; this notices within 50 s so the redial loop can take over. A clean stop or
/// crash closes the TCP connection and is noticed at once; only a lost machine or link waits for
/// ping. Cost: one small frame each way per connection per 30 s, ~0.5 pings/s per node at
/// degree 16 (a few µs each); at 10 s it was three times that for a faster notice nobody needs
/// (anti-entropy and on-demand pulls repair what a dead link lost).
const PING_INTERVAL: Duration = Duration::from_secs(30);
const PING_TIMEOUT: Duration = Duration::from_secs(20);

/// A connection between members stays up while idle: members talk in bursts, reconnecting costs
/// a handshake, and liveness is judged by ping, not by traffic.
const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

/// Addresses learnt through identify kept per member (only for members given no address).
pub const LEARNT_ADDRESSES_MAX: usize = 8;

/// How long [`spawn`] waits for the listener to report its bound address.
const LISTEN_READY_TIMEOUT: Duration = Duration::from_secs(5);

// How the limits relate.
const _: () = assert!(
    FRAME_BYTES_MAX <= u32::MAX as usize,
    "a frame length must fit the u32 prefix"
);
const _: () = assert!(FRAME_PREALLOCATION_BYTES_MAX <= FRAME_BYTES_MAX);
const _: () = assert!(REDIAL_BACKOFF_MIN.as_millis() <= REDIAL_BACKOFF_MAX.as_millis());
const _: () = assert!(REDIAL_TICK.as_millis() <= REDIAL_BACKOFF_MIN.as_millis());
const _: () = assert!(PING_TIMEOUT.as_secs() < IDLE_CONNECTION_TIMEOUT.as_secs());
const _: () = assert!(
    REQUEST_TIMEOUT.as_secs() + REQUEST_TIMEOUT_MARGIN.as_secs() < ON_DEMAND_IDLE.as_secs()
);
// gossipsub's own rules (ConfigBuilder::build checks them only for per-topic settings).
const _: () = assert!(GOSSIP_MESH_OUTBOUND_MIN <= GOSSIP_MESH_N_LOW);
const _: () = assert!(GOSSIP_MESH_N_LOW <= GOSSIP_MESH_N && GOSSIP_MESH_N <= GOSSIP_MESH_N_HIGH);
const _: () = assert!(GOSSIP_MESH_OUTBOUND_MIN * 2 <= GOSSIP_MESH_N);

// ---------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------

/// Everything [`spawn`] needs. Built by the node from its key file and the genesis.
pub struct NetConfig {
    /// This bureau's identity; see [`keypair_from_ed25519_secret`].
    pub identity: identity::Keypair,
    /// The network's pre-shared key (pnet). Machines without it cannot complete a handshake.
    pub psk: [u8; 32],
    /// Where to listen, e.g. `/ip4/0.0.0.0/tcp/7400` (port 0 picks a free port; see
    /// [`NetHandle::listen_addrs`]).
    pub listen: Multiaddr,
    /// Every member of the network. Our own entry, if present, is ignored.
    pub members: Vec<NetMember>,
    /// Gossip message ids: given a message's topic and bytes, `Some(key)` makes the key its id,
    /// so every message with that key is one message to gossipsub (the first floods, the others
    /// are duplicates); `None` (or no function) gives each published message its own id.
    pub message_id: Option<MessageIdFn>,
}

/// See [`NetConfig::message_id`].
pub type MessageIdFn = Arc<dyn Fn(&str, &[u8]) -> Option<Vec<u8>> + Send + Sync>;

/// What a member is to this node in the overlay (`crate::overlay`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerRole {
    /// A neighbour: the connection is kept up. `dial_first`: dial at once; otherwise wait
    /// [`NEIGHBOUR_ANSWER_GRACE`] for the neighbour to dial.
    Neighbour { dial_first: bool },
    /// Connected only while requests go either way (dialled by [`NetHandle::request`]).
    OnDemand,
}

/// One member bureau as the network sees it.
#[derive(Debug, Clone)]
pub struct NetMember {
    /// Derived from the member's genesis public key ([`peer_id_from_ed25519_public`]).
    pub peer_id: PeerId,
    /// Where to dial it. May be empty: the member then has to dial us (or be learnt through
    /// identify from another connection). When not empty, only these are dialled.
    pub addresses: Vec<Multiaddr>,
    /// Neighbour or on-demand.
    pub role: PeerRole,
}

/// What the network tells the node.
#[derive(Debug)]
pub enum NetEvent {
    /// A gossip message on a subscribed topic. `from` is its claimed author (a member; see
    /// invariant 3), `via` the neighbour that forwarded it to us (who holds what it refers to).
    Gossip {
        from: PeerId,
        via: PeerId,
        topic: String,
        bytes: Vec<u8>,
    },
    /// A member asks something. Answer by sending on `reply` within [`REQUEST_TIMEOUT`];
    /// dropping `reply` makes the request fail at the peer at once.
    Request {
        from: PeerId,
        bytes: Vec<u8>,
        reply: oneshot::Sender<Vec<u8>>,
    },
    /// First connection to a member established.
    PeerConnected(PeerId),
    /// Last connection to a member closed.
    PeerDisconnected(PeerId),
}

impl NetEvent {
    /// The event's name, for logs (never the payload, which may be megabytes).
    pub fn kind(&self) -> &'static str {
        match self {
            NetEvent::Gossip { .. } => "gossip",
            NetEvent::Request { .. } => "request",
            NetEvent::PeerConnected(_) => "peer_connected",
            NetEvent::PeerDisconnected(_) => "peer_disconnected",
        }
    }
}

/// Counters for metrics, read with [`NetHandle::stats`]. All are totals since [`spawn`] except
/// `connected_peers`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Members with at least one established connection now.
    pub connected_peers: u64,
    /// Gossip messages delivered to the node.
    pub gossip_in: u64,
    /// Gossip messages published by the node.
    pub gossip_out: u64,
    /// Requests received from peers.
    pub requests_in: u64,
    /// Requests sent to peers.
    pub requests_out: u64,
    /// Incoming connections refused: failed handshakes (wrong network key, bad Noise),
    /// non-members denied by the allow list, and connections over the limits.
    pub connections_refused: u64,
    /// Outgoing dials that failed (member down, wrong address, wrong key).
    pub dials_failed: u64,
    /// Events dropped because the node did not drain the event queue in time.
    pub events_dropped: u64,
    /// Established connections now (to neighbours and on demand; a pair may briefly hold two).
    pub connections_open: u64,
    /// On-demand connections closed because idle for [`ON_DEMAND_IDLE`].
    pub idle_closed: u64,
}

/// Why a network call failed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The 32 bytes are not an ed25519 public key.
    #[error("not an ed25519 public key: {reason}")]
    InvalidPublicKey { reason: String },
    /// The transport or a behaviour could not be built.
    #[error("cannot set up the network: {reason}")]
    Setup { reason: String },
    /// The listen address could not be bound (taken, not ours, not TCP).
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: Multiaddr, reason: String },
    /// The network task has stopped (shutdown).
    #[error("the network has stopped")]
    Stopped,
    /// No member is subscribed to the topic yet (not connected, or subscriptions not yet
    /// exchanged). Not fatal: the node may ignore it and rely on pulls.
    #[error("no member is subscribed to topic {topic:?} yet")]
    InsufficientPeers { topic: String },
    /// Publishing failed for another reason (queues full, too large, duplicate).
    #[error("cannot publish on topic {topic:?}: {reason}")]
    Publish { topic: String, reason: String },
    /// Subscribing failed.
    #[error("cannot subscribe to topic {topic:?}: {reason}")]
    Subscribe { topic: String, reason: String },
    /// A payload larger than a frame may be.
    #[error("payload of {bytes} bytes exceeds the frame limit of {max} bytes")]
    FrameTooLarge { bytes: usize, max: usize },
    /// Requests go to members only.
    #[error("{peer} is not a member of the network")]
    NotMember { peer: PeerId },
    /// Too many requests in flight.
    #[error("too many requests in flight (limit {max})")]
    Busy { max: usize },
    /// The peer could not be reached, closed the connection, or did not answer.
    #[error("request to {peer} failed: {reason}")]
    RequestFailed { peer: PeerId, reason: String },
    /// No answer within the timeout.
    #[error("request to {peer} timed out after {timeout_ms} ms")]
    RequestTimeout { peer: PeerId, timeout_ms: u64 },
}

/// Why a frame could not be read or written. Carried inside the `io::Error` the codec returns
/// (`io::Error::get_ref` then `downcast_ref::<FrameError>`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The declared (or given) length is over the limit; refused before allocating.
    #[error("frame of {declared} bytes exceeds the limit of {max} bytes")]
    TooLarge { declared: usize, max: usize },
    /// The stream ended inside the length prefix.
    #[error("stream ended after {received} of the {FRAME_HEADER_BYTES} length bytes")]
    HeaderTruncated { received: usize },
    /// The stream ended inside the body.
    #[error("frame truncated: declared {declared} bytes, received {received}")]
    BodyTruncated { declared: usize, received: usize },
}

impl From<FrameError> for io::Error {
    fn from(error: FrameError) -> io::Error {
        let kind = match error {
            FrameError::TooLarge { .. } => io::ErrorKind::InvalidData,
            FrameError::HeaderTruncated { .. } | FrameError::BodyTruncated { .. } => {
                io::ErrorKind::UnexpectedEof
            }
        };
        io::Error::new(kind, error)
    }
}

// ---------------------------------------------------------------------------------------------
// Identity
// ---------------------------------------------------------------------------------------------

/// The libp2p identity of a bureau, from the 32-byte ed25519 secret of its bureau key (the
/// RFC 8032 seed, as ed25519-dalek's `SigningKey::to_bytes` gives it).
pub fn keypair_from_ed25519_secret(mut secret: [u8; 32]) -> identity::Keypair {
    // `try_from_bytes` zeroises the array it reads; it fails only on a length other than 32.
    let secret = identity::ed25519::SecretKey::try_from_bytes(&mut secret)
        .expect("a 32-byte array is always an ed25519 secret key");
    identity::Keypair::from(identity::ed25519::Keypair::from(secret))
}

/// The peer id of a member, from the ed25519 public key the genesis names for it.
pub fn peer_id_from_ed25519_public(public: &[u8; 32]) -> Result<PeerId, NetError> {
    let key = identity::ed25519::PublicKey::try_from_bytes(public).map_err(|e| {
        NetError::InvalidPublicKey {
            reason: e.to_string(),
        }
    })?;
    Ok(identity::PublicKey::from(key).to_peer_id())
}

// ---------------------------------------------------------------------------------------------
// Frames and the request/response codec
// ---------------------------------------------------------------------------------------------

/// Reads one frame: a u32 big-endian length, then that many bytes. A declared length over
/// `frame_bytes_max` is refused before anything is allocated or read; a stream that ends early
/// is an [`io::ErrorKind::UnexpectedEof`] error naming how much arrived.
pub async fn read_frame<R>(io: &mut R, frame_bytes_max: usize) -> io::Result<Vec<u8>>
where
    R: AsyncRead + Unpin,
{
    let mut header = [0u8; FRAME_HEADER_BYTES];
    let mut header_received = 0;
    while header_received < FRAME_HEADER_BYTES {
        let n = io.read(&mut header[header_received..]).await?;
        if n == 0 {
            return Err(FrameError::HeaderTruncated {
                received: header_received,
            }
            .into());
        }
        header_received += n;
    }
    // u32 -> usize is lossless on every target we build for (64-bit).
    let declared = u32::from_be_bytes(header) as usize;
    if declared > frame_bytes_max {
        return Err(FrameError::TooLarge {
            declared,
            max: frame_bytes_max,
        }
        .into());
    }
    let mut body = Vec::with_capacity(declared.min(FRAME_PREALLOCATION_BYTES_MAX));
    (&mut *io)
        .take(declared as u64)
        .read_to_end(&mut body)
        .await?;
    if body.len() != declared {
        return Err(FrameError::BodyTruncated {
            declared,
            received: body.len(),
        }
        .into());
    }
    Ok(body)
}

/// Writes one frame (see [`read_frame`]). Refuses a payload over `frame_bytes_max`, so we never
/// send what the peer would refuse.
pub async fn write_frame<W>(io: &mut W, bytes: &[u8], frame_bytes_max: usize) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    if bytes.len() > frame_bytes_max {
        return Err(FrameError::TooLarge {
            declared: bytes.len(),
            max: frame_bytes_max,
        }
        .into());
    }
    let length = u32::try_from(bytes.len()).map_err(|_| FrameError::TooLarge {
        declared: bytes.len(),
        max: u32::MAX as usize,
    })?;
    io.write_all(&length.to_be_bytes()).await?;
    io.write_all(bytes).await?;
    io.flush().await
}

/// The request/response codec: one length-prefixed frame each way, opaque bytes inside.
#[derive(Debug, Clone, Copy)]
pub struct FrameCodec {
    /// Largest frame read or written; [`FRAME_BYTES_MAX`] on the network.
    pub frame_bytes_max: usize,
}

impl Default for FrameCodec {
    fn default() -> Self {
        FrameCodec {
            frame_bytes_max: FRAME_BYTES_MAX,
        }
    }
}

impl request_response::Codec for FrameCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io, self.frame_bytes_max).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io, self.frame_bytes_max).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &request, self.frame_bytes_max).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &response, self.frame_bytes_max).await
    }
}

// ---------------------------------------------------------------------------------------------
// Handle
// ---------------------------------------------------------------------------------------------

/// The node's side of the network. Cheap to clone; every clone talks to the same task.
#[derive(Clone)]
pub struct NetHandle {
    commands: mpsc::Sender<Command>,
    shared: Arc<Shared>,
}

/// State the task writes and handles read without a round trip through the task.
struct Shared {
    local_peer_id: PeerId,
    /// A std mutex, not tokio's: it is held for a copy or an insert and never across an await,
    /// so it never blocks the runtime noticeably and needs no async lock.
    connected: Mutex<BTreeSet<PeerId>>,
    listen_addrs: Mutex<Vec<Multiaddr>>,
    counters: Counters,
}

#[derive(Default)]
struct Counters {
    gossip_in: AtomicU64,
    gossip_out: AtomicU64,
    requests_in: AtomicU64,
    requests_out: AtomicU64,
    connections_refused: AtomicU64,
    dials_failed: AtomicU64,
    events_dropped: AtomicU64,
    connections_open: AtomicU64,
    idle_closed: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Locks a mutex even if a panicking thread poisoned it: the data are sets of ids and addresses,
/// valid after any partial update.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Where the task delivers the outcome of one request.
type RequestDone = oneshot::Sender<Result<Vec<u8>, NetError>>;

/// What a handle asks of the task.
enum Command {
    Publish {
        topic: String,
        bytes: Vec<u8>,
        done: oneshot::Sender<Result<(), NetError>>,
    },
    Subscribe {
        topic: String,
        done: oneshot::Sender<Result<(), NetError>>,
    },
    Request {
        peer: PeerId,
        bytes: Vec<u8>,
        done: RequestDone,
    },
    /// The membership changed (a configuration epoch): allow exactly these, keep connections to
    /// the neighbours among them.
    SetMembers(Vec<NetMember>),
}

impl NetHandle {
    /// Publishes `bytes` on `topic` to every subscribed member. [`NetError::InsufficientPeers`]
    /// means nobody is listening yet; the caller may ignore it.
    pub async fn publish(&self, topic: &str, bytes: Vec<u8>) -> Result<(), NetError> {
        if bytes.len() > FRAME_BYTES_MAX {
            return Err(NetError::FrameTooLarge {
                bytes: bytes.len(),
                max: FRAME_BYTES_MAX,
            });
        }
        let (done, answer) = oneshot::channel();
        self.send(Command::Publish {
            topic: topic.to_owned(),
            bytes,
            done,
        })
        .await?;
        answer.await.map_err(|_| NetError::Stopped)?
    }

    /// Subscribes to `topic`; its messages then arrive as [`NetEvent::Gossip`]. Subscribing
    /// twice is not an error.
    pub async fn subscribe(&self, topic: &str) -> Result<(), NetError> {
        let (done, answer) = oneshot::channel();
        self.send(Command::Subscribe {
            topic: topic.to_owned(),
            done,
        })
        .await?;
        answer.await.map_err(|_| NetError::Stopped)?
    }

    /// Sends `bytes` to member `peer` (dialling it if needed) and waits for its answer, at most
    /// [`REQUEST_TIMEOUT`].
    pub async fn request(&self, peer: PeerId, bytes: Vec<u8>) -> Result<Vec<u8>, NetError> {
        if bytes.len() > FRAME_BYTES_MAX {
            return Err(NetError::FrameTooLarge {
                bytes: bytes.len(),
                max: FRAME_BYTES_MAX,
            });
        }
        let timeout = REQUEST_TIMEOUT + REQUEST_TIMEOUT_MARGIN;
        let exchange = async {
            let (done, answer) = oneshot::channel();
            self.send(Command::Request { peer, bytes, done }).await?;
            answer.await.map_err(|_| NetError::Stopped)?
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(NetError::RequestTimeout {
                peer,
                timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            }),
        }
    }

    /// Replaces the membership (a new configuration epoch): new members are allowed (and
    /// dialled if neighbours), members no longer listed are disallowed and disconnected
    /// (invariant 1 keeps holding), the addresses and roles of the others are updated.
    pub async fn set_members(&self, members: Vec<NetMember>) -> Result<(), NetError> {
        self.send(Command::SetMembers(members)).await
    }

    /// Members with at least one established connection now.
    pub fn connected_peers(&self) -> Vec<PeerId> {
        lock(&self.shared.connected).iter().copied().collect()
    }

    /// The addresses actually bound (with the real port when listening on port 0).
    pub fn listen_addrs(&self) -> Vec<Multiaddr> {
        lock(&self.shared.listen_addrs).clone()
    }

    /// This node's peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.shared.local_peer_id
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> NetStats {
        let c = &self.shared.counters;
        let read = |a: &AtomicU64| a.load(Ordering::Relaxed);
        NetStats {
            connected_peers: lock(&self.shared.connected).len() as u64,
            gossip_in: read(&c.gossip_in),
            gossip_out: read(&c.gossip_out),
            requests_in: read(&c.requests_in),
            requests_out: read(&c.requests_out),
            connections_refused: read(&c.connections_refused),
            dials_failed: read(&c.dials_failed),
            events_dropped: read(&c.events_dropped),
            connections_open: read(&c.connections_open),
            idle_closed: read(&c.idle_closed),
        }
    }

    async fn send(&self, command: Command) -> Result<(), NetError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| NetError::Stopped)
    }
}

// ---------------------------------------------------------------------------------------------
// Behaviour
// ---------------------------------------------------------------------------------------------

/// The composed behaviour. Field order matters: the derived behaviour asks each field in turn
/// whether to accept a connection, so the allow list and the limits come first and a denied
/// connection never reaches the others.
#[derive(NetworkBehaviour)]
struct NetBehaviour {
    allowed: allow_block_list::Behaviour<allow_block_list::AllowedPeers>,
    limits: connection_limits::Behaviour,
    gossipsub: gossipsub::Behaviour,
    sync: request_response::Behaviour<FrameCodec>,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The connection limits for a membership of `members` others.
fn connection_limits_for(members: usize) -> connection_limits::ConnectionLimits {
    let count = u32::try_from(members.max(1)).unwrap_or(u32::MAX);
    connection_limits::ConnectionLimits::default()
        .with_max_established_per_peer(Some(CONNECTIONS_PER_PEER_MAX))
        .with_max_established_incoming(Some(
            count
                .saturating_mul(INCOMING_CONNECTIONS_PER_MEMBER_MAX)
                .min(INCOMING_CONNECTIONS_MAX),
        ))
        .with_max_pending_incoming(Some(PENDING_INCOMING_MAX))
        .with_max_pending_outgoing(Some(count.saturating_mul(PENDING_OUTGOING_PER_MEMBER_MAX)))
}

fn build_behaviour(
    key: &identity::Keypair,
    members: &HashMap<PeerId, Member>,
    message_id: Option<MessageIdFn>,
) -> Result<NetBehaviour, BoxError> {
    let mut allowed = allow_block_list::Behaviour::<allow_block_list::AllowedPeers>::default();
    for peer in members.keys() {
        allowed.allow_peer(*peer);
    }

    let limits = connection_limits::Behaviour::new(connection_limits_for(members.len()));

    let message_id = move |m: &gossipsub::Message| -> gossipsub::MessageId {
        if let Some(key) = message_id
            .as_ref()
            .and_then(|f| f(m.topic.as_str(), &m.data))
        {
            let mut id = b"k:".to_vec();
            id.extend(key);
            return gossipsub::MessageId::new(&id);
        }
        // libp2p's default: author and sequence number, unique per publish.
        let mut id = b"s:".to_vec();
        if let Some(source) = &m.source {
            id.extend(source.to_bytes());
        }
        if let Some(seq) = m.sequence_number {
            id.extend(seq.to_be_bytes());
        }
        gossipsub::MessageId::new(&id)
    };
    let gossipsub_config = gossipsub::ConfigBuilder::default()
        .message_id_fn(message_id)
        .heartbeat_interval(GOSSIP_HEARTBEAT)
        .heartbeat_initial_delay(GOSSIP_HEARTBEAT_INITIAL_DELAY)
        .mesh_n_low(GOSSIP_MESH_N_LOW)
        .mesh_n(GOSSIP_MESH_N)
        .mesh_n_high(GOSSIP_MESH_N_HIGH)
        .mesh_outbound_min(GOSSIP_MESH_OUTBOUND_MIN)
        .max_transmit_size(FRAME_BYTES_MAX)
        .validation_mode(gossipsub::ValidationMode::Permissive)
        .connection_handler_queue_len(GOSSIP_QUEUE_PER_CONNECTION_MAX)
        .build()?;
    let gossipsub = gossipsub::Behaviour::new(
        gossipsub::MessageAuthenticity::Author(key.public().to_peer_id()),
        gossipsub_config,
    )?;

    let sync = request_response::Behaviour::with_codec(
        FrameCodec::default(),
        [(StreamProtocol::new(SYNC_PROTOCOL), ProtocolSupport::Full)],
        request_response::Config::default()
            .with_request_timeout(REQUEST_TIMEOUT)
            .with_max_concurrent_streams(STREAMS_PER_CONNECTION_MAX),
    );

    // No address cache: identify would otherwise teach the swarm (and request-response) the
    // listen addresses members announce, bypassing the configured ones (module doc, Addresses).
    let identify = identify::Behaviour::new(
        identify::Config::new(IDENTIFY_PROTOCOL.to_owned(), key.public()).with_cache_size(0),
    );
    let ping = ping::Behaviour::new(
        ping::Config::new()
            .with_interval(PING_INTERVAL)
            .with_timeout(PING_TIMEOUT),
    );

    Ok(NetBehaviour {
        allowed,
        limits,
        gossipsub,
        sync,
        identify,
        ping,
    })
}

// ---------------------------------------------------------------------------------------------
// Spawn and the task
// ---------------------------------------------------------------------------------------------

/// Binds `config.listen`, starts the network task and returns its handle and event stream.
///
/// Fails if the address cannot be bound (taken, not local, not `/ip4|ip6/…/tcp/…`). The task
/// dials its neighbours (module doc) and keeps redialling those not connected. It stops when
/// `shutdown` completes; the event receiver then yields `None`.
pub async fn spawn(
    config: NetConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(NetHandle, mpsc::Receiver<NetEvent>), NetError> {
    let NetConfig {
        identity,
        psk,
        listen,
        members,
        message_id,
    } = config;
    let local_peer_id = identity.public().to_peer_id();
    let mut by_peer: HashMap<PeerId, Member> = HashMap::new();
    for NetMember {
        peer_id,
        addresses,
        role,
    } in members
    {
        if peer_id == local_peer_id {
            continue;
        }
        let member = by_peer
            .entry(peer_id)
            .or_insert_with(|| Member::new(Vec::new(), role));
        for address in addresses {
            if !member.addresses.contains(&address) {
                member.addresses.push(address);
            }
        }
    }
    let members = by_peer;

    // A port already held by another libp2p listener would not be reported by libp2p itself:
    // its listeners set SO_REUSEPORT, so a second one binds the same port and they share
    // connections. A plain bind first turns "taken" into an error.
    let socket = socket_addr(&listen).ok_or_else(|| NetError::Listen {
        addr: listen.clone(),
        reason: "not an /ip4 or /ip6 TCP address".into(),
    })?;
    if socket.port() != 0 {
        std::net::TcpListener::bind(socket).map_err(|e| NetError::Listen {
            addr: listen.clone(),
            reason: e.to_string(),
        })?;
    }

    let psk = PreSharedKey::new(psk);
    let swarm = libp2p::SwarmBuilder::with_existing_identity(identity)
        .with_tokio()
        .with_other_transport(|key| -> Result<_, BoxError> {
            let noise = noise::Config::new(key)?;
            Ok(
                tcp::tokio::Transport::new(tcp::Config::default().nodelay(true))
                    .and_then(move |socket, _| PnetConfig::new(psk).handshake(socket))
                    .upgrade(Version::V1)
                    .authenticate(noise)
                    .multiplex(yamux::Config::default()),
            )
        })
        .map_err(|e| NetError::Setup {
            reason: e.to_string(),
        })?
        .with_behaviour(|key| build_behaviour(key, &members, message_id))
        .map_err(|e| NetError::Setup {
            reason: e.to_string(),
        })?
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT))
        // The builder wraps the whole transport (dial and accept, upgrade included) in this.
        .with_connection_timeout(HANDSHAKE_TIMEOUT)
        .build();

    let shared = Arc::new(Shared {
        local_peer_id,
        connected: Mutex::new(BTreeSet::new()),
        listen_addrs: Mutex::new(Vec::new()),
        counters: Counters::default(),
    });
    let (commands_tx, commands_rx) = mpsc::channel(COMMAND_QUEUE_MAX);
    let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE_MAX);
    let mut task = NetTask {
        swarm,
        shared: shared.clone(),
        events: events_tx,
        commands: commands_rx,
        members,
        outbound: HashMap::new(),
        replies: FuturesUnordered::new(),
    };
    task.listen(listen).await?;
    info!(peer = %local_peer_id, addrs = ?task.shared_listen_addrs(), members = task.members.len(), "network listening");
    tokio::spawn(task.run(shutdown));
    Ok((
        NetHandle {
            commands: commands_tx,
            shared,
        },
        events_rx,
    ))
}

/// The socket address of `/ip4|ip6/ADDR/tcp/PORT`, or `None` for anything else.
fn socket_addr(addr: &Multiaddr) -> Option<SocketAddr> {
    let mut parts = addr.iter();
    let ip = match parts.next()? {
        Protocol::Ip4(ip) => std::net::IpAddr::V4(ip),
        Protocol::Ip6(ip) => std::net::IpAddr::V6(ip),
        _ => return None,
    };
    let Protocol::Tcp(port) = parts.next()? else {
        return None;
    };
    match parts.next() {
        None => Some(SocketAddr::new(ip, port)),
        Some(_) => None,
    }
}

/// What the task knows about one member.
struct Member {
    /// Addresses from the genesis or the operator's override: authoritative when not empty.
    addresses: Vec<Multiaddr>,
    /// Addresses the member announced through identify, kept only while `addresses` is empty
    /// (module doc, Addresses); at most [`LEARNT_ADDRESSES_MAX`], newest last.
    learnt: Vec<Multiaddr>,
    /// Not before this instant is it dialled again.
    next_dial_at: Instant,
    /// Wait after the next failed dial.
    backoff: Duration,
    /// Neighbour or on-demand.
    role: PeerRole,
    /// Last request to or from it (on-demand connections close when idle).
    last_used: Instant,
}

impl Member {
    fn new(addresses: Vec<Multiaddr>, role: PeerRole) -> Self {
        let now = Instant::now();
        Member {
            addresses,
            learnt: Vec::new(),
            next_dial_at: first_dial_at(role, now),
            backoff: REDIAL_BACKOFF_MIN,
            role,
            last_used: now,
        }
    }

    /// Where to dial this member: the given addresses, or, when none were given, the learnt ones.
    fn dial_addresses(&self) -> Vec<Multiaddr> {
        if self.addresses.is_empty() {
            self.learnt.clone()
        } else {
            self.addresses.clone()
        }
    }

    /// Takes the listen addresses the member announced, if it was given none of its own.
    fn learn(&mut self, announced: Vec<Multiaddr>) {
        if !self.addresses.is_empty() {
            return;
        }
        for address in announced {
            let mut parts = address.iter();
            let tcp = matches!(parts.next(), Some(Protocol::Ip4(_) | Protocol::Ip6(_)))
                && matches!(parts.next(), Some(Protocol::Tcp(_)));
            if !tcp || self.learnt.contains(&address) {
                continue;
            }
            if self.learnt.len() >= LEARNT_ADDRESSES_MAX {
                self.learnt.remove(0);
            }
            self.learnt.push(address);
        }
    }
}

/// When a member not connected is first dialled from `now` on: a neighbour that dials first at
/// once, the other after [`NEIGHBOUR_ANSWER_GRACE`] (module doc).
fn first_dial_at(role: PeerRole, now: Instant) -> Instant {
    match role {
        PeerRole::Neighbour { dial_first: false } => now + NEIGHBOUR_ANSWER_GRACE,
        _ => now,
    }
}

/// An inbound request waiting for the node's answer (`None`: the node dropped it, or timed out).
type PendingReply = BoxFuture<'static, (ResponseChannel<Vec<u8>>, Option<Vec<u8>>)>;

/// The task that owns the swarm. Everything about the swarm happens here, one event at a time.
struct NetTask {
    swarm: Swarm<NetBehaviour>,
    shared: Arc<Shared>,
    /// To the node; bounded, never awaited (invariant 5).
    events: mpsc::Sender<NetEvent>,
    /// From handles.
    commands: mpsc::Receiver<Command>,
    /// Every member but us.
    members: HashMap<PeerId, Member>,
    /// Requests sent and not yet answered, at most [`OUTBOUND_REQUESTS_MAX`].
    outbound: HashMap<OutboundRequestId, (PeerId, RequestDone)>,
    /// Requests received and not yet answered by the node, at most [`INBOUND_REQUESTS_MAX`].
    replies: FuturesUnordered<PendingReply>,
}

impl NetTask {
    /// Starts listening and waits until the listener reports its bound address.
    async fn listen(&mut self, addr: Multiaddr) -> Result<(), NetError> {
        let listen_error = |reason: String| NetError::Listen {
            addr: addr.clone(),
            reason,
        };
        self.swarm
            .listen_on(addr.clone())
            .map_err(|e| listen_error(e.to_string()))?;
        let deadline = Instant::now() + LISTEN_READY_TIMEOUT;
        while self.shared_listen_addrs().is_empty() {
            let event = tokio::time::timeout_at(deadline, self.swarm.select_next_some())
                .await
                .map_err(|_| listen_error("no listen address reported".into()))?;
            match event {
                SwarmEvent::ListenerClosed { reason, .. } => {
                    let reason = match reason {
                        Ok(()) => "listener closed".to_owned(),
                        Err(e) => e.to_string(),
                    };
                    return Err(listen_error(reason));
                }
                SwarmEvent::ListenerError { error, .. } => {
                    return Err(listen_error(error.to_string()));
                }
                other => self.on_swarm_event(other),
            }
        }
        Ok(())
    }

    fn shared_listen_addrs(&self) -> Vec<Multiaddr> {
        lock(&self.shared.listen_addrs).clone()
    }

    async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut redial = tokio::time::interval(REDIAL_TICK);
        redial.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut idle_check = tokio::time::interval(ON_DEMAND_CHECK);
        idle_check.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // When every handle is gone no command can come, but the node may still answer
        // requests through the event stream, so the task keeps running until shutdown.
        let mut commands_open = true;
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                command = self.commands.recv(), if commands_open => match command {
                    Some(command) => self.on_command(command),
                    None => commands_open = false,
                },
                Some((channel, reply)) = self.replies.next(), if !self.replies.is_empty() => {
                    self.on_reply(channel, reply);
                }
                _ = redial.tick() => self.redial_due_members(),
                _ = idle_check.tick() => self.close_idle_on_demand(),
            }
        }
        info!("network stopping");
        // Close the listener and connections before the event stream ends, so a caller that
        // waits for `None` can bind the same port again.
        let NetTask {
            swarm,
            events,
            outbound,
            ..
        } = self;
        drop(swarm);
        drop(outbound);
        drop(events);
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Publish { topic, bytes, done } => {
                let result = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .publish(gossipsub::IdentTopic::new(topic.clone()), bytes);
                let result = match result {
                    Ok(_) => {
                        bump(&self.shared.counters.gossip_out);
                        Ok(())
                    }
                    Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => {
                        Err(NetError::InsufficientPeers { topic })
                    }
                    Err(e) => Err(NetError::Publish {
                        topic,
                        reason: e.to_string(),
                    }),
                };
                let _ = done.send(result);
            }
            Command::Subscribe { topic, done } => {
                let gossipsub = &mut self.swarm.behaviour_mut().gossipsub;
                let ident = gossipsub::IdentTopic::new(topic.clone());
                let already = gossipsub.topics().any(|t| *t == ident.hash());
                let result = if !already && gossipsub.topics().count() >= TOPICS_MAX {
                    Err(NetError::Subscribe {
                        topic,
                        reason: format!("at most {TOPICS_MAX} topics"),
                    })
                } else {
                    gossipsub
                        .subscribe(&ident)
                        .map(|_| ())
                        .map_err(|e| NetError::Subscribe {
                            topic,
                            reason: e.to_string(),
                        })
                };
                let _ = done.send(result);
            }
            Command::Request { peer, bytes, done } => {
                let Some(member) = self.members.get_mut(&peer) else {
                    let _ = done.send(Err(NetError::NotMember { peer }));
                    return;
                };
                member.last_used = Instant::now();
                if self.outbound.len() >= OUTBOUND_REQUESTS_MAX {
                    let _ = done.send(Err(NetError::Busy {
                        max: OUTBOUND_REQUESTS_MAX,
                    }));
                    return;
                }
                let addresses = member.dial_addresses();
                let id = self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_request_with_addresses(&peer, bytes, addresses);
                bump(&self.shared.counters.requests_out);
                self.outbound.insert(id, (peer, done));
            }
            Command::SetMembers(members) => self.set_members(members),
        }
    }

    fn set_members(&mut self, members: Vec<NetMember>) {
        let local = self.shared.local_peer_id;
        let mut wanted: HashMap<PeerId, (Vec<Multiaddr>, PeerRole)> = HashMap::new();
        for NetMember {
            peer_id,
            addresses,
            role,
        } in members
        {
            if peer_id != local {
                let entry = wanted.entry(peer_id).or_insert_with(|| (Vec::new(), role));
                entry.0.extend(addresses);
                entry.1 = role;
            }
        }
        let gone: Vec<PeerId> = self
            .members
            .keys()
            .filter(|p| !wanted.contains_key(p))
            .copied()
            .collect();
        for peer in gone {
            self.members.remove(&peer);
            self.swarm.behaviour_mut().allowed.disallow_peer(peer);
            let _ = self.swarm.disconnect_peer_id(peer);
            info!(%peer, "no longer a member: disallowed");
        }
        let now = Instant::now();
        for (peer, (mut addresses, role)) in wanted {
            addresses.dedup();
            match self.members.get_mut(&peer) {
                Some(member) => {
                    member.addresses = addresses;
                    if member.role != role {
                        // A new neighbour is dialled as if just met; one no longer a neighbour
                        // keeps its connection until it is idle.
                        member.role = role;
                        member.next_dial_at = first_dial_at(role, now);
                        member.last_used = now;
                    }
                }
                None => {
                    self.swarm.behaviour_mut().allowed.allow_peer(peer);
                    self.members.insert(peer, Member::new(addresses, role));
                    info!(%peer, "new member: allowed");
                }
            }
        }
        *self.swarm.behaviour_mut().limits.limits_mut() = connection_limits_for(self.members.len());
        self.redial_due_members();
    }

    fn on_reply(&mut self, channel: ResponseChannel<Vec<u8>>, reply: Option<Vec<u8>>) {
        match reply {
            // Dropping the channel closes the stream: the peer gets an error at once.
            None => debug!("request dropped or not answered in time; the peer gets an error"),
            Some(bytes) if bytes.len() > FRAME_BYTES_MAX => {
                warn!(
                    bytes = bytes.len(),
                    max = FRAME_BYTES_MAX,
                    "reply too large; the peer gets an error"
                );
            }
            Some(bytes) => {
                if self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_response(channel, bytes)
                    .is_err()
                {
                    debug!("peer gone before the reply could be sent");
                }
            }
        }
    }

    /// Sends an event to the node without waiting (invariant 5).
    fn emit(&self, event: NetEvent) {
        match self.events.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(event)) => {
                bump(&self.shared.counters.events_dropped);
                debug!(event = event.kind(), "event queue full; event dropped");
            }
            // The node dropped the receiver: nobody to tell.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    fn redial_due_members(&mut self) {
        let now = Instant::now();
        for (peer, member) in &mut self.members {
            if member.role == PeerRole::OnDemand
                || now < member.next_dial_at
                || self.swarm.is_connected(peer)
            {
                continue;
            }
            member.next_dial_at = now + member.backoff;
            member.backoff = (member.backoff * 2).min(REDIAL_BACKOFF_MAX);
            let opts = DialOpts::peer_id(*peer)
                .addresses(member.dial_addresses())
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            if let Err(e) = self.swarm.dial(opts) {
                // Already dialling, or no address known yet: not worth more than debug.
                debug!(%peer, "not dialling: {e}");
            }
        }
    }

    /// Closes connections to members that are not neighbours and saw no request either way for
    /// [`ON_DEMAND_IDLE`], unless a request to them is still in flight.
    fn close_idle_on_demand(&mut self) {
        let now = Instant::now();
        let idle: Vec<PeerId> = self
            .members
            .iter()
            .filter(|(peer, m)| {
                m.role == PeerRole::OnDemand
                    && now.duration_since(m.last_used) >= ON_DEMAND_IDLE
                    && self.swarm.is_connected(peer)
                    && !self.outbound.values().any(|(p, _)| p == *peer)
            })
            .map(|(peer, _)| *peer)
            .collect();
        for peer in idle {
            debug!(%peer, "closing an idle on-demand connection");
            bump(&self.shared.counters.idle_closed);
            let _ = self.swarm.disconnect_peer_id(peer);
        }
    }

    fn count_connections(&self) {
        let open = self
            .swarm
            .network_info()
            .connection_counters()
            .num_established();
        self.shared
            .counters
            .connections_open
            .store(u64::from(open), Ordering::Relaxed);
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<NetBehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(event) => self.on_behaviour_event(event),
            SwarmEvent::NewListenAddr { address, .. } => {
                debug!(%address, "listening");
                let mut addrs = lock(&self.shared.listen_addrs);
                if !addrs.contains(&address) {
                    addrs.push(address);
                }
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                lock(&self.shared.listen_addrs).retain(|a| *a != address);
            }
            SwarmEvent::ListenerClosed {
                addresses, reason, ..
            } => {
                warn!(?addresses, ?reason, "listener closed");
                lock(&self.shared.listen_addrs).retain(|a| !addresses.contains(a));
            }
            SwarmEvent::ListenerError { error, .. } => warn!("listener error: {error}"),
            SwarmEvent::ConnectionEstablished {
                peer_id,
                num_established,
                endpoint,
                ..
            } => {
                debug!(peer = %peer_id, addr = %endpoint.get_remote_address(), "connection established");
                self.count_connections();
                if let Some(member) = self.members.get_mut(&peer_id) {
                    member.backoff = REDIAL_BACKOFF_MIN;
                    // An on-demand connection the peer opened is given the idle time from now.
                    member.last_used = Instant::now();
                }
                if num_established.get() == 1 {
                    lock(&self.shared.connected).insert(peer_id);
                    info!(peer = %peer_id, "peer connected");
                    self.emit(NetEvent::PeerConnected(peer_id));
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                cause,
                ..
            } => {
                debug!(peer = %peer_id, ?cause, "connection closed");
                self.count_connections();
                if num_established == 0 {
                    lock(&self.shared.connected).remove(&peer_id);
                    if let Some(member) = self.members.get_mut(&peer_id) {
                        // A neighbour that dials first tries again at once: a clean restart is
                        // usually back within a second.
                        member.next_dial_at = first_dial_at(member.role, Instant::now());
                    }
                    info!(peer = %peer_id, "peer disconnected");
                    self.emit(NetEvent::PeerDisconnected(peer_id));
                }
            }
            SwarmEvent::IncomingConnectionError {
                send_back_addr,
                error,
                peer_id,
                ..
            } => {
                bump(&self.shared.counters.connections_refused);
                debug!(from = %send_back_addr, peer = ?peer_id, "incoming connection refused: {error}");
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                bump(&self.shared.counters.dials_failed);
                debug!(peer = ?peer_id, "dial failed: {error}");
            }
            _ => {}
        }
    }

    fn on_behaviour_event(&mut self, event: NetBehaviourEvent) {
        match event {
            NetBehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message,
                ..
            }) => {
                // Strict validation guarantees `source` is present and signed; fall back to the
                // relaying peer only to keep the type total.
                let from = message.source.unwrap_or(propagation_source);
                if !self.members.contains_key(&from) {
                    // Only a member can relay, but a faulty one could relay a message claiming a
                    // stranger as author: the node hears members only (invariant 3). Debug, not
                    // warn, so a faulty member cannot flood the log.
                    debug!(author = %from, relayed_by = %propagation_source, "dropping gossip from a non-member");
                    return;
                }
                bump(&self.shared.counters.gossip_in);
                self.emit(NetEvent::Gossip {
                    from,
                    via: propagation_source,
                    topic: message.topic.into_string(),
                    bytes: message.data,
                });
            }
            NetBehaviourEvent::Gossipsub(other) => debug!(event = ?other, "gossipsub"),
            NetBehaviourEvent::Sync(event) => self.on_sync_event(event),
            NetBehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                debug!(peer = %peer_id, addrs = ?info.listen_addrs, version = info.protocol_version, "identified");
                if let Some(member) = self.members.get_mut(&peer_id) {
                    member.learn(info.listen_addrs);
                }
            }
            NetBehaviourEvent::Identify(_) => {}
            NetBehaviourEvent::Ping(ping::Event {
                peer,
                connection,
                result: Err(failure),
            }) if !matches!(failure, ping::Failure::Unsupported) => {
                debug!(%peer, "ping failed: {failure}; closing the connection");
                self.swarm.close_connection(connection);
            }
            NetBehaviourEvent::Ping(_) => {}
            NetBehaviourEvent::Allowed(never) => match never {},
            NetBehaviourEvent::Limits(never) => match never {},
        }
    }

    fn on_sync_event(&mut self, event: request_response::Event<Vec<u8>, Vec<u8>>) {
        match event {
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                bump(&self.shared.counters.requests_in);
                if let Some(member) = self.members.get_mut(&peer) {
                    member.last_used = Instant::now();
                }
                if self.replies.len() >= INBOUND_REQUESTS_MAX {
                    warn!(%peer, max = INBOUND_REQUESTS_MAX, "too many requests waiting; refusing one");
                    return; // dropping `channel` fails the request at the peer
                }
                let (reply, answer) = oneshot::channel();
                self.emit(NetEvent::Request {
                    from: peer,
                    bytes: request,
                    reply,
                });
                // If the event was dropped, `answer` resolves at once with an error.
                self.replies.push(
                    async move {
                        let reply = tokio::time::timeout(REQUEST_TIMEOUT, answer)
                            .await
                            .ok()
                            .and_then(Result::ok);
                        (channel, reply)
                    }
                    .boxed(),
                );
            }
            request_response::Event::Message {
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if let Some((peer, done)) = self.outbound.remove(&request_id) {
                    if let Some(member) = self.members.get_mut(&peer) {
                        member.last_used = Instant::now();
                    }
                    let _ = done.send(Ok(response));
                }
            }
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                debug!(%peer, "request failed: {error}");
                if let Some((peer, done)) = self.outbound.remove(&request_id) {
                    let error = match error {
                        request_response::OutboundFailure::Timeout => NetError::RequestTimeout {
                            peer,
                            timeout_ms: u64::try_from(REQUEST_TIMEOUT.as_millis())
                                .unwrap_or(u64::MAX),
                        },
                        other => NetError::RequestFailed {
                            peer,
                            reason: other.to_string(),
                        },
                    };
                    let _ = done.send(Err(error));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                debug!(%peer, "inbound request failed: {error}");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }
}
