//! `gps sweep run`: the sweep's tasks on this machine, N at a time, for machines without a
//! cluster. Each task is a child `gps task` process reading the same manifest an array would, so
//! a local run exercises exactly the code path of a SLURM task (and one crashing run cannot take
//! the others down).

use super::expand::PlannedRun;
use super::file::SweepFile;
use super::local_queue::LocalQueue;
use super::manifest::Manifest;
use super::prepare;
use super::select::{self, Selection};
use super::status;
use super::submissions;
use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `keep_checkpoint: false` passes `--no-keep` to the tasks.
pub fn run_local(sweep: &SweepFile, runs: &[PlannedRun], jobs: usize, selection: Selection, keep_checkpoint: bool) -> Result<()> {
    let workdir = std::env::current_dir().context("cannot read the current directory")?;
    let gps_bin = std::env::current_exe().context("cannot find the gps binary's own path")?;
    let states = status::collect(runs, &workdir, &sweep.name, status::Queue::BestEffort)?;
    let chosen = select::select(runs, &states, selection);
    println!("{}: {} runs ({}); running {} here, {} at a time", sweep.path.display(), runs.len(), select::summary(&states), chosen.len(), jobs);
    if chosen.is_empty() {
        return Ok(());
    }
    let dir = submissions::sweep_dir(&workdir, &sweep.name).join("local");
    let logs = submissions::logs_dir(&workdir, &sweep.name);
    std::fs::create_dir_all(&dir)?;
    std::fs::create_dir_all(&logs)?;
    let manifest = dir.join("manifest.tsv");
    Manifest::write(&manifest, &chosen)?;
    // What status and the watch read to show this executor's pending and running runs.
    let sweep_dir = submissions::sweep_dir(&workdir, &sweep.name);
    let mut queue = LocalQueue { pending: chosen.iter().map(|r| r.id.clone()).collect(), ..LocalQueue::new() };
    let publish = |queue: &LocalQueue| {
        if let Err(e) = queue.write(&sweep_dir) {
            eprintln!("warning: {e:#} (`gps sweep status` will not see this executor's queue)");
        }
    };
    publish(&queue);

    if !prepare::groups(&chosen).is_empty() {
        let log = logs.join("local_prepare.out");
        let status = Command::new(&gps_bin)
            .args(["sweep", "prepare"])
            .arg(&sweep.path)
            .arg("--manifest")
            .arg(&manifest)
            .stdout(log_file(&log)?)
            .stderr(log_file(&log)?)
            .status()
            .context("cannot start `gps sweep prepare`")?;
        if !status.success() {
            eprintln!("warning: preparation exited with {status} (see {}); the runs redo it themselves", log.display());
        }
    }

    // Each worker gets its share of the cores, so N workers do not each start one thread per core.
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).div_ceil(jobs.max(1)).max(1);
    let mut waiting: Vec<(usize, &PlannedRun)> = chosen.iter().copied().enumerate().rev().collect();
    let mut running: Vec<(Child, usize, &PlannedRun, Instant)> = Vec::new();
    let mut failed = Vec::new();
    let total = chosen.len();
    let mut finished = 0;
    while !waiting.is_empty() || !running.is_empty() {
        while running.len() < jobs.max(1) {
            let Some((index, run)) = waiting.pop() else { break };
            let log = logs.join(format!("local_{}.out", run.id));
            let mut cmd = Command::new(&gps_bin);
            cmd.arg("task").arg(&sweep.path).arg("--index").arg(index.to_string()).arg("--manifest").arg(&manifest);
            if !keep_checkpoint {
                cmd.arg("--no-keep");
            }
            if std::env::var_os("OMP_NUM_THREADS").is_none() {
                cmd.env("OMP_NUM_THREADS", threads.to_string());
            }
            let child = cmd.stdin(Stdio::null()).stdout(log_file(&log)?).stderr(log_file(&log)?).spawn().context("cannot start `gps task`")?;
            queue.pending.retain(|id| *id != run.id);
            queue.running.push((run.id.clone(), child.id()));
            publish(&queue);
            running.push((child, index, run, Instant::now()));
        }
        std::thread::sleep(Duration::from_millis(100));
        let mut i = 0;
        while i < running.len() {
            let Some(exit) = running[i].0.try_wait()? else {
                i += 1;
                continue;
            };
            let (_, _, run, started) = running.swap_remove(i);
            queue.running.retain(|(id, _)| *id != run.id);
            publish(&queue);
            finished += 1;
            let secs = started.elapsed().as_secs_f64();
            if exit.success() {
                println!("[{finished}/{total}] done   {} {} ({secs:.1} s)", run.id, run.label());
            } else {
                println!(
                    "[{finished}/{total}] FAILED {} {} ({secs:.1} s, {exit}); log {}",
                    run.id,
                    run.label(),
                    logs.join(format!("local_{}.out", run.id)).display()
                );
                failed.push(run);
            }
        }
    }
    LocalQueue::remove(&sweep_dir);
    if !failed.is_empty() {
        let states = status::collect(runs, &workdir, &sweep.name, status::Queue::BestEffort)?;
        for run in &failed {
            if let Some(state) = states.get(run.index) {
                eprintln!("  {} {}: {} {}", run.id, run.label(), state.word(), state.detail());
            }
        }
        bail!("{} of {total} runs failed; rerun them with `gps sweep run {} --only-failed`", failed.len(), sweep.path.display());
    }
    Ok(())
}

fn log_file(path: &Path) -> Result<std::fs::File> {
    std::fs::OpenOptions::new().create(true).append(true).open(path).with_context(|| format!("cannot open log {}", path.display()))
}
