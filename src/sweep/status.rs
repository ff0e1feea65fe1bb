//! Where each run of a sweep stands, from the project's own records (result rows, failure
//! records, submissions) joined with SLURM's in-memory view of the jobs (`scontrol`); the test
//! cluster, like many, has no accounting database, so `sacct` is never used.

use super::cluster::{self, TaskRecord};
use super::expand::PlannedRun;
use super::submissions::{self, Submission};
use crate::results::row;
use anyhow::Result;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq)]
pub enum RunState {
    /// Its result row exists.
    Done,
    /// Queued or running under SLURM (`job` is `<array job>_<index>`).
    Queued { job: String, state: String, reason: String },
    /// Ended without a row; `reason` says why (the run's own error, or SLURM's).
    Failed { reason: String },
    /// Never submitted, or SLURM has forgotten it and it left nothing behind.
    Missing,
}

impl RunState {
    pub fn word(&self) -> &'static str {
        match self {
            RunState::Done => "done",
            RunState::Queued { state, .. } if state == "RUNNING" || state == "COMPLETING" => "running",
            RunState::Queued { .. } => "pending",
            RunState::Failed { .. } => "failed",
            RunState::Missing => "missing",
        }
    }

    pub fn detail(&self) -> String {
        match self {
            RunState::Done | RunState::Missing => String::new(),
            RunState::Queued { job, state, reason } => format!("{job} {state} ({reason})"),
            RunState::Failed { reason } => reason.clone(),
        }
    }
}

/// A run's latest array task: `<array job>_<index>`, its log, and what SLURM says about it.
struct QueuedTask {
    task: String,
    log: PathBuf,
    record: TaskRecord,
}

/// The latest SLURM record of each run id, over all submissions (later ones win).
fn queue_view(subs: &[Submission], workdir: &Path, sweep_name: &str) -> Result<HashMap<String, QueuedTask>> {
    let mut view = HashMap::new();
    for sub in subs {
        let Some(job) = &sub.array_job else { continue };
        for record in cluster::job_records(job)? {
            for &index in &record.indices {
                if let Some(id) = sub.manifest.run_id(index) {
                    let task = format!("{job}_{index}");
                    let log = submissions::logs_dir(workdir, sweep_name).join(format!("{task}.out"));
                    view.insert(id.to_string(), QueuedTask { task, log, record: record.clone() });
                }
            }
        }
    }
    Ok(view)
}

/// The state of every run. SLURM is asked only when the sweep has been submitted.
pub fn collect(runs: &[PlannedRun], workdir: &Path, sweep_name: &str) -> Result<Vec<RunState>> {
    let subs = submissions::list(workdir, sweep_name)?;
    let queue = if subs.iter().any(|s| s.array_job.is_some()) { queue_view(&subs, workdir, sweep_name)? } else { HashMap::new() };
    Ok(runs.iter().map(|run| state_of(run, queue.get(&run.id))).collect())
}

fn state_of(run: &PlannedRun, queued: Option<&QueuedTask>) -> RunState {
    let out = &run.spec.output_dir;
    if row::row_path(out, &run.id).exists() {
        return RunState::Done;
    }
    if let Some(q) = queued.filter(|q| q.record.is_active()) {
        let mut reason = q.record.reason.clone();
        if q.record.restarts > 0 {
            reason.push_str(&format!(", restarts {}", q.record.restarts));
        }
        return RunState::Queued { job: q.task.clone(), state: q.record.state.clone(), reason };
    }
    let failed = row::failure_path(out, &run.id);
    if failed.exists() {
        let reason = match row::read_failure(&failed) {
            Ok(r) => format!("{} [{}]", r.error.lines().next().unwrap_or("").trim(), failed.display()),
            Err(e) => format!("{e:#}"),
        };
        return RunState::Failed { reason };
    }
    if let Some(q) = queued {
        let record = &q.record;
        let reason = match (record.state.as_str(), record.exit_code.as_str()) {
            ("COMPLETED", _) => "the task completed but wrote no result row".to_string(),
            (_, "75:0") => "interrupted (exit 75) and not requeued; resubmit to resume from its checkpoint".to_string(),
            (state, code) => format!("SLURM {state} ({}), exit {code}", record.reason),
        };
        return RunState::Failed { reason: format!("{reason}; task {}, log {}", q.task, q.log.display()) };
    }
    RunState::Missing
}
