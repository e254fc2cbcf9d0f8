//! The policy model: configuration, the decoder, and its weights on disk.

// Declared first: the kernels of the modules below use its macro.
#[macro_use]
mod simd;

pub mod attention;
pub mod blas;
pub mod config;
mod fastmath;
pub mod llama;
pub mod ops;
pub mod weights;

pub use config::{ModelConfig, ModelType};
pub use llama::Llama;
pub use weights::{Policy, load_policy, save_safetensors};
