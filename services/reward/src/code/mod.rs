//! The code reward: extracts the program from a completion, runs it in the
//! sandbox against the task's tests and turns the results into a reward
//! (fraction passed, or all-or-nothing).
//!
//! * [`extract`] — the program in a completion.
//! * [`cases`] — test cases in the APPS/TACO and LiveCodeBench shapes.
//! * [`harness`] — the wrapper that calls a function for call-based tests.
//! * [`compare`] — output comparison modes.
//! * [`sandbox_fusion`] — the SandboxFusion `run_code` request and response.

pub mod cases;
pub mod compare;
pub mod extract;
pub mod harness;
pub mod sandbox_fusion;

use std::time::Duration;

use r1_proto::domain::{CodeLanguage, CodeTask};
use r1_sandbox::{Language, Limits, Program, RunOutcome, Sandbox, SandboxError};
use serde::Deserialize;

/// The `[code]` section of the reward configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CodeSettings {
    /// Wall time of one test, unless the task sets its own.
    pub time_limit_ms: u64,
    /// Guest memory of one test, unless the task sets its own.
    pub memory_limit_bytes: u64,
    /// Bytes kept of stdout and of stderr; more ends the run.
    pub output_limit_bytes: u64,
    /// Tests run per completion at most; 0 runs all.
    pub max_tests: u32,
    /// Reward 1 only when every test passes, for every task.
    pub all_or_nothing: bool,
}

impl Default for CodeSettings {
    fn default() -> Self {
        let limits = Limits::default();
        Self {
            time_limit_ms: limits.wall_time.as_millis() as u64,
            memory_limit_bytes: limits.memory_bytes,
            output_limit_bytes: limits.stdout_bytes,
            max_tests: 0,
            all_or_nothing: false,
        }
    }
}

impl CodeSettings {
    pub fn limits(&self) -> Limits {
        Limits {
            wall_time: Duration::from_millis(self.time_limit_ms),
            memory_bytes: self.memory_limit_bytes,
            stdout_bytes: self.output_limit_bytes,
            stderr_bytes: self.output_limit_bytes,
            fuel: None,
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        self.limits().validate().map_err(|e| format!("code: {e}"))
    }
}

pub fn language(language: CodeLanguage) -> Language {
    match language {
        CodeLanguage::Python => Language::Python,
        CodeLanguage::JavaScript => Language::JavaScript,
    }
}

/// The result of one test.
#[derive(Debug, Clone)]
pub struct TestResult {
    pub passed: bool,
    pub outcome: RunOutcome,
}

/// The results of a program against a task's tests.
#[derive(Debug, Clone)]
pub struct TestReport {
    /// One per test run, in order; fewer than `considered` after an early stop.
    pub results: Vec<TestResult>,
    /// Tests the reward is computed over (after `max_tests`).
    pub considered: usize,
    pub passed: usize,
    pub reward: f64,
}

impl TestReport {
    pub fn summary(&self) -> String {
        let mut text = format!("{}/{} tests passed", self.passed, self.considered);
        if let Some((i, first)) = self.results.iter().enumerate().find(|(_, r)| !r.passed) {
            let why = match first.outcome.status {
                r1_sandbox::RunStatus::Finished if first.outcome.exit_code == Some(0) => {
                    "wrong answer".to_owned()
                }
                r1_sandbox::RunStatus::Finished => {
                    format!("exit code {}", first.outcome.exit_code.unwrap_or(-1))
                }
                status => status.name().replace('_', " "),
            };
            text.push_str(&format!(" (test {} failed: {why})", i + 1));
        }
        text
    }
}

/// Runs `program` against the task's tests.
pub fn run_tests(
    sandbox: &Sandbox,
    program: &str,
    task: &CodeTask,
    settings: &CodeSettings,
) -> Result<TestReport, SandboxError> {
    let language = language(task.language);
    let mut limits = settings.limits();
    if let Some(time) = task.limits.time_limit {
        limits.wall_time = time;
    }
    if let Some(memory) = task.limits.memory_limit_bytes {
        limits.memory_bytes = memory;
    }
    let max_tests = task
        .limits
        .max_tests
        .filter(|&n| n > 0)
        .or((settings.max_tests > 0).then_some(settings.max_tests))
        .map_or(usize::MAX, |n| n as usize);
    let all_or_nothing = task.all_or_nothing || settings.all_or_nothing;
    let source = match &task.fn_name {
        Some(name) => harness::call_based(language, program, name),
        None => program.to_owned(),
    };
    let considered = task.tests.len().min(max_tests);
    let mut results = Vec::with_capacity(considered);
    for test in task.tests.iter().take(considered) {
        let outcome = sandbox.run(Program {
            language,
            source: source.clone(),
            stdin: test.input.clone().into_bytes(),
            limits,
        })?;
        let passed = outcome.succeeded()
            && match task.fn_name {
                Some(_) => compare::values_match(&outcome.stdout_text(), &test.expected_output),
                None => compare::outputs_match(
                    &outcome.stdout_text(),
                    &test.expected_output,
                    task.comparison,
                ),
            };
        results.push(TestResult { passed, outcome });
        if all_or_nothing && !passed {
            break;
        }
    }
    let passed = results.iter().filter(|r| r.passed).count();
    let reward = if considered == 0 {
        0.0
    } else if all_or_nothing {
        f64::from(u8::from(passed == considered))
    } else {
        passed as f64 / considered as f64
    };
    Ok(TestReport {
        results,
        considered,
        passed,
        reward,
    })
}
