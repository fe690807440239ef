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
