//! VICReg: invariance (MSE) + variance (hinge on the std) + covariance (off-diagonal) terms.

use super::{MethodContext, SslMethod, Views, fp32};
use crate::model::{Mlp, MlpLayer};
use tch::{Kind, Tensor};

pub struct VicReg {
    projector: Mlp,
}

impl VicReg {
    pub fn new(ctx: &MethodContext) -> VicReg {
        let projector = Mlp::new(&(&ctx.heads / "projector"), ctx.feat_dim, &[MlpLayer::hidden(2048), MlpLayer::hidden(2048), MlpLayer::last(2048, false)]);
        VicReg { projector }
    }
}

impl SslMethod for VicReg {
    fn loss(&mut self, v: &Views) -> Tensor {
        vicreg_loss(&v.f1.apply_t(&self.projector, true), &v.f2.apply_t(&self.projector, true))
    }

    fn project(&self, f: &Tensor) -> Tensor {
        f.apply_t(&self.projector, false)
    }
}

/// 25·MSE(z1, z2) + 25·Σ_views mean relu(1 − √(var + 1e-4)) + 1·Σ_views Σ offdiag(cov)²/D,
/// covariance with N − 1 (solo-learn's vicreg_loss_func).
pub fn vicreg_loss(z1: &Tensor, z2: &Tensor) -> Tensor {
    fp32(|| vicreg_loss_fp32(z1, z2))
}

fn vicreg_loss_fp32(z1: &Tensor, z2: &Tensor) -> Tensor {
    let (z1, z2) = (z1.to_kind(Kind::Float), z2.to_kind(Kind::Float));
    let invariance = z1.mse_loss(&z2, tch::Reduction::Mean);
    let variance = |z: &Tensor| (-(z.var_dim(0i64, true, false) + 1e-4).sqrt() + 1.0).relu().mean(Kind::Float);
    let covariance = |z: &Tensor| {
        let (n, d) = (z.size()[0], z.size()[1]);
        let zc = z - z.mean_dim(0i64, true, Kind::Float);
        let cov = zc.transpose(0, 1).mm(&zc) / (n - 1) as f64;
        let off_diagonal = -Tensor::eye(d, (Kind::Float, z.device())) + 1.0;
        (cov.square() * off_diagonal).sum(Kind::Float) / d as f64
    };
    25.0 * invariance + 25.0 * (variance(&z1) + variance(&z2)) + covariance(&z1) + covariance(&z2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_case() {
        // z1 = [[0,0],[2,2]], z2 = [[0,0],[2,0]]:
        // MSE = (0+0+0+4)/4 = 1 → 25.
        // var(z1) = [2,2] (N−1) → std 1.414 → hinge 0; var(z2) = [2,0] → hinge [0, 1−0.01] → mean 0.495 → 25·0.495.
        // cov(z1) = [[2,2],[2,2]] → offdiag² sum 8 / 2 = 4; cov(z2) = [[2,0],[0,0]] → 0.
        let z1 = Tensor::from_slice(&[0f32, 0., 2., 2.]).view([2, 2]);
        let z2 = Tensor::from_slice(&[0f32, 0., 2., 0.]).view([2, 2]);
        let l = vicreg_loss(&z1, &z2).double_value(&[]);
        let expected = 25.0 + 25.0 * 0.495 + 4.0;
        assert!((l - expected).abs() < 1e-4, "{l} vs {expected}");
    }
}
