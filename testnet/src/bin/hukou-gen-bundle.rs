//! `hukou-gen-bundle --out DIR --entries N [--bureaus 4]`: writes a valid ledger bundle
//! (docs/FORMAT.md) of N entries for `hukou audit`'s tests and benchmark, quickly.
//!
//! The history is an honest one in causal and time order: enrolments, births, permits,
//! deregistrations, registrations (some joining a relative's household, as 投靠 does), refusals,
//! revocations, cancellations and head changes across the bureaus, every entry valid under the
//! rulebook, answered well within the 1-working-day deadlines. It is deterministic: the same
//! `--seed` gives the same bytes. The genesis is generated and signed by an administrator key
//! derived from the seed, as are the bureaus' keys ([`bureau_key`], [`admin_key`]), so a test
//! can sign more entries (a forged fork, say) for the same network.
//!
//! Speed: the bodies, hashes and chain are built on one thread (about a microsecond an entry);
//! signing, the cost, runs in blocks on every core (`std::thread::scope`). Memory holds one
//! block and the world's state (who lives where), not the history.
//!
//! `node/tests/audit_cli.rs` compiles this file as a module (`#[path]`) to build its bundles, so
//! it uses only crates the node also depends on.

use std::collections::{HashMap, VecDeque};
use std::fs::{self, File};
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, bail};
use clap::Parser;
use ed25519_dalek::SigningKey;
use hukou_keys::{Genesis, GenesisMember};
use hukou_protocol::audit::{
    self, CERTIFICATES_DIR, FRAUD_PROOFS_DIR, GENESIS_FILE, LOGS_DIR, MANIFEST_FILE, Manifest,
    ManifestLog, MerkleFrontier,
};
use hukou_protocol::checkpoint::{Certificate, Checkpoint, Cosignature};
use hukou_protocol::entry::entry_signing_message;
use hukou_protocol::{
    Body, BureauCode, CancellationReason, Category, Digest, Entry, EntryHash, EntryRef,
    HouseholdId, NetworkId, PersonTag, Placement, RefusalReason, Relation, Seq, Signature,
};
use sha2::{Digest as _, Sha256};

/// Entries signed per block: large enough to keep every core busy, small enough to bound memory.
const BLOCK_ENTRIES: usize = 32 * 1024;
/// 2026-01-01T00:00:00Z, inside the years the built-in calendar covers.
pub const START_MS_DEFAULT: u64 = 1_767_225_600_000;
/// Network time between two consecutive entries.
pub const STEP_MS_DEFAULT: u64 = 10_000;
const DAY_MS: u64 = 86_400_000;
/// Permits are valid for 30 days.
const PERMIT_VALID_MS: u64 = 30 * DAY_MS;
/// Most bureaus: the named four, then generated Beijing district-like codes.
pub const BUREAUS_MAX: usize = 64;

/// The first bureaus, named after the places DOMAIN.md's sources describe.
const NAMED_BUREAUS: [(u32, &str); 4] = [
    (310104, "上海市公安局徐汇分局"),
    (330502, "湖州市公安局吴兴分局"),
    (340100, "合肥市公安局"),
    (320506, "苏州市公安局吴中分局"),
];

/// Command line of `hukou-gen-bundle`.
#[derive(Debug, Parser)]
#[command(
    name = "hukou-gen-bundle",
    about = "Write a valid hukou ledger bundle of N generated entries (for audit tests and benchmarks)"
)]
pub struct Args {
    /// The bundle directory to create (must not exist, or be empty).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Entries to generate, over all logs.
    #[arg(long, value_name = "N")]
    pub entries: u64,
    /// Member bureaus (2 to 64).
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub bureaus: usize,
    /// Seed of the history and of every key.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Network time between consecutive entries, in ms.
    #[arg(long, value_name = "MS", default_value_t = STEP_MS_DEFAULT)]
    pub step_ms: u64,
    /// Time of the first entry, ms since the Unix epoch.
    #[arg(long, value_name = "MS", default_value_t = START_MS_DEFAULT)]
    pub start_ms: u64,
    /// Write no certificates (by default each log gets one at its full size, cosigned by all).
    #[arg(long)]
    pub no_certificates: bool,
    /// Print nothing on stderr.
    #[arg(long)]
    pub quiet: bool,
}

/// What [`generate`] wrote.
#[derive(Debug, Clone)]
pub struct Generated {
    pub network: String,
    pub genesis_hash: [u8; 32],
    /// Bureaus by index: code and log length.
    pub logs: Vec<(BureauCode, u64)>,
    pub exported_at_ms: u64,
}

#[allow(dead_code)]
fn main() {
    let args = Args::parse();
    if let Err(e) = generate(&args) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

/// The network name of a seed's bundle.
pub fn network_name(seed: u64) -> String {
    format!("gen-bundle-{seed}")
}

/// A key derived from the seed: SHA-256 of a label, the seed and an index.
fn derived_key(label: &str, seed: u64, index: u64) -> SigningKey {
    let mut h = Sha256::new();
    h.update(b"hukou-gen-bundle/");
    h.update(label.as_bytes());
    h.update(seed.to_le_bytes());
    h.update(index.to_le_bytes());
    SigningKey::from_bytes(&h.finalize().into())
}

/// Bureau `index`'s signing key for `seed`.
pub fn bureau_key(seed: u64, index: usize) -> SigningKey {
    derived_key("bureau", seed, index as u64)
}

/// The administrator's key for `seed`.
pub fn admin_key(seed: u64) -> SigningKey {
    derived_key("admin", seed, 0)
}

/// The codes and names of the first `n` bureaus.
pub fn bureaus(n: usize) -> Vec<(BureauCode, String)> {
    (0..n)
        .map(|i| match NAMED_BUREAUS.get(i) {
            Some((code, name)) => (BureauCode::new(*code).expect("valid"), (*name).to_string()),
            None => {
                let code = 110101 + (i - NAMED_BUREAUS.len()) as u32;
                (
                    BureauCode::new(code).expect("valid"),
                    format!("公安分局 {code}"),
                )
            }
        })
        .collect()
}

/// The signed genesis of a seed's network with `n` bureaus.
pub fn genesis(seed: u64, n: usize) -> anyhow::Result<Genesis> {
    let admin = admin_key(seed);
    let mut genesis = Genesis::new(&network_name(seed), admin.verifying_key())?;
    for (i, (code, name)) in bureaus(n).into_iter().enumerate() {
        genesis.add_member(GenesisMember {
            code,
            name,
            public_key: bureau_key(seed, i).verifying_key(),
            addresses: vec![format!("/ip4/127.0.0.1/tcp/{}", 4101 + i)],
        })?;
    }
    genesis.sign(&admin)?;
    Ok(genesis)
}

/// Writes the bundle `args` describes.
pub fn generate(args: &Args) -> anyhow::Result<Generated> {
    if !(2..=BUREAUS_MAX).contains(&args.bureaus) {
        bail!(
            "--bureaus must be between 2 and {BUREAUS_MAX}, not {}",
            args.bureaus
        );
    }
    if args.step_ms == 0 {
        bail!("--step-ms must be at least 1");
    }
    prepare_dir(&args.out)?;
    let started = Instant::now();
    let genesis = genesis(args.seed, args.bureaus)?;
    let verified = genesis.verify()?;
    fs::write(args.out.join(GENESIS_FILE), genesis.to_toml_string())
        .with_context(|| format!("writing {}", args.out.join(GENESIS_FILE).display()))?;

    let mut world = World::new(args, verified.membership().clone());
    let mut writers = Vec::with_capacity(args.bureaus);
    for (code, _) in &world.codes {
        let path = args.out.join(audit::log_file(*code));
        let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        writers.push(BufWriter::with_capacity(1 << 20, file));
    }
    let mut frontiers = vec![MerkleFrontier::new(); args.bureaus];
    let mut written = 0u64;
    let mut last_report = Instant::now();
    while written < args.entries {
        let want = (args.entries - written).min(BLOCK_ENTRIES as u64) as usize;
        while world.block.len() < want {
            world.step();
        }
        let block = std::mem::take(&mut world.block);
        let wires = sign_block(&block, &world.keys);
        for ((b, _, hash), wire) in block.iter().zip(wires) {
            let mut frame = Vec::with_capacity(wire.len() + 4);
            audit::push_frame(&mut frame, &wire);
            writers[*b].write_all(&frame)?;
            frontiers[*b].push(hash.0);
        }
        written += block.len() as u64;
        if !args.quiet && last_report.elapsed().as_secs_f64() >= 1.0 {
            last_report = Instant::now();
            eprint!(
                "\rgenerated {written}/{} entries ({:.0}/s)",
                args.entries,
                written as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    for w in &mut writers {
        w.flush()?;
    }

    let last_time_ms = world.time_ms;
    let mut logs = Vec::with_capacity(args.bureaus);
    for (b, (code, _)) in world.codes.iter().enumerate() {
        let size = frontiers[b].len();
        logs.push(ManifestLog {
            bureau: *code,
            length: size,
            root: frontiers[b].root(),
        });
        if !args.no_certificates && size > 0 {
            let checkpoint = Checkpoint {
                network: world.network,
                epoch: 0,
                log: *code,
                size,
                root: frontiers[b].root(),
                time_ms: last_time_ms,
            };
            let cosignatures = world
                .codes
                .iter()
                .zip(&world.keys)
                .map(|((witness, _), key)| Cosignature::sign(&checkpoint, *witness, key))
                .collect();
            let certificate = Certificate::new(checkpoint, cosignatures);
            let path = args.out.join(audit::certificate_file(*code, size));
            fs::write(&path, certificate.encode())
                .with_context(|| format!("writing {}", path.display()))?;
        }
    }
    // An hour after the last entry: recent permits are not yet overdue.
    let exported_at_ms = last_time_ms + 3_600_000;
    let manifest = Manifest {
        kind: audit::BUNDLE_KIND.to_string(),
        network: genesis.network().to_string(),
        network_id: world.network,
        genesis_hash: verified.hash().0,
        exported_at_ms,
        exporter: format!("hukou-gen-bundle {}", env!("CARGO_PKG_VERSION")),
        source: format!("generated: seed {}, {} entries", args.seed, args.entries),
        logs: logs.clone(),
    };
    let text = serde_json::to_string_pretty(&manifest)? + "\n";
    fs::write(args.out.join(MANIFEST_FILE), text)?;
    if !args.quiet {
        let kinds: Vec<String> = world
            .kinds
            .iter()
            .map(|(kind, n)| format!("{n} {kind}"))
            .collect();
        eprintln!(
            "\rwrote {} entries in {:.1} s to {}: {}",
            args.entries,
            started.elapsed().as_secs_f64(),
            args.out.display(),
            kinds.join(", ")
        );
    }
    Ok(Generated {
        network: genesis.network().to_string(),
        genesis_hash: verified.hash().0,
        logs: logs.iter().map(|l| (l.bureau, l.length)).collect(),
        exported_at_ms,
    })
}

/// Creates the bundle's directories; refuses a non-empty `out`.
fn prepare_dir(out: &Path) -> anyhow::Result<()> {
    if out.exists() {
        let mut entries =
            fs::read_dir(out).with_context(|| format!("reading {}", out.display()))?;
        if entries.next().is_some() {
            bail!("{} exists and is not empty", out.display());
        }
    }
    for dir in [LOGS_DIR, CERTIFICATES_DIR, FRAUD_PROOFS_DIR] {
        let path = out.join(dir);
        fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
    }
    Ok(())
}

/// Signs a block on every core; returns each entry's wire bytes (content ‖ signature).
fn sign_block(block: &[(usize, Entry, EntryHash)], keys: &[SigningKey]) -> Vec<Vec<u8>> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let part = block.len().div_ceil(cores).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = block
            .chunks(part)
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|(b, entry, hash)| {
                            let signature =
                                Signature::sign(&keys[*b], &entry_signing_message(hash));
                            let mut wire = entry.encode();
                            wire.extend_from_slice(&signature.0);
                            wire
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("signing thread"))
            .collect()
    })
}

/// SplitMix64: deterministic, so a seed always gives the same history.
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

/// A permit awaiting its origin, filed under the origin.
struct OpenPermit {
    permit: EntryRef,
    person: PersonTag,
    destination: usize,
    category: Category,
}

/// A removal awaiting its destination, filed under the destination.
struct Transit {
    deregistration: EntryRef,
    person: PersonTag,
    category: Category,
}

/// The world as the bureaus see it: just enough state to make every entry valid.
struct World {
    network: NetworkId,
    seed: u64,
    codes: Vec<(BureauCode, String)>,
    keys: Vec<SigningKey>,
    seq: Vec<u64>,
    prev: Vec<EntryHash>,
    rng: Rng,
    time_ms: u64,
    step_ms: u64,
    next_person: u64,
    next_household: Vec<u64>,
    /// Registered persons free to move (no permit pending), per bureau.
    available: Vec<Vec<PersonTag>>,
    /// Where each registered person lives.
    home: HashMap<PersonTag, (usize, HouseholdId)>,
    /// Members of each household, head first.
    households: HashMap<(usize, HouseholdId), Vec<PersonTag>>,
    /// Oldest first: origins answer in order, well within a working day.
    open_permits: Vec<VecDeque<OpenPermit>>,
    in_transit: Vec<VecDeque<Transit>>,
    /// Who arbitrates each person's claim.
    membership: hukou_protocol::Membership,
    /// Entries made but not yet signed: (bureau index, entry, hash).
    block: Vec<(usize, Entry, EntryHash)>,
    kinds: std::collections::BTreeMap<&'static str, u64>,
}

impl World {
    fn new(args: &Args, membership: hukou_protocol::Membership) -> World {
        let n = args.bureaus;
        World {
            network: membership.network(),
            membership,
            seed: args.seed,
            codes: bureaus(n),
            keys: (0..n).map(|i| bureau_key(args.seed, i)).collect(),
            seq: vec![0; n],
            prev: vec![EntryHash::ZERO; n],
            rng: Rng(args.seed ^ 0x5eed_b0d1e5),
            time_ms: args.start_ms,
            step_ms: args.step_ms,
            next_person: 1,
            next_household: vec![1; n],
            available: vec![Vec::new(); n],
            home: HashMap::new(),
            households: HashMap::new(),
            open_permits: (0..n).map(|_| VecDeque::new()).collect(),
            in_transit: (0..n).map(|_| VecDeque::new()).collect(),
            block: Vec::with_capacity(BLOCK_ENTRIES),
            kinds: Default::default(),
        }
    }

    /// Makes `body` the next entry of bureau `b`'s log (signed later, with its block).
    fn act(&mut self, b: usize, body: Body) -> EntryRef {
        self.time_ms += self.step_ms;
        *self.kinds.entry(body.kind().name()).or_default() += 1;
        let entry = Entry {
            network: self.network,
            epoch: 0,
            author: self.codes[b].0,
            seq: Seq(self.seq[b]),
            prev: self.prev[b],
            time_ms: self.time_ms,
            body,
        };
        let hash = entry.hash();
        let reference = EntryRef {
            author: entry.author,
            seq: entry.seq,
            hash,
        };
        self.seq[b] += 1;
        self.prev[b] = hash;
        self.block.push((b, entry, hash));
        reference
    }

    fn new_household(&mut self, b: usize) -> HouseholdId {
        let id = HouseholdId(self.next_household[b]);
        self.next_household[b] += 1;
        id
    }

    /// A person tag: what HMAC(person key, ID) would give, here a hash of the seed and a number.
    fn new_person(&mut self) -> PersonTag {
        let mut h = Sha256::new();
        h.update(b"hukou-gen-bundle/person");
        h.update(self.seed.to_le_bytes());
        h.update(self.next_person.to_le_bytes());
        self.next_person += 1;
        PersonTag(h.finalize().into())
    }

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

    /// Places `p` at `b` as head of a new household.
    fn join_new_household(&mut self, b: usize, p: PersonTag) -> Placement {
        let household = self.new_household(b);
        self.home.insert(p, (b, household));
        self.households.insert((b, household), vec![p]);
        Placement {
            household,
            relation: Relation::Head,
        }
    }

    /// The person's arbiter grants bureau `b` a claim on the new person `p`.
    fn claim(&mut self, b: usize, p: PersonTag) -> EntryRef {
        let arbiter = self.membership.arbiter(&p);
        let a = self
            .codes
            .iter()
            .position(|(code, _)| *code == arbiter)
            .expect("the arbiter is a member");
        let claimant = self.codes[b].0;
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
        let placement = self.join_new_household(b, p);
        let claim = self.claim(b, p);
        self.act(
            b,
            Body::Enrol {
                person: p,
                placement,
                claim,
            },
        );
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
        let today = hukou_protocol::calendar::china_date(self.time_ms + self.step_ms);
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
        let n = self.codes.len();
        let origin = (b + 1 + self.rng.below(n - 1)) % n;
        let Some(p) = self.take_available(origin) else {
            return false;
        };
        // Mostly the reliance categories, as at the Shanghai–Zhejiang launch.
        let category = match self.rng.below(10) {
            0..4 => Category::Spouse,
            4..6 => Category::Child,
            6 => Category::Parent,
            _ => Category::NAMED[3 + self.rng.below(8)],
        };
        let mut materials = [0u8; 32];
        materials[..8].copy_from_slice(&self.rng.next().to_le_bytes());
        let valid_until_ms = self.time_ms + self.step_ms + PERMIT_VALID_MS;
        let permit = self.act(
            b,
            Body::Permit {
                person: p,
                origin: self.codes[origin].0,
                category,
                valid_until_ms,
                materials: Digest(materials),
                corrects: None,
            },
        );
        self.open_permits[origin].push_back(OpenPermit {
            permit,
            person: p,
            destination: b,
            category,
        });
        true
    }

    /// Origin `b` deregisters against its oldest open permit.
    fn deregistration(&mut self, b: usize) -> bool {
        let Some(open) = self.open_permits[b].pop_front() else {
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
        self.in_transit[open.destination].push_back(Transit {
            deregistration,
            person: open.person,
            category: open.category,
        });
        true
    }

    /// Destination `b` registers its oldest arrival: joining a relative's household for the
    /// reliance categories when it has residents, else heading a new one.
    fn registration(&mut self, b: usize) -> bool {
        let Some(t) = self.in_transit[b].pop_front() else {
            return false;
        };
        let relation = match t.category {
            Category::Spouse => Some(Relation::Spouse),
            Category::Child => Some(Relation::Child),
            Category::Parent => Some(Relation::Parent),
            _ => None,
        };
        let relative = match relation {
            Some(_) if !self.available[b].is_empty() => {
                let free = &self.available[b];
                Some(free[self.rng.below(free.len())])
            }
            _ => None,
        };
        let placement = match (relation, relative) {
            (Some(relation), Some(relative)) => {
                let household = self.home[&relative].1;
                self.home.insert(t.person, (b, household));
                self.households
                    .get_mut(&(b, household))
                    .expect("household")
                    .push(t.person);
                Placement {
                    household,
                    relation,
                }
            }
            _ => self.join_new_household(b, t.person),
        };
        self.act(
            b,
            Body::Registration {
                deregistration: t.deregistration,
                person: t.person,
                placement,
            },
        );
        self.available[b].push(t.person);
        true
    }

    fn refusal(&mut self, b: usize) -> bool {
        let Some(open) = self.open_permits[b].pop_front() else {
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
        let n = self.codes.len();
        let origin = (b + 1 + self.rng.below(n - 1)) % n;
        let Some(i) = self.open_permits[origin]
            .iter()
            .position(|o| o.destination == b)
        else {
            return false;
        };
        let open = self.open_permits[origin].remove(i).expect("found");
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

    /// A free member of a household with others, not its head, becomes its head.
    fn head_change(&mut self, b: usize) -> bool {
        let free = &self.available[b];
        if free.is_empty() {
            return false;
        }
        let p = free[self.rng.below(free.len())];
        let household = self.home[&p].1;
        let members = self.households.get_mut(&(b, household)).expect("household");
        let Some(i) = members.iter().position(|m| *m == p).filter(|i| *i > 0) else {
            return false;
        };
        members.swap(0, i);
        self.act(
            b,
            Body::HeadChange {
                household,
                new_head: p,
            },
        );
        true
    }

    /// One act of a random bureau, or an enrolment when the act has no target. Answers outpace
    /// permits and registrations outpace removals, so queues stay short and deadlines are met.
    /// Per 100: 22 enrol, 10 birth, 20 permit, 18 deregistration, 20 registration, 3 refusal,
    /// 1 revocation, 3 cancellation, 1 head change, 2 more enrolments.
    fn step(&mut self) {
        let b = self.rng.below(self.codes.len());
        let done = match self.rng.below(100) {
            0..24 => false,
            24..34 => self.birth(b),
            34..54 => self.permit(b),
            54..72 => self.deregistration(b),
            72..92 => self.registration(b),
            92..95 => self.refusal(b),
            95 => self.revocation(b),
            96..99 => self.cancellation(b),
            _ => self.head_change(b),
        };
        if !done {
            self.enrol(b);
        }
    }
}
