//! Hot-plug through the node agent, end to end: a running pod's networks annotation edited on
//! the test API server, and the real agent adds the interface in the pod's real netns (real
//! macvlan and host-local) with its address and lists it in network-status; removes it with
//! its lease; adds and removes in one edit; swaps the network behind one interface name; a
//! failing network rolls back with one event and the status unchanged; a pod created without
//! the annotation; an invalid value gets one event per value; pods plexus did not attach and
//! hostNetwork pods get an event and nothing else.

mod agent_support;
mod common;
mod hotplug_support;

use agent_support::{NODE, put_pod_on};
use common::k8s::{NETWORKS, Pod};
use hotplug_support::{Running, changes, cluster, report_latency, wait_events};
use serde_json::json;

const CLUSTER: &str = "px-cluster@eth0";

#[test]
fn an_added_network_appears_with_its_address_and_a_removed_one_goes_with_its_lease() {
    let c = cluster("hp1", 220);
    let conf = c.conf();
    let r = Running::start(c, conf, Some("mv1"), &[]);
    r.wait_status(&[CLUSTER, "ns/mv1@net1"]);
    let patches = r.agent_patches();
    // Add mv2: the lowest free name, net2, with an address of its range.
    r.annotate(Some("mv1,mv2"));
    let took = r.wait_status(&[CLUSTER, "ns/mv1@net1", "ns/mv2@net2"]);
    report_latency("add one network", took, &r.log());
    let addr = r.c.addr(&r.netns, "net2");
    assert!(addr.starts_with("10.220.2."), "{addr}");
    assert_eq!(r.ifnames(), ["eth0", "net1", "net2"]);
    let added = r.wait_events("AddedInterface", 1);
    let ip = addr.split('/').next().unwrap_or_default();
    assert!(
        added[0].contains("net2") && added[0].contains(ip) && added[0].contains("ns/mv2"),
        "{added:?}"
    );
    assert_eq!(r.leases_of("mv2"), 1, "{:?}", r.c.env.leases());
    assert_eq!(
        r.agent_patches(),
        patches + 1,
        "one status PATCH per change"
    );
    // Remove mv1: net1 and its lease go; mv2 keeps net2.
    r.annotate(Some("mv2"));
    r.wait_status(&[CLUSTER, "ns/mv2@net2"]);
    assert_eq!(r.ifnames(), ["eth0", "net2"]);
    assert_eq!(r.leases_of("mv1"), 0, "{:?}", r.c.env.leases());
    assert_eq!(r.c.addr(&r.netns, "net2"), addr, "net2 is untouched");
    let removed = r.wait_events("RemovedInterface", 1);
    assert!(removed[0].contains("net1") && removed[0].contains("ns/mv1"));
    assert_eq!(changes(&r, "added"), 1.0);
    assert_eq!(changes(&r, "removed"), 1.0);
    // The runtime's DEL releases what hot-plug added as well.
    r.del_and_check_nothing_left();
}

#[test]
fn add_and_remove_in_one_edit() {
    let c = cluster("hp2", 221);
    let conf = c.conf();
    let r = Running::start(c, conf, Some("mv1,mv2"), &[]);
    r.wait_status(&[CLUSTER, "ns/mv1@net1", "ns/mv2@net2"]);
    let patches = r.agent_patches();
    // mv1 goes, mv3 comes: net1 is not reused in the pass that frees it.
    r.annotate(Some("mv2,mv3"));
    r.wait_status(&[CLUSTER, "ns/mv2@net2", "ns/mv3@net3"]);
    assert_eq!(r.ifnames(), ["eth0", "net2", "net3"]);
    assert!(r.c.addr(&r.netns, "net3").starts_with("10.221.3."));
    assert_eq!((r.leases_of("mv1"), r.leases_of("mv3")), (0, 1));
    assert_eq!(r.agent_patches(), patches + 1, "one PATCH for both");
    r.wait_events("RemovedInterface", 1);
    r.wait_events("AddedInterface", 1);
    // The next network without a name gets the lowest free one: net1.
    r.annotate(Some("mv2,mv3,mv1"));
    r.wait_status(&[CLUSTER, "ns/mv2@net2", "ns/mv3@net3", "ns/mv1@net1"]);
    r.del_and_check_nothing_left();
}

#[test]
fn a_swap_behind_one_interface_name_is_a_removal_and_an_addition() {
    let c = cluster("hp3", 222);
    let conf = c.conf();
    let r = Running::start(c, conf, Some("mv1@data0"), &[]);
    r.wait_status(&[CLUSTER, "ns/mv1@data0"]);
    assert!(r.c.addr(&r.netns, "data0").starts_with("10.222.1."));
    r.annotate(Some("mv2@data0"));
    r.wait_status(&[CLUSTER, "ns/mv2@data0"]);
    assert!(r.c.addr(&r.netns, "data0").starts_with("10.222.2."));
    assert_eq!(r.ifnames(), ["data0", "eth0"]);
    assert_eq!((r.leases_of("mv1"), r.leases_of("mv2")), (0, 1));
    r.wait_events("RemovedInterface", 1);
    r.wait_events("AddedInterface", 1);
    r.del_and_check_nothing_left();
}

#[test]
fn a_failing_network_rolls_back_with_one_event_and_the_status_unchanged() {
    let c = cluster("hp4", 223);
    // macvlan and host-local succeed, then the chain's second plugin does not exist.
    let mut broken = c.macvlan(4);
    broken = json!({"cniVersion": "1.0.0", "name": "broken",
        "plugins": [broken, {"type": "no-such-plugin"}]});
    c.put_nad("ns", "broken", Some(&broken));
    let conf = c.conf();
    let r = Running::start(c, conf, Some("mv1"), &["--hotplug-resync-seconds=1"]);
    r.wait_status(&[CLUSTER, "ns/mv1@net1"]);
    let patches = r.agent_patches();
    let passes = r.metric("plexus_hotplug_passes_total", &[]);
    r.annotate(Some("mv1,broken"));
    let ev = r.wait_events("InterfaceAddRejected", 1);
    assert!(ev[0].contains("no-such-plugin"), "{ev:?}");
    assert!(ev[0].contains("rolled back"), "{ev:?}");
    // It is retried (the resync and the backoff): still one event, nothing left over.
    r.wait_passes(passes, 3.0);
    assert_eq!(r.events("InterfaceAddRejected").len(), 1);
    assert_eq!(r.status(), [CLUSTER, "ns/mv1@net1"]);
    assert_eq!(r.agent_patches(), patches, "the status was not rewritten");
    assert_eq!(r.ifnames(), ["eth0", "net1"]);
    assert_eq!(r.leases_of("broken"), 0, "{:?}", r.c.env.leases());
    assert!(changes(&r, "rolled-back") >= 1.0);
    // Fixed by removing it: nothing to do, nothing posted.
    r.annotate(Some("mv1"));
    let passes = r.metric("plexus_hotplug_passes_total", &[]);
    r.wait_passes(passes, 1.0);
    assert_eq!(r.status(), [CLUSTER, "ns/mv1@net1"]);
    r.del_and_check_nothing_left();
}

#[test]
fn an_invalid_annotation_gets_one_event_per_value() {
    let c = cluster("hp5", 224);
    let conf = c.conf();
    let r = Running::start(c, conf, Some("mv1"), &["--hotplug-resync-seconds=1"]);
    r.wait_status(&[CLUSTER, "ns/mv1@net1"]);
    let passes = r.metric("plexus_hotplug_passes_total", &[]);
    r.annotate(Some("[{\"name\": "));
    r.wait_events("InterfaceAddRejected", 1);
    r.wait_passes(passes, 3.0);
    assert_eq!(r.events("InterfaceAddRejected").len(), 1, "no storm");
    r.annotate(Some("mv1,no-such-nad"));
    let ev = r.wait_events("InterfaceAddRejected", 2);
    assert!(ev[1].contains("no-such-nad"), "{ev:?}");
    let passes = r.metric("plexus_hotplug_passes_total", &[]);
    r.wait_passes(passes, 2.0);
    assert_eq!(r.events("InterfaceAddRejected").len(), 2);
    // Nothing was touched meanwhile; the NAD appearing lets the retry attach it.
    assert_eq!(r.status(), [CLUSTER, "ns/mv1@net1"]);
    r.c.put_nad("ns", "no-such-nad", Some(&r.c.macvlan(5)));
    r.wait_status(&[CLUSTER, "ns/mv1@net1", "ns/no-such-nad@net2"]);
    r.del_and_check_nothing_left();
}

#[test]
fn a_pod_created_without_the_annotation_gets_networks() {
    let c = cluster("hp6", 225);
    let conf = c.conf();
    let r = Running::start(c, conf, None, &[]);
    r.wait_status(&[CLUSTER]);
    r.annotate(Some("mv1"));
    let took = r.wait_status(&[CLUSTER, "ns/mv1@net1"]);
    report_latency("first network of a pod created without one", took, &r.log());
    assert!(r.c.addr(&r.netns, "net1").starts_with("10.225.1."));
    // And the annotation removed altogether: back to the cluster network alone.
    r.annotate(None);
    r.wait_status(&[CLUSTER]);
    assert_eq!(r.ifnames(), ["eth0"]);
    r.del_and_check_nothing_left();
}

#[test]
fn pods_plexus_did_not_attach_get_an_event_and_nothing_else() {
    let c = cluster("hp7", 226);
    let conf = c.conf();
    let r = Running::start(c, conf, Some("mv1"), &[]);
    // A pod with no sandbox plexus attached (Multus did, before the migration).
    let other = Pod::new("ns", "multus-pod");
    put_pod_on(&r.c, &other, NODE, &[(NETWORKS, "mv1")]);
    // A hostNetwork pod.
    let host = Pod::new("ns", "host-pod");
    r.c.api.put_pod(json!({
        "metadata": {"name": host.name, "namespace": host.namespace, "uid": host.uid,
            "annotations": {NETWORKS: "mv1"}},
        "spec": {"nodeName": NODE, "hostNetwork": true, "containers": [{"name": "c"}]},
    }));
    r.agent().wait_for_pod(&other);
    r.agent().wait_for_pod(&host);
    let edit = |p: &Pod| {
        r.c.api
            .patch_pod(
                &p.namespace,
                &p.name,
                &json!({"metadata": {"annotations": {NETWORKS: "mv1,mv2"}}}),
            )
            .expect("pod");
    };
    edit(&other);
    edit(&host);
    let ev = wait_events(&r.c, &other, "InterfaceAddRejected", 1, &r.log());
    assert!(ev[0].contains("no record"), "{ev:?}");
    let ev = wait_events(&r.c, &host, "InterfaceAddRejected", 1, &r.log());
    assert!(ev[0].contains("host's network"), "{ev:?}");
    for p in [&other, &host] {
        assert!(!r.c.has_network_status(p), "{} was not touched", p.name);
        assert_eq!(r.c.count_exact("PATCH", &p.status_path()), 0);
    }
    // The pod plexus attached is unaffected.
    assert_eq!(r.status(), [CLUSTER, "ns/mv1@net1"]);
    r.del_and_check_nothing_left();
}

#[test]
fn a_changed_nad_behind_a_running_interface_is_not_applied_and_said_once() {
    let c = cluster("hp8", 230);
    let conf = c.conf();
    let r = Running::start(c, conf, Some("mv1"), &["--hotplug-resync-seconds=1"]);
    r.wait_status(&[CLUSTER, "ns/mv1@net1"]);
    let addr = r.c.addr(&r.netns, "net1");
    let patches = r.agent_patches();
    // mv1's config moves to another range: the running net1 keeps what it has.
    r.c.put_nad("ns", "mv1", Some(&r.c.macvlan(7)));
    let ev = r.wait_events("InterfaceChangeNotApplied", 1);
    assert!(ev[0].contains("net1") && ev[0].contains("ns/mv1"), "{ev:?}");
    let passes = r.metric("plexus_hotplug_passes_total", &[]);
    r.wait_passes(passes, 3.0);
    assert_eq!(r.events("InterfaceChangeNotApplied").len(), 1, "said once");
    assert_eq!(changes(&r, "not-applied"), 1.0, "counted once");
    assert_eq!(r.c.addr(&r.netns, "net1"), addr, "net1 is untouched");
    assert_eq!(r.ifnames(), ["eth0", "net1"]);
    assert_eq!(r.agent_patches(), patches, "nothing to write");
    assert_eq!(changes(&r, "added") + changes(&r, "removed"), 0.0);
    r.del_and_check_nothing_left();
}
