//! Lists and watches as kube-runtime's watcher drives them (what the node agent's caches use):
//! field selectors, pages, resuming from a revision, bookmarks, `410 Gone` and re-lists, and
//! the faults that force them.

use futures_util::StreamExt;
use kube::runtime::watcher::{self, Event as WatchEvent};

use super::*;

/// A pod on `node` in `ns`.
fn pod_on(name: &str, node: &str) -> Value {
    json!({"metadata": {"name": name, "namespace": "ns"}, "spec": {"nodeName": node}})
}

/// What a watcher event says, in a form a test compares: `("apply", "p1")`, `("init", "")`...
fn said(event: &kube::runtime::watcher::Result<WatchEvent<Pod>>) -> (String, String) {
    let name = |p: &Pod| p.metadata.name.clone().unwrap_or_default();
    match event {
        Ok(WatchEvent::Init) => ("init".into(), String::new()),
        Ok(WatchEvent::InitApply(p)) => ("init-apply".into(), name(p)),
        Ok(WatchEvent::InitDone) => ("init-done".into(), String::new()),
        Ok(WatchEvent::Apply(p)) => ("apply".into(), name(p)),
        Ok(WatchEvent::Delete(p)) => ("delete".into(), name(p)),
        Err(e) => ("error".into(), e.to_string()),
    }
}

/// The next `n` events of `stream`, as [`said`] gives them.
async fn next_n<S>(stream: &mut S, n: usize) -> Vec<(String, String)>
where
    S: futures_util::Stream<Item = kube::runtime::watcher::Result<WatchEvent<Pod>>> + Unpin,
{
    let mut out = Vec::new();
    for _ in 0..n {
        let event = stream.next().await.expect("the watcher never ends");
        out.push(said(&event));
    }
    out
}

fn pair(a: &str, b: &str) -> (String, String) {
    (a.to_string(), b.to_string())
}

#[test]
fn watcher_lists_pages_then_follows_its_node_only() {
    let (server, dir) = fixture();
    server.put_pod(pod_on("a", "n1"));
    server.put_pod(pod_on("b", "n2"));
    server.put_pod(pod_on("c", "n1"));
    let srv = &server;
    with_client(&server, &dir, |client| async move {
        let config = watcher::Config::default()
            .fields("spec.nodeName=n1")
            .page_size(1);
        let mut events = watcher::watcher(Api::<Pod>::all(client), config).boxed();
        assert_eq!(
            next_n(&mut events, 4).await,
            vec![
                pair("init", ""),
                pair("init-apply", "a"),
                pair("init-apply", "c"),
                pair("init-done", "")
            ]
        );
        srv.put_pod(pod_on("d", "n2"));
        srv.put_pod(pod_on("e", "n1"));
        srv.delete_pod("ns", "a");
        assert_eq!(
            next_n(&mut events, 2).await,
            vec![pair("apply", "e"), pair("delete", "a")],
            "nothing of node n2"
        );
    });
    let lists: Vec<Recorded> = server
        .requests()
        .into_iter()
        .filter(|r| r.path == "/api/v1/pods")
        .collect();
    assert_eq!(lists.len(), 3, "two pages then the watch: {lists:?}");
    assert!(lists[0].query.contains("limit=1"), "{:?}", lists[0]);
    assert!(lists[1].query.contains("continue="), "{:?}", lists[1]);
    assert!(lists[2].query.contains("watch=true"), "{:?}", lists[2]);
    assert!(
        lists
            .iter()
            .all(|r| r.query.contains("fieldSelector=spec.nodeName%3Dn1")),
        "{lists:?}"
    );
}

#[test]
fn dropped_watches_resume_from_the_last_revision_without_a_relist() {
    let (server, dir) = fixture();
    server.put_pod(pod_on("a", "n1"));
    let srv = &server;
    with_client(&server, &dir, |client| async move {
        let config = watcher::Config::default().fields("spec.nodeName=n1");
        let mut events = watcher::watcher(Api::<Pod>::all(client), config).boxed();
        assert_eq!(next_n(&mut events, 3).await.len(), 3);
        srv.put_pod(pod_on("b", "n1"));
        assert_eq!(next_n(&mut events, 1).await, vec![pair("apply", "b")]);
        let revision = srv.revision();
        srv.drop_watches();
        // Changed while no watch is open: the resumed watch replays it.
        srv.put_pod(pod_on("c", "n1"));
        srv.delete_pod("ns", "b");
        assert_eq!(
            next_n(&mut events, 2).await,
            vec![pair("apply", "c"), pair("delete", "b")]
        );
        let watches: Vec<Recorded> = srv
            .requests()
            .into_iter()
            .filter(|r| r.query.contains("watch=true"))
            .collect();
        assert_eq!(watches.len(), 2, "{watches:?}");
        assert!(
            watches[1]
                .query
                .contains(&format!("resourceVersion={revision}")),
            "resumed from the last revision seen: {watches:?}"
        );
    });
    assert_eq!(
        server
            .requests()
            .iter()
            .filter(|r| r.path == "/api/v1/pods" && !r.query.contains("watch"))
            .count(),
        1,
        "one list: a dropped watch needs no re-list"
    );
}

#[test]
fn bookmarks_move_the_revision_a_watch_resumes_from() {
    let (server, dir) = fixture();
    let srv = &server;
    with_client(&server, &dir, |client| async move {
        let config = watcher::Config::default().fields("spec.nodeName=n1");
        let mut events = watcher::watcher(Api::<Pod>::all(client), config).boxed();
        assert_eq!(next_n(&mut events, 2).await.len(), 2, "init, init-done");
        // An event of its own, so the watch is open and its revision is this pod's.
        srv.put_pod(pod_on("z", "n1"));
        assert_eq!(next_n(&mut events, 1).await, vec![pair("apply", "z")]);
        let listed = srv.revision();
        // Changes the watch does not select, then a bookmark saying how far the server is.
        srv.put_pod(pod_on("x", "n2"));
        srv.put_pod(pod_on("y", "n2"));
        srv.bookmark();
        let marked = srv.revision();
        assert!(marked > listed);
        srv.drop_watches();
        srv.put_pod(pod_on("w", "n1"));
        assert_eq!(next_n(&mut events, 1).await, vec![pair("apply", "w")]);
        let watches: Vec<Recorded> = srv
            .requests()
            .into_iter()
            .filter(|r| r.query.contains("watch=true"))
            .collect();
        assert!(
            watches[0].query.contains("allowWatchBookmarks=true"),
            "{watches:?}"
        );
        assert!(
            watches[1]
                .query
                .contains(&format!("resourceVersion={marked}")),
            "resumed from the bookmark, not from the last pod's {listed}: {watches:?}"
        );
    });
}

#[test]
fn gone_forces_a_relist_and_a_failed_relist_is_retried() {
    let (server, dir) = fixture();
    server.put_pod(pod_on("a", "n1"));
    server.put_pod(pod_on("b", "n1"));
    let srv = &server;
    with_client(&server, &dir, |client| async move {
        let config = watcher::Config::default().fields("spec.nodeName=n1");
        let mut events = watcher::watcher(Api::<Pod>::all(client), config).boxed();
        assert_eq!(next_n(&mut events, 4).await.len(), 4);
        // While the watch is down the history is compacted and a pod goes: only a list can
        // tell the client, and the first list fails.
        srv.drop_watches();
        srv.delete_pod("ns", "a");
        srv.compact();
        srv.fail_lists(1, 500);
        let got = next_n(&mut events, 6).await;
        assert_eq!(got[0].0, "error", "410 Gone: {got:?}");
        assert!(got[0].1.contains("too old resource version"), "{got:?}");
        assert_eq!(got[1], pair("init", ""));
        assert_eq!(got[2].0, "error", "the failed re-list: {got:?}");
        assert!(got[2].1.contains("500"), "{got:?}");
        assert_eq!(
            got[3..].to_vec(),
            vec![
                pair("init", ""),
                pair("init-apply", "b"),
                pair("init-done", "")
            ],
            "the retried list has only what exists"
        );
    });
}

#[test]
fn watch_from_no_revision_starts_with_what_exists() {
    let (server, dir) = fixture();
    server.put_pod(pod_on("a", "n1"));
    let srv = &server;
    with_client(&server, &dir, |client| async move {
        let pods = Api::<Pod>::all(client);
        let params = kube::api::WatchParams::default().fields("spec.nodeName=n1");
        let mut stream = pods.watch(&params, "0").await.expect("watch").boxed();
        match stream.next().await {
            Some(Ok(kube::api::WatchEvent::Added(p))) => {
                assert_eq!(p.metadata.name.as_deref(), Some("a"));
            }
            other => panic!("expected ADDED a, got {other:?}"),
        }
        assert_eq!(srv.open_watches(), 1);
    });
}

#[test]
fn wait_until_wakes_on_a_request() {
    let (server, _dir) = fixture();
    assert!(
        !server.wait_until(Duration::ZERO, |s| s.count("GET", "/version") == 1),
        "nothing yet"
    );
    std::thread::scope(|s| {
        s.spawn(|| raw(&server, "GET", "/version", "application/json", ""));
        assert!(server.wait_until(Duration::from_secs(30), |s| s.count("GET", "/version") == 1));
    });
}
