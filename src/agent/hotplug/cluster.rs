//! The cluster as a hot-plug pass sees it from the agent: NADs from the agent's cache (the API
//! for any it does not hold yet), the network-status PATCH over the agent's own connection. A
//! pass runs on a thread of its own; each call is carried out on the agent's runtime.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::runtime::Handle;

use crate::agent::cache::Caches;
use crate::k8s::client::{Api, ApiError, PodInfo};
use crate::k8s::nad::NadObject;
use crate::k8s::pod::PodRef;
use crate::resolve::cluster::{Cluster, Connect, NadKey};

/// The agent's caches and connection, for a pass on another thread.
#[derive(Clone)]
pub struct AgentCluster {
    /// The caches.
    pub caches: Arc<Caches>,
    /// The agent's API connection.
    pub api: Api,
    /// The agent's runtime (it drives the connection's I/O).
    pub runtime: Handle,
}

impl Connect for AgentCluster {
    fn connect(&self, _budget: Option<Duration>) -> Result<Option<Box<dyn Cluster>>, ApiError> {
        Ok(Some(Box::new(self.clone())))
    }
}

impl Cluster for AgentCluster {
    fn pod(&self, pod: &PodRef) -> Result<Option<PodInfo>, ApiError> {
        self.runtime
            .block_on(self.api.get_pod(&pod.namespace, &pod.name))
    }

    fn nads(&self, wanted: &[NadKey]) -> Result<HashMap<NadKey, NadObject>, ApiError> {
        let synced = self.caches.nad_state().synced;
        let cached = if synced {
            self.caches.nads_each(wanted)
        } else {
            vec![None; wanted.len()]
        };
        let mut out = HashMap::new();
        let mut missing = Vec::new();
        for (key, nad) in wanted.iter().zip(cached) {
            match nad.and_then(|v| serde_json::from_value::<NadObject>(v).ok()) {
                Some(nad) => {
                    out.insert(key.clone(), nad);
                }
                None => missing.push(key.clone()),
            }
        }
        // Not cached (yet): the API says whether they exist.
        if !missing.is_empty() {
            out.extend(self.runtime.block_on(self.api.get_nads(&missing))?);
        }
        Ok(out)
    }

    fn patch_status(
        &self,
        pod: &PodRef,
        annotations: &Map<String, Value>,
        _event: Option<&Value>,
    ) -> Result<bool, ApiError> {
        // Hot-plug posts its own events (what changed), never ADD's list of every interface.
        self.runtime.block_on(
            self.api
                .patch_status(&pod.namespace, &pod.name, annotations, None),
        )
    }
}
