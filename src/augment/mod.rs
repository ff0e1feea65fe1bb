//! Batched augmentation on the compute device with per-sample random parameters, computing what
//! the authors' torchvision/PIL pipelines compute (checked op by op against them in
//! `tests/parity.rs`).
//!
//! The random parameters of a batch are drawn on the CPU from a seeded SplitMix64, as
//! torchvision's transforms draw theirs (`sample`), so a step's augmentation is the same on every
//! device and after a resume. The pixel work runs as whole-batch tensor ops where the data lives:
//! crop + bicubic resize + flip as two batched matrix products (`resample`), ColorJitter's four
//! ops in each image's own random order on the subsets of images that run them, grayscale, PIL's
//! box-pass Gaussian blur on the blurred subset, solarisation. Op order is the authors':
//! crop → colour jitter → grayscale → blur → solarise → flip (folded into the crop).
mod params;
mod pixel_ops;
pub mod sample;

pub use crate::resample::{Filter, resize_bytes_like_pil, resize_like_pil, resize_like_pil_with};
pub use params::{Pipeline, view_pipelines};
pub use pixel_ops::box_pass;

use crate::knn::SplitMix64;
use crate::recipe::EvalTransform;
use sample::Draw;
use tch::{Device, Kind, Tensor};

/// Augments uint8 batches into normalised float batches with one pipeline.
pub struct Augmenter {
    pipeline: Pipeline,
    mean: Tensor,
    std: Tensor,
    /// Side of the output views (the authors' `crop_size`); None: the input's size.
    crop: Option<usize>,
}

impl Augmenter {
    /// `mean`/`std`: per-channel normalisation statistics (in [0, 1] units). Views keep the
    /// images' size (`with_crop` sets another).
    pub fn new(pipeline: Pipeline, mean: &[f64], std: &[f64], device: Device) -> Augmenter {
        let c = mean.len() as i64;
        let to = |v: &[f64]| Tensor::from_slice(&v.iter().map(|&x| x as f32).collect::<Vec<_>>()).view([1, c, 1, 1]).to_device(device);
        Augmenter { pipeline, mean: to(mean), std: to(std), crop: None }
    }

    /// Views of `crop` x `crop` pixels: the random crop's output size, or (pipelines without a
    /// crop) the whole image resized to it with PIL's bicubic, as torchvision's `Resize((crop,
    /// crop))` in the authors' pipelines without RandomResizedCrop.
    pub fn with_crop(mut self, crop: u32) -> Augmenter {
        self.crop = Some(crop as usize);
        self
    }

    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// uint8 [B, C, H, W] → augmented, normalised float32 [B, C, H, W] on the same device.
    pub fn apply(&self, images: &Tensor, rng: &mut SplitMix64) -> Tensor {
        let (b, _, h, w) = images.size4().expect("images are [B, C, H, W]");
        let draws: Vec<Draw> = (0..b).map(|_| sample::draw(&self.pipeline, h as usize, w as usize, rng)).collect();
        (self.augment_float(images, &draws) - &self.mean) / &self.std
    }

    /// The pixel work of `draws` (one per image) on uint8 `images`, in [0, 1], before
    /// normalisation.
    pub fn augment_float(&self, images: &Tensor, draws: &[Draw]) -> Tensor {
        let _guard = tch::no_grad_guard();
        let device = images.device();
        let (b, _, h, w) = images.size4().expect("images are [B, C, H, W]");
        let (h, w) = (h as usize, w as usize);
        let (oh, ow) = self.crop.map(|c| (c, c)).unwrap_or((h, w));
        let mut x = images.to_kind(Kind::Float) / 255.0;
        let column = |f: &dyn Fn(&Draw) -> f32| Tensor::from_slice(&draws.iter().map(f).collect::<Vec<f32>>()).to_device(device);

        if self.pipeline.crop_scale.is_some() || (oh, ow) != (h, w) {
            // Crop box (the whole image without a random crop) + bicubic resize + flip, as one
            // [out, in] matrix per axis and image.
            let (mut wy, mut wx) = (vec![0f32; draws.len() * oh * h], vec![0f32; draws.len() * ow * w]);
            for (i, d) in draws.iter().enumerate() {
                let c = d.crop.unwrap_or(sample::CropBox { top: 0, left: 0, height: h, width: w });
                crate::resample::write_axis_matrix(&mut wy[i * oh * h..(i + 1) * oh * h], h, c.top, c.height, oh, false);
                crate::resample::write_axis_matrix(&mut wx[i * ow * w..(i + 1) * ow * w], w, c.left, c.width, ow, d.flip);
            }
            let wy = Tensor::from_slice(&wy).view([b, oh as i64, h as i64]).to_device(device);
            let wx = Tensor::from_slice(&wx).view([b, ow as i64, w as i64]).to_device(device);
            x = crate::resample::apply(&x, &wy, &wx);
        } else if draws.iter().any(|d| d.flip) {
            x = pixel_ops::flip_where(&x, &column(&|d| d.flip as u8 as f32));
        }

        if draws.iter().any(|d| d.jitter.is_some()) {
            // Round r applies, to each jittered image, the r-th op of its own order: per (round,
            // op) the subset of images that run it, gathered, changed and written back.
            for round in 0..4 {
                for op in 0..4 {
                    let (idx, factors): (Vec<i64>, Vec<f32>) = draws
                        .iter()
                        .enumerate()
                        .filter_map(|(i, d)| {
                            d.jitter.filter(|j| j.order[round] == op && !identity(op, j.factors[op])).map(|j| (i as i64, j.factors[op] as f32))
                        })
                        .unzip();
                    if idx.is_empty() {
                        continue;
                    }
                    let idx = Tensor::from_slice(&idx).to_device(device);
                    let f = Tensor::from_slice(&factors).to_device(device);
                    let changed = pixel_ops::jitter_op(&x.index_select(0, &idx), op, &f);
                    x = x.index_copy(0, &idx, &changed);
                }
            }
        }
        if draws.iter().any(|d| d.gray) && x.size()[1] == 3 {
            x = pixel_ops::grayscale_where(&x, &column(&|d| d.gray as u8 as f32));
        }
        let blurred: Vec<(i64, f64)> = draws.iter().enumerate().filter_map(|(i, d)| d.blur_sigma.map(|s| (i as i64, s))).collect();
        if !blurred.is_empty() {
            let passes: Vec<(usize, f64, f64)> = blurred.iter().map(|&(_, s)| pixel_ops::box_pass(s)).collect();
            let radius = passes.iter().map(|p| p.0).max().unwrap_or(0) + 1;
            let taps = 2 * radius + 1;
            let mut kernels = vec![0f32; passes.len() * taps];
            for (row, &(r, ww, fw)) in kernels.chunks_mut(taps).zip(&passes) {
                for (t, k) in row.iter_mut().enumerate() {
                    let offset = t.abs_diff(radius);
                    *k = if offset <= r {
                        ww as f32
                    } else if offset == r + 1 {
                        fw as f32
                    } else {
                        0.0
                    };
                }
            }
            let idx = Tensor::from_slice(&blurred.iter().map(|p| p.0).collect::<Vec<_>>()).to_device(device);
            let kernels = Tensor::from_slice(&kernels).view([passes.len() as i64, taps as i64]).to_device(device);
            let changed = pixel_ops::box_blur(&x.index_select(0, &idx), &kernels);
            x = x.index_copy(0, &idx, &changed);
        }
        if draws.iter().any(|d| d.solarize) {
            x = pixel_ops::solarize_where(&x, &column(&|d| d.solarize as u8 as f32));
        }
        x
    }

    /// Evaluation transform: no augmentation, only scaling and normalisation.
    pub fn normalize(&self, images: &Tensor) -> Tensor {
        (images.to_kind(Kind::Float) / 255.0 - &self.mean) / &self.std
    }

    /// Evaluation with a transform: `transform` (resize, centre crop) of uint8 images, normalised.
    pub fn evaluation_view(&self, images: &Tensor, transform: &EvalTransform) -> Tensor {
        if *transform == EvalTransform::default() {
            return self.normalize(images);
        }
        (eval_transform(&(images.to_kind(Kind::Float) / 255.0), transform) - &self.mean) / &self.std
    }
}

/// torchvision's evaluation transform on float images in [0, 1]: `Resize(S)` of the shorter side
/// (the longer side `int(S · long / short)`, PIL's bilinear), then `CenterCrop(C)` (top
/// `round((h − C) / 2)`). A resize to the size the images already have is skipped.
pub fn eval_transform(x: &Tensor, t: &EvalTransform) -> Tensor {
    let mut x = x.shallow_clone();
    if let Some(s) = t.resize {
        let (h, w) = (x.size()[2] as usize, x.size()[3] as usize);
        let s = s as usize;
        let (nh, nw) = if h <= w { (s, s * w / h) } else { (s * h / w, s) };
        if (nh, nw) != (h, w) {
            x = resize_like_pil_with(Filter::Bilinear, &x, nh, nw);
        }
    }
    if let Some(c) = t.center_crop {
        let (h, w) = (x.size()[2], x.size()[3]);
        let c = c as i64;
        let c_h = c.min(h);
        let c_w = c.min(w);
        // Python's round() halves to even: (h − c)/2 = 1.5 gives 2, 2.5 gives 2.
        let half_to_even = |d: i64| if d % 2 == 1 && (d / 2) % 2 == 0 { d / 2 } else { (d + 1) / 2 };
        let (top, left) = (half_to_even(h - c_h), half_to_even(w - c_w));
        x = x.narrow(2, top, c_h).narrow(3, left, c_w);
    }
    x
}

/// A jitter factor that leaves the image as it is (the op is skipped).
fn identity(op: usize, f: f64) -> bool {
    if op == sample::HUE { f == 0.0 } else { f == 1.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images() -> Tensor {
        let mut rng = SplitMix64::new(0);
        let v: Vec<u8> = (0..8 * 3 * 32 * 32).map(|_| (rng.uniform() * 256.0) as u8).collect();
        Tensor::from_slice(&v).view([8, 3, 32, 32])
    }

    fn augmenter(p: Pipeline) -> Augmenter {
        Augmenter::new(p, &[0.5, 0.5, 0.5], &[0.25, 0.25, 0.25], Device::Cpu)
    }

    #[test]
    fn none_only_normalises() {
        let x = images();
        let a = augmenter(Pipeline::NONE);
        assert!(a.apply(&x, &mut SplitMix64::new(1)).allclose(&a.normalize(&x), 1e-6, 1e-6, false));
    }

    #[test]
    fn weak_is_flip_only() {
        let x = images();
        let a = augmenter(Pipeline::RECONSTRUCTION);
        let y = a.apply(&x, &mut SplitMix64::new(3));
        let plain = a.normalize(&x);
        let flipped = plain.flip([3]);
        let mut n_flipped = 0;
        for i in 0..8 {
            let same = y.get(i).allclose(&plain.get(i), 1e-6, 1e-6, false);
            let flip = y.get(i).allclose(&flipped.get(i), 1e-6, 1e-6, false);
            assert!(same || flip, "image {i} is neither itself nor its mirror");
            n_flipped += flip as usize;
        }
        assert!(n_flipped > 0 && n_flipped < 8, "flip p=0.5 on 8 images: {n_flipped}");
    }

    #[test]
    fn every_pipeline_is_deterministic_finite_and_in_range() {
        let x = images();
        for p in [Pipeline::SYMMETRIC, Pipeline::ASYMMETRIC_2, Pipeline::VICREG, Pipeline::WEAK_RRC, Pipeline::with_strength(0.4)] {
            let a = augmenter(p);
            let y1 = a.apply(&x, &mut SplitMix64::new(9));
            let y2 = a.apply(&x, &mut SplitMix64::new(9));
            let y3 = a.apply(&x, &mut SplitMix64::new(10));
            assert!(y1.equal(&y2), "same seed, same augmentation");
            assert!(!y1.allclose(&y3, 1e-3, 1e-3, false));
            assert_eq!(y1.size(), [8, 3, 32, 32]);
            // Normalised [0, 1] images: (0 − 0.5)/0.25 = −2 to 2.
            let (lo, hi) = (y1.min().double_value(&[]), y1.max().double_value(&[]));
            assert!(lo >= -2.0 - 1e-5 && hi <= 2.0 + 1e-5, "{p:?}: {lo}..{hi}");
        }
    }
}
