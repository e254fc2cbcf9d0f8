//! Redis streams with consumer groups: the broker between the services.
//!
//! Stream entries carry two fields, `v` (schema version) and `d` (encoded
//! message). Every command is retried with exponential backoff while the
//! connection is down or Redis is loading its data after a restart, for up
//! to [`RedisConfig::max_outage`]. Retrying an append whose reply was lost can
//! append twice; consumers deduplicate (at-least-once delivery).

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use backon::{ExponentialBuilder, Retryable};
use bytes::Bytes;
use futures::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::streams::{
    StreamAutoClaimReply, StreamId, StreamInfoGroupsReply, StreamPendingCountReply,
    StreamRangeReply, StreamReadReply,
};
use redis::{Client, Cmd, ErrorKind, FromRedisValue, RedisError, RedisResult};
use tokio::sync::{Mutex, watch};

use super::{Backend, Backlog, Delivery, Entry, EntryId, Outgoing, QueueError, Result, policy};
use crate::domain::PolicyVersion;

const FIELD_VERSION: &str = "v";
const FIELD_DATA: &str = "d";

/// Sets the policy hash only when the number grows, then announces it.
const PUBLISH_POLICY: &str = r"
local current = tonumber(redis.call('HGET', KEYS[1], 'number') or '0')
if tonumber(ARGV[1]) <= current then return 0 end
redis.call('HSET', KEYS[1], 'number', ARGV[1], 'data', ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[2])
return 1
";

#[derive(Debug, Clone)]
pub struct RedisConfig {
    pub url: String,
    /// How long commands are retried while Redis is unreachable before the
    /// caller sees an error.
    pub max_outage: Duration,
    /// How long a reply may take (blocking reads add their block time).
    pub response_timeout: Duration,
}

impl RedisConfig {
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            max_outage: Duration::from_secs(60),
            response_timeout: Duration::from_secs(10),
        }
    }
}

pub struct RedisBackend {
    client: Client,
    config: RedisConfig,
    /// Shared connection for every non-blocking command.
    conn: ConnectionManager,
    /// One connection per consumer for blocking reads, which would otherwise
    /// stall every command queued behind them on the shared connection.
    readers: Mutex<HashMap<String, ConnectionManager>>,
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackend")
            .field("url", &self.config.url)
            .finish()
    }
}

fn transient(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_timeout()
        || matches!(
            error.kind(),
            ErrorKind::BusyLoadingError | ErrorKind::TryAgain
        )
}

fn backoff(max_outage: Duration) -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(20))
        .with_max_delay(Duration::from_secs(2))
        .with_jitter()
        .without_max_times()
        .with_total_delay(Some(max_outage))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn decode_entry(id: &StreamId) -> Result<Entry, String> {
    let field = |name: &str| {
        id.map
            .get(name)
            .ok_or_else(|| format!("field {name:?} is missing"))
    };
    let schema_version = u32::from_redis_value(field(FIELD_VERSION)?)
        .map_err(|e| format!("field {FIELD_VERSION:?} is not a number: {e}"))?;
    let payload = Vec::<u8>::from_redis_value(field(FIELD_DATA)?)
        .map_err(|e| format!("field {FIELD_DATA:?} is not bytes: {e}"))?;
    Ok(Entry {
        schema_version,
        payload: Bytes::from(payload),
    })
}

fn xadd(stream: &str, entry: &Entry) -> Cmd {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(stream)
        .arg("*")
        .arg(FIELD_VERSION)
        .arg(entry.schema_version)
        .arg(FIELD_DATA)
        .arg(entry.payload.as_ref());
    cmd
}

fn ids_arg(ids: &[EntryId]) -> Vec<&str> {
    ids.iter().map(|id| id.0.as_str()).collect()
}

impl RedisBackend {
    pub async fn connect(config: RedisConfig) -> Result<Self> {
        let client = Client::open(config.url.as_str())
            .map_err(|e| QueueError::Config(format!("redis url {:?}: {e}", config.url)))?;
        let conn = Self::manager(&client, &config, config.response_timeout).await?;
        Ok(Self {
            client,
            config,
            conn,
            readers: Mutex::new(HashMap::new()),
        })
    }

    async fn manager(
        client: &Client,
        config: &RedisConfig,
        response_timeout: Duration,
    ) -> Result<ConnectionManager> {
        let manager_config = ConnectionManagerConfig::new()
            .set_response_timeout(response_timeout)
            .set_connection_timeout(config.response_timeout)
            .set_number_of_retries(3)
            .set_max_delay(1000);
        let started = Instant::now();
        (|| ConnectionManager::new_with_config(client.clone(), manager_config.clone()))
            .retry(backoff(config.max_outage))
            .when(transient)
            .notify(|e, wait| tracing::warn!(error = %e, ?wait, "redis unreachable, retrying"))
            .await
            .map_err(|source| Self::failure(started, source))
    }

    fn failure(started: Instant, source: RedisError) -> QueueError {
        if transient(&source) {
            QueueError::Unavailable {
                waited: started.elapsed(),
                source,
            }
        } else {
            QueueError::Redis(source)
        }
    }

    async fn retrying<T, F, Fut>(&self, what: &'static str, op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let started = Instant::now();
        op.retry(backoff(self.config.max_outage))
            .when(transient)
            .notify(
                |e, wait| tracing::warn!(error = %e, ?wait, what, "redis command failed, retrying"),
            )
            .await
            .map_err(|source| Self::failure(started, source))
    }

    /// Runs `cmd` on the shared connection, retrying transient failures.
    async fn run<T: FromRedisValue>(&self, what: &'static str, cmd: &Cmd) -> Result<T> {
        self.retrying(what, || {
            let mut conn = self.conn.clone();
            async move { cmd.query_async::<T>(&mut conn).await }
        })
        .await
    }

    async fn reader(&self, consumer: &str, block: Duration) -> Result<ConnectionManager> {
        let mut readers = self.readers.lock().await;
        if let Some(conn) = readers.get(consumer) {
            return Ok(conn.clone());
        }
        let conn = Self::manager(
            &self.client,
            &self.config,
            block + self.config.response_timeout,
        )
        .await?;
        readers.insert(consumer.to_owned(), conn.clone());
        Ok(conn)
    }

    /// Delivery counts of `ids`, which are pending for `consumer`.
    async fn delivery_counts(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        ids: &[&str],
    ) -> Result<HashMap<String, u64>> {
        let (Some(first), Some(last)) = (ids.first(), ids.last()) else {
            return Ok(HashMap::new());
        };
        let mut cmd = redis::cmd("XPENDING");
        cmd.arg(stream)
            .arg(group)
            .arg(*first)
            .arg(*last)
            .arg(ids.len() * 2 + 16)
            .arg(consumer);
        let reply: StreamPendingCountReply = self.run("xpending", &cmd).await?;
        Ok(reply
            .ids
            .into_iter()
            .map(|p| (p.id, p.times_delivered as u64))
            .collect())
    }
}

#[async_trait]
impl Backend for RedisBackend {
    async fn create_group(&self, stream: &str, group: &str) -> Result<()> {
        let mut cmd = redis::cmd("XGROUP");
        cmd.arg("CREATE")
            .arg(stream)
            .arg(group)
            .arg("0")
            .arg("MKSTREAM");
        match self.run::<()>("xgroup create", &cmd).await {
            Err(QueueError::Redis(e)) if e.code() == Some("BUSYGROUP") => Ok(()),
            other => other,
        }
    }

    async fn append(&self, stream: &str, entry: &Entry) -> Result<EntryId> {
        self.run("xadd", &xadd(stream, entry)).await.map(EntryId)
    }

    async fn read_new(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        count: usize,
        block: Duration,
    ) -> Result<Vec<Delivery>> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(group)
            .arg(consumer)
            .arg("COUNT")
            .arg(count);
        // BLOCK 0 would wait forever.
        if !block.is_zero() {
            cmd.arg("BLOCK").arg(millis(block).max(1));
        }
        cmd.arg("STREAMS").arg(stream).arg(">");
        let reader = self.reader(consumer, block).await?;
        let reply: Option<StreamReadReply> = self
            .retrying("xreadgroup", || {
                let mut conn = reader.clone();
                let cmd = &cmd;
                async move { cmd.query_async(&mut conn).await }
            })
            .await?;
        Ok(reply
            .into_iter()
            .flat_map(|r| r.keys)
            .flat_map(|k| k.ids)
            .map(|id| Delivery {
                entry: decode_entry(&id),
                id: EntryId(id.id),
                deliveries: 1,
            })
            .collect())
    }

    async fn claim_idle(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> Result<Vec<Delivery>> {
        let mut cmd = redis::cmd("XAUTOCLAIM");
        cmd.arg(stream)
            .arg(group)
            .arg(consumer)
            .arg(millis(min_idle))
            .arg("0-0")
            .arg("COUNT")
            .arg(count);
        let reply: StreamAutoClaimReply = self.run("xautoclaim", &cmd).await?;
        if reply.claimed.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&str> = reply.claimed.iter().map(|c| c.id.as_str()).collect();
        let counts = self.delivery_counts(stream, group, consumer, &ids).await?;
        Ok(reply
            .claimed
            .iter()
            .map(|claimed| Delivery {
                entry: decode_entry(claimed),
                deliveries: counts.get(&claimed.id).copied().unwrap_or(1),
                id: EntryId(claimed.id.clone()),
            })
            .collect())
    }

    async fn ack(&self, stream: &str, group: &str, ids: &[EntryId]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut cmd = redis::cmd("XACK");
        cmd.arg(stream).arg(group).arg(ids_arg(ids));
        self.run::<u64>("xack", &cmd).await.map(drop)
    }

    async fn touch(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        ids: &[EntryId],
    ) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut cmd = redis::cmd("XCLAIM");
        cmd.arg(stream)
            .arg(group)
            .arg(consumer)
            .arg(0)
            .arg(ids_arg(ids))
            .arg("JUSTID");
        self.run::<Vec<String>>("xclaim", &cmd).await.map(drop)
    }

    async fn hand_off(
        &self,
        outputs: &[Outgoing],
        stream: &str,
        group: &str,
        ids: &[EntryId],
    ) -> Result<()> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        for out in outputs {
            pipe.add_command(xadd(&out.stream, &out.entry)).ignore();
        }
        if !ids.is_empty() {
            pipe.cmd("XACK")
                .arg(stream)
                .arg(group)
                .arg(ids_arg(ids))
                .ignore();
        }
        self.retrying("hand-off", || {
            let mut conn = self.conn.clone();
            let pipe = &pipe;
            async move { pipe.query_async::<()>(&mut conn).await }
        })
        .await
    }

    async fn len(&self, stream: &str) -> Result<u64> {
        let mut cmd = redis::cmd("XLEN");
        cmd.arg(stream);
        self.run("xlen", &cmd).await
    }

    async fn backlog(&self, stream: &str, group: &str) -> Result<Backlog> {
        let mut cmd = redis::cmd("XINFO");
        cmd.arg("GROUPS").arg(stream);
        let reply: StreamInfoGroupsReply = self.run("xinfo groups", &cmd).await?;
        let info = reply
            .groups
            .into_iter()
            .find(|g| g.name == group)
            .ok_or_else(|| {
                QueueError::Config(format!("no consumer group {group:?} on stream {stream:?}"))
            })?;
        let lag = match info.lag {
            Some(lag) => lag as u64,
            None => {
                // Redis cannot tell the lag after deletions; count instead.
                let mut cmd = redis::cmd("XRANGE");
                cmd.arg(stream)
                    .arg(format!("({}", info.last_delivered_id))
                    .arg("+");
                let reply: StreamRangeReply = self.run("xrange", &cmd).await?;
                reply.ids.len() as u64
            }
        };
        Ok(Backlog {
            pending: info.pending as u64,
            lag,
        })
    }

    async fn entries(
        &self,
        stream: &str,
        after: Option<&EntryId>,
        count: usize,
    ) -> Result<Vec<(EntryId, Entry)>> {
        let start = after.map_or_else(|| "-".to_owned(), |id| format!("({id}"));
        let mut cmd = redis::cmd("XRANGE");
        cmd.arg(stream).arg(start).arg("+").arg("COUNT").arg(count);
        let reply: StreamRangeReply = self.run("xrange", &cmd).await?;
        reply
            .ids
            .iter()
            .map(|id| {
                let entry = decode_entry(id).map_err(|reason| {
                    QueueError::Corrupt(format!("entry {} of {stream}: {reason}", id.id))
                })?;
                Ok((EntryId(id.id.clone()), entry))
            })
            .collect()
    }

    async fn first_seen(&self, set: &str, member: &str) -> Result<bool> {
        let mut cmd = redis::cmd("SADD");
        cmd.arg(set).arg(member);
        self.run::<u64>("sadd", &cmd).await.map(|added| added == 1)
    }

    async fn publish_policy(
        &self,
        key: &str,
        channel: &str,
        number: u64,
        data: Bytes,
    ) -> Result<bool> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(PUBLISH_POLICY)
            .arg(1)
            .arg(key)
            .arg(number)
            .arg(data.as_ref())
            .arg(channel);
        self.run::<u64>("publish policy", &cmd)
            .await
            .map(|applied| applied == 1)
    }

    async fn read_policy(&self, key: &str) -> Result<Option<Bytes>> {
        let mut cmd = redis::cmd("HGET");
        cmd.arg(key).arg("data");
        let data: Option<Vec<u8>> = self.run("hget policy", &cmd).await?;
        Ok(data.map(Bytes::from))
    }

    async fn watch_policy(
        &self,
        key: &str,
        channel: &str,
    ) -> Result<watch::Receiver<Option<PolicyVersion>>> {
        let (tx, rx) = watch::channel(None);
        let follower = PolicyFollower {
            client: self.client.clone(),
            key: key.to_owned(),
            channel: channel.to_owned(),
            max_outage: self.config.max_outage,
            tx,
        };
        // Subscribed before returning, so no announcement made after this
        // call returns can be missed.
        let messages = follower.subscribe().await?;
        tokio::spawn(follower.run(messages));
        Ok(rx)
    }
}

/// Keeps a watch channel on the newest policy version: subscribes to the
/// announcement channel, and after every reconnection re-reads the stored
/// version, since announcements made while disconnected are lost.
struct PolicyFollower {
    client: Client,
    key: String,
    channel: String,
    max_outage: Duration,
    tx: watch::Sender<Option<PolicyVersion>>,
}

type Messages = std::pin::Pin<Box<dyn futures::Stream<Item = redis::Msg> + Send>>;

impl PolicyFollower {
    async fn subscribe(&self) -> Result<Messages> {
        let started = Instant::now();
        let attempt = || async {
            let mut pubsub = self.client.get_async_pubsub().await?;
            pubsub.subscribe(&self.channel).await?;
            let mut conn = self.client.get_multiplexed_async_connection().await?;
            let stored: Option<Vec<u8>> = redis::cmd("HGET")
                .arg(&self.key)
                .arg("data")
                .query_async(&mut conn)
                .await?;
            Ok::<_, RedisError>((pubsub, stored))
        };
        let (pubsub, stored) = attempt
            .retry(backoff(self.max_outage))
            .when(transient)
            .await
            .map_err(|source| RedisBackend::failure(started, source))?;
        if let Some(bytes) = stored {
            self.offer(&bytes);
        }
        Ok(Box::pin(pubsub.into_on_message()))
    }

    fn offer(&self, bytes: &[u8]) {
        match policy::decode(bytes) {
            Ok(version) => policy::offer(&self.tx, version),
            Err(e) => tracing::error!(error = %e, "ignoring an undecodable policy announcement"),
        }
    }

    async fn run(self, mut messages: Messages) {
        loop {
            tokio::select! {
                () = self.tx.closed() => return,
                message = messages.next() => match message {
                    Some(message) => self.offer(message.get_payload_bytes()),
                    None => {
                        tracing::warn!(channel = %self.channel, "policy subscription lost, resubscribing");
                        loop {
                            tokio::select! {
                                () = self.tx.closed() => return,
                                resubscribed = self.subscribe() => match resubscribed {
                                    Ok(m) => { messages = m; break; }
                                    Err(e) => tracing::error!(error = %e, "cannot resubscribe to policy announcements"),
                                },
                            }
                        }
                    }
                },
            }
        }
    }
}
