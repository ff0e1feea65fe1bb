//! One builder per cache entry, however many processes want it at once: the first takes an
//! exclusive lock on `<cache_dir>/locks/<entry>.lock`, builds and stores the entry; the others
//! wait on the lock, then load what it stored. Sixty-four array tasks that start in the same
//! second on an empty cache build a prior's neighbour table once, not sixty-four times, whether
//! or not a preparation job ran first.
//!
//! The lock is `flock(2)` (std's `File::lock`): the kernel drops it when its holder dies, so a
//! builder killed mid-way (SIGKILL, a lost node) never leaves the others waiting; they take the
//! lock and build it themselves. On NFS, Linux maps it to a POSIX lock held by the server (NFSv4,
//! or v3 with lockd). A file system that refuses locks (some FUSE mounts) is warned about once
//! per entry, and every process then builds on its own, as before: slower, never wrong, because
//! every entry is written through a temp file and a rename.

use anyhow::Result;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// `<cache_dir>/locks/<name>.lock`.
pub fn lock_path(cache_dir: &Path, name: &str) -> PathBuf {
    cache_dir.join("locks").join(format!("{name}.lock"))
}

/// `load()` if the entry is there; else, under the entry's lock, `load()` again (another process
/// may have built it while this one waited) and otherwise `build()`. `what` names the entry in
/// the log lines that say who built it and who waited, which is how a sweep's logs show how many
/// times an entry was built.
pub fn build_once<T>(lock: &Path, what: &str, load: impl Fn() -> Option<T>, build: impl FnOnce() -> Result<T>) -> Result<T> {
    if let Some(hit) = load() {
        return Ok(hit);
    }
    let started = Instant::now();
    let _guard = match acquire(lock, what) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("[gps] warning: cannot lock {} ({e}); building {what} without it", lock.display());
            None
        }
    };
    if let Some(hit) = load() {
        eprintln!("[gps] cache: {what} built by another process; waited {:.1} s", started.elapsed().as_secs_f64());
        return Ok(hit);
    }
    let built = Instant::now();
    let value = build()?;
    eprintln!("[gps] cache: built {what} in {:.1} s", built.elapsed().as_secs_f64());
    Ok(value)
}

/// The held lock (released when dropped, or by the kernel when the process dies).
fn acquire(lock: &Path, what: &str) -> std::io::Result<Option<std::fs::File>> {
    if let Some(dir) = lock.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(lock)?;
    match file.try_lock() {
        Ok(()) => return Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => {
            eprintln!("[gps] cache: another process is building {what}; waiting for it (lock {})", lock.display());
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(e),
    }
    file.lock()?;
    Ok(Some(file))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Barrier};

    #[test]
    fn concurrent_callers_build_once_and_all_get_the_entry() {
        let dir = tempfile::tempdir().unwrap();
        let entry = dir.path().join("entry.txt");
        let lock = lock_path(dir.path(), "entry");
        let builds = Arc::new(AtomicUsize::new(0));
        let barrier = Arc::new(Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (entry, lock, builds, barrier) = (entry.clone(), lock.clone(), builds.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    // flock locks belong to the open file description: each thread opens its own,
                    // so threads exclude each other as processes do
                    build_once(
                        &lock,
                        "a test entry",
                        || std::fs::read_to_string(&entry).ok(),
                        || {
                            builds.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(200));
                            crate::atomic_file::write_via_temp(&entry, |tmp| Ok(std::fs::write(tmp, "built")?))?;
                            Ok("built".to_string())
                        },
                    )
                    .unwrap()
                })
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap(), "built");
        }
        assert_eq!(builds.load(Ordering::SeqCst), 1, "one builder for eight concurrent callers");
    }

    #[test]
    fn a_failed_build_leaves_the_entry_to_the_next_caller() {
        let dir = tempfile::tempdir().unwrap();
        let lock = lock_path(dir.path(), "e");
        let err = build_once(&lock, "e", || None::<u32>, || anyhow::bail!("out of memory")).unwrap_err();
        assert!(err.to_string().contains("out of memory"));
        assert_eq!(build_once(&lock, "e", || None::<u32>, || Ok(7)).unwrap(), 7);
    }
}
