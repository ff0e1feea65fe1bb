//! What a cluster does to a sweep, on a real multi-node SLURM: the three-node cluster that
//! scripts/test.sh starts beside the one-node one (`SLURM_LOCAL_INSTANCE=multi
//! slurm/local-cluster.sh up --nodes 3`, each node a slurmd in its own network namespace).
//!
//! One test in phases, because a lost node takes down whatever runs on it: 64 tasks at once over
//! an empty cache (one preparation, and, with the preparation bypassed, one build among tasks
//! started by hand), then at the same time a requeue storm pinned to one node and a node loss on
//! the others, both checked against the same runs done without interruption.
//!
//! Runs when the cluster answers; with GPS_REQUIRE_SLURM=1 (CI) a missing cluster is a failure.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gps_ssl::train::progress_record::{self, ProgressRecord};
use polars::prelude::{DataFrame, SerReader};

/// The node the storm's tasks are pinned to; the lost node is another.
const STORM_NODE: &str = "gpsn3";

struct Cluster {
    conf: PathBuf,
    instance: String,
}

fn cluster() -> Option<Cluster> {
    let required = std::env::var("GPS_REQUIRE_SLURM").is_ok_and(|v| v == "1");
    let conf = PathBuf::from(std::env::var("GPS_SLURM_MULTI_CONF").unwrap_or_else(|_| "/var/spool/slurm-local-multi/etc/slurm.conf".into()));
    let instance = std::env::var("GPS_SLURM_MULTI_INSTANCE").unwrap_or_else(|_| "multi".into());
    let c = Cluster { conf, instance };
    let up = c.conf.is_file() && c.cmd("scontrol").arg("ping").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("is UP"));
    let nodes = if up { c.nodes().len() } else { 0 };
    if nodes < 3 {
        assert!(
            !required,
            "GPS_REQUIRE_SLURM=1 but no three-node SLURM answers at {} ({nodes} nodes); run `SLURM_LOCAL_INSTANCE=multi SLURM_LOCAL_CPUS=22 slurm/local-cluster.sh up --nodes 3`",
            c.conf.display()
        );
        eprintln!("skipping: no three-node SLURM (scripts/test.sh starts one)");
        return None;
    }
    Some(c)
}

impl Cluster {
    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", &self.conf);
        c
    }

    fn gps_cmd(&self, workdir: &Path, args: &[&str]) -> Command {
        let mut c = self.cmd(env!("CARGO_BIN_EXE_gps"));
        c.args(args).current_dir(workdir).env("OMP_NUM_THREADS", "1");
        c
    }

    fn gps(&self, workdir: &Path, args: &[&str]) -> String {
        let out = self.gps_cmd(workdir, args).output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "gps {args:?} failed:\n{text}");
        text
    }

    fn script(&self, args: &[&str]) -> String {
        let out = self.cmd("bash").arg(crate::support::repo().join("slurm/local-cluster.sh")).args(args).env("SLURM_LOCAL_INSTANCE", &self.instance).output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "local-cluster.sh {args:?} failed:\n{text}");
        text
    }

    /// Node name -> state (`idle`, `mixed`, `down*`, ...).
    fn nodes(&self) -> BTreeMap<String, String> {
        let out = self.cmd("sinfo").args(["-h", "-N", "-o", "%N %T"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.split_once(' ').map(|(n, s)| (n.to_string(), s.trim().to_string()))).collect()
    }

    /// `<job>_<index>` -> (state, node) of an array's tasks still known to slurmctld.
    fn tasks(&self, job: &str) -> BTreeMap<String, (String, String)> {
        let out = self.cmd("squeue").args(["-h", "-j", job, "-o", "%i %T %N"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let mut it = l.split_whitespace();
                Some((it.next()?.to_string(), (it.next()?.to_string(), it.next().unwrap_or("").to_string())))
            })
            .collect()
    }
}

/// Brings a killed node back when the test ends, passed or not, so the next run starts whole.
struct Revive<'a>(&'a Cluster, Option<String>);

impl Drop for Revive<'_> {
    fn drop(&mut self) {
        if let Some(node) = self.1.take() {
            let _ = self.0.cmd("bash").arg(crate::support::repo().join("slurm/local-cluster.sh")).args(["revive-node", &node]).env("SLURM_LOCAL_INSTANCE", &self.0.instance).status();
        }
    }
}

/// Cancels the test's jobs when it ends, passed or not.
struct Cancel<'a>(&'a Cluster, Vec<String>);

impl Drop for Cancel<'_> {
    fn drop(&mut self) {
        if !self.1.is_empty() {
            let _ = self.0.cmd("scancel").args(&self.1).status();
        }
    }
}

fn submitted_job(out: &str) -> String {
    out.split("submitted array job ").nth(1).and_then(|s| s.split(':').next()).unwrap_or_else(|| panic!("no array job in:\n{out}")).to_string()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
        }
    }
    out
}

/// Every task log of a sweep, concatenated with its name.
fn logs(workdir: &Path, sweep: &str) -> String {
    let mut text = String::new();
    for f in walk(&workdir.join("slurm").join(sweep).join("logs")) {
        text += &format!("---- {}\n{}", f.display(), std::fs::read_to_string(&f).unwrap_or_default());
    }
    text
}

fn wait_until(what: &str, secs: u64, context: impl Fn() -> String, mut done: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < end, "timed out after {secs} s waiting for {what}\n{}", context());
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The result rows and failure records of a results folder.
fn rows(results: &Path) -> (Vec<PathBuf>, usize) {
    gps_ssl::results::table::row_files(results).unwrap_or_default()
}

fn frame(file: &Path) -> DataFrame {
    polars::prelude::ParquetReader::new(std::fs::File::open(file).unwrap()).finish().unwrap()
}

/// run id -> (steps, probe top-1 last, k-NN top-1, resumed from epoch, earlier attempts).
fn row_values(results: &Path) -> BTreeMap<String, (i64, f64, f64, Option<i64>, Option<String>)> {
    rows(results)
        .0
        .iter()
        .map(|f| {
            let df = frame(f);
            let s = |c: &str| df.column(c).unwrap().str().unwrap().get(0).map(str::to_string);
            let x = |c: &str| df.column(c).unwrap().f64().unwrap().get(0).unwrap();
            let i = |c: &str| df.column(c).unwrap().i64().unwrap().get(0);
            (s("run_id").unwrap(), (i("steps").unwrap(), x("probe_top1_last"), x("knn_top1"), i("resumed_from_epoch"), s("earlier_attempts")))
        })
        .collect()
}

fn progress(results: &Path, run: &str) -> Option<ProgressRecord> {
    progress_record::read(&results.join("ckpt").join(run)).ok().flatten()
}

/// A sweep of small real runs on MNIST-5k (`epochs`, `train_limit`), checkpoint every epoch.
fn sweep(name: &str, data: &Path, runs: &str, epochs: usize, train: usize, test: usize, batch: usize, slurm: &str) -> String {
    format!(
        "name: {name}\nbase:\n  dataset: {{name: mnist5k, format: mnist-csv, path: \"{}\", train_limit: {train}, test_limit: {test}}}\n  backbone: small-cnn\n  augmentation: {{preset: weak}}\n  prior: pixels\n  k: 3\n  epochs: {epochs}\n  batch_size: {batch}\n  device: cpu\n  checkpoint_every: 1\n  eval: {{every_epochs: 1, knn_k: 5}}\nslurm: {slurm}\ngrid:\n  seed: [{runs}]\n",
        data.display()
    )
}

/// The largest proportional set size (kB) of one `gps` process started in `workdir`, and of all
/// of them at once, sampled every 100 ms until `stop` is set.
fn sample_memory(workdir: PathBuf, stop: std::sync::Arc<std::sync::atomic::AtomicBool>) -> std::thread::JoinHandle<(u64, u64)> {
    std::thread::spawn(move || {
        let (mut one, mut all) = (0u64, 0u64);
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let mut total = 0;
            for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
                let p = entry.path();
                if std::fs::read_to_string(p.join("comm")).is_ok_and(|c| c.trim() == "gps") && std::fs::read_link(p.join("cwd")).is_ok_and(|c| c == workdir) {
                    // Pss: shared pages (libtorch's code) counted once over all processes, so the
                    // sum is the memory the tasks really take
                    let rss = std::fs::read_to_string(p.join("smaps_rollup"))
                        .ok()
                        .and_then(|s| s.lines().find(|l| l.starts_with("Pss:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok()))
                        .unwrap_or(0);
                    one = one.max(rss);
                    total += rss;
                }
            }
            all = all.max(total);
            std::thread::sleep(Duration::from_millis(100));
        }
        (one, all)
    })
}

#[test]
fn a_sweep_survives_a_multi_node_cluster() {
    let Some(c) = cluster() else { return };
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let w = std::fs::canonicalize(tmp.path()).unwrap();
    // MNIST-5k, 25 images per class (20 train, 5 test): the 64 tiny runs need no more.
    let small = w.join("mnist-250.csv.gz");
    write_subset(&crate::support::mnist5k(), &small, 25);
    let data = crate::support::mnist5k();
    let mut cancel = Cancel(&c, Vec::new());

    // ---- 64 tasks at once, no throttle, over a cache nobody has built.
    let burst_dir = w.join("burst");
    std::fs::create_dir_all(&burst_dir).unwrap();
    let seeds64: Vec<String> = (0..64).map(|s| s.to_string()).collect();
    let burst = sweep("burst", &small, &seeds64.join(", "), 1, 32, 20, 32, "{cpus: 1, mem: 400M, time: \"00:10:00\"}");
    std::fs::write(burst_dir.join("burst.yaml"), &burst).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let memory = sample_memory(burst_dir.clone(), stop.clone());
    let burst_started = Instant::now();
    let out = c.gps(&burst_dir, &["sweep", "submit", "burst.yaml"]);
    assert!(out.contains("submitting 64") && out.contains("after preparation job"), "{out}");
    let burst_job = submitted_job(&out);
    cancel.1.push(burst_job.clone());

    // The same tasks started by hand, bypassing the preparation: eight at once on an empty cache.
    let hand_dir = w.join("by-hand");
    std::fs::create_dir_all(&hand_dir).unwrap();
    std::fs::write(hand_dir.join("burst.yaml"), &burst).unwrap();
    let hands: Vec<Child> = (0..8)
        .map(|i| c.gps_cmd(&hand_dir, &["task", "burst.yaml", "--index", &i.to_string()]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap())
        .collect();
    let mut hand_log = String::new();
    for h in hands {
        let out = h.wait_with_output().unwrap();
        hand_log += &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "a task started by hand failed:\n{hand_log}");
    }
    let built = |log: &str, what: &str| log.lines().filter(|l| l.contains("cache: built") && l.contains(what)).count();
    assert_eq!(built(&hand_log, "neighbour table"), 1, "eight tasks started at once build the neighbour table once:\n{hand_log}");
    assert_eq!(built(&hand_log, "decoded train split"), 1, "and decode the training split once:\n{hand_log}");
    assert_eq!(rows(&hand_dir.join("results/burst")).0.len(), 8);

    let burst_results = burst_dir.join("results/burst");
    wait_until("the 64 tasks' rows", 600, || c.gps(&burst_dir, &["sweep", "status", "burst.yaml"]), || rows(&burst_results).0.len() + rows(&burst_results).1 >= 64);
    let burst_wall = burst_started.elapsed().as_secs_f64();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (rss_one, rss_all) = memory.join().unwrap();
    let (done, failed) = rows(&burst_results);
    let burst_logs = logs(&burst_dir, "burst");
    assert_eq!((done.len(), failed), (64, 0), "64 rows, no task failed\n{burst_logs}");
    assert_eq!(built(&burst_logs, "neighbour table"), 1, "one preparation builds the table, no task does:\n{burst_logs}");
    // Start times of the 64 tasks (their logs' first line, to the second).
    let starts: Vec<&str> = burst_logs.lines().filter(|l| l.contains(" task ") && l.starts_with("[gps] 20")).filter_map(|l| l.split_whitespace().nth(1)).collect();
    assert_eq!(starts.len(), 64, "{burst_logs}");
    let secs: Vec<u64> = starts.iter().map(|t| time_of_day(t)).collect();
    let spread = secs.iter().max().unwrap() - secs.iter().min().unwrap();
    eprintln!(
        "[{:.0?}] 64 tasks: all started within {spread} s; sweep wall {burst_wall:.0} s (submit to the 64th row); peak memory (PSS) {} MB per task, {} MB all together",
        started.elapsed(),
        rss_one / 1024,
        rss_all / 1024
    );
    assert!(spread <= 60, "the 64 tasks start together (no throttle), not in waves: {spread} s apart");

    // ---- A requeue storm on STORM_NODE and a node loss on the others, at the same time, and the
    // same runs without interruption for reference.
    let storm = sweep("storm", &data, "0, 1, 2", 4, 256, 100, 64, &format!("{{cpus: 1, mem: 1G, time: \"00:10:00\", extra: [\"--nodelist={STORM_NODE}\"]}}"));
    let loss = sweep("nodeloss", &data, "0, 1, 2", 4, 256, 100, 64, "{cpus: 8, mem: 1G, time: \"00:10:00\"}");
    std::fs::write(w.join("storm.yaml"), &storm).unwrap();
    std::fs::write(w.join("nodeloss.yaml"), &loss).unwrap();
    let reference_dir = w.join("reference");
    std::fs::create_dir_all(&reference_dir).unwrap();
    std::fs::write(reference_dir.join("reference.yaml"), storm.replace("name: storm", "name: reference")).unwrap();
    let storm_job = submitted_job(&c.gps(&w, &["sweep", "submit", "storm.yaml"]));
    let loss_job = submitted_job(&c.gps(&w, &["sweep", "submit", "nodeloss.yaml"]));
    cancel.1.extend([storm_job.clone(), loss_job.clone()]);
    let mut reference = c.gps_cmd(&reference_dir, &["sweep", "run", "reference.yaml", "--jobs", "1"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let storm_results = w.join("results/storm");
    let loss_results = w.join("results/nodeloss");
    let status = |sweep: &str| c.gps(&w, &["sweep", "status", sweep]);
    let ids: Vec<String> = status("storm.yaml").lines().skip(1).take(3).map(|l| l.split_whitespace().nth(1).unwrap().to_string()).collect();
    assert_eq!(ids.len(), 3);

    // The node loss: a node other than STORM_NODE that runs a task past its first checkpoint dies.
    let mut lost_node = Revive(&c, None);
    let mut killed_at = Instant::now();
    let mut victims: Vec<String> = Vec::new();
    // Requeue storm: every running task of the storm's array at once, twice: once all three train
    // past their first checkpoint, then once all three train again in their second attempt.
    let all_training = |results: &Path, attempt: usize| {
        ids.iter().all(|id| {
            progress(results, id).is_some_and(|p| p.phase == progress_record::Phase::Training && p.epoch >= 1 && p.earlier.len() == attempt)
        })
    };
    let mut storms = 0;
    let mut deleted = None;
    let deadline = Instant::now() + Duration::from_secs(420);
    let context = || format!("{}\n{}\n{}\n{}", status("storm.yaml"), status("nodeloss.yaml"), logs(&w, "storm"), logs(&w, "nodeloss"));
    while storms < 2 || lost_node.1.is_none() {
        assert!(Instant::now() < deadline, "the storm and the node loss did not happen in time\n{}", context());
        if lost_node.1.is_none() {
            let tasks = c.tasks(&loss_job);
            let target = ids.iter().enumerate().find_map(|(i, id)| {
                let (state, node) = tasks.get(&format!("{loss_job}_{i}"))?;
                let p = progress(&loss_results, id)?;
                (state == "RUNNING" && node != STORM_NODE && p.epoch >= 1 && p.phase == progress_record::Phase::Training).then(|| node.clone())
            });
            if let Some(node) = target {
                victims = tasks.iter().filter(|(_, (s, n))| s == "RUNNING" && *n == node).map(|(t, _)| t.clone()).collect();
                eprintln!("[{:.0?}] killing node {node} (tasks {victims:?})", started.elapsed());
                c.script(&["kill-node", &node]);
                killed_at = Instant::now();
                lost_node.1 = Some(node);
            }
        }
        if storms < 2 && all_training(&storm_results, storms) && c.tasks(&storm_job).values().filter(|(s, _)| s == "RUNNING").count() == 3 {
            storms += 1;
            eprintln!("[{:.0?}] requeue storm {storms}: scontrol requeue {storm_job}", started.elapsed());
            let ok = c.cmd("scontrol").args(["requeue", &storm_job]).status().unwrap();
            assert!(ok.success());
            if storms == 2 {
                // While it is requeued, its checkpoint is deleted by hand: it must start over, and say so.
                let dir = storm_results.join("ckpt").join(&ids[0]);
                wait_until("the first storm run to write its checkpoint on SIGTERM", 60, context, || {
                    progress(&storm_results, &ids[0]).is_some_and(|p| p.phase == progress_record::Phase::Interrupted)
                });
                for f in walk(&dir).into_iter().filter(|f| f.file_name().is_some_and(|n| n.to_string_lossy().starts_with("ckpt-"))) {
                    std::fs::remove_file(&f).unwrap();
                }
                deleted = Some(ids[0].clone());
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let lost = lost_node.1.clone().unwrap();
    wait_until(&format!("SLURM to mark {lost} down"), 120, context, || c.nodes().get(&lost).is_some_and(|s| s.starts_with("down")));
    eprintln!("[{:.0?}] {lost} marked down {:.0} s after it was killed", started.elapsed(), killed_at.elapsed().as_secs_f64());
    wait_until("the storm's and the node loss's rows", 420, context, || rows(&storm_results).0.len() == 3 && rows(&loss_results).0.len() == 3);
    assert!(reference.wait().unwrap().success(), "the uninterrupted reference runs");
    eprintln!("[{:.0?}] both sweeps done", started.elapsed());

    // Every run one row, equal to the uninterrupted run's; no failure record, no temp file left.
    let reference = row_values(&reference_dir.join("results/reference"));
    let storm_rows = row_values(&storm_results);
    let loss_rows = row_values(&loss_results);
    for (name, got, results) in [("storm", &storm_rows, &storm_results), ("nodeloss", &loss_rows, &loss_results)] {
        assert_eq!(rows(results).1, 0, "{name}: no failure record");
        assert_eq!(got.keys().collect::<Vec<_>>(), reference.keys().collect::<Vec<_>>(), "{name}: one row per run");
        for (id, (steps, probe, knn, _, _)) in got {
            let (r_steps, r_probe, r_knn, _, _) = &reference[id];
            assert_eq!(steps, r_steps, "{name} {id}: the same number of steps as the uninterrupted run");
            assert!((probe - r_probe).abs() <= 0.03 && (knn - r_knn).abs() <= 0.03, "{name} {id}: probe {probe} vs {r_probe}, k-NN {knn} vs {r_knn}");
        }
    }
    let temps: Vec<PathBuf> = walk(&w).into_iter().filter(|f| f.file_name().is_some_and(|n| n.to_string_lossy().starts_with(".tmp-"))).collect();
    assert!(temps.is_empty(), "nothing half-written is left: {temps:?}");

    // The storm: two requeues per run, each after a checkpoint on SIGTERM; the run whose
    // checkpoint was deleted started over and said so; the others resumed.
    let deleted = deleted.unwrap();
    let storm_log = logs(&w, "storm");
    assert!(storm_log.contains("no checkpoint is left") && storm_log.contains("starts over from epoch 0"), "{storm_log}");
    let mut lost_s = Vec::new();
    for id in &ids {
        let (_, _, _, resumed, earlier) = &storm_rows[id];
        let earlier = earlier.clone().unwrap_or_default();
        assert_eq!(earlier.lines().filter(|l| l.contains("stopped by SIGTERM after writing a checkpoint")).count(), 2, "{id}: {earlier}");
        if *id == deleted {
            assert_eq!(*resumed, None, "{id} started over: {earlier}");
            assert!(earlier.contains("found no checkpoint and started over"), "{earlier}");
        } else {
            assert!(resumed.is_some_and(|e| e >= 1), "{id} resumed from its checkpoint: {resumed:?}");
        }
        let record = progress(&storm_results, id).unwrap();
        for a in &record.earlier {
            let (back, lost) = (a.back_after_s.unwrap(), a.lost_s.unwrap());
            let epoch_s = a.step_s.unwrap_or(0.0) * (record.total_steps / record.epochs as u64) as f64;
            if a.resumed_at_step != Some(0) {
                // the work done again is at most one checkpoint interval (an epoch); the rest is
                // SLURM's requeue delay and the start-up
                assert!(lost - back <= epoch_s + 1.0, "{id}: {lost:.1} s lost, {back:.1} s of it waiting: {a:?}");
                lost_s.push((lost, back));
            }
        }
    }
    eprintln!("[{:.0?}] requeue storm: time lost per requeue (s, of which waiting to restart): {lost_s:.1?}", started.elapsed());

    // The node loss: the lost node's tasks ran again elsewhere, resumed from their checkpoints,
    // and `gps sweep status` names them and why.
    let loss_status = status("nodeloss.yaml");
    let mut resumed_after_loss = 0;
    assert!(loss_status.contains("3 done, 0 running, 0 pending, 0 failed, 0 missing"), "{loss_status}");
    assert!(loss_status.contains("were restarted"), "{loss_status}");
    for task in &victims {
        let index: usize = task.rsplit('_').next().unwrap().parse().unwrap();
        let id = &ids[index];
        let (_, _, _, resumed, earlier) = &loss_rows[id];
        let earlier = earlier.clone().unwrap_or_default();
        assert!(earlier.contains(&format!("on {lost}")) && earlier.contains("no checkpoint on the way out"), "{id}: {earlier}");
        // a task that had checkpointed an epoch resumed from it (the one chosen to die had)
        let before = progress(&loss_results, id).and_then(|p| p.earlier.last().map(|a| a.epoch)).unwrap_or(0);
        if before >= 1 {
            resumed_after_loss += 1;
            assert!(resumed.is_some_and(|e| e >= 1), "{id} resumed from a checkpoint after its node was lost: {resumed:?} ({earlier})");
        }
        let line = loss_status.lines().position(|l| l.trim_start().starts_with(&format!("{id} (index"))).expect(&loss_status);
        assert!(loss_status.lines().nth(line + 1).is_some_and(|l| l.contains(&format!("on {lost}"))), "{loss_status}");
        let a = progress(&loss_results, id).and_then(|p| p.earlier.last().cloned()).unwrap();
        eprintln!("node loss: {id} lost {:.1} s, {:.1} s of it waiting to restart ({})", a.lost_s.unwrap_or(f64::NAN), a.back_after_s.unwrap_or(f64::NAN), a.describe());
    }
    assert!(resumed_after_loss >= 1, "the task killed past its first checkpoint resumed from it");
    let log = logs(&w, "nodeloss");
    assert!(victims.iter().all(|t| log.contains(&format!("task {t} on")) && log.contains("restart 1")), "{log}");
    eprintln!("[{:.0?}] node loss: {} task(s) on {lost} moved and resumed", started.elapsed(), victims.len());
}

/// `2026-12-07T20:01:02Z` -> seconds of the day.
fn time_of_day(stamp: &str) -> u64 {
    let t = stamp.split('T').nth(1).unwrap_or("").trim_end_matches('Z');
    t.split(':').fold(0, |acc, part| acc * 60 + part.parse::<u64>().unwrap_or(0))
}

/// The first `per_class` rows of each class of an MNIST CSV: a smaller file of the same real data.
fn write_subset(from: &Path, to: &Path, per_class: usize) {
    use std::io::{BufRead, Write};
    let reader = std::io::BufReader::new(flate2::read::GzDecoder::new(std::fs::File::open(from).unwrap()));
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = flate2::write::GzEncoder::new(std::fs::File::create(to).unwrap(), flate2::Compression::fast());
    for line in reader.lines() {
        let line = line.unwrap();
        let label = line.rsplit(',').next().unwrap().trim().to_string();
        let n = counts.entry(label).or_default();
        if *n < per_class {
            *n += 1;
            writeln!(out, "{line}").unwrap();
        }
    }
    out.finish().unwrap();
}
