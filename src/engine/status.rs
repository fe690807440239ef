//! STATUS: the readiness indicator file and the cluster network's own STATUS. Only the cluster
//! network is resolved; a cluster network named by a NAD is read through the API with a short
//! budget (an API server that cannot answer means not ready, which is then true).

use std::time::Duration;

use super::Engine;
use crate::cni::env::Command;
use crate::delegate::{Invocation, list};
use crate::error::{Error, NotReady};
use crate::resolve::{NadProblem, Ref, ResolveError};

/// The most STATUS spends reading a NAD cluster network (runtimes poll STATUS every few seconds).
pub const STATUS_API_BUDGET: Duration = Duration::from_secs(2);

impl Engine<'_> {
    /// STATUS.
    ///
    /// # Errors
    /// [`Error::NotReady`] when the readiness file is missing, the cluster network cannot be
    /// resolved, or its plugins report they are not ready.
    pub fn status(&self) -> Result<(), Error> {
        if let Some(f) = &self.cfg.readiness_indicator_file
            && !f.exists()
        {
            return Err(Error::NotReady(NotReady::ReadinessFile(f.clone())));
        }
        let unresolved =
            |e: ResolveError| Error::NotReady(NotReady::Unresolved(Box::new(e.into())));
        let resolver = self.resolver();
        let conf = match resolver.cluster_network().map_err(unresolved)? {
            Ref::Conf(c) => c,
            Ref::Nad(key) => {
                let cluster = self
                    .seams
                    .connect
                    .connect(Some(STATUS_API_BUDGET))
                    .map_err(|e| unresolved(e.into()))?
                    .ok_or_else(|| {
                        unresolved(ResolveError::NoApiAccess {
                            pod: None,
                            wanted: vec![format!("{}/{}", key.0, key.1)],
                        })
                    })?;
                let nads = cluster
                    .nads(std::slice::from_ref(&key))
                    .map_err(|e| unresolved(e.into()))?;
                let nad = nads.get(&key).ok_or_else(|| {
                    unresolved(ResolveError::Nad {
                        namespace: key.0.clone(),
                        name: key.1.clone(),
                        reason: Box::new(NadProblem::NotFound),
                    })
                })?;
                resolver.nad_conf(&key, nad).map_err(unresolved)?.conf
            }
        };
        let inv = Invocation {
            command: Command::Status,
            container_id: "",
            netns: "",
            ifname: "",
            args: &self.args,
            cancel: None,
        };
        list::status(self.seams.exec, &conf, &inv).map_err(|failure| {
            Error::NotReady(NotReady::Plugin {
                network: conf.name.clone(),
                failure,
            })
        })
    }
}
