//! CHECK: plexus itself verifies that every attachment of the record
//! ([`crate::txn::Record::attached`]) is as ADD left it (whatever the delegate's cniVersion; the
//! same code as the agent's health rounds, [`crate::health`]), then each delegate checks its own
//! attachment with the cached result as `prevResult`.

use std::path::Path;

use super::Engine;
use crate::error::{CheckProblem, Error};
use crate::txn::{Loaded, Step};

impl Engine<'_> {
    /// CHECK.
    ///
    /// # Errors
    /// The first attachment that is not as ADD left it, named; an unknown container.
    pub fn check(&self) -> Result<(), Error> {
        let held = self.seams.store.lock(&self.req.container_id)?;
        let rec = match crate::txn::load(&*held)? {
            Loaded::Record(r) if r.complete => r,
            Loaded::Corrupt(reason) => {
                return Err(Error::Journal(crate::journal::JournalError::Unusable {
                    container_id: self.req.container_id.clone(),
                    reason,
                }));
            }
            Loaded::Missing => {
                // Taking the lock created a lock file for a container plexus never saw.
                held.remove()?;
                return Err(Error::UnknownContainer(self.req.container_id.clone()));
            }
            Loaded::Record(_) => {
                return Err(Error::UnknownContainer(self.req.container_id.clone()));
            }
        };
        let steps: Vec<&Step> = rec.attached().collect();
        self.check_in_pod(&steps)?;
        for step in steps {
            crate::health::delegate_check(
                self.seams.exec,
                &self.req.container_id,
                &self.req.netns,
                step,
            )
            .map_err(|f| Error::Delegates(vec![*f]))?;
        }
        Ok(())
    }

    /// Each step's attachment is as ADD left it ([`crate::health::examine`]): the first that
    /// is not, named.
    fn check_in_pod(&self, steps: &[&Step]) -> Result<(), Error> {
        let found = crate::health::examine(self.seams.net, Path::new(&self.req.netns), steps)
            .map_err(|e| Error::Check {
                network: String::new(),
                ifname: String::new(),
                problem: CheckProblem::Unreadable(e),
            })?;
        for (step, found) in steps.iter().zip(found) {
            found.map_err(|problem| Error::Check {
                network: step.network.clone(),
                ifname: step.ifname.clone(),
                problem,
            })?;
        }
        Ok(())
    }
}
