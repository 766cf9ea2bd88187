//! `hukou keys ...`: writes new key files (mode 0600, never overwriting one unless `--force`) and
//! shows what a key file holds without showing its secret. The formats are in `docs/KEYS.md`.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use hukou_keys::{
    AnyKey, BureauKey, NetworkKey, generate_person_key, person_key_fingerprint, save_person_key,
};

/// `hukou keys ...`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Write a new bureau (or administrator) signing key; prints its public key.
    Gen(GenArgs),
    /// Write a new network person key (turns citizen IDs into person tags); prints its fingerprint.
    GenPersonKey(GenArgs),
    /// Write a new network connection key (libp2p pnet); prints its fingerprint.
    GenNetworkKey(GenArgs),
    /// Show a key file's public key (or, for the shared secret keys, its fingerprint).
    Show(ShowArgs),
}

/// Where to write a new key.
#[derive(Debug, Args)]
pub struct GenArgs {
    /// The key file to create (mode 0600).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Replace the file if it exists. The old key is lost.
    #[arg(long)]
    pub force: bool,
}

/// Which key file to show.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The key file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

impl KeysCommand {
    /// Runs the command.
    pub fn run(self) -> anyhow::Result<()> {
        match self {
            KeysCommand::Gen(args) => {
                let key = BureauKey::generate()?;
                key.save(&args.out, args.force)?;
                outln!("{}", key.public_hex());
            }
            KeysCommand::GenPersonKey(args) => {
                let key = generate_person_key()?;
                save_person_key(&key, &args.out, args.force)?;
                outln!("{}", person_key_fingerprint(&key));
            }
            KeysCommand::GenNetworkKey(args) => {
                let key = NetworkKey::generate()?;
                key.save(&args.out, args.force)?;
                outln!("{}", key.fingerprint());
            }
            KeysCommand::Show(args) => {
                let key = AnyKey::load(&args.file)?;
                match key {
                    AnyKey::Bureau(key) => outln!("{}", key.public_hex()),
                    AnyKey::Person(key) => outln!(
                        "{} (secret, no public key; fingerprint {})",
                        hukou_keys::secret::KIND_PERSON_KEY,
                        person_key_fingerprint(&key)
                    ),
                    AnyKey::Network(key) => outln!(
                        "{} (secret, no public key; fingerprint {})",
                        hukou_keys::secret::KIND_NETWORK_KEY,
                        key.fingerprint()
                    ),
                }
            }
        }
        Ok(())
    }
}
