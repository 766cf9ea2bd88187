//! Golden bytes: the canonical encoding, hashes and signatures of fixed entries, a checkpoint and
//! a configuration update are pinned, so a change in bincode, serde derive order or a field type
//! fails here, not on the network. docs/FORMAT.md prints these vectors.
//!
//! `HUKOU_PRINT_GOLDEN=1 cargo test -p hukou-protocol --test golden -- --nocapture` prints the
//! values instead of checking them (to recompute after a deliberate format change).

use ed25519_dalek::SigningKey;
use hukou_protocol::checkpoint::{Certificate, Checkpoint, Cosignature};
use hukou_protocol::config::{Change, ConfigHash, ConfigUpdate, Deadlines, SignedUpdate};
use hukou_protocol::encoding::DOMAIN_CONFIG_SIGNATURE;
use hukou_protocol::entry::{Body, Entry, Placement};
use hukou_protocol::merkle::{Tree, empty_root};
use hukou_protocol::{
    BureauCode, Category, Digest, EntryHash, EntryRef, HouseholdId, NetworkId, PersonTag, Relation,
    Seq, SignedEntry,
};

fn printing() -> bool {
    std::env::var("HUKOU_PRINT_GOLDEN").is_ok()
}

/// The author key of every vector: the seed `42 42 … 42`.
fn author_key() -> SigningKey {
    SigningKey::from_bytes(&[0x42; 32])
}

fn entries() -> Vec<Entry> {
    let network = NetworkId::from_name("golden");
    let sh = BureauCode::new(310104).unwrap();
    let hz = BureauCode::new(330502).unwrap();
    let person = PersonTag([0x11; 32]);
    vec![
        Entry {
            network,
            epoch: 0,
            author: sh,
            seq: Seq(0),
            prev: EntryHash::ZERO,
            time_ms: 1_767_225_600_000,
            body: Body::Enrol {
                person,
                placement: Placement {
                    household: HouseholdId(1),
                    relation: Relation::Head,
                },
                claim: EntryRef {
                    author: hz,
                    seq: Seq(5),
                    hash: EntryHash([0x55; 32]),
                },
            },
        },
        Entry {
            network,
            epoch: 0,
            author: hz,
            seq: Seq(7),
            prev: EntryHash([0x22; 32]),
            time_ms: 1_767_225_600_001,
            body: Body::Permit {
                person,
                origin: sh,
                category: Category::Spouse,
                valid_until_ms: 1_770_681_600_000,
                materials: Digest([0x33; 32]),
                corrects: Some(EntryRef {
                    author: sh,
                    seq: Seq(3),
                    hash: EntryHash([0x44; 32]),
                }),
            },
        },
        Entry {
            network,
            epoch: 0,
            author: hz,
            seq: Seq(5),
            prev: EntryHash([0x66; 32]),
            time_ms: 1_767_225_600_002,
            body: Body::Claim {
                person,
                claimant: sh,
                after: None,
            },
        },
        Entry {
            network,
            epoch: 0,
            author: sh,
            seq: Seq(9),
            prev: EntryHash([0x77; 32]),
            time_ms: 1_767_225_600_003,
            body: Body::Birth {
                person,
                placement: Placement {
                    household: HouseholdId(2),
                    relation: Relation::Child,
                },
                claim: EntryRef {
                    author: hz,
                    seq: Seq(6),
                    hash: EntryHash([0x88; 32]),
                },
                born_on: 20251231,
            },
        },
        Entry {
            network,
            epoch: 0x0403_0201,
            author: hz,
            seq: Seq(2),
            prev: EntryHash([0x99; 32]),
            time_ms: 1_767_225_600_004,
            body: Body::HeadChange {
                household: HouseholdId(3),
                new_head: person,
            },
        },
    ]
}

const GOLDEN: [(&str, &str); 5] = [
    (
        // Enrol.
        "69c262dd9dafb102b8877aa754741eee998333a790dad4170e45acf69ceb55ea",
        "484b450267baaf722d5f997b9982c8e67238a12a8073e431804fe763cc58cc289d48acfd0000000058bb04000000000000000000000000000000000000000000000000000000000000000000000000000000000000a8da769b010000000000001111111111111111111111111111111111111111111111111111111111111111010000000000000000000000060b050005000000000000005555555555555555555555555555555555555555555555555555555555555555d68766010620e581abc858fce36c05b93e8d5339d55ca5f986be6a5f691a1b209f2c67895967d66f77236813782c22bcbad571e58ff94d3a5426089ac9ff2c01",
    ),
    (
        // Permit.
        "affb6b9cce137a8dde82ee3c9c6e41cd4462f2c5c94c63dfa61b6f461fdddea5",
        "484b450267baaf722d5f997b9982c8e67238a12a8073e431804fe763cc58cc289d48acfd00000000060b05000700000000000000222222222222222222222222222222222222222222222222222222222222222201a8da769b01000002000000111111111111111111111111111111111111111111111111111111111111111158bb0400000000000008d9449c01000033333333333333333333333333333333333333333333333333333333333333330158bb040003000000000000004444444444444444444444444444444444444444444444444444444444444444de17d013b7abd3d3e5dda10fa15ffd1ca18865682893ade60bc1b10230e8eda361eddfb30388a3bf0e0afbc350a4480c3aa0e42127ab89e584f08c937a06fd00",
    ),
    (
        // Claim.
        "8805f8f529fc4978700ff30f296ec7f3556f4a31180dff7ff550a69ca3d2d901",
        "484b450267baaf722d5f997b9982c8e67238a12a8073e431804fe763cc58cc289d48acfd00000000060b05000500000000000000666666666666666666666666666666666666666666666666666666666666666602a8da769b01000009000000111111111111111111111111111111111111111111111111111111111111111158bb0400003590acfc8fb93b4785bcb9905557ce36fb240171d4df72d8141baafc2d48869fc418e9692d1ee514da2e3c8dce827afe782b6d3ceec92e117f50a84fd834b301",
    ),
    (
        // Birth.
        "0f6cc00cae6ab516319e7850e5ca46ab2b4fefcb69c0992ad73218d9b0ce4702",
        "484b450267baaf722d5f997b9982c8e67238a12a8073e431804fe763cc58cc289d48acfd0000000058bb04000900000000000000777777777777777777777777777777777777777777777777777777777777777703a8da769b010000010000001111111111111111111111111111111111111111111111111111111111111111020000000000000002000000060b0500060000000000000088888888888888888888888888888888888888888888888888888888888888885f023501c14ac48f5c51a8953ec9cc883f897b2e50dce3c915b7cf3a5400a33b384f81c91ea0d583ddd7a3aee5cd8ef56b318c3e700049bbb5aa401937810ff471fe9500",
    ),
    (
        // HeadChange, naming epoch 0x04030201.
        "ba05a7af7e850218ca300b2f7e2bee462165f5f5fceeb93292845169ad9ab85f",
        "484b450267baaf722d5f997b9982c8e67238a12a8073e431804fe763cc58cc289d48acfd01020304060b05000200000000000000999999999999999999999999999999999999999999999999999999999999999904a8da769b01000008000000030000000000000011111111111111111111111111111111111111111111111111111111111111110684e679421a6c1d59e25185633520cedb22fb5f2cdef1d9f2e1f328ecf24fef79de268cf9de1972568f8202a4b00a16116e57f2b27c3cad1fea1a3e1a326402",
    ),
];

#[test]
fn canonical_encoding_hash_and_signature_are_pinned() {
    let key = author_key();
    assert_eq!(entries().len(), GOLDEN.len());
    for (entry, (hash, signed)) in entries().into_iter().zip(GOLDEN) {
        let s = entry.clone().sign(&key);
        if printing() {
            println!("{}\n{}", s.hash(), hex::encode(s.encode()));
            continue;
        }
        assert_eq!(
            s.hash().to_string(),
            hash,
            "entry hash changed for {:?}",
            entry.body.kind()
        );
        assert_eq!(
            hex::encode(s.encode()),
            signed,
            "wire bytes changed for {:?}",
            entry.body.kind()
        );
        assert_eq!(SignedEntry::decode(&s.encode()).unwrap(), s);
    }
}

/// FORMAT.md's Merkle vector: the root of a log holding entries 1 and 2, and of an empty log.
#[test]
fn merkle_roots_are_pinned() {
    let key = author_key();
    let mut tree = Tree::new();
    for entry in entries().into_iter().take(2) {
        tree.push(entry.sign(&key).hash().0);
    }
    let root = hex::encode(tree.root());
    let empty = hex::encode(empty_root());
    if printing() {
        println!("root {root}\nempty {empty}");
        return;
    }
    assert_eq!(
        root,
        "0127635b8a1d271414858e51fed5c9ca455734b1c2682f528b5f2cf8b357f498"
    );
    assert_eq!(
        empty,
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}

/// A checkpoint naming epoch 1 (92 bytes), its author signature by the golden key, and a
/// certificate of it with one cosignature by the same key as witness 330502.
fn checkpoint() -> Checkpoint {
    Checkpoint {
        network: NetworkId::from_name("golden"),
        epoch: 1,
        log: BureauCode::new(310104).unwrap(),
        size: 2,
        root: [0xd6; 32],
        time_ms: 1_767_225_660_000,
    }
}

#[test]
fn checkpoint_and_certificate_are_pinned() {
    let key = author_key();
    let c = checkpoint();
    let encoded = hex::encode(c.encode());
    let signed = hex::encode(c.sign(&key).encode());
    let certificate = Certificate::new(
        c,
        vec![Cosignature::sign(
            &c,
            BureauCode::new(330502).unwrap(),
            &key,
        )],
    );
    let certificate = hex::encode(certificate.encode());
    if printing() {
        println!("checkpoint {encoded}\nsigned {signed}\ncertificate {certificate}");
        return;
    }
    assert_eq!(c.encode().len(), 92);
    assert_eq!(
        encoded,
        "484b430267baaf722d5f997b9982c8e67238a12a8073e431804fe763cc58cc289d48acfd0100000058bb04000200000000000000d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d66092db769b010000"
    );
    assert_eq!(
        signed,
        "484b430267baaf722d5f997b9982c8e67238a12a8073e431804fe763cc58cc289d48acfd0100000058bb04000200000000000000d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d66092db769b0100006ea9c7c7337e1aeed8be2a869b042b705f17e2791e0edee555317bd2a7ff072bb13b47ab1ee98cb8ea5a8353dc0191420a797417cc0d9faab29766ef3f724e0f"
    );
    assert_eq!(
        certificate,
        "484b540267baaf722d5f997b9982c8e67238a12a8073e431804fe763cc58cc289d48acfd0100000058bb04000200000000000000d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d66092db769b0100000100000000000000060b05000f967b7b55295c15f8ae24ea64bd93434d8cbf7d615e0b208929d83d3e6ee17ac9831958d69e1ee9f58c71d088cbbdda0ee0ed72f7cbb50b075618cbb75ee80c"
    );
}

/// Administrator `i`'s key: the seed `a0+i` repeated.
fn admin_key(i: u8) -> SigningKey {
    SigningKey::from_bytes(&[0xa0 + i; 32])
}

/// FORMAT.md's configuration update: epoch 1 of network `golden`, one change of each kind that
/// needs no calendar, signed by administrators 1 and 2.
fn update() -> ConfigUpdate {
    let code = |c| BureauCode::new(c).unwrap();
    ConfigUpdate {
        network: NetworkId::from_name("golden"),
        epoch: 1,
        prev: ConfigHash([0xab; 32]),
        time_ms: 1_767_225_600_000,
        changes: vec![
            Change::AddMember {
                code: code(350102),
                name: "新区分局".into(),
                key: SigningKey::from_bytes(&[0x43; 32])
                    .verifying_key()
                    .to_bytes(),
                addresses: vec!["/ip4/10.0.0.5/tcp/4101".into()],
            },
            Change::RotateKey {
                code: code(310104),
                key: SigningKey::from_bytes(&[0x44; 32])
                    .verifying_key()
                    .to_bytes(),
            },
            Change::RevokeKey {
                code: code(330502),
                key: SigningKey::from_bytes(&[0x45; 32])
                    .verifying_key()
                    .to_bytes(),
                from_seq: Seq(7),
            },
            Change::RetireMember {
                code: code(340100),
                from_seq: Seq(12),
                successor: code(310104),
            },
            Change::SetAddresses {
                code: code(310104),
                addresses: vec!["/ip4/10.0.0.1/tcp/4101".into()],
            },
            Change::SetAdministrators {
                keys: vec![
                    admin_key(11).verifying_key().to_bytes(),
                    admin_key(12).verifying_key().to_bytes(),
                    admin_key(13).verifying_key().to_bytes(),
                ],
                threshold: 2,
            },
            Change::SetQuorum { quorum: 3 },
            Change::SetDeadlines(Deadlines {
                answer_working_days: 2,
                registration_working_days: 3,
            }),
        ],
    }
}

#[test]
fn configuration_update_is_pinned() {
    let u = update();
    let mut signed = SignedUpdate::unsigned(u.clone());
    signed.sign(&admin_key(1));
    signed.sign(&admin_key(2));
    let encoded = hex::encode(u.encode());
    let hash = u.hash().to_hex();
    let signed_hex = hex::encode(signed.encode());
    if printing() {
        for k in [1, 2, 11, 12, 13] {
            println!(
                "admin {k} {}",
                hex::encode(admin_key(k).verifying_key().to_bytes())
            );
        }
        for seed in [0x43u8, 0x44, 0x45] {
            println!(
                "key {seed:x} {}",
                hex::encode(
                    SigningKey::from_bytes(&[seed; 32])
                        .verifying_key()
                        .to_bytes()
                )
            );
        }
        println!("update {encoded}\nhash {hash}\nsigned {signed_hex}");
        return;
    }
    assert_eq!(
        encoded,
        "484b550167baaf722d5f997b9982c8e67238a12a8073e431804fe763cc58cc289d48acfd01000000abababababababababababababababababababababababababababababababab00a8da769b010000080000000000000000000000965705000c00000000000000e696b0e58cbae58886e5b18022fc297792f0b6ffc0bfcfdb7edb0c0aa14e025a365ec0e342e86e3829cb74b6010000000000000016000000000000002f6970342f31302e302e302e352f7463702f343130310100000058bb0400d759793bbc13a2819a827c76adb6fba8a49aee007f49f2d0992d99b825ad2c4802000000060b05006355691c178a8ff91007a7478afb955ef7352c63e7b25703984cf78b26e21a56070000000000000003000000843005000c0000000000000058bb04000400000058bb0400010000000000000016000000000000002f6970342f31302e302e302e312f7463702f34313031050000000300000000000000248acbdbaf9e050196de704bea2d68770e519150d103b587dae2d9cad53dd930f9b439834644d493ba526939f77f7cdadf5220486962e808867bac0a513b92b864a08e659c4e7500c83a60e453ee608de74d8cf4437e8a0779b7b1cf20532c8a020000000600000003000000080000000200000003000000"
    );
    assert_eq!(
        hash,
        "afa214e7acf57619c7702ae483f235020efc00353e9cfdefe92843d4a910ead3"
    );
    assert_eq!(
        signed_hex,
        "484b530167baaf722d5f997b9982c8e67238a12a8073e431804fe763cc58cc289d48acfd01000000abababababababababababababababababababababababababababababababab00a8da769b010000080000000000000000000000965705000c00000000000000e696b0e58cbae58886e5b18022fc297792f0b6ffc0bfcfdb7edb0c0aa14e025a365ec0e342e86e3829cb74b6010000000000000016000000000000002f6970342f31302e302e302e352f7463702f343130310100000058bb0400d759793bbc13a2819a827c76adb6fba8a49aee007f49f2d0992d99b825ad2c4802000000060b05006355691c178a8ff91007a7478afb955ef7352c63e7b25703984cf78b26e21a56070000000000000003000000843005000c0000000000000058bb04000400000058bb0400010000000000000016000000000000002f6970342f31302e302e302e312f7463702f34313031050000000300000000000000248acbdbaf9e050196de704bea2d68770e519150d103b587dae2d9cad53dd930f9b439834644d493ba526939f77f7cdadf5220486962e808867bac0a513b92b864a08e659c4e7500c83a60e453ee608de74d8cf4437e8a0779b7b1cf20532c8a020000000600000003000000080000000200000003000000020000000000000065e8f9b0bc6eae124169f0576f97362d295a8cf5f770b45e14357ce647d33eec4bb86a0e0a355220cf076b1255e13fdce9c0e33480f55dd2bed510afb3fc43c35a088d1ab8baea2cf8028adf6fb03f20e1c0cfed45fa96034e40a19941f0c901bc7cbcb5636375fa1d82434d466724d92377f53b980695dd49d26d0ce12205a56d43a4e4e4ce313374ddee321e6c0ba61259b85d619b3f9f258caed4c25079fcb7eadf3f9c59510176fad8b8c3f506cbff11ed2f7cf508532cff03c309960506"
    );
    // What each administrator signed.
    let mut message = DOMAIN_CONFIG_SIGNATURE.to_vec();
    message.extend_from_slice(&u.hash().0);
    assert_eq!(
        message,
        b"hukou-ledger/v1/config-signature\0"
            .iter()
            .chain(&u.hash().0)
            .copied()
            .collect::<Vec<u8>>()
    );
    assert_eq!(u.signing_message(), message);
    assert_eq!(SignedUpdate::decode(&signed.encode()), Ok(signed));
}
