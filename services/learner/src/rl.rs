//! The GRPO stage as the learner runs it against the queue: it feeds prompt
//! jobs (at most a few policy versions ahead), collects scored groups
//! (deduplicated by group id, stale ones rejected), trains, and publishes
//! every new policy version. The same loop serves `r1 train` (embedded
//! queue, in one process) and the `r1-learner` service (Redis).
//!
//! Scored groups are acknowledged only once a checkpoint covers them, so a
//! crash loses nothing: unacknowledged groups are delivered again to the
//! restarted learner, which resumes from that checkpoint.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use r1_proto::domain::{
    PolicyVersion, Prompt, PromptContent, PromptFormat, PromptJob, SamplingParams, ScoredGroup,
    Task, TaskKind,
};
use r1_proto::pb;
use r1_proto::queue::{ConsumerConfig, EntryId, PROMPTS, Queue, SCORED};
use serde::{Deserialize, Serialize};

use crate::checkpoint::{self, TrainState};
use crate::folder::ModelFiles;
use crate::model::Llama;
use crate::tasks::{Difficulty, ProblemStream, Split};
use crate::template::r1_prompt;
use crate::train::{GrpoConfig, GrpoStats, Sequence, TrainGroup, Trainer};

/// Consumer group of the learner on the scored stream.
pub const GROUP: &str = "learner";

/// Salt of the RL stage's problem stream.
const RL_STREAM: u64 = 0x5EED_0000_0000_0001;

#[derive(Debug, Clone)]
pub struct RlSettings {
    pub run_id: String,
    pub seed: u64,
    pub grpo: GrpoConfig,
    pub preamble: String,
    pub difficulty: Difficulty,
    /// Target language of the reasoning for the language reward.
    pub language: Option<String>,
    /// New policy versions are written here as `v{N}/`.
    pub weights_root: PathBuf,
    /// How samplers reach the weights: `None` publishes the folder path
    /// (shared volume); `Some("grpc://host:port")` the learner's address.
    pub weights_endpoint: Option<String>,
    pub checkpoint_root: PathBuf,
    pub checkpoint_every: u64,
}

/// Counters the learner keeps about the groups it received.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupCounters {
    pub jobs_issued: u64,
    pub accepted: u64,
    pub duplicates: u64,
    pub stale: u64,
    pub invalid: u64,
}

/// What the learner has done, shared with its status endpoint.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub step: u64,
    pub policy: Option<PolicyVersion>,
    pub counters: GroupCounters,
}

pub type SharedProgress = Arc<Mutex<Progress>>;

/// Extra state saved in checkpoints of the RL stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RlCheckpoint {
    pub counters: GroupCounters,
    /// Ids of every group used so far.
    pub seen: Vec<String>,
    /// Job ids issued and not yet answered, with their step.
    pub outstanding: Vec<(String, u64)>,
    /// Groups issued for each step not yet trained (dynamic sampling);
    /// steps missing here have `prompts_per_step`.
    #[serde(default)]
    pub batch_sizes: BTreeMap<u64, usize>,
    /// Recent share of groups with a learning signal.
    #[serde(default = "all_informative")]
    pub informative_share: f64,
}

fn all_informative() -> f64 {
    1.0
}

impl Default for RlCheckpoint {
    /// The state of a stage that has not started.
    fn default() -> Self {
        Self {
            counters: GroupCounters::default(),
            seen: Vec::new(),
            outstanding: Vec::new(),
            batch_sizes: BTreeMap::new(),
            informative_share: all_informative(),
        }
    }
}

/// Weight of the latest step in the running share of informative groups.
const INFORMATIVE_SMOOTHING: f64 = 0.3;

fn hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Writes a policy version's folder and announces it.
pub async fn publish(
    queue: &Queue,
    files: &ModelFiles,
    trainer_policy: &crate::model::Policy,
    settings: &RlSettings,
    number: u64,
) -> anyhow::Result<PolicyVersion> {
    let dir = settings.weights_root.join(format!("v{number}"));
    if !dir.join("model.safetensors").is_file() {
        files.write(&dir, trainer_policy)?;
    }
    let checksum = {
        use sha2::Digest;
        let bytes = std::fs::read(dir.join("model.safetensors"))?;
        hex::encode(sha2::Sha256::digest(&bytes))
    };
    let weights_uri = match &settings.weights_endpoint {
        Some(endpoint) => endpoint.clone(),
        None => std::fs::canonicalize(&dir)?.display().to_string(),
    };
    let version = PolicyVersion {
        number,
        weights_uri,
        checksum,
    };
    queue.publish_policy(&version).await?;
    Ok(version)
}

struct Feeder {
    stream: ProblemStream,
    settings: RlSettings,
    /// job id → (gold answer, step)
    outstanding: VecDeque<(String, u64)>,
    issued_for_step: u64,
    replacements: u64,
    /// Groups issued for each step not yet trained.
    batch_sizes: BTreeMap<u64, usize>,
    informative_share: f64,
}

impl Feeder {
    fn job(&mut self, step: u64, index: usize, min_version: u64, id: String) -> PromptJob {
        let problem = self
            .stream
            .next()
            .unwrap_or_else(|| unreachable!("problem streams are endless"));
        let g = &self.settings.grpo;
        PromptJob {
            prompt: Prompt {
                content: PromptContent::Text(r1_prompt(&self.settings.preamble, &problem.question)),
                format: PromptFormat::Raw,
            },
            task: Task {
                kind: TaskKind::Math {
                    gold_answer: problem.answer.to_string(),
                },
                language: self.settings.language.clone(),
                reward_profile: None,
            },
            group_size: g.group_size,
            sampling: SamplingParams {
                temperature: g.temperature,
                top_p: g.top_p,
                top_k: None,
                max_new_tokens: g.max_new_tokens,
                stop: Vec::new(),
                seed: self.settings.seed ^ hash(&id) ^ (step << 32) ^ index as u64,
            },
            min_policy_version: min_version,
            run_id: self.settings.run_id.clone(),
            id,
        }
    }
}

/// Runs GRPO steps until `settings.grpo.steps` are done. `state` is where
/// training stands (from a checkpoint when resuming); `base_version` is the
/// version of the policy in `trainer` at `state.step == 0`.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    queue: Queue,
    mut trainer: Trainer,
    files: ModelFiles,
    settings: RlSettings,
    mut state: TrainState,
    resumed: Option<RlCheckpoint>,
    reference: Option<Arc<Llama>>,
    progress: SharedProgress,
    shutdown: r1_runtime::Shutdown,
    mut on_step: impl FnMut(u64, &GrpoStats) + Send,
) -> anyhow::Result<Trainer> {
    let g = settings.grpo.clone();
    let pad = files
        .config
        .pad_token_id
        .or(files.config.eos_token_id)
        .unwrap_or(0);
    let resumed = resumed.unwrap_or_default();
    let mut counters = resumed.counters;
    let mut seen: HashSet<String> = resumed.seen.into_iter().collect();
    let mut version = state.policy_version.max(1);
    let published = publish(&queue, &files, trainer.policy(), &settings, version).await?;
    progress.lock().unwrap_or_else(|p| p.into_inner()).policy = Some(published);

    let mut feeder = Feeder {
        // Another stream than the cold start's, even for the same difficulty.
        stream: ProblemStream::new(
            settings.difficulty.clone(),
            settings.seed ^ RL_STREAM,
            Split::Train,
        )
        .at(state.data_cursor),
        settings: settings.clone(),
        outstanding: resumed.outstanding.into_iter().collect(),
        issued_for_step: state.step + 1,
        replacements: 0,
        batch_sizes: resumed.batch_sizes,
        informative_share: resumed.informative_share,
    };
    // Jobs issued before a restart are still in the queue; issue the rest.
    if let Some(max_step) = feeder.outstanding.iter().map(|(_, s)| *s).max() {
        feeder.issued_for_step = max_step + 1;
    } else {
        feeder.issued_for_step = state.step;
    }
    // An earlier incarnation may have issued jobs after its last checkpoint:
    // those are in the stream already and must not be sampled twice.
    let already_issued: HashSet<String> = if state.step > 0 {
        queue
            .entries(&PROMPTS)
            .await?
            .into_iter()
            .map(|(_, job)| job.id)
            .collect()
    } else {
        HashSet::new()
    };
    let producer = queue.producer(&PROMPTS);
    let mut scored = queue
        .consumer(
            &SCORED,
            GROUP,
            &format!("{}-learner", settings.run_id),
            ConsumerConfig {
                batch: 64,
                block: Duration::from_millis(200),
                // The learner holds groups until a checkpoint covers them.
                reclaim_idle: Duration::from_secs(7 * 24 * 3600),
                max_deliveries: 1_000,
            },
        )
        .await?;
    let mut held: Vec<EntryId> = Vec::new();
    let mut ready: Vec<ScoredGroup> = Vec::new();
    // Entries delivered to an earlier incarnation of this learner come first.
    let mut first_read = true;

    while state.step < g.steps && !shutdown.is_started() {
        // Issue jobs up to `max_versions_ahead` steps beyond the current one.
        let last_step = (state.step + g.max_versions_ahead).min(g.steps - 1);
        while feeder.issued_for_step <= last_step {
            let step = feeder.issued_for_step;
            let step_version = version + (step - state.step);
            let min_version = step_version.saturating_sub(g.max_staleness).max(1);
            let prompts = g.prompts_for(feeder.informative_share);
            feeder.batch_sizes.insert(step, prompts);
            for index in 0..prompts {
                let id = format!("{}-s{step}-p{index}", settings.run_id);
                let job = feeder.job(step, index, min_version, id.clone());
                if !already_issued.contains(&id) {
                    producer.append(&pb::PromptJob::from(job)).await?;
                }
                feeder.outstanding.push_back((id, step));
                counters.jobs_issued += 1;
            }
            feeder.issued_for_step += 1;
        }

        // Collect scored groups for this step.
        let wanted = feeder
            .batch_sizes
            .get(&state.step)
            .copied()
            .unwrap_or(g.prompts_per_step);
        while ready.len() < wanted && !shutdown.is_started() {
            let batch = if first_read {
                first_read = false;
                scored.claim_pending().await?
            } else {
                tokio::select! {
                    batch = scored.next() => batch?,
                    () = shutdown.started() => break,
                }
            };
            for received in batch {
                let id = received
                    .message
                    .group
                    .as_ref()
                    .and_then(|g| g.job.as_ref())
                    .map(|j| j.id.clone());
                let group = match ScoredGroup::try_from(received.message.clone()) {
                    Ok(group) => group,
                    Err(e) => {
                        counters.invalid += 1;
                        scored
                            .reject(&received, format!("invalid scored group: {e}"))
                            .await?;
                        continue;
                    }
                };
                let id = id.unwrap_or_default();
                if seen.contains(&id) || ready.iter().any(|r| r.group.job.id == id) {
                    counters.duplicates += 1;
                    held.push(received.id);
                    continue;
                }
                if group.group.policy_version + g.max_staleness < version {
                    // Too old to train on: answer the job again with the current policy.
                    counters.stale += 1;
                    scored.ack(&[received.id]).await?;
                    feeder.outstanding.retain(|(o, _)| *o != id);
                    feeder.replacements += 1;
                    let replacement = format!("{id}-r{}", feeder.replacements);
                    let job = feeder.job(state.step, 0, version, replacement.clone());
                    producer.append(&pb::PromptJob::from(job)).await?;
                    feeder.outstanding.push_back((replacement, state.step));
                    counters.jobs_issued += 1;
                    continue;
                }
                counters.accepted += 1;
                feeder.outstanding.retain(|(o, _)| *o != id);
                held.push(received.id);
                ready.push(group);
            }
        }

        if shutdown.is_started() {
            // Groups not covered by a checkpoint stay unacknowledged and are
            // delivered again to the next learner.
            tracing::info!(step = state.step, "shutting down before the next update");
            break;
        }
        // One update.
        let batch: Vec<ScoredGroup> = ready.drain(..wanted).collect();
        feeder.batch_sizes.remove(&state.step);
        for group in &batch {
            seen.insert(group.group.job.id.clone());
        }
        let train_groups: Vec<TrainGroup> = batch.iter().map(to_train_group).collect();
        let total_steps = g.steps;
        let grpo = g.clone();
        let reference = reference.clone();
        let (returned, stats) = tokio::task::spawn_blocking(move || {
            let stats =
                trainer.grpo_step(&train_groups, &grpo, reference.as_deref(), pad, total_steps);
            (trainer, stats)
        })
        .await?;
        trainer = returned;
        let stats = stats?;
        let groups = (stats.groups_used + stats.groups_dropped_uniform).max(1);
        feeder.informative_share += INFORMATIVE_SMOOTHING
            * (stats.groups_used as f64 / groups as f64 - feeder.informative_share);
        state.step += 1;
        version += 1;
        state.policy_version = version;
        state.data_cursor = feeder.stream.cursor();
        let published = publish(&queue, &files, trainer.policy(), &settings, version).await?;
        {
            let mut p = progress.lock().unwrap_or_else(|p| p.into_inner());
            p.step = state.step;
            p.policy = Some(published);
            p.counters = counters;
        }
        on_step(state.step, &stats);

        if state.step.is_multiple_of(settings.checkpoint_every.max(1)) || state.step == g.steps {
            let extra = RlCheckpoint {
                counters,
                seen: seen.iter().cloned().collect(),
                outstanding: feeder.outstanding.iter().cloned().collect(),
                batch_sizes: feeder.batch_sizes.clone(),
                informative_share: feeder.informative_share,
            };
            let dir = checkpoint::save(&settings.checkpoint_root, &files, &trainer, &state)?;
            let path = dir.join("rl.json");
            std::fs::write(&path, serde_json::to_vec(&extra)?)?;
            // Everything trained on so far is covered by the checkpoint.
            scored.ack(&held).await?;
            held.clear();
        }
    }
    Ok(trainer)
}

/// Reads the RL state saved next to a checkpoint.
pub fn read_rl_checkpoint(dir: &std::path::Path) -> anyhow::Result<RlCheckpoint> {
    let path = dir.join("rl.json");
    match std::fs::read(&path) {
        Ok(bytes) => Ok(serde_json::from_slice(&bytes)?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RlCheckpoint::default()),
        Err(e) => Err(anyhow::anyhow!("{}: {e}", path.display())),
    }
}

fn to_train_group(scored: &ScoredGroup) -> TrainGroup {
    let group = &scored.group;
    let prompt = &group.prompt_token_ids;
    TrainGroup {
        sequences: group
            .completions
            .iter()
            .map(|c| Sequence {
                tokens: prompt.iter().chain(&c.token_ids).copied().collect(),
                prompt_len: prompt.len(),
            })
            .collect(),
        rewards: scored.scores.iter().map(|s| s.total).collect(),
        correct: scored
            .scores
            .iter()
            .map(|s| {
                s.components
                    .iter()
                    .any(|c| c.name == "accuracy" && c.value >= 1.0)
            })
            .collect(),
        sampler_logprobs: group
            .completions
            .iter()
            .map(|c| c.logprobs.clone())
            .collect(),
    }
}
