//! A full transfer between Shanghai Xuhui (310104, origin) and Huzhou Wuxing (330502,
//! destination), with Hefei (340100) replicating and answering look-ups it took no part in.

use std::time::Duration;

use hukou_tests::{Testnet, citizen_id, wait_until};
use serde_json::{Value, json};

const ORIGIN: usize = 0; // 310104
const DESTINATION: usize = 1; // 330502
const BYSTANDER: usize = 2; // 340100
const WAIT: Duration = Duration::from_secs(20);

fn refs_in(v: &Value, list: &str, field: &str) -> Vec<String> {
    v[list]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x[field].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn transfer_between_two_bureaus_is_seen_by_a_third() {
    let net = Testnet::new(3);
    assert_eq!(
        [net.code(ORIGIN), net.code(DESTINATION), net.code(BYSTANDER)],
        ["310104", "330502", "340100"]
    );
    let person = citizen_id(1);

    // The person is registered in Xuhui.
    let enrolled = net.enrol(ORIGIN, &person);

    // Wait until the destination knows the person is registered at the origin: it will only be
    // able to refer to it then (the permit itself only needs the origin to be a member).
    assert!(
        wait_until(WAIT, || {
            net.post(DESTINATION, "/v1/person", &json!({"person": person}))
                .1["registered_at"]
                == "310104"
        }),
        "the enrolment {enrolled} did not reach 330502"
    );

    // Huzhou grants a permit to move in (spouse), naming Xuhui as origin.
    let permit = net.post_ok(
        DESTINATION,
        "/v1/permits",
        &json!({"person": person, "origin": "310104", "category": "spouse"}),
    );
    let permit_ref = permit["ref"].as_str().expect("permit ref").to_string();
    assert!(permit_ref.starts_with("330502:"), "{permit}");

    // The permit appears in Xuhui's inbox.
    assert!(
        wait_until(WAIT, || {
            let (_, inbox) = net.get(ORIGIN, "/v1/inbox");
            refs_in(&inbox, "permits_awaiting_removal", "permit").contains(&permit_ref)
        }),
        "permit {permit_ref} never reached 310104's inbox: {}",
        net.get(ORIGIN, "/v1/inbox").1
    );

    // Xuhui removes the person.
    let dereg = net.post_ok(ORIGIN, "/v1/deregister", &json!({"permit": permit_ref}));
    let dereg_ref = dereg["ref"]
        .as_str()
        .expect("deregistration ref")
        .to_string();
    assert!(dereg_ref.starts_with("310104:"), "{dereg}");

    // The removal appears in Huzhou's inbox (final there, where the node reports finality: a
    // destination registers only against a final removal); Huzhou registers the person.
    assert!(
        wait_until(WAIT, || {
            let (_, inbox) = net.get(DESTINATION, "/v1/inbox");
            inbox["removals_awaiting_registration"]
                .as_array()
                .is_some_and(|a| {
                    a.iter().any(|d| {
                        d["deregistration"] == dereg_ref.as_str()
                            && (d["final"].is_null() || d["final"] == true)
                    })
                })
        }),
        "deregistration {dereg_ref} never reached 330502's inbox: {}",
        net.get(DESTINATION, "/v1/inbox").1
    );
    let reg = net.post_ok(
        DESTINATION,
        "/v1/register",
        &json!({"deregistration": dereg_ref}),
    );
    let reg_ref = reg["ref"].as_str().expect("registration ref").to_string();
    assert!(reg_ref.starts_with("330502:"), "{reg}");

    // Hefei, which did nothing, knows where the person lives ...
    assert!(
        wait_until(WAIT, || {
            net.post(BYSTANDER, "/v1/person", &json!({"person": person}))
                .1["registered_at"]
                == "330502"
        }),
        "340100 does not see the person registered at 330502: {}",
        net.post(BYSTANDER, "/v1/person", &json!({"person": person}))
            .1
    );
    let (status, shown) = net.post(BYSTANDER, "/v1/person", &json!({"person": person}));
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["duplicate"], false, "{shown}");
    assert_eq!(shown["in_transit"], json!([]), "{shown}");

    // ... and the transfer's progress.
    let (status, transfer) = net.get(BYSTANDER, &format!("/v1/transfers/{permit_ref}"));
    assert_eq!(status, 200, "{transfer}");
    assert_eq!(transfer["status"], "registered", "{transfer}");
    assert_eq!(transfer["origin"], "310104", "{transfer}");
    assert_eq!(transfer["destination"], "330502", "{transfer}");
    let steps = transfer["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 3, "{transfer}");
    let step_refs: Vec<&str> = steps.iter().filter_map(|s| s["ref"].as_str()).collect();
    assert_eq!(
        step_refs,
        [permit_ref.as_str(), dereg_ref.as_str(), reg_ref.as_str()],
        "{transfer}"
    );

    // Every node holds the same three logs: same lengths, same Merkle roots. The enrolment
    // consumed a claim the person's arbiter wrote in its own log: one more entry there.
    let arbiter = net.arbiter_of(&person);
    let expected = [("310104", 2), ("330502", 2), ("340100", 0)]
        .map(|(code, len)| (code, len + u64::from(code == arbiter)));
    let agree = || {
        let views: Vec<_> = (0..3).map(|i| net.logs(i)).collect();
        views.iter().all(|v| v == &views[0])
            && expected
                .iter()
                .all(|(code, len)| views[0].iter().any(|(c, l, _)| c == code && l == len))
    };
    assert!(
        wait_until(WAIT, agree),
        "logs differ: {:?}",
        (0..3).map(|i| net.logs(i)).collect::<Vec<_>>()
    );
}
