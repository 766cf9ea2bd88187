//! The bounded-degree overlay: which members a node keeps connections to (issue 14, "work that
//! follows activity").
//!
//! A pure, deterministic function of the membership of the current epoch, so every node computes
//! the same graph without talking to anyone:
//!
//! - up to [`FULL_MESH_MAX`] members, every member is every other's neighbour (a full mesh: small
//!   networks, and every test network, keep today's behaviour);
//! - above, members are sorted by code and member *i*'s neighbours are *i* ± 2^k (mod N) for
//!   k = 0 .. ⌈log₂ N⌉ − 1. The graph is symmetric (j = i + d ⇔ i = j − d), connected (k = 0 is a
//!   ring), has diameter O(log N), and degree at most 2⌈log₂ N⌉ (24 at N = 2,800).
//!
//! Of two neighbours, only the one with the smaller code dials (no duplicate connections); the
//! other dials too only if that connection does not come (net.rs, `PeerRole`).

/// Largest membership that is a full mesh. 12: every existing test network (at most 8 bureaus)
/// is a full mesh, and at 12 the overlay's degree (2⌈log₂ 12⌉ = 8, after coincidences 7) is not
/// much below N − 1 = 11 anyway.
pub const FULL_MESH_MAX: usize = 12;

/// The neighbours of `me` among `members` (any order, duplicates ignored), sorted. Empty when
/// `me` is not a member.
pub fn neighbours<T: Ord + Copy>(members: &[T], me: T) -> Vec<T> {
    let mut sorted: Vec<T> = members.to_vec();
    sorted.sort();
    sorted.dedup();
    let Ok(i) = sorted.binary_search(&me) else {
        return Vec::new();
    };
    let n = sorted.len();
    if n <= FULL_MESH_MAX {
        return sorted.into_iter().filter(|m| *m != me).collect();
    }
    let mut out = Vec::with_capacity(2 * rounds(n));
    for k in 0..rounds(n) {
        let d = (1usize << k) % n;
        out.push(sorted[(i + d) % n]);
        out.push(sorted[(i + n - d) % n]);
    }
    out.sort();
    out.dedup();
    out.retain(|m| *m != me);
    out
}

/// ⌈log₂ n⌉ for n ≥ 2.
fn rounds(n: usize) -> usize {
    (usize::BITS - (n - 1).leading_zeros()) as usize
}

/// Whether `a` dials `b` first when they are neighbours: the smaller code dials. In a full mesh
/// both dial at once (today's behaviour; a second connection of a pair is allowed).
pub fn dials_first<T: Ord>(a: &T, b: &T, members: usize) -> bool {
    members <= FULL_MESH_MAX || a < b
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeSet, VecDeque};

    fn members(n: u32) -> Vec<u32> {
        // Codes that are not contiguous, in no order.
        (0..n).rev().map(|i| 110_000 + i * 37).collect()
    }

    fn graph(ms: &[u32]) -> Vec<(u32, Vec<u32>)> {
        ms.iter().map(|m| (*m, neighbours(ms, *m))).collect()
    }

    #[test]
    fn full_mesh_up_to_the_limit() {
        for n in 1..=FULL_MESH_MAX as u32 {
            let ms = members(n);
            for (m, ns) in graph(&ms) {
                let mut others: Vec<u32> = ms.iter().copied().filter(|x| *x != m).collect();
                others.sort();
                assert_eq!(ns, others, "n = {n}, member {m}");
            }
        }
    }

    #[test]
    fn symmetric_connected_bounded_for_1_to_300() {
        for n in 1..=300u32 {
            let ms = members(n);
            let g = graph(&ms);
            let bound = if n as usize <= FULL_MESH_MAX {
                n as usize - 1
            } else {
                2 * rounds(n as usize)
            };
            for (m, ns) in &g {
                assert!(ns.len() <= bound, "n = {n}: {m} has {} > {bound}", ns.len());
                assert!(!ns.contains(m), "n = {n}: {m} is its own neighbour");
                for x in ns {
                    let back = &g.iter().find(|(y, _)| y == x).expect("member").1;
                    assert!(back.contains(m), "n = {n}: {m} → {x} but not back");
                }
            }
            // Breadth-first from one member reaches all, within 2⌈log₂ n⌉ hops.
            let mut seen = BTreeSet::from([ms[0]]);
            let mut queue = VecDeque::from([(ms[0], 0usize)]);
            let mut depth = 0;
            while let Some((m, d)) = queue.pop_front() {
                depth = depth.max(d);
                for x in &g.iter().find(|(y, _)| *y == m).expect("member").1 {
                    if seen.insert(*x) {
                        queue.push_back((*x, d + 1));
                    }
                }
            }
            assert_eq!(seen.len(), n as usize, "n = {n}: not connected");
            assert!(
                depth <= 2 * rounds(n.max(2) as usize),
                "n = {n}: diameter {depth}"
            );
        }
    }

    #[test]
    fn degree_at_national_size() {
        let ms = members(2_800);
        let max = ms.iter().map(|m| neighbours(&ms, *m).len()).max();
        assert_eq!(max, Some(24));
    }

    #[test]
    fn deterministic_whatever_the_order() {
        let ms = members(57);
        let mut shuffled = ms.clone();
        shuffled.reverse();
        shuffled.swap(3, 40);
        shuffled.push(ms[5]); // a duplicate changes nothing
        for m in &ms {
            assert_eq!(neighbours(&ms, *m), neighbours(&shuffled, *m));
        }
        assert_eq!(neighbours(&ms, 1), Vec::<u32>::new(), "not a member");
    }

    #[test]
    fn exactly_one_side_dials_first_above_the_full_mesh() {
        assert!(dials_first(&1, &2, 20));
        assert!(!dials_first(&2, &1, 20));
        assert!(dials_first(&2, &1, FULL_MESH_MAX));
    }
}
