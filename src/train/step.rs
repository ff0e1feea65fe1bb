//! The arithmetic of one training step, as solo-learn's `training_step` computes it
//! (solo/methods/base.py and each method's file): each view goes through the backbone on its own,
//! so batch-norm statistics are per view; the method's loss on the two views' features; the
//! online linear probe on each view's detached features with that view's own label, its two
//! cross-entropies averaged. `tests/parity.rs` checks a whole step against PyTorch.

use crate::model::Backbone;
use crate::optim::ParamGroup;
use crate::ssl::{SslMethod, Views};
use tch::nn::{self, ModuleT};
use tch::{Kind, Tensor};

/// The losses of one step, both with gradients (the probe's reach only the probe).
pub struct StepLosses {
    pub ssl: Tensor,
    pub probe: Tensor,
}

/// `x`: the augmented views [B, C, H, W]: two, or 1 + m with several positives per anchor; `y`:
/// each view's labels [B]. `autocast`: bf16 autocast on this device's type (None: fp32).
pub fn losses(
    backbone: &dyn Backbone,
    method: &mut dyn SslMethod,
    probe: &nn::Linear,
    x: &[&Tensor],
    y: &[&Tensor],
    autocast: Option<tch::Device>,
) -> StepLosses {
    crate::exec::autocast(autocast, || {
        let f1 = backbone.forward_t(x[0], true);
        let f2 = backbone.forward_t(x[1], true);
        let extra: Vec<(Tensor, Tensor)> = x[2..].iter().map(|x| (x.shallow_clone(), backbone.forward_t(x, true))).collect();
        let ssl = method.loss(&Views { x1: x[0], x2: x[1], f1: &f1, f2: &f2, extra: &extra });
        let ce = |f: &Tensor, y: &Tensor| probe.forward_t(&f.detach(), true).to_kind(Kind::Float).cross_entropy_for_logits(y);
        // The probe learns every view with its own label, its cross-entropies averaged over the views.
        let mut probe_loss = ce(&f1, y[0]) + ce(&f2, y[1]);
        for ((_, f), y) in extra.iter().zip(&y[2..]) {
            probe_loss += ce(f, y);
        }
        StepLosses { ssl, probe: probe_loss / x.len() as f64 }
    })
}

/// The optimizer's parameter groups, as solo-learn's `learnable_params`: every trainable variable
/// but the probe's (the method's weight decay, the schedule's lr), and the probe's under
/// `probe.` (weight decay 0, lr × `probe_lr_scale`). Sorted by name, so a checkpoint's flat
/// optimizer buffers line up with the same model built again.
pub fn param_groups(vs: &nn::VarStore, weight_decay: f64, probe_lr_scale: f64) -> Vec<ParamGroup> {
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    let (mut model, mut probe) = (Vec::new(), Vec::new());
    for (name, t) in vars {
        if name.starts_with("probe.") { probe.push(t) } else { model.push(t) }
    }
    vec![ParamGroup { params: model, lr_scale: 1.0, weight_decay }, ParamGroup { params: probe, lr_scale: probe_lr_scale, weight_decay: 0.0 }]
}
