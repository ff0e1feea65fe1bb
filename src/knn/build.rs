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
    let (idx, _) = build_in_blocks(emb, k, metric, device, (BLOCK_BYTES / (4 * n)).clamp(1, n), false)?;
    NeighbourTable::new(n, k, idx)
}

/// `build_table` with each neighbour's distance beside it (row-major, as the table): the squared
/// Euclidean distance on raw features for `L2` (faiss' `IndexFlatL2`, as the authors'), 1 − cosine
/// similarity for `Cosine`. What a distance threshold τ is compared with.
pub fn build_with_distances(emb: &Tensor, k: usize, metric: Metric, device: Device) -> Result<(NeighbourTable, Vec<f32>)> {
    let n = emb.size().first().copied().unwrap_or(0).max(1) as usize;
    let (idx, distances) = build_in_blocks(emb, k, metric, device, (BLOCK_BYTES / (4 * n)).clamp(1, n), true)?;
    Ok((NeighbourTable::new(n, k, idx)?, distances.expect("asked for")))
}

#[cfg(test)]
fn build_table_in_blocks(emb: &Tensor, k: usize, metric: Metric, device: Device, rows_per_block: usize) -> Result<NeighbourTable> {
    let (idx, _) = build_in_blocks(emb, k, metric, device, rows_per_block, false)?;
    NeighbourTable::new(emb.size()[0] as usize, k, idx)
}

/// The k best columns of every row (and, when asked, their distances).
fn build_in_blocks(emb: &Tensor, k: usize, metric: Metric, device: Device, rows_per_block: usize, distances: bool) -> Result<(Vec<u32>, Option<Vec<f32>>)> {
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
    // A distance from a score: ‖a‖² − (2a·b − ‖b‖²) for L2, 1 − cos for cosine.
    let row_sq: Option<Vec<f32>> = match (&bias, distances) {
        (Some(b), true) => Some(Vec::<f32>::try_from(-b.flatten(0, 1).to_device(Device::Cpu))?),
        _ => None,
    };
    let mut scores = if distances { Some(vec![0f32; n * k]) } else { None };
    let xt = x.transpose(0, 1).contiguous();
    let idx = if device == Device::Cpu {
        // On the CPU the scores are a plain mm (the same GEMM as the floor) and the bias, the
        // self-exclusion and the top-k are one fused pass over each row in Rust: torch's topk
        // copies every row into (value, index) pairs first, which costs more than the GEMM at d=128.
        // One buffer is reused for every block: a fresh 256 MB tensor per block pays its page
        // faults again each time.
        let bias = bias.map(|b| Vec::<f32>::try_from(b.flatten(0, 1))).transpose()?;
        let mut idx = vec![0u32; n * k];
        let buffer = Tensor::empty([rows_per_block as i64, n as i64], (Kind::Float, Device::Cpu));
        for start in (0..n).step_by(rows_per_block) {
            let len = rows_per_block.min(n - start);
            let dots = buffer.narrow(0, 0, len as i64);
            let _ = x.narrow(0, start as i64, len as i64).mm_out(&dots, &xt);
            // SAFETY: `dots` is a contiguous f32 CPU tensor of len x n elements (the first rows of
            // `buffer`), alive and not written while the slice is used.
            let dots = unsafe { std::slice::from_raw_parts(dots.data_ptr() as *const f32, len * n) };
            let block_scores = scores.as_mut().map(|s| &mut s[start * k..(start + len) * k]);
            top_k_rows_cpu(dots, n, start, bias.as_deref(), k, &mut idx[start * k..(start + len) * k], block_scores);
        }
        idx
    } else {
        top_k_rows_torch(&x, &xt, bias.as_ref(), k, device, rows_per_block, scores.as_mut())?
    };
    let distances = scores.map(|mut s| {
        for (i, row) in s.chunks_mut(k).enumerate() {
            for v in row {
                *v = match &row_sq {
                    Some(sq) => (sq[i] - *v).max(0.0),
                    None => 1.0 - *v,
                };
            }
        }
        s
    });
    Ok((idx, distances))
}

/// The k best columns of each row of a block of dot products, in (score desc, index asc) order,
/// the row's own column (`first_row + r`) excluded. score = 2·dot + bias[j] for L2 (bias = −‖b‖²),
/// the dot itself for cosine. Rows are split over the CPU's threads.
fn top_k_rows_cpu(dots: &[f32], n: usize, first_row: usize, bias: Option<&[f32]>, k: usize, out: &mut [u32], scores: Option<&mut [f32]>) {
    // Cosine is the L2 form with scale 1 and no bias: one scan for both.
    let zeros;
    let (scale, bias) = match bias {
        Some(b) => (2.0, b),
        None => {
            zeros = vec![0f32; n];
            (1.0, zeros.as_slice())
        }
    };
    let rows = dots.len() / n;
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get()).min(rows.max(1));
    let rows_per_thread = rows.div_ceil(threads);
    let mut no_scores = Vec::new();
    let (scores, keep_scores) = match scores {
        Some(s) => (s, true),
        None => (no_scores.as_mut_slice(), false),
    };
    let mut score_chunks = scores.chunks_mut(rows_per_thread * k);
    std::thread::scope(|scope| {
        for (chunk, out) in out.chunks_mut(rows_per_thread * k).enumerate() {
            let r0 = chunk * rows_per_thread;
            let mut score_out = if keep_scores { score_chunks.next() } else { None };
            scope.spawn(move || {
                let mut scratch = RowScratch::default();
                for (r, out) in out.chunks_mut(k).enumerate() {
                    let row = &dots[(r0 + r) * n..(r0 + r + 1) * n];
                    let this = first_row + r0 + r;
                    top_k_of_row(row, scale, bias, this, k, &mut scratch);
                    for (o, &(_, j)) in out.iter_mut().zip(scratch.best.iter()) {
                        *o = j;
                    }
                    if let Some(s) = score_out.as_deref_mut() {
                        for (o, &(v, _)) in s[r * k..(r + 1) * k].iter_mut().zip(scratch.best.iter()) {
                            *o = v;
                        }
                    }
                }
            });
        }
    });
}

/// Columns per chunk in the row scan: each chunk's maximum is one vectorised reduction.
const CHUNK: usize = 16;

/// Leaves the k best columns of one row in `best` as (score, index), score = scale·dot + bias[j],
/// sorted by score desc then index asc, column `skip` (the row itself) excluded.
///
/// Two passes. The first takes the maximum of every chunk of 16 columns. If k + 1 chunks reach a
/// value m, at least k columns other than `skip` score ≥ m, so the (k+1)-th largest chunk maximum
/// is a lower bound on the k-th score, and a tight one. The second pass visits only the chunks
/// whose maximum reaches it (about k of them) and keeps their columns ≥ the bound. Columns equal
/// to the bound are kept, so ties are broken exactly by index in the final sort.
fn top_k_of_row(dots: &[f32], scale: f32, bias: &[f32], skip: usize, k: usize, scratch: &mut RowScratch) {
    let by_rank = |a: &(f32, u32), b: &(f32, u32)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
    let RowScratch { chunk_max, ranked, best } = scratch;
    chunk_max.clear();
    chunk_max.extend(dots.chunks(CHUNK).zip(bias.chunks(CHUNK)).map(|(d, b)| max_score(d, scale, b)));
    let bound = if chunk_max.len() > k {
        ranked.clone_from(chunk_max);
        let (_, kth, _) = ranked.select_nth_unstable_by(k, |a, b| b.total_cmp(a));
        *kth
    } else {
        f32::NEG_INFINITY
    };
    best.clear();
    for (c, (d, b)) in dots.chunks(CHUNK).zip(bias.chunks(CHUNK)).enumerate() {
        if chunk_max[c] < bound {
            continue;
        }
        for (i, (&d, &b)) in d.iter().zip(b).enumerate() {
            let (s, j) = (scale * d + b, c * CHUNK + i);
            if s >= bound && j != skip {
                best.push((s, j as u32));
            }
        }
    }
    if best.len() > 2 * k {
        best.select_nth_unstable_by(k - 1, by_rank);
        best.truncate(k);
    }
    best.sort_unstable_by(by_rank);
    best.truncate(k);
}

/// Per-thread buffers of the row scan, reused across rows; `best` holds the row's answer.
#[derive(Default)]
struct RowScratch {
    chunk_max: Vec<f32>,
    ranked: Vec<f32>,
    best: Vec<(f32, u32)>,
}

/// max over a chunk of scale·d + b, in 8 independent lanes so the compiler vectorises it.
fn max_score(d: &[f32], scale: f32, b: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; 8];
    let (d8, b8) = (d.chunks_exact(8), b.chunks_exact(8));
    let (d_rest, b_rest) = (d8.remainder(), b8.remainder());
    for (d, b) in d8.zip(b8) {
        for l in 0..8 {
            let s = scale * d[l] + b[l];
            lanes[l] = if s > lanes[l] { s } else { lanes[l] };
        }
    }
    let mut m = lanes.into_iter().fold(f32::NEG_INFINITY, |m, x| if x > m { x } else { m });
    for (&d, &b) in d_rest.iter().zip(b_rest) {
        let s = scale * d + b;
        m = if s > m { s } else { m };
    }
    m
}

/// The device path: one addmm and one topk per block, then exact tie-breaking on the host.
fn top_k_rows_torch(
    x: &Tensor,
    xt: &Tensor,
    bias: Option<&Tensor>,
    k: usize,
    device: Device,
    rows_per_block: usize,
    mut scores: Option<&mut Vec<f32>>,
) -> Result<Vec<u32>> {
    let n = x.size()[0] as usize;
    // Queries scaled by 2 once, so each block is a single addmm: -‖b‖² + (2a)·b.
    let x_query = if bias.is_some() { x * 2.0 } else { x.shallow_clone() };
    // One extra candidate tells whether the k-th place is tied with the first one left out.
    let take = (k + 1).min(n - 1);
    let mut out = Vec::with_capacity(n * k);
    let mut out_scores = Vec::with_capacity(if scores.is_some() { n * k } else { 0 });
    for start in (0..n).step_by(rows_per_block) {
        let len = rows_per_block.min(n - start) as i64;
        let q = x_query.narrow(0, start as i64, len);
        let mut score = match bias {
            Some(b) => b.addmm(&q, xt),
            None => q.mm(xt),
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
            append_row_with_ties_by_index(&mut out, &mut out_scores, v, j, k, || {
                Vec::<f32>::try_from(score.get(r as i64).to_device(Device::Cpu)).expect("score row")
            });
        }
    }
    if let Some(s) = scores.as_deref_mut() {
        *s = out_scores;
    }
    Ok(out.into_iter().map(|j| j as u32).collect())
}

/// Appends the k best of one row (and their scores to `scores`) in (score desc, index asc) order.
/// topk's order among equal scores is unspecified, so when the k-th score is tied with the next,
/// the whole row is re-ranked exactly (rare: duplicates, the `labels` oracle).
fn append_row_with_ties_by_index(out: &mut Vec<i64>, scores: &mut Vec<f32>, vals: &[f32], idx: &[i64], k: usize, full_row: impl FnOnce() -> Vec<f32>) {
    let tied_at_boundary = vals.len() > k && vals[k - 1] == vals[k];
    let mut pairs: Vec<(f32, i64)> = if !tied_at_boundary {
        vals[..k].iter().copied().zip(idx[..k].iter().copied()).collect()
    } else {
        let threshold = vals[k - 1];
        full_row().iter().enumerate().filter(|&(_, &s)| s >= threshold).map(|(j, &s)| (s, j as i64)).collect()
    };
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    pairs.truncate(k);
    scores.extend(pairs.iter().map(|p| p.0));
    out.extend(pairs.into_iter().map(|p| p.1));
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
    fn row_selection_breaks_heavy_ties_by_index() {
        // Scores from 5 values over 1,000 columns: the bound and the k-th place land inside ties.
        let mut rng = crate::knn::SplitMix64::new(7);
        let scores: Vec<f32> = (0..1000).map(|_| (rng.next_u64() % 5) as f32).collect();
        for k in [1, 3, 40, 200] {
            let mut scratch = RowScratch::default();
            top_k_of_row(&scores, 1.0, &[0.0; 1000], 11, k, &mut scratch);
            let mut reference: Vec<(f32, u32)> = scores.iter().enumerate().filter(|&(j, _)| j != 11).map(|(j, &s)| (s, j as u32)).collect();
            reference.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            reference.truncate(k);
            assert_eq!(scratch.best, reference, "k={k}");
        }
    }

    #[test]
    fn device_path_equals_naive_reference() {
        // The topk path GPUs take, run here on the CPU so it stays tested without one.
        let (t, rows) = random_rows(150, 12, 3);
        let sq = t.square().sum_dim_intlist(1, false, Kind::Float);
        let _guard = tch::no_grad_guard();
        for rows_per_block in [16, 150] {
            let mut scores = Vec::new();
            let idx =
                top_k_rows_torch(&t, &t.transpose(0, 1).contiguous(), Some(&-sq.unsqueeze(0)), 6, Device::Cpu, rows_per_block, Some(&mut scores)).unwrap();
            assert_eq!(idx, naive(&rows, 6, Metric::L2), "blocks of {rows_per_block}");
            // Its scores are the CPU path's (2a·b − ‖b‖², the same ranking key).
            let mut cpu_scores = vec![0f32; 150 * 6];
            let dots = Vec::<f32>::try_from(t.mm(&t.transpose(0, 1)).flatten(0, 1)).unwrap();
            let bias = Vec::<f32>::try_from(-sq.shallow_clone()).unwrap();
            let mut cpu_idx = vec![0u32; 150 * 6];
            top_k_rows_cpu(&dots, 150, 0, Some(&bias), 6, &mut cpu_idx, Some(&mut cpu_scores));
            for (a, b) in scores.iter().zip(&cpu_scores) {
                assert!((a - b).abs() <= 1e-3 * b.abs().max(1.0), "{a} vs {b}");
            }
        }
        let dup = Tensor::from_slice(&[1f32, 1., 1., 1., 1., 1., 5., 5., 9., 9.]).view([5, 2]);
        let dup_sq = -dup.square().sum_dim_intlist(1, false, Kind::Float).unsqueeze(0);
        let idx = top_k_rows_torch(&dup, &dup.transpose(0, 1).contiguous(), Some(&dup_sq), 2, Device::Cpu, 5, None).unwrap();
        assert_eq!(&idx[..6], &[1, 2, 0, 2, 0, 1], "ties broken by index");
    }

    /// Distances beside the table: squared Euclidean for L2, 1 − cosine for cosine, nearest first,
    /// equal to the naive f64 ones.
    #[test]
    fn distances_are_squared_l2_and_one_minus_cosine() {
        let (t, rows) = random_rows(200, 10, 4);
        for metric in [Metric::L2, Metric::Cosine] {
            let (table, d) = build_with_distances(&t, 7, metric, Device::Cpu).unwrap();
            assert_eq!(table.as_slice(), naive(&rows, 7, metric).as_slice(), "{metric:?}");
            for i in 0..200 {
                let row = &d[i * 7..(i + 1) * 7];
                assert!(row.windows(2).all(|w| w[0] <= w[1] + 1e-5), "{metric:?} row {i} nearest first: {row:?}");
                for (c, &j) in table.row(i).iter().enumerate() {
                    let (a, b) = (&rows[i], &rows[j as usize]);
                    let want = match metric {
                        Metric::L2 => a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum::<f64>(),
                        Metric::Cosine => {
                            let dot: f64 = a.iter().zip(b).map(|(x, y)| (*x as f64) * (*y as f64)).sum();
                            let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
                            1.0 - dot / (norm(a) * norm(b))
                        }
                    };
                    assert!((row[c] as f64 - want).abs() <= 1e-4 * want.abs().max(1.0), "{metric:?} ({i}, {j}): {} vs {want}", row[c]);
                }
            }
        }
    }

    #[test]
    fn k_too_large_is_a_clear_error() {
        let t = Tensor::zeros([5, 2], (Kind::Float, Device::Cpu));
        let err = build_table(&t, 5, Metric::L2, Device::Cpu).unwrap_err().to_string();
        assert!(err.contains("k = 5") && err.contains("lower `k`"), "{err}");
    }
}
