//! AdamW with its state exposed (so checkpoints resume exactly), global-norm
//! gradient clipping, and the learning-rate schedule.

use std::collections::HashMap;

use std::sync::Mutex;

use candle_core::{CpuStorage, InplaceOp2, Layout, Result, Storage, Tensor, Var};
use rayon::prelude::*;
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

/// AdamW over named variables. Moments are plain f32 buffers updated in one
/// pass per variable.
#[derive(Debug)]
pub struct AdamW {
    config: AdamWConfig,
    vars: Vec<(String, Var)>,
    /// First and second moments by variable name.
    m: HashMap<String, Vec<f32>>,
    v: HashMap<String, Vec<f32>>,
    steps: u64,
}

impl AdamW {
    pub fn new(vars: Vec<(String, Var)>, config: AdamWConfig) -> Result<Self> {
        let mut m = HashMap::new();
        let mut v = HashMap::new();
        for (name, var) in &vars {
            m.insert(name.clone(), vec![0f32; var.elem_count()]);
            v.insert(name.clone(), vec![0f32; var.elem_count()]);
        }
        Ok(Self {
            config,
            vars,
            m,
            v,
            steps: 0,
        })
    }

    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Applies one update with learning rate `lr` from `grads` (by name),
    /// in place on each variable's storage.
    pub fn step(&mut self, grads: &HashMap<String, Tensor>, lr: f64) -> Result<()> {
        self.step_scaled(grads, lr, 1.0)
    }

    /// [`Self::step`] with every gradient multiplied by `grad_scale` (the
    /// factor of global-norm clipping) as it is read, without a scaled copy.
    pub fn step_scaled(
        &mut self,
        grads: &HashMap<String, Tensor>,
        lr: f64,
        grad_scale: f64,
    ) -> Result<()> {
        self.steps += 1;
        let c = self.config;
        let t = self.steps as i32;
        for (name, var) in &self.vars {
            let Some(g) = grads.get(name) else { continue };
            let (Some(m), Some(v)) = (self.m.get_mut(name), self.v.get_mut(name)) else {
                continue;
            };
            let update = Update {
                moments: Mutex::new((m.as_mut_slice(), v.as_mut_slice())),
                grad_scale: grad_scale as f32,
                beta1: c.beta1 as f32,
                beta2: c.beta2 as f32,
                eps: c.eps as f32,
                lr: lr as f32,
                decay: (1.0 - lr * c.weight_decay) as f32,
                correction1: (1.0 - c.beta1.powi(t)) as f32,
                correction2: (1.0 - c.beta2.powi(t)) as f32,
            };
            var.as_tensor().inplace_op2(&g.contiguous()?, &update)?;
        }
        Ok(())
    }

    /// Moments as named tensors (`m.<var>`, `v.<var>`) and the step count.
    pub fn state(&self) -> Result<(HashMap<String, Tensor>, u64)> {
        let mut out = HashMap::new();
        for (name, var) in &self.vars {
            for (prefix, moments) in [("m", &self.m), ("v", &self.v)] {
                let data = moments.get(name).cloned().unwrap_or_default();
                out.insert(
                    format!("{prefix}.{name}"),
                    Tensor::from_vec(data, var.shape(), var.device())?,
                );
            }
        }
        Ok((out, self.steps))
    }

    /// Restores moments saved by [`AdamW::state`].
    pub fn restore(
        &mut self,
        state: &HashMap<String, Tensor>,
        steps: u64,
    ) -> std::result::Result<(), String> {
        for (name, var) in &self.vars {
            for (prefix, moments) in [("m", &mut self.m), ("v", &mut self.v)] {
                let key = format!("{prefix}.{name}");
                let tensor = state
                    .get(&key)
                    .ok_or(format!("optimizer state lacks {key}"))?;
                if tensor.elem_count() != var.elem_count() {
                    return Err(format!(
                        "optimizer state {key} has {} values, expected {}",
                        tensor.elem_count(),
                        var.elem_count()
                    ));
                }
                let data: Vec<f32> = tensor
                    .flatten_all()
                    .and_then(|t| t.to_vec1())
                    .map_err(|e| format!("optimizer state {key}: {e}"))?;
                moments.insert(name.clone(), data);
            }
        }
        self.steps = steps;
        Ok(())
    }
}

/// One AdamW update of one variable: its weights (the storage updated in
/// place) from its gradient, with its moments.
struct Update<'a> {
    moments: Mutex<(&'a mut [f32], &'a mut [f32])>,
    grad_scale: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    lr: f32,
    decay: f32,
    correction1: f32,
    correction2: f32,
}

/// Elements per parallel chunk of an update.
const CHUNK: usize = 1 << 14;

impl InplaceOp2 for Update<'_> {
    fn name(&self) -> &'static str {
        "r1-adamw"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<()> {
        let (CpuStorage::F32(w), CpuStorage::F32(g)) = (s1, s2) else {
            candle_core::bail!("AdamW: only f32 variables are supported")
        };
        let (Some((w0, w1)), Some((g0, g1))) = (l1.contiguous_offsets(), l2.contiguous_offsets())
        else {
            candle_core::bail!("AdamW: variables and gradients must be contiguous")
        };
        let (w, g) = (&mut w[w0..w1], &g[g0..g1]);
        let mut moments = self
            .moments
            .lock()
            .map_err(|_| candle_core::Error::msg("AdamW: moments poisoned"))?;
        let (m, v) = &mut *moments;
        if g.len() != w.len() || m.len() != w.len() || v.len() != w.len() {
            candle_core::bail!(
                "AdamW: {} weights, {} gradients, {} and {} moments",
                w.len(),
                g.len(),
                m.len(),
                v.len()
            )
        }
        let Self {
            grad_scale,
            beta1,
            beta2,
            eps,
            lr,
            decay,
            correction1,
            correction2,
            ..
        } = *self;
        w.par_chunks_mut(CHUNK)
            .zip(g.par_chunks(CHUNK))
            .zip(m.par_chunks_mut(CHUNK).zip(v.par_chunks_mut(CHUNK)))
            .for_each(|((w, g), (m, v))| {
                for (((w, &g), m), v) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                    let g = g * grad_scale;
                    *m = beta1 * *m + (1.0 - beta1) * g;
                    *v = beta2 * *v + (1.0 - beta2) * g * g;
                    let update = (*m / correction1) / ((*v / correction2).sqrt() + eps);
                    *w = *w * decay - lr * update;
                }
            });
        Ok(())
    }
}

/// The global L2 norm of `grads`, summed in f64 over the gradients' storage
/// in parallel (no squared copies).
pub fn global_norm(grads: &HashMap<String, Tensor>) -> Result<f64> {
    let mut sum = 0f64;
    for g in grads.values() {
        let g = g.contiguous()?;
        let (storage, layout) = g.storage_and_layout();
        let Storage::Cpu(CpuStorage::F32(data)) = &*storage else {
            candle_core::bail!("gradient norm: only f32 CPU gradients are supported")
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("gradient norm: the gradient must be contiguous")
        };
        sum += data[start..end]
            .par_chunks(CHUNK)
            .map(|c| c.iter().map(|&v| f64::from(v * v)).sum::<f64>())
            .sum::<f64>();
    }
    Ok(sum.sqrt())
}

/// The factor that brings a global gradient norm `norm` down to at most
/// `max_norm` (1 when it already is, or when `max_norm` is 0: no clipping).
pub fn clip_scale(norm: f64, max_norm: f64) -> f64 {
    if max_norm > 0.0 && norm > max_norm {
        max_norm / (norm + 1e-6)
    } else {
        1.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decay {
    Constant,
    Cosine,
}

/// Linear warm-up, then constant or cosine decay to `min_lr`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    pub lr: f64,
    #[serde(default)]
    pub warmup_steps: u64,
    #[serde(default = "constant")]
    pub decay: Decay,
    #[serde(default)]
    pub min_lr: f64,
}

fn constant() -> Decay {
    Decay::Constant
}

impl Schedule {
    /// Learning rate of update `step` (0-based) out of `total`.
    pub fn lr(&self, step: u64, total: u64) -> f64 {
        if step < self.warmup_steps {
            return self.lr * (step + 1) as f64 / self.warmup_steps as f64;
        }
        match self.decay {
            Decay::Constant => self.lr,
            Decay::Cosine => {
                let span = total.saturating_sub(self.warmup_steps).max(1) as f64;
                let progress = ((step - self.warmup_steps) as f64 / span).min(1.0);
                self.min_lr
                    + 0.5
                        * (self.lr - self.min_lr)
                        * (1.0 + (std::f64::consts::PI * progress).cos())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_cosine_reaches_the_minimum() {
        let s = Schedule {
            lr: 1.0,
            warmup_steps: 4,
            decay: Decay::Cosine,
            min_lr: 0.1,
        };
        assert_eq!(s.lr(0, 14), 0.25);
        assert_eq!(s.lr(3, 14), 1.0);
        assert!((s.lr(4, 14) - 1.0).abs() < 1e-12);
        assert!((s.lr(9, 14) - 0.55).abs() < 1e-12);
        assert!((s.lr(14, 14) - 0.1).abs() < 1e-12);
    }

    #[test]
    fn clipping_bounds_the_global_norm() {
        let dev = candle_core::Device::Cpu;
        let grads = HashMap::from([
            ("a".to_owned(), Tensor::new(&[3.0f32], &dev).unwrap()),
            ("b".to_owned(), Tensor::new(&[4.0f32], &dev).unwrap()),
        ]);
        let norm = global_norm(&grads).unwrap();
        assert!((norm - 5.0).abs() < 1e-6);
        assert!((clip_scale(norm, 1.0) - 0.2).abs() < 1e-6);
        assert_eq!(clip_scale(norm, 10.0), 1.0);
        assert_eq!(clip_scale(norm, 0.0), 1.0);
    }

    #[test]
    fn a_scaled_step_equals_a_step_on_scaled_gradients() {
        let dev = candle_core::Device::Cpu;
        // More values than one parallel chunk.
        let n = CHUNK + 7;
        let start: Vec<f32> = (0..n).map(|i| (i % 13) as f32 - 6.0).collect();
        let grad: Vec<f32> = (0..n).map(|i| (i % 7) as f32 - 3.5).collect();
        let run = |grad: Vec<f32>, scale: f64| {
            let var = Var::from_vec(start.clone(), n, &dev).unwrap();
            // A large eps makes the update depend on the gradients' scale.
            let config = AdamWConfig {
                eps: 1.0,
                ..AdamWConfig::default()
            };
            let mut opt = AdamW::new(vec![("w".into(), var.clone())], config).unwrap();
            let grads = HashMap::from([("w".to_owned(), Tensor::from_vec(grad, n, &dev).unwrap())]);
            for _ in 0..3 {
                opt.step_scaled(&grads, 0.1, scale).unwrap();
            }
            var.as_tensor().to_vec1::<f32>().unwrap()
        };
        let scaled = run(grad.clone(), 0.25);
        let prescaled = run(grad.iter().map(|g| g * 0.25).collect(), 1.0);
        let unscaled = run(grad, 1.0);
        let max_diff = |a: &[f32], b: &[f32]| {
            a.iter()
                .zip(b)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max)
        };
        assert!(max_diff(&scaled, &prescaled) < 1e-6);
        assert!(max_diff(&scaled, &unscaled) > 1e-3, "the scale was ignored");
    }

    #[test]
    fn adamw_first_step_moves_each_weight_by_the_learning_rate() {
        let dev = candle_core::Device::Cpu;
        let var = Var::new(&[1.0f32, -2.0], &dev).unwrap();
        let mut opt = AdamW::new(vec![("w".into(), var.clone())], AdamWConfig::default()).unwrap();
        let grads = HashMap::from([("w".to_owned(), Tensor::new(&[0.5f32, -3.0], &dev).unwrap())]);
        opt.step(&grads, 0.1).unwrap();
        let w = var.as_tensor().to_vec1::<f32>().unwrap();
        assert!(
            (w[0] - 0.9).abs() < 1e-5 && (w[1] + 1.9).abs() < 1e-5,
            "{w:?}"
        );
    }
}
