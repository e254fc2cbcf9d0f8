//! The GRPO stage in one process: the embedded queue links inference and
//! reward workers, run as tasks with the services' own code, to the
//! learner's GRPO loop.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use indicatif::ProgressBar;
use r1_inference::engine::Engine;
use r1_learner::checkpoint::TrainState;
use r1_learner::folder::ModelFiles;
use r1_learner::model::weights::load_frozen;
use r1_learner::rl::{self, RlSettings, SharedProgress};
use r1_learner::run_config::RunConfig;
use r1_learner::train::Trainer;
use r1_proto::queue::Queue;
use r1_reward::config::RewardConfig;
use r1_reward::metrics::Metrics as RewardMetrics;
use r1_reward::scoring::Scorer;
use r1_runtime::Shutdown;
use serde_json::json;

use super::metrics::MetricsLog;

/// What the queue and the learner counted during the GRPO stage.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GrpoSummary {
    pub policy_version: u64,
    pub jobs_issued: u64,
    pub groups_accepted: u64,
    pub groups_duplicate: u64,
    pub groups_stale: u64,
    pub groups_invalid: u64,
    /// Entries appended to the rollouts and scored streams.
    pub rollouts: u64,
    pub scored: u64,
    pub dead_letters: u64,
}

/// Runs every GRPO step on the policy in `trainer`; returns the trained one.
pub async fn run(
    trainer: Trainer,
    files: &ModelFiles,
    config: &RunConfig,
    out: &Path,
    queue: Queue,
    log: &mut MetricsLog,
    bar: &ProgressBar,
) -> anyhow::Result<(Trainer, GrpoSummary)> {
    let reward_config: RewardConfig = if config.reward.is_empty() {
        RewardConfig::default()
    } else {
        let config: RewardConfig = config
            .reward
            .clone()
            .try_into()
            .map_err(|e| anyhow::anyhow!("reward: {e}"))?;
        config
            .validate()
            .map_err(|e| anyhow::anyhow!("reward.{e}"))?;
        config
    };
    let mut reward_config = reward_config;
    // Completions continue a prompt that opened <think>.
    reward_config.format.prompt_opens_think = true;
    let shutdown = Shutdown::default();
    let weights_root = out.join("weights");
    let settings = RlSettings {
        run_id: queue.run_id().to_owned(),
        seed: config.seed,
        grpo: config.grpo.clone(),
        preamble: config.task.preamble.clone(),
        difficulty: config.task.rl.clone(),
        language: (!config.task.language.is_empty()).then(|| config.task.language.clone()),
        weights_root: weights_root.clone(),
        weights_endpoint: None,
        checkpoint_root: out.join("checkpoints"),
        checkpoint_every: config.runtime.checkpoint_every,
    };
    // Version 1 is the starting policy; the samplers load it first.
    rl::publish(&queue, files, trainer.policy(), &settings, 1).await?;
    let mut workers = tokio::task::JoinSet::new();
    let scorer = Arc::new(Scorer::new(reward_config, RewardMetrics::default()));
    for i in 0..config.runtime.reward_workers {
        let worker = r1_reward::worker::WorkerConfig {
            replica_id: format!("reward-{i}"),
            concurrency: 8,
            reclaim_idle: Duration::from_secs(60),
            max_deliveries: 5,
        };
        workers.spawn(r1_reward::worker::run(
            queue.clone(),
            scorer.clone(),
            worker,
            shutdown.clone(),
        ));
    }
    for i in 0..config.runtime.inference_workers {
        let engine = Arc::new(Engine::load(&weights_root.join("v1"), 1).await?);
        let worker = r1_inference::worker::WorkerConfig {
            replica_id: format!("inference-{i}"),
            jobs_in_flight: config.runtime.jobs_in_flight,
            reclaim_idle: Duration::from_secs(600),
            max_deliveries: 5,
            weights_cache: out.join("weights-cache"),
        };
        workers.spawn(r1_inference::worker::run(
            queue.clone(),
            engine,
            worker,
            r1_inference::metrics::Metrics::default(),
            None,
            shutdown.clone(),
        ));
    }
    let reference = if config.grpo.kl_beta > 0.0 {
        Some(Arc::new(load_frozen(
            &weights_root.join("v1"),
            &candle_core::Device::Cpu,
        )?))
    } else {
        None
    };
    let state = TrainState {
        stage: "grpo".into(),
        step: 0,
        policy_version: 1,
        data_cursor: 0,
        seed: config.seed,
    };
    let progress: SharedProgress = Default::default();
    let result = rl::run(
        queue.clone(),
        trainer,
        files.clone(),
        settings,
        state,
        None,
        reference,
        progress.clone(),
        Shutdown::default(),
        |step, stats| {
            let row = json!({
                "stage": "grpo", "step": step, "loss": stats.loss, "reward_mean": stats.reward_mean,
                "reward_std": stats.reward_std, "accuracy": stats.accuracy, "clip_fraction": stats.clip_fraction,
                "kl": stats.kl, "entropy": stats.entropy, "response_tokens": stats.response_tokens_mean,
                "logprob_mismatch": stats.logprob_mismatch, "groups_used": stats.groups_used,
                "groups_dropped_uniform": stats.groups_dropped_uniform, "grad_norm": stats.grad_norm,
                "lr": stats.lr, "step_seconds": stats.seconds, "tokens_per_second": stats.tokens_per_second(),
            });
            if let Err(e) = log.write(row) {
                tracing::error!(error = %e, "cannot write metrics.jsonl");
            }
            bar.set_message(format!("reward {:.2} acc {:.0}%", stats.reward_mean, stats.accuracy * 100.0));
            bar.inc(1);
        },
    )
    .await;
    shutdown.begin();
    while let Some(done) = workers.join_next().await {
        if let Ok(Err(e)) = done {
            tracing::warn!(error = %e, "a worker ended with an error");
        }
    }
    let trainer = result?;
    let p = progress.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let backend = queue.backend();
    let summary = GrpoSummary {
        policy_version: p.policy.map_or(0, |v| v.number),
        jobs_issued: p.counters.jobs_issued,
        groups_accepted: p.counters.accepted,
        groups_duplicate: p.counters.duplicates,
        groups_stale: p.counters.stale,
        groups_invalid: p.counters.invalid,
        rollouts: backend.len(&queue.key(&r1_proto::queue::ROLLOUTS)).await?,
        scored: backend.len(&queue.key(&r1_proto::queue::SCORED)).await?,
        dead_letters: backend.len(&queue.key(&r1_proto::queue::DEAD)).await?,
    };
    Ok((trainer, summary))
}
