//! SandboxFusion's `run_code` request and response, so clients written for
//! it (verl's among them) can call us unchanged.

use std::collections::BTreeMap;
use std::time::Duration;

use r1_sandbox::{Language, Limits, Program, RunOutcome, RunStatus};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize)]
pub struct RunCodeRequest {
    pub code: String,
    pub language: String,
    #[serde(default)]
    pub stdin: Option<String>,
    /// Seconds; ignored (interpreted languages compile nothing).
    #[serde(default)]
    pub compile_timeout: Option<f64>,
    /// Seconds of wall time.
    #[serde(default)]
    pub run_timeout: Option<f64>,
    /// MiB of guest memory; 0 or negative means the default.
    #[serde(default, rename = "memory_limit_MB")]
    pub memory_limit_mb: Option<i64>,
    /// Files to create before the run: the sandbox has no file system.
    #[serde(default)]
    pub files: BTreeMap<String, Option<String>>,
    #[serde(default)]
    pub fetch_files: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunResult {
    /// `Finished`, `Error` or `TimeLimitExceeded`.
    pub status: String,
    /// Seconds.
    pub execution_time: f64,
    pub return_code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunCodeResponse {
    /// `Success`, `Failed` or `SandboxError`.
    pub status: String,
    pub message: String,
    pub compile_result: Option<RunResult>,
    pub run_result: Option<RunResult>,
    pub files: BTreeMap<String, String>,
}

impl RunCodeRequest {
    /// The program to run, with `defaults` for limits the request leaves out.
    pub fn program(self, defaults: Limits) -> Result<Program, String> {
        let language = Language::parse(&self.language).ok_or_else(|| {
            format!(
                "language: {:?} is not supported (supported: python, javascript)",
                self.language
            )
        })?;
        if !self.files.is_empty() || !self.fetch_files.is_empty() {
            return Err(
                "files, fetch_files: the sandbox gives programs no file system; pass data on stdin"
                    .into(),
            );
        }
        let mut limits = defaults;
        if let Some(seconds) = self.run_timeout {
            if !(seconds.is_finite() && seconds > 0.0) {
                return Err(format!(
                    "run_timeout: {seconds} is not a positive number of seconds"
                ));
            }
            limits.wall_time = Duration::from_secs_f64(seconds.min(3600.0));
        }
        if let Some(mb) = self.memory_limit_mb.filter(|&mb| mb > 0) {
            limits.memory_bytes = (mb as u64).saturating_mul(1024 * 1024);
        }
        limits.validate().map_err(|e| format!("limits: {e}"))?;
        Ok(Program {
            language,
            source: self.code,
            stdin: self.stdin.unwrap_or_default().into_bytes(),
            limits,
        })
    }
}

impl RunCodeResponse {
    pub fn from_outcome(outcome: &RunOutcome) -> Self {
        let run_status = match outcome.status {
            RunStatus::Finished => "Finished",
            RunStatus::TimeLimitExceeded => "TimeLimitExceeded",
            RunStatus::MemoryLimitExceeded
            | RunStatus::OutputLimitExceeded
            | RunStatus::RuntimeError => "Error",
        };
        Self {
            status: if outcome.succeeded() {
                "Success"
            } else {
                "Failed"
            }
            .into(),
            message: outcome.message.clone().unwrap_or_default(),
            compile_result: None,
            run_result: Some(RunResult {
                status: run_status.into(),
                execution_time: outcome.wall_time.as_secs_f64(),
                return_code: outcome.exit_code,
                stdout: outcome.stdout_text(),
                stderr: outcome.stderr_text(),
            }),
            files: BTreeMap::new(),
        }
    }

    /// A failure of the host, not of the program.
    pub fn sandbox_error(message: String) -> Self {
        Self {
            status: "SandboxError".into(),
            message,
            compile_result: None,
            run_result: None,
            files: BTreeMap::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: serde_json::Value) -> RunCodeRequest {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_request_maps_its_limits_and_stdin() {
        let program = request(serde_json::json!({
            "code": "print(1)", "language": "python", "stdin": "x",
            "run_timeout": 2.5, "memory_limit_MB": 64
        }))
        .program(Limits::default())
        .unwrap();
        assert_eq!(program.language, Language::Python);
        assert_eq!(program.limits.wall_time, Duration::from_millis(2500));
        assert_eq!(program.limits.memory_bytes, 64 << 20);
        assert_eq!(program.stdin, b"x");
    }

    #[test]
    fn unsupported_languages_and_files_are_refused_with_the_field_named() {
        let err = request(serde_json::json!({"code": "", "language": "cpp"}))
            .program(Limits::default())
            .unwrap_err();
        assert!(err.starts_with("language:"), "{err}");
        let err = request(
            serde_json::json!({"code": "", "language": "python", "files": {"a.txt": "eA=="}}),
        )
        .program(Limits::default())
        .unwrap_err();
        assert!(err.starts_with("files"), "{err}");
        let err =
            request(serde_json::json!({"code": "", "language": "python", "run_timeout": -1.0}))
                .program(Limits::default())
                .unwrap_err();
        assert!(err.starts_with("run_timeout"), "{err}");
    }

    #[test]
    fn outcomes_map_onto_sandbox_fusion_statuses() {
        let mut outcome = RunOutcome {
            status: RunStatus::Finished,
            exit_code: Some(0),
            stdout: b"42\n".to_vec(),
            stderr: Vec::new(),
            wall_time: Duration::from_millis(12),
            fuel_used: 1,
            peak_memory_bytes: 1,
            message: None,
        };
        let response = RunCodeResponse::from_outcome(&outcome);
        assert_eq!(response.status, "Success");
        let run = response.run_result.unwrap();
        assert_eq!(
            (run.status.as_str(), run.return_code),
            ("Finished", Some(0))
        );
        assert_eq!(run.stdout, "42\n");
        outcome.exit_code = Some(3);
        assert_eq!(RunCodeResponse::from_outcome(&outcome).status, "Failed");
        outcome.status = RunStatus::TimeLimitExceeded;
        outcome.exit_code = None;
        let response = RunCodeResponse::from_outcome(&outcome);
        assert_eq!(response.run_result.unwrap().status, "TimeLimitExceeded");
    }
}
