//! `r1-inference` processes on a private redis-server: replicas share the
//! jobs, follow the policy version, and dead-letter malformed jobs.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use r1_proto::domain::PolicyVersion;
use r1_proto::pb;
use r1_proto::queue::{ConsumerConfig, PROMPTS, Queue, ROLLOUTS};
use r1_testkit::{RedisServer, ServiceProcess};

fn replica(redis: &RedisServer, name: &str, cache: &Path) -> ServiceProcess {
    let url = redis.url();
    let cache = cache.display().to_string();
    ServiceProcess::start(
        Path::new(env!("CARGO_BIN_EXE_r1-inference")),
        &[
            "--redis-url",
            &url,
            "--run-id",
            "inf",
            "--replica-id",
            name,
            "--grpc-addr",
            "127.0.0.1:0",
            "--admin-addr",
            "127.0.0.1:0",
            "--jobs-in-flight",
            "3",
            "--reclaim-idle-ms",
            "1000",
            "--weights-cache",
            &cache,
        ],
        &[("R1_LOG", "warn")],
    )
}

fn job(id: &str, min_version: u64) -> pb::PromptJob {
    pb::PromptJob {
        id: id.into(),
        prompt: Some(pb::Prompt {
            kind: Some(pb::prompt::Kind::Text(format!(
                "User: {id}?\nAssistant: <think>"
            ))),
            format: pb::PromptFormat::Raw.into(),
        }),
        task: Some(pb::Task {
            kind: Some(pb::task::Kind::Math(pb::MathTask {
                gold_answer: "1".into(),
            })),
            ..Default::default()
        }),
        group_size: 3,
        sampling: Some(pb::SamplingParams {
            temperature: 1.0,
            top_p: 1.0,
            max_new_tokens: 12,
            seed: 9,
            ..Default::default()
        }),
        min_policy_version: min_version,
        run_id: "inf".into(),
    }
}

fn version(dir: &Path, number: u64) -> PolicyVersion {
    PolicyVersion {
        number,
        weights_uri: dir.display().to_string(),
        checksum: String::new(),
    }
}

/// Collects `n` groups from the rollouts stream.
async fn groups(queue: &Queue, n: usize) -> Vec<pb::Group> {
    let config = ConsumerConfig {
        block: Duration::from_millis(200),
        ..ConsumerConfig::default()
    };
    let mut reader = queue
        .consumer(&ROLLOUTS, "test", "reader", config)
        .await
        .unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while out.len() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} groups arrived",
            out.len()
        );
        for r in reader.next().await.unwrap() {
            out.push(r.message);
            reader.ack(&[r.id]).await.unwrap();
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_share_jobs_follow_versions_and_dead_letter_malformed_jobs() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (v1, v2) = (dir.path().join("v1"), dir.path().join("v2"));
    r1_learner::preset::init(r1_learner::preset::Preset::Micro, &v1, 1).unwrap();
    r1_learner::preset::init(r1_learner::preset::Preset::Micro, &v2, 2).unwrap();
    let queue = Queue::redis(&redis.url(), "inf").await.unwrap();
    queue.publish_policy(&version(&v1, 1)).await.unwrap();
    let _a = replica(&redis, "a", &dir.path().join("cache-a"));
    let _b = replica(&redis, "b", &dir.path().join("cache-b"));

    let producer = queue.producer(&PROMPTS);
    for i in 0..12 {
        producer.append(&job(&format!("v1-{i}"), 1)).await.unwrap();
    }
    let mut malformed = job("broken", 1);
    malformed.group_size = 0;
    producer.append(&malformed).await.unwrap();
    // A new version while those jobs are in flight, and jobs that need it.
    queue.publish_policy(&version(&v2, 2)).await.unwrap();
    for i in 0..6 {
        producer.append(&job(&format!("v2-{i}"), 2)).await.unwrap();
    }

    let all = groups(&queue, 18).await;
    let mut by_job: HashMap<String, &pb::Group> = HashMap::new();
    for g in &all {
        let id = g.job.as_ref().unwrap().id.clone();
        assert!(
            by_job.insert(id.clone(), g).is_none(),
            "job {id} sampled twice"
        );
        assert_eq!(g.completions.len(), 3);
        for c in &g.completions {
            assert_eq!(c.token_ids.len(), c.logprobs.len());
        }
    }
    assert_eq!(by_job.len(), 18);
    let samplers: std::collections::HashSet<&str> =
        all.iter().map(|g| g.sampler_id.as_str()).collect();
    assert_eq!(samplers.len(), 2, "both replicas sampled: {samplers:?}");
    // Each group was sampled by one version; jobs needing v2 got v2.
    for g in &all {
        let job = g.job.as_ref().unwrap();
        assert!(
            g.policy_version >= job.min_policy_version,
            "{} sampled by v{}",
            job.id,
            g.policy_version
        );
        assert!(g.policy_version == 1 || g.policy_version == 2);
    }
    let letters = queue.dead_letters().await.unwrap();
    assert_eq!(letters.len(), 1);
    assert!(
        letters[0].1.reason.contains("group_size"),
        "{}",
        letters[0].1.reason
    );
    let backlog = queue.producer(&PROMPTS).backlog("inference").await.unwrap();
    assert_eq!(backlog.total(), 0, "every job acknowledged");
}
