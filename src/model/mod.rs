//! Backbones (CIFAR ResNet-18/50 with a 3x3 stem and no max-pool, as the authors; a small CNN for
//! CPU runs) and the MLP heads the SSL methods put on top.
pub mod flat_params;
mod heads;
pub mod init;
mod resnet;
mod small_cnn;

pub use heads::{Mlp, MlpLayer};
pub use resnet::ResNet;

use crate::config::Backbone as BackboneKind;
use crate::recipe::Stem;
use tch::Tensor;
use tch::nn::{self, ModuleT};

/// A feature extractor: images [B, C, H, W] to features [B, out_dim].
pub trait Backbone: ModuleT {
    fn out_dim(&self) -> i64;
}

/// Builds a backbone's variables under `p` (the same names every time, so a momentum copy built
/// under another VarStore lines up variable by variable). `stem` applies to the ResNets.
pub fn build_backbone_with(kind: BackboneKind, p: &nn::Path, in_channels: i64, stem: Stem) -> Box<dyn Backbone> {
    match kind {
        BackboneKind::Resnet18 => Box::new(resnet::ResNet::resnet18(p, in_channels, stem)),
        BackboneKind::Resnet50 => Box::new(resnet::ResNet::resnet50(p, in_channels, stem)),
        BackboneKind::SmallCnn => Box::new(small_cnn::SmallCnn::new(p, in_channels)),
    }
}

/// `build_backbone_with` the CIFAR stem (the authors' for 32-pixel data).
pub fn build_backbone(kind: BackboneKind, p: &nn::Path, in_channels: i64) -> Box<dyn Backbone> {
    build_backbone_with(kind, p, in_channels, Stem::Cifar)
}

/// The stem of a ResNet's weights, from its first convolution's kernel (3x3 CIFAR, 7x7 ImageNet).
pub fn stem_of(conv1_weight: &Tensor) -> Stem {
    if conv1_weight.size().get(2) == Some(&7) { Stem::Imagenet } else { Stem::Cifar }
}

/// A tensor with the same shape in channels-last (NHWC) memory order: tch has no
/// `memory_format` API, so the strides are made by permuting, copying and permuting back.
pub fn to_channels_last(x: &Tensor) -> Tensor {
    if x.dim() != 4 {
        return x.shallow_clone();
    }
    x.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

/// Re-lays every 4-D variable (convolution weights) of a VarStore in channels-last order, in place.
/// cuDNN then picks its NHWC kernels for the whole network.
pub fn vars_to_channels_last(vs: &nn::VarStore) {
    let _guard = tch::no_grad_guard();
    for (_, mut v) in vs.variables() {
        if v.dim() == 4 {
            let cl = to_channels_last(&v);
            v.set_data(&cl);
        }
    }
}

/// Number of scalar parameters (for logs).
pub fn parameter_count(vs: &nn::VarStore) -> i64 {
    vs.trainable_variables().iter().map(|t| t.numel() as i64).sum()
}

/// L2-normalise rows.
pub fn normalize(x: &Tensor) -> Tensor {
    let n = x.norm_scalaropt_dim(2.0, [1i64].as_slice(), true).clamp_min(1e-12);
    x / n
}
