//! A network above the overlay's full mesh (issue 14, "work that follows activity"): 14 real
//! nodes, each connected exactly to its overlay neighbours (`hukou_node::overlay`), none to
//! anyone else while idle; a transfer between two bureaus that are not neighbours completes and
//! becomes final everywhere, its entries reaching every node over the sparse overlay, and the
//! enrolment before it asks the person's arbiter directly (an on-demand connection).

use std::collections::BTreeSet;
use std::time::Duration;

use hukou_node::overlay::{self, FULL_MESH_MAX};
use hukou_tests::{Testnet, citizen_id, wait_until};
use serde_json::{Value, json};

const NODES: usize = 14;
const WAIT: Duration = Duration::from_secs(30);

fn codes_in(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn reference(v: &Value) -> String {
    v["ref"].as_str().expect("ref").to_string()
}

/// Whether node `i` shows the transfer of `permit` with `steps` recorded steps, every one final.
fn transfer_final(net: &Testnet, i: usize, permit: &str, steps: usize) -> bool {
    let (status, t) = net.get(i, &format!("/v1/transfers/{permit}"));
    status == 200
        && t["steps"].as_array().is_some_and(|s| {
            s.iter().filter(|x| x["ref"].is_string()).count() == steps
                && s.iter()
                    .filter(|x| x["ref"].is_string())
                    .all(|x| x["final"] == true)
        })
}

#[test]
fn sparse_overlay_connects_neighbours_only_and_transfers_between_strangers() {
    const { assert!(NODES > FULL_MESH_MAX) };
    let net = Testnet::new(NODES);
    let codes: Vec<u32> = (0..NODES)
        .map(|i| net.code(i).parse().expect("code"))
        .collect();

    // Each node's connections are exactly its overlay neighbours, as computed from the
    // membership alone, and it says so.
    for i in 0..NODES {
        let expected: BTreeSet<String> = overlay::neighbours(&codes, codes[i])
            .iter()
            .map(u32::to_string)
            .collect();
        assert!(expected.len() < NODES - 1, "not a full mesh");
        let h = net.get(i, "/healthz").1;
        assert_eq!(
            codes_in(&h["overlay_neighbors"]),
            expected,
            "{}: {h}",
            net.code(i)
        );
        let ok = wait_until(WAIT, || {
            let h = net.get(i, "/healthz").1;
            codes_in(&h["peers_connected"]) == expected
                && h["connections_open"].as_u64() == Some(expected.len() as u64)
        });
        assert!(
            ok,
            "{} connections: {}",
            net.code(i),
            net.get(i, "/healthz").1
        );
    }

    // Two bureaus that are not neighbours.
    let a = 0;
    let neighbours_of_a = overlay::neighbours(&codes, codes[a]);
    let b = (1..NODES)
        .find(|j| !neighbours_of_a.contains(&codes[*j]))
        .expect("a non-neighbour");
    let person = citizen_id(14_001);
    net.enrol(a, &person);
    let permit = reference(&net.post_until_ok(
        b,
        "/v1/permits",
        &json!({"person": person, "origin": net.code(a), "category": "spouse"}),
        WAIT,
    ));
    let dereg =
        reference(&net.post_until_ok(a, "/v1/deregister", &json!({"permit": permit}), WAIT));
    net.post_until_ok(
        b,
        "/v1/register",
        &json!({"deregistration": dereg, "wait_ms": 5_000}),
        WAIT,
    );
    // Every node holds the transfer, final: the entries reached all 14 over the overlay.
    for i in 0..NODES {
        assert!(
            wait_until(WAIT, || transfer_final(&net, i, &permit, 3)),
            "transfer {permit} not final on {}: {}",
            net.code(i),
            net.get(i, &format!("/v1/transfers/{permit}")).1
        );
    }
    let (a_len, b_len) = (
        net.log_of(a, net.code(a)).expect("a's log").0,
        net.log_of(b, net.code(b)).expect("b's log").0,
    );
    for i in 0..NODES {
        assert_eq!(net.log_of(i, net.code(a)).map(|l| l.0), Some(a_len));
        assert_eq!(net.log_of(i, net.code(b)).map(|l| l.0), Some(b_len));
    }
}
