//! GC: release every journaled container the runtime no longer lists, then forward GC to
//! delegates that speak 1.1.0.

use std::collections::HashSet;

use serde_json::{Value, json};

use super::{Engine, Loaded, quarantine, read_record};
use crate::cni::env::Command;
use crate::delegate::list;
use crate::error::{DelegateFailure, Error};

impl Engine<'_> {
    /// GC.
    ///
    /// # Errors
    /// A missing or malformed valid-attachments list (nothing is released then); otherwise every
    /// failure met, after going on past each.
    pub fn gc(&self) -> Result<(), Error> {
        let valid = self.valid_attachments()?;
        let mut failures: Vec<DelegateFailure> = Vec::new();
        let mut other_errors: Vec<String> = Vec::new();
        // (network name, container id, ifname) of what stays, for forwarding GC to delegates.
        let mut keep: Vec<(String, String, String)> = Vec::new();
        for id in self.journal.list()? {
            let lock = match self.journal.lock(&id) {
                Ok(l) => l,
                Err(e) => {
                    other_errors.push(e.to_string());
                    continue;
                }
            };
            let (rec, atts) = match read_record(&lock) {
                Ok(Loaded::Record(r, atts)) => (r, atts),
                Ok(Loaded::Missing) => continue,
                Ok(Loaded::Corrupt(reason)) => {
                    // No pod identity to rebuild from: release what the configuration gives.
                    if let Err(e) = self.gc_corrupt(lock, &id, &reason) {
                        other_errors.push(e.to_string());
                    }
                    continue;
                }
                Err(e) => {
                    other_errors.push(e.to_string());
                    continue;
                }
            };
            if valid.contains(&(id.clone(), rec.ifname.clone())) {
                keep.extend(
                    rec.attachments
                        .iter()
                        .map(|e| (e.network.clone(), id.clone(), e.ifname.clone())),
                );
                continue;
            }
            tracing::info!(container_id = %id, "GC: releasing attachments of a container the runtime no longer lists");
            let (cleaned, fails) = self.del_attachments(&id, &rec.netns, &atts);
            if fails.is_empty() {
                if let Err(e) = lock.remove() {
                    other_errors.push(e.to_string());
                }
            } else {
                let mut kept = rec;
                kept.keep_for_retry(usize::MAX, &cleaned);
                if let Err(e) = lock.write(&kept).and_then(|_| lock.sync()) {
                    other_errors.push(e.to_string());
                }
                failures.extend(fails);
            }
        }
        if let Ok(networks) = self.cfg.networks() {
            for conf in &networks {
                let valid_here: Vec<Value> = keep
                    .iter()
                    .filter(|(n, _, _)| *n == conf.name)
                    .map(|(_, c, i)| json!({"containerID": c, "ifname": i}))
                    .collect();
                let inv = self.invocation(Command::Gc, "", "", &self.args);
                for f in list::gc(self.exec, conf, &inv, &Value::Array(valid_here)) {
                    failures.push(DelegateFailure {
                        verb: Command::Gc,
                        network: conf.name.clone(),
                        ifname: String::new(),
                        plugin: f.plugin,
                        source: f.source,
                    });
                }
            }
        }
        if !failures.is_empty() {
            return Err(Error::Delegates(failures));
        }
        if !other_errors.is_empty() {
            return Err(Error::Failed(format!("GC: {}", other_errors.join("; "))));
        }
        Ok(())
    }

    /// GC of a container whose journal is corrupt: DEL what the configuration gives it.
    fn gc_corrupt(
        &self,
        lock: crate::journal::JournalLock,
        id: &str,
        reason: &str,
    ) -> Result<(), Error> {
        let plan = self.plan_from_config()?;
        let atts: Vec<_> = plan.into_iter().map(|a| (a, None)).collect();
        let (_, failures) = self.del_attachments(id, "", &atts);
        if !failures.is_empty() {
            return Err(Error::Delegates(failures));
        }
        quarantine(lock, reason)
    }

    /// `cni.dev/valid-attachments` (or the older `cni.dev/attachments`) as (container id, ifname).
    fn valid_attachments(&self) -> Result<HashSet<(String, String)>, Error> {
        let raw = &self.cfg.raw;
        let list = raw
            .get("cni.dev/valid-attachments")
            .or_else(|| raw.get("cni.dev/attachments"))
            .ok_or_else(|| {
                Error::Rejected(
                    "GC needs cni.dev/valid-attachments in the config; nothing released".into(),
                )
            })?;
        let items = list.as_array().ok_or_else(|| {
            Error::Rejected("cni.dev/valid-attachments must be a list; nothing released".into())
        })?;
        let mut out = HashSet::new();
        for (i, it) in items.iter().enumerate() {
            let get = |k: &str| it.get(k).and_then(Value::as_str).map(str::to_string);
            match (get("containerID"), get("ifname")) {
                (Some(c), Some(n)) => {
                    out.insert((c, n));
                }
                _ => {
                    return Err(Error::Rejected(format!(
                        "cni.dev/valid-attachments[{i}] needs containerID and ifname; nothing released"
                    )));
                }
            }
        }
        Ok(out)
    }
}
