//! Service runtime shared by `r1-inference`, `r1-reward` and `r1-learner`:
//! what every service process does around its own work.
//!
//! # Layout
//!
//! * [`telemetry`] — tracing set-up: `R1_LOG` filter, human or JSON lines.
//! * [`admin`] — the admin HTTP server: `/live`, `/ready` (a latch) and
//!   `/metrics` (Prometheus text from a `prometheus-client` registry).
//! * [`shutdown`] — SIGTERM/SIGINT as a future, and the cancellation token
//!   the tasks of a service watch.
//! * [`serve`] — binding and serving gRPC + admin on a task set, draining
//!   it at shutdown, the ready line, and the body of a service's `main`.
//! * [`allocator`] — mimalloc for the binaries that train, keeping freed
//!   memory instead of handing it back to the kernel.
//! * [`exit`] — how a binary reports a fatal start-up error.

pub mod admin;
pub mod allocator;
pub mod exit;
pub mod serve;
pub mod shutdown;
pub mod telemetry;

pub use admin::{AdminServer, Readiness};
pub use shutdown::{Shutdown, signal};
pub use telemetry::TelemetryArgs;
