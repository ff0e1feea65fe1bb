//! Batched augmentation on the compute device with per-sample random parameters.
//!
//! The random parameters of a batch are drawn on the CPU from a seeded SplitMix64 (a few floats
//! per image, one host-to-device copy), so a step's augmentation is the same on every device and
//! after a resume. The pixel work (crop+flip by one grid_sample, colour jitter, grayscale, blur,
//! solarize) runs as whole-batch tensor ops where the data lives. Op order follows the authors'
//! pipeline: crop → colour jitter → grayscale → blur → solarize → flip (folded into the crop).
mod params;
mod pixel_ops;

pub use params::AugParams;

use crate::knn::SplitMix64;
use tch::{Device, Kind, Tensor};

/// Augments uint8 batches into normalised float batches.
pub struct Augmenter {
    params: AugParams,
    mean: Tensor,
    std: Tensor,
    channels: i64,
}

/// Per-sample parameter columns of the packed [B, NPARAM] tensor.
mod col {
    pub const SW: usize = 0; // crop width / image width (negative: flipped)
    pub const SH: usize = 1;
    pub const CX: usize = 2; // crop centre, normalised to [-1, 1]
    pub const CY: usize = 3;
    pub const BRIGHT: usize = 4;
    pub const CONTRAST: usize = 5;
    pub const SAT: usize = 6;
    pub const HUE: usize = 7; // 9 columns: the row-major 3x3 RGB hue-rotation matrix
    pub const GRAY: usize = 16; // 1.0 = to grayscale
    pub const SIGMA: usize = 17; // 0.0 = no blur
    pub const SOLAR: usize = 18; // 1.0 = solarize
    pub const FLIP: usize = 19; // 1.0 = flip (used when there is no crop)
    pub const N: usize = 20;
}

impl Augmenter {
    /// `mean`/`std`: per-channel normalisation statistics of the training set (in [0, 1] units).
    pub fn new(params: AugParams, mean: &[f64], std: &[f64], device: Device) -> Augmenter {
        let c = mean.len() as i64;
        let to = |v: &[f64]| Tensor::from_slice(&v.iter().map(|&x| x as f32).collect::<Vec<_>>()).view([1, c, 1, 1]).to_device(device);
        Augmenter { params, mean: to(mean), std: to(std), channels: c }
    }

    pub fn params(&self) -> &AugParams {
        &self.params
    }

    /// uint8 [B, C, H, W] → augmented, normalised float32 [B, C, H, W] on the same device.
    pub fn apply(&self, images: &Tensor, rng: &mut SplitMix64) -> Tensor {
        let _guard = tch::no_grad_guard();
        let b = images.size()[0] as usize;
        let p = self.draw(b, rng);
        let packed = Tensor::from_slice(&p).view([b as i64, col::N as i64]).to_device(images.device());
        let column = |c: usize| packed.select(1, c as i64);
        let mut x = images.to_kind(Kind::Float) / 255.0;
        let pr = &self.params;
        x = if pr.crop_scale.is_some() {
            pixel_ops::crop_and_flip(&x, &packed.narrow(1, 0, 4))
        } else if pr.flip_p > 0.0 {
            pixel_ops::flip_where(&x, &column(col::FLIP))
        } else {
            x
        };
        if pr.jitter_p > 0.0 {
            x = pixel_ops::brightness(&x, &column(col::BRIGHT));
            x = pixel_ops::contrast(&x, &column(col::CONTRAST));
            if self.channels == 3 {
                x = pixel_ops::saturation(&x, &column(col::SAT));
                if pr.jitter[3] > 0.0 {
                    x = pixel_ops::hue(&x, &packed.narrow(1, col::HUE as i64, 9));
                }
            }
        }
        if pr.gray_p > 0.0 && self.channels == 3 {
            x = pixel_ops::grayscale_where(&x, &column(col::GRAY));
        }
        if pr.blur_p > 0.0 {
            x = pixel_ops::gaussian_blur(&x, &column(col::SIGMA));
        }
        if pr.solarize_p > 0.0 {
            x = pixel_ops::solarize_where(&x, &column(col::SOLAR));
        }
        (x - &self.mean) / &self.std
    }

    /// Evaluation transform: no augmentation, only scaling and normalisation.
    pub fn normalize(&self, images: &Tensor) -> Tensor {
        (images.to_kind(Kind::Float) / 255.0 - &self.mean) / &self.std
    }

    /// Draws one row of parameters per image. Identity values where an op is not applied, so the
    /// device code runs the same ops on every image.
    fn draw(&self, b: usize, rng: &mut SplitMix64) -> Vec<f32> {
        let pr = &self.params;
        let mut u = || rng.uniform();
        let mut out = vec![0f32; b * col::N];
        for row in out.chunks_mut(col::N) {
            let flip = u() < pr.flip_p;
            let (sw, sh, cx, cy) = match pr.crop_scale {
                Some((lo, hi)) => {
                    // torchvision's RandomResizedCrop: area fraction s ~ U(lo, hi), log aspect ratio
                    // ~ U(log 3/4, log 4/3); sides clamped to the image instead of its 10 retries.
                    let s = lo + (hi - lo) * u();
                    let r = ((3.0f64 / 4.0).ln() + u() * ((4.0f64 / 3.0).ln() - (3.0f64 / 4.0).ln())).exp();
                    let w = (s * r).sqrt().min(1.0);
                    let h = (s / r).sqrt().min(1.0);
                    let cx = (1.0 - w) * (2.0 * u() - 1.0);
                    let cy = (1.0 - h) * (2.0 * u() - 1.0);
                    (if flip { -w } else { w }, h, cx, cy)
                }
                None => (1.0, 1.0, 0.0, 0.0),
            };
            let apply_jitter = u() < pr.jitter_p;
            let factor = |u: f64, strength: f64| if apply_jitter { (1.0 - strength + 2.0 * strength * u).max(0.0) } else { 1.0 };
            let (ub, uc, us, uh) = (u(), u(), u(), u());
            let gray = u() < pr.gray_p;
            let blur = u() < pr.blur_p;
            let sigma = 0.1 + 1.9 * u();
            let solar = u() < pr.solarize_p;
            row[col::SW] = sw as f32;
            row[col::SH] = sh as f32;
            row[col::CX] = cx as f32;
            row[col::CY] = cy as f32;
            row[col::BRIGHT] = factor(ub, pr.jitter[0]) as f32;
            row[col::CONTRAST] = factor(uc, pr.jitter[1]) as f32;
            row[col::SAT] = factor(us, pr.jitter[2]) as f32;
            let turns = if apply_jitter { pr.jitter[3] * (2.0 * uh - 1.0) } else { 0.0 };
            row[col::HUE..col::HUE + 9].copy_from_slice(&pixel_ops::hue_matrix(turns));
            row[col::GRAY] = gray as u8 as f32;
            row[col::SIGMA] = if blur { sigma as f32 } else { 0.0 };
            row[col::SOLAR] = solar as u8 as f32;
            row[col::FLIP] = flip as u8 as f32;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AugPreset, AugmentationSpec};

    fn images() -> Tensor {
        tch::manual_seed(0);
        Tensor::randint(256, [8, 3, 32, 32], (Kind::Uint8, Device::Cpu))
    }

    fn augmenter(preset: AugPreset, strength: Option<f64>) -> Augmenter {
        let p = AugParams::from_spec(&AugmentationSpec { preset, strength });
        Augmenter::new(p, &[0.5, 0.5, 0.5], &[0.25, 0.25, 0.25], Device::Cpu)
    }

    #[test]
    fn none_preset_only_normalises() {
        let x = images();
        let a = augmenter(AugPreset::None, None);
        let y = a.apply(&x, &mut SplitMix64::new(1));
        assert!(y.allclose(&a.normalize(&x), 1e-6, 1e-6, false));
    }

    #[test]
    fn weak_preset_is_flip_only() {
        let x = images();
        let a = augmenter(AugPreset::Weak, None);
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
    fn strong_preset_changes_images_deterministically() {
        let x = images();
        let a = augmenter(AugPreset::Strong, None);
        let y1 = a.apply(&x, &mut SplitMix64::new(9));
        let y2 = a.apply(&x, &mut SplitMix64::new(9));
        let y3 = a.apply(&x, &mut SplitMix64::new(10));
        assert!(y1.equal(&y2), "same seed, same augmentation");
        assert!(!y1.allclose(&y3, 1e-3, 1e-3, false));
        assert_eq!(y1.size(), [8, 3, 32, 32]);
        assert!(bool::try_from(y1.isfinite().all()).unwrap());
    }

    #[test]
    fn strength_zero_equals_weak_and_one_equals_strong() {
        let w = AugParams::from_spec(&AugmentationSpec { preset: AugPreset::Strong, strength: Some(0.0) });
        assert_eq!(w, AugParams::from_spec(&AugmentationSpec { preset: AugPreset::Weak, strength: None }));
        let s = AugParams::from_spec(&AugmentationSpec { preset: AugPreset::Weak, strength: Some(1.0) });
        assert_eq!(s, AugParams::from_spec(&AugmentationSpec { preset: AugPreset::Strong, strength: None }));
    }
}
