//! What the services produce: sampled groups, scores, policy versions.

use super::{AtField, ContractError, PromptJob, Result, non_empty, required, wire_enum};
use crate::pb;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    Stop,
    Length,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub text: String,
    pub token_ids: Vec<u32>,
    /// Natural-log probability of each sampled token, one per token id.
    pub logprobs: Vec<f32>,
    pub finish_reason: FinishReason,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub job: PromptJob,
    pub prompt_token_ids: Vec<u32>,
    /// Exactly `job.group_size` completions.
    pub completions: Vec<Completion>,
    pub policy_version: u64,
    pub sampler_id: String,
}

impl Group {
    /// A group is identified by the job that asked for it.
    pub fn id(&self) -> &str {
        &self.job.id
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScoreComponent {
    pub name: String,
    pub value: f64,
    pub weight: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    pub total: f64,
    pub components: Vec<ScoreComponent>,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScoredGroup {
    pub group: Group,
    /// One score per completion, in completion order.
    pub scores: Vec<Score>,
    pub scorer_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyVersion {
    /// Monotonically increasing, starting at 1 for the first published weights.
    pub number: u64,
    pub weights_uri: String,
    pub checksum: String,
}

impl TryFrom<pb::Completion> for Completion {
    type Error = ContractError;

    fn try_from(completion: pb::Completion) -> Result<Self> {
        let pb::Completion {
            text,
            token_ids,
            logprobs,
            finish_reason,
        } = completion;
        if logprobs.len() != token_ids.len() {
            return Err(ContractError::invalid(
                "logprobs",
                format!(
                    "{} log-probs for {} token ids",
                    logprobs.len(),
                    token_ids.len()
                ),
            ));
        }
        if let Some(i) = logprobs.iter().position(|p| p.is_nan() || *p > 1e-4) {
            return Err(ContractError::invalid(
                &format!("logprobs[{i}]"),
                format!("{} is not a log-probability", logprobs[i]),
            ));
        }
        let finish_reason = match wire_enum::<pb::FinishReason>(finish_reason, "finish_reason")? {
            pb::FinishReason::Unspecified => return Err(ContractError::missing("finish_reason")),
            pb::FinishReason::Stop => FinishReason::Stop,
            pb::FinishReason::Length => FinishReason::Length,
            pb::FinishReason::Cancelled => FinishReason::Cancelled,
        };
        Ok(Self {
            text,
            token_ids,
            logprobs,
            finish_reason,
        })
    }
}

impl TryFrom<pb::Group> for Group {
    type Error = ContractError;

    fn try_from(group: pb::Group) -> Result<Self> {
        let pb::Group {
            job,
            prompt_token_ids,
            completions,
            policy_version,
            sampler_id,
        } = group;
        let job: PromptJob = required(job, "job")?;
        if completions.len() != job.group_size as usize {
            return Err(ContractError::invalid(
                "completions",
                format!(
                    "{} completions for group_size {}",
                    completions.len(),
                    job.group_size
                ),
            ));
        }
        if policy_version < job.min_policy_version {
            return Err(ContractError::invalid(
                "policy_version",
                format!(
                    "{policy_version} is older than the job's min_policy_version {}",
                    job.min_policy_version
                ),
            ));
        }
        let completions = completions
            .into_iter()
            .enumerate()
            .map(|(i, c)| Completion::try_from(c).at(&format!("completions[{i}]")))
            .collect::<Result<_>>()?;
        Ok(Self {
            job,
            prompt_token_ids,
            completions,
            policy_version,
            sampler_id: non_empty(sampler_id, "sampler_id")?,
        })
    }
}

impl TryFrom<pb::Score> for Score {
    type Error = ContractError;

    fn try_from(score: pb::Score) -> Result<Self> {
        let pb::Score {
            total,
            components,
            detail,
        } = score;
        if !total.is_finite() {
            return Err(ContractError::invalid(
                "total",
                format!("{total} is not finite"),
            ));
        }
        let components = components
            .into_iter()
            .enumerate()
            .map(
                |(
                    i,
                    pb::ScoreComponent {
                        name,
                        value,
                        weight,
                    },
                )| {
                    let field = format!("components[{i}]");
                    if !value.is_finite() || !weight.is_finite() {
                        return Err(ContractError::invalid(
                            &field,
                            "value and weight must be finite",
                        ));
                    }
                    Ok(ScoreComponent {
                        name: non_empty(name, "name").at(&field)?,
                        value,
                        weight,
                    })
                },
            )
            .collect::<Result<_>>()?;
        Ok(Self {
            total,
            components,
            detail,
        })
    }
}

impl TryFrom<pb::ScoredGroup> for ScoredGroup {
    type Error = ContractError;

    fn try_from(scored: pb::ScoredGroup) -> Result<Self> {
        let pb::ScoredGroup {
            group,
            scores,
            scorer_id,
        } = scored;
        let group: Group = required(group, "group")?;
        if scores.len() != group.completions.len() {
            return Err(ContractError::invalid(
                "scores",
                format!(
                    "{} scores for {} completions",
                    scores.len(),
                    group.completions.len()
                ),
            ));
        }
        let scores = scores
            .into_iter()
            .enumerate()
            .map(|(i, s)| Score::try_from(s).at(&format!("scores[{i}]")))
            .collect::<Result<_>>()?;
        Ok(Self {
            group,
            scores,
            scorer_id: non_empty(scorer_id, "scorer_id")?,
        })
    }
}

impl TryFrom<pb::PolicyVersion> for PolicyVersion {
    type Error = ContractError;

    fn try_from(version: pb::PolicyVersion) -> Result<Self> {
        let pb::PolicyVersion {
            number,
            weights_uri,
            checksum,
        } = version;
        if number == 0 {
            return Err(ContractError::invalid(
                "number",
                "policy versions start at 1",
            ));
        }
        Ok(Self {
            number,
            weights_uri: non_empty(weights_uri, "weights_uri")?,
            checksum,
        })
    }
}

impl From<FinishReason> for pb::FinishReason {
    fn from(reason: FinishReason) -> Self {
        match reason {
            FinishReason::Stop => Self::Stop,
            FinishReason::Length => Self::Length,
            FinishReason::Cancelled => Self::Cancelled,
        }
    }
}

impl From<Completion> for pb::Completion {
    fn from(c: Completion) -> Self {
        Self {
            text: c.text,
            token_ids: c.token_ids,
            logprobs: c.logprobs,
            finish_reason: pb::FinishReason::from(c.finish_reason).into(),
        }
    }
}

impl From<Group> for pb::Group {
    fn from(g: Group) -> Self {
        Self {
            job: Some(g.job.into()),
            prompt_token_ids: g.prompt_token_ids,
            completions: g.completions.into_iter().map(Into::into).collect(),
            policy_version: g.policy_version,
            sampler_id: g.sampler_id,
        }
    }
}

impl From<Score> for pb::Score {
    fn from(s: Score) -> Self {
        Self {
            total: s.total,
            components: s
                .components
                .into_iter()
                .map(|c| pb::ScoreComponent {
                    name: c.name,
                    value: c.value,
                    weight: c.weight,
                })
                .collect(),
            detail: s.detail,
        }
    }
}

impl From<ScoredGroup> for pb::ScoredGroup {
    fn from(s: ScoredGroup) -> Self {
        Self {
            group: Some(s.group.into()),
            scores: s.scores.into_iter().map(Into::into).collect(),
            scorer_id: s.scorer_id,
        }
    }
}

impl From<PolicyVersion> for pb::PolicyVersion {
    fn from(v: PolicyVersion) -> Self {
        Self {
            number: v.number,
            weights_uri: v.weights_uri,
            checksum: v.checksum,
        }
    }
}
