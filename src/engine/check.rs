//! CHECK: plexus itself verifies that every journaled interface and its addresses are in the
//! pod (whatever the delegate's cniVersion), then each delegate checks its own attachment with
//! the cached result as `prevResult`.

use std::net::IpAddr;
use std::path::Path;

use super::Engine;
use crate::cni::env::Command;
use crate::delegate::{DelegateError, Invocation, list};
use crate::error::{CheckProblem, DelegateFailure, Error};
use crate::txn::runner::parsed_result;
use crate::txn::{Loaded, Record};

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
        self.check_in_pod(&rec)?;
        for step in &rec.steps {
            let inv = Invocation {
                command: Command::Check,
                container_id: &self.req.container_id,
                netns: &self.req.netns,
                ifname: &step.ifname,
                args: &step.cni_args,
                cancel: None,
            };
            let failure = |source| DelegateFailure {
                verb: Command::Check,
                network: step.network.clone(),
                ifname: step.ifname.clone(),
                plugin: step.types(),
                source,
            };
            let conf = step
                .conf_list()
                .ok_or_else(|| Error::Delegates(vec![failure(DelegateError::Unusable)]))?;
            list::check(
                self.seams.exec,
                &conf,
                &inv,
                &step.runtime_config,
                step.result.as_ref(),
            )
            .map_err(|f| {
                Error::Delegates(vec![DelegateFailure::of_step(Command::Check, step, f)])
            })?;
        }
        Ok(())
    }

    /// Each step's interface exists in the pod with every address its result reported.
    fn check_in_pod(&self, rec: &Record) -> Result<(), Error> {
        let ifnames: Vec<&str> = rec.steps.iter().map(|s| s.ifname.as_str()).collect();
        let seen = self
            .seams
            .net
            .inspect(Path::new(&self.req.netns), &ifnames)
            .map_err(|e| Error::Check {
                network: String::new(),
                ifname: String::new(),
                problem: CheckProblem::Unreadable(e),
            })?;
        for (step, seen) in rec.steps.iter().zip(seen) {
            let fail = |problem| Error::Check {
                network: step.network.clone(),
                ifname: step.ifname.clone(),
                problem,
            };
            let seen = seen.ok_or_else(|| fail(CheckProblem::Missing))?;
            let wanted: Vec<IpAddr> = parsed_result(step)
                .map(|r| r.ips_of(&step.ifname))
                .unwrap_or_default()
                .iter()
                .filter_map(|ip| ip.parse().ok())
                .collect();
            if let Some(ip) = wanted.iter().find(|ip| !seen.addresses.contains(ip)) {
                return Err(fail(CheckProblem::Address(*ip)));
            }
        }
        Ok(())
    }
}
