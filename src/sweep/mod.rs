//! Sweeps: a YAML grid expanded into run specs with stable ids; SLURM array submission (with a
//! preparation job, requeue on USR1, idempotent resubmission); the local executor; status.
//!
//! Flow: `file` parses, `expand` resolves runs, `submit`/`local` start `gps task`s, each `task`
//! writes one result row or failure record, `status` joins those records with SLURM's view.
pub mod cli;
pub mod cluster;
pub mod expand;
pub mod file;
pub mod local;
pub mod local_queue;
pub mod manifest;
pub mod prepare;
pub mod sbatch;
pub mod select;
pub mod slurm_options;
pub mod source_lines;
pub mod status;
pub mod submissions;
pub mod submit;
pub mod task;
pub mod value_path;
pub mod watch;

pub use expand::{DEFAULT_MAX_RUNS, PlannedRun, expand, expand_up_to};
pub use file::SweepFile;

/// Loads and expands a sweep file of at most `max_runs` runs.
pub fn load(path: &std::path::Path, max_runs: usize) -> anyhow::Result<(SweepFile, Vec<PlannedRun>)> {
    let sweep = SweepFile::load(path)?;
    let runs = expand_up_to(&sweep, max_runs)?;
    Ok((sweep, runs))
}
