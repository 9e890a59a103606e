//! Batch normalisation at training time on Flex's autodiff backend, as one node each way.
//!
//! Built from Burn's operations (`batch_norm.rs`), a training batch norm is six passes over its
//! input forward (two sums, a subtraction, a square, a product, a sum) and as many again backward,
//! each with its own tensor; on `tiny`'s large spectrograms those passes were a quarter of a
//! step at batch 64 (286-300 ms with them, 210-240 ms with this node). Here it is what PyTorch's
//! CPU kernels do: forward, the channel's mean, then its biased variance (sums in `f64`), then
//! `x * a + b` with `a = gamma * invstd`, `b = beta - mean * a`; backward, the channel's sums of
//! `dy` and `dy * (x - mean)`, then `dx = (dy - mean(dy) - (x - mean) * invstd² * mean(dy * (x -
//! mean))) * a`. Channels spread over rayon's threads, each one's sums in a fixed order (the same
//! numbers on any number of threads).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::Flex;
use burn::tensor::ops::FloatTensor;
use burn::tensor::TensorData;
use burn_flex::FlexTensor;
use rayon::prelude::*;

use crate::flex_conv::Tracked;

/// What a training batch norm gives back besides its output: the batch's per-channel mean and
/// biased variance (for the running statistics).
pub struct Statistics {
    pub mean: Vec<f32>,
    pub var: Vec<f32>,
}

/// `x` (`[batch, channels, spatial]`) normalised by its own statistics and scaled by `gamma`,
/// shifted by `beta`, as one node of Burn's graph.
pub fn batch_norm_tracked(
    x: FloatTensor<Tracked>,
    gamma: FloatTensor<Tracked>,
    beta: FloatTensor<Tracked>,
    epsilon: f64,
) -> (FloatTensor<Tracked>, Statistics) {
    let s = x.primitive.layout().shape();
    let shape = [s[0], s[1], s[2]];
    let (xv, gv, bv) = (x.primitive.to_contiguous(), gamma.primitive.to_contiguous(), beta.primitive.to_contiguous());
    let (mean, var) = statistics(shape, xv.storage());
    let invstd: Vec<f64> = var.iter().map(|v| 1.0 / (v + epsilon).sqrt()).collect();
    let gamma_values: Vec<f32> = gv.storage::<f32>().to_vec();
    let scale: Vec<f32> = invstd.iter().zip(&gamma_values).map(|(i, g)| (*i as f32) * g).collect();
    let shift: Vec<f32> = bv.storage::<f32>().iter().zip(&mean).zip(&scale).map(|((b, m), a)| b - (*m as f32) * a).collect();
    let y = normalise(shape, xv.storage(), &scale, &shift);
    let y = FlexTensor::from_data(TensorData::new(y, shape));
    let stats = Statistics { mean: mean.iter().map(|m| *m as f32).collect(), var: var.iter().map(|v| *v as f32).collect() };
    let saved = Saved { x: xv, shape, mean, invstd, gamma: gamma_values };
    let nodes = [x.node, gamma.node, beta.node];
    let y = match <NormBackward as Backward<Flex, 3>>::prepare::<NoCheckpointing>(NormBackward, nodes).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish(saved, y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    (y, stats)
}

/// Each channel's mean and biased variance (two passes, `f64` sums).
fn statistics([batch, channels, spatial]: [usize; 3], x: &[f32]) -> (Vec<f64>, Vec<f64>) {
    let n = (batch * spatial) as f64;
    let rows = |c: usize| (0..batch).map(move |b| &x[(b * channels + c) * spatial..][..spatial]);
    (0..channels)
        .into_par_iter()
        .map(|c| {
            let mean = rows(c).map(|r| sum(r, r, |v, _| v)).sum::<f64>() / n;
            let var = rows(c).map(|r| sum(r, r, |v, _| (v - mean).powi(2))).sum::<f64>() / n;
            (mean, var)
        })
        .unzip()
}

/// Lanes of a sum in `f64`: sixteen running sums, each over every sixteenth value, so that the
/// sum vectorises (one running sum waits on each addition) and still adds in a fixed order.
const LANES: usize = 16;

/// `sum(f(a[i], b[i]))` in `f64`, `a` and `b` as long, in [`LANES`].
fn sum(a: &[f32], b: &[f32], f: impl Fn(f64, f64) -> f64) -> f64 {
    let mut acc = [0.0f64; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let rest = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| f(*x as f64, *y as f64)).sum::<f64>();
    for (ca, cb) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] += f(ca[i] as f64, cb[i] as f64);
        }
    }
    acc.iter().sum::<f64>() + rest
}

/// `x * scale[c] + shift[c]`, row by row.
fn normalise([_, channels, spatial]: [usize; 3], x: &[f32], scale: &[f32], shift: &[f32]) -> Vec<f32> {
    let mut y = vec![0.0f32; x.len()];
    y.par_chunks_mut(spatial.max(1)).zip(x.par_chunks(spatial.max(1))).enumerate().for_each(|(row, (y, x))| {
        let (a, b) = (scale[row % channels], shift[row % channels]);
        y.iter_mut().zip(x).for_each(|(y, x)| *y = x * a + b);
    });
    y
}

/// What the backward pass reads: the input (shared, not copied), its statistics and `gamma`.
#[derive(Clone, Debug)]
pub struct Saved {
    x: FlexTensor,
    shape: [usize; 3],
    mean: Vec<f64>,
    invstd: Vec<f64>,
    gamma: Vec<f32>,
}

/// The node whose backward pass is PyTorch's batch-norm backward (above).
#[derive(Debug)]
pub struct NormBackward;

impl Backward<Flex, 3> for NormBackward {
    type State = Saved;

    fn backward(self, ops: Ops<Saved, 3>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let dy = grads.consume::<Flex>(&ops.node).to_contiguous();
        let Saved { x, shape: [batch, channels, spatial], mean, invstd, gamma } = ops.state;
        let (x, dy): (&[f32], &[f32]) = (x.storage(), dy.storage());
        let n = (batch * spatial) as f64;
        // Per channel: sum of dy, sum of dy * (x - mean).
        let (sum_dy, dot): (Vec<f64>, Vec<f64>) = (0..channels)
            .into_par_iter()
            .map(|c| {
                let (mut s, mut d) = (0.0f64, 0.0f64);
                for at in (0..batch).map(|b| (b * channels + c) * spatial) {
                    let (xr, gr) = (&x[at..at + spatial], &dy[at..at + spatial]);
                    s += sum(gr, gr, |g, _| g);
                    d += sum(xr, gr, |x, g| (x - mean[c]) * g);
                }
                (s, d)
            })
            .unzip();
        let [x_node, gamma_node, beta_node] = &ops.parents;
        if let Some(node) = x_node {
            let mut dx = vec![0.0f32; x.len()];
            dx.par_chunks_mut(spatial.max(1)).enumerate().for_each(|(row, dx)| {
                let c = row % channels;
                let at = row * spatial;
                let k = (dot[c] * invstd[c] * invstd[c] / n) as f32;
                let (mean_dy, mean, a) = ((sum_dy[c] / n) as f32, mean[c] as f32, (invstd[c] as f32) * gamma[c]);
                for ((dx, x), g) in dx.iter_mut().zip(&x[at..at + spatial]).zip(&dy[at..at + spatial]) {
                    *dx = (g - mean_dy - (x - mean) * k) * a;
                }
            });
            grads.register::<Flex>(node.id, FlexTensor::from_data(TensorData::new(dx, [batch, channels, spatial])));
        }
        if let Some(node) = gamma_node {
            let dgamma: Vec<f32> = dot.iter().zip(&invstd).map(|(d, i)| (d * i) as f32).collect();
            grads.register::<Flex>(node.id, FlexTensor::from_data(TensorData::new(dgamma, [channels])));
        }
        if let Some(node) = beta_node {
            let dbeta: Vec<f32> = sum_dy.iter().map(|s| *s as f32).collect();
            grads.register::<Flex>(node.id, FlexTensor::from_data(TensorData::new(dbeta, [channels])));
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Distribution, Tensor, TensorPrimitive};

    use crate::flex_conv::Tracked;

    /// The node's output, statistics and three gradients against the same batch norm written
    /// with Burn's operations (rows longer and shorter than the sums' lanes), and the same
    /// numbers to the bit on 1 and 3 threads.
    #[test]
    fn same_as_burn_operations_on_any_thread_count() {
        let device = Default::default();
        let (b, c, s) = (3, 4, 37);
        let x = Tensor::<Tracked, 3>::random([b, c, s], Distribution::Normal(0.5, 2.0), &device);
        let gamma = Tensor::<Tracked, 1>::random([c], Distribution::Uniform(0.5, 1.5), &device);
        let beta = Tensor::<Tracked, 1>::random([c], Distribution::Normal(0.0, 1.0), &device);
        let r = Tensor::<Tracked, 3>::random([b, c, s], Distribution::Normal(0.0, 1.0), &device);
        let flat = |t: Tensor<_, 3>| t.into_data().to_vec::<f32>().unwrap();
        let run = |ours: bool| {
            let (x, gamma, beta) = (x.clone().require_grad(), gamma.clone().require_grad(), beta.clone().require_grad());
            let (y, stats) = if ours {
                let (y, stats) = super::batch_norm_tracked(
                    x.clone().into_primitive().tensor(),
                    gamma.clone().into_primitive().tensor(),
                    beta.clone().into_primitive().tensor(),
                    1e-5,
                );
                (Tensor::<Tracked, 3>::from_primitive(TensorPrimitive::Float(y)), (stats.mean, stats.var))
            } else {
                let n = (b * s) as f64;
                let mean = x.clone().sum_dim(2).sum_dim(0).div_scalar(n);
                let centered = x.clone() - mean.clone().repeat_dim(0, b);
                let var = centered.clone().square().sum_dim(2).sum_dim(0).div_scalar(n);
                let scale = gamma.clone().reshape([1, c, 1]).div(var.clone().add_scalar(1e-5).sqrt());
                let y = centered * scale.repeat_dim(0, b) + beta.clone().reshape([1, c, 1]).repeat_dim(0, b);
                (y, (flat(mean.detach()), flat(var.detach())))
            };
            let g = (y.clone() * r.clone()).sum().backward();
            let grad1 = |t: &Tensor<Tracked, 1>| t.grad(&g).unwrap().into_data().to_vec::<f32>().unwrap();
            (flat(y), stats, x.grad(&g).unwrap().into_data().to_vec::<f32>().unwrap(), grad1(&gamma), grad1(&beta))
        };
        let (ours, burn) = (run(true), run(false));
        let close = |a: &[f32], b: &[f32], what: &str| {
            assert_eq!(a.len(), b.len(), "{what}");
            let worst = a.iter().zip(b).map(|(x, y)| (x - y).abs() / (1.0 + y.abs())).fold(0.0f32, f32::max);
            assert!(worst < 1e-5, "{what}: {worst}");
        };
        close(&ours.0, &burn.0, "output");
        close(&ours.1 .0, &burn.1 .0, "mean");
        close(&ours.1 .1, &burn.1 .1, "variance");
        close(&ours.2, &burn.2, "input gradient");
        close(&ours.3, &burn.3, "gamma gradient");
        close(&ours.4, &burn.4, "beta gradient");
        for threads in [1, 3] {
            let on = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let again = on.install(|| run(true));
            assert!(again.0 == ours.0 && again.2 == ours.2 && again.3 == ours.3, "{threads} threads");
        }
    }
}
