//! The `prior` field: a name, or `torchscript:<file>` / `embeddings:<file>`.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum PriorSpec {
    /// Baseline SSL: the positive is the anchor itself (two augmentations of one image).
    None,
    /// Flattened pixels (optionally resized to `prior_options.input_size`).
    Pixels,
    /// An autoencoder trained on the training set; the embedding is its latent.
    Autoencoder,
    /// torchvision's ImageNet MobileNetV2, 1280-d pooled feature.
    ImagenetMobilenetv2,
    /// torchvision's ResNet-18 (IMAGENET1K_V1), 512-d pooled layer-4 feature.
    ImagenetResnet18,
    /// The authors' prior: torchvision's ResNet-50 (IMAGENET1K_V2), 2048-d pooled layer-4 feature.
    ImagenetResnet50,
    /// torchvision's ResNet-101 (IMAGENET1K_V2), 2048-d pooled layer-4 feature.
    ImagenetResnet101,
    /// A finished gps run's trained backbone: `run:<results dir>/<run id>` or its exported
    /// `run:<file>.safetensors`.
    Run(PathBuf),
    /// Any encoder exported with `torch.jit.trace`: images in, [B, D] out.
    Torchscript(PathBuf),
    /// Precomputed embeddings, one row per training image (.npy or .safetensors).
    Embeddings(PathBuf),
    /// Oracle: neighbours drawn from the anchor's own class (an upper bound).
    Labels,
}

pub const PRIOR_CHOICES: &str = "none, pixels, autoencoder, imagenet-resnet18, imagenet-resnet50, imagenet-resnet101, imagenet-mobilenetv2, \
     torchscript:<file.pt>, embeddings:<file.npy|.safetensors>, run:<results dir>/<run id>, labels";

impl FromStr for PriorSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Some(p) = s.strip_prefix("torchscript:") {
            return non_empty(p, s).map(|p| PriorSpec::Torchscript(PathBuf::from(p)));
        }
        if let Some(p) = s.strip_prefix("embeddings:") {
            return non_empty(p, s).map(|p| PriorSpec::Embeddings(PathBuf::from(p)));
        }
        if let Some(p) = s.strip_prefix("run:") {
            return non_empty(p, s).map(|p| PriorSpec::Run(PathBuf::from(p)));
        }
        match s {
            "none" => Ok(PriorSpec::None),
            "pixels" => Ok(PriorSpec::Pixels),
            "autoencoder" => Ok(PriorSpec::Autoencoder),
            "imagenet-mobilenetv2" => Ok(PriorSpec::ImagenetMobilenetv2),
            "imagenet-resnet18" => Ok(PriorSpec::ImagenetResnet18),
            "imagenet-resnet50" => Ok(PriorSpec::ImagenetResnet50),
            "imagenet-resnet101" => Ok(PriorSpec::ImagenetResnet101),
            "labels" => Ok(PriorSpec::Labels),
            other => Err(format!("unknown prior `{other}`, expected one of: {PRIOR_CHOICES}")),
        }
    }
}

fn non_empty<'a>(p: &'a str, whole: &str) -> Result<&'a str, String> {
    if p.is_empty() { Err(format!("prior `{whole}` needs a file after the colon")) } else { Ok(p) }
}

impl TryFrom<String> for PriorSpec {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<PriorSpec> for String {
    fn from(p: PriorSpec) -> String {
        p.to_string()
    }
}

impl fmt::Display for PriorSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PriorSpec::None => f.write_str("none"),
            PriorSpec::Pixels => f.write_str("pixels"),
            PriorSpec::Autoencoder => f.write_str("autoencoder"),
            PriorSpec::ImagenetMobilenetv2 => f.write_str("imagenet-mobilenetv2"),
            PriorSpec::ImagenetResnet18 => f.write_str("imagenet-resnet18"),
            PriorSpec::ImagenetResnet50 => f.write_str("imagenet-resnet50"),
            PriorSpec::ImagenetResnet101 => f.write_str("imagenet-resnet101"),
            PriorSpec::Run(p) => write!(f, "run:{}", p.display()),
            PriorSpec::Torchscript(p) => write!(f, "torchscript:{}", p.display()),
            PriorSpec::Embeddings(p) => write!(f, "embeddings:{}", p.display()),
            PriorSpec::Labels => f.write_str("labels"),
        }
    }
}

impl PriorSpec {
    /// Whether positives come from a neighbour table (everything but the `none` baseline).
    pub fn is_guided(&self) -> bool {
        !matches!(self, PriorSpec::None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn round_trips_and_rejects() {
        for s in [
            "none",
            "pixels",
            "autoencoder",
            "imagenet-mobilenetv2",
            "imagenet-resnet18",
            "imagenet-resnet50",
            "imagenet-resnet101",
            "labels",
            "torchscript:a.pt",
            "embeddings:e.npy",
            "run:results/x/3f0c2a91be47",
        ] {
            assert_eq!(s.parse::<PriorSpec>().unwrap().to_string(), s);
        }
        let e = "clip".parse::<PriorSpec>().unwrap_err();
        assert!(e.contains("imagenet-mobilenetv2"));
        assert!("torchscript:".parse::<PriorSpec>().is_err());
    }
}
