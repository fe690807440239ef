//! Config writers: the cluster conflist (bridge + host-local), macvlan / ipvlan networks,
//! test-plugin networks and plexus's own config, all confined to the test's temp dir.

use super::{TestEnv, ref_bin};
use serde_json::{Value, json};
use std::fs;
use std::path::PathBuf;

/// Name of the cluster network in the standard setup.
pub const CLUSTER: &str = "px-cluster";
/// Name of the macvlan extra network in the standard setup.
pub const MACVLAN: &str = "macvlan-a";

/// host-local IPAM on 10.<octet>.<third>.0/24, leases kept in the test's dataDir.
pub fn host_local(env: &TestEnv, third: u8, gateway_route: bool) -> Value {
    let mut ipam = json!({
        "type": "host-local",
        "dataDir": env.ipam_dir(),
        "ranges": [[{ "subnet": format!("10.{}.{third}.0/24", env.octet) }]],
    });
    if gateway_route {
        ipam["routes"] = json!([{ "dst": "0.0.0.0/0" }]);
    }
    ipam
}

/// The cluster network: a conflist with the bridge plugin (gateway on the node side) on
/// 10.<octet>.0.0/24.
pub fn cluster_conflist(env: &TestEnv) -> Value {
    json!({
        "cniVersion": "1.0.0",
        "name": CLUSTER,
        "plugins": [{
            "type": "bridge",
            "bridge": env.bridge,
            "isGateway": true,
            "ipam": host_local(env, 0, true),
        }],
    })
}

/// A macvlan network on the test's veth master, subnet 10.<octet>.<third>.0/24.
pub fn macvlan_conf(env: &TestEnv, name: &str, third: u8) -> Value {
    json!({
        "cniVersion": "1.0.0",
        "name": name,
        "type": "macvlan",
        "master": env.master,
        "mode": "bridge",
        "ipam": host_local(env, third, false),
    })
}

/// An ipvlan network (this kernel cannot create ipvlan links: ADD fails).
pub fn ipvlan_conf(env: &TestEnv, name: &str, third: u8) -> Value {
    json!({
        "cniVersion": "1.0.0",
        "name": name,
        "type": "ipvlan",
        "master": env.master,
        "mode": "l2",
        "ipam": host_local(env, third, false),
    })
}

/// A network whose only plugin is `plugin_type` (test plugins).
pub fn plugin_conf(name: &str, plugin_type: &str) -> Value {
    json!({ "cniVersion": "1.0.0", "name": name, "type": plugin_type })
}

/// Writes `conf` into the test's confDir as `file` and returns its path.
pub fn write_conf(env: &TestEnv, file: &str, conf: &Value) -> PathBuf {
    let path = env.conf_dir().join(file);
    fs::write(&path, serde_json::to_vec_pretty(conf).unwrap()).expect("write conf");
    path
}

/// plexus's config with paths in the temp dir, no networks yet, runtime cniVersion `version`.
pub fn plexus_base(env: &TestEnv, version: &str) -> Value {
    json!({
        "cniVersion": version,
        "name": "plexus-net",
        "type": "plexus",
        "confDir": env.conf_dir(),
        "cniDir": env.journal_dir(),
        "binDir": ref_bin(),
        "delegateTimeoutSeconds": 20,
        "logFile": env.log_file(),
        "logLevel": "debug",
        "logToStderr": false,
    })
}

/// The standard setup of group 1: cluster conflist (by path) plus `macvlan-a` (by name in
/// confDir) as net1.
pub fn standard(env: &TestEnv, version: &str) -> Value {
    let cluster = write_conf(env, "10-cluster.conflist", &cluster_conflist(env));
    write_conf(env, "20-macvlan-a.conf", &macvlan_conf(env, MACVLAN, 1));
    let mut conf = plexus_base(env, version);
    conf["clusterNetwork"] = json!(cluster);
    conf["defaultNetworks"] = json!([MACVLAN]);
    conf
}
