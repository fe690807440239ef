//! Fault injection as kube-rs sees it, and the server's lifecycle.

use super::*;

#[test]
fn status_fault_once_then_success() {
    let (server, dir) = fixture();
    server.set_fault(Fault {
        method: Some("GET".into()),
        path_prefix: "/api/v1/namespaces/ns/pods/p".into(),
        kind: FaultKind::Status(500),
        times: Some(1),
    });
    with_client(&server, &dir, |client| async move {
        let pods = Api::<Pod>::namespaced(client, "ns");
        let status = api_error(pods.get("p").await);
        assert_eq!(
            (status.code, status.reason.as_str()),
            (500, "InternalError")
        );
        pods.get("p").await.expect("second get succeeds");
    });
    assert_eq!(server.count("GET", "/api/v1/namespaces/ns/pods/p"), 2);
}

#[test]
fn kube_retries_503_by_itself() {
    let (server, dir) = fixture();
    server.set_fault(Fault {
        method: None,
        path_prefix: "/api/".into(),
        kind: FaultKind::Status(503),
        times: Some(2),
    });
    with_client(&server, &dir, |client| async move {
        Api::<Pod>::namespaced(client, "ns")
            .get("p")
            .await
            .expect("get after retries");
    });
    assert_eq!(
        server.count("GET", "/api/v1/namespaces/ns/pods/p"),
        3,
        "kube's default retry policy"
    );
}

#[test]
fn delay_fault_slows_then_serves() {
    let (server, dir) = fixture();
    let delay = Duration::from_millis(300);
    server.set_fault(Fault {
        method: None,
        path_prefix: "/api/v1".into(),
        kind: FaultKind::Delay(delay),
        times: None,
    });
    with_client(&server, &dir, |client| async move {
        let started = Instant::now();
        Api::<Pod>::namespaced(client, "ns")
            .get("p")
            .await
            .expect("get pod");
        assert!(
            started.elapsed() >= delay,
            "answered after {:?}",
            started.elapsed()
        );
    });
}

#[test]
fn drop_fault_and_down_close_without_response() {
    let (server, dir) = fixture();
    server.set_fault(Fault {
        method: Some("GET".into()),
        path_prefix: "/api/v1".into(),
        kind: FaultKind::Drop,
        times: Some(1),
    });
    with_client(&server, &dir, |client| {
        let server = &server;
        async move {
            let pods = Api::<Pod>::namespaced(client, "ns");
            let dropped = pods.get("p").await;
            assert!(
                matches!(dropped, Err(ref e) if !matches!(e, kube::Error::Api(_))),
                "{dropped:?}"
            );
            pods.get("p").await.expect("fault used up");
            server.set_down(true);
            let down = pods.get("p").await;
            assert!(
                matches!(down, Err(ref e) if !matches!(e, kube::Error::Api(_))),
                "{down:?}"
            );
            server.set_down(false);
            pods.get("p").await.expect("back up");
        }
    });
    let dropped: Vec<bool> = server.requests().iter().map(|r| r.dropped).collect();
    assert_eq!(
        dropped,
        [true, false, true, false],
        "each request recorded once, in order"
    );
}

#[test]
fn drop_closes_the_port() {
    let server = TestApiServer::start().expect("start");
    let addr = server.addr;
    drop(server);
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "nothing listens after drop"
    );
}
