//! The official CIFAR-10 / CIFAR-100 binary releases, validated byte for byte: each file must
//! have its exact size and each split its exact per-class counts, so a truncated download or a
//! wrong file is an error naming it, never a silently smaller dataset.

use super::{Dataset, Split};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use tch::Tensor;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Cifar10,
    Cifar100,
}

const PIXELS: usize = 3 * 32 * 32;

impl Variant {
    /// The folder the official tar.gz extracts to.
    fn folder(self) -> &'static str {
        match self {
            Variant::Cifar10 => "cifar-10-batches-bin",
            Variant::Cifar100 => "cifar-100-binary",
        }
    }

    fn files(self, split: Split) -> &'static [&'static str] {
        match (self, split) {
            (Variant::Cifar10, Split::Train) => &["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"],
            (Variant::Cifar10, Split::Test) => &["test_batch.bin"],
            (Variant::Cifar100, Split::Train) => &["train.bin"],
            (Variant::Cifar100, Split::Test) => &["test.bin"],
        }
    }

    /// Label bytes before the pixels: CIFAR-100 has (coarse, fine); we use the fine label.
    fn label_bytes(self) -> usize {
        match self {
            Variant::Cifar10 => 1,
            Variant::Cifar100 => 2,
        }
    }

    fn records_per_file(self, split: Split) -> usize {
        match (self, split) {
            (Variant::Cifar100, Split::Train) => 50_000,
            _ => 10_000,
        }
    }

    fn num_classes(self) -> usize {
        match self {
            Variant::Cifar10 => 10,
            Variant::Cifar100 => 100,
        }
    }

    fn per_class(self, split: Split) -> usize {
        let n = self.files(split).len() * self.records_per_file(split);
        n / self.num_classes()
    }

    fn meta_file(self) -> &'static str {
        match self {
            Variant::Cifar10 => "batches.meta.txt",
            Variant::Cifar100 => "fine_label_names.txt",
        }
    }
}

const CIFAR10_CLASSES: [&str; 10] = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

/// The folder holding the .bin files: `root` itself or the release's sub-folder in it.
fn batches_dir(root: &Path, v: Variant) -> PathBuf {
    let inner = root.join(v.folder());
    if inner.is_dir() { inner } else { root.to_path_buf() }
}

pub fn source_files(root: &Path, v: Variant, split: Split) -> Result<Vec<PathBuf>> {
    let dir = batches_dir(root, v);
    Ok(v.files(split).iter().map(|f| dir.join(f)).collect())
}

pub fn load(root: &Path, v: Variant, split: Split) -> Result<Dataset> {
    let dir = batches_dir(root, v);
    let record = v.label_bytes() + PIXELS;
    let mut pixels = Vec::with_capacity(v.files(split).len() * v.records_per_file(split) * PIXELS);
    let mut labels = Vec::new();
    for name in v.files(split) {
        let file = dir.join(name);
        let bytes = std::fs::read(&file)
            .with_context(|| format!("cannot read {} (the {:?} binary release has {} here)", file.display(), v, v.files(split).join(", ")))?;
        let expected = v.records_per_file(split) * record;
        if bytes.len() != expected {
            bail!(
                "{} has {} bytes but a {:?} {} file has exactly {expected} ({} records of {record}): truncated or not the official file; download it again",
                file.display(),
                bytes.len(),
                v,
                split.as_str(),
                v.records_per_file(split)
            );
        }
        for (r, rec) in bytes.chunks_exact(record).enumerate() {
            let label = rec[v.label_bytes() - 1] as usize;
            if label >= v.num_classes() {
                bail!("{} record {r}: label {label} is not below {} (corrupt file)", file.display(), v.num_classes());
            }
            labels.push(label as i64);
            pixels.extend_from_slice(&rec[v.label_bytes()..]);
        }
    }
    let mut counts = vec![0usize; v.num_classes()];
    for &l in &labels {
        counts[l as usize] += 1;
    }
    if let Some((c, &n)) = counts.iter().enumerate().find(|&(_, &n)| n != v.per_class(split)) {
        bail!(
            "{}: class {c} has {n} {} images, the official release has {} per class (corrupt or modified file)",
            dir.display(),
            split.as_str(),
            v.per_class(split)
        );
    }
    let classes = class_names(&dir, v)?;
    let n = labels.len() as i64;
    Dataset::new(Tensor::from_slice(&pixels).view([n, 3, 32, 32]), Tensor::from_slice(&labels), classes)
}

/// Names from the release's meta file when present, else the CIFAR-10 names / numbers.
fn class_names(dir: &Path, v: Variant) -> Result<Vec<String>> {
    let meta = dir.join(v.meta_file());
    if meta.is_file() {
        let text = std::fs::read_to_string(&meta).with_context(|| format!("reading {}", meta.display()))?;
        let names: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
        if names.len() != v.num_classes() {
            bail!("{} lists {} class names, expected {}", meta.display(), names.len(), v.num_classes());
        }
        return Ok(names);
    }
    Ok(match v {
        Variant::Cifar10 => CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect(),
        Variant::Cifar100 => (0..100).map(|i| i.to_string()).collect(),
    })
}
