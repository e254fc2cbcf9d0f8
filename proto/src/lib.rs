//! Wire contracts of r1-stack: everything that crosses a process boundary.
//!
//! # Layout
//!
//! * [`pb`] — protobuf messages and gRPC services generated from `proto/r1/v1/*.proto`
//!   (package `r1.v1`).
//! * [`domain`] — validated domain types; `TryFrom<pb::X>` rejects missing or
//!   out-of-range fields with an error naming the field, `From<X> for pb::X` goes back.
//! * [`queue`] — the durable work queue that links the services: typed streams
//!   (`r1:{run}:prompts`, `rollouts`, `scored`, `dead`) with consumer groups,
//!   at-least-once delivery, reclaiming, dead-lettering, deduplication and the
//!   policy-version announcement, on Redis or on an embedded in-memory backend
//!   with the same semantics.

pub mod domain;
pub mod queue;

/// Generated protobuf types and gRPC stubs of package `r1.v1`.
#[allow(clippy::all, missing_docs)]
pub mod pb {
    tonic::include_proto!("r1.v1");
}

/// Version of the encoding carried by every queue entry next to its bytes.
/// Bump it when a change to `proto/` is not wire-compatible.
pub const SCHEMA_VERSION: u32 = 1;
