//! The in-process backend of the single-process mode: the same semantics as
//! Redis streams with consumer groups, held in memory.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::{Notify, watch};

use super::{Backend, Backlog, Delivery, Entry, EntryId, Outgoing, QueueError, Result, policy};
use crate::domain::PolicyVersion;

type Id = (u64, u64);

#[derive(Default)]
pub struct EmbeddedBackend {
    state: Mutex<State>,
    /// Woken on every append, so blocked readers look again.
    appended: Notify,
}

impl std::fmt::Debug for EmbeddedBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EmbeddedBackend")
    }
}

#[derive(Default)]
struct State {
    streams: HashMap<String, Stream>,
    sets: HashMap<String, HashSet<String>>,
    policies: HashMap<String, Policy>,
    last_id: Id,
}

#[derive(Default)]
struct Stream {
    entries: BTreeMap<Id, Entry>,
    groups: HashMap<String, Group>,
}

#[derive(Default)]
struct Group {
    last_delivered: Id,
    pending: BTreeMap<Id, Pending>,
}

struct Pending {
    consumer: String,
    delivered_at: Instant,
    deliveries: u64,
}

struct Policy {
    number: u64,
    data: Bytes,
    tx: watch::Sender<Option<PolicyVersion>>,
}

fn format_id((ms, seq): Id) -> EntryId {
    EntryId(format!("{ms}-{seq}"))
}

fn parse_id(id: &EntryId) -> Result<Id> {
    let parse = || {
        let (ms, seq) = id.0.split_once('-')?;
        Some((ms.parse().ok()?, seq.parse().ok()?))
    };
    parse().ok_or_else(|| QueueError::Corrupt(format!("malformed entry id {:?}", id.0)))
}

fn no_group(stream: &str, group: &str) -> QueueError {
    QueueError::Config(format!("no consumer group {group:?} on stream {stream:?}"))
}

impl State {
    fn next_id(&mut self) -> Id {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let (last_ms, last_seq) = self.last_id;
        self.last_id = if now_ms > last_ms {
            (now_ms, 0)
        } else {
            (last_ms, last_seq + 1)
        };
        self.last_id
    }

    fn append(&mut self, stream: &str, entry: &Entry) -> EntryId {
        let id = self.next_id();
        self.streams
            .entry(stream.to_owned())
            .or_default()
            .entries
            .insert(id, entry.clone());
        format_id(id)
    }

    fn group(&mut self, stream: &str, group: &str) -> Result<(&mut Group, &BTreeMap<Id, Entry>)> {
        let s = self
            .streams
            .get_mut(stream)
            .ok_or_else(|| no_group(stream, group))?;
        let g = s
            .groups
            .get_mut(group)
            .ok_or_else(|| no_group(stream, group))?;
        Ok((g, &s.entries))
    }

    fn ack(&mut self, stream: &str, group: &str, ids: &[EntryId]) -> Result<()> {
        let ids = ids.iter().map(parse_id).collect::<Result<Vec<_>>>()?;
        let (g, _) = self.group(stream, group)?;
        for id in ids {
            g.pending.remove(&id);
        }
        Ok(())
    }

    fn take_new(
        &mut self,
        stream: &str,
        group: &str,
        consumer: &str,
        count: usize,
    ) -> Result<Vec<Delivery>> {
        let (g, entries) = self.group(stream, group)?;
        let fresh: Vec<(Id, Entry)> = entries
            .range((
                std::ops::Bound::Excluded(g.last_delivered),
                std::ops::Bound::Unbounded,
            ))
            .take(count)
            .map(|(id, e)| (*id, e.clone()))
            .collect();
        let now = Instant::now();
        Ok(fresh
            .into_iter()
            .map(|(id, entry)| {
                g.last_delivered = id;
                g.pending.insert(
                    id,
                    Pending {
                        consumer: consumer.to_owned(),
                        delivered_at: now,
                        deliveries: 1,
                    },
                );
                Delivery {
                    id: format_id(id),
                    entry: Ok(entry),
                    deliveries: 1,
                }
            })
            .collect())
    }
}

impl EmbeddedBackend {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half-updated
        // in a way later calls misread, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl Backend for EmbeddedBackend {
    async fn create_group(&self, stream: &str, group: &str) -> Result<()> {
        self.lock()
            .streams
            .entry(stream.to_owned())
            .or_default()
            .groups
            .entry(group.to_owned())
            .or_default();
        Ok(())
    }

    async fn append(&self, stream: &str, entry: &Entry) -> Result<EntryId> {
        let id = self.lock().append(stream, entry);
        self.appended.notify_waiters();
        Ok(id)
    }

    async fn read_new(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        count: usize,
        block: Duration,
    ) -> Result<Vec<Delivery>> {
        let deadline = tokio::time::Instant::now() + block;
        loop {
            let notified = self.appended.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let fresh = self.lock().take_new(stream, group, consumer, count)?;
            if !fresh.is_empty() {
                return Ok(fresh);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Ok(Vec::new());
            }
        }
    }

    async fn claim_idle(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> Result<Vec<Delivery>> {
        let mut state = self.lock();
        let (g, entries) = state.group(stream, group)?;
        let now = Instant::now();
        let mut claimed = Vec::new();
        let mut vanished = Vec::new();
        for (id, pending) in g.pending.iter_mut() {
            if claimed.len() == count {
                break;
            }
            if now.duration_since(pending.delivered_at) < min_idle {
                continue;
            }
            let Some(entry) = entries.get(id) else {
                vanished.push(*id);
                continue;
            };
            pending.consumer = consumer.to_owned();
            pending.delivered_at = now;
            pending.deliveries += 1;
            claimed.push(Delivery {
                id: format_id(*id),
                entry: Ok(entry.clone()),
                deliveries: pending.deliveries,
            });
        }
        for id in vanished {
            g.pending.remove(&id);
        }
        Ok(claimed)
    }

    async fn ack(&self, stream: &str, group: &str, ids: &[EntryId]) -> Result<()> {
        self.lock().ack(stream, group, ids)
    }

    async fn touch(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        ids: &[EntryId],
    ) -> Result<()> {
        let ids = ids.iter().map(parse_id).collect::<Result<Vec<_>>>()?;
        let mut state = self.lock();
        let (g, _) = state.group(stream, group)?;
        let now = Instant::now();
        for id in ids {
            if let Some(p) = g.pending.get_mut(&id) {
                p.consumer = consumer.to_owned();
                p.delivered_at = now;
            }
        }
        Ok(())
    }

    async fn hand_off(
        &self,
        outputs: &[Outgoing],
        stream: &str,
        group: &str,
        ids: &[EntryId],
    ) -> Result<()> {
        {
            let mut state = self.lock();
            // Check the ack can succeed before appending, so the step is atomic.
            let parsed = ids.iter().map(parse_id).collect::<Result<Vec<_>>>()?;
            state.group(stream, group)?;
            for out in outputs {
                state.append(&out.stream, &out.entry);
            }
            let (g, _) = state.group(stream, group)?;
            for id in parsed {
                g.pending.remove(&id);
            }
        }
        if !outputs.is_empty() {
            self.appended.notify_waiters();
        }
        Ok(())
    }

    async fn len(&self, stream: &str) -> Result<u64> {
        Ok(self
            .lock()
            .streams
            .get(stream)
            .map_or(0, |s| s.entries.len() as u64))
    }

    async fn backlog(&self, stream: &str, group: &str) -> Result<Backlog> {
        let mut state = self.lock();
        let (g, entries) = state.group(stream, group)?;
        let lag = entries
            .range((
                std::ops::Bound::Excluded(g.last_delivered),
                std::ops::Bound::Unbounded,
            ))
            .count() as u64;
        Ok(Backlog {
            pending: g.pending.len() as u64,
            lag,
        })
    }

    async fn entries(
        &self,
        stream: &str,
        after: Option<&EntryId>,
        count: usize,
    ) -> Result<Vec<(EntryId, Entry)>> {
        let start = match after {
            Some(id) => std::ops::Bound::Excluded(parse_id(id)?),
            None => std::ops::Bound::Unbounded,
        };
        let state = self.lock();
        Ok(state.streams.get(stream).map_or_else(Vec::new, |s| {
            s.entries
                .range((start, std::ops::Bound::Unbounded))
                .take(count)
                .map(|(id, e)| (format_id(*id), e.clone()))
                .collect()
        }))
    }

    async fn first_seen(&self, set: &str, member: &str) -> Result<bool> {
        Ok(self
            .lock()
            .sets
            .entry(set.to_owned())
            .or_default()
            .insert(member.to_owned()))
    }

    async fn publish_policy(
        &self,
        key: &str,
        _channel: &str,
        number: u64,
        data: Bytes,
    ) -> Result<bool> {
        let version = policy::decode(&data)?;
        let mut state = self.lock();
        let slot = state
            .policies
            .entry(key.to_owned())
            .or_insert_with(|| Policy {
                number: 0,
                data: Bytes::new(),
                tx: watch::Sender::new(None),
            });
        if number <= slot.number {
            return Ok(false);
        }
        slot.number = number;
        slot.data = data;
        policy::offer(&slot.tx, version);
        Ok(true)
    }

    async fn read_policy(&self, key: &str) -> Result<Option<Bytes>> {
        Ok(self
            .lock()
            .policies
            .get(key)
            .filter(|p| p.number > 0)
            .map(|p| p.data.clone()))
    }

    async fn watch_policy(
        &self,
        key: &str,
        _channel: &str,
    ) -> Result<watch::Receiver<Option<PolicyVersion>>> {
        let mut state = self.lock();
        let slot = state
            .policies
            .entry(key.to_owned())
            .or_insert_with(|| Policy {
                number: 0,
                data: Bytes::new(),
                tx: watch::Sender::new(None),
            });
        Ok(slot.tx.subscribe())
    }
}
