//! Integration tests of the reward service.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod conformance;
mod service;
