//! The leak collector: containerd never calls CNI GC, and a node that crashed or a runtime that
//! lost its state leaves attachments nobody will DEL. For each journal record, it DELs the
//! record exactly as the runtime would (through the engine, on a thread of its own) only when
//! every guard says the pod is gone: the pod cache is synced and does not hold it, a direct GET
//! confirms it (404, or another UID), its netns no longer exists, and the record is older than
//! the grace period. Any doubt means no action.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::cache::Caches;
use super::client::Reporter;
use super::metrics::Metrics;
use crate::cni::env::{Command, Request};
use crate::config::Config;
use crate::engine::Engine;
use crate::journal::Journal;
use crate::k8s::client::Api;
use crate::netns::Probe;
use crate::plugin::Product;
use crate::txn::{Loaded, Record};

/// Why a record was kept (the `reason` label of `plexus_leak_collector_kept_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kept {
    /// The pod cache has not synced.
    NotSynced,
    /// The record is younger than the grace period (or its age is unknown).
    TooYoung,
    /// The record names no pod (not a Kubernetes sandbox): nothing can confirm it is gone.
    NoPod,
    /// The pod cache holds the pod.
    InCache,
    /// The netns still exists, or cannot be judged from here.
    NetnsExists,
    /// The direct GET found the pod.
    PodExists,
    /// The direct GET failed.
    ApiError,
    /// The record could not be read (it is locked by a running call, corrupt, or gone).
    Unreadable,
}

impl Kept {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Kept::NotSynced => "not-synced",
            Kept::TooYoung => "too-young",
            Kept::NoPod => "no-pod",
            Kept::InCache => "in-cache",
            Kept::NetnsExists => "netns-exists",
            Kept::PodExists => "pod-exists",
            Kept::ApiError => "api-error",
            Kept::Unreadable => "unreadable",
        }
    }
}

/// What one pass did with one record.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// Left alone.
    Kept(Kept),
    /// DELeted; the record is gone.
    Released,
    /// DELeted, but some delegate's DEL failed (the record keeps what is left).
    ReleaseFailed(String),
}

/// The leak collector of one node.
pub struct Collector {
    /// The installed conflist, whose plexus plugin's config (journal, plugin directories...)
    /// DEL runs with; read at every pass.
    pub conflist: PathBuf,
    /// The node, for the event.
    pub node: String,
    /// How old a record must be.
    pub grace: Duration,
    /// The pod cache.
    pub caches: Arc<Caches>,
    /// The direct GET and the event.
    pub api: Api,
    /// Counts.
    pub metrics: Arc<Metrics>,
}

impl Collector {
    /// One pass over the journal: each record's outcome, by container id.
    ///
    /// # Errors
    /// The installed conflist cannot be read as plexus's config (nothing is done).
    pub async fn pass(&self) -> Result<Vec<(String, Outcome)>, super::AgentError> {
        let cfg = Arc::new(super::plexus_config(&self.conflist)?);
        let journal = Journal::new(cfg.cni_dir.clone());
        let records = blocking(move || read_all(&journal))
            .await
            .unwrap_or_default();
        let mut out = Vec::new();
        for (id, rec) in records {
            let outcome = match rec {
                None => Outcome::Kept(Kept::Unreadable),
                Some(rec) => match self.judge(&cfg, &rec).await {
                    Some(kept) => Outcome::Kept(kept),
                    None => self.release(&cfg, rec).await,
                },
            };
            match &outcome {
                Outcome::Kept(k) => self.metrics.leak_kept(k.as_str()),
                Outcome::Released => self.metrics.leak_action("released"),
                Outcome::ReleaseFailed(_) => self.metrics.leak_action("release-failed"),
            }
            out.push((id, outcome));
        }
        Ok(out)
    }

    /// `None` when every guard says the record's pod is gone; else the first guard that keeps
    /// it.
    async fn judge(&self, cfg: &Config, rec: &Record) -> Option<Kept> {
        if !self.caches.pod_state().synced {
            return Some(Kept::NotSynced);
        }
        let journal_file = Journal::new(cfg.cni_dir.clone()).file_of(&rec.container_id);
        if !old_enough(rec.created, &journal_file, self.grace) {
            return Some(Kept::TooYoung);
        }
        let Some(pod) = &rec.pod else {
            return Some(Kept::NoPod);
        };
        let key = (pod.namespace.clone(), pod.name.clone());
        if !self.caches.pod_absent(&key, pod.uid.as_deref()) {
            return Some(Kept::InCache);
        }
        if !netns_gone(&rec.netns) {
            return Some(Kept::NetnsExists);
        }
        match self.api.get_pod(&pod.namespace, &pod.name).await {
            Ok(None) => None,
            Ok(Some(found)) => {
                let uid = found.metadata.uid.unwrap_or_default();
                match &pod.uid {
                    Some(want) if !uid.is_empty() && *want != uid => None,
                    _ => Some(Kept::PodExists),
                }
            }
            Err(e) => {
                tracing::warn!(pod = %format!("{}/{}", pod.namespace, pod.name), error = %e,
                    "leak collector: cannot confirm the pod is gone; keeping its record");
                Some(Kept::ApiError)
            }
        }
    }

    /// DELs the record as the runtime would, on a thread of its own (delegates and link
    /// operations block), and says so on the Node.
    async fn release(&self, cfg: &Arc<Config>, rec: Record) -> Outcome {
        let cfg = cfg.clone();
        let id = rec.container_id.clone();
        let interfaces: Vec<String> = rec.steps.iter().map(|s| s.ifname.clone()).collect();
        let pod = rec
            .pod
            .as_ref()
            .map(|p| format!("{}/{}", p.namespace, p.name))
            .unwrap_or_default();
        let reporter = Arc::new(Reporter::default());
        let observer = reporter.clone();
        let started = Instant::now();
        let result = blocking(move || del(&cfg, &rec, &observer)).await;
        let outcome = match result {
            Some(Ok(())) => Outcome::Released,
            Some(Err(e)) => Outcome::ReleaseFailed(e),
            None => Outcome::ReleaseFailed("the DEL thread died".into()),
        };
        let code = match &outcome {
            Outcome::Released => None,
            _ => Some(crate::cni::error::DELEGATE_FAILED),
        };
        self.metrics
            .report(&reporter.report(Command::Del, code, None, started.elapsed()));
        match &outcome {
            Outcome::Released => {
                tracing::info!(container_id = %id, %pod, "leak collector: released a leaked record");
                let ev = crate::k8s::event::leak_released(&self.node, &id, &pod, &interfaces);
                if let Err(e) = self.api.post_event("default", &ev).await {
                    tracing::warn!(error = %e, "leak collector: event not recorded");
                }
            }
            Outcome::ReleaseFailed(e) => {
                tracing::warn!(container_id = %id, %pod, error = %e, "leak collector: DEL failed; the record keeps what is left");
            }
            Outcome::Kept(_) => {}
        }
        outcome
    }
}

/// Runs `f` on a new thread (never a tokio worker: delegates run and namespaces are entered
/// there) and waits for it without blocking the runtime; `None` if it panicked.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("plexus-leak".into())
        .spawn(move || {
            let _ = tx.send(f());
        });
    if spawned.is_err() {
        return None;
    }
    rx.await.ok()
}

/// Every record, read under its lock; `None` for one that cannot be read.
fn read_all(journal: &Journal) -> Vec<(String, Option<Record>)> {
    let Ok(ids) = journal.list() else {
        return Vec::new();
    };
    ids.into_iter()
        .map(|id| {
            let rec = journal
                .lock(&id)
                .ok()
                .and_then(|held| crate::txn::load(&held).ok())
                .and_then(|l| match l {
                    Loaded::Record(r) => Some(r),
                    _ => None,
                });
            (id, rec)
        })
        .collect()
}

/// The record is older than `grace`: by its `created` time, or (records from plexus 0.1.0
/// have none) by its file's modification time. Unknown age is not old enough.
fn old_enough(created: u64, file: &Path, grace: Duration) -> bool {
    let now = SystemTime::now();
    let born = match created {
        0 => match std::fs::metadata(file).and_then(|m| m.modified()) {
            Ok(t) => t,
            Err(_) => return false,
        },
        s => UNIX_EPOCH + Duration::from_secs(s),
    };
    now.duration_since(born).is_ok_and(|age| age >= grace)
}

/// The netns is gone: its path no longer exists in a directory the agent sees. A path the
/// agent cannot judge ([`unreachable_netns`]) is never gone.
fn netns_gone(netns: &str) -> bool {
    unreachable_netns(netns).is_none() && crate::netns::probe(Path::new(netns)) == Probe::Missing
}

/// Why the agent cannot look into (or judge) the pod network namespace at `netns`, when it
/// cannot: none named; a path under `/proc` names a process's namespace, and the agent's
/// container has its own PIDs (the number may name another process there); a path whose
/// directory is not mounted into the agent's container. Health and hot-plug never enter such
/// a path; the leak collector never judges it gone.
pub(crate) fn unreachable_netns(netns: &str) -> Option<String> {
    if netns.is_empty() {
        return Some("its record names no network namespace".into());
    }
    if netns.starts_with("/proc/") {
        return Some(format!(
            "its network namespace {netns} is a process's, which the agent (in a PID namespace \
             of its own) cannot tell from another process's"
        ));
    }
    let seen = Path::new(netns).parent().is_some_and(Path::is_dir);
    (!seen).then(|| {
        format!("the directory of its network namespace {netns} is not mounted into the agent")
    })
}

/// DEL of `rec` as the runtime would make it, through the engine.
fn del(cfg: &Config, rec: &Record, observer: &Reporter) -> Result<(), String> {
    let path = cfg.bin_dir.to_string_lossy().into_owned();
    let env = |k: &str| -> Option<String> {
        Some(match k {
            "CNI_COMMAND" => "DEL".into(),
            "CNI_CONTAINERID" => rec.container_id.clone(),
            "CNI_NETNS" => rec.netns.clone(),
            "CNI_IFNAME" => rec.ifname.clone(),
            "CNI_ARGS" => rec.cni_args.clone(),
            "CNI_PATH" => path.clone(),
            _ => return None,
        })
    };
    let req = Request::from_env(env).map_err(|e| e.to_string())?;
    let product = Product::new(cfg, &[PathBuf::from(&path)]);
    Engine::new(cfg, &req, product.seams(&product.api, observer))
        .del()
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_table() {
        let grace = Duration::from_secs(600);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let none = Path::new("/nonexistent/plexus/x.json");
        let rows = [
            ("old", now - 601, true),
            ("exactly the grace", now - 600, true),
            ("young", now - 10, false),
            ("future", now + 100, false),
            ("unknown, no file", 0, false),
        ];
        for (name, created, want) in rows {
            assert_eq!(old_enough(created, none, grace), want, "{name}");
        }
    }

    #[test]
    fn netns_table() {
        let gone = std::env::temp_dir().join(format!("plexus-no-netns-{}", std::process::id()));
        let gone = gone.to_string_lossy();
        let rows = [
            ("empty", "", false),
            ("a process's", "/proc/1/ns/net", false),
            ("this process's (exists)", "/proc/self/ns/net", false),
            ("gone from a directory it sees", &*gone, true),
            (
                "in a directory it does not see",
                "/nonexistent/plexus/netns",
                false,
            ),
            ("exists, not a netns", "/etc/hostname", false),
        ];
        for (name, path, want) in rows {
            assert_eq!(netns_gone(path), want, "{name}");
        }
        // What the agent may enter: only paths in a directory it sees, never a process's.
        let reachable = [
            ("empty", "", false),
            ("a process's", "/proc/1/ns/net", false),
            ("gone from a directory it sees", &*gone, true),
            (
                "in a directory it does not see",
                "/nonexistent/plexus/netns",
                false,
            ),
            (
                "a named netns",
                "/run/netns/cni-1234",
                Path::new("/run/netns").is_dir(),
            ),
        ];
        for (name, path, want) in reachable {
            assert_eq!(unreachable_netns(path).is_none(), want, "{name}");
        }
    }
}
