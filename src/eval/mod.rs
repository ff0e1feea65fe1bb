//! Evaluation: features of a split through the frozen backbone, the online linear probe's top-1
//! (the paper's metric), solo-learn's weighted k-NN classifier, representation health; `linear`,
//! the offline linear evaluation of a finished run (`gps eval linear`).
pub mod health;
pub mod linear;

use crate::augment::Augmenter;
use crate::model::{Backbone, normalize, to_channels_last};
use crate::recipe::EvalTransform;
use tch::nn::ModuleT;
use tch::{Kind, Tensor};

const EVAL_BATCH: i64 = 1024;

/// How the backbone is run for evaluation.
pub struct FeatureExtractor<'a> {
    pub backbone: &'a dyn Backbone,
    /// Supplies the normalisation statistics.
    pub augmenter: &'a Augmenter,
    /// The evaluation transform (resize, centre crop) applied before normalising.
    pub eval: EvalTransform,
    pub channels_last: bool,
    /// bf16 autocast on this device's type (None: fp32).
    pub autocast: Option<tch::Device>,
}

impl FeatureExtractor<'_> {
    /// Backbone features (eval mode, no augmentation: the evaluation transform only) of uint8
    /// images on the device, as float32.
    pub fn features(&self, images: &Tensor) -> Tensor {
        self.batched(images.size()[0], |start, len| self.augmenter.evaluation_view(&images.narrow(0, start, len), &self.eval))
    }

    /// Backbone features (eval mode) of already augmented, normalised float images.
    pub fn features_of_normalized(&self, x: &Tensor) -> Tensor {
        self.batched(x.size()[0], |start, len| x.narrow(0, start, len))
    }

    fn batched(&self, n: i64, input: impl Fn(i64, i64) -> Tensor) -> Tensor {
        let _guard = tch::no_grad_guard();
        let mut out = Vec::new();
        let mut start = 0;
        while start < n {
            let len = EVAL_BATCH.min(n - start);
            let mut x = input(start, len);
            if self.channels_last {
                x = to_channels_last(&x);
            }
            let f = crate::exec::autocast(self.autocast, || self.backbone.forward_t(&x, false));
            out.push(f.to_kind(Kind::Float));
            start += len;
        }
        Tensor::cat(&out, 0)
    }
}

/// Top-1 accuracy of a linear probe on features.
pub fn probe_top1(probe: &dyn ModuleT, features: &Tensor, labels: &Tensor) -> f64 {
    let _guard = tch::no_grad_guard();
    let pred = probe.forward_t(features, false).argmax(1, false);
    pred.eq_tensor(labels).to_kind(Kind::Float).mean(Kind::Float).double_value(&[])
}

/// Weighted k-NN top-1 (solo-learn, as in Wu et al. 2018): cosine similarity to the k nearest
/// training features, votes weighted by exp(sim / T).
pub fn knn_top1(train: &Tensor, train_labels: &Tensor, test: &Tensor, test_labels: &Tensor, k: usize, temperature: f64, num_classes: usize) -> f64 {
    let _guard = tch::no_grad_guard();
    let train = normalize(train);
    let test = normalize(test);
    let k = (k as i64).min(train.size()[0]);
    let n = test.size()[0];
    let mut correct = 0i64;
    let mut start = 0;
    while start < n {
        let len = EVAL_BATCH.min(n - start);
        let sim = test.narrow(0, start, len).mm(&train.transpose(0, 1));
        let (vals, idx) = sim.topk(k, 1, true, true);
        let neighbour_labels = train_labels.index_select(0, &idx.flatten(0, 1)).view([len, k]);
        let weights = (vals / temperature).exp();
        let votes = Tensor::zeros([len, num_classes as i64], (Kind::Float, train.device()));
        let votes = votes.scatter_add(1, &neighbour_labels, &weights);
        let pred = votes.argmax(1, false);
        correct += pred.eq_tensor(&test_labels.narrow(0, start, len)).sum(Kind::Int64).int64_value(&[]);
        start += len;
    }
    correct as f64 / n.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knn_classifies_separated_clusters() {
        // Two clusters around +e1 and +e2; test points near each.
        let train = Tensor::from_slice(&[1f32, 0.1, 0.9, 0.0, 0.1, 1.0, 0.0, 0.9]).view([4, 2]);
        let train_labels = Tensor::from_slice(&[0i64, 0, 1, 1]);
        let test = Tensor::from_slice(&[1f32, 0.2, 0.2, 1.0]).view([2, 2]);
        let test_labels = Tensor::from_slice(&[0i64, 1]);
        assert_eq!(knn_top1(&train, &train_labels, &test, &test_labels, 3, 0.07, 2), 1.0);
        let wrong = Tensor::from_slice(&[1i64, 0]);
        assert_eq!(knn_top1(&train, &train_labels, &test, &wrong, 3, 0.07, 2), 0.0);
    }
}
