//! Exact k-NN table in prior space and the guided positive sampler. Plain functions over tensors
//! so they can be benchmarked alone.
mod build;
mod cache;
pub mod cli;
mod sampler;
mod table;

pub use build::{build_table, pairwise_gemm};
pub use cache::{cached_table, table_cached, table_path};
pub use sampler::{PositiveSampler, SplitMix64, positive_purity};
pub use table::NeighbourTable;
