//! Queue throughput with realistic entries: a `Group` of 8 completions × 256
//! tokens with log-probs, pushed through produce → consume → ack.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use prost::Message;
use r1_proto::pb;
use r1_proto::queue::{ConsumerConfig, Queue, ROLLOUTS};
use r1_testkit::RedisServer;

#[derive(Debug, clap::Args)]
pub struct QueueBench {
    /// Entries pushed through each backend.
    #[arg(long, default_value_t = 20_000)]
    entries: usize,
    /// Concurrent producer tasks.
    #[arg(long, default_value_t = 8)]
    producers: usize,
    /// Concurrent consumers in the group.
    #[arg(long, default_value_t = 2)]
    consumers: usize,
    /// An existing Redis to measure; a private redis-server is started when unset.
    #[arg(long, env = "R1_REDIS_URL")]
    redis_url: Option<String>,
}

/// A group as the inference service produces it.
fn realistic_group() -> pb::Group {
    let completions = (0..8u32)
        .map(|c| pb::Completion {
            text: "Let me add the digits one column at a time. ".repeat(20),
            token_ids: (0..256).map(|t| (t * 97 + c * 13) % 49_152).collect(),
            logprobs: (0..256).map(|t| -((t % 17) as f32) * 0.173).collect(),
            finish_reason: pb::FinishReason::Stop.into(),
        })
        .collect();
    pb::Group {
        job: Some(pb::PromptJob {
            id: "bench-job".into(),
            prompt: Some(pb::Prompt {
                kind: Some(pb::prompt::Kind::Text("What is 123 + 456?".into())),
                format: pb::PromptFormat::R1.into(),
            }),
            task: Some(pb::Task {
                kind: Some(pb::task::Kind::Math(pb::MathTask {
                    gold_answer: "579".into(),
                })),
                language: "en".into(),
                reward_profile: String::new(),
            }),
            group_size: 8,
            sampling: Some(pb::SamplingParams {
                temperature: 1.0,
                top_p: 1.0,
                top_k: 0,
                max_new_tokens: 256,
                stop: vec![],
                seed: 1,
            }),
            min_policy_version: 1,
            run_id: "bench".into(),
        }),
        prompt_token_ids: (0..64).collect(),
        completions,
        policy_version: 1,
        sampler_id: "bench".into(),
    }
}

/// Seconds to push `entries` through produce → consume → ack.
async fn measure(queue: &Queue, args: &QueueBench, group: &pb::Group) -> anyhow::Result<Duration> {
    let config = ConsumerConfig {
        batch: 64,
        block: Duration::from_millis(200),
        ..ConsumerConfig::default()
    };
    let mut consumers = Vec::new();
    for i in 0..args.consumers {
        consumers.push(
            queue
                .consumer(&ROLLOUTS, "bench", &format!("consumer-{i}"), config.clone())
                .await?,
        );
    }
    let started = Instant::now();
    let per_producer = args.entries.div_ceil(args.producers);
    let mut producers = Vec::new();
    for p in 0..args.producers {
        let producer = queue.producer(&ROLLOUTS);
        let group = group.clone();
        let count = per_producer.min(args.entries.saturating_sub(p * per_producer));
        producers.push(tokio::spawn(async move {
            for _ in 0..count {
                producer.append(&group).await?;
            }
            anyhow::Ok(())
        }));
    }
    let total = args.entries;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut readers = Vec::new();
    for mut consumer in consumers {
        let done = done.clone();
        readers.push(tokio::spawn(async move {
            while done.load(std::sync::atomic::Ordering::Relaxed) < total {
                let batch = consumer.next().await?;
                if batch.is_empty() {
                    continue;
                }
                let ids: Vec<_> = batch.iter().map(|r| r.id.clone()).collect();
                consumer.ack(&ids).await?;
                done.fetch_add(ids.len(), std::sync::atomic::Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    for task in producers.into_iter().chain(readers) {
        task.await??;
    }
    Ok(started.elapsed())
}

/// redis-benchmark's XADD rate with the same payload and client count.
fn redis_benchmark_xadd(
    port: u16,
    payload: &[u8],
    clients: usize,
    requests: usize,
) -> anyhow::Result<f64> {
    // redis-benchmark takes arguments as text; hex keeps the size comparable.
    let text: String = payload
        .iter()
        .take(payload.len() / 2)
        .map(|b| format!("{b:02x}"))
        .collect();
    let output = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args([
            "-c",
            &clients.to_string(),
            "-n",
            &requests.to_string(),
            "--csv",
        ])
        .args(["XADD", "r1:bench:raw", "*", "v", "1", "d", &text])
        .output()
        .context("running redis-benchmark (apt-get install -y redis-tools)")?;
    if !output.status.success() {
        bail!(
            "redis-benchmark failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    // CSV: "test","rps",... — the last line holds the numbers.
    let line = stdout
        .lines()
        .last()
        .context("redis-benchmark printed nothing")?;
    let rps = line
        .split(',')
        .nth(1)
        .map(|f| f.trim_matches('"'))
        .and_then(|f| f.parse::<f64>().ok())
        .with_context(|| format!("unexpected redis-benchmark output {line:?}"))?;
    Ok(rps)
}

pub async fn run(args: QueueBench) -> anyhow::Result<()> {
    if args.entries == 0 || args.producers == 0 || args.consumers == 0 {
        bail!("--entries, --producers and --consumers must be at least 1");
    }
    let group = realistic_group();
    let bytes = group.encoded_len();
    let (server, url) = match &args.redis_url {
        Some(url) => (None, url.clone()),
        None => {
            let server = tokio::task::spawn_blocking(RedisServer::start).await?;
            let url = server.url();
            (Some(server), url)
        }
    };
    println!(
        "queue benchmark: {} entries, each a Group of 8 completions x 256 tokens ({bytes} bytes encoded); {} producers, {} consumers",
        args.entries, args.producers, args.consumers
    );
    let report = |name: &str, elapsed: Duration| {
        let rate = args.entries as f64 / elapsed.as_secs_f64();
        println!(
            "  {name:<42} {rate:>10.0} entries/s {:>8.1} MB/s",
            rate * bytes as f64 / 1e6
        );
        rate
    };

    let redis = Queue::redis(&url, &format!("bench-{}", std::process::id())).await?;
    let redis_rate = report(
        "redis: produce -> consume -> ack",
        measure(&redis, &args, &group).await?,
    );
    let embedded = Queue::embedded("bench");
    report(
        "embedded: produce -> consume -> ack",
        measure(&embedded, &args, &group).await?,
    );

    if let Some(server) = &server {
        let port = server.port();
        let payload = group.encode_to_vec();
        let producers = args.producers;
        let requests = args.entries;
        let ceiling = tokio::task::spawn_blocking(move || {
            redis_benchmark_xadd(port, &payload, producers, requests)
        })
        .await??;
        println!(
            "  {:<42} {ceiling:>10.0} entries/s {:>8.1} MB/s",
            "redis-benchmark XADD (ceiling)",
            ceiling * bytes as f64 / 1e6
        );
        println!(
            "  r1 reaches {:.0}% of the raw XADD rate",
            100.0 * redis_rate / ceiling
        );
    } else {
        println!("  (redis-benchmark ceiling is measured only against the private redis-server)");
    }
    Ok(())
}
