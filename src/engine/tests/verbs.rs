//! CHECK, GC and STATUS.

use serde_json::{Value, json};

use super::fakes::{Fake, FakeCluster};
use super::{Case, case, nad, req};
use crate::cni::env::{Command, Request};
use crate::engine::hotplug::status_of;
use crate::txn::State;
use crate::txn::record::sample::{self, STATES};

#[test]
fn check_looks_in_the_pod_then_asks_each_delegate() {
    let mut c = case(&["bridge", "macvlan"], json!({}));
    let fake = Fake::default();
    c.add(&fake, "IgnoreUnknown=1").unwrap();
    fake.take();
    let check = req(Command::Check, "IgnoreUnknown=1");
    c.run(&fake, &check, |e| e.check()).unwrap();
    assert_eq!(fake.take(), ["CHECK eth0 bridge", "CHECK net1 macvlan"]);
    c.net.missing = vec!["net1".into()];
    let err = c.run(&fake, &check, |e| e.check()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "CHECK of network \"n1\" (interface net1) failed: the interface is missing from the pod"
    );
    assert!(
        fake.take().is_empty(),
        "no delegate is asked when the pod is wrong"
    );
    let unknown = Request {
        container_id: "nope".into(),
        ..check
    };
    let err = c.run(&fake, &unknown, |e| e.check()).unwrap_err();
    assert_eq!(err.code(), 3);
    assert!(c.store.current("nope").is_none());
}

#[test]
fn check_and_network_status_take_only_attached_steps() {
    // Pod ns/p's complete record: eth0 added, net1 in each state (with the result its ADD
    // gave). Only an added net1 is listed, looked at in the pod and CHECKed by its delegate.
    let check = req(Command::Check, "IgnoreUnknown=1");
    for state in STATES {
        let mut c = case(&["bridge"], json!({}));
        let rec = sample::record("c1", "/run/netns/x", true, state);
        c.store.put("c1", &rec.encode().unwrap());
        let attached = state == State::Added;
        let listed: Vec<Option<String>> =
            status_of(&rec).into_iter().map(|e| e.interface).collect();
        let mut want = vec![Some("eth0".to_string())];
        let mut calls = vec!["CHECK eth0 bridge"];
        if attached {
            want.push(Some("net1".into()));
            calls.push("CHECK net1 bridge");
        }
        assert_eq!(listed, want, "network-status with net1 {state:?}");
        let fake = Fake::default();
        c.run(&fake, &check, |e| e.check())
            .unwrap_or_else(|e| panic!("CHECK with net1 {state:?}: {e}"));
        assert_eq!(fake.take(), calls, "delegates CHECKed with net1 {state:?}");
        // net1's interface gone from the pod fails CHECK only when net1 is attached.
        c.net.missing = vec!["net1".into()];
        let r = c.run(&fake, &check, |e| e.check());
        match (attached, r) {
            (true, Err(e)) => assert!(e.to_string().contains("interface net1"), "{e}"),
            (false, Ok(())) => {}
            (_, r) => panic!("CHECK with net1 {state:?} missing: {r:?}"),
        }
    }
}

#[test]
fn gc_releases_only_containers_not_listed() {
    let mut c = case(&["bridge", "macvlan", "ipvlan"], json!({}));
    let fake = Fake::default();
    for id in ["keep", "drop"] {
        let add = Request {
            container_id: id.into(),
            ..req(Command::Add, "IgnoreUnknown=1")
        };
        c.run(&fake, &add, |e| e.add()).unwrap();
    }
    fake.take();
    c.store.put("torn", b"garbage");
    c.cfg.raw["cni.dev/valid-attachments"] = json!([{"containerID":"keep","ifname":"eth0"}]);
    let gc = Request {
        container_id: String::new(),
        ..req(Command::Gc, "")
    };
    c.run(&fake, &gc, |e| e.gc()).unwrap();
    let calls = fake.take_calls();
    let what: Vec<&str> = calls.iter().map(|c| c.what.as_str()).collect();
    assert_eq!(
        what,
        [
            "DEL net2 ipvlan",
            "DEL net1 macvlan",
            "DEL eth0 bridge",
            "DEL net2 ipvlan",
            "DEL net1 macvlan",
            "DEL eth0 bridge"
        ],
        "drop's record, then what the configuration gives the torn one"
    );
    assert_eq!(c.store.ids(), ["keep"]);
    assert_eq!(c.store.quarantined().len(), 1);
    // Without a valid list nothing is released.
    c.cfg.raw = Value::Object(Default::default());
    let err = c.run(&fake, &gc, |e| e.gc()).unwrap_err();
    assert_eq!(err.code(), 7);
    assert!(fake.take().is_empty());
}

fn status(c: &Case) -> Result<(), crate::error::Error> {
    let r = Request {
        container_id: String::new(),
        netns: String::new(),
        ifname: String::new(),
        ..req(Command::Status, "")
    };
    c.run(&Fake::default(), &r, |e| e.status())
}

#[test]
fn status_resolves_only_the_cluster_network() {
    // A NAD cluster network read through the API, and default networks that are NADs too: ready.
    let mut c = case(
        &[],
        json!({"clusterNetwork": "flannel", "defaultNetworks": ["other/storage"],
               "cniVersion": "1.1.0"}),
    );
    let api = FakeCluster::default();
    api.put_nad("kube-system", "flannel", nad("flannel", "bridge"));
    c.cluster = Some(api);
    status(&c).unwrap();
    assert_eq!(
        c.api().state().requests,
        ["GET nad kube-system/flannel"],
        "nothing but the cluster network is resolved"
    );
    // Unreachable API server: not ready (50), which is then true.
    c.api().state().down = Some(crate::k8s::client::ApiError::Unavailable {
        what: "GET".into(),
        attempts: 1,
        elapsed_ms: 1,
        last: "refused".into(),
    });
    assert_eq!(status(&c).unwrap_err().code(), 50);
    // No API access at all: not ready either.
    c.cluster = None;
    assert_eq!(status(&c).unwrap_err().code(), 50);
    // A cluster network on disk needs no API.
    let disk = case(&["bridge"], json!({"defaultNetworks": ["other/storage"]}));
    status(&disk).unwrap();
}
