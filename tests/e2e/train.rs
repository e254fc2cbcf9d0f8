//! A short version of the default recipe, run by `r1 train`.

use std::process::Command;

const SHORT_RECIPE: &str = r#"
seed = 3
[model]
preset = "micro"
[task.rl]
min_digits = 1
max_digits = 2
[sft]
steps = 6
batch_size = 8
[sft.optim]
micro_batch_size = 8
[grpo]
steps = 4
prompts_per_step = 4
group_size = 4
max_new_tokens = 24
[runtime]
checkpoint_every = 2
jobs_in_flight = 4
[eval]
problems = 8
max_new_tokens = 24
"#;

/// Runs `r1 train` on `recipe`; returns the temporary dir and the run directory.
fn train(recipe: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("short.toml");
    std::fs::write(&config, recipe).unwrap();
    let out = dir.path().join("run");
    let output = Command::new(env!("CARGO_BIN_EXE_r1"))
        .args(["train", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(&out)
        .env("R1_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "r1 train failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    (dir, out)
}

fn metrics(out: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn summary(out: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap()
}

#[test]
fn a_short_recipe_completes_with_a_complete_run_directory() {
    let (_dir, out) = train(SHORT_RECIPE);

    // Models in Hugging Face layout after each stage.
    for stage in ["init", "sft", "final"] {
        for file in [
            "config.json",
            "tokenizer.json",
            "model.safetensors",
            "generation_config.json",
        ] {
            assert!(
                out.join(stage).join(file).is_file(),
                "{stage}/{file} missing"
            );
        }
    }
    // The policy version advanced once per GRPO step.
    for v in 1..=5 {
        assert!(
            out.join("weights")
                .join(format!("v{v}"))
                .join("model.safetensors")
                .is_file(),
            "v{v} missing"
        );
    }
    assert!(out.join("checkpoints/latest").is_file());
    // Metrics of every stage and evaluations before and after each.
    let rows = metrics(&out);
    assert_eq!(rows.iter().filter(|r| r["stage"] == "sft").count(), 6);
    assert_eq!(rows.iter().filter(|r| r["stage"] == "grpo").count(), 4);
    let evals: Vec<&str> = rows
        .iter()
        .filter(|r| r["stage"] == "eval")
        .map(|r| r["model"].as_str().unwrap())
        .collect();
    assert_eq!(evals, vec!["init", "sft", "grpo"]);
    // Every group scored exactly once and trained on once.
    let summary = summary(&out);
    assert_eq!(summary["policy_version"], 5);
    assert_eq!(summary["groups_accepted"], 16);
    assert_eq!(summary["groups_duplicate"], 0);
    assert_eq!(summary["dead_letters"], 0);
    assert_eq!(summary["scored"], summary["rollouts"], "{summary}");
    assert_eq!(summary["rollouts"], summary["jobs_issued"], "{summary}");
    // The report and its charts.
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        report.contains("| sft |") && report.contains("| grpo |"),
        "{report}"
    );
    for chart in ["stages.png", "reward.png", "sft_loss.png"] {
        let bytes = std::fs::read(out.join(chart)).unwrap();
        assert_eq!(&bytes[1..4], b"PNG", "{chart} is not a PNG");
    }
}

#[test]
fn dynamic_sampling_grows_the_batch_while_groups_carry_no_signal_and_trains_each_group_once() {
    // With the random micro model nearly every group is uniform (no answer
    // is right), so later steps get more prompts, up to the cap; the
    // sampler's log-probs are the old policy, two updates per batch.
    let recipe = SHORT_RECIPE.replace(
        "[grpo]\n",
        "[grpo]\nmax_prompts_per_step = 7\nold_policy = \"sampler\"\nupdates_per_batch = 2\n",
    );
    let (_dir, out) = train(&recipe);
    let batches: Vec<(u64, u64)> = metrics(&out)
        .iter()
        .filter(|r| r["stage"] == "grpo")
        .map(|r| {
            let used = r["groups_used"].as_u64().unwrap();
            (used, used + r["groups_dropped_uniform"].as_u64().unwrap())
        })
        .collect();
    assert_eq!(batches.len(), 4);
    // The first two steps are issued before any signal is measured.
    assert_eq!((batches[0].1, batches[1].1), (4, 4), "{batches:?}");
    for (step, (used, size)) in batches.iter().enumerate() {
        assert!((4..=7).contains(size), "step {step}: {batches:?}");
        if step >= 2 && batches[step - 2].0 < batches[step - 2].1 {
            // A step that dropped groups raises the count two steps later.
            assert!(*size > 4, "step {step}: {batches:?}");
        }
        assert!(used <= size);
    }
    let summary = summary(&out);
    let trained: u64 = batches.iter().map(|(_, size)| size).sum();
    assert_eq!(summary["policy_version"], 5);
    assert_eq!(summary["groups_accepted"], trained, "{summary}");
    assert_eq!(summary["jobs_issued"], trained, "{summary}");
    assert_eq!(summary["rollouts"], trained, "{summary}");
    assert_eq!(summary["scored"], trained, "{summary}");
    assert_eq!(summary["groups_duplicate"], 0);
}

#[test]
fn an_invalid_config_is_refused_naming_the_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "[grpo]\ngroup_size = 1\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_r1"))
        .args(["train", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("bad.toml") && stderr.contains("grpo.group_size"),
        "{stderr}"
    );
    std::fs::write(&config, "[grpo]\nstepz = 3\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_r1"))
        .args(["train", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("line 2") && stderr.contains("stepz"),
        "{stderr}"
    );
}

const DATASET_RECIPE: &str = r#"
seed = 1
[model]
preset = "micro"
[sft]
data = "DATA"
steps = 3
batch_size = 3
max_tokens = 64
packing = true
[grpo]
steps = 1
prompts_per_step = 2
group_size = 2
max_new_tokens = 8
[runtime]
jobs_in_flight = 2
[eval]
problems = 4
max_new_tokens = 8
"#;

fn train_on_dataset(dir: &std::path::Path, lines: &[&str]) -> std::process::Output {
    let data = dir.join("data.jsonl");
    std::fs::write(&data, lines.join("\n")).unwrap();
    let config = dir.join("dataset.toml");
    let recipe = DATASET_RECIPE.replace("DATA", &data.display().to_string());
    std::fs::write(&config, recipe).unwrap();
    Command::new(env!("CARGO_BIN_EXE_r1"))
        .args(["train", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(dir.join("run"))
        .env("R1_LOG", "warn")
        .output()
        .unwrap()
}

#[test]
fn the_cold_start_trains_on_a_jsonl_dataset_packed_and_names_a_bad_line() {
    let dir = tempfile::tempdir().unwrap();
    let output = train_on_dataset(
        dir.path(),
        &[
            r#"{"prompt": "1+1=", "response": "2"}"#,
            r#"{"prompt": "what is 3+4? ", "response": "3+4=7"}"#,
            r#"{"messages": [{"role": "user", "content": "2+2"}, {"role": "assistant", "content": "4"}]}"#,
        ],
    );
    assert!(
        output.status.success(),
        "r1 train failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Every step trains on the three examples: their response bytes plus an
    // end-of-sequence token each (2 + 6 + 2), never on generated problems.
    let rows: Vec<serde_json::Value> =
        std::fs::read_to_string(dir.path().join("run/metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    let sft: Vec<u64> = rows
        .iter()
        .filter(|r| r["stage"] == "sft")
        .map(|r| r["tokens"].as_u64().unwrap())
        .collect();
    assert_eq!(sft, vec![10, 10, 10]);

    let bad = tempfile::tempdir().unwrap();
    let output = train_on_dataset(
        bad.path(),
        &[r#"{"prompt": "1+1=", "response": "2"}"#, r#"{"prompt": 3}"#],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("data.jsonl:2") && stderr.contains("\"prompt\""),
        "{stderr}"
    );
}
