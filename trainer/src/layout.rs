//! Layout operations that are safe on every backend.
//!
//! burn-tch 0.21 gives the view that `swap_dims` and `permute` return a buffer handle of its own,
//! although LibTorch's transpose shares its input's memory. The next operation that burn-tch
//! runs in place (an add, a division, a ReLU on a tensor it believes nobody else holds) then
//! writes over the input, which autodiff may have kept for the backward pass: PSP's gradients
//! came out 2.5e-3 off PyTorch's that way (`tests/architectures.rs` on LibTorch), with every
//! forward value right. burn-tch 0.22.1 fixes it; until the workspace moves, transposes whose
//! result is computed on go through here. Everywhere else they are plain views.

use burn::prelude::*;

/// `x.swap_dims(a, b)` as a tensor that owns its memory on LibTorch (a plain view elsewhere).
pub fn swapped<B: Backend, const D: usize>(x: Tensor<B, D>, a: usize, b: usize) -> Tensor<B, D> {
    owned(x.swap_dims(a, b))
}

/// A copy of `view` in fresh memory on LibTorch: `view` is held while it is multiplied by one,
/// so burn-tch cannot run that in place and allocates the result.
fn owned<B: Backend, const D: usize>(view: Tensor<B, D>) -> Tensor<B, D> {
    if cfg!(feature = "tch") {
        let held = view.clone();
        let fresh = view * 1.0;
        drop(held);
        fresh
    } else {
        view
    }
}
