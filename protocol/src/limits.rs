//! Every limit of the protocol, in one place, each with why.
//!
//! Names put the qualifier last (`entry_bytes_max`), as the rest of the code does. The `const`
//! assertions at the bottom state how the limits relate, so changing one alone fails the build.

/// Largest canonical encoding of one signed entry. The largest body today is well under 400
/// bytes; 4 KiB leaves room for new body kinds without letting one entry cost real memory.
pub const ENTRY_BYTES_MAX: usize = 4 * 1024;

/// Largest frame a peer or a client may send in one message (a batch of entries, a proof).
/// Decoders check a declared length against this before allocating anything.
pub const FRAME_BYTES_MAX: usize = 8 * 1024 * 1024;

/// Most entries in one pulled batch. Large enough that catch-up amortises round trips and batch
/// signature verification, small enough that a full batch fits in one frame.
pub const BATCH_ENTRIES_MAX: usize = 1024;

/// Most members a genesis may name. China has about 2,800 county-level bureaus.
pub const MEMBERS_MAX: usize = 4096;

/// Longest bureau name in the genesis, in bytes of UTF-8.
pub const BUREAU_NAME_BYTES_MAX: usize = 256;

/// Most administrators of a network. A handful of people in the Ministry and provincial
/// departments; each update carries up to this many signatures (96 bytes each).
pub const ADMINISTRATORS_MAX: usize = 64;

/// Most changes in one configuration update: a yearly adjustment of administrative divisions
/// (行政区划调整) touches tens of bureaus; one update for all of them is one epoch.
pub const CONFIG_CHANGES_MAX: usize = 1024;

/// Largest encoded signed configuration update: room for [`CONFIG_CHANGES_MAX`] added members at
/// every limit would be ~1.7 MiB; one calendar year is ~4 KiB. Checked before decoding.
pub const CONFIG_UPDATE_BYTES_MAX: usize = 2 * 1024 * 1024;

/// Most working days a deadline rule may give one step. The national settlement limit is 14
/// working days for the whole transfer (DOMAIN.md); a step's limit above 30 is a typing error.
pub const DEADLINE_WORKING_DAYS_MAX: u32 = 30;

/// Most addresses one member may list (as in the genesis).
pub const MEMBER_ADDRESSES_MAX: usize = 4;

/// Longest address, in bytes (as in the genesis): room for a long DNS name, a port and a
/// `/p2p/` peer id.
pub const MEMBER_ADDRESS_BYTES_MAX: usize = 320;

/// Longest network name, in bytes.
pub const NETWORK_NAME_BYTES_MAX: usize = 64;

/// Most years one working-day calendar text may declare (`years FIRST LAST`). Each year is one
/// State Council notice, published one at a time; the built-in text holds two. The bound keeps
/// the set of covered years small whatever a text declares.
pub const CALENDAR_YEARS_MAX: usize = 100;

/// Most entries the causal buffer holds while waiting for what they reference. Beyond this the
/// oldest waiting entries are dropped (they are pulled again later), so a peer cannot make a
/// node buffer without bound by sending entries that reference nothing that exists.
pub const PENDING_ENTRIES_MAX: usize = 1 << 20;

/// Most entries a replica fetches, and holds in memory, to move from a losing fork of a log to
/// the certified one (`adoption`): the certified entries from where it diverged up to the
/// certificate's size. At `ENTRY_BYTES_MAX` that is at most 64 MiB; a replica further behind
/// keeps its fork and says so (its node's store can be wiped and pulled back, README "limits").
/// Replicas learn certificates within a pull round, so a fork is normally caught a few entries
/// after it happened.
pub const ADOPTION_ENTRIES_MAX: usize = 16 * BATCH_ENTRIES_MAX;

/// Most bytes (encoded entries) the causal buffer holds. The entry count alone would allow
/// `PENDING_ENTRIES_MAX * ENTRY_BYTES_MAX`, 4 GiB; beyond this the oldest waiting entries are
/// dropped, as for the count. 64 MiB holds a catch-up's worth of out-of-order entries (one pull
/// step is at most 4 batches, 16 MiB) many times over.
pub const PENDING_BYTES_MAX: usize = 64 * 1024 * 1024;

/// How far ahead of what a node holds a waiting entry may be and still be held: its seq at most
/// this many beyond its log's length, and each position it references at most this many beyond
/// the referenced log's length. Anything further is dropped, not held (anti-entropy pulls it
/// again, in order, once the node gets there): gossip reaching a node that is a million entries
/// behind would otherwise fill the buffer with entries it cannot use for a long while. One pull
/// round asks a peer for at most 64 batches of a log (the node's `PULL_BATCHES_PER_ROUND_MAX`),
/// and a catch-up pulls every log at the same pace, so entries a catch-up pulls stay within it.
pub const PENDING_AHEAD_ENTRIES_MAX: u64 = 64 * BATCH_ENTRIES_MAX as u64;

/// Largest encoded checkpoint, certificate or fraud proof.
pub const CERTIFICATE_BYTES_MAX: usize = 64 + MEMBERS_MAX * 72 + 256;

/// Oldest a child may be, in days, when its birth is registered (出生登记): six years, the age
/// compulsory schooling starts. A person registered for the first time when older is enrolled
/// (`Enrol`, e.g. 补录 of a person never registered), not registered as a birth.
pub const BIRTH_REGISTRATION_AGE_DAYS_MAX: u32 = 6 * 366;

/// One day in milliseconds, the unit permit validity is counted in.
pub const DAY_MS: u64 = 86_400_000;

/// Shortest validity of a permit (准迁证): at least one day after its own entry's time. The
/// origin has a working day to answer, so a permit that lapses sooner cannot be acted on; the
/// API counts validity in whole days (`valid_days >= 1`). Judged by the rulebook
/// (`permit_validity_invalid`), so a replica refuses what a node's API would not write.
pub const PERMIT_VALIDITY_MS_MIN: u64 = DAY_MS;

/// Longest validity of a permit: 366 days after its own entry's time (a year, leap years
/// included). Real 准迁证 run for weeks (40 days is usual); a permit valid for decades would let
/// a destination hold a person's transfer open indefinitely, so the rulebook refuses it
/// (`permit_validity_invalid`) and every replica and auditor agrees.
pub const PERMIT_VALIDITY_MS_MAX: u64 = 366 * DAY_MS;

/// Largest household number (户号) a bureau may place anyone in. Numbers are assigned one after
/// another and never reused, and the most populous county-level district has under six million
/// residents, so nine decimal digits last any bureau for centuries. The bound keeps numbers
/// exact in JSON (far below 2^53) and keeps "next number = highest used + 1" from ever
/// overflowing a `u64`, which a clerk-supplied number near `u64::MAX` used to do (the counter
/// wrapped to 0 and valid enrolments were then refused). Judged by the rulebook
/// (`household_out_of_range`).
pub const HOUSEHOLD_ID_MAX: u64 = 999_999_999;

const _: () = assert!(BATCH_ENTRIES_MAX * ENTRY_BYTES_MAX <= FRAME_BYTES_MAX);
const _: () = assert!(CERTIFICATE_BYTES_MAX <= FRAME_BYTES_MAX);
const _: () = assert!(ADOPTION_ENTRIES_MAX >= BATCH_ENTRIES_MAX);
const _: () = assert!(2 * ENTRY_BYTES_MAX + 64 <= FRAME_BYTES_MAX);
const _: () =
    assert!(0 < PERMIT_VALIDITY_MS_MIN && PERMIT_VALIDITY_MS_MIN <= PERMIT_VALIDITY_MS_MAX);
// "Highest used + 1" never overflows, and household numbers stay exact in JSON (2^53).
const _: () = assert!(HOUSEHOLD_ID_MAX < u64::MAX && HOUSEHOLD_ID_MAX < 1 << 53);
// The buffer holds at least two whole frames of out-of-order entries...
const _: () = assert!(PENDING_BYTES_MAX >= 2 * FRAME_BYTES_MAX);
// ... and a whole batch that arrives in reverse order is held, not dropped as too far ahead.
const _: () = assert!(PENDING_AHEAD_ENTRIES_MAX >= BATCH_ENTRIES_MAX as u64);

const _: () = assert!(CONFIG_UPDATE_BYTES_MAX <= FRAME_BYTES_MAX);
