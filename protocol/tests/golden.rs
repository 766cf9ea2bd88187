//! Golden bytes: the canonical encoding, hashes and signatures of fixed entries are pinned, so a
//! change in bincode, serde derive order or a field type fails here, not on the network.

use ed25519_dalek::SigningKey;
use hukou_protocol::entry::{Body, Entry, Placement};
use hukou_protocol::{
    BureauCode, Category, Digest, EntryHash, EntryRef, HouseholdId, NetworkId, PersonTag, Relation,
    Seq, SignedEntry,
};

fn entries() -> Vec<Entry> {
    let network = NetworkId::from_name("golden");
    let sh = BureauCode::new(310104).unwrap();
    let hz = BureauCode::new(330502).unwrap();
    let person = PersonTag([0x11; 32]);
    vec![
        Entry {
            network,
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
            },
        },
        Entry {
            network,
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
    ]
}

const GOLDEN: [(&str, &str); 2] = [
    (
        // Enrol.
        "8a86eb0785621fce4df4325f82aecf23026783aa07fb26021385f60bed69ddef",
        "484b450167baaf722d5f997b9982c8e67238a12a8073e431804fe763cc58cc289d48acfd58bb04000000000000000000000000000000000000000000000000000000000000000000000000000000000000a8da769b0100000000000011111111111111111111111111111111111111111111111111111111111111110100000000000000000000007d993c873b1a688cc9b684ca63ee723e18d8cf9f22bc10afc4a46bc4a87d5802c52a224fa17112f77449492d67f2c1b0b1baea71fd650e504169cc00e3517d0f",
    ),
    (
        // Permit.
        "da2f6236ec096ec66a6d1103bb45ff464ef21ba47f24ae7d42b5ac3bb4b7b262",
        "484b450167baaf722d5f997b9982c8e67238a12a8073e431804fe763cc58cc289d48acfd060b05000700000000000000222222222222222222222222222222222222222222222222222222222222222201a8da769b01000002000000111111111111111111111111111111111111111111111111111111111111111158bb0400000000000008d9449c01000033333333333333333333333333333333333333333333333333333333333333330158bb0400030000000000000044444444444444444444444444444444444444444444444444444444444444445655493c37f0552a680d3fa6afc6c71c928c6e3359aadea34584bd82f26658dc8b0e77cfffdcd7e3adf4cb07d694df1ef2548f509d3b30fc8ca0091afdd1e305",
    ),
];

#[test]
fn canonical_encoding_hash_and_signature_are_pinned() {
    let key = SigningKey::from_bytes(&[0x42; 32]);
    for (entry, (hash, signed)) in entries().into_iter().zip(GOLDEN) {
        let s = entry.clone().sign(&key);
        if std::env::var("HUKOU_PRINT_GOLDEN").is_ok() {
            println!("{}\n{}", s.hash(), hex::encode(s.encode()));
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
