//! `torchscript:<file>`: any encoder exported with `torch.jit.trace`, e.g. the paper's ImageNet
//! ResNet-50 or CLIP. The module gets float images in [0, 1], [B, C, H, W] (resized to
//! `prior_options.input_size` when set) and must return [B, D] (or [B, D, 1, 1]); bake the
//! normalisation into the module. Export in a few lines:
//!
//! ```python
//! import torch, torchvision
//! m = torchvision.models.resnet50(weights="IMAGENET1K_V2"); m.fc = torch.nn.Identity()
//! norm = torchvision.transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
//! enc = torch.nn.Sequential(norm, m).eval()
//! torch.jit.trace(enc, torch.rand(2, 3, 32, 32)).save("resnet50.pt")
//! ```
//! then `prior: torchscript:resnet50.pt`.

use super::{Prior, embed_in_batches, file_sha256, to_float};
use crate::data::Dataset;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use tch::{Device, Tensor};

pub struct TorchScriptPrior {
    path: PathBuf,
    sha256: String,
    input_size: u32,
}

impl TorchScriptPrior {
    pub fn new(path: &Path, input_size: u32) -> Result<TorchScriptPrior> {
        if !path.is_file() {
            bail!("prior `torchscript:{}`: no such file (export one with torch.jit.trace, see `gps prior inspect --help`)", path.display());
        }
        Ok(TorchScriptPrior { path: path.to_path_buf(), sha256: file_sha256(path)?, input_size })
    }
}

impl Prior for TorchScriptPrior {
    fn key(&self) -> String {
        format!("torchscript|sha256={}|size={}", self.sha256, self.input_size)
    }

    fn embed(&self, train: &Dataset, device: Device) -> Result<Tensor> {
        let mut module = tch::CModule::load_on_device(&self.path, device).with_context(|| format!("cannot load TorchScript module {}", self.path.display()))?;
        module.set_eval();
        embed_in_batches(&train.images, |batch| {
            let x = to_float(batch, device, Some(self.input_size));
            module.forward_ts(&[x]).with_context(|| format!("running TorchScript module {}", self.path.display()))
        })
    }
}
