//! STATUS: the readiness indicator file and the cluster network's own STATUS.

use super::Engine;
use crate::cni::env::Command;
use crate::delegate::list;
use crate::error::Error;

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
            return Err(Error::NotReady(format!(
                "readiness indicator file {} does not exist",
                f.display()
            )));
        }
        let networks = self
            .cfg
            .networks()
            .map_err(|e| Error::NotReady(format!("cluster network: {e}")))?;
        let cluster = &networks[0];
        let inv = self.invocation(Command::Status, "", "", &self.args);
        list::status(self.exec, cluster, &inv).map_err(|f| {
            Error::NotReady(format!(
                "cluster network {:?}: plugin {}: {}",
                cluster.name, f.plugin, f.source
            ))
        })
    }
}
