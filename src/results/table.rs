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
}

/// Metrics stored as fractions and shown as percentages.
pub fn is_fraction(metric: &str) -> bool {
    matches!(metric, "probe_top1_best" | "probe_top1_last" | "knn_top1" | "positive_purity")
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

/// Columns a report may name: those of the first row file and those gps writes today (older
/// rows lack the newer ones; they read as null).
fn known_columns(first: &Path) -> Result<Vec<String>> {
    let file = std::fs::File::open(first).with_context(|| format!("cannot open {}", first.display()))?;
    let schema = ParquetReader::new(file).schema().map_err(anyhow::Error::from).with_context(|| format!("cannot read result row {}", first.display()))?;
    let mut names: Vec<String> = schema.iter_names().map(|n| n.to_string()).collect();
    for name in ResultRow::default().to_frame()?.get_column_names() {
        if !names.iter().any(|n| n == name.as_str()) {
            names.push(name.to_string());
        }
    }
    Ok(names)
}

/// Reads the given columns of every row file, files split over the cores. One-row files make
/// the per-file overhead dominate: plain Parquet readers on scoped threads open 10,000 of them
/// faster than a lazy multi-file scan does on a small machine. A column a file does not have
/// (rows written before it existed) reads as null.
pub fn read_columns(files: &[PathBuf], columns: &[String]) -> Result<DataFrame> {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(files.len().max(1));
    let chunk = files.len().div_ceil(threads).max(1);
    let parts: Vec<Result<Vec<DataFrame>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || -> Result<Vec<DataFrame>> {
                    // One frame per distinct set of present columns (one, unless old and new rows mix).
                    let mut groups: Vec<DataFrame> = Vec::new();
                    for path in part {
                        let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
                        let mut reader = ParquetReader::new(file);
                        let schema = reader.schema().map_err(anyhow::Error::from).with_context(|| format!("cannot read result row {}", path.display()))?;
                        let present: Vec<String> = columns.iter().filter(|c| schema.get(c.as_str()).is_some()).cloned().collect();
                        // Files are already read in parallel; polars' own per-file parallelism
                        // only adds thread-pool hand-offs to a one-row file (2-3x slower).
                        let df = reader
                            .with_columns(Some(present))
                            .read_parallel(ParallelStrategy::None)
                            .finish()
                            .map_err(anyhow::Error::from)
                            .with_context(|| format!("cannot read result row {}", path.display()))?;
                        match groups.iter_mut().find(|g| g.get_column_names() == df.get_column_names()) {
                            Some(g) => {
                                g.vstack_mut_owned(df)
                                    .map_err(anyhow::Error::from)
                                    .with_context(|| format!("result row {} has other column types", path.display()))?;
                            }
                            None => groups.push(df),
                        }
                    }
                    // Gluing one chunk per file into one is a good part of the read: do it here,
                    // on every core, rather than once at the end on one.
                    for g in groups.iter_mut() {
                        g.rechunk_mut();
                    }
                    Ok(groups)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a reader thread panicked")))).collect()
    });
    let mut frames: Vec<DataFrame> = Vec::new();
    for part in parts {
        for group in part? {
            match frames.iter_mut().find(|f| f.get_column_names() == group.get_column_names()) {
                Some(f) => {
                    f.vstack_mut(&group)?;
                }
                None => frames.push(group),
            }
        }
    }
    let mut out = match frames.len() {
        0 => bail!("no result rows"),
        1 => frames.pop().expect("one frame"),
        _ => polars::functions::concat_df_diagonal(&frames).map_err(anyhow::Error::from).context("result rows of different versions do not combine")?,
    };
    for name in columns {
        if out.column(name.as_str()).is_err() {
            let height = out.height();
            out.with_column(Column::full_null(name.as_str().into(), height, &DataType::Null))?;
        }
    }
    let mut out = out.select(columns.iter().map(|c| c.as_str()))?;
    out.rechunk_mut();
    Ok(out)
}

/// The rows of a results folder, read once with the columns a report needs.
pub struct Rows {
    pub frame: DataFrame,
    /// Failure records found next to the rows.
    pub failed: usize,
    pub dir: PathBuf,
}

impl Rows {
    /// Reads `columns` (plus `status` and `seed`) of every row under `dir`; an unknown column
    /// is an error that lists the known ones.
    pub fn read(dir: &Path, columns: &[String]) -> Result<Rows> {
        let (files, failed) = row_files(dir)?;
        if files.is_empty() {
            bail!("no result rows in {} ({failed} failure records): nothing has finished yet; check with `gps sweep status <sweep file>`", dir.display());
        }
        let known = known_columns(&files[0])?;
        let mut needed: Vec<String> = vec!["status".into(), "seed".into()];
        for name in columns {
            if !known.contains(name) {
                let listed: Vec<&str> = known.iter().map(|n| n.as_str()).filter(|n| *n != "spec_json" && !n.starts_with("epoch_")).collect();
                bail!("unknown column `{name}` in the result rows; columns: {}", listed.join(", "));
            }
            if !needed.contains(name) {
                needed.push(name.clone());
            }
        }
        let frame = read_columns(&files, &needed).with_context(|| format!("reading the result rows under {}", dir.display()))?;
        Ok(Rows { frame, failed, dir: dir.to_path_buf() })
    }

    /// The finished runs (`status` ok) that pass every `column=value` filter.
    pub fn selected(&self, filters: &[(String, String)]) -> Result<DataFrame> {
        let mut lf = self.frame.clone().lazy().filter(col("status").eq(lit("ok")));
        for (name, value) in filters {
            lf = lf.filter(col(name.as_str()).cast(DataType::String).eq(lit(value.as_str())));
        }
        lf.collect().map_err(anyhow::Error::from).with_context(|| format!("cannot filter the result rows under {}", self.dir.display()))
    }
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
    let rows = Rows::read(dir, &query.columns())?;
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
    Ok(Table { query: query.clone(), row_keys, col_keys, cells, runs, failed: rows.failed, unmeasured: frame.height() - runs })
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
