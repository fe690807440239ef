//! DEL: every unreleased step of the record, backwards through its schedule; with no record,
//! what Multus recorded for the container (a sandbox from before plexus) or else what the
//! configuration gives it; with a corrupt one, what the configuration, the pod and its NADs give
//! it. Works with the netns gone (or not a namespace), `CNI_NETNS` empty, twice in a row, and
//! without the API server (except to rebuild a corrupt record).

use std::path::{Path, PathBuf};

use super::{Engine, multus};
use crate::error::Error;
use crate::journal::Held;
use crate::k8s::pod::PodRef;
use crate::resolve::fetch::resolve_pod;
use crate::txn::{Loaded, Step, Txn};

impl Engine<'_> {
    /// DEL.
    ///
    /// # Errors
    /// Delegates whose DEL failed (the record keeps them for the runtime's retry), or a corrupt
    /// record whose attachments cannot be rebuilt now (it stays for the next try).
    pub fn del(&self) -> Result<(), Error> {
        let held = self.seams.store.lock(&self.req.container_id)?;
        let netns = self.netns_for_release(&self.req.netns);
        match crate::txn::load(&*held)? {
            Loaded::Record(rec) => self.release_all(Txn::new(rec, held), &netns),
            // A sandbox Multus attached before plexus replaced it: DEL what Multus recorded.
            Loaded::Missing if let Some((path, steps)) = self.multus_cache() => {
                self.del_from_multus_cache(held, &path, steps, &netns)
            }
            Loaded::Missing => self.del_unrecorded(held, &netns),
            Loaded::Corrupt(reason) => self.del_corrupt(held, &reason, &netns),
        }
    }

    /// Nothing was recorded for this container: DEL what the configuration gives it (a sandbox
    /// from before plexus, or a second DEL), as a courtesy. Failures are logged, never turned
    /// into a record for a container plexus never attached.
    fn del_unrecorded(&self, held: Box<dyn Held + '_>, netns: &str) -> Result<(), Error> {
        let plan = match self.resolver().config_plan() {
            Ok(plan) => plan,
            Err(e) => {
                tracing::warn!(container_id = %self.req.container_id, error = %e,
                    "DEL without a journal and with an unresolvable configuration: nothing to do");
                held.remove()?;
                return Ok(());
            }
        };
        let mut rec = self.new_record();
        rec.steps = self.steps(&plan);
        let which = rec.unreleased();
        for f in self
            .runner(&self.req.container_id)
            .release(&mut rec, &which, netns)
        {
            tracing::warn!(error = %f, "DEL without a journal: delegate DEL failed");
        }
        held.remove()?;
        Ok(())
    }

    /// A corrupt record: what the pod had is rebuilt (config, pod, NADs) and released; the file
    /// is moved aside first, and what could not be released is recorded anew for the retry.
    fn del_corrupt(
        &self,
        held: Box<dyn Held + '_>,
        reason: &str,
        netns: &str,
    ) -> Result<(), Error> {
        let rebuilt = PodRef::from_request(self.req)
            .map_err(crate::resolve::ResolveError::from)
            .and_then(|pod| {
                let resolver = self.resolver();
                let nets = resolver.config_networks()?;
                resolve_pod(&resolver, self.seams.connect, pod, &nets)
            });
        let plan = match rebuilt {
            Ok(pp) => pp.plan,
            Err(e) => {
                return Err(Error::Corrupt {
                    container_id: self.req.container_id.clone(),
                    reason: reason.to_string(),
                    source: Box::new(e.into()),
                });
            }
        };
        let moved = held.quarantine(self.seams.clock.unix_nanos())?;
        tracing::error!(container_id = %self.req.container_id, reason, moved_to = %moved.display(),
            "journal was corrupt; its attachments are rebuilt from the configuration, the pod and its NADs and released; file kept for inspection");
        let mut txn = Txn::new(self.new_record(), held);
        txn.rec.steps = self.steps(&plan);
        self.release_all(txn, netns)
    }

    /// The steps Multus recorded for this container, and the file they came from. A cache that
    /// cannot be used is logged and skipped (DEL then works from the configuration).
    fn multus_cache(&self) -> Option<(PathBuf, Vec<Step>)> {
        let id = &self.req.container_id;
        multus::cache_paths(&self.cfg.cni_dir, id)
            .into_iter()
            .find_map(|path| {
                let bytes = multus::read_cache(&path)?;
                match bytes.and_then(|b| multus::steps(&b, &self.req.ifname, &self.args)) {
                    Ok(steps) => Some((path, steps)),
                    Err(e) => {
                        tracing::warn!(container_id = %id, path = %path.display(), error = %e,
                            "unusable Multus cache: DEL works from the configuration");
                        None
                    }
                }
            })
    }

    /// Releases what Multus recorded, in reverse; removes Multus's file once all went well, else
    /// keeps it (and reports the failures) so the runtime's retry finds it again.
    fn del_from_multus_cache(
        &self,
        held: Box<dyn Held + '_>,
        path: &Path,
        steps: Vec<Step>,
        netns: &str,
    ) -> Result<(), Error> {
        tracing::info!(container_id = %self.req.container_id, path = %path.display(),
            networks = steps.len(), "DEL of a sandbox attached by Multus, from its cache");
        let mut rec = self.new_record();
        rec.steps = steps;
        let which = rec.unreleased();
        let failures = self
            .runner(&self.req.container_id)
            .release(&mut rec, &which, netns);
        held.remove()?;
        if !failures.is_empty() {
            return Err(Error::Delegates(failures));
        }
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove the Multus cache");
            }
            _ => {}
        }
        Ok(())
    }
}
