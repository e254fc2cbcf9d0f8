//! End-to-end tests: the `r1` command and the services as real processes,
//! linked by the embedded queue or by a private redis-server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli;
mod services;
mod train;
