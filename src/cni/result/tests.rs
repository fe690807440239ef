//! Tests of `result`.

use super::*;
use crate::cni::version::SUPPORTED;
use serde_json::json;

/// What a conversion row expects: the output JSON, or an error variant whose message contains
/// the given text.
enum Want {
    Json(Value),
    Unsupported(&'static str),
    Decode(&'static str),
    Lossy(&'static str),
}

fn check(name: &str, got: Result<Value, ResultError>, want: &Want) {
    match (got, want) {
        (Ok(got), Want::Json(want)) => assert_eq!(&got, want, "{name}"),
        (Err(ResultError::UnsupportedVersion(m)), Want::Unsupported(s))
        | (Err(ResultError::Decode(m)), Want::Decode(s))
        | (Err(ResultError::Lossy(m)), Want::Lossy(s)) => {
            assert!(m.contains(s), "{name}: message {m:?} lacks {s:?}")
        }
        (got, _) => panic!("{name}: unexpected outcome {got:?}"),
    }
}

fn dns() -> Value {
    json!({"nameservers": ["10.96.0.10"], "domain": "cluster.local",
           "search": ["svc.cluster.local"], "options": ["ndots:5"]})
}

/// The same dual-stack result in the wire shape of `version`, carrying the information of
/// `level`: 0 = what 0.2.0 holds, 1 = adds interfaces (0.3.0 .. 1.0.0), 2 = adds 1.1.0 fields.
fn fixture(version: &str, level: u8) -> Value {
    let v = Version::parse(version).unwrap();
    if v < Version::V0_3_0 {
        return json!({
            "cniVersion": version,
            "ip4": {"ip": "10.1.2.3/24", "gateway": "10.1.2.1",
                    "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.2.1"}]},
            "ip6": {"ip": "fd00::3/64", "gateway": "fd00::1",
                    "routes": [{"dst": "::/0", "gw": "fd00::1"}]},
            "dns": dns(),
        });
    }
    let mut ips = json!([
        {"address": "10.1.2.3/24", "gateway": "10.1.2.1"},
        {"address": "fd00::3/64", "gateway": "fd00::1"},
    ]);
    let mut routes =
        json!([{"dst": "0.0.0.0/0", "gw": "10.1.2.1"}, {"dst": "::/0", "gw": "fd00::1"}]);
    if v < Version::V1_0_0 {
        ips[0]["version"] = json!("4");
        ips[1]["version"] = json!("6");
    }
    let mut out =
        json!({"cniVersion": version, "ips": ips, "routes": routes.clone(), "dns": dns()});
    if level >= 1 {
        let mut iface =
            json!({"name": "eth0", "mac": "0a:58:0a:01:02:03", "sandbox": "/var/run/netns/pod"});
        if level >= 2 {
            iface["mtu"] = json!(1450);
            iface["socketPath"] = json!("/run/vhost/eth0.sock");
            iface["pciID"] = json!("0000:00:1f.0");
            routes[0]["mtu"] = json!(1400);
            routes[0]["advmss"] = json!(1360);
            routes[0]["priority"] = json!(100);
            routes[0]["table"] = json!(254);
            routes[0]["scope"] = json!(0);
            out["routes"] = routes;
        }
        out["interfaces"] = json!([iface]);
        out["ips"][0]["interface"] = json!(0);
        out["ips"][1]["interface"] = json!(0);
    }
    out
}

/// Information level a version can carry (see [`fixture`]).
fn level(version: &str) -> u8 {
    match Version::parse(version).unwrap() {
        v if v < Version::V0_3_0 => 0,
        v if v < Version::V1_1_0 => 1,
        _ => 2,
    }
}

#[test]
fn every_version_pair() {
    for from in SUPPORTED {
        for to in SUPPORTED {
            let name = format!("{from} -> {to}");
            let input = fixture(from, level(from));
            let want = fixture(to, level(from).min(level(to)));
            check(&name, convert(&input, "9.9.9", to), &Want::Json(want));
        }
    }
}

#[test]
fn round_trips() {
    for v in SUPPORTED {
        let input = fixture(v, level(v));
        let parsed = CniResult::from_value(&input, "").unwrap();
        assert_eq!(parsed.to_value(v).unwrap(), input, "{v} round trip");
        let up = parsed.to_value("1.1.0").unwrap();
        let back = CniResult::from_value(&up, "").unwrap().to_value(v).unwrap();
        assert_eq!(back, input, "{v} -> 1.1.0 -> {v}");
    }
}

#[test]
#[allow(clippy::too_many_lines)] // one table
fn parse_table() {
    let eth0 = |sandbox: bool| Interface {
        name: "eth0".into(),
        sandbox: sandbox.then(|| "/var/run/netns/pod".to_string()),
        ..Interface::default()
    };
    let ip = |address: &str, gateway: Option<&str>, interface: Option<usize>| IpConfig {
        address: address.into(),
        gateway: gateway.map(Into::into),
        interface,
    };
    let route = |dst: &str, gw: Option<&str>| Route {
        dst: dst.into(),
        gw: gw.map(Into::into),
        ..Route::default()
    };
    let rows: Vec<(&str, Value, &str, CniResult)> = vec![
        (
            "0.1.0 ip4 only, version from fallback",
            json!({"ip4": {"ip": "10.1.2.3/24", "routes": [{"dst": "10.0.0.0/8"}]}}),
            "0.1.0",
            CniResult {
                ips: vec![ip("10.1.2.3/24", None, None)],
                routes: vec![route("10.0.0.0/8", None)],
                ..CniResult::default()
            },
        ),
        (
            "0.2.0 ignores list fields and 1.1.0 route fields",
            json!({"cniVersion": "0.2.0", "ips": "junk", "interfaces": 7,
                   "ip6": {"ip": "fd00::3/64", "gateway": "fd00::1",
                           "routes": [{"dst": "::/0", "mtu": 1400, "table": 5}]}}),
            "1.0.0",
            CniResult {
                ips: vec![ip("fd00::3/64", Some("fd00::1"), None)],
                routes: vec![route("::/0", None)],
                ..CniResult::default()
            },
        ),
        (
            "0.3.1 reference bridge output, own cniVersion beats fallback",
            json!({"cniVersion": "0.3.1",
                   "interfaces": [{"name": "cni0", "mac": "aa:bb:cc:00:00:01"},
                                  {"name": "veth1234", "mac": "aa:bb:cc:00:00:02"},
                                  {"name": "eth0", "mac": "", "sandbox": "/var/run/netns/pod"}],
                   "ips": [{"version": "4", "interface": 2, "address": "10.1.2.3/24", "gateway": "10.1.2.1"}],
                   "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.2.1"}],
                   "dns": {}}),
            "1.1.0",
            CniResult {
                interfaces: vec![
                    Interface {
                        name: "cni0".into(),
                        mac: Some("aa:bb:cc:00:00:01".into()),
                        ..Interface::default()
                    },
                    Interface {
                        name: "veth1234".into(),
                        mac: Some("aa:bb:cc:00:00:02".into()),
                        ..Interface::default()
                    },
                    eth0(true),
                ],
                ips: vec![ip("10.1.2.3/24", Some("10.1.2.1"), Some(2))],
                routes: vec![route("0.0.0.0/0", Some("10.1.2.1"))],
                ..CniResult::default()
            },
        ),
        (
            "0.4.0 inconsistent ip version accepted, empty gateway is none",
            json!({"cniVersion": "0.4.0", "ips": [{"version": "6", "address": "10.1.2.3/24", "gateway": ""}]}),
            "",
            CniResult {
                ips: vec![ip("10.1.2.3/24", None, None)],
                ..CniResult::default()
            },
        ),
        (
            "1.0.0 ignores ip version and 1.1.0 interface fields",
            json!({"cniVersion": "1.0.0", "interfaces": [{"name": "eth0", "mtu": 9000, "pciID": "x"}],
                   "ips": [{"version": "4", "address": "fd00::3/64", "interface": 0}]}),
            "",
            CniResult {
                interfaces: vec![eth0(false)],
                ips: vec![ip("fd00::3/64", None, Some(0))],
                ..CniResult::default()
            },
        ),
        (
            "1.1.0 keeps every field, zero mtu is none, unknown keys ignored",
            json!({"cniVersion": "1.1.0", "extra": {"x": 1},
                   "interfaces": [{"name": "eth0", "mtu": 0, "socketPath": "/s", "pciID": "0000:00:1f.0"}],
                   "routes": [{"dst": "10.0.0.0/8", "mtu": 1400, "advmss": 1360, "priority": 7, "table": 0, "scope": 253}],
                   "dns": {"nameservers": ["1.1.1.1"], "search": null, "domain": ""}}),
            "",
            CniResult {
                interfaces: vec![Interface {
                    socket_path: Some("/s".into()),
                    pci_id: Some("0000:00:1f.0".into()),
                    ..eth0(false)
                }],
                routes: vec![Route {
                    mtu: Some(1400),
                    advmss: Some(1360),
                    priority: Some(7),
                    table: Some(0),
                    scope: Some(253),
                    ..route("10.0.0.0/8", None)
                }],
                dns: Dns {
                    nameservers: vec!["1.1.1.1".into()],
                    ..Dns::default()
                },
                ..CniResult::default()
            },
        ),
        (
            "null lists are empty",
            json!({"cniVersion": "1.0.0", "interfaces": null, "ips": null, "routes": null, "dns": null}),
            "",
            CniResult::default(),
        ),
        (
            "index allowed when no interfaces are reported",
            json!({"cniVersion": "1.0.0", "ips": [{"address": "10.1.2.3/32", "interface": 5}]}),
            "",
            CniResult {
                ips: vec![ip("10.1.2.3/32", None, Some(5))],
                ..CniResult::default()
            },
        ),
    ];
    for (name, input, fallback, want) in rows {
        let got = CniResult::from_value(&input, fallback);
        assert_eq!(got.as_ref().ok(), Some(&want), "{name}: {got:?}");
        let bytes = serde_json::to_vec(&input).unwrap();
        assert_eq!(
            CniResult::from_slice(&bytes, fallback).ok(),
            Some(want),
            "{name} (from_slice)"
        );
    }
}

#[test]
#[allow(clippy::too_many_lines)] // one table
fn conversion_table() {
    let bridge = json!({"cniVersion": "0.3.1",
        "interfaces": [{"name": "cni0", "mac": "aa:bb:cc:00:00:01"},
                       {"name": "eth0", "mac": "aa:bb:cc:00:00:03", "sandbox": "/var/run/netns/pod"}],
        "ips": [{"version": "4", "interface": 1, "address": "10.1.2.3/24", "gateway": "10.1.2.1"}],
        "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.2.1"}], "dns": {}});
    let two_v4 = json!({"cniVersion": "1.0.0",
        "ips": [{"address": "10.1.2.3/24"}, {"address": "10.1.9.3/24"}, {"address": "fd00::3/64"}]});
    let rows: Vec<(&str, Value, &str, &str, Want)> = vec![
        (
            "delegate 0.3.1 -> 1.0.0 drops ip version",
            bridge.clone(),
            "1.0.0",
            "1.0.0",
            Want::Json(json!({"cniVersion": "1.0.0",
                "interfaces": [{"name": "cni0", "mac": "aa:bb:cc:00:00:01"},
                               {"name": "eth0", "mac": "aa:bb:cc:00:00:03", "sandbox": "/var/run/netns/pod"}],
                "ips": [{"interface": 1, "address": "10.1.2.3/24", "gateway": "10.1.2.1"}],
                "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.2.1"}]})),
        ),
        (
            "delegate 0.3.1 -> 0.2.0 drops interfaces",
            bridge,
            "1.0.0",
            "0.2.0",
            Want::Json(json!({"cniVersion": "0.2.0",
                "ip4": {"ip": "10.1.2.3/24", "gateway": "10.1.2.1",
                        "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.2.1"}]}})),
        ),
        (
            "1.0.0 -> 0.4.0 derives version from family, not the input field",
            json!({"cniVersion": "1.0.0", "ips": [{"version": "6", "address": "10.1.2.3/24"},
                                                  {"version": "4", "address": "fd00::3/64"},
                                                  {"address": "::ffff:10.1.2.4/120"}]}),
            "",
            "0.4.0",
            Want::Json(json!({"cniVersion": "0.4.0", "ips": [
                {"version": "4", "address": "10.1.2.3/24"},
                {"version": "6", "address": "fd00::3/64"},
                {"version": "4", "address": "::ffff:10.1.2.4/120"}]})),
        ),
        (
            "empty result, dns omitted",
            json!({"cniVersion": "1.1.0", "dns": {"nameservers": [], "domain": ""}}),
            "",
            "1.0.0",
            Want::Json(json!({"cniVersion": "1.0.0"})),
        ),
        (
            "missing cniVersion uses fallback",
            json!({"ip4": {"ip": "10.1.2.3/24"}}),
            "0.2.0",
            "1.1.0",
            Want::Json(json!({"cniVersion": "1.1.0", "ips": [{"address": "10.1.2.3/24"}]})),
        ),
        (
            "empty cniVersion means 0.1.0",
            json!({"cniVersion": "", "ip4": {"ip": "10.1.2.3/24"}}),
            "1.0.0",
            "0.3.0",
            Want::Json(
                json!({"cniVersion": "0.3.0", "ips": [{"version": "4", "address": "10.1.2.3/24"}]}),
            ),
        ),
        (
            "lossy: two IPv4 to 0.2.0",
            two_v4.clone(),
            "",
            "0.2.0",
            Want::Lossy("2 IPv4 addresses (10.1.2.3/24, 10.1.9.3/24)"),
        ),
        (
            "two IPv4 to 0.3.0 is fine",
            two_v4,
            "",
            "0.3.0",
            Want::Json(json!({"cniVersion": "0.3.0", "ips": [
            {"version": "4", "address": "10.1.2.3/24"}, {"version": "4", "address": "10.1.9.3/24"},
            {"version": "6", "address": "fd00::3/64"}]})),
        ),
        (
            "lossy: two IPv6 to 0.1.0",
            json!({"cniVersion": "1.1.0", "ips": [{"address": "fd00::3/64"}, {"address": "fd01::3/64"}]}),
            "",
            "0.1.0",
            Want::Lossy("2 IPv6 addresses"),
        ),
        (
            "lossy: no addresses to 0.2.0",
            json!({"cniVersion": "1.0.0", "interfaces": [{"name": "eth0"}]}),
            "",
            "0.2.0",
            Want::Lossy("no IP addresses"),
        ),
        (
            "lossy: IPv6 route without IPv6 address to 0.2.0",
            json!({"cniVersion": "1.0.0", "ips": [{"address": "10.1.2.3/24"}], "routes": [{"dst": "::/0"}]}),
            "",
            "0.2.0",
            Want::Lossy("route to ::/0 has no IPv6 address"),
        ),
        (
            "not an object: array",
            json!([1, 2]),
            "1.0.0",
            "1.0.0",
            Want::Decode("not a JSON object"),
        ),
        (
            "not an object: string",
            json!("ok"),
            "1.0.0",
            "1.0.0",
            Want::Decode("not a JSON object"),
        ),
        (
            "not an object: null",
            Value::Null,
            "1.0.0",
            "1.0.0",
            Want::Decode("not a JSON object"),
        ),
        (
            "cniVersion not a string",
            json!({"cniVersion": 1}),
            "1.0.0",
            "1.0.0",
            Want::Decode("cniVersion"),
        ),
        (
            "unknown input version",
            json!({"cniVersion": "0.5.0"}),
            "1.0.0",
            "1.0.0",
            Want::Unsupported("0.5.0"),
        ),
        (
            "unknown fallback version",
            json!({}),
            "2.0.0",
            "1.0.0",
            Want::Unsupported("2.0.0"),
        ),
        (
            "unknown output version",
            json!({}),
            "1.0.0",
            "1.2.0",
            Want::Unsupported("1.2.0"),
        ),
        (
            "garbage output version",
            json!({}),
            "1.0.0",
            "latest",
            Want::Unsupported("latest"),
        ),
        (
            "empty output version",
            json!({}),
            "1.0.0",
            "",
            Want::Unsupported(""),
        ),
        (
            "bad CIDR: no prefix",
            json!({"ips": [{"address": "10.1.2.3"}]}),
            "1.0.0",
            "1.0.0",
            Want::Decode("ips[0].address: invalid CIDR"),
        ),
        (
            "bad CIDR: v4 prefix 33",
            json!({"ips": [{"address": "10.1.2.3/33"}]}),
            "1.0.0",
            "1.0.0",
            Want::Decode("ips[0].address"),
        ),
        (
            "bad CIDR: v6 prefix 129",
            json!({"ips": [{"address": "fd00::1/129"}]}),
            "1.0.0",
            "1.0.0",
            Want::Decode("ips[0].address"),
        ),
        (
            "bad CIDR: signed prefix",
            json!({"ips": [{"address": "10.1.2.3/+24"}]}),
            "1.0.0",
            "1.0.0",
            Want::Decode("ips[0].address"),
        ),
        (
            "bad CIDR: not an address",
            json!({"ips": [{"address": "pod/24"}]}),
            "1.0.0",
            "1.0.0",
            Want::Decode("ips[0].address"),
        ),
        (
            "bad CIDR: legacy ip4",
            json!({"ip4": {"ip": "10.1.2/24"}}),
            "0.2.0",
            "1.0.0",
            Want::Decode("ips[0].address"),
        ),
        (
            "bad type: address",
            json!({"ips": [{"address": 5}]}),
            "1.0.0",
            "1.0.0",
            Want::Decode("ips[0]: invalid type"),
        ),
        (
            "missing address",
            json!({"ips": [{"gateway": "10.1.2.1"}]}),
            "1.0.0",
            "1.0.0",
            Want::Decode("ips[0]: missing field `address`"),
        ),
        (
            "missing legacy ip",
            json!({"ip4": {"gateway": "10.1.2.1"}}),
            "0.2.0",
            "1.0.0",
            Want::Decode("ip4: missing field `ip`"),
        ),
        (
            "ips not a list",
            json!({"ips": {"address": "10.1.2.3/24"}}),
            "1.0.0",
            "1.0.0",
            Want::Decode("ips: not a list"),
        ),
        (
            "bad gateway",
            json!({"ips": [{"address": "10.1.2.3/24", "gateway": "10.1.2.256"}]}),
            "1.0.0",
            "1.0.0",
            Want::Decode("ips[0].gateway: invalid IP"),
        ),
        (
            "bad route dst",
            json!({"routes": [{"dst": "default"}]}),
            "1.0.0",
            "1.0.0",
            Want::Decode("routes[0].dst"),
        ),
        (
            "bad route gw",
            json!({"routes": [{"dst": "0.0.0.0/0", "gw": "gw"}]}),
            "1.0.0",
            "1.0.0",
            Want::Decode("routes[0].gw"),
        ),
        (
            "bad index: out of range",
            json!({"interfaces": [{"name": "eth0"}], "ips": [{"address": "10.1.2.3/24", "interface": 1}]}),
            "1.0.0",
            "1.0.0",
            Want::Decode("ips[0].interface: index 1 out of range"),
        ),
        (
            "bad index: negative",
            json!({"interfaces": [{"name": "eth0"}], "ips": [{"address": "10.1.2.3/24", "interface": -1}]}),
            "1.0.0",
            "1.0.0",
            Want::Decode("ips[0]: invalid value"),
        ),
        (
            "bad scope type",
            json!({"routes": [{"dst": "0.0.0.0/0", "scope": 256}]}),
            "1.1.0",
            "1.1.0",
            Want::Decode("routes[0]"),
        ),
    ];
    for (name, input, fallback, to, want) in rows {
        check(name, convert(&input, fallback, to), &want);
    }
}

#[test]
fn from_slice_rejects_non_json() {
    for (name, bytes) in [
        ("truncated", &b"{\"ips\": ["[..]),
        ("empty", b""),
        ("binary", b"\xff\xfe"),
    ] {
        let err = CniResult::from_slice(bytes, "1.0.0").unwrap_err();
        assert!(
            matches!(&err, ResultError::Decode(m) if m.contains("invalid JSON")),
            "{name}: {err:?}"
        );
    }
}

#[test]
fn to_value_validates_built_results() {
    let r = CniResult {
        ips: vec![IpConfig {
            address: "10.1.2.3/24".into(),
            interface: Some(2),
            ..IpConfig::default()
        }],
        interfaces: vec![Interface {
            name: "eth0".into(),
            ..Interface::default()
        }],
        ..CniResult::default()
    };
    assert!(
        matches!(r.to_value("1.0.0"), Err(ResultError::Decode(m)) if m.contains("out of range"))
    );
}

#[test]
fn ips_of_table() {
    let multi = CniResult::from_value(
        &json!({"cniVersion": "1.0.0",
            "interfaces": [{"name": "br0"}, {"name": "eth0", "sandbox": "/ns"}, {"name": "net1", "sandbox": "/ns"}],
            "ips": [{"address": "10.0.0.1/24", "interface": 0},
                    {"address": "10.1.2.3/24", "interface": 1},
                    {"address": "fd00::3/64", "interface": 1},
                    {"address": "10.9.0.5/16", "interface": 2},
                    {"address": "10.7.0.1/16"}]}),
        "",
    )
    .unwrap();
    let legacy = CniResult::from_value(&fixture("0.2.0", 0), "").unwrap();
    let rows: &[(&str, &CniResult, &str, &[&str])] = &[
        (
            "pod interface, dual stack",
            &multi,
            "eth0",
            &["10.1.2.3", "fd00::3"],
        ),
        ("second pod interface", &multi, "net1", &["10.9.0.5"]),
        ("host-side interface", &multi, "br0", &["10.0.0.1"]),
        ("unknown name", &multi, "net9", &[]),
        (
            "no interfaces: all addresses",
            &legacy,
            "eth0",
            &["10.1.2.3", "fd00::3"],
        ),
        ("empty result", &CniResult::default(), "eth0", &[]),
    ];
    for (name, result, ifname, want) in rows {
        assert_eq!(result.ips_of(ifname), *want, "{name}");
    }
}
