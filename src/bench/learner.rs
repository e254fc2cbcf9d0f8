//! Learner throughput: forward + backward tokens/s and optimizer step time
//! at a fixed batch shape, on the tiny model and SmolLM2-135M, beside PyTorch
//! (Transformers' model of the same `config.json`) on the same shapes.

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{Device, Tensor};
use r1_learner::model::Policy;
use r1_learner::model::weights::load_policy;
use r1_learner::preset::Preset;
use r1_learner::train::{OptimConfig, Sequence, Trainer};

use super::reference;
use crate::model_cmd::{SMOLLM2_GGUF, artefact_cache};

#[derive(Debug, clap::Args)]
pub struct LearnerBench {
    /// Sequences per batch.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Tokens per sequence.
    #[arg(long, default_value_t = 128)]
    seq_len: usize,
    /// Timed steps (after one warm-up step).
    #[arg(long, default_value_t = 5)]
    steps: usize,
    /// The second model to measure (default: SmolLM2-135M imported from the
    /// cached GGUF, when scripts/fetch-artefacts has fetched it).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Python with PyTorch and Transformers for the reference (default: the
    /// venv of scripts/torch-venv, created on first use).
    #[arg(long)]
    torch_python: Option<PathBuf>,
    /// Skip the PyTorch reference.
    #[arg(long)]
    no_reference: bool,
}

/// Seconds per forward + backward, per optimizer update (clipping + AdamW)
/// and per full training step.
struct Timing {
    fwd_bwd: f64,
    optimizer: f64,
    step: f64,
}

impl Timing {
    fn print(&self, name: &str, params: f64, tokens: f64) {
        println!(
            "  {name:<30} {:>6.1} M params  fwd+bwd {:>8.0} tokens/s ({:.3} s)  optimizer step {:.3} s  full step {:.3} s",
            params / 1e6,
            tokens / self.fwd_bwd,
            self.fwd_bwd,
            self.optimizer,
            self.step
        );
    }
}

/// The candle learner on `policy`: forward + backward of the per-token
/// log-probs, then full SFT steps (forward, backward, clipping, AdamW).
fn measure(policy: Policy, args: &LearnerBench) -> anyhow::Result<Timing> {
    let vocab = policy.model.config().vocab_size as u32;
    let sequences: Vec<Sequence> = (0..args.batch)
        .map(|b| Sequence {
            tokens: (0..args.seq_len)
                .map(|t| ((b * 31 + t * 7) as u32) % vocab)
                .collect(),
            prompt_len: 1,
        })
        .collect();
    let mut trainer = Trainer::new(
        policy,
        OptimConfig {
            micro_batch_size: args.batch,
            ..OptimConfig::default()
        },
    )?;
    trainer.sft_step(&sequences, 0, 100)?;
    let ids = Tensor::from_vec(
        sequences
            .iter()
            .flat_map(|s| s.tokens.clone())
            .collect::<Vec<_>>(),
        (args.batch, args.seq_len),
        &Device::Cpu,
    )?;
    let started = Instant::now();
    for _ in 0..args.steps {
        let loss = trainer.policy().model.token_logprobs(&ids)?.mean_all()?;
        let _grads = loss.backward()?;
    }
    let fwd_bwd = started.elapsed().as_secs_f64() / args.steps as f64;
    let (mut step, mut optimizer) = (0.0, 0.0);
    for _ in 0..args.steps {
        let stats = trainer.sft_step(&sequences, 0, 100)?;
        step += stats.seconds / args.steps as f64;
        optimizer += stats.optimizer_seconds / args.steps as f64;
    }
    Ok(Timing {
        fwd_bwd,
        optimizer,
        step,
    })
}

/// PyTorch (Transformers' model of the same `config.json`) on the same shapes.
fn measure_torch(python: &Path, model_dir: &Path, args: &LearnerBench) -> anyhow::Result<Timing> {
    let result = reference::run_script(
        python,
        "bench_learner_torch.py",
        [
            model_dir.display().to_string(),
            "--batch".into(),
            args.batch.to_string(),
            "--seq-len".into(),
            args.seq_len.to_string(),
            "--steps".into(),
            args.steps.to_string(),
            "--threads".into(),
            reference::threads()?,
        ],
    )?;
    Ok(Timing {
        fwd_bwd: result.number("fwd_bwd_seconds")?,
        optimizer: result.number("optimizer_seconds")?,
        step: result.number("step_seconds")?,
    })
}

/// Measures one model with candle and, when given a Python, PyTorch.
fn compare(
    name: &str,
    model_dir: &Path,
    torch: Option<&Path>,
    args: &LearnerBench,
) -> anyhow::Result<()> {
    // PyTorch first: this process keeps the memory it frees (see
    // r1_runtime::allocator), which a PyTorch run after ours would lack.
    let theirs = torch
        .map(|python| measure_torch(python, model_dir, args))
        .transpose()?;
    let policy = load_policy(model_dir, &Device::Cpu)?;
    let params = policy.model.config().parameter_count() as f64;
    let tokens = (args.batch * args.seq_len) as f64;
    let ours = measure(policy, args)?;
    ours.print(&format!("{name}, candle"), params, tokens);
    if let Some(theirs) = theirs {
        theirs.print(&format!("{name}, PyTorch"), params, tokens);
        println!(
            "  ratio to PyTorch: fwd+bwd {:.2}x, optimizer step {:.2}x, full step {:.2}x (> 1: candle is faster)",
            theirs.fwd_bwd / ours.fwd_bwd,
            theirs.optimizer / ours.optimizer,
            theirs.step / ours.step
        );
    }
    Ok(())
}

pub fn run(args: LearnerBench) -> anyhow::Result<()> {
    println!(
        "learner benchmark: batch {} x {} tokens, {} timed steps",
        args.batch, args.seq_len, args.steps
    );
    let torch = match (&args.torch_python, args.no_reference) {
        (_, true) => None,
        (Some(python), false) => Some(python.clone()),
        (None, false) => Some(reference::venv_python("torch-venv")?),
    };
    let work = tempfile::tempdir()?;
    let tiny = work.path().join("tiny");
    r1_learner::preset::init(Preset::Tiny, &tiny, 0)?;
    compare("tiny (random init)", &tiny, torch.as_deref(), &args)?;
    let second = match &args.model {
        Some(dir) => Some(dir.clone()),
        None => {
            let gguf = artefact_cache().join(SMOLLM2_GGUF);
            if gguf.is_file() {
                let dir = work.path().join("smollm2");
                r1_learner::import::import_gguf(&gguf, &dir)?;
                Some(dir)
            } else {
                println!(
                    "  SmolLM2-135M: not measured ({} missing; run scripts/fetch-artefacts smollm2)",
                    gguf.display()
                );
                None
            }
        }
    };
    if let Some(dir) = second {
        let name = match &args.model {
            Some(dir) => dir.display().to_string(),
            None => "SmolLM2-135M".into(),
        };
        compare(&name, &dir, torch.as_deref(), &args)?;
    }
    Ok(())
}
