//! Self-test of the harness: drives the reference plugins directly (no plexus), so that the
//! namespace setup, the result checks and the "nothing left" checks are known to work and to
//! detect leftovers.

mod common;

use common::conf::{self, CLUSTER, MACVLAN};
use common::result::{assert_cluster_result, assert_macvlan};
use common::{TestEnv, ref_bin};
use serde_json::{Value, json};
use std::path::Path;

fn plugin_vars(env: &TestEnv, cmd: &str, pod: &str, ifname: &str) -> Vec<(String, String)> {
    let mut v = env.vars(cmd, "harness-1", Some(pod));
    for (k, val) in v.iter_mut() {
        if k == "CNI_IFNAME" {
            *val = ifname.into();
        }
        if k == "CNI_PATH" {
            *val = ref_bin().into();
        }
    }
    v
}

fn run(
    env: &TestEnv,
    plugin: &str,
    cmd: &str,
    pod: &str,
    ifname: &str,
    conf: &Value,
) -> common::Outcome {
    let bin = Path::new(ref_bin()).join(plugin);
    env.call(
        &bin,
        &plugin_vars(env, cmd, pod, ifname),
        conf.to_string().as_bytes(),
    )
}

#[test]
fn reference_plugins_add_and_del_leave_nothing() {
    let env = TestEnv::new("hrn", 200);
    let pod = env.add_pod();
    let mut bridge = conf::cluster_conflist(&env)["plugins"][0].clone();
    bridge["name"] = json!(CLUSTER);
    bridge["cniVersion"] = json!("1.0.0");
    let res = run(&env, "bridge", "ADD", &pod, "eth0", &bridge).ok();
    assert_cluster_result(&env, &res, "1.0.0", &pod);

    let macvlan = conf::macvlan_conf(&env, MACVLAN, 1);
    let mres = run(&env, "macvlan", "ADD", &pod, "net1", &macvlan).ok();
    assert_macvlan(&env, &pod, "net1", 1);
    assert_eq!(
        env.leases().len(),
        2,
        "one lease per network: {:?}",
        env.leases()
    );

    let ipvlan = conf::ipvlan_conf(&env, "ipvlan-c", 2);
    let (_, msg) = run(&env, "ipvlan", "ADD", &pod, "net2", &ipvlan).err();
    assert!(msg.contains("not supported"), "ipvlan error: {msg}");

    // The leftover check must notice what is still there.
    let detected =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| env.assert_nothing_left()));
    assert!(
        detected.is_err(),
        "assert_nothing_left missed live attachments"
    );

    let mut mdel = macvlan.clone();
    mdel["prevResult"] = mres;
    run(&env, "macvlan", "DEL", &pod, "net1", &mdel).ok();
    let mut bdel = bridge.clone();
    bdel["prevResult"] = res;
    run(&env, "bridge", "DEL", &pod, "eth0", &bdel).ok();
    env.assert_nothing_left();
}

#[test]
fn leftover_journal_and_node_links_are_detected() {
    let env = TestEnv::new("hrn", 201);
    std::fs::create_dir_all(env.journal_dir()).unwrap();
    std::fs::write(env.journal_dir().join("abc.json"), "{}").unwrap();
    let detected =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| env.assert_nothing_left()));
    assert!(detected.is_err(), "journal file not detected");
    std::fs::remove_file(env.journal_dir().join("abc.json")).unwrap();
    common::sh(&[
        "ip",
        "-n",
        &env.node,
        "link",
        "add",
        "pxstray",
        "link",
        &env.master,
        "type",
        "macvlan",
    ]);
    let detected =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| env.assert_nothing_left()));
    assert!(detected.is_err(), "stray macvlan in node not detected");
}

#[test]
fn scripted_plugins_run_in_the_node_netns() {
    let env = TestEnv::new("hrn", 202);
    let pod = env.add_pod();
    let ok = common::scripted_plugin(&env, "px-rec", common::ADD_OK);
    let fail = common::scripted_plugin(&env, "px-silent", "exit 3");
    let vars = plugin_vars(&env, "ADD", &pod, "net7");
    let res = env.call(&ok, &vars, b"{}").ok();
    assert_eq!(res["cniVersion"], "1.0.0");
    let out = env.call(&fail, &vars, b"{}");
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(env.calls(), vec!["ADD net7 px-rec", "ADD net7 px-silent"]);
}
