//! Exact k-NN table build next to the bare GEMM of the same size, in the same process.
//! Default grid: N = 10k, d in {128, 512, 2048}, k in {5, 50}. `GPS_BENCH_FULL=1` adds N = 50k
//! (minutes per point on a 2-core machine). Target: build within 1.25x of its GEMM on CPU.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use gps_ssl::config::Metric;
use gps_ssl::knn::{build_table, pairwise_gemm};
use std::time::Duration;
use tch::{Device, Kind, Tensor};

fn knn(c: &mut Criterion) {
    let ns: &[usize] = if std::env::var_os("GPS_BENCH_FULL").is_some() { &[10_000, 50_000] } else { &[10_000] };
    let mut g = c.benchmark_group("knn_table");
    g.sample_size(10).measurement_time(Duration::from_secs(20)).warm_up_time(Duration::from_secs(1));
    for &n in ns {
        for d in [128usize, 512, 2048] {
            tch::manual_seed(0);
            let emb = Tensor::randn([n as i64, d as i64], (Kind::Float, Device::Cpu));
            g.bench_with_input(BenchmarkId::new(format!("gemm_n{n}"), d), &d, |b, _| b.iter(|| pairwise_gemm(&emb, Device::Cpu)));
            for k in [5usize, 50] {
                g.bench_with_input(BenchmarkId::new(format!("build_n{n}_k{k}"), d), &d, |b, _| {
                    b.iter(|| build_table(&emb, k, Metric::L2, Device::Cpu).unwrap())
                });
            }
        }
    }
    g.finish();
}

criterion_group!(benches, knn);
criterion_main!(benches);
