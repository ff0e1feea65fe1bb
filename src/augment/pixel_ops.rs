//! Whole-batch pixel operations on float images in [0, 1]; per-image parameters come as [B]
//! tensors on the same device, with identity values for images an op does not apply to.

use tch::{Kind, Tensor};

fn per_image(v: &Tensor) -> Tensor {
    v.view([-1, 1, 1, 1])
}

/// Crop (any scale, any centre) resized back to full size and optional flip, in one bilinear
/// grid_sample. `crop` is [B, 4]: (width fraction, negative when flipped; height fraction; centre x; centre y).
pub fn crop_and_flip(x: &Tensor, crop: &Tensor) -> Tensor {
    let b = crop.size()[0];
    let zeros = Tensor::zeros([b], (Kind::Float, x.device()));
    let (sw, sh, cx, cy) = (crop.select(1, 0), crop.select(1, 1), crop.select(1, 2), crop.select(1, 3));
    let theta = Tensor::stack(&[&sw, &zeros, &cx, &zeros, &sh, &cy], 1).view([b, 2, 3]);
    let grid = Tensor::affine_grid_generator(&theta, x.size(), false);
    // bilinear (0), border padding (1)
    x.grid_sampler_2d(&grid, 0, 1, false)
}

pub fn flip_where(x: &Tensor, flip: &Tensor) -> Tensor {
    x.flip([3]).where_self(&per_image(flip).gt(0.5), x)
}

pub fn brightness(x: &Tensor, f: &Tensor) -> Tensor {
    (x * per_image(f)).clamp(0.0, 1.0)
}

fn luma(x: &Tensor) -> Tensor {
    if x.size()[1] == 1 {
        return x.shallow_clone();
    }
    let w = Tensor::from_slice(&[0.299f32, 0.587, 0.114]).view([1, 3, 1, 1]).to_device(x.device());
    (x * w).sum_dim_intlist(1, true, Kind::Float)
}

/// Blend with the image's mean gray level (torchvision's adjust_contrast).
pub fn contrast(x: &Tensor, f: &Tensor) -> Tensor {
    let mean = luma(x).mean_dim([1i64, 2, 3].as_slice(), true, Kind::Float);
    let f = per_image(f);
    (x * &f + mean * (-&f + 1.0)).clamp(0.0, 1.0)
}

/// Blend with the grayscale image (torchvision's adjust_saturation).
pub fn saturation(x: &Tensor, f: &Tensor) -> Tensor {
    let f = per_image(f);
    (x * &f + luma(x) * (-&f + 1.0)).clamp(0.0, 1.0)
}

/// Hue rotation by `h` turns, as a rotation of the chroma plane in YIQ space (a linear stand-in
/// for torchvision's HSV shift that keeps the op a batched 3x3 matrix product).
pub fn hue(x: &Tensor, h: &Tensor) -> Tensor {
    let dev = x.device();
    let to_yiq = Tensor::from_slice(&[0.299f32, 0.587, 0.114, 0.596, -0.274, -0.322, 0.211, -0.523, 0.312]).view([3, 3]).to_device(dev);
    let from_yiq = to_yiq.inverse();
    let angle = h * (2.0 * std::f64::consts::PI);
    let (c, s) = (angle.cos(), angle.sin());
    let (one, zero) = (c.ones_like(), c.zeros_like());
    let rot = Tensor::stack(&[&one, &zero, &zero, &zero, &c, &(-&s), &zero, &s, &c], 1).view([-1, 3, 3]);
    let m = from_yiq.unsqueeze(0).matmul(&rot).matmul(&to_yiq.unsqueeze(0));
    let (b, _, hh, ww) = x.size4().expect("4-D");
    m.bmm(&x.reshape([b, 3, hh * ww])).view([b, 3, hh, ww]).clamp(0.0, 1.0)
}

pub fn grayscale_where(x: &Tensor, gray: &Tensor) -> Tensor {
    luma(x).expand_as(x).where_self(&per_image(gray).gt(0.5), x)
}

const BLUR_RADIUS: i64 = 6; // 3 σ for the largest σ (2.0)

/// Separable Gaussian blur with a per-image σ (0: unchanged), reflect padding.
pub fn gaussian_blur(x: &Tensor, sigma: &Tensor) -> Tensor {
    let (b, c, h, w) = x.size4().expect("4-D");
    if h <= BLUR_RADIUS || w <= BLUR_RADIUS {
        return x.shallow_clone();
    }
    let dev = x.device();
    let offsets = Tensor::arange_start(-BLUR_RADIUS, BLUR_RADIUS + 1, (Kind::Float, dev));
    let active = sigma.gt(0.0);
    let s = sigma.clamp_min(1e-3).view([-1, 1]);
    let mut k = (-(offsets.view([1, -1]).square()) / (s.square() * 2.0)).exp();
    k = &k / k.sum_dim_intlist(1, true, Kind::Float);
    // σ = 0 → a delta kernel.
    let delta = offsets.eq(0.0).to_kind(Kind::Float).view([1, -1]).expand_as(&k);
    let k = k.where_self(&active.view([-1, 1]), &delta);
    let ks = 2 * BLUR_RADIUS + 1;
    let k = k.unsqueeze(1).expand([b, c, ks], false).reshape([b * c, 1, ks]);
    let y = x.reshape([1, b * c, h, w]).reflection_pad2d([BLUR_RADIUS, BLUR_RADIUS, BLUR_RADIUS, BLUR_RADIUS]);
    let y = y.conv2d(&k.view([b * c, 1, 1, ks]), None::<Tensor>, [1, 1], [0, 0], [1, 1], b * c);
    let y = y.conv2d(&k.view([b * c, 1, ks, 1]), None::<Tensor>, [1, 1], [0, 0], [1, 1], b * c);
    y.view([b, c, h, w])
}

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
        let x = Tensor::rand([4, 3, 16, 16], (Kind::Float, Device::Cpu));
        let ones = Tensor::ones([4], (Kind::Float, Device::Cpu));
        let zeros = Tensor::zeros([4], (Kind::Float, Device::Cpu));
        let crop = Tensor::stack(&[&ones, &ones, &zeros, &zeros], 1);
        assert!(crop_and_flip(&x, &crop).allclose(&x, 1e-5, 1e-5, false));
        assert!(brightness(&x, &ones).allclose(&x, 1e-6, 1e-6, false));
        assert!(contrast(&x, &ones).allclose(&x, 1e-6, 1e-6, false));
        assert!(saturation(&x, &ones).allclose(&x, 1e-6, 1e-6, false));
        assert!(hue(&x, &zeros).allclose(&x, 1e-4, 1e-4, false));
        assert!(gaussian_blur(&x, &zeros).allclose(&x, 1e-6, 1e-6, false));
        assert!(grayscale_where(&x, &zeros).equal(&x));
        assert!(solarize_where(&x, &zeros).equal(&x));
    }

    #[test]
    fn negative_width_flips_and_blur_smooths() {
        tch::manual_seed(2);
        let x = Tensor::rand([2, 3, 16, 16], (Kind::Float, Device::Cpu));
        let ones = Tensor::ones([2], (Kind::Float, Device::Cpu));
        let zeros = Tensor::zeros([2], (Kind::Float, Device::Cpu));
        let crop = Tensor::stack(&[&(-&ones), &ones, &zeros, &zeros], 1);
        assert!(crop_and_flip(&x, &crop).allclose(&x.flip([3]), 1e-5, 1e-5, false));
        let blurred = gaussian_blur(&x, &(ones * 2.0));
        let var = |t: &Tensor| t.var(false).double_value(&[]);
        assert!(var(&blurred) < 0.5 * var(&x), "blur must reduce pixel variance of noise");
        // Mean brightness is kept by a normalised kernel (up to border effects).
        assert!((blurred.mean(Kind::Float).double_value(&[]) - x.mean(Kind::Float).double_value(&[])).abs() < 0.02);
    }
}
