//! The progress record: one small JSON per run, `<checkpoint dir>/progress.json`, that a training
//! process rewrites atomically at most every few seconds and at each epoch, so that
//! `gps sweep status --watch` can show every run of a sweep (on this machine or on any node of a
//! cluster with a shared filesystem) without talking to the processes.

use super::checkpoint::LoopState;
use crate::host;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const FILE_NAME: &str = "progress.json";
/// Between two writes during an epoch (epoch ends and phase changes are written at once).
const WRITE_EVERY: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Loading data, the prior's neighbours and the checkpoint (no stall detection: how long
    /// that takes is not known in advance).
    Preparing,
    Training,
    /// Training is over; the final evaluation and the result row follow.
    Evaluating,
    /// Stopped by a signal after writing a checkpoint; a rerun resumes.
    Interrupted,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgressRecord {
    pub run_id: String,
    pub phase: Phase,
    /// Epochs fully done, of `epochs`.
    pub epoch: usize,
    pub epochs: usize,
    pub step: u64,
    pub total_steps: u64,
    /// Mean SSL loss of the epoch under way (as far as read back), else of the last one.
    pub loss: Option<f64>,
    /// Online probe top-1 of the last evaluated epoch (fraction).
    pub probe_top1: Option<f64>,
    /// Anchors per second of wall time since this process started training (evaluation and
    /// checkpoints included, so the ETA below holds).
    pub samples_per_s: Option<f64>,
    /// Wall seconds per epoch at that rate, and until the last step at that rate.
    pub epoch_s: Option<f64>,
    pub eta_s: Option<f64>,
    /// Unix seconds of this write.
    pub updated_at: f64,
    pub host: String,
    pub pid: u32,
    /// `<array job>_<task>` under SLURM, else `local`.
    pub job: String,
    /// The signal that stopped this attempt (phase `interrupted`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    /// Every earlier attempt of this run and how it ended (requeues, preemption, lost nodes),
    /// oldest first: what `gps sweep status` names for a run that was restarted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier: Vec<Attempt>,
}

/// An earlier attempt of a run, as the next attempt found it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub job: String,
    pub host: String,
    /// Its last record: when it was written, and how far the run was then.
    pub ended_at: f64,
    pub epoch: usize,
    pub step: u64,
    /// How it ended, in words.
    pub how: String,
    /// Seconds per step at its pace, when known.
    #[serde(default)]
    pub step_s: Option<f64>,
    /// Set by the next attempt once it starts training: the step it resumed from (0: started
    /// over), how long after this attempt's last record, and the time lost in all: that wait plus
    /// the steps done again at this attempt's pace.
    #[serde(default)]
    pub resumed_at_step: Option<u64>,
    #[serde(default)]
    pub back_after_s: Option<f64>,
    #[serde(default)]
    pub lost_s: Option<f64>,
}

impl Attempt {
    /// What the record an ended attempt left says about it.
    fn ended(p: &ProgressRecord) -> Attempt {
        let how = match p.phase {
            Phase::Interrupted => format!("stopped by {} after writing a checkpoint (a requeue, preemption or the time limit)", p.signal.as_deref().unwrap_or("a signal")),
            Phase::Preparing => "ended while preparing (killed, node lost, or an error: see its log)".to_string(),
            _ => "ended with no checkpoint on the way out (killed, node lost, out of memory, or an error: see its log)".to_string(),
        };
        let steps_per_epoch = p.total_steps as f64 / p.epochs.max(1) as f64;
        let step_s = p.epoch_s.filter(|_| steps_per_epoch > 0.0).map(|e| e / steps_per_epoch);
        Attempt {
            job: p.job.clone(),
            host: p.host.clone(),
            ended_at: p.updated_at,
            epoch: p.epoch,
            step: p.step,
            how,
            step_s,
            resumed_at_step: None,
            back_after_s: None,
            lost_s: None,
        }
    }

    /// One line: `job 12_3 on gpsn2 at epoch 1, step 40: stopped by SIGTERM ...; resumed from step 40 after 14 s (lost about 14 s)`.
    pub fn describe(&self) -> String {
        let mut s = format!("job {} on {} at epoch {}, step {}: {}", self.job, self.host, self.epoch, self.step, self.how);
        match (self.resumed_at_step, self.back_after_s) {
            (Some(0), _) if self.step > 0 => s.push_str("; the next attempt found no checkpoint and started over"),
            (Some(at), Some(back)) => s.push_str(&format!("; resumed from step {at} {:.0} s later", back)),
            _ => {}
        }
        if let Some(lost) = self.lost_s {
            s.push_str(&format!(" (about {lost:.0} s lost)"));
        }
        s
    }
}

impl ProgressRecord {
    /// A record of this process, before any progress.
    fn fresh(run_id: &str, epochs: usize, total_steps: u64) -> ProgressRecord {
        ProgressRecord {
            run_id: run_id.to_string(),
            phase: Phase::Training,
            epoch: 0,
            epochs,
            step: 0,
            total_steps,
            loss: None,
            probe_top1: None,
            samples_per_s: None,
            epoch_s: None,
            eta_s: None,
            updated_at: host::unix_now(),
            host: host::hostname(),
            pid: std::process::id(),
            job: host::slurm_job(),
            signal: None,
            earlier: Vec::new(),
        }
    }

    /// Seconds since the record was written.
    pub fn age_s(&self, now: f64) -> f64 {
        (now - self.updated_at).max(0.0)
    }

    /// The ETA as of `now` (the record's ETA minus the time since it was written).
    pub fn eta_now(&self, now: f64) -> Option<f64> {
        self.eta_s.map(|e| (e - self.age_s(now)).max(0.0))
    }

    /// A record that has not moved for much longer than an epoch takes (and at least
    /// `STALL_MIN_S`): the process hangs, or died without anyone noticing.
    pub fn is_stalled(&self, now: f64) -> bool {
        self.phase != Phase::Preparing && self.age_s(now) > stall_after_s(self.epoch_s)
    }

    /// Written by a process on this machine that no longer exists.
    pub fn writer_gone(&self) -> bool {
        self.host == host::hostname() && !host::pid_alive(self.pid)
    }
}

/// No record is called stalled before this many seconds without a write.
pub const STALL_MIN_S: f64 = 120.0;
/// ... nor before this many epochs' time.
const STALL_EPOCHS: f64 = 3.0;

pub fn stall_after_s(epoch_s: Option<f64>) -> f64 {
    epoch_s.map_or(STALL_MIN_S, |e| (STALL_EPOCHS * e).max(STALL_MIN_S))
}

pub fn path(ckpt_dir: &Path) -> PathBuf {
    ckpt_dir.join(FILE_NAME)
}

/// The run's record, if it has one. A record that cannot be parsed is reported as an error (a
/// status query shows it as a warning rather than guessing).
pub fn read(ckpt_dir: &Path) -> Result<Option<ProgressRecord>> {
    crate::atomic_file::read_json(&path(ckpt_dir)).context("unreadable progress record")
}

/// At the start of a run's process, before its data is loaded: the record says who runs it now
/// (a record left by an earlier attempt would otherwise look stalled), keeping the earlier
/// attempt's epoch and metrics for display. Failing to write it does not stop the run.
/// The earlier attempt's record becomes one entry of `earlier`: how it ended is told by its phase.
pub fn mark_preparing(ckpt_dir: &Path, run_id: &str, epochs: usize) {
    let fresh = ProgressRecord { phase: Phase::Preparing, ..ProgressRecord::fresh(run_id, epochs, 0) };
    let record = match read(ckpt_dir).ok().flatten().filter(|r| r.run_id == run_id) {
        Some(p) => {
            let mut earlier = p.earlier.clone();
            earlier.push(Attempt::ended(&p));
            ProgressRecord { epoch: p.epoch, step: p.step, total_steps: p.total_steps, loss: p.loss, probe_top1: p.probe_top1, earlier, ..fresh }
        }
        None => {
            // SLURM restarted this task, yet nothing of an earlier attempt is left: its folder was
            // deleted (by hand, or a scratch purge). Say so; the run starts from nothing.
            if let Some(n) = std::env::var("SLURM_RESTART_COUNT").ok().and_then(|v| v.parse::<u32>().ok()).filter(|&n| n > 0) {
                eprintln!(
                    "[gps] warning: this is restart {n} of task {}, but {} holds no progress record or checkpoint of run {run_id}: it was deleted; the run starts over from epoch 0",
                    host::slurm_job(),
                    ckpt_dir.display()
                );
            }
            fresh
        }
    };
    if let Err(e) = write_record(ckpt_dir, &record) {
        eprintln!("warning: cannot write the progress record ({e:#})");
    }
}

fn write_record(ckpt_dir: &Path, record: &ProgressRecord) -> Result<()> {
    crate::atomic_file::write_json(&path(ckpt_dir), record)
}

/// Keeps a run's record up to date from the training loop. Never fails the run: a write that
/// fails is reported once and training goes on.
pub struct ProgressWriter {
    dir: PathBuf,
    record: ProgressRecord,
    batch_size: usize,
    steps_per_epoch: u64,
    started: Instant,
    start_step: u64,
    last_write: Option<Instant>,
    warned: bool,
}

impl ProgressWriter {
    pub fn new(ckpt_dir: &Path, state: &LoopState, epochs: usize, total_steps: u64, batch_size: usize) -> ProgressWriter {
        let mut record = ProgressRecord::fresh(&state.run_id, epochs, total_steps);
        // This process's own preparing record carries the earlier attempts: the last one learns
        // where this one resumes, and what that cost.
        if let Some(mine) = read(ckpt_dir).ok().flatten().filter(|r| r.run_id == state.run_id && r.pid == record.pid) {
            record.earlier = mine.earlier;
        }
        if let Some(last) = record.earlier.last_mut().filter(|a| a.resumed_at_step.is_none()) {
            let back = (record.updated_at - last.ended_at).max(0.0);
            let redo = last.step.saturating_sub(state.global_step);
            last.resumed_at_step = Some(state.global_step);
            last.back_after_s = Some(back);
            last.lost_s = Some(back + last.step_s.map_or(0.0, |s| s * redo as f64));
            if state.global_step == 0 && last.step > 0 {
                eprintln!(
                    "[gps] warning: an earlier attempt ({}) reached epoch {}, step {}, but no checkpoint is left in {}: the run starts over from epoch 0",
                    last.job,
                    last.epoch,
                    last.step,
                    ckpt_dir.display()
                );
            }
        }
        let steps_per_epoch = total_steps / epochs.max(1) as u64;
        let mut w = ProgressWriter {
            dir: ckpt_dir.to_path_buf(),
            record,
            batch_size,
            steps_per_epoch,
            started: Instant::now(),
            start_step: state.global_step,
            last_write: None,
            warned: false,
        };
        w.write(state, Phase::Training);
        w
    }

    /// The earlier attempts of this run (empty for a run that was never restarted).
    pub fn earlier(&self) -> &[Attempt] {
        &self.record.earlier
    }

    /// Stopped by `signal` after a checkpoint.
    pub fn interrupted(&mut self, state: &LoopState, signal: &str) {
        self.record.signal = Some(signal.to_string());
        self.write(state, Phase::Interrupted);
    }

    /// After a step: written when the last write is a few seconds old.
    pub fn step(&mut self, state: &LoopState) {
        if self.last_write.is_none_or(|t| t.elapsed() >= WRITE_EVERY) {
            self.write(state, Phase::Training);
        }
    }

    /// After an epoch (its loss and probe accuracy are in `state`), a phase change, or the end.
    pub fn write(&mut self, state: &LoopState, phase: Phase) {
        let r = &mut self.record;
        r.phase = phase;
        r.epoch = state.epoch;
        r.step = state.global_step;
        r.loss = if state.epoch_loss_steps > 0 { Some(state.epoch_loss_sum / state.epoch_loss_steps as f64) } else { state.epoch_losses.last().copied() };
        r.probe_top1 = state.epoch_probe_top1.iter().rev().copied().find(|a| a.is_finite());
        let done = state.global_step.saturating_sub(self.start_step);
        let secs = self.started.elapsed().as_secs_f64();
        if done > 0 && secs > 0.0 {
            let steps_per_s = done as f64 / secs;
            r.samples_per_s = Some(steps_per_s * self.batch_size as f64);
            r.epoch_s = Some(self.steps_per_epoch as f64 / steps_per_s);
            r.eta_s = Some(r.total_steps.saturating_sub(state.global_step) as f64 / steps_per_s);
        }
        r.updated_at = host::unix_now();
        self.last_write = Some(Instant::now());
        if let Err(e) = write_record(&self.dir, &self.record)
            && !self.warned
        {
            eprintln!("warning: cannot write the progress record ({e:#}); training goes on, but `gps sweep status --watch` will not show this run's progress");
            self.warned = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_at_once_then_rate_limited_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = LoopState { run_id: "abc".into(), ..Default::default() };
        let mut w = ProgressWriter::new(dir.path(), &state, 4, 40, 32);
        let first = read(dir.path()).unwrap().unwrap();
        assert_eq!((first.phase, first.epoch, first.step, first.total_steps), (Phase::Training, 0, 0, 40));
        assert_eq!((first.loss, first.samples_per_s, first.eta_s), (None, None, None));
        assert!(!first.writer_gone() && !first.is_stalled(host::unix_now()));

        state.global_step = 3;
        w.step(&state); // within WRITE_EVERY of the first write: not written
        assert_eq!(read(dir.path()).unwrap().unwrap().step, 0);

        std::thread::sleep(Duration::from_millis(20));
        state.global_step = 10;
        state.epoch = 1;
        state.epoch_losses.push(2.5);
        state.epoch_probe_top1.push(0.4);
        w.write(&state, Phase::Training);
        let r = read(dir.path()).unwrap().unwrap();
        assert_eq!((r.epoch, r.step, r.loss, r.probe_top1), (1, 10, Some(2.5), Some(0.4)));
        let (sps, epoch_s, eta) = (r.samples_per_s.unwrap(), r.epoch_s.unwrap(), r.eta_s.unwrap());
        // 10 steps of 32 so far; 10 steps per epoch; 30 steps to go at the same rate.
        assert!((epoch_s - 320.0 / sps).abs() < 1e-9 && (eta - 3.0 * epoch_s).abs() < 1e-9, "{r:?}");
        // running mean of the epoch under way wins over the last epoch's loss
        state.epoch_loss_sum = 6.0;
        state.epoch_loss_steps = 3;
        w.write(&state, Phase::Interrupted);
        let r = read(dir.path()).unwrap().unwrap();
        assert_eq!((r.phase, r.loss), (Phase::Interrupted, Some(2.0)));
        // nothing but the record in the folder (no temp file left)
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

        // a new attempt marks itself, keeping the progress made so far
        mark_preparing(dir.path(), "abc", 4);
        let r = read(dir.path()).unwrap().unwrap();
        assert_eq!((r.phase, r.epoch, r.step, r.loss, r.eta_s), (Phase::Preparing, 1, 10, Some(2.0), None));
        mark_preparing(dir.path(), "other", 7);
        let r = read(dir.path()).unwrap().unwrap();
        assert_eq!((r.run_id.as_str(), r.epoch, r.epochs, r.step), ("other", 0, 7, 0));
    }

    #[test]
    fn each_new_attempt_records_how_the_last_one_ended_and_what_the_restart_cost() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = LoopState { run_id: "r".into(), global_step: 10, epoch: 1, ..Default::default() };
        // attempt 1 is stopped by SIGTERM after a checkpoint at step 10 (a requeue)
        let mut w = ProgressWriter::new(dir.path(), &state, 4, 40, 32);
        assert!(w.earlier().is_empty());
        w.interrupted(&state, "SIGTERM");
        // attempt 2 resumes from that checkpoint, trains to step 25 and dies without a word
        mark_preparing(dir.path(), "r", 4);
        let w = ProgressWriter::new(dir.path(), &state, 4, 40, 32);
        let first = &w.earlier()[0];
        assert!(first.how.contains("stopped by SIGTERM after writing a checkpoint"), "{first:?}");
        assert_eq!((first.epoch, first.step, first.resumed_at_step), (1, 10, Some(10)));
        assert!(first.back_after_s.unwrap() >= 0.0 && first.lost_s == first.back_after_s, "nothing done again: {first:?}");
        let mut record = read(dir.path()).unwrap().unwrap();
        record.step = 25;
        record.epoch = 2;
        record.epoch_s = Some(20.0); // 10 steps an epoch: 2 s a step
        write_record(dir.path(), &record).unwrap();
        // attempt 3 finds the checkpoint of epoch 2 (step 20): 5 steps, 10 s, done again
        mark_preparing(dir.path(), "r", 4);
        state.global_step = 20;
        let w = ProgressWriter::new(dir.path(), &state, 4, 40, 32);
        let second = &w.earlier()[1];
        assert!(second.how.contains("no checkpoint on the way out"), "{second:?}");
        let (back, lost) = (second.back_after_s.unwrap(), second.lost_s.unwrap());
        assert!((lost - back - 10.0).abs() < 1e-9, "{second:?}");
        assert!(second.describe().contains("resumed from step 20") && second.describe().contains("at epoch 2, step 25"), "{}", second.describe());
        assert_eq!(w.earlier().len(), 2, "the first attempt is kept as it was");
        assert_eq!(w.earlier()[0].resumed_at_step, Some(10));

        // a checkpoint deleted by hand: the next attempt starts from step 0 and says so
        mark_preparing(dir.path(), "r", 4);
        state.global_step = 0;
        let w = ProgressWriter::new(dir.path(), &state, 4, 40, 32);
        assert!(w.earlier()[2].describe().contains("found no checkpoint and started over"), "{:?}", w.earlier());
    }

    #[test]
    fn stalled_means_much_longer_than_an_epoch_and_gone_means_a_dead_local_pid() {
        let mut r = ProgressRecord { epoch: 1, step: 10, epoch_s: Some(100.0), eta_s: Some(300.0), updated_at: 1000.0, ..ProgressRecord::fresh("x", 4, 40) };
        assert!(!r.is_stalled(1000.0 + 299.0) && r.is_stalled(1000.0 + 301.0));
        assert_eq!(r.eta_now(1100.0), Some(200.0));
        r.epoch_s = Some(1.0);
        assert!(!r.is_stalled(1000.0 + STALL_MIN_S - 1.0) && r.is_stalled(1000.0 + STALL_MIN_S + 1.0));
        assert!(!r.writer_gone());
        let mut child = std::process::Command::new("true").spawn().unwrap();
        r.pid = child.id();
        child.wait().unwrap();
        assert!(r.writer_gone());
        r.phase = Phase::Preparing;
        assert!(!r.is_stalled(1e12), "preparation has no known duration");
        r.host = "some-other-node".into();
        assert!(!r.writer_gone(), "a process on another node cannot be checked from here");
    }
}
