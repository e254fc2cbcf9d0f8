//! Turns a task and a completion into a [`Score`]: the weighted sum of the
//! components of the task's profile, each reported with its value.

use std::time::Instant;

use r1_proto::domain::{CodeTask, Group, Score, ScoreComponent, Task, TaskKind};
use r1_sandbox::{Program, RunOutcome, Sandbox, SandboxError};

use crate::code;
use crate::config::RewardConfig;
use crate::language::LanguageRegistry;
use crate::math::{MathConfig, MathVerdict};
use crate::metrics::{Check, Metrics, Outcome};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScoreError {
    #[error("task.reward_profile: no profile named {0:?} in the reward configuration")]
    UnknownProfile(String),
    #[error("task.language: no language profile for {0:?} (known: en, zh)")]
    UnknownLanguage(String),
    #[error("{0} tasks are not scored by this reward service build")]
    Unsupported(&'static str),
    #[error(
        "code needs the sandbox, which this reward service did not load (fetch the interpreters with `scripts/fetch-artefacts wasm` and start with --code-sandbox required)"
    )]
    NoSandbox,
    #[error("sandbox: {0}")]
    Sandbox(String),
}

impl From<SandboxError> for ScoreError {
    fn from(e: SandboxError) -> Self {
        Self::Sandbox(e.to_string())
    }
}

/// Scores completions; shared by every API of the service.
#[derive(Debug, Clone)]
pub struct Scorer {
    config: RewardConfig,
    math: MathConfig,
    languages: LanguageRegistry,
    metrics: Metrics,
    sandbox: Option<Sandbox>,
}

impl Scorer {
    pub fn new(config: RewardConfig, metrics: Metrics) -> Self {
        Self {
            math: config.math.to_config(),
            config,
            languages: LanguageRegistry::default(),
            metrics,
            sandbox: None,
        }
    }

    /// Scores code tasks and runs programs with `sandbox`.
    pub fn with_sandbox(mut self, sandbox: Sandbox) -> Self {
        self.sandbox = Some(sandbox);
        self
    }

    pub fn sandbox(&self) -> Result<&Sandbox, ScoreError> {
        self.sandbox.as_ref().ok_or(ScoreError::NoSandbox)
    }

    pub fn config(&self) -> &RewardConfig {
        &self.config
    }

    /// Runs one program (blocking) and records how it ended.
    pub fn run_code(&self, program: Program) -> Result<RunOutcome, ScoreError> {
        let language = program.language;
        let outcome = self.sandbox()?.run(program)?;
        self.metrics.sandbox_run(&outcome, language);
        Ok(outcome)
    }

    /// Runs the completion's program against the task's tests.
    pub fn check_code(
        &self,
        task: &CodeTask,
        completion: &str,
    ) -> Result<(f64, String), ScoreError> {
        let sandbox = self.sandbox()?;
        let language = code::language(task.language);
        let Some(program) = code::extract::program(completion, language) else {
            self.metrics.check(Check::Code, Outcome::Incorrect, 0.0);
            return Ok((
                0.0,
                format!("code: no {language} program in the completion"),
            ));
        };
        let started = Instant::now();
        let report = code::run_tests(sandbox, program, task, &self.config.code)?;
        for result in &report.results {
            self.metrics.sandbox_run(&result.outcome, language);
        }
        let outcome = if report.passed == report.considered {
            Outcome::Correct
        } else {
            Outcome::Incorrect
        };
        self.metrics
            .check(Check::Code, outcome, started.elapsed().as_secs_f64());
        Ok((report.reward, format!("code: {}", report.summary())))
    }

    pub fn math(&self) -> &MathConfig {
        &self.math
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Checks a math answer and records the outcome.
    pub fn check_math(&self, gold: &str, pred: &str) -> MathVerdict {
        let started = Instant::now();
        let verdict = self.math.check(gold, pred);
        let outcome = match (verdict.decided, verdict.correct) {
            (false, _) => Outcome::Undecided,
            (true, true) => Outcome::Correct,
            (true, false) => Outcome::Incorrect,
        };
        self.metrics
            .check(Check::Math, outcome, started.elapsed().as_secs_f64());
        verdict
    }

    pub fn score(&self, task: &Task, completion: &str) -> Result<Score, ScoreError> {
        let profile_name = match (&task.reward_profile, &task.kind) {
            (Some(p), _) => p.as_str(),
            (None, TaskKind::Math { .. }) => "math",
            (None, TaskKind::Code(_)) => "code",
            (None, TaskKind::Open { .. }) => "open",
        };
        let weights = self
            .config
            .profiles
            .get(profile_name)
            .ok_or_else(|| ScoreError::UnknownProfile(profile_name.to_owned()))?;
        if let Some(code) = &task.language
            && !self.languages.knows(code)
        {
            return Err(ScoreError::UnknownLanguage(code.clone()));
        }
        let mut components = Vec::new();
        let mut details = Vec::new();
        for (name, weight) in weights {
            let value = match name.as_str() {
                "accuracy" => match &task.kind {
                    TaskKind::Math { gold_answer } => {
                        let v = self.check_math(gold_answer, completion);
                        details.push(format!(
                            "answer {} (gold {}): {}",
                            v.pred_extracted.as_deref().unwrap_or("none"),
                            v.gold_extracted.as_deref().unwrap_or("none"),
                            match (v.decided, v.correct) {
                                (false, _) => "undecided (time budget)",
                                (true, true) => "correct",
                                (true, false) => "incorrect",
                            }
                        ));
                        f64::from(u8::from(v.correct))
                    }
                    TaskKind::Code(task) => {
                        let (reward, detail) = self.check_code(task, completion)?;
                        details.push(detail);
                        reward
                    }
                    TaskKind::Open { .. } => return Err(ScoreError::Unsupported("open-ended")),
                },
                "format" => {
                    let started = Instant::now();
                    let v = self.config.format.check(completion);
                    let outcome = if v.well_formed {
                        Outcome::Correct
                    } else {
                        Outcome::Incorrect
                    };
                    self.metrics
                        .check(Check::Format, outcome, started.elapsed().as_secs_f64());
                    details.push(format!("format: {}", v.detail));
                    f64::from(u8::from(v.well_formed))
                }
                "language" => {
                    let Some(code) = &task.language else { continue };
                    let started = Instant::now();
                    let reasoning = self
                        .config
                        .format
                        .reasoning(completion)
                        .unwrap_or(completion);
                    let c = self
                        .languages
                        .consistency(code, reasoning)
                        .ok_or_else(|| ScoreError::UnknownLanguage(code.clone()))?;
                    let outcome = if c.score >= 1.0 {
                        Outcome::Correct
                    } else {
                        Outcome::Incorrect
                    };
                    self.metrics
                        .check(Check::Language, outcome, started.elapsed().as_secs_f64());
                    details.push(format!(
                        "language {code}: {}/{} words",
                        c.target_words, c.words
                    ));
                    c.score
                }
                _ => continue,
            };
            components.push(ScoreComponent {
                name: name.clone(),
                value,
                weight: *weight,
            });
        }
        Ok(Score {
            total: components.iter().map(|c| c.value * c.weight).sum(),
            components,
            detail: details.join("; "),
        })
    }

    /// One score per completion of the group, in order.
    pub fn score_group(&self, group: &Group) -> Result<Vec<Score>, ScoreError> {
        group
            .completions
            .iter()
            .map(|c| self.score(&group.job.task, &c.text))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn math_task(gold: &str, language: Option<&str>) -> Task {
        Task {
            kind: TaskKind::Math {
                gold_answer: gold.into(),
            },
            language: language.map(Into::into),
            reward_profile: None,
        }
    }

    #[test]
    fn a_correct_well_formed_english_answer_earns_every_component() {
        let scorer = Scorer::new(RewardConfig::default(), Metrics::default());
        let score = scorer
            .score(
                &math_task("12", Some("en")),
                "<think>Add seven and five to get twelve.</think><answer>12</answer>",
            )
            .unwrap();
        let names: Vec<_> = score
            .components
            .iter()
            .map(|c| (c.name.as_str(), c.value))
            .collect();
        assert_eq!(
            names,
            vec![("accuracy", 1.0), ("format", 1.0), ("language", 1.0)]
        );
        assert!((score.total - 1.2).abs() < 1e-12);
    }

    #[test]
    fn an_answer_inside_the_reasoning_earns_no_accuracy() {
        let scorer = Scorer::new(RewardConfig::default(), Metrics::default());
        let score = scorer
            .score(
                &math_task("12", None),
                "<think>the answer is 12</think><answer>13</answer>",
            )
            .unwrap();
        assert_eq!(score.components[0].value, 0.0);
        assert_eq!(
            score.components.len(),
            2,
            "no language component without a target language"
        );
    }

    #[test]
    fn unknown_profiles_and_languages_are_errors_naming_them() {
        let scorer = Scorer::new(RewardConfig::default(), Metrics::default());
        let mut task = math_task("1", None);
        task.reward_profile = Some("nope".into());
        assert_eq!(
            scorer.score(&task, "1"),
            Err(ScoreError::UnknownProfile("nope".into()))
        );
        let task = math_task("1", Some("tlh"));
        assert_eq!(
            scorer.score(&task, "1"),
            Err(ScoreError::UnknownLanguage("tlh".into()))
        );
    }
}
