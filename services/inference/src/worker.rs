//! The queue worker: samples the prompt jobs of the run and appends groups
//! to the rollouts stream, tagged with the policy version that sampled them.
//!
//! It follows the learner: a new version is loaded in the background; the
//! worker then stops taking jobs, lets the jobs in flight finish on the old
//! version, and switches — so every group comes from one version. Jobs that
//! need a newer version than the loaded one wait for it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use r1_proto::domain::{Group, PolicyVersion, PromptJob};
use r1_proto::pb;
use r1_proto::queue::{Consumer, ConsumerConfig, PROMPTS, Queue, ROLLOUTS, Received};
use r1_runtime::Shutdown;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::engine::{Engine, GenerateParams};
use crate::metrics::Metrics;

/// Consumer group of the inference replicas on the prompts stream.
pub const GROUP: &str = "inference";

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub replica_id: String,
    /// Jobs sampled at once; the engine batches their sequences.
    pub jobs_in_flight: usize,
    pub reclaim_idle: Duration,
    pub max_deliveries: u64,
    /// Where weights fetched from a learner over gRPC are kept.
    pub weights_cache: PathBuf,
}

/// Loads policy versions as they are announced, newest first.
pub async fn follow_policy(
    queue: Queue,
    loaded_version: u64,
    cache: PathBuf,
    metrics: Metrics,
    tx: mpsc::Sender<Arc<Engine>>,
    shutdown: Shutdown,
) {
    let mut watch = match queue.watch_policy().await {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(error = %e, "cannot follow policy versions");
            return;
        }
    };
    let mut current = loaded_version;
    loop {
        let newest = watch.current().filter(|v| v.number > current);
        let version = match newest {
            Some(v) => v,
            None => tokio::select! {
                () = shutdown.started() => return,
                changed = watch.changed() => match changed {
                    Some(v) if v.number > current => v,
                    Some(_) => continue,
                    None => return,
                },
            },
        };
        let started = Instant::now();
        match load(&version, &cache).await {
            Ok(engine) => {
                metrics
                    .reload_seconds
                    .observe(started.elapsed().as_secs_f64());
                tracing::info!(
                    version = version.number,
                    seconds = started.elapsed().as_secs_f64(),
                    "policy loaded"
                );
                current = version.number;
                if tx.send(Arc::new(engine)).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::error!(version = version.number, error = %e, "cannot load policy version; waiting for the next one");
                current = version.number;
            }
        }
    }
}

/// Loads the weights a version points at: a folder, or a learner to fetch from.
pub async fn load(version: &PolicyVersion, cache: &std::path::Path) -> anyhow::Result<Engine> {
    let dir = if version.weights_uri.starts_with("grpc://")
        || version.weights_uri.starts_with("http://")
    {
        crate::fetch::fetch(version, cache).await?
    } else {
        PathBuf::from(&version.weights_uri)
    };
    Ok(Engine::load(&dir, version.number).await?)
}

enum Outcome {
    Sampled(Box<Group>),
    /// The job can never be sampled: it goes to the dead-letter stream.
    Invalid(String),
    /// Sampling failed; the job stays pending and is redelivered.
    Failed(String),
}

async fn sample(engine: Arc<Engine>, job: PromptJob, replica: String, metrics: Metrics) -> Outcome {
    let prompt_ids = match crate::prompt::encode(engine.tokenizer(), &job.prompt) {
        Ok(ids) => ids,
        Err(e) => return Outcome::Invalid(format!("prompt: {e}")),
    };
    let params = GenerateParams {
        temperature: f64::from(job.sampling.temperature),
        top_p: f64::from(job.sampling.top_p),
        top_k: job.sampling.top_k.map(|k| k as usize),
        max_new_tokens: job.sampling.max_new_tokens as usize,
        stop: job.sampling.stop.clone(),
        seed: job.sampling.seed,
    };
    match engine
        .generate(&prompt_ids, job.group_size as usize, &params)
        .await
    {
        Ok(completions) => {
            let tokens: usize = completions.iter().map(|c| c.token_ids.len()).sum();
            metrics.tokens_generated.inc_by(tokens as u64);
            metrics.batch_sequences.set(completions.len() as i64);
            Outcome::Sampled(Box::new(Group {
                job,
                prompt_token_ids: prompt_ids,
                completions,
                policy_version: engine.version(),
                sampler_id: replica,
            }))
        }
        Err(crate::engine::EngineError::TooLong { prompt, new, max }) => Outcome::Invalid(format!(
            "prompt of {prompt} tokens plus {new} new tokens exceeds the model's {max}"
        )),
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

/// Runs until shutdown starts, then finishes the jobs in flight (within the
/// caller's grace period); unfinished jobs stay pending for redelivery.
pub async fn run(
    queue: Queue,
    engine: Arc<Engine>,
    config: WorkerConfig,
    metrics: Metrics,
    serving: Option<tokio::sync::watch::Sender<Arc<Engine>>>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let consumer_config = ConsumerConfig {
        batch: config.jobs_in_flight.max(1),
        block: Duration::from_millis(200),
        reclaim_idle: config.reclaim_idle,
        max_deliveries: config.max_deliveries,
    };
    let mut consumer = queue
        .consumer(&PROMPTS, GROUP, &config.replica_id, consumer_config)
        .await?;
    let (tx, mut loaded) = mpsc::channel(1);
    tokio::spawn(follow_policy(
        queue.clone(),
        engine.version(),
        config.weights_cache.clone(),
        metrics.clone(),
        tx,
        shutdown.clone(),
    ));
    let mut current = engine;
    metrics.policy_version.set(current.version() as i64);
    let mut pending: Option<Arc<Engine>> = None;
    let mut in_flight: JoinSet<(Received<pb::PromptJob>, Outcome)> = JoinSet::new();
    // Valid jobs that need a newer policy than the loaded one.
    let mut waiting: Vec<(Received<pb::PromptJob>, PromptJob)> = Vec::new();
    let mut last_keep_alive = Instant::now();
    // Wakes an idle worker to keep the leases of waiting jobs.
    let mut keep_alive_timer =
        tokio::time::interval((config.reclaim_idle / 3).max(Duration::from_millis(1)));
    keep_alive_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tracing::info!(replica = %config.replica_id, version = current.version(), "sampling prompt jobs");

    loop {
        while let Ok(engine) = loaded.try_recv() {
            pending = Some(engine);
        }
        // Switch once the jobs of the old version are done.
        if in_flight.is_empty()
            && let Some(engine) = pending.take()
        {
            current = engine;
            if let Some(serving) = &serving {
                serving.send_replace(current.clone());
            }
            metrics.policy_version.set(current.version() as i64);
            tracing::info!(version = current.version(), "switched policy");
        }
        // Start waiting jobs the loaded version can serve.
        if pending.is_none() {
            let (ready, still): (Vec<_>, Vec<_>) = waiting
                .drain(..)
                .partition(|(_, job)| job.min_policy_version <= current.version());
            waiting = still;
            for (received, job) in ready {
                in_flight.spawn(start(received, job, &current, &config, &metrics));
            }
        }
        if last_keep_alive.elapsed() > config.reclaim_idle / 3 {
            let ids: Vec<_> = waiting.iter().map(|(r, _)| r.id.clone()).collect();
            if let Err(e) = consumer.keep_alive(&ids).await {
                tracing::warn!(error = %e, "keep-alive failed");
            }
            last_keep_alive = Instant::now();
        }
        metrics.jobs_in_flight.set(in_flight.len() as i64);

        if shutdown.is_started() {
            break;
        }
        let room = config
            .jobs_in_flight
            .saturating_sub(in_flight.len() + waiting.len());
        if room > 0 && pending.is_none() {
            match consumer.next_up_to(room).await {
                Ok(batch) => {
                    for received in batch {
                        match PromptJob::try_from(received.message.clone()) {
                            Err(e) => {
                                let reason = format!("invalid prompt job: {e}");
                                if let Err(e) = consumer.reject(&received, reason).await {
                                    tracing::error!(error = %e, "dead-lettering failed");
                                }
                            }
                            Ok(job) if job.min_policy_version > current.version() => {
                                waiting.push((received, job))
                            }
                            Ok(job) => {
                                in_flight.spawn(start(received, job, &current, &config, &metrics));
                            }
                        }
                    }
                }
                Err(e) => tracing::error!(error = %e, "reading the prompts stream failed"),
            }
        }
        // Hand off whatever finished; wait for something when nothing can be read.
        let idle = room == 0 || pending.is_some();
        loop {
            let next = if idle && !in_flight.is_empty() {
                tokio::select! {
                    done = in_flight.join_next() => done,
                    engine = loaded.recv(), if pending.is_none() => {
                        pending = engine;
                        None
                    }
                    () = shutdown.started() => None,
                }
            } else if idle {
                tokio::select! {
                    engine = loaded.recv() => { pending = engine; }
                    () = shutdown.started() => {}
                    _ = keep_alive_timer.tick() => {}
                }
                None
            } else {
                in_flight.try_join_next()
            };
            let Some(done) = next else { break };
            finish(&queue, &consumer, &metrics, done).await;
            if !idle {
                continue;
            }
            break;
        }
    }
    // Shutdown: finish what is in flight; waiting jobs stay pending.
    while let Some(done) = in_flight.join_next().await {
        finish(&queue, &consumer, &metrics, done).await;
    }
    tracing::info!("inference worker stopped");
    Ok(())
}

fn start(
    received: Received<pb::PromptJob>,
    job: PromptJob,
    engine: &Arc<Engine>,
    config: &WorkerConfig,
    metrics: &Metrics,
) -> impl std::future::Future<Output = (Received<pb::PromptJob>, Outcome)> + Send + 'static {
    let (engine, replica, metrics) = (engine.clone(), config.replica_id.clone(), metrics.clone());
    async move {
        let outcome = sample(engine, job, replica, metrics).await;
        (received, outcome)
    }
}

async fn finish(
    queue: &Queue,
    consumer: &Consumer<pb::PromptJob>,
    metrics: &Metrics,
    done: Result<(Received<pb::PromptJob>, Outcome), tokio::task::JoinError>,
) {
    let Ok((received, outcome)) = done else {
        tracing::error!("a sampling task panicked; its job will be redelivered");
        return;
    };
    let result = match outcome {
        Outcome::Sampled(group) => {
            let wire = pb::Group::from(*group);
            let out = consumer
                .complete(
                    std::slice::from_ref(&received.id),
                    &[queue.outgoing(&ROLLOUTS, &wire)],
                )
                .await;
            if out.is_ok() {
                metrics.groups_sampled.inc();
            }
            out
        }
        Outcome::Invalid(reason) => consumer.reject(&received, reason).await,
        Outcome::Failed(reason) => {
            metrics.jobs_failed.inc();
            tracing::warn!(id = %received.id, %reason, "sampling failed; the job will be redelivered");
            Ok(())
        }
    };
    if let Err(e) = result {
        tracing::error!(error = %e, "handing off a group failed; the job will be redelivered");
    }
}
