//! A small CNN (4 conv blocks, about 0.4M parameters) that learns useful features in minutes on
//! a CPU: quickstarts and tests. Initialised as its PyTorch twin (`nn.Conv2d`, `nn.BatchNorm2d`
//! defaults; scripts/parity/make_fixtures.py).

use super::Backbone;
use super::init;
use tch::Tensor;
use tch::nn::{self, ModuleT};

#[derive(Debug)]
pub struct SmallCnn {
    layers: Vec<(nn::Conv2D, nn::BatchNorm)>,
}

const WIDTHS: [i64; 4] = [32, 64, 128, 256];

impl SmallCnn {
    pub fn new(p: &nn::Path, in_channels: i64) -> SmallCnn {
        let mut layers = Vec::new();
        let mut c = in_channels;
        for (i, &w) in WIDTHS.iter().enumerate() {
            let conv = init::conv2d(p / format!("conv{i}"), c, w, 3, 1, 1, false);
            let bn = init::batch_norm2d(p / format!("bn{i}"), w);
            layers.push((conv, bn));
            c = w;
        }
        SmallCnn { layers }
    }
}

impl ModuleT for SmallCnn {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let mut y = x.shallow_clone();
        for (i, (conv, bn)) in self.layers.iter().enumerate() {
            y = y.apply(conv).apply_t(bn, train).relu();
            // Halve the resolution after each of the first three blocks (32 -> 4).
            if i + 1 < self.layers.len() {
                y = y.max_pool2d_default(2);
            }
        }
        y.adaptive_avg_pool2d([1, 1]).flatten(1, -1)
    }
}

impl Backbone for SmallCnn {
    fn out_dim(&self) -> i64 {
        WIDTHS[WIDTHS.len() - 1]
    }
}
