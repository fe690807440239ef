//! [`judge`] on each kind of problem, and the reasons they map to.

use serde_json::json;

use super::*;
use crate::link::Iface;

fn step(kind: &str, master: Option<&str>) -> Step {
    let mut conf = json!({"cniVersion": "1.0.0", "name": "n", "type": kind});
    if let Some(m) = master {
        conf["master"] = json!(m);
    }
    serde_json::from_value(json!({
        "network": "ns/n", "ifname": "net1", "origin": "selected", "conf": conf,
        "state": "added",
        "result": {"cniVersion": "1.0.0",
            "interfaces": [{"name": "net1", "mac": "0A:58:0a:00:00:02", "sandbox": "/run/netns/p"}],
            "ips": [{"address": "10.0.0.2/24", "interface": 0}]},
    }))
    .unwrap()
}

fn good() -> Iface {
    Iface {
        addresses: vec!["10.0.0.2".parse().unwrap()],
        up: true,
        mac: Some(vec![0x0a, 0x58, 0x0a, 0, 0, 2]),
    }
}

#[test]
fn each_problem_has_its_reason() {
    let up = Some(Master::Up("eth9".into()));
    let rows: Vec<(&str, Option<Iface>, Option<Master>, Option<Reason>)> = vec![
        ("healthy", Some(good()), up.clone(), None),
        ("healthy, no master asked", Some(good()), None, None),
        ("missing", None, up.clone(), Some(Reason::InterfaceMissing)),
        (
            "replaced",
            Some(Iface {
                mac: Some(vec![2, 0, 0, 0, 0, 1]),
                ..good()
            }),
            up.clone(),
            Some(Reason::InterfaceMissing),
        ),
        (
            "down",
            Some(Iface {
                up: false,
                ..good()
            }),
            up.clone(),
            Some(Reason::LinkDown),
        ),
        (
            "address flushed",
            Some(Iface {
                addresses: vec![],
                ..good()
            }),
            up.clone(),
            Some(Reason::AddressMissing),
        ),
        (
            "master down",
            Some(good()),
            Some(Master::Down("eth9".into())),
            Some(Reason::MasterDown),
        ),
        (
            "master gone (and the interface with it)",
            None,
            Some(Master::Missing("eth9".into())),
            Some(Reason::MasterDown),
        ),
    ];
    let s = step("macvlan", Some("eth9"));
    for (name, link, master, want) in rows {
        let got = judge(&s, &Seen { link, master }).err().map(|p| p.reason());
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn only_stacked_kinds_have_a_master() {
    let rows = [
        ("macvlan", Some("eth9"), Some("eth9")),
        ("macvlan", None, Some("")),
        ("ipvlan", Some("eth9"), Some("eth9")),
        ("vlan", Some("eth9"), Some("eth9")),
        ("bridge", None, None),
        ("host-device", None, None),
    ];
    for (kind, master, want) in rows {
        assert_eq!(
            configured_master(&step(kind, master)).as_deref(),
            want,
            "{kind}"
        );
    }
}
