//! The sweep file: `base` (a run spec), `grid` (axes to value lists), `zip` (axes varied together),
//! `exclude` (rules that drop runs), `slurm` (resources). Parsed by hand from the YAML tree rather
//! than with a derived struct, because the grid's axis order decides the runs' order and every
//! error must name the file, the line and the field.

use super::slurm_options::SlurmOptions;
use super::source_lines::locate;
use super::value_path;
use crate::config::RunSpec;
use crate::config::yaml::{self, FieldError};
use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

/// One axis of the product: a single grid key, or a zip group whose keys move together.
#[derive(Debug, Clone)]
pub struct Axis {
    /// Dotted run-spec paths set by this axis.
    pub keys: Vec<String>,
    /// Each choice gives one value per key.
    pub choices: Vec<Vec<Value>>,
    /// `grid` or `zip`, for error messages.
    pub section: &'static str,
}

/// A rule of `exclude:`: a run is dropped when every path matches one of the listed values.
pub type ExcludeRule = Vec<(String, Vec<Value>)>;

#[derive(Debug, Clone)]
pub struct SweepFile {
    pub path: PathBuf,
    pub text: String,
    /// `name:` or the file stem; names slurm/<name>/ and results/<name>/.
    pub name: String,
    /// `description:`, free text; recorded in every result row for the report.
    pub description: Option<String>,
    pub base: Value,
    pub axes: Vec<Axis>,
    pub exclude: Vec<ExcludeRule>,
    pub slurm: SlurmOptions,
    /// `published:`: the paper's numbers for cells of this sweep, with their sources.
    pub published: Vec<crate::results::published::Published>,
}

const SECTIONS: &str = "name, description, base, grid, zip, exclude, slurm, published";

/// Longest sweep name: it names folders and SLURM jobs (`gps-<name>-prepare`).
pub const MAX_NAME_LEN: usize = 100;

static SLURM_SHAPE: LazyLock<Value> = LazyLock::new(|| serde_json::to_value(SlurmOptions::default()).expect("SlurmOptions serialises"));

impl SweepFile {
    pub fn load(path: &Path) -> Result<SweepFile> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read sweep file {} (check the path)", path.display()))?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<SweepFile> {
        // YAML allows a byte-order mark; without it, lines are found from the first line on.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let at = |section: &str, field: &str| match locate(text, section, field) {
            Some(line) => format!("{}, line {line}", path.display()),
            None => path.display().to_string(),
        };
        let doc = yaml::parse(text).map_err(|e| anyhow!("{}: not valid YAML: {e}", path.display()))?;
        let serde_norway::Value::Mapping(top) = doc else {
            bail!("{}: a sweep file is a mapping with the sections {SECTIONS}", path.display());
        };
        let mut sweep = SweepFile {
            path: path.to_path_buf(),
            text: text.to_string(),
            name: String::new(),
            description: None,
            base: Value::Object(Default::default()),
            axes: Vec::new(),
            exclude: Vec::new(),
            slurm: SlurmOptions::default(),
            published: Vec::new(),
        };
        let mut name = None;
        for (key, value) in top {
            let key = key.as_str().map(str::to_string).unwrap_or_else(|| format!("{key:?}"));
            // Converted to JSON with non-finite numbers refused; the error points at the field's line.
            let json = |v: serde_norway::Value| -> Result<Value> { yaml::to_json(v).map_err(|e| anyhow!("{}: {}", at(&key, &e.key_path()), e.under(&key))) };
            match key.as_str() {
                "name" => name = Some(value.as_str().map(str::to_string).ok_or_else(|| anyhow!("{}: `name` must be a string", at("name", "")))?),
                "description" => {
                    let text =
                        value.as_str().ok_or_else(|| anyhow!("{}: `description` must be a string (quote it, or use a `|` block)", at("description", "")))?;
                    sweep.description = Some(text.trim().to_string()).filter(|t| !t.is_empty());
                }
                "base" => {
                    sweep.base = json(value)?;
                    if !sweep.base.is_object() && !sweep.base.is_null() {
                        bail!("{}: `base` must be a run spec (a mapping of fields, as `gps train` takes)", at("base", ""));
                    }
                }
                "grid" => sweep.axes.extend(parse_grid(value, &|f| at("grid", f))?),
                "zip" => sweep.axes.extend(parse_zip(value, &|f| at("zip", f))?),
                "exclude" => sweep.exclude = parse_exclude(json(value)?, &|f| at("exclude", f))?,
                "published" => sweep.published = crate::results::published::parse(json(value)?, &|f| at("published", f))?,
                "slurm" => {
                    let value = json(value)?;
                    let value = if value.is_null() { Value::Object(Default::default()) } else { value };
                    sweep.slurm = yaml::from_tree(&value, &SLURM_SHAPE).map_err(|e: FieldError| {
                        let hint = if e.path == "time" { "; write it as a quoted SLURM time, e.g. `time: \"06:00:00\"`" } else { "" };
                        anyhow!("{}: {}{hint}", at("slurm", &e.key_path()), e.under("slurm"))
                    })?;
                    sweep.slurm.validate().map_err(|e| {
                        // an `extra` entry: the line that holds it, below `extra:`
                        let field_line = locate(text, "slurm", e.field);
                        let entry_line = e
                            .entry
                            .as_deref()
                            .zip(field_line)
                            .and_then(|(entry, from)| text.lines().enumerate().skip(from - 1).find(|(_, l)| l.contains(entry)).map(|(i, _)| i + 1));
                        match entry_line.or(field_line) {
                            Some(line) => anyhow!("{}, line {line}: {e}", path.display()),
                            None => anyhow!("{}: {e}", path.display()),
                        }
                    })?;
                }
                other => bail!("{}: unknown section `{other}`; a sweep file has: {SECTIONS}", at(other, "")),
            }
        }
        let (name, from) = match name {
            Some(n) => (n, "`name:`"),
            None => (path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(), "the file name (no `name:`)"),
        };
        let name_ok = !name.is_empty() && !name.starts_with('.') && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if !name_ok {
            bail!(
                "{}: sweep name {name:?} (from {from}) may contain only letters, digits, `.`, `_` and `-`, and may not start with `.`: it names the slurm/ and results/ folders",
                at("name", "")
            );
        }
        if name.len() > MAX_NAME_LEN {
            bail!(
                "{}: sweep name (from {from}) has {} characters, more than {MAX_NAME_LEN}: it names folders and SLURM jobs; set a shorter `name:`",
                at("name", ""),
                name.len()
            );
        }
        sweep.name = name;
        let mut seen = std::collections::BTreeSet::new();
        for axis in &sweep.axes {
            for key in &axis.keys {
                if !seen.insert(key.clone()) {
                    bail!("{}: `{key}` is varied twice (in `grid` and/or `zip`); keep one", at(axis.section, key));
                }
            }
        }
        Ok(sweep)
    }
}

fn list_of(value: Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items,
        one => vec![one],
    }
}

/// The entries of a YAML mapping in file order (the order decides the order of the runs); None
/// when it is not a mapping of names. A value JSON cannot hold (`.nan`) is an error at its key.
fn entries(value: serde_norway::Value, section: &str, at: &dyn Fn(&str) -> String) -> Result<Option<Vec<(String, Value)>>> {
    let serde_norway::Value::Mapping(map) = value else { return Ok(None) };
    let mut out = Vec::new();
    for (k, v) in map {
        let Some(key) = k.as_str().map(str::to_string) else { return Ok(None) };
        let value = yaml::to_json(v).map_err(|e| anyhow!("{}: {section} axis `{key}`: {}", at(&key), e.message))?;
        out.push((key, value));
    }
    Ok(Some(out))
}

fn parse_grid(value: serde_norway::Value, at: &dyn Fn(&str) -> String) -> Result<Vec<Axis>> {
    let Some(map) = entries(value, "grid", at)? else {
        bail!("{}: `grid` must map field paths to lists of values, e.g. `k: [5, 10]`", at(""));
    };
    let mut axes = Vec::new();
    for (key, values) in map {
        let choices = list_of(values);
        if choices.is_empty() {
            bail!("{}: grid axis `{key}` has no values", at(&key));
        }
        axes.push(Axis { keys: vec![key], choices: choices.into_iter().map(|v| vec![v]).collect(), section: "grid" });
    }
    Ok(axes)
}

fn parse_zip(value: serde_norway::Value, at: &dyn Fn(&str) -> String) -> Result<Vec<Axis>> {
    let groups = match value {
        serde_norway::Value::Sequence(groups) => groups,
        one @ serde_norway::Value::Mapping(_) => vec![one],
        _ => bail!("{}: `zip` is a list of groups, each mapping field paths to lists of equal length", at("")),
    };
    let mut axes = Vec::new();
    for group in groups {
        let Some(map) = entries(group, "zip", at)? else {
            bail!("{}: each `zip` group maps field paths to lists of equal length", at(""));
        };
        let mut keys = Vec::new();
        let mut columns = Vec::new();
        for (key, values) in map {
            let values = list_of(values);
            if let Some(first) = columns.first().map(Vec::len)
                && values.len() != first
            {
                bail!("{}: zip group: `{key}` has {} values but `{}` has {first}; zipped lists must have equal length", at(&key), values.len(), keys[0]);
            }
            if values.is_empty() {
                bail!("{}: zip axis `{key}` has no values", at(&key));
            }
            keys.push(key);
            columns.push(values);
        }
        if keys.is_empty() {
            bail!("{}: empty `zip` group", at(""));
        }
        let choices = (0..columns[0].len()).map(|i| columns.iter().map(|c| c[i].clone()).collect()).collect();
        axes.push(Axis { keys, choices, section: "zip" });
    }
    Ok(axes)
}

/// The rules of `exclude:`. Each key must be a run field (a rule on a misspelt field would exclude
/// nothing, silently) and each value one that field can take (likewise).
fn parse_exclude(value: Value, at: &dyn Fn(&str) -> String) -> Result<Vec<ExcludeRule>> {
    let rules = match value {
        Value::Array(rules) => rules,
        Value::Null => Vec::new(),
        one => vec![one],
    };
    let fields = RunSpec::field_paths();
    let mut out = Vec::new();
    for rule in rules {
        let map = match rule {
            Value::Object(map) if !map.is_empty() => map,
            _ => bail!("{}: each `exclude` rule maps field paths to a value or a list of values, e.g. `{{prior: none, k: 10}}`", at("")),
        };
        let mut checked = Vec::new();
        for (key, values) in map {
            if !fields.contains(&key) {
                let hint = match yaml::nearest(&key, fields.iter().map(String::as_str)) {
                    Some(near) => format!("did you mean `{near}`?"),
                    None => format!("the fields are: {}", fields.join(", ")),
                };
                bail!("{}: `exclude` rule on `{key}`, which is not a run field (dotted paths to single values, e.g. `optimizer.lr`); {hint}", at(&key));
            }
            let values = list_of(values);
            for value in &values {
                let mut probe = Value::Object(Default::default());
                value_path::set(&mut probe, &key, value.clone())?;
                if let Err(e) = RunSpec::from_tree(&probe) {
                    bail!("{}: `exclude` rule on `{key}`: value {} can never match: {e}", at(&key), super::value_path::show(value));
                }
            }
            checked.push((key, values));
        }
        out.push(checked);
    }
    Ok(out)
}
