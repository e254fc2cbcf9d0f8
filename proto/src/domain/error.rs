use std::fmt;

/// A wire message that does not satisfy the contract.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ContractError {
    /// Dotted path of the offending field, e.g. `job.sampling.top_p`.
    pub field: String,
    pub problem: Problem,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    Missing,
    Invalid(String),
}

impl ContractError {
    pub fn missing(field: &str) -> Self {
        Self {
            field: field.to_owned(),
            problem: Problem::Missing,
        }
    }

    pub fn invalid(field: &str, reason: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            problem: Problem::Invalid(reason.into()),
        }
    }

    /// The same error seen from the message that contains `parent`.
    pub fn within(mut self, parent: &str) -> Self {
        self.field = format!("{parent}.{}", self.field);
        self
    }
}

impl fmt::Display for ContractError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.problem {
            Problem::Missing => write!(f, "field `{}` is required", self.field),
            Problem::Invalid(reason) => write!(f, "field `{}` is invalid: {reason}", self.field),
        }
    }
}

impl From<ContractError> for tonic::Status {
    fn from(error: ContractError) -> Self {
        tonic::Status::invalid_argument(error.to_string())
    }
}
