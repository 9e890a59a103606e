//! AVGA (Tian et al., ECCV 2018, `models.py::att_Net`) on this toolkit's per-second encoders:
//! the audio-guided spatial attention over the visual regions (also PSP's first stage), then
//! one bidirectional LSTM per modality across the segments and one linear classifier on
//! `relu([h_a; h_v])` per segment.
//!
//! AVGA puts a 512 -> 64 -> 29 MLP after the concatenation; here the last layer is linear on the
//! concatenation (each stream's LSTM already is the per-modality non-linearity), so each
//! modality's share of the classifier is exactly defined, as concat fusion's: audio =
//! `W[:, :2h] relu(h_a) + b/2`, visual = `W[:, 2h:] relu(h_v) + b/2`. OGM-GE needs those.

use burn::module::Module;
use burn::nn::{BiLstm, BiLstmConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::{relu, softmax, tanh};

use super::model::{LocalizerSize, SegmentLogits};
use crate::model::linear;

/// AVGA's audio-guided attention: `z_r = w_z . tanh(W_v relu(U_v V_r) + W_a relu(U_a a))`,
/// `alpha = softmax_r(z)`, attended visual = `sum_r alpha_r V_r` (the raw region features).
#[derive(Module, Debug)]
pub struct Attention<B: Backend> {
    /// `U_a`, `U_v`: features to the attention width.
    att_audio: Linear<B>,
    att_visual: Linear<B>,
    /// `W_a`, `W_v` (no bias) and `w_z`.
    att_a: Linear<B>,
    att_v: Linear<B>,
    att_z: Linear<B>,
}

impl<B: Backend> Attention<B> {
    /// `a_dim`: the guiding audio feature's size; `v_dim`: a region's; `width`: AVGA's 512.
    pub fn new(a_dim: usize, v_dim: usize, width: usize, regions: usize, device: &B::Device) -> Self {
        let no_bias = |i, o| LinearConfig::new(i, o).with_bias(false).with_initializer(burn::nn::Initializer::XavierNormal { gain: 1.0 }).init(device);
        Self {
            att_audio: linear(a_dim, width, device),
            att_visual: linear(v_dim, width, device),
            att_a: no_bias(width, regions.max(1)),
            att_v: no_bias(width, regions.max(1)),
            att_z: linear(regions.max(1), 1, device),
        }
    }

    /// `audio`: `[N, a_dim]`; `regions`: `[N, R, v_dim]`. Returns the attended `[N, v_dim]` and
    /// the attention `[N, R]`.
    pub fn forward(&self, audio: Tensor<B, 2>, regions: Tensor<B, 3>) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let [n, r, d] = regions.dims();
        let vh = self.att_v.forward(relu(self.att_visual.forward(regions.clone()))); // [N, R, k]
        let ah = self.att_a.forward(relu(self.att_audio.forward(audio))).unsqueeze_dim::<3>(1); // [N, 1, k]
        let z = self.att_z.forward(tanh(vh + ah)).reshape([n, r]);
        let attention = softmax(z, 1);
        let v = attention.clone().unsqueeze_dim::<3>(1).matmul(regions).reshape([n, d]);
        (v, attention)
    }
}

/// AVGA's head on the encoders' per-segment features.
#[derive(Module, Debug)]
pub struct AvgaHead<B: Backend> {
    attention: Attention<B>,
    lstm_a: BiLstm<B>,
    lstm_v: BiLstm<B>,
    /// `[4h -> classes]` on `relu([h_a; h_v])`.
    head: Linear<B>,
}

impl<B: Backend> AvgaHead<B> {
    pub fn new(s: LocalizerSize, d: usize, regions: usize, classes: usize, device: &B::Device) -> Self {
        let lstm = |i| BiLstmConfig::new(i, s.hidden, true).init(device);
        Self { attention: Attention::new(d, d, s.attention, regions, device), lstm_a: lstm(d), lstm_v: lstm(d), head: linear(4 * s.hidden, classes, device) }
    }

    /// `a`: `[B * S, d]` audio features; `regions`: `[B * S, R, d]`.
    pub fn forward(&self, a: Tensor<B, 2>, regions: Tensor<B, 3>, segments: usize) -> SegmentLogits<B> {
        let [n, d] = a.dims();
        let (v, attention) = self.attention.forward(a.clone(), regions);
        let b = n / segments;
        let (ha, _) = self.lstm_a.forward(a.reshape([b, segments, d]), None);
        let (hv, _) = self.lstm_v.forward(v.reshape([b, segments, d]), None);
        let two_h = ha.dims()[2];
        let ha = relu(ha.reshape([n, two_h]));
        let hv = relu(hv.reshape([n, two_h]));
        let fused = self.head.forward(Tensor::cat(vec![ha.clone(), hv.clone()], 1));
        let wgt = self.head.weight.val(); // [4h, classes]
        let classes = wgt.dims()[1];
        let half_bias = self.head.bias.as_ref().expect("head has a bias").val().reshape([1, classes]) / 2.0;
        let audio = ha.matmul(wgt.clone().slice([0..two_h, 0..classes])) + half_bias.clone();
        let visual = hv.matmul(wgt.slice([two_h..2 * two_h, 0..classes])) + half_bias;
        SegmentLogits { fused, audio, visual, attention, similarity: None }
    }
}
