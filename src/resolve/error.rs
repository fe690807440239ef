//! Why a pod's networks cannot be decided, typed: the resolver's errors and what is wrong with a
//! NAD or a device.

use crate::cni::conf::ConfError;
use crate::k8s::client::ApiError;
use crate::k8s::pod::{PodRef, PodRefError};
use crate::k8s::selection::SelectionError;
use crate::plan::PlanError;

use super::RefError;

/// Why a pod's networks cannot be decided; nothing has run.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// Neither `clusterNetwork` nor `delegates` names a cluster network.
    #[error("neither clusterNetwork nor delegates is set: no cluster network to run")]
    NoClusterNetwork,
    /// A config reference that does not resolve, or names an invalid config file.
    #[error(transparent)]
    Ref(#[from] RefError),
    /// An inline `delegates` entry that is not a valid config.
    #[error(transparent)]
    Delegate(ConfError),
    /// A network whose config runs plexus itself.
    #[error("the network {network:?} runs plexus itself (type {own_type:?}); that would recurse")]
    SelfReference {
        /// The network.
        network: String,
        /// plexus's own type.
        own_type: String,
    },
    /// `K8S_POD_NAMESPACE` / `K8S_POD_NAME` that cannot name a pod.
    #[error(transparent)]
    PodIdentity(#[from] PodRefError),
    /// The pod's network annotations are invalid.
    #[error(transparent)]
    Selection(#[from] SelectionError),
    /// A NetworkAttachmentDefinition the pod needs is missing, forbidden or invalid.
    #[error("NetworkAttachmentDefinition {namespace}/{name}: {reason}")]
    Nad {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// What is wrong.
        reason: Box<NadProblem>,
    },
    /// The plan for the pod breaks a rule.
    #[error("{}invalid attachment plan: {source}", .pod.as_ref().map(|p| format!("pod {p}: ")).unwrap_or_default())]
    Plan {
        /// The pod (`namespace/name`), if the call is for one.
        pod: Option<String>,
        /// The rule broken.
        source: Box<PlanError>,
    },
    /// The API server says the pod does not exist (the runtime retries).
    #[error("pod {0} not found in the API server (it may not be visible yet, or was deleted)")]
    PodNotFound(PodRef),
    /// The pod exists under another UID: the one the runtime asked for was replaced.
    #[error("pod {pod} has UID {found}, the runtime asked for UID {wanted}: the pod was replaced")]
    PodReplaced {
        /// The pod.
        pod: PodRef,
        /// Its UID in the API.
        found: String,
        /// The UID the runtime gave.
        wanted: String,
    },
    /// Networks that only the API can resolve, without API access.
    #[error(
        "{} needs NetworkAttachmentDefinition(s) {} but plexus has no API access (set kubeconfig)",
        .pod.as_ref().map(|p| format!("pod {p}")).unwrap_or_else(|| "the configuration".into()),
        .wanted.join(", ")
    )]
    NoApiAccess {
        /// The pod, if any.
        pod: Option<PodRef>,
        /// `namespace/name` of each NAD needed.
        wanted: Vec<String>,
    },
    /// The API server failed or refused.
    #[error(transparent)]
    Api(#[from] ApiError),
}

/// What is wrong with a NAD.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NadProblem {
    /// It does not exist.
    #[error("not found")]
    NotFound,
    /// Namespace isolation forbids it to this pod.
    #[error(
        "pod {pod} may not use a network of namespace {namespace:?}: namespaceIsolation is on \
         (global namespaces: {global})"
    )]
    Isolated {
        /// The pod.
        pod: String,
        /// The NAD's namespace.
        namespace: String,
        /// The global namespaces, listed.
        global: String,
    },
    /// `spec.config` is not JSON.
    #[error("spec.config is not valid JSON: {0}")]
    Json(String),
    /// `spec.config` is not a valid config.
    #[error("spec.config: {0}")]
    Config(ConfError),
    /// `spec.config` is empty and confDir has no config of that name.
    #[error("spec.config is empty and {0}")]
    NoFile(RefError),
    /// Its config runs plexus itself.
    #[error("its config runs plexus itself (type {0:?}); that would recurse")]
    SelfReference(String),
    /// Its device-plugin resource cannot give the pod a device.
    #[error("{0}")]
    Device(DeviceProblem),
}

/// Why a NAD tied to a device-plugin resource gets no device.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceProblem {
    /// The pod's UID is needed to find its devices.
    #[error("resource {0:?} needs the pod's UID (K8S_POD_UID) to find its devices")]
    NoUid(String),
    /// The kubelet checkpoint cannot be read or understood.
    #[error("kubelet checkpoint: {0}")]
    Checkpoint(String),
    /// Every device of the resource allocated to the pod is taken.
    #[error("no free device of resource {0:?} is allocated to the pod")]
    NoneFree(String),
}
