//! Prior embeddings and neighbour tables are shared by every run with the same dataset, prior,
//! k and neighbour rule (`neighbours::table_key`): computing them once, before the tasks that need them, instead of once per task, is the
//! difference between minutes and hours on a big grid. `gps sweep submit` runs this as its own
//! job that the array depends on; `gps sweep run` runs it before starting its workers.

use super::expand::PlannedRun;
use crate::config::RunSpec;
use anyhow::Result;
use std::collections::BTreeMap;

/// One representative run per (dataset, prior, k) group among the guided runs.
pub fn groups<'a>(runs: &[&'a PlannedRun]) -> Vec<&'a PlannedRun> {
    let mut by_key: BTreeMap<String, &PlannedRun> = BTreeMap::new();
    for run in runs.iter().filter(|r| r.spec.prior.is_guided()) {
        by_key.entry(crate::neighbours::table_key(&run.spec)).or_insert(run);
    }
    let mut reps: Vec<&PlannedRun> = by_key.into_values().collect();
    reps.sort_by_key(|r| r.index);
    reps
}

/// Prepares every group. A group that fails is reported and skipped, not fatal: its runs redo
/// the preparation themselves and record the error as their failure, so the reason ends up
/// next to each affected run instead of in a cancelled array.
pub fn prepare_all(runs: &[&PlannedRun]) -> Result<usize> {
    let reps = groups(runs);
    let mut failed = 0;
    for (n, run) in reps.iter().enumerate() {
        let started = std::time::Instant::now();
        let what = format!("dataset {}, prior {}, k {}", run.spec.dataset.name, run.spec.prior, run.spec.k);
        match prepare_cache(&run.spec) {
            Ok(()) => eprintln!("[gps] prepared {}/{}: {what} in {:.1} s", n + 1, reps.len(), started.elapsed().as_secs_f64()),
            Err(e) => {
                failed += 1;
                eprintln!("[gps] preparing {what} failed (its runs will report it): {e:#}");
            }
        }
    }
    Ok(failed)
}

/// Fills the shared cache for one run's dataset, prior and k.
fn prepare_cache(spec: &RunSpec) -> Result<()> {
    crate::train::prepare(spec)
}
