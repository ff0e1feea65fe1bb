//! `gps export`: a finished run's trained backbone as a PyTorch state_dict in safetensors, with
//! torchvision's parameter names and shapes for the ResNets (with the CIFAR stem conv1 is
//! 3x3 / stride 1 / padding 2 and maxpool Identity, as in solo-learn; fc is always Identity),
//! batch-norm buffers
//! included, so `load_state_dict(strict=True)` takes it; and a small JSON beside it with the run
//! spec and the normalisation its inputs need.
pub mod cli;

use crate::config::Backbone as BackboneKind;
use crate::recipe::Stem;
use crate::trained::TrainedRun;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// The backbone's state_dict: every variable (contiguous: channels-last weights are re-laid),
/// plus one `num_batches_tracked` per batch norm, which tch does not keep. PyTorch counts a
/// batch norm's train-mode forward passes there; each training step passes each of its two
/// views through the backbone on its own, so the count is 2 × optimizer steps.
pub fn state_dict(backbone: &[(String, Tensor)], steps: u64) -> Vec<(String, Tensor)> {
    let mut out = Vec::new();
    for (name, t) in backbone {
        out.push((name.clone(), t.to_device(tch::Device::Cpu).contiguous()));
        if let Some(bn) = name.strip_suffix(".running_mean") {
            out.push((format!("{bn}.num_batches_tracked"), Tensor::from(2 * steps as i64).to_kind(Kind::Int64)));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// What the JSON says the weights load into.
fn architecture(kind: BackboneKind, in_channels: i64, stem: Stem) -> serde_json::Value {
    let stem = match stem {
        Stem::Cifar => serde_json::json!({
            "conv1": format!("torch.nn.Conv2d({in_channels}, 64, kernel_size=3, stride=1, padding=2, bias=False)"),
            "maxpool": "torch.nn.Identity()",
            "fc": "torch.nn.Identity()",
        }),
        Stem::Imagenet if in_channels != 3 => serde_json::json!({
            "conv1": format!("torch.nn.Conv2d({in_channels}, 64, kernel_size=7, stride=2, padding=3, bias=False)"),
            "fc": "torch.nn.Identity()",
        }),
        Stem::Imagenet => serde_json::json!({"fc": "torch.nn.Identity()"}),
    };
    match kind {
        BackboneKind::Resnet18 => serde_json::json!({"torchvision": "resnet18", "replace": stem}),
        BackboneKind::Resnet50 => serde_json::json!({"torchvision": "resnet50", "replace": stem}),
        BackboneKind::SmallCnn => {
            serde_json::json!({"gps": "small-cnn (4 x [conv3x3, BatchNorm2d, ReLU], max-pool after the first three, global average pool); not a torchvision model"})
        }
    }
}

/// Writes `out` (safetensors) and `out` with extension `.json`; returns the JSON's path.
pub fn export(run: &TrainedRun, out: &Path) -> Result<PathBuf> {
    let json_path = out.with_extension("json");
    if json_path == out {
        anyhow::bail!("--out {}: give the weights file a .safetensors name (the JSON goes beside it)", out.display());
    }
    let tensors = state_dict(&run.backbone, run.state.global_step);
    let in_channels = run.in_channels()?;
    let (mean, std) = run.normalization()?;
    let metric = |name: &str| run.row.column(name).ok().and_then(|c| c.cast(&polars::prelude::DataType::Float64).ok()?.f64().ok()?.get(0));
    let metrics: serde_json::Map<String, serde_json::Value> =
        ["probe_top1_best", "probe_top1_last", "knn_top1", "linear_top1"].iter().filter_map(|m| metric(m).map(|v| (m.to_string(), v.into()))).collect();
    // Building it also checks that every weight fits the architecture.
    let feature_dim = run.backbone_on(tch::Device::Cpu)?.1.out_dim();
    let meta = serde_json::json!({
        "run_id": run.run_id,
        "backbone": run.spec.backbone,
        "architecture": architecture(run.spec.backbone, in_channels, run.stem()?),
        "in_channels": in_channels,
        "feature_dim": feature_dim,
        "normalization": {
            "mean": mean,
            "std": std,
            "input": "float images in [0, 1] (uint8 / 255), then (x - mean) / std per channel, as torchvision.transforms.Normalize",
        },
        "epoch": run.state.epoch,
        "steps": run.state.global_step,
        "num_batches_tracked": 2 * run.state.global_step,
        "metrics": metrics,
        "checkpoint": run.checkpoint,
        "spec": run.spec,
        "gps_version": env!("CARGO_PKG_VERSION"),
        "exported_at": crate::results::row::now_rfc3339(),
    });
    crate::atomic_file::write_via_temp(out, |tmp| Tensor::write_safetensors(&tensors, tmp).map_err(Into::into))
        .with_context(|| format!("writing {}", out.display()))?;
    crate::atomic_file::write_json(&json_path, &meta).with_context(|| format!("writing {}", json_path.display()))?;
    Ok(json_path)
}
