//! LARS (solo-learn's, spec §2), SGD and AdamW over parameter groups. Written here rather than
//! taken from tch because tch has no LARS and no per-parameter exclusion of biases and norms.

use crate::config::OptimizerKind;
use tch::{Kind, Tensor};

/// Parameters sharing a learning-rate multiplier and weight decay.
pub struct ParamGroup {
    pub params: Vec<Tensor>,
    /// This group's lr = schedule lr × lr_scale (the probe's classifier_lr / lr).
    pub lr_scale: f64,
    pub weight_decay: f64,
}

pub struct Optimizer {
    kind: OptimizerKind,
    groups: Vec<ParamGroup>,
    momentum: f64,
    eta: f64,
    /// Per parameter: momentum buffer (LARS/SGD) or first and second moments (AdamW).
    state: Vec<Vec<Vec<Tensor>>>,
    steps: i64,
}

const EPS: f64 = 1e-8;

impl Optimizer {
    pub fn new(kind: OptimizerKind, groups: Vec<ParamGroup>, momentum: f64, eta: f64) -> Optimizer {
        let per_param = if kind == OptimizerKind::Adamw { 2 } else { 1 };
        let state = groups
            .iter()
            .map(|g| g.params.iter().map(|p| (0..per_param).map(|_| p.zeros_like().detach()).collect()).collect())
            .collect();
        Optimizer { kind, groups, momentum, eta, state, steps: 0 }
    }

    pub fn zero_grad(&mut self) {
        for g in &mut self.groups {
            for p in &mut g.params {
                p.zero_grad();
            }
        }
    }

    /// One update with the schedule's learning rate `lr`.
    pub fn step(&mut self, lr: f64) {
        let _guard = tch::no_grad_guard();
        self.steps += 1;
        for (gi, g) in self.groups.iter().enumerate() {
            let glr = lr * g.lr_scale;
            for (pi, p) in g.params.iter().enumerate() {
                let grad = p.grad();
                if !grad.defined() {
                    continue;
                }
                let state = &self.state[gi][pi];
                match self.kind {
                    OptimizerKind::Lars => lars_update(p, &grad, &state[0], glr, g.weight_decay, self.momentum, self.eta, true),
                    OptimizerKind::Sgd => lars_update(p, &grad, &state[0], glr, g.weight_decay, self.momentum, self.eta, false),
                    OptimizerKind::Adamw => adamw_update(p, &grad, &state[0], &state[1], glr, g.weight_decay, self.steps),
                }
            }
        }
    }

    /// Optimizer state for checkpoints, in a stable order.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = vec![("steps".to_string(), Tensor::from(self.steps))];
        for (gi, g) in self.state.iter().enumerate() {
            for (pi, p) in g.iter().enumerate() {
                for (si, t) in p.iter().enumerate() {
                    out.push((format!("{gi}.{pi}.{si}"), t.shallow_clone()));
                }
            }
        }
        out
    }

    pub fn load_state(&mut self, state: &[(String, Tensor)]) -> anyhow::Result<()> {
        let find = |name: &str| {
            state.iter().find(|(n, _)| n == name).map(|(_, t)| t).ok_or_else(|| anyhow::anyhow!("checkpoint lacks optimizer state `{name}`"))
        };
        let _guard = tch::no_grad_guard();
        self.steps = find("steps")?.int64_value(&[]);
        for (gi, g) in self.state.iter_mut().enumerate() {
            for (pi, p) in g.iter_mut().enumerate() {
                for (si, t) in p.iter_mut().enumerate() {
                    let src = find(&format!("{gi}.{pi}.{si}"))?;
                    if src.size() != t.size() {
                        anyhow::bail!("optimizer state {gi}.{pi}.{si} has shape {:?}, expected {:?}", src.size(), t.size());
                    }
                    t.copy_(src);
                }
            }
        }
        Ok(())
    }
}

/// solo-learn's LARS with exclude_bias_n_norm and clip_lr: for tensors with ndim ≠ 1,
/// r = min(η‖p‖/(‖g‖ + wd‖p‖ + ε) / lr, 1) when both norms are non-zero, d = (g + wd·p)·r;
/// 1-D tensors (biases, norms) get d = g. Then buf = μ·buf + d; p −= lr·buf.
/// With `lars = false` it is SGD with momentum and the same weight-decay exclusions.
#[allow(clippy::too_many_arguments)]
fn lars_update(p: &Tensor, g: &Tensor, buf: &Tensor, lr: f64, wd: f64, momentum: f64, eta: f64, lars: bool) {
    let g = g.to_kind(Kind::Float);
    let d = if p.dim() == 1 {
        g
    } else if !lars {
        g + p * wd
    } else {
        let pn = p.norm();
        let gn = g.norm();
        let ratio = (&pn * eta / (&gn + &pn * wd + EPS) / lr).clamp_max(1.0);
        let ok = pn.gt(0.0).logical_and(&gn.gt(0.0));
        let scaled = (&g + p * wd) * &ratio;
        scaled.where_self(&ok, &g)
    };
    let mut buf = buf.shallow_clone();
    buf *= momentum;
    buf += &d;
    let mut p = p.shallow_clone();
    p -= &buf * lr;
}

/// AdamW (β = 0.9, 0.999), decoupled weight decay, none on 1-D tensors.
fn adamw_update(p: &Tensor, g: &Tensor, m: &Tensor, v: &Tensor, lr: f64, wd: f64, t: i64) {
    let (b1, b2) = (0.9f64, 0.999f64);
    let g = g.to_kind(Kind::Float);
    let mut p = p.shallow_clone();
    if p.dim() != 1 && wd > 0.0 {
        p *= 1.0 - lr * wd;
    }
    let (mut m, mut v) = (m.shallow_clone(), v.shallow_clone());
    m *= b1;
    m += &g * (1.0 - b1);
    v *= b2;
    v += g.square() * (1.0 - b2);
    let mhat = &m / (1.0 - b1.powi(t as i32));
    let vhat = &v / (1.0 - b2.powi(t as i32));
    p -= mhat / (vhat.sqrt() + EPS) * lr;
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn lars_matches_the_formula_by_hand() {
        // p = [3, 4] (‖p‖ = 5) as a 1x2 matrix, g = [0, 1] (‖g‖ = 1), wd = 0.1, η = 0.02, lr = 0.5:
        // r = min(0.02·5/(1 + 0.5 + 1e-8)/0.5, 1) = 0.13333; d = ([0,1] + 0.1·[3,4])·r = [0.04, 0.18667];
        // buf = d (zero start); p = p − 0.5·d = [2.98, 3.90667].
        let p = Tensor::from_slice(&[3f32, 4.]).view([1, 2]).set_requires_grad(true);
        (&p * Tensor::from_slice(&[0f32, 1.]).view([1, 2])).sum(Kind::Float).backward();
        let mut opt = Optimizer::new(OptimizerKind::Lars, vec![ParamGroup { params: vec![p.shallow_clone()], lr_scale: 1.0, weight_decay: 0.1 }], 0.9, 0.02);
        opt.step(0.5);
        let got = Vec::<f32>::try_from(p.detach().flatten(0, 1)).unwrap();
        let r = 0.02 * 5.0 / 1.5 / 0.5;
        let expected = [3.0 - 0.5 * 0.3 * r, 4.0 - 0.5 * (1.0 + 0.4) * r];
        assert!((got[0] as f64 - expected[0]).abs() < 1e-5 && (got[1] as f64 - expected[1]).abs() < 1e-5, "{got:?} vs {expected:?}");
    }

    #[test]
    fn biases_get_plain_momentum_sgd_without_decay() {
        let b = Tensor::from_slice(&[1f32, 2.]).set_requires_grad(true);
        b.sum(Kind::Float).backward();
        let mut opt = Optimizer::new(OptimizerKind::Lars, vec![ParamGroup { params: vec![b.shallow_clone()], lr_scale: 1.0, weight_decay: 0.5 }], 0.9, 0.02);
        opt.step(0.1);
        let got = Vec::<f32>::try_from(b.detach()).unwrap();
        assert!((got[0] - 0.9).abs() < 1e-6 && (got[1] - 1.9).abs() < 1e-6, "{got:?}");
    }

    #[test]
    fn adamw_descends_a_quadratic() {
        let x = Tensor::from_slice(&[5f32]).view([1, 1]).set_requires_grad(true);
        let mut opt = Optimizer::new(OptimizerKind::Adamw, vec![ParamGroup { params: vec![x.shallow_clone()], lr_scale: 1.0, weight_decay: 0.0 }], 0.9, 0.02);
        for _ in 0..200 {
            opt.zero_grad();
            x.square().sum(Kind::Float).backward();
            opt.step(0.1);
        }
        assert!(x.double_value(&[0, 0]).abs() < 0.5);
        let _ = Device::Cpu;
    }
}
