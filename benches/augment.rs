//! On-device augmentation throughput, here on the CPU: one batch of 256 CIFAR-sized uint8 images
//! through each of the authors' pipelines (parameters drawn on the host, pixel ops as whole-batch
//! tensor ops). On a GPU the same code runs as part of `gps bench train`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use gps_ssl::augment::{Augmenter, Pipeline};
use gps_ssl::knn::SplitMix64;
use std::hint::black_box;
use tch::{Device, Kind, Tensor};

fn augment(c: &mut Criterion) {
    let batch = 256i64;
    tch::manual_seed(0);
    let images = Tensor::randint(256, [batch, 3, 32, 32], (Kind::Uint8, Device::Cpu));
    let mut g = c.benchmark_group("augment");
    g.throughput(Throughput::Elements(batch as u64));
    for (name, pipeline) in
        [("weak", Pipeline::RECONSTRUCTION), ("weak_rrc", Pipeline::WEAK_RRC), ("symmetric", Pipeline::SYMMETRIC), ("asymmetric_2", Pipeline::ASYMMETRIC_2)]
    {
        let aug = Augmenter::new(pipeline, &[0.49, 0.48, 0.45], &[0.25, 0.24, 0.26], Device::Cpu);
        let mut rng = SplitMix64::new(7);
        g.bench_with_input(BenchmarkId::new("batch_256", name), &name, |b, _| b.iter(|| black_box(aug.apply(black_box(&images), &mut rng))));
    }
    g.finish();
}

criterion_group!(benches, augment);
criterion_main!(benches);
