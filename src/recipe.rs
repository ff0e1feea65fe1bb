//! What a run spec means for its data, resolved once per run: the statistics images are
//! normalised with, the side of the training views, the ResNet's stem, what the prior sees and the
//! evaluation transform. Each default is the authors' choice for that kind of data (solo-learn's
//! `MEANS_N_STD`, `crop_size`, the CIFAR stem test, `noTransform`), so a spec that names a dataset
//! gets their recipe and every departure is a field set on purpose.

use crate::config::{BackboneStem, DatasetSpec, Normalization, PriorNormalization, RunSpec};
use crate::data::Dataset;
use anyhow::{Result, bail};

/// torchvision's ImageNet statistics (timm's `IMAGENET_DEFAULT_MEAN`/`_STD`).
pub const IMAGENET_MEAN: [f64; 3] = [0.485, 0.456, 0.406];
pub const IMAGENET_STD: [f64; 3] = [0.229, 0.224, 0.225];

/// Per-channel normalisation statistics, and what they are (for logs and exports).
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
    pub name: String,
}

/// A dataset name as the authors' code matches it: lower case, without `-` and `_`.
fn canonical(name: &str) -> String {
    name.to_ascii_lowercase().chars().filter(|c| *c != '-' && *c != '_').collect()
}

/// The constants the authors name (solo-learn's `MEANS_N_STD`), for three-channel data.
fn named(which: Normalization) -> Option<([f64; 3], [f64; 3])> {
    match which {
        Normalization::Cifar10 => Some(([0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616])),
        Normalization::Cifar100 => Some(([0.5071, 0.4865, 0.4409], [0.2673, 0.2564, 0.2762])),
        Normalization::Stl10 => Some(([0.4914, 0.4823, 0.4466], [0.247, 0.243, 0.261])),
        _ => None,
    }
}

/// ImageNet's statistics for `channels` channels: three as they are, one as their means (the
/// authors' `one_dim` for TissueMNIST: 0.449 / 0.226).
fn imagenet(channels: usize) -> Option<Stats> {
    match channels {
        3 => Some(Stats { mean: IMAGENET_MEAN.to_vec(), std: IMAGENET_STD.to_vec(), name: "imagenet".into() }),
        1 => Some(Stats {
            mean: vec![IMAGENET_MEAN.iter().sum::<f64>() / 3.0],
            std: vec![IMAGENET_STD.iter().sum::<f64>() / 3.0],
            name: "imagenet (mean of the three channels)".into(),
        }),
        _ => None,
    }
}

/// The dataset's normalisation (`dataset.normalization`): `auto` is the authors' rule, their
/// constants for CIFAR-10/100 and STL-10 and ImageNet's for everything else
/// (`MEANS_N_STD.get(dataset, IMAGENET_DEFAULT)`); data with neither 1 nor 3 channels falls
/// back to its training set's statistics.
pub fn normalization(dataset: &DatasetSpec, train: &Dataset) -> Result<Stats> {
    Ok(match fixed_normalization(dataset, train.channels())? {
        Some(stats) => stats,
        None => {
            let (mean, std) = train.channel_mean_std();
            Stats { mean, std, name: "training-set".into() }
        }
    })
}

/// The dataset's normalisation where it does not depend on the data (None: the training set's
/// own statistics, which need the images).
pub fn fixed_normalization(dataset: &DatasetSpec, channels: usize) -> Result<Option<Stats>> {
    let which = match dataset.normalization {
        Normalization::Auto => match canonical(&dataset.name).as_str() {
            "cifar10" if channels == 3 => Normalization::Cifar10,
            "cifar100" if channels == 3 => Normalization::Cifar100,
            "stl10" if channels == 3 => Normalization::Stl10,
            _ if matches!(channels, 1 | 3) => Normalization::Imagenet,
            _ => Normalization::TrainingSet,
        },
        other => other,
    };
    let serde_name = crate::config::serde_name(&which);
    Ok(Some(match which {
        Normalization::TrainingSet => return Ok(None),
        Normalization::Imagenet => match imagenet(channels) {
            Some(s) => s,
            None => bail!("field `dataset.normalization`: imagenet statistics are for 1- or 3-channel images, the dataset has {channels}; use training-set"),
        },
        named_one => {
            let Some((mean, std)) = named(named_one) else { unreachable!("auto resolved above") };
            if channels != 3 {
                bail!(
                    "field `dataset.normalization`: {serde_name} statistics are for RGB images, the dataset has {channels} channel(s); use auto or training-set"
                );
            }
            Stats { mean: mean.to_vec(), std: std.to_vec(), name: serde_name }
        }
    }))
}

/// Side of the training views (`augmentation.crop_size`), or the images' own side.
pub fn crop_size(spec: &RunSpec, train: &Dataset) -> Result<u32> {
    if let Some(c) = spec.augmentation.crop_size {
        return Ok(c);
    }
    let (h, w) = train.image_size();
    if h != w {
        bail!(
            "field `augmentation.crop_size`: the images are {h}x{w}, not square; set the side of the training views (the authors' crop_size: 224 for FGVC-Aircraft)"
        );
    }
    Ok(h as u32)
}

/// The ResNet stem a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stem {
    /// 3x3 conv, stride 1, padding 2, no max-pool (solo-learn's CIFAR backbone).
    Cifar,
    /// torchvision's 7x7 stride-2 conv and 3x3 stride-2 max-pool.
    Imagenet,
}

/// `backbone_stem`; `auto` as solo-learn decides (`cifar = dataset in [cifar10, cifar100]`, and
/// the development code adds PathMNIST and TissueMNIST), with unknown datasets by size: the CIFAR
/// stem for views of at most 64 pixels, the ImageNet stem above.
pub fn stem(spec: &RunSpec, crop: u32) -> Stem {
    match spec.backbone_stem {
        BackboneStem::Cifar => Stem::Cifar,
        BackboneStem::Imagenet => Stem::Imagenet,
        BackboneStem::Auto => match canonical(&spec.dataset.name).as_str() {
            "cifar10" | "cifar100" | "pathmnist" | "tissuemnist" => Stem::Cifar,
            "aircraft" | "aircrafts" | "fgvcaircraft" | "stl10" | "imagenet" | "imagenet100" => Stem::Imagenet,
            _ if crop <= 64 => Stem::Cifar,
            _ => Stem::Imagenet,
        },
    }
}

/// What the prior sees: images resized (PIL bicubic) to `size` and normalised with `stats`.
#[derive(Debug, Clone, PartialEq)]
pub struct PriorInput {
    pub size: u32,
    pub stats: Stats,
}

impl PriorInput {
    /// Part of a prior's cache key.
    pub fn key(&self) -> String {
        format!("size={}|mean={:?}|std={:?}", self.size, self.stats.mean, self.stats.std)
    }

    /// The prior's input (`prior_options.input_size`, `prior_options.normalization`): the
    /// authors' `noTransform`, i.e. the crop size and the dataset's statistics, by default.
    pub fn resolve(spec: &RunSpec, train: &Dataset, dataset_stats: &Stats) -> Result<PriorInput> {
        let size = match spec.prior_options.input_size {
            Some(s) => s,
            None => crop_size(spec, train)?,
        };
        let stats = match spec.prior_options.normalization {
            PriorNormalization::Dataset => dataset_stats.clone(),
            PriorNormalization::Imagenet => match imagenet(train.channels()) {
                Some(s) => s,
                None => bail!("field `prior_options.normalization`: imagenet statistics are for 1- or 3-channel images, the dataset has {}", train.channels()),
            },
        };
        Ok(PriorInput { size, stats })
    }
}

/// The evaluation transform (`eval.resize`, `eval.center_crop`): torchvision's `Resize(S)` of the
/// shorter side (bilinear) and `CenterCrop(C)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EvalTransform {
    pub resize: Option<u32>,
    pub center_crop: Option<u32>,
}

/// Everything above, for one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Recipe {
    pub stats: Stats,
    pub crop: u32,
    pub stem: Stem,
    pub prior: PriorInput,
    pub eval: EvalTransform,
}

impl Recipe {
    pub fn resolve(spec: &RunSpec, train: &Dataset) -> Result<Recipe> {
        let stats = normalization(&spec.dataset, train)?;
        let crop = crop_size(spec, train)?;
        let prior = PriorInput::resolve(spec, train, &stats)?;
        Ok(Recipe { stem: stem(spec, crop), crop, prior, eval: EvalTransform { resize: spec.eval.resize, center_crop: spec.eval.center_crop }, stats })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Kind, Tensor};

    fn data(c: i64, side: i64) -> Dataset {
        let images = Tensor::full([4, c, side, side], 128, (Kind::Uint8, tch::Device::Cpu));
        Dataset::new(images, Tensor::from_slice(&[0i64, 1, 0, 1]), vec!["a".into(), "b".into()]).unwrap()
    }

    fn spec(name: &str) -> RunSpec {
        let mut s = RunSpec::default();
        s.dataset.name = name.into();
        s
    }

    #[test]
    fn the_authors_statistics_per_dataset() {
        let cifar = normalization(&spec("cifar10").dataset, &data(3, 32)).unwrap();
        assert_eq!(cifar.mean, vec![0.4914, 0.4822, 0.4465]);
        let path = normalization(&spec("PathMNIST").dataset, &data(3, 28)).unwrap();
        assert_eq!((path.mean, path.name.as_str()), (IMAGENET_MEAN.to_vec(), "imagenet"));
        let tissue = normalization(&spec("tissuemnist").dataset, &data(1, 28)).unwrap();
        assert!((tissue.mean[0] - 0.449).abs() < 1e-12 && (tissue.std[0] - 0.226).abs() < 1e-12, "{tissue:?}");
        let mut own = spec("fashion-mnist");
        own.dataset.normalization = Normalization::TrainingSet;
        let s = normalization(&own.dataset, &data(1, 28)).unwrap();
        assert!((s.mean[0] - 128.0 / 255.0).abs() < 1e-6);
        let mut wrong = spec("x");
        wrong.dataset.normalization = Normalization::Cifar10;
        assert!(normalization(&wrong.dataset, &data(1, 28)).unwrap_err().to_string().contains("RGB"));
    }

    #[test]
    fn stems_and_crops_as_solo_learn_chooses() {
        assert_eq!(stem(&spec("cifar10"), 32), Stem::Cifar);
        assert_eq!(stem(&spec("tissuemnist"), 28), Stem::Cifar);
        assert_eq!(stem(&spec("aircraft"), 224), Stem::Imagenet);
        assert_eq!(stem(&spec("my-data"), 96), Stem::Imagenet);
        assert_eq!(stem(&spec("fashion-mnist"), 28), Stem::Cifar);
        let mut forced = spec("cifar10");
        forced.backbone_stem = BackboneStem::Imagenet;
        assert_eq!(stem(&forced, 32), Stem::Imagenet);
        assert_eq!(crop_size(&spec("x"), &data(3, 32)).unwrap(), 32);
        let r = Recipe::resolve(&spec("cifar10"), &data(3, 32)).unwrap();
        assert_eq!((r.prior.size, r.prior.stats.name.as_str()), (32, "cifar10"), "the prior sees 32 px, CIFAR statistics: not upsampled");
    }
}
