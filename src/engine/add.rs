//! ADD: resolve and plan, journal the plan, run every attachment in order, write network-status,
//! and roll everything back on the first failure.

use serde_json::Value;

use super::record::Record;
use super::resolve::PodPlan;
use super::{Engine, Loaded, quarantine, read_record};
use crate::cni::env::Command;
use crate::cni::result::CniResult;
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
        // With a pod to look up, the cluster network (known from the config alone) starts at
        // once and runs while the pod and its NADs are fetched; it is undone in the rare case
        // the pod overrides its default network. Without one, everything is resolved first.
        // Either way nothing is locked or written before the config has been validated.
        let with_pod = self.req.arg("K8S_POD_NAME").is_some_and(|n| !n.is_empty());
        let (config_plan, resolved) = if with_pod {
            // Every network the configuration names is resolved and validated first, so a
            // hostile or broken config fails before anything runs.
            match self.plan_from_config() {
                Ok(p) => (Some(p), None),
                Err(_) => (None, Some(self.resolve_for_add(None)?)),
            }
        } else {
            (None, Some(self.resolve_for_add(None)?))
        };
        let lock = self.journal.lock(&self.req.container_id)?;
        let corrupt = match read_record(&lock)? {
            Loaded::Missing => None,
            Loaded::Record(rec, atts) => {
                self.finish_old_rollback(&rec, &atts)?;
                None
            }
            Loaded::Corrupt(reason) => Some(reason),
        };
        let (lock, PodPlan { plan, pod, session }, done) = match (config_plan, resolved) {
            (Some(config_plan), None) if corrupt.is_none() => self.speculate(lock, config_plan)?,
            (_, resolved) => {
                let pp = match resolved {
                    Some(pp) => pp,
                    None => self.resolve_for_add(None)?,
                };
                let lock = match corrupt {
                    Some(reason) => self.clear_corrupt(lock, &pp.plan, &reason)?,
                    None => lock,
                };
                (lock, pp, Vec::new())
            }
        };
        let status = pod.as_ref().zip(session.as_ref());
        self.run_plan(lock, &plan, done, status)
    }

    /// Journals the plan (unless attachments are already `done`: only the speculative start runs
    /// any, and it has written and fsynced the whole plan), runs every attachment after those,
    /// writes network-status, and returns the cluster network's result in the runtime's version.
    ///
    /// Durability: the plan (every attachment that may exist) is fsynced before ADD answers,
    /// on a thread while the remaining delegates, the default routes and the status PATCH run.
    /// Later rewrites only add results and the `complete` mark and are not fsynced: what a DEL
    /// after a power loss needs is the plan (delegates DEL without a prevResult), and the IPAM
    /// plugins' own lease files are not fsynced either.
    fn run_plan(
        &self,
        lock: JournalLock,
        plan: &[Attachment],
        done: Vec<(Value, CniResult)>,
        status: Option<(&crate::k8s::pod::PodRef, &crate::k8s::session::Session)>,
    ) -> Result<Value, Error> {
        let req = self.req;
        let mut rec = Record::new(&req.container_id, &req.netns, &req.ifname, &self.args, plan);
        // Each result as the delegate printed it (in the record: journal, prevResult on DEL and
        // rollback) and parsed once.
        let mut parsed: Vec<Option<CniResult>> = vec![None; plan.len()];
        let start = done.len();
        let journaled = start > 0;
        for (i, (r, p)) in done.into_iter().enumerate() {
            rec.attachments[i].result = Some(r);
            parsed[i] = Some(p);
        }
        let last = plan.len() - 1;
        // With delegates left to run, the plan is journaled before the first of them; with none
        // (a pod on the cluster network only) the journal's next write is the complete one.
        let remaining = start <= last && !journaled;
        if remaining && let Err(e) = lock.write(&rec) {
            if start > 0 {
                self.rollback(lock, &mut rec, plan, start - 1);
            } else {
                abandon(lock);
            }
            return Err(e.into());
        }
        let (outcome, synced) = std::thread::scope(|s| {
            let sync = remaining.then(|| s.spawn(|| lock.sync()));
            let mut finish = || -> Result<Value, Stop> {
                let converted = self.run_rest(&lock, &mut rec, plan, start, &mut parsed)?;
                rec.complete = true;
                // The complete record is written while network-status is sent (and fsynced too
                // when nothing before it was).
                let durable = journaled || sync.is_some();
                let (written, patched) = std::thread::scope(|s2| {
                    let w = s2.spawn(|| {
                        lock.write(&rec)?;
                        if durable { Ok(()) } else { lock.sync() }
                    });
                    let patched = match status {
                        Some((pod, se)) => self.write_status(se, pod, plan, &parsed),
                        None => Ok(()),
                    };
                    (w.join(), patched)
                });
                match written {
                    Ok(w) => w.map_err(|e| Stop::Other(e.into(), last))?,
                    Err(_) => {
                        let e = Error::Failed("journal writer thread panicked".into());
                        return Err(Stop::Other(e, last));
                    }
                }
                patched.map_err(|e| Stop::Status(e, last))?;
                Ok(converted)
            };
            let outcome = finish();
            let synced = match sync.map(|h| h.join()) {
                None | Some(Ok(Ok(()))) => Ok(()),
                Some(Ok(Err(e))) => Err(Error::from(e)),
                Some(Err(_)) => Err(Error::Failed("journal fsync thread panicked".into())),
            };
            (outcome, synced)
        });
        match outcome {
            Ok(converted) => match synced {
                Ok(()) => Ok(converted),
                Err(e) => {
                    self.rollback(lock, &mut rec, plan, last);
                    Err(e)
                }
            },
            Err(Stop::Delegate(primary, i)) => {
                let rollback = self.rollback(lock, &mut rec, plan, i);
                Err(Error::Add {
                    primary,
                    rollback: Box::new(rollback),
                })
            }
            Err(Stop::Other(e, i)) => {
                self.rollback(lock, &mut rec, plan, i);
                Err(e)
            }
            Err(Stop::Status(e, i)) => {
                let rollback = self.rollback(lock, &mut rec, plan, i);
                Err(Error::Status {
                    source: e,
                    rollback: Box::new(rollback),
                })
            }
        }
    }

    /// Runs attachments `start..`, journaling each result but the last (which goes into the
    /// complete record), converts the cluster network's result to the runtime's version and
    /// applies `default-route`.
    fn run_rest(
        &self,
        lock: &JournalLock,
        rec: &mut Record,
        plan: &[Attachment],
        start: usize,
        parsed: &mut [Option<CniResult>],
    ) -> Result<Value, Stop> {
        let req = self.req;
        let last = plan.len() - 1;
        for (i, a) in plan.iter().enumerate().skip(start) {
            let inv = self.invocation(Command::Add, &req.netns, &a.ifname, &a.cni_args);
            let (res, p) = list::add(self.exec, &a.conf, &inv, &a.runtime_config)
                .map_err(|f| Stop::Delegate(Box::new(add_failure(a, f)), i))?;
            rec.attachments[i].result = Some(res);
            parsed[i] = Some(p);
            if i < last {
                lock.write(rec).map_err(|e| Stop::Other(e.into(), i))?;
            }
        }
        // Everything ran: answer in the runtime's version, or undo it all if that is impossible.
        let cluster = &plan[0];
        let converted = parsed[0]
            .as_ref()
            .ok_or_else(|| Error::Result("cluster network returned no result".into()))
            .and_then(|r| {
                r.to_value(&self.cfg.cni_version)
                    .map_err(|e| Error::Result(format!("network {:?}: {e}", cluster.network)))
            })
            .map_err(|e| Stop::Other(e, last))?;
        self.apply_default_routes(plan)
            .map_err(|e| Stop::Other(e, last))?;
        Ok(converted)
    }

    /// `default-route`: the chosen interface gets the default route of each gateway's family
    /// and no other interface keeps one.
    fn apply_default_routes(&self, plan: &[Attachment]) -> Result<(), Error> {
        for a in plan {
            for gw in &a.default_route {
                let fail = |reason: String| Error::DefaultRoute {
                    network: a.network.clone(),
                    ifname: a.ifname.clone(),
                    gateway: gw.clone(),
                    reason,
                };
                let ip: std::net::IpAddr = gw.parse().map_err(|e| fail(format!("{e}")))?;
                crate::link::set_default_route(
                    std::path::Path::new(&self.req.netns),
                    ip,
                    &a.ifname,
                )
                .map_err(|e| fail(e.to_string()))?;
            }
        }
        Ok(())
    }

    /// One merge PATCH of network-status (and, if configured, one AddedInterface event, sent
    /// concurrently and best effort). A pod that is gone is not an error.
    fn write_status(
        &self,
        s: &crate::k8s::session::Session,
        pod: &crate::k8s::pod::PodRef,
        plan: &[Attachment],
        parsed: &[Option<CniResult>],
    ) -> Result<(), crate::k8s::client::ApiError> {
        let list = statuses(plan, parsed);
        let value = status::to_annotation(&list);
        let mut ann = serde_json::Map::new();
        ann.insert(status::STATUS_ANNOTATION.into(), Value::String(value));
        let api = s.api();
        let event = self
            .cfg
            .added_interface_events
            .then(|| crate::k8s::event::added_interface(pod, &self.req.container_id, &list));
        let (patched, evented) = s.block_on(async {
            let patch = api.patch_pod_annotations(&pod.namespace, &pod.name, &ann);
            match &event {
                Some(ev) => {
                    let post = api.post_event(&pod.namespace, ev);
                    tokio::join!(patch, post)
                }
                None => (patch.await, Ok(())),
            }
        });
        if let Err(e) = evented {
            tracing::warn!(%pod, error = %e, "AddedInterface event not recorded");
        }
        match patched {
            Ok(true) => Ok(()),
            Ok(false) => {
                tracing::warn!(%pod, "pod is gone; network-status not written");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// An incomplete journal is an earlier ADD whose rollback failed: finish it; a complete one
    /// means the runtime is adding twice (refused: rolling back would destroy working
    /// interfaces).
    fn finish_old_rollback(
        &self,
        rec: &Record,
        atts: &[(Attachment, Option<Value>)],
    ) -> Result<(), Error> {
        if rec.complete {
            return Err(Error::AlreadyAttached(self.req.container_id.clone()));
        }
        tracing::warn!(
            container_id = %self.req.container_id,
            "finishing the rollback of an earlier failed ADD"
        );
        let (_, failures) = self.del_attachments(&rec.container_id, &rec.netns, atts);
        if !failures.is_empty() {
            return Err(Error::Delegates(failures));
        }
        Ok(())
    }

    /// A corrupt journal is cleared by DELeting this plan (the same networks) before it runs.
    /// Returns the lock, re-taken.
    fn clear_corrupt(
        &self,
        lock: JournalLock,
        plan: &[Attachment],
        reason: &str,
    ) -> Result<JournalLock, Error> {
        let atts: Vec<_> = plan.iter().cloned().map(|a| (a, None)).collect();
        let (_, failures) = self.del_attachments(&self.req.container_id, &self.req.netns, &atts);
        if !failures.is_empty() {
            return Err(Error::Delegates(failures));
        }
        quarantine(lock, reason)?;
        Ok(self.journal.lock(&self.req.container_id)?)
    }

    /// DELs attachments `0..=upto` of `plan` (the record's, each with the result `rec` holds) in
    /// reverse; removes the journal if all went well, else keeps only what is left to DEL.
    pub(super) fn rollback(
        &self,
        lock: JournalLock,
        rec: &mut Record,
        plan: &[Attachment],
        upto: usize,
    ) -> Rollback {
        let atts: Vec<(Attachment, Option<Value>)> = plan[..=upto]
            .iter()
            .cloned()
            .zip(rec.attachments.iter().map(|e| e.result.clone()))
            .collect();
        let (cleaned, failures) =
            self.del_attachments(&self.req.container_id, &self.req.netns, &atts);
        let cleaned_names = cleaned.iter().map(|&i| plan[i].ifname.clone()).collect();
        let journal = if failures.is_empty() {
            lock.remove().err().map(|e| e.to_string())
        } else {
            rec.keep_for_retry(upto, &cleaned);
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

/// Where an ADD stopped and why; the index is the last attachment to roll back.
enum Stop {
    Delegate(Box<DelegateFailure>, usize),
    Status(crate::k8s::client::ApiError, usize),
    Other(Error, usize),
}

/// A failed ADD of attachment `a`, named by network, interface and plugin.
pub(super) fn add_failure(a: &Attachment, f: list::PluginFailure) -> DelegateFailure {
    DelegateFailure {
        verb: Command::Add,
        network: a.network.clone(),
        ifname: a.ifname.clone(),
        plugin: f.plugin,
        source: f.source,
    }
}

/// Nothing of this ADD ran: removes the lock file (and a journal whose attachments were
/// already undone) so nothing is left behind.
pub(super) fn abandon(lock: JournalLock) {
    if let Err(e) = lock.remove() {
        tracing::warn!(error = %e, "removing the journal of an ADD that never started");
    }
}

/// network-status entries for every attachment that returned a result.
fn statuses(plan: &[Attachment], parsed: &[Option<CniResult>]) -> Vec<status::NetworkStatus> {
    let inputs: Vec<StatusInput<'_>> = plan
        .iter()
        .zip(parsed)
        .filter_map(|(a, c)| {
            Some(StatusInput {
                network: &a.network,
                ifname: &a.ifname,
                result: c.as_ref()?,
                default: a.cluster,
                device_info: None,
            })
        })
        .collect();
    status::build(&inputs)
}
