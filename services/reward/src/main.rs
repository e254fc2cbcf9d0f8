//! `r1-reward`: the reward service.

use clap::Parser;
use r1_reward::service::{self, ServiceConfig};
use r1_runtime::TelemetryArgs;

#[derive(Debug, Parser)]
#[command(
    name = "r1-reward",
    version,
    about = "Scores completions: math, code, format, language (gRPC, HTTP, queue worker)"
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
                r1_runtime::serve::print_ready(&[
                    ("grpc", bound.grpc),
                    ("http", bound.http),
                    ("admin", bound.admin),
                ]);
            })
        },
        |e| {
            e.downcast_ref::<r1_reward::config::ConfigError>()
                .map(ToString::to_string)
        },
    )
    .await;
}
