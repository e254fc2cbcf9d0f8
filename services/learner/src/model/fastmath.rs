//! Branch-free `exp`, `sigmoid` and sums for the fused operations' inner
//! loops. libm's `expf` is a call per element that no loop can vectorise;
//! these are plain arithmetic on `f32`, so a loop over a slice compiles to
//! SIMD instructions. Attention's softmax and SwiGLU spent about 7 % of a
//! tiny-model training step in `expf`.

use std::f32::consts::LOG2_E;

/// Adding then subtracting 1.5 · 2²³ rounds an `f32` of magnitude below 2²²
/// to the nearest integer, and the sum's low mantissa bits hold that integer.
const ROUND: f32 = 12_582_912.0;

/// `ln 2` split so that `n · LN2_HI` is exact for the `n` that occur.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;

/// `eˣ` within 2 ulp of the correctly rounded result for
/// `x ∈ [-87.3, 88]`. Below, the result is the smallest normal `f32`
/// magnitude (about 1.2e-38, where libm returns subnormals or 0); above, it
/// is `e⁸⁸` (about 1.7e38, where libm overflows to infinity). NaN stays NaN.
#[inline(always)]
pub(super) fn exp(x: f32) -> f32 {
    // `x = n·ln 2 + r` with `|r| ≤ ln 2 / 2`; `eˣ = 2ⁿ · eʳ`. A NaN stays
    // NaN through the clamp and the polynomial.
    let clamped = x.clamp(-87.336_54, 88.0);
    let shifted = clamped * LOG2_E + ROUND;
    let n = shifted - ROUND;
    let r = (clamped - n * LN2_HI) - n * LN2_LO;
    // Cephes' minimax polynomial for eʳ − 1 − r on that interval.
    let mut p = 1.987_569_2e-4f32;
    p = p * r + 1.398_2e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let er = p * r * r + r + 1.0;
    // 2ⁿ from n's bits: the integer sits in `shifted`'s low mantissa bits.
    let n_bits = shifted.to_bits().wrapping_sub(ROUND.to_bits()) as i32;
    let scale = f32::from_bits((n_bits.wrapping_add(127) as u32) << 23);
    er * scale
}

/// `σ(x) = 1 / (1 + e⁻ˣ)`.
#[inline(always)]
pub(super) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// Lanes of [`lane_sum`] and [`max`]: independent partial sums the compiler keeps in SIMD
/// registers (one AVX-512 register, two AVX2 ones).
const LANES: usize = 16;

/// `Σ f(xs[i])`, in `LANES` interleaved partial sums (a different rounding
/// order from a sequential sum, and a vectorised one).
#[inline(always)]
fn lane_sum(xs: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut lanes = [0f32; LANES];
    let mut chunks = xs.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (lane, x) in lanes.iter_mut().zip(chunk) {
            *lane += f(*x);
        }
    }
    let tail: f32 = chunks.remainder().iter().map(|x| f(*x)).sum();
    lanes.iter().sum::<f32>() + tail
}

/// `Σ xs`, in `LANES` interleaved partial sums.
#[inline(always)]
pub(super) fn sum(xs: &[f32]) -> f32 {
    lane_sum(xs, |x| x)
}

/// `Σ a[i]·b[i]`, in `LANES` interleaved partial sums.
#[inline(always)]
pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut lanes = [0f32; LANES];
    let (mut a, mut b) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    for (a, b) in (&mut a).zip(&mut b) {
        for ((lane, a), b) in lanes.iter_mut().zip(a).zip(b) {
            *lane += a * b;
        }
    }
    let tail: f32 = a
        .remainder()
        .iter()
        .zip(b.remainder())
        .map(|(a, b)| a * b)
        .sum();
    lanes.iter().sum::<f32>() + tail
}

/// `xs[i] = e^(xs[i] − shift)` for every element; returns their sum.
#[inline(always)]
pub(super) fn exp_shifted_in_place(xs: &mut [f32], shift: f32) -> f32 {
    for x in xs.iter_mut() {
        *x = exp(*x - shift);
    }
    sum(xs)
}

/// `Σ e^(xs[i] − shift)`, in `LANES` interleaved partial sums.
#[inline(always)]
pub(super) fn sum_exp_shifted(xs: &[f32], shift: f32) -> f32 {
    lane_sum(xs, |x| exp(x - shift))
}

/// The largest element (−∞ for none).
#[inline(always)]
pub(super) fn max(xs: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let mut chunks = xs.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (lane, x) in lanes.iter_mut().zip(chunk) {
            *lane = lane.max(*x);
        }
    }
    chunks
        .remainder()
        .iter()
        .chain(&lanes)
        .copied()
        .fold(f32::NEG_INFINITY, f32::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in units in the last place between two positive finite floats.
    fn ulps(a: f32, b: f32) -> u32 {
        a.to_bits().abs_diff(b.to_bits())
    }

    #[test]
    fn exp_is_within_two_ulp_of_libm_over_its_range() {
        let mut worst = 0;
        let steps = 2_000_000;
        for i in 0..=steps {
            let x = -87.0 + 175.0 * i as f32 / steps as f32;
            let (ours, theirs) = (exp(x), x.exp());
            worst = worst.max(ulps(ours, theirs));
        }
        assert!(worst <= 2, "{worst} ulp");
        assert_eq!(exp(0.0), 1.0);
        assert!((exp(1.0) - std::f32::consts::E).abs() <= f32::EPSILON * 3.0);
    }

    #[test]
    fn exp_saturates_outside_its_range_and_keeps_nan() {
        assert!(exp(-1000.0) > 0.0 && exp(-1000.0) < 1.2e-38);
        assert_eq!(exp(f32::NEG_INFINITY), exp(-1000.0));
        assert!(exp(1000.0).is_finite() && exp(1000.0) > 1e38);
        assert!(exp(f32::NAN).is_nan());
        assert!(sigmoid(-1000.0) < 1e-37);
        assert_eq!(sigmoid(1000.0), 1.0);
        assert!((sigmoid(0.0) - 0.5).abs() < 1e-7);
    }

    #[test]
    fn sums_and_maxima_match_sequential_ones() {
        let xs: Vec<f32> = (0..37)
            .map(|i| ((i * 7919) % 101) as f32 / 10.0 - 5.0)
            .collect();
        for n in [0, 1, 7, 8, 9, 37] {
            let xs = &xs[..n];
            let sequential: f32 = xs.iter().sum();
            assert!((sum(xs) - sequential).abs() < 1e-4, "{n}");
            assert_eq!(
                max(xs),
                xs.iter().copied().fold(f32::NEG_INFINITY, f32::max)
            );
        }
        let ys: Vec<f32> = xs.iter().map(|x| x * 0.5 - 1.0).collect();
        for n in [0, 5, 16, 37] {
            let sequential: f32 = xs[..n].iter().zip(&ys[..n]).map(|(x, y)| x * y).sum();
            assert!((dot(&xs[..n], &ys[..n]) - sequential).abs() < 1e-3, "{n}");
        }
        let mut ys = vec![0.5f32, 1.5, -2.0];
        let total = exp_shifted_in_place(&mut ys, 1.5);
        let expected = [(-1.0f32).exp(), 1.0, (-3.5f32).exp()];
        for (y, e) in ys.iter().zip(expected) {
            assert!((y - e).abs() < 1e-7);
        }
        assert!((total - expected.iter().sum::<f32>()).abs() < 1e-6);
        let xs: Vec<f32> = (0..19).map(|i| i as f32 / 3.0 - 4.0).collect();
        let sequential: f32 = xs.iter().map(|x| (x - 2.0).exp()).sum();
        assert!((sum_exp_shifted(&xs, 2.0) - sequential).abs() < 1e-5 * sequential);
    }
}
