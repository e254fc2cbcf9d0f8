//! `r1-learner`: the learner service.

use clap::Parser;
use r1_learner::service::{self, ServiceConfig};
use r1_runtime::TelemetryArgs;

#[derive(Debug, Parser)]
#[command(
    name = "r1-learner",
    version,
    about = "Trains the policy with GRPO on the run's scored groups and publishes versions"
)]
struct Args {
    #[command(flatten)]
    service: ServiceConfig,
    #[command(flatten)]
    telemetry: TelemetryArgs,
}

/// Training allocates and frees large tensors at every operation; mimalloc
/// reuses that memory instead of returning it to the kernel.
#[global_allocator]
static ALLOCATOR: r1_runtime::allocator::MiMalloc = r1_runtime::allocator::MiMalloc;

fn main() {
    r1_runtime::allocator::keep_freed_memory();
    match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime.block_on(run()),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    }
}

async fn run() {
    let args = Args::parse();
    r1_runtime::serve::service_main(
        &args.telemetry,
        |shutdown| {
            service::run(args.service, shutdown, |bound| {
                r1_runtime::serve::print_ready(&[("grpc", bound.grpc), ("admin", bound.admin)]);
            })
        },
        |e| {
            e.downcast_ref::<r1_learner::run_config::RunConfigError>()
                .map(ToString::to_string)
        },
    )
    .await;
}
