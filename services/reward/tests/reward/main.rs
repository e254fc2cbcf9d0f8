//! Integration tests of the reward service.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bad_input;
mod code;
mod conformance;
mod service;
