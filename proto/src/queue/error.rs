use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis unreachable after retrying for {waited:?}: {source}")]
    Unavailable {
        waited: Duration,
        source: redis::RedisError,
    },
    #[error("corrupt queue data: {0}")]
    Corrupt(String),
    #[error("invalid queue configuration: {0}")]
    Config(String),
}

pub type Result<T, E = QueueError> = std::result::Result<T, E>;
