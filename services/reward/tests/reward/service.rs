//! The `r1-reward` binary as a real process: gRPC, HTTP, admin, queue worker.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use r1_proto::pb;
use r1_proto::pb::reward_client::RewardClient;
use r1_proto::queue::{ConsumerConfig, Queue, ROLLOUTS, SCORED};
use r1_testkit::{RedisServer, ServiceProcess, http_request};
use tonic::Code;

fn start(extra: &[&str]) -> ServiceProcess {
    let mut args = vec![
        "--grpc-addr",
        "127.0.0.1:0",
        "--http-addr",
        "127.0.0.1:0",
        "--admin-addr",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    ServiceProcess::start(
        Path::new(env!("CARGO_BIN_EXE_r1-reward")),
        &args,
        &[("R1_LOG", "warn")],
    )
}

pub async fn client(service: &ServiceProcess) -> RewardClient<tonic::transport::Channel> {
    RewardClient::connect(format!("http://{}", service.ready_field("grpc")))
        .await
        .unwrap()
}

fn math_task(gold: &str) -> pb::Task {
    pb::Task {
        kind: Some(pb::task::Kind::Math(pb::MathTask {
            gold_answer: gold.into(),
        })),
        language: "en".into(),
        reward_profile: String::new(),
    }
}

pub async fn http(
    service: &ServiceProcess,
    port: &str,
    method: &'static str,
    path: &'static str,
    body: Option<String>,
) -> (u16, String) {
    let addr: SocketAddr = service.ready_field(port).parse().unwrap();
    tokio::task::spawn_blocking(move || http_request(addr, method, path, body.as_deref()).unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn grpc_checks_math_and_scores_completions() {
    let service = start(&[]);
    let mut client = client(&service).await;

    let verdict = client
        .check_math(pb::CheckMathRequest {
            gold: "\\frac{1}{2}".into(),
            pred: "so the answer is $\\boxed{0.5}$".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(verdict.correct && verdict.decided);
    assert_eq!(verdict.pred_extracted, "0.5");

    let wrong = client
        .check_math(pb::CheckMathRequest {
            gold: "3".into(),
            pred: "\\boxed{4}".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!wrong.correct);

    let score = client
        .score(pb::ScoreRequest {
            task: Some(math_task("12")),
            completion: "<think>Seven plus five is twelve.</think><answer>12</answer>".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .score
        .unwrap();
    let components: Vec<(String, f64)> = score
        .components
        .iter()
        .map(|c| (c.name.clone(), c.value))
        .collect();
    assert_eq!(
        components,
        vec![
            ("accuracy".into(), 1.0),
            ("format".into(), 1.0),
            ("language".into(), 1.0)
        ]
    );
    assert!((score.total - 1.2).abs() < 1e-9);
}

#[tokio::test]
async fn grpc_rejects_invalid_requests_naming_the_field() {
    let service = start(&["--code-sandbox", "off"]);
    let mut client = client(&service).await;

    let status = client
        .score(pb::ScoreRequest {
            task: Some(pb::Task {
                kind: Some(pb::task::Kind::Math(pb::MathTask {
                    gold_answer: String::new(),
                })),
                ..Default::default()
            }),
            completion: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("task.math.gold_answer"),
        "{}",
        status.message()
    );

    let status = client
        .score(pb::ScoreRequest {
            task: None,
            completion: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("`task`"), "{}", status.message());

    let mut group = pb::Group {
        job: None,
        ..Default::default()
    };
    let status = client
        .score_group(pb::ScoreGroupRequest {
            group: Some(group.clone()),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("group.job"),
        "{}",
        status.message()
    );
    group.sampler_id = "x".into();

    let status = client
        .check_math(pb::CheckMathRequest {
            gold: " ".into(),
            pred: "1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("gold"));

    let status = client
        .run_code(pb::RunCodeRequest {
            language: "python".into(),
            code: "print(1)".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status.message().contains("scripts/fetch-artefacts wasm"),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn http_api_scores_and_reports_bad_json_clearly() {
    let service = start(&[]);
    let (status, body) = http(
        &service,
        "http",
        "POST",
        "/v1/check_math",
        Some(r#"{"gold": "1,000", "pred": "The answer is 1000."}"#.into()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["correct"], true);

    let (status, body) = http(
        &service,
        "http",
        "POST",
        "/v1/score",
        Some(r#"{"task": {"math": {"gold_answer": "7"}}, "completion": "<think>3+4</think><answer>7</answer>"}"#.into()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["score"]["components"][0]["name"], "accuracy");
    assert_eq!(json["score"]["components"][0]["value"], 1.0);

    let (status, body) = http(
        &service,
        "http",
        "POST",
        "/v1/check_math",
        Some("{not json".into()),
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("error"), "{body}");

    let (status, body) = http(
        &service,
        "http",
        "POST",
        "/v1/check_math",
        Some(r#"{"pred": "1"}"#.into()),
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("gold"), "{body}");

    let (status, body) = http(
        &service,
        "http",
        "POST",
        "/v1/score",
        Some(r#"{"task": {"math": {"gold_answer": "7"}, "reward_profile": "nope"}, "completion": "7"}"#.into()),
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("nope"), "{body}");

    let (status, body) = http(&service, "admin", "GET", "/metrics", None).await;
    assert_eq!(status, 200);
    assert!(
        body.contains("r1_reward_checks_total{check=\"math\",outcome=\"correct\"}"),
        "{body}"
    );
    assert!(body.contains("r1_reward_check_duration_seconds"), "{body}");
    assert!(body.contains("r1_reward_rejected_requests_total"), "{body}");
    assert_eq!(http(&service, "admin", "GET", "/ready", None).await.0, 200);
}

fn group(id: &str, gold: &str, answers: &[&str]) -> pb::Group {
    pb::Group {
        job: Some(pb::PromptJob {
            id: id.into(),
            prompt: Some(pb::Prompt {
                kind: Some(pb::prompt::Kind::Text("What is 3 + 4?".into())),
                format: pb::PromptFormat::R1.into(),
            }),
            task: Some(math_task(gold)),
            group_size: answers.len() as u32,
            sampling: Some(pb::SamplingParams {
                temperature: 1.0,
                max_new_tokens: 32,
                ..Default::default()
            }),
            min_policy_version: 0,
            run_id: "t".into(),
        }),
        prompt_token_ids: vec![1, 2],
        completions: answers
            .iter()
            .map(|a| pb::Completion {
                text: format!("<think>adding</think><answer>{a}</answer>"),
                token_ids: vec![3],
                logprobs: vec![-0.1],
                finish_reason: pb::FinishReason::Stop.into(),
            })
            .collect(),
        policy_version: 1,
        sampler_id: "inference-0".into(),
    }
}

#[tokio::test]
async fn queue_worker_scores_rollouts_and_dead_letters_invalid_groups() {
    let redis = RedisServer::start();
    let url = redis.url();
    let _service = start(&[
        "--redis-url",
        &url,
        "--run-id",
        "t",
        "--replica-id",
        "reward-a",
    ]);
    let queue = Queue::redis(&url, "t").await.unwrap();
    let producer = queue.producer(&ROLLOUTS);
    producer
        .append(&group("g1", "7", &["7", "8", "7.0"]))
        .await
        .unwrap();
    let mut broken = group("g2", "7", &["7"]);
    broken.completions.clear();
    producer.append(&broken).await.unwrap();

    let config = ConsumerConfig {
        block: Duration::from_millis(200),
        ..ConsumerConfig::default()
    };
    let mut learner = queue
        .consumer(&SCORED, "learner", "l", config)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let scored = loop {
        let batch = learner.next().await.unwrap();
        if let Some(first) = batch.into_iter().next() {
            break first.message;
        }
        assert!(Instant::now() < deadline, "no scored group arrived");
    };
    assert_eq!(scored.scorer_id, "reward-a");
    assert_eq!(scored.group.unwrap().job.unwrap().id, "g1");
    let accuracy: Vec<f64> = scored
        .scores
        .iter()
        .map(|s| s.components[0].value)
        .collect();
    assert_eq!(accuracy, vec![1.0, 0.0, 1.0]);

    let letters = loop {
        let letters = queue.dead_letters().await.unwrap();
        if !letters.is_empty() {
            break letters;
        }
        assert!(
            Instant::now() < deadline,
            "the invalid group was not dead-lettered"
        );
        tokio::task::yield_now().await;
    };
    assert!(
        letters[0].1.reason.contains("completions"),
        "{}",
        letters[0].1.reason
    );
    let backlog = queue.producer(&ROLLOUTS).backlog("reward").await.unwrap();
    assert_eq!(backlog.total(), 0, "every rollout was acknowledged");
}
