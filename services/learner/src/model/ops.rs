//! Fused CPU operations with backward passes: softmax over the last
//! dimension, RMS normalisation, rotary embeddings and the log-probability
//! of target tokens. candle's own fused
//! versions have no gradients, and composing them from elementary
//! operations costs many passes over memory.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, CustomOp2, D, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

pub(super) fn f32_slice<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
    op: &str,
) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else {
        candle_core::bail!("{op}: only f32 tensors are supported")
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("{op}: the input must be contiguous"),
    }
}

/// `softmax(x)` over the last dimension.
struct Softmax;

impl CustomOp1 for Softmax {
    fn name(&self) -> &'static str {
        "r1-softmax"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(storage, layout, self.name())?;
        let dim = layout.dims().last().copied().unwrap_or(1).max(1);
        let mut out = vec![0f32; x.len()];
        for (row, dst) in x.chunks_exact(dim).zip(out.chunks_exact_mut(dim)) {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0f32;
            for (d, v) in dst.iter_mut().zip(row) {
                *d = (v - max).exp();
                sum += *d;
            }
            let inv = 1.0 / sum;
            dst.iter_mut().for_each(|d| *d *= inv);
        }
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        // dx = y ⊙ (g − Σ g ⊙ y)
        let dot = (grad_res * res)?.sum_keepdim(D::Minus1)?;
        Ok(Some((res * grad_res.broadcast_sub(&dot)?)?))
    }
}

pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(Softmax)
}

/// Attention probabilities `softmax(x·scale + mask)` over the last dimension
/// for scores `x: [B, H, T, T]` and an additive mask `[1 or B, 1, T, T]`, in
/// one pass (rows in parallel) instead of a scale, a broadcast add and a
/// softmax.
struct AttentionProbs {
    scale: f32,
}

impl CustomOp2 for AttentionProbs {
    fn name(&self) -> &'static str {
        "r1-attention-probs"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(s1, l1, self.name())?;
        let mask = f32_slice(s2, l2, self.name())?;
        let (&[b, h, t, keys], &[mb, 1, mt, mk]) = (l1.dims(), l2.dims()) else {
            candle_core::bail!(
                "{}: expects scores [B, H, T, T] and a mask [B, 1, T, T], got {:?} and {:?}",
                self.name(),
                l1.dims(),
                l2.dims()
            )
        };
        if (mb != 1 && mb != b) || mt != t || mk != keys {
            candle_core::bail!(
                "{}: mask {:?} does not fit scores {:?}",
                self.name(),
                l2.dims(),
                l1.dims()
            )
        }
        let mut out = vec![0f32; x.len()];
        let keys = keys.max(1);
        out.par_chunks_mut(keys)
            .zip(x.par_chunks(keys))
            .enumerate()
            .for_each(|(i, (dst, row))| {
                let (batch, query) = (i / (h * t), i % t);
                let m = &mask[((batch % mb) * t + query) * keys..][..keys];
                let mut max = f32::NEG_INFINITY;
                for ((d, v), m) in dst.iter_mut().zip(row).zip(m) {
                    *d = v * self.scale + m;
                    max = max.max(*d);
                }
                if max == f32::NEG_INFINITY {
                    // A fully masked row (padding packed alone): no weights.
                    dst.iter_mut().for_each(|d| *d = 0.0);
                    return;
                }
                let mut sum = 0f32;
                for d in dst.iter_mut() {
                    *d = (*d - max).exp();
                    sum += *d;
                }
                let inv = 1.0 / sum;
                dst.iter_mut().for_each(|d| *d *= inv);
            });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        _mask: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        // dx = scale · y ⊙ (g − Σ g ⊙ y); the mask is a constant.
        let dot = (grad * res)?.sum_keepdim(D::Minus1)?;
        let dx = ((res * grad.broadcast_sub(&dot)?)? * f64::from(self.scale))?;
        Ok((Some(dx), None))
    }
}

/// `softmax(scores·scale + mask)` over the last dimension; see
/// [`AttentionProbs`] for the shapes.
pub fn attention_probs(scores: &Tensor, mask: &Tensor, scale: f64) -> Result<Tensor> {
    scores.contiguous()?.apply_op2(
        &mask.contiguous()?,
        AttentionProbs {
            scale: scale as f32,
        },
    )
}

/// `x / rms(x) · w` over the last dimension.
struct RmsNorm {
    eps: f32,
}

impl CustomOp2 for RmsNorm {
    fn name(&self) -> &'static str {
        "r1-rms-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(s1, l1, self.name())?;
        let w = f32_slice(s2, l2, self.name())?;
        let dim = w.len().max(1);
        let mut out = vec![0f32; x.len()];
        for (row, dst) in x.chunks_exact(dim).zip(out.chunks_exact_mut(dim)) {
            let mean = row.iter().map(|v| v * v).sum::<f32>() / dim as f32;
            let r = 1.0 / (mean + self.eps).sqrt();
            for ((d, v), g) in dst.iter_mut().zip(row).zip(w) {
                *d = v * r * g;
            }
        }
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        // r = (mean(x²) + eps)^-½, y = x·r·w
        // dx = r·(g·w) − x·r³·mean(g·w·x);  dw = Σ_rows g·x·r
        let dim = x.dim(D::Minus1)? as f64;
        let r = ((x.sqr()?.mean_keepdim(D::Minus1)? + f64::from(self.eps))?
            .sqrt()?
            .recip())?;
        let gw = grad.broadcast_mul(w)?;
        let dot = ((&gw * x)?.sum_keepdim(D::Minus1)? / dim)?;
        let r3 = r.powf(3.0)?;
        let dx = (gw.broadcast_mul(&r)? - x.broadcast_mul(&(r3 * dot)?)?)?;
        let rows = x.elem_count() / x.dim(D::Minus1)?;
        let dw = (grad * x.broadcast_mul(&r)?)?
            .reshape((rows, x.dim(D::Minus1)?))?
            .sum(0)?;
        Ok((Some(dx), Some(dw)))
    }
}

pub fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    x.contiguous()?
        .apply_op2(&w.contiguous()?, RmsNorm { eps: eps as f32 })
}

/// Rotary embedding in Hugging Face layout (`rotate_half`) for
/// `x: [B, H, T, D]` with tables `cos`, `sin`: `[T, D]`. Token `t` of row `b`
/// is rotated by its position: `t`, or `positions[b·T + t]` when given (packed
/// rows, where positions restart at each example).
struct Rope {
    cos: Vec<f32>,
    sin: Vec<f32>,
    positions: Option<Arc<[u32]>>,
}

impl CustomOp1 for Rope {
    fn name(&self) -> &'static str {
        "r1-rope"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(storage, layout, self.name())?;
        let dims = layout.dims();
        let (t, d) = (dims[dims.len() - 2], dims[dims.len() - 1]);
        let rows_per_batch = if dims.len() == 4 { dims[1] * t } else { t };
        let half = d / 2;
        let mut out = vec![0f32; x.len()];
        for (i, (row, dst)) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)).enumerate() {
            let pos = match &self.positions {
                None => i % t,
                Some(p) => p[(i / rows_per_batch) * t + i % t] as usize,
            };
            let (c, s) = (
                &self.cos[pos * d..pos * d + d],
                &self.sin[pos * d..pos * d + d],
            );
            for j in 0..half {
                dst[j] = row[j] * c[j] - row[j + half] * s[j];
                dst[j + half] = row[j + half] * c[j + half] + row[j] * s[j + half];
            }
        }
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        // The rotation's transpose is the rotation by −θ.
        let inverse = Rope {
            cos: self.cos.clone(),
            sin: self.sin.iter().map(|s| -s).collect(),
            positions: self.positions.clone(),
        };
        Ok(Some(grad.contiguous()?.apply_op1(inverse)?))
    }
}

pub fn rope(
    x: &Tensor,
    cos: &Tensor,
    sin: &Tensor,
    positions: Option<&Arc<[u32]>>,
) -> Result<Tensor> {
    let op = Rope {
        cos: cos.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?,
        sin: sin.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?,
        positions: positions.cloned(),
    };
    x.contiguous()?.apply_op1(op)
}

fn u32_slice<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> Result<&'a [u32]> {
    let CpuStorage::U32(data) = storage else {
        candle_core::bail!("{op}: targets must be u32")
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("{op}: the targets must be contiguous"),
    }
}

/// `log Σ exp(row)`, stable.
fn log_sum_exp(row: &[f32]) -> f32 {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    max + row.iter().map(|v| (v - max).exp()).sum::<f32>().ln()
}

/// Rows of `[rows, vocab]` logits processed in parallel, this many at a time.
const ROWS_PER_TASK: usize = 8;

/// `log softmax(logits)[target]` per row: logits `[…, V]`, targets `[…]`.
struct TokenLogprobs;

impl CustomOp2 for TokenLogprobs {
    fn name(&self) -> &'static str {
        "r1-token-logprobs"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let logits = f32_slice(s1, l1, self.name())?;
        let targets = u32_slice(s2, l2, self.name())?;
        let vocab = l1.dims().last().copied().unwrap_or(1).max(1);
        if logits.len() != targets.len() * vocab {
            candle_core::bail!("{}: one target per row of logits", self.name());
        }
        let mut out = vec![0f32; targets.len()];
        out.par_chunks_mut(ROWS_PER_TASK)
            .zip(logits.par_chunks(ROWS_PER_TASK * vocab))
            .zip(targets.par_chunks(ROWS_PER_TASK))
            .try_for_each(|((dst, rows), targets)| {
                for ((d, row), &t) in dst.iter_mut().zip(rows.chunks_exact(vocab)).zip(targets) {
                    let picked = *row
                        .get(t as usize)
                        .ok_or_else(|| candle_core::Error::msg("target beyond the vocabulary"))?;
                    *d = picked - log_sum_exp(row);
                }
                Ok::<(), candle_core::Error>(())
            })?;
        Ok((CpuStorage::F32(out), l2.shape().clone()))
    }

    fn bwd(
        &self,
        logits: &Tensor,
        targets: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = logits.apply_op3(
            &targets.contiguous()?,
            &grad_res.contiguous()?,
            TokenLogprobsGrad,
        )?;
        Ok((Some(grad), None))
    }
}

/// The gradient of [`TokenLogprobs`] with respect to the logits, in one
/// pass: `g · (onehot(target) − softmax(row))`.
struct TokenLogprobsGrad;

impl candle_core::CustomOp3 for TokenLogprobsGrad {
    fn name(&self) -> &'static str {
        "r1-token-logprobs-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let logits = f32_slice(s1, l1, self.name())?;
        let targets = u32_slice(s2, l2, self.name())?;
        let grad = f32_slice(s3, l3, self.name())?;
        let vocab = l1.dims().last().copied().unwrap_or(1).max(1);
        let mut out = vec![0f32; logits.len()];
        out.par_chunks_mut(ROWS_PER_TASK * vocab)
            .zip(logits.par_chunks(ROWS_PER_TASK * vocab))
            .zip(
                targets
                    .par_chunks(ROWS_PER_TASK)
                    .zip(grad.par_chunks(ROWS_PER_TASK)),
            )
            .for_each(|((dst, rows), (targets, grad))| {
                for (((d, row), &t), &g) in dst
                    .chunks_exact_mut(vocab)
                    .zip(rows.chunks_exact(vocab))
                    .zip(targets)
                    .zip(grad)
                {
                    let lse = log_sum_exp(row);
                    for (d, v) in d.iter_mut().zip(row) {
                        *d = -g * (v - lse).exp();
                    }
                    if let Some(d) = d.get_mut(t as usize) {
                        *d += g;
                    }
                }
            });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// `log softmax(logits)[target]` for `logits: [B, T, V]` (f32) and
/// `targets: [B, T]` (u32), with its gradient, without materialising the
/// log-softmax: for a 49 k vocabulary that saves several logits-sized
/// temporaries per pass.
pub fn token_logprobs(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    logits
        .contiguous()?
        .apply_op2(&targets.contiguous()?, TokenLogprobs)
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};

    use super::*;

    fn close(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    fn check<F: Fn(&Tensor) -> Tensor, G: Fn(&Tensor) -> Tensor>(fused: F, reference: G, x: &Var) {
        let a = fused(x.as_tensor());
        let b = reference(x.as_tensor());
        assert!(close(&a, &b) < 1e-5, "forward differs by {}", close(&a, &b));
        let weights = Tensor::rand(0f32, 1f32, a.shape(), &Device::Cpu).unwrap();
        let ga = (a * &weights)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let gb = (b * &weights)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let (ga, gb) = (
            ga.get(x.as_tensor()).unwrap(),
            gb.get(x.as_tensor()).unwrap(),
        );
        assert!(
            close(ga, gb) < 1e-4,
            "gradient differs by {}",
            close(ga, gb)
        );
    }

    #[test]
    fn fused_softmax_matches_the_composed_one_with_gradients() {
        let x =
            Var::from_tensor(&Tensor::randn(0f32, 2.0, (3, 4, 7), &Device::Cpu).unwrap()).unwrap();
        check(
            |t| softmax_last_dim(t).unwrap(),
            |t| candle_nn::ops::softmax(t, D::Minus1).unwrap(),
            &x,
        );
    }

    #[test]
    fn fused_attention_probs_match_scale_mask_softmax_with_gradients() {
        let dev = Device::Cpu;
        let (b, h, t) = (2, 3, 5);
        let x = Var::from_tensor(&Tensor::randn(0f32, 2.0, (b, h, t, t), &dev).unwrap()).unwrap();
        // A causal mask per row of the batch, the second with one more key hidden.
        let mask: Vec<f32> = (0..b * t * t)
            .map(|i| {
                let (row, q, k) = (i / (t * t), (i / t) % t, i % t);
                if k > q || (row == 1 && k == 0 && q > 0) {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
            .collect();
        let mask = Tensor::from_vec(mask, (b, 1, t, t), &dev).unwrap();
        let scale = 0.3;
        check(
            |s| attention_probs(s, &mask, scale).unwrap(),
            |s| {
                let scores = (s * scale).unwrap().broadcast_add(&mask).unwrap();
                candle_nn::ops::softmax(&scores, D::Minus1).unwrap()
            },
            &x,
        );
        // One mask for the whole batch broadcasts the same way.
        let first = mask.narrow(0, 0, 1).unwrap();
        let a = attention_probs(x.as_tensor(), &first, scale).unwrap();
        let c = candle_nn::ops::softmax(
            &(x.as_tensor() * scale)
                .unwrap()
                .broadcast_add(&first)
                .unwrap(),
            D::Minus1,
        )
        .unwrap();
        assert!(close(&a, &c) < 1e-5);
    }

    #[test]
    fn fused_rms_norm_matches_the_composed_one_with_gradients() {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (2, 5, 8), &dev).unwrap()).unwrap();
        let w = Var::from_tensor(&Tensor::randn(1f32, 0.1, 8, &dev).unwrap()).unwrap();
        let composed = |t: &Tensor| {
            let v = (t.sqr().unwrap().mean_keepdim(D::Minus1).unwrap() + 1e-5).unwrap();
            t.broadcast_div(&v.sqrt().unwrap())
                .unwrap()
                .broadcast_mul(w.as_tensor())
                .unwrap()
        };
        check(|t| rms_norm(t, w.as_tensor(), 1e-5).unwrap(), composed, &x);
        // The weight's gradient too.
        let weights = Tensor::rand(0f32, 1f32, (2, 5, 8), &dev).unwrap();
        let ga = (rms_norm(x.as_tensor(), w.as_tensor(), 1e-5).unwrap() * &weights)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let gb = (composed(x.as_tensor()) * &weights)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        assert!(
            close(
                ga.get(w.as_tensor()).unwrap(),
                gb.get(w.as_tensor()).unwrap()
            ) < 1e-4
        );
    }

    #[test]
    fn fused_token_logprobs_match_log_softmax_gather_with_gradients() {
        let dev = Device::Cpu;
        let (b, t, v) = (2, 5, 11);
        let logits = Var::from_tensor(&Tensor::randn(0f32, 3.0, (b, t, v), &dev).unwrap()).unwrap();
        let targets = Tensor::from_vec(
            (0..(b * t) as u32).map(|i| (i * 7) % v as u32).collect(),
            (b, t),
            &dev,
        )
        .unwrap();
        let composed = |x: &Tensor| {
            let lse = x.log_sum_exp(D::Minus1).unwrap();
            let picked = x
                .gather(&targets.unsqueeze(D::Minus1).unwrap(), D::Minus1)
                .unwrap()
                .squeeze(D::Minus1)
                .unwrap();
            (picked - lse).unwrap()
        };
        check(|x| token_logprobs(x, &targets).unwrap(), composed, &logits);
        let beyond = Tensor::from_vec(vec![v as u32; b * t], (b, t), &dev).unwrap();
        assert!(token_logprobs(logits.as_tensor(), &beyond).is_err());
    }

    #[test]
    fn fused_rope_matches_rotate_half_with_gradients() {
        let dev = Device::Cpu;
        let (t, d) = (6, 8);
        let freqs = Tensor::randn(0f32, 1.0, (t, d / 2), &dev).unwrap();
        let freqs = Tensor::cat(&[&freqs, &freqs], 1).unwrap();
        let (cos, sin) = (freqs.cos().unwrap(), freqs.sin().unwrap());
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (2, 3, t, d), &dev).unwrap()).unwrap();
        let composed = |x: &Tensor| {
            let x1 = x.narrow(D::Minus1, 0, d / 2).unwrap();
            let x2 = x.narrow(D::Minus1, d / 2, d / 2).unwrap();
            let rotated = Tensor::cat(&[&x2.neg().unwrap(), &x1], D::Minus1).unwrap();
            (x.broadcast_mul(&cos).unwrap() + rotated.broadcast_mul(&sin).unwrap()).unwrap()
        };
        check(|x| rope(x, &cos, &sin, None).unwrap(), composed, &x);
    }

    #[test]
    fn rope_with_positions_rotates_each_token_by_its_own_position() {
        let dev = Device::Cpu;
        let (t, d) = (6, 8);
        let freqs = Tensor::randn(0f32, 1.0, (t, d / 2), &dev).unwrap();
        let freqs = Tensor::cat(&[&freqs, &freqs], 1).unwrap();
        let (cos, sin) = (freqs.cos().unwrap(), freqs.sin().unwrap());
        let positions: Arc<[u32]> = Arc::from(vec![0, 1, 2, 3, 4, 5, 2, 0, 1, 5, 3, 4]);
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (2, 3, t, d), &dev).unwrap()).unwrap();
        // Row by row with the tables gathered at that row's positions.
        let composed = |x: &Tensor| {
            let rows: Vec<Tensor> = (0..2)
                .map(|b| {
                    let at = Tensor::from_slice(&positions[b * t..(b + 1) * t], t, &dev).unwrap();
                    let (c, s) = (
                        cos.index_select(&at, 0).unwrap(),
                        sin.index_select(&at, 0).unwrap(),
                    );
                    let xb = x.narrow(0, b, 1).unwrap();
                    let x1 = xb.narrow(D::Minus1, 0, d / 2).unwrap();
                    let x2 = xb.narrow(D::Minus1, d / 2, d / 2).unwrap();
                    let rotated = Tensor::cat(&[&x2.neg().unwrap(), &x1], D::Minus1).unwrap();
                    (xb.broadcast_mul(&c).unwrap() + rotated.broadcast_mul(&s).unwrap()).unwrap()
                })
                .collect();
            Tensor::cat(&rows, 0).unwrap()
        };
        check(
            |x| rope(x, &cos, &sin, Some(&positions)).unwrap(),
            composed,
            &x,
        );
    }
}
