//! The local executor's queue, `slurm/<sweep>/local/queue.json`: which runs it still has to start
//! and which it is running (with their pids), rewritten atomically at each change. It is to
//! `gps sweep run` what `scontrol show job` is to an array: status and the watch read it to show
//! pending and running runs. Only a queue whose executor is alive on this machine counts.

use crate::host;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocalQueue {
    /// The executor (`gps sweep run`) and its machine.
    pub pid: u32,
    pub host: String,
    /// Run ids not started yet, in the order they will start.
    pub pending: Vec<String>,
    /// Run ids being trained, with the pid of their `gps task`.
    pub running: Vec<(String, u32)>,
}

pub fn path(sweep_dir: &Path) -> PathBuf {
    sweep_dir.join("local").join("queue.json")
}

impl LocalQueue {
    pub fn new() -> LocalQueue {
        LocalQueue { pid: std::process::id(), host: host::hostname(), pending: Vec::new(), running: Vec::new() }
    }

    pub fn write(&self, sweep_dir: &Path) -> Result<()> {
        crate::atomic_file::write_json(&path(sweep_dir), self)
    }

    pub fn remove(sweep_dir: &Path) {
        let _ = std::fs::remove_file(path(sweep_dir));
    }

    /// The queue of a live executor, if there is one (a queue left by a killed executor, or one
    /// on another machine whose process cannot be checked from here, is ignored).
    pub fn read_live(sweep_dir: &Path) -> Result<Option<LocalQueue>> {
        let Some(queue): Option<LocalQueue> = crate::atomic_file::read_json(&path(sweep_dir))? else { return Ok(None) };
        Ok((queue.host == host::hostname() && host::pid_alive(queue.pid)).then_some(queue))
    }
}

impl Default for LocalQueue {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_executors_queue_is_read_and_a_dead_ones_is_not() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(LocalQueue::read_live(dir.path()).unwrap(), None);
        let mut q = LocalQueue::new();
        q.pending = vec!["b".into()];
        q.running = vec![("a".into(), 42)];
        q.write(dir.path()).unwrap();
        assert_eq!(LocalQueue::read_live(dir.path()).unwrap(), Some(q.clone()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        q.pid = child.id();
        child.wait().unwrap();
        q.write(dir.path()).unwrap();
        assert_eq!(LocalQueue::read_live(dir.path()).unwrap(), None);
        LocalQueue::remove(dir.path());
        assert!(!path(dir.path()).exists());
    }
}
