//! `gps eval linear <results dir> --run <id>`: the offline linear evaluation of a finished run's
//! frozen encoder, recorded as the `linear_*` columns of its result row.

use super::TrainedRun;
use crate::config::DeviceChoice;
use crate::data::Split;
use crate::eval::linear::{self, LinearOptions};
use crate::results::row::{self, LinearEval};
use anyhow::{Result, bail};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, clap::Subcommand)]
pub enum EvalCommand {
    /// Standard linear evaluation: frozen encoder, features of the un-augmented training split,
    /// a linear classifier (SGD, cosine schedule), top-1 on the test split; written into the
    /// run's row as linear_top1, linear_epochs, linear_lr.
    Linear(LinearArgs),
}

impl EvalCommand {
    pub fn run(self) -> Result<()> {
        match self {
            EvalCommand::Linear(a) => a.run(),
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct LinearArgs {
    /// The results folder of the run (`results/<sweep>`, holding runs/ and ckpt/).
    pub dir: PathBuf,
    /// The run id (or a unique prefix of it).
    #[arg(long)]
    pub run: String,
    /// Epochs of the classifier (100 is the standard protocol).
    #[arg(long, default_value_t = Self::DEFAULTS.0)]
    pub epochs: usize,
    #[arg(long, default_value_t = Self::DEFAULTS.1)]
    pub batch_size: usize,
    /// Learning rate at batch size 256 (scaled linearly with --batch-size).
    #[arg(long, default_value_t = Self::DEFAULTS.2)]
    pub lr: f64,
    #[arg(long, default_value_t = Self::DEFAULTS.3)]
    pub weight_decay: f64,
    /// Where to compute (default: the run's own `device`).
    #[arg(long, value_enum)]
    pub device: Option<DeviceChoice>,
}

impl LinearArgs {
    /// The standard protocol: (epochs, batch size, learning rate at batch 256, weight decay).
    pub const DEFAULTS: (usize, usize, f64, f64) = (100, 256, 0.1, 0.0);

    /// The evaluation of run `run` of `dir` with the standard protocol's settings.
    pub fn standard(dir: PathBuf, run: String) -> LinearArgs {
        let (epochs, batch_size, lr, weight_decay) = Self::DEFAULTS;
        LinearArgs { dir, run, epochs, batch_size, lr, weight_decay, device: None }
    }

    pub fn run(self) -> Result<()> {
        if self.epochs == 0 || self.batch_size == 0 {
            bail!("--epochs and --batch-size must be at least 1");
        }
        if !(self.lr > 0.0 && self.lr.is_finite() && self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            bail!("--lr must be a positive number and --weight-decay a non-negative one");
        }
        let started = Instant::now();
        let run = TrainedRun::load(&self.dir, &self.run)?;
        let device = crate::device::resolve(self.device.unwrap_or(run.spec.device))?;
        let (train, test) = (run.split(Split::Train)?, run.split(Split::Test)?);
        let encoder = run.encoder(device)?;
        let (train_f, test_f) = (encoder.features(&train.images), encoder.features(&test.images));
        let opts = LinearOptions {
            epochs: self.epochs,
            batch_size: self.batch_size,
            lr: self.lr,
            weight_decay: self.weight_decay,
            momentum: 0.9,
            seed: run.spec.seed,
        };
        let top1 = linear::train_and_test(&train_f, &train.labels.to_device(device), &test_f, &test.labels.to_device(device), train.num_classes(), &opts);
        let eval = LinearEval { top1, epochs: self.epochs as i64, lr: self.lr };
        row::set_columns(&run.row_path, LinearEval::columns(Some(&eval)))?;
        println!(
            "run {}: linear top-1 {:.2}% ({} epochs on {} training features, {} test images; online probe {}) in {:.1} s -> {}",
            run.run_id,
            100.0 * top1,
            self.epochs,
            train.len(),
            test.len(),
            probe_text(&run),
            started.elapsed().as_secs_f64(),
            run.row_path.display()
        );
        Ok(())
    }
}

fn probe_text(run: &TrainedRun) -> String {
    match run.row.column("probe_top1_last").ok().and_then(|c| c.f64().ok()?.get(0)) {
        Some(p) => format!("{:.2}% at the last epoch", 100.0 * p),
        None => "not recorded".into(),
    }
}
