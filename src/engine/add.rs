//! ADD: one transaction. Everything the configuration names is resolved and validated before
//! anything runs; the record names each step before it starts; the runner adds steps as the
//! schedule allows; on the first failure every started step is released, in reverse. With a
//! pod to look up and a cluster network on disk, the cluster network starts at once while the
//! pod and its NADs are read (the rest of the plan joins the transaction when they are).

use std::net::IpAddr;
use std::path::Path;

use serde_json::Value;

use super::{Engine, abandon};
use crate::cni::env::EnvError;
use crate::error::{Error, NotReady, Rollback};
use crate::journal::Held;
use crate::k8s::pod::PodRef;
use crate::k8s::status::{self, StatusInput};
use crate::netns::Probe;
use crate::plan::Attachment;
use crate::resolve::fetch::{PodPlan, resolve_pod};
use crate::resolve::{ConfigNetworks, Ref};
use crate::txn::runner::{Extension, Stop, Stopped, parsed_result};
use crate::txn::{Loaded, Record, Txn};

/// How the plan reaches the transaction.
enum Start {
    /// Already resolved: every step is named before anything runs.
    Resolved(PodPlan),
    /// The cluster network starts at once; the pod is resolved beside it.
    Early(Attachment),
}

impl Engine<'_> {
    /// ADD: returns the cluster network's result in the runtime's cniVersion.
    ///
    /// # Errors
    /// Invalid environment, config, annotations or plan (nothing ran); a delegate failure, a
    /// journal failure, a default route or a network-status write that failed (everything
    /// started is rolled back and the error carries the rollback's outcome).
    pub fn add(&self) -> Result<Value, Error> {
        if let Some(f) = &self.cfg.readiness_indicator_file
            && !f.exists()
        {
            return Err(Error::NotReady(NotReady::ReadinessFile(f.clone())));
        }
        self.check_netns()?;
        let resolver = self.resolver();
        // Every network the configuration names, resolved and validated before anything runs.
        let nets = resolver.config_networks()?;
        let pod = PodRef::from_request(self.req).map_err(crate::resolve::ResolveError::from)?;
        let held = self.seams.store.lock(&self.req.container_id)?;
        let start = match crate::txn::load(&*held)? {
            Loaded::Record(rec) if rec.complete => {
                return Err(Error::AlreadyAttached(self.req.container_id.clone()));
            }
            Loaded::Record(rec) => {
                // An earlier ADD whose rollback failed: finish it first.
                tracing::warn!(container_id = %self.req.container_id, "finishing the rollback of an earlier failed ADD");
                let netns = self.netns_for_release(&rec.netns);
                self.release_all(Txn::new(rec, held), &netns)?;
                let held = self.seams.store.lock(&self.req.container_id)?;
                return self.add_locked(held, nets, pod);
            }
            Loaded::Corrupt(reason) => {
                let pp = resolve_pod(&resolver, self.seams.connect, pod.clone(), &nets)?;
                self.clear_corrupt(held, &pp.plan, &reason)?;
                let held = self.seams.store.lock(&self.req.container_id)?;
                return self.run(held, Start::Resolved(pp), &nets, pod);
            }
            Loaded::Missing => held,
        };
        self.add_locked(start, nets, pod)
    }

    /// ADD with the lock held and no record: the early start when it applies, else resolve
    /// first.
    fn add_locked(
        &self,
        held: Box<dyn Held + '_>,
        nets: ConfigNetworks,
        pod: Option<PodRef>,
    ) -> Result<Value, Error> {
        let early = match (&pod, &nets.cluster) {
            (Some(_), Ref::Conf(c)) => self.resolver().cluster_attachment(c).map(Some),
            _ => Ok(None),
        };
        let start = match early {
            Ok(Some(first)) => Start::Early(first),
            Ok(None) => {
                match resolve_pod(&self.resolver(), self.seams.connect, pod.clone(), &nets) {
                    Ok(pp) => Start::Resolved(pp),
                    Err(e) => {
                        abandon(held);
                        return Err(e.into());
                    }
                }
            }
            Err(e) => {
                abandon(held);
                return Err(e.into());
            }
        };
        self.run(held, start, &nets, pod)
    }

    /// `CNI_NETNS` must be a network namespace before anything starts.
    fn check_netns(&self) -> Result<(), Error> {
        let invalid = |reason: String| {
            Error::Env(EnvError::Invalid {
                var: "CNI_NETNS",
                reason,
            })
        };
        match self.seams.net.probe(Path::new(&self.req.netns)) {
            Probe::Namespace => Ok(()),
            Probe::Missing => Err(invalid(format!("{} does not exist", self.req.netns))),
            Probe::NotANamespace(why) => Err(invalid(why)),
        }
    }

    /// Runs the transaction and, when every step is added, completes it.
    fn run(
        &self,
        held: Box<dyn Held + '_>,
        start: Start,
        nets: &ConfigNetworks,
        pod: Option<PodRef>,
    ) -> Result<Value, Error> {
        let mut rec = self.new_record();
        let early = match start {
            Start::Resolved(pp) => {
                rec.steps = self.steps(&pp.plan);
                Err(pp)
            }
            Start::Early(first) => {
                rec.steps = self.steps(std::slice::from_ref(&first));
                Ok(first)
            }
        };
        let mut txn = Txn::new(rec, held);
        if let Err(e) = txn.write() {
            abandon_txn(txn);
            return Err(e.into());
        }
        let runner = self.runner(&self.req.container_id);
        let outcome = match early {
            Err(pp) => runner
                .add::<PodPlan>(&mut txn, &self.req.netns, None, true)
                .map(|_| pp)
                .map_err(|s| *s),
            Ok(first) => {
                let resolver = self.resolver();
                let connect = self.seams.connect;
                let extend = Box::new(move || {
                    let pp = resolve_pod(&resolver, connect, pod, nets)?;
                    if pp.plan.first() != Some(&first) {
                        return Ok(Extension::Replan(pp));
                    }
                    let mut steps = self.steps(&pp.plan);
                    steps.remove(0);
                    Ok(Extension::Append(steps, pp))
                });
                match runner.add(&mut txn, &self.req.netns, Some(extend), false) {
                    Ok(Some(pp)) => Ok(pp),
                    Ok(None) => unreachable_extension(),
                    Err(stopped) => Err(*stopped),
                }
            }
        };
        match outcome {
            Ok(pp) => match self.complete(&mut txn, &pp) {
                Ok(v) => Ok(v),
                Err(e) => Err(self.roll_back_all(txn, e)),
            },
            Err(Stopped {
                cause: Stop::Replan(pp),
                started,
            }) => {
                tracing::info!(container_id = %self.req.container_id, "the pod overrides its default network: undoing the cluster network started early");
                let failures = runner.roll_back(&mut txn.rec, &started, &self.req.netns);
                txn.finish()?;
                if !failures.is_empty() {
                    return Err(Error::Delegates(failures));
                }
                let held = self.seams.store.lock(&self.req.container_id)?;
                self.run(held, Start::Resolved(pp), nets, None)
            }
            Err(Stopped { cause, started }) => {
                let cause = match cause {
                    Stop::Delegate { step, failure } => {
                        Error::Delegate(Box::new(crate::error::DelegateFailure::of_step(
                            crate::cni::env::Command::Add,
                            &txn.rec.steps[step],
                            failure,
                        )))
                    }
                    Stop::Journal(e) => e.into(),
                    Stop::Extend(e) => e,
                    Stop::Replan(_) => unreachable_extension(),
                };
                Err(self.roll_back(txn, &started, cause))
            }
        }
    }

    /// Every step added: the runtime's result, default routes, then network-status sent while
    /// the complete record is written.
    fn complete(&self, txn: &mut Txn<'_>, pp: &PodPlan) -> Result<Value, Error> {
        let cluster = &txn.rec.steps[0];
        let converted = parsed_result(cluster)
            .ok_or_else(|| Error::Result {
                network: cluster.network.clone(),
                source: crate::cni::result::ResultError::Missing,
            })?
            .to_value(&self.cfg.cni_version)
            .map_err(|source| Error::Result {
                network: cluster.network.clone(),
                source,
            })?;
        self.apply_default_routes(&txn.rec)?;
        txn.rec.complete = true;
        let txn = &*txn;
        let (written, patched) = std::thread::scope(|s| {
            let w = s.spawn(|| txn.write());
            let patched = match (&pp.pod, &pp.cluster) {
                (Some(pod), Some(c)) => self.write_status(&**c, pod, &txn.rec),
                _ => Ok(()),
            };
            (join(w), patched)
        });
        written?;
        patched?;
        Ok(converted)
    }

    /// `default-route`: the chosen interface gets the default route of each gateway's family
    /// and no other interface keeps one.
    fn apply_default_routes(&self, rec: &Record) -> Result<(), Error> {
        let mut routes: Vec<(IpAddr, &str, &str)> = Vec::new();
        for step in &rec.steps {
            for gw in &step.default_route {
                // Validated when the selection was parsed; a stored one is used as it is.
                let Ok(ip) = gw.parse::<IpAddr>() else {
                    continue;
                };
                routes.push((ip.to_canonical(), &step.ifname, &step.network));
            }
        }
        let pairs: Vec<(IpAddr, &str)> = routes.iter().map(|(ip, i, _)| (*ip, *i)).collect();
        self.seams
            .net
            .set_default_routes(Path::new(&self.req.netns), &pairs)
            .map_err(|(i, source)| Error::DefaultRoute {
                network: routes[i].2.to_string(),
                ifname: routes[i].1.to_string(),
                gateway: routes[i].0,
                source,
            })
    }

    /// One merge PATCH of network-status (and, if configured, one AddedInterface event beside
    /// it). A pod that is gone is not an error.
    pub(super) fn write_status(
        &self,
        cluster: &dyn crate::resolve::cluster::Cluster,
        pod: &PodRef,
        rec: &Record,
    ) -> Result<(), Error> {
        let list = status_of(rec);
        let mut ann = serde_json::Map::new();
        ann.insert(
            status::STATUS_ANNOTATION.into(),
            Value::String(status::to_annotation(&list)),
        );
        let event = self
            .cfg
            .added_interface_events
            .then(|| crate::k8s::event::added_interface(pod, &self.req.container_id, &list));
        match cluster.patch_status(pod, &ann, event.as_ref()) {
            Ok(true) => Ok(()),
            Ok(false) => {
                tracing::warn!(%pod, "pod is gone; network-status not written");
                Ok(())
            }
            Err(e) => Err(Error::StatusWrite(e)),
        }
    }

    /// A corrupt journal is cleared by releasing the same networks (the plan just resolved)
    /// before they run again; the file is moved aside.
    fn clear_corrupt(
        &self,
        held: Box<dyn Held + '_>,
        plan: &[Attachment],
        reason: &str,
    ) -> Result<(), Error> {
        let mut txn = Txn::new(self.new_record(), held);
        txn.rec.steps = self.steps(plan);
        let which = txn.rec.unreleased();
        let failures =
            self.runner(&self.req.container_id)
                .release(&mut txn.rec, &which, &self.req.netns);
        if !failures.is_empty() {
            return Err(Error::Delegates(failures));
        }
        txn.quarantine(self.seams.clock, reason)?;
        Ok(())
    }

    /// Rolls back the steps a stopped run started; the error carries the outcome.
    fn roll_back(&self, mut txn: Txn<'_>, started: &[usize], cause: Error) -> Error {
        let failures =
            self.runner(&self.req.container_id)
                .roll_back(&mut txn.rec, started, &self.req.netns);
        let cleaned = started
            .iter()
            .rev()
            .filter(|&&i| txn.rec.steps[i].state == crate::txn::State::Released)
            .map(|&i| txn.rec.steps[i].ifname.clone())
            .collect();
        let journal = txn.finish().err().map(|e| e.to_string());
        Error::RolledBack {
            cause: Box::new(cause),
            rollback: Box::new(Rollback {
                cleaned,
                failures,
                journal,
            }),
        }
    }

    /// Rolls back a run whose every step was added.
    fn roll_back_all(&self, txn: Txn<'_>, cause: Error) -> Error {
        let all: Vec<usize> = (0..txn.rec.steps.len()).collect();
        self.roll_back(txn, &all, cause)
    }
}

/// The extension always answers before the runner returns successfully.
fn unreachable_extension() -> ! {
    unreachable!("a run with an extension ends only once it answered")
}

fn join<T>(h: std::thread::ScopedJoinHandle<'_, T>) -> T {
    h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
}

fn abandon_txn(txn: Txn<'_>) {
    if let Err(e) = txn.remove() {
        tracing::warn!(error = %e, "removing the journal of an ADD that never started");
    }
}

/// The network-status entries `rec` describes: its [attached](Record::attached) steps, in
/// order, each with its cached result (one whose result cannot be read has nothing to show and
/// is left out). What ADD and hot-plug write.
pub fn status_of(rec: &Record) -> Vec<status::NetworkStatus> {
    let attached: Vec<_> = rec.attached().collect();
    let parsed: Vec<_> = attached.iter().map(|s| parsed_result(s)).collect();
    let inputs: Vec<StatusInput<'_>> = attached
        .iter()
        .zip(&parsed)
        .filter_map(|(s, r)| {
            Some(StatusInput {
                network: &s.network,
                ifname: &s.ifname,
                result: r.as_ref()?,
                default: s.is_cluster(),
                device_info: None,
            })
        })
        .collect();
    status::build(&inputs)
}
