//! `r1-inference`: the sampling service.

use clap::Parser;
use r1_inference::service::{self, ServiceConfig};
use r1_runtime::TelemetryArgs;

#[derive(Debug, Parser)]
#[command(
    name = "r1-inference",
    version,
    about = "Samples GRPO groups with mistral.rs and follows the policy version"
)]
struct Args {
    #[command(flatten)]
    service: ServiceConfig,
    #[command(flatten)]
    telemetry: TelemetryArgs,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    r1_runtime::serve::service_main(
        &args.telemetry,
        |shutdown| {
            service::run(args.service, shutdown, |bound| {
                r1_runtime::serve::print_ready(&[("grpc", bound.grpc), ("admin", bound.admin)]);
            })
        },
        |_| None,
    )
    .await;
}
