//! Batch signature verification of entries: one multi-scalar check per chunk, falling back to
//! strict one-by-one verification to name exactly which entries are bad.
//!
//! Batch verification accepts the same signatures as `verify_strict` for members' keys, because
//! `Membership::new` refuses weak (small-order) keys; a chunk that fails is re-checked entry by
//! entry with `verify_strict`, so a verdict of `true` never rests on the batch equation alone
//! for a chunk that held a bad signature.

use ed25519_dalek::{Signature as DalekSignature, VerifyingKey};

use crate::entry::SignedEntry;
use crate::membership::Membership;

/// Entries per batch equation: large enough to amortise, small enough that one bad entry costs
/// little re-checking.
pub const BATCH_CHUNK_ENTRIES: usize = 64;

/// For each entry, whether its signature verifies under its author's member key. Entries by
/// non-members are `false` (the rulebook then names them `unknown_author`).
pub fn verify_entries(membership: &Membership, entries: &[SignedEntry]) -> Vec<bool> {
    let mut verdicts = vec![false; entries.len()];
    for (chunk_index, chunk) in entries.chunks(BATCH_CHUNK_ENTRIES).enumerate() {
        let base = chunk_index * BATCH_CHUNK_ENTRIES;
        let mut messages = Vec::with_capacity(chunk.len());
        let mut signatures = Vec::with_capacity(chunk.len());
        let mut keys: Vec<VerifyingKey> = Vec::with_capacity(chunk.len());
        let mut indexes = Vec::with_capacity(chunk.len());
        for (i, e) in chunk.iter().enumerate() {
            if let Some(key) = membership.key(e.entry().author) {
                messages.push(e.signing_message());
                signatures.push(DalekSignature::from_bytes(&e.signature().0));
                keys.push(*key);
                indexes.push(base + i);
            }
        }
        let refs: Vec<&[u8]> = messages.iter().map(|m| m.as_slice()).collect();
        if ed25519_dalek::verify_batch(&refs, &signatures, &keys).is_ok() {
            for i in indexes {
                verdicts[i] = true;
            }
        } else {
            for (k, i) in indexes.into_iter().enumerate() {
                verdicts[i] = keys[k].verify_strict(&messages[k], &signatures[k]).is_ok();
            }
        }
    }
    verdicts
}
