//! Optimizers and learning-rate schedules, below everything that trains something: the SSL
//! training loop (`train`), the offline linear evaluation (`eval`) and the execution choices
//! (`exec`, which picks the LARS kernel). LARS/SGD/AdamW with solo-learn's parameter groups, as
//! a flat tensor update on GPUs (`flat_lars`) and two fused host passes on CPUs (`host_lars`);
//! pl_bolts' linear-warmup cosine schedule (`schedule`).
pub mod flat_lars;
mod host_lars;
pub mod optimizer;
pub mod schedule;

pub use optimizer::{Optimizer, ParamGroup};
pub use schedule::WarmupCosine;
