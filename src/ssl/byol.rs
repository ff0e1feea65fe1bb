//! BYOL: online projector + predictor, a momentum (EMA) copy of backbone and projector as target,
//! τ from 0.99 to 1 on a cosine schedule per step.

use super::{MethodContext, SslMethod, Views, find_state, fp32, target_backbone};
use crate::model::flat_params::{Layout, flatten_as, rebind_into_flat};
use crate::model::{Backbone, Mlp, MlpLayer, normalize};
use tch::nn;
use tch::{Kind, Tensor};

const TAU_BASE: f64 = 0.99;

pub struct Byol {
    projector: Mlp,
    predictor: Mlp,
    _target_vs: nn::VarStore,
    target_backbone: Box<dyn Backbone>,
    target_projector: Mlp,
    /// The online trainable parameters that have a target twin (paired by name), each with the
    /// memory layout of its twin, in the order of `ema_target`.
    ema_online: Vec<(Tensor, Layout)>,
    /// Those twins, rebound as views into one buffer, so the EMA is one cat and one lerp per step
    /// instead of a lerp per parameter (~70 kernels for a ResNet-18 and its projector).
    ema_target: Tensor,
    /// Every target variable by name (checkpoint state, BN statistics included).
    target_vars: Vec<(String, Tensor)>,
    tau: f64,
}

fn projector_layers() -> [MlpLayer; 2] {
    [MlpLayer::hidden(4096), MlpLayer::last(256, false)]
}

impl Byol {
    pub fn new(ctx: &MethodContext) -> Byol {
        let projector = Mlp::new(&(&ctx.heads / "projector"), ctx.feat_dim, &projector_layers());
        let predictor = Mlp::new(&(&ctx.heads / "predictor"), 256, &[MlpLayer::hidden(4096), MlpLayer::last(256, false)]);
        let target_vs = nn::VarStore::new(ctx.device);
        let target_backbone = target_backbone(ctx, &(target_vs.root() / "backbone"));
        let target_projector = Mlp::new(&(target_vs.root() / "method" / "projector"), ctx.feat_dim, &projector_layers());
        let online = ctx.online.variables();
        let mut pairs = Vec::new();
        let mut target_vars: Vec<(String, Tensor)> = target_vs.variables().into_iter().collect();
        target_vars.sort_by(|a, b| a.0.cmp(&b.0));
        let _guard = tch::no_grad_guard();
        for (name, t) in &target_vars {
            let mut t = t.shallow_clone();
            // The target starts as an exact copy of the online network and is never trained.
            if let Some(o) = online.get(name) {
                t.copy_(o);
                if o.requires_grad() {
                    pairs.push((o.shallow_clone(), t.shallow_clone()));
                }
            }
            let _ = t.set_requires_grad(false);
        }
        if ctx.channels_last {
            crate::model::vars_to_channels_last(&target_vs);
        }
        let twins: Vec<Tensor> = pairs.iter().map(|(_, t)| t.shallow_clone()).collect();
        let (ema_target, layouts) = rebind_into_flat(&twins);
        let ema_online = pairs.into_iter().zip(layouts).map(|((o, _), l)| (o, l)).collect();
        Byol { projector, predictor, _target_vs: target_vs, target_backbone, target_projector, ema_online, ema_target, target_vars, tau: TAU_BASE }
    }
}

impl SslMethod for Byol {
    fn loss(&mut self, v: &Views) -> Tensor {
        let predict = |f: &Tensor| f.apply_t(&self.projector, true).apply_t(&self.predictor, true);
        let target = |x: &Tensor| tch::no_grad(|| self.target_backbone.forward_t(x, true).apply_t(&self.target_projector, true));
        let (p1, p2) = (predict(v.f1), predict(v.f2));
        let (zm1, zm2) = (target(v.x1), target(v.x2));
        if v.extra.is_empty() {
            return byol_loss(&p1, &p2, &zm1, &zm2);
        }
        let mut ps = vec![p1, p2];
        let mut zms = vec![zm1, zm2];
        for (x, f) in v.extra {
            ps.push(predict(f));
            zms.push(target(x));
        }
        byol_multi_loss(&ps, &zms)
    }

    fn project(&self, f: &Tensor) -> Tensor {
        f.apply_t(&self.projector, false)
    }

    fn after_step(&mut self, progress: f64) {
        // EMA m ← τ m + (1 − τ) θ, then τ = 1 − (1 − τ_base)(cos(π k/K) + 1)/2 for the next step.
        let _guard = tch::no_grad_guard();
        let online = Tensor::cat(&self.ema_online.iter().map(|(o, l)| flatten_as(o, *l)).collect::<Vec<_>>(), 0);
        let _ = self.ema_target.lerp_(&online, 1.0 - self.tau);
        self.tau = 1.0 - (1.0 - TAU_BASE) * ((std::f64::consts::PI * progress.clamp(0.0, 1.0)).cos() + 1.0) / 2.0;
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        let mut s: Vec<(String, Tensor)> = self.target_vars.iter().map(|(n, t)| (format!("target.{n}"), t.shallow_clone())).collect();
        s.push(("tau".into(), Tensor::from(self.tau)));
        s
    }

    fn load_state(&mut self, state: &[(String, Tensor)]) -> anyhow::Result<()> {
        let _guard = tch::no_grad_guard();
        for (n, t) in &self.target_vars {
            let mut t = t.shallow_clone();
            t.copy_(find_state(state, &format!("target.{n}"))?);
        }
        self.tau = find_state(state, "tau")?.double_value(&[]);
        Ok(())
    }
}

/// Σ over the two directions of (2 − 2·cos(p, sg(z_target))), batch mean (summed, not averaged).
pub fn byol_loss(p1: &Tensor, p2: &Tensor, zm1: &Tensor, zm2: &Tensor) -> Tensor {
    fp32(|| byol_loss_fp32(p1, p2, zm1, zm2))
}

fn byol_loss_fp32(p1: &Tensor, p2: &Tensor, zm1: &Tensor, zm2: &Tensor) -> Tensor {
    byol_term(p1, zm2) + byol_term(p2, zm1)
}

/// `2 − 2 cos(p, z)`, the mean over the batch (solo-learn's `byol_loss_func`, simplified).
fn byol_term(p: &Tensor, z: &Tensor) -> Tensor {
    let cos = (normalize(&p.to_kind(Kind::Float)) * normalize(&z.detach().to_kind(Kind::Float))).sum_dim_intlist(1, false, Kind::Float);
    (cos * -2.0 + 2.0).mean(Kind::Float)
}

/// BYOL over V views (`solo/methods/byol.py:196-198`): the sum, not the mean, over every view
/// v1 and every other view v2 of the loss between v2's prediction and v1's momentum projection.
/// With V = 2 it is `byol_loss`.
pub fn byol_multi_loss(ps: &[Tensor], zms: &[Tensor]) -> Tensor {
    fp32(|| {
        let mut total = Tensor::zeros([], (Kind::Float, ps[0].device()));
        for (v1, zm) in zms.iter().enumerate() {
            for (_, p) in ps.iter().enumerate().filter(|&(v2, _)| v2 != v1) {
                total += byol_term(p, zm);
            }
        }
        total
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_case() {
        // p1 ⟂ zm2 → 2; p2 ∥ zm1 → 0; total 2.
        let e1 = Tensor::from_slice(&[1f32, 0.]).view([1, 2]);
        let e2 = Tensor::from_slice(&[0f32, 3.]).view([1, 2]);
        let l = byol_loss(&e1, &e1, &e1, &e2).double_value(&[]);
        assert!((l - 2.0).abs() < 1e-6, "{l}");
    }

    /// One EMA step over the flat target buffer equals m ← τ m + (1 − τ) θ done per parameter,
    /// with a channels-last target and a contiguous online network.
    #[test]
    fn ema_step_matches_the_per_parameter_update() {
        use crate::config::Backbone as BackboneKind;
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let backbone = crate::model::build_backbone(BackboneKind::SmallCnn, &(vs.root() / "backbone"), 3);
        let ctx = crate::ssl::test_context(&vs, backbone.out_dim(), true);
        let mut byol = Byol::new(&ctx);
        // Move the online network away from its copy so the EMA has something to do.
        let online = vs.variables();
        tch::no_grad(|| {
            for (_, v) in online.iter() {
                let mut v = v.shallow_clone();
                let _ = v.g_add_(&(v.randn_like() * 0.1));
            }
        });
        let before: Vec<(String, Tensor)> = byol.state().into_iter().map(|(n, t)| (n, t.copy())).collect();
        let tau = byol.tau;
        byol.after_step(0.5);
        let after = byol.state();
        let mut checked = 0;
        for ((name, old), (_, new)) in before.iter().zip(&after) {
            let Some(o) = name.strip_prefix("target.").and_then(|n| online.get(n)) else { continue };
            let expected = if o.requires_grad() { old * tau + o * (1.0 - tau) } else { old.shallow_clone() };
            assert!(new.allclose(&expected, 1e-6, 1e-6, false), "{name}");
            checked += o.requires_grad() as usize;
        }
        assert!(checked > 10, "only {checked} parameters compared");
        assert!(crate::model::flat_params::layout_of(&byol.target_vars.iter().find(|(_, t)| t.dim() == 4).unwrap().1) == Layout::ChannelsLast);
        assert!(byol.tau > tau, "τ moves towards 1");
    }
}
