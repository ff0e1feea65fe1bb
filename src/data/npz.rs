//! MedMNIST `.npz` as published (v2, `medmnist/dataset.py` and `info.py` at v2.2.3): one archive
//! per dataset (`pathmnist.npz`, `tissuemnist.npz`, ...) holding `{train,val,test}_images`
//! (uint8, [N,28,28] greyscale such as TissueMNIST, [N,28,28,3] colour such as PathMNIST) and
//! `{train,val,test}_labels` (integers, [N,1]; multi-label sets such as ChestMNIST are [N,14] and
//! not supported). The three splits are the file's own. Class names are MedMNIST's label names
//! when the file name is a MedMNIST flag, else the label numbers.

use super::{Dataset, SplitName};
use anyhow::{Context, Result, bail};
use std::path::Path;
use tch::{Kind, Tensor};

/// The splits an npz holds.
pub const SPLITS: [SplitName; 3] = [SplitName::Train, SplitName::Val, SplitName::Test];

/// Label names of MedMNIST v2's single-label 2-D datasets (`INFO[flag]["label"]` of
/// `medmnist/info.py`, v2.2.3), by flag.
const LABEL_NAMES: &[(&str, &[&str])] = &[
    (
        "pathmnist",
        &[
            "adipose",
            "background",
            "debris",
            "lymphocytes",
            "mucus",
            "smooth muscle",
            "normal colon mucosa",
            "cancer-associated stroma",
            "colorectal adenocarcinoma epithelium",
        ],
    ),
    (
        "tissuemnist",
        &[
            "Collecting Duct, Connecting Tubule",
            "Distal Convoluted Tubule",
            "Glomerular endothelial cells",
            "Interstitial endothelial cells",
            "Leukocytes",
            "Podocytes",
            "Proximal Tubule Segments",
            "Thick Ascending Limb",
        ],
    ),
    (
        "dermamnist",
        &[
            "actinic keratoses and intraepithelial carcinoma",
            "basal cell carcinoma",
            "benign keratosis-like lesions",
            "dermatofibroma",
            "melanoma",
            "melanocytic nevi",
            "vascular lesions",
        ],
    ),
    ("octmnist", &["choroidal neovascularization", "diabetic macular edema", "drusen", "normal"]),
    ("pneumoniamnist", &["normal", "pneumonia"]),
    ("retinamnist", &["0", "1", "2", "3", "4"]),
    ("breastmnist", &["malignant", "normal, benign"]),
    (
        "bloodmnist",
        &[
            "basophil",
            "eosinophil",
            "erythroblast",
            "immature granulocytes(myelocytes, metamyelocytes and promyelocytes)",
            "lymphocyte",
            "monocyte",
            "neutrophil",
            "platelet",
        ],
    ),
    ("organamnist", &ORGAN),
    ("organcmnist", &ORGAN),
    ("organsmnist", &ORGAN),
];

const ORGAN: [&str; 11] =
    ["bladder", "femur-left", "femur-right", "heart", "kidney-left", "kidney-right", "liver", "lung-left", "lung-right", "pancreas", "spleen"];

/// MedMNIST's names for the file's flag: `pathmnist.npz`, also `pathmnist_28.npz` (v3's naming).
fn label_names(path: &Path) -> Option<&'static [&'static str]> {
    let stem = path.file_stem()?.to_str()?.to_ascii_lowercase();
    let flag = stem.split('_').next()?;
    LABEL_NAMES.iter().find(|(f, _)| *f == flag).map(|(_, names)| *names)
}

pub fn load(path: &Path, split: SplitName) -> Result<Dataset> {
    if !SPLITS.contains(&split) {
        bail!("a MedMNIST .npz has the splits train, val and test, not {split}");
    }
    let arrays = Tensor::read_npz(path).with_context(|| format!("cannot read {} as a numpy .npz archive", path.display()))?;
    let get = |name: &str| -> Result<Tensor> {
        arrays.iter().find(|(n, _)| n == name).map(|(_, t)| t.shallow_clone()).with_context(|| {
            let have: Vec<&str> = arrays.iter().map(|(n, _)| n.as_str()).collect();
            format!("{} has no `{name}` array (it has {}): not a MedMNIST file?", path.display(), have.join(", "))
        })
    };
    let images = get(&format!("{split}_images"))?;
    let labels = get(&format!("{split}_labels"))?;
    if images.kind() != Kind::Uint8 {
        bail!("{}: {split}_images are {:?}, expected uint8", path.display(), images.kind());
    }
    let images = match images.size().as_slice() {
        [_, _, _] => images.unsqueeze(1),
        [_, _, _, 1 | 3] => images.permute([0, 3, 1, 2]).contiguous(),
        s => bail!("{}: {split}_images have shape {s:?}, expected [N,H,W] (greyscale) or [N,H,W,3] (colour)", path.display()),
    };
    let labels = check_labels(path, &format!("{split}_labels"), &labels, images.size()[0])?;
    // The class count comes from all splits, so that every split has the same classes.
    let mut num_classes = 0;
    for s in SPLITS {
        if let Ok(l) = get(&format!("{s}_labels"))
            && l.numel() > 0
            && !l.is_floating_point()
        {
            num_classes = num_classes.max(l.max().to_kind(Kind::Int64).int64_value(&[]) + 1);
        }
    }
    let classes = match label_names(path) {
        Some(names) if names.len() as i64 >= num_classes => names.iter().map(|s| s.to_string()).collect(),
        _ => (0..num_classes).map(|c| c.to_string()).collect(),
    };
    Dataset::new(images, labels, classes)
}

/// Labels [N,1] or [N] of an integer type; a multi-label [N,K] array is refused.
fn check_labels(path: &Path, name: &str, labels: &Tensor, n: i64) -> Result<Tensor> {
    if labels.is_floating_point() || labels.kind() == Kind::Bool {
        bail!("{}: {name} are {:?}, expected integers", path.display(), labels.kind());
    }
    match labels.size().as_slice() {
        [m] | [m, 1] if *m == n => Ok(labels.to_kind(Kind::Int64).reshape([-1])),
        [m, k] if *m == n => bail!("{}: {name} have shape [{m}, {k}]: a multi-label MedMNIST set (one label per image is supported)", path.display()),
        s => bail!("{}: {name} have shape {s:?} for {n} images, expected [{n}, 1]", path.display()),
    }
}
