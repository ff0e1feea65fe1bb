//! `format: auto`: recognise a dataset from what its path holds.

use crate::config::DataFormat;
use anyhow::{Result, bail};
use std::path::Path;

/// The concrete format of `path` (`format` itself unless it is `Auto`).
pub fn resolve_format(format: DataFormat, path: &Path) -> Result<DataFormat> {
    if !path.exists() {
        bail!("dataset path {} does not exist", path.display());
    }
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
        let cifar10 = ["data_batch_1.bin", "test_batch.bin"];
        if cifar10.iter().any(|f| has(f) || has(&format!("cifar-10-batches-bin/{f}"))) {
            return Ok(DataFormat::Cifar10Bin);
        }
        let cifar100 = ["train.bin", "test.bin"];
        if cifar100.iter().any(|f| has(f) || has(&format!("cifar-100-binary/{f}"))) {
            return Ok(DataFormat::Cifar100Bin);
        }
        if has("train-images-idx3-ubyte.gz") || has("t10k-images-idx3-ubyte.gz") {
            return Ok(DataFormat::Idx);
        }
        if super::aircraft::looks_like(path) {
            return Ok(DataFormat::FgvcAircraft);
        }
        if path.join("train").is_dir() || path.join("test").is_dir() {
            return Ok(DataFormat::ImageFolder);
        }
    }
    bail!(
        "cannot tell the format of {}: expected a zip or folder with train/<class>/ images, a CIFAR binary folder, \
         MNIST IDX files, a .csv(.gz), a MedMNIST .npz or the unpacked FGVC-Aircraft release; set `dataset.format` \
         (image-folder, cifar10-bin, cifar100-bin, idx, mnist-csv, medmnist-npz, fgvc-aircraft)",
        path.display()
    )
}
