//! The reward service: turns completions into rewards. It owns the
//! rule-based rewards of R1's reasoning stage — math accuracy, the format
//! template and language consistency — combined per task profile, and serves
//! them over gRPC and HTTP and as a worker on the rollouts stream.
//!
//! # Layout
//!
//! * [`math`] — answer extraction and equivalence checking.
//! * [`format`] — the `<think>`/`<answer>` template.
//! * [`code`] — the code reward: programs run against test cases in the
//!   sandbox, and the SandboxFusion `run_code` shapes.
//! * [`language`] — the share of reasoning words in the target language.
//! * [`config`] — the TOML configuration: math settings and profile weights.
//! * [`scoring`] — combines the components into a `Score`.
//! * [`metrics`] — Prometheus metrics.
//! * [`api`], [`grpc`], [`http`] — the request APIs; [`worker`] — the queue
//!   worker; [`service`] — the process that runs them.
pub mod api;
pub mod code;
pub mod config;
pub mod error;
pub mod format;
pub mod grpc;
pub mod http;
pub mod language;
pub mod math;
pub mod metrics;
pub mod scoring;
pub mod service;
pub mod worker;
