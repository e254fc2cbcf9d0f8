//! The interpreters: read from the artefact folder filled by
//! `scripts/fetch-artefacts`, checked against their pinned sha256, and
//! compiled once. Machine code is cached on disk keyed by the module's hash
//! (for Python, the snapshot's inputs, see [`crate::python`]) and the
//! engine's compatibility hash, so a start costs a file map rather than a
//! compile.

use std::collections::hash_map::DefaultHasher;
use std::fs;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::{Engine, Module};

use crate::language::Language;
use crate::python::PythonRuntime;

#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    #[error(
        "{path}: the {language} interpreter is missing; run `scripts/fetch-artefacts wasm` (or point R1_CACHE_DIR at a cache that has it)"
    )]
    Missing { language: Language, path: PathBuf },
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: sha256 is {actual}, the pinned {language} interpreter has {expected}")]
    Checksum {
        language: Language,
        path: PathBuf,
        actual: String,
        expected: &'static str,
    },
    #[error("{path}: cannot compile: {message}")]
    Compile { path: PathBuf, message: String },
}

/// The pinned sha256 of QuickJS (see NOTES.md and fetch-artefacts).
const QUICKJS_SHA256: &str = "f9742952f9989b1558c4a79bedfb351d6ca33ff22a41e886517cae5196e6d783";

/// QuickJS's file in the artefact folder.
const QUICKJS_FILE: &str = "quickjs.wasm";

/// Where interpreters come from and where compiled code is kept.
#[derive(Debug, Clone)]
pub struct Interpreters {
    /// Holds `quickjs.wasm` and the Python standard library.
    pub artefacts_dir: PathBuf,
    /// Precompiled machine code, one `.cwasm` per module and engine build.
    pub compiled_dir: PathBuf,
}

impl Interpreters {
    /// The layout of the r1 cache folder: `artefacts/` and `sandbox/`.
    pub fn in_cache(cache_dir: &Path) -> Self {
        Self {
            artefacts_dir: cache_dir.join("artefacts"),
            compiled_dir: cache_dir.join("sandbox"),
        }
    }

    /// Loads QuickJS, compiling it only when no cached code fits.
    pub fn load_quickjs(&self, engine: &Engine) -> Result<Module, ModuleError> {
        let language = Language::JavaScript;
        let path = self.artefacts_dir.join(QUICKJS_FILE);
        let bytes = fs::read(&path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => ModuleError::Missing {
                language,
                path: path.clone(),
            },
            _ => ModuleError::Read {
                path: path.clone(),
                source,
            },
        })?;
        let actual = hex::encode(Sha256::digest(&bytes));
        let expected = QUICKJS_SHA256;
        if actual != expected {
            return Err(ModuleError::Checksum {
                language,
                path,
                actual,
                expected,
            });
        }
        let compiled = self.compiled_dir.join(format!(
            "{}-{}-{:016x}.cwasm",
            language.name(),
            &actual[..16],
            engine_fingerprint(engine)
        ));
        if compiled.is_file() {
            // SAFETY: the file is machine code this function serialised for an
            // engine with the same compatibility hash (part of its name), in a
            // folder only r1 writes to; it is never taken from elsewhere.
            #[allow(unsafe_code)]
            let loaded = unsafe { Module::deserialize_file(engine, &compiled) };
            match loaded {
                Ok(module) => return Ok(module),
                Err(e) => tracing::warn!(
                    path = %compiled.display(),
                    error = %e,
                    "cached interpreter code is unusable; compiling again"
                ),
            }
        }
        tracing::info!(%language, "compiling the interpreter once; later starts reuse the machine code");
        let module = Module::new(engine, &bytes).map_err(|e| ModuleError::Compile {
            path: path.clone(),
            message: format!("{e:#}"),
        })?;
        let stored = module
            .serialize()
            .map_err(|e| std::io::Error::other(format!("{e:#}")))
            .and_then(|bytes| store_compiled(&bytes, &compiled));
        if let Err(e) = stored {
            tracing::warn!(path = %compiled.display(), error = %e, "cannot cache compiled interpreter");
        }
        Ok(module)
    }

    /// Loads the pre-initialised Python snapshot, building it when needed.
    pub fn load_python(&self, engine: &Engine) -> Result<PythonRuntime, ModuleError> {
        PythonRuntime::load(engine, &self.artefacts_dir, &self.compiled_dir)
    }
}

pub(crate) fn engine_fingerprint(engine: &Engine) -> u64 {
    let mut hasher = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.finish()
}

/// Writes next to the target and renames, so readers never see half a file.
pub(crate) fn store_compiled(bytes: &[u8], path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let partial = path.with_extension(format!("partial-{}", std::process::id()));
    fs::write(&partial, bytes)?;
    fs::rename(&partial, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_interpreter_names_the_script_that_fetches_it() {
        let dir = tempfile::tempdir().unwrap();
        let interpreters = Interpreters::in_cache(dir.path());
        let err = interpreters.load_quickjs(&Engine::default()).unwrap_err();
        assert!(matches!(err, ModuleError::Missing { .. }));
        assert!(err.to_string().contains("scripts/fetch-artefacts wasm"));
    }

    #[test]
    fn a_file_with_the_wrong_checksum_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let interpreters = Interpreters::in_cache(dir.path());
        fs::create_dir_all(&interpreters.artefacts_dir).unwrap();
        fs::write(interpreters.artefacts_dir.join("quickjs.wasm"), b"\0asm").unwrap();
        let err = interpreters.load_quickjs(&Engine::default()).unwrap_err();
        assert!(matches!(err, ModuleError::Checksum { .. }), "{err}");
    }
}
