//! The small value types every other module speaks in: bureau codes, person tags, hashes,
//! sequence numbers, references to entries, households, and the network's identity.
//!
//! Each is a newtype so that a `Seq` can never be passed where a `HouseholdId` is meant, and each
//! textual form parses back to exactly the value it came from.

use std::fmt;
use std::str::FromStr;

use bincode::{Decode, Encode};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

/// A 32-byte SHA-256 output.
pub type Hash32 = [u8; 32];

/// Errors from parsing the textual form of a value type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error(
        "bureau code must be 6 digits (an administrative division code such as 310104), got {0:?}"
    )]
    BureauCode(String),
    #[error("expected 64 hexadecimal characters, got {0:?}")]
    Hash(String),
    #[error(
        "entry reference must look like CODE:SEQ:HASH (for example 310104:7:9f86…, 64 hex digits), got {0:?}"
    )]
    EntryRef(String),
    #[error("{0}")]
    Other(String),
}

/// A bureau, named by its 6-digit administrative division code (GB/T 2260), e.g. `310104` for
/// Xuhui District, Shanghai. The first digit is never 0.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Encode, Decode)]
pub struct BureauCode(u32);

/// Not a bureau: the position entries naming an unknown configuration epoch wait at in the
/// causal buffer (`(CONFIG_LOG, Seq(epoch))`, see `rules::Ledger::waiting_for`).
pub const CONFIG_LOG: BureauCode = BureauCode(0);

impl BureauCode {
    /// Smallest valid code: province codes start at 11.
    pub const MIN: u32 = 100_000;
    /// Largest valid code.
    pub const MAX: u32 = 999_999;

    /// A code from its number; `None` unless it has exactly six digits.
    pub fn new(code: u32) -> Option<BureauCode> {
        (Self::MIN..=Self::MAX)
            .contains(&code)
            .then_some(BureauCode(code))
    }

    /// The code as a number.
    pub fn get(self) -> u32 {
        self.0
    }

    /// The two-digit province part (31 for Shanghai, 33 for Zhejiang).
    pub fn province(self) -> u32 {
        self.0 / 10_000
    }

    /// Whether the code is in range; decoding may produce out-of-range codes, which the rulebook
    /// refuses as unknown bureaus.
    pub fn is_valid(self) -> bool {
        (Self::MIN..=Self::MAX).contains(&self.0)
    }
}

impl fmt::Display for BureauCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:06}", self.0)
    }
}

impl fmt::Debug for BureauCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BureauCode({:06})", self.0)
    }
}

impl FromStr for BureauCode {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParseError::BureauCode(s.to_string());
        if s.len() != 6 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let n: u32 = s.parse().map_err(|_| bad())?;
        BureauCode::new(n).ok_or_else(bad)
    }
}

impl Serialize for BureauCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for BureauCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

macro_rules! hash_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Encode, Decode)]
        pub struct $name(pub Hash32);

        impl $name {
            /// The all-zero value.
            pub const ZERO: $name = $name([0; 32]);

            /// The raw bytes.
            pub fn as_bytes(&self) -> &Hash32 {
                &self.0
            }

            /// Lower-case hexadecimal form.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({}…)", stringify!($name), &hex::encode(&self.0[..6]))
            }
        }

        impl FromStr for $name {
            type Err = ParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                parse_hash32(s).map($name)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// Parses 64 hexadecimal characters into 32 bytes.
pub fn parse_hash32(s: &str) -> Result<Hash32, ParseError> {
    let mut out = [0u8; 32];
    if s.len() != 64 {
        return Err(ParseError::Hash(s.to_string()));
    }
    hex::decode_to_slice(s, &mut out).map_err(|_| ParseError::Hash(s.to_string()))?;
    Ok(out)
}

hash_newtype!(
    /// A person as the ledger knows them: HMAC-SHA256(person key, normalised citizen ID).
    /// Carries no personal data; only holders of the network's person key can compute it.
    PersonTag
);
hash_newtype!(
    /// The hash of an entry: the RFC 6962 leaf hash of its canonical content encoding
    /// (see `entry`). Used for `prev` links, references and Merkle leaves alike.
    EntryHash
);
hash_newtype!(
    /// The SHA-256 digest of supporting documents kept off the ledger.
    Digest
);
hash_newtype!(
    /// The identity of a network: SHA-256 over a domain tag and the network's name. Every entry,
    /// checkpoint and cosignature carries it, so nothing signed on one network is valid on another.
    NetworkId
);

impl NetworkId {
    /// The network id for a network name.
    pub fn from_name(name: &str) -> NetworkId {
        let mut h = Sha256::new();
        h.update(crate::encoding::DOMAIN_NETWORK_ID);
        h.update(name.as_bytes());
        NetworkId(h.finalize().into())
    }
}

/// Position of an entry in its author's log; the first entry is 0 and there are no gaps.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    Encode,
    Decode,
    Serialize,
    Deserialize,
)]
#[serde(transparent)]
pub struct Seq(pub u64);

impl Seq {
    /// The next position.
    pub fn next(self) -> Seq {
        Seq(self
            .0
            .checked_add(1)
            .expect("log longer than u64::MAX entries"))
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Seq({})", self.0)
    }
}

/// A household (户) of one bureau; ids are local to the bureau that keeps them.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Encode, Decode, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct HouseholdId(pub u64);

impl fmt::Display for HouseholdId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A reference to one entry: its author, position and hash. Holding the hash means a reference
/// can never silently point at a different entry that a forking author put at the same position.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Encode, Decode)]
pub struct EntryRef {
    pub author: BureauCode,
    pub seq: Seq,
    pub hash: EntryHash,
}

impl EntryRef {
    /// The (author, seq) position this reference points at.
    pub fn position(&self) -> (BureauCode, Seq) {
        (self.author, self.seq)
    }
}

impl fmt::Display for EntryRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.author, self.seq.0, self.hash)
    }
}

impl fmt::Debug for EntryRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}…",
            self.author,
            self.seq.0,
            &self.hash.to_hex()[..12]
        )
    }
}

impl FromStr for EntryRef {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParseError::EntryRef(s.to_string());
        let mut parts = s.split(':');
        let (Some(a), Some(q), Some(h), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let author: BureauCode = a.parse().map_err(|_| bad())?;
        if q.is_empty() || !q.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let seq = Seq(q.parse().map_err(|_| bad())?);
        let hash: EntryHash = h.parse().map_err(|_| bad())?;
        Ok(EntryRef { author, seq, hash })
    }
}

impl Serialize for EntryRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EntryRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bureau_code_round_trips_and_refuses_bad_forms() {
        let c: BureauCode = "310104".parse().unwrap();
        assert_eq!(c.get(), 310104);
        assert_eq!(c.to_string(), "310104");
        assert_eq!(c.province(), 31);
        for bad in [
            "", "31010", "3101040", "031010", "31010x", " 310104", "+31010",
        ] {
            assert!(bad.parse::<BureauCode>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn entry_ref_round_trips() {
        let r = EntryRef {
            author: BureauCode::new(330502).unwrap(),
            seq: Seq(42),
            hash: EntryHash([0xab; 32]),
        };
        let text = r.to_string();
        assert_eq!(text.parse::<EntryRef>().unwrap(), r);
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<EntryRef>(&json).unwrap(), r);
        for bad in [
            "330502:42",
            "330502:-1:ab",
            "330502:42:abc",
            &format!("{text}:1"),
            "x:1:00",
        ] {
            assert!(bad.parse::<EntryRef>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn network_ids_differ_by_name() {
        assert_ne!(NetworkId::from_name("a"), NetworkId::from_name("b"));
        assert_eq!(NetworkId::from_name("a"), NetworkId::from_name("a"));
    }
}
