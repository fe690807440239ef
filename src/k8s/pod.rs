//! The pod a CNI call is for: identity from `CNI_ARGS`, annotations from the runtime or the API.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::cni::env::Request;

/// `runtimeConfig` key under which containerd sends the pod's annotations (when the conflist
/// declares the capability).
pub const POD_ANNOTATIONS_CAPABILITY: &str = "io.kubernetes.cri.pod-annotations";

/// Why `CNI_ARGS` cannot name a pod.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PodRefError {
    /// Not a valid namespace name.
    #[error("K8S_POD_NAMESPACE {0:?} is not a valid namespace name")]
    Namespace(String),
    /// Not a valid pod name.
    #[error("K8S_POD_NAME {0:?} is not a valid pod name")]
    Name(String),
}

/// The pod named by `K8S_POD_NAMESPACE` / `K8S_POD_NAME` (/ `K8S_POD_UID`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRef {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// UID, when the runtime sent it.
    pub uid: Option<String>,
}

impl std::fmt::Display for PodRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

impl PodRef {
    /// The pod identity from `CNI_ARGS`; `None` when the call is not for a Kubernetes pod.
    ///
    /// # Errors
    /// [`PodRefError`] for a namespace or name that is not a valid Kubernetes name (they end
    /// up in API paths).
    pub fn from_request(req: &Request) -> Result<Option<PodRef>, PodRefError> {
        let (Some(ns), Some(name)) = (req.arg("K8S_POD_NAMESPACE"), req.arg("K8S_POD_NAME")) else {
            return Ok(None);
        };
        if ns.is_empty() && name.is_empty() {
            return Ok(None);
        }
        if !is_dns_label(ns) {
            return Err(PodRefError::Namespace(crate::cni::env::truncate(ns)));
        }
        if !is_dns_subdomain(name) {
            return Err(PodRefError::Name(crate::cni::env::truncate(name)));
        }
        Ok(Some(PodRef {
            namespace: ns.to_string(),
            name: name.to_string(),
            uid: req
                .arg("K8S_POD_UID")
                .filter(|u| !u.is_empty())
                .map(str::to_string),
        }))
    }
}

/// The pod annotations the runtime sent in `runtimeConfig`, if any.
pub fn runtime_annotations(
    runtime_config: &serde_json::Map<String, Value>,
) -> Option<BTreeMap<String, String>> {
    let m = runtime_config
        .get(POD_ANNOTATIONS_CAPABILITY)?
        .as_object()?;
    Some(
        m.iter()
            .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
            .collect(),
    )
}

pub use super::names::{is_dns_label, is_dns_subdomain};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_table() {
        let req = |args: &str| Request {
            command: crate::cni::env::Command::Add,
            container_id: "c".into(),
            netns: "/n".into(),
            ifname: "eth0".into(),
            args: crate::cni::env::parse_args(args).unwrap(),
            path: vec![],
        };
        let rows: &[(&str, &str, Result<Option<&str>, &str>)] = &[
            ("none", "IgnoreUnknown=1", Ok(None)),
            (
                "full",
                "K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p;K8S_POD_UID=u",
                Ok(Some("ns/p")),
            ),
            (
                "hostile ns",
                "K8S_POD_NAMESPACE=../x;K8S_POD_NAME=p",
                Err("K8S_POD_NAMESPACE"),
            ),
            (
                "hostile name",
                "K8S_POD_NAMESPACE=ns;K8S_POD_NAME=a/b",
                Err("K8S_POD_NAME"),
            ),
        ];
        for (name, args, want) in rows {
            let got = PodRef::from_request(&req(args));
            match (got, want) {
                (Ok(p), Ok(w)) => assert_eq!(p.map(|p| p.to_string()).as_deref(), *w, "{name}"),
                (Err(e), Err(frag)) => assert!(e.to_string().contains(frag), "{name}: {e}"),
                (got, _) => panic!("{name}: {got:?}"),
            }
        }
    }
}
