//! The agent's watch caches: the pods of its node (field selector `spec.nodeName`) and every
//! NAD, fed by kube-runtime watchers (list, then watch from the list's revision; a dropped
//! watch resumes, `410 Gone` re-lists, errors back off), each keeping only what plexus reads:
//! a pod's uid, the annotations plexus reads, its network-status and `hostNetwork` (for
//! hot-plug), its domain-prefixed conditions (for health), a NAD's config and resource name. A cache is
//! synced once its first list is complete; a re-list replaces it whole when it completes.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::StreamExt;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde_json::{Value, json};
use tokio::sync::watch;

mod watched;
pub use watched::{PodCondition, WatchedNad, WatchedPod, WatchedPodSpec, WatchedPodStatus};
use watched::{slim_nad, slim_pod};

use crate::k8s::nad::RESOURCE_NAME_ANNOTATION;

/// A namespaced object's key: (namespace, name).
pub type Key = (String, String);

/// What the cache keeps of a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlimPod {
    /// Its UID.
    pub uid: String,
    /// The annotations plexus reads, and only those.
    pub annotations: BTreeMap<String, String>,
    /// `spec.hostNetwork` (hot-plug never acts on such a pod).
    pub host_network: bool,
    /// The network-status annotation (hot-plug compares it with the journal).
    pub network_status: Option<String>,
    /// Its custom (domain-prefixed) conditions: the health condition the agent wrote before
    /// a restart is not written again.
    pub conditions: Vec<PodCondition>,
    /// How many times the cache saw `annotations` change (an edit of a running pod).
    pub edits: u32,
}

/// What the cache keeps of a NAD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlimNad {
    /// `spec.config`.
    pub config: Option<String>,
    /// The `k8s.v1.cni.cncf.io/resourceName` annotation.
    pub resource_name: Option<String>,
}

impl SlimNad {
    /// The NAD as the API would return what plexus reads of it.
    pub fn to_object(&self, key: &Key) -> Value {
        let mut metadata = json!({"namespace": key.0, "name": key.1});
        if let Some(r) = &self.resource_name {
            metadata["annotations"] = json!({RESOURCE_NAME_ANNOTATION: r});
        }
        let mut nad = json!({"metadata": metadata});
        if let Some(c) = &self.config {
            nad["spec"] = json!({"config": c});
        }
        nad
    }
}

/// One cache: its objects, whether its first list completed, and a re-list in progress.
#[derive(Debug)]
struct Store<T> {
    objects: HashMap<Key, T>,
    synced: bool,
    relisting: Option<HashMap<Key, T>>,
}

impl<T> Default for Store<T> {
    fn default() -> Self {
        Store {
            objects: HashMap::new(),
            synced: false,
            relisting: None,
        }
    }
}

impl<T> Store<T> {
    /// Applies one watcher event (already reduced to a key and what is kept).
    fn apply(&mut self, change: Change<T>) {
        match change {
            Change::Init => self.relisting = Some(HashMap::new()),
            Change::InitApply(k, v) => {
                self.relisting.get_or_insert_with(HashMap::new).insert(k, v);
            }
            Change::InitDone => {
                self.objects = self.relisting.take().unwrap_or_default();
                self.synced = true;
            }
            Change::Apply(k, v) => {
                self.objects.insert(k, v);
            }
            Change::Delete(k) => {
                self.objects.remove(&k);
            }
        }
    }
}

/// A watcher event reduced to what a cache keeps.
enum Change<T> {
    Init,
    InitApply(Key, T),
    InitDone,
    Apply(Key, T),
    Delete(Key),
}

/// The pod and NAD caches, shared by the watchers (writers) and the socket (readers).
#[derive(Debug)]
pub struct Caches {
    pods: RwLock<Store<SlimPod>>,
    nads: RwLock<Store<SlimNad>>,
    /// Moves on every change: what a reader waiting for the caches to catch up waits on.
    changed: watch::Sender<u64>,
}

impl Default for Caches {
    fn default() -> Self {
        Caches {
            pods: RwLock::default(),
            nads: RwLock::default(),
            changed: watch::Sender::new(0),
        }
    }
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A cache's state, for `/readyz` and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheState {
    /// The first list completed.
    pub synced: bool,
    /// Objects held.
    pub objects: usize,
}

impl Caches {
    /// Both caches synced.
    pub fn synced(&self) -> bool {
        read(&self.pods).synced && read(&self.nads).synced
    }

    /// The pod cache's state.
    pub fn pod_state(&self) -> CacheState {
        let s = read(&self.pods);
        CacheState {
            synced: s.synced,
            objects: s.objects.len(),
        }
    }

    /// The NAD cache's state.
    pub fn nad_state(&self) -> CacheState {
        let s = read(&self.nads);
        CacheState {
            synced: s.synced,
            objects: s.objects.len(),
        }
    }

    /// Every cached pod.
    pub fn pods(&self) -> Vec<(Key, SlimPod)> {
        read(&self.pods)
            .objects
            .iter()
            .map(|(k, p)| (k.clone(), p.clone()))
            .collect()
    }

    /// A receiver that sees every change of either cache (its value moves).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// The pod at `key`, if cached.
    pub fn pod(&self, key: &Key) -> Option<SlimPod> {
        self.pod_with(key, SlimPod::clone)
    }

    /// What `f` takes from the pod at `key`, if cached, read in place (nothing else of it is
    /// copied).
    pub fn pod_with<R>(&self, key: &Key, f: impl FnOnce(&SlimPod) -> R) -> Option<R> {
        read(&self.pods).objects.get(key).map(f)
    }

    /// Whether the pod cache has synced and holds no pod at `key` with the UID `uid` (any pod
    /// there when `uid` is `None`): the first guard of the leak collector.
    pub fn pod_absent(&self, key: &Key, uid: Option<&str>) -> bool {
        let s = read(&self.pods);
        s.synced
            && match s.objects.get(key) {
                None => true,
                Some(p) => uid.is_some_and(|u| u != p.uid),
            }
    }

    /// The NADs at `keys`, each as the API returns what plexus reads; `None` when one is not
    /// cached.
    pub fn nads(&self, keys: &[Key]) -> Option<Vec<Value>> {
        self.nads_each(keys).into_iter().collect()
    }

    /// The NAD at each of `keys` (`None` where it is not cached), read under one lock.
    pub fn nads_each(&self, keys: &[Key]) -> Vec<Option<Value>> {
        let s = read(&self.nads);
        keys.iter()
            .map(|k| s.objects.get(k).map(|n| n.to_object(k)))
            .collect()
    }

    /// Looks with `look` until it answers `Ok` or `wait` passes (then its last answer): each
    /// look builds its answer, so the caller never reads the cache a second time.
    ///
    /// # Errors
    /// `look`'s `Err` when `wait` passed without an `Ok`.
    pub async fn wait_for<T, E>(
        &self,
        wait: Duration,
        look: impl Fn(&Caches) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut rx = self.changed.subscribe();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            rx.borrow_and_update();
            let answer = look(self);
            if answer.is_ok() {
                return answer;
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                _ => return look(self),
            }
        }
    }

    /// Waits until `ready` holds or `wait` passes; whether it holds.
    pub async fn wait_until(&self, wait: Duration, ready: impl Fn(&Caches) -> bool) -> bool {
        self.wait_for(wait, |c| if ready(c) { Ok(()) } else { Err(()) })
            .await
            .is_ok()
    }

    fn touched(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn apply_pod(&self, change: Change<SlimPod>) {
        let mut pods = write(&self.pods);
        let change = match change {
            Change::Apply(k, mut v) => {
                if let Some(old) = pods.objects.get(&k).filter(|o| o.uid == v.uid) {
                    v.edits = old.edits + u32::from(old.annotations != v.annotations);
                }
                Change::Apply(k, v)
            }
            other => other,
        };
        pods.apply(change);
        drop(pods);
        self.touched();
    }

    fn apply_nad(&self, change: Change<SlimNad>) {
        write(&self.nads).apply(change);
        self.touched();
    }
}

fn change<K, T>(e: Event<K>, slim: impl Fn(K) -> (Key, T)) -> Change<T> {
    match e {
        Event::Init => Change::Init,
        Event::InitApply(o) => {
            let (k, v) = slim(o);
            Change::InitApply(k, v)
        }
        Event::InitDone => Change::InitDone,
        Event::Apply(o) => {
            let (k, v) = slim(o);
            Change::Apply(k, v)
        }
        Event::Delete(o) => Change::Delete(slim(o).0),
    }
}

/// Called on every watcher error (the watcher retries by itself, with backoff).
pub type OnError = Arc<dyn Fn(&'static str, &watcher::Error) + Send + Sync>;

/// Keeps the pod cache: the pods whose `spec.nodeName` is `node`, until the task is dropped.
pub async fn watch_pods(
    client: kube::Client,
    node: String,
    caches: Arc<Caches>,
    on_error: OnError,
) {
    let api: kube::Api<WatchedPod> = kube::Api::all(client);
    let config = watcher::Config::default().fields(&format!("spec.nodeName={node}"));
    let mut events = watcher::watcher(api, config).default_backoff().boxed();
    while let Some(e) = events.next().await {
        match e {
            Ok(e) => caches.apply_pod(change(e, slim_pod)),
            Err(e) => on_error("pods", &e),
        }
    }
}

/// Keeps the NAD cache: every NAD of the cluster, until the task is dropped.
pub async fn watch_nads(client: kube::Client, caches: Arc<Caches>, on_error: OnError) {
    let api: kube::Api<WatchedNad> = kube::Api::all(client);
    let mut events = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    while let Some(e) = events.next().await {
        match e {
            Ok(e) => caches.apply_nad(change(e, slim_nad)),
            Err(e) => on_error("network-attachment-definitions", &e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s::selection::{DEFAULT_NETWORK_ANNOTATION, NETWORKS_ANNOTATION};

    fn pod(name: &str, uid: &str) -> (Key, SlimPod) {
        (
            ("ns".into(), name.into()),
            SlimPod {
                uid: uid.into(),
                annotations: BTreeMap::new(),
                host_network: false,
                network_status: None,
                conditions: Vec::new(),
                edits: 0,
            },
        )
    }

    #[test]
    fn a_relist_replaces_the_cache_only_when_complete() {
        let c = Caches::default();
        let a = ("ns".to_string(), "a".to_string());
        assert!(!c.pod_absent(&a, None), "not synced: never absent");
        c.apply_pod(Change::Init);
        let (k, v) = pod("a", "u1");
        c.apply_pod(Change::InitApply(k, v));
        assert!(c.pod(&a).is_none() && !c.pod_state().synced);
        c.apply_pod(Change::InitDone);
        assert_eq!(c.pod(&a).map(|p| p.uid), Some("u1".into()));
        assert!(!c.pod_absent(&a, Some("u1")));
        assert!(c.pod_absent(&a, Some("u2")), "another incarnation");
        // A re-list (after 410 Gone) without `a`: `a` stays until the list is complete.
        c.apply_pod(Change::Init);
        let (k, v) = pod("b", "u3");
        c.apply_pod(Change::InitApply(k, v));
        assert!(c.pod(&a).is_some());
        c.apply_pod(Change::InitDone);
        assert!(c.pod(&a).is_none() && c.pod_absent(&a, None));
        assert_eq!(c.pod_state().objects, 1);
    }

    #[test]
    fn edits_of_a_cached_pod_are_counted() {
        let c = Caches::default();
        let (k, mut v) = pod("a", "u1");
        c.apply_pod(Change::Apply(k.clone(), v.clone()));
        v.network_status = Some("[]".into());
        c.apply_pod(Change::Apply(k.clone(), v.clone()));
        assert_eq!(c.pod(&k).map(|p| p.edits), Some(0), "status is not an edit");
        v.annotations.insert(NETWORKS_ANNOTATION.into(), "x".into());
        c.apply_pod(Change::Apply(k.clone(), v.clone()));
        assert_eq!(c.pod(&k).map(|p| p.edits), Some(1));
        let (_, other) = pod("a", "u2");
        c.apply_pod(Change::Apply(k.clone(), other));
        assert_eq!(c.pod(&k).map(|p| p.edits), Some(0), "a new incarnation");
    }

    #[test]
    fn only_what_plexus_reads_is_kept() {
        let p: WatchedPod = serde_json::from_value(json!({"metadata":{"name":"p","namespace":"ns",
            "uid":"u","annotations":{NETWORKS_ANNOTATION:"a","other":"x",
            DEFAULT_NETWORK_ANNOTATION:"d"},"labels":{"l":"1"}},
            "spec":{"nodeName":"n","containers":[{"name":"c"}]}}))
        .unwrap();
        let (k, p) = slim_pod(p);
        assert_eq!(k, ("ns".into(), "p".into()));
        assert_eq!(p.annotations.len(), 2, "{p:?}");
        assert!(!p.host_network && p.network_status.is_none(), "{p:?}");
        let h: WatchedPod = serde_json::from_value(json!({"metadata":{"name":"h","namespace":"ns",
            "annotations":{crate::k8s::status::STATUS_ANNOTATION:"[]"}},
            "spec":{"hostNetwork":true}}))
        .unwrap();
        let (_, h) = slim_pod(h);
        assert!(h.host_network && h.annotations.is_empty(), "{h:?}");
        assert_eq!(h.network_status.as_deref(), Some("[]"));
        let n: WatchedNad = serde_json::from_value(json!({"metadata":{"name":"n","namespace":"ns",
            "annotations":{RESOURCE_NAME_ANNOTATION:"r","other":"x"}},
            "spec":{"config":"{}"}}))
        .unwrap();
        let (k, n) = slim_nad(n);
        assert_eq!(
            n.to_object(&k),
            json!({"metadata":{"namespace":"ns","name":"n",
                "annotations":{RESOURCE_NAME_ANNOTATION:"r"}},"spec":{"config":"{}"}})
        );
        let bare: WatchedNad =
            serde_json::from_value(json!({"metadata":{"name":"m","namespace":"ns"}})).unwrap();
        let (k, n) = slim_nad(bare);
        assert_eq!(
            n.to_object(&k),
            json!({"metadata":{"namespace":"ns","name":"m"}})
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_reader_waits_for_the_cache_to_catch_up() {
        let c = Arc::new(Caches::default());
        let a = ("ns".to_string(), "a".to_string());
        assert!(
            c.wait_for(Duration::ZERO, |c| c.pod(&a).ok_or(()))
                .await
                .is_err(),
            "not there"
        );
        let writer = c.clone();
        let task = tokio::spawn(async move {
            writer.apply_pod(Change::Init);
            writer.apply_pod(Change::InitDone);
            let (k, v) = pod("a", "u");
            writer.apply_pod(Change::Apply(k, v));
        });
        assert!(
            c.wait_for(Duration::from_secs(30), |c| c.pod(&a).ok_or(()))
                .await
                .is_ok()
        );
        task.await.unwrap();
    }
}
