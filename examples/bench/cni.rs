//! The contestants' ADD and DEL. Every process is spawned from a thread that has entered the
//! node namespace (`plexus::netns::run_in`), so children start there like they would under a
//! runtime on the node, and no `ip netns exec` wrapper is timed for anyone.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::Instant;

use serde_json::{Map, Value};

use crate::node::{Net, Node, PLUGINS, Pod, PodNs};
use crate::proc::{self, Call, Outcome};

/// Who performs the attachments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// (a) the delegates called directly, one after the other, as libcni would.
    Floor,
    /// (b) plexus thin: annotations from a GET of the pod.
    Thin,
    /// (c) plexus with the pod's annotations in `runtimeConfig`.
    Annotations,
    /// (d) plexus thin with `builtinDelegates: true`.
    Builtin,
    /// (e) plexus thin with `parallelAttach: true`: the NAD network runs while the cluster
    /// network's delegate does, instead of after it.
    Alongside,
    /// (f) plexus thin against a plain-HTTP API server: (b) without the TLS handshake and the
    /// CA load, for comparison (a cluster's API server always speaks HTTPS).
    PlainHttp,
    /// (g) plexus thin, built-in macvlan, `parallelAttach: true` (the many-networks table).
    Parallel,
    /// (h) plexus thin with the node agent up (`agentSocket`; the agent's table).
    Agent,
}

impl Who {
    pub fn key(self) -> &'static str {
        match self {
            Who::Floor => "floor",
            Who::Thin => "thin",
            Who::Annotations => "annotations",
            Who::Builtin => "builtin",
            Who::Alongside => "alongside",
            Who::PlainHttp => "plain_http",
            Who::Parallel => "parallel",
            Who::Agent => "agent",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Who::Floor => "(a) floor: delegates called directly",
            Who::Thin => "(b) plexus thin (GET pod)",
            Who::Annotations => "(c) plexus, annotations in runtimeConfig",
            Who::Builtin => "(d) plexus thin, builtinDelegates",
            Who::Alongside => "(e) plexus thin, parallelAttach",
            Who::PlainHttp => "(f) plexus thin, plain-HTTP API server",
            Who::Parallel => "(g) plexus thin, built-in, parallelAttach",
            Who::Agent => "(h) plexus thin, node agent up",
        }
    }
}

/// How plexus is run.
#[derive(Debug, Clone)]
pub struct Plexus {
    pub bin: PathBuf,
    /// `logLevel: debug` into this file (changes the timings: for finding out where time goes).
    pub debug_log: Option<PathBuf>,
    /// Pause before each timed ADD and DEL of a cycle.
    pub settle: std::time::Duration,
}

/// One measured ADD or DEL.
#[derive(Debug, Clone)]
pub struct Step {
    pub ms: f64,
    /// `wait4`'s `ru_maxrss` (KiB); for the floor, the largest of its delegates'.
    pub maxrss_kb: i64,
    /// Own `VmHWM` at exit (KiB), from traced runs; for the floor, the largest delegate's.
    pub own_hwm_kb: Option<i64>,
    /// API requests the step caused, as `METHOD path`.
    pub requests: Vec<String>,
    pub started: Instant,
    pub ended: Instant,
}

/// What ADD left for DEL to undo.
pub struct Sandbox {
    who: Who,
    id: String,
    netns: String,
    pod: Pod,
    /// plexus: its config. Floor: unused.
    pub conf: Value,
    /// Floor: each network's final result (libcni's cache).
    cached: Vec<Value>,
}

/// Work done inside the node namespace.
#[derive(Clone)]
enum Job {
    Floor {
        nets: Vec<Net>,
        env: Vec<(String, String)>,
        /// `Some(cached results)`: DEL in reverse; `None`: ADD in order.
        del: Option<Vec<Value>>,
        traced: bool,
    },
    Plexus {
        call: Call,
        traced: bool,
    },
}

struct Done {
    out: Outcome,
    results: Vec<Value>,
    started: Instant,
    ended: Instant,
}

fn env(cmd: &str, id: &str, netns: &str, ifname: &str, pod: &Pod) -> Vec<(String, String)> {
    let args = format!(
        "IgnoreUnknown=1;K8S_POD_NAMESPACE={};K8S_POD_NAME={};K8S_POD_INFRA_CONTAINER_ID={id};K8S_POD_UID={}",
        pod.namespace, pod.name, pod.uid
    );
    [
        ("CNI_COMMAND", cmd),
        ("CNI_CONTAINERID", id),
        ("CNI_NETNS", netns),
        ("CNI_IFNAME", ifname),
        ("CNI_PATH", PLUGINS),
        ("CNI_ARGS", &args),
        (
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn set(env: &mut [(String, String)], key: &str, value: &str) {
    if let Some(e) = env.iter_mut().find(|(k, _)| k == key) {
        e.1 = value.to_string();
    }
}

/// Runs `job` on this thread, which is already in the node namespace.
fn execute(job: Job, stderr: &File) -> Result<Done, String> {
    let started = Instant::now();
    let (out, results) = match job {
        Job::Plexus { call, traced } => {
            let out = if traced {
                proc::run_traced(&call, stderr)?
            } else {
                proc::run(&call, stderr)?
            };
            (out, Vec::new())
        }
        Job::Floor {
            nets,
            mut env,
            del,
            traced,
        } => {
            let mut maxrss = 0;
            let mut own: Option<i64> = None;
            let mut results = Vec::new();
            let mut one = |env: &[(String, String)], conf: Map<String, Value>| {
                let call = Call {
                    bin: Path::new(PLUGINS).join(conf["type"].as_str().unwrap_or("")),
                    env: env.to_vec(),
                    stdin: serde_json::to_vec(&conf).unwrap_or_default(),
                };
                let o = if traced {
                    proc::run_traced(&call, stderr)?
                } else {
                    proc::run(&call, stderr)?
                };
                maxrss = maxrss.max(o.maxrss_kb);
                own = own.max(o.own_hwm_kb);
                Ok::<_, String>(o.stdout)
            };
            match del {
                None => {
                    for net in &nets {
                        set(&mut env, "CNI_IFNAME", &net.ifname);
                        let mut prev: Option<Value> = None;
                        for p in &net.plugins {
                            let mut conf = p.clone();
                            if let Some(r) = prev.take() {
                                conf.insert("prevResult".into(), r);
                            }
                            let out = one(&env, conf)?;
                            prev = Some(serde_json::from_slice(&out).map_err(|e| e.to_string())?);
                        }
                        results.push(prev.unwrap_or(Value::Null));
                    }
                }
                Some(cached) => {
                    for (net, res) in nets.iter().zip(cached).rev() {
                        set(&mut env, "CNI_IFNAME", &net.ifname);
                        for p in net.plugins.iter().rev() {
                            let mut conf = p.clone();
                            conf.insert("prevResult".into(), res.clone());
                            one(&env, conf)?;
                        }
                    }
                }
            }
            let out = Outcome {
                ms: started.elapsed().as_secs_f64() * 1000.0,
                maxrss_kb: maxrss,
                own_hwm_kb: own,
                stdout: Vec::new(),
            };
            (out, results)
        }
    };
    Ok(Done {
        out,
        results,
        started,
        ended: Instant::now(),
    })
}

/// Runs `job` from a new thread in the node namespace; with a barrier, it starts when all do.
fn in_node(node: &Node, job: Job, barrier: Option<Arc<Barrier>>) -> Result<Done, String> {
    let stderr = node.stderr.try_clone().map_err(|e| e.to_string())?;
    plexus::netns::run_in(&node.path, move || {
        if let Some(b) = barrier {
            b.wait();
        }
        execute(job, &stderr)
    })
    .map_err(|e| format!("node namespace: {e}"))?
}

/// Prepared ADD of `pod` into `ns` by `who`: the job and the sandbox it will leave.
fn prepare_add(
    node: &Node,
    px: &Plexus,
    who: Who,
    pod: &Pod,
    ns: &PodNs<'_>,
    traced: bool,
) -> (Job, Sandbox) {
    let id = node.container_id();
    let netns = ns.path();
    let mut conf = node.plexus_conf(
        pod,
        who == Who::PlainHttp,
        who == Who::Annotations,
        matches!(who, Who::Builtin | Who::Parallel),
        matches!(who, Who::Alongside | Who::Parallel),
        px.debug_log.as_deref(),
    );
    if who == Who::Agent {
        conf["agentSocket"] = serde_json::json!(crate::agent::socket(node));
    }
    let e = env("ADD", &id, &netns, "eth0", pod);
    let job = match who {
        Who::Floor => Job::Floor {
            nets: pod.nets.clone(),
            env: e,
            del: None,
            traced,
        },
        _ => Job::Plexus {
            call: Call {
                bin: px.bin.clone(),
                env: e,
                stdin: conf.to_string().into_bytes(),
            },
            traced,
        },
    };
    let sb = Sandbox {
        who,
        id,
        netns,
        pod: pod.clone(),
        conf,
        cached: Vec::new(),
    };
    (job, sb)
}

fn step(node: &Node, done: Done) -> Step {
    Step {
        ms: done.out.ms,
        maxrss_kb: done.out.maxrss_kb,
        own_hwm_kb: done.out.own_hwm_kb,
        requests: node
            .requests()
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect(),
        started: done.started,
        ended: done.ended,
    }
}

/// ADD of `pod` into `ns` by `who`, timed. `traced` measures plexus's own memory (slower).
pub fn add(
    node: &Node,
    px: &Plexus,
    who: Who,
    pod: &Pod,
    ns: &PodNs<'_>,
    traced: bool,
) -> Result<(Step, Sandbox), String> {
    let (job, mut sb) = prepare_add(node, px, who, pod, ns, traced);
    node.clear_requests();
    let done = in_node(node, job, None)?;
    sb.cached = done.results.clone();
    Ok((step(node, done), sb))
}

/// DEL of what `sb`'s ADD made, timed, with the same config and arguments as its ADD.
pub fn del(node: &Node, px: &Plexus, sb: &Sandbox, traced: bool) -> Result<Step, String> {
    let e = env("DEL", &sb.id, &sb.netns, "eth0", &sb.pod);
    let job = match sb.who {
        Who::Floor => Job::Floor {
            nets: sb.pod.nets.clone(),
            env: e,
            del: Some(sb.cached.clone()),
            traced,
        },
        _ => Job::Plexus {
            call: Call {
                bin: px.bin.clone(),
                env: e,
                stdin: sb.conf.to_string().into_bytes(),
            },
            traced,
        },
    };
    node.clear_requests();
    let done = in_node(node, job, None)?;
    Ok(step(node, done))
}

/// ADDs every pod into its namespace at once (each from its own thread, released together).
/// Returns each ADD's step (API requests are those of the whole batch) and its sandbox.
pub fn add_parallel(
    node: &Node,
    px: &Plexus,
    who: Who,
    pods: &[(&Pod, &PodNs<'_>)],
) -> Result<Vec<(Step, Sandbox)>, String> {
    let barrier = Arc::new(Barrier::new(pods.len()));
    let prepared: Vec<(Job, Sandbox)> = pods
        .iter()
        .map(|(pod, ns)| prepare_add(node, px, who, pod, ns, false))
        .collect();
    node.clear_requests();
    let dones: Vec<Result<Done, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = prepared
            .iter()
            .map(|(job, _)| {
                let job = job.clone();
                let b = Some(barrier.clone());
                s.spawn(move || in_node(node, job, b))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("thread panicked".into())))
            .collect()
    });
    let mut out = Vec::new();
    let mut first_err = None;
    for ((_, mut sb), d) in prepared.into_iter().zip(dones) {
        match d {
            Ok(d) => {
                sb.cached = d.results.clone();
                out.push((step(node, d), sb));
            }
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}
