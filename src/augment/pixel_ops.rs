//! Whole-batch pixel operations on float images in [0, 1], computed as the authors' ops compute
//! them: torchvision's ColorJitter arithmetic (blends clamped to [0, 1], hue shifted in HSV),
//! PIL's grayscale weights, PIL's Gaussian blur (three box passes per axis, edges extended),
//! PIL's solarisation. Per-image parameters come as tensors on the same device.

use tch::{Kind, Tensor};

fn per_image(v: &Tensor) -> Tensor {
    v.view([-1, 1, 1, 1])
}

pub fn flip_where(x: &Tensor, flip: &Tensor) -> Tensor {
    x.flip([3]).where_self(&per_image(flip).gt(0.5), x)
}

/// PIL's "L" conversion weights (`convert("L")`, which ImageEnhance and RandomGrayscale use on
/// the authors' PIL images).
fn luma(x: &Tensor) -> Tensor {
    if x.size()[1] == 1 {
        return x.shallow_clone();
    }
    let w = Tensor::from_slice(&[0.299f32, 0.587, 0.114]).view([1, 3, 1, 1]).to_device(x.device());
    (x * w).sum_dim_intlist(1, true, Kind::Float)
}

/// torchvision's `_blend`: f·x + (1 − f)·other, clamped to [0, 1].
fn blend(x: &Tensor, other: &Tensor, f: &Tensor) -> Tensor {
    let f = per_image(f);
    (x * &f + other * (-&f + 1.0)).clamp(0.0, 1.0)
}

/// `adjust_brightness`: a blend with black.
pub fn brightness(x: &Tensor, f: &Tensor) -> Tensor {
    (x * per_image(f)).clamp(0.0, 1.0)
}

/// `adjust_contrast`: a blend with the mean gray level of the image.
pub fn contrast(x: &Tensor, f: &Tensor) -> Tensor {
    let mean = luma(x).mean_dim([1i64, 2, 3].as_slice(), true, Kind::Float);
    blend(x, &mean, f)
}

/// `adjust_saturation`: a blend with the grayscale image (a no-op on one channel, as PIL).
pub fn saturation(x: &Tensor, f: &Tensor) -> Tensor {
    if x.size()[1] == 1 {
        return x.shallow_clone();
    }
    blend(x, &luma(x), f)
}

/// torchvision's `_rgb2hsv` on [B, 3, H, W]: h in [0, 1), s, v.
fn rgb_to_hsv(x: &Tensor) -> (Tensor, Tensor, Tensor) {
    let (r, g, b) = (x.select(1, 0), x.select(1, 1), x.select(1, 2));
    let maxc = x.amax([1i64].as_slice(), false);
    let minc = x.amin([1i64].as_slice(), false);
    let eqc = maxc.eq_tensor(&minc);
    let cr = &maxc - &minc;
    let ones = maxc.ones_like();
    let s = &cr / ones.where_self(&eqc, &maxc);
    let cr_div = ones.where_self(&eqc, &cr);
    let rc = (&maxc - &r) / &cr_div;
    let gc = (&maxc - &g) / &cr_div;
    let bc = (&maxc - &b) / &cr_div;
    let is_r = maxc.eq_tensor(&r);
    let is_g = maxc.eq_tensor(&g).logical_and(&is_r.logical_not());
    let is_b = maxc.ne_tensor(&g).logical_and(&is_r.logical_not());
    let hr = is_r.to_kind(Kind::Float) * (&bc - &gc);
    let hg = is_g.to_kind(Kind::Float) * (&rc - &bc + 2.0);
    let hb = is_b.to_kind(Kind::Float) * (&gc - &rc + 4.0);
    let h = ((hr + hg + hb) / 6.0 + 1.0).fmod(1.0);
    (h, s, maxc)
}

/// torchvision's `_hsv2rgb`.
fn hsv_to_rgb(h: &Tensor, s: &Tensor, v: &Tensor) -> Tensor {
    let h6 = h * 6.0;
    let i = h6.floor();
    let f = &h6 - &i;
    let i = i.to_kind(Kind::Int64).remainder(6);
    let p = (v * (-s + 1.0)).clamp(0.0, 1.0);
    let q = (v * (-(s * &f) + 1.0)).clamp(0.0, 1.0);
    let t = (v * (-(s * (-&f + 1.0)) + 1.0)).clamp(0.0, 1.0);
    // Sector i takes (r, g, b) from these rows.
    let pick = |choices: [&Tensor; 6]| {
        let stacked = Tensor::stack(&choices, 1); // [B, 6, H, W]
        stacked.gather(1, &i.unsqueeze(1), false).squeeze_dim(1)
    };
    let r = pick([v, &q, &p, &p, &t, v]);
    let g = pick([&t, v, v, &q, &p, &p]);
    let b = pick([&p, &p, &t, v, v, &q]);
    Tensor::stack(&[r, g, b], 1)
}

/// `adjust_hue`: shifts the HSV hue by `f` turns (in [−0.5, 0.5]).
pub fn hue(x: &Tensor, f: &Tensor) -> Tensor {
    if x.size()[1] == 1 {
        return x.shallow_clone();
    }
    let (h, s, v) = rgb_to_hsv(x);
    let h = (h + f.view([-1, 1, 1])).remainder(1.0);
    hsv_to_rgb(&h, &s, &v)
}

/// Applies ColorJitter op `op` (0 brightness, 1 contrast, 2 saturation, 3 hue) with per-image
/// factors.
pub fn jitter_op(x: &Tensor, op: usize, f: &Tensor) -> Tensor {
    match op {
        0 => brightness(x, f),
        1 => contrast(x, f),
        2 => saturation(x, f),
        _ => hue(x, f),
    }
}

pub fn grayscale_where(x: &Tensor, gray: &Tensor) -> Tensor {
    luma(x).expand_as(x).where_self(&per_image(gray).gt(0.5), x)
}

/// One box pass of PIL's `ImagingGaussianBlur` for σ: (integer radius r, weight of the taps
/// |i| ≤ r, weight of the two taps at ±(r + 1)), in PIL's own 24-bit fixed point. PIL runs
/// three such passes per axis (`_gaussian_blur_radius` with passes = 3).
pub fn box_pass(sigma: f64) -> (usize, f64, f64) {
    let sigma2 = (sigma * sigma / 3.0) as f32;
    let l_box = (12.0 * sigma2 + 1.0).sqrt();
    let l = ((l_box - 1.0) / 2.0).floor();
    let a = (2.0 * l + 1.0) * (l * (l + 1.0) - 3.0 * sigma2) / (6.0 * (sigma2 - (l + 1.0) * (l + 1.0)));
    let radius = l + a;
    let r = radius as usize;
    let one = (1u32 << 24) as f32;
    let ww = (one / (radius * 2.0 + 1.0)) as u32;
    let fw = ((1u32 << 24) - (r as u32 * 2 + 1) * ww) / 2;
    (r, ww as f64 / (1u64 << 24) as f64, fw as f64 / (1u64 << 24) as f64)
}

/// PIL's Gaussian blur of each image with its own box kernel: `kernels` [B, K] (K odd, centred
/// taps of `box_pass`), three passes along the width then three along the height, the edge pixel
/// repeated beyond the border before each pass. PIL rounds to bytes after every pass, which at
/// small σ moves pixels by several levels (always upwards at a dark pixel beside bright ones), so
/// the passes round to the 1/255 grid too.
pub fn box_blur(x: &Tensor, kernels: &Tensor) -> Tensor {
    let to_bytes = |y: Tensor| (y * 255.0).round() / 255.0;
    let (b, c, h, w) = x.size4().expect("4-D");
    let k = kernels.size()[1];
    let pad = k / 2;
    let kernels = kernels.unsqueeze(1).expand([b, c, k], false).reshape([b * c, 1, k]);
    let (kw, kh) = (kernels.view([b * c, 1, 1, k]), kernels.view([b * c, 1, k, 1]));
    let mut y = to_bytes(x.reshape([1, b * c, h, w]));
    for _ in 0..3 {
        y = to_bytes(y.replication_pad2d([pad, pad, 0, 0]).conv2d(&kw, None::<Tensor>, [1, 1], [0, 0], [1, 1], b * c));
    }
    for _ in 0..3 {
        y = to_bytes(y.replication_pad2d([0, 0, pad, pad]).conv2d(&kh, None::<Tensor>, [1, 1], [0, 0], [1, 1], b * c));
    }
    y.view([b, c, h, w])
}

/// PIL's `ImageOps.solarize` (threshold 128 on bytes): values that round to 128 or more are
/// inverted. On floats that is x ≥ 127.5/255 = 0.5.
pub fn solarize_where(x: &Tensor, solar: &Tensor) -> Tensor {
    let mask = per_image(solar).gt(0.5).logical_and(&x.ge(0.5));
    (-x + 1.0).where_self(&mask, x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn identity_parameters_leave_images_unchanged() {
        tch::manual_seed(1);
        // On the byte grid, as decoded images are (the blur rounds to it).
        let x = (Tensor::rand([4, 3, 16, 16], (Kind::Float, Device::Cpu)) * 255.0).round() / 255.0;
        let ones = Tensor::ones([4], (Kind::Float, Device::Cpu));
        let zeros = Tensor::zeros([4], (Kind::Float, Device::Cpu));
        assert!(brightness(&x, &ones).allclose(&x, 1e-6, 1e-6, false));
        assert!(contrast(&x, &ones).allclose(&x, 1e-6, 1e-6, false));
        assert!(saturation(&x, &ones).allclose(&x, 1e-6, 1e-6, false));
        assert!(hue(&x, &zeros).allclose(&x, 1e-5, 1e-5, false));
        assert!(grayscale_where(&x, &zeros).equal(&x));
        assert!(solarize_where(&x, &zeros).equal(&x));
        let delta = Tensor::from_slice(&[0f32, 1., 0.]).view([1, 3]).repeat([4, 1]);
        assert!(box_blur(&x, &delta).allclose(&x, 1e-6, 1e-6, false));
    }

    #[test]
    fn box_pass_weights_sum_to_one() {
        for sigma in [0.1, 0.5, 1.0, 2.0, 5.0] {
            let (r, ww, fw) = box_pass(sigma);
            let total = (2 * r + 1) as f64 * ww + 2.0 * fw;
            assert!((total - 1.0).abs() < 1e-6, "σ {sigma}: {total}");
        }
        assert_eq!(box_pass(2.0).0, 1);
    }
}
