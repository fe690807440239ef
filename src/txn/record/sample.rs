//! Records with a step in each state, for the tests of what reads records (network-status,
//! CHECK, health rounds, metrics).

use serde_json::{Map, json};

use super::{PodId, Record, State, Step};
use crate::plan::Origin;

/// Every state a step can be in.
pub const STATES: [State; 5] = [
    State::Pending,
    State::Added,
    State::AddFailed,
    State::Released,
    State::ReleaseFailed,
];

/// A bridge step (cniVersion 1.0.0) of `network` on `ifname` in `state`, carrying the result an
/// ADD gave it in `netns` (10.9.0.2/24 on the interface) whatever the state: a step released,
/// or whose rollback failed, keeps the result it had.
pub fn step(network: &str, ifname: &str, origin: Origin, state: State, netns: &str) -> Step {
    Step {
        network: network.into(),
        ifname: ifname.into(),
        origin,
        conf: json!({"cniVersion":"1.0.0","name":network,"type":"bridge"}),
        runtime_config: Map::new(),
        cni_args: String::new(),
        default_route: vec![],
        after: vec![],
        state,
        result: Some(json!({"cniVersion":"1.0.0",
            "interfaces":[{"name":ifname,"mac":"02:00:00:00:00:01","sandbox":netns}],
            "ips":[{"address":"10.9.0.2/24","interface":0}]})),
        error: None,
    }
}

/// The record of container `id` of pod ns/p (uid u1) in `netns`: the cluster network `n0` on
/// eth0, added, and `n1` on net1 in `state`.
pub fn record(id: &str, netns: &str, complete: bool, state: State) -> Record {
    let pod = PodId {
        namespace: "ns".into(),
        name: "p".into(),
        uid: Some("u1".into()),
    };
    let mut r = Record::new(id, netns, "eth0", "", Some(pod), 0);
    r.complete = complete;
    r.steps = vec![
        step("n0", "eth0", Origin::Cluster, State::Added, netns),
        step("n1", "net1", Origin::Selected, state, netns),
    ];
    r
}
