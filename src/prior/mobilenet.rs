//! `imagenet-mobilenetv2`: torchvision's ImageNet MobileNetV2 (IMAGENET1K_V1) as a frozen
//! encoder, the 1280-d globally average-pooled last feature map. Variable names match
//! torchvision's (`features.0.0.weight`, ...), so its weights load as they are, after
//! `scripts/fetch-mobilenet.sh` converted them to safetensors.
//!
//! The offline stand-in for the authors' ResNet-50 (a package registry ships these weights). It
//! sees what the authors' prior sees by default (the crop size, the dataset's statistics); the
//! input size is a real knob: CIFAR images upsampled to 64 px give purity@10 about 0.48, 32 px
//! about 0.34, 96 px about 0.58 (data-and-priors.md).

use super::{Prior, embed_in_batches, network_input};
use crate::data::Dataset;
use crate::recipe::PriorInput;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

pub const MOBILENET_WEIGHTS_FILE: &str = "mobilenet_v2-b0353104.safetensors";

/// The converted weights: `$GPS_WEIGHTS_DIR`, else `<cache_dir>/weights`, else `.cache/weights`
/// (where the fetch script puts them by default).
pub fn mobilenet_weights_path(cache_dir: &Path) -> Result<PathBuf> {
    let env = std::env::var_os("GPS_WEIGHTS_DIR").map(PathBuf::from);
    let dirs: Vec<PathBuf> = env.into_iter().chain([cache_dir.join("weights"), PathBuf::from(".cache/weights")]).collect();
    find_weights(&dirs)
}

fn find_weights(dirs: &[PathBuf]) -> Result<PathBuf> {
    let mut tried = Vec::new();
    for dir in dirs {
        let p = dir.join(MOBILENET_WEIGHTS_FILE);
        if p.is_file() {
            return Ok(p);
        }
        tried.push(p.display().to_string());
    }
    bail!(
        "MobileNetV2 weights not found (looked for {}): run scripts/fetch-mobilenet.sh (it fetches and converts them; GPS_WEIGHTS_DIR sets where)",
        tried.join(", ")
    )
}

/// The weights are looked up when embedding, not when building the prior, so a run whose
/// neighbour table is already cached (a GPU job after a CPU preparation job) needs no weights.
pub struct MobileNetV2Prior {
    cache_dir: PathBuf,
    input: PriorInput,
}

impl MobileNetV2Prior {
    pub fn new(input: PriorInput, cache_dir: &Path) -> Result<MobileNetV2Prior> {
        Ok(MobileNetV2Prior { cache_dir: cache_dir.to_path_buf(), input })
    }
}

impl Prior for MobileNetV2Prior {
    fn key(&self) -> String {
        // The weights file name carries torchvision's hash prefix of its content.
        format!("imagenet-mobilenetv2|{MOBILENET_WEIGHTS_FILE}|{}|bicubic", self.input.key())
    }

    fn embed(&self, train: &Dataset, device: Device) -> Result<Tensor> {
        if !matches!(train.channels(), 1 | 3) {
            bail!("MobileNetV2 needs 1- or 3-channel images, the dataset has {} channels", train.channels());
        }
        if train.channels() == 1 {
            eprintln!(
                "note: prior `imagenet-mobilenetv2`: one-channel images are normalised, then repeated to three channels, as the authors' code feeds grey images to ImageNet networks"
            );
        }
        let mut vs = nn::VarStore::new(device);
        let net = features(&vs.root());
        vs.freeze(); // frozen first: loading copies into the variables in place
        let weights = mobilenet_weights_path(&self.cache_dir)?;
        vs.read_safetensors(&weights).with_context(|| format!("loading {} (re-run scripts/fetch-mobilenet.sh if it is damaged)", weights.display()))?;
        embed_in_batches(&train.images, |batch| {
            let x = network_input(batch, device, &self.input, true);
            // eval mode (train = false): BatchNorm uses the ImageNet running statistics.
            Ok(net.forward_t(&x, false).mean_dim(Some([2i64, 3].as_slice()), false, Kind::Float))
        })
    }
}

/// Conv2d + BatchNorm + ReLU6, torchvision's `Conv2dNormActivation`.
fn conv_bn_relu6(p: nn::Path, c_in: i64, c_out: i64, ks: i64, stride: i64, groups: i64) -> impl ModuleT + use<> {
    let cfg = nn::ConvConfig { stride, padding: (ks - 1) / 2, groups, bias: false, ..Default::default() };
    nn::seq_t().add(nn::conv2d(&p / 0, c_in, c_out, ks, cfg)).add(nn::batch_norm2d(&p / 1, c_out, Default::default())).add_fn(|x| x.relu().clamp_max(6.0))
}

/// Inverted residual block: 1x1 expand, 3x3 depthwise, 1x1 linear projection (+ skip).
fn inverted_residual(p: nn::Path, c_in: i64, c_out: i64, stride: i64, expand: i64) -> impl ModuleT + use<> {
    let hidden = expand * c_in;
    let mut block = nn::seq_t();
    let mut id = 0;
    if expand != 1 {
        block = block.add(conv_bn_relu6(&p / id, c_in, hidden, 1, 1, 1));
        id += 1;
    }
    let block = block
        .add(conv_bn_relu6(&p / id, hidden, hidden, 3, stride, hidden))
        .add(nn::conv2d(&p / (id + 1), hidden, c_out, 1, nn::no_bias()))
        .add(nn::batch_norm2d(&p / (id + 2), c_out, Default::default()));
    nn::func_t(move |x, train| {
        let y = x.apply_t(&block, train);
        if stride == 1 && c_in == c_out { x + y } else { y }
    })
}

/// (expansion, output channels, repeats, first stride), torchvision's table.
const SETTINGS: [(i64, i64, i64, i64); 7] = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)];

/// `features` of torchvision's MobileNetV2 (no classifier): [B,3,H,W] -> [B,1280,H/32,W/32].
fn features(root: &nn::Path) -> impl ModuleT + use<> {
    let p = root / "features";
    let mut c_in = 32;
    let mut seq = nn::seq_t().add(conv_bn_relu6(&p / 0, 3, c_in, 3, 2, 1));
    let mut layer = 1;
    for (expand, c_out, repeats, stride) in SETTINGS {
        for i in 0..repeats {
            seq = seq.add(inverted_residual(&(&p / layer) / "conv", c_in, c_out, if i == 0 { stride } else { 1 }, expand));
            c_in = c_out;
            layer += 1;
        }
    }
    seq.add(conv_bn_relu6(&p / layer, c_in, 1280, 1, 1, 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_weights_name_the_fetch_script() {
        let dir = tempfile::tempdir().unwrap();
        let err = find_weights(&[dir.path().to_path_buf()]).unwrap_err().to_string();
        assert!(err.contains("scripts/fetch-mobilenet.sh") && err.contains(MOBILENET_WEIGHTS_FILE), "{err}");
        std::fs::write(dir.path().join(MOBILENET_WEIGHTS_FILE), b"x").unwrap();
        assert_eq!(find_weights(&[PathBuf::from("/nonexistent"), dir.path().to_path_buf()]).unwrap(), dir.path().join(MOBILENET_WEIGHTS_FILE));
    }
}
