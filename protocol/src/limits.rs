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

/// Longest network name, in bytes.
pub const NETWORK_NAME_BYTES_MAX: usize = 64;

/// Most entries the causal buffer holds while waiting for what they reference. Beyond this the
/// oldest waiting entries are dropped (they are pulled again later), so a peer cannot make a
/// node buffer without bound by sending entries that reference nothing that exists.
pub const PENDING_ENTRIES_MAX: usize = 1 << 20;

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

const _: () = assert!(BATCH_ENTRIES_MAX * ENTRY_BYTES_MAX <= FRAME_BYTES_MAX);
const _: () = assert!(CERTIFICATE_BYTES_MAX <= FRAME_BYTES_MAX);
const _: () = assert!(2 * ENTRY_BYTES_MAX + 64 <= FRAME_BYTES_MAX);
// The buffer holds at least two whole frames of out-of-order entries...
const _: () = assert!(PENDING_BYTES_MAX >= 2 * FRAME_BYTES_MAX);
// ... and a whole batch that arrives in reverse order is held, not dropped as too far ahead.
const _: () = assert!(PENDING_AHEAD_ENTRIES_MAX >= BATCH_ENTRIES_MAX as u64);
