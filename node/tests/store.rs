//! The store against a real directory: append and read back, refusals that leave nothing
//! written, reopening, identity checks, damage found and named, and group commit.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use ed25519_dalek::SigningKey;
use hukou_node::store::{
    self, Committer, LostEntries, Store, StoreError, TREE_NAME, VerifyReport, log_key,
};
use hukou_protocol::{
    Body, BureauCode, Entry, EntryHash, HouseholdId, NetworkId, PersonTag, Placement, Relation,
    Seq, SignedEntry,
};

/// A fresh directory under the system's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "hukou-store-test-{name}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const OWN: u32 = 310104;
const OTHER: u32 = 330502;

fn code(n: u32) -> BureauCode {
    BureauCode::new(n).unwrap()
}

fn network() -> NetworkId {
    NetworkId::from_name("store-test")
}

fn key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

fn enrol_body(person: u8) -> Body {
    Body::Enrol {
        person: PersonTag([person; 32]),
        placement: Placement {
            household: HouseholdId(1),
            relation: Relation::Head,
        },
        // The store does not judge entries: any claim reference will do.
        claim: hukou_protocol::EntryRef {
            author: BureauCode::new(310104).unwrap(),
            seq: hukou_protocol::Seq(0),
            hash: EntryHash::ZERO,
        },
    }
}

fn signed(author: BureauCode, seq: u64, prev: EntryHash, body: Body) -> SignedEntry {
    Entry {
        network: network(),
        epoch: 0,
        author,
        seq: Seq(seq),
        prev,
        time_ms: 1_700_000_000_000 + seq,
        body,
    }
    .sign(&key())
}

/// `count` enrolments of `author` from `from`, chained to `prev`; entry `seq` enrols person
/// `seq % 251`.
fn chain(author: BureauCode, from: u64, prev: EntryHash, count: u64) -> Vec<SignedEntry> {
    let mut prev = prev;
    (from..from + count)
        .map(|seq| {
            let entry = signed(author, seq, prev, enrol_body((seq % 251) as u8));
            prev = entry.hash();
            entry
        })
        .collect()
}

fn open(dir: &TempDir) -> Store {
    Store::open(dir.path(), code(OWN), network()).unwrap()
}

/// Opens the store's sled tree directly, bypassing every check, to damage it.
fn with_raw_tree(dir: &TempDir, change: impl FnOnce(&sled::Tree)) {
    // A store just dropped may hold sled's lock for a moment (see `OPEN_LOCK_WAIT_MS`).
    let mut attempts = 0;
    let db = loop {
        match sled::open(dir.path()) {
            Ok(db) => break db,
            Err(e) if attempts < 200 => {
                attempts += 1;
                eprintln!("waiting for the lock: {e}");
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => panic!("{e}"),
        }
    };
    let tree = db.open_tree(TREE_NAME).unwrap();
    change(&tree);
    db.flush().unwrap();
}

#[test]
fn appended_entries_read_back_once_flushed() {
    let dir = TempDir::new("read-back");
    let store = open(&dir);
    let log = code(OWN);
    let entries = chain(log, 0, EntryHash::ZERO, 10);
    store.append(&entries).unwrap();

    // Not durable yet: readers see nothing, the next append position moved.
    assert_eq!(store.log_len(log), 0);
    assert_eq!(store.appended_len(log), 10);
    assert_eq!(store.entry(log, 0).unwrap(), None);
    assert!(store.logs().is_empty());

    store.flush().unwrap();
    assert_eq!(store.log_len(log), 10);
    assert_eq!(store.logs(), vec![(log, 10)]);
    assert_eq!(store.entry(log, 5).unwrap().as_ref(), Some(&entries[5]));
    assert_eq!(store.entry(log, 10).unwrap(), None);
    assert_eq!(store.range(log, 2, 3).unwrap(), entries[2..5].to_vec());
    assert_eq!(store.range(log, 8, 100).unwrap(), entries[8..].to_vec());
    assert_eq!(store.range(log, 11, 5).unwrap(), vec![]);
    assert_eq!(
        store.raw_range(log, 0, 4).unwrap(),
        entries[..4]
            .iter()
            .map(SignedEntry::encode)
            .collect::<Vec<_>>()
    );
    let replayed: Vec<SignedEntry> = store.iter_log(log).map(Result::unwrap).collect();
    assert_eq!(replayed, entries);
    assert_eq!(store.iter_log(code(OTHER)).count(), 0);
    assert_eq!(
        store.verify_full().unwrap(),
        VerifyReport {
            logs: 1,
            entries: 10,
        }
    );
}

#[test]
fn gap_overwrite_and_broken_chain_are_refused_and_nothing_is_written() {
    let dir = TempDir::new("refusals");
    let store = open(&dir);
    let log = code(OWN);
    let entries = chain(log, 0, EntryHash::ZERO, 5);
    store.append(&entries[..3]).unwrap();
    store.flush().unwrap();
    let path = dir.path().to_path_buf();

    // A gap: seq 4 after 3 entries.
    assert_eq!(
        store.append(&entries[4..5]),
        Err(StoreError::NotContiguous {
            path: path.clone(),
            log,
            seq: 4,
            expected: 3
        })
    );
    // An overwrite of seq 2, with a different entry.
    let other_two = signed(log, 2, entries[1].hash(), enrol_body(200));
    assert_eq!(
        store.append(std::slice::from_ref(&other_two)),
        Err(StoreError::NotContiguous {
            path: path.clone(),
            log,
            seq: 2,
            expected: 3
        })
    );
    // A good entry followed by a gap: the whole call is refused, the good one not written.
    assert_eq!(
        store.append(&[entries[3].clone(), entries[4].clone(), entries[4].clone()]),
        Err(StoreError::NotContiguous {
            path: path.clone(),
            log,
            seq: 4,
            expected: 5
        })
    );
    // The right seq with the wrong prev.
    let unchained = signed(log, 3, EntryHash([9; 32]), enrol_body(3));
    assert_eq!(
        store.append(std::slice::from_ref(&unchained)),
        Err(StoreError::PrevMismatch {
            path: path.clone(),
            log,
            seq: 3,
            expected: entries[2].hash(),
            found: EntryHash([9; 32]),
        })
    );
    // An entry of another network.
    let foreign = Entry {
        network: NetworkId::from_name("elsewhere"),
        epoch: 0,
        ..entries[3].entry().clone()
    }
    .sign(&key());
    assert!(matches!(
        store.append(&[foreign]),
        Err(StoreError::ForeignNetwork { seq: 3, .. })
    ));

    store.flush().unwrap();
    assert_eq!(store.appended_len(log), 3);
    assert_eq!(store.log_len(log), 3);
    assert_eq!(store.range(log, 0, 10).unwrap(), entries[..3].to_vec());
    store.verify_full().unwrap();

    // And the log goes on from where it was.
    store.append(&entries[3..]).unwrap();
    assert_eq!(store.appended_len(log), 5);
}

#[test]
fn reopening_keeps_every_log_and_the_chain_tip() {
    let dir = TempDir::new("reopen");
    let (own, other) = (code(OWN), code(OTHER));
    let own_entries = chain(own, 0, EntryHash::ZERO, 100);
    let other_entries = chain(other, 0, EntryHash::ZERO, 30);
    {
        let store = open(&dir);
        store.append(&own_entries[..70]).unwrap();
        store.append(&other_entries).unwrap();
        store.append(&own_entries[70..]).unwrap();
        store.flush().unwrap();
        store.put_checkpoint(other, 30, b"checkpoint 30").unwrap();
        store.flush().unwrap();
    }
    let store = open(&dir);
    assert_eq!(store.logs(), vec![(own, 100), (other, 30)]);
    assert_eq!(store.range(own, 0, 1000).unwrap(), own_entries);
    assert_eq!(store.range(other, 0, 1000).unwrap(), other_entries);
    assert_eq!(
        store.latest_checkpoint(other).unwrap(),
        Some((30, b"checkpoint 30".to_vec()))
    );
    // The tip survived: the next entry must chain to entry 99.
    let next = chain(own, 100, own_entries[99].hash(), 1);
    let unchained = signed(own, 100, own_entries[98].hash(), enrol_body(1));
    assert!(matches!(
        store.append(&[unchained]),
        Err(StoreError::PrevMismatch { seq: 100, .. })
    ));
    store.append(&next).unwrap();
    store.verify_full().unwrap();
}

#[test]
fn a_store_of_another_bureau_network_or_schema_is_refused() {
    let dir = TempDir::new("identity");
    drop(open(&dir));

    let err = Store::open(dir.path(), code(OTHER), network()).unwrap_err();
    assert_eq!(
        err,
        StoreError::WrongBureau {
            path: dir.path().to_path_buf(),
            found: code(OWN),
            expected: code(OTHER)
        }
    );
    let message = err.to_string();
    assert!(
        message.contains("310104") && message.contains("330502"),
        "{message}"
    );

    let elsewhere = NetworkId::from_name("elsewhere");
    assert_eq!(
        Store::open(dir.path(), code(OWN), elsewhere).unwrap_err(),
        StoreError::WrongNetwork {
            path: dir.path().to_path_buf(),
            found: network(),
            expected: elsewhere
        }
    );

    with_raw_tree(&dir, |tree| {
        tree.insert(b"Mschema", &2u32.to_be_bytes()[..]).unwrap();
    });
    assert_eq!(
        Store::open(dir.path(), code(OWN), network()).unwrap_err(),
        StoreError::WrongSchema {
            path: dir.path().to_path_buf(),
            found: 2,
            supported: store::SCHEMA_VERSION
        }
    );
}

#[test]
fn a_hole_in_a_log_is_reported_as_damage() {
    let dir = TempDir::new("hole");
    let log = code(OTHER);
    {
        let store = open(&dir);
        store.append(&chain(log, 0, EntryHash::ZERO, 200)).unwrap();
        store.flush().unwrap();
    }
    // Far below the tip: only a key scan finds it.
    with_raw_tree(&dir, |tree| {
        tree.remove(log_key(log, 5)).unwrap().unwrap();
    });
    match Store::open(dir.path(), code(OWN), network()) {
        Err(StoreError::Damaged {
            log: damaged_log,
            seq: 5,
            reason,
            ..
        }) => {
            assert_eq!(damaged_log, log);
            assert!(reason.contains("missing"), "{reason}");
        }
        other => panic!("expected damage at {log}:5, got {other:?}"),
    }
}

#[test]
fn a_lost_first_entry_is_reported_as_damage() {
    let dir = TempDir::new("lost-first");
    let log = code(OWN);
    {
        let store = open(&dir);
        store.append(&chain(log, 0, EntryHash::ZERO, 3)).unwrap();
        store.flush().unwrap();
    }
    with_raw_tree(&dir, |tree| {
        tree.remove(log_key(log, 0)).unwrap().unwrap();
    });
    assert!(matches!(
        Store::open(dir.path(), code(OWN), network()),
        Err(StoreError::Damaged { seq: 0, .. })
    ));
}

#[test]
fn a_corrupted_entry_at_the_tip_is_reported_as_damage() {
    let log = code(OWN);
    let entries = chain(log, 0, EntryHash::ZERO, 20);
    // (what to do to the stored log, the seq reported, a word of the reason)
    type Damage = Box<dyn FnOnce(&sled::Tree)>;
    let cases: Vec<(Damage, u64, &str)> = vec![
        (
            Box::new(|tree: &sled::Tree| {
                let value = tree.get(log_key(code(OWN), 19)).unwrap().unwrap();
                tree.insert(log_key(code(OWN), 19), &value[..value.len() - 10])
                    .unwrap();
            }),
            19,
            "does not decode",
        ),
        (
            Box::new(|tree: &sled::Tree| {
                let mut value = tree.get(log_key(code(OWN), 17)).unwrap().unwrap().to_vec();
                value[4..20].fill(0xff); // inside the network id
                tree.insert(log_key(code(OWN), 17), value).unwrap();
            }),
            17,
            "network",
        ),
        (
            Box::new(move |tree: &sled::Tree| {
                // A well-formed entry 18 that does not chain: 19's prev no longer matches.
                let impostor = signed(code(OWN), 18, entries[17].hash(), enrol_body(99));
                tree.insert(log_key(code(OWN), 18), impostor.encode())
                    .unwrap();
            }),
            19,
            "prev",
        ),
        (
            Box::new(|tree: &sled::Tree| {
                let value = tree.get(log_key(code(OWN), 12)).unwrap().unwrap();
                tree.insert(log_key(code(OWN), 13), value).unwrap();
            }),
            13,
            "seq 12",
        ),
    ];
    for (damage, seq, word) in cases {
        let dir = TempDir::new("corrupt");
        {
            let store = open(&dir);
            store.append(&chain(log, 0, EntryHash::ZERO, 20)).unwrap();
            store.flush().unwrap();
        }
        with_raw_tree(&dir, damage);
        match Store::open(dir.path(), code(OWN), network()) {
            Err(StoreError::Damaged {
                log: damaged_log,
                seq: damaged_seq,
                reason,
                ..
            }) => {
                assert_eq!((damaged_log, damaged_seq), (log, seq), "{reason}");
                assert!(reason.contains(word), "{reason:?} lacks {word:?}");
            }
            other => panic!("expected damage at {log}:{seq}, got {other:?}"),
        }
    }
}

#[test]
fn damage_below_the_tip_is_found_by_replay_and_full_verification() {
    let dir = TempDir::new("deep-damage");
    let log = code(OWN);
    let entries = chain(log, 0, EntryHash::ZERO, 200);
    {
        let store = open(&dir);
        store.append(&entries).unwrap();
        store.flush().unwrap();
    }
    with_raw_tree(&dir, |tree| {
        tree.insert(log_key(log, 3), &b"HKE\x01garbage"[..])
            .unwrap();
    });
    // Open checks only the tip, so it succeeds ...
    let store = open(&dir);
    assert_eq!(store.log_len(log), 200);
    // ... but replay stops at the damage, and so does a full check.
    let replay: Vec<_> = store.iter_log(log).collect();
    assert_eq!(replay.len(), 4);
    assert!(replay[..3].iter().all(Result::is_ok));
    assert!(matches!(
        &replay[3],
        Err(StoreError::Damaged { seq: 3, .. })
    ));
    assert!(matches!(
        store.verify_full(),
        Err(StoreError::Damaged { seq: 3, .. })
    ));
    assert!(matches!(
        store.range(log, 0, 10),
        Err(StoreError::Damaged { seq: 3, .. })
    ));
    assert!(matches!(
        store.entry(log, 3),
        Err(StoreError::Damaged { seq: 3, .. })
    ));
}

#[test]
fn checkpoints_certificates_fraud_proofs_and_meta_round_trip() {
    let dir = TempDir::new("side-records");
    let log = code(OTHER);
    {
        let store = open(&dir);
        assert_eq!(store.latest_checkpoint(log).unwrap(), None);
        store.put_checkpoint(log, 5, b"c5").unwrap();
        store.put_checkpoint(log, 300, b"c300").unwrap();
        store
            .put_checkpoint(code(OTHER + 1), 1, b"next log")
            .unwrap();
        store.put_certificate(log, 5, b"t5").unwrap();
        assert!(store.put_fraud_proof(log, 9, b"first").unwrap());
        assert!(!store.put_fraud_proof(log, 9, b"second").unwrap());
        store.set_meta("genesis", b"hash").unwrap();
        store.flush().unwrap();
    }
    let store = open(&dir);
    assert_eq!(store.checkpoint(log, 5).unwrap(), Some(b"c5".to_vec()));
    assert_eq!(store.checkpoint(log, 6).unwrap(), None);
    assert_eq!(
        store.latest_checkpoint(log).unwrap(),
        Some((300, b"c300".to_vec()))
    );
    assert_eq!(store.certificate(log, 5).unwrap(), Some(b"t5".to_vec()));
    assert_eq!(
        store.latest_certificate(log).unwrap(),
        Some((5, b"t5".to_vec()))
    );
    assert_eq!(store.latest_certificate(code(OWN)).unwrap(), None);
    assert_eq!(
        store.fraud_proofs().unwrap(),
        vec![(log, 9, b"first".to_vec())]
    );
    assert_eq!(store.meta("genesis").unwrap(), Some(b"hash".to_vec()));
    assert_eq!(store.meta("absent").unwrap(), None);
    assert_eq!(store.own(), code(OWN));
    assert_eq!(store.network(), network());
}

#[tokio::test]
async fn cosigned_checkpoints_are_compared_and_swapped_durably() {
    let dir = TempDir::new("cosigned");
    let log = code(OTHER);
    {
        let store = open(&dir);
        store.record_cosigned(log, None, b"size 10").await.unwrap();
        assert_eq!(
            store.record_cosigned(log, None, b"fork").await,
            Err(StoreError::CosignedChanged {
                path: dir.path().to_path_buf(),
                log
            })
        );
        store
            .record_cosigned(log, Some(b"size 10"), b"size 20")
            .await
            .unwrap();
    }
    let store = open(&dir);
    assert_eq!(store.cosigned(log).unwrap(), Some(b"size 20".to_vec()));
    assert_eq!(store.cosigned(code(OWN)).unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commit_keeps_every_entry_in_order_with_few_flushes() {
    const TASKS: u32 = 8;
    const COMMITS: u64 = 500;
    let dir = TempDir::new("group-commit");
    let store = open(&dir);
    let (committer, task) = Committer::start(store.clone(), std::future::pending());
    let mut callers = Vec::new();
    for caller in 0..TASKS {
        let committer = committer.clone();
        callers.push(tokio::spawn(async move {
            // Each caller writes its own log, one entry per commit, awaiting each.
            let log = code(OWN + caller);
            let entries = chain(log, 0, EntryHash::ZERO, COMMITS);
            for entry in &entries {
                committer.commit(vec![entry.clone()]).await.unwrap();
            }
            entries
        }));
    }
    let mut expected = Vec::new();
    for caller in callers {
        expected.push(caller.await.unwrap());
    }
    let stats = committer.stats();
    let commits = u64::from(TASKS) * COMMITS;
    assert_eq!(stats.entries, commits);
    assert_eq!(stats.requests, commits);
    assert!(
        stats.flushes < commits / 2,
        "{} flushes for {commits} commits",
        stats.flushes
    );
    assert!(stats.group_entries_max > 1);
    for (caller, entries) in (0..TASKS).zip(&expected) {
        let log = code(OWN + caller);
        assert_eq!(store.log_len(log), COMMITS);
        assert_eq!(&store.range(log, 0, COMMITS as usize).unwrap(), entries);
    }
    drop(committer);
    task.await.unwrap().unwrap();
    assert_eq!(
        store.verify_full().unwrap(),
        VerifyReport {
            logs: TASKS as usize,
            entries: commits,
        }
    );
    println!("{stats:?}");
}

#[tokio::test]
async fn the_committer_refuses_a_bad_request_alone_and_pipelines_in_order() {
    let dir = TempDir::new("committer-refusal");
    let store = open(&dir);
    let (committer, task) = Committer::start(store.clone(), std::future::pending());
    let log = code(OWN);
    let entries = chain(log, 0, EntryHash::ZERO, 300);

    // Many in flight from one caller: written in submission order.
    let mut receipts = Vec::new();
    for entry in &entries[..200] {
        receipts.push(committer.submit(vec![entry.clone()]).await.unwrap());
    }
    // A gap, queued between good requests.
    let gap = committer.submit(vec![entries[250].clone()]).await.unwrap();
    let rest = committer.submit(entries[200..].to_vec()).await.unwrap();
    for receipt in receipts {
        receipt.await.unwrap();
    }
    assert_eq!(
        gap.await,
        Err(StoreError::NotContiguous {
            path: dir.path().to_path_buf(),
            log,
            seq: 250,
            expected: 200
        })
    );
    rest.await.unwrap();
    assert_eq!(store.log_len(log), 300);
    assert_eq!(store.range(log, 0, 300).unwrap(), entries);
    drop(committer);
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn shutdown_commits_what_is_queued_then_refuses() {
    let dir = TempDir::new("committer-shutdown");
    let store = open(&dir);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (committer, task) = Committer::start(store.clone(), async {
        let _ = stopped.await;
    });
    let log = code(OWN);
    let entries = chain(log, 0, EntryHash::ZERO, 2);
    committer.commit(entries[..1].to_vec()).await.unwrap();
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    assert_eq!(
        committer.commit(entries[1..].to_vec()).await,
        Err(StoreError::CommitterStopped {
            path: dir.path().to_path_buf()
        })
    );
    assert_eq!(store.log_len(log), 1);
}

#[test]
fn the_crash_check_reports_acknowledged_entries_that_were_lost() {
    let dir = TempDir::new("crash-check");
    let log = code(OWN);
    {
        let store = open(&dir);
        store.append(&chain(log, 0, EntryHash::ZERO, 7)).unwrap();
        store.flush().unwrap();
    }
    let check = store::check_after_crash(
        dir.path(),
        code(OWN),
        network(),
        &[(log, 7), (code(OTHER), 2)],
    )
    .unwrap();
    assert_eq!(check.logs, vec![(log, 7)]);
    assert_eq!(check.verified.entries, 7);
    assert_eq!(
        check.lost,
        vec![LostEntries {
            log: code(OTHER),
            acknowledged: 2,
            found: 0
        }]
    );
}

/// Set in the environment of the child process of the kill -9 test: the store directory.
const CRASH_CHILD_DIR: &str = "HUKOU_STORE_CRASH_CHILD_DIR";
const CRASH_LOGS: u32 = 4;

/// The child of `kill_9_loses_nothing_acknowledged` (does nothing in a normal run): commits
/// entries to four logs for ever and prints `ack LOG LEN` after each commit returns.
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(CRASH_CHILD_DIR) else {
        return;
    };
    let store = Store::open(Path::new(&dir), code(OWN), network()).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let (committer, _task) = Committer::start(store.clone(), std::future::pending());
        for offset in 0..CRASH_LOGS {
            let (store, committer) = (store.clone(), committer.clone());
            tokio::spawn(async move {
                let log = code(OWN + offset);
                let mut len = store.log_len(log);
                let mut prev = match len {
                    0 => EntryHash::ZERO,
                    _ => store.entry(log, len - 1).unwrap().unwrap().hash(),
                };
                loop {
                    let entries = chain(log, len, prev, 1 + len % 3);
                    prev = entries.last().unwrap().hash();
                    len += entries.len() as u64;
                    committer.commit(entries).await.unwrap();
                    // Written past the test harness's capture, straight to the pipe.
                    use std::io::Write;
                    writeln!(std::io::stdout().lock(), "ack {} {len}", log.get()).unwrap();
                }
            });
        }
        // Until the parent kills this process.
        std::future::pending::<()>().await
    });
}

/// A process killed with SIGKILL while committing loses nothing it acknowledged, and what it
/// leaves verifies in full; three times over on one store.
#[test]
fn kill_9_loses_nothing_acknowledged() {
    use std::io::BufRead;
    let dir = TempDir::new("kill-9");
    let mut acknowledged: std::collections::BTreeMap<u32, u64> = Default::default();
    for round in 1..=3u64 {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
            .env(CRASH_CHILD_DIR, dir.path())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let record = |line: String, acknowledged: &mut std::collections::BTreeMap<u32, u64>| {
            if let Some(rest) = line.strip_prefix("ack ") {
                let (log, len) = rest.split_once(' ').unwrap();
                let len: u64 = len.parse().unwrap();
                let known = acknowledged.entry(log.parse().unwrap()).or_default();
                *known = (*known).max(len);
            }
        };
        let target: u64 = round * 400 * u64::from(CRASH_LOGS);
        while acknowledged.values().sum::<u64>() < target {
            let line = lines.next().expect("child ended early").unwrap();
            record(line, &mut acknowledged);
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // Acknowledgements printed before the kill are still in the pipe.
        for line in lines {
            record(line.unwrap(), &mut acknowledged);
        }
        let acked: Vec<(BureauCode, u64)> = acknowledged
            .iter()
            .map(|(log, len)| (code(*log), *len))
            .collect();
        let check = store::check_after_crash(dir.path(), code(OWN), network(), &acked).unwrap();
        assert_eq!(check.lost, vec![], "round {round}");
        assert!(check.verified.entries >= acked.iter().map(|(_, len)| len).sum::<u64>());
    }
}
