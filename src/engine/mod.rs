//! The CNI verbs over the seams (delegates, journal, cluster API, the pod's namespace, clock):
//! ADD as one journaled transaction with rollback, DEL from the journal, CHECK, GC, STATUS.
//! One file per verb; the decisions live in [`crate::resolve`] and [`crate::txn`].

mod add;
mod check;
mod del;
mod gc;
pub mod hotplug;
pub mod multus;
mod status;
#[cfg(test)]
pub(crate) mod tests;

use std::path::Path;

use crate::clock::Clock;
use crate::cni::env::Request;
use crate::config::Config;
use crate::delegate::Executor;
use crate::error::Error;
use crate::journal::{Held, Store};
use crate::link::PodNet;
use crate::netns::Probe;
use crate::plan::Attachment;
use crate::resolve::Resolver;
use crate::resolve::cluster::Connect;
use crate::txn::observe::Observer;
use crate::txn::{PodId, Record, Runner, Step, Txn};

/// Everything a verb acts through: the seams tests substitute.
#[derive(Clone, Copy)]
pub struct Seams<'a> {
    /// How delegates are run.
    pub exec: &'a dyn Executor,
    /// Where records are kept.
    pub store: &'a dyn Store,
    /// How the API server is reached.
    pub connect: &'a dyn Connect,
    /// What plexus itself does in a pod's namespace.
    pub net: &'a dyn PodNet,
    /// The time.
    pub clock: &'a dyn Clock,
    /// Who is told how each delegate call went ([`crate::txn::observe::NoObserver`] for nobody).
    pub observer: &'a dyn Observer,
}

/// Runs one CNI verb for one request.
pub struct Engine<'a> {
    cfg: &'a Config,
    req: &'a Request,
    seams: Seams<'a>,
    args: String,
}

impl<'a> Engine<'a> {
    /// An engine for one request.
    pub fn new(cfg: &'a Config, req: &'a Request, seams: Seams<'a>) -> Engine<'a> {
        Engine {
            cfg,
            req,
            seams,
            args: req.args_string(),
        }
    }

    fn resolver(&self) -> Resolver<'a> {
        Resolver::new(self.cfg, &self.req.ifname, &self.req.args)
    }

    /// A runner for `container_id`'s steps: in parallel up to the bound with `parallelAttach`,
    /// else one at a time (the schedule of a strict plan allows no more anyway).
    fn runner(&self, container_id: &'a str) -> Runner<'a> {
        let limit = if self.cfg.parallel_attach {
            self.cfg.max_parallel_attach
        } else {
            1
        };
        Runner::new(self.seams.exec, container_id, limit).observed(self.seams.observer)
    }

    /// A new record for this request (nothing in it yet).
    fn new_record(&self) -> Record {
        let pod = match (
            self.req.arg("K8S_POD_NAMESPACE"),
            self.req.arg("K8S_POD_NAME"),
        ) {
            (Some(ns), Some(name)) if !ns.is_empty() && !name.is_empty() => Some(PodId {
                namespace: ns.to_string(),
                name: name.to_string(),
                uid: self
                    .req
                    .arg("K8S_POD_UID")
                    .filter(|u| !u.is_empty())
                    .map(str::to_string),
            }),
            _ => None,
        };
        Record::new(
            &self.req.container_id,
            &self.req.netns,
            &self.req.ifname,
            &self.args,
            pod,
            self.seams.clock.unix_seconds(),
        )
    }

    /// `CNI_NETNS` as delegates should get it on DEL: empty when the namespace is gone or the
    /// path is not a namespace (no plugin can enter it; the reference plugins then release
    /// what they can without it).
    fn netns_for_release(&self, netns: &str) -> String {
        if netns.is_empty() {
            return String::new();
        }
        match self.seams.net.probe(Path::new(netns)) {
            Probe::Namespace => netns.to_string(),
            Probe::Missing => String::new(),
            Probe::NotANamespace(why) => {
                tracing::warn!(netns, reason = %why, "CNI_NETNS is not a network namespace: releasing without it");
                String::new()
            }
        }
    }

    /// Releases every unreleased step of `txn` and ends it: the record is removed when all went
    /// well, else kept (durable) with what is left for the next DEL.
    ///
    /// # Errors
    /// The delegates' failures (the record is kept), or a journal failure.
    fn release_all(&self, mut txn: Txn<'_>, netns: &str) -> Result<(), Error> {
        let which = txn.rec.unreleased();
        let id = txn.rec.container_id.clone();
        let failures = self.runner(&id).release(&mut txn.rec, &which, netns);
        txn.finish()?;
        if failures.is_empty() {
            Ok(())
        } else {
            Err(Error::Delegates(failures))
        }
    }

    /// A record of `plan`'s steps (pending) with the schedule the config asks for.
    fn steps(&self, plan: &[Attachment]) -> Vec<Step> {
        let schedule = crate::plan::schedule(plan, self.cfg.parallel_attach);
        plan.iter()
            .zip(schedule)
            .map(|(a, after)| Step::new(a, after))
            .collect()
    }
}

/// Releases the lock of a record that never named anything (nothing was started).
fn abandon(held: Box<dyn Held + '_>) {
    if let Err(e) = held.remove() {
        tracing::warn!(error = %e, "removing the journal of an ADD that never started");
    }
}
