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
                let why = match crate::torch_runtime::init() {
                    Some(err) => format!("libtorch_cuda.so could not be loaded ({err})"),
                    None => "no CUDA device is visible".to_string(),
                };
                bail!("field `device`: cuda was asked for but {why}; use `device: auto` or `cpu`")
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
