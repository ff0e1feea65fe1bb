//! A `Table` as Markdown (stdout), LaTeX (booktabs) or CSV (one line per cell, for other tools).
//! Accuracies are percentages with two decimals; the best cell of each column is bold.

use super::table::{Cell, Table, higher_is_better, is_fraction};

/// Header text of a column key: the `none` prior reads `baseline`, any other prior `GPS <prior>`.
fn col_title(table: &Table, key: &[String]) -> String {
    table
        .query
        .cols
        .iter()
        .zip(key)
        .map(|(name, value)| match (name.as_str(), value.as_str()) {
            ("prior", "none") => "baseline".to_string(),
            ("prior", p) => format!("GPS {p}"),
            ("k" | "seed" | "epochs", v) => format!("{name}={v}"),
            ("metric", m) => format!("({m})"),
            (_, v) => v.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn scale(table: &Table) -> f64 {
    if is_fraction(&table.query.metric) { 100.0 } else { 1.0 }
}

/// Index of the best row in each column; none where the column has fewer than two cells (a lone
/// number in bold would claim a comparison that was not made).
fn best_rows(table: &Table) -> Vec<Option<usize>> {
    let higher = higher_is_better(&table.query.metric);
    (0..table.col_keys.len())
        .map(|c| {
            if table.cells.iter().filter(|row| row[c].is_some()).count() < 2 {
                return None;
            }
            let mut best: Option<(usize, f64)> = None;
            for (r, row) in table.cells.iter().enumerate() {
                if let Some(cell) = row[c] {
                    let better = best.is_none_or(|(_, b)| if higher { cell.mean > b } else { cell.mean < b });
                    if better {
                        best = Some((r, cell.mean));
                    }
                }
            }
            best.map(|(r, _)| r)
        })
        .collect()
}

fn number(table: &Table, cell: &Cell, pm: &str) -> String {
    let s = scale(table);
    match cell.std {
        Some(std) => format!("{:.2}{pm}{:.2}", cell.mean * s, std * s),
        None => format!("{:.2}", cell.mean * s),
    }
}

/// The metric, or the metrics of a side-by-side table (the last entry of its column keys).
fn metrics(table: &Table) -> String {
    if table.query.cols.last().is_some_and(|c| c == "metric") {
        let mut names: Vec<&str> = Vec::new();
        for key in &table.col_keys {
            let m = key.last().map(String::as_str).unwrap_or("");
            if !names.contains(&m) {
                names.push(m);
            }
        }
        return names.join(" | ");
    }
    table.query.metric.clone()
}

fn caption(table: &Table) -> String {
    let unit = if is_fraction(&table.query.metric) { "%, " } else { "" };
    let filters: Vec<String> = table.query.filters.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!(
        "{} ({unit}mean ± std over seeds, n runs); best per column in bold; {} runs{}{}{}",
        metrics(table),
        table.runs,
        if filters.is_empty() { String::new() } else { format!(" where {}", filters.join(", ")) },
        if table.failed > 0 { format!("; {} failed runs not shown (see `gps sweep status`)", table.failed) } else { String::new() },
        if table.skipped.is_empty() { String::new() } else { format!("; {} unreadable row files skipped (named on stderr)", table.skipped.len()) }
    )
}

pub fn markdown(table: &Table) -> String {
    let best = best_rows(table);
    let mut out = format!("{}\n\n", caption(table));
    let mut header: Vec<String> = table.query.rows.clone();
    header.extend(table.col_keys.iter().map(|k| col_title(table, k)));
    out.push_str(&format!("| {} |\n", header.join(" | ")));
    let aligns: Vec<&str> = header.iter().enumerate().map(|(i, _)| if i < table.query.rows.len() { "---" } else { "---:" }).collect();
    out.push_str(&format!("|{}|\n", aligns.join("|")));
    for (r, key) in table.row_keys.iter().enumerate() {
        let mut cells: Vec<String> = key.clone();
        for (c, cell) in table.cells[r].iter().enumerate() {
            cells.push(match cell {
                None => "–".into(),
                Some(cell) => {
                    let text = format!("{} (n={})", number(table, cell, " ± "), cell.n);
                    if best[c] == Some(r) { format!("**{text}**") } else { text }
                }
            });
        }
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out
}

fn tex_escape(s: &str) -> String {
    let mut out = String::new();
    for ch in s.chars() {
        match ch {
            '_' | '&' | '%' | '#' | '$' | '{' | '}' => {
                out.push('\\');
                out.push(ch);
            }
            '~' => out.push_str(r"\textasciitilde{}"),
            '^' => out.push_str(r"\textasciicircum{}"),
            '\\' => out.push_str(r"\textbackslash{}"),
            c => out.push(c),
        }
    }
    out
}

pub fn latex(table: &Table) -> String {
    let best = best_rows(table);
    let nrow = table.query.rows.len();
    let mut out = format!("% {}\n", caption(table));
    out.push_str(&format!("\\begin{{tabular}}{{{}{}}}\n\\toprule\n", "l".repeat(nrow), "r".repeat(table.col_keys.len())));
    let mut header: Vec<String> = table.query.rows.iter().map(|h| tex_escape(h)).collect();
    header.extend(table.col_keys.iter().map(|k| tex_escape(&col_title(table, k))));
    out.push_str(&format!("{} \\\\\n\\midrule\n", header.join(" & ")));
    for (r, key) in table.row_keys.iter().enumerate() {
        let mut cells: Vec<String> = key.iter().map(|k| tex_escape(k)).collect();
        for (c, cell) in table.cells[r].iter().enumerate() {
            cells.push(match cell {
                None => "--".into(),
                Some(cell) => {
                    let text = number(table, cell, r" \pm ");
                    if best[c] == Some(r) { format!(r"$\mathbf{{{text}}}$") } else { format!("${text}$") }
                }
            });
        }
        out.push_str(&format!("{} \\\\\n", cells.join(" & ")));
    }
    out.push_str("\\bottomrule\n\\end{tabular}\n");
    out
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

/// One line per cell: the keys, then mean, std and n (in the metric's own unit, not percent).
pub fn csv(table: &Table) -> String {
    let mut header: Vec<String> = table.query.rows.iter().chain(&table.query.cols).cloned().collect();
    header.extend(["mean".into(), "std".into(), "n".into()]);
    let mut out = format!("{}\n", header.iter().map(|h| csv_field(h)).collect::<Vec<_>>().join(","));
    for (r, rkey) in table.row_keys.iter().enumerate() {
        for (c, ckey) in table.col_keys.iter().enumerate() {
            let Some(cell) = table.cells[r][c] else { continue };
            let mut fields: Vec<String> = rkey.iter().chain(ckey).map(|k| csv_field(k)).collect();
            fields.push(cell.mean.to_string());
            fields.push(cell.std.map(|s| s.to_string()).unwrap_or_default());
            fields.push(cell.n.to_string());
            out.push_str(&format!("{}\n", fields.join(",")));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::table::TableQuery;

    fn cell(mean: f64) -> Option<Cell> {
        Some(Cell { mean, std: None, n: 1 })
    }

    #[test]
    fn bold_marks_the_best_of_two_or_more_never_a_lone_cell() {
        let table = Table {
            query: TableQuery { rows: vec!["method".into()], cols: vec!["prior".into()], metric: "probe_top1_best".into(), filters: vec![] },
            row_keys: vec![vec!["byol".into()], vec!["simclr".into()]],
            col_keys: vec![vec!["none".into()], vec!["pixels".into()]],
            cells: vec![vec![cell(0.6), None], vec![cell(0.4), cell(0.85)]],
            runs: 3,
            failed: 0,
            skipped: vec![],
        };
        let md = markdown(&table);
        assert!(md.contains("| byol | **60.00 (n=1)** | – |"), "{md}");
        assert!(md.contains("| simclr | 40.00 (n=1) | 85.00 (n=1) |"), "{md}");
    }

    #[test]
    fn metrics_side_by_side_share_the_rows() {
        let table = |metric: &str, rows: Vec<&str>, cells: Vec<Vec<Option<Cell>>>| Table {
            query: TableQuery { rows: vec!["method".into()], cols: vec!["prior".into()], metric: metric.into(), filters: vec![] },
            row_keys: rows.into_iter().map(|r| vec![r.to_string()]).collect(),
            col_keys: vec![vec!["none".into()]],
            cells,
            runs: 2,
            failed: 1,
            skipped: vec![],
        };
        let probe = table("probe_top1_last", vec!["byol", "simclr"], vec![vec![cell(0.5)], vec![cell(0.4)]]);
        let linear = table("linear_top1", vec!["simclr"], vec![vec![cell(0.7)]]);
        let both = crate::results::table::side_by_side(vec![probe, linear]).unwrap();
        let md = markdown(&both);
        assert!(md.starts_with("probe_top1_last | linear_top1 (%, mean ± std"), "{md}");
        assert!(md.contains("| method | baseline (probe_top1_last) | baseline (linear_top1) |"), "{md}");
        assert!(md.contains("| byol | **50.00 (n=1)** | – |") && md.contains("| simclr | 40.00 (n=1) | 70.00 (n=1) |"), "{md}");
        let loss = table("final_loss", vec!["byol"], vec![vec![cell(3.0)]]);
        let mixed = crate::results::table::side_by_side(vec![both, loss]);
        assert!(mixed.is_err());
    }
}
