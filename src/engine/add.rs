//! ADD: plan, journal the plan, run every attachment in order, roll back on the first failure.

use serde_json::Value;

use super::record::Record;
use super::{Engine, del_attachments, read_record};
use crate::cni::env::Command;
use crate::cni::result;
use crate::delegate::list;
use crate::error::{DelegateFailure, Error, Rollback};
use crate::journal::JournalLock;
use crate::plan::Attachment;

impl Engine<'_> {
    /// ADD: returns the cluster network's result in the runtime's cniVersion.
    ///
    /// # Errors
    /// Invalid config or plan (nothing ran), a delegate failure (everything started is rolled
    /// back; the error carries the rollback outcome), a journal failure.
    pub fn add(&self) -> Result<Value, Error> {
        if let Some(f) = &self.cfg.readiness_indicator_file
            && !f.exists()
        {
            return Err(Error::NotReady(format!(
                "readiness indicator file {} does not exist: the cluster network is not ready",
                f.display()
            )));
        }
        let plan = self.plan_from_config()?;
        let lock = self.journal.lock(&self.req.container_id)?;
        self.clear_leftovers(&lock)?;

        let req = self.req;
        let mut rec = Record::new(
            &req.container_id,
            &req.netns,
            &req.ifname,
            &self.args,
            &plan,
        );
        lock.write(&rec)?;
        let mut results: Vec<Option<Value>> = vec![None; plan.len()];
        for (i, a) in plan.iter().enumerate() {
            let inv = self.invocation(Command::Add, &req.netns, &a.ifname);
            match list::add(self.exec, &a.conf, &inv, &a.runtime_config) {
                Ok(res) => {
                    rec.attachments[i].result = Some(res.clone());
                    results[i] = Some(res);
                    if let Err(e) = lock.write(&rec) {
                        self.rollback(lock, &mut rec, &plan, &results, i);
                        return Err(e.into());
                    }
                }
                Err(f) => {
                    let primary = DelegateFailure {
                        verb: Command::Add,
                        network: a.network.clone(),
                        ifname: a.ifname.clone(),
                        plugin: f.plugin,
                        source: f.source,
                    };
                    let rollback = self.rollback(lock, &mut rec, &plan, &results, i);
                    return Err(Error::Add {
                        primary: Box::new(primary),
                        rollback: Box::new(rollback),
                    });
                }
            }
        }
        // Everything ran: answer in the runtime's version, or undo it all if that is impossible.
        let cluster = &plan[0];
        let converted = results[0]
            .as_ref()
            .ok_or_else(|| Error::Result("cluster network returned no result".into()))
            .and_then(|r| {
                result::convert(r, &cluster.conf.cni_version, &self.cfg.cni_version)
                    .map_err(|e| Error::Result(format!("network {:?}: {e}", cluster.network)))
            });
        let out = converted.and_then(|v| {
            rec.complete = true;
            lock.write(&rec)?;
            lock.sync()?;
            Ok(v)
        });
        if out.is_err() {
            self.rollback(lock, &mut rec, &plan, &results, plan.len() - 1);
        }
        out
    }

    /// A journal left by an earlier ADD of the same container: a complete one means the runtime
    /// is adding twice (refused: rolling back would destroy working interfaces); an incomplete
    /// one is an unfinished rollback, finished now.
    fn clear_leftovers(&self, lock: &JournalLock) -> Result<(), Error> {
        let (rec, _) = read_record(lock)?;
        let Some(rec) = rec else { return Ok(()) };
        if rec.complete {
            return Err(Error::AlreadyAttached(self.req.container_id.clone()));
        }
        tracing::warn!(
            container_id = %self.req.container_id,
            "finishing the rollback of an earlier failed ADD"
        );
        let atts = rec.attachments().map_err(|e| Error::Config(e.into()))?;
        let (_, failures) = del_attachments(
            self.exec,
            &rec.container_id,
            &rec.netns,
            &rec.cni_args,
            &atts,
        );
        if !failures.is_empty() {
            return Err(Error::Delegates(failures));
        }
        Ok(())
    }

    /// DELs attachments `0..=upto` in reverse; removes the journal if all went well, else keeps
    /// only what is left to DEL.
    fn rollback(
        &self,
        lock: JournalLock,
        rec: &mut Record,
        plan: &[Attachment],
        results: &[Option<Value>],
        upto: usize,
    ) -> Rollback {
        let atts: Vec<(Attachment, Option<Value>)> = plan[..=upto]
            .iter()
            .cloned()
            .zip(results.iter().cloned())
            .collect();
        let (cleaned, failures) = del_attachments(
            self.exec,
            &self.req.container_id,
            &self.req.netns,
            &self.args,
            &atts,
        );
        let cleaned_names = cleaned.iter().map(|&i| plan[i].ifname.clone()).collect();
        let journal = if failures.is_empty() {
            lock.remove().err().map(|e| e.to_string())
        } else {
            rec.complete = false;
            let keep: Vec<_> = (0..=upto).filter(|i| !cleaned.contains(i)).collect();
            rec.attachments = keep.iter().map(|&i| rec.attachments[i].clone()).collect();
            lock.write(&*rec)
                .and_then(|_| lock.sync())
                .err()
                .map(|e| e.to_string())
        };
        Rollback {
            cleaned: cleaned_names,
            failures,
            journal,
        }
    }
}
