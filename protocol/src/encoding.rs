//! The one canonical binary encoding, and the domain-separation tags of every hash and signature.
//!
//! Everything that is hashed or signed is encoded with bincode 2 in a fixed configuration
//! (little-endian, fixed-width integers, enum variants as `u32`), preceded by a 4-byte magic that
//! names the kind of object and its format version. Decoding refuses a wrong magic, an unknown
//! version, oversized input (before allocating) and trailing bytes, and never panics.
//! `docs/FORMAT.md` specifies the byte layouts for independent verifiers.

use bincode::config::{Configuration, Fixint, Limit, LittleEndian};
use bincode::{Decode, Encode};

use crate::limits::FRAME_BYTES_MAX;

/// The bincode configuration of every canonical encoding.
pub type Config = Configuration<LittleEndian, Fixint, Limit<FRAME_BYTES_MAX>>;

/// The canonical bincode configuration.
pub const fn config() -> Config {
    bincode::config::standard()
        .with_little_endian()
        .with_fixed_int_encoding()
        .with_limit::<FRAME_BYTES_MAX>()
}

/// Format version of everything this build writes.
pub const FORMAT_VERSION: u8 = 1;

/// Magic of an entry's content: "HKE" and the format version.
pub const MAGIC_ENTRY: [u8; 4] = *b"HKE\x02";
/// Magic of a checkpoint: "HKC" and the format version.
pub const MAGIC_CHECKPOINT: [u8; 4] = *b"HKC\x02";
/// Magic of a certificate: "HKT" and the format version.
pub const MAGIC_CERTIFICATE: [u8; 4] = *b"HKT\x02";
/// Magic of a fraud proof: "HKF" and the format version.
pub const MAGIC_FRAUD_PROOF: [u8; 4] = *b"HKF\x01";

/// Domain tag hashed before a network's name to make its [`crate::NetworkId`].
pub const DOMAIN_NETWORK_ID: &[u8] = b"hukou-ledger/v1/network-id\0";
/// Domain tag before an entry hash in the message an author signs.
pub const DOMAIN_ENTRY_SIGNATURE: &[u8] = b"hukou-ledger/v1/entry-signature\0";
/// Domain tag before a checkpoint's encoding in the message its log's author signs.
pub const DOMAIN_CHECKPOINT_SIGNATURE: &[u8] = b"hukou-ledger/v1/checkpoint-signature\0";
/// Domain tag before a checkpoint's encoding in the message a witness cosigns.
pub const DOMAIN_COSIGNATURE: &[u8] = b"hukou-ledger/v1/cosignature\0";
/// Domain tag hashed before a person tag to pick the person's arbiter
/// ([`crate::Membership::arbiter`]).
pub const DOMAIN_ARBITER: &[u8] = b"hukou-ledger/v1/arbiter\0";
/// Domain tag before a genesis document in the message the administrator signs.
pub const DOMAIN_GENESIS_SIGNATURE: &[u8] = b"hukou-ledger/v1/genesis-signature\0";

/// Domain tag before a configuration update's hash in the message an administrator signs.
pub const DOMAIN_CONFIG_SIGNATURE: &[u8] = b"hukou-ledger/v1/config-signature\0";
/// Domain tag before a (log, witness) pair in the rendezvous score that draws witness
/// committees ([`crate::committee::score`]).
pub const DOMAIN_COMMITTEE: &[u8] = b"hukou-ledger/v1/committee\0";

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("input is empty")]
    Empty,
    #[error("input is {len} bytes, more than the {max} allowed")]
    Oversized { len: usize, max: usize },
    #[error("input is truncated: {len} bytes, at least {needed} needed")]
    Truncated { len: usize, needed: usize },
    #[error("wrong magic {found:02x?}: this is not a {expected}")]
    WrongMagic {
        found: [u8; 3],
        expected: &'static str,
    },
    #[error("unknown format version {found} of {what} (this build reads version {supported})")]
    UnknownVersion {
        what: &'static str,
        found: u8,
        supported: u8,
    },
    #[error("{trailing} trailing bytes after the {what}")]
    TrailingBytes { what: &'static str, trailing: usize },
    #[error("malformed {what}: {reason}")]
    Malformed { what: &'static str, reason: String },
}

/// Encodes a value with the canonical configuration, appending to `out`.
pub fn encode_into<T: Encode>(value: &T, out: &mut Vec<u8>) {
    bincode::encode_into_std_write(value, out, config())
        .expect("encoding into a Vec cannot fail for values within limits");
}

/// Encodes `magic` followed by the canonical encoding of `value`.
pub fn encode_with_magic<T: Encode>(magic: [u8; 4], value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(&magic);
    encode_into(value, &mut out);
    out
}

/// Decodes `magic ‖ value` from exactly `bytes`: no more than `max` bytes, the right magic, a
/// known version, and nothing left over.
pub fn decode_with_magic<T: Decode<()>>(
    bytes: &[u8],
    magic: [u8; 4],
    what: &'static str,
    max: usize,
) -> Result<T, DecodeError> {
    check_magic(bytes, magic, what, max)?;
    decode_exact(&bytes[4..], what)
}

/// Checks length bounds, magic and version of `bytes` without decoding the rest.
pub fn check_magic(
    bytes: &[u8],
    magic: [u8; 4],
    what: &'static str,
    max: usize,
) -> Result<(), DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    if bytes.len() > max {
        return Err(DecodeError::Oversized {
            len: bytes.len(),
            max,
        });
    }
    if bytes.len() < 4 {
        return Err(DecodeError::Truncated {
            len: bytes.len(),
            needed: 4,
        });
    }
    if bytes[..3] != magic[..3] {
        return Err(DecodeError::WrongMagic {
            found: [bytes[0], bytes[1], bytes[2]],
            expected: what,
        });
    }
    if bytes[3] != magic[3] {
        return Err(DecodeError::UnknownVersion {
            what,
            found: bytes[3],
            supported: magic[3],
        });
    }
    Ok(())
}

/// Decodes exactly `bytes` as one `T`, refusing trailing bytes.
pub fn decode_exact<T: Decode<()>>(bytes: &[u8], what: &'static str) -> Result<T, DecodeError> {
    let (value, used) =
        bincode::decode_from_slice::<T, _>(bytes, config()).map_err(|e| match e {
            bincode::error::DecodeError::UnexpectedEnd { additional } => DecodeError::Truncated {
                len: bytes.len(),
                needed: bytes.len() + additional,
            },
            other => DecodeError::Malformed {
                what,
                reason: other.to_string(),
            },
        })?;
    if used != bytes.len() {
        return Err(DecodeError::TrailingBytes {
            what,
            trailing: bytes.len() - used,
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_refuses_each_kind_of_bad_input() {
        let good = encode_with_magic(MAGIC_CHECKPOINT, &(7u64, 9u32));
        assert_eq!(
            decode_with_magic::<(u64, u32)>(&good, MAGIC_CHECKPOINT, "t", 64),
            Ok((7, 9))
        );
        assert_eq!(
            decode_with_magic::<(u64, u32)>(&[], MAGIC_CHECKPOINT, "t", 64),
            Err(DecodeError::Empty)
        );
        assert!(matches!(
            decode_with_magic::<(u64, u32)>(&good, MAGIC_CHECKPOINT, "t", 8),
            Err(DecodeError::Oversized { len: 16, max: 8 })
        ));
        assert!(matches!(
            decode_with_magic::<(u64, u32)>(&good[..10], MAGIC_CHECKPOINT, "t", 64),
            Err(DecodeError::Truncated { .. })
        ));
        assert!(matches!(
            decode_with_magic::<(u64, u32)>(&good, MAGIC_ENTRY, "t", 64),
            Err(DecodeError::WrongMagic { .. })
        ));
        // The version after the one this build writes.
        let mut next = good.clone();
        next[3] = MAGIC_CHECKPOINT[3] + 1;
        assert!(matches!(
            decode_with_magic::<(u64, u32)>(&next, MAGIC_CHECKPOINT, "t", 64),
            Err(DecodeError::UnknownVersion {
                found: 3,
                supported: 2,
                ..
            })
        ));
        let mut long = good.clone();
        long.push(0);
        assert!(matches!(
            decode_with_magic::<(u64, u32)>(&long, MAGIC_CHECKPOINT, "t", 64),
            Err(DecodeError::TrailingBytes { trailing: 1, .. })
        ));
    }
}
