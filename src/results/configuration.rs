//! A row's configuration: everything that decides what its run computed, except the seed. Two
//! rows belong in one table cell only if their configurations are equal, so a cell's n counts
//! independent runs of one configuration (seeds), never runs that differ in anything else.
//!
//! The configuration is the row's resolved run spec (`spec_json`) read back as a spec today
//! (fields added since the row was written take their defaults), flattened to dotted field paths,
//! without the seed and the operational fields the run id leaves out, plus the numerics version
//! of the code that wrote the row.

use super::reading::on_cores;
use crate::config::{OPERATIONAL_FIELDS, RunSpec};
use serde_json::Value;
use std::collections::BTreeMap;

/// The name of the numerics-version field in a configuration (and the row's column).
pub const NUMERICS: &str = "numerics";

/// Dotted spec field → value as text (`epochs` → `6`, `optimizer.lr` → `null`).
pub type Fields = BTreeMap<String, String>;

/// The configuration of a row from its `spec_json` and `numerics` columns. A spec today's gps
/// cannot read (from another version, with fields it does not know) is flattened as written; one
/// that is not JSON at all keeps a single field saying so, so it never merges with readable rows.
pub fn of_row(spec_json: Option<&str>, numerics: Option<i64>) -> Fields {
    let mut fields = match spec_json.map(serde_json::from_str::<Value>) {
        Some(Ok(tree)) => {
            let resolved = RunSpec::from_tree(&tree).ok().and_then(|spec| serde_json::to_value(spec).ok());
            flatten(resolved.as_ref().unwrap_or(&tree))
        }
        _ => BTreeMap::from([("spec_json".to_string(), "unreadable".to_string())]),
    };
    fields.retain(|path, _| path != "seed" && !OPERATIONAL_FIELDS.contains(&path.as_str()));
    fields.insert(NUMERICS.to_string(), crate::numerics::label(numerics));
    fields
}

/// The configurations of many rows: each row's index into the distinct configurations, and
/// those. A sweep's rows differ mostly in their seed, so each spec is keyed by its text without
/// the seed and the operational fields and resolved once per key (the resolution, not the
/// parse, is what costs); rows are keyed, and keys resolved, on every core. Rows with one key
/// have one configuration; rows of one configuration may have several keys (specs written
/// differently), which only costs a resolution each.
pub fn of_rows(specs: &[Option<&str>], numerics: &[Option<i64>]) -> (Vec<usize>, Vec<Fields>) {
    fn key(spec: Option<&str>, numerics: Option<i64>) -> (Option<String>, Option<i64>) {
        let text = spec.map(|s| match text_key(s) {
            Some(text) => text,
            None => match serde_json::from_str::<Value>(s) {
                Ok(Value::Object(mut m)) => {
                    m.remove("seed");
                    for f in OPERATIONAL_FIELDS {
                        m.remove(f);
                    }
                    // serde_json's maps are sorted: equal trees print equal text.
                    Value::Object(m).to_string()
                }
                // Anything else resolves by its own text (of_row names it unreadable or flattens it).
                _ => format!("raw:{s}"),
            },
        });
        (text, numerics)
    }
    let rows: Vec<usize> = (0..specs.len().min(numerics.len())).collect();
    let keys: Vec<(Option<String>, Option<i64>)> = on_cores(&rows, |&row| key(specs[row], numerics[row]));
    let mut first_of: std::collections::HashMap<&(Option<String>, Option<i64>), usize> = Default::default();
    let mut firsts: Vec<usize> = Vec::new();
    let index = keys
        .iter()
        .enumerate()
        .map(|(row, k)| {
            *first_of.entry(k).or_insert_with(|| {
                firsts.push(row);
                firsts.len() - 1
            })
        })
        .collect();
    let distinct = on_cores(&firsts, |&row| of_row(specs[row], numerics[row]));
    (index, distinct)
}

/// A spec's text with the values of its top-level `seed` and operational fields cut out, found
/// by a scan of the text (a tree per row was most of a 10,000-row report's keying). Two specs
/// with one key differ only in those values, each valid JSON, so they are one configuration. None
/// where the scan cannot split the text (not a JSON object, a cut value that is not JSON): the
/// caller keys those by their parsed tree.
fn text_key(spec: &str) -> Option<String> {
    fn skip_space(b: &[u8], mut i: usize) -> usize {
        while b.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        i
    }
    // The end (past the closing quote) of the string starting at `i`.
    fn string_end(b: &[u8], mut i: usize) -> Option<usize> {
        i += 1;
        loop {
            match b.get(i)? {
                b'\\' => i += 2,
                b'"' => return Some(i + 1),
                _ => i += 1,
            }
        }
    }
    // The end of the value starting at `i`: a string, an object or array (to its matching
    // bracket, strings skipped), or a scalar (to the next delimiter).
    fn value_end(b: &[u8], mut i: usize) -> Option<usize> {
        match b.get(i)? {
            b'"' => string_end(b, i),
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match b.get(i)? {
                        b'"' => {
                            i = string_end(b, i)?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                return Some(i + 1);
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
            }
            _ => {
                while b.get(i).is_some_and(|c| !matches!(c, b',' | b'}' | b']') && !c.is_ascii_whitespace()) {
                    i += 1;
                }
                Some(i)
            }
        }
    }
    let b = spec.as_bytes();
    let mut i = skip_space(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    let mut out = String::from("text:");
    let mut copied = 0;
    i = skip_space(b, i + 1);
    if b.get(i) != Some(&b'}') {
        loop {
            if b.get(i) != Some(&b'"') {
                return None;
            }
            let key_end = string_end(b, i)?;
            let name = spec.get(i + 1..key_end - 1)?;
            i = skip_space(b, key_end);
            if b.get(i) != Some(&b':') {
                return None;
            }
            let start = skip_space(b, i + 1);
            let end = value_end(b, start)?;
            if name == "seed" || OPERATIONAL_FIELDS.contains(&name) {
                serde_json::from_str::<serde::de::IgnoredAny>(spec.get(start..end)?).ok()?;
                out.push_str(spec.get(copied..start)?);
                copied = end;
            }
            i = skip_space(b, end);
            match b.get(i)? {
                b',' => i = skip_space(b, i + 1),
                b'}' => break,
                _ => return None,
            }
        }
    }
    out.push_str(spec.get(copied..)?);
    Some(out)
}

/// Leaf values of a JSON tree by dotted path, as text (strings unquoted, null as `null`).
pub fn flatten(tree: &Value) -> Fields {
    fn walk(v: &Value, path: String, out: &mut Fields) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    walk(v, if path.is_empty() { k.clone() } else { format!("{path}.{k}") }, out);
                }
            }
            Value::String(s) => {
                out.insert(path, s.clone());
            }
            other => {
                out.insert(path, other.to_string());
            }
        }
    }
    let mut out = Fields::new();
    walk(tree, String::new(), &mut out);
    out
}

/// The order fields are listed in (a caption reads like a paper's: data and model first): by
/// the group a field belongs to (a group's `name` first), then by name; the numerics version last.
pub fn display_order(path: &str) -> (usize, bool, &str) {
    const GROUPS: [&str; 18] = [
        "dataset",
        "backbone",
        "backbone_stem",
        "backbone_init",
        "method",
        "prior",
        "prior_options",
        "k",
        "exclude_self",
        "metric",
        "augmentation",
        "epochs",
        "batch_size",
        "optimizer",
        "temperature",
        "precision",
        "channels_last",
        "eval",
    ];
    if path == NUMERICS {
        return (usize::MAX, false, path);
    }
    let group = path.split('.').next().unwrap_or(path);
    (GROUPS.iter().position(|g| *g == group).unwrap_or(GROUPS.len()), !path.ends_with(".name"), path)
}

/// What the runs of a table are, as far as deciding which of their fixed fields shaped the numbers
/// shown: the priors and methods among them, and the metric shown.
#[derive(Debug, Clone, Default)]
pub struct TableFacts {
    pub priors: Vec<String>,
    pub methods: Vec<String>,
    pub metric: String,
}

/// Whether a field held fixed over a table changed what its cells computed. Fields of a part the
/// runs do not use (the autoencoder's sizes when no run has the autoencoder prior, the neighbour
/// fields of baseline-only tables, SimCLR's temperature for BYOL, the k-NN classifier's settings
/// for a probe accuracy) and the execution switches (precision, channels-last) did not: a report
/// lists them only with `--verbose`.
pub fn shapes_the_cells(field: &str, facts: &TableFacts) -> bool {
    let any_prior = |f: &dyn Fn(&str) -> bool| facts.priors.iter().any(|p| f(p));
    let guided = any_prior(&|p| p != "none");
    let image_prior = any_prior(&|p| !matches!(p, "none" | "labels") && !p.starts_with("embeddings:") && !p.starts_with("run:"));
    match field {
        "precision" | "channels_last" => false,
        "k" | "exclude_self" | "metric" => guided,
        "temperature" => facts.methods.iter().any(|m| m == "simclr" || m == "nnclr"),
        "prior_options.weights" => any_prior(&|p| p.starts_with("imagenet-resnet")),
        "prior_options.input_size" | "prior_options.normalization" => image_prior,
        "eval.knn_k" | "eval.knn_temperature" => facts.metric == "knn_top1",
        f if f.starts_with("prior_options.autoencoder") => any_prior(&|p| p == "autoencoder"),
        f if f.starts_with("neighbours.") || f.starts_with("prior_refresh.") => guided,
        _ => true,
    }
}

/// Fields a reader needs to place a table even at their defaults: the data, the model, the method,
/// the prior and the budget.
const ALWAYS_LISTED: [&str; 10] =
    ["dataset.name", "dataset.path", "dataset.format", "backbone", "method", "prior", "k", "augmentation.preset", "epochs", "batch_size"];

/// `RunSpec::default()` flattened: a field's default value as a configuration shows it.
static DEFAULTS: std::sync::LazyLock<Fields> = std::sync::LazyLock::new(|| flatten(&serde_json::to_value(RunSpec::default()).expect("RunSpec serialises")));

/// Whether a field held fixed at `value` over a table is listed in its `fixed:` note (the rest with
/// `--verbose`): it shaped what the cells computed (`shapes_the_cells`), and it is either one a
/// reader always needs (`ALWAYS_LISTED`, the numerics version) or away from its default.
pub fn worth_listing(field: &str, value: &str, facts: &TableFacts) -> bool {
    shapes_the_cells(field, facts) && (field == NUMERICS || ALWAYS_LISTED.contains(&field) || DEFAULTS.get(field).is_none_or(|d| d != value))
}

/// The part of a run a field belongs to, for listing fixed fields grouped as a paper's setup
/// section reads: data, model, method, positives, augmentation, training, evaluation.
pub fn group_of(field: &str) -> &'static str {
    let head = field.split('.').next().unwrap_or(field);
    match head {
        "dataset" => "data",
        "backbone" | "backbone_stem" | "backbone_init" => "model",
        "method" | "temperature" | "positives" => "method",
        "prior" | "prior_options" | "k" | "exclude_self" | "metric" | "neighbours" | "prior_refresh" => "positives",
        "augmentation" => "augmentation",
        "epochs" | "batch_size" | "optimizer" => "training",
        "eval" => "evaluation",
        "precision" | "channels_last" => "execution",
        NUMERICS => "numerics",
        _ => "other",
    }
}

/// The spec fields a row column stands for in a table key (`dataset` is `dataset.name`, `lr` is
/// `optimizer.lr`); a column that is itself a spec field stands for itself.
pub fn fields_of_column(column: &str) -> Vec<&str> {
    match column {
        "dataset" => vec!["dataset.name"],
        "augmentation" => vec!["augmentation.preset", "augmentation.strength"],
        "strength" => vec!["augmentation.strength"],
        "lr" => vec!["optimizer.lr"],
        other => vec![other],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configuration_is_the_spec_without_seed_and_operational_fields() {
        let spec = RunSpec { seed: 3, epochs: 6, name: "x".into(), ..RunSpec::default() };
        let fields = of_row(Some(&serde_json::to_string(&spec).unwrap()), Some(1));
        assert_eq!(fields["epochs"], "6");
        assert_eq!(fields["optimizer.lr"], "null");
        assert_eq!(fields["dataset.name"], "cifar10");
        assert_eq!(fields[NUMERICS], "1");
        for gone in ["seed", "name", "device", "output_dir", "cache_dir", "checkpoint_every"] {
            assert!(!fields.contains_key(gone), "{gone}");
        }
        let other_seed = RunSpec { seed: 4, ..spec.clone() };
        assert_eq!(fields, of_row(Some(&serde_json::to_string(&other_seed).unwrap()), Some(1)));
        assert_ne!(fields, of_row(Some(&serde_json::to_string(&other_seed).unwrap()), None), "numerics versions differ");
    }

    #[test]
    fn rows_of_one_configuration_share_it_whatever_their_seed() {
        let a = RunSpec { seed: 3, epochs: 6, name: "a".into(), ..RunSpec::default() };
        let b = RunSpec { seed: 4, name: "b".into(), ..a.clone() };
        let c = RunSpec { epochs: 7, ..a.clone() };
        let texts: Vec<String> = [&a, &b, &c, &a].iter().map(|s| serde_json::to_string(s).unwrap()).collect();
        let specs: Vec<Option<&str>> = texts.iter().map(|t| Some(t.as_str())).chain([Some("not json"), None]).collect();
        let numerics = [Some(2), Some(2), Some(2), Some(1), Some(2), Some(2)];
        let (index, distinct) = of_rows(&specs, &numerics);
        assert_eq!(index, [0, 0, 1, 2, 3, 4]);
        for (row, &i) in index.iter().enumerate() {
            assert_eq!(distinct[i], of_row(specs[row], numerics[row]), "row {row}");
        }
    }

    #[test]
    fn the_text_key_cuts_only_top_level_seed_and_operational_values() {
        let key = |s: &str| text_key(s).unwrap_or_else(|| panic!("{s}"));
        assert_eq!(key(r#"{"seed": 1, "k": 5}"#), key(r#"{"seed": 22, "k": 5}"#));
        assert_eq!(key(r#"{"name":"a}\"b","k":5,"device":"cpu"}"#), key(r#"{"name":"c","k":5,"device":"cuda:1"}"#));
        assert_ne!(key(r#"{"k": 5, "seed": 1}"#), key(r#"{"k": 6, "seed": 1}"#));
        // A nested `seed` is configuration (a prior's own seed), not the run's.
        assert_ne!(key(r#"{"p": {"seed": 1}, "seed": 0}"#), key(r#"{"p": {"seed": 2}, "seed": 0}"#));
        assert_ne!(key(r#"{"p": ["seed", 1]}"#), key(r#"{"p": ["seed", 2]}"#));
        assert_eq!(key("{}"), "text:{}");
        for bad in ["not json", "[1]", r#"{"seed": 1x, "k": 5}"#, r#"{"k" 5}"#, r#"{"k": 5"#, r#"{"seed": "#] {
            assert_eq!(text_key(bad), None, "{bad}");
        }
        // Every spec gps writes is keyed by text, the same for every seed.
        let spec = |seed| serde_json::to_string(&RunSpec { seed, name: format!("run{seed}"), ..RunSpec::default() }).unwrap();
        assert_eq!(text_key(&spec(1)).unwrap(), text_key(&spec(2)).unwrap());
        let pretty = serde_json::to_string_pretty(&RunSpec::default()).unwrap();
        assert!(text_key(&pretty).is_some());
    }

    #[test]
    fn an_older_spec_reads_with_todays_defaults_and_an_unknown_one_as_written() {
        // A spec written before `eval.every_epochs` existed.
        let old = r#"{"k": 5, "epochs": 2, "eval": {"knn_k": 20, "knn_temperature": 0.07}}"#;
        let fields = of_row(Some(old), None);
        assert_eq!(fields["eval.every_epochs"], "1");
        assert_eq!(fields[NUMERICS], "unversioned");
        let foreign = r#"{"k": 5, "future_field": {"a": true}}"#;
        let fields = of_row(Some(foreign), Some(9));
        assert_eq!((fields["future_field.a"].as_str(), fields["k"].as_str()), ("true", "5"));
        assert_eq!(of_row(Some("not json"), None)["spec_json"], "unreadable");
    }
}
