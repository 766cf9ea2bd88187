//! RFC 6962 Merkle trees over a log's entry hashes: roots at any size, inclusion and consistency
//! proofs, and the pure functions that verify them.
//!
//! Hashing (RFC 6962 §2.1): leaf hash = SHA-256(`0x00` ‖ data), node hash = SHA-256(`0x01` ‖ left
//! ‖ right), and the root of the empty tree is SHA-256 of nothing. An entry's hash *is* its leaf
//! hash (see `entry`), so [`Tree`] is built from leaf hashes, never from entry bytes.
//!
//! Invariants:
//!
//! - [`Tree`] only grows. Its root at any earlier size, and proofs between any earlier sizes, are
//!   exactly what a tree holding only that prefix would give, so a node can answer for old
//!   checkpoints without keeping old trees.
//! - Proof generation follows the RFC's `PATH` (§2.1.1) and `PROOF`/`SUBPROOF` (§2.1.2); the tests
//!   check it against a naive recursive transcription of the RFC text and against the Certificate
//!   Transparency test vectors.
//! - Verification ([`verify_inclusion`], [`verify_consistency`], [`root_from_inclusion_proof`])
//!   is pure, never panics whatever it is given, checks the proof length before hashing anything,
//!   and says why it refused, with the evidence ([`VerifyError`]).

use sha2::{Digest as _, Sha256};

use crate::types::Hash32;

/// Prefix of a leaf hash input (RFC 6962 §2.1).
pub const LEAF_PREFIX: u8 = 0x00;
/// Prefix of an interior node hash input.
pub const NODE_PREFIX: u8 = 0x01;

/// The leaf hash of `data`: SHA-256(`0x00` ‖ data).
pub fn leaf_hash(data: &[u8]) -> Hash32 {
    let mut h = Sha256::new();
    h.update([LEAF_PREFIX]);
    h.update(data);
    h.finalize().into()
}

/// The hash of an interior node: SHA-256(`0x01` ‖ left ‖ right).
pub fn node_hash(left: &Hash32, right: &Hash32) -> Hash32 {
    let mut h = Sha256::new();
    h.update([NODE_PREFIX]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree: SHA-256 of the empty string.
pub fn empty_root() -> Hash32 {
    Sha256::digest([]).into()
}

/// Why a [`Tree`] cannot produce a root or a proof: the caller asked about sizes or leaves it does
/// not hold. These are the caller's mistakes (or a peer asking for something we do not have),
/// never a corrupt tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The tree holds fewer than `size` leaves.
    #[error("tree size {size} is beyond the {len} leaves held")]
    SizeBeyondTree { size: u64, len: u64 },
    /// The leaf is not in the tree of that size.
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    /// The first size is the larger one.
    #[error("consistency from size {size1} to the smaller size {size2} is undefined")]
    Size1GreaterThanSize2 { size1: u64, size2: u64 },
    /// Consistency from the empty tree was asked for; there is nothing to prove.
    #[error("a consistency proof from the empty tree (size1 = 0) is meaningless")]
    Size1Zero,
}

impl ProofError {
    /// Stable snake_case name.
    pub fn name(&self) -> &'static str {
        match self {
            ProofError::SizeBeyondTree { .. } => "proof_size_beyond_tree",
            ProofError::IndexOutOfRange { .. } => "proof_index_out_of_range",
            ProofError::Size1GreaterThanSize2 { .. } => "proof_size1_greater_than_size2",
            ProofError::Size1Zero => "proof_size1_zero",
        }
    }
}

/// Why a proof was refused, with the evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The leaf is not in the tree of that size.
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    /// The proof is not the length the sizes (and index) call for.
    #[error("proof has {found} hashes, {expected} expected")]
    WrongProofLength { expected: usize, found: usize },
    /// The proof rebuilds a root other than the expected (second) one.
    #[error(
        "the proof leads to root {}, not the expected {}",
        hex::encode(computed),
        hex::encode(expected)
    )]
    RootMismatch { computed: Hash32, expected: Hash32 },
    /// The consistency proof does not rebuild the first root.
    #[error(
        "the consistency proof does not rebuild the first root: got {}, expected {}",
        hex::encode(computed),
        hex::encode(expected)
    )]
    FirstRootMismatch { computed: Hash32, expected: Hash32 },
    /// The first size is the larger one.
    #[error("size1 {size1} is greater than size2 {size2}")]
    Size1GreaterThanSize2 { size1: u64, size2: u64 },
    /// Consistency from the empty tree was asked for; there is nothing to prove.
    #[error("a consistency proof from the empty tree (size1 = 0) is meaningless")]
    Size1Zero,
    /// Equal sizes need an empty proof.
    #[error("sizes are equal ({size}) but the proof has {found} hashes instead of none")]
    NonEmptyProofForEqualSizes { size: u64, found: usize },
}

impl VerifyError {
    /// Stable snake_case name.
    pub fn name(&self) -> &'static str {
        match self {
            VerifyError::IndexOutOfRange { .. } => "proof_index_out_of_range",
            VerifyError::WrongProofLength { .. } => "proof_wrong_length",
            VerifyError::RootMismatch { .. } => "proof_root_mismatch",
            VerifyError::FirstRootMismatch { .. } => "proof_first_root_mismatch",
            VerifyError::Size1GreaterThanSize2 { .. } => "proof_size1_greater_than_size2",
            VerifyError::Size1Zero => "proof_size1_zero",
            VerifyError::NonEmptyProofForEqualSizes { .. } => "proof_non_empty_for_equal_sizes",
        }
    }
}

/// An append-only RFC 6962 tree over leaf hashes that can answer for every size it has had.
///
/// It keeps every complete subtree, level by level: `levels[0]` holds the leaves and
/// `levels[k][i]` the hash of the 2^k leaves starting at leaf `i·2^k`. Memory is therefore about
/// 2 × 32 bytes per leaf (the leaves, plus half as many nodes one level up, plus a quarter…);
/// a log of ten million entries needs about 640 MB. [`Tree::push`] costs one hash amortised (at
/// most log₂ n); a root or a proof at any size costs O(log n) hashes, since it combines the
/// perfect subtrees from the binary decomposition of the size.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tree {
    levels: Vec<Vec<Hash32>>,
}

impl Tree {
    /// The empty tree.
    pub fn new() -> Tree {
        Tree::default()
    }

    /// Number of leaves.
    pub fn len(&self) -> u64 {
        self.levels.first().map_or(0, |leaves| leaves.len() as u64)
    }

    /// Whether the tree has no leaves.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The leaf hash at `index`, if held.
    pub fn leaf(&self, index: u64) -> Option<Hash32> {
        let index = usize::try_from(index).ok()?;
        self.levels.first()?.get(index).copied()
    }

    /// Appends a leaf hash (an entry hash), completing every subtree it closes.
    pub fn push(&mut self, leaf: Hash32) {
        let mut level = 0;
        let mut hash = leaf;
        loop {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            let nodes = &mut self.levels[level];
            nodes.push(hash);
            let index = nodes.len() - 1;
            if index.is_multiple_of(2) {
                return;
            }
            // A right child completes its parent.
            hash = node_hash(&nodes[index - 1], &nodes[index]);
            level += 1;
        }
    }

    /// The root at the current size.
    pub fn root(&self) -> Hash32 {
        self.range_hash(0, self.len())
    }

    /// The root the tree had when it held `size` leaves.
    pub fn root_at(&self, size: u64) -> Result<Hash32, ProofError> {
        self.check_size(size)?;
        Ok(self.range_hash(0, size))
    }

    /// The root of the tree made of this tree's first `keep` leaves followed by `suffix`, without
    /// copying the tree: what a replica's tree would be if its entries from `keep` on were
    /// replaced by others (a losing fork by the certified one, `adoption`). Requires
    /// `keep <= len()`. Costs O(log n) hashes for the kept part and one per suffix leaf.
    pub fn root_with_suffix(&self, keep: u64, suffix: &[Hash32]) -> Result<Hash32, ProofError> {
        self.check_size(keep)?;
        let size = keep + suffix.len() as u64;
        Ok(self.mixed_hash(0, size, keep, suffix))
    }

    /// `MTH` of leaves `start..start + n` of the sequence (this tree's first `keep` leaves, then
    /// `suffix`), following the RFC's recursion from the whole range, so every range of kept
    /// leaves it asks [`Tree::range_hash`] for is aligned.
    fn mixed_hash(&self, start: u64, n: u64, keep: u64, suffix: &[Hash32]) -> Hash32 {
        if n == 0 {
            return empty_root();
        }
        if start + n <= keep {
            return self.range_hash(start, n);
        }
        if start >= keep {
            let from = (start - keep) as usize;
            let mut tree = Tree::new();
            for leaf in &suffix[from..from + n as usize] {
                tree.push(*leaf);
            }
            return tree.root();
        }
        let k = split_point(n);
        node_hash(
            &self.mixed_hash(start, k, keep, suffix),
            &self.mixed_hash(start + k, n - k, keep, suffix),
        )
    }

    /// The inclusion proof (RFC 6962 §2.1.1 `PATH`) of leaf `index` in the tree of `size` leaves,
    /// lowest sibling first. Requires `index < size <= len()`.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash32>, ProofError> {
        self.check_size(size)?;
        if index >= size {
            return Err(ProofError::IndexOutOfRange { index, size });
        }
        let mut proof = Vec::with_capacity(64);
        self.path(index, 0, size, &mut proof);
        Ok(proof)
    }

    /// The consistency proof (RFC 6962 §2.1.2 `PROOF`) that the tree of `size1` leaves is a prefix
    /// of the tree of `size2` leaves. Requires `0 < size1 <= size2 <= len()`; equal sizes give an
    /// empty proof. From size 0 there is nothing to prove (every tree extends the empty one), and,
    /// as in transparency-dev/merkle, asking is refused rather than answered with an empty proof
    /// that a verifier would then have to special-case.
    pub fn consistency_proof(&self, size1: u64, size2: u64) -> Result<Vec<Hash32>, ProofError> {
        self.check_size(size2)?;
        if size1 > size2 {
            return Err(ProofError::Size1GreaterThanSize2 { size1, size2 });
        }
        if size1 == 0 {
            return Err(ProofError::Size1Zero);
        }
        let mut proof = Vec::with_capacity(64);
        if size1 < size2 {
            self.subproof(size1, 0, size2, true, &mut proof);
        }
        Ok(proof)
    }

    fn check_size(&self, size: u64) -> Result<(), ProofError> {
        let len = self.len();
        if size > len {
            return Err(ProofError::SizeBeyondTree { size, len });
        }
        Ok(())
    }

    /// RFC 6962 `PATH(m, D[start:start+n])`, appended to `out`.
    fn path(&self, m: u64, start: u64, n: u64, out: &mut Vec<Hash32>) {
        if n <= 1 {
            return;
        }
        let k = split_point(n);
        if m < k {
            self.path(m, start, k, out);
            out.push(self.range_hash(start + k, n - k));
        } else {
            self.path(m - k, start + k, n - k, out);
            out.push(self.range_hash(start, k));
        }
    }

    /// RFC 6962 `SUBPROOF(m, D[start:start+n], b)`, appended to `out`.
    fn subproof(&self, m: u64, start: u64, n: u64, whole_old_tree: bool, out: &mut Vec<Hash32>) {
        if m == n {
            if !whole_old_tree {
                out.push(self.range_hash(start, n));
            }
            return;
        }
        let k = split_point(n);
        if m <= k {
            self.subproof(m, start, k, whole_old_tree, out);
            out.push(self.range_hash(start + k, n - k));
        } else {
            self.subproof(m - k, start + k, n - k, false, out);
            out.push(self.range_hash(start, k));
        }
    }

    /// `MTH(D[start:start+n])`, combining the stored perfect subtrees of the binary decomposition
    /// of `n`, largest (leftmost) first. Every range the RFC recursion asks for starts at a
    /// multiple of the power of two just above `n`, so those subtrees are aligned and stored.
    fn range_hash(&self, start: u64, n: u64) -> Hash32 {
        assert!(start + n <= self.len(), "range beyond the tree");
        if n == 0 {
            return empty_root();
        }
        // Perfect subtrees left to right, then folded right to left: H(a, H(b, c)).
        let mut parts: [(u32, u64); 64] = [(0, 0); 64];
        let mut count = 0;
        let mut offset = start;
        for level in (0..64u32).rev() {
            if n & (1u64 << level) != 0 {
                assert!(offset.is_multiple_of(1u64 << level), "unaligned subtree");
                parts[count] = (level, offset >> level);
                count += 1;
                offset += 1u64 << level;
            }
        }
        let node = |(level, index): (u32, u64)| self.levels[level as usize][index as usize];
        let mut hash = node(parts[count - 1]);
        for &part in parts[..count - 1].iter().rev() {
            hash = node_hash(&node(part), &hash);
        }
        hash
    }
}

/// The largest power of two strictly below `n` (the RFC's `k`). Requires `n > 1`.
fn split_point(n: u64) -> u64 {
    1u64 << (63 - (n - 1).leading_zeros())
}

/// Walks the nodes on the path from node `index` of a level whose last node is `last` up to the
/// root, calling `step(position)` at every level that has a sibling. A node whose index is odd has
/// a left sibling; an even node below the last has a right sibling; the last node, when even, has
/// none and is carried up unchanged (the RFC's unbalanced right edge).
fn walk_up(mut index: u64, mut last: u64, mut step: impl FnMut(Side) -> bool) -> bool {
    while last > 0 {
        let side = if index & 1 == 1 {
            Some(Side::Left)
        } else if index < last {
            Some(Side::Right)
        } else {
            None
        };
        if let Some(side) = side
            && !step(side)
        {
            return false;
        }
        index >>= 1;
        last >>= 1;
    }
    true
}

/// Where a proof's sibling sits relative to the path.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Left,
    Right,
}

fn count_siblings(index: u64, last: u64) -> usize {
    let mut count = 0;
    walk_up(index, last, |_| {
        count += 1;
        true
    });
    count
}

/// The root a tree of `size` leaves must have if `proof` shows `leaf` at `index`.
///
/// Requires `index < size` (so `size > 0`) and a proof of exactly the RFC length for
/// (`index`, `size`); otherwise refuses with [`VerifyError::IndexOutOfRange`] or
/// [`VerifyError::WrongProofLength`] before hashing anything.
pub fn root_from_inclusion_proof(
    leaf: &Hash32,
    index: u64,
    size: u64,
    proof: &[Hash32],
) -> Result<Hash32, VerifyError> {
    if index >= size {
        return Err(VerifyError::IndexOutOfRange { index, size });
    }
    let last = size - 1;
    let expected = count_siblings(index, last);
    if proof.len() != expected {
        return Err(VerifyError::WrongProofLength {
            expected,
            found: proof.len(),
        });
    }
    let mut hash = *leaf;
    let mut siblings = proof.iter();
    walk_up(index, last, |side| {
        let Some(sibling) = siblings.next() else {
            return false;
        };
        hash = match side {
            Side::Left => node_hash(sibling, &hash),
            Side::Right => node_hash(&hash, sibling),
        };
        true
    });
    Ok(hash)
}

/// Checks that `proof` shows `leaf` at `index` in the tree of `size` leaves whose root is `root`.
///
/// Requires `index < size` (so `size > 0`: nothing is included in the empty tree) and a proof of
/// exactly the RFC length; a proof that leads elsewhere gives [`VerifyError::RootMismatch`] with
/// both roots.
pub fn verify_inclusion(
    leaf: &Hash32,
    index: u64,
    size: u64,
    proof: &[Hash32],
    root: &Hash32,
) -> Result<(), VerifyError> {
    let computed = root_from_inclusion_proof(leaf, index, size, proof)?;
    if computed != *root {
        return Err(VerifyError::RootMismatch {
            computed,
            expected: *root,
        });
    }
    Ok(())
}

/// Checks that the tree of `size1` leaves with root `root1` is a prefix of the tree of `size2`
/// leaves with root `root2`.
///
/// Requires `0 < size1 <= size2`. Equal sizes require an empty proof and equal roots. Otherwise
/// the proof must have exactly the RFC length, rebuild `root1` (else
/// [`VerifyError::FirstRootMismatch`]) and `root2` (else [`VerifyError::RootMismatch`]). Size 0
/// is refused ([`VerifyError::Size1Zero`]): every tree extends the empty tree, so a caller with
/// nothing cosigned yet has nothing to check and should not call this.
///
/// How it works: the proof is the root of the old tree's last perfect subtree (omitted when the
/// old tree is itself perfect, as the verifier knows it), then that subtree's siblings on its way
/// up the new tree. Left siblings lie wholly inside the old tree and rebuild both roots; right
/// siblings lie beyond it and rebuild only the new one.
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    proof: &[Hash32],
    root1: &Hash32,
    root2: &Hash32,
) -> Result<(), VerifyError> {
    if size1 > size2 {
        return Err(VerifyError::Size1GreaterThanSize2 { size1, size2 });
    }
    if size1 == 0 {
        return Err(VerifyError::Size1Zero);
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(VerifyError::NonEmptyProofForEqualSizes {
                size: size1,
                found: proof.len(),
            });
        }
        if root1 != root2 {
            return Err(VerifyError::RootMismatch {
                computed: *root1,
                expected: *root2,
            });
        }
        return Ok(());
    }
    // The old tree's last perfect subtree sits at level `shift`, as node `index` of that level.
    let shift = size1.trailing_zeros();
    let index = (size1 - 1) >> shift;
    let last = (size2 - 1) >> shift;
    let old_is_perfect = index == 0;
    let seed_len = usize::from(!old_is_perfect);
    let expected = seed_len + count_siblings(index, last);
    if proof.len() != expected {
        return Err(VerifyError::WrongProofLength {
            expected,
            found: proof.len(),
        });
    }
    let (seed, siblings) = if old_is_perfect {
        (*root1, proof)
    } else {
        (proof[0], &proof[1..])
    };
    let (mut old, mut new) = (seed, seed);
    let mut siblings = siblings.iter();
    walk_up(index, last, |side| {
        let Some(sibling) = siblings.next() else {
            return false;
        };
        match side {
            Side::Left => {
                old = node_hash(sibling, &old);
                new = node_hash(sibling, &new);
            }
            Side::Right => new = node_hash(&new, sibling),
        }
        true
    });
    if old != *root1 {
        return Err(VerifyError::FirstRootMismatch {
            computed: old,
            expected: *root1,
        });
    }
    if new != *root2 {
        return Err(VerifyError::RootMismatch {
            computed: new,
            expected: *root2,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn h(s: &str) -> Hash32 {
        crate::types::parse_hash32(s).unwrap()
    }

    // ---------------------------------------------------------------------------------------
    // Naive reference, transcribed from RFC 6962 §2.1 over the leaf *data* (not leaf hashes).
    // ---------------------------------------------------------------------------------------

    /// k: the largest power of two smaller than n.
    fn ref_k(n: usize) -> usize {
        let mut k = 1;
        while k * 2 < n {
            k *= 2;
        }
        k
    }

    /// MTH(D[n]).
    fn ref_mth(d: &[Vec<u8>]) -> Hash32 {
        match d.len() {
            0 => Sha256::digest([]).into(),
            1 => {
                let mut x = vec![0x00];
                x.extend_from_slice(&d[0]);
                Sha256::digest(&x).into()
            }
            n => {
                let k = ref_k(n);
                let mut x = vec![0x01];
                x.extend_from_slice(&ref_mth(&d[..k]));
                x.extend_from_slice(&ref_mth(&d[k..]));
                Sha256::digest(&x).into()
            }
        }
    }

    /// PATH(m, D[n]).
    fn ref_path(m: usize, d: &[Vec<u8>]) -> Vec<Hash32> {
        let n = d.len();
        if n == 1 {
            return vec![];
        }
        let k = ref_k(n);
        if m < k {
            let mut p = ref_path(m, &d[..k]);
            p.push(ref_mth(&d[k..]));
            p
        } else {
            let mut p = ref_path(m - k, &d[k..]);
            p.push(ref_mth(&d[..k]));
            p
        }
    }

    /// PROOF(m, D[n]) = SUBPROOF(m, D[n], true).
    fn ref_proof(m: usize, d: &[Vec<u8>]) -> Vec<Hash32> {
        ref_subproof(m, d, true)
    }

    fn ref_subproof(m: usize, d: &[Vec<u8>], b: bool) -> Vec<Hash32> {
        let n = d.len();
        if m == n {
            return if b { vec![] } else { vec![ref_mth(d)] };
        }
        let k = ref_k(n);
        if m <= k {
            let mut p = ref_subproof(m, &d[..k], b);
            p.push(ref_mth(&d[k..]));
            p
        } else {
            let mut p = ref_subproof(m - k, &d[k..], false);
            p.push(ref_mth(&d[..k]));
            p
        }
    }

    fn data(n: usize) -> Vec<Vec<u8>> {
        (0..n).map(|i| (i as u64).to_le_bytes().to_vec()).collect()
    }

    fn tree_of(d: &[Vec<u8>]) -> Tree {
        let mut t = Tree::new();
        for x in d {
            t.push(leaf_hash(x));
        }
        t
    }

    // ---------------------------------------------------------------------------------------
    // (a) The Certificate Transparency vectors, as published in transparency-dev/merkle
    //     (testonly/constants.go, cmd/proofgen/main.go, testdata/{inclusion,consistency}/).
    // ---------------------------------------------------------------------------------------

    fn ct_leaves() -> Vec<Vec<u8>> {
        [
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        ]
        .iter()
        .map(|s| hex::decode(s).unwrap())
        .collect()
    }

    /// Roots of the trees of sizes 0..=8.
    const CT_ROOTS: [&str; 9] = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    /// Leaf hashes of the eight leaves.
    const CT_LEAF_HASHES: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ];

    /// (index, size, proof): 0-based leaf indices.
    fn ct_inclusion() -> Vec<(u64, u64, Vec<Hash32>)> {
        vec![
            (0, 1, vec![]),
            (
                0,
                8,
                vec![
                    h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
                    h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                    h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
                ],
            ),
            (
                5,
                8,
                vec![
                    h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
                    h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
                ],
            ),
            (
                2,
                3,
                vec![h(
                    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
                )],
            ),
            (
                1,
                5,
                vec![
                    h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
                    h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                    h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
                ],
            ),
        ]
    }

    /// (size1, size2, proof).
    fn ct_consistency() -> Vec<(u64, u64, Vec<Hash32>)> {
        vec![
            (1, 1, vec![]),
            (
                1,
                8,
                vec![
                    h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
                    h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                    h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
                ],
            ),
            (
                6,
                8,
                vec![
                    h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
                    h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
                ],
            ),
            (
                2,
                5,
                vec![
                    h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                    h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
                ],
            ),
            (
                6,
                7,
                vec![
                    h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
                    h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
                    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
                ],
            ),
        ]
    }

    fn ct_root(size: u64) -> Hash32 {
        h(CT_ROOTS[size as usize])
    }

    #[test]
    fn hashes_match_rfc6962_vectors() {
        assert_eq!(empty_root(), h(CT_ROOTS[0]));
        assert_eq!(leaf_hash(b""), h(CT_LEAF_HASHES[0]));
        // From transparency-dev/merkle rfc6962_test.go.
        assert_eq!(
            leaf_hash(b"L123456"),
            h("395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56")
        );
        // Interior nodes of the CT tree: leaves 0..2, and leaves 0..4 from 0..2 and 2..4.
        let node01 = node_hash(&h(CT_LEAF_HASHES[0]), &h(CT_LEAF_HASHES[1]));
        assert_eq!(node01, ct_root(2));
        let node23 = node_hash(&h(CT_LEAF_HASHES[2]), &h(CT_LEAF_HASHES[3]));
        assert_eq!(node_hash(&node01, &node23), ct_root(4));
        for (leaf, want) in ct_leaves().iter().zip(CT_LEAF_HASHES) {
            assert_eq!(leaf_hash(leaf), h(want));
        }
    }

    #[test]
    fn ct_roots_at_every_size() {
        let leaves = ct_leaves();
        let mut tree = Tree::new();
        assert_eq!(tree.root(), ct_root(0));
        for (i, leaf) in leaves.iter().enumerate() {
            tree.push(leaf_hash(leaf));
            assert_eq!(tree.root(), ct_root(i as u64 + 1), "size {}", i + 1);
        }
        for size in 0..=8 {
            assert_eq!(tree.root_at(size).unwrap(), ct_root(size), "size {size}");
            assert_eq!(ref_mth(&leaves[..size as usize]), ct_root(size));
        }
        assert_eq!(
            tree.root_at(9),
            Err(ProofError::SizeBeyondTree { size: 9, len: 8 })
        );
    }

    #[test]
    fn ct_inclusion_proofs_are_generated_and_verify() {
        let tree = tree_of(&ct_leaves());
        for (index, size, proof) in ct_inclusion() {
            assert_eq!(tree.inclusion_proof(index, size).unwrap(), proof);
            let leaf = h(CT_LEAF_HASHES[index as usize]);
            assert_eq!(
                verify_inclusion(&leaf, index, size, &proof, &ct_root(size)),
                Ok(())
            );
        }
    }

    #[test]
    fn ct_consistency_proofs_are_generated_and_verify() {
        let tree = tree_of(&ct_leaves());
        for (size1, size2, proof) in ct_consistency() {
            assert_eq!(tree.consistency_proof(size1, size2).unwrap(), proof);
            assert_eq!(
                verify_consistency(size1, size2, &proof, &ct_root(size1), &ct_root(size2)),
                Ok(()),
                "{size1} -> {size2}"
            );
        }
    }

    // ---------------------------------------------------------------------------------------
    // (b) Vectors named by their fault, derived from each CT happy path as transparency-dev's
    //     testdata/ does. Each must be refused.
    // ---------------------------------------------------------------------------------------

    const GARBAGE: Hash32 = [0xab; 32];

    #[test]
    fn faulty_inclusion_vectors_are_refused() {
        for (index, size, proof) in ct_inclusion() {
            let leaf = h(CT_LEAF_HASHES[index as usize]);
            let root = ct_root(size);
            let with = |f: &dyn Fn(&mut Vec<Hash32>)| {
                let mut p = proof.clone();
                f(&mut p);
                p
            };
            let mut faults: Vec<(String, Result<(), VerifyError>)> = vec![
                (
                    "wrong-leaf".into(),
                    verify_inclusion(&GARBAGE, index, size, &proof, &root),
                ),
                (
                    "random-root".into(),
                    verify_inclusion(&leaf, index, size, &proof, &GARBAGE),
                ),
                (
                    "empty-root".into(),
                    verify_inclusion(&leaf, index, size, &proof, &empty_root()),
                ),
                (
                    "leafIdx-plus-1".into(),
                    verify_inclusion(&leaf, index + 1, size, &proof, &root),
                ),
                (
                    "leafIdx-XOR-2".into(),
                    verify_inclusion(&leaf, index ^ 2, size, &proof, &root),
                ),
                (
                    "treeSize-mul-2".into(),
                    verify_inclusion(&leaf, index, size * 2, &proof, &root),
                ),
                (
                    "treeSize-div-2".into(),
                    verify_inclusion(&leaf, index, size / 2, &proof, &root),
                ),
                (
                    "trailing-garbage".into(),
                    verify_inclusion(&leaf, index, size, &with(&|p| p.push(GARBAGE)), &root),
                ),
                (
                    "trailing-root".into(),
                    verify_inclusion(&leaf, index, size, &with(&|p| p.push(root)), &root),
                ),
                (
                    "preceding-garbage".into(),
                    verify_inclusion(&leaf, index, size, &with(&|p| p.insert(0, GARBAGE)), &root),
                ),
                (
                    "preceding-root".into(),
                    verify_inclusion(&leaf, index, size, &with(&|p| p.insert(0, root)), &root),
                ),
            ];
            if index > 0 {
                faults.push((
                    "leafIdx-sub-1".into(),
                    verify_inclusion(&leaf, index - 1, size, &proof, &root),
                ));
            }
            if !proof.is_empty() {
                faults.push((
                    "truncated-proof".into(),
                    verify_inclusion(&leaf, index, size, &proof[..proof.len() - 1], &root),
                ));
                faults.push((
                    "removed-component".into(),
                    verify_inclusion(&leaf, index, size, &proof[1..], &root),
                ));
                faults.push((
                    "inserted-component".into(),
                    verify_inclusion(&leaf, index, size, &with(&|p| p.insert(1, GARBAGE)), &root),
                ));
            }
            if proof.len() > 1 {
                faults.push((
                    "swapped-components".into(),
                    verify_inclusion(&leaf, index, size, &with(&|p| p.swap(0, 1)), &root),
                ));
            }
            for i in 0..proof.len() {
                faults.push((
                    format!("modified-proof[{i}]-bit-3"),
                    verify_inclusion(&leaf, index, size, &with(&|p| p[i][0] ^= 8), &root),
                ));
            }
            for (name, result) in faults {
                assert!(result.is_err(), "{index}/{size}: {name} was accepted");
            }
        }
        // The refusals carry their evidence.
        let leaf = h(CT_LEAF_HASHES[0]);
        let (_, _, proof) = &ct_inclusion()[1];
        assert_eq!(
            verify_inclusion(&GARBAGE, 0, 8, proof, &ct_root(8)).map_err(|e| e.name()),
            Err("proof_root_mismatch")
        );
        assert_eq!(
            verify_inclusion(&leaf, 0, 8, &proof[..2], &ct_root(8)),
            Err(VerifyError::WrongProofLength {
                expected: 3,
                found: 2
            })
        );
        assert_eq!(
            verify_inclusion(&leaf, 8, 8, proof, &ct_root(8)),
            Err(VerifyError::IndexOutOfRange { index: 8, size: 8 })
        );
        let Err(VerifyError::RootMismatch { computed, expected }) =
            verify_inclusion(&leaf, 0, 8, proof, &GARBAGE)
        else {
            panic!("random root accepted");
        };
        assert_eq!((computed, expected), (ct_root(8), GARBAGE));
    }

    #[test]
    fn faulty_consistency_vectors_are_refused() {
        for (size1, size2, proof) in ct_consistency() {
            let (root1, root2) = (ct_root(size1), ct_root(size2));
            let with = |f: &dyn Fn(&mut Vec<Hash32>)| {
                let mut p = proof.clone();
                f(&mut p);
                p
            };
            let v = |s1: u64, s2: u64, p: &[Hash32], r1: &Hash32, r2: &Hash32| {
                verify_consistency(s1, s2, p, r1, r2)
            };
            let mut faults: Vec<(String, Result<(), VerifyError>)> = vec![
                (
                    "wrong-root1".into(),
                    v(size1, size2, &proof, &GARBAGE, &root2),
                ),
                (
                    "wrong-root2".into(),
                    v(size1, size2, &proof, &root1, &GARBAGE),
                ),
                (
                    "size1-plus-1".into(),
                    v(size1 + 1, size2, &proof, &root1, &root2),
                ),
                (
                    "size1-sub-1".into(),
                    v(size1 - 1, size2, &proof, &root1, &root2),
                ),
                (
                    "size2-mul-2".into(),
                    v(size1, size2 * 2, &proof, &root1, &root2),
                ),
                (
                    "trailing-garbage".into(),
                    v(size1, size2, &with(&|p| p.push(GARBAGE)), &root1, &root2),
                ),
                (
                    "trailing-root1".into(),
                    v(size1, size2, &with(&|p| p.push(root1)), &root1, &root2),
                ),
                (
                    "trailing-root2".into(),
                    v(size1, size2, &with(&|p| p.push(root2)), &root1, &root2),
                ),
                (
                    "preceding-garbage".into(),
                    v(
                        size1,
                        size2,
                        &with(&|p| p.insert(0, GARBAGE)),
                        &root1,
                        &root2,
                    ),
                ),
                (
                    "preceding-root1".into(),
                    v(size1, size2, &with(&|p| p.insert(0, root1)), &root1, &root2),
                ),
                (
                    "preceding-root2".into(),
                    v(size1, size2, &with(&|p| p.insert(0, root2)), &root1, &root2),
                ),
            ];
            if root1 != root2 {
                faults.push((
                    "swapped-roots".into(),
                    v(size1, size2, &proof, &root2, &root1),
                ));
            }
            if size1 ^ 2 <= size2 && size1 ^ 2 != size1 {
                faults.push((
                    "size1-XOR-2".into(),
                    v(size1 ^ 2, size2, &proof, &root1, &root2),
                ));
            }
            if size2 / 2 >= size1 && size2 / 2 != size2 {
                faults.push((
                    "size2-div-2".into(),
                    v(size1, size2 / 2, &proof, &root1, &root2),
                ));
            }
            if !proof.is_empty() {
                faults.push(("empty-proof".into(), v(size1, size2, &[], &root1, &root2)));
                faults.push((
                    "truncated-proof".into(),
                    v(size1, size2, &proof[..proof.len() - 1], &root1, &root2),
                ));
                faults.push((
                    "preceding-proof-0".into(),
                    v(size1, size2, &with(&|p| p.insert(0, p[0])), &root1, &root2),
                ));
            }
            for i in 0..proof.len() {
                faults.push((
                    format!("modified-proof[{i}]-bit-4"),
                    v(size1, size2, &with(&|p| p[i][0] ^= 16), &root1, &root2),
                ));
            }
            for (name, result) in faults {
                assert!(result.is_err(), "{size1}->{size2}: {name} was accepted");
            }
        }
        // Edge cases of transparency-dev's testdata/consistency/additional, with their evidence.
        let (r1, r8) = (ct_root(1), ct_root(8));
        assert_eq!(
            verify_consistency(0, 1, &[empty_root()], &empty_root(), &empty_root()),
            Err(VerifyError::Size1Zero)
        );
        assert_eq!(
            verify_consistency(0, 0, &[], &empty_root(), &empty_root()),
            Err(VerifyError::Size1Zero)
        );
        assert_eq!(
            verify_consistency(2, 1, &[], &r1, &r1),
            Err(VerifyError::Size1GreaterThanSize2 { size1: 2, size2: 1 })
        );
        assert_eq!(verify_consistency(1, 1, &[], &GARBAGE, &GARBAGE), Ok(()));
        assert_eq!(
            verify_consistency(1, 1, &[], &r1, &GARBAGE),
            Err(VerifyError::RootMismatch {
                computed: r1,
                expected: GARBAGE
            })
        );
        assert_eq!(
            verify_consistency(1, 1, &[r1], &r1, &r1),
            Err(VerifyError::NonEmptyProofForEqualSizes { size: 1, found: 1 })
        );
        assert_eq!(
            verify_consistency(1, 2, &[], &r1, &GARBAGE),
            Err(VerifyError::WrongProofLength {
                expected: 1,
                found: 0
            })
        );
        let (_, _, proof) = &ct_consistency()[2];
        assert_eq!(
            verify_consistency(6, 8, proof, &r8, &ct_root(6)).map_err(|e| e.name()),
            Err("proof_first_root_mismatch"),
            "swapped roots"
        );
    }

    #[test]
    fn tree_refuses_impossible_questions() {
        let tree = tree_of(&ct_leaves());
        assert_eq!(
            tree.inclusion_proof(8, 8),
            Err(ProofError::IndexOutOfRange { index: 8, size: 8 })
        );
        assert_eq!(
            tree.inclusion_proof(0, 0),
            Err(ProofError::IndexOutOfRange { index: 0, size: 0 })
        );
        assert_eq!(
            tree.inclusion_proof(0, 9),
            Err(ProofError::SizeBeyondTree { size: 9, len: 8 })
        );
        assert_eq!(
            tree.consistency_proof(5, 4),
            Err(ProofError::Size1GreaterThanSize2 { size1: 5, size2: 4 })
        );
        assert_eq!(tree.consistency_proof(0, 4), Err(ProofError::Size1Zero));
        assert_eq!(
            tree.consistency_proof(1, u64::MAX),
            Err(ProofError::SizeBeyondTree {
                size: u64::MAX,
                len: 8
            })
        );
        assert_eq!(tree.consistency_proof(8, 8), Ok(vec![]));
        assert_eq!(
            tree.root_with_suffix(9, &[]),
            Err(ProofError::SizeBeyondTree { size: 9, len: 8 })
        );
        assert_eq!(tree.root_with_suffix(8, &[]), Ok(tree.root()));
        assert_eq!(Tree::new().root(), empty_root());
        assert_eq!(Tree::new().root_at(0), Ok(empty_root()));
        assert!(Tree::new().is_empty());
        assert_eq!(tree.leaf(7), Some(h(CT_LEAF_HASHES[7])));
        assert_eq!(tree.leaf(8), None);
    }

    #[test]
    fn verification_never_panics_on_extreme_inputs() {
        let long = vec![GARBAGE; 1000];
        let m = u64::MAX;
        for (index, size) in [
            (0, 0),
            (0, 1),
            (m - 1, m),
            (m, m),
            (0, m),
            (m / 2, m),
            (1, 2),
        ] {
            for proof in [&long[..], &long[..64], &long[..63], &[]] {
                let _ = verify_inclusion(&GARBAGE, index, size, proof, &GARBAGE);
            }
        }
        for (s1, s2) in [
            (0, 0),
            (0, m),
            (1, m),
            (m, m),
            (m - 1, m),
            (m, 1),
            (m / 2 + 1, m),
        ] {
            for proof in [&long[..], &long[..64], &long[..2], &[]] {
                let _ = verify_consistency(s1, s2, proof, &GARBAGE, &GARBAGE);
            }
        }
        assert_eq!(
            verify_inclusion(&GARBAGE, 0, 2, &long, &GARBAGE),
            Err(VerifyError::WrongProofLength {
                expected: 1,
                found: 1000
            })
        );
        // A full-height path: 64 siblings for the first leaf of a tree of 2^64 - 1 leaves.
        assert!(matches!(
            verify_inclusion(&GARBAGE, 0, m, &long[..64], &GARBAGE),
            Err(VerifyError::RootMismatch { .. })
        ));
    }

    // ---------------------------------------------------------------------------------------
    // (c) Property tests against the naive reference.
    // ---------------------------------------------------------------------------------------

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn tree_matches_reference_at_every_size(n in 1usize..300) {
            let d = data(n);
            let tree = tree_of(&d);
            prop_assert_eq!(tree.len(), n as u64);
            for size in 0..=n {
                prop_assert_eq!(tree.root_at(size as u64).unwrap(), ref_mth(&d[..size]));
            }
            let root = ref_mth(&d);
            for m in 0..n {
                let proof = tree.inclusion_proof(m as u64, n as u64).unwrap();
                prop_assert_eq!(&proof, &ref_path(m, &d));
                prop_assert_eq!(verify_inclusion(&leaf_hash(&d[m]), m as u64, n as u64, &proof, &root), Ok(()));
            }
        }

        #[test]
        fn root_with_suffix_is_the_root_of_the_spliced_leaves(n in 0usize..200, keep in any::<prop::sample::Index>(), extra in 0usize..70) {
            let d = data(n);
            let tree = tree_of(&d);
            let keep = if n == 0 { 0 } else { keep.index(n + 1) };
            // The replacement leaves differ from the tree's own past `keep`.
            let suffix: Vec<Vec<u8>> = (0..extra).map(|i| format!("other {i}").into_bytes()).collect();
            let spliced: Vec<Vec<u8>> = d[..keep].iter().chain(&suffix).cloned().collect();
            let hashes: Vec<Hash32> = suffix.iter().map(|x| leaf_hash(x)).collect();
            prop_assert_eq!(tree.root_with_suffix(keep as u64, &hashes).unwrap(), ref_mth(&spliced));
        }

        #[test]
        fn inclusion_at_earlier_sizes_matches_reference(n in 1usize..300, picks in prop::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>()), 1..16)) {
            let d = data(n);
            let tree = tree_of(&d);
            for (s, i) in picks {
                let size = s.index(n) + 1;
                let index = i.index(size);
                let proof = tree.inclusion_proof(index as u64, size as u64).unwrap();
                prop_assert_eq!(&proof, &ref_path(index, &d[..size]));
                prop_assert_eq!(
                    verify_inclusion(&leaf_hash(&d[index]), index as u64, size as u64, &proof, &ref_mth(&d[..size])),
                    Ok(())
                );
            }
        }

        #[test]
        fn consistency_matches_reference(n in 1usize..300, picks in prop::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>()), 1..16)) {
            let d = data(n);
            let tree = tree_of(&d);
            for (a, b) in picks {
                let size2 = a.index(n) + 1;
                let size1 = b.index(size2) + 1;
                let proof = tree.consistency_proof(size1 as u64, size2 as u64).unwrap();
                let want = if size1 == size2 { vec![] } else { ref_proof(size1, &d[..size2]) };
                prop_assert_eq!(&proof, &want);
                prop_assert_eq!(
                    verify_consistency(size1 as u64, size2 as u64, &proof, &ref_mth(&d[..size1]), &ref_mth(&d[..size2])),
                    Ok(())
                );
            }
        }

        #[test]
        fn any_flipped_bit_breaks_an_inclusion_proof(n in 2usize..300, i in any::<prop::sample::Index>(), which in any::<prop::sample::Index>(), bit in 0usize..256) {
            let d = data(n);
            let tree = tree_of(&d);
            let index = i.index(n);
            let mut proof = tree.inclusion_proof(index as u64, n as u64).unwrap();
            let k = which.index(proof.len());
            proof[k][bit / 8] ^= 1 << (bit % 8);
            prop_assert!(verify_inclusion(&leaf_hash(&d[index]), index as u64, n as u64, &proof, &tree.root()).is_err());
        }

        #[test]
        fn any_flipped_bit_breaks_a_consistency_proof(n in 2usize..300, s in any::<prop::sample::Index>(), which in any::<prop::sample::Index>(), bit in 0usize..256) {
            let d = data(n);
            let tree = tree_of(&d);
            let size1 = s.index(n - 1) + 1; // 1..n-1, so the proof is never empty
            let mut proof = tree.consistency_proof(size1 as u64, n as u64).unwrap();
            let k = which.index(proof.len());
            proof[k][bit / 8] ^= 1 << (bit % 8);
            prop_assert!(verify_consistency(size1 as u64, n as u64, &proof, &tree.root_at(size1 as u64).unwrap(), &tree.root()).is_err());
        }

        #[test]
        fn verification_of_arbitrary_input_never_panics(
            index in any::<u64>(), size in any::<u64>(), size2 in any::<u64>(),
            proof in prop::collection::vec(any::<[u8; 32]>(), 0..80),
            leaf in any::<[u8; 32]>(), root in any::<[u8; 32]>(),
        ) {
            let _ = verify_inclusion(&leaf, index, size, &proof, &root);
            let _ = verify_inclusion(&leaf, index % size.max(1), size, &proof, &root);
            let _ = verify_consistency(index, size, &proof, &leaf, &root);
            let _ = verify_consistency(size.min(size2), size.max(size2), &proof, &leaf, &root);
        }
    }
}
