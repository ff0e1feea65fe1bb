//! Result rows -> a paper-style table: a polars lazy scan of every row file, filtered, grouped by
//! the row and column keys, reduced to mean, std and n over the remaining axis (the seeds).

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

/// Scans all row files lazily (only the columns the query needs are read).
pub fn scan(files: &[PathBuf]) -> Result<LazyFrame> {
    let paths: Vec<PlRefPath> =
        files.iter().map(|p| p.to_str().map(PlRefPath::from).with_context(|| format!("{} is not a UTF-8 path", p.display()))).collect::<Result<_>>()?;
    let args = ScanArgsParquet { glob: false, ..Default::default() };
    Ok(LazyFrame::scan_parquet_files(paths.into_iter().collect(), args)?)
}

/// Reads the given columns of every row file, files split over the cores. One-row files make
/// the per-file overhead dominate: plain Parquet readers on scoped threads open 10,000 of them
/// faster than a lazy multi-file scan does on a small machine.
pub fn read_columns(files: &[PathBuf], columns: &[String]) -> Result<DataFrame> {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(files.len().max(1));
    let chunk = files.len().div_ceil(threads).max(1);
    let parts: Vec<Result<DataFrame>> = std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || -> Result<DataFrame> {
                    let mut acc: Option<DataFrame> = None;
                    for path in part {
                        let df = read_row_columns(path, columns)?;
                        match acc.as_mut() {
                            Some(a) => {
                                a.vstack_mut(&df)
                                    .map_err(anyhow::Error::from)
                                    .with_context(|| format!("result row {} has other column types", path.display()))?;
                            }
                            None => acc = Some(df),
                        }
                    }
                    acc.context("no files in a part")
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a reader thread panicked")))).collect()
    });
    let mut out: Option<DataFrame> = None;
    for part in parts {
        let part = part?;
        match out.as_mut() {
            Some(o) => {
                o.vstack_mut(&part)?;
            }
            None => out = Some(part),
        }
    }
    let mut out = out.context("no result rows")?;
    out.rechunk_mut();
    Ok(out)
}

/// `columns` of one row file. A row written before a column was added to gps's rows
/// (`row::added_column`) reads it as null.
fn read_row_columns(path: &Path, columns: &[String]) -> Result<DataFrame> {
    let open = || std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()));
    let context = || format!("cannot read result row {}", path.display());
    match ParquetReader::new(open()?).with_columns(Some(columns.to_vec())).finish() {
        Err(PolarsError::ColumnNotFound(_)) => {}
        other => return other.map_err(anyhow::Error::from).with_context(context),
    }
    let mut reader = ParquetReader::new(open()?);
    let schema = reader.schema().map_err(anyhow::Error::from).with_context(context)?;
    let (present, absent): (Vec<String>, Vec<String>) = columns.iter().cloned().partition(|c| schema.contains(c.as_str()));
    let mut df = reader.with_columns(Some(present)).finish().map_err(anyhow::Error::from).with_context(context)?;
    for name in absent {
        let dtype = super::row::added_column(&name).with_context(|| format!("result row {} has no column `{name}`", path.display()))?;
        df.with_column(Column::full_null(name.as_str().into(), df.height(), &dtype))?;
    }
    Ok(df.select(columns.iter().map(String::as_str))?)
}

pub fn build(dir: &Path, query: &TableQuery) -> Result<Table> {
    let (files, failed) = row_files(dir)?;
    if files.is_empty() {
        bail!("no result rows in {} ({failed} failure records): nothing has finished yet; check with `gps sweep status <sweep file>`", dir.display());
    }
    let keys: Vec<String> = query.rows.iter().chain(&query.cols).cloned().collect();
    let schema = scan(&files[..1])?.collect_schema()?;
    for name in keys.iter().chain([&query.metric]).chain(query.filters.iter().map(|(k, _)| k)) {
        if schema.get(name.as_str()).is_none() && super::row::added_column(name).is_none() {
            let known: Vec<&str> = schema.iter_names().map(|n| n.as_str()).filter(|n| *n != "spec_json" && *n != "epoch_losses").collect();
            bail!("unknown column `{name}` in the result rows; columns: {}", known.join(", "));
        }
    }
    let mut needed: Vec<String> = vec!["status".into(), query.metric.clone()];
    for name in keys.iter().chain(query.filters.iter().map(|(k, _)| k)) {
        if !needed.contains(name) {
            needed.push(name.clone());
        }
    }
    let mut lf = read_columns(&files, &needed)?.lazy().filter(col("status").eq(lit("ok")));
    for (name, value) in &query.filters {
        lf = lf.filter(col(name.as_str()).cast(DataType::String).eq(lit(value.as_str())));
    }
    let key_exprs: Vec<Expr> = keys.iter().map(|k| col(k.as_str()).cast(DataType::String).fill_null(lit("–"))).collect();
    let metric = col(query.metric.as_str()).cast(DataType::Float64);
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
    Ok(Table { query: query.clone(), row_keys, col_keys, cells, runs, failed })
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
    Ok(Table { query, row_keys, col_keys, cells, runs, failed: first.failed })
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
