//! Checks of CNI results and of what they claim against the real pod netns.

use super::{TestEnv, addrs, link};
use serde_json::Value;

/// Asserts that `res` is a well-formed Success result in `version` for an `eth0` in
/// `/run/netns/<pod>` with an address in 10.<octet>.0.0/24 (gateway .1), and that the pod
/// really has that address on `eth0`. Returns the address (`a.b.c.d/len`).
pub fn assert_cluster_result(env: &TestEnv, res: &Value, version: &str, pod: &str) -> String {
    assert_eq!(res["cniVersion"], version, "result cniVersion: {res}");
    let ifaces = res["interfaces"]
        .as_array()
        .unwrap_or_else(|| panic!("result has no interfaces list: {res}"));
    let sandbox = format!("/run/netns/{pod}");
    let eth0 = ifaces
        .iter()
        .position(|i| i["name"] == "eth0" && i["sandbox"] == sandbox.as_str())
        .unwrap_or_else(|| panic!("no eth0 with sandbox {sandbox} in result: {res}"));
    let ips = res["ips"]
        .as_array()
        .unwrap_or_else(|| panic!("result has no ips list: {res}"));
    let prefix = format!("10.{}.0.", env.octet);
    let ip = ips
        .iter()
        .find(|ip| {
            ip["address"]
                .as_str()
                .is_some_and(|a| a.starts_with(&prefix))
        })
        .unwrap_or_else(|| panic!("no address in {prefix}0/24 in result: {res}"));
    assert_eq!(
        ip["interface"].as_u64(),
        Some(eth0 as u64),
        "ips[].interface must index eth0: {res}"
    );
    assert_eq!(
        ip["gateway"],
        format!("10.{}.0.1", env.octet).as_str(),
        "gateway: {res}"
    );
    match version {
        "0.3.0" | "0.3.1" | "0.4.0" => assert_eq!(
            ip["version"], "4",
            "{version} results carry ips[].version: {res}"
        ),
        _ => assert!(
            ip.get("version").is_none(),
            "{version} results have no ips[].version: {res}"
        ),
    }
    let address = ip["address"].as_str().unwrap().to_string();
    assert!(
        addrs(pod, "eth0").contains(&address),
        "eth0 in {pod} does not have {address}: {:?}",
        addrs(pod, "eth0")
    );
    address
}

/// Asserts `net1` exists in `pod` as a macvlan with one address in 10.<octet>.<third>.0/24;
/// returns it.
pub fn assert_macvlan(env: &TestEnv, pod: &str, ifname: &str, third: u8) -> String {
    let l = link(pod, ifname).unwrap_or_else(|| {
        panic!(
            "no {ifname} in pod netns {pod}: {:?}\n--- plexus.log ---\n{}",
            env.links(pod),
            env.log()
        )
    });
    assert_eq!(l.kind.as_deref(), Some("macvlan"), "{ifname} kind: {l:?}");
    let a = addrs(pod, ifname);
    let prefix = format!("10.{}.{third}.", env.octet);
    assert!(
        a.len() == 1 && a[0].starts_with(&prefix) && a[0].ends_with("/24"),
        "{ifname} in {pod} should have one address in {prefix}0/24, has {a:?}"
    );
    a[0].clone()
}
