//! `gps sweep status --watch`: one line per active run (its id, the grid values that tell it
//! apart, epoch, loss, probe top-1, samples/s, ETA) under the sweep's counts and ETA, from the
//! same sources as `status` (so it works alike for the local executor and SLURM arrays on a
//! shared filesystem). On a terminal the view is redrawn in place with indicatif; otherwise it
//! is printed as a plain table, once, or every interval with `--until-done`.

use super::expand::PlannedRun;
use super::file::SweepFile;
use super::status::{self, Queue, RunState, RunView, duration};
use super::value_path::show;
use crate::text::{align, emit};
use crate::train::progress_record::Phase;
use anyhow::Result;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

pub struct WatchOptions {
    pub interval: Duration,
    /// Keep watching until no run is pending, running or stalled.
    pub until_done: bool,
}

/// One active run, as shown.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveLine {
    pub run_id: String,
    /// The grid values that differ between the sweep's runs, `key=value`.
    pub label: String,
    /// `running`, `preparing`, `evaluating` or `stalled`.
    pub state: String,
    pub step: u64,
    pub total_steps: u64,
    pub epoch: String,
    pub loss: String,
    pub probe: String,
    pub samples_per_s: String,
    pub eta: String,
}

/// What one refresh shows.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub active: Vec<ActiveLine>,
    /// `2 done, 1 running, ...; sweep ETA ~4m 10s`.
    pub summary: String,
    /// No run is pending, running or stalled any more.
    pub settled: bool,
}

pub fn watch(sweep: &SweepFile, runs: &[PlannedRun], workdir: &Path, opts: &WatchOptions) -> Result<()> {
    if std::io::stdout().is_terminal() { watch_terminal(sweep, runs, workdir, opts) } else { watch_plain(sweep, runs, workdir, opts) }
}

pub fn snapshot(sweep: &SweepFile, runs: &[PlannedRun], workdir: &Path) -> Result<Snapshot> {
    let views = status::collect_views(runs, workdir, &sweep.name, Queue::BestEffort)?;
    Ok(build(runs, &views, crate::host::unix_now()))
}

/// The snapshot of `views` (one per run) at time `now`.
pub fn build(runs: &[PlannedRun], views: &[RunView], now: f64) -> Snapshot {
    let keys = differing_keys(runs);
    let mut active = Vec::new();
    for (run, view) in runs.iter().zip(views) {
        let stalled = matches!(view.state, RunState::Stalled { .. });
        if !(stalled || view.state.word() == "running") {
            continue;
        }
        let p = view.progress.as_ref();
        let state = match (stalled, p.map(|p| p.phase)) {
            (true, _) => "stalled",
            (false, Some(Phase::Preparing)) => "preparing",
            (false, Some(Phase::Evaluating)) => "evaluating",
            _ => "running",
        };
        let dash = || "-".to_string();
        let label: Vec<String> = run.choices.iter().filter(|(k, _)| keys.contains(k)).map(|(k, v)| format!("{k}={}", show(v))).collect();
        active.push(ActiveLine {
            run_id: run.id.clone(),
            label: label.join(" "),
            state: state.into(),
            step: p.map_or(0, |p| p.step),
            total_steps: p.map_or(0, |p| p.total_steps),
            epoch: format!("{}/{}", p.map_or(0, |p| p.epoch), p.map_or(run.spec.epochs, |p| p.epochs)),
            loss: p.and_then(|p| p.loss).map_or_else(dash, |l| format!("{l:.4}")),
            probe: p.and_then(|p| p.probe_top1).map_or_else(dash, |a| format!("{:.2}%", 100.0 * a)),
            samples_per_s: p.and_then(|p| p.samples_per_s).filter(|_| !stalled).map_or_else(dash, |s| format!("{s:.0}")),
            eta: p.and_then(|p| p.eta_now(now)).filter(|_| !stalled).map_or_else(dash, duration),
        });
    }
    let states: Vec<RunState> = views.iter().map(|v| v.state.clone()).collect();
    let settled = states.iter().all(|s| !matches!(s, RunState::Queued { .. } | RunState::Stalled { .. }));
    let eta = if settled { String::new() } else { format!("; sweep ETA {}", sweep_eta(views, now).map_or("unknown".into(), |e| format!("~{}", duration(e)))) };
    Snapshot { active, summary: format!("{}{eta}", super::select::summary(&states)), settled }
}

/// Grid keys whose value is not the same for every run (a one-value axis tells no run apart).
fn differing_keys(runs: &[PlannedRun]) -> Vec<String> {
    let Some(first) = runs.first() else { return Vec::new() };
    first
        .choices
        .iter()
        .map(|(k, _)| k)
        .filter(|k| {
            let mut values = runs.iter().filter_map(|r| r.choices.iter().find(|(rk, _)| rk == *k).map(|(_, v)| v));
            let v0 = values.next();
            values.any(|v| Some(v) != v0)
        })
        .cloned()
        .collect()
}

/// Rough time until the sweep is done: the running runs' remaining time plus, for each pending
/// run, a whole run at the running ones' mean rate, spread over as many runs as run at once now.
pub fn sweep_eta(views: &[RunView], now: f64) -> Option<f64> {
    let running: Vec<&RunView> = views.iter().filter(|v| matches!(v.state, RunState::Stalled { .. }) || v.state.word() == "running").collect();
    let pending = views.iter().filter(|v| v.state.word() == "pending").count();
    let mut remaining = 0.0;
    let mut whole_runs = Vec::new();
    // A run without a rate yet (just started) adds nothing: the estimate errs on the short side.
    for p in running.iter().filter_map(|v| v.progress.as_ref()) {
        remaining += p.eta_now(now).unwrap_or(0.0);
        whole_runs.extend(p.epoch_s.map(|e| e * p.epochs as f64));
    }
    if !running.is_empty() && whole_runs.is_empty() {
        return None; // nothing has a rate yet
    }
    let per_run = if pending == 0 { 0.0 } else { whole_runs.iter().sum::<f64>() / (whole_runs.len() as f64).max(1.0) };
    if pending > 0 && whole_runs.is_empty() {
        return None;
    }
    Some((remaining + pending as f64 * per_run) / running.len().max(1) as f64)
}

/// The plain table of a snapshot.
pub fn render(sweep_name: &str, snap: &Snapshot) -> String {
    let mut text = format!("sweep {sweep_name}: {}\n", snap.summary);
    if snap.active.is_empty() {
        text.push_str("no run is running\n");
        return text;
    }
    let header = ["run_id", "grid", "state", "epoch", "loss", "probe", "samples/s", "ETA"];
    let mut rows = vec![header.iter().map(|h| h.to_string()).collect::<Vec<_>>()];
    for a in &snap.active {
        rows.push(vec![
            a.run_id.clone(),
            a.label.clone(),
            a.state.clone(),
            a.epoch.clone(),
            a.loss.clone(),
            a.probe.clone(),
            a.samples_per_s.clone(),
            a.eta.clone(),
        ]);
    }
    text.push_str(&align(&rows));
    text
}

fn watch_plain(sweep: &SweepFile, runs: &[PlannedRun], workdir: &Path, opts: &WatchOptions) -> Result<()> {
    loop {
        let snap = snapshot(sweep, runs, workdir)?;
        emit(&format!("{}\n", render(&sweep.name, &snap)));
        if !opts.until_done || snap.settled {
            return Ok(());
        }
        std::thread::sleep(opts.interval);
    }
}

fn watch_terminal(sweep: &SweepFile, runs: &[PlannedRun], workdir: &Path, opts: &WatchOptions) -> Result<()> {
    let multi = MultiProgress::new();
    let header = multi.add(ProgressBar::new_spinner());
    header.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("valid template"));
    let style = ProgressStyle::with_template("{prefix} [{bar:24}] {msg}").expect("valid template").progress_chars("=> ");
    let mut bars: HashMap<String, ProgressBar> = HashMap::new();
    loop {
        let snap = snapshot(sweep, runs, workdir)?;
        header.set_message(format!("sweep {}: {}", sweep.name, snap.summary));
        header.tick();
        let width = snap.active.iter().map(|a| a.run_id.len() + 1 + a.label.chars().count()).max().unwrap_or(0);
        for a in &snap.active {
            let bar = bars.entry(a.run_id.clone()).or_insert_with(|| multi.add(ProgressBar::new(1).with_style(style.clone())));
            bar.set_length(a.total_steps.max(1));
            bar.set_position(a.step);
            bar.set_prefix(format!("{:<width$}", format!("{} {}", a.run_id, a.label)));
            bar.set_message(format!("{} epoch {} loss {} probe {} {} samples/s ETA {}", a.state, a.epoch, a.loss, a.probe, a.samples_per_s, a.eta));
        }
        bars.retain(|id, bar| {
            let keep = snap.active.iter().any(|a| a.run_id == *id);
            if !keep {
                bar.finish_and_clear();
                multi.remove(bar);
            }
            keep
        });
        if opts.until_done && snap.settled {
            break;
        }
        std::thread::sleep(opts.interval);
    }
    for bar in bars.values() {
        bar.finish_and_clear();
    }
    header.finish_and_clear();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::progress_record::ProgressRecord;
    use serde_json::json;

    fn planned(index: usize, prior: &str, seed: i64) -> PlannedRun {
        PlannedRun {
            index,
            id: format!("run{index}"),
            spec: crate::config::RunSpec::default(),
            choices: vec![("prior".into(), json!(prior)), ("seed".into(), json!(seed))],
        }
    }

    fn record(epoch: usize, eta_s: f64, epoch_s: f64) -> ProgressRecord {
        serde_json::from_value(json!({
            "run_id": "x", "phase": "training", "epoch": epoch, "epochs": 4, "step": epoch * 10, "total_steps": 40,
            "loss": 4.25, "probe_top1": 0.5, "samples_per_s": 320.0, "epoch_s": epoch_s, "eta_s": eta_s,
            "updated_at": 1000.0, "host": "node1", "pid": 1, "job": "7_1"
        }))
        .unwrap()
    }

    #[test]
    fn active_runs_show_their_progress_and_the_sweep_eta_adds_pending_runs() {
        let runs = vec![planned(0, "none", 1), planned(1, "pixels", 1), planned(2, "none", 1), planned(3, "none", 1)];
        let running = |job: &str| RunState::Queued { job: job.into(), state: "RUNNING".into(), reason: "None".into() };
        let views = vec![
            RunView { state: running("7_0"), progress: Some(record(1, 30.0, 10.0)) },
            RunView { state: running("7_1"), progress: Some(record(3, 10.0, 10.0)) },
            RunView { state: RunState::Queued { job: "7_2".into(), state: "PENDING".into(), reason: "Resources".into() }, progress: None },
            RunView { state: RunState::Done, progress: None },
        ];
        let snap = build(&runs, &views, 1005.0);
        assert!(!snap.settled);
        assert_eq!(snap.active.len(), 2);
        let a = &snap.active[0];
        assert_eq!(
            (a.label.as_str(), a.epoch.as_str(), a.loss.as_str(), a.probe.as_str(), a.samples_per_s.as_str()),
            ("prior=none", "1/4", "4.2500", "50.00%", "320")
        );
        assert_eq!(a.eta, "25s", "the record's ETA minus its age");
        // (25 + 5 remaining + 1 pending run of 4 epochs × 10 s) / 2 runs at once
        assert_eq!(sweep_eta(&views, 1005.0), Some(35.0));
        assert!(snap.summary.starts_with("1 done, 2 running, 1 pending, 0 failed, 0 missing; sweep ETA ~35s"), "{}", snap.summary);
        let table = render("s", &snap);
        assert!(table.contains("run0    prior=none    running  1/4    4.2500  50.00%  320        25s"), "{table}");

        let stalled = RunState::Stalled { job: "7_0".into(), idle_s: 400.0, epoch_s: Some(10.0) };
        let views = vec![
            RunView { state: stalled, progress: Some(record(1, 30.0, 10.0)) },
            RunView { state: RunState::Failed { reason: "x".into() }, progress: None },
            RunView { state: RunState::Done, progress: None },
            RunView { state: RunState::Done, progress: None },
        ];
        let snap = build(&runs, &views, 1400.0);
        assert_eq!((snap.active[0].state.as_str(), snap.active[0].eta.as_str()), ("stalled", "-"));
        assert!(!snap.settled && snap.summary.contains("1 stalled"), "{}", snap.summary);

        let done = vec![RunView { state: RunState::Done, progress: None }; 4];
        let snap = build(&runs, &done, 0.0);
        assert!(snap.settled && snap.active.is_empty());
        assert_eq!(render("s", &snap), "sweep s: 4 done, 0 running, 0 pending, 0 failed, 0 missing\nno run is running\n");
    }
}
