//! Limits of one run. The defaults match what code-RL recipes use per test
//! (verl and SandboxFusion: seconds of wall time, hundreds of MiB).

use std::time::Duration;

/// What one run may use. Every field is a hard limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Wall time from instantiation to exit.
    #[serde(with = "millis", rename = "wall_time_ms")]
    pub wall_time: Duration,
    /// Linear memory of the guest.
    pub memory_bytes: u64,
    /// Bytes kept of standard output; writing more ends the run.
    pub stdout_bytes: u64,
    /// Bytes kept of standard error; writing more ends the run.
    pub stderr_bytes: u64,
    /// Instruction budget (wasmtime fuel) for limits that do not depend on
    /// the machine; `None` runs unmetered against the wall clock only.
    pub fuel: Option<u64>,
}

pub const MIB: u64 = 1024 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Self {
            wall_time: Duration::from_secs(6),
            memory_bytes: 512 * MIB,
            stdout_bytes: MIB,
            stderr_bytes: MIB,
            fuel: None,
        }
    }
}

/// The largest linear memory a 32-bit wasm guest can address.
pub const MAX_MEMORY_BYTES: u64 = 4 * 1024 * MIB;

impl Limits {
    /// Checks the limits make sense; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.wall_time.is_zero() {
            return Err("wall_time_ms must be positive".into());
        }
        if self.memory_bytes < 16 * MIB || self.memory_bytes > MAX_MEMORY_BYTES {
            return Err(format!(
                "memory_bytes must be between 16 MiB and 4 GiB, got {}",
                self.memory_bytes
            ));
        }
        if self.fuel == Some(0) {
            return Err("fuel must be positive when set".into());
        }
        Ok(())
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_limits_name_their_field() {
        assert_eq!(Limits::default().validate(), Ok(()));
        let zero = Limits {
            wall_time: Duration::ZERO,
            ..Limits::default()
        };
        assert!(zero.validate().unwrap_err().contains("wall_time_ms"));
        let huge = Limits {
            memory_bytes: 8 * MAX_MEMORY_BYTES,
            ..Limits::default()
        };
        assert!(huge.validate().unwrap_err().contains("memory_bytes"));
    }
}
