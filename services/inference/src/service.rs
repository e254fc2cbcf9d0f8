//! The `r1-inference` process: the queue worker (with Redis), the gRPC
//! `Inference` service and the admin server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use prometheus_client::registry::Registry;
use r1_proto::domain::{Prompt, SamplingParams};
use r1_proto::pb;
use r1_proto::pb::inference_server::{Inference, InferenceServer};
use r1_proto::queue::{PROMPTS, Queue};
use r1_runtime::serve::{self, Listeners, Tasks};
use r1_runtime::{Readiness, Shutdown};
use tokio::sync::watch;
use tonic::service::Routes;
use tonic::{Request, Response, Status};

use crate::engine::{Engine, EngineError, GenerateParams};
use crate::metrics::Metrics;
use crate::worker::{self, WorkerConfig};

#[derive(Debug, Clone, clap::Args)]
pub struct ServiceConfig {
    #[arg(long, env = "R1_INFERENCE_GRPC_ADDR", default_value = "0.0.0.0:50052")]
    pub grpc_addr: SocketAddr,
    #[arg(long, env = "R1_INFERENCE_ADMIN_ADDR", default_value = "0.0.0.0:9091")]
    pub admin_addr: SocketAddr,
    /// Redis URL; when set, samples the prompt jobs of the run and follows
    /// its policy versions.
    #[arg(long, env = "R1_INFERENCE_REDIS_URL")]
    pub redis_url: Option<String>,
    #[arg(long, env = "R1_INFERENCE_RUN_ID", default_value = "default")]
    pub run_id: String,
    /// Name of this replica in the consumer group (default: host-pid).
    #[arg(long, env = "R1_INFERENCE_REPLICA_ID")]
    pub replica_id: Option<String>,
    /// Model folder to serve before (or without) a published policy.
    #[arg(long, env = "R1_INFERENCE_MODEL")]
    pub model: Option<PathBuf>,
    /// Prompt jobs sampled at once.
    #[arg(long, env = "R1_INFERENCE_JOBS_IN_FLIGHT", default_value_t = 16)]
    pub jobs_in_flight: usize,
    /// Jobs pending this long on a dead replica are taken over.
    #[arg(long, env = "R1_INFERENCE_RECLAIM_IDLE_MS", default_value_t = 60_000)]
    pub reclaim_idle_ms: u64,
    /// Where weights fetched over gRPC are kept.
    #[arg(
        long,
        env = "R1_INFERENCE_WEIGHTS_CACHE",
        default_value = "/tmp/r1-weights"
    )]
    pub weights_cache: PathBuf,
    #[arg(long, env = "R1_INFERENCE_SHUTDOWN_GRACE_MS", default_value_t = 30_000)]
    pub shutdown_grace_ms: u64,
}

impl ServiceConfig {
    fn replica_id(&self) -> String {
        self.replica_id.clone().unwrap_or_else(|| {
            let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "inference".into());
            format!("{host}-{}", std::process::id())
        })
    }
}

#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Bound {
    pub grpc: SocketAddr,
    pub admin: SocketAddr,
}

struct GrpcInference {
    serving: watch::Receiver<Arc<Engine>>,
    replica: String,
    metrics: Metrics,
    queue: Option<Queue>,
}

fn engine_status(e: EngineError) -> Status {
    match e {
        EngineError::EmptyPrompt | EngineError::TooLong { .. } => {
            Status::invalid_argument(e.to_string())
        }
        EngineError::MissingFile { .. } | EngineError::Invalid { .. } | EngineError::Engine(_) => {
            Status::internal(e.to_string())
        }
    }
}

#[tonic::async_trait]
impl Inference for GrpcInference {
    async fn generate(
        &self,
        request: Request<pb::GenerateRequest>,
    ) -> Result<Response<pb::GenerateResponse>, Status> {
        let pb::GenerateRequest {
            prompt,
            n,
            sampling,
        } = request.into_inner();
        let prompt = Prompt::try_from(
            prompt.ok_or_else(|| Status::invalid_argument("field `prompt` is required"))?,
        )
        .map_err(|e| Status::from(e.within("prompt")))?;
        let sampling = SamplingParams::try_from(
            sampling.ok_or_else(|| Status::invalid_argument("field `sampling` is required"))?,
        )
        .map_err(|e| Status::from(e.within("sampling")))?;
        if !(1..=256).contains(&n) {
            return Err(Status::invalid_argument(format!(
                "field `n` is invalid: {n} is not in [1, 256]"
            )));
        }
        let engine = self.serving.borrow().clone();
        let ids = crate::prompt::encode(engine.tokenizer(), &prompt)
            .map_err(|e| Status::invalid_argument(format!("field `prompt` is invalid: {e}")))?;
        let params = GenerateParams {
            temperature: f64::from(sampling.temperature),
            top_p: f64::from(sampling.top_p),
            top_k: sampling.top_k.map(|k| k as usize),
            max_new_tokens: sampling.max_new_tokens as usize,
            stop: sampling.stop,
            seed: sampling.seed,
        };
        let completions = engine
            .generate(&ids, n as usize, &params)
            .await
            .map_err(engine_status)?;
        let tokens: usize = completions.iter().map(|c| c.token_ids.len()).sum();
        self.metrics.tokens_generated.inc_by(tokens as u64);
        Ok(Response::new(pb::GenerateResponse {
            prompt_token_ids: ids,
            completions: completions.into_iter().map(Into::into).collect(),
            policy_version: engine.version(),
        }))
    }

    async fn status(
        &self,
        _request: Request<pb::InferenceStatusRequest>,
    ) -> Result<Response<pb::InferenceStatus>, Status> {
        let engine = self.serving.borrow().clone();
        let queue_lag = match &self.queue {
            Some(q) => q
                .producer(&PROMPTS)
                .backlog(worker::GROUP)
                .await
                .map(|b| b.lag)
                .unwrap_or(0),
            None => 0,
        };
        Ok(Response::new(pb::InferenceStatus {
            replica_id: self.replica.clone(),
            model: engine.dir().display().to_string(),
            policy_version: engine.version(),
            jobs_in_flight: self.metrics.jobs_in_flight.get().max(0) as u32,
            queue_lag,
        }))
    }
}

pub async fn run(
    config: ServiceConfig,
    shutdown: Shutdown,
    on_ready: impl FnOnce(Bound),
) -> anyhow::Result<()> {
    if config.jobs_in_flight == 0 {
        anyhow::bail!("--jobs-in-flight must be at least 1");
    }
    let metrics = Metrics::default();
    let mut registry = Registry::default();
    metrics.register(&mut registry);
    let replica = config.replica_id();
    let queue = match &config.redis_url {
        Some(url) => Some(
            Queue::redis(url, &config.run_id)
                .await
                .with_context(|| format!("connecting to Redis at {url}"))?,
        ),
        None => None,
    };
    // The first policy: the current published version, or --model.
    let engine = match (&queue, &config.model) {
        (Some(queue), model) => {
            let mut watch = queue.watch_policy().await?;
            match (watch.current(), model) {
                (Some(version), _) => worker::load(&version, &config.weights_cache).await?,
                (None, Some(dir)) => Engine::load(dir, 0).await?,
                (None, None) => {
                    tracing::info!("waiting for the learner to publish a policy");
                    let version = tokio::select! {
                        v = watch.wait_for(1) => v.context("policy announcements stopped")?,
                        () = shutdown.started() => return Ok(()),
                    };
                    worker::load(&version, &config.weights_cache).await?
                }
            }
        }
        (None, Some(dir)) => Engine::load(dir, 0).await?,
        (None, None) => anyhow::bail!("set --model, or --redis-url to serve the run's policy"),
    };
    let engine = Arc::new(engine);
    let (serving_tx, serving_rx) = watch::channel(engine.clone());
    let listeners = Listeners::bind(config.grpc_addr, config.admin_addr).await?;
    let bound = Bound {
        grpc: listeners.grpc_addr,
        admin: listeners.admin_addr,
    };
    let readiness = Readiness::default();
    let mut tasks = Tasks::new();
    let service = InferenceServer::new(GrpcInference {
        serving: serving_rx,
        replica: replica.clone(),
        metrics: metrics.clone(),
        queue: queue.clone(),
    });
    listeners.serve(
        &mut tasks,
        Routes::new(service),
        registry,
        readiness.clone(),
        &shutdown,
    );
    if let Some(queue) = queue {
        let worker_config = WorkerConfig {
            replica_id: replica.clone(),
            jobs_in_flight: config.jobs_in_flight,
            reclaim_idle: Duration::from_millis(config.reclaim_idle_ms),
            max_deliveries: 5,
            weights_cache: config.weights_cache.clone(),
        };
        tasks.spawn(worker::run(
            queue,
            engine.clone(),
            worker_config,
            metrics.clone(),
            Some(serving_tx),
            shutdown.clone(),
        ));
    }
    readiness.set_ready(true);
    tracing::info!(grpc = %bound.grpc, admin = %bound.admin, replica = %replica, version = engine.version(), "inference service ready");
    on_ready(bound);
    shutdown.started().await;
    readiness.set_ready(false);
    let grace = Duration::from_millis(config.shutdown_grace_ms);
    if !serve::drain(&mut tasks, grace).await {
        tracing::warn!(
            ?grace,
            "shutdown grace period over; unfinished jobs stay pending for redelivery"
        );
    }
    Ok(())
}
