//! Integration tests of the learner.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod model;
mod training;
