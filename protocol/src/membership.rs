//! The members of a network as the rulebook sees them: bureau code, name and public key, and the
//! quorum of cosignatures that makes a certificate.
//!
//! The genesis file that carries this (and its administrator signature) lives in the `keys`
//! crate; this is the pure, already-verified view the rulebook, witness and auditor use.

use std::collections::BTreeMap;

use ed25519_dalek::VerifyingKey;

use sha2::{Digest as _, Sha256};

use crate::signature::{KeyFault, check_key};
use crate::types::{BureauCode, NetworkId, PersonTag};

/// One member bureau.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub code: BureauCode,
    pub name: String,
    pub key: VerifyingKey,
}

/// Why a membership cannot be formed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MembershipError {
    #[error("a network needs at least one member")]
    NoMembers,
    #[error("too many members: {count} (at most {max})")]
    TooManyMembers { count: usize, max: usize },
    #[error("bureau {0} is listed twice")]
    DuplicateBureau(BureauCode),
    #[error("bureau {0} has an invalid code")]
    InvalidBureau(BureauCode),
    #[error("bureaus {first} and {second} share one public key")]
    DuplicateKey {
        first: BureauCode,
        second: BureauCode,
    },
    #[error("bureau {0} has a weak (small-order) public key, which could sign anything")]
    WeakKey(BureauCode),
    /// The key is not the canonical encoding of its point ([`KeyFault::NonCanonical`]).
    #[error("bureau {0} has a public key that is not the canonical encoding of its point")]
    NonCanonicalKey(BureauCode),
    /// The key has a small-order component ([`KeyFault::MixedOrder`]).
    #[error(
        "bureau {0} has a public key with a small-order component (not in the prime-order subgroup)"
    )]
    MixedOrderKey(BureauCode),
    #[error(
        "quorum {quorum} is not allowed for {members} members: it must be at least floor(2n/3)+1 = {min} and at most n"
    )]
    BadQuorum {
        quorum: usize,
        members: usize,
        min: usize,
    },
}

impl MembershipError {
    /// The refusal of bureau `code`'s key for `fault`.
    pub fn key(code: BureauCode, fault: KeyFault) -> MembershipError {
        match fault {
            KeyFault::SmallOrder => MembershipError::WeakKey(code),
            KeyFault::NonCanonical => MembershipError::NonCanonicalKey(code),
            KeyFault::MixedOrder => MembershipError::MixedOrderKey(code),
        }
    }
}

/// The verified membership of a network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    network: NetworkId,
    network_name: String,
    members: BTreeMap<BureauCode, Member>,
    /// The members' codes in ascending order, for [`Membership::arbiter`].
    codes: Vec<BureauCode>,
    quorum: usize,
}

/// The smallest safe quorum for `n` members: floor(2n/3) + 1. Any two quorums of this size share
/// at least floor(n/3) + 1 members, so at least one honest member while fewer than n/3 are faulty:
/// two conflicting checkpoints of one log can then never both be certified.
pub fn quorum_for(n: usize) -> usize {
    2 * n / 3 + 1
}

impl Membership {
    /// Forms a membership, refusing duplicates, keys [`check_key`] refuses (small-order,
    /// non-canonical, mixed-order) and an unsafe quorum.
    pub fn new(
        network_name: &str,
        members: impl IntoIterator<Item = Member>,
        quorum: usize,
    ) -> Result<Membership, MembershipError> {
        let mut map: BTreeMap<BureauCode, Member> = BTreeMap::new();
        let mut keys: BTreeMap<[u8; 32], BureauCode> = BTreeMap::new();
        for m in members {
            if !m.code.is_valid() {
                return Err(MembershipError::InvalidBureau(m.code));
            }
            check_key(&m.key).map_err(|fault| MembershipError::key(m.code, fault))?;
            if let Some(first) = keys.insert(m.key.to_bytes(), m.code) {
                return Err(MembershipError::DuplicateKey {
                    first,
                    second: m.code,
                });
            }
            let code = m.code;
            if map.insert(code, m).is_some() {
                return Err(MembershipError::DuplicateBureau(code));
            }
        }
        let n = map.len();
        if n == 0 {
            return Err(MembershipError::NoMembers);
        }
        if n > crate::limits::MEMBERS_MAX {
            return Err(MembershipError::TooManyMembers {
                count: n,
                max: crate::limits::MEMBERS_MAX,
            });
        }
        let min = quorum_for(n);
        if quorum < min || quorum > n {
            return Err(MembershipError::BadQuorum {
                quorum,
                members: n,
                min,
            });
        }
        Ok(Membership {
            network: NetworkId::from_name(network_name),
            network_name: network_name.to_string(),
            codes: map.keys().copied().collect(),
            members: map,
            quorum,
        })
    }

    /// The network's id.
    pub fn network(&self) -> NetworkId {
        self.network
    }

    /// The network's name.
    pub fn network_name(&self) -> &str {
        &self.network_name
    }

    /// Cosignatures needed for a certificate.
    pub fn quorum(&self) -> usize {
        self.quorum
    }

    /// A member by code.
    pub fn member(&self, code: BureauCode) -> Option<&Member> {
        self.members.get(&code)
    }

    /// A member's public key.
    pub fn key(&self, code: BureauCode) -> Option<&VerifyingKey> {
        self.members.get(&code).map(|m| &m.key)
    }

    /// Whether `code` is a member.
    pub fn contains(&self, code: BureauCode) -> bool {
        self.members.contains_key(&code)
    }

    /// All members, by code.
    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// The person's arbiter: the one member whose log may grant a claim on `person`, i.e. decide
    /// which bureau may register a person who has no registration (`Body::Claim`). Spread
    /// evenly and unpredictably over the members: the first 8 bytes of
    /// SHA-256(`DOMAIN_ARBITER` ‖ tag), little-endian, modulo the number of members, index the
    /// members in ascending code order.
    pub fn arbiter(&self, person: &PersonTag) -> BureauCode {
        let mut h = Sha256::new();
        h.update(crate::encoding::DOMAIN_ARBITER);
        h.update(person.0);
        let digest: [u8; 32] = h.finalize().into();
        let n = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
        let index = n % self.codes.len() as u64;
        self.codes[index as usize]
    }

    /// Never true for a formed membership.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    fn membership(codes: &[u32]) -> Membership {
        let members = codes.iter().enumerate().map(|(i, &code)| Member {
            code: BureauCode::new(code).unwrap(),
            name: format!("bureau {code}"),
            key: SigningKey::from_bytes(&[i as u8 + 1; 32]).verifying_key(),
        });
        Membership::new("arbiter-test", members, quorum_for(codes.len())).unwrap()
    }

    /// The arbiter function is part of the format (docs/FORMAT.md gives this vector): a change
    /// would move claims between logs.
    #[test]
    fn the_arbiter_of_a_tag_is_pinned() {
        let m = membership(&[340104, 310104, 340100, 330502]);
        let tag = PersonTag([0x11; 32]);
        assert_eq!(m.arbiter(&tag), BureauCode::new(340104).unwrap());
    }

    /// Tags spread over every member, roughly evenly.
    #[test]
    fn arbiters_spread_over_the_members() {
        let m = membership(&[310104, 330502, 340100, 340104]);
        let mut counts = BTreeMap::new();
        for i in 0u32..4_000 {
            let mut tag = [0u8; 32];
            tag[..4].copy_from_slice(&i.to_le_bytes());
            *counts.entry(m.arbiter(&PersonTag(tag))).or_insert(0u32) += 1;
        }
        assert_eq!(counts.len(), 4);
        assert!(
            counts.values().all(|&c| (850..=1150).contains(&c)),
            "{counts:?}"
        );
    }
}
