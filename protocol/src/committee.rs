//! Witness committees (ARCHITECTURE.md, "Witness committees"): which members witness a log, how
//! many of them certify it, and from which checkpoint a newly seated committee takes over.
//!
//! A network starts with **every member witnessing every log** ([`Committees::Everyone`], the
//! quorum of the membership: the first design, right for a handful of bureaus). An update
//! (`Change::SetCommittees`) switches to **drawn committees** of a given size: the committee of
//! log `B` is drawn from the other members by rendezvous hashing ([`draw`]) with at most
//! `f = (size - 1) / 3` members of one province, so a province that goes offline takes at most
//! `f` of any committee with it and the `size - f` others still form its quorum
//! ([`committee_quorum`]).
//!
//! A committee is **seated** in an epoch: when drawn committees are introduced, when its log
//! joins, or when a later membership change alters the draw. A seated committee carries an
//! **anchor**: a checkpoint of its log certified by the committee before it (carried in the update
//! as `Change::Anchor` and verified when the update is judged; size 0 when none was given). Two
//! rules make the certificates of one log agree across committees:
//!
//! - a committee's witnesses cosign only checkpoints that extend its anchor (`witness::judge`);
//! - a certificate of the earlier committee counts only up to the anchor's size
//!   (`Epochs::handover_cap`, `Certificate::verify` refuses it above as
//!   `certificate_beyond_handover`), and its witnesses, once they hold the new epoch, cosign
//!   nothing of that log beyond it.
//!
//! The draw is deterministic, so every node and auditor holding the configuration log names the
//! same committees; it changes only the committees a membership change touches (a joining member
//! enters the committees of the few logs it ranks high for; a leaving one is replaced in the
//! committees it sat on), so an update seats few committees anew.

use std::collections::BTreeMap;
use std::sync::Arc;

use sha2::{Digest as _, Sha256};

use crate::encoding::DOMAIN_COMMITTEE;
use crate::membership::Membership;
use crate::types::{BureauCode, Hash32};

/// Smallest drawn committee: one faulty witness tolerated.
pub const COMMITTEE_SIZE_MIN: usize = 4;
/// Largest drawn committee.
pub const COMMITTEE_SIZE_MAX: usize = 64;

/// Cosignatures a committee of `m` witnesses needs: `m - f` with `f = (m - 1) / 3`, the most
/// faulty witnesses it tolerates. Any two quorums share at least `f + 1` witnesses, so at least
/// one honest one; and `f` witnesses away (a province) leave a quorum.
pub fn committee_quorum(m: usize) -> usize {
    m - m.saturating_sub(1) / 3
}

/// Most witnesses of one province in a committee of `size`: `f`, at least 1.
pub fn province_cap(size: usize) -> usize {
    (size.saturating_sub(1) / 3).max(1)
}

/// Rendezvous score of `witness` for `log`: the first 8 bytes, big-endian, of
/// SHA-256(`DOMAIN_COMMITTEE` ‖ log (u32 LE) ‖ witness (u32 LE)). Lower ranks first.
pub fn score(log: BureauCode, witness: BureauCode) -> u64 {
    let mut h = Sha256::new();
    h.update(DOMAIN_COMMITTEE);
    h.update(log.get().to_le_bytes());
    h.update(witness.get().to_le_bytes());
    let digest: [u8; 32] = h.finalize().into();
    u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// The outcome of a draw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Draw {
    /// The witnesses, in code order.
    pub members: Vec<BureauCode>,
    /// Whether the province cap held (false when the membership has too few provinces: the
    /// committee was filled from the skipped candidates, in score order).
    pub spread: bool,
    /// The highest score among the witnesses picked by the first pass (meaningful when `spread`):
    /// a member joining with a lower score for this log could change the draw, one with a higher
    /// score cannot.
    pub max_score: u64,
}

/// Draws the committee of `log` from `members` (the log's own bureau excluded): candidates in
/// ascending [`score`] (then code); each is taken unless its province already has
/// [`province_cap`] witnesses, until `size` are taken; if the candidates run out first, the
/// skipped ones are taken in the same order until `size` (or none remain).
pub fn draw(log: BureauCode, members: &Membership, size: usize) -> Draw {
    let mut candidates: Vec<(u64, BureauCode)> = members
        .members()
        .map(|m| m.code)
        .filter(|&c| c != log)
        .map(|c| (score(log, c), c))
        .collect();
    candidates.sort_unstable();
    let cap = province_cap(size);
    let mut per_province: BTreeMap<u32, usize> = BTreeMap::new();
    let mut picked = Vec::with_capacity(size);
    let mut skipped = Vec::new();
    let mut max_score = 0;
    for &(s, c) in &candidates {
        if picked.len() == size {
            break;
        }
        let n = per_province.entry(c.province()).or_default();
        if *n < cap {
            *n += 1;
            picked.push(c);
            max_score = s;
        } else {
            skipped.push(c);
        }
    }
    let spread = picked.len() == size.min(candidates.len());
    if picked.len() < size {
        picked.extend(skipped.into_iter().take(size - picked.len()));
    }
    picked.sort_unstable();
    Draw {
        members: picked,
        spread,
        max_score,
    }
}

/// Where a seated committee takes over its log: a checkpoint certified by the committee before
/// it (size 0: from the start).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Anchor {
    pub size: u64,
    pub root: Hash32,
}

/// A drawn committee of one log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committee {
    /// The witnesses, in code order.
    pub members: Vec<BureauCode>,
    /// Cosignatures a certificate needs ([`committee_quorum`] of `members.len()`).
    pub quorum: usize,
    /// The epoch that seated it.
    pub seated: u32,
    pub anchor: Anchor,
    /// Whether the province cap held when it was drawn.
    pub spread: bool,
    /// [`Draw::max_score`].
    pub max_score: u64,
}

impl Committee {
    /// A committee seated in `epoch` from a draw.
    pub fn seat(draw: Draw, epoch: u32, anchor: Anchor) -> Committee {
        Committee {
            quorum: committee_quorum(draw.members.len()),
            members: draw.members,
            seated: epoch,
            anchor,
            spread: draw.spread,
            max_score: draw.max_score,
        }
    }

    /// Whether `witness` sits on it.
    pub fn contains(&self, witness: BureauCode) -> bool {
        self.members.binary_search(&witness).is_ok()
    }
}

/// The committees of one epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Committees {
    /// Every member witnesses every log; the membership's quorum certifies.
    Everyone,
    /// A drawn committee per member log.
    Drawn {
        size: usize,
        by_log: BTreeMap<BureauCode, Arc<Committee>>,
    },
}

impl Committees {
    /// The drawn committee of `log`, if committees are drawn and `log` is a member.
    pub fn drawn(&self, log: BureauCode) -> Option<&Committee> {
        match self {
            Committees::Everyone => None,
            Committees::Drawn { by_log, .. } => by_log.get(&log).map(|c| &**c),
        }
    }

    /// The drawn size, or `None` when everyone witnesses.
    pub fn size(&self) -> Option<usize> {
        match self {
            Committees::Everyone => None,
            Committees::Drawn { size, .. } => Some(*size),
        }
    }
}

/// Whether a drawn committee must be drawn again after the membership changed from `before` to
/// `after` (same size): a witness left, a joining member ranks before the last one picked, or the
/// committee was short or unspread (then any change may alter it). Exact: a draw it says is
/// unchanged is unchanged.
pub fn needs_redraw(
    log: BureauCode,
    committee: &Committee,
    before: &Membership,
    after: &Membership,
    size: usize,
) -> bool {
    if !committee.spread || committee.members.len() < size {
        return before
            .members()
            .map(|m| m.code)
            .ne(after.members().map(|m| m.code));
    }
    if committee.members.iter().any(|&w| !after.contains(w)) {
        return true;
    }
    after
        .members()
        .map(|m| m.code)
        .filter(|&c| c != log && !before.contains(c))
        .any(|c| score(log, c) < committee.max_score)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::membership::{Member, quorum_for};
    use ed25519_dalek::SigningKey;

    fn membership(codes: &[u32]) -> Membership {
        let members = codes.iter().enumerate().map(|(i, &c)| Member {
            code: BureauCode::new(c).unwrap(),
            name: format!("bureau {c}"),
            key: SigningKey::from_bytes(&[(i % 250) as u8 + 1; 32]).verifying_key(),
        });
        Membership::new("committee-test", members, quorum_for(codes.len())).unwrap()
    }

    /// `n` codes spread over `provinces` provinces (11, 12, …).
    fn codes(n: usize, provinces: u32) -> Vec<u32> {
        (0..n as u32)
            .map(|i| (11 + i % provinces) * 10_000 + 100 + i / provinces)
            .collect()
    }

    #[test]
    fn quorum_tolerates_a_third() {
        assert_eq!(committee_quorum(4), 3);
        assert_eq!(committee_quorum(7), 5);
        assert_eq!(committee_quorum(10), 7);
        assert_eq!(committee_quorum(13), 9);
        assert_eq!(committee_quorum(1), 1);
        for m in 1..=64usize {
            let q = committee_quorum(m);
            let f = (m - 1) / 3;
            // Two quorums share more than f witnesses, and f absent leave a quorum.
            assert!(2 * q > m + f, "m={m}");
            assert_eq!(m - f, q);
        }
    }

    #[test]
    fn draws_are_deterministic_spread_and_exclude_the_log() {
        let m = membership(&codes(200, 31));
        for &log in codes(200, 31).iter().take(50) {
            let log = BureauCode::new(log).unwrap();
            let d = draw(log, &m, 7);
            assert_eq!(d, draw(log, &m, 7));
            assert_eq!(d.members.len(), 7);
            assert!(d.spread);
            assert!(!d.members.contains(&log));
            let mut per: BTreeMap<u32, usize> = BTreeMap::new();
            for w in &d.members {
                *per.entry(w.province()).or_default() += 1;
            }
            assert!(per.values().all(|&n| n <= 2), "{per:?}");
        }
    }

    #[test]
    fn too_few_provinces_fill_from_the_skipped() {
        // Two provinces, committee of 7: the cap (2) cannot hold.
        let m = membership(&codes(20, 2));
        let log = BureauCode::new(codes(20, 2)[0]).unwrap();
        let d = draw(log, &m, 7);
        assert_eq!(d.members.len(), 7);
        assert!(!d.spread);
    }

    #[test]
    fn a_small_membership_gives_everyone_else() {
        let cs = codes(5, 5);
        let m = membership(&cs);
        let log = BureauCode::new(cs[0]).unwrap();
        let d = draw(log, &m, 7);
        assert_eq!(d.members.len(), 4);
        assert!(d.spread);
    }

    #[test]
    fn redraw_detection_is_exact() {
        let all = codes(120, 31);
        let before = membership(&all[..100]);
        let after = membership(&all[..120]);
        let mut redrawn = 0;
        for &log in &all[..100] {
            let log = BureauCode::new(log).unwrap();
            let old = Committee::seat(draw(log, &before, 7), 0, Anchor::default());
            let new = draw(log, &after, 7);
            let flagged = needs_redraw(log, &old, &before, &after, 7);
            if !flagged {
                assert_eq!(new.members, old.members, "log {log} changed unflagged");
            } else {
                redrawn += 1;
            }
        }
        // Twenty joiners among a hundred touch a fraction of the committees, not all.
        assert!(redrawn > 0 && redrawn < 100, "{redrawn}");
        // A leaving witness forces its committees to be drawn again.
        let log = BureauCode::new(all[0]).unwrap();
        let old = Committee::seat(draw(log, &after, 7), 0, Anchor::default());
        let gone = old.members[0];
        let left: Vec<u32> = all.iter().copied().filter(|&c| c != gone.get()).collect();
        assert!(needs_redraw(log, &old, &after, &membership(&left), 7));
    }
}
