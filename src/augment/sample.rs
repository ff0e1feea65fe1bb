//! The random parameters of one image's augmentation, drawn on the host from a seeded
//! SplitMix64 the way torchvision's transforms draw theirs: RandomResizedCrop's 10 tries with a
//! centre-crop fallback, ColorJitter's random op order and factors, RandomApply's coin flips,
//! the authors' blur σ ~ U(0.1, 2). The distributions are checked against torchvision's own
//! samplers in `tests/parity.rs`.

use super::params::Pipeline;
use crate::knn::SplitMix64;

/// An integer crop box, as torchvision's `RandomResizedCrop.get_params` returns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CropBox {
    pub top: usize,
    pub left: usize,
    pub height: usize,
    pub width: usize,
}

/// ColorJitter's ops, by their index in torchvision's `fn_idx`.
pub const BRIGHTNESS: usize = 0;
pub const CONTRAST: usize = 1;
pub const SATURATION: usize = 2;
pub const HUE: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Jitter {
    /// The order the four ops run in (a permutation of 0..4).
    pub order: [usize; 4],
    /// Factor per op, by op index: brightness, contrast, saturation (1 = unchanged), hue shift
    /// in turns (0 = unchanged).
    pub factors: [f64; 4],
}

/// What happens to one image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Draw {
    pub crop: Option<CropBox>,
    pub jitter: Option<Jitter>,
    pub gray: bool,
    pub blur_sigma: Option<f64>,
    pub solarize: bool,
    pub flip: bool,
}

/// torchvision's `RandomResizedCrop.get_params` for an image of `height` x `width`, aspect
/// ratios 3/4 to 4/3: up to 10 tries of (area fraction, log-ratio), sides rounded half to even
/// (Python's `round`), then the centre crop of the clamped ratio.
pub fn crop_box(height: usize, width: usize, scale: (f64, f64), rng: &mut SplitMix64) -> CropBox {
    let area = (height * width) as f64;
    let (r0, r1) = (3.0f64 / 4.0, 4.0f64 / 3.0);
    let (lr0, lr1) = (r0.ln(), r1.ln());
    for _ in 0..10 {
        let target = area * (scale.0 + (scale.1 - scale.0) * rng.uniform());
        let ratio = (lr0 + (lr1 - lr0) * rng.uniform()).exp();
        let w = (target * ratio).sqrt().round_ties_even() as usize;
        let h = (target / ratio).sqrt().round_ties_even() as usize;
        if 0 < w && w <= width && 0 < h && h <= height {
            let top = rng.below((height - h + 1) as u32) as usize;
            let left = rng.below((width - w + 1) as u32) as usize;
            return CropBox { top, left, height: h, width: w };
        }
    }
    let in_ratio = width as f64 / height as f64;
    let (h, w) = if in_ratio < r0 {
        ((width as f64 / r0).round_ties_even() as usize, width)
    } else if in_ratio > r1 {
        (height, (height as f64 * r1).round_ties_even() as usize)
    } else {
        (height, width)
    };
    CropBox { top: (height - h) / 2, left: (width - w) / 2, height: h, width: w }
}

/// A uniformly random order of the four jitter ops (Fisher-Yates, as `torch.randperm(4)`).
pub fn jitter_order(rng: &mut SplitMix64) -> [usize; 4] {
    let mut order = [0, 1, 2, 3];
    for i in (1..4).rev() {
        let j = rng.below(i as u32 + 1) as usize;
        order.swap(i, j);
    }
    order
}

/// One image's draw under `p`.
pub fn draw(p: &Pipeline, height: usize, width: usize, rng: &mut SplitMix64) -> Draw {
    let crop = p.crop_scale.map(|scale| crop_box(height, width, scale, rng));
    let jitter = (p.jitter_p > 0.0 && rng.uniform() < p.jitter_p).then(|| {
        let order = jitter_order(rng);
        let mut factors = [1.0, 1.0, 1.0, 0.0];
        for (op, &s) in p.jitter[..3].iter().enumerate() {
            if s > 0.0 {
                factors[op] = (1.0 - s).max(0.0) + ((1.0 + s) - (1.0 - s).max(0.0)) * rng.uniform();
            }
        }
        if p.jitter[HUE] > 0.0 {
            factors[HUE] = p.jitter[HUE] * (2.0 * rng.uniform() - 1.0);
        }
        Jitter { order, factors }
    });
    let gray = p.gray_p > 0.0 && rng.uniform() < p.gray_p;
    let blur_sigma = (p.blur_p > 0.0 && rng.uniform() < p.blur_p).then(|| 0.1 + 1.9 * rng.uniform());
    let solarize = p.solarize_p > 0.0 && rng.uniform() < p.solarize_p;
    let flip = p.flip_p > 0.0 && rng.uniform() < p.flip_p;
    Draw { crop, jitter, gray, blur_sigma, solarize, flip }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crops_fit_and_orders_are_permutations() {
        let mut rng = SplitMix64::new(11);
        for _ in 0..2000 {
            let b = crop_box(32, 24, (0.08, 1.0), &mut rng);
            assert!(b.height >= 1 && b.width >= 1 && b.top + b.height <= 32 && b.left + b.width <= 24, "{b:?}");
            let mut o = jitter_order(&mut rng);
            o.sort();
            assert_eq!(o, [0, 1, 2, 3]);
        }
    }

    #[test]
    fn fallback_is_the_centre_crop_of_the_clamped_ratio() {
        // A 10 x 100 strip: no crop of ratio ≤ 4/3 with an area ≥ 8% fits 10 rows in 10 tries
        // often enough; force the fallback with an impossible scale.
        let b = crop_box(10, 100, (2.0, 3.0), &mut SplitMix64::new(1));
        assert_eq!(b, CropBox { top: 0, left: (100 - 13) / 2, height: 10, width: 13 });
    }
}
