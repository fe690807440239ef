//! The speculative start of ADD: the cluster network's delegate runs at once while a second
//! thread resolves the pod, journals the whole plan and runs the networks that can run
//! alongside the cluster network.

use serde_json::Value;

use super::Engine;
use super::add::{abandon, add_failure};
use super::record::Record;
use super::resolve::PodPlan;
use crate::cni::env::Command;
use crate::cni::result::CniResult;
use crate::delegate::list;
use crate::error::{DelegateFailure, Error};
use crate::journal::JournalLock;
use crate::plan::Attachment;

/// What the speculative start left: the lock, the resolved plan, and the results of the plan's
/// first attachments (already run; when there are any, the whole plan is journaled and fsynced).
pub(super) type Speculated = (JournalLock, PodPlan, Vec<(Value, CniResult)>);

/// What the resolution thread did besides resolving.
struct Alongside {
    /// Writing and fsyncing the whole plan (nothing else ran when this failed).
    journaled: Result<(), crate::journal::JournalError>,
    /// Results of the attachments run after the cluster network, in plan order.
    ran: Vec<(Value, CniResult)>,
    /// The attachment after the last in `ran`, when it failed.
    failed: Option<DelegateFailure>,
}

impl Engine<'_> {
    /// Runs the cluster network's ADD while the pod is resolved on a thread. Returns the plan
    /// and the results of the attachments already run (a prefix of the plan: none when the pod
    /// overrides its default network; with any, the whole plan is already journaled and fsynced).
    ///
    /// The journal names the cluster network before it runs (so a DEL after a crash finds it and
    /// reports a failed DEL for the runtime to retry); the delegate then runs on the calling
    /// thread, which is already on a CPU. The new thread resolves the pod, journals the whole
    /// plan, and runs the networks that follow the cluster network for as long as each
    /// [runs alongside it](Attachment::runs_alongside_cluster), in order (only with
    /// `alongsideClusterNetwork`).
    pub(super) fn speculate(
        &self,
        lock: JournalLock,
        config_plan: Vec<Attachment>,
    ) -> Result<Speculated, Error> {
        let first = config_plan
            .first()
            .cloned()
            .ok_or_else(|| Error::Plan("no cluster network".into()))?;
        let req = self.req;
        let mut rec = Record::new(
            &req.container_id,
            &req.netns,
            &req.ifname,
            &self.args,
            std::slice::from_ref(&first),
        );
        if let Err(e) = lock.write(&rec) {
            abandon(lock);
            return Err(e.into());
        }
        let (added, resolved) = std::thread::scope(|s| {
            let h = s.spawn(|| self.resolve_and_run_alongside(&lock, &config_plan, &first));
            let inv = self.invocation(Command::Add, &req.netns, &first.ifname, &first.cni_args);
            let added = list::add(self.exec, &first.conf, &inv, &first.runtime_config);
            let resolved = h
                .join()
                .unwrap_or_else(|_| Err(Error::Failed("pod resolution thread panicked".into())));
            (added, resolved)
        });
        let cluster_failure = |f| add_failure(&first, f);
        let (pp, along) = match resolved {
            Ok((pp, Some(along))) if along.journaled.is_ok() => (pp, along),
            // Only the cluster network ran: undo it.
            other => {
                let one = std::slice::from_ref(&first);
                rec.attachments[0].result = added.as_ref().ok().map(|(r, _)| r.clone());
                let rollback = self.rollback(lock, &mut rec, one, 0);
                let why = match (added, other) {
                    (Err(f), _) => {
                        return Err(Error::Add {
                            primary: Box::new(cluster_failure(f)),
                            rollback: Box::new(rollback),
                        });
                    }
                    (Ok(_), Err(e)) => e,
                    (
                        Ok(_),
                        Ok((
                            _,
                            Some(Alongside {
                                journaled: Err(e), ..
                            }),
                        )),
                    ) => e.into(),
                    (Ok(_), Ok((pp, _))) => {
                        // The pod overrides its default network: its plan runs from the start.
                        tracing::info!(
                            container_id = %req.container_id,
                            "the pod overrides its default network: undid the cluster network started early"
                        );
                        if !rollback.failures.is_empty() {
                            return Err(Error::Delegates(rollback.failures));
                        }
                        let lock = self.journal.lock(&req.container_id)?;
                        return Ok((lock, pp, Vec::new()));
                    }
                };
                if !rollback.failures.is_empty() || rollback.journal.is_some() {
                    tracing::error!(%rollback, "undoing the cluster network started early");
                }
                return Err(why);
            }
        };
        let Alongside { ran, failed, .. } = along;
        // Everything started is rolled back on a failure: the cluster network, the networks
        // that ran alongside it, and the one that failed.
        let upto = ran.len() + usize::from(failed.is_some());
        let (cluster_result, primary) = match (added, failed) {
            (Ok(r), None) => {
                let done = std::iter::once(r).chain(ran).collect();
                return Ok((lock, pp, done));
            }
            (Ok((r, _)), Some(f)) => (Some(r), f),
            (Err(f), _) => (None, cluster_failure(f)),
        };
        let plan = &pp.plan;
        let mut rec = Record::new(&req.container_id, &req.netns, &req.ifname, &self.args, plan);
        let results = std::iter::once(cluster_result).chain(ran.into_iter().map(|(r, _)| Some(r)));
        for (entry, result) in rec.attachments.iter_mut().zip(results) {
            entry.result = result;
        }
        let rollback = self.rollback(lock, &mut rec, plan, upto);
        Err(Error::Add {
            primary: Box::new(primary),
            rollback: Box::new(rollback),
        })
    }

    /// The speculation's second thread: resolves the pod; when its plan starts with the
    /// cluster network already running, journals (and fsyncs) the whole plan and runs the
    /// attachments that can run alongside it.
    fn resolve_and_run_alongside(
        &self,
        lock: &JournalLock,
        config_plan: &[Attachment],
        first: &Attachment,
    ) -> Result<(PodPlan, Option<Alongside>), Error> {
        let pp = self.resolve_for_add(Some(config_plan))?;
        if pp.plan.first() != Some(first) {
            return Ok((pp, None));
        }
        let req = self.req;
        let full = Record::new(
            &req.container_id,
            &req.netns,
            &req.ifname,
            &self.args,
            &pp.plan,
        );
        let journaled = lock.write(&full).and_then(|()| lock.sync());
        let (mut ran, mut failed) = (Vec::new(), None);
        if journaled.is_ok() {
            for a in pp.plan[1..]
                .iter()
                .take_while(|a| self.cfg.alongside_cluster_network && a.runs_alongside_cluster())
            {
                let inv = self.invocation(Command::Add, &req.netns, &a.ifname, &a.cni_args);
                match list::add(self.exec, &a.conf, &inv, &a.runtime_config) {
                    Ok(r) => ran.push(r),
                    Err(f) => {
                        failed = Some(add_failure(a, f));
                        break;
                    }
                }
            }
        }
        Ok((
            pp,
            Some(Alongside {
                journaled,
                ran,
                failed,
            }),
        ))
    }
}
