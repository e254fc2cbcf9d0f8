//! The learner: owns the policy weights. It trains them (cold-start SFT,
//! GRPO) with candle, writes checkpoints and publishes each new policy
//! version to the samplers.
//!
//! # Layout
//!
//! * [`model`] — the Llama-family decoder, its config and its weights on disk.
pub mod model;
