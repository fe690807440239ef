//! Orchestration of the CNI verbs over the seams (delegate executor, journal): ADD with
//! journal-first rollback, DEL from the journal, CHECK, GC, STATUS.

mod add;
mod check;
mod del;
mod gc;
mod multus;
pub mod record;
mod resolve;
mod speculate;
mod status;
#[cfg(test)]
mod tests;

use serde_json::Value;

use crate::cni::env::{Command, Request};
use crate::config::Config;
use crate::delegate::{Executor, Invocation, list};
use crate::error::{DelegateFailure, Error};
use crate::journal::{Journal, JournalError, JournalLock};
use crate::plan::Attachment;
use record::Record;

/// Runs one CNI verb for one request.
pub struct Engine<'a> {
    /// plexus's config for this call.
    pub cfg: &'a Config,
    /// The runtime's request.
    pub req: &'a Request,
    /// How delegates are run.
    pub exec: &'a dyn Executor,
    /// Where attachments are recorded.
    pub journal: Journal,
    /// `CNI_ARGS` for delegates.
    args: String,
}

impl<'a> Engine<'a> {
    /// An engine using the config's `cniDir` as journal.
    pub fn new(cfg: &'a Config, req: &'a Request, exec: &'a dyn Executor) -> Self {
        Engine {
            cfg,
            req,
            exec,
            journal: Journal::new(cfg.cni_dir.clone()),
            args: req.args_string(),
        }
    }

    fn invocation<'b>(
        &'b self,
        command: Command,
        netns: &'b str,
        ifname: &'b str,
        args: &'b str,
    ) -> Invocation<'b> {
        Invocation {
            command,
            container_id: &self.req.container_id,
            netns,
            ifname,
            args,
        }
    }
}

/// DELs `atts` in reverse plan order, collecting every failure; returns the indices that were
/// cleaned. With `alongside`, the networks that run alongside the cluster network on ADD (the
/// self-contained ones right after it) are DELeted alongside its DEL too, after every network
/// that follows them.
fn del_in_reverse(
    exec: &dyn Executor,
    container_id: &str,
    netns: &str,
    atts: &[(Attachment, Option<Value>)],
    alongside: bool,
) -> (Vec<usize>, Vec<DelegateFailure>) {
    let del = |i: usize| -> Vec<DelegateFailure> {
        let (a, cached) = &atts[i];
        let inv = Invocation {
            command: Command::Del,
            container_id,
            netns,
            ifname: &a.ifname,
            args: &a.cni_args,
        };
        list::del(exec, &a.conf, &inv, &a.runtime_config, cached.as_ref())
            .into_iter()
            .map(|f| DelegateFailure {
                verb: Command::Del,
                network: a.network.clone(),
                ifname: a.ifname.clone(),
                plugin: f.plugin,
                source: f.source,
            })
            .collect()
    };
    let alongside = match atts.split_first() {
        Some(((first, _), rest)) if first.cluster && alongside => rest
            .iter()
            .take_while(|(a, _)| a.runs_alongside_cluster())
            .count(),
        _ => 0,
    };
    let mut cleaned = Vec::new();
    let mut failures = Vec::new();
    let mut record = |i: usize, errs: Vec<DelegateFailure>| {
        if errs.is_empty() {
            cleaned.push(i);
        }
        failures.extend(errs);
    };
    for i in (alongside + 1..atts.len()).rev() {
        record(i, del(i));
    }
    if alongside == 0 {
        if !atts.is_empty() {
            record(0, del(0));
        }
    } else {
        let (side, cluster) = std::thread::scope(|s| {
            let h = s.spawn(|| {
                (1..=alongside)
                    .rev()
                    .map(|i| (i, del(i)))
                    .collect::<Vec<_>>()
            });
            let cluster = del(0);
            (h.join(), cluster)
        });
        for (i, errs) in side.unwrap_or_else(|_| {
            (1..=alongside)
                .rev()
                .map(|i| {
                    let (a, _) = &atts[i];
                    let f = DelegateFailure {
                        verb: Command::Del,
                        network: a.network.clone(),
                        ifname: a.ifname.clone(),
                        plugin: a.conf.types(),
                        source: crate::delegate::DelegateError::Spawn("DEL thread panicked".into()),
                    };
                    (i, vec![f])
                })
                .collect()
        }) {
            record(i, errs);
        }
        record(0, cluster);
    }
    (cleaned, failures)
}

impl Engine<'_> {
    /// [`del_in_reverse`] with this engine's executor and `alongsideClusterNetwork`.
    fn del_attachments(
        &self,
        container_id: &str,
        netns: &str,
        atts: &[(Attachment, Option<Value>)],
    ) -> (Vec<usize>, Vec<DelegateFailure>) {
        let alongside = self.cfg.alongside_cluster_network;
        del_in_reverse(self.exec, container_id, netns, atts, alongside)
    }
}

/// What the journal holds for a container.
pub(crate) enum Loaded {
    /// A valid record, with its attachments parsed back into plan entries (and cached results).
    Record(Record, Vec<(Attachment, Option<Value>)>),
    /// No journal.
    Missing,
    /// A journal that cannot be used; the reason. The caller rebuilds what the pod had and,
    /// once that is DELeted, moves the file aside with [`quarantine`].
    Corrupt(String),
}

/// Reads the record under `lock`.
fn read_record(lock: &JournalLock) -> Result<Loaded, Error> {
    match lock.read::<Record>() {
        Ok(Some(r)) => match r.attachments() {
            Ok(atts) => Ok(Loaded::Record(r, atts)),
            Err(e) => Ok(Loaded::Corrupt(format!("stored config invalid: {e}"))),
        },
        Ok(None) => Ok(Loaded::Missing),
        Err(JournalError::Corrupt { reason, .. }) => Ok(Loaded::Corrupt(reason)),
        Err(e) => Err(e.into()),
    }
}

/// Moves a corrupt journal aside for the operator and removes the lock file.
fn quarantine(lock: JournalLock, reason: &str) -> Result<(), Error> {
    let moved = lock.quarantine()?;
    tracing::error!(
        container_id = lock.container_id(),
        reason,
        moved_to = %moved.display(),
        "journal was corrupt; its attachments were rebuilt from the configuration and removed; file kept for inspection"
    );
    lock.remove()?;
    Ok(())
}
