//! The augmentation presets of the authors' code (spec §3) and the continuous strength knob.

use crate::config::{AugPreset, AugmentationSpec};

#[derive(Debug, Clone, PartialEq)]
pub struct AugParams {
    /// RandomResizedCrop area range; None: no crop (the image as is).
    pub crop_scale: Option<(f64, f64)>,
    /// Colour jitter strengths (brightness, contrast, saturation, hue) and its probability.
    pub jitter: [f64; 4],
    pub jitter_p: f64,
    pub gray_p: f64,
    pub blur_p: f64,
    pub solarize_p: f64,
    pub flip_p: f64,
}

impl AugParams {
    /// `strong` = the authors' `symmetric`; `weak` = `reconstruction` (horizontal flip only);
    /// `weak_rrc`; `none`. A `strength` s in [0, 1] replaces the preset: crop area from
    /// 1 − s·0.92 to 1, jitter (0.8, 0.8, 0.8, 0.2)·s with p 0.8, grayscale 0.2·s, blur 0.5·s,
    /// flip 0.5 — so s = 0 is `weak` and s = 1 is `strong`.
    pub fn from_spec(spec: &AugmentationSpec) -> AugParams {
        if let Some(s) = spec.strength {
            return Self::with_strength(s);
        }
        match spec.preset {
            AugPreset::Strong => Self::with_strength(1.0),
            AugPreset::Weak => Self::with_strength(0.0),
            AugPreset::WeakRrc => AugParams { crop_scale: Some((0.08, 1.0)), ..Self::with_strength(0.0) },
            AugPreset::None => AugParams { flip_p: 0.0, ..Self::with_strength(0.0) },
        }
    }

    fn with_strength(s: f64) -> AugParams {
        let on = |p: f64| if s > 0.0 { p } else { 0.0 };
        AugParams {
            crop_scale: (s > 0.0).then(|| (1.0 - s * (1.0 - 0.08), 1.0)),
            jitter: [0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s],
            jitter_p: on(0.8),
            gray_p: 0.2 * s,
            blur_p: 0.5 * s,
            solarize_p: 0.0,
            flip_p: 0.5,
        }
    }
}
