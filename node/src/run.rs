//! `hukou node run`: loads the configuration, keys and genesis, opens the store, and runs the
//! network, replication and API until shutdown.
//!
//! Shutdown comes in as a future, so tests can stop a node without signals. `run` returns after
//! the API, replication, the witness and the committer have stopped, so the same data directory
//! can be opened again at once (a restart in the same process). The node writes its
//! process id to `DATA_DIR/node.pid` (so `testnet/down.sh` stops exactly what it started, even
//! after a restart) and removes it on a clean stop.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use hukou_keys::genesis::Genesis;
use hukou_keys::secret::{BureauKey, NetworkKey, load_person_key};
use hukou_protocol::calendar::Calendar;
use tokio::sync::watch;

use crate::api::{Api, ApiMetrics};
use crate::config::Config;
use crate::net::{self, NetConfig, NetMember};
use crate::service::Service;
use crate::store::{Committer, Store};
use crate::sync::{self, Peers};

/// Longest `run` waits, at shutdown, for replication and the witness to stop.
const SYNC_STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// What a running node tells whoever started it.
#[derive(Clone, Debug)]
pub struct Started {
    pub api: SocketAddr,
    pub p2p: Vec<String>,
}

/// Reads the API token file (owner-only, like every secret).
pub fn load_token(path: &Path) -> anyhow::Result<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .with_context(|| format!("cannot read API token file {}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        bail!(
            "API token file {} is readable by group or others (mode {:o}); run: chmod 600 {}",
            path.display(),
            mode & 0o777,
            path.display()
        );
    }
    let token = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read API token file {}", path.display()))?
        .trim()
        .to_string();
    if token.len() < 16 {
        bail!(
            "API token file {} holds a token shorter than 16 characters",
            path.display()
        );
    }
    Ok(token)
}

/// Runs a node until `shutdown` completes. `on_started` is told the bound addresses.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_started: impl FnOnce(Started) + Send,
) -> anyhow::Result<()> {
    let genesis = Genesis::load(&config.genesis).map_err(|e| anyhow::anyhow!("{e}"))?;
    let verified = genesis.verify().map_err(|e| {
        anyhow::anyhow!("genesis {} does not verify: {e}", config.genesis.display())
    })?;
    let membership = verified.membership().clone();
    let me = config.bureau;
    let member = membership.member(me).with_context(|| {
        format!(
            "bureau {me} (config {}) is not a member of network {:?}",
            config.path.display(),
            membership.network_name()
        )
    })?;
    let key = BureauKey::load(&config.key_file).map_err(|e| anyhow::anyhow!("{e}"))?;
    if key.public() != member.key {
        bail!(
            "key file {} holds public key {}, but the genesis names {} for bureau {me}",
            config.key_file.display(),
            key.public_hex(),
            hex::encode(member.key.to_bytes())
        );
    }
    let person_key =
        load_person_key(&config.person_key_file).map_err(|e| anyhow::anyhow!("{e}"))?;
    let network_key =
        NetworkKey::load(&config.network_key_file).map_err(|e| anyhow::anyhow!("{e}"))?;
    let token = load_token(&config.api_token_file)?;
    let calendar = match &config.calendar {
        None => Calendar::prc().clone(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read calendar {}", path.display()))?;
            Calendar::parse(&text)
                .map_err(|e| anyhow::anyhow!("calendar {}: {e}", path.display()))?
        }
    };

    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data dir {}", config.data_dir.display()))?;
    // Opening sled and replaying the store read the disk: not on a runtime worker thread.
    let db = config.data_dir.join("db");
    let network = membership.network();
    let store = tokio::task::spawn_blocking(move || Store::open(&db, me, network))
        .await?
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let stop = {
        let rx = stop_rx.clone();
        move || {
            let mut rx = rx.clone();
            async move {
                let _ = rx.wait_for(|s| *s).await;
            }
        }
    };
    let (committer, committer_task) = Committer::start(store.clone(), stop());
    let parts = {
        let (signing_key, membership) = (key.signing_key().clone(), membership.clone());
        tokio::task::spawn_blocking(move || {
            Service::start(
                me,
                signing_key,
                person_key,
                membership,
                calendar,
                store,
                committer,
                true,
            )
        })
        .await?
        .map_err(|e| anyhow::anyhow!("{e}"))?
    };
    let service = parts.service;

    // Network.
    for (code, address) in &config.peers {
        if let Err(e) = address.parse::<libp2p::Multiaddr>() {
            bail!(
                "config {}: [peers] {code} = {address:?} is not a multiaddr: {e}",
                config.path.display()
            );
        }
        if *code == me || membership.member(*code).is_none() {
            bail!(
                "config {}: [peers] names {code}, which is {} of network {:?}",
                config.path.display(),
                if *code == me {
                    "this node itself, not another member"
                } else {
                    "not a member"
                },
                membership.network_name()
            );
        }
    }
    let mut members = Vec::new();
    let mut by_peer = HashMap::new();
    for m in membership.members() {
        let peer_id = net::peer_id_from_ed25519_public(&m.key.to_bytes())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        by_peer.insert(peer_id, m.code);
        if m.code == me {
            continue;
        }
        // The operator's `[peers]` override replaces the genesis addresses of that member (and,
        // being non-empty, keeps identify from teaching the network task others: see net.rs).
        let genesis_addresses = verified.addresses(m.code).unwrap_or_default();
        let overridden = config.peers.get(&m.code).map(std::slice::from_ref);
        if let Some(address) = config.peers.get(&m.code) {
            tracing::info!(bureau = %m.code, %address, "dialling this member at the configured address");
        }
        let addresses = overridden
            .unwrap_or(genesis_addresses)
            .iter()
            .filter_map(|a| match a.parse() {
                Ok(addr) => Some(addr),
                Err(e) => {
                    tracing::warn!(
                        "genesis address {a:?} of {} is not a multiaddr: {e}",
                        m.code
                    );
                    None
                }
            })
            .collect();
        members.push(NetMember { peer_id, addresses });
    }
    let listen = config.p2p_listen.parse().with_context(|| {
        format!(
            "config {}: p2p_listen {:?} is not a multiaddr",
            config.path.display(),
            config.p2p_listen
        )
    })?;
    let net_config = NetConfig {
        identity: net::keypair_from_ed25519_secret(key.signing_key().to_bytes()),
        psk: network_key.to_bytes(),
        listen,
        members,
    };
    let (net_handle, events) = net::spawn(net_config, stop())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let peers = Peers::new(by_peer);
    let sync_task = tokio::spawn(sync::run(
        service.clone(),
        net_handle.clone(),
        events,
        parts.outbound,
        peers.clone(),
    ));

    // API.
    let listener = tokio::net::TcpListener::bind(config.api_listen)
        .await
        .with_context(|| format!("cannot listen for the API on {}", config.api_listen))?;
    let api_addr = listener.local_addr()?;
    let peer_net = net_handle.clone();
    let peer_map = peers.clone();
    let api = Api {
        service: service.clone(),
        token: Arc::new(token),
        metrics: Arc::new(ApiMetrics::default()),
        peers: Arc::new(move || {
            let mut v: Vec<_> = peer_net
                .connected_peers()
                .iter()
                .filter_map(|p| peer_map.bureau(p))
                .collect();
            v.sort();
            v.dedup();
            v
        }),
    };
    let pid_file = write_pid(&config.data_dir)?;
    tracing::info!(bureau = %me, api = %api_addr, "node running");
    on_started(Started {
        api: api_addr,
        p2p: net_handle
            .listen_addrs()
            .iter()
            .map(|a| a.to_string())
            .collect(),
    });
    let app = crate::api::router(api);
    // Not `axum::serve`: it has no header-read timeout and no connection limit (api/serve.rs).
    let server = tokio::spawn(crate::api::serve(listener, app, stop()));
    shutdown.await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    let _ = server.await;
    // Replication and the witness end once the network has stopped; bounded, in case a peer's
    // request holds the network task.
    if tokio::time::timeout(SYNC_STOP_WAIT, sync_task)
        .await
        .is_err()
    {
        tracing::warn!("replication did not stop within {SYNC_STOP_WAIT:?}");
    }
    match committer_task.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!("the committer stopped with an error: {e}"),
        Err(e) => tracing::error!("the committer task failed: {e}"),
    }
    let _ = std::fs::remove_file(pid_file);
    Ok(())
}

fn write_pid(data_dir: &Path) -> anyhow::Result<PathBuf> {
    let path = data_dir.join("node.pid");
    std::fs::write(&path, format!("{}\n", std::process::id()))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}
