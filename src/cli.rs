//! Command-line interface of `r1`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use r1_runtime::TelemetryArgs;

use crate::{bench, eval, math_check, model_cmd, run_code, train};

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
    /// Run the R1 recipe: cold-start SFT, then GRPO (the embedded tiny model
    /// and arithmetic task by default).
    Train(train::TrainArgs),
    /// Evaluate a model on held-out arithmetic problems; prints one JSON object.
    Eval(eval::EvalArgs),
    /// Create or import policy models.
    #[command(subcommand)]
    Model(model_cmd::ModelCommand),
    /// Check math answers: JSON Lines with "gold" and "pred" on stdin, the
    /// same lines with "correct", "pred_extracted" and "gold_extracted" on stdout.
    MathCheck(math_check::MathCheckArgs),
    /// Run one program in the sandbox: a SandboxFusion `run_code` request
    /// (JSON) on stdin, the response on stdout.
    RunCode(run_code::RunCodeArgs),
    /// Measure throughput and latency of a part of the stack.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    r1_runtime::telemetry::init(&cli.telemetry);
    let cli = match cli.command {
        Command::MathCheck(args) => return finish(math_check::run(args)),
        Command::Model(command) => return finish(model_cmd::run(command)),
        Command::RunCode(args) => return finish(run_code::run(args)),
        command => Cli { command, ..cli },
    };
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
            Command::Train(args) => train::run(args).await,
            Command::Eval(args) => eval::run(args).await,
            Command::MathCheck(_) | Command::Model(_) | Command::RunCode(_) => {
                unreachable!("handled before the runtime starts")
            }
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
