//! Dotted paths (`optimizer.lr`, `augmentation.preset`) into a JSON value tree: how grid axes and
//! `gps train --set` address run-spec fields before the tree is deserialized into a `RunSpec`.

use anyhow::{Result, bail};
use serde_json::{Map, Value};

/// A value as the user wrote it: strings without quotes.
pub fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Sets `path` in `root`, creating intermediate mappings. Fails (naming the path) when a segment
/// on the way is a scalar, e.g. `k.x` where `k` is a number.
pub fn set(root: &mut Value, path: &str, new: Value) -> Result<()> {
    let mut node = root;
    let segments: Vec<&str> = path.split('.').collect();
    if segments.iter().any(|s| s.is_empty()) {
        bail!("`{path}` is not a valid field path (expected names separated by dots, like `optimizer.lr`)");
    }
    for (depth, segment) in segments.iter().enumerate() {
        if node.is_null() {
            *node = Value::Object(Map::new());
        }
        let Value::Object(map) = node else {
            bail!("`{path}`: `{}` is a single value, not a group of fields", segments[..depth].join("."));
        };
        if depth + 1 == segments.len() {
            map.insert((*segment).to_string(), new);
            return Ok(());
        }
        node = map.entry((*segment).to_string()).or_insert(Value::Null);
    }
    unreachable!("the loop returns at the last segment")
}

/// The value at `path`, if every segment exists.
pub fn get<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(root, |node, segment| node.get(segment))
}

/// Whether a rule value matches a resolved value: numbers compare numerically (so `k: 10` matches
/// 10 and `lr: 1` matches 1.0), everything else by equality.
pub fn same(rule: &Value, actual: &Value) -> bool {
    match (rule.as_f64(), actual.as_f64()) {
        (Some(a), Some(b)) => a == b,
        _ => rule == actual,
    }
}

/// Parses the right-hand side of `--set key=value` as YAML, so `0.1` is a number, `[1, 2]` a
/// list and `weak` a string, exactly as if it were written in the file.
pub fn parse_scalar(text: &str) -> Result<Value> {
    let yaml = crate::config::yaml::parse(text).map_err(|e| anyhow::anyhow!("`{text}` is not a YAML value: {e}"))?;
    crate::config::yaml::to_json(yaml).map_err(|e| anyhow::anyhow!("{}", e.message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn set_creates_groups_and_get_reads_back() {
        let mut v = json!({"k": 5});
        set(&mut v, "optimizer.lr", json!(0.3)).unwrap();
        set(&mut v, "k", json!(10)).unwrap();
        assert_eq!(v, json!({"k": 10, "optimizer": {"lr": 0.3}}));
        assert_eq!(get(&v, "optimizer.lr"), Some(&json!(0.3)));
        assert_eq!(get(&v, "optimizer.eta"), None);
    }

    #[test]
    fn set_through_a_scalar_is_an_error_naming_the_path() {
        let mut v = json!({"k": 5});
        let e = set(&mut v, "k.x", json!(1)).unwrap_err().to_string();
        assert!(e.contains("`k.x`") && e.contains("`k` is a single value"), "{e}");
        assert!(set(&mut v, "a..b", json!(1)).is_err());
    }

    #[test]
    fn numbers_match_across_int_and_float() {
        assert!(same(&json!(1), &json!(1.0)));
        assert!(!same(&json!(1), &json!(2)));
        assert!(same(&json!("weak"), &json!("weak")));
        assert_eq!(parse_scalar("0.1").unwrap(), json!(0.1));
        assert_eq!(parse_scalar("weak").unwrap(), json!("weak"));
        assert_eq!(parse_scalar("[1, 2]").unwrap(), json!([1, 2]));
    }
}
