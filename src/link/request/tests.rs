use super::*;
use rtnetlink::packet_route::route::RouteAttribute;

fn info(msg: &LinkMessage) -> (Option<InfoKind>, Option<InfoData>) {
    let mut kind = None;
    let mut data = None;
    for a in &msg.attributes {
        if let LinkAttribute::LinkInfo(infos) = a {
            for i in infos {
                match i {
                    LinkInfo::Kind(k) => kind = Some(k.clone()),
                    LinkInfo::Data(d) => data = Some(d.clone()),
                    _ => {}
                }
            }
        }
    }
    (kind, data)
}

fn attr<T>(msg: &LinkMessage, f: impl Fn(&LinkAttribute) -> Option<T>) -> Option<T> {
    msg.attributes.iter().find_map(f)
}

#[test]
#[allow(clippy::too_many_lines)] // one table
fn new_link_table() {
    struct Row {
        name: &'static str,
        kind: Kind,
        mtu: Option<u32>,
        mac: Option<[u8; 6]>,
        fd: Option<RawFd>,
        want_kind: InfoKind,
        want_data: InfoData,
    }
    let mac = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];
    let rows = [
        Row {
            name: "macvlan bridge, no mtu/mac",
            kind: Kind::Macvlan(MacvlanMode::Bridge),
            mtu: None,
            mac: None,
            fd: Some(7),
            want_kind: InfoKind::MacVlan,
            want_data: InfoData::MacVlan(vec![InfoMacVlan::Mode(MacVlanMode::Bridge)]),
        },
        Row {
            name: "macvlan private with mtu",
            kind: Kind::Macvlan(MacvlanMode::Private),
            mtu: Some(1400),
            mac: None,
            fd: Some(7),
            want_kind: InfoKind::MacVlan,
            want_data: InfoData::MacVlan(vec![InfoMacVlan::Mode(MacVlanMode::Private)]),
        },
        Row {
            name: "macvlan vepa with mac",
            kind: Kind::Macvlan(MacvlanMode::Vepa),
            mtu: None,
            mac: Some(mac),
            fd: Some(3),
            want_kind: InfoKind::MacVlan,
            want_data: InfoData::MacVlan(vec![InfoMacVlan::Mode(MacVlanMode::Vepa)]),
        },
        Row {
            name: "macvlan passthru",
            kind: Kind::Macvlan(MacvlanMode::Passthru),
            mtu: Some(1500),
            mac: Some(mac),
            fd: None,
            want_kind: InfoKind::MacVlan,
            want_data: InfoData::MacVlan(vec![InfoMacVlan::Mode(MacVlanMode::Passthrough)]),
        },
        Row {
            name: "ipvlan l2",
            kind: Kind::Ipvlan(IpvlanMode::L2),
            mtu: None,
            mac: None,
            fd: Some(9),
            want_kind: InfoKind::IpVlan,
            want_data: InfoData::IpVlan(vec![
                InfoIpVlan::Mode(IpVlanMode::L2),
                InfoIpVlan::Flags(IpVlanFlags::empty()),
            ]),
        },
        Row {
            name: "ipvlan l3 with mtu",
            kind: Kind::Ipvlan(IpvlanMode::L3),
            mtu: Some(9000),
            mac: None,
            fd: Some(9),
            want_kind: InfoKind::IpVlan,
            want_data: InfoData::IpVlan(vec![
                InfoIpVlan::Mode(IpVlanMode::L3),
                InfoIpVlan::Flags(IpVlanFlags::empty()),
            ]),
        },
        Row {
            name: "ipvlan l3s",
            kind: Kind::Ipvlan(IpvlanMode::L3s),
            mtu: None,
            mac: None,
            fd: Some(9),
            want_kind: InfoKind::IpVlan,
            want_data: InfoData::IpVlan(vec![
                InfoIpVlan::Mode(IpVlanMode::L3S),
                InfoIpVlan::Flags(IpVlanFlags::empty()),
            ]),
        },
        Row {
            name: "vlan 0",
            kind: Kind::Vlan(0),
            mtu: None,
            mac: None,
            fd: Some(4),
            want_kind: InfoKind::Vlan,
            want_data: InfoData::Vlan(vec![InfoVlan::Id(0)]),
        },
        Row {
            name: "vlan 4094 with mtu",
            kind: Kind::Vlan(4094),
            mtu: Some(1496),
            mac: None,
            fd: Some(4),
            want_kind: InfoKind::Vlan,
            want_data: InfoData::Vlan(vec![InfoVlan::Id(4094)]),
        },
    ];
    for r in rows {
        let msg = new_link(&NewLink {
            name: "tmp1234".into(),
            kind: r.kind,
            master_index: 42,
            mtu: r.mtu,
            mac: r.mac,
            netns_fd: r.fd,
        });
        let (kind, data) = info(&msg);
        assert_eq!(kind, Some(r.want_kind), "{}: kind", r.name);
        assert_eq!(data, Some(r.want_data), "{}: info data", r.name);
        assert_eq!(
            attr(&msg, |a| match a {
                LinkAttribute::IfName(n) => Some(n.clone()),
                _ => None,
            }),
            Some("tmp1234".to_string()),
            "{}: name",
            r.name
        );
        assert_eq!(
            attr(&msg, |a| match a {
                LinkAttribute::Link(i) => Some(*i),
                _ => None,
            }),
            Some(42),
            "{}: master index",
            r.name
        );
        assert_eq!(
            attr(&msg, |a| match a {
                LinkAttribute::Mtu(m) => Some(*m),
                _ => None,
            }),
            r.mtu,
            "{}: mtu",
            r.name
        );
        assert_eq!(
            attr(&msg, |a| match a {
                LinkAttribute::Address(m) => Some(m.clone()),
                _ => None,
            }),
            r.mac.map(|m| m.to_vec()),
            "{}: mac",
            r.name
        );
        assert_eq!(
            attr(&msg, |a| match a {
                LinkAttribute::NetNsFd(f) => Some(*f),
                _ => None,
            }),
            r.fd,
            "{}: netns fd",
            r.name
        );
        assert_eq!(
            r.kind.name(),
            kind.map(|k| k.to_string()).unwrap(),
            "{}",
            r.name
        );
    }
}

#[test]
fn zero_mtu_is_not_sent() {
    let msg = new_link(&NewLink {
        name: "t".into(),
        kind: Kind::Vlan(5),
        master_index: 1,
        mtu: Some(0),
        mac: None,
        netns_fd: None,
    });
    assert!(
        !msg.attributes
            .iter()
            .any(|a| matches!(a, LinkAttribute::Mtu(_)))
    );
}

#[test]
fn mode_spellings_table() {
    let mac: &[(&str, Option<MacvlanMode>)] = &[
        ("", Some(MacvlanMode::Bridge)),
        ("bridge", Some(MacvlanMode::Bridge)),
        ("private", Some(MacvlanMode::Private)),
        ("vepa", Some(MacvlanMode::Vepa)),
        ("passthru", Some(MacvlanMode::Passthru)),
        ("source", None),
        ("Bridge", None),
    ];
    for (s, want) in mac {
        assert_eq!(MacvlanMode::parse(s), *want, "macvlan {s:?}");
    }
    let ip: &[(&str, Option<IpvlanMode>)] = &[
        ("", Some(IpvlanMode::L2)),
        ("l2", Some(IpvlanMode::L2)),
        ("l3", Some(IpvlanMode::L3)),
        ("l3s", Some(IpvlanMode::L3s)),
        ("l4", None),
    ];
    for (s, want) in ip {
        assert_eq!(IpvlanMode::parse(s), *want, "ipvlan {s:?}");
    }
}

#[test]
fn rename_and_up_target_the_index() {
    let m = rename(17, "net1");
    assert_eq!(m.header.index, 17);
    assert_eq!(m.attributes, vec![LinkAttribute::IfName("net1".into())]);
    let u = set_up(17);
    assert_eq!(u.header.index, 17);
    assert!(u.header.flags.contains(LinkFlags::Up));
    assert!(u.header.change_mask.contains(LinkFlags::Up));
}

#[test]
fn address_table() {
    let rows: &[(&str, &str, u8, Option<&str>)] = &[
        ("v4 /24 gets broadcast", "10.1.2.3", 24, Some("10.1.2.255")),
        ("v4 /30 gets broadcast", "10.1.2.5", 30, Some("10.1.2.7")),
        ("v4 /31 has none", "10.1.2.4", 31, None),
        ("v4 /32 has none", "10.1.2.4", 32, None),
        ("v4 /0", "10.1.2.4", 0, Some("255.255.255.255")),
        ("v6 has none", "fd00::5", 64, None),
    ];
    for (name, ip, prefix, brd) in rows {
        let ip: IpAddr = ip.parse().unwrap();
        let m = new_address(3, ip, *prefix);
        assert_eq!(m.header.index, 3, "{name}");
        assert_eq!(m.header.prefix_len, *prefix, "{name}");
        assert!(
            m.attributes.contains(&AddressAttribute::Local(ip)),
            "{name}"
        );
        assert!(
            m.attributes.contains(&AddressAttribute::Address(ip)),
            "{name}"
        );
        let got = m.attributes.iter().find_map(|a| match a {
            AddressAttribute::Broadcast(b) => Some(b.to_string()),
            _ => None,
        });
        assert_eq!(got.as_deref(), *brd, "{name}");
    }
}

#[test]
fn route_table() {
    let r = new_route(&NewRoute {
        dst: "10.9.0.0".parse().unwrap(),
        prefix: 16,
        gateway: Some("10.1.2.1".parse().unwrap()),
        oif: 5,
    });
    assert_eq!(r.header.destination_prefix_length, 16);
    assert_eq!(r.header.protocol, RouteProtocol::Boot);
    assert_eq!(r.header.scope, RouteScope::Universe);
    assert!(r.attributes.contains(&RouteAttribute::Oif(5)));
    assert!(
        r.attributes
            .contains(&RouteAttribute::Gateway(RouteAddress::Inet(
                "10.1.2.1".parse().unwrap()
            )))
    );
    let d = new_route(&NewRoute {
        dst: "::".parse().unwrap(),
        prefix: 0,
        gateway: None,
        oif: 2,
    });
    assert_eq!(d.header.address_family, AddressFamily::Inet6);
    assert!(
        !d.attributes
            .iter()
            .any(|a| matches!(a, RouteAttribute::Destination(_)))
    );
    assert!(
        !d.attributes
            .iter()
            .any(|a| matches!(a, RouteAttribute::Gateway(_)))
    );
}
