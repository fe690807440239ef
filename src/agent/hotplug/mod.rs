//! Hot-plug in the node agent: level-triggered reconciliation of every pod of the node that
//! plexus attached (a complete journal record) with its current networks annotation. The pod
//! cache says when something changed (an annotation, a network-status); a resync every interval
//! looks at every pod again (a change missed, an ADD that finished after an edit, a status the
//! last pass could not write); a failure is retried with backoff. Each pass is
//! [`crate::engine::Engine::hotplug`] under the container's journal lock on a thread of its
//! own; the agent posts what changed as events. Pods without a record and hostNetwork pods get
//! an event when their annotation is edited, and nothing else.

mod cluster;
pub mod counts;
mod events;
pub mod pass;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::cache::{Caches, Key, SlimPod};
use crate::error::Error;
use crate::journal::Journal;
use crate::k8s::client::Api;
use crate::k8s::selection::NETWORKS_ANNOTATION;
use crate::resolve::ResolveError;
use cluster::AgentCluster;
use counts::Counts;
use events::{PodEvent, Posted};
use pass::{Found, Job, Ran};

/// Passes running at once (each on its own thread).
const PARALLEL: usize = 4;
/// The first retry after a failure; it doubles up to [`LAST_RETRY`].
const FIRST_RETRY: Duration = Duration::from_secs(2);
/// The longest wait between retries.
const LAST_RETRY: Duration = Duration::from_secs(300);

/// Hot-plug's settings and connections.
pub struct Hotplug {
    /// The installed conflist (plexus's config: journal, plugin directories), read every round.
    pub conflist: PathBuf,
    /// This node (the events' source).
    pub node: String,
    /// The caches.
    pub caches: Arc<Caches>,
    /// The agent's API connection (NADs not cached yet, network-status, events).
    pub api: Api,
    /// Metrics.
    pub counts: Counts,
    /// How often every pod is looked at again.
    pub resync: Duration,
}

/// What the agent remembers of one pod.
#[derive(Debug)]
struct PodState {
    uid: String,
    /// The annotations now, and since when.
    seen: BTreeMap<String, String>,
    seen_at: Instant,
    /// What the last round acted on: (annotations, network-status).
    attempted: Option<(BTreeMap<String, String>, Option<String>)>,
    /// A resync asked for a pass.
    resync: bool,
    /// When to try again after a failure, and the wait after that.
    retry_at: Option<Instant>,
    backoff: Duration,
    /// The network-status the cache held when this agent last wrote it.
    written_over: Option<Option<String>>,
    posted: Posted,
    running: bool,
}

impl PodState {
    fn new(p: &SlimPod, now: Instant) -> PodState {
        PodState {
            uid: p.uid.clone(),
            seen: p.annotations.clone(),
            seen_at: now,
            attempted: None,
            resync: true,
            retry_at: None,
            backoff: FIRST_RETRY,
            written_over: None,
            posted: Posted::default(),
            running: false,
        }
    }

    fn due(&self, p: &SlimPod, now: Instant) -> bool {
        !self.running
            && (self.resync
                || self.retry_at.is_some_and(|t| now >= t)
                || self
                    .attempted
                    .as_ref()
                    .is_none_or(|(a, st)| a != &p.annotations || st != &p.network_status))
    }

    /// The networks annotation the current (or last) pass acted on: what its events quote and
    /// what a warning is remembered under (`seen` may have moved on while it ran).
    fn value(&self) -> String {
        let acted_on = self.attempted.as_ref().map_or(&self.seen, |(a, _)| a);
        acted_on
            .get(NETWORKS_ANNOTATION)
            .cloned()
            .unwrap_or_default()
    }

    fn retry(&mut self, now: Instant) {
        self.retry_at = Some(now + self.backoff);
        self.backoff = (self.backoff * 2).min(LAST_RETRY);
    }

    fn settled(&mut self) {
        self.retry_at = None;
        self.backoff = FIRST_RETRY;
    }
}

/// Hot-plug as the agent runs it with settings `s` (nothing when they turn it off).
pub fn task(
    s: &super::Settings,
    caches: &Arc<Caches>,
    kube: &kube::Client,
    counts: Counts,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let h = s.hotplug_resync.map(|resync| Hotplug {
        conflist: s.conflist.clone(),
        node: s.node.clone(),
        caches: caches.clone(),
        api: Api::from_client(
            kube.clone(),
            crate::k8s::client::DEFAULT_REQUEST_TIMEOUT,
            crate::k8s::client::DEFAULT_RETRY_BUDGET,
        ),
        counts,
        resync,
    });
    async move {
        if let Some(h) = h {
            run(h).await;
        }
    }
}

/// A finished pass: the pod, and what the pass did (`None`: its thread died).
type Finished = (Key, Option<Ran>);

/// Runs hot-plug until the task is dropped.
pub async fn run(h: Hotplug) {
    while !h
        .caches
        .wait_until(Duration::from_secs(3600), |c| c.pod_state().synced)
        .await
    {}
    let mut changed = h.caches.subscribe();
    let runtime = Handle::current();
    let mut pods: HashMap<Key, PodState> = HashMap::new();
    let mut running: JoinSet<Finished> = JoinSet::new();
    let mut next_resync = Instant::now() + h.resync;
    loop {
        changed.borrow_and_update();
        let now = Instant::now();
        if now >= next_resync {
            next_resync = now + h.resync;
            pods.values_mut().for_each(|s| s.resync = true);
        }
        let due = refresh(&h.caches, &mut pods, now);
        let room = PARALLEL.saturating_sub(running.len());
        if !due.is_empty() && room > 0 {
            h.start(&runtime, &mut pods, due, room, &mut running).await;
        }
        let wake = pods
            .values()
            .filter_map(|s| s.retry_at)
            .fold(next_resync, Instant::min);
        tokio::select! {
            r = changed.changed() => if r.is_err() { return },
            Some(done) = running.join_next(), if !running.is_empty() => {
                if let Ok((key, ran)) = done {
                    h.finished(&mut pods, key, ran).await;
                }
            }
            () = tokio::time::sleep_until(wake) => {}
        }
    }
}

/// Brings the pod states in line with the cache (new pods, new incarnations, gone pods, edits);
/// the pods due for a round.
fn refresh(caches: &Caches, pods: &mut HashMap<Key, PodState>, now: Instant) -> Vec<Key> {
    let cached: HashMap<Key, SlimPod> = caches.pods().into_iter().collect();
    pods.retain(|k, s| s.running || cached.get(k).is_some_and(|p| p.uid == s.uid));
    let mut due = Vec::new();
    for (key, p) in &cached {
        let s = pods
            .entry(key.clone())
            .or_insert_with(|| PodState::new(p, now));
        if s.uid != p.uid && !s.running {
            *s = PodState::new(p, now);
        }
        if s.seen != p.annotations {
            s.seen = p.annotations.clone();
            s.seen_at = now;
        }
        if s.uid == p.uid && s.due(p, now) {
            due.push(key.clone());
        }
    }
    due.sort();
    due
}

impl Hotplug {
    /// Starts a round for up to `room` of the `due` pods: those with a complete record get a
    /// pass on a thread of their own; the others are answered here.
    async fn start(
        &self,
        runtime: &Handle,
        pods: &mut HashMap<Key, PodState>,
        due: Vec<Key>,
        room: usize,
        running: &mut JoinSet<Finished>,
    ) {
        let conflist = self.conflist.clone();
        let read = super::leak::blocking(move || {
            let cfg = super::plexus_config(&conflist)?;
            let journal = Journal::new(cfg.cni_dir.clone());
            let index = pass::index(&journal);
            Ok::<_, super::AgentError>((Arc::new(cfg), journal, index))
        })
        .await;
        let (cfg, journal, index) = match read {
            Some(Ok(r)) => r,
            other => {
                if let Some(Err(e)) = other {
                    tracing::warn!(error = %e, "hot-plug: plexus's config cannot be read; retrying");
                }
                let now = Instant::now();
                for key in due {
                    if let (Some(s), Some(p)) = (pods.get_mut(&key), self.caches.pod(&key)) {
                        s.resync = false;
                        s.attempted = Some((p.annotations, p.network_status));
                        s.retry(now);
                    }
                }
                return;
            }
        };
        let now = Instant::now();
        let mut started = 0;
        for key in due {
            let (Some(s), Some(p)) = (pods.get_mut(&key), self.caches.pod(&key)) else {
                continue;
            };
            if started == room {
                break;
            }
            s.resync = false;
            if s.seen != p.annotations {
                s.seen = p.annotations.clone();
                s.seen_at = now;
            }
            s.attempted = Some((p.annotations.clone(), p.network_status.clone()));
            if p.host_network {
                let why =
                    "the pod uses the host's network namespace; networks cannot be added to it";
                self.leave(&key, s, p.edits, why).await;
                continue;
            }
            let records = index.get(&key).map(Vec::as_slice).unwrap_or_default();
            let record = match pass::find(records, &p.uid) {
                Found::Record(r) => *r,
                Found::Busy => {
                    // Its ADD is running: the status it writes brings the pod back here.
                    s.retry(now);
                    continue;
                }
                Found::Nothing => {
                    let why = format!(
                        "plexus has no record of attaching this pod on node {} (attached \
                         before plexus was installed, or its sandbox is not up yet): it is \
                         left as it is; a sandbox started later gets the networks the \
                         annotation names",
                        self.node
                    );
                    self.leave(&key, s, p.edits, &why).await;
                    continue;
                }
            };
            if let Some(why) = super::leak::unreachable_netns(&record.netns) {
                // Never an ADD into what may be another pod's namespace.
                self.leave(&key, s, p.edits, &format!("{why}: it is left as it is"))
                    .await;
                continue;
            }
            s.running = true;
            started += 1;
            let job = Job {
                cfg: cfg.clone(),
                journal: journal.clone(),
                record,
                annotations: p.annotations.clone(),
                status: p.network_status.clone(),
                written_over: s.written_over.clone(),
                cluster: AgentCluster {
                    caches: self.caches.clone(),
                    api: self.api.clone(),
                    runtime: runtime.clone(),
                },
            };
            running.spawn(async move {
                let ran = super::leak::blocking(move || pass::run(job)).await;
                (key, ran)
            });
        }
    }

    /// What a pass did: events, metrics, and when to look again.
    async fn finished(&self, pods: &mut HashMap<Key, PodState>, key: Key, ran: Option<Ran>) {
        let Some(s) = pods.get_mut(&key) else {
            return;
        };
        s.running = false;
        let now = Instant::now();
        let Some(ran) = ran else {
            tracing::warn!(pod = %format!("{}/{}", key.0, key.1), "hot-plug: a pass died");
            s.retry(now);
            return;
        };
        self.counts.pass();
        let value = s.value();
        match ran.result {
            Ok(out) => {
                let mut evs: Vec<(PodEvent, String)> = Vec::new();
                for (net, ifname) in &out.removed {
                    evs.push((events::removed(net, ifname), String::new()));
                }
                for (net, ifname) in &out.added {
                    evs.push((events::added(net, ifname, &ran.entries), String::new()));
                }
                for ((net, _), why) in &out.refused {
                    evs.push((
                        events::rejected(&value, &format!("{net}: {why}")),
                        net.clone(),
                    ));
                }
                if let Some(e) = &out.failed {
                    let why = format!("{e}; what this change started was rolled back");
                    evs.push((events::rejected(&value, &why), String::new()));
                }
                for (net, ifname) in &out.needs_restart {
                    evs.push((events::not_applied(net, ifname), format!("{net}@{ifname}")));
                }
                if let Some(f) = out.stuck.first() {
                    evs.push((events::remove_failed(&f.to_string()), String::new()));
                }
                let c = &self.counts;
                c.change("added", out.added.len());
                c.change("removed", out.removed.len());
                c.change("rejected", out.refused.len());
                c.change("rolled-back", usize::from(out.failed.is_some()));
                c.change("remove-failed", out.stuck.len());
                c.change("status-failed", usize::from(out.status_failed.is_some()));
                if out.changed() {
                    let took = now.duration_since(s.seen_at);
                    c.took(took.as_secs_f64());
                    tracing::info!(pod = %format!("{}/{}", key.0, key.1), container_id = %ran.container_id,
                        added = ?out.added, removed = ?out.removed, ms = took.as_millis() as u64,
                        "hot-plug applied");
                    super::say(format_args!(
                        "hot-plug {}/{}: added {:?}, removed {:?}, {} ms after the change was seen",
                        key.0,
                        key.1,
                        out.added,
                        out.removed,
                        took.as_millis()
                    ));
                }
                if out.status_written {
                    s.written_over = s.attempted.as_ref().map(|(_, st)| st.clone());
                }
                if let Some(e) = &out.status_failed {
                    tracing::warn!(pod = %format!("{}/{}", key.0, key.1), error = %e,
                        "hot-plug: network-status not written; retrying (the change itself is journaled)");
                }
                if out.failed.is_some() || !out.stuck.is_empty() || out.status_failed.is_some() {
                    s.retry(now);
                } else {
                    s.settled();
                }
                for (ev, what) in evs {
                    // Counted once per change, as its warning is posted, not on every resync.
                    let not_applied = ev.reason == events::NOT_APPLIED;
                    if self.post(&key, s, ev, &what).await && not_applied {
                        self.counts.change("not-applied", 1);
                    }
                }
            }
            // Its record went (a DEL won the lock) or its netns is gone: nothing to do.
            Err(Error::UnknownContainer(_)) => s.settled(),
            Err(Error::Resolve(e)) if rejects(&e) => {
                s.retry(now);
                self.post(&key, s, events::rejected(&value, &e.to_string()), "")
                    .await;
            }
            Err(e) => {
                tracing::warn!(pod = %format!("{}/{}", key.0, key.1), error = %e, "hot-plug: pass failed; retrying");
                super::say(format_args!("hot-plug {}/{}: {e} (retrying)", key.0, key.1));
                s.retry(now);
            }
        }
    }

    /// A pod hot-plug cannot act on: once its annotation has been edited, an event says why.
    async fn leave(&self, key: &Key, s: &mut PodState, edits: u32, why: &str) {
        if edits > 0 {
            self.post(key, s, events::rejected(&s.value(), why), "")
                .await;
        }
    }

    /// Posts `ev` on the pod, unless it is a warning already posted for this value; false then.
    async fn post(&self, key: &Key, s: &mut PodState, ev: PodEvent, what: &str) -> bool {
        if !s.posted.first(&ev, &s.value(), what) {
            return false;
        }
        let obj = ev.to_object(key, &s.uid, &self.node);
        if let Err(e) = self.api.post_event(&key.0, &obj).await {
            tracing::warn!(error = %e, reason = ev.reason, "hot-plug: event not recorded");
        }
        true
    }
}

/// Whether `e` is the annotation's or a NAD's fault (an event says why), not the API's.
fn rejects(e: &ResolveError) -> bool {
    !matches!(
        e,
        ResolveError::Api(_) | ResolveError::NoApiAccess { .. } | ResolveError::PodNotFound(_)
    )
}
