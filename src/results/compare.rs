//! `--compare COLUMN[=REFERENCE]`: each cell of a table against the cell that differs from it
//! only in COLUMN, where COLUMN takes the reference value (`none` for the prior: GPS against
//! the baseline): the difference of the means with its 95% confidence interval and n.

use super::stats::{self, Difference};
use super::table::{Cell, Table, sort_key};
use anyhow::{Result, bail};

/// What `--compare` asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct CompareQuery {
    pub column: String,
    /// None: the first value in the table's order (`none` for the prior, the smallest k).
    pub reference: Option<String>,
}

impl CompareQuery {
    /// `prior`, `k=5`, `augmentation=weak`.
    pub fn parse(text: &str) -> Result<CompareQuery> {
        let (column, reference) = match text.split_once('=') {
            Some((c, r)) => (c.trim(), Some(r.trim().to_string())),
            None => (text.trim(), None),
        };
        if column.is_empty() || reference.as_deref() == Some("") {
            bail!("--compare {text:?}: expected COLUMN or COLUMN=REFERENCE, e.g. --compare prior or --compare k=5");
        }
        Ok(CompareQuery { column: column.to_string(), reference })
    }
}

/// One compared cell: its key (row keys then column keys, as in the table), its runs, the
/// reference cell's runs and the difference.
#[derive(Debug, Clone)]
pub struct CompareLine {
    pub key: Vec<String>,
    pub cell: Cell,
    pub reference: Cell,
    pub diff: Difference,
    /// The published values of the cell and of its reference, where both are published.
    pub published: Option<(f64, f64)>,
}

#[derive(Debug, Clone)]
pub struct Comparison {
    /// The table the cells come from.
    pub table: Table,
    pub column: String,
    pub reference: String,
    pub lines: Vec<CompareLine>,
    /// Cells with no reference cell beside them (nothing to compare against).
    pub unpaired: usize,
}

impl Comparison {
    /// Index of the compared column in a line's key.
    pub fn column_index(&self) -> usize {
        self.table.query.keys().iter().position(|k| *k == self.column).expect("the compared column is a key")
    }
}

/// Compares every cell of `table` against its reference cell. `table` must have
/// `query.column` among its row or column keys.
pub fn compare(table: &Table, query: &CompareQuery) -> Result<Comparison> {
    let keys = table.query.keys();
    let Some(index) = keys.iter().position(|k| *k == query.column) else {
        bail!("--compare {}: the column is not a key of the table (rows: {}, cols: {})", query.column, table.query.rows.join(","), table.query.cols.join(","));
    };
    let mut cells: Vec<(Vec<String>, &Cell, Option<f64>)> = Vec::new();
    for (r, row_key) in table.row_keys.iter().enumerate() {
        for (c, col_key) in table.col_keys.iter().enumerate() {
            if let Some(cell) = &table.cells[r][c] {
                cells.push((row_key.iter().chain(col_key).cloned().collect(), cell, table.published.get(r, c).map(|p| p.0)));
            }
        }
    }
    let mut values: Vec<&String> = cells.iter().map(|(k, _, _)| &k[index]).collect();
    values.sort_by_key(|v| sort_key(std::slice::from_ref(*v)));
    values.dedup();
    let reference = match &query.reference {
        Some(r) => {
            if !values.contains(&r) {
                let listed: Vec<&str> = values.iter().map(|v| v.as_str()).collect();
                bail!("--compare {}={r}: no finished run has {} = {r}; its values here: {}", query.column, query.column, listed.join(", "));
            }
            r.clone()
        }
        None => match values.first() {
            Some(v) => (*v).clone(),
            None => bail!("--compare {}: the table is empty", query.column),
        },
    };
    if values.len() < 2 {
        bail!("--compare {}: every run has {} = {reference}; there is nothing to compare against", query.column, query.column);
    }
    let mut lines = Vec::new();
    let mut unpaired = 0;
    for (key, cell, published) in &cells {
        if key[index] == reference {
            continue;
        }
        let mut ref_key = key.clone();
        ref_key[index] = reference.clone();
        match cells.iter().find(|(k, _, _)| *k == ref_key) {
            Some((_, ref_cell, ref_published)) => lines.push(CompareLine {
                key: key.clone(),
                cell: (*cell).clone(),
                reference: (*ref_cell).clone(),
                diff: stats::difference(&cell.runs, &ref_cell.runs),
                published: published.zip(*ref_published),
            }),
            None => unpaired += 1,
        }
    }
    Ok(Comparison { table: table.clone(), column: query.column.clone(), reference, lines, unpaired })
}
