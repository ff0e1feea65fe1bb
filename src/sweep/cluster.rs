//! The SLURM commands gps uses: `sbatch --parsable` to submit, `scontrol show job -o` to read task
//! states (this works without an accounting database, unlike `sacct`), `scontrol show config` for
//! MaxArraySize. Every failure names the command and what to do.

use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::Command;

/// Runs a SLURM client command, with a clear error when it is not installed.
fn slurm(program: &str, args: &[&str], workdir: Option<&Path>) -> Result<std::process::Output> {
    let mut cmd = Command::new(program);
    cmd.args(args);
    if let Some(dir) = workdir {
        cmd.current_dir(dir);
    }
    cmd.output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            anyhow::anyhow!(
                "`{program}` is not on PATH: this machine is not a SLURM submit host. Run on a login node, start the test cluster with `slurm/local-cluster.sh up`, or use `gps sweep run` to run the sweep here"
            )
        } else {
            anyhow::anyhow!("cannot run `{program}`: {e}")
        }
    })
}

/// Submits a script; returns the job id. Extra arguments (a dependency) go on the command line.
pub fn sbatch(script: &Path, extra: &[String], workdir: &Path) -> Result<String> {
    let script_arg = script.to_str().context("script path is not UTF-8")?;
    let mut args: Vec<&str> = vec!["--parsable"];
    args.extend(extra.iter().map(String::as_str));
    args.push(script_arg);
    let out = slurm("sbatch", &args, Some(workdir))?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stderr).trim().to_string();
        bail!("SLURM refused the job: `sbatch {}` said: {said}{}", script.display(), refusal_hint(&said));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    // --parsable prints `<job id>` or `<job id>;<cluster>`
    let id = text.trim().split(';').next().unwrap_or("").to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        bail!("sbatch {} printed {:?}, not a job id", script.display(), text.trim());
    }
    Ok(id)
}

/// What to do about the usual reasons `sbatch` refuses a job, from its own words.
fn refusal_hint(said: &str) -> &'static str {
    let s = said.to_ascii_lowercase();
    if s.contains("qos") {
        " (the quality of service: set `slurm.qos` in the sweep file to one your account may use; `sacctmgr show assoc user=$USER` lists them)"
    } else if s.contains("partition") && (s.contains("inactive") || s.contains("down") || s.contains("state")) {
        " (the partition does not take jobs now: `sinfo` shows its state; choose another with `slurm.partition`, or wait for it)"
    } else if s.contains("invalid partition") {
        " (set `slurm.partition` to one that `sinfo -s` lists)"
    } else if s.contains("account") {
        " (set `slurm.account` to an account you may charge)"
    } else if s.contains("time limit") {
        " (lower `slurm.time` below the partition's MaxTime: `sinfo -o '%P %l'`)"
    } else {
        ""
    }
}

/// The cluster's MaxArraySize (array indices must stay below it); SLURM's default when unknown.
pub fn max_array_size() -> Result<usize> {
    let out = slurm("scontrol", &["show", "config"], None)?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text.lines().find(|l| l.trim_start().starts_with("MaxArraySize")).and_then(|l| l.split('=').nth(1)).and_then(|v| v.trim().parse().ok()).unwrap_or(1001))
}

/// One record of `scontrol show job -o`: a task, or the meta record of still-pending tasks.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRecord {
    pub job_id: String,
    /// The array indices this record covers (one for a started task).
    pub indices: Vec<usize>,
    pub state: String,
    pub reason: String,
    pub exit_code: String,
    pub restarts: u32,
}

impl TaskRecord {
    /// Queued or running: submitting the run again would duplicate it.
    pub fn is_active(&self) -> bool {
        matches!(
            self.state.as_str(),
            "PENDING"
                | "RUNNING"
                | "REQUEUED"
                | "REQUEUE_HOLD"
                | "REQUEUE_FED"
                | "CONFIGURING"
                | "COMPLETING"
                | "SUSPENDED"
                | "RESIZING"
                | "SIGNALING"
                | "STAGE_OUT"
        )
    }
}

/// All records of one job (every task of an array). A job SLURM has forgotten (older than
/// MinJobAge) gives no records.
pub fn job_records(job_id: &str) -> Result<Vec<TaskRecord>> {
    let out = slurm("scontrol", &["show", "job", "-o", job_id], None)?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("Invalid job id") {
            return Ok(Vec::new());
        }
        bail!("`scontrol show job -o {job_id}` failed: {}", err.trim());
    }
    Ok(parse_records(&String::from_utf8_lossy(&out.stdout)))
}

pub fn parse_records(text: &str) -> Vec<TaskRecord> {
    text.lines()
        .filter(|l| l.contains("JobId="))
        .map(|line| {
            let field = |key: &str| line.split_whitespace().find_map(|t| t.strip_prefix(key).and_then(|v| v.strip_prefix('='))).unwrap_or("").to_string();
            let array_job = field("ArrayJobId");
            TaskRecord {
                job_id: if array_job.is_empty() { field("JobId") } else { array_job },
                indices: parse_indices(&field("ArrayTaskId")),
                state: field("JobState"),
                reason: field("Reason"),
                exit_code: field("ExitCode"),
                restarts: field("Restarts").parse().unwrap_or(0),
            }
        })
        .collect()
}

/// `3`, `2-5`, `1,3-4`, `[0-7%2]`, `4-9%2` -> the indices (the `%N` throttle is dropped).
pub fn parse_indices(spec: &str) -> Vec<usize> {
    let spec = spec.trim_matches(['[', ']']);
    let spec = spec.split('%').next().unwrap_or("");
    let mut out = Vec::new();
    for part in spec.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<usize>(), b.parse::<usize>()) {
                    out.extend(a..=b);
                }
            }
            None => out.extend(part.parse::<usize>().ok()),
        }
    }
    out
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_refusal_names_what_to_change() {
        assert!(refusal_hint("sbatch: error: Batch job submission failed: Invalid qos specification").contains("slurm.qos"));
        assert!(refusal_hint("sbatch: error: Batch job submission failed: Partition in inactive state").contains("slurm.partition"));
        assert!(refusal_hint("sbatch: error: invalid partition specified: gpu-big").contains("sinfo -s"));
        assert_eq!(refusal_hint("sbatch: error: something new"), "");
    }

    use super::*;

    #[test]
    fn parses_scontrol_one_line_records() {
        let text = "JobId=25 ArrayJobId=18 ArrayTaskId=2 JobName=x JobState=FAILED Reason=NonZeroExitCode Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=3:0\n\
                    JobId=18 ArrayJobId=18 ArrayTaskId=4-7%2 JobName=x JobState=PENDING Reason=JobArrayTaskLimit Restarts=0 ExitCode=0:0\n\
                    JobId=30 JobName=prep JobState=COMPLETED Reason=None Restarts=1 ExitCode=0:0\n";
        let r = parse_records(text);
        assert_eq!(r.len(), 3);
        assert_eq!((r[0].job_id.as_str(), r[0].indices.clone(), r[0].state.as_str(), r[0].exit_code.as_str()), ("18", vec![2], "FAILED", "3:0"));
        assert_eq!(r[1].indices, vec![4, 5, 6, 7]);
        assert!(r[1].is_active() && !r[0].is_active());
        assert_eq!((r[2].job_id.as_str(), r[2].restarts), ("30", 1));
        assert_eq!(parse_indices("[1,3-4%2]"), vec![1, 3, 4]);
    }
}
