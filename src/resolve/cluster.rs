//! The cluster's API as plexus uses it (GET pod, GET NADs, PATCH network-status, POST event):
//! the [`Cluster`] seam, and [`ApiCluster`], the real one over kube-rs.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::k8s::client::{ApiError, PodInfo};
use crate::k8s::nad::NadObject;
use crate::k8s::pod::PodRef;
use crate::k8s::session::Session;

/// A NAD's key: (namespace, name).
pub type NadKey = (String, String);

/// What plexus asks of the API server. The seam the engine's tests substitute.
pub trait Cluster: Send + Sync {
    /// The pod's metadata; `None` when the API says it does not exist.
    ///
    /// # Errors
    /// [`ApiError`] for anything but a 404.
    fn pod(&self, pod: &PodRef) -> Result<Option<PodInfo>, ApiError>;

    /// Every NAD of `wanted` that exists (fetched concurrently where the API allows).
    ///
    /// # Errors
    /// The first [`ApiError`] other than a 404.
    fn nads(&self, wanted: &[NadKey]) -> Result<HashMap<NadKey, NadObject>, ApiError>;

    /// One merge PATCH of the pod's status setting `annotations`, with `event` (if any) posted
    /// alongside, best effort (never retried: an event must not be recorded twice). False
    /// when the pod is gone.
    ///
    /// # Errors
    /// [`ApiError`] when the PATCH fails.
    fn patch_status(
        &self,
        pod: &PodRef,
        annotations: &Map<String, Value>,
        event: Option<&Value>,
    ) -> Result<bool, ApiError>;
}

/// How plexus gets a [`Cluster`]: connecting is only done when a call needs the API.
pub trait Connect: Sync {
    /// A connection; `None` when plexus has no API access (no kubeconfig, not in a pod). With
    /// `budget`, each call and its retries spend at most that long (instead of the configured
    /// budget).
    ///
    /// # Errors
    /// [`ApiError::Config`] for unusable cluster access settings.
    fn connect(&self, budget: Option<Duration>) -> Result<Option<Box<dyn Cluster>>, ApiError>;
}

/// Connects with plexus's `kubeconfig` (or in-cluster settings), timeouts and retry budget.
#[derive(Debug, Clone)]
pub struct ApiConnector {
    /// The kubeconfig, if configured.
    pub kubeconfig: Option<PathBuf>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Total budget of one call with its retries.
    pub budget: Duration,
}

impl ApiConnector {
    /// Whether [`Connect::connect`] would connect at all (a kubeconfig, or in a pod).
    pub fn configured(&self) -> bool {
        crate::k8s::session::configured(self.kubeconfig.as_deref())
    }
}

impl Connect for ApiConnector {
    fn connect(&self, budget: Option<Duration>) -> Result<Option<Box<dyn Cluster>>, ApiError> {
        let budget = budget.map_or(self.budget, |b| b.min(self.budget));
        let timeout = self.timeout.min(budget);
        Ok(
            Session::connect(self.kubeconfig.as_deref(), timeout, budget)?
                .map(|s| Box::new(ApiCluster(s)) as Box<dyn Cluster>),
        )
    }
}

/// The real [`Cluster`]: kube-rs on one current-thread runtime.
pub struct ApiCluster(pub Session);

impl Cluster for ApiCluster {
    fn pod(&self, pod: &PodRef) -> Result<Option<PodInfo>, ApiError> {
        let s = &self.0;
        s.block_on(s.api().get_pod(&pod.namespace, &pod.name))
    }

    fn nads(&self, wanted: &[NadKey]) -> Result<HashMap<NadKey, NadObject>, ApiError> {
        let s = &self.0;
        s.block_on(s.api().get_nads(wanted))
    }

    fn patch_status(
        &self,
        pod: &PodRef,
        annotations: &Map<String, Value>,
        event: Option<&Value>,
    ) -> Result<bool, ApiError> {
        let s = &self.0;
        s.block_on(
            s.api()
                .patch_status(&pod.namespace, &pod.name, annotations, event),
        )
    }
}
