//! A lying bureau (issue 4, item 5; fork evidence, item 2).
//!
//! n = 4. Bureau 310104 is Byzantine: the test holds its real member key (generated with the
//! testnet) and drives it through `hukou_tests::liar`, which speaks the node's own libp2p
//! network and sync protocol through "faces" connected to chosen honest peers only. The three
//! other bureaus run as real `hukou` processes; 3 of 4 is a quorum (floor(2*4/3)+1 = 3).
//!
//! - `a_forked_log_never_registers_one_person_twice`: the liar enrols a person it arbitrates
//!   (its own claim, then the enrolment), both honest destinations issue a permit, and the liar
//!   signs two deregistrations at one seq, one per permit, showing fork A to 330502 and H3 and
//!   fork B to 340100; then two checkpoints of the two roots at one size. At most one
//!   destination can register the person; every honest node stores a fraud proof and a
//!   checkpoint fork, each verifiable with the membership alone.
//! - `the_destination_of_the_final_fork_keeps_finalising`: 340100, which held fork B, moves to
//!   the certified fork A (keeping the fraud proof), replicates 330502's registration against
//!   fork A, and so keeps cosigning 330502's log: 330502's later transfers finalise everywhere.
//! - `a_replica_killed_as_it_moves_to_the_certified_fork_reopens_and_converges`: `kill -9` of
//!   340100 the moment it shows fork A; its store checks out (`hukou node check`), and
//!   restarted it holds fork A and the fraud proof, and cosigns the honest destination's later
//!   transfers.
//! - `certificates_that_do_not_verify_never_move_a_replica`: certificates of fork A with a
//!   flipped cosignature, too few cosigners or a stranger's cosignature, gossiped by the liar to
//!   340100, are refused and move nothing; a quorum's real certificate then does.
//! - `bad_replayed_and_withheld_entries_change_nothing`: bad signatures, broken chains, wrong
//!   and missing references, replays, undecodable bytes and withheld entries are refused or held,
//!   change nothing, and the honest bureaus keep working and finalising among themselves.
//!
//! The liar grants no claims (`liar.rs`), so the honest bureaus enrol only persons an honest
//! member arbitrates ([`id_arbitrated`]).

use std::time::Duration;

use hukou_keys::secret::BureauKey;
use hukou_protocol::checkpoint::{Certificate, CheckpointFork, Cosignature, SignedCheckpoint};
use hukou_protocol::{Body, BureauCode, EntryHash, EntryRef, FraudProof, Membership, SignedEntry};
use hukou_tests::liar::{Face, Liar};
use hukou_tests::links::Links;
use hukou_tests::{BUREAUS, READY_TIMEOUT, Testnet, citizen_id_in, wait_until};
use serde_json::{Value, json};

const LIAR: usize = 0; // 310104
const H1: usize = 1; // 330502: destination of fork A
const H2: usize = 2; // 340100: destination of fork B
const H3: usize = 3; // the fourth bureau of `BUREAUS`: sees fork A
const HONEST: [usize; 3] = [H1, H2, H3];
const WAIT: Duration = Duration::from_secs(20);

/// The bureau code of node `i`.
fn code(i: usize) -> &'static str {
    BUREAUS[i].0
}

/// A citizen ID with address `address`, numbered from `from` on, whose arbiter
/// (`Membership::arbiter`) is the liar if `liar_arbitrates`, an honest member otherwise. Callers
/// keep their `from` ranges apart so the IDs they get are distinct.
fn id_arbitrated(liar: &Liar, address: &str, from: u64, liar_arbitrates: bool) -> String {
    (from..from + 100)
        .map(|n| citizen_id_in(address, n))
        .find(|id| (liar.arbiter_of(id) == liar.code) == liar_arbitrates)
        .expect("a quarter of all persons are the liar's to arbitrate")
}

/// Creates the four bureaus, with links between them that a test can cut, starts the three
/// honest ones, and takes over the liar's key. The liar's faces dial the honest nodes directly,
/// not through the links, so a cut bureau still hears the liar.
fn start() -> (Testnet, Links, Liar) {
    let mut net = Testnet::create(4);
    let links = Links::install(&mut net);
    let liar = Liar::new(&net, LIAR);
    for i in HONEST {
        net.start(i);
    }
    net.wait_ready(&HONEST, READY_TIMEOUT);
    (net, links, liar)
}

/// (length, root) of the liar's log as node `i` holds it.
fn liar_log(net: &Testnet, i: usize) -> (u64, String) {
    net.log_of(i, net.code(LIAR)).unwrap_or_default()
}

/// The root of a log, as `/v1/logs` prints it.
fn root_of(log: &[SignedEntry]) -> String {
    let mut tree = hukou_protocol::merkle::Tree::new();
    for e in log {
        tree.push(e.hash().0);
    }
    hex::encode(tree.root())
}

/// A field of log `code` in node `i`'s `/v1/logs`.
fn log_field(net: &Testnet, i: usize, code: &str, field: &str) -> Value {
    let (_, v) = net.get(i, "/v1/logs");
    v["logs"]
        .as_array()
        .and_then(|logs| logs.iter().find(|l| l["bureau"] == code))
        .map_or(Value::Null, |l| l[field].clone())
}

fn final_size(net: &Testnet, i: usize, code: &str) -> u64 {
    log_field(net, i, code, "final_size").as_u64().unwrap_or(0)
}

/// The value of an unlabelled Prometheus sample (or with the given label set, e.g.
/// `{bureau="310104"}`) on node `i`.
fn metric(net: &Testnet, i: usize, name: &str) -> u64 {
    let (status, v) = net.get(i, "/metrics");
    assert_eq!(status, 200, "GET /metrics on {}", net.code(i));
    let text = v.as_str().expect("metrics are text");
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no metric {name} on {}:\n{text}", net.code(i)))
}

/// Rule names in node `i`'s recent refusals, with their messages.
fn refusals(net: &Testnet, i: usize) -> Vec<(String, String)> {
    let (_, v) = net.get(i, "/v1/refusals");
    v["refusals"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    (
                        r["error"].as_str().unwrap_or("").to_string(),
                        r["message"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn person(net: &Testnet, i: usize, id: &str) -> Value {
    let (status, v) = net.post(i, "/v1/person", &json!({ "person": id }));
    assert_eq!(status, 200, "person on {}: {v}", net.code(i));
    v
}

/// Node `i`'s fraud proofs, decoded, each checked with the membership alone.
fn fraud_proofs(net: &Testnet, i: usize, membership: &Membership) -> Vec<FraudProof> {
    let (status, v) = net.get(i, "/v1/fraud-proofs");
    assert_eq!(status, 200, "fraud proofs on {}: {v}", net.code(i));
    v["fraud_proofs"]
        .as_array()
        .expect("fraud_proofs")
        .iter()
        .map(|p| {
            let bytes = hex::decode(p["proof"].as_str().expect("proof hex")).expect("hex");
            let proof = FraudProof::decode(&bytes).expect("the proof decodes");
            proof
                .verify(&hukou_protocol::config::Epochs::of_membership(
                    (membership).clone(),
                ))
                .unwrap_or_else(|e| {
                    panic!("a proof served by {} does not verify: {e}", net.code(i))
                });
            proof
        })
        .collect()
}

/// Node `i`'s checkpoint forks, decoded, each checked with the membership alone.
fn checkpoint_forks(net: &Testnet, i: usize, membership: &Membership) -> Vec<CheckpointFork> {
    let (status, v) = net.get(i, "/v1/checkpoint-forks");
    assert_eq!(status, 200, "checkpoint forks on {}: {v}", net.code(i));
    v["checkpoint_forks"]
        .as_array()
        .expect("checkpoint_forks")
        .iter()
        .map(|f| {
            let side = |k: &str| {
                let bytes = hex::decode(f[k].as_str().expect("hex")).expect("hex");
                SignedCheckpoint::decode(&bytes).expect("a signed checkpoint")
            };
            let fork = CheckpointFork {
                a: side("a"),
                b: side("b"),
            };
            fork.verify(&hukou_protocol::config::Epochs::of_membership(
                (membership).clone(),
            ))
            .unwrap_or_else(|e| {
                panic!(
                    "a checkpoint fork served by {} does not verify: {e}",
                    net.code(i)
                )
            });
            fork
        })
        .collect()
}

/// Issues a permit at destination `i` for `id` leaving `origin`; returns its reference.
fn permit(net: &Testnet, i: usize, id: &str, origin: &str) -> EntryRef {
    let v = net.post_ok(
        i,
        "/v1/permits",
        &json!({"person": id, "origin": origin, "category": "spouse"}),
    );
    v["ref"]
        .as_str()
        .expect("ref")
        .parse()
        .expect("an entry ref")
}

/// Waits until every honest node holds at least `len` entries of `code`'s log.
fn wait_replicated(net: &Testnet, code: &str, len: u64) {
    assert!(
        wait_until(WAIT, || HONEST
            .iter()
            .all(|&i| net.log_of(i, code).is_some_and(|(l, _)| l >= len))),
        "log {code} did not reach {len} entries everywhere: {:?}",
        HONEST.map(|i| net.log_of(i, code))
    );
}

/// Waits until every honest node holds node `i`'s own log as far as node `i` does.
fn wait_caught_up(net: &Testnet, i: usize) {
    let (len, _) = net.log_of(i, net.code(i)).expect("node i has written");
    wait_replicated(net, net.code(i), len);
}

/// A transfer between two honest bureaus, from permit to a final registration, as a clerk does
/// it: each step waits until the previous one is visible (and the deregistration final) at the
/// next bureau. Returns the registration's reference.
fn honest_transfer(net: &Testnet, origin: usize, destination: usize, id: &str) -> String {
    let permit = permit(net, destination, id, net.code(origin)).to_string();
    assert!(
        wait_until(WAIT, || net
            .get(origin, &format!("/v1/transfers/{permit}"))
            .0
            == 200),
        "permit {permit} did not reach {}",
        net.code(origin)
    );
    let dereg = net.post_ok(origin, "/v1/deregister", &json!({ "permit": permit }));
    let dereg = dereg["ref"].as_str().expect("ref").to_string();
    let final_at_destination = || {
        let (_, t) = net.get(destination, &format!("/v1/transfers/{permit}"));
        t["steps"].as_array().is_some_and(|steps| {
            steps
                .iter()
                .any(|s| s["ref"] == dereg.as_str() && s["final"] == true)
        })
    };
    assert!(
        wait_until(WAIT, final_at_destination),
        "deregistration {dereg} did not become final at {}: {}",
        net.code(destination),
        net.get(destination, &format!("/v1/transfers/{permit}")).1
    );
    let reg = net.post_ok(
        destination,
        "/v1/register",
        &json!({ "deregistration": dereg }),
    );
    let reg = reg["ref"].as_str().expect("ref").to_string();
    let everywhere_final = || {
        HONEST.iter().all(|&i| {
            let (_, t) = net.get(i, &format!("/v1/transfers/{permit}"));
            t["status"] == "registered" && t["final"] == true
        })
    };
    assert!(
        wait_until(WAIT, everywhere_final),
        "transfer {permit} ({} -> {}) is not registered and final everywhere: {:?}",
        net.code(origin),
        net.code(destination),
        HONEST.map(|i| net.get(i, &format!("/v1/transfers/{permit}")).1)
    );
    reg
}

/// What [`fork`] leaves running: the network, the liar with its faces (to 330502, 340100 and
/// H3, in that order; after [`fork`], announcing their checkpoints), and the two forks.
struct Forked {
    net: Testnet,
    _links: Links,
    faces: [Face; 3],
    liar: Liar,
    membership: Membership,
    /// The person the liar deregistered twice.
    id: String,
    /// The two deregistrations at 310104:2: fork A's (certified) and fork B's.
    a: SignedEntry,
    b: SignedEntry,
    /// The two forks of the liar's log, and their roots.
    fork_a: Vec<SignedEntry>,
    fork_b: Vec<SignedEntry>,
    root_a: String,
    root_b: String,
}

impl Forked {
    /// The fraud proof of the two deregistrations.
    fn proof(&self) -> FraudProof {
        FraudProof::new(self.a.clone(), self.b.clone())
    }
}

/// The fork, from the liar's honest start to the announcement of a checkpoint of each fork: the
/// liar signs a checkpoint of each fork at size 3 and announces each (with its own cosignature)
/// to the peers holding that fork. Only fork A can gather a quorum (the liar, 330502 and H3).
fn fork() -> Forked {
    let forked = fork_shown();
    let [face1, face2, face3] = &forked.faces;
    let checkpoint_a = forked.liar.checkpoint(&forked.fork_a);
    face1.announce(&checkpoint_a);
    face3.announce(&checkpoint_a);
    face2.announce(&forked.liar.checkpoint(&forked.fork_b));
    forked
}

/// The fork, from the liar's honest start until every honest node holds the fork it was shown
/// (B at 340100, A elsewhere), asserting along the way that the equivocation is proven at
/// every honest node. Nothing is checkpointed yet.
fn fork_shown() -> Forked {
    let (mut net, links, liar) = start();
    let (lc, c1, c2, c3) = (code(LIAR), code(H1), code(H2), code(H3));
    let membership = liar.membership.clone();
    // Fork A goes to 330502 and H3, fork B to 340100; each face talks to one peer only.
    let (face1, face2, face3) = (liar.face(&[c1]), liar.face(&[c2]), liar.face(&[c3]));

    // An honest start: the liar, the person's arbiter, grants itself a claim and enrols the
    // person, and everyone replicates both.
    let id = id_arbitrated(&liar, "310104", 100, true);
    let start = liar.claim_and_enrol(&[], &id, 1);
    let [c0, e1] = &start;
    for face in [&face1, &face2, &face3] {
        face.show(&start);
    }
    face1.push(&[c0, e1]);
    wait_replicated(&net, lc, 2);
    for i in HONEST {
        assert_eq!(person(&net, i, &id)["registered_at"], lc);
    }

    // Both honest destinations grant the person a permit from the liar.
    let permit_a = permit(&net, H1, &id, lc);
    let permit_b = permit(&net, H2, &id, lc);
    wait_replicated(&net, c1, permit_a.seq.0 + 1);
    wait_replicated(&net, c2, permit_b.seq.0 + 1);

    // The fork: two validly signed deregistrations of the person at seq 2.
    let deregister = |permit: EntryRef| Body::Deregistration {
        permit,
        person: liar.tag(&id),
        new_head: None,
    };
    let a = liar.sign(2, e1.hash(), deregister(permit_a));
    let b = liar.sign(2, e1.hash(), deregister(permit_b));
    let fork_a = [c0.clone(), e1.clone(), a.clone()];
    let fork_b = [c0.clone(), e1.clone(), b.clone()];
    let (root_a, root_b) = (root_of(&fork_a), root_of(&fork_b));

    // Shown through pulls only, while 340100 is briefly cut off from the other honest bureaus
    // (the liar still reaches it), so each peer holds the fork it was shown: B at 340100, A at
    // 330502 and H3. Once the link is back, the lengths agree and nobody pulls from anybody.
    links.cut(H2);
    face2.show(&fork_b);
    face1.show(&fork_a);
    face3.show(&fork_a);
    assert!(
        wait_until(WAIT, || liar_log(&net, H2) == (3, root_b.clone())
            && [H1, H3]
                .iter()
                .all(|&i| liar_log(&net, i) == (3, root_a.clone()))),
        "the forks did not take: {:?}",
        HONEST.map(|i| liar_log(&net, i))
    );
    links.restore(H2);
    net.wait_ready(&HONEST, READY_TIMEOUT);
    assert_eq!(
        liar_log(&net, H2),
        (3, root_b.clone()),
        "340100 keeps fork B while nothing is certified"
    );

    // The liar never gossips either fork. The honest nodes' pull rounds compare tips: equal
    // lengths, different tips, so each fetches the other's entry at that position and sees
    // two signed entries at 310104:2. Every honest node keeps a proof that verifies with the
    // membership alone.
    let expected = FraudProof::new(a.clone(), b.clone());
    let proven = |i: usize| fraud_proofs(&net, i, &membership).contains(&expected);
    assert!(
        wait_until(WAIT, || HONEST.iter().all(|&i| proven(i))),
        "not every honest node stores the fraud proof of {lc}:2: {:?}",
        HONEST.map(|i| net.get(i, "/v1/fraud-proofs").1)
    );
    for i in HONEST {
        assert!(metric(&net, i, "hukou_equivocations_total") >= 1);
        assert_eq!(
            fraud_proofs(&net, i, &membership).len(),
            1,
            "{}: exactly one equivocation happened",
            net.code(i)
        );
    }

    // Every page of every honest node's web console carries the fraud banner, linking to the
    // evidence, and the evidence page names the forked position.
    for i in HONEST {
        let (status, page) = hukou_tests::get_text(&format!("{}/ui/network", net.api(i)));
        assert_eq!(status, 200, "{page}");
        assert!(
            page.contains("fraud-banner") && page.contains("href=\"/ui/fraud-proofs\""),
            "{}: no fraud banner on the network page",
            net.code(i)
        );
        let (status, page) = hukou_tests::get_text(&format!("{}/ui/fraud-proofs", net.api(i)));
        assert_eq!(status, 200, "{page}");
        assert!(
            page.contains(&format!("<td>{lc}</td>")),
            "{}: the evidence page does not name {lc}: {page}",
            net.code(i)
        );
    }

    Forked {
        net,
        _links: links,
        faces: [face1, face2, face3],
        liar,
        membership,
        id,
        a,
        b,
        fork_a: fork_a.to_vec(),
        fork_b: fork_b.to_vec(),
        root_a,
        root_b,
    }
}

/// Waits until 340100 has moved to the certified fork A: it holds fork A's root, a certificate
/// covers it, and it still keeps the one fraud proof.
fn wait_moved_to_fork_a(forked: &Forked) {
    let net = &forked.net;
    let lc = code(LIAR);
    let moved = || liar_log(net, H2) == (3, forked.root_a.clone()) && final_size(net, H2, lc) == 3;
    assert!(
        wait_until(WAIT, moved),
        "340100 did not move to the certified fork A: {:?} (fork B's root is {}), final size {}",
        liar_log(net, H2),
        forked.root_b,
        final_size(net, H2, lc)
    );
    assert_eq!(
        fraud_proofs(net, H2, &forked.membership),
        [forked.proof()],
        "340100 keeps the evidence of the fork it left"
    );
}

/// [`fork`], then the certification of fork A, the move of 340100 to it, and the registration
/// of the person at the destination of fork A, asserting that every honest node stores the
/// checkpoint fork and that no second registration succeeds.
fn fork_and_register() -> Forked {
    let forked = fork();
    let net = &forked.net;
    let (lc, c1) = (code(LIAR), code(H1));
    let (a, b) = (&forked.a, &forked.b);

    // Fork A is certified at 330502 and H3; every witness sees both roots at one size and keeps
    // the evidence.
    assert!(
        wait_until(WAIT, || [H1, H3]
            .iter()
            .all(|&i| final_size(net, i, lc) == 3)),
        "fork A did not become final at H1 and H3: {:?}",
        HONEST.map(|i| final_size(net, i, lc))
    );
    let fork_kept = |i: usize| {
        checkpoint_forks(net, i, &forked.membership)
            .iter()
            .any(|f| {
                let roots = [&f.a.checkpoint.root, &f.b.checkpoint.root].map(hex::encode);
                f.a.checkpoint.log == forked.liar.code
                    && f.a.checkpoint.size == 3
                    && roots.contains(&forked.root_a)
                    && roots.contains(&forked.root_b)
            })
    };
    assert!(
        wait_until(WAIT, || HONEST.iter().all(|&i| fork_kept(i))),
        "not every honest node stores the checkpoint fork of {lc} at size 3: {:?}",
        HONEST.map(|i| net.get(i, "/v1/checkpoint-forks").1)
    );

    // 340100 held fork B, which no quorum cosigned: it moves to fork A, keeping the proof.
    wait_moved_to_fork_a(&forked);
    assert_eq!(metric(net, H2, "hukou_forks_adopted_total"), 1);
    for i in [H1, H3] {
        assert_eq!(metric(net, i, "hukou_forks_adopted_total"), 0);
    }

    // The person can be registered at most once. Each destination tries against the removal it
    // held, and against the other one.
    let attempts = [
        (H1, a.reference()),
        (H2, b.reference()),
        (H1, b.reference()),
        (H2, a.reference()),
    ];
    let mut registered = Vec::new();
    for (i, dereg) in attempts {
        let (status, v) = net.post(
            i,
            "/v1/register",
            &json!({ "deregistration": dereg.to_string() }),
        );
        eprintln!("register at {} against {dereg}: {status} {v}", net.code(i));
        if status == 200 {
            registered.push((net.code(i), dereg));
        } else {
            assert!((400..500).contains(&status), "{status} {v}");
        }
    }
    assert_eq!(
        registered,
        [(c1, a.reference())],
        "the person must be registered once, at the destination of the final fork"
    );

    // Every honest node, 340100 included, sees the person registered at 330502, and never at
    // two bureaus.
    let registration_seen = |i: usize| person(net, i, &forked.id)["registered_at"] == c1;
    assert!(
        wait_until(WAIT, || HONEST.iter().all(|&i| registration_seen(i))),
        "330502's registration did not reach every honest node: {:?}",
        HONEST.map(|i| person(net, i, &forked.id))
    );
    for i in HONEST {
        let p = person(net, i, &forked.id);
        assert_eq!(p["duplicate"], false, "{}: {p}", net.code(i));
        let records = p["records"].as_array().expect("records");
        assert!(records.len() <= 1, "{}: {p}", net.code(i));
    }
    forked
}

#[test]
fn a_forked_log_never_registers_one_person_twice() {
    let forked = fork_and_register();
    let net = &forked.net;
    let liar = &forked.liar;

    // Honest bureaus keep serving: their own writes, and a transfer between two of them whose
    // logs took no part in the fork, to a final registration everywhere.
    let other = id_arbitrated(liar, code(H3), 200, false);
    net.enrol(H3, &other);
    wait_caught_up(net, H3);
    honest_transfer(net, H3, H2, &other);
    for i in HONEST {
        net.enrol(
            i,
            &id_arbitrated(liar, code(i), 300 + 100 * i as u64, false),
        );
    }
    // The person is still registered once, and the proofs are still there.
    for i in HONEST {
        assert_eq!(person(net, i, &forked.id)["duplicate"], false);
        assert_eq!(fraud_proofs(net, i, &forked.membership).len(), 1);
        assert_eq!(checkpoint_forks(net, i, &forked.membership).len(), 1);
    }
}

/// Before 340100 could move to the certified fork, it kept fork B, refused 330502's
/// registration (which references fork A) and could never replicate anything 330502 wrote
/// after it: 330502's log then had two cosigners (330502 and H3) and the liar, who does not
/// cosign, below the quorum of 3, so nothing 330502 wrote after the registration became final.
/// One Byzantine member of four (f < n/3) so stopped an honest bureau's transfers.
#[test]
fn the_destination_of_the_final_fork_keeps_finalising() {
    let forked = fork_and_register();
    let net = &forked.net;
    let c1 = code(H1);
    // 340100 replicates 330502's log, registration included, exactly as 330502 holds it.
    wait_caught_up(net, H1);
    assert_eq!(net.log_of(H2, c1), net.log_of(H1, c1));
    let resident = id_arbitrated(&forked.liar, c1, 400, false);
    net.enrol(H1, &resident);
    honest_transfer(net, H1, H3, &resident);
    // 340100 keeps fork A and its evidence.
    assert_eq!(liar_log(net, H2), (3, forked.root_a.clone()));
    assert_eq!(fraud_proofs(net, H2, &forked.membership), [forked.proof()]);
    assert_eq!(person(net, H2, &resident)["registered_at"], code(H3));
}

/// A lying peer cannot make 340100 give up fork B: certificates of fork A that do not verify
/// (a flipped cosignature, too few cosigners, a cosigner that is no member) are refused, and
/// nothing moves; then a real quorum certifies fork A, and 340100 moves.
#[test]
fn certificates_that_do_not_verify_never_move_a_replica() {
    let forked = fork_shown();
    let net = &forked.net;
    let liar = &forked.liar;
    let checkpoint = liar.checkpoint(&forked.fork_a).checkpoint;
    // The honest witnesses' real keys (the test holds every bureau's key file), so that all
    // but the broken cosignature are valid.
    let cosign = |i: usize| {
        let key = BureauKey::load(&net.nodes[i].dir.join("bureau.key")).expect("key file");
        let witness: BureauCode = code(i).parse().expect("code");
        Cosignature::sign(&checkpoint, witness, key.signing_key())
    };
    let mut flipped = Certificate::new(
        checkpoint,
        vec![liar.cosign(&checkpoint), cosign(H1), cosign(H3)],
    );
    flipped.cosignatures[0].signature.0[9] ^= 0x01;
    let too_few = Certificate::new(checkpoint, vec![liar.cosign(&checkpoint), cosign(H1)]);
    let stranger = BureauCode::new(110_101).expect("code");
    let unknown = Certificate::new(
        checkpoint,
        vec![
            liar.cosign(&checkpoint),
            cosign(H1),
            Cosignature::sign(
                &checkpoint,
                stranger,
                &ed25519_dalek::SigningKey::from_bytes(&[7; 32]),
            ),
        ],
    );
    let face2 = &forked.faces[1];
    for certificate in [&flipped, &too_few, &unknown] {
        assert!(
            certificate
                .verify(&hukou_protocol::config::Epochs::of_membership(
                    forked.membership.clone()
                ))
                .is_err()
        );
    }
    face2.offer_certificates(&[&flipped, &too_few, &unknown]);
    let log_of_h2 = || std::fs::read_to_string(&net.nodes[H2].log).unwrap_or_default();
    let rules = [
        "certificate_bad_cosignature",
        "certificate_below_quorum",
        "certificate_unknown_witness",
    ];
    assert!(
        wait_until(WAIT, || {
            let log = log_of_h2();
            rules
                .iter()
                .all(|rule| log.contains(&format!("rule=\"{rule}\"")))
        }),
        "340100 did not refuse the three certificates by their rules: {}",
        log_of_h2()
    );
    // A few pull rounds later, nothing moved.
    std::thread::sleep(Duration::from_secs(2));
    let lc = code(LIAR);
    assert_eq!(liar_log(net, H2), (3, forked.root_b.clone()));
    assert_eq!(final_size(net, H2, lc), 0);
    assert_eq!(metric(net, H2, "hukou_forks_adopted_total"), 0);
    assert_eq!(metric(net, H2, "hukou_fork_entries_dropped_total"), 0);
    assert_eq!(fraud_proofs(net, H2, &forked.membership), [forked.proof()]);

    // The real thing: a quorum certifies fork A, and 340100 moves.
    let checkpoint_a = liar.checkpoint(&forked.fork_a);
    forked.faces[0].announce(&checkpoint_a);
    forked.faces[2].announce(&checkpoint_a);
    wait_moved_to_fork_a(&forked);
}

#[test]
fn a_replica_killed_as_it_moves_to_the_certified_fork_reopens_and_converges() {
    let mut forked = fork();
    // Killed the moment its API shows fork A: right after the move, often before the
    // certificate of fork A is stored. (Kills inside the move itself, before and after its
    // truncation, are `node/tests/adoption.rs`'s `kill_9_while_moving_...`.)
    let shows_fork_a = wait_until(WAIT, || liar_log(&forked.net, H2).1 == forked.root_a);
    forked.net.kill9(H2);
    assert!(shows_fork_a, "340100 never showed fork A");
    let check = forked.net.check(H2);
    assert!(
        check.status.success(),
        "the store of 340100 does not check out after kill -9: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    forked.net.start(H2);
    forked.net.wait_ready(&HONEST, READY_TIMEOUT);
    // Restarted, it holds (or moves again to) fork A with its evidence, and the honest
    // destination of fork A registers the person and goes on finalising with it.
    wait_moved_to_fork_a(&forked);
    let net = &forked.net;
    let c1 = code(H1);
    net.post_ok(
        H1,
        "/v1/register",
        &json!({ "deregistration": forked.a.reference().to_string() }),
    );
    assert!(
        wait_until(WAIT, || HONEST
            .iter()
            .all(|&i| person(net, i, &forked.id)["registered_at"] == c1)),
        "330502's registration did not reach every honest node"
    );
    let resident = id_arbitrated(&forked.liar, c1, 500, false);
    net.enrol(H1, &resident);
    honest_transfer(net, H1, H3, &resident);
    // What the two lives of 340100 did, for whoever reads the test's output.
    let log = std::fs::read_to_string(&net.nodes[H2].log).unwrap_or_default();
    for line in log.lines().filter(|l| {
        l.contains("certified fork")
            || l.contains("replayed the store")
            || l.contains("EQUIVOCATION")
    }) {
        eprintln!("340100: {line}");
    }
}

#[test]
fn bad_replayed_and_withheld_entries_change_nothing() {
    let (net, _links, liar) = start();
    let (lc, c1, c3) = (net.code(LIAR), net.code(H1), net.code(H3));
    let membership = liar.membership.clone();
    let face = liar.face(&HONEST.map(|i| net.code(i)));

    // An honest start on both sides: the liar enrols one person it arbitrates (its claim, then
    // the enrolment), 330502 another, whose claim an honest arbiter grants.
    let id = id_arbitrated(&liar, "310104", 100, true);
    let start = liar.claim_and_enrol(&[], &id, 1);
    let [c0, e1] = &start;
    face.show(&start);
    face.push(&[c0, e1]);
    let resident = id_arbitrated(&liar, c1, 200, false);
    let r0: EntryRef = net.enrol(H1, &resident).parse().expect("ref");
    wait_replicated(&net, lc, 2);
    wait_caught_up(&net, H1);
    let good = (2, root_of(&start));
    let before: Vec<_> = HONEST
        .iter()
        .map(|&i| {
            (
                metric(&net, i, "hukou_entries_refused_total"),
                metric(&net, i, "hukou_entries_duplicate_total"),
                metric(&net, i, "hukou_decode_errors_total"),
                metric(&net, i, "hukou_pending_entries"),
            )
        })
        .collect();

    // Lies at seq 2, each refused by the rule it breaks, and a replay of seq 0.
    let newcomer = id_arbitrated(&liar, "310104", 300, true);
    let enrol_newcomer = Body::Enrol {
        person: liar.tag(&newcomer),
        placement: Liar::head_of(2),
        claim: c0.reference(),
    };
    let bad_signature = liar.forge(liar.entry(2, e1.hash(), enrol_newcomer.clone()));
    let broken_chain = liar.sign(2, EntryHash([7; 32]), enrol_newcomer.clone());
    let wrong_reference = liar.sign(
        2,
        e1.hash(),
        Body::Deregistration {
            permit: EntryRef {
                hash: EntryHash([9; 32]),
                ..r0
            },
            person: liar.tag(&id),
            new_head: None,
        },
    );
    let mut raw: Vec<Vec<u8>> = [&bad_signature, &broken_chain, &wrong_reference, c0]
        .iter()
        .map(|e| e.encode())
        .collect();
    raw.push(b"not an entry".to_vec());
    face.push_raw(raw);
    let expected = [
        ("bad_signature", bad_signature.reference()),
        ("prev_mismatch", broken_chain.reference()),
        ("reference_hash_mismatch", wrong_reference.reference()),
    ];
    let all_refused = |i: usize| {
        let seen = refusals(&net, i);
        expected.iter().all(|(rule, r)| {
            seen.iter()
                .any(|(name, message)| name == rule && message.contains(&r.to_string()))
        })
    };
    assert!(
        wait_until(WAIT, || HONEST.iter().all(|&i| all_refused(i))),
        "not every honest node refused the lies by their rules: {:?}",
        HONEST.map(|i| refusals(&net, i))
    );
    for (k, &i) in HONEST.iter().enumerate() {
        let (refused, duplicate, undecodable, _) = before[k];
        assert!(metric(&net, i, "hukou_entries_refused_total") >= refused + 3);
        assert!(metric(&net, i, "hukou_entries_duplicate_total") > duplicate);
        assert!(metric(&net, i, "hukou_decode_errors_total") > undecodable);
        assert_eq!(
            liar_log(&net, i),
            good,
            "{}: the lies changed the log",
            net.code(i)
        );
        assert!(person(&net, i, &newcomer)["records"] == json!([]));
    }

    // A reference to an entry that does not exist yet is not applied: the entry waits, counted
    // as pending, and changes nothing. One to a log no member keeps can never apply: it is
    // refused at once (`reference_to_non_member`), not held.
    let nowhere = |author: BureauCode, seq| Body::Deregistration {
        permit: EntryRef {
            author,
            seq: hukou_protocol::Seq(seq),
            hash: EntryHash([5; 32]),
        },
        person: liar.tag(&id),
        new_head: None,
    };
    let future = liar.sign(2, e1.hash(), nowhere(r0.author, 999));
    let stranger = liar.sign(
        2,
        e1.hash(),
        nowhere(BureauCode::new(110101).expect("code"), 0),
    );
    face.push(&[&future, &stranger]);
    assert!(
        wait_until(WAIT, || HONEST.iter().enumerate().all(|(k, &i)| {
            metric(&net, i, "hukou_pending_entries") > before[k].3
                && refusals(&net, i).iter().any(|(name, message)| {
                    name == "reference_to_non_member"
                        && message.contains(&stranger.reference().to_string())
                })
        })),
        "a reference to a missing entry is not held, or one to a non-member's log not refused: {:?}",
        HONEST.map(|i| (metric(&net, i, "hukou_pending_entries"), refusals(&net, i)))
    );

    // Withholding: the liar signs a claim at seq 2 and the enrolment consuming it at seq 3,
    // publishes only seq 3, claims a log of 4 and a checkpoint over all of it. Seq 3 waits for
    // seq 2 and is never applied; the checkpoint is never cosigned, so nothing of it becomes
    // final.
    let hidden = id_arbitrated(&liar, "310104", 400, true);
    let [withheld, shown] = liar.claim_and_enrol(&start, &hidden, 2);
    face.show_with_gaps(&[c0, e1, &shown], Some(4));
    face.push(&[&shown]);
    face.announce(&liar.checkpoint(&[c0.clone(), e1.clone(), withheld, shown.clone()]));
    let lag = format!("hukou_replication_lag_entries{{bureau=\"{lc}\"}}");
    assert!(
        wait_until(WAIT, || HONEST.iter().all(|&i| metric(&net, i, &lag) == 2)),
        "the withheld entries are not reported as lag: {:?}",
        HONEST.map(|i| metric(&net, i, &lag))
    );

    // Meanwhile the honest bureaus work as usual: own writes, and a whole transfer between two
    // of them, final everywhere (three honest members are a quorum).
    for i in HONEST {
        net.enrol(
            i,
            &id_arbitrated(&liar, net.code(i), 500 + 100 * i as u64, false),
        );
    }
    honest_transfer(&net, H1, H3, &resident);
    assert_eq!(person(&net, H3, &resident)["registered_at"], c3);

    // And still nothing of the lies took hold: one entry of the liar's log, not final, the
    // withheld and forged people registered nowhere, nobody falsely accused.
    for i in HONEST {
        assert_eq!(liar_log(&net, i), good, "{}", net.code(i));
        assert!(
            final_size(&net, i, lc) <= good.0,
            "{}: withheld entries final",
            net.code(i)
        );
        for who in [hidden.clone(), newcomer.clone()] {
            assert_eq!(
                person(&net, i, &who)["records"],
                json!([]),
                "{}",
                net.code(i)
            );
        }
        assert_eq!(person(&net, i, &id)["registered_at"], lc);
        assert!(
            fraud_proofs(&net, i, &membership).is_empty(),
            "{}",
            net.code(i)
        );
    }
}
