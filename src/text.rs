//! Plain text out of gps, for every command: left-aligned columns, stdout writes that a closed
//! pipe (`gps sweep expand x | head`) does not turn into a panic, and POSIX shell quoting (the
//! sbatch scripts, the command line a result row records).

/// Rows of cells as lines of left-aligned columns two spaces apart (trailing blanks trimmed).
pub fn align(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns).map(|c| rows.iter().map(|r| r.get(c).map_or(0, |x| x.chars().count())).max().unwrap_or(0)).collect();
    let mut text = String::new();
    for row in rows {
        let cells: Vec<String> = row.iter().enumerate().map(|(c, x)| format!("{x:<w$}", w = widths[c])).collect();
        text.push_str(cells.join("  ").trim_end());
        text.push('\n');
    }
    text
}

/// Writes to stdout; a closed pipe is not an error worth a panic.
pub fn emit(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Quotes a string for a POSIX shell: inside single quotes nothing is special except the quote
/// itself, which is written as `'\''`.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_line_up() {
        let rows = vec![vec!["a".to_string(), "bb".into(), "".into()], vec!["ccc".into(), "d".into(), "e".into()]];
        assert_eq!(super::align(&rows), "a    bb\nccc  d   e\n");
    }
}
