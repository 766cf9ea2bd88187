//! A replica holding a losing fork moves to the certified one (`Service::adopt_certified_fork`),
//! on a service over a real store and no network: the test plays the peers, signing with every
//! member's key.
//!
//! Member 310104 forks its log at seq 2: fork A grants a claim to 320506, fork B one to 330502.
//! This node (340100) holds fork B; 330502 enrolled its person against fork B's claim, 320506
//! against fork A's. A quorum (310104, 330502, 320506) certifies fork A.

use std::path::Path;
use std::time::Instant;

use ed25519_dalek::SigningKey;
use hukou_node::service::{AdoptError, Adopted, Service};
use hukou_node::store::{Committer, Store};
use hukou_protocol::adoption::AdoptionError;
use hukou_protocol::checkpoint::{Certificate, CertificateError, Checkpoint, Cosignature};
use hukou_protocol::id::PersonKey;
use hukou_protocol::merkle::Tree;
use hukou_protocol::{
    Body, BureauCode, Entry, EntryHash, FraudProof, HouseholdId, Member, Membership, PersonTag,
    Placement, Relation, Seq, SignedEntry,
};

const ME: usize = 0; // 340100
const LIAR: usize = 1; // 310104
const H1: usize = 2; // 330502: built on fork B
const H3: usize = 3; // 320506: built on fork A
const CODES: [u32; 4] = [340_100, 310_104, 330_502, 320_506];

fn code(i: usize) -> BureauCode {
    BureauCode::new(CODES[i]).unwrap()
}

fn key(i: usize) -> SigningKey {
    SigningKey::from_bytes(&[0x10 + i as u8; 32])
}

fn membership() -> Membership {
    let members = (0..4).map(|i| Member {
        code: code(i),
        name: format!("bureau {}", CODES[i]),
        key: key(i).verifying_key(),
    });
    Membership::new("adoption-test", members, 3).unwrap()
}

/// A person tag whose arbiter is member `i`, distinct for each `n`.
fn person(i: usize, n: u8) -> PersonTag {
    let m = membership();
    (0u8..=255)
        .map(|k| {
            let mut tag = [n; 32];
            tag[31] = k;
            PersonTag(tag)
        })
        .find(|p| m.arbiter(p) == code(i))
        .expect("a quarter of all tags")
}

fn head(household: u64) -> Placement {
    Placement {
        household: HouseholdId(household),
        relation: Relation::Head,
    }
}

/// The next entry of member `i`'s log after `log`.
fn next(i: usize, log: &[SignedEntry], body: Body) -> SignedEntry {
    Entry {
        network: membership().network(),
        epoch: 0,
        author: code(i),
        seq: Seq(log.len() as u64),
        prev: log.last().map_or(EntryHash::ZERO, SignedEntry::hash),
        time_ms: 1_790_000_000_000 + log.len() as u64,
        body,
    }
    .sign(&key(i))
}

fn claim(i: usize, log: &[SignedEntry], person: PersonTag, claimant: usize) -> SignedEntry {
    next(
        i,
        log,
        Body::Claim {
            person,
            claimant: code(claimant),
            after: None,
        },
    )
}

fn enrol(i: usize, log: &[SignedEntry], person: PersonTag, claim: &SignedEntry) -> SignedEntry {
    next(
        i,
        log,
        Body::Enrol {
            person,
            placement: head(log.len() as u64 + 1),
            claim: claim.reference(),
        },
    )
}

/// Every log of the story.
struct Story {
    /// The liar's log up to the fork (2 entries), then fork A's and fork B's entry at seq 2.
    shared: Vec<SignedEntry>,
    a: SignedEntry,
    b: SignedEntry,
    /// 330502's log: an enrolment against fork B's claim, then a claim it grants.
    h1: Vec<SignedEntry>,
    /// 320506's log: an enrolment against fork A's claim, then a claim it grants.
    h3: Vec<SignedEntry>,
}

impl Story {
    fn new(b_claimant: usize) -> Story {
        let mut shared = Vec::new();
        let p0 = person(LIAR, 1);
        shared.push(claim(LIAR, &shared, p0, LIAR));
        let c0 = shared[0].clone();
        shared.push(enrol(LIAR, &shared, p0, &c0));
        let (pa, pb) = (person(LIAR, 2), person(LIAR, 3));
        let a = claim(LIAR, &shared, pa, H3);
        let b = claim(LIAR, &shared, pb, b_claimant);
        let h1_enrol = enrol(H1, &[], pb, &b);
        let h1_claim = claim(H1, std::slice::from_ref(&h1_enrol), person(H1, 4), H1);
        let h3_enrol = enrol(H3, &[], pa, &a);
        let h3_claim = claim(H3, std::slice::from_ref(&h3_enrol), person(H3, 5), H3);
        let (h1, h3) = (vec![h1_enrol, h1_claim], vec![h3_enrol, h3_claim]);
        Story {
            shared,
            a,
            b,
            h1,
            h3,
        }
    }

    fn fork(&self, tip: &SignedEntry) -> Vec<SignedEntry> {
        let mut log = self.shared.clone();
        log.push(tip.clone());
        log
    }
}

fn root(log: &[SignedEntry]) -> [u8; 32] {
    let mut tree = Tree::new();
    for e in log {
        tree.push(e.hash().0);
    }
    tree.root()
}

/// A certificate of all of `log` (the liar's), cosigned by members `who`.
fn certificate(log: &[SignedEntry], who: &[usize]) -> Certificate {
    let c = Checkpoint {
        network: membership().network(),
        epoch: 0,
        log: code(LIAR),
        size: log.len() as u64,
        root: root(log),
        time_ms: 1_790_000_001_000,
    };
    Certificate::new(
        c,
        who.iter()
            .map(|&i| Cosignature::sign(&c, code(i), &key(i)))
            .collect(),
    )
}

/// A service of this node over the store in `dir`, and its committer's task (which ends, and
/// lets go of the store, once the service is dropped).
fn open(
    dir: &Path,
) -> (
    Service,
    tokio::task::JoinHandle<Result<(), hukou_node::store::StoreError>>,
) {
    let m = membership();
    let store = Store::open(dir, code(ME), m.network()).expect("the store opens");
    let (committer, task) = Committer::start(store.clone(), std::future::pending());
    let parts = Service::start(
        code(ME),
        key(ME),
        PersonKey::from_bytes([0x5A; 32]),
        hukou_protocol::config::Epochs::of_membership(m),
        store,
        committer,
        false,
    )
    .expect("the service starts");
    // The node's push task would take these; here nobody does (the queue only fills).
    drop(parts.outbound);
    (parts.service, task)
}

async fn ingest(service: &Service, entries: &[&SignedEntry]) -> usize {
    service
        .ingest(entries.iter().map(|e| e.encode()).collect())
        .await
        .expect("the store works")
}

async fn adopt(
    service: &Service,
    certificate: &Certificate,
    from: u64,
    offered: &[&SignedEntry],
) -> Result<Adopted, AdoptError> {
    let offered = service
        .verify_received(offered.iter().map(|e| e.encode()).collect())
        .await;
    service
        .adopt_certified_fork(certificate, from, offered)
        .await
}

/// Every log as the store holds it.
fn logs(service: &Service) -> Vec<(BureauCode, Vec<SignedEntry>)> {
    let store = service.store();
    store
        .logs()
        .into_iter()
        .map(|(log, len)| (log, store.range(log, 0, len as usize).unwrap()))
        .collect()
}

/// The rule names of the node's recent refusals.
async fn refusals(service: &Service) -> Vec<String> {
    let state = service.state().await;
    state
        .recent_refusals
        .iter()
        .map(|(_, rule, _)| rule.clone())
        .collect()
}

#[tokio::test]
async fn a_losing_fork_gives_way_to_the_certified_one_and_what_built_on_it_goes_too() {
    let dir = tempfile::tempdir().unwrap();
    let story = Story::new(H1);
    let (fork_a, fork_b) = (story.fork(&story.a), story.fork(&story.b));
    let (service, committer) = open(dir.path());

    // This node holds fork B and 330502's enrolment against it; 320506's enrolment against
    // fork A is refused, and 320506's next entry waits for it.
    let b_refs: Vec<&SignedEntry> = fork_b.iter().chain(&story.h1).collect();
    assert_eq!(ingest(&service, &b_refs).await, 5);
    assert_eq!(ingest(&service, &[&story.h3[0], &story.h3[1]]).await, 0);
    assert_eq!(refusals(&service).await, ["reference_hash_mismatch"]);
    assert_eq!(service.state().await.buffer.len(), 1);

    // Fork A is certified. Offered from seq 2 (where the replica diverges), by a peer.
    let certified = certificate(&fork_a, &[LIAR, H1, H3]);
    let adopted = adopt(&service, &certified, 2, &[&story.a]).await.unwrap();
    eprintln!("rebuilt the state in {} ms", adopted.rebuild_ms);
    assert_eq!(
        adopted,
        Adopted {
            log: code(LIAR),
            held: 3,
            common: 2,
            size: 3,
            dependents: vec![(code(H1), 0, 2)],
            applied: 1,
            rebuild_ms: adopted.rebuild_ms,
        }
    );
    // The replica is fork A; 330502's entries built on fork B are gone (and would be refused
    // again); the fraud proof names the two entries at 310104:2.
    assert_eq!(logs(&service), vec![(code(LIAR), fork_a.clone())]);
    let proofs = service.store().fraud_proofs().unwrap();
    assert_eq!(proofs.len(), 1);
    let proof = FraudProof::decode(&proofs[0].2).unwrap();
    assert_eq!(proof, FraudProof::new(story.a.clone(), story.b.clone()));
    assert_eq!(
        proof.verify(&hukou_protocol::config::Epochs::of_membership(membership())),
        Ok(())
    );
    {
        let state = service.state().await;
        assert_eq!(state.fraud_proofs.len(), 1);
        assert_eq!(state.buffer.len(), 1, "320506's second entry still waits");
        assert_eq!(state.ledger.log_len(code(H1)), 0);
        assert_eq!(state.trees[&code(LIAR)].root(), root(&fork_a));
        let pb = person(LIAR, 3);
        assert!(
            state
                .ledger
                .person(&pb)
                .is_none_or(|p| p.records.is_empty())
        );
        assert!(!state.person_entries.contains_key(&pb));
    }
    let counters = service.counters();
    let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(load(&counters.forks_adopted), 1);
    assert_eq!(load(&counters.fork_entries_dropped), 3);

    // 320506's enrolment against fork A now applies, and releases what waited behind it;
    // 330502's against fork B is refused by the rulebook.
    assert_eq!(ingest(&service, &[&story.h3[0]]).await, 2);
    assert_eq!(ingest(&service, &[&story.h1[0], &story.h1[1]]).await, 0);
    assert_eq!(
        refusals(&service).await,
        ["reference_hash_mismatch", "reference_hash_mismatch"]
    );
    let expected = vec![(code(LIAR), fork_a.clone()), (code(H3), story.h3.clone())];
    assert_eq!(logs(&service), expected);

    // The store replays to the same state after a restart.
    drop(service);
    committer.await.unwrap().unwrap();
    let (service, _committer) = open(dir.path());
    assert_eq!(logs(&service), expected);
    assert_eq!(service.state().await.fraud_proofs.len(), 1);
    assert_eq!(
        service.store().verify_full().unwrap().entries,
        (fork_a.len() + story.h3.len()) as u64
    );
}

#[tokio::test]
async fn a_certificate_that_does_not_verify_never_truncates() {
    let dir = tempfile::tempdir().unwrap();
    let story = Story::new(H1);
    let (fork_a, fork_b) = (story.fork(&story.a), story.fork(&story.b));
    let (service, _committer) = open(dir.path());
    let b_refs: Vec<&SignedEntry> = fork_b.iter().chain(&story.h1).collect();
    assert_eq!(ingest(&service, &b_refs).await, 5);
    let before = logs(&service);

    let mut flipped = certificate(&fork_a, &[LIAR, H1, H3]);
    flipped.cosignatures[2].signature.0[7] ^= 0x01;
    let flipped_witness = flipped.cosignatures[2].witness;
    let too_few = certificate(&fork_a, &[LIAR, H3]);
    // A stranger's cosignature makes up the number.
    let stranger = BureauCode::new(110_101).unwrap();
    let mut unknown = certificate(&fork_a, &[LIAR, H3]);
    unknown.cosignatures.push(Cosignature::sign(
        &unknown.checkpoint,
        stranger,
        &SigningKey::from_bytes(&[0x77; 32]),
    ));
    let unknown = Certificate::new(unknown.checkpoint, unknown.cosignatures);
    let cases = [
        (
            flipped,
            CertificateError::BadCosignature {
                witness: flipped_witness,
            },
        ),
        (too_few, CertificateError::BelowQuorum { have: 2, need: 3 }),
        (
            unknown,
            CertificateError::UnknownWitness { witness: stranger },
        ),
    ];
    for (certificate, expected) in cases {
        // Even with the right entries offered, and wanted by the witness beforehand.
        service.want_adoption(certificate.clone());
        let err = adopt(&service, &certificate, 2, &[&story.a])
            .await
            .unwrap_err();
        assert_eq!(err.name(), expected.name());
        match err {
            AdoptError::Offer(e) => assert_eq!(*e, AdoptionError::Certificate(expected)),
            other => panic!("expected a certificate error, got {other}"),
        }
        assert_eq!(logs(&service), before, "nothing was taken back");
        assert!(service.store().fraud_proofs().unwrap().is_empty());
        assert!(service.adoptions_wanted().await.is_empty(), "forgotten");
    }
    // A quorum's certificate of fork A, but the peer offers a third fork: nothing either.
    let mut forged = story.shared.clone();
    forged.push(claim(LIAR, &story.shared, person(LIAR, 9), H3));
    let certified = certificate(&fork_a, &[LIAR, H1, H3]);
    let err = adopt(&service, &certified, 2, &[&forged[2]])
        .await
        .unwrap_err();
    assert_eq!(err.name(), "adoption_root_mismatch");
    assert_eq!(logs(&service), before);
    let counters = service.counters();
    assert_eq!(
        counters
            .forks_adopted
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

#[tokio::test]
async fn the_own_log_built_on_the_losing_fork_is_never_taken_back() {
    let dir = tempfile::tempdir().unwrap();
    // Fork B's claim is granted to this node, which enrolled the person against it.
    let story = Story::new(ME);
    let (fork_a, fork_b) = (story.fork(&story.a), story.fork(&story.b));
    let mine = enrol(ME, &[], person(LIAR, 3), &story.b);
    let (service, _committer) = open(dir.path());
    let refs: Vec<&SignedEntry> = fork_b.iter().chain([&mine]).collect();
    assert_eq!(ingest(&service, &refs).await, 4);
    let before = logs(&service);

    let certified = certificate(&fork_a, &[LIAR, H1, H3]);
    assert!(service.want_adoption(certified.clone()));
    let err = adopt(&service, &certified, 2, &[&story.a])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            AdoptError::OwnLogDepends { log, me, seq: 0 } if log == code(LIAR) && me == code(ME)
        ),
        "{err}"
    );
    assert_eq!(err.name(), "adoption_own_log_depends");
    assert_eq!(logs(&service), before, "nothing was taken back");
    assert!(service.adoptions_wanted().await.is_empty());
    assert!(!service.want_adoption(certified), "not tried again");
    assert_eq!(service.adoptions_blocked()[0].0, code(LIAR));
}

#[tokio::test]
async fn a_replica_that_is_only_behind_takes_the_certified_entries_without_a_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let story = Story::new(H1);
    let fork_a = story.fork(&story.a);
    let (service, _committer) = open(dir.path());
    let shared: Vec<&SignedEntry> = story.shared.iter().collect();
    assert_eq!(ingest(&service, &shared).await, 2);
    let certified = certificate(&fork_a, &[LIAR, H1, H3]);
    let adopted = adopt(&service, &certified, 1, &[&story.shared[1], &story.a])
        .await
        .unwrap();
    assert_eq!(
        adopted,
        Adopted {
            log: code(LIAR),
            held: 2,
            common: 2,
            size: 3,
            dependents: vec![],
            applied: 1,
            rebuild_ms: 0,
        }
    );
    assert_eq!(logs(&service), vec![(code(LIAR), fork_a)]);
    assert!(service.store().fraud_proofs().unwrap().is_empty());
    let counters = service.counters();
    let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(load(&counters.forks_adopted), 0);
    assert_eq!(load(&counters.fork_entries_dropped), 0);
    // Holding it all now, the same offer is no fork at all.
    let err = adopt(&service, &certified, 2, &[&story.a])
        .await
        .unwrap_err();
    assert_eq!(err.name(), "adoption_not_a_fork");
}

/// How long the rebuild takes over a store of many entries (the part of a move that grows with
/// the store): `cargo nextest run -p hukou-node --test adoption --run-ignored only
/// --no-capture`.
#[tokio::test]
#[ignore = "a measurement"]
async fn rebuild_time_over_a_large_store() {
    const CLAIMS_PER_LOG: usize = 50_000;
    let dir = tempfile::tempdir().unwrap();
    let story = Story::new(H1);
    let (fork_a, fork_b) = (story.fork(&story.a), story.fork(&story.b));
    let (service, _committer) = open(dir.path());
    // Each of three honest members grants many claims (one per person it arbitrates).
    for (i, who) in [(0usize, H1), (1, H3), (2, ME)] {
        let mut log: Vec<SignedEntry> = Vec::new();
        let m = membership();
        let mut n = 0u64;
        while log.len() < CLAIMS_PER_LOG {
            n += 1;
            let mut tag = [0u8; 32];
            tag[..8].copy_from_slice(&n.to_be_bytes());
            tag[8] = i as u8;
            let p = PersonTag(tag);
            if m.arbiter(&p) == code(who) {
                let e = claim(who, &log, p, who);
                log.push(e);
            }
        }
        for chunk in log.chunks(4096) {
            service
                .ingest(chunk.iter().map(SignedEntry::encode).collect())
                .await
                .unwrap();
        }
    }
    ingest(&service, &fork_b.iter().collect::<Vec<_>>()).await;
    let entries = service.store().verify_full().unwrap().entries;
    let started = Instant::now();
    let certified = certificate(&fork_a, &[LIAR, H1, H3]);
    let adopted = adopt(&service, &certified, 2, &[&story.a]).await.unwrap();
    eprintln!(
        "store of {entries} entries: rebuild {} ms, whole move {} ms",
        adopted.rebuild_ms,
        started.elapsed().as_millis()
    );
}

// ---- kill -9 in the middle of moves ----

/// Set in the environment of the child process of the kill -9 test: the store directory.
const CRASH_CHILD_DIR: &str = "HUKOU_ADOPTION_CRASH_CHILD_DIR";

/// A person tag that the liar arbitrates, distinct for each (`step`, `variant`).
fn liar_person(step: u64, variant: u8) -> PersonTag {
    let m = membership();
    (0u8..=255)
        .map(|k| {
            let mut tag = [0u8; 32];
            tag[..8].copy_from_slice(&step.to_be_bytes());
            tag[8] = variant;
            tag[31] = k;
            PersonTag(tag)
        })
        .find(|p| m.arbiter(p) == code(LIAR))
        .expect("a quarter of all tags")
}

/// The certified log of the kill -9 test, `len` entries: claims the liar grants itself.
fn certified_log(len: u64) -> Vec<SignedEntry> {
    let mut log = Vec::new();
    for step in 0..len {
        let e = claim(LIAR, &log, liar_person(step, 0xC), LIAR);
        log.push(e);
    }
    log
}

/// The losing entry at seq `step` after the certified `prefix`: a claim granted to 330502,
/// and 330502's enrolment against it (which goes with it).
fn losing(prefix: &[SignedEntry]) -> (SignedEntry, SignedEntry) {
    let step = prefix.len() as u64;
    let person = liar_person(step, 0xB);
    let x = claim(LIAR, prefix, person, H1);
    let h = enrol(H1, &[], person, &x);
    (x, h)
}

/// Moves the liar's replica to the certified log if its last entry is a losing one.
async fn converge(service: &Service) {
    let len = service.store().log_len(code(LIAR));
    if len == 0 {
        return;
    }
    let certified = certified_log(len);
    let last = service.store().entry(code(LIAR), len - 1).unwrap().unwrap();
    if last != certified[len as usize - 1] {
        let certificate = certificate(&certified, &[LIAR, H1, H3]);
        adopt(
            service,
            &certificate,
            len - 1,
            &[&certified[len as usize - 1]],
        )
        .await
        .expect("the move after a restart");
    }
}

/// The child of `kill_9_while_moving_leaves_a_store_that_opens_and_converges` (does nothing in
/// a normal run): for ever, takes in a losing entry of the liar's log and an entry of
/// 330502's that builds on it, then moves to the certified log, and prints `ack LEN` (the
/// certified length now durable) after each move.
#[tokio::test]
async fn adoption_crash_child() {
    let Some(dir) = std::env::var_os(CRASH_CHILD_DIR) else {
        return;
    };
    let (service, _committer) = open(Path::new(&dir));
    converge(&service).await;
    loop {
        let k = service.store().log_len(code(LIAR));
        let certified = certified_log(k + 1);
        let (x, h) = losing(&certified[..k as usize]);
        assert_eq!(ingest(&service, &[&x, &h]).await, 2);
        let certificate = certificate(&certified, &[LIAR, H1, H3]);
        let adopted = adopt(&service, &certificate, k, &[&certified[k as usize]])
            .await
            .unwrap();
        assert_eq!(adopted.dependents, vec![(code(H1), 0, 1)]);
        // Written past the test harness's capture, straight to the pipe.
        use std::io::Write;
        writeln!(std::io::stdout().lock(), "ack {}", k + 1).unwrap();
    }
}

/// A process killed with SIGKILL at a random point of its moves (taking in the losing entry,
/// rebuilding, truncating, applying the certified one) leaves a store that opens, replays and
/// verifies, holds the certified log up to what it acknowledged with at most one losing entry
/// after it, and converges; eight times over on one store.
#[tokio::test]
async fn kill_9_while_moving_leaves_a_store_that_opens_and_converges() {
    const ROUNDS: u64 = 8;
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut acknowledged = 0u64;
    for round in 1..=ROUNDS {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "adoption_crash_child",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CRASH_CHILD_DIR, dir.path())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let record = |line: String, acknowledged: &mut u64| {
            if let Some(len) = line.strip_prefix("ack ") {
                *acknowledged = (*acknowledged).max(len.parse().unwrap());
            }
        };
        while acknowledged < round * 10 {
            let line = lines.next().expect("the child ended early").unwrap();
            record(line, &mut acknowledged);
        }
        // Somewhere inside the next move (each takes a few milliseconds).
        let pause_us = u64::from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos(),
        ) % 25_000;
        std::thread::sleep(std::time::Duration::from_micros(pause_us));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        for line in lines {
            record(line.unwrap(), &mut acknowledged);
        }

        // It opens (the replay passes the rulebook), verifies, and holds the certified log up
        // to what was acknowledged, then at most one losing entry and what built on it.
        let (service, committer) = open(dir.path());
        let verified = service.store().verify_full().expect("the store verifies");
        let liar = service.store().range(code(LIAR), 0, usize::MAX).unwrap();
        let h1 = service.store().range(code(H1), 0, usize::MAX).unwrap();
        let len = liar.len() as u64;
        let certified = certified_log(len);
        let agreeing = liar
            .iter()
            .zip(&certified)
            .take_while(|(a, b)| a == b)
            .count() as u64;
        assert!(
            agreeing >= acknowledged,
            "round {round}: {agreeing} certified entries, {acknowledged} acknowledged"
        );
        assert!(
            agreeing + 1 >= len,
            "round {round}: at most the last entry is a losing one"
        );
        if agreeing < len {
            let (x, h) = losing(&certified[..agreeing as usize]);
            assert_eq!(liar[agreeing as usize], x, "round {round}");
            assert!(h1.is_empty() || h1 == [h], "round {round}");
        } else {
            assert!(
                h1.is_empty(),
                "round {round}: 330502's entry went with the losing one"
            );
        }
        let proofs = service.store().fraud_proofs().unwrap();
        for (_, _, raw) in &proofs {
            let proof = FraudProof::decode(raw).unwrap();
            assert_eq!(
                proof.verify(&hukou_protocol::config::Epochs::of_membership(membership())),
                Ok(())
            );
        }
        // Each move keeps the proof of its position (durable with its truncation at the latest).
        let moves = proofs.len() as u64;
        let phase = match (agreeing < len, moves.cmp(&len)) {
            // Its proof may be on disk already: sled writes in the background too.
            (true, _) if moves + 1 == len || moves == len => "holding the losing entry",
            (false, std::cmp::Ordering::Equal) => "between moves",
            (false, std::cmp::Ordering::Greater) if moves == len + 1 => {
                "truncated, the certified entry not yet durable"
            }
            _ => panic!("round {round}: {moves} proofs, {len} entries, {agreeing} certified"),
        };
        eprintln!(
            "round {round}: killed after {acknowledged} moves, {phase}: {} entries, the liar's log {len} long",
            verified.entries
        );
        // And it converges.
        converge(&service).await;
        assert_eq!(
            service.store().range(code(LIAR), 0, usize::MAX).unwrap(),
            certified_log(len)
        );
        assert_eq!(service.store().log_len(code(H1)), 0);
        drop(service);
        committer.await.unwrap().unwrap();
    }
}
