//! Groups 6 and 7: CHECK verifies every attachment and names the broken one; GC releases the
//! attachments of containers the runtime no longer lists and keeps the others.

mod common;

use common::TestEnv;
use common::conf::{self, CLUSTER, MACVLAN};
use common::result::{assert_cluster_result, assert_macvlan};
use serde_json::{Value, json};

#[test]
fn check_passes_after_add_and_names_net1_when_deleted() {
    let env = TestEnv::new("cchk", 61);
    let pod = env.add_pod();
    let cfg = conf::standard(&env, "1.0.0");
    let id = format!("c{}", env.uid);
    env.plexus("ADD", &id, Some(&pod), &cfg).ok();
    env.plexus("CHECK", &id, Some(&pod), &cfg).ok();

    common::sh(&["ip", "-n", &pod, "link", "del", "net1"]);
    let (_, msg) = env.plexus("CHECK", &id, Some(&pod), &cfg).err();
    assert!(msg.contains("net1"), "CHECK error must name net1: {msg}");
    assert!(
        msg.contains(MACVLAN),
        "CHECK error must name the network {MACVLAN}: {msg}"
    );

    env.plexus("DEL", &id, Some(&pod), &cfg).ok();
    env.assert_nothing_left();
}

#[test]
fn check_fails_when_eth0_loses_its_address() {
    let env = TestEnv::new("cadr", 62);
    let pod = env.add_pod();
    let cfg = conf::standard(&env, "1.1.0");
    let id = format!("c{}", env.uid);
    env.plexus("ADD", &id, Some(&pod), &cfg).ok();
    env.plexus("CHECK", &id, Some(&pod), &cfg).ok();
    common::sh(&["ip", "-n", &pod, "addr", "flush", "dev", "eth0"]);
    let (_, msg) = env.plexus("CHECK", &id, Some(&pod), &cfg).err();
    assert!(
        msg.contains(CLUSTER) || msg.contains("eth0"),
        "CHECK error must name the cluster attachment: {msg}"
    );
    env.plexus("DEL", &id, Some(&pod), &cfg).ok();
    env.assert_nothing_left();
}

/// A delegate too old for CHECK (cniVersion 0.3.1: libcni skips it) is still checked by plexus
/// itself: its interface and address must be in the pod.
#[test]
fn check_covers_delegates_older_than_0_4_0() {
    let env = TestEnv::new("cold", 63);
    let pod = env.add_pod();
    let cluster = conf::write_conf(&env, "10-cluster.conflist", &conf::cluster_conflist(&env));
    let mut old = conf::macvlan_conf(&env, MACVLAN, 1);
    old["cniVersion"] = json!("0.3.1");
    conf::write_conf(&env, "20-macvlan-a.conf", &old);
    let mut cfg = conf::plexus_base(&env, "0.3.1");
    cfg["clusterNetwork"] = json!(cluster);
    cfg["defaultNetworks"] = json!([MACVLAN]);
    let id = format!("c{}", env.uid);
    env.plexus("ADD", &id, Some(&pod), &cfg).ok();
    env.plexus("CHECK", &id, Some(&pod), &cfg).ok();

    common::sh(&["ip", "-n", &pod, "addr", "flush", "dev", "net1"]);
    let (_, msg) = env.plexus("CHECK", &id, Some(&pod), &cfg).err();
    assert!(
        msg.contains("net1") && msg.contains(MACVLAN) && msg.contains("missing"),
        "CHECK must name net1, its network and the missing address: {msg}"
    );
    common::sh(&["ip", "-n", &pod, "link", "del", "net1"]);
    let (_, msg) = env.plexus("CHECK", &id, Some(&pod), &cfg).err();
    assert!(
        msg.contains("net1") && msg.contains("missing from the pod"),
        "{msg}"
    );

    env.plexus("DEL", &id, Some(&pod), &cfg).ok();
    env.assert_nothing_left();
}

fn gc_with(env: &TestEnv, key: &str, valid: Value) {
    let mut cfg = conf::standard(env, "1.1.0");
    cfg[key] = valid;
    let vars = vec![
        ("CNI_COMMAND".to_string(), "GC".to_string()),
        ("CNI_PATH".to_string(), env.cni_path()),
    ];
    env.call(&common::plexus_bin(), &vars, cfg.to_string().as_bytes())
        .ok();
}

fn gc_keeps_listed_and_releases_the_rest(tag: &str, octet: u8, key: &str) {
    let env = TestEnv::new(tag, octet);
    let cfg = conf::standard(&env, "1.1.0");
    let (pod_a, pod_b) = (env.add_pod(), env.add_pod());
    let (id_a, id_b) = (format!("a{}", env.uid), format!("b{}", env.uid));
    env.plexus("ADD", &id_a, Some(&pod_a), &cfg).ok();
    let res_b = env.plexus("ADD", &id_b, Some(&pod_b), &cfg).ok();
    assert_eq!(env.leases().len(), 4, "leases: {:?}", env.leases());

    gc_with(
        &env,
        key,
        json!([{ "containerID": id_b, "ifname": "eth0" }]),
    );

    // A is gone: links in its netns, its leases, its journal.
    let left_a: Vec<_> = env
        .links(&pod_a)
        .into_iter()
        .filter(|l| l.name != "lo")
        .collect();
    assert!(
        left_a.is_empty(),
        "links of the collected container: {left_a:?}"
    );
    assert_eq!(
        env.leases().len(),
        2,
        "only B's leases remain: {:?}",
        env.leases()
    );
    let journal = env.journal_files();
    assert!(
        !journal.iter().any(|f| f.starts_with(&id_a)),
        "A's journal: {journal:?}"
    );
    assert!(
        journal.contains(&format!("{id_b}.json")),
        "B's journal kept: {journal:?}"
    );
    // B is intact.
    assert_cluster_result(&env, &res_b, "1.1.0", &pod_b);
    assert_macvlan(&env, &pod_b, "net1", 1);

    env.plexus("DEL", &id_b, Some(&pod_b), &cfg).ok();
    env.assert_nothing_left();
}

#[test]
fn gc_valid_attachments() {
    gc_keeps_listed_and_releases_the_rest("gval", 71, "cni.dev/valid-attachments");
}

#[test]
fn gc_legacy_attachments_key() {
    gc_keeps_listed_and_releases_the_rest("gleg", 72, "cni.dev/attachments");
}

#[test]
fn gc_with_empty_list_releases_everything() {
    let env = TestEnv::new("gemp", 73);
    let cfg = conf::standard(&env, "1.1.0");
    for i in 0..2 {
        let pod = env.add_pod();
        env.plexus("ADD", &format!("c{}-{i}", env.uid), Some(&pod), &cfg)
            .ok();
    }
    assert_eq!(env.leases().len(), 4);
    gc_with(&env, "cni.dev/valid-attachments", json!([]));
    env.assert_nothing_left();
}
