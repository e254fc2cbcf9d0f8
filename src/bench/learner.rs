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
    /// Timed steps per round, of each kind (forward + backward, full step).
    #[arg(long, default_value_t = 2)]
    steps: usize,
    /// Rounds, candle's and PyTorch's taken in turn; figures are their
    /// medians.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
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
/// and per full training step, averaged over one round's steps.
#[derive(Debug, Clone, Copy)]
struct Timing {
    fwd_bwd: f64,
    optimizer: f64,
    step: f64,
}

/// The median of `values` (not empty) and their range.
fn median_and_range(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let median = if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    };
    (median, values[0], values[n - 1])
}

/// One framework's rounds.
struct Rounds(Vec<Timing>);

impl Rounds {
    fn each(&self, field: impl Fn(&Timing) -> f64) -> (f64, f64, f64) {
        median_and_range(self.0.iter().map(field).collect())
    }

    fn print(&self, name: &str, params: f64, tokens: f64) {
        let (fwd_bwd, fastest, slowest) = self.each(|t| t.fwd_bwd);
        let (optimizer, ..) = self.each(|t| t.optimizer);
        let (step, step_min, step_max) = self.each(|t| t.step);
        println!(
            "  {name:<30} {:>6.1} M params  fwd+bwd {:>8.0} tokens/s ({fwd_bwd:.3} s, {fastest:.3}-{slowest:.3})  \
             optimizer step {optimizer:.3} s  full step {step:.3} s ({step_min:.3}-{step_max:.3})",
            params / 1e6,
            tokens / fwd_bwd,
        );
    }

    /// Per round, `theirs / ours` of one figure: its median and range.
    fn ratio(&self, ours: &Rounds, field: impl Fn(&Timing) -> f64) -> String {
        let (median, low, high) = median_and_range(
            self.0
                .iter()
                .zip(&ours.0)
                .map(|(theirs, ours)| field(theirs) / field(ours))
                .collect(),
        );
        format!("{median:.2}x ({low:.2}-{high:.2})")
    }
}

/// The candle learner on one model: forward + backward of the per-token
/// log-probs, then full SFT steps (forward, backward, clipping, AdamW).
struct CandleBench {
    trainer: Trainer,
    sequences: Vec<Sequence>,
    ids: Tensor,
    steps: usize,
}

impl CandleBench {
    /// Builds the trainer and takes one warm-up step.
    fn new(policy: Policy, args: &LearnerBench) -> anyhow::Result<Self> {
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
        Ok(Self {
            trainer,
            sequences,
            ids,
            steps: args.steps,
        })
    }

    fn round(&mut self) -> anyhow::Result<Timing> {
        let steps = self.steps as f64;
        let started = Instant::now();
        for _ in 0..self.steps {
            let loss = self
                .trainer
                .policy()
                .model
                .token_logprobs(&self.ids)?
                .mean_all()?;
            let _grads = loss.backward()?;
        }
        let fwd_bwd = started.elapsed().as_secs_f64() / steps;
        let (mut step, mut optimizer) = (0.0, 0.0);
        for _ in 0..self.steps {
            let stats = self.trainer.sft_step(&self.sequences, 0, 100)?;
            step += stats.seconds / steps;
            optimizer += stats.optimizer_seconds / steps;
        }
        Ok(Timing {
            fwd_bwd,
            optimizer,
            step,
        })
    }
}

/// PyTorch (Transformers' model of the same `config.json`) on the same
/// shapes, in a script that times a round whenever asked.
struct TorchBench(reference::ScriptSession);

impl TorchBench {
    fn start(python: &Path, model_dir: &Path, args: &LearnerBench) -> anyhow::Result<Self> {
        Ok(Self(reference::ScriptSession::start(
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
                "--serve".into(),
            ],
        )?))
    }

    fn round(&mut self) -> anyhow::Result<Timing> {
        let result = self.0.request("round")?;
        Ok(Timing {
            fwd_bwd: result.number("fwd_bwd_seconds")?,
            optimizer: result.number("optimizer_seconds")?,
            step: result.number("step_seconds")?,
        })
    }
}

/// Measures one model with candle and, when given a Python, PyTorch, in
/// alternating rounds (each round's order flipped, so neither always runs
/// first).
fn compare(
    name: &str,
    model_dir: &Path,
    torch: Option<&Path>,
    args: &LearnerBench,
) -> anyhow::Result<()> {
    // PyTorch's model first: this process keeps the memory it frees (see
    // r1_runtime::allocator), which PyTorch starting after ours would lack.
    let mut theirs = torch
        .map(|python| TorchBench::start(python, model_dir, args))
        .transpose()?;
    let policy = load_policy(model_dir, &Device::Cpu)?;
    let params = policy.model.config().parameter_count() as f64;
    let tokens = (args.batch * args.seq_len) as f64;
    let mut ours = CandleBench::new(policy, args)?;
    let (mut our_rounds, mut their_rounds) = (Vec::new(), Vec::new());
    for round in 0..args.rounds {
        let Some(theirs) = &mut theirs else {
            our_rounds.push(ours.round()?);
            continue;
        };
        if round % 2 == 0 {
            our_rounds.push(ours.round()?);
            their_rounds.push(theirs.round()?);
        } else {
            their_rounds.push(theirs.round()?);
            our_rounds.push(ours.round()?);
        }
    }
    let ours = Rounds(our_rounds);
    ours.print(&format!("{name}, candle"), params, tokens);
    if theirs.is_some() {
        let theirs = Rounds(their_rounds);
        theirs.print(&format!("{name}, PyTorch"), params, tokens);
        println!(
            "  ratio to PyTorch, median of {} rounds (range): fwd+bwd {}, optimizer step {}, full step {} (> 1: candle is faster)",
            args.rounds,
            theirs.ratio(&ours, |t| t.fwd_bwd),
            theirs.ratio(&ours, |t| t.optimizer),
            theirs.ratio(&ours, |t| t.step),
        );
    }
    Ok(())
}

pub fn run(args: LearnerBench) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.steps > 0 && args.rounds > 0 && args.batch > 0 && args.seq_len > 1,
        "--steps, --rounds and --batch must be at least 1 and --seq-len at least 2"
    );
    println!(
        "learner benchmark: batch {} x {} tokens, {} rounds of {} timed steps each",
        args.batch, args.seq_len, args.rounds, args.steps
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

#[cfg(test)]
mod tests {
    use super::median_and_range;

    #[test]
    fn median_of_odd_and_even_counts_with_their_range() {
        assert_eq!(median_and_range(vec![3.0, 1.0, 2.0]), (2.0, 1.0, 3.0));
        assert_eq!(median_and_range(vec![4.0, 1.0, 3.0, 2.0]), (2.5, 1.0, 4.0));
        assert_eq!(median_and_range(vec![5.0]), (5.0, 5.0, 5.0));
    }
}
