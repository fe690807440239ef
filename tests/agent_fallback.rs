//! The plugin never depends on the agent: for every reason it cannot use one (no socket, a
//! refused connection, no answer in time, another protocol version, an error or nonsense, caches
//! not synced, the pod not cached, another incarnation cached), ADD does exactly what it does
//! without an agent (the same API requests, the same result or the same error) and says why
//! in its report.

mod agent_support;
mod common;

use std::os::unix::net::{UnixDatagram, UnixListener};
use std::time::Duration;

use agent_support::{
    Agent, Fake, FakeAgent, NODE, agent_requests, ask_raw, calls, conf_with_agent, plugin_requests,
    put_pod_on,
};
use common::k8s::{Cluster, NETWORKS, Pod};
use plexus::agent::proto::{self, Ask, Fallback, Question, Reply};
use serde_json::{Value, json};

/// ADD then DEL of `pod` with `conf` as sandbox `id`: the ADD's interfaces (in the order of
/// network-status) and the API requests the plugin made for the ADD.
fn add_then_del(c: &Cluster, pod: &Pod, conf: &Value, id: &str) -> (Vec<String>, Vec<String>) {
    let netns = c.env.add_pod();
    c.api.clear_requests();
    c.cni("ADD", id, &netns, pod, conf).ok();
    let asked = calls(&plugin_requests(&c.api));
    let status = c.network_status(pod);
    let ifaces = status
        .iter()
        .map(|s| {
            format!(
                "{} {}",
                s["interface"].as_str().unwrap_or("?"),
                s["name"].as_str().unwrap_or("?")
            )
        })
        .collect();
    c.cni("DEL", id, &netns, pod, conf).ok();
    (ifaces, asked)
}

fn fixture(tag: &str, octet: u8) -> (Cluster, Pod) {
    let c = Cluster::new(tag, octet);
    c.put_nad("ns", "mv", Some(&c.macvlan(1)));
    let pod = Pod::new("ns", "p");
    put_pod_on(&c, &pod, NODE, &[(NETWORKS, "mv")]);
    (c, pod)
}

#[test]
fn a_missing_refusing_silent_foreign_or_broken_agent_changes_nothing() {
    let (c, pod) = fixture("fb1", 214);
    let mut direct = c.conf();
    direct["agentSocket"] = json!("");
    let (want_ifaces, want_calls) = add_then_del(&c, &pod, &direct, "ctr-direct");
    assert_eq!(
        want_calls,
        vec![
            "GET /api/v1/namespaces/ns/pods/p",
            "GET /apis/k8s.cni.cncf.io/v1/namespaces/ns/network-attachment-definitions/mv",
            "PATCH /api/v1/namespaces/ns/pods/p/status",
        ]
    );
    // No socket at all: no report either (nobody listens).
    let none = conf_with_agent(&c, &c.env.dir.join("nowhere").join("agent.sock"));
    assert_eq!(
        add_then_del(&c, &pod, &none, "ctr-none"),
        (want_ifaces.clone(), want_calls.clone())
    );
    // A socket nobody accepts on (the agent died), with its report socket still bound.
    let dead = c.env.dir.join("dead");
    std::fs::create_dir_all(&dead).unwrap();
    let socket = dead.join("agent.sock");
    drop(UnixListener::bind(&socket).unwrap());
    let reports = UnixDatagram::bind(proto::report_socket(&socket)).unwrap();
    reports
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let refused = conf_with_agent(&c, &socket);
    assert_eq!(
        add_then_del(&c, &pod, &refused, "ctr-refused"),
        (want_ifaces.clone(), want_calls.clone())
    );
    let mut buf = vec![0u8; proto::MAX_REPORT];
    let n = reports.recv(&mut buf).unwrap();
    let add: proto::Report = serde_json::from_slice(&buf[..n]).unwrap();
    assert_eq!(
        add.fallbacks,
        vec![Fallback::Refused; 3],
        "pod, NADs, status: {add:?}"
    );
    let rows: Vec<(&str, Fake, Fallback)> = vec![
        ("silent", Fake::Silent, Fallback::Deadline),
        (
            "another protocol version",
            Fake::Says(r#"{"v":99,"answer":"pod","uid":"x","annotations":{}}"#.into()),
            Fallback::Version,
        ),
        (
            "an error",
            Fake::Says(r#"{"v":1,"answer":"error","message":"boom"}"#.into()),
            Fallback::AgentError,
        ),
        ("nonsense", Fake::Says("hello".into()), Fallback::AgentError),
        (
            "the wrong answer",
            Fake::Says(r#"{"v":1,"answer":"nads","nads":[]}"#.into()),
            Fallback::AgentError,
        ),
    ];
    for (i, (name, fake, why)) in rows.into_iter().enumerate() {
        let fake = FakeAgent::start(&c.env.dir.join(format!("fake{i}")), fake);
        let conf = conf_with_agent(&c, &fake.socket);
        let got = add_then_del(&c, &pod, &conf, &format!("ctr-fake{i}"));
        assert_eq!(got, (want_ifaces.clone(), want_calls.clone()), "{name}");
        let add = fake.report();
        assert_eq!(add.verb, "ADD", "{name}");
        assert!(add.fallbacks.first() == Some(&why), "{name}: {add:?}");
        assert!(
            fake.questions.lock().unwrap()[0].contains(r#""op":"pod""#),
            "{name}: the plugin asked for the pod first"
        );
    }
}

/// The `reason` count of the agent's `plexus_plugin_fallbacks_total`.
fn fallbacks(agent: &Agent, why: Fallback) -> f64 {
    agent
        .metric("plexus_plugin_fallbacks_total", &[("reason", why.as_str())])
        .unwrap_or(0.0)
}

#[test]
fn an_unsynced_agent_sends_the_plugin_to_the_api_and_is_not_ready() {
    let (c, pod) = fixture("fb2", 215);
    c.api.fail_lists(u32::MAX, 500);
    let agent = Agent::start(&c, &c.conf(), &[]);
    let conf = conf_with_agent(&c, &agent.socket);
    let (code, text) = agent.http("/readyz");
    assert_eq!(code, 503, "{text}");
    assert!(text.contains("the pod cache has not synced"), "{text}");
    let (ifaces, asked) = add_then_del(&c, &pod, &conf, "ctr-fb2");
    assert_eq!(ifaces, vec!["eth0 px-cluster", "net1 ns/mv"]);
    assert_eq!(
        asked,
        vec![
            "GET /api/v1/namespaces/ns/pods/p",
            "GET /apis/k8s.cni.cncf.io/v1/namespaces/ns/network-attachment-definitions/mv",
        ],
        "the agent still sent the PATCH"
    );
    assert_eq!(fallbacks(&agent, Fallback::NotSynced), 2.0, "pod and NADs");
}

#[test]
fn a_pod_the_agent_has_not_seen_is_read_from_the_api() {
    let (c, pod) = fixture("fb3", 216);
    // Scheduled on another node: never in this agent's cache.
    let elsewhere = Pod::new("ns", "q");
    put_pod_on(&c, &elsewhere, "node-b", &[(NETWORKS, "mv")]);
    let agent = Agent::start(&c, &c.conf(), &[]);
    let conf = conf_with_agent(&c, &agent.socket);
    agent.wait_for_pod(&pod);
    agent.wait_for_nad("ns", "mv");
    let (ifaces, asked) = add_then_del(&c, &elsewhere, &conf, "ctr-fb3");
    assert_eq!(ifaces, vec!["eth0 px-cluster", "net1 ns/mv"]);
    assert_eq!(
        asked,
        vec!["GET /api/v1/namespaces/ns/pods/q"],
        "NADs and PATCH by the agent"
    );
    assert_eq!(fallbacks(&agent, Fallback::NotCached), 1.0);
}

#[test]
fn another_incarnation_in_the_cache_fails_exactly_as_without_an_agent() {
    let (c, pod) = fixture("fb4", 217);
    let agent = Agent::start(&c, &c.conf(), &[]);
    agent.wait_for_pod(&pod);
    // The runtime creates the sandbox of a pod with another UID than the API has.
    let replaced = Pod {
        uid: "uid-of-a-newer-pod".into(),
        ..pod.clone()
    };
    let netns = c.env.add_pod();
    let mut direct = c.conf();
    direct["agentSocket"] = json!("");
    let want = c.cni("ADD", "ctr-fb4a", &netns, &replaced, &direct).err();
    c.api.clear_requests();
    let conf = conf_with_agent(&c, &agent.socket);
    let got = c.cni("ADD", "ctr-fb4b", &netns, &replaced, &conf).err();
    assert_eq!(got.0, want.0);
    assert_eq!(got.1.replace("ctr-fb4b", "ctr-fb4a"), want.1);
    assert_eq!(
        calls(&plugin_requests(&c.api)),
        vec!["GET /api/v1/namespaces/ns/pods/p"]
    );
    assert_eq!(fallbacks(&agent, Fallback::UidMismatch), 1.0);
    c.env.assert_nothing_left();
}

#[test]
fn the_agent_refuses_a_protocol_it_does_not_speak() {
    let (c, _pod) = fixture("fb5", 218);
    let agent = Agent::start(&c, &c.conf(), &[]);
    let future = Ask {
        v: proto::VERSION + 1,
        wait_ms: 0,
        question: Question::Pod {
            namespace: "ns".into(),
            name: "p".into(),
            uid: None,
        },
    };
    match ask_raw(&agent.socket, &future) {
        Reply::Error { message } => assert!(message.contains("not spoken here"), "{message}"),
        other => panic!("{other:?}"),
    }
    assert!(agent_requests(&c.api).iter().all(|r| r.method == "GET"));
}
