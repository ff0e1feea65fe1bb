//! Exact k-NN table in prior space and the guided positive sampler. Plain functions over tensors
//! so they can be benchmarked alone.
mod build;
mod cache;
pub mod cli;
mod radius;
mod sampler;
mod table;

pub use build::{build_table, build_with_distances, pairwise_gemm};
pub use cache::{cached_radius, cached_table, radius_cached, radius_path, table_cached, table_path};
pub use radius::{Tau, within};
pub use sampler::{PositiveSampler, SplitMix64, positive_purity};
pub use table::{CandidateCounts, NeighbourTable};
