//! Batch signature verification of entries: each entry's verdict under its author's member key,
//! computed with [`signature::verify_batch`], so it is always exactly the verdict of
//! [`SignedEntry::verify`] (the one ZIP-215 rule of [`crate::signature`]), whatever else the
//! batch holds and wherever the entry sits in it.

use crate::config::Epochs;
use crate::entry::SignedEntry;
use crate::signature::{self, Item};

/// Entries per batch equation on the first, optimistic pass ([`signature::BATCH_WHOLE_ITEMS`]).
pub const BATCH_WHOLE_ENTRIES: usize = signature::BATCH_WHOLE_ITEMS;

/// Entries per batch equation when searching a failed batch ([`signature::BATCH_CHUNK_ITEMS`]).
pub const BATCH_CHUNK_ENTRIES: usize = signature::BATCH_CHUNK_ITEMS;

/// For each entry, whether its signature verifies under its author's key of the epoch it names.
/// Entries by non-members, or naming an epoch not known, are `false` (the rulebook then judges
/// them one by one: `unknown_author`, or held for the epoch).
pub fn verify_entries(epochs: &Epochs, entries: &[SignedEntry]) -> Vec<bool> {
    let mut verdicts = vec![false; entries.len()];
    let mut messages = Vec::with_capacity(entries.len());
    let mut keys = Vec::with_capacity(entries.len());
    let mut indexes = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        let entry = e.entry();
        if let Some(key) = epochs
            .get(entry.epoch)
            .and_then(|c| c.membership.key(entry.author))
        {
            messages.push(e.signing_message());
            keys.push(key);
            indexes.push(i);
        }
    }
    let items: Vec<Item<'_>> = indexes
        .iter()
        .zip(&messages)
        .zip(&keys)
        .map(|((&i, message), key)| Item {
            key,
            message,
            signature: entries[i].signature(),
        })
        .collect();
    for (i, ok) in indexes.iter().zip(signature::verify_batch(&items)) {
        verdicts[*i] = ok;
    }
    verdicts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::{Body, Entry, Placement, Signature};
    use crate::{
        BureauCode, EntryHash, HouseholdId, Member, Membership, PersonTag, Relation, Seq,
        quorum_for,
    };
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
                    epoch: 0,
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
            assert!(
                verify_entries(&crate::config::Epochs::of_membership(m.clone()), &entries)
                    .iter()
                    .all(|v| *v),
                "n={n}"
            );
            let bad: Vec<usize> = [0, n / 2, n - 1].into_iter().collect();
            for &i in &bad {
                let mut sig = entries[i].signature().0;
                sig[0] ^= 1;
                entries[i] = SignedEntry::from_parts(entries[i].entry().clone(), Signature(sig));
            }
            let verdicts =
                verify_entries(&crate::config::Epochs::of_membership(m.clone()), &entries);
            for (i, v) in verdicts.iter().enumerate() {
                assert_eq!(*v, !bad.contains(&i), "n={n} entry {i}");
            }
        }
    }
}
