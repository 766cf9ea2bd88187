//! Entry signature verification spread over the machine's cores: the entries are split into one
//! contiguous part per core and each part is batch-verified on its own thread.
//!
//! The split changes no verdict: `hukou_protocol::batch::verify_entries` gives each entry exactly
//! its single verdict (`SignedEntry::verify`, the one rule of `hukou_protocol::signature`),
//! whatever else its part holds, so nodes with different core counts, the witness and the auditor
//! agree on every entry.

use hukou_protocol::SignedEntry;
use hukou_protocol::batch::verify_entries as verify_part;
use hukou_protocol::config::Epochs;

/// Below this many entries one thread is faster than starting others.
const PARALLEL_ENTRIES_MIN: usize = 256;

/// The machine's cores, asked once: `available_parallelism` reads the cgroup's CPU quota files
/// on Linux (several system calls), which cost more than verifying a small gossiped batch.
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// For each entry, whether its signature verifies under its author's key: the same verdict
/// `SignedEntry::verify` gives it alone.
pub fn verify_entries(epochs: &Epochs, entries: &[SignedEntry]) -> Vec<bool> {
    if entries.len() < PARALLEL_ENTRIES_MIN {
        return verify_part(epochs, entries);
    }
    let cores = cores();
    if cores <= 1 {
        return verify_part(epochs, entries);
    }
    let part = entries.len().div_ceil(cores);
    std::thread::scope(|scope| {
        let handles: Vec<_> = entries
            .chunks(part)
            .map(|chunk| scope.spawn(move || verify_part(epochs, chunk)))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("verification thread"))
            .collect()
    })
}
