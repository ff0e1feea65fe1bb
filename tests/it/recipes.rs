//! The authors' recipes as switches: candidates with and without the image itself, pretrained
//! backbone weights loaded strictly by name and shape (Table 5), and both recorded in the row.

use gps_ssl::config::{Backbone as BackboneKind, RunSpec};
use gps_ssl::knn::NeighbourTable;
use gps_ssl::model;
use gps_ssl::recipe::Stem;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor, nn};

/// torchvision-named weights of a ResNet-18 with `stem`, each tensor filled with `value`.
fn resnet18_file(dir: &Path, stem: Stem, value: f64, in_channels: i64) -> PathBuf {
    let vs = nn::VarStore::new(Device::Cpu);
    let _ = model::build_backbone_with(BackboneKind::Resnet18, &vs.root(), in_channels, stem);
    let mut tensors: Vec<(String, Tensor)> =
        vs.variables().into_iter().map(|(n, v)| (n, Tensor::full(v.size().as_slice(), value, (Kind::Float, Device::Cpu)))).collect();
    tensors.push(("fc.weight".into(), Tensor::zeros([1000, 512], (Kind::Float, Device::Cpu))));
    tensors.push(("bn1.num_batches_tracked".into(), Tensor::from(5i64)));
    let path = dir.join(format!("r18-{stem:?}.safetensors"));
    Tensor::write_safetensors(&tensors, &path).unwrap();
    path
}

#[test]
fn keeping_the_image_among_its_candidates_is_the_authors_unfiltered_table() {
    let t = NeighbourTable::new(3, 2, vec![1, 2, 0, 2, 0, 1]).unwrap();
    let kept = t.with_self_first().unwrap();
    assert_eq!((kept.fixed_k(), kept.row(0), kept.row(2)), (Some(3), &[0u32, 1, 2][..], &[2u32, 0, 1][..]));
    // k = 1 with the image kept: the positive is always the anchor, i.e. the baseline (as the
    // authors' Barlow Twins / VICReg GPS configs run).
    let mut spec = RunSpec::default();
    spec.dataset = gps_ssl::config::DatasetSpec {
        name: "mnist5k".into(),
        path: crate::support::mnist5k(),
        train_limit: Some(60),
        test_limit: Some(20),
        ..Default::default()
    };
    spec.prior = "pixels".parse().unwrap();
    spec.k = 1;
    spec.exclude_self = false;
    spec.batch_size = 20;
    spec.eval.knn_k = 5;
    let cache = tempfile::tempdir().unwrap();
    spec.cache_dir = cache.path().to_path_buf();
    let prepared = gps_ssl::train::prepare_on(&spec, Device::Cpu).unwrap();
    assert_eq!(prepared.table, NeighbourTable::identity(60));
    spec.k = 3;
    let prepared = gps_ssl::train::prepare_on(&spec, Device::Cpu).unwrap();
    assert!((0..60).all(|i| prepared.table.row(i)[0] == i as u32 && !prepared.table.row(i)[1..].contains(&(i as u32))));
    spec.exclude_self = true;
    let prepared = gps_ssl::train::prepare_on(&spec, Device::Cpu).unwrap();
    assert!((0..60).all(|i| !prepared.table.row(i).contains(&(i as u32))), "the paper's candidates never hold the anchor");
}

#[test]
fn backbone_init_loads_strictly_by_name_and_shape() {
    let dir = tempfile::tempdir().unwrap();
    // ImageNet stem: every tensor of the file lands (fc and the counters are torchvision's extras).
    let file = resnet18_file(dir.path(), Stem::Imagenet, 0.25, 3);
    let vs = nn::VarStore::new(Device::Cpu);
    let _ = model::build_backbone_with(BackboneKind::Resnet18, &(vs.root() / "backbone"), 3, Stem::Imagenet);
    let _probe = nn::linear(vs.root() / "probe", 512, 10, Default::default());
    let recorded = gps_ssl::train::init_backbone(&vs, &file, Stem::Imagenet).unwrap();
    assert!(recorded.contains("r18-Imagenet.safetensors sha256:"), "{recorded}");
    for (name, v) in vs.variables() {
        let all = bool::try_from(v.eq(0.25).all()).unwrap();
        assert_eq!(all, name.starts_with("backbone."), "{name}: only the backbone is initialised from the file");
    }
    // CIFAR stem: the file's 7x7 conv1 has no place (solo-learn's fresh 3x3 conv replaces it).
    let vs = nn::VarStore::new(Device::Cpu);
    let _ = model::build_backbone_with(BackboneKind::Resnet18, &(vs.root() / "backbone"), 3, Stem::Cifar);
    gps_ssl::train::init_backbone(&vs, &file, Stem::Cifar).unwrap();
    let vars = vs.variables();
    assert!(!bool::try_from(vars["backbone.conv1.weight"].eq(0.25).all()).unwrap(), "conv1 keeps its fresh initialisation");
    assert!(bool::try_from(vars["backbone.layer1.0.conv1.weight"].eq(0.25).all()).unwrap());
    // Wrong files name what does not fit.
    let one_channel = resnet18_file(dir.path(), Stem::Cifar, 0.5, 1);
    let vs = nn::VarStore::new(Device::Cpu);
    let _ = model::build_backbone_with(BackboneKind::Resnet18, &(vs.root() / "backbone"), 3, Stem::Cifar);
    let e = format!("{:#}", gps_ssl::train::init_backbone(&vs, &one_channel, Stem::Cifar).unwrap_err());
    assert!(e.contains("backbone.conv1.weight: file [64, 1, 3, 3], model [64, 3, 3, 3]") && e.contains("field `backbone_init`"), "{e}");
    let mut tensors = Tensor::read_safetensors(&file).unwrap();
    tensors.retain(|(n, _)| n != "layer2.0.bn1.running_var");
    tensors.push(("layer9.weight".into(), Tensor::zeros([1], (Kind::Float, Device::Cpu))));
    let broken = dir.path().join("broken.safetensors");
    Tensor::write_safetensors(&tensors, &broken).unwrap();
    let vs = nn::VarStore::new(Device::Cpu);
    let _ = model::build_backbone_with(BackboneKind::Resnet18, &(vs.root() / "backbone"), 3, Stem::Imagenet);
    let e = format!("{:#}", gps_ssl::train::init_backbone(&vs, &broken, Stem::Imagenet).unwrap_err());
    assert!(e.contains("missing backbone.layer2.0.bn1.running_var") && e.contains("not in the model backbone.layer9.weight"), "{e}");
    let e = format!("{:#}", gps_ssl::train::init_backbone(&vs, &dir.path().join("nope.pth"), Stem::Imagenet).unwrap_err());
    assert!(e.contains("nope.pth") && e.contains("does not exist"), "{e}");
}

#[test]
fn a_run_from_pretrained_weights_records_them_in_its_row() {
    let dir = tempfile::tempdir().unwrap();
    let file = resnet18_file(dir.path(), Stem::Cifar, 0.01, 1);
    let spec = format!(
        "dataset: {{name: mnist5k, path: '{}', train_limit: 64, test_limit: 32}}\nbackbone: resnet18\nbackbone_init: '{}'\nprior: none\n\
         augmentation: {{preset: weak}}\nepochs: 1\nbatch_size: 32\ndevice: cpu\neval: {{knn_k: 5}}\noutput_dir: '{}'\ncache_dir: '{}'\n",
        crate::support::mnist5k().display(),
        file.display(),
        dir.path().join("out").display(),
        dir.path().join("cache").display()
    );
    let yaml = dir.path().join("run.yaml");
    std::fs::write(&yaml, spec).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gps")).args(["train", yaml.to_str().unwrap(), "--no-keep"]).output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("backbone_init:"), "{log}");
    let runs = dir.path().join("out/runs");
    let row = std::fs::read_dir(&runs).unwrap().map(|e| e.unwrap().path()).find(|p| p.extension().is_some_and(|e| e == "parquet")).unwrap();
    let frame = gps_ssl::results::row::read_row(&row).unwrap();
    let recorded = frame.column("backbone_init").unwrap().str().unwrap().get(0).unwrap().to_string();
    assert!(recorded.contains("r18-Cifar.safetensors sha256:"), "{recorded}");
}
