//! The memory allocator of the binaries that train (`r1`, `r1-learner`):
//! mimalloc, told to keep the memory it frees.
//!
//! Training frees and allocates tensors of hundreds of MB at every step
//! (SmolLM2's logits are 400 MB a batch). Memory handed back to the kernel
//! comes back as fresh pages the kernel must zero first: in a profile of a
//! SmolLM2 training step that zeroing took half of the time.

pub use mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc 3's option enum (libmimalloc-sys
/// 0.1.49 names no constant for it): milliseconds before freed memory is
/// returned to the kernel; -1 never.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keeps freed memory mapped for reuse: the process then holds its peak
/// memory until it exits. Call first thing in `main`, before any other
/// thread exists (mimalloc's options are not synchronised).
pub fn keep_freed_memory() {
    // SAFETY: writes one option of the allocator; no other thread runs yet.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_set(PURGE_DELAY, -1);
    }
}

/// The allocator's current purge delay in milliseconds.
pub fn purge_delay_ms() -> std::ffi::c_long {
    // SAFETY: reads one option of the allocator.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_get(PURGE_DELAY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_option_starts_at_mimallocs_default_and_is_turned_off() {
        // 1000 ms is mimalloc 3's default purge delay: this is that option.
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(purge_delay_ms(), 1000);
        }
        keep_freed_memory();
        assert_eq!(purge_delay_ms(), -1);
    }
}
