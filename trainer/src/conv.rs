//! The models' 2-D convolutions.
//!
//! On LibTorch (`--features tch`), a convolution runs its forward pass under PyTorch's own autograd
//! (`crate::torch_autograd`), so that its backward pass is LibTorch's `convolution_backward`
//! (both gradients from one call, as PyTorch trains). burn-tch 0.21 implements no convolution
//! gradients: Burn's generic ones run there instead (a transposed convolution for the input, a
//! swapped-axes convolution for the weights), and they were most of LibTorch's step gap to PyTorch
//! (docs/libtorch.md). Every other backend runs Burn's `Conv2d::forward`, the same numbers.

use burn::nn::conv::Conv2d;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// `conv` applied to `x`.
pub fn conv2d<B: Backend>(conv: &Conv2d<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    conv2d_or(conv, x, |x| conv.forward(x))
}

/// `conv` applied to `x` by PyTorch's autograd where that applies (above), else by `otherwise`
/// (a module that computes its convolution another way on Burn's backends).
pub fn conv2d_or<B: Backend>(conv: &Conv2d<B>, x: Tensor<B, 4>, otherwise: impl FnOnce(Tensor<B, 4>) -> Tensor<B, 4>) -> Tensor<B, 4> {
    #[cfg(feature = "tch")]
    let x = match torch_conv2d(conv, x) {
        Ok(y) => return y,
        Err(x) => x,
    };
    #[cfg(not(feature = "tch"))]
    let _ = conv;
    otherwise(x)
}

/// The convolution through PyTorch's autograd when `B` is LibTorch's autodiff backend and the
/// padding explicit and symmetric, or none (every convolution of the models); `Err(x)` otherwise.
#[cfg(feature = "tch")]
fn torch_conv2d<B: Backend>(conv: &Conv2d<B>, x: Tensor<B, 4>) -> Result<Tensor<B, 4>, Tensor<B, 4>> {
    use crate::torch_autograd::{cast, enabled, float, run, same, tensor};
    use burn::nn::PaddingConfig2d;
    let (top, left) = match conv.padding {
        _ if !enabled() => return Err(x),
        PaddingConfig2d::Valid => (0, 0),
        PaddingConfig2d::Explicit(top, left, bottom, right) if (top, left) == (bottom, right) => (top, left),
        _ => return Err(x),
    };
    let x = float::<4>(cast(x)?);
    let weight = float::<4>(same(conv.weight.val()));
    let (stride, padding, dilation, groups) = (conv.stride.map(|s| s as i64), [top as i64, left as i64], conv.dilation.map(|d| d as i64), conv.groups as i64);
    let y = match &conv.bias {
        Some(b) => {
            let b = float::<1>(same(b.val()));
            run([x, weight, b], |t| tch::Tensor::conv2d(&t[0], &t[1], Some(&t[2]), stride, padding, dilation, groups))
        }
        None => run([x, weight], |t| tch::Tensor::conv2d(&t[0], &t[1], None::<&tch::Tensor>, stride, padding, dilation, groups)),
    };
    Ok(same(tensor::<4>(y)))
}

#[cfg(all(test, feature = "tch"))]
mod tests {
    use burn::nn::conv::Conv2dConfig;
    use burn::nn::PaddingConfig2d;
    use burn::tensor::{Distribution, Tensor};

    use crate::torch_autograd::Tracked;

    /// PyTorch's convolution gradients equal Burn's generic ones on the same backend: input,
    /// weight and bias, strided and padded, with and without bias.
    #[test]
    fn torch_gradients_are_burns() {
        let device = Default::default();
        for bias in [true, false] {
            let conv = Conv2dConfig::new([3, 5], [3, 3])
                .with_stride([2, 1])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_bias(bias)
                .init::<Tracked>(&device);
            let x = Tensor::<Tracked, 4>::random([2, 3, 9, 7], Distribution::Normal(0.0, 1.0), &device);
            let r = Tensor::<Tracked, 4>::random([2, 5, 5, 7], Distribution::Normal(0.0, 1.0), &device);
            let grads = |torch: bool| {
                let x = x.clone().require_grad();
                let y = if torch { super::conv2d(&conv, x.clone()) } else { conv.forward(x.clone()) };
                let g = (y.clone() * r.clone()).sum().backward();
                let flat = |t: Option<Tensor<crate::torch_autograd::Tch, 4>>| t.map(|t| t.into_data().to_vec::<f32>().unwrap());
                let b = conv.bias.as_ref().and_then(|b| b.val().grad(&g)).map(|t| t.into_data().to_vec::<f32>().unwrap());
                (y.into_data().to_vec::<f32>().unwrap(), flat(x.grad(&g)), flat(conv.weight.val().grad(&g)), b)
            };
            let (torch, burn) = (grads(true), grads(false));
            let close = |a: &[f32], b: &[f32], what: &str| {
                assert_eq!(a.len(), b.len(), "{what}");
                let worst = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
                assert!(worst < 1e-5, "{what} (bias {bias}): {worst}");
            };
            close(&torch.0, &burn.0, "output");
            close(&torch.1.unwrap(), &burn.1.unwrap(), "input gradient");
            close(&torch.2.unwrap(), &burn.2.unwrap(), "weight gradient");
            assert_eq!(torch.3.is_some(), bias);
            if let (Some(a), Some(b)) = (torch.3, burn.3) {
                close(&a, &b, "bias gradient");
            }
        }
    }
}
