//! The one rule against crafted signatures and keys ("Taming the many EdDSAs"), the reference
//! implementation ed25519-consensus, and itself in batches of every size and position.

use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use proptest::prelude::*;

use super::*;

#[path = "../../tests/support/crafted.rs"]
mod crafted;

const SPECCHECK: &str = include_str!("../../tests/data/ed25519-speccheck.json");

/// Batch sizes around every boundary of [`verify_batch`]: one, two, a chunk and either side of
/// it, the whole batch and one past it.
const SIZES: [usize; 7] = [
    1,
    2,
    BATCH_CHUNK_ITEMS - 1,
    BATCH_CHUNK_ITEMS,
    BATCH_CHUNK_ITEMS + 1,
    BATCH_WHOLE_ITEMS,
    BATCH_WHOLE_ITEMS + 1,
];

fn signing_key(i: usize) -> SigningKey {
    SigningKey::from_bytes(&[i as u8 + 1; 32])
}

fn message(i: usize) -> Vec<u8> {
    format!("entry {i}").into_bytes()
}

/// The verdict of ed25519-consensus, the ZIP-215 reference, on the same bytes.
fn reference(key: &VerifyingKey, message: &[u8], signature: &[u8; 64]) -> bool {
    let Ok(key) = ed25519_consensus::VerificationKey::try_from(key.to_bytes()) else {
        return false;
    };
    key.verify(&ed25519_consensus::Signature::from(*signature), message)
        .is_ok()
}

/// Honest signatures on `message(i)` by four keys in turn, as a pulled batch of four logs holds.
struct Pool {
    keys: Vec<VerifyingKey>,
    messages: Vec<Vec<u8>>,
    signatures: Vec<Signature>,
}

impl Pool {
    fn new(n: usize) -> Pool {
        let signers: Vec<SigningKey> = (0..4).map(signing_key).collect();
        let messages: Vec<Vec<u8>> = (0..n).map(message).collect();
        Pool {
            keys: (0..n).map(|i| signers[i % 4].verifying_key()).collect(),
            signatures: messages
                .iter()
                .enumerate()
                .map(|(i, m)| Signature(signers[i % 4].sign(m).to_bytes()))
                .collect(),
            messages,
        }
    }

    fn items(&self, n: usize) -> Vec<Item<'_>> {
        (0..n)
            .map(|i| Item {
                key: &self.keys[i],
                message: &self.messages[i],
                signature: &self.signatures[i],
            })
            .collect()
    }
}

#[test]
fn speccheck_vectors_get_the_zip215_verdict_alone_in_batches_and_from_the_reference() {
    let vectors = crafted::speccheck(SPECCHECK);
    assert_eq!(vectors.len(), 12);
    let verdicts: Vec<bool> = vectors.iter().map(|v| v.accepted).collect();
    // The table of the vectors' repository (ed25519-zebra's row): ZIP-215 accepts the
    // small-order and mixed-order cases, refuses s >= l and a hash over a reduced R.
    assert_eq!(
        verdicts,
        [
            true, true, true, true, true, true, false, false, false, true, true, true
        ]
    );
    let pool = Pool::new(BATCH_CHUNK_ITEMS + 1);
    for crafted::Vector {
        case,
        key,
        message,
        signature,
        accepted,
    } in &vectors
    {
        let signature = Signature(*signature);
        assert_eq!(verify(key, message, &signature), *accepted, "case {case}");
        assert_eq!(
            reference(key, message, &signature.0),
            *accepted,
            "case {case}"
        );
        for n in [1, 2, BATCH_CHUNK_ITEMS + 1] {
            for at in [0, n / 2, n - 1] {
                let mut items = pool.items(n);
                items[at] = Item {
                    key,
                    message,
                    signature: &signature,
                };
                let mut expected = vec![true; n];
                expected[at] = *accepted;
                assert_eq!(
                    verify_batch(&items),
                    expected,
                    "case {case}, n {n}, at {at}"
                );
            }
        }
    }
    // All twelve in one batch, beside honest ones.
    let mut items = pool.items(BATCH_CHUNK_ITEMS + 1);
    let signatures: Vec<Signature> = vectors.iter().map(|v| Signature(v.signature)).collect();
    let mut expected = vec![true; items.len()];
    for (i, v) in vectors.iter().enumerate() {
        items[5 * i] = Item {
            key: &v.key,
            message: &v.message,
            signature: &signatures[i],
        };
        expected[5 * i] = v.accepted;
    }
    assert_eq!(verify_batch(&items), expected);
}

#[test]
fn crafted_signatures_get_their_verdict_alone_and_from_the_reference() {
    for k in 0..3 {
        let signer = signing_key(k);
        let key = signer.verifying_key();
        let message = message(k);
        let cases = crafted::signatures(&signer, &message);
        // Every family is there: 8 torsion points, ZIP-215's 6 non-canonical encodings of
        // small-order points (each hashed as sent and reduced) and 20 of large-order points,
        // 8 small-order R with s = 0, 2 non-canonical s, R not a point, all zero.
        let count = |prefix: &str| cases.iter().filter(|c| c.name.starts_with(prefix)).count();
        assert_eq!(count("honest"), 1);
        assert_eq!(count("r_plus_torsion_"), 8);
        assert_eq!(count("small_order_r_noncanonical_"), 12);
        assert_eq!(count("noncanonical_r_"), 20);
        assert_eq!(count("small_order_r_s_zero_"), 8);
        assert_eq!(count("s_"), 2);
        assert_eq!(count("r_not_a_point") + count("all_zero"), 2);
        assert_eq!(cases.len(), 1 + 8 + 12 + 20 + 8 + 2 + 2);
        for case in &cases {
            let signature = Signature(case.signature);
            assert_eq!(
                verify(&key, &message, &signature),
                case.accepted,
                "{}",
                case.name
            );
            assert_eq!(
                reference(&key, &message, &case.signature),
                case.accepted,
                "{}: ed25519-consensus disagrees",
                case.name
            );
            assert!(
                !verify(&key, b"another message", &signature),
                "{} verifies another message",
                case.name
            );
        }
    }
}

#[test]
fn crafted_keys_get_their_verdict_and_check_key_names_the_fault() {
    let cases = crafted::keys(b"any message at all");
    let mut kinds = std::collections::BTreeSet::new();
    for case in &cases {
        let signature = Signature(case.signature);
        assert_eq!(
            verify(&case.key, &case.message, &signature),
            case.accepted,
            "{}",
            case.name
        );
        assert_eq!(
            reference(&case.key, &case.message, &case.signature),
            case.accepted,
            "{}: ed25519-consensus disagrees",
            case.name
        );
        let expected = match case.kind {
            crafted::KeyKind::Honest => Ok(()),
            crafted::KeyKind::SmallOrder => Err(KeyFault::SmallOrder),
            crafted::KeyKind::NonCanonical => Err(KeyFault::NonCanonical),
            crafted::KeyKind::MixedOrder => Err(KeyFault::MixedOrder),
        };
        assert_eq!(check_key(&case.key), expected, "{}", case.name);
        kinds.insert(format!("{:?}", case.kind));
    }
    assert_eq!(kinds.len(), 4, "every kind of key is crafted: {kinds:?}");
    // A small-order key verifies the same signature on any message: why check_key refuses it.
    let weak = cases
        .iter()
        .find(|c| c.name == "small_order_key_0")
        .unwrap();
    assert!(verify(
        &weak.key,
        b"anything else",
        &Signature(weak.signature)
    ));
}

/// Every crafted signature, at the first, middle and last place of batches of every size around
/// the chunk boundaries: the batch verdict of every item is its single verdict.
#[test]
fn batch_verdicts_are_the_single_verdicts_at_every_position_and_size() {
    let pool = Pool::new(BATCH_WHOLE_ITEMS + 1);
    let signers: Vec<SigningKey> = (0..4).map(signing_key).collect();
    for n in SIZES {
        let mut places = vec![0, n / 2, n - 1];
        places.dedup();
        for at in places {
            let cases = crafted::signatures(&signers[at % 4], &pool.messages[at]);
            for case in &cases {
                let signature = Signature(case.signature);
                let mut items = pool.items(n);
                items[at].signature = &signature;
                let verdicts = verify_batch(&items);
                assert_eq!(verdicts[at], case.accepted, "{} n {n} at {at}", case.name);
                assert!(
                    verdicts.iter().enumerate().all(|(i, ok)| *ok || i == at),
                    "{} n {n} at {at}: an honest signature refused",
                    case.name
                );
            }
        }
    }
}

/// All crafted signatures of one key in one batch (beside honest ones, two per chunk boundary):
/// each item still gets its single verdict.
#[test]
fn many_crafted_signatures_in_one_batch_get_their_single_verdicts() {
    let n = BATCH_WHOLE_ITEMS + 1;
    let pool = Pool::new(n);
    let signers: Vec<SigningKey> = (0..4).map(signing_key).collect();
    let mut signatures = pool.signatures.clone();
    let mut expected = vec![true; n];
    let mut at = 0;
    for step in 0.. {
        let cases = crafted::signatures(&signers[at % 4], &pool.messages[at]);
        let case = &cases[step % cases.len()];
        signatures[at] = Signature(case.signature);
        expected[at] = case.accepted;
        at += 31 + step % 7;
        if at >= n {
            break;
        }
    }
    let items: Vec<Item<'_>> = (0..n)
        .map(|i| Item {
            key: &pool.keys[i],
            message: &pool.messages[i],
            signature: &signatures[i],
        })
        .collect();
    let single: Vec<bool> = items
        .iter()
        .map(|i| verify(i.key, i.message, i.signature))
        .collect();
    assert_eq!(single, expected);
    assert_eq!(verify_batch(&items), expected);
}

/// The bug this module fixes: ed25519-dalek's batch (cofactorless) accepts or refuses a
/// signature whose R carries a small-order component depending on the rest of the batch, while
/// `verify_strict` always refuses it. The one rule accepts it everywhere.
#[test]
fn cofactorless_batch_verdict_depends_on_the_batch_the_one_rule_does_not() {
    let signer = signing_key(0);
    let key = signer.verifying_key();
    let message = message(0);
    let torsion = crafted::signatures(&signer, &message)
        .into_iter()
        .find(|c| c.name == "r_plus_torsion_4") // R + a point of order 2
        .unwrap();
    let crafted_dalek = ed25519_dalek::Signature::from_bytes(&torsion.signature);
    assert!(key.verify_strict(&message, &crafted_dalek).is_err());
    let mut dalek_verdicts = std::collections::BTreeSet::new();
    for companions in 1..=16 {
        let pool = Pool::new(companions + 1);
        let mut messages: Vec<&[u8]> = vec![&message];
        let mut signatures = vec![crafted_dalek];
        let mut keys = vec![key];
        for i in 1..=companions {
            messages.push(&pool.messages[i]);
            signatures.push(ed25519_dalek::Signature::from_bytes(&pool.signatures[i].0));
            keys.push(pool.keys[i]);
        }
        dalek_verdicts.insert(ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok());

        let ours = Signature(torsion.signature);
        let mut items = pool.items(companions + 1);
        items[0] = Item {
            key: &key,
            message: &message,
            signature: &ours,
        };
        assert_eq!(verify_batch(&items), vec![true; companions + 1]);
    }
    assert_eq!(
        dalek_verdicts.len(),
        2,
        "the cofactorless batch gave one verdict only: {dalek_verdicts:?}"
    );
}

#[test]
fn batch_verdicts_follow_their_items_in_any_order_and_repeat() {
    let pool = Pool::new(BATCH_CHUNK_ITEMS * 2 + 3);
    let signer = signing_key(2);
    let cases = crafted::signatures(&signer, &pool.messages[2]);
    let refused = cases.iter().find(|c| !c.accepted).unwrap();
    let signature = Signature(refused.signature);
    let mut items = pool.items(pool.keys.len());
    items[2].signature = &signature;
    let verdicts = verify_batch(&items);
    assert_eq!(verify_batch(&items), verdicts);
    items.reverse();
    let mut reversed = verify_batch(&items);
    reversed.reverse();
    assert_eq!(reversed, verdicts);
    assert_eq!(verify_batch(&[]), Vec::<bool>::new());
}

#[test]
fn honest_keys_pass_check_key() {
    for i in 0..32 {
        assert_eq!(check_key(&signing_key(i).verifying_key()), Ok(()));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Random batches with crafted signatures at random places: every batch verdict is the
    /// single verdict.
    #[test]
    fn random_batches_agree_with_single_verification(
        n in 1usize..160,
        picks in proptest::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>()), 0..12),
    ) {
        let pool = Pool::new(n);
        let signers: Vec<SigningKey> = (0..4).map(signing_key).collect();
        let mut signatures = pool.signatures.clone();
        for (place, pick) in &picks {
            let at = place.index(n);
            let cases = crafted::signatures(&signers[at % 4], &pool.messages[at]);
            signatures[at] = Signature(pick.get(&cases).signature);
        }
        let items: Vec<Item<'_>> = (0..n)
            .map(|i| Item { key: &pool.keys[i], message: &pool.messages[i], signature: &signatures[i] })
            .collect();
        let single: Vec<bool> = items.iter().map(|i| verify(i.key, i.message, i.signature)).collect();
        prop_assert_eq!(verify_batch(&items), single);
    }
}
