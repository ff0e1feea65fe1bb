//! Result rows written by many writers at once, read back by `gps report`'s table, rendered.

use gps_ssl::config::{PriorSpec, RunSpec};
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

/// Sets every `num_rows` of a Parquet footer (the file's, each row group's) to `rows`, leaving
/// the pages as they are: a footer that claims more rows than its pages hold. Walks the footer's
/// Thrift compact encoding (FileMetaData field 3, RowGroup = field 4's items, their field 3).
fn claim_rows(bytes: &mut [u8], rows: u8) {
    fn varint(b: &[u8], i: &mut usize) -> u64 {
        let (mut v, mut shift) = (0u64, 0);
        loop {
            let c = b[*i];
            *i += 1;
            v |= ((c & 0x7f) as u64) << shift;
            shift += 7;
            if c & 0x80 == 0 {
                return v;
            }
        }
    }
    fn skip(b: &mut [u8], i: &mut usize, kind: u8, path: &mut Vec<i64>, rows: u8) {
        match kind {
            1 | 2 => {}
            3 => *i += 1,
            4..=6 => {
                let at = *i;
                varint(b, i);
                let is_num_rows = path.as_slice() == [3] || (path.len() == 3 && path[0] == 4 && path[2] == 3);
                if kind == 6 && is_num_rows {
                    assert_eq!(*i - at, 1, "a one-byte varint");
                    b[at] = rows * 2; // zigzag
                }
            }
            7 => *i += 8,
            8 => {
                let n = varint(b, i) as usize;
                *i += n;
            }
            9 | 10 => {
                let header = b[*i];
                *i += 1;
                let mut n = (header >> 4) as u64;
                if n == 15 {
                    n = varint(b, i);
                }
                for k in 0..n {
                    path.push(k as i64);
                    skip(b, i, header & 15, path, rows);
                    path.pop();
                }
            }
            12 => {
                let mut field = 0i64;
                loop {
                    let header = b[*i];
                    *i += 1;
                    if header == 0 {
                        return;
                    }
                    let delta = (header >> 4) as i64;
                    field = if delta > 0 {
                        field + delta
                    } else {
                        let z = varint(b, i);
                        ((z >> 1) as i64) ^ -((z & 1) as i64)
                    };
                    path.push(field);
                    skip(b, i, header & 15, path, rows);
                    path.pop();
                }
            }
            other => panic!("thrift type {other}"),
        }
    }
    let n = bytes.len();
    let footer = u32::from_le_bytes(bytes[n - 8..n - 4].try_into().unwrap()) as usize;
    let mut at = n - 8 - footer;
    skip(bytes, &mut at, 12, &mut Vec::new(), rows);
}

/// Replaces one column of a row file with another type (a hand-edited or foreign file).
fn with_column(from: &Path, to: &Path, column: polars::prelude::Column) {
    use polars::prelude::*;
    let mut df = ParquetReader::new(std::fs::File::open(from).unwrap()).finish().unwrap();
    df.with_column(column).unwrap();
    ParquetWriter::new(std::fs::File::create(to).unwrap()).finish(&mut df).unwrap();
}

/// Damaged row files among good ones: each is skipped with its name and reason, counted under the
/// table, and the good rows are still reported (the library, then `gps report` itself).
#[test]
fn unreadable_row_files_are_skipped_and_named() {
    use gps_ssl::config::Method::Simclr;
    use polars::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let mut good = Vec::new();
    for (seed, acc) in [0.5, 0.6, 0.7].into_iter().enumerate() {
        let s = spec(out, Simclr, PriorSpec::None, 5, seed as u64);
        good.push(row::write_row(out, &ResultRow::new("dmg", &s, &outcome(acc))).unwrap());
    }
    let runs = row::runs_dir(out);
    let bytes = std::fs::read(&good[0]).unwrap();
    let mut lying = bytes.clone();
    claim_rows(&mut lying, 3);
    let damaged: Vec<(&str, Vec<u8>, &str)> = vec![
        ("a00000000001.parquet", lying, "Parquet reader crashed on it"),
        ("a00000000002.parquet", bytes[..bytes.len() / 2].to_vec(), "not a readable Parquet row"),
        ("000000000000.parquet", Vec::new(), "empty (0 bytes)"),
    ];
    for (name, content, _) in &damaged {
        std::fs::write(runs.join(name), content).unwrap();
    }
    with_column(&good[0], &runs.join("a00000000003.parquet"), Column::new("status".into(), [1i64]));
    with_column(&good[0], &runs.join("a00000000004.parquet"), Column::new("probe_top1_best".into(), ["0.9"]));
    let mut expected: Vec<(String, &str)> = damaged.iter().map(|(n, _, why)| (n.to_string(), *why)).collect();
    expected.push(("a00000000003.parquet".into(), "column `status` holds i64, expected text"));
    expected.push(("a00000000004.parquet".into(), "column `probe_top1_best` holds str, expected a number"));

    let q = TableQuery { rows: vec!["method".into()], cols: vec!["prior".into()], metric: "probe_top1_best".into(), filters: vec![] };
    let t = table::build(out, &q).unwrap();
    assert_eq!(t.runs, 3, "the three good rows");
    assert_eq!(t.cells[0][0].unwrap().n, 3);
    assert!((t.cells[0][0].unwrap().mean - 0.6).abs() < 1e-12);
    assert_eq!(t.skipped.len(), expected.len(), "{:?}", t.skipped);
    for (name, why) in &expected {
        let s = t.skipped.iter().find(|s| s.path.ends_with(name)).unwrap_or_else(|| panic!("{name} not skipped: {:?}", t.skipped));
        assert!(s.reason.contains(why), "{name}: {}", s.reason);
    }
    assert!(render::markdown(&t).contains("5 unreadable row files skipped"));

    let cli = std::process::Command::new(env!("CARGO_BIN_EXE_gps")).args(["report"]).arg(out).args(["--rows", "method", "--cols", "prior"]).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&cli.stdout), String::from_utf8_lossy(&cli.stderr));
    assert!(cli.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("| simclr | 60.00 ± 10.00 (n=3) |") && stdout.contains("5 unreadable row files skipped"), "{stdout}");
    for (name, why) in &expected {
        let line = stderr.lines().find(|l| l.contains(name.as_str())).unwrap_or_else(|| panic!("{name} not named:\n{stderr}"));
        assert!(line.starts_with("warning: skipped") && line.contains(why), "{line}");
    }
    assert!(!stderr.contains("panicked"), "a caught reader panic is reported as a reason only:\n{stderr}");

    // nothing readable at all: an error naming the files, not an empty table
    for file in &good {
        std::fs::remove_file(file).unwrap();
    }
    let e = format!("{:#}", table::build(out, &q).unwrap_err());
    assert!(e.contains("none of the 5 row files") && e.contains("000000000000.parquet"), "{e}");
}
