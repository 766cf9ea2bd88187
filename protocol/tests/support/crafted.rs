//! Crafted ed25519 signatures and keys for the verification tests: the edge cases of "Taming the
//! many EdDSAs" (Chalkias, Garillot, Nikolaenko, 2020) made for our own keys and messages, each
//! with the verdict the protocol's one rule (ZIP-215, `protocol/src/signature.rs`) must give.
//!
//! Everything here is what a member holding its own secret key can make; nothing forges another
//! key's signature. An honest signer never makes any of it except `honest`.
//!
//! Shared, by `#[path]`, by `protocol/src/signature/tests.rs` and the integration tests
//! (`tests/src/lib.rs`), so it uses only ed25519-dalek, curve25519-dalek and sha2 types and returns
//! raw signature bytes. Each includer uses part of it.

#![allow(dead_code)]

use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use curve25519_dalek::edwards::CompressedEdwardsY;
use curve25519_dalek::scalar::Scalar;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest as _, Sha512};

/// The group order l, little-endian.
pub const GROUP_ORDER: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// A crafted signature on a given message under a given member key.
#[derive(Clone, Debug)]
pub struct Case {
    /// What was crafted, e.g. `r_plus_torsion_3`.
    pub name: String,
    pub signature: [u8; 64],
    /// The ZIP-215 verdict: `true` accepted, `false` refused.
    pub accepted: bool,
}

/// What a crafted key is, as `signature::check_key` must name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// A key made from a secret: passes.
    Honest,
    SmallOrder,
    NonCanonical,
    MixedOrder,
}

/// A crafted key with a signature on a message under it.
#[derive(Clone, Debug)]
pub struct KeyCase {
    pub name: String,
    pub key: VerifyingKey,
    pub kind: KeyKind,
    pub message: Vec<u8>,
    pub signature: [u8; 64],
    /// The ZIP-215 verdict on the signature.
    pub accepted: bool,
}

/// Every crafted signature of `key` on `message`, in a fixed order, with its verdict:
///
/// - `honest`: ed25519-dalek's own signature;
/// - `r_plus_torsion_j` (j = 0..8): R = [r]B + Tⱼ for each of the 8 small-order points, s made
///   for that R (cofactorless verification refuses j ≠ 0; ZIP-215 accepts all);
/// - `small_order_r_noncanonical_…`: R a non-canonical encoding of a small-order point, s = k·a
///   with k over the encoding as sent (accepted) or over the canonical encoding (`…_reduced`,
///   refused);
/// - `noncanonical_r_…`: R a non-canonical encoding of a point of large order (refused: no one
///   knows its discrete logarithm);
/// - `small_order_r_s_zero_j`: R = Tⱼ, s = 0 (refused: A has large order);
/// - `s_plus_l`, `s_all_ones`: a non-canonical s (refused);
/// - `r_not_a_point`: R bytes that decode to no point (refused);
/// - `all_zero` (refused).
pub fn signatures(key: &SigningKey, message: &[u8]) -> Vec<Case> {
    let a = key.to_scalar();
    let a_bytes = key.verifying_key().to_bytes();
    let mut cases = Vec::new();
    let honest = key.sign(message).to_bytes();
    cases.push(case("honest", honest, true));

    let r = nonce(&a_bytes, message);
    for (j, torsion) in EIGHT_TORSION.iter().enumerate() {
        let big_r = (ED25519_BASEPOINT_POINT * r + torsion)
            .compress()
            .to_bytes();
        let s = r + challenge(&big_r, &a_bytes, message) * a;
        cases.push(case(&format!("r_plus_torsion_{j}"), join(big_r, s), true));
    }

    for encoding in noncanonical_encodings() {
        let point = CompressedEdwardsY(encoding)
            .decompress()
            .expect("listed encodings decode");
        let label = hex::encode(&encoding[..2]) + &hex::encode(&encoding[31..]);
        if point.is_small_order() {
            let s = challenge(&encoding, &a_bytes, message) * a;
            cases.push(case(
                &format!("small_order_r_noncanonical_{label}"),
                join(encoding, s),
                true,
            ));
            let canonical = point.compress().to_bytes();
            let s = challenge(&canonical, &a_bytes, message) * a;
            cases.push(case(
                &format!("small_order_r_noncanonical_{label}_reduced"),
                join(encoding, s),
                false,
            ));
        } else {
            let s = r + challenge(&encoding, &a_bytes, message) * a;
            cases.push(case(
                &format!("noncanonical_r_{label}"),
                join(encoding, s),
                false,
            ));
        }
    }

    for (j, torsion) in EIGHT_TORSION.iter().enumerate() {
        let mut signature = [0u8; 64];
        signature[..32].copy_from_slice(&torsion.compress().to_bytes());
        cases.push(case(&format!("small_order_r_s_zero_{j}"), signature, false));
    }

    let mut s_plus_l = honest;
    let s = add_le(honest[32..].try_into().unwrap(), GROUP_ORDER);
    s_plus_l[32..].copy_from_slice(&s);
    cases.push(case("s_plus_l", s_plus_l, false));
    let mut s_all_ones = honest;
    s_all_ones[32..].fill(0xff);
    cases.push(case("s_all_ones", s_all_ones, false));

    let mut not_a_point = honest;
    not_a_point[..32].copy_from_slice(&not_a_point_encoding());
    cases.push(case("r_not_a_point", not_a_point, false));

    cases.push(case("all_zero", [0u8; 64], false));
    cases
}

/// Crafted keys, each with a signature on `message` and its verdict: every small-order point
/// (R small-order, s = 0: accepted for any message), non-canonical encodings of small-order
/// points (likewise) and of large-order points (a refused signature), mixed-order keys [a]B + Tⱼ
/// (a signature made with a: accepted), and the honest key.
pub fn keys(message: &[u8]) -> Vec<KeyCase> {
    let secret = SigningKey::from_bytes(&[0x42; 32]);
    let a = secret.to_scalar();
    let mut cases = vec![KeyCase {
        name: "honest_key".into(),
        key: secret.verifying_key(),
        kind: KeyKind::Honest,
        message: message.to_vec(),
        signature: secret.sign(message).to_bytes(),
        accepted: true,
    }];
    // R = the identity, s = 0: [8]([0]B − [k]A − 0) = 0 for any small-order A.
    let mut identity_r = [0u8; 64];
    identity_r[0] = 1;
    for (j, torsion) in EIGHT_TORSION.iter().enumerate() {
        cases.push(KeyCase {
            name: format!("small_order_key_{j}"),
            key: VerifyingKey::from_bytes(&torsion.compress().to_bytes()).unwrap(),
            kind: KeyKind::SmallOrder,
            message: message.to_vec(),
            signature: identity_r,
            accepted: true,
        });
    }
    for encoding in noncanonical_encodings() {
        let point = CompressedEdwardsY(encoding).decompress().unwrap();
        let label = hex::encode(&encoding[..2]) + &hex::encode(&encoding[31..]);
        let key = VerifyingKey::from_bytes(&encoding).unwrap();
        if point.is_small_order() {
            cases.push(KeyCase {
                name: format!("noncanonical_small_order_key_{label}"),
                key,
                kind: KeyKind::SmallOrder,
                message: message.to_vec(),
                signature: identity_r,
                accepted: true,
            });
        } else {
            cases.push(KeyCase {
                name: format!("noncanonical_key_{label}"),
                key,
                kind: KeyKind::NonCanonical,
                message: message.to_vec(),
                signature: secret.sign(message).to_bytes(),
                accepted: false,
            });
        }
    }
    for (j, torsion) in EIGHT_TORSION.iter().enumerate().skip(1) {
        let a_point = ED25519_BASEPOINT_POINT * a + torsion;
        let a_bytes = a_point.compress().to_bytes();
        let r = nonce(&a_bytes, message);
        let big_r = (ED25519_BASEPOINT_POINT * r).compress().to_bytes();
        let s = r + challenge(&big_r, &a_bytes, message) * a;
        cases.push(KeyCase {
            name: format!("mixed_order_key_{j}"),
            key: VerifyingKey::from_bytes(&a_bytes).unwrap(),
            kind: KeyKind::MixedOrder,
            message: message.to_vec(),
            signature: join(big_r, s),
            accepted: true,
        });
    }
    cases
}

/// Every encoding of a curve point that is not the canonical one: y = p + δ (δ < 19, the only
/// unreduced values below 2^255) with either sign bit, and the sign bit set on x = 0 (y = ±1),
/// keeping those that decode.
pub fn noncanonical_encodings() -> Vec<[u8; 32]> {
    let mut out = Vec::new();
    let mut candidates = Vec::new();
    for delta in 0u8..19 {
        let mut y = [0xffu8; 32];
        y[0] = 0xed + delta;
        y[31] = 0x7f;
        candidates.push(y);
    }
    let mut one = [0u8; 32];
    one[0] = 1;
    let mut minus_one = [0xffu8; 32];
    minus_one[0] = 0xec;
    minus_one[31] = 0x7f;
    candidates.extend([one, minus_one]);
    for y in candidates {
        for sign in [0u8, 0x80] {
            let mut encoding = y;
            encoding[31] |= sign;
            if let Some(point) = CompressedEdwardsY(encoding).decompress()
                && point.compress().to_bytes() != encoding
            {
                out.push(encoding);
            }
        }
    }
    out
}

/// The smallest y whose encoding decodes to no point.
pub fn not_a_point_encoding() -> [u8; 32] {
    (2u8..)
        .map(|y| {
            let mut encoding = [0u8; 32];
            encoding[0] = y;
            encoding
        })
        .find(|e| CompressedEdwardsY(*e).decompress().is_none())
        .expect("half of all y are not on the curve")
}

/// One vector of `protocol/tests/data/ed25519-speccheck.json`.
#[derive(Clone, Debug)]
pub struct Vector {
    pub case: u64,
    pub key: VerifyingKey,
    pub message: Vec<u8>,
    pub signature: [u8; 64],
    /// The ZIP-215 verdict.
    pub accepted: bool,
}

/// The speccheck vectors. Keys the vectors use all decode.
pub fn speccheck(json: &str) -> Vec<Vector> {
    let file: serde_json::Value = serde_json::from_str(json).expect("speccheck json");
    file["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| {
            let bytes = |field: &str| hex::decode(c[field].as_str().expect(field)).expect(field);
            let key: [u8; 32] = bytes("pub_key").try_into().unwrap();
            let verdict = c["zip215"].as_str().unwrap();
            assert!(verdict == "accepted" || verdict == "refused", "{verdict}");
            Vector {
                case: c["case"].as_u64().unwrap(),
                key: VerifyingKey::from_bytes(&key).expect("speccheck keys decode"),
                message: bytes("message"),
                signature: bytes("signature").try_into().unwrap(),
                accepted: verdict == "accepted",
            }
        })
        .collect()
}

fn case(name: &str, signature: [u8; 64], accepted: bool) -> Case {
    Case {
        name: name.to_string(),
        signature,
        accepted,
    }
}

/// A nonce no honest signature uses, fixed by the key and message.
fn nonce(a_bytes: &[u8; 32], message: &[u8]) -> Scalar {
    let wide: [u8; 64] = Sha512::new()
        .chain_update(b"crafted nonce")
        .chain_update(a_bytes)
        .chain_update(message)
        .finalize()
        .into();
    Scalar::from_bytes_mod_order_wide(&wide)
}

/// k = SHA-512(R_bytes ‖ A_bytes ‖ M) mod l.
fn challenge(r_bytes: &[u8; 32], a_bytes: &[u8; 32], message: &[u8]) -> Scalar {
    let wide: [u8; 64] = Sha512::new()
        .chain_update(r_bytes)
        .chain_update(a_bytes)
        .chain_update(message)
        .finalize()
        .into();
    Scalar::from_bytes_mod_order_wide(&wide)
}

fn join(r_bytes: [u8; 32], s: Scalar) -> [u8; 64] {
    let mut signature = [0u8; 64];
    signature[..32].copy_from_slice(&r_bytes);
    signature[32..].copy_from_slice(s.as_bytes());
    signature
}

/// Little-endian a + b, for a + b < 2^256.
fn add_le(a: [u8; 32], b: [u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in 0..32 {
        let sum = u16::from(a[i]) + u16::from(b[i]) + carry;
        out[i] = sum as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0, "a + b overflows 256 bits");
    out
}
