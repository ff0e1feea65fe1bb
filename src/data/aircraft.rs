//! FGVC-Aircraft 2013b as its official archive (`fgvc-aircraft-2013b.tar.gz`) unpacks:
//! `fgvc-aircraft-2013b/data/images/<id>.jpg`, `images_variant_<split>.txt` (lines
//! `<id> <variant name>`, the name may contain spaces) for the splits train, val, trainval and
//! test, and `variants.txt` (the 100 variant names, one per line). As torchvision's
//! `FGVCAircraft(annotation_level="variant")`: the label is the variant's line in `variants.txt`,
//! images come in the split file's order, each converted to RGB, the copyright banner at the
//! bottom left in place. The images have different sizes: the decode-time geometry
//! (`dataset.resize_shorter_side`, `dataset.center_crop`) gives them one.

use super::images::{Channels, Encoded, Source, decode_all};
use super::resize::Geometry;
use super::{Dataset, SplitName};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

/// The folder the official archive unpacks to.
pub const FOLDER: &str = "fgvc-aircraft-2013b";

/// The official release: 100 variants; images per split.
pub const NUM_VARIANTS: usize = 100;
pub const OFFICIAL_SPLIT_SIZES: [(SplitName, usize); 4] =
    [(SplitName::Train, 3334), (SplitName::Val, 3333), (SplitName::Trainval, 6667), (SplitName::Test, 3333)];

/// The `data/` folder of the release: `path` may be the folder holding `fgvc-aircraft-2013b/`,
/// `fgvc-aircraft-2013b/` itself or its `data/`.
pub fn data_dir(path: &Path) -> Result<PathBuf> {
    candidates(path).into_iter().find(|d| d.join("variants.txt").is_file()).with_context(|| {
        format!(
            "{} does not hold FGVC-Aircraft: no variants.txt in {p}/{FOLDER}/data, {p}/data or {p} (expected the official \
             archive {FOLDER}.tar.gz unpacked, e.g. by `gps data download aircraft --dir DIR`)",
            path.display(),
            p = path.display()
        )
    })
}

fn candidates(path: &Path) -> [PathBuf; 3] {
    [path.join(FOLDER).join("data"), path.join("data"), path.to_path_buf()]
}

/// For `format: auto`: a folder laid out as the release (variants.txt, a split list, images/).
pub fn looks_like(path: &Path) -> bool {
    candidates(path).iter().any(|d| d.join("variants.txt").is_file() && d.join("images").is_dir() && SplitName::ALL.iter().any(|s| split_file(d, *s).is_file()))
}

fn split_file(data: &Path, split: SplitName) -> PathBuf {
    data.join(format!("images_variant_{split}.txt"))
}

/// The variant names, by label (`variants.txt` in line order, surrounding blanks stripped).
pub fn read_variants(data: &Path) -> Result<Vec<String>> {
    let file = data.join("variants.txt");
    let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let names: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
    if names.is_empty() {
        bail!("{} lists no variants", file.display());
    }
    for (i, n) in names.iter().enumerate() {
        if names[..i].contains(n) {
            bail!("{}: variant `{n}` is listed twice (lines are class indices, so each name must be unique)", file.display());
        }
    }
    Ok(names)
}

/// (image id, label) per line of `images_variant_<split>.txt`, in file order.
pub fn read_split(data: &Path, split: SplitName, classes: &[String]) -> Result<Vec<(String, i64)>> {
    let file = split_file(data, split);
    let text = std::fs::read_to_string(&file).with_context(|| format!("reading {} (the {split} split's list)", file.display()))?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        // torchvision: image_name, label_name = line.strip().split(" ", 1)
        let Some((id, name)) = line.split_once(' ') else {
            bail!("{} line {}: `{line}` is not `<image id> <variant name>`", file.display(), i + 1);
        };
        let Some(label) = classes.iter().position(|c| c == name) else {
            bail!("{} line {}: variant `{name}` is not in variants.txt", file.display(), i + 1);
        };
        rows.push((id.to_string(), label as i64));
    }
    if rows.is_empty() {
        bail!("{} lists no images", file.display());
    }
    Ok(rows)
}

/// The files a split is read from: the two lists and every image they name.
pub fn source_files(path: &Path, split: SplitName) -> Result<Vec<PathBuf>> {
    let data = data_dir(path)?;
    let classes = read_variants(&data)?;
    let rows = read_split(&data, split, &classes)?;
    let mut files = vec![data.join("variants.txt"), split_file(&data, split)];
    files.extend(rows.iter().map(|(id, _)| image_path(&data, id)));
    Ok(files)
}

fn image_path(data: &Path, id: &str) -> PathBuf {
    data.join("images").join(format!("{id}.jpg"))
}

pub fn load(path: &Path, split: SplitName, geometry: &Geometry) -> Result<Dataset> {
    let data = data_dir(path)?;
    let classes = read_variants(&data)?;
    let rows = read_split(&data, split, &classes)?;
    let mut items = Vec::with_capacity(rows.len());
    for (id, label) in rows {
        let file = image_path(&data, &id);
        if !file.is_file() {
            bail!("{} is missing (listed in {})", file.display(), split_file(&data, split).display());
        }
        items.push(Encoded { label, origin: file.display().to_string(), source: Source::File(file) });
    }
    decode_all(&items, classes, geometry, Channels::Rgb)
}

/// After a download: the unpacked release has the official numbers of variants and images per
/// split, and every listed image is there.
pub fn check_release(dir: &Path) -> Result<()> {
    let data = data_dir(dir)?;
    let classes = read_variants(&data)?;
    if classes.len() != NUM_VARIANTS {
        bail!("{}: {} variants, the official release has {NUM_VARIANTS}", data.join("variants.txt").display(), classes.len());
    }
    for (split, n) in OFFICIAL_SPLIT_SIZES {
        let rows = read_split(&data, split, &classes)?;
        if rows.len() != n {
            bail!("{}: {} images, the official release has {n}", split_file(&data, split).display(), rows.len());
        }
        if let Some((id, _)) = rows.iter().find(|(id, _)| !image_path(&data, id).is_file()) {
            bail!("{} is missing (listed in {})", image_path(&data, id).display(), split_file(&data, split).display());
        }
    }
    Ok(())
}
