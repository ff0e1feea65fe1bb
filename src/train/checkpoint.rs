//! Checkpoints for resume: one safetensors file per checkpoint holding the model, optimizer and
//! method state plus the loop's bookkeeping (as a JSON byte tensor), written atomically. The two
//! newest are kept, so a checkpoint broken by a crash mid-write falls back to the previous one.

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

const META: &str = "__meta__";
const KEEP: usize = 2;

/// Where the loop stood when the checkpoint was written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoopState {
    pub run_id: String,
    /// Epochs fully done.
    pub epoch: usize,
    /// Steps done inside the current epoch (resume continues the same permutation there).
    pub step_in_epoch: usize,
    pub global_step: u64,
    #[serde(deserialize_with = "crate::serde_nan::list")]
    pub epoch_losses: Vec<f64>,
    #[serde(deserialize_with = "crate::serde_nan::list")]
    pub epoch_probe_top1: Vec<f64>,
    pub best_probe_top1: f64,
    pub best_epoch: usize,
    pub positives_same_label: u64,
    pub positives_total: u64,
    pub train_s: f64,
    pub samples_seen: u64,
    /// Loss sum and step count of the current, unfinished epoch.
    pub epoch_loss_sum: f64,
    pub epoch_loss_steps: u64,
    /// Representation health per epoch (absent from checkpoints written before it was recorded).
    #[serde(default)]
    pub health: crate::eval::health::HealthHistory,
    /// Every rebuild of the neighbour table from the model being trained so far (`prior_refresh`);
    /// the rebuilt table itself is among the checkpoint's tensors (`table.*`).
    #[serde(default)]
    pub refresh: RefreshHistory,
    /// The numerics version of the code that wrote the checkpoint (`crate::numerics`; None in
    /// checkpoints written before it was recorded). A run resumes only under the same version.
    #[serde(default)]
    pub numerics: Option<u32>,
}

/// The neighbour table's rebuilds from the model being trained, one entry each.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RefreshHistory {
    /// The epochs the rebuild came after (the table served from the next epoch on).
    pub epochs: Vec<usize>,
    /// The rebuilt table's label purity: the share of candidates with their image's label.
    #[serde(deserialize_with = "crate::serde_nan::list")]
    pub purity: Vec<f64>,
    /// Seconds each rebuild took (embedding the training set and building the table).
    #[serde(deserialize_with = "crate::serde_nan::list")]
    pub seconds: Vec<f64>,
    /// τ of each rebuild, with candidates within a distance (NaN for a k-nearest table).
    #[serde(deserialize_with = "crate::serde_nan::list")]
    pub tau: Vec<f64>,
    /// The mean number of candidates per image after each rebuild.
    #[serde(deserialize_with = "crate::serde_nan::list")]
    pub candidates_mean: Vec<f64>,
}

pub fn save(dir: &Path, state: &LoopState, tensors: Vec<(String, Tensor)>) -> Result<PathBuf> {
    let path = dir.join(format!("ckpt-{:010}.safetensors", state.global_step));
    let meta = serde_json::to_vec(&LoopState { numerics: Some(crate::numerics::NUMERICS_VERSION), ..state.clone() })?;
    // Contiguous: safetensors refuses strided tensors, and channels-last weights are strided.
    let mut all: Vec<(String, Tensor)> = tensors.into_iter().map(|(n, t)| (n, t.to_device(tch::Device::Cpu).contiguous())).collect();
    all.push((META.to_string(), Tensor::from_slice(&meta)));
    crate::atomic_file::write_via_temp(&path, |tmp| Tensor::write_safetensors(&all, tmp).map_err(Into::into))
        .with_context(|| format!("writing checkpoint {}", path.display()))?;
    for old in list(dir)?.into_iter().rev().skip(KEEP) {
        let _ = std::fs::remove_file(old);
    }
    Ok(path)
}

/// Removes the temp files of checkpoint writes that never finished (`.tmp-*`, see `atomic_file`):
/// a run's folder has one writer at a time, so when a new attempt starts any is an earlier
/// attempt's, killed mid-write. Returns how many went.
pub fn remove_half_written(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(".tmp-")))
        .filter(|p| std::fs::remove_file(p).is_ok())
        .count()
}

/// After the run's result row is written: with `keep`, only the newest checkpoint stays (the
/// trained model, for `gps export` and `gps eval linear`; the older one only served a resume);
/// without, the run's checkpoint folder goes (progress record included).
pub fn after_finish(dir: &Path, keep: bool) -> Result<()> {
    if !keep {
        return match std::fs::remove_dir_all(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e).with_context(|| format!("cannot remove {}", dir.display())),
            _ => Ok(()),
        };
    }
    for old in list(dir)?.into_iter().rev().skip(1) {
        std::fs::remove_file(&old).with_context(|| format!("cannot remove {}", old.display()))?;
    }
    Ok(())
}

/// Checkpoint files, oldest first.
fn list(dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading checkpoint dir {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("ckpt-") && n.ends_with(".safetensors")))
        .collect();
    files.sort();
    Ok(files)
}

/// The newest readable checkpoint of this run. A corrupt one is reported and skipped; if there
/// are checkpoints but none is readable, that is an error (never a silent restart from zero).
pub fn load_latest(dir: &Path, run_id: &str) -> Result<Option<(LoopState, Vec<(String, Tensor)>, PathBuf)>> {
    let files = list(dir)?;
    if files.is_empty() {
        return Ok(None);
    }
    for path in files.iter().rev() {
        match read(path) {
            Ok((state, tensors)) => {
                if state.run_id != run_id {
                    bail!(
                        "checkpoint {} belongs to run {} but this run is {run_id}; point the run elsewhere or delete {}",
                        path.display(),
                        state.run_id,
                        dir.display()
                    );
                }
                return Ok(Some((state, tensors, path.clone())));
            }
            Err(e) => eprintln!("warning: skipping corrupt checkpoint {}: {e:#}", path.display()),
        }
    }
    bail!("all {} checkpoints in {} are corrupt; delete the directory to restart this run from zero", files.len(), dir.display())
}

fn read(path: &Path) -> Result<(LoopState, Vec<(String, Tensor)>)> {
    let mut tensors = Tensor::read_safetensors(path).with_context(|| format!("reading {}", path.display()))?;
    let pos = tensors.iter().position(|(n, _)| n == META).context("no bookkeeping record inside")?;
    let (_, meta) = tensors.swap_remove(pos);
    let bytes = Vec::<u8>::try_from(meta.to_kind(Kind::Uint8))?;
    let state: LoopState = serde_json::from_slice(&bytes).context("unreadable bookkeeping record")?;
    Ok((state, tensors))
}

/// Finds a named tensor among checkpointed ones.
pub fn take<'a>(tensors: &'a [(String, Tensor)], name: &str) -> Result<&'a Tensor> {
    tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t).with_context(|| format!("checkpoint lacks `{name}`"))
}

#[cfg(test)]
mod tests {

    #[test]
    fn half_written_checkpoints_of_a_killed_attempt_are_removed_and_finished_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        for name in [".tmp-123-4-ckpt-0000000008.safetensors", "ckpt-0000000004.safetensors", "progress.json"] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        assert_eq!(remove_half_written(dir.path()), 1);
        let mut left: Vec<String> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        left.sort();
        assert_eq!(left, ["ckpt-0000000004.safetensors", "progress.json"]);
        assert_eq!(remove_half_written(&dir.path().join("absent")), 0);
    }

    use super::*;

    #[test]
    fn channels_last_tensors_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let w = Tensor::arange(2 * 3 * 2 * 2, (Kind::Float, tch::Device::Cpu)).view([2, 3, 2, 2]);
        let cl = crate::model::to_channels_last(&w);
        assert!(!cl.is_contiguous());
        let s = LoopState { run_id: "r".into(), ..Default::default() };
        save(dir.path(), &s, vec![("w".into(), cl)]).unwrap();
        let (_, t, _) = load_latest(dir.path(), "r").unwrap().unwrap();
        assert!(take(&t, "w").unwrap().equal(&w));
    }

    #[test]
    fn newest_good_checkpoint_wins_and_corrupt_ones_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = LoopState { run_id: "abc".into(), ..Default::default() };
        for step in [1u64, 2, 3] {
            s.global_step = step;
            save(dir.path(), &s, vec![("w".into(), Tensor::from(step as f32))]).unwrap();
        }
        assert_eq!(list(dir.path()).unwrap().len(), KEEP);
        let (st, t, _) = load_latest(dir.path(), "abc").unwrap().unwrap();
        assert_eq!(st.global_step, 3);
        assert_eq!(take(&t, "w").unwrap().double_value(&[]), 3.0);
        // Corrupt the newest: the previous one is used.
        let newest = list(dir.path()).unwrap().pop().unwrap();
        std::fs::write(&newest, b"\x08\x00\x00\x00\x00\x00\x00\x00{broken}").unwrap();
        assert_eq!(load_latest(dir.path(), "abc").unwrap().unwrap().0.global_step, 2);
        // All corrupt: an error, not a fresh start.
        for f in list(dir.path()).unwrap() {
            std::fs::write(f, b"junk").unwrap();
        }
        let err = load_latest(dir.path(), "abc").unwrap_err().to_string();
        assert!(err.contains("corrupt"), "{err}");
        // Another run's checkpoint is refused.
        let other = tempfile::tempdir().unwrap();
        save(other.path(), &s, vec![]).unwrap();
        assert!(load_latest(other.path(), "xyz").unwrap_err().to_string().contains("belongs to run abc"));
    }

    #[test]
    fn a_finished_run_keeps_its_newest_checkpoint_or_nothing() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("run");
        let mut s = LoopState { run_id: "r".into(), ..Default::default() };
        for step in [4u64, 8] {
            s.global_step = step;
            save(&dir, &s, vec![("w".into(), Tensor::from(step as f32))]).unwrap();
        }
        after_finish(&dir, true).unwrap();
        assert_eq!(list(&dir).unwrap(), vec![dir.join("ckpt-0000000008.safetensors")]);
        after_finish(&dir, false).unwrap();
        assert!(!dir.exists());
        after_finish(&dir, false).unwrap(); // nothing left to remove is fine
    }
}
