//! kube-rs calls plexus makes: get, list, patch, create events, version.

use super::*;

#[test]
fn get_pod_through_kubeconfig_with_token_file() {
    let (server, dir) = fixture();
    let stored = server.pod("ns", "p").unwrap_or_default();
    with_client(&server, &dir, |client| async move {
        let pod = Api::<Pod>::namespaced(client, "ns")
            .get("p")
            .await
            .expect("get pod");
        let annotations = pod.metadata.annotations.unwrap_or_default();
        assert_eq!(
            annotations
                .get("k8s.v1.cni.cncf.io/networks")
                .map(String::as_str),
            Some("macvlan")
        );
        assert_eq!(
            pod.metadata.uid.as_deref(),
            stored["metadata"]["uid"].as_str()
        );
        assert!(pod.metadata.resource_version.is_some());
    });
    let kubeconfig = std::fs::read_to_string(dir.0.join("kubeconfig")).unwrap_or_default();
    assert!(kubeconfig.contains("tokenFile:"), "{kubeconfig}");
    let requests = server.requests();
    assert_eq!(
        requests.len(),
        1,
        "no /version or discovery before a get: {requests:?}"
    );
    assert_eq!(
        (requests[0].method.as_str(), requests[0].path.as_str()),
        ("GET", "/api/v1/namespaces/ns/pods/p")
    );
    assert_eq!(requests[0].authorization, format!("Bearer {TOKEN}"));
    assert!(!requests[0].dropped);
}

#[test]
fn missing_objects_are_api_404s() {
    let (server, dir) = fixture();
    server.delete_pod("ns", "p");
    with_client(&server, &dir, |client| async move {
        let status = api_error(Api::<Pod>::namespaced(client.clone(), "ns").get("p").await);
        assert_eq!((status.code, status.reason.as_str()), (404, "NotFound"));
        assert_eq!(status.message, "pods \"p\" not found");
        let status = api_error(nad_api(client.clone(), "ns").get("absent").await);
        assert_eq!((status.code, status.reason.as_str()), (404, "NotFound"));
        let details = status.details.expect("details");
        assert_eq!(
            (details.group.as_str(), details.kind.as_str()),
            ("k8s.cni.cncf.io", "network-attachment-definitions")
        );
        let patch = Patch::Merge(json!({"metadata": {"annotations": {"a": "b"}}}));
        let status = api_error(
            Api::<Pod>::namespaced(client, "ns")
                .patch_status("p", &PatchParams::default(), &patch)
                .await,
        );
        assert_eq!(status.code, 404);
    });
}

#[test]
fn patch_status_merges_into_the_stored_pod() {
    let (server, dir) = fixture();
    let before = server.pod("ns", "p").unwrap_or_default();
    let patch = json!({"metadata": {"annotations": {"k8s.v1.cni.cncf.io/network-status": "[]"}}});
    with_client(&server, &dir, |client| async move {
        let pods = Api::<Pod>::namespaced(client, "ns");
        let pod = pods
            .patch_status("p", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("patch status");
        let annotations = pod.metadata.annotations.unwrap_or_default();
        assert_eq!(
            annotations
                .get("k8s.v1.cni.cncf.io/network-status")
                .map(String::as_str),
            Some("[]")
        );
        assert_eq!(annotations.len(), 2, "merge keeps other annotations");
        let delete = json!({"metadata": {"annotations": {"k8s.v1.cni.cncf.io/networks": null}}});
        pods.patch("p", &PatchParams::default(), &Patch::Merge(&delete))
            .await
            .expect("patch pod");
    });
    let after = server.pod("ns", "p").unwrap_or_default();
    assert_eq!(
        after["metadata"]["annotations"],
        json!({"k8s.v1.cni.cncf.io/network-status": "[]"})
    );
    assert_ne!(
        after["metadata"]["resourceVersion"],
        before["metadata"]["resourceVersion"]
    );
    let patches: Vec<Recorded> = server
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect();
    assert_eq!(patches.len(), 2);
    assert_eq!(patches[0].path, "/api/v1/namespaces/ns/pods/p/status");
    assert_eq!(patches[0].content_type, "application/merge-patch+json");
    assert_eq!(
        serde_json::from_str::<Value>(&patches[0].body).ok(),
        Some(json!({"metadata": {"annotations": {"k8s.v1.cni.cncf.io/network-status": "[]"}}}))
    );
    assert_eq!(patches[1].path, "/api/v1/namespaces/ns/pods/p");
}

#[test]
fn strategic_status_patches_merge_conditions_by_type_and_apply_patches_are_415() {
    let (server, dir) = fixture();
    server.put_pod(
        json!({"metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
    );
    with_client(&server, &dir, |client| async move {
        let pods = Api::<Pod>::namespaced(client, "ns");
        for status in ["False", "True"] {
            let patch = Patch::Strategic(
                json!({"status": {"conditions": [{"type": "x.io/y", "status": status}]}}),
            );
            pods.patch_status("p", &PatchParams::default(), &patch)
                .await
                .expect("a strategic merge patch of the status");
        }
        let patch = Patch::Apply(json!({"status": {}}));
        let status = api_error(
            pods.patch_status("p", &PatchParams::apply("t"), &patch)
                .await,
        );
        assert_eq!(
            (status.code, status.reason.as_str()),
            (415, "UnsupportedMediaType")
        );
    });
    assert_eq!(
        server.pod("ns", "p").unwrap_or_default()["status"]["conditions"],
        json!([{"type": "Ready", "status": "True"}, {"type": "x.io/y", "status": "True"}])
    );
}

#[test]
fn nads_get_and_list() {
    let (server, dir) = fixture();
    server.put_nad(
        json!({"metadata": {"name": "other", "namespace": "elsewhere"}, "spec": {"config": ""}}),
    );
    with_client(&server, &dir, |client| async move {
        let nads = nad_api(client.clone(), "ns");
        let nad = nads.get("macvlan").await.expect("get nad");
        assert_eq!(
            nad.data["spec"]["config"],
            "{\"cniVersion\":\"1.0.0\",\"type\":\"macvlan\"}"
        );
        assert!(nad.metadata.uid.is_some());
        let list = nads.list(&Default::default()).await.expect("list nads");
        let names: Vec<_> = list
            .items
            .iter()
            .filter_map(|n| n.metadata.name.clone())
            .collect();
        assert_eq!(names, ["macvlan"]);
        assert!(list.metadata.resource_version.is_some());
        let pods = Api::<Pod>::namespaced(client, "ns")
            .list(&Default::default())
            .await
            .expect("list pods");
        assert_eq!(pods.items.len(), 1);
    });
    assert_eq!(
        server.count(
            "GET",
            "/apis/k8s.cni.cncf.io/v1/namespaces/ns/network-attachment-definitions"
        ),
        2
    );
}

#[test]
fn events_are_created_and_kept() {
    let (server, dir) = fixture();
    with_client(&server, &dir, |client| async move {
        let event: Event = serde_json::from_value(json!({
            "metadata": {"generateName": "p."},
            "reason": "AddedInterface", "note": "Add net1", "type": "Normal",
            "action": "Add", "reportingController": "plexus", "reportingInstance": "node1",
            "eventTime": "2025-01-01T00:00:00.000000Z",
            "regarding": {"kind": "Pod", "namespace": "ns", "name": "p"},
        }))
        .expect("event");
        let created = Api::<Event>::namespaced(client.clone(), "ns")
            .create(&PostParams::default(), &event)
            .await
            .expect("create event");
        assert!(
            created
                .metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with("p."))
        );
        let core: CoreEvent = serde_json::from_value(json!({
            "metadata": {"name": "p.1"}, "reason": "AddedInterface",
            "involvedObject": {"kind": "Pod", "namespace": "ns", "name": "p"},
        }))
        .expect("core event");
        Api::<CoreEvent>::namespaced(client, "ns")
            .create(&PostParams::default(), &core)
            .await
            .expect("create core event");
    });
    let events = server.events();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["apiVersion"], "events.k8s.io/v1");
    assert_eq!(events[0]["note"], "Add net1");
    assert_eq!(events[1]["apiVersion"], "v1");
    assert_eq!(
        server.count("POST", "/apis/events.k8s.io/v1/namespaces/ns/events"),
        1
    );
    assert_eq!(server.count("POST", "/api/v1/namespaces/ns/events"), 1);
}

#[test]
fn version_is_served() {
    let (server, dir) = fixture();
    with_client(&server, &dir, |client| async move {
        let info = client.apiserver_version().await.expect("version");
        assert_eq!((info.major.as_str(), info.minor.as_str()), ("1", "33"));
    });
}
