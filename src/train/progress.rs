//! Progress: an indicatif bar on a terminal, plain log lines otherwise (SLURM logs stay readable).

use super::Progress;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;

pub struct Reporter {
    bar: Option<ProgressBar>,
    lines: bool,
}

impl Reporter {
    pub fn new(mode: Progress, total_steps: u64, done: u64) -> Reporter {
        let bars = match mode {
            Progress::Auto => std::io::stderr().is_terminal(),
            Progress::Bars => true,
            Progress::Lines | Progress::Quiet => false,
        };
        let bar = bars.then(|| {
            let b = ProgressBar::new(total_steps);
            b.set_style(ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} steps {msg}").expect("valid template").progress_chars("=> "));
            b.set_position(done);
            b
        });
        Reporter { bar, lines: mode != Progress::Quiet && !bars }
    }

    pub fn step(&self) {
        if let Some(b) = &self.bar {
            b.inc(1);
        }
    }

    /// Shown on the bar, or printed as one line.
    pub fn message(&self, msg: String) {
        match &self.bar {
            Some(b) => b.set_message(msg),
            None if self.lines => eprintln!("{msg}"),
            None => {}
        }
    }

    /// A warning for the run log, printed in every mode (above the bar on a terminal).
    pub fn warn(&self, msg: String) {
        match &self.bar {
            Some(b) => b.suspend(|| eprintln!("{msg}")),
            None => eprintln!("{msg}"),
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish();
        }
    }
}
