//! Training one run: the loop, checkpoints, signals, the progress record other processes watch,
//! and the device self-check (the optimizers and schedule are `optim`'s).
pub mod checkpoint;
pub mod cli;
mod prepare;
mod progress;
pub mod progress_record;
pub mod selfcheck;
mod signals;
pub mod step;
mod trainer;

pub use prepare::{Prepared, prepare_on};
pub use trainer::{NonFiniteLoss, init_backbone};

use crate::config::RunSpec;
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::time::Instant;

/// How `run` reports progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// indicatif bars on a terminal, plain log lines otherwise (as under SLURM).
    Auto,
    Bars,
    Lines,
    Quiet,
}

/// Where a run keeps its checkpoints and how it reports.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Checkpoints for resume; a restarted run resumes from the newest good one here.
    pub ckpt_dir: PathBuf,
    pub progress: Progress,
}

/// The metrics and timings of a finished run (one result row).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunOutcome {
    /// Online linear probe top-1 on the test split, best epoch and last epoch (fractions in [0,1]).
    pub probe_top1_best: f64,
    pub probe_top1_last: f64,
    pub best_epoch: usize,
    /// Weighted k-NN top-1 on the test split (k and T from the spec's `eval`).
    pub knn_top1: f64,
    /// Share of sampled positives with the anchor's label (1.0 for the `none` prior).
    pub positive_purity: f64,
    pub final_loss: f64,
    pub epoch_losses: Vec<f64>,
    pub epoch_probe_top1: Vec<f64>,
    /// RankMe, alignment and uniformity at each evaluation.
    #[serde(default)]
    pub health: crate::eval::health::HealthHistory,
    pub epochs: usize,
    pub steps: u64,
    /// Whole run, preparation included.
    pub wall_s: f64,
    /// Training steps only; `samples_per_s` counts anchors per second of it.
    pub train_s: f64,
    pub samples_per_s: f64,
    pub device: String,
    /// Epoch the run resumed from, if it was restarted from a checkpoint.
    pub resumed_from_epoch: Option<usize>,
    /// Each earlier attempt of the run and how it ended (requeue, preemption, a lost node), in
    /// words; empty for a run done in one go.
    #[serde(default)]
    pub earlier_attempts: Vec<String>,
    /// `backbone_init`: the weights file and its sha256 (`<path> sha256:<16 hex>`).
    #[serde(default)]
    pub backbone_init: Option<String>,
    /// τ of the prior's candidates within a distance (`neighbours.mode: radius`).
    #[serde(default)]
    pub tau: Option<f64>,
    /// How many candidates the prior's table within τ gives each image.
    #[serde(default)]
    pub candidates: Option<CandidateStats>,
    /// The neighbour table's rebuilds from the model being trained (`prior_refresh`).
    #[serde(default)]
    pub refresh: checkpoint::RefreshHistory,
}

/// Candidates per image of a table within a distance, and the share of images left with only
/// themselves.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CandidateStats {
    pub mean: f64,
    pub median: f64,
    pub min: usize,
    pub max: usize,
    pub self_only: f64,
}

/// The run stopped on SIGTERM/SIGUSR1 after writing a checkpoint; rerunning resumes it.
#[derive(Debug, thiserror::Error)]
#[error("run interrupted by {signal} at epoch {epoch}, step {step}; checkpoint written, rerun to resume")]
pub struct Interrupted {
    pub signal: &'static str,
    pub epoch: usize,
    pub step: u64,
}

/// Trains and evaluates one run. Errors: bad input (named), non-finite loss (the run failed), or
/// `Interrupted` (downcast it to requeue).
pub fn run(spec: &RunSpec, opts: &TrainOptions) -> Result<RunOutcome> {
    // Before the data is loaded: a SLURM signal during a long decode must not kill the task.
    signals::install();
    spec.validate()?;
    progress_record::mark_preparing(&opts.ckpt_dir, &spec.run_id(), spec.epochs);
    let device = crate::device::resolve(spec.device)?;
    let started = Instant::now();
    let data = prepare_on(spec, device)?;
    run_prepared(spec, opts, data, device, started)
}

/// `run` on already loaded data (tests and benchmarks reuse one load for several runs).
pub fn run_prepared(spec: &RunSpec, opts: &TrainOptions, data: Prepared, device: tch::Device, started: Instant) -> Result<RunOutcome> {
    signals::install();
    let mut trainer = trainer::Trainer::new(spec, data, device)?;
    let resumed = trainer.resume(&opts.ckpt_dir).with_context(|| format!("resuming from {}", opts.ckpt_dir.display()))?;
    trainer.fit(opts)?;
    Ok(trainer.outcome(started, resumed))
}

/// What `bench` measured, and what a reference loop needs to run the same step.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct BenchReport {
    pub samples_per_s: f64,
    pub device: String,
    pub cuda: bool,
    pub autocast: bool,
    pub channels_last: bool,
    /// (channels, side, classes) of the training images.
    pub data_shape: (usize, usize, usize),
}

/// Samples per second of the training step of `spec` (see `Trainer::bench`).
pub fn bench(spec: &RunSpec, warmup: usize, steps: usize) -> Result<BenchReport> {
    spec.validate()?;
    let device = crate::device::resolve(spec.device)?;
    let data = prepare_on(spec, device)?;
    let data_shape = (data.train.channels(), data.train.images.size()[2] as usize, data.train.num_classes());
    let mut trainer = trainer::Trainer::new(spec, data, device)?;
    let samples_per_s = trainer.bench(warmup, steps)?;
    let (autocast, channels_last) = trainer.precision();
    Ok(BenchReport { samples_per_s, device: crate::device::describe(device), cuda: device.is_cuda(), autocast, channels_last, data_shape })
}

/// Loads the data and computes the prior embedding and neighbour table into the shared cache,
/// without training: a sweep runs this once per (dataset, prior, k) before its array tasks.
pub fn prepare(spec: &RunSpec) -> Result<()> {
    spec.validate()?;
    let device = crate::device::resolve(spec.device)?;
    prepare_on(spec, device).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Backbone, Method, PriorSpec};
    use crate::data::Dataset;
    use crate::knn::NeighbourTable;
    use tch::{Device, Kind, Tensor};

    /// Four classes of noisy images: a bright square in one of the four quadrants. The noise comes
    /// from a local SplitMix64, not libtorch's process-wide generator, which tests running on other
    /// threads draw from at the same time: the data must be the same on every run.
    fn quadrants(n: i64, seed: u64) -> Dataset {
        let mut rng = crate::knn::SplitMix64::new(seed);
        let noise: Vec<f32> = (0..n * 3 * 16 * 16).map(|_| rng.uniform() as f32).collect();
        let labels = Tensor::arange(n, (Kind::Int64, Device::Cpu)).remainder(4);
        let images = Tensor::from_slice(&noise).view([n, 3, 16, 16]) * 0.3;
        for c in 0..4i64 {
            let (r, col) = ((c / 2) * 8, (c % 2) * 8);
            let mask = labels.eq(c).to_kind(Kind::Float).view([n, 1, 1, 1]) * 0.7;
            let mut region = images.narrow(2, r, 8).narrow(3, col, 8);
            region += mask;
        }
        Dataset::new((images * 255.0).clamp(0.0, 255.0).to_kind(Kind::Uint8), labels, (0..4).map(|c| format!("q{c}")).collect()).unwrap()
    }

    fn tiny_spec(method: Method) -> RunSpec {
        let mut spec = RunSpec { backbone: Backbone::SmallCnn, method, epochs: 3, batch_size: 32, prior: PriorSpec::None, ..Default::default() };
        spec.optimizer.warmup_epochs = 0;
        spec.dataset.train_limit = None;
        spec
    }

    fn prepared(n: i64) -> Prepared {
        let train = quadrants(n, 1);
        let table = NeighbourTable::identity(train.len());
        let recipe = crate::recipe::Recipe::resolve(&tiny_spec(Method::Simclr), &train).unwrap();
        Prepared { train, test: quadrants(64, 2), recipe, table, tau: None }
    }

    fn loss_falls(method: Method, batch: usize, optimizer: crate::config::OptimizerKind) {
        let mut spec = tiny_spec(method);
        spec.batch_size = batch;
        spec.optimizer.kind = optimizer;
        if method == Method::Simclr {
            // With strong views of these 16 px toy images SimCLR's loss moves by less than batch
            // noise in 24 steps: 4.70, 4.76, 4.71 with one libtorch thread (it fell with two, by
            // float summation order alone). Flip-only views, the paper's weak setting, fall clearly.
            spec.augmentation.preset = crate::config::AugPreset::Weak;
        }
        let dir = tempfile::tempdir().unwrap();
        let opts = TrainOptions { ckpt_dir: dir.path().to_path_buf(), progress: Progress::Quiet };
        let out = run_prepared(&spec, &opts, prepared(256), Device::Cpu, Instant::now()).unwrap();
        eprintln!("{method:?} losses {:?}", out.epoch_losses);
        assert_eq!(out.steps, spec.epochs as u64 * (256 / batch) as u64);
        assert!(out.epoch_losses.iter().all(|l| l.is_finite()), "{method:?}: {:?}", out.epoch_losses);
        assert!(out.epoch_losses[2] < out.epoch_losses[0], "{method:?} loss did not fall: {:?}", out.epoch_losses);
        assert_eq!(out.positive_purity, 1.0);
        // Health at every evaluated epoch (every_epochs = 1): a rank within the feature width,
        // alignment of unit vectors in [0, 4], uniformity at most log(1) = 0.
        let h = &out.health;
        assert_eq!((h.epoch_rankme.len(), h.epoch_alignment.len(), h.epoch_uniformity.len()), (3, 3, 3));
        assert!(h.epoch_rankme.iter().all(|r| (1.0..=256.0).contains(r)), "{method:?}: {:?}", h.epoch_rankme);
        assert!(h.epoch_alignment.iter().all(|a| (0.0..=4.0).contains(a)), "{method:?}: {:?}", h.epoch_alignment);
        assert!(h.epoch_uniformity.iter().all(|u| *u <= 0.0 && u.is_finite()), "{method:?}: {:?}", h.epoch_uniformity);
    }

    #[test]
    fn simclr_loss_falls() {
        loss_falls(Method::Simclr, 32, crate::config::OptimizerKind::Lars);
    }
    #[test]
    fn byol_loss_falls() {
        loss_falls(Method::Byol, 32, crate::config::OptimizerKind::Lars);
    }
    #[test]
    fn vicreg_loss_falls() {
        loss_falls(Method::Vicreg, 32, crate::config::OptimizerKind::Lars);
    }
    // No Barlow Twins case here: on this toy set its epoch losses swing by ±30 around 250 for any
    // optimizer, lr and warmup tried (measured), because a 2048-d cross-correlation over a batch of
    // 32-64 is mostly batch noise. Its loss falling is tested on a fixed pair of views
    // (`ssl::barlow_twins` tests) and through the trainer on real CIFAR-10 images (tests/train_methods).
    #[test]
    fn nnclr_loss_falls() {
        loss_falls(Method::Nnclr, 32, crate::config::OptimizerKind::Lars);
    }
}
