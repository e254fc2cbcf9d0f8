//! `r1 bench …`: every benchmark prints its own numbers beside a reference
//! measured in the same run on the same machine.

mod queue;

#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Entries/s through produce → consume → ack on Redis and on the embedded
    /// backend, beside redis-benchmark's raw XADD rate.
    Queue(queue::QueueBench),
}

pub async fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Queue(args) => queue::run(args).await,
    }
}
