//! Moving from Multus with pods running: a sandbox Multus attached has no plexus journal, only
//! Multus's cache `<cniDir>/<containerID>` (its delegate list, each config base64 in `Bytes`).
//! plexus's DEL releases every network in it (not only the configured ones) with the interface
//! names Multus used, then removes the cache.

mod common;

use common::conf::{self, CLUSTER};
use common::{TestEnv, link, ref_bin};
use serde_json::{Value, json};
use std::path::Path;

fn b64(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let mut b = [0u8; 3];
        b[..chunk.len()].copy_from_slice(chunk);
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(A[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Runs one reference plugin the way Multus's delegate ADD does; returns its result.
fn multus_add(env: &TestEnv, id: &str, pod: &str, ifname: &str, conf: &Value) -> Value {
    let ty = conf["type"].as_str().unwrap();
    let mut vars = env.vars("ADD", id, Some(pod));
    for (k, v) in vars.iter_mut() {
        if k == "CNI_IFNAME" {
            *v = ifname.to_string();
        }
    }
    env.call(
        &Path::new(ref_bin()).join(ty),
        &vars,
        conf.to_string().as_bytes(),
    )
    .ok()
}

/// A pod netns and container id whose cluster network (the bridge conflist, returned) Multus
/// attached on eth0.
fn multus_pod(env: &TestEnv) -> (String, String, Value) {
    let pod = env.add_pod();
    let id = format!("c{}", env.uid);
    let cluster = conf::cluster_conflist(env);
    let mut bridge = cluster["plugins"][0].clone();
    bridge["name"] = json!(CLUSTER);
    bridge["cniVersion"] = json!("1.0.0");
    multus_add(env, &id, &pod, "eth0", &bridge);
    (pod, id, cluster)
}

/// plexus's config after the switch: the cluster network only.
fn plexus_conf(env: &TestEnv, cluster: &Value) -> Value {
    let mut cfg = conf::plexus_base(env, "1.0.0");
    cfg["clusterNetwork"] = json!(conf::write_conf(env, "10-cluster.conflist", cluster));
    cfg
}

#[test]
fn del_releases_what_multus_attached() {
    let env = TestEnv::new("mmig", 160);
    // What Multus did: the cluster conflist on eth0, a NAD macvlan on net1 and one on data0.
    let (pod, id, cluster) = multus_pod(&env);
    let storage = conf::macvlan_conf(&env, "storage", 1);
    multus_add(&env, &id, &pod, "net1", &storage);
    let data = conf::macvlan_conf(&env, "data", 2);
    multus_add(&env, &id, &pod, "data0", &data);
    assert!(link(&pod, "net1").is_some() && link(&pod, "data0").is_some());
    assert_eq!(env.leases().len(), 3, "{:?}", env.leases());
    // Multus's cache, as its thin plugin writes it (json.Marshal of []*DelegateNetConf).
    let delegate = |name: &str, ifname: &str, raw: &Value| {
        let mut d = json!({"Conf": {}, "ConfList": {}, "Name": name, "Bytes": b64(raw.to_string().as_bytes()),
            "IsFilterV4Gateway": false, "IsFilterV6Gateway": false});
        if !ifname.is_empty() {
            d["ifnameRequest"] = json!(ifname);
        }
        d
    };
    let cache = json!([
        delegate(CLUSTER, "", &cluster),
        delegate("default/storage", "", &storage),
        delegate("default/data", "data0", &data),
    ]);
    let journal = env.journal_dir();
    std::fs::create_dir_all(&journal).unwrap();
    let cache_path = journal.join(&id);
    std::fs::write(&cache_path, cache.to_string()).unwrap();

    // plexus replaces Multus with a config naming only the cluster network.
    let cfg = plexus_conf(&env, &cluster);
    env.plexus("DEL", &id, Some(&pod), &cfg).ok();

    env.assert_nothing_left();
    assert!(
        !cache_path.exists(),
        "Multus's cache is removed once all is released"
    );
    // A second DEL (containerd retries) is still fine.
    env.plexus("DEL", &id, Some(&pod), &cfg).ok();
}

#[test]
fn an_unusable_multus_cache_falls_back_to_the_configuration() {
    let env = TestEnv::new("mbad", 161);
    let (pod, id, cluster) = multus_pod(&env);
    let journal = env.journal_dir();
    std::fs::create_dir_all(&journal).unwrap();
    std::fs::write(journal.join(&id), b"[{\"Bytes\": \"not base64!\"}]").unwrap();

    env.plexus("DEL", &id, Some(&pod), &plexus_conf(&env, &cluster))
        .ok();

    assert!(
        link(&pod, "eth0").is_none(),
        "the configured cluster network is released"
    );
    assert!(env.leases().is_empty(), "{:?}", env.leases());
    assert!(
        env.log().contains("unusable Multus cache"),
        "the log says why the cache was not used:\n{}",
        env.log()
    );
}
