//! The sandbox: one engine and one pre-linked interpreter per language, shared
//! by every run; a fresh store and instance per run, from a pool of
//! preallocated, copy-on-write instance slots.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::Semaphore;
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, InstancePre, Linker, PoolingAllocationConfig, Trap,
};
use wasmtime_wasi::I32Exit;
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryInputPipe;

use crate::language::{Language, quickjs_argv};
use crate::limits::{Limits, MAX_MEMORY_BYTES};
use crate::modules::{Interpreters, ModuleError};
use crate::outcome::{RunOutcome, RunStatus};
use crate::pipe::CappedPipe;
use crate::python_host::PythonInterpreter;
use crate::store::{Ended, Metered, RunState, metered};

/// How often the engine's epoch advances; the wall-time check runs per tick.
const EPOCH_TICK: Duration = Duration::from_millis(2);
/// Native stack for guest code; deep recursion traps past it.
const WASM_STACK_BYTES: usize = 4 << 20;
/// Core instances, memories and tables one run may hold: QuickJS is one
/// module; the Python component links CPython, its C libraries, eryx's
/// runtime and the WASI adapter, each a core instance.
const CORE_INSTANCES_PER_RUN: u32 = 32;
const MEMORIES_PER_RUN: u32 = 4;
const TABLES_PER_RUN: u32 = 8;

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(transparent)]
    Module(#[from] ModuleError),
    #[error("invalid limits: {0}")]
    InvalidLimits(String),
    #[error("{0} is not available in this sandbox")]
    Unavailable(Language),
    #[error("sandbox engine: {0}")]
    Engine(String),
    #[error("sandbox host failure: {0}")]
    Host(String),
}

/// How the sandbox is set up.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    pub interpreters: Interpreters,
    /// Languages to load; loading Python takes the most time.
    pub languages: Vec<Language>,
    /// Limits of a run that does not bring its own.
    pub default_limits: Limits,
    /// Runs at once; more wait for a slot. Each slot reserves address space
    /// (not memory) for the largest allowed guest.
    pub max_concurrent_runs: u32,
}

impl SandboxConfig {
    pub fn new(cache_dir: impl Into<PathBuf>) -> Self {
        Self {
            interpreters: Interpreters::in_cache(&cache_dir.into()),
            languages: Language::ALL.to_vec(),
            default_limits: Limits::default(),
            max_concurrent_runs: 32,
        }
    }
}

/// A program to run.
#[derive(Debug, Clone)]
pub struct Program {
    pub language: Language,
    pub source: String,
    pub stdin: Vec<u8>,
    pub limits: Limits,
}

/// The loaded interpreter a run uses.
enum Interpreter<'a> {
    QuickJs(&'a InstancePre<RunState<WasiP1Ctx>>),
    Python(&'a PythonInterpreter),
}

struct Inner {
    engine: Engine,
    javascript: Option<InstancePre<RunState<WasiP1Ctx>>>,
    python: Option<PythonInterpreter>,
    default_limits: Limits,
    slots: Semaphore,
    ticker_stop: Arc<AtomicBool>,
    ticker: Option<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
        if let Some(ticker) = self.ticker.take() {
            ticker.thread().unpark();
            let _ = ticker.join();
        }
    }
}

/// Runs programs; cheap to clone and share between threads.
#[derive(Clone)]
pub struct Sandbox {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("languages", &self.languages())
            .field("default_limits", &self.inner.default_limits)
            .finish()
    }
}

thread_local! {
    /// Drives the runs of one blocking thread: wasm execution never runs on
    /// the async workers of the caller's runtime.
    static RUN_DRIVER: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime with only a timer needs no OS resources that can fail");
}

impl Sandbox {
    /// Builds the engine and loads (or compiles once) each interpreter.
    pub fn new(config: SandboxConfig) -> Result<Self, SandboxError> {
        config
            .default_limits
            .validate()
            .map_err(SandboxError::InvalidLimits)?;
        let engine = build_engine(config.max_concurrent_runs)?;
        let mut javascript = None;
        let mut python = None;
        for &language in &config.languages {
            match language {
                Language::JavaScript => {
                    let module = config.interpreters.load_quickjs(&engine)?;
                    let mut linker: Linker<RunState<WasiP1Ctx>> = Linker::new(&engine);
                    wasmtime_wasi::p1::add_to_linker_async(&mut linker, |state| &mut state.guest)
                        .map_err(|e| SandboxError::Engine(format!("{e:#}")))?;
                    let pre = linker
                        .instantiate_pre(&module)
                        .map_err(|e| SandboxError::Engine(format!("linking {language}: {e:#}")))?;
                    javascript = Some(pre);
                }
                Language::Python => {
                    let runtime = config.interpreters.load_python(&engine)?;
                    python = Some(PythonInterpreter::new(&engine, runtime)?);
                }
            }
        }
        let ticker_stop = Arc::new(AtomicBool::new(false));
        let ticker = {
            let engine = engine.clone();
            let stop = ticker_stop.clone();
            std::thread::Builder::new()
                .name("r1-sandbox-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::park_timeout(EPOCH_TICK);
                        engine.increment_epoch();
                    }
                })
                .map_err(|e| SandboxError::Engine(format!("cannot start the epoch ticker: {e}")))?
        };
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                javascript,
                python,
                default_limits: config.default_limits,
                slots: Semaphore::new(config.max_concurrent_runs as usize),
                ticker_stop,
                ticker: Some(ticker),
            }),
        })
    }

    pub fn languages(&self) -> Vec<Language> {
        let mut languages = Vec::new();
        if self.inner.javascript.is_some() {
            languages.push(Language::JavaScript);
        }
        if self.inner.python.is_some() {
            languages.push(Language::Python);
        }
        languages
    }

    pub fn default_limits(&self) -> Limits {
        self.inner.default_limits
    }

    /// Runs a program on the calling thread, which blocks until it ends.
    /// Call from a blocking thread (`spawn_blocking`), not an async worker.
    pub fn run(&self, program: Program) -> Result<RunOutcome, SandboxError> {
        RUN_DRIVER.with(|driver| driver.block_on(self.execute(program)))
    }

    /// Runs a program on tokio's blocking pool.
    pub async fn run_async(&self, program: Program) -> Result<RunOutcome, SandboxError> {
        let sandbox = self.clone();
        tokio::task::spawn_blocking(move || sandbox.run(program))
            .await
            .map_err(|e| SandboxError::Host(format!("the run's thread failed: {e}")))?
    }

    async fn execute(&self, program: Program) -> Result<RunOutcome, SandboxError> {
        let Program {
            language,
            source,
            stdin,
            limits,
        } = program;
        limits.validate().map_err(SandboxError::InvalidLimits)?;
        let interpreter = match language {
            Language::JavaScript => self.inner.javascript.as_ref().map(Interpreter::QuickJs),
            Language::Python => self.inner.python.as_ref().map(Interpreter::Python),
        }
        .ok_or(SandboxError::Unavailable(language))?;
        if source.contains('\0') {
            return Ok(refused("source code cannot contain NUL bytes"));
        }
        let _slot = self
            .inner
            .slots
            .acquire()
            .await
            .map_err(|_| SandboxError::Host("the sandbox is shutting down".into()))?;

        let stdout = CappedPipe::new(limits.stdout_bytes);
        let stderr = CappedPipe::new(limits.stderr_bytes);
        let engine = &self.inner.engine;
        // No environment, no writable folders, no sockets: WASI gives the
        // guest nothing it is not handed here.
        let Metered {
            ended,
            wall_time,
            fuel_used,
            peak_memory_bytes,
            memory_refused,
        } = match interpreter {
            Interpreter::QuickJs(pre) => {
                let wasi = WasiCtxBuilder::new()
                    .stdin(MemoryInputPipe::new(stdin))
                    .stdout(stdout.clone())
                    .stderr(stderr.clone())
                    .args(&quickjs_argv(&source))
                    .build_p1();
                metered(engine, wasi, &limits, async |store| {
                    let instance = pre
                        .instantiate_async(&mut *store)
                        .await
                        .map_err(Ended::Start)?;
                    let start = instance
                        .get_typed_func::<(), ()>(&mut *store, "_start")
                        .map_err(Ended::Start)?;
                    start
                        .call_async(&mut *store, ())
                        .await
                        .map_err(Ended::Guest)?;
                    Ok(0)
                })
                .await?
            }
            Interpreter::Python(python) => {
                let guest = python.guest(stdin, &stdout, &stderr)?;
                metered(engine, guest, &limits, async |store| {
                    python.call(store, &source).await
                })
                .await?
            }
        };

        let (status, exit_code, message) = classify(
            ended,
            &limits,
            memory_refused,
            stdout.overflowed(),
            stderr.overflowed(),
        )?;
        Ok(RunOutcome {
            status,
            exit_code,
            stdout: stdout.contents(),
            stderr: stderr.contents(),
            wall_time,
            fuel_used,
            peak_memory_bytes,
            message,
        })
    }
}

type Classified = (RunStatus, Option<i32>, Option<String>);

fn classify(
    ended: Ended,
    limits: &Limits,
    memory_refused: bool,
    stdout_overflow: bool,
    stderr_overflow: bool,
) -> Result<Classified, SandboxError> {
    if stdout_overflow || stderr_overflow {
        let (stream, limit) = if stdout_overflow {
            ("stdout", limits.stdout_bytes)
        } else {
            ("stderr", limits.stderr_bytes)
        };
        let exit_code = match &ended {
            Ended::Exit(code) => Some(*code),
            Ended::Guest(e) => e.downcast_ref::<I32Exit>().map(|e| e.0),
            _ => None,
        };
        return Ok((
            RunStatus::OutputLimitExceeded,
            exit_code,
            Some(format!("{stream} exceeded its limit of {limit} bytes")),
        ));
    }
    let wall_time_message = || {
        format!(
            "wall time limit of {} ms exceeded",
            limits.wall_time.as_millis()
        )
    };
    let (exit_code, trap_message) = match ended {
        Ended::WallTime => {
            return Ok((
                RunStatus::TimeLimitExceeded,
                None,
                Some(wall_time_message()),
            ));
        }
        Ended::Exit(code) => (Some(code), None),
        Ended::Start(e) if memory_refused => (None, Some(format!("{e}"))),
        Ended::Start(e) => return Err(SandboxError::Host(format!("{e:#}"))),
        Ended::Guest(e) => {
            if let Some(exit) = e.downcast_ref::<I32Exit>() {
                (Some(exit.0), None)
            } else {
                match e.downcast_ref::<Trap>() {
                    Some(Trap::Interrupt) => {
                        return Ok((
                            RunStatus::TimeLimitExceeded,
                            None,
                            Some(wall_time_message()),
                        ));
                    }
                    Some(Trap::OutOfFuel) => {
                        return Ok((
                            RunStatus::TimeLimitExceeded,
                            None,
                            Some(format!(
                                "instruction budget of {} exhausted",
                                limits.fuel.unwrap_or(u64::MAX)
                            )),
                        ));
                    }
                    Some(trap) => (None, Some(format!("trap: {trap}"))),
                    None => (None, Some(format!("{e}"))),
                }
            }
        }
    };
    let failed = exit_code != Some(0);
    if memory_refused && failed {
        return Ok((
            RunStatus::MemoryLimitExceeded,
            exit_code,
            Some(format!(
                "memory limit of {} bytes exceeded",
                limits.memory_bytes
            )),
        ));
    }
    Ok(match exit_code {
        Some(code) => (RunStatus::Finished, Some(code), None),
        None => (RunStatus::RuntimeError, None, trap_message),
    })
}

fn refused(message: &str) -> RunOutcome {
    RunOutcome {
        status: RunStatus::RuntimeError,
        exit_code: None,
        stdout: Vec::new(),
        stderr: Vec::new(),
        wall_time: Duration::ZERO,
        fuel_used: 0,
        peak_memory_bytes: 0,
        message: Some(message.to_owned()),
    }
}

fn build_engine(slots: u32) -> Result<Engine, SandboxError> {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(slots)
        .total_core_instances(slots * CORE_INSTANCES_PER_RUN)
        .total_memories(slots * MEMORIES_PER_RUN)
        .total_tables(slots * TABLES_PER_RUN)
        .max_core_instances_per_component(CORE_INSTANCES_PER_RUN)
        .max_memories_per_component(MEMORIES_PER_RUN)
        .max_tables_per_component(TABLES_PER_RUN)
        .total_stacks(slots)
        .max_memory_size(MAX_MEMORY_BYTES as usize)
        .table_elements(1 << 16)
        .max_core_instance_size(8 << 20)
        // Pages a run touched stay mapped and are copied back from the
        // memory image (or zeroed) for the next run of the slot instead of
        // being returned to the kernel; the PAGEMAP_SCAN ioctl (Linux 6.7+)
        // finds the pages a run touched, so only those are reset. Without
        // it every run reset all 16 MiB of the Python snapshot's memory:
        // p50 5.9 ms before, 3.2 ms after on the development machine.
        .linear_memory_keep_resident(16 << 20)
        .pagemap_scan(wasmtime::Enabled::Auto);
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .wasm_component_model_async(true)
        .epoch_interruption(true)
        .consume_fuel(true)
        .max_wasm_stack(WASM_STACK_BYTES)
        .async_stack_size(WASM_STACK_BYTES + (1 << 20))
        .memory_init_cow(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config).map_err(|e| SandboxError::Engine(format!("{e:#}")))
}
