//! Hot-plug in tests: a pod ADDed by the real plugin in a real netns, the real agent watching
//! it through the test API server, the pod's networks annotation edited as `kubectl annotate`
//! does, and waits on what the agent does (its PATCHes and events reach the server, so waits
//! wake on them, never on a timer).

#![allow(dead_code)]
#![allow(clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use crate::agent_support::{Agent, NODE, agent_requests, put_pod_on};
use crate::common::k8s::{Cluster, NETWORKS, Pod};
use crate::common::ref_bin;
use serde_json::{Value, json};

/// How long a test waits for the agent to act.
pub const WAIT: Duration = Duration::from_secs(60);

/// A running pod plexus attached, and the agent.
pub struct Running {
    /// Dropped (killed) before the cluster's API server stops.
    pub agent: Option<Agent>,
    pub c: Cluster,
    pub pod: Pod,
    pub netns: String,
    pub id: String,
    pub conf: Value,
}

/// A cluster with NADs `ns/mv1`, `ns/mv2`, `ns/mv3` (macvlan, host-local on 10.<octet>.1-3.0/24).
pub fn cluster(tag: &str, octet: u8) -> Cluster {
    let c = Cluster::new(tag, octet);
    for n in 1..=3u8 {
        c.put_nad("ns", &format!("mv{n}"), Some(&c.macvlan(n)));
    }
    c
}

/// plexus's config with every reference plugin and the test's own in the test's bin dir
/// (`binDir`: the agent runs delegates from there, as the DaemonSet does from /opt/cni/bin).
pub fn conf_with_own_bin_dir(c: &Cluster) -> Value {
    let bin = c.env.bin_dir();
    for entry in std::fs::read_dir(ref_bin())
        .expect("reference plugins")
        .flatten()
    {
        let to = bin.join(entry.file_name());
        if !to.exists() {
            std::os::unix::fs::symlink(entry.path(), &to).expect("link a reference plugin");
        }
    }
    let mut conf = c.conf();
    conf["binDir"] = json!(bin);
    conf
}

impl Running {
    /// Pod `ns/p` on the agent's node with `annotation` (none: no annotation), ADDed by the
    /// plugin with `conf`, then the agent started with `flags`.
    pub fn start(c: Cluster, conf: Value, annotation: Option<&str>, flags: &[&str]) -> Running {
        let pod = Pod::new("ns", "p");
        let ann: Vec<(&str, &str)> = annotation.map(|a| (NETWORKS, a)).into_iter().collect();
        put_pod_on(&c, &pod, NODE, &ann);
        let netns = c.env.add_pod();
        let id = format!("ctr-{}", c.env.uid);
        c.cni("ADD", &id, &netns, &pod, &conf).ok();
        let agent = Agent::start(&c, &conf, flags);
        agent.wait_for_pod(&pod);
        let r = Running {
            c,
            agent: Some(agent),
            pod,
            netns,
            id,
            conf,
        };
        // Its first pass (the pod as ADD left it: nothing to do).
        r.wait_passes(0.0, 1.0);
        r
    }

    /// The agent.
    pub fn agent(&self) -> &Agent {
        self.agent.as_ref().expect("the agent runs")
    }

    /// Edits the networks annotation (`None` removes it) as `kubectl annotate` does.
    pub fn annotate(&self, value: Option<&str>) {
        let patch = json!({"metadata": {"annotations": {NETWORKS: value}}});
        self.c
            .api
            .patch_pod(&self.pod.namespace, &self.pod.name, &patch)
            .expect("the pod is on the server");
    }

    /// `name@interface` of each network-status entry (empty without the annotation).
    pub fn status(&self) -> Vec<String> {
        if !self.c.has_network_status(&self.pod) {
            return Vec::new();
        }
        self.c
            .network_status(&self.pod)
            .iter()
            .map(|e| {
                format!(
                    "{}@{}",
                    e["name"].as_str().unwrap_or("?"),
                    e["interface"].as_str().unwrap_or("?")
                )
            })
            .collect()
    }

    /// Waits until network-status lists exactly `want` (`name@interface`, in order); how long
    /// that took.
    pub fn wait_status(&self, want: &[&str]) -> Duration {
        let started = Instant::now();
        let ok = self.c.api.wait_until(WAIT, |_| self.status() == want);
        assert!(
            ok,
            "network-status never became {want:?}: {:?}\n--- agent ---\n{}\n--- plexus.log ---\n{}",
            self.status(),
            self.log(),
            self.c.env.log()
        );
        started.elapsed()
    }

    /// The agent's log.
    pub fn log(&self) -> String {
        self.agent.as_ref().map(Agent::log).unwrap_or_default()
    }

    /// Messages of the events with `reason` on the pod.
    pub fn events(&self, reason: &str) -> Vec<String> {
        events_of(&self.c, &self.pod, reason)
    }

    /// Waits until there are `n` events with `reason` on the pod; their messages.
    pub fn wait_events(&self, reason: &str, n: usize) -> Vec<String> {
        wait_events(&self.c, &self.pod, reason, n, &self.log())
    }

    /// The value of `plexus_hotplug_*` metric `name` with `labels` (0 when absent).
    pub fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.agent().metric(name, labels).unwrap_or(0.0)
    }

    /// Waits until the agent has run `n` more hot-plug passes than `since`.
    pub fn wait_passes(&self, since: f64, n: f64) {
        // The agent's own endpoint is polled: a pass with nothing to do sends no request the
        // server could wake a wait on.
        let ok = crate::common::wait_for(WAIT, || {
            self.metric("plexus_hotplug_passes_total", &[]) >= since + n
        });
        assert!(ok, "the agent ran no {n} more passes: {}", self.log());
    }

    /// PATCHes of the pod's status by the agent.
    pub fn agent_patches(&self) -> usize {
        let path = self.pod.status_path();
        agent_requests(&self.c.api)
            .iter()
            .filter(|r| r.method == "PATCH" && r.path == path)
            .count()
    }

    /// Links in the pod's netns other than lo, sorted.
    pub fn ifnames(&self) -> Vec<String> {
        self.c.ifnames(&self.netns)
    }

    /// host-local leases of NAD `ns/<nad>` (its dataDir subdirectory is the NAD's name).
    pub fn leases_of(&self, nad: &str) -> usize {
        self.c
            .env
            .leases()
            .iter()
            .filter(|l| l.starts_with(&format!("{nad}/")))
            .count()
    }

    /// The runtime's DEL of the sandbox, then its netns removed; nothing may be left.
    pub fn del_and_check_nothing_left(&self) {
        self.c
            .cni("DEL", &self.id, &self.netns, &self.pod, &self.conf)
            .ok();
        self.c.env.assert_nothing_left();
    }
}

/// Messages of the events with `reason` on `pod`.
pub fn events_of(c: &Cluster, pod: &Pod, reason: &str) -> Vec<String> {
    c.api
        .events()
        .iter()
        .filter(|e| e["reason"] == reason && e["involvedObject"]["name"] == pod.name.as_str())
        .map(|e| e["message"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Waits until `pod` has `n` events with `reason`; their messages.
pub fn wait_events(c: &Cluster, pod: &Pod, reason: &str, n: usize, log: &str) -> Vec<String> {
    let ok = c
        .api
        .wait_until(WAIT, |_| events_of(c, pod, reason).len() >= n);
    assert!(
        ok,
        "no {n} {reason} events on {}: {:?}\n--- agent ---\n{log}",
        pod.name,
        c.api.events()
    );
    events_of(c, pod, reason)
}

/// Prints how long a change took as the test saw it, and the agent's own figure (never
/// asserted: figures come from `make bench`).
pub fn report_latency(what: &str, took: Duration, log: &str) {
    let agent_said = log
        .lines()
        .rfind(|l| l.contains("after the change was seen"))
        .unwrap_or("(the agent logged nothing)");
    eprintln!("hot-plug latency, {what}: {took:?} seen by the test; agent: {agent_said}");
}

/// The agent's metric name for hot-plug changes with `result`.
pub fn changes(r: &Running, result: &str) -> f64 {
    r.metric("plexus_hotplug_changes_total", &[("result", result)])
}
