//! The attachment health row: one round of the agent's health check (its own code,
//! `plexus::agent::health::look::look_all`, as the agent runs it: 4 pods at a time) over 250
//! pods with 4 attachments each, real pod namespaces with real interfaces and real journal
//! records, and the CPU time it costs against the 1 s target. One attachment per pod is a
//! macvlan config, so its master is looked up on the node as a real one's is (`lo` stands in
//! for the master: the interfaces are veths, which the check does not tell apart).

use std::time::Instant;

use plexus::agent::health::look::{Eyes, Looked, look_all};
use plexus::journal::Journal;
use plexus::link::Kernel;
use plexus::txn::{PodId, Record, Step};
use serde_json::json;

use crate::node::{Node, PodNs, sh};

const PODS: usize = 250;
const ATTACHMENTS: usize = 4;
const ROUNDS: usize = 3;
/// The target for one round.
const TARGET_S: f64 = 1.0;

/// This process's CPU time (user + system, every thread), in seconds.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes one rusage, which is plain data.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a rusage of our own.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return f64::NAN;
    }
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

/// Pod `p`'s namespace with its interfaces `net0`..`net3` (up, an address each), and its
/// record.
fn pod<'a>(node: &'a Node, journal: &Journal, p: usize) -> Result<PodNs<'a>, String> {
    let ns = node.pod_netns()?;
    let mut batch = String::from("link set lo up\n");
    let mut steps = Vec::new();
    for i in 0..ATTACHMENTS {
        let mac = format!("02:00:00:{:02x}:{:02x}:{i:02x}", p / 256, p % 256);
        let addr = format!("10.{}.{}.{}", 200 + p / 250, p % 250, i + 1);
        batch += &format!(
            "link add net{i} address {mac} type veth peer name peer{i}\n\
             link set net{i} up\nlink set peer{i} up\naddr add {addr}/24 dev net{i}\n"
        );
        let mut conf = json!({"cniVersion": "1.0.0", "name": format!("n{i}"), "type": "bridge"});
        if i == ATTACHMENTS - 1 {
            conf = json!({"cniVersion": "1.0.0", "name": format!("n{i}"), "type": "macvlan",
                "master": "lo"});
        }
        let step: Step = serde_json::from_value(json!({
            "network": format!("bench-health/n{i}"), "ifname": format!("net{i}"),
            "origin": "selected", "conf": conf, "state": "added",
            "result": {"cniVersion": "1.0.0",
                "interfaces": [{"name": format!("net{i}"), "mac": mac, "sandbox": ns.path()}],
                "ips": [{"address": format!("{addr}/24"), "interface": 0}]},
        }))
        .map_err(|e| e.to_string())?;
        steps.push(step);
    }
    let file = node.work.join("health-batch");
    std::fs::write(&file, batch).map_err(|e| e.to_string())?;
    sh(&["ip", "-n", &ns.name, "-batch", &file.to_string_lossy()])?;
    let id = node.container_id();
    let pod = PodId {
        namespace: "bench-health".into(),
        name: format!("pod-{p:03}"),
        uid: Some(format!("uid-{p}")),
    };
    let mut rec = Record::new(&id, &ns.path(), "eth0", "", Some(pod), 0);
    rec.steps = steps;
    rec.complete = true;
    let held = journal.lock(&id).map_err(|e| e.to_string())?;
    plexus::txn::write(&held, &rec).map_err(|e| e.to_string())?;
    Ok(ns)
}

/// The health row, in Markdown.
pub fn table(node: &Node) -> Result<String, String> {
    crate::progress(&format!(
        "attachment health: {PODS} pods x {ATTACHMENTS} attachments"
    ));
    let journal = Journal::new(node.work.join("health-journal"));
    let pods = (0..PODS)
        .map(|p| pod(node, &journal, p))
        .collect::<Result<Vec<_>, _>>()?;
    let everyone = |_: &PodId| true;
    let eyes = Eyes {
        journal: &journal,
        net: &Kernel,
        exec: None,
        wanted: &everyone,
        concurrency: 4,
        only: None,
    };
    let mut rounds = Vec::new();
    for r in 0..=ROUNDS {
        let (cpu, wall) = (cpu_seconds(), Instant::now());
        let looked = look_all(&eyes);
        let (cpu, wall) = (cpu_seconds() - cpu, wall.elapsed().as_secs_f64());
        let healthy = looked
            .iter()
            .filter(|l| match l {
                Looked::Checked(_, _, a, _) => {
                    a.len() == ATTACHMENTS && a.iter().all(|a| a.problem.is_none())
                }
                Looked::Busy(_) | Looked::Ignored(_) => false,
            })
            .count();
        if healthy != PODS {
            return Err(format!(
                "health round {r}: {healthy} of {PODS} pods found healthy: {:?}",
                looked.iter().find(|l| !matches!(l, Looked::Checked(_, _, a, _) if a.iter().all(|a| a.problem.is_none())))
            ));
        }
        // The first round warms up (page cache, allocator).
        if r > 0 {
            rounds.push((cpu, wall));
        }
    }
    drop(pods);
    let _ = std::fs::remove_dir_all(journal.dir());
    rounds.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (cpu, wall) = rounds[rounds.len() / 2];
    Ok(format!(
        "\n### Attachment health\n\n\
         | | CPU time | wall time | target |\n\
         |---|---:|---:|---:|\n\
         | one health round, {PODS} pods x {ATTACHMENTS} attachments (median of {ROUNDS}) | {:.0} ms | {:.0} ms | CPU <= {:.0} ms: {} |\n\
         \nThe agent's own check (`look_all`, 4 pods at a time): each record locked without waiting, \
         each pod's netns entered, every interface, MAC, address and (one per pod) master looked at.\n",
        cpu * 1e3,
        wall * 1e3,
        TARGET_S * 1e3,
        if cpu <= TARGET_S { "met" } else { "MISSED" },
    ))
}
