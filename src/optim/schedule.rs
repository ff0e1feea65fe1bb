//! Linear warmup then cosine decay to zero, per optimizer step: pl_bolts'
//! LinearWarmupCosineAnnealingLR as solo-learn's `warmup_cosine` drives it (interval "step",
//! warmup from 3e-5, eta_min 0). Its warmup reaches the base rate one step before the warmup
//! ends (it divides by warmup − 1); the parity test compares every step with pl_bolts'.

#[derive(Debug, Clone, Copy)]
pub struct WarmupCosine {
    pub base_lr: f64,
    pub warmup_steps: u64,
    pub total_steps: u64,
}

const WARMUP_START: f64 = 3e-5;

impl WarmupCosine {
    pub fn lr(&self, step: u64) -> f64 {
        let (base, w) = (self.base_lr, self.warmup_steps);
        if w > 0 && step < w {
            if step == 0 {
                return WARMUP_START;
            }
            return WARMUP_START + step as f64 * (base - WARMUP_START) / (w - 1) as f64;
        }
        if step == w {
            return base;
        }
        let span = self.total_steps.saturating_sub(w).max(1) as f64;
        0.5 * base * (1.0 + (std::f64::consts::PI * (step - w) as f64 / span).cos())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warms_up_then_decays_to_zero() {
        let s = WarmupCosine { base_lr: 1.0, warmup_steps: 11, total_steps: 111 };
        assert!((s.lr(0) - 3e-5).abs() < 1e-12);
        assert!((s.lr(10) - 1.0).abs() < 1e-12, "pl_bolts reaches the base rate at warmup − 1");
        assert!((s.lr(11) - 1.0).abs() < 1e-12);
        assert!((s.lr(61) - 0.5).abs() < 1e-12);
        assert!(s.lr(111).abs() < 1e-12);
        assert!(s.lr(5) < s.lr(9) && s.lr(70) < s.lr(60));
        let none = WarmupCosine { base_lr: 0.4, warmup_steps: 0, total_steps: 10 };
        assert_eq!(none.lr(0), 0.4);
    }
}
