//! Model folders in Hugging Face layout, written atomically: a reader never
//! sees a half-written folder.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::model::weights::{WeightsError, save_safetensors};
use crate::model::{ModelConfig, Policy};

#[derive(Debug, thiserror::Error)]
pub enum FolderError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Weights(#[from] WeightsError),
}

type Result<T, E = FolderError> = std::result::Result<T, E>;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FolderError + '_ {
    move |source| FolderError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Builds a folder in a sibling temporary directory with `fill`, then renames
/// it onto `dir` (replacing what was there).
pub fn write_atomically(dir: &Path, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io(parent))?;
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("folder");
    let staging = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(io(&staging))?;
    }
    std::fs::create_dir_all(&staging).map_err(io(&staging))?;
    if let Err(e) = fill(&staging) {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    let old: Option<PathBuf> = dir
        .exists()
        .then(|| parent.join(format!(".{name}.old-{}", std::process::id())));
    if let Some(old) = &old {
        std::fs::rename(dir, old).map_err(io(dir))?;
    }
    std::fs::rename(&staging, dir).map_err(io(dir))?;
    if let Some(old) = old {
        std::fs::remove_dir_all(&old).map_err(io(&old))?;
    }
    Ok(())
}

pub fn write_json(path: &Path, value: &Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    std::fs::write(path, text + "\n").map_err(io(path))
}

/// The files that describe a model apart from its weights.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    pub config: ModelConfig,
    pub tokenizer_json: Value,
    pub tokenizer_config: Value,
}

impl ModelFiles {
    /// Reads them from an existing model folder.
    pub fn read(dir: &Path) -> Result<Self> {
        let read = |name: &str| -> Result<Value> {
            let path = dir.join(name);
            let text = std::fs::read_to_string(&path).map_err(io(&path))?;
            serde_json::from_str(&text).map_err(|e| FolderError::Io {
                path: path.display().to_string(),
                source: std::io::Error::other(e),
            })
        };
        let config = crate::model::config::ModelConfig::load(&dir.join("config.json"))
            .map_err(|e| FolderError::Weights(WeightsError::Config(e)))?;
        Ok(Self {
            config,
            tokenizer_json: read("tokenizer.json")?,
            tokenizer_config: read("tokenizer_config.json")?,
        })
    }

    /// Writes a complete model folder (config, tokenizer, generation config,
    /// weights) atomically.
    pub fn write(&self, dir: &Path, policy: &Policy) -> Result<()> {
        let tensors = policy.tensors();
        write_atomically(dir, |tmp| {
            write_json(&tmp.join("config.json"), &self.config.to_hf_json())?;
            write_json(&tmp.join("tokenizer.json"), &self.tokenizer_json)?;
            write_json(&tmp.join("tokenizer_config.json"), &self.tokenizer_config)?;
            // mistral.rs takes the end-of-sequence token from here.
            write_json(
                &tmp.join("generation_config.json"),
                &json!({
                    "bos_token_id": self.config.bos_token_id,
                    "eos_token_id": self.config.eos_token_id,
                    "pad_token_id": self.config.pad_token_id,
                }),
            )?;
            save_safetensors(&tensors, &tmp.join("model.safetensors"))?;
            Ok(())
        })
    }
}
