//! The trunks' max pool (3x3, stride 2, padding 1 after the first convolution).
//!
//! On Flex (and Flex's autodiff backend) it is computed here, both ways: Flex's own pools every
//! output through a five-deep loop that checks each kernel position's bounds and keeps an `i64`
//! index per output: 12.6% of a `perf` profile of `bench-trainer --model tiny`. Here each
//! plane's kernel windows are clipped to the image once per output row and column, and the
//! maxima of a whole output row are taken one kernel position at a time, a branch-free pass that
//! vectorises (`forward`; a window at a time, one branch per value, the pool was still 5-6% of
//! that profile and `paper`'s forward pass took 100-190 ms longer at batch 16). The position of
//! each maximum is kept as a `u32` inside its plane; the backward pass adds each output's
//! gradient at that position. The planes spread over rayon's
//! threads, each one's sums in a fixed order (the same numbers on any number of threads). The
//! maximum is PyTorch's: the first largest value of the window in row-major order, or its last
//! NaN. Every other backend runs Burn's `MaxPool2d::forward`.

use std::ops::Range;
use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::Flex;
use burn::nn::pool::MaxPool2d;
use burn::nn::PaddingConfig2d;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData, TensorPrimitive};
use burn_flex::FlexTensor;
use rayon::prelude::*;

use crate::downcast::{cast, enabled, same};
use crate::flex_conv::{dims4, valid_outputs, Tracked};

/// `pool` applied to `x`.
pub fn max_pool2d<B: Backend>(pool: &MaxPool2d, x: Tensor<B, 4>) -> Tensor<B, 4> {
    let padding = match pool.padding {
        PaddingConfig2d::Valid => Some([0, 0]),
        PaddingConfig2d::Explicit(top, left, bottom, right) if (top, left) == (bottom, right) => Some([top, left]),
        _ => None,
    };
    let Some(padding) = padding.filter(|_| !pool.ceil_mode && enabled()) else { return pool.forward(x) };
    let geometry = |dims| Window::new(dims, pool.kernel_size, pool.stride, padding, pool.dilation);
    let x = match cast::<Tensor<Tracked, 4>, _>(x) {
        Ok(x) => {
            let x = x.into_primitive().tensor();
            let w = geometry(dims4(&x.primitive));
            let (y, at) = forward(&w, &x.primitive);
            let y = match <PoolBackward as Backward<Flex, 1>>::prepare::<NoCheckpointing>(PoolBackward, [x.node]).compute_bound().stateful() {
                OpsKind::Tracked(prep) => prep.finish(Saved { window: w, at: Arc::new(at) }, y),
                OpsKind::UnTracked(prep) => prep.finish(y),
            };
            return same(Tensor::<Tracked, 4>::from_primitive(TensorPrimitive::Float(y)));
        }
        Err(x) => x,
    };
    match cast::<Tensor<Flex, 4>, _>(x) {
        Ok(x) => {
            let x = x.into_primitive().tensor();
            let (y, _) = forward(&geometry(dims4(&x)), &x);
            same(Tensor::<Flex, 4>::from_primitive(TensorPrimitive::Float(y)))
        }
        Err(x) => pool.forward(x),
    }
}

/// The shapes of one pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    batch: usize,
    channels: usize,
    h: usize,
    w: usize,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
    oh: usize,
    ow: usize,
}

impl Window {
    pub fn new([b, c, h, w]: [usize; 4], kernel: [usize; 2], stride: [usize; 2], padding: [usize; 2], dilation: [usize; 2]) -> Self {
        let out = |size: usize, i: usize| (size + 2 * padding[i] - dilation[i] * (kernel[i] - 1) - 1) / stride[i] + 1;
        Self { batch: b, channels: c, h, w, kernel, stride, padding, dilation, oh: out(h, 0), ow: out(w, 1) }
    }

    /// Batch x channels: the planes pooled one by one.
    fn planes(&self) -> usize {
        self.batch * self.channels
    }

    /// For output index `o` along `axis`: the kernel offsets whose input index lies inside the
    /// image, and the input index of offset 0 (`first + i * dilation` for offset `i`).
    fn taps(&self, axis: usize, o: usize) -> (Range<usize>, isize) {
        let size = if axis == 0 { self.h } else { self.w } as isize;
        let (d, first) = (self.dilation[axis] as isize, (o * self.stride[axis]) as isize - self.padding[axis] as isize);
        // first + i * d >= 0 and < size.
        let lo = if first >= 0 { 0 } else { (-first + d - 1) / d };
        let hi = if first >= size { 0 } else { (size - first + d - 1) / d };
        let (lo, hi) = (lo as usize, (hi as usize).min(self.kernel[axis]));
        (lo..hi.max(lo), first)
    }
}

/// Each plane's maxima (`[planes, oh, ow]`, as `x`'s batch and channels) and where in its plane
/// each was read.
///
/// One output row at a time, one kernel position at a time over the whole row: for kernel column
/// `j`, the outputs whose tap `j` lies inside the image form one range, and with the plane's
/// columns dealt into `stride` phases (column `q + stride * m` at `m` of phase `q`) their inputs
/// are one contiguous run. The comparison and the kept position are then a branch-free pass over
/// that run, which the compiler vectorises. The windows are visited in row-major order, as before.
fn forward(g: &Window, x: &FlexTensor) -> (FlexTensor, Vec<u32>) {
    let x = x.to_contiguous();
    let x: &[f32] = x.storage();
    let (plane, out) = (g.h * g.w, g.oh * g.ow);
    let s = g.stride[1];
    let phase_len = g.w.div_ceil(s);
    // Kernel column j: its phase, where output o reads (`o + shift` in that phase), and the
    // outputs whose tap j is inside the image.
    let col_taps: Vec<(usize, isize, Range<usize>)> = (0..g.kernel[1])
        .map(|j| {
            // Output o reads column `c + o * s`.
            let (valid, c) = valid_outputs(g.w, g.ow, s, g.padding[1], g.dilation[1], j);
            (c.rem_euclid(s as isize) as usize, c.div_euclid(s as isize), valid)
        })
        .collect();
    let cols: Vec<_> = (0..g.ow).map(|o| g.taps(1, o)).collect();
    let mut y = vec![0.0f32; g.planes() * out];
    let mut at = vec![0u32; g.planes() * out];
    y.par_chunks_mut(out.max(1)).zip(at.par_chunks_mut(out.max(1))).enumerate().for_each_init(
        || vec![0.0f32; if s == 1 { 0 } else { s * g.h * phase_len }],
        |dealt, (p, (y, at))| {
            let x = &x[p * plane..(p + 1) * plane];
            // Phase q of row r at `(q * h + r) * phase_len`; with stride 1 that is the plane.
            let phases: &[f32] = if s == 1 {
                x
            } else {
                for (r, row) in x.chunks_exact(g.w).enumerate() {
                    for q in 0..s {
                        let to = &mut dealt[(q * g.h + r) * phase_len..][..phase_len];
                        to.iter_mut().zip(row.iter().skip(q).step_by(s)).for_each(|(to, v)| *to = *v);
                    }
                }
                dealt
            };
            for oh in 0..g.oh {
                let (rows, row0) = g.taps(0, oh);
                let (y, at) = (&mut y[oh * g.ow..][..g.ow], &mut at[oh * g.ow..][..g.ow]);
                // PyTorch's rule: -inf at the window's first position, then each value that is
                // larger or NaN. (A window wholly in the padding, none in these models, reads
                // -inf at position 0.)
                for (o, (taps, col0)) in cols.iter().enumerate() {
                    y[o] = f32::NEG_INFINITY;
                    at[o] = if rows.is_empty() || taps.is_empty() {
                        0
                    } else {
                        let r = row0 + (rows.start * g.dilation[0]) as isize;
                        (r * g.w as isize + col0 + (taps.start * g.dilation[1]) as isize) as u32
                    };
                }
                for i in rows {
                    let r = (row0 + (i * g.dilation[0]) as isize) as usize;
                    for (q, shift, valid) in col_taps.iter().filter(|(_, _, valid)| !valid.is_empty()) {
                        let from = (valid.start as isize + shift) as usize;
                        let run = &phases[(q * g.h + r) * phase_len + from..][..valid.len()];
                        // The plane's index of `run[k]`.
                        let first = r * g.w + q + s * from;
                        let n = run.len();
                        let (ys, ats) = (&mut y[valid.clone()][..n], &mut at[valid.clone()][..n]);
                        for k in 0..n {
                            // All ones where the value is taken: bit operations, no branch, so
                            // that the loop vectorises.
                            let take = 0u32.wrapping_sub(((run[k] > ys[k]) | run[k].is_nan()) as u32);
                            ys[k] = f32::from_bits((run[k].to_bits() & take) | (ys[k].to_bits() & !take));
                            ats[k] = (((first + s * k) as u32) & take) | (ats[k] & !take);
                        }
                    }
                }
            }
        },
    );
    (FlexTensor::from_data(TensorData::new(y, [g.batch, g.channels, g.oh, g.ow])), at)
}

/// What the backward pass reads.
#[derive(Clone, Debug)]
pub struct Saved {
    window: Window,
    at: Arc<Vec<u32>>,
}

/// The node whose backward pass adds each output's gradient where its maximum was read.
#[derive(Debug)]
pub struct PoolBackward;

impl Backward<Flex, 1> for PoolBackward {
    type State = Saved;

    fn backward(self, ops: Ops<Saved, 1>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let grad = grads.consume::<Flex>(&ops.node).to_contiguous();
        let Saved { window: g, at } = ops.state;
        let [Some(node)] = &ops.parents else { return };
        let (plane, out) = (g.h * g.w, g.oh * g.ow);
        let gy: &[f32] = grad.storage();
        let mut gx = vec![0.0f32; g.planes() * plane];
        gx.par_chunks_mut(plane.max(1)).enumerate().for_each(|(p, gx)| {
            for (v, &k) in gy[p * out..(p + 1) * out].iter().zip(&at[p * out..(p + 1) * out]) {
                gx[k as usize] += v;
            }
        });
        let gx = FlexTensor::from_data(TensorData::new(gx, [g.batch, g.channels, g.h, g.w]));
        grads.register::<Flex>(node.id, gx);
    }
}

#[cfg(test)]
mod tests {
    use burn::nn::pool::MaxPool2dConfig;
    use burn::nn::PaddingConfig2d;
    use burn::tensor::{Distribution, Tensor, TensorData};

    use crate::flex_conv::Tracked;

    /// Kernel, stride, padding, dilation, input height and width: the models' pool on odd and
    /// even sizes, and odd ones (unequal kernel and strides, no padding, dilation).
    #[allow(clippy::type_complexity)]
    const CASES: &[([usize; 2], [usize; 2], [usize; 2], [usize; 2], [usize; 2])] = &[
        ([3, 3], [2, 2], [1, 1], [1, 1], [9, 7]),
        ([3, 3], [2, 2], [1, 1], [1, 1], [8, 6]),
        ([2, 2], [2, 2], [0, 0], [1, 1], [7, 5]),
        ([3, 2], [1, 2], [1, 0], [1, 1], [5, 6]),
        ([3, 3], [2, 1], [2, 1], [2, 1], [9, 4]),
        ([3, 3], [2, 2], [1, 1], [1, 1], [13, 41]),
        ([3, 3], [3, 3], [1, 1], [1, 2], [10, 35]),
        // The last kernel column is outside the image for every output.
        ([3, 3], [1, 2], [1, 1], [3, 3], [7, 5]),
    ];

    /// This module's pool and Burn's (`MaxPool2d::forward`) on Flex's autodiff backend: the same
    /// output and input gradient, on values with ties (which the first maximum of a window wins,
    /// in both), and without autodiff on 1 and 3 threads.
    #[test]
    fn flex_pool_is_burns() {
        let device = Default::default();
        for &(kernel, stride, [ph, pw], dilation, [h, w]) in CASES {
            let pool = MaxPool2dConfig::new(kernel).with_strides(stride).with_padding(PaddingConfig2d::Explicit(ph, pw, ph, pw)).with_dilation(dilation).init();
            // Halves in [-2, 2]: many windows hold their maximum twice.
            let x = Tensor::<Tracked, 4>::random([2, 3, h, w], Distribution::Uniform(-2.0, 2.0), &device).mul_scalar(2.0).round().div_scalar(2.0);
            let r = Tensor::<Tracked, 4>::random(pool.forward(x.clone()).dims(), Distribution::Normal(0.0, 1.0), &device);
            let run = |ours: bool| {
                let x = x.clone().require_grad();
                let y = if ours { super::max_pool2d(&pool, x.clone()) } else { pool.forward(x.clone()) };
                let g = (y.clone() * r.clone()).sum().backward();
                (y.into_data().to_vec::<f32>().unwrap(), x.grad(&g).unwrap().into_data().to_vec::<f32>().unwrap())
            };
            let what = format!("k{kernel:?} s{stride:?} p{:?} d{dilation:?} on {h}x{w}", [ph, pw]);
            let (ours, burn) = (run(true), run(false));
            assert_eq!(ours.0, burn.0, "output of {what}");
            assert_eq!(ours.1, burn.1, "input gradient of {what}");
            assert!(ours.1.iter().filter(|v| **v == 0.0).count() > 0, "{what}: some inputs are no window's maximum");
            for threads in [1, 3] {
                let on = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                let y = on.install(|| super::max_pool2d(&pool, x.clone().inner())).into_data().to_vec::<f32>().unwrap();
                assert_eq!(y, burn.0, "{what} without autodiff on {threads} threads");
            }
        }
    }

    /// As PyTorch's: a NaN in a window is its maximum, wherever it lies, and takes the gradient.
    #[test]
    fn nan_is_the_maximum() {
        let device = Default::default();
        let pool = MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init();
        let x = Tensor::<Tracked, 4>::from_data(TensorData::new(vec![1.0, 5.0, f32::NAN, 2.0], [1, 1, 2, 2]), &device).require_grad();
        let y = super::max_pool2d(&pool, x.clone());
        let g = y.clone().sum().backward();
        assert!(y.into_data().to_vec::<f32>().unwrap()[0].is_nan());
        assert_eq!(x.grad(&g).unwrap().into_data().to_vec::<f32>().unwrap(), [0.0, 0.0, 1.0, 0.0]);
    }
}
