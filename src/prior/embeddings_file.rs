//! `embeddings:<file.npy|.safetensors>`: precomputed embeddings, one row per training image in
//! dataset order (e.g. CLIP or MAE features saved with `np.save`). Keyed by the file's content.

use super::file_sha256;
use crate::data::Dataset;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

pub struct EmbeddingsFile {
    path: PathBuf,
    sha256: String,
}

impl EmbeddingsFile {
    pub fn new(path: &Path) -> Result<EmbeddingsFile> {
        if !path.is_file() {
            bail!("prior `embeddings:{}`: no such file (save an [N, D] array with np.save or safetensors)", path.display());
        }
        Ok(EmbeddingsFile { path: path.to_path_buf(), sha256: file_sha256(path)? })
    }

    fn read(&self) -> Result<Tensor> {
        let p = &self.path;
        let name = p.to_string_lossy().to_ascii_lowercase();
        if name.ends_with(".npy") {
            return Tensor::read_npy(p).with_context(|| format!("cannot read {} as a .npy array", p.display()));
        }
        if name.ends_with(".safetensors") {
            let tensors = Tensor::read_safetensors(p).with_context(|| format!("cannot read {} as safetensors", p.display()))?;
            if tensors.len() == 1 {
                return Ok(tensors.into_iter().next().unwrap().1);
            }
            let names: Vec<String> = tensors.iter().map(|(n, _)| n.clone()).collect();
            return tensors
                .into_iter()
                .find(|(n, _)| n == "embedding" || n == "embeddings")
                .map(|t| t.1)
                .with_context(|| format!("{} holds {} tensors ({}); name the one to use `embeddings`", p.display(), names.len(), names.join(", ")));
        }
        bail!("prior `embeddings:{}`: expected a .npy or .safetensors file", p.display())
    }
}

impl super::Prior for EmbeddingsFile {
    fn key(&self) -> String {
        format!("embeddings|sha256={}", self.sha256)
    }

    fn embed(&self, train: &Dataset, _device: Device) -> Result<Tensor> {
        let t = self.read()?;
        if t.dim() != 2 || t.size()[0] != train.len() as i64 {
            bail!(
                "{} holds an array of shape {:?}, expected [{}, D]: one row per training image, in dataset order",
                self.path.display(),
                t.size(),
                train.len()
            );
        }
        Ok(t.to_kind(Kind::Float))
    }
}

impl std::fmt::Debug for EmbeddingsFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EmbeddingsFile({})", self.path.display())
    }
}
