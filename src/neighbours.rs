//! The candidates each anchor's positive is drawn from, as a run builds them: the prior's
//! embedding (cached), then its k nearest neighbours (`neighbours.mode: knn`) or every neighbour
//! within τ (`radius`), without or with the image itself (`exclude_self`). Shared by training,
//! by a refresh from the model being trained, and by `gps prior inspect`, so an inspection sees
//! the table a run trains with.

use crate::config::{NeighbourMode, PriorSpec, RunSpec};
use crate::data::Dataset;
use crate::knn::{self, NeighbourTable, Tau};
use crate::recipe::Recipe;
use anyhow::{Context, Result, bail};
use tch::{Device, Tensor};

/// The candidates of each anchor: the k nearest prior neighbours without the image itself, or
/// (`exclude_self: false`, the authors' configs without `filter_sim_matrix`) the image itself
/// and its k − 1 nearest; with `neighbours.mode: radius`, every neighbour within τ.
pub fn table(spec: &RunSpec, train: &Dataset, recipe: &Recipe, device: Device) -> Result<(NeighbourTable, Option<f64>)> {
    if spec.prior == PriorSpec::None {
        return Ok((NeighbourTable::identity(train.len()), None));
    }
    // A table already cached for this prior and data (e.g. by a CPU preparation job) is all a
    // run needs: the embedding itself, and the prior's weights, can then be absent.
    let hash = crate::prior::cache_hash(&spec.prior, &spec.prior_options, &recipe.prior, train, spec.seed, &spec.cache_dir)?;
    let embedding = || -> Result<Tensor> {
        let (emb, _) = crate::prior::embed_cached(&spec.prior, &spec.prior_options, &recipe.prior, train, spec.seed, &spec.cache_dir, device)
            .with_context(|| format!("computing prior `{}`", spec.prior))?;
        if emb.size()[0] as usize != train.len() {
            bail!("prior `{}` gives {} embeddings for {} training images", spec.prior, emb.size()[0], train.len());
        }
        Ok(emb)
    };
    match spec.neighbours.mode {
        NeighbourMode::Knn => {
            let k = if spec.exclude_self { spec.k } else { spec.k - 1 };
            if k == 0 {
                return Ok((NeighbourTable::identity(train.len()), None));
            }
            let path = knn::table_path(&spec.cache_dir, &hash, k, spec.metric);
            let table = crate::build_once::build_once(
                &lock_for(&spec.cache_dir, &path),
                &format!("the neighbour table of prior `{}`, k {k} ({})", spec.prior, path.display()),
                || knn::cached_table(&spec.cache_dir, &hash, k, spec.metric, train.len()),
                || knn::table_cached(&embedding()?, &hash, k, spec.metric, &spec.cache_dir, device),
            )?;
            Ok((if spec.exclude_self { table } else { table.with_self_first()? }, None))
        }
        NeighbourMode::Radius => {
            let (max, tau) = radius_rule(spec, train.len());
            let path = knn::radius_path(&spec.cache_dir, &hash, spec.metric, max, tau);
            let (table, tau) = crate::build_once::build_once(
                &lock_for(&spec.cache_dir, &path),
                &format!("the candidates within τ of prior `{}` ({})", spec.prior, path.display()),
                || knn::cached_radius(&spec.cache_dir, &hash, spec.metric, max, tau, train.len()),
                || knn::radius_cached(&embedding()?, &hash, spec.metric, max, tau, &spec.cache_dir, device),
            )?;
            Ok((if spec.exclude_self { table } else { table.with_self_first()? }, Some(tau)))
        }
    }
}

/// The lock of one cached table: named after its file, so each table has its own builder (the
/// prior's embedding is computed inside it too).
fn lock_for(cache_dir: &std::path::Path, table_file: &std::path::Path) -> std::path::PathBuf {
    let stem = table_file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    crate::build_once::lock_path(cache_dir, &format!("knn-{stem}"))
}

/// The neighbours compared with τ (`max_candidates`, at most every other image) and τ's rule.
pub fn radius_rule(spec: &RunSpec, n: usize) -> (usize, Tau) {
    let nb = &spec.neighbours;
    let max = nb.max_candidates.min(n.saturating_sub(1)).max(1);
    let tau = match (nb.tau, nb.adaptive) {
        (Some(t), _) => Tau::Fixed(t),
        (None, Some(stat)) => Tau::Adaptive { stat, k: nb.adaptive_k.min(max) },
        (None, None) => unreachable!("validated: radius mode has a τ rule"),
    };
    (max, tau)
}

/// The run's candidate table from an embedding of its training images, built afresh (no cache):
/// what a refresh with the model being trained rebuilds, with the run's metric, k, self rule and
/// neighbours mode. Also τ, for a table within a distance.
pub fn table_from_embedding(spec: &RunSpec, emb: &Tensor, device: Device) -> Result<(NeighbourTable, Option<f64>)> {
    let n = emb.size()[0] as usize;
    match spec.neighbours.mode {
        NeighbourMode::Knn => {
            let k = if spec.exclude_self { spec.k } else { spec.k - 1 };
            if k == 0 {
                return Ok((NeighbourTable::identity(n), None));
            }
            let table = knn::build_table(emb, k, spec.metric, device)?;
            Ok((if spec.exclude_self { table } else { table.with_self_first()? }, None))
        }
        NeighbourMode::Radius => {
            let (max, tau) = radius_rule(spec, n);
            let (nearest, distances) = knn::build_with_distances(emb, max, spec.metric, device)?;
            let (table, tau) = knn::within(&nearest, &distances, tau, !spec.exclude_self)?;
            Ok((table, Some(tau)))
        }
    }
}

/// What decides a run's neighbour table, as text: runs equal in it build one table (one cache
/// entry), so a sweep's preparation job and `gps prior inspect` build each once.
/// Whether the run's seed changes its table: priors trained (or sampled) with the run's seed.
pub fn table_is_seeded(spec: &RunSpec) -> bool {
    matches!(spec.prior, PriorSpec::Autoencoder | PriorSpec::Labels)
}

pub fn table_key(spec: &RunSpec) -> String {
    let seeded = table_is_seeded(spec);
    serde_json::json!({
        "dataset": spec.dataset,
        "prior": spec.prior,
        "prior_options": spec.prior_options,
        "crop": spec.augmentation.crop_size,
        "k": spec.k,
        "metric": spec.metric,
        "exclude_self": spec.exclude_self,
        "neighbours": spec.neighbours,
        "seed": if seeded { Some(spec.seed) } else { None },
    })
    .to_string()
}
