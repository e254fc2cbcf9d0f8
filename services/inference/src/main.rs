//! `r1-inference`: the sampling service.

use clap::Parser;
use r1_inference::service::{self, ServiceConfig};
use r1_runtime::{Shutdown, TelemetryArgs};

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
    r1_runtime::telemetry::init(&args.telemetry);
    let shutdown = Shutdown::on(r1_runtime::signal());
    let result = service::run(args.service, shutdown, |bound| {
        println!(
            "{}",
            serde_json::json!({ "event": "ready", "grpc": bound.grpc, "admin": bound.admin })
        );
    })
    .await;
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
