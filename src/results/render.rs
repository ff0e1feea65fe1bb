//! A `Table` or a `Comparison` as Markdown (stdout), LaTeX (booktabs) or CSV (one line per cell,
//! for other tools). Accuracies are percentages with two decimals. The best cell of each column
//! is bold, marked † when the runner-up is within noise of it; a difference is bold when its 95%
//! confidence interval excludes 0.

use super::compare::Comparison;
use super::stats::{self, Difference};
use super::table::{Cell, Layout, METRIC_KEY, Table, higher_is_better, is_fraction};

/// How a key value reads in a header: the `none` prior is `baseline`, any other `GPS <prior>`.
pub fn value_title(name: &str, value: &str) -> String {
    match (name, value) {
        ("prior", "none") => "baseline".to_string(),
        ("prior", p) => format!("GPS {p}"),
        ("k" | "seed" | "epochs", v) => format!("{name}={v}"),
        (METRIC_KEY, m) => format!("({m})"),
        (_, v) => v.to_string(),
    }
}

/// Header text of a key: its values' titles, in order.
pub fn key_title(names: &[String], key: &[String]) -> String {
    names.iter().zip(key).map(|(name, value)| value_title(name, value)).collect::<Vec<_>>().join(" ")
}

/// Text of a row key where it is not under its columns' headers (a plot's legend, a panel's
/// title): the asked keys' values, then each split field as `name=value`.
pub fn row_title(query: &super::table::TableQuery, key: &[String]) -> String {
    let names = query.row_names();
    key.iter().zip(&names).enumerate().map(|(i, (v, n))| if i < query.rows.len() { v.clone() } else { format!("{n}={v}") }).collect::<Vec<_>>().join(" ")
}

/// Header text of a column key.
pub fn col_title(table: &Table, key: &[String]) -> String {
    key_title(&table.query.cols, key)
}

pub fn scale(metric: &str) -> f64 {
    if is_fraction(metric) { 100.0 } else { 1.0 }
}

/// The best cell of a column and whether it is clearly best.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Best {
    pub row: usize,
    /// False when the runner-up is within noise: the 95% CI of best − runner-up includes 0 (or
    /// a side has a single run, so there is no interval).
    pub clear: bool,
}

/// The best row of each column; none where the column has fewer than two cells (a lone number
/// in bold would claim a comparison that was not made).
pub fn best_rows(table: &Table) -> Vec<Option<Best>> {
    let higher = higher_is_better(&table.query.metric);
    (0..table.col_keys.len())
        .map(|c| {
            let mut ranked: Vec<(usize, &Cell)> = table.cells.iter().enumerate().filter_map(|(r, row)| row[c].as_ref().map(|cell| (r, cell))).collect();
            if ranked.len() < 2 {
                return None;
            }
            ranked.sort_by(|a, b| if higher { b.1.mean.total_cmp(&a.1.mean) } else { a.1.mean.total_cmp(&b.1.mean) }.then(a.0.cmp(&b.0)));
            let (row, best) = ranked[0];
            let runner_up = ranked[1].1;
            Some(Best { row, clear: stats::difference(&best.runs, &runner_up.runs).excludes_zero() })
        })
        .collect()
}

/// Decimals for a value of this size: two for percentages and anything of order one or more,
/// three significant digits below (an alignment of 0.0031 must not read 0.00).
fn decimals(metric: &str, x: f64) -> usize {
    if is_fraction(metric) || x == 0.0 || !x.is_finite() { 2 } else { (2 - x.abs().log10().floor() as i64).clamp(2, 8) as usize }
}

fn number(metric: &str, cell: &Cell, pm: &str) -> String {
    let s = scale(metric);
    let d = decimals(metric, cell.mean * s);
    match cell.std {
        Some(std) => format!("{:.d$}{pm}{:.d$}", cell.mean * s, std * s),
        None => format!("{:.d$}", cell.mean * s),
    }
}

/// `60.00 ± 1.00 (n=3)`: the text of a cell in Markdown and HTML.
pub fn cell_text(metric: &str, cell: &Cell) -> String {
    format!("{} (n={})", number(metric, cell, " ± "), cell.n)
}

pub const NOISE_NOTE: &str = "†: the runner-up is within noise (the 95% CI of their difference includes 0, or a side has one run)";

/// The table's caption, as plain text.
pub fn caption(table: &Table) -> String {
    let unclear = best_rows(table).iter().flatten().any(|b| !b.clear);
    caption_with(table, &format!("; best per column in bold{}", if unclear { format!(", {NOISE_NOTE}") } else { String::new() }))
}

/// The caption of a table shown without a best cell (health measurements: a symptom, not a score).
pub fn caption_unranked(table: &Table) -> String {
    caption_with(table, "")
}

/// The metric, or the metrics of a side-by-side table (the last entry of its column keys).
fn metrics(table: &Table) -> String {
    if table.query.cols.last().is_some_and(|c| c == METRIC_KEY) {
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

/// What a table holds fixed and what else varies, one line each (as a paper's caption says what
/// its numbers share): the fields with one value over every run, the fields that split cells
/// (they varied inside a cell of the asked keys), the fields that differ between cells.
pub fn layout_notes(layout: &Layout) -> Vec<String> {
    let mut notes: Vec<String> = split_note(layout).into_iter().collect();
    if !layout.between.is_empty() {
        notes.push(format!("differs between cells, set with their keys: {}", field_values(&layout.between)));
    }
    notes.extend(fixed_note(layout));
    notes
}

/// `fixed: data: dataset.format=mnist-csv, ...; model: backbone=small-cnn; training: epochs=6, ...`:
/// the fields with one value over the table that shaped its cells, grouped by the part of the run
/// they belong to. Fields left at null (a default: "the method's", "none", "the crop size") are
/// not listed, nor fields that did not shape these cells (`--verbose` lists them).
pub fn fixed_note(layout: &Layout) -> Option<String> {
    let mut groups: Vec<(&str, Vec<String>)> = Vec::new();
    for (f, v) in layout.fixed.iter().filter(|(_, v)| v != "null") {
        let group = super::configuration::group_of(f);
        match groups.iter_mut().find(|(g, _)| *g == group) {
            Some((_, fields)) => fields.push(format!("{f}={v}")),
            None => groups.push((group, vec![format!("{f}={v}")])),
        }
    }
    if groups.is_empty() {
        return None;
    }
    let listed: Vec<String> =
        groups.iter().map(|(g, fields)| if *g == "numerics" { fields.join(", ") } else { format!("{g}: {}", fields.join(", ")) }).collect();
    let unlisted = layout.fixed_unused.len();
    let more = if unlisted > 0 { format!("; {unlisted} more, at their defaults or not shaping these cells, with --verbose") } else { String::new() };
    Some(format!("fixed: {} (fields left at null not listed{more})", listed.join("; ")))
}

fn field_values(fields: &[(String, Vec<String>)]) -> String {
    fields.iter().map(|(f, v)| format!("{f}: {}", v.join(", "))).collect::<Vec<_>>().join("; ")
}

/// `cells also split by epochs: 1, 6 (...)`, where fields varied inside a cell of the asked keys.
pub fn split_note(layout: &Layout) -> Option<String> {
    (!layout.split.is_empty()).then(|| {
        format!("cells also split by {} (they differ inside a cell of the asked rows and columns; a cell holds one configuration)", field_values(&layout.split))
    })
}

/// The caption and the layout notes as one paragraph (LaTeX `\caption`, HTML `<caption>`).
pub fn full_caption(caption: &str, layout: &Layout) -> String {
    std::iter::once(caption.to_string()).chain(layout_notes(layout)).collect::<Vec<_>>().join(". ")
}

/// The caption and the layout notes without what the table holds fixed: the HTML page says that
/// once, above its first table, rather than above each of its tables.
pub fn page_caption(caption: &str, layout: &Layout) -> String {
    let notes = split_note(layout)
        .into_iter()
        .chain((!layout.between.is_empty()).then(|| format!("differs between cells, set with their keys: {}", field_values(&layout.between))));
    std::iter::once(caption.to_string()).chain(notes).collect::<Vec<_>>().join(". ")
}

/// The caption, then the layout notes, one per line (Markdown, and `# ` lines in CSV).
fn caption_lines(caption: &str, layout: &Layout) -> Vec<String> {
    std::iter::once(caption.to_string()).chain(layout_notes(layout)).collect()
}

fn caption_with(table: &Table, best: &str) -> String {
    let unit = if is_fraction(&table.query.metric) { "%, " } else { "" };
    let filters: Vec<String> = table.query.filters.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!(
        "{} ({unit}mean ± std over seeds, n runs of one configuration){best}; {} runs{}{}{}{}{}",
        metrics(table),
        table.runs,
        if filters.is_empty() { String::new() } else { format!(" where {}", filters.join(", ")) },
        unmeasured_note(table),
        if table.failed > 0 { format!("; {} failed runs not shown (see `gps sweep status`)", table.failed) } else { String::new() },
        if table.skipped.is_empty() { String::new() } else { format!("; {} unreadable row files skipped (named on stderr)", table.skipped.len()) },
        duplicates_note(table.duplicates)
    )
}

/// `; 2 finished runs have no value of linear_top1 and are left out (named on stderr)`.
pub fn unmeasured_note(table: &Table) -> String {
    match table.unmeasured {
        0 => String::new(),
        n => format!("; {n} finished runs have no value of {} and are left out (named on stderr)", metrics(table)),
    }
}

fn duplicates_note(duplicates: usize) -> String {
    match duplicates {
        0 => String::new(),
        n => format!("; {n} row files repeat a run already counted and are not counted again (named on stderr)"),
    }
}

/// The published value of cell (r, c) with its source's number and the measured mean's
/// difference to it: `37.51 [1] (Δ +1.23)`.
pub fn published_text(table: &Table, r: usize, c: usize) -> Option<String> {
    let (value, n) = table.published.get(r, c)?;
    let metric = &table.query.metric;
    let s = scale(metric);
    let d = decimals(metric, value * s);
    let delta = table.cells[r][c].as_ref().map(|cell| format!(" (Δ {})", signed((cell.mean - value) * s, d))).unwrap_or_default();
    Some(format!("{:.d$} [{}]{delta}", value * s, n + 1))
}

/// The header of a table's value columns: each column's title, and a `published` column after
/// each that has published numbers.
fn value_headers(table: &Table) -> Vec<String> {
    let mut header = Vec::new();
    for (c, key) in table.col_keys.iter().enumerate() {
        header.push(col_title(table, key));
        if table.published.in_column(c) {
            header.push(format!("{} published", col_title(table, key)));
        }
    }
    header
}

/// `[n] published: <source>` lines, one per source of the published numbers shown.
pub fn published_sources(table: &Table) -> Vec<String> {
    table.published.sources.iter().enumerate().map(|(i, s)| format!("[{}] published: {s}; Δ = measured mean − published", i + 1)).collect()
}

pub fn markdown(table: &Table) -> String {
    let best = best_rows(table);
    let mut out = format!("{}\n\n", caption_lines(&caption(table), &table.layout).join("\n"));
    let mut header: Vec<String> = table.query.row_names();
    let left = header.len();
    header.extend(value_headers(table));
    out.push_str(&markdown_header(&header, left));
    for (r, key) in table.row_keys.iter().enumerate() {
        let mut cells: Vec<String> = key.clone();
        for (c, cell) in table.cells[r].iter().enumerate() {
            cells.push(match cell {
                None => "–".into(),
                Some(cell) => {
                    let text = cell_text(&table.query.metric, cell);
                    match best[c] {
                        Some(b) if b.row == r => format!("**{text}**{}", if b.clear { "" } else { "†" }),
                        _ => text,
                    }
                }
            });
            if table.published.in_column(c) {
                cells.push(published_text(table, r, c).unwrap_or_else(|| "–".into()));
            }
        }
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    let sources = published_sources(table);
    if !sources.is_empty() {
        out.push_str(&format!("\n{}\n", sources.join("\n")));
    }
    out
}

/// The header and alignment lines: the first `left` columns left-aligned (keys), numbers right,
/// a last column named `test` (text) left.
fn markdown_header(header: &[String], left: usize) -> String {
    let last = header.len().saturating_sub(1);
    let aligns: Vec<&str> = (0..header.len()).map(|i| if i < left || (i == last && header[i] == "test") { "---" } else { "---:" }).collect();
    format!("| {} |\n|{}|\n", header.join(" | "), aligns.join("|"))
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
            '±' => out.push_str(r"$\pm$"),
            '†' => out.push_str(r"\textdagger{}"),
            '−' => out.push_str(r"$-$"),
            'Δ' => out.push_str(r"$\Delta$"),
            c => out.push(c),
        }
    }
    out
}

/// A booktabs table in a `table` float whose `\\caption` says what the numbers are and what the
/// table holds fixed.
fn latex_tabular(caption: &str, left: usize, header: &[String], lines: &[Vec<String>]) -> String {
    let mut out = format!("\\begin{{table}}[t]\n\\centering\n\\caption{{{}}}\n", tex_escape(caption));
    out.push_str(&format!("\\begin{{tabular}}{{{}{}}}\n\\toprule\n", "l".repeat(left), "r".repeat(header.len() - left)));
    out.push_str(&format!("{} \\\\\n\\midrule\n", header.join(" & ")));
    for line in lines {
        out.push_str(&format!("{} \\\\\n", line.join(" & ")));
    }
    out.push_str("\\bottomrule\n\\end{tabular}\n\\end{table}\n");
    out
}

pub fn latex(table: &Table) -> String {
    let best = best_rows(table);
    let nrow = table.query.row_names().len();
    let mut header: Vec<String> = table.query.row_names().iter().map(|h| tex_escape(h)).collect();
    header.extend(value_headers(table).iter().map(|h| tex_escape(h)));
    let mut lines = Vec::new();
    for (r, key) in table.row_keys.iter().enumerate() {
        let mut cells: Vec<String> = key.iter().map(|k| tex_escape(k)).collect();
        for (c, cell) in table.cells[r].iter().enumerate() {
            cells.push(match cell {
                None => "--".into(),
                Some(cell) => {
                    let text = number(&table.query.metric, cell, r" \pm ");
                    match best[c] {
                        Some(b) if b.row == r => format!(r"$\mathbf{{{text}}}{}$", if b.clear { "" } else { r"^{\dagger}" }),
                        _ => format!("${text}$"),
                    }
                }
            });
            if table.published.in_column(c) {
                cells.push(published_text(table, r, c).map(|t| tex_escape(&t)).unwrap_or_else(|| "--".into()));
            }
        }
        lines.push(cells);
    }
    let caption = std::iter::once(full_caption(&caption(table), &table.layout)).chain(published_sources(table)).collect::<Vec<_>>().join(". ");
    latex_tabular(&caption, nrow, &header, &lines)
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

fn csv_line(fields: &[String]) -> String {
    format!("{}\n", fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(","))
}

/// `# ` lines before a CSV header: the caption and the layout notes (pandas: `comment="#"`).
fn csv_comments(caption: &str, layout: &Layout) -> String {
    caption_lines(caption, layout).iter().map(|l| format!("# {}\n", l.replace('\n', " "))).collect()
}

/// One line per cell: the keys, then mean, std and n (in the metric's own unit, not percent),
/// after `# ` comment lines saying what the table holds fixed.
pub fn csv(table: &Table) -> String {
    let mut header: Vec<String> = table.query.keys();
    header.extend(["mean".into(), "std".into(), "n".into()]);
    let published = !table.published.is_empty();
    if published {
        header.extend(["published".into(), "published_delta".into(), "published_source".into()]);
    }
    let mut out = csv_comments(&caption(table), &table.layout);
    out.push_str(&csv_line(&header));
    for (r, rkey) in table.row_keys.iter().enumerate() {
        for (c, ckey) in table.col_keys.iter().enumerate() {
            let Some(cell) = &table.cells[r][c] else { continue };
            let mut fields: Vec<String> = rkey.iter().chain(ckey).cloned().collect();
            fields.extend([cell.mean.to_string(), cell.std.map(|s| s.to_string()).unwrap_or_default(), cell.n.to_string()]);
            if published {
                match table.published.get(r, c) {
                    Some((v, n)) => fields.extend([v.to_string(), (cell.mean - v).to_string(), table.published.sources[n].clone()]),
                    None => fields.extend([String::new(), String::new(), String::new()]),
                }
            }
            out.push_str(&csv_line(&fields));
        }
    }
    out
}

/// The unit of a difference: percentage points for accuracies.
fn delta_unit(metric: &str) -> &'static str {
    if is_fraction(metric) { " pp" } else { "" }
}

fn signed(x: f64, d: usize) -> String {
    if x > 0.0 {
        format!("+{x:.d$}")
    } else if x < 0.0 {
        format!("−{:.d$}", -x)
    } else {
        format!("{x:.d$}")
    }
}

/// The texts of a difference: Δ, its interval, and how it was tested with n.
pub fn difference_texts(metric: &str, d: &Difference) -> (String, String, String) {
    let s = scale(metric);
    let places = decimals(metric, d.delta * s);
    let signed = |x: f64| signed(x, places);
    let ci = match d.ci {
        Some((lo, hi)) => format!("[{}, {}]", signed(lo * s), signed(hi * s)),
        None if d.no_spread() => "none (every seed gave the same difference: no spread to size it)".to_string(),
        None => "none (one run on a side)".to_string(),
    };
    let test = match (d.test_name(), d.df) {
        ("welch", Some(df)) => format!("Welch, {}, df={df:.1}", d.n_label()),
        ("welch", None) => format!("Welch, {}", d.n_label()),
        (_, _) => format!("paired by seed, {}", d.n_label()),
    };
    (signed(d.delta * s), ci, test)
}

/// The comparison's caption, as plain text.
pub fn compare_caption(cmp: &Comparison) -> String {
    let metric = &cmp.table.query.metric;
    let unit = delta_unit(metric);
    let filters: Vec<String> = cmp.table.query.filters.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!(
        "{metric}: difference Δ of each cell against {} = {} ({}), Δ{unit} = mean − reference mean, with its {:.0}% confidence interval \
         (Student's t; paired by seed where both cells have the same seeds, Welch otherwise); bold: the interval excludes 0{}{}{}{}",
        cmp.column,
        cmp.reference,
        value_title(&cmp.column, &cmp.reference),
        100.0 * stats::CONFIDENCE,
        if filters.is_empty() { String::new() } else { format!("; where {}", filters.join(", ")) },
        if cmp.unpaired > 0 { format!("; {} cells have no reference cell and are not shown", cmp.unpaired) } else { String::new() },
        unmeasured_note(&cmp.table),
        duplicates_note(cmp.table.duplicates)
    )
}

/// The key columns of the comparison (every table key, the compared column last) and their
/// values in one line, as display text.
fn compare_keys(cmp: &Comparison) -> (Vec<String>, Vec<Vec<String>>) {
    let index = cmp.column_index();
    let keys = cmp.table.query.keys();
    let order: Vec<usize> = (0..keys.len()).filter(|&i| i != index).chain([index]).collect();
    let header = order.iter().map(|&i| keys[i].clone()).collect();
    let lines =
        cmp.lines.iter().map(|l| order.iter().map(|&i| if i == index { value_title(&cmp.column, &l.key[i]) } else { l.key[i].clone() }).collect()).collect();
    (header, lines)
}

pub fn compare_headers(cmp: &Comparison) -> Vec<String> {
    let unit = delta_unit(&cmp.table.query.metric);
    let mut h = vec![
        "mean ± std (n)".into(),
        format!("{} (reference)", value_title(&cmp.column, &cmp.reference)),
        format!("Δ{unit}"),
        format!("{:.0}% CI{unit}", 100.0 * stats::CONFIDENCE),
        "test".into(),
    ];
    if cmp.lines.iter().any(|l| l.published.is_some()) {
        h.push(format!("published Δ{unit}"));
    }
    h
}

/// A line's published difference (`85.58 − 37.51 = +48.07`), where both cells are published.
pub fn published_delta_text(cmp: &Comparison, line: &super::compare::CompareLine) -> String {
    let metric = &cmp.table.query.metric;
    let s = scale(metric);
    match line.published {
        Some((cell, reference)) => {
            let d = decimals(metric, cell * s);
            format!("{:.d$} − {:.d$} = {}", cell * s, reference * s, signed((cell - reference) * s, d))
        }
        None => "–".into(),
    }
}

pub fn compare_markdown(cmp: &Comparison) -> String {
    let metric = &cmp.table.query.metric;
    let (mut header, keys) = compare_keys(cmp);
    let left = header.len();
    header.extend(compare_headers(cmp));
    let mut out = format!("{}\n\n{}", caption_lines(&compare_caption(cmp), &cmp.table.layout).join("\n"), markdown_header(&header, left));
    for (line, mut fields) in cmp.lines.iter().zip(keys) {
        let (delta, ci, test) = difference_texts(metric, &line.diff);
        let bold = |t: String| if line.diff.excludes_zero() { format!("**{t}**") } else { t };
        fields.extend([cell_text(metric, &line.cell), cell_text(metric, &line.reference), bold(delta), bold(ci), test]);
        if cmp.lines.iter().any(|l| l.published.is_some()) {
            fields.push(published_delta_text(cmp, line));
        }
        out.push_str(&format!("| {} |\n", fields.join(" | ")));
    }
    out
}

pub fn compare_latex(cmp: &Comparison) -> String {
    let metric = &cmp.table.query.metric;
    let (header, keys) = compare_keys(cmp);
    let left = header.len();
    let mut header: Vec<String> = header.iter().map(|h| tex_escape(h)).collect();
    header.extend(compare_headers(cmp).iter().map(|h| tex_escape(h)));
    let mut lines = Vec::new();
    for (line, fields) in cmp.lines.iter().zip(keys) {
        let (delta, ci, test) = difference_texts(metric, &line.diff);
        let mut fields: Vec<String> = fields.iter().map(|f| tex_escape(f)).collect();
        let math = |t: &str| t.replace('−', "-");
        let bold = |t: String| if line.diff.excludes_zero() { format!(r"$\mathbf{{{}}}$", math(&t)) } else { format!("${}$", math(&t)) };
        fields.extend([
            format!("${}$", number(metric, &line.cell, r" \pm ")),
            format!("${}$", number(metric, &line.reference, r" \pm ")),
            bold(delta),
            bold(ci),
            tex_escape(&test),
        ]);
        if cmp.lines.iter().any(|l| l.published.is_some()) {
            fields.push(tex_escape(&published_delta_text(cmp, line)));
        }
        lines.push(fields);
    }
    latex_tabular(&full_caption(&compare_caption(cmp), &cmp.table.layout), left, &header, &lines)
}

/// One line per compared cell, numbers in the metric's own unit: the keys, the reference value,
/// both cells' mean, std and n, then delta, the interval, the test, df and whether the interval
/// excludes 0.
pub fn compare_csv(cmp: &Comparison) -> String {
    let mut header: Vec<String> = cmp.table.query.keys();
    header.extend(
        [
            "reference",
            "mean",
            "std",
            "n",
            "ref_mean",
            "ref_std",
            "ref_n",
            "delta",
            "ci_low",
            "ci_high",
            "test",
            "df",
            "excludes_zero",
            "published",
            "ref_published",
        ]
        .map(String::from),
    );
    let mut out = csv_comments(&compare_caption(cmp), &cmp.table.layout);
    out.push_str(&csv_line(&header));
    let opt = |x: Option<f64>| x.map(|v| v.to_string()).unwrap_or_default();
    for line in &cmp.lines {
        let mut fields = line.key.clone();
        let d = &line.diff;
        fields.extend([
            cmp.reference.clone(),
            line.cell.mean.to_string(),
            opt(line.cell.std),
            line.cell.n.to_string(),
            line.reference.mean.to_string(),
            opt(line.reference.std),
            line.reference.n.to_string(),
            d.delta.to_string(),
            opt(d.ci.map(|c| c.0)),
            opt(d.ci.map(|c| c.1)),
            d.test_name().to_string(),
            opt(d.df),
            d.excludes_zero().to_string(),
            opt(line.published.map(|p| p.0)),
            opt(line.published.map(|p| p.1)),
        ]);
        out.push_str(&csv_line(&fields));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::table::TableQuery;

    fn cell(runs: &[f64]) -> Option<Cell> {
        Some(Cell::from_runs(runs.iter().enumerate().map(|(s, &v)| (s as i64, v)).collect()))
    }

    fn table(cells: Vec<Vec<Option<Cell>>>) -> Table {
        Table {
            query: TableQuery {
                rows: vec!["method".into()],
                cols: vec!["prior".into()],
                metric: "probe_top1_best".into(),
                filters: vec![],
                ..Default::default()
            },
            row_keys: vec![vec!["byol".into()], vec!["simclr".into()]],
            col_keys: vec![vec!["none".into()], vec!["pixels".into()]],
            cells,
            layout: Default::default(),
            published: Default::default(),
            duplicates: 0,
            runs: 3,
            failed: 0,
            unmeasured: 0,
            unmeasured_files: Vec::new(),
            skipped: vec![],
        }
    }

    #[test]
    fn metrics_side_by_side_share_the_rows() {
        let table = |metric: &str, rows: Vec<&str>, cells: Vec<Vec<Option<Cell>>>| Table {
            query: TableQuery { rows: vec!["method".into()], cols: vec!["prior".into()], metric: metric.into(), filters: vec![], ..Default::default() },
            row_keys: rows.into_iter().map(|r| vec![r.to_string()]).collect(),
            col_keys: vec![vec!["none".into()]],
            cells,
            layout: Default::default(),
            published: Default::default(),
            duplicates: 0,
            runs: 2,
            failed: 1,
            unmeasured: 0,
            unmeasured_files: Vec::new(),
            skipped: vec![],
        };
        let probe = table("probe_top1_last", vec!["byol", "simclr"], vec![vec![cell(&[0.5])], vec![cell(&[0.4])]]);
        let linear = table("linear_top1", vec!["simclr"], vec![vec![cell(&[0.7])]]);
        let both = crate::results::table::side_by_side(vec![probe, linear]).unwrap();
        let md = markdown(&both);
        assert!(md.starts_with("probe_top1_last | linear_top1 (%, mean ± std"), "{md}");
        assert!(md.contains("| method | baseline (probe_top1_last) | baseline (linear_top1) |"), "{md}");
        assert!(md.contains("| byol | **50.00 (n=1)**† | – |") && md.contains("| simclr | 40.00 (n=1) | 70.00 (n=1) |"), "{md}");
        let loss = table("final_loss", vec!["byol"], vec![vec![cell(&[3.0])]]);
        let mixed = crate::results::table::side_by_side(vec![both, loss]);
        assert!(mixed.is_err());
    }

    #[test]
    fn bold_marks_the_best_of_two_or_more_never_a_lone_cell() {
        let md = markdown(&table(vec![vec![cell(&[0.6]), None], vec![cell(&[0.4]), cell(&[0.85])]]));
        // One run each: no interval, so the best is marked as not clearly best.
        assert!(md.contains("| byol | **60.00 (n=1)**† | – |"), "{md}");
        assert!(md.contains("| simclr | 40.00 (n=1) | 85.00 (n=1) |"), "{md}");
        assert!(md.contains(NOISE_NOTE), "{md}");
    }

    #[test]
    fn a_best_within_noise_of_the_runner_up_says_so() {
        // byol none vs simclr none: paired differences 0.10, 0.02, -0.04 -> the CI holds 0.
        // byol pixels vs simclr pixels: 0.20, 0.21, 0.19 -> clearly better.
        let t = table(vec![vec![cell(&[0.70, 0.62, 0.56]), cell(&[0.90, 0.91, 0.89])], vec![cell(&[0.60, 0.60, 0.60]), cell(&[0.70, 0.70, 0.70])]]);
        let best = best_rows(&t);
        assert_eq!(best, vec![Some(Best { row: 0, clear: false }), Some(Best { row: 0, clear: true })]);
        let md = markdown(&t);
        assert!(md.contains("| byol | **62.67 ± 7.02 (n=3)**† | **90.00 ± 1.00 (n=3)** |"), "{md}");
        let tex = latex(&t);
        assert!(tex.contains(r"$\mathbf{62.67 \pm 7.02}^{\dagger}$") && tex.contains(r"$\mathbf{90.00 \pm 1.00}$"), "{tex}");
    }
}
