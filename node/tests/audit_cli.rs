//! `hukou audit` and `hukou export` as auditors and scripts use them: the built binary, judged by
//! exit code and `--json` output. A clean bundle from the generator audits clean; each way of
//! tampering with it is caught by its own named finding (exit 1) or makes the bundle unusable
//! (exit 2); random damage never panics; and a real node's export, over HTTP and from its
//! stopped store, audits clean (both members of a two-member network run, `common::TwoBureaus`,
//! so that enrolments' claims become final).

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{HERE, OTHER, TwoBureaus};

use ed25519_dalek::SigningKey;
use hukou_keys::{Genesis, GenesisMember};
use hukou_protocol::audit::Manifest;
use hukou_protocol::config::{Change, ConfigHash, ConfigUpdate, SignedUpdate};
use hukou_protocol::entry::{Body, Entry, Placement};
use hukou_protocol::{
    BureauCode, EntryHash, FraudProof, HouseholdId, NetworkId, PersonTag, Relation, Seq,
    SignedEntry,
};
use serde_json::{Value, json};

/// The bundle generator, compiled in: `testnet/src/bin/hukou-gen-bundle.rs`.
#[allow(dead_code)]
#[path = "../../testnet/src/bin/hukou-gen-bundle.rs"]
mod generator;

const SEED: u64 = 7;
const ENTRIES: u64 = 3_000;

/// A fresh clean bundle of [`ENTRIES`] entries over four bureaus in a temporary directory.
fn clean_bundle() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bundle");
    generator::generate(&generator::Args {
        out: out.clone(),
        entries: ENTRIES,
        bureaus: 4,
        seed: SEED,
        step_ms: generator::STEP_MS_DEFAULT,
        start_ms: generator::START_MS_DEFAULT,
        no_certificates: false,
        quiet: true,
    })
    .unwrap();
    (dir, out)
}

fn hukou(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hukou"))
        .args(args)
        .env_remove("HUKOU_NODE")
        .stdin(Stdio::null())
        .output()
        .expect("the hukou binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `hukou audit DIR --json --quiet EXTRA...`: the exit code and the JSON on stdout. Asserts it
/// did not panic and that stdout is JSON whatever the outcome.
#[track_caller]
fn audit(dir: &Path, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["audit", dir.to_str().unwrap(), "--json", "--quiet"];
    args.extend_from_slice(extra);
    let out = hukou(&args);
    let code = out.status.code().expect("exited, not killed");
    assert!(
        !text(&out.stderr).contains("panicked"),
        "audit panicked: {}",
        text(&out.stderr)
    );
    let value: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            text(&out.stdout),
            text(&out.stderr)
        )
    });
    assert_eq!(value["exit_code"], code, "{value}");
    (code, value)
}

/// Asserts exit 1 and a finding of each name in `names`; returns the report.
#[track_caller]
fn assert_violations(dir: &Path, names: &[&str]) -> Value {
    let (code, v) = audit(dir, &[]);
    assert_eq!(code, 1, "{:#}", v["findings_by_name"]);
    assert_eq!(v["clean"], false);
    for name in names {
        assert!(
            v["findings_by_name"].get(*name).is_some(),
            "no {name} finding: {:#}",
            v["findings_by_name"]
        );
        let first = v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == *name)
            .unwrap();
        assert_eq!(first["severity"], "violation", "{first}");
        assert!(first["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    v
}

/// Asserts exit 2 and `{"error": name}`.
#[track_caller]
fn assert_unusable(dir: &Path, name: &str, extra: &[&str]) {
    let (code, v) = audit(dir, extra);
    assert_eq!(code, 2, "{v}");
    assert_eq!(v["error"], name, "{v}");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
}

fn log_path(bundle: &Path, code: &str) -> PathBuf {
    bundle.join("logs").join(format!("{code}.log"))
}

/// (offset, length) of every frame of a log file.
fn frames(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        out.push((at, 4 + len));
        at += 4 + len;
    }
    out
}

/// Entry `index` of a log file, decoded.
fn entry_at(path: &Path, index: usize) -> SignedEntry {
    let bytes = fs::read(path).unwrap();
    let (at, len) = frames(&bytes)[index];
    SignedEntry::decode(&bytes[at + 4..at + len]).unwrap()
}

fn framed(entry: &SignedEntry) -> Vec<u8> {
    let wire = entry.encode();
    let mut out = (wire.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&wire);
    out
}

fn flip(path: &Path, offset: usize) {
    let mut bytes = fs::read(path).unwrap();
    bytes[offset] ^= 0x01;
    fs::write(path, bytes).unwrap();
}

#[test]
fn a_generated_bundle_audits_clean() {
    let (_dir, bundle) = clean_bundle();
    let (code, v) = audit(&bundle, &[]);
    assert_eq!(code, 0, "{:#}", v["findings"]);
    assert_eq!(v["clean"], true);
    assert_eq!(v["totals"]["entries_read"], ENTRIES);
    assert_eq!(v["totals"]["entries_applied"], ENTRIES);
    assert_eq!(v["totals"]["certificates_valid"], 4);
    assert_eq!(v["totals"]["violations"], 0);
    assert_eq!(v["logs"].as_array().unwrap().len(), 4);
    assert!(!v["reconciliation"].as_array().unwrap().is_empty());
    assert_eq!(v["bundle"]["network"], generator::network_name(SEED));

    // The human summary, the stats line, and the genesis pinned by the auditor.
    let manifest: Manifest =
        serde_json::from_slice(&fs::read(bundle.join("manifest.json")).unwrap()).unwrap();
    let pin = hex::encode(manifest.genesis_hash);
    let out = hukou(&[
        "audit",
        bundle.to_str().unwrap(),
        "--stats",
        "--expect-genesis",
        &pin,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("result: clean (exit 0)"), "{stdout}");
    assert!(stdout.contains("daily reconciliation"), "{stdout}");
    assert!(
        text(&out.stderr).contains("entries/s"),
        "{}",
        text(&out.stderr)
    );

    // Judged a year later, every open permit and removal is overdue: warnings, still exit 0
    // unless --strict.
    // 2027 is not in the built-in calendar: each is overdue by an uncounted number of working
    // days, and one calendar_year_missing warning names the year.
    let (code, late) = audit(&bundle, &["--as-of", "2027-01-15"]);
    assert_eq!(code, 0);
    assert_eq!(late["clean"], true);
    let deadline_findings: Vec<&Value> = late["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["name"] == "permit_unanswered" || f["name"] == "missing_registration")
        .collect();
    assert!(!deadline_findings.is_empty(), "{:#}", late["findings"]);
    for f in &deadline_findings {
        assert_eq!(f["working_days_overdue"], Value::Null, "{f}");
        assert_eq!(f["calendar_year_missing"], 2027, "{f}");
    }
    assert_eq!(late["findings_by_name"]["calendar_year_missing"], 1);
    let (code, _) = audit(&bundle, &["--as-of", "2027-01-15", "--strict"]);
    let warnings = late["totals"]["warnings"].as_u64().unwrap();
    assert_eq!(code, if warnings > 0 { 1 } else { 0 });
}

#[test]
fn a_flipped_byte_in_an_entry_body_is_a_bad_signature() {
    let (_dir, bundle) = clean_bundle();
    let path = log_path(&bundle, "310104");
    let (at, _) = frames(&fs::read(&path).unwrap())[10];
    // Frame prefix, magic, network, epoch, author, seq, prev, time, body variant: then the
    // body's first field (a person tag or the author of a reference), which any value decodes.
    let victim = entry_at(&path, 10);
    flip(&path, at + 4 + 4 + 32 + 4 + 4 + 8 + 32 + 8 + 4 + 1);
    let v = assert_violations(&bundle, &["bad_signature", "manifest_root_mismatch"]);
    let bad = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "bad_signature")
        .unwrap();
    let named = bad["entries"][0].as_str().unwrap();
    assert!(named.starts_with("310104:10:"), "{bad}");
    assert_ne!(
        named,
        victim.reference().to_string(),
        "the altered entry hashes anew"
    );
}

#[test]
fn a_flipped_byte_in_a_signature_is_a_bad_signature() {
    let (_dir, bundle) = clean_bundle();
    let path = log_path(&bundle, "330502");
    let (at, len) = frames(&fs::read(&path).unwrap())[20];
    flip(&path, at + len - 5);
    let v = assert_violations(&bundle, &["bad_signature", "missing_previous"]);
    let bad = &v["findings"].as_array().unwrap()[0];
    assert_eq!(bad["name"], "bad_signature");
    assert_eq!(
        bad["entries"][0],
        entry_at(&path, 20).reference().to_string()
    );
}

#[test]
fn a_flipped_byte_in_the_manifest_root_is_named() {
    let (_dir, bundle) = clean_bundle();
    let path = bundle.join("manifest.json");
    let mut manifest: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    let root = manifest["logs"][1]["root"].as_str().unwrap().to_string();
    let flipped = format!(
        "{}{}",
        if root.starts_with('0') { '1' } else { '0' },
        &root[1..]
    );
    manifest["logs"][1]["root"] = json!(flipped);
    fs::write(&path, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
    let v = assert_violations(&bundle, &["manifest_root_mismatch"]);
    assert_eq!(v["totals"]["violations"], 1, "{:#}", v["findings"]);
    assert_eq!(v["totals"]["entries_applied"], ENTRIES);
}

#[test]
fn a_log_truncated_mid_entry_is_named_with_its_offset() {
    let (_dir, bundle) = clean_bundle();
    let path = log_path(&bundle, "340100");
    let bytes = fs::read(&path).unwrap();
    let all = frames(&bytes);
    let (at, len) = all[all.len() - 3];
    fs::write(&path, &bytes[..at + len / 2]).unwrap();
    let v = assert_violations(&bundle, &["truncated_log", "manifest_length_mismatch"]);
    let finding = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "truncated_log")
        .unwrap();
    assert_eq!(finding["offset"], at);
    assert_eq!(finding["file"], "logs/340100.log");
    assert_eq!(finding["position"], all.len() - 3);
}

#[test]
fn a_dropped_a_duplicated_and_swapped_entries_are_named() {
    for (damage, names) in [
        ("drop", &["entry_out_of_place", "missing_previous"][..]),
        ("duplicate", &["duplicate_entry", "entry_out_of_place"][..]),
        (
            "swap",
            &["entry_out_of_place", "manifest_root_mismatch"][..],
        ),
    ] {
        let (_dir, bundle) = clean_bundle();
        let path = log_path(&bundle, "320506");
        let bytes = fs::read(&path).unwrap();
        let all = frames(&bytes);
        let frame = |i: usize| &bytes[all[i].0..all[i].0 + all[i].1];
        let mut out = bytes[..all[30].0].to_vec();
        match damage {
            "drop" => {}
            "duplicate" => out.extend_from_slice(&[frame(30), frame(30)].concat()),
            _ => out.extend_from_slice(&[frame(31), frame(30)].concat()),
        }
        let rest = if damage == "swap" { 32 } else { 31 };
        out.extend_from_slice(&bytes[all[rest].0..]);
        fs::write(&path, out).unwrap();
        let v = assert_violations(&bundle, names);
        if damage == "swap" {
            // The replay puts the pair back in causal order: nothing else breaks.
            assert_eq!(v["totals"]["entries_applied"], ENTRIES, "{damage}");
        }
    }
}

#[test]
fn an_entry_by_a_key_outside_the_genesis_is_named() {
    let (_dir, bundle) = clean_bundle();
    let manifest: Manifest =
        serde_json::from_slice(&fs::read(bundle.join("manifest.json")).unwrap()).unwrap();
    let stranger = SigningKey::from_bytes(&[0xee; 32]);
    let placement = Placement {
        household: HouseholdId(1),
        relation: Relation::Head,
    };
    // A log of a bureau the genesis does not name.
    let forged = Entry {
        network: manifest.network_id,
        epoch: 0,
        author: BureauCode::new(110101).unwrap(),
        seq: Seq(0),
        prev: EntryHash::ZERO,
        time_ms: manifest.exported_at_ms - 1,
        body: Body::Enrol {
            person: PersonTag([0x42; 32]),
            placement,
            claim: no_claim(),
        },
    }
    .sign(&stranger);
    fs::write(log_path(&bundle, "110101"), framed(&forged)).unwrap();
    // And the next entry of a member's log, signed by the stranger.
    let path = log_path(&bundle, "310104");
    let count = frames(&fs::read(&path).unwrap()).len();
    let last = entry_at(&path, count - 1);
    let impostor = Entry {
        network: manifest.network_id,
        epoch: 0,
        author: last.entry().author,
        seq: Seq(count as u64),
        prev: last.hash(),
        time_ms: last.entry().time_ms + 1,
        body: Body::Enrol {
            person: PersonTag([0x43; 32]),
            placement: Placement {
                household: HouseholdId(1_000_000),
                relation: Relation::Head,
            },
            claim: no_claim(),
        },
    }
    .sign(&stranger);
    let mut bytes = fs::read(&path).unwrap();
    bytes.extend_from_slice(&framed(&impostor));
    fs::write(&path, bytes).unwrap();

    let v = assert_violations(
        &bundle,
        &["unknown_author", "bad_signature", "log_not_in_manifest"],
    );
    let findings = v["findings"].as_array().unwrap();
    let unknown = findings
        .iter()
        .find(|f| f["name"] == "unknown_author")
        .unwrap();
    assert_eq!(unknown["entries"][0], forged.reference().to_string());
    let bad = findings
        .iter()
        .find(|f| f["name"] == "bad_signature")
        .unwrap();
    assert_eq!(bad["entries"][0], impostor.reference().to_string());
}

#[test]
fn a_replaced_genesis_makes_the_bundle_unusable() {
    let (_dir, bundle) = clean_bundle();
    let original = fs::read_to_string(bundle.join("genesis.toml")).unwrap();
    let genuine = generator::genesis(SEED, 4).unwrap();
    let pin = genuine.hash().to_hex();

    // The same members, re-signed by another administrator.
    let other_admin = SigningKey::from_bytes(&[0x0a; 32]);
    let mut forged = Genesis::new(genuine.network(), other_admin.verifying_key()).unwrap();
    for m in genuine.members() {
        forged.add_member(m.clone()).unwrap();
    }
    forged.sign(&other_admin).unwrap();
    fs::write(bundle.join("genesis.toml"), forged.to_toml_string()).unwrap();
    assert_unusable(&bundle, "genesis_mismatch", &[]);

    // A forger who also rewrites the manifest's genesis hash is caught by the auditor's pin.
    let manifest_path = bundle.join("manifest.json");
    let manifest_text = fs::read_to_string(&manifest_path).unwrap();
    let mut manifest: Manifest = serde_json::from_str(&manifest_text).unwrap();
    manifest.genesis_hash = forged.hash().0;
    fs::write(&manifest_path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    assert_unusable(&bundle, "genesis_not_expected", &["--expect-genesis", &pin]);
    // Without a pin it is the forger's genesis, with the genuine keys: the entries still verify.
    assert_eq!(audit(&bundle, &[]).0, 0);

    // A member's key replaced without signing again.
    fs::write(&manifest_path, &manifest_text).unwrap();
    let mut tampered = original.clone();
    let key = hex::encode(genuine.members()[0].public_key.to_bytes());
    let other = hex::encode(
        SigningKey::from_bytes(&[0x0b; 32])
            .verifying_key()
            .to_bytes(),
    );
    tampered = tampered.replace(&key, &other);
    assert_ne!(tampered, original);
    fs::write(bundle.join("genesis.toml"), tampered).unwrap();
    assert_unusable(&bundle, "genesis_bad_signature", &[]);

    // A genesis with a member added by the forger, signed by the forger.
    let mut extended = Genesis::new(genuine.network(), other_admin.verifying_key()).unwrap();
    for m in genuine.members() {
        extended.add_member(m.clone()).unwrap();
    }
    extended
        .add_member(GenesisMember {
            code: BureauCode::new(110101).unwrap(),
            name: "伪造分局".into(),
            public_key: SigningKey::from_bytes(&[0xee; 32]).verifying_key(),
            addresses: vec![],
        })
        .unwrap();
    extended.sign(&other_admin).unwrap();
    fs::write(bundle.join("genesis.toml"), extended.to_toml_string()).unwrap();
    assert_unusable(&bundle, "genesis_mismatch", &[]);
}

#[test]
fn fraud_proofs_are_checked_and_a_flipped_byte_is_named() {
    let (_dir, bundle) = clean_bundle();
    let path = log_path(&bundle, "310104");
    let original = entry_at(&path, 5);
    // Bureau 0 signs a second entry at seq 5: an equivocation.
    let mut fork = original.entry().clone();
    fork.body = Body::Enrol {
        person: PersonTag([0x99; 32]),
        placement: Placement {
            household: HouseholdId(999_999),
            relation: Relation::Head,
        },
        claim: no_claim(),
    };
    let fork = fork.sign(&generator::bureau_key(SEED, 0));
    let proof = FraudProof::new(original.clone(), fork);
    let proof_path = bundle.join("fraud-proofs").join("310104-5.proof");
    fs::write(&proof_path, proof.encode()).unwrap();
    let v = assert_violations(&bundle, &["equivocation"]);
    assert_eq!(v["totals"]["fraud_proofs_valid"], 1);

    let length = proof.encode().len();
    for offset in [0, 200, length - 1] {
        fs::write(&proof_path, proof.encode()).unwrap();
        flip(&proof_path, offset);
        let v = assert_violations(&bundle, &["invalid_fraud_proof"]);
        assert!(
            v["findings_by_name"].get("equivocation").is_none(),
            "{offset}: {v}"
        );
    }
}

/// A clean bundle whose `config.log` revokes bureau 2's key from the position after its last
/// entry, where a thief signed an entry with the old key, kept in `revoked/`. Returns the
/// directory guard, the bundle, bureau 2's code, the thief's entry and the cut's position.
fn revoked_bundle() -> (tempfile::TempDir, PathBuf, BureauCode, SignedEntry, u64) {
    let (dir, bundle) = clean_bundle();
    // The generator's genesis is of the legacy form (one administrator, no update possible):
    // the same members under two administrators, both needed, re-signed; the manifest follows.
    let second_admin = SigningKey::from_bytes(&[0x5b; 32]);
    let mut genesis = Genesis::load(&bundle.join("genesis.toml")).unwrap();
    genesis
        .set_administrators(
            vec![
                generator::admin_key(SEED).verifying_key(),
                second_admin.verifying_key(),
            ],
            2,
        )
        .unwrap();
    genesis.sign(&generator::admin_key(SEED)).unwrap();
    genesis.save(&bundle.join("genesis.toml")).unwrap();
    let genesis = genesis.verify().unwrap();
    let manifest_path = bundle.join("manifest.json");
    let mut manifest: Manifest =
        serde_json::from_slice(&fs::read(&manifest_path).unwrap()).unwrap();
    manifest.genesis_hash = genesis.hash().0;
    fs::write(
        &manifest_path,
        serde_json::to_vec_pretty(&manifest).unwrap(),
    )
    .unwrap();
    let (code, _) = generator::bureaus(4)[2];
    let path = log_path(&bundle, &code.to_string());
    let cut_at = frames(&fs::read(&path).unwrap()).len() as u64;
    let last = entry_at(&path, cut_at as usize - 1);
    let mut stolen = last.entry().clone();
    stolen.seq = Seq(cut_at);
    stolen.prev = last.hash();
    stolen.time_ms += 1_000;
    let thief = stolen.sign(&generator::bureau_key(SEED, 2));
    let mut update = SignedUpdate::unsigned(ConfigUpdate {
        network: genesis.membership().network(),
        epoch: 1,
        prev: ConfigHash(genesis.hash().0),
        time_ms: last.entry().time_ms,
        changes: vec![Change::RevokeKey {
            code,
            key: SigningKey::from_bytes(&[0x5c; 32])
                .verifying_key()
                .to_bytes(),
            from_seq: Seq(cut_at),
        }],
    });
    update.sign(&generator::admin_key(SEED));
    update.sign(&second_admin);
    fs::write(
        bundle.join("config.log"),
        hukou_node::cli::config::config_log_text(genesis.genesis().network(), &[update]),
    )
    .unwrap();
    fs::create_dir_all(bundle.join("revoked")).unwrap();
    fs::write(revoked_path(&bundle, code), framed(&thief)).unwrap();
    (dir, bundle, code, thief, cut_at)
}

fn revoked_path(bundle: &Path, code: BureauCode) -> PathBuf {
    bundle.join("revoked").join(format!("{code}.log"))
}

#[test]
fn revoked_entries_in_a_bundle_are_listed_with_the_epoch_chain() {
    let (_dir, bundle, code, thief, cut_at) = revoked_bundle();
    let (exit, v) = audit(&bundle, &[]);
    assert_eq!(exit, 0, "{v:#}");
    assert_eq!(v["totals"]["violations"], 0);
    assert_eq!(v["totals"]["revoked"], 1);
    assert_eq!(
        v["revoked"],
        json!([{"log": code.to_string(), "seq": cut_at, "epoch": 0, "cut_epoch": 1,
            "kind": "revoked", "from_seq": cut_at, "ref": thief.reference().to_string()}])
    );
    let config = hukou_node::cli::config::read_config_log(&bundle.join("config.log")).unwrap();
    let genesis_hash = v["bundle"]["genesis_hash"].as_str().unwrap().to_string();
    assert_eq!(
        v["epochs"],
        json!([
            {"epoch": 0, "hash": genesis_hash, "changes": []},
            {"epoch": 1, "hash": config[0].hash().to_hex(), "changes": ["revoke_key"]},
        ])
    );

    // The text report: one line per epoch, one per epoch whose cut refused listed entries.
    let out = hukou(&["audit", bundle.to_str().unwrap(), "--quiet"]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "  epoch 1 {}: revoke_key\n",
            config[0].hash().to_hex()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "  1 entries revoked by configuration epoch 1: {code} from seq {cut_at} (key revoked; seq {cut_at})\n"
        )),
        "{stdout}"
    );

    // An entry of the log itself, valid under epoch 0 below the cut: no cut refuses it.
    let path = revoked_path(&bundle, code);
    let below = entry_at(&log_path(&bundle, &code.to_string()), cut_at as usize - 1);
    let mut bytes = framed(&below);
    bytes.extend_from_slice(&framed(&thief));
    fs::write(&path, &bytes).unwrap();
    let v = assert_violations(&bundle, &["revoked_entry_not_cut"]);
    let finding = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "revoked_entry_not_cut")
        .unwrap();
    assert_eq!(finding["entries"], json!([below.reference().to_string()]));
    assert_eq!(finding["file"], format!("revoked/{code}.log"));
    assert_eq!(finding["position"], 0);
    assert_eq!(v["totals"]["revoked"], 1);

    // A byte of the thief's signature (of its R) flipped: it proves nothing.
    let sig_at = framed(&thief).len() - 64 + 5;
    fs::write(&path, framed(&thief)).unwrap();
    flip(&path, sig_at);
    let v = assert_violations(&bundle, &["revoked_entry_bad_signature"]);
    assert_eq!(v["totals"]["revoked"], 0);
    assert_eq!(v["revoked"], json!([]));

    // Cut short: named with the file and offset, as in a log file.
    fs::write(&path, &framed(&thief)[..20]).unwrap();
    let v = assert_violations(&bundle, &["truncated_log"]);
    let finding = &v["findings"].as_array().unwrap()[0];
    assert_eq!(
        (finding["file"].as_str(), finding["offset"].as_u64()),
        (Some(format!("revoked/{code}.log").as_str()), Some(0)),
        "{finding}"
    );

    // Without the configuration log, the thief's entry is a valid entry no cut refuses.
    fs::write(&path, framed(&thief)).unwrap();
    fs::remove_file(bundle.join("config.log")).unwrap();
    let v = assert_violations(&bundle, &["revoked_entry_not_cut"]);
    assert_eq!(v["epochs"].as_array().unwrap().len(), 1);
}

#[test]
fn a_flipped_byte_in_a_certificate_is_named() {
    let (_dir, bundle) = clean_bundle();
    let certificate = fs::read_dir(bundle.join("certificates"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    // In the checkpoint's root (after the magic, network, epoch, log and size): every
    // cosignature then fails.
    let in_root = 4 + 32 + 4 + 4 + 8 + 3;
    flip(&certificate, in_root);
    assert_violations(&bundle, &["certificate_bad_cosignature"]);
    // In the magic: it is not a certificate at all.
    flip(&certificate, in_root);
    flip(&certificate, 0);
    assert_violations(&bundle, &["certificate_undecodable"]);
}

#[test]
fn unusable_bundles_exit_2_with_a_reason() {
    let (dir, bundle) = clean_bundle();
    assert_unusable(&dir.path().join("nowhere"), "bundle_unreadable", &[]);

    fs::write(bundle.join("manifest.json"), "{ not json").unwrap();
    assert_unusable(&bundle, "manifest_invalid", &[]);
    fs::remove_file(bundle.join("manifest.json")).unwrap();
    assert_unusable(&bundle, "manifest_missing", &[]);
    fs::remove_file(bundle.join("genesis.toml")).unwrap();
    assert_unusable(&bundle, "genesis_missing", &[]);

    // The human form: one line on stderr naming the reason.
    let out = hukou(&["audit", bundle.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.starts_with("error: ") && err.contains("genesis_missing"),
        "{err}"
    );
}

/// SplitMix64, for reproducible damage.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[test]
fn random_damage_is_always_caught_and_never_panics() {
    let (_dir, bundle) = clean_bundle();
    let path = log_path(&bundle, "330502");
    let original = fs::read(&path).unwrap();
    for i in 0..24u64 {
        let mut bytes = original.clone();
        let r = mix(i);
        let at = (r % bytes.len() as u64) as usize;
        match i % 3 {
            // One flipped bit anywhere: a length prefix, a body, a signature.
            0 => bytes[at] ^= 1 << (r >> 61),
            // A random byte value.
            1 => bytes[at] = (r >> 32) as u8,
            // Cut anywhere.
            _ => bytes.truncate(at),
        }
        if bytes == original {
            continue;
        }
        fs::write(&path, &bytes).unwrap();
        let (code, v) = audit(&bundle, &[]);
        assert_eq!(code, 1, "damage {i} at byte {at} not caught: {v}");
    }
}

// ---- export from a real node ----

const TOKEN: &str = "audit-test-token-0123456789abcdef";

fn run_in(dir: &Path, args: &[&str]) -> Output {
    common::hukou_in(dir, args, &[])
}

#[track_caller]
fn ok(out: Output) -> Output {
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

fn request(method: &str, url: &str, body: Option<&Value>) -> Result<(u16, Value), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into();
    let response = match body {
        None => agent.get(url).call(),
        Some(body) => agent
            .post(url)
            .header("Authorization", format!("Bearer {TOKEN}"))
            .send_json(body),
    };
    let mut response = response.map_err(|e| format!("{method} {url}: {e}"))?;
    let status = response.status().as_u16();
    let value = response
        .body_mut()
        .read_json()
        .map_err(|e| format!("{method} {url}: {e}"))?;
    Ok((status, value))
}

fn citizen_id(n: u32) -> String {
    let first17 = format!("31010419800101{n:03}");
    let check = hukou_protocol::id::check_character_for(&first17).unwrap();
    format!("{first17}{check}")
}

#[test]
fn a_node_exported_over_http_and_from_its_store_audits_clean() {
    // Both members run: each enrolment needs its claim final, which takes both cosignatures.
    let mut net = TwoBureaus::start("audit-export-test", TOKEN);
    let d = net.dir().to_path_buf();
    let d = d.as_path();
    let url = net.here.url.clone();
    let mut claims_here = 0;
    for n in 1..=12 {
        let (status, v) = request(
            "POST",
            &format!("{url}/v1/enrol"),
            Some(&json!({"person": citizen_id(n)})),
        )
        .unwrap();
        assert_eq!(status, 200, "{v}");
        let arbiter = net.arbiters.of(&citizen_id(n)).to_string();
        assert!(v["claim"].as_str().unwrap().starts_with(&arbiter), "{v}");
        claims_here += u64::from(arbiter == HERE);
    }
    let (status, v) = request(
        "POST",
        &format!("{url}/v1/permits"),
        Some(&json!({"person": citizen_id(900), "origin": OTHER, "category": "spouse"})),
    )
    .unwrap();
    assert_eq!(status, 200, "{v}");
    // Each enrolment consumed a claim its person's arbiter wrote in its own log: 310104 holds
    // its 12 enrolments, the permit and the claims it granted; 330502 the other claims.
    let lengths = [(HERE, 13 + claims_here), (OTHER, 12 - claims_here)];
    // Both logs certified in full on 310104 before exporting, so that the export over HTTP and
    // the one from the store below carry the same logs and certificates.
    let started = Instant::now();
    loop {
        let (_, logs) = request("GET", &format!("{url}/v1/logs"), None).unwrap();
        let certified = lengths.iter().all(|(code, length)| {
            logs["logs"].as_array().unwrap().iter().any(|l| {
                l["bureau"] == *code && l["length"] == *length && l["certificate_size"] == *length
            })
        });
        if certified {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "logs {lengths:?} not certified on {HERE}: {logs}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let node = &net.here;

    // Without the auditor's genesis, --node is refused with the reason.
    let out = run_in(d, &["export", "--node", &node.url, "--out", "refused"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("--genesis"),
        "{}",
        text(&out.stderr)
    );

    ok(run_in(
        d,
        &[
            "export",
            "--node",
            &node.url,
            "--genesis",
            "genesis.toml",
            "--out",
            "over-http",
        ],
    ));
    let (code, v) = audit(&d.join("over-http"), &[]);
    assert_eq!(code, 0, "{:#}", v["findings"]);
    // 12 enrolments, 12 claims, the permit.
    assert_eq!(v["totals"]["entries_applied"], 25);
    assert_eq!(v["totals"]["certificates_valid"], 2);
    // Into a directory that is not empty: refused.
    let out = run_in(
        d,
        &[
            "export",
            "--node",
            &node.url,
            "--genesis",
            "genesis.toml",
            "--out",
            "over-http",
        ],
    );
    assert_eq!(out.status.code(), Some(1));

    // From the stopped node's store: the same logs and certificates.
    net.here.stop();
    ok(run_in(
        d,
        &["export", "--config", "node.toml", "--out", "from-store"],
    ));
    let (code, w) = audit(&d.join("from-store"), &[]);
    assert_eq!(code, 0, "{:#}", w["findings"]);
    assert_eq!(v["logs"], w["logs"]);
    let read = |name: &str| -> Manifest {
        serde_json::from_slice(&fs::read(d.join(name).join("manifest.json")).unwrap()).unwrap()
    };
    let (http, store) = (read("over-http"), read("from-store"));
    assert_eq!(http.logs, store.logs);
    assert_eq!(http.genesis_hash, store.genesis_hash);
    assert_eq!(http.network_id, NetworkId::from_name("audit-export-test"));
}

/// A claim reference for entries refused before their references are looked at (a stranger's
/// signature, an equivocation).
fn no_claim() -> hukou_protocol::EntryRef {
    hukou_protocol::EntryRef {
        author: BureauCode::new(310104).unwrap(),
        seq: Seq(0),
        hash: EntryHash([0xcc; 32]),
    }
}

#[test]
fn revoked_entries_a_node_keeps_are_served_exported_and_judged() {
    let mut net = TwoBureaus::start("audit-revoked-test", TOKEN);
    let d = net.dir().to_path_buf();
    let d = d.as_path();
    net.other.stop();
    net.here.stop();
    // An entry of 330502 signed with its key under epoch 0, kept in HERE's store as revoked
    // evidence (`Store::put_revoked`, what `keep_revoked` writes). This network's genesis is of
    // the legacy form, so no update can cut a log: the audit must find that no cut refuses the
    // entry. (A cut that does, over real nodes: tests/tests/epochs.rs; in a bundle:
    // `revoked_entries_in_a_bundle_are_listed_with_the_epoch_chain`.)
    let genesis = Genesis::load(&d.join("genesis.toml"))
        .unwrap()
        .verify()
        .unwrap();
    let network = genesis.membership().network();
    let other: BureauCode = OTHER.parse().unwrap();
    let other_key = hukou_keys::BureauKey::load(&d.join("other").join("bureau.key")).unwrap();
    let kept = Entry {
        network,
        epoch: 0,
        author: other,
        seq: Seq(0),
        prev: EntryHash::ZERO,
        time_ms: 1_767_225_600_000,
        body: Body::Enrol {
            person: PersonTag([0x44; 32]),
            placement: Placement {
                household: HouseholdId(1),
                relation: Relation::Head,
            },
            claim: no_claim(),
        },
    }
    .sign(other_key.signing_key());
    {
        let config = hukou_node::config::Config::load(&d.join("node.toml")).unwrap();
        let store = hukou_node::store::Store::open(
            &config.data_dir.join("db"),
            HERE.parse().unwrap(),
            network,
        )
        .unwrap();
        assert!(store.put_revoked(other, 0, &kept.encode()).unwrap());
        store.flush().unwrap();
    }
    net.here.start();
    let started = Instant::now();
    while net.here.health().is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the node did not start again:\n{}",
            net.here.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let url = net.here.url.clone();

    // Served as evidence, by log and seq.
    let (status, v) = request("GET", &format!("{url}/v1/revoked"), None).unwrap();
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v,
        json!({"revoked": [{"log": OTHER, "seq": 0, "entry": hex::encode(kept.encode())}]})
    );

    // Exported over HTTP and from the store into revoked/, and judged by the audit.
    ok(run_in(
        d,
        &[
            "export",
            "--node",
            &url,
            "--genesis",
            "genesis.toml",
            "--out",
            "over-http",
        ],
    ));
    net.here.stop();
    ok(run_in(
        d,
        &["export", "--config", "node.toml", "--out", "from-store"],
    ));
    for bundle in ["over-http", "from-store"] {
        let bundle = d.join(bundle);
        assert_eq!(
            fs::read(revoked_path(&bundle, other)).unwrap(),
            framed(&kept),
            "{}",
            bundle.display()
        );
        let v = assert_violations(&bundle, &["revoked_entry_not_cut"]);
        assert_eq!(
            v["findings_by_name"],
            json!({"revoked_entry_not_cut": 1}),
            "{}",
            bundle.display()
        );
        assert_eq!(
            v["findings"][0]["entries"],
            json!([kept.reference().to_string()])
        );
        assert_eq!(v["revoked"], json!([]));
        assert_eq!(v["epochs"].as_array().unwrap().len(), 1);
    }
}
