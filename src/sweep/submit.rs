//! `gps sweep submit`: the runs that are neither done nor queued become one SLURM array (or
//! several, when there are more than MaxArraySize), preceded by one preparation job when any run
//! needs a prior's neighbour table. Never waits for the jobs.

use super::cluster;
use super::expand::PlannedRun;
use super::file::SweepFile;
use super::manifest::Manifest;
use super::prepare;
use super::sbatch::{self, ArrayJob};
use super::select::{self, Selection};
use super::status;
use super::submissions;
use anyhow::{Context, Result};
use std::path::Path;

pub struct SubmitOptions {
    pub dry_run: bool,
    pub selection: Selection,
    /// Tasks per array; None: the cluster's MaxArraySize.
    pub max_array_size: Option<usize>,
    /// Keep each finished run's final checkpoint (`--no-keep` turns it off).
    pub keep_checkpoint: bool,
}

/// What was submitted, for callers (tests) that watch the jobs.
#[derive(Debug, Default)]
pub struct Submitted {
    pub array_jobs: Vec<String>,
    pub prepare_jobs: Vec<String>,
    pub runs: usize,
}

pub fn submit(sweep: &SweepFile, runs: &[PlannedRun], opts: &SubmitOptions) -> Result<Submitted> {
    let workdir = std::env::current_dir().context("cannot read the current directory")?;
    let sweep_file = std::fs::canonicalize(&sweep.path).with_context(|| format!("cannot resolve {}", sweep.path.display()))?;
    let gps_bin = std::env::current_exe().context("cannot find the gps binary's own path")?;
    let states = status::collect(runs, &workdir, &sweep.name, status::Queue::Required)?;
    let chosen = select::select(runs, &states, opts.selection);
    println!("{}: {} runs ({}); submitting {}", sweep.path.display(), runs.len(), select::summary(&states), chosen.len());
    let mut out = Submitted::default();
    if chosen.is_empty() {
        println!("nothing to submit");
        return Ok(out);
    }
    let chunk = match opts.max_array_size.map(Ok).unwrap_or_else(cluster::max_array_size) {
        Ok(n) => n.max(1),
        Err(e) if opts.dry_run => {
            eprintln!("note: {e:#}; assuming SLURM's default MaxArraySize of 1001");
            1001
        }
        Err(e) => return Err(e),
    };
    std::fs::create_dir_all(submissions::logs_dir(&workdir, &sweep.name))?;
    for part in chosen.chunks(chunk) {
        let dir = submissions::create_next(&workdir, &sweep.name)?;
        let manifest = dir.join("manifest.tsv");
        Manifest::write(&manifest, part)?;
        let job = ArrayJob {
            sweep_name: &sweep.name,
            sweep_file: &sweep_file,
            gps_bin: &gps_bin,
            workdir: &workdir,
            manifest: &manifest,
            tasks: part.len(),
            options: &sweep.slurm,
            keep_checkpoint: opts.keep_checkpoint,
        };
        let array_script = dir.join("array.sbatch");
        write(&array_script, &sbatch::render_array(&job)?)?;
        let needs_prepare = !prepare::groups(part).is_empty();
        let prepare_script = dir.join("prepare.sbatch");
        if needs_prepare {
            write(&prepare_script, &sbatch::render_prepare(&job)?)?;
        }
        if opts.dry_run {
            println!("dry run: wrote {} ({} tasks){}", array_script.display(), part.len(), if needs_prepare { " and prepare.sbatch" } else { "" });
            if needs_prepare {
                println!("  sbatch --parsable {}", prepare_script.display());
                println!("  sbatch --parsable --dependency=afterany:<prepare job> {}", array_script.display());
            } else {
                println!("  sbatch --parsable {}", array_script.display());
            }
            continue;
        }
        let mut extra = Vec::new();
        let prepare_job = if needs_prepare {
            let id = cluster::sbatch(&prepare_script, &[], &workdir)?;
            // afterany, not afterok: if preparation fails, the tasks still run, redo it and record
            // the error as each run's failure, instead of the whole array being cancelled silently.
            extra.push(format!("--dependency=afterany:{id}"));
            out.prepare_jobs.push(id.clone());
            Some(id)
        } else {
            None
        };
        let array_job = cluster::sbatch(&array_script, &extra, &workdir)?;
        submissions::record_jobs(&dir, prepare_job.as_deref(), &array_job)?;
        println!(
            "submitted array job {array_job}: {} tasks{}{}; logs slurm/{}/logs/{array_job}_<index>.out",
            part.len(),
            sweep.slurm.throttle.map(|t| format!(", at most {t} at once")).unwrap_or_default(),
            prepare_job.map(|p| format!(", after preparation job {p}")).unwrap_or_default(),
            sweep.name
        );
        out.array_jobs.push(array_job);
        out.runs += part.len();
    }
    if !opts.dry_run {
        println!("watch it with: gps sweep status {}", sweep.path.display());
    }
    Ok(out)
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}
