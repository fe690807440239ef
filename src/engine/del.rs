//! DEL: every journaled attachment in reverse; with no journal, what Multus recorded for the
//! container (a sandbox from before plexus) or else what the configuration gives it; with a
//! corrupt one, what the configuration, the pod and its NADs give it. Works with the netns gone,
//! `CNI_NETNS` empty, and twice in a row, without the API server.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::record::Record;
use super::{Engine, Loaded, multus, quarantine, read_record};
use crate::error::Error;
use crate::journal::JournalLock;
use crate::plan::Attachment;

impl Engine<'_> {
    /// DEL.
    ///
    /// # Errors
    /// Delegates whose DEL failed (the journal keeps them for the runtime's retry), or a corrupt
    /// journal when what the pod had cannot be rebuilt (the journal stays for the next try).
    pub fn del(&self) -> Result<(), Error> {
        let lock = self.journal.lock(&self.req.container_id)?;
        let (rec, corrupt, atts): (
            Option<Record>,
            Option<String>,
            Vec<(Attachment, Option<Value>)>,
        ) = match read_record(&lock)? {
            Loaded::Record(r, atts) => (Some(r), None, atts),
            // A sandbox Multus attached before plexus replaced it: DEL what Multus recorded.
            Loaded::Missing if let Some((path, atts)) = self.multus_cache() => {
                return self.del_from_multus_cache(lock, &path, &atts);
            }
            Loaded::Missing => match self.plan_from_config() {
                Ok(plan) => (None, None, plan.into_iter().map(|a| (a, None)).collect()),
                Err(e) => {
                    tracing::warn!(
                        container_id = %self.req.container_id,
                        error = %e,
                        "DEL without a journal and with an unresolvable configuration: nothing to do"
                    );
                    lock.remove()?;
                    return Ok(());
                }
            },
            Loaded::Corrupt(reason) => {
                // Rebuild the whole pod (cluster network, default networks, the pod's NADs);
                // if that is impossible now, keep the journal so a retry can.
                let plan =
                    self.resolve_for_add(None)
                        .map(|p| p.plan)
                        .map_err(|e| Error::Context {
                            context: format!(
                                "journal of container {:?} is corrupt ({reason}) and what it held \
                             cannot be rebuilt now",
                                self.req.container_id
                            ),
                            source: Box::new(e),
                        })?;
                (
                    None,
                    Some(reason),
                    plan.into_iter().map(|a| (a, None)).collect(),
                )
            }
        };
        let (cleaned, failures) =
            self.del_attachments(&self.req.container_id, &self.req.netns, &atts);
        if rec.is_none() && corrupt.is_none() && !failures.is_empty() {
            // Nothing was recorded for this container: the DEL of what the configuration gives
            // it was a courtesy (a sandbox from before plexus, or a second DEL). Report, but do
            // not invent a journal for a container plexus never attached.
            for f in &failures {
                tracing::warn!(error = %f, "DEL without a journal: delegate DEL failed");
            }
            lock.remove()?;
            return Ok(());
        }
        if failures.is_empty() {
            return match corrupt {
                Some(reason) => quarantine(lock, &reason),
                None => Ok(lock.remove()?),
            };
        }
        let mut kept = rec.unwrap_or_else(|| {
            let plan: Vec<Attachment> = atts.iter().map(|(a, _)| a.clone()).collect();
            Record::new(
                &self.req.container_id,
                &self.req.netns,
                &self.req.ifname,
                &self.args,
                &plan,
            )
        });
        kept.keep_for_retry(usize::MAX, &cleaned);
        lock.write(&kept)?;
        lock.sync()?;
        Err(Error::Delegates(failures))
    }

    /// The delegates Multus recorded for this container, and the file they came from. A cache
    /// that cannot be used is logged and skipped (DEL then works from the configuration).
    fn multus_cache(&self) -> Option<(PathBuf, Vec<(Attachment, Option<Value>)>)> {
        let id = &self.req.container_id;
        multus::cache_paths(&self.cfg.cni_dir, id)
            .into_iter()
            .find_map(|path| {
                let bytes = multus::read_cache(&path)?;
                match bytes.and_then(|b| multus::attachments(&b, &self.req.ifname, &self.args)) {
                    Ok(atts) => Some((path, atts)),
                    Err(e) => {
                        tracing::warn!(
                            container_id = %id,
                            path = %path.display(),
                            error = %e,
                            "unusable Multus cache: DEL works from the configuration"
                        );
                        None
                    }
                }
            })
    }

    /// DELs what Multus recorded, in reverse; removes Multus's file once all went well, else
    /// keeps it (and reports the failures) so the runtime's retry finds it again.
    fn del_from_multus_cache(
        &self,
        lock: JournalLock,
        path: &Path,
        atts: &[(Attachment, Option<Value>)],
    ) -> Result<(), Error> {
        tracing::info!(
            container_id = %self.req.container_id,
            path = %path.display(),
            networks = atts.len(),
            "DEL of a sandbox attached by Multus, from its cache"
        );
        let (_, failures) = self.del_attachments(&self.req.container_id, &self.req.netns, atts);
        lock.remove()?;
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
