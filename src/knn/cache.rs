//! Neighbour tables cached on disk by (embedding hash, metric, k): building one for 50k images
//! takes a minute on a CPU, and every run of a sweep with the same prior shares it.

use super::{NeighbourTable, build_table};
use crate::config::Metric;
use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tch::{Device, Tensor};

/// Loads the table for (embedding, metric, k) from `cache_dir/knn/`, or builds and stores it.
/// `embedding_hash` identifies the embedding's content (see `prior`). A corrupt cache file is
/// reported and rebuilt, never silently used.
pub fn table_cached(emb: &Tensor, embedding_hash: &str, k: usize, metric: Metric, cache_dir: &Path, device: Device) -> Result<NeighbourTable> {
    if let Some(t) = cached_table(cache_dir, embedding_hash, k, metric, emb.size()[0] as usize) {
        return Ok(t);
    }
    let path = table_path(cache_dir, embedding_hash, k, metric);
    let table = build_table(emb, k, metric, device)?;
    table.save(&path).with_context(|| format!("writing neighbour table cache {}", path.display()))?;
    Ok(table)
}

/// The cached table for (embedding hash, metric, k) over `n` images, if one is stored and sound;
/// a damaged or mismatched file is reported (and will be rebuilt by the caller).
pub fn cached_table(cache_dir: &Path, embedding_hash: &str, k: usize, metric: Metric, n: usize) -> Option<NeighbourTable> {
    let path = table_path(cache_dir, embedding_hash, k, metric);
    if !path.exists() {
        return None;
    }
    match NeighbourTable::load(&path) {
        Ok(t) if t.k() == k && t.len() == n => Some(t),
        Ok(_) => {
            eprintln!("warning: {} does not match the embedding; rebuilding it", path.display());
            None
        }
        Err(e) => {
            eprintln!("warning: {e:#}; rebuilding it");
            None
        }
    }
}

pub fn table_path(cache_dir: &Path, embedding_hash: &str, k: usize, metric: Metric) -> PathBuf {
    let key = format!("{embedding_hash}/{metric:?}/{k}");
    let digest = Sha256::digest(key.as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    cache_dir.join("knn").join(format!("{hex}.safetensors"))
}
