//! The decoded cache: one safetensors file per (source, format, split, decode-time geometry), so
//! 60k JPEGs decode once. The file records a fingerprint of the sources (path, size, mtime of
//! every file read); a changed source rebuilds the entry, a corrupt entry is reported and rebuilt.

use super::{Dataset, Request, Split, decode_request, source_files};
use crate::config::{DataFormat, DatasetSpec};
use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;
use tch::{Kind, Tensor};

/// Bumped when the decoded layout changes, so old caches are rebuilt rather than misread.
/// 2: MedMNIST class names, split names and the decode-time geometry.
const CACHE_VERSION: u32 = 2;

/// Where the decoded split of a spec (its `train_split`/`test_split`, resize and crop) lives
/// under `cache_dir`.
pub fn cache_path(cache_dir: &Path, spec: &DatasetSpec, split: Split) -> Result<PathBuf> {
    let format = super::resolve_format(spec.format, &spec.path)?;
    Ok(entry_path(cache_dir, &spec.path, format, &super::request(spec, format, split)?))
}

/// The key: the source's absolute path, the format, the split's name in the files and, when set,
/// the decode-time geometry.
fn entry_path(cache_dir: &Path, path: &Path, format: DataFormat, request: &Request) -> PathBuf {
    let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mut key = format!("{}|{format:?}|{}", abs.display(), request.split);
    if !request.geometry.is_identity() {
        key.push_str(&format!("|{}", request.geometry.describe()));
    }
    let hex: String = Sha256::digest(key.as_bytes()).iter().take(8).map(|b| format!("{b:02x}")).collect();
    cache_dir.join("datasets").join(format!("{hex}-{}.safetensors", request.split))
}

pub(super) fn load_or_decode(path: &Path, format: DataFormat, request: &Request, cache_dir: &Path) -> Result<Dataset> {
    let format = super::resolve_format(format, path)?;
    let fingerprint = fingerprint(&source_files(path, format, request.split)?)?;
    let file = entry_path(cache_dir, path, format, request);
    let load = || {
        if !file.exists() {
            return None;
        }
        match read(&file) {
            Ok((d, fp)) if fp == fingerprint => Some(d),
            Ok(_) => None, // the sources changed: rebuild quietly, that is what the fingerprint is for
            Err(e) => {
                eprintln!("warning: decoded cache {} is unusable ({e:#}); rebuilding it", file.display());
                None
            }
        }
    };
    let stem = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    crate::build_once::build_once(
        &crate::build_once::lock_path(cache_dir, &format!("data-{stem}")),
        &format!("the decoded {} split of {} ({})", request.split, path.display(), file.display()),
        load,
        || {
            let d = decode_request(path, format, request)?;
            write(&file, &d, &fingerprint).with_context(|| format!("writing decoded cache {}", file.display()))?;
            Ok(d)
        },
    )
}

/// sha256 over (path, size, mtime) of each source file.
fn fingerprint(files: &[PathBuf]) -> Result<String> {
    let mut h = Sha256::new();
    h.update(CACHE_VERSION.to_le_bytes());
    for f in files {
        let meta = std::fs::metadata(f).with_context(|| format!("reading {}", f.display()))?;
        let mtime = meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_nanos()).unwrap_or(0);
        h.update(format!("{}|{}|{mtime}\n", f.display(), meta.len()).as_bytes());
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Meta {
    fingerprint: String,
    classes: Vec<String>,
}

fn write(file: &Path, d: &Dataset, fingerprint: &str) -> Result<()> {
    let meta = serde_json::to_vec(&Meta { fingerprint: fingerprint.to_string(), classes: d.classes.clone() })?;
    crate::atomic_file::write_via_temp(file, |tmp| {
        let tensors = [("images", d.images.shallow_clone()), ("labels", d.labels.shallow_clone()), ("meta", Tensor::from_slice(&meta))];
        Tensor::write_safetensors(&tensors, tmp).map_err(Into::into)
    })
}

fn read(file: &Path) -> Result<(Dataset, String)> {
    let mut tensors = Tensor::read_safetensors(file)?;
    let mut take = |name: &str| -> Result<Tensor> {
        match tensors.iter().position(|(n, _)| n == name) {
            Some(i) => Ok(tensors.swap_remove(i).1),
            None => bail!("no `{name}` tensor"),
        }
    };
    let (images, labels, meta) = (take("images")?, take("labels")?, take("meta")?);
    if meta.kind() != Kind::Uint8 {
        bail!("`meta` is not bytes");
    }
    let meta: Meta = serde_json::from_slice(&Vec::<u8>::try_from(&meta)?)?;
    Ok((Dataset::new(images, labels, meta.classes)?, meta.fingerprint))
}
