//! Kubernetes, end to end, with the API server misbehaving: down during ADD (error 11 within the
//! configured budget, nothing left), down during DEL (DEL works from the journal alone), 5xx
//! then success (retried), 4xx (not retried), slow answers within the budget, a failing status
//! write (everything rolled back, error 11) and a pod that is gone.

mod common;

use common::k8s::{Cluster, NETWORKS, Pod, nad_path};
use plexus_testapi::{Fault, FaultKind};
use serde_json::{Value, json};
use std::time::Duration;

/// The pod `default/f` asking for `default/macvlan-a` (10.o.1.0/24) on `data0`.
fn setup(tag: &str, octet: u8) -> (Cluster, Pod) {
    let c = Cluster::new(tag, octet);
    c.put_nad("default", "macvlan-a", Some(&c.macvlan(1)));
    let pod = Pod::new("default", "f");
    c.put_pod(&pod, &[(NETWORKS, "macvlan-a@data0")]);
    (c, pod)
}

/// A config with a short per-request timeout and retry budget.
fn tight(c: &Cluster, timeout: f64, budget: f64) -> Value {
    let mut conf = c.conf();
    conf["apiTimeoutSeconds"] = json!(timeout);
    conf["apiRetryBudgetSeconds"] = json!(budget);
    conf
}

fn fault(method: &str, path: &str, kind: FaultKind, times: Option<u32>) -> Fault {
    Fault {
        method: Some(method.into()),
        path_prefix: path.into(),
        kind,
        times,
    }
}

/// ADD succeeds with eth0 and data0 and a network-status of two entries.
fn assert_attached(c: &Cluster, netns: &str, pod: &Pod) {
    assert_eq!(c.ifnames(netns), ["data0", "eth0"]);
    let status = c.network_status(pod);
    assert_eq!(status.len(), 2, "{status:?}");
    common::k8s::assert_one_default(&status, "eth0");
}

#[test]
fn server_down_on_add_fails_with_try_again_later_within_the_budget() {
    let (c, pod) = setup("kdwa", 130);
    let netns = c.env.add_pod();
    let id = format!("c{}", c.env.uid);
    let conf = tight(&c, 0.5, 2.0);
    c.api.set_down(true);

    let out = c.cni("ADD", &id, &netns, &pod, &conf);

    let msg = out.err_code(11);
    assert!(
        out.elapsed < Duration::from_secs(5),
        "ADD must give up within the 2 s budget (plus start-up), took {:?}",
        out.elapsed
    );
    let tries = c.count_exact("GET", &pod.path());
    assert!(
        tries >= 2,
        "a dropped connection is retried within the budget; requests: {:?}",
        c.request_log()
    );
    assert!(msg.contains(&pod.name), "the message names the pod: {msg}");
    assert!(
        msg.contains("connection closed"),
        "the message gives the cause under kube's \"client error\": {msg}"
    );
    c.env.assert_nothing_left();
    assert_eq!(c.ifnames(&netns), Vec::<String>::new());
}

#[test]
fn server_down_on_del_still_cleans_everything() {
    let (c, pod) = setup("kdwd", 131);
    let netns = c.env.add_pod();
    let id = format!("c{}", c.env.uid);
    let conf = tight(&c, 0.5, 2.0);
    c.cni("ADD", &id, &netns, &pod, &conf).ok();
    assert_attached(&c, &netns, &pod);
    assert!(!c.env.leases().is_empty());

    c.api.set_down(true);
    c.api.clear_requests();
    let out = c.cni("DEL", &id, &netns, &pod, &conf);
    out.ok();
    assert!(
        c.api.requests().is_empty(),
        "DEL works from the journal and needs no API request: {:?}",
        c.request_log()
    );
    c.env.assert_nothing_left();
}

#[test]
fn server_errors_are_retried_until_success() {
    let (c, pod) = setup("k5xx", 132);
    let netns = c.env.add_pod();
    let id = format!("c{}", c.env.uid);
    let conf = tight(&c, 1.0, 5.0);
    c.api
        .set_fault(fault("GET", &pod.path(), FaultKind::Status(500), Some(2)));
    c.api.set_fault(fault(
        "GET",
        &nad_path("default", "macvlan-a"),
        FaultKind::Status(503),
        Some(1),
    ));
    c.api
        .set_fault(fault("PATCH", &pod.status_path(), FaultKind::Drop, Some(1)));

    c.cni("ADD", &id, &netns, &pod, &conf).ok();

    assert_attached(&c, &netns, &pod);
    let log = c.request_log();
    assert_eq!(
        c.count_exact("GET", &pod.path()),
        3,
        "2 failures, 1 success: {log:?}"
    );
    assert_eq!(
        c.count_exact("GET", &nad_path("default", "macvlan-a")),
        2,
        "1 failure, 1 success: {log:?}"
    );
    assert_eq!(
        c.count_exact("PATCH", &pod.status_path()),
        2,
        "1 dropped, 1 success: {log:?}"
    );

    c.cni("DEL", &id, &netns, &pod, &conf).ok();
    c.env.assert_nothing_left();
}

#[test]
fn client_errors_are_not_retried() {
    let (c, pod) = setup("k4xx", 133);
    let netns = c.env.add_pod();
    let id = format!("c{}", c.env.uid);
    let conf = tight(&c, 1.0, 5.0);
    let nad = nad_path("default", "macvlan-a");
    c.api
        .set_fault(fault("GET", &nad, FaultKind::Status(403), None));

    let (code, msg) = c.cni("ADD", &id, &netns, &pod, &conf).err();

    assert_ne!(code, 11, "a 403 will not heal by retrying: {msg}");
    assert!(msg.contains("403"), "the message gives the status: {msg}");
    assert_eq!(
        c.count_exact("GET", &nad),
        1,
        "a 4xx is not retried: {:?}",
        c.request_log()
    );
    c.env.assert_nothing_left();
    c.assert_no_writes();
}

#[test]
fn slow_answers_within_the_budget_succeed() {
    let (c, pod) = setup("kslw", 134);
    let netns = c.env.add_pod();
    let id = format!("c{}", c.env.uid);
    let conf = tight(&c, 1.0, 4.0);
    // Every request answers late, but within the per-request timeout: no retry needed.
    c.api.set_fault(Fault {
        method: None,
        path_prefix: "/".into(),
        kind: FaultKind::Delay(Duration::from_millis(300)),
        times: None,
    });

    c.cni("ADD", &id, &netns, &pod, &conf).ok();

    assert_attached(&c, &netns, &pod);
    assert_eq!(
        c.count_exact("GET", &pod.path()),
        1,
        "{:?}",
        c.request_log()
    );
    assert_eq!(c.count_exact("PATCH", &pod.status_path()), 1);
    c.cni("DEL", &id, &netns, &pod, &conf).ok();
    c.env.assert_nothing_left();
}

#[test]
fn an_answer_slower_than_the_request_timeout_is_retried() {
    let (c, pod) = setup("ktmo", 135);
    let netns = c.env.add_pod();
    let id = format!("c{}", c.env.uid);
    let conf = tight(&c, 0.5, 4.0);
    c.api.set_fault(fault(
        "GET",
        &pod.path(),
        FaultKind::Delay(Duration::from_millis(1500)),
        Some(1),
    ));

    c.cni("ADD", &id, &netns, &pod, &conf).ok();

    assert_attached(&c, &netns, &pod);
    assert_eq!(
        c.count_exact("GET", &pod.path()),
        2,
        "the first GET timed out after 0.5 s and was retried: {:?}",
        c.request_log()
    );
    c.cni("DEL", &id, &netns, &pod, &conf).ok();
    c.env.assert_nothing_left();
}

#[test]
fn failing_status_write_rolls_everything_back() {
    let (c, pod) = setup("kpat", 136);
    let netns = c.env.add_pod();
    let id = format!("c{}", c.env.uid);
    let conf = tight(&c, 0.5, 2.0);
    c.api.set_fault(fault(
        "PATCH",
        &pod.status_path(),
        FaultKind::Status(500),
        None,
    ));

    let out = c.cni("ADD", &id, &netns, &pod, &conf);

    let msg = out.err_code(11);
    assert!(msg.contains("500"), "the message gives the status: {msg}");
    assert!(
        out.elapsed < Duration::from_secs(6),
        "gave up within the budget: {:?}",
        out.elapsed
    );
    assert!(c.count_exact("PATCH", &pod.status_path()) >= 2, "retried");
    assert!(!c.has_network_status(&pod));
    c.env.assert_nothing_left();
    assert_eq!(c.ifnames(&netns), Vec::<String>::new());

    // The runtime's follow-up DEL is harmless, and a retried ADD works once the server heals.
    c.cni("DEL", &id, &netns, &pod, &conf).ok();
    c.api.clear_faults();
    c.cni("ADD", &id, &netns, &pod, &conf).ok();
    assert_attached(&c, &netns, &pod);
    c.cni("DEL", &id, &netns, &pod, &conf).ok();
    c.env.assert_nothing_left();
}

#[test]
fn pod_gone_at_status_write_is_not_an_error() {
    let (c, pod) = setup("kgon", 137);
    let netns = c.env.add_pod();
    let id = format!("c{}", c.env.uid);
    let conf = c.conf();
    c.api.set_fault(fault(
        "PATCH",
        &pod.status_path(),
        FaultKind::Status(404),
        None,
    ));

    c.cni("ADD", &id, &netns, &pod, &conf).ok();

    assert_eq!(c.ifnames(&netns), ["data0", "eth0"]);
    assert_eq!(
        c.count_exact("PATCH", &pod.status_path()),
        1,
        "404 is final"
    );
    c.cni("DEL", &id, &netns, &pod, &conf).ok();
    c.env.assert_nothing_left();
}

/// Multus fails the ADD of a pod the API server does not know too: attaching only the cluster
/// network would leave the pod running without the networks its annotation asks for. The
/// runtime retries (code 11); nothing is left behind meanwhile.
#[test]
fn pod_not_found_fails_add_and_leaves_nothing() {
    let (c, pod) = setup("kdel", 138);
    common::conf::write_conf(
        &c.env,
        "20-macvlan-b.conf",
        &common::conf::macvlan_conf(&c.env, "macvlan-b", 2),
    );
    let mut conf = c.conf();
    conf["defaultNetworks"] = json!(["macvlan-b"]);
    c.api.delete_pod(&pod.namespace, &pod.name);
    let netns = c.env.add_pod();
    let id = format!("c{}", c.env.uid);

    let msg = c.cni("ADD", &id, &netns, &pod, &conf).err_code(11);

    assert!(
        msg.contains(&format!("pod {}/{} not found", pod.namespace, pod.name)),
        "{msg}"
    );
    assert!(
        c.ifnames(&netns).is_empty(),
        "nothing attached: {:?}",
        c.ifnames(&netns)
    );
    assert_eq!(
        c.count_exact("GET", &nad_path("default", "macvlan-a")),
        0,
        "the gone pod's selections are unknown: {:?}",
        c.request_log()
    );
    assert!(!c.has_network_status(&pod));
    c.env.assert_nothing_left();
}
