//! Hyper-parameters of SFT and GRPO, read from TOML and validated at start.

use serde::Deserialize;

use super::loss::{GrpoObjective, KlEstimator, LossAggregation};
use super::optim::{AdamWConfig, Decay, Schedule};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimConfig {
    pub lr: f64,
    pub warmup_steps: u64,
    pub decay: Decay,
    pub min_lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// Maximum global gradient norm; 0 disables clipping.
    pub grad_clip: f64,
    /// Sequences per forward/backward pass; a step accumulates gradients
    /// over as many passes as its batch needs.
    pub micro_batch_size: usize,
}

impl Default for OptimConfig {
    /// The values a partial `[….optim]` table starts from.
    fn default() -> Self {
        Self {
            lr: 1e-3,
            warmup_steps: 0,
            decay: Decay::Constant,
            min_lr: 0.0,
            beta1: 0.9,
            beta2: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            grad_clip: 1.0,
            micro_batch_size: 32,
        }
    }
}

impl OptimConfig {
    pub fn schedule(&self) -> Schedule {
        Schedule {
            lr: self.lr,
            warmup_steps: self.warmup_steps,
            decay: self.decay,
            min_lr: self.min_lr,
        }
    }

    pub fn adamw(&self) -> AdamWConfig {
        AdamWConfig {
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            weight_decay: self.weight_decay,
        }
    }

    pub fn validate(&self, at: &str) -> Result<(), String> {
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(format!("{at}.lr: must be a positive number"));
        }
        if self.min_lr < 0.0 || self.min_lr > self.lr {
            return Err(format!("{at}.min_lr: must be in [0, lr]"));
        }
        if !(0.0..1.0).contains(&self.beta1) || !(0.0..1.0).contains(&self.beta2) {
            return Err(format!("{at}.beta1/beta2: must be in [0, 1)"));
        }
        if self.grad_clip < 0.0 {
            return Err(format!("{at}.grad_clip: must be ≥ 0"));
        }
        if self.micro_batch_size == 0 {
            return Err(format!("{at}.micro_batch_size: must be at least 1"));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SftConfig {
    /// A JSON Lines dataset (`prompt`/`response` or chat `messages`) to
    /// train on instead of the generated cold-start solutions.
    pub data: Option<std::path::PathBuf>,
    pub steps: u64,
    /// Sequences per optimizer step.
    pub batch_size: usize,
    /// Sequences longer than this many tokens are cut.
    pub max_tokens: usize,
    /// Pack several sequences into each row of up to `max_tokens` tokens
    /// (positions restart and attention stays within each sequence, so the
    /// loss is the same); `optim.micro_batch_size` then counts rows.
    pub packing: bool,
    pub optim: OptimConfig,
}

impl Default for SftConfig {
    fn default() -> Self {
        Self {
            data: None,
            steps: 220,
            batch_size: 32,
            max_tokens: 512,
            packing: false,
            optim: OptimConfig {
                lr: 1e-3,
                warmup_steps: 20,
                ..OptimConfig::default()
            },
        }
    }
}

impl SftConfig {
    pub fn validate(&self, at: &str) -> Result<(), String> {
        if self.batch_size == 0 {
            return Err(format!("{at}.batch_size: must be at least 1"));
        }
        if self.max_tokens < 2 {
            return Err(format!("{at}.max_tokens: must be at least 2"));
        }
        self.optim.validate(&format!("{at}.optim"))
    }
}

/// Which log-probs stand for the policy that sampled a group (the "old"
/// policy of the importance ratio).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OldPolicy {
    /// The learner's own before the update: ratio 1 at the first update,
    /// ignoring that groups may be a version or two behind.
    Learner,
    /// The sampler's, sent with each completion: corrects for stale groups.
    Sampler,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpoConfig {
    pub steps: u64,
    /// Prompts (groups) per optimizer step.
    pub prompts_per_step: usize,
    /// Completions sampled per prompt (G).
    pub group_size: u32,
    pub temperature: f32,
    pub top_p: f32,
    pub max_new_tokens: u32,
    /// Lower and upper clip of the importance ratio (clip-higher when the
    /// upper one is larger).
    pub clip_low: f64,
    pub clip_high: f64,
    /// Weight of the KL penalty to the frozen reference; 0 disables it.
    pub kl_beta: f64,
    pub kl_estimator: KlEstimator,
    pub loss_aggregation: LossAggregation,
    /// Divide advantages by the group's reward standard deviation (GRPO);
    /// false is Dr. GRPO.
    pub scale_rewards: bool,
    /// Skip groups whose rewards are all equal (no learning signal).
    pub drop_uniform_groups: bool,
    /// Dynamic sampling: with `drop_uniform_groups`, issue up to this many
    /// prompts per step, as many as the recent share of groups with a
    /// signal says are needed for `prompts_per_step` of them to carry one.
    /// Unset: always `prompts_per_step`.
    pub max_prompts_per_step: Option<usize>,
    /// Groups sampled by a policy more than this many versions old are rejected.
    pub max_staleness: u64,
    /// Prompt jobs issued ahead of the current policy version.
    pub max_versions_ahead: u64,
    /// The "old" policy of the clipped ratio.
    pub old_policy: OldPolicy,
    /// Optimizer updates per batch of groups (PPO epochs); each one clips
    /// the ratio to the same old policy.
    pub updates_per_batch: u32,
    pub optim: OptimConfig,
}

impl Default for GrpoConfig {
    fn default() -> Self {
        Self {
            steps: 120,
            prompts_per_step: 16,
            group_size: 8,
            temperature: 1.0,
            top_p: 1.0,
            max_new_tokens: 64,
            clip_low: 0.2,
            clip_high: 0.28,
            kl_beta: 0.0,
            kl_estimator: KlEstimator::K3,
            loss_aggregation: LossAggregation::TokenMean,
            scale_rewards: true,
            drop_uniform_groups: true,
            max_prompts_per_step: None,
            max_staleness: 1,
            max_versions_ahead: 1,
            old_policy: OldPolicy::Learner,
            updates_per_batch: 1,
            optim: OptimConfig {
                lr: 1e-4,
                decay: Decay::Cosine,
                ..OptimConfig::default()
            },
        }
    }
}

impl GrpoConfig {
    pub fn objective(&self) -> GrpoObjective {
        GrpoObjective {
            clip_low: self.clip_low,
            clip_high: self.clip_high,
            kl_beta: self.kl_beta,
            kl_estimator: self.kl_estimator,
            aggregation: self.loss_aggregation,
            norm_tokens: f64::from(self.max_new_tokens),
        }
    }

    /// Prompts to issue for one step when a share `informative` of recent
    /// groups carried a learning signal.
    pub fn prompts_for(&self, informative: f64) -> usize {
        match self.max_prompts_per_step {
            Some(max) if self.drop_uniform_groups => {
                let wanted = self.prompts_per_step as f64 / informative.max(1e-3);
                (wanted.ceil() as usize).clamp(self.prompts_per_step, max)
            }
            _ => self.prompts_per_step,
        }
    }

    pub fn validate(&self, at: &str) -> Result<(), String> {
        if self.prompts_per_step == 0 {
            return Err(format!("{at}.prompts_per_step: must be at least 1"));
        }
        if self
            .max_prompts_per_step
            .is_some_and(|max| max < self.prompts_per_step)
        {
            return Err(format!(
                "{at}.max_prompts_per_step: must be at least prompts_per_step ({})",
                self.prompts_per_step
            ));
        }
        if self.updates_per_batch == 0 {
            return Err(format!("{at}.updates_per_batch: must be at least 1"));
        }
        if self.group_size < 2 {
            return Err(format!(
                "{at}.group_size: must be at least 2 (advantages are relative to the group)"
            ));
        }
        if !(self.temperature > 0.0 && self.temperature.is_finite()) {
            return Err(format!("{at}.temperature: must be positive"));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(format!("{at}.top_p: must be in (0, 1]"));
        }
        if self.max_new_tokens == 0 {
            return Err(format!("{at}.max_new_tokens: must be at least 1"));
        }
        if !(0.0..1.0).contains(&self.clip_low) || self.clip_high <= 0.0 {
            return Err(format!(
                "{at}.clip_low/clip_high: need 0 ≤ clip_low < 1 and clip_high > 0"
            ));
        }
        if self.kl_beta < 0.0 {
            return Err(format!("{at}.kl_beta: must be ≥ 0"));
        }
        self.optim.validate(&format!("{at}.optim"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamic_sampling_issues_enough_prompts_for_the_signal_within_the_cap() {
        let config = GrpoConfig {
            prompts_per_step: 16,
            max_prompts_per_step: Some(40),
            ..GrpoConfig::default()
        };
        assert_eq!(config.prompts_for(1.0), 16);
        assert_eq!(config.prompts_for(0.5), 32);
        assert_eq!(config.prompts_for(0.45), 36);
        assert_eq!(config.prompts_for(0.1), 40);
        assert_eq!(config.prompts_for(0.0), 40);
        // Off without a cap, or when uniform groups are trained on anyway.
        let fixed = GrpoConfig {
            max_prompts_per_step: None,
            ..config.clone()
        };
        assert_eq!(fixed.prompts_for(0.1), 16);
        let keeping = GrpoConfig {
            drop_uniform_groups: false,
            ..config.clone()
        };
        assert_eq!(keeping.prompts_for(0.1), 16);
    }

    #[test]
    fn a_cap_below_the_batch_is_an_error() {
        let config = GrpoConfig {
            max_prompts_per_step: Some(8),
            ..GrpoConfig::default()
        };
        let err = config.validate("grpo").unwrap_err();
        assert!(err.contains("grpo.max_prompts_per_step"), "{err}");
    }
}
