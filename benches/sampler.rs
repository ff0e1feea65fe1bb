//! Guided positive sampling throughput: N = 50k anchors, k in {1, 5, 50}, batches of 256.
//! Target (docs/performance): at least 50 M positives/s on one core.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use gps_ssl::knn::{NeighbourTable, PositiveSampler, SplitMix64};
use std::hint::black_box;

fn sampler(c: &mut Criterion) {
    let n = 50_000;
    let batch = 256;
    let mut g = c.benchmark_group("sampler");
    g.throughput(Throughput::Elements(n as u64 / batch as u64 * batch as u64));
    for k in [1usize, 5, 50] {
        let mut rng = SplitMix64::new(1);
        let idx: Vec<u32> = (0..n * k).map(|_| rng.below(n as u32)).collect();
        let s = PositiveSampler::new(NeighbourTable::new(n, k, idx).unwrap());
        let perm = rng.permutation(n);
        let mut out = Vec::with_capacity(batch);
        g.bench_with_input(BenchmarkId::new("epoch_of_batches", k), &k, |b, _| {
            b.iter(|| {
                for chunk in perm.chunks_exact(batch) {
                    s.sample_into(black_box(chunk), &mut rng, &mut out);
                    black_box(&out);
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, sampler);
criterion_main!(benches);
