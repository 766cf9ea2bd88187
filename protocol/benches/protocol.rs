//! Throughput of the pure core, one core, release build: signing and verifying entries (one at a
//! time and in batches, beside the raw `ed25519_dalek` figure), the canonical encoding and entry
//! hash, decoding, replaying a realistic history through `Ledger::apply`, and the Merkle tree.
//!
//! Run with `cargo bench -p hukou-protocol`; `docs/BENCHMARKS.md` records what each bench
//! measures, the figures on the reference machine and how they compare with the goals. Every
//! bench reports `Throughput::Elements`, so criterion prints entries (or hashes, or proofs) per
//! second. Inputs are generated once, before any timing, by a small deterministic world of four
//! bureaus (the same idea as `tests/common/mod.rs`, but tracking its own state so that a
//! 100,000-entry history takes a second to build instead of minutes).

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use criterion::{Bencher, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use ed25519_dalek::{Signature as DalekSignature, SigningKey, VerifyingKey};
use hukou_protocol::batch::verify_entries;
use hukou_protocol::merkle::{self, Tree, verify_consistency, verify_inclusion};
use hukou_protocol::rules::SignatureCheck;
use hukou_protocol::types::Hash32;
use hukou_protocol::{
    Body, BureauCode, CancellationReason, Category, Digest, Entry, EntryHash, EntryRef,
    HouseholdId, Ledger, Member, Membership, NetworkId, PersonTag, Placement, RefusalReason,
    Relation, Seq, SignedEntry, quorum_for,
};
use sha2::{Digest as _, Sha256};

/// Entries in the history replayed by the `apply` bench.
const HISTORY_ENTRIES: usize = 100_000;
/// Entries per iteration of the codec benches: enough to amortise the loop, few enough to stay
/// in cache as a real batch would.
const CODEC_ENTRIES: usize = 1024;
/// Batch sizes of the batch-verification benches (`BATCH_ENTRIES_MAX` is 1024).
const BATCH_SIZES: [usize; 3] = [64, 256, 1024];
/// Leaves in the Merkle benches.
const TREE_LEAVES: u64 = 1_000_000;
/// Chunk size `batch::verify_entries` uses; repeated here so the raw comparison can match it.
const CHUNK_ENTRIES: usize = hukou_protocol::batch::BATCH_CHUNK_ENTRIES;

const CODES: [u32; 4] = [310104, 330502, 340100, 320506];
const DAY_MS: u64 = 86_400_000;
/// 2026-01-01T00:00:00Z.
const START_MS: u64 = 1_767_225_600_000;
/// Time between two entries of the network: 100,000 entries span about 12 days, inside the
/// 30-day validity of every permit, so no deregistration meets an expired permit.
const STEP_MS: u64 = 10_000;

/// What the benches time with. The reference machine is shared (other engineers' builds run
/// beside the benches on its two cores), so by default a bench reads the CPU time of its own
/// thread: the figure is then "per second of one core", whatever else the machine is doing.
/// `HUKOU_BENCH_CLOCK=wall` times with the wall clock instead, as plain criterion does.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Clock {
    ThreadCpu,
    Wall,
}

fn clock() -> Clock {
    static CLOCK: OnceLock<Clock> = OnceLock::new();
    *CLOCK.get_or_init(|| {
        let clock = match std::env::var("HUKOU_BENCH_CLOCK").as_deref() {
            Ok("wall") => Clock::Wall,
            _ if thread_cpu_time().is_some() => Clock::ThreadCpu,
            _ => Clock::Wall,
        };
        eprintln!("timing with {clock:?} (HUKOU_BENCH_CLOCK=wall|cpu)");
        clock
    })
}

/// CPU time consumed by the calling thread, where the platform offers it.
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
fn thread_cpu_time() -> Option<Duration> {
    #[repr(C)]
    struct Timespec {
        seconds: i64,
        nanoseconds: i64,
    }
    unsafe extern "C" {
        fn clock_gettime(clock_id: i32, out: *mut Timespec) -> i32;
    }
    /// `CLOCK_THREAD_CPUTIME_ID` in Linux's `<time.h>`.
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut now = Timespec {
        seconds: 0,
        nanoseconds: 0,
    };
    // SAFETY: `now` is a valid, writable `struct timespec` (two 64-bit fields on 64-bit Linux),
    // and `clock_gettime` writes nothing else.
    let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut now) };
    (rc == 0).then(|| Duration::new(now.seconds as u64, now.nanoseconds as u32))
}

#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
fn thread_cpu_time() -> Option<Duration> {
    None
}

/// A started measurement on the chosen clock.
struct Stopwatch {
    wall: Instant,
    cpu: Duration,
}

impl Stopwatch {
    fn start() -> Stopwatch {
        Stopwatch {
            cpu: match clock() {
                Clock::ThreadCpu => thread_cpu_time().expect("checked in clock()"),
                Clock::Wall => Duration::ZERO,
            },
            wall: Instant::now(),
        }
    }

    fn elapsed(&self) -> Duration {
        match clock() {
            Clock::ThreadCpu => thread_cpu_time().expect("checked in clock()") - self.cpu,
            Clock::Wall => self.wall.elapsed(),
        }
    }
}

/// `Bencher::iter` and `iter_batched` on the chosen [`Clock`].
trait IterTimed {
    fn iter_timed<O>(&mut self, routine: impl FnMut() -> O);
    /// Runs `setup` untimed before each run of `routine`; drops the output untimed.
    fn iter_batched_timed<I, O>(&mut self, setup: impl FnMut() -> I, routine: impl FnMut(I) -> O);
}

impl IterTimed for Bencher<'_> {
    fn iter_timed<O>(&mut self, mut routine: impl FnMut() -> O) {
        self.iter_custom(|iters| {
            let stopwatch = Stopwatch::start();
            for _ in 0..iters {
                black_box(routine());
            }
            stopwatch.elapsed()
        })
    }

    fn iter_batched_timed<I, O>(
        &mut self,
        mut setup: impl FnMut() -> I,
        mut routine: impl FnMut(I) -> O,
    ) {
        self.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let input = setup();
                let stopwatch = Stopwatch::start();
                let output = black_box(routine(black_box(input)));
                total += stopwatch.elapsed();
                drop(output);
            }
            total
        })
    }
}

fn signing_key(i: usize) -> SigningKey {
    SigningKey::from_bytes(&[i as u8 + 1; 32])
}

fn membership() -> Membership {
    let members = CODES.iter().enumerate().map(|(i, code)| Member {
        code: BureauCode::new(*code).expect("valid code"),
        name: format!("bureau {i}"),
        key: signing_key(i).verifying_key(),
    });
    Membership::new("bench-net", members, quorum_for(CODES.len())).expect("valid membership")
}

fn person(n: u32) -> PersonTag {
    let mut tag = [0u8; 32];
    tag[..4].copy_from_slice(&n.to_be_bytes());
    tag[31] = 0x5a;
    PersonTag(tag)
}

/// SplitMix64: deterministic, so every run replays the same history.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`; `n > 0`.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// One bureau's log as its author sees it.
struct Log {
    code: BureauCode,
    key: SigningKey,
    seq: u64,
    prev: EntryHash,
}

/// An open permit, filed under its origin.
struct OpenPermit {
    permit: EntryRef,
    person: PersonTag,
    destination: usize,
}

/// Generates an honest history in causal order, keeping just enough state to make every entry
/// valid: who is registered where (and free to move), the households with their heads, open
/// permits per origin and deregistrations per destination.
struct Generator {
    network: NetworkId,
    /// Who arbitrates each person's claim.
    membership: Membership,
    logs: Vec<Log>,
    rng: Rng,
    time_ms: u64,
    next_person: u32,
    next_household: Vec<u64>,
    /// Registered persons without an open permit, per bureau.
    available: Vec<Vec<PersonTag>>,
    /// Where each registered person lives.
    home: HashMap<PersonTag, (usize, HouseholdId)>,
    /// Members of each household, head first.
    households: HashMap<(usize, HouseholdId), Vec<PersonTag>>,
    open_permits: Vec<Vec<OpenPermit>>,
    /// Deregistrations awaiting registration, per destination.
    in_transit: Vec<Vec<(EntryRef, PersonTag)>>,
    history: Vec<SignedEntry>,
}

impl Generator {
    fn new(membership: &Membership, seed: u64) -> Generator {
        let n = CODES.len();
        Generator {
            network: membership.network(),
            membership: membership.clone(),
            logs: (0..n)
                .map(|i| Log {
                    code: BureauCode::new(CODES[i]).expect("valid code"),
                    key: signing_key(i),
                    seq: 0,
                    prev: EntryHash::ZERO,
                })
                .collect(),
            rng: Rng(seed),
            time_ms: START_MS,
            next_person: 1,
            next_household: vec![1; n],
            available: vec![Vec::new(); n],
            home: HashMap::new(),
            households: HashMap::new(),
            open_permits: (0..n).map(|_| Vec::new()).collect(),
            in_transit: vec![Vec::new(); n],
            history: Vec::new(),
        }
    }

    /// Signs `body` as the next entry of bureau `b`'s log.
    fn act(&mut self, b: usize, body: Body) -> EntryRef {
        self.time_ms += STEP_MS;
        let log = &mut self.logs[b];
        let entry = Entry {
            network: self.network,
            epoch: 0,
            author: log.code,
            seq: Seq(log.seq),
            prev: log.prev,
            time_ms: self.time_ms,
            body,
        }
        .sign(&log.key);
        log.seq += 1;
        log.prev = entry.hash();
        let reference = entry.reference();
        self.history.push(entry);
        reference
    }

    fn new_household(&mut self, b: usize) -> HouseholdId {
        let id = HouseholdId(self.next_household[b]);
        self.next_household[b] += 1;
        id
    }

    fn new_person(&mut self) -> PersonTag {
        let p = person(self.next_person);
        self.next_person += 1;
        p
    }

    /// Takes a random free person of bureau `b` out of the free list.
    fn take_available(&mut self, b: usize) -> Option<PersonTag> {
        let free = &mut self.available[b];
        if free.is_empty() {
            return None;
        }
        let i = self.rng.below(free.len());
        Some(free.swap_remove(i))
    }

    /// Removes `p` from its household at `b`; returns the successor a leaving head must name.
    fn leave(&mut self, b: usize, p: PersonTag) -> Option<PersonTag> {
        let (at, household) = self.home.remove(&p).expect("registered");
        assert_eq!(at, b, "leaves where registered");
        let members = self.households.get_mut(&(b, household)).expect("household");
        let i = members.iter().position(|m| *m == p).expect("member");
        members.remove(i);
        let successor = if i == 0 {
            members.first().copied()
        } else {
            None
        };
        if members.is_empty() {
            self.households.remove(&(b, household));
        }
        successor
    }

    /// The person's arbiter grants bureau `b` a claim on a new person `p`.
    fn claim(&mut self, b: usize, p: PersonTag) -> EntryRef {
        let arbiter = self.membership.arbiter(&p);
        let a = self
            .logs
            .iter()
            .position(|l| l.code == arbiter)
            .expect("the arbiter is a member");
        let claimant = self.logs[b].code;
        self.act(
            a,
            Body::Claim {
                person: p,
                claimant,
                after: None,
            },
        )
    }

    fn enrol(&mut self, b: usize) {
        let p = self.new_person();
        let household = self.new_household(b);
        let claim = self.claim(b, p);
        self.act(
            b,
            Body::Enrol {
                person: p,
                placement: Placement {
                    household,
                    relation: Relation::Head,
                },
                claim,
            },
        );
        self.home.insert(p, (b, household));
        self.households.insert((b, household), vec![p]);
        self.available[b].push(p);
    }

    fn birth(&mut self, b: usize) -> bool {
        let free = &self.available[b];
        if free.is_empty() {
            return false;
        }
        let parent = free[self.rng.below(free.len())];
        let household = self.home[&parent].1;
        let child = self.new_person();
        let claim = self.claim(b, child);
        let today = hukou_protocol::calendar::china_date(self.time_ms + STEP_MS);
        let born_on =
            today.year() as u32 * 10_000 + u32::from(today.month()) * 100 + u32::from(today.day());
        self.act(
            b,
            Body::Birth {
                person: child,
                placement: Placement {
                    household,
                    relation: Relation::Child,
                },
                claim,
                born_on,
            },
        );
        self.home.insert(child, (b, household));
        self.households
            .get_mut(&(b, household))
            .expect("household")
            .push(child);
        self.available[b].push(child);
        true
    }

    /// Destination `b` admits someone registered at another bureau.
    fn permit(&mut self, b: usize) -> bool {
        let n = CODES.len();
        let origin = (b + 1 + self.rng.below(n - 1)) % n;
        let Some(p) = self.take_available(origin) else {
            return false;
        };
        let category = Category::NAMED[self.rng.below(11)];
        let mut materials = [0u8; 32];
        materials[..8].copy_from_slice(&self.rng.next().to_le_bytes());
        let permit = self.act(
            b,
            Body::Permit {
                person: p,
                origin: self.logs[origin].code,
                category,
                valid_until_ms: self.time_ms + 30 * DAY_MS,
                materials: Digest(materials),
                corrects: None,
            },
        );
        self.open_permits[origin].push(OpenPermit {
            permit,
            person: p,
            destination: b,
        });
        true
    }

    fn take_open_permit(&mut self, origin: usize) -> Option<OpenPermit> {
        let open = &mut self.open_permits[origin];
        if open.is_empty() {
            return None;
        }
        let i = self.rng.below(open.len());
        Some(open.swap_remove(i))
    }

    /// Origin `b` deregisters against one of its open permits.
    fn deregistration(&mut self, b: usize) -> bool {
        let Some(open) = self.take_open_permit(b) else {
            return false;
        };
        let new_head = self.leave(b, open.person);
        let deregistration = self.act(
            b,
            Body::Deregistration {
                permit: open.permit,
                person: open.person,
                new_head,
            },
        );
        self.in_transit[open.destination].push((deregistration, open.person));
        true
    }

    /// Destination `b` registers someone it deregistered elsewhere, as head of a new household.
    fn registration(&mut self, b: usize) -> bool {
        let waiting = &mut self.in_transit[b];
        if waiting.is_empty() {
            return false;
        }
        let (deregistration, p) = waiting.swap_remove(self.rng.below(waiting.len()));
        let household = self.new_household(b);
        self.act(
            b,
            Body::Registration {
                deregistration,
                person: p,
                placement: Placement {
                    household,
                    relation: Relation::Head,
                },
            },
        );
        self.home.insert(p, (b, household));
        self.households.insert((b, household), vec![p]);
        self.available[b].push(p);
        true
    }

    fn refusal(&mut self, b: usize) -> bool {
        let Some(open) = self.take_open_permit(b) else {
            return false;
        };
        let reason = RefusalReason::NAMED[self.rng.below(RefusalReason::NAMED.len())];
        self.act(
            b,
            Body::Refusal {
                permit: open.permit,
                reason,
            },
        );
        self.available[b].push(open.person);
        true
    }

    /// Destination `b` withdraws one of its permits still open at a random origin.
    fn revocation(&mut self, b: usize) -> bool {
        let n = CODES.len();
        let origin = (b + 1 + self.rng.below(n - 1)) % n;
        let Some(i) = self.open_permits[origin]
            .iter()
            .position(|o| o.destination == b)
        else {
            return false;
        };
        let open = self.open_permits[origin].swap_remove(i);
        self.act(
            b,
            Body::Revocation {
                permit: open.permit,
            },
        );
        self.available[origin].push(open.person);
        true
    }

    fn cancellation(&mut self, b: usize) -> bool {
        let Some(p) = self.take_available(b) else {
            return false;
        };
        let new_head = self.leave(b, p);
        let reason = CancellationReason::NAMED[self.rng.below(3)];
        self.act(
            b,
            Body::Cancellation {
                person: p,
                reason,
                new_head,
            },
        );
        true
    }

    /// One step: a random bureau does a random act, or enrols someone when the act has no
    /// target yet. The mix (per 100): 25 enrol, 10 birth, 22 permit, 18 deregistration,
    /// 17 registration, 3 refusal, 2 revocation, 3 cancellation.
    fn step(&mut self) {
        let b = self.rng.below(CODES.len());
        let done = match self.rng.below(100) {
            0..25 => false,
            25..35 => self.birth(b),
            35..57 => self.permit(b),
            57..75 => self.deregistration(b),
            75..92 => self.registration(b),
            92..95 => self.refusal(b),
            95..97 => self.revocation(b),
            _ => self.cancellation(b),
        };
        if !done {
            self.enrol(b);
        }
    }
}

/// A history of `n` signed entries, checked once against the rulebook.
fn history(membership: &Membership, n: usize) -> Vec<SignedEntry> {
    let mut generator = Generator::new(membership, 0x5eed);
    while generator.history.len() < n {
        generator.step();
    }
    let history = generator.history;
    let mut ledger = Ledger::new(membership.clone());
    for entry in &history {
        if let Err(violation) = ledger.apply(entry, SignatureCheck::AlreadyVerified) {
            panic!("generated history is invalid: {violation}");
        }
    }
    let mut kinds: HashMap<&str, usize> = HashMap::new();
    for entry in &history {
        *kinds.entry(entry.entry().body.kind().name()).or_default() += 1;
    }
    let mut kinds: Vec<_> = kinds.into_iter().collect();
    kinds.sort();
    eprintln!("history: {} entries, {kinds:?}", history.len());
    history
}

/// Every `len / count`-th entry: a sample with the history's mix of bodies.
fn spread(history: &[SignedEntry], count: usize) -> Vec<SignedEntry> {
    let step = (history.len() / count).max(1);
    history.iter().step_by(step).take(count).cloned().collect()
}

struct Inputs {
    membership: Membership,
    history: Vec<SignedEntry>,
}

fn inputs() -> Inputs {
    let membership = membership();
    let history = history(&membership, HISTORY_ENTRIES);
    Inputs {
        membership,
        history,
    }
}

fn bench_signatures(c: &mut Criterion, inputs: &Inputs) {
    let key = signing_key(0);
    let verifying_key = key.verifying_key();
    let signed = inputs
        .history
        .iter()
        .find(|e| {
            e.entry().author.get() == CODES[0] && matches!(e.entry().body, Body::Permit { .. })
        })
        .expect("a permit by bureau 0")
        .clone();
    let entry = signed.entry().clone();
    assert!(signed.verify(&verifying_key));

    let mut group = c.benchmark_group("entry");
    group.throughput(Throughput::Elements(1));
    group.bench_function("sign", |b| {
        b.iter_timed(|| black_box(entry.clone()).sign(&key))
    });
    group.bench_function("verify_strict", |b| {
        b.iter_timed(|| black_box(&signed).verify(&verifying_key))
    });
    group.finish();

    let mut group = c.benchmark_group("batch_verify");
    group.sampling_mode(SamplingMode::Flat);
    let epochs = hukou_protocol::config::Epochs::of_membership(inputs.membership.clone());
    for n in BATCH_SIZES {
        // Consecutive entries: all four authors, as a pulled batch would hold.
        let entries = &inputs.history[..n];
        assert!(verify_entries(&epochs, entries).iter().all(|ok| *ok));
        let messages: Vec<_> = entries.iter().map(SignedEntry::signing_message).collect();
        let messages: Vec<&[u8]> = messages.iter().map(|m| m.as_slice()).collect();
        let signatures: Vec<DalekSignature> = entries
            .iter()
            .map(|e| DalekSignature::from_bytes(&e.signature().0))
            .collect();
        let keys: Vec<VerifyingKey> = entries
            .iter()
            .map(|e| *inputs.membership.key(e.entry().author).expect("member"))
            .collect();
        assert!(ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok());

        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(format!("verify_entries/{n}"), |b| {
            b.iter_timed(|| verify_entries(&epochs, black_box(entries)))
        });
        group.bench_function(format!("dalek_verify_batch/{n}"), |b| {
            b.iter_timed(|| ed25519_dalek::verify_batch(black_box(&messages), &signatures, &keys))
        });
        if n > CHUNK_ENTRIES {
            // The raw crate cut into the chunks `verify_entries` uses: separates the cost of
            // chunking from the cost of the wrapper.
            group.bench_function(
                format!("dalek_verify_batch_chunked{CHUNK_ENTRIES}/{n}"),
                |b| {
                    b.iter_timed(|| {
                        messages
                            .chunks(CHUNK_ENTRIES)
                            .zip(signatures.chunks(CHUNK_ENTRIES))
                            .zip(keys.chunks(CHUNK_ENTRIES))
                            .all(|((m, s), k)| {
                                ed25519_dalek::verify_batch(black_box(m), s, k).is_ok()
                            })
                    })
                },
            );
        }
    }
    group.finish();
}

fn bench_codec(c: &mut Criterion, inputs: &Inputs) {
    let signed = spread(&inputs.history, CODEC_ENTRIES);
    let entries: Vec<Entry> = signed.iter().map(|e| e.entry().clone()).collect();
    let contents: Vec<Vec<u8>> = entries.iter().map(Entry::encode).collect();
    let wire: Vec<Vec<u8>> = signed.iter().map(SignedEntry::encode).collect();
    for (e, content) in signed.iter().zip(&contents) {
        assert_eq!(Entry::hash_content(content), e.hash());
    }
    let content_bytes: usize = contents.iter().map(Vec::len).sum();
    eprintln!(
        "codec sample: {} entries, mean content {} bytes",
        entries.len(),
        content_bytes / entries.len()
    );

    let mut group = c.benchmark_group("codec");
    group.throughput(Throughput::Elements(entries.len() as u64));
    group.bench_function("encode+hash", |b| {
        b.iter_timed(|| {
            for entry in black_box(&entries) {
                let content = entry.encode();
                black_box(Entry::hash_content(&content));
            }
        })
    });
    group.bench_function("encode", |b| {
        b.iter_timed(|| {
            for entry in black_box(&entries) {
                black_box(entry.encode());
            }
        })
    });
    group.bench_function("hash_content", |b| {
        b.iter_timed(|| {
            for content in black_box(&contents) {
                black_box(Entry::hash_content(content));
            }
        })
    });
    group.bench_function("decode", |b| {
        b.iter_timed(|| {
            for bytes in black_box(&wire) {
                // By reference: copying the ~300-byte entry out is not part of decoding.
                black_box(&SignedEntry::decode(bytes).expect("valid"));
            }
        })
    });
    group.finish();
}

fn bench_apply(c: &mut Criterion, inputs: &Inputs) {
    let mut group = c.benchmark_group("ledger");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(6));
    group.throughput(Throughput::Elements(inputs.history.len() as u64));
    group.bench_function(
        format!("apply_already_verified/{}", inputs.history.len()),
        |b| {
            b.iter_batched_timed(
                || Ledger::new(inputs.membership.clone()),
                |mut ledger| {
                    for entry in &inputs.history {
                        // Not `black_box`ed: copying the ~170-byte result out cost 10% of the
                        // loop, which no real caller pays. Returning the ledger keeps the work.
                        let applied = ledger.apply(entry, SignatureCheck::AlreadyVerified);
                        assert!(applied.is_ok(), "checked when generated");
                    }
                    // Returned, so dropping the ledger is not timed.
                    ledger
                },
            )
        },
    );
    group.finish();
}

fn bench_merkle(c: &mut Criterion) {
    let leaves: Vec<Hash32> = (0..TREE_LEAVES)
        .map(|i| merkle::leaf_hash(&i.to_le_bytes()))
        .collect();
    let mut tree = Tree::new();
    for leaf in &leaves {
        tree.push(*leaf);
    }
    let root = tree.root();
    // Old sizes for consistency proofs, with their roots, spread over the tree.
    let old: Vec<(u64, Hash32)> = (1..=64u64)
        .map(|k| {
            let size = k * 15_601 + k;
            (size, tree.root_at(size).expect("held"))
        })
        .collect();

    let mut group = c.benchmark_group("merkle");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(TREE_LEAVES));
    group.bench_function("append/1000000", |b| {
        b.iter_batched_timed(Tree::new, |mut tree| {
            for leaf in &leaves {
                tree.push(*leaf);
            }
            tree
        })
    });
    group.finish();

    let mut group = c.benchmark_group("merkle");
    group.throughput(Throughput::Elements(1));
    group.bench_function("root/1000000", |b| b.iter_timed(|| black_box(&tree).root()));
    let mut index = 0u64;
    group.bench_function("inclusion_proof/1000000", |b| {
        b.iter_timed(|| {
            index = (index + 7_919) % TREE_LEAVES;
            black_box(&tree).inclusion_proof(index, TREE_LEAVES)
        })
    });
    let proofs: Vec<(u64, Vec<Hash32>)> = (0..64u64)
        .map(|k| {
            let index = k * 15_601 + 3;
            (
                index,
                tree.inclusion_proof(index, TREE_LEAVES).expect("held"),
            )
        })
        .collect();
    let mut k = 0;
    group.bench_function("verify_inclusion/1000000", |b| {
        b.iter_timed(|| {
            k = (k + 1) % proofs.len();
            let (index, proof) = &proofs[k];
            let leaf = &leaves[*index as usize];
            verify_inclusion(leaf, *index, TREE_LEAVES, black_box(proof), &root)
                .expect("valid proof")
        })
    });
    let mut k = 0;
    group.bench_function("consistency_proof/1000000", |b| {
        b.iter_timed(|| {
            k = (k + 1) % old.len();
            black_box(&tree).consistency_proof(old[k].0, TREE_LEAVES)
        })
    });
    let consistency: Vec<Vec<Hash32>> = old
        .iter()
        .map(|(size, _)| tree.consistency_proof(*size, TREE_LEAVES).expect("held"))
        .collect();
    let mut k = 0;
    group.bench_function("verify_consistency/1000000", |b| {
        b.iter_timed(|| {
            k = (k + 1) % old.len();
            let (size, old_root) = &old[k];
            verify_consistency(
                *size,
                TREE_LEAVES,
                black_box(&consistency[k]),
                old_root,
                &root,
            )
            .expect("valid proof")
        })
    });
    group.finish();

    // The floor under everything above: SHA-256 over one node's 65 bytes.
    let nodes: Vec<[u8; 65]> = leaves[..1024]
        .iter()
        .zip(&leaves[1024..2048])
        .map(|(l, r)| {
            let mut node = [0u8; 65];
            node[0] = merkle::NODE_PREFIX;
            node[1..33].copy_from_slice(l);
            node[33..].copy_from_slice(r);
            node
        })
        .collect();
    let mut group = c.benchmark_group("sha256");
    group.throughput(Throughput::Elements(nodes.len() as u64));
    group.bench_function("raw_65_bytes", |b| {
        b.iter_timed(|| {
            for node in black_box(&nodes) {
                black_box::<[u8; 32]>(Sha256::digest(node).into());
            }
        })
    });
    group.bench_function("merkle_node_hash", |b| {
        b.iter_timed(|| {
            for (l, r) in black_box(&leaves[..1024]).iter().zip(&leaves[1024..2048]) {
                black_box(merkle::node_hash(l, r));
            }
        })
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    let inputs = inputs();
    bench_signatures(c, &inputs);
    bench_codec(c, &inputs);
    bench_apply(c, &inputs);
    drop(inputs);
    bench_merkle(c);
}

criterion_group! {
    name = protocol;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    targets = benches
}
criterion_main!(protocol);
