//! `format: auto`: recognise a dataset from what its path holds.

use crate::config::DataFormat;
use anyhow::{Result, bail};
use std::path::Path;

/// The concrete format of `path` (`format` itself unless it is `Auto`).
pub fn resolve_format(format: DataFormat, path: &Path) -> Result<DataFormat> {
    if format != DataFormat::Auto {
        return Ok(format);
    }
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("").to_ascii_lowercase();
    if path.is_file() {
        if name.ends_with(".zip") {
            return Ok(DataFormat::ImageFolder);
        }
        if name.ends_with(".npz") {
            return Ok(DataFormat::MedmnistNpz);
        }
        if name.ends_with(".csv") || name.ends_with(".csv.gz") {
            return Ok(DataFormat::MnistCsv);
        }
    } else if path.is_dir() {
        let has = |rel: &str| path.join(rel).exists();
        if has("data_batch_1.bin") || has("cifar-10-batches-bin/data_batch_1.bin") {
            return Ok(DataFormat::Cifar10Bin);
        }
        if has("train.bin") || has("cifar-100-binary/train.bin") {
            return Ok(DataFormat::Cifar100Bin);
        }
        if has("train-images-idx3-ubyte.gz") {
            return Ok(DataFormat::Idx);
        }
        if path.join("train").is_dir() || path.join("test").is_dir() {
            return Ok(DataFormat::ImageFolder);
        }
    }
    bail!(
        "cannot tell the format of {}: expected a zip or folder with train/<class>/ images, a CIFAR binary folder, \
         MNIST IDX files, a .csv(.gz) or a MedMNIST .npz; set `dataset.format` (image-folder, cifar10-bin, \
         cifar100-bin, idx, mnist-csv, medmnist-npz)",
        path.display()
    )
}
