//! Published numbers beside measured ones: a sweep file's `published:` entries, each keyed by the
//! fields of the cell it belongs to and carrying its source, shown by `gps report` as a column
//! next to the measured mean ± std with the difference. A number nobody can source stays out.
//!
//! ```yaml
//! published:
//!   - {dataset: cifar10, method: simclr, augmentation: weak, prior: none, value: 37.51,
//!      source: "arXiv 2401.01990 abstract: ... the baseline only reaches 37.51%"}
//! ```

use super::table::{Table, is_fraction};
use crate::config::RunSpec;
use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;
use std::path::Path;

/// Row columns a published entry may be keyed by (besides any run-spec field by its path).
pub const CELL_COLUMNS: [&str; 10] = ["dataset", "method", "prior", "augmentation", "k", "backbone", "epochs", "batch_size", "lr", "strength"];

/// One published number.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    /// (field, value as text) pairs a cell must have.
    pub keys: Vec<(String, String)>,
    /// The metric it is a value of (default `probe_top1_best`, the paper's linear-probe top-1).
    pub metric: String,
    /// As the paper prints it: percent for accuracies.
    pub value: f64,
    pub source: String,
}

impl Published {
    /// In the metric's stored unit (a fraction for accuracies), to subtract from a cell's mean.
    pub fn stored_value(&self) -> f64 {
        if is_fraction(&self.metric) { self.value / 100.0 } else { self.value }
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some("null".into()),
        _ => None,
    }
}

/// The `published:` section of a sweep file (a list of mappings); `at` locates a field in the
/// file for messages.
pub fn parse(value: Value, at: &dyn Fn(&str) -> String) -> Result<Vec<Published>> {
    let entries = match value {
        Value::Array(v) => v,
        Value::Null => Vec::new(),
        _ => bail!("{}: `published` is a list of entries like `{{dataset: cifar10, method: simclr, prior: none, value: 37.51, source: \"...\"}}`", at("")),
    };
    let fields = RunSpec::field_paths();
    let mut out = Vec::new();
    for entry in entries {
        let Value::Object(map) = entry else { bail!("{}: each `published` entry is a mapping of cell fields, `value` and `source`", at("")) };
        let mut keys = Vec::new();
        let (mut value, mut source, mut metric) = (None, None, "probe_top1_best".to_string());
        for (k, v) in map {
            match k.as_str() {
                "value" => {
                    value = v.as_f64().filter(|x| x.is_finite());
                    if value.is_none() {
                        bail!("{}: `published` value must be a number as the paper prints it (percent for accuracies), got {v}", at("value"));
                    }
                }
                "source" => source = v.as_str().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string),
                "metric" => metric = v.as_str().map(str::to_string).unwrap_or(metric),
                key if CELL_COLUMNS.contains(&key) || fields.iter().any(|f| f == key) => {
                    let Some(t) = text(&v) else { bail!("{}: `published` key `{key}` must be a single value", at(key)) };
                    keys.push((k.clone(), t));
                }
                other => {
                    let known = CELL_COLUMNS.iter().copied().chain(fields.iter().map(String::as_str));
                    let hint = crate::config::yaml::nearest(other, known).map(|n| format!(" (did you mean `{n}`?)")).unwrap_or_default();
                    bail!(
                        "{}: `published` key `{other}` is not a cell field{hint}: use {}, or a run-spec field by its dotted path",
                        at(other),
                        CELL_COLUMNS.join(", ")
                    );
                }
            }
        }
        let Some(value) = value else { bail!("{}: a `published` entry needs `value`", at("")) };
        let Some(source) = source else { bail!("{}: a `published` entry needs `source` (where the number is printed); unsourced numbers stay out", at("")) };
        if keys.is_empty() {
            bail!("{}: a `published` entry needs the fields of its cell (dataset, method, prior, augmentation, ...)", at(""));
        }
        out.push(Published { keys, metric, value, source });
    }
    Ok(out)
}

/// The sweep files that wrote rows: the `gps task <sweep file> ...` of each row's command, where
/// that file is there to read (relative to the working directory, as the command was run).
pub fn sweep_files_of(commands: impl IntoIterator<Item = String>) -> Vec<std::path::PathBuf> {
    let mut files: Vec<std::path::PathBuf> = commands
        .into_iter()
        .filter_map(|c| {
            let mut words = c.split_whitespace();
            words.find(|w| *w == "task")?;
            words.next().map(|w| std::path::PathBuf::from(w.trim_matches('\'')))
        })
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files.dedup();
    files
}

/// The `published:` entries of one sweep file (read on their own: the rest of the file is the
/// sweep module's business).
pub fn from_sweep_file(path: &Path) -> Result<Vec<Published>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let doc = crate::config::yaml::parse(text.strip_prefix('\u{feff}').unwrap_or(&text)).map_err(|e| anyhow!("{}: not valid YAML: {e}", path.display()))?;
    let serde_norway::Value::Mapping(top) = doc else { return Ok(Vec::new()) };
    let Some(section) = top.into_iter().find_map(|(k, v)| (k.as_str() == Some("published")).then_some(v)) else { return Ok(Vec::new()) };
    let json = crate::config::yaml::to_json(section).map_err(|e| anyhow!("{}: published: {}", path.display(), e.message))?;
    parse(json, &|field| format!("{}: published{}", path.display(), if field.is_empty() { String::new() } else { format!(".{field}") }))
}

/// The published entries of sweep files (a file whose entries do not read is named and skipped).
pub fn from_sweep_files(files: &[impl AsRef<Path>]) -> Vec<Published> {
    let mut out: Vec<Published> = Vec::new();
    for f in files {
        match from_sweep_file(f.as_ref()) {
            Ok(entries) => {
                for p in entries {
                    if !out.contains(&p) {
                        out.push(p);
                    }
                }
            }
            Err(e) => eprintln!("warning: published numbers of {} not read: {e:#}", f.as_ref().display()),
        }
    }
    out
}

/// The published value of each cell of `table` (row, column) with its footnote number: an entry
/// belongs to a cell when each of its fields is one of the table's keys with the cell's value, or
/// a field the table holds fixed at that value.
pub fn attach(table: &mut Table, entries: &[Published]) {
    let keys = table.query.keys();
    let split = table.query.row_names().len();
    let mut sources: Vec<String> = Vec::new();
    let mut cells = Vec::new();
    for entry in entries.iter().filter(|e| e.metric == table.query.metric) {
        for (r, row_key) in table.row_keys.iter().enumerate() {
            for (c, col_key) in table.col_keys.iter().enumerate() {
                if table.cells[r][c].is_none() {
                    continue;
                }
                let matches = entry.keys.iter().all(|(field, value)| match keys.iter().position(|k| k == field) {
                    Some(i) => (if i < split { &row_key[i] } else { &col_key[i - split] }) == value,
                    None => table.layout.fixed.iter().any(|(f, v)| f == field && v == value),
                });
                if matches {
                    let n = match sources.iter().position(|s| *s == entry.source) {
                        Some(n) => n,
                        None => {
                            sources.push(entry.source.clone());
                            sources.len() - 1
                        }
                    };
                    cells.push(((r, c), entry.stored_value(), n));
                }
            }
        }
    }
    table.published = super::table::PublishedCells { values: cells, sources };
}
