//! Result rows (one Parquet file per run) and paper-style reports.
pub mod cli;
