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

/// RGB → YIQ (NTSC). Hue rotation turns the (I, Q) chroma plane and keeps luma Y.
const TO_YIQ: [[f64; 3]; 3] = [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]];

/// The hue rotation by θ is M(θ) = YIQ⁻¹ · R(θ) · YIQ with R(θ) = E₀₀ + cos θ (E₁₁ + E₂₂) + sin θ (E₂₁ − E₁₂),
/// so M(θ) = A + cos θ · B + sin θ · C for three constant RGB matrices, computed once.
static HUE_BASIS: std::sync::LazyLock<[[[f64; 3]; 3]; 3]> = std::sync::LazyLock::new(|| {
    let t = TO_YIQ;
    let f = inverse3(&t);
    let mut basis = [[[0.0; 3]; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            basis[0][i][j] = f[i][0] * t[0][j];
            basis[1][i][j] = f[i][1] * t[1][j] + f[i][2] * t[2][j];
            basis[2][i][j] = f[i][2] * t[1][j] - f[i][1] * t[2][j];
        }
    }
    basis
});

fn inverse3(m: &[[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let cof = |r: usize, c: usize| {
        let (r1, r2, c1, c2) = ((r + 1) % 3, (r + 2) % 3, (c + 1) % 3, (c + 2) % 3);
        m[r1][c1] * m[r2][c2] - m[r1][c2] * m[r2][c1]
    };
    let det = m[0][0] * cof(0, 0) + m[0][1] * cof(0, 1) + m[0][2] * cof(0, 2);
    let mut inv = [[0.0; 3]; 3];
    for (i, row) in inv.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = cof(j, i) / det;
        }
    }
    inv
}

/// The row-major 3x3 RGB matrix of a hue rotation by `turns` (fractions of a full turn), built
/// on the CPU with the other per-image parameters so the device does one batched product.
pub fn hue_matrix(turns: f64) -> [f32; 9] {
    let (s, c) = (turns * 2.0 * std::f64::consts::PI).sin_cos();
    let b = &*HUE_BASIS;
    let mut m = [0f32; 9];
    for i in 0..3 {
        for j in 0..3 {
            m[3 * i + j] = (b[0][i][j] + c * b[1][i][j] + s * b[2][i][j]) as f32;
        }
    }
    m
}

/// Hue rotation as a rotation of the chroma plane in YIQ space (a linear stand-in for
/// torchvision's HSV shift that keeps the op one batched 3x3 product). `m`: [B, 9] from `hue_matrix`.
pub fn hue(x: &Tensor, m: &Tensor) -> Tensor {
    let (b, _, hh, ww) = x.size4().expect("4-D");
    m.view([b, 3, 3]).bmm(&x.reshape([b, 3, hh * ww])).view([b, 3, hh, ww]).clamp(0.0, 1.0)
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
        let identity = Tensor::from_slice(&hue_matrix(0.0)).repeat([4]).view([4, 9]);
        assert!(hue(&x, &identity).allclose(&x, 1e-5, 1e-5, false));
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

    /// The closed form equals YIQ⁻¹ · R(θ) · YIQ built the direct way, and keeps luma.
    #[test]
    fn hue_matrix_is_the_yiq_chroma_rotation() {
        let to_yiq = Tensor::from_slice(&TO_YIQ.concat().iter().map(|&v| v as f32).collect::<Vec<_>>()).view([3, 3]);
        let from_yiq = to_yiq.inverse();
        for turns in [-0.2, -0.05, 0.0, 0.1, 0.2, 0.5] {
            let (c, s) = ((turns * std::f64::consts::TAU).cos() as f32, (turns * std::f64::consts::TAU).sin() as f32);
            let rot = Tensor::from_slice(&[1f32, 0., 0., 0., c, -s, 0., s, c]).view([3, 3]);
            let reference = from_yiq.matmul(&rot).matmul(&to_yiq);
            let m = Tensor::from_slice(&hue_matrix(turns)).view([3, 3]);
            assert!(m.allclose(&reference, 1e-5, 1e-5, false), "turns {turns}: {m} vs {reference}");
            let luma = to_yiq.get(0).unsqueeze(0);
            assert!(luma.matmul(&m).allclose(&luma, 1e-5, 1e-5, false), "turns {turns}: luma changed");
        }
    }
}
