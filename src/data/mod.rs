//! Datasets: loaders for the formats researchers have, all giving a `Dataset`
//! (uint8 images [N,C,H,W], int64 labels, class names).
mod dataset;

pub use dataset::{Dataset, Split};
pub mod cli;

/// Placeholder until the loaders land (replaced by the data branch).
pub fn load(spec: &crate::config::DatasetSpec, split: Split, _cache_dir: &std::path::Path) -> anyhow::Result<Dataset> {
    anyhow::bail!("dataset loaders are being written ({} {})", spec.path.display(), split.as_str())
}
