//! The numerics version: which arithmetic a run's numbers come from.
//!
//! A result depends on its spec *and* on the code that computed it. The run id covers the spec;
//! this number covers the code. It is bumped whenever a change alters what some run computes
//! (initialisation, an op's semantics, a prior's input, a loss...), never for speed, logging or
//! report changes that leave every number as it was. Each row records it (`numerics`), a
//! checkpoint refuses to resume under another version, and `gps report` treats it as part of a
//! row's configuration: a cell never averages runs of different numerics versions.

/// The current numerics version. Bump it (and add a line to `HISTORY`) with any change that alters
/// what a run computes.
pub const NUMERICS_VERSION: u32 = 2;

/// What each version changed, newest last (shown by `gps info` and in the README).
pub const HISTORY: &[(u32, &str)] = &[
    (
        1,
        "PyTorch/torchvision initialisation, per-view batch norm, the authors' augmentation pipelines and ops, fp32 losses, \
         pl_bolts warmup-cosine, bicubic prior input, fused CPU LARS (the state after the parity work; rows before it carry no version)",
    ),
    (
        2,
        "the authors' recipes: data without named constants normalised with ImageNet's statistics (was its own), the prior \
         sees the crop size and the dataset's statistics by default (MobileNetV2 was 64 px, ImageNet statistics), PIL's exact \
         8-bit bicubic for the prior's input, the authors' MLP and conv autoencoders",
    ),
];

/// How a row without a recorded version (written before gps recorded one) is labelled.
pub const UNVERSIONED: &str = "unversioned";

/// A row's version as text: the number, or `unversioned` for rows written before it was recorded.
pub fn label(version: Option<i64>) -> String {
    version.map(|v| v.to_string()).unwrap_or_else(|| UNVERSIONED.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn history_ends_at_the_current_version() {
        let versions: Vec<u32> = super::HISTORY.iter().map(|(v, _)| *v).collect();
        assert_eq!(versions.last(), Some(&super::NUMERICS_VERSION), "document the new version in HISTORY");
        assert!(versions.windows(2).all(|w| w[1] == w[0] + 1), "versions count up by one");
    }
}
