//! `gps info`: what this machine gives gps (libtorch, its install, CUDA libraries, the NVIDIA
//! driver, devices), and when CUDA is not usable, exactly why and what to run. `--check` runs the
//! device self-check (`train::selfcheck`) and fails on any mismatch.

use crate::config::{Backbone, DeviceChoice};
use crate::exec::ExecPaths;
use crate::train::selfcheck;
use anyhow::{Result, bail};
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct InfoArgs {
    /// Run the self-check: each method's training step on the device against fp32 on the CPU,
    /// a checkpoint round trip on the device, samples/s; non-zero exit on any mismatch.
    #[arg(long)]
    pub check: bool,
    /// The device the check runs on: auto (CUDA when usable, else the CPU, running the CUDA
    /// choices there), cuda (an error without CUDA) or cpu.
    #[arg(long, value_enum, default_value = "auto")]
    pub device: DeviceChoice,
    /// The backbone the check trains (resnet18: what runs use; small-cnn: a quick check).
    #[arg(long, default_value = "resnet18", value_parser = parse_backbone)]
    pub backbone: Backbone,
    /// The smallest check (8 px images, batch 8, one timed step): it verifies the same, at a
    /// fraction of the time on a CPU without native bf16, where autocast's kernels are emulated.
    #[arg(long, requires = "check")]
    pub quick: bool,
}

fn parse_backbone(s: &str) -> Result<Backbone, String> {
    serde_norway::from_str::<Backbone>(s).map_err(|e| e.to_string())
}

/// The folder holding the libtorch_cpu.so this process mapped.
fn torch_lib_dir() -> Option<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.ends_with("/libtorch_cpu.so"))
        .and_then(|p| Path::new(p).parent().map(Path::to_path_buf))
}

/// `key=value` of the install marker scripts/setup-libtorch.sh writes (`.torch/INSTALL`).
fn install_marker(lib: &Path) -> Option<(String, String)> {
    let marker = lib.parent()?.parent()?.join("INSTALL");
    let text = std::fs::read_to_string(marker).ok()?;
    let get = |k: &str| text.lines().find_map(|l| l.strip_prefix(&format!("{k}=")).map(str::to_string));
    Some((get("flavour").unwrap_or_else(|| "?".into()), get("torch").unwrap_or_else(|| "?".into())))
}

/// libtorch's version as the wheel records it next to the library (torch/version.py).
fn libtorch_version(lib: Option<&Path>) -> String {
    lib.and_then(|l| l.parent())
        .and_then(|t| std::fs::read_to_string(t.join("version.py")).ok())
        .and_then(|t| t.lines().find(|l| l.starts_with("__version__")).map(|l| l.split('\'').nth(1).unwrap_or("?").to_string()))
        .unwrap_or_else(|| "2.11 (version file not found)".into())
}

impl InfoArgs {
    pub fn run(self) -> Result<()> {
        let lib = torch_lib_dir();
        println!("gps-ssl {}", env!("CARGO_PKG_VERSION"));
        let (version, what) = crate::numerics::HISTORY.last().expect("a numerics version");
        println!("numerics version: {version} ({what})");
        println!("libtorch {} at {}", libtorch_version(lib.as_deref()), lib.as_ref().map(|l| l.display().to_string()).unwrap_or_else(|| "?".into()));
        match lib.as_deref().and_then(install_marker) {
            Some((flavour, torch)) => println!("install: {flavour} flavour of torch {torch} (scripts/setup-libtorch.sh)"),
            None => println!("install: not made by scripts/setup-libtorch.sh (no INSTALL marker beside torch/)"),
        }
        println!("cpu threads: {}", tch::get_num_threads());
        match crate::torch_runtime::init() {
            None => println!("CUDA libraries: loaded (libtorch_cuda.so)"),
            Some(why) => println!("CUDA libraries: not loaded ({why})"),
        }
        println!("NVIDIA driver: {}", crate::device::nvidia_driver().unwrap_or_else(|| "none".into()));
        let cuda = tch::Cuda::is_available();
        println!("CUDA devices: {}", tch::Cuda::device_count());
        if crate::torch_runtime::cuda_library_loaded() && cuda {
            println!("cudnn version: {}, cuda runtime: {}", tch::utils::version_cudnn(), tch::utils::version_cudart());
            println!("gpu: {}", crate::device::describe(tch::Device::Cuda(0)));
        }
        println!("{}", crate::device::cuda_verdict());
        if self.check { self.check() } else { Ok(()) }
    }

    fn check(&self) -> Result<()> {
        let device = crate::device::resolve(self.device)?;
        // The run's own choices on a GPU; on a CPU every CUDA choice (the branches a GPU takes).
        let paths = if device.is_cuda() { ExecPaths::cuda_choices(device) } else { ExecPaths::cuda_choices(tch::Device::Cpu) };
        println!(
            "\nself-check on {} ({}), {:?}, against fp32 on the CPU (tolerances: loss {:.0}%, update {:.0}%)",
            crate::device::describe(device),
            paths.describe(),
            self.backbone,
            100.0 * selfcheck::LOSS_TOLERANCE,
            100.0 * selfcheck::UPDATE_TOLERANCE
        );
        let scratch = tempdir()?;
        let mut failed = Vec::new();
        println!("{:<13} {:>22} {:>22} {:>8} {:>10}  result", "method", "SSL loss (device/fp32)", "probe (device/fp32)", "update", "samples/s");
        for method in selfcheck::METHODS {
            let c = selfcheck::check_method(
                method,
                self.backbone,
                device,
                paths,
                &scratch,
                if self.quick { selfcheck::CheckSize::SMALLEST } else { selfcheck::CheckSize::DEFAULT },
            )?;
            println!(
                "{:<13} {:>10.4} / {:<10.4} {:>10.4} / {:<10.4} {:>7.2}% {:>10.0}  {}",
                method.as_str(),
                c.device_losses.0,
                c.reference_losses.0,
                c.device_losses.1,
                c.reference_losses.1,
                100.0 * c.update_difference,
                c.samples_per_s,
                if c.problems.is_empty() { "ok".to_string() } else { format!("FAILED: {}", c.problems.join("; ")) }
            );
            if !c.problems.is_empty() {
                failed.push(method.as_str());
            }
        }
        let _ = std::fs::remove_dir_all(&scratch);
        if !failed.is_empty() {
            bail!("self-check failed for {} on {}: see the table above", failed.join(", "), crate::device::describe(device));
        }
        println!("self-check passed");
        Ok(())
    }
}

fn tempdir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("gps-selfcheck-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
