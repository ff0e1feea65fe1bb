//! `pixels`: the image itself, scaled to [0,1] (not normalised), resized to the prior's input
//! size, flattened. The weakest prior (purity@10 about 0.25 on CIFAR-10), a floor for the others.

use super::{Prior, embed_in_batches, to_float};
use crate::data::Dataset;
use anyhow::Result;
use tch::{Device, Tensor};

pub struct Pixels {
    pub input_size: u32,
}

impl Prior for Pixels {
    fn key(&self) -> String {
        format!("pixels|size={}", self.input_size)
    }

    fn embed(&self, train: &Dataset, device: Device) -> Result<Tensor> {
        embed_in_batches(&train.images, |b| Ok(to_float(b, device, Some(self.input_size))))
    }
}
