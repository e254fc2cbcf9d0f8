//! `r1 train`: the R1 recipe on one model — create or load it, cold-start
//! SFT, GRPO with rule-based rewards — with evaluations before and after
//! each stage, a run directory with checkpoints, metrics and a report.

pub mod grpo;
pub mod metrics;
pub mod report;
pub mod sft;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use candle_core::Device;
use indicatif::{ProgressBar, ProgressStyle};
use r1_inference::engine::Engine;
use r1_learner::folder::ModelFiles;
use r1_learner::model::Policy;
use r1_learner::model::weights::load_policy;
use r1_learner::tasks::{ProblemStream, Split};
use r1_learner::tokenizer::TextTokenizer;
use r1_learner::train::Trainer;
use serde_json::json;

use self::metrics::MetricsLog;
use crate::eval::{EvalResult, evaluate};
use r1_learner::run_config::RunConfig;

#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// Run configuration (TOML); the built-in default recipe when unset.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Run directory (default: runs/<timestamp>).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

fn bar(len: u64, stage: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>6} [{bar:30}] {pos}/{len} {elapsed}<{eta} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(stage.to_owned());
    bar
}

async fn eval_model(dir: &Path, config: &RunConfig, version: u64) -> anyhow::Result<EvalResult> {
    let engine = Engine::load(dir, version).await?;
    let problems = ProblemStream::first(
        &config.task.rl,
        config.seed,
        Split::HeldOut,
        config.eval.problems,
    );
    evaluate(
        &engine,
        &problems,
        &config.task.preamble,
        config.eval.max_new_tokens,
    )
    .await
}

pub async fn run(args: TrainArgs) -> anyhow::Result<()> {
    let config = match &args.config {
        Some(path) => RunConfig::load(path)?,
        None => RunConfig::default(),
    };
    let out = args.out.clone().unwrap_or_else(|| {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        PathBuf::from(format!("runs/{stamp}"))
    });
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let started = Instant::now();
    let mut log = MetricsLog::create(&out.join("metrics.jsonl"))?;
    println!("r1 train: run directory {}", out.display());

    // 1. The starting model.
    let init_dir = out.join("init");
    let device = Device::Cpu;
    let (policy, files, model_dir): (Policy, ModelFiles, PathBuf) =
        match (config.model.preset(), &config.model.path) {
            (Some(preset), _) => {
                let policy = r1_learner::preset::init(preset, &init_dir, config.seed)?;
                (policy, preset.files(), init_dir.clone())
            }
            (None, Some(path)) => (
                load_policy(path, &device)?,
                ModelFiles::read(path)?,
                path.clone(),
            ),
            (None, None) => unreachable!("a preset is chosen when no path is set"),
        };
    let tokenizer = TextTokenizer::load(&model_dir)?;
    println!(
        "model: {} parameters, vocabulary {}",
        files.config.parameter_count(),
        files.config.vocab_size
    );
    let before = eval_model(&model_dir, &config, 0).await?;
    record_eval(&mut log, "init", &before)?;

    // 2. Cold start.
    let sft_dir = out.join("sft");
    let policy = if config.model.skip_sft {
        files.write(&sft_dir, &policy)?;
        policy
    } else {
        let mut trainer = Trainer::new(policy, config.sft.optim.clone())?;
        let progress = bar(config.sft.steps, "sft");
        let (trainer, log_back) = tokio::task::spawn_blocking({
            let config = config.clone();
            move || -> anyhow::Result<(Trainer, MetricsLog)> {
                sft::run(&mut trainer, &tokenizer, &config, &mut log, &progress)?;
                progress.finish();
                Ok((trainer, log))
            }
        })
        .await??;
        log = log_back;
        files.write(&sft_dir, trainer.policy())?;
        trainer.into_policy()
    };
    let after_sft = eval_model(&sft_dir, &config, 1).await?;
    record_eval(&mut log, "sft", &after_sft)?;

    // 3. GRPO.
    let final_dir = out.join("final");
    let trainer = Trainer::new(policy, config.grpo.optim.clone())?;
    let progress = bar(config.grpo.steps, "grpo");
    let queue = r1_proto::queue::Queue::embedded("train");
    let (trainer, summary) =
        grpo::run(trainer, &files, &config, &out, queue, &mut log, &progress).await?;
    progress.finish();
    std::fs::write(
        out.join("summary.json"),
        serde_json::to_vec_pretty(&summary)?,
    )?;
    files.write(&final_dir, trainer.policy())?;
    let after_grpo = eval_model(&final_dir, &config, config.grpo.steps + 1).await?;
    record_eval(&mut log, "grpo", &after_grpo)?;
    let config_text = match &args.config {
        Some(path) => std::fs::read_to_string(path).unwrap_or_default(),
        None => "# built-in defaults (r1 train without --config)".into(),
    };
    report::write(
        &out,
        log.rows(),
        started.elapsed().as_secs_f64(),
        &config_text,
    )?;
    println!(
        "done in {:.0} s: accuracy {:.1}% (init) → {:.1}% (sft) → {:.1}% (grpo); final model in {}",
        started.elapsed().as_secs_f64(),
        before.accuracy * 100.0,
        after_sft.accuracy * 100.0,
        after_grpo.accuracy * 100.0,
        final_dir.display()
    );
    Ok(())
}

fn record_eval(log: &mut MetricsLog, model: &str, result: &EvalResult) -> anyhow::Result<()> {
    log.write(json!({
        "stage": "eval", "model": model, "accuracy": result.accuracy, "format_rate": result.format_rate,
        "mean_response_tokens": result.mean_response_tokens, "n": result.n,
    }))?;
    println!(
        "eval {model}: accuracy {:.1}%, format {:.1}%, {:.1} tokens per answer",
        result.accuracy * 100.0,
        result.format_rate * 100.0,
        result.mean_response_tokens
    );
    Ok(())
}
