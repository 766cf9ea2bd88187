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
    ]
}

const GOLDEN: [(&str, &str); 4] = [
    (
        // Enrol.
        "269d50563f02ef594d3756008e40e4c65400cd54aff941f2f2b2c70d3ffa5500",
        "484b450167baaf722d5f997b9982c8e67238a12a8073e431804fe763cc58cc289d48acfd58bb04000000000000000000000000000000000000000000000000000000000000000000000000000000000000a8da769b010000000000001111111111111111111111111111111111111111111111111111111111111111010000000000000000000000060b050005000000000000005555555555555555555555555555555555555555555555555555555555555555fa50fcee584e18f46f8378042a96c1b1e00b7ca355ea4c28bf09dbf7d5e437f83ae0e5699625d5c5e23e47e0b1eca06d75d7f50fc6d822800e797380cbf69a04",
    ),
    (
        // Permit.
        "da2f6236ec096ec66a6d1103bb45ff464ef21ba47f24ae7d42b5ac3bb4b7b262",
        "484b450167baaf722d5f997b9982c8e67238a12a8073e431804fe763cc58cc289d48acfd060b05000700000000000000222222222222222222222222222222222222222222222222222222222222222201a8da769b01000002000000111111111111111111111111111111111111111111111111111111111111111158bb0400000000000008d9449c01000033333333333333333333333333333333333333333333333333333333333333330158bb0400030000000000000044444444444444444444444444444444444444444444444444444444444444445655493c37f0552a680d3fa6afc6c71c928c6e3359aadea34584bd82f26658dc8b0e77cfffdcd7e3adf4cb07d694df1ef2548f509d3b30fc8ca0091afdd1e305",
    ),
    (
        // Claim.
        "da1e00d9bc6352f30456dc4c998c973f06290b24045b2cfa3597feda6048c706",
        "484b450167baaf722d5f997b9982c8e67238a12a8073e431804fe763cc58cc289d48acfd060b05000500000000000000666666666666666666666666666666666666666666666666666666666666666602a8da769b01000009000000111111111111111111111111111111111111111111111111111111111111111158bb040000b3b388c4032f4eeaf2bd612690e8f9019d791addf39b164b629b9956cb3e258e09cdbf6f229c37839f9ab097d986d3ba12ec3006b1c7e0a4eaf7d78f8e20750a",
    ),
    (
        // Birth.
        "325fb5a9862f91bf5fbd590361023b6d28fc24b36a393f5fe647161df198d6c0",
        "484b450167baaf722d5f997b9982c8e67238a12a8073e431804fe763cc58cc289d48acfd58bb04000900000000000000777777777777777777777777777777777777777777777777777777777777777703a8da769b010000010000001111111111111111111111111111111111111111111111111111111111111111020000000000000002000000060b0500060000000000000088888888888888888888888888888888888888888888888888888888888888885f023501a9e7a5502f87a7426ee3c660fa45566c4305c0cbf010fd35faa30a29e0864e60d25151fa6794d554d3df3e22ed2bc7cd7172fdd1ccb861fe8b43201427510807",
    ),
];

#[test]
fn canonical_encoding_hash_and_signature_are_pinned() {
    let key = SigningKey::from_bytes(&[0x42; 32]);
    for (entry, (hash, signed)) in entries().into_iter().zip(GOLDEN) {
        let s = entry.clone().sign(&key);
        if std::env::var("HUKOU_PRINT_GOLDEN").is_ok() {
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
