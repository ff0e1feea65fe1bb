//! How glibc's malloc treats the large, short-lived buffers of CPU training.
//!
//! libtorch takes every CPU tensor from malloc. By default glibc serves a request above its
//! mmap threshold (128 KiB, raised on the fly up to the largest block freed so far) with a fresh
//! `mmap` and gives the top of the heap back to the kernel as soon as 128 KiB+ of it is free, so
//! each training step faults in and zeroes again the activations of the step before: on the
//! 2-core development machine, 17% of a small-CNN run was the kernel clearing pages (perf).
//! Serving everything up to 32 MiB (glibc's own ceiling for this threshold) from the heap and
//! keeping up to 1 GiB of freed heap took two one-epoch MNIST-5k SimCLR runs side by side from
//! 54.5 s to 47.8 s (medians of five pairs; system time 8 s -> 4 s a run), a pair of the
//! quickstart's 3-epoch runs from 123.3 s to 119.2 s, and peak RSS up by about a tenth. PyTorch's CPU tuning guide reaches the same
//! end by preloading jemalloc or tcmalloc; this needs no extra library.
//!
//! A user who set malloc's own knobs (`GLIBC_TUNABLES`, `MALLOC_*_`) keeps them.

/// The largest request served from the heap instead of its own mmap (glibc's maximum).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: i32 = 32 << 20;
/// Freed memory at the top of the heap kept for the next step instead of handed back.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: i32 = 1 << 30;

/// Call once at start, before the first tensor. Leaves malloc alone where the user tuned it or
/// where the C library is not glibc.
pub fn tune_for_training() {
    let user_tuned = std::env::vars_os().any(|(k, v)| {
        let (k, v) = (k.to_string_lossy(), v.to_string_lossy());
        (k == "GLIBC_TUNABLES" && v.contains("glibc.malloc.")) || (k.starts_with("MALLOC_") && k.ends_with('_'))
    });
    if user_tuned {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before other threads allocate.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}
