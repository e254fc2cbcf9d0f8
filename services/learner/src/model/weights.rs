//! Policy weights on disk in Hugging Face layout (`config.json`,
//! `model.safetensors` or sharded `model-*.safetensors` with an index), and
//! seeded initialisation.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::config::{ConfigError, ModelConfig};
use super::llama::Llama;

#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("{path}: tensor {name} is missing")]
    Missing { path: String, name: String },
    #[error("{path}: tensor {name} has shape {found:?}, the model expects {expected:?}")]
    Shape {
        path: String,
        name: String,
        found: Vec<usize>,
        expected: Vec<usize>,
    },
    #[error("model: {0}")]
    Model(#[from] candle_core::Error),
}

type Result<T, E = WeightsError> = std::result::Result<T, E>;

/// A trainable model: the decoder and the variables it is built from.
pub struct Policy {
    pub model: Llama,
    pub vars: VarMap,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("config", self.model.config())
            .finish()
    }
}

impl Policy {
    /// A freshly initialised model: normal(0, 0.02) weights, unit norms,
    /// zero biases, reproducible from `seed`.
    pub fn random(config: &ModelConfig, seed: u64, device: &Device) -> Result<Self> {
        let vars = VarMap::new();
        let model = Llama::new(config, VarBuilder::from_varmap(&vars, DType::F32, device))?;
        let policy = Self { model, vars };
        policy.reinitialize(seed)?;
        Ok(policy)
    }

    fn reinitialize(&self, seed: u64) -> Result<()> {
        for (name, var) in self.sorted_vars() {
            let n = var.elem_count();
            let values: Vec<f32> = if name.ends_with("norm.weight") {
                vec![1.0; n]
            } else if name.ends_with(".bias") {
                vec![0.0; n]
            } else {
                let mut rng = StdRng::seed_from_u64(seed ^ fnv(&name));
                (0..n).map(|_| normal(&mut rng) * 0.02).collect()
            };
            var.set(&Tensor::from_vec(values, var.shape(), var.device())?)?;
        }
        Ok(())
    }

    /// Variables by name, sorted (a stable order for optimizers and files).
    pub fn sorted_vars(&self) -> Vec<(String, Var)> {
        let data = self.vars.data().lock().unwrap_or_else(|p| p.into_inner());
        let mut vars: Vec<(String, Var)> =
            data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        vars
    }

    /// Every variable as a named tensor (a snapshot).
    pub fn tensors(&self) -> HashMap<String, Tensor> {
        self.sorted_vars()
            .into_iter()
            .map(|(k, v)| (k, v.as_tensor().detach()))
            .collect()
    }

    /// Replaces every variable's value with the tensor of the same name.
    pub fn assign(&self, tensors: &HashMap<String, Tensor>, origin: &str) -> Result<()> {
        for (name, var) in self.sorted_vars() {
            let tensor = tensors.get(&name).ok_or_else(|| WeightsError::Missing {
                path: origin.to_owned(),
                name: name.clone(),
            })?;
            if tensor.dims() != var.dims() {
                return Err(WeightsError::Shape {
                    path: origin.to_owned(),
                    name,
                    found: tensor.dims().to_vec(),
                    expected: var.dims().to_vec(),
                });
            }
            var.set(&tensor.to_dtype(DType::F32)?.to_device(var.device())?)?;
        }
        Ok(())
    }
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Standard normal sample (Box–Muller).
fn normal(rng: &mut StdRng) -> f32 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

/// The safetensors files of a model folder: `model.safetensors`, or the
/// shards listed in `model.safetensors.index.json`.
pub fn weight_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    let index = dir.join("model.safetensors.index.json");
    let text = std::fs::read_to_string(&index).map_err(|e| WeightsError::File {
        path: dir.display().to_string(),
        message: format!(
            "neither model.safetensors nor model.safetensors.index.json is readable ({e})"
        ),
    })?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| WeightsError::File {
        path: index.display().to_string(),
        message: e.to_string(),
    })?;
    let map = json["weight_map"]
        .as_object()
        .ok_or_else(|| WeightsError::File {
            path: index.display().to_string(),
            message: "no weight_map".into(),
        })?;
    let mut files: Vec<PathBuf> = map
        .values()
        .filter_map(|v| v.as_str())
        .map(|f| dir.join(f))
        .collect();
    files.sort();
    files.dedup();
    Ok(files)
}

/// Every tensor of a model folder, as f32 on `device`.
pub fn read_tensors(dir: &Path, device: &Device) -> Result<HashMap<String, Tensor>> {
    let mut all = HashMap::new();
    for file in weight_files(dir)? {
        let tensors =
            candle_core::safetensors::load(&file, device).map_err(|e| WeightsError::File {
                path: file.display().to_string(),
                message: e.to_string(),
            })?;
        all.extend(tensors);
    }
    Ok(all)
}

/// Loads a Hugging Face model folder as a trainable policy.
pub fn load_policy(dir: &Path, device: &Device) -> Result<Policy> {
    let config = ModelConfig::load(&dir.join("config.json"))?;
    let vars = VarMap::new();
    let model = Llama::new(&config, VarBuilder::from_varmap(&vars, DType::F32, device))?;
    let policy = Policy { model, vars };
    let tensors = read_tensors(dir, device)?;
    policy.assign(&tensors, &dir.display().to_string())?;
    Ok(policy)
}

/// Loads a model folder with plain (untracked) tensors: a frozen reference.
pub fn load_frozen(dir: &Path, device: &Device) -> Result<Llama> {
    let config = ModelConfig::load(&dir.join("config.json"))?;
    let tensors = read_tensors(dir, device)?;
    let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
    Ok(Llama::new(&config, vb)?)
}

/// Writes named tensors to one safetensors file.
pub fn save_safetensors(tensors: &HashMap<String, Tensor>, path: &Path) -> Result<()> {
    candle_core::safetensors::save(tensors, path).map_err(|e| WeightsError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}
