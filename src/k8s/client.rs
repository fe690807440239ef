//! Access to the API server through kube-rs: the few calls plexus makes (GET pod, GET NAD,
//! merge-PATCH pod status, POST event), each with a per-request timeout, retried on connection
//! errors, timeouts, 429 and 5xx within a total budget, never on other 4xx.

use std::path::Path;
use std::time::{Duration, Instant};

use kube::config::{KubeConfigOptions, Kubeconfig};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::nad::NadObject;

/// Default per-request timeout.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Default total time budget for one call including its retries.
pub const DEFAULT_RETRY_BUDGET: Duration = Duration::from_secs(30);

/// Why an API call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// The kubeconfig or in-cluster settings are unusable.
    #[error("cluster access config: {0}")]
    Config(String),
    /// The server answered with an error status (not retried, or retries exhausted).
    #[error("{what}: API server answered {code}: {message}")]
    Status {
        /// The call.
        what: String,
        /// HTTP status code.
        code: u16,
        /// The Status message.
        message: String,
    },
    /// No answer within the budget (connection errors, timeouts, 5xx).
    #[error(
        "{what}: API server unavailable after {attempts} attempt(s) in {elapsed_ms} ms: {last}"
    )]
    Unavailable {
        /// The call.
        what: String,
        /// Attempts made.
        attempts: u32,
        /// Time spent.
        elapsed_ms: u128,
        /// The last error seen.
        last: String,
    },
    /// The answer is not what the API promises.
    #[error("{what}: unexpected response: {reason}")]
    Decode {
        /// The call.
        what: String,
        /// What is wrong.
        reason: String,
    },
}

impl ApiError {
    /// True when the failure is the server's or the network's, not the request's.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, ApiError::Unavailable { .. })
    }
}

/// Reads a kubeconfig file as kube's `Kubeconfig::read_from` does (file references made
/// absolute against the file's directory; an exec command only when it has a path separator,
/// as client-go does), with the YAML parser plexus already carries: kube's own parser would add
/// about 0.4 MiB of code to every invocation's memory. One document per file.
fn read_kubeconfig(path: &Path) -> Result<Kubeconfig, ApiError> {
    let fail =
        |e: &dyn std::fmt::Display| ApiError::Config(format!("kubeconfig {}: {e}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| fail(&e))?;
    let mut kc: Kubeconfig = serde_yaml_ng::from_str(&text).map_err(|e| fail(&e))?;
    let dir = path.parent().unwrap_or(Path::new(""));
    let abs = |p: &mut Option<String>| {
        if let Some(s) = p
            && Path::new(s.as_str()).is_relative()
        {
            *s = dir.join(&*s).to_string_lossy().into_owned();
        }
    };
    for cluster in kc.clusters.iter_mut().filter_map(|n| n.cluster.as_mut()) {
        abs(&mut cluster.certificate_authority);
    }
    for user in kc
        .auth_infos
        .iter_mut()
        .filter_map(|n| n.auth_info.as_mut())
    {
        abs(&mut user.client_certificate);
        abs(&mut user.client_key);
        abs(&mut user.token_file);
        if let Some(exec) = user.exec.as_mut()
            && exec
                .command
                .as_deref()
                .is_some_and(|c| c.contains(std::path::MAIN_SEPARATOR))
        {
            abs(&mut exec.command);
        }
    }
    Ok(kc)
}

/// kube's settings from a kubeconfig file (its current context), read as plexus reads it.
///
/// # Errors
/// [`ApiError::Config`] when the file is unreadable or incomplete.
pub async fn config_from_kubeconfig(path: &Path) -> Result<kube::Config, ApiError> {
    let kc = read_kubeconfig(path)?;
    kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(|e| ApiError::Config(format!("kubeconfig {}: {e}", path.display())))
}

/// An error and its causes, outermost first, each said once: kube's "client error (Connect)"
/// alone does not tell a refused connection from a failed name lookup or a TLS failure.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let m = c.to_string();
        if !m.is_empty() && !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cause = c.source();
    }
    s
}

/// The metadata plexus reads from a pod.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct PodInfo {
    /// Pod metadata (uid, annotations).
    #[serde(default)]
    pub metadata: kube::core::ObjectMeta,
}

/// A kube-rs client with plexus's timeouts and retry budget.
#[derive(Clone)]
pub struct Api {
    client: kube::Client,
    timeout: Duration,
    budget: Duration,
}

impl Api {
    /// A client from a kubeconfig file (its current context). A user with `tokenFile` reads
    /// the file, so rotated service-account tokens keep working.
    ///
    /// # Errors
    /// [`ApiError::Config`] when the file is unreadable or incomplete.
    pub async fn from_kubeconfig(
        path: &Path,
        timeout: Duration,
        budget: Duration,
    ) -> Result<Api, ApiError> {
        let mut cfg = config_from_kubeconfig(path).await?;
        Self::from_config(&mut cfg, timeout, budget)
    }

    /// A client over `client` as it is (the node agent's, whose requests are counted and whose
    /// watches must not time out), with plexus's per-request timeout and retry budget.
    pub fn from_client(client: kube::Client, timeout: Duration, budget: Duration) -> Api {
        Api {
            client,
            timeout,
            budget,
        }
    }

    /// A client from the in-cluster service-account settings (when running in a pod).
    ///
    /// # Errors
    /// [`ApiError::Config`] when not in a cluster.
    pub fn in_cluster(timeout: Duration, budget: Duration) -> Result<Api, ApiError> {
        let mut cfg =
            kube::Config::incluster().map_err(|e| ApiError::Config(format!("in-cluster: {e}")))?;
        Self::from_config(&mut cfg, timeout, budget)
    }

    fn from_config(
        cfg: &mut kube::Config,
        timeout: Duration,
        budget: Duration,
    ) -> Result<Api, ApiError> {
        // plexus retries itself, within its own budget.
        cfg.default_retry = false;
        // A plain-http server needs no trust store: without this the TLS connector loads the
        // whole system store on every call (milliseconds on the ADD path). https servers keep
        // their kubeconfig CA (or, without one, the platform verifier).
        if cfg.cluster_url.scheme_str() == Some("http") && cfg.root_cert.is_none() {
            cfg.root_cert = Some(Vec::new());
        }
        cfg.connect_timeout = Some(timeout);
        cfg.read_timeout = Some(timeout);
        cfg.write_timeout = Some(timeout);
        let client =
            kube::Client::try_from(cfg.clone()).map_err(|e| ApiError::Config(e.to_string()))?;
        Ok(Api {
            client,
            timeout,
            budget,
        })
    }

    /// GET a pod's metadata; `None` when the pod does not exist.
    ///
    /// # Errors
    /// [`ApiError`] for anything but a 404.
    pub async fn get_pod(&self, ns: &str, name: &str) -> Result<Option<PodInfo>, ApiError> {
        let path = format!("/api/v1/namespaces/{}/pods/{}", seg(ns), seg(name));
        self.get_opt(&format!("GET pod {ns}/{name}"), path).await
    }

    /// GET a NetworkAttachmentDefinition; `None` when it does not exist.
    ///
    /// # Errors
    /// [`ApiError`] for anything but a 404.
    pub async fn get_nad(&self, ns: &str, name: &str) -> Result<Option<NadObject>, ApiError> {
        let path = format!(
            "/apis/k8s.cni.cncf.io/v1/namespaces/{}/network-attachment-definitions/{}",
            seg(ns),
            seg(name)
        );
        self.get_opt(
            &format!("GET NetworkAttachmentDefinition {ns}/{name}"),
            path,
        )
        .await
    }

    /// The NADs at `keys`, fetched at once; the ones that exist, by key.
    ///
    /// # Errors
    /// The first [`ApiError`] of a fetch (anything but a 404).
    pub async fn get_nads(
        &self,
        keys: &[(String, String)],
    ) -> Result<std::collections::HashMap<(String, String), NadObject>, ApiError> {
        let results =
            futures_util::future::join_all(keys.iter().map(|(ns, name)| self.get_nad(ns, name)))
                .await;
        let mut out = std::collections::HashMap::new();
        for (key, r) in keys.iter().zip(results) {
            if let Some(nad) = r? {
                out.insert(key.clone(), nad);
            }
        }
        Ok(out)
    }

    /// One JSON merge PATCH of the pod's `status` subresource setting `annotations`.
    /// Returns false when the pod no longer exists.
    ///
    /// # Errors
    /// [`ApiError`] for anything but a 404.
    pub async fn patch_pod_annotations(
        &self,
        ns: &str,
        name: &str,
        annotations: &serde_json::Map<String, Value>,
    ) -> Result<bool, ApiError> {
        let path = format!("/api/v1/namespaces/{}/pods/{}/status", seg(ns), seg(name));
        let body =
            serde_json::to_vec(&serde_json::json!({"metadata": {"annotations": annotations}}))
                .unwrap_or_default();
        let what = format!("PATCH pod {ns}/{name} status");
        self.patch(&what, &path, "application/merge-patch+json", body)
            .await
    }

    /// One PATCH of `path` with `body` of `content_type`; false on a 404.
    async fn patch(
        &self,
        what: &str,
        path: &str,
        content_type: &'static str,
        body: Vec<u8>,
    ) -> Result<bool, ApiError> {
        match self
            .call(what, || {
                http::Request::patch(path)
                    .header(http::header::CONTENT_TYPE, content_type)
                    .header(http::header::ACCEPT, "application/json")
                    .body(body.clone())
            })
            .await
        {
            Ok(_) => Ok(true),
            Err(ApiError::Status { code: 404, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// One strategic merge PATCH of the pod's `status` subresource setting one `condition`
    /// (conditions merge by `type`: the kubelet's stay as they are), for the pod with `uid`
    /// only. Returns false when the pod no longer exists.
    ///
    /// # Errors
    /// [`ApiError`] for anything but a 404.
    pub async fn patch_pod_condition(
        &self,
        ns: &str,
        name: &str,
        uid: &str,
        condition: &Value,
    ) -> Result<bool, ApiError> {
        let path = format!("/api/v1/namespaces/{}/pods/{}/status", seg(ns), seg(name));
        let body = serde_json::to_vec(&serde_json::json!({
            "metadata": {"uid": uid},
            "status": {"conditions": [condition]},
        }))
        .unwrap_or_default();
        let what = format!("PATCH pod {ns}/{name} status condition");
        self.patch(&what, &path, "application/strategic-merge-patch+json", body)
            .await
    }

    /// [`Api::patch_pod_annotations`] with `event` (if any) posted alongside, best effort (its
    /// failure is logged, never retried). Returns false when the pod no longer exists.
    ///
    /// # Errors
    /// [`ApiError`] when the PATCH fails.
    pub async fn patch_status(
        &self,
        ns: &str,
        name: &str,
        annotations: &serde_json::Map<String, Value>,
        event: Option<&Value>,
    ) -> Result<bool, ApiError> {
        let patch = self.patch_pod_annotations(ns, name, annotations);
        let (patched, posted) = match event {
            Some(ev) => tokio::join!(patch, self.post_event(ns, ev)),
            None => (patch.await, Ok(())),
        };
        if let Err(e) = posted {
            tracing::warn!(pod = %format!("{ns}/{name}"), error = %e, "AddedInterface event not recorded");
        }
        patched
    }

    /// POST a core/v1 Event, once: a POST that timed out may have been recorded, and an event
    /// must not be recorded twice (best effort is the caller's choice).
    ///
    /// # Errors
    /// [`ApiError`] when the server refuses or does not answer.
    pub async fn post_event(&self, ns: &str, event: &Value) -> Result<(), ApiError> {
        let path = format!("/api/v1/namespaces/{}/events", seg(ns));
        let body = serde_json::to_vec(event).unwrap_or_default();
        let what = format!("POST event in {ns}");
        let req = http::Request::post(&path)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body)
            .map_err(|e| ApiError::Decode {
                what: what.clone(),
                reason: e.to_string(),
            })?;
        match tokio::time::timeout(self.timeout, self.client.request_text(req)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(kube::Error::Api(status))) => Err(ApiError::Status {
                what,
                code: status.code,
                message: status.message.clone(),
            }),
            Ok(Err(e)) => Err(ApiError::Unavailable {
                what,
                attempts: 1,
                elapsed_ms: 0,
                last: with_causes(&e),
            }),
            Err(_) => Err(ApiError::Unavailable {
                what,
                attempts: 1,
                elapsed_ms: self.timeout.as_millis(),
                last: format!("no answer within {} ms", self.timeout.as_millis()),
            }),
        }
    }

    async fn get_opt<T: DeserializeOwned>(
        &self,
        what: &str,
        path: String,
    ) -> Result<Option<T>, ApiError> {
        let text = match self
            .call(what, || {
                http::Request::get(&path)
                    .header(http::header::ACCEPT, "application/json")
                    .body(Vec::new())
            })
            .await
        {
            Ok(t) => t,
            Err(ApiError::Status { code: 404, .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| ApiError::Decode {
                what: what.to_string(),
                reason: e.to_string(),
            })
    }

    /// Runs one request with the per-request timeout, retrying transient failures with
    /// exponential backoff until the budget is spent.
    async fn call(
        &self,
        what: &str,
        build: impl Fn() -> Result<http::Request<Vec<u8>>, http::Error>,
    ) -> Result<String, ApiError> {
        let start = Instant::now();
        let mut backoff = Duration::from_millis(50);
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let req = build().map_err(|e| ApiError::Decode {
                what: what.to_string(),
                reason: e.to_string(),
            })?;
            let remaining = self.budget.saturating_sub(start.elapsed());
            let per_try = self.timeout.min(remaining.max(Duration::from_millis(1)));
            let last = match tokio::time::timeout(per_try, self.client.request_text(req)).await {
                Ok(Ok(text)) => return Ok(text),
                Ok(Err(kube::Error::Api(status))) => {
                    let code = status.code;
                    let err = ApiError::Status {
                        what: what.to_string(),
                        code,
                        message: status.message.clone(),
                    };
                    if !(code == 429 || code >= 500) {
                        return Err(err);
                    }
                    err.to_string()
                }
                Ok(Err(e)) => with_causes(&e),
                Err(_) => format!("no answer within {} ms", per_try.as_millis()),
            };
            let elapsed = start.elapsed();
            if elapsed + backoff >= self.budget {
                return Err(ApiError::Unavailable {
                    what: what.to_string(),
                    attempts,
                    elapsed_ms: elapsed.as_millis(),
                    last,
                });
            }
            tracing::warn!(call = what, attempt = attempts, error = %last, "API call failed, retrying");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
    }
}

/// Percent-encodes a path segment (names are validated elsewhere; this keeps hostile values
/// from changing the path).
fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// plexus's kubeconfig reading gives what kube's own `read_from` gives.
    #[test]
    fn kubeconfig_reads_like_kube() {
        let dir = std::env::temp_dir().join(format!("plexus-kc-client-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("kubeconfig");
        let rows = [
            (
                "relative files",
                r#"apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://10.96.0.1:443", certificate-authority: ca.crt}
users:
- name: u
  user: {client-certificate: sub/c.crt, client-key: sub/c.key, token-file: tok}
contexts:
- name: x
  context: {cluster: c, user: u, namespace: ns1}
current-context: x
"#,
            ),
            (
                "absolute files, inline data",
                r#"apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://[fd00::1]:6443", certificate-authority-data: Zm9v, insecure-skip-tls-verify: false}
users:
- name: u
  user: {token-file: /var/run/tok, token: abc}
contexts:
- {name: x, context: {cluster: c, user: u}}
current-context: x
"#,
            ),
            (
                "exec commands",
                r#"apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "http://127.0.0.1:1"}}]
users:
- {name: a, user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: ./bin/auth, args: [x]}}}
- {name: b, user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: aws}}}
contexts: [{name: x, context: {cluster: c, user: a}}]
current-context: x
"#,
            ),
        ];
        for (name, yaml) in rows {
            std::fs::write(&path, yaml).unwrap();
            let ours = serde_json::to_value(read_kubeconfig(&path).unwrap()).unwrap();
            let theirs = serde_json::to_value(Kubeconfig::read_from(&path).unwrap()).unwrap();
            assert_eq!(ours, theirs, "{name}");
        }
        std::fs::write(&path, "clusters: [").unwrap();
        assert!(
            read_kubeconfig(&path).is_err(),
            "malformed YAML is an error"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn seg_table() {
        let rows = [
            ("plain", "my-pod.1", "my-pod.1"),
            ("slash", "a/b", "a%2Fb"),
            ("dots", "..", ".."),
            ("query", "x?y", "x%3Fy"),
        ];
        for (name, input, want) in rows {
            assert_eq!(super::seg(input), want, "{name}");
        }
    }
}
