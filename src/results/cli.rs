//! `gps report` (being written).
use anyhow::Result;

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    pub dir: std::path::PathBuf,
}

impl ReportArgs {
    pub fn run(self) -> Result<()> {
        anyhow::bail!("not yet")
    }
}
