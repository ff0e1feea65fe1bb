//! `NeighbourTable`: for each training image, the candidates its positive is drawn from: the k
//! nearest neighbours in prior space, nearest first (a fixed k per image), or every neighbour
//! within a distance τ (a variable count per image: the authors' `nn_threshold`).

use anyhow::{Context, Result, bail};
use std::path::Path;
use tch::{Kind, Tensor};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeighbourTable {
    n: usize,
    rows: Rows,
    /// The candidates of every image, row after row.
    idx: Vec<u32>,
}

/// Where each image's candidates lie in `idx`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Rows {
    /// k per image: row i is idx[i·k .. (i+1)·k].
    Fixed(usize),
    /// Row i is idx[offsets[i] .. offsets[i+1]] (n + 1 offsets, each row at least one entry).
    Offsets(Vec<u64>),
}

/// How many candidates the images have (a table with a distance threshold).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CandidateCounts {
    pub mean: f64,
    pub median: f64,
    pub min: usize,
    pub max: usize,
}

impl NeighbourTable {
    pub fn new(n: usize, k: usize, idx: Vec<u32>) -> Result<NeighbourTable> {
        if idx.len() != n * k {
            bail!("neighbour table holds {} entries, expected {n} x {k}", idx.len());
        }
        check_range(n, &idx)?;
        Ok(NeighbourTable { n, rows: Rows::Fixed(k), idx: on_huge_pages(idx) })
    }

    /// A table with a variable number of candidates per image: row i is
    /// `idx[offsets[i]..offsets[i + 1]]`, never empty.
    pub fn with_offsets(offsets: Vec<u64>, idx: Vec<u32>) -> Result<NeighbourTable> {
        let Some(n) = offsets.len().checked_sub(1) else { bail!("a neighbour table's offsets hold n + 1 entries, got none") };
        if offsets[0] != 0 || offsets[n] != idx.len() as u64 {
            bail!("neighbour table offsets span {}..{} but the table holds {} entries", offsets[0], offsets[n], idx.len());
        }
        if let Some(i) = (0..n).find(|&i| offsets[i + 1] <= offsets[i]) {
            bail!("neighbour table row {i} has no candidate (offsets {} then {})", offsets[i], offsets[i + 1]);
        }
        check_range(n, &idx)?;
        Ok(NeighbourTable { n, rows: Rows::Offsets(offsets), idx: on_huge_pages(idx) })
    }

    /// The baseline (`prior: none`): every image's only "neighbour" is itself, so the positive is a
    /// second augmentation of the anchor, exactly standard SSL.
    pub fn identity(n: usize) -> NeighbourTable {
        NeighbourTable { n, rows: Rows::Fixed(1), idx: (0..n as u32).collect() }
    }

    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The number of candidates of every image, when it is the same for all (a k-NN table).
    pub fn fixed_k(&self) -> Option<usize> {
        match self.rows {
            Rows::Fixed(k) => Some(k),
            Rows::Offsets(_) => None,
        }
    }

    /// Row i's position in `as_slice()`.
    #[inline]
    pub fn span(&self, i: usize) -> (usize, usize) {
        match &self.rows {
            Rows::Fixed(k) => (i * k, (i + 1) * k),
            Rows::Offsets(o) => (o[i] as usize, o[i + 1] as usize),
        }
    }

    pub fn row(&self, i: usize) -> &[u32] {
        let (a, b) = self.span(i);
        &self.idx[a..b]
    }

    /// Every row's candidates, one row after the other.
    pub fn as_slice(&self) -> &[u32] {
        &self.idx
    }

    /// The variable-length table's n + 1 row offsets (None for a fixed k).
    pub fn offsets(&self) -> Option<&[u64]> {
        match &self.rows {
            Rows::Fixed(_) => None,
            Rows::Offsets(o) => Some(o),
        }
    }

    /// The smallest number of candidates any image has.
    pub fn min_candidates(&self) -> usize {
        match &self.rows {
            Rows::Fixed(k) => *k,
            Rows::Offsets(o) => o.windows(2).map(|w| (w[1] - w[0]) as usize).min().unwrap_or(0),
        }
    }

    /// Mean, median, min and max number of candidates per image.
    pub fn candidate_counts(&self) -> CandidateCounts {
        let mut counts: Vec<usize> = (0..self.n).map(|i| self.row(i).len()).collect();
        counts.sort_unstable();
        let n = counts.len().max(1);
        let median = match counts.len() {
            0 => f64::NAN,
            l if l % 2 == 1 => counts[l / 2] as f64,
            l => (counts[l / 2 - 1] + counts[l / 2]) as f64 / 2.0,
        };
        CandidateCounts {
            mean: counts.iter().sum::<usize>() as f64 / n as f64,
            median,
            min: counts.first().copied().unwrap_or(0),
            max: counts.last().copied().unwrap_or(0),
        }
    }

    /// Share of images whose only candidate is themselves (a threshold no neighbour met).
    pub fn self_only_share(&self) -> f64 {
        let alone = (0..self.n).filter(|&i| self.row(i) == [i as u32]).count();
        alone as f64 / self.n.max(1) as f64
    }

    /// Each image itself first, then its neighbours: k + 1 candidates, as the authors' table
    /// without `filter_sim_matrix` (self, the nearest first) keeps them. In a table of candidates
    /// within a distance, a row that is the image alone (no neighbour was near enough) stays so.
    pub fn with_self_first(&self) -> Result<NeighbourTable> {
        let with_self = |i: usize| std::iter::once(i as u32).chain(self.row(i).iter().copied());
        match &self.rows {
            Rows::Fixed(k) => NeighbourTable::new(self.n, k + 1, (0..self.n).flat_map(with_self).collect()),
            Rows::Offsets(_) => {
                let (mut offsets, mut idx) = (vec![0u64], Vec::with_capacity(self.idx.len() + self.n));
                for i in 0..self.n {
                    if self.row(i) != [i as u32] {
                        idx.push(i as u32);
                    }
                    idx.extend_from_slice(self.row(i));
                    offsets.push(idx.len() as u64);
                }
                NeighbourTable::with_offsets(offsets, idx)
            }
        }
    }

    /// The first `k` columns (a table built for a larger k serves every smaller one).
    pub fn truncate(&self, k: usize) -> Result<NeighbourTable> {
        match self.rows {
            Rows::Fixed(have) if k <= have => {
                let idx = (0..self.n).flat_map(|i| self.row(i)[..k].iter().copied()).collect();
                Ok(NeighbourTable { n: self.n, rows: Rows::Fixed(k), idx })
            }
            Rows::Fixed(have) => bail!("table has {have} neighbours per image, {k} asked"),
            Rows::Offsets(_) => bail!("a table of candidates within a distance cannot be cut to k columns"),
        }
    }

    /// Neighbour label purity: share of candidates with the image's label, overall and per class
    /// (per-class entries are NaN for classes with no images).
    pub fn label_purity(&self, labels: &[i64], num_classes: usize) -> (f64, Vec<f64>) {
        let mut same = vec![0usize; num_classes];
        let mut total = vec![0usize; num_classes];
        for i in 0..self.n {
            let c = labels[i] as usize;
            let row = self.row(i);
            total[c] += row.len();
            same[c] += row.iter().filter(|&&j| labels[j as usize] == labels[i]).count();
        }
        let all = same.iter().sum::<usize>() as f64 / total.iter().sum::<usize>().max(1) as f64;
        let per_class = same.iter().zip(&total).map(|(&s, &t)| if t == 0 { f64::NAN } else { s as f64 / t as f64 }).collect();
        (all, per_class)
    }

    /// The table as named tensors: `neighbours` [n, k] for a fixed k (the layout cached tables
    /// have always had), `candidates` [total] with `offsets` [n + 1] otherwise.
    pub fn to_tensors(&self) -> Vec<(String, Tensor)> {
        let idx = Tensor::from_slice(&self.idx.iter().map(|&j| j as i32).collect::<Vec<i32>>());
        match &self.rows {
            Rows::Fixed(k) => vec![("neighbours".into(), idx.view([self.n as i64, *k as i64]))],
            Rows::Offsets(o) => {
                vec![("candidates".into(), idx), ("offsets".into(), Tensor::from_slice(&o.iter().map(|&x| x as i64).collect::<Vec<i64>>()))]
            }
        }
    }

    /// The inverse of `to_tensors`, from a list of named tensors that holds them (a cache file,
    /// a checkpoint); None when it holds no table.
    pub fn from_tensors(tensors: &[(String, Tensor)], prefix: &str) -> Result<Option<NeighbourTable>> {
        let get = |name: &str| tensors.iter().find(|(n, _)| n == &format!("{prefix}{name}")).map(|(_, t)| t);
        let read = |t: &Tensor| Vec::<i64>::try_from(t.to_kind(Kind::Int64).flatten(0, -1)).context("reading a neighbour table");
        if let Some(t) = get("neighbours") {
            if t.dim() != 2 {
                bail!("neighbour table tensor must be 2-D, got {:?}", t.size());
            }
            let (n, k) = (t.size()[0] as usize, t.size()[1] as usize);
            return NeighbourTable::new(n, k, read(t)?.into_iter().map(|j| j as u32).collect()).map(Some);
        }
        match (get("candidates"), get("offsets")) {
            (Some(c), Some(o)) => {
                let offsets = read(o)?.into_iter().map(|x| x as u64).collect();
                NeighbourTable::with_offsets(offsets, read(c)?.into_iter().map(|j| j as u32).collect()).map(Some)
            }
            _ => Ok(None),
        }
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        crate::atomic_file::write_via_temp(path, |tmp| Tensor::write_safetensors(&self.to_tensors(), tmp).map_err(Into::into))
    }

    pub fn load(path: &Path) -> Result<NeighbourTable> {
        let tensors =
            Tensor::read_safetensors(path).with_context(|| format!("corrupt or unreadable neighbour table {}; delete it to rebuild", path.display()))?;
        NeighbourTable::from_tensors(&tensors, "")?.with_context(|| format!("{} holds no neighbour table; delete it to rebuild", path.display()))
    }
}

fn check_range(n: usize, idx: &[u32]) -> Result<()> {
    if let Some(&bad) = idx.iter().find(|&&j| j as usize >= n) {
        bail!("neighbour table refers to image {bad} but there are only {n}");
    }
    Ok(())
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

    #[test]
    fn variable_rows_round_trip_and_count_their_candidates() {
        // Image 0: 1, 2; image 1: itself only; image 2: 0, 1, 3; image 3: 2.
        let t = NeighbourTable::with_offsets(vec![0, 2, 3, 6, 7], vec![1, 2, 1, 0, 1, 3, 2]).unwrap();
        assert_eq!((t.row(0), t.row(1), t.row(2), t.row(3)), (&[1, 2][..], &[1][..], &[0, 1, 3][..], &[2][..]));
        assert_eq!(t.candidate_counts(), CandidateCounts { mean: 7.0 / 4.0, median: 1.5, min: 1, max: 3 });
        assert_eq!(t.self_only_share(), 0.25);
        assert_eq!(t.fixed_k(), None);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.safetensors");
        t.save(&p).unwrap();
        assert_eq!(NeighbourTable::load(&p).unwrap(), t);
        let s = t.with_self_first().unwrap();
        assert_eq!((s.row(0), s.row(1), s.row(3)), (&[0, 1, 2][..], &[1][..], &[3, 2][..]), "an image alone stays alone");
        assert!(t.truncate(1).is_err());
        assert!(NeighbourTable::with_offsets(vec![0, 2, 2], vec![1, 0]).unwrap_err().to_string().contains("row 1 has no candidate"));
        assert!(NeighbourTable::with_offsets(vec![0, 1, 2], vec![1, 5]).is_err());
    }
}
