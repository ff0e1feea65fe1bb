//! A submission's manifest: which run each array index stands for (`index<TAB>run id<TAB>label`).
//! Tasks look their run up by id, so a sweep file edited while tasks wait cannot make an index
//! silently mean a different run.

use super::expand::PlannedRun;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Manifest {
    pub path: PathBuf,
    /// (array index, run id), in index order.
    pub entries: Vec<(usize, String)>,
}

impl Manifest {
    pub fn write(path: &Path, runs: &[&PlannedRun]) -> Result<()> {
        let mut text = String::from("# array index\trun id\tlabel\n");
        for (index, run) in runs.iter().enumerate() {
            // The label is for people; tabs and newlines in it would break the columns.
            let label: String = run.label().chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
            text.push_str(&format!("{index}\t{}\t{label}\n", run.id));
        }
        std::fs::write(path, text).with_context(|| format!("cannot write manifest {}", path.display()))
    }

    pub fn read(path: &Path) -> Result<Manifest> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read manifest {}", path.display()))?;
        let mut entries = Vec::new();
        for (n, line) in text.lines().enumerate() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let mut cols = line.split('\t');
            let (Some(index), Some(id)) = (cols.next(), cols.next()) else {
                bail!("manifest {}, line {}: expected `index<TAB>run id`", path.display(), n + 1);
            };
            let index = index.parse().with_context(|| format!("manifest {}, line {}: bad index {index:?}", path.display(), n + 1))?;
            entries.push((index, id.to_string()));
        }
        Ok(Manifest { path: path.to_path_buf(), entries })
    }

    pub fn run_id(&self, index: usize) -> Option<&str> {
        self.entries.iter().find(|(i, _)| *i == index).map(|(_, id)| id.as_str())
    }
}
