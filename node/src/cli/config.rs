//! `hukou config propose|sign|submit|show|fetch`: the administrators' commands for the network's
//! configuration (membership epochs, `hukou_protocol::config`).
//!
//! An update goes through three hands, none of which needs the others' keys:
//!
//! 1. `hukou config propose --node URL --add … --out FILE` asks a node for the latest epoch and
//!    writes an unsigned proposal for the next one (a JSON file: what changes, in words, and the
//!    exact bytes to sign);
//! 2. each administrator runs `hukou config sign FILE --key ADMIN.key`, which shows what they sign
//!    and adds their signature;
//! 3. `hukou config submit FILE --node URL` hands it to any member's node, which judges it (k of
//!    n administrators of the current epoch, built on it, every change valid) and replicates it.
//!
//! `hukou config show --node URL` prints the epoch in force, members, key fingerprints and the
//! history; `hukou config fetch --node URL --out FILE` writes the configuration log a bureau
//! added later needs to start (`config_log` in its node config).
//!
//! A configuration log file is text: `#` comments, and one line per update, the hex of its
//! `SignedUpdate` encoding, in epoch order.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use hukou_keys::secret::BureauKey;
use hukou_protocol::BureauCode;
use hukou_protocol::checkpoint::Certificate;
use hukou_protocol::config::{Change, ConfigHash, ConfigUpdate, Deadlines, SignedUpdate};
use hukou_protocol::limits::CONFIG_UPDATE_BYTES_MAX;
use hukou_protocol::types::{NetworkId, Seq};
use serde_json::{Value, json};

use super::client::{Client, NodeArgs};
use super::print_json;

/// `kind` of a proposal file.
pub const KIND_PROPOSAL: &str = "hukou-config-proposal-v1";

/// Largest proposal or log file read.
const FILE_BYTES_MAX: u64 = 64 * 1024 * 1024;

/// Configuration commands (administrators).
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Write an unsigned proposal for the next epoch (asks the node for the current one).
    Propose(Box<ProposeArgs>),
    /// Show a proposal and add an administrator's signature to it.
    Sign(SignArgs),
    /// Hand a signed proposal to a node, which judges and replicates it.
    Submit(SubmitArgs),
    /// Show the configuration in force and its history.
    Show(ShowArgs),
    /// Write the configuration log (for a bureau added after the genesis: `config_log`).
    Fetch(FetchArgs),
}

/// Arguments of `hukou config propose`.
#[derive(Debug, Args)]
pub struct ProposeArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// Add a bureau: CODE,NAME,PUBLIC_KEY_HEX[,MULTIADDR...] (repeatable).
    #[arg(long, value_name = "CODE,NAME,KEY[,ADDR...]")]
    pub add: Vec<String>,
    /// Rotate a bureau's key (planned): CODE,NEW_PUBLIC_KEY_HEX (repeatable).
    #[arg(long, value_name = "CODE,KEY")]
    pub rotate: Vec<String>,
    /// Revoke a compromised key from a position of the bureau's log: CODE,NEW_PUBLIC_KEY_HEX,FROM_SEQ
    /// (entries at FROM_SEQ or after signed under an earlier epoch are refused everywhere).
    #[arg(long, value_name = "CODE,KEY,FROM_SEQ")]
    pub revoke: Vec<String>,
    /// Retire a bureau (a merger): CODE,FROM_SEQ,SUCCESSOR. FROM_SEQ is where its log ends (its
    /// length now); the successor takes over the persons it arbitrated.
    #[arg(long, value_name = "CODE,FROM_SEQ,SUCCESSOR")]
    pub retire: Vec<String>,
    /// Set where a member's node listens: CODE,MULTIADDR[,MULTIADDR...] (repeatable).
    #[arg(long, value_name = "CODE,ADDR...")]
    pub addresses: Vec<String>,
    /// Publish one calendar year (a file in the format of protocol/data/prc-calendar.txt
    /// declaring one year), when its State Council notice is out.
    #[arg(long, value_name = "FILE")]
    pub calendar_year: Vec<PathBuf>,
    /// New deadline rules: ANSWER_DAYS,REGISTRATION_DAYS (working days).
    #[arg(long, value_name = "ANSWER,REGISTRATION")]
    pub deadlines: Option<String>,
    /// New administrators: KEY_HEX,KEY_HEX,...:THRESHOLD.
    #[arg(long, value_name = "KEYS:K")]
    pub administrators: Option<String>,
    /// New quorum (cosignatures a certificate needs while every member witnesses every log).
    #[arg(long, value_name = "N")]
    pub quorum: Option<u32>,
    /// Witness committees of N members per log (4 to 64; at most a third of one province), drawn
    /// from the members: a log's certificates then need its committee's quorum only. The node
    /// is asked which committees the proposal seats anew, and its latest certificate of each is
    /// added as the anchor the new committee takes over from (also for --add/--retire once
    /// committees are drawn).
    #[arg(long, value_name = "N")]
    pub committee_size: Option<u32>,
    /// Where to write the proposal.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// Arguments of `hukou config sign`.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// The proposal file; the signature is added in place.
    pub file: PathBuf,
    /// The administrator's key file (`hukou keys gen`).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
}

/// Arguments of `hukou config submit`.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// The signed proposal file.
    pub file: PathBuf,
}

/// Arguments of `hukou config show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    pub node: NodeArgs,
}

/// Arguments of `hukou config fetch`.
#[derive(Debug, Args)]
pub struct FetchArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// Where to write the configuration log.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

impl ConfigCommand {
    /// Runs the command.
    pub fn run(self) -> anyhow::Result<()> {
        match self {
            ConfigCommand::Propose(args) => propose(*args),
            ConfigCommand::Sign(args) => sign(args),
            ConfigCommand::Submit(args) => submit(args),
            ConfigCommand::Show(args) => show(args),
            ConfigCommand::Fetch(args) => fetch(args),
        }
    }
}

fn fields(text: &str, what: &str, min: usize) -> anyhow::Result<Vec<String>> {
    let parts: Vec<String> = text.split(',').map(|p| p.trim().to_string()).collect();
    if parts.len() < min || parts.iter().take(min).any(String::is_empty) {
        bail!("--{what} {text:?}: expected at least {min} comma-separated fields");
    }
    Ok(parts)
}

fn code(text: &str, what: &str) -> anyhow::Result<BureauCode> {
    text.parse::<u32>()
        .ok()
        .and_then(BureauCode::new)
        .with_context(|| format!("--{what}: {text:?} is not a six-digit bureau code"))
}

fn key(text: &str, what: &str) -> anyhow::Result<[u8; 32]> {
    let bytes = hex::decode(text)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .with_context(|| format!("--{what}: {text:?} is not a public key (64 hex digits)"))?;
    Ok(bytes)
}

fn seq(text: &str, what: &str) -> anyhow::Result<Seq> {
    text.parse::<u64>()
        .map(Seq)
        .with_context(|| format!("--{what}: {text:?} is not a log position (a number)"))
}

/// The changes the flags ask for, in a fixed order.
fn changes(args: &ProposeArgs) -> anyhow::Result<Vec<Change>> {
    let mut out = Vec::new();
    for a in &args.add {
        let f = fields(a, "add", 3)?;
        out.push(Change::AddMember {
            code: code(&f[0], "add")?,
            name: f[1].clone(),
            key: key(&f[2], "add")?,
            addresses: f[3..].to_vec(),
        });
    }
    for r in &args.rotate {
        let f = fields(r, "rotate", 2)?;
        out.push(Change::RotateKey {
            code: code(&f[0], "rotate")?,
            key: key(&f[1], "rotate")?,
        });
    }
    for r in &args.revoke {
        let f = fields(r, "revoke", 3)?;
        out.push(Change::RevokeKey {
            code: code(&f[0], "revoke")?,
            key: key(&f[1], "revoke")?,
            from_seq: seq(&f[2], "revoke")?,
        });
    }
    for r in &args.retire {
        let f = fields(r, "retire", 3)?;
        out.push(Change::RetireMember {
            code: code(&f[0], "retire")?,
            from_seq: seq(&f[1], "retire")?,
            successor: code(&f[2], "retire")?,
        });
    }
    for a in &args.addresses {
        let f = fields(a, "addresses", 1)?;
        out.push(Change::SetAddresses {
            code: code(&f[0], "addresses")?,
            addresses: f[1..].to_vec(),
        });
    }
    for path in &args.calendar_year {
        let text = fs::read_to_string(path)
            .with_context(|| format!("cannot read calendar year {}", path.display()))?;
        out.push(Change::PublishCalendarYear { text });
    }
    if let Some(d) = &args.deadlines {
        let f = fields(d, "deadlines", 2)?;
        let days = |t: &str| {
            t.parse::<u32>()
                .with_context(|| format!("--deadlines: {t:?} is not a number of days"))
        };
        out.push(Change::SetDeadlines(Deadlines {
            answer_working_days: days(&f[0])?,
            registration_working_days: days(&f[1])?,
        }));
    }
    if let Some(a) = &args.administrators {
        let (keys, k) = a
            .rsplit_once(':')
            .context("--administrators: expected KEY,KEY,...:THRESHOLD")?;
        let keys = keys
            .split(',')
            .map(|t| key(t.trim(), "administrators"))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let threshold = k
            .trim()
            .parse()
            .with_context(|| format!("--administrators: threshold {k:?} is not a number"))?;
        out.push(Change::SetAdministrators { keys, threshold });
    }
    if let Some(q) = args.quorum {
        out.push(Change::SetQuorum { quorum: q });
    }
    if let Some(size) = args.committee_size {
        out.push(Change::SetCommittees { size });
    }
    if out.is_empty() {
        bail!(
            "nothing to propose: give at least one of --add, --rotate, --revoke, --retire, --addresses, --calendar-year, --deadlines, --administrators, --quorum, --committee-size"
        );
    }
    Ok(out)
}

/// One change in words (what an administrator reads before signing).
pub fn describe(change: &Change) -> String {
    let fp = |k: &[u8; 32]| hex::encode(&k[..8]);
    match change {
        Change::AddMember {
            code,
            name,
            key,
            addresses,
        } => format!(
            "add bureau {code} {name:?} with key {}… at {}",
            fp(key),
            if addresses.is_empty() {
                "no address".to_string()
            } else {
                addresses.join(" ")
            }
        ),
        Change::RotateKey { code, key } => {
            format!("rotate the key of {code} to {}… (planned)", fp(key))
        }
        Change::RevokeKey {
            code,
            key,
            from_seq,
        } => format!(
            "REVOKE the key of {code} from seq {} of its log (entries there signed under earlier epochs are refused everywhere); new key {}…",
            from_seq.0,
            fp(key)
        ),
        Change::RetireMember {
            code,
            from_seq,
            successor,
        } => format!(
            "retire {code}: its log ends before seq {}; {successor} arbitrates its persons",
            from_seq.0
        ),
        Change::SetAddresses { code, addresses } => {
            format!("addresses of {code}: {}", addresses.join(" "))
        }
        Change::SetAdministrators { keys, threshold } => format!(
            "administrators: {} keys ({}), threshold {threshold}",
            keys.len(),
            keys.iter()
                .map(|k| format!("{}…", fp(k)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Change::SetQuorum { quorum } => format!("quorum: {quorum} cosignatures"),
        Change::PublishCalendarYear { text } => {
            let years = text
                .lines()
                .find_map(|l| l.trim().strip_prefix("years "))
                .unwrap_or("?");
            let days = text
                .lines()
                .filter(|l| {
                    let l = l.trim();
                    !l.is_empty() && !l.starts_with('#') && !l.starts_with("years")
                })
                .count();
            format!("publish calendar year {years} ({days} dated lines)")
        }
        Change::SetDeadlines(d) => format!(
            "deadlines: origin answers within {} working day(s), destination registers within {}",
            d.answer_working_days, d.registration_working_days
        ),
        Change::SetCommittees { size } => format!(
            "witness committees of {size} per log (at most {} of one province), drawn from the members; a log's certificates then need its committee's quorum",
            hukou_protocol::committee::province_cap(*size as usize)
        ),
        Change::Anchor { certificate } => match Certificate::decode(certificate) {
            Ok(c) => format!(
                "the new committee of log {} takes over from its certified size {} (root {}…)",
                c.checkpoint.log,
                c.checkpoint.size,
                hex::encode(&c.checkpoint.root[..8])
            ),
            Err(e) => format!("an anchor that is not a certificate ({e})"),
        },
    }
}

fn proposal_json(signed: &SignedUpdate) -> Value {
    let u = &signed.update;
    json!({
        "kind": KIND_PROPOSAL,
        "network_id": u.network.to_hex(),
        "epoch": u.epoch,
        "prev": u.prev.to_hex(),
        "hash": u.hash().to_hex(),
        "changes": u.changes.iter().map(|c| json!({"change": c.name(), "what": describe(c)})).collect::<Vec<_>>(),
        "signed_by": signed.signatures.iter().map(|s| hex::encode(s.admin)).collect::<Vec<_>>(),
        "signed_update": hex::encode(signed.encode()),
    })
}

/// Reads a proposal file; its `signed_update` is what counts, the rest is for reading.
pub fn read_proposal(path: &Path) -> anyhow::Result<SignedUpdate> {
    let text = read_bounded(path)?;
    let value: Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a proposal (JSON)", path.display()))?;
    if value["kind"] != KIND_PROPOSAL {
        bail!(
            "{} is not a configuration proposal ({KIND_PROPOSAL})",
            path.display()
        );
    }
    let hex_text = value["signed_update"]
        .as_str()
        .with_context(|| format!("{}: no signed_update", path.display()))?;
    decode_update(hex_text).with_context(|| format!("{}: signed_update", path.display()))
}

fn decode_update(hex_text: &str) -> anyhow::Result<SignedUpdate> {
    let bytes = hex::decode(hex_text.trim()).context("not hex")?;
    SignedUpdate::decode(&bytes).map_err(|e| anyhow::anyhow!("does not decode: {e}"))
}

fn read_bounded(path: &Path) -> anyhow::Result<String> {
    let meta = fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.len() > FILE_BYTES_MAX {
        bail!(
            "{} is {} bytes; at most {FILE_BYTES_MAX}",
            path.display(),
            meta.len()
        );
    }
    fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn write_proposal(path: &Path, signed: &SignedUpdate) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(&proposal_json(signed))? + "\n";
    fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Reads a configuration log file (module doc).
pub fn read_config_log(path: &Path) -> anyhow::Result<Vec<SignedUpdate>> {
    let text = read_bounded(path)?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.len() > 2 * CONFIG_UPDATE_BYTES_MAX {
            bail!("{}:{}: line too long", path.display(), i + 1);
        }
        out.push(decode_update(line).with_context(|| format!("{}:{}", path.display(), i + 1))?);
    }
    Ok(out)
}

/// Takes the updates of a configuration log file into `epochs`, each judged against the epochs
/// before it. On failure: the stable name (`config_log_unreadable`, or the refusing update's
/// `config_*`) and a message naming the file and the epoch.
pub fn extend_from_log(
    epochs: &mut hukou_protocol::config::Epochs,
    path: &Path,
) -> Result<(), (&'static str, String)> {
    let updates = read_config_log(path).map_err(|e| ("config_log_unreadable", format!("{e:#}")))?;
    for update in updates {
        let epoch = update.update.epoch;
        epochs.push(update).map_err(|e| {
            (
                e.name(),
                format!(
                    "{}: configuration epoch {epoch} is refused: {e}",
                    path.display()
                ),
            )
        })?;
    }
    Ok(())
}

/// The text of a configuration log.
pub fn config_log_text(network: &str, updates: &[SignedUpdate]) -> String {
    let mut text = format!(
        "# hukou-ledger configuration log of network {network:?}: one signed update per line (hex), epoch 1 first\n"
    );
    for u in updates {
        text.push_str(&format!(
            "# epoch {} {}\n{}\n",
            u.update.epoch,
            u.hash().to_hex(),
            hex::encode(u.encode())
        ));
    }
    text
}

fn propose(args: ProposeArgs) -> anyhow::Result<()> {
    let changes = changes(&args)?;
    let client = Client::new(&args.node)?;
    let current = client.get("/v1/config")?;
    let epoch = current["epoch"]
        .as_u64()
        .context("the node's /v1/config has no epoch")? as u32;
    let prev = current["hash"]
        .as_str()
        .and_then(|h| hex::decode(h).ok())
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .context("the node's /v1/config has no hash")?;
    let network = current["network_id"]
        .as_str()
        .and_then(|h| hex::decode(h).ok())
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .context("the node's /v1/config has no network_id")?;
    let update = ConfigUpdate {
        network: NetworkId(network),
        epoch: epoch + 1,
        prev: ConfigHash(prev),
        time_ms: crate::service::now_ms(),
        changes,
    };
    warn_about_cuts(&client, &update.changes)?;
    let mut update = update;
    let draft = match client.post(
        "/v1/config/draft",
        &json!({"update": hex::encode(SignedUpdate::unsigned(update.clone()).encode())}),
    ) {
        Ok(draft) => draft,
        Err(e) => {
            // Written anyway: the administrators see it, and a submission names the refusal.
            eprintln!(
                "warning: the node refuses these changes as they stand ({e:#}); the proposal is written, and will be refused when submitted"
            );
            json!({})
        }
    };
    let reseated = draft["reseated"].as_array().map_or(0, Vec::len);
    for a in draft["anchors"].as_array().into_iter().flatten() {
        let certificate = a
            .as_str()
            .and_then(|h| hex::decode(h).ok())
            .context("the node's /v1/config/draft answered an anchor that is not hex")?;
        update.changes.push(Change::Anchor { certificate });
    }
    if reseated > 0 {
        eprintln!(
            "this update seats new witness committees for {reseated} log(s); {} of them take over from their latest certificate, the others from the start",
            draft["anchors"].as_array().map_or(0, Vec::len)
        );
    }
    let signed = SignedUpdate::unsigned(update);
    write_proposal(&args.out, &signed)?;
    if args.node.json {
        print_json(&proposal_json(&signed));
    } else {
        outln!(
            "proposal for epoch {} (on epoch {epoch}) written to {}:",
            epoch + 1,
            args.out.display()
        );
        for c in &signed.update.changes {
            outln!("  - {}", describe(c));
        }
        outln!(
            "next: each administrator runs `hukou config sign {} --key ADMIN.key`; then `hukou config submit`",
            args.out.display()
        );
    }
    Ok(())
}

/// Warns (on stderr) about a cut that would undo final acts (below the log's certified size) or,
/// for a retirement, lie beyond the log's end (its successor's claims would wait for it).
fn warn_about_cuts(client: &Client, changes: &[Change]) -> anyhow::Result<()> {
    let cuts: Vec<(BureauCode, u64, bool)> = changes
        .iter()
        .filter_map(|c| match c {
            Change::RevokeKey { code, from_seq, .. } => Some((*code, from_seq.0, false)),
            Change::RetireMember { code, from_seq, .. } => Some((*code, from_seq.0, true)),
            _ => None,
        })
        .collect();
    if cuts.is_empty() {
        return Ok(());
    }
    let logs = client.get("/v1/logs")?;
    for (code, from, retire) in cuts {
        let log = logs["logs"]
            .as_array()
            .and_then(|l| l.iter().find(|l| l["bureau"] == code.to_string()));
        let (length, final_size) = log.map_or((0, 0), |l| {
            (
                l["length"].as_u64().unwrap_or(0),
                l["final_size"].as_u64().unwrap_or(0),
            )
        });
        if from < final_size {
            eprintln!(
                "warning: {code}'s log is final up to {final_size} entries; a cut from seq {from} undoes the final acts {from}..{final_size} on every node"
            );
        }
        if retire && from > length {
            eprintln!(
                "warning: {code}'s log holds {length} entries here; retiring it from seq {from} makes its successor's claims on its persons wait until it reaches {from}"
            );
        }
    }
    Ok(())
}

fn sign(args: SignArgs) -> anyhow::Result<()> {
    let mut signed = read_proposal(&args.file)?;
    let key = BureauKey::load(&args.key).map_err(|e| anyhow::anyhow!("{e}"))?;
    signed.sign(key.signing_key());
    write_proposal(&args.file, &signed)?;
    outln!(
        "signed epoch {} ({}) as administrator {}…; {} signature(s) now:",
        signed.update.epoch,
        signed.hash().to_hex(),
        &key.public_hex()[..16],
        signed.signatures.len()
    );
    for c in &signed.update.changes {
        outln!("  - {}", describe(c));
    }
    Ok(())
}

fn submit(args: SubmitArgs) -> anyhow::Result<()> {
    let signed = read_proposal(&args.file)?;
    let client = Client::new(&args.node)?;
    let answer = client.post(
        "/v1/config",
        &json!({"signed_update": hex::encode(signed.encode())}),
    )?;
    if args.node.json {
        print_json(&answer);
    } else {
        outln!(
            "epoch {} in force on {} ({})",
            answer["epoch"],
            args.node.node,
            answer["hash"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

fn show(args: ShowArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.node)?;
    let config = client.get("/v1/config")?;
    if args.node.json {
        print_json(&config);
        return Ok(());
    }
    outln!(
        "network {} — epoch {} ({}), quorum {}, administrators {} of {}",
        config["network"].as_str().unwrap_or("?"),
        config["epoch"],
        config["hash"]
            .as_str()
            .map_or("?", |h| &h[..16.min(h.len())]),
        config["quorum"],
        config["admin_threshold"],
        config["administrators"].as_array().map_or(0, Vec::len)
    );
    for m in config["members"].as_array().into_iter().flatten() {
        outln!(
            "  {} {}  key {}  {}",
            m["bureau"],
            m["name"].as_str().unwrap_or(""),
            m["key_fingerprint"].as_str().unwrap_or(""),
            m["addresses"]
                .as_array()
                .map(|a| a
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(" "))
                .unwrap_or_default()
        );
    }
    outln!(
        "calendar years: {}",
        config["calendar_years"]
            .as_array()
            .map(|a| a
                .iter()
                .map(|y| y.to_string())
                .collect::<Vec<_>>()
                .join(", "))
            .unwrap_or_default()
    );
    for h in config["history"].as_array().into_iter().flatten() {
        outln!(
            "  epoch {}: {}",
            h["epoch"],
            h["changes"]
                .as_array()
                .map(|c| c
                    .iter()
                    .filter_map(|c| c["what"].as_str())
                    .collect::<Vec<_>>()
                    .join("; "))
                .unwrap_or_default()
        );
    }
    Ok(())
}

fn fetch(args: FetchArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.node)?;
    let log = client.get("/v1/config/log")?;
    let updates = log["updates"]
        .as_array()
        .context("the node's /v1/config/log has no updates")?
        .iter()
        .map(|u| decode_update(u.as_str().unwrap_or("")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let text = config_log_text(log["network"].as_str().unwrap_or(""), &updates);
    fs::write(&args.out, text).with_context(|| format!("cannot write {}", args.out.display()))?;
    outln!(
        "{} configuration update(s) written to {} (set `config_log = \"{}\"` in a new bureau's node config)",
        updates.len(),
        args.out.display(),
        args.out.display()
    );
    Ok(())
}
