//! The cold start: supervised fine-tuning on worked solutions in the R1
//! format, of easier problems than the RL stage, or on the config's JSON
//! Lines dataset; padded or packed batches.

use indicatif::ProgressBar;
use r1_learner::tasks::{Problem, ProblemStream, Split};
use r1_learner::template::r1_prompt;
use r1_learner::tokenizer::TextTokenizer;
use r1_learner::train::data::load_sft_jsonl;
use r1_learner::train::{Sequence, Trainer};
use serde_json::json;

use super::metrics::MetricsLog;
use r1_learner::run_config::RunConfig;

/// Prompt and solution of `problem` as one training sequence.
pub fn sequence(
    tokenizer: &TextTokenizer,
    preamble: &str,
    problem: &Problem,
    max_tokens: usize,
) -> anyhow::Result<Sequence> {
    let prompt = tokenizer.encode(&r1_prompt(preamble, &problem.question))?;
    let mut tokens = prompt.clone();
    tokens.extend(tokenizer.encode(&problem.solution())?);
    tokens.push(tokenizer.eos());
    tokens.truncate(max_tokens);
    Ok(Sequence {
        prompt_len: prompt.len().min(tokens.len().saturating_sub(1)),
        tokens,
    })
}

/// Where the SFT batches come from: the config's dataset, cycled in file
/// order, or worked solutions of generated problems.
enum Source {
    Dataset {
        sequences: Vec<Sequence>,
        next: usize,
    },
    Generated(ProblemStream),
}

impl Source {
    fn new(tokenizer: &TextTokenizer, config: &RunConfig) -> anyhow::Result<Self> {
        Ok(match &config.sft.data {
            Some(path) => {
                let sequences = load_sft_jsonl(path, tokenizer, config.sft.max_tokens)?;
                anyhow::ensure!(!sequences.is_empty(), "{}: no examples", path.display());
                Source::Dataset { sequences, next: 0 }
            }
            None => Source::Generated(ProblemStream::new(
                config.task.cold_start.clone(),
                config.seed,
                Split::Train,
            )),
        })
    }

    fn batch(
        &mut self,
        tokenizer: &TextTokenizer,
        config: &RunConfig,
    ) -> anyhow::Result<Vec<Sequence>> {
        (0..config.sft.batch_size)
            .map(|_| match self {
                Source::Dataset { sequences, next } => {
                    let sequence = sequences[*next % sequences.len()].clone();
                    *next += 1;
                    Ok(sequence)
                }
                Source::Generated(stream) => {
                    let problem = stream
                        .next()
                        .unwrap_or_else(|| unreachable!("problem streams are endless"));
                    sequence(
                        tokenizer,
                        &config.task.preamble,
                        &problem,
                        config.sft.max_tokens,
                    )
                }
            })
            .collect()
    }
}

/// Runs every SFT step of the config.
pub fn run(
    trainer: &mut Trainer,
    tokenizer: &TextTokenizer,
    config: &RunConfig,
    log: &mut MetricsLog,
    bar: &ProgressBar,
) -> anyhow::Result<()> {
    let mut source = Source::new(tokenizer, config)?;
    for step in 0..config.sft.steps {
        let batch = source.batch(tokenizer, config)?;
        let stats = if config.sft.packing {
            trainer.sft_step_packed(
                &batch,
                tokenizer.pad(),
                config.sft.max_tokens,
                config.sft.steps,
            )?
        } else {
            trainer.sft_step(&batch, tokenizer.pad(), config.sft.steps)?
        };
        log.write(json!({
            "stage": "sft", "step": step + 1, "loss": stats.loss, "tokens": stats.tokens,
            "grad_norm": stats.grad_norm, "lr": stats.lr, "step_seconds": stats.seconds,
            "tokens_per_second": stats.tokens as f64 / stats.seconds.max(1e-9),
        }))?;
        bar.set_message(format!("loss {:.3}", stats.loss));
        bar.inc(1);
    }
    Ok(())
}
