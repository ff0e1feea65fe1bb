//! `gps bench train`: samples per second of one run's training step, and with
//! `--compare-pytorch` the same step in plain PyTorch (scripts/bench/pytorch_step.py) in the same
//! call, alternating, so the two figures share the machine's state. Each round of either side is
//! a fresh process: a second trainer built in a process that already ran one measured up to 15%
//! slower than the first (the allocator's state), which PyTorch's fresh processes never pay.

use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use std::process::Command;

#[derive(Debug, clap::Args)]
pub struct TrainBenchArgs {
    /// The run spec (YAML), as `gps train` takes it.
    spec: PathBuf,
    /// Untimed steps before the timed ones.
    #[arg(long, default_value_t = 10)]
    warmup: usize,
    #[arg(long, default_value_t = 60)]
    steps: usize,
    /// Also time the same step in plain PyTorch (SimCLR; flip or no augmentation), alternating
    /// with `gps`, and print the ratio.
    #[arg(long)]
    compare_pytorch: bool,
    /// The Python with torch (and torchvision for ResNets) that runs the PyTorch loop.
    #[arg(long, default_value = "python3")]
    python: PathBuf,
    /// The PyTorch loop (relative to the current directory).
    #[arg(long, default_value = "scripts/bench/pytorch_step.py")]
    pytorch_script: PathBuf,
    /// With --compare-pytorch: gps, PyTorch, gps, PyTorch, ... this many times; the best of each.
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Print the measurement as one JSON line (what a --compare-pytorch round reads).
    #[arg(long, hide = true)]
    json: bool,
}

/// The line a `--json` measurement starts with.
const JSON_PREFIX: &str = "bench-report ";

impl TrainBenchArgs {
    pub fn run(self) -> Result<()> {
        let run = crate::config::RunSpec::from_file(&self.spec)?;
        let label = format!(
            "{} {} {} batch={} aug={} prior={}",
            self.spec.display(),
            run.method.as_str(),
            serde_json::to_string(&run.backbone)?.trim_matches('"'),
            run.batch_size,
            run.augmentation_label(),
            run.prior
        );
        if !self.compare_pytorch {
            let r = super::bench(&run, self.warmup, self.steps)?;
            if self.json {
                println!("{JSON_PREFIX}{}", serde_json::to_string(&r)?);
                return Ok(());
            }
            println!("train step {label} on {}: {:.0} samples/s ({:.2} s per 50k-image epoch)", r.device, r.samples_per_s, 50_000.0 / r.samples_per_s);
            return Ok(());
        }
        let reference = pytorch_args(&run)?;
        let (mut ours, mut theirs) = (0f64, 0f64);
        let mut device = String::new();
        for round in 0..self.rounds.max(1) {
            let r = self.bench_in_child()?;
            device = r.device.clone();
            let cmd = self.pytorch_command(&reference, &r)?;
            let t = run_pytorch(cmd)?;
            eprintln!("round {}: gps {:.1} samples/s, PyTorch {:.1} samples/s", round + 1, r.samples_per_s, t);
            ours = ours.max(r.samples_per_s);
            theirs = theirs.max(t);
        }
        println!("train step {label} on {device}");
        println!("gps:     {ours:9.1} samples/s");
        println!("PyTorch: {theirs:9.1} samples/s ({})", self.pytorch_script.display());
        println!("ratio gps/PyTorch: {:.3} (best of {} rounds each, alternating)", ours / theirs, self.rounds.max(1));
        Ok(())
    }

    /// One `gps` round in a fresh process of this binary (see the module's note).
    fn bench_in_child(&self) -> Result<super::BenchReport> {
        let exe = std::env::current_exe().context("--compare-pytorch: cannot locate the gps binary")?;
        let out = Command::new(&exe)
            .args(["bench", "train", "--json", "--warmup", &self.warmup.to_string(), "--steps", &self.steps.to_string()])
            .arg(&self.spec)
            .stderr(std::process::Stdio::inherit())
            .output()
            .with_context(|| format!("--compare-pytorch: cannot start {}", exe.display()))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            bail!("--compare-pytorch: the gps round failed ({}):\n{stdout}", out.status);
        }
        let line = stdout
            .lines()
            .find_map(|l| l.strip_prefix(JSON_PREFIX))
            .with_context(|| format!("--compare-pytorch: no measurement in the gps round's output:\n{stdout}"))?;
        serde_json::from_str(line).context("--compare-pytorch: the gps round's measurement")
    }

    fn pytorch_command(&self, reference: &[String], r: &super::BenchReport) -> Result<Command> {
        if !self.pytorch_script.exists() {
            bail!("--compare-pytorch: {} not found (run from the repository root, or pass --pytorch-script)", self.pytorch_script.display());
        }
        let mut c = Command::new(&self.python);
        c.arg(&self.pytorch_script).args(reference);
        let (ch, size, classes) = r.data_shape;
        c.args(["--channels", &ch.to_string(), "--size", &size.to_string(), "--classes", &classes.to_string()]);
        c.args(["--warmup", &self.warmup.min(10).to_string(), "--steps", &self.steps.to_string()]);
        c.args(["--device", if r.cuda { "cuda" } else { "cpu" }]);
        if r.autocast {
            c.arg("--bf16");
        }
        if r.channels_last {
            c.arg("--channels-last");
        }
        Ok(c)
    }
}

/// The PyTorch loop's arguments for `run`; only what it implements (SimCLR, flip or nothing).
fn pytorch_args(run: &crate::config::RunSpec) -> Result<Vec<String>> {
    use crate::augment::Pipeline;
    use crate::config::{Method, OptimizerKind};
    if run.method != Method::Simclr {
        bail!("--compare-pytorch: the PyTorch loop implements SimCLR; this spec's method is {}", run.method.as_str());
    }
    let [first, second] = crate::augment::view_pipelines(&run.augmentation, run.method, false);
    let flip = match (first, second) {
        (Pipeline::RECONSTRUCTION, Pipeline::RECONSTRUCTION) => 0.5,
        (Pipeline::NONE, Pipeline::NONE) => 0.0,
        _ => bail!("--compare-pytorch: the PyTorch loop does flip-only (`weak`) or no augmentation; this spec has `{}`", run.augmentation_label()),
    };
    let optimizer = match run.optimizer.kind {
        OptimizerKind::Lars => "lars",
        OptimizerKind::Sgd => "sgd",
        OptimizerKind::Adamw => bail!("--compare-pytorch: the PyTorch loop has LARS and SGD, not AdamW"),
    };
    let backbone = serde_json::to_string(&run.backbone)?.trim_matches('"').to_string();
    Ok(vec![
        "--backbone".into(),
        backbone,
        "--batch".into(),
        run.batch_size.to_string(),
        "--optimizer".into(),
        optimizer.into(),
        "--flip".into(),
        flip.to_string(),
    ])
}

/// Runs the PyTorch loop and reads its `samples/s <number>` line.
fn run_pytorch(mut cmd: Command) -> Result<f64> {
    let out = cmd.output().with_context(|| format!("--compare-pytorch: cannot start {:?} (pass --python with a Python that has torch)", cmd.get_program()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("--compare-pytorch: the PyTorch loop failed ({}):\n{}{}", out.status, stdout, String::from_utf8_lossy(&out.stderr));
    }
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("samples/s ").and_then(|rest| rest.split_whitespace().next()).and_then(|v| v.parse().ok()))
        .with_context(|| format!("--compare-pytorch: no `samples/s` line in the PyTorch loop's output:\n{stdout}"))
}
