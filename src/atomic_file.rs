//! Whole-file writes that readers (other array tasks, a report) see completely or not at all:
//! write a temp file in the target's folder, flush it to disk, rename it over the target.

use anyhow::{Context, Result};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Calls `write` with a temp path next to `target`, then renames it into place. The temp name is
/// unique per process and call (threads of one process write too) and keeps the target's
/// extension last, because libtorch picks the file format from it. A failed write leaves nothing.
pub fn write_via_temp(target: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = target.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create folder {}", dir.display()))?;
    let name = target.file_name().with_context(|| format!("{} has no file name", target.display()))?.to_string_lossy();
    let tmp = dir.join(format!(".tmp-{}-{}-{name}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed)));
    let result = (|| -> Result<()> {
        write(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::File::open(&tmp).and_then(|f| f.sync_all()).with_context(|| format!("cannot flush {}", tmp.display()))?;
        std::fs::rename(&tmp, target).with_context(|| format!("cannot rename {} to {}", tmp.display(), target.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// `write_via_temp` for writers that take an open file.
pub fn write_file(target: &Path, write: impl FnOnce(&mut std::fs::File) -> Result<()>) -> Result<()> {
    write_via_temp(target, |tmp| {
        let mut file = std::fs::File::create(tmp)?;
        write(&mut file)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_write_leaves_nothing_and_success_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a.json");
        write_file(&target, |f| {
            use std::io::Write;
            f.write_all(b"one")?;
            Ok(())
        })
        .unwrap();
        assert!(write_via_temp(&target, |_| anyhow::bail!("boom")).is_err());
        assert_eq!(std::fs::read(&target).unwrap(), b"one");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temp file left");
    }
}
