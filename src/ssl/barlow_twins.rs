//! Barlow Twins: the cross-correlation of the batch-normalised projections is pushed to identity.

use super::{MethodContext, SslMethod, Views, fp32};
use crate::model::{Mlp, MlpLayer};
use tch::{Kind, Tensor};

const LAMBDA: f64 = 0.0051;
/// The authors' CIFAR-10 config uses scale_loss 0.1.
const SCALE: f64 = 0.1;

pub struct BarlowTwins {
    projector: Mlp,
}

impl BarlowTwins {
    pub fn new(ctx: &MethodContext) -> BarlowTwins {
        let projector = Mlp::new(&(&ctx.heads / "projector"), ctx.feat_dim, &[MlpLayer::hidden(2048), MlpLayer::hidden(2048), MlpLayer::last(2048, false)]);
        BarlowTwins { projector }
    }
}

impl SslMethod for BarlowTwins {
    fn loss(&mut self, v: &Views) -> Tensor {
        barlow_twins_loss(&v.f1.apply_t(&self.projector, true), &v.f2.apply_t(&self.projector, true), LAMBDA, SCALE)
    }

    fn project(&self, f: &Tensor) -> Tensor {
        f.apply_t(&self.projector, false)
    }
}

/// BN(affine=False) on each view (batch statistics, biased variance, eps 1e-5), c = z1ᵀz2/N,
/// loss = scale·[Σ(1 − c_ii)² + λ Σ_{i≠j} c_ij²], summed as solo-learn's `barlow_loss_func`
/// sums it: (c − I)², the off-diagonal scaled by λ, then one sum.
pub fn barlow_twins_loss(z1: &Tensor, z2: &Tensor, lambda: f64, scale: f64) -> Tensor {
    fp32(|| barlow_twins_loss_fp32(z1, z2, lambda, scale))
}

fn barlow_twins_loss_fp32(z1: &Tensor, z2: &Tensor, lambda: f64, scale: f64) -> Tensor {
    let bn = |z: &Tensor| {
        let z = z.to_kind(Kind::Float);
        let mean = z.mean_dim(0i64, true, Kind::Float);
        let var = z.var_dim(0i64, false, true);
        (z - mean) / (var + 1e-5).sqrt()
    };
    let (a, b) = (bn(z1), bn(z2));
    let n = a.size()[0] as f64;
    let c = a.transpose(0, 1).mm(&b) / n;
    let eye = Tensor::eye(c.size()[0], (Kind::Float, c.device()));
    let weights = &eye + (-&eye + 1.0) * lambda;
    ((c - &eye).square() * weights).sum(Kind::Float) * scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_case() {
        // z1 = [[1,1],[-1,-1]] and z2 = [[1,-1],[-1,1]] normalise to themselves (mean 0, var 1;
        // eps makes it 1/√1.00001). c = z1ᵀz2/2 = [[1,-1],[1,-1]]·s where s = 1/1.00001.
        // on = (1−s)² + (1+s)²; off = 2 s²; λ = 1, scale = 1.
        let z1 = Tensor::from_slice(&[1f32, 1., -1., -1.]).view([2, 2]);
        let z2 = Tensor::from_slice(&[1f32, -1., -1., 1.]).view([2, 2]);
        let s = 1.0 / 1.00001f64;
        let expected = (1.0 - s).powi(2) + (1.0 + s).powi(2) + 2.0 * s * s;
        let l = barlow_twins_loss(&z1, &z2, 1.0, 1.0).double_value(&[]);
        assert!((l - expected).abs() < 1e-4, "{l} vs {expected}");
    }

    /// Plain gradient descent on one fixed pair of views (an image batch and a slightly noisy copy)
    /// must lower the loss: gradients reach the projector and the backbone with the right sign.
    #[test]
    fn gradient_descent_on_fixed_views_lowers_the_loss() {
        use crate::config::{Backbone as BackboneKind, Method};
        use crate::ssl::Views;
        use tch::nn::OptimizerConfig;
        let mut rng = crate::knn::SplitMix64::new(3);
        let mut uniform = |n: usize| Tensor::from_slice(&(0..n).map(|_| rng.uniform() as f32).collect::<Vec<_>>());
        let x1 = uniform(64 * 3 * 16 * 16).view([64, 3, 16, 16]);
        let x2 = &x1 + uniform(64 * 3 * 16 * 16).view([64, 3, 16, 16]) * 0.1;
        let vs = tch::nn::VarStore::new(tch::Device::Cpu);
        let backbone = crate::model::build_backbone(BackboneKind::SmallCnn, &(vs.root() / "backbone"), 3);
        let ctx = crate::ssl::test_context(&vs, backbone.out_dim(), false);
        let mut method = crate::ssl::build(Method::BarlowTwins, ctx);
        // 0.01: the loss sums 2048² terms, and at 0.1 plain SGD overshoots and the loss climbs.
        let mut opt = tch::nn::Sgd::default().build(&vs, 0.01).unwrap();
        let mut losses = Vec::new();
        for _ in 0..10 {
            let (f1, f2) = (backbone.forward_t(&x1, true), backbone.forward_t(&x2, true));
            let loss = method.loss(&Views { x1: &x1, x2: &x2, f1: &f1, f2: &f2, extra: &[] });
            losses.push(loss.double_value(&[]));
            opt.backward_step(&loss);
        }
        assert!(losses.iter().all(|l| l.is_finite()), "{losses:?}");
        assert!(losses[9] < 0.9 * losses[0], "Barlow Twins loss did not fall under gradient descent: {losses:?}");
    }
}
