//! DEL: every journaled attachment in reverse; with no usable journal, what the configuration
//! gives the container. Works with the netns gone, `CNI_NETNS` empty, and twice in a row.

use serde_json::Value;

use super::{Engine, del_attachments, read_record};
use crate::error::Error;
use crate::plan::Attachment;

impl Engine<'_> {
    /// DEL.
    ///
    /// # Errors
    /// Delegates whose DEL failed (the journal keeps them for the runtime's retry), or a corrupt
    /// journal when the configuration cannot say what to remove either.
    pub fn del(&self) -> Result<(), Error> {
        let lock = self.journal.lock(&self.req.container_id)?;
        let (rec, quarantined) = read_record(&lock)?;
        let (mut rec, atts): (_, Vec<(Attachment, Option<Value>)>) = match rec {
            Some(r) => {
                let atts = r.attachments().map_err(|e| Error::Config(e.into()))?;
                (Some(r), atts)
            }
            None => match self.plan_from_config() {
                Ok(plan) => (None, plan.into_iter().map(|a| (a, None)).collect()),
                Err(e) => match quarantined {
                    Some(moved) => {
                        return Err(Error::Plan(format!(
                            "journal of container {:?} was corrupt (moved to {moved}) and the \
                             configuration cannot be resolved to rebuild it: {e}",
                            self.req.container_id
                        )));
                    }
                    None => {
                        tracing::warn!(
                            container_id = %self.req.container_id,
                            error = %e,
                            "DEL without a journal and with an unresolvable configuration: nothing to do"
                        );
                        lock.remove()?;
                        return Ok(());
                    }
                },
            },
        };
        let (cleaned, failures) = del_attachments(
            self.exec,
            &self.req.container_id,
            &self.req.netns,
            &self.args,
            &atts,
        );
        if failures.is_empty() {
            lock.remove()?;
            return Ok(());
        }
        let mut kept = rec.take().unwrap_or_else(|| {
            let plan: Vec<Attachment> = atts.iter().map(|(a, _)| a.clone()).collect();
            super::record::Record::new(
                &self.req.container_id,
                &self.req.netns,
                &self.req.ifname,
                &self.args,
                &plan,
            )
        });
        kept.complete = false;
        kept.attachments = (0..kept.attachments.len())
            .filter(|i| !cleaned.contains(i))
            .map(|i| kept.attachments[i].clone())
            .collect();
        lock.write(&kept)?;
        lock.sync()?;
        Err(Error::Delegates(failures))
    }
}
