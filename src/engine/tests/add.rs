//! ADD's arms: order, each step failing, each rollback step failing, the early cluster network
//! undone, every journal write failing, a crash between any two writes, status and route
//! failures.

use serde_json::json;

use super::fakes::Fake;
use super::{Case, POD, case, nad};
use crate::k8s::client::ApiError;
use crate::txn::{Record, State};

fn strict() -> Case {
    case(&["bridge", "macvlan", "ipvlan"], json!({}))
}

#[test]
fn add_runs_in_order_and_del_in_reverse() {
    for (name, args) in [
        ("no pod", "IgnoreUnknown=1"),
        ("pod, no API access", "K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p"),
    ] {
        let c = strict();
        let fake = Fake::default().watching(&c.store, "c1");
        let out = c.add(&fake, args).unwrap();
        assert_eq!(out["interfaces"][0]["name"], "eth0", "{name}");
        assert_eq!(
            fake.take(),
            ["ADD eth0 bridge", "ADD net1 macvlan", "ADD net2 ipvlan"],
            "{name}"
        );
        let rec = c.record().unwrap();
        assert!(rec.complete, "{name}");
        assert!(rec.steps.iter().all(|s| s.state == State::Added), "{name}");
        assert!(
            c.store.durable("c1") || c.store.writes().len() > 1,
            "{name}"
        );
        c.del(&fake, args).unwrap();
        assert_eq!(
            fake.take(),
            ["DEL net2 ipvlan", "DEL net1 macvlan", "DEL eth0 bridge"],
            "{name}"
        );
        assert!(c.store.ids().is_empty(), "{name}");
    }
}

#[test]
fn failure_at_each_step_rolls_back_everything_started() {
    let rows: &[(&str, &str, &[&str])] = &[
        (
            "first fails",
            "ADD eth0 bridge",
            &["ADD eth0 bridge", "DEL eth0 bridge"],
        ),
        (
            "middle fails",
            "ADD net1 macvlan",
            &[
                "ADD eth0 bridge",
                "ADD net1 macvlan",
                "DEL net1 macvlan",
                "DEL eth0 bridge",
            ],
        ),
        (
            "last fails",
            "ADD net2 ipvlan",
            &[
                "ADD eth0 bridge",
                "ADD net1 macvlan",
                "ADD net2 ipvlan",
                "DEL net2 ipvlan",
                "DEL net1 macvlan",
                "DEL eth0 bridge",
            ],
        ),
    ];
    for (name, fail, want) in rows {
        let c = strict();
        let fake = Fake::failing(&[fail]).watching(&c.store, "c1");
        let err = c.add(&fake, "IgnoreUnknown=1").unwrap_err();
        assert_eq!(err.code(), 999, "{name}: the delegate's code is kept");
        let msg = err.to_string();
        assert!(msg.contains("injected failure"), "{name}: {msg}");
        assert!(msg.contains("rolled back cleanly"), "{name}: {msg}");
        assert_eq!(&fake.take(), want, "{name}");
        assert!(c.store.ids().is_empty(), "{name}: {:?}", c.store.ids());
    }
}

#[test]
fn each_failed_rollback_step_keeps_the_record_for_del() {
    let rows: &[(&str, &[&str], &[&str])] = &[
        (
            "net1's DEL fails",
            &["ADD net2 ipvlan", "DEL net1 macvlan"],
            &["net1"],
        ),
        (
            "eth0's DEL fails",
            &["ADD net2 ipvlan", "DEL eth0 bridge"],
            &["eth0"],
        ),
        (
            "every DEL fails",
            &[
                "ADD net2 ipvlan",
                "DEL net2 ipvlan",
                "DEL net1 macvlan",
                "DEL eth0 bridge",
            ],
            &["eth0", "net1", "net2"],
        ),
    ];
    for (name, fail, left) in rows {
        let c = strict();
        let fake = Fake::failing(fail);
        let err = c.add(&fake, "IgnoreUnknown=1").unwrap_err();
        assert!(
            err.to_string().contains("ROLLBACK INCOMPLETE"),
            "{name}: {err}"
        );
        let rec = c.record().expect("kept");
        assert!(!rec.complete, "{name}");
        let mut stuck: Vec<&str> = rec
            .steps
            .iter()
            .filter(|s| s.state == State::ReleaseFailed)
            .map(|s| s.ifname.as_str())
            .collect();
        stuck.sort_unstable();
        assert_eq!(&stuck, left, "{name}");
        assert!(c.store.durable("c1"), "{name}: the kept record is durable");
        fake.take();
        // The runtime's DEL retries only what is left, and fails again while the plugin does.
        assert!(c.del(&fake, "IgnoreUnknown=1").is_err(), "{name}");
        let retried = fake.take();
        assert_eq!(retried.len(), left.len(), "{name}: {retried:?}");
        // Once the plugin recovers, DEL finishes and removes the record.
        let healed = Fake::default();
        c.del(&healed, "IgnoreUnknown=1").unwrap();
        assert_eq!(healed.take().len(), left.len(), "{name}");
        assert!(c.store.ids().is_empty(), "{name}");
    }
}

#[test]
fn add_twice_is_refused_without_touching_the_first() {
    let c = strict();
    let fake = Fake::default();
    c.add(&fake, "IgnoreUnknown=1").unwrap();
    fake.take();
    let before = c.store.current("c1");
    let err = c.add(&fake, "IgnoreUnknown=1").unwrap_err();
    assert!(err.to_string().contains("already attached"), "{err}");
    assert!(fake.take().is_empty(), "no delegate may run");
    assert_eq!(c.store.current("c1"), before);
}

#[test]
fn an_earlier_failed_rollback_is_finished_before_adding_again() {
    let c = strict();
    c.add(
        &Fake::failing(&["ADD net2 ipvlan", "DEL net1 macvlan"]),
        "IgnoreUnknown=1",
    )
    .unwrap_err();
    let fake = Fake::default();
    c.add(&fake, "IgnoreUnknown=1").unwrap();
    assert_eq!(
        fake.take(),
        [
            "DEL net1 macvlan",
            "ADD eth0 bridge",
            "ADD net1 macvlan",
            "ADD net2 ipvlan"
        ]
    );
}

/// A pod with one NAD (macvlan) and one default network, through the API: the cluster network
/// starts early, the rest joins when the pod is read.
fn with_pod() -> Case {
    case(&["bridge", "ptp"], json!({})).with_pod(
        &[("k8s.v1.cni.cncf.io/networks", "a")],
        &[("a", nad("a", "macvlan"))],
    )
}

#[test]
fn a_pod_gets_its_networks_and_its_status() {
    let c = with_pod();
    let fake = Fake::default().watching(&c.store, "c1");
    c.add(&fake, POD).unwrap();
    assert_eq!(
        fake.take(),
        ["ADD eth0 bridge", "ADD net1 ptp", "ADD net2 macvlan"]
    );
    let api = c.api().state();
    assert_eq!(api.requests, ["GET pod ns/p", "GET nad ns/a", "PATCH ns/p"]);
    let status: Vec<serde_json::Value> = serde_json::from_str(&api.statuses[0]).unwrap();
    let names: Vec<&str> = status.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["n0", "n1", "ns/a"]);
    assert_eq!(status[0]["default"], true);
    let rec = c.record().unwrap();
    assert!(rec.complete);
    assert_eq!(rec.pod.as_ref().map(|p| p.name.as_str()), Some("p"));
    assert!(c.store.durable("c1") || c.store.writes().len() > 2);
}

#[test]
fn the_early_cluster_network_is_undone_when_the_pod_overrides_it() {
    let c = case(&["bridge"], json!({})).with_pod(
        &[("v1.multus-cni.io/default-network", "other")],
        &[("other", nad("other", "macvlan"))],
    );
    let fake = Fake::default().watching(&c.store, "c1");
    c.add(&fake, POD).unwrap();
    assert_eq!(
        fake.take(),
        ["ADD eth0 bridge", "DEL eth0 bridge", "ADD eth0 macvlan"]
    );
    let rec = c.record().unwrap();
    assert_eq!(rec.steps.len(), 1);
    assert_eq!(rec.steps[0].network, "ns/other");
}

#[test]
fn a_failed_resolution_undoes_the_early_cluster_network() {
    let unavailable = ApiError::Unavailable {
        what: "GET pod ns/p".into(),
        attempts: 1,
        elapsed_ms: 1,
        last: "refused".into(),
    };
    type Setup = fn(&Case);
    let rows: Vec<(&str, Setup, u32, &str)> = vec![
        (
            "pod not found",
            |c| {
                c.api().state().pods.clear();
            },
            11,
            "pod ns/p not found",
        ),
        (
            "NAD not found",
            |c| {
                c.api().state().nads.clear();
            },
            7,
            "ns/a: not found",
        ),
        (
            "invalid annotation",
            |c| {
                c.api()
                    .put_pod("ns", "p", "u1", &[("k8s.v1.cni.cncf.io/networks", "a@")])
            },
            7,
            "k8s.v1.cni.cncf.io/networks",
        ),
        (
            "pod replaced",
            |c| c.api().put_pod("ns", "p", "u2", &[]),
            7,
            "the pod was replaced",
        ),
    ];
    for (name, setup, code, frag) in rows {
        let c = with_pod();
        setup(&c);
        let fake = Fake::default().watching(&c.store, "c1");
        let err = c.add(&fake, POD).unwrap_err();
        assert_eq!(err.code(), code, "{name}: {err}");
        assert!(err.to_string().contains(frag), "{name}: {err}");
        assert!(
            err.to_string().contains("rolled back cleanly"),
            "{name}: {err}"
        );
        assert_eq!(
            fake.take(),
            ["ADD eth0 bridge", "DEL eth0 bridge"],
            "{name}"
        );
        assert!(c.store.ids().is_empty(), "{name}");
        assert!(
            c.api().state().statuses.is_empty(),
            "{name}: no status written"
        );
    }
    let c = with_pod();
    c.api().state().down = Some(unavailable);
    let fake = Fake::default();
    let err = c.add(&fake, POD).unwrap_err();
    assert_eq!(err.code(), 11, "API down: {err}");
    assert_eq!(fake.take(), ["ADD eth0 bridge", "DEL eth0 bridge"]);
    assert!(c.store.ids().is_empty());
}

#[test]
fn a_cluster_network_failing_while_the_pod_is_read_rolls_back_alone() {
    let c = with_pod();
    let fake = Fake::failing(&["ADD eth0 bridge"]);
    let err = c.add(&fake, POD).unwrap_err();
    assert_eq!(err.code(), 999);
    assert_eq!(fake.take(), ["ADD eth0 bridge", "DEL eth0 bridge"]);
    assert!(c.store.ids().is_empty());
}

#[test]
fn every_journal_write_failing_rolls_back_what_started() {
    // Each write of an ADD failing in turn (how many an ADD makes depends on which outcomes
    // arrive together), until the ADD makes fewer writes than the one that fails.
    for n in 1.. {
        assert!(n < 20, "an ADD of three networks never needs {n} writes");
        let c = with_pod();
        c.store.fail_write(n);
        let fake = Fake::default().watching(&c.store, "c1");
        let err = match c.add(&fake, POD) {
            Ok(_) => {
                assert!(n > 3, "write {n} is always made");
                break;
            }
            Err(e) => e,
        };
        assert_eq!(err.code(), 5, "write {n}: {err}");
        let calls = fake.take();
        let adds: Vec<&String> = calls.iter().filter(|c| c.starts_with("ADD")).collect();
        let dels: Vec<String> = calls
            .iter()
            .filter(|c| c.starts_with("DEL"))
            .cloned()
            .collect();
        let mut undone: Vec<String> = adds.iter().map(|a| a.replacen("ADD", "DEL", 1)).collect();
        undone.reverse();
        assert_eq!(
            dels, undone,
            "write {n}: everything started is released, in reverse"
        );
        if n == 1 {
            assert!(adds.is_empty(), "nothing starts before the first write");
        }
        assert!(c.store.ids().is_empty(), "write {n}: {:?}", c.store.ids());
        // Only the complete record is written beside the status PATCH.
        if !c.api().state().statuses.is_empty() {
            assert_eq!(adds.len(), 3, "write {n}");
        }
    }
}

#[test]
fn a_crash_between_any_two_writes_leaves_a_record_del_cleans_up() {
    let c = with_pod();
    c.add(&Fake::default().watching(&c.store, "c1"), POD)
        .unwrap();
    let writes = c.store.writes();
    for (k, (_, line)) in writes.iter().enumerate() {
        // The node as a crash right after write k leaves it.
        let crashed = with_pod();
        crashed.store.put("c1", line);
        let named: Vec<String> = Record::decode(line)
            .unwrap()
            .steps
            .iter()
            .map(|s| s.ifname.clone())
            .collect();
        let fake = Fake::default();
        crashed.del(&fake, POD).unwrap();
        let mut released: Vec<String> = fake
            .take()
            .iter()
            .map(|c| c.split(' ').nth(1).unwrap().to_string())
            .collect();
        released.sort();
        let mut want = named.clone();
        want.sort();
        assert_eq!(released, want, "crash after write {}", k + 1);
        assert!(
            crashed.store.ids().is_empty(),
            "crash after write {}",
            k + 1
        );
    }
}

#[test]
fn a_failed_status_write_rolls_back_and_asks_for_a_retry() {
    let c = with_pod();
    c.api().state().patch_error = Some(ApiError::Status {
        what: "PATCH pod ns/p status".into(),
        code: 409,
        message: "conflict".into(),
    });
    let fake = Fake::default();
    let err = c.add(&fake, POD).unwrap_err();
    assert_eq!(err.code(), 11, "{err}");
    assert!(err.to_string().contains("rolled back cleanly"), "{err}");
    let dels: Vec<String> = fake
        .take()
        .into_iter()
        .filter(|c| c.starts_with("DEL"))
        .collect();
    assert_eq!(
        dels,
        ["DEL net2 macvlan", "DEL net1 ptp", "DEL eth0 bridge"]
    );
    assert!(c.store.ids().is_empty());
}

#[test]
fn default_route_moves_and_its_failure_rolls_back() {
    let c = with_pod();
    c.api().put_pod(
        "ns",
        "p",
        "u1",
        &[(
            "k8s.v1.cni.cncf.io/networks",
            r#"[{"name":"a","default-route":["10.9.0.1"]}]"#,
        )],
    );
    c.add(&Fake::default(), POD).unwrap();
    assert_eq!(
        *c.net.routes.lock().unwrap(),
        [("10.9.0.1".parse().unwrap(), "net2".to_string())]
    );
    let mut failing = with_pod();
    failing.net.route_error = true;
    failing.api().put_pod(
        "ns",
        "p",
        "u1",
        &[(
            "k8s.v1.cni.cncf.io/networks",
            r#"[{"name":"a","default-route":["10.9.0.1"]}]"#,
        )],
    );
    let err = failing.add(&Fake::default(), POD).unwrap_err();
    assert_eq!(err.code(), 5, "{err}");
    assert!(
        err.to_string()
            .contains("default-route via 10.9.0.1 on net2"),
        "{err}"
    );
    assert!(failing.store.ids().is_empty());
}

#[test]
fn a_netns_that_is_not_a_namespace_is_refused_before_anything_runs() {
    for (name, netns) in [("a regular file", "/file/x"), ("missing", "/gone/x")] {
        let c = strict();
        let fake = Fake::default();
        let req = crate::cni::env::Request {
            netns: netns.into(),
            ..super::req(crate::cni::env::Command::Add, "IgnoreUnknown=1")
        };
        let err = c.run(&fake, &req, |e| e.add()).unwrap_err();
        assert_eq!(err.code(), 4, "{name}: {err}");
        assert!(err.to_string().contains("CNI_NETNS"), "{name}: {err}");
        assert!(fake.take().is_empty(), "{name}");
        assert!(c.store.ids().is_empty(), "{name}");
    }
}

#[test]
fn bad_input_leaves_no_record_and_runs_nothing() {
    let rows: Vec<(&str, Case, &str)> = vec![
        (
            "delegates[0] runs plexus, with a pod",
            case(&["plexus"], json!({})),
            POD,
        ),
        (
            "delegates[0] runs plexus, no pod",
            case(&["plexus"], json!({})),
            "",
        ),
        (
            "a default network that does not resolve",
            case(
                &["bridge"],
                json!({"defaultNetworks": ["/nonexistent.conf"]}),
            ),
            POD,
        ),
        (
            "hostile pod name",
            case(&["bridge"], json!({})),
            "K8S_POD_NAMESPACE=ns;K8S_POD_NAME=../x",
        ),
    ];
    for (name, c, args) in rows {
        let fake = Fake::default();
        let err = c.add(&fake, args).unwrap_err();
        assert!(matches!(err.code(), 4 | 7), "{name}: {err}");
        assert!(fake.take().is_empty(), "{name}");
        assert!(c.store.ids().is_empty(), "{name}");
    }
}
