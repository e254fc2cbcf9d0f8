//! The durable work queue that links the services.
//!
//! # Layout
//!
//! * [`Queue`] — the handle a service holds: typed topics under one run id,
//!   consumers, producers, deduplication and the policy version.
//! * [`Consumer`] — reads a topic through a consumer group: reclaims entries
//!   whose consumer died, dead-letters poison and undecodable entries, hands
//!   outputs downstream and acknowledges in one step.
//! * [`Producer`] — appends to a topic, optionally bounded by the backlog of a
//!   consumer group.
//! * [`PolicyWatch`] — the latest published policy version, pushed to every
//!   subscriber.
//! * [`Backend`] — what a storage engine must provide; [`RedisBackend`] for
//!   services, [`EmbeddedBackend`] for the single-process mode. Both keep the
//!   same semantics: at-least-once delivery, pending entries per consumer,
//!   reclaiming after an idle timeout, delivery counts.

mod backend;
mod consumer;
mod embedded;
mod entry;
mod error;
mod policy;
mod producer;
mod redis_backend;
mod topic;

use std::sync::Arc;

use bytes::Bytes;
use prost::Message;

pub use backend::{Backend, Backlog, Outgoing};
pub use consumer::{Consumer, ConsumerConfig, Received};
pub use embedded::EmbeddedBackend;
pub use entry::{Delivery, Entry, EntryId};
pub use error::{QueueError, Result};
pub use policy::PolicyWatch;
pub use producer::Producer;
pub use redis_backend::{RedisBackend, RedisConfig};
pub use topic::{DEAD, PROMPTS, ROLLOUTS, SCORED, Topic};

use crate::domain::PolicyVersion;
use crate::pb;

/// A service's handle on the queue of one run.
#[derive(Clone)]
pub struct Queue {
    backend: Arc<dyn Backend>,
    run: Arc<str>,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue").field("run", &self.run).finish()
    }
}

impl Queue {
    pub fn new(backend: Arc<dyn Backend>, run: &str) -> Self {
        Self {
            backend,
            run: run.into(),
        }
    }

    /// A queue on the in-process backend (single-process mode and tests).
    pub fn embedded(run: &str) -> Self {
        Self::new(Arc::new(EmbeddedBackend::new()), run)
    }

    /// A queue on Redis at `url` (`redis://host:port/db`).
    pub async fn redis(url: &str, run: &str) -> Result<Self> {
        Self::redis_with(RedisConfig::new(url), run).await
    }

    pub async fn redis_with(config: RedisConfig, run: &str) -> Result<Self> {
        Ok(Self::new(
            Arc::new(RedisBackend::connect(config).await?),
            run,
        ))
    }

    pub fn run_id(&self) -> &str {
        &self.run
    }

    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// The Redis key of a topic: `r1:{run}:{topic}`.
    pub fn key<M>(&self, topic: &Topic<M>) -> String {
        format!("r1:{}:{}", self.run, topic.name())
    }

    fn policy_key(&self) -> String {
        format!("r1:{}:policy", self.run)
    }

    fn policy_channel(&self) -> String {
        format!("r1:{}:policy:announce", self.run)
    }

    /// A consumer of `topic` in consumer group `group` under the name
    /// `consumer` (the replica id). Creates the group when missing.
    pub async fn consumer<M: Message + Default>(
        &self,
        topic: &Topic<M>,
        group: &str,
        consumer: &str,
        config: ConsumerConfig,
    ) -> Result<Consumer<M>> {
        let stream = self.key(topic);
        self.backend.create_group(&stream, group).await?;
        Ok(Consumer::new(
            self.clone(),
            stream,
            group.to_owned(),
            consumer.to_owned(),
            config,
        ))
    }

    pub fn producer<M: Message>(&self, topic: &Topic<M>) -> Producer<M> {
        Producer::new(self.clone(), self.key(topic))
    }

    /// An entry for `topic`, to hand off with [`Consumer::complete`].
    pub fn outgoing<M: Message>(&self, topic: &Topic<M>, message: &M) -> Outgoing {
        Outgoing {
            stream: self.key(topic),
            entry: Entry::encode(message),
        }
    }

    /// Records `id` in the deduplication set `namespace`; true the first time.
    pub async fn first_seen(&self, namespace: &str, id: &str) -> Result<bool> {
        let set = format!("r1:{}:seen:{namespace}", self.run);
        self.backend.first_seen(&set, id).await
    }

    /// Every entry of the dead-letter stream, oldest first.
    pub async fn dead_letters(&self) -> Result<Vec<(EntryId, pb::DeadLetter)>> {
        self.entries(&DEAD).await
    }

    /// Every entry of `topic`'s stream, oldest first (acknowledged or not).
    pub async fn entries<M: Message + Default>(
        &self,
        topic: &Topic<M>,
    ) -> Result<Vec<(EntryId, M)>> {
        let stream = self.key(topic);
        let mut messages = Vec::new();
        let mut after = None;
        loop {
            let batch = self.backend.entries(&stream, after.as_ref(), 512).await?;
            let Some((last, _)) = batch.last() else {
                return Ok(messages);
            };
            after = Some(last.clone());
            for (id, entry) in batch {
                let message = entry.decode::<M>().map_err(|reason| {
                    QueueError::Corrupt(format!("{stream} entry {id} does not decode: {reason}"))
                })?;
                messages.push((id, message));
            }
        }
    }

    /// Makes `version` the current policy and announces it, unless a version
    /// with the same or a higher number is already current. Returns whether
    /// it was applied.
    pub async fn publish_policy(&self, version: &PolicyVersion) -> Result<bool> {
        let data = Bytes::from(pb::PolicyVersion::from(version.clone()).encode_to_vec());
        self.backend
            .publish_policy(
                &self.policy_key(),
                &self.policy_channel(),
                version.number,
                data,
            )
            .await
    }

    /// The current policy version, if one was published.
    pub async fn policy(&self) -> Result<Option<PolicyVersion>> {
        match self.backend.read_policy(&self.policy_key()).await? {
            None => Ok(None),
            Some(bytes) => policy::decode(&bytes).map(Some),
        }
    }

    /// Follows the policy version: the receiver always holds the newest one.
    pub async fn watch_policy(&self) -> Result<PolicyWatch> {
        let rx = self
            .backend
            .watch_policy(&self.policy_key(), &self.policy_channel())
            .await?;
        Ok(PolicyWatch::new(rx))
    }
}
