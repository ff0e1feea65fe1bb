//! `gps export`: a trained ResNet-18 run's encoder comes out as torchvision's state_dict (names,
//! shapes and dtypes of the committed listing generated from torchvision, batch-norm counters
//! included) with the normalisation it needs, and features computed from the exported file alone
//! equal gps's own features of the run; the k-NN top-1 from them is the run's recorded one, so
//! the export is the final trained model. ResNet-50's state dict is checked by name and shape.
//!
//! With GPS_EXPORT_PARITY_DIR=<dir> the test also leaves the exported files and gps's features
//! of a few test images there, for `scripts/parity/check_export.py` to compare with PyTorch.

use gps_ssl::config::Backbone as BackboneKind;
use gps_ssl::data::Split;
use gps_ssl::model;
use gps_ssl::trained::TrainedRun;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use tch::nn;
use tch::{Device, Kind, Tensor};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn gps(workdir: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_gps")).args(args).current_dir(workdir).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "gps {args:?} failed:\n{text}");
    text
}

/// The committed listing of torchvision's state_dict: name -> (shape, dtype).
fn torchvision_listing(file: &str) -> HashMap<String, (Vec<i64>, String)> {
    let path = repo().join("tests/fixtures/parity").join(file);
    let listing: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    listing
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let shape = e["shape"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
            (e["name"].as_str().unwrap().to_string(), (shape, e["dtype"].as_str().unwrap().to_string()))
        })
        .collect()
}

fn torch_dtype(kind: Kind) -> &'static str {
    match kind {
        Kind::Float => "float32",
        Kind::Int64 => "int64",
        other => panic!("unexpected {other:?}"),
    }
}

fn assert_is_torchvision_state_dict(what: &str, tensors: &[(String, Tensor)], listing: &HashMap<String, (Vec<i64>, String)>) {
    let ours: HashMap<&str, &Tensor> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    assert_eq!(ours.len(), listing.len(), "{what}: {} tensors, torchvision has {}", ours.len(), listing.len());
    for (name, (shape, dtype)) in listing {
        let t = ours.get(name.as_str()).unwrap_or_else(|| panic!("{what}: no `{name}`"));
        assert_eq!((t.size(), torch_dtype(t.kind())), (shape.clone(), dtype.as_str()), "{what}: {name}");
        assert!(t.is_contiguous(), "{what}: {name} is not contiguous");
    }
}

#[test]
fn resnet50_state_dict_is_torchvisions() {
    let vs = nn::VarStore::new(Device::Cpu);
    let _ = model::build_backbone(BackboneKind::Resnet50, &vs.root(), 3);
    let vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    let sd = gps_ssl::export::state_dict(&vars, 7);
    assert_is_torchvision_state_dict("resnet50", &sd, &torchvision_listing("resnet50_state_dict.json"));
    let counter = &sd.iter().find(|(n, _)| n == "layer4.2.bn3.num_batches_tracked").unwrap().1;
    assert_eq!(counter.int64_value(&[]), 14, "two train-mode passes (one per view) per step");
}

#[test]
fn exported_resnet18_loads_as_torchvision_and_gives_gps_features() {
    let cifar = crate::support::cifar10();
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    let spec = format!(
        "dataset: {{name: cifar10, path: '{}', train_limit: 40, test_limit: 20}}\nbackbone: resnet18\naugmentation: {{preset: weak}}\n\
         epochs: 1\nbatch_size: 20\ndevice: cpu\neval: {{knn_k: 5}}\noutput_dir: results/r18\ncache_dir: '{}'\n",
        cifar.display(),
        repo().join(".cache").display()
    );
    std::fs::write(w.join("r18.yaml"), spec).unwrap();
    let out = gps(w, &["train", "r18.yaml"]);
    let run_id = out.split("run ").nth(1).unwrap()[..12].to_string();
    let exported = gps(w, &["export", "results/r18", "--run", &run_id[..6]]);
    assert!(exported.contains("exported the resnet18 encoder"), "{exported}");
    let file = w.join(format!("results/r18/export/{run_id}.safetensors"));
    let meta: Value = serde_json::from_str(&std::fs::read_to_string(file.with_extension("json")).unwrap()).unwrap();

    // Names, shapes, dtypes: torchvision's resnet18 state_dict with the CIFAR stem and no fc.
    let tensors = Tensor::read_safetensors(&file).unwrap();
    assert_is_torchvision_state_dict("exported resnet18", &tensors, &torchvision_listing("resnet18_state_dict.json"));
    let counter = &tensors.iter().find(|(n, _)| n == "bn1.num_batches_tracked").unwrap().1;
    assert_eq!(counter.int64_value(&[]), 2 * 2, "2 steps, two views each");
    assert_eq!((meta["run_id"].as_str(), meta["epoch"].as_i64(), meta["steps"].as_i64()), (Some(run_id.as_str()), Some(1), Some(2)));
    assert_eq!(meta["architecture"]["torchvision"], "resnet18");
    assert_eq!(meta["spec"]["backbone"], "resnet18");
    let stats = |k: &str| -> Vec<f64> { meta["normalization"][k].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect() };
    assert_eq!((stats("mean"), stats("std")), cifar10_stats());

    // Features from the exported file alone (loaded by torchvision name into a fresh network, the
    // parity tests' path, and normalised with the JSON's statistics) against gps's own.
    let vs = nn::VarStore::new(Device::Cpu);
    let net = model::build_backbone(BackboneKind::Resnet18, &vs.root(), 3);
    tch::no_grad(|| {
        let by_name: HashMap<&str, &Tensor> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
        for (name, mut v) in vs.variables() {
            v.copy_(by_name[name.as_str()]);
        }
    });
    let norm = |v: Vec<f64>| Tensor::from_slice(&v.iter().map(|&x| x as f32).collect::<Vec<_>>()).view([1, 3, 1, 1]);
    let (mean, std) = (norm(stats("mean")), norm(stats("std")));
    let from_export = |images: &Tensor| tch::no_grad(|| net.forward_t(&((images.to_kind(Kind::Float) / 255.0 - &mean) / &std), false));

    let run = TrainedRun::load(&w.join("results/r18"), &run_id).unwrap();
    let encoder = run.encoder(Device::Cpu).unwrap();
    let (train, test) = (run.split(Split::Train).unwrap(), run.split(Split::Test).unwrap());
    let (ours_test, theirs_test) = (encoder.features(&test.images), from_export(&test.images));
    let diff = (&ours_test - &theirs_test).abs().max().double_value(&[]);
    assert!(diff <= 1e-5, "features from the export differ from gps's by {diff:e}");
    assert!(ours_test.abs().max().double_value(&[]) > 0.0);

    // The export is the final model: its k-NN top-1 is the one the run recorded.
    let knn = gps_ssl::eval::knn_top1(&from_export(&train.images), &train.labels, &theirs_test, &test.labels, 5, 0.07, train.num_classes());
    let recorded = run.row.column("knn_top1").unwrap().f64().unwrap().get(0).unwrap();
    assert!((knn - recorded).abs() <= 1.0 / test.len() as f64 + 1e-9, "k-NN top-1 {knn} from the export, {recorded} recorded");

    if let Ok(dir) = std::env::var("GPS_EXPORT_PARITY_DIR") {
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(&file, dir.join("encoder.safetensors")).unwrap();
        std::fs::copy(file.with_extension("json"), dir.join("encoder.json")).unwrap();
        Tensor::write_safetensors(&[("images", &test.images), ("features", &ours_test)], dir.join("gps_features.safetensors")).unwrap();
        eprintln!("wrote the export and gps's features of {} test images to {}", test.len(), dir.display());
    }
}

fn cifar10_stats() -> (Vec<f64>, Vec<f64>) {
    let dataset = gps_ssl::config::DatasetSpec { name: "cifar10".into(), ..Default::default() };
    let s = gps_ssl::recipe::fixed_normalization(&dataset, 3).unwrap().unwrap();
    (s.mean, s.std)
}
