use std::marker::PhantomData;
use std::time::Duration;

use prost::Message;

use super::{Backlog, Entry, EntryId, Queue, Result};

/// Appends messages to one topic.
pub struct Producer<M> {
    queue: Queue,
    stream: String,
    message: PhantomData<fn(M)>,
}

impl<M> std::fmt::Debug for Producer<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("stream", &self.stream)
            .finish()
    }
}

impl<M: Message> Producer<M> {
    pub(crate) fn new(queue: Queue, stream: String) -> Self {
        Self {
            queue,
            stream,
            message: PhantomData,
        }
    }

    pub async fn append(&self, message: &M) -> Result<EntryId> {
        self.queue
            .backend()
            .append(&self.stream, &Entry::encode(message))
            .await
    }

    /// The work `group` has not finished on this topic.
    pub async fn backlog(&self, group: &str) -> Result<Backlog> {
        self.queue.backend().backlog(&self.stream, group).await
    }

    /// Waits until fewer than `max_backlog` entries are unfinished by `group`,
    /// then appends.
    pub async fn append_bounded(
        &self,
        message: &M,
        group: &str,
        max_backlog: u64,
    ) -> Result<EntryId> {
        let mut pause = Duration::from_millis(2);
        while self.backlog(group).await?.total() >= max_backlog {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(200));
        }
        self.append(message).await
    }
}
