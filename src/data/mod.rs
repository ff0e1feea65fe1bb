//! Datasets: loaders for the formats researchers have, all giving a `Dataset`
//! (uint8 images [N,C,H,W], int64 labels, class names).
mod dataset;

pub use dataset::{Dataset, Split};
pub mod cli;
