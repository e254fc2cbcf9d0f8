//! The run configuration shared by `r1 train` and `r1-learner` (TOML, every
//! key optional, unknown keys rejected, validated before anything runs).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::preset::Preset;
use crate::tasks::{Difficulty, Op};
use crate::train::{GrpoConfig, SftConfig};

/// An unreadable or invalid run configuration; the message names the file
/// and the field (or line).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RunConfigError(pub String);

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// Seeds model initialisation, data and sampling.
    pub seed: u64,
    pub model: ModelSource,
    pub task: TaskConfig,
    pub sft: SftConfig,
    pub grpo: GrpoConfig,
    /// The reward service's configuration (scoring in the single-process
    /// mode); validated by its owner.
    pub reward: toml::Table,
    pub eval: EvalConfig,
    pub runtime: RuntimeConfig,
}

/// Where the starting model comes from.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSource {
    /// A built-in model, created with random weights (`tiny` when neither
    /// this nor `path` is set).
    pub preset: Option<Preset>,
    /// An existing Hugging Face model folder (instead of a preset).
    pub path: Option<PathBuf>,
    /// Skip the cold-start SFT (the model already follows the template).
    pub skip_sft: bool,
}

impl ModelSource {
    /// The preset to create, when no model folder is given (`tiny` by default).
    pub fn preset(&self) -> Option<Preset> {
        match (&self.path, self.preset) {
            (Some(_), _) => None,
            (None, preset) => Some(preset.unwrap_or(Preset::Tiny)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TaskConfig {
    /// Instruction put before each question in the R1 template ("" for
    /// the tiny model, which learns the format in the cold start).
    pub preamble: String,
    /// Problems of the cold start (easier, so RL has headroom).
    pub cold_start: Difficulty,
    /// Problems of the RL stage and of evaluation.
    pub rl: Difficulty,
    /// Language of the reasoning for the language-consistency reward
    /// ("" disables it).
    pub language: String,
}

impl Default for TaskConfig {
    fn default() -> Self {
        Self {
            preamble: String::new(),
            cold_start: Difficulty {
                min_digits: 1,
                max_digits: 2,
                ops: vec![Op::Add],
                terms: 2,
                word_problems: 0.0,
            },
            // Two-digit sums only: the cold start saw them as a quarter of
            // its problems and gets about two thirds right, so RL has headroom.
            rl: Difficulty {
                min_digits: 2,
                max_digits: 2,
                ops: vec![Op::Add],
                terms: 2,
                word_problems: 0.0,
            },
            language: String::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// Held-out problems per evaluation.
    pub problems: usize,
    pub max_new_tokens: usize,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            problems: 200,
            max_new_tokens: 64,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// Sampling workers in the single-process mode.
    pub inference_workers: usize,
    /// Scoring workers in the single-process mode.
    pub reward_workers: usize,
    /// GRPO steps between checkpoints.
    pub checkpoint_every: u64,
    /// Jobs a sampling worker runs at once (the engine batches them).
    pub jobs_in_flight: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            inference_workers: 1,
            reward_workers: 1,
            checkpoint_every: 20,
            jobs_in_flight: 16,
        }
    }
}

impl RunConfig {
    /// Reads and validates a config file; errors name the file (and line).
    pub fn load(path: &Path) -> Result<Self, RunConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| RunConfigError(format!("{}: {e}", path.display())))?;
        Self::parse(&text, &path.display().to_string())
    }

    pub fn parse(text: &str, origin: &str) -> Result<Self, RunConfigError> {
        let config: Self = toml::from_str(text)
            .map_err(|e| RunConfigError(format!("{origin}: {}", e.to_string().trim())))?;
        config
            .validate()
            .map_err(|e| RunConfigError(format!("{origin}: {e}")))?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.model.preset.is_some() && self.model.path.is_some() {
            return Err("model: set either preset or path, not both".into());
        }
        self.task.cold_start.validate("task.cold_start")?;
        self.task.rl.validate("task.rl")?;
        self.sft.validate("sft")?;
        self.grpo.validate("grpo")?;
        if self.eval.problems == 0 || self.eval.max_new_tokens == 0 {
            return Err("eval: problems and max_new_tokens must be at least 1".into());
        }
        if self.runtime.inference_workers == 0
            || self.runtime.reward_workers == 0
            || self.runtime.jobs_in_flight == 0
        {
            return Err(
                "runtime: inference_workers, reward_workers and jobs_in_flight must be at least 1"
                    .into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_example_parses_to_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/train.toml");
        let parsed = RunConfig::load(&path).unwrap();
        let mut defaults = RunConfig::default();
        defaults.model.preset = Some(Preset::Tiny);
        defaults.reward = parsed.reward.clone();
        assert_eq!(parsed, defaults);
    }

    #[test]
    fn errors_name_the_file_and_the_field_or_line() {
        let e = RunConfig::parse("[grpo]\ngroup_size = 1\n", "run.toml").unwrap_err();
        assert!(e.0.starts_with("run.toml: grpo.group_size"), "{e}");
        let e = RunConfig::parse("[sft]\nsteps = 3\nbogus = 1\n", "run.toml").unwrap_err();
        assert!(e.0.contains("line 3") && e.0.contains("bogus"), "{e}");
        let e =
            RunConfig::parse("[model]\npreset = \"tiny\"\npath = \"x\"\n", "run.toml").unwrap_err();
        assert!(e.0.contains("model"), "{e}");
        let e = RunConfig::parse("[task.rl]\nmax_digits = 12\n", "run.toml").unwrap_err();
        assert!(e.0.contains("task.rl"), "{e}");
    }
}
