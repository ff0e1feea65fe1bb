//! Priors: embed the training set into the space where neighbours are found.
//!
//! Each prior is one file behind the `Prior` trait; `embed_cached` is what the rest of the crate
//! calls. Embeddings are cached under `<cache>/priors/<hash>.safetensors`, the hash covering the
//! dataset's content, the prior and its options (and the seed for seeded priors), so every run
//! of a sweep that shares them shares one embedding.
mod autoencoder;
mod embeddings_file;
mod finished_run;
pub mod imagenet_resnet;
mod labels;
mod mobilenet;
mod pixels;
mod torchscript;

pub use mobilenet::{MOBILENET_WEIGHTS_FILE, mobilenet_weights_path};

use crate::config::{PriorOptions, PriorSpec};
use crate::data::Dataset;
use crate::recipe::PriorInput;
use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// Bumped when an embedder changes what it computes, so stale cache entries are not reused.
/// 3: bicubic resizing of the prior's input (was bilinear). 4: the prior's input size and
/// statistics as the authors' (crop size, the dataset's statistics), the authors' autoencoders.
const PRIOR_CACHE_VERSION: u32 = 4;

/// Images per forward pass of the encoders (bounded memory on any device).
const BATCH: i64 = 256;

/// One way of embedding a training set.
pub trait Prior {
    /// Everything besides the data that determines the embedding (name, options, weights or
    /// file hash, seed where it matters): part of the cache key.
    fn key(&self) -> String;
    /// [N, D] float32 CPU embedding, row i for image i.
    fn embed(&self, train: &Dataset, device: Device) -> Result<Tensor>;
}

/// The embedder for a prior spec, seeing images as `input` says. Files a prior needs (weights,
/// TorchScript module, embeddings) are checked here, so a missing file fails before any work.
pub fn make(prior: &PriorSpec, opts: &PriorOptions, input: &PriorInput, seed: u64, cache_dir: &Path) -> Result<Box<dyn Prior>> {
    Ok(match prior {
        PriorSpec::None => {
            bail!("prior `none` has no embedding: the baseline's positive is the anchor itself (use NeighbourTable::identity); pick another prior to inspect")
        }
        PriorSpec::Pixels => Box::new(pixels::Pixels { input_size: input.size }),
        PriorSpec::Labels => Box::new(labels::LabelOracle { seed }),
        PriorSpec::ImagenetMobilenetv2 => Box::new(mobilenet::MobileNetV2Prior::new(input.clone(), cache_dir)?),
        PriorSpec::ImagenetResnet18 => {
            Box::new(imagenet_resnet::ImagenetResnetPrior::new(imagenet_resnet::Depth::R18, opts.weights.as_deref(), input.clone())?)
        }
        PriorSpec::ImagenetResnet50 => {
            Box::new(imagenet_resnet::ImagenetResnetPrior::new(imagenet_resnet::Depth::R50, opts.weights.as_deref(), input.clone())?)
        }
        PriorSpec::ImagenetResnet101 => {
            Box::new(imagenet_resnet::ImagenetResnetPrior::new(imagenet_resnet::Depth::R101, opts.weights.as_deref(), input.clone())?)
        }
        PriorSpec::Run(path) => Box::new(finished_run::FinishedRunPrior::new(path, input.clone())?),
        PriorSpec::Autoencoder => Box::new(autoencoder::AutoencoderPrior::new(opts, input.clone(), seed)?),
        PriorSpec::Torchscript(file) => Box::new(torchscript::TorchScriptPrior::new(file, input.size)?),
        PriorSpec::Embeddings(file) => Box::new(embeddings_file::EmbeddingsFile::new(file)?),
    })
}

/// [N, D] float32 CPU embedding of `train` for this prior, cached under
/// cache_dir/priors/<hash>.safetensors where the hash covers the dataset content hash + the
/// prior spec + its options and input (+ seed for trained priors). Also returns that hash (the
/// k-NN cache key). Errors for PriorSpec::None (the baseline has no embedding: callers use
/// NeighbourTable::identity).
pub fn embed_cached(
    prior: &PriorSpec,
    opts: &PriorOptions,
    input: &PriorInput,
    train: &Dataset,
    seed: u64,
    cache_dir: &Path,
    device: Device,
) -> Result<(Tensor, String)> {
    let embedder = make(prior, opts, input, seed, cache_dir)?;
    let hash = hash_of(embedder.as_ref(), train);
    let path = embedding_path(cache_dir, &hash);
    let load = || {
        if !path.exists() {
            return None;
        }
        match read_embedding(&path, train.len()) {
            Ok(e) => Some(e),
            Err(e) => {
                eprintln!("warning: {e:#}; recomputing it");
                None
            }
        }
    };
    // Tables of several k (or rules) over one embedding share it: one process computes it.
    let emb = crate::build_once::build_once(
        &crate::build_once::lock_path(cache_dir, &format!("prior-{hash}")),
        &format!("the embedding of prior `{prior}` ({})", path.display()),
        load,
        || {
            let emb = embedder.embed(train, device).with_context(|| format!("embedding {} images with prior `{prior}`", train.len()))?;
            check_embedding(&emb, train.len(), &format!("prior `{prior}`"))?;
            let emb = emb.to_device(Device::Cpu).to_kind(Kind::Float).contiguous();
            crate::atomic_file::write_via_temp(&path, |tmp| Tensor::write_safetensors(&[("embedding", emb.shallow_clone())], tmp).map_err(Into::into))
                .with_context(|| format!("writing prior cache {}", path.display()))?;
            Ok(emb)
        },
    )?;
    Ok((emb, hash))
}

/// The cache key of `prior` on `train` (what `embed_cached` returns with the embedding), without
/// computing the embedding: callers holding a neighbour table for this key can skip the prior.
pub fn cache_hash(prior: &PriorSpec, opts: &PriorOptions, input: &PriorInput, train: &Dataset, seed: u64, cache_dir: &Path) -> Result<String> {
    Ok(hash_of(make(prior, opts, input, seed, cache_dir)?.as_ref(), train))
}

fn hash_of(embedder: &dyn Prior, train: &Dataset) -> String {
    let key = format!("v{PRIOR_CACHE_VERSION}|{}|{}", train.content_hash(), embedder.key());
    Sha256::digest(key.as_bytes()).iter().take(16).map(|b| format!("{b:02x}")).collect()
}

pub fn embedding_path(cache_dir: &Path, hash: &str) -> PathBuf {
    cache_dir.join("priors").join(format!("{hash}.safetensors"))
}

fn read_embedding(path: &Path, n: usize) -> Result<Tensor> {
    let t = Tensor::read_safetensors(path)
        .with_context(|| format!("prior cache {} is corrupt or unreadable", path.display()))?
        .into_iter()
        .find(|(name, _)| name == "embedding")
        .with_context(|| format!("prior cache {} has no `embedding` tensor", path.display()))?
        .1;
    check_embedding(&t, n, &format!("prior cache {}", path.display()))?;
    Ok(t)
}

/// [n, D] with D >= 1: anything else would index the wrong images.
fn check_embedding(t: &Tensor, n: usize, what: &str) -> Result<()> {
    if t.dim() != 2 || t.size()[0] != n as i64 || t.size()[1] < 1 {
        bail!("{what} gave an embedding of shape {:?}, expected [{n}, D] (one row per training image)", t.size());
    }
    Ok(())
}

/// uint8 images [B,C,H,W] to float in [0,1] on `device`, resized to `size` when given as the
/// authors' prior transform resizes (`Resize((s, s), BICUBIC)` on PIL images, PIL's 8-bit
/// arithmetic exactly: `resize_bytes_like_pil`). Measured against bilinear on CIFAR-10 with
/// MobileNetV2 at 64 px (README, Priors): bicubic gives the purer neighbours.
pub fn to_float(images: &Tensor, device: Device, size: Option<u32>) -> Tensor {
    let images = images.to_device(device);
    let (h, w) = (images.size()[2], images.size()[3]);
    let images = match size.map(|s| s as i64) {
        Some(s) if (h, w) != (s, s) => crate::augment::resize_bytes_like_pil(&images, s as usize, s as usize),
        _ => images,
    };
    images.to_kind(Kind::Float) / 255.0
}

/// uint8 images [B,C,H,W] as an ImageNet network or an autoencoder of the authors' sees them
/// (`noTransform`): bicubic-resized to `input.size`, normalised with `input.stats`, and, for
/// `rgb` networks, one-channel images repeated to three channels after normalising (as the
/// authors' development code feeds TissueMNIST to the ImageNet ResNet-50).
pub fn network_input(images: &Tensor, device: Device, input: &PriorInput, rgb: bool) -> Tensor {
    let x = to_float(images, device, Some(input.size));
    let c = x.size()[1];
    let to = |v: &[f64]| Tensor::from_slice(&v.iter().map(|&x| x as f32).collect::<Vec<_>>()).view([1, c, 1, 1]).to_device(device);
    let x = (x - to(&input.stats.mean)) / to(&input.stats.std);
    if rgb && c == 1 { x.repeat([1, 3, 1, 1]) } else { x }
}

/// Runs `f` over the images in batches (no grad) and stacks the [B, D] outputs on the CPU.
fn embed_in_batches(images: &Tensor, mut f: impl FnMut(&Tensor) -> Result<Tensor>) -> Result<Tensor> {
    let _guard = tch::no_grad_guard();
    let n = images.size()[0];
    let mut parts = Vec::new();
    for start in (0..n).step_by(BATCH as usize) {
        let batch = images.narrow(0, start, BATCH.min(n - start));
        parts.push(f(&batch)?.flatten(1, -1).to_device(Device::Cpu).to_kind(Kind::Float));
    }
    Ok(Tensor::cat(&parts, 0))
}

/// sha256 hex of a file (keys priors that read a user's file by its content, not its path).
fn file_sha256(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).with_context(|| format!("reading {}", path.display()))?;
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}
