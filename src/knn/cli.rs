//! `gps bench knn`: the k-NN table build next to the bare GEMM of the same size, in one process,
//! and `gps bench sampler`: the sampler's throughput.

use super::{NeighbourTable, PositiveSampler, SplitMix64, build_table, pairwise_gemm};
use crate::config::{DeviceChoice, Metric};
use anyhow::Result;
use std::time::Instant;
use tch::{Kind, Tensor};

/// `gps bench knn`: the k-NN table build next to the bare GEMM of the same size.
#[derive(Debug, clap::Args)]
pub struct KnnBenchArgs {
    #[arg(long, default_value_t = 10_000)]
    n: usize,
    #[arg(long, default_value_t = 512)]
    d: usize,
    #[arg(long, default_value_t = 50)]
    k: usize,
    #[arg(long, value_enum, default_value = "l2")]
    metric: MetricArg,
    #[arg(long, value_enum, default_value = "auto")]
    device: DeviceArg,
    /// Timed repetitions (the best is reported).
    #[arg(long, default_value_t = 3)]
    repeat: usize,
}

/// `gps bench sampler`: positives drawn per second from an N x k table (one thread).
#[derive(Debug, clap::Args)]
pub struct SamplerBenchArgs {
    #[arg(long, default_value_t = 50_000)]
    n: usize,
    #[arg(long, default_value_t = 50)]
    k: usize,
    #[arg(long, default_value_t = 256)]
    batch: usize,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum MetricArg {
    L2,
    Cosine,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum DeviceArg {
    Auto,
    Cpu,
    Cuda,
}

impl KnnBenchArgs {
    pub fn run(self) -> Result<()> {
        let KnnBenchArgs { n, d, k, metric, device, repeat } = self;
        let device = crate::device::resolve(match device {
            DeviceArg::Auto => DeviceChoice::Auto,
            DeviceArg::Cpu => DeviceChoice::Cpu,
            DeviceArg::Cuda => DeviceChoice::Cuda,
        })?;
        let metric = match metric {
            MetricArg::L2 => Metric::L2,
            MetricArg::Cosine => Metric::Cosine,
        };
        tch::manual_seed(0);
        let emb = Tensor::randn([n as i64, d as i64], (Kind::Float, device));
        let sync = || {
            if device.is_cuda() {
                tch::Cuda::synchronize(0);
            }
        };
        // Warm-up (allocator, cuBLAS handles), then best of `repeat`.
        build_table(&emb, k, metric, device)?;
        pairwise_gemm(&emb, device);
        sync();
        let (mut build_s, mut gemm_s) = (f64::INFINITY, f64::INFINITY);
        for _ in 0..repeat.max(1) {
            let t = Instant::now();
            build_table(&emb, k, metric, device)?;
            sync();
            build_s = build_s.min(t.elapsed().as_secs_f64());
            let t = Instant::now();
            pairwise_gemm(&emb, device);
            sync();
            gemm_s = gemm_s.min(t.elapsed().as_secs_f64());
        }
        let flops = 2.0 * (n as f64) * (n as f64) * d as f64;
        println!("device: {}", crate::device::describe(device));
        println!("knn table  n={n} d={d} k={k} {metric:?}: {:9.1} ms", build_s * 1e3);
        println!("bare GEMM  {n}x{d} @ {d}x{n}:        {:9.1} ms ({:.1} GFLOP/s)", gemm_s * 1e3, flops / gemm_s / 1e9);
        println!("ratio build/GEMM: {:.3} (target <= 1.25 on CPU)", build_s / gemm_s);
        Ok(())
    }
}

impl SamplerBenchArgs {
    pub fn run(self) -> Result<()> {
        let SamplerBenchArgs { n, k, batch } = self;
        let mut rng = SplitMix64::new(1);
        let idx: Vec<u32> = (0..n * k).map(|_| rng.below(n as u32)).collect();
        let sampler = PositiveSampler::new(NeighbourTable::new(n, k, idx)?);
        let perm = rng.permutation(n);
        let mut out = Vec::with_capacity(batch);
        // One untimed pass: the table's pages are touched, as in a run after its first epoch.
        for chunk in perm.chunks_exact(batch) {
            sampler.sample_into(chunk, &mut rng, &mut out);
        }
        let mut drawn = 0usize;
        let t = Instant::now();
        while t.elapsed().as_secs_f64() < 1.0 {
            for chunk in perm.chunks_exact(batch) {
                sampler.sample_into(chunk, &mut rng, &mut out);
                drawn += out.len();
            }
        }
        let s = t.elapsed().as_secs_f64();
        println!("sampler n={n} k={k} batch={batch}: {:.1} M positives/s (one thread; table {} MB; target >= 100)", drawn as f64 / s / 1e6, (n * k * 4) >> 20);
        Ok(())
    }
}
