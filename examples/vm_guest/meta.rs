//! The meta-plugin path: a pod annotated with an ipvlan NAD and a vlan NAD gets them next to the
//! bridge cluster network (tests/common's cluster: the test API server in the node namespace),
//! network-status reports them, CHECK and DEL (twice) work, and when the second NAD fails
//! everything is rolled back. Each runs with the built-ins and with the reference binaries
//! (`builtinDelegates: false`), and the two must give the same pod and the same status.

use common::k8s::{Cluster, NETWORKS, Pod, assert_one_default, entry};
use common::link;
use serde_json::{Value, json};

use crate::common;
use crate::runner::Case;

/// Every meta-plugin case.
pub const CASES: &[Case] = &[
    Case {
        name: "meta_ipvlan_and_vlan_nads_attach_report_status_and_del",
        run: attach_both_ways,
    },
    Case {
        name: "meta_second_nad_failing_rolls_everything_back",
        run: rollback_both_ways,
    },
];

/// The second octet of every subnet these cases use.
const OCTET: u8 = 120;

/// NAD `default/ipv` (ipvlan l2, host-local 10.120.1.0/24) and `default/vl` (vlan 100 with
/// static IPAM fed by the pod's `ips`) on the node's master.
fn nads(c: &Cluster) {
    let ipvlan = json!({"cniVersion": "1.0.0", "type": "ipvlan", "master": c.env.master,
        "mode": "l2", "ipam": common::conf::host_local(&c.env, 1, false)});
    let vlan = json!({"cniVersion": "1.0.0", "type": "vlan", "master": c.env.master,
        "vlanId": 100, "capabilities": {"ips": true}, "ipam": {"type": "static"}});
    c.put_nad("default", "ipv", Some(&ipvlan));
    c.put_nad("default", "vl", Some(&vlan));
}

/// The pod: `ipv` as net1, `vl` as data0 with a static address.
fn telco_pod(c: &Cluster) -> Pod {
    let pod = Pod::new("default", "telco");
    let selection = format!(
        r#"[{{"name":"ipv"}},{{"name":"vl","interface":"data0","ips":["10.{OCTET}.2.9/24"]}}]"#
    );
    c.put_pod(&pod, &[(NETWORKS, &selection)]);
    pod
}

/// plexus's config of the cluster harness with `builtinDelegates: builtin`, and timeouts for an
/// emulated guest: the harness's 2 s per API request can pass before the test server (on the
/// same emulated CPU) answers, and a retried GET would count as an extra request.
fn plexus_conf(c: &Cluster, builtin: bool) -> Value {
    let mut conf = c.conf();
    conf["builtinDelegates"] = json!(builtin);
    conf["apiTimeoutSeconds"] = json!(30);
    conf["apiRetryBudgetSeconds"] = json!(60);
    conf["delegateTimeoutSeconds"] = json!(120);
    conf
}

/// What a user sees of `ifname` in `netns`: kind, kind data, MTU, flags, settled operstate.
fn link_view(netns: &str, ifname: &str) -> Value {
    let mut v = Value::Null;
    // A new vlan's operstate is set by the kernel's linkwatch work up to a second after it came
    // up (see tests/builtin_support's snapshot); compare the settled state.
    common::wait_for(std::time::Duration::from_secs(5), || {
        let out = common::sh(&["ip", "-n", netns, "-d", "-j", "link", "show", ifname]);
        let l: Value = serde_json::from_str(&out).expect("ip -j");
        v = json!({"kind": l[0]["linkinfo"]["info_kind"], "info": l[0]["linkinfo"]["info_data"],
            "mtu": l[0]["mtu"], "flags": l[0]["flags"], "operstate": l[0]["operstate"]});
        v["operstate"] != "UNKNOWN" || v["kind"] != "vlan"
    });
    v
}

/// ADD, checks, CHECK, DEL x2 with `builtinDelegates: builtin`; returns what the pod and its
/// network-status showed, with eth0's random MAC taken out.
fn attach(builtin: bool) -> Value {
    let c = Cluster::new("vmat", OCTET);
    nads(&c);
    let pod = telco_pod(&c);
    let netns = c.env.add_pod();
    let id = format!("c{}", c.env.uid);
    let conf = plexus_conf(&c, builtin);

    c.cni("ADD", &id, &netns, &pod, &conf).ok();

    assert_eq!(c.ifnames(&netns), ["data0", "eth0", "net1"]);
    let master_mac = link(&c.env.node, &c.env.master).unwrap().mac.unwrap();
    let net1 = format!("10.{OCTET}.1.2/24");
    let data0 = format!("10.{OCTET}.2.9/24");
    c.assert_iface(&netns, "net1", &[net1], Some(&master_mac));
    c.assert_iface(&netns, "data0", &[data0], Some(&master_mac));
    let view = json!({
        "net1": link_view(&netns, "net1"),
        "data0": link_view(&netns, "data0"),
        "eth0": link_view(&netns, "eth0"),
    });
    assert_eq!(view["net1"]["kind"], "ipvlan", "{view}");
    assert_eq!(view["data0"]["kind"], "vlan", "{view}");
    assert_eq!(view["data0"]["info"]["id"], 100, "{view}");

    let status = c.network_status(&pod);
    assert_one_default(&status, "eth0");
    for (ifname, network, ip) in [
        ("net1", "default/ipv", format!("10.{OCTET}.1.2")),
        ("data0", "default/vl", format!("10.{OCTET}.2.9")),
    ] {
        let e = entry(&status, ifname);
        assert_eq!(e["name"], network, "{e}");
        assert_eq!(e["ips"], json!([ip]), "{e}");
        assert_eq!(e["mac"], master_mac.as_str(), "{e}");
    }
    let log = c.request_log();
    assert_eq!(log.len(), 4, "a pod GET, two NAD GETs, one PATCH: {log:?}");

    c.cni("CHECK", &id, &netns, &pod, &conf).ok();
    c.cni("DEL", &id, &netns, &pod, &conf).ok();
    c.cni("DEL", &id, &netns, &pod, &conf).ok();
    c.env.assert_nothing_left();

    let mut status = json!(status);
    for e in status.as_array_mut().unwrap() {
        let mac = e["mac"].as_str().unwrap_or_default().to_string();
        e["mac"] = json!(if mac == master_mac { "master" } else { "own" });
    }
    json!({"links": view, "status": status})
}

fn attach_both_ways() {
    let builtin = attach(true);
    let binaries = attach(false);
    assert_eq!(builtin, binaries, "built-ins and reference binaries differ");
}

/// The node already has vlan 100 on the master (something else took it): ADD fails on
/// `default/vl` (data0) with the kernel's "file exists" after the cluster network and the
/// ipvlan are up; everything is rolled back. Returns the error message.
fn rollback(builtin: bool) -> String {
    let c = Cluster::new("vmrb", OCTET);
    nads(&c);
    let (node, master) = (&c.env.node, &c.env.master);
    common::sh(&[
        "ip", "-n", node, "link", "add", "link", master, "name", "taken", "type", "vlan", "id",
        "100",
    ]);
    let pod = telco_pod(&c);
    let netns = c.env.add_pod();
    let id = format!("c{}", c.env.uid);
    let conf = plexus_conf(&c, builtin);

    let (_, msg) = c.cni("ADD", &id, &netns, &pod, &conf).err();
    for part in [
        "default/vl",
        "data0",
        "vlan",
        "file exists",
        "rolled back cleanly",
    ] {
        assert!(msg.contains(part), "the error names {part:?}: {msg}");
    }
    // The node's own vlan is not plexus's to remove.
    common::sh(&["ip", "-n", node, "link", "del", "taken"]);
    c.env.assert_nothing_left();
    assert!(!c.has_network_status(&pod), "no status for a failed ADD");
    c.cni("DEL", &id, &netns, &pod, &conf).ok();
    c.env.assert_nothing_left();
    msg.replace(&id, "<container>")
}

fn rollback_both_ways() {
    let builtin = rollback(true);
    let binaries = rollback(false);
    assert_eq!(builtin, binaries, "built-ins and reference binaries differ");
}
