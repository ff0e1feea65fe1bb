//! One run, start to finish, the same way wherever it runs (`gps task` under SLURM, the local
//! executor's workers, `gps train`): train (resuming from the run's checkpoints), then write its
//! result row, or its failure record, or (when interrupted) nothing and ask to be requeued.

use super::expand::PlannedRun;
use super::manifest::Manifest;
use crate::config::RunSpec;
use crate::results::row::{self, FailureRecord, ResultRow};
use crate::train::{self, Interrupted, Progress, TrainOptions, checkpoint};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

/// `<output_dir>/ckpt/<run id>/`: survives requeues, so a restarted task resumes.
pub fn checkpoint_dir(spec: &RunSpec) -> PathBuf {
    spec.output_dir.join("ckpt").join(spec.run_id())
}

/// Trains `spec` and records the outcome under its output dir, with the sweep's description when
/// it has one. Returns the row's path.
/// Interrupted runs return the `Interrupted` error untouched (exit code 75 in main) and leave no
/// record: their checkpoint is their record. Under SLURM a USR1 interruption (the time limit is
/// near) requeues the array task first. A finished run keeps its final checkpoint (the trained
/// model) unless `keep_checkpoint` is false.
pub fn run_and_record(sweep: &str, description: Option<&str>, spec: &RunSpec, progress: Progress, keep_checkpoint: bool) -> Result<PathBuf> {
    let id = spec.run_id();
    let opts = TrainOptions { ckpt_dir: checkpoint_dir(spec), progress };
    match train::run(spec, &opts) {
        Ok(outcome) => {
            let row = ResultRow { sweep_description: description.map(str::to_string), ..ResultRow::new(sweep, spec, &outcome) };
            let path = row::write_row(&spec.output_dir, &row).with_context(|| format!("run {id} finished but its result row could not be written"))?;
            eprintln!(
                "[gps] run {id} done: probe top-1 {:.2}% (best, epoch {}), k-NN top-1 {:.2}%, {:.1} s -> {}",
                100.0 * outcome.probe_top1_best,
                outcome.best_epoch,
                100.0 * outcome.knn_top1,
                outcome.wall_s,
                path.display()
            );
            // The row is safe: a checkpoint that cannot be tidied up is not a failed run.
            if let Err(e) = checkpoint::after_finish(&opts.ckpt_dir, keep_checkpoint) {
                eprintln!("[gps] warning: {e:#}");
            }
            Ok(path)
        }
        Err(e) => {
            if let Some(interrupted) = e.downcast_ref::<Interrupted>() {
                if interrupted.signal.contains("USR1") {
                    request_requeue();
                }
                return Err(e);
            }
            let record = FailureRecord::new(sweep, spec, &e);
            match row::write_failure(&spec.output_dir, &record) {
                Ok(path) => eprintln!("[gps] run {id} failed; reason recorded in {}", path.display()),
                Err(w) => eprintln!("[gps] run {id} failed and its failure record could not be written: {w:#}"),
            }
            Err(e)
        }
    }
}

/// Asks SLURM to requeue this array task (it resumes from its checkpoint when it runs again).
/// Outside SLURM there is nothing to ask: rerunning the same command resumes.
fn request_requeue() {
    let (Ok(job), Ok(task)) = (std::env::var("SLURM_ARRAY_JOB_ID"), std::env::var("SLURM_ARRAY_TASK_ID")) else {
        return;
    };
    let target = format!("{job}_{task}");
    match std::process::Command::new("scontrol").args(["requeue", &target]).output() {
        Ok(o) if o.status.success() => eprintln!("[gps] requeued {target}; it resumes from its checkpoint"),
        Ok(o) => eprintln!("[gps] `scontrol requeue {target}` failed: {}", String::from_utf8_lossy(&o.stderr).trim()),
        Err(e) => eprintln!("[gps] cannot run `scontrol requeue {target}`: {e}"),
    }
}

/// The run an array task stands for: line `index` of the submission's manifest (a run id) looked
/// up in the sweep's current expansion, or, without a manifest, run `index` of the expansion.
pub fn resolve<'a>(sweep_path: &Path, runs: &'a [PlannedRun], index: usize, manifest: Option<&Path>) -> Result<&'a PlannedRun> {
    let Some(manifest) = manifest else {
        return runs.get(index).with_context(|| format!("index {index} is out of range: {} has {} runs (0..{})", sweep_path.display(), runs.len(), runs.len()));
    };
    let manifest = Manifest::read(manifest)?;
    let Some(id) = manifest.run_id(index) else {
        bail!("index {index} is not in manifest {} ({} entries)", manifest.path.display(), manifest.entries.len());
    };
    runs.iter().find(|r| r.id == id).with_context(|| {
        format!(
            "run {id} (index {index} of {}) is no longer in {}: the sweep file was edited after submission so that this run changed; resubmit with `gps sweep submit`",
            manifest.path.display(),
            sweep_path.display()
        )
    })
}
