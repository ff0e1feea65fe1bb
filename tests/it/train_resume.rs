//! A run killed with SIGTERM mid-training and started again resumes from its checkpoint and ends
//! where an uninterrupted run ends: same step count, same metrics (the positives and the
//! augmentation of every step are seeded by the step, so the resumed run replays the same batches).

use polars::prelude::*;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::{cifar10, repo};

fn write_spec(dir: &Path) -> PathBuf {
    let spec = format!(
        "dataset: {{name: cifar10, path: '{}', train_limit: 600, test_limit: 200}}\n\
         backbone: small-cnn\nmethod: simclr\nprior: none\naugmentation: {{preset: weak}}\n\
         epochs: 3\nbatch_size: 50\ncheckpoint_every: 1\ndevice: cpu\ncache_dir: '{}'\n",
        cifar10().display(),
        repo().join(".cache").display()
    );
    let path = dir.join("run.yaml");
    std::fs::write(&path, spec).unwrap();
    path
}

fn gps(spec: &Path, out: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gps"));
    c.args(["train", spec.to_str().unwrap(), "--set", &format!("output_dir={}", out.display())]);
    c
}

/// (steps, probe_top1_last, knn_top1, resumed_from_epoch, epochs recorded) of the one row in `out`.
fn row(out: &Path) -> (i64, f64, f64, Option<i64>, usize) {
    let runs = out.join("runs");
    let file = std::fs::read_dir(&runs).unwrap().map(|e| e.unwrap().path()).find(|p| p.extension().is_some_and(|e| e == "parquet")).expect("a result row");
    let df = ParquetReader::new(std::fs::File::open(file).unwrap()).finish().unwrap();
    let f = |c: &str| df.column(c).unwrap().f64().unwrap().get(0).unwrap();
    let steps = df.column("steps").unwrap().i64().unwrap().get(0).unwrap();
    let resumed = df.column("resumed_from_epoch").unwrap().i64().unwrap().get(0);
    let losses = df.column("epoch_losses").unwrap().list().unwrap().get_as_series(0).unwrap().len();
    (steps, f("probe_top1_last"), f("knn_top1"), resumed, losses)
}

/// A per-epoch list column of the one row in `out`.
fn epoch_list(out: &Path, column: &str) -> Vec<f64> {
    let runs = out.join("runs");
    let file = std::fs::read_dir(&runs).unwrap().map(|e| e.unwrap().path()).find(|p| p.extension().is_some_and(|e| e == "parquet")).expect("a result row");
    let df = ParquetReader::new(std::fs::File::open(file).unwrap()).finish().unwrap();
    df.column(column).unwrap().list().unwrap().get_as_series(0).unwrap().f64().unwrap().iter().map(|v| v.unwrap()).collect()
}

#[test]
fn sigterm_checkpoints_and_a_restart_resumes_to_the_same_end() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path());

    let straight = dir.path().join("straight");
    let status = gps(&spec, &straight).stderr(Stdio::null()).stdout(Stdio::null()).status().unwrap();
    assert!(status.success());

    // Interrupted: SIGTERM shortly after epoch 1 is reported, i.e. inside epoch 2 (12 steps,
    // a few seconds here; the signal is read before each step).
    let resumed = dir.path().join("resumed");
    let mut child = gps(&spec, &resumed).stderr(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut log = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        log.push_str(&line);
        log.push('\n');
        if line.starts_with("epoch 1/3") {
            break;
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    for line in lines {
        log.push_str(&line.unwrap());
        log.push('\n');
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(75), "an interrupted run exits 75 (requeue me); log:\n{log}");
    assert!(log.contains("interrupted by SIGTERM"), "{log}");
    assert!(!resumed.join("runs").exists() || std::fs::read_dir(resumed.join("runs")).unwrap().count() == 0, "no result row for an interrupted run");

    // A checkpoint written by a gps of another numerics version does not resume (a copy of this
    // one, as a gps from before numerics versions wrote it).
    let older = dir.path().join("older");
    copy_dir(&resumed, &older);
    for ckpt in std::fs::read_dir(older.join("ckpt")).unwrap().flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap()) {
        let path = ckpt.unwrap().path();
        if path.extension().is_some_and(|e| e == "safetensors") {
            without_numerics(&path);
        }
    }
    let out = gps(&spec, &older).stdout(Stdio::null()).output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && log.contains("numerics version unversioned") && log.contains("delete"), "{log}");

    let out = gps(&spec, &resumed).stdout(Stdio::null()).output().unwrap();
    let log2 = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log2}");
    assert!(log2.contains("resuming from"), "{log2}");

    let (steps_a, probe_a, knn_a, resumed_a, epochs_a) = row(&straight);
    let (steps_b, probe_b, knn_b, resumed_b, epochs_b) = row(&resumed);
    assert_eq!(resumed_a, None);
    assert_eq!(resumed_b, Some(1), "resumed inside epoch 2, after 1 finished epoch");
    assert_eq!((steps_a, epochs_a), (3 * 12, 3));
    assert_eq!((steps_b, epochs_b), (steps_a, epochs_a), "same final step count");
    assert!((probe_a - probe_b).abs() <= 0.03, "probe {probe_a} vs {probe_b}");
    assert!((knn_a - knn_b).abs() <= 0.03, "k-NN {knn_a} vs {knn_b}");
    // Representation health survives the restart: epoch 1's value comes from the checkpoint.
    for column in ["epoch_rankme", "epoch_alignment", "epoch_uniformity"] {
        let (a, b) = (epoch_list(&straight, column), epoch_list(&resumed, column));
        assert_eq!((a.len(), b.len()), (3, 3), "{column}: {a:?} vs {b:?}");
        assert!(a.iter().chain(&b).all(|v| v.is_finite()), "{column}: {a:?} vs {b:?}");
        assert!((a[0] - b[0]).abs() <= 0.05 * a[0].abs().max(0.1), "{column} at epoch 1: {a:?} vs {b:?}");
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() { copy_dir(&entry.path(), &target) } else { std::fs::copy(entry.path(), target).map(|_| ()).unwrap() }
    }
}

/// Rewrites a checkpoint's loop state without its numerics version.
fn without_numerics(path: &Path) {
    let tensors = tch::Tensor::read_safetensors(path).unwrap();
    let tensors: Vec<(String, tch::Tensor)> = tensors
        .into_iter()
        .map(|(name, t)| {
            if name != "__meta__" {
                return (name, t);
            }
            let bytes = Vec::<u8>::try_from(&t).unwrap();
            let mut meta: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert!(meta.as_object_mut().unwrap().remove("numerics").is_some(), "checkpoints record their numerics version");
            (name, tch::Tensor::from_slice(&serde_json::to_vec(&meta).unwrap()))
        })
        .collect();
    tch::Tensor::write_safetensors(&tensors, path).unwrap();
}
