//! End to end through the meta-plugin: the `plexus` binary, run the way a runtime runs it inside
//! a node namespace, attaches a pod to a bridge cluster network plus two macvlan networks that it
//! runs in process (no macvlan binary is reachable), and rolls everything back when a third
//! network (ipvlan, unsupported by this kernel) fails.

mod builtin_support;

use builtin_support::*;
use serde_json::{Value, json};

/// A plugin directory holding only bridge and host-local (no macvlan, ipvlan or vlan binary).
fn plugin_dir() -> TempDir {
    let d = TempDir::new("pxplug");
    for p in ["bridge", "host-local"] {
        std::os::unix::fs::symlink(format!("/usr/lib/cni/{p}"), d.path.join(p)).unwrap();
    }
    d
}

fn meta_conf(bins: &str, journal: &str, leases: &str, bridge: &str, extra: Vec<Value>) -> Value {
    let hl = |subnet: &str| json!({"type": "host-local", "subnet": subnet, "dataDir": leases});
    let mut delegates = vec![
        json!({"cniVersion": "1.0.0", "name": "cluster",
               "plugins": [{"type": "bridge", "bridge": bridge, "isGateway": true,
                            "ipam": hl("10.95.0.0/24")}]}),
        json!({"cniVersion": "1.0.0", "name": "mva", "type": "macvlan", "master": "m0",
               "ipam": hl("10.96.0.0/24")}),
        json!({"cniVersion": "1.0.0", "name": "mvb", "type": "macvlan", "master": "m0",
               "mode": "private", "ipam": hl("10.97.0.0/24")}),
    ];
    delegates.extend(extra);
    json!({"cniVersion": "1.0.0", "name": "p", "type": "plexus", "cniDir": journal,
           "binDir": bins, "delegates": delegates})
}

fn run_plexus(node: &Node, bins: &TempDir, command: &str, pod: &Netns, conf: &Value) -> Outcome {
    // CNI_PATH of Node::run is /usr/lib/cni; point the meta-plugin at the restricted dir instead.
    let mut c = conf.clone();
    c["binDir"] = json!(bins.path.display().to_string());
    let call = Call {
        command,
        container_id: "ctr1",
        netns: &pod.path(),
        ifname: "eth0",
        args: "",
    };
    node.run_with_path(
        env!("CARGO_BIN_EXE_plexus").as_ref(),
        &call,
        &c,
        &bins.path.display().to_string(),
    )
}

#[test]
fn two_builtin_macvlans_next_to_the_cluster_network_then_del() {
    let node = Node::new();
    let pod = Netns::new("pxe");
    let bins = plugin_dir();
    let journal = TempDir::new("pxj");
    let data = TempDir::new("pxl");
    let bridge = unique("pxb");
    let conf = meta_conf(
        "",
        &journal.path.display().to_string(),
        &data.path.display().to_string(),
        &bridge,
        vec![],
    );
    let add = run_plexus(&node, &bins, "ADD", &pod, &conf);
    assert!(add.ok, "{add:?}");
    let links = pod.ip(&["-d", "link"]);
    for (ifname, mode) in [("net1", "mode bridge"), ("net2", "mode private")] {
        let l = pod.ip(&["-d", "link", "show", ifname]);
        assert!(l.contains("macvlan") && l.contains(mode), "{ifname}: {l}");
    }
    assert!(links.contains("eth0"), "{links}");
    assert!(pod.ip(&["addr", "show", "net1"]).contains("10.96.0.2/24"));
    assert!(pod.ip(&["addr", "show", "net2"]).contains("10.97.0.2/24"));
    for net in ["cluster", "mva", "mvb"] {
        assert_eq!(leases(&data.path.join(net)).len(), 1, "{net}");
    }
    let del = run_plexus(&node, &bins, "DEL", &pod, &conf);
    assert!(del.ok, "{del:?}");
    assert_eq!(
        pod.ip(&["-br", "link"]).lines().count(),
        1,
        "only lo is left"
    );
    for net in ["cluster", "mva", "mvb"] {
        assert!(leases(&data.path.join(net)).is_empty(), "{net} lease left");
    }
}

#[test]
fn failing_builtin_ipvlan_rolls_back_every_attachment() {
    let node = Node::new();
    let pod = Netns::new("pxe");
    let bins = plugin_dir();
    let journal = TempDir::new("pxj");
    let data = TempDir::new("pxl");
    let bridge = unique("pxb");
    let ipvlan = json!({"cniVersion": "1.0.0", "name": "ipv", "type": "ipvlan", "master": "m0",
        "ipam": {"type": "host-local", "subnet": "10.98.0.0/24",
                 "dataDir": data.path.display().to_string()}});
    let conf = meta_conf(
        "",
        &journal.path.display().to_string(),
        &data.path.display().to_string(),
        &bridge,
        vec![ipvlan],
    );
    let add = run_plexus(&node, &bins, "ADD", &pod, &conf);
    assert!(!add.ok, "ADD must fail: {add:?}");
    assert!(
        add.stdout.contains("failed to create ipvlan"),
        "the ipvlan error is reported: {add:?}"
    );
    assert_eq!(
        pod.ip(&["-br", "link"]).lines().count(),
        1,
        "rollback left links: {}",
        pod.ip(&["-br", "link"])
    );
    for net in ["cluster", "mva", "mvb", "ipv"] {
        assert!(leases(&data.path.join(net)).is_empty(), "{net} lease left");
    }
}
