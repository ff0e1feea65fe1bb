//! MNIST / Fashion-MNIST: gzipped IDX files `{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz`.
//! Headers are checked against the data length, so a truncated file is an error naming it.

use super::{Dataset, Split};
use anyhow::{Context, Result, bail};
use flate2::read::GzDecoder;
use std::io::Read;
use std::path::{Path, PathBuf};
use tch::Tensor;

const FASHION_CLASSES: [&str; 10] = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

fn prefix(split: Split) -> &'static str {
    match split {
        Split::Train => "train",
        Split::Test => "t10k",
    }
}

pub fn source_files(dir: &Path, split: Split) -> Result<Vec<PathBuf>> {
    let p = prefix(split);
    Ok(vec![dir.join(format!("{p}-images-idx3-ubyte.gz")), dir.join(format!("{p}-labels-idx1-ubyte.gz"))])
}

pub fn load(dir: &Path, split: Split) -> Result<Dataset> {
    let files = source_files(dir, split)?;
    let (dims, pixels) = read_idx(&files[0], 0x08, 3)?;
    let (ldims, labels) = read_idx(&files[1], 0x08, 1)?;
    if dims[0] != ldims[0] {
        bail!("{} holds {} images but {} holds {} labels", files[0].display(), dims[0], files[1].display(), ldims[0]);
    }
    if let Some(&bad) = labels.iter().find(|&&l| l > 9) {
        bail!("{}: label {bad} is not a digit 0-9 (corrupt file)", files[1].display());
    }
    // Fashion-MNIST ships under the same file names; its folder name tells them apart.
    let fashion = dir.to_string_lossy().to_ascii_lowercase().contains("fashion");
    let classes = if fashion { FASHION_CLASSES.iter().map(|s| s.to_string()).collect() } else { (0..10).map(|d| d.to_string()).collect() };
    let images = Tensor::from_slice(&pixels).view([dims[0] as i64, 1, dims[1] as i64, dims[2] as i64]);
    let labels = Tensor::from_slice(&labels.iter().map(|&l| l as i64).collect::<Vec<_>>());
    Dataset::new(images, labels, classes)
}

/// Reads one gzipped IDX file of unsigned bytes: magic `0 0 <type> <ndim>`, big-endian u32 dims.
fn read_idx(file: &Path, data_type: u8, ndim: u8) -> Result<(Vec<usize>, Vec<u8>)> {
    let f = std::fs::File::open(file).with_context(|| format!("cannot open {} (MNIST IDX file)", file.display()))?;
    let mut bytes = Vec::new();
    GzDecoder::new(f).read_to_end(&mut bytes).with_context(|| format!("{} is not a valid gzip file (truncated?)", file.display()))?;
    let header = 4 + 4 * ndim as usize;
    if bytes.len() < header || bytes[..4] != [0, 0, data_type, ndim] {
        bail!("{} is not an IDX file of {ndim}-D unsigned bytes (bad magic number)", file.display());
    }
    let dims: Vec<usize> = (0..ndim as usize).map(|i| u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().unwrap()) as usize).collect();
    let expected = dims.iter().product::<usize>();
    if bytes.len() - header != expected {
        bail!("{}: header says {dims:?} ({expected} bytes) but {} bytes follow (truncated or corrupt)", file.display(), bytes.len() - header);
    }
    bytes.drain(..header);
    Ok((dims, bytes))
}
