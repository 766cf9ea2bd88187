//! `hukou genesis ...`: the administrator's tools for the network's genesis. `create` starts an
//! unsigned genesis (naming its k-of-n administrators, or not: the legacy form),
//! `set-administrators` names them in an existing one, `add-member` adds a bureau (both clear any
//! signature), `sign` signs it with the administrator's key, and `verify` checks it as every node
//! and auditor will.

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
    /// Name the administrators, k of whom sign configuration updates, and k (clears the
    /// signature: sign again afterwards).
    SetAdministrators(SetAdministratorsArgs),
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
    /// The administrators (none: the legacy form, whose one administrator is the admin key).
    #[command(flatten)]
    pub administrators: AdministratorArgs,
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

/// The administrators a genesis names and their threshold, as `create` and
/// `set-administrators` take them: keys by hex or from key files, in any mix, and k.
#[derive(Debug, Args)]
#[command(group(
    ArgGroup::new("administrator_given")
        .multiple(true)
        .args(["administrators", "administrator_keys"])
        .requires("admin_threshold")
))]
pub struct AdministratorArgs {
    /// An administrator's public key, 64 hex digits (repeatable; at least 2 administrators).
    #[arg(long = "administrator", value_name = "HEX")]
    pub administrators: Vec<String>,
    /// An administrator's key file, to take its public key from (repeatable).
    #[arg(long = "administrator-key", value_name = "FILE")]
    pub administrator_keys: Vec<PathBuf>,
    /// How many administrators must sign a configuration update: more than half of them.
    #[arg(long, value_name = "K", requires = "administrator_given")]
    pub admin_threshold: Option<usize>,
}

impl AdministratorArgs {
    /// The administrators' public keys (hex ones first, then those of the key files) and k, or
    /// `None` if none is given.
    fn keys_and_threshold(&self) -> anyhow::Result<Option<(Vec<VerifyingKey>, usize)>> {
        let Some(threshold) = self.admin_threshold else {
            // clap's argument group requires --admin-threshold with any administrator.
            assert!(self.administrators.is_empty() && self.administrator_keys.is_empty());
            return Ok(None);
        };
        let mut keys = Vec::new();
        for hex in &self.administrators {
            keys.push(public_key_from(Some(hex), None, "administrator")?);
        }
        for file in &self.administrator_keys {
            keys.push(public_key_from(None, Some(file), "administrator-key")?);
        }
        Ok(Some((keys, threshold)))
    }
}

/// Arguments of `hukou genesis set-administrators`.
#[derive(Debug, Args)]
#[command(group(
    ArgGroup::new("some_administrator")
        .required(true)
        .multiple(true)
        .args(["administrators", "administrator_keys"])
))]
pub struct SetAdministratorsArgs {
    /// The genesis file to change.
    #[arg(long, value_name = "FILE")]
    pub genesis: PathBuf,
    /// The administrators, replacing any the genesis names.
    #[command(flatten)]
    pub administrators: AdministratorArgs,
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
            GenesisCommand::SetAdministrators(args) => set_administrators(args),
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
    if let Some((keys, threshold)) = args.administrators.keys_and_threshold()? {
        genesis
            .set_administrators(keys, threshold)
            .with_context(|| format!("cannot create {}", args.out.display()))?;
    }
    if args.force {
        genesis.save(&args.out)?;
    } else {
        genesis.save_new(&args.out)?;
    }
    eprintln!(
        "wrote {} (unsigned, no members yet; {}): add members with `hukou genesis add-member`, then sign it",
        args.out.display(),
        administrators_summary(&genesis)
    );
    Ok(())
}

/// "administrators: k of n", or that the genesis is of the legacy form.
fn administrators_summary(genesis: &Genesis) -> String {
    if genesis.states_administrators() {
        format!(
            "administrators: {} of {} sign configuration updates",
            genesis.admin_threshold(),
            genesis.administrators().len()
        )
    } else {
        "legacy form: the admin key is the only administrator".to_string()
    }
}

fn set_administrators(args: SetAdministratorsArgs) -> anyhow::Result<()> {
    let (keys, threshold) = args
        .administrators
        .keys_and_threshold()?
        .expect("clap requires an administrator, and with it --admin-threshold");
    let mut genesis = Genesis::load(&args.genesis)?;
    let was_signed = genesis.signature().is_some();
    genesis
        .set_administrators(keys, threshold)
        .with_context(|| {
            format!(
                "cannot set the administrators of {}",
                args.genesis.display()
            )
        })?;
    genesis.save(&args.genesis)?;
    eprintln!(
        "{}: {}{}",
        args.genesis.display(),
        administrators_summary(&genesis),
        if was_signed {
            "; its signature is removed: sign it again"
        } else {
            ""
        }
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
            "administrators": verified
                .administrators()
                .iter()
                .map(|k| hex::encode(k.to_bytes()))
                .collect::<Vec<_>>(),
            "admin_threshold": verified.admin_threshold(),
            "legacy_administrators": !genesis.states_administrators(),
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
    if genesis.states_administrators() {
        outln!(
            "admins:     {} of {} sign configuration updates",
            verified.admin_threshold(),
            verified.administrators().len()
        );
        for key in verified.administrators() {
            outln!("  {}", hex::encode(key.to_bytes()));
        }
    } else {
        outln!("admins:     1 of 1 (legacy genesis: the admin key alone)");
    }
    Ok(())
}
