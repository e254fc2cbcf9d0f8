//! `r1 math-check`: checks math answers given as JSON Lines on stdin.
//!
//! Each input line is an object with at least `"gold"` and `"pred"`; the
//! output line is the same object with `"correct"`, `"decided"`,
//! `"pred_extracted"` and `"gold_extracted"` added. A line that is not a JSON
//! object with those fields yields `{"error": …, "line": N}` and the run goes
//! on. Lines are checked in parallel and printed in input order.

use std::io::{BufRead, BufWriter, Write};
use std::path::PathBuf;

use anyhow::Context;
use r1_reward::config::RewardConfig;
use r1_reward::math::MathConfig;
use serde_json::{Map, Value, json};

#[derive(Debug, clap::Args)]
pub struct MathCheckArgs {
    /// Reward configuration (TOML) whose [math] section sets extraction and
    /// comparison; built-in defaults when unset.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

/// Lines checked per parallel batch.
const BATCH: usize = 4096;

fn field(object: &Map<String, Value>, name: &str) -> Result<String, String> {
    match object.get(name) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(other) => Err(format!(
            "field \"{name}\" must be a string or number, not {other}"
        )),
        None => Err(format!("field \"{name}\" is missing")),
    }
}

fn check_line(
    math: &MathConfig,
    number: usize,
    line: Result<String, std::string::FromUtf8Error>,
) -> String {
    let error = |message: String| json!({ "error": message, "line": number }).to_string();
    let line = match line {
        Ok(line) => line,
        Err(_) => return error("line is not valid UTF-8".into()),
    };
    let mut object = match serde_json::from_str::<Value>(&line) {
        Ok(Value::Object(object)) => object,
        Ok(_) => return error("line is not a JSON object".into()),
        Err(e) => return error(format!("invalid JSON: {e}")),
    };
    let (gold, pred) = match (field(&object, "gold"), field(&object, "pred")) {
        (Ok(g), Ok(p)) => (g, p),
        (Err(e), _) | (_, Err(e)) => return error(e),
    };
    let verdict = math.check(&gold, &pred);
    object.insert("correct".into(), Value::Bool(verdict.correct));
    object.insert("decided".into(), Value::Bool(verdict.decided));
    object.insert(
        "pred_extracted".into(),
        verdict.pred_extracted.map_or(Value::Null, Value::String),
    );
    object.insert(
        "gold_extracted".into(),
        verdict.gold_extracted.map_or(Value::Null, Value::String),
    );
    Value::Object(object).to_string()
}

pub fn run(args: MathCheckArgs) -> anyhow::Result<()> {
    let config = match &args.config {
        Some(path) => RewardConfig::load(path)?,
        None => RewardConfig::default(),
    };
    let math = config.math.to_config();
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let stdin = std::io::stdin().lock();
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut lines = stdin.split(b'\n').enumerate();
    loop {
        let mut batch = Vec::with_capacity(BATCH);
        for (i, line) in lines.by_ref().take(BATCH) {
            let mut bytes = line.context("reading stdin")?;
            if bytes.last() == Some(&b'\r') {
                bytes.pop();
            }
            if bytes.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            batch.push((i + 1, String::from_utf8(bytes)));
        }
        if batch.is_empty() {
            break;
        }
        let chunk = batch.len().div_ceil(threads);
        let results: Vec<Vec<String>> = std::thread::scope(|scope| {
            let handles: Vec<_> = batch
                .chunks_mut(chunk)
                .map(|part| {
                    let math = &math;
                    scope.spawn(move || {
                        part.iter_mut()
                            .map(|(n, line)| {
                                let line = std::mem::replace(line, Ok(String::new()));
                                check_line(math, *n, line)
                            })
                            .collect()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| vec![json!({"error": "checker panicked"}).to_string()])
                })
                .collect()
        });
        for line in results.into_iter().flatten() {
            writeln!(out, "{line}")?;
        }
    }
    out.flush()?;
    Ok(())
}
