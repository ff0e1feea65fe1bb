//! LARS and momentum SGD on the CPU as two fused passes over host memory.
//!
//! The flat tensor update (`flat_lars`) is ~25 whole-buffer kernels: right for a GPU, where
//! launches are the cost, but on a CPU each kernel is a pass over the whole group (22 MB for the
//! small CNN's 2048-wide projector) into a freshly allocated buffer, and the step spent 75 ms
//! in the optimizer where PyTorch's per-tensor LARS spends 10. Here: one read of values and
//! gradients for the per-tensor norms, the trust ratios on the host, one read-modify-write of
//! values and momentum. Same arithmetic as `FlatGroup`'s tensor path (tested against each other
//! and against the per-tensor transcription of solo-learn's loop).

/// One parameter's place in the flat buffer.
pub struct Segment {
    pub offset: usize,
    pub len: usize,
    /// ndim ≠ 1: LARS scaling and weight decay apply (biases and norm parameters get neither).
    pub is_matrix: bool,
}

pub struct Hyper {
    pub lr: f64,
    pub weight_decay: f64,
    pub momentum: f64,
    pub eta: f64,
    pub lars: bool,
}

const EPS: f64 = 1e-8;
/// Below this many elements a second thread costs more than it saves.
const MIN_PER_THREAD: usize = 1 << 16;

/// `values` and `momentum`: the group's flat buffers; `grads[i]`: segment i's gradient in the
/// same element order (None: no gradient this step, treated as zeros, as the tensor kernel does).
pub fn step(values: &mut [f32], momentum: &mut [f32], grads: &[Option<&[f32]>], segments: &[Segment], h: &Hyper, threads: usize) {
    assert_eq!(values.len(), momentum.len());
    assert_eq!(grads.len(), segments.len());
    let threads = threads.clamp(1, (values.len() / MIN_PER_THREAD).max(1));
    let ranges = split(values.len(), threads);

    // Per segment: (scale of the gradient, scale of the decay term), d = g·r + p·(wd·r).
    let coefficients: Vec<(f32, f32)> = if h.lars {
        let partial: Vec<Vec<(f64, f64)>> = std::thread::scope(|scope| {
            let values = &*values;
            let handles: Vec<_> = ranges.iter().map(|&(lo, hi)| scope.spawn(move || squared_norms(values, grads, segments, lo, hi))).collect();
            handles.into_iter().map(|t| t.join().expect("norm thread")).collect()
        });
        (0..segments.len())
            .map(|i| {
                let (pp, gg) = partial.iter().fold((0.0, 0.0), |(a, b), p| (a + p[i].0, b + p[i].1));
                let (pn, gn) = (pp.sqrt(), gg.sqrt());
                if segments[i].is_matrix && pn > 0.0 && gn > 0.0 {
                    let r = (h.eta * pn / (gn + h.weight_decay * pn + EPS) / h.lr).min(1.0);
                    (r as f32, (h.weight_decay * r) as f32)
                } else {
                    (1.0, 0.0)
                }
            })
            .collect()
    } else {
        segments.iter().map(|s| (1.0, if s.is_matrix { h.weight_decay as f32 } else { 0.0 })).collect()
    };

    let (lr, mu) = (h.lr as f32, h.momentum as f32);
    std::thread::scope(|scope| {
        let (mut values, mut momentum) = (&mut *values, &mut *momentum);
        let mut start = 0;
        for &(lo, hi) in &ranges {
            let (v, v_rest) = std::mem::take(&mut values).split_at_mut(hi - lo);
            let (b, b_rest) = std::mem::take(&mut momentum).split_at_mut(hi - lo);
            (values, momentum) = (v_rest, b_rest);
            debug_assert_eq!(start, lo);
            start = hi;
            let coefficients = &coefficients;
            scope.spawn(move || {
                for_each_piece(segments, lo, hi, |i, a, z| {
                    let (r, decay) = coefficients[i];
                    let (v, b) = (&mut v[a - lo..z - lo], &mut b[a - lo..z - lo]);
                    let from = a - segments[i].offset;
                    match grads[i] {
                        Some(g) => {
                            for ((p, m), &g) in v.iter_mut().zip(b.iter_mut()).zip(&g[from..from + (z - a)]) {
                                *m = mu * *m + (g * r + *p * decay);
                                *p -= lr * *m;
                            }
                        }
                        None => {
                            for (p, m) in v.iter_mut().zip(b.iter_mut()) {
                                *m = mu * *m + *p * decay;
                                *p -= lr * *m;
                            }
                        }
                    }
                });
            });
        }
    });
}

/// Σp² and Σg² of every segment over the elements [lo, hi).
fn squared_norms(values: &[f32], grads: &[Option<&[f32]>], segments: &[Segment], lo: usize, hi: usize) -> Vec<(f64, f64)> {
    let mut out = vec![(0.0, 0.0); segments.len()];
    for_each_piece(segments, lo, hi, |i, a, z| {
        let from = a - segments[i].offset;
        out[i].0 += sum_of_squares(&values[a..z]);
        if let Some(g) = grads[i] {
            out[i].1 += sum_of_squares(&g[from..from + (z - a)]);
        }
    });
    out
}

/// Calls `f(segment, a, z)` for each segment's part of [lo, hi) (absolute element indices).
fn for_each_piece(segments: &[Segment], lo: usize, hi: usize, mut f: impl FnMut(usize, usize, usize)) {
    for (i, s) in segments.iter().enumerate() {
        let (a, z) = (s.offset.max(lo), (s.offset + s.len).min(hi));
        if a < z {
            f(i, a, z);
        }
    }
}

/// Σx², accurate for millions of elements: 16 float32 lanes over blocks of 1,024 (which the
/// compiler vectorises), the blocks added in float64. A plain float32 running sum of a
/// 4M-element matrix was 0.1% off; PyTorch's `norm` sums pairwise.
pub fn sum_of_squares(x: &[f32]) -> f64 {
    let mut total = 0.0f64;
    for block in x.chunks(1024) {
        let mut lanes = [0f32; 16];
        let mut chunks = block.chunks_exact(16);
        for c in &mut chunks {
            for j in 0..16 {
                lanes[j] += c[j] * c[j];
            }
        }
        total += lanes.iter().map(|&l| l as f64).sum::<f64>() + chunks.remainder().iter().map(|&v| (v * v) as f64).sum::<f64>();
    }
    total
}

/// [0, n) in `parts` contiguous ranges of near-equal length.
fn split(n: usize, parts: usize) -> Vec<(usize, usize)> {
    (0..parts).map(|t| (n * t / parts, n * (t + 1) / parts)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sum_of_squares_is_accurate_over_millions_of_elements() {
        let x: Vec<f32> = (0..4_000_003).map(|i| ((i % 997) as f32 - 498.0) * 1e-3).collect();
        let exact: f64 = x.iter().map(|&v| (v as f64) * (v as f64)).sum();
        assert!((sum_of_squares(&x) - exact).abs() / exact < 1e-6);
    }

    #[test]
    fn threads_do_not_change_the_result() {
        let segments = vec![
            Segment { offset: 0, len: 70_000, is_matrix: true },
            Segment { offset: 70_000, len: 10, is_matrix: false },
            Segment { offset: 70_010, len: 200_000, is_matrix: true },
        ];
        let n = 270_010;
        let v0: Vec<f32> = (0..n).map(|i| ((i * 7919 % 1000) as f32 - 500.0) * 1e-3).collect();
        let g: Vec<f32> = (0..n).map(|i| ((i * 104_729 % 1000) as f32 - 500.0) * 1e-4).collect();
        let grads: Vec<Option<&[f32]>> = segments.iter().map(|s| Some(&g[s.offset..s.offset + s.len])).collect();
        let h = Hyper { lr: 0.3, weight_decay: 1e-4, momentum: 0.9, eta: 0.02, lars: true };
        let run = |threads| {
            let (mut v, mut b) = (v0.clone(), vec![0.1f32; n]);
            step(&mut v, &mut b, &grads, &segments, &h, threads);
            (v, b)
        };
        let one = run(1);
        assert!(one.0 != v0, "the step moved the values");
        let three = run(3);
        // Only the norms' summation order differs (blocks start where a thread's range does).
        for (a, b) in three.0.iter().chain(&three.1).zip(one.0.iter().chain(&one.1)) {
            assert!((a - b).abs() <= 1e-6 * b.abs().max(1e-3), "{a} vs {b}");
        }
    }
}
