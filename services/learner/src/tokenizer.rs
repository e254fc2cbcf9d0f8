//! Tokenisation shared by the learner and the sampler: a `tokenizer.json`
//! (the `tokenizers` crate), the special tokens from `tokenizer_config.json`,
//! and the chat template.

use std::path::Path;

use serde_json::{Value, json};

#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("tokenizer: {0}")]
    Tokenize(String),
    #[error("chat template: {0}")]
    Template(String),
}

type Result<T, E = TokenizerError> = std::result::Result<T, E>;

/// A chat message for the chat template.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

pub struct TextTokenizer {
    inner: tokenizers::Tokenizer,
    eos: u32,
    pad: u32,
    bos: Option<u32>,
    bos_text: Option<String>,
    eos_text: String,
    chat_template: Option<String>,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer")
            .field("vocab", &self.inner.get_vocab_size(true))
            .field("eos", &self.eos)
            .finish()
    }
}

fn token_name(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

impl TextTokenizer {
    /// Reads `tokenizer.json` and `tokenizer_config.json` from a model folder.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join("tokenizer.json");
        let inner = tokenizers::Tokenizer::from_file(&path).map_err(|e| TokenizerError::File {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let config_path = dir.join("tokenizer_config.json");
        let config: Value = match std::fs::read_to_string(&config_path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| TokenizerError::File {
                path: config_path.display().to_string(),
                message: e.to_string(),
            })?,
            Err(_) => Value::Null,
        };
        let eos_text = token_name(&config["eos_token"]).ok_or_else(|| TokenizerError::File {
            path: config_path.display().to_string(),
            message: "eos_token is not set".into(),
        })?;
        let id = |name: &str| {
            inner.token_to_id(name).ok_or_else(|| TokenizerError::File {
                path: path.display().to_string(),
                message: format!("token {name:?} is not in the vocabulary"),
            })
        };
        let eos = id(&eos_text)?;
        let pad = match token_name(&config["pad_token"]) {
            Some(p) => id(&p)?,
            None => eos,
        };
        let bos_text = token_name(&config["bos_token"]);
        let bos = bos_text.as_deref().map(id).transpose()?;
        Ok(Self {
            inner,
            eos,
            pad,
            bos,
            bos_text,
            eos_text,
            chat_template: config["chat_template"].as_str().map(str::to_owned),
        })
    }

    pub fn eos(&self) -> u32 {
        self.eos
    }

    pub fn pad(&self) -> u32 {
        self.pad
    }

    pub fn bos(&self) -> Option<u32> {
        self.bos
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// Token ids of `text`, without adding special tokens.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        Ok(self
            .inner
            .encode_fast(text, false)
            .map_err(|e| TokenizerError::Tokenize(e.to_string()))?
            .get_ids()
            .to_vec())
    }

    /// Text of `ids`; special tokens are dropped.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner
            .decode(ids, true)
            .map_err(|e| TokenizerError::Tokenize(e.to_string()))
    }

    /// Renders messages with the model's chat template.
    pub fn apply_chat_template(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
    ) -> Result<String> {
        let template = self
            .chat_template
            .as_deref()
            .ok_or_else(|| TokenizerError::Template("the model has no chat template".into()))?;
        let mut env = minijinja::Environment::new();
        env.add_template("chat", template)
            .map_err(|e| TokenizerError::Template(e.to_string()))?;
        env.get_template("chat")
            .and_then(|t| {
                t.render(minijinja::context! {
                    messages => messages,
                    add_generation_prompt => add_generation_prompt,
                    bos_token => self.bos_text.clone().unwrap_or_default(),
                    eos_token => self.eos_text.clone(),
                })
            })
            .map_err(|e| TokenizerError::Template(e.to_string()))
    }
}

/// GPT-2's byte-to-character table used by byte-level BPE.
pub fn bytes_to_unicode() -> Vec<char> {
    let mut table = vec!['\0'; 256];
    let mut extra = 0u32;
    for b in 0..256u32 {
        let printable =
            (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
        table[b as usize] = if printable {
            char::from_u32(b).unwrap_or('?')
        } else {
            extra += 1;
            char::from_u32(255 + extra).unwrap_or('?')
        };
    }
    table
}

/// A byte-level BPE `tokenizer.json` with one token per byte (no merges)
/// and the given added tokens after them: ids 0–255 are bytes, then
/// `special` (skipped when decoding), then `words` (kept).
pub fn byte_tokenizer_json(special: &[&str], words: &[&str]) -> Value {
    let table = bytes_to_unicode();
    let vocab: serde_json::Map<String, Value> = table
        .iter()
        .enumerate()
        .map(|(i, c)| (c.to_string(), json!(i)))
        .collect();
    let mut added = Vec::new();
    for (next, (token, is_special)) in (256..).zip(
        special
            .iter()
            .map(|t| (*t, true))
            .chain(words.iter().map(|t| (*t, false))),
    ) {
        added.push(json!({
            "id": next, "content": token, "single_word": false, "lstrip": false,
            "rstrip": false, "normalized": false, "special": is_special
        }));
    }
    let mut vocab = vocab;
    for a in &added {
        vocab.insert(
            a["content"].as_str().unwrap_or_default().to_owned(),
            a["id"].clone(),
        );
    }
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
            "ignore_merges": false, "vocab": vocab, "merges": []
        }
    })
}
