//! Sweep files -> runs: the product, zip and exclude, stable ids, and errors that name the file,
//! the line and the field.

use gps_ssl::sweep::{SweepFile, expand};
use std::path::Path;

fn parse(text: &str) -> anyhow::Result<Vec<gps_ssl::sweep::PlannedRun>> {
    let sweep = SweepFile::parse(Path::new("sweeps/t.yaml"), text)?;
    expand(&sweep)
}

fn err(text: &str) -> String {
    format!("{:#}", parse(text).unwrap_err())
}

const GRID: &str = "\
name: demo
base:
  epochs: 3
  dataset: {name: mnist5k, format: mnist-csv, path: data/mnist_5k.csv.gz}
grid:
  method: [simclr, byol]
  prior: [none, pixels]
  optimizer.lr: [0.1, 0.3]
  seed: [0, 1, 2]
";

#[test]
fn product_follows_file_order_and_sets_dotted_fields() {
    let runs = parse(GRID).unwrap();
    assert_eq!(runs.len(), 2 * 2 * 2 * 3);
    // last axis fastest, like nested loops in file order
    assert_eq!(runs[0].label(), "method=simclr prior=none optimizer.lr=0.1 seed=0");
    assert_eq!(runs[1].label(), "method=simclr prior=none optimizer.lr=0.1 seed=1");
    assert_eq!(runs[3].label(), "method=simclr prior=none optimizer.lr=0.3 seed=0");
    assert_eq!(runs[23].label(), "method=byol prior=pixels optimizer.lr=0.3 seed=2");
    assert_eq!(runs[3].spec.optimizer.lr, Some(0.3));
    assert_eq!(runs[3].spec.epochs, 3);
    assert_eq!(runs[3].spec.output_dir, Path::new("results/demo"));
    let ids: std::collections::HashSet<_> = runs.iter().map(|r| r.id.clone()).collect();
    assert_eq!(ids.len(), runs.len(), "ids are unique");
    assert!(runs.iter().all(|r| r.id == r.spec.run_id()));
}

#[test]
fn editing_the_grid_keeps_the_ids_of_unchanged_runs() {
    let before = parse(GRID).unwrap();
    let after = parse(&GRID.replace("seed: [0, 1, 2]", "seed: [0, 1, 2, 3]").replace("[simclr, byol]", "[simclr, byol, vicreg]")).unwrap();
    assert_eq!(after.len(), 3 * 2 * 2 * 4);
    for run in &before {
        let same = after.iter().find(|a| a.label() == run.label()).expect("old run still in the grid");
        assert_eq!(same.id, run.id, "{}", run.label());
    }
    // moving results elsewhere does not change what a run computes
    let moved = parse(&GRID.replace("epochs: 3", "epochs: 3\n  output_dir: elsewhere\n  name: x")).unwrap();
    assert_eq!(moved[5].id, before[5].id);
    assert_eq!(moved[5].spec.output_dir, Path::new("elsewhere"));
}

#[test]
fn zip_moves_axes_together_and_exclude_drops_runs() {
    let text = "\
base: {epochs: 2}
grid:
  prior: [none, pixels]
zip:
  - k: [5, 10, 20]
    eval.knn_k: [10, 20, 40]
exclude:
  - {prior: none, k: [10, 20]}
";
    let runs = parse(text).unwrap();
    // 2 priors x 3 zipped pairs, minus the baseline at k 10 and 20
    assert_eq!(runs.len(), 4);
    let labels: Vec<String> = runs.iter().map(|r| r.label()).collect();
    assert_eq!(labels[0], "prior=none k=5 eval.knn_k=10");
    assert_eq!(labels[3], "prior=pixels k=20 eval.knn_k=40");
    assert!(runs.iter().all(|r| r.spec.eval.knn_k == 2 * r.spec.k));
    assert_eq!(runs.iter().map(|r| r.index).collect::<Vec<_>>(), vec![0, 1, 2, 3]);
    // exclude matches resolved defaults too: method is not in the grid, its default is simclr
    let all_gone = parse("grid: {k: [5, 6]}\nexclude: [{method: simclr}]\n");
    assert!(format!("{:#}", all_gone.unwrap_err()).contains("every run is excluded"));
}

#[test]
fn errors_name_file_line_and_field() {
    let e = err("base:\n  epochs: 3\n  optimizer:\n    lrr: 0.1\ngrid: {k: [5]}\n");
    assert!(e.contains("sweeps/t.yaml, line 4") && e.contains("lrr") && e.contains("`base`"), "{e}");

    let e = err("base: {epochs: 3}\ngrid:\n  k: [5]\n  method: [simclr, simclrr]\n");
    assert!(e.contains("line 4") && e.contains("grid axis `method`") && e.contains("simclrr") && e.contains("barlow-twins"), "{e}");

    let e = err("base: {epochs: 3}\ngrid:\n  optimizer.lrr: [0.1]\n");
    assert!(e.contains("line 3") && e.contains("optimizer.lrr") && e.contains("unknown field `lrr`"), "{e}");

    let e = err("base:\n  epochs: 3\n  dataset: {train_limit: 20}\ngrid:\n  k: [5, 50]\n");
    assert!(e.contains("run 1 (k=50)") && e.contains("train_limit"), "{e}");

    let e = err("base: {}\ngird:\n  k: [5]\n");
    assert!(e.contains("line 2") && e.contains("unknown section `gird`") && e.contains("grid"), "{e}");

    let e = err("grid:\n  k: [5]\nzip:\n  - {k: [1, 2], seed: [1, 2]}\n");
    assert!(e.contains("`k` is varied twice"), "{e}");

    let e = err("grid:\n  k: []\n");
    assert!(e.contains("line 2") && e.contains("`k` has no values"), "{e}");

    let e = err("zip:\n  - {k: [1, 2], seed: [1, 2, 3]}\n");
    assert!(e.contains("equal length"), "{e}");

    let e = err("grid:\n  name: [a, b]\n");
    assert!(e.contains("are the same run"), "{e}");

    let e = err("grid: {k: [5]}\nslurm:\n  partition: gpu\n  time: \"1:00; rm -rf ~\"\n");
    assert!(e.contains("line 4") && e.contains("slurm.time"), "{e}");

    let e = err("grid: {k: [5]}\nslurm: {partitoin: gpu}\n");
    assert!(e.contains("unknown field `partitoin`"), "{e}");

    let e = err("name: \"../../etc\"\ngrid: {k: [5]}\n");
    assert!(e.contains("line 1") && e.contains("may contain only"), "{e}");

    let e = err("grid: {k: [5]\n");
    assert!(e.contains("not valid YAML") && e.contains("line"), "{e}");

    let missing = SweepFile::load(Path::new("sweeps/does-not-exist.yaml")).unwrap_err();
    assert!(format!("{missing:#}").contains("sweeps/does-not-exist.yaml"));
}

#[test]
fn shipped_sweeps_expand() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("sweeps");
    let expect = [("quickstart.yaml", 6), ("paper-cifar10.yaml", 90), ("k-ablation.yaml", 18), ("strength-ablation.yaml", 30)];
    for (file, n) in expect {
        let sweep = SweepFile::load(&root.join(file)).unwrap();
        let runs = expand(&sweep).unwrap_or_else(|e| panic!("{file}: {e:#}"));
        assert_eq!(runs.len(), n, "{file}");
        assert_eq!(runs[0].spec.output_dir, Path::new("results").join(&sweep.name));
    }
}
