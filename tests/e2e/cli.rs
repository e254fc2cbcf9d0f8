//! `r1 math-check` and `r1 eval` as a user runs them.

use std::io::Write;
use std::process::{Command, Stdio};

fn r1() -> Command {
    Command::new(env!("CARGO_BIN_EXE_r1"))
}

#[test]
fn math_check_annotates_each_line_and_reports_bad_lines() {
    let mut child = r1()
        .arg("math-check")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let input = concat!(
        r#"{"id": 1, "gold": "\\frac{1}{2}", "pred": "The answer is $0.5$."}"#,
        "\n",
        "not json\n",
        r#"{"id": 3, "gold": "12", "pred": "<think>7+5</think><answer>13</answer>"}"#,
        "\n",
        r#"{"id": 4, "pred": "1"}"#,
        "\n"
    );
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["id"], 1);
    assert_eq!(lines[0]["correct"], true);
    assert_eq!(lines[0]["pred_extracted"], "0.5");
    assert_eq!(lines[0]["gold_extracted"], "\\frac{1}{2}");
    assert!(lines[1]["error"].as_str().unwrap().contains("invalid JSON"));
    assert_eq!(lines[1]["line"], 2);
    assert_eq!(lines[2]["correct"], false);
    assert_eq!(lines[2]["pred_extracted"], "13");
    assert!(lines[3]["error"].as_str().unwrap().contains("gold"));
}

#[test]
fn eval_prints_one_json_object_and_is_reproducible_for_a_seed() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("micro");
    r1_learner::preset::init(r1_learner::preset::Preset::Micro, &model, 4).unwrap();
    let run = |seed: &str| {
        let output = r1()
            .args(["eval", "--model"])
            .arg(&model)
            .args([
                "--task",
                "arith",
                "--n",
                "12",
                "--seed",
                seed,
                "--max-new-tokens",
                "16",
            ])
            .env("R1_LOG", "warn")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        json
    };
    let a = run("3");
    for key in ["accuracy", "format_rate", "mean_response_tokens"] {
        assert!(a[key].is_number(), "{key} missing in {a}");
    }
    assert_eq!(a["n"], 12);
    assert_eq!(a, run("3"));
    let bad = r1()
        .args(["eval", "--model"])
        .arg(&model)
        .args(["--task", "chess"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("arith"));
}

fn run_code(request: &str) -> std::process::Output {
    let mut child = r1()
        .arg("run-code")
        .env("R1_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn run_code_answers_one_sandbox_fusion_request() {
    let output = run_code(
        r#"{"code": "const n = parseInt(require('fs').readFileSync(0, 'utf8')); console.log(n * 3)", "language": "javascript", "stdin": "14"}"#,
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let response: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(response["status"], "Success", "{response}");
    assert_eq!(response["run_result"]["stdout"], "42\n");
    assert_eq!(response["run_result"]["return_code"], 0);

    let bad = run_code("{\"code\": \"print(1)\",\n \"language\": 7}");
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("line 2"), "{stderr}");
}
