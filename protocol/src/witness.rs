//! The witness's judgement of a checkpoint of another log (DESIGN.md, "Logs, checkpoints,
//! witnesses, finality"): may this member cosign it?
//!
//! Pure, like the rest of this crate. Talking to the log (fetching the entries, applying the
//! rulebook to them), storing what was cosigned and signing are the node's job; this module only
//! walks the spec's checks, each marked `// SPEC:`, in a fixed order, so every witness names the
//! same fault for the same checkpoint.
//!
//! What the witness knows about log B is passed in: `held`, how many entries of B it holds (each
//! applied by the rulebook before it was stored, so an invalid entry is never held and a
//! checkpoint that covers one is never cosigned), `root_at`, the root of its own Merkle tree of B
//! at a size, and `last_cosigned`, the last checkpoint of B it cosigned (persisted by the node).
//!
//! Invariant: if [`judge`] accepts checkpoints `c1` then `c2` of one log for one witness, with
//! `c1` recorded as last cosigned before `c2` is judged, then `c2.size >= c1.size` and both roots
//! are roots of the witness's one append-only tree, so `c1` is a prefix of `c2`: a witness that
//! records before it cosigns never cosigns a fork.

use crate::checkpoint::{Checkpoint, CheckpointError, SignedCheckpoint};
use crate::config::Epochs;
use crate::types::{BureauCode, Hash32};

/// Why a witness does not cosign a checkpoint (yet). Variants are listed in the order [`judge`]
/// checks them; each has a stable name ([`WitnessError::name`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WitnessError {
    /// Check 1: the checkpoint is of another network, of a non-member's log, or not signed by
    /// the log's author.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// Check 1b: this witness is not on the log's committee in the checkpoint's epoch; its
    /// cosignature would not count.
    #[error("{witness} is not on the witness committee of log {log} in epoch {epoch}")]
    NotInCommittee {
        witness: BureauCode,
        log: BureauCode,
        epoch: u32,
    },
    /// Check 1c: a later epoch seated a new committee for the log from `anchor` entries; the
    /// committee of the checkpoint's epoch certifies nothing beyond it any more.
    #[error(
        "configuration epoch {epoch} handed this log to a new committee from size {anchor}; a checkpoint of size {size} under an earlier epoch is not cosigned"
    )]
    BeyondHandover { size: u64, anchor: u64, epoch: u32 },
    /// Check 2: the witness holds fewer entries than the checkpoint covers. Not a refusal: judge
    /// again once replication has caught up.
    #[error("holds {held} entries of the log, the checkpoint covers {size}; try again later")]
    NotHeldYet { held: u64, size: u64 },
    /// Check 3: the witness's own tree has another root at that size. The author signed a
    /// checkpoint of a log other than the one it sent this witness: evidence of a fork.
    #[error(
        "at size {size} our tree has root {}, the checkpoint says {}",
        hex::encode(ours),
        hex::encode(theirs)
    )]
    RootMismatch {
        size: u64,
        ours: Hash32,
        theirs: Hash32,
    },
    /// Check 4a: the witness's own tree no longer has, at the size of the last checkpoint it
    /// cosigned, the root it cosigned (`ours` is `None` if the tree is now shorter than that).
    /// The witness's replica changed under it; it must not cosign anything of this log.
    #[error(
        "we cosigned root {} at size {size}, but our tree now has {} there",
        hex::encode(cosigned),
        ours.map_or_else(|| "no such size".to_string(), hex::encode)
    )]
    CosignedNotInTree {
        size: u64,
        cosigned: Hash32,
        ours: Option<Hash32>,
    },
    /// Check 4b: the checkpoint is smaller than one this witness already cosigned. Stale, not
    /// wrong: a witness only moves forward.
    #[error("the checkpoint covers {size} entries, but we already cosigned {cosigned}")]
    OlderThanCosigned { size: u64, cosigned: u64 },
    /// Check 5a: the committee took over the log at a larger size (its anchor); it cosigns only
    /// checkpoints that extend the anchor.
    #[error("the committee took this log over at size {anchor}; the checkpoint covers {size}")]
    BelowAnchor { size: u64, anchor: u64 },
    /// Check 5b: the witness's tree does not have the anchor's root at the anchor's size: its
    /// replica is not the history the committee before certified.
    #[error(
        "the committee took this log over at size {size} with root {}, our tree has {} there",
        hex::encode(anchor),
        ours.map_or_else(|| "no such size".to_string(), hex::encode)
    )]
    AnchorNotInTree {
        size: u64,
        anchor: Hash32,
        ours: Option<Hash32>,
    },
}

impl WitnessError {
    /// Stable snake_case name.
    pub fn name(&self) -> &'static str {
        match self {
            WitnessError::Checkpoint(e) => e.name(),
            WitnessError::NotHeldYet { .. } => "witness_not_held_yet",
            WitnessError::RootMismatch { .. } => "witness_root_mismatch",
            WitnessError::CosignedNotInTree { .. } => "witness_cosigned_not_in_tree",
            WitnessError::OlderThanCosigned { .. } => "witness_older_than_cosigned",
            WitnessError::NotInCommittee { .. } => "witness_not_in_committee",
            WitnessError::BeyondHandover { .. } => "witness_beyond_handover",
            WitnessError::BelowAnchor { .. } => "witness_below_anchor",
            WitnessError::AnchorNotInTree { .. } => "witness_anchor_not_in_tree",
        }
    }
}

/// Whether this witness may cosign `checkpoint` (of log B), given what it holds of B.
///
/// - `held`: entries of B the witness holds (durably, each passed by the rulebook);
/// - `root_at(size)`: the root of the witness's tree of B at `size`, or `None` beyond it;
/// - `last_cosigned`: the last checkpoint of B this witness cosigned, if any.
///
/// `Ok(())` means "cosign"; the caller must record `checkpoint` as the last cosigned for B,
/// durably and conditionally on `last_cosigned` still being the recorded one, before its
/// cosignature leaves.
pub fn judge(
    epochs: &Epochs,
    witness: BureauCode,
    checkpoint: &SignedCheckpoint,
    held: u64,
    root_at: impl Fn(u64) -> Option<Hash32>,
    last_cosigned: Option<&Checkpoint>,
) -> Result<(), WitnessError> {
    // SPEC: the checkpoint is signed by log B's author, a member, on this network.
    checkpoint.verify(epochs)?;
    let c = &checkpoint.checkpoint;
    // SPEC: the witness is on the log's committee of the checkpoint's epoch.
    let epoch = epochs
        .get(c.epoch)
        .expect("a verified checkpoint names a known epoch");
    if !epoch.is_witness(c.log, witness) {
        return Err(WitnessError::NotInCommittee {
            witness,
            log: c.log,
            epoch: c.epoch,
        });
    }
    // SPEC: a committee handed over by a later epoch certifies nothing beyond the anchor.
    if let Some((anchor, seated)) = epochs.handover_cap(c.log, c.epoch)
        && c.size > anchor
    {
        return Err(WitnessError::BeyondHandover {
            size: c.size,
            anchor,
            epoch: seated,
        });
    }
    // A checkpoint cosigned before a later epoch cut the log below its size covered entries the
    // cut refuses; the witness's own tree was cut with them, so it is no longer a prefix to keep.
    let last_cosigned = last_cosigned.filter(|l| {
        l.size == 0
            || epochs
                .cut_of(l.log, crate::types::Seq(l.size - 1), l.epoch)
                .is_none()
    });

    // SPEC: the witness fetches the missing entries (and applies the rulebook) first: it judges
    // only a log it holds up to the checkpoint's size.
    let ours = match root_at(c.size) {
        Some(root) if held >= c.size => root,
        _ => {
            return Err(WitnessError::NotHeldYet { held, size: c.size });
        }
    };

    // SPEC: the witness checks the root against its own tree of B at that size.
    if ours != c.root {
        return Err(WitnessError::RootMismatch {
            size: c.size,
            ours,
            theirs: c.root,
        });
    }

    // SPEC: the witness checks consistency with the last checkpoint of B it cosigned: its tree
    // still has the cosigned root at that size (so the cosigned tree is a prefix of the one just
    // checked), and the checkpoint does not go back.
    if let Some(last) = last_cosigned {
        let ours_then = root_at(last.size);
        if ours_then != Some(last.root) {
            return Err(WitnessError::CosignedNotInTree {
                size: last.size,
                cosigned: last.root,
                ours: ours_then,
            });
        }
        if c.size < last.size {
            return Err(WitnessError::OlderThanCosigned {
                size: c.size,
                cosigned: last.size,
            });
        }
    }

    // SPEC: a seated committee cosigns only checkpoints that extend its anchor (the checkpoint
    // its predecessor certified), so its certificates extend every one of the predecessor's
    // that still counts.
    let anchor = epoch.anchor(c.log);
    if anchor.size > 0 {
        if c.size < anchor.size {
            return Err(WitnessError::BelowAnchor {
                size: c.size,
                anchor: anchor.size,
            });
        }
        let ours = root_at(anchor.size);
        if ours != Some(anchor.root) {
            return Err(WitnessError::AnchorNotInTree {
                size: anchor.size,
                anchor: anchor.root,
                ours,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::membership::{Member, Membership, quorum_for};
    use crate::merkle::{Tree, leaf_hash};
    use crate::types::{BureauCode, NetworkId};
    use ed25519_dalek::SigningKey;

    const NET: &str = "witness-net";

    fn code(i: u8) -> BureauCode {
        BureauCode::new(310_100 + u32::from(i)).unwrap()
    }

    fn key(i: u8) -> SigningKey {
        SigningKey::from_bytes(&[i; 32])
    }

    fn membership() -> Membership {
        let members = (1..=4).map(|i| Member {
            code: code(i),
            name: format!("bureau {i}"),
            key: key(i).verifying_key(),
        });
        Membership::new(NET, members, quorum_for(4)).unwrap()
    }

    /// A tree of `n` leaves, the `salt` making different logs.
    fn tree(n: u64, salt: u8) -> Tree {
        let mut t = Tree::new();
        for i in 0..n {
            t.push(leaf_hash(&[salt, i as u8, (i >> 8) as u8]));
        }
        t
    }

    /// Log 1's checkpoint of `tree` at `size`, signed by its author.
    fn checkpoint(tree: &Tree, size: u64) -> SignedCheckpoint {
        Checkpoint {
            network: NetworkId::from_name(NET),
            epoch: 0,
            log: code(1),
            size,
            root: tree.root_at(size).unwrap(),
            time_ms: 1_700_000_000_000 + size,
        }
        .sign(&key(1))
    }

    /// Judges `c` as a witness holding `ours` (all of it) that last cosigned `last`.
    fn judge_with(
        c: &SignedCheckpoint,
        ours: &Tree,
        last: Option<&Checkpoint>,
    ) -> Result<(), WitnessError> {
        judge(
            &crate::config::Epochs::of_membership(membership()),
            code(2),
            c,
            ours.len(),
            |s| ours.root_at(s).ok(),
            last,
        )
    }

    #[test]
    fn accepts_a_checkpoint_it_holds_and_that_extends_what_it_cosigned() {
        let t = tree(20, 0);
        assert_eq!(judge_with(&checkpoint(&t, 20), &t, None), Ok(()));
        assert_eq!(judge_with(&checkpoint(&t, 7), &t, None), Ok(()));
        let last = checkpoint(&t, 7).checkpoint;
        assert_eq!(judge_with(&checkpoint(&t, 20), &t, Some(&last)), Ok(()));
        // The same size again (a later checkpoint of an unchanged log) is consistent.
        assert_eq!(judge_with(&checkpoint(&t, 7), &t, Some(&last)), Ok(()));
        // A witness holding more than the checkpoint covers judges the prefix.
        let more = tree(30, 0);
        assert_eq!(judge_with(&checkpoint(&t, 20), &more, Some(&last)), Ok(()));
    }

    #[test]
    fn refuses_a_checkpoint_not_signed_by_the_log_author() {
        let t = tree(5, 0);
        let mut c = checkpoint(&t, 5);
        c.signature.0[0] ^= 1;
        let err = judge_with(&c, &t, None).unwrap_err();
        assert_eq!(
            err,
            WitnessError::Checkpoint(CheckpointError::BadSignature { log: code(1) })
        );
        assert_eq!(err.name(), "checkpoint_bad_signature");
        let forged = c.checkpoint.sign(&key(2));
        assert_eq!(
            judge_with(&forged, &t, None),
            Err(WitnessError::Checkpoint(CheckpointError::BadSignature {
                log: code(1)
            }))
        );
        let foreign = Checkpoint {
            network: NetworkId::from_name("another-net"),
            epoch: 0,
            ..c.checkpoint
        }
        .sign(&key(1));
        assert!(matches!(
            judge_with(&foreign, &t, None),
            Err(WitnessError::Checkpoint(
                CheckpointError::WrongNetwork { .. }
            ))
        ));
        // The signature is checked before anything else: even a checkpoint beyond what the
        // witness holds is refused for its signature, not postponed.
        let mut ahead = checkpoint(&tree(9, 0), 9);
        ahead.signature.0[1] ^= 1;
        assert!(matches!(
            judge_with(&ahead, &t, None),
            Err(WitnessError::Checkpoint(_))
        ));
    }

    #[test]
    fn postpones_a_checkpoint_beyond_what_it_holds() {
        let full = tree(12, 0);
        let partial = tree(10, 0);
        let err = judge_with(&checkpoint(&full, 12), &partial, None).unwrap_err();
        assert_eq!(err, WitnessError::NotHeldYet { held: 10, size: 12 });
        assert_eq!(err.name(), "witness_not_held_yet");
        // `held` is what counts (durable entries), even if the tree in memory is longer.
        assert_eq!(
            judge(
                &crate::config::Epochs::of_membership(membership()),
                code(2),
                &checkpoint(&full, 12),
                11,
                |s| full.root_at(s).ok(),
                None
            ),
            Err(WitnessError::NotHeldYet { held: 11, size: 12 })
        );
        // Caught up: accepted.
        assert_eq!(judge_with(&checkpoint(&full, 12), &full, None), Ok(()));
    }

    #[test]
    fn refuses_a_root_that_is_not_ours_with_both_roots_as_evidence() {
        let theirs = tree(8, 1);
        let ours = tree(8, 0);
        let err = judge_with(&checkpoint(&theirs, 8), &ours, None).unwrap_err();
        assert_eq!(
            err,
            WitnessError::RootMismatch {
                size: 8,
                ours: ours.root(),
                theirs: theirs.root()
            }
        );
        assert_eq!(err.name(), "witness_root_mismatch");
        // A root mismatch is reported before any question about what was cosigned.
        let last = checkpoint(&ours, 8).checkpoint;
        assert!(matches!(
            judge_with(&checkpoint(&theirs, 4), &ours, Some(&last)),
            Err(WitnessError::RootMismatch { size: 4, .. })
        ));
    }

    #[test]
    fn refuses_a_checkpoint_older_than_the_one_cosigned() {
        let t = tree(20, 0);
        let last = checkpoint(&t, 15).checkpoint;
        let err = judge_with(&checkpoint(&t, 14), &t, Some(&last)).unwrap_err();
        assert_eq!(
            err,
            WitnessError::OlderThanCosigned {
                size: 14,
                cosigned: 15
            }
        );
        assert_eq!(err.name(), "witness_older_than_cosigned");
    }

    #[test]
    fn refuses_everything_once_its_tree_disagrees_with_what_it_cosigned() {
        // The witness cosigned size 6 of one log, but its replica now holds another one: it
        // must not cosign a fork of what it vouched for, even a checkpoint matching its tree.
        let before = tree(6, 1);
        let now = tree(10, 0);
        let last = checkpoint(&before, 6).checkpoint;
        let err = judge_with(&checkpoint(&now, 10), &now, Some(&last)).unwrap_err();
        assert_eq!(
            err,
            WitnessError::CosignedNotInTree {
                size: 6,
                cosigned: before.root(),
                ours: Some(now.root_at(6).unwrap())
            }
        );
        assert_eq!(err.name(), "witness_cosigned_not_in_tree");
        // Its tree shorter than what it cosigned (a lost replica): not even a matching smaller
        // checkpoint is cosigned.
        let short = tree(4, 0);
        let last = checkpoint(&tree(9, 0), 9).checkpoint;
        assert_eq!(
            judge_with(&checkpoint(&short, 4), &short, Some(&last)),
            Err(WitnessError::CosignedNotInTree {
                size: 9,
                cosigned: last.root,
                ours: None
            })
        );
    }

    #[test]
    fn same_size_different_root_after_a_cosignature_is_refused() {
        // The heart of "never cosign two roots for one size": having cosigned (8, r), a witness
        // whose tree has r at 8 refuses (8, r') as a root mismatch.
        let ours = tree(8, 0);
        let last = checkpoint(&ours, 8).checkpoint;
        let fork = checkpoint(&tree(8, 2), 8);
        assert!(matches!(
            judge_with(&fork, &ours, Some(&last)),
            Err(WitnessError::RootMismatch { size: 8, .. })
        ));
    }
}
