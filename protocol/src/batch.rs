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

/// Entries per batch equation on the first, optimistic pass. Above ~190 points curve25519-dalek
/// switches to Pippenger's multiscalar multiplication, which is about a third cheaper per entry
/// than the 64-entry equations (measured: docs/BENCHMARKS.md).
pub const BATCH_WHOLE_ENTRIES: usize = 1024;

/// Entries per batch equation when searching a failed batch: small enough that one bad entry
/// costs little re-checking.
pub const BATCH_CHUNK_ENTRIES: usize = 64;

/// For each entry, whether its signature verifies under its author's member key. Entries by
/// non-members are `false` (the rulebook then names them `unknown_author`).
pub fn verify_entries(membership: &Membership, entries: &[SignedEntry]) -> Vec<bool> {
    let mut verdicts = Vec::with_capacity(entries.len());
    for part in entries.chunks(BATCH_WHOLE_ENTRIES) {
        if part.len() > BATCH_CHUNK_ENTRIES && verify_all(membership, part) {
            verdicts.extend(std::iter::repeat_n(true, part.len()));
        } else {
            verdicts.extend(verify_chunked(membership, part));
        }
    }
    verdicts
}

/// Whether every entry is by a member and the whole slice passes one batch equation.
fn verify_all(membership: &Membership, entries: &[SignedEntry]) -> bool {
    let mut messages = Vec::with_capacity(entries.len());
    let mut signatures = Vec::with_capacity(entries.len());
    let mut keys: Vec<VerifyingKey> = Vec::with_capacity(entries.len());
    for e in entries {
        let Some(key) = membership.key(e.entry().author) else {
            return false;
        };
        messages.push(e.signing_message());
        signatures.push(DalekSignature::from_bytes(&e.signature().0));
        keys.push(*key);
    }
    let refs: Vec<&[u8]> = messages.iter().map(|m| m.as_slice()).collect();
    ed25519_dalek::verify_batch(&refs, &signatures, &keys).is_ok()
}

/// Batch equations of [`BATCH_CHUNK_ENTRIES`], then one by one inside a failed chunk.
fn verify_chunked(membership: &Membership, entries: &[SignedEntry]) -> Vec<bool> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::{Body, Entry, Placement, Signature};
    use crate::{BureauCode, EntryHash, HouseholdId, Member, PersonTag, Relation, Seq, quorum_for};
    use ed25519_dalek::SigningKey;

    fn setup(n: usize) -> (Membership, Vec<SignedEntry>) {
        let key = SigningKey::from_bytes(&[9; 32]);
        let code = BureauCode::new(310104).unwrap();
        let m = Membership::new(
            "t",
            [Member {
                code,
                name: "x".into(),
                key: key.verifying_key(),
            }],
            quorum_for(1),
        )
        .unwrap();
        let entries = (0..n)
            .map(|i| {
                Entry {
                    network: m.network(),
                    author: code,
                    seq: Seq(i as u64),
                    prev: EntryHash::ZERO,
                    time_ms: 0,
                    body: Body::Enrol {
                        person: PersonTag([i as u8; 32]),
                        placement: Placement {
                            household: HouseholdId(1),
                            relation: Relation::Head,
                        },
                        claim: crate::EntryRef {
                            author: code,
                            seq: Seq(0),
                            hash: EntryHash::ZERO,
                        },
                    },
                }
                .sign(&key)
            })
            .collect();
        (m, entries)
    }

    #[test]
    fn names_exactly_the_bad_entries_in_large_and_small_batches() {
        for n in [1, 63, 64, 65, 300, 1500] {
            let (m, mut entries) = setup(n);
            assert!(verify_entries(&m, &entries).iter().all(|v| *v), "n={n}");
            let bad: Vec<usize> = [0, n / 2, n - 1].into_iter().collect();
            for &i in &bad {
                let mut sig = entries[i].signature().0;
                sig[0] ^= 1;
                entries[i] = SignedEntry::from_parts(entries[i].entry().clone(), Signature(sig));
            }
            let verdicts = verify_entries(&m, &entries);
            for (i, v) in verdicts.iter().enumerate() {
                assert_eq!(*v, !bad.contains(&i), "n={n} entry {i}");
            }
        }
    }
}
