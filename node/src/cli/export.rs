//! `hukou export`: writes a self-contained ledger bundle (docs/FORMAT.md) for auditors.
//!
//! - `hukou export --node URL --genesis FILE --out DIR` pulls from a running node's API: the
//!   latest certificate of every member's log (`GET /v1/logs/{code}/certificate`), then the
//!   list of logs (`GET /v1/logs`), each log in batches (`GET /v1/logs/{code}/raw`) up to the
//!   length listed, the fraud proofs (`GET /v1/fraud-proofs`) and the entries configuration cuts
//!   refused, which the node keeps as evidence (`GET /v1/revoked`). Certificates are fetched
//!   first because a node stores a certificate only once it holds the entries it covers, and
//!   logs only grow: so every certificate exported covers no more than the entries exported.
//!   The node serves no genesis, so the auditor's copy is named with `--genesis`; its network
//!   must be the node's.
//! - `hukou export --config FILE [--data-dir DIR] [--out DIR]` reads a stopped node's store
//!   directly: every log, the latest certificate of each log, the fraud proofs and the revoked
//!   entries.
//!
//! Either way the exporter checks what it writes as it goes (every entry decodes, sits at its
//! seq in its author's log, and a node's stated root matches the entries it served), writes
//! the manifest last, and refuses to write into a non-empty directory, so a directory with a
//! manifest is a complete bundle. It does not judge the entries: that is `hukou audit`'s job.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, anyhow, bail};
use clap::Args;
use hukou_keys::{Genesis, VerifiedGenesis};
use hukou_protocol::audit::{
    self as bundle, CERTIFICATES_DIR, FRAUD_PROOFS_DIR, GENESIS_FILE, LOGS_DIR, MANIFEST_FILE,
    Manifest, ManifestLog, MerkleFrontier, REVOKED_DIR,
};
use hukou_protocol::checkpoint::Certificate;
use hukou_protocol::config::SignedUpdate;
use hukou_protocol::limits::ENTRY_BYTES_MAX;
use hukou_protocol::{BureauCode, FraudProof, SignedEntry};
use serde_json::Value;

use super::audit::Progress;
use crate::config::Config;
use crate::store::Store;

/// Entries asked for per `/raw` call (the node caps a call at 8 × `BATCH_ENTRIES_MAX`).
const PULL_ENTRIES: u64 = 8 * hukou_protocol::limits::BATCH_ENTRIES_MAX as u64;
/// Largest `/raw` answer read: a full batch of the largest entries, framed.
const PULL_BYTES_MAX: u64 = PULL_ENTRIES * (ENTRY_BYTES_MAX as u64 + 4);
/// Logs longer than this show progress on stderr.
const PROGRESS_ENTRIES_MIN: u64 = 100_000;

/// Arguments of `hukou export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// A running node's API, e.g. http://127.0.0.1:8080 (or HUKOU_NODE); needs --genesis.
    #[arg(long, env = "HUKOU_NODE", value_name = "URL")]
    pub node: Option<String>,
    /// The network's genesis file: required with --node; with --config, defaults to the node's.
    #[arg(long, value_name = "FILE")]
    pub genesis: Option<PathBuf>,
    /// A stopped node's configuration file: export from its store instead of its API.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The stopped node's data directory (default: the config's `data_dir`).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The bundle directory to write (must not exist, or be empty).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// No progress on stderr.
    #[arg(long)]
    pub quiet: bool,
}

impl ExportArgs {
    /// Runs the export.
    pub fn run(self) -> anyhow::Result<()> {
        if self.config.is_some() || self.data_dir.is_some() {
            export_from_store(&self)
        } else if let Some(node) = &self.node {
            export_from_node(&self, node)
        } else {
            bail!(
                "say where to export from: --node URL (a running node) or --config FILE (a stopped node's store)"
            )
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn load_genesis(path: &Path) -> anyhow::Result<VerifiedGenesis> {
    Genesis::load(path)?
        .verify()
        .with_context(|| format!("genesis {} does not verify", path.display()))
}

/// A bundle being written: the directory, the genesis, and the logs written so far.
struct Writer {
    out: PathBuf,
    genesis: VerifiedGenesis,
    logs: Vec<ManifestLog>,
    quiet: bool,
}

impl Writer {
    /// Creates the bundle's directories and writes the genesis; refuses a non-empty `out`.
    fn create(out: &Path, genesis: VerifiedGenesis, quiet: bool) -> anyhow::Result<Writer> {
        if out.exists() {
            let mut listing =
                fs::read_dir(out).with_context(|| format!("cannot read {}", out.display()))?;
            if listing.next().is_some() {
                bail!(
                    "{} exists and is not empty; export into a new directory",
                    out.display()
                );
            }
        }
        for dir in [LOGS_DIR, CERTIFICATES_DIR, FRAUD_PROOFS_DIR, REVOKED_DIR] {
            let path = out.join(dir);
            fs::create_dir_all(&path)
                .with_context(|| format!("cannot create {}", path.display()))?;
        }
        write_file(
            &out.join(GENESIS_FILE),
            genesis.genesis().to_toml_string().as_bytes(),
        )?;
        Ok(Writer {
            out: out.to_path_buf(),
            genesis,
            logs: Vec::new(),
            quiet,
        })
    }

    /// Writes one log from batches of wire bytes, checking each entry's author and seq.
    fn log<I>(&mut self, code: BureauCode, length: u64, batches: I) -> anyhow::Result<[u8; 32]>
    where
        I: Iterator<Item = anyhow::Result<Vec<Vec<u8>>>>,
    {
        let path = self.out.join(bundle::log_file(code));
        let file =
            File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        let mut file = BufWriter::with_capacity(1 << 20, file);
        let mut frontier = MerkleFrontier::new();
        let shown = !self.quiet && length >= PROGRESS_ENTRIES_MIN;
        let mut progress = Progress::new(format!("export {code}"), length, &["entries"], shown);
        let network = self.genesis.membership().network();
        let mut frame = Vec::with_capacity(ENTRY_BYTES_MAX + 4);
        for batch in batches {
            for wire in batch? {
                let seq = frontier.len();
                let entry = SignedEntry::decode(&wire)
                    .with_context(|| format!("entry {seq} of {code} does not decode"))?;
                let e = entry.entry();
                if e.author != code || e.seq.0 != seq || e.network != network {
                    bail!(
                        "the source gave entry {} (network {}) where seq {seq} of {code} belongs",
                        entry.reference(),
                        e.network
                    );
                }
                frame.clear();
                bundle::push_frame(&mut frame, &wire);
                file.write_all(&frame)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                frontier.push(entry.hash().0);
                progress.advance(0, 1);
            }
        }
        progress.finish();
        if frontier.len() != length {
            bail!(
                "the source gave {} entries of {code}, {length} were listed",
                frontier.len()
            );
        }
        file.flush()
            .and_then(|()| file.get_ref().sync_all())
            .with_context(|| format!("cannot write {}", path.display()))?;
        let root = frontier.root();
        self.logs.push(ManifestLog {
            bureau: code,
            length,
            root,
        });
        Ok(root)
    }

    /// Writes `revoked/<code>.log`: entries of `code`'s log a configuration cut refused, as
    /// (seq, wire bytes) in seq order, framed as a log file. Each must decode and be the entry of
    /// `code` at its seq on this network; whether a cut refuses it is the audit's call.
    fn revoked(&self, code: BureauCode, entries: &[(u64, Vec<u8>)]) -> anyhow::Result<()> {
        let network = self.genesis.membership().network();
        let mut frames = Vec::new();
        for (seq, wire) in entries {
            let entry = SignedEntry::decode(wire)
                .with_context(|| format!("revoked entry {seq} of {code} does not decode"))?;
            let e = entry.entry();
            if e.author != code || e.seq.0 != *seq || e.network != network {
                bail!(
                    "the source gave entry {} (network {}) as the revoked entry at seq {seq} of {code}",
                    entry.reference(),
                    e.network
                );
            }
            bundle::push_frame(&mut frames, wire);
        }
        write_file(&self.out.join(bundle::revoked_file(code)), &frames)
    }

    /// Writes the configuration log (`config.log`, the format of `hukou config fetch`).
    fn config_log(&self, updates: &[SignedUpdate]) -> anyhow::Result<()> {
        let text = crate::cli::config::config_log_text(self.genesis.genesis().network(), updates);
        write_file(
            &self.out.join(crate::cli::audit::CONFIG_LOG_FILE),
            text.as_bytes(),
        )
    }

    fn certificate(&self, bytes: &[u8]) -> anyhow::Result<()> {
        let c =
            Certificate::decode(bytes).context("the source holds an undecodable certificate")?;
        let name = bundle::certificate_file(c.checkpoint.log, c.checkpoint.size);
        write_file(&self.out.join(name), bytes)
    }

    fn fraud_proof(&self, bytes: &[u8]) -> anyhow::Result<()> {
        let p = FraudProof::decode(bytes).context("the source holds an undecodable fraud proof")?;
        write_file(
            &self
                .out
                .join(bundle::fraud_proof_file(p.author(), p.seq().0)),
            bytes,
        )
    }

    /// Writes the manifest, last: its presence marks a complete bundle.
    fn finish(mut self, source: String) -> anyhow::Result<()> {
        self.logs.sort_by_key(|l| l.bureau);
        let network = self.genesis.genesis().network().to_string();
        let entries: u64 = self.logs.iter().map(|l| l.length).sum();
        let manifest = Manifest {
            kind: bundle::BUNDLE_KIND.to_string(),
            network_id: self.genesis.membership().network(),
            network,
            genesis_hash: self.genesis.hash().0,
            exported_at_ms: now_ms(),
            exporter: format!("hukou {}", env!("CARGO_PKG_VERSION")),
            source,
            logs: self.logs,
        };
        let text = serde_json::to_string_pretty(&manifest)? + "\n";
        write_file(&self.out.join(MANIFEST_FILE), text.as_bytes())?;
        eprintln!(
            "exported {} logs, {entries} entries to {} (audit it with `hukou audit {}`)",
            manifest.logs.len(),
            self.out.display(),
            self.out.display()
        );
        Ok(())
    }
}

/// Every bureau that was a member in some epoch, judging the updates from the genesis on.
fn bureaus_ever(
    genesis: &VerifiedGenesis,
    updates: &[SignedUpdate],
) -> anyhow::Result<Vec<BureauCode>> {
    let mut epochs =
        crate::run::genesis_epochs(genesis, hukou_protocol::calendar::Calendar::prc().clone());
    for u in updates {
        let epoch = u.update.epoch;
        epochs
            .push(u.clone())
            .map_err(|e| anyhow!("configuration epoch {epoch} is refused: {e}"))?;
    }
    let mut codes: Vec<BureauCode> = epochs
        .all()
        .flat_map(|e| e.membership.members().map(|m| m.code))
        .collect();
    codes.sort();
    codes.dedup();
    Ok(codes)
}

/// Writes each log's revoked entries, sorted by seq.
fn write_revoked(
    writer: &Writer,
    by_log: BTreeMap<BureauCode, Vec<(u64, Vec<u8>)>>,
) -> anyhow::Result<()> {
    for (code, mut entries) in by_log {
        entries.sort();
        writer.revoked(code, &entries)?;
    }
    Ok(())
}

fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut file =
        File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

// ---- from a running node ----

fn export_from_node(args: &ExportArgs, node: &str) -> anyhow::Result<()> {
    let genesis_path = args.genesis.as_ref().ok_or_else(|| {
        anyhow!("--genesis FILE is required with --node: a node does not serve its genesis, and the auditor should bring its own copy")
    })?;
    let genesis = load_genesis(genesis_path)?;
    let base = node.trim_end_matches('/');
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into();

    // The configuration log first: it names every bureau that ever had a log.
    let config = get_json(&agent, &format!("{base}/v1/config/log"))?;
    let updates = config["updates"]
        .as_array()
        .ok_or_else(|| anyhow!("GET {base}/v1/config/log: no \"updates\" list"))?
        .iter()
        .map(|u| {
            u.as_str()
                .and_then(|h| hex::decode(h).ok())
                .and_then(|b| SignedUpdate::decode(&b).ok())
                .ok_or_else(|| anyhow!("GET {base}/v1/config/log: an update that does not decode"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let codes = bureaus_ever(&genesis, &updates)?;
    // Certificates before the listing: see the module documentation.
    let mut certificates = Vec::new();
    for code in codes {
        if let Some(bytes) = get_certificate(&agent, base, code)? {
            certificates.push(bytes);
        }
    }
    let listing = get_json(&agent, &format!("{base}/v1/logs"))?;
    let network = listing["network"].as_str().unwrap_or_default();
    if network != genesis.genesis().network() {
        bail!(
            "the node at {base} is on network {network:?}, the genesis {} on {:?}",
            genesis_path.display(),
            genesis.genesis().network()
        );
    }
    let logs = listing["logs"]
        .as_array()
        .ok_or_else(|| anyhow!("GET {base}/v1/logs: no \"logs\" list in the answer"))?;
    let mut writer = Writer::create(&args.out, genesis, args.quiet)?;
    writer.config_log(&updates)?;
    for log in logs {
        let code: BureauCode = log["bureau"]
            .as_str()
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| anyhow!("GET {base}/v1/logs: a log without a valid \"bureau\""))?;
        let length = log["length"]
            .as_u64()
            .ok_or_else(|| anyhow!("GET {base}/v1/logs: log {code} without a \"length\""))?;
        let stated_root = log["root"].as_str().unwrap_or_default().to_string();
        let mut from = 0u64;
        let batches = std::iter::from_fn(|| {
            if from >= length {
                return None;
            }
            let max = PULL_ENTRIES.min(length - from);
            let url = format!("{base}/v1/logs/{code}/raw?from={from}&max={max}");
            let batch = get_frames(&agent, &url).and_then(|wires| {
                if wires.is_empty() {
                    bail!("GET {url}: no entries, though {length} were listed")
                }
                Ok(wires)
            });
            let batch = batch.map(|mut wires| {
                // Never more than the length listed: the log may grow while we pull.
                wires.truncate(max as usize);
                wires
            });
            match &batch {
                Ok(wires) => from += wires.len() as u64,
                Err(_) => from = length,
            }
            Some(batch)
        });
        let root = writer.log(code, length, batches)?;
        if hex::encode(root) != stated_root {
            bail!(
                "the node states root {stated_root} for {code} at size {length}, but the entries it served have root {}",
                hex::encode(root)
            );
        }
    }
    for bytes in &certificates {
        writer.certificate(bytes)?;
    }
    let proofs = get_json(&agent, &format!("{base}/v1/fraud-proofs"))?;
    for p in proofs["fraud_proofs"].as_array().into_iter().flatten() {
        let bytes = p["proof"]
            .as_str()
            .and_then(|h| hex::decode(h).ok())
            .ok_or_else(|| anyhow!("GET {base}/v1/fraud-proofs: a proof without hex bytes"))?;
        writer.fraud_proof(&bytes)?;
    }
    let revoked = get_json(&agent, &format!("{base}/v1/revoked"))?;
    let mut by_log: BTreeMap<BureauCode, Vec<(u64, Vec<u8>)>> = BTreeMap::new();
    for r in revoked["revoked"].as_array().into_iter().flatten() {
        let bad = || {
            anyhow!(
                "GET {base}/v1/revoked: an item without a valid \"log\", \"seq\" and hex \"entry\""
            )
        };
        let log: BureauCode = r["log"]
            .as_str()
            .and_then(|c| c.parse().ok())
            .ok_or_else(bad)?;
        let seq = r["seq"].as_u64().ok_or_else(bad)?;
        let bytes = r["entry"]
            .as_str()
            .and_then(|h| hex::decode(h).ok())
            .ok_or_else(bad)?;
        by_log.entry(log).or_default().push((seq, bytes));
    }
    write_revoked(&writer, by_log)?;
    writer.finish(format!("node {base}"))
}

fn get_json(agent: &ureq::Agent, url: &str) -> anyhow::Result<Value> {
    let mut response = agent
        .get(url)
        .call()
        .with_context(|| format!("GET {url}"))?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_string()
        .with_context(|| format!("GET {url}: reading the answer"))?;
    if status != 200 {
        bail!("GET {url}: HTTP {status}: {}", text.trim());
    }
    serde_json::from_str(&text).with_context(|| format!("GET {url}: the answer is not JSON"))
}

/// `GET /v1/logs/{code}/certificate`: the canonical bytes of the latest certificate of `code`
/// the node holds (its `certificate` field), or `None` when it holds none (`404 no_certificate`).
/// The bytes must decode as a certificate of that log; whether it is valid is the audit's call.
fn get_certificate(
    agent: &ureq::Agent,
    base: &str,
    code: BureauCode,
) -> anyhow::Result<Option<Vec<u8>>> {
    let url = format!("{base}/v1/logs/{code}/certificate");
    let mut response = agent
        .get(&url)
        .call()
        .with_context(|| format!("GET {url}"))?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(4 * hukou_protocol::limits::CERTIFICATE_BYTES_MAX as u64 + (64 << 10))
        .read_to_string()
        .with_context(|| format!("GET {url}: reading the answer"))?;
    let value: Value = serde_json::from_str(&text)
        .with_context(|| format!("GET {url}: HTTP {status}, the answer is not JSON"))?;
    if status == 404 && value["error"] == "no_certificate" {
        return Ok(None);
    }
    if status != 200 {
        bail!("GET {url}: HTTP {status}: {}", text.trim());
    }
    let bytes = value["certificate"]
        .as_str()
        .and_then(|h| hex::decode(h).ok())
        .ok_or_else(|| anyhow!("GET {url}: no \"certificate\" (hex bytes) in the answer"))?;
    let certificate = Certificate::decode(&bytes)
        .with_context(|| format!("GET {url}: the certificate does not decode"))?;
    if certificate.checkpoint.log != code {
        bail!(
            "GET {url}: the node served a certificate of log {}",
            certificate.checkpoint.log
        );
    }
    Ok(Some(bytes))
}

/// `GET .../raw`: the frames of the answer, each refused above `ENTRY_BYTES_MAX`.
fn get_frames(agent: &ureq::Agent, url: &str) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut response = agent
        .get(url)
        .call()
        .with_context(|| format!("GET {url}"))?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(PULL_BYTES_MAX)
        .read_to_vec()
        .with_context(|| format!("GET {url}: reading the answer"))?;
    if status != 200 {
        bail!(
            "GET {url}: HTTP {status}: {}",
            String::from_utf8_lossy(&body).trim()
        );
    }
    let mut wires = Vec::new();
    let mut rest = body.as_slice();
    while !rest.is_empty() {
        let Some((prefix, tail)) = rest.split_first_chunk::<4>() else {
            bail!("GET {url}: the answer ends inside a length prefix");
        };
        let len = u32::from_be_bytes(*prefix) as usize;
        if len == 0 || len > ENTRY_BYTES_MAX || len > tail.len() {
            bail!("GET {url}: a frame of {len} bytes with {} left", tail.len());
        }
        let (wire, tail) = tail.split_at(len);
        wires.push(wire.to_vec());
        rest = tail;
    }
    Ok(wires)
}

// ---- from a stopped node's store ----

fn export_from_store(args: &ExportArgs) -> anyhow::Result<()> {
    let config_path = args.config.as_ref().ok_or_else(|| {
        anyhow!("--data-dir needs --config FILE too: the store is opened as the config's bureau")
    })?;
    let config = Config::load(config_path)?;
    let genesis_path = args
        .genesis
        .clone()
        .unwrap_or_else(|| config.genesis.clone());
    let genesis = load_genesis(&genesis_path)?;
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| config.data_dir.clone());
    // The node keeps its sled database in `<data_dir>/db`; accept that directory itself too.
    let db = if data_dir.join("db").is_dir() {
        data_dir.join("db")
    } else {
        data_dir.clone()
    };
    let store =
        Store::open(&db, config.bureau, genesis.membership().network()).with_context(|| {
            format!(
                "cannot open the store in {} (stop the node first: a running node holds it)",
                db.display()
            )
        })?;
    let updates = store
        .config_updates()?
        .into_iter()
        .map(|(epoch, raw)| {
            SignedUpdate::decode(&raw)
                .map_err(|e| anyhow!("stored configuration update {epoch} does not decode: {e}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut codes: Vec<BureauCode> = store.logs().into_iter().map(|(code, _)| code).collect();
    codes.extend(bureaus_ever(&genesis, &updates)?);
    codes.sort();
    codes.dedup();
    let mut writer = Writer::create(&args.out, genesis, args.quiet)?;
    writer.config_log(&updates)?;
    for code in codes {
        let length = store.log_len(code);
        let mut entries = store.iter_log(code);
        let batches = std::iter::from_fn(|| {
            let mut batch = Vec::with_capacity(PULL_ENTRIES as usize);
            for entry in entries.by_ref() {
                match entry {
                    Ok(entry) => batch.push(entry.encode()),
                    Err(e) => return Some(Err(anyhow::Error::new(e))),
                }
                if batch.len() as u64 == PULL_ENTRIES {
                    break;
                }
            }
            (!batch.is_empty()).then_some(Ok(batch))
        });
        writer.log(code, length, batches)?;
        if let Some((_, bytes)) = store.latest_certificate(code)? {
            writer.certificate(&bytes)?;
        }
    }
    for (_, _, bytes) in store.fraud_proofs()? {
        writer.fraud_proof(&bytes)?;
    }
    let mut by_log: BTreeMap<BureauCode, Vec<(u64, Vec<u8>)>> = BTreeMap::new();
    for (log, seq, bytes) in store.revoked()? {
        by_log.entry(log).or_default().push((seq, bytes));
    }
    write_revoked(&writer, by_log)?;
    writer.finish(format!(
        "store {} of bureau {}",
        db.display(),
        config.bureau
    ))
}
