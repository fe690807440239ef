//! Unit tables for the store: object identity, patch semantics per endpoint, faults, events.

use super::*;

fn store_with_pod() -> Store {
    let mut store = Store::default();
    store.put(
        Resource::Pods,
        json!({"metadata":{"name":"p","namespace":"ns","annotations":{"a":"1"},
            "ownerReferences":[{"name":"rs"}]},
            "spec":{"nodeName":"n1"},"status":{"phase":"Running"}}),
    );
    store
}

#[test]
fn put_fills_identity() {
    let store = store_with_pod();
    let pod = store.get(Resource::Pods, "ns", "p").unwrap_or_default();
    assert_eq!(pod["apiVersion"], "v1");
    assert_eq!(pod["kind"], "Pod");
    assert!(
        pod["metadata"]["uid"]
            .as_str()
            .is_some_and(|u| u.len() == 36),
        "{pod}"
    );
    assert!(pod["metadata"]["resourceVersion"].is_string());
}

/// One row per patch: endpoint, patch, then the expected error code or a check on the pod.
#[test]
fn patch_semantics() {
    type Check = fn(&Value) -> bool;
    let rows: &[(&str, PodPart, Value, Result<Check, u16>)] = &[
        (
            "status sets annotation",
            PodPart::Status,
            json!({"metadata":{"annotations":{"b":"2"}}}),
            Ok(|p| p["metadata"]["annotations"] == json!({"a":"1","b":"2"})),
        ),
        (
            "null deletes annotation",
            PodPart::Status,
            json!({"metadata":{"annotations":{"a":null}}}),
            Ok(|p| p["metadata"]["annotations"] == json!({})),
        ),
        (
            "status ignores spec",
            PodPart::Status,
            json!({"spec":{"nodeName":"n2"}}),
            Ok(|p| p["spec"]["nodeName"] == "n1"),
        ),
        (
            "status keeps ownerReferences",
            PodPart::Status,
            json!({"metadata":{"ownerReferences":null}}),
            Ok(|p| p["metadata"]["ownerReferences"][0]["name"] == "rs"),
        ),
        (
            "main ignores status",
            PodPart::Main,
            json!({"status":{"phase":"Failed"}}),
            Ok(|p| p["status"]["phase"] == "Running"),
        ),
        (
            "main sets label",
            PodPart::Main,
            json!({"metadata":{"labels":{"l":"v"}}}),
            Ok(|p| p["metadata"]["labels"]["l"] == "v"),
        ),
        (
            "uid cannot be removed",
            PodPart::Status,
            json!({"metadata":{"uid":null}}),
            Ok(|p| p["metadata"]["uid"].is_string()),
        ),
        (
            "stale resourceVersion",
            PodPart::Status,
            json!({"metadata":{"resourceVersion":"0"}}),
            Err(409),
        ),
        (
            "other uid",
            PodPart::Status,
            json!({"metadata":{"uid":"other"}}),
            Err(409),
        ),
        (
            "rename",
            PodPart::Main,
            json!({"metadata":{"name":"q"}}),
            Err(400),
        ),
        (
            "move namespace",
            PodPart::Main,
            json!({"metadata":{"namespace":"x"}}),
            Err(400),
        ),
        (
            "metadata null",
            PodPart::Main,
            json!({"metadata":null}),
            Err(400),
        ),
        ("not an object", PodPart::Status, json!([1]), Err(400)),
    ];
    for (name, part, patch, want) in rows {
        let mut store = store_with_pod();
        let before = store.get(Resource::Pods, "ns", "p").unwrap_or_default();
        let got = store.patch_pod("ns", "p", patch, *part);
        let stored = store.get(Resource::Pods, "ns", "p").unwrap_or_default();
        match (want, got) {
            (Ok(check), Ok(pod)) => {
                assert!(check(&pod), "row {name:?}: {pod}");
                assert_eq!(pod, stored, "row {name:?}: returned pod is the stored one");
            }
            (Err(code), Err(status)) => {
                assert_eq!(status.code, *code, "row {name:?}: {status:?}");
                assert_eq!(
                    stored, before,
                    "row {name:?}: a failed patch changes nothing"
                );
            }
            (want, got) => panic!(
                "row {name:?}: want {:?}, got {got:?}",
                want.map(|_| "a pod")
            ),
        }
    }
}

#[test]
fn resource_version_moves_only_on_change() {
    let mut store = store_with_pod();
    let rv = |p: &Value| {
        p["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let before = rv(&store.get(Resource::Pods, "ns", "p").unwrap_or_default());
    let noop = store.patch_pod(
        "ns",
        "p",
        &json!({"metadata":{"annotations":{"a":"1"}}}),
        PodPart::Status,
    );
    assert_eq!(noop.map(|p| rv(&p)), Ok(before.clone()));
    let changed = store.patch_pod(
        "ns",
        "p",
        &json!({"metadata":{"annotations":{"a":"2"}}}),
        PodPart::Status,
    );
    assert!(changed.is_ok_and(|p| rv(&p) != before));
    assert_eq!(
        store
            .patch_pod("ns", "q", &json!({}), PodPart::Status)
            .map_err(|s| s.code),
        Err(404)
    );
}

#[test]
fn faults_count_down_and_replace() {
    let mut store = Store::default();
    let fault = |method: Option<&str>, prefix: &str, kind, times| Fault {
        method: method.map(str::to_owned),
        path_prefix: prefix.to_owned(),
        kind,
        times,
    };
    store.set_fault(fault(Some("GET"), "/api", FaultKind::Status(500), Some(2)));
    assert!(store.take_fault("PATCH", "/api/v1").is_none());
    assert!(
        store.take_fault("get", "/apis/x").is_some(),
        "prefix match, method case-insensitive"
    );
    assert!(store.take_fault("GET", "/version").is_none());
    assert!(store.take_fault("GET", "/api/v1").is_some());
    assert!(
        store.take_fault("GET", "/api/v1").is_none(),
        "used up after two"
    );
    store.set_fault(fault(None, "/api", FaultKind::Status(500), None));
    store.set_fault(fault(None, "/api", FaultKind::Drop, None));
    for _ in 0..3 {
        assert!(
            matches!(store.take_fault("POST", "/api/v1"), Some(FaultKind::Drop)),
            "replaced, forever"
        );
    }
    store.clear_faults();
    assert!(store.take_fault("POST", "/api/v1").is_none());
}

#[test]
fn events_are_created_like_the_server_does() {
    let mut store = Store::default();
    let created = store.create_event(
        Resource::CoreEvents,
        "ns",
        json!({"metadata":{"generateName":"p."}}),
    );
    assert!(
        created.as_ref().is_ok_and(|e| e["metadata"]["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("p."))
            && e["kind"] == "Event"
            && e["apiVersion"] == "v1"
            && e["metadata"]["namespace"] == "ns"),
        "{created:?}"
    );
    let rows: &[(&str, Value, u16)] = &[
        ("no name", json!({"metadata":{}}), 422),
        (
            "other namespace",
            json!({"metadata":{"name":"e","namespace":"other"}}),
            400,
        ),
        (
            "wrong kind",
            json!({"kind":"Pod","metadata":{"name":"e"}}),
            400,
        ),
        ("not an object", json!("e"), 400),
    ];
    for (name, body, code) in rows {
        let got = store.create_event(Resource::Events, "ns", body.clone());
        assert_eq!(got.map_err(|s| s.code), Err(*code), "row {name:?}");
    }
    let body = json!({"metadata":{"name":"e"}});
    assert!(
        store
            .create_event(Resource::Events, "ns", body.clone())
            .is_ok()
    );
    assert_eq!(
        store
            .create_event(Resource::Events, "ns", body)
            .map_err(|s| s.code),
        Err(409)
    );
    assert_eq!(store.events.len(), 2);
}
