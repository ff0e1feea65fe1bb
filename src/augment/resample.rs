//! PIL's bicubic resize as a matrix per image axis. The authors crop and resize through
//! torchvision on PIL images (`RandomResizedCrop(..., interpolation=BICUBIC)`): an integer crop
//! box, then `Image.resize` with PIL's bicubic filter (a = −0.5, support 2, widened by the scale
//! when shrinking, taps clipped to the crop and renormalised). One [out, in] matrix per axis
//! reproduces it, so a batch of different crops is two batched matrix products on the device.

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

/// Writes into `dst` (row-major [out, in_size], zeroed by the caller) the weights that resize the
/// pixels `start..start + len` of an axis of `in_size` pixels to `out` pixels as PIL does
/// (`precompute_coeffs`), mirrored when `flip` (a horizontal flip after the resize).
pub fn write_axis_matrix(dst: &mut [f32], in_size: usize, start: usize, len: usize, out: usize, flip: bool) {
    debug_assert!(start + len <= in_size && dst.len() == out * in_size);
    let scale = len as f64 / out as f64;
    let filter_scale = scale.max(1.0);
    let support = 2.0 * filter_scale;
    for xx in 0..out {
        let center = (xx as f64 + 0.5) * scale;
        // C's (int) cast truncates towards zero.
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = (((center + support + 0.5) as i64).min(len as i64) as usize).saturating_sub(xmin);
        let weights: Vec<f64> = (0..xmax).map(|x| bicubic((x as f64 + xmin as f64 - center + 0.5) / filter_scale)).collect();
        let total: f64 = weights.iter().sum();
        let row = if flip { out - 1 - xx } else { xx };
        for (x, w) in weights.iter().enumerate() {
            let w = if total != 0.0 { w / total } else { *w };
            dst[row * in_size + start + xmin + x] = w as f32;
        }
    }
}

/// Resizes float images [B, C, H, W] in [0, 1] to `height` x `width` as PIL's
/// `Image.resize(..., BICUBIC)` does (horizontal pass, bytes clipped, vertical pass).
pub fn resize_like_pil(x: &tch::Tensor, height: usize, width: usize) -> tch::Tensor {
    let (h, w) = (x.size()[2] as usize, x.size()[3] as usize);
    let (mut wy, mut wx) = (vec![0f32; height * h], vec![0f32; width * w]);
    write_axis_matrix(&mut wy, h, 0, h, height, false);
    write_axis_matrix(&mut wx, w, 0, w, width, false);
    let to = |v: &[f32], rows: usize, cols: usize| tch::Tensor::from_slice(v).view([1, rows as i64, cols as i64]).to_device(x.device());
    let b = x.size()[0];
    super::pixel_ops::resample(
        x,
        &to(&wy, height, h).expand([b, height as i64, h as i64], false),
        &to(&wx, width, w).expand([b, width as i64, w as i64], false),
    )
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
