//! MedMNIST `.npz`: `{train,val,test}_images` (uint8 [N,H,W] or [N,H,W,3]) and
//! `{train,val,test}_labels` ([N,1] or [N]). The val split is not used (train and test only).

use super::{Dataset, Split};
use anyhow::{Context, Result, bail};
use std::path::Path;
use tch::{Kind, Tensor};

pub fn load(path: &Path, split: Split) -> Result<Dataset> {
    let arrays = Tensor::read_npz(path).with_context(|| format!("cannot read {} as a numpy .npz archive", path.display()))?;
    let get = |name: &str| -> Result<Tensor> {
        arrays.iter().find(|(n, _)| n == name).map(|(_, t)| t.shallow_clone()).with_context(|| {
            let have: Vec<&str> = arrays.iter().map(|(n, _)| n.as_str()).collect();
            format!("{} has no `{name}` array (it has {}): not a MedMNIST file?", path.display(), have.join(", "))
        })
    };
    let images = get(&format!("{}_images", split.as_str()))?;
    let labels = get(&format!("{}_labels", split.as_str()))?;
    if images.kind() != Kind::Uint8 {
        bail!("{}: {}_images are {:?}, expected uint8", path.display(), split.as_str(), images.kind());
    }
    let images = match images.dim() {
        3 => images.unsqueeze(1),
        4 => images.permute([0, 3, 1, 2]).contiguous(),
        _ => bail!("{}: {}_images have shape {:?}, expected [N,H,W] or [N,H,W,C]", path.display(), split.as_str(), images.size()),
    };
    let labels = labels.to_kind(Kind::Int64).reshape([-1]);
    if labels.size()[0] != images.size()[0] {
        bail!("{}: {} labels for {} images (multi-label MedMNIST sets are not supported)", path.display(), labels.size()[0], images.size()[0]);
    }
    // The class count comes from both splits so train and test agree on it.
    let mut num_classes = 0;
    for s in ["train", "test"] {
        if let Ok(l) = get(&format!("{s}_labels"))
            && l.numel() > 0
        {
            num_classes = num_classes.max(l.max().to_kind(Kind::Int64).int64_value(&[]) + 1);
        }
    }
    Dataset::new(images, labels, (0..num_classes).map(|c| c.to_string()).collect())
}
