//! Decode-time resize and centre crop (`dataset.resize_shorter_side`, `dataset.center_crop`), so
//! that images of different sizes (FGVC-Aircraft) become one uint8 tensor.
//!
//! The resize is torchvision's `Resize(S)` on a PIL image: the shorter side becomes S, the longer
//! `int(S * long / short)`, resampled with PIL's bilinear filter (triangle, support widened by the
//! scale when shrinking, i.e. antialiased). The weights are those of `crate::resample`
//! (`Filter::Bilinear`), applied as PIL applies them to 8-bit images: coefficients in 22-bit
//! fixed point, horizontal pass first, each pass rounded to bytes. The crop is torchvision's
//! `CenterCrop([H, W])`: top = `int(round((h - H) / 2.0))` (Python's round: half to even), left
//! likewise.
//!
//! Deviation: torchvision pads an image smaller than the crop with zeros. Here such an image is
//! instead resampled (same filter, in one step from the decoded image) to the smallest size of its
//! aspect ratio that covers the crop, then cropped: no black borders.

use crate::config::DatasetSpec;
use crate::resample::{Filter, write_axis_matrix_with};

/// The decode-time geometry of a dataset spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Geometry {
    /// `Resize(S)`: the shorter side becomes S.
    pub shorter_side: Option<u32>,
    /// `CenterCrop([height, width])` after the resize.
    pub center_crop: Option<[u32; 2]>,
}

/// What happens to one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// (height, width) the whole image is resampled to; None: kept as decoded.
    pub resize: Option<(usize, usize)>,
    /// Then the window (top, left, height, width); None: the whole image.
    pub crop: Option<(usize, usize, usize, usize)>,
    /// The resize was enlarged so that the image covers the crop (the deviation above).
    pub upscaled_to_cover: bool,
}

impl Plan {
    /// (height, width) of the image the plan produces.
    pub fn output_size(&self, h: usize, w: usize) -> (usize, usize) {
        match (self.crop, self.resize) {
            (Some((_, _, ch, cw)), _) => (ch, cw),
            (None, Some(size)) => size,
            (None, None) => (h, w),
        }
    }
}

impl Geometry {
    pub fn from_spec(spec: &DatasetSpec) -> Geometry {
        Geometry { shorter_side: spec.resize_shorter_side, center_crop: spec.center_crop }
    }

    pub fn is_identity(&self) -> bool {
        self.shorter_side.is_none() && self.center_crop.is_none()
    }

    /// A short stable text for cache keys and messages (`resize 256, crop 256x384`).
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(s) = self.shorter_side {
            parts.push(format!("resize {s}"));
        }
        if let Some([h, w]) = self.center_crop {
            parts.push(format!("crop {h}x{w}"));
        }
        if parts.is_empty() { "as decoded".into() } else { parts.join(", ") }
    }

    /// The plan for an image of `h` x `w` pixels.
    pub fn plan(&self, h: usize, w: usize) -> Plan {
        let mut size = match self.shorter_side {
            Some(s) => resized_size(s as usize, h, w),
            None => (h, w),
        };
        let mut upscaled_to_cover = false;
        let crop = self.center_crop.map(|[ch, cw]| {
            let (ch, cw) = (ch as usize, cw as usize);
            if size.0 < ch || size.1 < cw {
                size = cover(h, w, ch, cw);
                upscaled_to_cover = true;
            }
            (center_offset(size.0, ch), center_offset(size.1, cw), ch, cw)
        });
        let resize = if size == (h, w) { None } else { Some(size) };
        let crop = crop.filter(|&c| c != (0, 0, size.0, size.1));
        Plan { resize, crop, upscaled_to_cover }
    }

    /// Applies the plan of a `c` x `h` x `w` image (CHW bytes); returns the new CHW bytes.
    pub fn apply(&self, pixels: &[u8], c: usize, h: usize, w: usize) -> (Vec<u8>, usize, usize) {
        let p = self.prepare(h, w);
        let (oh, ow) = p.output_size();
        (p.apply(pixels, c), oh, ow)
    }

    /// The plan of an `h` x `w` image with its resampling weights, for many images of that size.
    pub fn prepare(&self, h: usize, w: usize) -> Prepared {
        let plan = self.plan(h, w);
        let resampler = plan.resize.map(|(rh, rw)| Resampler::new(h, w, rh, rw));
        Prepared { plan, h, w, resampler }
    }
}

/// A plan ready to apply to images of one size.
pub struct Prepared {
    pub plan: Plan,
    h: usize,
    w: usize,
    resampler: Option<Resampler>,
}

impl Prepared {
    /// (height, width) of the output.
    pub fn output_size(&self) -> (usize, usize) {
        self.plan.output_size(self.h, self.w)
    }

    /// `c` planes of h x w bytes in, `c` planes of the output size out.
    pub fn apply(&self, pixels: &[u8], c: usize) -> Vec<u8> {
        let resized;
        let (src, sh, sw) = match (&self.resampler, self.plan.resize) {
            (Some(r), Some((rh, rw))) => {
                resized = r.apply(pixels, c);
                (&resized[..], rh, rw)
            }
            _ => (pixels, self.h, self.w),
        };
        match self.plan.crop {
            Some((top, left, ch, cw)) => crop(src, c, sh, sw, top, left, ch, cw),
            None => src.to_vec(),
        }
    }
}

/// torchvision's `_compute_resized_output_size(..., [s])`: (height, width).
pub fn resized_size(s: usize, h: usize, w: usize) -> (usize, usize) {
    let (short, long) = if w <= h { (w, h) } else { (h, w) };
    // Python: int(s * long / short), a true division then truncation (exact in f64 here).
    let new_long = (s as f64 * long as f64 / short as f64) as usize;
    if w <= h { (new_long, s) } else { (s, new_long) }
}

/// The smallest (height, width) of the aspect ratio of `h` x `w` that covers `ch` x `cw`.
fn cover(h: usize, w: usize, ch: usize, cw: usize) -> (usize, usize) {
    if cw * h >= ch * w {
        // The width binds: width = cw, height rounded up.
        (((h * cw).div_ceil(w)).max(ch), cw)
    } else {
        (ch, ((w * ch).div_ceil(h)).max(cw))
    }
}

/// `int(round((size - crop) / 2.0))` with Python's round (ties to even).
fn center_offset(size: usize, crop: usize) -> usize {
    ((size - crop) as f64 / 2.0).round_ties_even() as usize
}

#[allow(clippy::too_many_arguments)]
fn crop(src: &[u8], c: usize, h: usize, w: usize, top: usize, left: usize, ch: usize, cw: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(c * ch * cw);
    for plane in src.chunks_exact(h * w).take(c) {
        for row in plane.chunks_exact(w).skip(top).take(ch) {
            out.extend_from_slice(&row[left..left + cw]);
        }
    }
    out
}

/// PIL's `PRECISION_BITS` for 8-bit images (32 - 8 - 2).
const PRECISION_BITS: u32 = 22;

/// One axis' taps in PIL's fixed point: per output pixel, the first input pixel and `stride`
/// weights (zero-padded), as PIL's `precompute_coeffs` / `normalize_coeffs_8bpc`.
struct Axis {
    first: Vec<usize>,
    stride: usize,
    taps: Vec<i32>,
}

impl Axis {
    fn new(in_size: usize, out_size: usize) -> Axis {
        let mut m = vec![0f32; out_size * in_size];
        write_axis_matrix_with(Filter::Bilinear, &mut m, in_size, 0, in_size, out_size, false);
        // Each row's window, as precompute_coeffs bounds it (the weights outside are zero).
        let scale = in_size as f64 / out_size as f64;
        let support = scale.max(1.0); // the triangle's support, 1, widened when shrinking
        let bounds: Vec<(usize, usize)> = (0..out_size)
            .map(|x| {
                let center = (x as f64 + 0.5) * scale;
                let lo = ((center - support + 0.5) as i64).max(0) as usize;
                let hi = ((center + support + 0.5) as i64).min(in_size as i64).max(lo as i64 + 1) as usize;
                (lo.min(in_size - 1), hi)
            })
            .collect();
        let stride = bounds.iter().map(|(lo, hi)| hi - lo).max().unwrap_or(0);
        let fixed = (1u32 << PRECISION_BITS) as f64;
        let mut taps = vec![0i32; out_size * stride];
        for (x, &(lo, hi)) in bounds.iter().enumerate() {
            for (k, &v) in m[x * in_size + lo..x * in_size + hi].iter().enumerate() {
                // Round half away from zero, as (int)(0.5 + w * (1 << PRECISION_BITS)).
                taps[x * stride + k] = (v as f64 * fixed).round() as i32;
            }
        }
        // Every window must fit in the axis with the zero padding (shift windows at the end).
        let first = bounds.iter().map(|&(lo, _)| lo.min(in_size - stride)).collect::<Vec<_>>();
        for (x, &(lo, _)) in bounds.iter().enumerate() {
            let shift = lo - first[x];
            if shift > 0 {
                let row = &mut taps[x * stride..(x + 1) * stride];
                row.rotate_right(shift);
            }
        }
        Axis { first, stride, taps }
    }
}

/// Resizes CHW byte images from one size to another as PIL's `Image.resize(..., BILINEAR)`.
/// (Plain index loops: this crate is built at opt-level 0 in debug builds, where iterator chains
/// cost several times more.)
pub struct Resampler {
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
    horizontal: Option<Axis>,
    vertical: Option<Axis>,
}

impl Resampler {
    pub fn new(h: usize, w: usize, oh: usize, ow: usize) -> Resampler {
        let horizontal = (ow != w).then(|| Axis::new(w, ow));
        let vertical = (oh != h).then(|| Axis::new(h, oh));
        Resampler { h, w, oh, ow, horizontal, vertical }
    }

    /// `pixels`: `c` planes of h x w bytes; returns `c` planes of oh x ow.
    pub fn apply(&self, pixels: &[u8], c: usize) -> Vec<u8> {
        let (h, w, oh, ow) = (self.h, self.w, self.oh, self.ow);
        assert_eq!(pixels.len(), c * h * w);
        let half = 1i64 << (PRECISION_BITS - 1);
        // Horizontal pass first, as ImagingResampleInner.
        let wide: Vec<u8> = match &self.horizontal {
            None => pixels.to_vec(),
            Some(ax) => {
                let mut out = vec![0u8; c * h * ow];
                let (first, taps, stride) = (ax.first.as_slice(), ax.taps.as_slice(), ax.stride);
                let dst = out.as_mut_slice();
                let mut row = 0;
                while row < c * h {
                    let src = &pixels[row * w..(row + 1) * w];
                    let mut x = 0;
                    while x < ow {
                        let win = &src[first[x]..first[x] + stride];
                        let k = &taps[x * stride..(x + 1) * stride];
                        let mut ss = half;
                        let mut i = 0;
                        while i < stride {
                            ss += win[i] as i64 * k[i] as i64;
                            i += 1;
                        }
                        let v = ss >> PRECISION_BITS; // clip8
                        dst[row * ow + x] = if v < 0 {
                            0
                        } else if v > 255 {
                            255
                        } else {
                            v as u8
                        };
                        x += 1;
                    }
                    row += 1;
                }
                out
            }
        };
        match &self.vertical {
            None => wide,
            Some(ax) => {
                let mut out = vec![0u8; c * oh * ow];
                let mut acc = vec![0i64; ow];
                let (first, taps, stride) = (ax.first.as_slice(), ax.taps.as_slice(), ax.stride);
                let (src, dst, acc) = (wide.as_slice(), out.as_mut_slice(), acc.as_mut_slice());
                let mut plane = 0;
                while plane < c {
                    let mut y = 0;
                    while y < oh {
                        acc.fill(half);
                        let mut i = 0;
                        while i < stride {
                            let k = taps[y * stride + i] as i64;
                            let start = (plane * h + first[y] + i) * ow;
                            let srow = &src[start..start + ow];
                            let mut x = 0;
                            while x < ow {
                                acc[x] += srow[x] as i64 * k;
                                x += 1;
                            }
                            i += 1;
                        }
                        let drow = &mut dst[(plane * oh + y) * ow..(plane * oh + y + 1) * ow];
                        let mut x = 0;
                        while x < ow {
                            let v = acc[x] >> PRECISION_BITS; // clip8
                            drow[x] = if v < 0 {
                                0
                            } else if v > 255 {
                                255
                            } else {
                                v as u8
                            };
                            x += 1;
                        }
                        y += 1;
                    }
                    plane += 1;
                }
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geometry(s: Option<u32>, crop: Option<[u32; 2]>) -> Geometry {
        Geometry { shorter_side: s, center_crop: crop }
    }

    #[test]
    fn resized_size_is_torchvisions() {
        // int(256 * 1000 / 667) = 383 (383.8...): truncated, as torchvision.
        assert_eq!(resized_size(256, 667, 1000), (256, 383));
        assert_eq!(resized_size(256, 1000, 667), (383, 256));
        assert_eq!(resized_size(256, 512, 512), (256, 256));
        assert_eq!(resized_size(32, 30, 40), (32, 42));
    }

    #[test]
    fn crop_offsets_round_half_to_even() {
        // (261 - 256) / 2 = 2.5 -> 2; (263 - 256) / 2 = 3.5 -> 4 (Python's round).
        assert_eq!(center_offset(261, 256), 2);
        assert_eq!(center_offset(263, 256), 4);
        assert_eq!(center_offset(256, 256), 0);
    }

    #[test]
    fn plans_resize_crop_and_cover() {
        let g = geometry(Some(256), Some([256, 384]));
        // 1000 x 667 (w x h) -> 383 x 256: narrower than 384, so covered: width 384, height
        // ceil(667 * 384 / 1000) = 257, then the crop (top round(0.5) = 0).
        let p = g.plan(667, 1000);
        assert!(p.upscaled_to_cover);
        assert_eq!(p.resize, Some((257, 384)));
        assert_eq!(p.crop, Some((0, 0, 256, 384)));
        // 1024 x 640 -> 409 x 256: wide enough; crop left round(12.5) = 12.
        let p = g.plan(640, 1024);
        assert!(!p.upscaled_to_cover);
        assert_eq!(p.resize, Some((256, 409)));
        assert_eq!(p.crop, Some((0, 12, 256, 384)));
        assert_eq!(p.output_size(640, 1024), (256, 384));
        // Already the target size: nothing to do.
        assert_eq!(geometry(Some(256), None).plan(256, 300), Plan { resize: None, crop: None, upscaled_to_cover: false });
        assert!(geometry(None, None).is_identity());
    }

    #[test]
    fn same_size_is_identity_and_flat_stays_flat() {
        let px: Vec<u8> = (0..3 * 5 * 7).map(|i| (i * 37 % 256) as u8).collect();
        assert_eq!(Resampler::new(5, 7, 5, 7).apply(&px, 3), px);
        let flat = vec![77u8; 2 * 40 * 30];
        assert!(Resampler::new(40, 30, 13, 17).apply(&flat, 2).iter().all(|&v| v == 77));
        assert!(Resampler::new(13, 17, 40, 30).apply(&flat[..2 * 13 * 17], 2).iter().all(|&v| v == 77));
    }

    #[test]
    fn halving_averages_pairs_like_pil() {
        // PIL bilinear, 4 -> 2 pixels: scale 2, support 2. Output 0 (centre 1.0) takes pixels
        // 0..3 with triangle weights (0.75, 0.75, 0.25) / 1.75; output 1 (centre 3.0) pixels 1..4
        // with (0.25, 0.75, 0.75) / 1.75. PIL gives [71, 117]
        // (`Image.fromarray(a, "L").resize((2, 1), Image.BILINEAR)`).
        let px = [0u8, 100, 200, 40];
        let out = Resampler::new(1, 4, 1, 2).apply(&px, 1);
        assert_eq!(out[0], 71); // (100 * 0.75 + 200 * 0.25) / 1.75 = 71.4
        assert_eq!(out[1], 117);
    }
}
