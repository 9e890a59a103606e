//! The models' 2-D convolutions.
//!
//! On LibTorch (`--features tch`), a convolution runs its forward pass under PyTorch's own autograd
//! (`crate::torch_autograd`), so that its backward pass is LibTorch's `convolution_backward`
//! (both gradients from one call, as PyTorch trains). burn-tch 0.21 implements no convolution
//! gradients: Burn's generic ones run there instead (a transposed convolution for the input, a
//! swapped-axes convolution for the weights), and they were most of LibTorch's step gap to PyTorch
//! (docs/libtorch.md). On Flex, the forward pass is Flex's and the backward pass
//! `crate::flex_conv`'s im2col one, for the same reason. Every other backend runs Burn's
//! `Conv2d::forward`, the same numbers.

use burn::nn::conv::Conv2d;
use burn::nn::PaddingConfig2d;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// `conv` applied to `x`.
pub fn conv2d<B: Backend>(conv: &Conv2d<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    conv2d_or(conv, x, |x| conv.forward(x))
}

/// `conv` applied to `x` by PyTorch's autograd or with Flex's own gradients where that applies
/// (above), else by `otherwise` (a module that computes its convolution another way on Burn's
/// other backends).
pub fn conv2d_or<B: Backend>(conv: &Conv2d<B>, x: Tensor<B, 4>, otherwise: impl FnOnce(Tensor<B, 4>) -> Tensor<B, 4>) -> Tensor<B, 4> {
    #[cfg(feature = "tch")]
    let x = match torch_conv2d(conv, x) {
        Ok(y) => return y,
        Err(x) => x,
    };
    let x = match flex_conv2d(conv, x) {
        Ok(y) => return y,
        Err(x) => x,
    };
    otherwise(x)
}

/// The padding of `conv` when it is explicit and symmetric, or none (every convolution of the
/// models): `[top, left]`.
fn symmetric_padding<B: Backend>(conv: &Conv2d<B>) -> Option<[usize; 2]> {
    match conv.padding {
        PaddingConfig2d::Valid => Some([0, 0]),
        PaddingConfig2d::Explicit(top, left, bottom, right) if (top, left) == (bottom, right) => Some([top, left]),
        _ => None,
    }
}

/// The convolution by `crate::flex_conv` (its forward pass, and its gradients where they are
/// tracked) when `B` is Flex or Flex's autodiff backend, the padding symmetric and the
/// convolution ungrouped; `Err(x)` otherwise.
fn flex_conv2d<B: Backend>(conv: &Conv2d<B>, x: Tensor<B, 4>) -> Result<Tensor<B, 4>, Tensor<B, 4>> {
    use crate::downcast::{cast, enabled, same};
    use crate::flex_conv::Tracked;
    use burn::backend::Flex;
    use burn::tensor::ops::ConvOptions;
    use burn::tensor::TensorPrimitive;
    let Some(padding) = symmetric_padding(conv).filter(|_| enabled() && conv.groups == 1) else { return Err(x) };
    let options = ConvOptions::new(conv.stride, padding, conv.dilation, 1);
    let x = match cast::<Tensor<Tracked, 4>, _>(x) {
        Ok(x) => {
            let weight: Tensor<Tracked, 4> = same(conv.weight.val());
            let bias = conv.bias.as_ref().map(|b| same::<Tensor<Tracked, 1>, _>(b.val()).into_primitive().tensor());
            let y = crate::flex_conv::conv2d_tracked(x.into_primitive().tensor(), weight.into_primitive().tensor(), bias, options);
            return Ok(same(Tensor::<Tracked, 4>::from_primitive(TensorPrimitive::Float(y))));
        }
        Err(x) => x,
    };
    let x: Tensor<Flex, 4> = cast(x)?;
    let weight: Tensor<Flex, 4> = same(conv.weight.val());
    let bias = conv.bias.as_ref().map(|b| same::<Tensor<Flex, 1>, _>(b.val()).into_primitive().tensor());
    let y = crate::flex_conv::conv2d(&x.into_primitive().tensor(), &weight.into_primitive().tensor(), bias.as_ref(), &options);
    Ok(same(Tensor::<Flex, 4>::from_primitive(TensorPrimitive::Float(y))))
}

/// The convolution through PyTorch's autograd when `B` is LibTorch's autodiff backend and the
/// padding explicit and symmetric, or none (every convolution of the models); `Err(x)` otherwise.
#[cfg(feature = "tch")]
fn torch_conv2d<B: Backend>(conv: &Conv2d<B>, x: Tensor<B, 4>) -> Result<Tensor<B, 4>, Tensor<B, 4>> {
    use crate::torch_autograd::{cast, enabled, float, run, same, tensor};
    let Some([top, left]) = symmetric_padding(conv).filter(|_| enabled()) else { return Err(x) };
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

#[cfg(test)]
mod tests {
    use burn::module::AutodiffModule;
    use burn::nn::conv::Conv2dConfig;
    use burn::nn::PaddingConfig2d;
    use burn::tensor::backend::AutodiffBackend;
    use burn::tensor::{Distribution, Tensor};

    /// Channels in and out, kernel, stride, padding, dilation, input height and width: the
    /// models' kinds (3x3 at stride 1 and 2, the 7x7 stem, the strided 1x1 shortcut), and odd
    /// ones (unequal strides, dilation, padding wider than the stride, padding as wide as the image).
    #[allow(clippy::type_complexity)]
    const CASES: &[([usize; 2], [usize; 2], [usize; 2], [usize; 2], [usize; 2], [usize; 2])] = &[
        ([3, 5], [3, 3], [2, 1], [1, 1], [1, 1], [9, 7]),
        ([4, 6], [3, 3], [1, 1], [1, 1], [1, 1], [6, 5]),
        ([2, 4], [7, 7], [2, 2], [3, 3], [1, 1], [13, 10]),
        ([5, 3], [1, 1], [2, 2], [0, 0], [1, 1], [7, 8]),
        ([3, 2], [3, 2], [1, 3], [2, 0], [2, 1], [8, 11]),
        // Stride 1 with the output as wide as the input (`flex_conv`'s shifted copies): dilated,
        // a kernel row that reads only padding, a 1x1 kernel.
        ([2, 3], [3, 3], [1, 1], [2, 2], [2, 2], [5, 6]),
        ([1, 2], [5, 5], [1, 1], [2, 2], [1, 1], [2, 3]),
        ([4, 3], [1, 1], [1, 1], [0, 0], [1, 1], [3, 4]),
        // Strided, with kernel columns that read only padding.
        ([2, 2], [3, 5], [2, 2], [1, 4], [1, 1], [7, 3]),
        // Strided and dilated along a row (the phases `flex_conv` deals a strided row into).
        ([2, 3], [3, 3], [1, 3], [1, 2], [1, 2], [6, 13]),
    ];

    /// This module's convolution (`super::conv2d`) and Burn's generic one (`Conv2d::forward`)
    /// on `B` and on its inner backend: the same output, and the same gradients of the input, weight and bias, with and
    /// without bias, with and without an input gradient (a model's first convolution).
    fn same_as_burns<B: AutodiffBackend>() {
        let device = Default::default();
        for &(channels, kernel, stride, [ph, pw], dilation, [h, w]) in CASES {
            for (bias, input_grad) in [(true, true), (false, true), (true, false)] {
                let conv = Conv2dConfig::new(channels, kernel)
                    .with_stride(stride)
                    .with_padding(PaddingConfig2d::Explicit(ph, pw, ph, pw))
                    .with_dilation(dilation)
                    .with_bias(bias)
                    .init::<B>(&device);
                let x = Tensor::<B, 4>::random([2, channels[0], h, w], Distribution::Normal(0.0, 1.0), &device);
                let y_dims = conv.forward(x.clone()).dims();
                let r = Tensor::<B, 4>::random(y_dims, Distribution::Normal(0.0, 1.0), &device);
                let run = |ours: bool| {
                    let x = if input_grad { x.clone().require_grad() } else { x.clone() };
                    let y = if ours { super::conv2d(&conv, x.clone()) } else { conv.forward(x.clone()) };
                    let g = (y.clone() * r.clone()).sum().backward();
                    let flat = |t: Option<Tensor<B::InnerBackend, 4>>| t.map(|t| t.into_data().to_vec::<f32>().unwrap());
                    let b = conv.bias.as_ref().and_then(|b| b.val().grad(&g)).map(|t| t.into_data().to_vec::<f32>().unwrap());
                    (y.into_data().to_vec::<f32>().unwrap(), flat(x.grad(&g)), flat(conv.weight.val().grad(&g)), b)
                };
                let (ours, burn) = (run(true), run(false));
                let what = format!("{channels:?} k{kernel:?} s{stride:?} p{:?} d{dilation:?}, bias {bias}, input gradient {input_grad}", [ph, pw]);
                let close = |a: &[f32], b: &[f32], part: &str| {
                    assert_eq!(a.len(), b.len(), "{part} of {what}");
                    let worst = a.iter().zip(b).map(|(x, y)| (x - y).abs() / (1.0 + y.abs())).fold(0.0f32, f32::max);
                    assert!(worst < 1e-5, "{part} of {what}: {worst}");
                };
                close(&ours.0, &burn.0, "output");
                // Without autodiff (evaluation), on one thread (the samples spread) and on more
                // threads than samples (each product spread).
                let inner = conv.valid();
                let burn_inner = inner.forward(x.clone().inner()).into_data().to_vec::<f32>().unwrap();
                for threads in [1, 3] {
                    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                    let y = pool.install(|| super::conv2d(&inner, x.clone().inner())).into_data().to_vec::<f32>().unwrap();
                    close(&y, &burn_inner, &format!("output without autodiff on {threads} threads"));
                }
                assert_eq!(ours.1.is_some(), input_grad, "{what}");
                if let (Some(a), Some(b)) = (&ours.1, &burn.1) {
                    close(a, b, "input gradient");
                }
                close(&ours.2.unwrap(), &burn.2.unwrap(), "weight gradient");
                assert_eq!(ours.3.is_some(), bias, "{what}");
                if let (Some(a), Some(b)) = (ours.3, burn.3) {
                    close(&a, &b, "bias gradient");
                }
            }
        }
    }

    /// `flex_conv`'s im2col gradients.
    #[test]
    fn flex_gradients_are_burns() {
        same_as_burns::<crate::flex_conv::Tracked>();
    }

    /// PyTorch's convolution gradients through `torch_autograd`.
    #[cfg(feature = "tch")]
    #[test]
    fn torch_gradients_are_burns() {
        same_as_burns::<crate::torch_autograd::Tracked>();
    }
}
