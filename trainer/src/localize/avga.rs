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
use burn::nn::{BiLstm, BiLstmConfig, Linear};
use burn::prelude::*;
use burn::tensor::activation::relu;

use super::shared::{Attention, LocalizerSize, SegmentLogits};
use crate::model::linear;

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
