//! Grid expansion: the cartesian product of the axes, each combination applied to `base` at the
//! JSON level, then deserialized into a `RunSpec` and validated. Every run keeps the stable id of
//! its resolved spec, so editing a grid keeps the ids (and results) of the runs that did not change.

use super::file::{Axis, SweepFile};
use super::source_lines::locate;
use super::value_path::{self, show};
use crate::config::RunSpec;
use anyhow::{Result, anyhow, bail};
use serde_json::Value;
use std::collections::HashMap;

/// One run of a sweep, in expansion order.
#[derive(Debug, Clone)]
pub struct PlannedRun {
    /// Position in the full expansion (stable while the grid is unchanged).
    pub index: usize,
    /// `RunSpec::run_id`: a hash of the resolved spec.
    pub id: String,
    pub spec: RunSpec,
    /// The axis values that made this run, `key=value`, for tables and messages.
    pub choices: Vec<(String, Value)>,
}

impl PlannedRun {
    /// `method=simclr prior=none k=5`: what distinguishes this run within its sweep.
    pub fn label(&self) -> String {
        let parts: Vec<String> = self.choices.iter().map(|(k, v)| format!("{k}={}", show(v))).collect();
        if parts.is_empty() { "(base)".into() } else { parts.join(" ") }
    }
}

/// Default of `--max-runs`: far above any real grid (the paper's table is 90 runs, a big
/// ablation a few thousand), far below what a typo makes (`seed: [0..9999]` × `k: [1..1000]`).
pub const DEFAULT_MAX_RUNS: usize = 100_000;

/// Expands a sweep into its runs, refusing grids of more than `DEFAULT_MAX_RUNS` runs.
pub fn expand(sweep: &SweepFile) -> Result<Vec<PlannedRun>> {
    expand_up_to(sweep, DEFAULT_MAX_RUNS)
}

/// The number of combinations of the grid and zip axes, before `exclude` (None: beyond usize).
pub fn combinations(sweep: &SweepFile) -> Option<usize> {
    sweep.axes.iter().try_fold(1usize, |n, axis| n.checked_mul(axis.choices.len()))
}

/// Expands a sweep into its runs. The runs are counted before anything is built: a grid of more
/// than `max_runs` is refused with its size, not materialised. Errors name the sweep file, the
/// line and the field.
pub fn expand_up_to(sweep: &SweepFile, max_runs: usize) -> Result<Vec<PlannedRun>> {
    let mut base = sweep.base.clone();
    if base.is_null() {
        base = Value::Object(Default::default());
    }
    if value_path::get(&base, "output_dir").is_none() {
        value_path::set(&mut base, "output_dir", Value::String(format!("results/{}", sweep.name)))?;
    }
    let file = sweep.path.display();
    let at = |section: &str, field: &str| match locate(&sweep.text, section, field) {
        Some(line) => format!("{file}, line {line}"),
        None => file.to_string(),
    };
    let total = combinations(sweep);
    if total.is_none_or(|n| n > max_runs) {
        let sizes: Vec<String> = sweep.axes.iter().map(|a| format!("{} {}", a.keys.join("+"), a.choices.len())).collect();
        let count = total.map(|n| n.to_string()).unwrap_or_else(|| "more than 2^64".into());
        bail!(
            "{}: the grid has {count} runs ({}), more than the limit of {max_runs}: a typo? If you mean it, raise the limit with --max-runs {}",
            at("grid", ""),
            sizes.join(" × "),
            total.unwrap_or(usize::MAX)
        );
    }
    deserialize(&base).map_err(|(path, e)| anyhow!("{}: `base`, field `{path}`: {e}", at("base", &path)))?;
    // Each axis value alone on the base: a typo in a grid is reported once, at its own line,
    // rather than once per combination.
    for axis in &sweep.axes {
        for choice in &axis.choices {
            let mut probe = base.clone();
            for (key, value) in axis.keys.iter().zip(choice) {
                value_path::set(&mut probe, key, value.clone()).map_err(|e| anyhow!("{}: {} axis: {e}", at(axis.section, key), axis.section))?;
            }
            deserialize(&probe).map_err(|(path, e)| {
                let key = axis.keys.iter().find(|k| path.starts_with(k.as_str())).unwrap_or(&axis.keys[0]);
                anyhow!(
                    "{}: {} axis `{key}`, value {}: field `{path}`: {e}",
                    at(axis.section, key),
                    axis.section,
                    show(&choice[axis.keys.iter().position(|k| k == key).unwrap_or(0)])
                )
            })?;
        }
    }
    let defaults = serde_json::to_value(RunSpec::default())?;
    let combinations: Vec<Vec<usize>> = Product::new(&sweep.axes).collect();
    // Resolving a run (merge, deserialize, validate, hash) is independent per run: split the
    // product over the cores, then number the runs in order.
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(combinations.len().div_ceil(512)).max(1);
    let chunk = combinations.len().div_ceil(threads).max(1);
    let resolved: Vec<Resolved> = std::thread::scope(|scope| {
        let workers: Vec<_> =
            combinations.chunks(chunk).map(|part| scope.spawn(|| part.iter().map(|c| resolve(sweep, &base, &defaults, c)).collect::<Vec<_>>())).collect();
        workers.into_iter().flat_map(|w| w.join().expect("expansion worker panicked")).collect()
    });
    let mut runs: Vec<PlannedRun> = Vec::new();
    let mut by_id: HashMap<String, usize> = HashMap::new();
    for outcome in resolved {
        let index = runs.len();
        let (choices, spec) = match outcome {
            Resolved::Excluded => continue,
            Resolved::Run { choices, spec } => (choices, spec),
            Resolved::Invalid { choices, error, field } => {
                let label = PlannedRun { index, id: String::new(), spec: RunSpec::default(), choices }.label();
                let line = field.map(|f| at("grid", &f)).unwrap_or_else(|| at("grid", ""));
                bail!("{line}: run {index} ({label}): {error}");
            }
        };
        let id = spec.run_id();
        if let Some(&other) = by_id.get(&id) {
            let label = PlannedRun { index, id: String::new(), spec: RunSpec::default(), choices }.label();
            bail!(
                "{file}: runs {other} ({}) and {index} ({label}) are the same run (id {id}): they differ only in fields that do not change what is computed (name, device, output_dir, cache_dir, checkpoint_every); remove that axis",
                runs[other].label()
            );
        }
        by_id.insert(id.clone(), index);
        runs.push(PlannedRun { index, id, spec, choices });
    }
    if runs.is_empty() {
        bail!("{file}: every run is excluded by `exclude`; nothing to do");
    }
    Ok(runs)
}

enum Resolved {
    Excluded,
    Run {
        choices: Vec<(String, Value)>,
        spec: RunSpec,
    },
    /// `field`: the grid key the error is about, when one can be told.
    Invalid {
        choices: Vec<(String, Value)>,
        error: String,
        field: Option<String>,
    },
}

/// One combination of axis choices applied to the base, checked against `exclude`, deserialized
/// and validated.
fn resolve(sweep: &SweepFile, base: &Value, defaults: &Value, combination: &[usize]) -> Resolved {
    let mut merged = base.clone();
    let mut choices = Vec::new();
    for (axis, &pick) in sweep.axes.iter().zip(combination) {
        for (key, value) in axis.keys.iter().zip(&axis.choices[pick]) {
            if let Err(e) = value_path::set(&mut merged, key, value.clone()) {
                return Resolved::Invalid { choices, error: e.to_string(), field: Some(key.clone()) };
            }
            choices.push((key.clone(), value.clone()));
        }
    }
    let excluded = sweep.exclude.iter().any(|rule| {
        rule.iter().all(|(path, allowed)| {
            let actual = value_path::get(&merged, path).or_else(|| value_path::get(defaults, path));
            actual.is_some_and(|a| allowed.iter().any(|v| value_path::same(v, a)))
        })
    });
    if excluded {
        return Resolved::Excluded;
    }
    let spec = match deserialize(&merged) {
        Ok(spec) => spec,
        Err((path, e)) => return Resolved::Invalid { error: format!("field `{path}`: {e}"), field: Some(path), choices },
    };
    if let Err(e) = spec.validate() {
        let text = e.to_string();
        let field = choices.iter().find(|(k, _)| text.contains(&format!("`{k}"))).map(|(k, _)| k.clone());
        return Resolved::Invalid { choices, error: text, field };
    }
    Resolved::Run { choices, spec }
}

/// Deserializes a merged tree into a `RunSpec`, returning the dotted path of the failing field.
fn deserialize(tree: &Value) -> std::result::Result<RunSpec, (String, String)> {
    RunSpec::from_tree(tree).map_err(|e| (e.path, e.message))
}

/// Mixed-radix counter over the axes, last axis fastest (like nested loops in file order).
struct Product {
    sizes: Vec<usize>,
    next: Option<Vec<usize>>,
}

impl Product {
    fn new(axes: &[Axis]) -> Product {
        let sizes: Vec<usize> = axes.iter().map(|a| a.choices.len()).collect();
        let next = if sizes.contains(&0) { None } else { Some(vec![0; sizes.len()]) };
        Product { sizes, next }
    }
}

impl Iterator for Product {
    type Item = Vec<usize>;
    fn next(&mut self) -> Option<Vec<usize>> {
        let current = self.next.take()?;
        let mut following = current.clone();
        let mut carry = true;
        for i in (0..following.len()).rev() {
            following[i] += 1;
            if following[i] < self.sizes[i] {
                carry = false;
                break;
            }
            following[i] = 0;
        }
        if !carry {
            self.next = Some(following);
        }
        Some(current)
    }
}
