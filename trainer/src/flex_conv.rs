//! The models' convolutions on Flex (the CPU backend of the default build), both ways.
//!
//! Burn 0.21 gives Flex no convolution backward of its own: the input gradient runs as a
//! transposed convolution and the weight gradient as a convolution of the swapped-axes input by
//! the swapped-axes output gradient (a "kernel" as large as the image), both through Flex's
//! general paths. Flex's forward pass, for its part, turns each input into channels-last order on
//! one thread, and writes each tile's product back column by column. Here both passes are what
//! PyTorch's CPU convolutions do without oneDNN: per sample, the input unfolded into columns
//! (im2col, `[cin * kh * kw, oh * ow]`), then matrix products on `gemm`'s kernels (the ones Flex
//! uses): forward, the weight (`[cout, cin * kh * kw]`) by the columns straight into the sample's
//! output; backward, one product for the weight gradient (output gradient x columnsᵀ, summed over
//! the batch) and one for the input's columns (weightᵀ x output gradient), folded back (col2im).
//! The samples spread over rayon's threads (a batch smaller than the thread count spreads each
//! product instead). Tensors are read and made in place (a strided view is copied first).
//! Callers reach it only when the backend is Flex or `Autodiff<Flex>` ([`crate::downcast::cast`]
//! checks, by type) and the convolution is ungrouped; `bench-trainer --burn-gradients`
//! ([`crate::downcast::set_enabled`]) runs Burn's generic convolution instead, for comparison.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::{Autodiff, Flex};
use burn::tensor::ops::{ConvOptions, FloatTensor};
use burn::tensor::TensorData;
use burn_flex::FlexTensor;
use rayon::prelude::*;

/// Flex's autodiff backend (the trainer's `Backend` in the default build).
pub type Tracked = Autodiff<Flex>;

/// A tensor's 4 dimensions.
pub(crate) fn dims4(t: &FlexTensor) -> [usize; 4] {
    let s = t.layout().shape();
    [s[0], s[1], s[2], s[3]]
}

/// `values` as a Flex tensor of `shape`, without a copy.
fn primitive<const D: usize>(values: Vec<f32>, shape: [usize; D]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// `conv2d(x, weight, bias, options)` on Flex, by [`forward`]. `options.groups` must be 1.
pub fn conv2d(x: &FlexTensor, weight: &FlexTensor, bias: Option<&FlexTensor>, options: &ConvOptions<2>) -> FlexTensor {
    debug_assert_eq!(options.groups, 1);
    let g = Geometry::new(dims4(x), dims4(weight), options);
    // `to_contiguous` shares the buffer of a tensor that is not a strided view (no copy), so
    // `storage` reads its values row-major from the start.
    let (x, weight, bias) = (x.to_contiguous(), weight.to_contiguous(), bias.map(FlexTensor::to_contiguous));
    let y = forward(&g, x.storage(), weight.storage(), bias.as_ref().map(FlexTensor::storage));
    primitive(y, [g.batch, g.cout, g.oh, g.ow])
}

/// [`conv2d`] as one node of Burn's graph whose backward pass is [`ConvBackward`].
pub fn conv2d_tracked(
    x: FloatTensor<Tracked>,
    weight: FloatTensor<Tracked>,
    bias: Option<FloatTensor<Tracked>>,
    options: ConvOptions<2>,
) -> FloatTensor<Tracked> {
    let output = conv2d(&x.primitive, &weight.primitive, bias.as_ref().map(|b| &b.primitive), &options);
    let saved = Saved { x: x.primitive.clone(), weight: weight.primitive.clone(), options };
    match bias {
        Some(b) => track([x, weight, b], saved, output),
        None => track([x, weight], saved, output),
    }
}

/// `output` as the node over `inputs` (input, weight, and the bias where there is one).
fn track<const N: usize>(inputs: [FloatTensor<Tracked>; N], saved: Saved, output: FloatTensor<Flex>) -> FloatTensor<Tracked> {
    match <ConvBackward as Backward<Flex, N>>::prepare::<NoCheckpointing>(ConvBackward, inputs.map(|t| t.node)).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish(saved, output),
        OpsKind::UnTracked(prep) => prep.finish(output),
    }
}

/// What the backward pass reads: the forward pass's input and weight (shared, not copied), and
/// its options.
#[derive(Clone, Debug)]
pub struct Saved {
    x: FloatTensor<Flex>,
    weight: FloatTensor<Flex>,
    options: ConvOptions<2>,
}

/// The node whose backward pass is the im2col/col2im one above.
#[derive(Debug)]
pub struct ConvBackward;

impl<const N: usize> Backward<Flex, N> for ConvBackward {
    type State = Saved;

    fn backward(self, ops: Ops<Saved, N>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let grad = grads.consume::<Flex>(&ops.node);
        let Saved { x, weight, options } = ops.state;
        let g = Geometry::new(dims4(&x), dims4(&weight), &options);
        let parents = &ops.parents;
        let bias = parents.get(2).and_then(Option::as_ref);
        let want = [parents[0].is_some(), parents[1].is_some(), bias.is_some()];
        let (x, weight, grad) = (x.to_contiguous(), weight.to_contiguous(), grad.to_contiguous());
        let (gx, gw, gb) = backward(&g, x.storage(), weight.storage(), grad.storage(), want);
        if let (Some(node), Some(gx)) = (&parents[0], gx) {
            grads.register::<Flex>(node.id, primitive(gx, [g.batch, g.cin, g.h, g.w]));
        }
        if let (Some(node), Some(gw)) = (&parents[1], gw) {
            grads.register::<Flex>(node.id, primitive(gw, [g.cout, g.cin, g.kh, g.kw]));
        }
        if let (Some(node), Some(gb)) = (bias, gb) {
            grads.register::<Flex>(node.id, primitive(gb, [g.cout]));
        }
    }
}

/// The shapes of one convolution.
#[derive(Debug, Clone, Copy)]
pub struct Geometry {
    pub batch: usize,
    pub cin: usize,
    pub h: usize,
    pub w: usize,
    pub cout: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    pub oh: usize,
    pub ow: usize,
}

impl Geometry {
    pub fn new([batch, cin, h, w]: [usize; 4], [cout, _, kh, kw]: [usize; 4], options: &ConvOptions<2>) -> Self {
        let out = |size: usize, k: usize, i: usize| (size + 2 * options.padding[i] - options.dilation[i] * (k - 1) - 1) / options.stride[i] + 1;
        Self {
            batch,
            cin,
            h,
            w,
            cout,
            kh,
            kw,
            stride: options.stride,
            padding: options.padding,
            dilation: options.dilation,
            oh: out(h, kh, 0),
            ow: out(w, kw, 1),
        }
    }

    /// Rows of a sample's columns: one per input channel and kernel position.
    fn k(&self) -> usize {
        self.cin * self.kh * self.kw
    }

    /// Whether a sample's columns are the sample itself (a 1x1 kernel at stride 1, no padding).
    fn pointwise(&self) -> bool {
        self.kh * self.kw == 1 && self.stride == [1, 1] && self.padding == [0, 0]
    }

    /// Columns: one per output position.
    fn l(&self) -> usize {
        self.oh * self.ow
    }

    /// For kernel offset `i` along an axis, the output positions whose input index lies inside
    /// the image, and the input index of the first: `o` in `range` reads `first + o * stride`.
    fn valid(&self, axis: usize, i: usize) -> (std::ops::Range<usize>, isize) {
        let (size, out) = if axis == 0 { (self.h, self.oh) } else { (self.w, self.ow) };
        valid_outputs(size, out, self.stride[axis], self.padding[axis], self.dilation[axis], i)
    }
}

/// Along one axis of `size` inputs and `out` outputs (a convolution's or a pool's window): for
/// kernel offset `i`, the outputs whose input lies inside the image, and the input index that
/// offset reads for output 0: output `o` in the range reads `offset + o * stride`.
pub(crate) fn valid_outputs(size: usize, out: usize, stride: usize, padding: usize, dilation: usize, i: usize) -> (std::ops::Range<usize>, isize) {
    let (s, p, d) = (stride as isize, padding as isize, dilation as isize);
    let offset = i as isize * d - p;
    // offset + o * s >= 0 and < size.
    let lo = if offset >= 0 { 0 } else { ((-offset) + s - 1) / s };
    let hi = if offset >= size as isize { 0 } else { ((size as isize - offset) + s - 1) / s };
    let (lo, hi) = ((lo as usize).min(out), (hi as usize).min(out));
    (lo..hi.max(lo), offset)
}

impl Geometry {
    /// Whether each row of a sample's columns is its input plane shifted (stride 1, output as
    /// wide as the input: the models' 3x3 convolutions): row `(c, i, j)` is then one contiguous
    /// stretch of the plane, copied at once, with the few columns that read padding set apart.
    fn shifted(&self) -> bool {
        self.stride == [1, 1] && self.ow == self.w
    }

    /// For kernel position `(i, j)` of a [`Self::shifted`] convolution: the stretch `lo..hi` of a
    /// column row that reads inside the plane, the plane's index of its first value being
    /// `lo + offset`, and the output columns that read padding (`ow` outside `cols`).
    fn stretch(&self, i: usize, j: usize) -> (usize, usize, isize, std::ops::Range<usize>) {
        let ((rows, row0), (cols, col0)) = (self.valid(0, i), self.valid(1, j));
        let offset = row0 * self.w as isize + col0;
        let plane = (self.h * self.w) as isize;
        let lo = ((rows.start * self.ow) as isize).max(-offset).max(0);
        let hi = ((rows.end * self.ow) as isize).min(plane - offset);
        // An empty stretch (the kernel row reads only padding) at 0..0.
        let (lo, hi) = if hi > lo { (lo as usize, hi as usize) } else { (0, 0) };
        (lo, hi, offset, cols)
    }
}

/// Zero in `rows` (whole output rows of a column row, the last one possibly cut short) the
/// output columns outside `inside`.
fn unpad(g: &Geometry, rows: &mut [f32], inside: &std::ops::Range<usize>) {
    if inside.len() == g.ow {
        return;
    }
    for row in rows.chunks_mut(g.ow) {
        let n = row.len();
        row[..inside.start.min(n)].fill(0.0);
        row[inside.end.min(n)..].fill(0.0);
    }
}

/// One sample `x` (`[cin, h, w]`) unfolded into `cols` (`[k, l]`, zero where the kernel reads
/// padding).
fn im2col(g: &Geometry, x: &[f32], cols: &mut [f32]) {
    let l = g.l();
    if g.shifted() {
        for c in 0..g.cin {
            let plane = &x[c * g.h * g.w..(c + 1) * g.h * g.w];
            for i in 0..g.kh {
                for j in 0..g.kw {
                    let (lo, hi, offset, inside) = g.stretch(i, j);
                    let dst = &mut cols[((c * g.kh + i) * g.kw + j) * l..][..l];
                    dst[..lo].fill(0.0);
                    dst[hi..].fill(0.0);
                    if hi == lo {
                        continue;
                    }
                    let from = (lo as isize + offset) as usize;
                    dst[lo..hi].copy_from_slice(&plane[from..from + (hi - lo)]);
                    // Where the kernel reads padding, the stretch read the neighbouring rows.
                    unpad(g, &mut dst[lo - lo % g.ow..hi], &inside);
                }
            }
        }
        return;
    }
    let (rows, cols_j): (Vec<_>, Vec<_>) = ((0..g.kh).map(|i| g.valid(0, i)).collect(), (0..g.kw).map(|j| g.valid(1, j)).collect());
    // Strided along a row, each input row is first dealt into `s` phases (phase `r` holds the
    // row's values `r, r + s, r + 2s, ...`), so that every stretch a kernel position reads is one
    // contiguous copy from one phase (the first convolution's 7x7 kernel reads each row 7 times).
    let s = g.stride[1];
    let phase = g.w.div_ceil(s);
    let dealt: Vec<f32> = if s == 1 {
        Vec::new()
    } else {
        let mut dealt = vec![0.0f32; g.cin * g.h * s * phase];
        for (row, out) in x.chunks_exact(g.w).zip(dealt.chunks_exact_mut(s * phase)) {
            for (r, out) in out.chunks_exact_mut(phase).enumerate() {
                out.iter_mut().zip(row[r..].iter().step_by(s)).for_each(|(o, v)| *o = *v);
            }
        }
        dealt
    };
    for c in 0..g.cin {
        for (i, (rows, row0)) in rows.iter().enumerate() {
            for (j, (colr, col0)) in cols_j.iter().enumerate() {
                let dst = &mut cols[((c * g.kh + i) * g.kw + j) * l..][..l];
                if colr.is_empty() {
                    dst.fill(0.0);
                    continue;
                }
                dst[..rows.start * g.ow].fill(0.0);
                dst[rows.end * g.ow..].fill(0.0);
                let start = (col0 + (colr.start * s) as isize) as usize;
                for oh in rows.clone() {
                    let ih = (row0 + (oh * g.stride[0]) as isize) as usize;
                    let src = if s == 1 {
                        &x[(c * g.h + ih) * g.w + start..][..colr.len()]
                    } else {
                        &dealt[((c * g.h + ih) * s + start % s) * phase + start / s..][..colr.len()]
                    };
                    let out = &mut dst[oh * g.ow..(oh + 1) * g.ow];
                    out[..colr.start].fill(0.0);
                    out[colr.end..].fill(0.0);
                    out[colr.clone()].copy_from_slice(src);
                }
            }
        }
    }
}

/// The reverse of [`im2col`]: each column's values added to the input positions they were read
/// from (`gx`, `[cin, h, w]`, zeros when called). `cols` is scratch: the values that were read
/// from padding are zeroed on the way.
fn col2im(g: &Geometry, cols: &mut [f32], gx: &mut [f32]) {
    let l = g.l();
    if g.shifted() {
        for c in 0..g.cin {
            let plane = &mut gx[c * g.h * g.w..(c + 1) * g.h * g.w];
            for i in 0..g.kh {
                for j in 0..g.kw {
                    let (lo, hi, offset, inside) = g.stretch(i, j);
                    if hi == lo {
                        continue;
                    }
                    let src = &mut cols[((c * g.kh + i) * g.kw + j) * l..][..l];
                    unpad(g, &mut src[lo - lo % g.ow..hi], &inside);
                    let to = (lo as isize + offset) as usize;
                    for (d, s) in plane[to..to + (hi - lo)].iter_mut().zip(&src[lo..hi]) {
                        *d += s;
                    }
                }
            }
        }
        return;
    }
    let (rows, cols_j): (Vec<_>, Vec<_>) = ((0..g.kh).map(|i| g.valid(0, i)).collect(), (0..g.kw).map(|j| g.valid(1, j)).collect());
    for c in 0..g.cin {
        let plane = &mut gx[c * g.h * g.w..(c + 1) * g.h * g.w];
        for (i, (rows, row0)) in rows.iter().enumerate() {
            for (j, (colr, col0)) in cols_j.iter().enumerate() {
                if colr.is_empty() {
                    continue;
                }
                let src = &cols[((c * g.kh + i) * g.kw + j) * l..][..l];
                let start = (col0 + (colr.start * g.stride[1]) as isize) as usize;
                for oh in rows.clone() {
                    let ih = (row0 + (oh * g.stride[0]) as isize) as usize;
                    let dst = &mut plane[ih * g.w..(ih + 1) * g.w];
                    let from = &src[oh * g.ow..(oh + 1) * g.ow][colr.clone()];
                    if g.stride[1] == 1 {
                        dst[start..start + colr.len()].iter_mut().zip(from).for_each(|(d, s)| *d += s);
                    } else {
                        dst[start..].iter_mut().step_by(g.stride[1]).zip(from).for_each(|(d, s)| *d += s);
                    }
                }
            }
        }
    }
}

/// How a matrix lies in its slice: the distance between rows and between columns.
#[derive(Clone, Copy)]
struct Strides {
    row: usize,
    col: usize,
}

/// Row after row (columns adjacent), rows `n` apart.
fn rows(n: usize) -> Strides {
    Strides { row: n, col: 1 }
}

/// Column after column (rows adjacent), columns `m` apart.
fn columns(m: usize) -> Strides {
    Strides { row: 1, col: m }
}

/// `dst (m x n) (+)= lhs (m x k) x rhs (k x n)`, each laid out as its [`Strides`] say.
///
/// `gemm` packs whichever factor its micro-kernel cannot read as it lies (after it turns a
/// row-major product around into the column-major one it computes); which layout the caller picks
/// decides how much is packed.
///
/// The one `unsafe` block of the workspace (which denies them): `gemm` takes raw pointers and
/// strides, as Flex's own convolutions call it; the asserts bound every element it touches.
#[allow(clippy::too_many_arguments, unsafe_code)]
fn matmul(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    dst_at: Strides,
    accumulate: bool,
    lhs: &[f32],
    lhs_at: Strides,
    rhs: &[f32],
    rhs_at: Strides,
    parallelism: gemm::Parallelism,
) {
    let (Strides { row: lhs_rs, col: lhs_cs }, Strides { row: rhs_rs, col: rhs_cs }) = (lhs_at, rhs_at);
    assert!(m == 0 || n == 0 || dst.len() > (m - 1) * dst_at.row + (n - 1) * dst_at.col);
    assert!(m == 0 || k == 0 || lhs.len() > (m - 1) * lhs_rs + (k - 1) * lhs_cs);
    assert!(k == 0 || n == 0 || rhs.len() > (k - 1) * rhs_rs + (n - 1) * rhs_cs);
    // SAFETY: the asserts above keep every index gemm reads or writes inside the slices.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            dst_at.col as isize,
            dst_at.row as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// `conv2d(x, weight) + bias` (`x`: `[batch, cin, h, w]`, `weight`: `[cout, cin, kh, kw]`), as
/// `[batch, cout, oh, ow]`: per sample, the weight (`cout x k`) by the sample's columns (`k x l`).
pub fn forward(g: &Geometry, x: &[f32], weight: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    let (k, l) = (g.k(), g.l());
    let (x_size, y_size) = (g.cin * g.h * g.w, g.cout * l);
    let mut y = vec![0.0f32; g.batch * y_size];
    let threads = rayon::current_num_threads();
    // A batch too small to share among the threads shares each product instead.
    let parallelism = if g.batch >= threads { gemm::Parallelism::None } else { gemm::Parallelism::Rayon(threads) };
    let sample = |n: usize, y_n: &mut [f32], cols: &mut Vec<f32>| {
        let x_n = &x[n * x_size..(n + 1) * x_size];
        let cols: &[f32] = if g.pointwise() {
            x_n
        } else {
            cols.resize(k * l, 0.0);
            im2col(g, x_n, cols);
            cols
        };
        // y_n (cout x l) = weight (cout x k) x cols (k x l).
        matmul(g.cout, l, k, y_n, rows(l), false, weight, rows(k), cols, rows(l), parallelism);
        if let Some(bias) = bias {
            for (row, b) in y_n.chunks_mut(l).zip(bias) {
                row.iter_mut().for_each(|v| *v += b);
            }
        }
    };
    if g.batch >= threads {
        y.par_chunks_mut(y_size.max(1)).enumerate().for_each_init(Vec::new, |cols, (n, y_n)| sample(n, y_n, cols));
    } else {
        let mut cols = Vec::new();
        y.chunks_mut(y_size.max(1)).enumerate().for_each(|(n, y_n)| sample(n, y_n, &mut cols));
    }
    y
}

/// How many parts the batch is cut into for the weight gradient's sum (fewer for smaller
/// batches): enough for the threads of a CPU, few enough that the parts' buffers stay small.
const SHARES: usize = 8;

/// The three gradients of `conv2d(x, weight)` given the output's gradient `gy`
/// (`[batch, cout, oh, ow]`): those of the input, the weight and the bias that `[want_x, want_w,
/// want_b]` ask for.
#[allow(clippy::type_complexity)]
pub fn backward(
    g: &Geometry,
    x: &[f32],
    weight: &[f32],
    gy: &[f32],
    [want_x, want_w, want_b]: [bool; 3],
) -> (Option<Vec<f32>>, Option<Vec<f32>>, Option<Vec<f32>>) {
    let (k, l) = (g.k(), g.l());
    let (x_size, y_size) = (g.cin * g.h * g.w, g.cout * l);
    // Without an input gradient, one unused float a sample keeps the per-sample chunks.
    let chunk = if want_x { x_size } else { 1 };
    let mut gx = vec![0.0f32; g.batch * chunk];
    // The batch in a fixed number of shares, whatever the number of threads: each share sums its
    // samples' weight gradients in order, then the shares are summed in order, so the numbers
    // never depend on how many threads ran (`compare --jobs` gives each run its share of them).
    let per = g.batch.div_ceil(SHARES.min(g.batch.max(1)));
    let partials: Vec<Vec<f32>> = gx
        .par_chunks_mut((per * chunk).max(1))
        .enumerate()
        .map(|(share, gx_share)| {
            let mut gw = vec![0.0f32; if want_w { g.cout * k } else { 0 }];
            let mut cols = vec![0.0f32; k * l];
            for (i, gx_n) in gx_share.chunks_mut(chunk).enumerate() {
                let n = share * per + i;
                let gy_n = &gy[n * y_size..(n + 1) * y_size];
                if want_w {
                    im2col(g, &x[n * x_size..(n + 1) * x_size], &mut cols);
                    // gw (cout x k) += gy_n (cout x l) x colsᵀ (l x k), gw column by column
                    // (`[k, cout]` in memory): so laid out, gemm packs gy_n (cout x l) and reads
                    // the columns as they lie, where a row-major gw would have it pack all k x l
                    // of them.
                    matmul(g.cout, k, l, &mut gw, columns(g.cout), true, gy_n, rows(l), &cols, columns(l), gemm::Parallelism::None);
                }
                if want_x {
                    // cols (k x l) = weightᵀ (k x cout) x gy_n (cout x l).
                    matmul(k, l, g.cout, &mut cols, rows(l), false, weight, columns(k), gy_n, rows(l), gemm::Parallelism::None);
                    col2im(g, &mut cols, gx_n);
                }
            }
            gw
        })
        .collect();
    let mut partials = partials.into_iter();
    let mut gw_t = partials.next().unwrap_or_default();
    for p in partials {
        gw_t.iter_mut().zip(&p).for_each(|(a, b)| *a += b);
    }
    // `[k, cout]` to `[cout, k]`.
    let gw: Vec<f32> = if want_w { (0..g.cout * k).map(|i| gw_t[(i % k) * g.cout + i / k]).collect() } else { gw_t };
    let gb = want_b.then(|| (0..g.cout).map(|c| (0..g.batch).map(|n| gy[n * y_size + c * l..][..l].iter().sum::<f32>()).sum()).collect());
    (want_x.then_some(gx), want_w.then_some(gw), gb)
}

#[cfg(test)]
mod tests {
    use burn::tensor::ops::ConvOptions;

    use super::{backward, Geometry};

    /// The gradients are the same to the bit on 1, 2 or 3 threads (`compare --jobs` runs give
    /// each process its share of the cores, and must equal a run alone).
    #[test]
    fn gradients_do_not_depend_on_threads() {
        let g = Geometry::new([11, 3, 9, 7], [4, 3, 3, 3], &ConvOptions::new([2, 1], [1, 1], [1, 1], 1));
        let values =
            |n: usize, seed: u32| (0..n).map(|i| ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) % 1000) as f32 / 997.0 - 0.5).collect::<Vec<_>>();
        let (x, w, gy) = (values(11 * 3 * 9 * 7, 1), values(4 * 3 * 3 * 3, 2), values(11 * 4 * g.oh * g.ow, 3));
        let on = |threads: usize| rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(|| backward(&g, &x, &w, &gy, [true; 3]));
        let one = on(1);
        for threads in [2, 3] {
            assert_eq!(on(threads), one, "{threads} threads");
        }
    }
}
