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

/// Most entries a replica fetches, and holds in memory, to move from a losing fork of a log to
/// the certified one (`adoption`): the certified entries from where it diverged up to the
/// certificate's size. At `ENTRY_BYTES_MAX` that is at most 64 MiB; a replica further behind
/// keeps its fork and says so (it is rebuilt by wiping its replica, see README "limits").
/// Replicas learn certificates within a pull round, so a fork is normally caught a few entries
/// after it happened.
pub const ADOPTION_ENTRIES_MAX: usize = 16 * BATCH_ENTRIES_MAX;

/// Largest encoded checkpoint, certificate or fraud proof.
pub const CERTIFICATE_BYTES_MAX: usize = 64 + MEMBERS_MAX * 72 + 256;

/// Oldest a child may be, in days, when its birth is registered (出生登记): six years, the age
/// compulsory schooling starts. A person registered for the first time when older is enrolled
/// (`Enrol`, e.g. 补录 of a person never registered), not registered as a birth.
pub const BIRTH_REGISTRATION_AGE_DAYS_MAX: u32 = 6 * 366;

const _: () = assert!(BATCH_ENTRIES_MAX * ENTRY_BYTES_MAX <= FRAME_BYTES_MAX);
const _: () = assert!(CERTIFICATE_BYTES_MAX <= FRAME_BYTES_MAX);
const _: () = assert!(ADOPTION_ENTRIES_MAX >= BATCH_ENTRIES_MAX);
const _: () = assert!(2 * ENTRY_BYTES_MAX + 64 <= FRAME_BYTES_MAX);
