//! Result rows written by many writers at once, read back by `gps report`'s table, rendered.

use gps_ssl::config::{PriorSpec, RunSpec};
use gps_ssl::eval::health::HealthHistory;
use gps_ssl::results::row::{self, FailureRecord, ResultRow};
use gps_ssl::results::table::{self, TableQuery};
use gps_ssl::results::{plot, render};
use gps_ssl::train::RunOutcome;
use std::path::Path;

fn outcome(acc: f64) -> RunOutcome {
    RunOutcome {
        probe_top1_best: acc,
        probe_top1_last: acc - 0.01,
        best_epoch: 3,
        knn_top1: acc - 0.02,
        positive_purity: 0.9,
        final_loss: 1.5,
        epoch_losses: vec![3.0, 2.0, 1.5],
        epoch_probe_top1: vec![0.1, 0.2, acc],
        health: HealthHistory {
            epoch_rankme: vec![40.0, f64::NAN, 20.0 + 10.0 * acc],
            epoch_alignment: vec![0.9, f64::NAN, 0.5],
            epoch_uniformity: vec![-1.0, f64::NAN, -2.0 * acc],
        },
        epochs: 3,
        steps: 30,
        wall_s: 2.0,
        train_s: 1.5,
        samples_per_s: 100.0,
        device: "cpu".into(),
        resumed_from_epoch: None,
    }
}

fn spec(dir: &Path, method: gps_ssl::config::Method, prior: PriorSpec, k: usize, seed: u64) -> RunSpec {
    let mut s = RunSpec::default();
    s.method = method;
    s.prior = prior;
    s.k = k;
    s.seed = seed;
    s.output_dir = dir.to_path_buf();
    s
}

#[test]
fn parallel_writers_never_lose_or_tear_a_row() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_path_buf();
    std::thread::scope(|scope| {
        for t in 0..16u64 {
            let out = out.clone();
            scope.spawn(move || {
                for i in 0..8u64 {
                    // 16 writers x 8 distinct runs, plus every writer rewriting one shared run
                    let s = spec(&out, gps_ssl::config::Method::Simclr, PriorSpec::Pixels, 5, t * 100 + i);
                    row::write_row(&out, &ResultRow::new("par", &s, &outcome(0.5))).unwrap();
                    let shared = spec(&out, gps_ssl::config::Method::Byol, PriorSpec::None, 5, 7);
                    row::write_row(&out, &ResultRow::new("par", &shared, &outcome(0.25))).unwrap();
                }
            });
        }
    });
    let (files, failed) = table::row_files(&out).unwrap();
    assert_eq!(files.len(), 16 * 8 + 1);
    assert_eq!(failed, 0);
    let leftovers = std::fs::read_dir(row::runs_dir(&out)).unwrap().filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with('.')).count();
    assert_eq!(leftovers, 0, "no temp files left behind");
    let q = TableQuery { rows: vec!["method".into()], cols: vec!["prior".into()], metric: "probe_top1_best".into(), filters: vec![] };
    let t = table::build(&out, &q).unwrap();
    assert_eq!(t.runs, 16 * 8 + 1, "every file is a complete, readable row");
    let simclr = t.row_keys.iter().position(|k| k[0] == "simclr").unwrap();
    let pixels = t.col_keys.iter().position(|k| k[0] == "pixels").unwrap();
    assert_eq!(t.cells[simclr][pixels].unwrap().n, 128);
}

#[test]
fn failure_record_is_replaced_by_a_later_success() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(dir.path(), gps_ssl::config::Method::Simclr, PriorSpec::None, 5, 1);
    let record = FailureRecord::new("f", &s, &anyhow::anyhow!("dataset file data/x.csv not found"));
    let path = row::write_failure(dir.path(), &record).unwrap();
    assert_eq!(row::read_failure(&path).unwrap().error, "dataset file data/x.csv not found");
    assert_eq!(table::row_files(dir.path()).unwrap().1, 1);
    row::write_row(dir.path(), &ResultRow::new("f", &s, &outcome(0.5))).unwrap();
    assert!(!path.exists(), "success removes the stale failure record");
}

/// Three seeds each of four cells with known numbers: mean, std (ddof 1), n, bold best.
#[test]
fn report_aggregates_seeds_and_marks_the_best() {
    use gps_ssl::config::Method::{Byol, Simclr};
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let cells = [
        (Simclr, PriorSpec::None, [0.30, 0.40, 0.50]),
        (Simclr, PriorSpec::Pixels, [0.80, 0.85, 0.90]),
        (Byol, PriorSpec::None, [0.60, 0.60, 0.60]),
        (Byol, PriorSpec::Pixels, [0.70, 0.72, 0.74]),
    ];
    for (method, prior, accs) in cells {
        for (seed, acc) in accs.into_iter().enumerate() {
            let s = spec(out, method, prior.clone(), 5, seed as u64);
            row::write_row(out, &ResultRow::new("rep", &s, &outcome(acc))).unwrap();
        }
    }
    // a second k for the plot, and a failed run the caption must mention
    for (seed, acc) in [0.88, 0.92].into_iter().enumerate() {
        let s = spec(out, Simclr, PriorSpec::Pixels, 10, seed as u64);
        row::write_row(out, &ResultRow::new("rep", &s, &outcome(acc))).unwrap();
    }
    let broken = spec(out, Byol, PriorSpec::Pixels, 50, 0);
    row::write_failure(out, &FailureRecord::new("rep", &broken, &anyhow::anyhow!("boom"))).unwrap();

    let q = TableQuery {
        rows: vec!["method".into(), "augmentation".into()],
        cols: vec!["dataset".into(), "prior".into()],
        metric: "probe_top1_best".into(),
        filters: vec![("k".into(), "5".into())],
    };
    let t = table::build(out, &q).unwrap();
    assert_eq!(t.runs, 12);
    assert_eq!(t.failed, 1);
    let md = render::markdown(&t);
    assert!(md.contains("| method | augmentation | cifar10 baseline | cifar10 GPS pixels |"), "{md}");
    assert!(md.contains("| byol | strong | **60.00 ± 0.00 (n=3)** | 72.00 ± 2.00 (n=3) |"), "{md}");
    assert!(md.contains("| simclr | strong | 40.00 ± 10.00 (n=3) | **85.00 ± 5.00 (n=3)** |"), "{md}");
    assert!(md.contains("1 failed runs not shown"), "{md}");

    let tex = render::latex(&t);
    assert!(tex.contains(r"\toprule") && tex.contains(r"$\mathbf{85.00 \pm 5.00}$") && tex.contains(r"\bottomrule"), "{tex}");
    let csv = render::csv(&t);
    assert!(csv.starts_with("method,augmentation,dataset,prior,mean,std,n\n"), "{csv}");
    assert!(csv.contains("simclr,strong,cifar10,pixels,0.85"), "{csv}");

    // without the filter, simclr+pixels has 5 runs over two k values; plotted against k
    let by_k = TableQuery { rows: vec!["method".into(), "prior".into()], cols: vec!["k".into()], metric: "probe_top1_best".into(), filters: vec![] };
    let t = table::build(out, &by_k).unwrap();
    assert_eq!(t.col_keys, vec![vec!["5".to_string()], vec!["10".to_string()]], "numeric order");
    let svg = plot::svg(&t, "k").expect("two k values");
    assert!(svg.starts_with("<svg") && svg.contains("simclr pixels") && svg.contains("<polyline"));

    let e = table::build(out, &TableQuery { metric: "acc".into(), ..q.clone() }).unwrap_err();
    assert!(format!("{e:#}").contains("unknown column `acc`"));
    let empty = tempfile::tempdir().unwrap();
    std::fs::create_dir(empty.path().join("runs")).unwrap();
    assert!(format!("{:#}", table::build(empty.path(), &q).unwrap_err()).contains("no result rows"));
}
