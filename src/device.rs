//! Picking the compute device and describing it for result rows.

use crate::config::DeviceChoice;
use anyhow::{Result, bail};
use tch::Device;

/// Resolves `auto|cpu|cuda`; asking for CUDA where there is none is an error, not a silent CPU run.
pub fn resolve(choice: DeviceChoice) -> Result<Device> {
    match choice {
        DeviceChoice::Cpu => Ok(Device::Cpu),
        DeviceChoice::Auto => Ok(Device::cuda_if_available()),
        DeviceChoice::Cuda => {
            if tch::Cuda::is_available() {
                Ok(Device::Cuda(0))
            } else {
                bail!("device `cuda` was asked for but CUDA is not usable here: {} (or use `device: auto` or `cpu`)", cuda_verdict())
            }
        }
    }
}

/// A human name for the device: the GPU's name, or `cpu (N threads)`.
pub fn describe(device: Device) -> String {
    match device {
        Device::Cuda(i) => cuda_device_name(i).unwrap_or_else(|| format!("cuda:{i}")),
        _ => format!("cpu ({} threads)", tch::get_num_threads()),
    }
}

/// The GPU's name via nvidia-smi (tch does not expose cudaGetDeviceProperties).
fn cuda_device_name(index: usize) -> Option<String> {
    let out = std::process::Command::new("nvidia-smi").args(["--query-gpu=name", "--format=csv,noheader", &format!("--id={index}")]).output().ok()?;
    let name = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !name.is_empty()).then_some(name)
}

/// The NVIDIA kernel driver: its version line, or None without one.
pub fn nvidia_driver() -> Option<String> {
    let text = std::fs::read_to_string("/proc/driver/nvidia/version").ok()?;
    text.lines()
        .next()
        .map(|l| l.split_whitespace().skip_while(|w| *w != "Kernel").take(4).collect::<Vec<_>>().join(" "))
        .filter(|s| !s.is_empty())
        .or(Some(text.trim().to_string()))
}

/// Where CUDA stands, in one sentence a user can act on.
pub fn cuda_verdict() -> String {
    let driver = nvidia_driver();
    match crate::torch_runtime::init() {
        Some(why) => format!(
            "CUDA not available: libtorch's CUDA libraries are not installed here ({why}). Run `GPS_CUDA=1 scripts/setup-libtorch.sh` \
             (it installs the CUDA libraries torch 2.11.0 pins: about 2.5 GB to download, 4 GB on disk; on a machine with an NVIDIA \
             driver `scripts/setup-libtorch.sh` does it by itself){}",
            if driver.is_some() { "" } else { "; this machine also has no NVIDIA driver" }
        ),
        None if tch::Cuda::is_available() => format!("CUDA ready: {} device(s)", tch::Cuda::device_count()),
        None => match driver {
            None => "CUDA libraries loaded, no device: this machine has no NVIDIA driver (/proc/driver/nvidia/version is absent); run on a GPU node".into(),
            Some(d) => format!(
                "CUDA libraries loaded, no device: the NVIDIA driver is there ({d}) but no GPU is visible to this process{}",
                match std::env::var("CUDA_VISIBLE_DEVICES") {
                    Ok(v) => format!(" (CUDA_VISIBLE_DEVICES={v:?})"),
                    Err(_) => " (check `nvidia-smi`)".into(),
                }
            ),
        },
    }
}
