//! The event-localization model (AVGA-style, on this toolkit's own encoders):
//!
//! - per-segment encoders shared across the segments: the audio trunk on each second's slice of
//!   the spectrogram, the visual trunk on each second's frame (the classifier's ResNet18 trunks);
//! - audio-guided spatial attention over the visual feature map, as AVGA (`att_Net`):
//!   `z_r = w_z . tanh(W_v relu(U_v V_r) + W_a relu(U_a a))`, `alpha = softmax_r(z)`,
//!   attended visual = `sum_r alpha_r V_r` (raw region features);
//! - one bidirectional LSTM per modality across the segments (AVGA's temporal model);
//! - one linear 29-way classifier on `relu([h_a; h_v])` per segment.
//!
//! AVGA puts a 512 -> 64 -> 29 MLP after the concatenation; here the last layer is linear on the
//! concatenation (each stream's LSTM already is the per-modality non-linearity), so each
//! modality's share of the classifier is exactly defined, as concat fusion's: audio =
//! `W[:, :2h] relu(h_a) + b/2`, visual = `W[:, 2h:] relu(h_v) + b/2`. OGM-GE needs those.

use burn::module::Module;
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig};
use burn::nn::{BiLstm, BiLstmConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::{relu, softmax, tanh};

use crate::model::{linear, ModelPreset, ResNet};

/// Sizes of a localizer preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalizerSize {
    pub width: usize,
    pub image: usize,
    /// AVGA's attention width (512 there).
    pub attention: usize,
    /// LSTM hidden size per direction (128 in AVGA).
    pub hidden: usize,
    /// Average pooling of each audio slice before the trunk (`[freq, time]`), or none.
    pub audio_pool: Option<[usize; 2]>,
}

impl LocalizerSize {
    pub fn of(preset: ModelPreset) -> Self {
        match preset {
            ModelPreset::Paper => Self { width: 64, image: 224, attention: 512, hidden: 128, audio_pool: None },
            // 64-px frames give a 2 x 2 map: attention over 4 regions; audio slices pooled 4 x 2.
            ModelPreset::Tiny => Self { width: 8, image: 64, attention: 32, hidden: 32, audio_pool: Some([4, 2]) },
        }
    }
}

/// Per-segment logits, `[B * S, classes]` with the segments of each clip together.
#[derive(Debug, Clone)]
pub struct SegmentLogits<B: Backend> {
    pub fused: Tensor<B, 2>,
    pub audio: Tensor<B, 2>,
    pub visual: Tensor<B, 2>,
    /// Attention over the visual regions, `[B * S, regions]`.
    pub attention: Tensor<B, 2>,
}

#[derive(Module, Debug)]
pub struct AvLocalizer<B: Backend> {
    pub audio_net: ResNet<B>,
    pub visual_net: ResNet<B>,
    audio_pool: Option<AvgPool2d>,
    /// `U_a`, `U_v`: features to the attention width.
    att_audio: Linear<B>,
    att_visual: Linear<B>,
    /// `W_a`, `W_v` (no bias) and `w_z`.
    att_a: Linear<B>,
    att_v: Linear<B>,
    att_z: Linear<B>,
    lstm_a: BiLstm<B>,
    lstm_v: BiLstm<B>,
    /// `[4h -> classes]` on `relu([h_a; h_v])`.
    head: Linear<B>,
}

impl<B: Backend> AvLocalizer<B> {
    pub fn new(preset: ModelPreset, classes: usize, device: &B::Device) -> Self {
        let s = LocalizerSize::of(preset);
        let d = 8 * s.width;
        let regions = (s.image / 32).pow(2);
        let no_bias = |i, o| LinearConfig::new(i, o).with_bias(false).with_initializer(burn::nn::Initializer::XavierNormal { gain: 1.0 }).init(device);
        let lstm = |i| BiLstmConfig::new(i, s.hidden, true).init(device);
        Self {
            audio_net: ResNet::new(1, s.width, device),
            visual_net: ResNet::new(3, s.width, device),
            audio_pool: s.audio_pool.map(|k| AvgPool2dConfig::new(k).with_strides(k).init()),
            att_audio: linear(d, s.attention, device),
            att_visual: linear(d, s.attention, device),
            att_a: no_bias(s.attention, regions.max(1)),
            att_v: no_bias(s.attention, regions.max(1)),
            att_z: linear(regions.max(1), 1, device),
            lstm_a: lstm(d),
            lstm_v: lstm(d),
            head: linear(4 * s.hidden, classes, device),
        }
    }

    /// `audio`: `[B * S, 1, F, W]` (each segment's slice); `frames`: `[B * S, 3, H, W]`.
    pub fn forward(&self, audio: Tensor<B, 4>, frames: Tensor<B, 4>, segments: usize) -> SegmentLogits<B> {
        let audio = match &self.audio_pool {
            Some(p) => p.forward(audio),
            None => audio,
        };
        let a = self.audio_net.forward(audio);
        let [n, d, h, w] = a.dims();
        let a = a.reshape([n, d, h * w]).mean_dim(2).reshape([n, d]);
        let v = self.visual_net.forward(frames);
        let [_, _, h, w] = v.dims();
        let regions = v.reshape([n, d, h * w]).swap_dims(1, 2); // [N, R, d]

        // Audio-guided attention (AVGA).
        let vh = self.att_v.forward(relu(self.att_visual.forward(regions.clone()))); // [N, R, k]
        let ah = self.att_a.forward(relu(self.att_audio.forward(a.clone()))).unsqueeze_dim::<3>(1); // [N, 1, k]
        let z = self.att_z.forward(tanh(vh + ah)).reshape([n, h * w]);
        let attention = softmax(z, 1);
        let v = attention.clone().unsqueeze_dim::<3>(1).matmul(regions).reshape([n, d]);

        // Temporal model per modality, then the per-segment classifier.
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
        SegmentLogits { fused, audio, visual, attention }
    }
}
