//! The node agent's rows: (h) plexus with `plexus-agent` up, against the floor in the same
//! cycles (what it adds, and the API requests made per ADD by the plugin and by the agent),
//! hot-plug (from an annotation edit on the API server to network-status listing the interface
//! the agent added, or no longer listing the one it removed), and the agent's memory with 250
//! pods on its node and 10,000 NADs in the cluster.
//!
//! The agent runs in the node namespace like the plugin, against the same HTTPS API server,
//! with a token of its own so its requests and the plugin's are told apart.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use plexus::agent::proto::{self, Answer, Ask, Question, Reply};
use serde_json::json;

use crate::cni::{Plexus, Who};
use crate::node::{Node, Pod};
use crate::stats::{Summary, ms, paired};

/// The agent's node name (its pods are cached).
const NODE_NAME: &str = "bench-node";
const AGENT_TOKEN: &str = "plexus-bench-agent-token";
/// Pods on the node and NADs in the cluster for the memory row.
const MEMORY_PODS: usize = 250;
const MEMORY_NADS: usize = 10_000;

/// Where the bench's agent listens (the (h) contestant's `agentSocket`).
pub fn socket(node: &Node) -> PathBuf {
    node.work.join("agent").join("agent.sock")
}

/// The conflist the agent reads (hot-plug's and the leak collector's plexus config): written
/// when hot-plug is measured; until then both have no config and do nothing.
fn conflist(node: &Node) -> PathBuf {
    node.work.join("agent").join("plexus.conflist")
}

/// A running `plexus-agent`, killed when dropped.
struct Agent {
    child: Child,
    socket: PathBuf,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Agent {
    /// Starts the agent beside `plexus` in the node namespace; returns once it serves.
    fn start(node: &Node, plexus: &Path) -> Result<Agent, String> {
        let bin = plexus.with_file_name("plexus-agent");
        if !bin.exists() {
            return Err(format!(
                "{} is missing (make release builds it)",
                bin.display()
            ));
        }
        let dir = node.work.join("agent");
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let token = dir.join("token");
        std::fs::write(&token, AGENT_TOKEN).map_err(|e| e.to_string())?;
        let theirs = std::fs::read_to_string(&node.kubeconfig).map_err(|e| e.to_string())?;
        let line = theirs
            .lines()
            .find(|l| l.trim_start().starts_with("tokenFile:"))
            .ok_or("the kubeconfig has no tokenFile")?;
        let kubeconfig = dir.join("kubeconfig");
        let ours = theirs.replace(line, &format!("    tokenFile: {}", json!(token)));
        std::fs::write(&kubeconfig, ours).map_err(|e| e.to_string())?;
        let netns = node
            .path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or("node netns")?
            .to_string();
        let socket = socket(node);
        let mut child = Command::new("ip")
            .args(["netns", "exec", &netns])
            .arg(&bin)
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .arg(format!("--node-name={NODE_NAME}"))
            .arg(format!("--socket={}", socket.display()))
            .arg(format!("--cni-conf={}", conflist(node).display()))
            .arg("--gc-interval-seconds=3600")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{}: {e}", bin.display()))?;
        let stderr = child.stderr.take().ok_or("stderr")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("serving") {
                    let _ = tx.send(());
                }
            }
        });
        let agent = Agent { child, socket };
        rx.recv_timeout(Duration::from_secs(60))
            .map_err(|_| "plexus-agent did not start serving".to_string())?;
        Ok(agent)
    }

    /// Asks one question, letting the agent wait up to a minute for its caches.
    fn ask(&self, question: Question) -> Result<Reply, String> {
        let s = UnixStream::connect(&self.socket).map_err(|e| e.to_string())?;
        let mut w = s.try_clone().map_err(|e| e.to_string())?;
        let mut line = serde_json::to_vec(&Ask {
            v: proto::VERSION,
            wait_ms: 60_000,
            question,
        })
        .map_err(|e| e.to_string())?;
        line.push(b'\n');
        w.write_all(&line).map_err(|e| e.to_string())?;
        let mut answer = String::new();
        BufReader::new(s)
            .read_line(&mut answer)
            .map_err(|e| e.to_string())?;
        let a: Answer = serde_json::from_str(&answer).map_err(|e| format!("{answer}: {e}"))?;
        Ok(a.body)
    }

    /// Waits until the agent has cached `ns/name` (and, with `nad`, the NAD `ns/nad`).
    fn wait_for(&self, ns: &str, pod: &str, nad: Option<&str>) -> Result<(), String> {
        let q = Question::Pod {
            namespace: ns.into(),
            name: pod.into(),
            uid: None,
        };
        if !matches!(self.ask(q)?, Reply::Pod { .. }) {
            return Err(format!("the agent never cached pod {ns}/{pod}"));
        }
        match nad {
            Some(n) => self.wait_for_nad(ns, n),
            None => Ok(()),
        }
    }

    fn wait_for_nad(&self, ns: &str, name: &str) -> Result<(), String> {
        let q = Question::Nads {
            keys: vec![(ns.into(), name.into())],
        };
        match self.ask(q)? {
            Reply::Nads { .. } => Ok(()),
            other => Err(format!("the agent never cached NAD {ns}/{name}: {other:?}")),
        }
    }

    /// `VmRSS` and `VmHWM` (KiB).
    fn memory(&self) -> (i64, i64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

/// Schedules `pod` on the agent's node (the bench's pods have no node otherwise).
fn on_node(node: &Node, pod: &Pod) {
    if let Some(mut p) = node.api.pod(&pod.namespace, &pod.name) {
        p["spec"]["nodeName"] = json!(NODE_NAME);
        node.api.put_pod(p);
    }
}

/// The agent's table, in Markdown.
pub fn table(node: &Node, px: &Plexus, cycles: usize) -> Result<String, String> {
    crate::progress("node agent: (h) against the floor");
    let agent = Agent::start(node, &px.bin)?;
    let storage = node.put_nad("bench-agent", "storage", 41);
    let one = [("storage", &storage)];
    let floor_pod = node.put_pod("bench-agent", "pod-a", &one);
    let agent_pod = node.put_pod("bench-agent", "pod-h", &one);
    on_node(node, &agent_pod);
    agent.wait_for("bench-agent", "pod-h", Some("storage"))?;
    let entries = [(Who::Floor, &floor_pod), (Who::Agent, &agent_pod)];
    crate::interleave(node, px, &entries, 1, "node agent warm-up")?;
    let series = crate::interleave(node, px, &entries, cycles, "node agent")?;
    // Who asked the API server what, per ADD (the agent's watches are long-lived: not per ADD).
    let (mut by_plugin, mut by_agent) = (0usize, 0usize);
    let rounds = cycles.min(5);
    for _ in 0..rounds {
        node.clear_requests();
        let ns = node.pod_netns()?;
        let (_, sb) = crate::cni::add(node, px, Who::Agent, &agent_pod, &ns, false)?;
        for r in node.requests() {
            if r.query.contains("watch") {
                continue;
            }
            if r.authorization.ends_with(AGENT_TOKEN) {
                by_agent += 1;
            } else {
                by_plugin += 1;
            }
        }
        node.verify(&ns, &agent_pod, true)?;
        crate::cni::del(node, px, &sb, false)?;
        node.verify(&ns, &agent_pod, false)?;
    }

    let (plugged, unplugged) = hotplug(node, px, &agent_pod, cycles)?;

    crate::progress(&format!(
        "node agent: memory with {MEMORY_PODS} pods and {MEMORY_NADS} NADs"
    ));
    for i in 0..MEMORY_PODS {
        node.api.put_pod(json!({"metadata": {"name": format!("load-{i:03}"),
            "namespace": format!("load{}", i % 10),
            "labels": {"app": "load", "pod-template-hash": "5d4f8b7c9"},
            "annotations": {"k8s.v1.cni.cncf.io/networks": "storage,storage@data1"}},
            "spec": {"nodeName": NODE_NAME, "containers": [{"name": "c", "image": "registry.example/app:1.2.3",
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]},
            "status": {"phase": "Running", "podIP": "10.244.1.9"}}));
    }
    for i in 0..MEMORY_NADS {
        let conf = json!({"cniVersion": "1.0.0", "type": "macvlan", "master": "eth1",
            "mode": "bridge", "ipam": {"type": "host-local",
            "ranges": [[{"subnet": format!("10.{}.{}.0/24", 100 + i / 256 % 100, i % 256)}]]}});
        node.api
            .put_nad(json!({"metadata": {"name": format!("net-{i:05}"),
            "namespace": format!("team{}", i % 50),
            "annotations": {"k8s.v1.cni.cncf.io/resourceName": "example.com/sriov"}},
            "spec": {"config": conf.to_string()}}));
    }
    agent.wait_for(
        &format!("load{}", (MEMORY_PODS - 1) % 10),
        &format!("load-{:03}", MEMORY_PODS - 1),
        None,
    )?;
    let last = MEMORY_NADS - 1;
    agent.wait_for_nad(&format!("team{}", last % 50), &format!("net-{last:05}"))?;
    let (rss, hwm) = agent.memory();

    let (floor, with) = (&series[0], &series[1]);
    let (f, a) = (floor.add_summary(), with.add_summary());
    let added = paired(&with.add, &floor.add);
    let mib = |kb: i64| format!("{:.1} MiB", kb as f64 / 1024.0);
    Ok(format!(
        "\n### Node agent\n\n\
         | | (a) floor | (h) plexus thin, node agent up |\n\
         |---|---:|---:|\n\
         | ADD median ({} cycles) | {} | {}, {:.2}x, {} added (goal: at most +1 ms added: {}) |\n\
         | ADD p90 | {} | {} |\n\
         | API requests per ADD: by the plugin / by the agent | | {} / {} (goal: 0 / 1: {}) |\n\
         | hot-plug, annotation edit to network-status: add median (p90) / remove median (p90), {} edits each | | {} ms ({} ms) / {} ms ({} ms) (target: at most 1 s: {}) |\n\
         | agent RSS with {MEMORY_PODS} pods on its node and {MEMORY_NADS} NADs (peak) | | {} ({}) |\n\
         \nadded: median over cycles of (h) − (a) in the same cycle. Requests: {rounds} ADDs, \
         the agent's long-lived watches not counted. Hot-plug: from the merge PATCH of the pod's \
         annotation on the API server to its network-status listing `storage@data1` (the \
         interface is up before that PATCH), then to the status no longer listing it; the agent's \
         watch, its pass (macvlan and host-local exec'd, the journal synced) and its PATCH.\n",
        f.n,
        ms(f.median),
        ms(a.median),
        a.median / f.median.max(f64::MIN_POSITIVE),
        signed(added),
        verdict(added <= 1.0),
        ms(f.p90),
        ms(a.p90),
        by_plugin as f64 / rounds.max(1) as f64,
        by_agent as f64 / rounds.max(1) as f64,
        verdict(by_plugin == 0 && by_agent == rounds),
        plugged.n,
        ms(plugged.median),
        ms(plugged.p90),
        ms(unplugged.median),
        ms(unplugged.p90),
        verdict(plugged.median.max(unplugged.median) <= 1000.0),
        mib(rss),
        mib(hwm),
    ))
}

/// "met" or "not met", beside a goal.
pub fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "not met" }
}

/// Hot-plug, `cycles` times each way: the pod ADDed with `storage`, its annotation edited to
/// add `storage@data1`, then back; each timed from the edit to network-status saying so.
fn hotplug(
    node: &Node,
    px: &Plexus,
    pod: &Pod,
    cycles: usize,
) -> Result<(Summary, Summary), String> {
    crate::progress("node agent: hot-plug");
    let ns = node.pod_netns()?;
    let (_, sb) = crate::cni::add(node, px, Who::Agent, pod, &ns, false)?;
    let list = json!({"cniVersion": sb.conf["cniVersion"], "name": "plexus-bench",
        "plugins": [sb.conf]});
    std::fs::write(conflist(node), list.to_string()).map_err(|e| e.to_string())?;
    let status = |want: bool| {
        let has = node
            .api
            .pod(&pod.namespace, &pod.name)
            .and_then(|p| {
                p["metadata"]["annotations"]["k8s.v1.cni.cncf.io/network-status"]
                    .as_str()
                    .map(|s| s.contains("\"data1\""))
            })
            .unwrap_or(false);
        has == want
    };
    let edit = |value: &str, want: bool| -> Result<f64, String> {
        let patch = json!({"metadata": {"annotations": {"k8s.v1.cni.cncf.io/networks": value}}});
        let started = Instant::now();
        node.api
            .patch_pod(&pod.namespace, &pod.name, &patch)
            .ok_or("the pod is gone")?;
        if !node
            .api
            .wait_until(Duration::from_secs(60), |_| status(want))
        {
            return Err(format!("hot-plug: network-status never said data1 {want}"));
        }
        Ok(started.elapsed().as_secs_f64() * 1000.0)
    };
    let (mut plugged, mut unplugged) = (Vec::new(), Vec::new());
    for _ in 0..cycles {
        plugged.push(edit("storage,storage@data1", true)?);
        crate::node::sh(&["ip", "-n", &ns.name, "link", "show", "data1"])?;
        unplugged.push(edit("storage", false)?);
    }
    crate::cni::del(node, px, &sb, false)?;
    node.verify(&ns, pod, false)?;
    Ok((Summary::of(&plugged), Summary::of(&unplugged)))
}

fn signed(x: f64) -> String {
    if x >= 0.0 {
        format!("+{}", ms(x))
    } else {
        format!("-{}", ms(-x))
    }
}
