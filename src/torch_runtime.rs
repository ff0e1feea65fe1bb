//! Loading libtorch's CUDA half at run time.
//!
//! rustc links with `--as-needed`, so `libtorch_cuda.so` never becomes a DT_NEEDED entry of the
//! binary and CUDA would stay invisible. Loading it with `dlopen` before the first tch call registers
//! the CUDA hooks; where only the CPU libraries exist (the minimal install of
//! `scripts/setup-libtorch.sh`) the load fails and everything runs on the CPU. One binary serves both.

use std::ffi::CString;
use std::sync::OnceLock;

/// Outcome of the attempt to load libtorch_cuda.so (None: loaded; Some: why not).
static CUDA_LOAD: OnceLock<Option<String>> = OnceLock::new();

/// Call first thing in `main`, before any other tch call (the ATen hooks are created once).
pub fn init() -> Option<&'static str> {
    CUDA_LOAD.get_or_init(load_cuda).as_deref()
}

/// Whether libtorch_cuda.so was loaded (CUDA may still be absent if there is no driver or GPU).
pub fn cuda_library_loaded() -> bool {
    matches!(CUDA_LOAD.get(), Some(None))
}

fn load_cuda() -> Option<String> {
    let candidates = torch_lib_dir().map(|d| format!("{d}/libtorch_cuda.so")).into_iter().chain(std::iter::once("libtorch_cuda.so".to_string()));
    let mut last_error = String::from("libtorch_cuda.so not found");
    for path in candidates {
        let c = CString::new(path.clone()).expect("path has no NUL");
        // SAFETY: dlopen with a valid C string; the handle is intentionally leaked (stays loaded).
        let handle = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
        if !handle.is_null() {
            return None;
        }
        // SAFETY: dlerror returns a thread-local C string or NULL.
        let err = unsafe { libc::dlerror() };
        if !err.is_null() {
            last_error = unsafe { std::ffi::CStr::from_ptr(err) }.to_string_lossy().into_owned();
        }
    }
    Some(last_error)
}

/// The directory holding the libtorch_cpu.so this process mapped (read from /proc/self/maps).
fn torch_lib_dir() -> Option<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.ends_with("/libtorch_cpu.so"))
        .and_then(|p| p.rsplit_once('/').map(|(d, _)| d.to_string()))
}
