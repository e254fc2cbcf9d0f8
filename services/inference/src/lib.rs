//! The inference service: samples GRPO groups with mistral.rs, tagged with
//! the policy version that produced them, and follows the learner's
//! published versions.
//!
//! # Layout
//!
//! * [`sampler`] — our seeded sampler inside mistral.rs (exact ids, natural-log
//!   log-probs, per-request seeds).
//! * [`engine`] — one loaded policy: offline loading, group generation.
//! * [`prompt`] — prompt jobs to token ids.
//! * [`worker`] — the queue worker that follows the policy version.
//! * [`fetch`] — weights from the learner over gRPC.
//! * [`metrics`] — Prometheus metrics.
//! * [`service`] — the `r1-inference` process (gRPC `Inference`, admin, worker).
pub mod engine;
pub mod fetch;
pub mod metrics;
pub mod prompt;
pub mod sampler;
pub mod service;
pub mod worker;
