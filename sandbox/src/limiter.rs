//! The resource limiter of one run: refuses growth past the memory limit and
//! remembers the peak and whether anything was refused.

use wasmtime::ResourceLimiter;

/// Tables are small in both interpreters; this only stops a runaway guest.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

#[derive(Debug)]
pub struct RunLimiter {
    memory_limit_bytes: usize,
    /// Largest memory size granted.
    pub peak_memory_bytes: usize,
    /// Set when a growth past the limit was refused.
    pub memory_refused: bool,
}

impl RunLimiter {
    pub fn new(memory_limit_bytes: u64) -> Self {
        Self {
            memory_limit_bytes: usize::try_from(memory_limit_bytes).unwrap_or(usize::MAX),
            peak_memory_bytes: 0,
            memory_refused: false,
        }
    }
}

impl ResourceLimiter for RunLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_limit_bytes || maximum.is_some_and(|m| desired > m) {
            self.memory_refused = true;
            return Ok(false);
        }
        self.peak_memory_bytes = self.peak_memory_bytes.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS && maximum.is_none_or(|m| desired <= m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_past_the_limit_is_refused_and_remembered() {
        let mut limiter = RunLimiter::new(1 << 20);
        assert!(limiter.memory_growing(0, 1 << 19, None).unwrap());
        assert!(!limiter.memory_refused);
        assert!(!limiter.memory_growing(1 << 19, 2 << 20, None).unwrap());
        assert!(limiter.memory_refused);
        assert_eq!(limiter.peak_memory_bytes, 1 << 19);
    }
}
