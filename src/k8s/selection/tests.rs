//! Tests of `selection`.

use serde_json::json;

use super::*;

fn sel(namespace: &str, name: &str, interface: Option<&str>) -> Selection {
    Selection {
        name: name.into(),
        namespace: namespace.into(),
        interface: interface.map(Into::into),
        ..Selection::default()
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn full() -> Selection {
    Selection {
        name: "macvlan-a".into(),
        namespace: "other".into(),
        interface: Some("data0".into()),
        ips: strings(&["10.1.2.3/24", "fd00::3"]),
        mac: Some("02:00:00:00:00:0a".into()),
        default_route: strings(&["10.1.2.1", "fd00::1"]),
        port_mappings: vec![
            json!({"hostPort": 8080, "containerPort": 80, "protocol": "tcp", "hostIP": "0.0.0.0"}),
        ],
        bandwidth: Some(json!({"ingressRate": 1000, "ingressBurst": 2000,
                               "egressRate": 1000, "egressBurst": 2000})),
        cni_args: json!({"foo": "bar", "n": 1}).as_object().cloned(),
        infiniband_guid: Some("c2:11:22:33:44:55:66:77".into()),
        device_id: Some("0000:03:02.1".into()),
        ipam_claim_reference: None,
    }
}

const FULL_JSON: &str = r#"[{"name": "macvlan-a", "namespace": "other", "interface": "data0",
    "ips": ["10.1.2.3/24", "fd00::3"], "mac": "02:00:00:00:00:0a",
    "default-route": ["10.1.2.1", "fd00::1"],
    "portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp", "hostIP": "0.0.0.0"}],
    "bandwidth": {"ingressRate": 1000, "ingressBurst": 2000, "egressRate": 1000, "egressBurst": 2000},
    "cni-args": {"foo": "bar", "n": 1}, "infiniband-guid": "c2:11:22:33:44:55:66:77",
    "deviceID": "0000:03:02.1", "future-key": {"x": [1, 2]}}]"#;

#[test]
#[allow(clippy::too_many_lines)] // one table
fn parse_networks_valid() {
    let claim = Selection {
        ipam_claim_reference: Some("claim-1".into()),
        ..sel("pods", "ovn", Some("net1"))
    };
    let sixty_four = vec!["a"; 64].join(",");
    let rows: Vec<(&str, &str, Vec<Selection>)> = vec![
        ("empty", "", vec![]),
        ("whitespace only", " \t\n ", vec![]),
        ("empty JSON list", "[]", vec![]),
        (
            "short: name",
            "macvlan-a",
            vec![sel("pods", "macvlan-a", None)],
        ),
        (
            "short: ns/name",
            "other/macvlan-b",
            vec![sel("other", "macvlan-b", None)],
        ),
        (
            "short: name@ifname",
            "macvlan-a@data0",
            vec![sel("pods", "macvlan-a", Some("data0"))],
        ),
        (
            "short: ns/name@ifname, two items",
            "macvlan-a,other/macvlan-b@data0",
            vec![
                sel("pods", "macvlan-a", None),
                sel("other", "macvlan-b", Some("data0")),
            ],
        ),
        (
            "short: spaces around items",
            "  macvlan-a , other/macvlan-b@data0  ",
            vec![
                sel("pods", "macvlan-a", None),
                sel("other", "macvlan-b", Some("data0")),
            ],
        ),
        (
            "short: dotted subdomain name",
            "net.example.com",
            vec![sel("pods", "net.example.com", None)],
        ),
        (
            "short: same NAD twice, different ifnames",
            "a@net1,a@net2",
            vec![
                sel("pods", "a", Some("net1")),
                sel("pods", "a", Some("net2")),
            ],
        ),
        (
            "short: same NAD twice without ifnames",
            "a,a",
            vec![sel("pods", "a", None), sel("pods", "a", None)],
        ),
        ("JSON: every field", FULL_JSON, vec![full()]),
        (
            "JSON: only name, namespace defaulted",
            r#"[{"name": "a"}]"#,
            vec![sel("pods", "a", None)],
        ),
        (
            "JSON: nulls and empty strings mean absent",
            r#"[{"name": "a", "namespace": "", "interface": null, "mac": "", "ips": null,
                 "portMappings": null, "bandwidth": null, "cni-args": null, "deviceID": ""}]"#,
            vec![sel("pods", "a", None)],
        ),
        (
            "JSON: case-insensitive keys as Go",
            r#"[{"Name": "a", "NAMESPACE": "other", "Interface": "data0"}]"#,
            vec![sel("other", "a", Some("data0"))],
        ),
        (
            "JSON: leading whitespace",
            "\n  [ {\"name\": \"a\"} ]",
            vec![sel("pods", "a", None)],
        ),
        (
            "JSON: ipam-claim-reference",
            r#"[{"name": "ovn", "interface": "net1", "ipam-claim-reference": "claim-1"}]"#,
            vec![claim],
        ),
        (
            "JSON: ipam-claim-reference with empty ips",
            r#"[{"name": "ovn", "interface": "net1", "ips": [], "ipam-claim-reference": "claim-1"}]"#,
            vec![Selection {
                ipam_claim_reference: Some("claim-1".into()),
                ..sel("pods", "ovn", Some("net1"))
            }],
        ),
        (
            "JSON: default-route v4 and v6 on different elements",
            r#"[{"name": "a", "default-route": ["10.0.0.1"]}, {"name": "b", "default-route": ["fd00::1"]}]"#,
            vec![
                Selection {
                    default_route: strings(&["10.0.0.1"]),
                    ..sel("pods", "a", None)
                },
                Selection {
                    default_route: strings(&["fd00::1"]),
                    ..sel("pods", "b", None)
                },
            ],
        ),
        (
            "JSON: MAC forms of Go's ParseMAC",
            r#"[{"name": "a", "mac": "02-00-00-00-00-0A"}, {"name": "b", "mac": "0200.0000.000a"},
                {"name": "c", "mac": "00:00:00:00:fe:80:00:00:00:00:00:00:02:00:5e:10:00:00:00:01"}]"#,
            vec![
                Selection {
                    mac: Some("02-00-00-00-00-0A".into()),
                    ..sel("pods", "a", None)
                },
                Selection {
                    mac: Some("0200.0000.000a".into()),
                    ..sel("pods", "b", None)
                },
                Selection {
                    mac: Some("00:00:00:00:fe:80:00:00:00:00:00:00:02:00:5e:10:00:00:00:01".into()),
                    ..sel("pods", "c", None)
                },
            ],
        ),
        (
            "JSON: bare IPs, v4-mapped, /0 and /128",
            r#"[{"name": "a", "ips": ["10.0.0.5", "::ffff:10.0.0.6", "10.0.0.7/0", "fd00::7/128"]}]"#,
            vec![Selection {
                ips: strings(&["10.0.0.5", "::ffff:10.0.0.6", "10.0.0.7/0", "fd00::7/128"]),
                ..sel("pods", "a", None)
            }],
        ),
        (
            "exactly 64 elements",
            &sixty_four,
            vec![sel("pods", "a", None); 64],
        ),
    ];
    for (name, input, want) in rows {
        assert_eq!(parse_networks(input, "pods"), Ok(want), "{name}");
    }
}

#[test]
#[allow(clippy::too_many_lines)] // one table
fn parse_networks_invalid() {
    let long_name = "a".repeat(254);
    let oversized = format!("[{{\"name\": \"{}\"}}]", "a".repeat(MAX_ANNOTATION_BYTES));
    let many = vec!["a"; 65].join(",");
    let many_json = format!("[{}]", vec![r#"{"name":"a"}"#; 65].join(","));
    let long_ns = format!("{}/net", "n".repeat(64));
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let rows: Vec<(&str, &str, &[&str])> = vec![
        ("broken JSON", r#"[{"name": "a""#, &["invalid JSON", "EOF"]),
        (
            "trailing garbage after JSON",
            r#"[{"name": "a"}] x"#,
            &["invalid JSON"],
        ),
        (
            "JSON object, not a list",
            r#"{"name": "a"}"#,
            &["expected a JSON list", "found a JSON object"],
        ),
        (
            "list of strings",
            r#"["a"]"#,
            &["element 0", "expected a selection object, found a string"],
        ),
        (
            "list with null",
            r#"[{"name": "a"}, null]"#,
            &["element 1", "found null"],
        ),
        ("deep nesting", &deep, &["invalid JSON", "recursion limit"]),
        (
            "missing name",
            r#"[{"namespace": "x"}]"#,
            &["element 0", "\"name\"", "is required"],
        ),
        (
            "null name",
            r#"[{"name": null}]"#,
            &["\"name\"", "is required"],
        ),
        (
            "empty name",
            r#"[{"name": ""}]"#,
            &["\"name\"", "is required"],
        ),
        (
            "number name",
            r#"[{"name": 5}]"#,
            &["\"name\"", "expected a string, found a number 5"],
        ),
        (
            "uppercase name",
            "Macvlan",
            &["\"name\"", "\"Macvlan\"", "uppercase"],
        ),
        (
            "uppercase name in JSON",
            r#"[{"name": "Macvlan"}]"#,
            &["\"name\"", "uppercase"],
        ),
        (
            "name with underscore",
            "mac_vlan",
            &["\"name\"", "DNS-1123 subdomain"],
        ),
        (
            "name ending with dash",
            "macvlan-",
            &["\"name\"", "DNS-1123 subdomain"],
        ),
        (
            "name with empty label",
            "a..b",
            &["\"name\"", "DNS-1123 subdomain"],
        ),
        (
            "name too long",
            &long_name,
            &["\"name\"", "longer than 253"],
        ),
        (
            "namespace with dot",
            "a.b/net",
            &["\"namespace\"", "DNS-1123 label"],
        ),
        (
            "namespace too long",
            &long_ns,
            &["\"namespace\"", "longer than 63"],
        ),
        (
            "namespace number",
            r#"[{"name": "a", "namespace": 1}]"#,
            &["\"namespace\"", "expected a string"],
        ),
        (
            "empty namespace before /",
            "/net",
            &["\"namespace\"", "empty"],
        ),
        (
            "empty ifname after @",
            "net@",
            &["\"interface\"", "empty after '@'"],
        ),
        (
            "a/b/c",
            "a/b/c",
            &["element 0", "\"a/b/c\"", "more than one '/'"],
        ),
        (
            "a@b@c",
            "x,a@b@c",
            &["element 1", "\"a@b@c\"", "more than one '@'"],
        ),
        (
            "empty item a,,b",
            "a,,b",
            &["element 1 is empty", "\"a,,b\""],
        ),
        ("trailing comma", "a,b,", &["element 2 is empty"]),
        (
            "ifname too long",
            "net@abcdefghijklmnop",
            &["\"interface\"", "longer than 15"],
        ),
        (
            "ifname with slash in JSON",
            r#"[{"name": "a", "interface": "a/b"}]"#,
            &["\"interface\"", "'/'"],
        ),
        (
            "duplicate ifnames",
            "a@net1,b@net1",
            &["element 1", "\"net1\"", "already requested by element 0"],
        ),
        (
            "duplicate ifnames in JSON",
            r#"[{"name":"a","interface":"x"},{"name":"a","interface":"x"}]"#,
            &["element 1", "\"x\"", "element 0"],
        ),
        (
            "two IPv4 default-routes",
            r#"[{"name":"a","default-route":["10.0.0.1"]},{"name":"b","default-route":["10.1.0.1"]}]"#,
            &["element 1", "IPv4", "\"10.1.0.1\"", "element 0"],
        ),
        (
            "two IPv6 default-routes in one element",
            r#"[{"name":"a","default-route":["fd00::1","fd01::1"]}]"#,
            &["element 0", "IPv6", "\"fd01::1\""],
        ),
        (
            "bad default-route",
            r#"[{"name":"a","default-route":["10.0.0.256"]}]"#,
            &["\"default-route[0]\"", "\"10.0.0.256\"", "not an IP"],
        ),
        (
            "default-route not a list",
            r#"[{"name":"a","default-route":"10.0.0.1"}]"#,
            &["\"default-route\"", "expected a list, found a string"],
        ),
        (
            "bad MAC",
            r#"[{"name":"a","mac":"02:00:00:00:00"}]"#,
            &["\"mac\"", "\"02:00:00:00:00\"", "not a MAC"],
        ),
        (
            "MAC with mixed separators",
            r#"[{"name":"a","mac":"02:00-00:00:00:0a"}]"#,
            &["\"mac\"", "not a MAC"],
        ),
        (
            "MAC with 7 octets",
            r#"[{"name":"a","mac":"02:00:00:00:00:0a:0b"}]"#,
            &["\"mac\"", "not a MAC"],
        ),
        (
            "MAC not hex",
            r#"[{"name":"a","mac":"zz:00:00:00:00:0a"}]"#,
            &["\"mac\"", "\"zz:00:00:00:00:0a\""],
        ),
        (
            "bad IP",
            r#"[{"name":"a","ips":["10.0.0.300"]}]"#,
            &["\"ips[0]\"", "\"10.0.0.300\"", "not an IP address"],
        ),
        (
            "IP with zone",
            r#"[{"name":"a","ips":["fe80::1%eth0"]}]"#,
            &["\"ips[0]\"", "not an IP address"],
        ),
        (
            "bad CIDR prefix v4",
            r#"[{"name":"a","ips":["10.0.0.1/24","10.0.0.2/33"]}]"#,
            &["\"ips[1]\"", "\"10.0.0.2/33\"", "prefix length (0 to 32)"],
        ),
        (
            "bad CIDR prefix v6",
            r#"[{"name":"a","ips":["fd00::1/129"]}]"#,
            &["\"ips[0]\"", "0 to 128"],
        ),
        (
            "empty CIDR prefix",
            r#"[{"name":"a","ips":["10.0.0.1/"]}]"#,
            &["\"ips[0]\"", "prefix length"],
        ),
        (
            "signed CIDR prefix",
            r#"[{"name":"a","ips":["10.0.0.1/+8"]}]"#,
            &["\"ips[0]\"", "prefix length"],
        ),
        (
            "ips not a list",
            r#"[{"name":"a","ips":"10.0.0.1"}]"#,
            &["\"ips\"", "expected a list, found a string \"10.0.0.1\""],
        ),
        (
            "ips element a number",
            r#"[{"name":"a","ips":[10]}]"#,
            &["\"ips[0]\"", "expected a string, found a number"],
        ),
        (
            "ips with ipam-claim-reference",
            r#"[{"name":"a","ips":["10.0.0.1/24"],"ipam-claim-reference":"c"}]"#,
            &["\"ipam-claim-reference\"", "\"ips\""],
        ),
        (
            "bad infiniband-guid (6 octets)",
            r#"[{"name":"a","infiniband-guid":"02:00:00:00:00:0a"}]"#,
            &["\"infiniband-guid\"", "InfiniBand GUID"],
        ),
        (
            "portMappings not a list",
            r#"[{"name":"a","portMappings":{"hostPort":1}}]"#,
            &["\"portMappings\"", "expected a list"],
        ),
        (
            "portMappings port as string",
            r#"[{"name":"a","portMappings":[{"hostPort":"80"}]}]"#,
            &["\"portMappings[0].hostPort\"", "expected an integer"],
        ),
        (
            "bandwidth rate as float",
            r#"[{"name":"a","bandwidth":{"ingressRate":1.5}}]"#,
            &["\"bandwidth.ingressRate\"", "expected an integer"],
        ),
        (
            "cni-args a list",
            r#"[{"name":"a","cni-args":["x"]}]"#,
            &["\"cni-args\"", "expected an object"],
        ),
        (
            "deviceID a bool",
            r#"[{"name":"a","deviceID":true}]"#,
            &["\"deviceID\"", "expected a string, found a boolean"],
        ),
        (
            "second element invalid",
            r#"[{"name":"a"},{"name":"B"}]"#,
            &["element 1", "{\"name\":\"B\"}"],
        ),
        ("oversized", &oversized, &["over the limit of 65536 bytes"]),
        (
            "65 short items",
            &many,
            &["65 networks selected", "limit of 64"],
        ),
        ("65 JSON elements", &many_json, &["65 networks selected"]),
    ];
    for (name, input, want) in rows {
        let err = match parse_networks(input, "pods") {
            Ok(v) => panic!("{name}: accepted as {v:?}"),
            Err(e) => e.to_string(),
        };
        assert!(err.starts_with(NETWORKS_ANNOTATION), "{name}: {err}");
        for w in want {
            assert!(err.contains(w), "{name}: {err:?} lacks {w:?}");
        }
        assert!(err.len() < 800, "{name}: message too long: {err}");
    }
}

#[test]
fn long_elements_are_quoted_truncated() {
    let value = format!("[{{\"name\": \"A{}\"}}]", "b".repeat(1000));
    let err = parse_networks(&value, "pods").unwrap_err();
    let SelectionError::Field { element, field, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(field, "name");
    assert!(
        element.len() <= MAX_QUOTE + 3 && element.ends_with("..."),
        "{element}"
    );
}

#[test]
fn never_panics_on_odd_input() {
    let inputs = [
        "[",
        "]",
        "[[[",
        "[{}]",
        "[[]]",
        "[1]",
        "[true]",
        "{",
        "\"",
        ",",
        "@",
        "/",
        "/@",
        "a/@",
        "é",
        "ñ/ñ@ñ",
        "[{\"name\":\"a\",\"ips\":[[[]]]}]",
        "[{\"name\":{}}]",
        "[{\"name\":\"a\",\"mac\":\"\u{1F600}\u{1F600}\u{1F600}\u{1F600}\"}]",
        "[{\"name\":\"a\",\"mac\":\"00:00:00:00:00:0\u{e9}\"}]",
        "[{\"name\":\"a\",\"infiniband-guid\":\"0000.0000.0000.0000\"}]",
        "[{\"name\":\"a\",\"portMappings\":[null, 1]}]",
    ];
    for input in inputs {
        let _ = parse_networks(input, "pods");
        let _ = parse_default_network(input, "pods");
    }
}

#[test]
fn parse_default_network_table() {
    let oversized = "a".repeat(MAX_ANNOTATION_BYTES + 1);
    let rows: Vec<(&str, &str, Result<Selection, &str>)> = vec![
        ("name", "flannel", Ok(sel("pods", "flannel", None))),
        (
            "ns/name",
            " kube-system/calico ",
            Ok(sel("kube-system", "calico", None)),
        ),
        (
            "JSON object",
            r#"{"name": "calico", "namespace": "kube-system"}"#,
            Ok(sel("kube-system", "calico", None)),
        ),
        (
            "JSON list of one",
            r#"[{"name": "calico"}]"#,
            Ok(sel("pods", "calico", None)),
        ),
        ("empty", "  ", Err("value is empty")),
        (
            "two short items",
            "a,b",
            Err("exactly one network, found 2"),
        ),
        (
            "JSON list of two",
            r#"[{"name":"a"},{"name":"b"}]"#,
            Err("found 2"),
        ),
        ("empty JSON list", "[]", Err("found 0")),
        ("JSON string", r#""calico""#, Err("\"name\"")),
        (
            "JSON object without name",
            r#"{"namespace":"x"}"#,
            Err("is required"),
        ),
        ("bad JSON object", r#"{"name":"#, Err("invalid JSON")),
        ("bad name", "Calico", Err("uppercase")),
        ("oversized", &oversized, Err("over the limit")),
    ];
    for (name, input, want) in rows {
        match (parse_default_network(input, "pods"), want) {
            (Ok(got), Ok(want)) => assert_eq!(got, want, "{name}"),
            (Err(e), Err(want)) => {
                let msg = e.to_string();
                assert!(msg.starts_with(DEFAULT_NETWORK_ANNOTATION), "{name}: {msg}");
                assert!(msg.contains(want), "{name}: {msg:?} lacks {want:?}");
            }
            (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
        }
    }
}
