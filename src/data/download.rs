//! `gps data download`: fetch an official release archive, check its MD5, extract it.
//! The archive is streamed to a hidden `.partial` file and renamed only once its MD5 matches;
//! extraction goes to a hidden folder whose entries are renamed into place at the end, so an
//! interrupted download never leaves a half file or half folder under its final name.

use anyhow::{Context, Result, bail};
use flate2::read::GzDecoder;
use md5::{Digest, Md5};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// An official dataset archive.
#[derive(Debug, Clone)]
pub struct Release {
    pub url: &'static str,
    pub md5: &'static str,
    /// The folder the archive extracts to.
    pub folder: &'static str,
}

pub const RELEASE_NAMES: &str = "cifar10, cifar100";

pub fn release(name: &str) -> Result<Release> {
    match name {
        "cifar10" => Ok(Release {
            url: "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
            md5: "c32a1d4ab5d03f1284b67883e8d87530",
            folder: "cifar-10-batches-bin",
        }),
        "cifar100" => {
            Ok(Release { url: "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz", md5: "03b5dce01913d631647c71ecec9e9cb8", folder: "cifar-100-binary" })
        }
        other => bail!("unknown dataset `{other}` to download; known: {RELEASE_NAMES}"),
    }
}

/// Downloads `url` into `dir` (unless a verified copy is already there), checks `md5` and
/// extracts the tar.gz into `dir`. Returns the archive's path.
pub fn download_and_extract(url: &str, md5: &str, dir: &Path) -> Result<PathBuf> {
    let md5 = md5.trim().to_ascii_lowercase();
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = url.rsplit('/').next().filter(|n| !n.is_empty()).with_context(|| format!("URL {url} does not end in a file name"))?;
    let archive = dir.join(name);
    let have_verified_copy = archive.is_file() && file_md5(&archive)? == md5;
    if !have_verified_copy {
        download(url, &md5, &archive)?;
    }
    extract_tar_gz(&archive, dir)?;
    Ok(archive)
}

fn download(url: &str, md5: &str, archive: &Path) -> Result<()> {
    let partial = archive.with_file_name(format!(".{}.partial", archive.file_name().unwrap().to_string_lossy()));
    let response = ureq::get(url).call().with_context(|| format!("downloading {url}"))?;
    let total = response.headers().get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    let bar = indicatif::ProgressBar::new(total.unwrap_or(0));
    bar.set_style(indicatif::ProgressStyle::with_template("{bytes}/{total_bytes} {bar:40} {bytes_per_sec} eta {eta}").unwrap());
    let mut body = response.into_body().into_reader();
    let mut out = std::fs::File::create(&partial).with_context(|| format!("creating {}", partial.display()))?;
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    let result = (|| -> Result<()> {
        loop {
            let n = body.read(&mut buf).with_context(|| format!("reading the response from {url} (connection lost?)"))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n]).with_context(|| format!("writing {} (disk full?)", partial.display()))?;
            bar.inc(n as u64);
        }
        out.sync_all()?;
        let got = hex(&hasher.finalize_reset());
        if got != md5 {
            bail!("MD5 of the download from {url} is {got}, expected {md5}: the file is damaged or not the official release (nothing was kept)");
        }
        Ok(())
    })();
    bar.finish_and_clear();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    std::fs::rename(&partial, archive).with_context(|| format!("renaming {} to {}", partial.display(), archive.display()))?;
    Ok(())
}

/// Extracts into a hidden staging folder, then renames its top-level entries into `dir`
/// (replacing older copies).
fn extract_tar_gz(archive: &Path, dir: &Path) -> Result<()> {
    let staging = dir.join(format!(".extract-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging)?;
    let result = (|| -> Result<()> {
        let f = std::fs::File::open(archive).with_context(|| format!("opening {}", archive.display()))?;
        tar::Archive::new(GzDecoder::new(f)).unpack(&staging).with_context(|| format!("extracting {} (corrupt archive?)", archive.display()))?;
        for entry in std::fs::read_dir(&staging)? {
            let entry = entry?;
            let target = dir.join(entry.file_name());
            if target.is_dir() {
                std::fs::remove_dir_all(&target).with_context(|| format!("replacing {}", target.display()))?;
            }
            std::fs::rename(entry.path(), &target).with_context(|| format!("moving into {}", target.display()))?;
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&staging);
    result
}

fn file_md5(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Md5::new();
    std::io::copy(&mut f, &mut hasher).with_context(|| format!("reading {}", path.display()))?;
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
