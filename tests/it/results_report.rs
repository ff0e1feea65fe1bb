//! Result rows written by many writers at once, read back by `gps report`'s table, rendered.

use gps_ssl::config::{PriorSpec, RunSpec};
use gps_ssl::eval::health::HealthHistory;
use gps_ssl::results::row::{self, FailureRecord, ResultRow};
use gps_ssl::results::table::{self, TableQuery};
use gps_ssl::results::{plot, render};
use gps_ssl::train::RunOutcome;
use std::path::Path;
use std::process::Command;

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
        backbone_init: None,
        ..Default::default()
    }
}

fn spec(dir: &Path, method: gps_ssl::config::Method, prior: PriorSpec, k: usize, seed: u64) -> RunSpec {
    RunSpec { method, prior, k, seed, output_dir: dir.to_path_buf(), ..RunSpec::default() }
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
    let q = TableQuery { rows: vec!["method".into()], cols: vec!["prior".into()], metric: "probe_top1_best".into(), filters: vec![], ..Default::default() };
    let t = table::build(&out, &q).unwrap();
    assert_eq!(t.runs, 16 * 8 + 1, "every file is a complete, readable row");
    let simclr = t.row_keys.iter().position(|k| k[0] == "simclr").unwrap();
    let pixels = t.col_keys.iter().position(|k| k[0] == "pixels").unwrap();
    assert_eq!(t.cells[simclr][pixels].as_ref().unwrap().n, 128);
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
        ..Default::default()
    };
    let t = table::build(out, &q).unwrap();
    assert_eq!(t.runs, 12);
    assert_eq!(t.failed, 1);
    let md = render::markdown(&t);
    assert!(md.contains("| method | augmentation | cifar10 baseline | cifar10 GPS pixels |"), "{md}");
    // byol beats simclr without a prior by 0.3, 0.2, 0.1 per seed: the 95% CI of that holds 0.
    assert!(md.contains("| byol | strong | **60.00 ± 0.00 (n=3)**† | 72.00 ± 2.00 (n=3) |"), "{md}");
    assert!(md.contains("| simclr | strong | 40.00 ± 10.00 (n=3) | **85.00 ± 5.00 (n=3)** |"), "{md}");
    assert!(md.contains("1 failed runs not shown"), "{md}");

    let tex = render::latex(&t);
    assert!(tex.contains(r"\toprule") && tex.contains(r"$\mathbf{85.00 \pm 5.00}$") && tex.contains(r"\bottomrule"), "{tex}");
    let csv = render::csv(&t);
    assert!(csv.starts_with("# probe_top1_best"), "the caption comes first, as a comment: {csv}");
    assert!(csv.lines().any(|l| l.starts_with("# fixed: ") && l.contains("backbone=resnet18")), "{csv}");
    assert_eq!(csv.lines().find(|l| !l.starts_with('#')), Some("method,augmentation,dataset,prior,mean,std,n"), "{csv}");
    assert!(csv.contains("simclr,strong,cifar10,pixels,0.85"), "{csv}");

    // without the filter, simclr+pixels has 5 runs over two k values; plotted against k
    let by_k = TableQuery {
        rows: vec!["method".into(), "prior".into()],
        cols: vec!["k".into()],
        metric: "probe_top1_best".into(),
        filters: vec![],
        ..Default::default()
    };
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

    let q = TableQuery { rows: vec!["method".into()], cols: vec!["prior".into()], metric: "probe_top1_best".into(), filters: vec![], ..Default::default() };
    let t = table::build(out, &q).unwrap();
    assert_eq!(t.runs, 3, "the three good rows");
    assert_eq!(t.cells[0][0].as_ref().unwrap().n, 3);
    assert!((t.cells[0][0].as_ref().unwrap().mean - 0.6).abs() < 1e-12);
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

fn gps_report(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_gps")).arg("report").args(args).output().unwrap()
}

fn write_runs(out: &Path, method: gps_ssl::config::Method, prior: PriorSpec, runs: &[(u64, f64)]) {
    for &(seed, acc) in runs {
        let s = spec(out, method, prior.clone(), 5, seed);
        let row = ResultRow { sweep_description: Some("SimCLR & BYOL <with> and without a pixel prior".into()), ..ResultRow::new("cmp", &s, &outcome(acc)) };
        row::write_row(out, &row).unwrap();
    }
}

/// simclr without and with the pixel prior (seeds 0-2 each), byol's runs as given.
fn simclr_and_byol(out: &Path, byol_none: &[(u64, f64)], byol_pixels: &[(u64, f64)]) {
    use gps_ssl::config::Method::{Byol, Simclr};
    write_runs(out, Simclr, PriorSpec::None, &[(0, 0.30), (1, 0.40), (2, 0.50)]);
    write_runs(out, Simclr, PriorSpec::Pixels, &[(0, 0.80), (1, 0.85), (2, 0.90)]);
    write_runs(out, Byol, PriorSpec::None, byol_none);
    write_runs(out, Byol, PriorSpec::Pixels, byol_pixels);
}

/// GPS vs baseline per row: paired by seed where the seeds match, Welch where they do not, the
/// intervals equal to scipy's (ttest_rel / ttest_ind(equal_var=False).confidence_interval()).
#[test]
fn compare_gives_differences_with_t_intervals() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    // Byol's seeds differ between its two cells (Welch), simclr's match (paired).
    simclr_and_byol(out, &[(0, 0.47), (1, 0.52), (5, 0.44)], &[(0, 0.52), (1, 0.55), (2, 0.49), (3, 0.58)]);
    let dir_arg = out.to_str().unwrap();

    let md = gps_report(&[dir_arg, "--compare", "prior"]);
    let text = String::from_utf8_lossy(&md.stdout);
    assert!(md.status.success(), "{}", String::from_utf8_lossy(&md.stderr));
    assert!(text.contains("against prior = none (baseline)"), "{text}");
    assert!(
        text.contains(
            "| simclr | strong | cifar10 | GPS pixels | 85.00 ± 5.00 (n=3) | 40.00 ± 10.00 (n=3) | **+45.00** | **[+32.58, +57.42]** | paired by seed, n=3 |"
        ),
        "{text}"
    );
    // Different seeds: Welch; its interval holds 0, so nothing is bold.
    assert!(
        text.contains("| byol | strong | cifar10 | GPS pixels | 53.50 ± 3.87 (n=4) | 47.67 ± 4.04 (n=3) | +5.83 | [−2.34, +14.00] | Welch, n=4 vs 3, df=4.3 |"),
        "{text}"
    );

    let csv = gps_report(&[dir_arg, "--compare", "prior=none", "--csv"]);
    let csv = String::from_utf8_lossy(&csv.stdout);
    let mut lines = csv.lines().filter(|l| !l.starts_with('#'));
    assert_eq!(
        lines.next().unwrap(),
        "method,augmentation,dataset,prior,reference,mean,std,n,ref_mean,ref_std,ref_n,delta,ci_low,ci_high,test,df,excludes_zero,published,ref_published"
    );
    let byol: Vec<&str> = lines.find(|l| l.starts_with("byol")).unwrap().split(',').collect();
    let num = |i: usize| byol[i].parse::<f64>().unwrap();
    assert!((num(12) - -0.023361098136296443).abs() < 1e-9 && (num(13) - 0.14002776480296325).abs() < 1e-9, "{byol:?}");
    assert!((num(15) - 4.3333860696910955).abs() < 1e-9 && byol[14] == "welch" && byol[16] == "false", "{byol:?}");
    // No published numbers were asked for: the columns stay, empty.
    assert!(byol.len() == 19 && byol[17].is_empty() && byol[18].is_empty(), "{byol:?}");

    let tex = String::from_utf8_lossy(&gps_report(&[dir_arg, "--compare", "prior", "--latex"]).stdout).into_owned();
    assert!(tex.contains(r"$\mathbf{+45.00}$") && tex.contains(r"\bottomrule"), "{tex}");

    // A column that is not a key of the table is added to its columns; a missing reference is named.
    let by_method = String::from_utf8_lossy(&gps_report(&[dir_arg, "--rows", "augmentation", "--compare", "method=simclr"]).stdout).into_owned();
    assert!(by_method.contains("| strong | cifar10 | none | byol | 47.67 ± 4.04 (n=3) | 40.00 ± 10.00 (n=3) | +7.67 |"), "{by_method}");
    let bad = gps_report(&[dir_arg, "--compare", "prior=clip"]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success() && err.contains("no finished run has prior = clip; its values here: none, pixels"), "{err}");
}

/// Rows written before the health and provenance columns existed still report: the old
/// columns as before, the new ones as null (counted, never averaged in as zeros).
#[test]
fn rows_without_the_newer_columns_still_report() {
    use polars::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let new = spec(out, gps_ssl::config::Method::Simclr, PriorSpec::None, 5, 0);
    row::write_row(out, &ResultRow::new("old", &new, &outcome(0.6))).unwrap();
    let old = spec(out, gps_ssl::config::Method::Simclr, PriorSpec::None, 5, 1);
    let mut frame = ResultRow::new("old", &old, &outcome(0.4)).to_frame().unwrap();
    for c in ["rankme", "alignment", "uniformity", "epoch_rankme", "epoch_alignment", "epoch_uniformity", "command", "sweep_description"] {
        frame = frame.drop(c).unwrap();
    }
    let file = std::fs::File::create(row::row_path(out, &old.run_id())).unwrap();
    ParquetWriter::new(file).finish(&mut frame).unwrap();

    let q = TableQuery { rows: vec!["method".into()], cols: vec!["prior".into()], metric: "probe_top1_best".into(), filters: vec![], ..Default::default() };
    let t = table::build(out, &q).unwrap();
    assert_eq!(t.cells[0][0].as_ref().unwrap().n, 2);
    let t = table::build(out, &TableQuery { metric: "rankme".into(), ..q.clone() }).unwrap();
    let cell = t.cells[0][0].as_ref().unwrap();
    assert_eq!((cell.n, t.unmeasured), (1, 1), "the old row has no rank: it is counted, not averaged in");
    assert!((cell.mean - 26.0).abs() < 1e-12, "the last evaluated rank of the new row");
    assert!(render::markdown(&t).contains("1 finished runs have no value of rankme and are left out (named on stderr)"));
    assert_eq!(t.unmeasured_files, [row::row_path(out, &old.run_id()).display().to_string()]);

    // Whatever the output, a row left out for want of the metric is named with its file and
    // counted: the comparison too (it once dropped such rows without a word).
    let gps = spec(out, gps_ssl::config::Method::Simclr, PriorSpec::Pixels, 5, 0);
    row::write_row(out, &ResultRow::new("old", &gps, &outcome(0.7))).unwrap();
    let old_file = row::row_path(out, &old.run_id()).display().to_string();
    for extra in [&[][..], &["--compare", "prior"], &["--csv"], &["--latex"], &["--compare", "prior", "--csv"]] {
        let mut args = vec![out.to_str().unwrap(), "--metric", "rankme"];
        args.extend_from_slice(extra);
        let r = gps_report(&args);
        let (text, err) = (String::from_utf8_lossy(&r.stdout), String::from_utf8_lossy(&r.stderr));
        assert!(r.status.success(), "{extra:?}: {err}");
        assert!(err.contains(&format!("warning: {old_file} has no value of `rankme`")), "{extra:?}: {err}");
        assert!(text.contains("1 finished runs have no value of rankme"), "{extra:?}: {text}");
    }
    std::fs::remove_file(row::row_path(out, &gps.run_id())).unwrap();

    // Only old rows: a clear error, not an empty table.
    std::fs::remove_file(row::row_path(out, &new.run_id())).unwrap();
    let r = gps_report(&[out.to_str().unwrap(), "--metric", "rankme"]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(!r.status.success() && err.contains("has a value of `rankme` (each named above)") && err.contains(&old_file), "{err}");
    let html = out.join("old.html");
    let r = gps_report(&[out.to_str().unwrap(), "--html", html.to_str().unwrap()]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("No run records rankme") && page.contains("not recorded (rows written before gps recorded commands)"));
}

/// The HTML report parses as a browser parses it, holds every table and figure, and needs
/// nothing from outside the file.
#[test]
fn html_report_is_complete_and_self_contained() {
    use gps_ssl::config::Method::Simclr;
    use scraper::{Html, Selector};
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    simclr_and_byol(out, &[(0, 0.60), (1, 0.61), (2, 0.62)], &[(0, 0.70), (1, 0.72), (2, 0.74)]);
    for (seed, acc) in [(0, 0.88), (1, 0.92)] {
        let s = spec(out, Simclr, PriorSpec::Pixels, 10, seed);
        row::write_row(out, &ResultRow::new("cmp", &s, &outcome(acc))).unwrap();
    }
    let path = out.join("report").join("index.html");
    let r = gps_report(&[out.to_str().unwrap(), "--where", "k=5", "--html", path.to_str().unwrap()]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let text = std::fs::read_to_string(&path).unwrap();
    let doc = Html::parse_document(&text);
    assert!(doc.errors.is_empty(), "HTML parse errors: {:?}", doc.errors);
    let select = |css: &str| doc.select(&Selector::parse(css).unwrap()).collect::<Vec<_>>();

    for id in ["results-table", "comparison-table", "health-rankme", "health-alignment", "health-uniformity", "runs-table"] {
        assert_eq!(select(&format!("table#{id}")).len(), 1, "table {id}");
    }
    assert_eq!(select("table#results-table tbody tr").len(), 2, "simclr and byol");
    assert_eq!(select("table#comparison-table tbody tr").len(), 2, "GPS pixels vs baseline for each method");
    assert_eq!(select("table#comparison-table td.sig").len(), 4, "both differences exclude 0 (Δ and CI bold)");
    assert_eq!(select("table#runs-table tbody tr").len(), 12, "every run the filter keeps");
    for id in ["curve-epoch_probe_top1", "curve-epoch_losses", "curve-epoch_rankme", "curve-epoch_alignment", "curve-epoch_uniformity", "against-k"] {
        let fig = select(&format!("figure#{id}"));
        assert_eq!(fig.len(), 1, "figure {id}");
        let svg = fig[0].select(&Selector::parse("svg").unwrap()).next().unwrap_or_else(|| panic!("{id} has an inline svg"));
        assert!(svg.select(&Selector::parse("polyline").unwrap()).count() >= 2, "{id} draws lines");
        assert!(fig[0].select(&Selector::parse("figcaption").unwrap()).next().is_some(), "{id} has a caption");
    }
    // The k plot uses every k (the --where k=5 filter is on the plot's own axis).
    assert!(text.contains("cifar10 simclr pixels strong (n=2–3)"), "k plot series");
    // Provenance: the sweep's description, the commands, the revision, how the page was made.
    let prov = select("section#provenance")[0].text().collect::<String>();
    assert!(prov.contains("SimCLR & BYOL <with> and without a pixel prior"), "{prov}");
    assert!(prov.contains(&row::git_revision()) && prov.contains("gps report") && prov.contains("--html"), "{prov}");

    // Nothing to fetch: no scripts, style sheets, images, frames, fonts or remote links.
    assert!(select("script, link, img, iframe, object, embed, audio, video, source").is_empty());
    for el in select("[src], [href]") {
        for attr in ["src", "href"] {
            if let Some(v) = el.value().attr(attr) {
                assert!(v.starts_with('#'), "{attr}={v} points outside the file");
            }
        }
    }
    let style: String = select("style").iter().flat_map(|s| s.text()).collect();
    assert!(!style.contains("url(") && !style.contains("@import") && !style.contains("@font-face"), "{style}");
}
