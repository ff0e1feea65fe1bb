//! `gps bench knn` (being written).
use anyhow::Result;

#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// k-NN table build time next to the bare GEMM of the same size.
    Knn { #[arg(long, default_value_t = 10000)] n: usize },
}

impl BenchCommand {
    pub fn run(self) -> Result<()> {
        anyhow::bail!("not yet")
    }
}
