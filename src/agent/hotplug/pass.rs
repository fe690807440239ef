//! One hot-plug pass for one pod, on a thread of its own: the pod's newest complete journal
//! record (found from snapshots read without locks; the engine re-reads it under the lock), its
//! network-status compared with what the record says (a status the last pass could not write,
//! or a crash between the journal and the PATCH, is written again; never an ADD again), and
//! the engine's pass.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use super::cluster::AgentCluster;
use crate::agent::cache::Key;
use crate::config::Config;
use crate::engine::Engine;
use crate::engine::hotplug::{Outcome, request_for, status_of};
use crate::error::Error;
use crate::journal::Journal;
use crate::k8s::status::NetworkStatus;
use crate::plugin::Product;
use crate::txn::Record;
use crate::txn::observe::NoObserver;

/// Every readable record of the journal that names a pod, by pod.
pub fn index(journal: &Journal) -> HashMap<Key, Vec<Record>> {
    let mut out: HashMap<Key, Vec<Record>> = HashMap::new();
    for id in journal.list().unwrap_or_default() {
        let Some(rec) = peek(journal, &id) else {
            continue;
        };
        if let Some(p) = &rec.pod {
            out.entry((p.namespace.clone(), p.name.clone()))
                .or_default()
                .push(rec);
        }
    }
    out
}

fn peek(journal: &Journal, id: &str) -> Option<Record> {
    journal.peek(id).and_then(|line| Record::decode(&line).ok())
}

/// What the journal holds for one pod.
#[derive(Debug)]
pub enum Found {
    /// Nothing: plexus did not attach it (or its sandbox is not up yet).
    Nothing,
    /// Only a record whose ADD (or DEL) has not finished.
    Busy,
    /// Its newest complete record.
    Record(Box<Record>),
}

/// The newest complete record of the pod with UID `uid` among `records` (a record without a
/// UID is taken for any).
pub fn find(records: &[Record], uid: &str) -> Found {
    let mine: Vec<&Record> = records
        .iter()
        .filter(|r| {
            r.pod
                .as_ref()
                .and_then(|p| p.uid.as_deref())
                .is_none_or(|u| u == uid)
        })
        .collect();
    match mine.iter().filter(|r| r.complete).max_by_key(|r| r.created) {
        Some(r) => Found::Record(Box::new((*r).clone())),
        None if mine.is_empty() => Found::Nothing,
        None => Found::Busy,
    }
}

/// One pass to run.
pub struct Job {
    /// plexus's config as installed.
    pub cfg: Arc<Config>,
    /// The journal.
    pub journal: Journal,
    /// The pod's record, as last seen.
    pub record: Record,
    /// The pod's annotations (what it asks for now).
    pub annotations: BTreeMap<String, String>,
    /// The pod's network-status as the cache holds it.
    pub status: Option<String>,
    /// The network-status the cache held when this agent last wrote it: not written again
    /// while the cache still holds that (it has not caught up, or the write did not take).
    pub written_over: Option<Option<String>>,
    /// The cluster as the agent reaches it.
    pub cluster: AgentCluster,
}

/// What a pass did.
#[derive(Debug)]
pub struct Ran {
    /// The container.
    pub container_id: String,
    /// The engine's outcome, or why it did nothing.
    pub result: Result<Outcome, Error>,
    /// The network-status entries of the record after a pass that added interfaces (for their
    /// events' addresses); empty otherwise.
    pub entries: Vec<NetworkStatus>,
}

/// `(name, interface)` of each entry.
fn shape(entries: &[NetworkStatus]) -> Vec<(String, Option<String>)> {
    entries
        .iter()
        .map(|e| (e.name.clone(), e.interface.clone()))
        .collect()
}

/// Whether `status` (the annotation) lists what `rec` says, entry by entry.
pub fn status_matches(rec: &Record, status: Option<&str>) -> bool {
    let Some(text) = status else {
        return false;
    };
    match serde_json::from_str::<Vec<NetworkStatus>>(text) {
        Ok(have) => shape(&have) == shape(&status_of(rec)),
        Err(_) => false,
    }
}

/// Runs the pass.
pub fn run(job: Job) -> Ran {
    let container_id = job.record.container_id.clone();
    let forced = !status_matches(&job.record, job.status.as_deref())
        && job.written_over.as_ref() != Some(&job.status);
    let result = match request_for(&job.record) {
        Ok(req) => {
            let path = [PathBuf::from(&job.cfg.bin_dir)];
            let product = Product::new(&job.cfg, &path);
            let engine = Engine::new(&job.cfg, &req, product.seams(&job.cluster, &NoObserver));
            engine.hotplug(&job.annotations, forced)
        }
        Err(e) => Err(e.into()),
    };
    let added = result.as_ref().is_ok_and(|o| !o.added.is_empty());
    let entries = added
        .then(|| peek(&job.journal, &container_id))
        .flatten()
        .map(|r| status_of(&r))
        .unwrap_or_default();
    Ran {
        container_id,
        result,
        entries,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::PodId;

    fn rec(id: &str, uid: Option<&str>, complete: bool, created: u64) -> Record {
        let mut r = Record::new(
            id,
            "/run/netns/x",
            "eth0",
            "",
            Some(PodId {
                namespace: "ns".into(),
                name: "p".into(),
                uid: uid.map(str::to_string),
            }),
            created,
        );
        r.complete = complete;
        r
    }

    fn found(f: Found) -> String {
        match f {
            Found::Nothing => "nothing".into(),
            Found::Busy => "busy".into(),
            Found::Record(r) => r.container_id,
        }
    }

    #[test]
    fn find_table() {
        let rows: Vec<(&str, Vec<Record>, &str)> = vec![
            ("none", vec![], "nothing"),
            (
                "another incarnation's",
                vec![rec("a", Some("u0"), true, 1)],
                "nothing",
            ),
            (
                "an ADD running",
                vec![rec("a", Some("u1"), false, 1)],
                "busy",
            ),
            (
                "the newest complete one",
                vec![
                    rec("old", Some("u1"), true, 1),
                    rec("new", Some("u1"), true, 2),
                    rec("adding", Some("u1"), false, 3),
                ],
                "new",
            ),
            ("no UID recorded", vec![rec("a", None, true, 1)], "a"),
        ];
        for (name, records, want) in rows {
            assert_eq!(found(find(&records, "u1")), want, "{name}");
        }
    }

    #[test]
    fn status_is_compared_entry_by_entry() {
        let r = rec("a", Some("u1"), true, 1);
        // No steps with a result: an empty list matches, anything else does not.
        assert!(status_matches(&r, Some("[]")));
        assert!(!status_matches(&r, None), "no annotation");
        assert!(!status_matches(&r, Some("not json")));
        assert!(!status_matches(
            &r,
            Some(r#"[{"name":"ns/a","interface":"net1"}]"#)
        ));
    }
}
