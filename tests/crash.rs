//! Group 3: plexus killed with SIGKILL while a delegate blocks; a later DEL (what the runtime
//! does next) removes every attachment made before the crash, from the journal.

mod common;

use common::conf::{self, MACVLAN};
use common::{TestEnv, feed_and_collect, link, plexus_bin, scripted_plugin, wait_for};
use serde_json::{Value, json};
use std::time::Duration;

/// Starts ADD, waits until the blocking plugin runs, SIGKILLs plexus; returns the container id.
fn add_and_kill(env: &TestEnv, pod: &str, cfg: &Value) -> String {
    let id = format!("c{}", env.uid);
    let vars = env.vars("ADD", &id, Some(pod));
    let mut child = env.spawn(&plexus_bin(), &vars);
    let (out, err) = feed_and_collect(&mut child, cfg.to_string().as_bytes());
    let marker = env.dir.join("block.pid");
    let reached = wait_for(Duration::from_secs(30), || {
        std::fs::read_to_string(&marker).is_ok_and(|s| s.ends_with('\n'))
    });
    if !reached {
        common::kill9(child.id());
        let _ = child.wait();
        panic!(
            "the blocking delegate never ran\n--- stdout ---\n{}\n--- stderr ---\n{}\n--- log ---\n{}",
            out.join().unwrap(),
            err.join().unwrap(),
            env.log()
        );
    }
    let blocker: u32 = std::fs::read_to_string(&marker)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    env.track_pid(blocker);
    let comm = std::fs::read_to_string(format!("/proc/{}/comm", child.id())).unwrap_or_default();
    assert_eq!(
        comm.trim(),
        "plexus",
        "the spawned pid must be plexus itself"
    );
    child.kill().expect("SIGKILL plexus");
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "plexus was killed, not finished: {status}"
    );
    // The delegate in flight dies with plexus (no orphan racing the runtime's DEL).
    assert!(
        wait_for(Duration::from_secs(5), || !common::pid_alive(blocker)),
        "the delegate running when plexus was killed ({blocker}) outlived it"
    );
    let _ = (out.join(), err.join());
    assert!(
        env.journal_files().contains(&format!("{id}.json")),
        "a killed ADD must leave its journal: {:?}",
        env.journal_files()
    );
    id
}

fn blocking_plugin(env: &TestEnv) {
    let marker = env.dir.join("block.pid");
    scripted_plugin(
        env,
        "px-block",
        &format!("echo $$ > '{}'; exec sleep 60", marker.display()),
    );
}

#[test]
fn killed_while_third_network_blocks_then_del_cleans_up() {
    let env = TestEnv::new("ckil", 31);
    let pod = env.add_pod();
    blocking_plugin(&env);
    let mut cfg = conf::standard(&env, "1.0.0");
    conf::write_conf(
        &env,
        "30-block.conf",
        &conf::plugin_conf("block-c", "px-block"),
    );
    cfg["defaultNetworks"] = json!([MACVLAN, "block-c"]);
    let id = add_and_kill(&env, &pod, &cfg);

    // What was made before the crash is really there...
    assert!(link(&pod, "eth0").is_some(), "eth0 made before the crash");
    assert!(link(&pod, "net1").is_some(), "net1 made before the crash");
    assert_eq!(env.leases().len(), 2, "leases: {:?}", env.leases());

    // ...and DEL removes all of it, including the in-flight attachment.
    env.plexus("DEL", &id, Some(&pod), &cfg).ok();
    env.assert_nothing_left();
    assert!(
        env.calls().contains(&"DEL net2 px-block".to_string()),
        "the attachment in flight at the crash gets its DEL too: {:?}",
        env.calls()
    );
    // And a second DEL (containerd retries) is still fine.
    env.plexus("DEL", &id, None, &cfg).ok();
}

#[test]
fn killed_inside_cluster_conflist_then_del_cleans_up() {
    let env = TestEnv::new("ckcl", 32);
    let pod = env.add_pod();
    blocking_plugin(&env);
    let mut list = conf::cluster_conflist(&env);
    list["plugins"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "type": "px-block" }));
    let mut cfg = conf::plexus_base(&env, "0.4.0");
    cfg["clusterNetwork"] = json!(conf::write_conf(&env, "10-cluster.conflist", &list));
    let id = add_and_kill(&env, &pod, &cfg);
    assert!(link(&pod, "eth0").is_some(), "eth0 made before the crash");
    assert_eq!(env.leases().len(), 1, "leases: {:?}", env.leases());

    env.plexus("DEL", &id, Some(&pod), &cfg).ok();
    env.assert_nothing_left();
}

#[test]
fn killed_while_a_network_alongside_the_cluster_network_blocks_then_del_cleans_up() {
    // A stand-in "macvlan" (self-contained by its type, so it runs alongside the cluster
    // network) blocks in ADD; the whole plan was journaled before it started. It reports that
    // it blocks only once the cluster network's eth0 has its address, so plexus is killed after
    // the cluster network's IPAM, not in the middle of it (if eth0 never gets one, plexus's
    // delegate timeout ends the stand-in without a report and the test fails).
    let env = TestEnv::new("ckal", 33);
    let pod = env.add_pod();
    let marker = env.dir.join("block.pid");
    scripted_plugin(
        &env,
        "macvlan",
        &format!(
            "ns=$(basename \"$CNI_NETNS\"); \
             until ip -n \"$ns\" -4 addr show eth0 2>/dev/null | grep -q inet; do sleep 0.01; done; \
             echo $$ > '{}'; exec sleep 60",
            marker.display()
        ),
    );
    conf::write_conf(
        &env,
        "30-side.conf",
        &json!({"cniVersion": "1.0.0", "name": "side", "type": "macvlan"}),
    );
    let mut cfg = conf::plexus_base(&env, "1.0.0");
    let cluster = conf::cluster_conflist(&env);
    cfg["clusterNetwork"] = json!(conf::write_conf(&env, "10-cluster.conflist", &cluster));
    cfg["defaultNetworks"] = json!(["side"]);
    cfg["binDir"] = json!(env.bin_dir());
    cfg["builtinDelegates"] = json!(false);
    cfg["alongsideClusterNetwork"] = json!(true);
    let id = add_and_kill(&env, &pod, &cfg);
    let journal = std::fs::read_to_string(env.journal_dir().join(format!("{id}.json"))).unwrap();
    assert!(
        journal.contains("\"side\""),
        "the journal names the network in flight: {journal}"
    );

    env.plexus("DEL", &id, Some(&pod), &cfg).ok();
    env.assert_nothing_left();
    assert!(
        env.calls().contains(&"DEL net1 macvlan".to_string()),
        "the attachment in flight at the crash gets its DEL too: {:?}",
        env.calls()
    );
}
