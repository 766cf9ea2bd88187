//! The pure core of hukou-ledger.
//!
//! Everything here is deterministic: no I/O, no clock, no randomness, no threads. The node, the
//! witness and the auditor all call this crate, so a rule written here holds everywhere and a
//! rule written anywhere else is a bug. Modules, one concept each:
//!
//! - [`types`]: bureau codes, person tags, hashes, sequence numbers, references
//! - [`vocabulary`]: migration categories, refusal and cancellation reasons, relations
//! - [`id`]: citizen ID numbers (GB 11643-1999) and person tags
//! - [`encoding`]: the canonical encoding and domain-separation tags
//! - [`entry`]: entries, bodies, signing
//! - [`signature`]: the one ed25519 verification rule (ZIP-215), single and batch, and which
//!   public keys a network may name
//! - [`merkle`]: RFC 6962 trees, inclusion and consistency proofs
//! - [`checkpoint`]: checkpoints, cosignatures, certificates
//! - [`membership`]: members and quorum
//! - [`config`]: configuration epochs and the signed updates that make them
//! - [`rules`]: the rulebook (`Ledger::apply`), violations and fraud proofs
//! - [`witness`]: a witness's judgement of a checkpoint before it cosigns
//! - [`adoption`]: a replica holding a losing fork of a log moves to the certified one
//! - [`calendar`]: working days and deadlines
//! - [`limits`]: every limit, in one place

pub mod adoption;
pub mod attestation;
pub mod audit;
pub mod batch;
pub mod calendar;
pub mod checkpoint;
pub mod committee;
pub mod config;
pub mod encoding;
pub mod entry;
pub mod fraud;
pub mod id;
pub mod limits;
pub mod membership;
pub mod merkle;
pub mod rules;
pub mod signature;
pub mod types;
pub mod vocabulary;
pub mod witness;

pub use entry::{Body, BodyKind, Entry, Placement, Signature, SignedEntry};
pub use fraud::FraudProof;
pub use membership::{Member, Membership, quorum_for};
pub use rules::{CausalBuffer, Effects, Ledger, SignatureCheck, Violation};
pub use types::{BureauCode, Digest, EntryHash, EntryRef, HouseholdId, NetworkId, PersonTag, Seq};
pub use vocabulary::{CancellationReason, Category, RefusalReason, Relation};
