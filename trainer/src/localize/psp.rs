//! PSP, positive sample propagation (Zhou et al., CVPR 2021; `fully_model.py::psp_net` and
//! `measure.py::AVPSLoss` of jasongief/PSP_CVPR_2021 @ 40b0fa7), on this toolkit's per-second
//! encoders:
//!
//! - `fa`: two linears (no bias, no activation between) on the audio feature, `d -> 2h -> h`;
//! - AVGA's attention over the visual regions, guided by `fa(audio)`; `fv`: `d -> 2h -> h`;
//! - one BiLSTM per modality (hidden h): two `2h` streams;
//! - the PSP module: `beta = relu(v2 a1^T / sqrt(2h))` (`v2`, `a1`: relu'd projections), rows
//!   L1-normalised, entries `<= thr` pruned, renormalised, both ways (`beta^T` for audio), the
//!   kept positives propagated (`v + beta a2`, `a + beta^T v1`), `relu(fc)`, dropout 0.1, one
//!   shared LayerNorm (eps 1e-6); fused = `(v + a) / 2`;
//! - the classifier `L2 relu(L1 fused)` (`2h -> 64 -> classes`, no bias);
//! - AVPS: the per-segment cosine of the two streams, relu'd and normalised over the segments,
//!   against `1 / |event segments|` on the event segments (MSE), weighted by lambda (100).
//!
//! Where ours differs, and why: the inputs are our trunks' pooled per-second features (`d`) and
//! feature maps, not VGGish embeddings and VGG-19 pool5 maps, so `fa` starts from `d`; the
//! unused layers of `psp_net` (`linear_v`, `v_classify`, `a_classify`, `L3`, `L4`) are not built.
//! AVPS's targets are made per batch: the public data loader never clears its target buffer, so
//! a row keeps the `1/n` of every earlier batch's clip at that row (not copied).
//!
//! Uni-modal shares, exact for PSP's averaging fusion: `L1` is linear, so `L1 fused = (L1 a +
//! L1 v) / 2`; with `m = [L1 fused > 0]` (the fused ReLU's pattern), audio = `L2 (m * L1 a / 2)`,
//! visual = `L2 (m * L1 v / 2)`, and audio + visual = `L2 relu(L1 fused)` = the fused logits.

use burn::module::Module;
use burn::nn::{BiLstm, BiLstmConfig, Dropout, DropoutConfig, Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;

use super::shared::{Attention, LocalizerSize, SegmentLogits};

/// PSP's pruning threshold in the fully supervised setting.
pub const PSP_THRESHOLD: f64 = 0.099;
/// PSP's weight of the AVPS loss (`--LAMBDA`).
pub const AVPS_WEIGHT: f64 = 100.0;
/// The classifier's hidden width (`L1`: `2h -> 64`).
const CLASSIFIER_HIDDEN: usize = 64;

/// `Linear` without bias, xavier-uniform (PSP's `init_weights`).
fn xavier<B: Backend>(i: usize, o: usize, device: &B::Device) -> Linear<B> {
    LinearConfig::new(i, o).with_bias(false).with_initializer(Initializer::XavierUniform { gain: 1.0 }).init(device)
}

/// `Linear` without bias, PyTorch's default init (`fa`, `fv`).
fn plain<B: Backend>(i: usize, o: usize, device: &B::Device) -> Linear<B> {
    LinearConfig::new(i, o).with_bias(false).init(device)
}

/// The positive sample propagation module (`PSP`).
#[derive(Module, Debug)]
pub struct Psp<B: Backend> {
    pub v_l1: Linear<B>,
    pub v_l2: Linear<B>,
    pub v_fc: Linear<B>,
    pub a_l1: Linear<B>,
    pub a_l2: Linear<B>,
    pub a_fc: Linear<B>,
    dropout: Dropout,
    pub layer_norm: LayerNorm<B>,
}

/// The PSP module's outputs, each `[B, S, D]`.
pub struct Propagated<B: Backend> {
    pub fused: Tensor<B, 3>,
    pub visual: Tensor<B, 3>,
    pub audio: Tensor<B, 3>,
}

/// Each row of `x` over its sum (+1e-8), as PSP's L1 normalisation.
fn rows_normalised<B: Backend>(x: Tensor<B, 3>) -> Tensor<B, 3> {
    let sum = x.clone().sum_dim(2) + 1e-8;
    x / sum
}

/// Normalise, prune the entries `<= thr`, renormalise.
fn pruned<B: Backend>(beta: Tensor<B, 3>, thr: f64) -> Tensor<B, 3> {
    let beta = rows_normalised(beta);
    let keep = beta.clone().greater_elem(thr).float();
    rows_normalised(beta * keep)
}

impl<B: Backend> Psp<B> {
    /// `dim`: the streams' width (PSP: 256, `a_dim = v_dim = hidden = out`); dropout 0.1.
    pub fn new(dim: usize, device: &B::Device) -> Self {
        Self::with_dropout(dim, 0.1, device)
    }

    /// With dropout `p` while training (PSP's 0.1).
    pub fn with_dropout(dim: usize, p: f64, device: &B::Device) -> Self {
        Self {
            v_l1: xavier(dim, dim, device),
            v_l2: xavier(dim, dim, device),
            v_fc: xavier(dim, dim, device),
            a_l1: xavier(dim, dim, device),
            a_l2: xavier(dim, dim, device),
            a_fc: xavier(dim, dim, device),
            dropout: DropoutConfig::new(p).init(),
            layer_norm: LayerNormConfig::new(dim).with_epsilon(1e-6).init(device),
        }
    }

    /// `a`, `v`: `[B, S, D]` streams; `thr`: the pruning threshold.
    pub fn forward(&self, a: Tensor<B, 3>, v: Tensor<B, 3>, thr: f64) -> Propagated<B> {
        let branch = |l: &Linear<B>, x: &Tensor<B, 3>| self.dropout.forward(relu(l.forward(x.clone())));
        let (v1, v2) = (branch(&self.v_l1, &v), branch(&self.v_l2, &v));
        let (a1, a2) = (branch(&self.a_l1, &a), branch(&self.a_l2, &a));
        let scale = (v2.dims()[2] as f64).sqrt();
        let beta = relu(v2.matmul(a1.swap_dims(1, 2)) / scale); // rows: visual segments, columns: audio
        let v_to_a = pruned(beta.clone(), thr);
        let a_to_v = pruned(crate::layout::swapped(beta, 1, 2), thr);
        let v_psp = v + v_to_a.matmul(a2);
        let a_psp = a + a_to_v.matmul(v1);
        let out = |l: &Linear<B>, x: Tensor<B, 3>| self.layer_norm.forward(self.dropout.forward(relu(l.forward(x))));
        let (visual, audio) = (out(&self.v_fc, v_psp), out(&self.a_fc, a_psp));
        Propagated { fused: (visual.clone() + audio.clone()) * 0.5, visual, audio }
    }
}

/// The classifier on the fused stream with the exact uni-modal shares (module docs): returns
/// fused, audio and visual logits, each `[N, classes]`, from `[N, D]` rows.
#[derive(Module, Debug)]
pub struct SharedClassifier<B: Backend> {
    pub l1: Linear<B>,
    pub l2: Linear<B>,
}

impl<B: Backend> SharedClassifier<B> {
    pub fn new(dim: usize, classes: usize, device: &B::Device) -> Self {
        Self { l1: xavier(dim, CLASSIFIER_HIDDEN, device), l2: xavier(CLASSIFIER_HIDDEN, classes, device) }
    }

    pub fn forward(&self, fused: Tensor<B, 2>, audio: Tensor<B, 2>, visual: Tensor<B, 2>) -> [Tensor<B, 2>; 3] {
        let pre = self.l1.forward(fused);
        let gate = pre.clone().greater_elem(0.0).float();
        let share = |x: Tensor<B, 2>| self.l2.forward(gate.clone() * self.l1.forward(x) * 0.5);
        [self.l2.forward(relu(pre)), share(audio), share(visual)]
    }
}

/// The per-segment cosine similarity of two `[B, S, D]` streams (`AVSimilarity`: `F.normalize`
/// with eps 1e-12), `[B, S]`.
pub fn similarity<B: Backend>(v: Tensor<B, 3>, a: Tensor<B, 3>) -> Tensor<B, 2> {
    let unit = |x: Tensor<B, 3>| {
        let norm = x.clone().powf_scalar(2.0).sum_dim(2).sqrt().clamp_min(1e-12);
        x / norm
    };
    let [b, s, _] = v.dims();
    (unit(v) * unit(a)).sum_dim(2).reshape([b, s])
}

/// AVPS's targets, `[B * S]` row-major: `1 / n` on each clip's `n` event segments (on all its
/// segments when it has none, as PSP's loader does for an all-background clip), 0 elsewhere.
pub fn avps_targets(labels: &[i64], segments: usize, background: i64) -> Vec<f32> {
    labels
        .chunks(segments)
        .flat_map(|clip| {
            let events = clip.iter().filter(|&&l| l != background).count();
            clip.iter().map(move |&l| match events {
                0 => 1.0 / segments as f32,
                n if l != background => 1.0 / n as f32,
                _ => 0.0,
            })
        })
        .collect()
}

/// `AVPSLoss`: MSE between `relu(sim)` normalised over each clip's segments and the targets.
pub fn avps_loss<B: Backend>(similarity: Tensor<B, 2>, targets: Tensor<B, 2>) -> Tensor<B, 1> {
    let r = relu(similarity);
    let p = r.clone() / (r.sum_dim(1) + 1e-8);
    (p - targets).powf_scalar(2.0).mean()
}

/// PSP's head on the encoders' per-segment features.
#[derive(Module, Debug)]
pub struct PspHead<B: Backend> {
    fa1: Linear<B>,
    fa2: Linear<B>,
    attention: Attention<B>,
    fv1: Linear<B>,
    fv2: Linear<B>,
    lstm_a: BiLstm<B>,
    lstm_v: BiLstm<B>,
    pub psp: Psp<B>,
    pub classifier: SharedClassifier<B>,
    /// The pruning threshold.
    threshold: f64,
}

impl<B: Backend> PspHead<B> {
    /// `threshold`: the pruning threshold (PSP: [`PSP_THRESHOLD`]).
    pub fn new(s: LocalizerSize, d: usize, regions: usize, classes: usize, threshold: f64, device: &B::Device) -> Self {
        let h = s.hidden;
        let lstm = || BiLstmConfig::new(h, h, true).init(device);
        Self {
            fa1: plain(d, 2 * h, device),
            fa2: plain(2 * h, h, device),
            attention: Attention::new(h, d, s.attention, regions, device),
            fv1: plain(d, 2 * h, device),
            fv2: plain(2 * h, h, device),
            lstm_a: lstm(),
            lstm_v: lstm(),
            psp: Psp::new(2 * h, device),
            classifier: SharedClassifier::new(2 * h, classes, device),
            threshold,
        }
    }

    /// The head without dropout.
    pub fn without_dropout(mut self) -> Self {
        self.psp.dropout = DropoutConfig::new(0.0).init();
        self
    }

    /// `a`: `[B * S, d]` audio features; `regions`: `[B * S, R, d]`.
    pub fn forward(&self, a: Tensor<B, 2>, regions: Tensor<B, 3>, segments: usize) -> SegmentLogits<B> {
        let n = a.dims()[0];
        let b = n / segments;
        let fa = self.fa2.forward(self.fa1.forward(a));
        let (v, attention) = self.attention.forward(fa.clone(), regions);
        let fv = self.fv2.forward(self.fv1.forward(v));
        let h = fa.dims()[1];
        let (ha, _) = self.lstm_a.forward(fa.reshape([b, segments, h]), None);
        let (hv, _) = self.lstm_v.forward(fv.reshape([b, segments, h]), None);
        let p = self.psp.forward(ha, hv, self.threshold);
        let sim = similarity(p.visual.clone(), p.audio.clone());
        let dim = p.fused.dims()[2];
        let rows = |x: Tensor<B, 3>| x.reshape([n, dim]);
        let [fused, audio, visual] = self.classifier.forward(rows(p.fused), rows(p.audio), rows(p.visual));
        SegmentLogits { fused, audio, visual, attention, similarity: Some(sim) }
    }
}
