//! The engine over recording fakes of every seam: every failure arm of ADD, the crash-safety
//! rule, rollback, DEL of every record shape, CHECK, GC, STATUS. No root, no namespaces.

mod add;
mod del;
pub mod fakes;
mod hotplug;
mod parallel;
mod verbs;

use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Value, json};

use super::{Engine, Seams};
use crate::clock::FixedClock;
use crate::cni::env::{Command, Request, parse_args};
use crate::config::Config;
use crate::error::Error;
use crate::journal::memory::MemoryStore;
use crate::txn::Record;
use fakes::{Fake, FakeCluster, FakeConnect, FakeNet};

/// One node: plexus's config and the fakes behind every seam.
pub struct Case {
    pub cfg: Config,
    pub store: MemoryStore,
    pub cluster: Option<FakeCluster>,
    pub net: FakeNet,
}

/// A config with one delegate per type (`n0` the cluster network), in Multus's strict order
/// (so call orders are exact), plus `extra` keys.
pub fn case(types: &[&str], extra: Value) -> Case {
    let delegates: Vec<Value> = types
        .iter()
        .enumerate()
        .map(|(i, ty)| json!({"cniVersion":"1.0.0","name":format!("n{i}"),"type":ty}))
        .collect();
    let mut v = json!({"cniVersion":"1.0.0","name":"plexus","type":"plexus","cniDir":"/unused",
        "logToStderr":false,"delegates":delegates});
    if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    Case {
        cfg: Config::parse(v.to_string().as_bytes()).unwrap(),
        store: MemoryStore::default(),
        cluster: None,
        net: FakeNet::default(),
    }
}

/// A NAD config of one plugin.
pub fn nad(name: &str, ty: &str) -> Value {
    json!({"cniVersion":"1.0.0","name":name,"type":ty,
        "ipam":{"type":"host-local","ranges":[[{"subnet":"10.9.0.0/24"}]]}})
}

/// `CNI_ARGS` of a call for pod ns/p.
pub const POD: &str = "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p;K8S_POD_UID=u1";

impl Case {
    /// The same node with an API server holding pod ns/p with `annotations`, and `nads` in ns.
    pub fn with_pod(mut self, annotations: &[(&str, &str)], nads: &[(&str, Value)]) -> Case {
        let c = FakeCluster::default();
        c.put_pod("ns", "p", "u1", annotations);
        for (n, v) in nads {
            c.put_nad("ns", n, v.clone());
        }
        self.cluster = Some(c);
        self
    }

    pub fn api(&self) -> &FakeCluster {
        self.cluster.as_ref().expect("the case has an API server")
    }

    pub fn run<T>(&self, exec: &Fake, req: &Request, f: impl FnOnce(&Engine<'_>) -> T) -> T {
        let connect = FakeConnect(self.cluster.clone());
        let clock = FixedClock(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
        let seams = Seams {
            exec,
            store: &self.store,
            connect: &connect,
            net: &self.net,
            clock: &clock,
            observer: &crate::txn::observe::NoObserver,
        };
        f(&Engine::new(&self.cfg, req, seams))
    }

    pub fn add(&self, exec: &Fake, args: &str) -> Result<Value, Error> {
        self.run(exec, &req(Command::Add, args), |e| e.add())
    }

    pub fn del(&self, exec: &Fake, args: &str) -> Result<(), Error> {
        self.run(exec, &req(Command::Del, args), |e| e.del())
    }

    /// The record of container c1, if any.
    pub fn record(&self) -> Option<Record> {
        self.store
            .current("c1")
            .map(|l| Record::decode(&l).unwrap())
    }
}

/// A request for container c1 in /run/netns/x on eth0.
pub fn req(command: Command, args: &str) -> Request {
    Request {
        command,
        container_id: "c1".into(),
        netns: "/run/netns/x".into(),
        ifname: "eth0".into(),
        args: parse_args(args).unwrap(),
        path: vec![],
    }
}
