//! The kubeconfig the plugin on the host uses: the API server from the in-cluster service
//! environment, the CA and the service-account token referenced by *path* (`tokenFile`), so a
//! rotated token is picked up and no secret is ever copied to disk.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde_json::json;

/// Where the kubelet mounts a pod's service-account token.
pub const DEFAULT_TOKEN_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
/// Where the kubelet mounts the cluster CA bundle.
pub const DEFAULT_CA_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";

/// Why no kubeconfig can be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KubeconfigError {
    /// The in-cluster service environment is missing.
    #[error(
        "KUBERNETES_SERVICE_HOST is not set: not running in a Kubernetes pod; \
         run inside the cluster or pass --skip-kubeconfig"
    )]
    NotInCluster,
    /// A variable has an unusable value.
    #[error("{var}={value:?}: {reason}")]
    BadEnv {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
        /// What is wrong.
        reason: &'static str,
    },
}

/// The API server URL from `KUBERNETES_SERVICE_HOST`/`KUBERNETES_SERVICE_PORT` (port 443 when
/// unset), an IPv6 host in brackets.
///
/// # Errors
/// [`KubeconfigError::NotInCluster`] without a host; [`KubeconfigError::BadEnv`] for a port
/// that is not a number or a host with characters a URL host cannot hold.
pub fn server_url(env: impl Fn(&str) -> Option<String>) -> Result<String, KubeconfigError> {
    let host = env("KUBERNETES_SERVICE_HOST")
        .filter(|h| !h.is_empty())
        .ok_or(KubeconfigError::NotInCluster)?;
    let port = env("KUBERNETES_SERVICE_PORT").filter(|p| !p.is_empty());
    let port = match port {
        None => 443,
        Some(p) => p.parse::<u16>().map_err(|_| KubeconfigError::BadEnv {
            var: "KUBERNETES_SERVICE_PORT",
            value: p.clone(),
            reason: "not a port number",
        })?,
    };
    if host
        .chars()
        .any(|c| c.is_whitespace() || "/?#@[]".contains(c))
    {
        return Err(KubeconfigError::BadEnv {
            var: "KUBERNETES_SERVICE_HOST",
            value: host,
            reason: "not a host name or IP address",
        });
    }
    Ok(match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(_)) => format!("https://[{host}]:{port}"),
        _ => format!("https://{host}:{port}"),
    })
}

/// The kubeconfig's inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kubeconfig {
    /// API server URL.
    pub server: String,
    /// CA bundle path, as the plugin on the host sees it.
    pub ca_file: PathBuf,
    /// Token file path, as the plugin on the host sees it.
    pub token_file: PathBuf,
}

impl Kubeconfig {
    /// The kubeconfig as YAML.
    pub fn render(&self) -> Vec<u8> {
        let p = |p: &Path| p.display().to_string();
        let v = json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{
                "name": "local",
                "cluster": {"server": self.server, "certificate-authority": p(&self.ca_file)},
            }],
            "users": [{"name": "plexus", "user": {"tokenFile": p(&self.token_file)}}],
            "contexts": [{
                "name": "plexus-context",
                "context": {"cluster": "local", "user": "plexus"},
            }],
            "current-context": "plexus-context",
        });
        let mut out =
            b"# Written by `plexus install`: the plexus CNI plugin's access to the API server.\n"
                .to_vec();
        out.extend(
            serde_yaml_ng::to_string(&v)
                .unwrap_or_default()
                .into_bytes(),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_url_table() {
        let rows: &[(&str, Option<&str>, Option<&str>, Result<&str, &str>)] = &[
            (
                "ipv4",
                Some("10.96.0.1"),
                Some("443"),
                Ok("https://10.96.0.1:443"),
            ),
            (
                "ipv6 bracketed",
                Some("fd00::1"),
                Some("6443"),
                Ok("https://[fd00::1]:6443"),
            ),
            ("name", Some("api.local"), None, Ok("https://api.local:443")),
            ("no host", None, Some("443"), Err("--skip-kubeconfig")),
            (
                "empty host",
                Some(""),
                Some("443"),
                Err("KUBERNETES_SERVICE_HOST"),
            ),
            (
                "bad port",
                Some("10.0.0.1"),
                Some("https"),
                Err("not a port"),
            ),
            ("bad host", Some("a/b"), Some("1"), Err("not a host")),
        ];
        for (row, host, port, want) in rows {
            let env = |k: &str| match k {
                "KUBERNETES_SERVICE_HOST" => host.map(str::to_string),
                "KUBERNETES_SERVICE_PORT" => port.map(str::to_string),
                _ => None,
            };
            match (want, server_url(env)) {
                (Ok(u), Ok(g)) => assert_eq!(g, *u, "{row}"),
                (Err(f), Err(e)) => assert!(e.to_string().contains(f), "{row}: {e}"),
                (w, g) => panic!("{row}: want {w:?}, got {g:?}"),
            }
        }
    }

    #[test]
    fn renders_a_kubeconfig_kube_reads_with_token_file() {
        let dir = std::env::temp_dir().join(format!("plexus-kc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let kc = Kubeconfig {
            server: "https://[fd00::1]:443".into(),
            ca_file: "/host/ca.crt".into(),
            token_file: "/host/token".into(),
        };
        let path = dir.join("kc");
        std::fs::write(&path, kc.render()).unwrap();
        let parsed = kube::config::Kubeconfig::read_from(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(parsed.current_context.as_deref(), Some("plexus-context"));
        let cluster = parsed.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.server.as_deref(), Some("https://[fd00::1]:443"));
        assert_eq!(
            cluster.certificate_authority.as_deref(),
            Some("/host/ca.crt")
        );
        let user = parsed.auth_infos[0].auth_info.as_ref().unwrap();
        assert_eq!(user.token_file.as_deref(), Some("/host/token"));
        assert!(user.token.is_none());
    }
}
