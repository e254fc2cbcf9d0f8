//! What a run produced. Every way a guest program can end is a status here.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// The program exited by itself; see the exit code.
    Finished,
    /// Wall time or the instruction budget ran out.
    TimeLimitExceeded,
    /// The program asked for more memory than allowed and did not survive it.
    MemoryLimitExceeded,
    /// The program wrote more than allowed to stdout or stderr.
    OutputLimitExceeded,
    /// The interpreter trapped (or could not start the program).
    RuntimeError,
}

impl RunStatus {
    pub fn name(self) -> &'static str {
        match self {
            Self::Finished => "finished",
            Self::TimeLimitExceeded => "time_limit_exceeded",
            Self::MemoryLimitExceeded => "memory_limit_exceeded",
            Self::OutputLimitExceeded => "output_limit_exceeded",
            Self::RuntimeError => "runtime_error",
        }
    }
}

/// The result of one run.
#[derive(Clone, PartialEq, Eq)]
pub struct RunOutcome {
    pub status: RunStatus,
    /// Set when the program exited (normally or with `exit(n)`).
    pub exit_code: Option<i32>,
    /// Standard output, at most the limit.
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub wall_time: Duration,
    /// Instructions executed (wasmtime fuel units).
    pub fuel_used: u64,
    /// Largest linear memory the guest held.
    pub peak_memory_bytes: u64,
    /// Why the run ended, for every status but a clean finish.
    pub message: Option<String>,
}

/// Output shown as text, cut short: outcomes end up in test failures and logs.
impl std::fmt::Debug for RunOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fn shown(bytes: &[u8]) -> String {
            let text = String::from_utf8_lossy(&bytes[..bytes.len().min(300)]);
            if bytes.len() > 300 {
                format!("{text}… ({} bytes)", bytes.len())
            } else {
                text.into_owned()
            }
        }
        f.debug_struct("RunOutcome")
            .field("status", &self.status)
            .field("exit_code", &self.exit_code)
            .field("stdout", &shown(&self.stdout))
            .field("stderr", &shown(&self.stderr))
            .field("wall_time", &self.wall_time)
            .field("fuel_used", &self.fuel_used)
            .field("peak_memory_bytes", &self.peak_memory_bytes)
            .field("message", &self.message)
            .finish()
    }
}

impl RunOutcome {
    /// Finished with exit code 0.
    pub fn succeeded(&self) -> bool {
        self.status == RunStatus::Finished && self.exit_code == Some(0)
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}
