//! `run:<results dir>/<run id>` or `run:<exported encoder>.safetensors`: a finished gps run as
//! the prior, the authors' `emb_model.pretrained: <tag>` (an SSL checkpoint loaded as the prior
//! network): GPS with a self-supervised prior, the experiment a refresh generalises. The run's
//! trained backbone (its final checkpoint, or the file `gps export` wrote) embeds the training
//! images in eval mode, fp32, seeing them as the authors' prior does (`noTransform`: the crop
//! size, the dataset's statistics). The run must have trained on a training set of the same size.
//!
//! Read here from the files themselves (the result row's `spec_json`, the checkpoint's tensors,
//! the export's JSON), below the modules that write them.

use super::{Prior, embed_in_batches, file_sha256, network_input};
use crate::config::{Backbone as BackboneKind, RunSpec};
use crate::data::{self, Dataset, Split};
use crate::model::{self, Backbone};
use crate::recipe::PriorInput;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use tch::{Device, Tensor, nn};

pub struct FinishedRunPrior {
    /// What the spec names (`run:<this>`), for messages.
    what: String,
    /// The weights file: the final checkpoint, or the exported encoder.
    weights: PathBuf,
    /// Tensor names in `weights` are the backbone's under this prefix.
    prefix: &'static str,
    spec: RunSpec,
    sha256: String,
    input: PriorInput,
}

/// The training loop names the backbone's variables so in a checkpoint.
const CHECKPOINT_PREFIX: &str = "model.backbone.";

impl FinishedRunPrior {
    /// Finds the run and checks it is finished and kept its trained model; missing or unfinished
    /// runs are errors naming the file and the fix.
    pub fn new(path: &Path, input: PriorInput) -> Result<FinishedRunPrior> {
        let what = format!("prior `run:{}`", path.display());
        if path.extension().is_some_and(|e| e == "safetensors") {
            return Self::exported(path, what, input);
        }
        let (Some(dir), Some(id)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
            bail!("{what}: expected `run:<results dir>/<run id>` (e.g. run:results/k-ablation/3f0c2a91be47) or `run:<exported encoder>.safetensors`");
        };
        let row = dir.join("runs").join(format!("{id}.parquet"));
        if !row.is_file() {
            let failed = dir.join("runs").join(format!("{id}.failed.json"));
            let ckpt = dir.join("ckpt").join(id);
            let why = if failed.is_file() {
                format!("the run failed (see {})", failed.display())
            } else if ckpt.is_dir() {
                format!("the run has not finished (its checkpoints are in {}); finish it first", ckpt.display())
            } else {
                format!("there is no such run under {} (`gps sweep status` lists a sweep's runs)", dir.display())
            };
            bail!("{what}: no result row {}: {why}", row.display());
        }
        let spec = spec_of_row(&row).with_context(|| what.clone())?;
        let ckpt_dir = dir.join("ckpt").join(id);
        let newest = newest_checkpoint(&ckpt_dir).with_context(|| {
            format!("{what}: the run finished but kept no checkpoint in {}: it ran with --no-keep; train it again without it", ckpt_dir.display())
        })?;
        let sha256 = file_sha256(&newest)?;
        Ok(FinishedRunPrior { what, weights: newest, prefix: CHECKPOINT_PREFIX, spec, sha256, input })
    }

    /// An encoder `gps export` wrote: the safetensors with its JSON beside it.
    fn exported(path: &Path, what: String, input: PriorInput) -> Result<FinishedRunPrior> {
        if !path.is_file() {
            bail!("{what}: {} does not exist (`gps export <results dir> --run <id>` writes it)", path.display());
        }
        let json = path.with_extension("json");
        let text =
            std::fs::read_to_string(&json).with_context(|| format!("{what}: cannot read {}, which `gps export` writes beside the encoder", json.display()))?;
        let meta: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("{what}: {} is not JSON", json.display()))?;
        let spec: RunSpec =
            serde_json::from_value(meta["spec"].clone()).with_context(|| format!("{what}: {} holds no run spec `spec` this gps reads", json.display()))?;
        let sha256 = file_sha256(path)?;
        Ok(FinishedRunPrior { what, weights: path.to_path_buf(), prefix: "", spec, sha256, input })
    }

    /// The run's backbone on `device`, its trained weights loaded strictly by name and shape.
    fn backbone(&self, device: Device) -> Result<(nn::VarStore, Box<dyn Backbone>)> {
        let tensors = Tensor::read_safetensors(&self.weights).with_context(|| format!("{}: cannot read {}", self.what, self.weights.display()))?;
        let named: Vec<(String, Tensor)> = tensors.into_iter().filter_map(|(n, t)| n.strip_prefix(self.prefix).map(|n| (n.to_string(), t))).collect();
        let get = |name: &str| named.iter().find(|(n, _)| n == name).map(|(_, t)| t);
        let first = if self.spec.backbone == BackboneKind::SmallCnn { "conv0.weight" } else { "conv1.weight" };
        let conv = get(first).with_context(|| format!("{}: {} holds no backbone weights (`{}{first}`)", self.what, self.weights.display(), self.prefix))?;
        let stem = if self.spec.backbone == BackboneKind::SmallCnn { crate::recipe::Stem::Cifar } else { model::stem_of(conv) };
        let vs = nn::VarStore::new(device);
        let net = model::build_backbone_with(self.spec.backbone, &vs.root(), conv.size()[1], stem);
        let _guard = tch::no_grad_guard();
        for (name, mut var) in vs.variables() {
            let src = get(&name).with_context(|| format!("{}: {} lacks `{}{name}`", self.what, self.weights.display(), self.prefix))?;
            if src.size() != var.size() {
                bail!(
                    "{}: `{name}` in {} has shape {:?}, the {:?} backbone {:?}",
                    self.what,
                    self.weights.display(),
                    src.size(),
                    self.spec.backbone,
                    var.size()
                );
            }
            var.copy_(src);
        }
        Ok((vs, net))
    }
}

impl Prior for FinishedRunPrior {
    fn key(&self) -> String {
        format!("run|sha256={}|{}|bicubic|fp32|eval", self.sha256, self.input.key())
    }

    fn embed(&self, train: &Dataset, device: Device) -> Result<Tensor> {
        // The run's own training set, as it was limited: the prior's images must be as many.
        let theirs = data::load(&self.spec.dataset, Split::Train, &self.spec.cache_dir)
            .with_context(|| format!("{}: loading the training set it trained on ({})", self.what, self.spec.dataset.path.display()))?;
        if theirs.len() != train.len() {
            bail!(
                "{}: that run trained on {} images of `{}`, this run has {} training images; a run prior embeds a training set of the size it learned from (set `dataset.train_limit` alike)",
                self.what,
                theirs.len(),
                self.spec.dataset.name,
                train.len()
            );
        }
        let (_vs, net) = self.backbone(device)?;
        embed_in_batches(&train.images, |batch| Ok(net.forward_t(&network_input(batch, device, &self.input, false), false)))
    }
}

/// The run spec a result row recorded (`spec_json`).
fn spec_of_row(row: &Path) -> Result<RunSpec> {
    use polars::prelude::{ParquetReader, SerReader};
    let file = std::fs::File::open(row).with_context(|| format!("cannot open {}", row.display()))?;
    let frame = ParquetReader::new(file)
        .with_columns(Some(vec!["spec_json".into()]))
        .finish()
        .map_err(anyhow::Error::from)
        .with_context(|| format!("cannot read {}", row.display()))?;
    let text = frame.column("spec_json")?.str()?.get(0).map(str::to_string).with_context(|| format!("{} holds no spec_json", row.display()))?;
    serde_json::from_str(&text).with_context(|| format!("the run spec in {} does not parse", row.display()))
}

/// The newest `ckpt-*.safetensors` of a run (after it finished, its only one: the trained model).
fn newest_checkpoint(dir: &Path) -> Option<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("ckpt-") && n.ends_with(".safetensors")))
        .collect();
    files.sort();
    files.pop()
}
