//! The `r1-reward` process: gRPC and HTTP APIs, the admin server, and the
//! queue worker when a Redis URL is given.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use prometheus_client::registry::Registry;
use r1_proto::pb::reward_server::RewardServer;
use r1_proto::queue::Queue;
use r1_runtime::serve::{self, Listeners, Tasks};
use r1_runtime::{Readiness, Shutdown};
use r1_sandbox::{ModuleError, Sandbox, SandboxConfig, SandboxError};
use tokio::net::TcpListener;
use tonic::service::Routes;

use crate::api::RewardApi;
use crate::config::RewardConfig;
use crate::grpc::GrpcReward;
use crate::metrics::Metrics;
use crate::scoring::Scorer;
use crate::{http, worker};

/// Deployment wiring of the reward service.
#[derive(Debug, Clone, clap::Args)]
pub struct ServiceConfig {
    /// gRPC listen address.
    #[arg(long, env = "R1_REWARD_GRPC_ADDR", default_value = "0.0.0.0:50051")]
    pub grpc_addr: SocketAddr,
    /// HTTP/JSON listen address.
    #[arg(long, env = "R1_REWARD_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,
    /// Admin listen address (/live, /ready, /metrics).
    #[arg(long, env = "R1_REWARD_ADMIN_ADDR", default_value = "0.0.0.0:9090")]
    pub admin_addr: SocketAddr,
    /// Redis URL; when set, also scores the rollouts stream of the run.
    #[arg(long, env = "R1_REWARD_REDIS_URL")]
    pub redis_url: Option<String>,
    /// Run whose streams the worker reads.
    #[arg(long, env = "R1_REWARD_RUN_ID", default_value = "default")]
    pub run_id: String,
    /// Name of this replica in the consumer group (default: host-pid).
    #[arg(long, env = "R1_REWARD_REPLICA_ID")]
    pub replica_id: Option<String>,
    /// Reward configuration (TOML); built-in defaults when unset.
    #[arg(long, env = "R1_REWARD_CONFIG")]
    pub config: Option<PathBuf>,
    /// API requests checked at once; more are refused with RESOURCE_EXHAUSTED.
    #[arg(long, env = "R1_REWARD_MAX_IN_FLIGHT", default_value_t = 256)]
    pub max_in_flight: usize,
    /// Groups the queue worker scores at once.
    #[arg(long, env = "R1_REWARD_WORKER_CONCURRENCY", default_value_t = 8)]
    pub worker_concurrency: usize,
    /// Pending rollouts idle this long are taken over from a dead replica.
    #[arg(long, env = "R1_REWARD_RECLAIM_IDLE_MS", default_value_t = 30_000)]
    pub reclaim_idle_ms: u64,
    /// Grace period for in-flight work at shutdown.
    #[arg(long, env = "R1_REWARD_SHUTDOWN_GRACE_MS", default_value_t = 10_000)]
    pub shutdown_grace_ms: u64,
    /// Code sandbox: `auto` loads it when the interpreters are in the cache,
    /// `required` refuses to start without it, `off` never loads it.
    #[arg(long, env = "R1_REWARD_CODE_SANDBOX", value_enum, default_value_t = SandboxMode::Auto)]
    pub code_sandbox: SandboxMode,
    /// The r1 cache: `artefacts/` holds the interpreters (scripts/fetch-artefacts),
    /// `sandbox/` their compiled code.
    #[arg(long, env = "R1_CACHE_DIR", default_value = ".r1-cache")]
    pub cache_dir: PathBuf,
    /// Programs the sandbox runs at once; more wait for a slot.
    #[arg(long, env = "R1_REWARD_SANDBOX_SLOTS", default_value_t = 32)]
    pub sandbox_slots: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SandboxMode {
    Auto,
    Required,
    Off,
}

/// Loads the sandbox per `--code-sandbox`; compiling an interpreter the
/// first time takes seconds, so it runs on the blocking pool.
async fn load_sandbox(config: &ServiceConfig) -> anyhow::Result<Option<Sandbox>> {
    if config.code_sandbox == SandboxMode::Off {
        return Ok(None);
    }
    let mut sandbox_config = SandboxConfig::new(&config.cache_dir);
    sandbox_config.max_concurrent_runs = config.sandbox_slots.max(1);
    let loaded = tokio::task::spawn_blocking(move || Sandbox::new(sandbox_config))
        .await
        .context("loading the sandbox")?;
    match loaded {
        Ok(sandbox) => {
            tracing::info!(languages = ?sandbox.languages(), "code sandbox loaded");
            Ok(Some(sandbox))
        }
        Err(SandboxError::Module(e @ ModuleError::Missing { .. }))
            if config.code_sandbox == SandboxMode::Auto =>
        {
            tracing::warn!(error = %e, "code tasks and run_code are unavailable");
            Ok(None)
        }
        Err(e) => Err(e).context("loading the code sandbox"),
    }
}

impl ServiceConfig {
    fn replica_id(&self) -> String {
        self.replica_id.clone().unwrap_or_else(|| {
            let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "reward".into());
            format!("{host}-{}", std::process::id())
        })
    }
}

/// Where the service listens, once bound.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Bound {
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    pub admin: SocketAddr,
}

/// Binds every listener, then serves until `shutdown` starts. `on_ready`
/// receives the bound addresses.
pub async fn run(
    config: ServiceConfig,
    shutdown: Shutdown,
    on_ready: impl FnOnce(Bound),
) -> anyhow::Result<()> {
    if config.max_in_flight == 0 || config.worker_concurrency == 0 {
        anyhow::bail!("--max-in-flight and --worker-concurrency must be at least 1");
    }
    let reward_config = match &config.config {
        Some(path) => RewardConfig::load(path)?,
        None => RewardConfig::default(),
    };
    let metrics = Metrics::default();
    let mut registry = Registry::default();
    metrics.register(&mut registry);
    let mut scorer = Scorer::new(reward_config, metrics);
    if let Some(sandbox) = load_sandbox(&config).await? {
        scorer = scorer.with_sandbox(sandbox);
    }
    let scorer = Arc::new(scorer);
    let api = RewardApi::new(scorer.clone(), config.max_in_flight);
    let replica = config.replica_id();

    let listeners = Listeners::bind(config.grpc_addr, config.admin_addr).await?;
    let http_listener = TcpListener::bind(config.http_addr)
        .await
        .with_context(|| format!("binding HTTP address {}", config.http_addr))?;
    let bound = Bound {
        grpc: listeners.grpc_addr,
        http: http_listener.local_addr()?,
        admin: listeners.admin_addr,
    };
    let readiness = Readiness::default();
    let mut tasks = Tasks::new();
    let grpc_service = RewardServer::new(GrpcReward::new(api.clone(), replica.clone()));
    listeners.serve(
        &mut tasks,
        Routes::new(grpc_service),
        registry,
        readiness.clone(),
        &shutdown,
    );
    let http_shutdown = shutdown.clone();
    let router = http::router(api.clone());
    tasks.spawn(async move {
        axum::serve(http_listener, router)
            .with_graceful_shutdown(async move { http_shutdown.started().await })
            .await
            .context("HTTP server")
    });
    if let Some(url) = &config.redis_url {
        let queue = Queue::redis(url, &config.run_id)
            .await
            .with_context(|| format!("connecting to Redis at {url}"))?;
        let worker_config = worker::WorkerConfig {
            replica_id: replica.clone(),
            concurrency: config.worker_concurrency,
            reclaim_idle: Duration::from_millis(config.reclaim_idle_ms),
            max_deliveries: 5,
        };
        tasks.spawn(worker::run(
            queue,
            scorer.clone(),
            worker_config,
            shutdown.clone(),
        ));
    }
    readiness.set_ready(true);
    tracing::info!(grpc = %bound.grpc, http = %bound.http, admin = %bound.admin, replica = %replica, "reward service ready");
    on_ready(bound);

    shutdown.started().await;
    readiness.set_ready(false);
    let grace = Duration::from_millis(config.shutdown_grace_ms);
    let drained = serve::drain(&mut tasks, grace).await;
    if !drained {
        tracing::warn!(
            ?grace,
            "shutdown grace period over; unfinished entries stay pending for redelivery"
        );
    }
    Ok(())
}
