//! Everything a run needs before its first step: the two splits, the recipe they call for
//! (normalisation, crop, stem, the prior's input, the evaluation transform) and the prior's
//! neighbour table. The expensive parts (decoding, the prior, the k-NN table) are
//! cached on disk, so the tasks of a sweep that share a (dataset, prior, k) compute them once.

use crate::config::RunSpec;
use crate::data::{self, Dataset, Split};
use crate::knn::NeighbourTable;
use crate::recipe::Recipe;
use anyhow::{Context, Result, bail};
use tch::Device;

pub struct Prepared {
    pub train: Dataset,
    pub test: Dataset,
    pub recipe: Recipe,
    pub table: NeighbourTable,
    /// τ of a table of candidates within a distance (`neighbours.mode: radius`).
    pub tau: Option<f64>,
}

/// Loads both splits and builds (or loads) the neighbour table of the spec's prior.
pub fn prepare_on(spec: &RunSpec, device: Device) -> Result<Prepared> {
    let train = data::load(&spec.dataset, Split::Train, &spec.cache_dir)
        .with_context(|| format!("loading the training split of dataset `{}` ({})", spec.dataset.name, spec.dataset.path.display()))?;
    let test = data::load(&spec.dataset, Split::Test, &spec.cache_dir)
        .with_context(|| format!("loading the test split of dataset `{}` ({})", spec.dataset.name, spec.dataset.path.display()))?;
    if test.channels() != train.channels() || test.image_size() != train.image_size() {
        bail!("train images are {:?} but test images are {:?}", train.images.size(), test.images.size());
    }
    let recipe = Recipe::resolve(spec, &train)?;
    if spec.prior.is_guided() && spec.k >= train.len() {
        bail!("field `k`: {} neighbours asked but the training set has {} images; lower `k`", spec.k, train.len());
    }
    if spec.eval.knn_k > train.len() {
        bail!("field `eval.knn_k`: {} neighbours asked but the training set has {} images; lower it", spec.eval.knn_k, train.len());
    }
    if train.len() < spec.batch_size {
        bail!("field `batch_size`: {} is larger than the training set ({} images); lower it", spec.batch_size, train.len());
    }
    let (table, tau) = crate::neighbours::table(spec, &train, &recipe, device)?;
    Ok(Prepared { train, test, recipe, table, tau })
}
