//! Command-line interface of `r1`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use r1_runtime::TelemetryArgs;

use crate::{bench, math_check};

#[derive(Debug, Parser)]
#[command(
    name = "r1",
    version,
    about = "The DeepSeek-R1 training recipe as Rust services"
)]
struct Cli {
    #[command(flatten)]
    telemetry: TelemetryArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check math answers: JSON Lines with "gold" and "pred" on stdin, the
    /// same lines with "correct", "pred_extracted" and "gold_extracted" on stdout.
    MathCheck(math_check::MathCheckArgs),
    /// Measure throughput and latency of a part of the stack.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    r1_runtime::telemetry::init(&cli.telemetry);
    if let Command::MathCheck(args) = cli.command {
        return finish(math_check::run(args));
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Bench(command) => bench::run(command).await,
            Command::MathCheck(_) => unreachable!("handled before the runtime starts"),
        }
    });
    finish(result)
}

fn finish(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
