//! `gps train`, `gps task`, `gps sweep expand|submit|run|status|prepare`.

use super::expand::{PlannedRun, show};
use super::select::Selection;
use super::{local, prepare, status, submit, task, value_path};
use crate::config::RunSpec;
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
        task::run_and_record(&sweep, None, &spec, Progress::Auto)?;
        Ok(())
    }

    /// The spec file with the `--set` overrides applied, validated.
    pub fn resolve(&self) -> Result<RunSpec> {
        let file = self.spec.display();
        let text = std::fs::read_to_string(&self.spec).with_context(|| format!("cannot read run spec {file}"))?;
        let yaml: serde_norway::Value = serde_norway::from_str(&text).with_context(|| format!("run spec {file}: not valid YAML"))?;
        let mut tree = serde_json::to_value(yaml).with_context(|| format!("run spec {file}"))?;
        if tree.is_null() {
            tree = serde_json::Value::Object(Default::default());
        }
        for assignment in &self.set {
            let Some((path, value)) = assignment.split_once('=') else {
                bail!("--set {assignment:?}: expected FIELD=VALUE, e.g. --set optimizer.lr=0.3");
            };
            value_path::set(&mut tree, path.trim(), value_path::parse_scalar(value)?).with_context(|| format!("--set {assignment}"))?;
        }
        let spec: RunSpec = serde_path_to_error::deserialize(&tree).map_err(|e| {
            let path = e.path().to_string();
            anyhow::anyhow!("run spec {file} (with --set): field `{path}`: {}", e.into_inner())
        })?;
        spec.validate().with_context(|| format!("run spec {file}"))?;
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
}

impl TaskArgs {
    pub fn run(self) -> Result<()> {
        let (sweep, runs) = super::load(&self.sweep)?;
        let run = task::resolve(&self.sweep, &runs, self.index, self.manifest.as_deref())?;
        eprintln!("[gps] sweep {} run {} ({}), index {}", sweep.name, run.id, run.label(), self.index);
        task::run_and_record(&sweep.name, sweep.description.as_deref(), &run.spec, Progress::Auto)?;
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
        #[command(flatten)]
        which: Which,
    },
    /// Run the sweep on this machine, N tasks at a time (no cluster needed), then print the table.
    Run {
        sweep: PathBuf,
        #[arg(long, default_value_t = 1)]
        jobs: usize,
        #[command(flatten)]
        which: Which,
    },
    /// Per run: done, running, pending, failed (with the reason) or missing.
    Status {
        sweep: PathBuf,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
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
            SweepCommand::Expand { sweep, format } => {
                let (_, runs) = super::load(&sweep)?;
                print_runs(&runs, &vec![None; runs.len()], format);
                Ok(())
            }
            SweepCommand::Submit { sweep, dry_run, max_array_size, which } => {
                if max_array_size == Some(0) {
                    bail!("--max-array-size must be at least 1");
                }
                let (file, runs) = super::load(&sweep)?;
                submit::submit(&file, &runs, &submit::SubmitOptions { dry_run, selection: which.selection(), max_array_size })?;
                Ok(())
            }
            SweepCommand::Run { sweep, jobs, which } => {
                if jobs == 0 {
                    bail!("--jobs must be at least 1");
                }
                let (file, runs) = super::load(&sweep)?;
                let ran = local::run_local(&file, &runs, jobs, which.selection());
                // The table of whatever finished, even when some runs failed.
                let dir = runs[0].spec.output_dir.clone();
                if crate::results::table::row_files(&dir).is_ok_and(|(rows, _)| !rows.is_empty()) {
                    println!();
                    crate::results::cli::ReportArgs::defaults(dir).run()?;
                }
                ran
            }
            SweepCommand::Status { sweep, format } => {
                let (file, runs) = super::load(&sweep)?;
                let workdir = std::env::current_dir()?;
                let states = status::collect(&runs, &workdir, &file.name, status::Queue::BestEffort)?;
                let shown: Vec<Option<&status::RunState>> = states.iter().map(Some).collect();
                print_runs(&runs, &shown, format);
                if matches!(format, Format::Table) {
                    println!("{}", super::select::summary(&states));
                }
                Ok(())
            }
            SweepCommand::Prepare { sweep, manifest } => {
                let (_, runs) = super::load(&sweep)?;
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

fn print_runs(runs: &[PlannedRun], states: &[Option<&status::RunState>], format: Format) {
    match format {
        Format::Json => {
            let items: Vec<serde_json::Value> = runs
                .iter()
                .zip(states)
                .map(|(r, s)| {
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
            let widths: Vec<usize> = (0..rows[0].len()).map(|c| rows.iter().map(|r| r.get(c).map_or(0, |x| x.chars().count())).max().unwrap_or(0)).collect();
            let mut text = String::new();
            for row in rows {
                let cells: Vec<String> = row.iter().enumerate().map(|(c, x)| format!("{x:<w$}", w = widths[c])).collect();
                text.push_str(cells.join("  ").trim_end());
                text.push('\n');
            }
            emit(&text);
        }
    }
}

/// Writes to stdout; a closed pipe (`gps sweep expand x | head`) is not an error worth a panic.
pub fn emit(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}
