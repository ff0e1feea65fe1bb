//! torchvision's ResNets as the authors' code (solo-learn) builds them, fc removed, with either
//! stem: the CIFAR stem (conv1 = 3x3, stride 1, padding 2, giving 34x34 maps from 32x32 input,
//! and no max-pool) for small images, or torchvision's own ImageNet stem (7x7 stride-2 conv, 3x3
//! stride-2 max-pool) for 224-pixel data such as FGVC-Aircraft. Initialised as there:
//! torchvision's Kaiming-normal (fan-out) convolutions and γ = 1, β = 0 batch norms; the CIFAR
//! stem's conv1 is the fresh `nn.Conv2d` solo-learn puts in (PyTorch's default U(±1/√fan_in)).
//! Variable names are torchvision's state_dict names.

use super::Backbone;
use super::init;
use crate::recipe::Stem;
use tch::Tensor;
use tch::nn::{self, ModuleT};

fn conv(p: nn::Path, i: i64, o: i64, k: i64, stride: i64, padding: i64) -> nn::Conv2D {
    init::resnet_conv2d(p, i, o, k, stride, padding)
}

fn bn(p: nn::Path, c: i64) -> nn::BatchNorm {
    init::batch_norm2d(p, c)
}

#[derive(Debug)]
struct Downsample {
    conv: nn::Conv2D,
    bn: nn::BatchNorm,
}

#[derive(Debug)]
enum Block {
    Basic { c1: nn::Conv2D, b1: nn::BatchNorm, c2: nn::Conv2D, b2: nn::BatchNorm, down: Option<Downsample> },
    Bottleneck { c1: nn::Conv2D, b1: nn::BatchNorm, c2: nn::Conv2D, b2: nn::BatchNorm, c3: nn::Conv2D, b3: nn::BatchNorm, down: Option<Downsample> },
}

impl Block {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let (out, down) = match self {
            Block::Basic { c1, b1, c2, b2, down } => {
                let y = x.apply(c1).apply_t(b1, train).relu().apply(c2).apply_t(b2, train);
                (y, down)
            }
            Block::Bottleneck { c1, b1, c2, b2, c3, b3, down } => {
                let y = x.apply(c1).apply_t(b1, train).relu().apply(c2).apply_t(b2, train).relu().apply(c3).apply_t(b3, train);
                (y, down)
            }
        };
        let shortcut = match down {
            Some(d) => x.apply(&d.conv).apply_t(&d.bn, train),
            None => x.shallow_clone(),
        };
        (out + shortcut).relu()
    }
}

#[derive(Debug)]
pub struct ResNet {
    stem: Stem,
    conv1: nn::Conv2D,
    bn1: nn::BatchNorm,
    blocks: Vec<Block>,
    out_dim: i64,
}

impl ResNet {
    pub fn resnet18(p: &nn::Path, in_channels: i64, stem: Stem) -> ResNet {
        Self::new(p, in_channels, [2, 2, 2, 2], false, stem)
    }

    pub fn resnet50(p: &nn::Path, in_channels: i64, stem: Stem) -> ResNet {
        Self::new(p, in_channels, [3, 4, 6, 3], true, stem)
    }

    /// torchvision's ResNet-101 (a prior: `imagenet-resnet101`).
    pub fn resnet101(p: &nn::Path, in_channels: i64, stem: Stem) -> ResNet {
        Self::new(p, in_channels, [3, 4, 23, 3], true, stem)
    }

    fn new(p: &nn::Path, in_channels: i64, layers: [usize; 4], bottleneck: bool, stem: Stem) -> ResNet {
        let expansion = if bottleneck { 4 } else { 1 };
        let conv1 = match stem {
            Stem::Cifar => init::conv2d(p / "conv1", in_channels, 64, 3, 1, 2, false),
            Stem::Imagenet => conv(p / "conv1", in_channels, 64, 7, 2, 3),
        };
        let bn1 = bn(p / "bn1", 64);
        let mut blocks = Vec::new();
        let mut inplanes = 64;
        for (li, (&n, planes)) in layers.iter().zip([64, 128, 256, 512]).enumerate() {
            let lp = p / format!("layer{}", li + 1);
            for bi in 0..n {
                let stride = if li > 0 && bi == 0 { 2 } else { 1 };
                let bp = &lp / bi;
                let out = planes * expansion;
                let down = (stride != 1 || inplanes != out)
                    .then(|| Downsample { conv: conv(&bp / "downsample" / 0, inplanes, out, 1, stride, 0), bn: bn(&bp / "downsample" / 1, out) });
                let block = if bottleneck {
                    Block::Bottleneck {
                        c1: conv(&bp / "conv1", inplanes, planes, 1, 1, 0),
                        b1: bn(&bp / "bn1", planes),
                        c2: conv(&bp / "conv2", planes, planes, 3, stride, 1),
                        b2: bn(&bp / "bn2", planes),
                        c3: conv(&bp / "conv3", planes, out, 1, 1, 0),
                        b3: bn(&bp / "bn3", out),
                        down,
                    }
                } else {
                    Block::Basic {
                        c1: conv(&bp / "conv1", inplanes, planes, 3, stride, 1),
                        b1: bn(&bp / "bn1", planes),
                        c2: conv(&bp / "conv2", planes, planes, 3, 1, 1),
                        b2: bn(&bp / "bn2", planes),
                        down,
                    }
                };
                blocks.push(block);
                inplanes = out;
            }
        }
        ResNet { stem, conv1, bn1, blocks, out_dim: 512 * expansion }
    }
}

impl ModuleT for ResNet {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let mut y = x.apply(&self.conv1).apply_t(&self.bn1, train).relu();
        if self.stem == Stem::Imagenet {
            y = y.max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
        }
        for b in &self.blocks {
            y = b.forward_t(&y, train);
        }
        y.adaptive_avg_pool2d([1, 1]).flatten(1, -1)
    }
}

impl Backbone for ResNet {
    fn out_dim(&self) -> i64 {
        self.out_dim
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn channels_last_layout_gives_the_same_features() {
        tch::manual_seed(3);
        let vs = nn::VarStore::new(Device::Cpu);
        let net = ResNet::resnet18(&vs.root(), 3, Stem::Cifar);
        let x = Tensor::randn([2, 3, 16, 16], (Kind::Float, Device::Cpu));
        let before = net.forward_t(&x, false);
        super::super::vars_to_channels_last(&vs);
        let conv = vs.variables()["conv1.weight"].shallow_clone();
        assert!(!conv.is_contiguous(), "weights are re-laid as NHWC");
        let after = net.forward_t(&super::super::to_channels_last(&x), false);
        assert!(before.allclose(&after, 1e-4, 1e-4, false));
    }

    #[test]
    fn shapes_and_parameter_counts_match_torchvision() {
        let vs = nn::VarStore::new(Device::Cpu);
        let r18 = ResNet::resnet18(&vs.root(), 3, Stem::Cifar);
        let y = Tensor::zeros([2, 3, 32, 32], (Kind::Float, Device::Cpu)).apply_t(&r18, false);
        assert_eq!(y.size(), [2, 512]);
        // torchvision resnet18 without fc: 11,176,512 parameters; the 3x3 stem has 64*3*(49-9) fewer.
        assert_eq!(super::super::parameter_count(&vs), 11_176_512 - 64 * 3 * (49 - 9));
        let vs50 = nn::VarStore::new(Device::Cpu);
        let r50 = ResNet::resnet50(&vs50.root(), 3, Stem::Cifar);
        assert_eq!(r50.out_dim(), 2048);
        assert_eq!(super::super::parameter_count(&vs50), 23_508_032 - 64 * 3 * (49 - 9));
        // The ImageNet stem is torchvision's own: every parameter of resnet50 but fc; 224 px in,
        // 7x7 maps before the pooling (one of them a 1-channel stem, as TissueMNIST needs).
        let vs50 = nn::VarStore::new(Device::Cpu);
        let r50 = ResNet::resnet50(&vs50.root(), 3, Stem::Imagenet);
        assert_eq!(super::super::parameter_count(&vs50), 23_508_032);
        assert_eq!(Tensor::zeros([1, 3, 224, 224], (Kind::Float, Device::Cpu)).apply_t(&r50, false).size(), [1, 2048]);
        let vs1 = nn::VarStore::new(Device::Cpu);
        let _ = ResNet::resnet18(&vs1.root(), 1, Stem::Cifar);
        assert_eq!(vs1.variables()["conv1.weight"].size(), [64, 1, 3, 3]);
    }
}
