//! The agent's caches follow the API server as a cluster's would be followed: synced from a
//! list, kept by a watch, resumed after dropped watches without a re-list, re-listed after
//! `410 Gone` (a failed re-list retried), through the real binary and kube-rs.

mod agent_support;
mod common;

use std::time::Duration;

use agent_support::{Agent, NODE, agent_requests, put_pod_on};
use common::k8s::{Cluster, Pod};
use plexus::agent::proto::{Fallback, Question, Reply};

fn pod_lists(c: &Cluster) -> usize {
    agent_requests(&c.api)
        .iter()
        .filter(|r| r.path == "/api/v1/pods" && !r.query.contains("watch"))
        .count()
}

#[test]
fn the_caches_follow_dropped_watches_and_relists() {
    let c = Cluster::new("ac1", 219);
    let a = Pod::new("ns", "a");
    put_pod_on(&c, &a, NODE, &[]);
    put_pod_on(&c, &Pod::new("ns", "other"), "node-b", &[]);
    c.put_nad("ns", "n1", None);
    let agent = Agent::start(&c, &c.conf(), &[]);
    agent.wait_for_pod(&a);
    agent.wait_for_nad("ns", "n1");
    let (code, ready) = agent.http("/readyz");
    assert_eq!(code, 200, "{ready}");
    let not_cached = |p: &Pod| {
        agent.ask(
            Question::Pod {
                namespace: p.namespace.clone(),
                name: p.name.clone(),
                uid: None,
            },
            Duration::ZERO,
        )
    };
    assert_eq!(
        not_cached(&Pod::new("ns", "other")),
        Reply::Unknown {
            reason: Fallback::NotCached
        },
        "only this node's pods"
    );
    assert_eq!(pod_lists(&c), 1);
    // A dropped watch resumes from where it was: what changed meanwhile arrives, no re-list.
    c.api.drop_watches();
    let b = Pod::new("ns", "b");
    put_pod_on(&c, &b, NODE, &[]);
    c.put_nad("ns", "n2", None);
    agent.wait_for_pod(&b);
    agent.wait_for_nad("ns", "n2");
    assert_eq!(pod_lists(&c), 1, "resumed, not re-listed");
    // The history is compacted past the agent's revision while its watches are down: the
    // resumed watches get 410 Gone, the first two re-lists (of pods or NADs) fail, the next
    // ones bring the truth.
    put_pod_on(&c, &Pod::new("ns", "moves-the-revision"), "node-b", &[]);
    c.api.compact();
    c.api.fail_lists(2, 500);
    c.api.drop_watches();
    c.api.delete_pod("ns", "a");
    let d = Pod::new("ns", "d");
    put_pod_on(&c, &d, NODE, &[]);
    agent.wait_for_pod(&d);
    assert_eq!(
        not_cached(&a),
        Reply::Unknown {
            reason: Fallback::NotCached
        },
        "a was deleted before d was created"
    );
    assert!(
        pod_lists(&c) >= 3,
        "the list, the failed re-list, the re-list"
    );
    let (_, text) = agent.http("/metrics");
    let m = |name, labels: &[(&str, &str)]| agent_support::metric(&text, name, labels);
    assert!(
        m("plexus_agent_watch_errors_total", &[("kind", "pods")]) >= Some(2.0),
        "{text}"
    );
    assert_eq!(
        m("plexus_agent_cache_synced", &[("kind", "pods")]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        m("plexus_agent_cache_objects", &[("kind", "pods")]),
        Some(2.0),
        "b and d: {text}"
    );
    assert!(
        m(
            "plexus_agent_api_requests_total",
            &[("verb", "list"), ("code", "500")]
        ) >= Some(1.0),
        "{text}"
    );
    // Stopping: the socket goes.
    let socket = agent.socket.clone();
    assert!(agent.stop().success());
    assert!(!socket.exists());
}
