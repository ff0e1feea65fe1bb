//! How every YAML input of gps is read (run specs, sweep files, `--set` values): one document, a
//! leading byte-order mark accepted (Windows editors write one), duplicate keys and alias bombs
//! reported with their line, then turned into a JSON tree on which dotted paths are set and from
//! which specs are deserialized.
//!
//! The conversion refuses what JSON cannot hold instead of letting it change meaning: a plain
//! `serde_json::to_value` turns `.nan` and `.inf` into `null`, which reads as "not set" and gives
//! the run the defaults. And before deserializing, every field that is a group of fields must be a
//! mapping: serde reads a list into a struct by field position (`optimizer: [sgd, 0.1]` would be
//! kind sgd, lr 0.1).

use serde::de::DeserializeOwned;
use serde_json::{Map, Number, Value};
use std::fmt;

/// An error at a field of the tree: `path` is dotted, with `[i]` for list items (`base.k`,
/// `extra[2]`); empty for the document itself.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() { f.write_str(&self.message) } else { write!(f, "field `{}`: {}", self.path, self.message) }
    }
}

impl std::error::Error for FieldError {}

impl FieldError {
    /// The path without list indices (`grid.k[3]` -> `grid.k`): what a line can be found for.
    pub fn key_path(&self) -> String {
        let mut out = String::new();
        let mut depth = 0;
        for c in self.path.chars() {
            match c {
                '[' => depth += 1,
                ']' => depth -= 1,
                c if depth == 0 => out.push(c),
                _ => {}
            }
        }
        out.split('.').filter(|s| !s.is_empty()).collect::<Vec<_>>().join(".")
    }

    /// The same error one level down: `prefix` joined in front of the path.
    pub fn under(mut self, prefix: &str) -> FieldError {
        self.path = join(prefix, &self.path);
        self
    }
}

fn join(prefix: &str, path: &str) -> String {
    match (prefix.is_empty(), path.is_empty()) {
        (true, _) => path.to_string(),
        (false, true) => prefix.to_string(),
        (false, false) if path.starts_with('[') => format!("{prefix}{path}"),
        (false, false) => format!("{prefix}.{path}"),
    }
}

/// Parses one YAML document. Errors are plain sentences with the line where it can be told.
pub fn parse(text: &str) -> Result<serde_norway::Value, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    serde_norway::from_str(text).map_err(|e| explain(text, &e))
}

/// serde_norway's message, with the line added where it gives none.
fn explain(text: &str, e: &serde_norway::Error) -> String {
    let message = e.to_string();
    if let Some(key) = message.split("duplicate entry with key ").nth(1).and_then(quoted_prefix) {
        let line = duplicate_key_line(text, &key, e.location().map(|l| (l.line(), l.column())));
        return format!("line {line}: key `{key}` appears twice in the same mapping; keep one");
    }
    if message.contains("repetition limit exceeded") {
        let at = first_alias_line(text).map(|l| format!("line {l}: ")).unwrap_or_default();
        return format!("{at}YAML aliases (`*name`) expand to too many values (repetition limit exceeded); write the values out instead");
    }
    if message.contains("recursion limit exceeded") {
        return format!("{message}: the document is nested too deeply");
    }
    if message.contains("more than one document") {
        let at = text.lines().position(|l| l.starts_with("---") || l.starts_with("...")).map(|i| format!("line {}: ", i + 1)).unwrap_or_default();
        return format!("{at}the file holds more than one YAML document (`---` separates documents); gps reads exactly one");
    }
    message
}

/// `"k" at line 2 column 3` -> `k`.
fn quoted_prefix(s: &str) -> Option<String> {
    let rest = s.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '"' => return Some(out),
            c => out.push(c),
        }
    }
    None
}

/// The line of the second `key:` in the block mapping that starts at `at` (1-based line and
/// column; the document root when None). Falls back to the mapping's own line (flow style).
fn duplicate_key_line(text: &str, key: &str, at: Option<(usize, usize)>) -> usize {
    let (start, column) = at.map(|(l, c)| (l.saturating_sub(1), c.saturating_sub(1))).unwrap_or((0, 0));
    let patterns = [format!("{key}:"), format!("\"{key}\":"), format!("'{key}':")];
    let mut seen = 0;
    for (i, line) in text.lines().enumerate().skip(start) {
        let indent = line.len() - line.trim_start_matches([' ', '-']).len();
        let body = line.trim_start_matches([' ', '-']);
        if i > start && !body.is_empty() && !body.starts_with('#') && indent < column {
            break; // left the mapping
        }
        if indent == column && patterns.iter().any(|p| body.starts_with(p.as_str())) {
            seen += 1;
            if seen == 2 {
                return i + 1;
            }
        }
    }
    start + 1
}

/// The line of the first alias (`*name`) outside quotes and comments.
fn first_alias_line(text: &str) -> Option<usize> {
    text.lines()
        .position(|line| {
            let code = line.split(" #").next().unwrap_or(line);
            let bytes = code.as_bytes();
            (0..bytes.len()).any(|i| {
                bytes[i] == b'*' && (i == 0 || b" \t[{,:-".contains(&bytes[i - 1])) && bytes.get(i + 1).is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
            })
        })
        .map(|i| i + 1)
}

/// Converts a YAML tree to JSON, refusing non-finite numbers, tags and keys that are not names.
pub fn to_json(value: serde_norway::Value) -> Result<Value, FieldError> {
    convert(value, "")
}

fn convert(value: serde_norway::Value, path: &str) -> Result<Value, FieldError> {
    use serde_norway::Value as Y;
    let fail = |message: String| Err(FieldError { path: path.to_string(), message });
    Ok(match value {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::String(s) => Value::String(s),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                let x = n.as_f64().unwrap_or(f64::NAN);
                match Number::from_f64(x) {
                    Some(n) => Value::Number(n),
                    None => {
                        let shown = if x.is_nan() {
                            ".nan"
                        } else if x > 0.0 {
                            ".inf"
                        } else {
                            "-.inf"
                        };
                        return fail(format!("{shown} is not a finite number; write a number (or `null` for the default)"));
                    }
                }
            }
        }
        Y::Sequence(items) => Value::Array(items.into_iter().enumerate().map(|(i, v)| convert(v, &format!("{path}[{i}]"))).collect::<Result<_, _>>()?),
        Y::Mapping(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                let key = match k {
                    Y::String(s) => s,
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    other => return fail(format!("a mapping key must be a name, not {}", kind(&other))),
                };
                let value = convert(v, &join(path, &key))?;
                out.insert(key, value);
            }
            Value::Object(out)
        }
        Y::Tagged(t) => return fail(format!("YAML tags (`{}`) are not supported; write the plain value", t.tag)),
    })
}

fn kind(v: &serde_norway::Value) -> &'static str {
    match v {
        serde_norway::Value::Null => "null",
        serde_norway::Value::Bool(_) => "a boolean",
        serde_norway::Value::Number(_) => "a number",
        serde_norway::Value::String(_) => "a string",
        serde_norway::Value::Sequence(_) => "a list",
        serde_norway::Value::Mapping(_) => "a mapping",
        serde_norway::Value::Tagged(_) => "a tagged value",
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing (null)",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Deserializes `tree` into `T`. `shape` is `T::default()` as JSON: wherever it holds a mapping
/// (a group of fields) the tree must hold a mapping too, not a list serde would read by position.
/// Errors name the dotted path of the field.
pub fn from_tree<T: DeserializeOwned>(tree: &Value, shape: &Value) -> Result<T, FieldError> {
    check_shape(tree, shape, "")?;
    serde_path_to_error::deserialize(tree).map_err(|e| {
        let path = e.path().to_string();
        FieldError { path: if path == "." { String::new() } else { path }, message: e.into_inner().to_string() }
    })
}

fn check_shape(tree: &Value, shape: &Value, path: &str) -> Result<(), FieldError> {
    let Value::Object(fields) = shape else { return Ok(()) };
    let Value::Object(given) = tree else {
        let names: Vec<&str> = fields.keys().map(String::as_str).collect();
        return Err(FieldError {
            path: path.to_string(),
            message: format!("expected a mapping (of the fields {}), got {}", names.join(", "), json_kind(tree)),
        });
    };
    for (key, value) in given {
        if let Some(sub) = fields.get(key) {
            check_shape(value, sub, &join(path, key))?;
        }
    }
    Ok(())
}

/// The dotted paths of the single-valued fields (the leaves) of a shape, in order.
pub fn leaf_paths(shape: &Value) -> Vec<String> {
    fn walk(v: &Value, path: &str, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => m.iter().for_each(|(k, v)| walk(v, &join(path, k), out)),
            _ => out.push(path.to_string()),
        }
    }
    let mut out = Vec::new();
    walk(shape, "", &mut out);
    out
}

/// The candidate closest to `word` in edit distance, when it is close enough to be a typo.
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates.into_iter().map(|c| (edit_distance(word, c), c)).filter(|(d, c)| *d <= 2.max(c.len() / 4)).min_by_key(|(d, _)| *d).map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (diagonal + usize::from(ca != *cb)).min(row[j] + 1).min(row[j + 1] + 1);
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn byte_order_mark_is_accepted() {
        assert!(parse("\u{feff}k: 5\n").is_ok());
    }

    #[test]
    fn duplicate_keys_and_alias_bombs_name_a_line() {
        let e = parse("grid: {k: [5]}\nname: a\ngrid: {k: [6]}\n").unwrap_err();
        assert!(e.contains("line 3") && e.contains("`grid` appears twice"), "{e}");
        let e = parse("base:\n  k: 5\n  epochs: 2\n  k: 6\n").unwrap_err();
        assert!(e.contains("line 4") && e.contains("`k` appears twice"), "{e}");
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x]\n");
        for (name, prev) in [("b", "a"), ("c", "b"), ("d", "c"), ("e", "d"), ("f", "e"), ("g", "f")] {
            bomb.push_str(&format!("{name}: &{name} [{}]\n", vec![format!("*{prev}"); 9].join(", ")));
        }
        let e = parse(&bomb).unwrap_err();
        assert!(e.contains("line 2") && e.contains("repetition limit"), "{e}");
        let e = parse("k: 5\n---\nk: 6\n").unwrap_err();
        assert!(e.contains("line 2") && e.contains("more than one YAML document"), "{e}");
    }

    #[test]
    fn non_finite_numbers_are_refused_with_their_path() {
        for (text, path, shown) in [
            ("optimizer: {lr: .nan}", "optimizer.lr", ".nan"),
            ("a: [1, .inf]", "a[1]", ".inf"),
            ("t: -.inf", "t", "-.inf"),
            ("t: .NaN", "t", ".nan"),
            ("t: +.Inf", "t", ".inf"),
        ] {
            let e = to_json(parse(text).unwrap()).unwrap_err();
            assert_eq!(e.path, path, "{text}");
            assert!(e.message.contains(shown), "{e}");
        }
        assert_eq!(to_json(parse("a: [1, 2.5, x, null]").unwrap()).unwrap(), json!({"a": [1, 2.5, "x", null]}));
        assert!(to_json(parse("a: !custom 3").unwrap()).unwrap_err().message.contains("tags"));
    }

    #[test]
    fn a_list_where_a_mapping_belongs_is_refused() {
        #[derive(serde::Deserialize, serde::Serialize, Default)]
        #[serde(default)]
        struct Inner {
            kind: String,
            lr: f64,
        }
        #[derive(serde::Deserialize, serde::Serialize, Default)]
        #[serde(default)]
        struct Outer {
            optimizer: Inner,
        }
        let shape = serde_json::to_value(Outer::default()).unwrap();
        let e = from_tree::<Outer>(&json!({"optimizer": ["sgd", 0.1]}), &shape).err().unwrap();
        assert_eq!(e.path, "optimizer");
        assert!(e.message.contains("expected a mapping") && e.message.contains("got a list"), "{e}");
        assert!(from_tree::<Outer>(&json!([{"kind": "sgd"}]), &shape).is_err());
        assert_eq!(from_tree::<Outer>(&json!({"optimizer": {"lr": 0.5}}), &shape).unwrap().optimizer.lr, 0.5);
    }

    #[test]
    fn key_paths_and_nearest_names() {
        let e = FieldError { path: "grid.k[3]".into(), message: String::new() };
        assert_eq!(e.key_path(), "grid.k");
        assert_eq!(FieldError { path: "[0].methd".into(), message: String::new() }.key_path(), "methd");
        assert_eq!(nearest("methd", ["method", "metric", "seed"]), Some("method"));
        assert_eq!(nearest("zzzzzz", ["method", "seed"]), None);
    }
}
