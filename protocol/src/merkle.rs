//! RFC 6962 Merkle trees (placeholder: being written).

/// Prefix of a leaf hash input (RFC 6962 §2.1).
pub const LEAF_PREFIX: u8 = 0x00;
/// Prefix of an interior node hash input.
pub const NODE_PREFIX: u8 = 0x01;
