//! `gps data info` and `gps data download` from the command line.

use std::path::Path;
use std::process::Command;

fn gps(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gps")).args(args).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

#[test]
fn info_describes_both_splits_of_the_mnist_csv() {
    let csv = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist_5k.csv.gz");
    assert!(csv.is_file(), "{} is missing: run scripts/fetch-mnist5k.sh", csv.display());
    let cache = tempfile::tempdir().unwrap();
    let (ok, out) = gps(&["data", "info", csv.to_str().unwrap(), "--cache-dir", cache.path().to_str().unwrap()]);
    assert!(ok, "{out}");
    assert!(out.contains("(mnist-csv)"), "{out}");
    assert!(out.lines().any(|l| l.starts_with("train: 4000 images of 1x28x28")), "{out}");
    assert!(out.lines().any(|l| l.starts_with("test: 1000 images of 1x28x28")), "{out}");
    assert_eq!(out.lines().filter(|l| l.split_whitespace().collect::<Vec<_>>() == ["7", "400"]).count(), 1, "{out}");
}

#[test]
fn bad_format_and_unknown_release_are_named() {
    let (ok, out) = gps(&["data", "info", "x.zip", "--format", "imagefolder"]);
    assert!(!ok && out.contains("image-folder"), "the allowed formats are listed: {out}");
    let (ok, out) = gps(&["data", "download", "svhn", "--dir", "/nonexistent"]);
    assert!(!ok && out.contains("cifar100"), "{out}");
}
