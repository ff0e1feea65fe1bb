//! `gps eval linear` on a real (small) finished run: the offline linear evaluation of its frozen
//! encoder is recorded in its row beside the online probe (the rest of the row untouched, the
//! rewrite atomic), a report tabulates it, and a run trained with `--no-keep` has no checkpoint
//! left to evaluate or export, while a kept one keeps exactly its final checkpoint.

use crate::support::{gps, gps_ok as ok};
use polars::prelude::*;
use std::path::Path;

fn row(path: &Path) -> DataFrame {
    ParquetReader::new(std::fs::File::open(path).unwrap()).finish().unwrap()
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[test]
fn linear_eval_is_recorded_in_the_row_and_no_keep_leaves_nothing_to_evaluate() {
    let data = crate::support::mnist5k();
    assert!(data.exists(), "{} is missing: run scripts/fetch-mnist5k.sh", data.display());
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    let spec = format!(
        "dataset: {{name: mnist5k, format: mnist-csv, path: '{}', train_limit: 300, test_limit: 100}}\nbackbone: small-cnn\n\
         augmentation: {{preset: weak}}\nepochs: 2\nbatch_size: 50\ncheckpoint_every: 1\ndevice: cpu\neval: {{knn_k: 5}}\noutput_dir: results/m\n",
        data.display()
    );
    std::fs::write(w.join("m.yaml"), spec).unwrap();
    let out = ok(w, &["train", "m.yaml"]);
    let id = out.split("run ").nth(1).unwrap()[..12].to_string();
    let row_path = w.join(format!("results/m/runs/{id}.parquet"));
    let before = row(&row_path);
    assert!(before.column("linear_top1").unwrap().f64().unwrap().get(0).is_none(), "null until evaluated");
    // Checkpoints at epochs 1 and 2 were written; the finished run keeps only the final one.
    assert_eq!(files(&w.join(format!("results/m/ckpt/{id}"))), ["ckpt-0000000012.safetensors", "progress.json"]);

    // A few epochs via the option...
    let out = ok(w, &["eval", "linear", "results/m", "--run", &id[..5], "--epochs", "3"]);
    assert!(out.contains("linear top-1") && out.contains("3 epochs on 300 training features, 100 test images"), "{out}");
    assert_eq!(row(&row_path).column("linear_epochs").unwrap().i64().unwrap().get(0), Some(3));
    // ...and the standard 100 by default (seconds here: the features are computed once).
    let out = ok(w, &["eval", "linear", "results/m", "--run", &id]);
    assert!(out.contains("100 epochs"), "{out}");
    let after = row(&row_path);
    let f = |df: &DataFrame, c: &str| df.column(c).unwrap().f64().unwrap().get(0);
    let linear = f(&after, "linear_top1").expect("recorded");
    assert_eq!(after.column("linear_epochs").unwrap().i64().unwrap().get(0), Some(100));
    assert_eq!(f(&after, "linear_lr"), Some(0.1));
    // 10 classes: chance is 0.1; the frozen features after 2 epochs separate MNIST digits far better.
    assert!(linear > 0.5 && linear <= 1.0, "linear top-1 {linear}");
    eprintln!("linear top-1 {linear}, online probe {:?}", f(&after, "probe_top1_last"));
    // Everything else in the row is as the run wrote it, and no temp file is left beside it.
    for c in before.get_column_names().into_iter().filter(|c| !c.starts_with("linear_")) {
        assert!(before.column(c).unwrap().equals_missing(after.column(c).unwrap()), "column {c} changed");
    }
    assert_eq!(files(&w.join("results/m/runs")), [format!("{id}.parquet")]);

    let report = ok(w, &["report", "results/m", "--metric", "probe_top1_last,linear_top1", "--rows", "method", "--cols", "prior"]);
    let probe = f(&after, "probe_top1_last").unwrap();
    let line = format!("| simclr | {:.2} (n=1) | {:.2} (n=1) |", 100.0 * probe, 100.0 * linear);
    assert!(report.contains("| method | baseline (probe_top1_last) | baseline (linear_top1) |") && report.contains(&line), "{report}");

    // --no-keep: the row is written and the checkpoints are gone, so nothing can be exported.
    let out = ok(w, &["train", "m.yaml", "--set", "seed=9", "--set", "epochs=1", "--no-keep"]);
    let other = out.split("run ").nth(1).unwrap()[..12].to_string();
    assert!(w.join(format!("results/m/runs/{other}.parquet")).exists());
    assert!(!w.join(format!("results/m/ckpt/{other}")).exists());
    let (success, err) = gps(w, &["eval", "linear", "results/m", "--run", &other]);
    assert!(!success && err.contains("--no-keep"), "{err}");
    let (success, err) = gps(w, &["export", "results/m", "--run", &other]);
    assert!(!success && err.contains("--no-keep"), "{err}");
    let (success, err) = gps(w, &["export", "results/m", "--run", "abc"]);
    assert!(!success && err.contains("no finished run `abc`"), "{err}");
    let (success, err) = gps(w, &["export", "results/m", "--run", "../m"]);
    assert!(!success && err.contains("12 hex digits"), "{err}");
}
