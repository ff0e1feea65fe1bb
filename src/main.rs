//! `gps`: a thin clap layer over the library; each subcommand's arguments live with its module.

use anyhow::Result;
use clap::{Parser, Subcommand};
use gps_ssl::{data, export, inspect, knn, results, sweep, train, trained};

#[derive(Parser)]
#[command(name = "gps", version, about = "GPS-SSL experiments: train, sweep on SLURM, report")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Versions, libtorch's install, CUDA libraries, driver and devices (and why CUDA is not
    /// usable, with what to run); --check runs the device self-check.
    Info(gps_ssl::info::InfoArgs),
    /// Load, describe, cache and download datasets.
    #[command(subcommand)]
    Data(data::cli::DataCommand),
    /// Check a prior before spending GPU hours on it.
    #[command(subcommand)]
    Prior(inspect::PriorCommand),
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
    Eval(trained::linear_eval::EvalCommand),
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
        Command::Info(a) => a.run(),
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
