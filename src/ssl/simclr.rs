//! SimCLR (NT-Xent). With GPS both views carry the anchor's index, so the positive of row i is
//! row i + B (and back); every other row of the 2B is a negative.

use super::{MethodContext, SslMethod, Views, fp32};
use crate::model::{Mlp, MlpLayer, normalize};
use tch::{Kind, Tensor};

pub struct SimClr {
    projector: Mlp,
    temperature: f64,
}

impl SimClr {
    pub fn new(ctx: &MethodContext) -> SimClr {
        // Lin(f,2048)-BN-ReLU-Lin(2048,2048)-BN-ReLU-Lin(2048,256)-BN
        let projector = Mlp::new(&(&ctx.heads / "projector"), ctx.feat_dim, &[MlpLayer::hidden(2048), MlpLayer::hidden(2048), MlpLayer::last(256, true)]);
        SimClr { projector, temperature: ctx.temperature.unwrap_or(0.2) }
    }
}

impl SslMethod for SimClr {
    fn loss(&mut self, v: &Views) -> Tensor {
        let z1 = v.f1.apply_t(&self.projector, true);
        let z2 = v.f2.apply_t(&self.projector, true);
        simclr_loss(&z1, &z2, self.temperature)
    }
}

/// NT-Xent over 2B rows: −mean log(exp(s_pos/T) / Σ_{j≠i} exp(s_ij/T)), z ℓ2-normalised.
pub fn simclr_loss(z1: &Tensor, z2: &Tensor, temperature: f64) -> Tensor {
    fp32(|| simclr_loss_fp32(z1, z2, temperature))
}

fn simclr_loss_fp32(z1: &Tensor, z2: &Tensor, temperature: f64) -> Tensor {
    let b = z1.size()[0];
    let z = normalize(&Tensor::cat(&[z1, z2], 0).to_kind(Kind::Float));
    let sim = z.mm(&z.transpose(0, 1)) / temperature;
    let eye = Tensor::eye(2 * b, (Kind::Bool, z.device()));
    let sim = sim.masked_fill(&eye, f64::NEG_INFINITY);
    let targets = Tensor::cat(&[Tensor::arange_start(b, 2 * b, (Kind::Int64, z.device())), Tensor::arange(b, (Kind::Int64, z.device()))], 0);
    sim.cross_entropy_for_logits(&targets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_case() {
        // z1 = z2 = [e1, e2], T = 1. Row 0 sees e2 (0), e1 (1, positive), e2 (0):
        // loss = −log(e / (e + 2)) = log(1 + 2/e), the same for every row.
        let z = Tensor::from_slice(&[1f32, 0., 0., 1.]).view([2, 2]);
        let l = simclr_loss(&z, &z, 1.0).double_value(&[]);
        assert!((l - (1.0 + 2.0 / std::f64::consts::E).ln()).abs() < 1e-6, "{l}");
    }
}
