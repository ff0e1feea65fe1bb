//! Result rows (one Parquet file per run, written atomically; failure records beside them) and
//! paper-style reports over them (Markdown, LaTeX, CSV tables and SVG plots).
pub mod cli;
pub mod compare;
pub mod configuration;
pub mod curves;
pub mod html;
pub mod index;
pub mod plot;
pub mod published;
mod reading;
pub mod render;
pub mod row;
pub mod stats;
pub mod table;
