//! `hukou audit DIR [--json] [--calendar FILE] [--as-of DATE]`: verifies a ledger bundle
//! (docs/FORMAT.md) offline and reports every violation, with the entries that prove it.
//!
//! The shell around `hukou_protocol::audit`, which does the judging:
//!
//! 1. reads the bundle: the genesis (its administrator signature verified, its hash matched with
//!    the manifest's and `--expect-genesis`), the manifest, the file lists. Anything that makes
//!    the bundle unusable exits 2 with a named reason (`genesis_missing`, `manifest_invalid`,
//!    `genesis_mismatch`, ...);
//! 2. verifies every entry signature, streaming the log files in chunks to one worker thread per
//!    core (batch verification; a chunk that fails is searched entry by entry);
//! 3. streams the log files again, decoding each entry (a decode error is a finding naming the
//!    file and byte offset, never a panic), into `audit::audit` with the verdicts;
//! 4. compares the manifest's lengths and roots with what the files hold, and reports.
//!
//! The revoked entries (`revoked/<code>.log`, at most `REVOKED_KEPT_PER_LOG_MAX` read per file)
//! are read whole before the replay and judged by `audit::audit_with_revoked`; the report lists
//! them with the configuration epochs.
//!
//! Exit codes (DESIGN.md): 0 clean (warnings such as overdue permits allowed, unless
//! `--strict`), 1 violations found, 2 unusable input. Memory: the rulebook's state and one chunk
//! per worker, never the whole history (a 1,000,000-entry bundle: docs/BENCHMARKS.md, "Audit").

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufReader, IsTerminal as _, Read as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clap::Args;
use hukou_keys::{Genesis, VerifiedGenesis};
use hukou_protocol::audit::{
    self as rules, CERTIFICATES_DIR, FRAUD_PROOFS_DIR, Finding, GENESIS_FILE, LOGS_DIR, LogItem,
    MANIFEST_FILE, Manifest, REVOKED_DIR, Report, RevokedEntry, Severity,
};
use hukou_protocol::calendar::{Calendar, Date, china_date, china_day_end_ms};
use hukou_protocol::checkpoint::Certificate;
use hukou_protocol::config::Epochs;
use hukou_protocol::limits::ENTRY_BYTES_MAX;
use hukou_protocol::{BureauCode, FraudProof, NetworkId, SignedEntry};
use serde_json::{Value, json};

use super::{EXIT_REFUSED, EXIT_USAGE, Exit, print_json};

/// Frames per verification job, each verified by `protocol::batch` (1,024-entry batch
/// equations in the honest case); 2,048 entries is ~450 KB of frames per job, so a few jobs in
/// flight cost little memory.
const VERIFY_CHUNK_FRAMES: usize = 2048;

/// Jobs queued per worker: enough to keep workers fed while the reader waits on the disk.
const JOBS_QUEUED_PER_WORKER: usize = 2;

/// Bundles with more frames than this show progress on stderr.
const PROGRESS_ENTRIES_MIN: u64 = 100_000;

/// Findings of one name printed by the human summary; `--json` has every one kept.
const FINDINGS_SHOWN_PER_NAME: usize = 10;

/// Dates of the reconciliation table printed by the human summary (the latest ones).
const RECONCILIATION_DATES_SHOWN: usize = 7;

/// Arguments of `hukou audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The bundle directory (written by `hukou export` or `hukou-gen-bundle`).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Print the full report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Working-day calendar file (format of protocol/data/prc-calendar.txt); default: built in.
    #[arg(long, value_name = "FILE")]
    pub calendar: Option<PathBuf>,
    /// Judge deadlines as of the end of this China date (YYYY-MM-DD), or this instant in ms
    /// since the epoch; default: the export time in the manifest.
    #[arg(long, value_name = "DATE")]
    pub as_of: Option<String>,
    /// The genesis hash the auditor expects (64 hex digits); without it, a bundle whose genesis
    /// and manifest were both replaced by a forger's is judged by the forger's genesis.
    #[arg(long, value_name = "HASH")]
    pub expect_genesis: Option<String>,
    /// Exit 1 on warnings (overdue deadlines) too.
    #[arg(long)]
    pub strict: bool,
    /// Print timings, entries per second and peak memory on stderr at the end.
    #[arg(long)]
    pub stats: bool,
    /// No progress on stderr.
    #[arg(long)]
    pub quiet: bool,
}

impl AuditArgs {
    /// Runs the audit and exits with 0, 1 or 2.
    pub fn run(self) -> anyhow::Result<()> {
        let started = Instant::now();
        let outcome = audit_bundle(&self, started);
        let code = match outcome {
            Ok((report, bundle, timings)) => {
                let code = if !report.clean || (self.strict && report.totals.warnings > 0) {
                    EXIT_REFUSED
                } else {
                    0
                };
                if self.json {
                    let mut value = serde_json::to_value(&report)?;
                    let object = value.as_object_mut().expect("a report is an object");
                    object.insert("bundle".into(), bundle_json(&self.dir, &bundle));
                    object.insert("exit_code".into(), json!(code));
                    print_json(&value);
                } else {
                    print_summary(&self.dir, &bundle, &report, code);
                }
                if self.stats {
                    print_stats(&report, &timings, started.elapsed());
                }
                code
            }
            Err(unusable) => {
                if self.json {
                    print_json(&json!({"error": unusable.name, "message": unusable.message,
                        "exit_code": EXIT_USAGE}));
                } else {
                    eprintln!(
                        "error: {} ({}): bundle {} is unusable",
                        unusable.message,
                        unusable.name,
                        self.dir.display()
                    );
                }
                EXIT_USAGE
            }
        };
        if code == 0 {
            Ok(())
        } else {
            Err(Exit { code }.into())
        }
    }
}

/// Why a bundle cannot be audited at all (exit 2).
#[derive(Debug)]
pub struct Unusable {
    /// Stable snake_case name.
    pub name: &'static str,
    pub message: String,
}

fn unusable(name: &'static str, message: impl Into<String>) -> Unusable {
    Unusable {
        name,
        message: message.into(),
    }
}

/// The parts of a bundle read before any entry.
pub struct Bundle {
    pub genesis: VerifiedGenesis,
    pub manifest: Manifest,
    /// Log files by bureau code, opened (so a later read cannot fail to open them).
    pub logs: Vec<(BureauCode, PathBuf, u64)>,
    /// Files in `logs/` that are not `<code>.log`.
    pub stray: Vec<String>,
}

/// How long each phase took.
#[derive(Debug, Default)]
struct Timings {
    load: Duration,
    verify: Duration,
    replay: Duration,
    /// Whether a bad signature made the optimistic replay run again.
    replayed_again: bool,
    frames: u64,
}

fn audit_bundle(args: &AuditArgs, started: Instant) -> Result<(Report, Bundle, Timings), Unusable> {
    let mut timings = Timings::default();
    let bundle = load_bundle(&args.dir, args.expect_genesis.as_deref())?;
    let calendar = match &args.calendar {
        None => Calendar::prc().clone(),
        Some(path) => {
            let text = fs::read_to_string(path).map_err(|e| {
                unusable(
                    "calendar_unreadable",
                    format!("cannot read calendar {}: {e}", path.display()),
                )
            })?;
            Calendar::parse(&text).map_err(|e| {
                unusable(
                    "calendar_invalid",
                    format!("calendar {}: {e}", path.display()),
                )
            })?
        }
    };
    let as_of_ms = match &args.as_of {
        None => bundle.manifest.exported_at_ms,
        Some(text) => parse_as_of(text)?,
    };
    let epochs = bundle_epochs(&args.dir, &bundle.genesis, calendar.clone())?;
    let membership = &epochs;
    let mut extra: Vec<Finding> = Vec::new();
    let certificates = read_certificates(&args.dir, &mut extra)?;
    let fraud_proofs = read_fraud_proofs(&args.dir, &mut extra)?;
    let revoked = read_revoked(&args.dir, &mut extra)?;
    timings.load = started.elapsed();

    let total_bytes: u64 = bundle.logs.iter().map(|(_, _, len)| len).sum();
    // About 230 bytes a frame: only to decide whether to show progress.
    let progress_shown = !args.quiet && total_bytes / 230 >= PROGRESS_ENTRIES_MIN;

    // Replay optimistically, every signature taken as valid, while the signatures are verified
    // on the other threads: a clean bundle (the common case) then costs the verification alone
    // on a machine with a core to spare. If any verdict is false the replay runs again with the
    // verdicts, so the report is always the one the true verdicts give.
    let progress = Mutex::new(Progress::new(
        "audit",
        total_bytes,
        &["signatures verified", "entries replayed"],
        progress_shown,
    ));
    let inputs = ReplayInputs {
        membership,
        logs: &bundle.logs,
        certificates: &certificates,
        fraud_proofs: &fraud_proofs,
        revoked: &revoked,
        calendar: &epochs.latest().calendar,
        as_of_ms,
        progress: &progress,
    };
    let (verified, optimistic) = std::thread::scope(|scope| {
        let replay = scope.spawn(|| {
            let started = Instant::now();
            (replay(&inputs, None), started.elapsed())
        });
        let started = Instant::now();
        let verdicts = verify_logs(membership, &bundle.logs, &progress);
        let verified = verdicts.map(|v| (v, started.elapsed()));
        (
            verified,
            replay.join().expect("the replay thread does not panic"),
        )
    });
    let (verdicts, verify_time) = verified?;
    timings.verify = verify_time;
    timings.replay = optimistic.1;
    let all_valid = verdicts.iter().all(|log| log.iter().all(|valid| *valid));
    let mut report = if all_valid {
        optimistic.0?
    } else {
        timings.replayed_again = true;
        let started = Instant::now();
        progress.lock().expect("progress lock").restart(1);
        let report = replay(&inputs, Some(verdicts))?;
        timings.replay += started.elapsed();
        report
    };
    progress.lock().expect("progress lock").finish();
    timings.frames = report.totals.entries_read + report.totals.frames_unreadable;

    for finding in extra {
        report.add_finding(finding);
    }
    check_manifest(&bundle, &mut report);
    report.sort_findings();
    Ok((report, bundle, timings))
}

/// What a replay needs besides the verdicts.
struct ReplayInputs<'a> {
    membership: &'a Epochs,
    logs: &'a [(BureauCode, PathBuf, u64)],
    certificates: &'a [Certificate],
    fraud_proofs: &'a [FraudProof],
    /// Each `revoked/<code>.log`'s items, in file order.
    revoked: &'a [(BureauCode, Vec<LogItem>)],
    calendar: &'a Calendar,
    as_of_ms: u64,
    progress: &'a Mutex<Progress>,
}

/// Streams the log files into `audit::audit`; `verdicts` per log in file order, or `None` to
/// take every signature as valid.
fn replay(inputs: &ReplayInputs, verdicts: Option<Vec<Vec<bool>>>) -> Result<Report, Unusable> {
    let mut verdicts = verdicts.map(Vec::into_iter);
    let mut sources = Vec::with_capacity(inputs.logs.len());
    for (code, path, _) in inputs.logs {
        let frames = FrameReader::open(path).map_err(|e| {
            unusable(
                "bundle_unreadable",
                format!("cannot open {}: {e}", path.display()),
            )
        })?;
        sources.push((
            *code,
            LogSource {
                code: *code,
                frames,
                verdicts: verdicts.as_mut().map(|v| v.next().unwrap_or_default()),
                index: 0,
                progress: inputs.progress,
            },
        ));
    }
    Ok(rules::audit_with_revoked(
        inputs.membership,
        sources,
        inputs.certificates,
        inputs.fraud_proofs,
        inputs.revoked,
        inputs.calendar,
        inputs.as_of_ms,
    ))
}

/// The bundle's configuration log (`config.log`, `hukou config fetch`'s format), each update
/// judged against the epochs before it from the genesis on; a bundle without one is judged by
/// the genesis alone. An update that does not decode or is refused makes the bundle unusable:
/// the audit could not know which keys and members judge the entries after it.
fn bundle_epochs(
    dir: &Path,
    genesis: &VerifiedGenesis,
    calendar: Calendar,
) -> Result<Epochs, Unusable> {
    let mut epochs = crate::run::genesis_epochs(genesis, calendar);
    let path = dir.join(CONFIG_LOG_FILE);
    if !path.exists() {
        return Ok(epochs);
    }
    crate::cli::config::extend_from_log(&mut epochs, &path)
        .map_err(|(name, message)| unusable(name, message))?;
    Ok(epochs)
}

/// The configuration log's file name in a bundle.
pub const CONFIG_LOG_FILE: &str = "config.log";

/// `--as-of`: a China date (its last millisecond) or milliseconds since the epoch.
fn parse_as_of(text: &str) -> Result<u64, Unusable> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse()
            .map_err(|_| unusable("as_of_invalid", format!("--as-of {text} is out of range")));
    }
    let date: Date = text.parse().map_err(|e| {
        unusable(
            "as_of_invalid",
            format!("--as-of {text:?} is neither YYYY-MM-DD nor milliseconds: {e}"),
        )
    })?;
    Ok(china_day_end_ms(date))
}

/// Reads and checks the genesis and the manifest, and lists the log files.
pub fn load_bundle(dir: &Path, expect_genesis: Option<&str>) -> Result<Bundle, Unusable> {
    let meta = fs::metadata(dir).map_err(|e| {
        unusable(
            "bundle_unreadable",
            format!("cannot read {}: {e}", dir.display()),
        )
    })?;
    if !meta.is_dir() {
        return Err(unusable(
            "bundle_unreadable",
            format!("{} is not a directory", dir.display()),
        ));
    }
    let genesis_path = dir.join(GENESIS_FILE);
    if !genesis_path.exists() {
        return Err(unusable(
            "genesis_missing",
            format!("the bundle has no {GENESIS_FILE}"),
        ));
    }
    let genesis = Genesis::load(&genesis_path)
        .and_then(|g| g.verify())
        .map_err(|e| unusable(e.name(), e.to_string()))?;

    let manifest_path = dir.join(MANIFEST_FILE);
    let text = fs::read_to_string(&manifest_path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            unusable(
                "manifest_missing",
                format!("the bundle has no {MANIFEST_FILE}"),
            )
        } else {
            unusable(
                "manifest_invalid",
                format!("cannot read {}: {e}", manifest_path.display()),
            )
        }
    })?;
    let manifest: Manifest = serde_json::from_str(&text).map_err(|e| {
        unusable(
            "manifest_invalid",
            format!("{} is not a valid manifest: {e}", manifest_path.display()),
        )
    })?;
    if manifest.kind != rules::BUNDLE_KIND {
        return Err(unusable(
            "manifest_invalid",
            format!(
                "{MANIFEST_FILE} is a {:?}, this build reads {:?}",
                manifest.kind,
                rules::BUNDLE_KIND
            ),
        ));
    }
    let network = genesis.genesis().network();
    if manifest.network != network || manifest.network_id != NetworkId::from_name(network) {
        return Err(unusable(
            "network_mismatch",
            format!(
                "{MANIFEST_FILE} is of network {:?} ({}), {GENESIS_FILE} of {network:?} ({})",
                manifest.network,
                manifest.network_id,
                NetworkId::from_name(network)
            ),
        ));
    }
    if manifest.genesis_hash != genesis.hash().0 {
        return Err(unusable(
            "genesis_mismatch",
            format!(
                "{MANIFEST_FILE} names genesis {}, but {GENESIS_FILE} hashes to {}: the genesis was replaced",
                hex::encode(manifest.genesis_hash),
                genesis.hash()
            ),
        ));
    }
    if let Some(expected) = expect_genesis {
        let expected = expected.trim().to_ascii_lowercase();
        if expected != genesis.hash().to_hex() {
            return Err(unusable(
                "genesis_not_expected",
                format!(
                    "the bundle's genesis hashes to {}, not the expected {expected}",
                    genesis.hash()
                ),
            ));
        }
    }

    let logs_dir = dir.join(LOGS_DIR);
    let mut logs = Vec::new();
    let mut stray = Vec::new();
    let listing = fs::read_dir(&logs_dir).map_err(|e| {
        unusable(
            "bundle_unreadable",
            format!("cannot list {}: {e}", logs_dir.display()),
        )
    })?;
    for item in listing {
        let item = item.map_err(|e| {
            unusable(
                "bundle_unreadable",
                format!("cannot list {}: {e}", logs_dir.display()),
            )
        })?;
        let name = item.file_name().to_string_lossy().into_owned();
        match rules::parse_log_file_name(&name) {
            Some(code) => {
                let path = item.path();
                let len = File::open(&path)
                    .and_then(|f| f.metadata())
                    .map_err(|e| {
                        unusable(
                            "bundle_unreadable",
                            format!("cannot read {}: {e}", path.display()),
                        )
                    })?
                    .len();
                logs.push((code, path, len));
            }
            None => stray.push(format!("{LOGS_DIR}/{name}")),
        }
    }
    logs.sort();
    stray.sort();
    Ok(Bundle {
        genesis,
        manifest,
        logs,
        stray,
    })
}

/// The files of a bundle subdirectory (absent: none), sorted by name.
fn list_files(dir: &Path) -> Result<Vec<(String, PathBuf)>, Unusable> {
    let listing = match fs::read_dir(dir) {
        Ok(listing) => listing,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(unusable(
                "bundle_unreadable",
                format!("cannot list {}: {e}", dir.display()),
            ));
        }
    };
    let mut files = Vec::new();
    for item in listing {
        let item = item.map_err(|e| {
            unusable(
                "bundle_unreadable",
                format!("cannot list {}: {e}", dir.display()),
            )
        })?;
        files.push((item.file_name().to_string_lossy().into_owned(), item.path()));
    }
    files.sort();
    Ok(files)
}

/// Reads a small bundle file (a certificate or a fraud proof), refusing one beyond `max`.
fn read_small(path: &Path, max: usize) -> Result<Vec<u8>, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(max as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() > max {
        return Err(format!("longer than the {max} bytes allowed"));
    }
    Ok(bytes)
}

/// Decodes `certificates/*`; undecodable or misnamed files become findings.
fn read_certificates(
    dir: &Path,
    findings: &mut Vec<Finding>,
) -> Result<Vec<Certificate>, Unusable> {
    let mut certificates = Vec::new();
    for (name, path) in list_files(&dir.join(CERTIFICATES_DIR))? {
        let file = format!("{CERTIFICATES_DIR}/{name}");
        let Some((log, size)) = rules::parse_certificate_file_name(&name) else {
            findings.push(Finding {
                file: Some(file.clone()),
                ..Finding::new(
                    "unexpected_file",
                    Severity::Warning,
                    format!("{file} is not named <code>-<size>.cert; ignored"),
                )
            });
            continue;
        };
        let decoded = read_small(&path, hukou_protocol::limits::CERTIFICATE_BYTES_MAX)
            .and_then(|bytes| Certificate::decode(&bytes).map_err(|e| e.to_string()));
        match decoded {
            Err(e) => findings.push(Finding {
                log: Some(log),
                file: Some(file.clone()),
                ..Finding::violation(
                    "certificate_undecodable",
                    format!("{file} is not a certificate: {e}"),
                )
            }),
            Ok(c) if (c.checkpoint.log, c.checkpoint.size) != (log, size) => {
                findings.push(Finding {
                    log: Some(log),
                    file: Some(file.clone()),
                    ..Finding::violation(
                        "certificate_misnamed",
                        format!(
                            "{file} holds the certificate of {} at size {}",
                            c.checkpoint.log, c.checkpoint.size
                        ),
                    )
                })
            }
            Ok(c) => certificates.push(c),
        }
    }
    Ok(certificates)
}

/// Decodes `fraud-proofs/*`; undecodable or misnamed files become findings.
fn read_fraud_proofs(dir: &Path, findings: &mut Vec<Finding>) -> Result<Vec<FraudProof>, Unusable> {
    let mut proofs = Vec::new();
    for (name, path) in list_files(&dir.join(FRAUD_PROOFS_DIR))? {
        let file = format!("{FRAUD_PROOFS_DIR}/{name}");
        let Some((author, seq)) = rules::parse_fraud_proof_file_name(&name) else {
            findings.push(Finding {
                file: Some(file.clone()),
                ..Finding::new(
                    "unexpected_file",
                    Severity::Warning,
                    format!("{file} is not named <code>-<seq>.proof; ignored"),
                )
            });
            continue;
        };
        let decoded = read_small(&path, 2 * ENTRY_BYTES_MAX + 64)
            .and_then(|bytes| FraudProof::decode(&bytes).map_err(|e| e.to_string()));
        match decoded {
            Err(e) => findings.push(Finding {
                log: Some(author),
                file: Some(file.clone()),
                ..Finding::violation(
                    "invalid_fraud_proof",
                    format!("{file} is not a fraud proof: {e}"),
                )
            }),
            Ok(p) if (p.author(), p.seq().0) != (author, seq) => findings.push(Finding {
                log: Some(author),
                file: Some(file.clone()),
                ..Finding::violation(
                    "fraud_proof_misnamed",
                    format!(
                        "{file} holds a fraud proof against {} at seq {}",
                        p.author(),
                        p.seq()
                    ),
                )
            }),
            Ok(p) => proofs.push(p),
        }
    }
    Ok(proofs)
}

/// Reads `revoked/<code>.log` files: at most [`REVOKED_KEPT_PER_LOG_MAX`] frames each (what a
/// node keeps; `revoked_file_too_long` beyond), decoded into log items whose signatures the audit
/// verifies itself. Misnamed files are `unexpected_file` warnings.
///
/// [`REVOKED_KEPT_PER_LOG_MAX`]: crate::service::REVOKED_KEPT_PER_LOG_MAX
fn read_revoked(
    dir: &Path,
    findings: &mut Vec<Finding>,
) -> Result<Vec<(BureauCode, Vec<LogItem>)>, Unusable> {
    let max = crate::service::REVOKED_KEPT_PER_LOG_MAX;
    let mut revoked = Vec::new();
    for (name, path) in list_files(&dir.join(REVOKED_DIR))? {
        let file = format!("{REVOKED_DIR}/{name}");
        let Some(code) = rules::parse_log_file_name(&name) else {
            findings.push(Finding {
                file: Some(file.clone()),
                ..Finding::new(
                    "unexpected_file",
                    Severity::Warning,
                    format!("{file} is not named <code>.log; ignored"),
                )
            });
            continue;
        };
        let frames = FrameReader::open_labelled(&path, file.clone()).map_err(|e| {
            unusable(
                "bundle_unreadable",
                format!("cannot open {}: {e}", path.display()),
            )
        })?;
        let mut items = Vec::new();
        for (index, frame) in frames.enumerate() {
            if index == max {
                findings.push(Finding {
                    log: Some(code),
                    file: Some(file.clone()),
                    position: Some(index as u64),
                    ..Finding::violation(
                        "revoked_file_too_long",
                        format!(
                            "{file} holds more than the {max} revoked entries a node keeps of a log; the rest is not read"
                        ),
                    )
                });
                break;
            }
            items.push(match frame {
                Frame::Bad {
                    offset,
                    name,
                    message,
                } => LogItem::Unreadable {
                    offset,
                    name,
                    message,
                },
                Frame::Bytes { offset, bytes } => match SignedEntry::decode(&bytes) {
                    Ok(entry) => LogItem::Entry {
                        entry,
                        signature_valid: false,
                    },
                    Err(e) => LogItem::Unreadable {
                        offset,
                        name: "undecodable_entry",
                        message: format!("{file} at byte {offset} (frame {index}): {e}"),
                    },
                },
            });
        }
        revoked.push((code, items));
    }
    Ok(revoked)
}

/// Step 4: the manifest's claims against what the files hold.
fn check_manifest(bundle: &Bundle, report: &mut Report) {
    let mut listed = BTreeMap::new();
    for log in &bundle.manifest.logs {
        listed.insert(log.bureau, log);
        let has_file = bundle.logs.iter().any(|(code, _, _)| *code == log.bureau);
        let found = report.log(log.bureau);
        let (entries, root) = found.map_or((0, hukou_protocol::merkle::empty_root()), |l| {
            (l.entries, l.root)
        });
        let file = Some(rules::log_file(log.bureau));
        if !has_file && log.length > 0 {
            report.add_finding(Finding {
                log: Some(log.bureau),
                file,
                ..Finding::violation(
                    "log_file_missing",
                    format!(
                        "{MANIFEST_FILE} lists {} entries of {}, but the bundle has no {}",
                        log.length,
                        log.bureau,
                        rules::log_file(log.bureau)
                    ),
                )
            });
            continue;
        }
        if entries != log.length {
            report.add_finding(Finding {
                log: Some(log.bureau),
                file: file.clone(),
                ..Finding::violation(
                    "manifest_length_mismatch",
                    format!(
                        "{MANIFEST_FILE} lists {} entries of {}, its log file holds {entries}",
                        log.length, log.bureau
                    ),
                )
            });
        }
        if root != log.root {
            report.add_finding(Finding {
                log: Some(log.bureau),
                file,
                ..Finding::violation(
                    "manifest_root_mismatch",
                    format!(
                        "{MANIFEST_FILE} states root {} for {}, its log file's entries have root {}",
                        hex::encode(log.root),
                        log.bureau,
                        hex::encode(root)
                    ),
                )
            });
        }
    }
    for (code, _, _) in &bundle.logs {
        if !listed.contains_key(code) {
            report.add_finding(Finding {
                log: Some(*code),
                file: Some(rules::log_file(*code)),
                ..Finding::violation(
                    "log_not_in_manifest",
                    format!(
                        "{} is not listed in {MANIFEST_FILE}",
                        rules::log_file(*code)
                    ),
                )
            });
        }
    }
    for file in &bundle.stray {
        report.add_finding(Finding {
            file: Some(file.clone()),
            ..Finding::new(
                "unexpected_file",
                Severity::Warning,
                format!("{file} is not named <code>.log; ignored"),
            )
        });
    }
}

// ---- log files ----

/// One frame of a log file.
pub enum Frame {
    /// The wire bytes of one entry, at `offset` (of its length prefix).
    Bytes { offset: u64, bytes: Vec<u8> },
    /// Bytes at `offset` that are not a frame; nothing after them can be framed.
    Bad {
        offset: u64,
        name: &'static str,
        message: String,
    },
}

/// Reads a log file frame by frame: u32 big-endian length, then that many bytes. Refuses a
/// length of 0 or above `ENTRY_BYTES_MAX` before allocating, and stops after the first bad frame.
pub struct FrameReader {
    file: String,
    reader: BufReader<File>,
    offset: u64,
    done: bool,
}

impl FrameReader {
    /// Opens a log file of `logs/`.
    pub fn open(path: &Path) -> std::io::Result<FrameReader> {
        let file = path.file_name().map_or_else(String::new, |n| {
            format!("{LOGS_DIR}/{}", n.to_string_lossy())
        });
        FrameReader::open_labelled(path, file)
    }

    /// Opens a file of frames, naming it `file` (relative to the bundle) in messages.
    pub fn open_labelled(path: &Path, file: String) -> std::io::Result<FrameReader> {
        Ok(FrameReader {
            file,
            reader: BufReader::with_capacity(1 << 20, File::open(path)?),
            offset: 0,
            done: false,
        })
    }

    /// Bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    fn bad(&mut self, offset: u64, name: &'static str, message: String) -> Option<Frame> {
        self.done = true;
        Some(Frame::Bad {
            offset,
            name,
            message: format!("{} at byte {offset}: {message}", self.file),
        })
    }

    /// Reads up to `buf.len()` bytes; fewer only at the end of the file.
    fn fill(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut read = 0;
        while read < buf.len() {
            match self.reader.read(&mut buf[read..]) {
                Ok(0) => break,
                Ok(n) => read += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(read)
    }
}

impl Iterator for FrameReader {
    type Item = Frame;

    fn next(&mut self) -> Option<Frame> {
        if self.done {
            return None;
        }
        let offset = self.offset;
        let mut prefix = [0u8; 4];
        let got = match self.fill(&mut prefix) {
            Ok(got) => got,
            Err(e) => return self.bad(offset, "unreadable_log", format!("read error: {e}")),
        };
        if got == 0 {
            self.done = true;
            return None;
        }
        if got < 4 {
            return self.bad(
                offset,
                "truncated_log",
                format!("the file ends {got} bytes into a 4-byte length prefix"),
            );
        }
        let len = u32::from_be_bytes(prefix) as usize;
        if len == 0 || len > ENTRY_BYTES_MAX {
            return self.bad(
                offset,
                "bad_frame",
                format!("frame length {len} is not between 1 and {ENTRY_BYTES_MAX}; nothing after it can be read"),
            );
        }
        let mut bytes = vec![0u8; len];
        let got = match self.fill(&mut bytes) {
            Ok(got) => got,
            Err(e) => return self.bad(offset, "unreadable_log", format!("read error: {e}")),
        };
        if got < len {
            return self.bad(
                offset,
                "truncated_log",
                format!("the file ends {got} bytes into a {len}-byte entry"),
            );
        }
        self.offset += 4 + len as u64;
        Some(Frame::Bytes { offset, bytes })
    }
}

/// One log's items for `audit::audit`: frames decoded and paired with their verdicts.
struct LogSource<'a> {
    code: BureauCode,
    frames: FrameReader,
    /// `None`: every signature taken as valid (the optimistic replay).
    verdicts: Option<Vec<bool>>,
    index: usize,
    progress: &'a Mutex<Progress>,
}

impl Iterator for LogSource<'_> {
    type Item = LogItem;

    fn next(&mut self) -> Option<LogItem> {
        let before = self.frames.offset();
        let frame = self.frames.next()?;
        let after = self.frames.offset();
        self.progress
            .lock()
            .expect("progress lock")
            .advance(1, after - before);
        let index = self.index;
        self.index += 1;
        Some(match frame {
            Frame::Bad {
                offset,
                name,
                message,
            } => LogItem::Unreadable {
                offset,
                name,
                message,
            },
            Frame::Bytes { offset, bytes } => match SignedEntry::decode(&bytes) {
                Ok(entry) => LogItem::Entry {
                    entry,
                    // The verification pass read the same file; a frame it did not reach (the
                    // file grew in between) counts as unverified and is checked strictly.
                    signature_valid: self
                        .verdicts
                        .as_ref()
                        .is_none_or(|v| v.get(index).copied().unwrap_or(false)),
                },
                Err(e) => LogItem::Unreadable {
                    offset,
                    name: "undecodable_entry",
                    message: format!(
                        "{} at byte {offset} (frame {index} of the log of {}): {e}",
                        rules::log_file(self.code),
                        self.code
                    ),
                },
            },
        })
    }
}

// ---- signature verification across cores ----

/// A chunk of frames for a worker: (log index, first frame index, frames).
type Job = (usize, usize, Vec<Vec<u8>>);

/// Every frame's signature verdict, per log, in file order (`false` for frames that do not
/// decode or are by non-members). Reads each file once, sequentially; one worker per core
/// decodes and batch-verifies chunks of [`VERIFY_CHUNK_FRAMES`].
fn verify_logs(
    membership: &Epochs,
    logs: &[(BureauCode, PathBuf, u64)],
    progress: &Mutex<Progress>,
) -> Result<Vec<Vec<bool>>, Unusable> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut verdicts: Vec<Vec<bool>> = vec![Vec::new(); logs.len()];
    let (job_tx, job_rx) = mpsc::sync_channel::<Job>(workers * JOBS_QUEUED_PER_WORKER);
    let job_rx = Mutex::new(job_rx);
    let (result_tx, result_rx) = mpsc::channel::<(usize, usize, Vec<bool>)>();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let result_tx = result_tx.clone();
            let job_rx = &job_rx;
            scope.spawn(move || {
                loop {
                    // The lock is held only to take one job.
                    let job = job_rx.lock().expect("job queue lock").recv();
                    let Ok((log, first, frames)) = job else {
                        return;
                    };
                    let verdict = verify_frames(membership, &frames);
                    if result_tx.send((log, first, verdict)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(result_tx);
        let read = (|| {
            for (i, (_, path, _)) in logs.iter().enumerate() {
                let mut frames = FrameReader::open(path).map_err(|e| {
                    unusable(
                        "bundle_unreadable",
                        format!("cannot open {}: {e}", path.display()),
                    )
                })?;
                let mut first = 0;
                loop {
                    let mut chunk = Vec::with_capacity(VERIFY_CHUNK_FRAMES);
                    let before = frames.offset();
                    while chunk.len() < VERIFY_CHUNK_FRAMES {
                        match frames.next() {
                            Some(Frame::Bytes { bytes, .. }) => chunk.push(bytes),
                            // A bad frame ends the file: the replay reports it.
                            Some(Frame::Bad { .. }) | None => break,
                        }
                    }
                    progress
                        .lock()
                        .expect("progress lock")
                        .advance(0, frames.offset() - before);
                    if chunk.is_empty() {
                        break;
                    }
                    let n = chunk.len();
                    job_tx
                        .send((i, first, chunk))
                        .expect("workers run until the queue closes");
                    first += n;
                    if n < VERIFY_CHUNK_FRAMES {
                        break;
                    }
                }
                verdicts[i] = vec![false; first];
            }
            Ok(())
        })();
        drop(job_tx);
        for (log, first, verdict) in result_rx {
            verdicts[log][first..first + verdict.len()].copy_from_slice(&verdict);
        }
        read
    })?;
    Ok(verdicts)
}

/// Decodes and verifies one chunk of frames.
fn verify_frames(membership: &Epochs, frames: &[Vec<u8>]) -> Vec<bool> {
    let mut verdicts = vec![false; frames.len()];
    let mut entries = Vec::with_capacity(frames.len());
    let mut indexes = Vec::with_capacity(frames.len());
    for (i, bytes) in frames.iter().enumerate() {
        if let Ok(entry) = SignedEntry::decode(bytes) {
            entries.push(entry);
            indexes.push(i);
        }
    }
    for (i, ok) in indexes
        .into_iter()
        .zip(hukou_protocol::batch::verify_entries(membership, &entries))
    {
        verdicts[i] = ok;
    }
    verdicts
}

// ---- progress and output ----

/// A progress line on stderr, at most once a second: how far each of a few concurrent parts
/// (verification, replay) has got through the same total (bytes of log files, or entries).
pub(crate) struct Progress {
    what: String,
    total: u64,
    parts: Vec<(&'static str, u64)>,
    shown: bool,
    started: Instant,
    last: Instant,
    printed: bool,
}

impl Progress {
    pub(crate) fn new(
        what: impl Into<String>,
        total: u64,
        parts: &[&'static str],
        shown: bool,
    ) -> Progress {
        let now = Instant::now();
        Progress {
            what: what.into(),
            total,
            parts: parts.iter().map(|p| (*p, 0)).collect(),
            shown,
            started: now,
            last: now,
            printed: false,
        }
    }

    pub(crate) fn advance(&mut self, part: usize, amount: u64) {
        self.parts[part].1 += amount;
        if self.shown && self.last.elapsed() >= Duration::from_secs(1) {
            self.last = Instant::now();
            self.print();
        }
    }

    /// Starts a part again from zero (a second replay).
    pub(crate) fn restart(&mut self, part: usize) {
        self.parts[part].1 = 0;
    }

    fn print(&mut self) {
        let parts: Vec<String> = self
            .parts
            .iter()
            .map(|(name, done)| {
                let percent = if self.total == 0 {
                    100.0
                } else {
                    100.0 * (*done).min(self.total) as f64 / self.total as f64
                };
                format!("{name} {percent:5.1}%")
            })
            .collect();
        let line = format!(
            "{}: {} ({:.0} s)",
            self.what,
            parts.join(", "),
            self.started.elapsed().as_secs_f64()
        );
        if std::io::stderr().is_terminal() {
            eprint!("\r{line}   ");
        } else {
            eprintln!("{line}");
        }
        self.printed = true;
    }

    pub(crate) fn finish(&mut self) {
        if self.shown && self.printed {
            for part in &mut self.parts {
                part.1 = self.total;
            }
            self.print();
            if std::io::stderr().is_terminal() {
                eprintln!();
            }
        }
    }
}

fn bundle_json(dir: &Path, bundle: &Bundle) -> Value {
    json!({
        "dir": dir.display().to_string(),
        "network": bundle.manifest.network,
        "genesis_hash": bundle.genesis.hash().to_hex(),
        "exported_at_ms": bundle.manifest.exported_at_ms,
        "exporter": bundle.manifest.exporter,
        "source": bundle.manifest.source,
    })
}

fn print_summary(dir: &Path, bundle: &Bundle, report: &Report, code: i32) {
    let t = &report.totals;
    outln!(
        "bundle {}: network {}, genesis {} (signature verified), exported {} by {}",
        dir.display(),
        report.network,
        bundle.genesis.hash(),
        china_date(bundle.manifest.exported_at_ms),
        bundle.manifest.exporter
    );
    outln!("deadlines judged as of {} (China time)", report.as_of);
    outln!();
    outln!(
        "{:<8} {:>10} {:>10} {:>10}  root",
        "log",
        "entries",
        "applied",
        "certified"
    );
    for log in &report.logs {
        outln!(
            "{:<8} {:>10} {:>10} {:>10}  {}",
            log.bureau.to_string(),
            log.entries,
            log.applied,
            log.certified_size,
            hex::encode(log.root)
        );
    }
    outln!();
    outln!(
        "entries: {} read, {} applied, {} rejected, {} never applicable, {} unreadable frames",
        t.entries_read,
        t.entries_applied,
        t.entries_rejected,
        t.entries_waiting,
        t.frames_unreadable
    );
    let kinds: Vec<String> = report
        .kinds
        .iter()
        .map(|(kind, n)| format!("{n} {kind}"))
        .collect();
    if !kinds.is_empty() {
        outln!("applied: {}", kinds.join(", "));
    }
    outln!(
        "persons: {}; certificates: {} ({} valid); fraud proofs: {} ({} valid)",
        t.persons,
        t.certificates,
        t.certificates_valid,
        t.fraud_proofs,
        t.fraud_proofs_valid
    );
    print_epochs(report);
    outln!();
    for (severity, title) in [
        (Severity::Violation, "violations"),
        (Severity::Warning, "warnings"),
    ] {
        let count = match severity {
            Severity::Violation => t.violations,
            Severity::Warning => t.warnings,
        };
        outln!("{title}: {count}");
        let mut by_name: BTreeMap<&str, Vec<&Finding>> = BTreeMap::new();
        for f in report.findings.iter().filter(|f| f.severity == severity) {
            by_name.entry(&f.name).or_default().push(f);
        }
        for (name, findings) in by_name {
            let total = report.findings_by_name.get(name).copied().unwrap_or(0);
            let invariant = findings[0]
                .invariant
                .as_deref()
                .map_or(String::new(), |i| format!(" [{i}]"));
            outln!("  {name}{invariant}: {total}");
            for f in findings.iter().take(FINDINGS_SHOWN_PER_NAME) {
                outln!("    {}", f.message);
            }
            if total as usize > FINDINGS_SHOWN_PER_NAME {
                outln!(
                    "    ... and {} more (--json lists up to {})",
                    total as usize - FINDINGS_SHOWN_PER_NAME,
                    rules::FINDINGS_PER_NAME_MAX
                );
            }
        }
    }
    outln!();
    print_reconciliation(report);
    outln!();
    outln!(
        "result: {}",
        match code {
            0 => "clean (exit 0)",
            _ if report.clean => "warnings with --strict (exit 1)",
            _ => "VIOLATIONS FOUND (exit 1)",
        }
    );
}

/// Revoked entries (by the epoch whose cut refuses them) shown per log before "…".
const REVOKED_SEQS_SHOWN: usize = 10;

/// The revoked entries one epoch's cuts refused, by (log, cut position, kind).
type CutsOfEpoch<'r> = BTreeMap<(BureauCode, u64, &'r str), Vec<&'r RevokedEntry>>;

/// The configuration epochs, one line each, and the revoked entries, one line per epoch that
/// cut logs: "N entries revoked by configuration epoch C: 340100 from seq S (…)".
fn print_epochs(report: &Report) {
    outln!();
    outln!("configuration epochs: {}", report.epochs.len());
    for e in &report.epochs {
        let changes = if e.epoch == 0 {
            "genesis".to_string()
        } else {
            e.changes.join(", ")
        };
        outln!("  epoch {} {}: {changes}", e.epoch, hex::encode(e.hash));
    }
    outln!(
        "revoked entries: {} (refused by a configuration cut, kept as evidence; not violations)",
        report.totals.revoked
    );
    let mut by_epoch: BTreeMap<u32, CutsOfEpoch> = BTreeMap::new();
    for r in &report.revoked {
        by_epoch
            .entry(r.cut_epoch)
            .or_default()
            .entry((r.log, r.from_seq, r.kind.as_str()))
            .or_default()
            .push(r);
    }
    for (epoch, cuts) in by_epoch {
        let n: usize = cuts.values().map(Vec::len).sum();
        let parts: Vec<String> = cuts
            .iter()
            .map(|((log, from_seq, kind), entries)| {
                let why = if *kind == "retired" {
                    "bureau retired"
                } else {
                    "key revoked"
                };
                let mut seqs: Vec<String> = entries
                    .iter()
                    .take(REVOKED_SEQS_SHOWN)
                    .map(|r| r.seq.to_string())
                    .collect();
                if entries.len() > REVOKED_SEQS_SHOWN {
                    seqs.push("…".to_string());
                }
                format!("{log} from seq {from_seq} ({why}; seq {})", seqs.join(", "))
            })
            .collect();
        outln!(
            "  {n} entries revoked by configuration epoch {epoch}: {}",
            parts.join("; ")
        );
    }
}

fn print_reconciliation(report: &Report) {
    let dates: Vec<Date> = {
        let mut d: Vec<Date> = report
            .reconciliation
            .iter()
            .filter_map(|r| r.date)
            .collect();
        d.dedup();
        d
    };
    let shown = &dates[dates.len().saturating_sub(RECONCILIATION_DATES_SHOWN)..];
    outln!(
        "daily reconciliation ({} of {} dates{}; pending = at the end of the day)",
        shown.len(),
        dates.len(),
        if shown.len() < dates.len() {
            ", the latest; --json has all"
        } else {
            ""
        }
    );
    outln!(
        "{:<10} {:<6} {:>7} {:>8} {:>7} {:>8} {:>8} {:>10} {:>11} {:>11}",
        "date",
        "bureau",
        "permits",
        "received",
        "refused",
        "removals",
        "arrivals",
        "registered",
        "pend.answer",
        "pend.regist"
    );
    for r in report
        .reconciliation
        .iter()
        .filter(|r| r.date.is_some_and(|d| shown.contains(&d)))
    {
        outln!(
            "{:<10} {:<6} {:>7} {:>8} {:>7} {:>8} {:>8} {:>10} {:>11} {:>11}",
            r.date.map_or(String::new(), |d| d.to_string()),
            r.bureau.map_or(String::new(), |b| b.to_string()),
            r.permits_issued,
            r.permits_received,
            r.refusals,
            r.removals,
            r.removals_received,
            r.registrations_in,
            r.pending_answers,
            r.pending_registrations
        );
    }
}

/// `--stats`: timings, throughput and the peak resident memory (VmHWM) of this process.
fn print_stats(report: &Report, timings: &Timings, elapsed: Duration) {
    let seconds = elapsed.as_secs_f64();
    let entries = report.totals.entries_read;
    let peak = peak_memory_kib();
    eprintln!(
        "stats: {entries} entries in {seconds:.2} s = {:.0} entries/s end to end (load {:.2} s; verify {:.2} s on {} threads, beside it replay {:.2} s{}); {} frames; peak memory {}",
        entries as f64 / seconds.max(1e-9),
        timings.load.as_secs_f64(),
        timings.verify.as_secs_f64(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        timings.replay.as_secs_f64(),
        if timings.replayed_again {
            ", run again with the verdicts"
        } else {
            ""
        },
        timings.frames,
        peak.map_or("unknown".to_string(), |kib| format!(
            "{:.0} MiB (VmHWM {kib} kB)",
            kib as f64 / 1024.0
        )),
    );
}

/// Peak resident set size of this process in KiB, from `/proc/self/status` (Linux).
fn peak_memory_kib() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
