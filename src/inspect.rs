//! `gps prior inspect`: the candidates a run's positives are drawn from, checked before GPU hours
//! are spent on them. Given a run spec or a sweep file, each distinct table its runs would build
//! (dataset, prior and its options, k, metric, self rule, τ) is built as a run builds it, into the
//! same cache (a run finds it there; a second inspection is instant), and its label purity printed:
//! the share of candidates with their image's label (1.0 for the `labels` oracle), overall and per
//! class; with candidates within τ also τ and how many candidates the images have. The
//! single-prior flags build a run spec with the run's defaults for everything they do not set.

use crate::config::{AutoencoderKind, DataFormat, DatasetSpec, DeviceChoice, Metric, NeighbourMode, PriorNormalization, PriorSpec, RunSpec, TauStat};
use crate::data::{self, Split};
use crate::recipe::Recipe;
use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, clap::Subcommand)]
pub enum PriorCommand {
    /// Label purity of the candidates a prior gives each image: of every table a run spec or a
    /// sweep file would build (one line each), or of one prior on one dataset (the flags).
    Inspect(InspectArgs),
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// A run spec or a sweep file: every distinct neighbour table its runs would build, exactly as
    /// they build it (their priors, options, k, metric, τ), into the cache they use.
    #[arg(conflicts_with_all = ["dataset", "prior"])]
    pub file: Option<PathBuf>,
    /// Or one prior on one dataset: the dataset file or folder (see `gps data info`).
    #[arg(long, required_unless_present = "file", requires = "prior")]
    pub dataset: Option<PathBuf>,
    /// The dataset's name as a run spec gives it: it picks the authors' recipe (normalisation,
    /// crop size) as `dataset.name` does. Default: the file's name.
    #[arg(long)]
    pub name: Option<String>,
    /// auto, image-folder, cifar10-bin, cifar100-bin, idx, mnist-csv, medmnist-npz, fgvc-aircraft
    #[arg(long, default_value = "auto", value_parser = data::cli::parse_format)]
    pub format: DataFormat,
    /// The split whose images are embedded: train (what runs embed) or test.
    #[arg(long, default_value = "train", value_parser = parse_split)]
    pub split: Split,
    /// Keep only this many images, class-balanced (`dataset.train_limit`).
    #[arg(long)]
    pub limit: Option<usize>,
    /// The prior, as a run spec names it (`prior`).
    #[arg(long)]
    pub prior: Option<PriorSpec>,
    /// Neighbours per image (`k`).
    #[arg(long, default_value_t = RunSpec::default().k)]
    pub k: usize,
    /// l2 (a run's default) or cosine (`metric`).
    #[arg(long, default_value = "l2", value_parser = parse_kebab::<Metric>)]
    pub metric: Metric,
    /// Keep each image among its own candidates (`exclude_self: false`).
    #[arg(long)]
    pub keep_self: bool,
    /// Side in pixels the prior sees (`prior_options.input_size`; default: the crop size).
    #[arg(long)]
    pub input_size: Option<u32>,
    /// dataset or imagenet statistics for the prior's input (`prior_options.normalization`).
    #[arg(long, default_value = "dataset", value_parser = parse_kebab::<PriorNormalization>)]
    pub normalization: PriorNormalization,
    /// The ImageNet ResNet's checkpoint (`prior_options.weights`; default: torch hub's cache).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Autoencoder prior: mlp or conv (`prior_options.autoencoder`).
    #[arg(long, default_value = "mlp", value_parser = parse_kebab::<AutoencoderKind>)]
    pub autoencoder: AutoencoderKind,
    /// Autoencoder training epochs (`prior_options.autoencoder_epochs`).
    #[arg(long, default_value_t = crate::config::PriorOptions::default().autoencoder_epochs)]
    pub autoencoder_epochs: usize,
    /// Candidates within this distance instead of the k nearest (`neighbours.tau`).
    #[arg(long, conflicts_with = "adaptive")]
    pub tau: Option<f64>,
    /// Candidates within an adaptive τ: mean+std, mean or mean-std (`neighbours.adaptive`).
    #[arg(long, value_parser = parse_tau_stat)]
    pub adaptive: Option<TauStat>,
    /// Seed of seeded priors (autoencoder, labels).
    #[arg(long, default_value_t = RunSpec::default().seed)]
    pub seed: u64,
    /// auto, cpu or cuda.
    #[arg(long, default_value = "auto", value_parser = parse_kebab::<DeviceChoice>)]
    pub device: DeviceChoice,
    /// Decoded datasets, prior embeddings and neighbour tables are cached here (`cache_dir`).
    #[arg(long, default_value = ".cache")]
    pub cache_dir: PathBuf,
}

fn parse_kebab<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, String> {
    serde_norway::from_str::<T>(s).map_err(|e| e.to_string())
}

fn parse_tau_stat(s: &str) -> Result<TauStat, String> {
    serde_json::from_value::<TauStat>(serde_json::Value::String(s.to_string())).map_err(|_| format!("`{s}`: one of mean+std, mean, mean-std"))
}

fn parse_split(s: &str) -> Result<Split, String> {
    match s {
        "train" => Ok(Split::Train),
        "test" => Ok(Split::Test),
        _ => Err(format!("unknown split `{s}`, expected train or test")),
    }
}

/// What one inspection measured.
#[derive(Debug, Clone)]
pub struct Inspection {
    pub overall: f64,
    pub per_class: Vec<f64>,
    pub classes: Vec<String>,
    pub n: usize,
    /// τ and the candidates per image (mean, median, min, max, share alone) of a table within τ.
    pub tau: Option<f64>,
    pub candidates: Option<(crate::knn::CandidateCounts, f64)>,
    pub seconds: f64,
}

impl PriorCommand {
    pub fn run(self) -> Result<()> {
        match self {
            PriorCommand::Inspect(args) => match &args.file {
                Some(file) => inspect_file(file),
                None => {
                    let spec = args.spec()?;
                    let found = inspect(&spec)?;
                    println!("{}", line(&spec, &found, args.split));
                    println!("{:<20} purity", "class");
                    for (c, v) in found.classes.iter().zip(&found.per_class) {
                        println!("{c:<20} {v:.4}");
                    }
                    Ok(())
                }
            },
        }
    }
}

impl InspectArgs {
    /// The run spec the flags describe: the run's defaults for everything they do not set.
    pub fn spec(&self) -> Result<RunSpec> {
        let dataset = self.dataset.clone().context("give a run spec or sweep file, or --dataset and --prior")?;
        let prior = self.prior.clone().context("--dataset needs --prior")?;
        if !prior.is_guided() {
            bail!("prior `none` has no neighbours to inspect (the baseline's positive is the image itself); pick another prior");
        }
        if let Some(limit) = self.limit.filter(|&l| self.k >= l) {
            bail!("--k {} must be below the {limit} images --limit keeps", self.k);
        }
        let name = self.name.clone().unwrap_or_else(|| dataset.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
        let mut spec = RunSpec {
            dataset: DatasetSpec {
                name,
                format: self.format,
                path: dataset,
                train_limit: self.limit,
                train_split: (self.split == Split::Test).then(|| "test".to_string()),
                ..DatasetSpec::default()
            },
            prior,
            k: self.k,
            exclude_self: !self.keep_self,
            metric: self.metric,
            seed: self.seed,
            device: self.device,
            cache_dir: self.cache_dir.clone(),
            ..RunSpec::default()
        };
        spec.prior_options.input_size = self.input_size;
        spec.prior_options.normalization = self.normalization;
        spec.prior_options.weights = self.weights.clone();
        spec.prior_options.autoencoder = self.autoencoder;
        spec.prior_options.autoencoder_epochs = self.autoencoder_epochs;
        if self.tau.is_some() || self.adaptive.is_some() {
            spec.neighbours.mode = NeighbourMode::Radius;
            spec.neighbours.tau = self.tau;
            spec.neighbours.adaptive = self.adaptive;
        }
        // No training here: a batch and a k-NN classifier the data can hold.
        spec.batch_size = 2;
        spec.eval.knn_k = 1;
        spec.validate().map_err(|e| anyhow::anyhow!("{}", e.to_string().replace("field `k`", "--k")))?;
        Ok(spec)
    }
}

/// Builds (or finds in the cache) the neighbour table `spec`'s run would build, and measures it.
pub fn inspect(spec: &RunSpec) -> Result<Inspection> {
    let started = Instant::now();
    let train = data::load(&spec.dataset, Split::Train, &spec.cache_dir)
        .with_context(|| format!("loading the training split of dataset `{}` ({})", spec.dataset.name, spec.dataset.path.display()))?;
    if spec.k >= train.len() {
        bail!("--k {} (`k`) must be below the {} images embedded", spec.k, train.len());
    }
    let recipe = Recipe::resolve(spec, &train)?;
    let device = crate::device::resolve(spec.device)?;
    let (table, tau) = crate::neighbours::table(spec, &train, &recipe, device)?;
    let (overall, per_class) = table.label_purity(&train.labels_vec(), train.num_classes());
    let candidates = table.fixed_k().is_none().then(|| (table.candidate_counts(), table.self_only_share()));
    Ok(Inspection { overall, per_class, classes: train.classes.clone(), n: train.len(), tau, candidates, seconds: started.elapsed().as_secs_f64() })
}

/// `purity@5 (L2) of prior `pixels` on data/mnist_5k.csv.gz train (4000 images): 0.9123 [0.1 s]`,
/// with τ and the candidate counts for a table within τ.
fn line(spec: &RunSpec, found: &Inspection, split: Split) -> String {
    let what = match (found.tau, found.candidates) {
        (Some(tau), Some((c, alone))) => format!(
            "purity within τ = {tau:.4} ({:?}; candidates per image: mean {:.1}, median {}, min {}, max {}; {:.1}% only themselves)",
            spec.metric,
            c.mean,
            c.median,
            c.min,
            c.max,
            100.0 * alone
        ),
        _ => format!("purity@{} ({:?}{})", spec.k, spec.metric, if spec.exclude_self { "" } else { ", the image among its own" }),
    };
    format!(
        "{what} of prior `{}` on {} {} ({} images): {:.4}   [{:.1} s]",
        spec.prior,
        spec.dataset.path.display(),
        split.as_str(),
        found.n,
        found.overall,
        found.seconds
    )
}

/// Every distinct table of a run spec's or sweep file's runs, one line each.
fn inspect_file(path: &std::path::Path) -> Result<()> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let is_sweep = crate::config::yaml::parse(&text)
        .ok()
        .and_then(|y| crate::config::yaml::to_json(y).ok())
        .is_some_and(|t| t.get("base").is_some() || t.get("grid").is_some());
    let runs: Vec<RunSpec> = if is_sweep {
        let (_, planned) = crate::sweep::load(path, crate::sweep::DEFAULT_MAX_RUNS)?;
        planned.into_iter().map(|r| r.spec).collect()
    } else {
        vec![RunSpec::from_file(path)?]
    };
    // Per table: a run spec that builds it, how many runs draw from it, how many of those
    // rebuild it from their model during training.
    let mut groups: Vec<(String, RunSpec, usize, usize)> = Vec::new();
    let mut baselines = 0;
    for spec in runs {
        if !spec.prior.is_guided() {
            baselines += 1;
            continue;
        }
        let key = crate::neighbours::table_key(&spec);
        let refreshes = usize::from(spec.prior_refresh.every_epochs > 0);
        match groups.iter_mut().find(|g| g.0 == key) {
            Some(g) => {
                g.2 += 1;
                g.3 += refreshes;
            }
            None => groups.push((key, spec, 1, refreshes)),
        }
    }
    println!(
        "{}: {} distinct neighbour tables{}",
        path.display(),
        groups.len(),
        if baselines > 0 { format!(" ({baselines} baseline runs, prior none, have none)") } else { String::new() }
    );
    for (_, spec, runs, refreshing) in &groups {
        let found = inspect(spec).with_context(|| format!("prior `{}` of {}", spec.prior, path.display()))?;
        let plural = |n: usize| if n == 1 { "run" } else { "runs" };
        let refresh = match refreshing {
            0 => String::new(),
            n if n == runs => "; they rebuild it from their model during training (prior_refresh)".to_string(),
            n => format!("; {n} of them rebuild it from their model during training (prior_refresh)"),
        };
        // A prior trained on the data (the autoencoder) is one table per seed: name the seed.
        let seed = if crate::neighbours::table_is_seeded(spec) { format!(", seed {}", spec.seed) } else { String::new() };
        println!("{}   {runs} {}{seed}{refresh}", line(spec, &found, Split::Train), plural(*runs));
    }
    Ok(())
}
