//! The cold start: supervised fine-tuning on worked solutions in the R1
//! format, of easier problems than the RL stage.

use indicatif::ProgressBar;
use r1_learner::tasks::{Problem, ProblemStream, Split};
use r1_learner::template::r1_prompt;
use r1_learner::tokenizer::TextTokenizer;
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

/// Runs every SFT step of the config.
pub fn run(
    trainer: &mut Trainer,
    tokenizer: &TextTokenizer,
    config: &RunConfig,
    log: &mut MetricsLog,
    bar: &ProgressBar,
) -> anyhow::Result<()> {
    let mut stream = ProblemStream::new(config.task.cold_start.clone(), config.seed, Split::Train);
    for step in 0..config.sft.steps {
        let batch = (0..config.sft.batch_size)
            .map(|_| {
                let problem = stream
                    .next()
                    .unwrap_or_else(|| unreachable!("problem streams are endless"));
                sequence(
                    tokenizer,
                    &config.task.preamble,
                    &problem,
                    config.sft.max_tokens,
                )
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let stats = trainer.sft_step(&batch, tokenizer.pad(), config.sft.steps)?;
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
