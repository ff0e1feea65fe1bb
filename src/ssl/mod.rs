//! Self-supervised methods, one file each behind `SslMethod`. Each takes the two views' backbone
//! features (view 1 = DA(anchor), view 2 = DA(guided positive)) and returns its loss, exactly as
//! solo-learn defines it (spec §2). Adding a method is adding a file and a match arm in `build`.
mod barlow_twins;
mod byol;
mod nnclr;
mod simclr;
mod vicreg;

pub use barlow_twins::{BarlowTwins, barlow_twins_loss};
pub use byol::{Byol, byol_loss, byol_multi_loss};
pub use nnclr::{Nnclr, nearest_neighbours, nnclr_loss};
pub use simclr::{SimClr, simclr_loss, simclr_multi_loss};
pub use vicreg::{VicReg, vicreg_loss};

use crate::config::{Backbone as BackboneKind, Method};
use crate::model::Backbone;
use tch::{Device, Tensor, nn};

/// What one training step hands a method.
pub struct Views<'a> {
    /// Augmented images of the anchors and of their positives [B, C, H, W].
    pub x1: &'a Tensor,
    pub x2: &'a Tensor,
    /// Online backbone features of x1 and x2 [B, F].
    pub f1: &'a Tensor,
    pub f2: &'a Tensor,
    /// Views 3 and on, (images, features), with several guided positives per anchor
    /// (`positives` > 1: DA(anchor), DA(positive 1), ..., DA(positive m)); empty otherwise.
    pub extra: &'a [(Tensor, Tensor)],
}

pub trait SslMethod {
    /// The method's loss for one batch (a scalar with gradients into the online network).
    fn loss(&mut self, v: &Views) -> Tensor;
    /// The projector's output for backbone features `f`, in eval mode: what a refresh of the
    /// neighbour table with `prior_refresh.features: projector` embeds (the authors' `nn_key: z`).
    fn project(&self, f: &Tensor) -> Tensor;
    /// Called after each optimizer step; `progress` = steps done / total steps (BYOL's momentum).
    fn after_step(&mut self, _progress: f64) {}
    /// State outside the online VarStore that a checkpoint must hold (target network, queue).
    fn state(&self) -> Vec<(String, Tensor)> {
        Vec::new()
    }
    /// Restores `state()`; names not found are an error (a checkpoint of another method).
    fn load_state(&mut self, _state: &[(String, Tensor)]) -> anyhow::Result<()> {
        Ok(())
    }
}

/// What methods with their own networks need to build them.
pub struct MethodContext<'a> {
    /// Where the method's trainable heads live (in the online VarStore).
    pub heads: nn::Path<'a>,
    pub feat_dim: i64,
    pub temperature: Option<f64>,
    /// BYOL's target backbone is another instance of the online one.
    pub backbone: BackboneKind,
    pub in_channels: i64,
    pub stem: crate::recipe::Stem,
    pub device: Device,
    /// The online VarStore (BYOL copies it into the target; EMA pairs variables by name).
    pub online: &'a nn::VarStore,
    pub channels_last: bool,
}

/// A context for methods' unit tests: small-CNN heads in `online` on the CPU.
#[cfg(test)]
pub(crate) fn test_context(online: &nn::VarStore, feat_dim: i64, channels_last: bool) -> MethodContext<'_> {
    MethodContext {
        heads: online.root() / "method",
        feat_dim,
        temperature: None,
        backbone: BackboneKind::SmallCnn,
        in_channels: 3,
        stem: crate::recipe::Stem::Cifar,
        device: Device::Cpu,
        online,
        channels_last,
    }
}

/// Runs a loss's arithmetic in float32 with autocast off: the authors' losses are small
/// differences of large sums (Barlow Twins' cross-correlation, VICReg's covariance, SimCLR's
/// logits), which bf16 would round away. The heads before it still run under autocast.
pub(crate) fn fp32<T>(f: impl FnOnce() -> T) -> T {
    crate::exec::autocast(None, f)
}

/// Default base learning rate and weight decay per method (batch 256, LARS), from the authors'
/// CIFAR-10 configs (spec §2).
pub fn default_lr_wd(method: Method) -> (f64, f64) {
    match method {
        Method::Simclr => (0.4, 1e-4),
        Method::Byol => (1.0, 1e-5),
        Method::Vicreg => (0.3, 1e-4),
        Method::BarlowTwins => (0.3, 1e-4),
        Method::Nnclr => (0.4, 1e-5),
    }
}

pub fn build(method: Method, ctx: MethodContext) -> Box<dyn SslMethod> {
    match method {
        Method::Simclr => Box::new(SimClr::new(&ctx)),
        Method::Byol => Box::new(Byol::new(&ctx)),
        Method::Vicreg => Box::new(VicReg::new(&ctx)),
        Method::BarlowTwins => Box::new(BarlowTwins::new(&ctx)),
        Method::Nnclr => Box::new(Nnclr::new(&ctx)),
    }
}

/// Builds the target backbone of a momentum method (helper shared by methods with a target).
pub(crate) fn target_backbone(ctx: &MethodContext, p: &nn::Path) -> Box<dyn Backbone> {
    crate::model::build_backbone_with(ctx.backbone, p, ctx.in_channels, ctx.stem)
}

/// Finds a named tensor in checkpointed method state.
pub(crate) fn find_state<'a>(state: &'a [(String, Tensor)], name: &str) -> anyhow::Result<&'a Tensor> {
    state.iter().find(|(n, _)| n == name).map(|(_, t)| t).ok_or_else(|| anyhow::anyhow!("checkpoint lacks method state `{name}` (written by another method?)"))
}
