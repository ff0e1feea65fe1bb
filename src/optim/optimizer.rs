//! LARS (solo-learn's, spec §2), SGD and AdamW over parameter groups. Written here rather than
//! taken from tch because tch has no LARS and no per-parameter exclusion of biases and norms.

use super::flat_lars::FlatGroup;
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
    momentum: f64,
    eta: f64,
    groups: Vec<GroupState>,
    steps: i64,
    /// The LARS/SGD kernel; None: the one that suits the parameters' device.
    kernel: Option<super::flat_lars::Kernel>,
}

/// A group with its optimizer state: LARS and SGD keep the group in one flat buffer;
/// AdamW keeps first and second moments per parameter.
enum GroupState {
    Flat { group: FlatGroup, lr_scale: f64, weight_decay: f64 },
    Adam { params: Vec<Tensor>, moments: Vec<[Tensor; 2]>, lr_scale: f64, weight_decay: f64 },
}

impl GroupState {
    fn params(&self) -> &[Tensor] {
        match self {
            GroupState::Flat { group, .. } => group.params(),
            GroupState::Adam { params, .. } => params,
        }
    }
}

const EPS: f64 = 1e-8;

impl Optimizer {
    pub fn new(kind: OptimizerKind, groups: Vec<ParamGroup>, momentum: f64, eta: f64) -> Optimizer {
        let groups = groups
            .into_iter()
            .map(|g| match kind {
                OptimizerKind::Adamw => {
                    let moments = g.params.iter().map(|p| [p.zeros_like().detach(), p.zeros_like().detach()]).collect();
                    GroupState::Adam { params: g.params, moments, lr_scale: g.lr_scale, weight_decay: g.weight_decay }
                }
                _ => GroupState::Flat { group: FlatGroup::new(g.params), lr_scale: g.lr_scale, weight_decay: g.weight_decay },
            })
            .collect();
        Optimizer { kind, momentum, eta, groups, steps: 0, kernel: None }
    }

    /// Runs the LARS/SGD update with `kernel` whatever the device (`exec::ExecPaths`: the GPU's
    /// tensor kernel also runs on a CPU, so tests execute it).
    pub fn with_kernel(mut self, kernel: super::flat_lars::Kernel) -> Optimizer {
        self.kernel = Some(kernel);
        self
    }

    pub fn zero_grad(&mut self) {
        for g in &mut self.groups {
            match g {
                GroupState::Flat { group, .. } => group.zero_grad(),
                GroupState::Adam { params, .. } => params.iter_mut().for_each(|p| p.zero_grad()),
            }
        }
    }

    /// One update from the parameters' accumulated `.grad`, with the schedule's learning rate.
    pub fn step(&mut self, lr: f64) {
        let grads = self.groups.iter().map(|g| g.params().iter().map(|p| p.grad()).collect()).collect();
        self.apply(grads, lr);
    }

    /// PyTorch's `zero_grad(set_to_none=True); loss.backward(); step()`: the gradients of `loss`
    /// with respect to every parameter come back from autograd as fresh tensors and go straight
    /// into the update. Zeroing `.grad` and accumulating into it would cost two more passes over
    /// every parameter's gradient per step (memory traffic that shows on a CPU).
    pub fn backward_step(&mut self, loss: &Tensor, lr: f64) {
        let params: Vec<&Tensor> = self.groups.iter().flat_map(|g| g.params()).collect();
        let mut grads = Tensor::run_backward(&[loss], &params, false, false).into_iter();
        let grads = self.groups.iter().map(|g| grads.by_ref().take(g.params().len()).collect()).collect();
        self.apply(grads, lr);
    }

    fn apply(&mut self, grads: Vec<Vec<Tensor>>, lr: f64) {
        let _guard = tch::no_grad_guard();
        self.steps += 1;
        let lars = self.kind == OptimizerKind::Lars;
        for (g, grads) in self.groups.iter_mut().zip(grads) {
            match g {
                GroupState::Flat { group, lr_scale, weight_decay } => match self.kernel {
                    Some(kernel) => group.step_with(kernel, &grads, lr * *lr_scale, *weight_decay, self.momentum, self.eta, lars),
                    None => group.step(&grads, lr * *lr_scale, *weight_decay, self.momentum, self.eta, lars),
                },
                GroupState::Adam { params, moments, lr_scale, weight_decay } => {
                    for ((p, [m, v]), grad) in params.iter().zip(moments.iter()).zip(&grads) {
                        if grad.defined() {
                            adamw_update(p, grad, m, v, lr * *lr_scale, *weight_decay, self.steps);
                        }
                    }
                }
            }
        }
    }

    /// Optimizer state for checkpoints, in a stable order.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = vec![("steps".to_string(), Tensor::from(self.steps))];
        for (gi, g) in self.groups.iter().enumerate() {
            match g {
                GroupState::Flat { group, .. } => out.push((format!("{gi}.momentum"), group.momentum_buffer().shallow_clone())),
                GroupState::Adam { moments, .. } => {
                    for (pi, [m, v]) in moments.iter().enumerate() {
                        out.push((format!("{gi}.{pi}.m"), m.shallow_clone()));
                        out.push((format!("{gi}.{pi}.v"), v.shallow_clone()));
                    }
                }
            }
        }
        out
    }

    pub fn load_state(&mut self, state: &[(String, Tensor)]) -> anyhow::Result<()> {
        let find =
            |name: &str| state.iter().find(|(n, _)| n == name).map(|(_, t)| t).ok_or_else(|| anyhow::anyhow!("checkpoint lacks optimizer state `{name}`"));
        let restore = |dst: &mut Tensor, name: &str| -> anyhow::Result<()> {
            let src = find(name)?;
            if src.size() != dst.size() {
                anyhow::bail!("optimizer state {name} has shape {:?}, expected {:?}", src.size(), dst.size());
            }
            dst.copy_(src);
            Ok(())
        };
        let _guard = tch::no_grad_guard();
        self.steps = find("steps")?.int64_value(&[]);
        for (gi, g) in self.groups.iter_mut().enumerate() {
            match g {
                GroupState::Flat { group, .. } => restore(group.momentum_buffer_mut(), &format!("{gi}.momentum"))?,
                GroupState::Adam { moments, .. } => {
                    for (pi, [m, v]) in moments.iter_mut().enumerate() {
                        restore(m, &format!("{gi}.{pi}.m"))?;
                        restore(v, &format!("{gi}.{pi}.v"))?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Per-tensor LARS, the direct transcription of solo-learn's loop: the reference the flat
/// implementation is tested against.
#[cfg(test)]
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

    /// The flat LARS/SGD equals the per-tensor reference over several steps, on a network with
    /// convolutions (one channels-last), biases and norm parameters.
    #[test]
    fn flat_buffer_matches_the_per_tensor_reference() {
        use tch::nn::{self, ModuleT};
        for kind in [OptimizerKind::Lars, OptimizerKind::Sgd] {
            let build = |seed: i64| {
                tch::manual_seed(seed);
                let vs = nn::VarStore::new(Device::Cpu);
                let net = super::super::flat_lars::test_network(&vs);
                (vs, net)
            };
            let (vs_a, net_a) = build(1);
            let (mut vs_b, net_b) = build(1);
            // The same start whatever other test threads draw from libtorch's global generator
            // between the two builds (it failed so, once, in a full `cargo test`).
            vs_b.copy(&vs_a).unwrap();
            crate::model::vars_to_channels_last(&vs_a);
            let sorted = |vs: &nn::VarStore| {
                let mut v: Vec<(String, Tensor)> = vs.trainable_variables().into_iter().enumerate().map(|(i, t)| (i.to_string(), t)).collect();
                v.sort_by(|a, b| a.0.cmp(&b.0));
                v.into_iter().map(|(_, t)| t).collect::<Vec<_>>()
            };
            let mut opt = Optimizer::new(kind, vec![ParamGroup { params: sorted(&vs_a), lr_scale: 1.0, weight_decay: 1e-2 }], 0.9, 0.02);
            let params_b = sorted(&vs_b);
            let bufs: Vec<Tensor> = params_b.iter().map(|p| p.zeros_like()).collect();
            let x = Tensor::randn([4, 3, 6, 6], (Kind::Float, Device::Cpu));
            let y = Tensor::from_slice(&[0i64, 1, 2, 3]);
            for step in 0..3 {
                let lr = 0.5 / (step + 1) as f64;
                opt.zero_grad();
                net_a.forward_t(&crate::model::to_channels_last(&x), true).cross_entropy_for_logits(&y).backward();
                opt.step(lr);
                for p in &params_b {
                    p.shallow_clone().zero_grad();
                }
                net_b.forward_t(&x, true).cross_entropy_for_logits(&y).backward();
                let _guard = tch::no_grad_guard();
                for (p, b) in params_b.iter().zip(&bufs) {
                    lars_update(p, &p.grad(), b, lr, 1e-2, 0.9, 0.02, kind == OptimizerKind::Lars);
                }
            }
            for (a, b) in sorted(&vs_a).iter().zip(sorted(&vs_b).iter()) {
                assert!(a.allclose(b, 1e-5, 1e-6, false), "{kind:?}: {a:?} vs {b:?}");
            }
        }
    }

    /// `backward_step` (gradients straight from autograd) takes the same steps as zeroing
    /// `.grad`, `backward()` and `step`, and leaves `.grad` alone.
    #[test]
    fn backward_step_equals_backward_then_step() {
        for kind in [OptimizerKind::Lars, OptimizerKind::Sgd, OptimizerKind::Adamw] {
            let w0 = Tensor::from_slice(&[0.5f32, -1.0, 2.0, 0.25, 1.5, -0.75]).view([2, 3]);
            let b0 = Tensor::from_slice(&[0.1f32, -0.2]);
            let x = Tensor::from_slice(&[1f32, 2., 3., -1., 0.5, 0.25]).view([2, 3]);
            let make = || {
                let (w, b) = (w0.copy().set_requires_grad(true), b0.copy().set_requires_grad(true));
                let opt =
                    Optimizer::new(kind, vec![ParamGroup { params: vec![w.shallow_clone(), b.shallow_clone()], lr_scale: 1.0, weight_decay: 0.01 }], 0.9, 0.02);
                (w, b, opt)
            };
            let loss = |w: &Tensor, b: &Tensor| (x.mm(&w.transpose(0, 1)) + b).tanh().square().sum(Kind::Float);
            let (w1, b1, mut direct) = make();
            let (w2, b2, mut accumulated) = make();
            for step in 0..3 {
                let lr = 0.5 / (step + 1) as f64;
                direct.backward_step(&loss(&w1, &b1), lr);
                accumulated.zero_grad();
                loss(&w2, &b2).backward();
                accumulated.step(lr);
            }
            assert!(!w1.grad().defined() && !b1.grad().defined(), "{kind:?}: backward_step leaves .grad unset");
            assert!(w1.allclose(&w2, 1e-6, 1e-7, false) && b1.allclose(&b2, 1e-6, 1e-7, false), "{kind:?}");
            assert!(!w1.allclose(&w0, 1e-3, 1e-3, false), "{kind:?}: the weights moved");
        }
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
