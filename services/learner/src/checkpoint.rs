//! Checkpoints: the policy (as a model folder), the optimizer's moments and
//! the training position, written atomically; `latest` names the newest.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::Device;
use serde::{Deserialize, Serialize};

use crate::folder::{FolderError, ModelFiles, write_atomically, write_json};
use crate::model::weights::{WeightsError, load_policy, save_safetensors};
use crate::train::{OptimConfig, Trainer};

/// Where training stands; enough to continue exactly where it stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainState {
    /// Stage of the recipe ("sft", "grpo", …).
    pub stage: String,
    /// Optimizer steps taken in this stage.
    pub step: u64,
    pub policy_version: u64,
    /// Next position in the data stream.
    pub data_cursor: u64,
    /// Seed from which per-step randomness is derived (with `step`).
    pub seed: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error(transparent)]
    Folder(#[from] FolderError),
    #[error(transparent)]
    Weights(#[from] WeightsError),
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

type Result<T, E = CheckpointError> = std::result::Result<T, E>;

fn invalid(path: &Path, message: impl Into<String>) -> CheckpointError {
    CheckpointError::Invalid {
        path: path.display().to_string(),
        message: message.into(),
    }
}

/// Writes `root/step-{N}/` and points `root/latest` at it.
pub fn save(
    root: &Path,
    files: &ModelFiles,
    trainer: &Trainer,
    state: &TrainState,
) -> Result<PathBuf> {
    let dir = root.join(format!("{}-step-{:06}", state.stage, state.step));
    let tensors = trainer.policy().tensors();
    let (moments, _) = trainer
        .optimizer()
        .state()
        .map_err(|e| invalid(root, e.to_string()))?;
    write_atomically(&dir, |tmp| {
        let model = tmp.join("model");
        std::fs::create_dir_all(&model).map_err(|source| FolderError::Io {
            path: model.display().to_string(),
            source,
        })?;
        write_json(&model.join("config.json"), &files.config.to_hf_json())?;
        write_json(&model.join("tokenizer.json"), &files.tokenizer_json)?;
        write_json(
            &model.join("tokenizer_config.json"),
            &files.tokenizer_config,
        )?;
        save_safetensors(&tensors, &model.join("model.safetensors"))?;
        save_safetensors(&moments, &tmp.join("optimizer.safetensors"))?;
        write_json(
            &tmp.join("state.json"),
            &serde_json::to_value(state).unwrap_or_default(),
        )
    })?;
    let latest = root.join("latest");
    let staged = root.join(format!(".latest.tmp-{}", std::process::id()));
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    std::fs::write(&staged, format!("{name}\n")).map_err(|source| FolderError::Io {
        path: staged.display().to_string(),
        source,
    })?;
    std::fs::rename(&staged, &latest).map_err(|source| FolderError::Io {
        path: latest.display().to_string(),
        source,
    })?;
    Ok(dir)
}

/// The newest checkpoint under `root`, if any.
pub fn latest(root: &Path) -> Option<PathBuf> {
    let name = std::fs::read_to_string(root.join("latest")).ok()?;
    let dir = root.join(name.trim());
    dir.is_dir().then_some(dir)
}

/// Loads a checkpoint: a trainer at the saved step and the saved state.
pub fn load(
    dir: &Path,
    optim: OptimConfig,
    device: &Device,
) -> Result<(Trainer, TrainState, ModelFiles)> {
    let state_path = dir.join("state.json");
    let text =
        std::fs::read_to_string(&state_path).map_err(|e| invalid(&state_path, e.to_string()))?;
    let state: TrainState =
        serde_json::from_str(&text).map_err(|e| invalid(&state_path, e.to_string()))?;
    let model_dir = dir.join("model");
    let policy = load_policy(&model_dir, device)?;
    let files = ModelFiles::read(&model_dir)?;
    let opt_path = dir.join("optimizer.safetensors");
    let moments: HashMap<String, candle_core::Tensor> =
        candle_core::safetensors::load(&opt_path, device)
            .map_err(|e| invalid(&opt_path, e.to_string()))?;
    let mut trainer = Trainer::new(policy, optim).map_err(|e| invalid(dir, e.to_string()))?;
    trainer
        .restore(&moments, state.step)
        .map_err(|message| invalid(&opt_path, message))?;
    Ok((trainer, state, files))
}
