//! `gps prior inspect` (being written).
use anyhow::Result;

#[derive(Debug, clap::Subcommand)]
pub enum PriorCommand {
    /// Neighbour label purity of a prior.
    Inspect { #[arg(long)] dataset: std::path::PathBuf },
}

impl PriorCommand {
    pub fn run(self) -> Result<()> {
        anyhow::bail!("not yet")
    }
}
