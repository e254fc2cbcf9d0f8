//! Reference measurements taken by the repo's Python scripts (scripts/*.py),
//! each printing one JSON object, and the venvs they run in.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

/// The JSON object a reference script printed.
pub struct ScriptOutput {
    script: PathBuf,
    value: serde_json::Value,
}

impl ScriptOutput {
    pub fn parse<T: serde::de::DeserializeOwned>(self) -> anyhow::Result<T> {
        serde_json::from_value(self.value)
            .with_context(|| format!("unexpected output of {}", self.script.display()))
    }

    pub fn number(&self, key: &str) -> anyhow::Result<f64> {
        self.value[key]
            .as_f64()
            .with_context(|| format!("{} printed no {key}", self.script.display()))
    }
}

fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// Runs `scripts/<name>` with `python` and parses what it prints.
pub fn run_script<I, S>(python: &Path, name: &str, args: I) -> anyhow::Result<ScriptOutput>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let script = repo_path("scripts").join(name);
    let output = Command::new(python)
        .arg(&script)
        .args(args)
        .output()
        .with_context(|| format!("running {}", python.display()))?;
    anyhow::ensure!(
        output.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    // The JSON object is the last line; libraries may print before it.
    let stdout = String::from_utf8_lossy(&output.stdout);
    let value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .with_context(|| format!("{} printed {stdout:?}", script.display()))?;
    Ok(ScriptOutput { script, value })
}

/// The Python of a venv made by `scripts/<maker>` (which creates it on first
/// use and prints the interpreter's path).
pub fn venv_python(maker: &str) -> anyhow::Result<PathBuf> {
    let script = repo_path("scripts").join(maker);
    let output = Command::new(&script)
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    anyhow::ensure!(output.status.success(), "{} failed", script.display());
    Ok(PathBuf::from(String::from_utf8(output.stdout)?.trim()))
}

/// The number of threads references run with: every core, as ours do.
pub fn threads() -> anyhow::Result<String> {
    Ok(std::thread::available_parallelism()?.get().to_string())
}
