//! Attachment health: the agent's rounds see each thing that can break in a real pod netns
//! (the interface set down, its address flushed, deleted; the macvlan master set down,
//! deleted) and write the pod condition `False` with the right reason, then `True` after the
//! repair, with an event at each transition; a steady node writes nothing; a refused PATCH is
//! retried the next round; a record held by an ADD, DEL or hot-plug is skipped; pods of other
//! nodes are never touched. Real binaries and reference plugins in a test node netns, the test
//! API server as the cluster.

mod agent_support;
mod common;

use std::time::Duration;

use agent_support::{Agent, NODE, agent_requests, conf_with_agent, put_pod_on};
use common::k8s::{Cluster, NETWORKS, Pod};
use common::{addrs, link, sh};
use plexus_testapi::{Fault, FaultKind};
use serde_json::Value;

const CONDITION: &str = "plexus.io/networks-ready";
/// How long a test waits for what the agent must do within two one-second rounds: a deadline
/// for failing, never a measure.
const DEADLINE: Duration = Duration::from_secs(60);

/// The pod's condition on the server: (status, reason, message).
fn condition(c: &Cluster, pod: &Pod) -> Option<(String, String, String)> {
    let stored = c.api.pod(&pod.namespace, &pod.name)?;
    let conds = stored["status"]["conditions"].as_array()?.clone();
    conds.iter().find(|x| x["type"] == CONDITION).map(|x| {
        let s = |k: &str| x[k].as_str().unwrap_or_default().to_string();
        (s("status"), s("reason"), s("message"))
    })
}

/// Waits until the condition has `status` (and `reason`, when given); panics with what it is.
fn wait_condition(c: &Cluster, agent: &Agent, pod: &Pod, status: &str, reason: Option<&str>) {
    let ok = c.api.wait_until(DEADLINE, |_| {
        condition(c, pod)
            .is_some_and(|(s, r, _)| s == status && reason.is_none_or(|want| r == want))
    });
    assert!(
        ok,
        "condition never became {status} {reason:?}: {:?}\n{}",
        condition(c, pod),
        agent.log()
    );
}

/// A cluster with NAD ns/mv (macvlan on the test's master), the agent started with `interval`,
/// then pod ns/p on this node ADDed (net1).
struct Setup {
    c: Cluster,
    agent: Agent,
    pod: Pod,
    netns: String,
    conf: Value,
}

fn setup(tag: &str, octet: u8, interval: &'static str) -> Setup {
    let c = Cluster::new(tag, octet);
    c.put_nad("ns", "mv", Some(&c.macvlan(1)));
    let pod = Pod::new("ns", "p");
    put_pod_on(&c, &pod, NODE, &[(NETWORKS, "mv")]);
    let agent = Agent::start(&c, &c.conf(), &[interval]);
    let conf = conf_with_agent(&c, &agent.socket);
    agent.wait_for_pod(&pod);
    let netns = c.env.add_pod();
    c.cni("ADD", &format!("ctr-{tag}"), &netns, &pod, &conf)
        .ok();
    Setup {
        c,
        agent,
        pod,
        netns,
        conf,
    }
}

/// Makes a macvlan named `net1` on the master again, in the pod, with `mac` and `addr`.
fn recreate_net1(s: &Setup, mac: &str, addr: &str) {
    let (node, tmp) = (&s.c.env.node, format!("pxh{}", s.c.env.uid));
    sh(&[
        "ip",
        "-n",
        node,
        "link",
        "add",
        &tmp,
        "link",
        &s.c.env.master,
        "type",
        "macvlan",
        "mode",
        "bridge",
    ]);
    sh(&["ip", "-n", node, "link", "set", &tmp, "netns", &s.netns]);
    let ns = &s.netns;
    sh(&["ip", "-n", ns, "link", "set", &tmp, "name", "net1"]);
    sh(&["ip", "-n", ns, "link", "set", "net1", "address", mac]);
    sh(&["ip", "-n", ns, "addr", "add", addr, "dev", "net1"]);
    sh(&["ip", "-n", ns, "link", "set", "net1", "up"]);
}

#[test]
#[allow(clippy::too_many_lines)] // one pod broken and repaired five ways, then its events
fn each_break_turns_the_condition_false_with_its_reason_and_the_repair_true() {
    let s = setup("ah1", 247, "--health-interval-seconds=1");
    let (c, agent, pod) = (&s.c, &s.agent, &s.pod);
    wait_condition(c, agent, pod, "True", Some("NetworksReady"));
    let net1 = link(&s.netns, "net1").expect("net1 after ADD");
    let mac = net1.mac.expect("net1 has a MAC");
    let addr = addrs(&s.netns, "net1")
        .first()
        .cloned()
        .expect("an address");
    let (ns, node, master) = (&s.netns, &s.c.env.node, &s.c.env.master);
    let steps: Vec<(&str, Box<dyn Fn()>, Box<dyn Fn()>)> = vec![
        (
            "LinkDown",
            Box::new(|| {
                sh(&["ip", "-n", ns, "link", "set", "net1", "down"]);
            }),
            Box::new(|| {
                sh(&["ip", "-n", ns, "link", "set", "net1", "up"]);
            }),
        ),
        (
            "AddressMissing",
            Box::new(|| {
                sh(&["ip", "-n", ns, "addr", "flush", "dev", "net1"]);
            }),
            Box::new(|| {
                sh(&["ip", "-n", ns, "addr", "add", &addr, "dev", "net1"]);
            }),
        ),
        (
            "MasterDown",
            Box::new(|| {
                sh(&["ip", "-n", node, "link", "set", master, "down"]);
            }),
            Box::new(|| {
                sh(&["ip", "-n", node, "link", "set", master, "up"]);
            }),
        ),
        (
            "InterfaceMissing",
            Box::new(|| {
                sh(&["ip", "-n", ns, "link", "del", "net1"]);
            }),
            Box::new(|| recreate_net1(&s, &mac, &addr)),
        ),
        (
            "MasterDown",
            // Deleting the master takes the macvlan with it: the master is the reason.
            Box::new(|| {
                sh(&["ip", "-n", node, "link", "del", master]);
            }),
            Box::new(|| {
                s.c.env.add_master();
                recreate_net1(&s, &mac, &addr);
            }),
        ),
    ];
    for (reason, break_it, repair) in &steps {
        break_it();
        wait_condition(c, agent, pod, "False", Some(reason));
        let (_, _, message) = condition(c, pod).unwrap();
        assert!(
            message.contains("ns/mv") && message.contains("net1"),
            "{reason}: the message names the network and interface: {message}"
        );
        repair();
        wait_condition(c, agent, pod, "True", Some("NetworksReady"));
    }
    // One event per transition (posted after the PATCH), each naming the network, the
    // interface and the reason.
    let health_events = || -> Vec<(String, String, String)> {
        c.api
            .events()
            .iter()
            .filter(|e| e["involvedObject"]["name"] == "p")
            .filter(|e| e["reason"] == "NetworkUnhealthy" || e["reason"] == "NetworkHealthy")
            .map(|e| {
                let s = |k: &str| e[k].as_str().unwrap_or_default().to_string();
                (s("type"), s("reason"), s("message"))
            })
            .collect()
    };
    c.api
        .wait_until(DEADLINE, |_| health_events().len() >= 2 * steps.len());
    let events = health_events();
    assert_eq!(events.len(), 2 * steps.len(), "{events:#?}");
    for (i, (reason, _, _)) in steps.iter().enumerate() {
        let (kind, why, message) = &events[2 * i];
        assert_eq!(
            (kind.as_str(), why.as_str()),
            ("Warning", "NetworkUnhealthy")
        );
        assert!(
            message.contains("ns/mv") && message.contains("net1") && message.contains(reason),
            "{message}"
        );
        let (kind, why, message) = &events[2 * i + 1];
        assert_eq!((kind.as_str(), why.as_str()), ("Normal", "NetworkHealthy"));
        assert!(
            message.contains("net1") && message.contains(reason),
            "{message}"
        );
    }
    // The metrics say the same: a healthy gauge per interface, checks by result.
    let (_, text) = agent.http("/metrics");
    let m = |name, labels: &[(&str, &str)]| agent_support::metric(&text, name, labels);
    assert_eq!(
        m(
            "plexus_attachment_healthy",
            &[("pod", "p"), ("interface", "net1"), ("network", "ns/mv")]
        ),
        Some(1.0),
        "{text}"
    );
    for (reason, _, _) in &steps {
        assert!(
            m("plexus_health_checks_total", &[("result", reason)]).is_some_and(|n| n >= 1.0),
            "{reason}: {text}"
        );
    }
    assert!(
        text.contains("plexus_health_check_duration_seconds_count"),
        "{text}"
    );
    // The pod goes: so do its series.
    c.cni("DEL", "ctr-ah1", &s.netns, pod, &s.conf).ok();
    c.api.delete_pod("ns", "p");
    let gone = common::wait_for(DEADLINE, || {
        let (_, t) = agent.http("/metrics");
        !t.contains("plexus_attachment_healthy{")
    });
    assert!(gone, "the pod's health series stayed after it went");
}

/// The number of checks the agent has counted as `result`.
fn checks(agent: &Agent, result: &str) -> f64 {
    agent
        .metric("plexus_health_checks_total", &[("result", result)])
        .unwrap_or(0.0)
}

#[test]
fn a_steady_node_writes_nothing_and_other_nodes_pods_are_never_touched() {
    let s = setup("ah2", 248, "--health-interval-seconds=1");
    let (c, agent, pod) = (&s.c, &s.agent, &s.pod);
    // A pod of another node with a record here (as a stale or foreign record would be).
    let other = Pod::new("ns", "q");
    put_pod_on(c, &other, "node-b", &[(NETWORKS, "mv")]);
    let other_netns = c.env.add_pod();
    c.cni("ADD", "ctr-ah2q", &other_netns, &other, &c.conf())
        .ok();
    wait_condition(c, agent, pod, "True", Some("NetworksReady"));
    let patches = |name: &str| {
        agent_requests(&c.api)
            .iter()
            .filter(|r| {
                r.method == "PATCH" && r.path == format!("/api/v1/namespaces/ns/pods/{name}/status")
            })
            .count()
    };
    let written = patches("p");
    let before = checks(agent, "healthy");
    // Ten more rounds (two healthy attachments each) with nothing broken.
    let rounds = common::wait_for(DEADLINE, || checks(agent, "healthy") >= before + 20.0);
    assert!(rounds, "the agent stopped checking: {}", agent.log());
    assert_eq!(patches("p"), written, "a steady pod was written again");
    assert_eq!(patches("q"), 0, "a pod of another node was written");
    assert!(
        condition(c, &other).is_none(),
        "the other node's pod got a condition"
    );
    let events = c.api.events();
    assert!(
        events.iter().all(|e| e["involvedObject"]["name"] != "q"),
        "{events:#?}"
    );
}

#[test]
fn refused_patches_are_retried_next_round_and_busy_records_are_skipped() {
    let s = setup("ah3", 249, "--health-interval-seconds=1");
    let (c, agent, pod) = (&s.c, &s.agent, &s.pod);
    wait_condition(c, agent, pod, "True", Some("NetworksReady"));
    // The API server refuses the agent's PATCHes: the rounds go on and retry.
    c.api.set_fault(Fault {
        method: Some("PATCH".into()),
        path_prefix: pod.status_path(),
        kind: FaultKind::Status(500),
        times: None,
    });
    c.api.clear_requests();
    sh(&["ip", "-n", &s.netns, "link", "set", "net1", "down"]);
    let retried = c
        .api
        .wait_until(DEADLINE, |api| api.count("PATCH", &pod.status_path()) >= 3);
    assert!(
        retried,
        "the refused PATCH was not retried: {}",
        agent.log()
    );
    assert_eq!(condition(c, pod).map(|x| x.0).as_deref(), Some("True"));
    c.api.clear_faults();
    wait_condition(c, agent, pod, "False", Some("LinkDown"));
    // An ADD, DEL or hot-plug holding the record: the pod is skipped, its condition left.
    let journal = plexus::journal::Journal::new(c.env.journal_dir());
    let held = journal.lock("ctr-ah3").expect("lock the record");
    let skipped = checks(agent, "skipped");
    sh(&["ip", "-n", &s.netns, "link", "set", "net1", "up"]);
    let more = common::wait_for(DEADLINE, || checks(agent, "skipped") >= skipped + 2.0);
    assert!(more, "the held record was not skipped: {}", agent.log());
    assert_eq!(
        condition(c, pod).map(|x| x.1).as_deref(),
        Some("LinkDown"),
        "a held record was checked"
    );
    drop(held);
    wait_condition(c, agent, pod, "True", Some("NetworksReady"));
}

#[test]
fn with_the_flag_the_delegates_own_check_runs_and_its_failure_is_check_failed() {
    let c = Cluster::new("ah4", 246);
    // A delegate whose CHECK fails while a marker file exists; its ADD makes net1 (a veth).
    let marker = c.env.dir.join("judge-says-no");
    c.env.write_plugin(
        "pxjudge",
        &format!(
            r#"cat > /dev/null
case "$CNI_COMMAND" in
ADD) nsenter --net="$CNI_NETNS" ip link add "$CNI_IFNAME" type veth peer name "j$$" >&2 &&
     nsenter --net="$CNI_NETNS" ip link set "$CNI_IFNAME" up >&2 &&
     echo '{{"cniVersion":"1.0.0","interfaces":[],"ips":[]}}' ;;
CHECK) if [ -e '{}' ]; then
         echo '{{"cniVersion":"1.0.0","code":999,"msg":"the judge says no"}}'; exit 1
       fi ;;
VERSION) echo '{{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}}' ;;
esac"#,
            marker.display()
        ),
    );
    // The agent finds delegates in binDir only (it has no CNI_PATH): the test's, with the
    // reference plugins the cluster network uses.
    for p in ["bridge", "host-local"] {
        std::os::unix::fs::symlink(
            format!("{}/{p}", common::ref_bin()),
            c.env.bin_dir().join(p),
        )
        .expect("link a reference plugin");
    }
    let mut conf = c.conf();
    conf["binDir"] = serde_json::json!(c.env.bin_dir());
    c.put_nad(
        "ns",
        "jd",
        Some(&serde_json::json!({"cniVersion": "1.0.0", "type": "pxjudge"})),
    );
    let pod = Pod::new("ns", "p");
    put_pod_on(&c, &pod, NODE, &[(NETWORKS, "jd")]);
    let agent = Agent::start(
        &c,
        &conf,
        &["--health-interval-seconds=1", "--health-delegate-check"],
    );
    agent.wait_for_pod(&pod);
    let netns = c.env.add_pod();
    c.cni("ADD", "ctr-ah4", &netns, &pod, &conf).ok();
    wait_condition(&c, &agent, &pod, "True", Some("NetworksReady"));
    std::fs::write(&marker, "").expect("marker");
    wait_condition(&c, &agent, &pod, "False", Some("CheckFailed"));
    let (_, _, message) = condition(&c, &pod).unwrap();
    assert!(
        message.contains("ns/jd")
            && message.contains("net1")
            && message.contains("the judge says no"),
        "{message}"
    );
    std::fs::remove_file(&marker).expect("remove the marker");
    wait_condition(&c, &agent, &pod, "True", Some("NetworksReady"));
}

#[test]
fn a_new_pod_is_checked_as_soon_as_its_add_is_done_not_a_whole_interval_later() {
    // The first round ran before the ADD; the next is an hour away.
    let s = setup("ah5", 245, "--health-interval-seconds=3600");
    wait_condition(&s.c, &s.agent, &s.pod, "True", Some("NetworksReady"));
}

#[test]
fn plexus_check_and_the_agent_say_the_same_with_the_same_code() {
    let s = setup("ah6", 244, "--health-interval-seconds=1");
    let (c, agent, pod) = (&s.c, &s.agent, &s.pod);
    wait_condition(c, agent, pod, "True", Some("NetworksReady"));
    c.cni("CHECK", "ctr-ah6", &s.netns, pod, &s.conf).ok();
    sh(&["ip", "-n", &s.netns, "link", "set", "net1", "down"]);
    wait_condition(c, agent, pod, "False", Some("LinkDown"));
    let (_, message) = c.cni("CHECK", "ctr-ah6", &s.netns, pod, &s.conf).err();
    let (_, _, condition_message) = condition(c, pod).unwrap();
    assert!(
        message.contains("ns/mv")
            && message.contains("net1")
            && message.contains("the interface is down"),
        "CHECK: {message}"
    );
    assert!(
        condition_message.contains("the interface is down"),
        "{condition_message}"
    );
}

#[test]
fn a_restarted_agent_neither_rewrites_the_condition_nor_repeats_its_events() {
    let Setup {
        c,
        agent,
        pod,
        netns,
        conf: _,
    } = setup("ah7", 243, "--health-interval-seconds=1");
    wait_condition(&c, &agent, &pod, "True", Some("NetworksReady"));
    sh(&["ip", "-n", &netns, "link", "set", "net1", "down"]);
    wait_condition(&c, &agent, &pod, "False", Some("LinkDown"));
    let status_patches = || c.api.count("PATCH", &pod.status_path());
    let warnings = || {
        c.api
            .events()
            .iter()
            .filter(|e| e["reason"] == "NetworkUnhealthy")
            .count()
    };
    // Its event follows the PATCH.
    assert!(
        common::wait_for(DEADLINE, || warnings() == 1),
        "{:#?}",
        c.api.events()
    );
    let (written, warned) = (status_patches(), warnings());
    // The agent is replaced (a DaemonSet rollout): the new one finds the pod as it was left.
    drop(agent);
    let agent = Agent::start(&c, &c.conf(), &["--health-interval-seconds=1"]);
    agent.wait_for_pod(&pod);
    let rounds = common::wait_for(DEADLINE, || checks(&agent, "LinkDown") >= 3.0);
    assert!(rounds, "the new agent did not check: {}", agent.log());
    assert_eq!(
        status_patches(),
        written,
        "the same condition was written again"
    );
    assert_eq!(warnings(), warned, "the same breakage was reported again");
    // A real change is still written, with its event.
    sh(&["ip", "-n", &netns, "link", "set", "net1", "up"]);
    wait_condition(&c, &agent, &pod, "True", Some("NetworksReady"));
    assert_eq!(status_patches(), written + 1);
}
