//! Learner throughput: forward + backward tokens/s and optimizer step time
//! at a fixed batch shape, beside PyTorch on the same shapes when asked.

use std::path::PathBuf;
use std::time::Instant;

use candle_core::{Device, Tensor};
use r1_learner::model::Policy;
use r1_learner::model::weights::load_policy;
use r1_learner::preset::Preset;
use r1_learner::train::{OptimConfig, Sequence, Trainer};

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
    /// Also measure this model folder (e.g. an imported SmolLM2-135M).
    #[arg(long)]
    model: Option<PathBuf>,
}

fn measure(name: &str, policy: Policy, args: &LearnerBench) -> anyhow::Result<()> {
    let vocab = policy.model.config().vocab_size as u32;
    let params = policy.model.config().parameter_count();
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
    let started = Instant::now();
    for _ in 0..args.steps {
        trainer.sft_step(&sequences, 0, 100)?;
    }
    let full_step = started.elapsed().as_secs_f64() / args.steps as f64;
    let tokens = (args.batch * args.seq_len) as f64;
    println!(
        "  {name:<22} {:>6.1} M params  fwd+bwd {:>8.0} tokens/s ({:.3} s)  optimizer step {:.3} s  full SFT step {:.3} s",
        params as f64 / 1e6,
        tokens / fwd_bwd,
        fwd_bwd,
        (full_step - fwd_bwd).max(0.0),
        full_step
    );
    Ok(())
}

pub fn run(args: LearnerBench) -> anyhow::Result<()> {
    println!(
        "learner benchmark: batch {} x {} tokens",
        args.batch, args.seq_len
    );
    measure(
        "tiny (random init)",
        Policy::random(&Preset::Tiny.config(), 0, &Device::Cpu)?,
        &args,
    )?;
    if let Some(dir) = &args.model {
        measure(
            &dir.display().to_string(),
            load_policy(dir, &Device::Cpu)?,
            &args,
        )?;
    }
    Ok(())
}
