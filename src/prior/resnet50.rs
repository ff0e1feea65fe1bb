//! `imagenet-resnet50`: the authors' prior (`solo/emb_methods/resnet.py`): torchvision's
//! ResNet-50 with the `IMAGENET1K_V2` weights, `fc` removed, the 2048-d average-pooled layer-4
//! feature, eval mode, fp32, no normalisation of the output. Its input is the authors'
//! `noTransform`: the image resized (bicubic) to the crop size and normalised with the dataset's
//! statistics (32 px and CIFAR's constants for CIFAR: not upsampled, not ImageNet statistics).
//!
//! The weights are the user's torchvision checkpoint, read as torch hub caches it
//! (`resnet50-11ad3fa6.pth`, a `torch.save` zip read without Python) or as safetensors.

use super::{Prior, embed_in_batches, network_input};
use crate::data::Dataset;
use crate::model::{Backbone, build_backbone_with};
use crate::recipe::{PriorInput, Stem};
use crate::weights::{self, Ignore};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use tch::nn;
use tch::{Device, Tensor};

/// torchvision's file name for `ResNet50_Weights.IMAGENET1K_V2`: the digits are the start of the
/// file's sha256.
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

/// How to get the weights, for error messages.
pub const HOW_TO_GET: &str = "get them where torchvision can download (this downloads into torch hub's cache): \
     `python3 -c 'import torchvision; torchvision.models.resnet50(weights=\"IMAGENET1K_V2\")'`, \
     then copy ~/.cache/torch/hub/checkpoints/resnet50-11ad3fa6.pth to this machine's same folder \
     or point `prior_options.weights` at it (a .pth or a .safetensors of the same state_dict)";

pub struct ResNet50Prior {
    weights: PathBuf,
    sha256: String,
    input: PriorInput,
}

impl ResNet50Prior {
    /// Checks the weights file now (missing or not the named checkpoint: an error naming it).
    pub fn new(weights: Option<&Path>, input: PriorInput) -> Result<ResNet50Prior> {
        let (path, default) = match weights {
            Some(p) => (p.to_path_buf(), false),
            None => (hub_checkpoints().join(V2_FILE), true),
        };
        if !path.is_file() {
            let which = if default { "torch hub's cache (the default of `prior_options.weights`)" } else { "`prior_options.weights`" };
            bail!(
                "prior `imagenet-resnet50`: the weights file {} (from {which}) does not exist. It is torchvision's ResNet-50 IMAGENET1K_V2 checkpoint; {HOW_TO_GET}",
                path.display()
            );
        }
        let sha256 = weights::sha256(&path)?;
        // torchvision names its files `<arch>-<first 8 hex digits of the sha256>.pth`.
        if let Some(prefix) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_prefix("resnet50-")).and_then(|n| n.strip_suffix(".pth"))
            && prefix.len() == 8
            && !sha256.starts_with(prefix)
        {
            bail!(
                "prior `imagenet-resnet50`: {} is damaged or not the file its name says: its sha256 starts {} where torchvision's name promises {prefix}; download it again ({HOW_TO_GET})",
                path.display(),
                &sha256[..8]
            );
        }
        if !sha256.starts_with("11ad3fa6") {
            eprintln!(
                "note: prior `imagenet-resnet50`: {} (sha256 {}) is not torchvision's IMAGENET1K_V2 file (11ad3fa6...); using it as given",
                path.display(),
                &sha256[..12]
            );
        }
        Ok(ResNet50Prior { weights: path, sha256, input })
    }
}

/// torchvision's ResNet-50 without `fc` (2048-d pooled feature) holding the weights of `file`,
/// loaded strictly by name and shape; eval mode is the caller's `forward_t(x, false)`.
pub fn load(file: &Path, device: Device) -> Result<(nn::VarStore, Box<dyn Backbone>)> {
    let mut vs = nn::VarStore::new(device);
    let net = build_backbone_with(crate::config::Backbone::Resnet50, &vs.root(), 3, Stem::Imagenet);
    vs.freeze();
    let tensors = weights::read(file)?;
    weights::check_finite(&tensors, &file.display().to_string())?;
    let fc = Ignore { names: &["fc.weight", "fc.bias"], why: "the classifier, removed as the authors remove it" };
    weights::load_strict(&vs, tensors, &[fc], &format!("{} (expected torchvision's resnet50 state_dict)", file.display()))?;
    Ok((vs, net))
}

impl Prior for ResNet50Prior {
    fn key(&self) -> String {
        format!("imagenet-resnet50|sha256={}|{}|bicubic|fp32|eval", self.sha256, self.input.key())
    }

    fn embed(&self, train: &Dataset, device: Device) -> Result<Tensor> {
        if !matches!(train.channels(), 1 | 3) {
            bail!("the ImageNet ResNet-50 takes 1- or 3-channel images, the dataset has {} channels", train.channels());
        }
        if train.channels() == 1 {
            eprintln!(
                "note: prior `imagenet-resnet50`: one-channel images are normalised, then repeated to three channels, as the authors' code feeds TissueMNIST to it"
            );
        }
        let (_vs, net) = load(&self.weights, device).with_context(|| format!("loading the ResNet-50 weights {}", self.weights.display()))?;
        embed_in_batches(&train.images, |batch| Ok(net.forward_t(&network_input(batch, device, &self.input, true), false)))
    }
}
