//! One finished run as one row: the resolved spec's table keys, the metrics, timings, device and
//! code revision. Written as its own Parquet file so that any number of tasks can finish at once
//! without sharing a file (no locks, no lost or torn rows).

use crate::config::RunSpec;
use crate::train::RunOutcome;
use anyhow::{Context, Result, bail};
use polars::prelude::*;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResultRow {
    pub run_id: String,
    pub sweep: String,
    pub status: String,
    pub dataset: String,
    pub method: String,
    pub prior: String,
    pub k: i64,
    pub augmentation: String,
    pub strength: Option<f64>,
    pub seed: i64,
    pub backbone: String,
    pub epochs: i64,
    pub batch_size: i64,
    /// The spec's base learning rate; None: the method's default.
    pub lr: Option<f64>,
    pub probe_top1_best: f64,
    pub probe_top1_last: f64,
    pub best_epoch: i64,
    pub knn_top1: f64,
    pub positive_purity: f64,
    pub final_loss: f64,
    pub epoch_losses: Vec<f64>,
    /// Probe top-1 after each epoch (NaN where the epoch was not evaluated).
    pub epoch_probe_top1: Vec<f64>,
    /// Representation health at the last evaluation (None: never evaluated); per epoch in `health`.
    pub rankme: Option<f64>,
    pub alignment: Option<f64>,
    pub uniformity: Option<f64>,
    pub health: crate::eval::health::HealthHistory,
    /// Optimizer steps done (the same for a resumed run as for an uninterrupted one).
    pub steps: i64,
    pub wall_s: f64,
    pub train_s: f64,
    pub samples_per_s: f64,
    pub device: String,
    pub resumed_from_epoch: Option<i64>,
    /// The run's earlier attempts and how each ended (requeue, preemption, a lost node), one per
    /// line; null for a run done in one go.
    pub earlier_attempts: Option<String>,
    /// `backbone_init`: the pretrained weights the backbone started from (path and sha256).
    pub backbone_init: Option<String>,
    /// Offline linear evaluation (`gps eval linear`): null until it has run.
    pub linear: Option<LinearEval>,
    /// τ and the candidates per image of a prior's table within a distance (null for k nearest).
    pub tau: Option<f64>,
    pub candidates: Option<crate::train::CandidateStats>,
    /// The neighbour table's rebuilds from the model being trained (empty lists without any).
    pub refresh: crate::train::checkpoint::RefreshHistory,
    pub git_rev: String,
    /// The command line that produced the row (`gps task <sweep> --index I ...`), shell-quoted.
    pub command: String,
    /// The sweep file's `description:` (None for `gps train` and sweeps without one).
    pub sweep_description: Option<String>,
    pub finished_at: String,
    pub spec_json: String,
    /// The numerics version of the code that computed the run (`crate::numerics`); None only in
    /// rows read back from files written before it was recorded.
    pub numerics: Option<i64>,
}

/// The offline linear evaluation of a run's frozen encoder, as recorded in its row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinearEval {
    /// Top-1 on the test split after the last epoch (fraction).
    pub top1: f64,
    pub epochs: i64,
    /// Learning rate at batch size 256 (scaled linearly with the batch size used).
    pub lr: f64,
}

impl LinearEval {
    /// The row's `linear_*` columns (all null for `None`, so every row has the same schema).
    pub fn columns(eval: Option<&LinearEval>) -> [Column; 3] {
        [
            Column::new("linear_top1".into(), [eval.map(|e| e.top1)]),
            Column::new("linear_epochs".into(), [eval.map(|e| e.epochs)]),
            Column::new("linear_lr".into(), [eval.map(|e| e.lr)]),
        ]
    }
}

/// Columns that later versions of gps added to the row, with their types: rows written before
/// lack them, and a report reads them there as null.
pub fn added_column(name: &str) -> Option<DataType> {
    match name {
        "linear_top1" | "linear_lr" => Some(DataType::Float64),
        "linear_epochs" | "numerics" => Some(DataType::Int64),
        "backbone_init" | "earlier_attempts" => Some(DataType::String),
        "tau" | "candidates_mean" | "candidates_median" | "candidates_self_only" => Some(DataType::Float64),
        "candidates_min" | "candidates_max" => Some(DataType::Int64),
        "refresh_epochs" => Some(DataType::List(Box::new(DataType::Int64))),
        "refresh_purity" | "refresh_s" | "refresh_tau" => Some(DataType::List(Box::new(DataType::Float64))),
        _ => None,
    }
}

impl ResultRow {
    pub fn new(sweep: &str, spec: &RunSpec, outcome: &RunOutcome) -> ResultRow {
        let (rankme, alignment, uniformity) = outcome.health.last();
        ResultRow {
            run_id: spec.run_id(),
            sweep: sweep.to_string(),
            status: "ok".into(),
            dataset: spec.dataset.name.clone(),
            method: spec.method.as_str().into(),
            prior: spec.prior.to_string(),
            k: spec.k as i64,
            augmentation: spec.augmentation_label(),
            strength: spec.augmentation.strength,
            seed: spec.seed as i64,
            backbone: crate::config::serde_name(&spec.backbone),
            epochs: spec.epochs as i64,
            batch_size: spec.batch_size as i64,
            lr: spec.optimizer.lr,
            probe_top1_best: outcome.probe_top1_best,
            probe_top1_last: outcome.probe_top1_last,
            best_epoch: outcome.best_epoch as i64,
            knn_top1: outcome.knn_top1,
            positive_purity: outcome.positive_purity,
            final_loss: outcome.final_loss,
            epoch_losses: outcome.epoch_losses.clone(),
            epoch_probe_top1: outcome.epoch_probe_top1.clone(),
            rankme,
            alignment,
            uniformity,
            health: outcome.health.clone(),
            steps: outcome.steps as i64,
            wall_s: outcome.wall_s,
            train_s: outcome.train_s,
            samples_per_s: outcome.samples_per_s,
            device: outcome.device.clone(),
            resumed_from_epoch: outcome.resumed_from_epoch.map(|e| e as i64),
            earlier_attempts: (!outcome.earlier_attempts.is_empty()).then(|| outcome.earlier_attempts.join("\n")),
            backbone_init: outcome.backbone_init.clone(),
            linear: None,
            tau: outcome.tau,
            candidates: outcome.candidates,
            refresh: outcome.refresh.clone(),
            git_rev: git_revision(),
            command: command_line(),
            sweep_description: None,
            finished_at: now_rfc3339(),
            spec_json: serde_json::to_string(spec).expect("RunSpec serialises"),
            numerics: Some(crate::numerics::NUMERICS_VERSION as i64),
        }
    }

    /// The row as a one-row frame with fixed column types (nullable columns stay Float64/Int64
    /// even when null, so files from different runs always scan together).
    pub fn to_frame(&self) -> Result<DataFrame> {
        let s = |name: &str, v: &str| Column::new(name.into(), [v]);
        let f = |name: &str, v: f64| Column::new(name.into(), [v]);
        let i = |name: &str, v: i64| Column::new(name.into(), [v]);
        let list = |v: &[f64]| Series::new("".into(), v);
        let mut columns = vec![
            s("run_id", &self.run_id),
            s("sweep", &self.sweep),
            s("status", &self.status),
            s("dataset", &self.dataset),
            s("method", &self.method),
            s("prior", &self.prior),
            i("k", self.k),
            s("augmentation", &self.augmentation),
            Column::new("strength".into(), [self.strength]),
            i("seed", self.seed),
            s("backbone", &self.backbone),
            i("epochs", self.epochs),
            i("batch_size", self.batch_size),
            Column::new("lr".into(), [self.lr]),
            f("probe_top1_best", self.probe_top1_best),
            f("probe_top1_last", self.probe_top1_last),
            i("best_epoch", self.best_epoch),
            f("knn_top1", self.knn_top1),
            f("positive_purity", self.positive_purity),
            f("final_loss", self.final_loss),
            Column::new("epoch_losses".into(), [list(&self.epoch_losses)]),
            Column::new("epoch_probe_top1".into(), [list(&self.epoch_probe_top1)]),
            Column::new("rankme".into(), [self.rankme]),
            Column::new("alignment".into(), [self.alignment]),
            Column::new("uniformity".into(), [self.uniformity]),
            Column::new("epoch_rankme".into(), [list(&self.health.epoch_rankme)]),
            Column::new("epoch_alignment".into(), [list(&self.health.epoch_alignment)]),
            Column::new("epoch_uniformity".into(), [list(&self.health.epoch_uniformity)]),
            i("steps", self.steps),
            f("wall_s", self.wall_s),
            f("train_s", self.train_s),
            f("samples_per_s", self.samples_per_s),
            s("device", &self.device),
            Column::new("resumed_from_epoch".into(), [self.resumed_from_epoch]),
            Column::new("earlier_attempts".into(), [self.earlier_attempts.as_deref()]),
            Column::new("backbone_init".into(), [self.backbone_init.as_deref()]),
            s("git_rev", &self.git_rev),
            s("command", &self.command),
            Column::new("sweep_description".into(), [self.sweep_description.as_deref()]),
            s("finished_at", &self.finished_at),
            s("spec_json", &self.spec_json),
            Column::new("numerics".into(), [self.numerics]),
            Column::new("tau".into(), [self.tau]),
            Column::new("candidates_mean".into(), [self.candidates.map(|c| c.mean)]),
            Column::new("candidates_median".into(), [self.candidates.map(|c| c.median)]),
            Column::new("candidates_min".into(), [self.candidates.map(|c| c.min as i64)]),
            Column::new("candidates_max".into(), [self.candidates.map(|c| c.max as i64)]),
            Column::new("candidates_self_only".into(), [self.candidates.map(|c| c.self_only)]),
            Column::new("refresh_epochs".into(), [Series::new("".into(), self.refresh.epochs.iter().map(|&e| e as i64).collect::<Vec<i64>>())]),
            Column::new("refresh_purity".into(), [list(&self.refresh.purity)]),
            Column::new("refresh_s".into(), [list(&self.refresh.seconds)]),
            Column::new("refresh_tau".into(), [list(&self.refresh.tau)]),
        ];
        columns.extend(LinearEval::columns(self.linear.as_ref()));
        Ok(DataFrame::new(1, columns)?)
    }
}

/// `results/<sweep>/runs/`.
pub fn runs_dir(output_dir: &Path) -> PathBuf {
    output_dir.join("runs")
}

pub fn row_path(output_dir: &Path, run_id: &str) -> PathBuf {
    runs_dir(output_dir).join(format!("{run_id}.parquet"))
}

pub fn failure_path(output_dir: &Path, run_id: &str) -> PathBuf {
    runs_dir(output_dir).join(format!("{run_id}.failed.json"))
}

/// Writes the row to `<output_dir>/runs/<run id>.parquet` through a temp file in the same folder
/// and a rename, so a reader never sees half a file and two writers of one run never mix bytes
/// (the last complete file wins). Removes the run's failure record, if an earlier attempt left one.
pub fn write_row(output_dir: &Path, row: &ResultRow) -> Result<PathBuf> {
    let target = row_path(output_dir, &row.run_id);
    write_frame(&target, &mut row.to_frame()?)?;
    let failed = failure_path(output_dir, &row.run_id);
    if failed.exists() {
        std::fs::remove_file(&failed).with_context(|| format!("cannot remove stale failure record {}", failed.display()))?;
    }
    Ok(target)
}

fn write_frame(target: &Path, frame: &mut DataFrame) -> Result<()> {
    crate::atomic_file::write_file(target, |file| {
        // One row per file: column statistics cannot prune anything and compression saves
        // nothing, while both cost time for every file a report reads (~20% of a 10k-file scan).
        ParquetWriter::new(file).with_statistics(StatisticsOptions::empty()).with_compression(ParquetCompression::Uncompressed).finish(frame)?;
        Ok(())
    })
}

pub fn read_row(path: &Path) -> Result<DataFrame> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot open result row {}", path.display()))?;
    ParquetReader::new(file).finish().map_err(anyhow::Error::from).with_context(|| format!("cannot read result row {}", path.display()))
}

/// Adds or replaces columns of a finished run's row, rewriting the file atomically (a report
/// reading it meanwhile sees the old row or the new one, never half of either).
pub fn set_columns(path: &Path, columns: impl IntoIterator<Item = Column>) -> Result<()> {
    let mut frame = read_row(path)?;
    for column in columns {
        frame.with_column(column).map_err(anyhow::Error::from).with_context(|| format!("result row {}", path.display()))?;
    }
    write_frame(path, &mut frame)
}

/// The row of run `id` under `<output_dir>/runs/`, where `id` may be any unique prefix of a run id
/// (as git takes commits).
pub fn find_row(output_dir: &Path, id: &str) -> Result<(String, PathBuf)> {
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_hexdigit()) {
        bail!("--run {id:?}: a run id is 12 hex digits (or the start of one), as `gps sweep status` lists them");
    }
    let exact = row_path(output_dir, id);
    if exact.exists() {
        return Ok((id.to_string(), exact));
    }
    let dir = runs_dir(output_dir);
    let entries =
        std::fs::read_dir(&dir).with_context(|| format!("cannot list {}: is {} a results folder (results/<sweep>)?", dir.display(), output_dir.display()))?;
    let mut found: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".parquet").map(str::to_string))
        .filter(|name| !name.starts_with('.') && name.starts_with(id))
        .collect();
    found.sort();
    match found.len() {
        1 => {
            let id = found.pop().expect("one");
            let path = row_path(output_dir, &id);
            Ok((id, path))
        }
        0 if failure_path(output_dir, id).exists() => bail!("run {id} failed (see {}); it has no result row", failure_path(output_dir, id).display()),
        0 => bail!("no finished run `{id}` in {} (no result row); `gps sweep status <sweep>` shows where each run stands", dir.display()),
        _ => bail!("`{id}` is the start of {} run ids in {} ({}); give more digits", found.len(), dir.display(), found.join(", ")),
    }
}

/// A run that ended in an error: kept next to the rows so a failure is never silently dropped.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FailureRecord {
    pub run_id: String,
    pub sweep: String,
    pub status: String,
    pub error: String,
    /// `<array job>_<task>` under SLURM, `local` otherwise.
    pub job: String,
    pub git_rev: String,
    pub finished_at: String,
    pub spec: serde_json::Value,
}

impl FailureRecord {
    pub fn new(sweep: &str, spec: &RunSpec, error: &anyhow::Error) -> FailureRecord {
        let job = crate::host::slurm_job();
        FailureRecord {
            run_id: spec.run_id(),
            sweep: sweep.to_string(),
            status: "failed".into(),
            error: format!("{error:#}"),
            job,
            git_rev: git_revision(),
            finished_at: now_rfc3339(),
            spec: serde_json::to_value(spec).expect("RunSpec serialises"),
        }
    }
}

pub fn write_failure(output_dir: &Path, record: &FailureRecord) -> Result<PathBuf> {
    let target = failure_path(output_dir, &record.run_id);
    let json = serde_json::to_vec_pretty(record)?;
    crate::atomic_file::write_file(&target, |file| {
        use std::io::Write;
        file.write_all(&json)?;
        Ok(())
    })?;
    Ok(target)
}

pub fn read_failure(path: &Path) -> Result<FailureRecord> {
    let text = std::fs::read(path).with_context(|| format!("cannot read failure record {}", path.display()))?;
    serde_json::from_slice(&text).with_context(|| format!("failure record {} is not valid JSON", path.display()))
}

/// `git describe --always --dirty` of the working directory, or `unknown` outside a repository.
pub fn git_revision() -> String {
    static REV: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    REV.get_or_init(|| {
        std::process::Command::new("git")
            .args(["describe", "--always", "--dirty", "--abbrev=12"])
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "unknown".into())
    })
    .clone()
}

/// This process's command line, shell-quoted, the program as its file name (`gps`), so the row
/// says how to produce it again from the repository root without naming this machine's paths.
/// Paths under the working directory are written relative to it.
pub fn command_line() -> String {
    let mut args = std::env::args();
    let program = args.next().map(|p| Path::new(&p).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or(p)).unwrap_or_default();
    let cwd = std::env::current_dir().ok().and_then(|d| d.to_str().map(|d| format!("{}/", d.trim_end_matches('/'))));
    let relative = |a: String| match &cwd {
        Some(cwd) => match a.split_once('=') {
            Some((flag, path)) if flag.starts_with("--") && path.starts_with(cwd.as_str()) => format!("{flag}={}", &path[cwd.len()..]),
            _ if a.starts_with(cwd.as_str()) => a[cwd.len()..].to_string(),
            _ => a,
        },
        None => a,
    };
    std::iter::once(program).chain(args.map(relative)).map(|a| shell_quote(&a)).collect::<Vec<_>>().join(" ")
}

fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty() && arg.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+%".contains(c));
    if plain { arg.to_string() } else { crate::text::sh_quote(arg) }
}

pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}
