//! The genesis: the document that founds a network. It names the network, its administrator's
//! public key, the member bureaus (code, name, public key, addresses) and the quorum, and carries
//! the administrator's signature so that anyone, auditors included, can verify the membership.
//!
//! It also names the network's first **administrators** and their threshold k: the n keys of
//! which k must sign an update of the network's configuration (issue 13), so that no single key
//! can change the network. A genesis written before administrators existed has no
//! `administrators` field: it is the *legacy form*, whose one administrator is the
//! administrator key that signs the genesis, with threshold 1, and whose encoding and hash are
//! exactly what they were. A genesis that names them must name at least 2, with
//! n/2 < k ≤ n (so k ≥ 2): two conflicting updates cannot both gather k signatures unless an
//! administrator signs both.
//!
//! The file is TOML, for people to read and for `hukou genesis` to edit (`docs/KEYS.md`). The
//! signature and the hash do not cover that text but a canonical binary encoding, so comments,
//! formatting and the order of members and of administrators in the file change nothing:
//!
//! ```text
//! legacy form (no `administrators`):
//! canonical = "HKG" 0x01 ‖ bincode((network, admin public key, quorum,
//!                                   [(code, name, public key, [address])] sorted by code))
//! with administrators:
//! canonical = "HKG" 0x02 ‖ bincode((network, admin public key, quorum,
//!                                   [(code, name, public key, [address])] sorted by code,
//!                                   [administrator public key] sorted by its 32 bytes,
//!                                   admin threshold))
//! signed message = DOMAIN_GENESIS_SIGNATURE ‖ canonical
//! genesis hash   = SHA-256(canonical)
//! ```
//!
//! Byte by byte, with the bincode configuration of `hukou_protocol::encoding` (little-endian,
//! fixed-width integers; a `String` or `Vec` is a u64 length then its bytes or items; a key is its
//! 32 bytes with no length):
//!
//! ```text
//! offset  bytes     field
//! 0       4         magic: "HKG" 0x01 (legacy) or "HKG" 0x02 (with administrators)
//! 4       8         network name length L (u64)
//! 12      L         network name, UTF-8
//! 12+L    32        admin public key (the key that signs the genesis)
//! 44+L    8         quorum (u64): the effective one
//! 52+L    8         member count m (u64), then m members sorted by code, each:
//!                     4 code (u32) ‖ 8 name length ‖ name ‖ 32 public key ‖
//!                     8 address count ‖ (8 length ‖ address)*
//! -- "HKG" 0x02 only, after the last member:
//!         8         administrator count n (u64)
//!         32·n      administrator public keys, sorted by their bytes
//!         8         admin threshold k (u64)
//! ```
//!
//! and `quorum` the effective one (the file's, or floor(2n/3)+1 when the file has none).
//!
//! Invariants: a [`Genesis`] value always has a valid network name, member names and addresses
//! (parsing and [`Genesis::add_member`] check them); any change clears the signature; and only
//! [`Genesis::verify`] makes a [`VerifiedGenesis`], so holding one means the administrator signed
//! exactly this membership and these administrators, and the protocol accepts them.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use ed25519_dalek::{SigningKey, VerifyingKey};
use hukou_protocol::encoding::{self, DOMAIN_GENESIS_SIGNATURE};
use hukou_protocol::limits::{BUREAU_NAME_BYTES_MAX, MEMBERS_MAX, NETWORK_NAME_BYTES_MAX};
use hukou_protocol::membership::MembershipError;
use hukou_protocol::signature::{KeyFault, check_key};
use hukou_protocol::{BureauCode, Member, Membership, Signature, quorum_for};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// `kind` of a genesis file. Optional when reading; always written.
pub const KIND_GENESIS: &str = "hukou-genesis-v1";

/// Magic of the canonical genesis encoding: "HKG" and the format version. Version 1 is the
/// legacy form, which names no administrators.
pub const MAGIC_GENESIS: [u8; 4] = *b"HKG\x01";

/// Magic of the canonical encoding of a genesis that names its administrators and threshold.
pub const MAGIC_GENESIS_ADMINISTRATORS: [u8; 4] = *b"HKG\x02";

/// Most administrators a genesis may name: the protocol's limit for every epoch's set.
/// Administrators are offices of the ministry and the provinces, not bureaus: a few dozen at most.
pub use hukou_protocol::limits::ADMINISTRATORS_MAX;

/// Most addresses one member may list. A bureau has a few public endpoints at most.
pub const MEMBER_ADDRESSES_MAX: usize = 4;

/// Longest address, in bytes: room for a long DNS name, a port and a `/p2p/` peer id.
pub const ADDRESS_BYTES_MAX: usize = 320;

/// Largest genesis file read: room for [`MEMBERS_MAX`] members at every limit, as TOML.
pub const GENESIS_FILE_BYTES_MAX: u64 = 32 * 1024 * 1024;

// The canonical encoding of the largest genesis must fit the canonical encoder's frame limit.
const _: () = assert!(
    4 + 8
        + NETWORK_NAME_BYTES_MAX
        + 32
        + 8
        + 8
        + MEMBERS_MAX
            * (4 + 8
                + BUREAU_NAME_BYTES_MAX
                + 32
                + 8
                + MEMBER_ADDRESSES_MAX * (8 + ADDRESS_BYTES_MAX))
        + 8
        + ADMINISTRATORS_MAX * 32
        + 8
        <= hukou_protocol::limits::FRAME_BYTES_MAX
);

/// SHA-256 of a genesis's canonical encoding; auditors pin it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct GenesisHash(pub [u8; 32]);

impl GenesisHash {
    /// Lower-case hexadecimal form.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for GenesisHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for GenesisHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GenesisHash({})", self.to_hex())
    }
}

/// Why a genesis could not be read, changed, signed or verified. `path` is always the genesis
/// file concerned.
#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    /// The operating system refused to open, inspect, read or write the file.
    #[error("cannot {action} genesis file {}: {source}", path.display())]
    Io {
        /// What was being done: "open", "inspect", "read" or "write".
        action: &'static str,
        /// The genesis file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// Creating would replace an existing genesis.
    #[error("genesis file {} already exists; refusing to overwrite it (pass --force to replace it)", path.display())]
    Exists {
        /// The genesis file.
        path: PathBuf,
    },
    /// The file is larger than [`GENESIS_FILE_BYTES_MAX`].
    #[error("genesis file {} is {len} bytes, more than the {max} allowed", path.display())]
    TooLarge {
        /// The genesis file.
        path: PathBuf,
        /// Its size in bytes.
        len: u64,
        /// [`GENESIS_FILE_BYTES_MAX`].
        max: u64,
    },
    /// Not TOML, a field missing, of the wrong type, or unknown.
    #[error("genesis file {} is not valid: {message}", path.display())]
    Syntax {
        /// The genesis file.
        path: PathBuf,
        /// One line: where, which field, what is wrong.
        message: String,
    },
    /// The `kind` is not [`KIND_GENESIS`].
    #[error("genesis file {} is a {found:?}, expected {KIND_GENESIS:?}", path.display())]
    WrongKind {
        /// The genesis file.
        path: PathBuf,
        /// The kind the file states.
        found: String,
    },
    /// A field of the file has a value the genesis does not allow.
    #[error("genesis file {}: field `{field}` {reason}", path.display())]
    BadField {
        /// The genesis file.
        path: PathBuf,
        /// The field, e.g. `members[2].public_key`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A value given to [`Genesis::new`] or [`Genesis::add_member`] is not allowed.
    #[error("{field} {reason}")]
    Invalid {
        /// What the value is, e.g. "member 310104 name".
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The genesis carries no signature.
    #[error("the genesis is not signed; sign it with `hukou genesis sign --admin-key FILE`")]
    Unsigned,
    /// The administrator's key is a small-order point, which verifies forged signatures.
    #[error(
        "the administrator's public key is weak (small order) and could verify anything; choose another"
    )]
    WeakAdminKey,
    /// The administrator's key is not the canonical encoding of its point.
    #[error(
        "the administrator's public key is not the canonical encoding of its point; choose another"
    )]
    NonCanonicalAdminKey,
    /// The administrator's key has a small-order component (it is not in the prime-order
    /// subgroup an honest key lies in).
    #[error(
        "the administrator's public key has a small-order component (not in the prime-order subgroup); choose another"
    )]
    MixedOrderAdminKey,
    /// The signature does not verify for the administrator's key (the rule of
    /// `hukou_protocol::signature`).
    #[error(
        "the administrator's signature does not verify: the genesis was changed after signing, or signed by another key"
    )]
    BadSignature,
    /// The key offered for signing is not the administrator key the genesis names.
    #[error(
        "the signing key's public key {found} is not the genesis's administrator key {expected}"
    )]
    AdminKeyMismatch {
        /// The genesis's administrator key, in hex.
        expected: String,
        /// The offered key's public key, in hex.
        found: String,
    },
    /// The protocol refuses the membership (duplicates, a weak key, an unsafe quorum ...).
    #[error("{0}")]
    Membership(#[from] MembershipError),
    /// More administrators than [`ADMINISTRATORS_MAX`].
    #[error("the genesis names {count} administrators, at most {max} are allowed")]
    TooManyAdministrators {
        /// How many the genesis names.
        count: usize,
        /// [`ADMINISTRATORS_MAX`].
        max: usize,
    },
    /// An administrator's key is a small-order point, which verifies forged signatures.
    #[error(
        "administrator key {} is weak (small order) and could verify anything; choose another",
        hex::encode(.key)
    )]
    WeakAdministratorKey {
        /// The refused key's 32 bytes.
        key: [u8; 32],
    },
    /// An administrator's key is not the canonical encoding of its point.
    #[error(
        "administrator key {} is not the canonical encoding of its point; choose another",
        hex::encode(.key)
    )]
    NonCanonicalAdministratorKey {
        /// The refused key's 32 bytes.
        key: [u8; 32],
    },
    /// An administrator's key has a small-order component.
    #[error(
        "administrator key {} has a small-order component (not in the prime-order subgroup); choose another",
        hex::encode(.key)
    )]
    MixedOrderAdministratorKey {
        /// The refused key's 32 bytes.
        key: [u8; 32],
    },
    /// One key is listed twice among the administrators: it would count twice towards k.
    #[error(
        "administrator key {} is listed twice; each administrator must hold a key of its own",
        hex::encode(.key)
    )]
    DuplicateAdministrator {
        /// The 32 bytes of the key listed twice.
        key: [u8; 32],
    },
    /// Fewer than two administrators: a single key could change the network.
    #[error(
        "the genesis names {count} administrator(s); at least 2 are needed, so that no single key can change the network"
    )]
    TooFewAdministrators {
        /// How many the genesis names.
        count: usize,
    },
    /// The threshold is 0 or more than the administrators.
    #[error(
        "admin threshold {threshold} is out of range: it must be between 1 and the {administrators} administrators"
    )]
    AdminThresholdOutOfRange {
        /// The threshold the genesis states.
        threshold: usize,
        /// How many administrators the genesis names.
        administrators: usize,
    },
    /// The threshold is not more than half the administrators: two conflicting configuration
    /// updates could both gather it without any administrator signing both.
    #[error(
        "admin threshold {threshold} of {administrators} administrators is not more than half: two conflicting updates could both gather it; at least {min} are needed"
    )]
    AdminThresholdNotMajority {
        /// The threshold the genesis states.
        threshold: usize,
        /// How many administrators the genesis names.
        administrators: usize,
        /// The least threshold allowed: floor(n/2)+1.
        min: usize,
    },
    /// An administrator's key is also a member's key: a bureau would hold an administrator's
    /// power through the key that signs its entries.
    #[error(
        "administrator key {} is also the key of member {code}; an administrator must hold a key of its own",
        hex::encode(.key)
    )]
    AdministratorIsMember {
        /// The 32 bytes of the key both hold.
        key: [u8; 32],
        /// The member holding it.
        code: BureauCode,
    },
}

impl GenesisError {
    /// A stable snake_case name of the refusal, for `--json` output and scripts. Never renamed
    /// or reused.
    pub fn name(&self) -> &'static str {
        match self {
            GenesisError::Io { .. } => "io",
            GenesisError::Exists { .. } => "genesis_exists",
            GenesisError::TooLarge { .. } => "genesis_too_large",
            GenesisError::Syntax { .. } => "genesis_syntax",
            GenesisError::WrongKind { .. } => "genesis_wrong_kind",
            GenesisError::BadField { .. } => "genesis_bad_field",
            GenesisError::Invalid { .. } => "genesis_invalid_value",
            GenesisError::Unsigned => "genesis_unsigned",
            GenesisError::WeakAdminKey => "genesis_weak_admin_key",
            GenesisError::NonCanonicalAdminKey => "genesis_non_canonical_admin_key",
            GenesisError::MixedOrderAdminKey => "genesis_mixed_order_admin_key",
            GenesisError::BadSignature => "genesis_bad_signature",
            GenesisError::AdminKeyMismatch { .. } => "genesis_admin_key_mismatch",
            GenesisError::Membership(e) => match e {
                MembershipError::NoMembers => "membership_no_members",
                MembershipError::TooManyMembers { .. } => "membership_too_many_members",
                MembershipError::DuplicateBureau(_) => "membership_duplicate_bureau",
                MembershipError::InvalidBureau(_) => "membership_invalid_bureau",
                MembershipError::DuplicateKey { .. } => "membership_duplicate_key",
                MembershipError::WeakKey(_) => "membership_weak_key",
                MembershipError::NonCanonicalKey(_) => "membership_non_canonical_key",
                MembershipError::MixedOrderKey(_) => "membership_mixed_order_key",
                MembershipError::BadQuorum { .. } => "membership_bad_quorum",
            },
            GenesisError::TooManyAdministrators { .. } => "genesis_too_many_administrators",
            GenesisError::WeakAdministratorKey { .. } => "genesis_weak_administrator_key",
            GenesisError::NonCanonicalAdministratorKey { .. } => {
                "genesis_non_canonical_administrator_key"
            }
            GenesisError::MixedOrderAdministratorKey { .. } => {
                "genesis_mixed_order_administrator_key"
            }
            GenesisError::DuplicateAdministrator { .. } => "genesis_duplicate_administrator",
            GenesisError::TooFewAdministrators { .. } => "genesis_too_few_administrators",
            GenesisError::AdminThresholdOutOfRange { .. } => "genesis_admin_threshold_out_of_range",
            GenesisError::AdminThresholdNotMajority { .. } => {
                "genesis_admin_threshold_not_majority"
            }
            GenesisError::AdministratorIsMember { .. } => "genesis_administrator_is_member",
        }
    }
}

/// One member bureau as the genesis lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenesisMember {
    /// The bureau's 6-digit administrative division code.
    pub code: BureauCode,
    /// The bureau's name, e.g. "上海市公安局徐汇分局".
    pub name: String,
    /// The key that signs the bureau's entries, checkpoints and cosignatures.
    pub public_key: VerifyingKey,
    /// libp2p multiaddresses where the bureau's node listens, in order of preference. Kept as
    /// text here; the network layer parses them.
    pub addresses: Vec<String>,
}

/// A genesis document, signed or not. See the module documentation for what the signature covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Genesis {
    network: String,
    admin_public_key: VerifyingKey,
    /// As the file states it; `None` means floor(2n/3)+1 of the members.
    quorum: Option<usize>,
    /// Sorted by code: `add_member` keeps the order, and parsing sorts.
    members: Vec<GenesisMember>,
    /// The administrators who sign configuration updates, sorted by their 32 bytes (the order
    /// of the canonical encoding). `None`: the legacy form, whose one administrator is
    /// `admin_public_key`.
    administrators: Option<Vec<VerifyingKey>>,
    /// How many administrators must sign a configuration update; 1 in the legacy form.
    admin_threshold: usize,
    signature: Option<Signature>,
}

/// A genesis whose signature verified and whose membership the protocol accepts.
#[derive(Clone, Debug)]
pub struct VerifiedGenesis {
    genesis: Genesis,
    membership: Membership,
    hash: GenesisHash,
}

impl VerifiedGenesis {
    /// The genesis document.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// The membership the rulebook, witness and auditor use.
    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// The genesis hash auditors pin.
    pub fn hash(&self) -> GenesisHash {
        self.hash
    }

    /// The administrators (see [`Genesis::administrators`]).
    pub fn administrators(&self) -> &[VerifyingKey] {
        self.genesis.administrators()
    }

    /// How many administrators must sign a configuration update (see
    /// [`Genesis::admin_threshold`]).
    pub fn admin_threshold(&self) -> usize {
        self.genesis.admin_threshold()
    }

    /// The addresses of a member, or `None` for a bureau that is not a member.
    pub fn addresses(&self, code: BureauCode) -> Option<&[String]> {
        self.genesis
            .members
            .iter()
            .find(|m| m.code == code)
            .map(|m| m.addresses.as_slice())
    }
}

impl Genesis {
    /// An unsigned genesis with no members yet.
    pub fn new(network: &str, admin_public_key: VerifyingKey) -> Result<Genesis, GenesisError> {
        check_network_name(network).map_err(|reason| GenesisError::Invalid {
            field: "network name".to_string(),
            reason,
        })?;
        Ok(Genesis {
            network: network.to_string(),
            admin_public_key,
            quorum: None,
            members: Vec::new(),
            administrators: None,
            admin_threshold: 1,
            signature: None,
        })
    }

    /// The network's name.
    pub fn network(&self) -> &str {
        &self.network
    }

    /// The administrator's public key.
    pub fn admin_public_key(&self) -> &VerifyingKey {
        &self.admin_public_key
    }

    /// The quorum in force: the stated one, or floor(2n/3)+1 of the members.
    pub fn quorum(&self) -> usize {
        self.quorum
            .unwrap_or_else(|| quorum_for(self.members.len()))
    }

    /// The quorum as stated in the file, if it states one.
    pub fn stated_quorum(&self) -> Option<usize> {
        self.quorum
    }

    /// The members, sorted by code.
    pub fn members(&self) -> &[GenesisMember] {
        &self.members
    }

    /// The administrators whose k-of-n signatures change the network's configuration, sorted by
    /// their bytes. In the legacy form (no `administrators` in the file), the one administrator
    /// key that signs the genesis.
    pub fn administrators(&self) -> &[VerifyingKey] {
        match &self.administrators {
            Some(administrators) => administrators,
            None => std::slice::from_ref(&self.admin_public_key),
        }
    }

    /// How many of [`Genesis::administrators`] must sign a configuration update: the stated
    /// threshold, or 1 in the legacy form.
    pub fn admin_threshold(&self) -> usize {
        self.admin_threshold
    }

    /// Whether the genesis names its administrators (format "HKG" 0x02), rather than being of
    /// the legacy form.
    pub fn states_administrators(&self) -> bool {
        self.administrators.is_some()
    }

    /// The administrator's signature, if signed.
    pub fn signature(&self) -> Option<&Signature> {
        self.signature.as_ref()
    }

    /// States the quorum (`None`: the default floor(2n/3)+1). Clears the signature. Whether the
    /// quorum is safe is checked by [`Genesis::verify`], when the members are known.
    pub fn set_quorum(&mut self, quorum: Option<usize>) {
        self.quorum = quorum;
        self.signature = None;
    }

    /// Names the administrators and their threshold (the genesis leaves the legacy form),
    /// refusing what [`Genesis::verify`] would refuse of them (`check_administrators`), a key of
    /// a member included. Clears the signature.
    pub fn set_administrators(
        &mut self,
        mut administrators: Vec<VerifyingKey>,
        threshold: usize,
    ) -> Result<(), GenesisError> {
        check_administrators(&administrators, threshold, &self.members)?;
        administrators.sort_by_key(|k| k.to_bytes());
        self.administrators = Some(administrators);
        self.admin_threshold = threshold;
        self.signature = None;
        Ok(())
    }

    /// Adds a member, refusing a duplicate code or key, a key `check_key` refuses (small-order,
    /// non-canonical or mixed-order), an administrator's key, an invalid name or address, or a
    /// member beyond [`MEMBERS_MAX`]. Clears the signature.
    pub fn add_member(&mut self, member: GenesisMember) -> Result<(), GenesisError> {
        let invalid = |field: &str, reason: String| GenesisError::Invalid {
            field: format!("member {} {field}", member.code),
            reason,
        };
        if !member.code.is_valid() {
            return Err(MembershipError::InvalidBureau(member.code).into());
        }
        check_bureau_name(&member.name).map_err(|r| invalid("name", r))?;
        check_addresses(&member.addresses).map_err(|r| invalid("addresses", r))?;
        check_key(&member.public_key).map_err(|fault| MembershipError::key(member.code, fault))?;
        for existing in &self.members {
            if existing.code == member.code {
                return Err(MembershipError::DuplicateBureau(member.code).into());
            }
            if existing.public_key == member.public_key {
                return Err(MembershipError::DuplicateKey {
                    first: existing.code,
                    second: member.code,
                }
                .into());
            }
        }
        if let Some(administrators) = &self.administrators
            && administrators.contains(&member.public_key)
        {
            return Err(GenesisError::AdministratorIsMember {
                key: member.public_key.to_bytes(),
                code: member.code,
            });
        }
        if self.members.len() >= MEMBERS_MAX {
            return Err(MembershipError::TooManyMembers {
                count: self.members.len() + 1,
                max: MEMBERS_MAX,
            }
            .into());
        }
        let at = self.members.partition_point(|m| m.code < member.code);
        self.members.insert(at, member);
        self.signature = None;
        Ok(())
    }

    /// The canonical encoding that the signature and the hash cover.
    pub fn canonical_encoding(&self) -> Vec<u8> {
        let mut members: Vec<(BureauCode, &str, [u8; 32], &[String])> = self
            .members
            .iter()
            .map(|m| {
                (
                    m.code,
                    m.name.as_str(),
                    m.public_key.to_bytes(),
                    m.addresses.as_slice(),
                )
            })
            .collect();
        // Members are kept sorted, but the encoding must not depend on that: sort here too.
        members.sort_by_key(|m| m.0);
        let members: Vec<(BureauCode, String, [u8; 32], Vec<String>)> = members
            .into_iter()
            .map(|(code, name, key, addresses)| (code, name.to_string(), key, addresses.to_vec()))
            .collect();
        let content = (
            self.network.clone(),
            self.admin_public_key.to_bytes(),
            self.quorum() as u64,
            members,
        );
        let mut out = Vec::with_capacity(256);
        match &self.administrators {
            // The legacy form: byte for byte the encoding before administrators existed.
            None => {
                out.extend_from_slice(&MAGIC_GENESIS);
                encoding::encode_into(&content, &mut out);
            }
            Some(administrators) => {
                // Kept sorted, but the encoding must not depend on that: sort here too.
                let mut administrators: Vec<[u8; 32]> =
                    administrators.iter().map(VerifyingKey::to_bytes).collect();
                administrators.sort_unstable();
                let (network, admin, quorum, members) = content;
                let content = (
                    network,
                    admin,
                    quorum,
                    members,
                    administrators,
                    self.admin_threshold as u64,
                );
                out.extend_from_slice(&MAGIC_GENESIS_ADMINISTRATORS);
                encoding::encode_into(&content, &mut out);
            }
        }
        out
    }

    /// The message the administrator signs: the domain tag, then the canonical encoding.
    pub fn signing_message(&self) -> Vec<u8> {
        let mut message = DOMAIN_GENESIS_SIGNATURE.to_vec();
        message.extend_from_slice(&self.canonical_encoding());
        message
    }

    /// SHA-256 of the canonical encoding. Independent of the signature, comments and the order
    /// of members in the file.
    pub fn hash(&self) -> GenesisHash {
        GenesisHash(Sha256::digest(self.canonical_encoding()).into())
    }

    /// Signs the genesis with the administrator's key, which must be the key the genesis names.
    pub fn sign(&mut self, admin_key: &SigningKey) -> Result<(), GenesisError> {
        let found = admin_key.verifying_key();
        if found != self.admin_public_key {
            return Err(GenesisError::AdminKeyMismatch {
                expected: hex::encode(self.admin_public_key.to_bytes()),
                found: hex::encode(found.to_bytes()),
            });
        }
        self.signature = Some(Signature::sign(admin_key, &self.signing_message()));
        Ok(())
    }

    /// Checks the administrator's key (`check_key`) and signature (the protocol's one rule,
    /// `hukou_protocol::signature::verify`), then forms the membership, which refuses
    /// small-order, non-canonical and mixed-order keys, duplicate codes or keys and an unsafe
    /// quorum, then checks the administrators, if the genesis names them
    /// (`check_administrators`).
    pub fn verify(&self) -> Result<VerifiedGenesis, GenesisError> {
        let signature = self.signature.as_ref().ok_or(GenesisError::Unsigned)?;
        check_key(&self.admin_public_key).map_err(|fault| match fault {
            KeyFault::SmallOrder => GenesisError::WeakAdminKey,
            KeyFault::NonCanonical => GenesisError::NonCanonicalAdminKey,
            KeyFault::MixedOrder => GenesisError::MixedOrderAdminKey,
        })?;
        if !signature.verify(&self.admin_public_key, &self.signing_message()) {
            return Err(GenesisError::BadSignature);
        }
        let members = self.members.iter().map(|m| Member {
            code: m.code,
            name: m.name.clone(),
            key: m.public_key,
        });
        let membership = Membership::new(&self.network, members, self.quorum())?;
        if let Some(administrators) = &self.administrators {
            check_administrators(administrators, self.admin_threshold, &self.members)?;
        }
        Ok(VerifiedGenesis {
            genesis: self.clone(),
            membership,
            hash: self.hash(),
        })
    }

    /// Reads and parses a genesis file (it is not verified: call [`Genesis::verify`]).
    pub fn load(path: &Path) -> Result<Genesis, GenesisError> {
        let io = |action: &'static str| {
            move |source| GenesisError::Io {
                action,
                path: path.to_path_buf(),
                source,
            }
        };
        let file = File::open(path).map_err(io("open"))?;
        let len = file.metadata().map_err(io("inspect"))?.len();
        if len > GENESIS_FILE_BYTES_MAX {
            return Err(GenesisError::TooLarge {
                path: path.to_path_buf(),
                len,
                max: GENESIS_FILE_BYTES_MAX,
            });
        }
        let mut text = String::new();
        file.take(GENESIS_FILE_BYTES_MAX + 1)
            .read_to_string(&mut text)
            .map_err(io("read"))?;
        Genesis::from_toml_str(&text, path)
    }

    /// Parses genesis TOML; `path` only names the source in errors.
    pub fn from_toml_str(text: &str, path: &Path) -> Result<Genesis, GenesisError> {
        let raw: RawGenesis = toml::from_str(text).map_err(|e| GenesisError::Syntax {
            path: path.to_path_buf(),
            message: crate::toml_error_message(text, &e),
        })?;
        raw.into_genesis(path)
    }

    /// The TOML text of this genesis, members sorted by code.
    pub fn to_toml_string(&self) -> String {
        let raw = RawGenesis::from_genesis(self);
        let body = toml::to_string(&raw).expect("a genesis always serialises to TOML");
        format!(
            "# hukou-ledger genesis (docs/KEYS.md). The administrator's signature covers a canonical\n\
             # encoding of these fields, not this text: change it with `hukou genesis`, then sign again.\n{body}"
        )
    }

    /// Writes the genesis to `path`, replacing any existing file atomically (temporary file,
    /// then rename), so a reader never sees half a genesis.
    pub fn save(&self, path: &Path) -> Result<(), GenesisError> {
        let mut temporary = path.as_os_str().to_owned();
        temporary.push(format!(".tmp-{}", std::process::id()));
        let temporary = PathBuf::from(temporary);
        let _ = fs::remove_file(&temporary);
        let result = write_new(&temporary, self.to_toml_string().as_bytes())
            .and_then(|()| fs::rename(&temporary, path));
        if result.is_err() {
            let _ = fs::remove_file(&temporary);
        }
        result.map_err(|source| GenesisError::Io {
            action: "write",
            path: path.to_path_buf(),
            source,
        })
    }

    /// Writes the genesis to a new file, refusing to replace an existing one.
    pub fn save_new(&self, path: &Path) -> Result<(), GenesisError> {
        match write_new(path, self.to_toml_string().as_bytes()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(GenesisError::Exists {
                path: path.to_path_buf(),
            }),
            Err(source) => Err(GenesisError::Io {
                action: "write",
                path: path.to_path_buf(),
                source,
            }),
        }
    }
}

/// Creates `path` exclusively and writes `bytes` durably, removing it if the write fails.
fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = OpenOptions::new().write(true).create_new(true).open(path)?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    if written.is_err() {
        drop(file);
        let _ = fs::remove_file(path);
    }
    written
}

/// The rules for the administrators a genesis names, in the order they are checked (the first
/// failure is reported):
///
/// 1. at most [`ADMINISTRATORS_MAX`] [`GenesisError::TooManyAdministrators`];
/// 2. each key, in the order given, acceptable to `check_key`
///    ([`GenesisError::WeakAdministratorKey`], [`GenesisError::NonCanonicalAdministratorKey`],
///    [`GenesisError::MixedOrderAdministratorKey`]);
/// 3. no key twice [`GenesisError::DuplicateAdministrator`];
/// 4. n ≥ 2 [`GenesisError::TooFewAdministrators`]: no single key changes the network;
/// 5. 1 ≤ k ≤ n [`GenesisError::AdminThresholdOutOfRange`];
/// 6. k > n/2 [`GenesisError::AdminThresholdNotMajority`]: two sets of k administrators always
///    share one, so two conflicting updates both reach k only if an administrator signs both.
///    With n ≥ 2 this makes k ≥ 2;
/// 7. no administrator holds a member's key [`GenesisError::AdministratorIsMember`].
fn check_administrators(
    administrators: &[VerifyingKey],
    threshold: usize,
    members: &[GenesisMember],
) -> Result<(), GenesisError> {
    let count = administrators.len();
    if count > ADMINISTRATORS_MAX {
        return Err(GenesisError::TooManyAdministrators {
            count,
            max: ADMINISTRATORS_MAX,
        });
    }
    for key in administrators {
        check_key(key).map_err(|fault| match fault {
            KeyFault::SmallOrder => GenesisError::WeakAdministratorKey {
                key: key.to_bytes(),
            },
            KeyFault::NonCanonical => GenesisError::NonCanonicalAdministratorKey {
                key: key.to_bytes(),
            },
            KeyFault::MixedOrder => GenesisError::MixedOrderAdministratorKey {
                key: key.to_bytes(),
            },
        })?;
    }
    for (i, key) in administrators.iter().enumerate() {
        if administrators[..i].contains(key) {
            return Err(GenesisError::DuplicateAdministrator {
                key: key.to_bytes(),
            });
        }
    }
    if count < 2 {
        return Err(GenesisError::TooFewAdministrators { count });
    }
    if threshold == 0 || threshold > count {
        return Err(GenesisError::AdminThresholdOutOfRange {
            threshold,
            administrators: count,
        });
    }
    let min = count / 2 + 1;
    if threshold < min {
        return Err(GenesisError::AdminThresholdNotMajority {
            threshold,
            administrators: count,
            min,
        });
    }
    // SPEC (issue 13): no single key can change the network. Follows from n ≥ 2 and k > n/2.
    assert!(threshold >= 2, "a majority of at least 2 administrators");
    for key in administrators {
        if let Some(member) = members.iter().find(|m| m.public_key == *key) {
            return Err(GenesisError::AdministratorIsMember {
                key: key.to_bytes(),
                code: member.code,
            });
        }
    }
    Ok(())
}

/// Refuses text that is empty, too long, or holds control characters (which could make two
/// names look alike in a terminal or a log).
fn check_text(text: &str, bytes_max: usize) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err("is empty".to_string());
    }
    if text.len() > bytes_max {
        return Err(format!(
            "is {} bytes long, at most {bytes_max} are allowed",
            text.len()
        ));
    }
    if let Some(c) = text.chars().find(|c| c.is_control()) {
        return Err(format!("contains the control character {c:?}"));
    }
    if text.trim() != text {
        return Err("has leading or trailing white space".to_string());
    }
    Ok(())
}

fn check_network_name(name: &str) -> Result<(), String> {
    check_text(name, NETWORK_NAME_BYTES_MAX)
}

fn check_bureau_name(name: &str) -> Result<(), String> {
    check_text(name, BUREAU_NAME_BYTES_MAX)
}

/// Light checks of multiaddress text (the network layer parses it fully): a bounded number of
/// non-empty, bounded, `/`-led addresses without white space, none repeated.
fn check_addresses(addresses: &[String]) -> Result<(), String> {
    if addresses.len() > MEMBER_ADDRESSES_MAX {
        return Err(format!(
            "lists {} addresses, at most {MEMBER_ADDRESSES_MAX} are allowed",
            addresses.len()
        ));
    }
    for (i, address) in addresses.iter().enumerate() {
        if !address.starts_with('/') || address.len() < 2 {
            return Err(format!(
                "{address:?} is not a multiaddress (it should look like /ip4/192.0.2.1/tcp/4101)"
            ));
        }
        if address.len() > ADDRESS_BYTES_MAX {
            return Err(format!(
                "{address:?} is {} bytes long, at most {ADDRESS_BYTES_MAX} are allowed",
                address.len()
            ));
        }
        if address.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("{address:?} contains white space"));
        }
        if addresses[..i].contains(address) {
            return Err(format!("{address:?} is listed twice"));
        }
    }
    Ok(())
}

/// A genesis file's fields as written, before any check beyond TOML syntax.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGenesis {
    #[serde(default)]
    kind: Option<String>,
    network: String,
    admin_public_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    quorum: Option<u64>,
    /// Absent in the legacy form; then `admin_threshold` must be absent too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    administrators: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    admin_threshold: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signature: Option<String>,
    #[serde(default)]
    members: Vec<RawMember>,
}

/// A member as written.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMember {
    code: String,
    name: String,
    public_key: String,
    #[serde(default)]
    addresses: Vec<String>,
}

impl RawGenesis {
    fn from_genesis(genesis: &Genesis) -> RawGenesis {
        RawGenesis {
            kind: Some(KIND_GENESIS.to_string()),
            network: genesis.network.clone(),
            admin_public_key: hex::encode(genesis.admin_public_key.to_bytes()),
            quorum: genesis.quorum.map(|q| q as u64),
            administrators: genesis.administrators.as_ref().map(|administrators| {
                administrators
                    .iter()
                    .map(|k| hex::encode(k.to_bytes()))
                    .collect()
            }),
            admin_threshold: genesis
                .administrators
                .as_ref()
                .map(|_| genesis.admin_threshold as u64),
            signature: genesis.signature.map(|s| hex::encode(s.0)),
            members: genesis
                .members
                .iter()
                .map(|m| RawMember {
                    code: m.code.to_string(),
                    name: m.name.clone(),
                    public_key: hex::encode(m.public_key.to_bytes()),
                    addresses: m.addresses.clone(),
                })
                .collect(),
        }
    }

    /// Checks every field, naming the file and the field of the first fault.
    fn into_genesis(self, path: &Path) -> Result<Genesis, GenesisError> {
        let bad = |field: String, reason: String| GenesisError::BadField {
            path: path.to_path_buf(),
            field,
            reason,
        };
        if let Some(kind) = self.kind
            && kind != KIND_GENESIS
        {
            return Err(GenesisError::WrongKind {
                path: path.to_path_buf(),
                found: kind,
            });
        }
        check_network_name(&self.network).map_err(|r| bad("network".into(), r))?;
        let admin_public_key = parse_public_key(&self.admin_public_key)
            .map_err(|r| bad("admin_public_key".into(), r))?;
        let quorum = match self.quorum {
            None => None,
            Some(q) => Some(
                usize::try_from(q)
                    .ok()
                    .filter(|q| *q <= MEMBERS_MAX)
                    .ok_or_else(|| bad("quorum".into(), format!("{q} is out of range")))?,
            ),
        };
        let (administrators, admin_threshold) = match (self.administrators, self.admin_threshold) {
            (None, None) => (None, 1),
            (None, Some(_)) => {
                return Err(bad(
                    "admin_threshold".into(),
                    "is allowed only with `administrators`".into(),
                ));
            }
            (Some(_), None) => {
                return Err(bad(
                    "admin_threshold".into(),
                    "is required when `administrators` is given".into(),
                ));
            }
            (Some(raw), Some(threshold)) => {
                if raw.len() > ADMINISTRATORS_MAX {
                    return Err(bad(
                        "administrators".into(),
                        format!(
                            "lists {} administrators, at most {ADMINISTRATORS_MAX} are allowed",
                            raw.len()
                        ),
                    ));
                }
                let threshold = usize::try_from(threshold).map_err(|_| {
                    bad(
                        "admin_threshold".into(),
                        format!("{threshold} is out of range"),
                    )
                })?;
                let mut administrators = Vec::with_capacity(raw.len());
                for (i, text) in raw.iter().enumerate() {
                    administrators.push(
                        parse_public_key(text)
                            .map_err(|r| bad(format!("administrators[{i}]"), r))?,
                    );
                }
                administrators.sort_by_key(|k| k.to_bytes());
                (Some(administrators), threshold)
            }
        };
        let signature = match self.signature {
            None => None,
            Some(text) => {
                let mut bytes = [0u8; 64];
                if text.len() != 128 {
                    return Err(bad(
                        "signature".into(),
                        format!("has {} hex digits, 128 are needed", text.len()),
                    ));
                }
                hex::decode_to_slice(&text, &mut bytes)
                    .map_err(|_| bad("signature".into(), "is not hexadecimal".into()))?;
                Some(Signature(bytes))
            }
        };
        if self.members.len() > MEMBERS_MAX {
            return Err(bad(
                "members".into(),
                format!(
                    "lists {} members, at most {MEMBERS_MAX} are allowed",
                    self.members.len()
                ),
            ));
        }
        let mut members = Vec::with_capacity(self.members.len());
        for (i, raw) in self.members.into_iter().enumerate() {
            let field = |name: &str| format!("members[{i}].{name}");
            let code: BureauCode =
                raw.code
                    .parse()
                    .map_err(|e: hukou_protocol::types::ParseError| {
                        bad(field("code"), format!("is not valid: {e}"))
                    })?;
            check_bureau_name(&raw.name).map_err(|r| bad(field("name"), r))?;
            let public_key =
                parse_public_key(&raw.public_key).map_err(|r| bad(field("public_key"), r))?;
            check_addresses(&raw.addresses).map_err(|r| bad(field("addresses"), r))?;
            members.push(GenesisMember {
                code,
                name: raw.name,
                public_key,
                addresses: raw.addresses,
            });
        }
        members.sort_by_key(|m| m.code);
        Ok(Genesis {
            network: self.network,
            admin_public_key,
            quorum,
            members,
            administrators,
            admin_threshold,
            signature,
        })
    }
}

/// Parses 64 hex digits as an ed25519 public key. Any encoding of a curve point parses; keys
/// `check_key` refuses (small-order, non-canonical, mixed-order) are refused by
/// [`Genesis::add_member`] and [`Genesis::verify`], with an error that names the fault.
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, String> {
    let mut bytes = [0u8; 32];
    if text.len() != 64 {
        return Err(format!("has {} hex digits, 64 are needed", text.len()));
    }
    hex::decode_to_slice(text, &mut bytes).map_err(|_| "is not hexadecimal".to_string())?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| "is not an ed25519 public key".to_string())
}

/// The crafted keys and signatures of the protocol's verification tests.
#[cfg(test)]
#[path = "../../protocol/tests/support/crafted.rs"]
mod crafted;

#[cfg(test)]
mod tests {
    use super::*;

    /// The identity point: a small-order ("weak") public key that verifies forged signatures.
    const IDENTITY_POINT: [u8; 32] = {
        let mut bytes = [0u8; 32];
        bytes[0] = 1;
        bytes
    };

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn member(code: u32, seed: u8) -> GenesisMember {
        GenesisMember {
            code: BureauCode::new(code).unwrap(),
            name: format!("公安局 {code}"),
            public_key: key(seed).verifying_key(),
            addresses: vec![format!("/ip4/127.0.0.1/tcp/{}", 4000 + u32::from(seed))],
        }
    }

    /// A signed genesis of three members, and the administrator's key.
    fn signed() -> (Genesis, SigningKey) {
        let admin = key(100);
        let mut genesis = Genesis::new("hukou-test", admin.verifying_key()).unwrap();
        genesis.add_member(member(310104, 1)).unwrap();
        genesis
            .add_member(GenesisMember {
                name: "上海市公安局徐汇分局".to_string(),
                ..member(310101, 2)
            })
            .unwrap();
        genesis.add_member(member(330502, 3)).unwrap();
        genesis.sign(&admin).unwrap();
        (genesis, admin)
    }

    fn assert_bad_signature(genesis: &Genesis, what: &str) {
        let err = genesis.verify().unwrap_err();
        assert!(
            matches!(err, GenesisError::BadSignature),
            "{what}: expected bad signature, got {err}"
        );
    }

    #[test]
    fn a_signed_genesis_verifies_and_round_trips() {
        let (genesis, admin) = signed();
        let verified = genesis.verify().unwrap();
        assert_eq!(verified.membership().len(), 3);
        assert_eq!(verified.membership().quorum(), 3);
        assert_eq!(verified.membership().network_name(), "hukou-test");
        assert_eq!(verified.hash(), genesis.hash());
        let code = BureauCode::new(310101).unwrap();
        assert_eq!(
            verified.membership().member(code).unwrap().name,
            "上海市公安局徐汇分局"
        );
        assert_eq!(
            verified.addresses(code).unwrap(),
            ["/ip4/127.0.0.1/tcp/4002".to_string()]
        );
        let text = genesis.to_toml_string();
        let parsed = Genesis::from_toml_str(&text, Path::new("g.toml")).unwrap();
        assert_eq!(parsed, genesis);
        assert_eq!(parsed.verify().unwrap().hash(), genesis.hash());

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("genesis.toml");
        genesis.save_new(&path).unwrap();
        assert!(matches!(
            genesis.save_new(&path),
            Err(GenesisError::Exists { .. })
        ));
        genesis.save(&path).unwrap();
        assert_eq!(Genesis::load(&path).unwrap(), genesis);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        let _ = admin;
    }

    #[test]
    fn unsigned_is_its_own_error() {
        let (mut genesis, _) = signed();
        genesis.set_quorum(Some(3));
        assert!(matches!(genesis.verify(), Err(GenesisError::Unsigned)));
        let mut fresh = Genesis::new("n", key(100).verifying_key()).unwrap();
        fresh.add_member(member(310104, 1)).unwrap();
        assert!(matches!(fresh.verify(), Err(GenesisError::Unsigned)));
    }

    #[test]
    fn every_change_breaks_the_signature() {
        let (genesis, _) = signed();
        let signature = *genesis.signature().unwrap();
        // Changes made behind the API's back keep the old signature, as a hand edit would.
        let tampered = |edit: &dyn Fn(&mut Genesis)| {
            let mut g = genesis.clone();
            edit(&mut g);
            g.signature = Some(signature);
            g
        };
        assert_bad_signature(&tampered(&|g| g.members[0].name.push('X')), "name");
        assert_bad_signature(
            &tampered(&|g| g.members[1].addresses[0] = "/ip4/10.0.0.1/tcp/4101".into()),
            "address",
        );
        assert_bad_signature(
            &tampered(&|g| g.members[2].addresses.push("/ip4/10.0.0.1/tcp/1".into())),
            "added address",
        );
        assert_bad_signature(
            &tampered(&|g| g.members[0].public_key = key(9).verifying_key()),
            "key",
        );
        assert_bad_signature(
            &tampered(&|g| g.members[0].code = BureauCode::new(310105).unwrap()),
            "code",
        );
        assert_bad_signature(&tampered(&|g| g.quorum = Some(2)), "quorum");
        assert_bad_signature(&tampered(&|g| g.network = "hukou-prod".into()), "network");
        assert_bad_signature(
            &tampered(&|g| g.members.push(member(440305, 4))),
            "added member",
        );
        assert_bad_signature(
            &tampered(&|g| {
                g.members.pop();
            }),
            "removed member",
        );
        assert_bad_signature(
            &tampered(&|g| g.admin_public_key = key(101).verifying_key()),
            "admin key",
        );

        // Stating the default quorum explicitly is the same genesis.
        let explicit = tampered(&|g| g.quorum = Some(3));
        assert_eq!(explicit.hash(), genesis.hash());
        explicit.verify().unwrap();

        // Reordering members is not a change: the encoding sorts them.
        let reordered = tampered(&|g| g.members.reverse());
        assert_eq!(reordered.hash(), genesis.hash());
        reordered.verify().unwrap();

        // A changed signature fails too.
        let mut forged = genesis.clone();
        forged.signature.as_mut().unwrap().0[0] ^= 1;
        assert_bad_signature(&forged, "signature");
    }

    #[test]
    fn reordering_members_in_the_file_changes_nothing() {
        let (genesis, _) = signed();
        let text = genesis.to_toml_string();
        let blocks: Vec<&str> = text.split("[[members]]").collect();
        assert_eq!(blocks.len(), 4);
        let reordered = format!(
            "{}[[members]]{}[[members]]{}[[members]]{}",
            blocks[0], blocks[3], blocks[1], blocks[2]
        );
        assert_ne!(reordered, text);
        let parsed = Genesis::from_toml_str(&reordered, Path::new("g.toml")).unwrap();
        assert_eq!(parsed.verify().unwrap().hash(), genesis.hash());
    }

    #[test]
    fn signing_needs_the_named_admin_key() {
        let (mut genesis, _) = signed();
        let err = genesis.sign(&key(7)).unwrap_err();
        assert!(
            matches!(err, GenesisError::AdminKeyMismatch { .. }),
            "{err}"
        );
    }

    #[test]
    fn add_member_refuses_duplicates_and_weak_keys_and_clears_the_signature() {
        let (mut genesis, admin) = signed();
        let err = genesis.add_member(member(310104, 50)).unwrap_err();
        assert!(
            matches!(err, GenesisError::Membership(MembershipError::DuplicateBureau(c)) if c.get() == 310104),
            "{err}"
        );
        let err = genesis.add_member(member(440305, 1)).unwrap_err();
        assert!(
            matches!(err, GenesisError::Membership(MembershipError::DuplicateKey { first, second })
                if first.get() == 310104 && second.get() == 440305),
            "{err}"
        );
        let weak = GenesisMember {
            public_key: VerifyingKey::from_bytes(&IDENTITY_POINT).unwrap(),
            ..member(440305, 60)
        };
        let err = genesis.add_member(weak).unwrap_err();
        assert!(
            matches!(err, GenesisError::Membership(MembershipError::WeakKey(_))),
            "{err}"
        );
        let err = genesis
            .add_member(GenesisMember {
                addresses: vec!["127.0.0.1:4101".into()],
                ..member(440305, 60)
            })
            .unwrap_err();
        assert!(matches!(err, GenesisError::Invalid { .. }), "{err}");
        // Refusals left the signed genesis untouched.
        genesis.verify().unwrap();

        genesis.add_member(member(440305, 60)).unwrap();
        assert!(matches!(genesis.verify(), Err(GenesisError::Unsigned)));
        genesis.sign(&admin).unwrap();
        let verified = genesis.verify().unwrap();
        assert_eq!(verified.membership().len(), 4);
        assert_eq!(verified.membership().quorum(), 3);
    }

    #[test]
    fn a_signed_weak_member_key_is_refused() {
        let (genesis, admin) = signed();
        let text = genesis.to_toml_string().replace(
            &hex::encode(key(3).verifying_key().to_bytes()),
            &hex::encode(IDENTITY_POINT),
        );
        let mut weak = Genesis::from_toml_str(&text, Path::new("g.toml")).unwrap();
        weak.sign(&admin).unwrap();
        let err = weak.verify().unwrap_err();
        assert!(
            matches!(err, GenesisError::Membership(MembershipError::WeakKey(c)) if c.get() == 330502),
            "{err}"
        );
        assert_eq!(err.name(), "membership_weak_key");
    }

    /// A crafted key of each kind `check_key` refuses, by name.
    fn refused_keys() -> Vec<(crafted::KeyKind, VerifyingKey)> {
        [
            crafted::KeyKind::SmallOrder,
            crafted::KeyKind::NonCanonical,
            crafted::KeyKind::MixedOrder,
        ]
        .into_iter()
        .map(|kind| {
            let case = crafted::keys(b"genesis")
                .into_iter()
                .find(|c| c.kind == kind)
                .unwrap();
            (kind, case.key)
        })
        .collect()
    }

    #[test]
    fn member_keys_check_key_refuses_are_refused_by_name_where_they_enter() {
        for (kind, bad_key) in refused_keys() {
            let refusal = |code: u32| {
                let code = BureauCode::new(code).unwrap();
                match kind {
                    crafted::KeyKind::SmallOrder => MembershipError::WeakKey(code),
                    crafted::KeyKind::NonCanonical => MembershipError::NonCanonicalKey(code),
                    crafted::KeyKind::MixedOrder => MembershipError::MixedOrderKey(code),
                    crafted::KeyKind::Honest => unreachable!(),
                }
            };
            let name = match kind {
                crafted::KeyKind::SmallOrder => "membership_weak_key",
                crafted::KeyKind::NonCanonical => "membership_non_canonical_key",
                crafted::KeyKind::MixedOrder => "membership_mixed_order_key",
                crafted::KeyKind::Honest => unreachable!(),
            };

            // Added by `hukou genesis add-member`.
            let (mut genesis, _) = signed();
            let err = genesis
                .add_member(GenesisMember {
                    public_key: bad_key,
                    ..member(440305, 60)
                })
                .unwrap_err();
            assert!(
                matches!(&err, GenesisError::Membership(e) if *e == refusal(440305)),
                "{kind:?}: {err}"
            );
            assert_eq!(err.name(), name);
            genesis.verify().unwrap();

            // Written into the file by hand and signed: refused when the genesis is verified.
            let (genesis, admin) = signed();
            let text = genesis.to_toml_string().replace(
                &hex::encode(key(3).verifying_key().to_bytes()),
                &hex::encode(bad_key.to_bytes()),
            );
            let mut edited = Genesis::from_toml_str(&text, Path::new("g.toml")).unwrap();
            edited.sign(&admin).unwrap();
            let err = edited.verify().unwrap_err();
            assert!(
                matches!(&err, GenesisError::Membership(e) if *e == refusal(330502)),
                "{kind:?}: {err}"
            );
            assert_eq!(err.name(), name);
        }
    }

    #[test]
    fn an_admin_key_check_key_refuses_is_refused_by_name() {
        for (kind, bad_key) in refused_keys() {
            let (genesis, _) = signed();
            let text = genesis.to_toml_string().replace(
                &hex::encode(key(100).verifying_key().to_bytes()),
                &hex::encode(bad_key.to_bytes()),
            );
            let edited = Genesis::from_toml_str(&text, Path::new("g.toml")).unwrap();
            let err = edited.verify().unwrap_err();
            let (matched, name) = match kind {
                crafted::KeyKind::SmallOrder => (
                    matches!(err, GenesisError::WeakAdminKey),
                    "genesis_weak_admin_key",
                ),
                crafted::KeyKind::NonCanonical => (
                    matches!(err, GenesisError::NonCanonicalAdminKey),
                    "genesis_non_canonical_admin_key",
                ),
                crafted::KeyKind::MixedOrder => (
                    matches!(err, GenesisError::MixedOrderAdminKey),
                    "genesis_mixed_order_admin_key",
                ),
                crafted::KeyKind::Honest => unreachable!(),
            };
            assert!(matched, "{kind:?}: {err}");
            assert_eq!(err.name(), name);
        }
    }

    /// The administrator's signature is judged by the protocol's one rule: every crafted
    /// signature over the genesis gets its ZIP-215 verdict.
    #[test]
    fn crafted_admin_signatures_get_the_one_rules_verdict() {
        let (genesis, admin) = signed();
        let text = genesis.to_toml_string();
        let honest = hex::encode(genesis.signature().unwrap().0);
        assert!(text.contains(&honest));
        let cases = crafted::signatures(&admin, &genesis.signing_message());
        assert!(cases.iter().any(|c| c.accepted) && cases.iter().any(|c| !c.accepted));
        for case in cases {
            let edited = text.replace(&honest, &hex::encode(case.signature));
            let edited = Genesis::from_toml_str(&edited, Path::new("g.toml")).unwrap();
            let verdict = edited.verify();
            if case.accepted {
                assert_eq!(verdict.unwrap().hash(), genesis.hash(), "{}", case.name);
            } else {
                let err = verdict.unwrap_err();
                assert!(
                    matches!(err, GenesisError::BadSignature),
                    "{}: {err}",
                    case.name
                );
                assert_eq!(err.name(), "genesis_bad_signature");
            }
        }
    }

    #[test]
    fn unsafe_quorum_is_refused() {
        let (mut genesis, admin) = signed();
        genesis.set_quorum(Some(2));
        genesis.sign(&admin).unwrap();
        let err = genesis.verify().unwrap_err();
        assert!(
            matches!(
                err,
                GenesisError::Membership(MembershipError::BadQuorum {
                    quorum: 2,
                    members: 3,
                    min: 3
                })
            ),
            "{err}"
        );
    }

    #[test]
    fn parse_errors_name_the_file_and_the_field() {
        let (genesis, _) = signed();
        let text = genesis.to_toml_string();
        let path = Path::new("/etc/hukou/genesis.toml");
        let cases: [(&str, String, &str); 6] = [
            (
                "members[0].code",
                text.replace("\"310101\"", "\"31010\""),
                "genesis_bad_field",
            ),
            (
                "members[1].public_key",
                text.replace(&hex::encode(key(1).verifying_key().to_bytes()), "abcd"),
                "genesis_bad_field",
            ),
            (
                "admin_public_key",
                text.replace(
                    &hex::encode(key(100).verifying_key().to_bytes()),
                    &"zz".repeat(32),
                ),
                "genesis_bad_field",
            ),
            (
                "members[2].addresses",
                text.replace("/ip4/127.0.0.1/tcp/4003", "tcp/4003"),
                "genesis_bad_field",
            ),
            (
                "network",
                text.replace("hukou-test", ""),
                "genesis_bad_field",
            ),
            (
                "public_keys",
                text.replace("public_key", "public_keys"),
                "genesis_syntax",
            ),
        ];
        for (field, edited, name) in cases {
            let err = Genesis::from_toml_str(&edited, path).unwrap_err();
            let message = err.to_string();
            assert_eq!(err.name(), name, "{message}");
            assert!(message.contains("/etc/hukou/genesis.toml"), "{message}");
            assert!(message.contains(field), "{field}: {message}");
            assert!(!message.contains('\n'), "{message:?}");
        }
        let err = Genesis::from_toml_str(&text.replace(KIND_GENESIS, "hukou-genesis-v2"), path)
            .unwrap_err();
        assert!(matches!(err, GenesisError::WrongKind { .. }), "{err}");
        let err =
            Genesis::from_toml_str(&text.replace("network = ", "# network = "), path).unwrap_err();
        assert!(err.to_string().contains("network"), "{err}");
    }

    /// The hash of a legacy genesis (no `administrators`), as a literal computed before
    /// administrators existed: naming administrators must not move an existing network's hash.
    #[test]
    fn the_legacy_genesis_hash_is_pinned() {
        let (genesis, _) = signed();
        assert_eq!(
            genesis.hash().to_hex(),
            "d8a00a9c8672c6ed546b55a92815bc3abdb657003b8f4a5c1a9052d143bf39ce"
        );
    }

    #[test]
    fn canonical_encoding_is_pinned() {
        // Golden bytes: a bincode or serde change must fail here, not split the network.
        let admin = key(100);
        let mut genesis = Genesis::new("n", admin.verifying_key()).unwrap();
        genesis
            .add_member(GenesisMember {
                code: BureauCode::new(310104).unwrap(),
                name: "徐汇".to_string(),
                public_key: key(1).verifying_key(),
                addresses: vec!["/a".to_string()],
            })
            .unwrap();
        let mut expected = b"HKG\x01".to_vec();
        expected.extend_from_slice(&1u64.to_le_bytes());
        expected.extend_from_slice(b"n");
        expected.extend_from_slice(&admin.verifying_key().to_bytes());
        expected.extend_from_slice(&1u64.to_le_bytes()); // quorum
        expected.extend_from_slice(&1u64.to_le_bytes()); // one member
        expected.extend_from_slice(&310104u32.to_le_bytes());
        expected.extend_from_slice(&6u64.to_le_bytes());
        expected.extend_from_slice("徐汇".as_bytes());
        expected.extend_from_slice(&key(1).verifying_key().to_bytes());
        expected.extend_from_slice(&1u64.to_le_bytes());
        expected.extend_from_slice(&2u64.to_le_bytes());
        expected.extend_from_slice(b"/a");
        assert_eq!(genesis.canonical_encoding(), expected);
        assert_eq!(
            genesis.hash(),
            GenesisHash(Sha256::digest(&expected).into())
        );
        let mut message = DOMAIN_GENESIS_SIGNATURE.to_vec();
        message.extend_from_slice(&expected);
        assert_eq!(genesis.signing_message(), message);
    }

    /// Three administrators (seeds 200, 201, 202), none a member.
    fn administrators() -> Vec<VerifyingKey> {
        [200u8, 201, 202]
            .into_iter()
            .map(|seed| key(seed).verifying_key())
            .collect()
    }

    /// The three-member genesis of [`signed`], naming [`administrators`] with threshold 2.
    fn signed_with_administrators() -> (Genesis, SigningKey) {
        let (mut genesis, admin) = signed();
        genesis.set_administrators(administrators(), 2).unwrap();
        assert!(matches!(genesis.verify(), Err(GenesisError::Unsigned)));
        genesis.sign(&admin).unwrap();
        (genesis, admin)
    }

    /// The genesis of [`signed`] with `administrators` and `admin_threshold` written into the
    /// file by hand (so no check of `set_administrators` runs), then signed.
    fn hand_made(administrators: &[VerifyingKey], threshold: usize) -> Genesis {
        let (genesis, admin) = signed();
        let listed: Vec<String> = administrators
            .iter()
            .map(|k| format!("{:?}", hex::encode(k.to_bytes())))
            .collect();
        let admin_line = format!(
            "admin_public_key = \"{}\"\n",
            hex::encode(admin.verifying_key().to_bytes())
        );
        let text = genesis.to_toml_string().replace(
            &admin_line,
            &format!(
                "{admin_line}administrators = [{}]\nadmin_threshold = {threshold}\n",
                listed.join(", ")
            ),
        );
        let mut edited = Genesis::from_toml_str(&text, Path::new("g.toml")).unwrap();
        assert!(edited.states_administrators());
        edited.sign(&admin).unwrap();
        edited
    }

    /// Asserts that `set_administrators` on the genesis of [`signed`] and `verify` of the same
    /// administrators written by hand both refuse with `expected` (compared by `same`), named
    /// `name`, and that the refusal left the genesis unchanged.
    fn assert_administrators_refused(
        administrators: &[VerifyingKey],
        threshold: usize,
        same: impl Fn(&GenesisError) -> bool,
        name: &str,
    ) {
        let (mut genesis, _) = signed();
        let before = genesis.clone();
        let err = genesis
            .set_administrators(administrators.to_vec(), threshold)
            .unwrap_err();
        assert!(same(&err), "set_administrators: {err:?}");
        assert_eq!(err.name(), name);
        assert_eq!(genesis, before);
        genesis.verify().unwrap();

        let err = hand_made(administrators, threshold).verify().unwrap_err();
        assert!(same(&err), "verify: {err:?}");
        assert_eq!(err.name(), name);
        assert!(!err.to_string().contains('\n'), "{err}");
    }

    #[test]
    fn a_legacy_genesis_has_its_admin_key_as_sole_administrator_with_threshold_1() {
        let (genesis, admin) = signed();
        assert!(!genesis.states_administrators());
        assert_eq!(genesis.administrators(), [admin.verifying_key()]);
        assert_eq!(genesis.admin_threshold(), 1);
        assert_eq!(genesis.canonical_encoding()[..4], *b"HKG\x01");
        let text = genesis.to_toml_string();
        assert!(!text.contains("administrators"), "{text}");
        assert!(!text.contains("admin_threshold"), "{text}");
        let verified = Genesis::from_toml_str(&text, Path::new("g.toml"))
            .unwrap()
            .verify()
            .unwrap();
        assert_eq!(verified.administrators(), [admin.verifying_key()]);
        assert_eq!(verified.admin_threshold(), 1);
        assert_eq!(
            verified.hash().to_hex(),
            "d8a00a9c8672c6ed546b55a92815bc3abdb657003b8f4a5c1a9052d143bf39ce"
        );
    }

    #[test]
    fn administrators_round_trip_through_toml_and_verify_to_the_same_hash() {
        let (genesis, admin) = signed_with_administrators();
        let (legacy, _) = signed();
        assert_ne!(genesis.hash(), legacy.hash());
        assert_eq!(genesis.canonical_encoding()[..4], *b"HKG\x02");
        let mut sorted = administrators();
        sorted.sort_by_key(|k| k.to_bytes());
        assert_eq!(genesis.administrators(), sorted);
        assert_eq!(genesis.admin_threshold(), 2);

        let text = genesis.to_toml_string();
        assert!(text.contains("administrators = ["), "{text}");
        assert!(text.contains("admin_threshold = 2"), "{text}");
        let parsed = Genesis::from_toml_str(&text, Path::new("g.toml")).unwrap();
        assert_eq!(parsed, genesis);
        let verified = parsed.verify().unwrap();
        assert_eq!(verified.hash(), genesis.hash());
        assert_eq!(verified.administrators(), sorted);
        assert_eq!(verified.admin_threshold(), 2);
        assert_eq!(verified.membership().len(), 3);
        // The genesis is still signed by the one key it names as its signer.
        assert_eq!(
            *verified.genesis().admin_public_key(),
            admin.verifying_key()
        );

        // Administrators in another order in the file: the same genesis.
        let first = hex::encode(sorted[0].to_bytes());
        let last = hex::encode(sorted[2].to_bytes());
        let reordered = text
            .replace(&first, "FIRST")
            .replace(&last, &first)
            .replace("FIRST", &last);
        assert_ne!(reordered, text);
        let reordered = Genesis::from_toml_str(&reordered, Path::new("g.toml")).unwrap();
        assert_eq!(reordered.verify().unwrap().hash(), genesis.hash());

        // The signature covers the administrators and the threshold.
        let other = key(203).verifying_key();
        assert_bad_signature(
            &Genesis::from_toml_str(
                &text.replace(&first, &hex::encode(other.to_bytes())),
                Path::new("g.toml"),
            )
            .unwrap(),
            "administrator replaced",
        );
        assert_bad_signature(
            &Genesis::from_toml_str(
                &text.replace("admin_threshold = 2", "admin_threshold = 3"),
                Path::new("g.toml"),
            )
            .unwrap(),
            "threshold",
        );
        // Dropping both fields makes a legacy genesis: another message, so the signature fails.
        let dropped: String = text
            .lines()
            .filter(|l| !l.starts_with("administrators") && !l.starts_with("admin_threshold"))
            .map(|l| format!("{l}\n"))
            .collect();
        let dropped = Genesis::from_toml_str(&dropped, Path::new("g.toml")).unwrap();
        assert!(!dropped.states_administrators());
        assert_bad_signature(&dropped, "administrators dropped");
    }

    #[test]
    fn canonical_encoding_with_administrators_is_pinned() {
        // Golden bytes of "HKG" 0x02: the legacy layout, then the administrators and k.
        let admin = key(100);
        let mut genesis = Genesis::new("n", admin.verifying_key()).unwrap();
        genesis
            .add_member(GenesisMember {
                code: BureauCode::new(310104).unwrap(),
                name: "徐汇".to_string(),
                public_key: key(1).verifying_key(),
                addresses: vec!["/a".to_string()],
            })
            .unwrap();
        let administrators = administrators();
        genesis
            .set_administrators(administrators.iter().rev().copied().collect(), 2)
            .unwrap();
        let mut sorted: Vec<[u8; 32]> = administrators.iter().map(|k| k.to_bytes()).collect();
        sorted.sort();
        let mut expected = b"HKG\x02".to_vec();
        expected.extend_from_slice(&1u64.to_le_bytes());
        expected.extend_from_slice(b"n");
        expected.extend_from_slice(&admin.verifying_key().to_bytes());
        expected.extend_from_slice(&1u64.to_le_bytes()); // quorum
        expected.extend_from_slice(&1u64.to_le_bytes()); // one member
        expected.extend_from_slice(&310104u32.to_le_bytes());
        expected.extend_from_slice(&6u64.to_le_bytes());
        expected.extend_from_slice("徐汇".as_bytes());
        expected.extend_from_slice(&key(1).verifying_key().to_bytes());
        expected.extend_from_slice(&1u64.to_le_bytes());
        expected.extend_from_slice(&2u64.to_le_bytes());
        expected.extend_from_slice(b"/a");
        expected.extend_from_slice(&3u64.to_le_bytes()); // three administrators
        for administrator in sorted {
            expected.extend_from_slice(&administrator);
        }
        expected.extend_from_slice(&2u64.to_le_bytes()); // threshold
        assert_eq!(genesis.canonical_encoding(), expected);
        assert_eq!(
            genesis.hash(),
            GenesisHash(Sha256::digest(&expected).into())
        );
        let mut message = DOMAIN_GENESIS_SIGNATURE.to_vec();
        message.extend_from_slice(&expected);
        assert_eq!(genesis.signing_message(), message);
    }

    #[test]
    fn an_administrator_listed_twice_is_refused() {
        let mut twice = administrators();
        twice.push(twice[1]);
        let repeated = twice[1];
        assert_administrators_refused(
            &twice,
            3,
            |e| matches!(e, GenesisError::DuplicateAdministrator { key } if *key == repeated.to_bytes()),
            "genesis_duplicate_administrator",
        );
    }

    #[test]
    fn administrator_keys_check_key_refuses_are_refused_by_name() {
        for (kind, bad_key) in refused_keys() {
            let mut keys = administrators();
            keys[1] = bad_key;
            let (same, name): (fn(&GenesisError, &VerifyingKey) -> bool, _) = match kind {
                crafted::KeyKind::SmallOrder => (
                    |e, k| matches!(e, GenesisError::WeakAdministratorKey { key } if *key == k.to_bytes()),
                    "genesis_weak_administrator_key",
                ),
                crafted::KeyKind::NonCanonical => (
                    |e, k| matches!(e, GenesisError::NonCanonicalAdministratorKey { key } if *key == k.to_bytes()),
                    "genesis_non_canonical_administrator_key",
                ),
                crafted::KeyKind::MixedOrder => (
                    |e, k| matches!(e, GenesisError::MixedOrderAdministratorKey { key } if *key == k.to_bytes()),
                    "genesis_mixed_order_administrator_key",
                ),
                crafted::KeyKind::Honest => unreachable!(),
            };
            assert_administrators_refused(&keys, 2, |e| same(e, &bad_key), name);
        }
    }

    #[test]
    fn fewer_than_two_administrators_are_refused() {
        let one = vec![key(200).verifying_key()];
        assert_administrators_refused(
            &one,
            1,
            |e| matches!(e, GenesisError::TooFewAdministrators { count: 1 }),
            "genesis_too_few_administrators",
        );
        assert_administrators_refused(
            &[],
            1,
            |e| matches!(e, GenesisError::TooFewAdministrators { count: 0 }),
            "genesis_too_few_administrators",
        );
    }

    #[test]
    fn a_threshold_of_zero_or_above_the_administrators_is_refused() {
        for threshold in [0, 4] {
            assert_administrators_refused(
                &administrators(),
                threshold,
                |e| {
                    matches!(e, GenesisError::AdminThresholdOutOfRange { threshold: t, administrators: 3 }
                        if *t == threshold)
                },
                "genesis_admin_threshold_out_of_range",
            );
        }
    }

    #[test]
    fn a_threshold_not_above_half_the_administrators_is_refused() {
        // 1 of 3: one key alone. 2 of 4: two disjoint pairs could sign conflicting updates.
        let four: Vec<VerifyingKey> = [200u8, 201, 202, 203]
            .into_iter()
            .map(|seed| key(seed).verifying_key())
            .collect();
        assert_administrators_refused(
            &administrators(),
            1,
            |e| {
                matches!(
                    e,
                    GenesisError::AdminThresholdNotMajority {
                        threshold: 1,
                        administrators: 3,
                        min: 2
                    }
                )
            },
            "genesis_admin_threshold_not_majority",
        );
        assert_administrators_refused(
            &four,
            2,
            |e| {
                matches!(
                    e,
                    GenesisError::AdminThresholdNotMajority {
                        threshold: 2,
                        administrators: 4,
                        min: 3
                    }
                )
            },
            "genesis_admin_threshold_not_majority",
        );
        assert_administrators_refused(
            &four[..2],
            1,
            |e| {
                matches!(
                    e,
                    GenesisError::AdminThresholdNotMajority {
                        threshold: 1,
                        administrators: 2,
                        min: 2
                    }
                )
            },
            "genesis_admin_threshold_not_majority",
        );
        // The least majorities are accepted: 2 of 2, 2 of 3, 3 of 4.
        let (mut genesis, admin) = signed();
        for (keys, threshold) in [(&four[..2], 2), (&four[..3], 2), (&four[..], 3)] {
            genesis
                .set_administrators(keys.to_vec(), threshold)
                .unwrap();
            genesis.sign(&admin).unwrap();
            let verified = genesis.verify().unwrap();
            assert_eq!(verified.administrators().len(), keys.len());
            assert_eq!(verified.admin_threshold(), threshold);
        }
    }

    #[test]
    fn an_administrator_holding_a_members_key_is_refused() {
        let mut keys = administrators();
        keys[2] = key(3).verifying_key(); // member 330502's key
        let shared = keys[2];
        let is_member = |e: &GenesisError| {
            matches!(e, GenesisError::AdministratorIsMember { key, code }
                if *key == shared.to_bytes() && code.get() == 330502)
        };
        assert_administrators_refused(&keys, 2, is_member, "genesis_administrator_is_member");

        // A member added after the administrators may not hold one's key either.
        let (mut genesis, _) = signed_with_administrators();
        let before = genesis.clone();
        let err = genesis
            .add_member(GenesisMember {
                public_key: key(201).verifying_key(),
                ..member(440305, 60)
            })
            .unwrap_err();
        assert!(
            matches!(&err, GenesisError::AdministratorIsMember { key: k, code }
                if *k == key(201).verifying_key().to_bytes() && code.get() == 440305),
            "{err:?}"
        );
        assert_eq!(err.name(), "genesis_administrator_is_member");
        assert_eq!(genesis, before);
    }

    #[test]
    fn more_administrators_than_allowed_are_refused() {
        let many: Vec<VerifyingKey> = (0..=ADMINISTRATORS_MAX)
            .map(|i| SigningKey::from_bytes(&[i as u8 ^ 0x5a; 32]).verifying_key())
            .collect();
        let (mut genesis, _) = signed();
        let err = genesis
            .set_administrators(many.clone(), ADMINISTRATORS_MAX)
            .unwrap_err();
        assert!(
            matches!(
                err,
                GenesisError::TooManyAdministrators {
                    count,
                    max: ADMINISTRATORS_MAX
                } if count == ADMINISTRATORS_MAX + 1
            ),
            "{err:?}"
        );
        assert_eq!(err.name(), "genesis_too_many_administrators");
        // Written by hand, the file is refused when read, naming the field.
        let (genesis, _) = signed_with_administrators();
        let listed: Vec<String> = many
            .iter()
            .map(|k| format!("{:?}", hex::encode(k.to_bytes())))
            .collect();
        let text = genesis.to_toml_string();
        let line = text
            .lines()
            .find(|l| l.starts_with("administrators = "))
            .unwrap();
        let text = text.replace(line, &format!("administrators = [{}]", listed.join(", ")));
        let err = Genesis::from_toml_str(&text, Path::new("g.toml")).unwrap_err();
        assert!(
            matches!(&err, GenesisError::BadField { field, .. } if field == "administrators"),
            "{err:?}"
        );
    }

    #[test]
    fn administrators_and_threshold_go_together_in_the_file() {
        let (genesis, _) = signed_with_administrators();
        let text = genesis.to_toml_string();
        let without = |prefix: &str| -> String {
            text.lines()
                .filter(|l| !l.starts_with(prefix))
                .map(|l| format!("{l}\n"))
                .collect()
        };
        let (legacy, _) = signed();
        let cases = [
            (without("admin_threshold"), "admin_threshold", "is required"),
            (
                legacy
                    .to_toml_string()
                    .replace("network = ", "admin_threshold = 2\nnetwork = "),
                "admin_threshold",
                "only with `administrators`",
            ),
            (
                text.replace(&hex::encode(administrators()[1].to_bytes()), "abcd"),
                "administrators[",
                "64 are needed",
            ),
        ];
        for (edited, field_prefix, words) in cases {
            let err = Genesis::from_toml_str(&edited, Path::new("g.toml")).unwrap_err();
            assert!(
                matches!(&err, GenesisError::BadField { field, reason, .. }
                    if field.starts_with(field_prefix) && reason.contains(words)),
                "{err:?}"
            );
            assert_eq!(err.name(), "genesis_bad_field");
        }
    }
}
