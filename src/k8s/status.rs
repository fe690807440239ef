//! The `k8s.v1.cni.cncf.io/network-status` annotation builder: CNI results of a pod's attachments
//! in, one [`NetworkStatus`] per pod interface out.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cni::result::{CniResult, Dns, Interface, IpConfig};

/// The pod annotation listing the pod's network interfaces.
pub const STATUS_ANNOTATION: &str = "k8s.v1.cni.cncf.io/network-status";

/// One entry of the network-status annotation (NPWG v1.3 field names and omissions, as Multus
/// writes them; field order follows Multus).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct NetworkStatus {
    /// `namespace/name` of the NAD, or the conf name of the cluster network.
    pub name: String,
    /// Interface name inside the pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// Addresses of the interface, without prefix length, in Go's canonical text form.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<String>,
    /// Hardware address of the interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// MTU of the interface, when the plugin reported one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// True on exactly one entry: the cluster network's pod interface.
    #[serde(default, skip_serializing_if = "is_false")]
    pub default: bool,
    /// DNS settings the plugin reported, when any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<Value>,
    /// Device information (e.g. the PCI address of an SR-IOV VF), as the device plugin gave it.
    #[serde(
        rename = "device-info",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub device_info: Option<Value>,
    /// Gateways of the interface's addresses; set only for the cluster network.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateway: Vec<String>,
}

fn is_false(b: &bool) -> bool {
    !b
}

/// One successful attachment, as [`build`] needs it.
#[derive(Debug, Clone, Copy)]
pub struct StatusInput<'a> {
    /// `namespace/name` for a NAD, the conf name for the cluster network.
    pub network: &'a str,
    /// The interface name the attachment was asked to create in the pod.
    pub ifname: &'a str,
    /// The attachment's final CNI result.
    pub result: &'a CniResult,
    /// True for the cluster (default) network.
    pub default: bool,
    /// Device information for the attachment's device, if any.
    pub device_info: Option<&'a Value>,
}

/// Builds the status entries of all attachments, in input order.
///
/// Each result gives one entry per sandbox interface (those with `sandbox` set), in the result's
/// order; the attachment's primary interface is the one named like its `ifname`, else the first
/// sandbox interface, and it also gets the addresses that name no interface. A result without
/// sandbox interfaces gives one entry named after the attachment's `ifname` with all the result's
/// addresses. `gateway` is filled only for default inputs. Exactly one entry has `default: true`
/// when any input is default: the primary interface of the first default input.
pub fn build(inputs: &[StatusInput<'_>]) -> Vec<NetworkStatus> {
    let mut out = Vec::new();
    let mut default_set = false;
    for input in inputs {
        let (mut entries, primary) = entries_of(input);
        if input.default && !default_set {
            // `entries_of` always returns at least one entry, so this always marks one.
            entries
                .get_mut(primary)
                .into_iter()
                .for_each(|e| e.default = true);
            default_set = true;
        }
        out.extend(entries);
    }
    out
}

/// The annotation value: the entries as a compact JSON list.
pub fn to_annotation(statuses: &[NetworkStatus]) -> String {
    // Strings, numbers, booleans and `Value`s always serialize; the fallback is never taken.
    serde_json::to_string(statuses).unwrap_or_else(|_| String::from("[]"))
}

/// The entries of one attachment and the index of its primary entry.
fn entries_of(input: &StatusInput<'_>) -> (Vec<NetworkStatus>, usize) {
    let r = input.result;
    let sandbox: Vec<usize> = r
        .interfaces
        .iter()
        .enumerate()
        .filter(|(_, i)| i.sandbox.as_deref().is_some_and(|s| !s.is_empty()))
        .map(|(idx, _)| idx)
        .collect();
    if sandbox.is_empty() {
        let named = r.interfaces.iter().find(|i| i.name == input.ifname);
        let all: Vec<&IpConfig> = r.ips.iter().collect();
        return (vec![entry(input, input.ifname, named, &all)], 0);
    }
    let primary = sandbox
        .iter()
        .position(|&idx| r.interfaces[idx].name == input.ifname)
        .unwrap_or(0);
    let entries = sandbox
        .iter()
        .enumerate()
        .map(|(slot, &idx)| {
            let ips: Vec<&IpConfig> = r
                .ips
                .iter()
                .filter(|ip| ip.interface.map_or(slot == primary, |i| i == idx))
                .collect();
            let iface = &r.interfaces[idx];
            entry(input, &iface.name, Some(iface), &ips)
        })
        .collect();
    (entries, primary)
}

fn entry(
    input: &StatusInput<'_>,
    name: &str,
    iface: Option<&Interface>,
    ips: &[&IpConfig],
) -> NetworkStatus {
    NetworkStatus {
        name: input.network.to_string(),
        interface: Some(name.to_string()).filter(|n| !n.is_empty()),
        ips: ips.iter().map(|ip| bare_ip(&ip.address)).collect(),
        mac: iface.and_then(|i| i.mac.clone()).filter(|m| !m.is_empty()),
        mtu: iface.and_then(|i| i.mtu).filter(|&m| m != 0),
        default: false,
        dns: dns(&input.result.dns),
        device_info: input.device_info.cloned(),
        gateway: if input.default {
            ips.iter()
                .filter_map(|ip| ip.gateway.as_deref())
                .map(bare_ip)
                .collect()
        } else {
            Vec::new()
        },
    }
}

/// The address without prefix length, printed as Go prints a `net.IP` (IPv4-mapped IPv6
/// addresses in dotted form); text that is not an address is kept as it is.
fn bare_ip(address: &str) -> String {
    let addr = address.split('/').next().unwrap_or_default();
    match addr.parse::<IpAddr>() {
        Ok(ip) => ip.to_canonical().to_string(),
        Err(_) => addr.to_string(),
    }
}

/// The result's DNS as JSON, or `None` when it sets nothing.
fn dns(d: &Dns) -> Option<Value> {
    let d = Dns {
        domain: d.domain.clone().filter(|s| !s.is_empty()),
        ..d.clone()
    };
    if d.is_empty() {
        return None;
    }
    serde_json::to_value(&d).ok()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn result(v: Value) -> CniResult {
        CniResult::from_value(&v, "1.0.0").unwrap()
    }

    fn input<'a>(network: &'a str, ifname: &'a str, result: &'a CniResult) -> StatusInput<'a> {
        StatusInput {
            network,
            ifname,
            result,
            default: false,
            device_info: None,
        }
    }

    fn cluster<'a>(network: &'a str, ifname: &'a str, result: &'a CniResult) -> StatusInput<'a> {
        StatusInput {
            default: true,
            ..input(network, ifname, result)
        }
    }

    #[test]
    #[allow(clippy::too_many_lines)] // one table
    fn build_table() {
        // bridge: host bridge, host veth, pod eth0 (reference bridge plugin shape).
        let bridge = result(json!({"cniVersion": "1.0.0",
            "interfaces": [{"name": "cni0", "mac": "0a:58:0a:f4:01:01"},
                           {"name": "veth5e3f1a2b", "mac": "6e:1a:2b:3c:4d:5e"},
                           {"name": "eth0", "mac": "0a:58:0a:f4:01:03", "sandbox": "/var/run/netns/cni-1"}],
            "ips": [{"interface": 2, "address": "10.244.1.3/24", "gateway": "10.244.1.1"}],
            "routes": [{"dst": "0.0.0.0/0", "gw": "10.244.1.1"}], "dns": {}}));
        let macvlan = result(json!({"cniVersion": "1.0.0",
            "interfaces": [{"name": "net1", "mac": "02:00:00:00:00:0a", "sandbox": "/var/run/netns/cni-1"}],
            "ips": [{"interface": 0, "address": "192.168.10.200/24", "gateway": "192.168.10.1"}]}));
        let macvlan_b = result(json!({"cniVersion": "1.1.0",
            "interfaces": [{"name": "data0", "mac": "02:00:00:00:00:0b", "mtu": 9000,
                            "sandbox": "/var/run/netns/cni-1"}],
            "ips": [{"interface": 0, "address": "192.168.20.5/24"}]}));
        let no_ifaces = result(json!({"cniVersion": "0.2.0",
            "ip4": {"ip": "10.1.2.3/24", "gateway": "10.1.2.1"},
            "ip6": {"ip": "fd00::3/64", "gateway": "fd00::1"}}));
        let dual = result(json!({"cniVersion": "1.0.0",
            "interfaces": [{"name": "cni0", "mac": "0a:58:0a:f4:01:01"},
                           {"name": "veth1", "mac": "6e:1a:2b:3c:4d:5f"},
                           {"name": "eth0", "mac": "0a:58:0a:f4:01:04", "sandbox": "/var/run/netns/cni-2"}],
            "ips": [{"interface": 2, "address": "fd00:10:244:1:0:0:0:4/64", "gateway": "fd00:10:244:1::1"},
                    {"interface": 2, "address": "10.244.1.4/24", "gateway": "10.244.1.1"},
                    {"interface": 0, "address": "10.244.1.1/24"}]}));
        let with_dns = result(json!({"cniVersion": "1.0.0",
            "interfaces": [{"name": "eth0", "sandbox": "/var/run/netns/cni-3"}],
            "ips": [{"interface": 0, "address": "10.244.2.7/24", "gateway": "10.244.2.1"}],
            "dns": {"nameservers": ["10.96.0.10"], "search": ["default.svc.cluster.local"],
                    "options": ["ndots:5"]}}));
        let two_pod_ifaces = result(json!({"cniVersion": "1.0.0",
            "interfaces": [{"name": "eth1", "mac": "02:00:00:00:01:01", "sandbox": "/ns"},
                           {"name": "eth0", "mac": "02:00:00:00:01:02", "sandbox": "/ns"}],
            "ips": [{"interface": 0, "address": "10.9.0.2/16", "gateway": "10.9.0.1"},
                    {"address": "10.8.0.2/16", "gateway": "10.8.0.1"},
                    {"address": "::ffff:10.7.0.2/120"}]}));
        let empty = CniResult::default();
        let vf_info =
            json!({"type": "pci", "version": "1.1.0", "pci": {"pci-address": "0000:03:02.1"}});
        let vf = result(json!({"cniVersion": "1.0.0",
            "interfaces": [{"name": "net1", "mac": "02:00:00:00:00:0c", "sandbox": "/ns"}],
            "ips": [{"interface": 0, "address": "192.168.30.9/24", "gateway": "192.168.30.1"}]}));

        let rows: Vec<(&str, Vec<StatusInput<'_>>, Value)> = vec![
            ("no inputs", vec![], json!([])),
            (
                "bridge cluster network: only the pod interface, with gateway",
                vec![cluster("cbr0", "eth0", &bridge)],
                json!([{"name": "cbr0", "interface": "eth0", "ips": ["10.244.1.3"],
                        "mac": "0a:58:0a:f4:01:03", "default": true, "gateway": ["10.244.1.1"]}]),
            ),
            (
                "cluster + macvlan + macvlan with mtu: gateway only on the default",
                vec![
                    cluster("cbr0", "eth0", &bridge),
                    input("pods/macvlan-a", "net1", &macvlan),
                    input("other/macvlan-b", "data0", &macvlan_b),
                ],
                json!([
                    {"name": "cbr0", "interface": "eth0", "ips": ["10.244.1.3"],
                     "mac": "0a:58:0a:f4:01:03", "default": true, "gateway": ["10.244.1.1"]},
                    {"name": "pods/macvlan-a", "interface": "net1", "ips": ["192.168.10.200"],
                     "mac": "02:00:00:00:00:0a"},
                    {"name": "other/macvlan-b", "interface": "data0", "ips": ["192.168.20.5"],
                     "mac": "02:00:00:00:00:0b", "mtu": 9000}]),
            ),
            (
                "result without interfaces: attachment ifname and all addresses",
                vec![input("pods/legacy", "net2", &no_ifaces)],
                json!([{"name": "pods/legacy", "interface": "net2", "ips": ["10.1.2.3", "fd00::3"]}]),
            ),
            (
                "result without interfaces as the cluster network",
                vec![cluster("legacy", "eth0", &no_ifaces)],
                json!([{"name": "legacy", "interface": "eth0", "ips": ["10.1.2.3", "fd00::3"],
                        "default": true, "gateway": ["10.1.2.1", "fd00::1"]}]),
            ),
            (
                "empty result",
                vec![input("pods/none", "net1", &empty)],
                json!([{"name": "pods/none", "interface": "net1"}]),
            ),
            (
                "dual stack: v6 first, canonical text, host bridge address left out",
                vec![cluster("cbr0", "eth0", &dual)],
                json!([{"name": "cbr0", "interface": "eth0", "ips": ["fd00:10:244:1::4", "10.244.1.4"],
                        "mac": "0a:58:0a:f4:01:04", "default": true,
                        "gateway": ["fd00:10:244:1::1", "10.244.1.1"]}]),
            ),
            (
                "DNS present",
                vec![cluster("k8s-pod-network", "eth0", &with_dns)],
                json!([{"name": "k8s-pod-network", "interface": "eth0", "ips": ["10.244.2.7"],
                        "default": true, "gateway": ["10.244.2.1"],
                        "dns": {"nameservers": ["10.96.0.10"], "search": ["default.svc.cluster.local"],
                                "options": ["ndots:5"]}}]),
            ),
            (
                "two pod interfaces: default and unindexed addresses on the one named like ifname",
                vec![cluster("multi", "eth0", &two_pod_ifaces)],
                json!([
                    {"name": "multi", "interface": "eth1", "ips": ["10.9.0.2"],
                     "mac": "02:00:00:00:01:01", "gateway": ["10.9.0.1"]},
                    {"name": "multi", "interface": "eth0", "ips": ["10.8.0.2", "10.7.0.2"],
                     "mac": "02:00:00:00:01:02", "default": true, "gateway": ["10.8.0.1"]}]),
            ),
            (
                "ifname not in the result: first pod interface is primary",
                vec![cluster("multi", "eth9", &two_pod_ifaces)],
                json!([
                    {"name": "multi", "interface": "eth1", "ips": ["10.9.0.2", "10.8.0.2", "10.7.0.2"],
                     "mac": "02:00:00:00:01:01", "default": true,
                     "gateway": ["10.9.0.1", "10.8.0.1"]},
                    {"name": "multi", "interface": "eth0", "mac": "02:00:00:00:01:02"}]),
            ),
            (
                "two default inputs: only the first is marked",
                vec![
                    cluster("cbr0", "eth0", &bridge),
                    cluster("other", "net1", &macvlan),
                ],
                json!([
                    {"name": "cbr0", "interface": "eth0", "ips": ["10.244.1.3"],
                     "mac": "0a:58:0a:f4:01:03", "default": true, "gateway": ["10.244.1.1"]},
                    {"name": "other", "interface": "net1", "ips": ["192.168.10.200"],
                     "mac": "02:00:00:00:00:0a", "gateway": ["192.168.10.1"]}]),
            ),
            (
                "device-info passed through",
                vec![StatusInput {
                    device_info: Some(&vf_info),
                    ..input("pods/sriov", "net1", &vf)
                }],
                json!([{"name": "pods/sriov", "interface": "net1", "ips": ["192.168.30.9"],
                        "mac": "02:00:00:00:00:0c", "device-info": vf_info.clone()}]),
            ),
        ];
        for (name, inputs, want) in rows {
            let statuses = build(&inputs);
            let defaults = statuses.iter().filter(|s| s.default).count();
            let want_defaults = usize::from(inputs.iter().any(|i| i.default));
            assert_eq!(defaults, want_defaults, "{name}: default count");
            let annotation = to_annotation(&statuses);
            let got: Value = serde_json::from_str(&annotation).unwrap();
            assert_eq!(got, want, "{name}: {annotation}");
            let back: Vec<NetworkStatus> = serde_json::from_str(&annotation).unwrap();
            assert_eq!(back, statuses, "{name}: round trip");
        }
    }

    #[test]
    fn annotation_is_compact_in_multus_field_order() {
        let r = result(json!({"cniVersion": "1.1.0",
            "interfaces": [{"name": "eth0", "mac": "0a:58:0a:f4:01:03", "mtu": 1450, "sandbox": "/ns"}],
            "ips": [{"interface": 0, "address": "10.244.1.3/24", "gateway": "10.244.1.1"}],
            "dns": {"nameservers": ["10.96.0.10"]}}));
        let info = json!({"type": "pci"});
        let statuses = build(&[StatusInput {
            device_info: Some(&info),
            ..cluster("cbr0", "eth0", &r)
        }]);
        assert_eq!(
            to_annotation(&statuses),
            r#"[{"name":"cbr0","interface":"eth0","ips":["10.244.1.3"],"mac":"0a:58:0a:f4:01:03","mtu":1450,"default":true,"dns":{"nameservers":["10.96.0.10"]},"device-info":{"type":"pci"},"gateway":["10.244.1.1"]}]"#
        );
    }

    #[test]
    fn reads_multus_written_annotation() {
        let multus = r#"[{"name": "cbr0", "interface": "eth0", "ips": ["10.244.1.3"],
            "mac": "0a:58:0a:f4:01:03", "default": true, "dns": {}},
            {"name": "pods/macvlan-a", "interface": "net1", "ips": ["192.168.10.200"],
            "mac": "02:00:00:00:00:0a", "dns": {}}]"#;
        let statuses: Vec<NetworkStatus> = serde_json::from_str(multus).unwrap();
        assert_eq!(statuses.len(), 2);
        assert!(statuses[0].default && !statuses[1].default);
        assert_eq!(statuses[1].interface.as_deref(), Some("net1"));
    }
}
