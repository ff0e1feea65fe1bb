//! `gps data ...` (being written).
use anyhow::Result;

#[derive(Debug, clap::Subcommand)]
pub enum DataCommand {
    /// Describe a dataset.
    Info { path: std::path::PathBuf },
}

impl DataCommand {
    pub fn run(self) -> Result<()> {
        anyhow::bail!("not yet")
    }
}
