//! The testnet's genesis names k-of-n administrators (issue 13), as `testnet/up.sh` makes it:
//! three administrator key files, owner-only, two of whom sign a configuration update; and nodes
//! start and connect on such a genesis ("HKG" 0x02) exactly as on a legacy one.

use std::os::unix::fs::PermissionsExt as _;

use hukou_keys::{BureauKey, Genesis};
use hukou_tests::{ADMINISTRATORS, READY_TIMEOUT, Testnet};

#[test]
fn the_testnet_genesis_names_three_owner_only_administrators_with_threshold_2() {
    let mut net = Testnet::create(2);
    let genesis = Genesis::load(&net.dir().join("genesis.toml"))
        .and_then(|g| g.verify())
        .expect("the testnet's genesis verifies");
    assert!(genesis.genesis().states_administrators());
    assert_eq!(genesis.admin_threshold(), 2);

    let files = net.administrator_keys();
    assert_eq!(files.len(), ADMINISTRATORS);
    let mut expected: Vec<_> = files
        .iter()
        .map(|file| {
            let mode = std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", file.display());
            BureauKey::load(file)
                .expect("an administrator key file")
                .public()
        })
        .collect();
    expected.sort_by_key(|k| k.to_bytes());
    assert_eq!(genesis.administrators(), expected);
    // No administrator is a member, and the genesis signer is not one of them.
    for member in genesis.genesis().members() {
        assert!(!expected.contains(&member.public_key), "{}", member.code);
    }
    assert!(!expected.contains(genesis.genesis().admin_public_key()));

    net.start(0);
    net.start(1);
    net.wait_ready(&[0, 1], READY_TIMEOUT);
}
