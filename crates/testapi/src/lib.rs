//! An in-process Kubernetes API server for tests and the quickstart: pods, NADs and events over
//! loopback HTTP or HTTPS in the real wire format (get, list with field selectors and pages,
//! watch with resource versions, bookmarks and `410 Gone`, merge patch, create), with a request
//! log and fault injection (on requests, lists and watch streams).
//!
//! plexus reaches it through kube-rs exactly as it reaches a cluster, via the kubeconfig
//! [`TestApiServer::write_kubeconfig`] writes. The server runs on its own OS thread with its own
//! tokio runtime, so synchronous tests and programs use it without a runtime of their own.

mod patch;
mod server;
mod status;
mod store;
mod strategic;
#[cfg(test)]
mod tests;
mod tls;
mod watch;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::oneshot;

pub use patch::merge_patch;
use server::{Shared, lock};
use status::Resource;
use tls::Tls;

/// The bearer token [`TestApiServer::write_kubeconfig`] writes to the token file.
pub const TOKEN: &str = "plexus-test-token";

/// One request as the server received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// HTTP method, upper case as sent (`GET`, `PATCH`, ...).
    pub method: String,
    /// The path without the query, e.g. `/api/v1/namespaces/ns/pods/p/status`.
    pub path: String,
    /// The query string without `?`; empty when there is none.
    pub query: String,
    /// The request body (lossy UTF-8).
    pub body: String,
    /// The `Content-Type` header; empty when absent.
    pub content_type: String,
    /// The `Authorization` header (`Bearer <token>` from the kubeconfig's token file); empty when absent.
    pub authorization: String,
    /// The connection was closed without a response (server down or a [`FaultKind::Drop`]).
    pub dropped: bool,
}

/// A fault to inject into requests that match a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// The HTTP method to match (case-insensitive); `None` matches any.
    pub method: Option<String>,
    /// Requests whose path (without query) starts with this prefix match.
    pub path_prefix: String,
    /// What happens to a matching request.
    pub kind: FaultKind,
    /// `None`: every matching request, forever; `Some(n)`: the next `n` matching requests.
    pub times: Option<u32>,
}

/// What a [`Fault`] does to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// Respond with this HTTP code and a real `Status` object (reason as kube-apiserver gives it).
    Status(u16),
    /// Wait this long, then serve the request normally.
    Delay(Duration),
    /// Close the connection without a response.
    Drop,
}

/// A running test API server on `127.0.0.1`. It stops, and its port closes, when dropped.
#[derive(Debug)]
pub struct TestApiServer {
    addr: SocketAddr,
    tls: Option<Tls>,
    shared: Shared,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl TestApiServer {
    /// Binds `127.0.0.1` on a free port and starts serving on a new thread. The port accepts
    /// connections when this returns.
    ///
    /// # Errors
    /// When the socket cannot be bound, or the runtime or thread cannot be created.
    pub fn start() -> std::io::Result<TestApiServer> {
        Self::serve(std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?, None)
    }

    /// Like [`start`](TestApiServer::start), but serving HTTPS as a cluster's API server does:
    /// a CA made for this server signs its certificate (for `127.0.0.1`, `::1` and `localhost`),
    /// and [`write_kubeconfig`](TestApiServer::write_kubeconfig) names that CA.
    ///
    /// # Errors
    /// As [`start`](TestApiServer::start), or when the certificates cannot be made.
    pub fn start_https() -> std::io::Result<TestApiServer> {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        Self::serve(listener, Some(Tls::generate()?))
    }

    /// Like [`start`](TestApiServer::start), but the socket is bound on the loopback of the
    /// network namespace at `netns` (e.g. `/run/netns/node`), so a plexus process run in that
    /// namespace (the test's "node") reaches it at `127.0.0.1`, as a node reaches its API server.
    ///
    /// # Errors
    /// When the namespace cannot be entered or the socket cannot be bound.
    pub fn start_in_netns(netns: &std::path::Path) -> std::io::Result<TestApiServer> {
        Self::serve(Self::bind_in_netns(netns)?, None)
    }

    /// [`start_in_netns`](TestApiServer::start_in_netns) serving HTTPS, as
    /// [`start_https`](TestApiServer::start_https).
    ///
    /// # Errors
    /// As [`start_in_netns`](TestApiServer::start_in_netns), or when the certificates cannot
    /// be made.
    pub fn start_https_in_netns(netns: &std::path::Path) -> std::io::Result<TestApiServer> {
        Self::serve(Self::bind_in_netns(netns)?, Some(Tls::generate()?))
    }

    fn bind_in_netns(netns: &std::path::Path) -> std::io::Result<std::net::TcpListener> {
        // The namespace's loopback must be up (`ip -n NS link set lo up`).
        let file = std::fs::File::open(netns)?;
        let listener = std::thread::scope(|s| {
            s.spawn(move || {
                // A thread of its own that ends here, so nothing else ever runs in that netns.
                rustix::thread::move_into_link_name_space(
                    std::os::fd::AsFd::as_fd(&file),
                    Some(rustix::thread::LinkNameSpaceType::Network),
                )?;
                std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            })
            .join()
            .map_err(|_| std::io::Error::other("the thread binding in the netns panicked"))
        })??;
        Ok(listener)
    }

    fn serve(listener: std::net::TcpListener, tls: Option<Tls>) -> std::io::Result<TestApiServer> {
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let listener = {
            let _context = runtime.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        let shared = Shared::default();
        let (shutdown, stop) = oneshot::channel();
        let state = shared.clone();
        let serving_tls = tls.clone();
        let thread = std::thread::Builder::new()
            .name(format!("testapi-{}", addr.port()))
            .spawn(move || runtime.block_on(server::serve(listener, serving_tls, state, stop)))?;
        Ok(TestApiServer {
            addr,
            tls,
            shared,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// The base URL: `http://127.0.0.1:PORT`, or `https://...` for a server started with TLS.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The PEM of the CA that signed an HTTPS server's certificate; `None` for plain HTTP.
    pub fn ca_pem(&self) -> Option<&str> {
        self.tls.as_ref().map(|t| t.ca_pem.as_str())
    }

    /// Writes a kubeconfig (cluster, user, context, `current-context`) pointing at [`url`], whose
    /// user authenticates with `tokenFile`: the absolute path of `<path>.token`, written next to it
    /// and holding [`TOKEN`] (no trailing newline: kube-rs sends the file's bytes verbatim). For
    /// an HTTPS server the cluster's `certificate-authority` is `<path>.ca.crt`, written too.
    ///
    /// [`url`]: TestApiServer::url
    ///
    /// # Errors
    /// When either file cannot be written.
    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        let path = std::path::absolute(path)?;
        let mut token_name = path.file_name().unwrap_or_default().to_os_string();
        token_name.push(".token");
        let token_path = path.with_file_name(token_name);
        std::fs::write(&token_path, TOKEN)?;
        // JSON strings are valid YAML double-quoted scalars, so any path quotes safely.
        let quote = |s: &str| Value::from(s).to_string();
        let mut ca_line = String::new();
        if let Some(pem) = self.ca_pem() {
            let mut ca_name = path.file_name().unwrap_or_default().to_os_string();
            ca_name.push(".ca.crt");
            let ca_path = path.with_file_name(ca_name);
            std::fs::write(&ca_path, pem)?;
            ca_line = format!(
                "    certificate-authority: {}\n",
                quote(&ca_path.to_string_lossy())
            );
        }
        let kubeconfig = format!(
            "apiVersion: v1\n\
             kind: Config\n\
             clusters:\n\
             - name: plexus-test\n  cluster:\n    server: {server}\n{ca_line}\
             users:\n\
             - name: plexus-test\n  user:\n    tokenFile: {token}\n\
             contexts:\n\
             - name: plexus-test\n  context:\n    cluster: plexus-test\n    user: plexus-test\n    namespace: default\n\
             current-context: plexus-test\n",
            server = quote(&self.url()),
            token = quote(&token_path.to_string_lossy()),
        );
        std::fs::write(&path, kubeconfig)
    }

    /// Inserts or replaces a pod (keyed by `metadata.namespace`, default `default`, and
    /// `metadata.name`), filling `apiVersion`, `kind`, `metadata.uid` and
    /// `metadata.resourceVersion` when missing.
    ///
    /// # Panics
    /// When `pod` is not a JSON object with `metadata.name`.
    pub fn put_pod(&self, pod: Value) {
        lock(&self.shared).put(Resource::Pods, pod);
    }

    /// Inserts or replaces a NetworkAttachmentDefinition, filling what [`put_pod`] fills.
    ///
    /// [`put_pod`]: TestApiServer::put_pod
    ///
    /// # Panics
    /// When `nad` is not a JSON object with `metadata.name`.
    pub fn put_nad(&self, nad: Value) {
        lock(&self.shared).put(Resource::Nads, nad);
    }

    /// Applies a JSON merge patch to a stored pod as `kubectl annotate` or `kubectl patch
    /// --type=merge` does (the pod, not its status): its `resourceVersion` moves and watches see
    /// the change when it changed anything. The patched pod, or `None` when there is no such pod
    /// or the patch is refused.
    pub fn patch_pod(&self, ns: &str, name: &str, patch: &Value) -> Option<Value> {
        lock(&self.shared)
            .patch_pod(ns, name, patch, store::PodPart::Main)
            .ok()
    }

    /// Removes a pod; later reads of it get 404. Absent is fine.
    pub fn delete_pod(&self, ns: &str, name: &str) {
        lock(&self.shared).remove(Resource::Pods, ns, name);
    }

    /// Removes a NetworkAttachmentDefinition; later reads of it get 404. Absent is fine.
    pub fn delete_nad(&self, ns: &str, name: &str) {
        lock(&self.shared).remove(Resource::Nads, ns, name);
    }

    /// The stored pod as the server would return it, if it exists.
    pub fn pod(&self, ns: &str, name: &str) -> Option<Value> {
        lock(&self.shared).get(Resource::Pods, ns, name).ok()
    }

    /// The stored NetworkAttachmentDefinition, if it exists.
    pub fn nad(&self, ns: &str, name: &str) -> Option<Value> {
        lock(&self.shared).get(Resource::Nads, ns, name).ok()
    }

    /// Every event created through either events API, in order, as stored.
    pub fn events(&self) -> Vec<Value> {
        lock(&self.shared).events.clone()
    }

    /// Every request received, in order, including dropped and faulted ones.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.shared).requests.clone()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        lock(&self.shared).requests.clear();
    }

    /// How many recorded requests have this method (case-insensitive) and a path starting with
    /// `path_prefix`, dropped ones included.
    pub fn count(&self, method: &str, path_prefix: &str) -> usize {
        let store = lock(&self.shared);
        store
            .requests
            .iter()
            .filter(|r| r.method.eq_ignore_ascii_case(method) && r.path.starts_with(path_prefix))
            .count()
    }

    /// Injects `fault`, replacing any earlier fault with the same method and path prefix. When
    /// several faults match a request, the earliest set one applies.
    pub fn set_fault(&self, fault: Fault) {
        lock(&self.shared).set_fault(fault);
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        lock(&self.shared).clear_faults();
    }

    /// Ends every open watch stream, as an API server that restarts or sheds load does; clients
    /// resume from the last revision they saw.
    pub fn drop_watches(&self) {
        lock(&self.shared).drop_watches();
    }

    /// Forgets the change history (as etcd's compaction does): a watch resuming from a revision
    /// before now gets `410 Gone`, and its client must list again.
    pub fn compact(&self) {
        lock(&self.shared).compact();
    }

    /// Sends a BOOKMARK with the current revision to every watch that allows bookmarks.
    pub fn bookmark(&self) {
        lock(&self.shared).bookmark();
    }

    /// The next `times` list requests (GETs of a collection without `watch`) answer `code` with
    /// a `Status`, e.g. to fail the re-list after a `410 Gone`.
    pub fn fail_lists(&self, times: u32, code: u16) {
        lock(&self.shared).fail_lists(times, code);
    }

    /// How many watch streams are open now.
    pub fn open_watches(&self) -> usize {
        lock(&self.shared).open_watches()
    }

    /// The current revision: the `resourceVersion` of the newest change.
    pub fn revision(&self) -> u64 {
        lock(&self.shared).revision()
    }

    /// Waits until `cond` holds, re-checking it whenever the server receives a request or a watch
    /// ends; false if it still does not hold after `timeout`. The synchronisation point of tests
    /// that wait for a client to come back (no sleeping and hoping).
    pub fn wait_until(
        &self,
        timeout: Duration,
        mut cond: impl FnMut(&TestApiServer) -> bool,
    ) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let seen = lock(&self.shared).generation;
            if cond(self) {
                return true;
            }
            let store = lock(&self.shared);
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            if store.generation == seen {
                let _ = self
                    .shared
                    .changed
                    .wait_timeout(store, left)
                    .map_err(|p| p.into_inner());
            }
        }
    }

    /// While down, every request is recorded with `dropped` set and its connection closed
    /// without a response, like a server that died. Faults do not apply while down.
    pub fn set_down(&self, down: bool) {
        lock(&self.shared).down = down;
    }
}

impl Drop for TestApiServer {
    /// Stops accepting, closes every connection and waits for the server thread to end.
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
