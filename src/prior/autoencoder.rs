//! `autoencoder`: an autoencoder trained on the training set itself (no outside data), as in the
//! authors' code: MSE reconstruction, Adam lr 1e-3, weight decay 1e-5; the embedding is the
//! latent. `mlp`: flatten -> Linear(1024) -> ReLU -> Linear(dim), mirrored decoder. `conv`:
//! three Conv-ReLU-MaxPool2 blocks (kernels 5, 3, 3), embedding = global average pool of the
//! encoder output, transposed-conv decoder. Sizes are smaller than the authors' so it trains on
//! a CPU; `prior_options.autoencoder_dim` sets the latent width.

use super::{Prior, embed_in_batches, to_float};
use crate::config::{AutoencoderKind, PriorOptions};
use crate::data::Dataset;
use crate::knn::SplitMix64;
use anyhow::{Result, bail};
use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};

const HIDDEN: i64 = 1024;
const CONV_CHANNELS: [i64; 2] = [32, 64];
const BATCH: usize = 256;
const LR: f64 = 1e-3;
const WEIGHT_DECAY: f64 = 1e-5;

pub struct AutoencoderPrior {
    kind: AutoencoderKind,
    epochs: usize,
    dim: i64,
    seed: u64,
}

impl AutoencoderPrior {
    pub fn new(opts: &PriorOptions, seed: u64) -> AutoencoderPrior {
        AutoencoderPrior { kind: opts.autoencoder, epochs: opts.autoencoder_epochs, dim: opts.autoencoder_dim as i64, seed }
    }
}

/// Encoder and decoder as closures over one VarStore.
struct Net {
    encoder: nn::Sequential,
    decoder: nn::Sequential,
    /// conv: pool the encoder's map to a vector for the embedding.
    pool: bool,
}

fn build(kind: AutoencoderKind, p: &nn::Path, c: i64, h: i64, w: i64, dim: i64) -> Net {
    match kind {
        AutoencoderKind::Mlp => {
            let d = c * h * w;
            let encoder = nn::seq()
                .add_fn(|x| x.flatten(1, -1))
                .add(nn::linear(p / "enc1", d, HIDDEN, Default::default()))
                .add_fn(|x| x.relu())
                .add(nn::linear(p / "enc2", HIDDEN, dim, Default::default()));
            let decoder = nn::seq()
                .add(nn::linear(p / "dec1", dim, HIDDEN, Default::default()))
                .add_fn(|x| x.relu())
                .add(nn::linear(p / "dec2", HIDDEN, d, Default::default()))
                .add_fn(move |x| x.view([-1, c, h, w]));
            Net { encoder, decoder, pool: false }
        }
        AutoencoderKind::Conv => {
            let chans = [c, CONV_CHANNELS[0], CONV_CHANNELS[1], dim];
            let kernels = [5, 3, 3];
            let mut encoder = nn::seq();
            for i in 0..3 {
                let cfg = nn::ConvConfig { padding: kernels[i] / 2, ..Default::default() };
                encoder = encoder.add(nn::conv2d(p / format!("enc{i}"), chans[i], chans[i + 1], kernels[i], cfg)).add_fn(|x| x.relu().max_pool2d_default(2));
            }
            let mut decoder = nn::seq();
            for i in (0..3).rev() {
                let cfg = nn::ConvTransposeConfig { stride: 2, ..Default::default() };
                decoder = decoder.add(nn::conv_transpose2d(p / format!("dec{i}"), chans[i + 1], chans[i], 2, cfg));
                if i > 0 {
                    decoder = decoder.add_fn(|x| x.relu());
                }
            }
            // Sizes not divisible by 8 lose pixels in the pooling: scale the output back.
            let decoder = decoder.add_fn(move |x| {
                if (x.size()[2], x.size()[3]) == (h, w) { x.shallow_clone() } else { x.upsample_bilinear2d([h, w], false, None::<f64>, None::<f64>) }
            });
            Net { encoder, decoder, pool: true }
        }
    }
}

impl Net {
    fn embed(&self, x: &Tensor) -> Tensor {
        let z = self.encoder.forward(x);
        if self.pool { z.mean_dim(Some([2i64, 3].as_slice()), false, Kind::Float) } else { z }
    }
}

impl Prior for AutoencoderPrior {
    fn key(&self) -> String {
        format!(
            "autoencoder|{:?}|dim={}|epochs={}|hidden={HIDDEN}|conv={CONV_CHANNELS:?}|batch={BATCH}|lr={LR}|wd={WEIGHT_DECAY}|seed={}",
            self.kind, self.dim, self.epochs, self.seed
        )
    }

    fn embed(&self, train: &Dataset, device: Device) -> Result<Tensor> {
        if self.dim < 1 || self.epochs < 1 {
            bail!("prior_options: autoencoder_dim and autoencoder_epochs must be at least 1");
        }
        let (c, (h, w)) = (train.channels() as i64, train.image_size());
        let (h, w) = (h as i64, w as i64);
        if self.kind == AutoencoderKind::Conv && (h < 8 || w < 8) {
            bail!("the conv autoencoder needs images of at least 8x8 pixels (three 2x poolings), got {h}x{w}");
        }
        let vs = nn::VarStore::new(device);
        let net = build(self.kind, &vs.root(), c, h, w, self.dim);
        let mut rng = SplitMix64::new(self.seed);
        init_from_seed(&vs, &mut rng);
        let mut opt = nn::Adam { wd: WEIGHT_DECAY, ..Default::default() }.build(&vs, LR)?;
        let n = train.len();
        for epoch in 0..self.epochs {
            let order: Vec<i64> = rng.permutation(n).into_iter().map(i64::from).collect();
            let mut total = 0.0;
            for idx in order.chunks(BATCH) {
                let x = to_float(&train.images.index_select(0, &Tensor::from_slice(idx)), device, None);
                let loss = net.decoder.forward(&net.encoder.forward(&x)).mse_loss(&x, tch::Reduction::Mean);
                opt.backward_step(&loss);
                total += loss.double_value(&[]) * idx.len() as f64;
            }
            if !(total.is_finite()) {
                bail!("autoencoder training diverged at epoch {epoch} (loss {total})");
            }
        }
        embed_in_batches(&train.images, |b| Ok(net.embed(&to_float(b, device, None))))
    }
}

/// PyTorch's default initialisation (uniform in ±1/sqrt(fan_in) for weights and biases) drawn
/// from our own seeded generator: libtorch's global generator is shared by every thread, so
/// seeding it would not make a run reproducible next to other work in the same process.
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
