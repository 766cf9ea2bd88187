//! The `hukou` command line: one [`Command`] enum dispatching to one file per command group.
//!
//! - [`id`]: `hukou id check` — citizen ID numbers
//! - [`keys`]: `hukou keys gen|gen-person-key|gen-network-key|show` — key files
//! - [`genesis`]: `hukou genesis create|add-member|sign|verify` — the network's genesis
//! - [`client`]: `hukou enrol|birth|permit|deregister|refuse|register|cancel|head-change|person|
//!   transfer|inbox|status` — the clerk's client of a node's API
//! - [`config`]: `hukou config propose|sign|submit|show|fetch` — configuration epochs
//! - [`export`]: `hukou export` — a ledger bundle for auditors (docs/FORMAT.md)
//! - [`audit`]: `hukou audit` — verifies a bundle offline
//! - [`certify`]: `hukou certify`, `hukou verify-certificate` — registration certificates (户籍证明)
//!
//! To add a command group: write `cli/NAME.rs` with a clap `Subcommand` (or `Args`) type and a
//! `run(self) -> anyhow::Result<()>` method, add a variant to [`Command`] and a line to
//! [`Command::run`].
//!
//! Exit codes (DESIGN.md, "The interface scripts rely on"): 0 success; 1 refused input (an invalid
//! ID, a key file others can read, a genesis that does not verify); 2 usage errors, which clap
//! reports itself. Errors go to stderr as one line, `error: ...`. A command that has already
//! reported its failure (as JSON on stdout, say) returns [`Exit`] to choose the code silently.

use clap::{Parser, Subcommand};

/// `print!` to stdout, but a closed stdout ends the process quietly ([`stdout_closed`]).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format_args!($($arg)*))
    };
}

/// `println!` to stdout, but a closed stdout ends the process quietly ([`stdout_closed`]).
macro_rules! outln {
    () => {
        $crate::cli::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

pub mod audit;
pub mod certify;
pub mod client;
pub mod config;
pub mod export;
pub mod genesis;
pub mod id;
pub mod keys;
pub mod node;

/// Exit code of a refused input or a failed operation.
pub const EXIT_REFUSED: i32 = 1;

/// Exit code of a usage error (clap's own).
pub const EXIT_USAGE: i32 = 2;

/// The `hukou` command line.
#[derive(Debug, Parser)]
#[command(
    name = "hukou",
    version,
    about = "hukou-ledger: a permissioned ledger of household-register transfers between bureaus"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Every top-level command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check citizen ID numbers (GB 11643-1999).
    #[command(subcommand)]
    Id(id::IdCommand),
    /// Create and inspect key files.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Create, extend, sign and verify the network's genesis.
    #[command(subcommand)]
    Genesis(genesis::GenesisCommand),
    /// Run or check a bureau node.
    #[command(subcommand)]
    Node(node::NodeCommand),
    /// Administrators: propose, sign, submit and show configuration updates (members, keys,
    /// calendar years) — membership epochs.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Write a self-contained ledger bundle for auditors (docs/FORMAT.md).
    Export(export::ExportArgs),
    /// Verify a ledger bundle offline: exit 0 clean, 1 violations, 2 unusable input.
    Audit(audit::AuditArgs),
    /// Write a person's registration certificate (户籍证明) from a node: the entry that registered
    /// them at this bureau, its inclusion proof and the certificate that makes it final.
    Certify(certify::CertifyArgs),
    /// Verify a registration certificate offline with the genesis: exit 0 valid, 1 invalid,
    /// 2 unusable input.
    VerifyCertificate(certify::VerifyCertificateArgs),
    /// Clerk commands: a client of a running node's API (enrol, permit, person, inbox ...).
    #[command(flatten)]
    Client(client::ClientCommand),
}

impl Command {
    /// Runs the command.
    pub fn run(self) -> anyhow::Result<()> {
        match self {
            Command::Id(command) => command.run(),
            Command::Keys(command) => command.run(),
            Command::Genesis(command) => command.run(),
            Command::Node(command) => command.run(),
            Command::Config(command) => command.run(),
            Command::Export(args) => args.run(),
            Command::Audit(args) => args.run(),
            Command::Certify(args) => args.run(),
            Command::VerifyCertificate(args) => args.run(),
            Command::Client(command) => command.run(),
        }
    }
}

/// A failure the command has already reported (for example as `--json` on stdout): the process
/// exits with `code` and prints nothing more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    /// The process exit code.
    pub code: i32,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}", self.code)
    }
}

impl std::error::Error for Exit {}

/// Parses the command line, runs the command and returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // Help and version go to stdout with exit 0; usage errors to stderr with exit 2.
            let _ = error.print();
            return error.exit_code();
        }
    };
    exit_code(cli.command.run())
}

/// The exit code of a command's result, printing an unreported error as one line on stderr.
pub fn exit_code(result: anyhow::Result<()>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(error) => match error.downcast_ref::<Exit>() {
            Some(exit) => exit.code,
            None => {
                eprintln!("error: {}", one_line(&error));
                EXIT_REFUSED
            }
        },
    }
}

/// An error and its causes on one line, `outer: inner: ...`, without repeating a cause that the
/// outer message already includes (our library errors embed their source).
pub fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string().replace('\n', " ");
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// Writes to stdout: what [`out!`] and [`outln!`] call. Every command prints through them, so
/// a reader that goes away is handled here, once.
pub(crate) fn write_stdout(args: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    if let Err(error) = std::io::stdout().lock().write_fmt(args) {
        stdout_failed(error);
    }
}

/// Ends the process after a write to stdout failed. A closed pipe (`hukou inbox | head -1`:
/// `head` has what it wanted and left) ends it the way it ends `cat` or `yes`: killed by
/// SIGPIPE, which shells report silently (status 141), and with no message; `println!` would
/// panic instead, because Rust ignores SIGPIPE so that sockets report EPIPE as an error (the
/// node needs that, so the default action is restored only here, at the end). Any other
/// failure is reported as an error.
pub(crate) fn stdout_failed(error: std::io::Error) -> ! {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        // SAFETY: `signal` and `raise` with a valid signal number and the default action; the
        // process ends at the `raise`, with no Rust code running after it.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            libc::raise(libc::SIGPIPE);
        }
        std::process::exit(128 + libc::SIGPIPE);
    }
    eprintln!("error: cannot write to standard output: {error}");
    std::process::exit(EXIT_REFUSED)
}

/// Prints `value` as pretty JSON on stdout.
pub(crate) fn print_json(value: &serde_json::Value) {
    outln!(
        "{}",
        serde_json::to_string_pretty(value).expect("JSON values always serialise")
    );
}

/// Reports a refusal as `{"error": NAME, "message": ...}` on stdout and returns the silent
/// [`Exit`] for it.
pub(crate) fn refuse_json(name: &str, message: &str) -> anyhow::Error {
    print_json(&serde_json::json!({ "error": name, "message": message }));
    Exit { code: EXIT_REFUSED }.into()
}
