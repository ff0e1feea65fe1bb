//! Bad input, tried as a new user (or a careless script) would: a table of malformed sweep files,
//! run specs and `--set` overrides, each of which must be refused with an error that names the
//! field (and in a sweep file the file and the line); and a seeded mutation test of the shipped
//! sweeps and the README's run spec, where no input may panic, hang, or be accepted with a
//! meaning other than what the text says.

use gps_ssl::config::RunSpec;
use gps_ssl::knn::SplitMix64;
use gps_ssl::sweep::cli::TrainArgs;
use gps_ssl::sweep::{PlannedRun, SweepFile, expand};
use serde_json::Value;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

const FILE: &str = "sweeps/t.yaml";

fn sweep(text: &str) -> anyhow::Result<(SweepFile, Vec<PlannedRun>)> {
    let sweep = SweepFile::parse(Path::new(FILE), text)?;
    let runs = expand(&sweep)?;
    Ok((sweep, runs))
}

/// Sweep files and the fragments their error must contain (besides the file name).
fn sweep_cases() -> Vec<(String, Vec<&'static str>)> {
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x]\n");
    for (name, prev) in [("b", "a"), ("c", "b"), ("d", "c"), ("e", "d"), ("f", "e"), ("g", "f"), ("h", "g")] {
        bomb.push_str(&format!("{name}: &{name} [{}]\n", vec![format!("*{prev}"); 9].join(", ")));
    }
    bomb.push_str("grid: {k: [5]}\n");
    let seeds: Vec<String> = (0..10_000).map(|s| s.to_string()).collect();
    let ks: Vec<String> = (1..=1000).map(|k| k.to_string()).collect();
    let huge = format!("grid:\n  seed: [{}]\n  k: [{}]\n", seeds.join(", "), ks.join(", "));
    let mut cases: Vec<(String, Vec<&'static str>)> = vec![
        // non-finite numbers: never "not set"
        ("base: {optimizer: {lr: .nan}}\n".into(), vec!["line 1", "base.optimizer.lr", ".nan is not a finite number"]),
        ("\u{feff}base:\n  optimizer:\n    lr: .nan\n".into(), vec!["line 3", "base.optimizer.lr", ".nan"]),
        ("base:\n  epochs: 2\n  optimizer:\n    lr: .inf\n".into(), vec!["line 4", "base.optimizer.lr", ".inf"]),
        ("base:\n  augmentation:\n    strength: -.inf\n".into(), vec!["line 3", "base.augmentation.strength", "-.inf"]),
        ("base:\n  temperature: .NaN\n".into(), vec!["line 2", "base.temperature", ".nan"]),
        ("base: {optimizer: {momentum: .nan}}\n".into(), vec!["base.optimizer.momentum", ".nan"]),
        ("base: {eval: {knn_temperature: .inf}}\n".into(), vec!["base.eval.knn_temperature", ".inf"]),
        ("base: {optimizer: {weight_decay: -.inf}}\n".into(), vec!["base.optimizer.weight_decay"]),
        ("grid:\n  k: [5]\n  optimizer.lr: [0.1, .nan]\n".into(), vec!["line 3", "grid axis `optimizer.lr`", ".nan"]),
        ("grid:\n  temperature: [.inf, 0.2]\n".into(), vec!["line 2", "grid axis `temperature`", ".inf"]),
        ("grid:\n  augmentation.strength: .nan\n".into(), vec!["line 2", "augmentation.strength", ".nan"]),
        ("zip:\n  - k: [5, 10]\n    temperature: [.nan, 0.1]\n".into(), vec!["line 3", "zip axis `temperature`", ".nan"]),
        ("grid: {k: [5]}\nexclude: [{temperature: .nan}]\n".into(), vec!["line 2", "exclude", ".nan"]),
        ("grid: {k: [5]}\nslurm:\n  cpus: .nan\n".into(), vec!["line 3", "slurm.cpus", ".nan"]),
        // a list where a mapping belongs: never read by position
        ("base:\n  optimizer: [sgd, 0.1]\n".into(), vec!["line 2", "field `optimizer`", "expected a mapping", "got a list"]),
        ("base:\n  dataset: [cifar10, image-folder, data/x.zip]\n".into(), vec!["line 2", "field `dataset`", "expected a mapping"]),
        ("grid: {k: [5]}\nslurm: [gpu]\n".into(), vec!["line 2", "field `slurm`", "expected a mapping"]),
        ("base: {eval: [5, 0.1, 1]}\n".into(), vec!["field `eval`", "expected a mapping"]),
        ("base: {augmentation: [weak]}\n".into(), vec!["field `augmentation`", "expected a mapping"]),
        ("base: {prior_options: [64]}\n".into(), vec!["field `prior_options`", "expected a mapping"]),
        ("grid:\n  optimizer: [[sgd, 0.1]]\n".into(), vec!["line 2", "grid axis `optimizer`", "expected a mapping"]),
        ("base: {optimizer: sgd}\n".into(), vec!["field `optimizer`", "got a string"]),
        ("base: {dataset: null}\n".into(), vec!["field `dataset`", "got nothing"]),
        ("base: [k, 5]\n".into(), vec!["`base` must be a run spec"]),
        // exclude rules that could never match
        ("grid: {k: [5]}\nexclude: [{methd: simclr}]\n".into(), vec!["line 2", "`methd`", "not a run field", "did you mean `method`"]),
        ("grid: {k: [5]}\nexclude:\n  - {method: simclrr}\n".into(), vec!["line 3", "simclrr", "can never match"]),
        ("grid: {k: [5]}\nexclude: [{optimizer: {kind: sgd}}]\n".into(), vec!["`optimizer`", "not a run field"]),
        ("grid: {k: [5]}\nexclude: [{k: [5, x]}]\n".into(), vec!["`k`", "value x can never match"]),
        ("grid: {k: [5]}\nexclude: [{qqqqqqqq.zzzz: 1}]\n".into(), vec!["`qqqqqqqq.zzzz`", "the fields are", "optimizer.lr"]),
        ("grid: {k: [5]}\nexclude: [5]\n".into(), vec!["each `exclude` rule"]),
        ("grid: {k: [5]}\nexclude: [{}]\n".into(), vec!["each `exclude` rule"]),
        ("grid: {k: [5, 6]}\nexclude: [{method: simclr}]\n".into(), vec!["every run is excluded"]),
        // grids
        (huge, vec!["10000000 runs", "seed 10000 × k 1000", "--max-runs 10000000"]),
        ("grid:\n  seed: [0..9999]\n".into(), vec!["line 2", "grid axis `seed`", "0..9999"]),
        ("gird: {k: [5]}\n".into(), vec!["line 1", "unknown section `gird`"]),
        ("grid:\n  k: []\n".into(), vec!["line 2", "`k` has no values"]),
        ("grid: [k, 5]\n".into(), vec!["`grid` must map"]),
        ("grid: {k: [5]}\nzip: [{k: [1]}]\n".into(), vec!["`k` is varied twice"]),
        ("zip: [{k: [1, 2], seed: [1]}]\n".into(), vec!["equal length"]),
        ("zip: 5\n".into(), vec!["`zip` is a list of groups"]),
        ("zip: [{}]\n".into(), vec!["empty `zip` group"]),
        ("grid: {name: [a, b]}\n".into(), vec!["are the same run"]),
        ("grid:\n  k: [0]\n".into(), vec!["line 2", "`k`", "at least 1"]),
        ("grid:\n  method: [simclrr]\n".into(), vec!["line 2", "simclrr", "barlow-twins"]),
        ("grid:\n  optimizer.lrr: [0.1]\n".into(), vec!["line 2", "unknown field `lrr`"]),
        ("grid:\n  k.x: [1]\n".into(), vec!["line 2", "grid axis `k.x`", "field `k`"]),
        ("base: {k: 5}\ngrid:\n  k.x: [1]\n".into(), vec!["line 3", "`k` is a single value"]),
        ("grid:\n  \"a..b\": [1]\n".into(), vec!["not a valid field path"]),
        ("grid:\n  seed: {a: 1}\n".into(), vec!["line 2", "`seed`"]),
        // values a run cannot take
        ("base: {epochs: 0}\n".into(), vec!["`epochs`", "at least 1"]),
        ("base: {batch_size: 1}\n".into(), vec!["`batch_size`"]),
        ("base: {eval: {knn_k: 0}}\n".into(), vec!["`eval.knn_k`", "at least 1"]),
        ("base: {eval: {every_epochs: 0}}\n".into(), vec!["`eval.every_epochs`"]),
        ("base: {dataset: {train_limit: 100}, eval: {knn_k: 200}}\n".into(), vec!["`eval.knn_k`", "200", "train_limit"]),
        ("base: {dataset: {train_limit: 3}}\n".into(), vec!["`dataset.train_limit`"]),
        ("base: {dataset: {test_limit: 0}}\n".into(), vec!["`dataset.test_limit`"]),
        ("base: {optimizer: {momentum: 1.5}}\n".into(), vec!["`optimizer.momentum`", "[0, 1)"]),
        ("base: {optimizer: {lr: -0.1}}\n".into(), vec!["`optimizer.lr`", "positive"]),
        ("base: {optimizer: {lr: 0}}\n".into(), vec!["`optimizer.lr`", "positive"]),
        ("base: {optimizer: {weight_decay: -1}}\n".into(), vec!["`optimizer.weight_decay`"]),
        ("base: {optimizer: {eta: 0}}\n".into(), vec!["`optimizer.eta`"]),
        ("base: {optimizer: {classifier_lr: -1}}\n".into(), vec!["`optimizer.classifier_lr`"]),
        ("base: {temperature: 0}\n".into(), vec!["`temperature`", "positive"]),
        ("base: {eval: {knn_temperature: -1}}\n".into(), vec!["`eval.knn_temperature`"]),
        ("base: {augmentation: {strength: 2}}\n".into(), vec!["`augmentation.strength`", "[0, 1]"]),
        ("base: {augmentation: {preset: strongg}}\n".into(), vec!["strongg", "symmetric_weak"]),
        ("base: {prior: clip}\n".into(), vec!["`prior`", "unknown prior `clip`"]),
        ("base: {prior: \"torchscript:\"}\n".into(), vec!["`prior`", "needs a file"]),
        ("base: {prior_options: {input_size: 100000}}\n".into(), vec!["`prior_options.input_size`", "1024"]),
        ("base: {prior_options: {input_size: 0}}\n".into(), vec!["`prior_options.input_size`"]),
        ("base: {prior_options: {autoencoder_dim: 0}}\n".into(), vec!["`prior_options.autoencoder_dim`"]),
        ("base: {k: -5}\n".into(), vec!["field `k`", "-5"]),
        ("base: {k: 5.5}\n".into(), vec!["field `k`", "5.5"]),
        ("base: {epochs: 1e3}\n".into(), vec!["field `epochs`"]),
        ("base: {seed: five}\n".into(), vec!["field `seed`", "five"]),
        ("base: {device: gpu}\n".into(), vec!["field `device`", "gpu", "cuda"]),
        ("base: {channels_last: \"yes\"}\n".into(), vec!["field `channels_last`"]),
        ("base: {checkpoint_every: -1}\n".into(), vec!["field `checkpoint_every`"]),
        ("base: {name: [a]}\n".into(), vec!["field `name`"]),
        ("base: {dataset: {path: [a, b]}}\n".into(), vec!["field `dataset.path`"]),
        ("base: {dataset: {format: zip}}\n".into(), vec!["field `dataset.format`", "image-folder"]),
        ("base: {epoch: 3}\n".into(), vec!["unknown field `epoch`", "epochs"]),
        ("base: {k: !custom 5}\n".into(), vec!["base.k", "tags"]),
        // YAML itself
        ("grid: {k: [5]\n".into(), vec!["not valid YAML", "line"]),
        ("grid: {k: [5]}\ngrid: {k: [6]}\n".into(), vec!["line 2", "key `grid` appears twice"]),
        ("name: a\nbase:\n  k: 5\n  epochs: 3\n  k: 6\n".into(), vec!["line 5", "key `k` appears twice"]),
        ("base: {optimizer: {kind: sgd, kind: lars}}\n".into(), vec!["line 1", "key `kind` appears twice"]),
        (bomb, vec!["line 2", "repetition limit exceeded"]),
        ("grid: {k: [5]}\n---\ngrid: {k: [6]}\n".into(), vec!["line 2", "more than one YAML document"]),
        ("- a\n- b\n".into(), vec!["a sweep file is a mapping"]),
        ("just text\n".into(), vec!["a sweep file is a mapping"]),
        // names
        (format!("name: {}\ngrid: {{k: [5]}}\n", "a".repeat(300)), vec!["line 1", "300 characters", "more than 100"]),
        ("name: \"a b\"\n".into(), vec!["line 1", "may contain only"]),
        ("name: .hidden\n".into(), vec!["may not start with `.`"]),
        ("name: \"../../etc\"\n".into(), vec!["may contain only"]),
        ("name: [a]\n".into(), vec!["line 1", "`name` must be a string"]),
        ("name: \"\"\n".into(), vec!["line 1", "sweep name \"\""]),
        // slurm: each error at the field's own line
        ("grid: {k: [5]}\nslurm:\n  partition: gpu\n  cpus: -1\n".into(), vec!["line 4", "slurm.cpus", "-1"]),
        ("grid: {k: [5]}\nslurm:\n  partition: gpu\n  time: 3600\n".into(), vec!["line 4", "slurm.time", "quoted SLURM time"]),
        ("grid: {k: [5]}\nslurm:\n  partition: gpu\n  signal_before: soon\n".into(), vec!["line 4", "slurm.signal_before", "soon"]),
        ("grid: {k: [5]}\nslurm:\n  signal_before: 70000\n".into(), vec!["line 3", "slurm.signal_before", "65535"]),
        ("grid: {k: [5]}\nslurm:\n  time: \"1:00; rm -rf ~\"\n".into(), vec!["line 3", "slurm.time"]),
        ("grid: {k: [5]}\nslurm: {partitoin: gpu}\n".into(), vec!["unknown field `partitoin`"]),
        ("grid: {k: [5]}\nslurm:\n  time: \"00:10:00\"\n  extra:\n    - --comment=ok\n    - --wra=true\n".into(), vec!["line 6", "`--wrap`"]),
        ("grid: {k: [5]}\nslurm: {extra: --comment=x}\n".into(), vec!["slurm.extra"]),
        ("grid: {k: [5]}\nslurm: {throttle: 0}\n".into(), vec!["slurm.throttle"]),
        ("grid: {k: [5]}\nslurm: {mem: 4GB}\n".into(), vec!["slurm.mem"]),
        ("grid: {k: [5]}\nslurm: {gres: \"gpu:1 && id\"}\n".into(), vec!["slurm.gres"]),
        ("grid: {k: [5]}\nslurm: {partition: \"gpu\\n#SBATCH --wrap=id\"}\n".into(), vec!["slurm.partition"]),
    ];
    // slurm.extra: abbreviations sbatch would take for a directive gps writes or refuses
    let extra: [(&str, &[&'static str]); 33] = [
        ("--wra=true", &["`--wra`", "`--wrap`", "cannot be set"]),
        ("--arr=0-3", &["`--arr`", "`--array`", "set by gps itself"]),
        ("--outp=x.log", &["`--output`", "set by gps itself"]),
        ("--err=x.log", &["`--error`", "set by gps itself"]),
        ("--chd=/", &["`--chdir`", "set by gps itself"]),
        ("--dep=afterok:1", &["`--dependency`", "set by gps itself"]),
        ("--sig=B:USR1@60", &["`--signal`", "set by gps itself"]),
        ("--no-req", &["`--no-requeue`", "set by gps itself"]),
        ("--open=truncate", &["`--open-mode`", "set by gps itself"]),
        ("--job-nam=x", &["`--job-name`", "set by gps itself"]),
        ("--requeue", &["`--requeue`", "set by gps itself"]),
        ("--parsable", &["`--parsable`", "set by gps itself"]),
        ("--wrap=true", &["`--wrap`", "cannot be set"]),
        ("--export-file=x", &["`--export-file`", "cannot be set"]),
        ("--export=ALL", &["`--export`", "cannot be set"]),
        ("--input=x", &["`--input`", "cannot be set"]),
        ("--test-only", &["`--test-only`", "cannot be set"]),
        ("--wait", &["`--wait`", "cannot be set"]),
        ("--clusters=a", &["`--clusters`", "cannot be set"]),
        ("--nodes=2", &["`--nodes`", "cannot be set"]),
        ("--ntasks=4", &["`--ntasks`", "cannot be set"]),
        ("--uid=0", &["`--uid`", "cannot be set"]),
        ("--partition=x", &["`--partition`", "set `slurm.partition`"]),
        ("--mem=4G", &["`--mem`", "set `slurm.mem`"]),
        ("--cpus-per-task=2", &["`--cpus-per-task`", "set `slurm.cpus`"]),
        ("--ti=10", &["`--ti`", "ambiguous", "--time-min"]),
        ("--con=x", &["`--con`", "ambiguous", "--constraint"]),
        ("--foo", &["`--foo` is not an sbatch option", "constraint"]),
        ("--comment=a b", &["is not allowed"]),
        ("-w node1", &["does not start with `--`"]),
        ("--constraint=", &["is not allowed"]),
        ("--Constraint=x", &["is not allowed"]),
        ("--comment=$(id)", &["is not allowed"]),
    ];
    for (directive, fragments) in extra {
        let mut expect = vec!["line 3", "slurm.extra"];
        expect.extend_from_slice(fragments);
        cases.push((format!("grid: {{k: [5]}}\nslurm:\n  extra: [\"{directive}\"]\n"), expect));
    }
    cases
}

#[test]
fn malformed_sweep_files_are_refused_naming_file_line_and_field() {
    let cases = sweep_cases();
    assert!(cases.len() >= 130, "{} cases", cases.len());
    let mut failures = Vec::new();
    for (text, fragments) in &cases {
        let outcome = catch_unwind(AssertUnwindSafe(|| sweep(text).map(|(_, runs)| runs.len()).map_err(|e| format!("{e:#}"))));
        match outcome {
            Err(_) => failures.push(format!("PANIC on:\n{text}")),
            Ok(Ok(n)) => failures.push(format!("ACCEPTED ({n} runs):\n{text}")),
            Ok(Err(e)) => {
                let missing: Vec<&&str> = fragments.iter().chain(&[FILE]).filter(|f| !e.contains(**f)).collect();
                if !missing.is_empty() {
                    failures.push(format!("{text}-> {e}\n   missing {missing:?}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} of {} cases:\n\n{}", failures.len(), cases.len(), failures.join("\n\n"));
}

fn train_args(dir: &Path, text: &str, set: &[&str]) -> TrainArgs {
    let spec = dir.join("run.yaml");
    std::fs::write(&spec, text).unwrap();
    TrainArgs { spec, set: set.iter().map(|s| s.to_string()).collect(), prepare_only: false, keep: Default::default() }
}

#[test]
fn malformed_run_specs_and_overrides_are_refused_naming_the_field() {
    // (spec file, --set overrides, fragments)
    let cases: Vec<(&str, Vec<&str>, Vec<&str>)> = vec![
        ("optimizer: {lr: .nan}\n", vec![], vec!["field `optimizer.lr`", ".nan"]),
        ("augmentation: {strength: .inf}\n", vec![], vec!["field `augmentation.strength`", ".inf"]),
        ("temperature: -.inf\n", vec![], vec!["field `temperature`", "-.inf"]),
        ("optimizer: {momentum: .nan}\n", vec![], vec!["field `optimizer.momentum`"]),
        ("optimizer: [sgd, 0.1]\n", vec![], vec!["field `optimizer`", "expected a mapping"]),
        ("dataset: [cifar10, image-folder, data/x.zip]\n", vec![], vec!["field `dataset`", "expected a mapping"]),
        ("eval: [1, 2]\n", vec![], vec!["field `eval`", "expected a mapping"]),
        ("[k, 5]\n", vec![], vec!["expected a mapping"]),
        ("k: 5\nk: 6\n", vec![], vec!["line 2", "key `k` appears twice"]),
        ("k: 5\n---\nk: 6\n", vec![], vec!["more than one YAML document"]),
        ("k: !x 5\n", vec![], vec!["field `k`", "tags"]),
        ("epoch: 3\n", vec![], vec!["unknown field `epoch`"]),
        ("k: 0\n", vec![], vec!["field `k`"]),
        ("eval: {knn_k: 0}\n", vec![], vec!["field `eval.knn_k`"]),
        ("dataset: {train_limit: 50}\neval: {knn_k: 51}\n", vec![], vec!["field `eval.knn_k`", "51"]),
        ("optimizer: {kind: sgd\n", vec![], vec!["not valid YAML"]),
        ("k: 5\n", vec!["optimizer.lr=.nan"], vec!["--set optimizer.lr=.nan", ".nan is not a finite number"]),
        ("k: 5\n", vec!["optimizer.lr=.inf"], vec!["--set optimizer.lr=.inf", ".inf"]),
        ("k: 5\n", vec!["augmentation.strength=-.inf"], vec!["--set augmentation.strength=-.inf"]),
        ("k: 5\n", vec!["temperature=.NAN"], vec!["--set temperature=.NAN"]),
        ("k: 5\n", vec!["optimizer=[sgd, 0.1]"], vec!["field `optimizer`", "expected a mapping"]),
        ("k: 5\n", vec!["dataset=[a, b]"], vec!["field `dataset`", "expected a mapping"]),
        ("k: 5\n", vec!["optimizer.lr="], vec!["no value after `=`", "optimizer.lr=null"]),
        ("k: 5\n", vec!["k.x=1"], vec!["`k` is a single value"]),
        ("k: 5\n", vec!["k"], vec!["expected FIELD=VALUE"]),
        ("k: 5\n", vec!["=5"], vec!["not a valid field path"]),
        ("k: 5\n", vec!["a..b=1"], vec!["not a valid field path"]),
        ("k: 5\n", vec!["epochs=0"], vec!["field `epochs`"]),
        ("k: 5\n", vec!["optimizer.lr=[0.1"], vec!["--set optimizer.lr=[0.1", "not a YAML value"]),
        ("k: 5\n", vec!["optimizer.lrr=0.1"], vec!["unknown field `lrr`"]),
        ("k: 5\n", vec!["eval.knn_k=-1"], vec!["field `eval.knn_k`"]),
        ("k: 5\n", vec!["seed=.inf"], vec!["--set seed=.inf"]),
        ("k: 5\n", vec!["prior=clip"], vec!["unknown prior `clip`"]),
        ("k: 5\n", vec!["k=[5, 10]"], vec!["field `k`"]),
        ("k: 5\n", vec!["name=x\n---\ny"], vec!["more than one YAML document"]),
        // Which positives: each new field named, nothing silently ignored.
        ("prior: pixels\nneighbours: {mode: radius, tau: 0}\n", vec![], vec!["field `neighbours.tau`", "positive distance"]),
        ("prior: pixels\nneighbours: {mode: radius, tau: -1.5}\n", vec![], vec!["field `neighbours.tau`"]),
        ("prior: pixels\nneighbours: {mode: radius, tau: .nan}\n", vec![], vec!["field `neighbours.tau`", ".nan"]),
        ("prior: pixels\nneighbours: {mode: radius}\n", vec![], vec!["field `neighbours.tau`", "adaptive"]),
        ("prior: pixels\nneighbours: {mode: radius, tau: 1.0, adaptive: mean}\n", vec![], vec!["neighbours.tau", "neighbours.adaptive", "not both"]),
        ("prior: pixels\nneighbours: {tau: 1.0}\n", vec![], vec!["field `neighbours.tau`", "mode: radius"]),
        ("prior: pixels\nneighbours: {mode: radius, adaptive: median}\n", vec![], vec!["neighbours.adaptive", "mean+std"]),
        ("prior: pixels\nneighbours: {mode: radius, adaptive: mean, adaptive_k: 0}\n", vec![], vec!["field `neighbours.adaptive_k`"]),
        ("prior: none\nneighbours: {mode: radius, tau: 1.0}\n", vec![], vec!["field `neighbours.mode`", "prior `none`"]),
        ("prior: pixels\nmethod: vicreg\npositives: 2\n", vec![], vec!["field `positives`", "simclr and byol", "vicreg"]),
        ("prior: pixels\nmethod: nnclr\npositives: 2\n", vec![], vec!["field `positives`", "nnclr"]),
        ("prior: pixels\nk: 2\npositives: 3\n", vec![], vec!["field `positives`", "num_nns_choice >= num_nns"]),
        ("prior: none\npositives: 2\n", vec![], vec!["field `positives`", "prior `none`"]),
        ("prior: pixels\npositives: 0\n", vec![], vec!["field `positives`"]),
        ("prior: none\nprior_refresh: {every_epochs: 2}\n", vec![], vec!["field `prior_refresh.every_epochs`", "prior `none`"]),
        ("prior: pixels\nepochs: 4\nprior_refresh: {every_epochs: 4}\n", vec![], vec!["field `prior_refresh.every_epochs`", "never happen"]),
        ("prior: pixels\nepochs: 4\nprior_refresh: {every_epochs: 2, first: authors}\n", vec![], vec!["field `prior_refresh.every_epochs`", "epoch 4"]),
        ("prior: pixels\nprior_refresh: {every_epochs: 2, features: head}\n", vec![], vec!["prior_refresh.features", "projector"]),
        ("k: 5\n", vec!["prior='run:'"], vec!["needs a file after the colon"]),
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for (text, set, fragments) in &cases {
        let args = train_args(dir.path(), text, set);
        let via_train = catch_unwind(AssertUnwindSafe(|| args.resolve().map_err(|e| format!("{e:#}"))));
        // The library's own reader agrees on the file itself.
        let via_lib = catch_unwind(AssertUnwindSafe(|| RunSpec::from_yaml(text).map_err(|e| format!("{e:#}"))));
        match via_train {
            Err(_) => failures.push(format!("PANIC on {text:?} {set:?}")),
            Ok(Ok(_)) => failures.push(format!("ACCEPTED {text:?} {set:?}")),
            Ok(Err(e)) => {
                let missing: Vec<&&str> = fragments.iter().filter(|f| !e.contains(**f)).collect();
                if !missing.is_empty() || !e.contains("run.yaml") {
                    failures.push(format!("{text:?} {set:?} -> {e}\n   missing {missing:?} or the file name"));
                }
            }
        }
        if set.is_empty() && !matches!(via_lib, Ok(Err(_))) {
            failures.push(format!("RunSpec::from_yaml did not refuse {text:?}"));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases:\n\n{}", failures.len(), cases.len(), failures.join("\n\n"));
}

#[test]
fn what_yaml_allows_is_accepted_with_its_meaning() {
    let plain = "name: t\nbase: {optimizer: {kind: sgd, lr: 0.1}}\ngrid:\n  k: [5, 10]\n";
    let (_, runs) = sweep(plain).unwrap();
    let (_, with_bom) = sweep(&format!("\u{feff}{plain}")).unwrap();
    assert_eq!(runs.iter().map(|r| &r.id).collect::<Vec<_>>(), with_bom.iter().map(|r| &r.id).collect::<Vec<_>>());
    assert_eq!(runs[0].spec.optimizer.lr, Some(0.1));
    assert_eq!(RunSpec::from_yaml("\u{feff}k: 7\n").unwrap().k, 7);
    // a raised limit expands what the default refuses
    let s = SweepFile::parse(Path::new(FILE), "grid:\n  seed: [0, 1, 2]\n  k: [5, 6]\n").unwrap();
    assert!(format!("{:#}", gps_ssl::sweep::expand_up_to(&s, 5).unwrap_err()).contains("--max-runs 6"));
    assert_eq!(gps_ssl::sweep::expand_up_to(&s, 6).unwrap().len(), 6);
    // abbreviations of allowed directives are written in full
    let (s, _) = sweep("grid: {k: [5]}\nslurm:\n  extra: [\"--mail-t=END,FAIL\", \"--constraint=a100|h100\", --exclusive, --nice]\n").unwrap();
    assert_eq!(s.slurm.directives().unwrap(), ["--mail-type=END,FAIL", "--constraint=a100|h100", "--exclusive", "--nice"]);
}

/// The CLI end of the same rules: `gps train --set`, a huge grid and `--max-runs`, and a k-NN
/// classifier asking for more neighbours than the training set has (refused before training).
#[test]
fn the_cli_refuses_and_names_the_fix() {
    let gps = |dir: &Path, args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_gps")).args(args).current_dir(dir).output().unwrap();
        (out.status.code(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    };
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path();
    std::fs::write(w.join("run.yaml"), "epochs: 1\n").unwrap();
    let (code, out) = gps(w, &["train", "run.yaml", "--set", "optimizer.lr=.nan"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("optimizer.lr") && out.contains(".nan is not a finite number"), "{out}");

    let seeds: Vec<String> = (0..10_000).map(|s| s.to_string()).collect();
    let ks: Vec<String> = (1..=1000).map(|k| k.to_string()).collect();
    std::fs::write(w.join("huge.yaml"), format!("grid:\n  seed: [{}]\n  k: [{}]\n", seeds.join(", "), ks.join(", "))).unwrap();
    for command in ["expand", "submit", "status", "run"] {
        let (code, out) = gps(w, &["sweep", command, "huge.yaml"]);
        assert_eq!(code, Some(1), "{command}: {out}");
        assert!(out.contains("huge.yaml, line 1: the grid has 10000000 runs") && out.contains("--max-runs 10000000"), "{command}: {out}");
    }
    std::fs::write(w.join("six.yaml"), "grid:\n  seed: [0, 1, 2]\n  k: [5, 6]\n").unwrap();
    let (code, out) = gps(w, &["sweep", "expand", "six.yaml", "--max-runs", "5"]);
    assert!(code == Some(1) && out.contains("6 runs"), "{out}");
    let (code, out) = gps(w, &["sweep", "expand", "six.yaml", "--max-runs", "6"]);
    assert!(code == Some(0) && out.lines().count() == 7, "{out}");
    let (code, out) = gps(w, &["sweep", "run", "six.yaml", "--linear-eval", "--no-keep"]);
    assert!(code == Some(2) && out.contains("'--linear-eval' cannot be used with '--no-keep'"), "{out}");
    assert!(!w.join("results").exists(), "nothing ran: {out}");

    let data = crate::support::mnist5k();
    let spec = format!(
        "dataset: {{name: mnist5k, format: mnist-csv, path: \"{}\", test_limit: 100}}\nbackbone: small-cnn\ndevice: cpu\neval: {{knn_k: 100000}}\n",
        data.display()
    );
    std::fs::write(w.join("knn.yaml"), spec).unwrap();
    let (code, out) = gps(w, &["train", "knn.yaml", "--prepare-only"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("field `eval.knn_k`: 100000 neighbours asked but the training set has 4000 images"), "{out}");
}

// ---- randomised: mutations of the shipped inputs ----

/// The inputs the project ships: sweeps, committed results' sweeps, and the README's run spec.
fn shipped() -> Vec<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for dir in ["sweeps", "results"] {
        for entry in walkdir::WalkDir::new(root.join(dir)).sort_by_file_name() {
            let path = entry.unwrap().into_path();
            if path.extension().is_some_and(|e| e == "yaml") {
                let text = std::fs::read_to_string(&path).unwrap();
                out.push((path, text));
            }
        }
    }
    out
}

fn readme_run_spec() -> String {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme
        .find("All\nfields with their defaults:\n\n```yaml\n")
        .or_else(|| readme.find("fields with their defaults:\n\n```yaml\n"))
        .expect("README run spec block");
    let body = &readme[start..];
    let body = &body[body.find("```yaml\n").unwrap() + 8..];
    body[..body.find("```").unwrap()].to_string()
}

#[test]
fn readme_run_spec_is_the_defaults_and_shipped_sweeps_use_relative_paths() {
    assert_eq!(RunSpec::from_yaml(&readme_run_spec()).unwrap(), RunSpec::default());
    let shipped = shipped();
    assert!(shipped.len() >= 5);
    for (path, text) in shipped {
        let sweep = SweepFile::parse(&path, &text).unwrap();
        let runs = gps_ssl::sweep::expand(&sweep).unwrap_or_else(|e| panic!("{e:#}"));
        for run in &runs {
            let s = &run.spec;
            let mut paths = vec![s.dataset.path.clone(), s.output_dir.clone(), s.cache_dir.clone()];
            if let gps_ssl::config::PriorSpec::Torchscript(p) | gps_ssl::config::PriorSpec::Embeddings(p) = &s.prior {
                paths.push(p.clone());
            }
            for p in paths {
                assert!(p.is_relative(), "{}: run {} uses the absolute path {}", path.display(), run.index, p.display());
            }
        }
    }
}

const HOSTILE: &[&str] = &[
    ".nan",
    ".inf",
    "-.inf",
    ".NaN",
    "[sgd, 0.1]",
    "[]",
    "{}",
    "null",
    "~",
    "-1",
    "0",
    "1e400",
    "99999999999999999999",
    "\"\"",
    "*x",
    "&x 3",
    "!tag 3",
    "0x10",
    "1_000",
    "yes",
    "\"a\\u0000b\"",
    "[a, [b]]",
    "{a: 1}",
    "|\n  text",
    "- a",
    "'unterminated",
    "1.5",
    "\"--wra=x\"",
    "\"--arr=0-3\"",
    "[\"--chd=/\"]",
    "18446744073709551616",
    "-0",
    "0.0",
    "1e-320",
    "\"\u{feff}x\"",
    "?",
    ":",
    "#",
];

const CHARS: &[char] = &[':', '[', ']', '{', '}', ',', '-', '#', '&', '*', '!', '|', '>', '\'', '"', '%', '@', '\n', '\t', ' ', '.', '0', '9', 'x', '\u{feff}'];

/// One random edit of `text`: characters, lines, indentation or a value replaced by a hostile one.
fn mutate(text: &str, rng: &mut SplitMix64) -> String {
    let pick = |rng: &mut SplitMix64, n: usize| if n == 0 { 0 } else { (rng.next_u64() % n as u64) as usize };
    let chars: Vec<char> = text.chars().collect();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    // values are replaced most often: that is where a changed meaning would hide
    match pick(rng, 12) {
        0 if !chars.is_empty() => {
            let i = pick(rng, chars.len());
            chars[..i].iter().chain(&chars[i + 1..]).collect()
        }
        1 => {
            let i = pick(rng, chars.len() + 1);
            let c = CHARS[pick(rng, CHARS.len())];
            chars[..i].iter().chain([&c]).chain(&chars[i..]).collect()
        }
        2 if !lines.is_empty() => {
            let i = pick(rng, lines.len());
            lines.insert(i, lines[i].clone());
            lines.join("\n")
        }
        3 if !lines.is_empty() => {
            lines.remove(pick(rng, lines.len()));
            lines.join("\n")
        }
        4 if lines.len() > 1 => {
            let (a, b) = (pick(rng, lines.len()), pick(rng, lines.len()));
            lines.swap(a, b);
            lines.join("\n")
        }
        5 => chars[..pick(rng, chars.len() + 1)].iter().collect(),
        6 if !lines.is_empty() => {
            let i = pick(rng, lines.len());
            lines[i] = if rng.next_u64().is_multiple_of(2) { format!("  {}", lines[i]) } else { lines[i].trim_start().to_string() };
            lines.join("\n")
        }
        _ => {
            // a value: after `: `, or an item of a flow list
            let spots: Vec<(usize, usize)> = lines
                .iter()
                .enumerate()
                .flat_map(|(i, l)| {
                    let mut v = Vec::new();
                    if let Some(at) = l.find(": ") {
                        v.push((i, at + 2));
                    }
                    for (j, c) in l.char_indices() {
                        if (c == '[' || c == ',') && j + 1 < l.len() {
                            v.push((i, j + 1));
                        }
                    }
                    v
                })
                .collect();
            if spots.is_empty() {
                return text.to_string();
            }
            let (i, at) = spots[pick(rng, spots.len())];
            let line = &lines[i];
            let end = value_end(line, at);
            let value = HOSTILE[pick(rng, HOSTILE.len())];
            lines[i] = format!("{} {value}{}", &line[..at], &line[end..]);
            lines.join("\n")
        }
    }
}

/// Where the value starting at `at` ends: its closing bracket for a flow list or mapping, else
/// the next separator or comment.
fn value_end(line: &str, at: usize) -> usize {
    let rest = line[at..].trim_start();
    let start = line.len() - rest.len();
    if rest.starts_with(['[', '{']) {
        let mut depth = 0;
        for (j, c) in rest.char_indices() {
            match c {
                '[' | '{' => depth += 1,
                ']' | '}' => {
                    depth -= 1;
                    if depth == 0 {
                        return start + j + 1;
                    }
                }
                _ => {}
            }
        }
        return line.len();
    }
    rest.find([',', ']', '}']).or_else(|| rest.find(" #")).map(|e| start + e).unwrap_or(line.len())
}

/// Whether a value as the YAML text says it (`raw`) is the value the run got (`got`, the resolved
/// spec as JSON). Null in the text means "the default", which the caller checks separately.
fn same_meaning(raw: &serde_norway::Value, got: &Value) -> bool {
    use serde_norway::Value as Y;
    match (raw, got) {
        (Y::Number(a), Value::Number(b)) => a.as_f64().zip(b.as_f64()).is_some_and(|(a, b)| a == b),
        (Y::String(a), Value::String(b)) => a.trim() == b.trim(),
        (Y::Bool(a), Value::Bool(b)) => a == b,
        (Y::Sequence(a), Value::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same_meaning(a, b)),
        (Y::Mapping(m), Value::Object(o)) => m.iter().all(|(k, v)| k.as_str().and_then(|k| o.get(k)).is_some_and(|g| v.is_null() || same_meaning(v, g))),
        _ => false,
    }
}

fn yaml_get<'a>(v: &'a serde_norway::Value, key: &str) -> Option<&'a serde_norway::Value> {
    v.as_mapping()?.iter().find(|(k, _)| k.as_str() == Some(key)).map(|(_, v)| v)
}

fn json_at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |n, s| n.get(s))
}

/// The leaves of a YAML mapping with their dotted paths.
fn leaves(v: &serde_norway::Value, path: &str, out: &mut Vec<(String, serde_norway::Value)>) {
    match v {
        serde_norway::Value::Mapping(m) if !m.is_empty() => {
            for (k, v) in m {
                let key = k.as_str().map(str::to_string).unwrap_or_else(|| format!("{k:?}"));
                leaves(v, &if path.is_empty() { key } else { format!("{path}.{key}") }, out);
            }
        }
        other => out.push((path.to_string(), other.clone())),
    }
}

/// For an accepted sweep: every value the text gives (base leaves not overridden by an axis, each
/// run's axis values, slurm fields, the name) is what the runs got, and no run matches an
/// exclude rule. Returns what differs.
fn meaning_kept(text: &str, sweep: &SweepFile, runs: &[PlannedRun]) -> Result<(), String> {
    let raw: serde_norway::Value = serde_norway::from_str(text.trim_start_matches('\u{feff}')).map_err(|e| format!("accepted, but not YAML: {e}"))?;
    let defaults = serde_json::to_value(RunSpec::default()).unwrap();
    let check = |path: &str, want: &serde_norway::Value, got: Option<&Value>| -> Result<(), String> {
        let got = got.ok_or_else(|| format!("`{path}` given but not in the spec"))?;
        let ok = if want.is_null() { json_at(&defaults, path).is_none_or(|d| d == got) || path == "output_dir" } else { same_meaning(want, got) };
        if ok { Ok(()) } else { Err(format!("`{path}`: the text says {want:?}, the run got {got}")) }
    };
    let mut base = Vec::new();
    if let Some(b) = yaml_get(&raw, "base") {
        leaves(b, "", &mut base);
    }
    for run in runs {
        let spec = serde_json::to_value(&run.spec).unwrap();
        for (path, want) in &base {
            let overridden = run.choices.iter().any(|(k, _)| k == path || path.starts_with(&format!("{k}.")) || k.starts_with(&format!("{path}.")));
            if !overridden && !path.is_empty() {
                check(path, want, json_at(&spec, path))?;
            }
        }
        for (key, value) in &run.choices {
            let got = json_at(&spec, key);
            // the value came from the text: it must be one the text lists for this key
            let listed: Vec<serde_norway::Value> = ["grid", "zip"]
                .iter()
                .filter_map(|s| yaml_get(&raw, s))
                .flat_map(|section| match section {
                    serde_norway::Value::Sequence(groups) => groups.iter().filter_map(|g| yaml_get(g, key)).cloned().collect::<Vec<_>>(),
                    m => yaml_get(m, key).into_iter().cloned().collect(),
                })
                .flat_map(|v| match v {
                    serde_norway::Value::Sequence(items) => items,
                    one => vec![one],
                })
                .collect();
            if !listed.iter().any(|want| check(key, want, got).is_ok()) {
                return Err(format!("run {}: `{key}` = {value} is not what the text lists: {listed:?} (spec has {got:?})", run.index));
            }
        }
        if let Some(serde_norway::Value::Sequence(rules)) = yaml_get(&raw, "exclude") {
            for rule in rules {
                let Some(map) = rule.as_mapping() else { continue };
                let all = map.iter().all(|(k, v)| {
                    let path = k.as_str().unwrap_or("");
                    let values = match v {
                        serde_norway::Value::Sequence(items) => items.clone(),
                        one => vec![one.clone()],
                    };
                    json_at(&spec, path).is_some_and(|got| values.iter().any(|w| check(path, w, Some(got)).is_ok()))
                });
                if all {
                    return Err(format!("run {} matches exclude rule {rule:?}", run.index));
                }
            }
        }
    }
    if let Some(slurm) = yaml_get(&raw, "slurm").filter(|s| !s.is_null()) {
        let got = serde_json::to_value(&sweep.slurm).unwrap();
        let mut fields = Vec::new();
        leaves(slurm, "", &mut fields);
        for (path, want) in fields {
            if path == "extra" {
                let given: Vec<&str> = want.as_sequence().map(|s| s.iter().filter_map(|v| v.as_str()).collect()).unwrap_or_default();
                let written = sweep.slurm.directives().map_err(|e| e.to_string())?;
                for directive in given {
                    // written in full, with the value as given
                    let value = directive.split_once('=').map(|(_, v)| v);
                    if !written.iter().any(|w| w.split_once('=').map(|(_, v)| v) == value && w.starts_with(directive.split('=').next().unwrap())) {
                        return Err(format!("slurm.extra {directive:?} is not in the script as given: {written:?}"));
                    }
                }
            } else {
                let json_path = if path == "cpus" { "cpus" } else { path.as_str() };
                if !want.is_null() && !same_meaning(&want, json_at(&got, json_path).unwrap_or(&Value::Null)) {
                    return Err(format!("slurm.{path}: the text says {want:?}, gps has {got}"));
                }
            }
        }
    }
    if let Some(name) = yaml_get(&raw, "name").and_then(|n| n.as_str())
        && name != sweep.name
    {
        return Err(format!("name {name:?} read as {:?}", sweep.name));
    }
    Ok(())
}

#[test]
fn mutated_shipped_inputs_never_panic_hang_or_change_meaning() {
    let (done, finished) = std::sync::mpsc::channel();
    let worker = std::thread::spawn(move || {
        let mut rng = SplitMix64::new(0x0067_7073_5f73_736c);
        let mut stats = [0usize; 3]; // refused, accepted, checked meaning-preserving
        let mut failures = Vec::new();
        for (path, original) in shipped() {
            let before = sweep(&original).map(|(_, runs)| runs.iter().map(|r| r.id.clone()).collect::<Vec<_>>()).unwrap();
            // meaning-preserving edits give the same runs
            for edited in [format!("\u{feff}{original}"), format!("{original}\n# a comment\n"), original.replace('\n', "\r\n")] {
                let after = sweep(&edited).map(|(_, runs)| runs.iter().map(|r| r.id.clone()).collect::<Vec<_>>());
                if after.as_ref().ok() != Some(&before) {
                    failures.push(format!("{}: a meaning-preserving edit changed the runs: {after:?}", path.display()));
                }
                stats[2] += 1;
            }
            for _ in 0..150 {
                let mut text = original.clone();
                for _ in 0..1 + rng.next_u64() % 3 {
                    text = mutate(&text, &mut rng);
                }
                match catch_unwind(AssertUnwindSafe(|| sweep(&text))) {
                    Err(_) => failures.push(format!("{}: PANIC on\n{text}", path.display())),
                    Ok(Err(e)) => {
                        stats[0] += 1;
                        if !format!("{e:#}").contains(FILE) {
                            failures.push(format!("error without the file name: {e:#}"));
                        }
                    }
                    Ok(Ok((sweep, runs))) => {
                        stats[1] += 1;
                        if let Err(why) = meaning_kept(&text, &sweep, &runs) {
                            failures.push(format!("{}: accepted with another meaning: {why}\n{text}", path.display()));
                        }
                    }
                }
            }
        }
        // the README's run spec, mutated, through RunSpec::from_yaml
        let spec = readme_run_spec();
        for _ in 0..300 {
            let mut text = spec.clone();
            for _ in 0..1 + rng.next_u64() % 3 {
                text = mutate(&text, &mut rng);
            }
            match catch_unwind(AssertUnwindSafe(|| RunSpec::from_yaml(&text))) {
                Err(_) => failures.push(format!("run spec: PANIC on\n{text}")),
                Ok(Err(_)) => stats[0] += 1,
                Ok(Ok(parsed)) => {
                    stats[1] += 1;
                    let raw: serde_norway::Value = serde_norway::from_str(text.trim_start_matches('\u{feff}')).unwrap_or(serde_norway::Value::Null);
                    let got = serde_json::to_value(&parsed).unwrap();
                    let defaults = serde_json::to_value(RunSpec::default()).unwrap();
                    let mut fields = Vec::new();
                    leaves(&raw, "", &mut fields);
                    for (path, want) in fields.iter().filter(|(p, _)| !p.is_empty()) {
                        let at = json_at(&got, path);
                        let ok = if want.is_null() {
                            at.is_some_and(|g| json_at(&defaults, path) == Some(g) || g.is_null())
                        } else {
                            at.is_some_and(|g| same_meaning(want, g))
                        };
                        if !ok {
                            failures.push(format!("run spec accepted with another meaning at `{path}` ({want:?} -> {at:?}):\n{text}"));
                        }
                    }
                }
            }
        }
        let _ = done.send(());
        (stats, failures)
    });
    // A hang is a failure, not a stuck test run.
    finished.recv_timeout(std::time::Duration::from_secs(300)).expect("the mutation test hung (no answer in 300 s)");
    let (stats, failures) = worker.join().unwrap();
    eprintln!("mutations: {} refused, {} accepted (meaning checked), {} meaning-preserving edits", stats[0], stats[1], stats[2]);
    assert!(stats[0] > 100 && stats[1] > 100, "the mutations should both break and keep inputs: {stats:?}");
    assert!(failures.is_empty(), "{} failures:\n\n{}", failures.len(), failures.iter().take(15).cloned().collect::<Vec<_>>().join("\n\n"));
}
