//! Matrix products of the projections (every `Linear` and the LM head)
//! through the system's OpenBLAS, with their backward passes.
//!
//! On the 2-core development machine OpenBLAS's `sgemm` runs these shapes at
//! about 178 GFLOP/s, candle's `gemm` crate at 110–150 and PyTorch at 95–130.
//! OpenBLAS itself is kept single-threaded; the rows (or columns) of the
//! product are split over rayon's threads instead, so that one thread pool
//! owns the cores and no BLAS threads spin beside candle's.

use std::sync::Once;

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};

use super::ops::f32_slice;

#[allow(unsafe_code)]
mod ffi {
    unsafe extern "C" {
        /// OpenBLAS's own: the threads one call may use.
        pub fn openblas_set_num_threads(threads: std::ffi::c_int);
    }
}

fn single_threaded_blas() {
    static ONCE: Once = Once::new();
    // SAFETY: sets one global of OpenBLAS, once, before its first product.
    #[allow(unsafe_code)]
    ONCE.call_once(|| unsafe { ffi::openblas_set_num_threads(1) });
}

/// BLAS's flag for an operand used transposed (`t`) or as stored.
fn transpose_flag(t: bool) -> cblas_sys::CBLAS_TRANSPOSE {
    if t {
        cblas_sys::CBLAS_TRANSPOSE::CblasTrans
    } else {
        cblas_sys::CBLAS_TRANSPOSE::CblasNoTrans
    }
}

/// `op(a) · op(b)` for 2-D contiguous `a` and `b`, where `op(x)` is `xᵀ`
/// when the matching flag is set.
#[derive(Debug, Clone, Copy)]
struct Matmul {
    transpose_a: bool,
    transpose_b: bool,
}

/// One product's dimensions: `op(a)` is `m × k`, `op(b)` is `k × n`.
#[derive(Debug, Clone, Copy)]
struct Dims {
    m: usize,
    n: usize,
    k: usize,
}

impl Matmul {
    fn dims(&self, a: &Layout, b: &Layout) -> Result<Dims> {
        let (&[a0, a1], &[b0, b1]) = (a.dims(), b.dims()) else {
            candle_core::bail!(
                "r1-matmul: expects 2-D operands, got {:?} and {:?}",
                a.dims(),
                b.dims()
            )
        };
        let (m, k) = if self.transpose_a { (a1, a0) } else { (a0, a1) };
        let (kb, n) = if self.transpose_b { (b1, b0) } else { (b0, b1) };
        if k != kb {
            candle_core::bail!(
                "r1-matmul: inner dimensions differ: {:?} and {:?} (transposed: {}, {})",
                a.dims(),
                b.dims(),
                self.transpose_a,
                self.transpose_b
            )
        }
        Ok(Dims { m, n, k })
    }
}

/// A block of output rows `rows` (or of output columns `cols`) of one product.
struct Block {
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
}

/// Splits the product into one block per thread along its longer side.
fn blocks(dims: Dims, threads: usize) -> Vec<Block> {
    let along_rows = dims.m >= dims.n;
    let len = if along_rows { dims.m } else { dims.n };
    let parts = threads.clamp(1, len.max(1));
    let step = len.div_ceil(parts).max(1);
    (0..len)
        .step_by(step)
        .map(|start| {
            let range = start..(start + step).min(len);
            if along_rows {
                Block {
                    rows: range,
                    cols: 0..dims.n,
                }
            } else {
                Block {
                    rows: 0..dims.m,
                    cols: range,
                }
            }
        })
        .collect()
}

/// A raw output pointer that may cross threads: each block writes its own
/// disjoint part of the output.
#[derive(Clone, Copy)]
struct Output(*mut f32);
// SAFETY: blocks write disjoint elements; the buffer outlives the scope.
#[allow(unsafe_code)]
unsafe impl Send for Output {}
#[allow(unsafe_code)]
unsafe impl Sync for Output {}

impl Output {
    fn ptr(self) -> *mut f32 {
        self.0
    }
}

impl Matmul {
    fn product(&self, a: &[f32], b: &[f32], dims: Dims) -> Vec<f32> {
        use cblas_sys::{CBLAS_LAYOUT, cblas_sgemm};
        single_threaded_blas();
        let Dims { m, n, k } = dims;
        let lda = if self.transpose_a { m } else { k };
        let ldb = if self.transpose_b { k } else { n };
        let mut out: Vec<f32> = Vec::with_capacity(m * n);
        let dst = Output(out.as_mut_ptr());
        let blocks = blocks(dims, rayon::current_num_threads());
        let run = |block: &Block| {
            // Where the block's rows of op(a) and columns of op(b) start.
            let a_offset = if self.transpose_a {
                block.rows.start
            } else {
                block.rows.start * lda
            };
            let b_offset = if self.transpose_b {
                block.cols.start * ldb
            } else {
                block.cols.start
            };
            // SAFETY: the offsets and leading dimensions stay inside `a`, `b`
            // and the m × n output (checked by `dims`); beta = 0, so the
            // uninitialised output is only written, each element by exactly
            // one block.
            #[allow(unsafe_code)]
            unsafe {
                cblas_sgemm(
                    CBLAS_LAYOUT::CblasRowMajor,
                    transpose_flag(self.transpose_a),
                    transpose_flag(self.transpose_b),
                    block.rows.len() as i32,
                    block.cols.len() as i32,
                    k as i32,
                    1.0,
                    a.as_ptr().add(a_offset),
                    lda as i32,
                    b.as_ptr().add(b_offset),
                    ldb as i32,
                    0.0,
                    dst.ptr().add(block.rows.start * n + block.cols.start),
                    n as i32,
                );
            }
        };
        if k == 0 {
            out.resize(m * n, 0.0);
            return out;
        }
        let run = &run;
        rayon::scope(|scope| {
            for block in &blocks {
                scope.spawn(move |_| run(block));
            }
        });
        // SAFETY: the blocks cover all m × n elements and have all finished.
        #[allow(unsafe_code)]
        unsafe {
            out.set_len(m * n)
        };
        out
    }
}

/// One operand of [`gemm`]: a row-major matrix inside `data`, starting at
/// `offset` with `ld` elements between rows, used as stored or transposed.
#[derive(Debug, Clone, Copy)]
pub(super) struct Operand<'a> {
    pub data: &'a [f32],
    pub offset: usize,
    pub ld: usize,
    pub transposed: bool,
}

impl Operand<'_> {
    /// Checks that the stored `rows × cols` matrix lies inside `data`.
    fn check(&self, rows: usize, cols: usize, name: &str) -> Result<()> {
        let end = if rows == 0 || cols == 0 {
            self.offset
        } else {
            self.offset + (rows - 1) * self.ld + cols
        };
        if cols > self.ld.max(1) || end > self.data.len() {
            candle_core::bail!(
                "r1-gemm: operand {name} ({rows} x {cols}, offset {}, ld {}) exceeds its {} elements",
                self.offset,
                self.ld,
                self.data.len()
            )
        }
        Ok(())
    }
}

/// `c = alpha · op(a) · op(b) + beta · c` on the calling thread, where
/// `op(a)` is `m × k`, `op(b)` is `k × n` and `c` is `m × n` with `ldc`
/// elements between rows. Bounds are checked before BLAS is called.
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm(
    (m, n, k): (usize, usize, usize),
    alpha: f32,
    a: Operand<'_>,
    b: Operand<'_>,
    beta: f32,
    c: &mut [f32],
    ldc: usize,
) -> Result<()> {
    use cblas_sys::{CBLAS_LAYOUT, cblas_sgemm};
    let (a_rows, a_cols) = if a.transposed { (k, m) } else { (m, k) };
    let (b_rows, b_cols) = if b.transposed { (n, k) } else { (k, n) };
    a.check(a_rows, a_cols, "a")?;
    b.check(b_rows, b_cols, "b")?;
    Operand {
        data: c,
        offset: 0,
        ld: ldc,
        transposed: false,
    }
    .check(m, n, "c")?;
    if m.max(n).max(k).max(a.ld).max(b.ld).max(ldc) > i32::MAX as usize {
        candle_core::bail!("r1-gemm: a dimension exceeds BLAS's 32-bit range")
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    single_threaded_blas();
    // SAFETY: every operand was checked to lie inside its slice, and `c` is
    // borrowed mutably for the call.
    #[allow(unsafe_code)]
    unsafe {
        cblas_sgemm(
            CBLAS_LAYOUT::CblasRowMajor,
            transpose_flag(a.transposed),
            transpose_flag(b.transposed),
            m as i32,
            n as i32,
            k as i32,
            alpha,
            a.data.as_ptr().add(a.offset),
            a.ld.max(1) as i32,
            b.data.as_ptr().add(b.offset),
            b.ld.max(1) as i32,
            beta,
            c.as_mut_ptr(),
            ldc.max(1) as i32,
        );
    }
    Ok(())
}

impl CustomOp2 for Matmul {
    fn name(&self) -> &'static str {
        "r1-matmul"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let dims = self.dims(l1, l2)?;
        if dims.m.max(dims.n).max(dims.k) > i32::MAX as usize {
            candle_core::bail!("r1-matmul: a dimension exceeds BLAS's 32-bit range")
        }
        let out = self.product(
            f32_slice(s1, l1, self.name())?,
            f32_slice(s2, l2, self.name())?,
            dims,
        );
        Ok((CpuStorage::F32(out), Shape::from((dims.m, dims.n))))
    }

    fn bwd(
        &self,
        a: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        // C = op(A)·op(B): dop(A) = G·op(B)ᵀ, dop(B) = op(A)ᵀ·G, each
        // transposed back when the operand was used transposed.
        let grad = grad.contiguous()?;
        let (ta, tb) = (self.transpose_a, self.transpose_b);
        let grad_a = if ta {
            product(b, &grad, tb, true)?
        } else {
            product(&grad, b, false, !tb)?
        };
        let grad_b = if tb {
            product(&grad, a, true, ta)?
        } else {
            product(a, &grad, !ta, false)?
        };
        Ok((Some(grad_a), Some(grad_b)))
    }
}

fn product(a: &Tensor, b: &Tensor, transpose_a: bool, transpose_b: bool) -> Result<Tensor> {
    a.contiguous()?.apply_op2_no_bwd(
        &b.contiguous()?,
        &Matmul {
            transpose_a,
            transpose_b,
        },
    )
}

/// `x · wᵀ` over the last dimension of `x` (`[…, in]`) for a weight
/// `w: [out, in]`: `[…, out]`, as `torch.nn.functional.linear`.
pub fn linear(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    let dims = x.dims();
    let features = dims.last().copied().unwrap_or(0);
    let rows = x.elem_count() / features.max(1);
    let mut out_dims = dims.to_vec();
    if let Some(last) = out_dims.last_mut() {
        *last = w.dim(0)?;
    }
    x.contiguous()?
        .reshape((rows, features))?
        .apply_op2(
            &w.contiguous()?,
            Matmul {
                transpose_a: false,
                transpose_b: true,
            },
        )?
        .reshape(out_dims)
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};

    use super::*;

    fn tensor(rows: usize, cols: usize, seed: usize) -> Tensor {
        let data: Vec<f32> = (0..rows * cols)
            .map(|i| (((i * 37 + seed * 11) % 23) as f32 - 11.0) / 7.0)
            .collect();
        Tensor::from_vec(data, (rows, cols), &Device::Cpu).expect("tensor")
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .and_then(|d| d.abs())
            .and_then(|d| d.max_all())
            .and_then(|d| d.to_scalar::<f32>())
            .expect("difference")
    }

    #[test]
    fn products_match_candle_for_every_transposition() {
        // Odd sizes and sizes that split unevenly over threads.
        for (m, k, n) in [(7, 5, 3), (3, 9, 17), (64, 33, 1), (1, 4, 65)] {
            for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
                let a = if ta { tensor(k, m, 1) } else { tensor(m, k, 1) };
                let b = if tb { tensor(n, k, 2) } else { tensor(k, n, 2) };
                let ours = product(&a, &b, ta, tb).expect("product");
                let op = |x: &Tensor, t: bool| if t { x.t().expect("t") } else { x.clone() };
                let theirs = op(&a, ta).matmul(&op(&b, tb)).expect("matmul");
                assert_eq!(ours.dims(), &[m, n]);
                assert!(max_diff(&ours, &theirs) < 1e-4, "{m}x{k}x{n} {ta} {tb}");
            }
        }
    }

    #[test]
    fn linear_gradients_match_candles_matmul() {
        let x = Var::from_tensor(&tensor(2 * 5, 6, 3).reshape((2, 5, 6)).expect("x")).expect("x");
        let w = Var::from_tensor(&tensor(4, 6, 4)).expect("w");
        let weights = tensor(2 * 5, 4, 5).reshape((2, 5, 4)).expect("weights");
        let ours = (linear(x.as_tensor(), w.as_tensor()).expect("linear") * &weights)
            .and_then(|y| y.sum_all())
            .expect("loss");
        let theirs = (x
            .as_tensor()
            .broadcast_matmul(&w.as_tensor().t().expect("t"))
            .expect("matmul")
            * &weights)
            .and_then(|y| y.sum_all())
            .expect("loss");
        assert!(max_diff(&ours, &theirs) < 1e-3);
        let (ours, theirs) = (
            ours.backward().expect("ours"),
            theirs.backward().expect("theirs"),
        );
        for var in [&x, &w] {
            let (a, b) = (
                ours.get(var.as_tensor()).expect("our gradient"),
                theirs.get(var.as_tensor()).expect("their gradient"),
            );
            assert_eq!(a.dims(), b.dims());
            assert!(max_diff(a, b) < 1e-3);
        }
    }

    #[test]
    fn mismatched_inner_dimensions_are_an_error() {
        let err =
            product(&tensor(3, 4, 0), &tensor(5, 2, 0), false, false).expect_err("shapes differ");
        assert!(err.to_string().contains("inner dimensions differ"), "{err}");
    }
}
