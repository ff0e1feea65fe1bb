//! Candidates by distance (the authors' `nn_threshold`, `threshold_mode`): every neighbour of an
//! image within a distance τ among its nearest ones, with no cap at k; an image that no neighbour
//! is near enough to keeps itself as its only candidate. τ is fixed, or set from the data as the
//! mean (+ or − one standard deviation) of every image's nearest non-self distances, pooled
//! (`threshold_mode: adaptive`, `threshold_k: 20`, `threshold_mode_type`; `main_nn.py:379-391`).

use super::NeighbourTable;
pub use crate::config::TauStat;
use anyhow::{Result, bail};

/// How τ is set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Tau {
    /// A fixed distance.
    Fixed(f64),
    /// `stat` of the `k` nearest non-self distances of every image, pooled.
    Adaptive { stat: TauStat, k: usize },
}

/// The candidates within τ of every image, and τ itself. `nearest` holds each image's nearest
/// non-self neighbours (nearest first) and `distances` their distances, row-major as the table.
/// `with_self`: the image is its own first candidate (the authors' table without
/// `filter_sim_matrix`, where it sits at distance 0); otherwise it is one only when no neighbour
/// is within τ.
pub fn within(nearest: &NeighbourTable, distances: &[f32], tau: Tau, with_self: bool) -> Result<(NeighbourTable, f64)> {
    let Some(cols) = nearest.fixed_k() else { bail!("candidates within τ are drawn from a k-nearest table") };
    if distances.len() != nearest.len() * cols {
        bail!("{} distances for a table of {} x {cols}", distances.len(), nearest.len());
    }
    let tau = match tau {
        Tau::Fixed(t) => t,
        Tau::Adaptive { stat, k } => {
            if k == 0 || k > cols {
                bail!("an adaptive τ from each image's {k} nearest distances needs 1 to {cols} of them");
            }
            // numpy's mean and (population) std of D[:, 1:k+1], in double precision.
            let pooled = || distances.chunks(cols).flat_map(|row| row[..k].iter().map(|&d| d as f64));
            let count = (nearest.len() * k) as f64;
            let mean = pooled().sum::<f64>() / count;
            let std = (pooled().map(|d| (d - mean).powi(2)).sum::<f64>() / count).sqrt();
            match stat {
                TauStat::MeanPlusStd => mean + std,
                TauStat::Mean => mean,
                TauStat::MeanMinusStd => mean - std,
            }
        }
    };
    let mut offsets = Vec::with_capacity(nearest.len() + 1);
    offsets.push(0u64);
    let mut idx = Vec::new();
    for (i, d) in distances.chunks(cols).enumerate() {
        let before = idx.len();
        if with_self {
            idx.push(i as u32);
        }
        // Inclusive, as `dist_row <= self.nn_threshold` (gps_dataset.py:253).
        idx.extend(nearest.row(i).iter().zip(d).filter(|&(_, &d)| d as f64 <= tau).map(|(&j, _)| j));
        if idx.len() == before {
            idx.push(i as u32);
        }
        offsets.push(idx.len() as u64);
    }
    Ok((NeighbourTable::with_offsets(offsets, idx)?, tau))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_neighbours_within_tau_and_the_image_when_none_is() {
        // 3 images, 2 nearest each: distances (0.5, 2.0), (1.0, 1.5), (3.0, 4.0).
        let t = NeighbourTable::new(3, 2, vec![1, 2, 0, 2, 0, 1]).unwrap();
        let d = [0.5f32, 2.0, 1.0, 1.5, 3.0, 4.0];
        let (c, tau) = within(&t, &d, Tau::Fixed(1.5), false).unwrap();
        assert_eq!(tau, 1.5);
        assert_eq!((c.row(0), c.row(1), c.row(2)), (&[1][..], &[0, 2][..], &[2][..]), "≤ τ kept, image 2 keeps itself");
        assert!((c.self_only_share() - 1.0 / 3.0).abs() < 1e-12);
        let (c, _) = within(&t, &d, Tau::Fixed(1.5), true).unwrap();
        assert_eq!((c.row(0), c.row(1), c.row(2)), (&[0, 1][..], &[1, 0, 2][..], &[2][..]), "the image first, once");
    }

    #[test]
    fn adaptive_tau_is_numpys_mean_and_population_std_of_the_nearest() {
        let t = NeighbourTable::new(3, 2, vec![1, 2, 0, 2, 0, 1]).unwrap();
        let d = [0.5f32, 2.0, 1.0, 1.5, 3.0, 4.0];
        // First column only (k = 1): 0.5, 1.0, 3.0 -> mean 1.5, std sqrt(((1)^2 + (0.5)^2 + 1.5^2) / 3).
        let std = ((1.0f64 + 0.25 + 2.25) / 3.0).sqrt();
        for (stat, want) in [(TauStat::Mean, 1.5), (TauStat::MeanPlusStd, 1.5 + std), (TauStat::MeanMinusStd, 1.5 - std)] {
            let (_, tau) = within(&t, &d, Tau::Adaptive { stat, k: 1 }, false).unwrap();
            assert!((tau - want).abs() < 1e-12, "{stat:?}: {tau} vs {want}");
        }
        assert!(within(&t, &d, Tau::Adaptive { stat: TauStat::Mean, k: 3 }, false).is_err());
    }
}
