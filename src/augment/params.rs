//! The augmentation pipelines of the authors' code (the fork's `augmentations/*.yaml` and
//! VICReg's inline pipeline; spec §3), which pipeline each view gets, and the continuous
//! strength knob.

use crate::config::{AugPreset, AugmentationSpec, Method};

/// One pipeline, the fields of one entry of an authors' augmentation yaml. The op order is
/// theirs: RandomResizedCrop (bicubic) or Resize, ColorJitter, RandomGrayscale, GaussianBlur,
/// Solarization, HorizontalFlip.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pipeline {
    /// RandomResizedCrop area range (aspect ratio 3/4 to 4/3); None: `Resize` to the native
    /// size, i.e. no crop.
    pub crop_scale: Option<(f64, f64)>,
    /// ColorJitter (brightness, contrast, saturation, hue) and the probability it is applied.
    pub jitter: [f64; 4],
    pub jitter_p: f64,
    pub gray_p: f64,
    pub blur_p: f64,
    pub solarize_p: f64,
    pub flip_p: f64,
}

impl Pipeline {
    /// `symmetric.yaml`: the paper's strong augmentation for SimCLR.
    pub const SYMMETRIC: Pipeline =
        Pipeline { crop_scale: Some((0.08, 1.0)), jitter: [0.8, 0.8, 0.8, 0.2], jitter_p: 0.8, gray_p: 0.2, blur_p: 0.5, solarize_p: 0.0, flip_p: 0.5 };
    /// `symmetric_weak.yaml`.
    pub const SYMMETRIC_WEAK: Pipeline = Pipeline { jitter: [0.4, 0.4, 0.4, 0.1], ..Self::SYMMETRIC };
    /// `asymmetric.yaml`, first pipeline (`asymmetric_1`): no blur, no solarisation.
    pub const ASYMMETRIC_1: Pipeline =
        Pipeline { crop_scale: Some((0.08, 1.0)), jitter: [0.4, 0.4, 0.2, 0.1], jitter_p: 0.8, gray_p: 0.2, blur_p: 0.0, solarize_p: 0.0, flip_p: 0.5 };
    /// `asymmetric.yaml`, second pipeline (`asymmetric_2`): solarisation 0.2.
    pub const ASYMMETRIC_2: Pipeline = Pipeline { solarize_p: 0.2, ..Self::ASYMMETRIC_1 };
    /// VICReg's inline pipeline (`vicreg.yaml`, both views).
    pub const VICREG: Pipeline =
        Pipeline { crop_scale: Some((0.2, 1.0)), jitter: [0.4, 0.4, 0.2, 0.1], jitter_p: 0.8, gray_p: 0.2, blur_p: 0.0, solarize_p: 0.1, flip_p: 0.5 };
    /// `reconstruction.yaml`, the paper's weak augmentation: horizontal flip only.
    pub const RECONSTRUCTION: Pipeline = Pipeline { crop_scale: None, jitter: [0.0; 4], jitter_p: 0.0, gray_p: 0.0, blur_p: 0.0, solarize_p: 0.0, flip_p: 0.5 };
    /// `weak_rrc.yaml`: crop and flip.
    pub const WEAK_RRC: Pipeline = Pipeline { crop_scale: Some((0.08, 1.0)), ..Self::RECONSTRUCTION };
    /// Nothing at all.
    pub const NONE: Pipeline = Pipeline { flip_p: 0.0, ..Self::RECONSTRUCTION };

    /// `symmetric` scaled by s in [0, 1]: crop area from 1 − 0.92·s to 1, jitter strengths ×s
    /// (p 0.8), grayscale 0.2·s, blur 0.5·s, flip 0.5. s = 0 is `weak`, s = 1 `symmetric`.
    pub fn with_strength(s: f64) -> Pipeline {
        if s <= 0.0 {
            return Self::RECONSTRUCTION;
        }
        let full = Self::SYMMETRIC;
        Pipeline {
            crop_scale: Some((0.08 + (1.0 - s) * (1.0 - 0.08), 1.0)),
            jitter: full.jitter.map(|j| j * s),
            jitter_p: full.jitter_p,
            gray_p: full.gray_p * s,
            blur_p: full.blur_p * s,
            solarize_p: 0.0,
            flip_p: 0.5,
        }
    }
}

/// The pipelines of view 1 (the anchor) and view 2 (its positive) for a run.
///
/// `strong` is each method's own strong augmentation in solo-learn: SimCLR `symmetric`; BYOL,
/// Barlow Twins and NNCLR `asymmetric` (a second pipeline with solarisation for view 2);
/// VICReg its inline pipeline. With a prior (GPS) the fork augments both views with the first
/// pipeline (it warns and ignores the second), and so does `gps`.
pub fn view_pipelines(spec: &AugmentationSpec, method: Method, guided: bool) -> [Pipeline; 2] {
    let [first, second] = match (spec.strength, spec.preset) {
        (Some(s), _) => [Pipeline::with_strength(s); 2],
        (None, AugPreset::Strong) => match method {
            Method::Simclr => [Pipeline::SYMMETRIC; 2],
            Method::Byol | Method::BarlowTwins | Method::Nnclr => [Pipeline::ASYMMETRIC_1, Pipeline::ASYMMETRIC_2],
            Method::Vicreg => [Pipeline::VICREG; 2],
        },
        (None, AugPreset::Symmetric) => [Pipeline::SYMMETRIC; 2],
        (None, AugPreset::SymmetricWeak) => [Pipeline::SYMMETRIC_WEAK; 2],
        (None, AugPreset::Asymmetric) => [Pipeline::ASYMMETRIC_1, Pipeline::ASYMMETRIC_2],
        (None, AugPreset::Vicreg) => [Pipeline::VICREG; 2],
        (None, AugPreset::Weak) => [Pipeline::RECONSTRUCTION; 2],
        (None, AugPreset::WeakRrc) => [Pipeline::WEAK_RRC; 2],
        (None, AugPreset::None) => [Pipeline::NONE; 2],
    };
    if guided { [first, first] } else { [first, second] }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(preset: AugPreset) -> AugmentationSpec {
        AugmentationSpec { preset, strength: None, crop_size: None }
    }

    #[test]
    fn strong_is_each_methods_own_pipeline_and_gps_uses_the_first() {
        assert_eq!(view_pipelines(&spec(AugPreset::Strong), Method::Simclr, false), [Pipeline::SYMMETRIC; 2]);
        assert_eq!(view_pipelines(&spec(AugPreset::Strong), Method::Byol, false), [Pipeline::ASYMMETRIC_1, Pipeline::ASYMMETRIC_2]);
        assert_eq!(view_pipelines(&spec(AugPreset::Strong), Method::Byol, true), [Pipeline::ASYMMETRIC_1; 2]);
        assert_eq!(view_pipelines(&spec(AugPreset::Strong), Method::Vicreg, false), [Pipeline::VICREG; 2]);
        assert_eq!(Pipeline::ASYMMETRIC_2.solarize_p, 0.2);
        assert_eq!(view_pipelines(&spec(AugPreset::Weak), Method::Nnclr, false), [Pipeline::RECONSTRUCTION; 2]);
    }

    #[test]
    fn strength_zero_is_weak_and_one_is_symmetric() {
        assert_eq!(Pipeline::with_strength(0.0), Pipeline::RECONSTRUCTION);
        assert_eq!(Pipeline::with_strength(1.0), Pipeline::SYMMETRIC);
        let s = AugmentationSpec { preset: AugPreset::Weak, strength: Some(1.0), crop_size: None };
        assert_eq!(view_pipelines(&s, Method::Byol, false), [Pipeline::SYMMETRIC; 2]);
    }
}
