//! Batch normalisation over `[batch, channels, ...]`, as PyTorch's `nn.BatchNorm2d` (what the
//! OGM-GE ResNet18 uses): batch statistics at training time (biased variance to normalise, the
//! unbiased one into the running variance, momentum 0.1, epsilon 1e-5), running statistics at
//! evaluation. Tested against PyTorch (`goldens/batchnorm.json`).
//!
//! Why not `burn::nn::BatchNorm`: it broadcasts `[1, C, 1, 1]` statistics over `[B, C, H, W]`,
//! a pattern Flex has no fast path for (every element through a strided iterator), and it
//! transposes the input to take statistics; on the CPU that was over half of a `tiny` training
//! step. Here the input is viewed as `[B, C, H*W]`, statistics are reduced along contiguous
//! rows, and every per-channel tensor is repeated to `[B, C, 1]` before it meets the input: a
//! per-row scalar, which Flex runs with SIMD (and which costs a GPU nothing). It also updates the
//! running variance as PyTorch does (burn uses the biased estimate). The record has the same
//! fields as burn's.

use std::cell::Cell;

use burn::module::{Module, Param, RunningState};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

thread_local! {
    static FROZEN: Cell<bool> = const { Cell::new(false) };
    static BATCH: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with every batch norm of this thread normalising as in training (batch statistics)
/// but leaving its running statistics alone: a second forward of the same batch (MMPareto's)
/// must not count the batch twice.
pub fn with_frozen_statistics<T>(f: impl FnOnce() -> T) -> T {
    let before = FROZEN.replace(true);
    let out = f();
    FROZEN.set(before);
    out
}

/// Runs `f` with every batch norm of this thread normalising with the batch's statistics even
/// where no gradient is tracked, as a PyTorch module left in training mode does under
/// `no_grad` (BalanceBenchmark's UMT teachers). Running statistics are left alone: nothing in
/// such a forward reads them.
pub fn with_batch_statistics<T>(f: impl FnOnce() -> T) -> T {
    let before = BATCH.replace(true);
    let out = f();
    BATCH.set(before);
    out
}

#[derive(Module, Debug)]
pub struct BatchNorm<B: Backend> {
    pub gamma: Param<Tensor<B, 1>>,
    pub beta: Param<Tensor<B, 1>>,
    pub running_mean: RunningState<Tensor<B, 1>>,
    pub running_var: RunningState<Tensor<B, 1>>,
    pub momentum: f64,
    pub epsilon: f64,
}

impl<B: Backend> BatchNorm<B> {
    /// Weight 1, bias 0, running mean 0 and variance 1 (PyTorch's initialisation).
    pub fn new(channels: usize, device: &B::Device) -> Self {
        Self {
            gamma: Param::from_tensor(Tensor::ones([channels], device)),
            beta: Param::from_tensor(Tensor::zeros([channels], device)),
            running_mean: RunningState::new(Tensor::zeros([channels], device)),
            running_var: RunningState::new(Tensor::ones([channels], device)),
            momentum: 0.1,
            epsilon: 1e-5,
        }
    }

    /// Normalises `[batch, channels, ...]` per channel: with the batch's statistics when
    /// gradients are tracked (training) or inside [`with_batch_statistics`], else with the
    /// running ones.
    pub fn forward<const D: usize>(&self, input: Tensor<B, D>) -> Tensor<B, D> {
        let dims = input.dims();
        assert!(D >= 2, "batch norm needs [batch, channels, ...], got {dims:?}");
        let (batch, channels) = (dims[0], dims[1]);
        let spatial: usize = dims[2..].iter().product();
        let x = input.reshape([batch, channels, spatial]);
        // A [1, C, 1] statistic as a per-row scalar of the [B, C, S] input.
        let per_row = |t: Tensor<B, 3>| t.repeat_dim(0, batch);
        let column = |t: Tensor<B, 1>| t.reshape([1, channels, 1]);
        let tracked = B::ad_enabled(&x.device());
        let out = if tracked || BATCH.get() {
            let n = (batch * spatial) as f64;
            let mean = x.clone().sum_dim(2).sum_dim(0).div_scalar(n);
            let centered = x - per_row(mean.clone());
            let var = centered.clone().square().sum_dim(2).sum_dim(0).div_scalar(n);
            let stat = |t: Tensor<B, 3>| t.detach().reshape([channels]);
            let unbiased = if n > 1.0 { n / (n - 1.0) } else { 1.0 };
            let m = self.momentum;
            if tracked && !FROZEN.get() {
                self.running_mean.update(self.running_mean.value_sync().mul_scalar(1.0 - m).add(stat(mean).mul_scalar(m)).detach());
                self.running_var.update(self.running_var.value_sync().mul_scalar(1.0 - m).add(stat(var.clone()).mul_scalar(m * unbiased)).detach());
            }
            let scale = column(self.gamma.val()).div(var.add_scalar(self.epsilon).sqrt());
            centered * per_row(scale) + per_row(column(self.beta.val()))
        } else {
            // y = x * scale + (beta - mean * scale): one pass over the input per operation.
            let scale = self.gamma.val().div(self.running_var.value().add_scalar(self.epsilon).sqrt());
            let shift = self.beta.val().sub(self.running_mean.value().mul(scale.clone()));
            x * per_row(column(scale)) + per_row(column(shift))
        };
        out.reshape(dims)
    }
}
