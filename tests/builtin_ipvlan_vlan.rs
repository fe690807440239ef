//! ipvlan and vlan cannot be created on this kernel: the reference plugins and plexus's built-ins
//! must both fail with the same clear CNI error and leave nothing behind (no link, no lease).

mod builtin_support;

use builtin_support::*;
use serde_json::{Value, json};

fn conf(plugin: &str, data: &str) -> Value {
    let mut c = json!({"cniVersion": "1.0.0", "name": "nv", "type": plugin, "master": "m0",
        "ipam": {"type": "host-local", "subnet": "10.78.0.0/24", "dataDir": data}});
    match plugin {
        "ipvlan" => c["mode"] = json!("l2"),
        _ => c["vlanId"] = json!(42),
    }
    c
}

fn fails_cleanly_like_reference(plugin: &str) {
    let mut outcomes = Vec::new();
    for use_plexus in [false, true] {
        let node = Node::new();
        let pod = Netns::new("pxq");
        let data = TempDir::new("pxd");
        let bin = if use_plexus {
            node.plexus(plugin)
        } else {
            format!("/usr/lib/cni/{plugin}").into()
        };
        let c = conf(plugin, &data.path.display().to_string());
        let call = Call {
            command: "ADD",
            container_id: "ctr1",
            netns: &pod.path(),
            ifname: "net1",
            args: "",
        };
        let out = node.run(&bin, &call, &c);
        assert!(!out.ok, "{bin:?} must fail on this kernel: {out:?}");
        let links = pod.ip(&["-br", "link"]);
        assert_eq!(
            links.lines().count(),
            1,
            "{bin:?} left links in the pod: {links}"
        );
        let host = node.ns.ip(&["-br", "link"]);
        assert_eq!(
            host.lines().count(),
            3,
            "{bin:?} left links on the node: {host}"
        );
        assert!(
            leases(&data.path.join("nv")).is_empty(),
            "{bin:?} leaked a lease"
        );
        let del = node.run(
            &bin,
            &Call {
                command: "DEL",
                ..call
            },
            &c,
        );
        assert!(del.ok, "{bin:?} DEL after a failed ADD: {del:?}");
        outcomes.push(out);
    }
    let (r, p) = (&outcomes[0], &outcomes[1]);
    assert_eq!(r.json["code"], p.json["code"], "codes\n{r:?}\n{p:?}");
    assert_eq!(r.json["msg"], p.json["msg"], "messages");
    let msg = p.json["msg"].as_str().unwrap_or_default();
    assert!(
        msg.contains(&format!("failed to create {plugin}")) && msg.contains("not supported"),
        "{msg}"
    );
}

#[test]
fn ipvlan_fails_like_reference_and_leaves_nothing() {
    fails_cleanly_like_reference("ipvlan");
}

#[test]
fn vlan_fails_like_reference_and_leaves_nothing() {
    fails_cleanly_like_reference("vlan");
}

#[test]
fn vlan_config_errors_match_reference() {
    let node = Node::new();
    let pod = Netns::new("pxq");
    let rows: &[(&str, Value)] = &[
        (
            "no master",
            json!({"cniVersion": "1.0.0", "name": "nv", "type": "vlan", "vlanId": 1}),
        ),
        (
            "id out of range",
            json!({"cniVersion": "1.0.0", "name": "nv", "type": "vlan", "master": "m0", "vlanId": 4095}),
        ),
        (
            "mtu above master",
            json!({"cniVersion": "1.0.0", "name": "nv", "type": "vlan", "master": "m0", "vlanId": 5, "mtu": 9000}),
        ),
    ];
    for (name, c) in rows {
        let call = Call {
            command: "ADD",
            container_id: "ctr1",
            netns: &pod.path(),
            ifname: "net1",
            args: "",
        };
        let r = node.run("/usr/lib/cni/vlan".as_ref(), &call, c);
        let p = node.run(&node.plexus("vlan"), &call, c);
        assert!(!r.ok && !p.ok, "{name}: both fail\n{r:?}\n{p:?}");
        assert_eq!(r.json["code"], p.json["code"], "{name}");
        assert_eq!(r.json["msg"], p.json["msg"], "{name}");
    }
}
