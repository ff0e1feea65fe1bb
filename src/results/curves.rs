//! Learning curves from the per-epoch list columns (`epoch_probe_top1`, `epoch_losses`,
//! `epoch_rankme`, ...): per table cell, the mean over its runs at each epoch with the min–max
//! band, so a reader sees how training went, not only where it ended.

use super::table::{Layout, Rows, TableQuery, sort_key};
use anyhow::Result;
use polars::prelude::*;
use std::collections::BTreeMap;

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
    let frame = rows.selected(&query.filters)?;
    let (query, layout) = rows.layout(&frame, query)?;
    let key_values = rows.key_strings(&frame, &query.keys())?;
    let lists = frame.column(column)?.cast(&DataType::List(Box::new(DataType::Float64)))?;
    let lists = lists.list()?;
    let mut cells: BTreeMap<(Vec<String>, Vec<String>), Vec<Vec<f64>>> = BTreeMap::new();
    for (key, list) in key_values.into_iter().zip(lists.amortized_iter()) {
        let Some(list) = list else { continue };
        let values: Vec<f64> = list.as_ref().f64()?.iter().map(|v| v.unwrap_or(f64::NAN)).collect();
        if values.iter().any(|v| v.is_finite()) {
            let (r, c) = key.split_at(query.row_names().len());
            cells.entry((r.to_vec(), c.to_vec())).or_default().push(values);
        }
    }
    let mut panels: Vec<Panel> = Vec::new();
    let mut col_keys: Vec<Vec<String>> = Vec::new();
    let mut ordered: Vec<_> = cells.into_iter().collect();
    ordered.sort_by_key(|((r, c), _)| (sort_key(r), sort_key(c)));
    for ((row_key, col_key), runs) in ordered {
        let epochs = runs.iter().map(|r| r.len()).max().unwrap_or(0);
        let points = (0..epochs)
            .filter_map(|e| {
                let values: Vec<f64> = runs.iter().filter_map(|r| r.get(e).copied()).filter(|v| v.is_finite()).collect();
                (!values.is_empty()).then(|| Point {
                    epoch: e + 1,
                    mean: values.iter().sum::<f64>() / values.len() as f64,
                    min: values.iter().copied().fold(f64::INFINITY, f64::min),
                    max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                    n: values.len(),
                })
            })
            .collect();
        if !col_keys.contains(&col_key) {
            col_keys.push(col_key.clone());
        }
        let curve = Curve { col_key, runs: runs.len(), points };
        match panels.last_mut() {
            Some(p) if p.row_key == row_key => p.curves.push(curve),
            _ => panels.push(Panel { row_key, curves: vec![curve] }),
        }
    }
    col_keys.sort_by_key(|k| sort_key(k));
    Ok(Curves { column: column.to_string(), query, layout, panels, col_keys })
}
