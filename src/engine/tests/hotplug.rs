//! Hot-plug over the fakes: networks added, removed and swapped on a running pod, a failing
//! addition rolled back, an interrupted pass finished, nothing done twice.

use std::collections::BTreeMap;

use serde_json::json;

use super::fakes::Fake;
use super::{Case, POD, case, nad};
use crate::engine::hotplug::{Outcome, request_for};
use crate::error::Error;
use crate::txn::{Record, State};

const NETWORKS: &str = "k8s.v1.cni.cncf.io/networks";

/// A pod with a default network (ptp on net1) and, through the API, NADs a, b and c.
fn running(annotation: &str) -> Case {
    let c = case(&["bridge", "ptp"], json!({})).with_pod(
        &[(NETWORKS, annotation)],
        &[
            ("a", nad("a", "macvlan")),
            ("b", nad("b", "macvlan")),
            ("c", nad("c", "ipvlan")),
        ],
    );
    c.add(&Fake::default(), POD).unwrap();
    c
}

fn hotplug(c: &Case, exec: &Fake, annotation: &str) -> Result<Outcome, Error> {
    let rec = c.record().expect("a record");
    let req = request_for(&rec).unwrap();
    let ann: BTreeMap<String, String> = [(NETWORKS.to_string(), annotation.to_string())].into();
    c.api().put_pod("ns", "p", "u1", &[(NETWORKS, annotation)]);
    c.run(exec, &req, |e| e.hotplug(&ann, false))
}

fn interfaces(rec: &Record) -> Vec<(String, String)> {
    rec.steps
        .iter()
        .map(|s| (s.network.clone(), s.ifname.clone()))
        .collect()
}

fn pair(n: &str, i: &str) -> (String, String) {
    (n.to_string(), i.to_string())
}

#[test]
fn networks_come_and_go_without_renaming_the_others() {
    let c = running("a,b");
    let fake = Fake::default().watching(&c.store, "c1");
    // Remove a: b keeps net3.
    let out = hotplug(&c, &fake, "b").unwrap();
    assert_eq!(fake.take(), ["DEL net2 macvlan"]);
    assert_eq!(out.removed, [pair("ns/a", "net2")]);
    assert_eq!(
        interfaces(&c.record().unwrap()),
        [pair("n0", "eth0"), pair("n1", "net1"), pair("ns/b", "net3")]
    );
    // Add c (no interface given): the lowest free name, net2.
    let out = hotplug(&c, &fake, "b,c").unwrap();
    assert_eq!(fake.take(), ["ADD net2 ipvlan"]);
    assert_eq!(out.added, [pair("ns/c", "net2")]);
    let rec = c.record().unwrap();
    assert!(rec.complete);
    assert!(rec.steps.iter().all(|s| s.state == State::Added));
    // One network-status per change, listing the new set.
    let last = c.api().state().statuses.last().cloned().unwrap();
    let names: Vec<String> = serde_json::from_str::<Vec<serde_json::Value>>(&last)
        .unwrap()
        .iter()
        .map(|s| format!("{}@{}", s["name"], s["interface"]))
        .collect();
    assert_eq!(
        names,
        [
            r#""n0"@"eth0""#,
            r#""n1"@"net1""#,
            r#""ns/b"@"net3""#,
            r#""ns/c"@"net2""#
        ]
    );
    // The same annotation again: nothing to do, nothing written.
    let writes = c.store.writes().len();
    let patches = c.api().state().statuses.len();
    let out = hotplug(&c, &fake, "b,c").unwrap();
    assert!(!out.changed());
    assert!(fake.take().is_empty());
    assert_eq!(c.store.writes().len(), writes);
    assert_eq!(c.api().state().statuses.len(), patches);
    // The pod's DEL releases everything the record now holds.
    c.del(&fake, POD).unwrap();
    assert_eq!(
        fake.take(),
        [
            "DEL net2 ipvlan",
            "DEL net3 macvlan",
            "DEL net1 ptp",
            "DEL eth0 bridge"
        ]
    );
}

#[test]
fn swapping_the_network_behind_an_interface_is_a_removal_and_an_addition() {
    let c = running("a@data0");
    let fake = Fake::default();
    let out = hotplug(&c, &fake, "b@data0").unwrap();
    assert_eq!(fake.take(), ["DEL data0 macvlan", "ADD data0 macvlan"]);
    assert_eq!(out.removed, [pair("ns/a", "data0")]);
    assert_eq!(out.added, [pair("ns/b", "data0")]);
}

#[test]
fn a_pod_created_without_the_annotation_gets_networks_too() {
    let c = running("");
    let fake = Fake::default();
    let out = hotplug(&c, &fake, "a").unwrap();
    assert_eq!(out.added, [pair("ns/a", "net2")]);
    assert_eq!(fake.take(), ["ADD net2 macvlan"]);
}

#[test]
fn a_failing_addition_leaves_the_pod_as_it_was() {
    let c = running("a");
    let before = interfaces(&c.record().unwrap());
    // a keeps net2; b gets net3 and c net4; c fails: both new ones are rolled back, in reverse.
    let fake = Fake::failing(&["ADD net4 ipvlan"]);
    let out = hotplug(&c, &fake, "a,b,c").unwrap();
    assert_eq!(
        fake.take(),
        [
            "ADD net3 macvlan",
            "ADD net4 ipvlan",
            "DEL net4 ipvlan",
            "DEL net3 macvlan"
        ]
    );
    let failed = out.failed.expect("the failure is reported").to_string();
    assert!(failed.contains("injected failure of ADD net4"), "{failed}");
    assert!(out.added.is_empty());
    assert!(!out.status_written);
    assert_eq!(interfaces(&c.record().unwrap()), before);
    assert!(c.record().unwrap().complete);
}

#[test]
fn an_interrupted_pass_is_rolled_back_by_the_next() {
    let c = running("a");
    // As a crash after journaling a new step leaves it: pending in a complete record.
    let mut rec = c.record().unwrap();
    let mut extra = rec.steps[2].clone();
    extra.network = "ns/b".into();
    extra.ifname = "net3".into();
    extra.state = State::Pending;
    extra.result = None;
    rec.steps.push(extra);
    c.store.put("c1", &rec.encode().unwrap());
    let fake = Fake::default();
    let out = hotplug(&c, &fake, "a").unwrap();
    assert_eq!(fake.take(), ["DEL net3 macvlan"]);
    assert!(!out.changed());
    assert_eq!(
        interfaces(&c.record().unwrap()),
        [pair("n0", "eth0"), pair("n1", "net1"), pair("ns/a", "net2")]
    );
}

#[test]
fn a_changed_nad_is_reported_not_applied() {
    let c = running("a");
    c.api().put_nad("ns", "a", nad("a", "ipvlan"));
    let fake = Fake::default();
    let out = hotplug(&c, &fake, "a").unwrap();
    assert!(fake.take().is_empty());
    assert_eq!(out.needs_restart, [pair("ns/a", "net2")]);
}

#[test]
fn what_is_not_a_running_pod_is_refused() {
    let c = case(&["bridge"], json!({})).with_pod(&[], &[]);
    let rec = Record::new("c1", "/run/netns/x", "eth0", POD, None, 0);
    let req = request_for(&rec).unwrap();
    let err = c
        .run(&Fake::default(), &req, |e| {
            e.hotplug(&BTreeMap::new(), false)
        })
        .unwrap_err();
    assert_eq!(err.code(), 3, "{err}");
}
