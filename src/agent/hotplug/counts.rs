//! Hot-plug's metrics: passes, changes by result, and how long a change took from the moment
//! the agent saw the annotation change to the end of its pass (network-status written).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::agent::metrics::Metrics;

/// The agent's metrics with hot-plug's families registered among them.
pub fn with_metrics() -> (std::sync::Arc<Metrics>, Counts) {
    let mut m = Metrics::new();
    let counts = Counts::register(m.registry_mut());
    (std::sync::Arc::new(m), counts)
}

/// What happened to one attachment.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `added`, `removed`, `rejected`, `rolled-back`, `not-applied`, `remove-failed`,
    /// `status-failed`.
    pub result: String,
}

/// Hot-plug's families.
#[derive(Debug, Clone)]
pub struct Counts {
    passes: Counter,
    changes: Family<ResultLabels, Counter>,
    seconds: Histogram,
}

impl Counts {
    /// Registers the families in `registry`.
    pub fn register(registry: &mut Registry) -> Counts {
        let c = Counts {
            passes: Counter::default(),
            changes: Family::default(),
            // 1 ms to ~16 s.
            seconds: Histogram::new(exponential_buckets(0.001, 2.0, 15)),
        };
        registry.register(
            "hotplug_passes",
            "Hot-plug passes run on pods with a plexus record (each compares the annotation with the journal)",
            c.passes.clone(),
        );
        registry.register(
            "hotplug_changes",
            "Hot-plug changes by result (added, removed, rejected, rolled-back, not-applied, remove-failed, status-failed)",
            c.changes.clone(),
        );
        registry.register(
            "hotplug_change_duration_seconds",
            "From the annotation change seen by the agent to the end of the pass that applied it",
            c.seconds.clone(),
        );
        c
    }

    /// One pass.
    pub fn pass(&self) {
        self.passes.inc();
    }

    /// `n` changes with `result`.
    pub fn change(&self, result: &str, n: usize) {
        if n > 0 {
            self.changes
                .get_or_create(&ResultLabels {
                    result: result.into(),
                })
                .inc_by(n as u64);
        }
    }

    /// A change applied `seconds` after it was seen.
    pub fn took(&self, seconds: f64) {
        self.seconds.observe(seconds);
    }
}
