//! The `r1` command: runs the R1 recipe (single-process mode or against the
//! services), evaluates models, and benchmarks every part of the stack.
//!
//! # Layout
//!
//! * [`cli`] — argument parsing and dispatch to the subcommands.
//! * [`math_check`] — `r1 math-check`: JSON Lines in, verdicts out.
//! * [`train`] — `r1 train`: the recipe end to end.
//! * [`eval`] — evaluation on held-out problems.
//! * [`bench`] — `r1 bench …`: throughput and latency measurements that print
//!   numbers beside a reference measured in the same run.

pub mod bench;
pub mod cli;
pub mod eval;
pub mod math_check;
pub mod train;
