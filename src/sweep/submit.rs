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
    /// Submit `gps info --check` as a one-task job first; the arrays (and the preparation) start
    /// only if it succeeds, and are cancelled by SLURM if it fails.
    pub check: bool,
}

/// What was submitted, for callers (tests) that watch the jobs.
#[derive(Debug, Default)]
pub struct Submitted {
    pub array_jobs: Vec<String>,
    pub prepare_jobs: Vec<String>,
    pub check_job: Option<String>,
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
    let check = if opts.check { Some(submit_check(sweep, &chosen, &gps_bin, &workdir, opts.dry_run)?) } else { None };
    // Jobs that wait for the check are cancelled by SLURM when it fails, not left pending forever.
    let after_check = |kind: &str, other: Option<String>| -> Vec<String> {
        let mut deps: Vec<String> = check.iter().flatten().map(|c| format!("afterok:{c}")).collect();
        deps.extend(other.map(|o| format!("{kind}:{o}")));
        let mut args = Vec::new();
        if !deps.is_empty() {
            args.push(format!("--dependency={}", deps.join(",")));
        }
        if check.is_some() {
            args.push("--kill-on-invalid-dep=yes".into());
        }
        args
    };
    out.check_job = check.clone().flatten();
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
            let check_dep = if check.is_some() { "afterok:<check job>," } else { "" };
            let kill = if check.is_some() { " --kill-on-invalid-dep=yes" } else { "" };
            if needs_prepare {
                let prep_dep = if check.is_some() { format!(" --dependency=afterok:<check job>{kill}") } else { String::new() };
                println!("  sbatch --parsable{prep_dep} {}", prepare_script.display());
                println!("  sbatch --parsable --dependency={check_dep}afterany:<prepare job>{kill} {}", array_script.display());
            } else if check.is_some() {
                println!("  sbatch --parsable --dependency=afterok:<check job>{kill} {}", array_script.display());
            } else {
                println!("  sbatch --parsable {}", array_script.display());
            }
            continue;
        }
        // A refusal leaves no trace of this part: its folder goes, a preparation job already
        // accepted for it is cancelled, so status and the next submit see these runs as never
        // submitted. Parts submitted before stay recorded: they are SLURM's now.
        let earlier = if out.array_jobs.is_empty() { String::new() } else { format!(" (array job(s) {} submitted before it stay queued)", out.array_jobs.join(", ")) };
        let refused = |e: anyhow::Error, prepare: Option<&str>| -> anyhow::Error {
            if let Some(p) = prepare {
                let _ = std::process::Command::new("scancel").arg(p).status();
            }
            let _ = std::fs::remove_dir_all(&dir);
            e.context(format!("{} run(s) not submitted, and nothing recorded as submitted{earlier}", part.len()))
        };
        let prepare_job = if needs_prepare {
            let id = cluster::sbatch(&prepare_script, &after_check("afterok", None), &workdir).map_err(|e| refused(e, None))?;
            out.prepare_jobs.push(id.clone());
            Some(id)
        } else {
            None
        };
        // afterany on the preparation, not afterok: if preparation fails, the tasks still run, redo
        // it and record the error as each run's failure, instead of the array being cancelled.
        let array_job =
            cluster::sbatch(&array_script, &after_check("afterany", prepare_job.clone()), &workdir).map_err(|e| refused(e, prepare_job.as_deref()))?;
        submissions::record_jobs(&dir, prepare_job.as_deref(), &array_job)?;
        if let Some(Some(c)) = &check {
            submissions::record_check(&dir, c)?;
        }
        println!(
            "submitted array job {array_job}: {} tasks{}{}{}; logs slurm/{}/logs/{array_job}_<index>.out",
            part.len(),
            sweep.slurm.throttle.map(|t| format!(", at most {t} at once")).unwrap_or_default(),
            out.check_job.as_ref().map(|c| format!(", once check job {c} succeeds")).unwrap_or_default(),
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

/// Writes and (unless a dry run) submits the check job: `gps info --check` on the runs' device
/// and backbone. Returns its job id (None for a dry run).
fn submit_check(sweep: &SweepFile, chosen: &[&PlannedRun], gps_bin: &Path, workdir: &Path, dry_run: bool) -> Result<Option<String>> {
    let one = |f: &dyn Fn(&PlannedRun) -> String, fallback: &str| {
        let mut values: Vec<String> = chosen.iter().map(|r| f(r)).collect();
        values.dedup();
        if values.len() == 1 { values.pop().expect("one") } else { fallback.to_string() }
    };
    let device = one(&|r| crate::config::serde_name(&r.spec.device), "auto");
    let backbone = one(&|r| crate::config::serde_name(&r.spec.backbone), "resnet18");
    let job = sbatch::CheckJob { sweep_name: &sweep.name, gps_bin, workdir, options: &sweep.slurm, device: &device, backbone: &backbone };
    let script = submissions::sweep_dir(workdir, &sweep.name).join("check.sbatch");
    write(&script, &sbatch::render_check(&job)?)?;
    if dry_run {
        println!("dry run: wrote {} (the self-check, `gps info --check --device {device} --backbone {backbone}`)", script.display());
        println!("  sbatch --parsable {}", script.display());
        return Ok(None);
    }
    let id = cluster::sbatch(&script, &[], workdir)?;
    println!("submitted check job {id}: gps info --check --device {device} --backbone {backbone}; log slurm/{}/logs/check_{id}.out", sweep.name);
    Ok(Some(id))
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}
