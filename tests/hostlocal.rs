//! host-local in process against the reference binary (Debian's containernetworking-plugins):
//! the same ADD/DEL/CHECK calls run once through `/usr/lib/cni/host-local` on one data dir and
//! once through `plexus::builtin::hostlocal` on another must give the same answers (results in
//! the config's cniVersion, or error code and message) and leave byte-identical stores, also
//! when the two take turns on one store (tests/hostlocal_lock.rs has them at once on one).
//! Configs plexus does not take must be left to the binary without touching the data dir. No
//! root needed.
#![allow(clippy::disallowed_methods)]

mod builtin_support;
mod common;
mod hostlocal_support;

use std::path::Path;

use hostlocal_support::*;
use serde_json::{Value, json};

const VERSIONS: [&str; 4] = ["0.2.0", "0.3.1", "0.4.0", "1.0.0"];

#[test]
fn legacy_subnet_with_start_end_gateway_and_routes() {
    // rangeStart .10 to rangeEnd .13 with the gateway .12 in the middle: three addresses.
    let ipam = json!({"subnet": "10.1.0.0/24", "rangeStart": "10.1.0.10",
                      "rangeEnd": "10.1.0.13", "gateway": "10.1.0.12",
                      "routes": [{"dst": "0.0.0.0/0"},
                                 {"dst": "10.9.0.0/16", "gw": "10.1.0.254"}]});
    let ops = [
        add("c1", "eth0"),
        add("c2", "eth0"),
        add("c3", "eth0"),
        add("c4", "eth0"),
        check("c1", "eth0"),
        check("c4", "eth0"),
        del("c2", "eth0"),
        add("c4", "eth0"),
        del("c1", "eth0"),
        del("c3", "eth0"),
        del("c4", "eth0"),
        del("unknown", "eth0"),
    ];
    for version in VERSIONS {
        // Below 0.4.0 the reference refuses CHECK before it reads anything: plexus leaves it.
        let engine = |_: usize, op: &Op| match op.cmd {
            "CHECK" if version < "0.4.0" => Engine::PlexusOrBinary,
            _ => Engine::Plexus,
        };
        let out = differential(conf(version, ipam.clone()), |_| {}, &ops, engine);
        let got: Vec<Vec<String>> = [0, 1, 2, 7].iter().map(|i| out[*i].addresses()).collect();
        assert_eq!(
            got,
            [
                ["10.1.0.10/24"],
                ["10.1.0.11/24"],
                ["10.1.0.13/24"],
                ["10.1.0.11/24"]
            ],
            "{version}"
        );
        assert!(
            out[3].msg().contains("no IP addresses available"),
            "{out:?}"
        );
        let checks_ok = version >= "0.4.0";
        assert_eq!(
            matches!(out[4], Out::Ok(_)),
            checks_ok,
            "{version}: {out:?}"
        );
        if version != "0.2.0" {
            let Out::Ok(r) = &out[0] else { unreachable!() };
            assert_eq!(r["routes"][1]["gw"], "10.1.0.254", "{r}");
            assert_eq!(r["ips"][0]["gateway"], "10.1.0.12", "{r}");
        }
    }
}

#[test]
fn two_range_sets_v4_and_v6() {
    let ipam = json!({"ranges": [[{"subnet": "10.2.0.0/29"}],
                                 [{"subnet": "fd00:2::/125", "gateway": "fd00:2::5"}]],
                      "routes": [{"dst": "::/0"}, {"dst": "fd00:9::/64", "gw": "fd00:2::1"},
                                 {"dst": "10.9.0.0/16"}]});
    let ops = [
        add("c1", "eth0"),
        add("c2", "eth0"),
        add("c1", "net1"),
        add("c1", "eth0"),
        check("c1", "net1"),
        del("c2", "eth0"),
        add("c3", "eth0"),
        add("c4", "eth0"),
        add("c5", "eth0"),
        add("c6", "eth0"),
        check("c6", "eth0"),
        del("c1", "eth0"),
        add("c6", "eth0"),
        del("c1", "net1"),
        del("c3", "eth0"),
        del("c4", "eth0"),
        del("c5", "eth0"),
        del("c6", "eth0"),
        check("c6", "eth0"),
    ];
    for version in ["0.3.1", "0.4.0", "1.0.0"] {
        let engine = |_: usize, op: &Op| match op.cmd {
            "CHECK" if version < "0.4.0" => Engine::PlexusOrBinary,
            _ => Engine::Plexus,
        };
        let out = differential(conf(version, ipam.clone()), |_| {}, &ops, engine);
        assert_eq!(out[0].addresses(), ["10.2.0.2/29", "fd00:2::1/125"]);
        assert_eq!(out[2].addresses(), ["10.2.0.4/29", "fd00:2::3/125"]);
        assert!(out[3].msg().contains("duplicate allocation"), "{out:?}");
        // The v4 set (.2 to .6) runs out first; the v6 one (::1 to ::7 but ::5) has one left.
        assert!(
            out[9].msg().contains("failed to allocate for range 0"),
            "{out:?}"
        );
        assert_eq!(out[12].addresses(), ["10.2.0.2/29", "fd00:2::1/125"]);
    }
}

#[test]
fn round_robin_wraps_across_ranges_from_last_reserved() {
    // One set of two ranges: 10.3.0.4-.6 then 10.3.1.1-.3 (gateway .1 skipped).
    let ipam = json!({"ranges": [[{"subnet": "10.3.0.0/29", "rangeStart": "10.3.0.4"},
                                  {"subnet": "10.3.1.0/29", "rangeEnd": "10.3.1.3"}]]});
    let mut ops = Vec::new();
    for i in 0..5 {
        ops.push(add(&format!("c{i}"), "eth0"));
    }
    ops.extend([del("c1", "eth0"), del("c3", "eth0"), add("c5", "eth0")]);
    ops.extend([add("c6", "eth0"), add("c7", "eth0"), del("c0", "eth0")]);
    ops.extend([add("c8", "eth0"), del("c5", "eth0"), add("c9", "eth0")]);
    let out = differential(conf("1.0.0", ipam.clone()), |_| {}, &ops, all_plexus);
    let addr = |i: usize| out[i].addresses().join(",");
    assert_eq!(addr(4), "10.3.1.3/29");
    assert_eq!(
        addr(7),
        "10.3.0.5/29",
        "wraps to the first range: .4 is taken"
    );
    assert!(
        out[9].msg().contains("no IP addresses available"),
        "{out:?}"
    );
    // A recorded last address picks the start; one outside the set or unreadable is ignored.
    for last in [
        "10.3.0.5", "10.3.1.3", "10.3.1.1", "10.3.7.7", "garbage", "fd00::1",
    ] {
        let prepare = seed(&[("last_reserved_ip.0", last), ("10.3.0.6", "x\r\neth0")]);
        let ops = [add("c1", "eth0"), add("c2", "eth0"), add("c3", "eth0")];
        differential(conf("0.4.0", ipam.clone()), prepare, &ops, all_plexus);
    }
}

#[test]
fn exhaustion_of_small_ranges() {
    for (subnet, free) in [("10.4.0.0/29", 5), ("10.4.0.0/30", 1), ("fd00:4::/126", 2)] {
        let mut ops: Vec<Op> = (0..=free).map(|i| add(&format!("c{i}"), "eth0")).collect();
        ops.extend([del("c0", "eth0"), add("c9", "eth0"), add("c0", "eth0")]);
        let out = differential(
            conf("1.0.0", json!({"subnet": subnet})),
            |_| {},
            &ops,
            all_plexus,
        );
        let msg = out[free].msg();
        assert!(
            msg.starts_with("failed to allocate for range 0: no IP addresses available"),
            "{msg}"
        );
        assert!(matches!(out[free + 2], Out::Ok(_)), "{out:?}");
        assert!(matches!(out[free + 3], Out::Err(..)), "{out:?}");
    }
    // The second set (a /30: one address) runs out after the first served: the first set's
    // address is released again, and the next ADD gets the address after it.
    let ipam = json!({"ranges": [[{"subnet": "10.5.0.0/24"}], [{"subnet": "10.6.0.0/30"}]]});
    let ops = [
        add("c1", "eth0"),
        add("c2", "eth0"),
        check("c2", "eth0"),
        del("c1", "eth0"),
        add("c2", "eth0"),
        add("c3", "eth0"),
    ];
    let out = differential(conf("0.4.0", ipam), |_| {}, &ops, all_plexus);
    assert_eq!(out[1].msg(), out[5].msg());
    assert!(out[1].msg().starts_with("failed to allocate for range 1"));
    assert_eq!(out[4].addresses(), ["10.5.0.4/24", "10.6.0.2/30"]);
}

#[test]
fn duplicates_other_interfaces_unknown_del_and_check() {
    let ipam = json!({"subnet": "10.7.0.0/24"});
    let ops = [
        check("c1", "eth0"),
        add("c1", "eth0"),
        add("c1", "eth0"),
        add("c1", "eth1"),
        check("c1", "eth0"),
        check("c1", "eth2"),
        check("c2", "eth0"),
        del("c9", "eth0"),
        del("c1", "eth0"),
        check("c1", "eth0"),
        check("c1", "eth1"),
        del("c1", "eth1"),
        del("c1", "eth1"),
        check("c1", "eth1"),
    ];
    let out = differential(conf("1.0.0", ipam), |_| {}, &ops, all_plexus);
    assert_eq!(
        out[2].msg(),
        "failed to allocate for range 0: 10.7.0.2 has been allocated to c1, \
         duplicate allocation is not allowed"
    );
    assert_eq!(out[3].addresses(), ["10.7.0.3/24"]);
    assert_eq!(
        out[5].msg(),
        "host-local: Failed to find address added by container c1"
    );
    assert_eq!(out[10], Out::Ok(Value::Null));
}

#[test]
fn old_format_leases_are_found_and_released() {
    // Two leases of c1 as older releases wrote them (the id alone), c3 in both formats.
    let prepare = seed(&[
        ("10.8.0.2", "c1"),
        ("10.8.0.3", "c1 \n"),
        ("10.8.0.5", "c3\r\neth0"),
        ("10.8.0.6", "c3"),
    ]);
    let ops = [
        check("c1", "eth0"),
        check("c1", "eth7"),
        add("c1", "eth1"),
        add("c2", "eth0"),
        del("c1", "eth0"),
        check("c1", "eth0"),
        del("c3", "eth0"),
        check("c3", "eth0"),
        add("c3", "eth0"),
        del("c3", "eth0"),
        check("c3", "eth0"),
        add("c1", "eth0"),
    ];
    let ipam = json!({"subnet": "10.8.0.0/24"});
    let out = differential(conf("0.4.0", ipam), prepare, &ops, all_plexus);
    assert_eq!(out[0], Out::Ok(Value::Null));
    assert!(out[2].msg().contains("duplicate allocation"), "{out:?}");
    assert_eq!(out[3].addresses(), ["10.8.0.4/24"]);
    assert!(matches!(out[5], Out::Err(..)), "{out:?}");
    assert!(out[8].msg().contains("duplicate allocation"), "{out:?}");
    assert!(matches!(out[10], Out::Err(..)), "{out:?}");
}

#[test]
fn binary_and_plexus_take_turns_on_one_store() {
    let ipam = json!({"ranges": [[{"subnet": "10.9.0.0/29"}], [{"subnet": "fd00:9::/125"}]],
                      "routes": [{"dst": "0.0.0.0/0"}]});
    let mut ops = Vec::new();
    for round in 0..3 {
        let (a, b) = (format!("a{round}"), format!("b{round}"));
        ops.extend([add(&a, "eth0"), add(&b, "eth0"), del(&b, "eth0")]);
        ops.extend([check(&a, "eth0"), add(&b, "eth1"), add(&a, "eth0")]);
        ops.extend([del(&a, "eth0"), add(&b, "eth0"), check(&b, "eth1")]);
    }
    ops.extend((0..6).map(|i| add(&format!("x{i}"), "eth0")));
    for round in 0..3 {
        ops.extend([
            del(&format!("b{round}"), "eth0"),
            del(&format!("b{round}"), "eth1"),
        ]);
    }
    ops.extend((0..3).map(|i| add(&format!("y{i}"), "eth0")));
    // Binary, plexus, binary, ...; then the other way round; then two of one, one of the other.
    let turns: [fn(usize, &Op) -> Engine; 3] = [
        |i, _| [Engine::Binary, Engine::Plexus][i % 2],
        |i, _| [Engine::Plexus, Engine::Binary][i % 2],
        |i, _| [Engine::Binary, Engine::Binary, Engine::Plexus][i % 3],
    ];
    for turn in turns {
        let out = differential(conf("1.0.0", ipam.clone()), |_| {}, &ops, turn);
        assert!(out.iter().any(|o| matches!(o, Out::Err(..))), "{out:?}");
    }
}

#[test]
fn configs_beyond_the_common_case_are_left_to_the_binary() {
    // (what, a patch of the common case's config, CNI_ARGS, container id, interface name)
    let ranges = |r: Value| json!({"ipam": {"ranges": r}});
    let cases: Vec<(&str, Value, &str, &str, &str)> = vec![
        (
            "resolvConf",
            json!({"ipam": {"resolvConf": "/etc/resolv.conf"}}),
            ARGS,
            "c1",
            "eth0",
        ),
        (
            "CNI_ARGS IP",
            json!({}),
            "IgnoreUnknown=1;IP=10.11.0.9",
            "c1",
            "eth0",
        ),
        (
            "runtimeConfig",
            json!({"runtimeConfig": {"ips": ["10.11.0.9/24"]}}),
            ARGS,
            "c1",
            "eth0",
        ),
        (
            "args.cni.ips",
            json!({"args": {"cni": {"ips": ["10.11.0.9"]}}}),
            ARGS,
            "c1",
            "eth0",
        ),
        (
            "host bits",
            json!({"ipam": {"subnet": "10.11.0.5/24"}}),
            ARGS,
            "c1",
            "eth0",
        ),
        (
            "/31",
            json!({"ipam": {"subnet": "10.11.0.0/31"}}),
            ARGS,
            "c1",
            "eth0",
        ),
        (
            "overlapping sets",
            ranges(json!([[{"subnet": "10.12.0.0/24"}],
                                           [{"subnet": "10.12.0.128/25"}]])),
            ARGS,
            "c1",
            "eth0",
        ),
        (
            "overlapping ranges",
            ranges(json!([[{"subnet": "10.12.0.0/24"},
                                             {"subnet": "10.12.0.0/25"}]])),
            ARGS,
            "c1",
            "eth0",
        ),
        (
            "cniVersion 1.1.0",
            json!({"cniVersion": "1.1.0"}),
            ARGS,
            "c1",
            "eth0",
        ),
        ("container id", json!({}), ARGS, "bad!id", "eth0"),
        ("container id start", json!({}), ARGS, "-c1", "eth0"),
        (
            "ifname too long",
            json!({}),
            ARGS,
            "c1",
            "averyverylongname",
        ),
        ("ifname with colon", json!({}), ARGS, "c1", "eth0:1"),
        ("network name", json!({"name": "a:b"}), ARGS, "c1", "eth0"),
        ("the common case (control)", json!({}), ARGS, "c1", "eth0"),
    ];
    for (what, patch, args, id, ifname) in cases {
        let dir = builtin_support::TempDir::new("hlleft");
        let data = dir.path.join("data");
        let mut c = conf("1.0.0", json!({"subnet": "10.11.0.0/24"}))(&data);
        merge(&mut c, &patch);
        let control = what.contains("control");
        for cmd in [add, check, del] {
            let mut op = cmd(id, ifname);
            op.args = args.into();
            let out = plexus(&c, &op);
            assert_eq!(out.is_some(), control, "{what}: {op:?} gave {out:?}");
            assert_eq!(
                data.exists(),
                control,
                "{what}: {op:?} touched the data dir"
            );
        }
    }
}

#[test]
fn check_below_0_4_0_is_left_to_the_binary() {
    // The reference refuses it; ADD and DEL are plexus's.
    let dir = builtin_support::TempDir::new("hlleft");
    let c = conf("0.3.1", json!({"subnet": "10.11.0.0/24"}))(&dir.path);
    assert!(plexus(&c, &add("c1", "eth0")).is_some());
    assert_eq!(plexus(&c, &check("c1", "eth0")), None);
    assert_eq!(plexus(&c, &del("c1", "eth0")), Some(Out::Ok(Value::Null)));
}

#[test]
fn calls_the_reference_refuses_get_its_answer() {
    // Each call refused before the store is read, with plexus in front as builtin::ipam puts it.
    let ipam = json!({"subnet": "10.11.0.0/24"});
    let calls: [(&str, &str, &str, &str); 7] = [
        ("1.1.0", "hl-net", "c1", "eth0"),
        ("0.3.1", "hl-net", "c1", "eth0"),
        ("1.0.0", "hl-net", "bad!id", "eth0"),
        ("1.0.0", "hl-net", "c1", "averyverylongname"),
        ("1.0.0", "hl-net", "c1", "eth 0"),
        ("1.0.0", "a:b", "c1", "eth0"),
        ("1.0.0", "hl-net", "c1", ".."),
    ];
    for (version, name, id, ifname) in calls {
        let base = conf(version, ipam.clone());
        let conf = move |d: &Path| {
            let mut c = base(d);
            c["name"] = json!(name);
            c
        };
        let ops = [add(id, ifname), check(id, ifname), del(id, ifname)];
        let engine = |_: usize, _: &Op| Engine::PlexusOrBinary;
        let out = differential(conf, |_| {}, &ops, engine);
        assert!(matches!(out[1], Out::Err(..)), "{out:?}");
    }
}

#[test]
fn understood_variants_answer_alike() {
    let cases = [
        (
            json!({"subnet": "10.13.0.0/29", "ranges": [[{"subnet": "fd00:13::/125"}]]}),
            ARGS,
        ),
        (
            json!({"ranges": [[{"subnet": "fd00:1:0:1:1:1:1:0/125"}],
                           [{"subnet": "2001:db8:0:0:1::/126"}, {"subnet": "fd00:0013::/126"}]]}),
            ARGS,
        ),
        (
            json!({"subnet": "10.14.0.0/29", "rangeStart": "10.14.0.3", "gateway": "10.14.0.3"}),
            "",
        ),
        // The network and broadcast addresses, when named, are handed out too.
        (
            json!({"subnet": "10.16.0.0/30", "rangeStart": "10.16.0.0", "rangeEnd": "10.16.0.3"}),
            ARGS,
        ),
        (
            json!({"subnet": "10.15.0.0/30", "routes": [{"dst": "10.9.1.0/16", "gw": "10.15.0.9"},
                                                      {"dst": "fd00:9:0::/64", "gw": "fd00::0:1"}]}),
            "IgnoreUnknown=true;FOO=bar",
        ),
    ];
    for (ipam, args) in cases {
        let mut ops = [add("c1", "eth0"), add("c2", "eth0"), check("c1", "eth0")].to_vec();
        ops.extend([
            del("c1", "eth0"),
            add("c3", "eth0"),
            del("c2", "eth0"),
            del("c3", "eth0"),
        ]);
        for op in &mut ops {
            op.args = args.into();
        }
        let with_slash = conf("1.0.0", ipam.clone());
        let conf = move |d: &Path| {
            let mut c = with_slash(d);
            c["ipam"]["dataDir"] = json!(format!("{}/", d.display()));
            c
        };
        let out = differential(conf, |_| {}, &ops, all_plexus);
        assert!(matches!(out[0], Out::Ok(_)), "{ipam}: {out:?}");
    }
}
