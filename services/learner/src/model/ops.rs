//! Fused CPU operations with backward passes: RMS normalisation, the
//! SwiGLU activation, rotary embeddings and the log-probability of target
//! tokens. candle's own fused
//! versions have no gradients, and composing them from elementary
//! operations costs many passes over memory.

use std::mem::MaybeUninit;
use std::sync::Arc;

use candle_core::{
    CpuStorage, CustomOp1, CustomOp2, DType, Layout, Result, Shape, Storage, Tensor,
};
use rayon::prelude::*;

use super::fastmath::{self, sigmoid};

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

/// A vector of `len` values written by `fill`, without zeroing them first
/// (a pass over memory, and at this size often page faults, for values
/// about to be overwritten).
///
/// # Safety
/// `fill` must write every element of the slice it is given.
#[allow(unsafe_code)]
pub(super) unsafe fn written(len: usize, fill: impl FnOnce(&mut [MaybeUninit<f32>])) -> Vec<f32> {
    let mut out = Vec::with_capacity(len);
    fill(&mut out.spare_capacity_mut()[..len]);
    // SAFETY: the caller's `fill` initialised all `len` elements.
    unsafe { out.set_len(len) };
    out
}

/// Reads a contiguous f32 CPU tensor's values (a backward pass reading its
/// saved inputs).
fn with_values<R>(x: &Tensor, op: &str, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let (storage, layout) = x.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        candle_core::bail!("{op}: only CPU tensors are supported")
    };
    f(f32_slice(cpu, layout, op)?)
}

/// Rows of a `[rows, dim]` tensor handed to one parallel task.
const NORM_ROWS_PER_TASK: usize = 16;

/// `x / rms(x) · w` over the last dimension.
struct RmsNorm {
    eps: f32,
}

/// `(mean(row²) + eps)^-½`.
#[inline(always)]
fn inverse_rms(row: &[f32], eps: f32) -> f32 {
    let mean = fastmath::dot(row, row) / row.len().max(1) as f32;
    1.0 / (mean + eps).sqrt()
}

simd_kernel! {
    /// `out = x·r·w` for each row of `x` (`w.len()` values), `r` its
    /// [`inverse_rms`].
    fn rms_norm_rows(out: &mut [MaybeUninit<f32>], x: &[f32], w: &[f32], eps: f32) {
        let dim = w.len().max(1);
        for (row, dst) in x.chunks_exact(dim).zip(out.chunks_exact_mut(dim)) {
            let r = inverse_rms(row, eps);
            for ((d, v), g) in dst.iter_mut().zip(row).zip(w) {
                d.write(v * r * g);
            }
        }
    }
}

simd_kernel! {
    /// With `r` each row's [`inverse_rms`] and `y = x·r·w`:
    /// `dx = r·(g·w) − x·r³·mean(g·w·x)`, and `dw += g·x·r` summed over
    /// the rows.
    fn rms_norm_backward_rows(
        dx: &mut [f32],
        dw: &mut [f32],
        (x, grad, w): (&[f32], &[f32], &[f32]),
        eps: f32,
    ) {
        let dim = w.len().max(1);
        for ((dx, x), g) in dx
            .chunks_exact_mut(dim)
            .zip(x.chunks_exact(dim))
            .zip(grad.chunks_exact(dim))
        {
            let r = inverse_rms(x, eps);
            // dx holds g·w until the last pass.
            for ((dx, g), w) in dx.iter_mut().zip(g).zip(w) {
                *dx = g * w;
            }
            let r3_dot = r * r * r * fastmath::dot(dx, x) / dim as f32;
            for (((dx, x), g), dw) in dx.iter_mut().zip(x).zip(g).zip(dw.iter_mut()) {
                *dx = r * *dx - x * r3_dot;
                *dw += g * x * r;
            }
        }
    }
}

impl RmsNorm {
    fn gradients(&self, x: &[f32], w: &[f32], grad: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let dim = w.len().max(1);
        let mut dx = vec![0f32; x.len()];
        let task = NORM_ROWS_PER_TASK * dim;
        let dw = dx
            .par_chunks_mut(task)
            .zip(x.par_chunks(task))
            .zip(grad.par_chunks(task))
            .map(|((dx, x), grad)| {
                let mut dw = vec![0f32; dim];
                rms_norm_backward_rows(dx, &mut dw, (x, grad, w), self.eps);
                dw
            })
            .reduce(
                || vec![0f32; dim],
                |mut a, b| {
                    a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
                    a
                },
            );
        (dx, dw)
    }
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
        if l1.dims().last() != Some(&w.len()) {
            candle_core::bail!(
                "{}: weight of {} values for rows of {:?}",
                self.name(),
                w.len(),
                l1.dims()
            )
        }
        if x.len() % dim != 0 {
            candle_core::bail!("{}: rows of {dim} values expected", self.name())
        }
        // SAFETY: the chunks of `out` and `x` pair up (same length, and rows
        // of `dim` values), and `rms_norm_rows` writes each row it reads.
        #[allow(unsafe_code)]
        let out = unsafe {
            written(x.len(), |out| {
                out.par_chunks_mut(NORM_ROWS_PER_TASK * dim)
                    .zip(x.par_chunks(NORM_ROWS_PER_TASK * dim))
                    .for_each(|(out, x)| rms_norm_rows(out, x, w, self.eps));
            })
        };
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let (dx, dw) = with_values(x, self.name(), |xs| {
            with_values(w, self.name(), |ws| {
                with_values(&grad, self.name(), |gs| Ok(self.gradients(xs, ws, gs)))
            })
        })?;
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), x.device())?),
            Some(Tensor::from_vec(dw, w.shape(), w.device())?),
        ))
    }
}

pub fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    x.contiguous()?
        .apply_op2(&w.contiguous()?, RmsNorm { eps: eps as f32 })
}

/// Elements handed to one parallel task by the elementwise operations.
const ELEMENTS_PER_TASK: usize = 16 * 1024;

/// `silu(gate) · up`, the SwiGLU activation, over one tensor whose rows hold
/// the gate's values and then the up projection's (`[…, 2·I]` → `[…, I]`):
/// the output of one product with the two weights stacked.
struct SwiGlu;

/// Rows of the stacked `[gate | up]` tensor handed to one parallel task.
fn swiglu_rows_per_task(width: usize) -> usize {
    (ELEMENTS_PER_TASK / width.max(1)).max(1)
}

simd_kernel! {
    /// `silu(gate)·up` for each row of `stacked` (`[gate | up]`, `2·half`
    /// values) into a row of `half` values of `out`.
    fn swiglu_rows(out: &mut [MaybeUninit<f32>], stacked: &[f32], half: usize) {
        for (out, row) in out.chunks_exact_mut(half).zip(stacked.chunks_exact(2 * half)) {
            let (gate, up) = row.split_at(half);
            for ((o, g), u) in out.iter_mut().zip(gate).zip(up) {
                o.write(g * sigmoid(*g) * u);
            }
        }
    }
}

simd_kernel! {
    /// The gradient of [`swiglu_rows`] for the output's gradient `gs`:
    /// `d_up = g·silu(x)` and `d_gate = g·u·σ(x)·(1 + x·(1 − σ(x)))`.
    fn swiglu_backward_rows(ds: &mut [MaybeUninit<f32>], xs: &[f32], gs: &[f32], half: usize) {
        for ((ds, row), gs) in ds
            .chunks_exact_mut(2 * half)
            .zip(xs.chunks_exact(2 * half))
            .zip(gs.chunks_exact(half))
        {
            let (gate, up) = row.split_at(half);
            let (d_gate, d_up) = ds.split_at_mut(half);
            for ((((dx, du), x), u), g) in d_gate
                .iter_mut()
                .zip(d_up.iter_mut())
                .zip(gate)
                .zip(up)
                .zip(gs)
            {
                let s = sigmoid(*x);
                du.write(g * x * s);
                dx.write(g * u * s * (1.0 + x * (1.0 - s)));
            }
        }
    }
}

impl CustomOp1 for SwiGlu {
    fn name(&self) -> &'static str {
        "r1-swiglu"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let stacked = f32_slice(storage, layout, self.name())?;
        let dims = layout.dims();
        let width = dims.last().copied().unwrap_or(0);
        if width % 2 != 0 {
            candle_core::bail!(
                "{}: rows of {:?} do not hold a gate and an up half of equal width",
                self.name(),
                dims
            )
        }
        let half = width / 2;
        let mut out_dims = dims.to_vec();
        if let Some(last) = out_dims.last_mut() {
            *last = half;
        }
        let rows = swiglu_rows_per_task(half);
        // SAFETY: `stacked` holds whole rows of `width = 2·half` values, so
        // its chunks and those of `out` pair up row for row, and
        // `swiglu_rows` writes every output row.
        #[allow(unsafe_code)]
        let out = unsafe {
            written(stacked.len() / 2, |out| {
                if half > 0 {
                    out.par_chunks_mut(rows * half)
                        .zip(stacked.par_chunks(rows * width))
                        .for_each(|(out, stacked)| swiglu_rows(out, stacked, half));
                }
            })
        };
        Ok((CpuStorage::F32(out), Shape::from(out_dims)))
    }

    fn bwd(&self, stacked: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let grad = grad.contiguous()?;
        let width = stacked.dims().last().copied().unwrap_or(0);
        let half = width / 2;
        let d_stacked = with_values(stacked, self.name(), |xs| {
            with_values(&grad, self.name(), |gs| {
                if half == 0 {
                    return Ok(Vec::new());
                }
                if xs.len() % width != 0 || gs.len() * 2 != xs.len() {
                    candle_core::bail!(
                        "{}: a gradient of {} values for {} inputs in rows of {width}",
                        self.name(),
                        gs.len(),
                        xs.len()
                    )
                }
                let rows = swiglu_rows_per_task(half);
                // SAFETY: `xs` and `gs` hold the same whole number of rows
                // (checked above), so the three chunkings pair up row for
                // row, and `swiglu_backward_rows` writes every row of `ds`.
                #[allow(unsafe_code)]
                let d_stacked = unsafe {
                    written(xs.len(), |d_stacked| {
                        d_stacked
                            .par_chunks_mut(rows * width)
                            .zip(xs.par_chunks(rows * width))
                            .zip(gs.par_chunks(rows * half))
                            .for_each(|((ds, xs), gs)| swiglu_backward_rows(ds, xs, gs, half));
                    })
                };
                Ok(d_stacked)
            })
        })?;
        Ok(Some(Tensor::from_vec(
            d_stacked,
            stacked.shape(),
            stacked.device(),
        )?))
    }
}

/// `silu(gate) · up` in one pass (backward in one more) for `stacked`
/// `[…, 2·I]`, each row the gate's `I` values followed by the up
/// projection's: `[…, I]`.
pub fn swiglu(stacked: &Tensor) -> Result<Tensor> {
    stacked.contiguous()?.apply_op1(SwiGlu)
}

/// Rotary embedding in Hugging Face layout (`rotate_half`) for
/// `x: [B, T, H, D]` or `[B, T, D]` (token-major, as a projection's output is
/// laid out; any strides with contiguous rows) with tables `cos`, `sin`:
/// `[T, D]`. Token `t` of row `b` is rotated by its position: `t`, or
/// `positions[b·T + t]` when given (packed rows, where positions restart at
/// each example). With `rotated_heads`, only heads `0..rotated_heads` are
/// rotated and the rest are copied (the values of a stacked q/k/v tensor).
struct Rope {
    tables: RopeTables,
    positions: Option<Arc<[u32]>>,
    rotated_heads: Option<usize>,
    /// Rotate by −θ (the backward pass: the rotation's transpose).
    inverse: bool,
}

/// The rotary tables `cos`, `sin` (`[T, D]`) as values, read once per
/// forward pass and shared by every layer's rotations.
#[derive(Debug, Clone)]
pub struct RopeTables {
    cos: Arc<[f32]>,
    sin: Arc<[f32]>,
}

impl RopeTables {
    pub fn new(cos: &Tensor, sin: &Tensor) -> Result<Self> {
        let values = |t: &Tensor| -> Result<Arc<[f32]>> {
            Ok(Arc::from(
                t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?,
            ))
        };
        Ok(Self {
            cos: values(cos)?,
            sin: values(sin)?,
        })
    }
}

simd_kernel! {
    /// `row·cos + rotate_half(row)·sin·sign` into `dst` (`rotate_half`
    /// moves the second half, negated, before the first).
    fn rotate_row(
        dst: &mut [MaybeUninit<f32>],
        row: &[f32],
        (cos, sin): (&[f32], &[f32]),
        sign: f32,
    ) {
        let half = row.len() / 2;
        let (x1, x2) = row.split_at(half);
        let (d1, d2) = dst.split_at_mut(half);
        let (c1, c2) = cos.split_at(half);
        let (s1, s2) = sin.split_at(half);
        for (((d, a), b), (c, s)) in d1.iter_mut().zip(x1).zip(x2).zip(c1.iter().zip(s1)) {
            d.write(a * c - b * (s * sign));
        }
        for (((d, a), b), (c, s)) in d2.iter_mut().zip(x2).zip(x1).zip(c2.iter().zip(s2)) {
            d.write(a * c + b * (s * sign));
        }
    }
}

impl CustomOp1 for Rope {
    fn name(&self) -> &'static str {
        "r1-rope"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        // Any strides with contiguous rows: a transposed [B, T, H, D] view
        // of a projection is read in place.
        let CpuStorage::F32(data) = storage else {
            candle_core::bail!("{}: only f32 tensors are supported", self.name())
        };
        let dims = layout.dims();
        let (t, heads, d) = match *dims {
            [_, t, h, d] => (t, h, d),
            [_, t, d] => (t, 1, d),
            _ => candle_core::bail!(
                "{}: expects [B, T, H, D] or [B, T, D], got {:?}",
                self.name(),
                dims
            ),
        };
        if layout.stride()[dims.len() - 1] != 1 && d > 1 {
            candle_core::bail!("{}: the rows of {:?} must be contiguous", self.name(), dims)
        }
        if let Some(p) = &self.positions
            && p.len() != dims[0] * t
        {
            candle_core::bail!(
                "{}: {} positions for {} rows of {t} tokens",
                self.name(),
                p.len(),
                dims[0]
            )
        }
        let last = match &self.positions {
            Some(p) => p.iter().max().map_or(0, |&p| p as usize),
            None => t.saturating_sub(1),
        };
        let RopeTables { cos, sin } = &self.tables;
        if (last + 1) * d > cos.len().min(sin.len()) {
            candle_core::bail!(
                "{}: position {last} is beyond the rotary tables",
                self.name()
            )
        }
        let elements = layout.shape().elem_count();
        if elements == 0 {
            return Ok((CpuStorage::F32(Vec::new()), layout.shape().clone()));
        }
        if d % 2 != 0 {
            candle_core::bail!(
                "{}: rows of {d} values cannot be rotated in halves",
                self.name()
            )
        }
        let row_offset = |i: usize| {
            let (mut rest, mut offset) = (i, layout.start_offset());
            for (&dim, &stride) in dims[..dims.len() - 1].iter().zip(layout.stride()).rev() {
                offset += (rest % dim) * stride;
                rest /= dim;
            }
            offset
        };
        if row_offset(elements / d - 1) + d > data.len() {
            candle_core::bail!("{}: the layout exceeds its storage", self.name())
        }
        let sign = if self.inverse { -1.0f32 } else { 1.0 };
        let rotated = self.rotated_heads.unwrap_or(heads);
        let rotate = |(i, dst): (usize, &mut [MaybeUninit<f32>])| {
            let row = &data[row_offset(i)..][..d];
            if i % heads >= rotated {
                dst.write_copy_of_slice(row);
                return;
            }
            // Row i is head i % H of token (i / H) % T in batch row i / (T·H).
            let token = (i / heads) % t;
            let pos = match &self.positions {
                None => token,
                Some(p) => p[i / (heads * t) * t + token] as usize,
            };
            let (c, s) = (&cos[pos * d..pos * d + d], &sin[pos * d..pos * d + d]);
            rotate_row(dst, row, (c, s), sign);
        };
        // SAFETY: each chunk of `d` values is one row, copied whole or
        // rotated whole (`d` is even, so the two halves cover it).
        #[allow(unsafe_code)]
        let out = unsafe {
            written(elements, |out| {
                out.par_chunks_mut(d)
                    .enumerate()
                    .with_min_len(64)
                    .for_each(rotate);
            })
        };
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        // The rotation's transpose is the rotation by −θ.
        let inverse = Rope {
            tables: self.tables.clone(),
            positions: self.positions.clone(),
            rotated_heads: self.rotated_heads,
            inverse: !self.inverse,
        };
        Ok(Some(grad.contiguous()?.apply_op1(inverse)?))
    }
}

pub fn rope(x: &Tensor, tables: &RopeTables, positions: Option<&Arc<[u32]>>) -> Result<Tensor> {
    x.apply_op1(Rope {
        tables: tables.clone(),
        positions: positions.cloned(),
        rotated_heads: None,
        inverse: false,
    })
}

/// [`rope`] of the first `rotated` heads of `x: [B, T, H, D]`; heads
/// `rotated..H` are copied as they are (queries and keys rotated, values
/// not, in one pass over a stacked q/k/v tensor).
pub fn rope_leading_heads(
    x: &Tensor,
    rotated: usize,
    tables: &RopeTables,
    positions: Option<&Arc<[u32]>>,
) -> Result<Tensor> {
    match x.dims() {
        [_, _, heads, _] if rotated <= *heads => x.apply_op1(Rope {
            tables: tables.clone(),
            positions: positions.cloned(),
            rotated_heads: Some(rotated),
            inverse: false,
        }),
        dims => candle_core::bail!("r1-rope: cannot rotate {rotated} heads of {dims:?}"),
    }
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
#[inline(always)]
fn log_sum_exp_inline(row: &[f32]) -> f32 {
    let max = fastmath::max(row);
    max + fastmath::sum_exp_shifted(row, max).ln()
}

simd_kernel! {
    /// `log Σ exp(row)`, stable.
    fn log_sum_exp(row: &[f32]) -> f32 {
        log_sum_exp_inline(row)
    }
}

simd_kernel! {
    /// `d = −g·softmax(row)`, plus `g` at `target`: the gradient of
    /// `g·log softmax(row)[target]`.
    fn token_logprob_gradient(d: &mut [MaybeUninit<f32>], row: &[f32], target: usize, g: f32) {
        let lse = log_sum_exp_inline(row);
        for (d, v) in d.iter_mut().zip(row) {
            d.write(-g * fastmath::exp(v - lse));
        }
        if let (Some(d), Some(v)) = (d.get_mut(target), row.get(target)) {
            d.write(g - g * fastmath::exp(v - lse));
        }
    }
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
        if logits.len() != targets.len() * vocab || grad.len() != targets.len() {
            candle_core::bail!(
                "{}: one target and one gradient per row of logits",
                self.name()
            );
        }
        // SAFETY: logits, targets and gradients hold the same number of
        // rows (checked above), so the chunkings pair up row for row, and
        // `token_logprob_gradient` writes its whole row.
        #[allow(unsafe_code)]
        let out = unsafe {
            written(logits.len(), |out| {
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
                            token_logprob_gradient(d, row, t as usize, g);
                        }
                    });
            })
        };
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
    use candle_core::{D, Device, Var};

    use super::*;

    /// The largest `|a − b| / (1 + |b|)`: absolute near zero, relative for
    /// large values (the fused ops round differently from candle's).
    fn close(a: &Tensor, b: &Tensor) -> f32 {
        let scale = (b.abs().unwrap() + 1.0).unwrap();
        ((a - b).unwrap().abs().unwrap() / scale)
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
    fn fused_rms_norm_matches_the_composed_one_with_gradients() {
        let dev = Device::Cpu;
        // 39 rows: more than one parallel task, the last one partial.
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (3, 13, 8), &dev).unwrap()).unwrap();
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
        let weights = Tensor::rand(0f32, 1f32, (3, 13, 8), &dev).unwrap();
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
    fn fused_swiglu_matches_silu_times_up_with_gradients() {
        let dev = Device::Cpu;
        // More rows than one parallel task holds, the last task partial.
        let half = 40;
        let rows = swiglu_rows_per_task(half) * 2 + 3;
        let stacked =
            Var::from_tensor(&Tensor::randn(0f32, 3.0, (rows, 2, 2 * half), &dev).unwrap())
                .unwrap();
        check(
            |x| swiglu(x).unwrap(),
            |x| {
                let gate = x.narrow(D::Minus1, 0, half).unwrap();
                let up = x.narrow(D::Minus1, half, half).unwrap();
                (candle_nn::ops::silu(&gate).unwrap() * up).unwrap()
            },
            &stacked,
        );
        let odd = Tensor::zeros((2, 5), DType::F32, &dev).unwrap();
        let err = swiglu(&odd).expect_err("odd width");
        assert!(err.to_string().contains("equal width"), "{err}");
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
        let tables = RopeTables::new(&cos, &sin).unwrap();
        // [B, T, H, D] tokens; the tables broadcast over [B, H, T, D].
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (2, t, 3, d), &dev).unwrap()).unwrap();
        let composed = |x: &Tensor| {
            let x = x.transpose(1, 2).unwrap();
            let x1 = x.narrow(D::Minus1, 0, d / 2).unwrap();
            let x2 = x.narrow(D::Minus1, d / 2, d / 2).unwrap();
            let rotated = Tensor::cat(&[&x2.neg().unwrap(), &x1], D::Minus1).unwrap();
            (x.broadcast_mul(&cos).unwrap() + rotated.broadcast_mul(&sin).unwrap())
                .unwrap()
                .transpose(1, 2)
                .unwrap()
        };
        check(|x| rope(x, &tables, None).unwrap(), composed, &x);
        // A transposed view ([B, H, T, D] seen as [B, T, H, D]) is read in
        // place, with the same values and gradients.
        let stored =
            Var::from_tensor(&Tensor::randn(0f32, 1.0, (2, 3, t, d), &dev).unwrap()).unwrap();
        check(
            |x| rope(&x.transpose(1, 2).unwrap(), &tables, None).unwrap(),
            |x| composed(&x.transpose(1, 2).unwrap()),
            &stored,
        );
        // Only the leading heads of a stacked tensor; the rest are copied.
        check(
            |x| rope_leading_heads(x, 2, &tables, None).unwrap(),
            |x| {
                let rotated = composed(&x.narrow(2, 0, 2).unwrap());
                Tensor::cat(&[&rotated, &x.narrow(2, 2, 1).unwrap()], 2).unwrap()
            },
            &x,
        );
        assert!(rope_leading_heads(x.as_tensor(), 4, &tables, None).is_err());
        // Rows of an odd width have no halves to rotate.
        let odd = Tensor::zeros((1, t, 1, d - 1), candle_core::DType::F32, &dev).unwrap();
        let err = rope(&odd, &tables, None).expect_err("odd head dim");
        assert!(
            err.to_string().contains("cannot be rotated in halves"),
            "{err}"
        );
        // Three dimensions: one head.
        let x3 = Var::from_tensor(&Tensor::randn(0f32, 1.0, (2, t, d), &dev).unwrap()).unwrap();
        check(
            |x| rope(x, &tables, None).unwrap(),
            |x| composed(&x.unsqueeze(2).unwrap()).squeeze(2).unwrap(),
            &x3,
        );
    }

    #[test]
    fn rope_with_positions_rotates_each_token_by_its_own_position() {
        let dev = Device::Cpu;
        let (t, d) = (6, 8);
        let freqs = Tensor::randn(0f32, 1.0, (t, d / 2), &dev).unwrap();
        let freqs = Tensor::cat(&[&freqs, &freqs], 1).unwrap();
        let (cos, sin) = (freqs.cos().unwrap(), freqs.sin().unwrap());
        let tables = RopeTables::new(&cos, &sin).unwrap();
        let positions: Arc<[u32]> = Arc::from(vec![0, 1, 2, 3, 4, 5, 2, 0, 1, 5, 3, 4]);
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (2, t, 3, d), &dev).unwrap()).unwrap();
        // Row by row with the tables gathered at that row's positions.
        let composed = |x: &Tensor| {
            let x = x.transpose(1, 2).unwrap();
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
            Tensor::cat(&rows, 0).unwrap().transpose(1, 2).unwrap()
        };
        check(
            |x| rope(x, &tables, Some(&positions)).unwrap(),
            composed,
            &x,
        );
    }
}
