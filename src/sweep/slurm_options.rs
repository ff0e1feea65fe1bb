//! The `slurm:` section of a sweep file. Everything here ends up in a generated shell script, so
//! every value is checked against a strict format before it gets there: a sweep file can ask for
//! resources, never run commands.

use serde::{Deserialize, Serialize};

/// A `slurm:` value that failed its format check; `field` lets the caller point at its line.
#[derive(Debug, thiserror::Error)]
#[error("field `slurm.{field}`: {message}")]
pub struct InvalidOption {
    pub field: &'static str,
    pub message: String,
    /// The `extra` entry at fault, so the error can point at its own line.
    pub entry: Option<String>,
}

type Result<T> = std::result::Result<T, InvalidOption>;

fn invalid<T>(field: &'static str, message: String) -> Result<T> {
    Err(InvalidOption { field, message, entry: None })
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlurmOptions {
    pub partition: Option<String>,
    pub account: Option<String>,
    pub qos: Option<String>,
    /// Wall-clock limit per task: `MM`, `MM:SS`, `HH:MM:SS`, `D-HH`, `D-HH:MM`, `D-HH:MM:SS`.
    pub time: Option<String>,
    /// Generic resources per task, e.g. `gpu:1` or `gpu:a100:1`.
    pub gres: Option<String>,
    /// CPUs per task.
    pub cpus: Option<u32>,
    /// Memory per node: a number with an optional K/M/G/T suffix.
    pub mem: Option<String>,
    /// At most this many array tasks run at once (`--array=0-N%throttle`).
    pub throttle: Option<u32>,
    /// Seconds before the time limit at which SLURM sends USR1: the task checkpoints and requeues.
    pub signal_before: u32,
    /// Further `#SBATCH` directives, each `--name=value` or `--flag`.
    pub extra: Vec<String>,
}

impl Default for SlurmOptions {
    fn default() -> Self {
        SlurmOptions {
            partition: None,
            account: None,
            qos: None,
            time: None,
            gres: None,
            cpus: None,
            mem: None,
            throttle: None,
            signal_before: 120,
            extra: Vec::new(),
        }
    }
}

/// Every long option of sbatch (22.05, plus those added up to 24.11). sbatch reads `#SBATCH`
/// lines with getopt_long, which takes any unambiguous prefix of these (`--arr=` is `--array=`):
/// an `extra` entry is resolved against the whole list the same way, so a prefix can neither
/// slip past the allow-list nor mean something else to sbatch than to gps.
#[rustfmt::skip]
const SBATCH_OPTIONS: &[&str] = &[
    "account", "acctg-freq", "array", "batch", "bb", "bbf", "begin", "chdir", "cluster", "cluster-constraint", "clusters",
    "comment", "constraint", "container", "container-id", "context", "contiguous", "core-spec", "cores-per-socket", "cpu-freq",
    "cpus-per-gpu", "cpus-per-task", "deadline", "delay-boot", "dependency", "distribution", "error", "exclude", "exclusive",
    "export", "export-file", "extra", "extra-node-info", "get-user-env", "gid", "gpu-bind", "gpu-freq", "gpus", "gpus-per-node",
    "gpus-per-socket", "gpus-per-task", "gres", "gres-flags", "help", "hint", "hold", "ignore-pbs", "input", "job-name",
    "kill-on-invalid-dep", "licenses", "mail-type", "mail-user", "mcs-label", "mem", "mem-bind", "mem-per-cpu", "mem-per-gpu",
    "mincpus", "network", "nice", "no-kill", "no-requeue", "nodefile", "nodelist", "nodes", "ntasks", "ntasks-per-core",
    "ntasks-per-gpu", "ntasks-per-node", "ntasks-per-socket", "ntasks-per-tres", "oom-kill-step", "open-mode", "output",
    "overcommit", "oversubscribe", "parsable", "partition", "power", "prefer", "priority", "profile", "propagate", "qos", "quiet",
    "reboot", "requeue", "reservation", "segment", "signal", "sockets-per-node", "spread-job", "stepmgr", "switches",
    "tasks-per-node", "test-only", "thread-spec", "threads-per-core", "time", "time-min", "tmp", "tres-bind", "tres-per-task",
    "uid", "umask", "usage", "use-min-nodes", "verbose", "version", "wait", "wait-all-nodes", "wckey", "wrap",
];

/// What `slurm.extra` may set: placement, node features, GPU and memory detail, mail, accounting
/// labels and scheduling hints. Everything else sbatch knows is refused: the directives gps writes
/// itself (array, output, error, open-mode, chdir, job-name, dependency, signal, requeue, ...),
/// those that would change what the script runs or how it is submitted (wrap, export,
/// export-file, input, test-only, wait, clusters, uid, ...), and multi-task layouts a run does not
/// use (nodes, ntasks, distribution, ...).
#[rustfmt::skip]
pub const EXTRA_ALLOWED: &[&str] = &[
    "acctg-freq", "begin", "comment", "constraint", "contiguous", "core-spec", "cores-per-socket", "cpu-freq", "cpus-per-gpu",
    "deadline", "delay-boot", "exclude", "exclusive", "gpu-bind", "gpu-freq", "gpus", "gpus-per-node", "gpus-per-socket",
    "gpus-per-task", "gres-flags", "hint", "hold", "licenses", "mail-type", "mail-user", "mcs-label", "mem-bind", "mem-per-cpu",
    "mem-per-gpu", "mincpus", "network", "nice", "nodelist", "oversubscribe", "prefer", "priority", "profile", "reservation",
    "sockets-per-node", "spread-job", "switches", "thread-spec", "threads-per-core", "time-min", "tmp", "use-min-nodes", "wckey",
];

/// Options with a field of their own in `slurm:`.
const OWN_FIELDS: &[(&str, &str)] =
    &[("partition", "partition"), ("account", "account"), ("qos", "qos"), ("time", "time"), ("gres", "gres"), ("cpus-per-task", "cpus"), ("mem", "mem")];

/// Options gps writes itself in every script.
const MANAGED: &[&str] = &["array", "output", "error", "open-mode", "chdir", "job-name", "dependency", "signal", "requeue", "no-requeue", "parsable"];

/// The long option sbatch takes `name` for, as getopt_long resolves it: the exact name, else the
/// only option it is a prefix of.
pub fn resolve_option(name: &str) -> std::result::Result<&'static str, Vec<&'static str>> {
    if let Some(exact) = SBATCH_OPTIONS.iter().find(|o| **o == name) {
        return Ok(exact);
    }
    let matches: Vec<&'static str> = SBATCH_OPTIONS.iter().copied().filter(|o| o.starts_with(name)).collect();
    match matches.as_slice() {
        [one] => Ok(one),
        _ => Err(matches),
    }
}

impl SlurmOptions {
    /// Checks every field's format; the message names the field (`slurm.<field>`) and the format.
    pub fn validate(&self) -> Result<()> {
        let name_chars = |c: char| c.is_ascii_alphanumeric() || "._-".contains(c);
        for (field, value) in [("partition", &self.partition), ("account", &self.account), ("qos", &self.qos)] {
            if let Some(v) = value
                && (v.is_empty() || !v.chars().all(name_chars))
            {
                return invalid(field, format!("{v:?} may contain only letters, digits, `.`, `_` and `-`"));
            }
        }
        if let Some(t) = &self.time
            && !is_slurm_time(t)
        {
            return invalid("time", format!("{t:?} is not a SLURM time (MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS)"));
        }
        if let Some(g) = &self.gres {
            let ok = !g.is_empty() && g.split(',').all(|one| !one.is_empty() && one.split(':').all(|p| !p.is_empty() && p.chars().all(name_chars)));
            if !ok {
                return invalid("gres", format!("{g:?} is not a GRES list like `gpu:1` or `gpu:a100:2`"));
            }
        }
        if let Some(m) = &self.mem {
            let digits = m.trim_end_matches(['K', 'M', 'G', 'T']);
            let suffixes = m.len() - digits.len();
            if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) || suffixes > 1 {
                return invalid("mem", format!("{m:?} is not a memory size like `16G` or `4000M`"));
            }
        }
        if self.cpus == Some(0) {
            return invalid("cpus", "must be at least 1".into());
        }
        if self.signal_before > 65535 {
            return invalid("signal_before", format!("{} s is more than the 65535 s SLURM's `--signal` takes", self.signal_before));
        }
        if self.throttle == Some(0) {
            return invalid("throttle", "must be at least 1 (tasks running at once)".into());
        }
        for directive in &self.extra {
            check_extra(directive).map_err(|e| InvalidOption { entry: Some(directive.clone()), ..e })?;
        }
        Ok(())
    }

    /// The `#SBATCH` lines for these options. `extra` entries are written with sbatch's full option
    /// name (`--mail-t=END` becomes `--mail-type=END`), so the script holds no abbreviation.
    pub fn directives(&self) -> Result<Vec<String>> {
        self.validate()?;
        let mut out = Vec::new();
        let mut push = |name: &str, value: &Option<String>| {
            if let Some(v) = value {
                out.push(format!("--{name}={v}"));
            }
        };
        push("partition", &self.partition);
        push("account", &self.account);
        push("qos", &self.qos);
        push("time", &self.time);
        push("gres", &self.gres);
        push("cpus-per-task", &self.cpus.map(|c| c.to_string()));
        push("mem", &self.mem);
        for directive in &self.extra {
            out.push(check_extra(directive)?);
        }
        Ok(out)
    }
}

/// Checks one `extra` entry and returns it with sbatch's full option name.
fn check_extra(directive: &str) -> Result<String> {
    let fix = "each entry of `slurm.extra` must be `--name=value` or `--flag`, the name in lower-case letters, digits and `-`, the value in letters, digits and `._:,@%/+=-|&!*[]`";
    let Some(body) = directive.strip_prefix("--") else {
        return invalid("extra", format!("{directive:?} does not start with `--`; {fix}"));
    };
    let (name, value) = match body.split_once('=') {
        Some((name, value)) => (name, Some(value)),
        None => (body, None),
    };
    let name_ok = name.starts_with(|c: char| c.is_ascii_lowercase()) && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let value_ok = value.is_none_or(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || "._:,@%/+=-|&!*[]".contains(c)));
    if !name_ok || !value_ok {
        return invalid("extra", format!("{directive:?} is not allowed; {fix}"));
    }
    let allowed = || format!("the directives `slurm.extra` may set are: {}", EXTRA_ALLOWED.join(", "));
    let option = match resolve_option(name) {
        Ok(option) => option,
        Err(candidates) if candidates.is_empty() => return invalid("extra", format!("`--{name}` is not an sbatch option; {}", allowed())),
        Err(candidates) => {
            let list: Vec<String> = candidates.iter().map(|c| format!("--{c}")).collect();
            return invalid("extra", format!("`--{name}` is ambiguous to sbatch ({}); write the option in full", list.join(", ")));
        }
    };
    let shown = if option == name { format!("`--{name}`") } else { format!("`--{name}` (sbatch reads it as `--{option}`)") };
    if let Some((_, field)) = OWN_FIELDS.iter().find(|(o, _)| *o == option) {
        return invalid("extra", format!("{shown} has its own field: set `slurm.{field}` instead"));
    }
    if MANAGED.contains(&option) {
        return invalid("extra", format!("{shown} is set by gps itself (array, logs, working directory, requeue, dependencies); remove it"));
    }
    if !EXTRA_ALLOWED.contains(&option) {
        return invalid("extra", format!("{shown} cannot be set for a gps array job; {}", allowed()));
    }
    Ok(match value {
        Some(v) => format!("--{option}={v}"),
        None => format!("--{option}"),
    })
}

fn is_slurm_time(t: &str) -> bool {
    let all_digits = |s: &str| !s.is_empty() && s.len() <= 4 && s.chars().all(|c| c.is_ascii_digit());
    let (days, clock) = match t.split_once('-') {
        Some((d, rest)) => (Some(d), rest),
        None => (None, t),
    };
    if let Some(d) = days
        && !all_digits(d)
    {
        return false;
    }
    let parts: Vec<&str> = clock.split(':').collect();
    let max_parts = 3;
    parts.len() <= max_parts && parts.iter().all(|p| all_digits(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(f: impl FnOnce(&mut SlurmOptions)) -> Result<()> {
        let mut o = SlurmOptions::default();
        f(&mut o);
        o.validate()
    }

    #[test]
    fn accepts_ordinary_clusters_options() {
        with(|o| {
            o.partition = Some("gpu-a100".into());
            o.account = Some("proj_42".into());
            o.time = Some("1-02:00:00".into());
            o.gres = Some("gpu:a100:1".into());
            o.cpus = Some(8);
            o.mem = Some("32G".into());
            o.throttle = Some(4);
            o.extra = vec!["--constraint=a100".into(), "--exclusive".into(), "--mail-user=a@b.org".into()];
        })
        .unwrap();
        for t in ["30", "30:00", "02:00:00", "2-12", "2-12:30"] {
            with(|o| o.time = Some(t.into())).unwrap();
        }
    }

    #[test]
    fn rejects_hostile_values_naming_the_field() {
        let cases: Vec<(&str, Box<dyn Fn(&mut SlurmOptions)>)> = vec![
            ("slurm.partition", Box::new(|o| o.partition = Some("gpu\n#SBATCH --wrap=rm".into()))),
            ("slurm.partition", Box::new(|o| o.partition = Some("gpu;touch /tmp/x".into()))),
            ("slurm.account", Box::new(|o| o.account = Some("$(id)".into()))),
            ("slurm.time", Box::new(|o| o.time = Some("1:00 && rm -rf /".into()))),
            ("slurm.gres", Box::new(|o| o.gres = Some("gpu:1`id`".into()))),
            ("slurm.mem", Box::new(|o| o.mem = Some("4G; echo".into()))),
            ("slurm.extra", Box::new(|o| o.extra = vec!["--comment=a b".into()])),
            ("slurm.extra", Box::new(|o| o.extra = vec!["--comment=x\necho pwned".into()])),
            ("slurm.extra", Box::new(|o| o.extra = vec!["-w node1".into()])),
            ("slurm.extra", Box::new(|o| o.extra = vec!["--comment='$(reboot)'".into()])),
            ("slurm.extra", Box::new(|o| o.extra = vec!["--array=0-3".into()])),
            ("slurm.throttle", Box::new(|o| o.throttle = Some(0))),
        ];
        for (field, f) in cases {
            let e = with(f).unwrap_err().to_string();
            assert!(e.contains(field), "expected {field} in: {e}");
        }
    }
}
