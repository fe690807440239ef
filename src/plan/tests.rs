//! Tests of `plan`: interface names, selections, capabilities, self-containment, schedules.

use super::*;

#[test]
fn self_contained_table() {
    let att = |conf: Value, cluster: bool| Attachment {
        network: "n".into(),
        ifname: "net1".into(),
        conf: ConfList::from_value(conf, "t", None).unwrap(),
        runtime_config: Map::new(),
        origin: if cluster {
            Origin::Cluster
        } else {
            Origin::Selected
        },
        cni_args: String::new(),
        default_route: vec![],
    };
    let hl = json!({"type": "host-local", "subnet": "10.1.0.0/24"});
    let rows: Vec<(&str, Value, bool, bool)> = vec![
        (
            "macvlan, host-local",
            json!({"cniVersion": "1.0.0", "name": "a", "type": "macvlan", "ipam": hl}),
            false,
            true,
        ),
        (
            "ipvlan, no ipam",
            json!({"cniVersion": "1.0.0", "name": "a", "type": "ipvlan"}),
            false,
            true,
        ),
        (
            "vlan, host-local",
            json!({"cniVersion": "1.0.0", "name": "a", "type": "vlan", "ipam": hl}),
            false,
            true,
        ),
        (
            "host-device, static",
            json!({"cniVersion": "1.0.0", "name": "a", "type": "host-device", "ipam": {"type": "static", "addresses": []}}),
            false,
            true,
        ),
        (
            "whereabouts, 10/8 route",
            json!({"cniVersion": "1.0.0", "name": "a", "type": "macvlan", "ipam": {"type": "whereabouts", "routes": [{"dst": "10.0.0.0/8"}]}}),
            false,
            true,
        ),
        (
            "the cluster network itself",
            json!({"cniVersion": "1.0.0", "name": "a", "type": "macvlan", "ipam": hl}),
            true,
            false,
        ),
        (
            "bridge: makes host-side links",
            json!({"cniVersion": "1.0.0", "name": "a", "type": "bridge", "ipam": hl}),
            false,
            false,
        ),
        (
            "unknown plugin",
            json!({"cniVersion": "1.0.0", "name": "a", "type": "my-cni", "ipam": hl}),
            false,
            false,
        ),
        (
            "chained tuning",
            json!({"cniVersion": "1.0.0", "name": "a", "plugins": [{"type": "macvlan", "ipam": hl}, {"type": "tuning"}]}),
            false,
            false,
        ),
        (
            "dhcp: routes from a server",
            json!({"cniVersion": "1.0.0", "name": "a", "type": "macvlan", "ipam": {"type": "dhcp"}}),
            false,
            false,
        ),
        (
            "default route in ipam v4",
            json!({"cniVersion": "1.0.0", "name": "a", "type": "macvlan", "ipam": {"type": "host-local", "subnet": "10.1.0.0/24", "routes": [{"dst": "0.0.0.0/0"}]}}),
            false,
            false,
        ),
        (
            "default route in ipam v6",
            json!({"cniVersion": "1.0.0", "name": "a", "type": "macvlan", "ipam": {"type": "static", "routes": [{"dst": "::/0"}]}}),
            false,
            false,
        ),
        (
            "routes not a list",
            json!({"cniVersion": "1.0.0", "name": "a", "type": "macvlan", "ipam": {"type": "static", "routes": "x"}}),
            false,
            false,
        ),
    ];
    for (name, conf, cluster, want) in rows {
        assert_eq!(att(conf, cluster).self_contained(), want, "{name}");
    }
}
use serde_json::json;

fn net(name: &str, caps: Value) -> Network {
    Network::from_conf(
        ConfList::from_value(
            json!({"cniVersion":"1.0.0","name":name,"type":"macvlan","capabilities":caps}),
            "t",
            None,
        )
        .unwrap(),
    )
}

fn sel(v: Value) -> Selection {
    crate::k8s::selection::parse_networks(&json!([v]).to_string(), "ns")
        .unwrap()
        .remove(0)
}

fn with(mut n: Network, s: Selection) -> Network {
    n.status_name = format!("ns/{}", n.conf.name);
    n.selection = Some(s);
    n
}

fn run(extra: Vec<Network>, strict: bool) -> Result<Vec<Attachment>, PlanError> {
    let rc = json!({"portMappings":[]}).as_object().unwrap().clone();
    let args = vec![("K8S_POD_NAME".to_string(), "p".to_string())];
    plan(PlanInput {
        cluster: net("cluster", json!({})),
        defaults: Vec::new(),
        selected: extra,
        runtime_ifname: "eth0",
        runtime_config: &rc,
        runtime_args: &args,
        strict_capabilities: strict,
    })
}

#[test]
fn ifname_table() {
    let rows: &[(&str, Vec<Network>, Result<Vec<&str>, &str>)] = &[
        ("cluster only", vec![], Ok(vec!["eth0"])),
        (
            "numbering",
            vec![net("a", json!({})), net("b", json!({}))],
            Ok(vec!["eth0", "net1", "net2"]),
        ),
        (
            "requested name keeps numbering of the rest",
            vec![
                with(
                    net("a", json!({})),
                    sel(json!({"name":"a","interface":"data0"})),
                ),
                net("b", json!({})),
            ],
            Ok(vec!["eth0", "data0", "net2"]),
        ),
        (
            "requested clashes with generated",
            vec![
                net("a", json!({})),
                with(
                    net("b", json!({})),
                    sel(json!({"name":"b","interface":"net1"})),
                ),
            ],
            Err("used twice"),
        ),
        (
            "requested eth0",
            vec![with(
                net("a", json!({})),
                sel(json!({"name":"a","interface":"eth0"})),
            )],
            Err("used twice"),
        ),
        (
            "two v4 default routes",
            vec![
                with(
                    net("a", json!({})),
                    sel(json!({"name":"a","default-route":["10.0.0.1"]})),
                ),
                with(
                    net("b", json!({})),
                    sel(json!({"name":"b","default-route":["10.1.0.1"]})),
                ),
            ],
            Err("at most one per IP family"),
        ),
        (
            "v4 and v6 default routes",
            vec![
                with(
                    net("a", json!({})),
                    sel(json!({"name":"a","default-route":["10.0.0.1"]})),
                ),
                with(
                    net("b", json!({})),
                    sel(json!({"name":"b","default-route":["fd00::1"]})),
                ),
            ],
            Ok(vec!["eth0", "net1", "net2"]),
        ),
    ];
    for (name, extra, want) in rows {
        match (run(extra.clone(), false), want) {
            (Ok(p), Ok(names)) => {
                let got: Vec<&str> = p.iter().map(|a| a.ifname.as_str()).collect();
                assert_eq!(&got, names, "{name}");
                assert!(
                    p[0].is_cluster() && p.iter().skip(1).all(|a| !a.is_cluster()),
                    "{name}"
                );
            }
            (Err(e), Err(frag)) => assert!(e.to_string().contains(frag), "{name}: {e}"),
            (got, _) => panic!("{name}: {got:?}"),
        }
    }
}

#[test]
fn selection_effects() {
    let s = sel(
        json!({"name":"a","ips":["10.1.1.5/24"],"mac":"02:00:00:00:00:01",
        "cni-args":{"foo":"bar"},"bandwidth":{"ingressRate":1}}),
    );
    let p = run(
        vec![with(net("a", json!({"ips":true,"mac":true})), s)],
        false,
    )
    .unwrap();
    let a = &p[1];
    assert_eq!(a.network, "ns/a");
    assert_eq!(a.runtime_config["ips"], json!(["10.1.1.5/24"]));
    assert_eq!(a.runtime_config["mac"], json!("02:00:00:00:00:01"));
    assert_eq!(a.runtime_config["bandwidth"], json!({"ingressRate":1}));
    assert_eq!(
        a.cni_args,
        "IgnoreUnknown=1;K8S_POD_NAME=p;IP=10.1.1.5/24;MAC=02:00:00:00:00:01"
    );
    assert_eq!(a.conf.plugins[0]["args"]["cni"]["foo"], "bar");
    assert_eq!(
        p[0].runtime_config,
        json!({"portMappings":[]}).as_object().unwrap().clone()
    );
    assert_eq!(p[0].cni_args, "K8S_POD_NAME=p");
}

#[test]
fn strict_capabilities_table() {
    let rows: &[(&str, Value, Value, bool, bool)] = &[
        (
            "mac declared",
            json!({"mac":true}),
            json!({"name":"a","mac":"02:00:00:00:00:01"}),
            true,
            true,
        ),
        (
            "mac undeclared strict",
            json!({}),
            json!({"name":"a","mac":"02:00:00:00:00:01"}),
            true,
            false,
        ),
        (
            "mac undeclared lenient",
            json!({}),
            json!({"name":"a","mac":"02:00:00:00:00:01"}),
            false,
            true,
        ),
        (
            "ips undeclared strict",
            json!({"mac":true}),
            json!({"name":"a","ips":["10.0.0.1/24"]}),
            true,
            false,
        ),
        ("nothing asked", json!({}), json!({"name":"a"}), true, true),
    ];
    for (name, caps, s, strict, ok) in rows {
        let got = run(vec![with(net("a", caps.clone()), sel(s.clone()))], *strict);
        assert_eq!(got.is_ok(), *ok, "{name}: {got:?}");
        if let Err(e) = got {
            assert!(e.to_string().contains("capability"), "{name}: {e}");
        }
    }
}

#[test]
fn schedule_table() {
    let att = |ty: &str, origin: Origin| Attachment {
        network: ty.into(),
        ifname: "x".into(),
        conf: ConfList::from_value(
            json!({"cniVersion":"1.0.0","name":"n","type":ty}),
            "t",
            None,
        )
        .unwrap(),
        runtime_config: Map::new(),
        origin,
        cni_args: String::new(),
        default_route: vec![],
    };
    let (c, m, t) = ("bridge", "macvlan", "ptp");
    type Row<'a> = (&'a str, Vec<&'a str>, bool, Vec<Vec<usize>>);
    let rows: Vec<Row> = vec![
        (
            "strict",
            vec![c, m, m, t],
            false,
            vec![vec![], vec![0], vec![1], vec![2]],
        ),
        (
            "parallel, all self-contained",
            vec![c, m, m, m],
            true,
            vec![vec![], vec![], vec![], vec![]],
        ),
        (
            "parallel, a chain in the middle",
            vec![c, m, t, m, m],
            true,
            vec![vec![], vec![], vec![0, 1], vec![2], vec![2]],
        ),
        ("parallel, cluster only", vec![c], true, vec![vec![]]),
    ];
    for (name, types, parallel, want) in rows {
        let plan: Vec<Attachment> = types
            .iter()
            .enumerate()
            .map(|(i, ty)| {
                att(
                    ty,
                    if i == 0 {
                        Origin::Cluster
                    } else {
                        Origin::Selected
                    },
                )
            })
            .collect();
        assert_eq!(schedule(&plan, parallel), want, "{name}");
    }
}
