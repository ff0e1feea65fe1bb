//! Datasets: loaders for the formats researchers have, all giving a `Dataset`
//! (uint8 images [N,C,H,W], int64 labels, class names).
//!
//! `load` is the one entry point the rest of the crate uses: it resolves the format, serves the
//! split from the decoded cache (decoding and caching it on a miss) and applies the size limits.
mod cache;
mod cifar_bin;
pub mod cli;
mod dataset;
pub mod download;
mod format;
mod idx;
mod image_folder;
mod mnist_csv;
mod npz;

pub use cache::cache_path;
pub use dataset::{Dataset, Split};
pub use format::resolve_format;

use crate::config::{DataFormat, DatasetSpec};
use anyhow::{Context, Result, bail};
use std::path::Path;

/// Loads one split as described by the spec (format auto-detection when `format: auto`), applies
/// `train_limit`/`test_limit` via Dataset::subset_balanced, using the decoded cache under
/// cache_dir/datasets/.
pub fn load(spec: &DatasetSpec, split: Split, cache_dir: &Path) -> Result<Dataset> {
    if !spec.path.exists() {
        bail!(
            "dataset `{}`: path {} does not exist (field `dataset.path`; for CIFAR-10 run `gps data download cifar10 --dir data`)",
            spec.name,
            spec.path.display()
        );
    }
    let format = resolve_format(spec.format, &spec.path)?;
    let full = cache::load_or_decode(&spec.path, format, split, cache_dir)
        .with_context(|| format!("loading the {} split of dataset `{}` ({})", split.as_str(), spec.name, spec.path.display()))?;
    let limit = match split {
        Split::Train => spec.train_limit,
        Split::Test => spec.test_limit,
    };
    Ok(match limit {
        Some(n) => full.subset_balanced(n),
        None => full,
    })
}

/// Decodes one split straight from the source files, without the cache.
pub fn decode(path: &Path, format: DataFormat, split: Split) -> Result<Dataset> {
    let format = resolve_format(format, path)?;
    match format {
        DataFormat::Auto => unreachable!("resolve_format never returns Auto"),
        DataFormat::ImageFolder => image_folder::load(path, split),
        DataFormat::Cifar10Bin => cifar_bin::load(path, cifar_bin::Variant::Cifar10, split),
        DataFormat::Cifar100Bin => cifar_bin::load(path, cifar_bin::Variant::Cifar100, split),
        DataFormat::Idx => idx::load(path, split),
        DataFormat::MnistCsv => mnist_csv::load(path, split),
        DataFormat::MedmnistNpz => npz::load(path, split),
    }
}

/// The files a split is decoded from: their sizes and modification times key the decoded cache.
fn source_files(path: &Path, format: DataFormat, split: Split) -> Result<Vec<std::path::PathBuf>> {
    Ok(match format {
        DataFormat::ImageFolder if path.is_dir() => image_folder::source_files(path)?,
        DataFormat::Cifar10Bin => cifar_bin::source_files(path, cifar_bin::Variant::Cifar10, split)?,
        DataFormat::Cifar100Bin => cifar_bin::source_files(path, cifar_bin::Variant::Cifar100, split)?,
        DataFormat::Idx => idx::source_files(path, split)?,
        _ => vec![path.to_path_buf()],
    })
}
