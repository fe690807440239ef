//! The node agent with the real plugin: ADD served from the agent's caches (no API request by
//! the plugin, one PATCH by the agent), metrics of what happened, DEL never asking the agent,
//! and 50 ADDs at once served by one agent. Real binaries in a test node netns, the test API
//! server as the cluster.

mod agent_support;
mod common;

use agent_support::{
    Agent, FakeAgent, NODE, agent_requests, calls, conf_with_agent, plugin_requests, put_pod_on,
};
use common::k8s::{Cluster, NETWORKS, Pod};
use plexus::agent::proto::Fallback;
use serde_json::json;

/// The agent's requests that are not its watches.
fn agent_calls(c: &Cluster) -> Vec<String> {
    let reqs: Vec<_> = agent_requests(&c.api)
        .into_iter()
        .filter(|r| !r.query.contains("watch"))
        .collect();
    calls(&reqs)
}

/// A cluster with NAD ns/mv and pod ns/p (selecting it) on this node, the agent up and caching
/// the pod; the plugin's config asks the agent.
fn one_pod_and_agent(tag: &str, octet: u8) -> (Cluster, Pod, Agent, serde_json::Value) {
    let c = Cluster::new(tag, octet);
    c.put_nad("ns", "mv", Some(&c.macvlan(1)));
    let pod = Pod::new("ns", "p");
    put_pod_on(&c, &pod, NODE, &[(NETWORKS, "mv")]);
    let agent = Agent::start(&c, &c.conf(), &[]);
    let conf = conf_with_agent(&c, &agent.socket);
    agent.wait_for_pod(&pod);
    (c, pod, agent, conf)
}

#[test]
fn with_the_agent_up_add_asks_the_api_nothing_and_the_agent_patches_once() {
    let (c, pod, agent, conf) = one_pod_and_agent("ag1", 210);
    agent.wait_for_nad("ns", "mv");
    c.api.clear_requests();
    let netns = c.env.add_pod();
    c.cni("ADD", "ctr-ag1", &netns, &pod, &conf).ok();
    assert_eq!(
        calls(&plugin_requests(&c.api)),
        Vec::<String>::new(),
        "the plugin opened no API connection"
    );
    assert_eq!(
        agent_calls(&c),
        vec!["PATCH /api/v1/namespaces/ns/pods/p/status"],
        "the agent sent the network-status"
    );
    let status = c.network_status(&pod);
    let names: Vec<&str> = status.iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(names, vec!["px-cluster", "ns/mv"], "{status:?}");
    assert_eq!(status[1]["interface"], "net1");
    assert_metrics_of_one_add(&agent);
    // DEL works from the journal and never asks the agent anything.
    let answered = |a: &Agent| {
        let (_, t) = a.http("/metrics");
        agent_support::metric(&t, "plexus_agent_socket_requests_total", &[("op", "pod")])
    };
    let before = answered(&agent);
    c.cni("DEL", "ctr-ag1", &netns, &pod, &conf).ok();
    assert_eq!(answered(&agent), before);
    assert_eq!(calls(&plugin_requests(&c.api)), Vec::<String>::new());
    let (_, text) = agent.http("/metrics");
    assert_eq!(
        agent_support::metric(
            &text,
            "plexus_cni_calls_total",
            &[("verb", "DEL"), ("result", "success")]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        agent_support::metric(&text, "plexus_journal_records", &[]),
        Some(0.0)
    );
    assert!(!text.contains("plexus_pod_interface_info{"), "{text}");
    assert_eq!(agent.http("/healthz").0, 200);
    let (code, ready) = agent.http("/readyz");
    assert_eq!(code, 200, "{ready}");
}

/// What `/metrics` says after one successful ADD of pod `ns/p` with NAD `ns/mv` on `net1`.
fn assert_metrics_of_one_add(agent: &Agent) {
    let (code, text) = agent.http("/metrics");
    assert_eq!(code, 200);
    let m = |name, labels: &[(&str, &str)]| agent_support::metric(&text, name, labels);
    assert_eq!(
        m(
            "plexus_cni_calls_total",
            &[("verb", "ADD"), ("result", "success")]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        m(
            "plexus_attachment_calls_total",
            &[
                ("verb", "ADD"),
                ("network", "ns/mv"),
                ("plugin", "macvlan"),
                ("result", "success")
            ]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        m(
            "plexus_attachment_duration_seconds_count",
            &[("verb", "ADD"), ("network", "ns/mv")]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        m(
            "plexus_pod_interface_info",
            &[
                ("namespace", "ns"),
                ("pod", "p"),
                ("interface", "net1"),
                ("network", "ns/mv")
            ]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(m("plexus_journal_records", &[]), Some(1.0), "{text}");
    assert_eq!(
        m(
            "plexus_agent_api_requests_total",
            &[("verb", "patch"), ("code", "200")]
        ),
        Some(1.0),
        "{text}"
    );
    for f in Fallback::ALL {
        assert_eq!(
            m("plexus_plugin_fallbacks_total", &[("reason", f.as_str())]),
            Some(0.0),
            "{text}"
        );
    }
    assert!(!text.contains("ctr-ag1"), "no container ids in labels");
}

#[test]
fn a_failed_add_is_counted_by_code_and_its_rollback_by_outcome() {
    let c = Cluster::new("ag2", 211);
    c.put_nad(
        "ns",
        "broken",
        Some(&json!({"cniVersion": "1.0.0", "type": "no-such-plugin"})),
    );
    let pod = Pod::new("ns", "p");
    put_pod_on(&c, &pod, NODE, &[(NETWORKS, "broken")]);
    let agent = Agent::start(&c, &c.conf(), &[]);
    let conf = conf_with_agent(&c, &agent.socket);
    agent.wait_for_pod(&pod);
    let netns = c.env.add_pod();
    let (code, msg) = c.cni("ADD", "ctr-ag2", &netns, &pod, &conf).err();
    assert!(msg.contains("rolled back cleanly"), "{msg}");
    let (_, text) = agent.http("/metrics");
    let m = |name, labels: &[(&str, &str)]| agent_support::metric(&text, name, labels);
    assert_eq!(
        m(
            "plexus_cni_calls_total",
            &[("verb", "ADD"), ("result", "error")]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        m(
            "plexus_cni_failures_total",
            &[("verb", "ADD"), ("code", &code.to_string())]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        m("plexus_rollbacks_total", &[("outcome", "clean")]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        m(
            "plexus_attachment_calls_total",
            &[
                ("verb", "DEL"),
                ("network", "px-cluster"),
                ("result", "success")
            ]
        ),
        Some(1.0),
        "the cluster network's rollback: {text}"
    );
    assert_eq!(
        m(
            "plexus_attachment_calls_total",
            &[
                ("verb", "ADD"),
                ("network", "ns/broken"),
                ("plugin", "no-such-plugin"),
                ("result", "error")
            ]
        ),
        Some(1.0),
        "{text}"
    );
    c.env.assert_nothing_left();
}

#[test]
fn del_never_asks_the_agent_and_only_reports() {
    let c = Cluster::new("ag3", 212);
    let fake = FakeAgent::start(&c.env.dir.join("fake"), agent_support::Fake::Silent);
    let mut conf = conf_with_agent(&c, &fake.socket);
    conf["addedInterfaceEvents"] = json!(false);
    let pod = Pod::new("ns", "p");
    c.put_pod(&pod, &[]);
    let netns = c.env.add_pod();
    // ADD through the silent agent (it falls back at its deadline), then DEL.
    c.cni("ADD", "ctr-ag3", &netns, &pod, &conf).ok();
    let add = fake.report();
    assert_eq!(add.verb, "ADD");
    assert!(add.fallbacks.contains(&Fallback::Deadline), "{add:?}");
    let asked = fake.questions.lock().unwrap().len();
    c.cni("DEL", "ctr-ag3", &netns, &pod, &conf).ok();
    let del = fake.report();
    assert_eq!((del.verb.as_str(), del.code), ("DEL", None), "{del:?}");
    assert_eq!(del.steps.len(), 1, "the cluster network's DEL: {del:?}");
    assert_eq!(
        fake.questions.lock().unwrap().len(),
        asked,
        "DEL asked nothing"
    );
}

#[test]
fn fifty_parallel_adds_are_served_by_one_agent() {
    const PODS: usize = 50;
    let c = Cluster::new("ag4", 213);
    c.put_nad("ns", "mv", Some(&c.macvlan(1)));
    let pods: Vec<Pod> = (0..PODS)
        .map(|i| Pod::new("ns", &format!("p{i}")))
        .collect();
    for p in &pods {
        put_pod_on(&c, p, NODE, &[(NETWORKS, "mv")]);
    }
    let agent = Agent::start(&c, &c.conf(), &[]);
    let conf = conf_with_agent(&c, &agent.socket);
    for p in &pods {
        agent.wait_for_pod(p);
    }
    agent.wait_for_nad("ns", "mv");
    c.api.clear_requests();
    let netns: Vec<String> = (0..PODS).map(|_| c.env.add_pod()).collect();
    let running: Vec<_> = pods
        .iter()
        .zip(&netns)
        .enumerate()
        .map(|(i, (p, ns))| c.start_cni("ADD", &format!("ctr-ag4-{i}"), ns, p, &conf))
        .collect();
    for r in running {
        r.finish().ok();
    }
    for (p, ns) in pods.iter().zip(&netns) {
        let status = c.network_status(p);
        assert_eq!(status.len(), 2, "{}: {status:?}", p.name);
        assert!(common::link(ns, "net1").is_some(), "{} has net1", p.name);
    }
    // Every ADD got its pod from the agent or, when the agent did not answer in time, from the
    // API itself: none was left without, whatever the load.
    let (_, text) = agent.http("/metrics");
    let m =
        |name, labels: &[(&str, &str)]| agent_support::metric(&text, name, labels).unwrap_or(0.0);
    let pod_gets = plugin_requests(&c.api)
        .iter()
        .filter(|r| r.method == "GET" && r.path.contains("/pods/"))
        .count();
    let answered = m(
        "plexus_agent_socket_requests_total",
        &[("op", "pod"), ("answer", "pod")],
    );
    assert!(
        pod_gets as f64 + answered >= PODS as f64,
        "{pod_gets} pod GETs by the plugin, {answered} answers: {text}"
    );
    assert!(answered >= 1.0, "the agent answered: {text}");
    // Reports are best effort (a datagram may be dropped under a burst); counted ones are right.
    let reported = m(
        "plexus_cni_calls_total",
        &[("verb", "ADD"), ("result", "success")],
    );
    assert!((1.0..=PODS as f64).contains(&reported), "{text}");
    for (i, ns) in netns.iter().enumerate() {
        c.cni("DEL", &format!("ctr-ag4-{i}"), ns, &pods[i], &conf)
            .ok();
    }
}

#[test]
fn metrics_read_the_journal_the_conflist_names_now() {
    let (c, pod, agent, conf) = one_pod_and_agent("ag5", 232);
    let netns = c.env.add_pod();
    c.cni("ADD", "ctr-ag5", &netns, &pod, &conf).ok();
    let records = |a: &Agent| {
        let (_, t) = a.http("/metrics");
        agent_support::metric(&t, "plexus_journal_records", &[])
    };
    assert_eq!(records(&agent), Some(1.0));
    // The conflist is rewritten (a re-install with another cniDir): the next scrape reads the
    // journal it names now, not the one the agent saw at its start.
    let elsewhere = c.env.dir.join("other-journal");
    std::fs::create_dir_all(&elsewhere).expect("other journal dir");
    let mut moved = c.conf();
    moved["cniDir"] = json!(elsewhere);
    let list = json!({"cniVersion": moved["cniVersion"], "name": "plexus-cni-network",
        "plugins": [moved]});
    std::fs::write(&agent.conflist, list.to_string()).expect("rewrite conflist");
    assert_eq!(records(&agent), Some(0.0));
    c.cni("DEL", "ctr-ag5", &netns, &pod, &conf).ok();
}
