use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::watch;

use super::{Delivery, Entry, EntryId, Result};
use crate::domain::PolicyVersion;

/// An entry to append to `stream` as part of a hand-off.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub stream: String,
    pub entry: Entry,
}

/// Work of a consumer group not yet done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Delivered to a consumer, not yet acknowledged.
    pub pending: u64,
    /// In the stream, not yet delivered to any consumer of the group.
    pub lag: u64,
}

impl Backlog {
    pub fn total(&self) -> u64 {
        self.pending + self.lag
    }
}

/// What a storage engine provides to [`super::Queue`]. Streams are
/// append-only logs of entries; consumer groups track, per consumer, which
/// entries were delivered and not acknowledged.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Creates `group` on `stream` (and the stream) if missing. A new group
    /// starts at the beginning of the stream.
    async fn create_group(&self, stream: &str, group: &str) -> Result<()>;

    async fn append(&self, stream: &str, entry: &Entry) -> Result<EntryId>;

    /// Up to `count` entries never delivered to `group`, waiting up to `block`
    /// for the first one. They become pending for `consumer`.
    async fn read_new(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        count: usize,
        block: Duration,
    ) -> Result<Vec<Delivery>>;

    /// Moves up to `count` entries pending for longer than `min_idle` (for any
    /// consumer) to `consumer`, counting one more delivery for each.
    async fn claim_idle(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> Result<Vec<Delivery>>;

    async fn ack(&self, stream: &str, group: &str, ids: &[EntryId]) -> Result<()>;

    /// Resets the idle time of `ids`, pending for `consumer`, without
    /// counting a delivery.
    async fn touch(&self, stream: &str, group: &str, consumer: &str, ids: &[EntryId])
    -> Result<()>;

    /// Appends every output, then acknowledges `ids`, as one atomic step.
    async fn hand_off(
        &self,
        outputs: &[Outgoing],
        stream: &str,
        group: &str,
        ids: &[EntryId],
    ) -> Result<()>;

    async fn len(&self, stream: &str) -> Result<u64>;

    async fn backlog(&self, stream: &str, group: &str) -> Result<Backlog>;

    /// Up to `count` entries after `after` (from the start when `None`).
    async fn entries(
        &self,
        stream: &str,
        after: Option<&EntryId>,
        count: usize,
    ) -> Result<Vec<(EntryId, Entry)>>;

    /// Adds `member` to `set`; true when it was not there.
    async fn first_seen(&self, set: &str, member: &str) -> Result<bool>;

    /// Stores `data` as the current policy under `key` and announces it on
    /// `channel`, only when `number` is higher than the stored one.
    async fn publish_policy(
        &self,
        key: &str,
        channel: &str,
        number: u64,
        data: Bytes,
    ) -> Result<bool>;

    async fn read_policy(&self, key: &str) -> Result<Option<Bytes>>;

    /// A receiver that always holds the newest policy stored under `key`,
    /// updated from announcements on `channel`.
    async fn watch_policy(
        &self,
        key: &str,
        channel: &str,
    ) -> Result<watch::Receiver<Option<PolicyVersion>>>;
}
