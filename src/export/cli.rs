//! `gps export <results dir> --run <id> [--out file]`.

use crate::trained::TrainedRun;
use anyhow::Result;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The results folder of the run (`results/<sweep>`, holding runs/ and ckpt/).
    pub dir: PathBuf,
    /// The run id (or a unique prefix of it), as `gps sweep status` lists it.
    #[arg(long)]
    pub run: String,
    /// The weights file (default `<dir>/export/<run id>.safetensors`); the JSON goes beside it.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

impl ExportArgs {
    pub fn run(self) -> Result<()> {
        let run = TrainedRun::load(&self.dir, &self.run)?;
        let out = self.out.clone().unwrap_or_else(|| self.dir.join("export").join(format!("{}.safetensors", run.run_id)));
        let json = super::export(&run, &out)?;
        println!(
            "exported the {} encoder of run {} (epoch {}, {} steps) to {} and {}",
            crate::config::serde_name(&run.spec.backbone),
            run.run_id,
            run.state.epoch,
            run.state.global_step,
            out.display(),
            json.display()
        );
        Ok(())
    }
}
