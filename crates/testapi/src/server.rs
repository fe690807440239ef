//! HTTP handling: the accept loop, one hyper HTTP/1.1 connection per client (keep-alive on),
//! request recording, fault injection and routing of the Kubernetes paths plexus calls.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll};

use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Bytes, Frame, Incoming};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::status::{ApiStatus, Resource};
use super::store::{PodPart, Store};
use super::tls::Tls;
use super::watch::{Query, WatchBody};
use super::{FaultKind, Recorded};

/// The store, and a condition signalled whenever its generation moves.
#[derive(Debug, Default)]
pub(crate) struct State {
    store: Mutex<Store>,
    pub(crate) changed: Condvar,
}

/// The shared state, as the server and the test's handle both hold it.
pub(crate) type Shared = Arc<State>;

/// Locks the store; a panic elsewhere while it was held does not hide it from the test.
pub(crate) fn lock(shared: &Shared) -> MutexGuard<'_, Store> {
    shared
        .store
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Moves the store's generation on and wakes whoever waits for a change.
pub(crate) fn touch(shared: &Shared, store: &mut Store) {
    store.generation += 1;
    shared.changed.notify_all();
}

/// A response body: a whole JSON document, or a watch's stream of events.
pub(crate) enum Reply {
    /// A complete body.
    Full(Full<Bytes>),
    /// A watch, until the server or the client ends it.
    Watch {
        /// The events.
        body: WatchBody,
        /// Wakes waiters when the watch ends.
        _closing: Closing,
    },
}

impl Body for Reply {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Reply::Full(b) => Pin::new(b).poll_frame(cx),
            Reply::Watch { body, .. } => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Reply::Full(b) => b.is_end_stream(),
            Reply::Watch { .. } => false,
        }
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        match self {
            Reply::Full(b) => b.size_hint(),
            Reply::Watch { .. } => hyper::body::SizeHint::default(),
        }
    }
}

/// Tells waiters when a watch response ends (its client went away or the server ended it).
pub(crate) struct Closing(Shared);

impl Drop for Closing {
    fn drop(&mut self) {
        let mut store = lock(&self.0);
        touch(&self.0, &mut store);
    }
}

/// The error a service returns to make hyper close the connection without writing a response.
#[derive(Debug, thiserror::Error)]
#[error("connection dropped on purpose (server down or Drop fault)")]
struct Dropped;

/// Accepts connections until `shutdown` fires (or its sender is dropped), serving each on its own
/// task, over TLS when `tls` is given. Connections still open are cancelled when the caller drops
/// the runtime.
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Option<Tls>,
    shared: Shared,
    mut shutdown: oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => {
                let Ok((stream, _peer)) = accepted else { continue };
                let shared = shared.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    // A failed handshake (a client that does not trust the CA) or a connection
                    // dropped by a fault or by the client: either way there is nobody to tell.
                    match tls {
                        None => serve_connection(stream, shared).await,
                        Some(tls) => {
                            if let Ok(stream) = tls.acceptor.accept(stream).await {
                                serve_connection(stream, shared).await;
                            }
                        }
                    }
                });
            }
        }
    }
}

/// Serves HTTP/1.1 (keep-alive) on one connection until it ends.
async fn serve_connection<S>(stream: S, shared: Shared)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| handle(shared.clone(), req));
    let _ = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// Serves one request: record it, apply the server state (down) or a matching fault, then route.
async fn handle(shared: Shared, req: Request<Incoming>) -> Result<Response<Reply>, Dropped> {
    let (parts, body) = req.into_parts();
    // A body that cannot be read (client gone mid-request) is recorded as empty.
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let header = |name| header_str(&parts.headers, name);
    let mut recorded = Recorded {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        body: String::from_utf8_lossy(&body).into_owned(),
        content_type: header(CONTENT_TYPE),
        authorization: header(AUTHORIZATION),
        dropped: false,
    };
    let fault = {
        let mut store = lock(&shared);
        let fault = if store.down {
            Some(FaultKind::Drop)
        } else {
            store.take_fault(&recorded.method, &recorded.path)
        };
        recorded.dropped = matches!(fault, Some(FaultKind::Drop));
        store.requests.push(recorded.clone());
        touch(&shared, &mut store);
        fault
    };
    match fault {
        Some(FaultKind::Drop) => return Err(Dropped),
        Some(FaultKind::Status(code)) => return Ok(respond(Err(ApiStatus::injected(code)))),
        Some(FaultKind::Delay(delay)) => tokio::time::sleep(delay).await,
        None => {}
    }
    let mut store = lock(&shared);
    let routed = route(&mut store, &recorded, &body);
    // What the request changed (a PATCH, an event) is there now: a waiter woken when it was
    // recorded may have looked too early.
    touch(&shared, &mut store);
    match routed {
        Ok(Routed::Watch(body)) => {
            let mut response = Response::new(Reply::Watch {
                body,
                _closing: Closing(shared.clone()),
            });
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            Ok(response)
        }
        Ok(Routed::Object(code, value)) => Ok(respond(Ok((code, value)))),
        Err(status) => Ok(respond(Err(status))),
    }
}

/// What a route answers: an object with its code, or an open watch.
enum Routed {
    Object(StatusCode, Value),
    Watch(WatchBody),
}

/// A list, or a watch when the query asks for one.
fn collection(
    store: &mut Store,
    req: &Recorded,
    resource: Resource,
    ns: Option<&str>,
) -> Result<Routed, ApiStatus> {
    let query = Query::parse(&req.query, resource)?;
    if query.watch {
        Ok(Routed::Watch(store.watch(resource, ns, &query)))
    } else {
        Ok(Routed::Object(
            StatusCode::OK,
            store.list(resource, ns, &query)?,
        ))
    }
}

/// A header as text; absent or non-UTF-8 is empty.
fn header_str(headers: &HeaderMap, name: hyper::header::HeaderName) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Dispatches on method and path segments to the store.
fn route(store: &mut Store, req: &Recorded, body: &[u8]) -> Result<Routed, ApiStatus> {
    let segments: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    let object = |r: Result<(StatusCode, Value), ApiStatus>| r.map(|(c, v)| Routed::Object(c, v));
    match (req.method.as_str(), segments.as_slice()) {
        ("GET", ["version"]) => Ok(Routed::Object(StatusCode::OK, version())),
        ("GET", ["api", "v1", "pods"]) => collection(store, req, Resource::Pods, None),
        ("GET", ["api", "v1", "namespaces", ns, "pods"]) => {
            collection(store, req, Resource::Pods, Some(ns))
        }
        ("GET", ["api", "v1", "namespaces", ns, "pods", name])
        | ("GET", ["api", "v1", "namespaces", ns, "pods", name, "status"]) => object(
            store
                .get(Resource::Pods, ns, name)
                .map(|pod| (StatusCode::OK, pod)),
        ),
        ("PATCH", ["api", "v1", "namespaces", ns, "pods", name]) => {
            object(patch_pod(store, req, body, ns, name, PodPart::Main))
        }
        ("PATCH", ["api", "v1", "namespaces", ns, "pods", name, "status"]) => {
            object(patch_pod(store, req, body, ns, name, PodPart::Status))
        }
        ("POST", ["api", "v1", "namespaces", ns, "events"]) => {
            object(create_event(store, req, body, ns, Resource::CoreEvents))
        }
        ("POST", ["apis", "events.k8s.io", "v1", "namespaces", ns, "events"]) => {
            object(create_event(store, req, body, ns, Resource::Events))
        }
        (
            "GET",
            [
                "apis",
                "k8s.cni.cncf.io",
                "v1",
                "network-attachment-definitions",
            ],
        ) => collection(store, req, Resource::Nads, None),
        (
            "GET",
            [
                "apis",
                "k8s.cni.cncf.io",
                "v1",
                "namespaces",
                ns,
                "network-attachment-definitions",
            ],
        ) => collection(store, req, Resource::Nads, Some(ns)),
        (
            "GET",
            [
                "apis",
                "k8s.cni.cncf.io",
                "v1",
                "namespaces",
                ns,
                "network-attachment-definitions",
                name,
            ],
        ) => object(
            store
                .get(Resource::Nads, ns, name)
                .map(|nad| (StatusCode::OK, nad)),
        ),
        _ => Err(ApiStatus::no_route()),
    }
}

/// The media type of a `Content-Type` value, without parameters, lowercased.
fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// The body as JSON, or the 400 the API server answers for an undecodable body.
fn decode(body: &[u8]) -> Result<Value, ApiStatus> {
    serde_json::from_slice(body)
        .map_err(|e| ApiStatus::bad_request(format!("error decoding request body: {e}")))
}

fn patch_pod(
    store: &mut Store,
    req: &Recorded,
    body: &[u8],
    ns: &str,
    name: &str,
    part: PodPart,
) -> Result<(StatusCode, Value), ApiStatus> {
    const ACCEPTED: &str = "application/merge-patch+json";
    if media_type(&req.content_type) != ACCEPTED {
        return Err(ApiStatus::unsupported_media_type(
            &req.content_type,
            ACCEPTED,
        ));
    }
    let patch = decode(body)?;
    store
        .patch_pod(ns, name, &patch, part)
        .map(|pod| (StatusCode::OK, pod))
}

fn create_event(
    store: &mut Store,
    req: &Recorded,
    body: &[u8],
    ns: &str,
    resource: Resource,
) -> Result<(StatusCode, Value), ApiStatus> {
    const ACCEPTED: &str = "application/json";
    if media_type(&req.content_type) != ACCEPTED {
        return Err(ApiStatus::unsupported_media_type(
            &req.content_type,
            ACCEPTED,
        ));
    }
    let event = decode(body)?;
    store
        .create_event(resource, ns, event)
        .map(|event| (StatusCode::CREATED, event))
}

/// `GET /version`, shaped like a v1.33 kube-apiserver's answer.
fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "emulationMajor": "1",
        "emulationMinor": "33",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "32",
        "gitVersion": "v1.33.0",
        "gitCommit": "60a317eadfcb839692a68eab88b2096f4d708f4f",
        "gitTreeState": "clean",
        "buildDate": "2025-04-23T13:07:06Z",
        "goVersion": "go1.24.2",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// A JSON response: the object with its code, or the `Status` with its.
fn respond(result: Result<(StatusCode, Value), ApiStatus>) -> Response<Reply> {
    let (code, value) = match result {
        Ok(ok) => ok,
        Err(status) => {
            let code =
                StatusCode::from_u16(status.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (code, status.to_json())
        }
    };
    let body = serde_json::to_vec(&value).unwrap_or_default();
    let mut response = Response::new(Reply::Full(Full::new(Bytes::from(body))));
    *response.status_mut() = code;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
