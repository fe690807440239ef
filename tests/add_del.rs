//! Group 1: cluster network (bridge + host-local conflist) plus a macvlan network: ADD gives
//! eth0 and net1 with addresses inside the pod netns, the result is right in every runtime
//! cniVersion, and DEL leaves no link, no lease and no journal.

mod common;

use common::TestEnv;
use common::conf;
use common::result::{assert_cluster_result, assert_macvlan};
use std::os::unix::fs::PermissionsExt;

fn add_then_del(tag: &str, octet: u8, version: &str) {
    let env = TestEnv::new(tag, octet);
    let pod = env.add_pod();
    let cfg = conf::standard(&env, version);
    let id = format!("c{}", env.uid);

    let res = env.plexus("ADD", &id, Some(&pod), &cfg).ok();
    let eth0 = assert_cluster_result(&env, &res, version, &pod);
    let net1 = assert_macvlan(&env, &pod, "net1", 1);
    assert_eq!(
        env.leases(),
        vec![
            format!("{}/{}", conf::MACVLAN, net1.split('/').next().unwrap()),
            format!("{}/{}", conf::CLUSTER, eth0.split('/').next().unwrap()),
        ],
        "one host-local lease per network, matching the addresses"
    );
    assert!(
        env.journal_files().contains(&format!("{id}.json")),
        "ADD journals the container: {:?}",
        env.journal_files()
    );
    // The journal is private: dir 0700 (plexus creates it), file 0600.
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&env.journal_dir()), 0o700, "journal dir mode");
    assert_eq!(
        mode(&env.journal_dir().join(format!("{id}.json"))),
        0o600,
        "journal file mode"
    );
    // The host side of the pod's veth is on the cluster bridge in the node netns.
    let veths: Vec<_> = env
        .links(&env.node)
        .into_iter()
        .filter(|l| {
            l.kind.as_deref() == Some("veth") && l.name != env.master && l.name != env.master_peer
        })
        .collect();
    assert_eq!(veths.len(), 1, "one host-side veth: {veths:?}");

    env.plexus("DEL", &id, Some(&pod), &cfg).ok();
    env.assert_nothing_left();
}

#[test]
fn add_del_cni_0_3_1() {
    add_then_del("a031", 11, "0.3.1");
}

#[test]
fn add_del_cni_0_4_0() {
    add_then_del("a040", 12, "0.4.0");
}

#[test]
fn add_del_cni_1_0_0() {
    add_then_del("a100", 13, "1.0.0");
}

#[test]
fn add_del_cni_1_1_0() {
    add_then_del("a110", 14, "1.1.0");
}

/// The same pod layout given as inline `delegates` instead of clusterNetwork/defaultNetworks,
/// with the cluster network resolved from a directory (alphabetically first config).
#[test]
fn add_del_inline_delegates() {
    let env = TestEnv::new("adlg", 15);
    let pod = env.add_pod();
    let mut cfg = conf::plexus_base(&env, "1.0.0");
    cfg["delegates"] = serde_json::json!([
        conf::cluster_conflist(&env),
        conf::macvlan_conf(&env, conf::MACVLAN, 1),
        conf::macvlan_conf(&env, "macvlan-b", 2),
    ]);
    let id = format!("c{}", env.uid);
    let res = env.plexus("ADD", &id, Some(&pod), &cfg).ok();
    assert_cluster_result(&env, &res, "1.0.0", &pod);
    assert_macvlan(&env, &pod, "net1", 1);
    assert_macvlan(&env, &pod, "net2", 2);
    assert_eq!(env.leases().len(), 3, "leases: {:?}", env.leases());
    env.plexus("DEL", &id, Some(&pod), &cfg).ok();
    env.assert_nothing_left();
}

#[test]
fn cluster_network_from_directory_and_name() {
    let env = TestEnv::new("adir", 16);
    let pod = env.add_pod();
    // Directory form: the alphabetically first config in it is the cluster network.
    let dir = env.dir.join("cluster.d");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("10-first.conflist"),
        conf::cluster_conflist(&env).to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.join("20-second.conf"),
        conf::ipvlan_conf(&env, "never-used", 3).to_string(),
    )
    .unwrap();
    conf::write_conf(
        &env,
        "20-macvlan-a.conf",
        &conf::macvlan_conf(&env, conf::MACVLAN, 1),
    );
    let mut cfg = conf::plexus_base(&env, "1.0.0");
    cfg["clusterNetwork"] = serde_json::json!(dir);
    // Name form for the extra network.
    cfg["defaultNetworks"] = serde_json::json!([conf::MACVLAN]);
    let id = format!("c{}", env.uid);
    let res = env.plexus("ADD", &id, Some(&pod), &cfg).ok();
    assert_cluster_result(&env, &res, "1.0.0", &pod);
    assert_macvlan(&env, &pod, "net1", 1);
    env.plexus("DEL", &id, Some(&pod), &cfg).ok();
    env.assert_nothing_left();

    // Name form for the cluster network too.
    conf::write_conf(&env, "10-cluster.conflist", &conf::cluster_conflist(&env));
    cfg["clusterNetwork"] = serde_json::json!(conf::CLUSTER);
    let res = env.plexus("ADD", &id, Some(&pod), &cfg).ok();
    assert_cluster_result(&env, &res, "1.0.0", &pod);
    env.plexus("DEL", &id, Some(&pod), &cfg).ok();
    env.assert_nothing_left();
}
