//! Tracing set-up for every r1 binary.

use tracing_subscriber::EnvFilter;

/// Logging flags shared by every binary.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TelemetryArgs {
    /// Write logs as JSON lines instead of human-readable text.
    #[arg(long, env = "R1_LOG_JSON", global = true)]
    pub log_json: bool,
}

/// Installs the global subscriber: the filter comes from `R1_LOG`
/// (`info` when unset, e.g. `R1_LOG=r1_reward=debug,info`), logs go to stderr.
/// Calling it twice keeps the first subscriber.
pub fn init(args: &TelemetryArgs) {
    let filter = EnvFilter::try_from_env("R1_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = if args.log_json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    // Already installed (tests start several services in one process).
    drop(installed);
}
