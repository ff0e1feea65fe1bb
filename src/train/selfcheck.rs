//! `gps info --check`: what a user runs first on a new machine or GPU node. For each method, on
//! synthetic data: a few training steps on the device with the run's execution choices (bf16
//! autocast, channels-last, the tensor LARS kernel on a GPU), one step compared with the same step
//! in fp32 on the CPU from the same weights (within bf16's tolerance), a checkpoint written on
//! the device and resumed into a fresh trainer (identical weights, the same next step), and the
//! samples/s. Any mismatch is reported with its reason and makes the command fail, so a broken
//! node, driver or library costs one short job, not a sweep.

use super::prepare::Prepared;
use super::trainer::Trainer;
use crate::config::{Backbone, Method, PriorSpec, RunSpec};
use crate::data::Dataset;
use crate::exec::ExecPaths;
use crate::knn::{NeighbourTable, SplitMix64};
use anyhow::Result;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// How far one bf16-autocast step's losses may be from the fp32 step's (relative). Measured with
/// the CPU's bf16 autocast, ResNet-18, batch 32 (README, GPU): at most 0.33% (NNCLR).
pub const LOSS_TOLERANCE: f64 = 0.02;
/// How far the whole network's update may be (‖Δθ_device − Δθ_fp32‖ / ‖Δθ_fp32‖) after one
/// step. Measured the same way: 1.9–3.5%, Barlow Twins 9.2% (its loss is a sum of many
/// squared small correlations). A lost gradient is caught on its own, variable by variable.
pub const UPDATE_TOLERANCE: f64 = 0.25;

/// What the check found for one method.
#[derive(Debug, Clone)]
pub struct MethodCheck {
    pub method: Method,
    /// (SSL loss, probe loss) of the compared step: on the device, and in fp32 on the CPU.
    pub device_losses: (f64, f64),
    pub reference_losses: (f64, f64),
    /// ‖Δθ_device − Δθ_fp32‖ / ‖Δθ_fp32‖ over every variable after that step.
    pub update_difference: f64,
    pub samples_per_s: f64,
    /// Everything wrong, each with its reason (empty: the method passed).
    pub problems: Vec<String>,
}

/// Synthetic images with a learnable signal: a bright quadrant per class, noise elsewhere.
fn synthetic(n: i64, side: i64, seed: u64) -> Dataset {
    let mut rng = SplitMix64::new(seed);
    let noise: Vec<f32> = (0..n * 3 * side * side).map(|_| rng.uniform() as f32).collect();
    let labels = Tensor::arange(n, (Kind::Int64, Device::Cpu)).remainder(4);
    let images = Tensor::from_slice(&noise).view([n, 3, side, side]) * 0.4;
    let half = side / 2;
    for c in 0..4i64 {
        let mask = labels.eq(c).to_kind(Kind::Float).view([n, 1, 1, 1]) * 0.6;
        let mut region = images.narrow(2, (c / 2) * half, half).narrow(3, (c % 2) * half, half);
        region += mask;
    }
    Dataset::new((images * 255.0).clamp(0.0, 255.0).to_kind(Kind::Uint8), labels, (0..4).map(|c| format!("q{c}")).collect())
        .expect("synthetic data is consistent")
}

/// How much the check computes: the side of its synthetic images, its batch, and the steps it
/// times. What it verifies does not depend on the size; the time does, a lot on CPUs without
/// native bf16, where autocast's kernels are emulated (small CNN, debug build, on the 2-core
/// development machine: 143 s at 32 px and batch 32, 68 s at the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckSize {
    pub side: i64,
    pub batch: usize,
    pub timed_steps: usize,
}

impl CheckSize {
    /// What `gps info --check` runs: 16 px, batch 16, 3 timed steps.
    pub const DEFAULT: CheckSize = CheckSize { side: 16, batch: 16, timed_steps: 3 };
    /// `gps info --check --quick`: 8 px, batch 8, one timed step.
    pub const SMALLEST: CheckSize = CheckSize { side: 8, batch: 8, timed_steps: 1 };
}

/// The run spec the check trains: `method` on `backbone` at `size`, a fixed neighbour table (so
/// GPS's sampling runs too), strong augmentation (every pixel op).
fn spec(method: Method, backbone: Backbone, size: CheckSize) -> RunSpec {
    let mut s = RunSpec { method, backbone, prior: PriorSpec::Labels, batch_size: size.batch, epochs: 1, ..Default::default() };
    s.dataset.name = "gps-selfcheck".into();
    s.optimizer.warmup_epochs = 0;
    s
}

fn prepared(spec: &RunSpec, size: CheckSize) -> Result<Prepared> {
    let train = synthetic(4 * size.batch as i64, size.side, 1);
    let test = synthetic(size.batch as i64, size.side, 2);
    let n = train.len();
    // Each image's 3 candidates: the next images of its class (4 classes, in turn).
    let idx: Vec<u32> = (0..n).flat_map(|i| (1..=3).map(move |j| ((i + 4 * j) % n) as u32)).collect();
    let table = NeighbourTable::new(n, 3, idx)?;
    let recipe = crate::recipe::Recipe::resolve(spec, &train)?;
    Ok(Prepared { train, test, recipe, table, tau: None })
}

fn relative(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-6)
}

/// Checks `method` on `device` with `paths` against fp32 on the CPU.
pub fn check_method(method: Method, backbone: Backbone, device: Device, paths: ExecPaths, scratch: &std::path::Path, size: CheckSize) -> Result<MethodCheck> {
    let spec = spec(method, backbone, size);
    let mut problems = Vec::new();
    let mut reference = Trainer::with_paths(&spec, prepared(&spec, size)?, Device::Cpu, ExecPaths::fp32())?;
    let mut on_device = Trainer::with_paths(&spec, prepared(&spec, size)?, device, paths)?;
    on_device.copy_weights_from(&reference)?;
    let before: Vec<(String, Tensor)> = sorted(reference.variables());

    // One step from the same weights, batch and augmentation draws.
    let theirs = reference.check_steps(1)?[0];
    let ours = on_device.check_steps(1)?[0];
    let (after_ref, after_dev) = (sorted(reference.variables()), sorted(on_device.variables()));
    let step = compare_step(ours, theirs, &before, &after_ref, &after_dev);
    problems.extend(step.problems);
    let update_difference = step.update_difference;

    // Throughput on the device.
    let steps = size.timed_steps;
    let started = Instant::now();
    on_device.check_steps(steps)?;
    let samples_per_s = (steps * spec.batch_size) as f64 / started.elapsed().as_secs_f64();

    // A checkpoint written on the device resumes into a fresh trainer with the same weights and
    // the same next step.
    let dir = scratch.join(format!("ckpt-{}", method.as_str()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    on_device.checkpoint_to(&dir)?;
    let mut resumed = Trainer::with_paths(&spec, prepared(&spec, size)?, device, paths)?;
    match resumed.resume(&dir)? {
        None => problems.push("the checkpoint written on the device was not found again".into()),
        Some(_) => {
            for ((name, a), (_, b)) in sorted(on_device.variables()).iter().zip(&sorted(resumed.variables())) {
                if !a.to_device(Device::Cpu).contiguous().equal(&b.to_device(Device::Cpu).contiguous()) {
                    problems.push(format!("`{name}` differs after the checkpoint round trip"));
                    break;
                }
            }
            let (a, b) = (on_device.check_steps(1)?[0], resumed.check_steps(1)?[0]);
            // cuDNN may pick other algorithms in a fresh process: equal up to bf16's rounding.
            if relative(a.0, b.0) > LOSS_TOLERANCE / 4.0 {
                problems.push(format!("the step after resuming gives loss {:.6}, the uninterrupted trainer {:.6}", b.0, a.0));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(MethodCheck { method, device_losses: (ours.0, ours.1), reference_losses: (theirs.0, theirs.1), update_difference, samples_per_s, problems })
}

/// One compared step: what is wrong with it, and the relative difference of the updates.
#[derive(Debug, Clone, PartialEq)]
pub struct StepComparison {
    pub problems: Vec<String>,
    pub update_difference: f64,
}

/// Compares a step on the device with the same step in fp32: `device` and `reference` are each
/// step's (SSL loss, probe loss, the SSL loss's dtype); `before` the shared weights, `after_*`
/// each side's weights after the step (by name, in the same order). Flags a loss that is not
/// float32, non-finite or further than `LOSS_TOLERANCE` from fp32's, a variable that moved in
/// fp32 but not on the device (a lost gradient), and an update further than `UPDATE_TOLERANCE`.
pub fn compare_step(
    device: (f64, f64, Kind),
    reference: (f64, f64, Kind),
    before: &[(String, Tensor)],
    after_ref: &[(String, Tensor)],
    after_dev: &[(String, Tensor)],
) -> StepComparison {
    let mut problems = Vec::new();
    if device.2 != Kind::Float {
        problems.push(format!("the SSL loss is {:?} under autocast; losses must be computed in float32", device.2));
    }
    for (what, a, b) in [("SSL loss", device.0, reference.0), ("probe loss", device.1, reference.1)] {
        if !a.is_finite() {
            problems.push(format!("{what} is {a} on the device"));
        } else if relative(a, b) > LOSS_TOLERANCE {
            problems.push(format!(
                "{what} {a:.6} on the device vs {b:.6} in fp32 on the CPU ({:.2}% apart, tolerance {:.0}%)",
                100.0 * relative(a, b),
                100.0 * LOSS_TOLERANCE
            ));
        }
    }
    let (mut diff, mut norm) = (0.0, 0.0);
    for (((name, b), (_, r)), (_, d)) in before.iter().zip(after_ref).zip(after_dev) {
        let step_ref = (r - b).to_kind(Kind::Double);
        let step_dev = (d.to_device(Device::Cpu).contiguous() - b).to_kind(Kind::Double);
        let moved_ref = step_ref.abs().max().double_value(&[]) > 0.0;
        let moved_dev = step_dev.abs().max().double_value(&[]) > 0.0;
        if moved_ref && !moved_dev {
            problems.push(format!("`{name}` did not change on the device but did in fp32: its gradient was lost"));
        }
        diff += (&step_dev - &step_ref).pow_tensor_scalar(2).sum(Kind::Double).double_value(&[]);
        norm += step_ref.pow_tensor_scalar(2).sum(Kind::Double).double_value(&[]);
    }
    let update_difference = (diff / norm.max(1e-300)).sqrt();
    if !(update_difference <= UPDATE_TOLERANCE) {
        problems.push(format!("the step's update differs from fp32's by {:.1}% (tolerance {:.0}%)", 100.0 * update_difference, 100.0 * UPDATE_TOLERANCE));
    }
    StepComparison { problems, update_difference }
}

fn sorted(vars: std::collections::HashMap<String, Tensor>) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = vars.into_iter().map(|(n, t)| (n, t.detach().copy())).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Every method.
pub const METHODS: [Method; 5] = [Method::Simclr, Method::Byol, Method::Vicreg, Method::BarlowTwins, Method::Nnclr];
