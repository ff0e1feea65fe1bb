//! Which positives a run draws, on real (small) data: the neighbour table rebuilt from the model
//! being trained (and a resume across a rebuild), candidates within a distance τ, several positives
//! per anchor, a finished run as the prior, and `gps prior inspect` on a sweep file.

use crate::support::{gps, gps_ok, mnist5k};
use polars::prelude::*;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A small run on MNIST-5k (SimCLR with the pixel prior unless `extra` says otherwise: its
/// fields replace these).
fn spec(dir: &Path, name: &str, extra: &str) -> PathBuf {
    let mut fields: Vec<(String, String)> = [
        ("dataset", format!("{{name: mnist5k, format: mnist-csv, path: '{}', train_limit: 400, test_limit: 100}}", mnist5k().display())),
        ("backbone", "small-cnn".into()),
        ("method", "simclr".into()),
        ("prior", "pixels".into()),
        ("k", "5".into()),
        ("augmentation", "{preset: weak}".into()),
        ("epochs", "3".into()),
        ("batch_size", "50".into()),
        ("optimizer", "{warmup_epochs: 0}".into()),
        ("eval", "{knn_k: 5, every_epochs: 3}".into()),
        ("checkpoint_every", "1".into()),
        ("device", "cpu".into()),
        ("cache_dir", format!("'{}'", crate::support::repo().join(".cache").display())),
        ("output_dir", format!("'{}'", dir.join(name).display())),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for line in extra.lines() {
        let (key, value) = line.split_once(": ").expect("`field: value` lines");
        match fields.iter_mut().find(|(k, _)| k == key) {
            Some(f) => f.1 = value.to_string(),
            None => fields.push((key.to_string(), value.to_string())),
        }
    }
    let text: String = fields.iter().map(|(k, v)| format!("{k}: {v}\n")).collect();
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// The one result row in `<out>/runs`.
fn row(out: &Path) -> DataFrame {
    let runs = out.join("runs");
    let file = std::fs::read_dir(&runs).unwrap().map(|e| e.unwrap().path()).find(|p| p.extension().is_some_and(|e| e == "parquet")).expect("a result row");
    ParquetReader::new(std::fs::File::open(file).unwrap()).finish().unwrap()
}

fn f64_of(df: &DataFrame, c: &str) -> Option<f64> {
    df.column(c).unwrap().cast(&DataType::Float64).unwrap().f64().unwrap().get(0)
}

fn list_of(df: &DataFrame, c: &str) -> Vec<f64> {
    let s = df.column(c).unwrap().list().unwrap().get_as_series(0).unwrap();
    s.cast(&DataType::Float64).unwrap().f64().unwrap().iter().map(|v| v.unwrap()).collect()
}

fn train(spec: &Path) -> String {
    gps_ok(spec.parent().unwrap(), &["train", spec.to_str().unwrap()])
}

/// Every epoch the table is rebuilt from the model (after epochs 1 and 2 of 3); a run killed
/// after the first rebuild and resumed draws from the rebuilt table (it is in the checkpoint) and
/// ends where the uninterrupted run ends.
#[test]
fn a_refreshed_table_is_recorded_checkpointed_and_survives_a_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let s = spec(tmp.path(), "straight", "prior_refresh: {every_epochs: 1}\n");
    let log = train(&s);
    assert!(log.contains("neighbour table rebuilt from the model after epoch 1") && log.contains("after epoch 2"), "{log}");
    let straight = row(&tmp.path().join("straight"));
    assert_eq!(list_of(&straight, "refresh_epochs"), [1.0, 2.0]);
    let purity = list_of(&straight, "refresh_purity");
    assert!(purity.iter().all(|p| (0.0..=1.0).contains(p)), "{purity:?}");
    assert!(list_of(&straight, "refresh_s").iter().all(|s| *s > 0.0));
    assert!(list_of(&straight, "refresh_tau").iter().all(|t| t.is_nan()), "a k-nearest table has no τ");

    // The same spec, interrupted inside epoch 2 (after the first rebuild), then resumed.
    let r = spec(tmp.path(), "resumed", "prior_refresh: {every_epochs: 1}\n");
    let mut child = Command::new(env!("CARGO_BIN_EXE_gps")).args(["train", r.to_str().unwrap()]).stderr(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen += &line;
        seen.push('\n');
        if line.contains("rebuilt from the model after epoch 1") {
            break;
        }
    }
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    for line in lines {
        seen += &line.unwrap();
        seen.push('\n');
    }
    assert_eq!(child.wait().unwrap().code(), Some(75), "{seen}");
    let ckpt_dir = std::fs::read_dir(tmp.path().join("resumed/ckpt")).unwrap().next().unwrap().unwrap().path();
    let newest = std::fs::read_dir(&ckpt_dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "safetensors")).max().unwrap();
    let names: Vec<String> = tch::Tensor::read_safetensors(&newest).unwrap().into_iter().map(|(n, _)| n).collect();
    assert!(names.iter().any(|n| n == "table.neighbours"), "the rebuilt table is in the checkpoint: {names:?}");
    let log = train(&r);
    assert!(log.contains("resuming from") && !log.contains("after epoch 1:"), "the rebuild after epoch 1 is not redone: {log}");
    let resumed = row(&tmp.path().join("resumed"));
    assert_eq!(f64_of(&resumed, "resumed_from_epoch"), Some(1.0));
    assert_eq!(list_of(&resumed, "refresh_epochs"), [1.0, 2.0]);
    assert_eq!(list_of(&resumed, "refresh_purity")[0], purity[0], "the first rebuild's record comes from the checkpoint");
    assert!((list_of(&resumed, "refresh_purity")[1] - purity[1]).abs() <= 0.05, "{:?} vs {purity:?}", list_of(&resumed, "refresh_purity"));
    for c in ["steps", "probe_top1_last", "positive_purity"] {
        let (a, b) = (f64_of(&straight, c).unwrap(), f64_of(&resumed, c).unwrap());
        assert!((a - b).abs() <= 0.03 * a.abs().max(1.0), "{c}: {a} vs {b}");
    }
}

/// Candidates within τ: an adaptive τ from the data, recorded with the candidate counts; a τ no
/// neighbour meets leaves every image with only itself (so every positive is its anchor).
#[test]
fn candidates_within_tau_are_recorded_and_a_tiny_tau_leaves_each_image_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let s = spec(tmp.path(), "adaptive", "epochs: 1\nneighbours: {mode: radius, adaptive: mean+std, adaptive_k: 5, max_candidates: 50}\n");
    train(&s);
    let r = row(&tmp.path().join("adaptive"));
    let tau = f64_of(&r, "tau").unwrap();
    assert!(tau > 0.0, "{tau}");
    let (mean, min, max) = (f64_of(&r, "candidates_mean").unwrap(), f64_of(&r, "candidates_min").unwrap(), f64_of(&r, "candidates_max").unwrap());
    assert!(min >= 1.0 && mean >= min && max >= mean && max <= 50.0, "{min} {mean} {max}");
    assert!((0.0..1.0).contains(&f64_of(&r, "candidates_self_only").unwrap()));

    let s = spec(tmp.path(), "tiny", "epochs: 1\nneighbours: {mode: radius, tau: 1.0e-9}\n");
    train(&s);
    let r = row(&tmp.path().join("tiny"));
    assert_eq!((f64_of(&r, "candidates_self_only"), f64_of(&r, "candidates_max")), (Some(1.0), Some(1.0)));
    assert_eq!(f64_of(&r, "positive_purity"), Some(1.0), "alone, each image is its own positive");
}

/// Two positives per anchor for SimCLR and BYOL: three views a step, every positive counted.
#[test]
fn several_positives_train_simclr_and_byol() {
    let tmp = tempfile::tempdir().unwrap();
    for method in ["simclr", "byol"] {
        let s = spec(tmp.path(), method, &format!("epochs: 1\nmethod: {method}\npositives: 2\n"));
        train(&s);
        let r = row(&tmp.path().join(method));
        assert!(f64_of(&r, "final_loss").unwrap().is_finite());
        assert_eq!(f64_of(&r, "steps"), Some(8.0));
        let p = f64_of(&r, "positive_purity").unwrap();
        assert!(p > 0.3 && p < 1.0, "{method}: {p}");
    }
}

/// A finished run as the prior, from its results folder or its exported encoder; a missing run,
/// one that kept no checkpoint and one of another training-set size are refused by name.
#[test]
fn a_finished_run_is_a_prior() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    let first = spec(w, "first", "epochs: 1\nprior: none\n");
    let out = train(&first);
    let id = out.split("run ").nth(1).map(|s| s[..12].to_string()).expect(&out);
    let dir = w.join("first");
    let s = spec(w, "guided", &format!("epochs: 1\nprior: 'run:{}'\n", dir.join(&id).display()));
    train(&s);
    let p = f64_of(&row(&w.join("guided")), "positive_purity").unwrap();
    assert!(p > 0.2 && p < 1.0, "neighbours in the first run's feature space: {p}");

    gps_ok(w, &["export", dir.to_str().unwrap(), "--run", &id]);
    let file = dir.join(format!("export/{id}.safetensors"));
    let s = spec(w, "exported", &format!("epochs: 1\nprior: 'run:{}'\n", file.display()));
    train(&s);
    let q = f64_of(&row(&w.join("exported")), "positive_purity").unwrap();
    assert!((p - q).abs() < 1e-9, "the export and the checkpoint are the same encoder: {p} vs {q}");

    for (prior, fragment) in [
        (dir.join("0123456789ab").display().to_string(), "no such run".to_string()),
        (w.join("missing.safetensors").display().to_string(), "does not exist".to_string()),
    ] {
        let s = spec(w, "bad", &format!("epochs: 1\nprior: 'run:{prior}'\n"));
        let (ok, text) = gps(w, &["train", s.to_str().unwrap()]);
        assert!(!ok && text.contains(&fragment) && text.contains("run:"), "{prior}: {text}");
    }
    let other = spec(
        w,
        "other",
        &format!(
            "epochs: 1\nprior: 'run:{}'\ndataset: {{name: mnist5k, format: mnist-csv, path: '{}', train_limit: 300, test_limit: 100}}\n",
            dir.join(&id).display(),
            mnist5k().display()
        ),
    );
    let (ok, text) = gps(w, &["train", other.to_str().unwrap()]);
    assert!(!ok && text.contains("trained on 400 images") && text.contains("300 training images"), "{text}");
    let unkept = spec(w, "unkept", "epochs: 1\nprior: none\nseed: 9\n");
    let out = gps_ok(w, &["train", unkept.to_str().unwrap(), "--no-keep"]);
    let unkept_id = out.split("run ").nth(1).map(|s| s[..12].to_string()).expect(&out);
    let s = spec(w, "bad2", &format!("epochs: 1\nprior: 'run:{}'\n", w.join("unkept").join(&unkept_id).display()));
    let (ok, text) = gps(w, &["train", s.to_str().unwrap()]);
    assert!(!ok && text.contains("kept no checkpoint") && text.contains("--no-keep"), "{text}");
}

/// `gps prior inspect` on a sweep file: one line per distinct table, built into the cache the
/// runs use (a run then finds it there), τ's candidate counts where the runs use a τ.
#[test]
fn prior_inspect_of_a_sweep_sees_each_table_its_runs_build() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    let cache = w.join("cache");
    let sweep = format!(
        "name: ins\nbase:\n  dataset: {{name: mnist5k, format: mnist-csv, path: '{}', train_limit: 400, test_limit: 100}}\n  backbone: small-cnn\n  epochs: 1\n  batch_size: 50\n  device: cpu\n  cache_dir: '{}'\n  eval: {{knn_k: 5}}\ngrid:\n  prior: [none, pixels, labels]\n  seed: [0, 1]\nzip:\n  - {{neighbours.mode: [knn, radius], neighbours.adaptive: [null, mean]}}\nexclude:\n  - {{prior: none, neighbours.mode: radius}}\n",
        mnist5k().display(),
        cache.display()
    );
    std::fs::write(w.join("ins.yaml"), sweep).unwrap();
    // The report's lines, without the cache's log lines (`[gps] cache: built ...`, on stderr).
    let report = |text: String| text.lines().filter(|l| !l.starts_with("[gps] ")).collect::<Vec<_>>().join("\n");
    let out = report(gps_ok(w, &["prior", "inspect", "ins.yaml"]));
    // pixels (seed-free: one table per mode) + labels (seeded: one per seed and mode) = 2 + 4.
    assert!(out.contains("6 distinct neighbour tables") && out.contains("2 baseline runs"), "{out}");
    assert_eq!(out.lines().filter(|l| l.starts_with("purity@5 (L2) of prior `pixels`")).count(), 1, "{out}");
    assert_eq!(out.lines().filter(|l| l.contains("purity within τ") && l.contains("prior `labels`")).count(), 2, "{out}");
    let labels = out.lines().find(|l| l.starts_with("purity@5 (L2) of prior `labels`")).expect(&out);
    assert!(labels.contains("(400 images): 1.0000"), "the oracle is pure: {labels}");
    // A seeded prior's tables say whose seed they are; a seed-free prior's line names none.
    let seeds: std::collections::BTreeSet<&str> = out.lines().filter(|l| l.contains("prior `labels`")).filter_map(|l| l.rsplit("1 run, seed ").next()).collect();
    assert_eq!(seeds, ["0", "1"].into_iter().collect(), "{out}");
    let pixels = out.lines().find(|l| l.starts_with("purity@5 (L2) of prior `pixels`")).expect(&out);
    assert!(pixels.ends_with("2 runs"), "both seeds draw from the one pixel table: {pixels}");
    let within = out.lines().find(|l| l.contains("purity within τ") && l.contains("`pixels`")).expect(&out);
    assert!(within.contains("candidates per image: mean") && within.contains("only themselves"), "{within}");
    // The tables are in the runs' cache: a run with such a prior finds its table without embedding.
    let knn_files = std::fs::read_dir(cache.join("knn")).unwrap().count();
    assert_eq!(knn_files, 6, "one cached table per distinct table");
    let again = report(gps_ok(w, &["prior", "inspect", "ins.yaml"]));
    assert_eq!(again.lines().count(), out.lines().count());
    assert_eq!(std::fs::read_dir(cache.join("knn")).unwrap().count(), 6, "a second inspection builds nothing");
}
