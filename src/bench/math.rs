//! Math answer checking throughput on the Math-Verify conformance cases,
//! single-threaded and on all cores, beside Math-Verify itself on the same
//! cases in the same run.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;
use r1_reward::math::suite::{SuiteCase, load_math_verify_cases};

use super::reference;

#[derive(Debug, clap::Args)]
pub struct MathBench {
    /// Seconds of work per measurement.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Threads for the parallel measurement (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Folder with math_verify_cases.jsonl.
    #[arg(long, env = "R1_CONFORMANCE_DIR")]
    conformance: Option<PathBuf>,
    /// Skip the Math-Verify reference (needs python3 and pip).
    #[arg(long)]
    no_reference: bool,
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Cases checked per second by `threads` threads looping over the suite.
fn measure(cases: &[SuiteCase], threads: usize, seconds: f64) -> (f64, u64) {
    let stop = AtomicBool::new(false);
    let checks = AtomicU64::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..threads {
            let (stop, checks) = (&stop, &checks);
            scope.spawn(move || {
                let mut done = 0;
                // Threads start at different cases so they do not move in lockstep.
                let mut i = t * cases.len() / threads.max(1);
                while !stop.load(Ordering::Relaxed) {
                    std::hint::black_box(cases[i % cases.len()].run().verdict);
                    i += 1;
                    done += 1;
                }
                checks.fetch_add(done, Ordering::Relaxed);
            });
        }
        std::thread::sleep(Duration::from_secs_f64(seconds));
        stop.store(true, Ordering::Relaxed);
    });
    let total = checks.load(Ordering::Relaxed);
    (total as f64 / started.elapsed().as_secs_f64(), total)
}

#[derive(Debug, serde::Deserialize)]
struct Reference {
    cases_per_second: f64,
    agreement: f64,
    processes: usize,
}

fn reference(file: &Path, seconds: f64, processes: usize) -> anyhow::Result<Reference> {
    let python = reference::venv_python("math-verify-venv")?;
    reference::run_script(
        &python,
        "bench_math_verify.py",
        [
            "--cases".to_string(),
            file.display().to_string(),
            "--seconds".into(),
            seconds.to_string(),
            "--processes".into(),
            processes.to_string(),
        ],
    )?
    .parse()
}

pub fn run(args: MathBench) -> anyhow::Result<()> {
    let dir = args
        .conformance
        .clone()
        .unwrap_or_else(|| repo_root().join("../shared/conformance"));
    let file = dir.join("math_verify_cases.jsonl");
    let cases = load_math_verify_cases(&file).map_err(anyhow::Error::msg)?;
    if cases.is_empty() {
        bail!("{} has no verify cases", file.display());
    }
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let agree = cases
        .iter()
        .filter(|c| c.run().verdict == c.expected)
        .count();
    println!(
        "math benchmark: {} Math-Verify verify cases (extraction of gold and prediction + comparison), {agree}/{} agree with the expected verdict",
        cases.len(),
        cases.len()
    );
    let (single, _) = measure(&cases, 1, args.seconds);
    println!("  r1, 1 thread:          {single:>12.0} cases/s");
    let (parallel, _) = measure(&cases, threads, args.seconds);
    println!("  r1, {threads} threads:         {parallel:>12.0} cases/s");
    if args.no_reference {
        return Ok(());
    }
    let mv_single = reference(&file, args.seconds, 1)?;
    println!(
        "  Math-Verify 0.8.0, 1 process:  {:>8.1} cases/s  (agreement with expected {:.1}%)",
        mv_single.cases_per_second,
        mv_single.agreement * 100.0
    );
    let mv_parallel = reference(&file, args.seconds, threads)?;
    println!(
        "  Math-Verify 0.8.0, {} processes: {:>6.1} cases/s",
        mv_parallel.processes, mv_parallel.cases_per_second
    );
    println!(
        "  ratio: {:.0}x single-threaded, {:.0}x on all cores (goal: 1000x)",
        single / mv_single.cases_per_second,
        parallel / mv_parallel.cases_per_second
    );
    Ok(())
}
