//! `r1 bench …`: every benchmark prints its own numbers beside a reference
//! measured in the same run on the same machine.

mod inference;
mod learner;
mod math;
mod queue;
mod reference;
mod sandbox;

#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Entries/s through produce → consume → ack on Redis and on the embedded
    /// backend, beside redis-benchmark's raw XADD rate.
    Queue(queue::QueueBench),
    /// Math answer checks/s on the conformance cases, single-threaded and on
    /// all cores, beside Math-Verify on the same cases.
    Math(math::MathBench),
    /// Forward + backward tokens/s and optimizer step time of the learner.
    Learner(learner::LearnerBench),
    /// Sandbox p50/p99 latency and runs/s for a trivial and a CPU-bound
    /// program, beside a native python3 subprocess running the same programs.
    Sandbox(sandbox::SandboxBench),
    /// Generated tokens/s for GRPO groups on the tiny model and SmolLM2-135M
    /// (f32 and Q4_1 GGUF) and the load time, beside llama.cpp.
    Inference(inference::InferenceBench),
}

pub async fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Queue(args) => queue::run(args).await,
        BenchCommand::Inference(args) => inference::run(args).await,
        BenchCommand::Math(args) => tokio::task::spawn_blocking(move || math::run(args)).await?,
        BenchCommand::Sandbox(args) => {
            tokio::task::spawn_blocking(move || sandbox::run(args)).await?
        }
        BenchCommand::Learner(args) => {
            tokio::task::spawn_blocking(move || learner::run(args)).await?
        }
    }
}
