//! Recording fakes for every seam of the engine: delegates, the cluster API, the pod's
//! namespace. (The journal's fake is `crate::journal::memory::MemoryStore`.)

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::delegate::{DelegateError, Executor, Invocation};
use crate::journal::memory::MemoryStore;
use crate::k8s::client::{ApiError, PodInfo};
use crate::k8s::nad::NadObject;
use crate::k8s::pod::PodRef;
use crate::link::{Iface, LinkError, Master, PodNet, Seen, Wanted};
use crate::netns::Probe;
use crate::resolve::cluster::{Cluster, Connect, NadKey};
use crate::txn::Record;

/// How long a fake waits for something that should happen (a failure if it does not).
pub const WAIT: Duration = Duration::from_secs(20);

/// Calls that wait until `want` of them are in flight at once.
pub struct Gate {
    want: usize,
    verb: &'static str,
    arrived: Mutex<usize>,
    cv: Condvar,
}

impl Gate {
    pub fn new(verb: &'static str, want: usize) -> Gate {
        Gate {
            want,
            verb,
            arrived: Mutex::new(0),
            cv: Condvar::new(),
        }
    }

    /// False when `want` calls never were in flight together.
    fn pass(&self) -> bool {
        let mut n = self.arrived.lock().unwrap();
        *n += 1;
        self.cv.notify_all();
        let (n, timeout) = self
            .cv
            .wait_timeout_while(n, WAIT, |n| *n < self.want)
            .unwrap();
        drop(n);
        !timeout.timed_out()
    }
}

/// One delegate call as the fake saw it.
#[derive(Debug, Clone)]
pub struct Call {
    /// "VERB ifname plugin".
    pub what: String,
    /// `CNI_NETNS`.
    pub netns: String,
    /// The plugin's stdin.
    pub stdin: Value,
}

/// Records every call as "VERB ifname plugin"; fails the calls listed in `fail`; calls listed in
/// `block` wait until cancelled. With a store, every ADD checks that the journal already names
/// its interface (the crash-safety rule: a step is named before it starts).
#[derive(Default)]
pub struct Fake {
    pub calls: Mutex<Vec<Call>>,
    pub fail: Vec<String>,
    pub block: Vec<String>,
    pub store: Option<(MemoryStore, String)>,
    pub gate: Option<Gate>,
    pub in_flight: std::sync::atomic::AtomicUsize,
    pub max: std::sync::atomic::AtomicUsize,
}

impl Fake {
    pub fn failing(calls: &[&str]) -> Fake {
        Fake {
            fail: calls.iter().map(|s| s.to_string()).collect(),
            ..Fake::default()
        }
    }

    pub fn watching(mut self, store: &MemoryStore, id: &str) -> Fake {
        self.store = Some((store.clone(), id.to_string()));
        self
    }

    /// The most calls that were ever in flight at once.
    pub fn max_in_flight(&self) -> usize {
        self.max.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The calls so far ("VERB ifname plugin"), forgotten.
    pub fn take(&self) -> Vec<String> {
        self.take_calls().into_iter().map(|c| c.what).collect()
    }

    pub fn take_calls(&self) -> Vec<Call> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }

    fn check_named(&self, inv: &Invocation<'_>) {
        let Some((store, id)) = &self.store else {
            return;
        };
        let line = store
            .current(id)
            .unwrap_or_else(|| panic!("ADD of {} started with no record", inv.ifname));
        let rec = Record::decode(&line).unwrap();
        assert!(
            rec.steps.iter().any(|s| s.ifname == inv.ifname),
            "ADD of {} started before the journal named it: {rec:?}",
            inv.ifname
        );
    }
}

impl Executor for Fake {
    fn exec(
        &self,
        plugin: &str,
        inv: &Invocation<'_>,
        stdin: &[u8],
    ) -> Result<Vec<u8>, DelegateError> {
        use std::sync::atomic::Ordering::SeqCst;
        let now = self.in_flight.fetch_add(1, SeqCst) + 1;
        self.max.fetch_max(now, SeqCst);
        let out = self.call(plugin, inv, stdin);
        self.in_flight.fetch_sub(1, SeqCst);
        out
    }
}

impl Fake {
    fn call(
        &self,
        plugin: &str,
        inv: &Invocation<'_>,
        stdin: &[u8],
    ) -> Result<Vec<u8>, DelegateError> {
        let what = format!("{} {} {plugin}", inv.command.as_str(), inv.ifname);
        self.calls.lock().unwrap().push(Call {
            what: what.clone(),
            netns: inv.netns.to_string(),
            stdin: serde_json::from_slice(stdin).unwrap_or(Value::Null),
        });
        let add = inv.command == crate::cni::env::Command::Add;
        if add {
            self.check_named(inv);
        }
        if let Some(g) = &self.gate
            && inv.command.as_str() == g.verb
            && !g.pass()
        {
            return Err(DelegateError::Plugin {
                code: 999,
                msg: format!("{what}: never in flight with {} others", g.want - 1),
                details: String::new(),
            });
        }
        if self.block.contains(&what) {
            let cancel = inv.cancel.expect("a blocking call needs a cancel");
            let deadline = std::time::Instant::now() + WAIT;
            while !cancel.is_cancelled() {
                if std::time::Instant::now() > deadline {
                    return Err(DelegateError::Plugin {
                        code: 999,
                        msg: format!("{what} was never cancelled"),
                        details: String::new(),
                    });
                }
                let fd = cancel.fd().unwrap();
                let mut fds = [rustix::event::PollFd::new(
                    &fd,
                    rustix::event::PollFlags::IN,
                )];
                let ts = rustix::event::Timespec {
                    tv_sec: 1,
                    tv_nsec: 0,
                };
                let _ = rustix::event::poll(&mut fds, Some(&ts));
            }
            return Err(DelegateError::Cancelled);
        }
        if self.fail.contains(&what) {
            return Err(DelegateError::Plugin {
                code: 999,
                msg: format!("injected failure of {what}"),
                details: String::new(),
            });
        }
        if !add {
            return Ok(Vec::new());
        }
        let r = json!({"cniVersion":"1.0.0",
            "interfaces":[{"name":inv.ifname,"mac":"02:00:00:00:00:01","sandbox":inv.netns}],
            "ips":[{"address":"10.9.0.2/24","interface":0}]});
        Ok(r.to_string().into_bytes())
    }
}

/// What the fake API server holds and saw.
#[derive(Default)]
pub struct ClusterState {
    pub pods: HashMap<(String, String), PodInfo>,
    pub nads: HashMap<NadKey, NadObject>,
    /// Every request, as "GET pod ns/p", "GET nad ns/n", "PATCH ns/p".
    pub requests: Vec<String>,
    /// network-status values written.
    pub statuses: Vec<String>,
    /// Every call fails with this.
    pub down: Option<ApiError>,
    /// PATCHes fail with this.
    pub patch_error: Option<ApiError>,
}

/// The fake API server; clones share state.
#[derive(Clone, Default)]
pub struct FakeCluster(pub Arc<Mutex<ClusterState>>);

impl FakeCluster {
    pub fn state(&self) -> std::sync::MutexGuard<'_, ClusterState> {
        self.0.lock().unwrap()
    }

    pub fn put_pod(&self, ns: &str, name: &str, uid: &str, annotations: &[(&str, &str)]) {
        let info: PodInfo = serde_json::from_value(json!({"metadata": {
            "namespace": ns, "name": name, "uid": uid,
            "annotations": annotations.iter().map(|(k, v)| (k.to_string(), Value::from(*v))).collect::<Map<_, _>>()
        }}))
        .unwrap();
        self.state()
            .pods
            .insert((ns.to_string(), name.to_string()), info);
    }

    pub fn put_nad(&self, ns: &str, name: &str, config: Value) {
        let nad: NadObject = serde_json::from_value(json!({
            "metadata": {"namespace": ns, "name": name},
            "spec": {"config": config.to_string()}
        }))
        .unwrap();
        self.state()
            .nads
            .insert((ns.to_string(), name.to_string()), nad);
    }
}

impl Cluster for FakeCluster {
    fn pod(&self, pod: &PodRef) -> Result<Option<PodInfo>, ApiError> {
        let mut s = self.state();
        s.requests.push(format!("GET pod {pod}"));
        if let Some(e) = &s.down {
            return Err(e.clone());
        }
        Ok(s.pods
            .get(&(pod.namespace.clone(), pod.name.clone()))
            .cloned())
    }

    fn nads(&self, wanted: &[NadKey]) -> Result<HashMap<NadKey, NadObject>, ApiError> {
        let mut s = self.state();
        for (ns, n) in wanted {
            s.requests.push(format!("GET nad {ns}/{n}"));
        }
        if let Some(e) = &s.down {
            return Err(e.clone());
        }
        Ok(wanted
            .iter()
            .filter_map(|k| Some((k.clone(), s.nads.get(k)?.clone())))
            .collect())
    }

    fn patch_status(
        &self,
        pod: &PodRef,
        annotations: &Map<String, Value>,
        _event: Option<&Value>,
    ) -> Result<bool, ApiError> {
        let mut s = self.state();
        s.requests.push(format!("PATCH {pod}"));
        if let Some(e) = s.down.clone().or_else(|| s.patch_error.clone()) {
            return Err(e);
        }
        let v = annotations
            .get(crate::k8s::status::STATUS_ANNOTATION)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        s.statuses.push(v);
        Ok(true)
    }
}

/// Connects to the fake cluster, or to none (no API access).
pub struct FakeConnect(pub Option<FakeCluster>);

impl Connect for FakeConnect {
    fn connect(&self, _budget: Option<Duration>) -> Result<Option<Box<dyn Cluster>>, ApiError> {
        Ok(self.0.clone().map(|c| Box::new(c) as Box<dyn Cluster>))
    }
}

/// The pod's namespace: `/run/netns/...` paths are namespaces, `/gone/...` are missing,
/// `/file/...` are not namespaces. Default routes are recorded; `missing` interfaces are absent
/// from the pod for CHECK.
#[derive(Default)]
pub struct FakeNet {
    pub routes: Mutex<Vec<(IpAddr, String)>>,
    pub missing: Vec<String>,
    pub route_error: bool,
}

impl PodNet for FakeNet {
    fn probe(&self, path: &Path) -> Probe {
        let p = path.to_string_lossy();
        if p.starts_with("/gone") || p.is_empty() {
            Probe::Missing
        } else if p.starts_with("/file") {
            Probe::NotANamespace(format!("{p} is a regular file"))
        } else {
            Probe::Namespace
        }
    }

    fn set_default_routes(
        &self,
        _netns: &Path,
        routes: &[(IpAddr, &str)],
    ) -> Result<(), (usize, LinkError)> {
        if self.route_error && !routes.is_empty() {
            return Err((0, LinkError::Kernel { errno: 101 }));
        }
        self.routes
            .lock()
            .unwrap()
            .extend(routes.iter().map(|(ip, i)| (*ip, i.to_string())));
        Ok(())
    }

    fn inspect(&self, _netns: &Path, wanted: &[Wanted<'_>]) -> Result<Vec<Seen>, LinkError> {
        Ok(wanted
            .iter()
            .map(|w| Seen {
                link: (!self.missing.iter().any(|m| m == w.ifname)).then(|| Iface {
                    addresses: vec!["10.9.0.2".parse().unwrap()],
                    up: true,
                    mac: None,
                }),
                master: w.master.map(|m| Master::Up(m.to_string())),
            })
            .collect())
    }
}
