//! Decoding encoded image files (JPEG/PNG) into one uint8 [N, C, H, W] tensor, in parallel, with
//! the decode-time resize and crop of `super::resize`. Without them every image must have the
//! first image's size: a dataset is never resized silently.

use super::Dataset;
use super::resize::Geometry;
use anyhow::{Context, Result, anyhow, bail};
use std::path::PathBuf;
use tch::Tensor;

/// Where an image's encoded bytes are.
pub(super) enum Source {
    /// Already read (zip entries).
    Bytes(Vec<u8>),
    /// Read by the decoding thread (image files on disk: a 2.7 GB dataset is never held encoded).
    File(PathBuf),
}

/// One image before decoding: its label, where it came from (for errors) and its bytes.
pub(super) struct Encoded {
    pub label: i64,
    pub origin: String,
    pub source: Source,
}

/// How many channels the decoded images get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Channels {
    /// One if the first image is greyscale, else three (image folders).
    AsFirstImage,
    /// Always RGB (`PIL.Image.convert("RGB")`, as torchvision's FGVCAircraft).
    Rgb,
}

/// One decoded image: CHW bytes and its size before and after the geometry.
struct Decoded {
    pixels: Vec<u8>,
    original: (usize, usize),
    size: (usize, usize),
}

/// Decodes one image; `grey`: the channel count decided (None: from this image's colour type).
fn decode_one(item: &Encoded, grey: Option<bool>, geometry: &Geometry) -> Result<(Decoded, bool)> {
    let read;
    let bytes = match &item.source {
        Source::Bytes(b) => b.as_slice(),
        Source::File(p) => {
            read = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
            read.as_slice()
        }
    };
    let img = image::load_from_memory(bytes).with_context(|| format!("cannot decode image {} (corrupt or not a JPEG/PNG)", item.origin))?;
    let grey = grey.unwrap_or_else(|| is_grey(img.color()));
    let (w, h) = (img.width() as usize, img.height() as usize);
    let chw = to_chw(&img, grey);
    let c = if grey { 1 } else { 3 };
    let (pixels, oh, ow) = if geometry.is_identity() { (chw, h, w) } else { geometry.apply(&chw, c, h, w) };
    Ok((Decoded { pixels, original: (h, w), size: (oh, ow) }, grey))
}

fn is_grey(color: image::ColorType) -> bool {
    matches!(color, image::ColorType::L8 | image::ColorType::L16 | image::ColorType::La8 | image::ColorType::La16)
}

/// HWC (image crate) to CHW (tensors).
fn to_chw(img: &image::DynamicImage, grey: bool) -> Vec<u8> {
    if grey {
        return img.to_luma8().into_raw();
    }
    let rgb = img.to_rgb8();
    let plane = rgb.width() as usize * rgb.height() as usize;
    let mut dst = vec![0u8; 3 * plane];
    for (p, px) in rgb.as_raw().chunks_exact(3).enumerate() {
        dst[p] = px[0];
        dst[plane + p] = px[1];
        dst[2 * plane + p] = px[2];
    }
    dst
}

/// The error for two images that do not end up the same size, with the fix.
fn size_mismatch(geometry: &Geometry, a: (&str, &Decoded), b: (&str, &Decoded)) -> anyhow::Error {
    let wh = |(h, w): (usize, usize)| format!("{w}x{h}");
    match geometry.shorter_side {
        None if geometry.center_crop.is_none() => anyhow!(
            "images of different sizes: {} is {} but {} is {} (width x height). A dataset of mixed sizes needs \
             `dataset.resize_shorter_side` and `dataset.center_crop` to resize and centre-crop every image at decode \
             time (the FGVC-Aircraft recipe sets them to 256 and [256, 384]); images are never resized silently",
            a.0,
            wh(a.1.original),
            b.0,
            wh(b.1.original)
        ),
        _ => anyhow!(
            "after the decode-time resize ({}), {} ({} decoded) is {} but {} ({} decoded) is {} (width x height): images of \
             different aspect ratios need `dataset.center_crop` too (the FGVC-Aircraft recipe: `resize_shorter_side: 256`, \
             `center_crop: [256, 384]`)",
            geometry.describe(),
            a.0,
            wh(a.1.original),
            wh(a.1.size),
            b.0,
            wh(b.1.original),
            wh(b.1.size)
        ),
    }
}

/// Decodes all images in parallel (scoped threads over contiguous chunks) into one CHW buffer.
pub(super) fn decode_all(items: &[Encoded], classes: Vec<String>, geometry: &Geometry, channels: Channels) -> Result<Dataset> {
    let Some(first_item) = items.first() else { bail!("no images to decode") };
    let fixed = match channels {
        Channels::Rgb => Some(false),
        Channels::AsFirstImage => None,
    };
    let (first, grey) = decode_one(first_item, fixed, geometry)?;
    let c = if grey { 1 } else { 3 };
    let (h, w) = first.size;
    let per_image = c * h * w;
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).min(8);
    let chunk = items.len().div_ceil(threads).max(1);
    let mut pixels = vec![0u8; items.len() * per_image];
    pixels[..per_image].copy_from_slice(&first.pixels);
    let first = &first;
    std::thread::scope(|s| -> Result<()> {
        let handles: Vec<_> = items
            .chunks(chunk)
            .zip(pixels.chunks_mut(chunk * per_image))
            .enumerate()
            .map(|(ci, (its, out))| {
                s.spawn(move || -> Result<()> {
                    for (j, (item, dst)) in its.iter().zip(out.chunks_mut(per_image)).enumerate() {
                        if ci == 0 && j == 0 {
                            continue; // the first image, decoded above
                        }
                        let (img, _) = decode_one(item, Some(grey), geometry)?;
                        if img.size != (h, w) {
                            return Err(size_mismatch(geometry, (&item.origin, &img), (&first_item.origin, first)));
                        }
                        dst.copy_from_slice(&img.pixels);
                    }
                    Ok(())
                })
            })
            .collect();
        for hnd in handles {
            hnd.join().map_err(|_| anyhow!("an image decoding thread panicked"))??;
        }
        Ok(())
    })?;
    let images = Tensor::from_slice(&pixels).view([items.len() as i64, c as i64, h as i64, w as i64]);
    let labels = Tensor::from_slice(&items.iter().map(|i| i.label).collect::<Vec<_>>());
    Dataset::new(images, labels, classes)
}

/// Applies the geometry to an already decoded dataset (formats stored as arrays: CIFAR, IDX, CSV,
/// MedMNIST), image by image; their images share one size, so they share one plan.
pub(super) fn apply_geometry(d: Dataset, geometry: &Geometry) -> Result<Dataset> {
    if geometry.is_identity() || d.is_empty() {
        return Ok(d);
    }
    let (n, c) = (d.len(), d.channels());
    let (h, w) = d.image_size();
    let plan = geometry.plan(h, w);
    let (oh, ow) = plan.output_size(h, w);
    if plan.resize.is_none() && plan.crop.is_none() {
        return Ok(d);
    }
    let src = Vec::<u8>::try_from(d.images.contiguous().view([-1]))?;
    let prepared = geometry.prepare(h, w);
    let prepared = &prepared;
    let per_in = c * h * w;
    let per_out = c * oh * ow;
    let mut out = vec![0u8; n * per_out];
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).min(8);
    let chunk = n.div_ceil(threads).max(1);
    std::thread::scope(|s| {
        for (ins, outs) in src.chunks(chunk * per_in).zip(out.chunks_mut(chunk * per_out)) {
            s.spawn(move || {
                for (i, o) in ins.chunks_exact(per_in).zip(outs.chunks_exact_mut(per_out)) {
                    o.copy_from_slice(&prepared.apply(i, c));
                }
            });
        }
    });
    let images = Tensor::from_slice(&out).view([n as i64, c as i64, oh as i64, ow as i64]);
    Dataset::new(images, d.labels, d.classes)
}
