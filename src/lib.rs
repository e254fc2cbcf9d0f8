//! The `r1` command: runs the R1 recipe (single-process mode or against the
//! services), evaluates models, and benchmarks every part of the stack.
//!
//! # Layout
//!
//! * [`cli`] — argument parsing and dispatch to the subcommands.
//! * [`math_check`] — `r1 math-check`: JSON Lines in, verdicts out.
//! * [`train`] — `r1 train`: the recipe end to end.
//! * [`eval`] — evaluation on held-out problems.
//! * [`model_cmd`] — `r1 model init` and `r1 model import-smollm2`.
//! * [`run_code`] — `r1 run-code`: one SandboxFusion request through the sandbox.
//! * [`bench`] — `r1 bench …`: throughput and latency measurements that print
//!   numbers beside a reference measured in the same run.

pub mod bench;
pub mod cli;
pub mod eval;
pub mod math_check;
pub mod model_cmd;
pub mod run_code;
pub mod train;
