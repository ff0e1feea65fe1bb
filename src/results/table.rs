//! Result rows -> a paper-style table: a polars lazy scan of every row file, filtered, grouped by
//! the row and column keys, reduced to mean, std and n over the remaining axis (the seeds).

use super::row::ResultRow;
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

impl TableQuery {
    /// Row keys, then column keys.
    pub fn keys(&self) -> Vec<String> {
        self.rows.iter().chain(&self.cols).cloned().collect()
    }

    /// Every column the table reads.
    pub fn columns(&self) -> Vec<String> {
        let mut out = self.keys();
        out.push(self.metric.clone());
        out.extend(self.filters.iter().map(|(k, _)| k.clone()));
        out
    }
}

/// The runs of one cell: mean, std (None for a single run), n, and each run's (seed, value) for
/// the comparisons (paired by seed).
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub mean: f64,
    pub std: Option<f64>,
    pub n: usize,
    pub runs: Vec<(i64, f64)>,
}

impl Cell {
    pub fn from_runs(mut runs: Vec<(i64, f64)>) -> Cell {
        runs.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
        let values: Vec<f64> = runs.iter().map(|r| r.1).collect();
        let (mean, std) = super::stats::mean_std(&values);
        Cell { mean, std, n: runs.len(), runs }
    }
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
    /// Finished runs that have no value of the metric (rows written before it was recorded).
    pub unmeasured: usize,
    /// Row files that could not be read (named on stderr, counted under the table).
    pub skipped: Vec<Skipped>,
}

/// A row file the report could not use, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: String,
}

/// Metrics stored as fractions and shown as percentages.
pub fn is_fraction(metric: &str) -> bool {
    matches!(metric, "probe_top1_best" | "probe_top1_last" | "knn_top1" | "positive_purity" | "linear_top1")
}

/// Whether larger is better (accuracies, RankMe) or smaller (losses, times, alignment and
/// uniformity: closer positives, more spread).
pub fn higher_is_better(metric: &str) -> bool {
    !(metric.contains("loss") || metric.ends_with("_s") && metric != "samples_per_s" || metric.contains("alignment") || metric.contains("uniformity"))
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

/// The columns gps writes today, with their types: what an old row lacking one reads it as.
fn current_schema() -> Result<Schema> {
    Ok(ResultRow::default().to_frame()?.schema().as_ref().clone())
}

/// Columns a report may name: those of the first readable row file and those gps writes today
/// (older rows lack the newer ones; they read as null).
fn known_columns(files: &[PathBuf], current: &Schema) -> Vec<String> {
    let first = files.iter().find_map(|path| {
        let file = std::fs::File::open(path).ok()?;
        catch_panic(|| ParquetReader::new(file).schema().ok()).ok().flatten()
    });
    let mut names: Vec<String> = first.map(|s| s.iter_names().map(|n| n.to_string()).collect()).unwrap_or_default();
    for name in current.iter_names() {
        if !names.iter().any(|n| n == name.as_str()) {
            names.push(name.to_string());
        }
    }
    names
}

/// What a report needs of a column: a number (a metric), text (`status`), or the type gps
/// writes it with today.
#[derive(Debug, Clone, PartialEq)]
pub enum Want {
    Number,
    Text,
    As(DataType),
}

/// Reads the given columns of every row file, files split over the cores. One-row files make
/// the per-file overhead dominate: plain Parquet readers on scoped threads open 10,000 of them
/// faster than a lazy multi-file scan does on a small machine. A column a file does not have
/// (rows written before it existed) reads as null. A file that cannot be read (cut short, empty,
/// a column of another type, a reader crash) is skipped with the reason, never fatal: one
/// damaged file must not hide the other runs. None when no file could be read.
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
                            Some(a) => a.vstack_mut_owned(df).map(|_| ()).map_err(|e| format!("its columns do not stack with the other rows: {e}")),
                            None => {
                                acc = Some(df);
                                Ok(())
                            }
                        });
                        if let Err(reason) = read {
                            skipped.push(Skipped { path: path.clone(), reason });
                        }
                    }
                    // Gluing one chunk per file into one is a good part of the read: do it here,
                    // on every core, rather than once at the end on one.
                    if let Some(a) = acc.as_mut() {
                        a.rechunk_mut();
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

/// One row file's columns, each cast to what the report needs; the reason when it cannot be.
fn read_file(path: &Path, columns: &[(String, Want)]) -> std::result::Result<DataFrame, String> {
    let damaged = |panic: String| format!("the Parquet reader crashed on it ({panic}): the file is damaged");
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open it: {e}"))?;
    if file.metadata().map(|m| m.len()).unwrap_or(0) == 0 {
        return Err("the file is empty (0 bytes)".into());
    }
    let mut reader = ParquetReader::new(file);
    let schema = catch_panic(|| reader.schema()).map_err(damaged)?.map_err(|e| format!("not a readable Parquet row: {e}"))?;
    let present: Vec<String> = columns.iter().map(|(n, _)| n.clone()).filter(|n| schema.contains(n.as_str())).collect();
    // Files are already read in parallel; polars' own per-file parallelism only adds thread-pool
    // hand-offs to a one-row file (2-3x slower).
    let df = catch_panic(|| reader.with_columns(Some(present)).read_parallel(ParallelStrategy::None).finish())
        .map_err(damaged)?
        .map_err(|e| format!("not a readable Parquet row: {e}"))?;
    if df.height() == 0 {
        return Err("it holds no row".into());
    }
    let mut cast = Vec::with_capacity(columns.len());
    for (name, want) in columns {
        let target = match want {
            Want::Number => DataType::Float64,
            Want::Text => DataType::String,
            Want::As(t) => t.clone(),
        };
        let Ok(column) = df.column(name.as_str()) else {
            cast.push(Column::full_null(name.as_str().into(), df.height(), &target));
            continue;
        };
        let dtype = column.dtype();
        let ok = match want {
            Want::Number => dtype.is_primitive_numeric() || dtype.is_null(),
            Want::Text => dtype.is_string() || dtype.is_null(),
            Want::As(t) => dtype == t || dtype.is_null() || (dtype.is_primitive_numeric() && t.is_primitive_numeric()),
        };
        if !ok {
            let expected = match want {
                Want::Number => "a number".to_string(),
                Want::Text => "text".to_string(),
                Want::As(t) => t.to_string(),
            };
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

/// The rows of a results folder, read once with the columns a report needs.
pub struct Rows {
    pub frame: DataFrame,
    /// Failure records found next to the rows.
    pub failed: usize,
    /// Row files that could not be read.
    pub skipped: Vec<Skipped>,
    pub dir: PathBuf,
}

impl Rows {
    /// Reads `columns` (plus `status` and `seed`) of every row under `dir`; `numbers` are read as
    /// numbers (the metrics). An unknown column is an error that lists the known ones.
    pub fn read(dir: &Path, columns: &[String], numbers: &[String]) -> Result<Rows> {
        let (files, failed) = row_files(dir)?;
        if files.is_empty() {
            bail!("no result rows in {} ({failed} failure records): nothing has finished yet; check with `gps sweep status <sweep file>`", dir.display());
        }
        let current = current_schema()?;
        let known = known_columns(&files, &current);
        let mut needed: Vec<(String, Want)> = vec![("status".into(), Want::Text), ("seed".into(), Want::As(DataType::Int64))];
        for name in columns {
            if !known.contains(name) {
                let listed: Vec<&str> = known.iter().map(|n| n.as_str()).filter(|n| *n != "spec_json" && !n.starts_with("epoch_")).collect();
                bail!("unknown column `{name}` in the result rows; columns: {}", listed.join(", "));
            }
            if needed.iter().any(|(n, _)| n == name) {
                continue;
            }
            let want = if numbers.contains(name) { Want::Number } else { current.get(name.as_str()).map(|t| Want::As(t.clone())).unwrap_or(Want::Text) };
            needed.push((name.clone(), want));
        }
        let (frame, skipped) = read_columns(&files, &needed);
        for s in &skipped {
            eprintln!("warning: skipped {}: {}", s.path.display(), s.reason);
        }
        let Some(frame) = frame else {
            let reasons: Vec<String> = skipped.iter().take(3).map(|s| format!("{}: {}", s.path.display(), s.reason)).collect();
            bail!("none of the {} row files in {} can be read; first: {}", files.len(), dir.display(), reasons.join("; "));
        };
        Ok(Rows { frame, failed, skipped, dir: dir.to_path_buf() })
    }

    /// The finished runs (`status` ok) that pass every `column=value` filter.
    pub fn selected(&self, filters: &[(String, String)]) -> Result<DataFrame> {
        let context = || format!("cannot filter the result rows under {}", self.dir.display());
        let mut keep = equals(&self.frame, "status", "ok").with_context(context)?;
        for (name, value) in filters {
            keep = &keep & &equals(&self.frame, name, value).with_context(context)?;
        }
        self.frame.filter(&keep).map_err(anyhow::Error::from).with_context(context)
    }
}

/// Rows of `frame` whose `column`, read as text, is `value` (null is no value).
pub fn equals(frame: &DataFrame, column: &str, value: &str) -> Result<BooleanChunked> {
    let text = frame.column(column)?.cast(&DataType::String)?;
    Ok(text.str()?.equal(value).fill_null_with_values(false)?)
}

/// The value of `keys` in each row of `frame`, as text (null: `–`), for grouping and display.
pub fn key_strings(frame: &DataFrame, keys: &[String]) -> Result<Vec<Vec<String>>> {
    let mut columns = Vec::with_capacity(keys.len());
    for k in keys {
        let c = frame.column(k.as_str())?.cast(&DataType::String)?;
        columns.push(c.str()?.clone());
    }
    Ok((0..frame.height()).map(|i| columns.iter().map(|c| c.get(i).unwrap_or("–").to_string()).collect()).collect())
}

/// Each row's seed (a null seed never pairs: it gets a distinct negative stand-in).
pub fn seeds(frame: &DataFrame) -> Result<Vec<i64>> {
    let seed = frame.column("seed")?.cast(&DataType::Int64)?;
    let seed = seed.i64()?;
    Ok((0..frame.height()).map(|i| seed.get(i).unwrap_or(-1 - i as i64)).collect())
}

pub fn build(dir: &Path, query: &TableQuery) -> Result<Table> {
    let rows = Rows::read(dir, &query.columns(), std::slice::from_ref(&query.metric))?;
    tabulate(&rows, query)
}

/// The table of `query` over rows already read (they must hold `query.columns()`).
pub fn tabulate(rows: &Rows, query: &TableQuery) -> Result<Table> {
    let frame = rows.selected(&query.filters)?;
    let keys = query.keys();
    let key_values = key_strings(&frame, &keys)?;
    let seeds = seeds(&frame)?;
    let metric = frame.column(query.metric.as_str())?.cast(&DataType::Float64)?;
    let metric = metric.f64()?;
    let split = query.rows.len();
    let mut groups: std::collections::HashMap<Vec<String>, Vec<(i64, f64)>> = Default::default();
    for (i, key) in key_values.into_iter().enumerate() {
        // A null metric (a column newer than the row) is no run of this table.
        if let Some(value) = metric.get(i) {
            groups.entry(key).or_default().push((seeds[i], value));
        }
    }
    let mut row_set = BTreeSet::new();
    let mut col_set = BTreeSet::new();
    for key in groups.keys() {
        row_set.insert(sort_key(&key[..split]));
        col_set.insert(sort_key(&key[split..]));
    }
    let row_keys: Vec<Vec<String>> = row_set.into_iter().map(|(_, k)| k).collect();
    let col_keys: Vec<Vec<String>> = col_set.into_iter().map(|(_, k)| k).collect();
    let mut cells = vec![vec![None; col_keys.len()]; row_keys.len()];
    let mut runs = 0;
    for (key, values) in groups {
        let r = row_keys.iter().position(|k| k[..] == key[..split]).expect("row key collected");
        let c = col_keys.iter().position(|k| k[..] == key[split..]).expect("col key collected");
        runs += values.len();
        cells[r][c] = Some(Cell::from_runs(values));
    }
    Ok(Table { query: query.clone(), row_keys, col_keys, cells, runs, failed: rows.failed, unmeasured: frame.height() - runs, skipped: rows.skipped.clone() })
}

/// Tables of several metrics over the same keys as one table, each metric's columns side by
/// side (`--metric probe_top1_last,linear_top1`: online probe and offline linear evaluation).
/// The metrics must share their unit and direction, so one rule marks the best.
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
                cells[r].push(t.row_keys.iter().position(|k| k == row).and_then(|tr| t.cells[tr][c].clone()));
            }
        }
    }
    let runs = tables.iter().map(|t| t.runs).max().unwrap_or(0);
    let unmeasured = tables.iter().map(|t| t.unmeasured).max().unwrap_or(0);
    Ok(Table { query, row_keys, col_keys, cells, runs, failed: first.failed, unmeasured, skipped: first.skipped.clone() })
}

/// Orders keys naturally: numbers by value, the `none` prior (the baseline) first, else by text.
pub(crate) fn sort_key(key: &[String]) -> (Vec<(u8, i64, String)>, Vec<String>) {
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
