//! Fetching a policy version's files from the learner over gRPC
//! (`Learner.FetchWeights`), for replicas without a shared volume.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use r1_proto::domain::PolicyVersion;
use r1_proto::pb;
use r1_proto::pb::learner_client::LearnerClient;
use tokio::io::AsyncWriteExt;

/// Downloads version `version.number` into `cache/v{N}` (atomically) and
/// returns the folder. A folder already there is reused.
pub async fn fetch(version: &PolicyVersion, cache: &Path) -> anyhow::Result<PathBuf> {
    let dir = cache.join(format!("v{}", version.number));
    if dir.join("config.json").is_file() {
        return Ok(dir);
    }
    let endpoint = version.weights_uri.replacen("grpc://", "http://", 1);
    let mut client = LearnerClient::connect(endpoint.clone())
        .await
        .with_context(|| format!("connecting to the learner at {endpoint}"))?
        .max_decoding_message_size(64 << 20);
    let mut stream = client
        .fetch_weights(pb::FetchWeightsRequest {
            version: version.number,
        })
        .await?
        .into_inner();
    let staging = cache.join(format!(".v{}.tmp-{}", version.number, std::process::id()));
    tokio::fs::create_dir_all(&staging).await?;
    let mut open: Option<(String, tokio::fs::File, u64)> = None;
    while let Some(chunk) = stream.message().await? {
        if chunk.file.contains('/') || chunk.file.contains("..") || chunk.file.is_empty() {
            bail!("the learner sent an unsafe file name {:?}", chunk.file);
        }
        if open.as_ref().is_none_or(|(name, _, _)| *name != chunk.file) {
            if let Some((_, mut file, _)) = open.take() {
                file.flush().await?;
            }
            let file = tokio::fs::File::create(staging.join(&chunk.file)).await?;
            open = Some((chunk.file.clone(), file, 0));
        }
        if let Some((_, file, written)) = open.as_mut() {
            if chunk.offset != *written {
                bail!(
                    "chunk of {} at offset {} after {written} bytes",
                    chunk.file,
                    chunk.offset
                );
            }
            file.write_all(&chunk.data).await?;
            *written += chunk.data.len() as u64;
        }
    }
    if let Some((_, mut file, _)) = open.take() {
        file.flush().await?;
    }
    tokio::fs::rename(&staging, &dir)
        .await
        .with_context(|| format!("moving fetched weights to {}", dir.display()))?;
    Ok(dir)
}
