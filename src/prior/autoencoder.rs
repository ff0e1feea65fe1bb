//! `autoencoder`: an autoencoder trained on the training set itself (no outside data), as the
//! authors' `solo/emb_methods/autoencoder.py` and `conv_autoencoder.py` with their training loop
//! (`solo/utils/misc.py` `train_emb_model`): MSE between the reconstruction and the input, Adam
//! (lr 1e-3, weight decay 1e-5 as L2, betas 0.9/0.999), 100 epochs, batches of 256 in dataset
//! order (their loader does not shuffle), PyTorch's default initialisation. The input is the
//! prior's input (`noTransform`: resized to the crop size, normalised with the dataset's
//! statistics).
//!
//! `mlp` (default sizes [1024, 512, 512]): the flattened image through Linear layers with a ReLU
//! between each (none after the last), a mirrored decoder (no output activation); the embedding
//! is the encoder's output.
//!
//! `conv` (default channels [128, 512, 1024], kernels [5, 3, 3]): blocks of Conv2d (no padding) –
//! ReLU – MaxPool2d(2); the decoder mirrors them with ConvTranspose2d – ReLU – bilinear Upsample(2)
//! per block; the embedding is the global average pool of the encoder's map. As released the
//! conv autoencoder cannot run (README: How this differs from the paper): its embedding
//! `assert`s a 2-D tensor after a 4-D pooling, and its decoder's output is not the input's size
//! (48x48 for 32x32 with the default sizes). gps flattens the pooled map to [N, C] and resizes
//! the decoder's output to the input's size (bilinear) before the loss; nothing else changes.

use super::{Prior, embed_in_batches, network_input};
use crate::config::{AutoencoderKind, PriorOptions};
use crate::data::Dataset;
use crate::knn::SplitMix64;
use crate::recipe::PriorInput;
use anyhow::{Result, bail};
use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};

/// The authors' default sizes (`emb_model/autoencoder_1024_512_512.yaml`,
/// `conv_autoencoder_128_512_1024.yaml`).
pub const MLP_SIZES: [usize; 3] = [1024, 512, 512];
pub const CONV_SIZES: [usize; 3] = [128, 512, 1024];
pub const CONV_KERNELS: [usize; 3] = [5, 3, 3];
const BATCH: usize = 256;
const LR: f64 = 1e-3;
const WEIGHT_DECAY: f64 = 1e-5;

pub struct AutoencoderPrior {
    kind: AutoencoderKind,
    epochs: usize,
    sizes: Vec<usize>,
    kernels: Vec<usize>,
    input: PriorInput,
    seed: u64,
}

impl AutoencoderPrior {
    pub fn new(opts: &PriorOptions, input: PriorInput, seed: u64) -> Result<AutoencoderPrior> {
        let (default_sizes, default_kernels): (&[usize], &[usize]) = match opts.autoencoder {
            AutoencoderKind::Mlp => (&MLP_SIZES, &[]),
            AutoencoderKind::Conv => (&CONV_SIZES, &CONV_KERNELS),
        };
        let sizes = opts.autoencoder_sizes.clone().unwrap_or_else(|| default_sizes.to_vec());
        let kernels = opts.autoencoder_kernels.clone().unwrap_or_else(|| default_kernels.to_vec());
        if opts.autoencoder == AutoencoderKind::Conv && kernels.len() != sizes.len() {
            bail!("prior_options: the conv autoencoder needs one kernel per block: {} sizes, {} kernels", sizes.len(), kernels.len());
        }
        if opts.autoencoder_epochs == 0 || sizes.is_empty() {
            bail!("prior_options: autoencoder_epochs and autoencoder_sizes must be at least 1");
        }
        Ok(AutoencoderPrior { kind: opts.autoencoder, epochs: opts.autoencoder_epochs, sizes, kernels, input, seed })
    }
}

/// Encoder and decoder over one VarStore.
struct Net {
    encoder: nn::Sequential,
    decoder: nn::Sequential,
    /// conv: pool the encoder's map to a vector for the embedding.
    pool: bool,
}

fn mlp(p: &nn::Path, c: i64, h: i64, w: i64, sizes: &[usize]) -> Net {
    let widths: Vec<i64> = std::iter::once(c * h * w).chain(sizes.iter().map(|&s| s as i64)).collect();
    let last = widths.len() - 1;
    let mut encoder = nn::seq().add_fn(|x| x.flatten(1, -1));
    for i in 1..=last {
        encoder = encoder.add(crate::model::init::linear(p / "encoder" / (2 * (i - 1)), widths[i - 1], widths[i], true));
        if i < last {
            encoder = encoder.add_fn(|x| x.relu());
        }
    }
    let mut decoder = nn::seq();
    for (n, i) in (1..=last).rev().enumerate() {
        decoder = decoder.add(crate::model::init::linear(p / "decoder" / (2 * n), widths[i], widths[i - 1], true));
        if i > 1 {
            decoder = decoder.add_fn(|x| x.relu());
        }
    }
    let decoder = decoder.add_fn(move |x| x.view([-1, c, h, w]));
    Net { encoder, decoder, pool: false }
}

fn conv(p: &nn::Path, c: i64, h: i64, w: i64, sizes: &[usize], kernels: &[usize]) -> Result<Net> {
    let channels: Vec<i64> = std::iter::once(c).chain(sizes.iter().map(|&s| s as i64)).collect();
    // Each block: a valid convolution, then a floor-halving max-pool.
    let (mut sh, mut sw) = (h, w);
    for &k in kernels {
        sh = (sh - k as i64 + 1) / 2;
        sw = (sw - k as i64 + 1) / 2;
        if sh < 1 || sw < 1 {
            bail!(
                "the conv autoencoder's blocks (kernels {kernels:?}, each followed by a 2x max-pool) need larger images than {h}x{w}; use smaller kernels or the mlp autoencoder"
            );
        }
    }
    let mut encoder = nn::seq();
    for i in 1..channels.len() {
        encoder = encoder
            .add(nn::conv2d(p / "encoder" / (3 * (i - 1)), channels[i - 1], channels[i], kernels[i - 1] as i64, Default::default()))
            .add_fn(|x| x.relu().max_pool2d_default(2));
    }
    let mut decoder = nn::seq();
    for (n, i) in (1..channels.len()).rev().enumerate() {
        decoder =
            decoder.add(nn::conv_transpose2d(p / "decoder" / (3 * n), channels[i], channels[i - 1], kernels[i - 1] as i64, Default::default())).add_fn(|x| {
                let y = x.relu();
                let (oh, ow) = (y.size()[2] * 2, y.size()[3] * 2);
                y.upsample_bilinear2d([oh, ow], false, None::<f64>, None::<f64>)
            });
    }
    Ok(Net { encoder, decoder, pool: true })
}

impl Net {
    fn embed(&self, x: &Tensor) -> Tensor {
        let z = self.encoder.forward(x);
        if self.pool { z.mean_dim(Some([2i64, 3].as_slice()), false, Kind::Float) } else { z }
    }

    /// The reconstruction, at the input's size.
    fn reconstruct(&self, x: &Tensor) -> Tensor {
        let y = self.decoder.forward(&self.encoder.forward(x));
        let (h, w) = (x.size()[2], x.size()[3]);
        if (y.size()[2], y.size()[3]) == (h, w) { y } else { y.upsample_bilinear2d([h, w], false, None::<f64>, None::<f64>) }
    }
}

impl Prior for AutoencoderPrior {
    fn key(&self) -> String {
        format!(
            "autoencoder|{:?}|sizes={:?}|kernels={:?}|epochs={}|{}|batch={BATCH}|unshuffled|adam lr={LR} wd={WEIGHT_DECAY}|seed={}",
            self.kind,
            self.sizes,
            self.kernels,
            self.epochs,
            self.input.key(),
            self.seed
        )
    }

    fn embed(&self, train: &Dataset, device: Device) -> Result<Tensor> {
        let c = train.channels() as i64;
        let (h, w) = (self.input.size as i64, self.input.size as i64);
        let vs = nn::VarStore::new(device);
        let net = match self.kind {
            AutoencoderKind::Mlp => mlp(&vs.root(), c, h, w, &self.sizes),
            AutoencoderKind::Conv => conv(&vs.root(), c, h, w, &self.sizes, &self.kernels)?,
        };
        init_from_seed(&vs, &mut SplitMix64::new(self.seed));
        let mut opt = nn::Adam { wd: WEIGHT_DECAY, ..Default::default() }.build(&vs, LR)?;
        let n = train.len() as i64;
        let input = |start: i64, len: i64| network_input(&train.images.narrow(0, start, len), device, &self.input, false);
        for epoch in 0..self.epochs {
            let mut total = 0.0;
            // In dataset order, the last batch short: the authors' embedding loader.
            for start in (0..n).step_by(BATCH) {
                let len = (BATCH as i64).min(n - start);
                let x = input(start, len);
                let loss = net.reconstruct(&x).mse_loss(&x, tch::Reduction::Mean);
                opt.backward_step(&loss);
                total += loss.double_value(&[]) * len as f64;
            }
            if !total.is_finite() {
                bail!("autoencoder training diverged at epoch {} (loss {total})", epoch + 1);
            }
        }
        embed_in_batches(&train.images, |b| Ok(net.embed(&network_input(b, device, &self.input, false))))
    }
}

/// PyTorch's default initialisation of Linear, Conv2d and ConvTranspose2d (uniform in
/// ±1/sqrt(fan_in) for weights and biases, fan_in from the weight's dimension 1 as PyTorch
/// computes it), drawn from our own seeded generator: libtorch's global generator is shared by
/// every thread, so seeding it would not make a run reproducible next to other work.
fn init_from_seed(vs: &nn::VarStore, rng: &mut SplitMix64) {
    let vars = vs.variables();
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();
    let _guard = tch::no_grad_guard();
    for name in names {
        let weight_name = name.strip_suffix(".bias").map(|stem| format!("{stem}.weight")).unwrap_or_else(|| name.clone());
        let w = &vars[&weight_name];
        let fan_in = (w.numel() as i64 / w.size()[0]).max(1);
        let bound = 1.0 / (fan_in as f32).sqrt();
        let t = &vars[name];
        let values: Vec<f32> = (0..t.numel()).map(|_| (rng.uniform() as f32 * 2.0 - 1.0) * bound).collect();
        let mut t = t.shallow_clone();
        t.copy_(&Tensor::from_slice(&values).view(t.size().as_slice()).to_device(t.device()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe::Stats;

    fn input(size: u32) -> PriorInput {
        PriorInput { size, stats: Stats { mean: vec![0.5], std: vec![0.25], name: "test".into() } }
    }

    #[test]
    fn the_authors_mlp_layers_and_embedding() {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = mlp(&vs.root(), 3, 32, 32, &MLP_SIZES);
        let shapes: std::collections::BTreeMap<String, Vec<i64>> = vs.variables().into_iter().map(|(n, t)| (n, t.size())).collect();
        // nn.Sequential indices as the authors' module names them (ReLUs take the odd slots).
        assert_eq!(shapes["encoder.0.weight"], [1024, 3072]);
        assert_eq!(shapes["encoder.2.weight"], [512, 1024]);
        assert_eq!(shapes["encoder.4.weight"], [512, 512]);
        assert_eq!(shapes["decoder.0.weight"], [512, 512]);
        assert_eq!(shapes["decoder.4.weight"], [3072, 1024]);
        let x = Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu)) * 3.0;
        let z = net.embed(&x);
        assert_eq!(z.size(), [2, 512]);
        assert!(z.min().double_value(&[]) < 0.0, "no ReLU after the last encoder layer");
        assert_eq!(net.reconstruct(&x).size(), [2, 3, 32, 32]);
    }

    #[test]
    fn the_conv_autoencoder_runs_with_the_two_documented_fixes() {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = conv(&vs.root(), 3, 32, 32, &[8, 16, 32], &CONV_KERNELS).unwrap();
        let x = Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu));
        assert_eq!(net.embed(&x).size(), [2, 32], "pooled to [N, C]");
        // The released decoder gives 48x48 from 32x32: resized back for the loss.
        assert_eq!(net.decoder.forward(&net.encoder.forward(&x)).size()[2], 48);
        assert_eq!(net.reconstruct(&x).size(), [2, 3, 32, 32]);
        assert!(conv(&nn::VarStore::new(Device::Cpu).root(), 1, 12, 12, &[8, 8, 8], &CONV_KERNELS).is_err(), "too small for three blocks");
    }

    #[test]
    fn training_is_seeded_and_embeds_every_image() {
        let mut rng = SplitMix64::new(1);
        let v: Vec<u8> = (0..64 * 28 * 28).map(|_| (rng.uniform() * 255.0) as u8).collect();
        let images = Tensor::from_slice(&v).view([64, 1, 28, 28]);
        let d = Dataset::new(images, Tensor::zeros([64], (Kind::Int64, Device::Cpu)), vec!["a".into()]).unwrap();
        let opts = PriorOptions { autoencoder_epochs: 3, autoencoder_sizes: Some(vec![64, 16]), ..Default::default() };
        let emb = AutoencoderPrior::new(&opts, input(28), 0).unwrap().embed(&d, Device::Cpu).unwrap();
        assert_eq!(emb.size(), [64, 16]);
        let again = AutoencoderPrior::new(&opts, input(28), 0).unwrap().embed(&d, Device::Cpu).unwrap();
        assert!(emb.equal(&again), "seeded: the same embedding twice");
    }
}
