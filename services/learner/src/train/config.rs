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
            steps: 300,
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
    /// Groups sampled by a policy more than this many versions old are rejected.
    pub max_staleness: u64,
    /// Prompt jobs issued ahead of the current policy version.
    pub max_versions_ahead: u64,
    pub optim: OptimConfig,
}

impl Default for GrpoConfig {
    fn default() -> Self {
        Self {
            steps: 180,
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
            max_staleness: 1,
            max_versions_ahead: 1,
            optim: OptimConfig {
                lr: 1e-4,
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

    pub fn validate(&self, at: &str) -> Result<(), String> {
        if self.prompts_per_step == 0 {
            return Err(format!("{at}.prompts_per_step: must be at least 1"));
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
