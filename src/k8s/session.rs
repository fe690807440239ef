//! A blocking façade over the async API client: one current-thread tokio runtime per CNI call,
//! built only when the call needs the API server.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use super::client::{Api, ApiError};

/// A connected API client with its runtime.
pub struct Session {
    rt: tokio::runtime::Runtime,
    api: Api,
}

/// Whether plexus has cluster access at all: a kubeconfig, or in-cluster settings (it runs in a
/// pod). Reads only the environment.
pub fn configured(kubeconfig: Option<&Path>) -> bool {
    kubeconfig.is_some() || std::env::var_os("KUBERNETES_SERVICE_HOST").is_some()
}

impl Session {
    /// Connects with a kubeconfig, or with in-cluster settings when `kubeconfig` is `None` and
    /// the process runs in a pod. Returns `Ok(None)` when neither is available.
    ///
    /// # Errors
    /// [`ApiError::Config`] for an unusable kubeconfig.
    pub fn connect(
        kubeconfig: Option<&Path>,
        timeout: Duration,
        budget: Duration,
    ) -> Result<Option<Session>, ApiError> {
        if !configured(kubeconfig) {
            return Ok(None);
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ApiError::Config(format!("tokio runtime: {e}")))?;
        let api = match kubeconfig {
            Some(p) => rt.block_on(Api::from_kubeconfig(p, timeout, budget))?,
            None => {
                let _guard = rt.enter();
                Api::in_cluster(timeout, budget)?
            }
        };
        Ok(Some(Session { rt, api }))
    }

    /// The client.
    pub fn api(&self) -> &Api {
        &self.api
    }

    /// Runs a future on this session's runtime to completion.
    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }
}
