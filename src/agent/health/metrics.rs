//! The health rounds' metrics: a gauge per pod interface (1 healthy, 0 not; its series go with
//! the pod), checks by result, and how long checking one pod takes.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::look::PodKey;
use crate::agent::metrics::InterfaceLabels;
use crate::health::Reason;

/// A check's result.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `healthy`, a [`Reason`], or `skipped` (the record was busy).
    pub result: String,
}

/// The health rounds' families.
#[derive(Debug)]
pub struct HealthMetrics {
    healthy: Family<InterfaceLabels, Gauge>,
    checks: Family<ResultLabels, Counter>,
    seconds: Histogram,
}

impl Default for HealthMetrics {
    fn default() -> Self {
        let checks = Family::<ResultLabels, Counter>::default();
        for r in ["healthy", "skipped"]
            .into_iter()
            .chain(Reason::ALL.iter().map(|r| r.as_str()))
        {
            let _ = checks.get_or_create(&ResultLabels { result: r.into() });
        }
        HealthMetrics {
            healthy: Family::default(),
            checks,
            // 50 µs to ~3 s.
            seconds: Histogram::new(exponential_buckets(0.000_05, 2.0, 16)),
        }
    }
}

impl HealthMetrics {
    /// Registers the families in `r`.
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "attachment_healthy",
            "Per pod interface: 1 when the last health check found it as ADD left it, 0 when not",
            self.healthy.clone(),
        );
        r.register(
            "health_checks",
            "Attachment health checks by result (healthy, a reason, or skipped: an ADD, DEL or hot-plug held the pod's record)",
            self.checks.clone(),
        );
        r.register(
            "health_check_duration_seconds",
            "Time to check every attachment of one pod",
            self.seconds.clone(),
        );
    }

    /// Labels of one pod interface.
    pub fn labels(pod: &PodKey, network: &str, ifname: &str) -> InterfaceLabels {
        InterfaceLabels {
            namespace: pod.namespace.clone(),
            pod: pod.name.clone(),
            interface: ifname.into(),
            network: network.into(),
        }
    }

    /// One attachment checked.
    pub fn checked(&self, labels: &InterfaceLabels, problem: Option<Reason>) {
        self.healthy
            .get_or_create(labels)
            .set(i64::from(problem.is_none()));
        let result = problem.map_or("healthy", Reason::as_str);
        self.checks
            .get_or_create(&ResultLabels {
                result: result.into(),
            })
            .inc();
    }

    /// One pod's check took `seconds`.
    pub fn took(&self, seconds: f64) {
        self.seconds.observe(seconds);
    }

    /// One record skipped (busy).
    pub fn skipped(&self) {
        self.checks
            .get_or_create(&ResultLabels {
                result: "skipped".into(),
            })
            .inc();
    }

    /// Forgets a pod interface's series.
    pub fn forget(&self, labels: &InterfaceLabels) {
        self.healthy.remove(labels);
    }
}
