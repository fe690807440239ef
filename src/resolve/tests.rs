//! The resolver, table by table: config references, the self-reference rule for every origin,
//! the pod's plan with defaults, overrides, system namespaces and isolation.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;
use crate::plan::Origin;

fn cfg(v: Value) -> Config {
    let mut base = json!({"cniVersion": "1.0.0", "name": "plexus-net", "type": "plexus",
        "confDir": "/nonexistent-plexus-confdir"});
    if let (Some(b), Some(o)) = (base.as_object_mut(), v.as_object()) {
        b.extend(o.clone());
    }
    Config::parse(base.to_string().as_bytes()).unwrap()
}

fn conf(name: &str, ty: &str) -> Value {
    json!({"cniVersion": "1.0.0", "name": name, "type": ty})
}

fn pod() -> PodRef {
    PodRef {
        namespace: "ns".into(),
        name: "p".into(),
        uid: Some("u1".into()),
    }
}

struct Nads(Vec<(&'static str, &'static str, Value)>);

impl NadSource for Nads {
    fn nad(&self, key: &NadKey) -> Result<ResolvedNad, ResolveError> {
        let (_, _, v) = self
            .0
            .iter()
            .find(|(ns, n, _)| (ns.to_string(), n.to_string()) == *key)
            .ok_or_else(|| ResolveError::Nad {
                namespace: key.0.clone(),
                name: key.1.clone(),
                reason: Box::new(NadProblem::NotFound),
            })?;
        Ok(ResolvedNad {
            conf: ConfList::from_value(v.clone(), "t", Some(&key.1)).unwrap(),
            resource: None,
        })
    }
}

fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn a_config_that_runs_plexus_itself_is_refused_whoever_asks() {
    // delegates[0] of type plexus: refused for a call with a pod and one without (they used to
    // differ), as a default network, and as a NAD.
    let own = cfg(json!({"delegates": [conf("loop", "plexus")]}));
    let r = Resolver::new(&own, "eth0", &[]);
    for (name, got) in [
        ("cluster network alone", r.cluster_network().map(|_| ())),
        ("config networks", r.config_networks().map(|_| ())),
        ("config plan", r.config_plan().map(|_| ())),
    ] {
        let e = got.expect_err(name);
        assert!(e.to_string().contains("runs plexus itself"), "{name}: {e}");
    }
    let default = cfg(json!({"delegates": [conf("c", "bridge"), conf("d", "plexus")]}));
    let e = Resolver::new(&default, "eth0", &[])
        .config_networks()
        .unwrap_err();
    assert!(e.to_string().contains("runs plexus itself"), "{e}");
    let plain = cfg(json!({"delegates": [conf("c", "bridge")]}));
    let nad = crate::k8s::nad::NadObject {
        spec: Some(crate::k8s::nad::NetworkAttachmentDefinitionSpec {
            config: Some(conf("x", "plexus").to_string()),
        }),
        ..Default::default()
    };
    let e = Resolver::new(&plain, "eth0", &[])
        .nad_conf(&("ns".into(), "x".into()), &nad)
        .unwrap_err();
    assert!(e.to_string().contains("runs plexus itself"), "{e}");
}

#[test]
fn config_references_table() {
    let rows: Vec<(&str, Value, Result<(Ref, usize), &str>)> = vec![
        (
            "inline delegates",
            json!({"delegates": [conf("c", "bridge"), conf("d", "macvlan")]}),
            Ok((
                Ref::Conf(ConfList::from_value(conf("c", "bridge"), "delegates[0]", None).unwrap()),
                1,
            )),
        ),
        (
            "NAD names in multusNamespace and ns/name",
            json!({"clusterNetwork": "flannel", "defaultNetworks": ["other/storage"]}),
            Ok((Ref::Nad(("kube-system".into(), "flannel".into())), 1)),
        ),
        (
            "multusNamespace",
            json!({"clusterNetwork": "flannel", "multusNamespace": "net"}),
            Ok((Ref::Nad(("net".into(), "flannel".into())), 0)),
        ),
        (
            "nothing",
            json!({}),
            Err("neither clusterNetwork nor delegates"),
        ),
        (
            "missing file",
            json!({"clusterNetwork": "/nonexistent/10.conf"}),
            Err("no such file"),
        ),
    ];
    for (name, v, want) in rows {
        let c = cfg(v);
        match (Resolver::new(&c, "eth0", &[]).config_networks(), want) {
            (Ok(n), Ok((cluster, defaults))) => {
                assert_eq!(n.cluster, cluster, "{name}");
                assert_eq!(n.defaults.len(), defaults, "{name}");
            }
            (Err(e), Err(frag)) => assert!(e.to_string().contains(frag), "{name}: {e}"),
            (got, _) => panic!("{name}: {got:?}"),
        }
    }
}

#[test]
fn a_nad_cluster_network_needs_the_api_without_a_pod() {
    let c = cfg(json!({"clusterNetwork": "flannel"}));
    let e = Resolver::new(&c, "eth0", &[]).config_plan().unwrap_err();
    assert!(matches!(e, ResolveError::NoApiAccess { .. }), "{e}");
}

#[test]
fn pod_plan_table() {
    type Row<'a> = (
        &'a str,
        Value,
        Vec<(&'a str, &'a str)>,
        Result<Vec<(&'a str, &'a str, Origin)>, &'a str>,
    );
    let nets = "k8s.v1.cni.cncf.io/networks";
    let over = "v1.multus-cni.io/default-network";
    let base = json!({"delegates": [conf("cluster", "bridge"), conf("d", "ptp")]});
    let rows: Vec<Row> = vec![
        (
            "defaults then selections",
            base.clone(),
            vec![(nets, "a,other/b@data0")],
            Ok(vec![
                ("cluster", "eth0", Origin::Cluster),
                ("d", "net1", Origin::Default),
                ("ns/a", "net2", Origin::Selected),
                ("other/b", "data0", Origin::Selected),
            ]),
        ),
        (
            "override replaces the cluster network",
            base.clone(),
            vec![(over, "other/b")],
            Ok(vec![
                ("other/b", "eth0", Origin::Cluster),
                ("d", "net1", Origin::Default),
            ]),
        ),
        (
            "system namespace: no defaults",
            json!({"delegates": [conf("cluster", "bridge"), conf("d", "ptp")],
                   "systemNamespaces": ["ns"]}),
            vec![(nets, "a")],
            Ok(vec![
                ("cluster", "eth0", Origin::Cluster),
                ("ns/a", "net1", Origin::Selected),
            ]),
        ),
        (
            "isolation refuses another namespace",
            json!({"delegates": [conf("cluster", "bridge")], "namespaceIsolation": true}),
            vec![(nets, "other/b")],
            Err("namespaceIsolation is on"),
        ),
        (
            "isolation allows a global namespace",
            json!({"delegates": [conf("cluster", "bridge")], "namespaceIsolation": true,
                   "globalNamespaces": "other"}),
            vec![(nets, "other/b")],
            Ok(vec![
                ("cluster", "eth0", Origin::Cluster),
                ("other/b", "net1", Origin::Selected),
            ]),
        ),
        (
            "unknown NAD",
            base.clone(),
            vec![(nets, "nope")],
            Err("ns/nope: not found"),
        ),
        (
            "invalid annotation",
            base.clone(),
            vec![(nets, "a@")],
            Err("k8s.v1.cni.cncf.io/networks"),
        ),
        (
            "duplicate interface",
            base.clone(),
            vec![(nets, "a@net1")],
            Err("used twice"),
        ),
    ];
    let nads = Nads(vec![
        ("ns", "a", conf("a", "macvlan")),
        ("other", "b", conf("b", "macvlan")),
    ]);
    for (name, v, ann, want) in rows {
        let c = cfg(v);
        let r = Resolver::new(&c, "eth0", &[]);
        let got = r.config_networks().and_then(|n| {
            let req = r.pod_request(&pod(), &annotations(&ann))?;
            r.pod_plan(&pod(), &req, &n, &nads, None)
        });
        match (got, want) {
            (Ok(plan), Ok(want)) => {
                let got: Vec<(&str, &str, Origin)> = plan
                    .iter()
                    .map(|a| (a.network.as_str(), a.ifname.as_str(), a.origin))
                    .collect();
                assert_eq!(got, want, "{name}");
            }
            (Err(e), Err(frag)) => assert!(e.to_string().contains(frag), "{name}: {e}"),
            (got, _) => panic!("{name}: {got:?}"),
        }
    }
}

#[test]
fn wanted_lists_every_nad_once() {
    let c = cfg(json!({"clusterNetwork": "flannel", "defaultNetworks": ["other/storage", "x/y"]}));
    let r = Resolver::new(&c, "eth0", &[]);
    let nets = r.config_networks().unwrap();
    let req = r
        .pod_request(
            &pod(),
            &annotations(&[("k8s.v1.cni.cncf.io/networks", "a,a,other/storage")]),
        )
        .unwrap();
    let k = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(
        r.wanted(&pod(), &req, &nets),
        [
            k("kube-system", "flannel"),
            k("ns", "a"),
            k("other", "storage"),
            k("x", "y")
        ]
    );
}

struct Devices;

impl DeviceSource for Devices {
    fn devices(&self, uid: &str, resource: &str) -> Result<Vec<String>, DeviceProblem> {
        assert_eq!((uid, resource), ("u1", "vendor.com/vf"));
        Ok(vec!["0000:01:00.1".into(), "0000:01:00.2".into()])
    }
}

struct DeviceNads;

impl NadSource for DeviceNads {
    fn nad(&self, key: &NadKey) -> Result<ResolvedNad, ResolveError> {
        Ok(ResolvedNad {
            conf: ConfList::from_value(conf(&key.1, "sriov"), "t", None).unwrap(),
            resource: Some("vendor.com/vf".into()),
        })
    }
}

#[test]
fn each_attachment_of_a_resource_gets_the_next_device() {
    let c = cfg(json!({"delegates": [conf("cluster", "bridge")]}));
    let r = Resolver::new(&c, "eth0", &[]);
    let nets = r.config_networks().unwrap();
    let ann = annotations(&[("k8s.v1.cni.cncf.io/networks", "vf@a,vf@b,vf@c")]);
    let req = r.pod_request(&pod(), &ann).unwrap();
    let e = r
        .pod_plan(&pod(), &req, &nets, &DeviceNads, Some(&Devices))
        .unwrap_err();
    assert!(e.to_string().contains("no free device"), "{e}");
    let ann = annotations(&[("k8s.v1.cni.cncf.io/networks", "vf@a,vf@b")]);
    let req = r.pod_request(&pod(), &ann).unwrap();
    let plan = r
        .pod_plan(&pod(), &req, &nets, &DeviceNads, Some(&Devices))
        .unwrap();
    let ids: Vec<&Value> = plan[1..]
        .iter()
        .map(|a| &a.conf.plugins[0]["deviceID"])
        .collect();
    assert_eq!(ids, [&json!("0000:01:00.1"), &json!("0000:01:00.2")]);
    assert_eq!(plan[2].runtime_config["deviceID"], "0000:01:00.2");
}
