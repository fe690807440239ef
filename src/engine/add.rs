//! ADD: resolve and plan, journal the plan, run every attachment in order, write network-status,
//! and roll everything back on the first failure.

use serde_json::Value;

use super::record::Record;
use super::resolve::PodPlan;
use super::{Engine, Loaded, del_attachments, quarantine, read_record};
use crate::cni::env::Command;
use crate::cni::result::{self, CniResult};
use crate::delegate::list;
use crate::error::{DelegateFailure, Error, Rollback};
use crate::journal::JournalLock;
use crate::k8s::status::{self, StatusInput};
use crate::plan::Attachment;

impl Engine<'_> {
    /// ADD: returns the cluster network's result in the runtime's cniVersion.
    ///
    /// # Errors
    /// Invalid config, annotations or plan (nothing ran), a delegate failure (everything
    /// started is rolled back; the error carries the rollback outcome), a journal failure,
    /// a network-status write that failed (rolled back, code 11).
    pub fn add(&self) -> Result<Value, Error> {
        if let Some(f) = &self.cfg.readiness_indicator_file
            && !f.exists()
        {
            return Err(Error::NotReady(format!(
                "readiness indicator file {} does not exist: the cluster network is not ready",
                f.display()
            )));
        }
        let PodPlan { plan, pod, session } = self.resolve_for_add()?;
        let lock = self.journal.lock(&self.req.container_id)?;
        let lock = self.clear_leftovers(lock, &plan)?;

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
            let inv = self.invocation(Command::Add, &req.netns, &a.ifname, &a.cni_args);
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
        let last = plan.len() - 1;
        // Everything ran: answer in the runtime's version, or undo it all if that is impossible.
        let cluster = &plan[0];
        let converted = results[0]
            .as_ref()
            .ok_or_else(|| Error::Result("cluster network returned no result".into()))
            .and_then(|r| {
                result::convert(r, &cluster.conf.cni_version, &self.cfg.cni_version)
                    .map_err(|e| Error::Result(format!("network {:?}: {e}", cluster.network)))
            });
        let converted = match converted {
            Ok(v) => v,
            Err(e) => {
                self.rollback(lock, &mut rec, &plan, &results, last);
                return Err(e);
            }
        };
        if let (Some(pod), Some(s)) = (&pod, &session) {
            let value = status::to_annotation(&statuses(&plan, &results));
            let mut ann = serde_json::Map::new();
            ann.insert(status::STATUS_ANNOTATION.into(), Value::String(value));
            match s.block_on(
                s.api()
                    .patch_pod_annotations(&pod.namespace, &pod.name, &ann),
            ) {
                Ok(true) => {}
                Ok(false) => tracing::warn!(%pod, "pod is gone; network-status not written"),
                Err(e) => {
                    let rollback = self.rollback(lock, &mut rec, &plan, &results, last);
                    return Err(Error::Status {
                        source: e,
                        rollback: Box::new(rollback),
                    });
                }
            }
        }
        rec.complete = true;
        let durable = lock.write(&rec).and_then(|_| lock.sync());
        if let Err(e) = durable {
            self.rollback(lock, &mut rec, &plan, &results, last);
            return Err(e.into());
        }
        Ok(converted)
    }

    /// A journal left by an earlier ADD of the same container: a complete one means the runtime
    /// is adding twice (refused: rolling back would destroy working interfaces); an incomplete
    /// one is an unfinished rollback, finished now; a corrupt one is cleared by DELeting this
    /// plan (the same networks) before it runs. Returns the lock, re-taken if it was released.
    fn clear_leftovers(
        &self,
        lock: JournalLock,
        plan: &[Attachment],
    ) -> Result<JournalLock, Error> {
        let atts: Vec<(Attachment, Option<Value>)> = match read_record(&lock)? {
            Loaded::Missing => return Ok(lock),
            Loaded::Record(rec) if rec.complete => {
                return Err(Error::AlreadyAttached(self.req.container_id.clone()));
            }
            Loaded::Record(rec) => {
                tracing::warn!(
                    container_id = %self.req.container_id,
                    "finishing the rollback of an earlier failed ADD"
                );
                rec.attachments().map_err(|e| Error::Config(e.into()))?
            }
            Loaded::Corrupt(reason) => {
                let atts: Vec<_> = plan.iter().cloned().map(|a| (a, None)).collect();
                let (_, failures) =
                    del_attachments(self.exec, &self.req.container_id, &self.req.netns, &atts);
                if !failures.is_empty() {
                    return Err(Error::Delegates(failures));
                }
                quarantine(lock, &reason)?;
                return Ok(self.journal.lock(&self.req.container_id)?);
            }
        };
        let (_, failures) =
            del_attachments(self.exec, &self.req.container_id, &self.req.netns, &atts);
        if !failures.is_empty() {
            return Err(Error::Delegates(failures));
        }
        Ok(lock)
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
        let (cleaned, failures) =
            del_attachments(self.exec, &self.req.container_id, &self.req.netns, &atts);
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

/// network-status entries for every attachment that returned a result.
fn statuses(plan: &[Attachment], results: &[Option<Value>]) -> Vec<status::NetworkStatus> {
    let parsed: Vec<(usize, CniResult)> = results
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let r = r.as_ref()?;
            CniResult::from_value(r, &plan[i].conf.cni_version)
                .ok()
                .map(|c| (i, c))
        })
        .collect();
    let inputs: Vec<StatusInput<'_>> = parsed
        .iter()
        .map(|(i, c)| StatusInput {
            network: &plan[*i].network,
            ifname: &plan[*i].ifname,
            result: c,
            default: plan[*i].cluster,
            device_info: None,
        })
        .collect();
    status::build(&inputs)
}
