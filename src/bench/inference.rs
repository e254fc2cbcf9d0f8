//! Sampling throughput: generated tokens/s for GRPO groups (G completions of
//! one prompt, sampled concurrently so mistral.rs batches them) on the tiny
//! model and on SmolLM2-135M as f32 safetensors and as the original Q4_1
//! GGUF, and the time to load a policy version. Beside them, measured in the
//! same run, llama.cpp (`llama-cpp-python`, scripts/bench_llama_cpp.py) on the
//! same GGUF and prompts.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::Context;
use r1_inference::engine::{Engine, GenerateParams};
use r1_learner::preset::Preset;

use crate::model_cmd::{SMOLLM2_GGUF, artefact_cache, cache_dir};

#[derive(Debug, clap::Args)]
pub struct InferenceBench {
    /// Completions per group (G).
    #[arg(long, default_value_t = 8)]
    group_size: usize,
    /// New tokens per completion.
    #[arg(long, default_value_t = 128)]
    new_tokens: usize,
    /// Timed groups per model (after one warm-up group).
    #[arg(long, default_value_t = 3)]
    groups: usize,
    /// Python with llama-cpp-python installed (default: the venv made by
    /// scripts/llama-cpp-venv, when present).
    #[arg(long)]
    llama_cpp_python: Option<PathBuf>,
    /// Measure the tiny model only.
    #[arg(long)]
    tiny_only: bool,
}

/// The prompts of the timed groups, the same for every engine.
const PROMPTS: &[&str] = &[
    "Question: Tom has 12 apples and gives 5 to Ann. How many apples does Tom have left?\nAnswer: Let's think step by step.",
    "Question: What is 17 times 23?\nAnswer: Let's think step by step.",
    "Question: A train travels 60 km in 45 minutes. What is its speed in km per hour?\nAnswer: Let's think step by step.",
    "Question: Write the first ten prime numbers and add them up.\nAnswer: Let's think step by step.",
];

struct Measured {
    load_seconds: f64,
    tokens: usize,
    seconds: f64,
}

impl Measured {
    fn tokens_per_second(&self) -> f64 {
        self.tokens as f64 / self.seconds
    }
}

async fn measure(
    engine_load: impl AsyncFnOnce() -> anyhow::Result<Engine>,
    args: &InferenceBench,
) -> anyhow::Result<Measured> {
    let started = Instant::now();
    let engine = engine_load().await?;
    let load_seconds = started.elapsed().as_secs_f64();
    let params = GenerateParams {
        temperature: 1.0,
        top_p: 1.0,
        top_k: None,
        max_new_tokens: args.new_tokens,
        stop: Vec::new(),
        seed: 7,
    };
    let prompt = |i: usize| engine.tokenizer().encode(PROMPTS[i % PROMPTS.len()]);
    engine
        .generate(&prompt(0)?, args.group_size, &params)
        .await?;
    let started = Instant::now();
    let mut tokens = 0;
    for i in 0..args.groups {
        let group = engine
            .generate(&prompt(i)?, args.group_size, &params)
            .await?;
        tokens += group.iter().map(|c| c.token_ids.len()).sum::<usize>();
    }
    Ok(Measured {
        load_seconds,
        tokens,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn print(name: &str, m: &Measured) {
    println!(
        "{name:<28} {:>9.1} tokens/s  ({} tokens in {:.2} s; load {:.2} s)",
        m.tokens_per_second(),
        m.tokens,
        m.seconds,
        m.load_seconds
    );
}

/// llama.cpp on the same GGUF and prompts.
fn llama_cpp(python: &Path, gguf: &Path, args: &InferenceBench) -> anyhow::Result<Measured> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/bench_llama_cpp.py");
    let output = Command::new(python)
        .arg(&script)
        .arg(gguf)
        .args(["--group-size", &args.group_size.to_string()])
        .args(["--new-tokens", &args.new_tokens.to_string()])
        .args(["--groups", &args.groups.to_string()])
        .args([
            "--threads",
            &std::thread::available_parallelism()?.get().to_string(),
        ])
        .args(PROMPTS)
        .output()
        .with_context(|| format!("running {}", python.display()))?;
    anyhow::ensure!(
        output.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let result: serde_json::Value = serde_json::from_slice(&output.stdout).with_context(|| {
        format!(
            "{} printed {:?}",
            script.display(),
            String::from_utf8_lossy(&output.stdout)
        )
    })?;
    let number = |key: &str| {
        result[key]
            .as_f64()
            .with_context(|| format!("{} printed no {key}", script.display()))
    };
    Ok(Measured {
        load_seconds: number("load_seconds")?,
        tokens: number("tokens")? as usize,
        seconds: number("seconds")?,
    })
}

pub async fn run(args: InferenceBench) -> anyhow::Result<()> {
    println!(
        "groups of G = {}, {} new tokens, temperature 1, {} timed groups per engine",
        args.group_size, args.new_tokens, args.groups
    );
    let work = tempfile::tempdir()?;
    let tiny = work.path().join("tiny");
    r1_learner::preset::init(Preset::Tiny, &tiny, 0)?;
    let m = measure(async || Ok(Engine::load(&tiny, 1).await?), &args).await?;
    print("tiny (3 M) f32", &m);
    if args.tiny_only {
        return Ok(());
    }

    let gguf = artefact_cache().join(SMOLLM2_GGUF);
    anyhow::ensure!(
        gguf.is_file(),
        "{} is missing: run scripts/fetch-artefacts smollm2",
        gguf.display()
    );
    let smollm2 = work.path().join("smollm2");
    r1_learner::import::import_gguf(&gguf, &smollm2)?;
    let f32 = measure(async || Ok(Engine::load(&smollm2, 1).await?), &args).await?;
    print("SmolLM2-135M f32", &f32);
    let q4 = measure(
        async || Ok(Engine::load_gguf(&gguf, &smollm2, 1).await?),
        &args,
    )
    .await?;
    print("SmolLM2-135M Q4_1 GGUF", &q4);

    let python = args
        .llama_cpp_python
        .clone()
        .unwrap_or_else(|| cache_dir().join("venvs/llama-cpp/bin/python"));
    if python.is_file() {
        let reference = llama_cpp(&python, &gguf, &args)?;
        print("llama.cpp Q4_1 GGUF", &reference);
        let reference = reference.tokens_per_second();
        println!(
            "ratio to llama.cpp: f32 {:.2}x, Q4_1 {:.2}x",
            f32.tokens_per_second() / reference,
            q4.tokens_per_second() / reference
        );
    } else {
        println!(
            "llama.cpp: not measured ({} missing; run scripts/llama-cpp-venv)",
            python.display()
        );
    }
    Ok(())
}
