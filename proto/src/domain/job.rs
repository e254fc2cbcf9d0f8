//! Prompt jobs: what the learner asks the inference service to sample.

use super::{AtField, ContractError, Result, Task, non_empty, required, wire_enum};
use crate::pb;

/// Largest group a job may ask for.
pub const MAX_GROUP_SIZE: u32 = 1024;

#[derive(Debug, Clone, PartialEq)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PromptContent {
    Text(String),
    Chat(Vec<ChatMessage>),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PromptFormat {
    /// The prompt text as it is.
    Raw,
    /// The R1 template: reasoning in `<think>`, answer in `<answer>`.
    #[default]
    R1,
    /// The model's chat template.
    Chat,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    pub content: PromptContent,
    pub format: PromptFormat,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    /// 0 means greedy.
    pub temperature: f32,
    /// In (0, 1]; 1 disables nucleus sampling.
    pub top_p: f32,
    pub top_k: Option<u32>,
    pub max_new_tokens: u32,
    pub stop: Vec<String>,
    /// Seed of completion 0; completion `i` uses `seed + i`.
    pub seed: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PromptJob {
    pub id: String,
    pub prompt: Prompt,
    pub task: Task,
    pub group_size: u32,
    pub sampling: SamplingParams,
    pub min_policy_version: u64,
    pub run_id: String,
}

impl TryFrom<pb::Prompt> for Prompt {
    type Error = ContractError;

    fn try_from(prompt: pb::Prompt) -> Result<Self> {
        let pb::Prompt { kind, format } = prompt;
        let content = match kind.ok_or_else(|| ContractError::missing("kind"))? {
            pb::prompt::Kind::Text(text) => PromptContent::Text(non_empty(text, "text")?),
            pb::prompt::Kind::Chat(pb::ChatMessages { messages }) => {
                if messages.is_empty() {
                    return Err(ContractError::missing("chat.messages"));
                }
                let messages = messages
                    .into_iter()
                    .enumerate()
                    .map(|(i, pb::ChatMessage { role, content })| {
                        Ok(ChatMessage {
                            role: non_empty(role, "role").at(&format!("chat.messages[{i}]"))?,
                            content,
                        })
                    })
                    .collect::<Result<_>>()?;
                PromptContent::Chat(messages)
            }
        };
        let format = match wire_enum::<pb::PromptFormat>(format, "format")? {
            pb::PromptFormat::Unspecified | pb::PromptFormat::R1 => PromptFormat::R1,
            pb::PromptFormat::Raw => PromptFormat::Raw,
            pb::PromptFormat::Chat => PromptFormat::Chat,
        };
        Ok(Self { content, format })
    }
}

impl TryFrom<pb::SamplingParams> for SamplingParams {
    type Error = ContractError;

    fn try_from(params: pb::SamplingParams) -> Result<Self> {
        let pb::SamplingParams {
            temperature,
            top_p,
            top_k,
            max_new_tokens,
            stop,
            seed,
        } = params;
        if !temperature.is_finite() || !(0.0..=100.0).contains(&temperature) {
            return Err(ContractError::invalid(
                "temperature",
                format!("{temperature} is not in [0, 100]"),
            ));
        }
        // 0 is proto3's "unset" and means no nucleus sampling.
        let top_p = if top_p == 0.0 { 1.0 } else { top_p };
        if !top_p.is_finite() || !(0.0..=1.0).contains(&top_p) {
            return Err(ContractError::invalid(
                "top_p",
                format!("{top_p} is not in (0, 1]"),
            ));
        }
        if max_new_tokens == 0 {
            return Err(ContractError::invalid(
                "max_new_tokens",
                "must be at least 1",
            ));
        }
        if let Some(i) = stop.iter().position(String::is_empty) {
            return Err(ContractError::invalid(
                &format!("stop[{i}]"),
                "stop strings must not be empty",
            ));
        }
        Ok(Self {
            temperature,
            top_p,
            top_k: (top_k != 0).then_some(top_k),
            max_new_tokens,
            stop,
            seed,
        })
    }
}

impl TryFrom<pb::PromptJob> for PromptJob {
    type Error = ContractError;

    fn try_from(job: pb::PromptJob) -> Result<Self> {
        let pb::PromptJob {
            id,
            prompt,
            task,
            group_size,
            sampling,
            min_policy_version,
            run_id,
        } = job;
        if !(1..=MAX_GROUP_SIZE).contains(&group_size) {
            return Err(ContractError::invalid(
                "group_size",
                format!("{group_size} is not in [1, {MAX_GROUP_SIZE}]"),
            ));
        }
        Ok(Self {
            id: non_empty(id, "id")?,
            prompt: required(prompt, "prompt")?,
            task: required(task, "task")?,
            group_size,
            sampling: required(sampling, "sampling")?,
            min_policy_version,
            run_id: non_empty(run_id, "run_id")?,
        })
    }
}

impl From<Prompt> for pb::Prompt {
    fn from(prompt: Prompt) -> Self {
        let kind = match prompt.content {
            PromptContent::Text(text) => pb::prompt::Kind::Text(text),
            PromptContent::Chat(messages) => pb::prompt::Kind::Chat(pb::ChatMessages {
                messages: messages
                    .into_iter()
                    .map(|m| pb::ChatMessage {
                        role: m.role,
                        content: m.content,
                    })
                    .collect(),
            }),
        };
        let format = match prompt.format {
            PromptFormat::Raw => pb::PromptFormat::Raw,
            PromptFormat::R1 => pb::PromptFormat::R1,
            PromptFormat::Chat => pb::PromptFormat::Chat,
        };
        Self {
            kind: Some(kind),
            format: format.into(),
        }
    }
}

impl From<SamplingParams> for pb::SamplingParams {
    fn from(params: SamplingParams) -> Self {
        Self {
            temperature: params.temperature,
            top_p: params.top_p,
            top_k: params.top_k.unwrap_or(0),
            max_new_tokens: params.max_new_tokens,
            stop: params.stop,
            seed: params.seed,
        }
    }
}

impl From<PromptJob> for pb::PromptJob {
    fn from(job: PromptJob) -> Self {
        Self {
            id: job.id,
            prompt: Some(job.prompt.into()),
            task: Some(job.task.into()),
            group_size: job.group_size,
            sampling: Some(job.sampling.into()),
            min_policy_version: job.min_policy_version,
            run_id: job.run_id,
        }
    }
}
