//! Everything a run needs before its first step: the two splits, the recipe they call for
//! (normalisation, crop, stem, the prior's input, the evaluation transform) and the prior's
//! neighbour table. The expensive parts (decoding, the prior, the k-NN table) are
//! cached on disk, so the tasks of a sweep that share a (dataset, prior, k) compute them once.

use crate::config::{PriorSpec, RunSpec};
use crate::data::{self, Dataset, Split};
use crate::knn::{self, NeighbourTable};
use crate::recipe::Recipe;
use anyhow::{Context, Result, bail};
use tch::Device;

pub struct Prepared {
    pub train: Dataset,
    pub test: Dataset,
    pub recipe: Recipe,
    pub table: NeighbourTable,
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
    let table = neighbour_table(spec, &train, &recipe, device)?;
    Ok(Prepared { train, test, recipe, table })
}

/// The candidates of each anchor: the k nearest prior neighbours without the image itself, or
/// (`exclude_self: false`, the authors' configs without `filter_sim_matrix`) the image itself
/// and its k − 1 nearest.
fn neighbour_table(spec: &RunSpec, train: &Dataset, recipe: &Recipe, device: Device) -> Result<NeighbourTable> {
    if spec.prior == PriorSpec::None {
        return Ok(NeighbourTable::identity(train.len()));
    }
    let k = if spec.exclude_self { spec.k } else { spec.k - 1 };
    if k == 0 {
        return Ok(NeighbourTable::identity(train.len()));
    }
    let table = nearest(spec, train, recipe, k, device)?;
    if spec.exclude_self { Ok(table) } else { table.with_self_first() }
}

fn nearest(spec: &RunSpec, train: &Dataset, recipe: &Recipe, k: usize, device: Device) -> Result<NeighbourTable> {
    // A table already cached for this prior and data (e.g. by a CPU preparation job) is all a
    // run needs: the embedding itself, and the prior's weights, can then be absent.
    let hash = crate::prior::cache_hash(&spec.prior, &spec.prior_options, &recipe.prior, train, spec.seed, &spec.cache_dir)?;
    if let Some(table) = knn::cached_table(&spec.cache_dir, &hash, k, spec.metric, train.len()) {
        return Ok(table);
    }
    let (emb, hash) = crate::prior::embed_cached(&spec.prior, &spec.prior_options, &recipe.prior, train, spec.seed, &spec.cache_dir, device)
        .with_context(|| format!("computing prior `{}`", spec.prior))?;
    if emb.size()[0] as usize != train.len() {
        bail!("prior `{}` gives {} embeddings for {} training images", spec.prior, emb.size()[0], train.len());
    }
    knn::table_cached(&emb, &hash, k, spec.metric, &spec.cache_dir, device)
}
