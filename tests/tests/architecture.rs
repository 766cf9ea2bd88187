//! Architecture invariants that a test can hold: the protocol crate stays pure.

use std::path::Path;
use std::process::Command;

fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
}

/// `protocol` depends on no runtime, storage, network or randomness source.
#[test]
fn protocol_depends_on_no_io_clock_or_randomness_crate() {
    let out = Command::new(env!("CARGO"))
        .current_dir(workspace())
        .args([
            "tree",
            "-p",
            "hukou-protocol",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--offline",
        ])
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8(out.stdout).unwrap();
    assert!(
        tree.contains("hukou-protocol"),
        "unexpected cargo tree output: {tree}"
    );
    for forbidden in [
        "tokio ",
        "sled ",
        "libp2p",
        "getrandom ",
        "rand ",
        "mio ",
        "rayon ",
        "axum ",
    ] {
        let hit = tree.lines().find(|l| l.starts_with(forbidden));
        assert!(
            hit.is_none(),
            "protocol depends on {hit:?}: it must stay pure"
        );
    }
}

/// No clock, file system, network or thread in the protocol's source.
#[test]
fn protocol_source_reads_no_clock_files_or_network() {
    let dir = workspace().join("protocol/src");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for forbidden in [
            "SystemTime",
            "Instant::now",
            "std::fs",
            "std::net",
            "thread::spawn",
            "std::env",
        ] {
            assert!(
                !text.contains(forbidden),
                "{} uses {forbidden}: protocol must stay pure",
                path.display()
            );
        }
        checked += 1;
    }
    assert!(
        checked >= 10,
        "found only {checked} source files in {}",
        dir.display()
    );
}
