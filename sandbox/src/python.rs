//! The Python interpreter: CPython 3.14 as the `eryx-runtime` component,
//! pre-initialised once — interpreter started, the modules programs use
//! imported, our runner (`runner.py`) defined — and snapshotted with
//! wasmtime-wizer, so a run starts from initialised memory instead of paying
//! CPython's start-up. The snapshot's machine code is cached on disk under a
//! key of everything that went into it and the engine's compatibility hash;
//! a process that finds it maps it in milliseconds.
//!
//! The standard library comes from `scripts/fetch-artefacts wasm`; runs see
//! it read-only at `/python-stdlib` for modules the snapshot did not import.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::language::Language;
use crate::modules::{ModuleError, engine_fingerprint, store_compiled};

/// The version of `eryx-runtime` linked in (Cargo.toml pins it).
const ERYX_RUNTIME_VERSION: &str = "0.8.0";

/// The sha256 of the standard library archive (fetch-artefacts pins it and
/// writes it into the folder it unpacks).
const STDLIB_SHA256: &str = "f8f5c3593e49a697a545b0eadf70172ca2ad888748588d4300fef1a918048ff8";

/// Where runs see the standard library.
pub const STDLIB_GUEST_PATH: &str = "/python-stdlib";

/// The runner baked into the snapshot; `python_host` calls its `_r1_run`.
const RUNNER: &str = include_str!("runner.py");

/// Modules imported into the snapshot: what programs of coding tasks import
/// most (a module not listed costs tens of milliseconds at its first import).
const PRELOADED_MODULES: &[&str] = &[
    "array",
    "bisect",
    "collections",
    "copy",
    "dataclasses",
    "datetime",
    "decimal",
    "fractions",
    "functools",
    "heapq",
    "itertools",
    "json",
    "math",
    "operator",
    "random",
    "re",
    "statistics",
    "string",
    "time",
    "typing",
];

/// The standard library folder and the compiled snapshot, ready to link.
#[derive(Debug)]
pub struct PythonRuntime {
    pub component: Component,
    pub stdlib_dir: PathBuf,
}

impl PythonRuntime {
    /// Loads the snapshot's machine code, building the snapshot first when no
    /// cached one fits (tens of seconds, once per machine and engine build).
    pub fn load(
        engine: &Engine,
        artefacts_dir: &Path,
        compiled_dir: &Path,
    ) -> Result<Self, ModuleError> {
        let stdlib_dir = artefacts_dir.join("python-stdlib");
        check_stdlib(&stdlib_dir)?;
        let key = snapshot_key();
        let compiled = compiled_dir.join(format!(
            "python-{}-{:016x}.cwasm",
            &key[..16],
            engine_fingerprint(engine)
        ));
        if let Some(component) = deserialize(engine, &compiled) {
            return Ok(Self {
                component,
                stdlib_dir,
            });
        }
        // Processes starting together build the snapshot once: the others
        // wait for the lock and then find the file.
        fs::create_dir_all(compiled_dir).map_err(|source| ModuleError::Read {
            path: compiled_dir.to_owned(),
            source,
        })?;
        let lock_path = compiled_dir.join("python.lock");
        let lock = File::create(&lock_path)
            .and_then(|file| file.lock().map(|()| file))
            .map_err(|source| ModuleError::Read {
                path: lock_path.clone(),
                source,
            })?;
        if let Some(component) = deserialize(engine, &compiled) {
            return Ok(Self {
                component,
                stdlib_dir,
            });
        }
        tracing::info!(
            "building the Python snapshot once (interpreter initialised, common modules imported); later starts reuse it"
        );
        let snapshot = pre_initialize(&stdlib_dir)?;
        let component = Component::new(engine, &snapshot).map_err(|e| ModuleError::Compile {
            path: compiled.clone(),
            message: format!("{e:#}"),
        })?;
        let serialized = component.serialize().map_err(|e| ModuleError::Compile {
            path: compiled.clone(),
            message: format!("{e:#}"),
        });
        match serialized.map(|bytes| store_compiled(&bytes, &compiled)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(path = %compiled.display(), error = %e, "cannot cache the Python snapshot")
            }
            Err(e) => tracing::warn!(error = %e, "cannot serialise the Python snapshot"),
        }
        drop(lock);
        Ok(Self {
            component,
            stdlib_dir,
        })
    }
}

/// The folder fetch-artefacts unpacked, with the archive hash it recorded.
fn check_stdlib(stdlib_dir: &Path) -> Result<(), ModuleError> {
    let stamp_path = stdlib_dir.join(".r1-sha256");
    let stamp = fs::read_to_string(&stamp_path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => ModuleError::Missing {
            language: Language::Python,
            path: stdlib_dir.to_owned(),
        },
        _ => ModuleError::Read {
            path: stamp_path.clone(),
            source,
        },
    })?;
    if stamp.trim() != STDLIB_SHA256 {
        return Err(ModuleError::Checksum {
            language: Language::Python,
            path: stdlib_dir.to_owned(),
            actual: stamp.trim().to_owned(),
            expected: STDLIB_SHA256,
        });
    }
    Ok(())
}

/// Everything the snapshot is made of; a change to any part builds anew.
fn snapshot_key() -> String {
    let mut hasher = Sha256::new();
    for part in [ERYX_RUNTIME_VERSION, STDLIB_SHA256, RUNNER] {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    for module in PRELOADED_MODULES {
        hasher.update(module.as_bytes());
        hasher.update([0]);
    }
    hex::encode(hasher.finalize())
}

fn deserialize(engine: &Engine, compiled: &Path) -> Option<Component> {
    if !compiled.is_file() {
        return None;
    }
    // SAFETY: the file is machine code this module serialised for an engine
    // with the same compatibility hash (part of its name), in a folder only
    // r1 writes to; it is never taken from elsewhere.
    #[allow(unsafe_code)]
    let loaded = unsafe { Component::deserialize_file(engine, compiled) };
    match loaded {
        Ok(component) => Some(component),
        Err(e) => {
            tracing::warn!(path = %compiled.display(), error = %e, "cached Python snapshot is unusable; building it again");
            None
        }
    }
}

/// Links the component, starts CPython in it, imports the preloaded modules,
/// runs the runner's definitions and snapshots the memory. eryx's pipeline
/// is async and makes its own engine; it runs on a thread of its own so that
/// a caller inside a tokio runtime can wait for it.
fn pre_initialize(stdlib_dir: &Path) -> Result<Vec<u8>, ModuleError> {
    let options = eryx_runtime::preinit::PreInitOptions::new(stdlib_dir)
        .imports(PRELOADED_MODULES.iter().copied())
        .setup_code(RUNNER);
    let failed = |message: String| ModuleError::Compile {
        path: stdlib_dir.to_owned(),
        message: format!("pre-initialising the Python snapshot: {message}"),
    };
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| failed(e.to_string()))?;
                runtime
                    .block_on(eryx_runtime::preinit::pre_initialize_with_options(options))
                    .map_err(|e| failed(format!("{e:#}")))
            })
            .join()
            .map_err(|_| failed("the pre-initialisation thread panicked".into()))?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_standard_library_names_the_script_that_fetches_it() {
        let dir = tempfile::tempdir().unwrap();
        let err = PythonRuntime::load(&Engine::default(), dir.path(), dir.path()).unwrap_err();
        assert!(matches!(err, ModuleError::Missing { .. }), "{err}");
        assert!(err.to_string().contains("scripts/fetch-artefacts wasm"));
    }

    #[test]
    fn a_standard_library_from_another_archive_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let stdlib = dir.path().join("python-stdlib");
        fs::create_dir_all(&stdlib).unwrap();
        fs::write(stdlib.join(".r1-sha256"), "0000\n").unwrap();
        let err = PythonRuntime::load(&Engine::default(), dir.path(), dir.path()).unwrap_err();
        assert!(matches!(err, ModuleError::Checksum { .. }), "{err}");
    }
}
