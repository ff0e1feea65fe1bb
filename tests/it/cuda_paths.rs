//! Every branch a GPU run takes, run on the CPU and compared with the fp32 path, so a GPU run is
//! never the first execution of a line: bf16 autocast (the CPU's autocast does bf16), losses kept
//! in float32 under it, channels-last convolutions, the flat tensor LARS kernel, evaluation with
//! autocast and channels-last, the checkpoint round trip, and the self-check's detectors
//! themselves (they must fail on a wrong cast, a lost gradient, a loss in bf16). The k-NN table's
//! device path (torch's topk) and the two LARS kernels are compared in their own modules' tests
//! (`knn::build`, `optim::flat_lars`); augmentation has no device branch (one code path).

use gps_ssl::config::{Backbone as BackboneKind, Method};
use gps_ssl::eval::FeatureExtractor;
use gps_ssl::exec::{self, ExecPaths};
use gps_ssl::model;
use gps_ssl::recipe::{EvalTransform, Stem};
use gps_ssl::train::selfcheck::{self, CheckSize, LOSS_TOLERANCE, METHODS, UPDATE_TOLERANCE};

/// The check at its smallest (`gps info --check --quick`): what it verifies does not depend on the
/// size, and autocast's bf16 kernels are emulated on CPUs without native bf16 (slow).
const SMALL: CheckSize = CheckSize::SMALLEST;
use tch::{Device, Kind, Tensor, nn};

#[test]
fn every_method_takes_the_cuda_choices_on_the_cpu_and_agrees_with_fp32() {
    let scratch = tempfile::tempdir().unwrap();
    let paths = ExecPaths::cuda_choices(Device::Cpu);
    for method in METHODS {
        let c = selfcheck::check_method(method, BackboneKind::SmallCnn, Device::Cpu, paths, scratch.path(), SMALL).unwrap();
        assert!(c.problems.is_empty(), "{method:?}: {:?}", c.problems);
        assert!(c.update_difference > 0.0, "{method:?}: bf16 autocast really ran (the update differs from fp32's a little)");
    }
    // The ResNet-18 the runs use (CIFAR stem, channels-last convolutions through its blocks).
    let c = selfcheck::check_method(Method::Simclr, BackboneKind::Resnet18, Device::Cpu, paths, scratch.path(), SMALL).unwrap();
    assert!(c.problems.is_empty(), "resnet18: {:?}", c.problems);
}

#[test]
fn autocast_regions_nest_and_losses_stay_in_float32() {
    let x = Tensor::randn([8, 16], (Kind::Float, Device::Cpu));
    let (z, loss) = exec::autocast(Some(Device::Cpu), || {
        let z = x.mm(&x.transpose(0, 1)); // an autocast op: bf16 inside the region
        let loss = gps_ssl::ssl::simclr_loss(&z.narrow(0, 0, 4), &z.narrow(0, 4, 4), 0.2);
        (z, loss)
    });
    assert_eq!((z.kind(), loss.kind()), (Kind::BFloat16, Kind::Float), "heads in bf16, the loss in float32");
    assert!(!exec::autocast_enabled(Device::Cpu));
}

#[test]
fn evaluation_with_autocast_and_channels_last_matches_fp32() {
    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = model::build_backbone_with(BackboneKind::Resnet18, &vs.root(), 3, Stem::Cifar);
    let vs_cl = nn::VarStore::new(Device::Cpu);
    let net_cl = model::build_backbone_with(BackboneKind::Resnet18, &vs_cl.root(), 3, Stem::Cifar);
    {
        let _g = tch::no_grad_guard();
        let theirs = vs.variables();
        for (n, mut v) in vs_cl.variables() {
            v.copy_(&theirs[&n]);
        }
    }
    model::vars_to_channels_last(&vs_cl);
    let augmenter = gps_ssl::augment::Augmenter::new(gps_ssl::augment::Pipeline::NONE, &[0.5, 0.5, 0.5], &[0.25, 0.25, 0.25], Device::Cpu);
    let images = Tensor::randint(256, [6, 3, 40, 40], (Kind::Uint8, Device::Cpu));
    let eval = EvalTransform { resize: Some(36), center_crop: Some(32) };
    let fp32 = FeatureExtractor { backbone: net.as_ref(), augmenter: &augmenter, eval, channels_last: false, autocast: None }.features(&images);
    let cuda = FeatureExtractor { backbone: net_cl.as_ref(), augmenter: &augmenter, eval, channels_last: true, autocast: Some(Device::Cpu) }.features(&images);
    assert_eq!((cuda.kind(), cuda.size()), (Kind::Float, vec![6, 512]), "features come back as float32");
    let rel = ((&cuda - &fp32).norm().double_value(&[])) / fp32.norm().double_value(&[]);
    assert!(rel < 0.02, "features with bf16 autocast and channels-last vs fp32: {rel}");
    assert!(rel > 0.0, "autocast really ran");
}

fn vars(values: &[f32]) -> Vec<(String, Tensor)> {
    values.iter().enumerate().map(|(i, &v)| (format!("p{i}"), Tensor::from_slice(&[v, 2.0 * v]))).collect()
}

#[test]
fn the_check_fails_on_a_wrong_cast_a_lost_gradient_or_a_loss_in_bf16() {
    let before = vars(&[1.0, 1.0, 1.0]);
    let after_ref = vars(&[0.9, 0.8, 1.1]);
    let ok = selfcheck::compare_step((4.0, 1.0, Kind::Float), (4.01, 1.0, Kind::Float), &before, &after_ref, &vars(&[0.9, 0.81, 1.1]));
    assert!(ok.problems.is_empty(), "{:?}", ok.problems);
    // A loss computed in bf16 under autocast.
    let bf16 = selfcheck::compare_step((4.0, 1.0, Kind::BFloat16), (4.0, 1.0, Kind::Float), &before, &after_ref, &after_ref);
    assert!(bf16.problems.iter().any(|p| p.contains("float32")), "{:?}", bf16.problems);
    // A wrong cast: the loss off by more than the tolerance.
    let off = selfcheck::compare_step((4.0 * (1.0 + 2.0 * LOSS_TOLERANCE), 1.0, Kind::Float), (4.0, 1.0, Kind::Float), &before, &after_ref, &after_ref);
    assert!(off.problems.iter().any(|p| p.contains("SSL loss")), "{:?}", off.problems);
    // A lost gradient: p1 did not move on the device.
    let lost = selfcheck::compare_step((4.0, 1.0, Kind::Float), (4.0, 1.0, Kind::Float), &before, &after_ref, &vars(&[0.9, 1.0, 1.1]));
    assert!(lost.problems.iter().any(|p| p.contains("`p1`") && p.contains("lost")), "{:?}", lost.problems);
    // An update in the wrong direction (a sign or a scale gone wrong).
    let wrong = selfcheck::compare_step((4.0, 1.0, Kind::Float), (4.0, 1.0, Kind::Float), &before, &after_ref, &vars(&[1.1, 1.2, 0.9]));
    assert!(wrong.update_difference > UPDATE_TOLERANCE && !wrong.problems.is_empty(), "{wrong:?}");
}

#[test]
fn gps_info_check_runs_and_cuda_without_cuda_is_an_error_naming_what_is_missing() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gps"))
        .args(["info", "--check", "--quick", "--backbone", "small-cnn", "--device", "cpu"])
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("self-check passed") && text.contains("bf16 autocast (CPU), channels-last, tensor LARS kernel"), "{text}");
    for m in ["simclr", "byol", "vicreg", "barlow-twins", "nnclr"] {
        assert!(text.lines().any(|l| l.starts_with(m) && l.ends_with("ok")), "{m}: {text}");
    }
    if !tch::Cuda::is_available() {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_gps")).args(["info", "--check", "--device", "cuda"]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains("`cuda` was asked for but CUDA is not usable here"), "{err}");
    }
}
