//! The sampling engine: mistral.rs serving one policy version from a local
//! model folder, fully offline, with our tokenizer and our sampler.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use mistralrs::core::{NormalLoaderType, RequestMessage, TokenSource};
use mistralrs::{
    Constraint, GgufModelBuilder, ModelDType, NormalRequest, Request, Response, SamplingParams,
    StopTokens, TextModelBuilder,
};
use r1_learner::model::{ModelConfig, ModelType};
use r1_learner::tokenizer::TextTokenizer;
use r1_proto::domain::{Completion, FinishReason};

use crate::sampler::{Sampling, SeededSampler};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("model folder {dir}: {file} is missing")]
    MissingFile { dir: String, file: String },
    #[error("model folder {dir}: {message}")]
    Invalid { dir: String, message: String },
    #[error("mistral.rs: {0}")]
    Engine(String),
    #[error("the prompt is empty")]
    EmptyPrompt,
    #[error("the prompt has {prompt} tokens; with {new} new tokens that exceeds the model's {max}")]
    TooLong {
        prompt: usize,
        new: usize,
        max: usize,
    },
}

type Result<T, E = EngineError> = std::result::Result<T, E>;

/// How a group is sampled.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateParams {
    pub temperature: f64,
    pub top_p: f64,
    pub top_k: Option<usize>,
    pub max_new_tokens: usize,
    pub stop: Vec<String>,
    /// Completion `i` is sampled with `seed + i`.
    pub seed: u64,
}

/// One loaded policy.
pub struct Engine {
    model: mistralrs::Model,
    tokenizer: TextTokenizer,
    config: ModelConfig,
    dir: PathBuf,
    version: u64,
    next_request: AtomicUsize,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("dir", &self.dir)
            .field("version", &self.version)
            .finish()
    }
}

fn require(dir: &Path, file: &str) -> Result<()> {
    if dir.join(file).is_file() {
        Ok(())
    } else {
        Err(EngineError::MissingFile {
            dir: dir.display().to_string(),
            file: file.to_owned(),
        })
    }
}

impl Engine {
    /// Loads `dir` (config.json, tokenizer.json, tokenizer_config.json,
    /// generation_config.json, model.safetensors or a sharded index) as
    /// policy `version`.
    pub async fn load(dir: &Path, version: u64) -> Result<Self> {
        for file in [
            "config.json",
            "tokenizer.json",
            "tokenizer_config.json",
            "generation_config.json",
        ] {
            require(dir, file)?;
        }
        if !dir.join("model.safetensors").is_file() {
            require(dir, "model.safetensors.index.json").map_err(|_| EngineError::MissingFile {
                dir: dir.display().to_string(),
                file: "model.safetensors".into(),
            })?;
        }
        let invalid = |message: String| EngineError::Invalid {
            dir: dir.display().to_string(),
            message,
        };
        let config =
            ModelConfig::load(&dir.join("config.json")).map_err(|e| invalid(e.to_string()))?;
        let tokenizer = TextTokenizer::load(dir).map_err(|e| invalid(e.to_string()))?;
        let loader = match config.model_type {
            ModelType::Llama => NormalLoaderType::Llama,
            ModelType::Qwen2 => NormalLoaderType::Qwen2,
            ModelType::Qwen3 => NormalLoaderType::Qwen3,
        };
        let model = TextModelBuilder::new(dir.display().to_string())
            .with_token_source(TokenSource::None)
            .with_dtype(ModelDType::F32)
            .with_force_cpu()
            .with_loader_type(loader)
            .with_tokenizer_json(dir.join("tokenizer.json").display().to_string())
            .with_max_num_seqs(256)
            // mistral.rs 0.8.1's prefix cache hands back wrong KV on CPU to
            // requests admitted while others decode (batched greedy evaluation
            // scored 71 % where one request at a time scored 87.5 %; the test
            // `requests_arriving_while_others_decode_…` fails with it on).
            .with_prefix_cache_n(None)
            .build()
            .await
            .map_err(|e| EngineError::Engine(format!("loading {}: {e:#}", dir.display())))?;
        Ok(Self {
            model,
            tokenizer,
            config,
            dir: dir.to_path_buf(),
            version,
            next_request: AtomicUsize::new(1),
        })
    }

    /// Loads quantized weights from a GGUF file, with the tokenizer and config
    /// of the model folder `tokenizer_dir` (e.g. the same model imported by
    /// `r1 model import-smollm2`), as policy `version`. For sampling and
    /// evaluation; the learner trains f32 safetensors.
    pub async fn load_gguf(gguf: &Path, tokenizer_dir: &Path, version: u64) -> Result<Self> {
        for file in ["config.json", "tokenizer.json"] {
            require(tokenizer_dir, file)?;
        }
        let missing = || EngineError::MissingFile {
            dir: gguf
                .parent()
                .unwrap_or(Path::new("."))
                .display()
                .to_string(),
            file: gguf
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        if !gguf.is_file() {
            return Err(missing());
        }
        let invalid = |message: String| EngineError::Invalid {
            dir: tokenizer_dir.display().to_string(),
            message,
        };
        let config = ModelConfig::load(&tokenizer_dir.join("config.json"))
            .map_err(|e| invalid(e.to_string()))?;
        let tokenizer = TextTokenizer::load(tokenizer_dir).map_err(|e| invalid(e.to_string()))?;
        let folder = gguf.parent().ok_or_else(missing)?;
        let file = gguf.file_name().ok_or_else(missing)?;
        let model = GgufModelBuilder::new(
            folder.display().to_string(),
            vec![file.to_string_lossy().into_owned()],
        )
        .with_token_source(TokenSource::None)
        .with_force_cpu()
        .with_tokenizer_json(tokenizer_dir.join("tokenizer.json").display().to_string())
        .with_max_num_seqs(256)
        .with_prefix_cache_n(None)
        .build()
        .await
        .map_err(|e| EngineError::Engine(format!("loading {}: {e:#}", gguf.display())))?;
        Ok(Self {
            model,
            tokenizer,
            config,
            dir: gguf.to_path_buf(),
            version,
            next_request: AtomicUsize::new(1),
        })
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn tokenizer(&self) -> &TextTokenizer {
        &self.tokenizer
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// Samples `n` completions of `prompt` (token ids), concurrently so the
    /// engine batches them.
    pub async fn generate(
        &self,
        prompt: &[u32],
        n: usize,
        params: &GenerateParams,
    ) -> Result<Vec<Completion>> {
        if prompt.is_empty() {
            return Err(EngineError::EmptyPrompt);
        }
        let max = self.config.max_position_embeddings;
        if prompt.len() + params.max_new_tokens > max {
            return Err(EngineError::TooLong {
                prompt: prompt.len(),
                new: params.max_new_tokens,
                max,
            });
        }
        let samples =
            (0..n).map(|i| self.sample_one(prompt, params, params.seed.wrapping_add(i as u64)));
        futures::future::try_join_all(samples).await
    }

    async fn sample_one(
        &self,
        prompt: &[u32],
        params: &GenerateParams,
        seed: u64,
    ) -> Result<Completion> {
        let sampling = Sampling {
            temperature: params.temperature,
            top_p: params.top_p,
            top_k: params.top_k,
            seed,
        };
        let (processor, record) = SeededSampler::new(sampling, prompt.len());
        let (tx, mut rx) = tokio::sync::mpsc::channel(4);
        let mut sampling_params = SamplingParams::neutral();
        sampling_params.max_len = Some(params.max_new_tokens);
        sampling_params.n_choices = 1;
        if !params.stop.is_empty() {
            sampling_params.stop_toks = Some(StopTokens::Seqs(params.stop.clone()));
        }
        let request = NormalRequest {
            messages: RequestMessage::CompletionTokens(prompt.to_vec()),
            sampling_params,
            response: tx,
            return_logprobs: false,
            is_streaming: false,
            id: self.next_request.fetch_add(1, Ordering::Relaxed),
            constraint: Constraint::None,
            suffix: None,
            tools: None,
            tool_choice: None,
            logits_processors: Some(vec![processor]),
            return_raw_logits: false,
            web_search_options: None,
            model_id: None,
            truncate_sequence: false,
        };
        let sender = self
            .model
            .inner()
            .get_sender(None)
            .map_err(|e| EngineError::Engine(e.to_string()))?;
        sender
            .send(Request::Normal(Box::new(request)))
            .await
            .map_err(|_| EngineError::Engine("the engine stopped".into()))?;
        let engine_reason = loop {
            match rx.recv().await {
                Some(Response::CompletionDone(done)) => {
                    break done
                        .choices
                        .first()
                        .map(|c| c.finish_reason.clone())
                        .unwrap_or_default();
                }
                Some(Response::CompletionModelError(e, _)) | Some(Response::ModelError(e, _)) => {
                    return Err(EngineError::Engine(e));
                }
                Some(Response::InternalError(e)) | Some(Response::ValidationError(e)) => {
                    return Err(EngineError::Engine(e.to_string()));
                }
                Some(_) => continue,
                None => return Err(EngineError::Engine("the engine dropped the request".into())),
            }
        };
        let chosen: Vec<(u32, f32)> = record
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map_while(|x| *x)
            .collect();
        self.finish(chosen, params, &engine_reason)
    }

    /// Cuts the sampled tokens at end-of-sequence, the first stop string or
    /// the token budget, and decodes them.
    fn finish(
        &self,
        mut chosen: Vec<(u32, f32)>,
        params: &GenerateParams,
        engine_reason: &str,
    ) -> Result<Completion> {
        let mut reason = if engine_reason == "length" {
            FinishReason::Length
        } else {
            FinishReason::Stop
        };
        if let Some(end) = chosen
            .iter()
            .position(|(id, _)| *id == self.tokenizer.eos())
        {
            chosen.truncate(end + 1);
            reason = FinishReason::Stop;
        } else if chosen.len() >= params.max_new_tokens {
            chosen.truncate(params.max_new_tokens);
            reason = FinishReason::Length;
        }
        let ids: Vec<u32> = chosen.iter().map(|(id, _)| *id).collect();
        let decode = |ids: &[u32]| {
            self.tokenizer
                .decode(ids)
                .map_err(|e| EngineError::Engine(e.to_string()))
        };
        let mut text = decode(&ids)?;
        if let Some((stop_at, stop)) = params
            .stop
            .iter()
            .filter_map(|s| text.find(s.as_str()).map(|i| (i + s.len(), s)))
            .min_by_key(|(end, _)| *end)
        {
            // Keep the fewest tokens whose text reaches the end of the stop string.
            let keep = (1..=ids.len())
                .find(|&k| {
                    decode(&ids[..k]).is_ok_and(|t| t.len() >= stop_at && t.contains(stop.as_str()))
                })
                .unwrap_or(ids.len());
            chosen.truncate(keep);
            text.truncate(stop_at);
            reason = FinishReason::Stop;
        }
        Ok(Completion {
            text,
            token_ids: chosen.iter().map(|(id, _)| *id).collect(),
            logprobs: chosen.iter().map(|(_, lp)| *lp).collect(),
            finish_reason: reason,
        })
    }
}
