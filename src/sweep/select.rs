//! Which runs a submission or a local run takes on: never runs that are done or already queued,
//! so submitting twice is harmless.

use super::expand::PlannedRun;
use super::status::RunState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// Failed and missing runs.
    NotDone,
    OnlyFailed,
    OnlyMissing,
}

pub fn select<'a>(runs: &'a [PlannedRun], states: &[RunState], selection: Selection) -> Vec<&'a PlannedRun> {
    runs.iter()
        .zip(states)
        .filter(|(_, state)| match (selection, state) {
            // a stalled run is still SLURM's (or a live process's): cancel it to run it again
            (_, RunState::Done | RunState::Queued { .. } | RunState::Stalled { .. }) => false,
            (Selection::NotDone, _) => true,
            (Selection::OnlyFailed, s) => matches!(s, RunState::Failed { .. }),
            (Selection::OnlyMissing, s) => matches!(s, RunState::Missing),
        })
        .map(|(run, _)| run)
        .collect()
}

/// `3 done, 1 running, 0 pending, 2 failed, 4 missing` (and `, 1 stalled` when there are).
pub fn summary(states: &[RunState]) -> String {
    let count = |w: &str| states.iter().filter(|s| s.word() == w).count();
    let stalled = match count("stalled") {
        0 => String::new(),
        n => format!(", {n} stalled"),
    };
    format!(
        "{} done, {} running, {} pending, {} failed, {} missing{stalled}",
        count("done"),
        count("running"),
        count("pending"),
        count("failed"),
        count("missing")
    )
}
