//! `gps report <results dir>`: the table on stdout, plots on request.

use super::table::{self, TableQuery};
use super::{plot, render};
use anyhow::{Context, Result, bail};
use std::path::PathBuf;

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
    /// positive_purity, final_loss, ...; several, comma-separated, side by side (e.g.
    /// `probe_top1_last,linear_top1`: online probe and offline linear evaluation).
    #[arg(long, default_value = "probe_top1_best")]
    pub metric: String,
    /// Keep only rows where COLUMN equals VALUE (repeatable), e.g. `--where k=5`.
    #[arg(long = "where", value_name = "COLUMN=VALUE")]
    pub filters: Vec<String>,
    /// LaTeX (booktabs) instead of Markdown.
    #[arg(long, conflicts_with = "csv")]
    pub latex: bool,
    /// CSV, one line per cell, instead of Markdown.
    #[arg(long)]
    pub csv: bool,
    /// Also write accuracy-vs-k.svg and accuracy-vs-strength.svg into this folder (when the rows
    /// have more than one k or strength).
    #[arg(long, value_name = "DIR")]
    pub plots: Option<PathBuf>,
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
            latex: false,
            csv: false,
            plots: None,
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
        Ok(TableQuery { rows: self.rows.clone(), cols: self.cols.clone(), metric: self.metric.clone(), filters })
    }

    pub fn run(self) -> Result<()> {
        let query = self.query()?;
        let tables = query
            .metric
            .split(',')
            .map(|m| table::build(&self.dir, &TableQuery { metric: m.trim().to_string(), ..query.clone() }))
            .collect::<Result<Vec<_>>>()?;
        for skipped in &tables[0].skipped {
            eprintln!("warning: skipped {}: {}", skipped.path.display(), skipped.reason);
        }
        let query = tables[0].query.clone(); // plots: the first metric
        let table = if tables.len() == 1 { tables.into_iter().next().expect("one") } else { table::side_by_side(tables)? };
        let text = if self.latex {
            render::latex(&table)
        } else if self.csv {
            render::csv(&table)
        } else {
            render::markdown(&table)
        };
        crate::sweep::cli::emit(&text);
        if let Some(dir) = &self.plots {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
            for (x, file) in [("k", "accuracy-vs-k.svg"), ("strength", "accuracy-vs-strength.svg")] {
                let series: Vec<String> = ["dataset", "method", "prior", "augmentation"]
                    .into_iter()
                    .filter(|c| *c != x && !(x == "strength" && *c == "augmentation"))
                    .map(String::from)
                    .collect();
                // A filter on the x axis itself (`--where k=5` for the table) would leave one point.
                let filters = query.filters.iter().filter(|(column, _)| column != x).cloned().collect();
                let q = TableQuery { rows: series, cols: vec![x.to_string()], filters, ..query.clone() };
                let t = table::build(&self.dir, &q)?;
                let path = dir.join(file);
                match plot::svg(&t, x) {
                    Some(svg) => {
                        std::fs::write(&path, svg).with_context(|| format!("cannot write {}", path.display()))?;
                        eprintln!("wrote {}", path.display());
                    }
                    None => eprintln!("no plot against {x}: the rows have fewer than two values of it"),
                }
            }
        }
        Ok(())
    }
}
