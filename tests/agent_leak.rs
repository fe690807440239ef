//! The leak collector never touches a live pod: each guard alone keeps a record (cache not
//! synced, pod cached, too young, netns still there, the direct GET finding the pod or
//! failing, no pod to ask about); only a record whose every guard says "gone" is DELeted, through
//! the engine as the runtime would (the delegate's DEL runs, the record goes), with an event
//! on the Node. Real journal files, a real delegate binary, a real netns, the test API server
//! watched through kube-rs.

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{ADD_OK, TestEnv, scripted_plugin};
use plexus::agent::cache::{self, Caches};
use plexus::agent::leak::{Collector, Kept, Outcome};
use plexus::agent::metrics::Metrics;
use plexus::journal::Journal;
use plexus::k8s::client::Api;
use plexus::txn::{PodId, Record, Step};
use plexus_testapi::{Fault, FaultKind, TestApiServer};
use serde_json::json;

const NODE: &str = "node-a";
const GRACE: Duration = Duration::from_secs(600);

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A complete record of container `id` whose one step runs the test plugin `plugin`.
fn record(id: &str, netns: &str, pod: Option<(&str, &str)>, created: u64, plugin: &str) -> Record {
    let mut rec = Record::new(
        id,
        netns,
        "eth0",
        "IgnoreUnknown=1",
        pod.map(|(name, uid)| PodId {
            namespace: "ns".into(),
            name: name.into(),
            uid: Some(uid.into()),
        }),
        created,
    );
    let step: Step = serde_json::from_value(json!({
        "network": "leaky", "ifname": "eth0", "origin": "cluster",
        "conf": {"cniVersion": "1.0.0", "name": "leaky", "type": plugin},
        "state": "added", "result": {"cniVersion": "1.0.0", "interfaces": [], "ips": []},
    }))
    .unwrap();
    rec.steps.push(step);
    rec.complete = true;
    rec
}

fn pod(api: &TestApiServer, name: &str, uid: &str, node: &str) {
    api.put_pod(
        json!({"metadata": {"name": name, "namespace": "ns", "uid": uid},
        "spec": {"nodeName": node}}),
    );
}

#[test]
#[allow(clippy::too_many_lines)] // one table, its setup and its checks
fn the_leak_collector_releases_only_what_every_guard_says_is_gone() {
    let env = TestEnv::new("lk1", 220);
    let api = TestApiServer::start().unwrap();
    let kubeconfig = env.dir.join("kubeconfig");
    api.write_kubeconfig(&kubeconfig).unwrap();
    let journal_dir = env.journal_dir();
    let conflist = env.dir.join("00-00-plexus.conflist");
    std::fs::write(
        &conflist,
        json!({"cniVersion": "1.0.0", "name": "plexus-cni-network", "plugins": [{
            "type": "plexus", "cniDir": journal_dir, "binDir": env.bin_dir(),
            "logToStderr": false}]})
        .to_string(),
    )
    .unwrap();
    let live_netns = format!("/run/netns/{}", env.add_pod());
    let gone_netns = "/run/netns/plexus-test-no-such-netns";
    let old = now() - GRACE.as_secs() - 60;
    // (container, netns, pod (name, uid), created, what the pass must do)
    let rows: Vec<(&str, &str, Option<(&str, &str)>, u64, Outcome)> = vec![
        (
            "live",
            gone_netns,
            Some(("live", "u-live")),
            old,
            Outcome::Kept(Kept::InCache),
        ),
        (
            "young",
            gone_netns,
            Some(("young", "u-young")),
            now(),
            Outcome::Kept(Kept::TooYoung),
        ),
        (
            "netns",
            &live_netns,
            Some(("netns", "u-netns")),
            old,
            Outcome::Kept(Kept::NetnsExists),
        ),
        (
            "moved",
            gone_netns,
            Some(("moved", "u-moved")),
            old,
            Outcome::Kept(Kept::PodExists),
        ),
        (
            "apierr",
            gone_netns,
            Some(("apierr", "u-apierr")),
            old,
            Outcome::Kept(Kept::ApiError),
        ),
        ("nopod", gone_netns, None, old, Outcome::Kept(Kept::NoPod)),
        (
            "replaced",
            gone_netns,
            Some(("replaced", "u-old")),
            old,
            Outcome::Released,
        ),
        (
            "gone",
            gone_netns,
            Some(("gone", "u-gone")),
            old,
            Outcome::Released,
        ),
    ];
    // The API: `live` on this node; `moved` and a new `replaced` on another (not cached);
    // `apierr` cannot be read; the others are gone.
    pod(&api, "live", "u-live", NODE);
    pod(&api, "moved", "u-moved", "node-b");
    pod(&api, "replaced", "u-new", "node-b");
    api.set_fault(Fault {
        method: Some("GET".into()),
        path_prefix: "/api/v1/namespaces/ns/pods/apierr".into(),
        kind: FaultKind::Status(503),
        times: None,
    });
    let journal = Journal::new(&journal_dir);
    for (id, netns, p, created, _) in &rows {
        scripted_plugin(&env, &format!("leaky-{id}"), ADD_OK);
        let held = journal.lock(id).unwrap();
        plexus::txn::write(
            &held,
            &record(id, netns, *p, *created, &format!("leaky-{id}")),
        )
        .unwrap();
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let metrics = Arc::new(Metrics::new());
        let client = plexus::agent::api::client(Some(&kubeconfig), metrics.clone())
            .await
            .unwrap();
        let collector = |caches: Arc<Caches>| Collector {
            conflist: conflist.clone(),
            node: NODE.into(),
            grace: GRACE,
            caches,
            api: Api::from_client(
                client.clone(),
                Duration::from_secs(2),
                Duration::from_secs(3),
            ),
            metrics: metrics.clone(),
        };
        // Before the pod cache has synced, nothing at all.
        let unsynced = collector(Arc::new(Caches::default())).pass().await.unwrap();
        assert_eq!(unsynced.len(), rows.len());
        assert!(
            unsynced
                .iter()
                .all(|(_, o)| *o == Outcome::Kept(Kept::NotSynced)),
            "{unsynced:?}"
        );
        let caches = Arc::new(Caches::default());
        let on_error: cache::OnError = Arc::new(|_, e| panic!("watch failed: {e}"));
        let watch = tokio::spawn(cache::watch_pods(
            client.clone(),
            NODE.into(),
            caches.clone(),
            on_error,
        ));
        assert!(
            caches
                .wait_until(Duration::from_secs(60), |c| c.pod_state().synced)
                .await
        );
        let outcomes = collector(caches).pass().await.unwrap();
        watch.abort();
        let want: Vec<(String, Outcome)> = {
            let mut w: Vec<_> = rows
                .iter()
                .map(|(id, _, _, _, o)| (id.to_string(), o.clone()))
                .collect();
            w.sort();
            w
        };
        let mut got = outcomes;
        got.sort();
        assert_eq!(got, want);
    });
    // What a user checks: the DEL ran for the two gone pods only, their records are gone, the
    // others' stay, and the Node says what happened.
    let log = std::fs::read_to_string(env.dir.join("calls.log")).unwrap_or_default();
    let mut dels: Vec<&str> = log.lines().filter(|l| l.starts_with("DEL")).collect();
    dels.sort_unstable();
    assert_eq!(
        dels,
        vec!["DEL eth0 leaky-gone", "DEL eth0 leaky-replaced"],
        "{log}"
    );
    let mut left = journal.list().unwrap();
    left.sort();
    assert_eq!(
        left,
        vec!["apierr", "live", "moved", "netns", "nopod", "young"]
    );
    let events = api.events();
    assert_eq!(events.len(), 2, "{events:?}");
    for e in &events {
        assert_eq!(e["involvedObject"]["kind"], "Node");
        assert_eq!(e["involvedObject"]["name"], NODE);
        assert_eq!(e["reason"], "LeakedAttachmentReleased");
    }
}
