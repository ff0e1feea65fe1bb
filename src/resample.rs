//! PIL's resize (bicubic, or bilinear) as a matrix per image axis. The authors crop and resize through
//! torchvision on PIL images (`RandomResizedCrop(..., interpolation=BICUBIC)`): an integer crop
//! box, then `Image.resize` with PIL's bicubic filter (a = −0.5, support 2, widened by the scale
//! when shrinking, taps clipped to the crop and renormalised). One [out, in] matrix per axis
//! reproduces it, so a batch of different crops is two batched matrix products on the device.
//! Below both its users: the augmentation's crops and resizes, and the decode-time resize of
//! datasets of mixed sizes.

/// PIL's bicubic kernel (`bicubic_filter` in Resample.c), a = −0.5.
fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// PIL's triangle (bilinear) kernel (`bilinear_filter`), support 1.
fn triangle(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 { 1.0 - x } else { 0.0 }
}

/// A PIL resampling filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// `Image.BICUBIC` (the authors' crops, resizes of training views and of the prior's input).
    Bicubic,
    /// `Image.BILINEAR` (torchvision's default `Resize`: evaluation transforms).
    Bilinear,
}

impl Filter {
    fn support(self) -> f64 {
        match self {
            Filter::Bicubic => 2.0,
            Filter::Bilinear => 1.0,
        }
    }

    fn weight(self, x: f64) -> f64 {
        match self {
            Filter::Bicubic => bicubic(x),
            Filter::Bilinear => triangle(x),
        }
    }
}

/// Writes into `dst` (row-major [out, in_size], zeroed by the caller) the weights that resize the
/// pixels `start..start + len` of an axis of `in_size` pixels to `out` pixels as PIL's bicubic
/// does (`precompute_coeffs`), mirrored when `flip` (a horizontal flip after the resize).
pub fn write_axis_matrix(dst: &mut [f32], in_size: usize, start: usize, len: usize, out: usize, flip: bool) {
    write_axis_matrix_with(Filter::Bicubic, dst, in_size, start, len, out, flip)
}

/// `write_axis_matrix` with another PIL filter.
pub fn write_axis_matrix_with(filter: Filter, dst: &mut [f32], in_size: usize, start: usize, len: usize, out: usize, flip: bool) {
    let mut exact = vec![0f64; dst.len()];
    write_axis_matrix_f64(filter, &mut exact, in_size, start, len, out, flip);
    for (d, e) in dst.iter_mut().zip(exact) {
        *d = e as f32;
    }
}

/// The weights of `write_axis_matrix_with` in double precision (PIL computes them so).
fn write_axis_matrix_f64(filter: Filter, dst: &mut [f64], in_size: usize, start: usize, len: usize, out: usize, flip: bool) {
    debug_assert!(start + len <= in_size && dst.len() == out * in_size);
    let scale = len as f64 / out as f64;
    let filter_scale = scale.max(1.0);
    let support = filter.support() * filter_scale;
    for xx in 0..out {
        let center = (xx as f64 + 0.5) * scale;
        // C's (int) cast truncates towards zero.
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = (((center + support + 0.5) as i64).min(len as i64) as usize).saturating_sub(xmin);
        let weights: Vec<f64> = (0..xmax).map(|x| filter.weight((x as f64 + xmin as f64 - center + 0.5) / filter_scale)).collect();
        let total: f64 = weights.iter().sum();
        let row = if flip { out - 1 - xx } else { xx };
        for (x, w) in weights.iter().enumerate() {
            let w = if total != 0.0 { w / total } else { *w };
            dst[row * in_size + start + xmin + x] = w;
        }
    }
}

/// Resizes float images [B, C, H, W] in [0, 1] to `height` x `width` as PIL's
/// `Image.resize(..., BICUBIC)` does (horizontal pass, bytes clipped, vertical pass).
pub fn resize_like_pil(x: &tch::Tensor, height: usize, width: usize) -> tch::Tensor {
    resize_like_pil_with(Filter::Bicubic, x, height, width)
}

/// `resize_like_pil` with another PIL filter.
pub fn resize_like_pil_with(filter: Filter, x: &tch::Tensor, height: usize, width: usize) -> tch::Tensor {
    let (h, w) = (x.size()[2] as usize, x.size()[3] as usize);
    let (mut wy, mut wx) = (vec![0f32; height * h], vec![0f32; width * w]);
    write_axis_matrix_with(filter, &mut wy, h, 0, h, height, false);
    write_axis_matrix_with(filter, &mut wx, w, 0, w, width, false);
    let to = |v: &[f32], rows: usize, cols: usize| tch::Tensor::from_slice(v).view([1, rows as i64, cols as i64]).to_device(x.device());
    let b = x.size()[0];
    apply(x, &to(&wy, height, h).expand([b, height as i64, h as i64], false), &to(&wx, width, w).expand([b, width as i64, w as i64], false))
}

/// Crop, resize and flip in one: `wy` [B, Ho, H] and `wx` [B, Wo, W] are the per-image axis
/// matrices of `write_axis_matrix`. PIL resizes horizontally first and stores bytes, so the
/// intermediate is clipped to [0, 1] as well.
pub fn apply(x: &tch::Tensor, wy: &tch::Tensor, wx: &tch::Tensor) -> tch::Tensor {
    let (b, c, h, w) = x.size4().expect("4-D");
    let wo = wx.size()[1];
    let horizontal = x.reshape([b, c * h, w]).bmm(&wx.transpose(1, 2)).view([b, c, h, wo]).clamp(0.0, 1.0);
    wy.unsqueeze(1).matmul(&horizontal).clamp(0.0, 1.0)
}

/// PIL's 8-bit fixed point (`PRECISION_BITS` in Resample.c).
const PRECISION_BITS: i32 = 32 - 8 - 2;

/// PIL's bicubic `Image.resize` of 8-bit images exactly as it computes it: each axis's weights
/// in double precision, rounded to 22-bit fixed point (`normalize_coeffs_8bpc`), the horizontal
/// pass then the vertical one, each rounded half up to a byte and clipped (`clip8`). uint8
/// [B, C, H, W] in, uint8 out. What a PIL image resized once looks like (the authors' prior
/// input); the training views keep floats between ops (README, Known remaining differences).
pub fn resize_bytes_like_pil(images: &tch::Tensor, height: usize, width: usize) -> tch::Tensor {
    let (b, c, h, w) = images.size4().expect("[B, C, H, W]");
    let fixed = |rows: usize, cols: usize| -> tch::Tensor {
        let mut m = vec![0f64; rows * cols];
        write_axis_matrix_f64(Filter::Bicubic, &mut m, cols, 0, cols, rows, false);
        let scale = (1i64 << PRECISION_BITS) as f64;
        // C's (int) cast of k · 2^22 ± 0.5.
        let ints: Vec<f64> = m.iter().map(|&k| (k * scale + if k < 0.0 { -0.5 } else { 0.5 }).trunc()).collect();
        tch::Tensor::from_slice(&ints).view([rows as i64, cols as i64]).to_device(images.device())
    };
    let half = (1i64 << (PRECISION_BITS - 1)) as f64;
    let scale = (1i64 << PRECISION_BITS) as f64;
    // Sums of bytes times 22-bit integers stay below 2^53: exact in double precision.
    let clip8 = |t: tch::Tensor| ((t + half) / scale).floor().clamp(0.0, 255.0);
    let x = images.to_kind(tch::Kind::Double);
    let horizontal = clip8(x.reshape([b * c * h, w]).matmul(&fixed(width, w as usize).transpose(0, 1))).view([b, c, h, width as i64]);
    clip8(fixed(height, h as usize).matmul(&horizontal)).to_kind(tch::Kind::Uint8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_size_is_the_identity_and_flip_mirrors() {
        let mut m = vec![0f32; 8 * 8];
        write_axis_matrix(&mut m, 8, 0, 8, 8, false);
        for i in 0..8 {
            for j in 0..8 {
                assert!((m[i * 8 + j] - (i == j) as u8 as f32).abs() < 1e-6, "{i},{j}");
            }
        }
        let mut f = vec![0f32; 8 * 8];
        write_axis_matrix(&mut f, 8, 0, 8, 8, true);
        assert_eq!(f[7], 1.0);
    }

    #[test]
    fn rows_sum_to_one_and_stay_inside_the_crop() {
        let mut m = vec![0f32; 32 * 32];
        write_axis_matrix(&mut m, 32, 10, 9, 32, false);
        for row in m.chunks(32) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            assert!(row[..10].iter().chain(&row[19..]).all(|&w| w == 0.0));
        }
    }
}
