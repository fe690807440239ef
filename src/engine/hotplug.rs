//! Hot-plug: a running pod's selected networks brought in line with its current
//! `k8s.v1.cni.cncf.io/networks` annotation, as one change of its transaction, under its journal
//! lock: removed networks are DELeted and dropped from the record, added ones are journaled as
//! steps first, then ADDed by the same runner with the same rollback as ADD (a failure removes
//! what this change started and leaves the pod as it was); then one network-status PATCH
//! describes the new set. The cluster network and the default networks are never touched.
//! Level-triggered and idempotent: a pass with nothing to change changes nothing, and a pass
//! interrupted by a crash is rolled back by the next one.

mod diff;

use std::collections::BTreeMap;
use std::path::Path;

use super::Engine;
pub use super::add::status_of;
use crate::cni::env::{Command, EnvError, Request, parse_args};
use crate::error::{DelegateFailure, Error};
use crate::k8s::pod::PodRef;
use crate::k8s::selection::Selection;
use crate::netns::Probe;
use crate::plan::{Attachment, Network, Origin};
use crate::resolve::ResolveError;
use crate::resolve::cluster::Cluster;
use crate::resolve::fetch::Fetched;
use crate::txn::runner::Stop;
use crate::txn::{Loaded, Record, State, Step, Txn};
pub use diff::Refusal;

/// One network of a pod, as hot-plug reports it: `namespace/name` and interface.
pub type Attached = (String, String);

/// What a hot-plug pass did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Networks attached.
    pub added: Vec<Attached>,
    /// Networks detached.
    pub removed: Vec<Attached>,
    /// Networks kept whose parameters changed (config, `ips`, `mac`...): not applied to a
    /// running interface; the pod needs a restart (or a remove and an add).
    pub needs_restart: Vec<Attached>,
    /// Networks the annotation asks for that cannot be attached, and why.
    pub refused: Vec<(Attached, String)>,
    /// DELs that failed: the attachment stays and the next pass tries again.
    pub stuck: Vec<DelegateFailure>,
    /// The additions' failure (they were rolled back), if any.
    pub failed: Option<Box<Error>>,
    /// True when network-status was written.
    pub status_written: bool,
    /// Why network-status could not be written (the change itself is journaled: the next
    /// pass writes it with `force_status`, never ADDs again).
    pub status_failed: Option<Box<Error>>,
}

impl Outcome {
    /// True when the pass changed the pod.
    pub fn changed(&self) -> bool {
        !self.added.is_empty() || !self.removed.is_empty()
    }
}

/// The request a change to a running container runs as: the runtime's parameters journaled
/// at ADD.
///
/// # Errors
/// [`EnvError`] for journaled `CNI_ARGS` that do not parse.
pub fn request_for(rec: &Record) -> Result<Request, EnvError> {
    Ok(Request {
        command: Command::Add,
        container_id: rec.container_id.clone(),
        netns: rec.netns.clone(),
        ifname: rec.ifname.clone(),
        args: parse_args(&rec.cni_args)?,
        path: Vec::new(),
    })
}

impl Engine<'_> {
    /// Hot-plug for this engine's container (its request from [`request_for`]): its selected
    /// networks become those `annotations` select. With `force_status`, network-status is
    /// written even when nothing changed (the last pass could not write it).
    ///
    /// # Errors
    /// [`Error::UnknownContainer`] without a complete record of a pod; an annotation, NAD or
    /// plan the resolver refuses (nothing changed); the API failing; a journal failure. A
    /// delegate failure is not an error: it is in the [`Outcome`], rolled back; nor is a
    /// failed status write ([`Outcome::status_failed`]).
    pub fn hotplug(
        &self,
        annotations: &BTreeMap<String, String>,
        force_status: bool,
    ) -> Result<Outcome, Error> {
        let id = &self.req.container_id;
        let held = self.seams.store.lock(id)?;
        let rec = match crate::txn::load(&*held)? {
            Loaded::Record(r) if r.complete && r.pod.is_some() => r,
            Loaded::Missing => {
                // DELeted meanwhile: the lock taken to find out goes too.
                super::abandon(held);
                return Err(Error::UnknownContainer(id.clone()));
            }
            _ => return Err(Error::UnknownContainer(id.clone())),
        };
        if self.seams.net.probe(Path::new(&rec.netns)) != Probe::Namespace {
            return Err(Error::UnknownContainer(id.clone()));
        }
        let pod = rec
            .pod
            .as_ref()
            .map(|p| PodRef {
                namespace: p.namespace.clone(),
                name: p.name.clone(),
                uid: p.uid.clone(),
            })
            .ok_or_else(|| Error::UnknownContainer(id.clone()))?;
        let mut txn = Txn::new(rec, held);
        self.finish_interrupted(&mut txn)?;
        let cluster = self
            .seams
            .connect
            .connect(None)
            .map_err(ResolveError::from)?
            .ok_or_else(|| ResolveError::NoApiAccess {
                pod: Some(pod.clone()),
                wanted: Vec::new(),
            })?;
        let desired = self.desired(&pod, annotations, &*cluster)?;
        let mut out = Outcome::default();
        let plan = self.plan_change(&pod, &txn.rec, &desired, &mut out)?;
        self.detach(&mut txn, &plan.remove, &mut out)?;
        self.attach(&mut txn, plan.add, &mut out)?;
        if out.changed() || out.failed.is_some() || !out.stuck.is_empty() {
            txn.rec.compact();
            txn.rec.complete = true;
            txn.write()?;
        }
        if out.changed() || force_status {
            match self.write_status(&*cluster, &pod, &txn.rec) {
                Ok(()) => out.status_written = true,
                Err(e) => out.status_failed = Some(Box::new(e)),
            }
        }
        Ok(out)
    }

    /// Steps a crashed or failed pass left in a complete record (pending, failed, or whose
    /// rollback failed): released and dropped, so the pod is as it was before that pass.
    fn finish_interrupted(&self, txn: &mut Txn<'_>) -> Result<(), Error> {
        let leftover = txn.rec.leftover();
        if leftover.is_empty() {
            return Ok(());
        }
        tracing::warn!(container_id = %txn.rec.container_id, steps = leftover.len(),
            "rolling back what an interrupted hot-plug started");
        let netns = txn.rec.netns.clone();
        let failures = self
            .runner(&self.req.container_id)
            .release(&mut txn.rec, &leftover, &netns);
        txn.rec.compact();
        txn.write()?;
        if failures.is_empty() {
            Ok(())
        } else {
            Err(Error::Delegates(failures))
        }
    }

    /// The networks the annotation selects, resolved (isolation, syntax, NADs).
    fn desired(
        &self,
        pod: &PodRef,
        annotations: &BTreeMap<String, String>,
        cluster: &dyn Cluster,
    ) -> Result<Vec<Network>, Error> {
        let resolver = self.resolver();
        let request = resolver.pod_request(pod, annotations)?;
        let wanted: Vec<_> = request
            .selections
            .iter()
            .map(|s| (s.namespace.clone(), s.name.clone()))
            .collect();
        let objects = if wanted.is_empty() {
            Default::default()
        } else {
            cluster.nads(&wanted).map_err(ResolveError::from)?
        };
        let source = Fetched {
            resolver: &resolver,
            objects: &objects,
        };
        Ok(resolver.selected_networks(pod, &request, &source, None)?)
    }

    /// The diff, with every attachment planned under its (kept or new) interface name by the
    /// same rules as ADD: a plan that breaks a rule changes nothing.
    fn plan_change(
        &self,
        pod: &PodRef,
        rec: &Record,
        desired: &[Network],
        out: &mut Outcome,
    ) -> Result<Change, Error> {
        let d = diff::diff(&rec.steps, desired);
        for (i, why) in &d.refused {
            let name = (desired[*i].status_name.clone(), String::new());
            out.refused.push((name, why.to_string()));
        }
        let cluster = rec
            .cluster()
            .and_then(|s| {
                Some(Network {
                    status_name: s.network.clone(),
                    conf: s.conf_list()?,
                    selection: None,
                })
            })
            .ok_or_else(|| Error::UnknownContainer(rec.container_id.clone()))?;
        // Every interface the pod keeps or gets, named: what stays as it is, then the new ones.
        let mut named: Vec<Network> = Vec::new();
        let mut slots: Vec<Slot> = Vec::new();
        for (i, s) in rec.steps.iter().enumerate().skip(1) {
            if !s.needs_release() || d.remove.contains(&i) {
                continue;
            }
            let kept = d.keep.iter().find(|(k, _)| *k == i).map(|(_, w)| *w);
            let net = match kept {
                Some(w) => with_interface(&desired[w], &s.ifname),
                None => stored(s),
            };
            named.push(net);
            slots.push(Slot::Kept(i));
        }
        for (w, ifname) in &d.add {
            named.push(with_interface(&desired[*w], ifname));
            slots.push(Slot::New);
        }
        let planned = self.resolver().plan_named(pod, cluster, named)?;
        let mut add = Vec::new();
        for (slot, att) in slots.into_iter().zip(planned.into_iter().skip(1)) {
            match slot {
                Slot::Kept(i) => {
                    let s = &rec.steps[i];
                    if s.origin == Origin::Selected && !s.is_for(&att) {
                        out.needs_restart
                            .push((s.network.clone(), s.ifname.clone()));
                    }
                }
                Slot::New => add.push(att),
            }
        }
        Ok(Change {
            remove: d.remove,
            add,
        })
    }

    /// Removes steps: DEL, then marked released (dropped when the record is compacted); a DEL
    /// that fails leaves its step for the next pass.
    fn detach(&self, txn: &mut Txn<'_>, which: &[usize], out: &mut Outcome) -> Result<(), Error> {
        if which.is_empty() {
            return Ok(());
        }
        let netns = txn.rec.netns.clone();
        let failures = self
            .runner(&self.req.container_id)
            .release(&mut txn.rec, which, &netns);
        for &i in which {
            let s = &mut txn.rec.steps[i];
            if s.state == State::Released {
                out.removed.push((s.network.clone(), s.ifname.clone()));
            } else {
                // Still attached: the step stays as it was for the next pass.
                s.state = State::Added;
            }
        }
        out.stuck.extend(failures);
        txn.write()?;
        Ok(())
    }

    /// Adds attachments: journaled as steps (after everything there), then run; on failure
    /// what this change started is rolled back and dropped.
    fn attach(
        &self,
        txn: &mut Txn<'_>,
        add: Vec<Attachment>,
        out: &mut Outcome,
    ) -> Result<(), Error> {
        let held: Vec<String> = txn
            .rec
            .steps
            .iter()
            .filter(|s| s.needs_release())
            .map(|s| s.ifname.clone())
            .collect();
        let first = txn.rec.steps.len();
        for a in add {
            if held.contains(&a.ifname) {
                // Its interface is still held by a network whose DEL failed.
                let why = format!(
                    "interface {} is still held by a network being removed",
                    a.ifname
                );
                out.refused
                    .push(((a.network.clone(), a.ifname.clone()), why));
                continue;
            }
            let n = txn.rec.steps.len();
            let after = if self.cfg.parallel_attach && a.self_contained() {
                Vec::new()
            } else {
                (first..n).collect()
            };
            txn.rec.steps.push(Step::new(&a, after));
        }
        if txn.rec.steps.len() == first {
            return Ok(());
        }
        txn.write()?;
        let netns = txn.rec.netns.clone();
        let runner = self.runner(&self.req.container_id);
        match runner.add::<()>(txn, &netns, None, true) {
            Ok(_) => {
                for s in &txn.rec.steps[first..] {
                    out.added.push((s.network.clone(), s.ifname.clone()));
                }
            }
            Err(stopped) => {
                let cause = match stopped.cause {
                    Stop::Delegate { step, failure } => Error::Delegate(Box::new(
                        DelegateFailure::of_step(Command::Add, &txn.rec.steps[step], failure),
                    )),
                    Stop::Journal(e) => e.into(),
                    Stop::Extend(e) => e,
                    Stop::Replan(()) => Error::UnknownContainer(txn.rec.container_id.clone()),
                };
                let failures = runner.roll_back(&mut txn.rec, &stopped.started, &netns);
                out.stuck.extend(failures);
                out.failed = Some(Box::new(cause));
            }
        }
        Ok(())
    }
}

/// What a pass changes.
struct Change {
    remove: Vec<usize>,
    add: Vec<Attachment>,
}

/// Where a planned attachment comes from.
enum Slot {
    Kept(usize),
    New,
}

/// A desired network under the interface name it keeps or gets.
fn with_interface(net: &Network, ifname: &str) -> Network {
    let mut n = net.clone();
    let mut sel = n.selection.take().unwrap_or_default();
    sel.interface = Some(ifname.to_string());
    n.selection = Some(sel);
    n
}

/// A journaled step as a network (a default network, or one kept as it runs), so the plan
/// checks new attachments against it: its interface and default routes.
fn stored(s: &Step) -> Network {
    Network {
        status_name: s.network.clone(),
        conf: s.conf_list().unwrap_or_else(|| crate::cni::conf::ConfList {
            cni_version: String::new(),
            name: s.network.clone(),
            plugins: vec![Default::default()],
            disable_check: false,
            disable_gc: false,
            single: true,
        }),
        selection: Some(Selection {
            interface: Some(s.ifname.clone()),
            default_route: s.default_route.clone(),
            ..Selection::default()
        }),
    }
}
