//! Evaluation of a policy on the arithmetic task: greedy answers to
//! held-out problems, checked like the accuracy and format rewards.

use r1_inference::engine::{Engine, GenerateParams};
use r1_learner::tasks::Problem;
use r1_learner::template::r1_prompt;
use r1_reward::format::FormatConfig;
use r1_reward::math::MathConfig;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EvalResult {
    pub accuracy: f64,
    pub format_rate: f64,
    pub mean_response_tokens: f64,
    pub n: usize,
}

/// Problems answered at once (one engine batch).
const CONCURRENT: usize = 64;

/// Greedy completions of `problems`, scored: the share answered correctly,
/// the share in the R1 format, and the mean completion length in tokens.
pub async fn evaluate(
    engine: &Engine,
    problems: &[Problem],
    preamble: &str,
    max_new_tokens: usize,
) -> anyhow::Result<EvalResult> {
    let math = MathConfig::default();
    let format = FormatConfig {
        prompt_opens_think: true,
        ..FormatConfig::default()
    };
    let params = GenerateParams {
        temperature: 0.0,
        top_p: 1.0,
        top_k: None,
        max_new_tokens,
        stop: vec![],
        seed: 0,
    };
    let (mut correct, mut formatted, mut tokens) = (0usize, 0usize, 0usize);
    for chunk in problems.chunks(CONCURRENT) {
        let prompts = chunk
            .iter()
            .map(|p| engine.tokenizer().encode(&r1_prompt(preamble, &p.question)))
            .collect::<Result<Vec<_>, _>>()?;
        let runs = prompts.iter().map(|ids| engine.generate(ids, 1, &params));
        let completions = futures::future::try_join_all(runs).await?;
        for (problem, group) in chunk.iter().zip(completions) {
            let Some(completion) = group.into_iter().next() else {
                continue;
            };
            tokens += completion.token_ids.len();
            correct += usize::from(
                math.check(&problem.answer.to_string(), &completion.text)
                    .correct,
            );
            formatted += usize::from(format.check(&completion.text).well_formed);
        }
    }
    let n = problems.len().max(1) as f64;
    Ok(EvalResult {
        accuracy: correct as f64 / n,
        format_rate: formatted as f64 / n,
        mean_response_tokens: tokens as f64 / n,
        n: problems.len(),
    })
}

/// `r1 eval`: evaluates a model folder on held-out arithmetic problems.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// Model folder (Hugging Face layout).
    #[arg(long)]
    pub model: std::path::PathBuf,
    /// Task (only `arith`).
    #[arg(long, default_value = "arith")]
    pub task: String,
    /// Held-out problems to evaluate.
    #[arg(long, default_value_t = 200)]
    pub n: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Smallest and largest operand sizes, in digits (the defaults are the
    /// default run's RL and held-out problems: two-digit sums).
    #[arg(long, default_value_t = 2)]
    pub min_digits: u32,
    #[arg(long, default_value_t = 2)]
    pub max_digits: u32,
    /// Operations, comma-separated: add, sub, mul.
    #[arg(long, default_value = "add", value_delimiter = ',')]
    pub ops: Vec<String>,
    /// Operands per problem.
    #[arg(long, default_value_t = 2)]
    pub terms: usize,
    /// Instruction before each question (the run's task.preamble).
    #[arg(long, default_value = "")]
    pub preamble: String,
    #[arg(long, default_value_t = 96)]
    pub max_new_tokens: usize,
    /// Print this many examples (question, completion) to stderr.
    #[arg(long, default_value_t = 0)]
    pub show: usize,
}

pub async fn run(args: EvalArgs) -> anyhow::Result<()> {
    use r1_learner::tasks::{Difficulty, Op, ProblemStream, Split};
    if args.task != "arith" {
        anyhow::bail!("--task {:?}: only \"arith\" is available", args.task);
    }
    let ops = args
        .ops
        .iter()
        .map(|o| match o.as_str() {
            "add" => Ok(Op::Add),
            "sub" => Ok(Op::Sub),
            "mul" => Ok(Op::Mul),
            other => Err(anyhow::anyhow!(
                "--ops: unknown operation {other:?} (add, sub, mul)"
            )),
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let difficulty = Difficulty {
        min_digits: args.min_digits,
        max_digits: args.max_digits,
        ops,
        terms: args.terms,
        word_problems: 0.0,
    };
    difficulty
        .validate("difficulty")
        .map_err(anyhow::Error::msg)?;
    let engine = Engine::load(&args.model, 0).await?;
    let problems = ProblemStream::first(&difficulty, args.seed, Split::HeldOut, args.n);
    if args.show > 0 {
        let params = GenerateParams {
            temperature: 0.0,
            top_p: 1.0,
            top_k: None,
            max_new_tokens: args.max_new_tokens,
            stop: vec![],
            seed: 0,
        };
        for p in problems.iter().take(args.show) {
            let ids = engine
                .tokenizer()
                .encode(&r1_prompt(&args.preamble, &p.question))?;
            let c = engine.generate(&ids, 1, &params).await?;
            eprintln!(
                "{} [{}] -> {:?}",
                p.question,
                p.answer,
                c.first().map(|c| c.text.clone()).unwrap_or_default()
            );
        }
    }
    let result = evaluate(&engine, &problems, &args.preamble, args.max_new_tokens).await?;
    println!("{}", serde_json::to_string(&result)?);
    Ok(())
}
