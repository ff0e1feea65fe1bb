//! `gps data info | download`.
use super::{Split, download};
use crate::config::{DataFormat, DatasetSpec};
use anyhow::{Context, Result};
use std::path::PathBuf;

#[derive(Debug, clap::Subcommand)]
pub enum DataCommand {
    /// Per split: number of images, image shape, classes and counts (decodes into the cache).
    Info {
        path: PathBuf,
        /// auto, image-folder, cifar10-bin, cifar100-bin, idx, mnist-csv, medmnist-npz
        #[arg(long, default_value = "auto", value_parser = parse_format)]
        format: DataFormat,
        #[arg(long, default_value = ".cache")]
        cache_dir: PathBuf,
    },
    /// Download an official release (cifar10, cifar100), check its MD5 and extract it.
    Download {
        /// cifar10 or cifar100
        name: String,
        #[arg(long, default_value = "data")]
        dir: PathBuf,
        /// Another URL (a mirror) for the same archive.
        #[arg(long)]
        url: Option<String>,
        /// Expected MD5 (defaults to the official archive's).
        #[arg(long)]
        md5: Option<String>,
    },
}

/// Dataset formats as the run spec spells them (kebab-case), with serde's list of choices on error.
pub fn parse_format(s: &str) -> Result<DataFormat, String> {
    serde_norway::from_str::<DataFormat>(s).map_err(|e| format!("{e}"))
}

impl DataCommand {
    pub fn run(self) -> Result<()> {
        match self {
            DataCommand::Info { path, format, cache_dir } => info(path, format, &cache_dir),
            DataCommand::Download { name, dir, url, md5 } => {
                let release = download::release(&name)?;
                let url = url.as_deref().unwrap_or(release.url);
                let md5 = md5.as_deref().unwrap_or(release.md5);
                let archive = download::download_and_extract(url, md5, &dir)?;
                println!("{} verified (MD5 {md5}) and extracted to {}", archive.display(), dir.join(release.folder).display());
                Ok(())
            }
        }
    }
}

fn info(path: PathBuf, format: DataFormat, cache_dir: &std::path::Path) -> Result<()> {
    let resolved = super::resolve_format(format, &path)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let spec = DatasetSpec { name, format: resolved, path: path.clone(), train_limit: None, test_limit: None };
    println!("{} ({})", path.display(), serde_json::to_value(resolved)?.as_str().unwrap_or("?"));
    for split in [Split::Train, Split::Test] {
        let start = std::time::Instant::now();
        let d = super::load(&spec, split, cache_dir).with_context(|| format!("the {} split", split.as_str()))?;
        let (h, w) = d.image_size();
        println!(
            "{}: {} images of {}x{}x{} ({:.1} s), {} classes",
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
