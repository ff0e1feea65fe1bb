//! This machine and its processes, for records that other processes (a status query, a watch)
//! read: which host wrote a record, whether the process that wrote it is still alive, and when.

/// The host name (as `hostname` prints it), or `unknown`.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `len` bytes into the buffer we own.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    if rc == 0 && end > 0 { String::from_utf8_lossy(&buf[..end]).into_owned() } else { "unknown".into() }
}

/// Whether a process with this id exists on this machine (signal 0 checks without sending;
/// EPERM means it exists but belongs to someone else).
pub fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else { return false };
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill(2) with signal 0 only checks for the process.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// `<array job>_<task>` under a SLURM array, the job id under plain SLURM, else `local`.
pub fn slurm_job() -> String {
    match (std::env::var("SLURM_ARRAY_JOB_ID"), std::env::var("SLURM_ARRAY_TASK_ID")) {
        (Ok(j), Ok(t)) => format!("{j}_{t}"),
        _ => std::env::var("SLURM_JOB_ID").unwrap_or_else(|_| "local".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_reaped_child_is_not() {
        assert!(pid_alive(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!pid_alive(pid));
        assert!(!pid_alive(0));
        assert!(!hostname().is_empty());
    }
}
