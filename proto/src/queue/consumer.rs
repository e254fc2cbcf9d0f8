use std::marker::PhantomData;
use std::time::{Duration, Instant};

use prost::Message;

use super::{DEAD, Delivery, Entry, EntryId, Outgoing, Queue, QueueError, Result};
use crate::pb;

#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// Most entries returned by one [`Consumer::next`].
    pub batch: usize,
    /// How long [`Consumer::next`] waits for new entries before returning none.
    pub block: Duration,
    /// An entry pending this long is presumed abandoned (its consumer died)
    /// and is taken over by the next consumer that looks.
    pub reclaim_idle: Duration,
    /// An entry delivered more times than this goes to the dead-letter stream.
    pub max_deliveries: u64,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        Self {
            batch: 16,
            block: Duration::from_secs(1),
            reclaim_idle: Duration::from_secs(60),
            max_deliveries: 5,
        }
    }
}

impl ConsumerConfig {
    pub fn validate(&self) -> Result<()> {
        if self.batch == 0 {
            return Err(QueueError::Config("batch must be at least 1".into()));
        }
        if self.max_deliveries == 0 {
            return Err(QueueError::Config(
                "max_deliveries must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// A decoded entry, pending for this consumer until acknowledged.
#[derive(Debug, Clone)]
pub struct Received<M> {
    pub id: EntryId,
    pub message: M,
    /// How many times it has been delivered, this time included.
    pub deliveries: u64,
    entry: Entry,
}

/// Reads one topic through a consumer group.
pub struct Consumer<M> {
    queue: Queue,
    stream: String,
    group: String,
    name: String,
    config: ConsumerConfig,
    next_reclaim: Instant,
    message: PhantomData<fn() -> M>,
}

impl<M> std::fmt::Debug for Consumer<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("stream", &self.stream)
            .field("group", &self.group)
            .field("name", &self.name)
            .finish()
    }
}

impl<M: Message + Default> Consumer<M> {
    pub(crate) fn new(
        queue: Queue,
        stream: String,
        group: String,
        name: String,
        config: ConsumerConfig,
    ) -> Self {
        Self {
            queue,
            stream,
            group,
            name,
            config,
            next_reclaim: Instant::now(),
            message: PhantomData,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The next entries for this consumer: abandoned entries first, then new
    /// ones (waiting up to `block`). Entries delivered too often, or whose
    /// bytes do not decode, go to the dead-letter stream instead of being
    /// returned. An empty result means nothing arrived in time.
    pub async fn next(&mut self) -> Result<Vec<Received<M>>> {
        self.next_up_to(self.config.batch).await
    }

    /// Like [`Consumer::next`], returning at most `limit` entries.
    pub async fn next_up_to(&mut self, limit: usize) -> Result<Vec<Received<M>>> {
        let limit = limit.clamp(1, self.config.batch);
        let backend = self.queue.backend();
        let mut deliveries = Vec::new();
        if Instant::now() >= self.next_reclaim {
            deliveries = backend
                .claim_idle(
                    &self.stream,
                    &self.group,
                    &self.name,
                    self.config.reclaim_idle,
                    limit,
                )
                .await?;
            if deliveries.len() < limit {
                // Nothing more is abandoned right now; look again later.
                self.next_reclaim = Instant::now() + self.config.reclaim_idle / 4;
            }
        }
        if deliveries.is_empty() {
            deliveries = backend
                .read_new(
                    &self.stream,
                    &self.group,
                    &self.name,
                    limit,
                    self.config.block,
                )
                .await?;
        }
        let mut received = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            if delivery.deliveries > self.config.max_deliveries {
                let reason = format!(
                    "delivered {} times without being acknowledged (max_deliveries {})",
                    delivery.deliveries, self.config.max_deliveries
                );
                self.bury(&delivery, reason).await?;
                continue;
            }
            let decoded = match &delivery.entry {
                Ok(entry) => entry.decode::<M>().map(|m| (m, entry.clone())),
                Err(reason) => Err(reason.clone()),
            };
            match decoded {
                Ok((message, entry)) => received.push(Received {
                    id: delivery.id,
                    message,
                    deliveries: delivery.deliveries,
                    entry,
                }),
                Err(reason) => {
                    self.bury(&delivery, format!("undecodable entry: {reason}"))
                        .await?
                }
            }
        }
        Ok(received)
    }

    /// Takes over every pending entry of the group at once, whatever its idle
    /// time (a singleton consumer restarting after a crash).
    pub async fn claim_pending(&mut self) -> Result<Vec<Received<M>>> {
        /// One claim takes them all: a claimed entry is idle again at once.
        const ALL: usize = 1_000_000;
        let batch = self
            .queue
            .backend()
            .claim_idle(&self.stream, &self.group, &self.name, Duration::ZERO, ALL)
            .await?;
        let mut all = Vec::with_capacity(batch.len());
        for delivery in batch {
            let decoded = match &delivery.entry {
                Ok(entry) => entry.decode::<M>().map(|m| (m, entry.clone())),
                Err(reason) => Err(reason.clone()),
            };
            match decoded {
                Ok((message, entry)) => all.push(Received {
                    id: delivery.id,
                    message,
                    deliveries: delivery.deliveries,
                    entry,
                }),
                Err(reason) => {
                    self.bury(&delivery, format!("undecodable entry: {reason}"))
                        .await?
                }
            }
        }
        Ok(all)
    }

    /// Appends `outputs` downstream and acknowledges `ids`, atomically.
    pub async fn complete(&self, ids: &[EntryId], outputs: &[Outgoing]) -> Result<()> {
        self.queue
            .backend()
            .hand_off(outputs, &self.stream, &self.group, ids)
            .await
    }

    /// Acknowledges entries that need no output.
    pub async fn ack(&self, ids: &[EntryId]) -> Result<()> {
        self.queue
            .backend()
            .ack(&self.stream, &self.group, ids)
            .await
    }

    /// Resets the idle time of entries still being worked on, so that no
    /// other consumer takes them over.
    pub async fn keep_alive(&self, ids: &[EntryId]) -> Result<()> {
        self.queue
            .backend()
            .touch(&self.stream, &self.group, &self.name, ids)
            .await
    }

    /// Moves an entry that can never be processed (e.g. it fails validation)
    /// to the dead-letter stream with `reason`.
    pub async fn reject(&self, received: &Received<M>, reason: impl Into<String>) -> Result<()> {
        let delivery = Delivery {
            id: received.id.clone(),
            entry: Ok(received.entry.clone()),
            deliveries: received.deliveries,
        };
        self.bury(&delivery, reason.into()).await
    }

    async fn bury(&self, delivery: &Delivery, reason: String) -> Result<()> {
        tracing::warn!(stream = %self.stream, id = %delivery.id, %reason, "dead-lettering entry");
        let (schema_version, payload) = match &delivery.entry {
            Ok(entry) => (entry.schema_version, entry.payload.to_vec()),
            Err(_) => (0, Vec::new()),
        };
        let letter = pb::DeadLetter {
            source_stream: self.stream.clone(),
            entry_id: delivery.id.0.clone(),
            reason,
            deliveries: delivery.deliveries,
            consumer: self.name.clone(),
            schema_version,
            payload,
        };
        let output = self.queue.outgoing(&DEAD, &letter);
        self.complete(std::slice::from_ref(&delivery.id), &[output])
            .await
    }
}
