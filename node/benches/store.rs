//! Group-commit throughput of the store: 200,000 entries committed through the `Committer` by
//! 16 concurrent tasks, each writing its own log one entry per request, in two ways:
//!
//! - `pipelined`: each task keeps up to `WINDOW` requests in flight (`submit`, then await the
//!   oldest receipt), as an API server does with many clerks or a peer link with many entries;
//! - `awaited`: each task waits for each commit before the next (one clerk per task), so a
//!   group holds at most 16 entries and throughput is bound by flush latency.
//!
//! Every entry counted is durable (flushed and fsynced) before its caller is answered.
//! Run with `cargo bench -p hukou-node --bench store`; prints one line per mode with
//! `durable_entries_per_s=`, `flushes=` and `group_entries_avg=`.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Instant;

use hukou_node::store::{Committer, Store};
use hukou_protocol::entry::Signature;
use hukou_protocol::{
    Body, BureauCode, Entry, EntryHash, HouseholdId, NetworkId, PersonTag, Placement, Relation,
    Seq, SignedEntry,
};

const TASKS: u32 = 16;
const PIPELINED_ENTRIES: u64 = 200_000;
const AWAITED_ENTRIES: u64 = 16_000;
/// Requests one pipelining task keeps in flight.
const WINDOW: usize = 64;
const FIRST_BUREAU: u32 = 310_101;

/// One log of `count` chained enrolments. The store never checks signatures (the rulebook
/// does), so entries carry a zero signature and the bench measures storage, not signing.
fn log_entries(network: NetworkId, author: BureauCode, count: u64) -> Vec<SignedEntry> {
    let mut prev = EntryHash::ZERO;
    (0..count)
        .map(|seq| {
            let mut person = [0u8; 32];
            person[..4].copy_from_slice(&author.get().to_be_bytes());
            person[4..12].copy_from_slice(&seq.to_be_bytes());
            let entry = Entry {
                network,
                epoch: 0,
                author,
                seq: Seq(seq),
                prev,
                time_ms: 1_700_000_000_000 + seq,
                body: Body::Enrol {
                    person: PersonTag(person),
                    placement: Placement {
                        household: HouseholdId(seq),
                        relation: Relation::Head,
                    },
                    // The store does not judge entries: any claim reference will do.
                    claim: hukou_protocol::EntryRef {
                        author,
                        seq: Seq(seq),
                        hash: prev,
                    },
                },
            };
            let signed = SignedEntry::from_parts(entry, Signature([0; 64]));
            prev = signed.hash();
            signed
        })
        .collect()
}

async fn run(mode: &str, total: u64, window: usize) {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("hukou-store-bench-{mode}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let network = NetworkId::from_name("bench");
    let own = BureauCode::new(FIRST_BUREAU).unwrap();
    let store = Store::open(&dir, own, network).unwrap();
    let per_task = total / u64::from(TASKS);
    let logs: Vec<Vec<SignedEntry>> = (0..TASKS)
        .map(|task| {
            let author = BureauCode::new(FIRST_BUREAU + task).unwrap();
            log_entries(network, author, per_task)
        })
        .collect();

    let (committer, task) = Committer::start(store.clone(), std::future::pending());
    let started = Instant::now();
    let mut callers = Vec::new();
    for entries in logs {
        let committer = committer.clone();
        callers.push(tokio::spawn(async move {
            let mut in_flight = VecDeque::with_capacity(window);
            for entry in entries {
                if in_flight.len() == window {
                    let oldest: hukou_node::store::Receipt = in_flight.pop_front().unwrap();
                    oldest.await.unwrap();
                }
                in_flight.push_back(committer.submit(vec![entry]).await.unwrap());
            }
            for receipt in in_flight {
                receipt.await.unwrap();
            }
        }));
    }
    for caller in callers {
        caller.await.unwrap();
    }
    let elapsed = started.elapsed();
    let stats = committer.stats();
    drop(committer);
    task.await.unwrap().unwrap();
    let committed = per_task * u64::from(TASKS);
    assert_eq!(stats.entries, committed);
    assert_eq!(
        store.logs().iter().map(|(_, len)| len).sum::<u64>(),
        committed
    );
    println!(
        "mode={mode} tasks={TASKS} window={window} entries={committed} seconds={:.2} \
         durable_entries_per_s={:.0} flushes={} group_entries_avg={:.1} group_entries_max={}",
        elapsed.as_secs_f64(),
        committed as f64 / elapsed.as_secs_f64(),
        stats.flushes,
        committed as f64 / stats.flushes as f64,
        stats.group_entries_max,
    );
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        run("pipelined", PIPELINED_ENTRIES, WINDOW).await;
        run("awaited", AWAITED_ENTRIES, 1).await;
    });
}
