//! The agent's connection to the API server: one kube client (watches, GETs, PATCHes, events)
//! whose every request is counted by verb and HTTP code.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::metrics::{ApiLabels, Metrics};
use crate::k8s::client::ApiError;

/// Counts each request's response (or failure) in `plexus_agent_api_requests_total`.
#[derive(Clone)]
pub struct Counted<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

/// The layer that wraps kube's HTTP service in [`Counted`].
#[derive(Clone)]
pub struct CountLayer(pub Arc<Metrics>);

impl<S> tower::Layer<S> for CountLayer {
    type Service = Counted<S>;

    fn layer(&self, inner: S) -> Counted<S> {
        Counted {
            inner,
            metrics: self.0.clone(),
        }
    }
}

/// `list`, `watch`, `get`, `patch`, `create`, `update`, `delete`.
fn verb(method: &http::Method, uri: &http::Uri) -> &'static str {
    let query = uri.query().unwrap_or_default();
    let watch = query
        .split('&')
        .any(|p| p == "watch=true" || p == "watch=1");
    let collection = {
        let path = uri.path();
        path.ends_with("/pods") || path.ends_with("/network-attachment-definitions")
    };
    match *method {
        http::Method::GET if watch => "watch",
        http::Method::GET if collection => "list",
        http::Method::GET => "get",
        http::Method::PATCH => "patch",
        http::Method::POST => "create",
        http::Method::PUT => "update",
        http::Method::DELETE => "delete",
        _ => "other",
    }
}

impl<S, B, R> tower::Service<http::Request<B>> for Counted<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    S::Error: 'static,
    R: 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let verb = verb(req.method(), req.uri());
        let metrics = self.metrics.clone();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let r = fut.await;
            let code = match &r {
                Ok(resp) => resp.status().as_u16().to_string(),
                Err(_) => "error".to_string(),
            };
            metrics
                .api_requests
                .get_or_create(&ApiLabels {
                    verb: verb.into(),
                    code,
                })
                .inc();
            r
        })
    }
}

/// A kube client from `kubeconfig` (or in-cluster settings), counting its requests. Watches
/// keep kube's own read timeout (longer than a watch's); each plexus call bounds itself.
///
/// # Errors
/// [`ApiError::Config`] for unusable cluster access settings.
pub async fn client(
    kubeconfig: Option<&Path>,
    metrics: Arc<Metrics>,
) -> Result<kube::Client, ApiError> {
    let mut config = match kubeconfig {
        Some(p) => crate::k8s::client::config_from_kubeconfig(p).await?,
        None => {
            kube::Config::incluster().map_err(|e| ApiError::Config(format!("in-cluster: {e}")))?
        }
    };
    // plexus retries its own calls; watchers back off by themselves.
    config.default_retry = false;
    let builder = kube::client::ClientBuilder::try_from(config)
        .map_err(|e| ApiError::Config(e.to_string()))?;
    Ok(builder.with_layer(&CountLayer(metrics)).build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verb_table() {
        let rows = [
            ("GET", "/api/v1/pods?fieldSelector=x&watch=true", "watch"),
            ("GET", "/api/v1/pods?limit=500", "list"),
            (
                "GET",
                "/apis/k8s.cni.cncf.io/v1/network-attachment-definitions?watch=1&x=y",
                "watch",
            ),
            ("GET", "/api/v1/namespaces/ns/pods/p", "get"),
            ("PATCH", "/api/v1/namespaces/ns/pods/p/status", "patch"),
            ("POST", "/api/v1/namespaces/default/events", "create"),
        ];
        for (m, uri, want) in rows {
            let m: http::Method = m.parse().unwrap();
            let uri: http::Uri = uri.parse().unwrap();
            assert_eq!(verb(&m, &uri), want, "{uri}");
        }
    }
}
