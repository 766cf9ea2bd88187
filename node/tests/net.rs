//! The private network on real sockets (127.0.0.1, port 0): members connect, gossip and answer
//! requests; strangers and wrong network keys are kept out; oversized and truncated frames are
//! refused; a restarted member is found again. Every wait is bounded.

use std::time::Duration;

use hukou_node::net::{
    self, FRAME_HEADER_BYTES, FrameCodec, FrameError, NetConfig, NetError, NetEvent, NetHandle,
    NetMember, PeerRole, read_frame, write_frame,
};
use hukou_protocol::limits::FRAME_BYTES_MAX;
use libp2p::{Multiaddr, PeerId, StreamProtocol, futures::io::Cursor, request_response::Codec};
use tokio::{
    sync::{mpsc, oneshot},
    time::{Instant, sleep, timeout},
};

const PSK: [u8; 32] = [7; 32];
const OTHER_PSK: [u8; 32] = [8; 32];
const TOPIC: &str = "checkpoints";
const ANY_PORT: &str = "/ip4/127.0.0.1/tcp/0";

/// Longest any single wait in these tests; a healthy run needs well under a second for each.
const WAIT: Duration = Duration::from_secs(8);

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// A bureau key, as the node would load it from its key file.
fn secret(n: u8) -> [u8; 32] {
    [n; 32]
}

/// The peer id the genesis gives a bureau: derived from the public key, never from the secret.
fn peer_id(n: u8) -> PeerId {
    let public = ed25519_dalek::SigningKey::from_bytes(&secret(n))
        .verifying_key()
        .to_bytes();
    net::peer_id_from_ed25519_public(&public).expect("valid public key")
}

fn member(n: u8, addresses: Vec<Multiaddr>) -> NetMember {
    NetMember {
        peer_id: peer_id(n),
        addresses,
        role: PeerRole::Neighbour { dial_first: true },
    }
}

/// A running network node as a test sees it.
struct Node {
    net: NetHandle,
    /// Gossip the node received: (author, topic, bytes).
    gossip: mpsc::UnboundedReceiver<(PeerId, String, Vec<u8>)>,
    /// Peers the node reported connected, in order.
    connected: mpsc::UnboundedReceiver<PeerId>,
    /// Dropping or sending stops the node.
    stop: Option<oneshot::Sender<()>>,
    /// Resolves when the event stream ended, i.e. the network task has stopped.
    stopped: oneshot::Receiver<()>,
}

impl Node {
    fn addr(&self) -> Multiaddr {
        self.net.listen_addrs()[0].clone()
    }

    /// Stops the node and waits until its listener is closed.
    async fn shut_down(mut self) {
        let _ = self.stop.take().expect("running").send(());
        timeout(WAIT, &mut self.stopped)
            .await
            .expect("stops in time")
            .expect("stop signal");
    }
}

/// Starts a node with bureau key `n` and serves its events: requests are answered with
/// `re:` + the request, except a request `drop`, whose reply is dropped.
async fn start(
    n: u8,
    psk: [u8; 32],
    listen: &str,
    members: Vec<NetMember>,
) -> Result<Node, NetError> {
    let (stop, stop_rx) = oneshot::channel::<()>();
    let config = NetConfig {
        identity: net::keypair_from_ed25519_secret(secret(n)),
        psk,
        listen: listen.parse().expect("multiaddr"),
        members,
        message_id: None,
    };
    let (net, mut events) = net::spawn(config, async move {
        let _ = stop_rx.await;
    })
    .await?;
    assert_eq!(
        net.local_peer_id(),
        peer_id(n),
        "identity and genesis derive the same peer id"
    );
    net.subscribe(TOPIC).await.expect("subscribe");
    let (gossip_tx, gossip) = mpsc::unbounded_channel();
    let (connected_tx, connected) = mpsc::unbounded_channel();
    let (stopped_tx, stopped) = oneshot::channel();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            match event {
                NetEvent::Gossip {
                    from, topic, bytes, ..
                } => {
                    let _ = gossip_tx.send((from, topic, bytes));
                }
                NetEvent::Request { bytes, reply, .. } => {
                    if bytes != b"drop" {
                        let _ = reply.send([b"re:".as_slice(), &bytes].concat());
                    }
                }
                NetEvent::PeerConnected(peer) => {
                    let _ = connected_tx.send(peer);
                }
                NetEvent::PeerDisconnected(_) => {}
            }
        }
        let _ = stopped_tx.send(());
    });
    Ok(Node {
        net,
        gossip,
        connected,
        stop: Some(stop),
        stopped,
    })
}

/// Waits until `node` reports every one of `peers` connected.
async fn wait_connected(node: &NetHandle, peers: &[PeerId]) {
    let deadline = Instant::now() + WAIT;
    loop {
        let connected = node.connected_peers();
        if peers.iter().all(|p| connected.contains(p)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{peers:?} not all connected in time: {connected:?}"
        );
        sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn members_connect_gossip_and_answer_requests() {
    init_tracing();
    let started = Instant::now();
    // A knows no addresses; B knows A's; C knows both. Everyone still ends up connected.
    let mut a = start(1, PSK, ANY_PORT, vec![member(2, vec![]), member(3, vec![])])
        .await
        .unwrap();
    let mut b = start(
        2,
        PSK,
        ANY_PORT,
        vec![member(1, vec![a.addr()]), member(3, vec![])],
    )
    .await
    .unwrap();
    let mut c = start(
        3,
        PSK,
        ANY_PORT,
        vec![member(1, vec![a.addr()]), member(2, vec![b.addr()])],
    )
    .await
    .unwrap();
    wait_connected(&a.net, &[peer_id(2), peer_id(3)]).await;
    wait_connected(&b.net, &[peer_id(1), peer_id(3)]).await;
    wait_connected(&c.net, &[peer_id(1), peer_id(2)]).await;

    // Publish until B and C have both received one: right after connecting, subscriptions may
    // not have been exchanged yet, and publishing then reports InsufficientPeers (not fatal).
    let (mut b_got, mut c_got) = (None, None);
    let deadline = Instant::now() + WAIT;
    let mut round = 0u32;
    while b_got.is_none() || c_got.is_none() {
        assert!(
            Instant::now() < deadline,
            "gossip did not reach B ({b_got:?}) and C ({c_got:?})"
        );
        round += 1;
        match a
            .net
            .publish(TOPIC, format!("checkpoint {round}").into_bytes())
            .await
        {
            Ok(()) | Err(NetError::InsufficientPeers { .. }) => {}
            Err(e) => panic!("publish failed: {e}"),
        }
        sleep(Duration::from_millis(100)).await;
        while let Ok(message) = b.gossip.try_recv() {
            b_got.get_or_insert(message);
        }
        while let Ok(message) = c.gossip.try_recv() {
            c_got.get_or_insert(message);
        }
    }
    for (from, topic, bytes) in [b_got.unwrap(), c_got.unwrap()] {
        assert_eq!(from, peer_id(1));
        assert_eq!(topic, TOPIC);
        assert!(bytes.starts_with(b"checkpoint "), "{bytes:?}");
    }
    assert!(a.net.stats().gossip_out >= 1);
    assert!(b.net.stats().gossip_in >= 1);

    // Request and response.
    let answer = timeout(WAIT, a.net.request(peer_id(2), b"tips".to_vec()))
        .await
        .unwrap();
    assert_eq!(answer.unwrap(), b"re:tips");
    assert_eq!(a.net.stats().requests_out, 1);
    assert_eq!(b.net.stats().requests_in, 1);
    assert_eq!(a.net.stats().connected_peers, 2);

    // A reply dropped by the node is an error at the requester, promptly.
    let asked = Instant::now();
    let answer = timeout(WAIT, a.net.request(peer_id(3), b"drop".to_vec()))
        .await
        .unwrap();
    assert!(
        matches!(answer, Err(NetError::RequestFailed { .. })),
        "{answer:?}"
    );
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "took {:?}",
        asked.elapsed()
    );

    // Requests go to members only, and payloads over a frame are refused before sending.
    let stranger = peer_id(99);
    assert!(matches!(
        a.net.request(stranger, vec![1]).await,
        Err(NetError::NotMember { .. })
    ));
    let too_big = vec![0; FRAME_BYTES_MAX + 1];
    assert!(matches!(
        a.net.request(peer_id(2), too_big).await,
        Err(NetError::FrameTooLarge { .. })
    ));

    assert!(
        a.connected.try_recv().is_ok(),
        "A reported its peers connected"
    );
    a.shut_down().await;
    b.shut_down().await;
    c.shut_down().await;
    tracing::info!(elapsed = ?started.elapsed(), "test done");
}

#[tokio::test]
async fn non_member_with_network_key_gets_no_usable_connection() {
    init_tracing();
    let mut a = start(1, PSK, ANY_PORT, vec![member(2, vec![])])
        .await
        .unwrap();
    let b = start(2, PSK, ANY_PORT, vec![member(1, vec![a.addr()])])
        .await
        .unwrap();
    wait_connected(&a.net, &[peer_id(2)]).await;

    // X has the network key and believes A is a member, but the genesis does not name X.
    let x = start(9, PSK, ANY_PORT, vec![member(1, vec![a.addr()])])
        .await
        .unwrap();

    // X's request to A fails (A drops the connection after Noise proves who X is).
    let answer = timeout(WAIT, x.net.request(peer_id(1), b"tips".to_vec()))
        .await
        .unwrap();
    assert!(
        matches!(answer, Err(NetError::RequestFailed { .. })),
        "{answer:?}"
    );

    // For a while (X keeps redialling), A never reports X connected, and counts refusals.
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        assert!(!a.net.connected_peers().contains(&peer_id(9)));
        sleep(Duration::from_millis(20)).await;
    }
    while let Ok(peer) = a.connected.try_recv() {
        assert_ne!(peer, peer_id(9), "A reported the stranger connected");
    }
    assert!(
        a.net.stats().connections_refused >= 1,
        "{:?}",
        a.net.stats()
    );
    assert_eq!(a.net.connected_peers(), vec![peer_id(2)]);
    assert_eq!(b.net.connected_peers(), vec![peer_id(1)]);

    x.shut_down().await;
    a.shut_down().await;
    b.shut_down().await;
}

#[tokio::test]
async fn member_with_wrong_network_key_cannot_connect() {
    init_tracing();
    let mut a = start(1, PSK, ANY_PORT, vec![member(2, vec![])])
        .await
        .unwrap();
    // B is in the genesis, but holds the wrong network key.
    let b = start(2, OTHER_PSK, ANY_PORT, vec![member(1, vec![a.addr()])])
        .await
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        assert!(
            a.net.connected_peers().is_empty(),
            "A: {:?}",
            a.net.connected_peers()
        );
        assert!(
            b.net.connected_peers().is_empty(),
            "B: {:?}",
            b.net.connected_peers()
        );
        sleep(Duration::from_millis(20)).await;
    }
    assert!(a.connected.try_recv().is_err(), "A reported a connection");

    // The failed handshakes are counted (a garbled handshake may take up to its timeout).
    let deadline = Instant::now() + WAIT;
    while a.net.stats().connections_refused == 0 {
        assert!(
            Instant::now() < deadline,
            "no refusal counted: {:?}",
            a.net.stats()
        );
        sleep(Duration::from_millis(50)).await;
    }
    assert!(b.net.stats().dials_failed >= 1, "{:?}", b.net.stats());
    let answer = timeout(WAIT, b.net.request(peer_id(1), b"tips".to_vec()))
        .await
        .unwrap();
    assert!(
        matches!(answer, Err(NetError::RequestFailed { .. })),
        "{answer:?}"
    );

    a.shut_down().await;
    b.shut_down().await;
}

fn frame_error(error: &std::io::Error) -> FrameError {
    error
        .get_ref()
        .and_then(|e| e.downcast_ref::<FrameError>())
        .cloned()
        .expect("a FrameError")
}

#[tokio::test]
async fn codec_refuses_oversized_and_truncated_frames() {
    let max = FRAME_BYTES_MAX;

    // Round trip.
    let mut buffer = Cursor::new(Vec::new());
    write_frame(&mut buffer, b"entries", max).await.unwrap();
    assert_eq!(buffer.get_ref().as_slice(), b"\0\0\0\x07entries");
    buffer.set_position(0);
    assert_eq!(read_frame(&mut buffer, max).await.unwrap(), b"entries");

    // A declared length over the limit is refused from the header alone: the reader holds no
    // body, so had the decoder gone on to read one it would have failed with UnexpectedEof.
    let declared = max + 1;
    let mut oversized = Cursor::new((declared as u32).to_be_bytes().to_vec());
    let error = read_frame(&mut oversized, max).await.unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
    assert_eq!(frame_error(&error), FrameError::TooLarge { declared, max });
    let mut huge = Cursor::new(u32::MAX.to_be_bytes().to_vec());
    let error = read_frame(&mut huge, max).await.unwrap_err();
    assert_eq!(
        frame_error(&error),
        FrameError::TooLarge {
            declared: u32::MAX as usize,
            max
        }
    );

    // Exactly the limit is fine (checked with a small limit to keep the test fast).
    let mut exact = Cursor::new([&3u32.to_be_bytes()[..], b"abc"].concat());
    assert_eq!(read_frame(&mut exact, 3).await.unwrap(), b"abc");

    // Truncated body and truncated header are errors that name what arrived.
    let mut short = Cursor::new([&10u32.to_be_bytes()[..], b"abcd"].concat());
    let error = read_frame(&mut short, max).await.unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::UnexpectedEof);
    assert_eq!(
        frame_error(&error),
        FrameError::BodyTruncated {
            declared: 10,
            received: 4
        }
    );
    let mut header_only = Cursor::new(vec![0, 0]);
    let error = read_frame(&mut header_only, max).await.unwrap_err();
    assert_eq!(
        frame_error(&error),
        FrameError::HeaderTruncated { received: 2 }
    );
    const { assert!(FRAME_HEADER_BYTES > 2) };
    let mut empty = Cursor::new(Vec::new());
    assert_eq!(
        frame_error(&read_frame(&mut empty, max).await.unwrap_err()),
        FrameError::HeaderTruncated { received: 0 }
    );

    // The writer refuses what the reader would refuse.
    let mut sink = Cursor::new(Vec::new());
    let error = write_frame(&mut sink, &[0; 4], 3).await.unwrap_err();
    assert_eq!(
        frame_error(&error),
        FrameError::TooLarge {
            declared: 4,
            max: 3
        }
    );
    assert!(sink.get_ref().is_empty(), "nothing written");

    // The request/response codec uses the same rules.
    let protocol = StreamProtocol::new(net::SYNC_PROTOCOL);
    let mut codec = FrameCodec { frame_bytes_max: 8 };
    let mut io = Cursor::new(Vec::new());
    codec
        .write_request(&protocol, &mut io, b"ping".to_vec())
        .await
        .unwrap();
    codec
        .write_response(&protocol, &mut io, b"pong".to_vec())
        .await
        .unwrap();
    io.set_position(0);
    assert_eq!(
        codec.read_request(&protocol, &mut io).await.unwrap(),
        b"ping"
    );
    assert_eq!(
        codec.read_response(&protocol, &mut io).await.unwrap(),
        b"pong"
    );
    let mut io = Cursor::new(9u32.to_be_bytes().to_vec());
    let error = codec.read_response(&protocol, &mut io).await.unwrap_err();
    assert_eq!(
        frame_error(&error),
        FrameError::TooLarge {
            declared: 9,
            max: 8
        }
    );
    assert_eq!(FrameCodec::default().frame_bytes_max, FRAME_BYTES_MAX);
}

#[tokio::test]
async fn restarted_member_is_found_again() {
    init_tracing();
    // B listens first, so A knows B's address; B's config names A without an address, so after
    // B restarts only A's redial loop can bring them back together.
    let b = start(2, PSK, ANY_PORT, vec![member(1, vec![])])
        .await
        .unwrap();
    let b_addr = b.addr();
    let a = start(1, PSK, ANY_PORT, vec![member(2, vec![b_addr.clone()])])
        .await
        .unwrap();
    wait_connected(&a.net, &[peer_id(2)]).await;

    // The port is taken while B runs: a second node cannot bind it.
    let taken = start(3, PSK, &b_addr.to_string(), vec![]).await;
    assert!(
        matches!(taken, Err(NetError::Listen { .. })),
        "{:?}",
        taken.err()
    );

    b.shut_down().await;
    let deadline = Instant::now() + WAIT;
    while !a.net.connected_peers().is_empty() {
        assert!(Instant::now() < deadline, "A did not notice B leaving");
        sleep(Duration::from_millis(20)).await;
    }

    let restarted_at = Instant::now();
    let b = start(2, PSK, &b_addr.to_string(), vec![member(1, vec![])])
        .await
        .unwrap();
    assert_eq!(b.addr(), b_addr);
    wait_connected(&a.net, &[peer_id(2)]).await;
    let took = restarted_at.elapsed();
    tracing::info!(?took, "reconnected");
    assert!(took < Duration::from_secs(7), "reconnection took {took:?}");
    let answer = timeout(WAIT, a.net.request(peer_id(2), b"tips".to_vec()))
        .await
        .unwrap();
    assert_eq!(answer.unwrap(), b"re:tips");

    a.shut_down().await;
    b.shut_down().await;
}

#[test]
fn identity_derivation_matches_the_genesis_key() {
    let keypair = net::keypair_from_ed25519_secret(secret(5));
    assert_eq!(keypair.public().to_peer_id(), peer_id(5));
    assert_ne!(peer_id(5), peer_id(6));
    // Not every 32 bytes are a public key: find some that ed25519-dalek refuses too.
    let not_a_key = (0..=255u8)
        .map(|b| [b; 32])
        .find(|bytes| ed25519_dalek::VerifyingKey::from_bytes(bytes).is_err())
        .expect("some repeated byte is not a curve point");
    let result = net::peer_id_from_ed25519_public(&not_a_key);
    assert!(
        matches!(result, Err(NetError::InvalidPublicKey { .. })),
        "{result:?}"
    );
}
