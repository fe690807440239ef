//! The test API server driven the way plexus drives it: a kube-rs client built from the
//! kubeconfig the server writes, over loopback HTTP; plus raw HTTP for exact wire checks.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event as CoreEvent, Pod};
use k8s_openapi::api::events::v1::Event;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::{Value, json};

use super::*;

/// A scratch directory removed on drop, even when the test fails.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("plexus-testapi-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A started server with one pod `ns/p` and one NAD `ns/macvlan`, plus a scratch directory.
fn fixture() -> (TestApiServer, TempDir) {
    let server = TestApiServer::start().expect("start server");
    server.put_pod(json!({
        "metadata": {"name": "p", "namespace": "ns",
            "annotations": {"k8s.v1.cni.cncf.io/networks": "macvlan"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
        "status": {"phase": "Running"},
    }));
    server.put_nad(json!({
        "metadata": {"name": "macvlan", "namespace": "ns"},
        "spec": {"config": "{\"cniVersion\":\"1.0.0\",\"type\":\"macvlan\"}"},
    }));
    (server, TempDir::new())
}

/// Runs `f` with a kube client built from the server's kubeconfig, on a current-thread runtime.
fn with_client<F, Fut>(server: &TestApiServer, dir: &TempDir, f: F)
where
    F: FnOnce(kube::Client) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let path = dir.0.join("kubeconfig");
    server.write_kubeconfig(&path).expect("write kubeconfig");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let kubeconfig = Kubeconfig::read_from(&path).expect("read kubeconfig");
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .expect("config from kubeconfig");
        f(kube::Client::try_from(config).expect("client")).await;
    });
}

/// The `Status` of a kube API error, or a panic naming what came instead.
fn api_error<T: std::fmt::Debug>(result: kube::Result<T>) -> kube::core::Status {
    match result {
        Err(kube::Error::Api(status)) => *status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn nad_api(client: kube::Client, ns: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("k8s.cni.cncf.io", "v1", "NetworkAttachmentDefinition");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "network-attachment-definitions");
    Api::namespaced_with(client, ns, &resource)
}

/// One HTTP/1.1 request on a fresh connection; the status code and the JSON body.
fn raw(
    server: &TestApiServer,
    method: &str,
    path: &str,
    content_type: &str,
    body: &str,
) -> (u16, Value) {
    let mut stream = std::net::TcpStream::connect(server.addr).expect("connect");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("write request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    let (head, body) = response.split_once("\r\n\r\n").expect("a response head");
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status code");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    (code, serde_json::from_str(body).expect("a JSON body"))
}

mod client;
mod faults;
mod https;
mod watch;
mod wire;
