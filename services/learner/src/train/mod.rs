//! Training: batches, losses, the optimizer and the SFT/GRPO step.

pub mod batch;
pub mod config;
pub mod data;
pub mod loss;
pub mod optim;
pub mod trainer;

pub use batch::{Batch, PackedBatch, Sequence};
pub use config::{GrpoConfig, OldPolicy, OptimConfig, SftConfig};
pub use trainer::{GrpoStats, SftStats, TrainGroup, Trainer};
