//! Sweep-side speed targets (performance.md): expanding a 10,000-run grid in under 100 ms, and
//! `gps report` over 10,000 result files in under 1 s: the table, and the HTML report, which
//! also reads the five per-epoch list columns (200 epochs each) for the learning curves. Both
//! are measured as every report but the first runs, with the report index in place (the first
//! call writes it); the first report over the rows, which parses every file and writes the
//! index, is measured on its own.

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use gps_ssl::config::RunSpec;
use gps_ssl::eval::health::HealthHistory;
use gps_ssl::results::compare::{self, CompareQuery};
use gps_ssl::results::row::{self, ResultRow};
use gps_ssl::results::table::{self, Rows, TableQuery};
use gps_ssl::results::{html, index};
use gps_ssl::sweep::{SweepFile, expand};
use gps_ssl::train::RunOutcome;
use std::path::Path;
use std::time::Duration;

/// 5 methods x 4 priors x 5 k x 5 strengths x 20 seeds = 10,000 runs.
const GRID: &str = "\
name: bench
base: {epochs: 200, dataset: {name: cifar10}}
grid:
  method: [simclr, byol, vicreg, barlow-twins, nnclr]
  prior: [none, pixels, autoencoder, imagenet-mobilenetv2]
  k: [1, 2, 5, 10, 20]
  augmentation.strength: [0.0, 0.25, 0.5, 0.75, 1.0]
  seed: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]
";

fn bench_expand(c: &mut Criterion) {
    let sweep = SweepFile::parse(Path::new("bench.yaml"), GRID).unwrap();
    assert_eq!(expand(&sweep).unwrap().len(), 10_000);
    c.bench_function("expand 10k-run grid", |b| b.iter(|| expand(&sweep).unwrap()));
}

fn bench_report(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let sweep = SweepFile::parse(Path::new("bench.yaml"), GRID).unwrap();
    let runs = expand(&sweep).unwrap();
    for (i, run) in runs.iter().enumerate() {
        let mut spec: RunSpec = run.spec.clone();
        spec.output_dir = dir.path().to_path_buf();
        let acc = 0.5 + (i % 37) as f64 / 100.0;
        let outcome = RunOutcome {
            probe_top1_best: acc,
            probe_top1_last: acc,
            best_epoch: 199,
            knn_top1: acc,
            positive_purity: 0.5,
            final_loss: 1.0,
            epoch_losses: vec![1.0; 200],
            epoch_probe_top1: (0..200).map(|e| if e % 5 == 4 { acc * e as f64 / 200.0 } else { f64::NAN }).collect(),
            health: HealthHistory {
                epoch_rankme: (0..200).map(|e| 100.0 + e as f64).collect(),
                epoch_alignment: vec![0.4; 200],
                epoch_uniformity: vec![-2.5; 200],
            },
            epochs: 200,
            steps: 39_000,
            wall_s: 600.0,
            train_s: 580.0,
            samples_per_s: 17_000.0,
            device: "NVIDIA H100".into(),
            resumed_from_epoch: None,
            backbone_init: None,
            ..Default::default()
        };
        row::write_row(dir.path(), &ResultRow::new("bench", &spec, &outcome)).unwrap();
    }
    let query = TableQuery {
        rows: vec!["method".into(), "augmentation".into()],
        cols: vec!["dataset".into(), "prior".into()],
        metric: "probe_top1_best".into(),
        filters: vec![],
        ..Default::default()
    };
    assert_eq!(table::build(dir.path(), &query).unwrap().runs, 10_000);
    let mut group = c.benchmark_group("report");
    group.sample_size(10).measurement_time(Duration::from_secs(20));
    group.bench_function("table over 10k result files", |b| b.iter(|| table::build(dir.path(), &query).unwrap()));
    // The first report over a sweep's rows: no index yet, every file parsed whole, the index written.
    let no_index = || {
        let _ = std::fs::remove_file(dir.path().join(index::FILE_NAME));
    };
    group.bench_function("table over 10k result files, first report (no index)", |b| {
        b.iter_batched(no_index, |_| table::build(dir.path(), &query).unwrap(), BatchSize::PerIteration)
    });
    // What `gps report <dir> --html <file>` computes: one read of every column the page needs
    // (the list columns included), the table, the prior comparison, health tables, curves,
    // k and strength plots and the page itself.
    let page = || {
        let rows = Rows::read(dir.path(), &html::columns(&query), std::slice::from_ref(&query.metric)).unwrap();
        let t = table::tabulate(&rows, &query).unwrap();
        let cmp = compare::compare(&t, &CompareQuery { column: "prior".into(), reference: None }).unwrap();
        html::document(&html::Report { rows: &rows, table: &t, comparison: Some(&cmp), command: "gps report bench --html x.html".into() }).unwrap()
    };
    let text = page();
    assert!(text.contains("curve-epoch_rankme") && text.contains("against-k"), "the page has its curves and plots");
    group.bench_function("html report over 10k result files", |b| b.iter(page));
    group.finish();
}

criterion_group!(benches, bench_expand, bench_report);
criterion_main!(benches);
