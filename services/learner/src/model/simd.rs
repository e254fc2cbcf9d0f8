//! The fused operations' inner loops compiled once per x86-64 vector
//! level and chosen at run time (the `multiversion` crate): AVX-512, AVX2
//! with FMA, and the SSE2 baseline every x86-64 build targets. Without it
//! the loops over `f32` slices vectorise four lanes wide only, on machines
//! whose registers hold eight or sixteen. The arithmetic is the same in
//! every version (no fused multiply-adds are formed), so results do not
//! depend on the machine.

/// Wraps one function in `#[multiversion]` with the targets above. The
/// helpers the kernels call are `#[inline(always)]`, so each version
/// compiles them with its own instructions.
macro_rules! simd_kernel {
    ($(#[$meta:meta])* $vis:vis fn $($rest:tt)*) => {
        $(#[$meta])*
        #[multiversion::multiversion(targets(
            "x86_64+avx512f+avx512bw+avx512dq+avx512vl+avx2+avx+fma",
            "x86_64+avx2+avx+fma",
        ))]
        $vis fn $($rest)*
    };
}
