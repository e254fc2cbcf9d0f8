//! Importing a llama.cpp GGUF file (SmolLM2-135M-Instruct, Q4_1/Q8_0) as a
//! Hugging Face model folder: dequantised f32 weights with HF names and
//! HF's rotary layout, a `tokenizer.json` rebuilt from the GGUF vocabulary,
//! and the chat template.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use serde_json::{Value, json};

use crate::folder::ModelFiles;
use crate::model::{ModelConfig, ModelType, Policy};

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{path}: {message}")]
    Gguf { path: String, message: String },
    #[error("{0}")]
    Model(String),
}

type Result<T, E = ImportError> = std::result::Result<T, E>;

/// llama.cpp stores Q and K rows interleaved for its RoPE; Hugging Face
/// keeps the two halves of each head apart. `w: [heads·head_dim, in]`.
pub fn unpermute_qk(w: &Tensor, heads: usize) -> candle_core::Result<Tensor> {
    let (out, input) = w.dims2()?;
    let head_dim = out / heads;
    w.reshape((heads, head_dim / 2, 2, input))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((out, input))
}

fn hf_name(gguf: &str) -> Option<String> {
    if let Some(rest) = gguf.strip_prefix("blk.") {
        let (layer, part) = rest.split_once('.')?;
        let target = match part {
            "attn_q.weight" => "self_attn.q_proj.weight",
            "attn_k.weight" => "self_attn.k_proj.weight",
            "attn_v.weight" => "self_attn.v_proj.weight",
            "attn_output.weight" => "self_attn.o_proj.weight",
            "ffn_gate.weight" => "mlp.gate_proj.weight",
            "ffn_up.weight" => "mlp.up_proj.weight",
            "ffn_down.weight" => "mlp.down_proj.weight",
            "attn_norm.weight" => "input_layernorm.weight",
            "ffn_norm.weight" => "post_attention_layernorm.weight",
            _ => return None,
        };
        return Some(format!("model.layers.{layer}.{target}"));
    }
    Some(
        match gguf {
            "token_embd.weight" => "model.embed_tokens.weight",
            "output_norm.weight" => "model.norm.weight",
            "output.weight" => "lm_head.weight",
            _ => return None,
        }
        .to_owned(),
    )
}

/// Reads a Llama GGUF and writes it to `out` as a Hugging Face folder.
pub fn import_gguf(gguf: &Path, out: &Path) -> Result<ModelConfig> {
    let bad = |message: String| ImportError::Gguf {
        path: gguf.display().to_string(),
        message,
    };
    let mut reader = BufReader::new(File::open(gguf).map_err(|e| bad(e.to_string()))?);
    let content = gguf_file::Content::read(&mut reader).map_err(|e| bad(e.to_string()))?;
    let meta = |key: &str| {
        content
            .metadata
            .get(key)
            .ok_or_else(|| bad(format!("metadata {key} is missing")))
    };
    let u = |key: &str| -> Result<usize> {
        Ok(meta(key)?
            .to_u32()
            .map_err(|e| bad(format!("{key}: {e}")))? as usize)
    };
    let f = |key: &str| -> Result<f64> {
        Ok(f64::from(
            meta(key)?
                .to_f32()
                .map_err(|e| bad(format!("{key}: {e}")))?,
        ))
    };
    let arch = meta("general.architecture")?
        .to_string()
        .map_err(|e| bad(e.to_string()))?
        .clone();
    if arch != "llama" {
        return Err(bad(format!(
            "architecture {arch:?} is not supported (llama)"
        )));
    }
    let heads = u("llama.attention.head_count")?;
    let kv_heads = u("llama.attention.head_count_kv")?;
    let tokens: Vec<String> = meta("tokenizer.ggml.tokens")?
        .to_vec()
        .map_err(|e| bad(e.to_string()))?
        .iter()
        .map(|v| v.to_string().cloned().unwrap_or_default())
        .collect();
    let tied = !content.tensor_infos.contains_key("output.weight");
    let bos = u("tokenizer.ggml.bos_token_id").ok().map(|v| v as u32);
    let eos = u("tokenizer.ggml.eos_token_id").ok().map(|v| v as u32);
    let config = ModelConfig {
        model_type: ModelType::Llama,
        architectures: vec!["LlamaForCausalLM".into()],
        vocab_size: tokens.len(),
        hidden_size: u("llama.embedding_length")?,
        intermediate_size: u("llama.feed_forward_length")?,
        num_hidden_layers: u("llama.block_count")?,
        num_attention_heads: heads,
        num_key_value_heads: Some(kv_heads),
        head_dim: None,
        rms_norm_eps: f("llama.attention.layer_norm_rms_epsilon")?,
        rope_theta: f("llama.rope.freq_base").unwrap_or(10_000.0),
        max_position_embeddings: u("llama.context_length").unwrap_or(2048),
        tie_word_embeddings: tied,
        attention_bias: false,
        bos_token_id: bos,
        eos_token_id: eos,
        pad_token_id: u("tokenizer.ggml.padding_token_id")
            .ok()
            .map(|v| v as u32)
            .or(eos),
        hidden_act: "silu".into(),
        torch_dtype: "float32".into(),
    };
    config.validate().map_err(ImportError::Model)?;

    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    let names: Vec<String> = content.tensor_infos.keys().cloned().collect();
    for name in names {
        let Some(target) = hf_name(&name) else {
            continue;
        };
        let q = content
            .tensor(&mut reader, &name, &Device::Cpu)
            .map_err(|e| bad(format!("tensor {name}: {e}")))?;
        let mut t = q
            .dequantize(&Device::Cpu)
            .map_err(|e| bad(format!("tensor {name}: {e}")))?;
        if name.ends_with("attn_q.weight") {
            t = unpermute_qk(&t, heads).map_err(|e| bad(e.to_string()))?;
        } else if name.ends_with("attn_k.weight") {
            t = unpermute_qk(&t, kv_heads).map_err(|e| bad(e.to_string()))?;
        }
        tensors.insert(target, t);
    }
    let policy =
        Policy::random(&config, 0, &Device::Cpu).map_err(|e| ImportError::Model(e.to_string()))?;
    policy
        .assign(&tensors, &gguf.display().to_string())
        .map_err(|e| ImportError::Model(e.to_string()))?;

    let files = ModelFiles {
        config: config.clone(),
        tokenizer_json: tokenizer_json(&content, &tokens).map_err(bad)?,
        tokenizer_config: tokenizer_config(&content, &tokens, bos, eos),
    };
    files
        .write(out, &policy)
        .map_err(|e| ImportError::Model(e.to_string()))?;
    Ok(config)
}

/// Byte-level BPE as the GGUF describes it (`gpt2` model), with the
/// per-digit split SmolLM2 uses.
fn tokenizer_json(content: &gguf_file::Content, tokens: &[String]) -> Result<Value, String> {
    let model = content
        .metadata
        .get("tokenizer.ggml.model")
        .and_then(|v| v.to_string().ok())
        .cloned()
        .unwrap_or_default();
    if model != "gpt2" {
        return Err(format!("tokenizer model {model:?} is not supported (gpt2)"));
    }
    let merges: Vec<Value> = content
        .metadata
        .get("tokenizer.ggml.merges")
        .and_then(|v| v.to_vec().ok())
        .map(|m| {
            m.iter()
                .filter_map(|v| v.to_string().ok())
                .map(|s| json!(s))
                .collect()
        })
        .unwrap_or_default();
    let types: Vec<i32> = content
        .metadata
        .get("tokenizer.ggml.token_type")
        .and_then(|v| v.to_vec().ok())
        .map(|t| t.iter().map(|v| v.to_i32().unwrap_or(1)).collect())
        .unwrap_or_default();
    let vocab: serde_json::Map<String, Value> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), json!(i)))
        .collect();
    // Control tokens (type 3) are special.
    let added: Vec<Value> = types
        .iter()
        .enumerate()
        .filter(|(_, t)| **t == 3)
        .map(|(i, _)| {
            json!({"id": i, "content": tokens[i], "single_word": false, "lstrip": false, "rstrip": false,
                   "normalized": false, "special": true})
        })
        .collect();
    Ok(json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}
        ]},
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
                  "ignore_merges": false, "vocab": vocab, "merges": merges}
    }))
}

fn tokenizer_config(
    content: &gguf_file::Content,
    tokens: &[String],
    bos: Option<u32>,
    eos: Option<u32>,
) -> Value {
    let name = |id: Option<u32>| id.and_then(|i| tokens.get(i as usize)).cloned();
    let template = content
        .metadata
        .get("tokenizer.chat_template")
        .and_then(|v| v.to_string().ok())
        .cloned();
    json!({
        "tokenizer_class": "GPT2Tokenizer",
        "bos_token": name(bos),
        "eos_token": name(eos),
        "pad_token": name(eos),
        "add_bos_token": false,
        "model_max_length": 8192,
        "chat_template": template,
    })
}
