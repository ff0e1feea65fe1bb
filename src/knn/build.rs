//! Exact k-NN table: blocked GEMM + top-k, so memory stays at block x N (N = 50k never
//! allocates N x N), on whatever device the embeddings live on.

use super::NeighbourTable;
use crate::config::Metric;
use anyhow::{Result, bail};
use tch::{Device, Kind, Tensor};

/// Bytes of one block of the distance matrix (rows x N x 4). 256 MiB keeps CPU caches busy with
/// few launches and fits any GPU next to a model.
const BLOCK_BYTES: usize = 256 << 20;

/// The k nearest neighbours of every row of `emb` ([N, D]) among the others, nearest first.
/// `L2` ranks by squared Euclidean distance on raw features, `Cosine` by cosine similarity.
/// Self is excluded by index (an exact duplicate of image i is a legitimate neighbour of i).
/// Ties are broken by the smaller index, so the table is the same on every device.
pub fn build_table(emb: &Tensor, k: usize, metric: Metric, device: Device) -> Result<NeighbourTable> {
    let n = emb.size().first().copied().unwrap_or(0).max(1) as usize;
    build_table_in_blocks(emb, k, metric, device, (BLOCK_BYTES / (4 * n)).clamp(1, n))
}

fn build_table_in_blocks(emb: &Tensor, k: usize, metric: Metric, device: Device, rows_per_block: usize) -> Result<NeighbourTable> {
    if emb.dim() != 2 {
        bail!("embeddings must be [N, D], got {:?}", emb.size());
    }
    let n = emb.size()[0] as usize;
    if k == 0 || k >= n {
        bail!("k = {k} neighbours asked but the prior embeds only {n} images (k must be in 1..{n}); lower `k` or use more data");
    }
    let _guard = tch::no_grad_guard();
    let x = emb.to_device(device).to_kind(Kind::Float);
    if !bool::try_from(x.isfinite().all())? {
        bail!("the prior embedding contains NaN or infinite values");
    }
    // Rank by a score where larger is nearer: -‖b‖² + 2 a·b for L2 (‖a‖² is constant per row and
    // does not change the order), a·b on unit vectors for cosine. One addmm per block.
    let (x, bias) = match metric {
        Metric::L2 => {
            let sq = x.square().sum_dim_intlist(1, false, Kind::Float);
            (x, Some(-sq.unsqueeze(0)))
        }
        Metric::Cosine => (normalize_rows(&x), None),
    };
    let xt = x.transpose(0, 1).contiguous();
    // Queries scaled by 2 once, so each block is a single addmm: -‖b‖² + (2a)·b.
    let x_query = if bias.is_some() { &x * 2.0 } else { x.shallow_clone() };
    // One extra candidate tells whether the k-th place is tied with the first one left out.
    let take = (k + 1).min(n - 1);
    let mut out = Vec::with_capacity(n * k);
    for start in (0..n).step_by(rows_per_block) {
        let len = rows_per_block.min(n - start) as i64;
        let q = x_query.narrow(0, start as i64, len);
        let mut score = match &bias {
            Some(b) => b.addmm(&q, &xt),
            None => q.mm(&xt),
        };
        // Self: -inf on the block's diagonal.
        let rows = Tensor::arange(len, (Kind::Int64, device));
        let _ = score.index_put_(&[Some(rows.shallow_clone()), Some(rows + start as i64)], &Tensor::from(f32::NEG_INFINITY).to_device(device), false);
        let (vals, idx) = score.topk(take as i64, 1, true, true);
        let vals = Vec::<f32>::try_from(vals.to_device(Device::Cpu).flatten(0, 1))?;
        let idx = Vec::<i64>::try_from(idx.to_device(Device::Cpu).flatten(0, 1))?;
        for r in 0..len as usize {
            let v = &vals[r * take..(r + 1) * take];
            let j = &idx[r * take..(r + 1) * take];
            append_row_with_ties_by_index(&mut out, v, j, k, || Vec::<f32>::try_from(score.get(r as i64).to_device(Device::Cpu)).expect("score row"));
        }
    }
    let idx = out.into_iter().map(|j| j as u32).collect();
    NeighbourTable::new(n, k, idx)
}

/// Appends the k best of one row in (score desc, index asc) order. topk's order among equal scores
/// is unspecified, so when the k-th score is tied with the next, the whole row is re-ranked
/// exactly (rare: duplicates, the `labels` oracle).
fn append_row_with_ties_by_index(out: &mut Vec<i64>, vals: &[f32], idx: &[i64], k: usize, full_row: impl FnOnce() -> Vec<f32>) {
    let tied_at_boundary = vals.len() > k && vals[k - 1] == vals[k];
    if !tied_at_boundary {
        let mut pairs: Vec<(f32, i64)> = vals[..k].iter().copied().zip(idx[..k].iter().copied()).collect();
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        out.extend(pairs.into_iter().map(|p| p.1));
        return;
    }
    let row = full_row();
    let threshold = vals[k - 1];
    let mut pairs: Vec<(f32, i64)> = row.iter().enumerate().filter(|&(_, &s)| s >= threshold).map(|(j, &s)| (s, j as i64)).collect();
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    out.extend(pairs.into_iter().take(k).map(|p| p.1));
}

fn normalize_rows(x: &Tensor) -> Tensor {
    let norm = x.norm_scalaropt_dim(2.0, [1i64].as_slice(), true).clamp_min(1e-12);
    x / norm
}

/// The bare GEMM of the same size as the table build (all N x N scores, in the same blocks),
/// the floor a table build is measured against.
pub fn pairwise_gemm(emb: &Tensor, device: Device) -> f64 {
    let _guard = tch::no_grad_guard();
    let x = emb.to_device(device).to_kind(Kind::Float);
    let n = x.size()[0] as usize;
    let xt = x.transpose(0, 1).contiguous();
    let rows_per_block = (BLOCK_BYTES / (4 * n)).clamp(1, n);
    let mut checksum = 0.0;
    for start in (0..n).step_by(rows_per_block) {
        let len = rows_per_block.min(n - start) as i64;
        let s = x.narrow(0, start as i64, len).mm(&xt);
        // Touch one element so the work cannot be skipped and GPU work is waited for.
        checksum += s.get(0).get(0).double_value(&[]);
    }
    checksum
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The naive reference: all pairwise squared distances (or cosine similarities) in f64,
    /// sorted by (distance, index).
    fn naive(emb: &[Vec<f32>], k: usize, metric: Metric) -> Vec<u32> {
        let n = emb.len();
        let mut out = Vec::new();
        for i in 0..n {
            let mut d: Vec<(f64, usize)> = (0..n)
                .filter(|&j| j != i)
                .map(|j| {
                    let (a, b) = (&emb[i], &emb[j]);
                    let v = match metric {
                        Metric::L2 => a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum::<f64>(),
                        Metric::Cosine => {
                            let dot: f64 = a.iter().zip(b).map(|(x, y)| (*x as f64) * (*y as f64)).sum();
                            let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
                            let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
                            -dot / (na * nb)
                        }
                    };
                    (v, j)
                })
                .collect();
            d.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            out.extend(d.iter().take(k).map(|p| p.1 as u32));
        }
        out
    }

    fn random_rows(n: usize, d: usize, seed: i64) -> (Tensor, Vec<Vec<f32>>) {
        tch::manual_seed(seed);
        let t = Tensor::randn([n as i64, d as i64], (Kind::Float, Device::Cpu));
        let rows = (0..n).map(|i| Vec::<f32>::try_from(t.get(i as i64)).unwrap()).collect();
        (t, rows)
    }

    #[test]
    fn equals_naive_reference_on_random_data() {
        let (t, rows) = random_rows(300, 16, 1);
        for metric in [Metric::L2, Metric::Cosine] {
            for k in [1, 5, 17] {
                let table = build_table(&t, k, metric, Device::Cpu).unwrap();
                assert_eq!(table.as_slice(), naive(&rows, k, metric).as_slice(), "{metric:?} k={k}");
            }
        }
    }

    #[test]
    fn duplicates_are_neighbours_and_self_is_excluded() {
        // Rows 0, 1, 2 identical; ties broken by index; self never listed.
        let t = Tensor::from_slice(&[1f32, 1., 1., 1., 1., 1., 5., 5., 9., 9.]).view([5, 2]);
        let table = build_table(&t, 2, Metric::L2, Device::Cpu).unwrap();
        assert_eq!(table.row(0), &[1, 2]);
        assert_eq!(table.row(1), &[0, 2]);
        assert_eq!(table.row(2), &[0, 1]);
        assert_eq!(table.row(4), &[3, 0]);
    }

    #[test]
    fn several_blocks_give_the_same_table() {
        let (t, rows) = random_rows(120, 8, 2);
        for rows_per_block in [1, 7, 64, 120] {
            let table = build_table_in_blocks(&t, 4, Metric::L2, Device::Cpu, rows_per_block).unwrap();
            assert_eq!(table.as_slice(), naive(&rows, 4, Metric::L2).as_slice(), "blocks of {rows_per_block}");
        }
    }

    #[test]
    fn k_too_large_is_a_clear_error() {
        let t = Tensor::zeros([5, 2], (Kind::Float, Device::Cpu));
        let err = build_table(&t, 5, Metric::L2, Device::Cpu).unwrap_err().to_string();
        assert!(err.contains("k = 5") && err.contains("lower `k`"), "{err}");
    }
}
