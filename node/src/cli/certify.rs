//! Registration certificates (户籍证明): `hukou certify` asks a node for one, `hukou
//! verify-certificate` checks one offline with only the genesis. The file format and what it
//! proves are in `hukou_protocol::attestation` and docs/FORMAT.md ("Registration certificates").
//!
//! - `hukou certify --person ID --out FILE` (with the clerk's `--node`, `--token`/`--token-file`,
//!   `--json`, as every client command) calls `POST /v1/person/certificate`, checks that the
//!   answer decodes as a registration certificate, and writes it. A refusal (not registered at
//!   this bureau, not final yet, ...) exits 1 with the node's `{"error", "message"}`.
//! - `hukou verify-certificate FILE --genesis G [--config-log FILE] [--expect-genesis HASH]
//!   [--json]`: exit 0 valid (and what it proves, with the configuration epochs the entry and
//!   the certificate name), 1 invalid (the fault, by its stable name), 2 unusable input (the
//!   file or the genesis cannot be read, the file is not a registration certificate of a version
//!   this build reads, the genesis does not verify or is not the expected one). `--config-log`
//!   (`hukou config fetch`'s file) brings the keys of epochs after the genesis.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use hukou_keys::{Genesis, VerifiedGenesis};
use hukou_protocol::attestation::{Attestation, Verified};
use hukou_protocol::encoding::DecodeError;
use serde_json::{Value, json};

use super::client::{Client, NodeArgs, china_time};
use super::{EXIT_REFUSED, EXIT_USAGE, Exit, print_json};

/// What a valid registration certificate proves, and what it does not, in one sentence each.
pub const PROVES: &str = "the person (by tag) was registered at the bureau by the entry, the \
    entry is included in the bureau's log, and it is final as of the certificate (a checkpoint \
    of that log cosigned by a quorum) made at the time shown";
/// What it does not prove.
pub const DOES_NOT_PROVE: &str = "that the person is still registered there: a later \
    deregistration or cancellation in the bureau's log is not excluded (the issuing node \
    checked it when it issued the file)";

/// Arguments of `hukou certify`.
#[derive(Debug, Args)]
pub struct CertifyArgs {
    /// The person's citizen ID number (sent in the request body, never in the URL).
    #[arg(long, value_name = "ID")]
    pub person: String,
    /// Where to write the registration certificate (overwritten if it exists).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    #[command(flatten)]
    pub node: NodeArgs,
}

impl CertifyArgs {
    /// Asks the node for the certificate and writes it.
    pub fn run(self) -> anyhow::Result<()> {
        let client = Client::new(&self.node)?;
        let person = client.check_id(&self.person)?;
        let mut answer = client.post("/v1/person/certificate", &json!({"person": person}))?;
        let bytes = answer["file"]
            .as_str()
            .and_then(|h| hex::decode(h).ok())
            .ok_or_else(|| {
                client.refused(&json!({"error": "bad_answer",
                    "message": "the node's answer has no \"file\" (hex bytes)"}))
            })?;
        let attestation = match Attestation::decode(&bytes) {
            Ok(attestation) => attestation,
            Err(e) => {
                return Err(client.refused(&json!({"error": "bad_answer",
                    "message": format!("the node served something that is not a registration certificate: {e}")})));
            }
        };
        // The epochs as the file names them (the file, not the node's answer, is what is kept).
        let entry_epoch = attestation.entry.entry().epoch;
        let certificate_epoch = attestation.certificate.checkpoint.epoch;
        std::fs::write(&self.out, &bytes)
            .with_context(|| format!("cannot write {}", self.out.display()))?;
        let out = self.out.display().to_string();
        if self.node.json {
            let object = answer.as_object_mut().expect("a 2xx answer is an object");
            object.remove("file");
            object.insert("out".into(), json!(out));
            object.insert("bytes".into(), json!(bytes.len()));
            object.insert("entry_epoch".into(), json!(entry_epoch));
            object.insert("certificate_epoch".into(), json!(certificate_epoch));
            print_json(&answer);
        } else {
            eprintln!(
                "wrote the registration certificate of person {} at {}: {} {} (signed under \
                 configuration epoch {entry_epoch}), final as of the certificate of {} entries \
                 made {} (China time, epoch {certificate_epoch}); check it with \
                 `hukou verify-certificate {out} --genesis GENESIS{}`",
                text(&answer["person_tag"]),
                text(&answer["bureau"]),
                text(&answer["kind"]),
                text(&answer["entry"]),
                text(&answer["size"]),
                answer["time_ms"]
                    .as_u64()
                    .map_or_else(|| "-".to_string(), china_time),
                if entry_epoch.max(certificate_epoch) > 0 {
                    " --config-log CONFIG_LOG"
                } else {
                    ""
                },
            );
            outln!("{out}");
        }
        Ok(())
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Arguments of `hukou verify-certificate`.
#[derive(Debug, Args)]
pub struct VerifyCertificateArgs {
    /// The registration certificate (written by `hukou certify`).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The network's genesis file: the only thing trusted.
    #[arg(long, value_name = "FILE")]
    pub genesis: PathBuf,
    /// The genesis hash the verifier expects (64 hex digits), obtained out of band.
    #[arg(long, value_name = "HASH")]
    pub expect_genesis: Option<String>,
    /// The network's configuration log (`hukou config fetch`), when the certificate names an
    /// epoch after the genesis: its keys verify the certificate.
    #[arg(long, value_name = "FILE")]
    pub config_log: Option<PathBuf>,
    /// Print the verdict as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Why the input cannot be judged (exit 2).
struct Unusable {
    name: &'static str,
    message: String,
}

fn unusable(name: &'static str, message: impl Into<String>) -> Unusable {
    Unusable {
        name,
        message: message.into(),
    }
}

/// The verdict on a usable input.
enum Verdict {
    Valid(Box<Verified>),
    Invalid { name: &'static str, message: String },
}

impl VerifyCertificateArgs {
    /// Verifies the file and exits 0, 1 or 2.
    pub fn run(self) -> anyhow::Result<()> {
        let code = match self.judge() {
            Ok((genesis, Verdict::Valid(v))) => {
                if self.json {
                    print_json(&valid_json(&genesis, &v));
                } else {
                    print_valid(&genesis, &v);
                }
                0
            }
            Ok((_, Verdict::Invalid { name, message })) => {
                if self.json {
                    print_json(&json!({"valid": false, "error": name, "message": message,
                        "exit_code": EXIT_REFUSED}));
                } else {
                    eprintln!(
                        "error: {} is not a valid registration certificate: {name}: {message}",
                        self.file.display()
                    );
                }
                EXIT_REFUSED
            }
            Err(u) => {
                if self.json {
                    print_json(&json!({"error": u.name, "message": u.message,
                        "exit_code": EXIT_USAGE}));
                } else {
                    eprintln!("error: {} ({})", u.message, u.name);
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

    fn judge(&self) -> Result<(VerifiedGenesis, Verdict), Unusable> {
        let genesis = Genesis::load(&self.genesis)
            .and_then(|g| g.verify())
            .map_err(|e| unusable(e.name(), format!("{}: {e}", self.genesis.display())))?;
        if let Some(expected) = &self.expect_genesis {
            let expected = expected.trim().to_ascii_lowercase();
            if expected != genesis.hash().to_hex() {
                return Err(unusable(
                    "genesis_not_expected",
                    format!(
                        "{} hashes to {}, not the expected {expected}",
                        self.genesis.display(),
                        genesis.hash()
                    ),
                ));
            }
        }
        let bytes = std::fs::read(&self.file).map_err(|e| {
            unusable(
                "certificate_unreadable",
                format!("cannot read {}: {e}", self.file.display()),
            )
        })?;
        let attestation = match Attestation::decode(&bytes) {
            Ok(a) => a,
            Err(
                e @ (DecodeError::Empty
                | DecodeError::WrongMagic { .. }
                | DecodeError::UnknownVersion { .. }
                | DecodeError::Oversized { .. }),
            ) => {
                return Err(unusable(
                    "not_a_registration_certificate",
                    format!(
                        "{} is not a registration certificate this build reads: {e}",
                        self.file.display()
                    ),
                ));
            }
            Err(e) => {
                return Ok((
                    genesis,
                    Verdict::Invalid {
                        name: "attestation_undecodable",
                        message: e.to_string(),
                    },
                ));
            }
        };
        let mut epochs =
            crate::run::genesis_epochs(&genesis, hukou_protocol::calendar::Calendar::prc().clone());
        if let Some(path) = &self.config_log {
            crate::cli::config::extend_from_log(&mut epochs, path)
                .map_err(|(name, message)| unusable(name, message))?;
        }
        let verdict = match attestation.verify(&epochs) {
            Ok(v) => Verdict::Valid(Box::new(v)),
            Err(fault) => Verdict::Invalid {
                name: fault.name(),
                message: fault.to_string(),
            },
        };
        Ok((genesis, verdict))
    }
}

fn bureau_name(genesis: &VerifiedGenesis, code: hukou_protocol::BureauCode) -> String {
    genesis
        .membership()
        .member(code)
        .map(|m| m.name.clone())
        .unwrap_or_default()
}

fn valid_json(genesis: &VerifiedGenesis, v: &Verified) -> Value {
    json!({
        "valid": true,
        "person_tag": v.person.to_hex(),
        "bureau": v.bureau,
        "bureau_name": bureau_name(genesis, v.bureau),
        "entry": v.entry.to_string(),
        "kind": v.kind,
        "entry_time_ms": v.entry_time_ms,
        "household": v.placement.household.0,
        "relation": v.placement.relation,
        "certificate": {
            "log": v.bureau,
            "size": v.size,
            "root": hex::encode(v.root),
            "time_ms": v.time_ms,
            "witnesses": v.witnesses,
            "quorum": v.quorum,
        },
        "entry_epoch": v.entry_epoch,
        "certificate_epoch": v.certificate_epoch,
        "network": genesis.genesis().network(),
        "genesis_hash": genesis.hash().to_hex(),
        "proves": PROVES,
        "does_not_prove": DOES_NOT_PROVE,
        "exit_code": 0,
    })
}

fn print_valid(genesis: &VerifiedGenesis, v: &Verified) {
    let witnesses: Vec<String> = v.witnesses.iter().map(|w| w.to_string()).collect();
    outln!("valid registration certificate (户籍证明)");
    outln!("person tag     {}", v.person);
    outln!(
        "registered at  {} {}",
        v.bureau,
        bureau_name(genesis, v.bureau)
    );
    outln!(
        "by entry       {} ({}, {} China time, household {})",
        v.entry,
        v.kind,
        china_time(v.entry_time_ms),
        v.placement.household
    );
    outln!(
        "               signed under configuration epoch {} (entry_epoch)",
        v.entry_epoch
    );
    outln!(
        "final as of    certificate of log {} at {} entries, made {} China time",
        v.bureau,
        v.size,
        china_time(v.time_ms)
    );
    outln!(
        "               under configuration epoch {} (certificate_epoch)",
        v.certificate_epoch
    );
    outln!("               root {}", hex::encode(v.root));
    outln!(
        "               cosigned by {} (quorum {} of epoch {})",
        witnesses.join(", "),
        v.quorum,
        v.certificate_epoch
    );
    outln!(
        "network        {}, genesis {}",
        genesis.genesis().network(),
        genesis.hash()
    );
    outln!("proves         {PROVES}");
    outln!("not proven     {DOES_NOT_PROVE}");
}
