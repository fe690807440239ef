//! Orchestration of the CNI verbs over the seams (delegate executor, journal): ADD with
//! journal-first rollback, DEL from the journal, CHECK, GC, STATUS.

mod add;
mod check;
mod del;
mod gc;
pub mod record;
mod status;

use serde_json::Value;

use crate::cni::env::{Command, Request};
use crate::config::Config;
use crate::delegate::{Executor, Invocation, list};
use crate::error::{DelegateFailure, Error};
use crate::journal::{Journal, JournalError, JournalLock};
use crate::plan::{self, Attachment};
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

    /// The attachments the configuration gives this container (cluster network first).
    fn plan_from_config(&self) -> Result<Vec<Attachment>, Error> {
        let networks = self.cfg.networks()?;
        plan::plan(networks, &self.req.ifname, &self.cfg.runtime_config).map_err(Error::Plan)
    }

    fn invocation<'b>(
        &'b self,
        command: Command,
        netns: &'b str,
        ifname: &'b str,
    ) -> Invocation<'b> {
        Invocation {
            command,
            container_id: &self.req.container_id,
            netns,
            ifname,
            args: &self.args,
        }
    }
}

/// DELs the given attachments in reverse order, going on past failures. Returns the indexes
/// (into `atts`) that were removed cleanly and the failures.
fn del_attachments(
    exec: &dyn Executor,
    container_id: &str,
    netns: &str,
    args: &str,
    atts: &[(Attachment, Option<Value>)],
) -> (Vec<usize>, Vec<DelegateFailure>) {
    let mut cleaned = Vec::new();
    let mut failures = Vec::new();
    for (i, (a, cached)) in atts.iter().enumerate().rev() {
        let inv = Invocation {
            command: Command::Del,
            container_id,
            netns,
            ifname: &a.ifname,
            args,
        };
        let errs = list::del(exec, &a.conf, &inv, &a.runtime_config, cached.as_ref());
        if errs.is_empty() {
            cleaned.push(i);
        }
        failures.extend(errs.into_iter().map(|f| DelegateFailure {
            verb: Command::Del,
            network: a.network.clone(),
            ifname: a.ifname.clone(),
            plugin: f.plugin,
            source: f.source,
        }));
    }
    (cleaned, failures)
}

/// Reads the record under `lock`; a corrupt one is moved aside and reported as `Ok(None)` with
/// the quarantine path, so the caller can rebuild what the pod had from its configuration.
fn read_record(lock: &JournalLock) -> Result<(Option<Record>, Option<String>), Error> {
    let parsed = match lock.read::<Record>() {
        Ok(Some(r)) => match r.attachments() {
            Ok(_) => return Ok((Some(r), None)),
            Err(e) => format!("stored config invalid: {e}"),
        },
        Ok(None) => return Ok((None, None)),
        Err(JournalError::Corrupt { reason, .. }) => reason,
        Err(e) => return Err(e.into()),
    };
    let moved = lock.quarantine()?;
    tracing::error!(
        container_id = lock.container_id(),
        reason = %parsed,
        moved_to = %moved.display(),
        "journal is corrupt; moved aside, rebuilding the attachments from the configuration"
    );
    Ok((None, Some(moved.display().to_string())))
}
