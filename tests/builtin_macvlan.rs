//! Differential tests: the same macvlan config through the reference `/usr/lib/cni/macvlan` and
//! through plexus's built-in (the multi-call binary), each into its own fresh pod namespace, run
//! inside a node namespace. Links, addresses, routes and results must match, before and after DEL.

mod builtin_support;

use builtin_support::*;
use serde_json::{Value, json};

const REFERENCE: &str = "/usr/lib/cni/macvlan";

/// One side of a differential run: its own node (two macvlans with one MAC, or two passthru
/// macvlans, cannot share a master) and pod.
struct Side {
    node: Node,
    bin: std::path::PathBuf,
    pod: Netns,
    data: TempDir,
    add: Outcome,
}

struct Diff {
    reference: Side,
    plexus: Side,
    version: String,
}

fn call<'a>(command: &'a str, pod: &'a str, args: &'a str) -> Call<'a> {
    Call {
        command,
        container_id: "ctr1",
        netns: pod,
        ifname: "net1",
        args,
    }
}

/// Runs ADD through both plugins and asserts they agree (results, or error code and message;
/// then what is in the pod).
fn differential(conf: impl Fn(&str) -> Value, args: &str, setup: impl Fn(&Netns)) -> Diff {
    let mut sides = Vec::new();
    for plexus in [false, true] {
        let node = Node::new();
        let bin = if plexus {
            node.plexus("macvlan")
        } else {
            REFERENCE.into()
        };
        let pod = Netns::new("pxp");
        setup(&pod);
        let data = TempDir::new("pxd");
        let c = conf(&data.path.display().to_string());
        let add = node.run(&bin, &call("ADD", &pod.path(), args), &c);
        sides.push(Side {
            node,
            bin,
            pod,
            data,
            add,
        });
    }
    let plexus = sides.pop().unwrap();
    let reference = sides.pop().unwrap();
    let version = reference.conf(&conf)["cniVersion"]
        .as_str()
        .unwrap_or("1.0.0")
        .to_string();
    let (r, p) = (&reference.add, &plexus.add);
    assert_eq!(
        r.ok, p.ok,
        "ADD success differs\nreference: {r:?}\nplexus: {p:?}"
    );
    if r.ok {
        assert_eq!(
            normalized_result(&r.json, &version),
            normalized_result(&p.json, &version),
            "results differ"
        );
        assert_eq!(
            p.json["interfaces"][0]["sandbox"],
            json!(plexus.pod.path()),
            "sandbox"
        );
    } else {
        assert_eq!(r.json["code"], p.json["code"], "error codes\n{r:?}\n{p:?}");
        assert_eq!(r.json["msg"], p.json["msg"], "error messages");
    }
    assert_eq!(
        snapshot(&reference.node, &reference.pod),
        snapshot(&plexus.node, &plexus.pod),
        "pod contents after ADD differ"
    );
    Diff {
        reference,
        plexus,
        version,
    }
}

impl Side {
    /// `conf` with this side's own host-local `dataDir` (never the host's default).
    fn conf(&self, conf: &impl Fn(&str) -> Value) -> Value {
        conf(&self.data.path.display().to_string())
    }
}

impl Diff {
    /// DEL through both (twice, and once more without a netns): all succeed, the pods match
    /// again, and no lease is left.
    fn del_and_compare(&self, conf: impl Fn(&str) -> Value) {
        for side in [&self.reference, &self.plexus] {
            let bin = &side.bin;
            let c = side.conf(&conf);
            for netns in [side.pod.path(), side.pod.path(), String::new()] {
                let out = side.node.run(bin, &call("DEL", &netns, ""), &c);
                assert!(out.ok, "DEL {bin:?} netns={netns:?}: {out:?}");
                assert!(out.stdout.trim().is_empty(), "DEL prints nothing: {out:?}");
            }
            let dir = side.data.path.join("mv");
            assert!(
                leases(&dir).is_empty(),
                "{bin:?} leaked leases {:?}",
                leases(&dir)
            );
        }
        assert_eq!(
            snapshot(&self.reference.node, &self.reference.pod),
            snapshot(&self.plexus.node, &self.plexus.pod),
            "pod contents after DEL differ"
        );
        let links = self.plexus.pod.ip(&["-br", "link"]);
        assert!(!links.contains("net1"), "net1 left after DEL: {links}");
    }
}

fn conf(mode: Option<&str>, mtu: Option<u32>, extra: Value, ipam: Value) -> impl Fn(&str) -> Value {
    move |data: &str| {
        let mut c = json!({"cniVersion": "1.0.0", "name": "mv", "type": "macvlan", "master": "m0"});
        if let Some(m) = mode {
            c["mode"] = json!(m);
        }
        if let Some(m) = mtu {
            c["mtu"] = json!(m);
        }
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        let mut ipam = ipam.clone();
        if ipam["type"] == "host-local" {
            // An empty dataDir would be host-local's default, /var/lib/cni/networks: the host's.
            assert!(!data.is_empty(), "host-local needs the test's own dataDir");
            ipam["dataDir"] = json!(data);
        }
        if !ipam.is_null() {
            c["ipam"] = ipam;
        }
        c
    }
}

fn host_local() -> Value {
    json!({"type": "host-local", "subnet": "10.77.0.0/24", "rangeStart": "10.77.0.100",
           "routes": [{"dst": "10.88.0.0/16"}], "gateway": "10.77.0.1"})
}

fn static_ipam() -> Value {
    json!({"type": "static",
           "addresses": [{"address": "10.77.0.9/24", "gateway": "10.77.0.1"}],
           "routes": [{"dst": "10.90.0.0/16"}, {"dst": "10.91.0.0/16", "gw": "10.77.0.2"}]})
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
    for side in [&d.reference, &d.plexus] {
        assert!(leases(&side.data.path.join("mv")).is_empty());
    }
}

#[test]
fn macvlan_check_passes_on_own_result_and_fails_after_tampering() {
    // No IPAM routes: the reference's CHECK wrongly fails on a route without `gw`.
    let ipam = json!({"type": "host-local", "subnet": "10.77.0.0/24", "rangeStart": "10.77.0.100"});
    let c = conf(Some("vepa"), Some(1400), json!({}), ipam);
    let d = differential(&c, "", |_| {});
    for side in [&d.reference, &d.plexus] {
        let bin = &side.bin;
        let mut cc = side.conf(&c);
        cc["prevResult"] = side.add.json.clone();
        let ok = side
            .node
            .run(bin, &call("CHECK", &side.pod.path(), ""), &cc);
        assert!(ok.ok, "CHECK {bin:?}: {ok:?}");
    }
    // Remove the address plexus applied: its CHECK must notice.
    let mut cc = d.plexus.conf(&c);
    cc["prevResult"] = d.plexus.add.json.clone();
    d.plexus.pod.ip(&["addr", "flush", "dev", "net1"]);
    let p = &d.plexus;
    let bad = p.node.run(&p.bin, &call("CHECK", &p.pod.path(), ""), &cc);
    assert!(!bad.ok, "CHECK must fail without the address: {bad:?}");
    d.del_and_compare(&c);
}
