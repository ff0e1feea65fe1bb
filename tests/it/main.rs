//! The integration tests, one crate: each file of this folder is a module, so the suite links
//! libtorch and polars once rather than once per file (most of a cold test build was linking).
//! `support` holds what several modules need: the repository's paths, the test data and running
//! the `gps` binary.

mod support;

mod bad_input;
mod cuda_paths;
mod data_cli;
mod data_download;
mod data_loaders;
mod eval_linear;
mod export;
mod knn_real;
mod paper_sweeps;
mod parity;
mod positives;
mod prior_embed;
mod prior_inspect;
mod quickstart;
mod recipes;
mod report_configurations;
mod results_report;
mod slurm_cluster;
mod slurm_sweep;
mod sweep_expand;
mod sweep_local;
mod sweep_submit;
mod train_failure;
mod train_methods;
mod train_resume;
