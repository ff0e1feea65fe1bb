//! `labels`: the oracle prior. One-hot labels plus a tiny seeded jitter, so through the very
//! same k-NN code the k nearest of an image are k random images of its own class: the upper
//! bound a real prior is measured against.

use super::Prior;
use crate::data::Dataset;
use crate::knn::SplitMix64;
use anyhow::Result;
use tch::{Device, Tensor};

/// Much smaller than the distance between two one-hot vectors (sqrt 2), so classes never mix.
const JITTER: f32 = 1e-3;

pub struct LabelOracle {
    pub seed: u64,
}

impl Prior for LabelOracle {
    fn key(&self) -> String {
        format!("labels|jitter={JITTER}|seed={}", self.seed)
    }

    fn embed(&self, train: &Dataset, _device: Device) -> Result<Tensor> {
        let (n, c) = (train.len(), train.num_classes());
        let mut rng = SplitMix64::new(self.seed);
        let mut v = vec![0f32; n * c];
        for (i, &l) in train.labels_vec().iter().enumerate() {
            for j in 0..c {
                let u = rng.uniform() as f32;
                v[i * c + j] = (2.0 * u - 1.0) * JITTER;
            }
            v[i * c + l as usize] += 1.0;
        }
        Ok(Tensor::from_slice(&v).view([n as i64, c as i64]))
    }
}
