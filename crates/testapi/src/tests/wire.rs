//! Exact wire answers checked over a raw HTTP/1.1 connection.

use super::*;

/// Exact wire answers for what kube-rs would not send: unknown paths, broken bodies.
#[test]
fn raw_wire_errors() {
    let (server, _dir) = fixture();
    let not_found = json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
        "message":"pods \"x\" not found","reason":"NotFound","details":{"name":"x","kind":"pods"},"code":404});
    let merge = "application/merge-patch+json";
    let rows: &[(&str, &str, &str, &str, &str, u16)] = &[
        (
            "missing pod",
            "GET",
            "/api/v1/namespaces/ns/pods/x",
            "",
            "",
            404,
        ),
        (
            "unknown path",
            "GET",
            "/api/v1/namespaces/ns/secrets/s",
            "",
            "",
            404,
        ),
        (
            "unknown method",
            "DELETE",
            "/api/v1/namespaces/ns/pods/p",
            "",
            "",
            404,
        ),
        (
            "broken patch",
            "PATCH",
            "/api/v1/namespaces/ns/pods/p/status",
            merge,
            "{broken",
            400,
        ),
        (
            "json patch",
            "PATCH",
            "/api/v1/namespaces/ns/pods/p",
            "application/json-patch+json",
            "[]",
            415,
        ),
        (
            "patch missing pod",
            "PATCH",
            "/api/v1/namespaces/ns/pods/x/status",
            merge,
            "{}",
            404,
        ),
        (
            "broken event",
            "POST",
            "/api/v1/namespaces/ns/events",
            "application/json",
            "{",
            400,
        ),
        (
            "stale resourceVersion",
            "PATCH",
            "/api/v1/namespaces/ns/pods/p",
            merge,
            r#"{"metadata":{"resourceVersion":"0"}}"#,
            409,
        ),
    ];
    for (name, method, path, content_type, body, code) in rows {
        let (got, status) = raw(&server, method, path, content_type, body);
        assert_eq!(got, *code, "row {name:?}: {status}");
        assert_eq!(
            (status["kind"].as_str(), status["code"].as_u64()),
            (Some("Status"), Some(u64::from(*code))),
            "row {name:?}"
        );
        if *name == "missing pod" {
            assert_eq!(status, not_found);
        }
    }
    let (code, pod) = raw(
        &server,
        "PATCH",
        "/api/v1/namespaces/ns/pods/p/status",
        "application/merge-patch+json; charset=utf-8",
        r#"{"metadata":{"labels":{"a":"b"}}}"#,
    );
    assert_eq!((code, &pod["metadata"]["labels"]["a"]), (200, &json!("b")));
    assert_eq!(server.requests().len(), rows.len() + 1);
    server.clear_requests();
    assert!(server.requests().is_empty());
}
