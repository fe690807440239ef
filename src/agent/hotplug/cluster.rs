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
        let mut out = HashMap::new();
        let mut missing = Vec::new();
        let synced = self.caches.nad_state().synced;
        for key in wanted {
            let cached = synced
                .then(|| self.caches.nads(std::slice::from_ref(key)))
                .flatten()
                .and_then(|mut v| v.pop())
                .and_then(|v| serde_json::from_value::<NadObject>(v).ok());
            match cached {
                Some(nad) => {
                    out.insert(key.clone(), nad);
                }
                None => missing.push(key.clone()),
            }
        }
        // Not cached (yet): the API says whether it exists.
        for key in missing {
            if let Some(nad) = self.runtime.block_on(self.api.get_nad(&key.0, &key.1))? {
                out.insert(key, nad);
            }
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
