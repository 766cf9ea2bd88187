//! The `hukou id`, `hukou keys` and `hukou genesis` commands as scripts use them: the built
//! binary, run in a temporary directory, judged by exit code, stdout, stderr and file modes.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output};

/// Runs `hukou ARGS` in `dir`.
fn hukou(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hukou"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the hukou binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// Asserts the exit code, showing the output when it is wrong.
fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        stdout(output),
        stderr(output)
    );
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn id_check_shows_the_parts_of_a_valid_id() {
    let dir = tempfile::tempdir().unwrap();
    let out = hukou(dir.path(), &["id", "check", "11010519491231002x"]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    for part in [
        "11010519491231002X",
        "110105",
        "1949-12-31",
        "002",
        "female",
    ] {
        assert!(text.contains(part), "{part} missing from {text}");
    }

    let out = hukou(dir.path(), &["id", "check", "11010519491231002X", "--json"]);
    assert_exit(&out, 0);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["id"], "11010519491231002X");
    assert_eq!(json["address_code"], "110105");
    assert_eq!(json["birth_date"], "1949-12-31");
    assert_eq!(json["sequence"], "002");
    assert_eq!(json["sex"], "female");
    assert_eq!(json["check_character"], "X");
}

#[test]
fn id_check_names_each_fault() {
    let dir = tempfile::tempdir().unwrap();
    // (input, error name, words the message must contain)
    let cases = [
        ("1101051949", "id_wrong_length", "10 characters"),
        ("1101051949123100A2", "id_bad_character", "position 17"),
        ("99010519491231002X", "id_bad_address_code", "990105"),
        (
            "200105194912310021",
            "id_unknown_province",
            "starts with 20",
        ),
        ("110105194902300028", "id_impossible_date", "1949-02-30"),
        (
            "110105194912310021",
            "id_wrong_check_character",
            "expected 'X'",
        ),
    ];
    for (input, name, words) in cases {
        let out = hukou(dir.path(), &["id", "check", input]);
        assert_exit(&out, 1);
        let err = stderr(&out);
        assert!(err.starts_with("error: "), "{input}: {err}");
        assert!(err.contains(words), "{input}: {err}");
        assert_eq!(err.lines().count(), 1, "{input}: {err}");
        assert!(stdout(&out).is_empty(), "{input}");

        let out = hukou(dir.path(), &["id", "check", input, "--json"]);
        assert_exit(&out, 1);
        let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(json["error"], name, "{input}");
        assert!(
            json["message"].as_str().unwrap().contains(words),
            "{input}: {json}"
        );
    }
    // A missing argument is a usage error.
    assert_exit(&hukou(dir.path(), &["id", "check"]), 2);
}

#[test]
fn keys_gen_writes_mode_0600_and_show_refuses_a_readable_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = hukou(dir.path(), &["keys", "gen", "--out", "bureau.key"]);
    assert_exit(&out, 0);
    let public = stdout(&out).trim().to_string();
    assert_eq!(public.len(), 64, "{public}");
    assert!(public.bytes().all(|b| b.is_ascii_hexdigit()));
    let path = dir.path().join("bureau.key");
    assert_eq!(mode(&path), 0o600);

    let out = hukou(dir.path(), &["keys", "show", "bureau.key"]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out).trim(), public);
    let text = fs::read_to_string(&path).unwrap();
    assert!(
        !stdout(&out).contains(text.lines().find(|l| l.starts_with("secret")).unwrap()),
        "show printed the secret"
    );

    // Never overwritten unless forced.
    let out = hukou(dir.path(), &["keys", "gen", "--out", "bureau.key"]);
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    assert_eq!(fs::read_to_string(&path).unwrap(), text);
    let out = hukou(
        dir.path(),
        &["keys", "gen", "--out", "bureau.key", "--force"],
    );
    assert_exit(&out, 0);
    assert_ne!(stdout(&out).trim(), public);
    assert_eq!(mode(&path), 0o600);

    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let out = hukou(dir.path(), &["keys", "show", "bureau.key"]);
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(err.contains("bureau.key"), "{err}");
    assert!(err.contains("0644"), "{err}");
    assert!(err.contains("chmod 600 bureau.key"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    for (command, kind) in [
        ("gen-person-key", "hukou-person-key-v1"),
        ("gen-network-key", "hukou-network-key-v1"),
    ] {
        let file = format!("{command}.key");
        let out = hukou(dir.path(), &["keys", command, "--out", &file]);
        assert_exit(&out, 0);
        let fingerprint = stdout(&out).trim().to_string();
        assert_eq!(mode(&dir.path().join(&file)), 0o600);
        let out = hukou(dir.path(), &["keys", "show", &file]);
        assert_exit(&out, 0);
        assert!(stdout(&out).contains(kind), "{}", stdout(&out));
        assert!(stdout(&out).contains(&fingerprint), "{}", stdout(&out));
    }
}

#[test]
fn genesis_create_add_sign_verify_and_a_hand_edit_fails() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = hukou(dir.path(), args);
        assert_exit(&out, 0);
        stdout(&out).trim().to_string()
    };
    run(&["keys", "gen", "--out", "admin.key"]);
    run(&[
        "genesis",
        "create",
        "--network",
        "hukou-test",
        "--admin-key",
        "admin.key",
        "--out",
        "genesis.toml",
    ]);
    let members = [
        ("310104", "上海市公安局徐汇分局", "4101"),
        ("330502", "湖州市公安局吴兴区分局", "4102"),
        ("440305", "深圳市公安局南山分局", "4103"),
    ];
    let mut publics = Vec::new();
    for (code, name, port) in members {
        let key_file = format!("{code}.key");
        publics.push(run(&["keys", "gen", "--out", &key_file]));
        let address = format!("/ip4/127.0.0.1/tcp/{port}");
        run(&[
            "genesis",
            "add-member",
            "--genesis",
            "genesis.toml",
            "--code",
            code,
            "--name",
            name,
            "--key",
            &key_file,
            "--address",
            &address,
        ]);
    }

    // Unsigned: refused with its own error.
    let out = hukou(
        dir.path(),
        &["genesis", "verify", "--genesis", "genesis.toml", "--json"],
    );
    assert_exit(&out, 1);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["error"], "genesis_unsigned");

    // Only the administrator's key signs.
    let out = hukou(
        dir.path(),
        &[
            "genesis",
            "sign",
            "--genesis",
            "genesis.toml",
            "--admin-key",
            "310104.key",
        ],
    );
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("not the genesis's administrator key"),
        "{}",
        stderr(&out)
    );
    let hash = run(&[
        "genesis",
        "sign",
        "--genesis",
        "genesis.toml",
        "--admin-key",
        "admin.key",
    ]);

    let text = run(&["genesis", "verify", "--genesis", "genesis.toml"]);
    assert!(text.contains(&hash), "{text}");
    assert!(text.contains("hukou-test"), "{text}");
    let json: serde_json::Value = serde_json::from_str(&run(&[
        "genesis",
        "verify",
        "--genesis",
        "genesis.toml",
        "--json",
    ]))
    .unwrap();
    assert_eq!(json["valid"], true);
    assert_eq!(json["hash"], hash.as_str());
    assert_eq!(json["network"], "hukou-test");
    assert_eq!(json["quorum"], 3);
    // The legacy form: the admin key is the only administrator, k = 1.
    let admin_public = json["admin_public_key"].as_str().unwrap().to_string();
    assert_eq!(json["administrators"], serde_json::json!([admin_public]));
    assert_eq!(json["admin_threshold"], 1);
    assert_eq!(json["legacy_administrators"], true);
    assert!(text.contains("1 of 1 (legacy genesis"), "{text}");
    let listed = json["members"].as_array().unwrap();
    assert_eq!(listed.len(), 3);
    for (i, (code, name, port)) in members.iter().enumerate() {
        assert_eq!(listed[i]["code"], *code);
        assert_eq!(listed[i]["name"], *name);
        assert_eq!(listed[i]["public_key"], publics[i].as_str());
        assert_eq!(
            listed[i]["addresses"][0],
            format!("/ip4/127.0.0.1/tcp/{port}")
        );
    }

    // A duplicate code is refused and leaves the signed genesis as it was.
    let signed_text = fs::read_to_string(dir.path().join("genesis.toml")).unwrap();
    let out = hukou(
        dir.path(),
        &[
            "genesis",
            "add-member",
            "--genesis",
            "genesis.toml",
            "--code",
            "310104",
            "--name",
            "重复",
            "--public-key",
            &publics[1],
        ],
    );
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("listed twice"), "{}", stderr(&out));
    assert_eq!(
        fs::read_to_string(dir.path().join("genesis.toml")).unwrap(),
        signed_text
    );

    // A hand edit of one name breaks the signature.
    let edited = signed_text.replace("深圳市公安局南山分局", "深圳市公安局福田分局");
    assert_ne!(edited, signed_text);
    fs::write(dir.path().join("edited.toml"), edited).unwrap();
    let out = hukou(
        dir.path(),
        &["genesis", "verify", "--genesis", "edited.toml"],
    );
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(
        err.starts_with("error: genesis edited.toml is not valid"),
        "{err}"
    );
    assert!(err.contains("signature does not verify"), "{err}");
    let out = hukou(
        dir.path(),
        &["genesis", "verify", "--genesis", "edited.toml", "--json"],
    );
    assert_exit(&out, 1);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["error"], "genesis_bad_signature");

    // A malformed field is named with its file.
    let broken = signed_text.replace("\"330502\"", "\"33050\"");
    fs::write(dir.path().join("broken.toml"), broken).unwrap();
    let out = hukou(
        dir.path(),
        &["genesis", "verify", "--genesis", "broken.toml"],
    );
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(err.contains("broken.toml"), "{err}");
    assert!(err.contains("members[1].code"), "{err}");
}

#[test]
fn genesis_create_takes_a_public_key_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let admin = {
        let out = hukou(dir.path(), &["keys", "gen", "--out", "admin.key"]);
        assert_exit(&out, 0);
        stdout(&out).trim().to_string()
    };
    let create = |extra: &[&str]| {
        let mut args = vec![
            "genesis",
            "create",
            "--network",
            "hukou-test",
            "--out",
            "genesis.toml",
        ];
        args.extend_from_slice(extra);
        hukou(dir.path(), &args)
    };
    assert_exit(&create(&["--admin-public-key", &admin]), 0);
    let out = create(&["--admin-public-key", &admin]);
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    assert_exit(&create(&["--admin-public-key", &admin, "--force"]), 0);
    // Exactly one of the two admin key flags.
    assert_exit(&create(&[]), 2);
    assert_exit(
        &create(&["--admin-public-key", &admin, "--admin-key", "admin.key"]),
        2,
    );
    let out = create(&["--admin-public-key", "abcd", "--force"]);
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("64 are needed"), "{}", stderr(&out));
}

#[test]
fn genesis_names_k_of_n_administrators_and_refuses_unsafe_ones() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = hukou(dir.path(), args);
        assert_exit(&out, 0);
        stdout(&out).trim().to_string()
    };
    run(&["keys", "gen", "--out", "admin.key"]);
    fs::create_dir(dir.path().join("admins")).unwrap();
    let mut administrators: Vec<String> = (1..=3)
        .map(|i| run(&["keys", "gen", "--out", &format!("admins/admin-{i}.key")]))
        .collect();
    let member = run(&["keys", "gen", "--out", "310104.key"]);
    let create = |out_file: &str, extra: &[&str]| {
        let mut args = vec![
            "genesis",
            "create",
            "--network",
            "hukou-test",
            "--admin-key",
            "admin.key",
            "--out",
            out_file,
        ];
        args.extend_from_slice(extra);
        hukou(dir.path(), &args)
    };

    // Key files and hex keys mix; k is stated.
    let out = create(
        "genesis.toml",
        &[
            "--administrator-key",
            "admins/admin-1.key",
            "--administrator-key",
            "admins/admin-2.key",
            "--administrator",
            &administrators[2],
            "--admin-threshold",
            "2",
        ],
    );
    assert_exit(&out, 0);
    assert!(
        stderr(&out).contains("administrators: 2 of 3"),
        "{}",
        stderr(&out)
    );
    let text = fs::read_to_string(dir.path().join("genesis.toml")).unwrap();
    assert!(text.contains("admin_threshold = 2"), "{text}");
    run(&[
        "genesis",
        "add-member",
        "--genesis",
        "genesis.toml",
        "--code",
        "310104",
        "--name",
        "上海市公安局徐汇分局",
        "--key",
        "310104.key",
    ]);
    let hash = run(&[
        "genesis",
        "sign",
        "--genesis",
        "genesis.toml",
        "--admin-key",
        "admin.key",
    ]);
    let json: serde_json::Value = serde_json::from_str(&run(&[
        "genesis",
        "verify",
        "--genesis",
        "genesis.toml",
        "--json",
    ]))
    .unwrap();
    administrators.sort();
    assert_eq!(json["hash"], hash.as_str());
    assert_eq!(json["administrators"], serde_json::json!(administrators));
    assert_eq!(json["admin_threshold"], 2);
    assert_eq!(json["legacy_administrators"], false);
    let text = run(&["genesis", "verify", "--genesis", "genesis.toml"]);
    assert!(text.contains("2 of 3 sign configuration updates"), "{text}");
    for key in &administrators {
        assert!(text.contains(key.as_str()), "{key}: {text}");
    }

    // Usage errors: administrators without k, k without administrators.
    assert_exit(
        &create("other.toml", &["--administrator-key", "admins/admin-1.key"]),
        2,
    );
    assert_exit(&create("other.toml", &["--admin-threshold", "2"]), 2);
    // Refusals, each naming the rule; no file is written.
    let refusals: [(&[&str], &str); 4] = [
        (
            &[
                "--administrator",
                &administrators[0],
                "--admin-threshold",
                "1",
            ],
            "at least 2 are needed",
        ),
        (
            &[
                "--administrator",
                &administrators[0],
                "--administrator",
                &administrators[1],
                "--admin-threshold",
                "1",
            ],
            "not more than half",
        ),
        (
            &[
                "--administrator",
                &administrators[0],
                "--administrator",
                &administrators[0],
                "--admin-threshold",
                "2",
            ],
            "listed twice",
        ),
        (
            &[
                "--administrator",
                &administrators[0],
                "--administrator",
                &administrators[1],
                "--admin-threshold",
                "3",
            ],
            "out of range",
        ),
    ];
    for (extra, words) in refusals {
        let out = create("other.toml", extra);
        assert_exit(&out, 1);
        assert!(stderr(&out).contains(words), "{words}: {}", stderr(&out));
        assert!(!dir.path().join("other.toml").exists());
    }

    // set-administrators refuses a member's key and leaves the signed file as it was.
    let signed_text = fs::read_to_string(dir.path().join("genesis.toml")).unwrap();
    let out = hukou(
        dir.path(),
        &[
            "genesis",
            "set-administrators",
            "--genesis",
            "genesis.toml",
            "--administrator",
            &administrators[0],
            "--administrator",
            &member,
            "--admin-threshold",
            "2",
        ],
    );
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("also the key of member 310104"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("genesis.toml")).unwrap(),
        signed_text
    );
    // It replaces them (clearing the signature) when they are acceptable.
    let out = hukou(
        dir.path(),
        &[
            "genesis",
            "set-administrators",
            "--genesis",
            "genesis.toml",
            "--administrator-key",
            "admins/admin-1.key",
            "--administrator-key",
            "admins/admin-2.key",
            "--admin-threshold",
            "2",
        ],
    );
    assert_exit(&out, 0);
    assert!(stderr(&out).contains("sign it again"), "{}", stderr(&out));
    let out = hukou(
        dir.path(),
        &["genesis", "verify", "--genesis", "genesis.toml", "--json"],
    );
    assert_exit(&out, 1);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["error"], "genesis_unsigned");

    // A threshold lowered by hand breaks the signature, and `sign` refuses to sign it again.
    let weak = signed_text.replace("admin_threshold = 2", "admin_threshold = 1");
    assert_ne!(weak, signed_text);
    fs::write(dir.path().join("weak.toml"), weak).unwrap();
    let out = hukou(
        dir.path(),
        &["genesis", "verify", "--genesis", "weak.toml", "--json"],
    );
    assert_exit(&out, 1);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["error"], "genesis_bad_signature");
    let out = hukou(
        dir.path(),
        &[
            "genesis",
            "sign",
            "--genesis",
            "weak.toml",
            "--admin-key",
            "admin.key",
        ],
    );
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(err.contains("refusing to sign weak.toml"), "{err}");
    assert!(err.contains("not more than half"), "{err}");
}
