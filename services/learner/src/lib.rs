//! The learner: owns the policy weights. It trains them (cold-start SFT,
//! GRPO) with candle, writes checkpoints and publishes each new policy
//! version to the samplers.
//!
//! # Layout
//!
//! * [`model`] — the Llama-family decoder, its config and its weights on disk.
//! * [`tokenizer`] — `tokenizer.json`, special tokens, chat template.
//! * [`template`] — the R1 prompt template.
//! * [`folder`] — model folders in Hugging Face layout, written atomically.
//! * [`preset`] — built-in models (`tiny`, the embedded default).
//! * [`import`] — GGUF (SmolLM2-135M) to a Hugging Face folder.
//! * [`train`] — batches, losses (SFT, GRPO), AdamW, the training step.
//! * [`checkpoint`] — atomic checkpoints and exact resumption.
//! * [`tasks`] — the synthetic arithmetic task and its cold-start solutions.
//! * [`run_config`] — the run configuration file.
//! * [`rl`] — the GRPO stage against the queue: feeding, collecting, training, publishing.
//! * [`service`] — the `r1-learner` process (gRPC `Learner`, admin, GRPO loop).
pub mod checkpoint;
pub mod folder;
pub mod import;
pub mod model;
pub mod preset;
pub mod rl;
pub mod run_config;
pub mod service;
pub mod tasks;
pub mod template;
pub mod tokenizer;
pub mod train;
