//! `imagenet-resnet18`, `imagenet-resnet50` (the authors' prior), `imagenet-resnet101`: the
//! authors' `solo/emb_methods/resnet.py`: torchvision's ResNet-18 (`IMAGENET1K_V1`, 512-d), ResNet-50
//! and ResNet-101 (`IMAGENET1K_V2`, 2048-d), `fc` removed, the average-pooled layer-4 feature, eval
//! mode, fp32, no normalisation of the output. Their input is the authors' `noTransform`: the
//! image resized (bicubic) to the crop size and normalised with the dataset's statistics (32 px and
//! CIFAR's constants for CIFAR: not upsampled, not ImageNet statistics).
//!
//! The weights are the user's torchvision checkpoint, read as torch hub caches it
//! (`resnet50-11ad3fa6.pth`, a `torch.save` zip read without Python) or as safetensors.

use super::{Prior, embed_in_batches, network_input};
use crate::data::Dataset;
use crate::model::{Backbone, ResNet};
use crate::recipe::{PriorInput, Stem};
use crate::weights::{self, Ignore};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use tch::nn;
use tch::{Device, Tensor};

/// Which torchvision ResNet, with the weights the authors' `resnet.py` asks torchvision for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    R18,
    R50,
    R101,
}

impl Depth {
    /// The prior's name in a run spec.
    pub fn prior_name(self) -> &'static str {
        match self {
            Depth::R18 => "imagenet-resnet18",
            Depth::R50 => "imagenet-resnet50",
            Depth::R101 => "imagenet-resnet101",
        }
    }

    /// torchvision's file name for the weights (`ResNet18_Weights.IMAGENET1K_V1`, `ResNet50_` and
    /// `ResNet101_Weights.IMAGENET1K_V2`): the 8 hex digits are the start of the file's sha256.
    pub fn file(self) -> &'static str {
        match self {
            Depth::R18 => "resnet18-f37072fd.pth",
            Depth::R50 => V2_FILE,
            Depth::R101 => "resnet101-cd907fc2.pth",
        }
    }

    fn arch(self) -> &'static str {
        match self {
            Depth::R18 => "resnet18",
            Depth::R50 => "resnet50",
            Depth::R101 => "resnet101",
        }
    }

    fn weights_name(self) -> &'static str {
        match self {
            Depth::R18 => "IMAGENET1K_V1",
            Depth::R50 | Depth::R101 => "IMAGENET1K_V2",
        }
    }

    fn build(self, p: &nn::Path) -> ResNet {
        match self {
            Depth::R18 => ResNet::resnet18(p, 3, Stem::Imagenet),
            Depth::R50 => ResNet::resnet50(p, 3, Stem::Imagenet),
            Depth::R101 => ResNet::resnet101(p, 3, Stem::Imagenet),
        }
    }

    /// How to get the weights, for error messages.
    pub fn how_to_get(self) -> String {
        format!(
            "get them where torchvision can download (this downloads into torch hub's cache): \
             `python3 -c 'import torchvision; torchvision.models.{}(weights=\"{}\")'`, then copy \
             ~/.cache/torch/hub/checkpoints/{} to this machine's same folder or point `prior_options.weights` at it \
             (a .pth or a .safetensors of the same state_dict)",
            self.arch(),
            self.weights_name(),
            self.file()
        )
    }
}

/// torchvision's file name for `ResNet50_Weights.IMAGENET1K_V2`.
pub const V2_FILE: &str = "resnet50-11ad3fa6.pth";

/// Where torch hub keeps downloaded checkpoints: `$TORCH_HOME/hub/checkpoints`, `$TORCH_HOME`
/// defaulting to `$XDG_CACHE_HOME/torch`, that to `~/.cache/torch`.
pub fn hub_checkpoints() -> PathBuf {
    let torch_home = std::env::var_os("TORCH_HOME").map(PathBuf::from).unwrap_or_else(|| {
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default().join(".cache"));
        cache.join("torch")
    });
    torch_home.join("hub").join("checkpoints")
}

pub struct ImagenetResnetPrior {
    depth: Depth,
    weights: PathBuf,
    sha256: String,
    input: PriorInput,
}

impl ImagenetResnetPrior {
    /// Checks the weights file now (missing or not the named checkpoint: an error naming it).
    pub fn new(depth: Depth, weights: Option<&Path>, input: PriorInput) -> Result<ImagenetResnetPrior> {
        let name = depth.prior_name();
        let (path, default) = match weights {
            Some(p) => (p.to_path_buf(), false),
            None => (hub_checkpoints().join(depth.file()), true),
        };
        if !path.is_file() {
            let which = if default { "torch hub's cache (the default of `prior_options.weights`)" } else { "`prior_options.weights`" };
            bail!(
                "prior `{name}`: the weights file {} (from {which}) does not exist. It is torchvision's {} {} checkpoint; {}",
                path.display(),
                depth.arch(),
                depth.weights_name(),
                depth.how_to_get()
            );
        }
        let sha256 = weights::sha256(&path)?;
        let promised = depth.file().trim_end_matches(".pth").rsplit('-').next().unwrap_or_default();
        // torchvision names its files `<arch>-<first 8 hex digits of the sha256>.pth`.
        if let Some(prefix) =
            path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_prefix(&format!("{}-", depth.arch()))).and_then(|n| n.strip_suffix(".pth"))
            && prefix.len() == 8
            && !sha256.starts_with(prefix)
        {
            bail!(
                "prior `{name}`: {} is damaged or not the file its name says: its sha256 starts {} where torchvision's name promises {prefix}; download it again ({})",
                path.display(),
                &sha256[..8],
                depth.how_to_get()
            );
        }
        if !sha256.starts_with(promised) {
            eprintln!(
                "note: prior `{name}`: {} (sha256 {}) is not torchvision's {} file ({promised}...); using it as given",
                path.display(),
                &sha256[..12],
                depth.weights_name()
            );
        }
        Ok(ImagenetResnetPrior { depth, weights: path, sha256, input })
    }
}

/// torchvision's ResNet of `depth` without `fc` (512- or 2048-d pooled feature) holding the
/// weights of `file`, loaded strictly by name and shape; eval mode is the caller's
/// `forward_t(x, false)`.
pub fn load(depth: Depth, file: &Path, device: Device) -> Result<(nn::VarStore, Box<dyn Backbone>)> {
    let mut vs = nn::VarStore::new(device);
    let net: Box<dyn Backbone> = Box::new(depth.build(&vs.root()));
    vs.freeze();
    let tensors = weights::read(file)?;
    weights::check_finite(&tensors, &file.display().to_string())?;
    let fc = Ignore { names: &["fc.weight", "fc.bias"], why: "the classifier, removed as the authors remove it" };
    weights::load_strict(&vs, tensors, &[fc], &format!("{} (expected torchvision's {} state_dict)", file.display(), depth.arch()))?;
    Ok((vs, net))
}

impl Prior for ImagenetResnetPrior {
    fn key(&self) -> String {
        format!("{}|sha256={}|{}|bicubic|fp32|eval", self.depth.prior_name(), self.sha256, self.input.key())
    }

    fn embed(&self, train: &Dataset, device: Device) -> Result<Tensor> {
        if !matches!(train.channels(), 1 | 3) {
            bail!("the ImageNet {} takes 1- or 3-channel images, the dataset has {} channels", self.depth.arch(), train.channels());
        }
        if train.channels() == 1 {
            eprintln!(
                "note: prior `{}`: one-channel images are normalised, then repeated to three channels, as the authors' code feeds TissueMNIST to it",
                self.depth.prior_name()
            );
        }
        let (_vs, net) =
            load(self.depth, &self.weights, device).with_context(|| format!("loading the {} weights {}", self.depth.arch(), self.weights.display()))?;
        embed_in_batches(&train.images, |batch| Ok(net.forward_t(&network_input(batch, device, &self.input, true), false)))
    }
}
