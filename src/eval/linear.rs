//! Offline linear evaluation, the standard protocol of SSL papers: the frozen encoder's features
//! of the un-augmented training split, a linear classifier trained on them with momentum SGD and
//! a cosine schedule (100 epochs by default), top-1 on the test split. The features are computed
//! once, so the 100 epochs cost seconds, not a training run.

use crate::config::OptimizerKind;
use crate::knn::SplitMix64;
use crate::model::init;
use crate::optim::{Optimizer, ParamGroup, WarmupCosine};
use tch::nn::{self, Module};
use tch::{Kind, Tensor};

/// Random stream of the classifier's batch order (see SplitMix64::for_step).
const STREAM_LINEAR: u64 = 11;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinearOptions {
    pub epochs: usize,
    pub batch_size: usize,
    /// At batch size 256; scaled linearly with `batch_size`, as the run spec's `optimizer.lr`.
    pub lr: f64,
    pub weight_decay: f64,
    pub momentum: f64,
    /// Initial weights (libtorch's generator) and batch order.
    pub seed: u64,
}

impl Default for LinearOptions {
    fn default() -> Self {
        LinearOptions { epochs: 100, batch_size: 256, lr: 0.1, weight_decay: 0.0, momentum: 0.9, seed: 0 }
    }
}

/// Trains a linear classifier on `train` features [N, D] (labels [N], on the features' device)
/// and returns its top-1 on `test`. Every epoch is one pass in a seeded random order, the last
/// batch smaller where N is not a multiple of the batch size; the learning rate follows a cosine
/// from `lr` to 0 over all steps.
pub fn train_and_test(train: &Tensor, train_labels: &Tensor, test: &Tensor, test_labels: &Tensor, num_classes: usize, opts: &LinearOptions) -> f64 {
    let device = train.device();
    let (n, dim) = train.size2().expect("features are [N, D]");
    let vs = nn::VarStore::new(device);
    tch::manual_seed(opts.seed as i64);
    let head = init::linear(vs.root(), dim, num_classes as i64, true);
    let group = ParamGroup { params: vs.trainable_variables(), lr_scale: 1.0, weight_decay: opts.weight_decay };
    let mut opt = Optimizer::new(OptimizerKind::Sgd, vec![group], opts.momentum, 0.0);
    let b = (opts.batch_size as i64).clamp(1, n.max(1));
    let steps_per_epoch = (n + b - 1) / b;
    let schedule = WarmupCosine { base_lr: opts.lr * b as f64 / 256.0, warmup_steps: 0, total_steps: (steps_per_epoch as u64) * opts.epochs as u64 };
    let mut step = 0u64;
    for epoch in 0..opts.epochs {
        let order: Vec<i64> = SplitMix64::for_step(opts.seed, STREAM_LINEAR, epoch as u64).permutation(n as usize).into_iter().map(i64::from).collect();
        let order = Tensor::from_slice(&order).to_device(device);
        for s in 0..steps_per_epoch {
            let idx = order.narrow(0, s * b, b.min(n - s * b));
            let loss = head.forward(&train.index_select(0, &idx)).cross_entropy_for_logits(&train_labels.index_select(0, &idx));
            opt.backward_step(&loss, schedule.lr(step));
            step += 1;
        }
    }
    super::probe_top1(&head, &test.to_kind(Kind::Float), test_labels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    /// Three classes along three directions plus noise: a linear classifier separates them, and
    /// one trained for a single epoch at a tiny rate does not yet.
    #[test]
    fn learns_linearly_separable_features() {
        let mut rng = SplitMix64::new(4);
        let make = |n: i64, rng: &mut SplitMix64| {
            let labels: Vec<i64> = (0..n).map(|i| i % 3).collect();
            let mut x = Vec::new();
            for &l in &labels {
                for d in 0..8 {
                    let signal = if d == l as usize { 2.0 } else { 0.0 };
                    x.push(signal + rng.uniform() as f32 - 0.5 - 0.3);
                }
            }
            (Tensor::from_slice(&x).view([n, 8]), Tensor::from_slice(&labels))
        };
        let (train, train_y) = make(300, &mut rng);
        let (test, test_y) = make(90, &mut rng);
        let opts = LinearOptions { epochs: 10, batch_size: 32, ..Default::default() };
        assert_eq!(train.device(), Device::Cpu);
        assert_eq!(train_and_test(&train, &train_y, &test, &test_y, 3, &opts), 1.0);
        let barely = LinearOptions { epochs: 1, lr: 1e-4, ..opts };
        assert!(train_and_test(&train, &train_y, &test, &test_y, 3, &barely) < 0.9);
    }
}
