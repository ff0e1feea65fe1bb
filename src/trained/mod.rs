//! A finished run's trained encoder, as `gps export` and `gps eval linear` take it: the spec and
//! metrics from its result row, the backbone's weights from its final checkpoint (kept after the
//! run unless it ran with `--no-keep`), and the normalisation its inputs had. Above training and
//! results, as what reads a run after both are done; `linear_eval` is the command that evaluates it.

pub mod linear_eval;

use crate::augment::{Augmenter, Pipeline};
use crate::config::{Backbone as BackboneKind, RunSpec};
use crate::data::{self, Split};
use crate::eval::FeatureExtractor;
use crate::model::{self, Backbone};
use crate::results::row;
use crate::train::checkpoint::{self, LoopState};
use anyhow::{Context, Result, bail};
use polars::prelude::DataFrame;
use std::path::{Path, PathBuf};
use tch::{Device, Tensor, nn};

/// What the training loop names the backbone's variables under (`backbone.conv1.weight`).
const PREFIX: &str = "model.backbone.";

pub struct TrainedRun {
    pub run_id: String,
    pub spec: RunSpec,
    /// The run's result row (metrics, and `linear_*` once evaluated).
    pub row: DataFrame,
    pub row_path: PathBuf,
    pub checkpoint: PathBuf,
    /// Where the loop stood at the checkpoint (its last epoch).
    pub state: LoopState,
    /// The backbone's variables, named as torchvision names them for the ResNets, on the CPU.
    pub backbone: Vec<(String, Tensor)>,
}

impl TrainedRun {
    /// Run `run` (an id or a unique prefix of one) of the results folder `results_dir`.
    pub fn load(results_dir: &Path, run: &str) -> Result<TrainedRun> {
        let (run_id, row_path) = row::find_row(results_dir, run)?;
        let row = row::read_row(&row_path)?;
        let spec_json = row.column("spec_json").ok().and_then(|c| c.str().ok()?.get(0).map(str::to_string));
        let spec_json = spec_json.with_context(|| format!("result row {} has no spec_json", row_path.display()))?;
        let spec: RunSpec = serde_json::from_str(&spec_json).with_context(|| format!("the spec in result row {} does not parse", row_path.display()))?;
        // The results folder may have moved since the run: its checkpoints are where its rows are.
        let ckpt_dir = results_dir.join("ckpt").join(&run_id);
        let Some((state, tensors, checkpoint)) = checkpoint::load_latest(&ckpt_dir, &run_id)? else {
            bail!(
                "run {run_id} has no checkpoint in {}: it ran with --no-keep, or before gps kept final checkpoints; train it again to export or evaluate it",
                ckpt_dir.display()
            );
        };
        if state.epoch != spec.epochs {
            bail!(
                "the newest checkpoint of run {run_id} ({}) is from epoch {} of {}, not the trained model (the run finished before gps kept final checkpoints); train it again",
                checkpoint.display(),
                state.epoch,
                spec.epochs
            );
        }
        let backbone: Vec<(String, Tensor)> = tensors.into_iter().filter_map(|(n, t)| n.strip_prefix(PREFIX).map(|n| (n.to_string(), t))).collect();
        if backbone.is_empty() {
            bail!("checkpoint {} holds no backbone weights (`{PREFIX}*`)", checkpoint.display());
        }
        Ok(TrainedRun { run_id, spec, row, row_path, checkpoint, state, backbone })
    }

    /// Image channels the backbone takes (from its first convolution).
    pub fn in_channels(&self) -> Result<i64> {
        let first = match self.spec.backbone {
            BackboneKind::Resnet18 | BackboneKind::Resnet50 => "conv1.weight",
            BackboneKind::SmallCnn => "conv0.weight",
        };
        Ok(checkpoint::take(&self.backbone, first)?.size()[1])
    }

    /// A fresh backbone on `device` holding the trained weights (eval mode is the caller's
    /// `forward_t(x, false)`).
    pub fn backbone_on(&self, device: Device) -> Result<(nn::VarStore, Box<dyn Backbone>)> {
        let vs = nn::VarStore::new(device);
        let net = model::build_backbone_with(self.spec.backbone, &vs.root(), self.in_channels()?, self.stem()?);
        let _guard = tch::no_grad_guard();
        for (name, mut var) in vs.variables() {
            let src = checkpoint::take(&self.backbone, &name).with_context(|| format!("checkpoint {}", self.checkpoint.display()))?;
            if src.size() != var.size() {
                bail!("checkpoint {}: `{name}` has shape {:?}, the {:?} backbone {:?}", self.checkpoint.display(), src.size(), self.spec.backbone, var.size());
            }
            var.copy_(src);
        }
        Ok((vs, net))
    }

    /// The per-channel mean and std the run normalised its inputs with (for a dataset without
    /// fixed statistics, those of its training split, which is then loaded).
    pub fn normalization(&self) -> Result<(Vec<f64>, Vec<f64>)> {
        let channels = self.in_channels()? as usize;
        let stats = match crate::recipe::fixed_normalization(&self.spec.dataset, channels)? {
            Some(stats) => stats,
            None => crate::recipe::normalization(&self.spec.dataset, &self.split(Split::Train)?)?,
        };
        Ok((stats.mean, stats.std))
    }

    /// The backbone's stem, read from its first convolution (3x3: CIFAR, 7x7: ImageNet).
    pub fn stem(&self) -> Result<crate::recipe::Stem> {
        Ok(match self.spec.backbone {
            BackboneKind::SmallCnn => crate::recipe::Stem::Cifar,
            _ => model::stem_of(checkpoint::take(&self.backbone, "conv1.weight")?),
        })
    }

    /// The evaluation transform the run used.
    pub fn eval_transform(&self) -> crate::recipe::EvalTransform {
        crate::recipe::EvalTransform { resize: self.spec.eval.resize, center_crop: self.spec.eval.center_crop }
    }

    /// One split of the run's dataset, limited as in training.
    pub fn split(&self, split: Split) -> Result<data::Dataset> {
        let d = &self.spec.dataset;
        data::load(d, split, &self.spec.cache_dir)
            .with_context(|| format!("loading the {} split of dataset `{}` ({})", split.as_str(), d.name, d.path.display()))
    }

    /// The trained backbone on `device`, normalising its inputs as in training.
    pub fn encoder(&self, device: Device) -> Result<Encoder> {
        let (vs, net) = self.backbone_on(device)?;
        let (mean, std) = self.normalization()?;
        Ok(Encoder { _vs: vs, net, augmenter: Augmenter::new(Pipeline::NONE, &mean, &std, device), eval: self.eval_transform(), device })
    }
}

/// A trained backbone ready to compute features.
pub struct Encoder {
    _vs: nn::VarStore,
    net: Box<dyn Backbone>,
    augmenter: Augmenter,
    eval: crate::recipe::EvalTransform,
    device: Device,
}

impl Encoder {
    /// Features of uint8 images [N, C, H, W] in eval mode, fp32, normalised as in training: what
    /// gps's evaluations see.
    pub fn features(&self, images: &Tensor) -> Tensor {
        let extractor = FeatureExtractor { backbone: self.net.as_ref(), augmenter: &self.augmenter, eval: self.eval, channels_last: false, autocast: None };
        extractor.features(&images.to_device(self.device))
    }

    pub fn out_dim(&self) -> i64 {
        self.net.out_dim()
    }
}
