//! GC: release every journaled container the runtime no longer lists, then forward GC to the
//! configuration's networks that speak 1.1.0. Goes on past every failure and reports them all.

use std::collections::HashSet;

use serde_json::{Value, json};

use super::Engine;
use crate::cni::env::Command;
use crate::delegate::{Invocation, list};
use crate::error::{DelegateFailure, Error, GcInputError};
use crate::journal::Held;
use crate::resolve::Ref;
use crate::txn::{Loaded, Txn};

impl Engine<'_> {
    /// GC.
    ///
    /// # Errors
    /// A missing or malformed valid-attachments list (nothing is released then); otherwise every
    /// failure met, after going on past each.
    pub fn gc(&self) -> Result<(), Error> {
        let valid = self.valid_attachments()?;
        let mut problems: Vec<Error> = Vec::new();
        // (network name, container id, ifname) of what stays, for forwarding GC to delegates.
        let mut keep: Vec<(String, String, String)> = Vec::new();
        for id in self.seams.store.list()? {
            let held = match self.seams.store.lock(&id) {
                Ok(l) => l,
                Err(e) => {
                    problems.push(e.into());
                    continue;
                }
            };
            let outcome = match crate::txn::load(&*held) {
                Ok(Loaded::Record(rec)) if valid.contains(&(id.clone(), rec.ifname.clone())) => {
                    keep.extend(
                        rec.steps
                            .iter()
                            .map(|s| (s.network.clone(), id.clone(), s.ifname.clone())),
                    );
                    Ok(())
                }
                Ok(Loaded::Record(rec)) => {
                    tracing::info!(container_id = %id, "GC: releasing attachments of a container the runtime no longer lists");
                    let netns = self.netns_for_release(&rec.netns);
                    self.release_all(Txn::new(rec, held), &netns)
                }
                Ok(Loaded::Missing) => Ok(()),
                // No pod identity to rebuild from: release what the configuration gives.
                Ok(Loaded::Corrupt(reason)) => self.gc_corrupt(held, &id, &reason),
                Err(e) => Err(e.into()),
            };
            if let Err(e) = outcome {
                problems.push(e);
            }
        }
        problems.extend(
            self.forward_gc(&keep)
                .into_iter()
                .map(|f| Error::Delegates(vec![f])),
        );
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Gc(problems))
        }
    }

    /// GC forwarded to each configuration network on disk (1.1.0 plugins), with the
    /// attachments of that network that stay.
    fn forward_gc(&self, keep: &[(String, String, String)]) -> Vec<DelegateFailure> {
        let Ok(nets) = self.resolver().config_networks() else {
            return Vec::new();
        };
        let mut failures = Vec::new();
        for r in std::iter::once(nets.cluster).chain(nets.defaults) {
            let Ref::Conf(conf) = r else { continue };
            let valid_here: Vec<Value> = keep
                .iter()
                .filter(|(n, _, _)| *n == conf.name)
                .map(|(_, c, i)| json!({"containerID": c, "ifname": i}))
                .collect();
            let inv = Invocation {
                command: Command::Gc,
                container_id: "",
                netns: "",
                ifname: "",
                args: &self.args,
                cancel: None,
            };
            failures.extend(
                list::gc(self.seams.exec, &conf, &inv, &Value::Array(valid_here))
                    .into_iter()
                    .map(|f| DelegateFailure::new(Command::Gc, &conf.name, "", f)),
            );
        }
        failures
    }

    /// GC of a container whose record is corrupt: release what the configuration gives it
    /// (without a namespace: the sandbox is gone), then move the record aside.
    fn gc_corrupt(&self, held: Box<dyn Held + '_>, id: &str, reason: &str) -> Result<(), Error> {
        let plan = self.resolver().config_plan()?;
        let mut rec = self.new_record();
        rec.container_id = id.to_string();
        rec.steps = self.steps(&plan);
        let which = rec.unreleased();
        let failures = self.runner(id).release(&mut rec, &which, "");
        if !failures.is_empty() {
            return Err(Error::Delegates(failures));
        }
        Txn::new(rec, held).quarantine(self.seams.clock, reason)?;
        Ok(())
    }

    /// `cni.dev/valid-attachments` (or the older `cni.dev/attachments`) as (container id, ifname).
    fn valid_attachments(&self) -> Result<HashSet<(String, String)>, GcInputError> {
        let raw = &self.cfg.raw;
        let list = raw
            .get("cni.dev/valid-attachments")
            .or_else(|| raw.get("cni.dev/attachments"))
            .ok_or(GcInputError::Missing)?;
        let items = list.as_array().ok_or(GcInputError::NotAList)?;
        let mut out = HashSet::new();
        for (i, it) in items.iter().enumerate() {
            let get = |k: &str| it.get(k).and_then(Value::as_str).map(str::to_string);
            match (get("containerID"), get("ifname")) {
                (Some(c), Some(n)) => {
                    out.insert((c, n));
                }
                _ => return Err(GcInputError::Element(i)),
            }
        }
        Ok(out)
    }
}
