//! One health round's look at the node, on threads of their own (namespaces are entered and
//! delegates run there): every complete journal record of a pod the agent's cache holds is
//! locked without waiting (a record an ADD, DEL or hot-plug holds is skipped this round) and
//! each of its attachments ([`Record::attached`]) is checked by [`crate::health`], CHECK's own
//! code: in the pod under the lock, then by its delegate's CHECK without it.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use crate::delegate::Executor;
use crate::health::Reason;
use crate::journal::Journal;
use crate::link::PodNet;
use crate::txn::{Loaded, PodId, Record, Step};

/// A pod as the health rounds know it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PodKey {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its UID (empty when the runtime did not send it).
    pub uid: String,
}

/// One attachment's health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The network.
    pub network: String,
    /// The interface in the pod.
    pub ifname: String,
    /// What is wrong with it, and in words; `None` when healthy.
    pub problem: Option<(Reason, String)>,
}

/// What one record gave.
#[derive(Debug, Clone, PartialEq)]
pub enum Looked {
    /// The record's container id, its pod's attachments, checked, and how long that took
    /// (seconds).
    Checked(String, PodKey, Vec<Attachment>, f64),
    /// An ADD, DEL or hot-plug held the record, or changed it while its delegates were
    /// checked: not checked this round.
    Busy(String),
    /// Not a record to check: incomplete, of no pod or another pod than the cache's,
    /// unreadable, gone.
    Ignored(String),
}

/// What a round looks with.
pub struct Eyes<'a> {
    /// The journal.
    pub journal: &'a Journal,
    /// The pod's namespace as plexus reads it.
    pub net: &'a dyn PodNet,
    /// When given, each delegate's own CHECK is run too.
    pub exec: Option<&'a dyn Executor>,
    /// Whether a record's pod is one to check (a pod of this node, this incarnation).
    pub wanted: &'a (dyn Fn(&PodId) -> bool + Sync),
    /// How many records are looked at at once.
    pub concurrency: usize,
    /// Only these container ids (`None`: every record).
    pub only: Option<&'a BTreeSet<String>>,
}

/// Looks at every record of the journal, `concurrency` at a time.
pub fn look_all(eyes: &Eyes<'_>) -> Vec<Looked> {
    let Ok(mut ids) = eyes.journal.list() else {
        return Vec::new();
    };
    if let Some(only) = eyes.only {
        ids.retain(|id| only.contains(id));
    }
    let next = AtomicUsize::new(0);
    let out = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..eyes.concurrency.clamp(1, ids.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(id) = ids.get(i) else { return };
                    let l = look(eyes, id).unwrap_or_else(|| Looked::Ignored(id.clone()));
                    out.lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(l);
                }
            });
        }
    });
    out.into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One record: `None` when it is not a checked pod's (incomplete, no pod, another pod,
/// unreadable, gone). The record's lock is held while it is read and the pod's interfaces are
/// looked at, never while delegates run: a runtime DEL of the pod does not wait for them.
fn look(eyes: &Eyes<'_>, id: &str) -> Option<Looked> {
    let held = match eyes.journal.try_lock(id) {
        Ok(Some(h)) => h,
        Ok(None) => return Some(Looked::Busy(id.to_string())),
        Err(_) => return None,
    };
    let rec = match crate::txn::load(&held) {
        Ok(Loaded::Record(r)) => r,
        Ok(Loaded::Missing) => {
            // Removed since the listing; the lock file is ours to take away.
            let _ = held.remove();
            return None;
        }
        _ => return None,
    };
    let pod = rec.pod.as_ref()?;
    if !rec.complete || !(eyes.wanted)(pod) {
        return None;
    }
    let started = Instant::now();
    let steps: Vec<&Step> = rec.attached().collect();
    let mut attachments = in_pod(eyes, &rec, &steps);
    drop(held);
    if let Some(exec) = eyes.exec
        && delegates_fail(exec, &rec, &steps, &mut attachments)
    {
        match since(eyes, &rec) {
            Since::Unchanged => {}
            Since::Busy => return Some(Looked::Busy(id.to_string())),
            Since::Gone => return None,
        }
    }
    let key = PodKey {
        namespace: pod.namespace.clone(),
        name: pod.name.clone(),
        uid: pod.uid.clone().unwrap_or_default(),
    };
    Some(Looked::Checked(
        id.to_string(),
        key,
        attachments,
        started.elapsed().as_secs_f64(),
    ))
}

/// Each of `steps` (the record's attached steps) looked at in the pod as CHECK looks at it.
fn in_pod(eyes: &Eyes<'_>, rec: &Record, steps: &[&Step]) -> Vec<Attachment> {
    let found = match crate::agent::leak::unreachable_netns(&rec.netns) {
        // Never a look into what may be another pod's namespace.
        Some(why) => Err(why),
        None => crate::health::examine(eyes.net, Path::new(&rec.netns), steps)
            .map_err(|e| format!("cannot read the pod's interfaces: {e}")),
    };
    steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let problem = match &found {
                Err(why) => Some((Reason::CheckFailed, why.clone())),
                Ok(found) => match found.get(i) {
                    None => Some((
                        Reason::CheckFailed,
                        "the pod's interfaces were not all read".to_string(),
                    )),
                    Some(Err(p)) => Some((p.reason(), p.to_string())),
                    Some(Ok(())) => None,
                },
            };
            Attachment {
                network: step.network.clone(),
                ifname: step.ifname.clone(),
                problem,
            }
        })
        .collect()
}

/// The delegate's own CHECK of each attachment found well in the pod; true when one failed.
fn delegates_fail(
    exec: &dyn Executor,
    rec: &Record,
    steps: &[&Step],
    attachments: &mut [Attachment],
) -> bool {
    let mut failed = false;
    for (a, step) in attachments.iter_mut().zip(steps) {
        if a.problem.is_some() {
            continue;
        }
        if let Err(f) = crate::health::delegate_check(exec, &rec.container_id, &rec.netns, step) {
            a.problem = Some((Reason::CheckFailed, f.source.to_string()));
            failed = true;
        }
    }
    failed
}

/// What became of a record since it was read, its lock let go meanwhile.
#[derive(Debug, PartialEq, Eq)]
enum Since {
    /// As it was: what was found stands.
    Unchanged,
    /// Held by an ADD, DEL or hot-plug now, or changed: checked again soon.
    Busy,
    /// Removed (a DEL finished), or no longer readable: not a record to check.
    Gone,
}

/// Whether `rec` is still its container's record as it was read: a delegate CHECK that failed
/// while a DEL or hot-plug changed the pod says nothing of the pod.
fn since(eyes: &Eyes<'_>, rec: &Record) -> Since {
    let held = match eyes.journal.try_lock(&rec.container_id) {
        Ok(Some(h)) => h,
        Ok(None) => return Since::Busy,
        Err(_) => return Since::Gone,
    };
    match crate::txn::load(&held) {
        Ok(Loaded::Record(now)) if now == *rec => Since::Unchanged,
        Ok(Loaded::Missing) => {
            let _ = held.remove();
            Since::Gone
        }
        Ok(Loaded::Record(_)) => Since::Busy,
        _ => Since::Gone,
    }
}

#[cfg(test)]
mod tests;
