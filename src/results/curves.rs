//! Learning curves from the per-epoch list columns (`epoch_probe_top1`, `epoch_losses`,
//! `epoch_rankme`, ...): per table cell, the mean over its runs at each epoch with the min–max
//! band, so a reader sees how training went, not only where it ended.

use super::table::{Layout, Rows, TableQuery, sort_key};
use anyhow::{Context, Result};
use polars::prelude::*;

/// The list columns that hold one value per epoch: (column, axis label, what it is).
pub const CURVE_COLUMNS: [(&str, &str, &str); 5] = [
    ("epoch_probe_top1", "probe top-1 (%)", "online linear probe top-1 on the test split"),
    ("epoch_losses", "SSL loss", "training loss (the method's own SSL loss, mean over the epoch's steps)"),
    ("epoch_rankme", "RankMe (effective rank)", "RankMe, the effective rank of the test-set backbone features (low: collapse onto few directions)"),
    ("epoch_alignment", "alignment (lower: closer)", "alignment, the mean squared distance between the two views of training positives (normalised features)"),
    (
        "epoch_uniformity",
        "uniformity (lower: more spread)",
        "uniformity, the log mean Gaussian potential between normalised features (lower: more evenly spread)",
    ),
];

/// The axis label of a list column.
pub fn axis_label(column: &str) -> &str {
    CURVE_COLUMNS.iter().find(|(c, _, _)| *c == column).map(|(_, l, _)| *l).unwrap_or(column)
}

/// Stored as fractions, shown in percent.
pub fn is_fraction_list(column: &str) -> bool {
    column == "epoch_probe_top1"
}

/// One epoch of one curve (epochs count from 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub epoch: usize,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
    /// Runs with a value at this epoch.
    pub n: usize,
}

/// One table cell's curve.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    /// The cell's column key (`cifar10`, `none`), shown in the legend.
    pub col_key: Vec<String>,
    /// Runs in the cell.
    pub runs: usize,
    pub points: Vec<Point>,
}

/// One table row's curves, drawn in one panel (baseline and GPS side by side there).
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    pub row_key: Vec<String>,
    pub curves: Vec<Curve>,
}

#[derive(Debug, Clone)]
pub struct Curves {
    /// The list column.
    pub column: String,
    /// The query with the fields that split its cells (`TableQuery::split`).
    pub query: TableQuery,
    pub layout: Layout,
    pub panels: Vec<Panel>,
    /// Every column key that has a curve, in order: one colour each, the same in every panel.
    pub col_keys: Vec<Vec<String>>,
}

/// The curves of `column` for the rows and columns of `query` (its metric is ignored); `rows`
/// must hold the keys, the filters and `column`. Epochs without a finite value in any run of a
/// cell (not evaluated) are left out of its curve.
pub fn curves(rows: &Rows, query: &TableQuery, column: &str) -> Result<Curves> {
    curves_of(rows, query, &[column])?.pop().context("one column asked, one set of curves")
}

/// `curves` of several list columns (a report draws all five): the rows' cells, which cost more
/// than the folding, are worked out once for all of them.
pub fn curves_of(rows: &Rows, query: &TableQuery, columns: &[&str]) -> Result<Vec<Curves>> {
    let frame = rows.selected(&query.filters)?;
    let (query, layout) = rows.layout(&frame, query)?;
    let key_values = rows.key_strings(&frame, &query.keys())?;
    columns.iter().map(|column| fold_column(&frame, &query, &layout, &key_values, column)).collect()
}

/// The curves of `column` of `frame`, whose rows have the cell keys `key_values` of `query`.
fn fold_column(frame: &DataFrame, query: &TableQuery, layout: &Layout, key_values: &[Vec<String>], column: &str) -> Result<Curves> {
    let lists = frame.column(column)?.cast(&DataType::List(Box::new(DataType::Float64)))?;
    let lists = lists.list()?.rechunk();
    let split = query.row_names().len();
    // Each cell's runs are folded in as they come, epoch by epoch (a report has millions of
    // values: no list per run, no list per epoch), in row order, as a sum over the runs would.
    let mut cells: std::collections::HashMap<Vec<String>, Epochs> = Default::default();
    let mut fold = |key: &[String], run: &[f64]| {
        if run.iter().any(|v| v.is_finite()) {
            match cells.get_mut(key) {
                Some(cell) => cell.add(run),
                None => cells.entry(key.to_vec()).or_default().add(run),
            }
        }
    };
    let inner = lists.get_inner();
    match inner.f64()?.cont_slice() {
        // The usual column: one array of values without nulls (an epoch without a value holds
        // NaN), each run's list a slice of it.
        Ok(values) => {
            let offsets: &[i64] = lists.downcast_as_array().offsets();
            let absent = lists.is_null();
            for ((i, key), ends) in key_values.iter().enumerate().zip(offsets.windows(2)) {
                if absent.get(i) != Some(true) {
                    fold(key, values.get(ends[0] as usize..ends[1] as usize).unwrap_or_default());
                }
            }
        }
        Err(_) => {
            for (key, list) in key_values.iter().zip(lists.amortized_iter()) {
                let Some(list) = list else { continue };
                let run: Vec<f64> = list.as_ref().f64()?.iter().map(|v| v.unwrap_or(f64::NAN)).collect();
                fold(key, &run);
            }
        }
    }
    let mut panels: Vec<Panel> = Vec::new();
    let mut col_keys: Vec<Vec<String>> = Vec::new();
    let mut ordered: Vec<(_, Epochs)> = cells
        .into_iter()
        .map(|(mut key, epochs)| {
            let col_key = key.split_off(split);
            ((key, col_key), epochs)
        })
        .collect();
    ordered.sort_by_key(|((r, c), _)| (sort_key(r), sort_key(c)));
    for ((row_key, col_key), epochs) in ordered {
        let points = epochs
            .at
            .iter()
            .enumerate()
            .filter(|(_, e)| e.n > 0)
            .map(|(e, at)| Point { epoch: e + 1, mean: at.sum / at.n as f64, min: at.min, max: at.max, n: at.n })
            .collect();
        if !col_keys.contains(&col_key) {
            col_keys.push(col_key.clone());
        }
        let curve = Curve { col_key, runs: epochs.runs, points };
        match panels.last_mut() {
            Some(p) if p.row_key == row_key => p.curves.push(curve),
            _ => panels.push(Panel { row_key, curves: vec![curve] }),
        }
    }
    col_keys.sort_by_key(|k| sort_key(k));
    Ok(Curves { column: column.to_string(), query: query.clone(), layout: layout.clone(), panels, col_keys })
}

/// One cell's runs folded together: per epoch, the sum, lowest, highest and count of the runs'
/// finite values (an epoch without one was not evaluated).
#[derive(Default)]
struct Epochs {
    runs: usize,
    at: Vec<Fold>,
}

#[derive(Clone, Copy)]
struct Fold {
    sum: f64,
    min: f64,
    max: f64,
    n: usize,
}

impl Epochs {
    fn add(&mut self, run: &[f64]) {
        self.runs += 1;
        if self.at.len() < run.len() {
            // -0.0: what an f64 sum starts from, so the means match `Iterator::sum` to the bit.
            self.at.resize(run.len(), Fold { sum: -0.0, min: f64::INFINITY, max: f64::NEG_INFINITY, n: 0 });
        }
        for (at, &v) in self.at.iter_mut().zip(run) {
            if v.is_finite() {
                at.sum += v;
                at.min = at.min.min(v);
                at.max = at.max.max(v);
                at.n += 1;
            }
        }
    }
}
