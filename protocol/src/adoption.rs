//! A replica that holds a losing fork of a log moves to the certified one (DESIGN.md, "Logs,
//! checkpoints, witnesses, finality"; ARCHITECTURE.md, "Architecture invariants").
//!
//! A member that signs two entries at one position (a fork: I3 broken) can show each fork to
//! different honest members. At most one fork is ever certified: any two quorums share an honest
//! member, and a witness never cosigns two inconsistent checkpoints of one log. A replica that
//! holds the other fork must move to the certified one, or it refuses every honest entry that
//! references the certified fork (a registration against the certified deregistration), the
//! honest logs behind such entries stop growing on it, and those logs lose a cosigner.
//!
//! This module is the pure part of the move: given a certificate and entries offered as the
//! certified ones, it decides whether they are, and how much of the replica they replace
//! ([`certified_suffix`]). Fetching the entries, truncating the store and applying the entries
//! through the rulebook are the node's job. Nothing here trusts the peer that offered the
//! entries: they must hash, with the replica's kept prefix, to the root a quorum cosigned.
//!
//! The checks of [`certified_suffix`] run in a written order and each failure has a stable name
//! ([`AdoptionError::name`]), like the rulebook's.

use crate::checkpoint::{Certificate, CertificateError, Checkpoint};
use crate::config::Epochs;
use crate::entry::SignedEntry;
use crate::merkle::Tree;
use crate::types::{BureauCode, EntryHash, EntryRef, Hash32};

/// How a replica of a log stands against a certificate of that log, judged from its Merkle tree
/// alone ([`standing`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// The replica holds the certified log up to the certificate's size.
    Agrees,
    /// The replica holds fewer entries than the certificate covers: its tree cannot tell.
    Shorter { held: u64 },
    /// The replica has another root at the certificate's size: it holds a losing fork.
    Losing { ours: Hash32 },
}

/// How `replica` (this node's tree of the checkpoint's log) stands against `checkpoint`, the
/// checkpoint of a verified certificate.
pub fn standing(checkpoint: &Checkpoint, replica: &Tree) -> Standing {
    match replica.root_at(checkpoint.size) {
        Ok(root) if root == checkpoint.root => Standing::Agrees,
        Ok(ours) => Standing::Losing { ours },
        Err(_) => Standing::Shorter {
            held: replica.len(),
        },
    }
}

/// What a replica keeps and what it takes in to hold the certified log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertifiedSuffix {
    /// The log.
    pub log: BureauCode,
    /// Entries the replica shares with the certified log: it keeps seqs `0..common` and drops
    /// the rest.
    pub common: u64,
    /// The certified entries at seqs `common..size`, in order.
    pub entries: Vec<SignedEntry>,
}

/// Why entries offered as a certified log's are not taken. Variants are listed in the order
/// [`certified_suffix`] checks them; each has a stable name ([`AdoptionError::name`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdoptionError {
    /// Check 1: the certificate does not verify against the membership (a quorum of valid
    /// cosignatures by distinct members). Nothing else is looked at: only a quorum can make a
    /// replica give anything up.
    #[error("the certificate does not verify: {0}")]
    Certificate(#[from] CertificateError),
    /// Check 2: the certificate is of this node's own log. A node never takes back entries it
    /// signed (a certificate of another root would prove more than a third of members faulty).
    #[error("log {log} is this node's own; it is never replaced")]
    OwnLog { log: BureauCode },
    /// Check 3: the offer does not start within the replica (`from` beyond what it holds, or
    /// beyond the certificate's size).
    #[error(
        "the offer starts at seq {from}, but the replica holds {held} entries and the certificate covers {size}"
    )]
    OfferOutOfRange { from: u64, held: u64, size: u64 },
    /// Check 4: the offered entries are not exactly the log's entries at seqs `from..size`
    /// (another author, another seq, too few or too many); `found` is the first misfit, if any.
    #[error("entry {index} of the offer should be {log}:{expected_seq}, found {}", found.map_or_else(|| "nothing".to_string(), |r| r.to_string()))]
    NotTheRange {
        log: BureauCode,
        index: u64,
        expected_seq: u64,
        found: Option<EntryRef>,
    },
    /// Check 5: the first offered entry does not follow the replica's entry before it: the
    /// replica diverges from the offer further back, so the offer must start earlier.
    #[error(
        "offered entry {log}:{seq} names prev {found}, but the replica's entry before it hashes to {expected}"
    )]
    AnchorMismatch {
        log: BureauCode,
        seq: u64,
        expected: EntryHash,
        found: EntryHash,
    },
    /// Check 6: two offered entries do not chain.
    #[error(
        "offered entry {log}:{seq} names prev {found}, but the offered entry before it hashes to {expected}"
    )]
    BrokenChain {
        log: BureauCode,
        seq: u64,
        expected: EntryHash,
        found: EntryHash,
    },
    /// Check 7: the replica's kept prefix and the offer do not make the certified root: the
    /// offer is not the certified log (the peer holds another fork, or lies).
    #[error(
        "the offer makes root {} at size {size}, the certificate says {}",
        hex::encode(offered),
        hex::encode(certified)
    )]
    RootMismatch {
        size: u64,
        certified: Hash32,
        offered: Hash32,
    },
    /// Check 8: the replica already holds the certified log up to the certificate's size.
    #[error("the replica already holds the certified log at size {size}")]
    NotAFork { size: u64 },
    /// Check 9: the replica would drop entries a certificate it holds made final. Two
    /// certificates of one log that disagree mean more than a third of the members are faulty:
    /// nothing is dropped, and the node reports it.
    #[error(
        "the certified log shares only {common} entries with the replica, but {final_size} are final by a certificate this node holds"
    )]
    BelowFinal { common: u64, final_size: u64 },
}

impl AdoptionError {
    /// Stable snake_case name.
    pub fn name(&self) -> &'static str {
        match self {
            AdoptionError::Certificate(e) => e.name(),
            AdoptionError::OwnLog { .. } => "adoption_own_log",
            AdoptionError::OfferOutOfRange { .. } => "adoption_offer_out_of_range",
            AdoptionError::NotTheRange { .. } => "adoption_not_the_range",
            AdoptionError::AnchorMismatch { .. } => "adoption_anchor_mismatch",
            AdoptionError::BrokenChain { .. } => "adoption_broken_chain",
            AdoptionError::RootMismatch { .. } => "adoption_root_mismatch",
            AdoptionError::NotAFork { .. } => "adoption_not_a_fork",
            AdoptionError::BelowFinal { .. } => "adoption_below_final",
        }
    }
}

/// Decides whether `offered` (entries at seqs `from..size` of the certificate's log, fetched
/// from a peer) are the certified log's, and what the replica keeps. The replica is `replica`,
/// this node's tree of that log (its leaves are the entry hashes it holds), of which
/// `final_size` entries are final by a certificate this node holds; `me` is this node's bureau.
///
/// Checks, in order (the first failure is returned):
///
/// 1. the certificate verifies against the membership ([`AdoptionError::Certificate`]);
/// 2. it is not of `me`'s log ([`AdoptionError::OwnLog`]);
/// 3. `from` is within the replica and the certificate ([`AdoptionError::OfferOutOfRange`]);
/// 4. the offer is exactly the entries `from..size` of the log ([`AdoptionError::NotTheRange`]);
/// 5. its first entry follows the replica's entry `from - 1` ([`AdoptionError::AnchorMismatch`]);
/// 6. it chains ([`AdoptionError::BrokenChain`]);
/// 7. the replica's first `from` leaves and the offer's hashes make the certified root
///    ([`AdoptionError::RootMismatch`]): by then every kept and offered entry is the certified
///    log's, whoever offered them;
/// 8. the replica does not already hold all of it ([`AdoptionError::NotAFork`]);
/// 9. what the replica keeps, `common` (the longest prefix it shares with the certified log),
///    is at least `final_size` ([`AdoptionError::BelowFinal`]).
///
/// Signatures of the offered entries are not checked here: their hashes are certified, and the
/// node applies them through the rulebook, which checks everything, before storing them.
pub fn certified_suffix(
    epochs: &Epochs,
    me: BureauCode,
    certificate: &Certificate,
    replica: &Tree,
    final_size: u64,
    from: u64,
    offered: Vec<SignedEntry>,
) -> Result<CertifiedSuffix, AdoptionError> {
    // 1. Only a quorum can make a replica give anything up.
    certificate.verify(epochs)?;
    let c = &certificate.checkpoint;
    let log = c.log;
    // 2. Never the own log.
    if log == me {
        return Err(AdoptionError::OwnLog { log });
    }
    // 3. The offer starts within what the replica holds.
    let held = replica.len();
    if from > held || from > c.size {
        return Err(AdoptionError::OfferOutOfRange {
            from,
            held,
            size: c.size,
        });
    }
    // 4. Exactly the entries from..size.
    let wanted = c.size - from;
    for index in 0..wanted.max(offered.len() as u64) {
        let expected_seq = from + index;
        let found = offered.get(index as usize).map(SignedEntry::reference);
        let fits =
            index < wanted && found.is_some_and(|r| r.author == log && r.seq.0 == expected_seq);
        if !fits {
            return Err(AdoptionError::NotTheRange {
                log,
                index,
                expected_seq,
                found,
            });
        }
    }
    // 5. and 6. The offer chains onto the replica's entry before it, and within itself.
    let mut expected = match from.checked_sub(1) {
        None => EntryHash::ZERO,
        Some(last) => EntryHash(replica.leaf(last).expect("from <= held")),
    };
    for (index, entry) in offered.iter().enumerate() {
        let e = entry.entry();
        if e.prev != expected {
            let (log, seq, found) = (log, e.seq.0, e.prev);
            return Err(if index == 0 {
                AdoptionError::AnchorMismatch {
                    log,
                    seq,
                    expected,
                    found,
                }
            } else {
                AdoptionError::BrokenChain {
                    log,
                    seq,
                    expected,
                    found,
                }
            });
        }
        expected = entry.hash();
    }
    // 7. The kept prefix and the offer make the certified root.
    let hashes: Vec<Hash32> = offered.iter().map(|e| e.hash().0).collect();
    let root = replica
        .root_with_suffix(from, &hashes)
        .expect("from <= held was checked");
    if root != c.root {
        return Err(AdoptionError::RootMismatch {
            size: c.size,
            certified: c.root,
            offered: root,
        });
    }
    // 8. The longest prefix shared: the replica's leaves agree with the certified log below
    // `from` (check 7), and from there on up to the first offered hash that differs.
    let shared = (from..held.min(c.size))
        .find(|&seq| replica.leaf(seq) != Some(hashes[(seq - from) as usize]))
        .unwrap_or(held.min(c.size));
    if shared == c.size {
        return Err(AdoptionError::NotAFork { size: c.size });
    }
    // 9. Never below what is final here.
    if shared < final_size {
        return Err(AdoptionError::BelowFinal {
            common: shared,
            final_size,
        });
    }
    let mut entries = offered;
    entries.drain(..(shared - from) as usize);
    Ok(CertifiedSuffix {
        log,
        common: shared,
        entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::Cosignature;
    use crate::entry::{Body, Entry};
    use crate::membership::{Member, Membership, quorum_for};
    use crate::types::{NetworkId, PersonTag, Seq};
    use ed25519_dalek::SigningKey;

    const NET: &str = "adoption-net";

    fn code(i: u8) -> BureauCode {
        BureauCode::new(310_100 + u32::from(i)).unwrap()
    }

    fn key(i: u8) -> SigningKey {
        SigningKey::from_bytes(&[i; 32])
    }

    /// Members 1..=4, keys [i; 32], quorum 3. Member 1 forks its log; member 2 is "me".
    fn membership() -> Membership {
        let members = (1..=4).map(|i| Member {
            code: code(i),
            name: format!("bureau {i}"),
            key: key(i).verifying_key(),
        });
        Membership::new(NET, members, quorum_for(4)).unwrap()
    }

    /// Entry `seq` of member 1's log after `prev`; `variant` makes forks differ.
    fn entry(seq: u64, prev: EntryHash, variant: u8) -> SignedEntry {
        Entry {
            network: NetworkId::from_name(NET),
            epoch: 0,
            author: code(1),
            seq: Seq(seq),
            prev,
            time_ms: 1_700_000_000_000 + seq,
            body: Body::Cancellation {
                person: PersonTag([variant; 32]),
                reason: crate::CancellationReason::Death,
                new_head: None,
            },
        }
        .sign(&key(1))
    }

    /// Member 1's log: `shared` common entries, then `len - shared` entries of fork `variant`.
    fn log(shared: u64, len: u64, variant: u8) -> Vec<SignedEntry> {
        let mut out: Vec<SignedEntry> = Vec::new();
        for seq in 0..len {
            let prev = out.last().map_or(EntryHash::ZERO, SignedEntry::hash);
            out.push(entry(seq, prev, if seq < shared { 0 } else { variant }));
        }
        out
    }

    fn tree(entries: &[SignedEntry]) -> Tree {
        let mut t = Tree::new();
        for e in entries {
            t.push(e.hash().0);
        }
        t
    }

    /// A certificate of `entries` (all of them) cosigned by members `who`.
    fn certificate(entries: &[SignedEntry], who: &[u8]) -> Certificate {
        let c = Checkpoint {
            network: NetworkId::from_name(NET),
            epoch: 0,
            log: code(1),
            size: entries.len() as u64,
            root: tree(entries).root(),
            time_ms: 1_700_000_001_000,
        };
        Certificate::new(
            c,
            who.iter()
                .map(|&i| Cosignature::sign(&c, code(i), &key(i)))
                .collect(),
        )
    }

    #[test]
    fn a_losing_fork_keeps_the_shared_prefix_and_takes_the_certified_rest() {
        // The replica holds fork B (5 entries, diverging at seq 2); fork A (6 entries) is
        // certified. Offered from seq 2, and from seq 1 (one shared entry re-offered).
        let b = log(2, 5, 0xB);
        let a = log(2, 6, 0xA);
        let cert = certificate(&a, &[1, 3, 4]);
        assert_eq!(
            standing(&cert.checkpoint, &tree(&b[..5])),
            Standing::Shorter { held: 5 }
        );
        assert!(matches!(
            standing(&certificate(&a[..5], &[1, 3, 4]).checkpoint, &tree(&b)),
            Standing::Losing { .. }
        ));
        assert_eq!(
            standing(&certificate(&a[..2], &[1, 3, 4]).checkpoint, &tree(&b)),
            Standing::Agrees
        );
        for from in [0, 1, 2] {
            let got = certified_suffix(
                &crate::config::Epochs::of_membership(membership()),
                code(2),
                &cert,
                &tree(&b),
                2,
                from,
                a[from as usize..].to_vec(),
            );
            assert_eq!(
                got,
                Ok(CertifiedSuffix {
                    log: code(1),
                    common: 2,
                    entries: a[2..].to_vec(),
                }),
                "offered from {from}"
            );
        }
        // A replica that is merely behind keeps everything and takes the rest.
        let got = certified_suffix(
            &crate::config::Epochs::of_membership(membership()),
            code(2),
            &cert,
            &tree(&a[..3]),
            0,
            2,
            a[2..].to_vec(),
        );
        assert_eq!(got.map(|s| s.common), Ok(3));
    }

    #[test]
    fn only_a_verifying_certificate_counts() {
        let b = log(2, 3, 0xB);
        let a = log(2, 3, 0xA);
        let replica = tree(&b);
        let judge = |cert: &Certificate| {
            certified_suffix(
                &crate::config::Epochs::of_membership(membership()),
                code(2),
                cert,
                &replica,
                0,
                2,
                a[2..].to_vec(),
            )
        };
        // A flipped cosignature.
        let mut flipped = certificate(&a, &[1, 3, 4]);
        flipped.cosignatures[1].signature.0[5] ^= 1;
        assert_eq!(
            judge(&flipped),
            Err(AdoptionError::Certificate(
                CertificateError::BadCosignature { witness: code(3) }
            ))
        );
        // Too few cosigners.
        assert_eq!(
            judge(&certificate(&a, &[1, 3])),
            Err(AdoptionError::Certificate(CertificateError::BelowQuorum {
                have: 2,
                need: 3
            }))
        );
        // A signer that is not a member (its own key, its own code).
        let mut stranger = certificate(&a, &[1, 3]);
        let outsider = BureauCode::new(110_101).unwrap();
        stranger
            .cosignatures
            .push(Cosignature::sign(&stranger.checkpoint, outsider, &key(9)));
        let stranger = Certificate::new(stranger.checkpoint, stranger.cosignatures);
        assert_eq!(
            judge(&stranger),
            Err(AdoptionError::Certificate(
                CertificateError::UnknownWitness { witness: outsider }
            ))
        );
        // One member twice.
        let twice = certificate(&a, &[1, 3, 3]);
        assert_eq!(
            judge(&twice),
            Err(AdoptionError::Certificate(
                CertificateError::DuplicateWitness { witness: code(3) }
            ))
        );
        // The liar's own certificate of its fork B does verify, but is what the replica holds.
        assert_eq!(
            certified_suffix(
                &crate::config::Epochs::of_membership(membership()),
                code(2),
                &certificate(&b, &[1, 2, 3]),
                &replica,
                0,
                2,
                b[2..].to_vec()
            ),
            Err(AdoptionError::NotAFork { size: 3 })
        );
    }

    #[test]
    fn each_check_names_its_fault() {
        let b = log(2, 4, 0xB);
        let a = log(2, 4, 0xA);
        let cert = certificate(&a, &[1, 3, 4]);
        let replica = tree(&b);
        let m = membership();
        let judge = |me: u8, final_size: u64, from: u64, offered: Vec<SignedEntry>| {
            certified_suffix(
                &crate::config::Epochs::of_membership(m.clone()),
                code(me),
                &cert,
                &replica,
                final_size,
                from,
                offered,
            )
        };
        assert_eq!(
            judge(1, 0, 2, a[2..].to_vec()),
            Err(AdoptionError::OwnLog { log: code(1) })
        );
        assert_eq!(
            judge(2, 0, 5, vec![]),
            Err(AdoptionError::OfferOutOfRange {
                from: 5,
                held: 4,
                size: 4
            })
        );
        assert_eq!(
            judge(2, 0, 2, a[2..3].to_vec()),
            Err(AdoptionError::NotTheRange {
                log: code(1),
                index: 1,
                expected_seq: 3,
                found: None
            })
        );
        assert_eq!(
            judge(2, 0, 2, a[1..].to_vec()),
            Err(AdoptionError::NotTheRange {
                log: code(1),
                index: 0,
                expected_seq: 2,
                found: Some(a[1].reference())
            })
        );
        let mut too_many = a[2..].to_vec();
        too_many.push(a[3].clone());
        assert_eq!(
            judge(2, 0, 2, too_many),
            Err(AdoptionError::NotTheRange {
                log: code(1),
                index: 2,
                expected_seq: 4,
                found: Some(a[3].reference())
            })
        );
        // Offered from seq 3: fork A's entry 3 does not follow the replica's (fork B's) entry 2.
        assert_eq!(
            judge(2, 0, 3, a[3..].to_vec()),
            Err(AdoptionError::AnchorMismatch {
                log: code(1),
                seq: 3,
                expected: b[2].hash(),
                found: a[2].hash()
            })
        );
        // Fork A's entry 2, then fork B's entry 3.
        assert_eq!(
            judge(2, 0, 2, vec![a[2].clone(), b[3].clone()]),
            Err(AdoptionError::BrokenChain {
                log: code(1),
                seq: 3,
                expected: a[2].hash(),
                found: b[2].hash()
            })
        );
        // A third fork, chained and well placed, but not what the quorum cosigned.
        let c = log(2, 4, 0xC);
        assert_eq!(
            judge(2, 0, 2, c[2..].to_vec()),
            Err(AdoptionError::RootMismatch {
                size: 4,
                certified: cert.checkpoint.root,
                offered: tree(&c).root()
            })
        );
        assert_eq!(
            judge(2, 3, 2, a[2..].to_vec()),
            Err(AdoptionError::BelowFinal {
                common: 2,
                final_size: 3
            })
        );
        assert_eq!(judge(2, 2, 2, a[2..].to_vec()).map(|s| s.common), Ok(2));
        let names: std::collections::BTreeSet<_> = [
            AdoptionError::OwnLog { log: code(1) }.name(),
            AdoptionError::OfferOutOfRange {
                from: 0,
                held: 0,
                size: 0,
            }
            .name(),
            AdoptionError::NotTheRange {
                log: code(1),
                index: 0,
                expected_seq: 0,
                found: None,
            }
            .name(),
            AdoptionError::AnchorMismatch {
                log: code(1),
                seq: 0,
                expected: EntryHash::ZERO,
                found: EntryHash::ZERO,
            }
            .name(),
            AdoptionError::BrokenChain {
                log: code(1),
                seq: 0,
                expected: EntryHash::ZERO,
                found: EntryHash::ZERO,
            }
            .name(),
            AdoptionError::RootMismatch {
                size: 0,
                certified: [0; 32],
                offered: [0; 32],
            }
            .name(),
            AdoptionError::NotAFork { size: 0 }.name(),
            AdoptionError::BelowFinal {
                common: 0,
                final_size: 0,
            }
            .name(),
        ]
        .into_iter()
        .collect();
        assert_eq!(names.len(), 8, "every name is distinct");
    }
}
