//! Guided positive sampling throughput, one thread, batches of 256 anchors from a random
//! permutation: N = 50k (a 10 MB table at k = 50, CIFAR-10) and N = 1.28M (256 MB at k = 50,
//! ImageNet-sized, far beyond the last-level cache), k in {1, 5, 50}.
//! Target: at least 100 M positives/s on one core for the table beyond the cache.
//! `sampler-plain` is the loop before the prefetching one (one dependent read per anchor), timed
//! in the same run so the gain is a ratio of figures from one machine state. `within-tau` draws
//! from a table of candidates within a distance (rows of 1 to 2k − 1 candidates, as many entries
//! as the k table): target within 2x of the fixed-k sampler at N = 1.28M.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use gps_ssl::knn::{NeighbourTable, PositiveSampler, SplitMix64};
use std::hint::black_box;

/// Batches timed per iteration (51,200 draws), the same for every N.
const BATCHES: usize = 200;

fn sampler(c: &mut Criterion) {
    let batch = 256;
    let mut g = c.benchmark_group("sampler");
    g.throughput(Throughput::Elements((BATCHES * batch) as u64));
    g.sample_size(20);
    for n in [50_000usize, 1_280_000] {
        for k in [1usize, 5, 50] {
            let mut rng = SplitMix64::new(1);
            let idx: Vec<u32> = (0..n * k).map(|_| rng.below(n as u32)).collect();
            let s = PositiveSampler::new(NeighbourTable::new(n, k, idx).unwrap());
            let perm = rng.permutation(n);
            let mut out = Vec::with_capacity(batch);
            let mut next = 0usize;
            let batches = perm.len() / batch;
            g.bench_with_input(BenchmarkId::new(format!("n{n}"), k), &k, |b, _| {
                b.iter(|| {
                    for _ in 0..BATCHES {
                        let chunk = &perm[next * batch..(next + 1) * batch];
                        next = (next + 1) % batches;
                        s.sample_into(black_box(chunk), &mut rng, &mut out);
                        black_box(&out);
                    }
                })
            });
            // Candidates within a distance (`neighbours.mode: radius`): the same number of entries
            // in rows of 1 to 2k − 1 candidates, read through the row offsets.
            let mut offsets = vec![0u64];
            let mut idx_var = Vec::with_capacity(n * k);
            for _ in 0..n {
                let len = 1 + rng.below(2 * k as u32 - 1) as usize;
                idx_var.extend((0..len).map(|_| rng.below(n as u32)));
                offsets.push(idx_var.len() as u64);
            }
            let sv = PositiveSampler::new(NeighbourTable::with_offsets(offsets, idx_var).unwrap());
            g.bench_with_input(BenchmarkId::new(format!("within-tau-n{n}"), k), &k, |b, _| {
                b.iter(|| {
                    for _ in 0..BATCHES {
                        let chunk = &perm[next * batch..(next + 1) * batch];
                        next = (next + 1) % batches;
                        sv.sample_into(black_box(chunk), &mut rng, &mut out);
                        black_box(&out);
                    }
                })
            });
            let table = s.table().as_slice();
            g.bench_with_input(BenchmarkId::new(format!("plain-n{n}"), k), &k, |b, _| {
                b.iter(|| {
                    for _ in 0..BATCHES {
                        let chunk = &perm[next * batch..(next + 1) * batch];
                        next = (next + 1) % batches;
                        out.clear();
                        out.extend(black_box(chunk).iter().map(|&a| table[a as usize * k + if k == 1 { 0 } else { rng.below(k as u32) as usize }]));
                        black_box(&out);
                    }
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, sampler);
criterion_main!(benches);
