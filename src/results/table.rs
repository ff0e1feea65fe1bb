//! Result rows -> a paper-style table: the needed columns of every row file (a damaged file is
//! skipped and named, never fatal), filtered, grouped by the row and column keys, reduced to mean,
//! std and n over the remaining axis (the seeds).

use anyhow::{Context, Result, bail};
use polars::prelude::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// What to tabulate.
#[derive(Debug, Clone)]
pub struct TableQuery {
    pub rows: Vec<String>,
    pub cols: Vec<String>,
    pub metric: String,
    /// `column=value` filters, all of which must hold.
    pub filters: Vec<(String, String)>,
}

/// mean, std (None for a single run), n.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cell {
    pub mean: f64,
    pub std: Option<f64>,
    pub n: usize,
}

#[derive(Debug, Clone)]
pub struct Table {
    pub query: TableQuery,
    /// Distinct values of the row keys, in display order.
    pub row_keys: Vec<Vec<String>>,
    pub col_keys: Vec<Vec<String>>,
    /// cells[r][c]
    pub cells: Vec<Vec<Option<Cell>>>,
    /// Rows that entered the table (after filters).
    pub runs: usize,
    /// Failure records found next to the rows.
    pub failed: usize,
    /// Row files that could not be read, left out of the table.
    pub skipped: Vec<Skipped>,
}

/// A row file the report could not use, and why (named on stderr, counted under the table).
#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: String,
}

/// Metrics stored as fractions and shown as percentages.
pub fn is_fraction(metric: &str) -> bool {
    matches!(metric, "probe_top1_best" | "probe_top1_last" | "knn_top1" | "positive_purity" | "linear_top1")
}

/// Whether larger is better (accuracies) or smaller (losses, times).
pub fn higher_is_better(metric: &str) -> bool {
    !(metric.contains("loss") || metric.ends_with("_s") && metric != "samples_per_s")
}

/// The row files of a results folder: `<dir>/runs/*.parquet`, or `<dir>/*/runs/*.parquet` for a
/// folder of sweeps, or `<dir>/*.parquet`.
pub fn row_files(dir: &Path) -> Result<(Vec<PathBuf>, usize)> {
    let mut folders = Vec::new();
    if dir.join("runs").is_dir() {
        folders.push(dir.join("runs"));
    } else if dir.is_dir() {
        let mut subs: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("cannot list {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path().join("runs")))
            .filter(|p| p.is_dir())
            .collect();
        subs.sort();
        folders = if subs.is_empty() { vec![dir.to_path_buf()] } else { subs };
    } else {
        bail!("{} is not a results folder (expected results/<sweep> with a runs/ folder)", dir.display());
    }
    let mut files = Vec::new();
    let mut failed = 0;
    for folder in folders {
        for entry in std::fs::read_dir(&folder).with_context(|| format!("cannot list {}", folder.display()))? {
            let path = entry?.path();
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if name.starts_with('.') {
                continue; // a row being written
            }
            if name.ends_with(".parquet") {
                files.push(path);
            } else if name.ends_with(".failed.json") {
                failed += 1;
            }
        }
    }
    files.sort();
    Ok((files, failed))
}

/// How a column is read: the metric as a number, `status` and the keys as text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Want {
    Number,
    Text,
}

/// Reads the given columns of every row file, files split over the cores. One-row files make
/// the per-file overhead dominate: plain Parquet readers on scoped threads open 10,000 of them
/// faster than a lazy multi-file scan does on a small machine. A file that cannot be read (cut
/// short, empty, other column types, a reader crash) is skipped with the reason, never fatal:
/// one damaged file must not hide the other runs. None when no file could be read.
pub fn read_columns(files: &[PathBuf], columns: &[(String, Want)]) -> (Option<DataFrame>, Vec<Skipped>) {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(files.len().max(1));
    let chunk = files.len().div_ceil(threads).max(1);
    let parts: Vec<(Option<DataFrame>, Vec<Skipped>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    let mut acc: Option<DataFrame> = None;
                    let mut skipped = Vec::new();
                    for path in part {
                        let read = read_file(path, columns).and_then(|df| match acc.as_mut() {
                            Some(a) => a.vstack_mut(&df).map(|_| ()).map_err(|e| format!("its columns do not stack with the other rows: {e}")),
                            None => {
                                acc = Some(df);
                                Ok(())
                            }
                        });
                        if let Err(reason) = read {
                            skipped.push(Skipped { path: path.clone(), reason });
                        }
                    }
                    (acc, skipped)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| (None, Vec::new()))).collect()
    });
    let mut out: Option<DataFrame> = None;
    let mut skipped = Vec::new();
    for (part, part_skipped) in parts {
        skipped.extend(part_skipped);
        if let Some(part) = part {
            match out.as_mut() {
                // Every part holds the same columns, cast to the same types in `read_file`.
                Some(o) => o.vstack_mut(&part).map(|_| ()).unwrap_or_else(|e| unreachable!("parts share one schema: {e}")),
                None => out = Some(part),
            }
        }
    }
    if let Some(o) = out.as_mut() {
        o.rechunk_mut();
    }
    (out, skipped)
}

/// One row file's columns, each cast to what the table needs (text or f64); the reason when it
/// cannot be.
fn read_file(path: &Path, columns: &[(String, Want)]) -> std::result::Result<DataFrame, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open it: {e}"))?;
    if file.metadata().map(|m| m.len()).unwrap_or(0) == 0 {
        return Err("the file is empty (0 bytes)".into());
    }
    drop(file);
    let names: Vec<String> = columns.iter().map(|(n, _)| n.clone()).collect();
    let df = read_present(path, &names)?;
    if df.height() == 0 {
        return Err("it holds no row".into());
    }
    let mut cast = Vec::with_capacity(columns.len());
    for (name, want) in columns {
        let column = df.column(name).map_err(|e| e.to_string())?;
        let dtype = column.dtype();
        let (ok, target) = match want {
            Want::Number => (dtype.is_primitive_numeric() || dtype.is_null(), DataType::Float64),
            Want::Text => (dtype.is_string() || !(name == "status" || dtype.is_nested() || dtype.is_binary()), DataType::String),
        };
        if !ok {
            let expected = if *want == Want::Number { "a number" } else { "text" };
            return Err(format!("column `{name}` holds {dtype}, expected {expected}"));
        }
        cast.push(column.cast(&target).map_err(|e| format!("column `{name}` ({dtype}): {e}"))?);
    }
    DataFrame::new(df.height(), cast).map_err(|e| e.to_string())
}

thread_local! {
    /// Set while `catch_panic` runs on this thread: its panic is reported as a reason, not printed.
    static CATCHING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f`, turning a panic into its message. The Parquet reader panics on some damaged files (a
/// footer that promises more rows than its pages hold); that must cost one file, not the report.
fn catch_panic<T>(f: impl FnOnce() -> T) -> std::result::Result<T, String> {
    static QUIET_HOOK: std::sync::Once = std::sync::Once::new();
    QUIET_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !CATCHING.with(|c| c.get()) {
                previous(info);
            }
        }));
    });
    CATCHING.with(|c| c.set(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(false));
    result.map_err(|payload| {
        payload.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| payload.downcast_ref::<String>().cloned()).unwrap_or_else(|| "no message".into())
    })
}

/// The schema of the first row file that can be read, for checking the query's column names.
fn first_schema(files: &[PathBuf]) -> Option<Vec<String>> {
    files.iter().find_map(|path| {
        let file = std::fs::File::open(path).ok()?;
        let schema = catch_panic(|| ParquetReader::new(file).schema().ok()).ok().flatten()?;
        Some(schema.iter_names().map(|n| n.to_string()).collect())
    })
}

/// `names` of one row file. A row written before a column was added to gps's rows
/// (`row::added_column`) reads it as null.
fn read_present(path: &Path, names: &[String]) -> std::result::Result<DataFrame, String> {
    let open = || std::fs::File::open(path).map_err(|e| format!("cannot open it: {e}"));
    let read = |names: Vec<String>| -> std::result::Result<PolarsResult<DataFrame>, String> {
        let file = open()?;
        catch_panic(|| ParquetReader::new(file).with_columns(Some(names)).finish())
            .map_err(|panic| format!("the Parquet reader crashed on it ({panic}): the file is damaged"))
    };
    match read(names.to_vec())? {
        Err(PolarsError::ColumnNotFound(_)) => {}
        other => return other.map_err(|e| format!("not a readable Parquet row: {e}")),
    }
    let file = open()?;
    let schema = catch_panic(|| ParquetReader::new(file).schema())
        .map_err(|panic| format!("the Parquet reader crashed on it ({panic}): the file is damaged"))?
        .map_err(|e| format!("not a readable Parquet row: {e}"))?;
    let (present, absent): (Vec<String>, Vec<String>) = names.iter().cloned().partition(|c| schema.contains(c.as_str()));
    let mut df = read(present)?.map_err(|e| format!("not a readable Parquet row: {e}"))?;
    for name in absent {
        let dtype = super::row::added_column(&name).ok_or_else(|| format!("it has no column `{name}`"))?;
        df.with_column(Column::full_null(name.as_str().into(), df.height(), &dtype)).map_err(|e| e.to_string())?;
    }
    df.select(names.iter().map(String::as_str)).map_err(|e| e.to_string())
}

pub fn build(dir: &Path, query: &TableQuery) -> Result<Table> {
    let (files, failed) = row_files(dir)?;
    if files.is_empty() {
        bail!("no result rows in {} ({failed} failure records): nothing has finished yet; check with `gps sweep status <sweep file>`", dir.display());
    }
    let keys: Vec<String> = query.rows.iter().chain(&query.cols).cloned().collect();
    if let Some(columns) = first_schema(&files) {
        for name in keys.iter().chain([&query.metric]).chain(query.filters.iter().map(|(k, _)| k)) {
            if !columns.contains(name) && super::row::added_column(name).is_none() {
                let known: Vec<&str> = columns.iter().map(String::as_str).filter(|n| *n != "spec_json" && *n != "epoch_losses").collect();
                bail!("unknown column `{name}` in the result rows; columns: {}", known.join(", "));
            }
        }
    }
    let mut needed: Vec<(String, Want)> = vec![("status".into(), Want::Text), (query.metric.clone(), Want::Number)];
    for name in keys.iter().chain(query.filters.iter().map(|(k, _)| k)) {
        if !needed.iter().any(|(n, _)| n == name) {
            needed.push((name.clone(), Want::Text));
        }
    }
    let (frame, skipped) = read_columns(&files, &needed);
    let Some(frame) = frame else {
        let reasons: Vec<String> = skipped.iter().take(3).map(|s| format!("{}: {}", s.path.display(), s.reason)).collect();
        bail!("none of the {} row files in {} can be read; first: {}", files.len(), dir.display(), reasons.join("; "));
    };
    let mut lf = frame.lazy().filter(col("status").eq(lit("ok")));
    for (name, value) in &query.filters {
        lf = lf.filter(col(name.as_str()).eq(lit(value.as_str())));
    }
    let key_exprs: Vec<Expr> = keys.iter().map(|k| col(k.as_str()).fill_null(lit("–"))).collect();
    let metric = col(query.metric.as_str());
    let grouped = lf
        .select(key_exprs.into_iter().chain([metric.alias("__metric")]).collect::<Vec<_>>())
        .group_by(keys.iter().map(|k| col(k.as_str())).collect::<Vec<_>>())
        .agg([col("__metric").mean().alias("__mean"), col("__metric").std(1).alias("__std"), col("__metric").count().cast(DataType::Int64).alias("__n")])
        .collect()
        .map_err(anyhow::Error::from)
        .with_context(|| format!("cannot read the result rows under {}", dir.display()))?;

    let key_cols: Vec<&StringChunked> = keys.iter().map(|k| grouped.column(k.as_str()).and_then(|c| c.str())).collect::<PolarsResult<_>>()?;
    let means = grouped.column("__mean")?.f64()?;
    let stds = grouped.column("__std")?.f64()?;
    let ns = grouped.column("__n")?.i64()?;
    let split = query.rows.len();
    let mut groups = Vec::new();
    let mut row_set = BTreeSet::new();
    let mut col_set = BTreeSet::new();
    for i in 0..grouped.height() {
        let key: Vec<String> = key_cols.iter().map(|c| c.get(i).unwrap_or("–").to_string()).collect();
        let Some(mean) = means.get(i) else { continue };
        let n = ns.get(i).unwrap_or(0) as usize;
        let cell = Cell { mean, std: stds.get(i).filter(|_| n > 1), n };
        row_set.insert(sort_key(&key[..split]));
        col_set.insert(sort_key(&key[split..]));
        groups.push((key, cell));
    }
    let row_keys: Vec<Vec<String>> = row_set.into_iter().map(|(_, k)| k).collect();
    let col_keys: Vec<Vec<String>> = col_set.into_iter().map(|(_, k)| k).collect();
    let mut cells = vec![vec![None; col_keys.len()]; row_keys.len()];
    let mut runs = 0;
    for (key, cell) in groups {
        let r = row_keys.iter().position(|k| k[..] == key[..split]).expect("row key collected");
        let c = col_keys.iter().position(|k| k[..] == key[split..]).expect("col key collected");
        runs += cell.n;
        cells[r][c] = Some(cell);
    }
    Ok(Table { query: query.clone(), row_keys, col_keys, cells, runs, failed, skipped })
}

/// Several metrics' tables over the same rows, side by side (`--metric probe_top1_last,linear_top1`):
/// their columns one after the other, each column key ending with its metric (`metric` is the
/// last column name). The metrics must share a unit and a direction (one scale and one "best"
/// rule hold for the whole table); the query keeps the first metric for them.
pub fn side_by_side(tables: Vec<Table>) -> Result<Table> {
    let Some(first) = tables.first() else { bail!("no metric given") };
    let (fraction, higher) = (is_fraction(&first.query.metric), higher_is_better(&first.query.metric));
    if let Some(t) = tables.iter().find(|t| is_fraction(&t.query.metric) != fraction || higher_is_better(&t.query.metric) != higher) {
        bail!("--metric: {} and {} differ in unit or direction; tabulate them one at a time", first.query.metric, t.query.metric);
    }
    let mut query = first.query.clone();
    query.cols.push("metric".into());
    let mut rows = BTreeSet::new();
    for t in &tables {
        rows.extend(t.row_keys.iter().map(|k| sort_key(k)));
    }
    let row_keys: Vec<Vec<String>> = rows.into_iter().map(|(_, k)| k).collect();
    let mut col_keys = Vec::new();
    let mut cells = vec![Vec::new(); row_keys.len()];
    for t in &tables {
        for (c, key) in t.col_keys.iter().enumerate() {
            col_keys.push(key.iter().cloned().chain([t.query.metric.clone()]).collect());
            for (r, row) in row_keys.iter().enumerate() {
                cells[r].push(t.row_keys.iter().position(|k| k == row).and_then(|tr| t.cells[tr][c]));
            }
        }
    }
    let runs = tables.iter().map(|t| t.runs).max().unwrap_or(0);
    Ok(Table { query, row_keys, col_keys, cells, runs, failed: first.failed, skipped: first.skipped.clone() })
}

/// Orders keys naturally: numbers by value, the `none` prior (the baseline) first, else by text.
fn sort_key(key: &[String]) -> (Vec<(u8, i64, String)>, Vec<String>) {
    let order = key
        .iter()
        .map(|v| match v.parse::<f64>() {
            Ok(x) => (1, (x * 1e6) as i64, String::new()),
            Err(_) if v == "none" => (0, 0, String::new()),
            Err(_) => (2, 0, v.clone()),
        })
        .collect();
    (order, key.to_vec())
}
