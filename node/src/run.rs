//! `hukou node run`: loads the configuration, keys and genesis, opens the store, and runs the
//! network, replication and API until shutdown.
//!
//! Shutdown comes in as a future, so tests can stop a node without signals. `run` returns after
//! the API, replication, the witness and the committer have stopped, so the same data directory
//! can be opened again at once (a restart in the same process). The node writes its
//! process id to `DATA_DIR/node.pid` (so `testnet/down.sh` stops exactly what it started, even
//! after a restart) and removes it on a clean stop.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use hukou_keys::genesis::{Genesis, VerifiedGenesis};
use hukou_keys::secret::{BureauKey, NetworkKey, load_person_key};
use hukou_protocol::BureauCode;
use hukou_protocol::calendar::Calendar;
use hukou_protocol::config::{Epochs, GenesisConfig};
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
    let key = BureauKey::load(&config.key_file).map_err(|e| anyhow::anyhow!("{e}"))?;
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
    let genesis_epochs = genesis_epochs(&verified, calendar.clone());

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
    // Updates the operator brought (a bureau added after the genesis learns it is a member),
    // then the configuration as the store holds it: this bureau must be a member of some epoch
    // and its key file one of the keys the configuration names for it.
    let epochs_now =
        configuration_at_start(&store, genesis_epochs, config.config_log.as_deref()).await?;
    let keys_of_me = epochs_now.keys_of(me);
    if keys_of_me.is_empty() {
        bail!(
            "bureau {me} (config {}) is not a member of network {:?} in any configuration epoch up to {} (a bureau added later needs the updates: `hukou config fetch --node URL --out config.log`, then `config_log = \"config.log\"` in its config)",
            config.path.display(),
            membership.network_name(),
            epochs_now.latest().epoch
        );
    }
    match keys_of_me.iter().find(|(k, _)| *k == key.public()) {
        None => bail!(
            "key file {} holds public key {}, but the configuration names {} for bureau {me}",
            config.key_file.display(),
            key.public_hex(),
            keys_of_me
                .iter()
                .map(|(k, _)| hex::encode(k.to_bytes()))
                .collect::<Vec<_>>()
                .join(", then ")
        ),
        Some((_, true)) => bail!(
            "key file {} holds a key of bureau {me} that a configuration update revoked; install the new key (`key_file`)",
            config.key_file.display()
        ),
        Some(_) => {}
    }
    let (committer, committer_task) = Committer::start(store.clone(), stop());
    let parts = {
        let (signing_key, epochs) = (key.signing_key().clone(), epochs_now.clone());
        tokio::task::spawn_blocking(move || {
            Service::start(me, signing_key, person_key, epochs, store, committer, true)
        })
        .await?
        .map_err(|e| anyhow::anyhow!("{e}"))?
    };
    let service = parts.service.with_key_dir(config.key_dir.clone());

    // Network.
    for (code, address) in &config.peers {
        if let Err(e) = address.parse::<libp2p::Multiaddr>() {
            bail!(
                "config {}: [peers] {code} = {address:?} is not a multiaddr: {e}",
                config.path.display()
            );
        }
        if *code == me || !epochs_now.ever_member(*code) {
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
    let (members, by_peer) = net_members(&service.epochs(), me, &config.peers);
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
        message_id: Some(Arc::new(sync::gossip_message_id)),
    };
    let (net_handle, events) = net::spawn(net_config, stop())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let peers = Peers::new(by_peer);
    // The network and the peer map follow the configuration: a new member is allowed and
    // dialled, a retired one or a revoked key disallowed, without a restart.
    let _follow = {
        let (mut watch, net, peers, overrides) = (
            service.watch_epochs(),
            net_handle.clone(),
            peers.clone(),
            config.peers.clone(),
        );
        tokio::spawn(async move {
            while watch.changed().await.is_ok() {
                let epochs = watch.borrow_and_update().clone();
                let (members, by_peer) = net_members(&epochs, me, &overrides);
                peers.set(by_peer);
                if net.set_members(members).await.is_err() {
                    return;
                }
            }
        })
    };
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
    let overlay_epochs = service.clone();
    let stats_net = net_handle.clone();
    let connected: crate::service::ConnectedMembers = Arc::new(move || {
        let mut v: Vec<_> = peer_net
            .connected_peers()
            .iter()
            .filter_map(|p| peer_map.bureau(p))
            .collect();
        v.sort();
        v.dedup();
        v
    });
    service.set_connected_members(connected.clone());
    let api = Api {
        service: service.clone(),
        token: Arc::new(token),
        metrics: Arc::new(ApiMetrics::default()),
        overlay: Arc::new(move || overlay_of(&overlay_epochs.epochs(), me)),
        net_stats: Arc::new(move || stats_net.stats()),
        peers: connected,
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
    // Requests waiting for finality are answered now: nothing becomes final any more.
    service.stop_waiting();
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

/// Epoch 0 of the configuration, from the genesis.
pub fn genesis_epochs(verified: &VerifiedGenesis, calendar: Calendar) -> Epochs {
    let genesis = verified.genesis();
    let addresses = genesis
        .members()
        .iter()
        .map(|m| (m.code, m.addresses.clone()))
        .collect();
    let (administrators, threshold) = genesis_administrators(genesis);
    Epochs::genesis(GenesisConfig {
        membership: verified.membership().clone(),
        addresses,
        administrators,
        threshold,
        hash: verified.hash().0,
        calendar,
    })
}

/// The administrators the genesis names and how many must sign an update; threshold 0 (no
/// update possible: no single key may change the network) for a genesis of the first format,
/// which names a single administrator.
fn genesis_administrators(genesis: &Genesis) -> (Vec<ed25519_dalek::VerifyingKey>, usize) {
    let keys = genesis.administrators().to_vec();
    let threshold = genesis.admin_threshold();
    if hukou_protocol::config::check_administrators(&keys, threshold).is_err() {
        return (keys, 0);
    }
    (keys, threshold)
}

/// The configuration as the store holds it (genesis epochs and stored updates), after taking in
/// the updates of a configuration log file (`hukou config fetch`) if one is given: each judged
/// against the epochs before it and stored durably; those already held are skipped.
async fn configuration_at_start(
    store: &Store,
    genesis: Epochs,
    config_log: Option<&Path>,
) -> anyhow::Result<Epochs> {
    let mut epochs =
        crate::service::load_config(store, genesis).map_err(|e| anyhow::anyhow!("{e}"))?;
    let Some(path) = config_log else {
        return Ok(epochs);
    };
    let mut added = 0;
    for update in crate::cli::config::read_config_log(path)? {
        let epoch = update.update.epoch;
        if epoch <= epochs.latest().epoch {
            continue;
        }
        let bytes = update.encode();
        epochs.push(update).map_err(|e| {
            anyhow::anyhow!(
                "{}: update for epoch {epoch} is refused: {e}",
                path.display()
            )
        })?;
        store
            .put_config(epoch, &bytes)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        added += 1;
    }
    if added > 0 {
        tracing::info!(added, path = %path.display(), "took in configuration updates from the file");
    }
    Ok(epochs)
}

/// This node's overlay neighbours in the latest epoch (`crate::overlay`).
pub fn overlay_of(epochs: &Epochs, me: BureauCode) -> Vec<BureauCode> {
    let codes: Vec<BureauCode> = epochs
        .latest()
        .membership
        .members()
        .map(|m| m.code)
        .collect();
    crate::overlay::neighbours(&codes, me)
}

/// The members the network task allows and dials under the latest epoch, and the peer map:
/// every key of a member that was not revoked gives a peer id it may connect with (a node keeps
/// its network identity across a planned rotation until it restarts); only the current key's
/// peer id is dialled (if an overlay neighbour; others on demand), at the epoch's addresses (or the operator's `[peers]` override).
pub fn net_members(
    epochs: &Epochs,
    me: BureauCode,
    overrides: &BTreeMap<BureauCode, String>,
) -> (Vec<NetMember>, Vec<(libp2p::PeerId, BureauCode)>) {
    let latest = epochs.latest();
    let neighbours = overlay_of(epochs, me);
    let count = latest.membership.len();
    let mut members = Vec::new();
    let mut by_peer = Vec::new();
    for m in latest.membership.members() {
        let keys = epochs.keys_of(m.code);
        let mut ids: Vec<(libp2p::PeerId, bool)> = Vec::new();
        if let Ok(current) = net::peer_id_from_ed25519_public(&m.key.to_bytes()) {
            ids.push((current, true));
        }
        for (key, revoked) in keys {
            if revoked || key == m.key {
                continue;
            }
            if let Ok(id) = net::peer_id_from_ed25519_public(&key.to_bytes()) {
                ids.push((id, false));
            }
        }
        for &(id, _) in &ids {
            by_peer.push((id, m.code));
        }
        if m.code == me {
            continue;
        }
        let listed = latest.addresses.get(&m.code).cloned().unwrap_or_default();
        let overridden = overrides.get(&m.code).map(|a| vec![a.clone()]);
        let addresses: Vec<libp2p::Multiaddr> = overridden
            .unwrap_or(listed)
            .iter()
            .filter_map(|a| match a.parse() {
                Ok(addr) => Some(addr),
                Err(e) => {
                    tracing::warn!("address {a:?} of {} is not a multiaddr: {e}", m.code);
                    None
                }
            })
            .collect();
        let role = if neighbours.contains(&m.code) {
            net::PeerRole::Neighbour {
                dial_first: crate::overlay::dials_first(&me, &m.code, count),
            }
        } else {
            net::PeerRole::OnDemand
        };
        for (id, current) in ids {
            members.push(NetMember {
                role,
                peer_id: id,
                addresses: if current {
                    addresses.clone()
                } else {
                    Vec::new()
                },
            });
        }
    }
    (members, by_peer)
}
