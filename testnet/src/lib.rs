//! Local testnet tooling.
