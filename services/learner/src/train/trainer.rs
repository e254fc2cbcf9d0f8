//! One optimizer step of SFT or GRPO over a batch: micro-batched forward and
//! backward passes, gradient accumulation, clipping, the AdamW update.

use std::collections::HashMap;
use std::time::Instant;

use candle_core::{Result, Tensor};

use super::batch::{Batch, PackedBatch, Sequence};
use super::config::{GrpoConfig, OldPolicy, OptimConfig};
use super::loss::{Totals, advantages, grpo_loss, sft_loss};
use super::optim::{AdamW, clip_scale, global_norm};
use crate::model::{Llama, Policy};

/// A scored group, ready for a GRPO update.
#[derive(Debug, Clone)]
pub struct TrainGroup {
    /// Prompt + completion of each sample.
    pub sequences: Vec<Sequence>,
    pub rewards: Vec<f64>,
    /// Whether each completion's answer was correct (for metrics).
    pub correct: Vec<bool>,
    /// The sampler's per-token log-probs of each completion.
    pub sampler_logprobs: Vec<Vec<f32>>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SftStats {
    pub loss: f64,
    pub tokens: usize,
    pub grad_norm: f64,
    pub lr: f64,
    pub seconds: f64,
    /// Of `seconds`, the time spent clipping gradients and in AdamW.
    pub optimizer_seconds: f64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct GrpoStats {
    /// Loss, KL and entropy are those before the first update of the batch.
    pub loss: f64,
    pub reward_mean: f64,
    pub reward_std: f64,
    pub accuracy: f64,
    /// Share of tokens whose ratio was clipped, over every update.
    pub clip_fraction: f64,
    pub kl: f64,
    pub entropy: f64,
    pub response_tokens_mean: f64,
    /// Mean |sampler log-prob − learner log-prob| per completion token.
    pub logprob_mismatch: f64,
    pub groups_used: usize,
    pub groups_dropped_uniform: usize,
    pub tokens: usize,
    pub grad_norm: f64,
    pub lr: f64,
    pub seconds: f64,
}

impl GrpoStats {
    pub fn tokens_per_second(&self) -> f64 {
        self.tokens as f64 / self.seconds.max(1e-9)
    }
}

/// The policy under training and its optimizer.
#[derive(Debug)]
pub struct Trainer {
    policy: Policy,
    optimizer: AdamW,
    optim: OptimConfig,
    step: u64,
}

impl Trainer {
    pub fn new(policy: Policy, optim: OptimConfig) -> Result<Self> {
        let optimizer = AdamW::new(policy.sorted_vars(), optim.adamw())?;
        Ok(Self {
            policy,
            optimizer,
            optim,
            step: 0,
        })
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn into_policy(self) -> Policy {
        self.policy
    }

    /// Optimizer steps taken.
    pub fn step(&self) -> u64 {
        self.step
    }

    pub fn optimizer(&self) -> &AdamW {
        &self.optimizer
    }

    /// Restores optimizer moments and the step count from a checkpoint.
    pub fn restore(
        &mut self,
        state: &HashMap<String, Tensor>,
        step: u64,
    ) -> std::result::Result<(), String> {
        self.optimizer.restore(state, step)?;
        self.step = step;
        Ok(())
    }

    fn accumulate(&self, loss: &Tensor, into: &mut HashMap<String, Tensor>) -> Result<()> {
        let grads = loss.backward()?;
        for (name, var) in self.policy.sorted_vars() {
            if let Some(g) = grads.get(var.as_tensor()) {
                let total = match into.remove(&name) {
                    Some(prev) => (prev + g)?,
                    None => g.clone(),
                };
                into.insert(name, total);
            }
        }
        Ok(())
    }

    fn apply(&mut self, grads: HashMap<String, Tensor>, total_steps: u64) -> Result<(f64, f64)> {
        let norm = global_norm(&grads)?;
        let lr = self.optim.schedule().lr(self.step, total_steps);
        self.optimizer
            .step_scaled(&grads, lr, clip_scale(norm, self.optim.grad_clip))?;
        self.step += 1;
        Ok((norm, lr))
    }

    /// One SFT step on `sequences` (cross-entropy on completion tokens), in
    /// padded micro-batches of `micro_batch_size` sequences.
    pub fn sft_step(
        &mut self,
        sequences: &[Sequence],
        pad: u32,
        total_steps: u64,
    ) -> Result<SftStats> {
        let device = self.policy.model.device().clone();
        let chunks: Vec<&[Sequence]> = sequences.chunks(self.optim.micro_batch_size).collect();
        self.sft_update(sequences, total_steps, &chunks, |model, chunk| {
            let batch = Batch::new(chunk, pad, &device)?;
            Ok((model.token_logprobs(&batch.ids)?, batch.mask))
        })
    }

    /// [`Self::sft_step`] with the sequences packed into rows of at most
    /// `row_tokens` tokens (micro-batches of `micro_batch_size` rows): the
    /// same loss with less padding when lengths vary.
    pub fn sft_step_packed(
        &mut self,
        sequences: &[Sequence],
        pad: u32,
        row_tokens: usize,
        total_steps: u64,
    ) -> Result<SftStats> {
        let device = self.policy.model.device().clone();
        let rows = PackedBatch::plan(sequences, row_tokens);
        let chunks: Vec<&[Vec<usize>]> = rows.chunks(self.optim.micro_batch_size).collect();
        self.sft_update(sequences, total_steps, &chunks, |model, chunk| {
            let batch = PackedBatch::new(sequences, chunk, pad, &device)?;
            let logprobs = model.packed_token_logprobs(&batch.ids, &batch.packing)?;
            Ok((logprobs, batch.mask))
        })
    }

    /// Accumulates the token-mean SFT loss over `chunks` (`forward` gives a
    /// chunk's token log-probs and completion mask), then updates once.
    fn sft_update<C>(
        &mut self,
        sequences: &[Sequence],
        total_steps: u64,
        chunks: &[C],
        forward: impl Fn(&Llama, &C) -> Result<(Tensor, Tensor)>,
    ) -> Result<SftStats> {
        let started = Instant::now();
        let totals = Totals::of_sequences(sequences);
        let mut grads = HashMap::new();
        let mut loss_sum = 0.0;
        for chunk in chunks {
            let (logprobs, mask) = forward(&self.policy.model, chunk)?;
            let loss = sft_loss(&logprobs, &mask, totals)?;
            loss_sum += f64::from(loss.to_scalar::<f32>()?);
            self.accumulate(&loss, &mut grads)?;
        }
        let optimizer_started = Instant::now();
        let (grad_norm, lr) = self.apply(grads, total_steps)?;
        Ok(SftStats {
            loss: loss_sum,
            tokens: sequences.iter().map(Sequence::completion_len).sum(),
            grad_norm,
            lr,
            seconds: started.elapsed().as_secs_f64(),
            optimizer_seconds: optimizer_started.elapsed().as_secs_f64(),
        })
    }

    /// The SFT loss of `sequences` without updating (for evaluation).
    pub fn sft_loss(&self, sequences: &[Sequence], pad: u32) -> Result<f64> {
        let device = self.policy.model.device();
        let totals = Totals::of_sequences(sequences);
        let mut sum = 0.0;
        for chunk in sequences.chunks(self.optim.micro_batch_size) {
            let batch = Batch::new(chunk, pad, device)?;
            let logprobs = self.policy.model.token_logprobs(&batch.ids)?.detach();
            sum += f64::from(sft_loss(&logprobs, &batch.mask, totals)?.to_scalar::<f32>()?);
        }
        Ok(sum)
    }

    /// One GRPO step over scored groups.
    pub fn grpo_step(
        &mut self,
        groups: &[TrainGroup],
        config: &GrpoConfig,
        reference: Option<&Llama>,
        pad: u32,
        total_steps: u64,
    ) -> Result<GrpoStats> {
        let started = Instant::now();
        let device = self.policy.model.device().clone();
        let all_rewards: Vec<f64> = groups
            .iter()
            .flat_map(|g| g.rewards.iter().copied())
            .collect();
        let n = all_rewards.len().max(1) as f64;
        let reward_mean = all_rewards.iter().sum::<f64>() / n;
        let reward_std = (all_rewards
            .iter()
            .map(|r| (r - reward_mean).powi(2))
            .sum::<f64>()
            / n)
            .sqrt();
        let correct = groups
            .iter()
            .flat_map(|g| g.correct.iter())
            .filter(|c| **c)
            .count();
        let mut stats = GrpoStats {
            reward_mean,
            reward_std,
            accuracy: correct as f64 / n,
            ..GrpoStats::default()
        };

        // Flatten the groups that carry a signal, with their advantages.
        let mut sequences = Vec::new();
        let mut seq_advantages = Vec::new();
        let mut sampler = Vec::new();
        for group in groups {
            let uniform = group
                .rewards
                .windows(2)
                .all(|w| (w[0] - w[1]).abs() < 1e-12);
            if uniform && config.drop_uniform_groups {
                stats.groups_dropped_uniform += 1;
                continue;
            }
            stats.groups_used += 1;
            let adv = advantages(&group.rewards, config.scale_rewards);
            sequences.extend(group.sequences.iter().cloned());
            seq_advantages.extend(adv.into_iter().map(|a| a as f32));
            sampler.extend(group.sampler_logprobs.iter().cloned());
        }
        let lens: Vec<usize> = groups
            .iter()
            .flat_map(|g| g.sequences.iter().map(Sequence::completion_len))
            .collect();
        stats.response_tokens_mean = lens.iter().sum::<usize>() as f64 / lens.len().max(1) as f64;
        if sequences.is_empty() {
            stats.seconds = started.elapsed().as_secs_f64();
            return Ok(stats);
        }

        let totals = Totals::of_sequences(&sequences);
        stats.tokens = sequences.iter().map(Sequence::completion_len).sum();
        let objective = config.objective();
        let micro = self.optim.micro_batch_size;
        let batches = sequences
            .chunks(micro)
            .map(|chunk| Batch::new(chunk, pad, &device))
            .collect::<Result<Vec<_>>>()?;
        // Per micro-batch, the old policy's and the reference's log-probs:
        // computed at the first update, the same for every later one.
        let mut fixed: Vec<Option<(Tensor, Option<Tensor>)>> = vec![None; batches.len()];
        let (mut clip_weighted, mut kl_weighted, mut entropy_weighted, mut mismatch_sum) =
            (0.0, 0.0, 0.0, 0.0);
        let mut mismatch_tokens = 0usize;
        let updates = config.updates_per_batch.max(1);
        for update in 0..updates {
            let first = update == 0;
            let mut grads = HashMap::new();
            for (index, batch) in batches.iter().enumerate() {
                let offset = index * micro;
                let rows = offset..offset + batch.completion_lens.len();
                let chunk_tokens = batch.tokens() as f64;
                let (logprobs, entropy) =
                    self.policy.model.token_logprobs_and_entropy(&batch.ids)?;
                if first {
                    let current = logprobs.detach();
                    for (values, sampled) in batch
                        .completion_values(&current)?
                        .iter()
                        .zip(&sampler[rows.clone()])
                    {
                        for (a, b) in values.iter().zip(sampled) {
                            mismatch_sum += f64::from((a - b).abs());
                            mismatch_tokens += 1;
                        }
                    }
                    let old = match config.old_policy {
                        OldPolicy::Learner => current,
                        OldPolicy::Sampler => {
                            batch.place_completion_values(&sampler[rows.clone()], 0.0)?
                        }
                    };
                    let reference_logprobs = match reference {
                        Some(r) => Some(r.token_logprobs(&batch.ids)?.detach()),
                        None => None,
                    };
                    fixed[index] = Some((old, reference_logprobs));
                }
                let (old, reference_logprobs) =
                    fixed[index].as_ref().expect("set at the first update");
                let adv = Tensor::new(&seq_advantages[rows], &device)?;
                let (loss, s) = grpo_loss(
                    &logprobs,
                    old,
                    reference_logprobs.as_ref(),
                    &adv,
                    &batch.mask,
                    &objective,
                    totals,
                )?;
                clip_weighted += s.clip_fraction * chunk_tokens;
                if first {
                    stats.loss += f64::from(loss.to_scalar::<f32>()?);
                    kl_weighted += s.kl * chunk_tokens;
                    let ent = f64::from((entropy * &batch.mask)?.sum_all()?.to_scalar::<f32>()?);
                    entropy_weighted += ent;
                }
                self.accumulate(&loss, &mut grads)?;
            }
            let (grad_norm, lr) = self.apply(grads, total_steps * u64::from(updates))?;
            stats.grad_norm = grad_norm;
            stats.lr = lr;
        }
        let tokens = stats.tokens.max(1) as f64;
        stats.clip_fraction = clip_weighted / (tokens * f64::from(updates));
        stats.kl = kl_weighted / tokens;
        stats.entropy = entropy_weighted / tokens;
        stats.logprob_mismatch = mismatch_sum / mismatch_tokens.max(1) as f64;
        stats.seconds = started.elapsed().as_secs_f64();
        Ok(stats)
    }
}
