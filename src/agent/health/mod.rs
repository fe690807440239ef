//! Attachment health: every interval (jittered) the agent checks every attachment of every pod
//! of its node with CHECK's own code ([`look`]), and says what it found where Kubernetes looks:
//! a pod condition written by a strategic merge PATCH of `pods/status` once when a pod is first
//! checked and then only when it changes ([`condition`]), an event on each attachment's
//! transition, and metrics. A failed PATCH is retried the next round; nothing stops the rounds.

pub mod condition;
pub mod look;
pub mod metrics;

use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasher, RandomState};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use self::condition::Written;
use self::look::{Eyes, Looked, PodKey};
use super::cache::Caches;
use super::metrics::{InterfaceLabels, Metrics};
use crate::journal::Journal;
use crate::k8s::client::Api;
use crate::link::Kernel;
use crate::plugin::Product;
use crate::txn::observe::NoObserver;

/// How soon a record that appeared between rounds is checked.
const NEW_RECORDS: Duration = Duration::from_secs(1);

/// How long a round's PATCH may take, retries included (the next round retries anyway).
const PATCH_BUDGET: Duration = Duration::from_secs(5);

/// The health rounds' flags.
#[derive(Debug, Clone, clap::Args)]
pub struct HealthArgs {
    /// How often every attachment of every pod on the node is checked (each wait is jittered
    /// by up to a tenth; a new pod is checked as soon as its ADD is done); 0 turns the health
    /// rounds off.
    #[arg(long, value_name = "N", default_value_t = 30)]
    pub health_interval_seconds: u64,
    /// The pod condition type the health rounds write (list it in a pod's
    /// `spec.readinessGates` to make the pod NotReady while a network is broken).
    #[arg(long, value_name = "TYPE", default_value = condition::DEFAULT_TYPE)]
    pub health_condition_type: String,
    /// Also run each delegate's own CHECK (cniVersion 0.4.0 or later) with its cached result.
    #[arg(long)]
    pub health_delegate_check: bool,
    /// How many pods are checked at once.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub health_concurrency: u64,
}

/// The health rounds of one node.
pub struct Health {
    /// The flags.
    pub args: HealthArgs,
    /// The installed conflist (its journal, plugin directories), read every round.
    pub conflist: PathBuf,
    /// The node, for events.
    pub node: String,
    /// The pods of this node.
    pub caches: Arc<Caches>,
    /// PATCHes and events.
    pub api: Api,
    /// Counts.
    pub metrics: Arc<Metrics>,
}

/// What the rounds remember of a pod.
#[derive(Debug, Default)]
struct Known {
    /// What was last written (`None`: nothing yet, or the last PATCH failed before the first).
    written: Option<Written>,
    /// Its interfaces' gauge series.
    series: Vec<InterfaceLabels>,
}

/// What one round did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Round {
    /// The records looked at (checked, or not to be checked): not busy.
    settled: Vec<String>,
    /// PATCHes that failed (retried next round).
    failed: usize,
}

impl Health {
    /// The health rounds of the agent set up by `s`.
    pub fn new(
        s: &super::Settings,
        caches: &Arc<Caches>,
        kube: &kube::Client,
        metrics: &Arc<Metrics>,
    ) -> Health {
        Health {
            args: s.health.clone(),
            conflist: s.conflist.clone(),
            node: s.node.clone(),
            caches: caches.clone(),
            api: Api::from_client(kube.clone(), PATCH_BUDGET, PATCH_BUDGET),
            metrics: metrics.clone(),
        }
    }

    /// Runs rounds forever (none with an interval of 0): the first once the pod cache has
    /// synced (or after one interval), then one every interval, jittered. Between rounds, a
    /// record that appeared since is checked within a second or so (once its ADD is done), so
    /// a pod gated on the condition does not wait a whole interval to become Ready.
    pub async fn run(self) {
        if self.args.health_interval_seconds == 0 {
            return;
        }
        let interval = Duration::from_secs(self.args.health_interval_seconds);
        let tick = NEW_RECORDS.min(interval);
        self.caches
            .wait_until(interval, |c| c.pod_state().synced)
            .await;
        let mut known = HashMap::new();
        let mut settled = BTreeSet::new();
        let mut next_round = tokio::time::Instant::now();
        loop {
            let ids = self
                .journal()
                .and_then(|j| j.list().ok())
                .unwrap_or_default();
            // `Some(None)`: a round over every record; `Some(Some(ids))`: only new ones.
            let todo = if tokio::time::Instant::now() >= next_round {
                next_round = tokio::time::Instant::now() + jittered(interval);
                settled.clear();
                Some(None)
            } else {
                settled.retain(|id| ids.contains(id));
                let new: BTreeSet<String> =
                    ids.into_iter().filter(|id| !settled.contains(id)).collect();
                (!new.is_empty()).then_some(Some(new))
            };
            if let Some(only) = todo {
                let r = self.round(&mut known, only.as_ref()).await;
                settled.extend(r.settled);
                if r.failed > 0 {
                    super::say(format_args!(
                        "health: {} condition PATCH(es) failed; retrying next round",
                        r.failed
                    ));
                }
            }
            tokio::time::sleep(tick).await;
        }
    }

    /// The journal the installed conflist names.
    fn journal(&self) -> Option<Journal> {
        super::plexus_config(&self.conflist)
            .ok()
            .map(|c| Journal::new(c.cni_dir))
    }

    /// One round over the node's pods, remembering in `known` what was written.
    async fn round(
        &self,
        known: &mut HashMap<PodKey, Known>,
        only: Option<&BTreeSet<String>>,
    ) -> Round {
        let mut round = Round::default();
        let cfg = match super::plexus_config(&self.conflist) {
            Ok(c) => Arc::new(c),
            Err(e) => {
                tracing::warn!(error = %e, "health: skipped a round");
                return round;
            }
        };
        let caches = self.caches.clone();
        let delegate_check = self.args.health_delegate_check;
        let concurrency = usize::try_from(self.args.health_concurrency).unwrap_or(1);
        let full = only.is_none();
        let only = only.cloned();
        let looked = super::leak::blocking(move || {
            let product = delegate_check.then(|| Product::new(&cfg, &[]));
            let seams = product.as_ref().map(|p| p.seams(&p.api, &NoObserver));
            let wanted = |pod: &crate::txn::PodId| {
                let key = (pod.namespace.clone(), pod.name.clone());
                caches
                    .pod(&key)
                    .is_some_and(|p| pod.uid.as_ref().is_none_or(|u| *u == p.uid))
            };
            look::look_all(&Eyes {
                journal: &Journal::new(cfg.cni_dir.clone()),
                net: &Kernel,
                exec: seams.as_ref().map(|s| s.exec),
                wanted: &wanted,
                concurrency,
                only: only.as_ref(),
            })
        })
        .await
        .unwrap_or_default();
        for l in looked {
            let (pod, attachments, seconds) = match l {
                Looked::Busy(_) => {
                    self.metrics.health.skipped();
                    continue;
                }
                Looked::Ignored(id) => {
                    round.settled.push(id);
                    continue;
                }
                Looked::Checked(id, pod, a, s) => {
                    round.settled.push(id);
                    (pod, a, s)
                }
            };
            self.metrics.health.took(seconds);
            let entry = known.entry(pod.clone()).or_default();
            let series: Vec<InterfaceLabels> = attachments
                .iter()
                .map(|a| {
                    let labels = metrics::HealthMetrics::labels(&pod, &a.network, &a.ifname);
                    self.metrics
                        .health
                        .checked(&labels, a.problem.as_ref().map(|(r, _)| *r));
                    labels
                })
                .collect();
            // An interface hot-unplugged since: its series goes.
            for gone in entry.series.iter().filter(|l| !series.contains(l)) {
                self.metrics.health.forget(gone);
            }
            entry.series = series;
            if !self.settle(&pod, entry, &attachments).await {
                round.failed += 1;
            }
        }
        if full {
            self.forget_gone(known);
        }
        round
    }

    /// Writes the pod's condition (and posts its transitions' events) when it differs from what
    /// was written, or what an earlier agent left on the pod. False when the PATCH failed (the
    /// next round retries).
    async fn settle(
        &self,
        pod: &PodKey,
        entry: &mut Known,
        attachments: &[look::Attachment],
    ) -> bool {
        let now = crate::k8s::event::now_rfc3339();
        let next = condition::next(entry.written.as_ref(), attachments, &now);
        if entry.written.is_none()
            && let Some(w) = self.written_before(pod, &next)
        {
            entry.written = Some(w);
            return true;
        }
        if entry
            .written
            .as_ref()
            .is_some_and(|w| w.condition == next.condition)
        {
            return true;
        }
        match self.write(pod, &next).await {
            Ok(true) => {
                for (healthy, message) in
                    condition::transitions(entry.written.as_ref(), attachments)
                {
                    self.event(pod, healthy, &message).await;
                }
                entry.written = Some(next);
                true
            }
            Ok(false) => true,
            Err(e) => {
                tracing::warn!(pod = %format!("{}/{}", pod.namespace, pod.name), error = %e,
                    "health: condition not written; retrying next round");
                false
            }
        }
    }

    /// The condition as an earlier agent left it on the pod, when it says what `next` says.
    fn written_before(
        &self,
        pod: &PodKey,
        next: &condition::Written,
    ) -> Option<condition::Written> {
        let key = (pod.namespace.clone(), pod.name.clone());
        self.caches
            .pod_with(&key, |p| {
                if !pod.uid.is_empty() && p.uid != pod.uid {
                    return None;
                }
                condition::already_on_pod(&self.args.health_condition_type, &p.conditions, next)
            })
            .flatten()
    }

    /// PATCHes the pod's condition.
    async fn write(&self, pod: &PodKey, w: &Written) -> Result<bool, crate::k8s::client::ApiError> {
        let value = condition::to_value(&self.args.health_condition_type, &w.condition, &w.since);
        self.api
            .patch_pod_condition(&pod.namespace, &pod.name, &pod.uid, &value)
            .await
    }

    /// Posts one transition's event, best effort.
    async fn event(&self, pod: &PodKey, healthy: bool, message: &str) {
        let on = crate::k8s::pod::PodRef {
            namespace: pod.namespace.clone(),
            name: pod.name.clone(),
            uid: Some(pod.uid.clone()),
        };
        let reason = if healthy {
            "NetworkHealthy"
        } else {
            "NetworkUnhealthy"
        };
        let ev = crate::k8s::event::on_pod(
            &on,
            reason,
            !healthy,
            message,
            "plexus-agent",
            Some(&self.node),
        );
        if let Err(e) = self.api.post_event(&pod.namespace, &ev).await {
            tracing::warn!(error = %e, "health: event not recorded");
        }
    }

    /// Forgets the pods no longer on the node (as the cache says), and their series.
    fn forget_gone(&self, known: &mut HashMap<PodKey, Known>) {
        known.retain(|pod, k| {
            let key = (pod.namespace.clone(), pod.name.clone());
            let here = self
                .caches
                .pod(&key)
                .is_some_and(|p| pod.uid.is_empty() || p.uid == pod.uid);
            if !here {
                for labels in &k.series {
                    self.metrics.health.forget(labels);
                }
            }
            here
        });
    }
}

/// `interval` give or take a tenth, so the nodes' rounds do not meet.
fn jittered(interval: Duration) -> Duration {
    let random = RandomState::new().hash_one(std::time::Instant::now());
    let tenth = interval / 10;
    let spread = u64::try_from(tenth.as_millis()).unwrap_or(0) * 2;
    let offset = Duration::from_millis(random.checked_rem(spread.max(1)).unwrap_or(0));
    interval - tenth + offset
}
