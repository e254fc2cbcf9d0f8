//! `r1 run-code`: one SandboxFusion `run_code` request (JSON) on stdin, its
//! response on stdout — the sandbox without a server.

use std::io::Read;

use anyhow::{Context, anyhow};
use r1_reward::code::sandbox_fusion::{RunCodeRequest, RunCodeResponse};
use r1_sandbox::{Limits, Sandbox, SandboxConfig};

#[derive(Debug, clap::Args)]
pub struct RunCodeArgs {}

pub fn run(_args: RunCodeArgs) -> anyhow::Result<()> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("reading the request from stdin")?;
    let response = respond(&text)?;
    println!("{}", serde_json::to_string(&response)?);
    Ok(())
}

/// The response to one request; a bad request is an error naming where.
pub fn respond(request: &str) -> anyhow::Result<RunCodeResponse> {
    let request: RunCodeRequest = serde_json::from_str(request)
        .map_err(|e| anyhow!("stdin: line {}, column {}: {e}", e.line(), e.column()))?;
    let program = request
        .program(Limits::default())
        .map_err(|e| anyhow!("stdin: {e}"))?;
    let mut config = SandboxConfig::new(crate::model_cmd::cache_dir());
    config.languages = vec![program.language];
    config.max_concurrent_runs = 1;
    let sandbox = Sandbox::new(config)?;
    Ok(match sandbox.run(program) {
        Ok(outcome) => RunCodeResponse::from_outcome(&outcome),
        Err(e) => RunCodeResponse::sandbox_error(e.to_string()),
    })
}
