//! `gps sweep run`: the local executor runs real (tiny) trainings as `gps task` children, writes
//! their rows and failure records, prints the table, and on a rerun does only what is left.

use crate::support::gps;
use std::process::Command;

#[test]
fn local_executor_runs_tasks_and_reruns_only_what_is_left() {
    let data = crate::support::mnist5k();
    assert!(data.exists(), "{} is missing: run scripts/fetch-mnist5k.sh", data.display());
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    let sweep = format!(
        "name: local\ndescription: tiny local sweep\nbase:\n  dataset: {{name: mnist5k, format: mnist-csv, path: \"{}\", train_limit: 300, test_limit: 100}}\n  backbone: small-cnn\n  augmentation: {{preset: weak}}\n  epochs: 1\n  batch_size: 50\n  device: cpu\n  eval: {{knn_k: 5}}\ngrid:\n  prior: [none, pixels]\n  dataset.path: [\"{}\", missing.csv.gz]\nexclude:\n  - {{prior: pixels, dataset.path: missing.csv.gz}}\n",
        data.display(),
        data.display()
    );
    std::fs::write(w.join("local.yaml"), sweep).unwrap();
    let (ok, out) = gps(w, &["sweep", "run", "local.yaml", "--jobs", "2"]);
    assert!(!ok, "one run fails, so the command fails: {out}");
    assert!(out.contains("running 3 here, 2 at a time"), "{out}");
    assert!(out.contains("1 of 3 runs failed") && out.contains("--only-failed"), "{out}");
    assert!(out.contains("missing.csv.gz"), "the failure's reason is shown: {out}");
    let runs = w.join("results/local/runs");
    let rows = std::fs::read_dir(&runs).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".parquet")).count();
    assert_eq!(rows, 2, "{out}");

    let (ok, out) = gps(w, &["report", "results/local", "--rows", "method", "--cols", "prior"]);
    assert!(ok && out.contains("| method | baseline | GPS pixels |") && out.contains("(n=1)"), "{out}");
    // Each row says where it came from: the sweep's description and its task's command line,
    // paths relative to the working directory.
    let (ok, out) = gps(w, &["report", "results/local", "--html", "report.html"]);
    let page = std::fs::read_to_string(w.join("report.html")).unwrap_or_default();
    assert!(ok && page.contains("tiny local sweep") && page.contains("gps task local.yaml --index 0 --manifest slurm/local/"), "{out}");

    // nothing missing; the failed run is retried alone (and fails again, for the same reason)
    let (_, out) = gps(w, &["sweep", "run", "local.yaml", "--only-missing"]);
    assert!(out.contains("running 0 here"), "{out}");
    let (ok, out) = gps(w, &["sweep", "run", "local.yaml", "--only-failed"]);
    assert!(!ok && out.contains("running 1 here"), "{out}");
}

/// `gps sweep status --watch` on a sweep the local executor is running: a pending and a running
/// run, the running one's epochs advancing, and the watch ending by itself once both are done.
#[test]
fn watch_follows_the_local_executor() {
    let data = crate::support::mnist5k();
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    let sweep = format!(
        "name: watched\nbase:\n  dataset: {{name: mnist5k, format: mnist-csv, path: \"{}\", train_limit: 200, test_limit: 100}}\n  backbone: small-cnn\n  augmentation: {{preset: weak}}\n  epochs: 3\n  batch_size: 50\n  device: cpu\n  eval: {{knn_k: 5}}\ngrid:\n  seed: [1, 2]\n",
        data.display()
    );
    std::fs::write(w.join("watched.yaml"), sweep).unwrap();
    let mut executor = Command::new(env!("CARGO_BIN_EXE_gps"))
        .args(["sweep", "run", "watched.yaml", "--jobs", "1"])
        .current_dir(w)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Before the executor has published its queue the runs are merely missing, and a watch
    // started then would find nothing to wait for.
    let queue = w.join("slurm/watched/local/queue.json");
    let start = std::time::Instant::now();
    while !queue.exists() && executor.try_wait().unwrap().is_none() && start.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let (ok, seen) = gps(w, &["sweep", "status", "watched.yaml", "--watch", "--interval", "0.5", "--until-done"]);
    assert!(executor.wait().unwrap().success(), "{seen}");
    assert!(ok, "{seen}");
    assert!(seen.contains("sweep watched: 0 done, 1 running, 1 pending, 0 failed, 0 missing"), "{seen}");
    let epochs: Vec<&str> = seen.lines().filter(|l| l.contains("seed=1  running")).filter_map(|l| l.split_whitespace().find(|t| t.ends_with("/3"))).collect();
    assert!(epochs.contains(&"0/3") && (epochs.contains(&"1/3") || epochs.contains(&"2/3")), "epochs advance: {epochs:?}\n{seen}");
    assert!(seen.contains("seed=2  running"), "the second run was shown once it started:\n{seen}");
    assert!(seen.trim_end().ends_with("2 done, 0 running, 0 pending, 0 failed, 0 missing"), "{seen}");
    assert!(!queue.exists(), "the executor removes its queue when it is done");
}
