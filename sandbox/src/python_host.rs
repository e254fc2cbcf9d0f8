//! The host side of the Python component. WASI 0.2 gives the guest the run's
//! stdin and capped output pipes and the read-only standard library, and
//! nothing else; the imports of eryx's world are answered so that the guest
//! has no callbacks, no tracing and no network. A run is one call of the
//! component's `execute` export on a fresh instance, which calls the
//! snapshot's runner with the program.

use std::path::PathBuf;

use wasmtime::component::{
    Accessor, ComponentType, InstancePre, Lift, Linker, Lower, ResourceTable, Val,
};
use wasmtime::{Engine, Store};
use wasmtime_wasi::p2::pipe::MemoryInputPipe;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::pipe::CappedPipe;
use crate::python::{PythonRuntime, STDLIB_GUEST_PATH};
use crate::sandbox::SandboxError;
use crate::store::{Ended, RunState};

/// The stream id on which `runner.py` reports the exit status.
const EXIT_STATUS_STREAM: u32 = 100;

/// What the host keeps for one Python run.
pub struct PythonGuest {
    ctx: WasiCtx,
    table: ResourceTable,
    /// The status the runner reported, also for `os._exit` (whose WASI exit
    /// keeps only zero or non-zero).
    exit_status: Option<i32>,
}

impl WasiView for RunState<PythonGuest> {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.guest.ctx,
            table: &mut self.guest.table,
        }
    }
}

/// The linked snapshot, instantiated afresh for every run.
pub struct PythonInterpreter {
    pre: InstancePre<RunState<PythonGuest>>,
    stdlib_dir: PathBuf,
}

impl PythonInterpreter {
    pub fn new(engine: &Engine, runtime: PythonRuntime) -> Result<Self, SandboxError> {
        let engine_error =
            |e: wasmtime::Error| SandboxError::Engine(format!("linking python: {e:#}"));
        let mut linker: Linker<RunState<PythonGuest>> = Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(engine_error)?;
        add_eryx_imports(&mut linker).map_err(engine_error)?;
        let pre = linker
            .instantiate_pre(&runtime.component)
            .map_err(engine_error)?;
        Ok(Self {
            pre,
            stdlib_dir: runtime.stdlib_dir,
        })
    }

    /// The guest state of one run: its streams and the standard library.
    pub fn guest(
        &self,
        stdin: Vec<u8>,
        stdout: &CappedPipe,
        stderr: &CappedPipe,
    ) -> Result<PythonGuest, SandboxError> {
        let mut builder = WasiCtxBuilder::new();
        builder
            .stdin(MemoryInputPipe::new(stdin))
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .preopened_dir(&self.stdlib_dir, STDLIB_GUEST_PATH, FsPerms::ReadOnly)
            .map_err(|e| {
                SandboxError::Host(format!(
                    "{}: cannot open the Python standard library: {e:#}",
                    self.stdlib_dir.display()
                ))
            })?;
        Ok(PythonGuest {
            ctx: builder.build(),
            table: ResourceTable::new(),
            exit_status: None,
        })
    }

    /// Runs `source` in a fresh instance; the exit status on success.
    pub async fn call(
        &self,
        store: &mut Store<RunState<PythonGuest>>,
        source: &str,
    ) -> Result<i32, Ended> {
        let instance = self
            .pre
            .instantiate_async(&mut *store)
            .await
            .map_err(Ended::Start)?;
        let execute = instance.get_func(&mut *store, "execute").ok_or_else(|| {
            Ended::Start(wasmtime::Error::msg("the component exports no execute"))
        })?;
        // A JSON string is a valid Python string literal.
        let literal = serde_json::to_string(source).expect("a string always serialises");
        let code = format!("_r1_run({literal})");
        let mut results = [Val::Bool(false)];
        let called = execute
            .call_async(&mut *store, &[Val::String(code)], &mut results)
            .await;
        let reported = store.data().guest.exit_status;
        match called {
            Err(e) => match reported {
                Some(status) if e.downcast_ref::<I32Exit>().is_some() => Ok(status),
                _ => Err(Ended::Guest(e)),
            },
            Ok(()) => match (&results[0], reported) {
                (Val::Result(Ok(_)), Some(status)) => Ok(status),
                (Val::Result(Err(Some(message))), _) => Err(Ended::Guest(wasmtime::Error::msg(
                    format!("the runner failed: {message:?}"),
                ))),
                _ => Err(Ended::Guest(wasmtime::Error::msg(
                    "the program ended without an exit status",
                ))),
            },
        }
    }
}

/// `callback-info` of eryx's world; the sandbox offers none.
#[derive(ComponentType, Lower, Lift)]
#[component(record)]
struct CallbackInfo {
    name: String,
    description: String,
    #[component(name = "parameters-schema-json")]
    parameters_schema_json: String,
}

/// `execution-options` of eryx's world.
#[derive(ComponentType, Lower, Lift)]
#[component(record)]
struct ExecutionOptions {
    #[component(name = "python-tracing")]
    python_tracing: bool,
    #[component(name = "reuse-empty-callbacks")]
    reuse_empty_callbacks: bool,
}

/// `eryx:net/tcp`'s error; every connection attempt gets `not-permitted`.
#[derive(ComponentType, Lower, Lift)]
#[component(variant)]
enum TcpError {
    #[component(name = "connection-refused")]
    ConnectionRefused,
    #[component(name = "connection-reset")]
    ConnectionReset,
    #[component(name = "timed-out")]
    TimedOut,
    #[component(name = "host-not-found")]
    HostNotFound,
    #[component(name = "io-error")]
    IoError(String),
    #[component(name = "not-permitted")]
    NotPermitted(String),
    #[component(name = "invalid-handle")]
    InvalidHandle,
}

/// `eryx:net/tls`'s error.
#[derive(ComponentType, Lower, Lift)]
#[component(variant)]
enum TlsError {
    #[component(name = "tcp")]
    Tcp(TcpError),
    #[component(name = "handshake-failed")]
    HandshakeFailed(String),
    #[component(name = "certificate-error")]
    CertificateError(String),
    #[component(name = "invalid-handle")]
    InvalidHandle,
}

const NO_NETWORK: &str = "the sandbox has no network";

fn no_tcp<T>() -> wasmtime::Result<(Result<T, TcpError>,)> {
    Ok((Err(TcpError::NotPermitted(NO_NETWORK.into())),))
}

fn no_tls<T>() -> wasmtime::Result<(Result<T, TlsError>,)> {
    Ok((Err(TlsError::Tcp(TcpError::NotPermitted(
        NO_NETWORK.into(),
    ))),))
}

type State = RunState<PythonGuest>;

fn add_eryx_imports(linker: &mut Linker<State>) -> wasmtime::Result<()> {
    let mut root = linker.root();
    root.func_wrap_concurrent(
        "invoke",
        |_: &Accessor<State>, (_name, _arguments): (String, String)| {
            Box::pin(async {
                Ok((Result::<String, String>::Err(
                    "the sandbox offers no callbacks".into(),
                ),))
            })
        },
    )?;
    root.func_wrap("list-callbacks", |_, (): ()| {
        Ok((Vec::<CallbackInfo>::new(),))
    })?;
    root.func_wrap("get-execution-options", |_, (): ()| {
        Ok((ExecutionOptions {
            python_tracing: false,
            reuse_empty_callbacks: true,
        },))
    })?;
    root.func_wrap(
        "report-trace",
        |_, (_line, _event, _context): (u32, String, String)| Ok(()),
    )?;
    // The runner writes to file descriptors 1 and 2 (the capped pipes);
    // eryx's own output capture only reports what is written outside it.
    root.func_wrap(
        "report-output",
        |mut store, (stream, data): (u32, Vec<u8>)| {
            if stream == EXIT_STATUS_STREAM {
                store.data_mut().guest.exit_status = std::str::from_utf8(&data)
                    .ok()
                    .and_then(|text| text.parse().ok());
            }
            Ok(())
        },
    )?;

    let mut tcp = linker.instance("eryx:net/tcp@0.1.0")?;
    tcp.func_wrap(
        "connect",
        |_, (_host, _port, _timeout): (String, u16, u32)| no_tcp::<u32>(),
    )?;
    tcp.func_wrap("read", |_, (_handle, _len, _timeout): (u32, u32, u32)| {
        no_tcp::<Vec<u8>>()
    })?;
    tcp.func_wrap(
        "write",
        |_, (_handle, _timeout, _data): (u32, u32, Vec<u8>)| no_tcp::<u32>(),
    )?;
    tcp.func_wrap("close", |_, (_handle,): (u32,)| Ok(()))?;

    let mut tls = linker.instance("eryx:net/tls@0.1.0")?;
    tls.func_wrap(
        "upgrade",
        |_, (_tcp, _host, _timeout): (u32, String, u32)| no_tls::<u32>(),
    )?;
    tls.func_wrap("read", |_, (_handle, _len, _timeout): (u32, u32, u32)| {
        no_tls::<Vec<u8>>()
    })?;
    tls.func_wrap(
        "write",
        |_, (_handle, _timeout, _data): (u32, u32, Vec<u8>)| no_tls::<u32>(),
    )?;
    tls.func_wrap("close", |_, (_handle,): (u32,)| Ok(()))?;
    Ok(())
}
