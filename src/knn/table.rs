//! `NeighbourTable`: for each training image, the indices of its k nearest neighbours in prior
//! space, nearest first, self excluded.

use anyhow::{Context, Result, bail};
use std::path::Path;
use tch::{Kind, Tensor};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeighbourTable {
    n: usize,
    k: usize,
    /// Row-major [n, k].
    idx: Vec<u32>,
}

impl NeighbourTable {
    pub fn new(n: usize, k: usize, idx: Vec<u32>) -> Result<NeighbourTable> {
        if idx.len() != n * k {
            bail!("neighbour table holds {} entries, expected {n} x {k}", idx.len());
        }
        if let Some(&bad) = idx.iter().find(|&&j| j as usize >= n) {
            bail!("neighbour table refers to image {bad} but there are only {n}");
        }
        Ok(NeighbourTable { n, k, idx: on_huge_pages(idx) })
    }

    /// The baseline (`prior: none`): every image's only "neighbour" is itself, so the positive is a
    /// second augmentation of the anchor, exactly standard SSL.
    pub fn identity(n: usize) -> NeighbourTable {
        NeighbourTable { n, k: 1, idx: (0..n as u32).collect() }
    }

    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    pub fn k(&self) -> usize {
        self.k
    }

    pub fn row(&self, i: usize) -> &[u32] {
        &self.idx[i * self.k..(i + 1) * self.k]
    }

    pub fn as_slice(&self) -> &[u32] {
        &self.idx
    }

    /// Each image itself first, then its neighbours: k + 1 candidates, as the authors' table
    /// without `filter_sim_matrix` (self, the nearest first) keeps them.
    pub fn with_self_first(&self) -> Result<NeighbourTable> {
        let k = self.k + 1;
        let idx = (0..self.n).flat_map(|i| std::iter::once(i as u32).chain(self.row(i).iter().copied())).collect();
        NeighbourTable::new(self.n, k, idx)
    }

    /// The first `k` columns (a table built for a larger k serves every smaller one).
    pub fn truncate(&self, k: usize) -> Result<NeighbourTable> {
        if k > self.k {
            bail!("table has {} neighbours per image, {k} asked", self.k);
        }
        let idx = (0..self.n).flat_map(|i| self.row(i)[..k].iter().copied()).collect();
        Ok(NeighbourTable { n: self.n, k, idx })
    }

    /// Neighbour label purity: share of neighbours with the image's label, overall and per class
    /// (per-class entries are NaN for classes with no images).
    pub fn label_purity(&self, labels: &[i64], num_classes: usize) -> (f64, Vec<f64>) {
        let mut same = vec![0usize; num_classes];
        let mut total = vec![0usize; num_classes];
        for i in 0..self.n {
            let c = labels[i] as usize;
            total[c] += self.k;
            same[c] += self.row(i).iter().filter(|&&j| labels[j as usize] == labels[i]).count();
        }
        let all = same.iter().sum::<usize>() as f64 / total.iter().sum::<usize>().max(1) as f64;
        let per_class = same.iter().zip(&total).map(|(&s, &t)| if t == 0 { f64::NAN } else { s as f64 / t as f64 }).collect();
        (all, per_class)
    }

    pub fn to_tensor(&self) -> Tensor {
        let v: Vec<i32> = self.idx.iter().map(|&j| j as i32).collect();
        Tensor::from_slice(&v).view([self.n as i64, self.k as i64])
    }

    pub fn from_tensor(t: &Tensor) -> Result<NeighbourTable> {
        if t.dim() != 2 {
            bail!("neighbour table tensor must be 2-D, got {:?}", t.size());
        }
        let (n, k) = (t.size()[0] as usize, t.size()[1] as usize);
        let v = Vec::<i64>::try_from(t.to_kind(Kind::Int64).flatten(0, 1)).context("reading neighbour table")?;
        NeighbourTable::new(n, k, v.into_iter().map(|j| j as u32).collect())
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        crate::atomic_file::write_via_temp(path, |tmp| Tensor::write_safetensors(&[("neighbours", self.to_tensor())], tmp).map_err(Into::into))
    }

    pub fn load(path: &Path) -> Result<NeighbourTable> {
        let tensors =
            Tensor::read_safetensors(path).with_context(|| format!("corrupt or unreadable neighbour table {}; delete it to rebuild", path.display()))?;
        let t = tensors
            .into_iter()
            .find(|(name, _)| name == "neighbours")
            .with_context(|| format!("{} has no `neighbours` tensor; delete it to rebuild", path.display()))?;
        NeighbourTable::from_tensor(&t.1)
    }
}

/// Tables above this size are moved to memory backed by 2 MB pages.
const HUGE_PAGE_MIN_BYTES: usize = 32 << 20;

/// `idx` moved to memory the kernel is asked (madvise, transparent huge pages) to back with 2 MB
/// pages, when it is large: the sampler reads it at random, and with 4 kB pages a 256 MB table
/// needs 65,536 TLB entries, so nearly every read would also walk the page tables. A hint only:
/// where the kernel declines, the table is the same, on ordinary pages.
fn on_huge_pages(idx: Vec<u32>) -> Vec<u32> {
    let bytes = idx.len() * std::mem::size_of::<u32>();
    if cfg!(not(target_os = "linux")) || bytes < HUGE_PAGE_MIN_BYTES {
        return idx;
    }
    let mut out: Vec<u32> = Vec::with_capacity(idx.len());
    let page = 4096usize;
    let start = (out.as_ptr() as usize).div_ceil(page) * page;
    let end = (out.as_ptr() as usize + bytes) / page * page;
    if end > start {
        // SAFETY: [start, end) lies inside `out`'s allocation; MADV_HUGEPAGE only changes how
        // the kernel backs pages not yet touched, never their contents.
        unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
    }
    out.extend_from_slice(&idx);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purity_counts_same_label_neighbours() {
        // 4 images, labels 0 0 1 1; image 0's neighbours: 1 (same), 2 (other).
        let t = NeighbourTable::new(4, 2, vec![1, 2, 0, 3, 3, 0, 2, 1]).unwrap();
        let (all, per) = t.label_purity(&[0, 0, 1, 1], 2);
        assert!((all - 0.5).abs() < 1e-12);
        assert_eq!(per, vec![0.5, 0.5]);
    }

    #[test]
    fn rejects_out_of_range_and_round_trips() {
        assert!(NeighbourTable::new(2, 1, vec![0, 2]).is_err());
        let t = NeighbourTable::new(3, 2, vec![1, 2, 0, 2, 1, 0]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.safetensors");
        t.save(&p).unwrap();
        assert_eq!(NeighbourTable::load(&p).unwrap(), t);
        assert_eq!(t.truncate(1).unwrap().as_slice(), &[1, 0, 1]);
        std::fs::write(&p, b"garbage").unwrap();
        let err = NeighbourTable::load(&p).unwrap_err().to_string();
        assert!(err.contains("delete it to rebuild"), "{err}");
    }
}
