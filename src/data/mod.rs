//! Datasets: loaders for the formats researchers have, all giving a `Dataset`
//! (uint8 images [N,C,H,W], int64 labels, class names).
//!
//! `load` is the one entry point the rest of the crate uses: it resolves the format and the
//! split's name in the files (`dataset.train_split` / `dataset.test_split`), serves the split from
//! the decoded cache (decoding and caching it on a miss, through the decode-time resize and crop
//! of `dataset.resize_shorter_side` / `dataset.center_crop`) and applies the size limits.
mod aircraft;
mod cache;
mod cifar_bin;
pub mod cli;
mod dataset;
pub mod download;
mod format;
mod idx;
mod image_folder;
mod images;
mod mnist_csv;
mod npz;
pub mod resize;

pub use cache::cache_path;
pub use dataset::{Dataset, Split, SplitName};
pub use format::resolve_format;
pub use resize::Geometry;

use crate::config::{DataFormat, DatasetSpec};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

/// What to decode from a dataset's files: which split, through which decode-time geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    pub split: SplitName,
    pub geometry: Geometry,
}

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
    let request = request(spec, format, split)?;
    let full = cache::load_or_decode(&spec.path, format, &request, cache_dir).with_context(|| {
        format!("loading the {} split (`{}` in the files) of dataset `{}` ({})", split.as_str(), request.split, spec.name, spec.path.display())
    })?;
    let limit = match split {
        Split::Train => spec.train_limit,
        Split::Test => spec.test_limit,
    };
    Ok(match limit {
        Some(n) => full.subset_balanced(n),
        None => full,
    })
}

/// The format's name as a spec spells it (`cifar10-bin`).
pub fn format_name(format: DataFormat) -> String {
    serde_json::to_value(format).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_else(|| format!("{format:?}"))
}

/// The splits a (resolved) format's files hold.
pub fn splits_of(format: DataFormat) -> &'static [SplitName] {
    match format {
        DataFormat::MedmnistNpz => &npz::SPLITS,
        DataFormat::FgvcAircraft => &[SplitName::Train, SplitName::Val, SplitName::Trainval, SplitName::Test],
        _ => &[SplitName::Train, SplitName::Test],
    }
}

/// The split of the files a role reads: the spec's `train_split` / `test_split`, else the
/// format's default (`train` / `test`; FGVC-Aircraft trains on `trainval`, as the authors' test
/// setting). A split the format does not have is an error naming the field and the format's splits.
pub fn split_name(spec: &DatasetSpec, format: DataFormat, split: Split) -> Result<SplitName> {
    let asked = match split {
        Split::Train => spec.train_split.as_deref(),
        Split::Test => spec.test_split.as_deref(),
    };
    let Some(asked) = asked else {
        return Ok(match (format, split) {
            (DataFormat::FgvcAircraft, Split::Train) => SplitName::Trainval,
            _ => split.into(),
        });
    };
    let have = splits_of(format);
    let list = have.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
    match SplitName::parse(asked) {
        Some(name) if have.contains(&name) => Ok(name),
        Some(_) => bail!("field `{}`: the {} format has no `{asked}` split; its splits: {list}", split.field(), format_name(format)),
        None => bail!("field `{}`: `{asked}` is not a split; the {} format's splits: {list}", split.field(), format_name(format)),
    }
}

/// The decode request of a spec's split (format already resolved).
pub fn request(spec: &DatasetSpec, format: DataFormat, split: Split) -> Result<Request> {
    Ok(Request { split: split_name(spec, format, split)?, geometry: Geometry::from_spec(spec) })
}

/// Decodes one split straight from the source files, without the cache: the format's own split
/// for the role, images as stored.
pub fn decode(path: &Path, format: DataFormat, split: Split) -> Result<Dataset> {
    let format = resolve_format(format, path)?;
    let spec = DatasetSpec { path: path.to_path_buf(), format, ..DatasetSpec::default() };
    decode_request(path, format, &request(&spec, format, split)?)
}

/// Decodes one split as the spec describes it (split names, decode-time geometry), without the cache.
pub fn decode_spec(spec: &DatasetSpec, split: Split) -> Result<Dataset> {
    let format = resolve_format(spec.format, &spec.path)?;
    decode_request(&spec.path, format, &request(spec, format, split)?)
}

/// Decodes what `request` names. Formats stored as images (image folders, FGVC-Aircraft) resize
/// and crop each image as it is decoded; formats stored as arrays apply the same geometry to the
/// decoded images.
pub fn decode_request(path: &Path, format: DataFormat, request: &Request) -> Result<Dataset> {
    let format = resolve_format(format, path)?;
    let split = request.split;
    if !splits_of(format).contains(&split) {
        let list = splits_of(format).iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
        bail!("the {} format has no `{split}` split; its splits: {list}", format_name(format));
    }
    // Formats with only train and test read them by role.
    let role = if split == SplitName::Test { Split::Test } else { Split::Train };
    let g = &request.geometry;
    let stored = match format {
        DataFormat::Auto => unreachable!("resolve_format never returns Auto"),
        DataFormat::ImageFolder => return image_folder::load(path, role, g),
        DataFormat::FgvcAircraft => return aircraft::load(path, split, g),
        DataFormat::Cifar10Bin => cifar_bin::load(path, cifar_bin::Variant::Cifar10, role)?,
        DataFormat::Cifar100Bin => cifar_bin::load(path, cifar_bin::Variant::Cifar100, role)?,
        DataFormat::Idx => idx::load(path, role)?,
        DataFormat::MnistCsv => mnist_csv::load(path, role)?,
        DataFormat::MedmnistNpz => npz::load(path, split)?,
    };
    images::apply_geometry(stored, g)
}

/// The files a split is decoded from: their sizes and modification times key the decoded cache.
fn source_files(path: &Path, format: DataFormat, split: SplitName) -> Result<Vec<PathBuf>> {
    let role = if split == SplitName::Test { Split::Test } else { Split::Train };
    Ok(match format {
        DataFormat::ImageFolder if path.is_dir() => image_folder::source_files(path)?,
        DataFormat::FgvcAircraft => aircraft::source_files(path, split)?,
        DataFormat::Cifar10Bin => cifar_bin::source_files(path, cifar_bin::Variant::Cifar10, role)?,
        DataFormat::Cifar100Bin => cifar_bin::source_files(path, cifar_bin::Variant::Cifar100, role)?,
        DataFormat::Idx => idx::source_files(path, role)?,
        _ => vec![path.to_path_buf()],
    })
}
