//! `r1-learner`: the learner service.

use clap::Parser;
use r1_learner::service::{self, ServiceConfig};
use r1_runtime::{Shutdown, TelemetryArgs};

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
        match e.downcast_ref::<r1_learner::run_config::RunConfigError>() {
            Some(config_error) => r1_runtime::exit::config_error(config_error),
            None => {
                eprintln!("error: {e:#}");
                std::process::exit(1);
            }
        }
    }
}
