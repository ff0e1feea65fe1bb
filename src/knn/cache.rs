//! Neighbour tables cached on disk by (embedding hash, metric, k): building one for 50k images
//! takes a minute on a CPU, and every run of a sweep with the same prior shares it.

use super::{NeighbourTable, Tau, build_table, build_with_distances, within};
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
        Ok(t) if t.fixed_k() == Some(k) && t.len() == n => Some(t),
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

/// The cache file of the candidates within τ of an embedding (before the image itself is added
/// to its own candidates): keyed by the embedding, the metric, the neighbours compared and τ's
/// rule.
pub fn radius_path(cache_dir: &Path, embedding_hash: &str, metric: Metric, max_candidates: usize, tau: Tau) -> PathBuf {
    let key = format!("{embedding_hash}/{metric:?}/radius/{max_candidates}/{tau:?}");
    let digest = Sha256::digest(key.as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    cache_dir.join("knn").join(format!("{hex}.safetensors"))
}

/// The cached candidates within τ (and τ) over `n` images, if stored and sound.
pub fn cached_radius(cache_dir: &Path, embedding_hash: &str, metric: Metric, max_candidates: usize, tau: Tau, n: usize) -> Option<(NeighbourTable, f64)> {
    let path = radius_path(cache_dir, embedding_hash, metric, max_candidates, tau);
    if !path.exists() {
        return None;
    }
    let read = || -> Result<(NeighbourTable, f64)> {
        let tensors = Tensor::read_safetensors(&path).with_context(|| format!("corrupt or unreadable neighbour table {}", path.display()))?;
        let table = NeighbourTable::from_tensors(&tensors, "")?.with_context(|| format!("{} holds no table", path.display()))?;
        let tau = tensors.iter().find(|(n, _)| n == "tau").map(|(_, t)| t.double_value(&[0])).with_context(|| format!("{} holds no τ", path.display()))?;
        Ok((table, tau))
    };
    match read() {
        Ok((t, tau)) if t.len() == n => Some((t, tau)),
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

/// The candidates within τ of every image (none but itself when no neighbour is near enough)
/// among its `max_candidates` nearest, and τ: loaded from `cache_dir/knn/` or built and stored.
pub fn radius_cached(
    emb: &Tensor,
    embedding_hash: &str,
    metric: Metric,
    max_candidates: usize,
    tau: Tau,
    cache_dir: &Path,
    device: Device,
) -> Result<(NeighbourTable, f64)> {
    let n = emb.size()[0] as usize;
    if let Some(hit) = cached_radius(cache_dir, embedding_hash, metric, max_candidates, tau, n) {
        return Ok(hit);
    }
    let (nearest, distances) = build_with_distances(emb, max_candidates, metric, device)?;
    let (table, tau_value) = within(&nearest, &distances, tau, false)?;
    let path = radius_path(cache_dir, embedding_hash, metric, max_candidates, tau);
    let mut tensors = table.to_tensors();
    tensors.push(("tau".into(), Tensor::from_slice(&[tau_value])));
    crate::atomic_file::write_via_temp(&path, |tmp| Tensor::write_safetensors(&tensors, tmp).map_err(Into::into))
        .with_context(|| format!("writing neighbour table cache {}", path.display()))?;
    Ok((table, tau_value))
}
