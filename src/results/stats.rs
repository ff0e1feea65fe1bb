//! The statistics behind "is it better, and by how much": the difference of two cells' means
//! with its confidence interval, paired by seed where both cells have the same seeds, Welch's
//! otherwise. Small n is the normal case here (three seeds), so intervals use Student's t
//! quantiles (from statrs, any real degrees of freedom), never 1.96.

use statrs::distribution::{ContinuousCDF, StudentsT};

/// Two-sided confidence level of every interval in the reports.
pub const CONFIDENCE: f64 = 0.95;

/// P(T <= t) for Student's t with `df` > 0 degrees of freedom (statrs).
pub fn t_cdf(t: f64, df: f64) -> f64 {
    students_t(df).cdf(t)
}

/// The t with P(T <= t) = p (statrs' inverse CDF).
pub fn t_quantile(p: f64, df: f64) -> f64 {
    assert!(p > 0.0 && p < 1.0 && df > 0.0, "t_quantile({p}, {df})");
    students_t(df).inverse_cdf(p)
}

fn students_t(df: f64) -> StudentsT {
    StudentsT::new(0.0, 1.0, df).unwrap_or_else(|e| panic!("Student's t with {df} degrees of freedom: {e}"))
}

/// Mean and sample standard deviation (ddof 1; None below two values).
pub fn mean_std(values: &[f64]) -> (f64, Option<f64>) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let std = (values.len() > 1).then(|| (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt());
    (mean, std)
}

/// How two cells were compared.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Test {
    /// Per-seed differences (both cells have the same seeds, once each): n pairs, n - 1 df.
    Paired { pairs: usize },
    /// Welch's unequal-variance t: Welch-Satterthwaite degrees of freedom.
    Welch { n: usize, n_ref: usize },
}

/// `mean(x) - mean(reference)` with its 95% confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Difference {
    pub delta: f64,
    /// None where the data cannot give one: one run on a side, or no spread at all
    /// (`no_spread`).
    pub ci: Option<(f64, f64)>,
    pub df: Option<f64>,
    pub test: Test,
}

impl Difference {
    /// Whether the interval excludes 0 (a difference the seeds do not explain).
    pub fn excludes_zero(&self) -> bool {
        self.ci.is_some_and(|(lo, hi)| lo > 0.0 || hi < 0.0)
    }

    /// The number of runs behind it, as a reader expects to see it: `n=3` or `n=3 vs 2`.
    pub fn n_label(&self) -> String {
        match self.test {
            Test::Paired { pairs } => format!("n={pairs}"),
            Test::Welch { n, n_ref } => format!("n={n} vs {n_ref}"),
        }
    }

    /// No interval although each side has two runs or more: every seed gave the same difference.
    pub fn no_spread(&self) -> bool {
        self.ci.is_none()
            && match self.test {
                Test::Paired { pairs } => pairs > 1,
                Test::Welch { n, n_ref } => n > 1 && n_ref > 1,
            }
    }

    pub fn test_name(&self) -> &'static str {
        match self.test {
            Test::Paired { .. } => "paired",
            Test::Welch { .. } => "welch",
        }
    }
}

/// None without spread (every seed gave the same difference, as accuracies on a few thousand test
/// images often do with two seeds): a zero-width "interval" would read as certainty it does not have.
fn interval(delta: f64, se: f64, df: f64) -> Option<(f64, f64)> {
    if se == 0.0 {
        return None;
    }
    let half = t_quantile(0.5 + CONFIDENCE / 2.0, df) * se;
    Some((delta - half, delta + half))
}

/// Compares `x` against `reference`, each a list of (seed, value): paired by seed when both
/// have exactly the same seeds, each once; Welch otherwise.
pub fn difference(x: &[(i64, f64)], reference: &[(i64, f64)]) -> Difference {
    let seeds = |s: &[(i64, f64)]| {
        let mut v: Vec<i64> = s.iter().map(|p| p.0).collect();
        v.sort_unstable();
        v
    };
    let (sx, sr) = (seeds(x), seeds(reference));
    let unique = sx.windows(2).all(|w| w[0] != w[1]);
    if sx == sr && unique {
        let mut diffs: Vec<f64> = Vec::with_capacity(x.len());
        for (seed, value) in x {
            let r = reference.iter().find(|p| p.0 == *seed).expect("same seeds").1;
            diffs.push(value - r);
        }
        let (delta, std) = mean_std(&diffs);
        let n = diffs.len();
        let df = (n > 1).then(|| (n - 1) as f64);
        let ci = std.zip(df).and_then(|(s, df)| interval(delta, s / (n as f64).sqrt(), df));
        return Difference { delta, ci, df, test: Test::Paired { pairs: n } };
    }
    let values = |s: &[(i64, f64)]| s.iter().map(|p| p.1).collect::<Vec<f64>>();
    let (vx, vr) = (values(x), values(reference));
    let ((mx, sx), (mr, sr)) = (mean_std(&vx), mean_std(&vr));
    let (nx, nr) = (vx.len() as f64, vr.len() as f64);
    let test = Test::Welch { n: vx.len(), n_ref: vr.len() };
    let delta = mx - mr;
    let (Some(sx), Some(sr)) = (sx, sr) else {
        return Difference { delta, ci: None, df: None, test };
    };
    let (ax, ar) = (sx * sx / nx, sr * sr / nr);
    let se = (ax + ar).sqrt();
    let df = if se == 0.0 { None } else { Some((ax + ar).powi(2) / (ax * ax / (nx - 1.0) + ar * ar / (nr - 1.0))) };
    let ci = interval(delta, se, df.unwrap_or(1.0));
    Difference { delta, ci, df, test }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// scipy.stats.t.ppf(p, df), computed once with scipy 1.17.1.
    const QUANTILES: [(f64, f64, f64); 14] = [
        (0.975, 1.0, 12.706204736174694),
        (0.975, 2.0, 4.302652729749462),
        (0.975, 3.0, 3.1824463052837078),
        (0.975, 4.5, 2.6589123472044034),
        (0.975, 9.0, 2.262157162798205),
        (0.975, 29.0, 2.045229642132703),
        (0.975, 1000.0, 1.9623390808264083),
        (0.995, 2.0, 9.924843200918287),
        (0.9, 5.0, 1.4758840488244815),
        (0.6, 7.3, 0.2627568052507191),
        (0.025, 3.0, -3.1824463052837086),
        (0.9995, 1.0, 636.6192487687897),
        (0.975, 0.5, 164.55767348048818),
        (0.999999, 3.7, 51.6400502740409),
    ];

    #[test]
    fn t_quantiles_match_scipy() {
        for (p, df, expected) in QUANTILES {
            let got = t_quantile(p, df);
            assert!((got - expected).abs() <= 1e-9 * expected.abs().max(1.0), "t.ppf({p}, {df}): {got} vs scipy {expected}");
            assert!((t_cdf(got, df) - p).abs() < 1e-12, "cdf(ppf({p}, {df}))");
        }
    }

    #[test]
    fn t_cdf_matches_scipy() {
        // scipy.stats.t.cdf(t, df)
        for (t, df, expected) in [(1.0, 1.0, 0.75), (-2.0, 3.0, 0.06966298427942152), (0.3, 10.0, 0.6148396962171008), (4.0, 2.5, 0.9804935120793409)] {
            assert!((t_cdf(t, df) - expected).abs() < 1e-12, "t.cdf({t}, {df}) = {} vs {expected}", t_cdf(t, df));
        }
    }

    /// scipy.stats.ttest_rel(x, r).confidence_interval(0.95) and
    /// scipy.stats.ttest_ind(x, r, equal_var=False).confidence_interval(0.95), df from the result.
    #[test]
    fn paired_and_welch_intervals_match_scipy() {
        let x = [(0, 0.80), (1, 0.85), (2, 0.90)];
        let r = [(1, 0.40), (0, 0.30), (2, 0.50)];
        let d = difference(&x, &r);
        assert_eq!(d.test, Test::Paired { pairs: 3 });
        let (lo, hi) = d.ci.unwrap();
        assert!((d.delta - 0.45).abs() < 1e-12);
        assert!((lo - 0.32579311441248354).abs() < 1e-9 && (hi - 0.5742068855875164).abs() < 1e-9, "{lo} {hi}");
        assert!(d.excludes_zero());

        // Seeds differ: Welch.
        let x = [(0, 0.52), (1, 0.55), (2, 0.49), (3, 0.58)];
        let r = [(0, 0.47), (1, 0.52), (5, 0.44)];
        let d = difference(&x, &r);
        assert_eq!(d.test, Test::Welch { n: 4, n_ref: 3 });
        let (lo, hi) = d.ci.unwrap();
        assert!((d.df.unwrap() - 4.3333860696910955).abs() < 1e-9, "{:?}", d.df);
        assert!((lo - -0.023361098136296443).abs() < 1e-9 && (hi - 0.14002776480296325).abs() < 1e-9, "{lo} {hi}");
        assert!(!d.excludes_zero(), "the interval holds 0: not a claim");
    }

    #[test]
    fn no_interval_from_a_single_run() {
        let d = difference(&[(0, 0.9)], &[(0, 0.5)]);
        assert_eq!((d.ci, d.test), (None, Test::Paired { pairs: 1 }));
        assert!(!d.excludes_zero());
        let d = difference(&[(0, 0.9), (1, 0.8)], &[(3, 0.5)]);
        assert_eq!(d.ci, None);
        assert_eq!(d.n_label(), "n=2 vs 1");
        assert!(!d.no_spread());
    }

    /// Two seeds that moved by exactly the same amount (accuracies come in steps of one test
    /// image): no interval, and no claim, rather than a zero-width interval.
    #[test]
    fn no_interval_without_spread() {
        let d = difference(&[(0, 0.736), (1, 0.736)], &[(0, 0.767), (1, 0.767)]);
        assert!((d.delta + 0.031).abs() < 1e-12);
        assert_eq!(d.ci, None);
        assert!(d.no_spread() && !d.excludes_zero());
        let d = difference(&[(0, 0.7), (1, 0.7)], &[(2, 0.6), (3, 0.6)]);
        assert_eq!((d.ci, d.test), (None, Test::Welch { n: 2, n_ref: 2 }));
        assert!(d.no_spread() && !d.excludes_zero());
    }
}
