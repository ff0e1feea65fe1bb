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

/// `value` as pretty JSON through `write_file`: the small records other processes poll.
pub fn write_json<T: serde::Serialize>(target: &Path, value: &T) -> Result<()> {
    let json = serde_json::to_vec_pretty(value)?;
    write_file(target, |file| {
        use std::io::Write;
        file.write_all(&json)?;
        Ok(())
    })
}

/// What `write_json` wrote, or None when there is no such file (never a half-written one).
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    serde_json::from_slice(&bytes).map(Some).with_context(|| format!("{} is not valid JSON", path.display()))
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
