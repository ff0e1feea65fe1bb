//! The shipped paper sweeps (`sweeps/paper-table*.yaml`) are submittable as they are: each
//! expands, renders its sbatch scripts with `--dry-run`, and its tasks run through `gps task`
//! (the path a cluster runs) for one short epoch on small data in the exact published formats:
//! CIFAR-10's binary release, an FGVC-Aircraft tree of mixed-size JPEGs, MedMNIST `.npz` files, and
//! formula weights where the ImageNet ResNet-50 goes (its real weights are not reachable here).

use serde_norway::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use tch::{Device, Kind, Tensor, nn};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn gps(workdir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gps")).args(args).current_dir(workdir).env_remove("GPS_REQUIRE_SLURM").output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// torchvision-named ResNet-50 weights (ImageNet stem, with its `fc`), small random values.
fn resnet50_weights(path: &Path) {
    let vs = nn::VarStore::new(Device::Cpu);
    let _ = gps_ssl::model::build_backbone_with(gps_ssl::config::Backbone::Resnet50, &vs.root(), 3, gps_ssl::recipe::Stem::Imagenet);
    tch::manual_seed(0);
    let mut tensors: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(n, v)| {
            let t = if n.ends_with("running_var") {
                Tensor::ones(v.size().as_slice(), (Kind::Float, Device::Cpu))
            } else {
                Tensor::randn(v.size().as_slice(), (Kind::Float, Device::Cpu)) * 0.02
            };
            (n, t)
        })
        .collect();
    tensors.push(("fc.weight".into(), Tensor::zeros([1000, 2048], (Kind::Float, Device::Cpu))));
    tensors.push(("fc.bias".into(), Tensor::zeros([1000], (Kind::Float, Device::Cpu))));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    Tensor::write_safetensors(&tensors, path).unwrap();
}

/// An FGVC-Aircraft tree as the official archive unpacks, 4 variants, JPEGs of mixed sizes.
fn aircraft(root: &Path) {
    let data = root.join("fgvc-aircraft-2013b/data");
    std::fs::create_dir_all(data.join("images")).unwrap();
    let variants = ["707-320", "Boeing 717", "A300B4", "Cessna 172"];
    std::fs::write(data.join("variants.txt"), variants.join("\n") + "\n").unwrap();
    let (mut trainval, mut test) = (String::new(), String::new());
    for i in 0..48u32 {
        let id = format!("{:07}", 1000 + i);
        let class = variants[(i % 4) as usize];
        let (w, h) = if i % 3 == 0 { (300, 200) } else { (280, 210) };
        let img =
            image::RgbImage::from_fn(w, h, |x, y| image::Rgb([((x * 7 + i * 13) % 256) as u8, ((y * 5 + i * 29) % 256) as u8, ((x + y + i) % 256) as u8]));
        img.save(data.join("images").join(format!("{id}.jpg"))).unwrap();
        let line = format!("{id} {class}\n");
        if i < 32 { trainval.push_str(&line) } else { test.push_str(&line) }
    }
    std::fs::write(data.join("images_variant_trainval.txt"), trainval).unwrap();
    std::fs::write(data.join("images_variant_test.txt"), test).unwrap();
}

/// A MedMNIST `.npz` with the published arrays: {train,val,test}_{images,labels}, labels [N, 1].
fn medmnist(path: &Path, channels: i64, classes: i64) {
    let split = |n: i64, seed: i64| {
        tch::manual_seed(seed);
        let shape: Vec<i64> = if channels == 1 { vec![n, 28, 28] } else { vec![n, 28, 28, 3] };
        let images = Tensor::randint(256, shape.as_slice(), (Kind::Uint8, Device::Cpu));
        let labels = (Tensor::arange(n, (Kind::Int64, Device::Cpu)).remainder(classes)).to_kind(Kind::Uint8).view([n, 1]);
        (images, labels)
    };
    let (a, b) = split(32, 1);
    let (c, d) = split(8, 2);
    let (e, f) = split(16, 3);
    Tensor::write_npz(&[("train_images", a), ("train_labels", b), ("val_images", c), ("val_labels", d), ("test_images", e), ("test_labels", f)], path).unwrap();
}

/// The sweep with its sizes cut to a smoke test (one epoch, tiny batches, a short autoencoder,
/// 224-px views cut to 64 px: the ImageNet stem and the evaluation's resize and centre crop run
/// the same at 64), data and weights pointed at the small files; everything else as shipped.
fn smoke_copy(src: &Path, dst: &Path, data: Option<(&str, &str)>, weights: &Path) {
    let mut doc: Value = serde_norway::from_str(&std::fs::read_to_string(src).unwrap()).unwrap();
    let name = format!("{}-smoke", doc.get("name").and_then(Value::as_str).unwrap());
    doc.as_mapping_mut().unwrap().insert("name".into(), name.into());
    let base = doc.get_mut("base").unwrap();
    let set = |v: &mut Value, path: &[&str], value: Value| {
        let mut node = v;
        for p in &path[..path.len() - 1] {
            if node.get(*p).is_none() {
                node.as_mapping_mut().unwrap().insert(Value::from(*p), Value::Mapping(Default::default()));
            }
            node = node.get_mut(*p).unwrap();
        }
        node.as_mapping_mut().unwrap().insert(Value::from(path[path.len() - 1]), value);
    };
    set(base, &["epochs"], 1.into());
    set(base, &["batch_size"], 8.into());
    set(base, &["device"], "cpu".into());
    set(base, &["dataset", "train_limit"], 16.into());
    set(base, &["dataset", "test_limit"], 8.into());
    if base.get("augmentation").and_then(|a| a.get("crop_size")).and_then(Value::as_u64).is_some_and(|c| c > 64) {
        set(base, &["augmentation", "crop_size"], 64.into());
        set(base, &["eval", "resize"], 73.into());
        set(base, &["eval", "center_crop"], 64.into());
        set(base, &["dataset", "resize_shorter_side"], 73.into());
        set(base, &["dataset", "center_crop"], Value::Sequence(vec![73.into(), 110.into()]));
    }
    set(base, &["eval", "knn_k"], 4.into());
    set(base, &["optimizer", "warmup_epochs"], 0.into());
    set(base, &["prior_options", "autoencoder_epochs"], 1.into());
    set(base, &["prior_options", "weights"], weights.display().to_string().into());
    if base.get("backbone_init").is_some() {
        set(base, &["backbone_init"], weights.display().to_string().into());
    }
    if let Some((format, path)) = data {
        set(base, &["dataset", "format"], format.into());
        set(base, &["dataset", "path"], path.into());
    }
    std::fs::write(dst, serde_norway::to_string(&doc).unwrap()).unwrap();
}

/// The first index of each prior in the sweep (a task per kind of prior).
fn one_per_prior(w: &Path, sweep: &str) -> Vec<(usize, String)> {
    let (ok, out) = gps(w, &["sweep", "expand", sweep, "--format", "json"]);
    assert!(ok, "{out}");
    let runs: serde_json::Value = serde_json::from_str(out.trim_start_matches(|c| c != '[')).unwrap();
    let mut seen = Vec::new();
    for r in runs.as_array().unwrap() {
        let prior = r["spec"]["prior"].as_str().unwrap().to_string();
        if !seen.iter().any(|(_, p)| *p == prior) {
            seen.push((r["index"].as_u64().unwrap() as usize, prior));
        }
    }
    seen
}

#[test]
fn every_paper_sweep_expands_renders_and_runs_its_tasks() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    std::fs::create_dir_all(w.join("sweeps")).unwrap();
    std::fs::create_dir_all(w.join("data")).unwrap();
    let weights = w.join(".cache/weights/resnet50-formula.safetensors");
    resnet50_weights(&weights);
    aircraft(&w.join("data"));
    medmnist(&w.join("data/pathmnist.npz"), 3, 9);
    medmnist(&w.join("data/tissuemnist.npz"), 1, 8);
    let cifar = crate::support::cifar10().display().to_string();
    let sweeps: [(&str, Option<(&str, &str)>, usize); 6] = [
        ("paper-table2-cifar10", Some(("cifar10-bin", cifar.as_str())), 90),
        ("paper-table2-aircraft", None, 90),
        ("paper-table2-pathmnist", None, 90),
        ("paper-table2-tissuemnist", None, 90),
        ("paper-table4-lr", Some(("cifar10-bin", cifar.as_str())), 18),
        ("paper-table5-init", None, 24),
    ];
    for (name, data, runs) in sweeps {
        let shipped = repo().join(format!("sweeps/{name}.yaml"));
        // As shipped: the grid's size, and the sbatch scripts a submission would write.
        let (ok, out) = gps(&repo(), &["sweep", "expand", shipped.to_str().unwrap()]);
        assert!(ok && out.lines().count() == runs + 1, "{name}: {out}");
        std::fs::copy(&shipped, w.join("sweeps").join(format!("{name}.yaml"))).unwrap();
        let (ok, out) = gps(w, &["sweep", "submit", &format!("sweeps/{name}.yaml"), "--dry-run"]);
        let script = std::fs::read_to_string(w.join(format!("slurm/{name}/sub-001/array.sbatch"))).unwrap_or_default();
        assert!(ok && script.contains(&format!("--array=0-{}", runs - 1)) && script.contains("' task '"), "{name}: {out}\n{script}");
        // The smoke-test copy's tasks, one per kind of prior, through `gps task`.
        let smoke = format!("sweeps/{name}-smoke.yaml");
        smoke_copy(&shipped, &w.join(&smoke), data, &weights);
        for (index, prior) in one_per_prior(w, &smoke) {
            let (ok, out) = gps(w, &["task", &smoke, "--index", &index.to_string(), "--no-keep"]);
            assert!(ok, "{name} task {index} (prior {prior}): {out}");
        }
        let (ok, table) = gps(w, &["report", &format!("results/{name}-smoke")]);
        assert!(ok && table.contains("baseline"), "{name}: {table}");
    }
    // The published pair (from the sweep file that wrote the rows) sits beside the CIFAR-10
    // cells it belongs to, with the difference, in every format.
    let dir = "results/paper-table2-cifar10-smoke";
    let (ok, md) = gps(w, &["report", dir]);
    assert!(ok && md.contains("| cifar10 baseline | cifar10 baseline published |"), "{md}");
    let line = md.lines().find(|l| l.starts_with("| simclr | weak |")).unwrap_or_default();
    assert!(line.contains("37.51 [1] (Δ −") && line.contains("85.58 [1] (Δ −"), "{md}");
    assert!(md.contains("[1] published: arXiv 2401.01990 abstract"), "{md}");
    let (_, tex) = gps(w, &["report", dir, "--latex"]);
    assert!(tex.contains("37.51 [1]") && tex.contains("published: arXiv 2401.01990"), "{tex}");
    let (_, csv) = gps(w, &["report", dir, "--csv"]);
    assert!(csv.contains(",published,published_delta,published_source") && csv.contains(",0.3751,"), "{csv}");
    let (_, cmp) = gps(w, &["report", dir, "--compare", "prior", "--where", "method=simclr", "--where", "augmentation=weak"]);
    assert!(cmp.contains("85.58 − 37.51 = +48.07"), "{cmp}");
    let (ok, out) = gps(w, &["report", dir, "--html", "r.html"]);
    let page = std::fs::read_to_string(w.join("r.html")).unwrap_or_default();
    assert!(ok && page.contains("37.51 [1]") && page.contains("published: arXiv 2401.01990"), "{out}");
}

#[test]
fn a_published_entry_without_a_source_or_with_an_unknown_field_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    for (entry, expected) in [
        ("{dataset: cifar10, prior: none, value: 37.51}", "needs `source`"),
        ("{dataset: cifar10, priorr: none, value: 37.51, source: x}", "did you mean `prior`"),
        ("{dataset: cifar10, value: .nan, source: x}", "value"),
        ("{value: 1.0, source: x}", "fields of its cell"),
    ] {
        let path = tmp.path().join("s.yaml");
        std::fs::write(
            &path,
            format!(
                "name: s
base: {{}}
published:
  - {entry}
"
            ),
        )
        .unwrap();
        let (ok, out) = gps(tmp.path(), &["sweep", "expand", "s.yaml"]);
        assert!(!ok && out.contains(expected) && out.contains("s.yaml"), "{entry}: {out}");
    }
}
