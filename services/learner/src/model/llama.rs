//! A Llama-family decoder (Llama, Qwen2, Qwen3) in candle, with Hugging Face
//! tensor names, for training: full-sequence forward passes with autograd.

use std::sync::Arc;

use candle_core::{D, DType, Device, Result, Tensor};
use candle_nn::{Init, VarBuilder};

use super::config::{ModelConfig, ModelType};

const INIT_STD: f64 = 0.02;

/// `x·Wᵀ (+ b)`. Projections of the same input (queries/keys/values,
/// gate/up) are stacked into one: their weights, each its own tensor under
/// its Hugging Face name, are concatenated along the output dimension for
/// one product whose output holds their results side by side. One product
/// of the stacked weights runs faster than several narrow ones, and its
/// backward pass yields the input's gradient at once instead of summing one
/// per projection.
#[derive(Debug, Clone)]
struct Linear {
    weights: Vec<Tensor>,
    biases: Vec<Tensor>,
}

/// The tensors as one, concatenated along the first dimension.
fn stack(parts: &[Tensor]) -> Result<Tensor> {
    match parts {
        [one] => Ok(one.clone()),
        _ => Tensor::cat(parts, 0),
    }
}

impl Linear {
    fn new(
        vb: &VarBuilder<'_>,
        name: &str,
        out_dim: usize,
        in_dim: usize,
        bias: bool,
    ) -> Result<Self> {
        Self::stacked(vb, &[(name, out_dim)], in_dim, bias)
    }

    /// The projections `parts` (name, output width) of one input, stacked.
    fn stacked(
        vb: &VarBuilder<'_>,
        parts: &[(&str, usize)],
        in_dim: usize,
        bias: bool,
    ) -> Result<Self> {
        let mut weights = Vec::with_capacity(parts.len());
        let mut biases = Vec::new();
        for &(name, out_dim) in parts {
            let vb = vb.pp(name);
            weights.push(vb.get_with_hints(
                (out_dim, in_dim),
                "weight",
                Init::Randn {
                    mean: 0.0,
                    stdev: INIT_STD,
                },
            )?);
            if bias {
                biases.push(vb.get_with_hints(out_dim, "bias", Init::Const(0.0))?);
            }
        }
        Ok(Self { weights, biases })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = super::blas::linear(x, &stack(&self.weights)?)?;
        if self.biases.is_empty() {
            Ok(y)
        } else {
            y.broadcast_add(&stack(&self.biases)?)
        }
    }
}

#[derive(Debug, Clone)]
struct RmsNorm {
    weight: Tensor,
    eps: f64,
}

impl RmsNorm {
    fn new(vb: &VarBuilder<'_>, name: &str, dim: usize, eps: f64) -> Result<Self> {
        Ok(Self {
            weight: vb
                .pp(name)
                .get_with_hints(dim, "weight", Init::Const(1.0))?,
            eps,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        super::ops::rms_norm(x, &self.weight, self.eps)
    }
}

#[derive(Debug, Clone)]
struct Attention {
    /// q, k and v stacked: `[B, T, (heads + 2·kv_heads)·D]`.
    qkv: Linear,
    o: Linear,
    q_norm: Option<RmsNorm>,
    k_norm: Option<RmsNorm>,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
}

#[derive(Debug, Clone)]
struct Mlp {
    /// gate and up stacked: `[…, 2·intermediate]`.
    gate_up: Linear,
    down: Linear,
}

#[derive(Debug, Clone)]
struct Block {
    attention: Attention,
    mlp: Mlp,
    input_norm: RmsNorm,
    post_attention_norm: RmsNorm,
}

/// Rotary embedding tables for positions `0..len`: `(cos, sin)`, each
/// `[len, head_dim]` (the two halves repeated, Hugging Face layout).
fn rope_tables(
    len: usize,
    head_dim: usize,
    theta: f64,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let half = head_dim / 2;
    let inv_freq: Vec<f32> = (0..half)
        .map(|i| (1.0 / theta.powf(2.0 * i as f64 / head_dim as f64)) as f32)
        .collect();
    let inv_freq = Tensor::from_vec(inv_freq, (1, half), device)?;
    let positions = Tensor::arange(0u32, len as u32, device)?
        .to_dtype(DType::F32)?
        .reshape((len, 1))?;
    let freqs = positions.broadcast_mul(&inv_freq)?;
    let freqs = Tensor::cat(&[&freqs, &freqs], 1)?;
    Ok((freqs.cos()?, freqs.sin()?))
}

/// How the tokens of a batch attend and where they sit: the rotary tables,
/// plus per-token positions for packed rows (each query then attends only
/// its own example).
struct Layout {
    tables: super::ops::RopeTables,
    positions: Option<Arc<[u32]>>,
}

impl Layout {
    /// `x·cos + rotate_half(x)·sin` for `x: [B, T, heads, head_dim]`.
    fn rope(&self, x: &Tensor) -> Result<Tensor> {
        super::ops::rope(x, &self.tables, self.positions.as_ref())
    }

    /// [`Self::rope`] of the first `rotated` heads; the others are copied.
    fn rope_leading_heads(&self, x: &Tensor, rotated: usize) -> Result<Tensor> {
        super::ops::rope_leading_heads(x, rotated, &self.tables, self.positions.as_ref())
    }
}

/// Several examples packed into each row of a batch: positions restart at
/// each example and attention stays within it, so every example is computed
/// as if it were alone in its row.
#[derive(Debug, Clone)]
pub struct Packing {
    /// `[B·T]`: each token's position within its example.
    positions: Arc<[u32]>,
}

impl Packing {
    /// `segments[b][t]`: which example token `t` of row `b` belongs to; the
    /// tokens of an example are contiguous (padding may form one more).
    pub fn new(segments: &[Vec<u32>]) -> Result<Self> {
        let b = segments.len();
        let t = segments.first().map_or(0, Vec::len);
        if segments.iter().any(|row| row.len() != t) {
            candle_core::bail!("packed rows must have the same length");
        }
        let mut positions = Vec::with_capacity(b * t);
        for row in segments {
            let mut position = 0;
            for (i, segment) in row.iter().enumerate() {
                position = if i > 0 && row[i - 1] == *segment {
                    position + 1
                } else {
                    0
                };
                positions.push(position);
            }
        }
        Ok(Self {
            positions: Arc::from(positions),
        })
    }
}

impl Attention {
    fn forward(&self, x: &Tensor, layout: &Layout) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let (h, kv, d) = (self.heads, self.kv_heads, self.head_dim);
        // [B, T, (h + 2·kv)·D] seen as [B, T, h + 2·kv, D] (a free reshape):
        // rotary embedding and attention work token-major on the stacked
        // heads, so the graph holds no transposes or slices.
        let qkv = self.qkv.forward(x)?.reshape((b, t, h + 2 * kv, d))?;
        let qkv = match (&self.q_norm, &self.k_norm) {
            (Some(qn), Some(kn)) => {
                // Qwen3 normalises each query and key head before rotating.
                let q = layout.rope(&qn.forward(&qkv.narrow(2, 0, h)?)?)?;
                let k = layout.rope(&kn.forward(&qkv.narrow(2, h, kv)?)?)?;
                Tensor::cat(&[&q, &k, &qkv.narrow(2, h + kv, kv)?], 2)?
            }
            _ => layout.rope_leading_heads(&qkv, h + kv)?,
        };
        let scale = 1.0 / (d as f64).sqrt();
        let out =
            super::attention::causal_attention(&qkv, (h, kv), scale, layout.positions.as_ref())?
                .reshape((b, t, h * d))?;
        self.o.forward(&out)
    }
}

impl Mlp {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.down
            .forward(&super::ops::swiglu(&self.gate_up.forward(x)?)?)
    }
}

/// The decoder. Its tensors live in the `VarBuilder`'s store (a `VarMap`
/// for training, plain tensors for a frozen reference).
#[derive(Debug, Clone)]
pub struct Llama {
    config: ModelConfig,
    embed: Tensor,
    blocks: Vec<Block>,
    norm: RmsNorm,
    lm_head: Tensor,
    device: Device,
}

impl Llama {
    pub fn new(config: &ModelConfig, vb: VarBuilder<'_>) -> Result<Self> {
        config.validate().map_err(candle_core::Error::msg)?;
        let h = config.hidden_size;
        let hd = config.head_dim();
        let heads = config.num_attention_heads;
        let kv_heads = config.kv_heads();
        let model = vb.pp("model");
        let embed = model.pp("embed_tokens").get_with_hints(
            (config.vocab_size, h),
            "weight",
            Init::Randn {
                mean: 0.0,
                stdev: INIT_STD,
            },
        )?;
        let mut blocks = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let layer = model.pp(format!("layers.{i}"));
            let attn = layer.pp("self_attn");
            let bias = config.qkv_bias();
            let qk_norm = config.model_type == ModelType::Qwen3;
            blocks.push(Block {
                attention: Attention {
                    qkv: Linear::stacked(
                        &attn,
                        &[
                            ("q_proj", heads * hd),
                            ("k_proj", kv_heads * hd),
                            ("v_proj", kv_heads * hd),
                        ],
                        h,
                        bias,
                    )?,
                    o: Linear::new(&attn, "o_proj", h, heads * hd, false)?,
                    q_norm: qk_norm
                        .then(|| RmsNorm::new(&attn, "q_norm", hd, config.rms_norm_eps))
                        .transpose()?,
                    k_norm: qk_norm
                        .then(|| RmsNorm::new(&attn, "k_norm", hd, config.rms_norm_eps))
                        .transpose()?,
                    heads,
                    kv_heads,
                    head_dim: hd,
                },
                mlp: Mlp {
                    gate_up: Linear::stacked(
                        &layer.pp("mlp"),
                        &[
                            ("gate_proj", config.intermediate_size),
                            ("up_proj", config.intermediate_size),
                        ],
                        h,
                        false,
                    )?,
                    down: Linear::new(
                        &layer.pp("mlp"),
                        "down_proj",
                        h,
                        config.intermediate_size,
                        false,
                    )?,
                },
                input_norm: RmsNorm::new(&layer, "input_layernorm", h, config.rms_norm_eps)?,
                post_attention_norm: RmsNorm::new(
                    &layer,
                    "post_attention_layernorm",
                    h,
                    config.rms_norm_eps,
                )?,
            });
        }
        let norm = RmsNorm::new(&model, "norm", h, config.rms_norm_eps)?;
        let lm_head = if config.tie_word_embeddings {
            embed.clone()
        } else {
            vb.pp("lm_head").get_with_hints(
                (config.vocab_size, h),
                "weight",
                Init::Randn {
                    mean: 0.0,
                    stdev: INIT_STD,
                },
            )?
        };
        Ok(Self {
            config: config.clone(),
            embed,
            blocks,
            norm,
            lm_head,
            device: vb.device().clone(),
        })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Final hidden states `[B, T, hidden]` for token ids `[B, T]` (u32),
    /// causal attention; sequences are right-padded.
    pub fn hidden(&self, ids: &Tensor) -> Result<Tensor> {
        self.hidden_with(ids, None)
    }

    /// [`Self::hidden`], or with several examples per row when `packing`.
    pub fn hidden_with(&self, ids: &Tensor, packing: Option<&Packing>) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let mut x = self.embed.index_select(&ids.flatten_all()?, 0)?.reshape((
            b,
            t,
            self.config.hidden_size,
        ))?;
        let (cos, sin) = rope_tables(
            t,
            self.config.head_dim(),
            self.config.rope_theta,
            &self.device,
        )?;
        let layout = Layout {
            tables: super::ops::RopeTables::new(&cos, &sin)?,
            positions: packing.map(|p| p.positions.clone()),
        };
        for block in &self.blocks {
            let attended = block
                .attention
                .forward(&block.input_norm.forward(&x)?, &layout)?;
            x = (x + attended)?;
            x = (&x + block.mlp.forward(&block.post_attention_norm.forward(&x)?)?)?;
        }
        self.norm.forward(&x)
    }

    /// Logits `[B, T, vocab]`.
    pub fn logits(&self, ids: &Tensor) -> Result<Tensor> {
        super::blas::linear(&self.hidden(ids)?, &self.lm_head)
    }

    /// `log p(ids[:, t+1] | ids[:, ..=t])` for every position: `[B, T-1]`.
    pub fn token_logprobs(&self, ids: &Tensor) -> Result<Tensor> {
        let (_, t) = ids.dims2()?;
        let logits = self.logits(&ids.narrow(1, 0, t - 1)?)?;
        let targets = ids.narrow(1, 1, t - 1)?.contiguous()?;
        token_logprobs_from_logits(&logits, &targets)
    }

    /// [`Self::token_logprobs`] of packed rows, `[B, T-1]`: position `j`
    /// holds `log p(ids[:, j+1] | its example's tokens up to j)`; where token
    /// `j+1` starts another example the value is meaningless and the caller
    /// masks it out.
    pub fn packed_token_logprobs(&self, ids: &Tensor, packing: &Packing) -> Result<Tensor> {
        let (_, t) = ids.dims2()?;
        let hidden = self.hidden_with(ids, Some(packing))?.narrow(1, 0, t - 1)?;
        let logits = super::blas::linear(&hidden, &self.lm_head)?;
        let targets = ids.narrow(1, 1, t - 1)?.contiguous()?;
        token_logprobs_from_logits(&logits, &targets)
    }

    /// Token log-probs (with gradients) and the entropy of each next-token
    /// distribution (without): both `[B, T-1]`.
    pub fn token_logprobs_and_entropy(&self, ids: &Tensor) -> Result<(Tensor, Tensor)> {
        let (_, t) = ids.dims2()?;
        let logits = self.logits(&ids.narrow(1, 0, t - 1)?)?;
        let targets = ids.narrow(1, 1, t - 1)?.contiguous()?;
        let logprobs = token_logprobs_from_logits(&logits, &targets)?;
        let detached = logits.detach();
        let lse = detached.log_sum_exp(D::Minus1)?;
        let probs = candle_nn::ops::softmax_last_dim(&detached)?;
        let expected = (probs * &detached)?.sum(D::Minus1)?;
        Ok((logprobs, (lse - expected)?))
    }
}

/// `log softmax(logits)[target]` for `logits: [B, T, V]`, `targets: [B, T]`.
pub fn token_logprobs_from_logits(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    super::ops::token_logprobs(logits, targets)
}
