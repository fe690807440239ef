//! Kubernetes, end to end: every way a pod's request can be wrong fails ADD with error 7
//! (invalid network config) and a message naming the problem, before anything runs: nothing is
//! left behind (no link, no lease, no journal) and no status is written.

mod common;

use common::k8s::{Cluster, DEFAULT_NETWORK, NETWORKS, Pod};
use serde_json::{Value, json};

/// Runs ADD for `pod` (its annotations already stored) and asserts a code-7 failure whose
/// message contains every `needles` entry, with nothing left and no write to the server.
fn assert_rejected(c: &Cluster, row: &str, pod: &Pod, conf: &Value, needles: &[&str]) {
    let netns = c.env.add_pod();
    let id = format!("c{}{}", c.env.uid, row.len());
    c.api.clear_requests();
    let out = c.cni("ADD", &id, &netns, pod, conf);
    let (code, msg) = out.err();
    assert_eq!(code, 7, "[{row}] wrong code; message: {msg}");
    for n in needles {
        assert!(
            msg.contains(n),
            "[{row}] the message should name {n:?}: {msg}"
        );
    }
    assert_eq!(
        c.ifnames(&netns),
        Vec::<String>::new(),
        "[{row}] pod netns must stay empty"
    );
    c.env.assert_nothing_left();
    c.assert_no_writes();
    c.env.del_pod(&netns);
}

#[test]
#[allow(clippy::too_many_lines)] // one table
fn malformed_network_annotations_are_rejected() {
    let c = Cluster::new("kbad", 120);
    c.put_nad("default", "macvlan-a", Some(&c.macvlan(1)));
    c.put_nad("other", "macvlan-b", Some(&c.macvlan(2)));
    let conf = c.conf();
    let pod = Pod::new("default", "bad");
    let long_name = format!("{}.x", "a".repeat(253));
    let oversized = format!("macvlan-a@{}", "x".repeat(70 * 1024));
    let too_many = vec!["macvlan-a"; 65].join(",");
    let two_routes = json!([
        { "name": "macvlan-a", "interface": "a0", "default-route": ["10.1.1.1"] },
        { "name": "macvlan-b", "namespace": "other", "interface": "b0",
          "default-route": ["10.1.2.1"] },
    ])
    .to_string();

    // (row name, annotation value, what the message must name)
    let rows: Vec<(&str, String, Vec<&str>)> =
        vec![
        (
            "broken JSON",
            r#"[{"name": "macvlan-a""#.into(),
            vec!["invalid JSON"],
        ),
        (
            "JSON object, not a list",
            r#"{"name": "macvlan-a"}"#.into(),
            vec!["expected a JSON list"],
        ),
        ("element not an object", r#"[42]"#.into(), vec!["element 0", "selection object"]),
        (
            "element without name",
            r#"[{"interface": "net5"}]"#.into(),
            vec!["field \"name\"", "required"],
        ),
        (
            "name with uppercase",
            "Macvlan-A".into(),
            vec!["Macvlan-A", "uppercase"],
        ),
        (
            "name with underscore",
            "macvlan_a".into(),
            vec!["macvlan_a"],
        ),
        ("name too long", long_name, vec!["253"]),
        (
            "bad namespace",
            "Other/macvlan-b".into(),
            vec!["namespace", "Other"],
        ),
        (
            "empty element",
            "macvlan-a,,other/macvlan-b".into(),
            vec!["empty"],
        ),
        ("empty name before @", "@data0".into(), vec!["@data0", "field \"name\""]),
        (
            "ifname too long",
            "macvlan-a@abcdefghijklmnop".into(),
            vec!["abcdefghijklmnop", "15"],
        ),
        (
            "ifname with a slash",
            r#"[{"name": "macvlan-a", "interface": "a/b"}]"#.into(),
            vec!["interface", "a/b"],
        ),
        (
            "ifname not a string",
            r#"[{"name": "macvlan-a", "interface": 5}]"#.into(),
            vec!["interface"],
        ),
        (
            "duplicate ifnames",
            "macvlan-a@data0,other/macvlan-b@data0".into(),
            vec!["data0", "element 0"],
        ),
        (
            "ifname of the cluster network",
            "macvlan-a@eth0".into(),
            vec!["eth0"],
        ),
        (
            "two default-routes for IPv4",
            two_routes,
            vec!["default-route", "10.1.2.1"],
        ),
        (
            "default-route not an IP",
            r#"[{"name": "macvlan-a", "default-route": ["gw"]}]"#.into(),
            vec!["default-route", "gw"],
        ),
        (
            "bad MAC",
            r#"[{"name": "macvlan-a", "mac": "02:00:00:00:00"}]"#.into(),
            vec!["mac", "02:00:00:00:00"],
        ),
        (
            "bad IP",
            r#"[{"name": "macvlan-a", "ips": ["10.1.2.300/24"]}]"#.into(),
            vec!["ips", "10.1.2.300/24"],
        ),
        (
            "bad prefix length",
            r#"[{"name": "macvlan-a", "ips": ["10.1.2.3/33"]}]"#.into(),
            vec!["ips", "10.1.2.3/33"],
        ),
        (
            "ips with ipam-claim-reference",
            r#"[{"name": "macvlan-a", "ips": ["10.1.2.3/24"], "ipam-claim-reference": "claim"}]"#
                .into(),
            vec!["ipam-claim-reference", "ips"],
        ),
        (
            "bad infiniband-guid",
            r#"[{"name": "macvlan-a", "infiniband-guid": "zz"}]"#.into(),
            vec!["infiniband-guid"],
        ),
        ("too many networks", too_many, vec!["65 networks", "limit"]),
        ("oversized", oversized, vec!["bytes, over the limit"]),
    ];
    assert!(rows.len() >= 15);
    for (row, value, needles) in &rows {
        c.put_pod(&pod, &[(NETWORKS, value)]);
        assert_rejected(&c, row, &pod, &conf, needles);
    }

    // The default-network override names exactly one network.
    for (row, value, needles) in [
        (
            "override with two networks",
            "macvlan-a,other/macvlan-b",
            vec!["exactly one"],
        ),
        ("override with a bad name", "Macvlan-A", vec!["Macvlan-A"]),
    ] {
        c.put_pod(&pod, &[(DEFAULT_NETWORK, value)]);
        assert_rejected(&c, row, &pod, &conf, &needles);
    }
}

#[test]
fn mac_without_capability_fails_only_when_strict() {
    let c = Cluster::new("kcap", 121);
    // It declares "ips" but not "mac".
    c.put_nad(
        "default",
        "plain",
        Some(&c.macvlan_static(Some(json!({ "ips": true })))),
    );
    let pod = Pod::new("default", "strict");
    let ann = json!([{ "name": "plain", "ips": ["10.121.3.3/24"], "mac": "02:00:00:79:00:01" }])
        .to_string();
    c.put_pod(&pod, &[(NETWORKS, &ann)]);
    let mut strict = c.conf();
    strict["strictCapabilities"] = json!(true);
    assert_rejected(
        &c,
        "mac without capability",
        &pod,
        &strict,
        &["\"mac\"", "default/plain", "strictCapabilities"],
    );

    // The same request without strictCapabilities works (Multus's behaviour, via CNI_ARGS).
    let netns = c.env.add_pod();
    let id = format!("c{}ok", c.env.uid);
    let conf = c.conf();
    c.cni("ADD", &id, &netns, &pod, &conf).ok();
    c.assert_iface(
        &netns,
        "net1",
        &["10.121.3.3/24".into()],
        Some("02:00:00:79:00:01"),
    );
    c.cni("DEL", &id, &netns, &pod, &conf).ok();
    c.env.assert_nothing_left();
}

#[test]
fn unknown_nad_is_rejected() {
    let c = Cluster::new("kunk", 122);
    c.put_nad("default", "macvlan-a", Some(&c.macvlan(1)));
    let pod = Pod::new("default", "unk");
    c.put_pod(&pod, &[(NETWORKS, "macvlan-a,other/nope")]);
    assert_rejected(&c, "unknown NAD", &pod, &c.conf(), &["other/nope"]);
}

#[test]
fn namespace_isolation_forbids_other_namespaces_but_global_ones() {
    let c = Cluster::new("kiso", 123);
    c.put_nad("other", "macvlan-b", Some(&c.macvlan(2)));
    let pod = Pod::new("default", "iso");
    c.put_pod(&pod, &[(NETWORKS, "other/macvlan-b")]);
    let mut conf = c.conf();
    conf["namespaceIsolation"] = json!(true);
    assert_rejected(
        &c,
        "isolation",
        &pod,
        &conf,
        &["other/macvlan-b", "namespaceIsolation"],
    );
    assert_eq!(
        c.count_exact("GET", &common::k8s::nad_path("other", "macvlan-b")),
        0,
        "a forbidden NAD is not even read"
    );

    // A global namespace is usable from every namespace.
    conf["globalNamespaces"] = json!("infra,other");
    let netns = c.env.add_pod();
    let id = format!("c{}g", c.env.uid);
    c.cni("ADD", &id, &netns, &pod, &conf).ok();
    assert_eq!(c.ifnames(&netns), ["eth0", "net1"]);
    c.cni("DEL", &id, &netns, &pod, &conf).ok();
    c.env.assert_nothing_left();
}

#[test]
fn hostile_plugin_types_in_nads_are_rejected() {
    let c = Cluster::new("khst", 124);
    let conf = c.conf();
    let pod = Pod::new("default", "hostile");
    let rows = [
        ("path traversal", "../../../../bin/sh"),
        ("absolute path", "/bin/sh"),
        ("plexus itself", "plexus"),
        ("empty type", ""),
    ];
    for (i, (row, ty)) in rows.iter().enumerate() {
        let name = format!("evil{i}");
        c.put_nad(
            "default",
            &name,
            Some(&json!({ "cniVersion": "1.0.0", "type": ty })),
        );
        c.put_pod(&pod, &[(NETWORKS, &name)]);
        assert_rejected(&c, row, &pod, &conf, &[&format!("default/{name}")]);
    }
    // A NAD whose config is not JSON at all.
    c.api.put_nad(json!({
        "apiVersion": "k8s.cni.cncf.io/v1",
        "kind": "NetworkAttachmentDefinition",
        "metadata": { "name": "garbage", "namespace": "default" },
        "spec": { "config": "{not json" },
    }));
    c.put_pod(&pod, &[(NETWORKS, "garbage")]);
    assert_rejected(&c, "config not JSON", &pod, &conf, &["default/garbage"]);
}

#[test]
fn replaced_pod_uid_mismatch_is_rejected() {
    let c = Cluster::new("kuid", 125);
    c.put_nad("default", "macvlan-a", Some(&c.macvlan(1)));
    let stored = Pod::new("default", "re");
    c.put_pod(&stored, &[(NETWORKS, "macvlan-a")]);
    let mut asked = stored.clone();
    asked.uid = "uid-of-the-old-pod".into();
    assert_rejected(
        &c,
        "UID mismatch",
        &asked,
        &c.conf(),
        &["uid-of-the-old-pod", &stored.uid],
    );
}
