//! `gps train`, `gps task`, `gps sweep ...` (being written).
use anyhow::Result;

#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// The run spec (YAML).
    pub spec: std::path::PathBuf,
}

impl TrainArgs {
    pub fn run(self) -> Result<()> {
        anyhow::bail!("not yet")
    }
}

#[derive(Debug, clap::Args)]
pub struct TaskArgs {
    pub sweep: std::path::PathBuf,
    #[arg(long)]
    pub index: usize,
}

impl TaskArgs {
    pub fn run(self) -> Result<()> {
        anyhow::bail!("not yet")
    }
}

#[derive(Debug, clap::Subcommand)]
pub enum SweepCommand {
    /// List the runs of a sweep.
    Expand { sweep: std::path::PathBuf },
}

impl SweepCommand {
    pub fn run(self) -> Result<()> {
        anyhow::bail!("not yet")
    }
}
