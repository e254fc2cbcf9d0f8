//! Sandbox latency and throughput: a trivial stdin→stdout program and a small
//! CPU-bound one, single-threaded and on all cores, beside a native `python3`
//! subprocess running the same programs in the same run.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use r1_sandbox::{Language, Limits, Program, Sandbox, SandboxConfig};

#[derive(Debug, clap::Args)]
pub struct SandboxBench {
    /// Runs per measurement and thread.
    #[arg(long, default_value_t = 40)]
    runs: usize,
    /// Threads for the parallel measurement (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// The native interpreter measured beside the sandbox.
    #[arg(long, default_value = "python3")]
    native_python: String,
    /// Only the workloads of this name (`trivial`, `cpu`).
    #[arg(long)]
    only: Option<String>,
}

struct Workload {
    name: &'static str,
    language: Language,
    source: &'static str,
    stdin: &'static str,
    expected: &'static str,
}

const WORKLOADS: &[Workload] = &[
    Workload {
        name: "trivial",
        language: Language::Python,
        source: "print(int(input()) * 2)",
        stdin: "21\n",
        expected: "42\n",
    },
    Workload {
        name: "cpu",
        language: Language::Python,
        source: "total = 0\nfor i in range(200000):\n    total += i * i % 7\nprint(total)",
        stdin: "",
        expected: "399999\n",
    },
    Workload {
        name: "trivial",
        language: Language::JavaScript,
        source: "console.log(parseInt(require('fs').readFileSync(0, 'utf8')) * 2)",
        stdin: "21\n",
        expected: "42\n",
    },
];

/// Latencies of `runs` calls of `one` on each of `threads` threads.
fn measure(
    threads: usize,
    runs: usize,
    one: impl Fn() -> anyhow::Result<()> + Sync,
) -> anyhow::Result<(Vec<Duration>, Duration)> {
    let started = Instant::now();
    let latencies = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut latencies = Vec::with_capacity(runs);
                    for _ in 0..runs {
                        let t = Instant::now();
                        one()?;
                        latencies.push(t.elapsed());
                    }
                    anyhow::Ok(latencies)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("benchmark thread panicked"))
            .collect::<anyhow::Result<Vec<_>>>()
    })?;
    let elapsed = started.elapsed();
    let mut all: Vec<Duration> = latencies.into_iter().flatten().collect();
    all.sort();
    Ok((all, elapsed))
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

fn report(
    workload: &Workload,
    runner: &str,
    threads: usize,
    latencies: &[Duration],
    elapsed: Duration,
) {
    println!(
        "{:<10} {:<8} {:<22} {:>7} {:>9.2} {:>9.2} {:>9.1}",
        workload.language.name(),
        workload.name,
        runner,
        threads,
        percentile(latencies, 0.5),
        percentile(latencies, 0.99),
        latencies.len() as f64 / elapsed.as_secs_f64()
    );
}

fn native_run(python: &str, workload: &Workload) -> anyhow::Result<()> {
    let mut child = Command::new(python)
        .args(["-I", "-c", workload.source])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {python}"))?;
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(workload.stdin.as_bytes())?;
    let output = child.wait_with_output()?;
    if output.stdout != workload.expected.as_bytes() {
        bail!(
            "{python} printed {:?}, expected {:?}",
            String::from_utf8_lossy(&output.stdout),
            workload.expected
        );
    }
    Ok(())
}

pub fn run(args: SandboxBench) -> anyhow::Result<()> {
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let load_started = Instant::now();
    let mut config = SandboxConfig::new(crate::model_cmd::cache_dir());
    config.max_concurrent_runs = threads as u32;
    let sandbox = Sandbox::new(config)?;
    println!(
        "sandbox loaded in {:.0} ms (interpreters checked, compiled code mapped)",
        load_started.elapsed().as_secs_f64() * 1e3
    );
    // The interpreter itself, not a launcher script in front of it (pyenv's
    // shims add ~90 ms per start).
    let native = Command::new(&args.native_python)
        .args([
            "-c",
            "import sys; print(sys.executable); print(sys.version.split()[0])",
        ])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            let mut lines = text.lines();
            Some((lines.next()?.to_owned(), lines.next()?.to_owned()))
        });
    match &native {
        Some((path, version)) => println!(
            "native reference: {path} (Python {version}, from {}) as a subprocess, -I",
            args.native_python
        ),
        None => println!(
            "native reference: {} not found; sandbox numbers only",
            args.native_python
        ),
    }
    println!(
        "{:<10} {:<8} {:<22} {:>7} {:>9} {:>9} {:>9}",
        "language", "program", "runner", "threads", "p50 ms", "p99 ms", "runs/s"
    );
    let selected = WORKLOADS
        .iter()
        .filter(|w| args.only.as_deref().is_none_or(|name| name == w.name));
    for workload in selected {
        let sandboxed = || -> anyhow::Result<()> {
            let outcome = sandbox.run(Program {
                language: workload.language,
                source: workload.source.to_owned(),
                stdin: workload.stdin.as_bytes().to_vec(),
                limits: Limits::default(),
            })?;
            if outcome.stdout != workload.expected.as_bytes() {
                bail!("the sandbox run ended {:?}", outcome);
            }
            Ok(())
        };
        sandboxed()?;
        for t in [1, threads] {
            let (latencies, elapsed) = measure(t, args.runs, sandboxed)?;
            report(workload, "sandbox (wasmtime)", t, &latencies, elapsed);
        }
        if let Some((python, _)) = native
            .as_ref()
            .filter(|_| workload.language == Language::Python)
        {
            let one = || native_run(python, workload);
            one()?;
            for t in [1, threads] {
                let (latencies, elapsed) = measure(t, args.runs, one)?;
                report(workload, "native subprocess", t, &latencies, elapsed);
            }
        }
    }
    Ok(())
}
