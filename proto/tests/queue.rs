//! Queue semantics, each test run against a private redis-server and against
//! the embedded backend.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use r1_proto::SCHEMA_VERSION;
use r1_proto::domain::PolicyVersion;
use r1_proto::pb;
use r1_proto::queue::{ConsumerConfig, Entry, PROMPTS, Queue, ROLLOUTS, RedisConfig, SCORED};
use r1_testkit::{RedisOptions, RedisServer};

/// A queue on one backend, and the Redis server behind it, if any.
struct Harness {
    queue: Queue,
    redis: Option<RedisServer>,
}

impl Harness {
    fn embedded() -> Self {
        Self {
            queue: Queue::embedded("test"),
            redis: None,
        }
    }

    async fn redis() -> Self {
        Self::redis_with(RedisOptions::default()).await
    }

    async fn redis_with(options: RedisOptions) -> Self {
        let server = RedisServer::start_with(options);
        let queue = Queue::redis(&server.url(), "test").await.unwrap();
        Self {
            queue,
            redis: Some(server),
        }
    }

    /// Another handle on the same queue, as a second process would have.
    async fn second_handle(&self) -> Queue {
        match &self.redis {
            Some(server) => Queue::redis(&server.url(), "test").await.unwrap(),
            None => self.queue.clone(),
        }
    }
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn on_redis() {
                super::$name(super::Harness::redis().await).await;
            }

            #[tokio::test]
            async fn on_embedded() {
                super::$name(super::Harness::embedded()).await;
            }
        }
    )*};
}

on_both_backends!(
    output_is_appended_downstream_when_the_input_is_acknowledged,
    unacknowledged_entry_is_redelivered_to_another_consumer_after_the_idle_timeout,
    poison_entry_goes_to_the_dead_letter_stream_after_max_deliveries,
    undecodable_entries_are_dead_lettered_and_the_consumer_continues,
    redelivered_group_is_counted_once,
    policy_version_announcement_reaches_two_subscribers,
    consumers_of_one_group_share_entries_without_duplicates,
    bounded_producer_waits_for_the_backlog_to_shrink,
    blocked_read_wakes_when_an_entry_arrives,
    keep_alive_stops_a_slow_entry_from_being_taken_over,
);

fn job(id: &str) -> pb::PromptJob {
    pb::PromptJob {
        id: id.to_owned(),
        prompt: Some(pb::Prompt {
            kind: Some(pb::prompt::Kind::Text(format!("What is {id}?"))),
            format: pb::PromptFormat::R1.into(),
        }),
        task: Some(pb::Task {
            kind: Some(pb::task::Kind::Math(pb::MathTask {
                gold_answer: "4".into(),
            })),
            language: "en".into(),
            reward_profile: String::new(),
        }),
        group_size: 2,
        sampling: Some(pb::SamplingParams {
            temperature: 1.0,
            top_p: 1.0,
            top_k: 0,
            max_new_tokens: 16,
            stop: vec![],
            seed: 7,
        }),
        min_policy_version: 0,
        run_id: "test".into(),
    }
}

fn group_for(job: pb::PromptJob) -> pb::Group {
    let completion = |text: &str| pb::Completion {
        text: text.into(),
        token_ids: vec![1, 2, 3],
        logprobs: vec![-0.5, -0.25, -0.125],
        finish_reason: pb::FinishReason::Stop.into(),
    };
    pb::Group {
        job: Some(job),
        prompt_token_ids: vec![9, 8, 7],
        completions: vec![
            completion("<answer>4</answer>"),
            completion("<answer>5</answer>"),
        ],
        policy_version: 1,
        sampler_id: "replica-a".into(),
    }
}

fn config() -> ConsumerConfig {
    ConsumerConfig {
        batch: 16,
        block: Duration::from_millis(50),
        reclaim_idle: Duration::from_secs(60),
        max_deliveries: 5,
    }
}

fn version(number: u64) -> PolicyVersion {
    PolicyVersion {
        number,
        weights_uri: format!("/weights/v{number}"),
        checksum: format!("sum{number}"),
    }
}

/// Deadline for conditions that should hold within milliseconds.
const WAIT: Duration = Duration::from_secs(15);

async fn output_is_appended_downstream_when_the_input_is_acknowledged(h: Harness) {
    let q = &h.queue;
    let mut inference = q
        .consumer(&PROMPTS, "inference", "a", config())
        .await
        .unwrap();
    let mut reward = q
        .consumer(&ROLLOUTS, "reward", "r", config())
        .await
        .unwrap();
    q.producer(&PROMPTS).append(&job("j1")).await.unwrap();

    let received = inference.next().await.unwrap();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].message, job("j1"));
    assert_eq!(received[0].deliveries, 1);
    let prompts = q.producer(&PROMPTS);
    assert_eq!(prompts.backlog("inference").await.unwrap().pending, 1);

    let group = group_for(received[0].message.clone());
    inference
        .complete(&[received[0].id.clone()], &[q.outgoing(&ROLLOUTS, &group)])
        .await
        .unwrap();

    let backlog = prompts.backlog("inference").await.unwrap();
    assert_eq!((backlog.pending, backlog.lag), (0, 0));
    let downstream = reward.next().await.unwrap();
    assert_eq!(downstream.len(), 1);
    assert_eq!(downstream[0].message, group);
}

async fn unacknowledged_entry_is_redelivered_to_another_consumer_after_the_idle_timeout(
    h: Harness,
) {
    let q = &h.queue;
    let idle = Duration::from_millis(300);
    let cfg = ConsumerConfig {
        reclaim_idle: idle,
        ..config()
    };
    let mut dying = q
        .consumer(&PROMPTS, "inference", "dying", cfg.clone())
        .await
        .unwrap();
    let other = h.second_handle().await;
    let mut survivor = other
        .consumer(&PROMPTS, "inference", "survivor", cfg)
        .await
        .unwrap();
    q.producer(&PROMPTS).append(&job("orphan")).await.unwrap();

    let taken = dying.next().await.unwrap();
    let delivered_at = Instant::now();
    assert_eq!(taken.len(), 1);
    drop(dying);

    assert!(
        survivor.next().await.unwrap().is_empty(),
        "taken before the idle timeout"
    );
    let deadline = Instant::now() + WAIT;
    let redelivered = loop {
        let batch = survivor.next().await.unwrap();
        if !batch.is_empty() {
            break batch;
        }
        assert!(
            Instant::now() < deadline,
            "orphaned entry was never redelivered"
        );
    };
    assert!(delivered_at.elapsed() >= idle);
    assert_eq!(redelivered.len(), 1);
    assert_eq!(redelivered[0].id, taken[0].id);
    assert_eq!(redelivered[0].message, job("orphan"));
    assert_eq!(redelivered[0].deliveries, 2);
    survivor.ack(&[redelivered[0].id.clone()]).await.unwrap();
    let backlog = q.producer(&PROMPTS).backlog("inference").await.unwrap();
    assert_eq!(backlog.total(), 0);
}

async fn poison_entry_goes_to_the_dead_letter_stream_after_max_deliveries(h: Harness) {
    let q = &h.queue;
    let cfg = ConsumerConfig {
        reclaim_idle: Duration::ZERO,
        max_deliveries: 3,
        ..config()
    };
    let mut consumer = q.consumer(&PROMPTS, "inference", "a", cfg).await.unwrap();
    let poison_id = q.producer(&PROMPTS).append(&job("poison")).await.unwrap();

    // Every delivery "crashes": nothing is acknowledged.
    let mut deliveries = Vec::new();
    let deadline = Instant::now() + WAIT;
    while q.dead_letters().await.unwrap().is_empty() {
        for received in consumer.next().await.unwrap() {
            deliveries.push(received.deliveries);
        }
        assert!(
            Instant::now() < deadline,
            "poison entry never dead-lettered"
        );
    }
    assert_eq!(deliveries, vec![1, 2, 3]);

    let letters = q.dead_letters().await.unwrap();
    assert_eq!(letters.len(), 1);
    let letter = &letters[0].1;
    assert_eq!(letter.entry_id, poison_id.0);
    assert_eq!(letter.deliveries, 4);
    assert!(
        letter.reason.contains("max_deliveries 3"),
        "{}",
        letter.reason
    );
    assert_eq!(letter.source_stream, q.key(&PROMPTS));
    let original = Entry {
        schema_version: letter.schema_version,
        payload: letter.payload.clone().into(),
    };
    assert_eq!(original.decode::<pb::PromptJob>().unwrap(), job("poison"));

    q.producer(&PROMPTS).append(&job("healthy")).await.unwrap();
    let next = consumer.next().await.unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].message, job("healthy"));
    let backlog = q.producer(&PROMPTS).backlog("inference").await.unwrap();
    assert_eq!(backlog.pending, 1, "only the healthy entry is pending");
}

async fn undecodable_entries_are_dead_lettered_and_the_consumer_continues(h: Harness) {
    let q = &h.queue;
    let mut consumer = q
        .consumer(&PROMPTS, "inference", "a", config())
        .await
        .unwrap();
    let stream = q.key(&PROMPTS);
    let garbage = Entry {
        schema_version: SCHEMA_VERSION,
        payload: vec![0xff, 0xff, 0xff, 0x07, 0x00].into(),
    };
    let future = Entry {
        schema_version: SCHEMA_VERSION + 1,
        payload: Entry::encode(&job("from-the-future")).payload,
    };
    let garbage_id = q.backend().append(&stream, &garbage).await.unwrap();
    let future_id = q.backend().append(&stream, &future).await.unwrap();
    q.producer(&PROMPTS).append(&job("fine")).await.unwrap();

    let received = consumer.next().await.unwrap();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].message, job("fine"));

    let letters = q.dead_letters().await.unwrap();
    let by_id: Vec<(&str, &str)> = letters
        .iter()
        .map(|(_, l)| (l.entry_id.as_str(), l.reason.as_str()))
        .collect();
    assert_eq!(by_id.len(), 2);
    assert_eq!(by_id[0].0, garbage_id.0);
    assert!(
        by_id[0].1.contains("protobuf decode failed"),
        "{}",
        by_id[0].1
    );
    assert_eq!(by_id[1].0, future_id.0);
    assert!(by_id[1].1.contains("schema version"), "{}", by_id[1].1);
    assert_eq!(
        letters[0].1.payload,
        garbage.payload.to_vec(),
        "bytes are kept"
    );
    let backlog = q.producer(&PROMPTS).backlog("inference").await.unwrap();
    assert_eq!(backlog.pending, 1, "dead-lettered entries are acknowledged");
}

async fn redelivered_group_is_counted_once(h: Harness) {
    let q = &h.queue;
    let cfg = ConsumerConfig {
        reclaim_idle: Duration::ZERO,
        ..config()
    };
    let producer = q.producer(&SCORED);
    let scored = |id: &str| pb::ScoredGroup {
        group: Some(group_for(job(id))),
        scores: vec![pb::Score::default(), pb::Score::default()],
        scorer_id: "reward-0".into(),
    };
    let mut learner = q.consumer(&SCORED, "learner", "l", cfg).await.unwrap();
    producer.append(&scored("g1")).await.unwrap();
    producer.append(&scored("g2")).await.unwrap();
    // A retried append after a lost reply delivers the same group twice.
    producer.append(&scored("g1")).await.unwrap();

    let mut counted = Vec::new();
    let mut crashed_once = false;
    let deadline = Instant::now() + WAIT;
    while producer.backlog("learner").await.unwrap().total() > 0 {
        assert!(Instant::now() < deadline, "scored groups were not drained");
        for received in learner.next().await.unwrap() {
            let group = received.message.group.as_ref().unwrap();
            let id = group.job.as_ref().unwrap().id.clone();
            if q.first_seen("learner", &id).await.unwrap() {
                counted.push(id);
                if !crashed_once {
                    // Counted, then "crashed" before acknowledging: redelivered.
                    crashed_once = true;
                    continue;
                }
            }
            learner.ack(&[received.id]).await.unwrap();
        }
    }
    counted.sort();
    assert_eq!(counted, vec!["g1".to_owned(), "g2".to_owned()]);
    assert!(crashed_once);
}

async fn policy_version_announcement_reaches_two_subscribers(h: Harness) {
    let first = h.queue.clone();
    let second = h.second_handle().await;
    let mut a = first.watch_policy().await.unwrap();
    let mut b = second.watch_policy().await.unwrap();
    assert_eq!(a.current(), None);
    assert_eq!(first.policy().await.unwrap(), None);

    assert!(first.publish_policy(&version(1)).await.unwrap());
    assert_eq!(a.changed().await, Some(version(1)));
    assert_eq!(b.changed().await, Some(version(1)));

    assert!(
        !second.publish_policy(&version(1)).await.unwrap(),
        "same number twice"
    );
    assert!(second.publish_policy(&version(3)).await.unwrap());
    assert!(
        !first.publish_policy(&version(2)).await.unwrap(),
        "older than current"
    );
    assert_eq!(a.wait_for(3).await, Some(version(3)));
    assert_eq!(b.wait_for(3).await, Some(version(3)));
    assert_eq!(first.policy().await.unwrap(), Some(version(3)));

    // A subscriber that starts late sees the current version at once.
    let late = second.watch_policy().await.unwrap();
    assert_eq!(late.current(), Some(version(3)));
}

async fn consumers_of_one_group_share_entries_without_duplicates(h: Harness) {
    const N: usize = 200;
    let producer = h.queue.producer(&PROMPTS);
    for i in 0..N {
        producer.append(&job(&format!("j{i}"))).await.unwrap();
    }
    let mut tasks = Vec::new();
    for name in ["a", "b", "c"] {
        let q = h.second_handle().await;
        tasks.push(tokio::spawn(async move {
            let mut consumer = q
                .consumer(&PROMPTS, "inference", name, config())
                .await
                .unwrap();
            let mut seen = Vec::new();
            loop {
                let batch = consumer.next().await.unwrap();
                if batch.is_empty() {
                    return seen;
                }
                for r in batch {
                    seen.push(r.message.id.clone());
                    consumer.ack(&[r.id]).await.unwrap();
                }
            }
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let unique: HashSet<_> = all.iter().cloned().collect();
    assert_eq!(all.len(), N, "no entry delivered twice");
    assert_eq!(unique.len(), N, "every entry delivered");
}

async fn bounded_producer_waits_for_the_backlog_to_shrink(h: Harness) {
    let q = h.queue.clone();
    let mut consumer = q
        .consumer(&PROMPTS, "inference", "a", config())
        .await
        .unwrap();
    let producer = q.producer(&PROMPTS);
    producer
        .append_bounded(&job("1"), "inference", 2)
        .await
        .unwrap();
    producer
        .append_bounded(&job("2"), "inference", 2)
        .await
        .unwrap();

    let mut third = tokio::spawn({
        let q = q.clone();
        async move {
            q.producer(&PROMPTS)
                .append_bounded(&job("3"), "inference", 2)
                .await
        }
    });
    // Bounded: it cannot complete while the backlog is full, however long we look.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut third)
            .await
            .is_err(),
        "appended past the bound"
    );
    let first = consumer.next().await.unwrap();
    consumer.ack(&[first[0].id.clone()]).await.unwrap();
    tokio::time::timeout(WAIT, third)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(q.backend().len(&q.key(&PROMPTS)).await.unwrap(), 3);
}

async fn blocked_read_wakes_when_an_entry_arrives(h: Harness) {
    let q = h.queue.clone();
    let cfg = ConsumerConfig {
        block: Duration::from_secs(30),
        ..config()
    };
    let mut consumer = q.consumer(&PROMPTS, "inference", "a", cfg).await.unwrap();
    let reader = tokio::spawn(async move { consumer.next().await.unwrap() });
    let other = h.second_handle().await;
    other.producer(&PROMPTS).append(&job("late")).await.unwrap();
    let received = tokio::time::timeout(WAIT, reader).await.unwrap().unwrap();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].message, job("late"));
}

async fn keep_alive_stops_a_slow_entry_from_being_taken_over(h: Harness) {
    let q = &h.queue;
    let idle = Duration::from_millis(400);
    let cfg = ConsumerConfig {
        reclaim_idle: idle,
        ..config()
    };
    let mut slow = q
        .consumer(&PROMPTS, "inference", "slow", cfg.clone())
        .await
        .unwrap();
    let mut other = q
        .consumer(&PROMPTS, "inference", "other", cfg)
        .await
        .unwrap();
    q.producer(&PROMPTS).append(&job("long")).await.unwrap();
    let taken = slow.next().await.unwrap();
    let ids = [taken[0].id.clone()];
    let until = Instant::now() + idle * 3;
    while Instant::now() < until {
        slow.keep_alive(&ids).await.unwrap();
        assert!(
            other.next().await.unwrap().is_empty(),
            "a kept-alive entry was taken over"
        );
    }
    slow.ack(&ids).await.unwrap();
}

#[tokio::test]
async fn nothing_is_lost_when_redis_restarts_between_produce_and_consume() {
    let mut h = Harness::redis_with(RedisOptions { appendonly: true }).await;
    let q = h.queue.clone();
    let mut consumer = q
        .consumer(&PROMPTS, "inference", "a", config())
        .await
        .unwrap();
    let producer = q.producer(&PROMPTS);
    for i in 0..50 {
        producer.append(&job(&format!("before-{i}"))).await.unwrap();
    }
    // Some are delivered but not acknowledged when Redis dies.
    let in_flight = consumer.next().await.unwrap();
    assert!(!in_flight.is_empty());

    let server = h.redis.as_mut().unwrap();
    server.kill();
    let append_during_outage = tokio::spawn({
        let q = q.clone();
        async move { q.producer(&PROMPTS).append(&job("during")).await }
    });
    server.start_again();
    append_during_outage.await.unwrap().unwrap();

    let cfg = ConsumerConfig {
        reclaim_idle: Duration::ZERO,
        ..config()
    };
    let mut after = q.consumer(&PROMPTS, "inference", "b", cfg).await.unwrap();
    let mut ids: HashSet<String> = HashSet::new();
    let deadline = Instant::now() + WAIT;
    while ids.len() < 51 {
        assert!(
            Instant::now() < deadline,
            "only {} of 51 entries came back",
            ids.len()
        );
        for r in after.next().await.unwrap() {
            ids.insert(r.message.id.clone());
            after.ack(&[r.id]).await.unwrap();
        }
    }
    assert!(ids.contains("during"));
    assert!((0..50).all(|i| ids.contains(&format!("before-{i}"))));
}

#[tokio::test]
async fn redis_that_stays_down_gives_a_clear_error() {
    let mut server = RedisServer::start();
    let mut config = RedisConfig::new(&server.url());
    config.max_outage = Duration::from_millis(500);
    let q = Queue::redis_with(config, "test").await.unwrap();
    server.kill();
    let error = q.producer(&PROMPTS).append(&job("x")).await.unwrap_err();
    assert!(error.to_string().contains("unreachable"), "{error}");
}
