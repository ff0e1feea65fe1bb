//! `gps bench knn`: the k-NN table build next to the bare GEMM of the same size, in one process,
//! and the sampler's throughput.

use super::{NeighbourTable, PositiveSampler, SplitMix64, build_table, pairwise_gemm};
use crate::config::{DeviceChoice, Metric};
use anyhow::Result;
use std::time::Instant;
use tch::{Kind, Tensor};

#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// k-NN table build time next to the bare GEMM of the same size (ratio = build / GEMM).
    Knn {
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
    },
    /// Samples per second of one run's training step (no evaluation): `warmup` untimed steps,
    /// then `steps` timed ones.
    Train {
        /// The run spec (YAML), as `gps train` takes it.
        spec: std::path::PathBuf,
        #[arg(long, default_value_t = 10)]
        warmup: usize,
        #[arg(long, default_value_t = 60)]
        steps: usize,
    },
    /// Positives drawn per second for a batch of anchors from an N x k table (one thread).
    Sampler {
        #[arg(long, default_value_t = 50_000)]
        n: usize,
        #[arg(long, default_value_t = 50)]
        k: usize,
        #[arg(long, default_value_t = 256)]
        batch: usize,
    },
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

impl BenchCommand {
    pub fn run(self) -> Result<()> {
        match self {
            BenchCommand::Knn { n, d, k, metric, device, repeat } => {
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
            }
            BenchCommand::Train { spec, warmup, steps } => {
                let run = crate::config::RunSpec::from_file(&spec)?;
                let (sps, device) = crate::train::bench(&run, warmup, steps)?;
                println!(
                    "train step {} {} {} batch={} aug={} prior={} on {device}: {sps:.0} samples/s ({:.2} s per 50k-image epoch)",
                    spec.display(),
                    run.method.as_str(),
                    serde_json::to_string(&run.backbone)?.trim_matches('"'),
                    run.batch_size,
                    run.augmentation_label(),
                    run.prior,
                    50_000.0 / sps
                );
            }
            BenchCommand::Sampler { n, k, batch } => {
                let mut rng = SplitMix64::new(1);
                let idx: Vec<u32> = (0..n * k).map(|_| rng.below(n as u32)).collect();
                let sampler = PositiveSampler::new(NeighbourTable::new(n, k, idx)?);
                let perm = rng.permutation(n);
                let mut out = Vec::with_capacity(batch);
                let mut drawn = 0usize;
                let t = Instant::now();
                while t.elapsed().as_secs_f64() < 1.0 {
                    for chunk in perm.chunks_exact(batch) {
                        sampler.sample_into(chunk, &mut rng, &mut out);
                        drawn += out.len();
                    }
                }
                let s = t.elapsed().as_secs_f64();
                println!("sampler n={n} k={k} batch={batch}: {:.1} M positives/s (one thread; target >= 50)", drawn as f64 / s / 1e6);
            }
        }
        Ok(())
    }
}
