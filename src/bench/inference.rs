//! Sampling throughput: generated tokens/s for GRPO groups (G completions of
//! one prompt, sampled concurrently so mistral.rs batches them) on the tiny
//! model and on SmolLM2-135M as f32 safetensors and as the original Q4_1
//! GGUF, and the time to load a policy version. Beside them, measured in the
//! same run, llama.cpp (`llama-cpp-python`, scripts/bench_llama_cpp.py) on the
//! same GGUF and prompts.

use std::path::{Path, PathBuf};
use std::time::Instant;

use r1_inference::engine::{Engine, GenerateParams};
use r1_learner::preset::Preset;

use crate::model_cmd::{SMOLLM2_GGUF, artefact_cache, cache_dir};

use super::reference;

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
    /// Which engines to measure (llama.cpp runs when `gguf` is among them).
    #[arg(long, value_delimiter = ',', default_value = "tiny,f32,gguf")]
    engines: Vec<EngineKind>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum EngineKind {
    /// The tiny preset, f32.
    Tiny,
    /// SmolLM2-135M imported to f32 safetensors.
    F32,
    /// SmolLM2-135M from the original Q4_1 GGUF.
    Gguf,
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
    let mut script_args = vec![
        gguf.display().to_string(),
        "--group-size".into(),
        args.group_size.to_string(),
        "--new-tokens".into(),
        args.new_tokens.to_string(),
        "--groups".into(),
        args.groups.to_string(),
        "--threads".into(),
        reference::threads()?,
    ];
    script_args.extend(PROMPTS.iter().map(|p| p.to_string()));
    let result = reference::run_script(python, "bench_llama_cpp.py", &script_args)?;
    Ok(Measured {
        load_seconds: result.number("load_seconds")?,
        tokens: result.number("tokens")? as usize,
        seconds: result.number("seconds")?,
    })
}

pub async fn run(args: InferenceBench) -> anyhow::Result<()> {
    println!(
        "groups of G = {}, {} new tokens, temperature 1, {} timed groups per engine",
        args.group_size, args.new_tokens, args.groups
    );
    let work = tempfile::tempdir()?;
    if args.engines.contains(&EngineKind::Tiny) {
        let tiny = work.path().join("tiny");
        r1_learner::preset::init(Preset::Tiny, &tiny, 0)?;
        let m = measure(async || Ok(Engine::load(&tiny, 1).await?), &args).await?;
        print("tiny (3 M) f32", &m);
    }
    let smollm2_engines = [EngineKind::F32, EngineKind::Gguf];
    if !args.engines.iter().any(|e| smollm2_engines.contains(e)) {
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
    let mut f32 = None;
    if args.engines.contains(&EngineKind::F32) {
        let m = measure(async || Ok(Engine::load(&smollm2, 1).await?), &args).await?;
        print("SmolLM2-135M f32", &m);
        f32 = Some(m.tokens_per_second());
    }
    if !args.engines.contains(&EngineKind::Gguf) {
        return Ok(());
    }
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
        if let Some(f32) = f32 {
            println!("ratio to llama.cpp, f32: {:.2}x", f32 / reference);
        }
        println!(
            "ratio to llama.cpp, Q4_1: {:.2}x",
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
