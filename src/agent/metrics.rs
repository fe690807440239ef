//! The agent's Prometheus metrics (what Multus users asked for in multus #808 and never got):
//! CNI calls and attachments with latency histograms, failures by CNI code, rollbacks, plugin
//! fallbacks, the agent's own API requests, the leak collector's actions, journal records, the
//! caches, and a per-interface info series to join with cAdvisor's `container_network_*`.
//! Label values are bounded: verbs, codes, networks, plugin types, pods of this node; never a
//! container id.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::cache::Caches;
use super::proto::{Fallback, Report};
use crate::journal::Journal;

/// `verb`, `result` (`success` or `error`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    /// `ADD`, `DEL`, `CHECK`, `GC`, `STATUS`.
    pub verb: String,
    /// `success` or `error`.
    pub result: String,
}

/// One attachment's delegate call.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AttachmentLabels {
    /// `ADD` or `DEL`.
    pub verb: String,
    /// NAD `namespace/name`, or the cluster network's name.
    pub network: String,
    /// The plugin types (`macvlan`, `bridge,portmap`).
    pub plugin: String,
    /// `success` or `error`.
    pub result: String,
}

/// A failed call's CNI error code.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    /// The verb.
    pub verb: String,
    /// The CNI error code.
    pub code: String,
}

/// One label, named by the family.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `clean` or `incomplete`.
    pub outcome: String,
}

/// Why the plugin did without the agent.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// A [`Fallback`] reason, or a leak collector's reason to keep a record.
    pub reason: String,
}

/// The agent's API requests.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiLabels {
    /// `list`, `watch`, `get`, `patch`, `create`.
    pub verb: String,
    /// The HTTP status, or `error` when none came.
    pub code: String,
}

/// The leak collector's actions.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    /// `released` or `release-failed`.
    pub action: String,
}

/// One pod interface.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InterfaceLabels {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub pod: String,
    /// The interface in the pod.
    pub interface: String,
    /// The network (NAD `namespace/name` or the cluster network's name).
    pub network: String,
}

/// A cache or socket answer.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// `pods` or `network-attachment-definitions`.
    pub kind: String,
}

/// A question on the socket and its answer.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SocketLabels {
    /// `pod`, `nads`, `status`, `report`, or `invalid`.
    pub op: String,
    /// The answer given (`pod`, `nads`, `patched`, `noted`, `unknown`, `error`).
    pub answer: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn seconds() -> Histogram {
    // 0.5 ms to ~16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// Every metric the agent serves.
pub struct Metrics {
    registry: Registry,
    calls: Family<CallLabels, Counter>,
    call_seconds: Histograms<CallLabels>,
    attachments: Family<AttachmentLabels, Counter>,
    attachment_seconds: Histograms<AttachmentLabels>,
    failures: Family<FailureLabels, Counter>,
    rollbacks: Family<OutcomeLabels, Counter>,
    fallbacks: Family<ReasonLabels, Counter>,
    /// The agent's own API requests.
    pub api_requests: Family<ApiLabels, Counter>,
    leak_actions: Family<ActionLabels, Counter>,
    leak_kept: Family<ReasonLabels, Counter>,
    journal_records: Gauge,
    journal_stuck: Gauge,
    interfaces: Family<InterfaceLabels, Gauge>,
    cache_objects: Family<KindLabels, Gauge>,
    cache_synced: Family<KindLabels, Gauge>,
    watch_errors: Family<KindLabels, Counter>,
    socket: Family<SocketLabels, Counter>,
    /// The health rounds' families.
    pub health: super::health::metrics::HealthMetrics,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every family registered, empty.
    pub fn new() -> Metrics {
        let m = Metrics {
            registry: Registry::with_prefix("plexus"),
            calls: Family::default(),
            call_seconds: Family::new_with_constructor(seconds),
            attachments: Family::default(),
            attachment_seconds: Family::new_with_constructor(seconds),
            failures: Family::default(),
            rollbacks: Family::default(),
            fallbacks: Family::default(),
            api_requests: Family::default(),
            leak_actions: Family::default(),
            leak_kept: Family::default(),
            journal_records: Gauge::default(),
            journal_stuck: Gauge::default(),
            interfaces: Family::default(),
            cache_objects: Family::default(),
            cache_synced: Family::default(),
            watch_errors: Family::default(),
            socket: Family::default(),
            health: super::health::metrics::HealthMetrics::default(),
        };
        let mut m = m;
        m.health.register(&mut m.registry);
        m.register_calls();
        m.register_node();
        for f in Fallback::ALL {
            let _ = m.fallbacks.get_or_create(&ReasonLabels {
                reason: f.as_str().into(),
            });
        }
        m
    }

    /// The registry, for a part of the agent that registers families of its own (before the
    /// metrics are shared).
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// The plugin's calls, as reported.
    fn register_calls(&mut self) {
        let m = self;
        let r = &mut m.registry;
        r.register("cni_calls", "CNI calls by verb and result", m.calls.clone());
        r.register(
            "cni_call_duration_seconds",
            "CNI call latency by verb and result",
            m.call_seconds.clone(),
        );
        r.register(
            "attachment_calls",
            "Delegate calls per attachment by verb, network, plugin type and result (rollbacks are DELs)",
            m.attachments.clone(),
        );
        r.register(
            "attachment_duration_seconds",
            "Delegate call latency per attachment by verb, network, plugin type and result",
            m.attachment_seconds.clone(),
        );
        r.register(
            "cni_failures",
            "Failed CNI calls by verb and CNI error code",
            m.failures.clone(),
        );
        r.register(
            "rollbacks",
            "ADDs that failed and were rolled back, by outcome (clean, or incomplete: the record is kept for DEL)",
            m.rollbacks.clone(),
        );
        r.register(
            "plugin_fallbacks",
            "Questions the plugin asked the API server itself instead of the agent, by reason",
            m.fallbacks.clone(),
        );
    }

    /// The agent's own doings and the node's state.
    fn register_node(&mut self) {
        let m = self;
        let r = &mut m.registry;
        r.register(
            "agent_api_requests",
            "API requests made by the agent, by verb and HTTP code",
            m.api_requests.clone(),
        );
        r.register(
            "leak_collector_actions",
            "Leaked journal records the agent DELeted, by action (released, release-failed)",
            m.leak_actions.clone(),
        );
        r.register(
            "leak_collector_kept",
            "Journal records the leak collector left alone, by the guard that kept them",
            m.leak_kept.clone(),
        );
        r.register(
            "journal_records",
            "Journal records on this node",
            m.journal_records.clone(),
        );
        r.register(
            "journal_stuck_records",
            "Journal records whose DEL or rollback could not finish (plexus inspect shows them stuck)",
            m.journal_stuck.clone(),
        );
        r.register(
            "pod_interface_info",
            "One series per pod interface plexus attached (value 1), to join with container_network_*",
            m.interfaces.clone(),
        );
        r.register(
            "agent_cache_objects",
            "Objects in the agent's caches",
            m.cache_objects.clone(),
        );
        r.register(
            "agent_cache_synced",
            "1 once the cache's first list is complete",
            m.cache_synced.clone(),
        );
        r.register(
            "agent_watch_errors",
            "Errors of the agent's watches (each is retried with backoff)",
            m.watch_errors.clone(),
        );
        r.register(
            "agent_socket_requests",
            "Questions the agent answered on its socket, by question and answer",
            m.socket.clone(),
        );
    }

    /// Counts one call the plugin reported.
    pub fn report(&self, r: &Report) {
        let result = if r.code.is_none() { "success" } else { "error" };
        let call = CallLabels {
            verb: r.verb.clone(),
            result: result.into(),
        };
        self.calls.get_or_create(&call).inc();
        self.call_seconds.get_or_create(&call).observe(r.seconds);
        if let Some(code) = r.code {
            self.failures
                .get_or_create(&FailureLabels {
                    verb: r.verb.clone(),
                    code: code.to_string(),
                })
                .inc();
        }
        if let Some(outcome) = &r.rollback {
            self.rollbacks
                .get_or_create(&OutcomeLabels {
                    outcome: outcome.clone(),
                })
                .inc();
        }
        for f in &r.fallbacks {
            self.fallback(*f);
        }
        for s in &r.steps {
            let l = AttachmentLabels {
                verb: s.verb.clone(),
                network: s.network.clone(),
                plugin: s.plugin.clone(),
                result: if s.ok { "success" } else { "error" }.into(),
            };
            self.attachments.get_or_create(&l).inc();
            self.attachment_seconds.get_or_create(&l).observe(s.seconds);
        }
    }

    /// Counts one fallback.
    pub fn fallback(&self, f: Fallback) {
        self.fallbacks
            .get_or_create(&ReasonLabels {
                reason: f.as_str().into(),
            })
            .inc();
    }

    /// Counts one leak collector action (`released`, `release-failed`).
    pub fn leak_action(&self, action: &str) {
        self.leak_actions
            .get_or_create(&ActionLabels {
                action: action.into(),
            })
            .inc();
    }

    /// Counts one record the leak collector kept, and the guard that kept it.
    pub fn leak_kept(&self, reason: &str) {
        self.leak_kept
            .get_or_create(&ReasonLabels {
                reason: reason.into(),
            })
            .inc();
    }

    /// Counts one watch error.
    pub fn watch_error(&self, kind: &str) {
        self.watch_errors
            .get_or_create(&KindLabels { kind: kind.into() })
            .inc();
    }

    /// Counts one question answered on the socket.
    pub fn socket(&self, op: &str, answer: &str) {
        self.socket
            .get_or_create(&SocketLabels {
                op: op.into(),
                answer: answer.into(),
            })
            .inc();
    }

    /// The text exposition (OpenMetrics), with the journal and cache series read now.
    pub fn encode(&self, journal: &Journal, caches: &Caches) -> String {
        self.refresh(journal, caches);
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    /// Reads the journal (records, stuck records, interfaces) and the caches' state.
    fn refresh(&self, journal: &Journal, caches: &Caches) {
        for (kind, state) in [
            ("pods", caches.pod_state()),
            ("network-attachment-definitions", caches.nad_state()),
        ] {
            let k = KindLabels { kind: kind.into() };
            self.cache_objects
                .get_or_create(&k)
                .set(i64::try_from(state.objects).unwrap_or(i64::MAX));
            self.cache_synced
                .get_or_create(&k)
                .set(i64::from(state.synced));
        }
        // Read as `plexus inspect` reads it: no locks, so a scrape never waits for an ADD.
        let records = crate::cli::inspect::scan(journal.dir())
            .ok()
            .flatten()
            .map(|l| l.records)
            .unwrap_or_default();
        self.journal_records
            .set(i64::try_from(records.len()).unwrap_or(i64::MAX));
        self.interfaces.clear();
        let mut stuck = 0;
        for rec in records
            .iter()
            .filter_map(|j| j.record.as_ref().ok().map(|(_, r)| r))
        {
            if rec.is_stuck() {
                stuck += 1;
            }
            let Some(pod) = &rec.pod else {
                continue;
            };
            for s in rec.attached() {
                self.interfaces
                    .get_or_create(&InterfaceLabels {
                        namespace: pod.namespace.clone(),
                        pod: pod.name.clone(),
                        interface: s.ifname.clone(),
                        network: s.network.clone(),
                    })
                    .set(1);
            }
        }
        self.journal_stuck.set(stuck);
    }
}
