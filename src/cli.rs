//! Command-line interface of `r1`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use r1_runtime::TelemetryArgs;

use crate::bench;

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
    /// Measure throughput and latency of a part of the stack.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    r1_runtime::telemetry::init(&cli.telemetry);
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
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
