//! Validated domain types and their conversions from and to the wire types.
//!
//! Every `TryFrom<pb::X>` destructures all fields of the message, so a field
//! added to `proto/` breaks the build here until it is handled.

mod error;
mod job;
mod result;
mod task;

pub use error::ContractError;
pub use job::{ChatMessage, Prompt, PromptContent, PromptFormat, PromptJob, SamplingParams};
pub use result::{
    Completion, FinishReason, Group, PolicyVersion, Score, ScoreComponent, ScoredGroup,
};
pub use task::{CodeLanguage, CodeLimits, CodeTask, CodeTest, OutputComparison, Task, TaskKind};

/// Result of a wire-to-domain conversion.
pub type Result<T, E = ContractError> = std::result::Result<T, E>;

/// Adds the name of the enclosing field to an error from a nested message.
pub(crate) trait AtField<T> {
    fn at(self, field: &str) -> Result<T>;
}

impl<T> AtField<T> for Result<T> {
    fn at(self, field: &str) -> Result<T> {
        self.map_err(|e| e.within(field))
    }
}

/// Converts a required nested message, naming the field when it is absent.
pub(crate) fn required<P, D>(value: Option<P>, field: &str) -> Result<D>
where
    D: TryFrom<P, Error = ContractError>,
{
    let value = value.ok_or_else(|| ContractError::missing(field))?;
    D::try_from(value).at(field)
}

pub(crate) fn non_empty(value: String, field: &str) -> Result<String> {
    if value.trim().is_empty() {
        Err(ContractError::missing(field))
    } else {
        Ok(value)
    }
}

/// Decodes a protobuf enum field, rejecting numbers this build does not know.
pub(crate) fn wire_enum<E: TryFrom<i32>>(raw: i32, field: &str) -> Result<E> {
    E::try_from(raw).map_err(|_| ContractError::invalid(field, format!("unknown value {raw}")))
}

#[cfg(test)]
mod tests;
