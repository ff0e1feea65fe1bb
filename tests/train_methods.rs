//! Each SSL method learns on real images: its loss falls over a few epochs on CIFAR-10 JPEGs,
//! with guided positives from a prior, at the method's own default settings.

use gps_ssl::config::{AugPreset, Backbone, Method, PriorSpec, RunSpec};
use gps_ssl::train::{self, Progress, TrainOptions};
use std::path::PathBuf;
use std::time::Instant;

fn spec(method: Method) -> RunSpec {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut s = RunSpec { backbone: Backbone::SmallCnn, method, epochs: 3, batch_size: 64, prior: PriorSpec::Pixels, k: 5, ..Default::default() };
    s.dataset.path = repo.join("../shared/data/cifar10-jpg.zip");
    s.dataset.train_limit = Some(640);
    s.dataset.test_limit = Some(200);
    s.augmentation.preset = AugPreset::Strong;
    s.optimizer.warmup_epochs = 1;
    s.cache_dir = repo.join(".cache");
    s.device = gps_ssl::config::DeviceChoice::Cpu;
    s
}

fn loss_falls(method: Method) {
    let mut s = spec(method);
    if method == Method::BarlowTwins {
        // Measured: at its batch-256 default (0.3) Barlow's loss rises over the first 30 steps of
        // batch 64 (with LARS and with SGD); at 0.05 it falls.
        s.optimizer.lr = Some(0.05);
    }
    let data = train::prepare_on(&s, tch::Device::Cpu).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = TrainOptions { ckpt_dir: dir.path().to_path_buf(), progress: Progress::Quiet };
    let out = train::run_prepared(&s, &opts, data, tch::Device::Cpu, Instant::now()).unwrap();
    let l = &out.epoch_losses;
    eprintln!("{method:?} losses {l:?}");
    assert_eq!(l.len(), 3);
    assert!(l.iter().all(|x| x.is_finite()), "{method:?}: {l:?}");
    assert!(l[2] < l[0], "{method:?}: loss did not fall: {l:?}");
    assert!(out.positive_purity > 0.0 && out.positive_purity < 1.0, "guided positives from the pixel prior: {}", out.positive_purity);
}

#[test]
fn simclr() {
    loss_falls(Method::Simclr);
}

#[test]
fn byol() {
    loss_falls(Method::Byol);
}

#[test]
fn vicreg() {
    loss_falls(Method::Vicreg);
}

#[test]
fn barlow_twins() {
    loss_falls(Method::BarlowTwins);
}

#[test]
fn nnclr() {
    loss_falls(Method::Nnclr);
}
