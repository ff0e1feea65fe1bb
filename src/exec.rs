//! How a run executes on its device: bf16 autocast, channels-last convolutions, which LARS kernel.
//! On a GPU a run takes the CUDA choices (bf16 autocast, NHWC, the flat tensor kernel); on a CPU
//! the fp32 ones. Every CUDA choice also runs on a CPU (CPU autocast does bf16, NHWC strides and the
//! tensor kernel work there), so the tests and `gps info --check` execute each CUDA branch without
//! a GPU and compare it with the fp32 path: a GPU run is never the first execution of a line.

use crate::config::{Precision, RunSpec};
use crate::optim::flat_lars::Kernel;
use anyhow::{Result, bail};
use tch::Device;

/// The execution choices of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecPaths {
    /// bf16 autocast on this device's type (None: fp32 throughout).
    pub autocast: Option<Device>,
    /// NHWC convolutions (weights and inputs re-laid through strides).
    pub channels_last: bool,
    /// The LARS/SGD update: fused host passes (CPU) or whole-buffer tensor kernels (GPU).
    pub lars: Kernel,
}

impl ExecPaths {
    /// What `spec` asks for on `device`: the CUDA choices on a GPU (`precision: auto` →
    /// bf16 autocast, `channels_last`), fp32 and the host kernel on a CPU. bf16 asked for on a
    /// CPU is an error (a CPU run in bf16 is slower, and not what anybody benchmarks).
    pub fn for_run(spec: &RunSpec, device: Device) -> Result<ExecPaths> {
        let cuda = device.is_cuda();
        let autocast = match spec.precision {
            Precision::Auto => cuda,
            Precision::Fp32 => false,
            Precision::Bf16 if cuda => true,
            Precision::Bf16 => bail!("field `precision`: bf16 autocast runs on CUDA only; use `auto` or `fp32` on the CPU"),
        };
        Ok(ExecPaths {
            autocast: autocast.then_some(device),
            channels_last: cuda && spec.channels_last,
            lars: if cuda { Kernel::Tensors } else { Kernel::Host },
        })
    }

    /// The reference: fp32, contiguous NCHW, the host LARS kernel (on the CPU).
    pub fn fp32() -> ExecPaths {
        ExecPaths { autocast: None, channels_last: false, lars: Kernel::Host }
    }

    /// Every CUDA choice, on `device` (a CPU runs them too: the branches CI executes).
    pub fn cuda_choices(device: Device) -> ExecPaths {
        ExecPaths { autocast: Some(device), channels_last: true, lars: Kernel::Tensors }
    }

    /// One line for logs and reports.
    pub fn describe(&self) -> String {
        format!(
            "{}, {}, {} LARS kernel",
            match self.autocast {
                Some(d) if d.is_cuda() => "bf16 autocast (CUDA)",
                Some(_) => "bf16 autocast (CPU)",
                None => "fp32",
            },
            if self.channels_last { "channels-last" } else { "NCHW" },
            match self.lars {
                Kernel::Host => "host",
                Kernel::Tensors => "tensor",
            }
        )
    }
}

/// libtorch's autocast state, per device type (`at::autocast`, in libtorch_cpu.so 2.11; tch only
/// wraps CUDA's, with fp16).
mod ffi {
    #[link(name = "torch_cpu")]
    unsafe extern "C" {
        #[link_name = "_ZN2at8autocast19is_autocast_enabledEN3c1010DeviceTypeE"]
        pub fn is_enabled(device_type: i8) -> bool;
        #[link_name = "_ZN2at8autocast20set_autocast_enabledEN3c1010DeviceTypeEb"]
        pub fn set_enabled(device_type: i8, enabled: bool);
        #[link_name = "_ZN2at8autocast18set_autocast_dtypeEN3c1010DeviceTypeENS1_10ScalarTypeE"]
        pub fn set_dtype(device_type: i8, dtype: i8);
        #[link_name = "_ZN2at8autocast17increment_nestingEv"]
        pub fn increment_nesting() -> i32;
        #[link_name = "_ZN2at8autocast17decrement_nestingEv"]
        pub fn decrement_nesting() -> i32;
        #[link_name = "_ZN2at8autocast11clear_cacheEv"]
        pub fn clear_cache();
    }
}

/// c10::DeviceType: CPU = 0, CUDA = 1.
const CPU: i8 = 0;
const CUDA: i8 = 1;
/// c10::ScalarType::BFloat16.
const BFLOAT16: i8 = 15;

fn device_type(device: Device) -> i8 {
    if device.is_cuda() { CUDA } else { CPU }
}

/// Runs `f` with bf16 autocast on `on`'s device type, or (None) with autocast off on every device
/// type (fp32: what losses run in). The previous state is restored afterwards.
pub fn autocast<T>(on: Option<Device>, f: impl FnOnce() -> T) -> T {
    // SAFETY: plain calls into libtorch's thread-local autocast state with valid enum values.
    unsafe {
        let before = [ffi::is_enabled(CPU), ffi::is_enabled(CUDA)];
        match on {
            Some(device) => {
                let t = device_type(device);
                ffi::set_dtype(t, BFLOAT16);
                ffi::set_enabled(t, true);
                ffi::increment_nesting();
            }
            None => {
                ffi::set_enabled(CPU, false);
                ffi::set_enabled(CUDA, false);
            }
        }
        let out = f();
        if on.is_some() && ffi::decrement_nesting() == 0 {
            ffi::clear_cache(); // the bf16 copies of weights cached for this region
        }
        ffi::set_enabled(CPU, before[0]);
        ffi::set_enabled(CUDA, before[1]);
        out
    }
}

/// Whether autocast is on for `device`'s type here (tests, the self-check).
pub fn autocast_enabled(device: Device) -> bool {
    // SAFETY: a read of libtorch's thread-local autocast state.
    unsafe { ffi::is_enabled(device_type(device)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Kind, Tensor};

    #[test]
    fn cpu_autocast_runs_matmuls_in_bf16_and_the_fp32_region_turns_it_off() {
        let a = Tensor::randn([4, 4], (Kind::Float, Device::Cpu));
        let (inside, nested, flag) = autocast(Some(Device::Cpu), || (a.mm(&a).kind(), autocast(None, || a.mm(&a).kind()), autocast_enabled(Device::Cpu)));
        assert_eq!((inside, nested, flag), (Kind::BFloat16, Kind::Float, true));
        assert!(!autocast_enabled(Device::Cpu), "restored after the region");
        assert_eq!(a.mm(&a).kind(), Kind::Float);
    }
}
