//! What the localizer's heads share, below both of them and the model that chooses one: the
//! preset's sizes, the per-segment logits they return, and AVGA's audio-guided attention (PSP's
//! first stage too).

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::{relu, softmax, tanh};

use crate::model::{linear, ModelPreset};

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
    /// PSP's per-segment audio-visual cosine similarity, `[B, S]` (its AVPS loss's input).
    pub similarity: Option<Tensor<B, 2>>,
}

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
