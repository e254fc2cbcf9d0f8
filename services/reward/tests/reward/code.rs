//! Code over the real service: gRPC `RunCode`, code tasks in `Score`,
//! SandboxFusion's `/run_code` and `/v1/run_tests`, and hostile programs that
//! must leave the service healthy.

use r1_proto::pb;
use r1_testkit::ServiceProcess;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use tonic::Code;

use crate::service::{client, http};

fn cache_dir() -> PathBuf {
    std::env::var_os("R1_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.r1-cache"))
}

fn start() -> ServiceProcess {
    let cache = cache_dir();
    ServiceProcess::start(
        Path::new(env!("CARGO_BIN_EXE_r1-reward")),
        &[
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
            "--admin-addr",
            "127.0.0.1:0",
            "--code-sandbox",
            "required",
            "--cache-dir",
            cache.to_str().unwrap(),
        ],
        &[("R1_LOG", "warn")],
    )
}

fn run_request(language: &str, code: &str, stdin: &str, time_limit_ms: u64) -> pb::RunCodeRequest {
    pb::RunCodeRequest {
        language: language.into(),
        code: code.into(),
        stdin: stdin.into(),
        time_limit_ms,
        memory_limit_bytes: 0,
        fuel: 0,
    }
}

async fn post(service: &ServiceProcess, path: &'static str, body: Value) -> (u16, Value) {
    let (status, text) = http(service, "http", "POST", path, Some(body.to_string())).await;
    let json =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} answered {text:?}: {e}"));
    (status, json)
}

#[tokio::test]
async fn grpc_run_code_reports_each_outcome_and_refuses_bad_requests() {
    let service = start();
    let mut client = client(&service).await;
    let ok = client
        .run_code(run_request("python", "print(int(input()) * 2)", "21\n", 0))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ok.status(), pb::RunStatus::Finished);
    assert_eq!((ok.exit_code, ok.stdout.as_str()), (0, "42\n"));
    assert!(ok.fuel_used > 0 && ok.peak_memory_bytes > 0);

    let looped = client
        .run_code(run_request("javascript", "for (;;) {}", "", 500))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(looped.status(), pb::RunStatus::TimeLimitExceeded);
    assert_eq!(looped.exit_code, -1);

    let mut bomb = run_request("python", "x = bytearray(1 << 30)", "", 0);
    bomb.memory_limit_bytes = 64 << 20;
    let bomb = client.run_code(bomb).await.unwrap().into_inner();
    assert_eq!(bomb.status(), pb::RunStatus::MemoryLimitExceeded);

    let err = client
        .run_code(run_request("cobol", "DISPLAY 1", "", 0))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("language"), "{}", err.message());
    let mut tiny = run_request("python", "print(1)", "", 0);
    tiny.memory_limit_bytes = 1024;
    let err = client.run_code(tiny).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("memory_bytes"), "{}", err.message());

    let (status, metrics) = http(&service, "admin", "GET", "/metrics", None).await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains(r#"r1_reward_sandbox_runs_total{language="python",status="finished"}"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn grpc_scores_a_code_task_by_running_the_completions_program() {
    let service = start();
    let mut client = client(&service).await;
    let task = pb::Task {
        kind: Some(pb::task::Kind::Code(pb::CodeTask {
            language: "python".into(),
            tests: vec![
                pb::CodeTest {
                    input: "1 2\n".into(),
                    expected_output: "3\n".into(),
                },
                pb::CodeTest {
                    input: "5 7\n".into(),
                    expected_output: "12\n".into(),
                },
            ],
            ..Default::default()
        })),
        language: String::new(),
        reward_profile: String::new(),
    };
    let completion = "<think>Read two numbers and add them.</think><answer>\n```python\na, b = map(int, input().split())\nprint(a + b)\n```\n</answer>";
    let score = client
        .score(pb::ScoreRequest {
            task: Some(task.clone()),
            completion: completion.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .score
        .unwrap();
    let accuracy = score
        .components
        .iter()
        .find(|c| c.name == "accuracy")
        .unwrap();
    assert_eq!(accuracy.value, 1.0, "{}", score.detail);
    assert!(
        score.detail.contains("2/2 tests passed"),
        "{}",
        score.detail
    );

    let wrong = completion.replace("a + b", "a * b");
    let score = client
        .score(pb::ScoreRequest {
            task: Some(task),
            completion: wrong,
        })
        .await
        .unwrap()
        .into_inner()
        .score
        .unwrap();
    assert_eq!(score.components[0].value, 0.0, "{}", score.detail);
    assert!(
        score.detail.contains("test 1 failed: wrong answer"),
        "{}",
        score.detail
    );
}

#[tokio::test]
async fn http_run_code_speaks_sandbox_fusion() {
    let service = start();
    let (status, body) = post(
        &service,
        "/run_code",
        json!({"code": "import sys\nprint(sys.stdin.read().upper())", "language": "python", "stdin": "hi", "run_timeout": 5, "compile_timeout": 5, "memory_limit_MB": 256}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "Success");
    assert_eq!(body["run_result"]["status"], "Finished");
    assert_eq!(body["run_result"]["return_code"], 0);
    assert_eq!(body["run_result"]["stdout"], "HI\n");
    assert!(body["run_result"]["execution_time"].as_f64().unwrap() > 0.0);

    let (_, failed) = post(
        &service,
        "/run_code",
        json!({"code": "import sys\nsys.exit(2)", "language": "python"}),
    )
    .await;
    assert_eq!(failed["status"], "Failed");
    assert_eq!(failed["run_result"]["return_code"], 2);
    let (_, slept) = post(
        &service,
        "/run_code",
        json!({"code": "import time\ntime.sleep(1000)", "language": "python", "run_timeout": 1}),
    )
    .await;
    assert_eq!(slept["run_result"]["status"], "TimeLimitExceeded");

    let (status, body) = post(
        &service,
        "/run_code",
        json!({"code": "1", "language": "rust"}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains("language"),
        "{body}"
    );
    let (status, text) = http(
        &service,
        "http",
        "POST",
        "/run_code",
        Some("{\"code\": ".into()),
    )
    .await;
    assert_eq!(status, 400, "{text}");
}

#[tokio::test]
async fn http_run_tests_takes_apps_and_livecodebench_tests() {
    let service = start();
    let (status, body) = post(
        &service,
        "/v1/run_tests",
        json!({
            "language": "python",
            "program": "n = int(input())\nprint(n * n if n < 10 else 0)",
            "tests": {"inputs": ["3\n", "12\n"], "outputs": ["9\n", "144\n"]}
        }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["reward"], 0.5);
    assert_eq!(body["results"][1]["passed"], false);
    assert_eq!(body["results"][1]["stdout"], "0\n");

    let (_, body) = post(
        &service,
        "/v1/run_tests",
        json!({
            "language": "python",
            "completion": "Here:\n```python\nclass Solution:\n    def twoSum(self, nums, target):\n        seen = {}\n        for i, n in enumerate(nums):\n            if target - n in seen:\n                return [seen[target - n], i]\n            seen[n] = i\n```",
            "fn_name": "twoSum",
            "tests": [
                {"input": "[2, 7, 11, 15]\n9", "output": "[0, 1]", "testtype": "functional"},
                {"input": "[3, 2, 4]\n6", "output": "[1, 2]", "testtype": "functional"}
            ]
        }),
    )
    .await;
    assert_eq!(body["reward"], 1.0, "{body}");

    let (_, body) = post(
        &service,
        "/v1/run_tests",
        json!({
            "language": "javascript",
            "program": "function add(a, b) { return a + b; }",
            "tests": {"inputs": [[1, 2], [2, 2], [5, 5]], "outputs": [[3], [5], [10]], "fn_name": "add"},
            "all_or_nothing": true
        }),
    )
    .await;
    assert_eq!(body["reward"], 0.0, "{body}");
    assert_eq!(body["considered"], 3);
    assert_eq!(
        body["results"].as_array().unwrap().len(),
        2,
        "stops at the first failure"
    );

    let (status, body) = post(
        &service,
        "/v1/run_tests",
        json!({"language": "python", "program": "print(1)", "tests": {"inputs": ["1"], "outputs": []}}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("1 inputs but 0 outputs"),
        "{body}"
    );
}

#[tokio::test]
async fn hostile_programs_leave_the_service_healthy() {
    let service = start();
    let client = client(&service).await;
    let attacks = [
        ("python", "while True:\n    pass"),
        ("python", "import time\ntime.sleep(1000)"),
        (
            "python",
            "blocks = []\nwhile True:\n    blocks.append(' ' * 10**6)",
        ),
        ("python", "while True:\n    print('x' * 10000)"),
        ("python", "import os\nos.fork()"),
        ("javascript", "for (;;) {}"),
        ("python", "def f():\n    f()\nf()"),
        ("python", "\u{0}\u{1}garbage\u{ff}"),
    ];
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..16 {
        let (language, code) = attacks[i % attacks.len()];
        let mut client = client.clone();
        calls.spawn(async move {
            client
                .run_code(run_request(language, code, "", 1500))
                .await
                .map(|r| r.into_inner().status())
        });
    }
    while let Some(result) = calls.join_next().await {
        let status = result.unwrap().unwrap();
        assert_ne!(status, pb::RunStatus::Unspecified);
    }
    let mut client = client.clone();
    let ok = client
        .run_code(run_request("python", "print('still here')", "", 0))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ok.stdout, "still here\n");
    let (status, _) = http(&service, "admin", "GET", "/ready", None).await;
    assert_eq!(status, 200);
}

#[test]
fn a_required_sandbox_without_interpreters_stops_start_up_naming_the_fix() {
    let empty = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_r1-reward"))
        .args([
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
            "--admin-addr",
            "127.0.0.1:0",
        ])
        .args(["--code-sandbox", "required", "--cache-dir"])
        .arg(empty.path())
        .env("R1_LOG", "error")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("scripts/fetch-artefacts wasm"), "{stderr}");
    assert!(output.stdout.is_empty(), "it never reported ready");
}
