//! The code sandbox: runs a model's Python or JavaScript program in wasmtime,
//! in-process, with a fresh instance per run and limits on time, memory,
//! output and (optionally) instructions. Programs and their stdin flow in; a
//! [`RunOutcome`] flows out. What the guest does wrong is an outcome, never an
//! error: only failures of the host are [`SandboxError`]s.
//!
//! # Layout
//!
//! * [`language`] — the languages we run, and QuickJS's argv.
//! * [`limits`] — per-run limits and their defaults.
//! * [`outcome`] — what a run produced and how it ended.
//! * [`modules`] — interpreters: loading, checking, and the on-disk cache of
//!   precompiled machine code.
//! * [`python`] — the pre-initialised CPython snapshot: building and caching.
//! * [`python_host`] — the host side of the Python component and one call.
//! * [`store`] — one run's store with its limits armed, and what it used.
//! * [`limiter`] — the memory limiter of one run, which records the peak.
//! * [`pipe`] — stdout and stderr in memory, capped.
//! * [`sandbox`] — the engine, the instance pool and one run from start to end.

pub mod language;
pub mod limiter;
pub mod limits;
pub mod modules;
pub mod outcome;
pub mod pipe;
pub mod python;
pub mod python_host;
pub mod sandbox;
pub mod store;

pub use language::Language;
pub use limits::Limits;
pub use modules::{Interpreters, ModuleError};
pub use outcome::{RunOutcome, RunStatus};
pub use sandbox::{Program, Sandbox, SandboxConfig, SandboxError};
