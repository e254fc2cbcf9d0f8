//! Prometheus metrics of the inference service.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone)]
pub struct Metrics {
    pub tokens_generated: Counter,
    pub groups_sampled: Counter,
    pub jobs_in_flight: Gauge,
    /// Sequences decoded together by the last group (the engine's batch).
    pub batch_sequences: Gauge,
    pub policy_version: Gauge,
    pub reload_seconds: Histogram,
    pub jobs_failed: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            tokens_generated: Counter::default(),
            groups_sampled: Counter::default(),
            jobs_in_flight: Gauge::default(),
            batch_sequences: Gauge::default(),
            policy_version: Gauge::default(),
            reload_seconds: Histogram::new(exponential_buckets(0.01, 2.0, 14)),
            jobs_failed: Counter::default(),
        }
    }
}

impl Metrics {
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("r1_inference");
        r.register(
            "tokens_generated",
            "Completion tokens sampled (rate = tokens/s)",
            self.tokens_generated.clone(),
        );
        r.register(
            "groups_sampled",
            "Groups appended to the rollouts stream",
            self.groups_sampled.clone(),
        );
        r.register(
            "jobs_in_flight",
            "Prompt jobs being sampled",
            self.jobs_in_flight.clone(),
        );
        r.register(
            "batch_sequences",
            "Sequences sampled together for the last groups",
            self.batch_sequences.clone(),
        );
        r.register(
            "policy_version",
            "Policy version being served",
            self.policy_version.clone(),
        );
        r.register(
            "reload_seconds",
            "Time to load a new policy version",
            self.reload_seconds.clone(),
        );
        r.register(
            "jobs_failed",
            "Jobs whose sampling failed (left for redelivery)",
            self.jobs_failed.clone(),
        );
    }
}
