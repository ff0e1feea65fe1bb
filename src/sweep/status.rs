//! Where each run of a sweep stands, from the project's own records (result rows, failure
//! records, submissions, each run's progress record, the local executor's queue) joined with
//! SLURM's in-memory view of the jobs (`scontrol`); the test cluster, like many, has no accounting
//! database, so `sacct` is never used.

use super::cluster::{self, TaskRecord};
use super::expand::PlannedRun;
use super::local_queue::LocalQueue;
use super::submissions::{self, Submission};
use super::task::checkpoint_dir;
use crate::results::row;
use crate::train::progress_record::{self, Phase, ProgressRecord};
use anyhow::Result;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq)]
pub enum RunState {
    /// Its result row exists.
    Done,
    /// Queued or running: under SLURM (`job` is `<array job>_<index>`), by the local executor
    /// (`local`), or by a process whose progress record is fresh.
    Queued { job: String, state: String, reason: String },
    /// Running, but its progress record has not moved for much longer than an epoch takes.
    Stalled { job: String, idle_s: f64, epoch_s: Option<f64> },
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
            RunState::Stalled { .. } => "stalled",
            RunState::Failed { .. } => "failed",
            RunState::Missing => "missing",
        }
    }

    pub fn detail(&self) -> String {
        match self {
            RunState::Done | RunState::Missing => String::new(),
            RunState::Queued { job, state, reason } => format!("{job} {state} ({reason})"),
            RunState::Stalled { job, idle_s, epoch_s } => format!(
                "{job}: no progress for {}{}; check its log, or cancel it and resubmit (it resumes from its checkpoint)",
                duration(*idle_s),
                epoch_s.map(|e| format!(" (an epoch takes about {})", duration(e))).unwrap_or_default()
            ),
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

/// `1h 02m`, `3m 05s`, `42s`.
pub fn duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// A run's state with its progress record (epoch, loss, ETA), if it has one.
#[derive(Debug, Clone)]
pub struct RunView {
    pub state: RunState,
    pub progress: Option<ProgressRecord>,
}

/// The live local executor's runs, as SLURM-like task records.
fn local_view(workdir: &Path, sweep_name: &str) -> Result<HashMap<String, QueuedTask>> {
    let mut view = HashMap::new();
    let Some(queue) = LocalQueue::read_live(&submissions::sweep_dir(workdir, sweep_name))? else {
        return Ok(view);
    };
    let logs = submissions::logs_dir(workdir, sweep_name);
    let entries = queue.pending.iter().map(|id| (id, "PENDING", format!("waiting for a worker of `gps sweep run`, pid {}", queue.pid)));
    let entries = entries.chain(queue.running.iter().map(|(id, pid)| (id, "RUNNING", format!("gps task pid {pid}"))));
    for (id, state, reason) in entries {
        let record = TaskRecord { job_id: "local".into(), indices: Vec::new(), state: state.into(), reason, exit_code: String::new(), restarts: 0 };
        view.insert(id.clone(), QueuedTask { task: "local".into(), log: logs.join(format!("local_{id}.out")), record });
    }
    Ok(view)
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

/// How each earlier attempt of a run ended, one line each: from its progress record, or, for a
/// finished run whose record went with its checkpoints (`--no-keep`), from its result row.
pub fn earlier_attempts(run: &PlannedRun, view: &RunView) -> Vec<String> {
    if let Some(p) = &view.progress {
        return p.earlier.iter().map(|a| a.describe()).collect();
    }
    if view.state != RunState::Done {
        return Vec::new();
    }
    let from_row = || -> Option<String> {
        let frame = row::read_row(&row::row_path(&run.spec.output_dir, &run.id)).ok()?;
        frame.column("earlier_attempts").ok()?.str().ok()?.get(0).map(str::to_string)
    };
    from_row().map(|text| text.lines().map(str::to_string).collect()).unwrap_or_default()
}

/// How to treat a SLURM that cannot be asked about submitted jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queue {
    /// Fail: deciding what to submit without knowing what is queued could submit runs twice.
    Required,
    /// Warn and go on with the project's own records (status, or a local run on a machine
    /// that is not the cluster).
    BestEffort,
}

/// The state of every run. SLURM is asked only when the sweep has been submitted.
pub fn collect(runs: &[PlannedRun], workdir: &Path, sweep_name: &str, queue: Queue) -> Result<Vec<RunState>> {
    Ok(collect_views(runs, workdir, sweep_name, queue)?.into_iter().map(|v| v.state).collect())
}

/// `collect` with each run's progress record (what `gps sweep status --watch` shows).
pub fn collect_views(runs: &[PlannedRun], workdir: &Path, sweep_name: &str, queue: Queue) -> Result<Vec<RunView>> {
    let subs = submissions::list(workdir, sweep_name)?;
    let mut view = if subs.iter().any(|s| s.array_job.is_some()) {
        match (queue_view(&subs, workdir, sweep_name), queue) {
            (Ok(view), _) => view,
            (Err(e), Queue::Required) => return Err(e.context("cannot read the state of the submitted jobs")),
            (Err(e), Queue::BestEffort) => {
                eprintln!("warning: cannot ask SLURM about the submitted jobs ({e:#}); showing the project's own records only");
                HashMap::new()
            }
        }
    } else {
        HashMap::new()
    };
    view.extend(local_view(workdir, sweep_name)?);
    let now = crate::host::unix_now();
    Ok(runs
        .iter()
        .map(|run| {
            let progress = match progress_record::read(&checkpoint_dir(&run.spec)) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("warning: {e:#}");
                    None
                }
            };
            RunView { state: state_of(run, view.get(&run.id), progress.as_ref(), now), progress }
        })
        .collect())
}

fn state_of(run: &PlannedRun, queued: Option<&QueuedTask>, progress: Option<&ProgressRecord>, now: f64) -> RunState {
    let out = &run.spec.output_dir;
    if row::row_path(out, &run.id).exists() {
        return RunState::Done;
    }
    let stalled =
        |job: &str| progress.filter(|p| p.is_stalled(now)).map(|p| RunState::Stalled { job: job.to_string(), idle_s: p.age_s(now), epoch_s: p.epoch_s });
    if let Some(q) = queued.filter(|q| q.record.is_active()) {
        if q.record.state == "RUNNING"
            && let Some(s) = stalled(&q.task)
        {
            return s;
        }
        let mut reason = q.record.reason.clone();
        if q.record.restarts > 0 {
            reason.push_str(&format!(", restarts {}", q.record.restarts));
        }
        return RunState::Queued { job: q.task.clone(), state: q.record.state.clone(), reason };
    }
    // Neither SLURM nor the local executor has it (e.g. `gps train`, or an executor that was
    // killed while its tasks go on): a live process's own record says it runs.
    let live = progress.filter(|p| p.phase != Phase::Interrupted && !p.writer_gone());
    if let (None, Some(p)) = (queued, live) {
        return stalled(&p.job).unwrap_or_else(|| RunState::Queued {
            job: p.job.clone(),
            state: "RUNNING".into(),
            reason: format!("pid {} on {}", p.pid, p.host),
        });
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
    if let Some(p) = progress {
        let at = format!("epoch {}/{}, step {}", p.epoch, p.epochs, p.step);
        let reason = match p.phase {
            Phase::Interrupted => format!("interrupted at {at} ({}); rerun to resume from its checkpoint", p.job),
            _ => format!("its process (pid {} on {}, {}) ended at {at} without a result row; see its log, rerun to resume", p.pid, p.host, p.job),
        };
        return RunState::Failed { reason };
    }
    RunState::Missing
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::progress_record::FILE_NAME;
    use serde_json::json;

    fn planned(out: &Path) -> PlannedRun {
        let spec = crate::config::RunSpec { output_dir: out.to_path_buf(), ..Default::default() };
        PlannedRun { index: 0, id: spec.run_id(), spec, choices: Vec::new() }
    }

    fn record(run: &PlannedRun, phase: &str, pid: u32, updated_at: f64) -> ProgressRecord {
        let r: ProgressRecord = serde_json::from_value(json!({
            "run_id": run.id, "phase": phase, "epoch": 2, "epochs": 4, "step": 20, "total_steps": 40,
            "loss": 4.0, "probe_top1": 0.5, "samples_per_s": 100.0, "epoch_s": 10.0, "eta_s": 20.0,
            "updated_at": updated_at, "host": crate::host::hostname(), "pid": pid, "job": "local"
        }))
        .unwrap();
        let dir = checkpoint_dir(&run.spec);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(FILE_NAME), serde_json::to_vec(&r).unwrap()).unwrap();
        r
    }

    fn slurm(state: &str, exit_code: &str) -> QueuedTask {
        let record = TaskRecord { job_id: "7".into(), indices: vec![0], state: state.into(), reason: "None".into(), exit_code: exit_code.into(), restarts: 0 };
        QueuedTask { task: "7_0".into(), log: PathBuf::from("slurm/s/logs/7_0.out"), record }
    }

    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[test]
    fn progress_records_tell_running_stalled_and_ended_runs_apart() {
        let tmp = tempfile::tempdir().unwrap();
        let run = planned(tmp.path());
        let now = 10_000.0;
        let me = std::process::id();
        assert_eq!(state_of(&run, None, None, now), RunState::Missing);

        // a live local process (no scheduler knows it): running, or stalled once its record is old
        let fresh = record(&run, "training", me, now - 5.0);
        assert_eq!(state_of(&run, None, Some(&fresh), now).word(), "running");
        let old = record(&run, "training", me, now - 1000.0);
        assert!(matches!(state_of(&run, None, Some(&old), now), RunState::Stalled { idle_s, .. } if idle_s == 1000.0));
        let preparing = record(&run, "preparing", me, now - 1000.0);
        assert_eq!(state_of(&run, None, Some(&preparing), now).word(), "running", "no stall detection while preparing");

        // SLURM's word wins over the record, and a stale record makes a RUNNING task stalled
        assert_eq!(state_of(&run, Some(&slurm("RUNNING", "0:0")), Some(&fresh), now).word(), "running");
        assert_eq!(state_of(&run, Some(&slurm("RUNNING", "0:0")), Some(&old), now).word(), "stalled");
        assert_eq!(state_of(&run, Some(&slurm("PENDING", "0:0")), Some(&old), now).word(), "pending");
        let timeout = state_of(&run, Some(&slurm("TIMEOUT", "0:1")), Some(&fresh), now);
        assert!(matches!(&timeout, RunState::Failed { reason } if reason.contains("SLURM TIMEOUT")), "{timeout:?}");

        // the process is gone: interrupted (resumable) or ended without a row
        let interrupted = record(&run, "interrupted", me, now - 5.0);
        let s = state_of(&run, None, Some(&interrupted), now);
        assert!(matches!(&s, RunState::Failed { reason } if reason.contains("interrupted at epoch 2/4")), "{s:?}");
        let gone = record(&run, "training", dead_pid(), now - 5.0);
        let s = state_of(&run, None, Some(&gone), now);
        assert!(matches!(&s, RunState::Failed { reason } if reason.contains("ended at epoch 2/4")), "{s:?}");

        // the run's own failure record names the error; a result row makes it done
        let spec = &run.spec;
        let failure = row::FailureRecord::new("s", spec, &anyhow::anyhow!("the loss became NaN"));
        row::write_failure(&spec.output_dir, &failure).unwrap();
        let s = state_of(&run, None, Some(&gone), now);
        assert!(matches!(&s, RunState::Failed { reason } if reason.contains("NaN")), "{s:?}");
        std::fs::write(row::row_path(&spec.output_dir, &run.id), b"").unwrap();
        assert_eq!(state_of(&run, None, Some(&gone), now), RunState::Done);
    }
}
