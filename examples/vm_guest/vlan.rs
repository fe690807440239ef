//! vlan, reference plugin against the built-in: `vlanId` (up to 4094), `mtu`,
//! `linkInContainer`, host-local and static IPAM, CHECK, DEL twice and without a netns, an id
//! already taken on the master, DEL after the master is gone, and tagged traffic between a pod of
//! each over a veth pair.

use std::path::Path;

use builtin_support::diff::{REFERENCE_DIR, add_both, call, differential, netconf};
use builtin_support::{Netns, Node, TempDir, leases, plexus_bin};
use serde_json::{Value, json};

use crate::runner::Case;
use crate::{
    MASTER_MAC, assert_attached, assert_mtu, builtin_support, check_then_tamper, host_local_gw,
    known_master_mac, ping, static_gw,
};

/// Every vlan case.
pub const CASES: &[Case] = &[
    Case {
        name: "vlan_host_local_add_check_del",
        run: || {
            lifecycle(
                json!({"vlanId": 42, "linkInContainer": false}),
                host_local_gw(),
                "id 42",
            )
        },
    },
    Case {
        name: "vlan_4094_static_mtu_add_check_del",
        run: || lifecycle(json!({"vlanId": 4094, "mtu": 1400}), static_gw(), "id 4094"),
    },
    Case {
        name: "vlan_id_taken_on_the_master_fails_like_reference",
        run: id_taken,
    },
    Case {
        name: "vlan_del_after_the_master_is_gone",
        run: master_gone,
    },
    Case {
        name: "vlan_link_in_container_is_left_to_the_reference_binary",
        run: link_in_container,
    },
    Case {
        name: "vlan_tagged_traffic_between_pods_of_both",
        run: traffic,
    },
];

fn conf(fields: Value, ipam: Value) -> impl Fn(&str) -> Value + use<> {
    netconf("vlan", "vl", fields, ipam)
}

/// ADD (same result, MAC, link, settled operstate, addresses, routes), CHECK passes on both,
/// DEL x3 matches.
fn lifecycle(fields: Value, ipam: Value, id: &str) {
    let mtu = fields.get("mtu").map(|m| format!("mtu {m} "));
    let c = conf(fields, ipam);
    let d = differential("vlan", &c, "", known_master_mac);
    for side in d.sides() {
        assert_attached(side, "vlan", &format!("vlan protocol 802.1Q {id} "));
        assert_mtu(side, mtu.as_deref());
        let state = side.pod.ip(&["-br", "link", "show", "net1"]);
        assert!(state.contains(" UP "), "{:?}: operstate: {state}", side.bin);
    }
    check_then_tamper(&d, &c);
    d.del_and_compare(&c);
}

/// The node already has vlan 42 on the master: both fail with the kernel's "file exists",
/// leave the existing link alone and lease nothing.
fn id_taken() {
    let c = conf(json!({"vlanId": 42}), host_local_gw());
    let taken = |node: &Node, _: &Netns| {
        node.ns.ip(&[
            "link", "add", "link", "m0", "name", "taken", "type", "vlan", "id", "42",
        ]);
    };
    let d = differential("vlan", &c, "", taken);
    for side in d.sides() {
        let msg = side.add.json["msg"].as_str().unwrap_or_default();
        assert!(
            msg.contains("file exists"),
            "{:?}: {:?}",
            side.bin,
            side.add
        );
        assert!(side.node.ns.ip(&["-br", "link"]).contains("taken@m0"));
        assert!(d.leases(side).is_empty(), "{:?} leased", side.bin);
    }
}

/// The master disappears (the kernel removes its vlan links in every namespace). The built-in's
/// DEL succeeds and releases the address. The reference's DEL fails: it validates the config
/// against the master first (its MTU), so the lease stays until the master is back. A
/// documented difference, as for macvlan's MTU (tests/builtin_macvlan.rs).
fn master_gone() {
    let c = conf(json!({"vlanId": 42}), host_local_gw());
    let d = differential("vlan", &c, "", known_master_mac);
    for side in d.sides() {
        side.node.ns.ip(&["link", "del", "m0"]);
        assert!(!side.pod.ip(&["-br", "link"]).contains("net1"));
    }
    let r = &d.reference;
    let del = r.node.run(
        &r.bin,
        &call("DEL", &r.pod.path(), ""),
        &c(&r.data.path.display().to_string()),
    );
    assert!(!del.ok, "the reference's DEL needs the master: {del:?}");
    assert_eq!(d.leases(r).len(), 1, "the reference keeps the lease");
    let p = &d.plexus;
    for netns in [p.pod.path(), p.pod.path()] {
        let del = p.node.run(
            &p.bin,
            &call("DEL", &netns, ""),
            &c(&p.data.path.display().to_string()),
        );
        assert!(del.ok, "{del:?}");
    }
    assert!(d.leases(p).is_empty(), "{:?}", d.leases(p));
}

/// `linkInContainer: true` is beyond the built-in: standalone it refuses the config on ADD
/// (code 2, there is no binary to hand it to) and DELs it all the same; as a delegate of the meta-plugin it runs the reference
/// binary, so the pod gets exactly what the reference gives. Debian's reference (1.1.1) predates
/// the key and ignores it: it uses the master in the node's namespace.
fn link_in_container() {
    let c = conf(
        json!({"vlanId": 42, "linkInContainer": true}),
        host_local_gw(),
    );
    let d = add_both("vlan", &c, "", known_master_mac);
    let p = &d.plexus.add;
    assert_eq!(p.json["code"], 2, "{p:?}");
    assert_eq!(p.json["msg"], "plexus vlan: unsupported linkInContainer");
    // Its DEL succeeds all the same (the interface and the IPAM are released; nothing was made).
    let ours = &d.plexus;
    let del = ours.node.run(
        &ours.bin,
        &call("DEL", &ours.pod.path(), ""),
        &ours.conf(&c),
    );
    assert!(
        del.ok,
        "standalone DEL of a config it does not take: {del:?}"
    );
    let r = &d.reference;
    assert_attached(r, "vlan", "vlan protocol 802.1Q id 42 ");

    // The meta-plugin, built-ins on, with this network as its only (cluster) network.
    let node = Node::new();
    node.ns.ip(&["link", "set", "m0", "address", MASTER_MAC]);
    let pod = Netns::new("pxm");
    let data = TempDir::new("pxd");
    let journal = TempDir::new("pxj");
    let meta = json!({"cniVersion": "1.0.0", "name": "meta", "type": "plexus",
        "cniDir": journal.path, "binDir": "/usr/lib/cni", "builtinDelegates": true,
        "delegates": [c(&data.path.display().to_string())]});
    let add = node.run(&plexus_bin(), &call("ADD", &pod.path(), ""), &meta);
    assert!(add.ok, "{add:?}");
    assert_eq!(
        builtin_support::snapshot(&r.node, &r.pod),
        builtin_support::snapshot(&node, &pod),
        "the meta-plugin's vlan is the reference's"
    );
    let del = node.run(&plexus_bin(), &call("DEL", &pod.path(), ""), &meta);
    assert!(del.ok, "{del:?}");
    assert!(leases(&data.path.join("vl")).is_empty());
    let del = r.node.run(
        &r.bin,
        &call("DEL", &r.pod.path(), ""),
        &c(&r.data.path.display().to_string()),
    );
    assert!(del.ok, "{del:?}");
    assert!(d.leases(r).is_empty());
}

/// vlan 42 on each end of the node's veth pair: the reference attaches one pod on `m0`, plexus
/// the other on its peer `m0p`; they ping each other through the tagged link.
fn traffic() {
    let node = Node::new();
    let mut pods = Vec::new();
    for (bin, master, addr) in [
        (Path::new(REFERENCE_DIR).join("vlan"), "m0", "10.79.0.1/24"),
        (node.plexus("vlan"), "m0p", "10.79.0.2/24"),
    ] {
        let c = json!({"cniVersion": "1.0.0", "name": "vl", "type": "vlan", "master": master,
            "vlanId": 42, "ipam": {"type": "static", "addresses": [{"address": addr}]}});
        let pod = Netns::new("pxt");
        let add = node.run(&bin, &call("ADD", &pod.path(), ""), &c);
        assert!(add.ok, "{bin:?}: {add:?}");
        pods.push((bin, pod, c));
    }
    ping(&pods[0].1, "10.79.0.2");
    ping(&pods[1].1, "10.79.0.1");
    for (bin, pod, c) in &pods {
        let del = node.run(bin, &call("DEL", &pod.path(), ""), c);
        assert!(del.ok, "{bin:?}: {del:?}");
        assert_eq!(pod.ip(&["-br", "link"]).lines().count(), 1);
    }
}
