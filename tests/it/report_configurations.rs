//! One cell, one configuration: `gps report` over a folder that mixes real rows of different
//! configurations (two tiny sweeps of different epochs), a copied row file, the same runs in two
//! sweep folders and rows of two numerics versions. Every cell's n counts independent runs of one
//! configuration, and anything else is visible in every output.

use gps_ssl::results::row;
use std::path::{Path, PathBuf};
use std::process::Command;

fn gps(workdir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gps")).args(args).current_dir(workdir).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// A tiny real sweep on MNIST-5k: SimCLR with and without the pixel prior, 2 seeds, `epochs`.
fn sweep(w: &Path, name: &str, epochs: usize, seeds: &str) {
    let data = crate::support::mnist5k();
    assert!(data.exists(), "{} is missing: run scripts/fetch-mnist5k.sh", data.display());
    let text = format!(
        "name: {name}\nbase:\n  dataset: {{name: mnist5k, format: mnist-csv, path: \"{}\", train_limit: 200, test_limit: 100}}\n  backbone: small-cnn\n  augmentation: {{preset: weak}}\n  epochs: {epochs}\n  batch_size: 50\n  optimizer: {{warmup_epochs: 0}}\n  device: cpu\n  eval: {{knn_k: 5}}\ngrid:\n  prior: [none, pixels]\n  seed: {seeds}\n",
        data.display()
    );
    std::fs::write(w.join(format!("{name}.yaml")), text).unwrap();
    let (ok, out, err) = gps(w, &["sweep", "run", &format!("{name}.yaml"), "--jobs", "2"]);
    assert!(ok, "{out}{err}");
}

fn row_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "parquet")).collect();
    files.sort();
    files
}

/// The Markdown table's line for `prior` cells of `key` (e.g. `| simclr | weak | 1 |`).
fn line<'a>(md: &'a str, start: &str) -> &'a str {
    md.lines().find(|l| l.starts_with(start)).unwrap_or_else(|| panic!("no line starting {start:?} in\n{md}"))
}

#[test]
fn a_cell_holds_one_configuration_and_a_run_counts_once() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    sweep(w, "e1", 1, "[0, 1]");
    sweep(w, "e2", 2, "[0, 1]");

    // Two sweeps of different epochs in one folder: never averaged together.
    let (ok, md, err) = gps(w, &["report", "results"]);
    assert!(ok, "{err}");
    assert!(md.contains("cells also split by epochs: 1, 2"), "{md}");
    assert!(md.contains("| method | augmentation | epochs | mnist5k baseline | mnist5k GPS pixels |"), "{md}");
    for epochs in ["1", "2"] {
        let l = line(&md, &format!("| simclr | weak | {epochs} |"));
        assert_eq!(l.matches("(n=2)").count(), 2, "two seeds in each cell: {l}");
    }
    assert!(md.contains("fixed: data: dataset.format=mnist-csv") && md.contains("model: backbone=small-cnn") && md.contains("batch_size=50"), "{md}");
    // Only what shaped these cells: no autoencoder fields (no run has that prior), no execution
    // switches; `--verbose` lists them too.
    assert!(!md.contains("prior_options.autoencoder") && !md.contains("channels_last") && md.contains("with --verbose"), "{md}");
    let (_, verbose, _) = gps(w, &["report", "results", "--verbose"]);
    assert!(verbose.contains("prior_options.autoencoder_epochs=100") && verbose.contains("channels_last=true"), "{verbose}");
    assert!(!md.contains("dataset.name=") && !md.contains("method=simclr"), "a key's one value is in the headers, not repeated: {md}");
    let current = gps_ssl::numerics::NUMERICS_VERSION;
    assert!(md.contains(&format!("numerics={current}")), "the numerics version is held fixed and said: {md}");
    // The same in every output.
    let (_, tex, _) = gps(w, &["report", "results", "--latex"]);
    assert!(tex.contains(r"\caption{") && tex.contains("cells also split by epochs: 1, 2") && tex.contains("fixed: data: dataset.format=mnist-csv"), "{tex}");
    let (_, csv, _) = gps(w, &["report", "results", "--csv"]);
    assert!(csv.lines().any(|l| l.starts_with("# cells also split by epochs: 1, 2")), "{csv}");
    assert!(csv.contains("method,augmentation,epochs,dataset,prior,mean,std,n\n"), "{csv}");
    assert_eq!(csv.lines().filter(|l| !l.starts_with('#') && l.ends_with(",2")).count(), 4, "four cells of n=2: {csv}");
    let (ok, cmp, err) = gps(w, &["report", "results", "--compare", "prior"]);
    assert!(ok && cmp.contains("cells also split by epochs: 1, 2"), "{cmp}{err}");
    assert_eq!(cmp.lines().filter(|l| l.starts_with("| simclr | weak |") && l.contains("paired by seed, n=2")).count(), 2, "one comparison per epochs: {cmp}");
    let (ok, _, err) = gps(w, &["report", "results", "--html", "r.html", "--plots", "plots"]);
    assert!(ok, "{err}");
    let page = std::fs::read_to_string(w.join("r.html")).unwrap();
    assert!(page.contains("cells also split by epochs: 1, 2"), "the HTML captions say it");
    assert_eq!(page.matches("fixed: data: dataset.format=mnist-csv").count(), 1, "the page says what it holds fixed once, not above every table");
    let curves = std::fs::read_to_string(w.join("plots/curves-epoch_probe_top1.svg")).unwrap();
    assert!(curves.contains("cells also split by epochs: 1, 2") && curves.contains("epochs=2"), "{curves}");
    // `--where` picks one configuration instead, by a column or any spec field.
    let (ok, md, _) = gps(w, &["report", "results", "--where", "epochs=2", "--where", "optimizer.warmup_epochs=0"]);
    assert!(ok && !md.contains("split by") && md.contains("epochs=2"), "{md}");
    assert_eq!(line(&md, "| simclr | weak |").matches("(n=2)").count(), 2, "{md}");

    // A finished row copied under another name (a backup) is the same run: counted once.
    let e1_rows = row_files(&w.join("results/e1/runs"));
    let copy = w.join("results/e1/runs/backup-of-a-row.parquet");
    std::fs::copy(&e1_rows[0], &copy).unwrap();
    let (ok, md, err) = gps(w, &["report", "results", "--where", "epochs=1"]);
    assert!(ok, "{err}");
    assert_eq!(line(&md, "| simclr | weak |").matches("(n=2)").count(), 2, "still two seeds: {md}");
    assert!(err.contains("backup-of-a-row.parquet") && err.contains(&e1_rows[0].file_name().unwrap().to_string_lossy().to_string()), "{err}");
    assert!(md.contains("1 row files repeat a run already counted"), "{md}");
    std::fs::remove_file(&copy).unwrap();

    // The same spec run in a second sweep folder: the same run ids; the newer row counts, once.
    sweep(w, "e1-again", 1, "[0]");
    let (ok, md, err) = gps(w, &["report", "results", "--where", "epochs=1"]);
    assert!(ok, "{err}");
    assert_eq!(line(&md, "| simclr | weak |").matches("(n=2)").count(), 2, "{md}");
    assert_eq!(err.matches("a run counts once").count(), 2, "both repeated runs named: {err}");
    assert!(err.contains("results/e1-again/runs/") && err.contains("results/e1/runs/"), "{err}");
    assert!(md.contains("2 row files repeat a run already counted"), "{md}");

    // Two rows with different ids but the same configuration and seed (an id computed by another
    // gps version) cannot average silently either: counted once, both named.
    let renamed = w.join("results/e1/runs/renamed.parquet");
    std::fs::copy(&e1_rows[1], &renamed).unwrap();
    row::set_columns(&renamed, [polars::prelude::Column::new("run_id".into(), ["0123456789ab"])]).unwrap();
    let (ok, md, err) = gps(w, &["report", "results", "--where", "epochs=1"]);
    let warning = err.lines().find(|l| l.contains("the same configuration and seed")).unwrap_or_else(|| panic!("{err}"));
    assert!(ok && warning.contains("renamed.parquet") && warning.contains("0123456789ab"), "{err}");
    assert_eq!(line(&md, "| simclr | weak |").matches("(n=2)").count(), 2, "{md}");
    std::fs::remove_file(&renamed).unwrap();

    // Rows of two numerics versions: a row of e2 as an older gps wrote it (no version recorded).
    let old = w.join("results/old");
    std::fs::create_dir_all(old.join("runs")).unwrap();
    let e2_rows = row_files(&w.join("results/e2/runs"));
    let target = old.join("runs").join(e2_rows[0].file_name().unwrap());
    std::fs::copy(&e2_rows[0], &target).unwrap();
    row::set_columns(&target, [polars::prelude::Column::new("numerics".into(), [None::<i64>])]).unwrap();
    let (ok, md, err) = gps(w, &["report", "results", "--where", "epochs=2"]);
    assert!(ok, "{err}");
    assert!(md.contains(&format!("cells also split by numerics: {current}, unversioned")), "{md}");
    let versioned = line(&md, &format!("| simclr | weak | {current} |"));
    let unversioned = line(&md, "| simclr | weak | unversioned |");
    assert_eq!(versioned.matches("(n=2)").count(), 2, "{md}");
    assert_eq!(unversioned.matches("(n=1)").count(), 1, "the old row stands alone: {md}");
    assert!(!err.contains("results/old/runs"), "a run computed by two numerics versions is two results, not a repeat: {err}");
}
