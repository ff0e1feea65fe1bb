//! ImageFolder: `<root>/{train,test}/<class>/<image>.{jpg,jpeg,png}`, from a directory or from a
//! zip holding that tree (e.g. the CIFAR-10 JPEG copy). Class = sub-folder; labels follow the
//! sorted class names of both splits together (so train and test agree); images are ordered by
//! (class, file name), so the order never depends on the file system or the zip's entry order.

use super::images::{Channels, Encoded, Source, decode_all};
use super::resize::Geometry;
use super::{Dataset, Split};
use anyhow::{Context, Result, bail};
use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use walkdir::WalkDir;

/// Folder names accepted for each split, in order of preference.
fn split_dirs(split: Split) -> &'static [&'static str] {
    match split {
        Split::Train => &["train"],
        Split::Test => &["test", "val"],
    }
}

/// JPEG/PNG by extension; hidden files (macOS `._x.jpg` resource forks) are not images.
fn is_image(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    !n.starts_with('.') && (n.ends_with(".jpg") || n.ends_with(".jpeg") || n.ends_with(".png"))
}

/// Loads the `train` or `test` split (the split names of this format), every image through the
/// decode-time geometry; images of mixed sizes need one (an error says so).
pub fn load(root: &Path, split: Split, geometry: &Geometry) -> Result<Dataset> {
    let (classes, items) = if root.is_file() { read_zip(root, split)? } else { read_dir(root, split)? };
    if items.is_empty() {
        bail!("no images for the {} split in {}: expected {}/<class>/<image>.jpg|png", split.as_str(), root.display(), split_dirs(split).join(" or "));
    }
    decode_all(&items, classes, geometry, Channels::AsFirstImage)
}

/// Every image file of a directory dataset (both splits: both feed the class list).
pub fn source_files(root: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for split in [Split::Train, Split::Test] {
        if let Some(dir) = split_dir_on_disk(root, split) {
            for e in WalkDir::new(&dir).min_depth(2).max_depth(2).sort_by_file_name() {
                let e = e.with_context(|| format!("listing {}", dir.display()))?;
                if e.file_type().is_file() && is_image(&e.file_name().to_string_lossy()) {
                    files.push(e.into_path());
                }
            }
        }
    }
    Ok(files)
}

fn split_dir_on_disk(root: &Path, split: Split) -> Option<PathBuf> {
    split_dirs(split).iter().map(|d| root.join(d)).find(|p| p.is_dir())
}

fn read_dir(root: &Path, split: Split) -> Result<(Vec<String>, Vec<Encoded>)> {
    let mut classes = BTreeSet::new();
    for s in [Split::Train, Split::Test] {
        if let Some(dir) = split_dir_on_disk(root, s) {
            for e in std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
                let e = e?;
                if e.file_type()?.is_dir() {
                    classes.insert(e.file_name().to_string_lossy().into_owned());
                }
            }
        }
    }
    let classes: Vec<String> = classes.into_iter().collect();
    let Some(dir) = split_dir_on_disk(root, split) else {
        bail!("{} has no {} folder for the {} split", root.display(), split_dirs(split).join(" or "), split.as_str());
    };
    let mut items = Vec::new();
    // sort_by_file_name: classes in name order, files in name order within each.
    for e in WalkDir::new(&dir).min_depth(2).max_depth(2).sort_by_file_name() {
        let e = e.with_context(|| format!("listing {}", dir.display()))?;
        if !e.file_type().is_file() || !is_image(&e.file_name().to_string_lossy()) {
            continue;
        }
        let class = e.path().parent().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let label = classes.binary_search(&class).expect("class folders were listed above") as i64;
        items.push(Encoded { label, origin: e.path().display().to_string(), source: Source::File(e.into_path()) });
    }
    Ok((classes, items))
}

/// Entries `[prefix/]<split>/<class>/<file>`; any leading folders are allowed (zips often wrap
/// the tree in one top folder).
fn read_zip(path: &Path, split: Split) -> Result<(Vec<String>, Vec<Encoded>)> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file)).with_context(|| format!("{} is not a readable zip archive", path.display()))?;
    // (split name, class, file name, entry index)
    let mut entries: Vec<(String, String, String, usize)> = Vec::new();
    for i in 0..zip.len() {
        let name = zip.name_for_index(i).unwrap_or_default().to_string();
        let parts: Vec<&str> = name.split('/').filter(|p| !p.is_empty()).collect();
        // __MACOSX/: the metadata copy of the tree that zips made on macOS carry.
        if parts.len() < 3 || name.ends_with('/') || !is_image(parts[parts.len() - 1]) || parts[0] == "__MACOSX" {
            continue;
        }
        let n = parts.len();
        entries.push((parts[n - 3].to_string(), parts[n - 2].to_string(), parts[n - 1].to_string(), i));
    }
    let known = |s: &str| split_dirs(Split::Train).contains(&s) || split_dirs(Split::Test).contains(&s);
    let classes: Vec<String> = entries.iter().filter(|e| known(&e.0)).map(|e| e.1.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    let Some(split_name) = split_dirs(split).iter().find(|d| entries.iter().any(|e| e.0 == **d)) else {
        bail!("{} holds no {}/<class>/<image> entries for the {} split", path.display(), split_dirs(split).join(" or "), split.as_str());
    };
    let mut chosen: Vec<_> = entries.into_iter().filter(|e| e.0 == *split_name).collect();
    chosen.sort_by(|a, b| (&a.1, &a.2).cmp(&(&b.1, &b.2)));
    let mut items = Vec::with_capacity(chosen.len());
    for (_, class, file, index) in chosen {
        let mut entry = zip.by_index(index).with_context(|| format!("reading {} in {}", file, path.display()))?;
        let origin = format!("{}:{}", path.display(), entry.name());
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut bytes).with_context(|| format!("reading {origin} (corrupt zip?)"))?;
        let label = classes.binary_search(&class).expect("class list holds every class") as i64;
        items.push(Encoded { label, origin, source: Source::Bytes(bytes) });
    }
    Ok((classes, items))
}
