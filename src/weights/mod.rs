//! Weight files from elsewhere: torchvision checkpoints (`torch.save` zips, read without Python by
//! `pth`) and safetensors, loaded into a model strictly by name and shape. Used by the ImageNet
//! ResNet-50 prior and by `backbone_init` (Table 5's same-initialisation control).
pub mod pth;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use tch::nn::VarStore;
use tch::{Kind, Tensor};

/// The named tensors of a weights file: `.safetensors`, or a `torch.save` checkpoint (`.pth`,
/// `.pt`, `.bin`, or any file that is a zip).
pub fn read(path: &Path) -> Result<Vec<(String, Tensor)>> {
    if !path.is_file() {
        bail!("weights file {} does not exist", path.display());
    }
    let is_safetensors = path.extension().is_some_and(|e| e == "safetensors");
    if is_safetensors {
        return Tensor::read_safetensors(path).with_context(|| format!("{} is not a readable safetensors file (damaged or truncated?)", path.display()));
    }
    Ok(pth::read_state_dict(path)?.into_iter().map(|t| (t.name, t.tensor)).collect())
}

/// sha256 (hex) of a file.
pub fn sha256(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).with_context(|| format!("reading {}", path.display()))?;
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// What a strict load did.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// Variables set from the file.
    pub set: usize,
    /// File entries not used, by the rule that let them through (e.g. torchvision's `fc.*`).
    pub ignored: Vec<String>,
}

/// Names a file may carry that the model has no place for, each with why it is fine to leave
/// out. Anything else extra is an error.
pub struct Ignore<'a> {
    pub names: &'a [&'a str],
    pub why: &'a str,
}

/// Copies `tensors` into every variable of `vs`, by name and shape (see `load_strict_into`).
pub fn load_strict(vs: &VarStore, tensors: Vec<(String, Tensor)>, ignore: &[Ignore], what: &str) -> Result<Loaded> {
    load_strict_into(vs.variables(), tensors, ignore, what)
}

/// Copies `tensors` into every one of `variables`, by name and shape: a variable the file lacks, a
/// tensor of another shape, or a file entry with no variable (beyond `ignore` and batch norms'
/// `num_batches_tracked` counters) is an error that lists them all. `what` names the file in
/// messages.
pub fn load_strict_into(variables: HashMap<String, Tensor>, tensors: Vec<(String, Tensor)>, ignore: &[Ignore], what: &str) -> Result<Loaded> {
    let mut file: BTreeMap<String, Tensor> = tensors.into_iter().collect();
    let mut missing = Vec::new();
    let mut shapes = Vec::new();
    for (name, var) in &variables {
        match file.get(name) {
            None => missing.push(name.clone()),
            Some(t) if t.size() != var.size() => shapes.push(format!("{name}: file {:?}, model {:?}", t.size(), var.size())),
            Some(_) => {}
        }
    }
    let mut ignored = Vec::new();
    let mut extra = Vec::new();
    for name in file.keys().filter(|n| !variables.contains_key(*n)) {
        if name.ends_with("num_batches_tracked") {
            continue;
        }
        match ignore.iter().find(|i| i.names.contains(&name.as_str())) {
            Some(rule) => ignored.push(format!("{name} ({})", rule.why)),
            None => extra.push(name.clone()),
        }
    }
    if !missing.is_empty() || !shapes.is_empty() || !extra.is_empty() {
        let list = |v: &[String]| if v.len() > 12 { format!("{}, ... ({} in all)", v[..12].join(", "), v.len()) } else { v.join(", ") };
        let mut problems = Vec::new();
        if !missing.is_empty() {
            problems.push(format!("missing {}", list(&missing)));
        }
        if !shapes.is_empty() {
            problems.push(format!("of another shape {}", list(&shapes)));
        }
        if !extra.is_empty() {
            problems.push(format!("not in the model {}", list(&extra)));
        }
        bail!("{what} does not fit the model (names and shapes as torchvision's state_dict): tensors {}", problems.join("; "));
    }
    let _guard = tch::no_grad_guard();
    let count = variables.len();
    for (name, mut var) in variables {
        let src = file.remove(&name).expect("checked present");
        var.copy_(&src.to_kind(var.kind()).to_device(var.device()));
    }
    Ok(Loaded { set: count, ignored })
}

/// Every float tensor finite: a file of NaNs loads by name and shape but would poison a run.
pub fn check_finite(tensors: &[(String, Tensor)], what: &str) -> Result<()> {
    for (name, t) in tensors {
        if t.is_floating_point() && t.numel() > 0 && !bool::try_from(t.to_kind(Kind::Float).isfinite().all()).unwrap_or(false) {
            bail!("{what}: tensor `{name}` holds NaN or infinite values (a damaged file?)");
        }
    }
    Ok(())
}
