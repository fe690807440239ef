//! Differential tests: the same macvlan config through the reference `/usr/lib/cni/macvlan` and
//! through plexus's built-in (the multi-call binary), each into its own fresh pod namespace, run
//! inside a node namespace. Links, addresses, routes and results must match, before and after DEL.

mod builtin_support;

use builtin_support::diff::{self, Diff, call, host_local, netconf, static_ipam};
use builtin_support::*;
use serde_json::{Value, json};

fn differential(conf: impl Fn(&str) -> Value, args: &str, setup: impl Fn(&Netns)) -> Diff {
    diff::differential("macvlan", conf, args, |_, pod| setup(pod))
}

fn conf(mode: Option<&str>, mtu: Option<u32>, extra: Value, ipam: Value) -> impl Fn(&str) -> Value {
    let mut fields = extra;
    if let Some(m) = mode {
        fields["mode"] = json!(m);
    }
    if let Some(m) = mtu {
        fields["mtu"] = json!(m);
    }
    netconf("macvlan", "mv", fields, ipam)
}

fn assert_added(d: &Diff) {
    assert!(d.plexus.add.ok, "ADD failed: {:?}", d.plexus.add);
    let link = d.plexus.pod.ip(&["-d", "link", "show", "net1"]);
    assert!(link.contains("macvlan"), "{link}");
}

#[test]
fn macvlan_mode_bridge_static_ipam_matches_reference() {
    let c = conf(Some("bridge"), Some(1400), json!({}), static_ipam());
    let d = differential(&c, "", |_| {});
    assert_added(&d);
    let addrs = d.plexus.pod.ip(&["addr", "show", "net1"]);
    assert!(addrs.contains("10.77.0.9/24"), "{addrs}");
    d.del_and_compare(&c);
}

#[test]
fn macvlan_mode_private_matches_reference() {
    let c = conf(Some("private"), None, json!({}), host_local());
    let d = differential(&c, "", |_| {});
    assert_added(&d);
    assert!(
        d.plexus
            .pod
            .ip(&["-d", "link", "show", "net1"])
            .contains("mode private")
    );
    d.del_and_compare(&c);
}

#[test]
fn macvlan_mode_vepa_matches_reference() {
    let c = conf(Some("vepa"), None, json!({}), host_local());
    let d = differential(&c, "", |_| {});
    assert_added(&d);
    assert!(
        d.plexus
            .pod
            .ip(&["-d", "link", "show", "net1"])
            .contains("mode vepa")
    );
    d.del_and_compare(&c);
}

#[test]
fn macvlan_mode_passthru_matches_reference() {
    let c = conf(Some("passthru"), None, json!({}), host_local());
    let d = differential(&c, "", |_| {});
    d.del_and_compare(&c);
}

#[test]
fn macvlan_unknown_mode_fails_like_reference() {
    let c = conf(Some("sideways"), None, json!({}), host_local());
    let d = differential(&c, "", |_| {});
    assert!(!d.plexus.add.ok);
    d.del_and_compare(&c);
}

#[test]
fn macvlan_defaults_master_to_default_route_interface() {
    let c = move |data: &str| {
        let mut c = conf(None, None, json!({}), host_local())(data);
        c.as_object_mut().unwrap().remove("master");
        c
    };
    let d = differential(c, "", |_| {});
    assert_added(&d);
    assert_eq!(
        snapshot(&d.plexus.node, &d.plexus.pod)["links"][1]["master"],
        "node:m0"
    );
    d.del_and_compare(c);
}

#[test]
fn macvlan_mtu_above_master_fails_like_reference() {
    let c = conf(None, Some(9000), json!({}), host_local());
    let d = differential(&c, "", |_| {});
    assert!(!d.plexus.add.ok);
    assert!(
        d.plexus.add.stdout.contains("invalid MTU 9000"),
        "{:?}",
        d.plexus.add
    );
    // The reference validates the MTU again on DEL and fails it; plexus's DEL stays best effort.
    let p = &d.plexus;
    let del = p
        .node
        .run(&p.bin, &call("DEL", &p.pod.path(), ""), &p.conf(&c));
    assert!(del.ok, "{del:?}");
    assert!(!p.pod.ip(&["-br", "link"]).contains("net1"));
}

#[test]
fn macvlan_mac_from_config_matches_reference() {
    let mac = "02:aa:bb:cc:dd:01";
    let c = conf(None, None, json!({"mac": mac}), host_local());
    let d = differential(&c, "", |_| {});
    for side in [&d.reference, &d.plexus] {
        assert_eq!(side.add.json["interfaces"][0]["mac"], mac);
        assert!(side.pod.ip(&["link", "show", "net1"]).contains(mac));
    }
    d.del_and_compare(&c);
}

#[test]
fn macvlan_mac_from_runtime_config_matches_reference() {
    let mac = "02:aa:bb:cc:dd:02";
    let c = conf(
        None,
        None,
        json!({"mac": "02:aa:bb:cc:dd:99", "runtimeConfig": {"mac": mac}}),
        host_local(),
    );
    let d = differential(&c, "IgnoreUnknown=1;MAC=02:aa:bb:cc:dd:98", |_| {});
    for side in [&d.reference, &d.plexus] {
        assert_eq!(side.add.json["interfaces"][0]["mac"], mac);
    }
    d.del_and_compare(&c);
}

#[test]
fn macvlan_mac_from_cni_args_matches_reference() {
    let mac = "02:aa:bb:cc:dd:03";
    let c = conf(None, None, json!({}), host_local());
    let d = differential(
        &c,
        &format!("IgnoreUnknown=1;K8S_POD_NAME=p;MAC={mac}"),
        |_| {},
    );
    for side in [&d.reference, &d.plexus] {
        assert_eq!(side.add.json["interfaces"][0]["mac"], mac);
    }
    d.del_and_compare(&c);
}

#[test]
fn macvlan_without_ipam_is_up_without_addresses() {
    let c = conf(None, None, json!({}), Value::Null);
    let d = differential(&c, "", |_| {});
    assert_added(&d);
    assert!(d.plexus.add.json.get("ips").is_none(), "{:?}", d.plexus.add);
    d.del_and_compare(&c);
}

#[test]
fn macvlan_result_in_cni_0_3_1_matches_reference() {
    let c = move |data: &str| {
        let mut c = conf(None, None, json!({}), host_local())(data);
        c["cniVersion"] = json!("0.3.1");
        c
    };
    let d = differential(c, "", |_| {});
    assert_eq!(d.version, "0.3.1");
    assert_eq!(d.plexus.add.json["ips"][0]["version"], "4");
    d.del_and_compare(c);
}

#[test]
fn macvlan_existing_ifname_fails_like_reference_and_keeps_the_existing_link() {
    let c = conf(None, None, json!({}), host_local());
    let d = differential(&c, "", |pod| {
        pod.ip(&[
            "link", "add", "net1", "type", "veth", "peer", "name", "peer1",
        ]);
    });
    assert!(!d.plexus.add.ok);
    assert!(
        d.plexus.add.stdout.contains("file exists"),
        "{:?}",
        d.plexus.add
    );
    let links = d.plexus.pod.ip(&["-d", "link"]);
    assert!(
        links.contains("net1") && !links.contains("macvlan"),
        "{links}"
    );
    for side in d.sides() {
        assert!(d.leases(side).is_empty());
    }
}

#[test]
fn macvlan_check_passes_on_own_result_and_fails_after_tampering() {
    // No IPAM routes: the reference's CHECK wrongly fails on a route without `gw`.
    let ipam = json!({"type": "host-local", "subnet": "10.77.0.0/24", "rangeStart": "10.77.0.100"});
    let c = conf(Some("vepa"), Some(1400), json!({}), ipam);
    let d = differential(&c, "", |_| {});
    let (r, p) = d.check(&c);
    assert!(r.ok && p.ok, "CHECK\nreference: {r:?}\nplexus: {p:?}");
    // Remove the address plexus applied: its CHECK must notice.
    d.plexus.pod.ip(&["addr", "flush", "dev", "net1"]);
    let (_, bad) = d.check(&c);
    assert!(!bad.ok, "CHECK must fail without the address: {bad:?}");
    d.del_and_compare(&c);
}
