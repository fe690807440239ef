//! The VM lane's guest driver (`make test-vm`, tests/vm/run.sh): the positive paths of ipvlan and
//! vlan, which the host's kernel cannot create, run inside a Debian kernel booted under qemu.
//! The built-in plugins are compared with the reference plugins the way tests/builtin_macvlan.rs
//! compares macvlan (same harness: tests/builtin_support), and the meta-plugin attaches ipvlan
//! and vlan NADs next to a cluster network with the test API server (tests/common).
//!
//! Run it only inside the guest (it creates namespaces and links and expects ipvlan, 8021q and
//! dummy): `vm_guest` runs every case, `vm_guest FILTER` those whose name contains FILTER; the
//! plexus binary is named by `PLEXUS_BIN`.
#![allow(clippy::disallowed_methods)] // a test driver runs `ip`, ping and the plugins itself

#[path = "../../tests/builtin_support/mod.rs"]
mod builtin_support;
#[path = "../../tests/common/mod.rs"]
mod common;
mod ipvlan;
mod meta;
mod runner;
mod vlan;

use builtin_support::diff::{Diff, Side};
use builtin_support::{Netns, Node, sh};
use serde_json::{Value, json};

/// The MAC both sides give their node's master, so that links sharing it (ipvlan, vlan) have
/// the same, known MAC on both sides.
pub const MASTER_MAC: &str = "02:00:00:77:00:01";

/// Differential setup: the node's master gets [`MASTER_MAC`].
pub fn known_master_mac(node: &Node, _pod: &Netns) {
    node.ns.ip(&["link", "set", "m0", "address", MASTER_MAC]);
}

/// Asserts that `side` attached `net1` of `kind` whose `ip -d link` line carries `detail`
/// (mode and flags, or protocol and id), with the master's MAC in the pod and in its result,
/// and the result's addresses on the link.
pub fn assert_attached(side: &Side, kind: &str, detail: &str) {
    assert!(side.add.ok, "ADD {:?}: {:?}", side.bin, side.add);
    let text = side.pod.ip(&["-d", "link", "show", "net1"]);
    assert!(
        text.contains(kind) && text.contains(detail),
        "{:?}: net1 is not {kind} with {detail:?}: {text}",
        side.bin
    );
    assert!(text.contains(MASTER_MAC), "{:?}: MAC: {text}", side.bin);
    assert_eq!(
        side.add.json["interfaces"][0]["mac"], MASTER_MAC,
        "{:?}",
        side.bin
    );
    let addrs = side.pod.ip(&["addr", "show", "net1"]);
    for ip in side.add.json["ips"].as_array().into_iter().flatten() {
        let a = ip["address"].as_str().unwrap_or_default();
        assert!(addrs.contains(a), "{:?}: {a} missing: {addrs}", side.bin);
    }
}

/// Asserts `net1` has the configured MTU (`mtu N `), or the master's 1500 when none is set.
pub fn assert_mtu(side: &Side, configured: Option<&str>) {
    let want = configured.unwrap_or("mtu 1500 ");
    let text = side.pod.ip(&["link", "show", "net1"]);
    assert!(text.contains(want), "{:?}: {want}: {text}", side.bin);
}

/// CHECK with each side's ADD result passes on both; after the addresses are flushed from both
/// pods' `net1`, it fails on both.
pub fn check_then_tamper(d: &Diff, conf: impl Fn(&str) -> Value) {
    let (r, p) = d.check(&conf);
    assert!(r.ok && p.ok, "CHECK\nreference: {r:?}\nplexus: {p:?}");
    for side in d.sides() {
        side.pod.ip(&["addr", "flush", "dev", "net1"]);
    }
    let (r, p) = d.check(&conf);
    assert!(
        !r.ok && !p.ok,
        "CHECK without addresses\nreference: {r:?}\nplexus: {p:?}"
    );
}

/// Pings `addr` once from namespace `from` (bounded by ping's own 2 s wait).
pub fn ping(from: &Netns, addr: &str) {
    sh(&[
        "ip", "netns", "exec", &from.name, "ping", "-c", "1", "-W", "2", addr,
    ]);
}

/// host-local on the node's segment whose route names its gateway (the reference plugins'
/// CHECK rejects a route without `gw`, see tests/builtin_macvlan.rs).
pub fn host_local_gw() -> Value {
    json!({"type": "host-local", "subnet": "10.77.0.0/24", "rangeStart": "10.77.0.100",
           "routes": [{"dst": "10.88.0.0/16", "gw": "10.77.0.1"}], "gateway": "10.77.0.1"})
}

/// static IPAM whose routes name their gateways (see [`host_local_gw`]).
pub fn static_gw() -> Value {
    json!({"type": "static",
           "addresses": [{"address": "10.77.0.9/24", "gateway": "10.77.0.1"}],
           "routes": [{"dst": "10.90.0.0/16", "gw": "10.77.0.1"},
                      {"dst": "10.91.0.0/16", "gw": "10.77.0.2"}]})
}

fn main() {
    let cases: Vec<runner::Case> = [ipvlan::CASES, vlan::CASES, meta::CASES].concat();
    runner::main(&cases)
}
