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
        if v.extra.is_empty() {
            return simclr_loss(&z1, &z2, self.temperature);
        }
        let mut zs = vec![z1, z2];
        zs.extend(v.extra.iter().map(|(_, f)| f.apply_t(&self.projector, true)));
        simclr_multi_loss(&zs, self.temperature)
    }

    fn project(&self, f: &Tensor) -> Tensor {
        f.apply_t(&self.projector, false)
    }
}

/// The authors' InfoNCE over V views of B anchors (`solo/losses/simclr.py:41-58` with every
/// view carrying its anchor's index, `solo/methods/simclr.py:150-161`): each of the V·B rows
/// scores −log(Σ_positives e^{s/T} / (Σ_positives + Σ_negatives)), its positives being the other
/// views of its anchor and its negatives every view of another anchor (itself neither); the
/// mean over rows. With V = 2 it is `simclr_loss`.
pub fn simclr_multi_loss(zs: &[Tensor], temperature: f64) -> Tensor {
    fp32(|| {
        let (v, b) = (zs.len() as i64, zs[0].size()[0]);
        let z = normalize(&Tensor::cat(&zs.iter().map(|z| z.to_kind(Kind::Float)).collect::<Vec<_>>(), 0));
        let sim = z.mm(&z.transpose(0, 1)) / temperature;
        let anchor = Tensor::arange(b, (Kind::Int64, z.device())).repeat([v]);
        let same = anchor.unsqueeze(1).eq_tensor(&anchor.unsqueeze(0));
        let itself = Tensor::eye(v * b, (Kind::Bool, z.device()));
        // log Σ_pos e^{s/T} and log Σ_{j ≠ i} e^{s/T}, each a logsumexp (no overflow at small T).
        let positives = sim.masked_fill(&same.logical_and(&itself.logical_not()).logical_not(), f64::NEG_INFINITY).logsumexp([1i64].as_slice(), false);
        let all = sim.masked_fill(&itself, f64::NEG_INFINITY).logsumexp([1i64].as_slice(), false);
        (all - positives).mean(Kind::Float)
    })
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
    fn two_views_of_the_multi_positive_loss_are_nt_xent() {
        tch::manual_seed(3);
        let (z1, z2) = (Tensor::randn([6, 4], (Kind::Float, tch::Device::Cpu)), Tensor::randn([6, 4], (Kind::Float, tch::Device::Cpu)));
        let a = simclr_loss(&z1, &z2, 0.2).double_value(&[]);
        let b = simclr_multi_loss(&[z1, z2], 0.2).double_value(&[]);
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }

    #[test]
    fn hand_computed_case() {
        // z1 = z2 = [e1, e2], T = 1. Row 0 sees e2 (0), e1 (1, positive), e2 (0):
        // loss = −log(e / (e + 2)) = log(1 + 2/e), the same for every row.
        let z = Tensor::from_slice(&[1f32, 0., 0., 1.]).view([2, 2]);
        let l = simclr_loss(&z, &z, 1.0).double_value(&[]);
        assert!((l - (1.0 + 2.0 / std::f64::consts::E).ln()).abs() < 1e-6, "{l}");
    }
}
