//! `hukou node run --config FILE`: runs a bureau node until Ctrl-C or SIGTERM.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::config::Config;

/// `hukou node ...`
#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// Run a bureau node (storage, private network, replication, HTTP API).
    Run(RunArgs),
    /// Check a stopped node's store: every log's chain and every index row.
    Check(RunArgs),
}

/// Which node.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The node's configuration file (TOML; every field is documented in docs/NODE.md).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
}

impl NodeCommand {
    /// Runs the command.
    pub fn run(self) -> anyhow::Result<()> {
        match self {
            NodeCommand::Run(args) => run(args),
            NodeCommand::Check(args) => check(args),
        }
    }
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    let config = Config::load(&args.config)?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,libp2p=warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(crate::run::run(config, shutdown_signal(), |started| {
        eprintln!(
            "hukou node: API on http://{}, peers on {}",
            started.api,
            started.p2p.join(", ")
        );
    }))
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("can install a SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}

fn check(args: RunArgs) -> anyhow::Result<()> {
    let config = Config::load(&args.config)?;
    let genesis = hukou_keys::Genesis::load(&config.genesis)?;
    let verified = genesis.verify()?;
    let store = crate::store::Store::open(
        &config.data_dir.join("db"),
        config.bureau,
        verified.membership().network(),
    )?;
    let report = store.verify_full()?;
    outln!("store {} is sound: {report:?}", store.path().display());
    Ok(())
}
