//! Layers initialised as PyTorch and torchvision initialise them. tch's own defaults differ:
//! its BatchNorm starts γ ~ U(0, 1) (PyTorch: γ = 1, β = 0), and its linear and conv weights are
//! Kaiming-uniform with the ReLU gain, bound √(6/fan_in) (PyTorch's `reset_parameters`:
//! U(±1/√fan_in) for weights and biases). The parity test (`tests/parity.rs`) compares each
//! layer's statistics with PyTorch's on committed fixtures.

use tch::nn::{self, Init};

fn uniform_fan_in(fan_in: i64) -> Init {
    let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
    Init::Uniform { lo: -bound, up: bound }
}

/// `nn.Linear(i, o, bias)`: weight and bias U(±1/√i).
pub fn linear(p: nn::Path, i: i64, o: i64, bias: bool) -> nn::Linear {
    nn::linear(p, i, o, nn::LinearConfig { ws_init: uniform_fan_in(i), bs_init: Some(uniform_fan_in(i)), bias })
}

/// `nn.Conv2d(i, o, k, stride, padding, bias)` with PyTorch's default initialisation:
/// weight and bias U(±1/√(i·k·k)).
pub fn conv2d(p: nn::Path, i: i64, o: i64, k: i64, stride: i64, padding: i64, bias: bool) -> nn::Conv2D {
    let init = uniform_fan_in(i * k * k);
    nn::conv2d(p, i, o, k, nn::ConvConfig { stride, padding, bias, ws_init: init, bs_init: init, ..Default::default() })
}

/// A convolution of torchvision's ResNet: no bias, weight `kaiming_normal_(mode="fan_out",
/// nonlinearity="relu")`, i.e. N(0, 2/(o·k·k)).
pub fn resnet_conv2d(p: nn::Path, i: i64, o: i64, k: i64, stride: i64, padding: i64) -> nn::Conv2D {
    let ws_init = Init::Kaiming { dist: nn::init::NormalOrUniform::Normal, fan: nn::init::FanInOut::FanOut, non_linearity: nn::init::NonLinearity::ReLU };
    nn::conv2d(p, i, o, k, nn::ConvConfig { stride, padding, bias: false, ws_init, ..Default::default() })
}

fn bn_config() -> nn::BatchNormConfig {
    nn::BatchNormConfig { ws_init: Init::Const(1.0), bs_init: Init::Const(0.0), ..Default::default() }
}

/// `nn.BatchNorm1d(c)`: γ = 1, β = 0, eps 1e-5, momentum 0.1.
pub fn batch_norm1d(p: nn::Path, c: i64) -> nn::BatchNorm {
    nn::batch_norm1d(p, c, bn_config())
}

/// `nn.BatchNorm2d(c)`: γ = 1, β = 0, eps 1e-5, momentum 0.1.
pub fn batch_norm2d(p: nn::Path, c: i64) -> nn::BatchNorm {
    nn::batch_norm2d(p, c, bn_config())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn batch_norm_starts_at_identity_and_linear_within_the_fan_in_bound() {
        let vs = nn::VarStore::new(Device::Cpu);
        let bn = batch_norm2d(vs.root() / "bn", 7);
        assert!(bn.ws.as_ref().unwrap().eq(1.0).all().int64_value(&[]) == 1);
        assert!(bn.bs.as_ref().unwrap().eq(0.0).all().int64_value(&[]) == 1);
        let lin = linear(vs.root() / "lin", 400, 300, true);
        let bound = 1.0 / 20.0;
        assert!(lin.ws.abs().max().double_value(&[]) <= bound);
        assert!(lin.bs.as_ref().unwrap().abs().max().double_value(&[]) <= bound);
        // U(±b) has std b/√3.
        let std = lin.ws.std(false).double_value(&[]);
        assert!((std - bound / 3f64.sqrt()).abs() < 0.01 * bound, "{std}");
        let conv = resnet_conv2d(vs.root() / "conv", 64, 128, 3, 1, 1);
        let std = conv.ws.to_kind(Kind::Double).std(false).double_value(&[]);
        let expected = (2.0f64 / (128.0 * 9.0)).sqrt();
        assert!((std - expected).abs() < 0.01 * expected, "{std} vs {expected}");
    }
}
