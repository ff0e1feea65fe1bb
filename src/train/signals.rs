//! SIGTERM (scancel, preemption, `scontrol requeue`), SIGUSR1 (SLURM's pre-timeout signal with
//! `--signal=B:USR1@s`) and SIGINT (Ctrl-C) ask the run to checkpoint and stop at the next step.

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// 0: none; otherwise the signal number last received.
static RECEIVED: OnceLock<Arc<AtomicUsize>> = OnceLock::new();

/// Installs the handlers once per process (later calls are no-ops).
pub fn install() {
    RECEIVED.get_or_init(|| {
        let flag = Arc::new(AtomicUsize::new(0));
        for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGUSR1, signal_hook::consts::SIGINT] {
            // Registration only fails for forbidden signals, which these are not.
            let _ = signal_hook::flag::register_usize(sig, flag.clone(), sig as usize);
        }
        flag
    });
}

/// The name of the stop signal received so far, if any.
pub fn pending() -> Option<&'static str> {
    let n = RECEIVED.get()?.load(Ordering::Relaxed);
    match n as i32 {
        0 => None,
        signal_hook::consts::SIGTERM => Some("SIGTERM"),
        signal_hook::consts::SIGUSR1 => Some("SIGUSR1"),
        signal_hook::consts::SIGINT => Some("SIGINT"),
        _ => Some("a signal"),
    }
}
