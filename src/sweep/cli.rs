//! `gps train`, `gps task`, `gps sweep expand|submit|run|status|prepare`.

use super::expand::PlannedRun;
use super::select::Selection;
use super::value_path::show;
use super::{local, prepare, status, submit, task, value_path, watch};
use crate::config::RunSpec;
use crate::text::emit;
use crate::train::Progress;
use anyhow::{Context, Result, bail};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// The run spec (YAML).
    pub spec: PathBuf,
    /// Override a field, e.g. `--set epochs=5 --set optimizer.lr=0.3` (values are YAML).
    #[arg(long = "set", value_name = "FIELD=VALUE")]
    pub set: Vec<String>,
    /// Only fill the cache (decoded data, prior embedding, neighbour table) and stop: the CPU
    /// half of a run whose training happens elsewhere.
    #[arg(long)]
    pub prepare_only: bool,
    #[command(flatten)]
    pub keep: Keep,
}

#[derive(Debug, Default, clap::Args)]
pub struct Keep {
    /// Delete each run's checkpoints once its result row is written (by default the final one
    /// stays in <output_dir>/ckpt/<run id>/ for `gps export` and `gps eval linear`).
    #[arg(long)]
    pub no_keep: bool,
}

impl TrainArgs {
    pub fn run(self) -> Result<()> {
        let spec = self.resolve()?;
        if self.prepare_only {
            crate::train::prepare(&spec)?;
            println!("prepared run {}: cache in {}", spec.run_id(), spec.cache_dir.display());
            return Ok(());
        }
        let sweep = spec.output_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        println!("run {} -> {}", spec.run_id(), spec.output_dir.display());
        task::run_and_record(&sweep, None, &spec, Progress::Auto, !self.keep.no_keep)?;
        Ok(())
    }

    /// The spec file with the `--set` overrides applied, validated.
    pub fn resolve(&self) -> Result<RunSpec> {
        let file = self.spec.display();
        let text = std::fs::read_to_string(&self.spec).with_context(|| format!("cannot read run spec {file}"))?;
        let mut tree = RunSpec::tree_from_yaml(&text).with_context(|| format!("run spec {file}"))?;
        for assignment in &self.set {
            let Some((path, value)) = assignment.split_once('=') else {
                bail!("run spec {file}: --set {assignment:?}: expected FIELD=VALUE, e.g. --set optimizer.lr=0.3");
            };
            if value.trim().is_empty() {
                bail!("run spec {file}: --set {assignment:?}: no value after `=`; write `{path}=null` to reset the field to its default");
            }
            let value = value_path::parse_scalar(value).with_context(|| format!("run spec {file}: --set {assignment}"))?;
            value_path::set(&mut tree, path.trim(), value).with_context(|| format!("run spec {file}: --set {assignment}"))?;
        }
        let with = if self.set.is_empty() { "" } else { " (with --set)" };
        let spec = RunSpec::from_tree(&tree).map_err(|e| anyhow::anyhow!("run spec {file}{with}: {e}"))?;
        spec.validate().with_context(|| format!("run spec {file}{with}"))?;
        Ok(spec)
    }
}

#[derive(Debug, clap::Args)]
pub struct TaskArgs {
    /// The sweep file.
    pub sweep: PathBuf,
    /// Array index ($SLURM_ARRAY_TASK_ID): a line of `--manifest`, or a run of the expansion.
    #[arg(long)]
    pub index: usize,
    /// The submission's manifest (index -> run id), written by `gps sweep submit`.
    #[arg(long)]
    pub manifest: Option<PathBuf>,
    #[command(flatten)]
    pub keep: Keep,
}

impl TaskArgs {
    pub fn run(self) -> Result<()> {
        let (sweep, runs) = super::load(&self.sweep, limit_unless_submitted(self.manifest.is_some()))?;
        let run = task::resolve(&self.sweep, &runs, self.index, self.manifest.as_deref())?;
        eprintln!("[gps] sweep {} run {} ({}), index {}", sweep.name, run.id, run.label(), self.index);
        task::run_and_record(&sweep.name, sweep.description.as_deref(), &run.spec, Progress::Auto, !self.keep.no_keep)?;
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct Which {
    /// Only runs that failed.
    #[arg(long, conflicts_with = "only_missing")]
    pub only_failed: bool,
    /// Only runs that never produced a result or a failure record.
    #[arg(long)]
    pub only_missing: bool,
}

/// The grid-size guard of the commands a user types.
#[derive(Debug, clap::Args)]
pub struct Limit {
    /// Refuse grids of more than N runs (counted before they are built): a grid that large is
    /// usually a typo in a range.
    #[arg(long, value_name = "N", default_value_t = super::DEFAULT_MAX_RUNS)]
    pub max_runs: usize,
}

impl Which {
    fn selection(&self) -> Selection {
        if self.only_failed {
            Selection::OnlyFailed
        } else if self.only_missing {
            Selection::OnlyMissing
        } else {
            Selection::NotDone
        }
    }
}

#[derive(Debug, clap::Subcommand)]
pub enum SweepCommand {
    /// List the runs of a sweep (index, run id, the grid values).
    Expand {
        sweep: PathBuf,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        #[command(flatten)]
        limit: Limit,
    },
    /// Write slurm/<sweep>/ and submit the runs that are not done or queued as a SLURM array.
    Submit {
        sweep: PathBuf,
        /// Write the scripts and manifest, print the sbatch commands, submit nothing.
        #[arg(long)]
        dry_run: bool,
        /// Split into arrays of at most N tasks (default: the cluster's MaxArraySize), e.g. for a
        /// site limit on tasks per array that is lower than the configured maximum.
        #[arg(long, value_name = "N")]
        max_array_size: Option<usize>,
        /// First submit `gps info --check` (the device self-check) as a one-task job; the array
        /// starts only if it succeeds (SLURM cancels it otherwise), so a broken node or driver
        /// costs one short job, not the sweep.
        #[arg(long)]
        check: bool,
        #[command(flatten)]
        which: Which,
        #[command(flatten)]
        limit: Limit,
        #[command(flatten)]
        keep: Keep,
    },
    /// Run the sweep on this machine, N tasks at a time (no cluster needed), then print the table.
    Run {
        sweep: PathBuf,
        #[arg(long, default_value_t = 1)]
        jobs: usize,
        #[command(flatten)]
        which: Which,
        #[command(flatten)]
        limit: Limit,
        #[command(flatten)]
        keep: Keep,
        /// Then the standard offline linear evaluation of every finished run's encoder (`gps eval
        /// linear`, defaults; runs already evaluated are kept as they are), and the table and the
        /// comparison of its top-1 (`linear_top1`) beside the online probe and the k-NN classifier.
        #[arg(long, conflicts_with = "no_keep")]
        linear_eval: bool,
    },
    /// Per run: done, running, pending, stalled, failed (with the reason) or missing.
    Status {
        sweep: PathBuf,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        #[command(flatten)]
        limit: Limit,
        /// Live view of the active runs (epoch, loss, probe top-1, samples/s, ETA) and the
        /// sweep's counts and ETA: redrawn on a terminal until Ctrl-C, printed once otherwise.
        #[arg(long, conflicts_with = "format")]
        watch: bool,
        /// Seconds between two refreshes of --watch.
        #[arg(long, default_value_t = 3.0, requires = "watch")]
        interval: f64,
        /// With --watch: refresh (off a terminal: print the table again) until no run is pending,
        /// running or stalled, then print the final status.
        #[arg(long, requires = "watch")]
        until_done: bool,
    },
    /// Compute the prior embeddings and k-NN tables the runs share (the array's dependency job).
    Prepare {
        sweep: PathBuf,
        /// Only the runs of this submission manifest.
        #[arg(long)]
        manifest: Option<PathBuf>,
    },
}

impl SweepCommand {
    pub fn run(self) -> Result<()> {
        match self {
            SweepCommand::Expand { sweep, format, limit } => {
                let (_, runs) = super::load(&sweep, limit.max_runs)?;
                print_runs(&runs, &vec![None; runs.len()], &[], format);
                Ok(())
            }
            SweepCommand::Submit { sweep, dry_run, max_array_size, check, which, limit, keep } => {
                if max_array_size == Some(0) {
                    bail!("--max-array-size must be at least 1");
                }
                let (file, runs) = super::load(&sweep, limit.max_runs)?;
                submit::submit(
                    &file,
                    &runs,
                    &submit::SubmitOptions { dry_run, selection: which.selection(), max_array_size, keep_checkpoint: !keep.no_keep, check },
                )?;
                Ok(())
            }
            SweepCommand::Run { sweep, jobs, which, limit, keep, linear_eval } => {
                if jobs == 0 {
                    bail!("--jobs must be at least 1");
                }
                let (file, runs) = super::load(&sweep, limit.max_runs)?;
                let ran = local::run_local(&file, &runs, jobs, which.selection(), !keep.no_keep);
                // The table of whatever finished, even when some runs failed.
                let dir = runs[0].spec.output_dir.clone();
                if crate::results::table::row_files(&dir).is_ok_and(|(rows, _)| !rows.is_empty()) {
                    let metric = if linear_eval {
                        evaluate_linear(&dir, &runs)?;
                        "linear_top1,probe_top1_best,knn_top1"
                    } else {
                        "probe_top1_best"
                    };
                    println!();
                    let report = crate::results::cli::ReportArgs { metric: metric.into(), ..crate::results::cli::ReportArgs::defaults(dir.clone()) };
                    report.run()?;
                    // What a GPS sweep is for: GPS against the baseline, with its interval.
                    let priors: std::collections::BTreeSet<String> = runs.iter().map(|r| r.spec.prior.to_string()).collect();
                    if priors.len() > 1 && priors.contains("none") {
                        let first = metric.split(',').next().unwrap_or(metric);
                        let shown = if linear_eval { format!(" --metric {first}") } else { String::new() };
                        println!("\n$ gps report {}{shown} --compare prior", dir.display());
                        let compare = crate::results::cli::ReportArgs {
                            compare: Some("prior".into()),
                            metric: first.into(),
                            ..crate::results::cli::ReportArgs::defaults(dir)
                        };
                        if let Err(e) = compare.run() {
                            eprintln!("no comparison: {e:#}");
                        }
                    }
                }
                ran
            }
            SweepCommand::Status { sweep, format, watch, interval, until_done, limit } => {
                let (file, runs) = super::load(&sweep, limit.max_runs)?;
                let workdir = std::env::current_dir()?;
                if watch {
                    if !(interval > 0.0 && interval.is_finite()) {
                        bail!("--interval must be a positive number of seconds, got {interval}");
                    }
                    watch::watch(&file, &runs, &workdir, &watch::WatchOptions { interval: std::time::Duration::from_secs_f64(interval), until_done })?;
                    if !until_done {
                        return Ok(());
                    }
                }
                let views = status::collect_views(&runs, &workdir, &file.name, status::Queue::BestEffort)?;
                let states: Vec<status::RunState> = views.iter().map(|v| v.state.clone()).collect();
                let shown: Vec<Option<&status::RunState>> = states.iter().map(Some).collect();
                let earlier: Vec<Vec<String>> = runs.iter().zip(&views).map(|(r, v)| status::earlier_attempts(r, v)).collect();
                print_runs(&runs, &shown, &earlier, format);
                if matches!(format, Format::Table) {
                    print_restarted(&runs, &states, &earlier);
                    println!("{}", super::select::summary(&states));
                }
                Ok(())
            }
            SweepCommand::Prepare { sweep, manifest } => {
                let (_, runs) = super::load(&sweep, limit_unless_submitted(manifest.is_some()))?;
                let chosen: Vec<&PlannedRun> = match &manifest {
                    Some(m) => {
                        let m = super::manifest::Manifest::read(m)?;
                        runs.iter().filter(|r| m.entries.iter().any(|(_, id)| *id == r.id)).collect()
                    }
                    None => runs.iter().collect(),
                };
                let failed = prepare::prepare_all(&chosen)?;
                if failed > 0 {
                    eprintln!("[gps] {failed} preparation(s) failed; their runs will record the error");
                }
                Ok(())
            }
        }
    }
}

/// A task or preparation job of a submission runs what `gps sweep submit` accepted, under
/// whatever `--max-runs` it was given; typed by hand (no manifest), the default limit applies.
fn limit_unless_submitted(from_manifest: bool) -> usize {
    if from_manifest { usize::MAX } else { super::DEFAULT_MAX_RUNS }
}

/// The runs that took more than one attempt, and how each earlier attempt ended: what a node
/// loss or a requeue storm did to the sweep, after the fact.
fn print_restarted(runs: &[PlannedRun], states: &[status::RunState], earlier: &[Vec<String>]) {
    let restarted: Vec<usize> = (0..runs.len()).filter(|&i| !earlier[i].is_empty()).collect();
    if restarted.is_empty() {
        return;
    }
    println!("{} run(s) were restarted (requeued, preempted or moved off a lost node); how each earlier attempt ended:", restarted.len());
    for i in restarted {
        println!("  {} (index {}, {}):", runs[i].id, runs[i].index, states[i].word());
        for line in &earlier[i] {
            println!("    {line}");
        }
    }
}

fn print_runs(runs: &[PlannedRun], states: &[Option<&status::RunState>], earlier: &[Vec<String>], format: Format) {
    match format {
        Format::Json => {
            let items: Vec<serde_json::Value> = runs
                .iter()
                .zip(states)
                .enumerate()
                .map(|(position, (r, s))| {
                    let mut item = serde_json::json!({
                        "index": r.index,
                        "run_id": r.id,
                        "choices": r.choices.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<serde_json::Map<_, _>>(),
                        "spec": r.spec,
                    });
                    if let Some(s) = s {
                        item["state"] = s.word().into();
                        item["detail"] = s.detail().into();
                    }
                    if let Some(e) = earlier.get(position).filter(|e| !e.is_empty()) {
                        item["earlier_attempts"] = e.clone().into();
                    }
                    item
                })
                .collect();
            emit(&format!("{}\n", serde_json::to_string_pretty(&items).expect("JSON serialises")));
        }
        Format::Table => {
            let keys: Vec<&str> = runs.first().map(|r| r.choices.iter().map(|(k, _)| k.as_str()).collect()).unwrap_or_default();
            let mut header = vec!["index".to_string(), "run_id".to_string()];
            header.extend(keys.iter().map(|k| k.to_string()));
            if states.iter().any(Option::is_some) {
                header.extend(["state".to_string(), "detail".to_string()]);
            }
            let mut rows = vec![header];
            for (r, s) in runs.iter().zip(states) {
                let mut row = vec![r.index.to_string(), r.id.clone()];
                row.extend(r.choices.iter().map(|(_, v)| show(v)));
                if let Some(s) = s {
                    row.extend([s.word().to_string(), s.detail()]);
                }
                rows.push(row);
            }
            emit(&crate::text::align(&rows));
        }
    }
}

/// `gps sweep run --linear-eval`: the offline linear evaluation of every finished run of the sweep
/// that has none yet (a rerun evaluates only what is new).
fn evaluate_linear(dir: &std::path::Path, runs: &[super::PlannedRun]) -> Result<()> {
    for run in runs {
        let row = crate::results::row::row_path(dir, &run.id);
        if !row.exists() {
            continue;
        }
        let frame = crate::results::row::read_row(&row)?;
        if frame.column("linear_top1").ok().and_then(|c| c.f64().ok()?.get(0)).is_some() {
            continue;
        }
        crate::trained::linear_eval::LinearArgs::standard(dir.to_path_buf(), run.id.clone())
            .run()
            .with_context(|| format!("the linear evaluation of run {}", run.id))?;
    }
    Ok(())
}
