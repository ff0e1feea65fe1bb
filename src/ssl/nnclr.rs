//! NNCLR: each projection is replaced by its nearest neighbour in a support queue of past
//! projections, and contrasted with the other view's prediction.

use super::{MethodContext, SslMethod, Views, find_state, fp32};
use crate::model::{Mlp, MlpLayer, normalize};
use tch::{Kind, Tensor};

/// solo-learn's NNCLR queue (`queue_size: 65536` in the fork's configs), whatever the dataset's size.
const QUEUE_SIZE: i64 = 65536;

pub struct Nnclr {
    projector: Mlp,
    predictor: Mlp,
    temperature: f64,
    /// [Q, 256] normalised projections of view 1, oldest overwritten first.
    queue: Tensor,
    ptr: i64,
}

impl Nnclr {
    pub fn new(ctx: &MethodContext) -> Nnclr {
        let projector = Mlp::new(&(&ctx.heads / "projector"), ctx.feat_dim, &[MlpLayer::hidden(2048), MlpLayer::hidden(2048), MlpLayer::last(256, true)]);
        let predictor = Mlp::new(&(&ctx.heads / "predictor"), 256, &[MlpLayer::hidden(4096), MlpLayer::last(256, false)]);
        let queue = normalize(&Tensor::randn([QUEUE_SIZE, 256], (Kind::Float, ctx.device)));
        Nnclr { projector, predictor, temperature: ctx.temperature.unwrap_or(0.2), queue, ptr: 0 }
    }

    fn nearest(&self, z: &Tensor) -> Tensor {
        nearest_neighbours(&self.queue, z)
    }

    fn enqueue(&mut self, z: &Tensor) {
        let _guard = tch::no_grad_guard();
        let q = self.queue.size()[0];
        let z = normalize(&z.detach().to_kind(Kind::Float));
        let b = z.size()[0].min(q);
        let rows = (Tensor::arange(b, (Kind::Int64, z.device())) + self.ptr).remainder(q);
        let _ = self.queue.index_copy_(0, &rows, &z.narrow(0, 0, b));
        self.ptr = (self.ptr + b) % q;
    }
}

impl SslMethod for Nnclr {
    fn loss(&mut self, v: &Views) -> Tensor {
        let z1 = v.f1.apply_t(&self.projector, true);
        let z2 = v.f2.apply_t(&self.projector, true);
        let p1 = z1.apply_t(&self.predictor, true);
        let p2 = z2.apply_t(&self.predictor, true);
        let (nn1, nn2) = tch::no_grad(|| (self.nearest(&z1), self.nearest(&z2)));
        let loss = nnclr_loss(&nn1, &nn2, &p1, &p2, self.temperature);
        self.enqueue(&z1);
        loss
    }

    /// ℓ2-normalised, as the authors' NNCLR returns its `z`.
    fn project(&self, f: &Tensor) -> Tensor {
        normalize(&f.apply_t(&self.projector, false).to_kind(Kind::Float))
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        vec![("queue".into(), self.queue.shallow_clone()), ("queue_ptr".into(), Tensor::from(self.ptr))]
    }

    fn load_state(&mut self, state: &[(String, Tensor)]) -> anyhow::Result<()> {
        let q = find_state(state, "queue")?;
        if q.size() != self.queue.size() {
            anyhow::bail!("checkpointed NNCLR queue is {:?}, expected {:?}", q.size(), self.queue.size());
        }
        let _guard = tch::no_grad_guard();
        self.queue.copy_(q);
        self.ptr = find_state(state, "queue_ptr")?.int64_value(&[]);
        Ok(())
    }
}

/// The queue row of largest dot product with each normalised row of `z` (solo-learn's
/// `find_nn`), in float32.
pub fn nearest_neighbours(queue: &Tensor, z: &Tensor) -> Tensor {
    fp32(|| {
        let idx = normalize(&z.to_kind(Kind::Float)).mm(&queue.transpose(0, 1)).argmax(1, false);
        queue.index_select(0, &idx)
    })
}

/// ½ CE(NN(z1)·p2ᵀ/T, I) + ½ CE(NN(z2)·p1ᵀ/T, I), rows ℓ2-normalised.
pub fn nnclr_loss(nn1: &Tensor, nn2: &Tensor, p1: &Tensor, p2: &Tensor, temperature: f64) -> Tensor {
    fp32(|| nnclr_loss_fp32(nn1, nn2, p1, p2, temperature))
}

fn nnclr_loss_fp32(nn1: &Tensor, nn2: &Tensor, p1: &Tensor, p2: &Tensor, temperature: f64) -> Tensor {
    let b = nn1.size()[0];
    let targets = Tensor::arange(b, (Kind::Int64, nn1.device()));
    let ce = |a: &Tensor, p: &Tensor| {
        let logits = normalize(&a.to_kind(Kind::Float)).mm(&normalize(&p.to_kind(Kind::Float)).transpose(0, 1)) / temperature;
        logits.cross_entropy_for_logits(&targets)
    };
    0.5 * ce(nn1, p2) + 0.5 * ce(nn2, p1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_case() {
        // nn = p = [e1, e2], T = 1: each row's logits are (1, 0) with target 0 → log(1 + 1/e).
        let e = Tensor::from_slice(&[1f32, 0., 0., 1.]).view([2, 2]);
        let l = nnclr_loss(&e, &e, &e, &e, 1.0).double_value(&[]);
        assert!((l - (1.0 + 1.0 / std::f64::consts::E).ln()).abs() < 1e-6, "{l}");
    }

    #[test]
    fn nearest_comes_from_the_queue() {
        let vs = tch::nn::VarStore::new(tch::Device::Cpu);
        let ctx = crate::ssl::test_context(&vs, 8, false);
        let mut m = Nnclr::new(&ctx);
        let z = Tensor::randn([4, 256], (Kind::Float, tch::Device::Cpu));
        m.enqueue(&z);
        // After enqueueing z, the nearest queue entry of each z row is its own normalised copy.
        let nn = m.nearest(&z);
        assert!(nn.allclose(&normalize(&z), 1e-5, 1e-5, false));
    }
}
