//! `gps report <dir> --html report.html`: one self-contained HTML file (inline CSS and SVG; no
//! script, font, image or style sheet from anywhere else) with what the rows say: the table,
//! the comparison against the reference, representation health, learning curves, the k and
//! strength plots, and where the rows came from (sweep description, commands, git revisions).

use super::compare::Comparison;
use super::curves::{self, Curves};
use super::plot::{self, esc};
use super::render::{self, Best};
use super::table::{Rows, Table, TableQuery, column_strings, sort_key, tabulate};
use anyhow::Result;
use polars::prelude::*;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Health scalars shown as tables (plain: a higher rank is a symptom, not a score).
pub const HEALTH_COLUMNS: [&str; 3] = ["rankme", "alignment", "uniformity"];
/// Provenance columns the report lists.
const PROVENANCE: [&str; 7] = ["run_id", "sweep", "sweep_description", "git_rev", "command", "device", "finished_at"];
/// Past this many runs the per-run list is cut (the page stays light; the rows have them all).
const MAX_LISTED_RUNS: usize = 2000;

const STYLE: &str = "
body { font-family: system-ui, -apple-system, 'Segoe UI', 'DejaVu Sans', Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { font-size: 1.25em; border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 2em; }
nav a { margin-right: 1em; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em; font-size: 0.92em; }
caption { caption-side: top; text-align: left; color: #444; padding-bottom: 0.4em; max-width: 1100px; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3em 0.7em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.best, td.sig { font-weight: bold; } .note { color: #555; font-size: 0.9em; }
code, pre { font-family: 'DejaVu Sans Mono', Menlo, Consolas, monospace; font-size: 0.88em; background: #f6f6f6; }
pre { padding: 0.6em; overflow-x: auto; white-space: pre-wrap; }
figure { margin: 1em 0 2em; } figcaption { color: #444; font-size: 0.92em; max-width: 1100px; }
svg { max-width: 100%; height: auto; }
.wide { overflow-x: auto; } #runs-table td { white-space: nowrap; }
";

/// Everything the page shows, computed by the caller from one read of the rows.
pub struct Report<'a> {
    pub rows: &'a Rows,
    pub table: &'a Table,
    pub comparison: Option<&'a Comparison>,
    /// `gps report ...` as it was run.
    pub command: String,
}

/// Columns the page needs beyond the table's own.
pub fn columns(query: &TableQuery) -> Vec<String> {
    let mut out = query.columns();
    out.extend(HEALTH_COLUMNS.iter().map(|c| c.to_string()));
    out.extend(curves::CURVE_COLUMNS.iter().map(|(c, _, _)| c.to_string()));
    out.extend(PROVENANCE.iter().map(|c| c.to_string()));
    out.extend(plot::AGAINST.iter().flat_map(|(x, _)| plot::series_keys(x)).chain(plot::AGAINST.iter().map(|(x, _)| x.to_string())));
    out
}

fn table_html(caption: &str, header: &[String], left: usize, lines: &[Vec<(String, &'static str)>], id: &str) -> String {
    let mut s = format!("<table id=\"{id}\">\n<caption>{}</caption>\n<thead><tr>", esc(caption));
    for h in header {
        let _ = write!(s, "<th scope=\"col\">{}</th>", esc(h));
    }
    s.push_str("</tr></thead>\n<tbody>\n");
    for line in lines {
        s.push_str("<tr>");
        for (i, (text, class)) in line.iter().enumerate() {
            let class = if i < left { "" } else { class };
            let class = if class.is_empty() { String::new() } else { format!(" class=\"{class}\"") };
            let _ = write!(s, "<td{class}>{}</td>", esc(text));
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</tbody>\n</table>\n");
    s
}

/// The table as HTML: bold for the best of a column, † where the runner-up is within noise.
fn main_table(table: &Table, id: &str, mark_best: bool, caption: &str) -> String {
    let best: Vec<Option<Best>> = if mark_best { render::best_rows(table) } else { vec![None; table.col_keys.len()] };
    let mut header = table.query.row_names();
    let left = header.len();
    for (c, key) in table.col_keys.iter().enumerate() {
        header.push(render::col_title(table, key));
        if table.published.in_column(c) {
            header.push(format!("{} published", render::col_title(table, key)));
        }
    }
    let lines: Vec<Vec<(String, &'static str)>> = table
        .row_keys
        .iter()
        .enumerate()
        .map(|(r, key)| {
            let mut line: Vec<(String, &'static str)> = key.iter().map(|k| (k.clone(), "")).collect();
            for (c, cell) in table.cells[r].iter().enumerate() {
                line.push(match (cell, best[c]) {
                    (None, _) => ("–".into(), "num"),
                    (Some(cell), Some(b)) if b.row == r => {
                        (format!("{}{}", render::cell_text(&table.query.metric, cell), if b.clear { "" } else { " †" }), "num best")
                    }
                    (Some(cell), _) => (render::cell_text(&table.query.metric, cell), "num"),
                });
                if table.published.in_column(c) {
                    line.push((render::published_text(table, r, c).unwrap_or_else(|| "–".into()), "num"));
                }
            }
            line
        })
        .collect();
    table_html(caption, &header, left, &lines, id)
}

fn comparison_table(cmp: &Comparison) -> String {
    let metric = &cmp.table.query.metric;
    let index = cmp.column_index();
    let keys = cmp.table.query.keys();
    let order: Vec<usize> = (0..keys.len()).filter(|&i| i != index).chain([index]).collect();
    let mut header: Vec<String> = order.iter().map(|&i| keys[i].clone()).collect();
    let left = header.len();
    header.extend(render::compare_headers(cmp));
    let lines: Vec<Vec<(String, &'static str)>> = cmp
        .lines
        .iter()
        .map(|l| {
            let mut line: Vec<(String, &'static str)> =
                order.iter().map(|&i| (if i == index { render::value_title(&cmp.column, &l.key[i]) } else { l.key[i].clone() }, "")).collect();
            let (delta, ci, test) = render::difference_texts(metric, &l.diff);
            let sig = if l.diff.excludes_zero() { "num sig" } else { "num" };
            line.extend([(render::cell_text(metric, &l.cell), "num"), (render::cell_text(metric, &l.reference), "num"), (delta, sig), (ci, sig), (test, "")]);
            if cmp.lines.iter().any(|l| l.published.is_some()) {
                line.push((render::published_delta_text(cmp, l), "num"));
            }
            line
        })
        .collect();
    table_html(&render::page_caption(&render::compare_caption(cmp), &cmp.table.layout), &header, left, &lines, "comparison-table")
}

fn figure(id: &str, svg: &str, caption: &str) -> String {
    format!("<figure id=\"{id}\">\n{svg}<figcaption>{}</figcaption>\n</figure>\n", esc(caption))
}

/// Distinct values of `column` among the rows, most frequent first, with their counts.
fn tally(frame: &DataFrame, column: &str) -> Result<Vec<(String, usize)>> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for key in column_strings(frame, &[column.to_string()])? {
        *counts.entry(key.into_iter().next().unwrap_or_default()).or_default() += 1;
    }
    let mut out: Vec<(String, usize)> = counts.into_iter().collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    Ok(out)
}

fn tally_list(items: &[(String, usize)], missing: &str, limit: usize) -> String {
    let mut s = String::from("<ul>\n");
    for (value, count) in items.iter().take(limit) {
        let text = if value == "–" { format!("<span class=\"note\">{}</span>", esc(missing)) } else { format!("<code>{}</code>", esc(value)) };
        let _ = writeln!(s, "<li>{text} <span class=\"note\">({count} run{})</span></li>", if *count == 1 { "" } else { "s" });
    }
    if items.len() > limit {
        let _ = writeln!(s, "<li class=\"note\">… and {} more (each run's is in the list of runs below)</li>", items.len() - limit);
    }
    s.push_str("</ul>\n");
    s
}

fn provenance(report: &Report, frame: &DataFrame) -> Result<String> {
    let mut s = String::from("<section id=\"provenance\">\n<h2>Where these rows come from</h2>\n");
    for (sweep, _) in tally(frame, "sweep")? {
        let own = frame.filter(&super::table::equals(frame, "sweep", &sweep)?)?;
        let text: Vec<String> = tally(&own, "sweep_description")?.into_iter().map(|(d, _)| d).filter(|d| d != "–").collect();
        let _ = writeln!(
            s,
            "<p><b>Sweep <code>{}</code></b>: {}</p>",
            esc(&sweep),
            if text.is_empty() { "<span class=\"note\">no description recorded</span>".to_string() } else { esc(&text.join(" / ")) }
        );
    }
    let _ = writeln!(
        s,
        "<p>{} finished runs in <code>{}</code>{}.</p>",
        frame.height(),
        esc(&report.rows.dir.display().to_string()),
        if report.rows.failed > 0 { format!(", {} failed runs not shown (see <code>gps sweep status</code>)", report.rows.failed) } else { String::new() }
    );
    s.push_str("<h3>Git revisions that produced the rows</h3>\n");
    s.push_str(&tally_list(&tally(frame, "git_rev")?, "not recorded", 20));
    if tally(frame, "git_rev")?.iter().any(|(r, _)| r.ends_with("-dirty")) {
        s.push_str("<p class=\"note\">A revision ending in <code>-dirty</code> had uncommitted changes when the run was made.</p>\n");
    }
    s.push_str("<h3>Commands that produced the rows</h3>\n");
    s.push_str(&tally_list(&tally(frame, "command")?, "not recorded (rows written before gps recorded commands)", 30));
    s.push_str("<h3>Devices</h3>\n");
    s.push_str(&tally_list(&tally(frame, "device")?, "not recorded", 10));
    let finished = tally(frame, "finished_at")?;
    let times: Vec<&String> = finished.iter().map(|(t, _)| t).filter(|t| *t != "–").collect();
    if let (Some(first), Some(last)) = (times.iter().min(), times.iter().max()) {
        let _ = writeln!(s, "<p>Finished between {} and {} (UTC).</p>", esc(first), esc(last));
    }
    let _ = writeln!(
        s,
        "<h3>This report</h3>\n<pre>{}</pre>\n<p class=\"note\">gps-ssl {}, revision {}, written {}.</p>\n</section>",
        esc(&report.command),
        env!("CARGO_PKG_VERSION"),
        esc(&super::row::git_revision()),
        esc(&super::row::now_rfc3339())
    );
    Ok(s)
}

fn runs_list(report: &Report, frame: &DataFrame) -> Result<String> {
    let q = &report.table.query;
    let mut columns: Vec<String> = vec!["run_id".into()];
    columns.extend(q.keys());
    for c in ["seed".to_string(), q.metric.clone(), "rankme".into(), "git_rev".into(), "device".into(), "finished_at".into(), "command".into()] {
        if !columns.contains(&c) {
            columns.push(c);
        }
    }
    let mut texts = report.rows.key_strings(frame, &columns)?;
    let order: Vec<String> = q.keys().into_iter().chain(["seed".to_string()]).collect();
    let positions: Vec<usize> = order.iter().filter_map(|k| columns.iter().position(|c| c == k)).collect();
    texts.sort_by_cached_key(|t| sort_key(&positions.iter().map(|&i| t[i].clone()).collect::<Vec<_>>()));
    let metric_at = columns.iter().position(|c| *c == q.metric).expect("metric listed");
    let rankme_at = columns.iter().position(|c| c == "rankme").expect("rankme listed");
    let lines: Vec<Vec<(String, &'static str)>> = texts
        .into_iter()
        .take(MAX_LISTED_RUNS)
        .map(|line| {
            line.into_iter()
                .enumerate()
                .map(|(i, v)| {
                    let v = match v.parse::<f64>() {
                        Ok(x) if i == metric_at && crate::results::table::is_fraction(&q.metric) => format!("{:.2}", 100.0 * x),
                        Ok(x) if i == rankme_at => format!("{x:.1}"),
                        _ => v,
                    };
                    (v, if i == metric_at || i == rankme_at { "num" } else { "" })
                })
                .collect()
        })
        .collect();
    let unit = if crate::results::table::is_fraction(&q.metric) { " (%)" } else { "" };
    let header: Vec<String> = columns.iter().map(|c| if *c == q.metric { format!("{c}{unit}") } else { c.clone() }).collect();
    let cut = if frame.height() > MAX_LISTED_RUNS { format!(" (the first {MAX_LISTED_RUNS} of {})", frame.height()) } else { String::new() };
    Ok(format!(
        "<section id=\"runs\">\n<h2>Runs</h2>\n<details><summary>Every finished run{cut}: keys, {} and provenance</summary>\n<div class=\"wide\">\n{}</div>\n</details>\n</section>\n",
        esc(&q.metric),
        table_html(&format!("{} finished runs{cut}", frame.height()), &header, columns.len(), &lines, "runs-table")
    ))
}

/// The whole page.
pub fn document(report: &Report) -> Result<String> {
    let table = report.table;
    let q = &table.query;
    let frame = report.rows.selected(&q.filters)?;
    let sweeps: Vec<String> = tally(&frame, "sweep")?.into_iter().map(|(s, _)| s).collect();
    let title = format!("gps report: {}", sweeps.join(", "));
    let mut s = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        esc(&title),
        esc(&title)
    );
    s.push_str("<nav><a href=\"#provenance\">Provenance</a><a href=\"#results\">Results</a><a href=\"#comparison\">Comparison</a><a href=\"#health\">Representation health</a><a href=\"#curves\">Learning curves</a><a href=\"#ablations\">k and strength</a><a href=\"#runs\">Runs</a></nav>\n");
    s.push_str(&provenance(report, &frame)?);

    s.push_str("<section id=\"results\">\n<h2>Results</h2>\n");
    // What every table and figure of the page holds fixed, said once (their captions say what
    // splits or differs between their cells).
    if let Some(fixed) = render::fixed_note(&table.layout) {
        let _ = writeln!(s, "<p class=\"note\" id=\"fixed\">Every table and figure below: {}</p>", esc(&fixed));
    }
    let caption =
        std::iter::once(render::page_caption(&render::caption(table), &table.layout)).chain(render::published_sources(table)).collect::<Vec<_>>().join(". ");
    s.push_str(&main_table(table, "results-table", true, &caption));
    s.push_str("</section>\n<section id=\"comparison\">\n<h2>Comparison</h2>\n");
    match report.comparison {
        Some(cmp) if !cmp.lines.is_empty() => s.push_str(&comparison_table(cmp)),
        Some(cmp) => {
            let _ = writeln!(s, "<p class=\"note\">No cell has a reference cell with {} = {} beside it.</p>", esc(&cmp.column), esc(&cmp.reference));
        }
        None => s.push_str("<p class=\"note\">No comparison: the rows have a single prior; pass <code>--compare COLUMN[=REFERENCE]</code> to compare along another column.</p>\n"),
    }

    s.push_str("</section>\n<section id=\"health\">\n<h2>Representation health</h2>\n");
    s.push_str("<p class=\"note\">At the last evaluation: RankMe (Garrido et al., 2023), the effective rank of the test-set backbone features (exp of the entropy of their normalised singular values; low: the features collapse onto few directions); alignment and uniformity (Wang &amp; Isola, 2020) of L2-normalised features of training positives drawn as in training (lower alignment: positives closer; lower uniformity: features spread more evenly over the sphere).</p>\n");
    for column in HEALTH_COLUMNS {
        let ht = tabulate(report.rows, &TableQuery { metric: column.to_string(), ..q.clone() })?;
        if ht.runs == 0 {
            let _ = writeln!(s, "<p class=\"note\">No run records {column} (rows written before gps measured it).</p>");
            continue;
        }
        s.push_str(&main_table(&ht, &format!("health-{column}"), false, &render::page_caption(&render::caption_unranked(&ht), &ht.layout)));
    }

    s.push_str("</section>\n<section id=\"curves\">\n<h2>Learning curves</h2>\n");
    let all: Vec<Curves> = curves::curves_of(report.rows, q, &curves::CURVE_COLUMNS.map(|(column, _, _)| column))?;
    for ((column, _, what), mut c) in curves::CURVE_COLUMNS.into_iter().zip(all) {
        c.layout.fixed.clear(); // said once above the first table
        match plot::curves_svg(&c) {
            Some(svg) => s.push_str(&figure(
                &format!("curve-{column}"),
                &svg,
                &render::page_caption(
                    &format!(
                        "{what}, per epoch: one panel per {}, one line per {} (mean over the runs of the cell, shaded band from the lowest to the highest run; epochs without an evaluation are skipped)",
                        c.query.row_names().join(" × "),
                        c.query.cols.join(" × ")
                    ),
                    &c.layout,
                ),
            )),
            None => {
                let _ = writeln!(s, "<p class=\"note\">No run records <code>{column}</code>.</p>");
            }
        }
    }

    s.push_str("</section>\n<section id=\"ablations\">\n<h2>Against k and augmentation strength</h2>\n");
    for (x, svg) in plot::against(report.rows, q, true)? {
        match svg {
            Some(svg) => s.push_str(&figure(
                &format!("against-{x}"),
                &svg,
                &format!("{} against {x}: one line per combination of the other keys, mean ± std over seeds (error bars), n in the legend.", q.metric),
            )),
            None => {
                let _ = writeln!(s, "<p class=\"note\">No plot against {x}: the rows have fewer than two values of it.</p>");
            }
        }
    }
    s.push_str("</section>\n");
    s.push_str(&runs_list(report, &frame)?);
    s.push_str("</body>\n</html>\n");
    Ok(s)
}
