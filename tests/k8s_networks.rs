//! Kubernetes, end to end: pods select NADs through `k8s.v1.cni.cncf.io/networks` (short and
//! JSON form, with static addresses, MACs and custom interface names); plexus attaches them in
//! the real pod netns, writes network-status with one merge PATCH, and makes no more API requests
//! than it needs. Also: annotations handed over in runtimeConfig (no pod GET), the
//! default-network override, system namespaces without defaultNetworks, NADs with an empty
//! config resolved from confDir, and clusterNetwork given as a NAD name.

mod common;

use common::conf::{CLUSTER, cluster_conflist, macvlan_conf, write_conf};
use common::k8s::{
    Cluster, DEFAULT_NETWORK, NETWORKS, POD_ANNOTATIONS, Pod, assert_one_default, bare, entry,
    nad_path,
};
use serde_json::{Value, json};

/// NADs `default/macvlan-a` (10.o.1.0/24) and `other/macvlan-b` (10.o.2.0/24).
fn two_nads(c: &Cluster) {
    c.put_nad("default", "macvlan-a", Some(&c.macvlan(1)));
    c.put_nad("other", "macvlan-b", Some(&c.macvlan(2)));
}

/// Asserts exactly: one GET of the pod (or `pod_gets`), one GET per NAD, one PATCH of the pod's
/// status carrying only network-status as a merge patch, and nothing else.
fn assert_requests(c: &Cluster, pod: &Pod, pod_gets: usize, nads: &[(&str, &str)]) {
    let log = c.request_log();
    assert_eq!(
        c.count_exact("GET", &pod.path()),
        pod_gets,
        "GETs of the pod: {log:?}"
    );
    for (ns, name) in nads {
        assert_eq!(
            c.count_exact("GET", &nad_path(ns, name)),
            1,
            "GETs of NAD {ns}/{name}: {log:?}"
        );
    }
    assert_eq!(
        c.count_exact("PATCH", &pod.status_path()),
        1,
        "PATCHes of the pod status: {log:?}"
    );
    assert_eq!(
        log.len(),
        pod_gets + nads.len() + 1,
        "no request beyond those: {log:?}"
    );
    let patch = c
        .api
        .requests()
        .into_iter()
        .find(|r| r.method == "PATCH")
        .unwrap();
    assert_eq!(
        patch.content_type, "application/merge-patch+json",
        "network-status is written as a JSON merge patch"
    );
    let body: Value = serde_json::from_str(&patch.body).expect("PATCH body is JSON");
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["metadata"],
        "the patch carries only metadata: {body}"
    );
    let ann = body["metadata"]["annotations"].as_object().unwrap();
    assert_eq!(
        ann.keys().collect::<Vec<_>>(),
        [common::k8s::NETWORK_STATUS],
        "the patch carries only network-status: {body}"
    );
    assert_eq!(
        body["metadata"].as_object().unwrap().len(),
        1,
        "only annotations under metadata: {body}"
    );
}

/// Checks the entry for `ifname`: network name, address (no prefix) and MAC as in the netns.
fn assert_entry(c: &Cluster, status: &[Value], netns: &str, ifname: &str, network: &str) {
    let e = entry(status, ifname);
    assert_eq!(e["name"], network, "network of {ifname}: {e}");
    let addr = c.addr(netns, ifname);
    assert_eq!(
        e["ips"],
        json!([bare(&addr)]),
        "ips of {ifname} (no prefix length): {e}"
    );
    let mac = common::link(netns, ifname).unwrap().mac.unwrap();
    assert_eq!(e["mac"], mac.as_str(), "mac of {ifname}: {e}");
}

#[test]
fn short_form_selects_nads_by_name_namespace_and_interface() {
    let c = Cluster::new("ksht", 110);
    let o = c.env.octet;
    two_nads(&c);
    let pod = Pod::new("default", "web");
    c.put_pod(&pod, &[(NETWORKS, "macvlan-a,other/macvlan-b@data0")]);
    let netns = c.env.add_pod();
    let id = format!("c{}", c.env.uid);
    let conf = c.conf();

    c.cni("ADD", &id, &netns, &pod, &conf).ok();

    assert_eq!(c.ifnames(&netns), ["data0", "eth0", "net1"]);
    let eth0 = c.addr(&netns, "eth0");
    let net1 = c.addr(&netns, "net1");
    let data0 = c.addr(&netns, "data0");
    assert!(eth0.starts_with(&format!("10.{o}.0.")), "eth0 {eth0}");
    assert!(net1.starts_with(&format!("10.{o}.1.")), "net1 {net1}");
    assert!(data0.starts_with(&format!("10.{o}.2.")), "data0 {data0}");
    for ifname in ["net1", "data0"] {
        let l = common::link(&netns, ifname).unwrap();
        assert_eq!(l.kind.as_deref(), Some("macvlan"), "{ifname}: {l:?}");
    }

    // A NAD config without `name` is named after the NAD (host-local keys its leases by it).
    let mut leases = vec![
        format!("{CLUSTER}/{}", bare(&eth0)),
        format!("macvlan-a/{}", bare(&net1)),
        format!("macvlan-b/{}", bare(&data0)),
    ];
    leases.sort();
    assert_eq!(c.env.leases(), leases);

    let status = c.network_status(&pod);
    assert_eq!(status.len(), 3, "one entry per interface: {status:?}");
    assert_entry(&c, &status, &netns, "eth0", CLUSTER);
    assert_entry(&c, &status, &netns, "net1", "default/macvlan-a");
    assert_entry(&c, &status, &netns, "data0", "other/macvlan-b");
    assert_one_default(&status, "eth0");
    assert_eq!(
        entry(&status, "eth0")["gateway"],
        json!([format!("10.{o}.0.1")]),
        "the cluster network's gateway: {status:?}"
    );
    assert_requests(
        &c,
        &pod,
        1,
        &[("default", "macvlan-a"), ("other", "macvlan-b")],
    );

    c.api.clear_requests();
    c.cni("DEL", &id, &netns, &pod, &conf).ok();
    c.env.assert_nothing_left();
}

#[test]
fn json_form_with_static_ips_mac_and_interface() {
    let c = Cluster::new("kjsn", 111);
    let o = c.env.octet;
    c.put_nad("default", "macvlan-a", Some(&c.macvlan(1)));
    // No capabilities: ips/mac reach static IPAM and macvlan only as CNI_ARGS IP=/MAC=.
    c.put_nad("other", "legacy", Some(&c.macvlan_static(None)));
    // Capabilities declared: ips/mac reach them through runtimeConfig.
    c.put_nad(
        "other",
        "capable",
        Some(&c.macvlan_static(Some(json!({ "ips": true, "mac": true })))),
    );
    let ann = json!([
        { "name": "macvlan-a", "interface": "fast0", "mac": "02:00:00:6f:00:01" },
        { "name": "legacy", "namespace": "other", "interface": "st0",
          "ips": [format!("10.{o}.3.7/24")], "mac": "02:00:00:6f:00:02" },
        { "name": "capable", "namespace": "other",
          "ips": [format!("10.{o}.4.9/24")], "mac": "02:00:00:6f:00:03" },
    ])
    .to_string();
    let pod = Pod::new("default", "db");
    c.put_pod(&pod, &[(NETWORKS, &ann)]);
    let netns = c.env.add_pod();
    let id = format!("c{}", c.env.uid);
    let conf = c.conf();

    c.cni("ADD", &id, &netns, &pod, &conf).ok();

    // The unnamed third selection is the fourth attachment: net3.
    assert_eq!(c.ifnames(&netns), ["eth0", "fast0", "net3", "st0"]);
    let fast0 = c.addr(&netns, "fast0");
    assert!(fast0.starts_with(&format!("10.{o}.1.")), "fast0 {fast0}");
    c.assert_iface(&netns, "fast0", &[fast0], Some("02:00:00:6f:00:01"));
    c.assert_iface(
        &netns,
        "st0",
        &[format!("10.{o}.3.7/24")],
        Some("02:00:00:6f:00:02"),
    );
    c.assert_iface(
        &netns,
        "net3",
        &[format!("10.{o}.4.9/24")],
        Some("02:00:00:6f:00:03"),
    );

    let status = c.network_status(&pod);
    assert_eq!(status.len(), 4, "one entry per interface: {status:?}");
    assert_entry(&c, &status, &netns, "eth0", CLUSTER);
    assert_entry(&c, &status, &netns, "fast0", "default/macvlan-a");
    assert_entry(&c, &status, &netns, "st0", "other/legacy");
    assert_entry(&c, &status, &netns, "net3", "other/capable");
    assert_eq!(entry(&status, "st0")["ips"], json!([format!("10.{o}.3.7")]));
    assert_eq!(entry(&status, "st0")["mac"], "02:00:00:6f:00:02");
    assert_one_default(&status, "eth0");
    assert_requests(
        &c,
        &pod,
        1,
        &[
            ("default", "macvlan-a"),
            ("other", "legacy"),
            ("other", "capable"),
        ],
    );

    c.cni("DEL", &id, &netns, &pod, &conf).ok();
    c.env.assert_nothing_left();
}

#[test]
fn annotations_from_runtime_config_need_no_pod_get() {
    let c = Cluster::new("krtc", 112);
    let o = c.env.octet;
    two_nads(&c);
    // The stored pod asks for nothing: what plexus attaches comes from runtimeConfig.
    let pod = Pod::new("default", "rc");
    c.put_pod(&pod, &[]);
    let netns = c.env.add_pod();
    let id = format!("c{}", c.env.uid);
    let mut conf = c.conf();
    conf["runtimeConfig"] = json!({
        POD_ANNOTATIONS: { NETWORKS: "other/macvlan-b@data0", "unrelated": "x" },
    });

    c.cni("ADD", &id, &netns, &pod, &conf).ok();

    assert_eq!(c.ifnames(&netns), ["data0", "eth0"]);
    assert!(c.addr(&netns, "data0").starts_with(&format!("10.{o}.2.")));
    let status = c.network_status(&pod);
    assert_eq!(status.len(), 2, "{status:?}");
    assert_entry(&c, &status, &netns, "data0", "other/macvlan-b");
    assert_one_default(&status, "eth0");
    assert_requests(&c, &pod, 0, &[("other", "macvlan-b")]);

    c.cni("DEL", &id, &netns, &pod, &conf).ok();
    c.env.assert_nothing_left();
}

#[test]
fn default_network_annotation_replaces_the_cluster_network() {
    let c = Cluster::new("kdfn", 113);
    let o = c.env.octet;
    c.put_nad("other", "alt", Some(&c.macvlan(5)));
    c.put_nad("default", "macvlan-a", Some(&c.macvlan(1)));
    let pod = Pod::new("default", "alt");
    c.put_pod(
        &pod,
        &[(DEFAULT_NETWORK, "other/alt"), (NETWORKS, "macvlan-a")],
    );
    let netns = c.env.add_pod();
    let id = format!("c{}", c.env.uid);
    let conf = c.conf();

    let res = c.cni("ADD", &id, &netns, &pod, &conf).ok();

    assert_eq!(c.ifnames(&netns), ["eth0", "net1"]);
    let eth0 = common::link(&netns, "eth0").unwrap();
    assert_eq!(
        eth0.kind.as_deref(),
        Some("macvlan"),
        "eth0 comes from the override, not the bridge: {eth0:?}"
    );
    let addr = c.addr(&netns, "eth0");
    assert!(addr.starts_with(&format!("10.{o}.5.")), "eth0 {addr}");
    assert!(
        res["ips"].to_string().contains(&bare(&addr)),
        "the result is the override's: {res}"
    );
    assert!(
        !c.env.leases().iter().any(|l| l.starts_with(CLUSTER)),
        "the configured cluster network must not run: {:?}",
        c.env.leases()
    );
    let status = c.network_status(&pod);
    assert_eq!(status.len(), 2, "{status:?}");
    assert_entry(&c, &status, &netns, "eth0", "other/alt");
    assert_entry(&c, &status, &netns, "net1", "default/macvlan-a");
    assert_one_default(&status, "eth0");

    c.cni("DEL", &id, &netns, &pod, &conf).ok();
    c.env.assert_nothing_left();
}

#[test]
fn system_namespaces_get_no_default_networks() {
    let c = Cluster::new("ksys", 114);
    write_conf(
        &c.env,
        "20-macvlan-a.conf",
        &macvlan_conf(&c.env, "macvlan-a", 1),
    );
    let mut conf = c.conf();
    conf["defaultNetworks"] = json!(["macvlan-a"]);
    let mut custom = conf.clone();
    custom["systemNamespaces"] = json!("infra, tools");

    // (pod, config, interfaces expected)
    let rows: [(Pod, &Value, &[&str]); 4] = [
        (Pod::new("default", "app"), &conf, &["eth0", "net1"]),
        (Pod::new("kube-system", "dns"), &conf, &["eth0"]),
        (Pod::new("tools", "t"), &custom, &["eth0"]),
        (Pod::new("kube-system", "k"), &custom, &["eth0", "net1"]),
    ];
    for (i, (pod, conf, want)) in rows.iter().enumerate() {
        c.put_pod(pod, &[]);
        let netns = c.env.add_pod();
        let id = format!("c{}s{i}", c.env.uid);
        c.cni("ADD", &id, &netns, pod, conf).ok();
        assert_eq!(
            c.ifnames(&netns),
            *want,
            "pod {}/{} (systemNamespaces {})",
            pod.namespace,
            pod.name,
            conf.get("systemNamespaces").unwrap_or(&json!("default"))
        );
        let status = c.network_status(pod);
        assert_eq!(status.len(), want.len(), "{status:?}");
        assert_one_default(&status, "eth0");
        c.cni("DEL", &id, &netns, pod, conf).ok();
    }
    c.env.assert_nothing_left();
}

#[test]
fn nad_with_empty_config_uses_the_conf_file_of_that_name() {
    let c = Cluster::new("kemp", 115);
    let o = c.env.octet;
    write_conf(
        &c.env,
        "30-disk.conf",
        &macvlan_conf(&c.env, "from-disk", 6),
    );
    c.put_nad("default", "from-disk", None);
    c.api.put_nad(json!({
        "apiVersion": "k8s.cni.cncf.io/v1",
        "kind": "NetworkAttachmentDefinition",
        "metadata": { "name": "from-disk", "namespace": "other" },
        "spec": { "config": "" },
    }));
    let pod = Pod::new("default", "disk");
    c.put_pod(&pod, &[(NETWORKS, "from-disk@d0,other/from-disk@d1")]);
    let netns = c.env.add_pod();
    let id = format!("c{}", c.env.uid);
    let conf = c.conf();

    c.cni("ADD", &id, &netns, &pod, &conf).ok();

    assert_eq!(c.ifnames(&netns), ["d0", "d1", "eth0"]);
    for ifname in ["d0", "d1"] {
        let a = c.addr(&netns, ifname);
        assert!(a.starts_with(&format!("10.{o}.6.")), "{ifname} {a}");
    }
    let status = c.network_status(&pod);
    assert_entry(&c, &status, &netns, "d0", "default/from-disk");
    assert_entry(&c, &status, &netns, "d1", "other/from-disk");

    c.cni("DEL", &id, &netns, &pod, &conf).ok();
    c.env.assert_nothing_left();
}

#[test]
fn cluster_network_and_default_networks_as_nad_names() {
    let c = Cluster::new("kcln", 116);
    let o = c.env.octet;
    // Only NADs: nothing in confDir is named like them.
    std::fs::remove_file(&c.cluster_path).unwrap();
    let mut cluster = cluster_conflist(&c.env);
    cluster.as_object_mut().unwrap().remove("name");
    c.put_nad("kube-system", "cluster-nad", Some(&cluster));
    c.put_nad("kube-system", "extra", Some(&c.macvlan(1)));
    c.put_nad("plexus-system", "cluster-nad", Some(&cluster));
    c.put_nad("plexus-system", "extra", Some(&c.macvlan(2)));

    let mut conf = c.conf();
    conf["clusterNetwork"] = json!("cluster-nad");
    conf["defaultNetworks"] = json!(["extra"]);
    let mut moved = conf.clone();
    moved["multusNamespace"] = json!("plexus-system");

    for (i, (conf, ns, third)) in [(&conf, "kube-system", 1), (&moved, "plexus-system", 2)]
        .into_iter()
        .enumerate()
    {
        let pod = Pod::new("default", &format!("p{i}"));
        c.put_pod(&pod, &[]);
        let netns = c.env.add_pod();
        let id = format!("c{}n{i}", c.env.uid);
        c.api.clear_requests();
        c.cni("ADD", &id, &netns, &pod, conf).ok();

        assert_eq!(c.ifnames(&netns), ["eth0", "net1"], "multusNamespace {ns}");
        let eth0 = common::link(&netns, "eth0").unwrap();
        assert_eq!(
            eth0.kind.as_deref(),
            Some("veth"),
            "eth0 from the bridge NAD"
        );
        assert!(c.addr(&netns, "eth0").starts_with(&format!("10.{o}.0.")));
        assert!(
            c.addr(&netns, "net1")
                .starts_with(&format!("10.{o}.{third}."))
        );
        assert_eq!(c.count_exact("GET", &nad_path(ns, "cluster-nad")), 1);
        assert_eq!(c.count_exact("GET", &nad_path(ns, "extra")), 1);
        let status = c.network_status(&pod);
        assert_eq!(status.len(), 2, "{status:?}");
        assert_one_default(&status, "eth0");
        assert_entry(&c, &status, &netns, "net1", &format!("{ns}/extra"));

        c.cni("DEL", &id, &netns, &pod, conf).ok();
    }
    c.env.assert_nothing_left();
}

#[test]
fn added_interface_event_only_when_switched_on() {
    let c = Cluster::new("kevt", 117);
    two_nads(&c);
    let pod = Pod::new("default", "ev");
    c.put_pod(&pod, &[(NETWORKS, "macvlan-a,other/macvlan-b@data0")]);
    let mut conf = c.conf();
    conf["addedInterfaceEvents"] = json!(true);

    for (i, (conf, events)) in [(&c.conf(), 0), (&conf, 1)].into_iter().enumerate() {
        let before = c.api.events().len();
        let netns = c.env.add_pod();
        let id = format!("c{}e{i}", c.env.uid);
        c.cni("ADD", &id, &netns, &pod, conf).ok();
        let new: Vec<Value> = c.api.events()[before..].to_vec();
        assert_eq!(new.len(), events, "events: {new:?}");
        if let Some(e) = new.first() {
            assert_eq!(e["reason"], "AddedInterface", "{e}");
            let text = e.to_string();
            for ifname in ["eth0", "net1", "data0"] {
                assert!(text.contains(ifname), "the event lists {ifname}: {e}");
            }
            assert!(text.contains("other/macvlan-b"), "{e}");
        }
        c.cni("DEL", &id, &netns, &pod, conf).ok();
    }
    c.env.assert_nothing_left();
}
