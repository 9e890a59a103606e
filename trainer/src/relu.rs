//! The trunks' ReLU.
//!
//! On LibTorch (`--features tch`), PyTorch's own through its autograd (`crate::torch_autograd`):
//! the backward pass is one `threshold_backward` over the gradient, where Burn's generic one
//! compares the output with zero into a mask and then fills the gradient through it (two passes
//! over each activation and a mask as large as it). Every other backend runs Burn's `relu`.

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// `max(x, 0)`.
pub fn relu<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    #[cfg(feature = "tch")]
    let x = match torch_relu(x) {
        Ok(y) => return y,
        Err(x) => x,
    };
    burn::tensor::activation::relu(x)
}

/// PyTorch's ReLU when `B` is LibTorch's autodiff backend; `Err(x)` otherwise.
#[cfg(feature = "tch")]
fn torch_relu<B: Backend, const D: usize>(x: Tensor<B, D>) -> Result<Tensor<B, D>, Tensor<B, D>> {
    use crate::torch_autograd::{cast, enabled, float, run, same, tensor};
    if !enabled() {
        return Err(x);
    }
    let x = float::<D>(cast(x)?);
    Ok(same(tensor::<D>(run([x], |t| t[0].relu()))))
}

#[cfg(all(test, feature = "tch"))]
mod tests {
    use burn::tensor::{Distribution, Tensor};

    use crate::torch_autograd::{Tch, Tracked};

    /// PyTorch's ReLU and its gradient equal Burn's on the same backend, exact zeros included
    /// (a zero input's gradient is zero in both).
    #[test]
    fn torch_gradient_is_burns() {
        let device = Default::default();
        let x = Tensor::<Tracked, 3>::random([2, 3, 5], Distribution::Normal(0.0, 1.0), &device)
            .mask_fill(Tensor::<Tracked, 3>::random([2, 3, 5], Distribution::Uniform(0.0, 1.0), &device).lower_elem(0.2), 0.0);
        let r = Tensor::<Tracked, 3>::random([2, 3, 5], Distribution::Normal(0.0, 1.0), &device);
        let run = |torch: bool| {
            let x = x.clone().require_grad();
            let y = if torch { super::relu(x.clone()) } else { burn::tensor::activation::relu(x.clone()) };
            let g = (y.clone() * r.clone()).sum().backward();
            let grad: Tensor<Tch, 3> = x.grad(&g).unwrap();
            (y.into_data().to_vec::<f32>().unwrap(), grad.into_data().to_vec::<f32>().unwrap())
        };
        let (torch, burn) = (run(true), run(false));
        assert!(burn.0.iter().filter(|v| **v == 0.0).count() > 5, "the case holds zeros");
        assert_eq!(torch, burn);
    }
}
