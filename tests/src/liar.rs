//! A lying member for Byzantine tests: a real member key of a [`Testnet`](crate::Testnet)
//! bureau, driven by test code instead of a `hukou` node.
//!
//! The liar never runs the node's rulebook, store or witness. It signs whatever the test asks
//! ([`Liar::sign`], [`Liar::forge`], [`Liar::checkpoint`]) and talks to the honest members through
//! **faces** ([`Liar::face`]): each face is its own libp2p swarm built by the node's own
//! [`hukou_node::net::spawn`] (pnet, Noise, Yamux, allow list, gossipsub, request-response)
//! with the liar's identity, whose allow list names only the honest peers that face is meant to
//! talk to. So two faces can show two different logs to two different peers:
//!
//! - [`Face::push`] gossips entries on the node's entry topic (the honest peers relay gossip to
//!   each other, as gossipsub does);
//! - [`Face::show`] sets the log that face serves to pulls: `Tips` answers the length of the
//!   contiguous prefix it shows (or a claimed length), `Range` the entries it shows from there;
//! - [`Face::announce`] gossips a signed checkpoint with the liar's own cosignature, and repeats
//!   it every [`HEARTBEAT`] like an honest author's heartbeat, until told otherwise;
//! - [`Face::gossip_certificate`] gossips a certificate, valid or not.
//!
//! Messages are encoded with the node's own `sync` and `witness` types, so the liar speaks the
//! wire protocol exactly; only what it says is false.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use ed25519_dalek::SigningKey;
use hukou_keys::genesis::Genesis;
use hukou_keys::secret::{BureauKey, NetworkKey, load_person_key};
use hukou_node::net::{self, NetConfig, NetEvent, NetHandle, NetMember};
use hukou_node::sync::{self, Gossip, SyncRequest, SyncResponse, TOPIC_ENTRIES};
use hukou_node::witness::{TOPIC_CHECKPOINTS, WitnessGossip};
use hukou_protocol::checkpoint::{Certificate, Checkpoint, Cosignature, SignedCheckpoint};
use hukou_protocol::id::{CitizenId, PersonKey};
use hukou_protocol::merkle::Tree;
use hukou_protocol::{
    Body, BureauCode, Entry, EntryHash, HouseholdId, Membership, PersonTag, Placement, Relation,
    Seq, Signature, SignedEntry,
};
use tokio::sync::{mpsc, oneshot};

use crate::Testnet;

/// How often a face repeats the checkpoint it announces.
pub const HEARTBEAT: Duration = Duration::from_millis(500);

/// How long [`Face::push`] and [`Face::announce`] retry while no peer is subscribed yet.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);

/// Milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A member bureau whose key the test holds.
pub struct Liar {
    rt: tokio::runtime::Runtime,
    key: SigningKey,
    psk: [u8; 32],
    person_key: PersonKey,
    /// The liar's bureau.
    pub code: BureauCode,
    /// The network's membership, from the testnet's signed genesis.
    pub membership: Membership,
    /// The configuration epoch the liar's entries name (0 unless a test sets it).
    pub epoch: std::sync::atomic::AtomicU32,
    /// Every other member's peer id and genesis addresses, by bureau code.
    members: Vec<(String, NetMember)>,
}

impl Liar {
    /// Takes over bureau `i` of `net` (which must not be started): its key file, the genesis,
    /// the person key and the network key, as its node would have loaded them.
    pub fn new(net: &Testnet, i: usize) -> Liar {
        let dir = &net.nodes[i].dir;
        let key = BureauKey::load(&dir.join("bureau.key")).expect("the liar's key file");
        let genesis = Genesis::load(&dir.join("genesis.toml"))
            .expect("genesis")
            .verify()
            .expect("the genesis verifies");
        let membership = genesis.membership().clone();
        let code: BureauCode = net.code(i).parse().expect("code");
        assert_eq!(
            membership.key(code),
            Some(&key.public()),
            "the key file is bureau {code}'s genesis key"
        );
        let mut members = Vec::new();
        for m in membership.members() {
            if m.code == code {
                continue;
            }
            let peer_id = net::peer_id_from_ed25519_public(&m.key.to_bytes()).expect("peer id");
            let addresses = genesis
                .addresses(m.code)
                .unwrap_or_default()
                .iter()
                .map(|a| a.parse().expect("genesis address"))
                .collect();
            members.push((
                m.code.to_string(),
                NetMember {
                    peer_id,
                    addresses,
                    role: net::PeerRole::Neighbour { dial_first: true },
                },
            ));
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        Liar {
            rt,
            key: key.signing_key().clone(),
            psk: NetworkKey::load(&dir.join("network.key"))
                .expect("network key")
                .to_bytes(),
            person_key: load_person_key(&dir.join("person.key")).expect("person key"),
            code,
            membership,
            epoch: std::sync::atomic::AtomicU32::new(0),
            members,
        }
    }

    /// The person tag of a citizen ID, as every member computes it.
    pub fn tag(&self, id: &str) -> PersonTag {
        self.person_key
            .tag(&CitizenId::parse(id).expect("a valid citizen ID"))
    }

    /// The member whose log may grant a claim on the person with this ID
    /// (`Membership::arbiter`).
    pub fn arbiter_of(&self, id: &str) -> BureauCode {
        self.membership.arbiter(&self.tag(id))
    }

    /// The way a bureau that arbitrates a person registers it out of nowhere, after `log`: a
    /// claim on the person granted to itself, then the enrolment that consumes it, heading a
    /// new household.
    ///
    /// # Panics
    /// If the liar is not the person's arbiter (honest members would refuse the claim).
    pub fn claim_and_enrol(
        &self,
        log: &[SignedEntry],
        id: &str,
        household: u64,
    ) -> [SignedEntry; 2] {
        assert_eq!(
            self.arbiter_of(id),
            self.code,
            "the liar arbitrates the person it claims"
        );
        let person = self.tag(id);
        let claim = self.append(
            log,
            Body::Claim {
                person,
                claimant: self.code,
                after: None,
            },
        );
        let mut with_claim = log.to_vec();
        with_claim.push(claim.clone());
        let enrol = self.append(
            &with_claim,
            Body::Enrol {
                person,
                placement: Liar::head_of(household),
                claim: claim.reference(),
            },
        );
        [claim, enrol]
    }

    /// A new household headed by the person placed in it.
    pub fn head_of(household: u64) -> Placement {
        Placement {
            household: HouseholdId(household),
            relation: Relation::Head,
        }
    }

    /// The entry at `seq` of the liar's log after `prev`, with `body`, timed now.
    pub fn entry(&self, seq: u64, prev: EntryHash, body: Body) -> Entry {
        Entry {
            network: self.membership.network(),
            epoch: self.epoch.load(std::sync::atomic::Ordering::Relaxed),
            author: self.code,
            seq: Seq(seq),
            prev,
            time_ms: now_ms(),
            body,
        }
    }

    /// Signs `body` at `seq` after `prev` with the liar's real key.
    pub fn sign(&self, seq: u64, prev: EntryHash, body: Body) -> SignedEntry {
        self.entry(seq, prev, body).sign(&self.key)
    }

    /// The next entry after `log` (the log as the liar chooses to extend it).
    pub fn append(&self, log: &[SignedEntry], body: Body) -> SignedEntry {
        let prev = log.last().map_or(EntryHash::ZERO, SignedEntry::hash);
        self.sign(log.len() as u64, prev, body)
    }

    /// `entry` as it is, validly signed with the liar's key (a thief's entry).
    pub fn sign_entry(&self, entry: Entry) -> SignedEntry {
        entry.sign(&self.key)
    }

    /// `entry` with a signature that does not verify (its own signature with one bit flipped).
    pub fn forge(&self, entry: Entry) -> SignedEntry {
        let mut bytes = entry.clone().sign(&self.key).signature().0;
        bytes[10] ^= 0x01;
        SignedEntry::from_parts(entry, Signature(bytes))
    }

    /// A checkpoint of `log` (all of it), signed by the liar.
    pub fn checkpoint(&self, log: &[SignedEntry]) -> SignedCheckpoint {
        let mut tree = Tree::new();
        for e in log {
            tree.push(e.hash().0);
        }
        Checkpoint {
            network: self.membership.network(),
            epoch: 0,
            log: self.code,
            size: log.len() as u64,
            root: tree.root(),
            time_ms: now_ms(),
        }
        .sign(&self.key)
    }

    /// The liar's cosignature of a checkpoint, as a witness.
    pub fn cosign(&self, checkpoint: &Checkpoint) -> Cosignature {
        Cosignature::sign(checkpoint, self.code, &self.key)
    }

    /// Opens a face that talks to the members `peers` (bureau codes) and to nobody else, and
    /// waits until it is connected to all of them.
    pub fn face(&self, peers: &[&str]) -> Face {
        let members: Vec<NetMember> = peers
            .iter()
            .map(|p| {
                self.members
                    .iter()
                    .find(|(code, _)| code == p)
                    .unwrap_or_else(|| panic!("{p} is not another member"))
                    .1
                    .clone()
            })
            .collect();
        let peer_ids: Vec<_> = members.iter().map(|m| m.peer_id).collect();
        let config = NetConfig {
            identity: net::keypair_from_ed25519_secret(self.key.to_bytes()),
            psk: self.psk,
            listen: "/ip4/127.0.0.1/tcp/0".parse().expect("multiaddr"),
            members,
            message_id: None,
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let (handle, events) = self
            .rt
            .block_on(net::spawn(config, async move {
                let _ = stopped.await;
            }))
            .expect("the face's network starts");
        let view = Arc::new(Mutex::new(View::default()));
        self.rt.spawn(serve(events, view.clone(), self.code));
        let face = Face {
            rt: self.rt.handle().clone(),
            net: handle,
            view,
            key: self.key.clone(),
            code: self.code,
            peers: peers.iter().map(|p| p.to_string()).collect(),
            heartbeat: Mutex::new(None),
            _stop: stop,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !peer_ids
            .iter()
            .all(|p| face.net.connected_peers().contains(p))
        {
            assert!(
                Instant::now() < deadline,
                "face to {peers:?} not connected within 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        face
    }
}

/// What a face shows to pulls.
#[derive(Default)]
struct View {
    /// The entries of the liar's log this face shows, by seq (may have gaps).
    entries: BTreeMap<u64, Vec<u8>>,
    /// A length to claim in `Tips` instead of the contiguous prefix shown.
    claimed: Option<u64>,
    /// Certificates (encoded) served to `Certificates` requests.
    certificates: Vec<Vec<u8>>,
}

impl View {
    fn contiguous_len(&self) -> u64 {
        let mut n = 0;
        while self.entries.contains_key(&n) {
            n += 1;
        }
        n
    }
}

/// Answers the honest peers' pulls from the face's view; ignores gossip.
async fn serve(mut events: mpsc::Receiver<NetEvent>, view: Arc<Mutex<View>>, me: BureauCode) {
    while let Some(event) = events.recv().await {
        let NetEvent::Request { bytes, reply, .. } = event else {
            continue;
        };
        let response = {
            let view = view.lock().expect("view");
            match sync::decode::<SyncRequest>(&bytes) {
                Some(SyncRequest::Tips) => {
                    let len = view.claimed.unwrap_or_else(|| view.contiguous_len());
                    let tip = len
                        .checked_sub(1)
                        .and_then(|last| view.entries.get(&last))
                        .and_then(|raw| SignedEntry::decode(raw).ok())
                        .map_or([0; 32], |e| e.hash().0);
                    SyncResponse::Tips(
                        0,
                        if len > 0 {
                            vec![(me, len, tip)]
                        } else {
                            vec![]
                        },
                    )
                }
                Some(SyncRequest::Range { log, from, max }) if log == me => {
                    let mut out = Vec::new();
                    let mut seq = from;
                    while let Some(raw) = view.entries.get(&seq) {
                        if out.len() >= max as usize {
                            break;
                        }
                        out.push(raw.clone());
                        seq += 1;
                    }
                    SyncResponse::Entries(out)
                }
                Some(SyncRequest::Range { .. }) => SyncResponse::Entries(Vec::new()),
                Some(SyncRequest::Certificates) => {
                    SyncResponse::Certificates(view.certificates.clone())
                }
                Some(SyncRequest::Config { .. }) => SyncResponse::Config(Vec::new()),
                // A digest no honest node's matches: whoever asks pulls from the liar, as an
                // honest node pulls from any peer whose holdings differ from its own.
                Some(SyncRequest::Digest(_)) => SyncResponse::Digest([0; 32]),
                // As an arbiter the liar grants nothing (refusing service is all a lone liar can
                // do to claims: a claim it grants still needs a certificate to be used).
                Some(SyncRequest::Claims { .. }) => {
                    SyncResponse::Error("this bureau grants no claims".into())
                }
                None => SyncResponse::Error("request did not decode".into()),
            }
        };
        let _ = reply.send(sync::encode(&response));
    }
}

/// One face of the liar: a swarm connected to chosen honest peers only.
pub struct Face {
    rt: tokio::runtime::Handle,
    net: NetHandle,
    view: Arc<Mutex<View>>,
    key: SigningKey,
    code: BureauCode,
    /// The bureaus this face talks to.
    pub peers: Vec<String>,
    heartbeat: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Dropped with the face: stops its network.
    _stop: oneshot::Sender<()>,
}

impl Face {
    /// How many honest members this face is connected to now.
    pub fn connected(&self) -> usize {
        self.net.connected_peers().len()
    }

    /// Serves `log` to pulls from now on (replacing what was shown), and tells each connected
    /// peer its digest changed (a digest request that cannot match), so the peer pulls from
    /// it: nodes no longer poll each other, they pull when a digest or a size says so.
    pub fn show(&self, log: &[SignedEntry]) {
        {
            let mut view = self.view.lock().expect("view");
            view.entries = log.iter().map(|e| (e.entry().seq.0, e.encode())).collect();
            view.claimed = None;
        }
        self.nudge();
    }

    /// Sends every connected peer a digest request that cannot match its own: each answers
    /// and pulls from this face.
    pub fn nudge(&self) {
        for peer in self.net.connected_peers() {
            let net = self.net.clone();
            self.rt.spawn(async move {
                let _ = net
                    .request(peer, sync::encode(&SyncRequest::Digest([0xff; 32])))
                    .await;
            });
        }
    }

    /// Serves these entries (by their own seq, gaps allowed) to pulls, and claims `claimed` as
    /// the log's length in `Tips` if given.
    pub fn show_with_gaps(&self, entries: &[&SignedEntry], claimed: Option<u64>) {
        let mut view = self.view.lock().expect("view");
        view.entries = entries
            .iter()
            .map(|e| (e.entry().seq.0, e.encode()))
            .collect();
        view.claimed = claimed;
        drop(view);
        self.nudge();
    }

    /// Gossips raw entry bytes (which need not decode) on the node's entry topic, in one
    /// message, retrying until some peer is subscribed.
    pub fn push_raw(&self, raw: Vec<Vec<u8>>) {
        self.publish(TOPIC_ENTRIES, sync::encode(&Gossip::Entries(raw)));
    }

    /// Gossips entries in one message.
    pub fn push(&self, entries: &[&SignedEntry]) {
        self.push_raw(entries.iter().map(|e| e.encode()).collect());
    }

    /// Gossips `checkpoint` with the liar's cosignature of it now and every [`HEARTBEAT`]
    /// until the next `announce` or [`Face::quiet`].
    pub fn announce(&self, checkpoint: &SignedCheckpoint) {
        self.quiet();
        let c = checkpoint.checkpoint;
        let messages = [
            sync::encode(&WitnessGossip::Checkpoint(checkpoint.encode())),
            sync::encode(&WitnessGossip::Cosignature {
                checkpoint: c.encode(),
                cosignature: Cosignature::sign(&c, self.code, &self.key),
            }),
        ];
        for m in &messages {
            self.publish(TOPIC_CHECKPOINTS, m.clone());
        }
        let net = self.net.clone();
        let task = self.rt.spawn(async move {
            loop {
                tokio::time::sleep(HEARTBEAT).await;
                for m in &messages {
                    // Each publish is a new gossip message (a new sequence number).
                    let _ = net.publish(TOPIC_CHECKPOINTS, m.clone()).await;
                }
            }
        });
        *self.heartbeat.lock().expect("heartbeat") = Some(task);
    }

    /// Serves these certificates (whatever they hold) to pulls from now on, and nudges the
    /// connected peers to pull. Gossip would carry only the first certificate of a checkpoint
    /// (its message id is the checkpoint's), so several for one checkpoint are offered here.
    pub fn offer_certificates(&self, certificates: &[&Certificate]) {
        self.view.lock().expect("view").certificates =
            certificates.iter().map(|c| c.encode()).collect();
        self.nudge();
    }

    /// Gossips a certificate (whatever it holds) on the checkpoint topic, once.
    pub fn gossip_certificate(&self, certificate: &Certificate) {
        self.publish(
            TOPIC_CHECKPOINTS,
            sync::encode(&WitnessGossip::Certificate(certificate.encode())),
        );
    }

    /// Stops repeating the announced checkpoint.
    pub fn quiet(&self) {
        if let Some(task) = self.heartbeat.lock().expect("heartbeat").take() {
            task.abort();
        }
    }

    fn publish(&self, topic: &str, bytes: Vec<u8>) {
        let deadline = Instant::now() + PUBLISH_TIMEOUT;
        loop {
            match self.rt.block_on(self.net.publish(topic, bytes.clone())) {
                Ok(()) => return,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("face to {:?} cannot publish on {topic}: {e}", self.peers),
            }
        }
    }
}

impl Drop for Face {
    fn drop(&mut self) {
        self.quiet();
    }
}
