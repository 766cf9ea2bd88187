//! The `hukou` node and command-line tool, as a library so integration tests can drive it.
//!
//! - [`cli`]: the command-line interface
//! - [`net`]: the private libp2p network
//! - [`store`]: durable storage (sled) and group commit

pub mod cli;
pub mod net;
pub mod store;
