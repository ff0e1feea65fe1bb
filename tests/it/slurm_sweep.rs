//! End to end on a real SLURM (`slurm/local-cluster.sh up`): a small real sweep through sbatch,
//! with a preparation job, a failing task, a task interrupted mid-run that requeues itself and
//! resumes from its checkpoint (watched live with `gps sweep status --watch`), idempotent
//! resubmission, status and the report.
//!
//! Runs when `sbatch` is on PATH and the controller answers; with GPS_REQUIRE_SLURM=1 (CI) a
//! missing cluster is a failure, not a skip.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn cluster_ready() -> bool {
    let required = std::env::var("GPS_REQUIRE_SLURM").is_ok_and(|v| v == "1");
    let up = Command::new("scontrol").arg("ping").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("is UP"));
    let sbatch = Command::new("sbatch").arg("--version").output().is_ok_and(|o| o.status.success());
    if !(up && sbatch) {
        assert!(!required, "GPS_REQUIRE_SLURM=1 but no SLURM cluster answers (sbatch on PATH: {sbatch}); run `slurm/local-cluster.sh up`");
        eprintln!("skipping: no SLURM cluster (start one with `slurm/local-cluster.sh up`)");
        return false;
    }
    true
}

fn gps(workdir: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_gps")).args(args).current_dir(workdir).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "gps {args:?} failed:\n{text}");
    text
}

fn base(data: &Path, epochs: usize) -> String {
    format!(
        "base:\n  dataset: {{name: mnist5k, format: mnist-csv, path: \"{}\", train_limit: 400, test_limit: 100}}\n  backbone: small-cnn\n  augmentation: {{preset: weak}}\n  epochs: {epochs}\n  batch_size: 64\n  device: cpu\n  checkpoint_every: 1\n  eval: {{every_epochs: 1, knn_k: 5}}\nslurm: {{cpus: 1, mem: 1G, time: \"00:10:00\", gres: \"gpu:1\"}}\n",
        data.display()
    )
}

/// Polls until `done` holds; on timeout fails with the sweep's status and logs.
fn wait_until(workdir: &Path, what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while !done() {
        if Instant::now() > end {
            let mut logs = String::new();
            for sweep in ["e2e.yaml", "requeue.yaml"] {
                if workdir.join(sweep).exists() {
                    logs += &gps(workdir, &["sweep", "status", sweep]);
                }
            }
            for entry in walk(&workdir.join("slurm")) {
                if entry.extension().is_some_and(|e| e == "out") {
                    logs += &format!("---- {}\n{}", entry.display(), std::fs::read_to_string(&entry).unwrap_or_default());
                }
            }
            panic!("timed out after {secs} s waiting for {what}\n{logs}");
        }
        std::thread::sleep(Duration::from_millis(300));
    }
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

/// The finished rows and failure records of a results folder, as `gps report` lists them (a
/// writer's half-written `.tmp-*` file is not a row); none while the folder does not exist yet.
fn rows_and_failures(results: &Path) -> (Vec<PathBuf>, usize) {
    gps_ssl::results::table::row_files(results).unwrap_or_default()
}

#[test]
fn sweep_on_a_real_slurm() {
    if !cluster_ready() {
        return;
    }
    let data = crate::support::mnist5k();
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    // 3 runs: baseline and GPS (pixels prior: needs the preparation job) on real data, and one
    // baseline whose dataset file does not exist (must fail, with its reason).
    let missing = w.join("missing-mnist.csv.gz");
    let e2e = format!(
        "name: e2e\n{}grid:\n  prior: [none, pixels]\n  dataset.path: [\"{}\", \"{}\"]\nexclude:\n  - {{prior: pixels, dataset.path: \"{}\"}}\n",
        base(&data, 1),
        data.display(),
        missing.display(),
        missing.display()
    );
    std::fs::write(w.join("e2e.yaml"), &e2e).unwrap();
    // one longer run that gets interrupted mid-run
    std::fs::write(w.join("requeue.yaml"), format!("name: requeue\n{}grid:\n  seed: [3]\n", base(&data, 4))).unwrap();

    let out = gps(w, &["sweep", "submit", "e2e.yaml"]);
    assert!(out.contains("submitting 3") && out.contains("after preparation job"), "{out}");
    let out = gps(w, &["sweep", "submit", "requeue.yaml"]);
    let requeue_job = out.split("submitted array job ").nth(1).and_then(|s| s.split(':').next()).expect(&out).to_string();
    // Watch it live until it is done (off a terminal: a plain table every second), as a user would
    // in another shell; what it printed is checked once the run has finished.
    let mut watch = Command::new(env!("CARGO_BIN_EXE_gps"))
        .args(["sweep", "status", "requeue.yaml", "--watch", "--interval", "1", "--until-done"])
        .current_dir(w)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut watch_stdout = watch.stdout.take().unwrap();
    let watch_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = watch_stdout.read_to_string(&mut text);
        text
    });
    // submitting again while queued adds nothing
    let again = gps(w, &["sweep", "submit", "e2e.yaml"]);
    assert!(again.contains("nothing to submit"), "{again}");

    // Interrupt the requeue run once it has a checkpoint: USR1 to the batch shell, as SLURM does
    // before the time limit. gps checkpoints, requeues itself and exits; the rerun resumes.
    let requeue_results = w.join("results/requeue");
    let ckpt = w.join("results/requeue/ckpt");
    wait_until(w, "a first checkpoint of the requeue run", 120, || {
        walk(&ckpt).iter().any(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("ckpt-")))
    });
    let sig = Command::new("scancel").args(["--signal=USR1", "--batch", &format!("{requeue_job}_0")]).status().unwrap();
    assert!(sig.success());

    eprintln!("[{:.0?}] requeue run interrupted", started.elapsed());
    let e2e_results = w.join("results/e2e");
    wait_until(w, "the e2e sweep's 2 rows and 1 failure record", 180, || {
        let (rows, failures) = rows_and_failures(&e2e_results);
        rows.len() == 2 && failures == 1
    });
    eprintln!("[{:.0?}] e2e sweep finished", started.elapsed());
    let status = gps(w, &["sweep", "status", "e2e.yaml"]);
    assert!(status.contains("2 done, 0 running, 0 pending, 1 failed, 0 missing"), "{status}");
    let failed_line = status.lines().find(|l| l.contains("failed ")).expect(&status);
    assert!(failed_line.contains("missing-mnist"), "the reason names the missing file: {failed_line}");

    wait_until(w, "the requeued run to finish", 180, || rows_and_failures(&requeue_results).0.len() == 1);
    eprintln!("[{:.0?}] requeued run finished", started.elapsed());
    let file = rows_and_failures(&requeue_results).0.pop().unwrap();
    use polars::prelude::SerReader;
    let frame = polars::prelude::ParquetReader::new(std::fs::File::open(&file).unwrap()).finish().unwrap();
    let resumed = frame.column("resumed_from_epoch").unwrap().i64().unwrap().get(0);
    assert!(resumed.is_some(), "the rerun resumed from a checkpoint: {resumed:?}");
    let log = std::fs::read_to_string(w.join(format!("slurm/requeue/logs/{requeue_job}_0.out"))).unwrap();
    assert!(log.contains("requeued") && log.contains("restart 1"), "{log}");

    // The watch saw the run's epochs advance (through the requeue) and ended by itself on the final state.
    let end = Instant::now() + Duration::from_secs(30);
    while watch.try_wait().unwrap().is_none() {
        if Instant::now() > end {
            let _ = watch.kill();
            panic!("the watch did not end after the run finished:\n{}", watch_reader.join().unwrap());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let seen = watch_reader.join().unwrap();
    assert!(watch.wait().unwrap().success(), "{seen}");
    let epochs: Vec<usize> = seen
        .lines()
        .filter(|l| l.contains(" running ") || l.contains(" evaluating "))
        .filter_map(|l| l.split_whitespace().find_map(|t| t.strip_suffix("/4")?.parse().ok()))
        .collect();
    let distinct: std::collections::BTreeSet<usize> = epochs.iter().copied().collect();
    assert!(distinct.len() >= 2, "the watch shows the epochs advancing: {epochs:?}\n{seen}");
    assert!(epochs.windows(2).all(|p| p[0] <= p[1]), "a resumed run goes on from its checkpoint's epoch: {epochs:?}");
    let last_summary = seen.lines().rfind(|l| l.starts_with("sweep requeue: ")).unwrap_or_default();
    assert_eq!(last_summary, "sweep requeue: 1 done, 0 running, 0 pending, 0 failed, 0 missing", "{seen}");
    assert!(seen.trim_end().ends_with("1 done, 0 running, 0 pending, 0 failed, 0 missing"), "the final status table closes the watch:\n{seen}");

    // Resubmission takes only what is missing: nothing now; after the grid grows, just the new run.
    let out = gps(w, &["sweep", "submit", "e2e.yaml", "--only-missing"]);
    assert!(out.contains("submitting 0"), "{out}");
    std::fs::write(
        w.join("e2e.yaml"),
        e2e.replace("prior: [none, pixels]", "prior: [none, pixels, labels]").replace("{prior: pixels,", "{prior: [pixels, labels],"),
    )
    .unwrap();
    let out = gps(w, &["sweep", "submit", "e2e.yaml", "--only-missing"]);
    assert!(out.contains("submitting 1"), "{out}");
    let new_job = out.split("submitted array job ").nth(1).and_then(|s| s.split(':').next()).expect(&out).to_string();
    let manifests: Vec<PathBuf> = walk(&w.join("slurm/e2e")).into_iter().filter(|p| p.ends_with("manifest.tsv")).collect();
    assert_eq!(manifests.len(), 2);
    let mut jobs = vec![new_job];
    jobs.extend(out.split("after preparation job ").nth(1).and_then(|s| s.split(';').next()).map(str::to_string));
    let _ = Command::new("scancel").args(&jobs).status();

    let report = gps(w, &["report", "results/e2e"]);
    assert!(report.contains("mnist5k baseline") && report.contains("mnist5k GPS pixels") && report.contains("1 failed runs"), "{report}");
    assert!(report.contains("(n=1)"), "{report}");
}

/// The long options a real `sbatch` reports for `args` under `--test-only -v` ("defined options"),
/// and whether it accepted the job.
fn sbatch_defined_options(args: &[&str]) -> (Vec<(String, String)>, bool, String) {
    let out = Command::new("sbatch").arg("--test-only").arg("-v").args(args).stdin(std::process::Stdio::null()).output().unwrap();
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    let mut options = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim_start_matches("sbatch: ");
        if line.starts_with("defined options") {
            inside = true;
        } else if line.starts_with("end of defined options") {
            inside = false;
        } else if inside
            && !line.starts_with("---")
            && let Some((name, value)) = line.split_once(" : ")
        {
            options.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    (options, out.status.success(), text)
}

/// `slurm.extra` against the real sbatch: gps knows every long option this sbatch has; every
/// abbreviation gps refuses is read by sbatch as the reserved option gps names; the directives
/// gps allows (abbreviated or not) are written in full and accepted by `sbatch --test-only`.
#[test]
fn slurm_extra_as_sbatch_reads_it() {
    use gps_ssl::sweep::slurm_options::{SlurmOptions, resolve_option};
    if !cluster_ready() {
        return;
    }
    // 1. every option this sbatch lists (glibc names them all for an ambiguous one-letter prefix,
    // or the single one in "option '--x' requires an argument") is in gps's table
    let mut seen = 0;
    for letter in 'a'..='z' {
        let out = Command::new("sbatch").arg(format!("--{letter}")).stdin(std::process::Stdio::null()).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        let names: Vec<&str> = match err.split("possibilities:").nth(1) {
            Some(list) => list.lines().next().unwrap_or("").split_whitespace().map(|n| n.trim_matches('\'').trim_start_matches("--")).collect(),
            None if err.contains("requires an argument") || err.contains("doesn't allow an argument") => {
                err.split("option '--").nth(1).and_then(|r| r.split('\'').next()).into_iter().collect()
            }
            None => Vec::new(), // unrecognized: no option starts with this letter
        };
        for name in names {
            seen += 1;
            assert_eq!(resolve_option(name), Ok(name), "sbatch has `--{name}`, which gps's option table lacks");
        }
    }
    assert!(seen > 100, "sbatch listed only {seen} options");

    // 2. refused abbreviations: sbatch reads each as exactly the option gps names in its error
    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("probe.sh");
    for entry in [
        "--wra=true",
        "--arr=0-3",
        "--outp=x.out",
        "--err=x.err",
        "--chd=/tmp",
        "--dep=afterany:1",
        "--sig=B:USR1@60",
        "--no-req",
        "--open=append",
        "--job-nam=x",
        "--export-file=/dev/null",
        "--exp=ALL",
        "--requ",
        "--parsa",
        "--inp=/dev/null",
    ] {
        let options = SlurmOptions { extra: vec![entry.to_string()], ..Default::default() };
        let error = options.validate().expect_err(entry).to_string();
        let named = error.split("sbatch reads it as `--").nth(1).or_else(|| error.split("`--").nth(1)).and_then(|r| r.split('`').next()).unwrap().to_string();
        if error.contains("ambiguous") {
            let (_, ok, text) = sbatch_defined_options(&[entry, "--wrap=true"]);
            assert!(!ok && text.contains("is ambiguous"), "{entry}: gps calls it ambiguous, sbatch does not:\n{text}");
            continue;
        }
        std::fs::write(&script, format!("#!/bin/bash\n#SBATCH {entry}\ntrue\n")).unwrap();
        let (mut defined, _, mut text) = sbatch_defined_options(&[script.to_str().unwrap()]);
        if !defined.iter().any(|(n, _)| *n == named) {
            // sbatch ignores --wrap inside a script; on the command line it takes it
            (defined, _, text) = sbatch_defined_options(&[entry]);
        }
        assert!(defined.iter().any(|(n, _)| *n == named), "{entry}: gps says sbatch reads `--{named}`, sbatch defined {defined:?}\n{text}");
    }

    // 3. allowed directives, some abbreviated, in the array script gps writes: accepted as written
    let node = String::from_utf8_lossy(&Command::new("sinfo").args(["-h", "-o", "%N"]).output().unwrap().stdout).trim().to_string();
    let extra = [
        "--comment=gps-test",
        "--nic=5",
        "--mail-t=END,FAIL",
        "--mail-user=nobody@example.org",
        "--exclusive",
        "--hold",
        "--begin=now+1hour",
        &format!("--nodelist={node}"),
        "--time-min=5",
        "--deadline=now+1day",
        "--hint=nomultithread",
        "--gpus-per-task=1",
        "--mincpus=1",
        "--spread-job",
        "--use-min-nodes",
        "--contiguous",
        "--mem-per-cpu=100M",
    ];
    let quoted: Vec<String> = extra.iter().map(|e| format!("\"{e}\"")).collect();
    let w = tmp.path();
    std::fs::write(w.join("extra.yaml"), format!("name: extra\ngrid:\n  seed: [0, 1]\nslurm:\n  time: \"00:10:00\"\n  extra: [{}]\n", quoted.join(", ")))
        .unwrap();
    gps(w, &["sweep", "submit", "extra.yaml", "--dry-run"]);
    let array = w.join("slurm/extra/sub-001/array.sbatch");
    let written = std::fs::read_to_string(&array).unwrap();
    assert!(written.contains("#SBATCH --nice=5\n") && written.contains("#SBATCH --mail-type=END,FAIL\n"), "abbreviations written in full:\n{written}");
    let (defined, ok, text) = sbatch_defined_options(&[array.to_str().unwrap()]);
    assert!(ok, "sbatch --test-only refused the array script gps wrote:\n{written}\n{text}");
    for name in [
        "comment",
        "nice",
        "mail-type",
        "mail-user",
        "exclusive",
        "hold",
        "begin",
        "nodelist",
        "time-min",
        "deadline",
        "hint",
        "gpus-per-task",
        "mincpus",
        "spread-job",
        "use-min-nodes",
        "contiguous",
        "mem-per-cpu",
        "array",
        "requeue",
        "signal",
        "open-mode",
    ] {
        assert!(defined.iter().any(|(n, _)| n == name), "`--{name}` not among sbatch's defined options: {defined:?}");
    }
    assert!(defined.iter().any(|(n, v)| n == "array" && v == "0-1"));
    assert!(defined.iter().any(|(n, v)| n == "nice" && v == "5"));
}

/// `gps sweep submit --check`: the self-check runs first as its own one-task job; the array starts
/// only once it succeeds, and when it fails (here: runs that ask for CUDA on a node without it)
/// SLURM cancels the array instead of leaving it pending, and the check's log says why.
#[test]
fn check_job_gates_the_array() {
    if !cluster_ready() {
        return;
    }
    let data = crate::support::mnist5k();
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    std::fs::write(w.join("checked.yaml"), format!("name: checked\n{}grid:\n  seed: [1]\n", base(&data, 1))).unwrap();
    let out = gps(w, &["sweep", "submit", "checked.yaml", "--check"]);
    assert!(
        out.contains("submitted check job") && out.contains("gps info --check --device cpu --backbone small-cnn") && out.contains("once check job"),
        "{out}"
    );
    let check_job = out.split("submitted check job ").nth(1).and_then(|s| s.split(':').next()).unwrap().to_string();
    let results = w.join("results/checked");
    wait_until(w, "the checked sweep's row", 420, || rows_and_failures(&results).0.len() == 1);
    let log = std::fs::read_to_string(w.join(format!("slurm/checked/logs/check_{check_job}.out"))).unwrap_or_default();
    assert!(log.contains("self-check passed"), "{log}");
    let script = std::fs::read_to_string(w.join("slurm/checked/check.sbatch")).unwrap();
    assert!(script.contains("#SBATCH --time=00:20:00") && !script.contains("--time=00:10:00"), "{script}");

    // Runs that ask for CUDA where there is none: the check fails, the array never starts.
    let cuda = base(&data, 1).replace("device: cpu", "device: cuda");
    std::fs::write(w.join("nocuda.yaml"), format!("name: nocuda\n{cuda}grid:\n  seed: [1]\n")).unwrap();
    let out = gps(w, &["sweep", "submit", "nocuda.yaml", "--check"]);
    let check_job = out.split("submitted check job ").nth(1).and_then(|s| s.split(':').next()).unwrap().to_string();
    let array_job = out.split("submitted array job ").nth(1).and_then(|s| s.split(':').next()).unwrap().to_string();
    // Gone from the queue: the check failed, and SLURM cancelled the array waiting for it.
    wait_until(w, "the array to be cancelled after the failed check", 300, || {
        let q = Command::new("squeue")
            .args(["-h", "-j", &format!("{check_job},{array_job}")])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        q.is_empty()
    });
    let log = std::fs::read_to_string(w.join(format!("slurm/nocuda/logs/check_{check_job}.out"))).unwrap_or_default();
    assert!(log.contains("`cuda` was asked for but CUDA is not usable here"), "{log}");
    assert!(rows_and_failures(&w.join("results/nocuda")).0.is_empty(), "no task ran");
    assert!(!w.join(format!("slurm/nocuda/logs/{array_job}_0.out")).exists(), "the array's task never started");
}

/// SLURM refuses the job (a partition that does not exist, as a QOS or a closed partition would):
/// the error names the cause and what to change, and nothing is recorded as submitted, so status
/// shows the runs as missing and the corrected sweep submits them.
#[test]
fn a_refused_submission_records_nothing() {
    if !cluster_ready() {
        return;
    }
    let data = crate::support::mnist5k();
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    let sweep = format!("name: refused\n{}grid:\n  prior: [none, pixels]\n", base(&data, 1)).replace("slurm: {", "slurm: {partition: nosuch, ");
    std::fs::write(w.join("refused.yaml"), &sweep).unwrap();
    let out = crate::support::gps_output(w, &["sweep", "submit", "refused.yaml"]);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("SLURM refused the job") && text.contains("nosuch") && text.contains("slurm.partition"), "{text}");
    assert!(text.contains("2 run(s) not submitted, and nothing recorded as submitted"), "{text}");
    let subs: Vec<PathBuf> = walk(&w.join("slurm/refused")).into_iter().filter(|p| p.to_string_lossy().contains("sub-")).collect();
    assert!(subs.is_empty(), "no submission folder is left: {subs:?}");
    let status = gps(w, &["sweep", "status", "refused.yaml"]);
    assert!(status.contains("0 done, 0 running, 0 pending, 0 failed, 2 missing"), "{status}");
    let dry = gps(w, &["sweep", "submit", "refused.yaml", "--dry-run"]);
    assert!(dry.contains("submitting 2"), "the runs are still to submit: {dry}");
}
