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
        #[cfg(feature = "tch")]
        let x = match self.torch_forward(x, tracked) {
            Ok(y) => return y.reshape(dims),
            Err(x) => x,
        };
        let x = match self.flex_forward(x, tracked) {
            Ok(y) => return y.reshape(dims),
            Err(x) => x,
        };
        let out = if tracked || BATCH.get() {
            let n = (batch * spatial) as f64;
            let mean = x.clone().sum_dim(2).sum_dim(0).div_scalar(n);
            let centered = x - per_row(mean.clone());
            let var = centered.clone().square().sum_dim(2).sum_dim(0).div_scalar(n);
            let stat = |t: Tensor<B, 3>| t.detach().reshape([channels]);
            if tracked && !FROZEN.get() {
                self.update_running(stat(mean), stat(var.clone()), n);
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

impl<B: Backend> BatchNorm<B> {
    /// On Flex's autodiff backend, training: `crate::flex_batch_norm`'s node, PyTorch's CPU kernels
    /// (the running statistics updated from the batch's as below, unless frozen). `Err(x)` on
    /// every other backend, and at evaluation.
    fn flex_forward(&self, x: Tensor<B, 3>, tracked: bool) -> Result<Tensor<B, 3>, Tensor<B, 3>> {
        use crate::downcast::{cast, enabled, same};
        use crate::flex_conv::Tracked;
        use burn::tensor::{TensorData, TensorPrimitive};
        if !tracked || !enabled() {
            return Err(x);
        }
        let x: Tensor<Tracked, 3> = cast(x)?;
        let [batch, channels, spatial] = x.dims();
        let device = x.device();
        let (gamma, beta): (Tensor<Tracked, 1>, Tensor<Tracked, 1>) = (same(self.gamma.val()), same(self.beta.val()));
        let (y, stats) = crate::flex_batch_norm::batch_norm_tracked(
            x.into_primitive().tensor(),
            gamma.into_primitive().tensor(),
            beta.into_primitive().tensor(),
            self.epsilon,
        );
        if !FROZEN.get() {
            let stat = |v: Vec<f32>| same::<Tensor<B, 1>, _>(Tensor::<Tracked, 1>::from_data(TensorData::new(v, [channels]), &device).detach());
            self.update_running(stat(stats.mean), stat(stats.var), (batch * spatial) as f64);
        }
        Ok(same(Tensor::<Tracked, 3>::from_primitive(TensorPrimitive::Float(y))))
    }

    /// The running statistics moved toward a batch's `mean` and biased `var` over `n` values per
    /// channel, as PyTorch does: momentum `self.momentum`, the variance made unbiased first.
    fn update_running(&self, mean: Tensor<B, 1>, var: Tensor<B, 1>, n: f64) {
        let unbiased = if n > 1.0 { n / (n - 1.0) } else { 1.0 };
        let m = self.momentum;
        self.running_mean.update(self.running_mean.value_sync().mul_scalar(1.0 - m).add(mean.mul_scalar(m)).detach());
        self.running_var.update(self.running_var.value_sync().mul_scalar(1.0 - m).add(var.mul_scalar(m * unbiased)).detach());
    }
}

#[cfg(feature = "tch")]
impl<B: Backend> BatchNorm<B> {
    /// On LibTorch's autodiff backend, training: PyTorch's own batch norm (one fused kernel each
    /// way, through `crate::torch_autograd`), which also updates the running statistics as
    /// PyTorch does, on copies (unless frozen). `Err(x)` on every other backend, and at evaluation.
    fn torch_forward(&self, x: Tensor<B, 3>, tracked: bool) -> Result<Tensor<B, 3>, Tensor<B, 3>> {
        use crate::torch_autograd::{cast, enabled, float, run, same, tensor, Tch, Tracked};
        use burn::tensor::TensorPrimitive;
        // One value per channel (a batch of one clip at 1x1): PyTorch's kernel would put
        // 0 * n / (n - 1) = NaN into the running variance (its Python module refuses such a
        // batch); the path below keeps the running variance finite, as before.
        let [batch, _, spatial] = x.dims();
        if !tracked || !enabled() || batch * spatial < 2 {
            return Err(x);
        }
        let x: Tensor<Tracked, 3> = cast(x)?;
        let (gamma, beta): (Tensor<Tracked, 1>, Tensor<Tracked, 1>) = (same(self.gamma.val()), same(self.beta.val()));
        let copy = |t: Tensor<B, 1>| same::<Tensor<Tracked, 1>, _>(t).inner().into_primitive().tensor().tensor.copy();
        let running = (!FROZEN.get()).then(|| (copy(self.running_mean.value_sync()), copy(self.running_var.value_sync())));
        let (m, eps) = (self.momentum, self.epsilon);
        let y = run([float(x), float(gamma), float(beta)], |t| {
            let (mean, var) = running.as_ref().map(|(a, b)| (a, b)).unzip();
            t[0].batch_norm(Some(&t[1]), Some(&t[2]), mean, var, true, m, eps, false)
        });
        if let Some((mean, var)) = running {
            let back = |t: tch::Tensor| -> Tensor<B, 1> {
                let inner = Tensor::<Tch, 1>::from_primitive(TensorPrimitive::Float(burn::backend::libtorch::TchTensor::new(t)));
                same(Tensor::<Tracked, 1>::from_inner(inner))
            };
            self.running_mean.update(back(mean));
            self.running_var.update(back(var));
        }
        Ok(same(tensor::<3>(y)))
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::Tensor;

    use super::BatchNorm;

    /// A batch with one value per channel (one clip, 1x1) leaves a finite running variance, on
    /// every backend (PyTorch's own kernel would make it NaN: n / (n - 1) with n = 1).
    #[test]
    fn one_value_per_channel_keeps_the_running_variance_finite() {
        type B = crate::Backend;
        let device = Default::default();
        let bn = BatchNorm::<B>::new(4, &device);
        let x = Tensor::<B, 4>::from_floats([[[[1.0]], [[2.0]], [[3.0]], [[4.0]]]], &device).require_grad();
        let y = bn.forward(x);
        assert_eq!(y.into_data().to_vec::<f32>().unwrap(), [0.0; 4], "normalised by its own statistics");
        let var = bn.running_var.value_sync().into_data().to_vec::<f32>().unwrap();
        assert!(var.iter().all(|v| (v - 0.9).abs() < 1e-6), "{var:?}");
    }
}
