//! What a prompt asks and how its completions are scored.

use std::time::Duration;

use super::{AtField, ContractError, Result, non_empty, wire_enum};
use crate::pb;

#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub kind: TaskKind,
    /// Target language of the chain of thought ("en", "zh", …); `None`
    /// disables the language-consistency reward.
    pub language: Option<String>,
    /// Reward weighting profile; `None` uses the profile named after the kind.
    pub reward_profile: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TaskKind {
    Math {
        gold_answer: String,
    },
    Code(CodeTask),
    Open {
        reward_model: String,
        reference: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeLanguage {
    Python,
    JavaScript,
}

impl CodeLanguage {
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "python" | "python3" | "py" => Some(Self::Python),
            "javascript" | "js" | "nodejs" => Some(Self::JavaScript),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Python => "python",
            Self::JavaScript => "javascript",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CodeTest {
    pub input: String,
    pub expected_output: String,
}

/// Per-run limits; `None` means the sandbox's default.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CodeLimits {
    pub time_limit: Option<Duration>,
    pub memory_limit_bytes: Option<u64>,
    pub max_tests: Option<u32>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OutputComparison {
    /// Equal after stripping trailing newlines.
    #[default]
    Exact,
    /// Equal line by line after stripping each line.
    Lines,
    /// Tokens equal, numbers within a tolerance.
    Numeric,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CodeTask {
    pub language: CodeLanguage,
    pub tests: Vec<CodeTest>,
    /// Call-based tests when set; stdin tests otherwise.
    pub fn_name: Option<String>,
    pub limits: CodeLimits,
    pub comparison: OutputComparison,
    pub all_or_nothing: bool,
}

fn optional(value: String) -> Option<String> {
    (!value.trim().is_empty()).then_some(value)
}

fn nonzero(value: u64) -> Option<u64> {
    (value != 0).then_some(value)
}

impl TryFrom<pb::Task> for Task {
    type Error = ContractError;

    fn try_from(task: pb::Task) -> Result<Self> {
        let pb::Task {
            kind,
            language,
            reward_profile,
        } = task;
        let kind = match kind.ok_or_else(|| ContractError::missing("kind"))? {
            pb::task::Kind::Math(pb::MathTask { gold_answer }) => TaskKind::Math {
                gold_answer: non_empty(gold_answer, "math.gold_answer")?,
            },
            pb::task::Kind::Code(code) => TaskKind::Code(CodeTask::try_from(code).at("code")?),
            pb::task::Kind::Open(pb::OpenTask {
                reward_model,
                reference,
            }) => TaskKind::Open {
                reward_model: non_empty(reward_model, "open.reward_model")?,
                reference,
            },
        };
        Ok(Self {
            kind,
            language: optional(language),
            reward_profile: optional(reward_profile),
        })
    }
}

impl TryFrom<pb::CodeTask> for CodeTask {
    type Error = ContractError;

    fn try_from(code: pb::CodeTask) -> Result<Self> {
        let pb::CodeTask {
            language,
            tests,
            fn_name,
            limits,
            comparison,
            all_or_nothing,
        } = code;
        let language = CodeLanguage::parse(&language).ok_or_else(|| {
            ContractError::invalid(
                "language",
                format!("unknown language {language:?}; expected \"python\" or \"javascript\""),
            )
        })?;
        if tests.is_empty() {
            return Err(ContractError::missing("tests"));
        }
        let tests = tests
            .into_iter()
            .map(
                |pb::CodeTest {
                     input,
                     expected_output,
                 }| CodeTest {
                    input,
                    expected_output,
                },
            )
            .collect();
        let limits = match limits {
            None => CodeLimits::default(),
            Some(pb::CodeLimits {
                time_limit_ms,
                memory_limit_bytes,
                max_tests,
            }) => CodeLimits {
                time_limit: nonzero(time_limit_ms).map(Duration::from_millis),
                memory_limit_bytes: nonzero(memory_limit_bytes),
                max_tests: (max_tests != 0).then_some(max_tests),
            },
        };
        let comparison = match wire_enum::<pb::OutputComparison>(comparison, "comparison")? {
            pb::OutputComparison::Unspecified | pb::OutputComparison::Exact => {
                OutputComparison::Exact
            }
            pb::OutputComparison::Lines => OutputComparison::Lines,
            pb::OutputComparison::Numeric => OutputComparison::Numeric,
        };
        Ok(Self {
            language,
            tests,
            fn_name: optional(fn_name),
            limits,
            comparison,
            all_or_nothing,
        })
    }
}

impl From<Task> for pb::Task {
    fn from(task: Task) -> Self {
        let kind = match task.kind {
            TaskKind::Math { gold_answer } => pb::task::Kind::Math(pb::MathTask { gold_answer }),
            TaskKind::Code(code) => pb::task::Kind::Code(code.into()),
            TaskKind::Open {
                reward_model,
                reference,
            } => pb::task::Kind::Open(pb::OpenTask {
                reward_model,
                reference,
            }),
        };
        Self {
            kind: Some(kind),
            language: task.language.unwrap_or_default(),
            reward_profile: task.reward_profile.unwrap_or_default(),
        }
    }
}

impl From<CodeTask> for pb::CodeTask {
    fn from(code: CodeTask) -> Self {
        let comparison = match code.comparison {
            OutputComparison::Exact => pb::OutputComparison::Exact,
            OutputComparison::Lines => pb::OutputComparison::Lines,
            OutputComparison::Numeric => pb::OutputComparison::Numeric,
        };
        Self {
            language: code.language.name().to_owned(),
            tests: code
                .tests
                .into_iter()
                .map(|t| pb::CodeTest {
                    input: t.input,
                    expected_output: t.expected_output,
                })
                .collect(),
            fn_name: code.fn_name.unwrap_or_default(),
            limits: Some(pb::CodeLimits {
                time_limit_ms: code
                    .limits
                    .time_limit
                    .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                memory_limit_bytes: code.limits.memory_limit_bytes.unwrap_or(0),
                max_tests: code.limits.max_tests.unwrap_or(0),
            }),
            comparison: comparison.into(),
            all_or_nothing: code.all_or_nothing,
        }
    }
}
