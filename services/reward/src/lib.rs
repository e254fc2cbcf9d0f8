//! The reward service: turns completions into rewards.
//!
//! # Layout
//!
//! * [`math`] — the accuracy reward for math: answer extraction and
//!   equivalence checking.
pub mod math;
