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
        name: "ipvlan_and_vlan_without_ipam_documented_differences",
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
    // Without `master`, CHECK fails in both: the reference looks up a master named "", the
    // built-in takes the interface of its own ADD result (its `prevResult`) for a chained master.
    let (r, p) = d.check(c);
    assert!(!r.ok && !p.ok, "CHECK\nreference: {r:?}\nplexus: {p:?}");
    for (o, master) in [(&r, "\"\""), (&p, "\"net1\"")] {
        let msg = o.json["msg"].as_str().unwrap_or_default();
        assert_eq!(
            msg,
            format!("failed to lookup master {master}: Link not found")
        );
    }
    d.del_and_compare(c);
}

/// DIFFERENCES (reported, src/builtin/cmd.rs `add`): without `ipam` the built-ins apply
/// macvlan's rule (an up link without addresses) to ipvlan and vlan too, where the reference
/// plugins differ:
/// - ipvlan and vlan, not chained: the reference fails (it execs an IPAM plugin named "") and
///   leaves its link behind in the pod, down (the reference vlan's DEL then fails the same way,
///   so that link stays); the built-in succeeds.
/// - ipvlan chained (no `master`, no `ipam`, a `prevResult` with one interface and addresses):
///   both enslave to that interface; the reference gives the link `prevResult`'s addresses and
///   returns them, the built-in gives none.
fn without_ipam() {
    let chained = json!({"master": null, "prevResult": {"cniVersion": "1.0.0",
        "interfaces": [{"name": "m0"}], "ips": [{"address": "10.77.0.50/24", "interface": 0}]}});
    // plugin, config, the reference's ADD error, whether the reference's DEL succeeds
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
    for (plugin, fields, reference_error, reference_del) in rows {
        let c = netconf(plugin, "x", fields, Value::Null);
        let d = add_both(plugin, &c, "", known_master_mac);
        let (r, p) = (&d.reference, &d.plexus);
        assert!(p.add.ok, "{plugin}: {:?}", p.add);
        assert!(p.add.json.get("ips").is_none(), "{plugin}: {:?}", p.add);
        let flags = p.pod.ip(&["-br", "link", "show", "net1"]);
        assert!(
            flags.contains(",UP"),
            "{plugin}: the built-in's net1 is up: {flags}"
        );
        let own = p.pod.ip(&["-4", "addr", "show", "net1"]);
        assert!(
            !own.contains("inet "),
            "{plugin}: built-in net1 has no address: {own}"
        );
        if reference_error.is_empty() {
            let theirs = r.pod.ip(&["addr", "show", "net1"]);
            assert!(r.add.ok, "{plugin}: {:?}", r.add);
            assert_eq!(r.add.json["ips"][0]["address"], "10.77.0.50/24");
            assert!(theirs.contains("10.77.0.50/24"), "{theirs}");
        } else {
            assert_eq!(r.add.json["msg"], reference_error, "{plugin}: {:?}", r.add);
            let flags = r.pod.ip(&["-br", "link", "show", "net1"]);
            assert!(
                !flags.contains(",UP"),
                "{plugin}: the reference leaves it down: {flags}"
            );
        }
        for (side, ok) in [(r, reference_del), (p, true)] {
            let del = side.node.run(
                &side.bin,
                &call("DEL", &side.pod.path(), ""),
                &c(&side.data.path.display().to_string()),
            );
            assert_eq!(del.ok, ok, "{plugin} {:?}: {del:?}", side.bin);
            let left = side.pod.ip(&["-br", "link"]).contains("net1");
            assert_eq!(left, !ok, "{plugin} {:?}: net1 after DEL", side.bin);
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
