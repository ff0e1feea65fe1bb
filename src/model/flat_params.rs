//! Many small tensors rebound as views into one flat buffer, each keeping its memory layout
//! (channels-last included), so an update of all of them is one kernel instead of one per tensor.
//! LARS (`optim::flat_lars`) and BYOL's EMA target use it.

use tch::{Kind, Tensor};

/// How a tensor's elements lie in memory (and so in its segment of the flat buffer).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Layout {
    Contiguous,
    /// [N, C, H, W] with NHWC strides (see `model::to_channels_last`).
    ChannelsLast,
}

pub fn layout_of(t: &Tensor) -> Layout {
    if t.dim() == 4 && !t.is_contiguous() {
        let s = t.size();
        let (c, h, w) = (s[1], s[2], s[3]);
        if t.stride() == [h * w * c, 1, w * c, c] {
            return Layout::ChannelsLast;
        }
    }
    Layout::Contiguous
}

/// A tensor's elements as a 1-D tensor in the given memory order (a view when the layout holds,
/// the same values in that order otherwise).
pub fn flatten_as(t: &Tensor, layout: Layout) -> Tensor {
    match layout {
        Layout::Contiguous => t.reshape([-1]),
        Layout::ChannelsLast => t.permute([0, 2, 3, 1]).reshape([-1]),
    }
}

/// Copies `tensors` (float32) back to back into one new buffer and rebinds each of them (every
/// handle sharing it sees the change) as a view into it with its own layout. Returns the buffer
/// and the layouts.
pub fn rebind_into_flat(tensors: &[Tensor]) -> (Tensor, Vec<Layout>) {
    let _guard = tch::no_grad_guard();
    let layouts: Vec<Layout> = tensors.iter().map(layout_of).collect();
    let device = tensors.first().map(|p| p.device()).unwrap_or(tch::Device::Cpu);
    let pieces: Vec<Tensor> = tensors.iter().zip(&layouts).map(|(p, &l)| flatten_as(&p.detach().to_kind(Kind::Float), l)).collect();
    let values = if pieces.is_empty() { Tensor::zeros([0], (Kind::Float, device)) } else { Tensor::cat(&pieces, 0) };
    let mut offset = 0;
    for (p, &l) in tensors.iter().zip(&layouts) {
        let n = p.numel() as i64;
        let view = values.narrow(0, offset, n);
        let view = match l {
            Layout::Contiguous => view.view(p.size().as_slice()),
            Layout::ChannelsLast => {
                let s = p.size();
                view.view([s[0], s[2], s[3], s[1]]).permute([0, 3, 1, 2])
            }
        };
        let mut p = p.shallow_clone();
        p.set_data(&view);
        offset += n;
    }
    (values, layouts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn rebound_tensors_share_the_buffer_and_keep_values_and_layout() {
        let a = Tensor::arange(24, (Kind::Float, Device::Cpu)).view([2, 3, 2, 2]);
        let a = crate::model::to_channels_last(&a);
        let b = Tensor::from_slice(&[7f32, 8., 9.]);
        let (a0, b0) = (a.copy(), b.copy());
        let (values, layouts) = rebind_into_flat(&[a.shallow_clone(), b.shallow_clone()]);
        assert_eq!(layouts, [Layout::ChannelsLast, Layout::Contiguous]);
        assert!(a.equal(&a0) && b.equal(&b0), "values kept");
        assert_eq!(layout_of(&a), Layout::ChannelsLast);
        let mut v = values.shallow_clone();
        let _ = v.fill_(1.0);
        assert!(bool::try_from(a.eq(1.0).all()).unwrap() && bool::try_from(b.eq(1.0).all()).unwrap(), "views into the buffer");
    }
}
