//! The interpreter modules: read from the artefact folder filled by
//! `scripts/fetch-artefacts`, checked against their pinned sha256, and
//! compiled once. Machine code is cached on disk keyed by the module's hash
//! and the engine's compatibility hash, so a start costs a file map rather
//! than a 15-second compile.

use std::collections::hash_map::DefaultHasher;
use std::fs;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::{Engine, Module};

use crate::language::Language;

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

/// The pinned sha256 of each interpreter (see NOTES.md and fetch-artefacts).
pub fn pinned_sha256(language: Language) -> &'static str {
    match language {
        Language::Python => "e5dc5a398b07b54ea8fdb503bf68fb583d533f10ec3f930963e02b9505f7a763",
        Language::JavaScript => "f9742952f9989b1558c4a79bedfb351d6ca33ff22a41e886517cae5196e6d783",
    }
}

/// Where interpreters come from and where compiled code is kept.
#[derive(Debug, Clone)]
pub struct Interpreters {
    /// Holds `python.wasm` and `quickjs.wasm`.
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

    /// Loads one interpreter, compiling it only when no cached code fits.
    pub fn load(&self, engine: &Engine, language: Language) -> Result<Module, ModuleError> {
        let path = self.artefacts_dir.join(language.module_file());
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
        let expected = pinned_sha256(language);
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
        if let Err(e) = store_compiled(&module, &compiled) {
            tracing::warn!(path = %compiled.display(), error = %e, "cannot cache compiled interpreter");
        }
        Ok(module)
    }
}

fn engine_fingerprint(engine: &Engine) -> u64 {
    let mut hasher = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.finish()
}

/// Writes next to the target and renames, so readers never see half a file.
fn store_compiled(module: &Module, path: &Path) -> std::io::Result<()> {
    let bytes = module
        .serialize()
        .map_err(|e| std::io::Error::other(format!("{e:#}")))?;
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
        let err = interpreters
            .load(&Engine::default(), Language::Python)
            .unwrap_err();
        assert!(matches!(err, ModuleError::Missing { .. }));
        assert!(err.to_string().contains("scripts/fetch-artefacts wasm"));
    }

    #[test]
    fn a_file_with_the_wrong_checksum_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let interpreters = Interpreters::in_cache(dir.path());
        fs::create_dir_all(&interpreters.artefacts_dir).unwrap();
        fs::write(interpreters.artefacts_dir.join("quickjs.wasm"), b"\0asm").unwrap();
        let err = interpreters
            .load(&Engine::default(), Language::JavaScript)
            .unwrap_err();
        assert!(matches!(err, ModuleError::Checksum { .. }), "{err}");
    }
}
