//! The audio-visual classifier of the reference: two ResNet18 trunks (audio 1 channel, visual 3
//! channels with T frames through the 2-D trunk and one average pool over T x H x W) and a fusion
//! head with uni-modal logits. `paper` is the reference widths (64..512); `tiny` the same topology
//! at 1/8 width for CPU tests and the demo.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Initializer, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use burn::tensor::module::conv2d;
use burn::tensor::ops::{ConvOptions, PadMode};
use serde::{Deserialize, Serialize};

use crate::arch::{audio_windows, consensus, Arch};
use crate::batch_norm::BatchNorm;
use crate::conv::conv2d as conv2d_module;
pub use crate::fusion_kind::FusionKind;
use crate::relu::relu;

/// Model size presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ModelPreset {
    /// ResNet18 widths 64/128/256/512 (the paper).
    Paper,
    /// Widths 8/16/32/64: same topology, for CPU tests and the demo.
    Tiny,
}

impl ModelPreset {
    pub fn base_width(self) -> usize {
        match self {
            Self::Paper => 64,
            Self::Tiny => 8,
        }
    }
    /// Side of the square frames fed to the visual trunk.
    pub fn image_size(self) -> usize {
        match self {
            Self::Paper => 224,
            Self::Tiny => 64,
        }
    }
}

fn conv(cin: usize, cout: usize, k: usize, stride: usize, pad: usize) -> Conv2dConfig {
    Conv2dConfig::new([cin, cout], [k, k])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .with_bias(false)
        // kaiming_normal_(mode='fan_out', nonlinearity='relu')
        .with_initializer(Initializer::KaimingNormal { gain: std::f64::consts::SQRT_2, fan_out_only: true })
}

/// `Linear` with xavier_normal_ weights and zero bias (the reference's `weight_init`).
pub(crate) fn linear<B: Backend>(d_in: usize, d_out: usize, device: &B::Device) -> Linear<B> {
    let mut l = LinearConfig::new(d_in, d_out).with_initializer(Initializer::XavierNormal { gain: 1.0 }).init(device);
    l.bias = Some(Param::from_tensor(Tensor::zeros([d_out], device)));
    l
}

/// The shortcut of a block that changes shape: a 1x1 convolution with stride, then batch norm.
#[derive(Module, Debug)]
pub struct Downsample<B: Backend> {
    conv: Conv2d<B>,
    bn: BatchNorm<B>,
}

impl<B: Backend> Downsample<B> {
    /// The 1x1 strided convolution computed as the pixels it reads, `x[:, :, ::s, ::s]`, through
    /// an unstrided 1x1 convolution: the same numbers, and a data gradient every backend gets
    /// right. Burn 0.21's CubeCL kernels (CUDA, WebGPU) return a zero input gradient for a
    /// convolution whose kernel is smaller than its stride (`conv_transpose2d_direct` loops over
    /// an empty range), so the shortcut's gradient never reached the earlier layers on a GPU
    /// (`tests/cubecl_backend.rs` caught it).
    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.bn.forward(crate::conv::conv2d_or(&self.conv, x, |x| self.strided_conv(x)))
    }

    /// `self.conv` (1x1, strided) on `x`, computed as above (LibTorch's own strided convolution
    /// is right, and runs there: `crate::conv`).
    fn strided_conv(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [sh, sw] = self.conv.stride;
        let [_, _, h, w] = x.dims();
        let (oh, ow) = (h.div_ceil(sh), w.div_ceil(sw));
        let x = if (oh * sh, ow * sw) == (h, w) { x } else { x.pad((0, ow * sw - w, 0, oh * sh - h), PadMode::Constant(0.0)) };
        let [b, c, _, _] = x.dims();
        let x = x.reshape([b, c, oh, sh, ow, sw]).slice([0..b, 0..c, 0..oh, 0..1, 0..ow, 0..1]).reshape([b, c, oh, ow]);
        conv2d(x, self.conv.weight.val(), None, ConvOptions::new([1, 1], [0, 0], [1, 1], 1))
    }
}

#[derive(Module, Debug)]
pub struct BasicBlock<B: Backend> {
    conv1: Conv2d<B>,
    bn1: BatchNorm<B>,
    conv2: Conv2d<B>,
    bn2: BatchNorm<B>,
    downsample: Option<Downsample<B>>,
}

impl<B: Backend> BasicBlock<B> {
    fn new(cin: usize, cout: usize, stride: usize, device: &B::Device) -> Self {
        let downsample =
            (stride != 1 || cin != cout).then(|| Downsample { conv: conv(cin, cout, 1, stride, 0).init(device), bn: BatchNorm::new(cout, device) });
        Self {
            conv1: conv(cin, cout, 3, stride, 1).init(device),
            bn1: BatchNorm::new(cout, device),
            conv2: conv(cout, cout, 3, 1, 1).init(device),
            bn2: BatchNorm::new(cout, device),
            downsample,
        }
    }

    /// `shift`: TSM's temporal shift of the residual branch's input, with this many segments.
    fn forward(&self, x: Tensor<B, 4>, shift: Option<usize>) -> Tensor<B, 4> {
        let branch = match shift {
            Some(t) => crate::arch::temporal_shift(x.clone(), t, crate::arch::TSM_DIV),
            None => x.clone(),
        };
        let out = relu(self.bn1.forward(conv2d_module(&self.conv1, branch)));
        let out = self.bn2.forward(conv2d_module(&self.conv2, out));
        let identity = match &self.downsample {
            Some(d) => d.forward(x),
            None => x,
        };
        relu(out + identity)
    }
}

/// ResNet18 without avgpool/fc: `[N, C, H, W] -> [N, 8w, H/32, W/32]`.
#[derive(Module, Debug)]
pub struct ResNet<B: Backend> {
    conv1: Conv2d<B>,
    bn1: BatchNorm<B>,
    maxpool: MaxPool2d,
    blocks: Vec<BasicBlock<B>>,
}

impl<B: Backend> ResNet<B> {
    pub fn new(in_channels: usize, width: usize, device: &B::Device) -> Self {
        let widths = [width, width * 2, width * 4, width * 8];
        let mut blocks = Vec::new();
        let mut cin = width;
        for (i, &w) in widths.iter().enumerate() {
            blocks.push(BasicBlock::new(cin, w, if i == 0 { 1 } else { 2 }, device));
            blocks.push(BasicBlock::new(w, w, 1, device));
            cin = w;
        }
        Self {
            conv1: conv(in_channels, width, 7, 2, 3).init(device),
            bn1: BatchNorm::new(width, device),
            maxpool: MaxPool2dConfig::new([3, 3]).with_strides([2, 2]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).init(),
            blocks,
        }
    }

    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.forward_shifted(x, None)
    }

    /// With `shift`, TSM's temporal shift (that many segments per clip) before the first
    /// convolution of every residual block ("blockres").
    pub fn forward_shifted(&self, x: Tensor<B, 4>, shift: Option<usize>) -> Tensor<B, 4> {
        let mut x = crate::max_pool::max_pool2d(&self.maxpool, relu(self.bn1.forward(conv2d_module(&self.conv1, x))));
        for b in &self.blocks {
            x = b.forward(x, shift);
        }
        x
    }
}

/// Fusion heads. Each returns fused logits and well-defined uni-modal logits.
#[derive(Module, Debug)]
pub struct Fusion<B: Backend> {
    /// sum: fc_x, fc_y (d -> n). gated: fc_x, fc_y (d -> d). shared: fc_x (d -> n) alone.
    /// binding: fc_x (2d -> d).
    fc_x: Option<Linear<B>>,
    fc_y: Option<Linear<B>>,
    /// concat: (2d -> n); film, gated, binding: (d -> n).
    fc_out: Option<Linear<B>>,
    /// film: (d -> 2d), gamma and beta from audio.
    film: Option<Linear<B>>,
}

/// Fused and uni-modal logits.
#[derive(Debug, Clone)]
pub struct Logits<B: Backend> {
    pub fused: Tensor<B, 2>,
    pub audio: Tensor<B, 2>,
    pub visual: Tensor<B, 2>,
}

impl<B: Backend> Fusion<B> {
    pub fn new(kind: FusionKind, d: usize, n: usize, device: &B::Device) -> Self {
        let l = |i, o| Some(linear(i, o, device));
        match kind {
            FusionKind::Sum => Self { fc_x: l(d, n), fc_y: l(d, n), fc_out: None, film: None },
            FusionKind::Concat => Self { fc_x: None, fc_y: None, fc_out: l(2 * d, n), film: None },
            FusionKind::Film => Self { fc_x: None, fc_y: None, fc_out: l(d, n), film: l(d, 2 * d) },
            FusionKind::Gated => Self { fc_x: l(d, d), fc_y: l(d, d), fc_out: l(d, n), film: None },
            FusionKind::Shared => Self { fc_x: l(d, n), fc_y: None, fc_out: None, film: None },
            FusionKind::Binding => Self { fc_x: l(2 * d, d), fc_y: None, fc_out: l(d, n), film: None },
        }
    }

    pub fn kind(&self) -> FusionKind {
        match (&self.fc_x, &self.fc_out, &self.film) {
            (Some(_), None, _) if self.fc_y.is_none() => FusionKind::Shared,
            (Some(_), None, _) => FusionKind::Sum,
            (None, Some(_), None) => FusionKind::Concat,
            (_, _, Some(_)) => FusionKind::Film,
            (Some(_), Some(_), None) if self.fc_y.is_none() => FusionKind::Binding,
            _ => FusionKind::Gated,
        }
    }

    /// `a`, `v`: `[B, d]` features.
    ///
    /// - sum: `out = fc_x(a) + fc_y(v)`; uni-modal = each branch, with its full bias in training
    ///   (the reference's train step, since `5480329`) and half of it at evaluation (its
    ///   `valid()`). Training is when gradients are tracked, as for batch norm.
    /// - concat: `out = W [a; v] + b`; uni-modal = each half of W with `b / 2` (reference).
    /// - film: `out = fc_out(gamma(a) * v + beta(a))`; visual = `fc_out(v)` (no modulation),
    ///   audio = `fc_out(beta(a))` (what audio alone adds). The reference crashes here.
    /// - gated: `out = fc_out(sigmoid(fc_x(a)) * fc_y(v))`; visual = `fc_out(0.5 * fc_y(v))` (an
    ///   uninformative gate), audio = `fc_out(sigmoid(fc_x(a)))` (audio's gate over a unit visual
    ///   signal). Each clip's logits depend on that clip alone, never on the rest of its batch.
    /// - shared: `o_a = H(a)`, `o_v = H(v)`; fused `w_a o_a + w_v o_v` with per-sample weights
    ///   `softmax(-e_a, -e_v)`, `e_m` the entropy of `softmax(o_m)` (MLA's uncertainty fusion:
    ///   the surer modality weighs more).
    /// - binding: `h = relu(W [a; v] + b)`, `out = fc_out(h)` (TBN's fusion, without its
    ///   dropout); with `m = [W [a; v] + b > 0]`, audio = `fc_out(m * (W_a a + b/2))` and visual
    ///   = `fc_out(m * (W_v v + b/2))`, each with half of fc_out's bias: they add up to `out`.
    pub fn forward(&self, a: Tensor<B, 2>, v: Tensor<B, 2>) -> Logits<B> {
        match self.kind() {
            FusionKind::Shared => {
                let h = self.fc_x.as_ref().unwrap();
                let (audio, visual) = (h.forward(a), h.forward(v));
                Logits { fused: uncertainty_fusion(audio.clone(), visual.clone()), audio, visual }
            }
            FusionKind::Sum => {
                let (fx, fy) = (self.fc_x.as_ref().unwrap(), self.fc_y.as_ref().unwrap());
                let (audio, visual) = (fx.forward(a), fy.forward(v));
                let fused = audio.clone() + visual.clone();
                if B::ad_enabled(&fused.device()) {
                    return Logits { fused, audio, visual };
                }
                let half_bias = |l: &Linear<B>| l.bias.as_ref().expect("fusion layers have a bias").val().unsqueeze_dim(0) / 2.0;
                Logits { fused, audio: audio - half_bias(fx), visual: visual - half_bias(fy) }
            }
            FusionKind::Concat => {
                let fc = self.fc_out.as_ref().unwrap();
                let fused = fc.forward(Tensor::cat(vec![a.clone(), v.clone()], 1));
                let w = fc.weight.val(); // [2d, n]
                let [two_d, n] = w.dims();
                let d = two_d / 2;
                let half_bias = fc.bias.as_ref().unwrap().val().reshape([1, n]) / 2.0;
                let audio = a.matmul(w.clone().slice([0..d, 0..n])) + half_bias.clone();
                let visual = v.matmul(w.slice([d..two_d, 0..n])) + half_bias;
                Logits { fused, audio, visual }
            }
            FusionKind::Film => {
                let (fc, film) = (self.fc_out.as_ref().unwrap(), self.film.as_ref().unwrap());
                let gb = film.forward(a);
                let d = v.dims()[1];
                let b = gb.dims()[0];
                let gamma = gb.clone().slice([0..b, 0..d]);
                let beta = gb.slice([0..b, d..2 * d]);
                let fused = fc.forward(gamma * v.clone() + beta.clone());
                Logits { fused, audio: fc.forward(beta), visual: fc.forward(v) }
            }
            FusionKind::Binding => {
                let (fx, fc) = (self.fc_x.as_ref().unwrap(), self.fc_out.as_ref().unwrap());
                let pre = fx.forward(Tensor::cat(vec![a.clone(), v.clone()], 1));
                let gate = pre.clone().greater_elem(0.0).float();
                let fused = fc.forward(relu(pre));
                let w = fx.weight.val(); // [2d, d]
                let [two_d, h] = w.dims();
                let d = two_d / 2;
                let half = |l: &Linear<B>| l.bias.as_ref().expect("fusion layers have a bias").val().unsqueeze_dim::<2>(0) / 2.0;
                let (half_in, half_out) = (half(fx), half(fc));
                let share = |x: Tensor<B, 2>, rows: std::ops::Range<usize>| {
                    let inner = gate.clone() * (x.matmul(w.clone().slice([rows, 0..h])) + half_in.clone());
                    inner.matmul(fc.weight.val()) + half_out.clone()
                };
                Logits { fused, audio: share(a, 0..d), visual: share(v, d..two_d) }
            }
            FusionKind::Gated => {
                let (fx, fy, fc) = (self.fc_x.as_ref().unwrap(), self.fc_y.as_ref().unwrap(), self.fc_out.as_ref().unwrap());
                let gate = sigmoid(fx.forward(a));
                let oy = fy.forward(v);
                let fused = fc.forward(gate.clone() * oy.clone());
                Logits { fused, audio: fc.forward(gate), visual: fc.forward(oy * 0.5) }
            }
        }
    }
}

/// MLA's test-time fusion of two modalities' logits `[B, C]`: per sample, weights
/// `softmax(-e_a, -e_v)` with `e_m` the entropy of `softmax(o_m)`, the surer modality weighing
/// more (BalanceBenchmark's `avclassify_model.py` L673-700, the paper's form).
pub fn uncertainty_fusion<B: Backend>(audio: Tensor<B, 2>, visual: Tensor<B, 2>) -> Tensor<B, 2> {
    let entropy = |o: &Tensor<B, 2>| {
        let logp = burn::tensor::activation::log_softmax(o.clone(), 1);
        (logp.clone().exp() * logp).sum_dim(1).neg() // [B, 1]
    };
    let (e_a, e_v) = (entropy(&audio), entropy(&visual));
    let top = e_a.clone().max_pair(e_v.clone());
    let (x_a, x_v) = ((top.clone() - e_a).exp(), (top - e_v).exp());
    let total = x_a.clone() + x_v.clone();
    let n = audio.dims()[1];
    audio * (x_a / total.clone()).repeat_dim(1, n) + visual * (x_v / total).repeat_dim(1, n)
}

/// The whole classifier.
#[derive(Module, Debug)]
pub struct AvClassifier<B: Backend> {
    pub audio_net: ResNet<B>,
    pub visual_net: ResNet<B>,
    pub fusion: Fusion<B>,
    arch: Arch,
    /// Segments per clip (the frames per clip) of a segmented architecture.
    segments: usize,
}

impl<B: Backend> AvClassifier<B> {
    /// The plain architecture.
    pub fn new(preset: ModelPreset, fusion: FusionKind, classes: usize, device: &B::Device) -> Self {
        Self::with_arch(preset, Arch::Plain, 1, fusion, classes, device)
    }

    /// `segments`: the frames per clip (TSN, TSM, TBN cut the audio into as many windows).
    pub fn with_arch(preset: ModelPreset, arch: Arch, segments: usize, fusion: FusionKind, classes: usize, device: &B::Device) -> Self {
        let w = preset.base_width();
        Self {
            audio_net: ResNet::new(1, w, device),
            visual_net: ResNet::new(3, w, device),
            fusion: Fusion::new(fusion, 8 * w, classes, device),
            arch,
            segments: segments.max(1),
        }
    }

    /// `audio`: `[B, 1, F, T]`; `frames`: `[B * T, 3, H, W]`, the T frames of each clip together.
    pub fn forward(&self, audio: Tensor<B, 4>, frames: Tensor<B, 4>) -> Logits<B> {
        let (a, v) = self.features(audio, frames);
        self.fuse(a, v)
    }

    /// What the fusion head takes: pooled `[B, d]` audio and visual features, or, for an
    /// architecture that fuses per segment, `[B * K, d]` per-segment features.
    pub fn features(&self, audio: Tensor<B, 4>, frames: Tensor<B, 4>) -> (Tensor<B, 2>, Tensor<B, 2>) {
        if self.arch.fuses_per_segment() {
            return (self.audio_segments(audio), self.visual_segments(frames));
        }
        self.clip_features(audio, frames)
    }

    /// The fusion head on [`Self::features`]: per segment then averaged where the architecture
    /// fuses per segment.
    pub fn fuse(&self, a: Tensor<B, 2>, v: Tensor<B, 2>) -> Logits<B> {
        let out = self.fusion.forward(a, v);
        if !self.arch.fuses_per_segment() {
            return out;
        }
        let k = self.segments;
        Logits { fused: consensus(out.fused, k), audio: consensus(out.audio, k), visual: consensus(out.visual, k) }
    }

    /// Each clip's pooled `[B, d]` features (per-segment ones averaged).
    pub fn clip_features(&self, audio: Tensor<B, 4>, frames: Tensor<B, 4>) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let b = audio.dims()[0];
        (self.audio_features(audio), self.visual_features(frames, b))
    }

    /// The pooled `[B, d]` audio features (the windows' average for a segmented architecture).
    pub fn audio_features(&self, audio: Tensor<B, 4>) -> Tensor<B, 2> {
        if self.arch.segmented() {
            return consensus(self.audio_segments(audio), self.segments);
        }
        pooled(self.audio_net.forward(audio))
    }

    /// The pooled `[B, d]` visual features of `B` clips' frames `[B * T, 3, H, W]`.
    pub fn visual_features(&self, frames: Tensor<B, 4>, b: usize) -> Tensor<B, 2> {
        if self.arch.segmented() {
            let t = frames.dims()[0] / b;
            return consensus(self.visual_segments(frames), t);
        }
        let v = self.visual_net.forward(frames);
        let [bt, d, h, w] = v.dims();
        // One average over T x H x W, as the reference's adaptive_avg_pool3d.
        v.reshape([b, bt / b, d, h * w]).swap_dims(1, 2).reshape([b, d, (bt / b) * h * w]).mean_dim(2).reshape([b, d])
    }

    /// Each audio window's pooled features, `[B * K, d]`.
    fn audio_segments(&self, audio: Tensor<B, 4>) -> Tensor<B, 2> {
        pooled(self.audio_net.forward(audio_windows(audio, self.segments)))
    }

    /// Each frame's pooled features, `[B * T, d]`, through TSM's shifted trunk for `tsm`.
    pub fn visual_segments(&self, frames: Tensor<B, 4>) -> Tensor<B, 2> {
        let shift = (self.arch == Arch::Tsm).then_some(self.segments);
        pooled(self.visual_net.forward_shifted(frames, shift))
    }
}

/// `[N, d, H, W]` averaged over H x W: `[N, d]`.
pub(crate) fn pooled<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 2> {
    let [n, d, h, w] = x.dims();
    x.reshape([n, d, h * w]).mean_dim(2).reshape([n, d])
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};
    use burn::tensor::Distribution;

    type B = Autodiff<Flex>;

    /// The shortcut through `x[:, :, ::s, ::s]` and an unstrided 1x1 convolution gives what the
    /// strided convolution gives (Flex's is right; CubeCL's data gradient is not): outputs and
    /// input gradients, on even and odd sizes (odd: the last row/column is read too). Compared
    /// before the batch norm: over 2 clips of 1x1 pixels it divides by the spread of two values,
    /// which an unseeded draw can make tiny, and once amplified the two routes' last-bit
    /// differences to 1e-3.
    #[test]
    fn downsample_equals_the_strided_convolution() {
        let device = Default::default();
        for (cin, cout, stride, h, w) in [(4, 8, 2, 8, 6), (4, 8, 2, 7, 5), (3, 6, 2, 1, 1), (4, 4, 1, 5, 3)] {
            let d = Downsample::<B> { conv: conv(cin, cout, 1, stride, 0).init(&device), bn: BatchNorm::new(cout, &device) };
            let x = Tensor::<B, 4>::random([2, cin, h, w], Distribution::Normal(0.0, 1.0), &device).require_grad();
            let ours = d.strided_conv(x.clone());
            let reference = d.conv.forward(x.clone());
            assert_eq!(ours.dims(), reference.dims(), "{h}x{w} stride {stride}");
            let weights = Tensor::<B, 4>::random(ours.dims(), Distribution::Normal(0.0, 1.0), &device);
            let g_ours = x.grad(&(ours.clone() * weights.clone()).sum().backward()).unwrap();
            let g_ref = x.grad(&(reference.clone() * weights).sum().backward()).unwrap();
            ours.into_data().assert_approx_eq::<f32>(&reference.into_data(), burn::tensor::Tolerance::absolute(1e-5));
            g_ours.into_data().assert_approx_eq::<f32>(&g_ref.into_data(), burn::tensor::Tolerance::absolute(1e-5));
        }
    }
}
