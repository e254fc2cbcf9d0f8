//! `r1-reward`: the reward service.

use clap::Parser;
use r1_reward::service::{self, ServiceConfig};
use r1_runtime::{Shutdown, TelemetryArgs};

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
    r1_runtime::telemetry::init(&args.telemetry);
    let shutdown = Shutdown::on(r1_runtime::signal());
    let result = service::run(args.service, shutdown, |bound| {
        // One line on stdout for supervisors and tests that bound port 0.
        println!("{}", serde_json::json!({ "event": "ready", "grpc": bound.grpc, "http": bound.http, "admin": bound.admin }));
    })
    .await;
    if let Err(e) = result {
        match e.downcast_ref::<r1_reward::config::ConfigError>() {
            Some(config_error) => r1_runtime::exit::config_error(config_error),
            None => {
                eprintln!("error: {e:#}");
                std::process::exit(1);
            }
        }
    }
}
