//! CHECK: every journaled attachment, in order, with its cached result as `prevResult`.

use super::{Engine, Loaded, read_record};
use crate::cni::env::Command;
use crate::delegate::list;
use crate::error::{DelegateFailure, Error};

impl Engine<'_> {
    /// CHECK.
    ///
    /// # Errors
    /// The first attachment whose delegate reports a problem, named; an unknown container.
    pub fn check(&self) -> Result<(), Error> {
        let lock = self.journal.lock(&self.req.container_id)?;
        let rec = match read_record(&lock)? {
            Loaded::Record(r) if r.complete => r,
            Loaded::Corrupt(reason) => {
                return Err(Error::Plan(format!(
                    "journal of container {:?} is corrupt: {reason}",
                    self.req.container_id
                )));
            }
            _ => return Err(Error::UnknownContainer(self.req.container_id.clone())),
        };
        let atts = rec.attachments().map_err(|e| Error::Config(e.into()))?;
        for (a, cached) in &atts {
            let inv = self.invocation(Command::Check, &self.req.netns, &a.ifname, &a.cni_args);
            list::check(self.exec, &a.conf, &inv, &a.runtime_config, cached.as_ref()).map_err(
                |f| {
                    Error::Delegates(vec![DelegateFailure {
                        verb: Command::Check,
                        network: a.network.clone(),
                        ifname: a.ifname.clone(),
                        plugin: f.plugin,
                        source: f.source,
                    }])
                },
            )?;
        }
        Ok(())
    }
}
