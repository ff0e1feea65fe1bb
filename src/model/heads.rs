//! MLP heads (projectors, predictors) as solo-learn builds them: Linear, optional BatchNorm1d,
//! optional ReLU, per layer, initialised as `nn.Linear` and `nn.BatchNorm1d` are. Variables are
//! named by their index in the equivalent `nn.Sequential` (ReLUs count), as PyTorch names them.

use super::init;
use tch::Tensor;
use tch::nn::{self, ModuleT};

/// One layer of a head: output width, whether a BatchNorm follows (with or without its affine
/// parameters), whether a ReLU follows.
#[derive(Debug, Clone, Copy)]
pub struct MlpLayer {
    pub out: i64,
    pub bn: bool,
    pub relu: bool,
    pub bias: bool,
}

impl MlpLayer {
    pub const fn hidden(out: i64) -> Self {
        MlpLayer { out, bn: true, relu: true, bias: true }
    }
    pub const fn last(out: i64, bn: bool) -> Self {
        MlpLayer { out, bn, relu: false, bias: true }
    }
}

#[derive(Debug)]
pub struct Mlp {
    layers: Vec<(nn::Linear, Option<nn::BatchNorm>, bool)>,
}

impl Mlp {
    pub fn new(p: &nn::Path, input: i64, spec: &[MlpLayer]) -> Mlp {
        let mut layers = Vec::new();
        let mut i = input;
        let mut index = 0;
        for l in spec {
            let lin = init::linear(p / index.to_string(), i, l.out, l.bias);
            index += 1;
            let bn = l.bn.then(|| {
                index += 1;
                init::batch_norm1d(p / (index - 1).to_string(), l.out)
            });
            index += l.relu as usize;
            layers.push((lin, bn, l.relu));
            i = l.out;
        }
        Mlp { layers }
    }
}

impl ModuleT for Mlp {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let mut y = x.shallow_clone();
        for (lin, bn, relu) in &self.layers {
            y = y.apply(lin);
            if let Some(bn) = bn {
                y = y.apply_t(bn, train);
            }
            if *relu {
                y = y.relu();
            }
        }
        y
    }
}
