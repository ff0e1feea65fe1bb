//! Result rows -> a paper-style table: the needed columns of every row file, filtered, grouped by
//! the row and column keys, reduced to mean, std and n over the seeds.
//!
//! A cell holds runs of one configuration only (`configuration`): where the asked keys leave
//! other fields varying inside a cell, the cell is split by them, and the table says so. A run
//! counts once: the same run found twice (a copied file, one spec run in two sweep folders) is
//! one sample.

use super::configuration;
use super::index::{self, Index};
use super::reading::{catch_panic, on_cores};
use super::row::ResultRow;
use crate::config::RunSpec;
use anyhow::{Context, Result, bail};
use polars::prelude::*;
use std::collections::BTreeSet;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// What to tabulate.
#[derive(Debug, Clone, Default)]
pub struct TableQuery {
    pub rows: Vec<String>,
    pub cols: Vec<String>,
    pub metric: String,
    /// `column=value` filters, all of which must hold (a column, or a run-spec field by its
    /// dotted path).
    pub filters: Vec<(String, String)>,
    /// Fields added after `rows` because they vary inside a cell of `rows` × `cols` (set by
    /// `tabulate`: a cell must hold one configuration).
    pub split: Vec<String>,
    /// List every field held fixed, not only those that shaped the cells (`--verbose`).
    pub verbose: bool,
}

/// The key of a side-by-side table's metric column (not a column name a row can have).
pub const METRIC_KEY: &str = "--metric";

impl TableQuery {
    /// The keys of a table row: the asked rows, then the fields that split cells.
    pub fn row_names(&self) -> Vec<String> {
        self.rows.iter().chain(&self.split).cloned().collect()
    }

    /// Row keys (with the split fields), then column keys.
    pub fn keys(&self) -> Vec<String> {
        self.row_names().into_iter().chain(self.cols.iter().cloned()).collect()
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

/// What a table holds fixed and what varies, beyond its keys.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Layout {
    /// Configuration fields with one value over every run in the table that a reader needs
    /// (`configuration::worth_listing`: they shaped what the cells computed and are away from
    /// their defaults, or always listed), in display order.
    pub fixed: Vec<(String, String)>,
    /// The other fields with one value over every run (at their defaults, of a part no run uses,
    /// execution switches): listed with `--verbose` only.
    pub fixed_unused: Vec<(String, String)>,
    /// Fields that varied inside a cell of the asked rows × columns, with their values: the
    /// cells are split by them (they are `query.split`).
    pub split: Vec<(String, Vec<String>)>,
    /// Fields that are not keys and differ between cells (each constant inside a cell), with
    /// their values: the cells' keys decide them (e.g. a learning rate set per method).
    pub between: Vec<(String, Vec<String>)>,
}

/// Published numbers attached to a table's cells (`published::attach`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PublishedCells {
    /// ((row, column), value in the metric's stored unit, index into `sources`).
    pub values: Vec<((usize, usize), f64, usize)>,
    pub sources: Vec<String>,
}

impl PublishedCells {
    pub fn get(&self, r: usize, c: usize) -> Option<(f64, usize)> {
        self.values.iter().find(|(at, _, _)| *at == (r, c)).map(|&(_, v, n)| (v, n))
    }

    /// Whether column `c` has a published value in any row.
    pub fn in_column(&self, c: usize) -> bool {
        self.values.iter().any(|((_, col), _, _)| *col == c)
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

#[derive(Debug, Clone)]
pub struct Table {
    pub query: TableQuery,
    pub layout: Layout,
    /// Published numbers beside the measured ones (none unless attached).
    pub published: PublishedCells,
    /// Rows not counted because they repeat a run already counted (named on stderr).
    pub duplicates: usize,
    /// Distinct values of the row keys, in display order.
    pub row_keys: Vec<Vec<String>>,
    pub col_keys: Vec<Vec<String>>,
    /// cells[r][c]
    pub cells: Vec<Vec<Option<Cell>>>,
    /// Rows that entered the table (after filters).
    pub runs: usize,
    /// Failure records found next to the rows.
    pub failed: usize,
    /// Finished runs that have no value of the metric (a column newer than the row, a metric not
    /// computed for it such as `linear_top1` before `gps eval linear`, or a value that is not a
    /// finite number): left out of the cells.
    pub unmeasured: usize,
    /// Their row files (each named on stderr by the report, whatever output it writes).
    pub unmeasured_files: Vec<String>,
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
/// folder of sweeps, or `<dir>/*.parquet`; hidden files (a row being written, the report index)
/// are no rows.
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
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&folder).with_context(|| format!("cannot list {}", folder.display()))? {
            let name = entry?.file_name();
            let text = name.to_string_lossy();
            if text.starts_with('.') {
                continue; // a row being written, or the report index (`index`)
            }
            if text.ends_with(".parquet") {
                names.push(name);
            } else if text.ends_with(".failed.json") {
                failed += 1;
            }
        }
        // Names sorted within each folder, the folders in order: the paths' order, without
        // comparing 10,000 paths component by component.
        names.sort_unstable();
        files.extend(names.into_iter().map(|name| folder.join(name)));
    }
    Ok((files, failed))
}

/// The columns gps writes today, with their types: what an old row lacking one reads it as.
fn current_schema() -> Result<Schema> {
    Ok(ResultRow::default().to_frame()?.schema().as_ref().clone())
}

/// Columns a report may name: those of the first readable row file and those gps writes today
/// (older rows lack the newer ones; they read as null). The index knows the columns of the files
/// it holds; a file it does not hold is asked itself.
fn known_columns(files: &[PathBuf], index: &Index, current: &Schema) -> Vec<String> {
    let first = files.iter().enumerate().find_map(|(i, path)| {
        index.names(i).or_else(|| {
            let file = std::fs::File::open(path).ok()?;
            let schema = catch_panic(|| ParquetReader::new(file).schema().ok()).ok().flatten()?;
            Some(schema.iter_names().map(|n| n.to_string()).collect())
        })
    });
    let mut names: Vec<String> = first.unwrap_or_default();
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

/// Reads the given columns of every row file: from the report index (`index`) where it holds the
/// file, else from the file itself (files split over the cores). A column a file does not have
/// (rows written before it existed) reads as null. A file that cannot be read (cut short, empty,
/// a column of another type, a reader crash) is skipped with the reason, never fatal: one
/// damaged file must not hide the other runs. Rows come in the files' order, and the result is
/// the same with or without the index. None when no file could be read.
pub fn read_columns(files: &[PathBuf], index: &Index, columns: &[(String, Want)]) -> (Option<DataFrame>, Vec<Skipped>) {
    let names: Vec<String> = columns.iter().map(|(n, _)| n.clone()).collect();
    let stored = match index.frame(&names) {
        Ok(frame) => Some(frame),
        Err(e) => {
            eprintln!("warning: {e:#}; reading the row files one by one");
            None
        }
    };
    let indexed = |i: usize| if stored.is_some() { index.entry(i) } else { None };
    let own: Vec<usize> = (0..files.len()).filter(|&i| indexed(i).is_none()).collect();
    let mut own_reads = on_cores(&own, |&i| read_file(&files[i], columns)).into_iter();
    // The result in pieces, in the files' order: consecutive files of one schema in the index
    // are one piece (usually all of them); every other file is a piece of its own.
    let mut pieces: Vec<(std::result::Result<DataFrame, String>, Range<usize>)> = Vec::new();
    let mut i = 0;
    while i < files.len() {
        let end = match (indexed(i), &stored) {
            (Some(entry), Some(frame)) => {
                let end = (i + 1..files.len()).find(|&j| indexed(j).is_none_or(|e| e.schema != entry.schema)).unwrap_or(files.len());
                pieces.push((from_index(files, index, frame, i..end, columns), i..end));
                end
            }
            _ => {
                pieces.push((own_reads.next().unwrap_or_else(|| Err("it was not read".into())), i..i + 1));
                i + 1
            }
        };
        i = end;
    }
    let mut out: Option<DataFrame> = None;
    let mut skipped = Vec::new();
    for (piece, of) in pieces {
        let stacked = piece.and_then(|df| match out.as_mut() {
            Some(o) => o.vstack_mut_owned(df).map(|_| ()).map_err(|e| format!("its columns do not stack with the other rows: {e}")),
            None => {
                out = Some(df);
                Ok(())
            }
        });
        if let Err(reason) = stacked {
            skipped.extend(files[of].iter().map(|path| Skipped { path: path.clone(), reason: reason.clone() }));
        }
    }
    if let Some(o) = out.as_mut() {
        o.rechunk_mut();
    }
    (out, skipped)
}

/// The rows of listed files `run` (consecutive, of one schema, all in the index) from the index's
/// columns `stored`, each column cast as `read_file` casts a file's.
fn from_index(files: &[PathBuf], index: &Index, stored: &DataFrame, run: Range<usize>, columns: &[(String, Want)]) -> std::result::Result<DataFrame, String> {
    let entries: Vec<&index::Entry> = run.clone().filter_map(|i| index.entry(i)).collect();
    let schema = entries.first().map(|e| e.schema).ok_or("not in the report index")?;
    let rows: Vec<IdxSize> = entries.iter().flat_map(|e| e.rows.clone()).map(|r| r as IdxSize).collect();
    let height = rows.len();
    // The usual case, every file of one schema in the index's order: a slice, not a copy.
    let contiguous = rows.windows(2).all(|w| w[1] == w[0] + 1);
    let take = |column: &Column| -> PolarsResult<Column> {
        match rows.first() {
            Some(&first) if contiguous => Ok(column.slice(first as i64, height)),
            _ => column.take(&IdxCa::from_vec("rows".into(), rows.clone())),
        }
    };
    let mut cast = Vec::with_capacity(columns.len() + 1);
    for (name, want) in columns {
        match index.stored(schema, name) {
            Some(column) => {
                let column = stored.column(column).and_then(take).map_err(|e| format!("the report index lacks column `{name}`: {e}"))?;
                cast.push(cast_column(name, want, &column.with_name(name.as_str().into()))?);
            }
            None => cast.push(Column::full_null(name.as_str().into(), height, &target(want))),
        }
    }
    let paths: Vec<String> = files[run].iter().zip(&entries).flat_map(|(path, e)| std::iter::repeat_n(path.display().to_string(), e.rows.len())).collect();
    cast.push(Column::new(FILE_COLUMN.into(), paths));
    DataFrame::new(height, cast).map_err(|e| e.to_string())
}

/// The type a report reads a column as.
fn target(want: &Want) -> DataType {
    match want {
        Want::Number => DataType::Float64,
        Want::Text => DataType::String,
        Want::As(t) => t.clone(),
    }
}

/// A file's column `name` cast to what the report needs; the reason when it holds another type.
fn cast_column(name: &str, want: &Want, column: &Column) -> std::result::Result<Column, String> {
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
    column.cast(&target(want)).map_err(|e| format!("column `{name}` ({dtype}): {e}"))
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
    let mut cast = Vec::with_capacity(columns.len() + 1);
    for (name, want) in columns {
        match df.column(name.as_str()) {
            Ok(column) => cast.push(cast_column(name, want, column)?),
            Err(_) => cast.push(Column::full_null(name.as_str().into(), df.height(), &target(want))),
        }
    }
    cast.push(Column::new(FILE_COLUMN.into(), vec![path.display().to_string(); df.height()]));
    DataFrame::new(df.height(), cast).map_err(|e| e.to_string())
}

/// The columns every report reads besides the asked ones: to filter (`status`), pair seeds, find
/// repeated runs (`run_id`, `finished_at`) and know each row's configuration (`spec_json`,
/// `numerics`).
const ALWAYS_READ: [&str; 6] = ["status", "seed", "run_id", "finished_at", "spec_json", "numerics"];

/// The frame column holding each row's configuration id (an index into `Rows::configs`).
const CONFIG_COLUMN: &str = "__config";
/// The frame column holding each row's file (added by `read_file`).
const FILE_COLUMN: &str = "__file";

/// A row file not counted because it repeats a run already counted.
#[derive(Debug, Clone, PartialEq)]
pub struct Duplicate {
    pub dropped: PathBuf,
    pub kept: PathBuf,
    pub why: String,
}

/// The rows of a results folder, read once with the columns a report needs.
pub struct Rows {
    /// One line per counted run: the asked columns, `ALWAYS_READ`, the file and the configuration id.
    pub frame: DataFrame,
    /// Failure records found next to the rows.
    pub failed: usize,
    /// Row files that could not be read.
    pub skipped: Vec<Skipped>,
    /// Row files not counted because they repeat a counted run.
    pub duplicates: Vec<Duplicate>,
    pub dir: PathBuf,
    /// Every configuration field found in the rows (spec fields and `numerics`), in display order.
    pub fields: Vec<String>,
    /// Each distinct configuration: the value of every field of `fields` (`absent` where a row's
    /// spec lacks it), indexed by the frame's configuration id.
    pub configs: Vec<Vec<String>>,
    /// What the report index did for this read: files reused, files parsed, whether rewritten.
    pub index: index::Stats,
}

/// The value of a configuration field a row's spec does not have (a spec of another gps version).
const ABSENT: &str = "absent";

impl Rows {
    /// Reads `columns` (plus `ALWAYS_READ`) of every row under `dir`; `numbers` are read as
    /// numbers (the metrics). A name may be a row column or a run-spec field by its dotted path
    /// (`optimizer.lr`); an unknown one is an error that lists the known ones. Repeated runs are
    /// counted once (the newer row), each named on stderr. The rows come through the report
    /// index (`index`: parsed rows kept beside the row files, brought up to date here), with the
    /// same result as reading every file.
    pub fn read(dir: &Path, columns: &[String], numbers: &[String]) -> Result<Rows> {
        let (files, failed) = row_files(dir)?;
        if files.is_empty() {
            bail!("no result rows in {} ({failed} failure records): nothing has finished yet; check with `gps sweep status <sweep file>`", dir.display());
        }
        let index = Index::refresh(dir, &files);
        let mut rows = Self::read_through(&index, dir, &files, failed, columns, numbers)?;
        rows.index = index.stats();
        Ok(rows)
    }

    /// `read` of the listed row files `files`, each taken from `index` where it holds it.
    pub(super) fn read_through(index: &Index, dir: &Path, files: &[PathBuf], failed: usize, columns: &[String], numbers: &[String]) -> Result<Rows> {
        let current = current_schema()?;
        let known = known_columns(files, index, &current);
        let spec_fields = RunSpec::field_paths();
        let mut needed: Vec<(String, Want)> = ALWAYS_READ
            .iter()
            .map(|&c| {
                let want = match c {
                    "seed" | "numerics" => Want::As(DataType::Int64),
                    _ => Want::Text,
                };
                (c.to_string(), want)
            })
            .collect();
        for name in columns {
            if needed.iter().any(|(n, _)| n == name) {
                continue;
            }
            if !known.contains(name) {
                if spec_fields.contains(name) {
                    continue; // a configuration field, read from each row's spec
                }
                let listed: Vec<&str> = known.iter().map(|n| n.as_str()).filter(|n| *n != "spec_json" && !n.starts_with("epoch_")).collect();
                let hint = crate::config::yaml::nearest(name, listed.iter().copied().chain(spec_fields.iter().map(String::as_str)))
                    .map(|n| format!(" (did you mean `{n}`?)"))
                    .unwrap_or_default();
                bail!(
                    "unknown column `{name}` in the result rows{hint}; columns: {}; or any run-spec field by its dotted path (optimizer.lr, dataset.train_limit, ...)",
                    listed.join(", ")
                );
            }
            let want = if numbers.contains(name) { Want::Number } else { current.get(name.as_str()).map(|t| Want::As(t.clone())).unwrap_or(Want::Text) };
            needed.push((name.clone(), want));
        }
        let (frame, skipped) = read_columns(files, index, &needed);
        for s in &skipped {
            eprintln!("warning: skipped {}: {}", s.path.display(), s.reason);
        }
        let Some(frame) = frame else {
            let reasons: Vec<String> = skipped.iter().take(3).map(|s| format!("{}: {}", s.path.display(), s.reason)).collect();
            bail!("none of the {} row files in {} can be read; first: {}", files.len(), dir.display(), reasons.join("; "));
        };
        Self::from_frame(frame, failed, skipped, dir)
    }

    /// The configuration of every row, repeated runs dropped.
    fn from_frame(frame: DataFrame, failed: usize, skipped: Vec<Skipped>, dir: &Path) -> Result<Rows> {
        let text = |name: &str| -> Result<StringChunked> { Ok(frame.column(name)?.cast(&DataType::String)?.str()?.clone()) };
        let (specs, run_ids, finished, files) = (text("spec_json")?, text("run_id")?, text("finished_at")?, text(FILE_COLUMN)?);
        let numerics = frame.column("numerics")?.cast(&DataType::Int64)?.i64()?.clone();
        let seeds = seeds(&frame)?;
        let spec_texts: Vec<Option<&str>> = specs.iter().collect();
        let numeric_versions: Vec<Option<i64>> = numerics.iter().collect();
        let (distinct_of, distinct) = configuration::of_rows(&spec_texts, &numeric_versions);
        let mut fields: Vec<String> = distinct.iter().flat_map(|f| f.keys().cloned()).collect::<BTreeSet<_>>().into_iter().collect();
        fields.sort_by(|a, b| configuration::display_order(a).cmp(&configuration::display_order(b)));
        // Distinct spec texts can still be one configuration (an older spec read with today's
        // defaults): configurations are compared by their resolved fields.
        let mut ids: std::collections::HashMap<Vec<String>, usize> = Default::default();
        let mut configs: Vec<Vec<String>> = Vec::new();
        let config_of_distinct: Vec<usize> = distinct
            .iter()
            .map(|p| {
                let values: Vec<String> = fields.iter().map(|f| p.get(f).cloned().unwrap_or_else(|| ABSENT.to_string())).collect();
                *ids.entry(values.clone()).or_insert_with(|| {
                    configs.push(values);
                    configs.len() - 1
                })
            })
            .collect();
        let config_of: Vec<usize> = distinct_of.iter().map(|&d| config_of_distinct[d]).collect();

        // A run counts once: the same run id (under one numerics version), or the same
        // configuration and seed under two ids, is one sample; the newer row stands for it.
        let newer_first = |a: &usize, b: &usize| finished.get(*b).cmp(&finished.get(*a)).then(files.get(*b).cmp(&files.get(*a)));
        let mut keep = vec![true; frame.height()];
        let mut duplicates = Vec::new();
        let mut by_id: std::collections::BTreeMap<(String, Option<i64>), Vec<usize>> = Default::default();
        for i in 0..frame.height() {
            by_id.entry((run_ids.get(i).unwrap_or("").to_string(), numerics.get(i))).or_default().push(i);
        }
        for ((id, _), mut same) in by_id {
            same.sort_by(newer_first);
            for &i in &same[1..] {
                keep[i] = false;
                duplicates.push((i, same[0], format!("the same run ({id}) as")));
            }
        }
        let mut by_config: std::collections::BTreeMap<(usize, i64), Vec<usize>> = Default::default();
        for i in (0..frame.height()).filter(|&i| keep[i]) {
            by_config.entry((config_of[i], seeds[i])).or_default().push(i);
        }
        for ((_, seed), mut same) in by_config {
            same.sort_by(newer_first);
            for &i in &same[1..] {
                keep[i] = false;
                let ids = format!("run ids {} and {}", run_ids.get(i).unwrap_or("?"), run_ids.get(same[0]).unwrap_or("?"));
                duplicates.push((i, same[0], format!("the same configuration and seed {seed} ({ids}, written by different gps versions?) as")));
            }
        }
        let duplicates: Vec<Duplicate> = duplicates
            .into_iter()
            .map(|(i, k, why)| Duplicate { dropped: PathBuf::from(files.get(i).unwrap_or("?")), kept: PathBuf::from(files.get(k).unwrap_or("?")), why })
            .collect();
        for d in &duplicates {
            eprintln!("warning: {} holds {} {}; a run counts once: keeping the newer row, {}", d.dropped.display(), d.why, d.kept.display(), d.kept.display());
        }
        let mut frame = frame;
        frame.with_column(Column::new(CONFIG_COLUMN.into(), config_of.iter().map(|&c| c as u32).collect::<Vec<u32>>()))?;
        // `numerics` as a key reads `unversioned` for rows written before it was recorded.
        let labels: Vec<String> = (0..frame.height()).map(|i| crate::numerics::label(numerics.get(i))).collect();
        frame.with_column(Column::new("numerics".into(), labels))?;
        let mask = BooleanChunked::from_slice("keep".into(), &keep);
        // The spec text is in `configs` now; a frame copied per table need not carry it.
        let frame = frame.drop("spec_json")?.filter(&mask)?;
        Ok(Rows { frame, failed, skipped, duplicates, dir: dir.to_path_buf(), fields, configs, index: index::Stats::default() })
    }

    /// The finished runs (`status` ok) that pass every `column=value` filter (a column, or a
    /// configuration field by its dotted path).
    pub fn selected(&self, filters: &[(String, String)]) -> Result<DataFrame> {
        let context = || format!("cannot filter the result rows under {}", self.dir.display());
        let mut keep = equals(&self.frame, "status", "ok").with_context(context)?;
        for (name, value) in filters {
            let matches = match self.frame.column(name.as_str()) {
                Ok(_) => equals(&self.frame, name, value).with_context(context)?,
                Err(_) => {
                    let texts = self.key_strings(&self.frame, std::slice::from_ref(name))?;
                    let matches: Vec<bool> = texts.iter().map(|t| t[0] == *value).collect();
                    BooleanChunked::from_slice("filter".into(), &matches)
                }
            };
            keep = &keep & &matches;
        }
        if keep.all() {
            // Every row passes (the usual case): the frame's columns are shared, not copied; a
            // report asks for it once per table and curve, and the list columns are large.
            return Ok(self.frame.clone());
        }
        self.frame.filter(&keep).map_err(anyhow::Error::from).with_context(context)
    }

    /// The value of `keys` in each row of `frame` (taken from these rows), as text (null: `–`), for
    /// grouping and display. A key is a column, or a configuration field by its dotted path.
    pub fn key_strings(&self, frame: &DataFrame, keys: &[String]) -> Result<Vec<Vec<String>>> {
        let config = self.config_ids(frame)?;
        let mut columns: Vec<Box<dyn Fn(usize) -> String + '_>> = Vec::with_capacity(keys.len());
        for k in keys {
            if let Ok(column) = frame.column(k.as_str()) {
                let c = column.cast(&DataType::String)?.str()?.clone();
                columns.push(Box::new(move |i| c.get(i).unwrap_or("–").to_string()));
            } else if let Some(f) = self.fields.iter().position(|f| f == k) {
                let config = &config;
                let configs = &self.configs;
                columns.push(Box::new(move |i| configs[config[i]][f].clone()));
            } else if RunSpec::field_paths().contains(k) {
                columns.push(Box::new(|_| ABSENT.to_string()));
            } else {
                bail!("unknown column `{k}` in the result rows");
            }
        }
        Ok((0..frame.height()).map(|i| columns.iter().map(|c| c(i)).collect()).collect())
    }

    /// Each row's configuration id (an index into `configs`).
    pub fn config_ids(&self, frame: &DataFrame) -> Result<Vec<usize>> {
        let ids = frame.column(CONFIG_COLUMN)?.u32()?.clone();
        Ok(ids.iter().map(|i| i.unwrap_or(0) as usize).collect())
    }

    /// Each row's file.
    pub fn files(&self, frame: &DataFrame) -> Result<Vec<String>> {
        let files = frame.column(FILE_COLUMN)?.str()?.clone();
        Ok(files.iter().map(|f| f.unwrap_or("?").to_string()).collect())
    }

    /// How `query` lays `frame`'s rows (already filtered) out: which fields it holds fixed,
    /// which split its cells (returned in the query's `split`), which differ between cells.
    pub fn layout(&self, frame: &DataFrame, query: &TableQuery) -> Result<(TableQuery, Layout)> {
        let keys = query.keys();
        let key_values = self.key_strings(frame, &keys)?;
        let config = self.config_ids(frame)?;
        let mut per_cell: std::collections::HashMap<&[String], BTreeSet<usize>> = Default::default();
        for (key, &c) in key_values.iter().zip(&config) {
            per_cell.entry(key.as_slice()).or_default().insert(c);
        }
        let mut varies_in_a_cell = vec![false; self.fields.len()];
        for ids in per_cell.values().filter(|ids| ids.len() > 1) {
            let first = &self.configs[*ids.first().expect("non-empty")];
            for id in ids {
                for (f, v) in self.configs[*id].iter().enumerate() {
                    varies_in_a_cell[f] |= *v != first[f];
                }
            }
        }
        let in_table: BTreeSet<usize> = config.iter().copied().collect();
        let key_fields: Vec<&str> = keys.iter().flat_map(|k| configuration::fields_of_column(k)).collect();
        let values_of = |field: &str| -> Vec<String> {
            let Some(f) = self.fields.iter().position(|n| n == field) else { return Vec::new() };
            in_table.iter().map(|&c| self.configs[c][f].clone()).collect::<BTreeSet<_>>().into_iter().collect()
        };
        let facts = configuration::TableFacts { priors: values_of("prior"), methods: values_of("method"), metric: query.metric.clone() };
        let mut query = query.clone();
        let mut layout = Layout::default();
        for (f, name) in self.fields.iter().enumerate() {
            let values: BTreeSet<&String> = in_table.iter().map(|&c| &self.configs[c][f]).collect();
            let mut values: Vec<String> = values.into_iter().cloned().collect();
            values.sort_by_key(|v| sort_key(std::slice::from_ref(v)));
            if varies_in_a_cell[f] {
                query.split.push(name.clone());
                layout.split.push((name.clone(), values));
            } else if values.len() == 1 {
                // A key's single value is in the table's headers already.
                if !key_fields.contains(&name.as_str()) {
                    let field = (name.clone(), values.pop().expect("one"));
                    if query.verbose || configuration::worth_listing(name, &field.1, &facts) {
                        layout.fixed.push(field)
                    } else {
                        layout.fixed_unused.push(field)
                    }
                }
            } else if values.len() > 1 && !key_fields.contains(&name.as_str()) {
                layout.between.push((name.clone(), values));
            }
        }
        // Fields split on an earlier pass (a query reused from a table) still say so.
        for name in &query.split {
            if !layout.split.iter().any(|(n, _)| n == name)
                && let Some(f) = self.fields.iter().position(|f| f == name)
            {
                let mut values: Vec<String> = in_table.iter().map(|&c| self.configs[c][f].clone()).collect::<BTreeSet<_>>().into_iter().collect();
                values.sort_by_key(|v| sort_key(std::slice::from_ref(v)));
                layout.split.push((name.clone(), values));
            }
        }
        Ok((query, layout))
    }
}

/// Rows of `frame` whose `column`, read as text, is `value` (null is no value).
pub fn equals(frame: &DataFrame, column: &str, value: &str) -> Result<BooleanChunked> {
    let text = frame.column(column)?.cast(&DataType::String)?;
    Ok(text.str()?.equal(value).fill_null_with_values(false)?)
}

/// The value of frame columns `keys` in each row, as text (null: `–`).
pub fn column_strings(frame: &DataFrame, keys: &[String]) -> Result<Vec<Vec<String>>> {
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

/// The table of `query` over rows already read (they must hold `query.columns()`). Cells are
/// split by any field that varies inside one (see `Rows::layout`).
pub fn tabulate(rows: &Rows, query: &TableQuery) -> Result<Table> {
    let frame = rows.selected(&query.filters)?;
    let (query, layout) = rows.layout(&frame, query)?;
    let keys = query.keys();
    let key_values = rows.key_strings(&frame, &keys)?;
    let seeds = seeds(&frame)?;
    let metric = frame.column(query.metric.as_str())?.cast(&DataType::Float64)?;
    let metric = metric.f64()?;
    let split = query.row_names().len();
    let files = rows.files(&frame)?;
    let mut groups: std::collections::HashMap<Vec<String>, Vec<(i64, f64)>> = Default::default();
    let mut unmeasured_files = Vec::new();
    for (i, key) in key_values.into_iter().enumerate() {
        // A row without a finite value of the metric is no run of this table: it is named, never
        // averaged in (a NaN would turn its cell into NaN) nor dropped unsaid.
        match metric.get(i) {
            Some(value) if value.is_finite() => groups.entry(key).or_default().push((seeds[i], value)),
            _ => unmeasured_files.push(files[i].clone()),
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
    name_unmeasured(&query.metric, &unmeasured_files);
    let mut cells = vec![vec![None; col_keys.len()]; row_keys.len()];
    let mut runs = 0;
    for (key, values) in groups {
        let r = row_keys.iter().position(|k| k[..] == key[..split]).expect("row key collected");
        let c = col_keys.iter().position(|k| k[..] == key[split..]).expect("col key collected");
        runs += values.len();
        cells[r][c] = Some(Cell::from_runs(values));
    }
    Ok(Table {
        query,
        layout,
        published: PublishedCells::default(),
        duplicates: rows.duplicates.len(),
        row_keys,
        col_keys,
        cells,
        runs,
        failed: rows.failed,
        unmeasured: unmeasured_files.len(),
        unmeasured_files,
        skipped: rows.skipped.clone(),
    })
}

/// Names on stderr, once per process, each row file left out of a table of `metric` for want of
/// a value (every output then counts them in its caption, as "named on stderr").
fn name_unmeasured(metric: &str, files: &[String]) {
    static NAMED: std::sync::Mutex<BTreeSet<(String, String)>> = std::sync::Mutex::new(BTreeSet::new());
    let mut named = NAMED.lock().unwrap_or_else(|e| e.into_inner());
    for file in files {
        if named.insert((metric.to_string(), file.clone())) {
            let why = match metric {
                "linear_top1" | "linear_epochs" | "linear_lr" => " (not evaluated yet: `gps eval linear`)",
                _ => " (a row written before gps recorded it, or not a finite number)",
            };
            eprintln!("warning: {file} has no value of `{metric}`{why}; left out of the table");
        }
    }
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
    query.cols.push(METRIC_KEY.into());
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
    let mut unmeasured_files: Vec<String> = tables.iter().flat_map(|t| t.unmeasured_files.iter().cloned()).collect();
    unmeasured_files.sort();
    unmeasured_files.dedup();
    let unmeasured = unmeasured_files.len();
    Ok(Table {
        query,
        layout: first.layout.clone(),
        published: PublishedCells::default(),
        duplicates: first.duplicates,
        row_keys,
        col_keys,
        cells,
        runs,
        failed: first.failed,
        unmeasured,
        unmeasured_files,
        skipped: first.skipped.clone(),
    })
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
