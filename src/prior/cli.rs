//! `gps prior inspect`: the neighbour label purity of a prior, overall and per class, so a
//! researcher checks a prior before spending GPU hours on it.
use crate::config::{AutoencoderKind, DataFormat, DatasetSpec, DeviceChoice, Metric, PriorOptions, PriorSpec};
use crate::data::{self, Split};
use anyhow::{Context, Result, bail};
use std::path::PathBuf;

#[derive(Debug, clap::Subcommand)]
pub enum PriorCommand {
    /// Neighbour label purity@k of a prior: the share of each image's k nearest neighbours in
    /// prior space that have its label (1.0 = the `labels` oracle).
    Inspect(InspectArgs),
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Dataset file or folder (see `gps data info`).
    #[arg(long)]
    pub dataset: PathBuf,
    /// auto, image-folder, cifar10-bin, cifar100-bin, idx, mnist-csv, medmnist-npz
    #[arg(long, default_value = "auto", value_parser = data::cli::parse_format)]
    pub format: DataFormat,
    /// train or test.
    #[arg(long, default_value = "train", value_parser = parse_split)]
    pub split: Split,
    /// Keep only this many images, class-balanced.
    #[arg(long)]
    pub limit: Option<usize>,
    /// pixels, autoencoder, imagenet-mobilenetv2, torchscript:<file.pt>, embeddings:<file.npy|.safetensors>,
    /// labels. A TorchScript encoder takes float images in [0,1] [B,C,H,W] and returns [B,D]:
    /// `torch.jit.trace(torch.nn.Sequential(normalize, resnet_without_fc).eval(), torch.rand(2,3,32,32)).save("enc.pt")`
    #[arg(long)]
    pub prior: PriorSpec,
    /// Neighbours per image.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// cosine or l2.
    #[arg(long, default_value = "cosine", value_parser = parse_metric)]
    pub metric: Metric,
    /// Side in pixels the prior sees (MobileNetV2: 64 when unset).
    #[arg(long)]
    pub input_size: Option<u32>,
    /// Autoencoder prior: mlp or conv.
    #[arg(long, default_value = "mlp", value_parser = parse_autoencoder)]
    pub autoencoder: AutoencoderKind,
    /// Autoencoder training epochs (the run spec's default, so `inspect` and runs share the cache).
    #[arg(long, default_value_t = PriorOptions::default().autoencoder_epochs)]
    pub autoencoder_epochs: usize,
    /// Seed of seeded priors (autoencoder, labels).
    #[arg(long, default_value_t = 5)]
    pub seed: u64,
    /// auto, cpu or cuda.
    #[arg(long, default_value = "auto", value_parser = parse_device)]
    pub device: DeviceChoice,
    /// Decoded datasets and prior embeddings are cached here.
    #[arg(long, default_value = ".cache")]
    pub cache_dir: PathBuf,
}

fn parse_kebab<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, String> {
    serde_norway::from_str::<T>(s).map_err(|e| e.to_string())
}
fn parse_split(s: &str) -> Result<Split, String> {
    match s {
        "train" => Ok(Split::Train),
        "test" => Ok(Split::Test),
        _ => Err(format!("unknown split `{s}`, expected train or test")),
    }
}
fn parse_metric(s: &str) -> Result<Metric, String> {
    parse_kebab(s)
}
fn parse_autoencoder(s: &str) -> Result<AutoencoderKind, String> {
    parse_kebab(s)
}
fn parse_device(s: &str) -> Result<DeviceChoice, String> {
    parse_kebab(s)
}

/// What `inspect` measured: overall and per-class purity.
#[derive(Debug, Clone)]
pub struct Purity {
    pub overall: f64,
    pub per_class: Vec<f64>,
    pub classes: Vec<String>,
    pub n: usize,
    /// Embedding width.
    pub dim: usize,
}

impl PriorCommand {
    pub fn run(self) -> Result<()> {
        match self {
            PriorCommand::Inspect(args) => {
                let start = std::time::Instant::now();
                let p = inspect(&args)?;
                println!(
                    "purity@{} ({:?}) of prior `{}` on {} {} ({} images, {}-d): {:.4}   [{:.1} s]",
                    args.k,
                    args.metric,
                    args.prior,
                    args.dataset.display(),
                    args.split.as_str(),
                    p.n,
                    p.dim,
                    p.overall,
                    start.elapsed().as_secs_f64()
                );
                println!("{:<20} purity", "class");
                for (c, v) in p.classes.iter().zip(&p.per_class) {
                    println!("{c:<20} {v:.4}");
                }
                Ok(())
            }
        }
    }
}

/// Loads the split, embeds it with the prior (cached), builds the k-NN table and measures purity.
pub fn inspect(args: &InspectArgs) -> Result<Purity> {
    if !args.prior.is_guided() {
        bail!("prior `none` has no neighbours to inspect (the baseline's positive is the image itself); pick another prior");
    }
    let spec = DatasetSpec {
        name: args.dataset.display().to_string(),
        format: args.format,
        path: args.dataset.clone(),
        train_limit: args.limit,
        test_limit: args.limit,
        ..DatasetSpec::default()
    };
    let d = data::load(&spec, args.split, &args.cache_dir)?;
    if args.k == 0 || args.k >= d.len() {
        bail!("--k {} must be in 1..{} (the split has {} images)", args.k, d.len(), d.len());
    }
    let device = crate::device::resolve(args.device)?;
    let opts =
        PriorOptions { input_size: args.input_size, autoencoder: args.autoencoder, autoencoder_epochs: args.autoencoder_epochs, ..PriorOptions::default() };
    let run = crate::config::RunSpec { dataset: spec, prior: args.prior.clone(), prior_options: opts, seed: args.seed, ..Default::default() };
    let stats = crate::recipe::normalization(&run.dataset, &d)?;
    let input = crate::recipe::PriorInput::resolve(&run, &d, &stats)?;
    let (emb, _hash) = super::embed_cached(&run.prior, &run.prior_options, &input, &d, run.seed, &args.cache_dir, device)?;
    let table = crate::knn::build_table(&emb, args.k, args.metric, device).context("building the neighbour table")?;
    let (overall, per_class) = table.label_purity(&d.labels_vec(), d.num_classes());
    Ok(Purity { overall, per_class, classes: d.classes.clone(), n: d.len(), dim: emb.size()[1] as usize })
}
