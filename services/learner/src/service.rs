//! The `r1-learner` process: the GRPO loop against Redis, the gRPC `Learner`
//! service (status, weights for replicas without a shared volume) and the
//! admin server. It resumes from its latest checkpoint when there is one.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use candle_core::Device;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use r1_proto::pb;
use r1_proto::pb::learner_server::{Learner, LearnerServer};
use r1_proto::queue::Queue;
use r1_runtime::serve::{self, Listeners, Tasks};
use r1_runtime::{Readiness, Shutdown};
use tonic::service::Routes;
use tonic::{Request, Response, Status};

use crate::checkpoint::{self, TrainState};
use crate::folder::ModelFiles;
use crate::model::weights::{load_frozen, load_policy};
use crate::rl::{self, RlSettings, SharedProgress};
use crate::run_config::RunConfig;
use crate::train::Trainer;

#[derive(Debug, Clone, clap::Args)]
pub struct ServiceConfig {
    #[arg(long, env = "R1_LEARNER_REDIS_URL")]
    pub redis_url: String,
    #[arg(long, env = "R1_LEARNER_RUN_ID", default_value = "default")]
    pub run_id: String,
    /// Run configuration (TOML): task, [grpo], seed, checkpoint interval.
    #[arg(long, env = "R1_LEARNER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Starting policy (a model folder) when there is no checkpoint yet.
    #[arg(long, env = "R1_LEARNER_MODEL")]
    pub model: Option<PathBuf>,
    /// Weights (`weights/v{N}`) and checkpoints (`checkpoints/`) go here.
    #[arg(long, env = "R1_LEARNER_OUT", default_value = "learner")]
    pub out: PathBuf,
    #[arg(long, env = "R1_LEARNER_GRPC_ADDR", default_value = "0.0.0.0:50053")]
    pub grpc_addr: SocketAddr,
    #[arg(long, env = "R1_LEARNER_ADMIN_ADDR", default_value = "0.0.0.0:9092")]
    pub admin_addr: SocketAddr,
    /// Publish versions as `grpc://…` of this learner (replicas fetch the
    /// weights) instead of folder paths on a shared volume.
    #[arg(long, env = "R1_LEARNER_WEIGHTS_ENDPOINT")]
    pub weights_endpoint: Option<String>,
}

#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Bound {
    pub grpc: SocketAddr,
    pub admin: SocketAddr,
}

/// Files of a version folder, streamed by `FetchWeights`.
const WEIGHT_FILES: [&str; 5] = [
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "generation_config.json",
    "model.safetensors",
];
const CHUNK_BYTES: usize = 1 << 20;

struct GrpcLearner {
    progress: SharedProgress,
    weights_root: PathBuf,
}

#[tonic::async_trait]
impl Learner for GrpcLearner {
    async fn status(
        &self,
        _request: Request<pb::LearnerStatusRequest>,
    ) -> Result<Response<pb::LearnerStatus>, Status> {
        let p = self
            .progress
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        Ok(Response::new(pb::LearnerStatus {
            policy: p.policy.map(Into::into),
            step: p.step,
            stage: "grpo".into(),
            groups_accepted: p.counters.accepted,
            groups_rejected_stale: p.counters.stale,
            groups_duplicate: p.counters.duplicates,
        }))
    }

    type FetchWeightsStream =
        tokio_stream::wrappers::ReceiverStream<Result<pb::WeightsChunk, Status>>;

    async fn fetch_weights(
        &self,
        request: Request<pb::FetchWeightsRequest>,
    ) -> Result<Response<Self::FetchWeightsStream>, Status> {
        let current = self
            .progress
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .policy
            .clone();
        let Some(current) = current else {
            return Err(Status::unavailable("no policy version is published yet"));
        };
        let number = match request.into_inner().version {
            0 => current.number,
            n => n,
        };
        let dir = self.weights_root.join(format!("v{number}"));
        if !dir.join("model.safetensors").is_file() {
            return Err(Status::not_found(format!(
                "policy version {number} is not on this learner"
            )));
        }
        let policy = pb::PolicyVersion {
            number,
            ..current.into()
        };
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            for name in WEIGHT_FILES {
                let path = dir.join(name);
                let mut file = match tokio::fs::File::open(&path).await {
                    Ok(f) => f,
                    Err(e) => {
                        let _ = tx
                            .send(Err(Status::internal(format!("{}: {e}", path.display()))))
                            .await;
                        return;
                    }
                };
                let size = file.metadata().await.map(|m| m.len()).unwrap_or(0);
                let mut offset = 0u64;
                loop {
                    let mut data = vec![0u8; CHUNK_BYTES];
                    let n = match file.read(&mut data).await {
                        Ok(n) => n,
                        Err(e) => {
                            let _ = tx.send(Err(Status::internal(e.to_string()))).await;
                            return;
                        }
                    };
                    data.truncate(n);
                    let chunk = pb::WeightsChunk {
                        policy: Some(policy.clone()),
                        file: name.to_owned(),
                        file_size: size,
                        offset,
                        data,
                    };
                    // A failed send means the client left.
                    if tx.send(Ok(chunk)).await.is_err() {
                        return;
                    }
                    offset += n as u64;
                    if n == 0 || offset >= size {
                        break;
                    }
                }
            }
        });
        Ok(Response::new(tokio_stream::wrappers::ReceiverStream::new(
            rx,
        )))
    }
}

pub async fn run(
    config: ServiceConfig,
    shutdown: Shutdown,
    on_ready: impl FnOnce(Bound),
) -> anyhow::Result<()> {
    let run = match &config.config {
        Some(path) => RunConfig::load(path)?,
        None => RunConfig::default(),
    };
    let device = Device::Cpu;
    let checkpoint_root = config.out.join("checkpoints");
    let weights_root = config.out.join("weights");
    let (trainer, state, files, resumed) = match checkpoint::latest(&checkpoint_root) {
        Some(dir) => {
            let (trainer, state, files) = checkpoint::load(&dir, run.grpo.optim.clone(), &device)?;
            let resumed = rl::read_rl_checkpoint(&dir)?;
            tracing::info!(checkpoint = %dir.display(), step = state.step, version = state.policy_version, "resuming");
            (trainer, state, files, Some(resumed))
        }
        None => {
            let model = config
                .model
                .clone()
                .context("no checkpoint to resume from: set --model to the starting policy")?;
            let policy = load_policy(&model, &device)?;
            let files = ModelFiles::read(&model)?;
            let state = TrainState {
                stage: "grpo".into(),
                step: 0,
                policy_version: 1,
                data_cursor: 0,
                seed: run.seed,
            };
            (
                Trainer::new(policy, run.grpo.optim.clone())?,
                state,
                files,
                None,
            )
        }
    };
    let reference = if run.grpo.kl_beta > 0.0 {
        let model = config
            .model
            .clone()
            .context("the KL penalty needs --model (the reference policy)")?;
        Some(Arc::new(load_frozen(&model, &device)?))
    } else {
        None
    };
    let queue = Queue::redis(&config.redis_url, &config.run_id)
        .await
        .with_context(|| format!("connecting to Redis at {}", config.redis_url))?;
    // Status reports where a resumed run stands from the first request on.
    let progress: SharedProgress = Arc::new(std::sync::Mutex::new(rl::Progress {
        step: state.step,
        policy: None,
        counters: resumed.as_ref().map(|r| r.counters).unwrap_or_default(),
    }));

    let mut registry = Registry::default();
    let step_gauge = Gauge::<i64>::default();
    let version_gauge = Gauge::<i64>::default();
    let accepted = Gauge::<i64>::default();
    {
        let r = registry.sub_registry_with_prefix("r1_learner");
        r.register("step", "GRPO steps done", step_gauge.clone());
        r.register(
            "policy_version",
            "Latest published policy version",
            version_gauge.clone(),
        );
        r.register(
            "groups_accepted",
            "Scored groups trained on",
            accepted.clone(),
        );
    }
    let listeners = Listeners::bind(config.grpc_addr, config.admin_addr).await?;
    let bound = Bound {
        grpc: listeners.grpc_addr,
        admin: listeners.admin_addr,
    };
    let readiness = Readiness::default();
    let mut tasks = Tasks::new();
    let service = LearnerServer::new(GrpcLearner {
        progress: progress.clone(),
        weights_root: weights_root.clone(),
    });
    listeners.serve(
        &mut tasks,
        Routes::new(service),
        registry,
        readiness.clone(),
        &shutdown,
    );
    readiness.set_ready(true);
    on_ready(bound);

    let settings = RlSettings {
        run_id: config.run_id.clone(),
        seed: run.seed,
        grpo: run.grpo.clone(),
        preamble: run.task.preamble.clone(),
        difficulty: run.task.rl.clone(),
        language: (!run.task.language.is_empty()).then(|| run.task.language.clone()),
        weights_root,
        weights_endpoint: config.weights_endpoint.clone(),
        checkpoint_root,
        checkpoint_every: run.runtime.checkpoint_every,
    };
    let result = rl::run(
        queue,
        trainer,
        files,
        settings,
        state,
        resumed,
        reference,
        progress.clone(),
        shutdown.clone(),
        |step, stats| {
            step_gauge.set(step as i64);
            version_gauge.set(step as i64 + 1);
            accepted.inc_by(stats.groups_used as i64);
            tracing::info!(
                step,
                reward = stats.reward_mean,
                accuracy = stats.accuracy,
                loss = stats.loss,
                seconds = stats.seconds,
                "grpo step"
            );
        },
    )
    .await;
    let finished = result.is_ok() && !shutdown.is_started();
    if let Err(e) = &result {
        tracing::error!(error = %e, "the GRPO loop failed");
    }
    if finished {
        let p = progress.lock().unwrap_or_else(|p| p.into_inner()).clone();
        tracing::info!(step = p.step, ?p.counters, "training finished");
        println!(
            "{}",
            serde_json::json!({ "event": "finished", "step": p.step, "counters": p.counters })
        );
    }
    readiness.set_ready(false);
    shutdown.begin();
    serve::drain(&mut tasks, Duration::MAX).await;
    result.map(drop)
}
