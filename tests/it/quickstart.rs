//! The quickstart's claim stays true: on the shipped `sweeps/quickstart.yaml` (its first seed, run
//! as the quickstart runs it, `gps sweep run --linear-eval`), GPS-SimCLR's encoder is better than
//! SimCLR's in the linear evaluation and the k-NN classifier. The direction, not the numbers: the
//! three-seed interval of the README is the quickstart's own output.

use crate::support::{gps_ok, mnist5k, repo};
use polars::prelude::*;

#[test]
fn the_shipped_quickstart_keeps_its_direction() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    let shipped = std::fs::read_to_string(repo().join("sweeps/quickstart.yaml")).unwrap();
    let edits = [
        ("path: data/mnist_5k.csv.gz", format!("path: '{}'", mnist5k().display())),
        ("  seed: [0, 1, 2]", "  seed: [0]".to_string()),
        ("  device: cpu", format!("  device: cpu\n  cache_dir: '{}'", repo().join(".cache").display())),
    ];
    let mut sweep = shipped.clone();
    for (from, to) in &edits {
        assert!(sweep.contains(from), "sweeps/quickstart.yaml no longer has `{from}`: update this test with it");
        sweep = sweep.replacen(from, to, 1);
    }
    std::fs::write(w.join("quickstart.yaml"), sweep).unwrap();
    let out = gps_ok(w, &["sweep", "run", "quickstart.yaml", "--jobs", "2", "--linear-eval"]);
    assert!(out.contains("--metric linear_top1 --compare prior"), "{out}");

    let mut by_prior = std::collections::HashMap::new();
    for entry in std::fs::read_dir(w.join("results/quickstart/runs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "parquet") {
            continue;
        }
        let df = ParquetReader::new(std::fs::File::open(&path).unwrap()).finish().unwrap();
        let text = |c: &str| df.column(c).unwrap().str().unwrap().get(0).unwrap().to_string();
        let number = |c: &str| df.column(c).unwrap().cast(&DataType::Float64).unwrap().f64().unwrap().get(0).unwrap();
        by_prior.insert(text("prior"), (number("linear_top1"), number("knn_top1")));
    }
    let (base, gps) = (by_prior["none"], by_prior["pixels"]);
    assert!(gps.0 > base.0, "linear evaluation: GPS {} vs baseline {}\n{out}", gps.0, base.0);
    assert!(gps.1 > base.1, "k-NN classifier: GPS {} vs baseline {}\n{out}", gps.1, base.1);
}
