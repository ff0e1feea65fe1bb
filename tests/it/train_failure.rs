//! A run whose loss becomes NaN stops as failed with the reason: no result row that looks like
//! success, a failure record naming the step.

use crate::support::{cifar10, gps_output, repo};
use std::path::PathBuf;

#[test]
fn nan_loss_fails_the_run_and_writes_no_row() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("run.yaml");
    std::fs::write(
        &spec,
        format!(
            "dataset: {{path: '{}', train_limit: 256, test_limit: 100}}\nbackbone: small-cnn\nepochs: 2\nbatch_size: 64\n\
             augmentation: {{preset: weak}}\noptimizer: {{kind: sgd, lr: 1.0e+30}}\ndevice: cpu\ncache_dir: '{}'\noutput_dir: '{}'\n",
            cifar10().display(),
            repo().join(".cache").display(),
            dir.path().join("out").display()
        ),
    )
    .unwrap();
    let out = gps_output(dir.path(), &["train", spec.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("the loss became") && stderr.contains("the run failed"), "{stderr}");
    let runs: Vec<PathBuf> = std::fs::read_dir(dir.path().join("out/runs")).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(runs.iter().all(|p| p.extension().is_none_or(|e| e != "parquet")), "no result row: {runs:?}");
    let failure = runs.iter().find(|p| p.to_string_lossy().ends_with(".failed.json")).expect("a failure record");
    let text = std::fs::read_to_string(failure).unwrap();
    assert!(text.contains("the loss became"), "{text}");
}
