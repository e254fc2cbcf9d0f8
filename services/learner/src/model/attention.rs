//! Causal self-attention as one operation with its backward pass:
//! `softmax(Q·Kᵀ·scale + causal mask)·V` per head, grouped-query heads
//! reading their shared key/value head directly (no repeated copies).
//!
//! Queries, keys and values come stacked in one token-major tensor,
//! `[B, T, heads + 2·kv_heads, D]`, as one product with the three weights
//! stacked lays them out, and the output is `[B, T, heads, D]`: the graph
//! holds no transposes or slices (whose backward passes candle accumulates
//! through zero-filled copies and strided additions), and the backward pass
//! returns one stacked gradient for the one product's backward. Each
//! (batch row, head) is two BLAS products and a softmax on one thread, rows
//! and heads spread over rayon's threads. The backward pass recomputes the
//! probabilities instead of keeping the `[B, H, T, T]` tensor alive between
//! the passes.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Storage, Tensor};
use rayon::prelude::*;

use super::blas::{Operand, gemm};
use super::fastmath;

/// Where the `T × D` matrix of each (batch row, head) of one `[B, T, heads, D]`
/// tensor lies in its storage: any strides, as long as each row of `D`
/// values is contiguous. `dims` are `[B, heads, T, D]`.
#[derive(Debug, Clone, Copy)]
struct Heads<'a> {
    data: &'a [f32],
    dims: [usize; 4],
    start: usize,
    batch_stride: usize,
    head_stride: usize,
    row_stride: usize,
}

impl<'a> Heads<'a> {
    fn new(storage: &'a CpuStorage, layout: &Layout, what: &str) -> Result<Self> {
        let CpuStorage::F32(data) = storage else {
            candle_core::bail!("r1-attention: {what} must be f32")
        };
        let (&[b, t, h, d], &[sb, st, sh, sd]) = (layout.dims(), layout.stride()) else {
            candle_core::bail!(
                "r1-attention: {what} must be [B, T, heads, D], got {:?}",
                layout.dims()
            )
        };
        if sd != 1 && d > 1 {
            candle_core::bail!("r1-attention: the rows of {what} must be contiguous")
        }
        Ok(Self {
            data,
            dims: [b, h, t, d],
            start: layout.start_offset(),
            batch_stride: sb,
            head_stride: sh,
            // A single row has no stride of its own to speak of.
            row_stride: if t == 1 { d } else { st },
        })
    }

    /// Heads `first..first + count` only.
    fn select(&self, first: usize, count: usize) -> Self {
        let [b, _, t, d] = self.dims;
        Self {
            dims: [b, count, t, d],
            start: self.start + first * self.head_stride,
            ..*self
        }
    }

    /// The `T × D` matrix of `head` in batch row `batch`.
    fn matrix(&self, batch: usize, head: usize, transposed: bool) -> Operand<'a> {
        Operand {
            data: self.data,
            offset: self.start + batch * self.batch_stride + head * self.head_stride,
            ld: self.row_stride,
            transposed,
        }
    }
}

/// Head-major parts (`[B, heads, T, D]` each, as computed) laid out
/// token-major and side by side: `[B, T, Σ heads, D]`, each token's heads of
/// the first part, then those of the second, and so on.
fn token_major(parts: &[(&[f32], usize)], batch: usize, len: usize, dim: usize) -> Vec<f32> {
    let width: usize = parts.iter().map(|(_, heads)| heads * dim).sum();
    if batch * len * width == 0 {
        return Vec::new();
    }
    for (x, heads) in parts {
        assert_eq!(x.len(), batch * heads * len * dim, "head-major part");
    }
    // SAFETY: each chunk is one token's row of `width = Σ heads · dim`
    // values, and the loops copy `dim` values into each of its `Σ heads`
    // slots.
    #[allow(unsafe_code)]
    unsafe {
        super::ops::written(batch * len * width, |out| {
            out.par_chunks_mut(width)
                .enumerate()
                .with_min_len(16)
                .for_each(|(row, dst)| {
                    let (b, token) = (row / len, row % len);
                    let mut dst = dst.chunks_exact_mut(dim);
                    for (x, heads) in parts {
                        for (head, dst) in (0..*heads).zip(&mut dst) {
                            let src = ((b * heads + head) * len + token) * dim;
                            dst.write_copy_of_slice(&x[src..src + dim]);
                        }
                    }
                });
        })
    }
}

simd_kernel! {
    /// Turns `len × len` scaled scores into attention probabilities: each
    /// query's softmax over its keys, zero elsewhere. A query attends every
    /// earlier key, or with `positions` (each token's position within its
    /// packed example) those of its own example.
    fn causal_softmax(scores: &mut [f32], len: usize, positions: Option<&[u32]>) {
        for (query, row) in scores.chunks_exact_mut(len).enumerate() {
            let first = positions.map_or(0, |p| query.saturating_sub(p[query] as usize));
            let (before, rest) = row.split_at_mut(first);
            let (keys, after) = rest.split_at_mut(query + 1 - first);
            before.fill(0.0);
            after.fill(0.0);
            let max = fastmath::max(keys);
            let inv = 1.0 / fastmath::exp_shifted_in_place(keys, max);
            keys.iter_mut().for_each(|s| *s *= inv);
        }
    }
}

simd_kernel! {
    /// The scores' gradient from the probabilities' `dprobs` (in place), for
    /// one head (`len × len`): `dS = P ⊙ (dP − rowsum(dO ⊙ O))`, reading
    /// the output `O` and its gradient `dO` as `len` rows of `dim` values,
    /// `out_ld` and `grad_ld` apart.
    fn softmax_backward(
        dprobs: &mut [f32],
        probs: &[f32],
        (out, grad): (&[f32], &[f32]),
        (out_ld, grad_ld): (usize, usize),
        (len, dim): (usize, usize),
    ) {
        for (row, (ds, p)) in dprobs
            .chunks_exact_mut(len)
            .zip(probs.chunks_exact(len))
            .enumerate()
        {
            let delta = fastmath::dot(&out[row * out_ld..][..dim], &grad[row * grad_ld..][..dim]);
            for (ds, p) in ds.iter_mut().zip(p) {
                *ds = p * (*ds - delta);
            }
        }
    }
}

/// Reads a tensor's CPU storage for [`Heads`].
fn with_heads<R>(x: &Tensor, what: &str, f: impl FnOnce(Heads<'_>) -> Result<R>) -> Result<R> {
    let (storage, layout) = x.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        candle_core::bail!("r1-attention: only CPU tensors are supported")
    };
    f(Heads::new(cpu, layout, what)?)
}

/// `softmax(Q·Kᵀ·scale)·V` with query `q` of row `b` attending the keys
/// `q − positions[b·T + q] ..= q`: every earlier key (`positions` absent), or
/// those of its own example when several are packed into a row and
/// `positions` counts from each example's start.
#[derive(Debug, Clone)]
pub struct CausalAttention {
    scale: f32,
    positions: Option<Arc<[u32]>>,
    heads: usize,
    kv_heads: usize,
}

/// The shapes of one call: `heads` query heads sharing `kv_heads` key/value
/// heads in groups of `heads / kv_heads`.
#[derive(Debug, Clone, Copy)]
struct Shapes {
    batch: usize,
    heads: usize,
    kv_heads: usize,
    len: usize,
    dim: usize,
}

impl Shapes {
    fn group(&self) -> usize {
        self.heads / self.kv_heads
    }
}

impl CausalAttention {
    /// The queries, keys and values of a stacked `[B, T, heads + 2·kv_heads, D]`.
    fn split<'a>(&self, stacked: Heads<'a>) -> Result<(Heads<'a>, Heads<'a>, Heads<'a>)> {
        let (h, kv) = (self.heads, self.kv_heads);
        if stacked.dims[1] != h + 2 * kv {
            candle_core::bail!(
                "r1-attention: {} stacked heads are not {h} query heads and twice {kv} key/value heads",
                stacked.dims[1]
            )
        }
        Ok((
            stacked.select(0, h),
            stacked.select(h, kv),
            stacked.select(h + kv, kv),
        ))
    }

    fn shapes(&self, q: &Heads<'_>, k: &Heads<'_>, v: &Heads<'_>) -> Result<Shapes> {
        let [b, h, t, d] = q.dims;
        let kv = k.dims[1];
        if k.dims != v.dims || k.dims[0] != b || k.dims[2] != t || k.dims[3] != d {
            candle_core::bail!(
                "r1-attention: keys {:?} and values {:?} do not fit queries {:?}",
                k.dims,
                v.dims,
                q.dims
            )
        }
        if kv == 0 || h % kv != 0 {
            candle_core::bail!("r1-attention: {h} query heads cannot share {kv} key/value heads")
        }
        if let Some(p) = &self.positions
            && p.len() != b * t
        {
            candle_core::bail!(
                "r1-attention: {} positions for {b} rows of {t} tokens",
                p.len()
            )
        }
        Ok(Shapes {
            batch: b,
            heads: h,
            kv_heads: kv,
            len: t,
            dim: d,
        })
    }

    /// The positions of row `batch`'s tokens within their examples, when
    /// packed.
    fn row_positions(&self, batch: usize, len: usize) -> Option<&[u32]> {
        self.positions
            .as_deref()
            .map(|p| &p[batch * len..(batch + 1) * len])
    }

    /// The probabilities of `head` in row `batch` into `probs` (`T × T`).
    fn probabilities(
        &self,
        shapes: Shapes,
        (q, k): (&Heads<'_>, &Heads<'_>),
        (batch, head): (usize, usize),
        probs: &mut [f32],
    ) -> Result<()> {
        let Shapes { len, dim, .. } = shapes;
        gemm(
            (len, len, dim),
            self.scale,
            q.matrix(batch, head, false),
            k.matrix(batch, head / shapes.group(), true),
            0.0,
            probs,
            len,
        )?;
        causal_softmax(probs, len, self.row_positions(batch, len));
        Ok(())
    }

    /// The gradients of `q`, `k` and `v`, stacked token-major as they came,
    /// for the output `out` and its gradient `grad`.
    fn gradients(
        &self,
        (q, k, v): (&Heads<'_>, &Heads<'_>, &Heads<'_>),
        out: &Heads<'_>,
        grad: &Heads<'_>,
    ) -> Result<Vec<f32>> {
        let shapes = self.shapes(q, k, v)?;
        let Shapes {
            batch,
            heads,
            kv_heads,
            len,
            dim,
        } = shapes;
        let group = shapes.group();
        let matrix = len * dim;
        let mut dq = vec![0f32; batch * heads * matrix];
        let mut dk = vec![0f32; batch * kv_heads * matrix];
        let mut dv = vec![0f32; batch * kv_heads * matrix];
        if matrix == 0 {
            return Ok(Vec::new());
        }
        dq.par_chunks_mut(group * matrix)
            .zip(dk.par_chunks_mut(matrix))
            .zip(dv.par_chunks_mut(matrix))
            .enumerate()
            .try_for_each_init(
                || (vec![0f32; len * len], vec![0f32; len * len]),
                |(probs, dprobs), (i, ((dq, dk), dv))| {
                    let (b, kv) = (i / kv_heads, i % kv_heads);
                    for (member, dq) in dq.chunks_exact_mut(matrix).enumerate() {
                        let h = kv * group + member;
                        self.probabilities(shapes, (q, k), (b, h), probs)?;
                        let probs_t = Operand {
                            data: probs,
                            offset: 0,
                            ld: len,
                            transposed: true,
                        };
                        // dV += Pᵀ·dO
                        gemm(
                            (len, dim, len),
                            1.0,
                            probs_t,
                            grad.matrix(b, h, false),
                            1.0,
                            dv,
                            dim,
                        )?;
                        // dP = dO·Vᵀ
                        gemm(
                            (len, len, dim),
                            1.0,
                            grad.matrix(b, h, false),
                            v.matrix(b, kv, true),
                            0.0,
                            dprobs,
                            len,
                        )?;
                        // dS = P ⊙ (dP − rowsum(dO ⊙ O))
                        let (o, g) = (out.matrix(b, h, false), grad.matrix(b, h, false));
                        softmax_backward(
                            dprobs,
                            probs,
                            (&o.data[o.offset..], &g.data[g.offset..]),
                            (o.ld, g.ld),
                            (len, dim),
                        );
                        let ds = Operand {
                            data: dprobs,
                            offset: 0,
                            ld: len,
                            transposed: false,
                        };
                        // dQ = scale·dS·K;  dK += scale·dSᵀ·Q
                        gemm(
                            (len, dim, len),
                            self.scale,
                            ds,
                            k.matrix(b, kv, false),
                            0.0,
                            dq,
                            dim,
                        )?;
                        gemm(
                            (len, dim, len),
                            self.scale,
                            Operand {
                                transposed: true,
                                ..ds
                            },
                            q.matrix(b, h, false),
                            1.0,
                            dk,
                            dim,
                        )?;
                    }
                    Ok::<(), candle_core::Error>(())
                },
            )?;
        Ok(token_major(
            &[(&dq, heads), (&dk, kv_heads), (&dv, kv_heads)],
            batch,
            len,
            dim,
        ))
    }
}

impl CustomOp1 for CausalAttention {
    fn name(&self) -> &'static str {
        "r1-causal-attention"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (q, k, v) = self.split(Heads::new(storage, layout, "the stacked q/k/v")?)?;
        let shapes = self.shapes(&q, &k, &v)?;
        let Shapes {
            heads, len, dim, ..
        } = shapes;
        let matrix = len * dim;
        let mut out = vec![0f32; shapes.batch * heads * matrix];
        if matrix > 0 {
            out.par_chunks_mut(matrix).enumerate().try_for_each_init(
                || vec![0f32; len * len],
                |probs, (i, out)| {
                    let (b, h) = (i / heads, i % heads);
                    self.probabilities(shapes, (&q, &k), (b, h), probs)?;
                    gemm(
                        (len, dim, len),
                        1.0,
                        Operand {
                            data: probs,
                            offset: 0,
                            ld: len,
                            transposed: false,
                        },
                        v.matrix(b, h / shapes.group(), false),
                        0.0,
                        out,
                        dim,
                    )
                },
            )?;
        }
        let out = token_major(&[(&out, heads)], shapes.batch, len, dim);
        Ok((
            CpuStorage::F32(out),
            Shape::from((shapes.batch, len, heads, dim)),
        ))
    }

    fn bwd(&self, stacked: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let grad = grad.contiguous()?;
        let d_stacked = with_heads(stacked, "the stacked q/k/v", |all| {
            let (qh, kh, vh) = self.split(all)?;
            with_heads(res, "the output", |oh| {
                with_heads(&grad, "the output's gradient", |gh| {
                    self.gradients((&qh, &kh, &vh), &oh, &gh)
                })
            })
        })?;
        Ok(Some(Tensor::from_vec(
            d_stacked,
            stacked.shape(),
            stacked.device(),
        )?))
    }
}

/// Causal attention over `stacked: [B, T, heads + 2·kv_heads, D]`, each
/// token's `heads` query heads, then its `kv_heads` key heads, then as many
/// value heads (`heads` a multiple of `kv_heads`; any strides with
/// contiguous rows): `[B, T, heads, D]`. With `positions` (`[B·T]`, each
/// token's position within its example) a query attends only its own
/// example.
pub fn causal_attention(
    stacked: &Tensor,
    (heads, kv_heads): (usize, usize),
    scale: f64,
    positions: Option<&Arc<[u32]>>,
) -> Result<Tensor> {
    stacked.apply_op1(CausalAttention {
        scale: scale as f32,
        positions: positions.cloned(),
        heads,
        kv_heads,
    })
}

#[cfg(test)]
mod tests {
    use candle_core::{D, Device, Var};

    use super::*;

    fn tensor(dims: (usize, usize, usize, usize), seed: usize) -> Var {
        let n = dims.0 * dims.1 * dims.2 * dims.3;
        let data: Vec<f32> = (0..n)
            .map(|i| (((i * 37 + seed * 11) % 29) as f32 - 14.0) / 9.0)
            .collect();
        Var::from_tensor(&Tensor::from_vec(data, dims, &Device::Cpu).expect("tensor")).expect("var")
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .and_then(|d| d.abs())
            .and_then(|d| d.max_all())
            .and_then(|d| d.to_scalar::<f32>())
            .expect("difference")
    }

    /// The same attention from candle's elementary operations, heads first,
    /// with the key/value heads repeated and an additive mask.
    fn composed(q: &Tensor, k: &Tensor, v: &Tensor, mask: &Tensor, scale: f64) -> Tensor {
        let heads_first = |x: &Tensor| {
            x.transpose(1, 2)
                .expect("transpose")
                .contiguous()
                .expect("copy")
        };
        let (q, k, v) = (&heads_first(q), &heads_first(k), &heads_first(v));
        let group = q.dim(1).expect("heads") / k.dim(1).expect("kv heads");
        let repeat = |x: &Tensor| {
            let (b, kv, t, d) = x.dims4().expect("dims");
            x.unsqueeze(2)
                .and_then(|x| x.broadcast_as((b, kv, group, t, d)))
                .and_then(|x| x.reshape((b, kv * group, t, d)))
                .expect("repeat")
        };
        let (k, v) = (repeat(k), repeat(v));
        let scores = (q.matmul(&k.t().expect("t")).expect("scores") * scale)
            .and_then(|s| s.broadcast_add(mask))
            .expect("masked");
        candle_nn::ops::softmax(&scores, D::Minus1)
            .and_then(|p| p.matmul(&v))
            .and_then(|o| o.transpose(1, 2))
            .expect("attention")
    }

    /// Output and all three gradients of the fused op against `composed`.
    fn check(dims: (usize, usize, usize, usize, usize), positions: Option<Arc<[u32]>>) {
        let (b, h, kv, t, d) = (dims.0, dims.1, dims.2, dims.3, dims.4);
        let (q, k, v) = (
            tensor((b, t, h, d), 1),
            tensor((b, t, kv, d), 2),
            tensor((b, t, kv, d), 3),
        );
        let mask: Vec<f32> = (0..b * t * t)
            .map(|i| {
                let (row, query, key) = (i / (t * t), i / t % t, i % t);
                let first = positions
                    .as_ref()
                    .map_or(0, |p| query - p[row * t + query] as usize);
                if key > query || key < first {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
            .collect();
        let mask = Tensor::from_vec(mask, (b, 1, t, t), &Device::Cpu).expect("mask");
        let weights = tensor((b, t, h, d), 4);
        let scale = 1.0 / (d as f64).sqrt();
        let stacked = Tensor::cat(&[q.as_tensor(), k.as_tensor(), v.as_tensor()], 2).expect("cat");
        let ours = causal_attention(&stacked, (h, kv), scale, positions.as_ref()).expect("fused");
        let theirs = composed(&q, &k, &v, &mask, scale);
        assert!(max_diff(&ours, &theirs) < 1e-5, "outputs differ");
        let loss = |y: &Tensor| {
            (y * weights.as_tensor())
                .and_then(|y| y.sum_all())
                .expect("loss")
        };
        let (ours, theirs) = (
            loss(&ours).backward().expect("ours"),
            loss(&theirs).backward().expect("theirs"),
        );
        for (name, var) in [("q", &q), ("k", &k), ("v", &v)] {
            let (a, b) = (
                ours.get(var.as_tensor()).expect("our gradient"),
                theirs.get(var.as_tensor()).expect("their gradient"),
            );
            assert_eq!(a.dims(), b.dims(), "{name}");
            assert!(
                max_diff(a, b) < 1e-4,
                "gradient of {name}: {}",
                max_diff(a, b)
            );
        }
    }

    #[test]
    fn fused_attention_matches_the_composed_one_with_gradients() {
        check((2, 4, 4, 5, 8), None);
    }

    #[test]
    fn grouped_query_heads_share_their_key_value_head() {
        check((2, 6, 2, 7, 4), None);
        check((1, 3, 1, 1, 4), None);
    }

    #[test]
    fn packed_examples_attend_only_within_themselves() {
        // Row 0: examples of 3 and 4 tokens; row 1: one of 5, then 2 more.
        let positions: Arc<[u32]> = Arc::from(vec![0, 1, 2, 0, 1, 2, 3, 0, 1, 2, 3, 4, 0, 1]);
        check((2, 4, 2, 7, 4), Some(positions));
    }

    #[test]
    fn strided_heads_are_read_in_place() {
        // A transposed view [B, heads, T, D] -> [B, T, heads, D].
        let stored = tensor((2, 8, 5, 8), 3);
        let view = stored.as_tensor().transpose(1, 2).expect("view");
        assert!(!view.is_contiguous());
        let ours = causal_attention(&view, (4, 2), 0.5, None).expect("fused");
        let theirs =
            causal_attention(&view.contiguous().expect("copy"), (4, 2), 0.5, None).expect("fused");
        assert!(max_diff(&ours, &theirs) == 0.0);
    }

    #[test]
    fn mismatched_heads_are_an_error() {
        let stacked = tensor((1, 4, 7, 8), 1);
        let err = causal_attention(&stacked, (3, 2), 1.0, None).expect_err("3 heads over 2");
        assert!(err.to_string().contains("cannot share"), "{err}");
        let err = causal_attention(&stacked, (4, 2), 1.0, None).expect_err("7 heads are not 4 + 4");
        assert!(err.to_string().contains("stacked heads"), "{err}");
    }
}
