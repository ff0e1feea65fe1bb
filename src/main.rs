//! `gps`: a thin clap layer over the library; each subcommand's arguments live with its module.

use anyhow::Result;
use clap::{Parser, Subcommand};
use gps_ssl::{data, eval, export, knn, prior, results, sweep, train};

#[derive(Parser)]
#[command(name = "gps", version, about = "GPS-SSL experiments: train, sweep on SLURM, report")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Versions, threads, CUDA/cuDNN and the GPU.
    Info,
    /// Load, describe, cache and download datasets.
    #[command(subcommand)]
    Data(data::cli::DataCommand),
    /// Check a prior before spending GPU hours on it.
    #[command(subcommand)]
    Prior(prior::cli::PriorCommand),
    /// Micro-benchmarks printed from the CLI.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Train and evaluate one run and write its result row.
    Train(sweep::cli::TrainArgs),
    /// Run one task of a sweep (what a SLURM array task calls).
    Task(sweep::cli::TaskArgs),
    /// Expand, submit, run locally and watch sweeps.
    #[command(subcommand)]
    Sweep(sweep::cli::SweepCommand),
    /// Paper-style tables and plots from result rows.
    Report(results::cli::ReportArgs),
    /// A finished run's trained encoder for PyTorch: torchvision-named safetensors and a JSON.
    Export(export::cli::ExportArgs),
    /// Offline evaluations of finished runs, recorded in their rows.
    #[command(subcommand)]
    Eval(eval::cli::EvalCommand),
}

#[derive(Subcommand)]
enum BenchCommand {
    /// k-NN table build time next to the bare GEMM of the same size (ratio = build / GEMM).
    Knn(knn::cli::KnnBenchArgs),
    /// Samples per second of one run's training step (no evaluation); --compare-pytorch times
    /// the same step in plain PyTorch in the same call.
    Train(train::cli::TrainBenchArgs),
    /// Positives drawn per second for a batch of anchors from an N x k table (one thread).
    Sampler(knn::cli::SamplerBenchArgs),
}

fn main() {
    // Before any other tch call: registers CUDA where the full libtorch exists.
    gps_ssl::torch_runtime::init();
    let cli = Cli::parse();
    let result: Result<()> = match cli.command {
        Command::Info => info(),
        Command::Data(c) => c.run(),
        Command::Prior(c) => c.run(),
        Command::Bench(BenchCommand::Knn(a)) => a.run(),
        Command::Bench(BenchCommand::Train(a)) => a.run(),
        Command::Bench(BenchCommand::Sampler(a)) => a.run(),
        Command::Train(a) => a.run(),
        Command::Task(a) => a.run(),
        Command::Sweep(c) => c.run(),
        Command::Report(a) => a.run(),
        Command::Export(a) => a.run(),
        Command::Eval(c) => c.run(),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(exit_code(&e));
    }
}

/// 75 (EX_TEMPFAIL) for an interrupted run so wrappers can tell "requeue me" from a failure.
fn exit_code(e: &anyhow::Error) -> i32 {
    if e.downcast_ref::<gps_ssl::train::Interrupted>().is_some() { 75 } else { 1 }
}

fn info() -> Result<()> {
    println!("gps-ssl {}", env!("CARGO_PKG_VERSION"));
    println!("tch 0.24.0, libtorch {}", libtorch_version());
    println!("cpu threads: {}", tch::get_num_threads());
    let (version, what) = gps_ssl::numerics::HISTORY.last().expect("a numerics version");
    println!("numerics version: {version} ({what})");
    let cuda = tch::Cuda::is_available();
    match gps_ssl::torch_runtime::init() {
        None => println!("libtorch_cuda: loaded"),
        Some(why) => println!("libtorch_cuda: not loaded ({why})"),
    }
    println!("cuda available: {cuda}, devices: {}", tch::Cuda::device_count());
    if gps_ssl::torch_runtime::cuda_library_loaded() {
        println!("cudnn available: {}", tch::Cuda::cudnn_is_available());
        if cuda {
            println!("cudnn version: {}, cuda runtime: {}", tch::utils::version_cudnn(), tch::utils::version_cudart());
            println!("gpu: {}", gps_ssl::device::describe(tch::Device::Cuda(0)));
        }
    }
    Ok(())
}

/// libtorch's version as the wheel records it next to the library (torch/version.py).
fn libtorch_version() -> String {
    std::fs::read_to_string("/proc/self/maps")
        .ok()
        .and_then(|maps| {
            maps.lines()
                .filter_map(|l| l.split_whitespace().nth(5))
                .find(|p| p.ends_with("/libtorch_cpu.so"))
                .map(|p| std::path::Path::new(p).parent().unwrap().parent().unwrap().join("version.py"))
        })
        .and_then(|v| std::fs::read_to_string(v).ok())
        .and_then(|t| t.lines().find(|l| l.starts_with("__version__")).map(|l| l.split('\'').nth(1).unwrap_or("?").to_string()))
        .unwrap_or_else(|| "2.11 (version file not found)".into())
}
