//! Representation health, measured at each evaluation: has the embedding collapsed?
//!
//! - RankMe (Garrido et al., ICML 2023): the effective rank of the test-set backbone features,
//!   exp of the entropy of the normalised singular values. A representation that uses few
//!   directions (dimensional collapse, common with weak augmentation) has a small one.
//! - Alignment and uniformity (Wang & Isola, ICML 2020) of L2-normalised features of positive
//!   pairs drawn the way training draws them: alignment is the mean squared distance between the
//!   two views (lower: positives closer), uniformity the log of the mean Gaussian potential
//!   between all pairs of one view (lower: more spread over the sphere), averaged over the views.

use super::FeatureExtractor;
use crate::augment::Augmenter;
use crate::knn::{PositiveSampler, SplitMix64};
use crate::model::normalize;
use tch::{Kind, Tensor};

/// Pairs used for alignment and uniformity: a fixed subset, so every evaluation of a run
/// measures the same pairs and the curve shows the model changing, not the sample.
pub const HEALTH_PAIRS: usize = 1024;
/// Warn when RankMe falls below this share of the feature width.
pub const COLLAPSE_FRACTION: f64 = 0.05;
/// Garrido et al.'s epsilon added to the normalised singular values.
const RANKME_EPS: f64 = 1e-7;
/// Wang & Isola's defaults: alignment exponent alpha = 2, uniformity temperature t = 2.
const UNIFORMITY_T: f64 = 2.0;

/// One evaluation's measurements (NaN where the epoch was not evaluated).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Health {
    pub rankme: f64,
    pub alignment: f64,
    pub uniformity: f64,
}

impl Health {
    pub const NOT_EVALUATED: Health = Health { rankme: f64::NAN, alignment: f64::NAN, uniformity: f64::NAN };

    /// The run-log warning when the features use only a few directions of `width`.
    pub fn collapse_warning(&self, width: i64, epoch: usize) -> Option<String> {
        let floor = COLLAPSE_FRACTION * width as f64;
        (self.rankme < floor).then(|| {
            format!(
                "warning: epoch {epoch}: RankMe {:.1} of {width} feature dimensions (< {:.0}%): the representation is collapsing onto few directions \
                 (typical of weak augmentation without guided positives)",
                self.rankme,
                100.0 * COLLAPSE_FRACTION
            )
        })
    }
}

/// RankMe of `features` [N, D]: exp(-sum p log p), p = sigma / |sigma|_1 + eps, in float64.
/// Between 1 (all features on one line) and min(N, D).
pub fn rankme(features: &Tensor) -> f64 {
    let _guard = tch::no_grad_guard();
    // torch.svd without U and V (tch's linalg_svdvals always passes a CUDA-only driver name).
    let (_, s, _) = features.to_kind(Kind::Double).svd(true, false);
    let total = s.sum(Kind::Double).double_value(&[]);
    if total.is_nan() || total <= 0.0 {
        return if total == 0.0 { 1.0 } else { f64::NAN }; // all-zero features: one (degenerate) direction at most
    }
    let p = s / total + RANKME_EPS;
    let entropy = -(&p * p.log()).sum(Kind::Double).double_value(&[]);
    entropy.exp()
}

/// Mean squared distance between the L2-normalised rows of `z1` and `z2` (alpha = 2).
pub fn alignment(z1: &Tensor, z2: &Tensor) -> f64 {
    let _guard = tch::no_grad_guard();
    let (z1, z2) = (normalize(&z1.to_kind(Kind::Double)), normalize(&z2.to_kind(Kind::Double)));
    (z1 - z2).square().sum_dim_intlist([1i64].as_slice(), false, Kind::Double).mean(Kind::Double).double_value(&[])
}

/// log of the mean of exp(-t |zi - zj|^2) over all pairs i < j of the L2-normalised rows of `z`.
pub fn uniformity(z: &Tensor) -> f64 {
    let _guard = tch::no_grad_guard();
    let z = normalize(&z.to_kind(Kind::Double));
    let n = z.size()[0] as f64;
    if n < 2.0 {
        return f64::NAN;
    }
    let sq = (z.mm(&z.transpose(0, 1)) * -2.0 + 2.0).clamp_min(0.0);
    // The diagonal contributes exp(0) = 1 per row; each unordered pair appears twice.
    let off_diagonal = (sq * -UNIFORMITY_T).exp().sum(Kind::Double).double_value(&[]) - n;
    (off_diagonal / (n * (n - 1.0))).ln()
}

/// The fixed anchor/positive pairs of a run and the seeds of their augmentations.
pub struct HealthPairs {
    anchors: Tensor,
    positives: Tensor,
    seed: u64,
    stream: u64,
}

impl HealthPairs {
    /// Up to `HEALTH_PAIRS` anchors from a seeded permutation of the training set, each with one
    /// positive from the run's sampler (the anchor itself without a prior), drawn from `stream`.
    pub fn new(n_train: usize, sampler: &PositiveSampler, seed: u64, stream: u64, device: tch::Device) -> HealthPairs {
        let mut anchors = SplitMix64::for_step(seed, stream, 0).permutation(n_train);
        anchors.truncate(HEALTH_PAIRS);
        let positives = sampler.sample(&anchors, &mut SplitMix64::for_step(seed, stream, 1));
        let to_index = |v: &[u32]| Tensor::from_slice(&v.iter().map(|&i| i as i64).collect::<Vec<_>>()).to_device(device);
        HealthPairs { anchors: to_index(&anchors), positives: to_index(&positives), seed, stream }
    }

    /// Health of the current model: RankMe of `test_features`, alignment and uniformity of the
    /// pairs' two views (view 1: the anchor through `augmenters[0]`, view 2: the positive through
    /// `augmenters[1]`, the same augmentation draws at every evaluation).
    pub fn measure(&self, extractor: &FeatureExtractor, augmenters: &[Augmenter; 2], train_images: &Tensor, test_features: &Tensor) -> Health {
        let view = |which: usize, index: &Tensor| {
            let mut rng = SplitMix64::for_step(self.seed, self.stream, 2 + which as u64);
            let x = augmenters[which].apply(&train_images.index_select(0, index), &mut rng);
            extractor.features_of_normalized(&x)
        };
        let (z1, z2) = (view(0, &self.anchors), view(1, &self.positives));
        Health { rankme: rankme(test_features), alignment: alignment(&z1, &z2), uniformity: (uniformity(&z1) + uniformity(&z2)) / 2.0 }
    }
}

/// The per-epoch measurements of a run (NaN where an epoch was not evaluated): part of the
/// checkpointed loop state and of the result row.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HealthHistory {
    #[serde(deserialize_with = "crate::serde_nan::list")]
    pub epoch_rankme: Vec<f64>,
    #[serde(deserialize_with = "crate::serde_nan::list")]
    pub epoch_alignment: Vec<f64>,
    #[serde(deserialize_with = "crate::serde_nan::list")]
    pub epoch_uniformity: Vec<f64>,
}

impl HealthHistory {
    pub fn push(&mut self, h: Health) {
        self.epoch_rankme.push(h.rankme);
        self.epoch_alignment.push(h.alignment);
        self.epoch_uniformity.push(h.uniformity);
    }

    /// NaN for the epochs a checkpoint written before health was recorded has no value for.
    pub fn pad_to(&mut self, epochs: usize) {
        for list in [&mut self.epoch_rankme, &mut self.epoch_alignment, &mut self.epoch_uniformity] {
            list.resize(list.len().max(epochs), f64::NAN);
        }
    }

    /// The last evaluated value of each measurement (None where no epoch was evaluated).
    pub fn last(&self) -> (Option<f64>, Option<f64>, Option<f64>) {
        let last = |v: &[f64]| v.iter().rev().copied().find(|x| x.is_finite());
        (last(&self.epoch_rankme), last(&self.epoch_alignment), last(&self.epoch_uniformity))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(f: impl Fn(f64, f64) -> f64) -> Tensor {
        let v: Vec<f64> = (0..40).flat_map(|i| (0..8).map(move |j| (i as f64, j as f64))).map(|(i, j)| f(i, j)).collect();
        Tensor::from_slice(&v).view([40, 8]).to_kind(Kind::Float)
    }

    // Reference values: numpy.linalg.svd and scipy.spatial.distance.pdist on the same matrices
    // (computed once; the numbers are committed, not the script).
    #[test]
    fn rankme_alignment_uniformity_match_numpy() {
        let z = matrix(|i, j| (0.7 * i + 1.3 * j).sin() + 0.1 * (2.1 * i * j).cos());
        let w = matrix(|i, j| (0.3 * i - 0.9 * j).cos() + 0.05 * i);
        assert!((rankme(&z) - 3.111801174061515).abs() < 1e-4, "{}", rankme(&z));
        assert!((alignment(&z, &w) - 1.8933876781642713).abs() < 1e-5, "{}", alignment(&z, &w));
        assert!((uniformity(&z) - -1.668769484984677).abs() < 1e-5, "{}", uniformity(&z));
        assert!((uniformity(&w) - -1.263025071109049).abs() < 1e-5, "{}", uniformity(&w));
    }

    #[test]
    fn rankme_spans_one_to_full_width() {
        // Orthogonal columns of equal norm: every direction used equally -> the full width.
        let eye = Tensor::eye(8, (Kind::Float, tch::Device::Cpu)).repeat([5, 1]);
        assert!((rankme(&eye) - 8.0).abs() < 1e-3, "{}", rankme(&eye));
        // Rank one: all features on one line.
        let line = matrix(|i, j| (i + 1.0) * (j - 3.5));
        assert!((rankme(&line) - 1.0).abs() < 1e-3, "{}", rankme(&line));
        let h = Health { rankme: rankme(&line), alignment: 0.0, uniformity: 0.0 };
        let warning = h.collapse_warning(512, 7).expect("rank 1 of 512 is collapse");
        assert!(warning.contains("epoch 7") && warning.contains("RankMe 1.0 of 512"), "{warning}");
        assert!(Health { rankme: 100.0, ..h }.collapse_warning(512, 7).is_none());
        assert!(Health::NOT_EVALUATED.collapse_warning(512, 7).is_none(), "NaN is not a warning");
    }

    #[test]
    fn history_pads_old_checkpoints_and_reports_the_last_evaluation() {
        let mut history = HealthHistory::default();
        history.pad_to(2);
        history.push(Health { rankme: 5.0, alignment: 0.5, uniformity: -2.0 });
        history.push(Health::NOT_EVALUATED);
        assert_eq!(history.epoch_rankme.len(), 4);
        assert_eq!(history.last(), (Some(5.0), Some(0.5), Some(-2.0)));
        assert_eq!(HealthHistory::default().last(), (None, None, None));
    }
}
