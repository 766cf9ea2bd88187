//! The node's configuration file (TOML): every field, its default, and its checks.
//!
//! Relative paths are resolved against the directory of the configuration file, so a bureau's
//! directory can be moved as a whole. A missing or malformed file, or a field that does not
//! parse, is reported with the file's path and the field.
//!
//! ```toml
//! # This node's bureau: its 6-digit division code, which must be a member in the genesis.
//! bureau = "310104"
//! # Where the node keeps its database (created if missing). Default: "data".
//! data_dir = "data"
//! # The bureau's ed25519 key (hukou keys gen). Must be readable by its owner only.
//! key_file = "bureau.key"
//! # The signed genesis naming the network's members (hukou genesis ...).
//! genesis = "genesis.toml"
//! # The network's person key, used to turn ID numbers into person tags. Owner-only.
//! person_key_file = "person.key"
//! # The network's pre-shared key for the private libp2p network. Owner-only.
//! network_key_file = "network.key"
//! # The clerk API's bearer token (one line). Owner-only. Write calls need it.
//! api_token_file = "api.token"
//! # Where the HTTP API listens. Default: loopback only.
//! api_listen = "127.0.0.1:8100"
//! # Where the node listens for its peers (libp2p multiaddr). Default: loopback only.
//! p2p_listen = "/ip4/127.0.0.1/tcp/4100"
//! # Working-day calendar for deadlines: "builtin" (official PRC calendar 2025-2026) or a file
//! # in the format of protocol/data/prc-calendar.txt.
//! calendar = "builtin"
//! # Optional: configuration updates to take in at start (`hukou config fetch` writes this file
//! # from any member's node): how a bureau added after the genesis learns that it is a member.
//! # Updates the store already holds are skipped; each is judged as if received from a peer.
//! config_log = "config.log"
//! # Optional: where the operator puts a new bureau key for a key rotation (`hukou keys gen
//! # --out keys/next.key`): the node signs with it once an epoch names it. Default: "keys".
//! key_dir = "keys"
//!
//! # Optional: where to dial particular members, overriding the addresses the genesis names for
//! # them (a NAT, a VPN endpoint, a relay or a TCP proxy between bureaus). A member listed here is
//! # dialled only at this address: addresses it announces itself (libp2p identify) are ignored.
//! # Membership (the allow list) and the network key still apply to every connection.
//! [peers]
//! 330502 = "/ip4/10.8.0.2/tcp/4100"
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use hukou_protocol::BureauCode;
use serde::Deserialize;

/// The parsed configuration, with paths made absolute.
#[derive(Clone, Debug)]
pub struct Config {
    /// Path of the file this came from.
    pub path: PathBuf,
    pub bureau: BureauCode,
    pub data_dir: PathBuf,
    pub key_file: PathBuf,
    pub genesis: PathBuf,
    pub person_key_file: PathBuf,
    pub network_key_file: PathBuf,
    pub api_token_file: PathBuf,
    pub api_listen: SocketAddr,
    pub p2p_listen: String,
    /// `None` for the built-in calendar.
    pub calendar: Option<PathBuf>,
    /// Configuration updates to take in at start.
    pub config_log: Option<PathBuf>,
    /// Where new bureau keys are looked for.
    pub key_dir: PathBuf,
    /// Dial addresses (libp2p multiaddrs) that replace the genesis addresses of these members.
    pub peers: BTreeMap<BureauCode, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    bureau: String,
    #[serde(default = "default_data_dir")]
    data_dir: PathBuf,
    #[serde(default = "default_key_file")]
    key_file: PathBuf,
    #[serde(default = "default_genesis")]
    genesis: PathBuf,
    #[serde(default = "default_person_key")]
    person_key_file: PathBuf,
    #[serde(default = "default_network_key")]
    network_key_file: PathBuf,
    #[serde(default = "default_token")]
    api_token_file: PathBuf,
    #[serde(default = "default_api_listen")]
    api_listen: String,
    #[serde(default = "default_p2p_listen")]
    p2p_listen: String,
    #[serde(default = "default_calendar")]
    calendar: String,
    #[serde(default)]
    config_log: Option<PathBuf>,
    #[serde(default = "default_key_dir")]
    key_dir: PathBuf,
    #[serde(default)]
    peers: BTreeMap<String, String>,
}

fn default_data_dir() -> PathBuf {
    "data".into()
}
fn default_key_file() -> PathBuf {
    "bureau.key".into()
}
fn default_genesis() -> PathBuf {
    "genesis.toml".into()
}
fn default_person_key() -> PathBuf {
    "person.key".into()
}
fn default_network_key() -> PathBuf {
    "network.key".into()
}
fn default_token() -> PathBuf {
    "api.token".into()
}
fn default_api_listen() -> String {
    "127.0.0.1:8100".into()
}
fn default_p2p_listen() -> String {
    "/ip4/127.0.0.1/tcp/4100".into()
}
fn default_key_dir() -> PathBuf {
    "keys".into()
}

fn default_calendar() -> String {
    "builtin".into()
}

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config file {path}: field `{field}`: {message}")]
    Field {
        path: PathBuf,
        field: &'static str,
        message: String,
    },
}

impl Config {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Parses configuration text as if read from `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.into(),
            message: e.to_string(),
        })?;
        let field = |field: &'static str, message: String| ConfigError::Field {
            path: path.into(),
            field,
            message,
        };
        let bureau: BureauCode = raw
            .bureau
            .parse()
            .map_err(|e| field("bureau", format!("{e}")))?;
        let api_listen: SocketAddr = raw.api_listen.parse().map_err(|e| {
            field(
                "api_listen",
                format!("{e} (expected IP:PORT such as 127.0.0.1:8100)"),
            )
        })?;
        if !raw.p2p_listen.starts_with('/') {
            return Err(field(
                "p2p_listen",
                "expected a multiaddr such as /ip4/127.0.0.1/tcp/4100".into(),
            ));
        }
        let mut peers = BTreeMap::new();
        for (code, address) in raw.peers {
            let member: BureauCode = code
                .parse()
                .map_err(|e| field("peers", format!("{code:?}: {e}")))?;
            if !address.starts_with('/') {
                return Err(field(
                    "peers",
                    format!(
                        "{code}: {address:?} is not a multiaddr such as /ip4/10.0.0.2/tcp/4100"
                    ),
                ));
            }
            peers.insert(member, address);
        }
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let abs = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        let calendar = match raw.calendar.as_str() {
            "builtin" | "" => None,
            other => Some(abs(other.into())),
        };
        Ok(Config {
            path: path.into(),
            bureau,
            data_dir: abs(raw.data_dir),
            key_file: abs(raw.key_file),
            genesis: abs(raw.genesis),
            person_key_file: abs(raw.person_key_file),
            network_key_file: abs(raw.network_key_file),
            api_token_file: abs(raw.api_token_file),
            api_listen,
            p2p_listen: raw.p2p_listen,
            calendar,
            config_log: raw.config_log.map(abs),
            key_dir: abs(raw.key_dir),
            peers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_relative_paths() {
        let c = Config::parse("bureau = \"310104\"\n", Path::new("/etc/hukou/node.toml")).unwrap();
        assert_eq!(c.data_dir, Path::new("/etc/hukou/data"));
        assert_eq!(c.api_listen.to_string(), "127.0.0.1:8100");
        assert!(c.api_listen.ip().is_loopback());
        assert!(c.calendar.is_none());
        assert!(c.peers.is_empty());
    }

    #[test]
    fn peers_override_dial_addresses() {
        let p = Path::new("/x/node.toml");
        let c = Config::parse(
            "bureau = \"310104\"\n[peers]\n330502 = \"/ip4/10.0.0.2/tcp/4100\"\n",
            p,
        )
        .unwrap();
        let code: BureauCode = "330502".parse().unwrap();
        assert_eq!(
            c.peers.get(&code).map(String::as_str),
            Some("/ip4/10.0.0.2/tcp/4100")
        );
        let e = Config::parse(
            "bureau = \"310104\"\n[peers]\n3305 = \"/ip4/1.2.3.4/tcp/1\"\n",
            p,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("peers") && e.contains("3305"), "{e}");
        let e = Config::parse(
            "bureau = \"310104\"\n[peers]\n330502 = \"10.0.0.2:4100\"\n",
            p,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("peers") && e.contains("multiaddr"), "{e}");
    }

    #[test]
    fn errors_name_the_file_and_field() {
        let p = Path::new("/x/node.toml");
        let e = Config::parse("bureau = \"31010\"\n", p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("/x/node.toml") && e.contains("bureau"), "{e}");
        let e = Config::parse("bureau = \"310104\"\napi_listen = \"localhost\"\n", p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("api_listen"), "{e}");
        let e = Config::parse("bureau = \"310104\"\nbogus = 1\n", p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("bogus"), "{e}");
        let e = Config::load(Path::new("/nonexistent/node.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/node.toml"), "{e}");
    }
}
