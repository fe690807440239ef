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
/// other containers do not wait.
#[test]
fn same_container_waits_other_containers_do_not() {
    use common::{feed_and_collect, plexus_bin, scripted_plugin, wait_deadline, wait_for};
    use std::time::{Duration, Instant};

    let env = TestEnv::new("cser", 82);
    let (pod, other) = (env.add_pod(), env.add_pod());
    let gate = env.dir.join("gate.open");
    let entered = env.dir.join("gate.entered");
    let log = env.dir.join("calls.log");
    scripted_plugin(
        &env,
        "px-gate",
        &format!(
            "touch '{e}'; while [ ! -f '{g}' ]; do sleep 0.02; done; echo 'ADD-END' >> '{l}'; echo '{{\"cniVersion\":\"1.0.0\",\"interfaces\":[],\"ips\":[]}}'",
            e = entered.display(),
            g = gate.display(),
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
    let id = format!("c{}", env.uid);
    let stdin = cfg.to_string();

    let mut add = env.spawn(&plexus_bin(), &env.vars("ADD", &id, Some(&pod)));
    let add_io = feed_and_collect(&mut add, stdin.as_bytes());
    assert!(
        wait_for(Duration::from_secs(30), || entered.exists()),
        "the gated ADD never reached its third network"
    );

    let mut del = env.spawn(&plexus_bin(), &env.vars("DEL", &id, Some(&pod)));
    let del_io = feed_and_collect(&mut del, stdin.as_bytes());

    // Another container is not held up by the lock of this one.
    let other_cfg = {
        let mut c = cfg.clone();
        c["defaultNetworks"] = serde_json::json!([conf::MACVLAN]);
        c
    };
    let t = Instant::now();
    env.plexus("ADD", "other-1", Some(&other), &other_cfg).ok();
    env.plexus("DEL", "other-1", Some(&other), &other_cfg).ok();
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "other container waited {:?}",
        t.elapsed()
    );

    // The DEL of the same id must still be waiting for the ADD.
    assert!(
        wait_deadline(&mut del, Duration::from_millis(500)).is_none(),
        "DEL finished while the ADD of the same container was still running"
    );
    std::fs::write(&gate, "").unwrap();
    let add_status = wait_deadline(&mut add, Duration::from_secs(30)).expect("ADD finishes");
    let del_status = wait_deadline(&mut del, Duration::from_secs(30)).expect("DEL finishes");
    let (add_out, del_out) = (add_io.0.join().unwrap(), del_io.0.join().unwrap());
    let _ = (add_io.1.join(), del_io.1.join());
    assert!(add_status.success(), "ADD: {add_status} {add_out}");
    assert!(del_status.success(), "DEL: {del_status} {del_out}");
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
