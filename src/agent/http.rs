//! The agent's HTTP endpoint (`--metrics-addr`): `/metrics` (OpenMetrics text), `/healthz`
//! (the agent answers), `/readyz` (caches synced, socket served and, when it keeps the node
//! installed, plexus's conflist in place and first).

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::cache::Caches;
use super::metrics::Metrics;

/// What the endpoints read.
pub struct Endpoint {
    /// The caches (readiness, metrics).
    pub caches: Arc<Caches>,
    /// The metrics.
    pub metrics: Arc<Metrics>,
    /// The installed conflist: its plexus config names the journal the metrics read, resolved
    /// at each scrape (an install or an edit after the agent started is seen).
    pub conflist: PathBuf,
    /// Set once the plugin socket is served.
    pub socket_up: AtomicBool,
    /// The CNI config directory, when the agent keeps the node installed.
    pub install_conf_dir: Option<PathBuf>,
    /// The plugin's report socket (drained before a scrape).
    pub reports: Arc<tokio::net::UnixDatagram>,
}

impl Endpoint {
    /// Whether the agent is ready, and what is not.
    pub fn readiness(&self) -> Result<String, String> {
        let mut not = Vec::new();
        if !self.caches.pod_state().synced {
            not.push("the pod cache has not synced".to_string());
        }
        if !self.caches.nad_state().synced {
            not.push("the NAD cache has not synced".to_string());
        }
        if !self.socket_up.load(Ordering::Relaxed) {
            not.push("the plugin socket is not served".to_string());
        }
        let installed = match &self.install_conf_dir {
            Some(dir) => match crate::install::check(dir) {
                Ok(state) => format!("; {state}"),
                Err(e) => {
                    not.push(e.to_string());
                    String::new()
                }
            },
            None => String::new(),
        };
        if not.is_empty() {
            Ok(format!("ready: caches synced, socket served{installed}"))
        } else {
            Err(format!("not ready: {}", not.join("; ")))
        }
    }
}

fn text(code: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = code;
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

async fn handle(
    ep: Arc<Endpoint>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    const PLAIN: &str = "text/plain; charset=utf-8";
    Ok(match req.uri().path() {
        "/metrics" => {
            super::serve::drain(&ep.reports, &ep.metrics);
            // Reading the journal is file I/O: not on the runtime's thread.
            let e = ep.clone();
            let body = tokio::task::spawn_blocking(move || {
                e.metrics.encode(&super::journal_of(&e.conflist), &e.caches)
            })
            .await
            .unwrap_or_default();
            text(
                StatusCode::OK,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                body,
            )
        }
        "/healthz" => text(StatusCode::OK, PLAIN, "ok\n".into()),
        "/readyz" => match ep.readiness() {
            Ok(s) => text(StatusCode::OK, PLAIN, format!("{s}\n")),
            Err(s) => text(StatusCode::SERVICE_UNAVAILABLE, PLAIN, format!("{s}\n")),
        },
        _ => text(StatusCode::NOT_FOUND, PLAIN, "not found\n".into()),
    })
}

/// Serves the endpoints until the task is dropped.
pub async fn serve(listener: TcpListener, ep: Arc<Endpoint>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(super::serve::ERROR_PAUSE).await;
            continue;
        };
        let ep = ep.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(ep.clone(), req));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
