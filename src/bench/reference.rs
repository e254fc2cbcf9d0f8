//! Reference measurements taken by the repo's Python scripts (scripts/*.py),
//! each printing one JSON object, and the venvs they run in.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

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

/// A reference script kept running to take measurements on request: it
/// prints one JSON object when ready, then one per command line it reads.
/// Interleaving its measurements with ours exposes both to the same machine
/// (other load, thermal and frequency drift) instead of to two stretches of
/// time minutes apart.
pub struct ScriptSession {
    script: PathBuf,
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl ScriptSession {
    /// Starts `scripts/<name>` with `python` and waits for it to be ready.
    pub fn start<I, S>(python: &Path, name: &str, args: I) -> anyhow::Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let script = repo_path("scripts").join(name);
        let mut child = Command::new(python)
            .arg(&script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("running {}", python.display()))?;
        let (Some(input), Some(output)) = (child.stdin.take(), child.stdout.take()) else {
            anyhow::bail!("{}: no pipes to the script", script.display())
        };
        let mut session = Self {
            script,
            child,
            input,
            output: BufReader::new(output),
        };
        // Its first object says it is ready; nothing in it is needed here.
        session.read()?;
        Ok(session)
    }

    /// Sends `command` and returns the object the script answers with.
    pub fn request(&mut self, command: &str) -> anyhow::Result<ScriptOutput> {
        writeln!(self.input, "{command}")
            .and_then(|()| self.input.flush())
            .with_context(|| format!("{} stopped reading", self.script.display()))?;
        self.read()
    }

    /// The next JSON object the script prints; lines that are not one
    /// (libraries' messages) are skipped.
    fn read(&mut self) -> anyhow::Result<ScriptOutput> {
        let mut line = String::new();
        loop {
            line.clear();
            if self.output.read_line(&mut line)? == 0 {
                let status = self.child.wait()?;
                anyhow::bail!(
                    "{} exited ({status}) without answering",
                    self.script.display()
                )
            }
            if let Ok(value @ serde_json::Value::Object(_)) = serde_json::from_str(line.trim()) {
                if let Some(error) = value.get("error") {
                    anyhow::bail!("{}: {error}", self.script.display())
                }
                return Ok(ScriptOutput {
                    script: self.script.clone(),
                    value,
                });
            }
        }
    }
}

impl Drop for ScriptSession {
    fn drop(&mut self) {
        // Nothing in the script needs a clean exit.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
