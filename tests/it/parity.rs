//! Parity with PyTorch 2.11 / torchvision 0.26 and the authors' own code, on fixtures written by
//! `scripts/parity/make_fixtures.py` (committed under tests/fixtures/parity/; no Python here).
//!
//! Weights loaded into both implementations come from a formula both compute (`formula_tensor`
//! here, `formula_values` there), seeded by each parameter's PyTorch name: a parameter loaded
//! under the wrong name gives different outputs.

use gps_ssl::augment::sample::{self, CropBox, Draw, Jitter};
use gps_ssl::augment::{Augmenter, Pipeline};
use gps_ssl::config::{Backbone as BackboneKind, Method};
use gps_ssl::knn::SplitMix64;
use gps_ssl::model::{self, Backbone, init};
use gps_ssl::optim::{Optimizer, ParamGroup, WarmupCosine};
use gps_ssl::ssl::{self, MethodContext};
use gps_ssl::train::step;
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use tch::nn;
use tch::{Device, Kind, Tensor};

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/parity").join(name)
}

fn tensors(name: &str) -> HashMap<String, Tensor> {
    let path = fixture_path(name);
    Tensor::read_safetensors(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).into_iter().collect()
}

fn json(name: &str) -> Value {
    let path = fixture_path(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

fn get<'a>(t: &'a HashMap<String, Tensor>, name: &str) -> &'a Tensor {
    t.get(name).unwrap_or_else(|| panic!("fixture lacks `{name}`"))
}

// ---------------------------------------------------------------------------------------------
// The weight formula (the other half is `formula_values` in make_fixtures.py).

fn fnv1a64(text: &str) -> u64 {
    text.bytes().fold(0xCBF2_9CE4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01B3))
}

fn formula_tensor(name: &str, shape: &[i64], lo: f64, hi: f64) -> Tensor {
    let n: i64 = shape.iter().product();
    let mut rng = SplitMix64::new(fnv1a64(name));
    let v: Vec<f32> = (0..n).map(|_| (lo + (hi - lo) * rng.uniform()) as f32).collect();
    Tensor::from_slice(&v).view(shape)
}

fn formula_range(name: &str, shape: &[i64]) -> (f64, f64) {
    let leaf = name.rsplit('.').next().unwrap();
    match leaf {
        "running_var" => (0.5, 1.5),
        "running_mean" | "bias" => (-0.1, 0.1),
        "weight" if shape.len() == 1 => (0.5, 1.5),
        _ => {
            let fan_in: i64 = shape[1..].iter().product();
            let b = (6.0 / fan_in as f64).sqrt();
            (-b, b)
        }
    }
}

/// Sets every variable of `vs` from the formula, seeded by its name (our names are PyTorch's).
fn load_formula(vs: &nn::VarStore) {
    let _guard = tch::no_grad_guard();
    for (name, mut v) in vs.variables() {
        let (lo, hi) = formula_range(&name, &v.size());
        v.copy_(&formula_tensor(&name, &v.size(), lo, hi));
    }
}

/// max |a − b| ≤ atol + rtol·max |b|.
fn assert_close(what: &str, a: &Tensor, b: &Tensor, atol: f64, rtol: f64) {
    assert_eq!(a.size(), b.size(), "{what}: shape");
    let (a, b) = (a.to_kind(Kind::Double), b.to_kind(Kind::Double));
    let diff = (&a - &b).abs().max().double_value(&[]);
    let scale = b.abs().max().double_value(&[]);
    assert!(diff <= atol + rtol * scale, "{what}: max |diff| {diff:e} over the tolerance {:e} (max |ref| {scale:e})", atol + rtol * scale);
}

// ---------------------------------------------------------------------------------------------
// Initialisation.

fn method_of(name: &str) -> Method {
    match name {
        "simclr" => Method::Simclr,
        "byol" => Method::Byol,
        "vicreg" => Method::Vicreg,
        "barlow-twins" => Method::BarlowTwins,
        "nnclr" => Method::Nnclr,
        _ => panic!("{name}"),
    }
}

/// Our fresh model for a fixture model name, with variables named as PyTorch names them there.
fn fresh_model(model: &str) -> (nn::VarStore, String) {
    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let prefix = match model {
        "resnet18" | "resnet50" | "small-cnn" => {
            let kind = match model {
                "resnet18" => BackboneKind::Resnet18,
                "resnet50" => BackboneKind::Resnet50,
                _ => BackboneKind::SmallCnn,
            };
            let _ = model::build_backbone(kind, &vs.root(), 3);
            String::new()
        }
        "probe" => {
            let _ = init::linear(vs.root(), 512, 10, true);
            String::new()
        }
        heads => {
            let (method, head) = heads.split_once('.').unwrap();
            let ctx = MethodContext {
                heads: vs.root(),
                feat_dim: 512,
                temperature: None,
                backbone: BackboneKind::SmallCnn,
                in_channels: 3,
                stem: gps_ssl::recipe::Stem::Cifar,
                device: Device::Cpu,
                online: &vs,
                channels_last: false,
            };
            let _ = ssl::build(method_of(method), ctx);
            format!("{head}.")
        }
    };
    (vs, prefix)
}

/// Per layer, the mean and std of our fresh weights against PyTorch's (within sampling error),
/// weights inside the uniform bound where PyTorch draws uniformly, batch norms exactly γ = 1,
/// β = 0, running mean 0 and variance 1; every PyTorch parameter exists here, same shape.
#[test]
fn fresh_models_are_initialised_as_pytorch_and_torchvision() {
    let stats = json("init_stats.json");
    let models = stats["models"].as_object().unwrap();
    assert!(models.len() >= 11, "fixture covers {} models", models.len());
    for (model, entries) in models {
        let (vs, prefix) = fresh_model(model);
        let vars = vs.variables();
        let entries = entries.as_array().unwrap();
        let ours_in_scope = vars.keys().filter(|k| k.starts_with(&prefix)).count();
        assert_eq!(ours_in_scope, entries.len(), "{model}: {ours_in_scope} variables here, {} in PyTorch", entries.len());
        for e in entries {
            let name = e["name"].as_str().unwrap();
            let what = format!("{model}: {name}");
            let t = vars.get(&format!("{prefix}{name}")).unwrap_or_else(|| panic!("{what}: no such variable here"));
            let shape: Vec<i64> = e["shape"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
            assert_eq!(t.size(), shape, "{what}: shape");
            let x = t.to_kind(Kind::Double);
            let (mean, std, max_abs) = (x.mean(Kind::Double).double_value(&[]), x.std(false).double_value(&[]), x.abs().max().double_value(&[]));
            let (t_mean, t_std) = (e["mean"].as_f64().unwrap(), e["std"].as_f64().unwrap());
            match e["rule"].as_str().unwrap() {
                "const" => assert!(mean == t_mean && std == 0.0, "{what}: starts at mean {mean} std {std}, PyTorch at exactly {t_mean}"),
                rule => {
                    let n = x.numel() as f64;
                    let tol = 6.0 * t_std / n.sqrt() + 1e-9;
                    assert!((mean - t_mean).abs() <= tol * 2f64.sqrt(), "{what}: mean {mean:e} vs PyTorch {t_mean:e}");
                    assert!((std - t_std).abs() <= tol, "{what}: std {std:e} vs PyTorch {t_std:e} ({rule})");
                    if rule == "uniform_fan_in" {
                        let weight = if name.ends_with(".bias") || name == "bias" { name.replace("bias", "weight") } else { name.to_string() };
                        let w = vars[&format!("{prefix}{weight}")].size();
                        let bound = 1.0 / (w[1..].iter().product::<i64>() as f64).sqrt();
                        assert!(max_abs <= bound * (1.0 + 1e-6), "{what}: |w| up to {max_abs}, PyTorch's bound {bound}");
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Forward passes with the same weights, loaded by name.

#[test]
fn backbones_match_pytorch_forward_in_train_and_eval_mode() {
    let t = tensors("forward.safetensors");
    for (model, kind) in [("small-cnn", BackboneKind::SmallCnn), ("resnet18", BackboneKind::Resnet18)] {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = model::build_backbone(kind, &(vs.root() / "backbone"), 3);
        load_formula(&vs);
        let x = get(&t, &format!("{model}.input"));
        let y = tch::no_grad(|| net.forward_t(x, true));
        assert_close(&format!("{model} train-mode features"), &y, get(&t, &format!("{model}.train_features")), 1e-4, 1e-5);
        let vars = vs.variables();
        let mut checked = 0;
        for (name, reference) in t.iter().filter_map(|(k, v)| k.strip_prefix(&format!("{model}.after_train.")).map(|n| (n, v))) {
            let ours = vars.get(&format!("backbone.{name}")).unwrap_or_else(|| panic!("{model}: no `{name}` here"));
            assert_close(&format!("{model} {name} after one train-mode batch"), ours, reference, 1e-5, 1e-5);
            checked += 1;
        }
        assert!(checked >= 8, "{model}: {checked} running statistics compared");
        let y = tch::no_grad(|| net.forward_t(x, false));
        assert_close(&format!("{model} eval-mode features"), &y, get(&t, &format!("{model}.eval_features")), 1e-4, 1e-5);
    }
}

/// Our ResNet-18's variables are torchvision's state_dict (num_batches_tracked aside), name for
/// name and shape for shape: what `gps export` relies on.
#[test]
fn resnet_variables_are_torchvisions_state_dict() {
    for (file, kind) in [("resnet18_state_dict.json", BackboneKind::Resnet18), ("resnet50_state_dict.json", BackboneKind::Resnet50)] {
        let listing = json(file);
        let vs = nn::VarStore::new(Device::Cpu);
        let _ = model::build_backbone(kind, &vs.root(), 3);
        let vars = vs.variables();
        let mut expected = 0;
        for e in listing.as_array().unwrap() {
            let name = e["name"].as_str().unwrap();
            if name.ends_with("num_batches_tracked") {
                continue;
            }
            expected += 1;
            let shape: Vec<i64> = e["shape"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
            assert_eq!(vars.get(name).unwrap_or_else(|| panic!("{file}: no `{name}` here")).size(), shape, "{file}: {name}");
        }
        assert_eq!(vars.len(), expected, "{file}: extra variables here");
    }
}

// ---------------------------------------------------------------------------------------------
// Losses and their gradients, against the authors' loss functions.

fn leaf(t: &Tensor) -> Tensor {
    t.detach().copy().set_requires_grad(true)
}

fn check_loss(name: &str, t: &HashMap<String, Tensor>, loss: Tensor, inputs: &[(&str, &Tensor)]) {
    assert_close(&format!("{name} loss"), &loss.detach().reshape([1]), get(t, &format!("{name}.loss")), 0.0, 1e-5);
    loss.backward();
    for (n, x) in inputs {
        assert_close(&format!("{name} ∂loss/∂{n}"), &x.grad(), get(t, &format!("{name}.grad.{n}")), 0.0, 1e-5);
    }
}

#[test]
fn losses_and_gradients_match_the_authors_loss_functions() {
    let t = tensors("losses.safetensors");
    let input = |n: &str| leaf(get(&t, n));

    let (z1, z2) = (input("simclr.z1"), input("simclr.z2"));
    check_loss("simclr", &t, ssl::simclr_loss(&z1, &z2, 0.2), &[("z1", &z1), ("z2", &z2)]);

    let (p1, p2) = (input("byol.p1"), input("byol.p2"));
    let (zm1, zm2) = (get(&t, "byol.zm1"), get(&t, "byol.zm2"));
    check_loss("byol", &t, ssl::byol_loss(&p1, &p2, zm1, zm2), &[("p1", &p1), ("p2", &p2)]);

    let (z1, z2) = (input("vicreg.z1"), input("vicreg.z2"));
    check_loss("vicreg", &t, ssl::vicreg_loss(&z1, &z2), &[("z1", &z1), ("z2", &z2)]);

    let (z1, z2) = (input("barlow.z1"), input("barlow.z2"));
    check_loss("barlow", &t, ssl::barlow_twins_loss(&z1, &z2, 0.0051, 0.1), &[("z1", &z1), ("z2", &z2)]);

    let queue = get(&t, "nnclr.queue");
    let (p1, p2) = (input("nnclr.p1"), input("nnclr.p2"));
    let nn1 = ssl::nearest_neighbours(queue, get(&t, "nnclr.z1"));
    let nn2 = ssl::nearest_neighbours(queue, get(&t, "nnclr.z2"));
    check_loss("nnclr", &t, ssl::nnclr_loss(&nn1, &nn2, &p1, &p2, 0.2), &[("p1", &p1), ("p2", &p2)]);
}

/// Several positives per anchor (`positives: 2`, three views): SimCLR's InfoNCE with every view
/// keyed by its anchor and BYOL's sum over view pairs, against the authors' formulas transcribed
/// in float64 (`scripts/parity/multi_positive_fixtures.py`; gradients by central differences).
#[test]
fn multi_positive_losses_and_gradients_match_the_authors_formulas() {
    let t = tensors("multi_positive.safetensors");
    let input = |n: &str| get(&t, n).to_kind(Kind::Float).detach().set_requires_grad(true);
    let zs: Vec<Tensor> = (0..3).map(|v| input(&format!("simclr.z{v}"))).collect();
    let loss = ssl::simclr_multi_loss(&zs, 0.2);
    assert_close("simclr loss (3 views)", &loss.detach().reshape([1]), get(&t, "simclr.loss"), 0.0, 1e-5);
    loss.backward();
    for (v, z) in zs.iter().enumerate() {
        assert_close(&format!("simclr ∂loss/∂z{v}"), &z.grad(), get(&t, &format!("simclr.grad.z{v}")), 1e-7, 1e-4);
    }
    let ps: Vec<Tensor> = (0..3).map(|v| input(&format!("byol.p{v}"))).collect();
    let zms: Vec<Tensor> = (0..3).map(|v| get(&t, &format!("byol.zm{v}")).to_kind(Kind::Float)).collect();
    let loss = ssl::byol_multi_loss(&ps, &zms);
    assert_close("byol loss (3 views)", &loss.detach().reshape([1]), get(&t, "byol.loss"), 0.0, 1e-5);
    loss.backward();
    for (v, p) in ps.iter().enumerate() {
        assert_close(&format!("byol ∂loss/∂p{v}"), &p.grad(), get(&t, &format!("byol.grad.p{v}")), 1e-7, 1e-4);
    }
    // Two views of the multi-view losses are the two-view ones the other parity test checks.
    let two = ssl::simclr_multi_loss(&zs[..2], 0.2).double_value(&[]);
    assert!((two - ssl::simclr_loss(&zs[0], &zs[1], 0.2).double_value(&[])).abs() < 1e-5);
    let two = ssl::byol_multi_loss(&ps[..2], &zms[..2]).double_value(&[]);
    assert!((two - ssl::byol_loss(&ps[0], &ps[1], &zms[0], &zms[1]).double_value(&[])).abs() < 1e-5);
}

// ---------------------------------------------------------------------------------------------
// Optimiser and schedule.

/// Sets `p.grad` to `g` through a backward pass (tch has no grad setter).
fn set_grad(p: &Tensor, g: &Tensor) {
    let mut p = p.shallow_clone();
    p.zero_grad();
    (&p * g).sum(Kind::Float).backward();
}

/// Three steps of the authors' LARS (clip_lr, exclude_bias_n_norm, η 0.02, momentum 0.9, weight
/// decay on the model group only, a zero-gradient matrix) against theirs, step by step.
#[test]
fn lars_steps_match_the_authors_lars() {
    let t = tensors("lars.safetensors");
    let meta = json("meta.json");
    let lars = &meta["lars"];
    let names_model = ["conv", "bias", "bn", "lin", "zero_grad"];
    let names_cls = ["cls_w", "cls_b"];
    let params: HashMap<&str, Tensor> =
        names_model.iter().chain(&names_cls).map(|&n| (n, get(&t, &format!("init.{n}")).copy().set_requires_grad(true))).collect();
    let group = |names: &[&str], wd: f64| ParamGroup { params: names.iter().map(|n| params[n].shallow_clone()).collect(), lr_scale: 1.0, weight_decay: wd };
    let (wd, momentum, eta) = (lars["weight_decay"].as_f64().unwrap(), lars["momentum"].as_f64().unwrap(), lars["eta"].as_f64().unwrap());
    let mut model_opt = Optimizer::new(gps_ssl::config::OptimizerKind::Lars, vec![group(&names_model, wd)], momentum, eta);
    let mut cls_opt = Optimizer::new(gps_ssl::config::OptimizerKind::Lars, vec![group(&names_cls, 0.0)], momentum, eta);
    for (step, lrs) in lars["lrs"].as_array().unwrap().iter().enumerate() {
        for (n, p) in &params {
            set_grad(p, get(&t, &format!("step{step}.grad.{n}")));
        }
        model_opt.step(lrs[0].as_f64().unwrap());
        cls_opt.step(lrs[1].as_f64().unwrap());
        for (n, p) in &params {
            assert_close(&format!("LARS step {step}: {n}"), &p.detach(), get(&t, &format!("step{step}.after.{n}")), 1e-7, 1e-6);
        }
    }
}

#[test]
fn warmup_cosine_matches_pl_bolts_per_step() {
    let meta = json("meta.json");
    for s in meta["schedule"].as_array().unwrap() {
        let sched = WarmupCosine {
            base_lr: s["base_lr"].as_f64().unwrap(),
            warmup_steps: s["warmup_steps"].as_u64().unwrap(),
            total_steps: s["total_steps"].as_u64().unwrap(),
        };
        for (step, lr) in s["lrs"].as_array().unwrap().iter().enumerate() {
            let (ours, theirs) = (sched.lr(step as u64), lr.as_f64().unwrap());
            assert!((ours - theirs).abs() <= 1e-9 * theirs.abs().max(1e-3), "{sched:?} step {step}: {ours} vs pl_bolts {theirs}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Augmentation ops on fixed images with fixed parameters.

const PLAIN: Draw = Draw { crop: None, jitter: None, gray: false, blur_sigma: None, solarize: false, flip: false };

fn augmented(pipeline: Pipeline, images: &Tensor, draw: Draw) -> Tensor {
    let aug = Augmenter::new(pipeline, &[0.0; 3], &[1.0; 3], Device::Cpu);
    let n = images.size()[0] as usize;
    aug.augment_float(images, &vec![draw; n])
}

fn only_op(op: usize, f: f64) -> Draw {
    let mut factors = [1.0, 1.0, 1.0, 0.0];
    factors[op] = f;
    let mut order = [0, 1, 2, 3];
    order.swap(0, op);
    Draw { jitter: Some(Jitter { order, factors }), ..PLAIN }
}

/// Within 2/255 of torchvision's functional ops (float) and, where the authors' pipeline runs
/// PIL (crop + bicubic resize, blur, solarise), of PIL's bytes.
#[test]
fn augmentation_ops_match_torchvision_and_pil() {
    let t = tensors("augment_ops.safetensors");
    let meta = json("meta.json");
    let a = &meta["augment"];
    let images = get(&t, "images");
    let tol = 2.0 / 255.0;
    let floats = |name: &str| get(&t, name).shallow_clone();
    let bytes = |name: &str| get(&t, name).to_kind(Kind::Float) / 255.0;
    let list = |k: &str| a[k].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect::<Vec<_>>();
    let p = Pipeline::NONE;

    for (i, f) in list("hue").into_iter().enumerate() {
        assert_close(&format!("hue {f}"), &augmented(p, images, only_op(sample::HUE, f)), &floats(&format!("hue.{i}")), tol, 0.0);
    }
    for (i, f) in list("saturation").into_iter().enumerate() {
        assert_close(&format!("saturation {f}"), &augmented(p, images, only_op(sample::SATURATION, f)), &floats(&format!("saturation.{i}")), tol, 0.0);
    }
    for (i, f) in list("brightness").into_iter().enumerate() {
        assert_close(&format!("brightness {f}"), &augmented(p, images, only_op(sample::BRIGHTNESS, f)), &floats(&format!("brightness.{i}")), tol, 0.0);
    }
    for (i, f) in list("contrast").into_iter().enumerate() {
        assert_close(&format!("contrast {f}"), &augmented(p, images, only_op(sample::CONTRAST, f)), &floats(&format!("contrast.{i}")), tol, 0.0);
    }
    for (i, j) in a["jitter"].as_array().unwrap().iter().enumerate() {
        let order: Vec<usize> = j["order"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
        let factors: Vec<f64> = j["factors"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        let draw = Draw { jitter: Some(Jitter { order: order.try_into().unwrap(), factors: factors.try_into().unwrap() }), ..PLAIN };
        assert_close(&format!("colour jitter in order {j}"), &augmented(p, images, draw), &floats(&format!("jitter.{i}")), tol, 0.0);
    }
    assert_close("grayscale", &augmented(p, images, Draw { gray: true, ..PLAIN }), &floats("grayscale"), tol, 0.0);
    assert_close("horizontal flip", &augmented(Pipeline::RECONSTRUCTION, images, Draw { flip: true, ..PLAIN }), &floats("hflip"), 1e-6, 0.0);
    assert_close("solarize", &augmented(p, images, Draw { solarize: true, ..PLAIN }), &bytes("solarize"), tol, 0.0);
    for (i, s) in list("blur_sigma").into_iter().enumerate() {
        assert_close(&format!("PIL Gaussian blur σ {s}"), &augmented(p, images, Draw { blur_sigma: Some(s), ..PLAIN }), &bytes(&format!("blur.{i}")), tol, 0.0);
    }
    for (i, c) in a["crops"].as_array().unwrap().iter().enumerate() {
        let c: Vec<usize> = c.as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
        let crop = CropBox { top: c[0], left: c[1], height: c[2], width: c[3] };
        let ours = augmented(Pipeline::WEAK_RRC, images, Draw { crop: Some(crop), ..PLAIN });
        assert_close(&format!("crop {crop:?} + bicubic resize"), &ours, &bytes(&format!("crop.{i}")), tol, 0.0);
    }
    let resized = gps_ssl::prior::to_float(images, Device::Cpu, Some(64));
    assert_close("prior input resize 32 → 64 (PIL bicubic)", &resized, &bytes("resize64"), tol, 0.0);
}

// ---------------------------------------------------------------------------------------------
// Parameter sampling in distribution, against torchvision's own samplers over 10,000 draws.

/// Two-sample Kolmogorov-Smirnov statistic.
fn ks(mut a: Vec<f64>, mut b: Vec<f64>) -> f64 {
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (mut i, mut j, mut d) = (0, 0, 0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / a.len() as f64 - j as f64 / b.len() as f64).abs());
    }
    d
}

#[test]
fn crop_and_jitter_sampling_match_torchvisions_samplers() {
    let t = tensors("aug_sampling.safetensors");
    let n = 10_000;
    // KS critical value at α = 0.001 for two samples of 10,000: 1.95·√(2/n) = 0.0276.
    let critical = 1.95 * (2.0 / n as f64).sqrt();
    for (name, scale) in [("rrc_008", (0.08, 1.0)), ("rrc_02", (0.2, 1.0))] {
        let theirs: Vec<Vec<i64>> = (0..n).map(|i| Vec::<i64>::try_from(get(&t, name).get(i as i64).to_kind(Kind::Int64)).unwrap()).collect();
        let mut rng = SplitMix64::new(2024);
        let ours: Vec<CropBox> = (0..n).map(|_| sample::crop_box(32, 32, scale, &mut rng)).collect();
        let area = |h: f64, w: f64| h * w / 1024.0;
        let features: [(&str, Box<dyn Fn(&CropBox) -> f64>, Box<dyn Fn(&Vec<i64>) -> f64>); 4] = [
            ("area", Box::new(|c| area(c.height as f64, c.width as f64)), Box::new(|r| area(r[2] as f64, r[3] as f64))),
            ("log aspect ratio", Box::new(|c| (c.width as f64 / c.height as f64).ln()), Box::new(|r| (r[3] as f64 / r[2] as f64).ln())),
            ("top", Box::new(|c| c.top as f64), Box::new(|r| r[0] as f64)),
            ("left", Box::new(|c| c.left as f64), Box::new(|r| r[1] as f64)),
        ];
        for (what, f_ours, f_theirs) in &features {
            let d = ks(ours.iter().map(f_ours).collect(), theirs.iter().map(f_theirs).collect());
            assert!(d < critical, "{name} {what}: KS distance {d:.4} ≥ {critical:.4} from torchvision's sampler");
        }
    }
    // ColorJitter's op order: 24 permutations, two-sample χ² with 23 degrees of freedom
    // (critical value at α = 0.001: 49.7).
    let code = |o: &[i64]| o.iter().fold(0usize, |acc, &v| acc * 4 + v as usize);
    let mut theirs = HashMap::new();
    for i in 0..n {
        *theirs.entry(code(&Vec::<i64>::try_from(get(&t, "jitter_order").get(i as i64).to_kind(Kind::Int64)).unwrap())).or_insert(0f64) += 1.0;
    }
    let mut ours = HashMap::new();
    let mut rng = SplitMix64::new(7);
    for _ in 0..n {
        let o = sample::jitter_order(&mut rng);
        *ours.entry(code(&o.map(|v| v as i64))).or_insert(0f64) += 1.0;
    }
    assert_eq!(theirs.len(), 24);
    assert_eq!(ours.len(), 24);
    let chi2: f64 = theirs.iter().map(|(k, &a)| (a - ours[k]).powi(2) / (a + ours[k])).sum();
    assert!(chi2 < 49.7, "jitter order: χ² {chi2:.1} against torchvision's randperm(4)");
}

// ---------------------------------------------------------------------------------------------
// A whole GPS-SimCLR training step.

/// Per-view forward passes, NT-Xent with both views keyed by the anchor, the probe on each view's
/// detached features and label, then one LARS step: losses, every parameter and every batch-norm
/// statistic as solo-learn leaves them.
#[test]
fn a_simclr_training_step_matches_solo_learn() {
    let t = tensors("train_step.safetensors");
    let vs = nn::VarStore::new(Device::Cpu);
    let backbone: Box<dyn Backbone> = model::build_backbone(BackboneKind::SmallCnn, &(vs.root() / "backbone"), 3);
    let probe = init::linear(vs.root() / "probe", backbone.out_dim(), 10, true);
    let ctx = MethodContext {
        heads: vs.root() / "method",
        feat_dim: backbone.out_dim(),
        temperature: None,
        backbone: BackboneKind::SmallCnn,
        in_channels: 3,
        stem: gps_ssl::recipe::Stem::Cifar,
        device: Device::Cpu,
        online: &vs,
        channels_last: false,
    };
    let mut method = ssl::build(Method::Simclr, ctx);
    load_formula(&vs);
    let (x1, x2, y1, y2) = (get(&t, "x1"), get(&t, "x2"), get(&t, "y1"), get(&t, "y2"));
    let losses = step::losses(backbone.as_ref(), method.as_mut(), &probe, &[x1, x2], &[y1, y2], None);
    assert_close("NT-Xent loss", &losses.ssl.detach().reshape([1]), get(&t, "nce_loss"), 0.0, 1e-5);
    assert_close("probe loss", &losses.probe.detach().reshape([1]), get(&t, "class_loss"), 0.0, 1e-5);
    let mut opt = Optimizer::new(gps_ssl::config::OptimizerKind::Lars, step::param_groups(&vs, 1e-4, 0.1 / 0.4), 0.9, 0.02);
    // As the trainer steps: gradients straight from autograd into the update (set_to_none).
    opt.backward_step(&(&losses.ssl + &losses.probe), 0.4);
    let mut checked = 0;
    for (name, v) in vs.variables() {
        let v = v.detach().to_kind(Kind::Double);
        if name.contains("running_") {
            assert_close(&format!("{name} after the step"), &v, get(&t, &format!("after.{name}")), 1e-6, 1e-5);
        } else {
            // The update itself (a parameter's value would hide an error in it).
            let (lo, hi) = formula_range(&name, &v.size());
            let delta = (&v - formula_tensor(&name, &v.size(), lo, hi).to_kind(Kind::Double)).flatten(0, -1);
            let n = delta.numel() as i64;
            let picks = Tensor::from_slice(&(0..16).map(|i| ((i as f64) * (n - 1) as f64 / 15.0).round() as i64).collect::<Vec<_>>());
            let norm = delta.norm().reshape([1]);
            // Biases in front of a batch norm get no gradient but rounding noise (~1e-8 here,
            // updates of weights are 1e-3 and more): absolute 1e-6. Relative 2e-4: PyTorch's
            // float32 `norm` of the 4M-element projector matrix is 5.8e-5 low (ours sums in
            // float64), and LARS's unclipped trust ratio scales the whole update by it.
            assert_close(&format!("{name}: |update|"), &norm, get(&t, &format!("update.{name}.norm")), 1e-6, 2e-4);
            let scale = norm.double_value(&[0]);
            assert_close(
                &format!("{name}: sum of the update"),
                &delta.sum(Kind::Double).reshape([1]),
                get(&t, &format!("update.{name}.sum")),
                2e-4 * scale + 1e-6,
                0.0,
            );
            assert_close(&format!("{name}: update entries"), &delta.index_select(0, &picks), get(&t, &format!("update.{name}.picks")), 1e-6, 2e-4);
        }
        checked += 1;
    }
    assert!(checked > 20, "{checked} variables compared");
}

// ---------------------------------------------------------------------------------------------
// The authors' prior: torchvision's ImageNet ResNet-50 on the authors' prior input.

/// The formula weights of torchvision's resnet50 (fc removed) as a safetensors file the prior
/// reads, seeded by `prior.<name>` as `prior_fixtures` seeds them.
fn resnet50_formula_file(dir: &std::path::Path) -> PathBuf {
    let vs = nn::VarStore::new(Device::Cpu);
    let _ = model::build_backbone_with(BackboneKind::Resnet50, &vs.root(), 3, gps_ssl::recipe::Stem::Imagenet);
    let tensors: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(name, v)| {
            let (lo, hi) = formula_range(&name, &v.size());
            let t = formula_tensor(&format!("prior.{name}"), &v.size(), lo, hi);
            (name, t)
        })
        .collect();
    let path = dir.join("rn50.safetensors");
    Tensor::write_safetensors(&tensors, &path).unwrap();
    path
}

#[test]
fn imagenet_resnet50_prior_is_torchvisions_on_the_authors_input() {
    use gps_ssl::prior::Prior;
    use gps_ssl::recipe::{IMAGENET_MEAN, IMAGENET_STD, PriorInput, Stats};
    let fx = tensors("priors.safetensors");
    let dir = tempfile::tempdir().unwrap();
    let weights = resnet50_formula_file(dir.path());
    let stats = |mean: &[f64], std: &[f64]| Stats { mean: mean.to_vec(), std: std.to_vec(), name: "test".into() };
    let cifar = stats(&[0.4914, 0.4822, 0.4465], &[0.2470, 0.2435, 0.2616]);
    let imagenet = stats(&IMAGENET_MEAN, &IMAGENET_STD);
    let one_dim = stats(&[IMAGENET_MEAN.iter().sum::<f64>() / 3.0], &[IMAGENET_STD.iter().sum::<f64>() / 3.0]);
    for (case, images, size, stats) in
        [("cifar32", "rgb.images", 32, cifar), ("imagenet48", "rgb.images", 48, imagenet), ("grey28", "grey.images", 28, one_dim)]
    {
        let images = get(&fx, images);
        let n = images.size()[0];
        let data = gps_ssl::data::Dataset::new(images.shallow_clone(), Tensor::zeros([n], (Kind::Int64, Device::Cpu)), vec!["a".into()]).unwrap();
        let prior =
            gps_ssl::prior::imagenet_resnet::ImagenetResnetPrior::new(gps_ssl::prior::imagenet_resnet::Depth::R50, Some(&weights), PriorInput { size, stats })
                .unwrap();
        let features = prior.embed(&data, Device::Cpu).unwrap();
        assert_close(&format!("resnet50 prior, {case}"), &features, get(&fx, &format!("{case}.features")), 1e-5, 1e-4);
    }
}

#[test]
fn torch_save_checkpoints_read_without_python() {
    use gps_ssl::weights;
    let fx = tensors("priors.safetensors");
    let read = weights::read(&fixture_path("tiny_state_dict.pth")).unwrap();
    let names: Vec<&str> = read.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["conv.weight", "conv.weight_t", "conv.tail", "bn.running_var", "bn.num_batches_tracked", "fc.bias"], "the file's order");
    for (name, t) in &read {
        let expected = get(&fx, &format!("pth.{name}"));
        assert_eq!((t.kind(), t.size()), (expected.kind(), expected.size()), "{name}");
        assert!(t.equal(expected), "{name}: {t:?} vs {expected:?}");
    }
    let legacy = weights::read(&fixture_path("tiny_state_dict_legacy.pth")).unwrap_err();
    assert!(format!("{legacy:#}").contains("scripts/convert_legacy_pth.py"), "{legacy:#}");
    // Cut short: an error naming the file, never a panic or a half-read tensor.
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fixture_path("tiny_state_dict.pth")).unwrap();
    let cut = dir.path().join("cut.pth");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let e = weights::read(&cut).unwrap_err();
    assert!(format!("{e:#}").contains("cut.pth"), "{e:#}");
}

#[test]
fn weights_that_do_not_fit_name_every_tensor_that_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let good = resnet50_formula_file(dir.path());
    let mut tensors = Tensor::read_safetensors(&good).unwrap();
    tensors.retain(|(n, _)| n != "layer1.0.conv1.weight");
    for (n, t) in tensors.iter_mut() {
        if n == "layer4.2.bn3.bias" {
            *t = Tensor::zeros([7], (Kind::Float, Device::Cpu));
        }
    }
    tensors.push(("head.weight".into(), Tensor::zeros([3], (Kind::Float, Device::Cpu))));
    tensors.push(("fc.weight".into(), Tensor::zeros([1000, 2048], (Kind::Float, Device::Cpu))));
    let bad = dir.path().join("bad.safetensors");
    Tensor::write_safetensors(&tensors, &bad).unwrap();
    let e = gps_ssl::prior::imagenet_resnet::load(gps_ssl::prior::imagenet_resnet::Depth::R50, &bad, Device::Cpu).err().expect("does not fit");
    let msg = format!("{e:#}");
    for part in ["missing layer1.0.conv1.weight", "layer4.2.bn3.bias: file [7], model [2048]", "not in the model head.weight", "bad.safetensors"] {
        assert!(msg.contains(part), "{part}: {msg}");
    }
    assert!(!msg.contains("fc.weight"), "torchvision's classifier is expected in the file and left out: {msg}");
}
