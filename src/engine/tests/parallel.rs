//! `parallelAttach`: self-contained networks run at once (with the cluster network and each
//! other), within the bound; the first failure kills what runs and everything started is
//! released; results, interface names and network-status stay in plan order.

use serde_json::json;

use super::fakes::{Fake, Gate};
use super::{Case, POD, case, nad};
use crate::txn::State;

/// A pod with `n` macvlan NADs, through the API.
fn pod_with(n: usize, extra: serde_json::Value) -> Case {
    let names: Vec<String> = (1..=n).map(|i| format!("m{i}")).collect();
    let nads: Vec<(&str, serde_json::Value)> = names
        .iter()
        .map(|m| (m.as_str(), nad(m, "macvlan")))
        .collect();
    case(&["bridge"], extra).with_pod(&[("k8s.v1.cni.cncf.io/networks", &names.join(","))], &nads)
}

#[test]
fn every_self_contained_network_runs_at_once_with_the_cluster_network() {
    let c = pod_with(8, json!({"parallelAttach": true, "maxParallelAttach": 9}));
    let fake = Fake {
        gate: Some(Gate::new("ADD", 9)),
        ..Fake::default()
    }
    .watching(&c.store, "c1");
    c.add(&fake, POD).unwrap();
    let calls = fake.take();
    assert_eq!(calls.len(), 9, "{calls:?}");
    // Results and network-status in plan order, whatever order they finished in.
    let rec = c.record().unwrap();
    let ifnames: Vec<&str> = rec.steps.iter().map(|s| s.ifname.as_str()).collect();
    assert_eq!(
        ifnames,
        [
            "eth0", "net1", "net2", "net3", "net4", "net5", "net6", "net7", "net8"
        ]
    );
    assert!(rec.steps.iter().all(|s| s.state == State::Added));
    let status: Vec<serde_json::Value> =
        serde_json::from_str(&c.api().state().statuses[0]).unwrap();
    let names: Vec<&str> = status.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "n0", "ns/m1", "ns/m2", "ns/m3", "ns/m4", "ns/m5", "ns/m6", "ns/m7", "ns/m8"
        ]
    );
    // DEL runs them at once too.
    let del = Fake {
        gate: Some(Gate::new("DEL", 9)),
        ..Fake::default()
    };
    c.del(&del, POD).unwrap();
    assert_eq!(del.take().len(), 9);
    assert!(c.store.ids().is_empty());
}

#[test]
fn the_bound_holds() {
    // With a bound of 3, calls wait until three are in flight together, and never more are.
    let c = pod_with(8, json!({"parallelAttach": true, "maxParallelAttach": 3}));
    let fake = Fake {
        gate: Some(Gate::new("ADD", 3)),
        ..Fake::default()
    };
    c.add(&fake, POD).unwrap();
    assert_eq!(fake.max_in_flight(), 3);
}

#[test]
fn the_first_failure_kills_what_runs_and_releases_everything_started() {
    let c = pod_with(4, json!({"parallelAttach": true}));
    let fake = Fake {
        fail: vec!["ADD net3 macvlan".into()],
        block: vec![
            "ADD eth0 bridge".into(),
            "ADD net1 macvlan".into(),
            "ADD net2 macvlan".into(),
            "ADD net4 macvlan".into(),
        ],
        ..Fake::default()
    };
    let err = c.add(&fake, POD).unwrap_err();
    assert_eq!(err.code(), 999, "{err}");
    assert!(
        err.to_string().contains("injected failure of ADD net3"),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("rolled back cleanly (5 attachment(s)"),
        "{err}"
    );
    let calls = fake.take();
    let mut dels: Vec<&str> = calls
        .iter()
        .filter(|c| c.starts_with("DEL"))
        .map(String::as_str)
        .collect();
    dels.sort_unstable();
    assert_eq!(
        dels,
        [
            "DEL eth0 bridge",
            "DEL net1 macvlan",
            "DEL net2 macvlan",
            "DEL net3 macvlan",
            "DEL net4 macvlan"
        ]
    );
    assert!(c.store.ids().is_empty());
}

#[test]
fn a_chain_waits_for_everything_before_it() {
    // m1 (macvlan) runs with the cluster network; the tuning chain waits for both; m3 waits
    // for the chain.
    let chain =
        json!({"cniVersion":"1.0.0","name":"t","plugins":[{"type":"ptp"},{"type":"tuning"}]});
    let c = case(&["bridge"], json!({"parallelAttach": true})).with_pod(
        &[("k8s.v1.cni.cncf.io/networks", "m1,t,m3")],
        &[
            ("m1", nad("m1", "macvlan")),
            ("t", chain),
            ("m3", nad("m3", "macvlan")),
        ],
    );
    let fake = Fake::default();
    c.add(&fake, POD).unwrap();
    let calls = fake.take();
    let at = |c: &str| calls.iter().position(|x| x == c).unwrap();
    assert!(at("ADD net2 ptp") > at("ADD eth0 bridge"), "{calls:?}");
    assert!(at("ADD net2 ptp") > at("ADD net1 macvlan"), "{calls:?}");
    assert!(at("ADD net3 macvlan") > at("ADD net2 tuning"), "{calls:?}");
    let rec = c.record().unwrap();
    let after: Vec<Vec<usize>> = rec.steps.iter().map(|s| s.after.clone()).collect();
    assert_eq!(after, [vec![], vec![], vec![0, 1], vec![2]]);
    // DEL: m3 first, then the chain (in reverse), then m1 and the cluster network.
    c.del(&fake, POD).unwrap();
    let calls = fake.take();
    let at = |c: &str| calls.iter().position(|x| x == c).unwrap();
    assert!(at("DEL net3 macvlan") < at("DEL net2 tuning"), "{calls:?}");
    assert!(at("DEL net2 ptp") < at("DEL net1 macvlan"), "{calls:?}");
    assert!(at("DEL net2 ptp") < at("DEL eth0 bridge"), "{calls:?}");
}
