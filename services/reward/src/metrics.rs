//! Prometheus metrics of the reward service.

use std::fmt::Write;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum Check {
    Math,
    Format,
    Language,
    /// A program run against a task's tests.
    Code,
}

#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum Outcome {
    Correct,
    Incorrect,
    /// The time budget ran out (math) — counted as not correct.
    Undecided,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CheckLabels {
    pub check: Check,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CheckKind {
    pub check: Check,
}

#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum Api {
    Grpc,
    Http,
    Queue,
}

#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum Rejection {
    Overloaded,
    InvalidArgument,
    Unsupported,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectionLabels {
    pub api: Api,
    pub reason: Rejection,
}

/// Labels of a sandbox run: both values come from closed enums' names.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SandboxRunLabels {
    pub language: &'static str,
    pub status: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiLabels {
    pub api: Api,
}

/// Every metric of the service; cheap to clone (shared handles).
#[derive(Debug, Clone)]
pub struct Metrics {
    pub checks: Family<CheckLabels, Counter>,
    pub check_seconds: Family<CheckKind, Histogram>,
    pub completions_scored: Family<ApiLabels, Counter>,
    pub rejected: Family<RejectionLabels, Counter>,
    pub groups_scored: Counter,
    pub sandbox_runs: Family<SandboxRunLabels, Counter>,
    pub sandbox_run_seconds: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            checks: Family::default(),
            check_seconds: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(1e-6, 4.0, 12))
            }),
            completions_scored: Family::default(),
            rejected: Family::default(),
            groups_scored: Counter::default(),
            sandbox_runs: Family::default(),
            sandbox_run_seconds: Histogram::new(exponential_buckets(1e-3, 2.0, 14)),
        }
    }
}

impl Metrics {
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("r1_reward");
        r.register(
            "checks",
            "Reward checks by kind and outcome",
            self.checks.clone(),
        );
        r.register(
            "check_duration_seconds",
            "Time of one reward check",
            self.check_seconds.clone(),
        );
        r.register(
            "completions_scored",
            "Completions scored, by API",
            self.completions_scored.clone(),
        );
        r.register(
            "rejected_requests",
            "Requests refused, by reason",
            self.rejected.clone(),
        );
        r.register(
            "groups_scored",
            "Groups scored from the rollouts stream",
            self.groups_scored.clone(),
        );
        r.register(
            "sandbox_runs",
            "Programs run in the sandbox, by language and how they ended",
            self.sandbox_runs.clone(),
        );
        r.register(
            "sandbox_run_duration_seconds",
            "Wall time of one sandbox run",
            self.sandbox_run_seconds.clone(),
        );
    }

    pub fn sandbox_run(&self, outcome: &r1_sandbox::RunOutcome, language: r1_sandbox::Language) {
        self.sandbox_runs
            .get_or_create(&SandboxRunLabels {
                language: language.name(),
                status: outcome.status.name(),
            })
            .inc();
        self.sandbox_run_seconds
            .observe(outcome.wall_time.as_secs_f64());
    }

    pub fn check(&self, check: Check, outcome: Outcome, seconds: f64) {
        self.checks
            .get_or_create(&CheckLabels { check, outcome })
            .inc();
        self.check_seconds
            .get_or_create(&CheckKind { check })
            .observe(seconds);
    }

    pub fn reject(&self, api: Api, reason: Rejection) {
        self.rejected
            .get_or_create(&RejectionLabels { api, reason })
            .inc();
    }
}

/// Label values in snake case, as Prometheus convention has them.
macro_rules! snake_case_label {
    ($($ty:ident { $($variant:ident => $text:literal),* $(,)? })*) => {$(
        impl EncodeLabelValue for $ty {
            fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
                encoder.write_str(match self { $(Self::$variant => $text),* })
            }
        }
    )*};
}

snake_case_label! {
    Check { Math => "math", Format => "format", Language => "language", Code => "code" }
    Outcome { Correct => "correct", Incorrect => "incorrect", Undecided => "undecided" }
    Api { Grpc => "grpc", Http => "http", Queue => "queue" }
    Rejection { Overloaded => "overloaded", InvalidArgument => "invalid_argument", Unsupported => "unsupported" }
}
