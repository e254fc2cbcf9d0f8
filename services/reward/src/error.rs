//! Errors of the service's APIs and their one mapping to gRPC status codes.

use r1_proto::domain::ContractError;

use crate::scoring::ScoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Contract(#[from] ContractError),
    #[error(transparent)]
    Score(#[from] ScoreError),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("too many requests in flight ({0}); retry later")]
    Overloaded(usize),
    #[error("{0}")]
    Unimplemented(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<ApiError> for tonic::Status {
    fn from(error: ApiError) -> Self {
        let message = error.to_string();
        match error {
            ApiError::Contract(_) | ApiError::InvalidArgument(_) => Self::invalid_argument(message),
            ApiError::Score(ScoreError::UnknownProfile(_) | ScoreError::UnknownLanguage(_)) => {
                Self::invalid_argument(message)
            }
            ApiError::Score(ScoreError::Unsupported(_)) | ApiError::Unimplemented(_) => {
                Self::unimplemented(message)
            }
            ApiError::Score(ScoreError::NoSandbox) => Self::failed_precondition(message),
            ApiError::Score(ScoreError::Sandbox(_)) => Self::internal(message),
            ApiError::Overloaded(_) => Self::resource_exhausted(message),
            ApiError::Internal(_) => Self::internal(message),
        }
    }
}
