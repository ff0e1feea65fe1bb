//! Sweeps: YAML grids to run specs, SLURM array submission, the local executor, status.
pub mod cli;
