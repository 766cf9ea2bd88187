//! The `hukou` node and command-line tool, as a library so integration tests can drive it.
//!
//! - [`config`]: the node's configuration file
//! - [`service`]: the node's core: ledger state, own writes, replicated entries
//! - [`store`]: durable storage (sled) and group commit
//! - [`net`]: the private libp2p network
//! - [`overlay`]: which members a node keeps connections to
//! - [`sync`]: replication over the network (push and pull)
//! - [`witness`]: checkpoints, cosignatures, certificates: finality
//! - [`finality`]: why a log is not final yet (committee, cosigners, who is missing)
//! - [`verify`]: signature verification across cores
//! - [`api`]: the HTTP/JSON API
//! - [`ui`]: the web console under `/ui/` (server-rendered HTML)
//! - [`run`]: `hukou node run`
//! - [`cli`]: the command-line interface

pub mod api;
pub mod cli;
pub mod config;
pub mod finality;
pub mod net;
pub mod overlay;
pub mod run;
pub mod service;
pub mod store;
pub mod sync;
pub mod ui;
pub mod verify;
pub mod witness;
