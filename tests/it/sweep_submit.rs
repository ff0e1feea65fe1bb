//! `gps sweep submit --dry-run` and `gps task` through the generated script, with hostile paths:
//! what a sweep file or a directory name contains must never run as a command.

use std::path::Path;
use std::process::Command;

fn gps(workdir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gps")).args(args).current_dir(workdir).output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn dry_run_writes_a_safe_script_that_runs_the_task() {
    let tmp = tempfile::tempdir().unwrap();
    // a project folder whose name is shell syntax
    let workdir = tmp.path().join("it's $(touch pwned) `touch pwned2`");
    std::fs::create_dir(&workdir).unwrap();
    let sweep = "\
name: hostile
base:
  epochs: 1
  device: cpu
  dataset: {name: missing, format: mnist-csv, path: \"no such $(touch pwned3).csv.gz\"}
grid:
  seed: [1, 2, 3]
slurm:
  throttle: 2
  time: \"00:10:00\"
  extra: [\"--comment=gps-test\"]
";
    std::fs::write(workdir.join("s.yaml"), sweep).unwrap();
    let (ok, out) = gps(&workdir, &["sweep", "submit", "s.yaml", "--dry-run"]);
    assert!(ok, "{out}");
    assert!(out.contains("submitting 3") && out.contains("dry run"), "{out}");
    let sub = workdir.join("slurm/hostile/sub-001");
    let script = std::fs::read_to_string(sub.join("array.sbatch")).unwrap();
    assert!(script.contains("#SBATCH --array=0-2%2\n") && script.contains("#SBATCH --comment=gps-test\n"), "{script}");
    assert!(script.contains("#SBATCH --signal=B:USR1@120\n#SBATCH --time=00:10:00\n"), "{script}");
    assert!(!sub.join("prepare.sbatch").exists(), "no guided run, no preparation job");
    let manifest = std::fs::read_to_string(sub.join("manifest.tsv")).unwrap();
    assert_eq!(manifest.lines().filter(|l| !l.starts_with('#')).count(), 3);
    let syntax = Command::new("bash").arg("-n").arg(sub.join("array.sbatch")).status().unwrap();
    assert!(syntax.success());

    // Run the script as SLURM would for task 1: it must reach `gps task` with the right files;
    // the run fails (its dataset does not exist) and records why.
    let status = Command::new("bash")
        .arg(sub.join("array.sbatch"))
        .env("SLURM_ARRAY_TASK_ID", "1")
        .env("SLURM_ARRAY_JOB_ID", "42")
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(!status.status.success());
    let (_, expand) = gps(&workdir, &["sweep", "expand", "s.yaml", "--format", "json"]);
    let runs: serde_json::Value = serde_json::from_str(&expand).unwrap();
    let id = runs[1]["run_id"].as_str().unwrap();
    let record = workdir.join(format!("results/hostile/runs/{id}.failed.json"));
    assert!(record.exists(), "task 1 ran run 1 and recorded its failure: {}", String::from_utf8_lossy(&status.stderr));
    let recorded: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&record).unwrap()).unwrap();
    assert_eq!(recorded["job"], "42_1");
    for name in ["pwned", "pwned2", "pwned3"] {
        assert!(!workdir.join(name).exists() && !tmp.path().join(name).exists(), "{name} was created: a path was executed");
    }

    // status reads the records: one failed (with the reason), two missing
    let (ok, out) = gps(&workdir, &["sweep", "status", "s.yaml"]);
    assert!(ok, "{out}");
    assert!(out.contains("0 done, 0 running, 0 pending, 1 failed, 2 missing"), "{out}");
    assert!(out.contains("failed") && out.contains(id), "{out}");

    // arrays are split at the array size limit, each with its own manifest
    let (ok, out) = gps(&workdir, &["sweep", "submit", "s.yaml", "--dry-run", "--only-missing", "--max-array-size", "1"]);
    assert!(ok && out.contains("submitting 2"), "{out}");
    for sub in ["sub-002", "sub-003"] {
        let script = std::fs::read_to_string(workdir.join("slurm/hostile").join(sub).join("array.sbatch")).unwrap();
        assert!(script.contains("#SBATCH --array=0-0%2\n"), "{script}");
    }

    // --only-failed picks exactly the failed run
    let (ok, out) = gps(&workdir, &["sweep", "submit", "s.yaml", "--dry-run", "--only-failed"]);
    assert!(ok && out.contains("submitting 1"), "{out}");
    let manifest = std::fs::read_to_string(workdir.join("slurm/hostile/sub-004/manifest.tsv")).unwrap();
    assert!(manifest.contains(&format!("0\t{id}\t")), "{manifest}");
}

/// On a machine without SLURM: status falls back to the project's records, submit refuses.
#[test]
fn without_slurm_status_degrades_and_submit_explains() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    std::fs::write(w.join("s.yaml"), "name: nos\nbase: {epochs: 1, dataset: {path: missing.csv.gz, format: mnist-csv}}\ngrid: {seed: [1, 2]}\n").unwrap();
    let (ok, out) = gps(w, &["sweep", "submit", "s.yaml", "--dry-run"]);
    assert!(ok, "{out}");
    // pretend that dry run had been submitted
    std::fs::write(w.join("slurm/nos/sub-001/jobs.tsv"), "array\t999999\n").unwrap();
    let empty_path = w.join("no-slurm-here");
    std::fs::create_dir(&empty_path).unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_gps")).args(args).current_dir(w).env("PATH", &empty_path).output().unwrap();
        (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    };
    let (ok, out) = run(&["sweep", "status", "s.yaml"]);
    assert!(ok && out.contains("warning: cannot ask SLURM") && out.contains("0 done, 0 running, 0 pending, 0 failed, 2 missing"), "{out}");
    let (ok, out) = run(&["sweep", "submit", "s.yaml"]);
    assert!(!ok && out.contains("`scontrol` is not on PATH") && out.contains("gps sweep run"), "{out}");
}

#[test]
fn hostile_sweep_values_are_refused_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        ("slurm: {partition: \"gpu\\n#SBATCH --wrap=id\"}", "slurm.partition"),
        ("slurm: {extra: [\"--comment=$(id)\"]}", "slurm.extra"),
        ("slurm: {extra: [\"--output=/etc/passwd\"]}", "slurm.extra"),
        ("slurm: {gres: \"gpu:1 ; id\"}", "slurm.gres"),
        ("name: \"x; id\"", "may contain only"),
    ];
    for (extra, expected) in cases {
        std::fs::write(tmp.path().join("bad.yaml"), format!("grid: {{seed: [1]}}\n{extra}\n")).unwrap();
        let (ok, out) = gps(tmp.path(), &["sweep", "submit", "bad.yaml", "--dry-run"]);
        assert!(!ok && out.contains(expected) && out.contains("bad.yaml"), "{extra}: {out}");
        assert!(!tmp.path().join("slurm").exists(), "{extra}: nothing may be written");
    }
}

#[test]
fn train_set_overrides_and_names_bad_fields() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("run.yaml"), "epochs: 1\ndataset: {path: missing.csv.gz, format: mnist-csv}\n").unwrap();
    let (ok, out) = gps(tmp.path(), &["train", "run.yaml", "--set", "optimizer.lrr=0.1"]);
    assert!(!ok && out.contains("optimizer.lrr") && out.contains("unknown field `lrr`"), "{out}");
    let (ok, out) = gps(tmp.path(), &["train", "run.yaml", "--set", "k"]);
    assert!(!ok && out.contains("FIELD=VALUE"), "{out}");
    // a run that fails leaves its failure record under output_dir
    let (ok, out) = gps(tmp.path(), &["train", "run.yaml", "--set", "output_dir=out", "--set", "device=cpu"]);
    assert!(!ok, "{out}");
    let records: Vec<_> = std::fs::read_dir(tmp.path().join("out/runs")).unwrap().collect();
    assert_eq!(records.len(), 1, "{out}");
}
