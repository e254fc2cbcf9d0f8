//! The inference service: samples GRPO groups with mistral.rs, tagged with
//! the policy version that produced them, and follows the learner's
//! published versions.
//!
//! # Layout
//!
//! * [`sampler`] — our seeded sampler inside mistral.rs (exact ids, natural-log
//!   log-probs, per-request seeds).
//! * [`engine`] — one loaded policy: offline loading, group generation.
pub mod engine;
pub mod sampler;
