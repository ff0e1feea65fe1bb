//! `gps prior inspect` on the MNIST-5k CSV: the oracle is pure, pixels are good but not pure,
//! and bad requests are errors that say what to change.

use std::process::Command;

fn gps(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gps")).args(args).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

fn overall(out: &str) -> f64 {
    let line = out.lines().find(|l| l.starts_with("purity@")).unwrap_or_else(|| panic!("no purity line in:\n{out}"));
    line.split("): ").nth(1).unwrap().split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn inspect_prints_overall_and_per_class_purity() {
    let cache = tempfile::tempdir().unwrap();
    let csv = crate::support::mnist5k();
    let base = ["prior", "inspect", "--dataset", csv.to_str().unwrap(), "--split", "test", "--device", "cpu", "--cache-dir", cache.path().to_str().unwrap()];
    let (ok, out) = gps(&[&base[..], &["--prior", "labels", "--k", "10"]].concat());
    assert!(ok, "{out}");
    assert_eq!(overall(&out), 1.0, "{out}");
    assert!(out.contains("1000 images"), "{out}");
    for digit in 0..10 {
        assert!(out.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == [digit.to_string().as_str(), "1.0000"]), "class {digit} row:\n{out}");
    }
    let (ok, out) = gps(&[&base[..], &["--prior", "pixels", "--metric", "l2", "--limit", "500"]].concat());
    assert!(ok, "{out}");
    let p = overall(&out);
    assert!(p > 0.6 && p < 1.0, "{out}");
    assert!(out.contains("500 images"), "{out}");
}

#[test]
fn inspect_refuses_none_unknown_priors_and_too_large_k() {
    let csv = crate::support::mnist5k();
    let cache = tempfile::tempdir().unwrap();
    let base = ["prior", "inspect", "--dataset", csv.to_str().unwrap(), "--device", "cpu", "--cache-dir", cache.path().to_str().unwrap()];
    let (ok, out) = gps(&[&base[..], &["--prior", "none"]].concat());
    assert!(!ok && out.contains("prior `none`"), "{out}");
    let (ok, out) = gps(&[&base[..], &["--prior", "clip"]].concat());
    assert!(!ok && out.contains("imagenet-mobilenetv2"), "{out}");
    let (ok, out) = gps(&[&base[..], &["--prior", "pixels", "--limit", "20", "--k", "20"]].concat());
    assert!(!ok && out.contains("--k 20"), "{out}");
}
