//! Linear warmup then cosine decay to zero, per step (pl_bolts' LinearWarmupCosineAnnealingLR as
//! the authors use it: warmup from 3e-5).

#[derive(Debug, Clone, Copy)]
pub struct WarmupCosine {
    pub base_lr: f64,
    pub warmup_steps: u64,
    pub total_steps: u64,
}

const WARMUP_START: f64 = 3e-5;

impl WarmupCosine {
    pub fn lr(&self, step: u64) -> f64 {
        if step < self.warmup_steps {
            let t = step as f64 / self.warmup_steps as f64;
            return WARMUP_START + (self.base_lr - WARMUP_START) * t;
        }
        let span = (self.total_steps - self.warmup_steps).max(1) as f64;
        let t = ((step - self.warmup_steps) as f64 / span).min(1.0);
        0.5 * self.base_lr * (1.0 + (std::f64::consts::PI * t).cos())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warms_up_then_decays_to_zero() {
        let s = WarmupCosine { base_lr: 1.0, warmup_steps: 10, total_steps: 110 };
        assert!((s.lr(0) - 3e-5).abs() < 1e-12);
        assert!((s.lr(10) - 1.0).abs() < 1e-12);
        assert!((s.lr(60) - 0.5).abs() < 1e-12);
        assert!(s.lr(110).abs() < 1e-12);
        assert!(s.lr(5) < s.lr(9) && s.lr(70) < s.lr(60));
    }
}
