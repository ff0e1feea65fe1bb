//! LARS and momentum SGD over one flat buffer per parameter group.
//!
//! Every parameter of the group is rebound as a view into one contiguous buffer (keeping its
//! memory layout, channels-last included), so an update is about 25 whole-buffer kernels instead
//! of a dozen per parameter: on a GPU a per-parameter LARS costs ~900 kernel launches per
//! ResNet-18 step, a sizeable share of a 14 ms step. Per-tensor norms come from segment sums
//! (in float64: see `segment_sum`). On the CPU the same update runs as two fused passes over
//! host memory instead (`host_lars`): there, whole-buffer kernels cost memory traffic, not launches.

use super::host_lars::{self, Hyper, Segment};
use crate::model::flat_params::{Layout, flatten_as, rebind_into_flat};
use tch::{Device, Kind, Tensor};

const EPS: f64 = 1e-8;

pub struct FlatGroup {
    params: Vec<Tensor>,
    layouts: Vec<Layout>,
    /// All parameter values, back to back; the parameters are views into it.
    values: Tensor,
    /// Momentum buffer, same layout as `values`.
    buf: Tensor,
    /// Elements per parameter, and for every element the index of its parameter.
    lengths: Tensor,
    segment: Tensor,
    /// Per parameter: ndim ≠ 1 (biases and norm parameters get no LARS scaling, no decay).
    is_matrix: Tensor,
    /// Each parameter's offset, length and ndim ≠ 1 on the host (the host kernel's; the three
    /// tensors above are derived from it).
    segments: Vec<Segment>,
}

/// Which implementation of the update runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// Whole-buffer tensor ops (any device; the GPU's).
    Tensors,
    /// Fused passes over host memory (float32 on the CPU).
    Host,
}

impl FlatGroup {
    pub fn new(params: Vec<Tensor>) -> FlatGroup {
        let _guard = tch::no_grad_guard();
        let device = params.first().map(|p| p.device()).unwrap_or(tch::Device::Cpu);
        let (values, layouts) = rebind_into_flat(&params);
        let mut total = 0;
        let segments: Vec<Segment> = params
            .iter()
            .map(|p| {
                let len = p.numel();
                total += len;
                Segment { offset: total - len, len, is_matrix: p.dim() != 1 }
            })
            .collect();
        // The tensor kernel's copies of the segments, on the group's device.
        let lengths = Tensor::from_slice(&segments.iter().map(|s| s.len as i64).collect::<Vec<_>>()).to_device(device);
        let ids = Tensor::arange(segments.len() as i64, (Kind::Int64, device));
        let segment = ids.repeat_interleave_self_tensor(&lengths, 0, total as i64);
        let is_matrix = Tensor::from_slice(&segments.iter().map(|s| s.is_matrix).collect::<Vec<_>>()).to_device(device);
        let buf = values.zeros_like();
        FlatGroup { params, layouts, values, buf, lengths, segment, is_matrix, segments }
    }

    /// Per-parameter sums of `x`, accumulated in float64: segment_reduce adds a segment's
    /// elements one after the other, and in float32 a 4M-element projector matrix's squared norm
    /// came out 0.1% off (PyTorch's `norm` sums pairwise); the LARS trust ratio inherits that.
    fn segment_sum(&self, x: &Tensor) -> Tensor {
        Tensor::segment_reduce(&x.to_kind(Kind::Double), "sum", Some(&self.lengths), None::<&Tensor>, None::<&Tensor>, 0, false, 0.0).to_kind(Kind::Float)
    }

    pub fn params(&self) -> &[Tensor] {
        &self.params
    }

    /// solo-learn's LARS (clip_lr, exclude_bias_n_norm) when `lars`, else momentum SGD with the
    /// same exclusions: per matrix r = min(η‖p‖/(‖g‖ + wd‖p‖ + ε)/lr, 1) when both norms are
    /// non-zero and d = (g + wd·p)·r, else d = g; buf = μ·buf + d; p −= lr·buf.
    ///
    /// `grads`: one per parameter, in order (an undefined tensor counts as a zero gradient). The
    /// kernel is the one that suits the group's device.
    pub fn step(&mut self, grads: &[Tensor], lr: f64, wd: f64, momentum: f64, eta: f64, lars: bool) {
        let kernel = if self.values.device() == Device::Cpu && self.values.kind() == Kind::Float { Kernel::Host } else { Kernel::Tensors };
        self.step_with(kernel, grads, lr, wd, momentum, eta, lars);
    }

    #[allow(clippy::too_many_arguments)]
    pub fn step_with(&mut self, kernel: Kernel, grads: &[Tensor], lr: f64, wd: f64, momentum: f64, eta: f64, lars: bool) {
        assert_eq!(grads.len(), self.params.len(), "one gradient per parameter");
        if self.params.is_empty() {
            return;
        }
        let _guard = tch::no_grad_guard();
        if kernel == Kernel::Host {
            return self.step_host(grads, &Hyper { lr, weight_decay: wd, momentum, eta, lars });
        }
        let grads: Vec<Tensor> = self
            .params
            .iter()
            .zip(&self.layouts)
            .zip(grads)
            .map(|((p, &l), g)| if g.defined() { flatten_as(&g.to_kind(Kind::Float), l) } else { Tensor::zeros([p.numel() as i64], (Kind::Float, p.device())) })
            .collect();
        let g = Tensor::cat(&grads, 0);
        let (ratio, decay) = if lars {
            let pn = self.segment_sum(&self.values.square()).sqrt();
            let gn = self.segment_sum(&g.square()).sqrt();
            let ok = self.is_matrix.logical_and(&pn.gt(0.0)).logical_and(&gn.gt(0.0));
            let ratio = (&pn * eta / (&gn + &pn * wd + EPS) / lr).clamp_max(1.0);
            (ratio.where_self(&ok, &ratio.ones_like()), ok.to_kind(Kind::Float) * wd)
        } else {
            (self.is_matrix.ones_like().to_kind(Kind::Float), self.is_matrix.to_kind(Kind::Float) * wd)
        };
        let d = (&g + &self.values * decay.index_select(0, &self.segment)) * ratio.index_select(0, &self.segment);
        self.buf *= momentum;
        self.buf += d;
        self.values -= &self.buf * lr;
    }

    fn step_host(&mut self, grads: &[Tensor], h: &Hyper) {
        // Each gradient as float32 in its parameter's element order: a view when the layout
        // holds (always, for gradients autograd produced), a copy otherwise.
        let grads: Vec<Option<Tensor>> =
            grads.iter().zip(&self.layouts).map(|(g, &l)| g.defined().then(|| flatten_as(&g.to_kind(Kind::Float), l).contiguous())).collect();
        let slices: Vec<Option<&[f32]>> = grads
            .iter()
            .zip(&self.segments)
            .map(|(g, s)| {
                g.as_ref().map(|g| {
                    assert_eq!(g.numel(), s.len);
                    // SAFETY: a contiguous float32 CPU tensor of s.len elements, alive in `grads`.
                    unsafe { std::slice::from_raw_parts(g.data_ptr() as *const f32, s.len) }
                })
            })
            .collect();
        let n = self.values.numel();
        assert!(self.values.is_contiguous() && self.buf.is_contiguous() && self.buf.numel() == n);
        // SAFETY: `values` and `buf` are distinct contiguous float32 CPU buffers of n elements
        // owned by this group; nothing else reads or writes them during the step (no autograd
        // graph is alive between backward and the next forward).
        let (values, buf) = unsafe {
            (std::slice::from_raw_parts_mut(self.values.data_ptr() as *mut f32, n), std::slice::from_raw_parts_mut(self.buf.data_ptr() as *mut f32, n))
        };
        host_lars::step(values, buf, &slices, &self.segments, h, tch::get_num_threads().max(1) as usize);
    }

    pub fn zero_grad(&mut self) {
        for p in &mut self.params {
            p.zero_grad();
        }
    }

    pub fn momentum_buffer(&self) -> &Tensor {
        &self.buf
    }

    pub fn momentum_buffer_mut(&mut self) -> &mut Tensor {
        &mut self.buf
    }
}

/// The optimizer tests' network: a convolution (its 4-D weight channels-last once
/// `vars_to_channels_last` ran), batch norm, ReLU, global pooling and a linear layer with a bias.
#[cfg(test)]
pub(super) fn test_network(vs: &tch::nn::VarStore) -> tch::nn::SequentialT {
    use tch::nn;
    nn::seq_t()
        .add(nn::conv2d(vs.root() / "c1", 3, 8, 3, Default::default()))
        .add(nn::batch_norm2d(vs.root() / "bn", 8, Default::default()))
        .add_fn(|x| x.relu().mean_dim([2i64, 3].as_slice(), false, Kind::Float))
        .add(nn::linear(vs.root() / "fc", 8, 4, Default::default()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn::{self, ModuleT};

    /// The host kernel (what CPUs run) and the tensor kernel (what GPUs run) agree step for step,
    /// LARS and SGD, on a network with a channels-last convolution, biases, norms and a
    /// parameter without a gradient.
    #[test]
    fn host_and_tensor_kernels_agree() {
        for lars in [true, false] {
            let build = || {
                tch::manual_seed(3);
                let vs = nn::VarStore::new(Device::Cpu);
                let net = test_network(&vs);
                let _unused = vs.root().var("unused", &[5, 2], nn::Init::Const(0.5));
                crate::model::vars_to_channels_last(&vs);
                let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).collect();
                vars.sort_by(|a, b| a.0.cmp(&b.0));
                let group = FlatGroup::new(vars.into_iter().map(|(_, t)| t).collect());
                (vs, net, group)
            };
            let (vs_a, net_a, mut a) = build();
            let (mut vs_b, net_b, mut b) = build();
            // The same start whatever other test threads draw from libtorch's global generator.
            vs_b.copy(&vs_a).unwrap();
            let x = Tensor::randn([6, 3, 7, 7], (Kind::Float, Device::Cpu));
            let y = Tensor::from_slice(&[0i64, 1, 2, 3, 0, 1]);
            for step in 0..4 {
                let lr = 0.4 / (step + 1) as f64;
                for (group, net, kernel) in [(&mut a, &net_a, Kernel::Host), (&mut b, &net_b, Kernel::Tensors)] {
                    group.zero_grad();
                    net.forward_t(&x, true).cross_entropy_for_logits(&y).backward();
                    let grads: Vec<Tensor> = group.params().iter().map(|p| p.grad()).collect();
                    assert_eq!(grads.iter().filter(|g| !g.defined()).count(), 1, "the unused parameter has no gradient");
                    group.step_with(kernel, &grads, lr, 1e-2, 0.9, 0.02, lars);
                }
            }
            let (va, vb) = (vs_a.variables(), vs_b.variables());
            assert_eq!(va.len(), vb.len());
            for (name, p) in &va {
                assert!(p.allclose(&vb[name], 1e-5, 1e-6, false), "lars={lars} {name}: {p:?} vs {:?}", vb[name]);
            }
            assert!(a.momentum_buffer().allclose(b.momentum_buffer(), 1e-5, 1e-6, false));
        }
    }
}
