//! Finds the line of a field in the sweep file's text, so errors found after parsing (a bad grid
//! value, a run that fails validation) still point at a line. serde gives positions only for
//! syntax and type errors of the document itself; everything after that is located here by
//! walking the key path through the text: good for block and flow style, never wrong about the
//! file, and at worst it points at the enclosing section.

/// 1-based line of `path` (dotted, e.g. `optimizer.lr`) inside the top-level `section` (e.g.
/// `grid`, `base`; empty for the document root). A grid axis key may itself contain dots
/// (`optimizer.lr: [..]`), so the whole path is tried as one key before its segments.
pub fn locate(text: &str, section: &str, path: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let mut from = 0;
    let mut found = None;
    let mut end = lines.len();
    if !section.is_empty() {
        from = lines.iter().position(|l| is_key_line(l, section, true))?;
        found = Some(from);
        // the section ends where the next top-level key starts
        end = (from + 1..lines.len()).find(|&i| lines[i].starts_with(|c: char| !c.is_whitespace() && c != '#' && c != '-')).unwrap_or(lines.len());
    }
    let lines = &lines[..end];
    if path.is_empty() {
        return found.map(|i| i + 1);
    }
    if let Some(i) = find_key(lines, from, path) {
        return Some(i + 1);
    }
    for segment in path.split('.') {
        match find_key(lines, from, segment) {
            Some(i) => {
                from = i;
                found = Some(i);
            }
            None => break,
        }
    }
    found.map(|i| i + 1)
}

fn find_key(lines: &[&str], from: usize, key: &str) -> Option<usize> {
    (from..lines.len()).find(|&i| is_key_line(lines[i], key, false))
}

/// Whether `line` holds `key:` as a mapping key (block `key:`, list item `- key:`, flow `{key: ..`
/// or `, key:`), quoted or not. `top` requires it at column 0.
fn is_key_line(line: &str, key: &str, top: bool) -> bool {
    let code = line.split(" #").next().unwrap_or(line);
    if top {
        return [format!("{key}:"), format!("\"{key}\":"), format!("'{key}':")].iter().any(|p| code.starts_with(p.as_str()));
    }
    for quoted in [key.to_string(), format!("\"{key}\""), format!("'{key}'")] {
        let pattern = format!("{quoted}:");
        let mut rest = code;
        while let Some(at) = rest.find(&pattern) {
            let before = rest[..at].trim_end();
            if before.is_empty() || before.ends_with('{') || before.ends_with(',') || before.ends_with('-') {
                return true;
            }
            rest = &rest[at + pattern.len()..];
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::locate;

    const TEXT: &str = "name: s\nbase:\n  k: 5\n  optimizer:\n    lr: 0.1\ngrid:\n  method: [simclr]\n  optimizer.lr: [0.1, 0.3]\n  k: [5, 10]\nexclude:\n  - {method: byol, k: 10}\n";

    #[test]
    fn finds_nested_dotted_and_flow_keys() {
        assert_eq!(locate(TEXT, "base", "optimizer.lr"), Some(5));
        assert_eq!(locate(TEXT, "base", "k"), Some(3));
        assert_eq!(locate(TEXT, "grid", "optimizer.lr"), Some(8));
        assert_eq!(locate(TEXT, "grid", "k"), Some(9));
        assert_eq!(locate(TEXT, "exclude", "k"), Some(11));
        assert_eq!(locate(TEXT, "grid", ""), Some(6));
        // unknown key: falls back to the section
        assert_eq!(locate(TEXT, "grid", "nope"), Some(6));
        assert_eq!(locate(TEXT, "slurm", "time"), None);
    }
}
