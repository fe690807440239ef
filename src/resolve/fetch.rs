//! The resolution of a pod through the API: its annotations (from the runtime, else one GET),
//! its NADs (fetched concurrently), the kubelet's device checkpoint when a NAD needs a device,
//! then [`Resolver::pod_plan`].

use std::cell::OnceCell;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::cluster::{Cluster, Connect, NadKey};
use super::{
    ConfigNetworks, DeviceProblem, DeviceSource, NadProblem, NadSource, ResolveError, ResolvedNad,
    Resolver,
};
use crate::k8s::nad::NadObject;
use crate::k8s::pod::{PodRef, runtime_annotations};
use crate::plan::Attachment;

/// A pod's plan, with what ADD needs afterwards to write its network-status.
pub struct PodPlan {
    /// The attachments, in order.
    pub plan: Vec<Attachment>,
    /// The pod, when the call is for one.
    pub pod: Option<PodRef>,
    /// The API connection, when there is one.
    pub cluster: Option<Box<dyn Cluster>>,
}

impl std::fmt::Debug for PodPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PodPlan")
            .field("plan", &self.plan)
            .field("pod", &self.pod)
            .field("cluster", &self.cluster.is_some())
            .finish()
    }
}

/// Resolves everything for `pod` (or, without one, what the configuration alone gives):
/// annotations from the runtime's `runtimeConfig` when it sent them, else one GET; every NAD
/// needed, fetched concurrently; the plan. `nets` is [`Resolver::config_networks`], already
/// computed by the caller.
///
/// # Errors
/// [`ResolveError`]: the pod not found or replaced, invalid annotations, a NAD missing,
/// forbidden or invalid, no API access for NADs, the API failing, a plan breaking a rule.
pub fn resolve_pod(
    resolver: &Resolver<'_>,
    connect: &dyn Connect,
    pod: Option<PodRef>,
    nets: &ConfigNetworks,
) -> Result<PodPlan, ResolveError> {
    let Some(mut pod) = pod else {
        return Ok(PodPlan {
            plan: resolver.config_plan()?,
            pod: None,
            cluster: None,
        });
    };
    let cfg = resolver.config();
    let cluster = connect.connect(None)?;
    let annotations = match (runtime_annotations(&cfg.runtime_config), &cluster) {
        (Some(a), _) => a,
        (None, Some(c)) => {
            let info = c
                .pod(&pod)?
                .ok_or_else(|| ResolveError::PodNotFound(pod.clone()))?;
            let uid = info.metadata.uid.clone().unwrap_or_default();
            match pod.uid.clone() {
                Some(wanted) if !uid.is_empty() && wanted != uid => {
                    return Err(ResolveError::PodReplaced {
                        pod,
                        found: uid,
                        wanted,
                    });
                }
                None if !uid.is_empty() => pod.uid = Some(uid),
                _ => {}
            }
            info.metadata.annotations.unwrap_or_default()
        }
        (None, None) => {
            tracing::warn!(%pod, "no kubeconfig and not in a cluster: pod annotations unavailable");
            BTreeMap::new()
        }
    };
    let req = resolver.pod_request(&pod, &annotations)?;
    let wanted = resolver.wanted(&pod, &req, nets);
    let fetched = match (&cluster, wanted.is_empty()) {
        (_, true) => HashMap::new(),
        (Some(c), false) => c.nads(&wanted)?,
        (None, false) => {
            return Err(ResolveError::NoApiAccess {
                pod: Some(pod),
                wanted: wanted.iter().map(|(n, m)| format!("{n}/{m}")).collect(),
            });
        }
    };
    let nads = Fetched {
        resolver,
        objects: &fetched,
    };
    let devices = Checkpoint {
        path: &cfg.device_checkpoint_file,
        bytes: OnceCell::new(),
    };
    let plan = resolver.pod_plan(&pod, &req, nets, &nads, Some(&devices))?;
    Ok(PodPlan {
        plan,
        pod: Some(pod),
        cluster,
    })
}

/// The NADs the API returned, as a [`NadSource`] (a key it does not hold is not found).
pub struct Fetched<'r> {
    /// Reads each NAD's config.
    pub resolver: &'r Resolver<'r>,
    /// What the API returned.
    pub objects: &'r HashMap<NadKey, NadObject>,
}

impl NadSource for Fetched<'_> {
    fn nad(&self, key: &NadKey) -> Result<ResolvedNad, ResolveError> {
        let nad = self.objects.get(key).ok_or_else(|| ResolveError::Nad {
            namespace: key.0.clone(),
            name: key.1.clone(),
            reason: Box::new(NadProblem::NotFound),
        })?;
        self.resolver.nad_conf(key, nad)
    }
}

/// The kubelet's device-plugin checkpoint, read once when a NAD first needs it.
struct Checkpoint<'p> {
    path: &'p Path,
    bytes: OnceCell<Result<Vec<u8>, String>>,
}

impl DeviceSource for Checkpoint<'_> {
    fn devices(&self, uid: &str, resource: &str) -> Result<Vec<String>, DeviceProblem> {
        let bytes = self.bytes.get_or_init(|| {
            std::fs::read(self.path).map_err(|e| {
                format!(
                    "reading the kubelet checkpoint {}: {e}",
                    self.path.display()
                )
            })
        });
        let bytes = bytes
            .as_ref()
            .map_err(|e| DeviceProblem::Checkpoint(e.clone()))?;
        crate::k8s::devices::pod_devices(bytes, uid, resource)
            .map_err(|e| DeviceProblem::Checkpoint(e.to_string()))
    }
}
