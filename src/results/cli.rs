//! `gps report <results dir>`: the table (or, with `--compare`, the differences against a
//! reference) on stdout; plots and a self-contained HTML report on request. The rows are read
//! once, with every column any of these needs.

use super::compare::{self, CompareQuery, Comparison};
use super::table::{self, Rows, Table, TableQuery, tabulate};
use super::{curves, html, plot, published, render};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// `results/<sweep>` (or a folder of sweeps).
    pub dir: PathBuf,
    /// Columns whose values make the table's rows.
    #[arg(long, value_delimiter = ',', default_value = "method,augmentation")]
    pub rows: Vec<String>,
    /// Columns whose values make the table's columns (`prior` puts baseline and GPS side by side).
    #[arg(long, value_delimiter = ',', default_value = "dataset,prior")]
    pub cols: Vec<String>,
    /// The number in each cell: probe_top1_best, probe_top1_last, knn_top1, linear_top1,
    /// positive_purity, final_loss, rankme, alignment, uniformity, ...; several, comma-separated,
    /// side by side (e.g. `probe_top1_last,linear_top1`: online probe and offline linear eval).
    #[arg(long, default_value = "probe_top1_best")]
    pub metric: String,
    /// Keep only rows where COLUMN equals VALUE (repeatable), e.g. `--where k=5`.
    #[arg(long = "where", value_name = "COLUMN=VALUE")]
    pub filters: Vec<String>,
    /// Instead of the table: each cell minus the cell with COLUMN = REFERENCE beside it, with a
    /// 95% confidence interval (paired by seed, else Welch) and n. REFERENCE defaults to the
    /// first value (`none` for the prior: GPS against the baseline).
    #[arg(long, value_name = "COLUMN[=REFERENCE]")]
    pub compare: Option<String>,
    /// LaTeX (booktabs) instead of Markdown.
    #[arg(long, conflicts_with = "csv")]
    pub latex: bool,
    /// CSV, one line per cell, instead of Markdown.
    #[arg(long)]
    pub csv: bool,
    /// Also write accuracy-vs-k.svg and accuracy-vs-strength.svg (when the rows have more than
    /// one k or strength) and the learning curves curves-<column>.svg into this folder.
    #[arg(long, value_name = "DIR")]
    pub plots: Option<PathBuf>,
    /// Published numbers to show beside the measured ones: sweep files with `published:`
    /// entries (repeatable). The sweep files that wrote the rows are read too, where they exist.
    #[arg(long, value_name = "SWEEP_FILE")]
    pub published: Vec<PathBuf>,
    /// Also write one self-contained HTML file (no network needed to view it): tables,
    /// comparison, representation health, curves, plots, and the commands and git revisions
    /// that produced the rows.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// List every field the rows hold fixed, not only those that shaped the cells shown (the
    /// autoencoder's sizes without an autoencoder prior, precision and channels-last, ...).
    #[arg(long)]
    pub verbose: bool,
}

impl ReportArgs {
    /// The default table of a results folder (what `gps sweep run` prints at the end).
    pub fn defaults(dir: PathBuf) -> ReportArgs {
        ReportArgs {
            dir,
            rows: vec!["method".into(), "augmentation".into()],
            cols: vec!["dataset".into(), "prior".into()],
            metric: "probe_top1_best".into(),
            filters: Vec::new(),
            compare: None,
            latex: false,
            csv: false,
            plots: None,
            published: Vec::new(),
            html: None,
            verbose: false,
        }
    }

    pub fn query(&self) -> Result<TableQuery> {
        let filters = self
            .filters
            .iter()
            .map(|f| match f.split_once('=') {
                Some((k, v)) => Ok((k.trim().to_string(), v.trim().to_string())),
                None => bail!("--where {f:?}: expected COLUMN=VALUE, e.g. --where k=5"),
            })
            .collect::<Result<_>>()?;
        Ok(TableQuery { rows: self.rows.clone(), cols: self.cols.clone(), metric: self.metric.clone(), filters, split: Vec::new(), verbose: self.verbose })
    }

    pub fn run(self) -> Result<()> {
        let query = self.query()?;
        let metrics: Vec<String> = query.metric.split(',').map(|m| m.trim().to_string()).filter(|m| !m.is_empty()).collect();
        if metrics.is_empty() {
            bail!("--metric: name at least one column, e.g. --metric probe_top1_best");
        }
        // The first metric is the one compared, plotted and put on the HTML page.
        let query = TableQuery { metric: metrics[0].clone(), ..query };
        let asked = self.compare.as_deref().map(CompareQuery::parse).transpose()?;
        let mut columns = query.columns();
        columns.extend(metrics.iter().cloned());
        columns.extend(asked.iter().map(|c| c.column.clone()));
        columns.push("command".into()); // the sweep files that wrote the rows: their published numbers
        if self.plots.is_some() || self.html.is_some() {
            columns.extend(html::columns(&query));
        }
        let rows = Rows::read(&self.dir, &columns, &metrics)?;
        let tables = metrics.iter().map(|m| tabulate(&rows, &TableQuery { metric: m.clone(), ..query.clone() })).collect::<Result<Vec<_>>>()?;
        if let Some(t) = tables.iter().find(|t| t.runs == 0 && t.unmeasured > 0) {
            bail!(
                "none of the {} finished runs under {} has a value of `{}` (each named above); choose another --metric",
                t.unmeasured,
                self.dir.display(),
                t.query.metric
            );
        }
        let shown = if tables.len() > 1 { Some(table::side_by_side(tables.clone())?) } else { None };
        let mut table = tables.into_iter().next().expect("one metric at least");
        let entries = self.published_entries(&rows)?;
        published::attach(&mut table, &entries);
        let compared = match &asked {
            Some(c) => Some(comparison(&rows, &table, c)?),
            None => None,
        };
        let text = match (&compared, self.latex, self.csv) {
            (Some(cmp), true, _) => render::compare_latex(cmp),
            (Some(cmp), _, true) => render::compare_csv(cmp),
            (Some(cmp), _, _) => render::compare_markdown(cmp),
            (None, true, _) => render::latex(shown.as_ref().unwrap_or(&table)),
            (None, _, true) => render::csv(shown.as_ref().unwrap_or(&table)),
            (None, _, _) => render::markdown(shown.as_ref().unwrap_or(&table)),
        };
        crate::text::emit(&text);
        if let Some(dir) = &self.plots {
            write_plots(&rows, &query, dir)?;
        }
        if let Some(path) = &self.html {
            // Without --compare, the page compares priors (GPS against the baseline) when there are several.
            let default = CompareQuery { column: "prior".into(), reference: None };
            let shown = match compared {
                Some(c) => Some(c),
                None => comparison(&rows, &table, &default).ok(),
            };
            let page = html::document(&html::Report { rows: &rows, table: &table, comparison: shown.as_ref(), command: super::row::command_line() })?;
            write(path, &page)?;
        }
        Ok(())
    }
}

impl ReportArgs {
    /// `--published` files' entries, and those of the sweep files that wrote the rows.
    fn published_entries(&self, rows: &Rows) -> Result<Vec<published::Published>> {
        for f in &self.published {
            published::from_sweep_file(f).with_context(|| format!("--published {}", f.display()))?;
        }
        let commands = table::column_strings(&rows.frame, &["command".to_string()]).unwrap_or_default().into_iter().filter_map(|mut v| v.pop());
        let mut files = published::sweep_files_of(commands);
        files.extend(self.published.iter().cloned());
        Ok(published::from_sweep_files(&files))
    }
}

/// The comparison along `c.column`: over the table itself when the column is one of its keys,
/// else over the table with the column added to its columns.
fn comparison(rows: &Rows, table: &Table, c: &CompareQuery) -> Result<Comparison> {
    if table.query.keys().contains(&c.column) {
        return compare::compare(table, c);
    }
    let mut q = table.query.clone();
    q.cols.push(c.column.clone());
    compare::compare(&tabulate(rows, &q)?, c)
}

fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

fn write_plots(rows: &Rows, query: &TableQuery, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for ((x, svg), (_, file)) in plot::against(rows, query, false)?.into_iter().zip(plot::AGAINST) {
        match svg {
            Some(svg) => write(&dir.join(file), &svg)?,
            None => eprintln!("no plot against {x}: the rows have fewer than two values of it"),
        }
    }
    let all = curves::curves_of(rows, query, &curves::CURVE_COLUMNS.map(|(column, _, _)| column))?;
    for ((column, _, _), c) in curves::CURVE_COLUMNS.into_iter().zip(all) {
        match plot::curves_svg(&c) {
            Some(svg) => write(&dir.join(format!("curves-{column}.svg")), &svg)?,
            None => eprintln!("no curves of {column}: no run records it"),
        }
    }
    Ok(())
}
