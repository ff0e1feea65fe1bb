//! `gps data info | download`.
use super::{Split, download};
use crate::config::{DataFormat, DatasetSpec};
use anyhow::{Context, Result, bail};
use std::path::PathBuf;

#[derive(Debug, clap::Subcommand)]
pub enum DataCommand {
    /// Per split: number of images, image shape, classes and counts (decodes into the cache).
    Info {
        path: PathBuf,
        /// auto, image-folder, cifar10-bin, cifar100-bin, idx, mnist-csv, medmnist-npz, fgvc-aircraft
        #[arg(long, default_value = "auto", value_parser = parse_format)]
        format: DataFormat,
        #[arg(long, default_value = ".cache")]
        cache_dir: PathBuf,
        /// The split shown as `train` (`dataset.train_split`; default: the format's own).
        #[arg(long)]
        train_split: Option<String>,
        /// The split shown as `test` (`dataset.test_split`).
        #[arg(long)]
        test_split: Option<String>,
        /// Decode-time resize of the shorter side (`dataset.resize_shorter_side`).
        #[arg(long)]
        resize_shorter_side: Option<u32>,
        /// Decode-time centre crop HEIGHT,WIDTH (`dataset.center_crop`), e.g. 256,384.
        #[arg(long, value_parser = parse_crop)]
        center_crop: Option<[u32; 2]>,
    },
    /// Download an official release, check its checksum, extract it (resumes an interrupted
    /// download; a verified copy is not downloaded again).
    Download {
        /// cifar10, cifar100, aircraft, pathmnist, tissuemnist
        name: String,
        #[arg(long, default_value = "data")]
        dir: PathBuf,
        /// Another URL (a mirror) for the same file. `GPS_DOWNLOAD_BASE_URL` instead replaces the
        /// official URL's prefix before the file name.
        #[arg(long)]
        url: Option<String>,
        /// Expected MD5 of a mirror's file (replaces the release's checksum).
        #[arg(long, conflicts_with = "sha256")]
        md5: Option<String>,
        /// Expected SHA-256 of a mirror's file (replaces the release's checksum).
        #[arg(long)]
        sha256: Option<String>,
    },
}

/// Dataset formats as the run spec spells them (kebab-case), with serde's list of choices on error.
pub fn parse_format(s: &str) -> Result<DataFormat, String> {
    serde_norway::from_str::<DataFormat>(s).map_err(|e| format!("{e}"))
}

fn parse_crop(s: &str) -> Result<[u32; 2], String> {
    let parts: Vec<&str> = s.split([',', 'x']).map(str::trim).collect();
    match parts.as_slice() {
        [h, w] => match (h.parse::<u32>(), w.parse::<u32>()) {
            (Ok(h), Ok(w)) if h > 0 && w > 0 => Ok([h, w]),
            _ => Err(format!("`{s}`: HEIGHT,WIDTH in pixels, e.g. 256,384")),
        },
        _ => Err(format!("`{s}`: HEIGHT,WIDTH in pixels, e.g. 256,384")),
    }
}

impl DataCommand {
    pub fn run(self) -> Result<()> {
        match self {
            DataCommand::Info { path, format, cache_dir, train_split, test_split, resize_shorter_side, center_crop } => {
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let spec = DatasetSpec { name, format, path, train_split, test_split, resize_shorter_side, center_crop, ..DatasetSpec::default() };
                info(spec, &cache_dir)
            }
            DataCommand::Download { name, dir, url, md5, sha256 } => {
                let mut release = download::release(&name)?;
                if let Some(url) = url {
                    release.file = download::file_name(&url).with_context(|| format!("--url {url} does not end in a file name"))?;
                    release.url = url;
                }
                let custom = match (md5, sha256) {
                    (Some(h), _) => Some(download::Checksum::md5(&h)?),
                    (_, Some(h)) => Some(download::Checksum::sha256(&h)?),
                    _ => None,
                };
                if let Some(c) = custom {
                    // Another file: the release's size is not its size.
                    release.checksum = c;
                    release.bytes = None;
                }
                let got = download::fetch(&release, &dir)?;
                let what = if got.downloaded {
                    if got.resumed_from > 0 { format!("downloaded (resumed at byte {})", got.resumed_from) } else { "downloaded".to_string() }
                } else {
                    "already there".to_string()
                };
                println!("{}: {what}, {} bytes, {} verified", got.file.display(), got.bytes, release.checksum);
                println!("  MD5 {}  SHA-256 {}", got.md5, got.sha256);
                if got.extracted {
                    println!("  extracted");
                }
                println!("use it with: dataset: {{format: {}, path: {}}}", release.format, got.dataset_path.display());
                Ok(())
            }
        }
    }
}

fn info(spec: DatasetSpec, cache_dir: &std::path::Path) -> Result<()> {
    if spec.center_crop.is_some() && spec.resize_shorter_side.is_none() {
        bail!("--center-crop needs --resize-shorter-side (as `dataset.center_crop` needs `dataset.resize_shorter_side`)");
    }
    let resolved = super::resolve_format(spec.format, &spec.path)?;
    let spec = DatasetSpec { format: resolved, ..spec };
    println!("{} ({})", spec.path.display(), super::format_name(resolved));
    let geometry = super::Geometry::from_spec(&spec);
    if !geometry.is_identity() {
        println!("decode-time geometry: {}", geometry.describe());
    }
    for split in [Split::Train, Split::Test] {
        let start = std::time::Instant::now();
        let name = super::split_name(&spec, resolved, split)?;
        let d = super::load(&spec, split, cache_dir).with_context(|| format!("the {} split", split.as_str()))?;
        let (h, w) = d.image_size();
        let from = if name.as_str() == split.as_str() { String::new() } else { format!(", from the files' `{name}` split") };
        println!(
            "{}: {} images of {}x{}x{} ({:.1} s), {} classes{from}",
            split.as_str(),
            d.len(),
            d.channels(),
            h,
            w,
            start.elapsed().as_secs_f64(),
            d.num_classes()
        );
        for (c, n) in d.classes.iter().zip(d.class_counts()) {
            println!("  {c:<20} {n}");
        }
    }
    Ok(())
}
