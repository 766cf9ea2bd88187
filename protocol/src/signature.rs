//! The one ed25519 verification rule of the protocol, for single signatures and for batches, and
//! the rule for which public keys a network may name.
//!
//! Every signature anywhere in hukou-ledger (entries, checkpoints, cosignatures, certificates,
//! registration certificates, fraud proofs, the genesis) is judged by [`verify`] or
//! [`verify_batch`], and the two give the same verdict on every input. Signing stays with
//! ed25519-dalek (RFC 8032); only verification is defined here, because RFC 8032 leaves it
//! ambiguous (cofactored or not, canonical encodings or not) and implementations differ
//! ("Taming the many EdDSAs", Chalkias, Garillot and Nikolaenko, 2020). ed25519-dalek's own batch
//! verification uses the cofactorless equation, so a signature whose R carries a small-order
//! component could pass or fail depending on the rest of the batch, while `verify_strict` always
//! refuses it: a member could make honest nodes disagree about its entry.
//!
//! # The rule: ZIP-215
//!
//! A signature `R_bytes ‖ s_bytes` (32 + 32 bytes) on message `M` under the public key encoded
//! as `A_bytes` is valid if and only if:
//!
//! 1. `s_bytes`, read as a little-endian integer, is less than the group order
//!    `l = 2^252 + 27742317777372353535851937790883648493` (a non-canonical `s` is refused);
//! 2. `A_bytes` and `R_bytes` decode to curve points `A` and `R`; non-canonical encodings
//!    (a y-coordinate of `p` or more, the sign bit set on x = 0) decode and are accepted, and
//!    small-order points are not refused here;
//! 3. with `k = SHA-512(R_bytes ‖ A_bytes ‖ M)` read as a little-endian integer mod `l` (the bytes
//!    as given, never re-encoded), the cofactored equation `[8]([s]B − [k]A − R) = 0` holds.
//!
//! This is ZIP-215 (Zcash), the rule of the `ed25519-zebra` and `ed25519-consensus` crates; the
//! unit tests check it against `ed25519-consensus` on every crafted case.
//!
//! # Why single and batch verdicts agree
//!
//! [`verify_batch`] checks `[8](−(Σ zᵢsᵢ)B + Σ zᵢRᵢ + Σ (zᵢkᵢ)Aᵢ) = 0` for 128-bit coefficients
//! `zᵢ`. Write `Qᵢ = [s]ᵢB − [kᵢ]Aᵢ − Rᵢ`; the batch point is `−[8]Σ zᵢQᵢ`. If every signature
//! is valid, every `[8]Qᵢ` is zero, so the batch holds whatever the `zᵢ`: a batch never refuses
//! a valid signature. If one is invalid, `[8]Qᵢ` is a non-zero point of the prime-order subgroup
//! (multiplying by 8 removes every small-order component, which is what breaks the cofactorless
//! batch), and the sum vanishes for at most a 2^-128 fraction of the coefficients. A batch that
//! fails is re-checked in smaller batches and finally one signature at a time with the same code
//! as [`verify`], so a `false` verdict is always the single verdict.
//!
//! The coefficients are derived from a SHA-512 transcript of every item in the batch (as
//! ed25519-dalek's batch does): deterministic, so the protocol stays free of randomness, and
//! fixed only once every input is, so no one can choose inputs for coefficients known ahead.
//!
//! # Public keys
//!
//! [`check_key`] is the rule for keys a network names (members, administrator): a key must be a
//! canonical encoding of a point of the prime-order subgroup. Under the rule above a small-order
//! key verifies signatures anyone can make, and a non-canonical or mixed-order key has more than
//! one verifying form; an honest key (`[a]B` for a secret `a`) is never any of these.

use std::collections::BTreeMap;

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use ed25519_dalek::VerifyingKey;
use sha2::{Digest as _, Sha512};

use crate::entry::Signature;

/// Signatures per batch equation on the first, optimistic pass. Above ~190 points
/// curve25519-dalek switches to Pippenger's multiscalar multiplication, which is cheaper per
/// signature than the smaller equations (measured: docs/BENCHMARKS.md).
pub const BATCH_WHOLE_ITEMS: usize = 1024;

/// Signatures per batch equation when searching a failed batch: small enough that one bad
/// signature costs little re-checking.
pub const BATCH_CHUNK_ITEMS: usize = 64;

/// Domain separation of the transcript the batch coefficients are derived from.
const BATCH_TRANSCRIPT_DOMAIN: &[u8] = b"hukou-ledger ed25519 zip215 batch v1";

/// Whether `signature` is valid on `message` under `key`, by the ZIP-215 rule of this module.
pub fn verify(key: &VerifyingKey, message: &[u8], signature: &Signature) -> bool {
    Prepared::new(key, message, signature).is_some_and(|p| p.holds_alone())
}

/// One signature to check in a batch.
#[derive(Clone, Copy, Debug)]
pub struct Item<'a> {
    pub key: &'a VerifyingKey,
    pub message: &'a [u8],
    pub signature: &'a Signature,
}

/// For each item, whether its signature is valid: exactly [`verify`]'s verdict, computed with
/// batch equations of up to [`BATCH_WHOLE_ITEMS`], then [`BATCH_CHUNK_ITEMS`], then one by one
/// inside a chunk that failed. Deterministic: no randomness, the same items always give the same
/// verdicts.
pub fn verify_batch(items: &[Item<'_>]) -> Vec<bool> {
    let mut verdicts = vec![false; items.len()];
    // A signature whose s is not canonical or whose R does not decode is invalid alone; it never
    // enters an equation.
    let prepared: Vec<(usize, Prepared)> = items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| Some((i, Prepared::new(item.key, item.message, item.signature)?)))
        .collect();
    for part in prepared.chunks(BATCH_WHOLE_ITEMS) {
        if part.len() > BATCH_CHUNK_ITEMS && batch_holds(part) {
            for (i, _) in part {
                verdicts[*i] = true;
            }
            continue;
        }
        for chunk in part.chunks(BATCH_CHUNK_ITEMS) {
            if chunk.len() > 1 && batch_holds(chunk) {
                for (i, _) in chunk {
                    verdicts[*i] = true;
                }
            } else {
                for (i, p) in chunk {
                    verdicts[*i] = p.holds_alone();
                }
            }
        }
    }
    verdicts
}

/// A signature decoded for the equation: rules 1 and 2 hold, `k` is computed.
#[allow(non_snake_case)]
struct Prepared {
    /// `A`, decompressed (a [`VerifyingKey`] holds it decompressed).
    A: EdwardsPoint,
    /// `A_bytes`, as the key was given: coefficients of one key are summed in a batch.
    A_bytes: [u8; 32],
    R: EdwardsPoint,
    s: Scalar,
    /// `SHA-512(R_bytes ‖ A_bytes ‖ M)`, kept whole for the batch transcript.
    hram: [u8; 64],
    /// `hram` mod l.
    k: Scalar,
    /// `s_bytes`, for the batch transcript.
    s_bytes: [u8; 32],
}

impl Prepared {
    /// Rules 1 and 2, and `k`; `None` if the signature is invalid on these alone.
    #[allow(non_snake_case)]
    fn new(key: &VerifyingKey, message: &[u8], signature: &Signature) -> Option<Prepared> {
        let R_bytes: [u8; 32] = signature.0[..32].try_into().expect("32 bytes");
        let s_bytes: [u8; 32] = signature.0[32..].try_into().expect("32 bytes");
        // Rule 1: s < l.
        let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes))?;
        // Rule 2: R decodes; curve25519-dalek's decompression accepts exactly ZIP-215's
        // encodings. (A was decoded the same way when the `VerifyingKey` was made.)
        let R = CompressedEdwardsY(R_bytes).decompress()?;
        let A_bytes = key.to_bytes();
        let hram: [u8; 64] = Sha512::new()
            .chain_update(R_bytes)
            .chain_update(A_bytes)
            .chain_update(message)
            .finalize()
            .into();
        Some(Prepared {
            A: key.to_edwards(),
            A_bytes,
            R,
            s,
            hram,
            k: Scalar::from_bytes_mod_order_wide(&hram),
            s_bytes,
        })
    }

    /// Rule 3 for this signature alone: `[8]([s]B − [k]A − R) = 0`.
    fn holds_alone(&self) -> bool {
        let sb_minus_ka =
            EdwardsPoint::vartime_double_scalar_mul_basepoint(&self.k, &-self.A, &self.s);
        (sb_minus_ka - self.R).mul_by_cofactor().is_identity()
    }
}

/// Rule 3 for every item at once: `[8](−(Σ zᵢsᵢ)B + Σ zᵢRᵢ + Σ_A (Σ_{i: Aᵢ = A} zᵢkᵢ)A) = 0`,
/// the terms of one key summed into one (a batch of one log has one key). True if every item
/// holds alone; false, but for a 2^-128 chance, if any does not.
#[allow(non_snake_case)]
fn batch_holds(items: &[(usize, Prepared)]) -> bool {
    let z = coefficients(items);
    let mut B_coefficient = Scalar::ZERO;
    let mut R_coefficients = Vec::with_capacity(items.len());
    let mut Rs = Vec::with_capacity(items.len());
    let mut key_index: BTreeMap<[u8; 32], usize> = BTreeMap::new();
    let mut A_coefficients: Vec<Scalar> = Vec::new();
    let mut As: Vec<EdwardsPoint> = Vec::new();
    for ((_, p), z) in items.iter().zip(z) {
        B_coefficient -= z * p.s;
        R_coefficients.push(z);
        Rs.push(p.R);
        let at = *key_index.entry(p.A_bytes).or_insert_with(|| {
            A_coefficients.push(Scalar::ZERO);
            As.push(p.A);
            As.len() - 1
        });
        A_coefficients[at] += z * p.k;
    }
    let check = EdwardsPoint::vartime_multiscalar_mul(
        std::iter::once(&B_coefficient)
            .chain(&A_coefficients)
            .chain(&R_coefficients),
        std::iter::once(&ED25519_BASEPOINT_POINT)
            .chain(&As)
            .chain(&Rs),
    );
    check.mul_by_cofactor().is_identity()
}

/// The 128-bit coefficients `zᵢ`: SHA-512 of (the transcript digest, a block number) gives four
/// coefficients per block. The transcript covers every item's `SHA-512(R_bytes ‖ A_bytes ‖ M)`
/// and `s_bytes`, so it fixes every input.
fn coefficients(items: &[(usize, Prepared)]) -> Vec<Scalar> {
    let mut transcript = Sha512::new();
    transcript.update(BATCH_TRANSCRIPT_DOMAIN);
    transcript.update((items.len() as u64).to_le_bytes());
    for (_, p) in items {
        transcript.update(p.hram);
        transcript.update(p.s_bytes);
    }
    let seed = transcript.finalize();
    let mut z = Vec::with_capacity(items.len());
    for block in 0..items.len().div_ceil(4) {
        let bytes = Sha512::new()
            .chain_update(seed)
            .chain_update((block as u64).to_le_bytes())
            .finalize();
        for quarter in bytes.chunks_exact(16).take(items.len() - z.len()) {
            let value = u128::from_le_bytes(quarter.try_into().expect("16 bytes"));
            z.push(Scalar::from(value));
        }
    }
    z
}

/// Why a public key may not be named by a network ([`check_key`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyFault {
    /// A point of order dividing 8: every signature with a small-order R and s = 0 verifies
    /// under it, for any message.
    #[error("is a small-order point, under which anyone can make a valid signature")]
    SmallOrder,
    /// Not the canonical encoding of its point (y not reduced mod p, or a sign bit on x = 0):
    /// one point, several keys.
    #[error("is not the canonical encoding of its point")]
    NonCanonical,
    /// A point with a small-order component: not of the prime-order subgroup that honest keys
    /// `[a]B` lie in.
    #[error("has a small-order component (the point is not in the prime-order subgroup)")]
    MixedOrder,
}

/// Checks, in this order, that `key` is not a small-order point ([`KeyFault::SmallOrder`]), is
/// canonically encoded ([`KeyFault::NonCanonical`]) and lies in the prime-order subgroup
/// ([`KeyFault::MixedOrder`]). Every key made from a secret passes.
pub fn check_key(key: &VerifyingKey) -> Result<(), KeyFault> {
    let point = key.to_edwards();
    if point.is_small_order() {
        return Err(KeyFault::SmallOrder);
    }
    if point.compress().to_bytes() != key.to_bytes() {
        return Err(KeyFault::NonCanonical);
    }
    if !point.is_torsion_free() {
        return Err(KeyFault::MixedOrder);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
