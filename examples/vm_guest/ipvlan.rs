//! ipvlan, reference plugin against the built-in: every mode (the kernel's flag is `bridge`,
//! the only one the plugin's config can give: it has no key for `private` or `vepa`), host-local
//! and static IPAM, CHECK, DEL twice and without a netns, DEL after the master is gone, the
//! config errors the kernel reports, and traffic between pods of both on one master.

use std::path::Path;

use builtin_support::diff::{REFERENCE_DIR, add_both, call, differential, netconf};
use builtin_support::{Call, Netns, Node, Outcome, TempDir, leases};
use serde_json::{Value, json};

use crate::runner::Case;
use crate::{
    MASTER_MAC, assert_attached, assert_mtu, builtin_support, check_then_tamper, host_local_gw,
    known_master_mac, ping, static_gw,
};

/// Every ipvlan case.
pub const CASES: &[Case] = &[
    Case {
        name: "ipvlan_l2_host_local_add_check_del",
        run: || lifecycle("l2", json!({}), host_local_gw()),
    },
    Case {
        name: "ipvlan_l3_static_mtu_add_check_del",
        run: || lifecycle("l3", json!({"mtu": 1400}), static_gw()),
    },
    Case {
        name: "ipvlan_l3s_host_local_add_check_del",
        run: || lifecycle("l3s", json!({}), host_local_gw()),
    },
    Case {
        name: "ipvlan_defaults_to_l2_on_the_default_route_interface",
        run: defaults,
    },
    Case {
        name: "ipvlan_and_vlan_without_ipam_as_the_reference",
        run: without_ipam,
    },
    Case {
        name: "ipvlan_config_errors_match_reference",
        run: errors,
    },
    Case {
        name: "ipvlan_del_after_the_master_is_gone",
        run: master_gone,
    },
    Case {
        name: "ipvlan_pods_of_both_on_one_master_reach_each_other",
        run: traffic,
    },
];

fn conf(mode: Option<&str>, mut fields: Value, ipam: Value) -> impl Fn(&str) -> Value + use<> {
    if let Some(m) = mode {
        fields["mode"] = json!(m);
    }
    netconf("ipvlan", "ipv", fields, ipam)
}

/// ADD (same result, MAC, link, addresses, routes), CHECK passes on both, DEL x3 matches.
fn lifecycle(mode: &str, fields: Value, ipam: Value) {
    let mtu = fields.get("mtu").map(|m| format!("mtu {m} "));
    let c = conf(Some(mode), fields, ipam);
    let d = differential("ipvlan", &c, "", known_master_mac);
    for side in d.sides() {
        assert_attached(side, "ipvlan", &format!("mode {mode} bridge"));
        assert_mtu(side, mtu.as_deref());
    }
    check_then_tamper(&d, &c);
    d.del_and_compare(&c);
}

fn defaults() {
    let c = move |data: &str| {
        let mut c = conf(None, json!({"master": null}), host_local_gw())(data);
        c["cniVersion"] = json!("0.4.0");
        c
    };
    let d = differential("ipvlan", c, "", known_master_mac);
    for side in d.sides() {
        assert_attached(side, "ipvlan", "mode l2 bridge");
    }
    // DIFFERENCE: without `master`, the reference's CHECK looks up a master named "" and fails;
    // the built-in's finds the default route's interface, as ADD did, and passes.
    let (r, p) = d.check(c);
    assert!(!r.ok, "reference CHECK: {r:?}");
    assert_eq!(
        r.json["msg"].as_str().unwrap_or_default(),
        "failed to lookup master \"\": Link not found"
    );
    assert!(p.ok, "plexus CHECK: {p:?}");
    d.del_and_compare(c);
}

/// Without `ipam`, as the reference plugins: ipvlan and vlan (not chained) fail with the
/// reference's message; a chained ipvlan (no `master`, no `ipam`, a `prevResult` with one
/// interface and addresses) enslaves to that interface and gets `prevResult`'s addresses.
/// DIFFERENCE: on the failure the reference leaves its link behind in the pod, down (and the
/// reference vlan's DEL then fails the same way, so it stays); the built-in refuses before it
/// makes anything.
fn without_ipam() {
    let chained = json!({"master": null, "prevResult": {"cniVersion": "1.0.0",
        "interfaces": [{"name": "m0"}], "ips": [{"address": "10.77.0.50/24", "interface": 0}]}});
    // plugin, config, the ADD error both give, whether the reference's DEL succeeds
    let rows = [
        (
            "ipvlan",
            json!({"mode": "l2"}),
            "no plugin name provided",
            true,
        ),
        (
            "vlan",
            json!({"vlanId": 5}),
            "failed to execute IPAM delegate: no plugin name provided",
            false,
        ),
        ("ipvlan", chained, "", true),
    ];
    for (plugin, fields, error, reference_del) in rows {
        let c = netconf(plugin, "x", fields, Value::Null);
        let d = add_both(plugin, &c, "", known_master_mac);
        let (r, p) = (&d.reference, &d.plexus);
        if error.is_empty() {
            for side in [r, p] {
                assert!(side.add.ok, "{plugin} {:?}: {:?}", side.bin, side.add);
                assert_eq!(side.add.json["ips"][0]["address"], "10.77.0.50/24");
                let addrs = side.pod.ip(&["addr", "show", "net1"]);
                assert!(addrs.contains("10.77.0.50/24"), "{:?}: {addrs}", side.bin);
            }
        } else {
            for side in [r, p] {
                assert_eq!(
                    side.add.json["msg"], error,
                    "{plugin} {:?}: {:?}",
                    side.bin, side.add
                );
            }
            let theirs = r.pod.ip(&["-br", "link", "show", "net1"]);
            assert!(
                !theirs.contains(",UP"),
                "{plugin}: the reference leaves it down: {theirs}"
            );
            let ours = p.pod.ip(&["-br", "link"]);
            assert!(
                !ours.contains("net1"),
                "{plugin}: the built-in leaves nothing: {ours}"
            );
        }
        let reference_left = !error.is_empty() && !reference_del;
        for (side, ok, left) in [(r, reference_del, reference_left), (p, true, false)] {
            let del = side.node.run(
                &side.bin,
                &call("DEL", &side.pod.path(), ""),
                &side.conf(&c),
            );
            assert_eq!(del.ok, ok, "{plugin} {:?}: {del:?}", side.bin);
            let now = side.pod.ip(&["-br", "link"]).contains("net1");
            assert_eq!(now, left, "{plugin} {:?}: net1 after DEL", side.bin);
        }
    }
}

/// Errors both must report alike, leaving nothing in the pod.
fn errors() {
    let rows: [(&str, Value); 2] = [
        ("unknown mode", json!({"mode": "l4"})),
        ("no such master", json!({"master": "nosuch0"})),
    ];
    for (what, fields) in rows {
        let c = conf(None, fields, host_local_gw());
        let d = differential("ipvlan", &c, "", known_master_mac);
        for side in d.sides() {
            assert!(
                !side.add.ok,
                "{what}: {:?} must fail: {:?}",
                side.bin, side.add
            );
            assert!(
                d.leases(side).is_empty(),
                "{what}: {:?} leaked a lease",
                side.bin
            );
            let links = side.pod.ip(&["-br", "link"]);
            assert_eq!(
                links.lines().count(),
                1,
                "{what}: {:?} left {links}",
                side.bin
            );
        }
    }
}

/// The master disappears (the kernel removes its ipvlan links in every namespace): DEL still
/// succeeds on both and releases the address.
fn master_gone() {
    let c = conf(Some("l2"), json!({}), host_local_gw());
    let d = differential("ipvlan", &c, "", known_master_mac);
    for side in d.sides() {
        assert_eq!(d.leases(side).len(), 1, "{:?}", side.bin);
        side.node.ns.ip(&["link", "del", "m0"]);
        let links = side.pod.ip(&["-br", "link"]);
        assert!(!links.contains("net1"), "the kernel removed net1: {links}");
    }
    d.del_and_compare(&c);
}

/// A pod attached by the reference and one attached by plexus, on the same master in l2 mode,
/// ping each other.
fn traffic() {
    let node = Node::new();
    node.ns.ip(&["link", "set", "m0", "address", MASTER_MAC]);
    let data = TempDir::new("pxd");
    let c = conf(Some("l2"), json!({}), host_local_gw())(&data.path.display().to_string());
    // Two containers on one host-local range: each needs its own container ID.
    let run = |bin: &Path, command, pod: &Netns, id| {
        let path = pod.path();
        let call = Call {
            container_id: id,
            ..call(command, &path, "")
        };
        let out = node.run(bin, &call, &c);
        assert!(out.ok, "{command} {bin:?}: {out:?}");
        out
    };
    let reference = Path::new(REFERENCE_DIR).join("ipvlan");
    let plexus = node.plexus("ipvlan");
    let (pod_a, pod_b) = (Netns::new("pxt"), Netns::new("pxt"));
    let a = run(&reference, "ADD", &pod_a, "ctrA");
    let b = run(&plexus, "ADD", &pod_b, "ctrB");
    let bare = |out: &Outcome| {
        let cidr = out.json["ips"][0]["address"].as_str().unwrap_or_default();
        cidr.split('/').next().unwrap_or_default().to_string()
    };
    ping(&pod_a, &bare(&b));
    ping(&pod_b, &bare(&a));
    run(&reference, "DEL", &pod_a, "ctrA");
    run(&plexus, "DEL", &pod_b, "ctrB");
    let leases = leases(&data.path.join("ipv"));
    assert!(leases.is_empty(), "{leases:?}");
}
