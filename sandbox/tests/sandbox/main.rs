//! The sandbox against real interpreters: behaviour, limits and the attack
//! suite. Needs `scripts/fetch-artefacts wasm` (run by `scripts/setup`).

mod attacks;
mod programs;

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use r1_sandbox::{Language, Limits, Program, RunOutcome, Sandbox, SandboxConfig};

/// The repository's cache unless `R1_CACHE_DIR` names another.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("R1_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.r1-cache"))
}

/// One sandbox for the whole test binary, as a service would hold it.
pub fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| {
        Sandbox::new(SandboxConfig::new(cache_dir())).unwrap_or_else(|e| {
            panic!(
                "{e}\n(the sandbox tests need the interpreters: run scripts/fetch-artefacts wasm)"
            )
        })
    })
}

pub fn limits(wall_ms: u64) -> Limits {
    Limits {
        wall_time: Duration::from_millis(wall_ms),
        ..Limits::default()
    }
}

pub fn run_with(language: Language, source: &str, stdin: &str, limits: Limits) -> RunOutcome {
    sandbox()
        .run(Program {
            language,
            source: source.to_owned(),
            stdin: stdin.as_bytes().to_vec(),
            limits,
        })
        .expect("guest behaviour is an outcome, never a host error")
}

pub fn python(source: &str, stdin: &str) -> RunOutcome {
    run_with(Language::Python, source, stdin, Limits::default())
}

pub fn javascript(source: &str, stdin: &str) -> RunOutcome {
    run_with(Language::JavaScript, source, stdin, Limits::default())
}

/// After an attack the sandbox still runs an ordinary program correctly.
pub fn assert_healthy() {
    let outcome = python("print(int(input()) * 2)", "21\n");
    assert!(outcome.succeeded(), "{outcome:?}");
    assert_eq!(outcome.stdout_text(), "42\n");
}
