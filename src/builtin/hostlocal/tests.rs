//! Tests of host-local in process: the config rules, the walk, the store, and whole calls on a
//! temporary data directory (no root needed).

use std::fs;
use std::net::IpAddr;

use serde_json::{Value, json};

use super::conf::{Parsed, parse};
use super::range::{Addr, Range, RangeSet, Refused};
use super::*;
use crate::cni::env::Command;
use crate::testutil::TempDir;

const WAIT: Duration = Duration::from_secs(5);
const ARGS: &str = "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p";

fn a(s: &str) -> Addr {
    Addr::of(s.parse::<IpAddr>().unwrap())
}

fn r(subnet: &str, start: Option<&str>, end: Option<&str>, gw: Option<&str>) -> Range {
    let (ip, p) = crate::cni::ip::parse_cidr(subnet).unwrap();
    let ip_of = |s: Option<&str>| s.map(|s| s.parse().unwrap());
    Range::new((ip, p), ip_of(start), ip_of(end), ip_of(gw)).unwrap()
}

fn walk(set: &RangeSet, last: Option<&str>) -> Vec<String> {
    set.walk(last.map(a)).map(|(x, _)| x.to_string()).collect()
}

#[test]
fn range_defaults_and_refusals() {
    let v4 = r("10.1.0.0/29", None, None, None);
    assert_eq!(
        (v4.start, v4.end, v4.gateway),
        (a("10.1.0.1"), a("10.1.0.6"), a("10.1.0.1"))
    );
    let v6 = r("fd00::/126", None, None, None);
    assert_eq!((v6.start, v6.end), (a("fd00::1"), a("fd00::3")));
    assert_eq!(v4.to_string(), "10.1.0.1-10.1.0.6");
    let refused = |subnet: &str, start: Option<&str>, end: Option<&str>, gw: Option<&str>| {
        let (ip, p) = crate::cni::ip::parse_cidr(subnet).unwrap();
        let ip_of = |s: Option<&str>| s.map(|s: &str| s.parse().unwrap());
        Range::new((ip, p), ip_of(start), ip_of(end), ip_of(gw)).unwrap_err()
    };
    assert_eq!(refused("10.1.0.5/24", None, None, None), Refused::HostBits);
    assert_eq!(refused("10.1.0.0/31", None, None, None), Refused::TooSmall);
    assert_eq!(refused("fd00::/127", None, None, None), Refused::TooSmall);
    assert_eq!(
        refused("10.1.0.0/24", Some("fd00::1"), None, None),
        Refused::Family
    );
    assert_eq!(
        refused("10.1.0.0/24", None, None, Some("10.2.0.1")),
        Refused::Outside
    );
    assert_eq!(
        refused("10.1.0.0/24", Some("10.1.0.9"), Some("10.1.0.8"), None),
        Refused::Outside
    );
}

#[test]
fn walk_follows_the_reference_order() {
    let one = RangeSet(vec![r("10.1.0.0/29", None, None, None)]);
    // From the start, gateway (.1) skipped.
    assert_eq!(
        walk(&one, None),
        ["10.1.0.2", "10.1.0.3", "10.1.0.4", "10.1.0.5", "10.1.0.6"]
    );
    // After the last reserved, round the set, ending where it began.
    assert_eq!(
        walk(&one, Some("10.1.0.4")),
        ["10.1.0.5", "10.1.0.6", "10.1.0.2", "10.1.0.3", "10.1.0.4"]
    );
    // A last reserved outside the set: from the start.
    assert_eq!(
        walk(&one, Some("10.9.0.4")).first().map(String::as_str),
        Some("10.1.0.2")
    );
    // Gateway in the middle, two ranges.
    let two = RangeSet(vec![
        r(
            "10.1.0.0/24",
            Some("10.1.0.10"),
            Some("10.1.0.12"),
            Some("10.1.0.11"),
        ),
        r("10.2.0.0/24", Some("10.2.0.5"), Some("10.2.0.6"), None),
    ]);
    assert_eq!(
        walk(&two, None),
        ["10.1.0.10", "10.1.0.12", "10.2.0.5", "10.2.0.6"]
    );
    assert_eq!(
        walk(&two, Some("10.2.0.5")),
        ["10.2.0.6", "10.1.0.10", "10.1.0.12", "10.2.0.5"]
    );
    assert_eq!(two.to_string(), "10.1.0.10-10.1.0.12,10.2.0.5-10.2.0.6");
    // Nothing but the gateway: no candidate.
    let gw_only = RangeSet(vec![r(
        "10.1.0.0/24",
        Some("10.1.0.1"),
        Some("10.1.0.1"),
        None,
    )]);
    assert!(walk(&gw_only, None).is_empty());
}

fn netconf(ipam: Value) -> Vec<u8> {
    json!({"cniVersion": "1.0.0", "name": "hl", "type": "macvlan", "ipam": ipam})
        .to_string()
        .into_bytes()
}

#[test]
fn what_the_built_in_takes_and_leaves() {
    let understood = [
        (
            "legacy subnet",
            json!({"type": "host-local", "subnet": "10.1.0.0/24"}),
            "",
        ),
        (
            "ranges, two families",
            json!({"type": "host-local", "ranges": [[{"subnet": "10.1.0.0/24"}], [{"subnet": "fd00::/64"}]]}),
            ARGS,
        ),
        (
            "routes",
            json!({"type": "host-local", "subnet": "10.1.0.0/24", "routes": [{"dst": "0.0.0.0/0"}, {"dst": "10.9.0.0/16", "gw": "10.1.0.254"}]}),
            "",
        ),
        (
            "unknown ipam field ignored",
            json!({"type": "host-local", "subnet": "10.1.0.0/24", "exclude": ["x"]}),
            "",
        ),
        (
            "empty resolvConf",
            json!({"type": "host-local", "subnet": "10.1.0.0/24", "resolvConf": ""}),
            "",
        ),
    ];
    for (name, ipam, args) in understood {
        assert!(
            matches!(parse(&netconf(ipam), args), Parsed::Understood(_)),
            "{name}"
        );
    }
    let left = [
        ("no ranges", json!({"type": "host-local"}), ""),
        (
            "host bits",
            json!({"type": "host-local", "subnet": "10.1.0.5/24"}),
            "",
        ),
        (
            "resolvConf",
            json!({"type": "host-local", "subnet": "10.1.0.0/24", "resolvConf": "/etc/resolv.conf"}),
            "",
        ),
        (
            "case",
            json!({"type": "host-local", "Subnet": "10.1.0.0/24"}),
            "",
        ),
        (
            "overlap",
            json!({"type": "host-local", "ranges": [[{"subnet": "10.1.0.0/24"}], [{"subnet": "10.1.0.0/25"}]]}),
            "",
        ),
        (
            "mixed set",
            json!({"type": "host-local", "ranges": [[{"subnet": "10.1.0.0/24"}, {"subnet": "fd00::/64"}]]}),
            "",
        ),
        (
            "route field",
            json!({"type": "host-local", "subnet": "10.1.0.0/24", "routes": [{"dst": "0.0.0.0/0", "mtu": 1400}]}),
            "",
        ),
        (
            "mapped",
            json!({"type": "host-local", "subnet": "::ffff:10.1.0.0/120"}),
            "",
        ),
        (
            "CNI_ARGS IP",
            json!({"type": "host-local", "subnet": "10.1.0.0/24"}),
            "IgnoreUnknown=1;IP=10.1.0.9",
        ),
        (
            "unknown CNI_ARGS",
            json!({"type": "host-local", "subnet": "10.1.0.0/24"}),
            "K8S_POD_NAME=p",
        ),
    ];
    for (name, ipam, args) in left {
        assert!(
            matches!(parse(&netconf(ipam), args), Parsed::NotUnderstood(_)),
            "{name}"
        );
    }
}

#[test]
fn what_outside_ipam_leaves_it_to_the_binary() {
    let with = |extra: Value| {
        let mut v: Value = serde_json::from_slice(&netconf(
            json!({"type": "host-local", "subnet": "10.1.0.0/24"}),
        ))
        .unwrap();
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        v.to_string().into_bytes()
    };
    for (name, extra) in [
        (
            "runtimeConfig ips",
            json!({"runtimeConfig": {"ips": ["10.1.0.9/24"]}}),
        ),
        (
            "runtimeConfig ipRanges",
            json!({"runtimeConfig": {"ipRanges": [[{"subnet": "10.3.0.0/24"}]]}}),
        ),
        ("args ips", json!({"args": {"cni": {"ips": ["10.1.0.9"]}}})),
        ("name with slash", json!({"name": "../etc"})),
        (
            "two v4 sets at 0.2.0",
            json!({"cniVersion": "0.2.0", "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.1.0.0/24"}], [{"subnet": "10.2.0.0/24"}]]}}),
        ),
    ] {
        assert!(
            matches!(parse(&with(extra), ""), Parsed::NotUnderstood(_)),
            "{name}"
        );
    }
}

fn inv<'a>(command: Command, id: &'a str, ifname: &'a str) -> Invocation<'a> {
    Invocation {
        command,
        container_id: id,
        netns: "/var/run/netns/x",
        ifname,
        args: ARGS,
        cancel: None,
    }
}

fn conf_in(dir: &TempDir, ipam: Value) -> Vec<u8> {
    let mut ipam = ipam;
    ipam["type"] = json!("host-local");
    ipam["dataDir"] = json!(dir.path());
    netconf(ipam)
}

fn addresses(r: &CniResult) -> Vec<(String, Option<String>)> {
    r.ips
        .iter()
        .map(|i| (i.address.clone(), i.gateway.clone()))
        .collect()
}

#[test]
fn add_del_check_on_the_reference_store() {
    let dir = TempDir::new("hostlocal");
    let c = conf_in(
        &dir,
        json!({"ranges": [[{"subnet": "10.1.0.0/30"}], [{"subnet": "fd00::/64"}]], "routes": [{"dst": "0.0.0.0/0"}]}),
    );
    let r = add(&inv(Command::Add, "c1", "net1"), &c, WAIT)
        .unwrap()
        .unwrap();
    assert_eq!(
        addresses(&r),
        [
            ("10.1.0.2/30".into(), Some("10.1.0.1".into())),
            ("fd00::2/64".into(), Some("fd00::1".into()))
        ]
    );
    assert_eq!(r.routes[0].dst, "0.0.0.0/0");
    let store = dir.path().join("hl");
    assert_eq!(
        fs::read_to_string(store.join("10.1.0.2")).unwrap(),
        "c1\r\nnet1"
    );
    assert_eq!(
        fs::read_to_string(store.join("last_reserved_ip.0")).unwrap(),
        "10.1.0.2"
    );
    assert_eq!(
        fs::read_to_string(store.join("last_reserved_ip.1")).unwrap(),
        "fd00::2"
    );
    assert!(store.join("lock").exists());
    check(&inv(Command::Check, "c1", "net1"), &c, WAIT)
        .unwrap()
        .unwrap();

    // The same container and interface again: refused, nothing more taken.
    let e = add(&inv(Command::Add, "c1", "net1"), &c, WAIT).unwrap_err();
    assert_eq!(
        e.to_string(),
        "failed to allocate for range 0: 10.1.0.2 has been allocated to c1, duplicate allocation is not allowed"
    );
    // The v4 set (a /30: .2 only) is full: the v6 address is not taken either.
    let e = add(&inv(Command::Add, "c2", "net1"), &c, WAIT).unwrap_err();
    assert_eq!(
        e.to_string(),
        "failed to allocate for range 0: no IP addresses available in range set: 10.1.0.1-10.1.0.2"
    );
    assert!(!store.join("fd00::3").exists());

    del(&inv(Command::Del, "c1", "net1"), &c, WAIT)
        .unwrap()
        .unwrap();
    let left: Vec<_> = fs::read_dir(&store)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        left.iter()
            .all(|n| n == "lock" || n.starts_with("last_reserved_ip.")),
        "{left:?}"
    );
    let e = check(&inv(Command::Check, "c1", "net1"), &c, WAIT).unwrap_err();
    assert_eq!(
        e.to_string(),
        "host-local: Failed to find address added by container c1"
    );
    // DEL again: nothing to release is success.
    del(&inv(Command::Del, "c1", "net1"), &c, WAIT)
        .unwrap()
        .unwrap();
}

#[test]
fn a_failed_later_set_releases_the_earlier_ones() {
    let dir = TempDir::new("hostlocal");
    let c = conf_in(
        &dir,
        json!({"ranges": [[{"subnet": "10.1.0.0/24"}], [{"subnet": "10.2.0.0/30"}]]}),
    );
    add(&inv(Command::Add, "c1", "net1"), &c, WAIT)
        .unwrap()
        .unwrap();
    let e = add(&inv(Command::Add, "c2", "net1"), &c, WAIT).unwrap_err();
    assert_eq!(
        e.to_string(),
        "failed to allocate for range 1: no IP addresses available in range set: 10.2.0.1-10.2.0.2"
    );
    assert!(
        !dir.path().join("hl/10.1.0.3").exists(),
        "c2's first address was released"
    );
    assert!(dir.path().join("hl/10.1.0.2").exists(), "c1 keeps its own");
}

#[test]
fn leases_an_older_release_wrote_are_found_and_released() {
    let dir = TempDir::new("hostlocal");
    let c = conf_in(&dir, json!({"subnet": "10.1.0.0/24"}));
    let store = dir.path().join("hl");
    fs::create_dir_all(&store).unwrap();
    fs::write(store.join("10.1.0.7"), "old1\n").unwrap();
    fs::write(store.join("last_reserved_ip.0"), "10.1.0.7").unwrap();
    check(&inv(Command::Check, "old1", "eth0"), &c, WAIT)
        .unwrap()
        .unwrap();
    let e = add(&inv(Command::Add, "old1", "eth0"), &c, WAIT).unwrap_err();
    assert!(
        e.to_string()
            .contains("10.1.0.7 has been allocated to old1"),
        "{e}"
    );
    // Round-robin continues after the last reserved address.
    let r = add(&inv(Command::Add, "new1", "eth0"), &c, WAIT)
        .unwrap()
        .unwrap();
    assert_eq!(r.ips[0].address, "10.1.0.8/24");
    del(&inv(Command::Del, "old1", "eth0"), &c, WAIT)
        .unwrap()
        .unwrap();
    assert!(!store.join("10.1.0.7").exists());
    assert!(store.join("10.1.0.8").exists());
}

#[test]
fn a_held_lock_is_waited_for_then_given_up() {
    let dir = TempDir::new("hostlocal");
    let c = conf_in(&dir, json!({"subnet": "10.1.0.0/24"}));
    let held = store::Store::open(dir.path(), "hl", WAIT, None).unwrap();
    let e = add(
        &inv(Command::Add, "c1", "net1"),
        &c,
        Duration::from_millis(30),
    )
    .unwrap_err();
    assert!(matches!(e, DelegateError::Timeout { .. }), "{e:?}");
    let cancel = crate::delegate::Cancel::new();
    cancel.cancel();
    let mut i = inv(Command::Add, "c1", "net1");
    i.cancel = Some(&cancel);
    assert_eq!(add(&i, &c, WAIT).unwrap_err(), DelegateError::Cancelled);
    drop(held);
    assert!(
        add(&inv(Command::Add, "c1", "net1"), &c, WAIT)
            .unwrap()
            .is_some()
    );
    assert!(
        !dir.path().join("hl/10.1.0.3").exists(),
        "nothing taken while the lock was held"
    );
}

#[test]
fn configs_it_leaves_touch_nothing() {
    let dir = TempDir::new("hostlocal");
    let c = conf_in(
        &dir,
        json!({"subnet": "10.1.0.0/24", "resolvConf": "/etc/resolv.conf"}),
    );
    assert_eq!(
        add(&inv(Command::Add, "c1", "net1"), &c, WAIT).unwrap(),
        None
    );
    assert_eq!(
        del(&inv(Command::Del, "c1", "net1"), &c, WAIT).unwrap(),
        None
    );
    assert!(
        !dir.path().exists(),
        "no store made for a config left to the binary"
    );
    let empty_id = inv(Command::Add, " ", "net1");
    assert_eq!(
        add(
            &empty_id,
            &conf_in(&dir, json!({"subnet": "10.1.0.0/24"})),
            WAIT
        )
        .unwrap(),
        None
    );
}
