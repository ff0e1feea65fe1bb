//! `slurm/<sweep>/`: one numbered folder per submitted array (`sub-001/`: array.sbatch,
//! manifest.tsv, jobs.tsv with the job ids SLURM gave) and the task logs in `logs/`. These are the
//! project's own records of what was submitted; status joins them with SLURM's view of the jobs.

use super::manifest::Manifest;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

pub fn sweep_dir(workdir: &Path, sweep_name: &str) -> PathBuf {
    workdir.join("slurm").join(sweep_name)
}

pub fn logs_dir(workdir: &Path, sweep_name: &str) -> PathBuf {
    sweep_dir(workdir, sweep_name).join("logs")
}

/// A submitted (or dry-run) array.
#[derive(Debug, Clone)]
pub struct Submission {
    pub dir: PathBuf,
    pub manifest: Manifest,
    /// None for a dry run.
    pub array_job: Option<String>,
    pub prepare_job: Option<String>,
}

/// Creates the next free `sub-NNN` folder (create_dir is atomic, so two concurrent submits never
/// share one).
pub fn create_next(workdir: &Path, sweep_name: &str) -> Result<PathBuf> {
    let root = sweep_dir(workdir, sweep_name);
    std::fs::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;
    let mut n = list_dirs(&root)?.len() + 1;
    loop {
        let dir = root.join(format!("sub-{n:03}"));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
            Err(e) => return Err(e).with_context(|| format!("cannot create {}", dir.display())),
        }
    }
}

fn list_dirs(root: &Path) -> Result<Vec<PathBuf>> {
    if !root.exists() {
        return Ok(Vec::new());
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .with_context(|| format!("cannot list {}", root.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir() && p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("sub-")))
        .collect();
    dirs.sort();
    Ok(dirs)
}

pub fn record_jobs(dir: &Path, prepare_job: Option<&str>, array_job: &str) -> Result<()> {
    let mut text = String::new();
    if let Some(p) = prepare_job {
        text.push_str(&format!("prepare\t{p}\n"));
    }
    text.push_str(&format!("array\t{array_job}\n"));
    let path = dir.join("jobs.tsv");
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Records the check job a submission's jobs wait for (`check\t<id>` in jobs.tsv).
pub fn record_check(dir: &Path, check_job: &str) -> Result<()> {
    let path = dir.join("jobs.tsv");
    let mut text = std::fs::read_to_string(&path).unwrap_or_default();
    text.push_str(&format!("check\t{check_job}\n"));
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Every submission of the sweep, oldest first (dry runs included, with no job ids).
pub fn list(workdir: &Path, sweep_name: &str) -> Result<Vec<Submission>> {
    let mut out = Vec::new();
    for dir in list_dirs(&sweep_dir(workdir, sweep_name))? {
        let manifest_path = dir.join("manifest.tsv");
        if !manifest_path.exists() {
            continue; // interrupted while being written
        }
        let manifest = Manifest::read(&manifest_path)?;
        let jobs = std::fs::read_to_string(dir.join("jobs.tsv")).unwrap_or_default();
        let job = |kind: &str| jobs.lines().find_map(|l| l.strip_prefix(kind).map(|id| id.trim().to_string()));
        out.push(Submission { array_job: job("array\t"), prepare_job: job("prepare\t"), dir, manifest });
    }
    Ok(out)
}
