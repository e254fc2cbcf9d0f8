//! Built-in model presets. `tiny` is the embedded default: a small
//! Llama with a byte-level tokenizer, random-initialised, sized so that SFT
//! and GRPO run in minutes on two cores.

use std::path::Path;

use candle_core::Device;
use serde_json::json;

use crate::folder::{FolderError, ModelFiles};
use crate::model::{ModelConfig, ModelType, Policy};
use crate::tokenizer::byte_tokenizer_json;

/// End of text (and padding).
pub const EOS: &str = "<|endoftext|>";
/// Tags of the R1 template, one token each.
pub const TAGS: [&str; 4] = ["<think>", "</think>", "<answer>", "</answer>"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// ~2.9 M parameters: 4 layers, hidden 256, 8 heads (4 KV), byte vocabulary.
    Tiny,
    /// ~0.4 M parameters, for tests.
    Micro,
}

impl Preset {
    pub fn config(self) -> ModelConfig {
        let vocab_size = 256 + 1 + TAGS.len();
        let (hidden, intermediate, layers, heads, kv) = match self {
            Preset::Tiny => (256, 688, 4, 8, 4),
            Preset::Micro => (64, 176, 2, 4, 2),
        };
        ModelConfig {
            model_type: ModelType::Llama,
            architectures: vec!["LlamaForCausalLM".into()],
            vocab_size,
            hidden_size: hidden,
            intermediate_size: intermediate,
            num_hidden_layers: layers,
            num_attention_heads: heads,
            num_key_value_heads: Some(kv),
            head_dim: None,
            rms_norm_eps: 1e-5,
            rope_theta: 10_000.0,
            max_position_embeddings: 1024,
            tie_word_embeddings: true,
            attention_bias: false,
            bos_token_id: Some(256),
            eos_token_id: Some(256),
            pad_token_id: Some(256),
            hidden_act: "silu".into(),
            torch_dtype: "float32".into(),
        }
    }

    pub fn files(self) -> ModelFiles {
        ModelFiles {
            config: self.config(),
            tokenizer_json: byte_tokenizer_json(&[EOS], &TAGS),
            tokenizer_config: json!({
                "tokenizer_class": "PreTrainedTokenizerFast",
                "bos_token": EOS,
                "eos_token": EOS,
                "pad_token": EOS,
                "model_max_length": 1024,
                "add_bos_token": false,
                "chat_template": "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}",
            }),
        }
    }
}

/// Writes a random-initialised model of the preset to `dir`.
pub fn init(preset: Preset, dir: &Path, seed: u64) -> Result<Policy, FolderError> {
    let files = preset.files();
    let policy = Policy::random(&files.config, seed, &Device::Cpu)?;
    files.write(dir, &policy)?;
    Ok(policy)
}
