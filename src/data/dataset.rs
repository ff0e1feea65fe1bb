//! The in-memory dataset every other module consumes.

use anyhow::{Result, bail};
use sha2::{Digest, Sha256};
use tch::{Kind, Tensor};

/// Which half of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    Train,
    Test,
}

impl Split {
    pub fn as_str(&self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }

    /// The spec field that names which split of the files plays this role.
    pub fn field(&self) -> &'static str {
        match self {
            Split::Train => "dataset.train_split",
            Split::Test => "dataset.test_split",
        }
    }
}

/// A split as the dataset's files name it (`dataset.train_split` / `dataset.test_split`): which
/// ones a format has is `super::splits_of`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SplitName {
    Train,
    Val,
    Test,
    Trainval,
}

impl SplitName {
    pub const ALL: [SplitName; 4] = [SplitName::Train, SplitName::Val, SplitName::Test, SplitName::Trainval];

    pub fn as_str(&self) -> &'static str {
        match self {
            SplitName::Train => "train",
            SplitName::Val => "val",
            SplitName::Test => "test",
            SplitName::Trainval => "trainval",
        }
    }

    pub fn parse(s: &str) -> Option<SplitName> {
        SplitName::ALL.into_iter().find(|n| n.as_str() == s)
    }
}

impl From<Split> for SplitName {
    fn from(s: Split) -> SplitName {
        match s {
            Split::Train => SplitName::Train,
            Split::Test => SplitName::Test,
        }
    }
}

impl std::fmt::Display for SplitName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Images as a CPU uint8 tensor [N, C, H, W], labels as int64 [N], class names by label.
#[derive(Debug)]
pub struct Dataset {
    pub images: Tensor,
    pub labels: Tensor,
    pub classes: Vec<String>,
}

impl Dataset {
    /// Checks shapes and label range, so a loader can never hand out an inconsistent dataset.
    pub fn new(images: Tensor, labels: Tensor, classes: Vec<String>) -> Result<Dataset> {
        if images.dim() != 4 || images.kind() != Kind::Uint8 {
            bail!("images must be uint8 [N,C,H,W], got {:?} {:?}", images.kind(), images.size());
        }
        if labels.dim() != 1 || labels.size()[0] != images.size()[0] {
            bail!("labels must be [N] with N = {}, got {:?}", images.size()[0], labels.size());
        }
        let labels = labels.to_kind(Kind::Int64);
        if labels.numel() > 0 {
            let (lo, hi) = (labels.min().int64_value(&[]), labels.max().int64_value(&[]));
            if lo < 0 || hi as usize >= classes.len() {
                bail!("labels span {lo}..={hi} but there are {} classes", classes.len());
            }
        }
        Ok(Dataset { images, labels, classes })
    }

    pub fn len(&self) -> usize {
        self.images.size()[0] as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn channels(&self) -> usize {
        self.images.size()[1] as usize
    }

    /// (height, width)
    pub fn image_size(&self) -> (usize, usize) {
        let s = self.images.size();
        (s[2] as usize, s[3] as usize)
    }

    pub fn num_classes(&self) -> usize {
        self.classes.len()
    }

    pub fn labels_vec(&self) -> Vec<i64> {
        Vec::<i64>::try_from(&self.labels).expect("labels are int64")
    }

    /// Images per class, indexed by label.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.num_classes()];
        for l in self.labels_vec() {
            counts[l as usize] += 1;
        }
        counts
    }

    /// The first `n` images keeping classes balanced: round-robin over classes in dataset order,
    /// so a small run sees every class. Returns a copy; deterministic.
    pub fn subset_balanced(&self, n: usize) -> Dataset {
        if n >= self.len() {
            return self.shallow_clone();
        }
        let labels = self.labels_vec();
        let mut per_class: Vec<Vec<i64>> = vec![Vec::new(); self.num_classes()];
        for (i, &l) in labels.iter().enumerate() {
            per_class[l as usize].push(i as i64);
        }
        let mut picked = Vec::with_capacity(n);
        let mut round = 0;
        while picked.len() < n {
            let mut any = false;
            for members in &per_class {
                if let Some(&i) = members.get(round) {
                    any = true;
                    if picked.len() < n {
                        picked.push(i);
                    }
                }
            }
            if !any {
                break;
            }
            round += 1;
        }
        picked.sort_unstable();
        let idx = Tensor::from_slice(&picked);
        Dataset { images: self.images.index_select(0, &idx), labels: self.labels.index_select(0, &idx), classes: self.classes.clone() }
    }

    /// sha256 (hex) of the shape, image bytes, labels and class names: identifies the content
    /// whatever file it came from, so prior and k-NN caches follow the data, not the path.
    pub fn content_hash(&self) -> String {
        let mut h = Sha256::new();
        h.update(format!("{:?}|{}|", self.images.size(), self.classes.join("\u{1f}")).as_bytes());
        h.update(tensor_bytes(&self.images.contiguous()));
        h.update(tensor_bytes(&self.labels.to_kind(Kind::Int64).contiguous()));
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn shallow_clone(&self) -> Dataset {
        Dataset { images: self.images.shallow_clone(), labels: self.labels.shallow_clone(), classes: self.classes.clone() }
    }

    /// Per-channel mean and std of the images scaled to [0, 1] (normalisation statistics).
    pub fn channel_mean_std(&self) -> (Vec<f64>, Vec<f64>) {
        let x = self.images.to_kind(Kind::Float) / 255.0;
        let dims: &[i64] = &[0, 2, 3];
        let mean = Vec::<f64>::try_from(x.mean_dim(dims, false, Kind::Double)).expect("mean");
        let std = Vec::<f64>::try_from(x.std_dim(dims, false, false).to_kind(Kind::Double)).expect("std");
        (mean, std)
    }
}

/// The raw bytes of a contiguous CPU tensor (u8 or i64 here).
fn tensor_bytes(t: &Tensor) -> Vec<u8> {
    let t = t.to_device(tch::Device::Cpu).contiguous();
    let n = t.numel() * t.kind().elt_size_in_bytes();
    let mut out = vec![0u8; n];
    t.copy_data_u8(&mut out, t.numel());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy(n: i64, classes: usize) -> Dataset {
        let images = Tensor::arange(n * 3 * 2 * 2, (Kind::Int64, tch::Device::Cpu)).remainder(256).to_kind(Kind::Uint8).view([n, 3, 2, 2]);
        let labels = Tensor::arange(n, (Kind::Int64, tch::Device::Cpu)).remainder(classes as i64);
        Dataset::new(images, labels, (0..classes).map(|c| c.to_string()).collect()).unwrap()
    }

    #[test]
    fn balanced_subset_keeps_every_class() {
        let d = toy(100, 10);
        let s = d.subset_balanced(20);
        assert_eq!(s.len(), 20);
        assert_eq!(s.class_counts(), vec![2; 10]);
    }

    #[test]
    fn rejects_out_of_range_labels() {
        let images = Tensor::zeros([2, 1, 2, 2], (Kind::Uint8, tch::Device::Cpu));
        let labels = Tensor::from_slice(&[0i64, 3]);
        assert!(Dataset::new(images, labels, vec!["a".into(), "b".into()]).is_err());
    }

    #[test]
    fn content_hash_follows_pixels_and_labels() {
        let d = toy(20, 4);
        assert_eq!(d.content_hash(), toy(20, 4).content_hash());
        assert_eq!(d.content_hash().len(), 64);
        let mut pixels = d.shallow_clone();
        pixels.images = d.images.copy();
        let _ = pixels.images.get(3).get(0).get(0).get(0).fill_(7);
        assert_ne!(d.content_hash(), pixels.content_hash());
        let mut labels = d.shallow_clone();
        labels.labels = d.labels.copy();
        let _ = labels.labels.get(0).fill_(1);
        assert_ne!(d.content_hash(), labels.content_hash());
    }
}
