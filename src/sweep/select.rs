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
            (_, RunState::Done | RunState::Queued { .. }) => false,
            (Selection::NotDone, _) => true,
            (Selection::OnlyFailed, s) => matches!(s, RunState::Failed { .. }),
            (Selection::OnlyMissing, s) => matches!(s, RunState::Missing),
        })
        .map(|(run, _)| run)
        .collect()
}

/// `3 done, 1 running, 0 pending, 2 failed, 4 missing`.
pub fn summary(states: &[RunState]) -> String {
    let count = |w: &str| states.iter().filter(|s| s.word() == w).count();
    format!("{} done, {} running, {} pending, {} failed, {} missing", count("done"), count("running"), count("pending"), count("failed"), count("missing"))
}
