//! What the watchers decode of pods and NADs, and what the caches keep of them: only the
//! fields plexus reads, so the rest of each object is never held.

use std::borrow::Cow;

use kube::core::{NamespaceResourceScope, ObjectMeta};
use serde::Deserialize;

use super::{Key, SlimNad, SlimPod};
use crate::k8s::nad::{NetworkAttachmentDefinitionSpec, RESOURCE_NAME_ANNOTATION};
use crate::k8s::selection::{DEFAULT_NETWORK_ANNOTATION, NETWORKS_ANNOTATION};

/// A pod as the watcher decodes it: metadata, `hostNetwork` and the status's conditions (the
/// rest of the spec and status is skipped, never held).
#[derive(Debug, Clone, Deserialize)]
pub struct WatchedPod {
    /// Metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The one field of the spec plexus reads.
    #[serde(default)]
    pub spec: Option<WatchedPodSpec>,
    /// The one field of the status plexus reads.
    #[serde(default)]
    pub status: Option<WatchedPodStatus>,
}

/// What plexus reads of a pod's status.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct WatchedPodStatus {
    /// `conditions`.
    #[serde(default)]
    pub conditions: Vec<PodCondition>,
}

/// A pod condition as the API writes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct PodCondition {
    /// `type`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// `status`: `True`, `False` or `Unknown`.
    #[serde(default)]
    pub status: String,
    /// `reason`.
    #[serde(default)]
    pub reason: Option<String>,
    /// `message`.
    #[serde(default)]
    pub message: Option<String>,
    /// `lastTransitionTime`.
    #[serde(rename = "lastTransitionTime", default)]
    pub last_transition_time: Option<String>,
}

impl PodCondition {
    /// A condition a controller or agent owns (a domain-prefixed type, as readiness gates
    /// use), not one of the kubelet's own (`Ready`, `PodScheduled`...).
    pub fn is_custom(&self) -> bool {
        self.kind.contains('/')
    }
}

/// What plexus reads of a pod's spec.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct WatchedPodSpec {
    /// `hostNetwork`.
    #[serde(default, rename = "hostNetwork")]
    pub host_network: bool,
}

/// A NAD as the watcher decodes it (`spec` may be absent, as Multus accepts).
#[derive(Debug, Clone, Deserialize)]
pub struct WatchedNad {
    /// Metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The spec, if any.
    #[serde(default)]
    pub spec: Option<NetworkAttachmentDefinitionSpec>,
}

macro_rules! namespaced_resource {
    ($t:ty, $kind:expr, $group:expr, $version:expr, $plural:expr) => {
        impl kube::Resource for $t {
            type DynamicType = ();
            type Scope = NamespaceResourceScope;

            fn kind(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($kind)
            }

            fn group(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($group)
            }

            fn version(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($version)
            }

            fn plural(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($plural)
            }

            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }

            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

namespaced_resource!(WatchedPod, "Pod", "", "v1", "pods");
namespaced_resource!(
    WatchedNad,
    "NetworkAttachmentDefinition",
    "k8s.cni.cncf.io",
    "v1",
    "network-attachment-definitions"
);

fn key(meta: &ObjectMeta) -> Key {
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

pub(super) fn slim_pod(p: WatchedPod) -> (Key, SlimPod) {
    let k = key(&p.metadata);
    let mut all = p.metadata.annotations.unwrap_or_default();
    let network_status = all.remove(crate::k8s::status::STATUS_ANNOTATION);
    let annotations = all
        .into_iter()
        .filter(|(k, _)| k == NETWORKS_ANNOTATION || k == DEFAULT_NETWORK_ANNOTATION)
        .collect();
    let pod = SlimPod {
        uid: p.metadata.uid.unwrap_or_default(),
        annotations,
        host_network: p.spec.is_some_and(|s| s.host_network),
        network_status,
        conditions: p
            .status
            .map(|s| s.conditions)
            .unwrap_or_default()
            .into_iter()
            .filter(PodCondition::is_custom)
            .collect(),
        edits: 0,
    };
    (k, pod)
}

pub(super) fn slim_nad(n: WatchedNad) -> (Key, SlimNad) {
    let k = key(&n.metadata);
    let resource_name = n
        .metadata
        .annotations
        .and_then(|mut a| a.remove(RESOURCE_NAME_ANNOTATION));
    let nad = SlimNad {
        config: n.spec.and_then(|s| s.config),
        resource_name,
    };
    (k, nad)
}
