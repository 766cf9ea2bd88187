//! `hukou genesis ...`: the administrator's tools for the network's genesis. `create` starts an
//! unsigned genesis, `add-member` adds a bureau (which clears any signature), `sign` signs it with
//! the administrator's key, and `verify` checks it as every node and auditor will.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{ArgGroup, Args, Subcommand};
use ed25519_dalek::VerifyingKey;
use hukou_keys::genesis::parse_public_key;
use hukou_keys::{BureauKey, Genesis, GenesisError, GenesisMember};
use hukou_protocol::BureauCode;
use serde_json::json;

use super::{print_json, refuse_json};

/// `hukou genesis ...`
#[derive(Debug, Subcommand)]
pub enum GenesisCommand {
    /// Start a new, unsigned genesis with no members.
    Create(CreateArgs),
    /// Add a member bureau (clears the signature: sign again afterwards).
    AddMember(AddMemberArgs),
    /// Sign the genesis with the administrator's key.
    Sign(SignArgs),
    /// Verify the signature and the membership; exit 0 if valid, 1 if not.
    Verify(VerifyArgs),
}

/// Arguments of `hukou genesis create`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("admin").required(true).args(["admin_public_key", "admin_key"])))]
pub struct CreateArgs {
    /// The network's name; every entry signed on it carries a hash of this name.
    #[arg(long, value_name = "NAME")]
    pub network: String,
    /// The administrator's public key, 64 hex digits.
    #[arg(long, value_name = "HEX")]
    pub admin_public_key: Option<String>,
    /// The administrator's key file, to take its public key from.
    #[arg(long, value_name = "FILE")]
    pub admin_key: Option<PathBuf>,
    /// State the quorum instead of the default floor(2n/3)+1.
    #[arg(long, value_name = "N")]
    pub quorum: Option<usize>,
    /// The genesis file to create.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Replace the file if it exists.
    #[arg(long)]
    pub force: bool,
}

/// Arguments of `hukou genesis add-member`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("member_key").required(true).args(["key", "public_key"])))]
pub struct AddMemberArgs {
    /// The genesis file to change.
    #[arg(long, value_name = "FILE")]
    pub genesis: PathBuf,
    /// The bureau's 6-digit administrative division code, e.g. 310104.
    #[arg(long, value_name = "CODE")]
    pub code: BureauCode,
    /// The bureau's name, e.g. 上海市公安局徐汇分局.
    #[arg(long, value_name = "NAME")]
    pub name: String,
    /// The bureau's key file, to take its public key from.
    #[arg(long, value_name = "KEYFILE")]
    pub key: Option<PathBuf>,
    /// The bureau's public key, 64 hex digits.
    #[arg(long, value_name = "HEX")]
    pub public_key: Option<String>,
    /// A libp2p multiaddress of the bureau's node, e.g. /ip4/127.0.0.1/tcp/4101 (repeatable).
    #[arg(long = "address", value_name = "MULTIADDR")]
    pub addresses: Vec<String>,
}

/// Arguments of `hukou genesis sign`.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// The genesis file to sign.
    #[arg(long, value_name = "FILE")]
    pub genesis: PathBuf,
    /// The administrator's key file.
    #[arg(long, value_name = "FILE")]
    pub admin_key: PathBuf,
}

/// Arguments of `hukou genesis verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The genesis file to verify.
    #[arg(long, value_name = "FILE")]
    pub genesis: PathBuf,
    /// Print JSON on stdout: the verified genesis, or `{"error": NAME, "message": ...}`.
    #[arg(long)]
    pub json: bool,
}

impl GenesisCommand {
    /// Runs the command.
    pub fn run(self) -> anyhow::Result<()> {
        match self {
            GenesisCommand::Create(args) => create(args),
            GenesisCommand::AddMember(args) => add_member(args),
            GenesisCommand::Sign(args) => sign(args),
            GenesisCommand::Verify(args) => verify(args),
        }
    }
}

/// A public key from hex given on the command line, or from a key file.
fn public_key_from(
    hex: Option<&str>,
    file: Option<&Path>,
    flag: &str,
) -> anyhow::Result<VerifyingKey> {
    match (hex, file) {
        (Some(hex), _) => {
            parse_public_key(hex).map_err(|reason| anyhow::anyhow!("--{flag} {reason}"))
        }
        (None, Some(file)) => Ok(BureauKey::load(file)?.public()),
        // clap's argument group requires one of the two.
        (None, None) => unreachable!("clap requires --{flag} or its key file"),
    }
}

fn create(args: CreateArgs) -> anyhow::Result<()> {
    let admin = public_key_from(
        args.admin_public_key.as_deref(),
        args.admin_key.as_deref(),
        "admin-public-key",
    )?;
    let mut genesis = Genesis::new(&args.network, admin)?;
    if args.quorum.is_some() {
        genesis.set_quorum(args.quorum);
    }
    if args.force {
        genesis.save(&args.out)?;
    } else {
        genesis.save_new(&args.out)?;
    }
    eprintln!(
        "wrote {} (unsigned, no members yet): add members with `hukou genesis add-member`, then sign it",
        args.out.display()
    );
    Ok(())
}

fn add_member(args: AddMemberArgs) -> anyhow::Result<()> {
    let public_key = public_key_from(
        args.public_key.as_deref(),
        args.key.as_deref(),
        "public-key",
    )?;
    let mut genesis = Genesis::load(&args.genesis)?;
    let was_signed = genesis.signature().is_some();
    genesis
        .add_member(GenesisMember {
            code: args.code,
            name: args.name,
            public_key,
            addresses: args.addresses,
        })
        .with_context(|| {
            format!(
                "cannot add bureau {} to {}",
                args.code,
                args.genesis.display()
            )
        })?;
    genesis.save(&args.genesis)?;
    eprintln!(
        "added bureau {} to {} (members: {}){}",
        args.code,
        args.genesis.display(),
        genesis.members().len(),
        if was_signed {
            "; its signature is removed: sign it again"
        } else {
            ""
        }
    );
    Ok(())
}

fn sign(args: SignArgs) -> anyhow::Result<()> {
    let admin = BureauKey::load(&args.admin_key)?;
    let mut genesis = Genesis::load(&args.genesis)?;
    genesis
        .sign(admin.signing_key())
        .with_context(|| format!("cannot sign {}", args.genesis.display()))?;
    // Sign only what verifies, so a signed genesis is never one that every node would refuse.
    let verified = genesis
        .verify()
        .with_context(|| format!("refusing to sign {}", args.genesis.display()))?;
    genesis.save(&args.genesis)?;
    outln!("{}", verified.hash());
    Ok(())
}

/// A refused genesis as JSON on stdout (`--json`), or as an error for stderr. Errors reading the
/// file already name it; `context` names it for the others.
fn refusal(error: GenesisError, json: bool, context: Option<String>) -> anyhow::Error {
    match (json, context) {
        (true, _) => refuse_json(error.name(), &error.to_string()),
        (false, Some(context)) => anyhow::Error::new(error).context(context),
        (false, None) => error.into(),
    }
}

fn verify(args: VerifyArgs) -> anyhow::Result<()> {
    let genesis = Genesis::load(&args.genesis).map_err(|error| refusal(error, args.json, None))?;
    let verified = genesis.verify().map_err(|error| {
        let context = format!("genesis {} is not valid", args.genesis.display());
        refusal(error, args.json, Some(context))
    })?;
    let genesis = verified.genesis();
    let membership = verified.membership();
    if args.json {
        let members: Vec<_> = genesis
            .members()
            .iter()
            .map(|m| {
                json!({
                    "code": m.code.to_string(),
                    "name": m.name,
                    "public_key": hex::encode(m.public_key.to_bytes()),
                    "addresses": m.addresses,
                })
            })
            .collect();
        print_json(&json!({
            "valid": true,
            "network": genesis.network(),
            "network_id": membership.network().to_hex(),
            "hash": verified.hash().to_hex(),
            "admin_public_key": hex::encode(genesis.admin_public_key().to_bytes()),
            "quorum": membership.quorum(),
            "members": members,
        }));
        return Ok(());
    }
    outln!("valid genesis {}", args.genesis.display());
    outln!("network:    {}", genesis.network());
    outln!("network id: {}", membership.network());
    outln!("hash:       {}", verified.hash());
    outln!(
        "admin key:  {}",
        hex::encode(genesis.admin_public_key().to_bytes())
    );
    outln!(
        "quorum:     {} of {} members",
        membership.quorum(),
        membership.len()
    );
    for m in genesis.members() {
        outln!(
            "  {}  {}  {}  {}",
            m.code,
            hex::encode(m.public_key.to_bytes()),
            m.name,
            m.addresses.join(" ")
        );
    }
    Ok(())
}
