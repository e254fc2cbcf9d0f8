//! Integration tests of the inference service.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod engine;
mod service;
