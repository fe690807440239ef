//! Group 8: ten containers ADDed in parallel all succeed with distinct addresses; DEL of all of
//! them in parallel leaves nothing.

mod common;

use common::TestEnv;
use common::conf;
use common::result::{assert_cluster_result, assert_macvlan};
use std::collections::BTreeSet;

const PODS: usize = 10;

#[test]
fn ten_containers_in_parallel() {
    let env = TestEnv::new("ccur", 81);
    let cfg = conf::standard(&env, "1.0.0");
    let pods: Vec<String> = (0..PODS).map(|_| env.add_pod()).collect();
    let ids: Vec<String> = (0..PODS).map(|i| format!("c{}-{i}", env.uid)).collect();

    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = pods
            .iter()
            .zip(&ids)
            .map(|(pod, id)| {
                let (env, cfg) = (&env, &cfg);
                s.spawn(move || env.plexus("ADD", id, Some(pod), cfg))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    let mut eth0 = BTreeSet::new();
    let mut net1 = BTreeSet::new();
    for (out, pod) in results.iter().zip(&pods) {
        let res = out.ok();
        eth0.insert(assert_cluster_result(&env, &res, "1.0.0", pod));
        net1.insert(assert_macvlan(&env, pod, "net1", 1));
    }
    assert_eq!(eth0.len(), PODS, "distinct eth0 addresses: {eth0:?}");
    assert_eq!(net1.len(), PODS, "distinct net1 addresses: {net1:?}");
    assert_eq!(env.leases().len(), 2 * PODS, "leases: {:?}", env.leases());

    std::thread::scope(|s| {
        for (pod, id) in pods.iter().zip(&ids) {
            let (env, cfg) = (&env, &cfg);
            s.spawn(move || env.plexus("DEL", id, Some(pod), cfg).ok());
        }
    });
    env.assert_nothing_left();
}

/// Operations on one container id are serialised (a DEL waits for the ADD in progress);
/// other containers do not wait. The ADD is held at a gate in its third network; the DEL of
/// the same container is seen blocked on that container's lock (in `/proc/locks`), and another
/// container's ADD and DEL complete while the gate is still closed.
#[test]
fn same_container_waits_other_containers_do_not() {
    use common::signal::{Gate, blocked_on_a_lock, wait_until};
    use common::{ADD_OK, scripted_plugin};

    let env = TestEnv::new("cser", 82);
    let (pod, other) = (env.add_pod(), env.add_pod());
    let gate = Gate::new(&env, "add");
    let log = env.dir.join("calls.log");
    scripted_plugin(
        &env,
        "px-gate",
        &format!(
            "{wait}echo 'ADD-END' >> '{l}'; {ADD_OK}",
            wait = gate.wait_sh(),
            l = log.display()
        ),
    );
    let mut cfg = conf::standard(&env, "1.0.0");
    conf::write_conf(
        &env,
        "30-gate.conf",
        &conf::plugin_conf("gate-c", "px-gate"),
    );
    cfg["defaultNetworks"] = serde_json::json!([conf::MACVLAN, "gate-c"]);
    // Longer than a test waits for any signal: the plugin held at the gate is never killed first.
    cfg["delegateTimeoutSeconds"] = serde_json::json!(45);
    let id = format!("c{}", env.uid);

    let add = env.start_plexus("ADD", &id, Some(&pod), &cfg);
    gate.wait_arrivals(1, || env.log());
    let del = env.start_plexus("DEL", &id, Some(&pod), &cfg);
    wait_until(
        "the DEL of a container whose ADD is in progress waits for that container's lock",
        || blocked_on_a_lock(del.pid()),
        || env.log(),
    );

    // Another container is not held up by the lock of this one: its ADD and DEL finish while
    // the gated ADD still holds its own lock (they would wait for the gate forever otherwise).
    let other_cfg = {
        let mut c = cfg.clone();
        c["defaultNetworks"] = serde_json::json!([conf::MACVLAN]);
        c
    };
    env.plexus("ADD", "other-1", Some(&other), &other_cfg).ok();
    env.plexus("DEL", "other-1", Some(&other), &other_cfg).ok();

    gate.open();
    add.finish().ok();
    del.finish().ok();
    let calls = env.calls();
    let end = calls
        .iter()
        .position(|c| c == "ADD-END")
        .expect("ADD-END logged");
    let del_gate = calls
        .iter()
        .position(|c| c.starts_with("DEL net2"))
        .expect("DEL of net2");
    assert!(end < del_gate, "DEL ran inside the ADD: {calls:?}");
    env.assert_nothing_left();
}
